"""Convolution layers as Keras 3's: ``Conv1D/2D/3D`` (with ``groups`` and Conv1D's
``padding='causal'``), ``Conv1D/2D/3DTranspose``, ``DepthwiseConv1D/2D`` and
``SeparableConv1D/2D``, with Keras's aliases (``Convolution2D`` is ``Conv2D``, ...).
Channels-last only. Each layer is build / call / compute_output_shape / get_config over
:mod:`convcore.ops` (the tape differentiates them); weights have Keras's names, shapes
and order, so ``set_weights(keras_layer.get_weights())`` carries a Keras layer over."""
from __future__ import annotations

import numpy as np

from .. import _core, activations, initializers, ops
from ._weights import constraint_get as _con_get, constraint_save as _con_save
from ._weights import regularizer_get as _reg_get, regularizer_save as _reg_save
from ..ops.nn import _conv_transpose_shape
from .basic import _activate
from .core import InputSpecError, Layer


# ------------------------------------------------------------------ argument checks
def _tuple(name, v, rank, layer):
    try:
        vals = (v,) * rank if isinstance(v, (int, np.integer)) else tuple(v)
    except TypeError:  # None, a float: not a tuple of ints either
        vals = ()
    if len(vals) != rank or any(isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1 for t in vals):
        raise ValueError(f"{layer}: {name} must be a positive int or a tuple of {rank} positive ints, got {v!r}")
    return tuple(int(t) for t in vals)


def _padding(p, layer, causal=False):
    valid = ("valid", "same", "causal") if causal else ("valid", "same")
    if not isinstance(p, str) or p.lower() not in valid:
        raise ValueError(f"{layer}: padding must be one of {', '.join(repr(v) for v in valid)}, got {p!r}")
    return p.lower()


def _data_format(v, layer):
    """Keras's ``data_format``: None and 'channels_last' are accepted; convcore computes
    channels-last only, so 'channels_first' is a clear error, not a silent transpose."""
    if v is None or v == "channels_last":
        return "channels_last"
    if v == "channels_first":
        raise ValueError(f"{layer}: data_format='channels_first' is not supported; convcore layers are "
                         f"channels_last only (inputs (batch, *spatial, channels)); received data_format={v!r}")
    raise ValueError(f"{layer}: data_format must be 'channels_last' (or None), received data_format={v!r}")


def _positive(name, v, layer):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{layer}: {name} must be a positive integer, received {name}={v!r}")
    return int(v)


def _spatial_out(input_shape, layer, kernel_size, strides, dilation_rate, padding):
    """Output spatial sizes of a convolution over inputs of ``input_shape`` (batch axis
    excluded, channels last); None stays None."""
    out = []
    for n, k, s, d in zip(input_shape[:-1], kernel_size, strides, dilation_rate):
        if n is None:
            out.append(None)
            continue
        if padding == "causal":
            n, pad = n + (k - 1) * d, "valid"
        else:
            pad = padding
        ke = (k - 1) * d + 1
        if pad == "valid" and n < ke:
            raise ValueError(f"{layer}: the (dilated) kernel size {ke} is larger than the input's spatial size {n}; "
                             f"received input_shape={tuple(input_shape)}, kernel_size={kernel_size}, "
                             f"dilation_rate={dilation_rate}, padding={padding!r}")
        out.append(_core.conv_out_spatial([n], [k], [s], [d], pad)[0])
    return tuple(out)


# ------------------------------------------------------------------ shared base
class _BaseConv(Layer):
    """What every convolution layer shares: window arguments, activation, bias and its
    regularizer / constraint, ``activity_regularizer`` (the base Layer applies it)."""

    rank = 2
    _causal_ok = False

    def _window_args(self, kernel_size, strides, padding, data_format, dilation_rate):
        cls = type(self).__name__
        self.kernel_size = _tuple("kernel_size", kernel_size, self.rank, cls)
        self.strides = _tuple("strides", strides, self.rank, cls)
        self.padding = _padding(padding, cls, causal=self._causal_ok)
        self.data_format = _data_format(data_format, cls)
        self.dilation_rate = _tuple("dilation_rate", dilation_rate, self.rank, cls)
        self._input_rank = self.rank + 1

    def _bias_args(self, activation, use_bias, bias_initializer, bias_regularizer, bias_constraint):
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self._weight_args("bias", bias_initializer, bias_regularizer, bias_constraint)

    def _weight_args(self, prefix, initializer, regularizer, constraint):
        # Resolved with each module's ``get`` at construction (a bad name fails there), as Keras.
        setattr(self, prefix + "_initializer", initializers.get(initializer))
        setattr(self, prefix + "_regularizer", _reg_get(regularizer))
        setattr(self, prefix + "_constraint", _con_get(constraint))

    def _add_weight_of(self, prefix, name, shape):
        """The weight ``name`` with the initializer, regularizer and constraint ``prefix_*``."""
        return self.add_weight(name=name, shape=shape, initializer=getattr(self, prefix + "_initializer"),
                               regularizer=getattr(self, prefix + "_regularizer"),
                               constraint=getattr(self, prefix + "_constraint"))

    def _add_bias(self, units):
        self.bias = self._add_weight_of("bias", "bias", (units,)) if self.use_bias else None

    def _in_channels(self, input_shape):
        c = input_shape[-1]
        if c is None:
            raise ValueError(f"{type(self).__name__}: the channel axis (last) of the inputs must be known, received "
                             f"input_shape={tuple(input_shape)}")
        self._channels = int(c)
        return int(c)

    def _check_input(self, shape):
        # Keras's InputSpec: once built, the channel axis is fixed (without this, a
        # kernel for C channels would read 2C channels as a grouped convolution).
        super()._check_input(shape)
        c = self.__dict__.get("_channels")
        if self.built and c is not None and len(shape) and shape[-1] is not None and shape[-1] != c:
            raise InputSpecError(f"Layer {self.name!r} ({type(self).__name__}) expects axis -1 of its inputs to have "
                                 f"value {c} (it was built for {c} channels), received input shape "
                                 f"{(None,) + tuple(shape)}")

    def _finish(self, y):
        """Bias and activation after a convolution that did not fuse them."""
        if self.bias is not None:
            y = ops.add(y, self.bias)
        return _activate(self.activation, y)

    def _base_config(self):
        cfg = super().get_config()
        cfg.setdefault("activity_regularizer", None)
        return cfg

    def _window_config(self):
        return {"kernel_size": list(self.kernel_size), "strides": list(self.strides), "padding": self.padding,
                "data_format": self.data_format, "dilation_rate": list(self.dilation_rate)}

    def _weight_config(self, prefix):
        return {prefix + "_initializer": initializers.serialize(getattr(self, prefix + "_initializer")),
                prefix + "_regularizer": _reg_save(getattr(self, prefix + "_regularizer")),
                prefix + "_constraint": _con_save(getattr(self, prefix + "_constraint"))}

    def _bias_config(self):
        return {"activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                **self._weight_config("bias")}


def _with_activity(kw, activity_regularizer):
    # The base Layer applies (and saves) the activity regularizer.
    return {**kw, "activity_regularizer": activity_regularizer}


# ------------------------------------------------------------------ Conv1D / 2D / 3D
class _Conv(_BaseConv):
    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kw):
        super().__init__(**_with_activity(kw, activity_regularizer))
        cls = type(self).__name__
        self.filters = _positive("filters", filters, cls)
        self.groups = _positive("groups", groups, cls)
        if self.filters % self.groups:
            raise ValueError(f"{cls}: the number of filters must be evenly divisible by the number of groups, "
                             f"received groups={self.groups}, filters={self.filters}")
        self._window_args(kernel_size, strides, padding, data_format, dilation_rate)
        self._bias_args(activation, use_bias, bias_initializer, bias_regularizer, bias_constraint)
        self._weight_args("kernel", kernel_initializer, kernel_regularizer, kernel_constraint)

    def build(self, input_shape):
        c_in = self._in_channels(input_shape)
        if c_in % self.groups:
            raise ValueError(f"{type(self).__name__}: the number of input channels must be evenly divisible by the "
                             f"number of groups, received groups={self.groups}, but the input has {c_in} channels "
                             f"(input_shape={(None,) + tuple(input_shape)})")
        self.kernel = self._add_weight_of("kernel", "kernel", self.kernel_size + (c_in // self.groups, self.filters))
        self._add_bias(self.filters)
        self.built = True

    def compute_output_shape(self, input_shape):
        return _spatial_out(input_shape, type(self).__name__, self.kernel_size, self.strides,
                            self.dilation_rate, self.padding) + (self.filters,)

    def convolution_op(self, inputs, kernel):
        """``ops.conv(inputs, kernel)`` with the layer's window arguments, as Keras's
        ``BaseConv.convolution_op``: a subclass may override it (weight standardization,
        say); the layer then adds the bias and applies the activation after it."""
        return ops.conv(inputs, kernel, self.strides, self.padding, None, self.dilation_rate)

    def call(self, inputs, training=None):
        if type(self).convolution_op is not _Conv.convolution_op and self.padding != "causal":
            return self._finish(self.convolution_op(inputs, self.kernel))
        x, padding = inputs, self.padding
        if padding == "causal":  # left-pad the steps so output t sees inputs <= t only (as Keras's Conv1D.call)
            x = ops.pad(x, [(0, 0), ((self.kernel_size[0] - 1) * self.dilation_rate[0], 0), (0, 0)])
            padding = "valid"
        # the fused kernel: conv + bias + activation in one op
        act = self.activation
        fused = act if isinstance(act, str) and act in activations.NATIVE else "linear"
        y = ops.conv_bias_activation(x, self.kernel, self.bias, self.strides, padding, self.dilation_rate, fused)
        return y if fused == act else _activate(act, y)

    def get_config(self):
        return {**self._base_config(), "filters": self.filters, **self._window_config(), "groups": self.groups,
                **self._bias_config(), **self._weight_config("kernel")}


class Conv1D(_Conv):
    """1-D convolution over (batch, steps, channels), as ``keras.layers.Conv1D``:
    ``activation(conv1d(x, kernel) + bias)`` with a kernel (k, C_in / groups, filters).
    ``padding='causal'`` left-pads the steps by ``(k - 1) * dilation_rate``."""
    rank = 1
    _causal_ok = True


class Conv2D(_Conv):
    """2-D convolution over (batch, height, width, channels), as ``keras.layers.Conv2D``:
    ``activation(conv2d(x, kernel) + bias)`` with a kernel (kh, kw, C_in / groups,
    filters); ``groups > 1`` convolves each group of channels with its own filters."""
    rank = 2


class Conv3D(_Conv):
    """3-D convolution over (batch, depth, height, width, channels), as
    ``keras.layers.Conv3D``, with a kernel (kd, kh, kw, C_in / groups, filters)."""
    rank = 3


# ------------------------------------------------------------------ transposed convolutions
class _ConvTranspose(_BaseConv):
    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kw):
        super().__init__(**_with_activity(kw, activity_regularizer))
        cls = type(self).__name__
        self.filters = _positive("filters", filters, cls)
        self._window_args(kernel_size, strides, padding, data_format, dilation_rate)
        if output_padding is None:
            self.output_padding = None
        else:
            vals = (output_padding,) * self.rank if isinstance(output_padding, (int, np.integer)) else output_padding
            try:
                vals = tuple(vals)
            except TypeError:
                vals = ()
            if len(vals) != self.rank or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0
                                             for v in vals):
                raise ValueError(f"{cls}: output_padding must be None, a non-negative int or a tuple of {self.rank} "
                                 f"of them, received output_padding={output_padding!r}")
            self.output_padding = tuple(int(v) for v in vals)
            if any(p >= s for p, s in zip(self.output_padding, self.strides)):
                raise ValueError(f"{cls}: output_padding must be smaller than strides, received "
                                 f"output_padding={self.output_padding}, strides={self.strides}")
        self._bias_args(activation, use_bias, bias_initializer, bias_regularizer, bias_constraint)
        self._weight_args("kernel", kernel_initializer, kernel_regularizer, kernel_constraint)

    def build(self, input_shape):
        c_in = self._in_channels(input_shape)
        self.kernel = self._add_weight_of("kernel", "kernel", self.kernel_size + (self.filters, c_in))
        self._add_bias(self.filters)
        self.built = True

    def compute_output_shape(self, input_shape):
        out = []
        for i, n in enumerate(input_shape[:-1]):
            if n is None:
                out.append(None)
                continue
            op = None if self.output_padding is None else [self.output_padding[i]]
            out.append(_conv_transpose_shape([n], [self.kernel_size[i]], [self.strides[i]], [self.dilation_rate[i]],
                                             self.padding, op)[0])
        return tuple(out) + (self.filters,)

    def call(self, inputs, training=None):
        y = ops.conv_transpose(inputs, self.kernel, self.strides, self.padding, self.output_padding, None,
                               self.dilation_rate)
        return self._finish(y)

    def get_config(self):
        return {**self._base_config(), "filters": self.filters, **self._window_config(),
                "output_padding": None if self.output_padding is None else list(self.output_padding),
                **self._bias_config(), **self._weight_config("kernel")}


class Conv1DTranspose(_ConvTranspose):
    """Transposed 1-D convolution, as ``keras.layers.Conv1DTranspose``: the adjoint of a
    Conv1D with kernel (k, filters, C_in); output steps ``(n - 1) * strides +
    max(k, strides)`` ('valid') or ``n * strides`` ('same'), plus ``output_padding``."""
    rank = 1


class Conv2DTranspose(_ConvTranspose):
    """Transposed 2-D convolution ("deconvolution"), as ``keras.layers.Conv2DTranspose``:
    kernel (kh, kw, filters, C_in), Keras's output shapes and alignment."""
    rank = 2


class Conv3DTranspose(_ConvTranspose):
    """Transposed 3-D convolution, as ``keras.layers.Conv3DTranspose``: kernel
    (kd, kh, kw, filters, C_in)."""
    rank = 3

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, output_padding=None,
                 dilation_rate=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kw):
        # (Keras 3 orders data_format before output_padding here, unlike 1-D and 2-D)
        super().__init__(filters, kernel_size, strides, padding, output_padding, data_format, dilation_rate,
                         activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                         bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint, **kw)


# ------------------------------------------------------------------ depthwise and separable
class _DepthwiseConv(_BaseConv):
    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, **kw):
        super().__init__(**_with_activity(kw, activity_regularizer))
        self.depth_multiplier = _positive("depth_multiplier", depth_multiplier, type(self).__name__)
        self._window_args(kernel_size, strides, padding, data_format, dilation_rate)
        self._bias_args(activation, use_bias, bias_initializer, bias_regularizer, bias_constraint)
        self._weight_args("depthwise", depthwise_initializer, depthwise_regularizer, depthwise_constraint)

    def build(self, input_shape):
        c_in = self._in_channels(input_shape)
        self.kernel = self._add_weight_of("depthwise", "kernel", self.kernel_size + (c_in, self.depth_multiplier))
        self._add_bias(c_in * self.depth_multiplier)
        self.built = True

    @property
    def depthwise_kernel(self):
        """tf.keras 2's name of the kernel (Keras 3 calls it ``kernel``)."""
        return self.kernel

    def compute_output_shape(self, input_shape):
        c = input_shape[-1]
        return _spatial_out(input_shape, type(self).__name__, self.kernel_size, self.strides,
                            self.dilation_rate, self.padding) + (None if c is None else c * self.depth_multiplier,)

    def call(self, inputs, training=None):
        return self._finish(ops.depthwise_conv(inputs, self.kernel, self.strides, self.padding, None,
                                               self.dilation_rate))

    def get_config(self):
        return {**self._base_config(), "depth_multiplier": self.depth_multiplier, **self._window_config(),
                **self._bias_config(), **self._weight_config("depthwise")}


class DepthwiseConv1D(_DepthwiseConv):
    """Depthwise 1-D convolution, as ``keras.layers.DepthwiseConv1D``: each input channel
    convolved with its own ``depth_multiplier`` filters (kernel (k, C_in, M)); output
    channel ``c * M + m`` comes from input channel ``c``."""
    rank = 1


class DepthwiseConv2D(_DepthwiseConv):
    """Depthwise 2-D convolution, as ``keras.layers.DepthwiseConv2D``: kernel
    (kh, kw, C_in, depth_multiplier), C_in * depth_multiplier output channels."""
    rank = 2


class _SeparableConv(_BaseConv):
    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 depth_multiplier=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None, **kw):
        super().__init__(**_with_activity(kw, activity_regularizer))
        cls = type(self).__name__
        self.filters = _positive("filters", filters, cls)
        self.depth_multiplier = _positive("depth_multiplier", depth_multiplier, cls)
        self._window_args(kernel_size, strides, padding, data_format, dilation_rate)
        self._bias_args(activation, use_bias, bias_initializer, bias_regularizer, bias_constraint)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.depthwise_regularizer = _reg_get(depthwise_regularizer)
        self.pointwise_regularizer = _reg_get(pointwise_regularizer)
        self.depthwise_constraint = _con_get(depthwise_constraint)
        self.pointwise_constraint = _con_get(pointwise_constraint)

    def build(self, input_shape):
        c_in = self._in_channels(input_shape)
        m = self.depth_multiplier
        self.depthwise_kernel = self._add_weight_of("depthwise", "depthwise_kernel", self.kernel_size + (c_in, m))
        self.pointwise_kernel = self._add_weight_of("pointwise", "pointwise_kernel",
                                                    (1,) * self.rank + (c_in * m, self.filters))
        self._add_bias(self.filters)
        self.built = True

    def compute_output_shape(self, input_shape):
        return _spatial_out(input_shape, type(self).__name__, self.kernel_size, self.strides,
                            self.dilation_rate, self.padding) + (self.filters,)

    def call(self, inputs, training=None):
        z = ops.depthwise_conv(inputs, self.depthwise_kernel, self.strides, self.padding, None, self.dilation_rate)
        act = self.activation
        fused = act if isinstance(act, str) and act in activations.NATIVE else "linear"
        y = ops.conv_bias_activation(z, self.pointwise_kernel, self.bias, 1, "valid", 1, fused)
        return y if fused == act else _activate(act, y)

    def get_config(self):
        return {**self._base_config(), "depth_multiplier": self.depth_multiplier, "filters": self.filters,
                **self._window_config(), **self._bias_config(),
                "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
                "pointwise_initializer": initializers.serialize(self.pointwise_initializer),
                "depthwise_regularizer": _reg_save(self.depthwise_regularizer),
                "pointwise_regularizer": _reg_save(self.pointwise_regularizer),
                "depthwise_constraint": _con_save(self.depthwise_constraint),
                "pointwise_constraint": _con_save(self.pointwise_constraint)}


class SeparableConv1D(_SeparableConv):
    """Depthwise-separable 1-D convolution, as ``keras.layers.SeparableConv1D``: a
    depthwise convolution (kernel (k, C_in, depth_multiplier), with the strides and
    dilation) then a pointwise one (kernel (1, C_in * depth_multiplier, filters)) + bias."""
    rank = 1


class SeparableConv2D(_SeparableConv):
    """Depthwise-separable 2-D convolution, as ``keras.layers.SeparableConv2D``: depthwise
    kernel (kh, kw, C_in, depth_multiplier), pointwise kernel (1, 1, C_in * M, filters)."""
    rank = 2


# Keras's aliases are the same classes.
Convolution1D, Convolution2D, Convolution3D = Conv1D, Conv2D, Conv3D
Convolution1DTranspose, Convolution2DTranspose, Convolution3DTranspose = (Conv1DTranspose, Conv2DTranspose,
                                                                          Conv3DTranspose)
SeparableConvolution1D, SeparableConvolution2D = SeparableConv1D, SeparableConv2D

__all__ = ["Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
           "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
           "Convolution1D", "Convolution2D", "Convolution3D", "Convolution1DTranspose", "Convolution2DTranspose",
           "Convolution3DTranspose", "SeparableConvolution1D", "SeparableConvolution2D"]
