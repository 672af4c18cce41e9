"""Convolution layers (cross-correlation summed over input channels, plus bias), as
``keras.layers.Conv1D/2D/3D``."""
from __future__ import annotations

import numpy as np

from .. import _core, activations, initializers, ops
from .basic import _activate, _init_name
from .core import Layer


def _tuple(name, v, rank, layer):
    vals = (v,) * rank if isinstance(v, (int, np.integer)) else tuple(v)
    if len(vals) != rank or any(isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1 for t in vals):
        raise ValueError(f"{layer}: {name} must be a positive int or a tuple of {rank} positive ints, got {v!r}")
    return tuple(int(t) for t in vals)


def _padding(p, layer):
    if not isinstance(p, str) or p.lower() not in ("valid", "same"):
        raise ValueError(f"{layer}: padding must be 'valid' or 'same', got {p!r}")
    return p.lower()


class _Conv(Layer):
    rank = 2

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation_rate=1, activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros", **kw):
        super().__init__(**kw)
        cls = type(self).__name__
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters < 1:
            raise ValueError(f"{cls}: filters must be a positive integer, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = _tuple("kernel_size", kernel_size, self.rank, cls)
        self.strides = _tuple("strides", strides, self.rank, cls)
        self.dilation_rate = _tuple("dilation_rate", dilation_rate, self.rank, cls)
        self.padding = _padding(padding, cls)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self._input_rank = self.rank + 1

    def build(self, input_shape):
        c_in = input_shape[-1]
        self.kernel = self.add_weight("kernel", self.kernel_size + (c_in, self.filters), self.kernel_initializer)
        self.bias = self.add_weight("bias", (self.filters,), self.bias_initializer) if self.use_bias else None
        self.built = True

    def compute_output_shape(self, input_shape):
        out = _core.conv_out_spatial(list(input_shape[:-1]), list(self.kernel_size), list(self.strides),
                                     list(self.dilation_rate), self.padding)
        return tuple(out) + (self.filters,)

    def call(self, inputs, training=None):
        act = self.activation
        fused = act if isinstance(act, str) and act in activations.NATIVE else "linear"
        y = ops.conv_bias_activation(inputs, self.kernel, self.bias, self.strides, self.padding,
                                     self.dilation_rate, fused)
        return y if fused == act else _activate(act, y)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding, "dilation_rate": list(self.dilation_rate),
                "activation": activations.serialize(self.activation), "use_bias": self.use_bias,
                "kernel_initializer": _init_name(self.kernel_initializer),
                "bias_initializer": _init_name(self.bias_initializer)}


class Conv1D(_Conv):
    """1-D convolution over (batch, steps, channels)."""
    rank = 1


class Conv2D(_Conv):
    """2-D convolution over (batch, height, width, channels)."""
    rank = 2


class Conv3D(_Conv):
    """3-D convolution over (batch, depth, height, width, channels)."""
    rank = 3


__all__ = ["Conv1D", "Conv2D", "Conv3D"]
