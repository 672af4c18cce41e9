"""Layers merging several inputs (residual connections)."""
from __future__ import annotations

import numpy as np

from .. import _ops
from ..device import is_gpu
from .core import Layer


class Add(Layer):
    """Elementwise sum of inputs of one shape."""

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        if len(shapes) < 2 or any(s != shapes[0] for s in shapes):
            raise ValueError(f"Add {self.name!r} needs at least two inputs of the same shape, got {shapes}")
        return shapes[0]

    def forward(self, xs, training=False):
        return _ops.add_all(xs), len(xs)

    def backward(self, cache, dy, need_dx=True):
        return [dy] * cache, []


class Concatenate(Layer):
    """Concatenate inputs along ``axis`` (default: channels)."""

    def __init__(self, axis=-1, **kw):
        super().__init__(**kw)
        self.axis = int(axis)

    def _axis(self, ndim):
        return self.axis % ndim if self.axis < 0 else self.axis - 1

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        if len(shapes) < 2:
            raise ValueError(f"Concatenate {self.name!r} needs at least two inputs, got {len(shapes)}")
        ax = self._axis(len(shapes[0]))
        for s in shapes:
            if len(s) != len(shapes[0]) or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0])) if i != ax):
                raise ValueError(f"Concatenate {self.name!r}: shapes {shapes} differ off axis {self.axis}")
        out = list(shapes[0])
        out[ax] = sum(s[ax] for s in shapes)
        return tuple(out)

    def forward(self, xs, training=False):
        ax = self._axis(xs[0].ndim - 1) + 1
        if is_gpu(xs[0]):
            if ax != xs[0].ndim - 1:
                raise ValueError(f"Concatenate {self.name!r}: on the GPU only the last axis is supported, got axis={self.axis}")
            return _ops.concat_last(xs), (ax, [x.shape[ax] for x in xs])
        return np.concatenate(xs, axis=ax), (ax, [x.shape[ax] for x in xs])

    def backward(self, cache, dy, need_dx=True):
        ax, sizes = cache
        if is_gpu(dy):
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            return [_ops.slice_last(dy, int(s), int(w)) for s, w in zip(starts, sizes)], []
        return np.split(dy, np.cumsum(sizes)[:-1], axis=ax), []

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
