"""Max and average pooling over 1, 2 or 3 spatial axes, computed in Rust.

Layout (Keras, channels-last). With ``d`` spatial axes, ``x`` may be

- ``(*spatial)``                    -- a plain signal, image or volume (``x.ndim == d``);
- ``(*spatial, channels)``          -- e.g. an RGB image ``(H, W, 3)`` (``x.ndim == d + 1``);
- ``(batch, *spatial, channels)``   -- a Keras batch ``(N, H, W, C)`` (``x.ndim == d + 2``).

``d`` is ``len(pool_size)`` when ``pool_size`` is a tuple. For an integer ``pool_size``
``d`` is guessed from ``x.ndim``: 1-D and 2-D arrays are all spatial, 3-D and 4-D arrays
are images ``(H, W, C)`` / ``(N, H, W, C)``, 5-D arrays are volumes ``(N, D, H, W, C)``;
pass a tuple to say otherwise.

Padding follows Keras: 'valid' keeps whole windows (``floor((n - k) / s) + 1``
outputs); 'same' gives ``ceil(n / s)`` outputs, padding ``total // 2`` before and the
rest after. Padded cells never win a max and are not counted in an average.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import _core
from .device import call_backend, device_arg
from ._checks import as_float_array

__all__ = ["max_pool", "avg_pool"]


def _spatial_dims(func, x, pool_size):
    if np.isscalar(pool_size):
        return {1: 1, 2: 2, 3: 2, 4: 2, 5: 3}.get(x.ndim) or _bad_ndim(func, x, None)
    try:
        return len(tuple(pool_size))
    except TypeError:
        raise TypeError(f"{func}: pool_size must be an int or a tuple of ints, got {pool_size!r}") from None


def _bad_ndim(func, x, d):
    if d is None:
        raise ValueError(f"{func}: cannot infer the spatial axes of a {x.ndim}-D array; pass pool_size as a tuple")
    raise ValueError(
        f"{func}: with {d} spatial axes (len(pool_size)) the input must have {d}, {d + 1} (channels) "
        f"or {d + 2} (batch and channels) dimensions, got shape {x.shape}"
    )


def _ints(func, name, v, d):
    """``v`` (an int or a sequence of ``d`` ints) as ``d`` positive ints. bool, str,
    None and the like are TypeError; a float (1.5, and 2.0 as in Keras) or a value < 1
    is a ValueError."""
    if np.isscalar(v):
        vals = [v] * d
    else:
        try:
            vals = list(v)
        except TypeError:
            raise TypeError(f"{func}: {name} must be an int or a tuple of {d} ints, got {v!r}") from None
    if len(vals) != d:
        raise ValueError(f"{func}: {name} must be an int or a tuple of {d} ints, got {v!r}")
    out = []
    for t in vals:
        if isinstance(t, (bool, np.bool_)) or not isinstance(t, numbers.Real):
            raise TypeError(f"{func}: {name} must contain integers, got {v!r}")
        if not isinstance(t, numbers.Integral) or t < 1:
            raise ValueError(f"{func}: {name} must be positive integers, got {v!r}")
        out.append(int(t))
    return out


def _pool(func, kind, x, pool_size, strides, padding):
    x = as_float_array(func, "x", x)
    d = _spatial_dims(func, x, pool_size)
    if d < 1 or d > 3:
        raise ValueError(f"{func}: pooling supports 1 to 3 spatial axes, got pool_size {pool_size!r}")
    extra = x.ndim - d
    if extra not in (0, 1, 2):
        _bad_ndim(func, x, d)
    pool = _ints(func, "pool_size", pool_size, d)
    stride = pool if strides is None else _ints(func, "strides", strides, d)
    if not isinstance(padding, str):
        raise TypeError(f"{func}: padding must be 'valid' or 'same', got {padding!r}")
    batch = x.shape[0] if extra == 2 else 1
    spatial = list(x.shape[1:1 + d]) if extra == 2 else list(x.shape[:d])
    channels = x.shape[-1] if extra >= 1 else 1
    out, out_spatial = call_backend().pool_nd(x, kind, batch, spatial, channels, pool, stride, padding.lower())
    shape = ([batch] if extra == 2 else []) + list(out_spatial) + ([channels] if extra >= 1 else [])
    return out.reshape(shape)


@device_arg
def max_pool(x, pool_size, strides=None, padding="valid"):
    """Max pooling: the largest value in each window.

    Parameters
    ----------
    x : array_like
        See the module docstring for the layouts accepted.
    pool_size : int or tuple of int
        Window size per spatial axis.
    strides : int or tuple of int, optional
        Step between windows; defaults to ``pool_size``.
    padding : {'valid', 'same'}

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x = np.array([[29, 15, 28, 184], [0, 100, 70, 38], [12, 12, 7, 2], [12, 12, 45, 6]], dtype=float)
    >>> convcore.max_pool(x, (2, 2))
    array([[100., 184.],
           [ 12.,  45.]])
    """
    return _pool("max_pool", "max", x, pool_size, strides, padding)


@device_arg
def avg_pool(x, pool_size, strides=None, padding="valid"):
    """Average pooling: the mean of each window (padded cells not counted).

    Same arguments and layouts as :func:`max_pool`.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x = np.array([[31, 15, 28, 184], [0, 100, 70, 38], [12, 12, 7, 2], [12, 12, 45, 6]], dtype=float)
    >>> convcore.avg_pool(x, (2, 2))
    array([[36.5, 80. ],
           [12. , 15. ]])
    """
    return _pool("avg_pool", "avg", x, pool_size, strides, padding)
