"""``ImageDataGenerator`` and its iterators (``NumpyArrayIterator``,
``DirectoryIterator``, ``DataFrameIterator``), as tf.keras 2's
``keras.preprocessing.image`` and Keras 3.15's
``keras.src.legacy.preprocessing.image``: the same arguments, defaults, random draws
(numpy's global generator, seeded as Keras seeds it) and values.

``load_img``, ``img_to_array``, ``array_to_img``, ``save_img`` and ``smart_resize``
are re-exported (lazily) from :mod:`convcore.utils.image_utils`.

How convcore computes, and where it differs from Keras:

* The geometric part of an augmentation (rotation, shifts, shear, zoom) runs in the
  native affine warp (``convcore._core.affine_warp``), one call per batch with the GIL
  released, instead of one ``scipy.ndimage.affine_transform`` call per image and
  channel. The matrices are Keras's (``transform_matrix_offset_center`` included, with
  its (height, width) centre for non-square images). ``interpolation_order`` 0 and 1
  are native; orders 2 to 5 (splines) use scipy, as Keras, when scipy is installed.
* The native warp follows scipy.ndimage's plain modes, as Keras passes them:
  ``fill_mode='constant'`` gives ``cval`` to any sample outside [0, n-1] (no
  blending), ``'wrap'`` has period n-1, ``'reflect'`` and ``'nearest'`` are scipy's,
  and ``interpolation_order=0`` takes the pixel at ``floor(c + 0.5)`` of the mapped
  coordinate (scipy's rounding of exact half-pixel ties). (The Random* layers keep
  Keras 3's grid modes.)
* Inside ``flow`` / ``flow_from_directory`` the parameters of a batch are drawn first
  (per sample, in Keras's order), then the batch is transformed, then
  ``preprocessing_function`` runs per image: a ``preprocessing_function`` that draws
  from ``np.random`` itself sees the generator after the whole batch's draws.
* ``brightness_range`` reproduces Pillow's ``ImageEnhance.Brightness`` (Keras's
  array_to_img / enhance / img_to_array round trip, 8-bit truncation included) in
  numpy on the whole batch; with ``data_format='channels_first'`` it works on the
  image's channels (Keras reads the channels-first array as channels-last there).
* ``data_format=None`` is ``'channels_last'`` (convcore's global layout);
  ``'channels_first'`` may be passed.
* ``fill_mode`` and ``interpolation_order`` are checked when the generator is made
  (Keras lets scipy refuse them at the first transform); so are the other arguments'
  types, ``batch_size`` and ``target_size``.
* ``flow(..., sample_weight=, subset=)`` slices ``sample_weight`` with the subset
  (Keras keeps the whole array and so pairs the wrong weights with the training
  subset).
* The iterators can be pickled (for worker processes): the copy starts a fresh
  index generator.
"""
from __future__ import annotations

import collections
import math
import os
import threading
import warnings

import numpy as np

__all__ = ["ImageDataGenerator", "Iterator", "NumpyArrayIterator", "DirectoryIterator", "DataFrameIterator",
           "apply_affine_transform", "apply_channel_shift", "apply_brightness_shift", "flip_axis",
           "random_rotation", "random_shift", "random_shear", "random_zoom", "random_channel_shift",
           "random_brightness",
           "transform_matrix_offset_center", "load_img", "img_to_array", "array_to_img", "save_img",
           "smart_resize"]

_IMAGE_UTILS = ("load_img", "img_to_array", "array_to_img", "save_img", "smart_resize")
FILL_MODES = ("constant", "nearest", "reflect", "wrap")
# The native warp's interpolation for each interpolation_order it computes, and its
# fill mode for each of Keras's: scipy.ndimage's plain modes (the Random* layers use
# the grid ones).
_NATIVE_ORDERS = {0: "ndimage_nearest", 1: "bilinear"}
_NATIVE_FILL_MODES = {"constant": "ndimage_constant", "nearest": "nearest", "reflect": "reflect",
                      "wrap": "ndimage_wrap"}


def __getattr__(name):
    if name in _IMAGE_UTILS:
        from ..utils import image_utils
        return getattr(image_utils, name)
    raise AttributeError(f"module 'convcore.preprocessing.image' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


def _floatx():
    from .. import backend
    return backend.floatx()


def _image_data_format():
    from .. import backend
    return backend.image_data_format()


try:
    from ..utils.py_dataset import PyDataset as _Base
except ImportError:  # pragma: no cover - py_dataset ships with convcore
    class _Base:
        """The Sequence protocol (``__len__`` / ``__getitem__`` / ``on_epoch_end``)."""

        def __init__(self, **kwargs):
            pass

        def on_epoch_end(self):
            pass


# ---------------------------------------------------------------------------------
# Transform helpers (Keras's module-level functions)
# ---------------------------------------------------------------------------------

def flip_axis(x, axis):
    """Reverse ``x`` along ``axis`` (Keras's ``flip_axis``)."""
    x = np.asarray(x).swapaxes(axis, 0)
    x = x[::-1, ...]
    return x.swapaxes(0, axis)


def transform_matrix_offset_center(matrix, x, y):
    """``matrix`` (3x3) about the centre of an image of ``x`` by ``y`` pixels, as Keras."""
    o_x = float(x) / 2 - 0.5
    o_y = float(y) / 2 - 0.5
    offset_matrix = np.array([[1, 0, o_x], [0, 1, o_y], [0, 0, 1]])
    reset_matrix = np.array([[1, 0, -o_x], [0, 1, -o_y], [0, 0, 1]])
    return np.dot(np.dot(offset_matrix, matrix), reset_matrix)


def _affine_matrix(theta=0, tx=0, ty=0, shear=0, zx=1, zy=1):
    """Keras's 3x3 matrix of ``apply_affine_transform`` before centring, or None for
    the identity (Keras then leaves the image untouched)."""
    transform_matrix = None
    if theta != 0:
        theta = np.deg2rad(theta)
        transform_matrix = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0],
                                     [0, 0, 1]])
    if tx != 0 or ty != 0:
        shift_matrix = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
        transform_matrix = shift_matrix if transform_matrix is None else np.dot(transform_matrix, shift_matrix)
    if shear != 0:
        shear = np.deg2rad(shear)
        shear_matrix = np.array([[1, -np.sin(shear), 0], [0, np.cos(shear), 0], [0, 0, 1]])
        transform_matrix = shear_matrix if transform_matrix is None else np.dot(transform_matrix, shear_matrix)
    if zx != 1 or zy != 1:
        zoom_matrix = np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
        transform_matrix = zoom_matrix if transform_matrix is None else np.dot(transform_matrix, zoom_matrix)
    return transform_matrix


def _warp_batch(x, matrices, fill_mode, cval, order):
    """Warp each image of the channels-last batch ``x`` (N, H, W, C) by its centred
    Keras matrix (N, 3, 3).

    Keras swaps the matrix's rows and columns to scipy's (row, col) order; in the
    kernel's (col, row) order the matrix is used as it is: output pixel (col, row)
    samples the input at ``M[:2] @ (col, row, 1)``.
    """
    matrices = np.asarray(matrices, dtype=np.float64)
    dtype = x.dtype
    if order in _NATIVE_ORDERS:
        from .. import _core
        work = dtype if dtype in (np.float32, np.float64) else (np.float64 if dtype.itemsize > 4 or
                                                                 dtype.kind in "iu" else np.float32)
        xw = np.ascontiguousarray(x, dtype=work)
        m = np.ascontiguousarray(matrices[:, :2, :].reshape(len(x), 6))
        out = _core.affine_warp(xw, m, _NATIVE_ORDERS[order], _NATIVE_FILL_MODES[fill_mode], float(cval))
    else:
        try:
            import scipy.ndimage
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(f"ImageDataGenerator: interpolation_order={order} (a spline) needs scipy; "
                              "orders 0 and 1 are native") from None
        out = np.empty_like(x)
        for i, mat in enumerate(matrices):
            mat = mat.copy()
            mat[:, [0, 1]] = mat[:, [1, 0]]
            mat[[0, 1]] = mat[[1, 0]]
            for c in range(x.shape[-1]):
                out[i, ..., c] = scipy.ndimage.affine_transform(x[i, ..., c], mat[:2, :2], mat[:2, 2], order=order,
                                                                mode=fill_mode, cval=cval)
        return out
    if out.dtype != dtype:
        out = np.rint(out) if dtype.kind in "iu" else out
        out = out.astype(dtype)
    return out


def apply_affine_transform(x, theta=0, tx=0, ty=0, shear=0, zx=1, zy=1, row_axis=1, col_axis=2, channel_axis=0,
                           fill_mode="nearest", cval=0.0, order=1):
    """Keras's ``apply_affine_transform`` of one image (3D), through the native warp
    (orders 0 and 1; see the module notes on 'constant', 'wrap' and order 0)."""
    if np.unique([row_axis, col_axis, channel_axis]).size != 3:
        raise ValueError("'row_axis', 'col_axis', and 'channel_axis' must be distinct")
    valid_indices = {0, 1, 2}
    actual_indices = {row_axis, col_axis, channel_axis}
    if actual_indices != valid_indices:
        raise ValueError(f"Invalid axis' indices: {actual_indices - valid_indices}")
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError("Input arrays must be multi-channel 2D images.")
    if channel_axis not in [0, 2]:
        raise ValueError("Channels are allowed and the first and last dimensions.")
    _check_fill_mode("apply_affine_transform", fill_mode)
    _check_order("apply_affine_transform", "order", order)
    matrix = _affine_matrix(theta, tx, ty, shear, zx, zy)
    if matrix is None:
        return x
    h, w = x.shape[row_axis], x.shape[col_axis]
    matrix = transform_matrix_offset_center(matrix, h, w)
    hwc = np.transpose(x, (row_axis, col_axis, channel_axis))
    out = _warp_batch(hwc[None], matrix[None], fill_mode, cval, order)[0]
    return np.transpose(out, np.argsort((row_axis, col_axis, channel_axis)))


def apply_channel_shift(x, intensity, channel_axis=0):
    """Keras's ``apply_channel_shift``: add ``intensity`` to every channel, clipped to
    the image's own [min, max]."""
    x = np.asarray(x)
    return np.clip(x + intensity, np.min(x), np.max(x))


def _brightness_batch(x, brightness):
    """Keras's ``apply_brightness_shift(x, b, scale=False)`` on each channels-last image
    of ``x`` (N, H, W, C), as Pillow computes it: the image to 8 bits (rescaled to
    [0, 255] first when it leaves that range), each colour band times ``b`` truncated
    to an integer in [0, 255] (``ImageEnhance.Brightness`` = ``Image.blend`` with
    black, in single precision), the alpha band of an RGBA image kept, and the result
    mapped back to the image's range where it was rescaled."""
    n, c = x.shape[0], x.shape[-1]
    if c not in (1, 3, 4):
        raise ValueError(f"Unsupported channel number: {c}")
    floatx = _floatx()
    axes = tuple(range(1, x.ndim))
    x_min = np.min(x, axis=axes, keepdims=True)
    x_max = np.max(x, axis=axes, keepdims=True)
    local = (x_min < 0) | (x_max > 255)
    a = np.asarray(x, dtype=floatx)
    if local.any():
        s = a - np.min(a, axis=axes, keepdims=True)
        s_max = np.max(s, axis=axes, keepdims=True)
        s = np.where(s_max != 0, s / np.where(s_max != 0, s_max, 1), s)
        s *= 255
        a = np.where(local, s, a)
    v = a.astype(np.uint8).astype(np.float32)
    b = np.asarray(brightness, dtype=np.float32).reshape((n,) + (1,) * (x.ndim - 1))
    out = np.clip(np.trunc(b * v), 0, 255).astype(floatx)
    if c == 4:
        out[..., 3] = v[..., 3]
    if local.any():
        back = out / 255 * (x_max - x_min) + x_min
        out = np.where(local, back, out)
    return out


def apply_brightness_shift(x, brightness, scale=True):
    """Keras's ``apply_brightness_shift`` of one channels-last image (3D), computed as
    Pillow's ``ImageEnhance.Brightness`` (see :func:`_brightness_batch`)."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"Expected image array to have rank 3 (single image). Got array with shape: {x.shape}")
    if scale:
        x_min, x_max = np.min(x), np.max(x)
        a = np.asarray(x, dtype=_floatx())
        a = a - np.min(a)
        if np.max(a) != 0:
            a = a / np.max(a)
        a = a * 255
        # the image is now in [0, 255]: Keras keeps it there (no mapping back)
        return _brightness_batch(a[None], [brightness])[0]
    return _brightness_batch(x[None], [brightness])[0]


def random_rotation(x, rg, row_axis=1, col_axis=2, channel_axis=0, fill_mode="nearest", cval=0.0,
                    interpolation_order=1):
    """Keras's ``random_rotation``: rotate one image by U(-rg, rg) degrees."""
    theta = np.random.uniform(-rg, rg)
    return apply_affine_transform(x, theta=theta, row_axis=row_axis, col_axis=col_axis, channel_axis=channel_axis,
                                  fill_mode=fill_mode, cval=cval, order=interpolation_order)


def random_shift(x, wrg, hrg, row_axis=1, col_axis=2, channel_axis=0, fill_mode="nearest", cval=0.0,
                 interpolation_order=1):
    """Keras's ``random_shift``: shift by fractions U(-hrg, hrg) of the height and
    U(-wrg, wrg) of the width."""
    x = np.asarray(x)
    h, w = x.shape[row_axis], x.shape[col_axis]
    tx = np.random.uniform(-hrg, hrg) * h
    ty = np.random.uniform(-wrg, wrg) * w
    return apply_affine_transform(x, tx=tx, ty=ty, row_axis=row_axis, col_axis=col_axis, channel_axis=channel_axis,
                                  fill_mode=fill_mode, cval=cval, order=interpolation_order)


def random_shear(x, intensity, row_axis=1, col_axis=2, channel_axis=0, fill_mode="nearest", cval=0.0,
                 interpolation_order=1):
    """Keras's ``random_shear``: shear by U(-intensity, intensity) degrees."""
    shear = np.random.uniform(-intensity, intensity)
    return apply_affine_transform(x, shear=shear, row_axis=row_axis, col_axis=col_axis, channel_axis=channel_axis,
                                  fill_mode=fill_mode, cval=cval, order=interpolation_order)


def random_zoom(x, zoom_range, row_axis=1, col_axis=2, channel_axis=0, fill_mode="nearest", cval=0.0,
                interpolation_order=1):
    """Keras's ``random_zoom``: zoom factors (zx, zy) from U(zoom_range)."""
    if len(zoom_range) != 2:
        raise ValueError(f"`zoom_range` should be a tuple or list of two floats. Received: {zoom_range}")
    if zoom_range[0] == 1 and zoom_range[1] == 1:
        zx, zy = 1, 1
    else:
        zx, zy = np.random.uniform(zoom_range[0], zoom_range[1], 2)
    return apply_affine_transform(x, zx=zx, zy=zy, row_axis=row_axis, col_axis=col_axis, channel_axis=channel_axis,
                                  fill_mode=fill_mode, cval=cval, order=interpolation_order)


def random_channel_shift(x, intensity_range, channel_axis=0):
    """Keras's ``random_channel_shift``: :func:`apply_channel_shift` by
    U(-intensity_range, intensity_range)."""
    intensity = np.random.uniform(-intensity_range, intensity_range)
    return apply_channel_shift(x, intensity, channel_axis=channel_axis)


def random_brightness(x, brightness_range, scale=True):
    """Keras's ``random_brightness``: :func:`apply_brightness_shift` by a factor from
    U(brightness_range)."""
    if len(brightness_range) != 2:
        raise ValueError(f"`brightness_range should be tuple or list of two floats. Received: {brightness_range}")
    u = np.random.uniform(brightness_range[0], brightness_range[1])
    return apply_brightness_shift(x, u, scale)


def _check_fill_mode(where, fill_mode):
    if fill_mode not in FILL_MODES:
        raise ValueError(f"{where}: `fill_mode` must be one of {{'constant', 'nearest', 'reflect', 'wrap'}}. "
                         f"Received: fill_mode={fill_mode!r}")


def _check_order(where, name, order):
    if isinstance(order, (bool, np.bool_)) or not isinstance(order, (int, np.integer)) or not 0 <= order <= 5:
        raise ValueError(f"{where}: `{name}` must be an integer spline order from 0 to 5 (scipy's). "
                         f"Received: {name}={order!r}")


# ---------------------------------------------------------------------------------
# Iterators
# ---------------------------------------------------------------------------------

class Iterator(_Base):
    """Base class of the image data iterators (Keras's ``Iterator``): a
    :class:`convcore.utils.PyDataset` of ``ceil(n / batch_size)`` batches, and an
    endless thread-safe iterator (``next(it)``, tf.keras 2's ``it.next()``).

    Subclasses implement ``_get_batches_of_transformed_samples(index_array)``.

    Parameters
    ----------
    n : int
        Number of samples.
    batch_size : int
    shuffle : bool
        Reshuffle the order at every pass.
    seed : int or None
        Seeds ``np.random`` (with ``seed + total_batches_seen``) before each batch, as
        Keras.
    **kwargs
        ``workers``, ``use_multiprocessing``, ``max_queue_size`` of ``PyDataset``.
    """

    white_list_formats = ("png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff")

    def __init__(self, n, batch_size, shuffle, seed, **kwargs):
        super().__init__(**kwargs)
        if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
        self.n = n
        self.batch_size = int(batch_size)
        self.seed = seed
        self.shuffle = shuffle
        self.batch_index = 0
        self.total_batches_seen = 0
        self.lock = threading.Lock()
        self.index_array = None
        self.index_generator = self._flow_index()

    def __getstate__(self):
        # worker processes (PyDataset's use_multiprocessing) get a copy without the
        # lock and the running index generator; both are made afresh there
        state = self.__dict__.copy()
        state.pop("lock", None)
        state.pop("index_generator", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.lock = threading.Lock()
        self.index_generator = self._flow_index()

    def _set_index_array(self):
        self.index_array = np.arange(self.n)
        if self.shuffle:
            self.index_array = np.random.permutation(self.n)

    def __getitem__(self, idx):
        if idx >= len(self):
            raise ValueError(f"Asked to retrieve element {idx}, but the Sequence has length {len(self)}")
        if self.seed is not None:
            np.random.seed(self.seed + self.total_batches_seen)
        self.total_batches_seen += 1
        if self.index_array is None:
            self._set_index_array()
        index_array = self.index_array[self.batch_size * idx:self.batch_size * (idx + 1)]
        return self._get_batches_of_transformed_samples(index_array)

    def __len__(self):
        return (self.n + self.batch_size - 1) // self.batch_size  # round up

    def on_epoch_end(self):
        self._set_index_array()

    def reset(self):
        self.batch_index = 0

    def _flow_index(self):
        self.reset()
        while 1:
            if self.seed is not None:
                np.random.seed(self.seed + self.total_batches_seen)
            if self.batch_index == 0:
                self._set_index_array()
            current_index = 0 if self.n == 0 else (self.batch_index * self.batch_size) % self.n
            if self.n > current_index + self.batch_size:
                self.batch_index += 1
            else:
                self.batch_index = 0
            self.total_batches_seen += 1
            yield self.index_array[current_index:current_index + self.batch_size]

    def __iter__(self):
        return self

    def __next__(self):
        with self.lock:
            index_array = next(self.index_generator)
        # the transformation runs outside the lock, so threads can share the work
        return self._get_batches_of_transformed_samples(index_array)

    def next(self):
        """The next batch (tf.keras 2's ``Iterator.next()``; ``next(it)`` also works)."""
        return self.__next__()

    def _get_batches_of_transformed_samples(self, index_array):
        raise NotImplementedError


def _save_batch(batch_x, index_array, data_format, save_to_dir, save_prefix, save_format, hash_high):
    from ..utils import image_utils
    for i, j in enumerate(index_array):
        img = image_utils.array_to_img(batch_x[i], data_format, scale=True)
        fname = f"{save_prefix}_{j}_{np.random.randint(hash_high)}.{save_format}"
        img.save(os.path.join(save_to_dir, fname))


class NumpyArrayIterator(Iterator):
    """Batches of ``x`` (rank 4), transformed by an :class:`ImageDataGenerator`, as
    Keras's ``NumpyArrayIterator``: ``x`` alone, ``(x, y)`` or ``(x, y,
    sample_weight)``; ``x`` may be ``[images, other]`` (or ``(images, [others...])``),
    the other arrays sliced along and returned untransformed after the images."""

    def __init__(self, x, y, image_data_generator, batch_size=32, shuffle=False, sample_weight=None, seed=None,
                 data_format=None, save_to_dir=None, save_prefix="", save_format="png", subset=None,
                 ignore_class_split=False, dtype=None, **kwargs):
        if data_format is None:
            data_format = _image_data_format()
        if dtype is None:
            dtype = _floatx()
        self.dtype = dtype
        if isinstance(x, (tuple, list)):
            if not isinstance(x[1], list):
                x_misc = [np.asarray(x[1])]
            else:
                x_misc = [np.asarray(xx) for xx in x[1]]
            x = x[0]
            for xx in x_misc:
                if len(x) != len(xx):
                    raise ValueError("All of the arrays in `x` should have the same length. Found a pair with: "
                                     f"len(x[0]) = {len(x)}, len(x[?]) = {len(xx)}")
        else:
            x_misc = []
        if not hasattr(x, "__len__"):
            raise TypeError(f"`x` must be an array of images of rank 4. Received: x of type {type(x).__name__}")
        if y is not None and len(x) != len(y):
            raise ValueError("`x` (images tensor) and `y` (labels) should have the same length. "
                             f"Found: x.shape = {np.asarray(x).shape}, y.shape = {np.asarray(y).shape}")
        if sample_weight is not None and len(x) != len(sample_weight):
            raise ValueError("`x` (images tensor) and `sample_weight` should have the same length. "
                             f"Found: x.shape = {np.asarray(x).shape}, "
                             f"sample_weight.shape = {np.asarray(sample_weight).shape}")
        if subset is not None:
            if subset not in {"training", "validation"}:
                raise ValueError(f'Invalid subset name: {subset}; expected "training" or "validation".')
            split_idx = int(len(x) * image_data_generator._validation_split)
            if (y is not None and not ignore_class_split
                    and not np.array_equal(np.unique(y[:split_idx]), np.unique(y[split_idx:]))):
                raise ValueError("Training and validation subsets have different number of classes after the "
                                 "split. If your numpy arrays are sorted by the label, you might want to shuffle "
                                 "them.")
            if subset == "validation":
                x = x[:split_idx]
                x_misc = [np.asarray(xx[:split_idx]) for xx in x_misc]
                if y is not None:
                    y = y[:split_idx]
                if sample_weight is not None:
                    # Keras leaves sample_weight unsliced (a length mismatch); convcore slices it along
                    sample_weight = sample_weight[:split_idx]
            else:
                x = x[split_idx:]
                x_misc = [np.asarray(xx[split_idx:]) for xx in x_misc]
                if y is not None:
                    y = y[split_idx:]
                if sample_weight is not None:
                    sample_weight = sample_weight[split_idx:]
        self.x = np.asarray(x, dtype=self.dtype)
        self.x_misc = x_misc
        if self.x.ndim != 4:
            raise ValueError("Input data in `NumpyArrayIterator` should have rank 4. You passed an array with "
                             f"shape {self.x.shape}")
        channels_axis = 3 if data_format == "channels_last" else 1
        if self.x.shape[channels_axis] not in {1, 3, 4}:
            warnings.warn(f'NumpyArrayIterator is set to use the data format convention "{data_format}" '
                          f"(channels on axis {channels_axis}), i.e. expected either 1, 3, or 4 channels on axis "
                          f"{channels_axis}. However, it was passed an array with shape {self.x.shape} "
                          f"({self.x.shape[channels_axis]} channels).", stacklevel=2)
        self.y = np.asarray(y) if y is not None else None
        self.sample_weight = np.asarray(sample_weight) if sample_weight is not None else None
        self.image_data_generator = image_data_generator
        self.data_format = data_format
        self.save_to_dir = save_to_dir
        self.save_prefix = save_prefix
        self.save_format = save_format
        super().__init__(self.x.shape[0], batch_size, shuffle, seed, **kwargs)

    def _get_batches_of_transformed_samples(self, index_array):
        gen = self.image_data_generator
        batch_x = np.array(self.x[index_array], dtype=self.dtype)
        params = [gen.get_random_transform(batch_x.shape[1:]) for _ in range(len(batch_x))]
        batch_x = gen._apply_transforms(batch_x, params)
        batch_x = np.asarray(gen._standardize_batch(batch_x), dtype=self.dtype)
        if self.save_to_dir:
            _save_batch(batch_x, index_array, self.data_format, self.save_to_dir, self.save_prefix,
                        self.save_format, 1e4)
        batch_x_miscs = [xx[index_array] for xx in self.x_misc]
        output = (batch_x if not batch_x_miscs else [batch_x] + batch_x_miscs,)
        if self.y is None:
            return output[0]
        output += (self.y[index_array],)
        if self.sample_weight is not None:
            output += (self.sample_weight[index_array],)
        return output


def _iter_valid_files(directory, white_list_formats, follow_links):
    for root, _, files in sorted(os.walk(directory, followlinks=follow_links), key=lambda t: t[0]):
        for fname in sorted(files):
            if fname.lower().endswith(".tiff"):
                warnings.warn('Using ".tiff" files with multiple bands will cause distortion. Please verify your '
                              "output.", stacklevel=3)
            if fname.lower().endswith(white_list_formats):
                yield root, fname


def _list_valid_filenames_in_directory(directory, white_list_formats, split, class_indices, follow_links):
    dirname = os.path.basename(directory)
    if split:
        all_files = list(_iter_valid_files(directory, white_list_formats, follow_links))
        num_files = len(all_files)
        start, stop = int(split[0] * num_files), int(split[1] * num_files)
        valid_files = all_files[start:stop]
    else:
        valid_files = _iter_valid_files(directory, white_list_formats, follow_links)
    classes, filenames = [], []
    for root, fname in valid_files:
        classes.append(class_indices[dirname])
        absolute_path = os.path.join(root, fname)
        filenames.append(os.path.join(dirname, os.path.relpath(absolute_path, directory)))
    return classes, filenames


class BatchFromFilesMixin:
    """Batches from image files (Keras's mixin of the directory and dataframe
    iterators): each file loaded with ``load_img``, the batch transformed at once."""

    def set_processing_attrs(self, image_data_generator, target_size, color_mode, data_format, save_to_dir,
                             save_prefix, save_format, subset, interpolation, keep_aspect_ratio):
        self.image_data_generator = image_data_generator
        try:
            self.target_size = tuple(int(v) for v in target_size)
            ok = len(self.target_size) == 2 and all(v > 0 for v in self.target_size)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError("`target_size` must be a tuple of two positive integers (height, width). "
                             f"Received: target_size={target_size!r}")
        self.keep_aspect_ratio = keep_aspect_ratio
        if color_mode not in {"rgb", "rgba", "grayscale"}:
            raise ValueError(f'Invalid color mode: {color_mode}; expected "rgb", "rgba", or "grayscale".')
        self.color_mode = color_mode
        self.data_format = data_format
        channels = {"rgba": 4, "rgb": 3, "grayscale": 1}[color_mode]
        if data_format == "channels_last":
            self.image_shape = self.target_size + (channels,)
        else:
            self.image_shape = (channels,) + self.target_size
        self.save_to_dir = save_to_dir
        self.save_prefix = save_prefix
        self.save_format = save_format
        self.interpolation = interpolation
        if subset is not None:
            validation_split = self.image_data_generator._validation_split
            if subset == "validation":
                split = (0, validation_split)
            elif subset == "training":
                split = (validation_split, 1)
            else:
                raise ValueError(f'Invalid subset name: {subset};expected "training" or "validation"')
        else:
            split = None
        self.split = split
        self.subset = subset

    def _get_batches_of_transformed_samples(self, index_array):
        from ..utils import image_utils
        batch_x = np.zeros((len(index_array),) + self.image_shape, dtype=self.dtype)
        filepaths = self.filepaths
        for i, j in enumerate(index_array):
            img = image_utils.load_img(filepaths[j], color_mode=self.color_mode, target_size=self.target_size,
                                       interpolation=self.interpolation, keep_aspect_ratio=self.keep_aspect_ratio)
            batch_x[i] = image_utils.img_to_array(img, data_format=self.data_format)
            if hasattr(img, "close"):
                img.close()
        gen = self.image_data_generator
        if gen:
            params = [gen.get_random_transform(self.image_shape) for _ in range(len(batch_x))]
            batch_x = gen._apply_transforms(batch_x, params)
            batch_x = np.asarray(gen._standardize_batch(batch_x), dtype=self.dtype)
        if self.save_to_dir:
            _save_batch(batch_x, index_array, self.data_format, self.save_to_dir, self.save_prefix,
                        self.save_format, 1e7)
        if self.class_mode == "input":
            batch_y = batch_x.copy()
        elif self.class_mode in {"binary", "sparse"}:
            batch_y = np.empty(len(batch_x), dtype=self.dtype)
            for i, n_observation in enumerate(index_array):
                batch_y[i] = self.classes[n_observation]
        elif self.class_mode == "categorical":
            batch_y = np.zeros((len(batch_x), len(self.class_indices)), dtype=self.dtype)
            for i, n_observation in enumerate(index_array):
                batch_y[i, self.classes[n_observation]] = 1.0
        elif self.class_mode == "multi_output":
            batch_y = [output[index_array] for output in self.labels]
        elif self.class_mode == "raw":
            batch_y = self.labels[index_array]
        else:
            return batch_x
        if self.sample_weight is None:
            return batch_x, batch_y
        return batch_x, batch_y, self.sample_weight[index_array]

    @property
    def filepaths(self):
        """List of absolute paths to image files."""
        raise NotImplementedError(f"`filepaths` property method has not been implemented in {type(self).__name__}.")

    @property
    def labels(self):
        """Class labels of every observation."""
        raise NotImplementedError(f"`labels` property method has not been implemented in {type(self).__name__}.")

    @property
    def sample_weight(self):
        raise NotImplementedError(f"`sample_weight` property method has not been implemented in "
                                  f"{type(self).__name__}.")


class DirectoryIterator(BatchFromFilesMixin, Iterator):
    """Batches of the images in the class subfolders of ``directory``, as Keras's
    ``DirectoryIterator``: ``class_indices`` (folder name to index, sorted),
    ``classes`` (int32, one per file), ``filenames`` (relative to ``directory``, in
    folder then sorted file order), ``filepaths``, ``labels``, ``samples``."""

    allowed_class_modes = {"categorical", "binary", "sparse", "input", None}

    def __init__(self, directory, image_data_generator, target_size=(256, 256), color_mode="rgb", classes=None,
                 class_mode="categorical", batch_size=32, shuffle=True, seed=None, data_format=None,
                 save_to_dir=None, save_prefix="", save_format="png", follow_links=False, subset=None,
                 interpolation="nearest", keep_aspect_ratio=False, dtype=None, **kwargs):
        if data_format is None:
            data_format = _image_data_format()
        if dtype is None:
            dtype = _floatx()
        super().set_processing_attrs(image_data_generator, target_size, color_mode, data_format, save_to_dir,
                                     save_prefix, save_format, subset, interpolation, keep_aspect_ratio)
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise ValueError(f"`directory` must be an existing folder of class subfolders. Received: "
                             f"directory={directory!r}")
        self.directory = directory
        self.classes = classes
        if class_mode not in self.allowed_class_modes:
            raise ValueError(f"Invalid class_mode: {class_mode}; expected one of: {self.allowed_class_modes}")
        self.class_mode = class_mode
        self.dtype = dtype
        self.samples = 0
        if not classes:
            classes = [d for d in sorted(os.listdir(directory)) if os.path.isdir(os.path.join(directory, d))]
        self.num_classes = len(classes)
        self.class_indices = dict(zip(classes, range(len(classes))))
        self.filenames = []
        classes_list = []
        for subdir in classes:
            cls, filenames = _list_valid_filenames_in_directory(os.path.join(directory, subdir),
                                                                self.white_list_formats, self.split,
                                                                self.class_indices, follow_links)
            classes_list.append(cls)
            self.filenames += filenames
        self.samples = len(self.filenames)
        self.classes = np.zeros((self.samples,), dtype="int32")
        i = 0
        for cls in classes_list:
            self.classes[i:i + len(cls)] = cls
            i += len(cls)
        print(f"Found {self.samples} images belonging to {self.num_classes} classes.")
        self._filepaths = [os.path.join(self.directory, fname) for fname in self.filenames]
        super().__init__(self.samples, batch_size, shuffle, seed, **kwargs)

    @property
    def filepaths(self):
        return self._filepaths

    @property
    def labels(self):
        return self.classes

    @property
    def sample_weight(self):
        return None


def validate_filename(filename, white_list_formats):
    """Whether ``filename`` is an existing file with an allowed extension."""
    return filename.lower().endswith(white_list_formats) and os.path.isfile(filename)


class DataFrameIterator(BatchFromFilesMixin, Iterator):
    """Batches of the image files named in a pandas DataFrame, as Keras's
    ``DataFrameIterator`` (``x_col`` the file names, relative to ``directory`` if
    given; ``y_col`` the labels; ``weight_col`` optional sample weights)."""

    allowed_class_modes = {"binary", "categorical", "input", "multi_output", "raw", "sparse", None}

    def __init__(self, dataframe, directory=None, image_data_generator=None, x_col="filename", y_col="class",
                 weight_col=None, target_size=(256, 256), color_mode="rgb", classes=None,
                 class_mode="categorical", batch_size=32, shuffle=True, seed=None, data_format="channels_last",
                 save_to_dir=None, save_prefix="", save_format="png", subset=None, interpolation="nearest",
                 keep_aspect_ratio=False, dtype="float32", validate_filenames=True, **kwargs):
        super().set_processing_attrs(image_data_generator, target_size, color_mode, data_format, save_to_dir,
                                     save_prefix, save_format, subset, interpolation, keep_aspect_ratio)
        df = dataframe.copy()
        self.directory = os.fspath(directory) if directory else ""
        self.class_mode = class_mode
        self.dtype = dtype
        self._check_params(df, x_col, y_col, weight_col, classes)
        if validate_filenames:
            df = self._filter_valid_filepaths(df, x_col)
        if class_mode not in ["input", "multi_output", "raw", None]:
            df, classes = self._filter_classes(df, y_col, classes)
            num_classes = len(classes)
            self.class_indices = dict(zip(classes, range(len(classes))))
        if self.split:
            num_files = len(df)
            start, stop = int(self.split[0] * num_files), int(self.split[1] * num_files)
            df = df.iloc[start:stop, :]
        if class_mode not in ["input", "multi_output", "raw", None]:
            self.classes = self.get_classes(df, y_col)
        self.filenames = df[x_col].tolist()
        self._sample_weight = df[weight_col].values if weight_col else None
        if class_mode == "multi_output":
            self._targets = [np.array(df[col].tolist()) for col in y_col]
        if class_mode == "raw":
            self._targets = df[y_col].values
        self.samples = len(self.filenames)
        validated_string = "validated" if validate_filenames else "non-validated"
        if class_mode in ["input", "multi_output", "raw", None]:
            print(f"Found {self.samples} {validated_string} image filenames.")
        else:
            print(f"Found {self.samples} {validated_string} image filenames belonging to {num_classes} classes.")
        self._filepaths = [os.path.join(self.directory, fname) for fname in self.filenames]
        super().__init__(self.samples, batch_size, shuffle, seed, **kwargs)

    def _check_params(self, df, x_col, y_col, weight_col, classes):
        if self.class_mode not in self.allowed_class_modes:
            raise ValueError(f"Invalid class_mode: {self.class_mode}; expected one of: {self.allowed_class_modes}")
        if self.class_mode == "multi_output" and not isinstance(y_col, list):
            raise TypeError(f'If class_mode="{self.class_mode}", y_col must be a list. Received '
                            f"{type(y_col).__name__}.")
        if x_col not in df.columns:
            raise ValueError(f"x_col={x_col!r} is not a column of the dataframe (columns: {list(df.columns)})")
        if not all(df[x_col].apply(lambda v: isinstance(v, str))):
            raise TypeError(f"All values in column x_col={x_col} must be strings.")
        if self.class_mode in {"binary", "sparse"}:
            if not all(df[y_col].apply(lambda v: isinstance(v, str))):
                raise TypeError(f'If class_mode="{self.class_mode}", y_col="{y_col}" column values must be strings.')
        if self.class_mode == "binary":
            if classes:
                classes = set(classes)
                if len(classes) != 2:
                    raise ValueError(f'If class_mode="binary" there must be 2 classes. {len(classes)} class/es '
                                     "were given.")
            elif df[y_col].nunique() != 2:
                raise ValueError(f'If class_mode="binary" there must be 2 classes. Found {df[y_col].nunique()} '
                                 "classes.")
        if self.class_mode == "categorical":
            types = (str, list, tuple)
            if not all(df[y_col].apply(lambda v: isinstance(v, types))):
                raise TypeError(f'If class_mode="{self.class_mode}", y_col="{y_col}" column values must be type '
                                "string, list or tuple.")
        if classes and self.class_mode in {"input", "multi_output", "raw", None}:
            warnings.warn(f'`classes` will be ignored given the class_mode="{self.class_mode}"', stacklevel=4)
        if weight_col and not issubclass(df[weight_col].dtype.type, np.number):
            raise TypeError(f"Column weight_col={weight_col} must be numeric.")

    def get_classes(self, df, y_col):
        labels = []
        for label in df[y_col]:
            if isinstance(label, (list, tuple)):
                labels.append([self.class_indices[lbl] for lbl in label])
            else:
                labels.append(self.class_indices[label])
        return labels

    @staticmethod
    def _filter_classes(df, y_col, classes):
        df = df.copy()

        def remove_classes(labels, classes):
            if isinstance(labels, (list, tuple)):
                labels = [cls for cls in labels if cls in classes]
                return labels or None
            if isinstance(labels, str):
                return labels if labels in classes else None
            raise TypeError(f"Expect string, list or tuple but found {type(labels)} in {y_col} column ")

        if classes:
            classes = list(collections.OrderedDict.fromkeys(classes).keys())
            df[y_col] = df[y_col].apply(lambda v: remove_classes(v, classes))
        else:
            found = set()
            for v in df[y_col]:
                if isinstance(v, (list, tuple)):
                    found.update(v)
                else:
                    found.add(v)
            classes = sorted(found)
        return df.dropna(subset=[y_col]), classes

    def _filter_valid_filepaths(self, df, x_col):
        filepaths = df[x_col].map(lambda fname: os.path.join(self.directory, fname))
        mask = filepaths.apply(validate_filename, args=(self.white_list_formats,))
        n_invalid = (~mask).sum()
        if n_invalid:
            warnings.warn(f'Found {n_invalid} invalid image filename(s) in x_col="{x_col}". These filename(s) '
                          "will be ignored.", stacklevel=4)
        return df[mask]

    @property
    def filepaths(self):
        return self._filepaths

    @property
    def labels(self):
        if self.class_mode in {"multi_output", "raw"}:
            return self._targets
        return self.classes

    @property
    def sample_weight(self):
        return self._sample_weight


# ---------------------------------------------------------------------------------
# ImageDataGenerator
# ---------------------------------------------------------------------------------

def _is_number(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


class ImageDataGenerator:
    """Real-time image augmentation and normalisation, as tf.keras 2's
    ``ImageDataGenerator`` (Keras 3's ``keras.src.legacy.preprocessing.image``).

    Parameters
    ----------
    featurewise_center, samplewise_center : bool, default False
        Subtract the per-channel dataset mean (from :meth:`fit`) / each image's mean.
    featurewise_std_normalization, samplewise_std_normalization : bool, default False
        Divide by the per-channel dataset std (+1e-6) / each image's std (+1e-6).
    zca_whitening : bool, default False
        ZCA whitening with the matrix :meth:`fit` computes (sets featurewise_center).
    zca_epsilon : float, default 1e-6
    rotation_range : float, default 0
        Degrees; theta is drawn from U(-range, range).
    width_shift_range, height_shift_range : float, int or sequence, default 0.0
        Fraction of the size (< 1), pixels (>= 1), or a list of choices (times +-1).
    brightness_range : (float, float) or None
        Brightness factor range (Pillow's ``ImageEnhance.Brightness``).
    shear_range : float, default 0.0
        Shear angle in degrees (counter-clockwise).
    zoom_range : float or (float, float), default 0.0
        ``[1 - zoom_range, 1 + zoom_range]`` or ``[lower, upper]``.
    channel_shift_range : float, default 0.0
    fill_mode : {'nearest', 'constant', 'reflect', 'wrap'}, default 'nearest'
    cval : float, default 0.0
        The fill value for ``fill_mode='constant'``.
    horizontal_flip, vertical_flip : bool, default False
    rescale : float or None
        Multiplies the data (after the other transforms, before normalisation).
    preprocessing_function : callable or None
        Called on each image (rank 3) after the augmentation, first in
        :meth:`standardize`.
    data_format : {'channels_last', 'channels_first'} or None
        None: ``convcore.backend.image_data_format()`` ('channels_last').
    validation_split : float, default 0.0
        Fraction kept for ``subset='validation'`` (strictly between 0 and 1).
    interpolation_order : int, default 1
        0 (nearest) and 1 (bilinear) are native; 2-5 (splines) need scipy.
    dtype : str or None
        None: ``convcore.backend.floatx()``.

    See the module notes for where convcore differs from Keras (the order of draws
    of a ``preprocessing_function``).

    Examples
    --------
    >>> import numpy as np
    >>> from convcore.preprocessing.image import ImageDataGenerator
    >>> gen = ImageDataGenerator(rotation_range=20, horizontal_flip=True, rescale=1 / 255)
    >>> x = np.random.default_rng(0).uniform(0, 255, (10, 8, 8, 3))
    >>> it = gen.flow(x, np.arange(10), batch_size=4, seed=1)
    >>> xb, yb = next(it)
    >>> xb.shape, xb.dtype, len(it)
    ((4, 8, 8, 3), dtype('float32'), 3)
    """

    def __init__(self, featurewise_center=False, samplewise_center=False, featurewise_std_normalization=False,
                 samplewise_std_normalization=False, zca_whitening=False, zca_epsilon=1e-6, rotation_range=0,
                 width_shift_range=0.0, height_shift_range=0.0, brightness_range=None, shear_range=0.0,
                 zoom_range=0.0, channel_shift_range=0.0, fill_mode="nearest", cval=0.0, horizontal_flip=False,
                 vertical_flip=False, rescale=None, preprocessing_function=None, data_format=None,
                 validation_split=0.0, interpolation_order=1, dtype=None):
        if data_format is None:
            data_format = _image_data_format()
        if dtype is None:
            dtype = _floatx()
        self.featurewise_center = featurewise_center
        self.samplewise_center = samplewise_center
        self.featurewise_std_normalization = featurewise_std_normalization
        self.samplewise_std_normalization = samplewise_std_normalization
        self.zca_whitening = zca_whitening
        self.zca_epsilon = zca_epsilon
        for name, value in (("rotation_range", rotation_range), ("shear_range", shear_range),
                            ("channel_shift_range", channel_shift_range), ("cval", cval)):
            if not _is_number(value):
                raise ValueError(f"`{name}` must be a number. Received: {name}={value!r}")
        for name, value in (("width_shift_range", width_shift_range), ("height_shift_range", height_shift_range)):
            ok = _is_number(value) or (isinstance(value, (list, tuple, np.ndarray)) and len(value) > 0
                                       and all(_is_number(v) for v in np.ravel(value)))
            if not ok:
                raise ValueError(f"`{name}` must be a float (a fraction of the size if < 1, else pixels), an "
                                 f"int (pixels) or a non-empty sequence of numbers to choose from. "
                                 f"Received: {name}={value!r}")
        if preprocessing_function is not None and not callable(preprocessing_function):
            raise TypeError("`preprocessing_function` must be a callable taking and returning one image (rank 3). "
                            f"Received: preprocessing_function={preprocessing_function!r}")
        if rescale is not None and not _is_number(rescale):
            raise ValueError(f"`rescale` must be a number or None. Received: rescale={rescale!r}")
        _check_fill_mode("ImageDataGenerator", fill_mode)
        _check_order("ImageDataGenerator", "interpolation_order", interpolation_order)
        self.rotation_range = rotation_range
        self.width_shift_range = width_shift_range
        self.height_shift_range = height_shift_range
        self.shear_range = shear_range
        self.zoom_range = zoom_range
        self.channel_shift_range = channel_shift_range
        self.fill_mode = fill_mode
        self.cval = cval
        self.horizontal_flip = horizontal_flip
        self.vertical_flip = vertical_flip
        self.rescale = rescale
        self.preprocessing_function = preprocessing_function
        self.dtype = dtype
        self.interpolation_order = interpolation_order
        if data_format not in {"channels_last", "channels_first"}:
            raise ValueError('`data_format` should be `"channels_last"` (channel after row and column) or '
                             '`"channels_first"` (channel before row and column). '
                             f"Received: {data_format}")
        self.data_format = data_format
        if data_format == "channels_first":
            self.channel_axis, self.row_axis, self.col_axis = 1, 2, 3
        else:
            self.channel_axis, self.row_axis, self.col_axis = 3, 1, 2
        if validation_split and not 0 < validation_split < 1:
            raise ValueError(f"`validation_split` must be strictly between 0 and 1.  Received: {validation_split}")
        self._validation_split = validation_split
        self.mean = None
        self.std = None
        self.zca_whitening_matrix = None
        if _is_number(zoom_range):
            self.zoom_range = [1 - zoom_range, 1 + zoom_range]
        elif (isinstance(zoom_range, (list, tuple, np.ndarray)) and len(zoom_range) == 2
              and all(_is_number(v) for v in zoom_range)):
            self.zoom_range = [zoom_range[0], zoom_range[1]]
        else:
            raise ValueError(f"`zoom_range` should be a float or a tuple or list of two floats. Received: {zoom_range}")
        if zca_whitening:
            if not featurewise_center:
                self.featurewise_center = True
                warnings.warn("This ImageDataGenerator specifies `zca_whitening`, which overrides setting of "
                              "`featurewise_center`.", stacklevel=2)
            if featurewise_std_normalization:
                self.featurewise_std_normalization = False
                warnings.warn("This ImageDataGenerator specifies `zca_whitening` which overrides setting of"
                              "`featurewise_std_normalization`.", stacklevel=2)
        if featurewise_std_normalization and not featurewise_center:
            self.featurewise_center = True
            warnings.warn("This ImageDataGenerator specifies `featurewise_std_normalization`, which overrides "
                          "setting of `featurewise_center`.", stacklevel=2)
        if samplewise_std_normalization and not samplewise_center:
            self.samplewise_center = True
            warnings.warn("This ImageDataGenerator specifies `samplewise_std_normalization`, which overrides "
                          "setting of `samplewise_center`.", stacklevel=2)
        if brightness_range is not None:
            if not isinstance(brightness_range, (tuple, list)) or len(brightness_range) != 2:
                raise ValueError("`brightness_range should be tuple or list of two floats. "
                                 f"Received: {brightness_range}")
        self.brightness_range = brightness_range

    # -- iterators -------------------------------------------------------------------

    def flow(self, x, y=None, batch_size=32, shuffle=True, sample_weight=None, seed=None, save_to_dir=None,
             save_prefix="", save_format="png", ignore_class_split=False, subset=None):
        """A :class:`NumpyArrayIterator` of augmented, standardized batches of ``x``
        (rank 4), with ``y`` and ``sample_weight`` when given."""
        return NumpyArrayIterator(x, y, self, batch_size=batch_size, shuffle=shuffle, sample_weight=sample_weight,
                                  seed=seed, data_format=self.data_format, save_to_dir=save_to_dir,
                                  save_prefix=save_prefix, save_format=save_format,
                                  ignore_class_split=ignore_class_split, subset=subset, dtype=self.dtype)

    def flow_from_directory(self, directory, target_size=(256, 256), color_mode="rgb", classes=None,
                            class_mode="categorical", batch_size=32, shuffle=True, seed=None, save_to_dir=None,
                            save_prefix="", save_format="png", follow_links=False, subset=None,
                            interpolation="nearest", keep_aspect_ratio=False):
        """A :class:`DirectoryIterator` over ``directory/<class>/<image files>``."""
        return DirectoryIterator(directory, self, target_size=target_size, color_mode=color_mode,
                                 keep_aspect_ratio=keep_aspect_ratio, classes=classes, class_mode=class_mode,
                                 data_format=self.data_format, batch_size=batch_size, shuffle=shuffle, seed=seed,
                                 save_to_dir=save_to_dir, save_prefix=save_prefix, save_format=save_format,
                                 follow_links=follow_links, subset=subset, interpolation=interpolation,
                                 dtype=self.dtype)

    def flow_from_dataframe(self, dataframe, directory=None, x_col="filename", y_col="class", weight_col=None,
                            target_size=(256, 256), color_mode="rgb", classes=None, class_mode="categorical",
                            batch_size=32, shuffle=True, seed=None, save_to_dir=None, save_prefix="",
                            save_format="png", subset=None, interpolation="nearest", validate_filenames=True,
                            **kwargs):
        """A :class:`DataFrameIterator` over the files named in a pandas DataFrame
        (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("flow_from_dataframe needs pandas (pip install pandas)") from None
        if not isinstance(dataframe, pd.DataFrame):
            raise TypeError(f"`dataframe` must be a pandas DataFrame. Received: {type(dataframe).__name__}")
        if "has_ext" in kwargs:
            warnings.warn("has_ext is deprecated, filenames in the dataframe have to match the exact filenames "
                          "in disk.", DeprecationWarning, stacklevel=2)
        if "sort" in kwargs:
            warnings.warn("sort is deprecated, batches will be created in thesame order than the filenames "
                          "provided if `shuffle`is set to `False`.", DeprecationWarning, stacklevel=2)
        if class_mode == "other":
            warnings.warn('`class_mode="other"` is deprecated, please use `class_mode="raw"`.', DeprecationWarning,
                          stacklevel=2)
            class_mode = "raw"
        if "drop_duplicates" in kwargs:
            warnings.warn("drop_duplicates is deprecated, you can drop duplicates by using the "
                          "pandas.DataFrame.drop_duplicates method.", DeprecationWarning, stacklevel=2)
        return DataFrameIterator(dataframe, directory, self, x_col=x_col, y_col=y_col, weight_col=weight_col,
                                 target_size=target_size, color_mode=color_mode, classes=classes,
                                 class_mode=class_mode, data_format=self.data_format, batch_size=batch_size,
                                 shuffle=shuffle, seed=seed, save_to_dir=save_to_dir, save_prefix=save_prefix,
                                 save_format=save_format, subset=subset, interpolation=interpolation,
                                 validate_filenames=validate_filenames, dtype=self.dtype)

    # -- normalisation ---------------------------------------------------------------

    def _warn_unfit(self, what):
        warnings.warn(f"This ImageDataGenerator specifies `{what}`, but it hasn't been fit on any training data. "
                      "Fit it first by calling `.fit(numpy_data)`.", stacklevel=3)

    def standardize(self, x):
        """Apply ``preprocessing_function``, ``rescale`` and the normalisations to
        ``x``, in place where the dtype allows (as Keras; pass ``np.copy(x)`` to keep
        ``x``). ``samplewise_*`` use the mean / std of the whole of ``x`` (one image,
        as the iterators call it; Keras does the same for a batch)."""
        if self.preprocessing_function:
            x = self.preprocessing_function(x)
        if self.rescale:
            x *= self.rescale
        if self.samplewise_center:
            x -= np.mean(x, keepdims=True)
        if self.samplewise_std_normalization:
            x /= np.std(x, keepdims=True) + 1e-6
        return self._featurewise(x)

    def _featurewise(self, x):
        if self.featurewise_center:
            if self.mean is not None:
                x -= self.mean
            else:
                self._warn_unfit("featurewise_center")
        if self.featurewise_std_normalization:
            if self.std is not None:
                x /= self.std + 1e-6
            else:
                self._warn_unfit("featurewise_std_normalization")
        if self.zca_whitening:
            if self.zca_whitening_matrix is not None:
                flat_x = x.reshape(-1, math.prod(x.shape[-3:]))
                x = np.reshape(flat_x @ self.zca_whitening_matrix, x.shape)
            else:
                self._warn_unfit("zca_whitening")
        return x

    def _standardize_batch(self, x):
        """:meth:`standardize` of each image of the batch ``x``, the numpy steps on the
        whole batch at once (``preprocessing_function`` per image)."""
        if self.preprocessing_function:
            return np.stack([self.standardize(xi) for xi in x]) if len(x) else x
        if self.rescale:
            x *= self.rescale
        axes = tuple(range(1, x.ndim))
        if self.samplewise_center:
            x -= np.mean(x, axis=axes, keepdims=True)
        if self.samplewise_std_normalization:
            x /= np.std(x, axis=axes, keepdims=True) + 1e-6
        return self._featurewise(x)

    # -- random transforms -----------------------------------------------------------

    def get_random_transform(self, img_shape, seed=None):
        """Random transform parameters for an image of shape ``img_shape`` (drawn from
        ``np.random``, seeded with ``seed`` if given): the dict Keras returns, with
        the same values for the same seed."""
        img_row_axis = self.row_axis - 1
        img_col_axis = self.col_axis - 1
        if seed is not None:
            np.random.seed(seed)
        theta = np.random.uniform(-self.rotation_range, self.rotation_range) if self.rotation_range else 0
        if self.height_shift_range:
            try:  # 1-D array-like or int
                tx = np.random.choice(self.height_shift_range)
                tx *= np.random.choice([-1, 1])
            except ValueError:  # floating point
                tx = np.random.uniform(-self.height_shift_range, self.height_shift_range)
            if np.max(self.height_shift_range) < 1:
                tx *= img_shape[img_row_axis]
        else:
            tx = 0
        if self.width_shift_range:
            try:
                ty = np.random.choice(self.width_shift_range)
                ty *= np.random.choice([-1, 1])
            except ValueError:
                ty = np.random.uniform(-self.width_shift_range, self.width_shift_range)
            if np.max(self.width_shift_range) < 1:
                ty *= img_shape[img_col_axis]
        else:
            ty = 0
        shear = np.random.uniform(-self.shear_range, self.shear_range) if self.shear_range else 0
        if self.zoom_range[0] == 1 and self.zoom_range[1] == 1:
            zx, zy = 1, 1
        else:
            zx, zy = np.random.uniform(self.zoom_range[0], self.zoom_range[1], 2)
        flip_horizontal = (np.random.random() < 0.5) * self.horizontal_flip
        flip_vertical = (np.random.random() < 0.5) * self.vertical_flip
        channel_shift_intensity = None
        if self.channel_shift_range != 0:
            channel_shift_intensity = np.random.uniform(-self.channel_shift_range, self.channel_shift_range)
        brightness = None
        if self.brightness_range is not None:
            brightness = np.random.uniform(self.brightness_range[0], self.brightness_range[1])
        return {"theta": theta, "tx": tx, "ty": ty, "shear": shear, "zx": zx, "zy": zy,
                "flip_horizontal": flip_horizontal, "flip_vertical": flip_vertical,
                "channel_shift_intensity": channel_shift_intensity, "brightness": brightness}

    def apply_transform(self, x, transform_parameters):
        """Transform one image (rank 3) by ``transform_parameters`` (the keys of
        :meth:`get_random_transform`; missing keys are the identity): the affine part
        (native warp), then the channel shift, the flips and the brightness, as Keras."""
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(f"apply_transform: `x` must be a single image of rank 3 ({self.data_format}). "
                             f"Received an array of shape {x.shape}")
        if not isinstance(transform_parameters, dict):
            raise TypeError("apply_transform: `transform_parameters` must be a dict (as get_random_transform "
                            f"returns). Received: {type(transform_parameters).__name__}")
        return self._apply_transforms(x[None], [transform_parameters])[0]

    def _apply_transforms(self, x, params):
        """Transform each image of the batch ``x`` by its own parameter dict: one native
        warp for all the images that move, then the pixel-wise steps on the batch."""
        if len(x) == 0:
            return x
        if self.data_format == "channels_first":
            x = np.moveaxis(x, 1, -1)
        h, w = x.shape[1], x.shape[2]
        mats, moved = [], []
        for i, p in enumerate(params):
            m = _affine_matrix(p.get("theta", 0), p.get("tx", 0), p.get("ty", 0), p.get("shear", 0),
                               p.get("zx", 1), p.get("zy", 1))
            if m is not None:
                mats.append(transform_matrix_offset_center(m, h, w))
                moved.append(i)
        if moved:
            if len(moved) == len(x):
                x = _warp_batch(x, np.stack(mats), self.fill_mode, self.cval, self.interpolation_order)
            else:
                x = np.array(x)
                x[moved] = _warp_batch(x[moved], np.stack(mats), self.fill_mode, self.cval,
                                       self.interpolation_order)
        shifts = [i for i, p in enumerate(params) if p.get("channel_shift_intensity") is not None]
        if shifts:
            x = np.array(x)
            sub = x[shifts]
            axes = tuple(range(1, x.ndim))
            lo, hi = np.min(sub, axis=axes, keepdims=True), np.max(sub, axis=axes, keepdims=True)
            k = np.array([params[i]["channel_shift_intensity"] for i in shifts],
                         dtype=x.dtype if x.dtype.kind == "f" else np.float64).reshape((-1, 1, 1, 1))
            x[shifts] = np.clip(sub + k, lo, hi)
        hflip = [i for i, p in enumerate(params) if p.get("flip_horizontal", False)]
        if hflip:
            x = np.array(x)
            x[hflip] = x[hflip][:, :, ::-1]
        vflip = [i for i, p in enumerate(params) if p.get("flip_vertical", False)]
        if vflip:
            x = np.array(x)
            x[vflip] = x[vflip][:, ::-1]
        bright = [i for i, p in enumerate(params) if p.get("brightness") is not None]
        if bright:
            x = np.array(x)
            x[bright] = _brightness_batch(x[bright], [params[i]["brightness"] for i in bright])
        if self.data_format == "channels_first":
            x = np.moveaxis(x, -1, 1)
        return np.ascontiguousarray(x)

    def random_transform(self, x, seed=None):
        """:meth:`apply_transform` of ``x`` by :meth:`get_random_transform`."""
        x = np.asarray(x)
        params = self.get_random_transform(x.shape, seed)
        return self.apply_transform(x, params)

    def fit(self, x, augment=False, rounds=1, seed=None):
        """Compute the dataset statistics of ``featurewise_center``,
        ``featurewise_std_normalization`` and ``zca_whitening`` from ``x`` (rank 4),
        after ``rescale`` (and ``rounds`` random augmentations when ``augment``), as
        Keras: ``mean`` / ``std`` of shape (1, 1, C) (channels-last) and
        ``zca_whitening_matrix``."""
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 4:
            raise ValueError(f"Input to `.fit()` should have rank 4. Got array with shape: {x.shape}")
        if x.shape[self.channel_axis] not in {1, 3, 4}:
            warnings.warn("Expected input to be images (as Numpy array) following the data format convention "
                          f'"{self.data_format}" (channels on axis {self.channel_axis}), i.e. expected either 1, 3 '
                          f"or 4 channels on axis {self.channel_axis}. However, it was passed an array with shape "
                          f"{x.shape} ({x.shape[self.channel_axis]} channels).", stacklevel=2)
        if isinstance(rounds, (bool, np.bool_)) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
            raise ValueError(f"`rounds` must be a positive integer. Received: rounds={rounds!r}")
        if seed is not None:
            np.random.seed(seed)
        x = np.copy(x)
        if self.rescale:
            x *= self.rescale
        if augment:
            ax = np.zeros(tuple([rounds * x.shape[0]] + list(x.shape)[1:]), dtype=self.dtype)
            for r in range(rounds):
                params = [self.get_random_transform(x.shape[1:]) for _ in range(x.shape[0])]
                ax[r * x.shape[0]:(r + 1) * x.shape[0]] = self._apply_transforms(x, params)
            x = ax
        if self.featurewise_center:
            self.mean = np.mean(x, axis=(0, self.row_axis, self.col_axis))
            broadcast_shape = [1, 1, 1]
            broadcast_shape[self.channel_axis - 1] = x.shape[self.channel_axis]
            self.mean = np.reshape(self.mean, broadcast_shape)
            x -= self.mean
        if self.featurewise_std_normalization:
            self.std = np.std(x, axis=(0, self.row_axis, self.col_axis))
            broadcast_shape = [1, 1, 1]
            broadcast_shape[self.channel_axis - 1] = x.shape[self.channel_axis]
            self.std = np.reshape(self.std, broadcast_shape)
            x /= self.std + 1e-6
        if self.zca_whitening:
            n = len(x)
            flat_x = np.reshape(x, (n, -1))
            u, s, _ = np.linalg.svd(flat_x.T, full_matrices=False)
            s_inv = np.sqrt(n) / (s + self.zca_epsilon)
            self.zca_whitening_matrix = (u * s_inv).dot(u.T)
