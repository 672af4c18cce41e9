"""Image files and arrays with ``keras.utils``' names: :func:`load_img`,
:func:`img_to_array`, :func:`array_to_img`, :func:`save_img` and
:func:`smart_resize` (``keras.preprocessing.image.smart_resize``), with Keras 3's
arguments, defaults, return types (PIL images; float32 arrays) and value ranges.

Pillow decodes and encodes the files (it is imported inside the functions, so
``import convcore`` does not need it). ``load_img`` resizes with Pillow, as Keras
does; ``smart_resize`` crops as Keras and resizes with convcore's own resize (the
code path of :class:`convcore.layers.Resizing`, which follows
``keras.ops.image.resize`` on the jax backend, ``antialias=False``).

Where convcore differs from Keras:

* ``data_format=None`` means ``'channels_last'`` (convcore's only global layout);
  ``'channels_first'`` may still be passed explicitly to these functions.
* ``smart_resize`` returns a numpy array for a numpy input (as Keras) and a
  :class:`convcore.Tensor` for anything else (Keras returns its backend's tensor).
  The dtypes are jax's under Keras: float64 inputs give float32, integer inputs give
  float32 for the interpolating methods and keep their type for 'nearest' (int64 /
  uint64 becoming int32 / uint32, as jax without x64).
* ``smart_resize``'s numbers are Keras's on the jax backend (``jax.image.resize``,
  half-pixel centres, no antialiasing: Keras passes ``antialias=False``), equal for
  'nearest' and within float32 rounding for the others (measured: at most 6e-3 on
  images valued 0-255, i.e. ~2e-5 of the range — the sums run in another order).
  Keras's other backends resize with their own kernels; they were not compared.
"""
from __future__ import annotations

import io
import os
import pathlib
import warnings

import numpy as np

__all__ = ["load_img", "img_to_array", "array_to_img", "save_img", "smart_resize"]

# load_img's resampling filters (Pillow's), as Keras's PIL_INTERPOLATION_METHODS
PIL_INTERPOLATION_METHODS = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")
# smart_resize's, as keras.ops.image.resize's on the jax backend
RESIZE_INTERPOLATIONS = ("bilinear", "nearest", "lanczos3", "lanczos5", "bicubic")


def _pil(func):
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        raise ImportError(f"Could not import PIL.Image. The use of `{func}` requires PIL.") from None
    return Image


def _resampling(Image, interpolation):
    r = getattr(Image, "Resampling", Image)
    return {"nearest": r.NEAREST, "bilinear": r.BILINEAR, "bicubic": r.BICUBIC, "hamming": r.HAMMING,
            "box": r.BOX, "lanczos": r.LANCZOS}[interpolation]


def _data_format(func, data_format):
    """Keras's ``standardize_data_format``: None is the global setting ('channels_last')."""
    if data_format is None:
        from .. import backend
        return backend.image_data_format()
    fmt = str(data_format).lower() if isinstance(data_format, str) else data_format
    if fmt not in ("channels_first", "channels_last"):
        raise ValueError("The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
                         f"Received: data_format={data_format!r}")
    return fmt


def _floatx(dtype):
    if dtype is None:
        from .. import backend
        return backend.floatx()
    return dtype


def array_to_img(x, data_format=None, scale=True, dtype=None):
    """A 3-D array (height, width, channels) — or (channels, height, width) with
    ``data_format='channels_first'`` — as a PIL image, as ``keras.utils.array_to_img``:
    with ``scale`` the values are shifted and scaled to span [0, 255]; 4 channels give
    an 'RGBA' image, 3 'RGB', 1 'L' (or 'I', 32-bit, when a value exceeds 255)."""
    data_format = _data_format("array_to_img", data_format)
    dtype = _floatx(dtype)
    Image = _pil("array_to_img")
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    x = np.asarray(x, dtype=dtype)
    if x.ndim != 3:
        raise ValueError(f"Expected image array to have rank 3 (single image). Got array with shape: {x.shape}")
    if data_format == "channels_first":
        x = x.transpose(1, 2, 0)
    if scale:
        x = x - np.min(x)
        x_max = np.max(x)
        if x_max != 0:
            x /= x_max
        x *= 255
    if x.shape[2] == 4:
        return Image.fromarray(x.astype("uint8"), "RGBA")
    if x.shape[2] == 3:
        return Image.fromarray(x.astype("uint8"), "RGB")
    if x.shape[2] == 1:
        if np.max(x) > 255:  # 32-bit signed integer grayscale, PIL mode "I"
            return Image.fromarray(x[:, :, 0].astype("int32"), "I")
        return Image.fromarray(x[:, :, 0].astype("uint8"), "L")
    raise ValueError(f"Unsupported channel number: {x.shape[2]}")


def img_to_array(img, data_format=None, dtype=None):
    """A PIL image as a 3-D numpy array (height, width, channels) of ``dtype``
    (default floatx, float32), values as stored (0-255 for 8-bit images), as
    ``keras.utils.img_to_array``; a one-band image gets a channels axis of 1."""
    data_format = _data_format("img_to_array", data_format)
    dtype = _floatx(dtype)
    x = np.asarray(img, dtype=dtype)
    if x.ndim == 3:
        if data_format == "channels_first":
            x = x.transpose(2, 0, 1)
    elif x.ndim == 2:
        x = x.reshape((1,) + x.shape) if data_format == "channels_first" else x.reshape(x.shape + (1,))
    else:
        raise ValueError(f"Unsupported image shape: {x.shape}")
    return x


def save_img(path, x, data_format=None, file_format=None, scale=True, **kwargs):
    """Save an array (see :func:`array_to_img`) as an image file, as
    ``keras.utils.save_img``: the format comes from ``file_format`` or the path's
    extension ('jpg' is 'jpeg'); an RGBA image saved as JPEG is converted to RGB with a
    warning; ``kwargs`` go to ``PIL.Image.save``. ``path`` may be a file object (then
    give ``file_format``)."""
    data_format = _data_format("save_img", data_format)
    if file_format is None and isinstance(path, (str, pathlib.Path)):
        file_format = pathlib.Path(path).suffix[1:].lower()
    if file_format and file_format.lower() == "jpg":
        file_format = "jpeg"
    img = array_to_img(x, data_format=data_format, scale=scale)
    if img.mode == "RGBA" and file_format == "jpeg":
        warnings.warn("The JPEG format does not support RGBA images, converting to RGB.")
        img = img.convert("RGB")
    img.save(path, format=file_format or None, **kwargs)


def _decode(Image, stream, name):
    """``(image, name)``: the image decoded now (a truncated file fails here, not later),
    with Pillow's errors (Keras's types) naming the file when it has a name."""
    try:
        img = Image.open(stream)
        img.load()
    except Image.UnidentifiedImageError as e:
        if name is None:
            raise
        raise Image.UnidentifiedImageError(f"cannot identify image file {os.fsdecode(name)!r}") from e
    except OSError as e:
        if name is None:
            raise
        raise OSError(f"{os.fsdecode(name)!r}: {e}") from e
    return img, name


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest", keep_aspect_ratio=False):
    """Load an image file into a PIL image, as ``keras.utils.load_img``.

    ``path``: a str, bytes or ``pathlib.Path`` (the file is read whole, then decoded), or
    an ``io.BytesIO``. ``color_mode``: 'rgb', 'rgba' or 'grayscale' (8-, 16- and 32-bit
    grayscale images are kept as they are, anything else becomes 'L'). ``target_size``:
    ``(height, width)`` or None; the image is resized with Pillow's ``interpolation``
    ('nearest', 'bilinear', 'bicubic', 'hamming', 'box', 'lanczos'), after cropping the
    centred box of the target's aspect ratio when ``keep_aspect_ratio``.

    convcore also accepts ``os.PathLike`` objects other than ``pathlib.Path`` and any
    binary file object with ``read`` (Keras: only ``io.BytesIO``)."""
    Image = _pil("load_img")
    if isinstance(path, io.BytesIO):
        img, name = _decode(Image, path, None)
    elif isinstance(path, (str, bytes, os.PathLike)):
        if isinstance(path, pathlib.Path):
            path = str(path.resolve())
        with open(path, "rb") as f:
            img, name = _decode(Image, io.BytesIO(f.read()), path)
    elif hasattr(path, "read"):
        img, name = _decode(Image, io.BytesIO(path.read()), getattr(path, "name", None))
    else:
        raise TypeError(f"path should be path-like or io.BytesIO, not {type(path)}")

    if color_mode == "grayscale":
        if img.mode not in ("L", "I;16", "I"):
            img = img.convert("L")
    elif color_mode == "rgba":
        if img.mode != "RGBA":
            img = img.convert("RGBA")
    elif color_mode == "rgb":
        if img.mode != "RGB":
            img = img.convert("RGB")
    else:
        raise ValueError(f'color_mode must be "grayscale", "rgb", or "rgba". Received: color_mode={color_mode!r}')
    if target_size is not None:
        if isinstance(target_size, (str, bytes)) or not hasattr(target_size, "__len__") or len(target_size) != 2:
            raise ValueError("load_img: target_size must be None or a tuple of 2 integers (img_height, img_width). "
                             f"Received: target_size={target_size!r}")
        width_height_tuple = (target_size[1], target_size[0])
        if img.size != width_height_tuple:
            if interpolation not in PIL_INTERPOLATION_METHODS:
                raise ValueError(f"Invalid interpolation method {interpolation} specified. Supported methods are "
                                 f"{', '.join(PIL_INTERPOLATION_METHODS)}")
            resample = _resampling(Image, interpolation)
            if keep_aspect_ratio:
                width, height = img.size
                target_width, target_height = width_height_tuple
                crop_height = min(height, (width * target_height) // target_width)
                crop_width = min(width, (height * target_width) // target_height)
                h0 = (height - crop_height) // 2
                w0 = (width - crop_width) // 2
                img = img.resize(width_height_tuple, resample, box=[w0, h0, w0 + crop_width, h0 + crop_height])
            else:
                img = img.resize(width_height_tuple, resample)
    return img


# jax without x64: the dtypes Keras's convert_to_tensor gives numpy inputs
_JAX_DTYPES = {"float64": "float32", "int64": "int32", "uint64": "uint32", "complex128": "complex64"}


def smart_resize(x, size, interpolation="bilinear", data_format="channels_last", **kwargs):
    """Resize an image (height, width, channels) or a batch (batch, height, width,
    channels) to ``size = (height, width)`` without distorting its aspect ratio, as
    ``keras.preprocessing.image.smart_resize``: the largest centred crop of the
    target's aspect ratio, resized with ``interpolation`` ('bilinear', 'nearest',
    'bicubic', 'lanczos3', 'lanczos5').

    The resize is convcore's (``Resizing``'s code path: jax.image.resize's kernels,
    ``antialias=False``, as Keras calls it), giving Keras-on-jax's numbers to float32
    rounding. A numpy input gives a numpy array, anything else a convcore Tensor (see
    the module docstring for the dtypes)."""
    kwargs.pop("backend_module", None)
    if kwargs:
        raise TypeError(f"smart_resize() got unexpected keyword arguments: {list(kwargs.keys())}")
    if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2:
        raise ValueError(f"Expected `size` to be a tuple of 2 integers, but got: {size}.")
    from .. import _checks, ops
    from ..layers.preprocessing import _aspect_crop_box
    from ..layers.reshaping import _resize
    from ..tensor import Tensor
    th = _checks.integer("smart_resize", "size", size[0], minimum=1)
    tw = _checks.integer("smart_resize", "size", size[1], minimum=1)
    if interpolation not in RESIZE_INTERPOLATIONS:
        raise ValueError("Invalid value for argument `interpolation`. Expected of one "
                         f"{RESIZE_INTERPOLATIONS}. Received: interpolation={interpolation}")
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError("The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
                         f"Received: data_format={data_format!r}")
    is_numpy = isinstance(x, np.ndarray)
    if isinstance(x, Tensor):
        img = x
    else:
        a = np.asarray(x)
        if a.dtype.name in _JAX_DTYPES:
            a = a.astype(_JAX_DTYPES[a.dtype.name])
        img = ops.convert_to_tensor(a)
    if img.ndim < 3 or img.ndim > 4:
        raise ValueError("Expected an image array with shape `(height, width, channels)`, or `(batch_size, height, "
                         f"width, channels)`, but got input with incorrect rank, of shape {tuple(img.shape)}.")
    single = img.ndim == 3
    if single:
        img = ops.expand_dims(img, 0)
    if data_format == "channels_first":
        img = ops.transpose(img, (0, 2, 3, 1))
    h0, w0, ch, cw = _aspect_crop_box(img.shape[1], img.shape[2], th, tw)
    img = img[:, h0:h0 + ch, w0:w0 + cw, :]
    kind = np.dtype(img.dtype).kind
    if interpolation != "nearest" and kind != "f":
        img = ops.cast(img, "float32")  # jax.image.resize's promotion of integer images
    dtype = img.dtype
    img = _resize(img, th, tw, interpolation, False)
    if img.dtype != dtype:  # float16 is interpolated in float32; jax gives back float16
        img = ops.cast(img, dtype)
    if data_format == "channels_first":
        img = ops.transpose(img, (0, 3, 1, 2))
    if single:
        img = img[0]
    return img.numpy() if is_numpy else img
