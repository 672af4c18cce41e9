"""Reshaping layers, as ``keras.layers``' reshaping family: zero padding, cropping and
upsampling along the spatial axes (1-D, 2-D, 3-D), Permute, RepeatVector and Identity.

Every layer is composed of :mod:`convcore.ops` (pad, slicing, broadcasts, transpose, the
native ``upsample2d``, dense products), so it runs on the device of its input and the
tape differentiates it. On the GPU, ``pad`` (ZeroPadding) and the gradient of the
cropping slices go through the GPU's host fallback; repeats (UpSampling1D/3D,
RepeatVector) are broadcasts, native. Inputs are channels-last
(``data_format='channels_first'`` is refused). Reshape and Flatten live in ``basic.py``.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..ops.core import reserve, size_of
from .conv import _tuple
from .core import Layer

# UpSampling2D's interpolations, as Keras 3's: 'nearest' and 'bilinear' run the native
# upsampling kernel; the wider kernels go through the separable resize _resize below
# (one dense product per axis).
UPSAMPLING2D_INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5")


# ---------------------------------------------------------------------- resize
# keras.ops.image.resize on the jax backend (jax.image.resize, no edge padding): output
# pixel centres (i + 0.5) * in / out - 0.5, kernel weights normalised per output pixel,
# widened by the downscaling factor with antialias; 'nearest' takes
# floor((i + 0.5) * in / out). UpSampling2D's wide kernels and preprocessing.py's
# Resizing / CenterCrop / RandomCrop use it.
def _lanczos(radius):
    def k(x):
        with np.errstate(invalid="ignore", divide="ignore"):
            y = radius * np.sin(np.pi * x) * np.sin(np.pi * x / radius) / (np.pi ** 2 * x ** 2)
        return np.where(x > radius, 0.0, np.where(x > 1e-3, y, 1.0))
    return k


def _keys_cubic(x):
    out = ((1.5 * x - 2.5) * x) * x + 1.0
    out = np.where(x >= 1.0, ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0, out)
    return np.where(x >= 2.0, 0.0, out)


_KERNELS = {"bilinear": lambda x: np.maximum(0.0, 1.0 - np.abs(x)), "bicubic": _keys_cubic,
            "lanczos3": _lanczos(3), "lanczos5": _lanczos(5)}


def _weights(m, n, interpolation, antialias):
    """The (n, m) matrix taking m input samples to n output samples (jax.image's
    ``compute_weight_mat`` without edge padding)."""
    inv_scale = m / n
    kernel_scale = max(inv_scale, 1.0) if antialias else 1.0
    sample = (np.arange(n) + 0.5) * inv_scale - 0.5
    w = _KERNELS[interpolation](np.abs(sample[:, None] - np.arange(m)[None, :]) / kernel_scale)
    total = w.sum(axis=1, keepdims=True)
    w = np.where(np.abs(total) > 1000.0 * np.finfo(np.float32).eps, w / np.where(total != 0, total, 1.0), 0.0)
    inside = (sample >= -0.5) & (sample <= m - 0.5)
    return np.where(inside[:, None], w, 0.0)


def _nearest(m, n):
    # float32 as jax computes them, so ties fall on the same pixel
    return np.floor(((np.arange(n, dtype=np.float32) + 0.5) * np.float32(m) / np.float32(n)).astype(np.float32)
                    ).astype(np.int64)


def _nearest_axis(x, axis, m, n):
    """'nearest' along one axis from m to n samples. Integer factors are a repeat (a
    broadcast) or a strided slice, which the GPU computes natively; the picks are the
    same as the general gather's (floor((i + 0.5) * k) = i * k + k // 2)."""
    if n == m or m == 0:
        return x
    if n % m == 0:
        return _repeat(x, n // m, axis)
    if m % n == 0:
        k = m // n
        return x[(slice(None),) * axis + (slice(k // 2, None, k),)]
    return ops.take(x, _nearest(m, n), axis=axis)


def _resize(x, height, width, interpolation="bilinear", antialias=False):
    """(batch, h, w, c) images resized to (height, width): one gather ('nearest') or one
    product with the interpolation weights per axis that changes size (an axis that
    keeps its size is left alone, as jax does)."""
    b, h, w, c = x.shape
    size_of("resize", (b, height, width, c))
    if interpolation != "nearest":  # the (out, in) weight matrices and their float64 temporaries
        reserve("resize", 40 * (height * h + width * w), "the interpolation weights")
    if interpolation == "nearest":
        for axis, m, n in ((1, h, height), (2, w, width)):
            x = _nearest_axis(x, axis, m, n)
        return x
    dt = np.dtype(x.dtype) if np.dtype(x.dtype).kind == "f" else np.dtype(np.float32)
    # Each axis is contracted as the last axis of a dense product (a native kernel, with
    # its backward, on every device); transposes bring the axis there and back.
    if height != h:
        wh = _weights(h, height, interpolation, antialias).T.astype(dt)
        x = ops.transpose(ops.dense_bias_activation(ops.transpose(x, (0, 2, 3, 1)), wh), (0, 3, 1, 2))
    if width != w:
        ww = _weights(w, width, interpolation, antialias).T.astype(dt)
        x = ops.transpose(ops.dense_bias_activation(ops.transpose(x, (0, 1, 3, 2)), ww), (0, 1, 3, 2))
    return x


def _repeat(x, k, axis):
    """``ops.repeat(x, k, axis)`` as broadcast_to + reshape, which the GPU computes
    natively, forward and backward (repeat itself goes through its host fallback)."""
    s = tuple(x.shape)
    y = ops.broadcast_to(ops.expand_dims(x, axis + 1), s[:axis + 1] + (k,) + s[axis + 1:])
    return ops.reshape(y, s[:axis] + (s[axis] * k,) + s[axis + 1:])


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _data_format(cls, data_format):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{cls}: only data_format='channels_last' is supported, received "
                         f"data_format={data_format!r}")
    return "channels_last"


def _amount_pair(cls, arg, value, what):
    """(before, after) from an int or a pair of non-negative ints."""
    vals = (value, value) if _is_int(value) else value
    if isinstance(vals, (str, bytes)) or not hasattr(vals, "__len__") or len(vals) != 2 \
            or not all(_is_int(v) for v in vals):
        raise ValueError(f"{cls}: {arg} must be {what}, received {arg}={value!r}")
    if any(v < 0 for v in vals):
        raise ValueError(f"{cls}: {arg} must be non-negative, received {arg}={value!r}")
    return (int(vals[0]), int(vals[1]))


def _amounts(cls, arg, value, rank):
    """One (before, after) pair per spatial axis, from Keras's forms: an int (every side),
    a tuple of ``rank`` ints (symmetric per axis) or of ``rank`` pairs."""
    forms = (f"an int, a tuple of {rank} ints or a tuple of {rank} pairs of ints "
             "((before, after) per spatial axis)")
    if rank == 1:
        return (_amount_pair(cls, arg, value, "an int or a pair of ints (before, after)"),)
    if _is_int(value):
        if value < 0:
            raise ValueError(f"{cls}: {arg} must be non-negative, received {arg}={value!r}")
        return ((int(value), int(value)),) * rank
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != rank:
        raise ValueError(f"{cls}: {arg} must be {forms}, received {arg}={value!r}")
    return tuple(_amount_pair(cls, arg, v, forms) for v in value)


def _config_amounts(amounts):
    """Pairs as they go into a config (JSON lists); 1-D layers keep Keras's flat pair."""
    return [list(p) for p in amounts] if len(amounts) > 1 else list(amounts[0])


class _ZeroPadding(Layer):
    rank = 2
    _default = 1

    def __init__(self, padding=None, data_format=None, **kw):
        super().__init__(**kw)
        cls = type(self).__name__
        self.data_format = _data_format(cls, data_format)
        self.padding = _amounts(cls, "padding", self._default if padding is None else padding, self.rank)
        self._input_rank = self.rank + 1

    def compute_output_shape(self, input_shape):
        spatial = [None if s is None else s + a + b for s, (a, b) in zip(input_shape[:-1], self.padding)]
        return tuple(spatial) + (input_shape[-1],)

    def call(self, inputs, training=None):
        return ops.pad(inputs, ((0, 0),) + self.padding + ((0, 0),))

    def get_config(self):
        return {**super().get_config(), "padding": _config_amounts(self.padding), "data_format": self.data_format}


class ZeroPadding1D(_ZeroPadding):
    """Pad the steps axis of (batch, steps, features) with zeros, as
    ``keras.layers.ZeroPadding1D``: ``padding`` is an int (both ends) or a pair
    (before, after)."""
    rank = 1

    def __init__(self, padding=1, data_format=None, **kw):
        super().__init__(padding, data_format, **kw)


class ZeroPadding2D(_ZeroPadding):
    """Pad rows and columns of (batch, height, width, channels) with zeros, as
    ``keras.layers.ZeroPadding2D``: ``padding`` is an int, (sym_height, sym_width) or
    ((top, bottom), (left, right))."""
    rank = 2

    def __init__(self, padding=(1, 1), data_format=None, **kw):
        super().__init__(padding, data_format, **kw)


class ZeroPadding3D(_ZeroPadding):
    """Pad the three spatial axes of (batch, d1, d2, d3, channels) with zeros, as
    ``keras.layers.ZeroPadding3D``: an int, three ints or three (before, after) pairs."""
    rank = 3

    def __init__(self, padding=((1, 1), (1, 1), (1, 1)), data_format=None, **kw):
        super().__init__(padding, data_format, **kw)


class _Cropping(Layer):
    rank = 2
    _has_data_format = True

    def __init__(self, cropping, data_format=None, **kw):
        super().__init__(**kw)
        cls = type(self).__name__
        self.data_format = _data_format(cls, data_format)
        self.cropping = _amounts(cls, "cropping", cropping, self.rank)
        self._input_rank = self.rank + 1

    def compute_output_shape(self, input_shape):
        spatial = []
        for s, (a, b) in zip(input_shape[:-1], self.cropping):
            if s is not None and a + b >= s:
                raise ValueError(f"{type(self).__name__} {self.name!r}: cropping must be smaller than the spatial "
                                 f"dimensions of the input, received cropping={_config_amounts(self.cropping)} for "
                                 f"input shape {(None,) + tuple(input_shape)}")
            spatial.append(None if s is None else s - a - b)
        return tuple(spatial) + (input_shape[-1],)

    def call(self, inputs, training=None):
        self.compute_output_shape(tuple(inputs.shape[1:]))
        key = (slice(None),) + tuple(slice(a, n - b) for (a, b), n in zip(self.cropping, inputs.shape[1:])) + (
            slice(None),)
        return inputs[key]

    def get_config(self):
        cfg = {**super().get_config(), "cropping": _config_amounts(self.cropping)}
        if self._has_data_format:
            cfg["data_format"] = self.data_format
        return cfg


class Cropping1D(_Cropping):
    """Crop the steps axis of (batch, steps, features), as ``keras.layers.Cropping1D``:
    ``cropping`` is an int or a pair (before, after)."""
    rank = 1
    _has_data_format = False  # Keras's Cropping1D takes no data_format

    def __init__(self, cropping=(1, 1), **kw):
        super().__init__(cropping, None, **kw)


class Cropping2D(_Cropping):
    """Crop rows and columns of (batch, height, width, channels), as
    ``keras.layers.Cropping2D``: an int, (sym_height, sym_width) or ((top, bottom),
    (left, right))."""
    rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kw):
        super().__init__(cropping, data_format, **kw)


class Cropping3D(_Cropping):
    """Crop the three spatial axes of (batch, d1, d2, d3, channels), as
    ``keras.layers.Cropping3D``."""
    rank = 3

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kw):
        super().__init__(cropping, data_format, **kw)


class UpSampling1D(Layer):
    """Repeat each step of (batch, steps, features) ``size`` times, as
    ``keras.layers.UpSampling1D``."""

    _input_rank = 2

    def __init__(self, size=2, **kw):
        super().__init__(**kw)
        if not _is_int(size):
            raise TypeError(f"UpSampling1D: size must be an integer, received size={size!r}")
        if size < 1:
            raise ValueError(f"UpSampling1D: size must be a positive integer, received size={size!r}")
        self.size = int(size)

    def compute_output_shape(self, input_shape):
        return (None if input_shape[0] is None else input_shape[0] * self.size, input_shape[1])

    def call(self, inputs, training=None):
        return _repeat(inputs, self.size, 1)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


class UpSampling2D(Layer):
    """Upsample the rows and columns of (batch, height, width, channels) images by
    ``size``, as ``keras.layers.UpSampling2D``: 'nearest' repeats pixels; 'bilinear',
    'bicubic' (Keys, a = -0.5), 'lanczos3' and 'lanczos5' interpolate at half-pixel
    centres as ``keras.ops.image.resize`` (jax) does."""

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kw):
        super().__init__(**kw)
        self.data_format = _data_format("UpSampling2D", data_format)
        if not isinstance(interpolation, str) or interpolation.lower() not in UPSAMPLING2D_INTERPOLATIONS:
            raise ValueError(f"UpSampling2D: interpolation must be one of "
                             f"{', '.join(map(repr, UPSAMPLING2D_INTERPOLATIONS))}, received "
                             f"interpolation={interpolation!r}")
        self.size = _tuple("size", size, 2, "UpSampling2D")
        self.interpolation = interpolation.lower()
        self._input_rank = 3

    def compute_output_shape(self, input_shape):
        h, w, c = input_shape
        return (None if h is None else h * self.size[0], None if w is None else w * self.size[1], c)

    def call(self, inputs, training=None):
        if self.interpolation in ("nearest", "bilinear"):
            return ops.upsample2d(inputs, self.size, self.interpolation)
        return _resize(inputs, inputs.shape[1] * self.size[0], inputs.shape[2] * self.size[1], self.interpolation)

    def get_config(self):
        return {**super().get_config(), "size": list(self.size), "data_format": self.data_format,
                "interpolation": self.interpolation}


class UpSampling3D(Layer):
    """Repeat each voxel of (batch, d1, d2, d3, channels) ``size`` times along each
    spatial axis, as ``keras.layers.UpSampling3D``."""

    _input_rank = 4

    def __init__(self, size=(2, 2, 2), data_format=None, **kw):
        super().__init__(**kw)
        self.data_format = _data_format("UpSampling3D", data_format)
        self.size = _tuple("size", size, 3, "UpSampling3D")

    def compute_output_shape(self, input_shape):
        return tuple(None if s is None else s * f for s, f in zip(input_shape[:3], self.size)) + (input_shape[3],)

    def call(self, inputs, training=None):
        y = inputs
        for axis, f in enumerate(self.size, start=1):
            if f != 1:
                y = _repeat(y, f, axis)
        return y

    def get_config(self):
        return {**super().get_config(), "size": list(self.size), "data_format": self.data_format}


class Permute(Layer):
    """Permute the axes after the batch axis, as ``keras.layers.Permute``: ``dims`` is a
    permutation of 1..rank (``Permute((2, 1))`` swaps the two axes of (batch, a, b))."""

    def __init__(self, dims, **kw):
        super().__init__(**kw)
        if isinstance(dims, (str, bytes)) or not hasattr(dims, "__len__") or not all(_is_int(d) for d in dims):
            raise TypeError(f"Permute: dims must be a tuple of integers, received dims={dims!r}")
        if sorted(int(d) for d in dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"Permute: dims must be a permutation of 1..{len(dims)} (the axes after the batch "
                             f"axis, counted from 1), received dims={tuple(dims)!r}")
        self.dims = tuple(int(d) for d in dims)
        self._input_rank = len(self.dims)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[d - 1] for d in self.dims)

    def call(self, inputs, training=None):
        return ops.transpose(inputs, (0,) + self.dims)

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class RepeatVector(Layer):
    """Repeat each (batch, features) vector ``n`` times: (batch, n, features), as
    ``keras.layers.RepeatVector``."""

    _input_rank = 1

    def __init__(self, n, **kw):
        super().__init__(**kw)
        if not _is_int(n):
            raise TypeError(f"RepeatVector: n must be an integer, received n={n!r}")
        if n < 1:
            raise ValueError(f"RepeatVector: n must be a positive integer, received n={n!r}")
        self.n = int(n)

    def compute_output_shape(self, input_shape):
        return (self.n, input_shape[0])

    def call(self, inputs, training=None):
        return ops.broadcast_to(ops.expand_dims(inputs, 1), (inputs.shape[0], self.n, inputs.shape[1]))

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class Identity(Layer):
    """Return the input unchanged, as ``keras.layers.Identity`` (a placeholder layer)."""

    def compute_output_shape(self, input_shape):
        return input_shape if isinstance(input_shape, list) else tuple(input_shape)

    def call(self, inputs, training=None):
        return inputs


__all__ = ["ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
           "UpSampling1D", "UpSampling2D", "UpSampling3D", "Permute", "RepeatVector", "Identity"]
