"""scipy.signal-compatible correlation and convolution, computed in Rust.

Functions here accept the same arguments as their scipy.signal namesakes and return
the same values (up to float rounding). Dtype rule: float32 in gives float32 out,
float64 gives float64; integer and bool inputs are computed in float64 and return
float64 (scipy would return integers); complex inputs raise TypeError.
"""
from __future__ import annotations

import numpy as np

from . import _checks, _core
from .device import call_backend, device_arg
from ._checks import as_float_arrays

__all__ = ["correlate", "convolve", "correlate2d", "convolve2d", "choose_conv_method"]

_METHODS = ("auto", "direct", "fft")
_MODES = ("full", "valid", "same")


def _method(func, method):
    if not isinstance(method, str):
        raise TypeError(f"{func}: method must be one of {_METHODS}, got {method!r}")
    if method not in _METHODS:
        raise ValueError(f"{func}: method must be one of {_METHODS}, got {method!r}")
    return method


def _mode(func, mode):
    """The mode is checked here too: a 0-d pair never reaches the Rust spec that checks
    it otherwise."""
    return _checks.choice(func, "mode", mode, _MODES)


def _pair(func, in1, in2, two_d=False):
    """The two inputs as float arrays of one dtype, with scipy's dimension rule: both
    2-D for the 2-D functions, else the same number of dimensions (ValueError, as
    scipy)."""
    (a, b), _ = as_float_arrays(func, ("in1", "in2"), (in1, in2))
    if two_d and (a.ndim != 2 or b.ndim != 2):
        raise ValueError(f"{func}: inputs must both be 2-D arrays, got in1 of shape {list(a.shape)} "
                         f"and in2 of shape {list(b.shape)}")
    if a.ndim != b.ndim:
        raise ValueError(f"{func}: in1 and in2 should have the same dimensionality, got in1 of shape "
                         f"{list(a.shape)} and in2 of shape {list(b.shape)}")
    return a, b


def _correlate(a, k, mode, method):
    """scipy.signal's correlation of ``a`` with kernel ``k``. Its direct N-D path swaps
    the inputs in 'full' mode when the kernel is the larger and reverses the result; the
    value is the same, except with inf/NaN, where it decides which zero padding gets
    multiplied (0 * inf). 1-D 'full' goes through numpy.correlate, which sums only the
    overlap, so the swap changes nothing there."""
    if isinstance(mode, str) and mode == "full" and a.ndim > 1 and k.size > a.size and k.ndim == a.ndim:
        return np.ascontiguousarray(np.flip(call_backend().correlate_signal(k, a, mode, method)))
    return call_backend().correlate_signal(a, k, mode, method)


@device_arg
def correlate(in1, in2, mode="full", method="auto"):
    """Cross-correlate two N-dimensional arrays, as ``scipy.signal.correlate``.

    ``z[k] = sum_l in1[l + k - K] * in2[l]`` over the overlap, with ``K`` fixed by
    ``mode``.

    Parameters
    ----------
    in1, in2 : array_like
        Inputs of the same number of dimensions (1-D, 2-D, 3-D or more).
    mode : {'full', 'valid', 'same'}
        'full': the whole correlation (size ``n1 + n2 - 1`` per axis). 'valid': only
        where the inputs overlap completely; one input must be at least as large as the
        other on every axis. 'same': the size of ``in1``, centred as in scipy.
    method : {'auto', 'direct', 'fft'}
        'direct' sums products (SIMD, all cores); 'fft' uses the FFT; 'auto' picks the
        faster one from a cost model measured on this library (see
        :func:`choose_conv_method`).

    Returns
    -------
    ndarray
        float32 when both inputs are float32 (or float16), float64 otherwise. Integer
        and bool inputs are computed in float64.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x = np.array([1, 4, 3, -1, 2, -4, 1, 0, 2, -1.0])
    >>> convcore.correlate(x, [1.0, 2.0, 1.0], mode='valid')
    array([12.,  9.,  3., -1., -5., -2.,  3.,  3.])
    """
    _mode("correlate", mode)
    _method("correlate", method)
    a, b = _pair("correlate", in1, in2)
    if a.ndim == 0 and b.ndim == 0:
        return a * b
    return _correlate(a, b, mode, method)


@device_arg
def convolve(in1, in2, mode="full", method="auto"):
    """Convolve two N-dimensional arrays, as ``scipy.signal.convolve``.

    The convolution is the correlation with ``in2`` flipped on every axis; modes,
    methods and dtypes are those of :func:`correlate`.

    Examples
    --------
    >>> import convcore
    >>> convcore.convolve([1.0, 2.0, 3.0], [0.0, 1.0, 0.5])
    array([0. , 1. , 2.5, 4. , 1.5])
    """
    _mode("convolve", mode)
    _method("convolve", method)
    a, b = _pair("convolve", in1, in2)
    if a.ndim == 0 and b.ndim == 0:
        return a * b
    return _correlate(a, np.flip(b), mode, method)


@device_arg
def correlate2d(in1, in2, mode="full", boundary="fill", fillvalue=0):
    """Cross-correlate two 2-D arrays, as ``scipy.signal.correlate2d``.

    Parameters
    ----------
    in1, in2 : array_like, 2-D
    mode : {'full', 'valid', 'same'}
    boundary : {'fill', 'wrap', 'symm'}
        Values outside ``in1``: ``fillvalue``, periodic, or mirrored with the edge
        repeated (``d c b a | a b c d``).
    fillvalue : scalar
        The value used with ``boundary='fill'``.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x = np.array([[3,3,2,1,0],[0,0,1,3,1],[3,1,2,2,3],[2,0,0,2,2],[2,0,0,0,1]])
    >>> w = np.array([[0,1,2],[2,2,0],[0,1,2]])
    >>> convcore.correlate2d(x, w, mode='valid')
    array([[12., 12., 17.],
           [10., 17., 19.],
           [ 9.,  6., 14.]])
    """
    a, b = _pair("correlate2d", in1, in2, two_d=True)
    fill = _fillvalue("correlate2d", fillvalue)
    return call_backend().correlate_signal2d(a, b, mode, boundary, fill, False)


@device_arg
def convolve2d(in1, in2, mode="full", boundary="fill", fillvalue=0):
    """Convolve two 2-D arrays, as ``scipy.signal.convolve2d``.

    Same arguments as :func:`correlate2d`; ``in2`` is flipped on both axes.

    Examples
    --------
    >>> import convcore
    >>> convcore.convolve2d([[1.0, 2.0], [3.0, 4.0]], [[1.0]], mode='same')
    array([[1., 2.],
           [3., 4.]])
    """
    a, b = _pair("convolve2d", in1, in2, two_d=True)
    fill = _fillvalue("convolve2d", fillvalue)
    return call_backend().correlate_signal2d(a, np.flip(b), mode, boundary, fill, True)


def choose_conv_method(in1, in2, mode="full"):
    """The method ``correlate(in1, in2, mode, method='auto')`` uses: 'direct' or 'fft'.

    Like ``scipy.signal.choose_conv_method``, but from a cost model of this library's
    own kernels (measured, see BENCHMARKS.md), not scipy's.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.signal.choose_conv_method(np.zeros(100), np.zeros(3))
    'direct'
    """
    _mode("choose_conv_method", mode)
    a, b = _pair("choose_conv_method", in1, in2)
    if a.ndim == 0 and b.ndim == 0:
        return "direct"
    return _core.choose_method(list(a.shape), list(b.shape), mode, a.dtype == np.float64)


def _fillvalue(func, fillvalue):
    f = np.asarray(fillvalue)
    if f.size != 1:
        raise ValueError(f"{func}: fillvalue must be a scalar, got an array of shape {f.shape}")
    if f.dtype.kind == "c":
        raise TypeError(f"{func}: complex fillvalue is not supported, got {fillvalue!r}")
    if f.dtype.kind not in "biuf":
        raise TypeError(f"{func}: fillvalue must be a number, got {fillvalue!r}")
    return float(f.reshape(()))
