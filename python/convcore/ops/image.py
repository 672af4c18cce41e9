"""Image operations with ``keras.ops.image``'s names: ``resize``, and the upsampling op
it uses (integer factors, 'nearest' or 'bilinear', a native kernel on every device with
its own backward kernel)."""
from __future__ import annotations

import numpy as np

from .. import _checks
from .core import backend, is_float, out, record, recording, tensor
from .nn import _real
from .numpy import reshape


def _pair(func, name, value):
    """Two integers >= 1 (a sequence of two; bools, fractions and strings are refused)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{func}: {name} must be a pair of positive integers, got {value!r}")
    return [_checks.integer(func, name, v, minimum=1) for v in value]


def upsample2d(x, size, interpolation="nearest"):
    """Upsample (batch, h, w, c) images by integer factors ``size = (sh, sw)``:
    'nearest' repeats pixels, 'bilinear' interpolates at half-pixel centres (Keras's
    ``UpSampling2D``). Bool and integer images are computed in float32."""
    x = _real("upsample2d", tensor(x), native=True)
    size = _pair("upsample2d", "size", size)
    y = out(backend(x).upsample2d(x._data, size, interpolation), x)
    if recording() and is_float(x):
        shape = x.shape
        record("upsample2d", (x,), (y,), lambda g: (
            out(backend(g).upsample2d_backward(g._data, shape, size, interpolation), g),))
    return y


def resize(images, size, interpolation="bilinear", antialias=False, crop_to_aspect_ratio=False,
           pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0, data_format=None):
    """Resize (batch, h, w, c) images — or one (h, w, c) image — to ``size = (height,
    width)``, as ``keras.ops.image.resize``. Supported here: sizes that are integer
    multiples of the input's, with 'nearest' or 'bilinear' interpolation."""
    if data_format not in (None, "channels_last"):
        raise ValueError(f"resize: only data_format='channels_last' is supported, got {data_format!r}")
    if crop_to_aspect_ratio or pad_to_aspect_ratio:
        raise ValueError("resize: crop_to_aspect_ratio and pad_to_aspect_ratio are not supported")
    if interpolation not in ("nearest", "bilinear"):
        raise ValueError(f"resize: interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
    x = _real("resize", tensor(images), native=True)
    single = x.ndim == 3
    if single:
        x = reshape(x, (1,) + x.shape)
    if x.ndim != 4:
        raise ValueError(f"resize: expected images (batch, height, width, channels) or one image (height, width, "
                         f"channels), got shape {tuple(images.shape) if hasattr(images, 'shape') else np.shape(images)}")
    h, w = x.shape[1], x.shape[2]
    th, tw = _pair("resize", "size", size)
    if h == 0 or w == 0 or th % h or tw % w or th < h or tw < w:
        raise ValueError(f"resize: only integer upsampling factors are supported: ({h}, {w}) -> ({th}, {tw})")
    y = upsample2d(x, (th // h, tw // w), interpolation)
    return reshape(y, y.shape[1:]) if single else y
