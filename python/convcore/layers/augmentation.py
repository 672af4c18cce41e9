"""Keras 3 data-augmentation layers: RandomFlip, RandomTranslation, RandomRotation,
RandomZoom, RandomContrast and RandomBrightness.

They act only in training (``model.fit``, or a direct call with ``training=True``) and
are the identity in inference (``model.predict``, ``evaluate``, ``training=False``).
Inputs are channels-last image batches ``(batch, height, width, channels)``; a direct
call also accepts a single image ``(height, width, channels)``, as in Keras.

The random parameters (one flip pair, shift, angle, zoom, contrast factor or brightness
delta per image) are drawn here, in Python, from the layer's own
``numpy.random.Generator`` when ``seed`` is given (so two layers built with the same seed
produce the same sequence of augmentations), or else from :func:`convcore.backend.rng`
(reproducible after :func:`convcore.set_seed`). The pixels are computed in Rust
(``convcore._core.affine_warp``, ``flip_images``, ``contrast_forward``,
``brightness_forward``), and each layer's backward is exact: the transpose of the warp's
sampling, the same flip, or the clipped colour map's derivative.

Geometric conventions follow Keras 3's ``affine_transform``: output pixel (x, y) samples
the input at a point given by a 2x3 matrix per image, in pixel indices (x = column,
y = row), with ``interpolation`` 'bilinear' or 'nearest' and ``fill_mode`` 'reflect'
(d c b a | a b c d | d c b a), 'wrap' (a b c d | a b c d), 'constant' (k k k k | a b c d
with k = ``fill_value``) or 'nearest' (a a a a | a b c d | d d d d).

Example
-------
>>> import numpy as np
>>> from convcore import layers
>>> flip = layers.RandomFlip("horizontal", seed=0)
>>> x = np.arange(6, dtype="float32").reshape(1, 1, 6, 1)
>>> flip(x, training=False) is x or bool((flip(x, training=False) == x).all())
True
"""
from __future__ import annotations

import math

import numpy as np

from .. import _core, backend, ops
from .core import KerasTensor, Layer

__all__ = ["RandomFlip", "RandomTranslation", "RandomRotation", "RandomZoom", "RandomContrast",
           "RandomBrightness"]

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
INTERPOLATIONS = ("bilinear", "nearest")
FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")


def _is_number(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _factor_pair(cls, argname, factor, scalar="symmetric", low=-1.0, high=1.0):
    """``factor`` as (lower, upper) floats: a number gives (-|f|, f) ('symmetric') or
    (f, f) ('same'); a pair is taken as given. Each value must lie in [low, high]."""
    if _is_number(factor):
        f = float(factor)
        pair = (-f, f) if scalar == "symmetric" else (f, f)
    elif isinstance(factor, (tuple, list, np.ndarray)) and len(factor) == 2 and all(_is_number(v) for v in factor):
        pair = (float(factor[0]), float(factor[1]))
    else:
        raise ValueError(f"{cls}: {argname} must be a number or a pair (lower, upper) of numbers, got {factor!r}")
    if not all(math.isfinite(v) and low <= v <= high for v in pair):
        raise ValueError(f"{cls}: {argname} must have values in [{low:g}, {high:g}], got {factor!r}")
    return pair


def _config_value(v):
    """A factor as it goes into get_config: JSON-friendly (tuples become lists)."""
    if isinstance(v, (tuple, list, np.ndarray)):
        return [float(e) if _is_number(e) else e for e in v]
    return float(v) if _is_number(v) else v


def _choice(cls, argname, value, allowed):
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{cls}: {argname} must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
    return value


class _Augmentation(Layer):
    """Shared behaviour: rank checks, single-image calls, training-only application,
    seeding and the identity backward outside training."""

    _input_rank = 3  # (height, width, channels) after the batch axis

    def __init__(self, seed=None, **kw):
        super().__init__(**kw)
        if seed is not None and (isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"{type(self).__name__}: seed must be None or a non-negative integer, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self._rng = None if seed is None else np.random.default_rng(self.seed)

    def _generator(self):
        return self._rng if self._rng is not None else backend.rng()

    def __call__(self, inputs, training=True):
        """Keras 3 convention: a direct call augments (``training=True`` by default);
        models pass ``training`` explicitly (False in predict / evaluate)."""
        if isinstance(inputs, KerasTensor) or isinstance(inputs, (list, tuple)) and inputs and \
                isinstance(inputs[0], KerasTensor):
            return super().__call__(inputs, training)
        x = self._cast(inputs)
        if x.ndim == 3:
            y = super().__call__(x[None], training)
            return y[0]
        self._check_images(x.shape)
        return super().__call__(x, training)

    def _check_images(self, shape):
        if len(shape) != 4:
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: expected images of shape (batch, height, width, channels) "
                f"or a single image (height, width, channels), got an array of shape {tuple(shape)}")

    def call(self, inputs, training=None):
        self._check_images(inputs.shape)
        if not training:
            return inputs
        dt = self.dtype
        return ops.core.host_function(
            type(self).__name__, lambda a: self._augment(np.ascontiguousarray(a, dtype=dt)),
            lambda cache, g: self._augment_backward(cache, np.ascontiguousarray(g, dtype=dt)), inputs)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _augment(self, x):
        raise NotImplementedError

    def _augment_backward(self, cache, dy):
        raise NotImplementedError

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class RandomFlip(_Augmentation):
    """Randomly flip each image, as ``keras.layers.RandomFlip``.

    Parameters
    ----------
    mode : {'horizontal_and_vertical', 'horizontal', 'vertical'}
        'horizontal' flips left-right (along the width), 'vertical' up-down; with
        'horizontal_and_vertical' each image draws both flips independently. Each flip
        happens with probability 1/2 per image.
    seed : int, optional
        Seeds the layer's own generator (else :func:`convcore.backend.rng` is used).

    Examples
    --------
    >>> import numpy as np
    >>> from convcore import layers
    >>> x = np.arange(12, dtype="float32").reshape(2, 2, 3, 1)
    >>> y = layers.RandomFlip("horizontal", seed=1)(x, training=True)
    >>> all((y[i] == x[i]).all() or (y[i] == x[i, :, ::-1]).all() for i in range(2))
    True
    """

    def __init__(self, mode="horizontal_and_vertical", seed=None, **kw):
        super().__init__(seed=seed, **kw)
        self.mode = _choice("RandomFlip", "mode", mode, FLIP_MODES)

    def _augment(self, x):
        n = x.shape[0]
        rng = self._generator()
        hz = rng.random(n) < 0.5 if self.mode != "vertical" else np.zeros(n, bool)
        vt = rng.random(n) < 0.5 if self.mode != "horizontal" else np.zeros(n, bool)
        return _core.flip_images(x, hz, vt), (hz, vt)

    def _augment_backward(self, cache, dy):
        return _core.flip_images(dy, *cache)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


class _Geometric(_Augmentation):
    """An affine warp per image with Keras's fill and interpolation options."""

    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kw):
        super().__init__(seed=seed, **kw)
        cls = type(self).__name__
        self.fill_mode = _choice(cls, "fill_mode", fill_mode, FILL_MODES)
        self.interpolation = _choice(cls, "interpolation", interpolation, INTERPOLATIONS)
        if not _is_number(fill_value) or not math.isfinite(float(fill_value)):
            raise ValueError(f"{cls}: fill_value must be a finite number, got {fill_value!r}")
        limit = float(np.finfo(self.dtype).max)
        if abs(float(fill_value)) > limit:
            raise ValueError(f"{cls}: fill_value {fill_value!r} is outside the range of {self.dtype} "
                             f"(|fill_value| <= {limit:.4g})")
        self.fill_value = float(fill_value)

    def _matrices(self, n, h, w):
        """(n, 6) float64: [a0, a1, a2, b0, b1, b2] per image, mapping output (x, y) to
        the input point (a0*x + a1*y + a2, b0*x + b1*y + b2)."""
        raise NotImplementedError

    def _augment(self, x):
        m = np.ascontiguousarray(self._matrices(*x.shape[:3]), dtype=np.float64)
        return _core.affine_warp(x, m, self.interpolation, self.fill_mode, self.fill_value), m

    def _augment_backward(self, cache, dy):
        return _core.affine_warp_adjoint(dy, cache, self.interpolation, self.fill_mode)

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                "fill_value": self.fill_value}


def _ordered(cls, argname, pair, factor):
    if pair[1] < pair[0]:
        raise ValueError(f"{cls}: {argname} must have lower <= upper, got {factor!r}")
    return pair


class RandomTranslation(_Geometric):
    """Randomly shift each image, as ``keras.layers.RandomTranslation``.

    Parameters
    ----------
    height_factor, width_factor : float or (lower, upper)
        Shift as a fraction of the height / width, drawn uniformly from [lower, upper]
        per image; a single number f means (-f, f). Values in [-1, 1]. Positive moves
        the content down / right (Keras: negative height shifts up, negative width left).
    fill_mode : {'reflect', 'wrap', 'constant', 'nearest'}
    interpolation : {'bilinear', 'nearest'}
    seed : int, optional
    fill_value : float
        The value outside the image when ``fill_mode='constant'``.

    Examples
    --------
    >>> import numpy as np
    >>> from convcore import layers
    >>> x = np.arange(4, dtype="float32").reshape(1, 1, 4, 1)
    >>> t = layers.RandomTranslation(0.0, (0.5, 0.5), fill_mode="constant", fill_value=-1.0)
    >>> t(x, training=True)[0, 0, :, 0].tolist()
    [-1.0, -1.0, 0.0, 1.0]
    """

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kw):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kw)
        cls = "RandomTranslation"
        self.height_factor, self.width_factor = height_factor, width_factor
        self._h = _ordered(cls, "height_factor", _factor_pair(cls, "height_factor", height_factor), height_factor)
        self._w = _ordered(cls, "width_factor", _factor_pair(cls, "width_factor", width_factor), width_factor)

    def _matrices(self, n, h, w):
        rng = self._generator()
        dy = rng.uniform(self._h[0], self._h[1], n) * h
        dx = rng.uniform(self._w[0], self._w[1], n) * w
        one, zero = np.ones(n), np.zeros(n)
        return np.stack([one, zero, -dx, zero, one, -dy], axis=1)

    def get_config(self):
        return {**super().get_config(), "height_factor": _config_value(self.height_factor),
                "width_factor": _config_value(self.width_factor)}


class RandomRotation(_Geometric):
    """Randomly rotate each image about its centre, as ``keras.layers.RandomRotation``.

    Parameters
    ----------
    factor : float or (lower, upper)
        The angle as a fraction of a full turn (2*pi), drawn uniformly from
        [lower, upper] per image; a single number f means (-|f|, |f|). Values in
        [-1, 1]; a pair given high-to-low is sorted (Keras 3). Positive angles turn the
        image counter-clockwise: ``factor=(0.25, 0.25)`` equals ``np.rot90`` on a
        square image.
    fill_mode : {'reflect', 'wrap', 'constant', 'nearest'}
    interpolation : {'bilinear', 'nearest'}
    seed : int, optional
    fill_value : float

    Examples
    --------
    >>> import numpy as np
    >>> from convcore import layers
    >>> x = np.arange(9, dtype="float64").reshape(1, 3, 3, 1)
    >>> r = layers.RandomRotation((0.25, 0.25), interpolation="nearest", dtype="float64")
    >>> bool((r(x, training=True)[0, :, :, 0] == np.rot90(x[0, :, :, 0])).all())
    True
    """

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kw):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kw)
        self.factor = factor
        self._f = tuple(sorted(_factor_pair("RandomRotation", "factor", factor)))
        if _is_number(factor):
            self._f = (-abs(float(factor)), abs(float(factor)))

    def _matrices(self, n, h, w):
        angle = self._generator().uniform(self._f[0] * 2.0 * np.pi, self._f[1] * 2.0 * np.pi, n)
        c, s = np.cos(angle), np.sin(angle)
        # Keras's rotation about ((w-1)/2, (h-1)/2)
        x_off = ((w - 1) - (c * (w - 1) - s * (h - 1))) / 2.0
        y_off = ((h - 1) - (s * (w - 1) + c * (h - 1))) / 2.0
        return np.stack([c, -s, x_off, s, c, y_off], axis=1)

    def get_config(self):
        return {**super().get_config(), "factor": _config_value(self.factor)}


class RandomZoom(_Geometric):
    """Randomly zoom each image about its centre, as ``keras.layers.RandomZoom``.

    Parameters
    ----------
    height_factor : float or (lower, upper)
        Vertical zoom as a fraction, drawn uniformly from [lower, upper] per image; a
        single number f means (-f, f). Values in [-1, 1]. Keras's sign convention:
        positive zooms out (the content shrinks), negative zooms in; the input is
        sampled at a scale of ``1 + factor`` about the centre.
    width_factor : float or (lower, upper), optional
        Horizontal zoom likewise; None (default) reuses each image's vertical zoom,
        preserving the aspect ratio.
    fill_mode : {'reflect', 'wrap', 'constant', 'nearest'}
    interpolation : {'bilinear', 'nearest'}
    seed : int, optional
    fill_value : float

    Examples
    --------
    >>> import numpy as np
    >>> from convcore import layers
    >>> x = np.arange(5, dtype="float32").reshape(1, 1, 5, 1)
    >>> z = layers.RandomZoom(0.0, (1.0, 1.0), fill_mode="constant")   # zoom out 2x
    >>> z(x, training=True)[0, 0, :, 0].tolist()
    [0.0, 0.0, 2.0, 4.0, 0.0]
    """

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, **kw):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kw)
        cls = "RandomZoom"
        self.height_factor, self.width_factor = height_factor, width_factor
        self._h = _ordered(cls, "height_factor", _factor_pair(cls, "height_factor", height_factor), height_factor)
        self._w = None if width_factor is None else _ordered(
            cls, "width_factor", _factor_pair(cls, "width_factor", width_factor), width_factor)

    def _matrices(self, n, h, w):
        rng = self._generator()
        zy = rng.uniform(1.0 + self._h[0], 1.0 + self._h[1], n)
        zx = zy if self._w is None else rng.uniform(1.0 + self._w[0], 1.0 + self._w[1], n)
        zero = np.zeros(n)
        return np.stack([zx, zero, (w - 1) / 2.0 * (1.0 - zx), zero, zy, (h - 1) / 2.0 * (1.0 - zy)], axis=1)

    def get_config(self):
        return {**super().get_config(), "height_factor": _config_value(self.height_factor),
                "width_factor": _config_value(self.width_factor)}


def _value_range(cls, value_range):
    if not (isinstance(value_range, (tuple, list, np.ndarray)) and len(value_range) == 2
            and all(_is_number(v) and math.isfinite(float(v)) for v in value_range)):
        raise ValueError(f"{cls}: value_range must be a pair (low, high) of finite numbers, got {value_range!r}")
    lo, hi = sorted(float(v) for v in value_range)  # Keras 3 sorts the pair
    return lo, hi


class RandomContrast(_Augmentation):
    """Randomly adjust the contrast of each image, as ``keras.layers.RandomContrast``.

    Each image draws one factor f uniformly from [1 - lower, 1 + upper]; each channel
    becomes ``(x - mean) * f + mean`` (mean over height and width of that image and
    channel), clipped to ``value_range`` (Keras 3 clips too).

    Parameters
    ----------
    factor : float or (lower, upper)
        A single number means lower = upper = factor. lower in [0, 1], upper >= 0.
    value_range : (low, high)
        The range of the input values, (0, 255) by default as in Keras 3; outputs are
        clipped to it. The backward passes no gradient where the output was clipped.
    seed : int, optional

    Examples
    --------
    >>> import numpy as np
    >>> from convcore import layers
    >>> x = np.array([[[[100.0], [150.0]]]], dtype="float32")   # one 1x2 image, mean 125
    >>> y = layers.RandomContrast(0.5, seed=0)(x, training=True)
    >>> round(float(y.mean()), 3), bool(y[0, 0, 0, 0] != 100.0)
    (125.0, True)
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kw):
        super().__init__(seed=seed, **kw)
        bad = ValueError("RandomContrast: factor must be a number or a pair (lower, upper) with lower in [0, 1] and "
                         f"upper >= 0, got {factor!r}")
        try:
            lo, hi = _factor_pair("RandomContrast", "factor", factor, scalar="same", low=-math.inf, high=math.inf)
        except ValueError:
            raise bad from None
        if not (0.0 <= lo <= 1.0 and hi >= 0.0):
            raise bad
        self.factor = factor
        self._f = (lo, hi)
        self.value_range = _value_range("RandomContrast", value_range)

    def _augment(self, x):
        f = self._generator().uniform(1.0 - self._f[0], 1.0 + self._f[1], x.shape[0])
        lo, hi = self.value_range
        return _core.contrast_forward(x, f, lo, hi), (x, f)

    def _augment_backward(self, cache, dy):
        x, f = cache
        lo, hi = self.value_range
        return _core.contrast_backward(x, f, dy, lo, hi)

    def get_config(self):
        return {**super().get_config(), "factor": _config_value(self.factor),
                "value_range": list(self.value_range)}


class RandomBrightness(_Augmentation):
    """Randomly change the brightness of each image, as ``keras.layers.RandomBrightness``.

    Each image draws one delta d uniformly from [lower, upper] and becomes
    ``clip(x + d * (high - low), low, high)`` with (low, high) = ``value_range``.

    Parameters
    ----------
    factor : float or (lower, upper)
        Values in [-1, 1]; a single number f means (-|f|, |f|); a pair given high-to-low
        is sorted (Keras 3). -1 makes the image black, 1 white.
    value_range : (low, high)
        (0, 255) by default. The backward passes no gradient where the output was clipped.
    seed : int, optional

    Examples
    --------
    >>> import numpy as np
    >>> from convcore import layers
    >>> x = np.array([[[[0.1], [0.9]]]])
    >>> b = layers.RandomBrightness((0.2, 0.2), value_range=(0, 1), dtype="float64")
    >>> np.round(b(x, training=True)[0, 0, :, 0], 6).tolist()
    [0.3, 1.0]
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kw):
        super().__init__(seed=seed, **kw)
        self.factor = factor
        self._f = tuple(sorted(_factor_pair("RandomBrightness", "factor", factor)))
        if _is_number(factor):
            self._f = (-abs(float(factor)), abs(float(factor)))
        self.value_range = _value_range("RandomBrightness", value_range)

    def _augment(self, x):
        lo, hi = self.value_range
        d = self._generator().uniform(self._f[0], self._f[1], x.shape[0]) * (hi - lo)
        return _core.brightness_forward(x, d, lo, hi), (x, d)

    def _augment_backward(self, cache, dy):
        x, d = cache
        lo, hi = self.value_range
        return _core.brightness_backward(x, d, dy, lo, hi)

    def get_config(self):
        return {**super().get_config(), "factor": _config_value(self.factor),
                "value_range": list(self.value_range)}
