"""Pooling layers as Keras 3's: local max / average pooling over 1 to 3 spatial axes
(``MaxPooling2D``, ...), global pooling (``GlobalAveragePooling2D``, ... with
``keepdims``) and adaptive pooling to a fixed output size (``AdaptiveMaxPooling2D``, ...),
with Keras's aliases (``MaxPool2D``, ``AvgPool2D``, ``GlobalMaxPool2D``,
``GlobalAvgPool2D``, ...). Channels-last only. 'same' padding is Keras 3's (TensorFlow's):
``ceil(n / strides)`` outputs, the padding split with its smaller half first, and padded
cells neither win a max nor count in an average."""
from __future__ import annotations

import numpy as np

from .. import _core, ops
from .conv import _data_format, _padding, _tuple
from .core import Layer


class _Pool(Layer):
    rank = 2
    kind = "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, name=None, **kw):
        super().__init__(name=name, **kw)  # (Keras 3 takes name as the fifth positional argument)
        cls = type(self).__name__
        self.pool_size = _tuple("pool_size", pool_size, self.rank, cls)
        self.strides = self.pool_size if strides is None else _tuple("strides", strides, self.rank, cls)
        self.padding = _padding(padding, cls)
        self.data_format = _data_format(data_format, cls)
        self._input_rank = self.rank + 1

    def compute_output_shape(self, input_shape):
        out = []
        for n, p, s in zip(input_shape[:-1], self.pool_size, self.strides):
            if n is None:
                out.append(None)
            elif self.padding == "valid" and n < p:
                raise ValueError(f"{type(self).__name__}: the input's spatial size {n} is smaller than pool_size "
                                 f"{self.pool_size} with padding='valid'; received input_shape={tuple(input_shape)}")
            else:
                out.append(_core.pool_out_spatial([n], [p], [s], self.padding)[0])
        return tuple(out) + (input_shape[-1],)

    def call(self, inputs, training=None):
        f = ops.max_pool if self.kind == "max" else ops.average_pool
        return f(inputs, self.pool_size, self.strides, self.padding)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "padding": self.padding,
                "strides": list(self.strides), "data_format": self.data_format}


class MaxPooling1D(_Pool):
    """Max over windows of ``pool_size`` steps of (batch, steps, channels), as
    ``keras.layers.MaxPooling1D`` (``strides`` defaults to ``pool_size``)."""
    rank, kind = 1, "max"


class MaxPooling2D(_Pool):
    """Max over ``pool_size`` windows of (batch, height, width, channels), as
    ``keras.layers.MaxPooling2D``; the gradient goes to the first maximum of a window."""
    rank, kind = 2, "max"


class MaxPooling3D(_Pool):
    """Max over ``pool_size`` windows of (batch, depth, height, width, channels), as
    ``keras.layers.MaxPooling3D``."""
    rank, kind = 3, "max"


class AveragePooling1D(_Pool):
    """Mean over windows of ``pool_size`` steps, as ``keras.layers.AveragePooling1D``
    (tf.keras 2's default ``pool_size=2`` is kept; Keras 3 requires it)."""
    rank, kind = 1, "avg"


class AveragePooling2D(_Pool):
    """Mean over ``pool_size`` windows, as ``keras.layers.AveragePooling2D`` ('same':
    padded cells are not counted)."""
    rank, kind = 2, "avg"


class AveragePooling3D(_Pool):
    """Mean over ``pool_size`` windows of 3-D volumes, as ``keras.layers.AveragePooling3D``."""
    rank, kind = 3, "avg"


class _GlobalPool(Layer):
    rank = 2
    kind = "avg"

    def __init__(self, data_format=None, keepdims=False, **kw):
        super().__init__(**kw)
        cls = type(self).__name__
        self.data_format = _data_format(data_format, cls)
        if not isinstance(keepdims, bool):
            raise TypeError(f"{cls}: keepdims must be True or False, received keepdims={keepdims!r}")
        self.keepdims = keepdims
        self._input_rank = self.rank + 1

    def compute_output_shape(self, input_shape):
        return ((1,) * self.rank if self.keepdims else ()) + (input_shape[-1],)

    def call(self, inputs, training=None):
        y = ops.global_pool(self.kind, inputs)
        if self.keepdims:
            y = ops.reshape(y, (y.shape[0],) + (1,) * self.rank + (y.shape[-1],))
        return y

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPool):
    """Mean over the steps of (batch, steps, channels), as
    ``keras.layers.GlobalAveragePooling1D``: (batch, channels), or (batch, 1, channels)
    with ``keepdims=True``. (Keras's ``mask`` argument of call is not supported.)"""
    rank, kind = 1, "avg"


class GlobalAveragePooling2D(_GlobalPool):
    """Mean over height and width, as ``keras.layers.GlobalAveragePooling2D``."""
    rank, kind = 2, "avg"


class GlobalAveragePooling3D(_GlobalPool):
    """Mean over depth, height and width, as ``keras.layers.GlobalAveragePooling3D``."""
    rank, kind = 3, "avg"


class GlobalMaxPooling1D(_GlobalPool):
    """Max over the steps, as ``keras.layers.GlobalMaxPooling1D``; the gradient is shared
    evenly among tied maxima."""
    rank, kind = 1, "max"


class GlobalMaxPooling2D(_GlobalPool):
    """Max over height and width, as ``keras.layers.GlobalMaxPooling2D``."""
    rank, kind = 2, "max"


class GlobalMaxPooling3D(_GlobalPool):
    """Max over depth, height and width, as ``keras.layers.GlobalMaxPooling3D``."""
    rank, kind = 3, "max"


class _AdaptivePool(Layer):
    rank = 2
    kind = "avg"

    def __init__(self, output_size, data_format=None, **kw):
        super().__init__(**kw)
        cls = type(self).__name__
        one = isinstance(output_size, (int, np.integer)) and not isinstance(output_size, bool)
        vals = (output_size,) * self.rank if one else output_size
        if (not isinstance(vals, (tuple, list)) or len(vals) != self.rank
                or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1 for v in vals)):
            raise TypeError(f"{cls}: output_size must be a positive integer or a tuple of {self.rank} positive "
                            f"integers, received output_size={output_size!r}")
        self.output_size = tuple(int(v) for v in vals)
        self.data_format = _data_format(data_format, cls)
        self._input_rank = self.rank + 1

    def compute_output_shape(self, input_shape):
        return self.output_size + (input_shape[-1],)

    def call(self, inputs, training=None):
        f = ops.nn.adaptive_max_pool if self.kind == "max" else ops.nn.adaptive_average_pool
        return f(inputs, self.output_size)

    def get_config(self):
        return {**super().get_config(), "output_size": list(self.output_size), "data_format": self.data_format}


class AdaptiveAveragePooling1D(_AdaptivePool):
    """Average pooling to a fixed number of steps, as
    ``keras.layers.AdaptiveAveragePooling1D``: output step ``i`` of ``o`` averages input
    steps ``[floor(i * n / o), ceil((i + 1) * n / o))`` (windows overlap where ``o`` does
    not divide ``n``)."""
    rank, kind = 1, "avg"


class AdaptiveAveragePooling2D(_AdaptivePool):
    """Average pooling to a fixed (height, width), as
    ``keras.layers.AdaptiveAveragePooling2D`` (PyTorch's windows)."""
    rank, kind = 2, "avg"


class AdaptiveAveragePooling3D(_AdaptivePool):
    """Average pooling to a fixed (depth, height, width), as
    ``keras.layers.AdaptiveAveragePooling3D``."""
    rank, kind = 3, "avg"


class AdaptiveMaxPooling1D(_AdaptivePool):
    """Max pooling to a fixed number of steps, as ``keras.layers.AdaptiveMaxPooling1D``
    (the windows of :class:`AdaptiveAveragePooling1D`)."""
    rank, kind = 1, "max"


class AdaptiveMaxPooling2D(_AdaptivePool):
    """Max pooling to a fixed (height, width), as ``keras.layers.AdaptiveMaxPooling2D``."""
    rank, kind = 2, "max"


class AdaptiveMaxPooling3D(_AdaptivePool):
    """Max pooling to a fixed (depth, height, width), as
    ``keras.layers.AdaptiveMaxPooling3D``."""
    rank, kind = 3, "max"


# Keras's aliases are the same classes.
MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = GlobalMaxPooling1D, GlobalMaxPooling2D, GlobalMaxPooling3D
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (GlobalAveragePooling1D, GlobalAveragePooling2D,
                                                     GlobalAveragePooling3D)

__all__ = ["MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
           "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
           "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
           "MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D", "AvgPool2D", "AvgPool3D",
           "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D", "GlobalAvgPool1D", "GlobalAvgPool2D",
           "GlobalAvgPool3D", "AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D",
           "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D"]
