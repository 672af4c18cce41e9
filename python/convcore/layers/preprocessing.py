"""Preprocessing layers (rescaling, resizing, cropping, normalization with ``adapt``),
as ``keras.layers``' preprocessing family, channels-last.

Where they run: Rescaling, Normalization, Resizing and CenterCrop are composed of
:mod:`convcore.ops` and run on the device of their input (differentiable by the tape);
on the GPU, Resizing's 'nearest' by a factor that is no integer (nor its inverse) — a
gather, ``take`` —, the padding of ``pad_to_aspect_ratio`` and the gradient of crops
(slices) go through the GPU's host fallback; the interpolating kernels are dense
products and 'nearest' by integer factors a broadcast or a strided slice (native). RandomCrop draws its
crop offset on the host (numpy) and slices on the device. ``Normalization.adapt``
computes the mean and variance on the host (numpy, in float64) and stores them in the
layer's weights; the interpolation weights of a resize are computed on the host too.

Resizing follows ``keras.ops.image.resize`` on the jax backend (``jax.image.resize``):
output pixel centres ``(i + 0.5) * in / out - 0.5``, kernels 'bilinear' (triangle),
'bicubic' (Keys, a = -0.5), 'lanczos3', 'lanczos5' (weights normalised per output pixel;
with ``antialias`` the kernel is widened by the downscaling factor), 'nearest' taking
``floor((i + 0.5) * in / out)`` (see ``reshaping._resize``).
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .. import _checks, backend, ops
from ..tensor import Tensor
from .core import KerasTensor, Layer
from .reshaping import _resize

__all__ = ["Rescaling", "Resizing", "CenterCrop", "Normalization", "RandomCrop"]

INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "lanczos3", "lanczos5")  # keras.ops.image.resize's (jax)
EPSILON = 1e-7  # keras.backend.epsilon(), Normalization's floor of the standard deviation


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _positive(cls, arg, v):
    if not _is_int(v):
        raise TypeError(f"{cls}: {arg} must be a positive integer, received {arg}={v!r}")
    if v < 1:
        raise ValueError(f"{cls}: {arg} must be a positive integer, received {arg}={v!r}")
    return int(v)


def _data_format(cls, data_format):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{cls}: only data_format='channels_last' is supported, received "
                         f"data_format={data_format!r}")
    return "channels_last"


def _flag(cls, arg, v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    raise TypeError(f"{cls}: {arg} must be True or False, received {arg}={v!r}")


def _aspect_crop_box(h, w, th, tw):
    """Keras's crop box of the largest centred window of the target's aspect ratio."""
    ch = max(min(h, int(float(w * th) / tw)), 1)
    cw = max(min(w, int(float(h * tw) / th)), 1)
    return int(float(h - ch) / 2), int(float(w - cw) / 2), ch, cw


class _ImageLayer(Layer):
    """Image layers accept a batch (batch, h, w, c) or, called directly, one image
    (h, w, c), as Keras's image preprocessing layers."""

    _input_rank = 3

    def __call__(self, inputs, training=None, **kwargs):
        if isinstance(inputs, KerasTensor) or isinstance(inputs, (list, tuple)) and inputs and \
                isinstance(inputs[0], KerasTensor):
            return super().__call__(inputs, training, **kwargs)
        x = self._cast(inputs)
        if x.ndim == 3:
            return ops.squeeze(super().__call__(ops.expand_dims(x, 0), training, **kwargs), 0)
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected images of shape (batch, height, width, "
                             f"channels) or one image (height, width, channels), received shape {tuple(x.shape)}")
        return super().__call__(x, training, **kwargs)


def _int_dtype(x):
    """The integer dtype of an array or Tensor given to a layer directly, else None."""
    if isinstance(x, (KerasTensor, list, tuple)):
        return None
    dt = x.dtype if isinstance(x, (Tensor, np.ndarray)) else None
    return np.dtype(dt) if dt is not None and np.dtype(dt).kind in "iu" else None


def _float(layer, x):
    """Integer and bool inputs in the layer's float dtype, as Keras's compute dtype."""
    return x if x.dtype == np.dtype(layer.dtype) else ops.cast(x, layer.dtype)


# ---------------------------------------------------------------------- layers
def _scale_value(cls, arg, v):
    """A number, or an array (broadcast against the channels axis) from a list, an
    ndarray or Keras's serialized ``{'class_name': '__numpy__', ...}``."""
    if isinstance(v, dict) and v.get("class_name") == "__numpy__":
        v = np.asarray(v["config"]["value"], dtype=v["config"].get("dtype", "float64"))
    if isinstance(v, (bool, np.bool_)) or isinstance(v, (str, bytes)):
        raise TypeError(f"{cls}: {arg} must be a number or an array of numbers, received {arg}={v!r}")
    try:
        a = np.asarray(v.numpy() if isinstance(v, Tensor) else v)
    except (TypeError, ValueError):
        raise TypeError(f"{cls}: {arg} must be a number or an array of numbers, received {arg}={v!r}") from None
    if a.dtype.kind not in "iuf":
        raise TypeError(f"{cls}: {arg} must be a number or an array of numbers, received {arg}={v!r}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{cls}: {arg} must be finite, received {arg}={v!r}")
    return float(a) if a.ndim == 0 else a.astype(np.float64)


class Rescaling(Layer):
    """``inputs * scale + offset``, as ``keras.layers.Rescaling`` (``Rescaling(1 / 255)``
    maps [0, 255] to [0, 1]; ``Rescaling(1 / 127.5, offset=-1)`` to [-1, 1]). ``scale``
    and ``offset`` are numbers or arrays that broadcast against the input (per channel)."""

    def __init__(self, scale, offset=0.0, **kw):
        super().__init__(**kw)
        self.scale = _scale_value("Rescaling", "scale", scale)
        self.offset = _scale_value("Rescaling", "offset", offset)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def call(self, inputs, training=None):
        dt = self.dtype
        scale = self.scale if isinstance(self.scale, float) else self.scale.astype(dt)
        offset = self.offset if isinstance(self.offset, float) else self.offset.astype(dt)
        return ops.add(ops.multiply(_float(self, inputs), scale), offset)

    def get_config(self):
        def value(v):
            return v if isinstance(v, float) else v.tolist()
        return {**super().get_config(), "scale": value(self.scale), "offset": value(self.offset)}


class Resizing(_ImageLayer):
    """Resize images to (``height``, ``width``), as ``keras.layers.Resizing``:
    ``interpolation`` 'bilinear' (default), 'nearest', 'bicubic', 'lanczos3' or
    'lanczos5'; ``crop_to_aspect_ratio`` first crops the largest centred window of the
    target's aspect ratio, ``pad_to_aspect_ratio`` first pads both sides symmetrically
    with ``fill_value``; ``antialias`` widens the kernel when downscaling. Integer images
    given directly are resized in the layer's float dtype, rounded and clipped back to
    their integer dtype, as Keras does (inside a model the inputs are floats already; the
    GPU holds integer tensors as uint32, so there the clip is to uint32's range)."""

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
                 pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, antialias=False,
                 data_format=None, **kw):
        super().__init__(**kw)
        self.height = _positive("Resizing", "height", height)
        self.width = _positive("Resizing", "width", width)
        if not isinstance(interpolation, str) or interpolation not in INTERPOLATIONS:
            raise ValueError(f"Resizing: interpolation must be one of {', '.join(map(repr, INTERPOLATIONS))}, "
                             f"received interpolation={interpolation!r}")
        self.interpolation = interpolation
        self.crop_to_aspect_ratio = _flag("Resizing", "crop_to_aspect_ratio", crop_to_aspect_ratio)
        self.pad_to_aspect_ratio = _flag("Resizing", "pad_to_aspect_ratio", pad_to_aspect_ratio)
        if self.crop_to_aspect_ratio and self.pad_to_aspect_ratio:
            raise ValueError("Resizing: only one of crop_to_aspect_ratio and pad_to_aspect_ratio can be True, "
                             "received both True")
        if fill_mode != "constant":
            raise ValueError(f"Resizing: fill_mode must be 'constant' (the only mode Keras supports), received "
                             f"fill_mode={fill_mode!r}")
        self.fill_mode = fill_mode
        self.fill_value = _checks.real("Resizing", "fill_value", fill_value)
        self.antialias = _flag("Resizing", "antialias", antialias)
        self.data_format = _data_format("Resizing", data_format)

    def __call__(self, inputs, training=None, **kwargs):
        y = super().__call__(inputs, training, **kwargs)
        kind = _int_dtype(inputs)
        if kind is None:
            return y
        # Keras returns integer images in their dtype: rounded (half to even) and clipped
        info = np.iinfo(kind)
        return ops.cast(ops.clip(ops.round(y), info.min, info.max), kind)

    def compute_output_shape(self, input_shape):
        return (self.height, self.width, input_shape[-1])

    def call(self, inputs, training=None):
        x = _float(self, inputs)
        h, w = x.shape[1], x.shape[2]
        if self.crop_to_aspect_ratio:
            h0, w0, ch, cw = _aspect_crop_box(h, w, self.height, self.width)
            x = x[:, h0:h0 + ch, w0:w0 + cw, :]
        elif self.pad_to_aspect_ratio:
            ph = max(h, int(float(w * self.height) / self.width))
            pw = max(w, int(float(h * self.width) / self.height))
            top, left = int(float(ph - h) / 2), int(float(pw - w) / 2)
            if top > 0:
                x = ops.pad(x, ((0, 0), (top, top), (0, 0), (0, 0)), constant_values=self.fill_value)
            elif left > 0:
                x = ops.pad(x, ((0, 0), (0, 0), (left, left), (0, 0)), constant_values=self.fill_value)
        return _resize(x, self.height, self.width, self.interpolation, self.antialias)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation, "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                "pad_to_aspect_ratio": self.pad_to_aspect_ratio, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "antialias": self.antialias, "data_format": self.data_format}


class CenterCrop(_ImageLayer):
    """Crop the central (``height``, ``width``) window of images, as
    ``keras.layers.CenterCrop``; an image smaller than the target on either axis is
    cropped to the target's aspect ratio and resized (bilinear) instead, as Keras's
    ``smart_resize``."""

    def __init__(self, height, width, data_format=None, **kw):
        super().__init__(**kw)
        self.height = _positive("CenterCrop", "height", height)
        self.width = _positive("CenterCrop", "width", width)
        self.data_format = _data_format("CenterCrop", data_format)

    def compute_output_shape(self, input_shape):
        return (self.height, self.width, input_shape[-1])

    def call(self, inputs, training=None):
        inputs = _float(self, inputs)
        h, w = inputs.shape[1], inputs.shape[2]
        if h >= self.height and w >= self.width:
            h0, w0 = (h - self.height) // 2, (w - self.width) // 2
            return inputs[:, h0:h0 + self.height, w0:w0 + self.width, :]
        h0, w0, ch, cw = _aspect_crop_box(h, w, self.height, self.width)
        return _resize(inputs[:, h0:h0 + ch, w0:w0 + cw, :], self.height, self.width, "bilinear")

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width, "data_format": self.data_format}


class RandomCrop(_ImageLayer):
    """In training, crop a random (``height``, ``width``) window (one offset per batch,
    as Keras) of images larger than the target on both axes; otherwise (an image not
    larger on some axis) take the window at the centred crop box of the target's aspect
    ratio and resize it (bilinear) to the target, as ``keras.layers.RandomCrop``. In
    inference (``training=False``: predict, evaluate) the images pass through unchanged,
    as in Keras 3 (whose output shape then is not (height, width); tf.keras 2 center-
    cropped instead, and the two conflict, so Keras 3's rule is kept). A direct call
    trains (``training=True`` by default), as Keras's. The offset is drawn from the
    layer's own numpy generator when ``seed`` is given, else from
    :func:`convcore.backend.rng`; the values drawn are not Keras's."""

    def __init__(self, height, width, seed=None, data_format=None, name=None, **kw):
        super().__init__(name=name, **kw)
        self.height = _positive("RandomCrop", "height", height)
        self.width = _positive("RandomCrop", "width", width)
        if seed is not None and (not _is_int(seed) or seed < 0):
            raise ValueError(f"RandomCrop: seed must be None or a non-negative integer, received seed={seed!r}")
        self.seed = None if seed is None else int(seed)
        self._rng = None if seed is None else np.random.default_rng(self.seed)
        self.data_format = _data_format("RandomCrop", data_format)

    def __call__(self, inputs, training=True, **kwargs):
        return super().__call__(inputs, training, **kwargs)

    def compute_output_shape(self, input_shape):
        return (self.height, self.width, input_shape[-1])

    def call(self, inputs, training=None):
        if not training:
            return inputs
        inputs = _float(self, inputs)
        h, w = inputs.shape[1], inputs.shape[2]
        if h > self.height and w > self.width:
            rng = self._rng if self._rng is not None else backend.rng()
            h0 = int(rng.integers(0, h - self.height + 1))
            w0 = int(rng.integers(0, w - self.width + 1))
        else:
            h0, w0, _, _ = _aspect_crop_box(h, w, self.height, self.width)
        y = inputs[:, h0:h0 + self.height, w0:w0 + self.width, :]
        if y.shape[1:3] != (self.height, self.width):
            y = _resize(y, self.height, self.width, "bilinear")
        return y

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width, "seed": self.seed,
                "data_format": self.data_format}


def _stat_array(cls, arg, v):
    if isinstance(v, Tensor):
        v = v.numpy()
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{cls}: {arg} must be a number or an array of numbers, received {arg}={v!r}") from None
    return a


class Normalization(Layer):
    """Shift and scale inputs to mean 0 and variance 1 per feature:
    ``(x - mean) / max(sqrt(variance), 1e-7)`` (``invert=True``: ``mean + x *
    max(sqrt(variance), 1e-7)``), as ``keras.layers.Normalization``. ``axis`` names the
    axes that keep their own statistics (default -1, the features; None: one scalar
    statistic). ``mean`` and ``variance`` are given, or computed by ``adapt(data)`` from
    an array, a Tensor or an iterable of batches (stored in the non-trainable weights
    'mean' and 'variance'). Axis 0 (the batch axis) cannot keep statistics here."""

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kw):
        super().__init__(**kw)
        if axis is None:
            axis = ()
        elif _is_int(axis):
            axis = (int(axis),)
        elif isinstance(axis, (tuple, list)) and all(_is_int(a) for a in axis):
            axis = tuple(int(a) for a in axis)
        else:
            raise TypeError(f"Normalization: axis must be an int, a tuple of ints or None, received axis={axis!r}")
        self.axis = axis
        self.invert = _flag("Normalization", "invert", invert)
        if (mean is None) != (variance is None):
            raise ValueError(f"Normalization: when setting values directly, both mean and variance must be set, "
                             f"received mean={mean!r} and variance={variance!r}")
        self.input_mean = None if mean is None else _stat_array("Normalization", "mean", mean)
        self.input_variance = None if variance is None else _stat_array("Normalization", "variance", variance)
        if mean is not None:
            if self.input_mean.shape != self.input_variance.shape:
                raise ValueError(f"Normalization: mean and variance must have the same shape, received mean shape "
                                 f"{self.input_mean.shape} and variance shape {self.input_variance.shape}")
            if self.input_mean.ndim > len(self.axis):
                raise ValueError(f"Normalization: the rank of mean must be at most the number of axes "
                                 f"({len(self.axis)}), received mean shape {self.input_mean.shape} for "
                                 f"axis={self.axis}")
            if np.any(self.input_variance < 0) or not np.all(np.isfinite(self.input_variance)):
                raise ValueError("Normalization: variance must be finite and non-negative, received "
                                 f"variance={variance!r}")
        self._build_shape = None

    def build(self, input_shape):
        full = (None,) + tuple(input_shape)
        ndim = len(full)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(f"Normalization {self.name!r}: axis values must be in [-{ndim}, {ndim}) for inputs of "
                             f"rank {ndim}, received axis={self.axis}")
        keep = tuple(sorted({a % ndim for a in self.axis}))
        if 0 in keep:
            raise ValueError(f"Normalization {self.name!r}: axis must not include the batch axis 0, received "
                             f"axis={self.axis}")
        if any(full[d] is None for d in keep):
            raise ValueError(f"Normalization {self.name!r}: the axes that keep statistics must have known sizes, "
                             f"received axis={self.axis} for inputs of shape {full}")
        self._build_shape = tuple(input_shape)
        self._keep = keep
        self._reduce = tuple(d for d in range(ndim) if d not in keep)
        # A statistic of shape () is stored with shape (1,): initializers.initialize gives
        # 0-d weights one axis (np.ascontiguousarray), so Variables cannot be 0-d yet.
        self._stat_shape = tuple(full[d] for d in keep) or (1,)
        self._bshape = tuple(full[d] if d in keep else 1 for d in range(1, ndim))
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(shape=self._stat_shape, initializer="zeros", trainable=False,
                                              name="mean")
            self.adapt_variance = self.add_weight(shape=self._stat_shape, initializer="ones", trainable=False,
                                                  name="variance")
        else:
            ex = [1] * ndim
            for i in range(1, self.input_mean.ndim + 1):
                ex[keep[-i]] = self.input_mean.shape[-i]
            try:
                mean = np.broadcast_to(self.input_mean.reshape(ex)[0], self._bshape)
                var = np.broadcast_to(self.input_variance.reshape(ex)[0], self._bshape)
            except ValueError:
                raise ValueError(f"Normalization {self.name!r}: mean of shape {self.input_mean.shape} does not "
                                 f"broadcast to the kept axes {keep} of inputs of shape {full}") from None
            self._mean = mean.astype(self.dtype)
            self._std = np.maximum(np.sqrt(var), EPSILON).astype(self.dtype)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def adapt(self, data):
        """Compute the mean and variance over the axes not in ``axis`` from ``data``: an
        array or Tensor (batch axis first), or an iterable of such batches (combined as
        Keras does, batch by batch)."""
        if isinstance(data, Tensor):
            data = data.numpy()
        if isinstance(data, np.ndarray) or isinstance(data, (list, tuple)) and data and np.isscalar(data[0]):
            batches, single = [np.asarray(data)], True
        elif isinstance(data, Iterable) and not isinstance(data, (str, bytes, dict)):
            batches, single = iter(data), False
        else:
            raise TypeError(f"Normalization {self.name!r}: adapt expects an array, a Tensor or an iterable of "
                            f"batches, received {type(data).__name__}")
        total_mean = total_var = None
        count = 0
        for batch in batches:
            if isinstance(batch, tuple):
                batch = batch[0]
            b = batch.numpy() if isinstance(batch, Tensor) else np.asarray(batch)
            if b.dtype.kind not in "biuf":
                raise TypeError(f"Normalization {self.name!r}: adapt expects numeric data, received dtype {b.dtype}")
            if b.ndim < 1:
                raise ValueError(f"Normalization {self.name!r}: adapt expects data with a batch axis, received "
                                 f"shape {b.shape}")
            if not self.built:
                self.build(b.shape[1:])
            elif len(b.shape) - 1 != len(self._build_shape) or any(
                    b.shape[d] != self._build_shape[d - 1] for d in self._keep):
                raise ValueError(f"Normalization {self.name!r}: the layer was built for inputs of shape "
                                 f"{(None,) + self._build_shape}, but adapt received data of shape {b.shape}")
            if self.input_mean is not None:
                raise ValueError(f"Normalization {self.name!r}: adapt cannot be used when mean and variance were "
                                 "given to the constructor")
            b = b.astype(np.float64)
            m, v = b.mean(axis=self._reduce), b.var(axis=self._reduce)
            if single:
                total_mean, total_var = m, v
                break
            n = math.prod(b.shape[d] for d in self._reduce)
            if total_mean is None:
                total_mean, total_var, count = m, v, n
                continue
            count += n
            bw = n / count
            new_mean = total_mean * (1 - bw) + m * bw
            total_var = (total_var + (total_mean - new_mean) ** 2) * (1 - bw) + (v + (m - new_mean) ** 2) * bw
            total_mean = new_mean
        if total_mean is None:
            raise ValueError(f"Normalization {self.name!r}: adapt received no data (an empty iterable)")
        self.adapt_mean.assign(np.asarray(total_mean, dtype=self.dtype).reshape(self._stat_shape))
        self.adapt_variance.assign(np.asarray(total_var, dtype=self.dtype).reshape(self._stat_shape))

    def _stats(self, x):
        if self.input_mean is not None:
            return self._mean, self._std
        mean, var = self.adapt_mean, self.adapt_variance
        if mean.device != x.device:  # a standalone layer called on another device's tensors: host constants
            mean, var = mean.numpy().reshape(self._bshape), var.numpy().reshape(self._bshape)
            return mean, np.maximum(np.sqrt(var), EPSILON).astype(var.dtype)
        return ops.reshape(mean, self._bshape), ops.maximum(ops.sqrt(ops.reshape(var, self._bshape)), EPSILON)

    def call(self, inputs, training=None):
        inputs = _float(self, inputs)
        mean, std = self._stats(inputs)
        if self.invert:
            return ops.add(mean, ops.multiply(inputs, std))
        return ops.divide(ops.subtract(inputs, mean), std)

    def get_config(self):
        return {**super().get_config(), "axis": list(self.axis), "invert": self.invert,
                "mean": None if self.input_mean is None else self.input_mean.tolist(),
                "variance": None if self.input_variance is None else self.input_variance.tolist()}
