"""The Layer base class, symbolic tensors and graph nodes.

A layer is ``build(input_shape)`` (create weights with ``add_weight``), ``call(inputs,
training=None)`` (compute with :mod:`convcore.ops`), ``compute_output_shape`` and
``get_config``, as in Keras 3. Gradients come from the tape: no layer has a backward.
"""
from __future__ import annotations

import contextvars as _cv
import inspect as _inspect
import math
import re
from typing import Optional

import numpy as np

from .. import _checks, backend, initializers, ops
from ..saving import object_registration
from ..tensor import Tensor, Variable

_NAME_COUNTS: dict = {}


def _snake_case(name):
    """Keras's layer-name rule: 'Conv2DTranspose' -> 'conv2d_transpose'."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _auto_name(cls_name):
    base = _snake_case(cls_name)
    n = _NAME_COUNTS.get(base, 0)
    _NAME_COUNTS[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


class InputSpecError(ValueError):
    pass


class KerasTensor:
    """A symbolic tensor of the functional API: a shape (batch axis first, ``None``) and
    the node that produces it."""

    def __init__(self, shape, node=None, name=None, dtype=None, batch_size=None):
        self.shape = (batch_size,) + tuple(None if s is None else int(s) for s in shape)
        _checks.element_count(f"{name or 'a symbolic tensor'}", self.shape, "one sample")
        self.node = node
        self.name = name
        self.dtype = dtype

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, name={self.name}>"


class Node:
    """One call of a layer on symbolic inputs."""

    def __init__(self, layer, inputs, output, call_kwargs=None, multi=False):
        self.layer = layer
        self.inputs = list(inputs)
        self.output = output
        self.outputs = output if isinstance(output, list) else [output]
        self.call_kwargs = dict(call_kwargs or {})
        self.multi = multi  # the layer was called on a list of inputs


# While a model file loads: the bytes of weights its entries can hold ([remaining]).
# add_weight draws from it before allocating, so a small config cannot make the loader
# allocate (and initialise) weights far larger than the file (item 2 of issue 11).
weight_budget = _cv.ContextVar("convcore_weight_budget", default=None)


def _draw_budget(layer, name, shape, dtype):
    budget = weight_budget.get()
    if budget is None:
        return
    need = math.prod(shape) * np.dtype(dtype).itemsize
    if need > budget[0]:
        raise ValueError(f"layer {layer.name!r} declares a weight {name!r} of shape {shape} ({need} bytes), more "
                         f"than the file's weight entries can hold ({budget[0]} bytes left)")
    budget[0] -= need


def _flag(cls, name, value):
    """A bool argument: True / False (numpy's too) or 0 / 1; anything else — a string
    from a config, say — is a TypeError rather than truthy."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer)) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{cls}: {name} must be True or False, got {value!r}")


def _dtype_name(cls, dtype):
    """A layer's dtype argument: a name, or Keras 3's DTypePolicy config
    (``{"class_name": "DTypePolicy", "config": {"name": "float32"}}``) as saved files hold."""
    if isinstance(dtype, dict):
        name = (dtype.get("config") or {}).get("name")
        if not isinstance(name, str):
            raise ValueError(f"{cls}: dtype must be 'float32' or 'float64' (or a DTypePolicy config naming one), "
                             f"got {dtype!r}")
        return name
    if dtype is not None and not isinstance(dtype, str):
        name = getattr(dtype, "name", None)  # a numpy dtype or a policy object
        return name if isinstance(name, str) else str(dtype)
    return dtype


def _is_symbolic(inputs):
    if isinstance(inputs, KerasTensor):
        return True
    return isinstance(inputs, (list, tuple)) and bool(inputs) and all(isinstance(t, KerasTensor) for t in inputs)


class Layer:
    """Base class of all layers (Keras conventions: ``build(input_shape)``,
    ``call(inputs, training=None)``, ``add_weight``, ``get_config()``,
    ``get_weights()`` / ``set_weights()``, ``count_params()``)."""

    _registry: dict = {}
    _call_has_training = True

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        # Public classes load by name; private helpers (_Conv, _Pool) never do.
        if not cls.__name__.startswith("_"):
            Layer._registry[cls.__name__] = cls
            object_registration.register(cls.__name__, cls)
        params = _inspect.signature(cls.call).parameters
        cls._call_has_training = "training" in params or any(
            p.kind == p.VAR_KEYWORD for p in params.values())

    @staticmethod
    def registry():
        return dict(Layer._registry)

    def __init__(self, name=None, input_shape=None, dtype=None, trainable=True, input_dim=None,
                 activity_regularizer=None, autocast=True, **kwargs):
        batch_size = kwargs.pop("batch_size", None)  # tf.keras 2: with input_shape
        if "batch_input_shape" in kwargs:
            bis = kwargs.pop("batch_input_shape")
            if bis is not None:
                batch_size, input_shape = tuple(bis)[0], tuple(bis)[1:]
        if "weights" in kwargs and kwargs["weights"] is None:  # tf.keras 2's weights=None
            del kwargs["weights"]
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword arguments {sorted(kwargs)}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string, got {name!r}")
        object.__setattr__(self, "_layers", [])
        self.name = name or _auto_name(type(self).__name__)
        if input_dim is not None and input_shape is None:
            input_shape = (int(input_dim),)
        if isinstance(input_shape, (int, np.integer)):
            input_shape = (input_shape,)
        self._input_shape_arg = None if input_shape is None else tuple(
            None if s is None else _checks.integer(type(self).__name__, "input_shape entries", s, minimum=1)
            for s in input_shape)
        self._batch_size_arg = None if batch_size is None else _checks.integer(type(self).__name__, "batch_size",
                                                                               batch_size, minimum=1)
        self.dtype = _dtype_name(type(self).__name__, dtype) or backend.floatx()
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"{type(self).__name__}: dtype must be 'float32' or 'float64', got {self.dtype!r}")
        self._trainable = _flag(type(self).__name__, "trainable", trainable)
        self.built = False
        self.input_shape: Optional[tuple] = None
        self.output_shape: Optional[tuple] = None
        self._variables = []
        self._inbound_nodes = []
        self._losses = []
        self._device = "cpu"
        self.activity_regularizer = None
        if activity_regularizer is not None:
            from .. import regularizers
            self.activity_regularizer = regularizers.get(activity_regularizer)

    # ------------------------------------------------------------------ tracking
    def __setattr__(self, name, value):
        # Sub-layers assigned as attributes are tracked (their weights are this layer's).
        if isinstance(value, Layer) and name != "_outer" and value is not self:
            self._track(value)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Layer) for v in value):
            for v in value:
                self._track(v)
        object.__setattr__(self, name, value)

    def _track(self, layer):
        """Add ``layer`` to the tracked sub-layers once (an id set beside the list, rebuilt
        when the list was replaced or changed size elsewhere, keeps long lists linear)."""
        d = self.__dict__
        layers = d.setdefault("_layers", [])
        ids = d.get("_layer_ids")
        if ids is None or ids[0] is not layers or len(ids[1]) != len(layers):
            ids = d["_layer_ids"] = (layers, {id(l) for l in layers})
        if id(layer) not in ids[1]:
            ids[1].add(id(layer))
            layers.append(layer)

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = _flag(type(self).__name__, "trainable", value)
        for l in self._sublayers():
            l.trainable = value

    def _sublayers(self):
        """The layers inside this one (tracked attributes; a model: its graph's layers)."""
        return list(self.__dict__.get("_layers", []))

    # ------------------------------------------------------------------ symbolic results
    @property
    def output(self):
        """The symbolic output of the layer's first call, as Keras (a layer called in
        several models keeps the output of the first)."""
        nodes = self.__dict__.get("_inbound_nodes")
        if not nodes:
            raise AttributeError(f"Layer {self.name!r} has never been called and thus has no defined output")
        return nodes[0].output

    @property
    def input(self):
        """The symbolic input of the layer's first call."""
        nodes = self.__dict__.get("_inbound_nodes")
        if not nodes:
            raise AttributeError(f"Layer {self.name!r} has never been called and thus has no defined input")
        n = nodes[0]
        return list(n.inputs) if n.multi else (n.inputs[0] if n.inputs else n.output)

    # ------------------------------------------------------------------ losses
    def add_loss(self, loss):
        """Add a scalar loss (a tensor, e.g. a penalty computed in ``call``) to the
        layer's ``losses``; the trainer adds every loss of the model to the compiled
        loss. Losses from one call replace those of the call before, as Keras."""
        items = list(loss) if isinstance(loss, (list, tuple)) else [loss]
        for x in items:
            if isinstance(x, KerasTensor):
                raise ValueError(f"Layer {self.name!r}: add_loss() takes a tensor computed in call() (or a "
                                 "number), not a symbolic tensor")
            t = x if isinstance(x, Tensor) else ops.convert_to_tensor(x)
            if np.dtype(t.dtype).kind not in "biuf":
                raise TypeError(f"Layer {self.name!r}: add_loss() expects a numeric tensor, got dtype {t.dtype}")
            self.__dict__.setdefault("_losses", []).append(t)

    def _flatten_layers(self):
        """Every layer inside this one, each once (depth first)."""
        out, seen, stack = [], {id(self)}, list(reversed(self._sublayers()))
        while stack:
            l = stack.pop()
            if id(l) in seen:
                continue
            seen.add(id(l))
            out.append(l)
            stack.extend(reversed(l._sublayers()))
        return out

    def _clear_losses(self):
        self.__dict__["_losses"] = []
        for l in self._flatten_layers():
            l.__dict__["_losses"] = []

    @property
    def losses(self):
        """The scalar losses of the last call (``add_loss``, activity regularizers) of
        this layer and the layers inside it, then the penalties of the weight
        regularizers of its trainable weights, computed now (as Keras 3)."""
        out = list(self.__dict__.get("_losses", []))
        for l in self._flatten_layers():
            out.extend(l.__dict__.get("_losses", []))
        for v in self.trainable_weights:
            reg = getattr(v, "regularizer", None)
            if reg is not None:
                out.append(reg(v))
        return out

    def _regularize_activity(self, y):
        """The activity regularizer's penalty of each output, divided by the batch size
        (Keras 3)."""
        for t in (y if isinstance(y, (list, tuple)) else [y]):
            if isinstance(t, Tensor):
                pen = self.activity_regularizer(t)
                if t.ndim > 0 and t.shape[0] > 0:
                    pen = ops.divide(pen, float(t.shape[0]))
                self.add_loss(pen)

    # ------------------------------------------------------------------ weights
    def add_weight(self, *args, shape=None, initializer=None, dtype=None, trainable=True, name=None,
                   regularizer=None, constraint=None, **kw):
        """A new weight Variable. Keras 3's ``add_weight(shape, initializer, dtype,
        trainable, name=...)``; Keras 2's positional ``add_weight(name, shape, ...)`` too."""
        args = list(args)
        if args and isinstance(args[0], str):  # Keras 2 / convcore order: (name, shape, initializer, trainable)
            name = args.pop(0)
        for key in ("shape", "initializer", "trainable"):
            if args:
                v = args.pop(0)
                if key == "shape":
                    shape = v
                elif key == "initializer":
                    initializer = v
                else:
                    trainable = v
        kw.pop("aggregation", None)
        kw.pop("autocast", None)
        if kw:
            raise TypeError(f"add_weight: unexpected keyword arguments {sorted(kw)}")
        if shape is None:
            raise ValueError(f"Layer {self.name!r}: add_weight needs a shape")
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        shape = tuple(_checks.integer(f"Layer {self.name!r}: add_weight", "shape entries", s, minimum=0)
                      for s in shape)
        _checks.element_count(f"Layer {self.name!r}", shape, f"weight {name!r}")
        dt = dtype or self.dtype
        _draw_budget(self, name, shape, dt)
        value = initializers.initialize(initializers.get(initializer or "zeros"), shape, dt)
        v = Variable(value, dtype=dt, trainable=bool(trainable), name=name or f"variable_{len(self._variables)}",
                     device=self._device)
        v.path = f"{self.name}/{v.name}"
        if regularizer is not None:
            from .. import regularizers
            v.regularizer = regularizers.get(regularizer)
        if constraint is not None:
            from .. import constraints
            v.constraint = constraints.get(constraint)
        self._variables.append(v)
        return v

    @property
    def weights(self):
        """Every weight Variable of the layer and its sub-layers (creation order)."""
        out = list(self._variables)
        seen = {id(w) for w in out}
        for l in self._layers:
            for w in l.weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out

    variables = weights

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        own = [v for v in self._variables if v.trainable]
        seen = {id(w) for w in own}
        for l in self._layers:
            for w in l.trainable_weights:
                if id(w) not in seen:
                    seen.add(id(w))
                    own.append(w)
        return own

    trainable_variables = trainable_weights

    @property
    def non_trainable_weights(self):
        tw = self.trainable_weights
        return [w for w in self.weights if not any(w is t for t in tw)]

    @property
    def trainable_mask(self):
        """For each weight, whether training updates it."""
        tw = {id(w) for w in self.trainable_weights}
        return [id(w) in tw for w in self.weights]

    def get_weights(self):
        return [w.numpy().copy() for w in self.weights]

    def set_weights(self, weights):
        weights = list(weights)
        mine = self.weights
        if len(weights) != len(mine):
            raise ValueError(
                f"Layer {self.name!r} expects {len(mine)} weight arrays "
                f"({', '.join(w.name for w in mine) or 'none'}), got {len(weights)}"
            )
        for v, w in zip(mine, weights):
            w = np.asarray(w)
            if w.shape != v.shape:
                raise ValueError(f"Layer {self.name!r}: weight {v.name!r} has shape {v.shape}, got {w.shape}")
        for v, w in zip(mine, weights):
            v.assign(np.asarray(w))

    def count_params(self):
        return int(sum(w.size for w in self.weights))

    def _move_to(self, device):
        """Keep this layer's weights on ``device`` (models do this on compile)."""
        self._device = device
        for v in self._variables:
            v._move(device)
        for l in self._layers:
            l._move_to(device)

    # ------------------------------------------------------------------ shapes
    def build(self, input_shape):
        self.built = True

    def compute_output_shape(self, input_shape):
        """The output shape (without the batch axis) for ``input_shape``. The default
        runs ``call`` on one zero sample."""
        multi = isinstance(input_shape, list)
        shapes = input_shape if multi else [input_shape]
        if any(s is None for sh in shapes for s in sh):
            raise ValueError(f"Layer {self.name!r}: cannot infer the output shape of {type(self).__name__} for an "
                             f"input shape with unknown sizes {input_shape}; define compute_output_shape")
        xs = [ops.zeros((1,) + tuple(s), dtype=self.dtype, device=self._device) for s in shapes]
        with _no_tape():
            y = self._call_eager(xs if multi else xs[0], False)
        if isinstance(y, (list, tuple)):
            return [tuple(t.shape[1:]) for t in y]
        return tuple(y.shape[1:])

    def _ensure_built(self, input_shape):
        if not self.built:
            self.input_shape = input_shape
            self.build(input_shape)
            self.built = True
        out = self._symbolic_output_shape(input_shape)
        self.output_shape = out
        return out

    _PROBES = (61, 67)  # two sizes that stand for an unknown (None) one; primes above common kernels

    def _symbolic_output_shape(self, input_shape):
        """``compute_output_shape``, also for input shapes with unknown (None) sizes: a
        layer that handles None answers itself; otherwise the shape is computed for two
        concrete sizes in place of each None, and an output size that differs between
        them is unknown (None) too, one that does not is known."""
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        if not any(s is None for sh in shapes for s in sh):
            return self.compute_output_shape(input_shape)
        try:
            return self.compute_output_shape(input_shape)
        except (TypeError, ValueError, OverflowError):
            pass
        outs = []
        for p in self._PROBES:
            filled = [tuple(p if s is None else s for s in sh) for sh in shapes]
            try:
                outs.append(self.compute_output_shape(filled if isinstance(input_shape, list) else filled[0]))
            except (TypeError, ValueError) as e:
                raise ValueError(f"Layer {self.name!r} ({type(self).__name__}) cannot take inputs of shape "
                                 f"{input_shape} with unknown (None) sizes: {e}") from None

        def merge(a, b):
            return tuple(x if x == y else None for x, y in zip(a, b))
        if isinstance(outs[0], list):
            return [merge(a, b) for a, b in zip(*outs)]
        return merge(*outs)

    def _check_input(self, shape):
        """Layers declare the rank they accept through ``_input_rank`` (exact) or
        ``_min_input_rank`` (at least), both without the batch axis."""
        rank = getattr(self, "_input_rank", None)
        if rank is not None and len(shape) != rank:
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) expects inputs of rank {rank + 1} "
                f"(batch + {rank} axes), got shape {(None,) + tuple(shape)}"
            )
        low = getattr(self, "_min_input_rank", None)
        if low is not None and len(shape) < low:
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) expects inputs of rank >= {low + 1} "
                f"(batch + {low} axes), got shape {(None,) + tuple(shape)}"
            )

    # ------------------------------------------------------------------ compute
    def call(self, inputs, training=None):
        """The layer's computation on tensors, written with :mod:`convcore.ops`."""
        return inputs

    def _cast(self, x):
        """An input as a Tensor on the layer's device, in the layer's float dtype."""
        if isinstance(x, Tensor):
            if np.dtype(x.dtype).kind == "f" and x.dtype != self.dtype:
                return ops.cast(x, self.dtype)
            return x
        try:
            a = np.asarray(x)
        except (ValueError, TypeError) as e:  # ragged lists and the like
            raise ValueError(f"Layer {self.name!r}: the input could not be converted to an array: {e}") from None
        if a.dtype.kind not in "biuf":
            raise TypeError(f"Layer {self.name!r} ({type(self).__name__}) expects numeric inputs (bool, int or "
                            f"float), got dtype {a.dtype}")
        if a.dtype != np.dtype(self.dtype):
            a = a.astype(self.dtype)
        return ops.convert_to_tensor(a, device=self._device)

    def _call_eager(self, x, training, **kwargs):
        if self._call_has_training:
            return self.call(x, training=training, **kwargs)
        return self.call(x, **kwargs)

    def _forward(self, x, training, **kwargs):
        """``call`` on tensors, then the activity regularizer's loss (when there is one)."""
        y = self._call_eager(x, training, **kwargs)
        if self.__dict__.get("activity_regularizer") is not None:
            self._regularize_activity(y)
        return y

    def __call__(self, inputs, training=None, **kwargs):
        if _is_symbolic(inputs):
            return self._call_symbolic(inputs, kwargs)
        x = [self._cast(v) for v in inputs] if isinstance(inputs, (list, tuple)) else self._cast(inputs)
        shape = [tuple(v.shape[1:]) for v in x] if isinstance(x, list) else tuple(x.shape[1:])
        if not isinstance(x, list):
            self._check_input(shape)
        if not self.built:
            self.input_shape = shape
            self.build(shape)
            self.built = True
        with entry_call(self):
            return self._forward(x, training, **kwargs)

    def _call_symbolic(self, inputs, kwargs=None):
        multi = isinstance(inputs, (list, tuple))
        shapes = [t.shape[1:] for t in inputs] if multi else inputs.shape[1:]
        if not multi:
            self._check_input(shapes)
        out_shape = self._ensure_built(list(shapes) if multi else shapes)
        node = Node(self, list(inputs) if multi else [inputs], None, kwargs, multi)
        batch = (inputs[0] if multi else inputs).shape[0]
        if isinstance(out_shape, list):
            outs = [KerasTensor(s, node=node, name=f"{self.name}_{i}", batch_size=batch)
                    for i, s in enumerate(out_shape)]
            node.output, node.outputs = outs, outs
        else:
            outs = KerasTensor(out_shape, node=node, name=self.name, batch_size=batch)
            node.output, node.outputs = outs, [outs]
        self._inbound_nodes.append(node)
        return outs

    # ------------------------------------------------------------------ config
    def get_config(self):
        cfg = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self._input_shape_arg is not None:
            cfg["input_shape"] = list(self._input_shape_arg)
        if self.__dict__.get("activity_regularizer") is not None:
            from .. import regularizers
            cfg["activity_regularizer"] = regularizers.serialize(self.activity_regularizer)
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


_IN_CALL = _cv.ContextVar("convcore_in_layer_call", default=False)


class entry_call:
    """Marks the outermost layer call: it clears the losses of the call before (those
    of this layer and the layers inside it), as Keras's call context does."""

    __slots__ = ("layer", "token")

    def __init__(self, layer):
        self.layer = layer
        self.token = None

    def __enter__(self):
        if not _IN_CALL.get():
            self.layer._clear_losses()
            self.token = _IN_CALL.set(True)
        return self

    def __exit__(self, *exc):
        if self.token is not None:
            _IN_CALL.reset(self.token)
        return False


def _no_tape():
    from ..tape import stop_recording
    return stop_recording()


class InputLayer(Layer):
    """The layer behind :func:`Input`: it passes its input through. ``shape`` excludes
    the batch axis and may hold ``None`` for a size known only when data comes
    (variable-length sequences, fully convolutional networks); ``batch_shape`` includes
    it (Keras 3), as does tf.keras 2's ``batch_input_shape``."""

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None,
                 input_shape=None, batch_input_shape=None, ragged=None, optional=False, **kw):
        for flag, what in ((sparse, "sparse"), (ragged, "ragged"), (optional, "optional")):
            if flag:
                raise ValueError(f"InputLayer: {what}=True is not supported (convcore's tensors are dense), "
                                 f"received {what}={flag!r}")
        if batch_shape is None:
            batch_shape = batch_input_shape
        if shape is None:
            shape = input_shape
        if batch_shape is not None:
            if shape is not None:
                raise ValueError(f"InputLayer: give shape (without the batch axis) or batch_shape (with it), not "
                                 f"both; received shape={shape!r}, batch_shape={batch_shape!r}")
            try:
                batch_shape = tuple(batch_shape)
            except TypeError:
                raise TypeError(f"InputLayer: batch_shape must be a tuple of sizes, received {batch_shape!r}") \
                    from None
            if not batch_shape:
                raise ValueError("InputLayer: batch_shape must include the batch axis, received ()")
            batch_size, shape = batch_shape[0], batch_shape[1:]
        if shape is None:
            raise ValueError("InputLayer needs a shape (without the batch axis), e.g. shape=(28, 28, 1)")
        super().__init__(name=name, dtype=dtype, **kw)
        if isinstance(shape, (int, np.integer)):
            shape = (shape,)
        try:
            shape = tuple(shape)
        except TypeError:
            raise TypeError(f"Input: shape must be a tuple of sizes (None for a size known only with the data), "
                            f"received {shape!r}") from None
        self.shape = tuple(None if s is None else _checks.integer("Input", "shape entries", s) for s in shape)
        if any(s is not None and s < 1 for s in self.shape):
            raise ValueError(f"Input shape must contain positive sizes (or None), got {self.shape}")
        self.batch_size = None if batch_size is None else _checks.integer("Input", "batch_size", batch_size,
                                                                          minimum=1)
        self.built = True
        out = KerasTensor(self.shape, node=None, name=self.name, dtype=self.dtype, batch_size=self.batch_size)
        out.node = Node(self, [], out)
        self._inbound_nodes.append(out.node)
        self.input_shape = self.output_shape = self.shape

    @property
    def batch_shape(self):
        return (self.batch_size,) + self.shape

    def get_config(self):
        return {"batch_shape": list(self.batch_shape), "dtype": self.dtype, "sparse": False, "name": self.name}


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None, tensor=None,
          optional=False):
    """A symbolic input, as ``keras.Input``: ``shape`` without the batch axis (``None``
    for sizes known only when data comes), or ``batch_shape`` with it."""
    if tensor is not None:
        raise ValueError("Input: tensor= (wrapping an existing tensor) is not supported; give shape=")
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=sparse, batch_shape=batch_shape,
                      name=name, optional=optional).output
