"""Layers merging several inputs, as ``keras.layers``' merging family: Add, Subtract,
Multiply, Average, Maximum, Minimum (elementwise, with Keras's broadcasting), Concatenate
and Dot, and their functional forms (``add([a, b])`` builds the layer and calls it).

Elementwise merges follow Keras 3: on the axes after the batch axis, shapes are aligned
from the right and each pair of sizes must be equal or contain a 1; an input of lower
rank gets new axes of size 1 right after its batch axis. Incompatible shapes are a
ValueError naming both. A merge needs at least two inputs (tf.keras 2's rule; Keras 3
passes a single input through).
"""
from __future__ import annotations

import numpy as np

from .. import _checks, ops
from .core import Layer


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _check_two(cls, name, n):
    # tf.keras 2 refuses a merge of one input and Keras 3 passes it through; the two
    # conflict, and convcore keeps the refusal (the regression tests and the fuzz test's
    # references have it), a known difference from Keras 3.
    if n < 2:
        raise ValueError(f"{cls} {name!r} needs a list of at least two inputs, received {n}")


def _broadcast(a, b):
    """Keras's elementwise output shape of two shapes (without the batch axis), or None
    where they do not broadcast."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return tuple(a)
    out = list(a[:len(a) - len(b)])
    for i, j in zip(a[len(a) - len(b):], b):
        if i is None or j is None:
            out.append(None)
        elif i == 1 or j == 1 or i == j:
            out.append(j if i == 1 else i)
        else:
            return None
    return tuple(out)


class _Merge(Layer):
    """Elementwise merge of a list of inputs (``_exact`` inputs, or at least
    ``_min_inputs``)."""

    _exact = None

    def _check_count(self, n):
        cls = type(self).__name__
        if self._exact is not None and n != self._exact:
            raise ValueError(f"{cls} {self.name!r} must be called on exactly {self._exact} inputs, received {n}")
        _check_two(cls, self.name, n)

    def _shapes(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not input_shape or \
                not all(isinstance(s, (list, tuple)) for s in input_shape):
            raise ValueError(f"{type(self).__name__} {self.name!r} must be called on a list of inputs, received "
                             f"input_shape={input_shape!r}")
        return [tuple(s) for s in input_shape]

    def compute_output_shape(self, input_shape):
        shapes = self._shapes(input_shape)
        self._check_count(len(shapes))
        out = shapes[0]
        for s in shapes[1:]:
            merged = _broadcast(out, s)
            if merged is None:
                raise ValueError(f"{type(self).__name__} {self.name!r}: inputs have incompatible shapes, received "
                                 f"shapes {shapes} (without the batch axis): {out} and {s} do not broadcast (each "
                                 "axis, aligned from the last, needs equal sizes or a 1)")
            out = merged
        return out

    def call(self, inputs, training=None):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"{type(self).__name__} {self.name!r} must be called on a list of inputs, received one "
                             f"{type(inputs).__name__}")
        batches = {int(x.shape[0]) for x in inputs}
        if len(batches) > 1:
            raise ValueError(f"{type(self).__name__} {self.name!r}: cannot merge inputs with different batch sizes, "
                             f"received shapes {[tuple(x.shape) for x in inputs]}")
        self.compute_output_shape([tuple(x.shape[1:]) for x in inputs])
        rank = max(x.ndim for x in inputs)
        xs = [x if x.ndim == rank else ops.reshape(x, (x.shape[0],) + (1,) * (rank - x.ndim) + tuple(x.shape[1:]))
              for x in inputs]
        return self._merge(xs)

    def _merge(self, xs):
        raise NotImplementedError


class Add(_Merge):
    """Elementwise sum of a list of inputs, as ``keras.layers.Add``."""

    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = ops.add(out, x)
        return out


class Subtract(_Merge):
    """``inputs[0] - inputs[1]`` (exactly two inputs), as ``keras.layers.Subtract``."""

    _exact = 2

    def _merge(self, xs):
        return ops.subtract(xs[0], xs[1])


class Multiply(_Merge):
    """Elementwise product of a list of inputs, as ``keras.layers.Multiply``."""

    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = ops.multiply(out, x)
        return out


class Average(_Merge):
    """Elementwise mean of a list of inputs, as ``keras.layers.Average``."""

    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = ops.add(out, x)
        return ops.divide(out, float(len(xs)))


class Maximum(_Merge):
    """Elementwise maximum of a list of inputs, as ``keras.layers.Maximum`` (a tie
    sends the gradient to the earlier input)."""

    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = ops.maximum(out, x)
        return out


class Minimum(_Merge):
    """Elementwise minimum of a list of inputs, as ``keras.layers.Minimum`` (a tie
    sends the gradient to the earlier input)."""

    def _merge(self, xs):
        out = xs[0]
        for x in xs[1:]:
            out = ops.minimum(out, x)
        return out


class Concatenate(Layer):
    """Concatenate a list of inputs along ``axis`` (default: the last), as
    ``keras.layers.Concatenate``; ``axis`` counts the batch axis, which cannot be
    joined, and the other axes must agree."""

    def __init__(self, axis=-1, **kw):
        super().__init__(**kw)
        self.axis = _checks.integer("Concatenate", "axis", axis)

    def _axis(self, ndim):
        """The axis among the ``ndim`` axes after the batch axis (``self.axis`` counts
        the batch axis, as Keras's)."""
        full = ndim + 1
        if ndim < 1:
            raise ValueError(f"Concatenate {self.name!r}: inputs need an axis besides the batch axis, received "
                             f"rank-{full} inputs")
        if not -full <= self.axis < full or self.axis % full == 0:
            raise ValueError(f"Concatenate {self.name!r}: axis {self.axis} is not an axis after the batch axis of "
                             f"rank-{full} inputs (valid: 1..{full - 1} or -{full - 1}..-1)")
        return self.axis % full - 1

    def compute_output_shape(self, input_shape):
        shapes = [tuple(s) for s in input_shape]
        _check_two("Concatenate", self.name, len(shapes))
        ax = self._axis(len(shapes[0]))
        for s in shapes:
            if len(s) != len(shapes[0]) or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0])) if i != ax):
                raise ValueError(f"Concatenate {self.name!r}: inputs must have matching shapes except on the "
                                 f"concatenation axis {self.axis}, received shapes "
                                 f"{[(None,) + s for s in shapes]}")
        out = list(shapes[0])
        out[ax] = sum(s[ax] for s in shapes)
        return tuple(out)

    def call(self, inputs, training=None):
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"Concatenate {self.name!r} must be called on a list of inputs, received one "
                             f"{type(inputs).__name__}")
        self.compute_output_shape([tuple(x.shape[1:]) for x in inputs])
        return ops.concatenate(list(inputs), axis=self._axis(inputs[0].ndim - 1) + 1)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class Dot(Layer):
    """Dot product of two inputs over one axis of each, per sample, as
    ``keras.layers.Dot``: ``axes`` is an int (the same axis of both) or a pair; the
    batch axis (0) cannot be one. With ``normalize=True`` both inputs are L2-normalized
    along their axis first (the output is the cosine proximity). The output keeps the
    first input's remaining axes, then the second's; a result of rank 1 becomes
    (batch, 1)."""

    def __init__(self, axes, normalize=False, **kw):
        super().__init__(**kw)
        if _is_int(axes):
            axes = int(axes)
        elif isinstance(axes, (list, tuple)):
            if len(axes) != 2:
                raise ValueError(f"Dot: axes must be an int or a pair of ints, received axes={axes!r}")
            if not all(_is_int(a) for a in axes):
                raise ValueError(f"Dot: the entries of axes must be integers, received axes={axes!r}")
            axes = (int(axes[0]), int(axes[1]))
        else:
            raise TypeError(f"Dot: axes must be an int or a pair of ints, received axes={axes!r}")
        self.axes = axes
        if not isinstance(normalize, (bool, np.bool_)):
            raise TypeError(f"Dot: normalize must be True or False, received normalize={normalize!r}")
        self.normalize = bool(normalize)

    def _resolve(self, shapes):
        """The two axes (counting the batch axis) for inputs of these shapes (without
        the batch axis), checked."""
        if not isinstance(shapes, (list, tuple)) or len(shapes) != 2 or \
                not all(isinstance(s, (list, tuple)) for s in shapes):
            raise ValueError(f"Dot {self.name!r} must be called on a list of 2 inputs, received "
                             f"input_shape={shapes!r}")
        s1, s2 = (None,) + tuple(shapes[0]), (None,) + tuple(shapes[1])
        if len(s1) < 2 or len(s2) < 2:
            raise ValueError(f"Dot {self.name!r}: inputs need rank >= 2, received shapes {s1} and {s2}")
        pair = (self.axes, self.axes) if isinstance(self.axes, int) else self.axes
        axes = []
        for a, s in zip(pair, (s1, s2)):
            if not -len(s) <= a < len(s) or a % len(s) == 0:
                raise ValueError(f"Dot {self.name!r}: axes must name axes after the batch axis, received "
                                 f"axes={self.axes} for input shapes {s1} and {s2}")
            axes.append(a % len(s))
        if s1[axes[0]] != s2[axes[1]]:
            raise ValueError(f"Dot {self.name!r}: incompatible input shapes: axis values {s1[axes[0]]} (at axis "
                             f"{axes[0]}) != {s2[axes[1]]} (at axis {axes[1]}); received shapes {s1} and {s2}")
        return axes, s1, s2

    def compute_output_shape(self, input_shape):
        (a1, a2), s1, s2 = self._resolve(input_shape)
        out = [n for i, n in enumerate(s1) if i not in (0, a1)] + [n for i, n in enumerate(s2) if i not in (0, a2)]
        return tuple(out) if out else (1,)

    def call(self, inputs, training=None):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(f"Dot {self.name!r} must be called on a list of 2 inputs, received "
                             f"{len(inputs) if isinstance(inputs, (list, tuple)) else type(inputs).__name__}")
        x, y = inputs
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"Dot {self.name!r}: inputs have different batch sizes, received shapes {x.shape} and "
                             f"{y.shape}")
        (a1, a2), _, _ = self._resolve([tuple(x.shape[1:]), tuple(y.shape[1:])])
        if self.normalize:
            x, y = _l2_normalize(x, a1), _l2_normalize(y, a2)
        # (batch, rest1, k) @ (batch, k, rest2): the contraction as one batched matmul
        b = x.shape[0]
        x = ops.moveaxis(x, a1, -1)
        y = ops.moveaxis(y, a2, 1)
        rest1, rest2 = tuple(x.shape[1:-1]), tuple(y.shape[2:])
        k = x.shape[-1]
        n1, n2 = int(np.prod(rest1, dtype=np.int64)), int(np.prod(rest2, dtype=np.int64))
        if min(n1, n2) == 1:
            # a vector on one side (the usual case: per-sample dot products, cosine
            # similarity): a broadcast product and a sum, native on every device and no
            # larger than the other input (a batched matmul runs on the GPU's host fallback)
            z = ops.sum(ops.multiply(ops.reshape(x, (b, n1, k, 1)), ops.reshape(y, (b, 1, k, n2))), axis=2)
        else:
            z = ops.matmul(ops.reshape(x, (b, n1, k)), ops.reshape(y, (b, k, n2)))
        out = rest1 + rest2
        return ops.reshape(z, (b,) + (out if out else (1,)))

    def get_config(self):
        return {**super().get_config(), "axes": list(self.axes) if isinstance(self.axes, tuple) else self.axes,
                "normalize": self.normalize}


def _l2_normalize(x, axis):
    """x / max(||x||, 1e-7) along ``axis``, keras.ops.normalize's order-2 rule. The
    floor is taken on the square sum (1e-14), so a zero vector has a finite gradient,
    as relu(ss - 1e-14) + 1e-14 (max(ss, 1e-14) to a rounding): relu and its gradient
    are native on the GPU, where maximum's gradient (a comparison) is a host fallback."""
    ss = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return ops.divide(x, ops.sqrt(ops.add(ops.relu(ops.subtract(ss, 1e-14)), 1e-14)))


def add(inputs, **kwargs):
    """Functional form of :class:`Add`: ``add([x1, x2])``."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """Functional form of :class:`Subtract`: ``subtract([x1, x2])``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """Functional form of :class:`Multiply`."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """Functional form of :class:`Average`."""
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """Functional form of :class:`Maximum`."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """Functional form of :class:`Minimum`."""
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    """Functional form of :class:`Concatenate`: ``concatenate([x1, x2], axis=-1)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, normalize=False, **kwargs):
    """Functional form of :class:`Dot`: ``dot([x1, x2], axes=-1)``."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)


__all__ = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
           "add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot"]
