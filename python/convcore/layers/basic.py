"""The core layers: Dense, Activation, Flatten, Reshape and Lambda (ReLU and Softmax live in
``activation.py``, Dropout in ``regularization.py``, as Keras groups them)."""
from __future__ import annotations

import math

import numpy as np

from .. import _checks, activations, initializers, ops
from . import _weights
from .core import Layer


def _init_name(i):
    """An initializer as it goes into a config (``initializers.serialize``: a callable by
    its own registered name, an Initializer as its class and config)."""
    return _weights.init_save(i)


def _activate(activation, z):
    return z if activation == "linear" else activations.apply(activation, z)


class Dense(Layer):
    """``activation(x @ kernel + bias)`` on the last axis, as ``keras.layers.Dense``.

    Parameters
    ----------
    units : int
        Output features.
    activation : str, callable or None
        Applied to the output (None: linear).
    use_bias : bool
    kernel_initializer, bias_initializer
        Initializers (names, objects or callables ``f(shape, dtype)``).
    kernel_regularizer, bias_regularizer, activity_regularizer
        Penalties added to the layer's losses (the activity one on the output).
    kernel_constraint, bias_constraint
        Applied to the weight after each optimizer update.
    lora_rank, lora_alpha, quantization_config
        Keras 3's LoRA and quantization: accepted only as None (not supported).
    """

    _min_input_rank = 1

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, lora_rank=None,
                 lora_alpha=None, quantization_config=None, **kw):
        if quantization_config is not None:
            raise ValueError(f"Dense: quantization is not supported; received quantization_config="
                             f"{quantization_config!r} (expected None)")
        if lora_rank is not None or lora_alpha is not None:
            raise ValueError(f"Dense: LoRA (low-rank adaptation) is not supported; received lora_rank={lora_rank!r}, "
                             f"lora_alpha={lora_alpha!r} (expected None)")
        if activity_regularizer is not None:
            kw["activity_regularizer"] = activity_regularizer  # the base Layer applies it to the output
        super().__init__(**kw)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"Dense: units must be a positive integer, received units={units!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        if not isinstance(use_bias, (bool, np.bool_)):
            raise TypeError(f"Dense: use_bias must be True or False, received use_bias={use_bias!r}")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = _weights.regularizer_get(kernel_regularizer)
        self.bias_regularizer = _weights.regularizer_get(bias_regularizer)
        self.kernel_constraint = _weights.constraint_get(kernel_constraint)
        self.bias_constraint = _weights.constraint_get(bias_constraint)

    def build(self, input_shape):
        if len(input_shape) < 1:
            raise ValueError(f"Dense {self.name!r} needs inputs with a feature axis, got shape {input_shape}")
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = self.add_weight("bias", (self.units,), self.bias_initializer, regularizer=self.bias_regularizer,
                                    constraint=self.bias_constraint) if self.use_bias else None
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def call(self, inputs, training=None):
        act = self.activation
        fused = act if isinstance(act, str) and act in activations.NATIVE else "linear"
        y = ops.dense_bias_activation(inputs, self.kernel, self.bias, fused)
        return y if fused == act else _activate(act, y)

    def get_config(self):
        cfg = {**super().get_config(), "units": self.units, "activation": activations.serialize(self.activation),
               "use_bias": self.use_bias, "kernel_initializer": _weights.init_save(self.kernel_initializer),
               "bias_initializer": _weights.init_save(self.bias_initializer),
               "kernel_regularizer": _weights.regularizer_save(self.kernel_regularizer),
               "bias_regularizer": _weights.regularizer_save(self.bias_regularizer),
               "kernel_constraint": _weights.constraint_save(self.kernel_constraint),
               "bias_constraint": _weights.constraint_save(self.bias_constraint),
               "quantization_config": None}
        return cfg


class Activation(Layer):
    """Apply an activation function, as ``keras.layers.Activation``: a name of
    ``convcore.activations``, None (linear) or any callable of tensors."""

    def __init__(self, activation, **kw):
        super().__init__(**kw)
        self.activation = activations.get(activation)

    def call(self, inputs, training=None):
        return _activate(self.activation, inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "activation": activations.serialize(self.activation)}


class Flatten(Layer):
    """Collapse all axes but the batch axis, as ``keras.layers.Flatten``. With
    ``data_format='channels_first'`` the channels axis (1) is moved last first, so the
    flattened order is that of the channels-last tensor (Keras's rule)."""

    def __init__(self, data_format=None, **kw):
        super().__init__(**kw)
        self.data_format = _checks.choice("Flatten", "data_format", data_format or "channels_last",
                                          ("channels_last", "channels_first"))

    def compute_output_shape(self, input_shape):
        return (_checks.element_count(f"Flatten {self.name!r}", input_shape, "the input"),)

    def call(self, inputs, training=None):
        x = inputs
        if self.data_format == "channels_first" and x.ndim > 2:
            x = ops.transpose(x, (0,) + tuple(range(2, x.ndim)) + (1,))
        # the size, not -1: an empty batch has no values to infer it from
        return ops.reshape(x, (x.shape[0], math.prod(x.shape[1:])))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class Reshape(Layer):
    """Reshape to ``target_shape`` (without the batch axis; one entry may be -1)."""

    def __init__(self, target_shape, **kw):
        super().__init__(**kw)
        if isinstance(target_shape, (int, np.integer)):
            target_shape = (target_shape,)
        self.target_shape = tuple(_checks.integer("Reshape", "target_shape entries", s) for s in target_shape)
        if sum(1 for s in self.target_shape if s == -1) > 1 or any(s == 0 or s < -1 for s in self.target_shape):
            raise ValueError(f"Reshape: invalid target_shape {target_shape!r}")

    def compute_output_shape(self, input_shape):
        n = _checks.element_count(f"Reshape {self.name!r}", input_shape, "the input")
        known = _checks.element_count(f"Reshape {self.name!r}", [s for s in self.target_shape if s != -1],
                                      "the target")
        if -1 in self.target_shape:
            if n % known:
                raise ValueError(f"Reshape {self.name!r}: cannot reshape {tuple(input_shape)} into {self.target_shape}")
            return tuple(n // known if s == -1 else s for s in self.target_shape)
        if known != n:
            raise ValueError(f"Reshape {self.name!r}: cannot reshape {tuple(input_shape)} ({n} values) "
                             f"into {self.target_shape} ({known} values)")
        return self.target_shape

    def call(self, inputs, training=None):
        return ops.reshape(inputs, (inputs.shape[0],) + self.compute_output_shape(tuple(inputs.shape[1:])))

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


def _library_function(name):
    """A function of convcore.ops or convcore.activations named ``name`` (a Lambda over
    a library function loads without custom_objects; no code comes from the file)."""
    from .. import activations as _a
    if name in _a._BY_NAME:
        return _a._BY_NAME[name]
    f = getattr(ops, name, None) if isinstance(name, str) and not name.startswith("_") else None
    return f if callable(f) and not isinstance(f, type) else None


class Lambda(Layer):
    """Wrap a function of tensors as a layer, as ``keras.layers.Lambda``:
    ``Lambda(lambda x: ops.square(x))``. The output shape comes from ``output_shape``
    (a shape without the batch axis, or a function of the input shape) or else from
    running the function on one zero sample. A Lambda holds no weights and is saved by
    its function's name (pass the function in ``custom_objects`` to load it)."""

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kw):
        super().__init__(**kw)
        if mask is not None:
            raise ValueError(f"Lambda: masks are not supported; received mask={mask!r} (expected None)")
        if not callable(function):
            raise TypeError(f"Lambda: function must be callable, got {function!r}")
        self.function = function
        self._output_shape = output_shape
        self.arguments = dict(arguments or {})

    def call(self, inputs, training=None):
        return self.function(inputs, **self.arguments)

    def compute_output_shape(self, input_shape):
        if self._output_shape is None:
            return super().compute_output_shape(input_shape)
        if callable(self._output_shape):
            return tuple(self._output_shape(input_shape))
        return tuple(self._output_shape)

    def get_config(self):
        name = getattr(self.function, "__name__", "<lambda>")
        return {**super().get_config(), "function": name,
                "output_shape": None if self._output_shape is None or callable(self._output_shape)
                else list(self._output_shape), "arguments": self.arguments}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        cfg = dict(config)
        fn = cfg.pop("function", None)
        if not callable(fn):
            if not isinstance(fn, str):
                raise ValueError(f"Lambda layer {cfg.get('name')!r}: 'function' must name a function, got {fn!r}")
            from ..saving.object_registration import get_registered_object
            found = get_registered_object(fn, custom_objects)
            found = found if callable(found) else _library_function(fn)
            if found is None:
                raise ValueError(f"Lambda layer {cfg.get('name')!r}: its function {fn!r} is not saved in the file "
                                 "(code is never loaded); pass it with custom_objects={name: function}")
            fn = found
        return cls(fn, **cfg)


__all__ = ["Dense", "Activation", "Flatten", "Reshape", "Lambda"]
