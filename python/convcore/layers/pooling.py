"""Pooling layers (local max/average, and global)."""
from __future__ import annotations

import numpy as np

from .. import _core, ops
from .conv import _padding, _tuple
from .core import Layer


class _Pool(Layer):
    rank = 2
    kind = "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", **kw):
        super().__init__(**kw)
        cls = type(self).__name__
        self.pool_size = _tuple("pool_size", pool_size, self.rank, cls)
        self.strides = self.pool_size if strides is None else _tuple("strides", strides, self.rank, cls)
        self.padding = _padding(padding, cls)
        self._input_rank = self.rank + 1

    def compute_output_shape(self, input_shape):
        out = _core.pool_out_spatial(list(input_shape[:-1]), list(self.pool_size), list(self.strides), self.padding)
        return tuple(out) + (input_shape[-1],)

    def call(self, inputs, training=None):
        f = ops.max_pool if self.kind == "max" else ops.average_pool
        return f(inputs, self.pool_size, self.strides, self.padding)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "strides": list(self.strides),
                "padding": self.padding}


class MaxPooling1D(_Pool):
    rank, kind = 1, "max"


class MaxPooling2D(_Pool):
    rank, kind = 2, "max"


class MaxPooling3D(_Pool):
    rank, kind = 3, "max"


class AveragePooling1D(_Pool):
    rank, kind = 1, "avg"


class AveragePooling2D(_Pool):
    rank, kind = 2, "avg"


class AveragePooling3D(_Pool):
    rank, kind = 3, "avg"


class _GlobalPool(Layer):
    rank = 2
    kind = "avg"

    def __init__(self, **kw):
        super().__init__(**kw)
        self._input_rank = self.rank + 1

    def compute_output_shape(self, input_shape):
        return (input_shape[-1],)

    def call(self, inputs, training=None):
        return ops.global_pool(self.kind, inputs)


class GlobalAveragePooling1D(_GlobalPool):
    rank, kind = 1, "avg"


class GlobalAveragePooling2D(_GlobalPool):
    rank, kind = 2, "avg"


class GlobalAveragePooling3D(_GlobalPool):
    rank, kind = 3, "avg"


class GlobalMaxPooling1D(_GlobalPool):
    rank, kind = 1, "max"


class GlobalMaxPooling2D(_GlobalPool):
    rank, kind = 2, "max"


class GlobalMaxPooling3D(_GlobalPool):
    rank, kind = 3, "max"


__all__ = ["MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
           "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
           "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D"]
