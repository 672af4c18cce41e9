"""Layers merging several inputs (residual connections)."""
from __future__ import annotations

from .. import _checks, ops
from .core import Layer


class Add(Layer):
    """Elementwise sum of two or more inputs, as ``keras.layers.Add``: one rank, and on
    each axis the sizes agree or are 1 (broadcast)."""

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        if len(shapes) < 2 or any(len(s) != len(shapes[0]) for s in shapes):
            raise ValueError(f"Add {self.name!r} needs at least two inputs of one rank, got {shapes}")
        out = []
        for sizes in zip(*shapes):
            big = {n for n in sizes if n != 1}
            if len(big) > 1 or None in big:
                raise ValueError(f"Add {self.name!r}: input shapes {shapes} are not compatible (each axis needs "
                                 "equal sizes or 1)")
            out.append(big.pop() if big else 1)
        return tuple(out)

    def call(self, inputs, training=None):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError(f"Add {self.name!r} needs a list of at least two inputs, got "
                             f"{len(inputs) if isinstance(inputs, (list, tuple)) else type(inputs).__name__}")
        self.compute_output_shape([tuple(x.shape[1:]) for x in inputs])
        out = inputs[0]
        for x in inputs[1:]:
            out = ops.add(out, x)
        return out


class Concatenate(Layer):
    """Concatenate inputs along ``axis`` (default: channels)."""

    def __init__(self, axis=-1, **kw):
        super().__init__(**kw)
        self.axis = _checks.integer("Concatenate", "axis", axis)

    def _axis(self, ndim):
        """The axis among the ``ndim`` axes after the batch axis (``self.axis`` counts
        the batch axis, as Keras's)."""
        full = ndim + 1
        if ndim < 1:
            raise ValueError(f"Concatenate {self.name!r}: inputs need an axis besides the batch axis, got rank-{full} "
                             "inputs")
        if not -full <= self.axis < full or self.axis % full == 0:
            raise ValueError(f"Concatenate {self.name!r}: axis {self.axis} is not an axis after the batch axis of "
                             f"rank-{full} inputs (valid: 1..{full - 1} or -{full - 1}..-1)")
        return self.axis % full - 1

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

    def call(self, inputs, training=None):
        return ops.concatenate(list(inputs), axis=self._axis(inputs[0].ndim - 1) + 1)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


__all__ = ["Add", "Concatenate"]
