"""scipy.signal-compatible correlation and convolution, computed in Rust.

Functions here accept the same arguments as their scipy.signal namesakes and return
the same values (up to float rounding) in the same dtype: numpy's promotion of the two
inputs (``np.result_type``). float32 (and float16, rounded once at the end) is computed
in float32, float64 in float64; integer and bool inputs are computed exactly, with the
wrap-around of integer arithmetic in the result type (int8 gives int8, as scipy):
through float64 while every sum fits its 53 bits, in the integer type itself beyond
(int64 near 2**63). Complex inputs are computed through their real and imaginary parts
(``correlate`` conjugates ``in2``, as scipy and np.correlate); long double and complex
long double are summed in their own precision by numpy.
"""
from __future__ import annotations

import math
import time
import warnings

import numpy as np

from . import _checks, _core
from .device import call_backend, device_arg
from ._checks import _numeric_array

__all__ = ["correlate", "convolve", "correlate2d", "convolve2d", "choose_conv_method", "fftconvolve", "oaconvolve"]

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
    """The two inputs as numeric arrays (complex included) and their result dtype, with
    scipy's dimension rule: both 2-D for the 2-D functions, else the same number of
    dimensions (ValueError, as scipy)."""
    a = _numeric_array(func, "in1", in1, complex_ok=True)
    b = _numeric_array(func, "in2", in2, complex_ok=True)
    if two_d and (a.ndim != 2 or b.ndim != 2):
        raise ValueError(f"{func}: inputs must both be 2-D arrays, got in1 of shape {list(a.shape)} "
                         f"and in2 of shape {list(b.shape)}")
    if a.ndim != b.ndim:
        raise ValueError(f"{func}: in1 and in2 should have the same dimensionality, got in1 of shape "
                         f"{list(a.shape)} and in2 of shape {list(b.shape)}")
    return a, b, np.result_type(a, b)


# ---------------------------------------------------------------------- dtypes
def _parts_dtype(rt):
    """The float type the kernels compute ``rt`` in (its components' for complex):
    float32 for float16/float32, float64 for float64 and integers; None for long double
    (numpy sums it)."""
    r = _checks.real_dtype_of(rt)
    if r.kind == "f":
        return np.dtype(np.float32) if r.itemsize <= 4 else np.dtype(np.float64) if r.itemsize == 8 else None
    return np.dtype(np.float64)


#: Arrays above this many elements are not scanned for their largest value (a
#: broadcast view can stand for far more elements than memory holds): their dtype's
#: range bounds them instead.
_SCAN_LIMIT = 2 ** 31


def _max_abs(a, scan=True):
    """max |a| of an integer or bool array (its dtype's bound when ``scan`` is False or
    the array is larger than :data:`_SCAN_LIMIT`)."""
    if a.size == 0:
        return 0
    if a.dtype.kind == "b":
        return 1
    if a.dtype.kind not in "iu":
        return 0
    if not scan or a.size > _SCAN_LIMIT:
        info = np.iinfo(a.dtype)
        return max(abs(int(info.min)), int(info.max))
    return max(abs(int(a.max())), abs(int(a.min())))


def _float_exact(a, b, extra=0):
    """Whether float64 sums every product of integer inputs ``a`` and ``b`` exactly:
    scipy's own bound (choose_conv_method), ``max|a| * max|b| * min(sizes) < 2**52``;
    ``extra`` is a fill value that joins ``a``."""
    limit = 2 ** np.finfo(np.float64).nmant - 1
    n = max(min(a.size, b.size), 1)
    if max(_max_abs(a, False), extra) * _max_abs(b, False) * n <= limit:
        return True  # (int8, int16 and the like: no scan needed)
    if a.size > _SCAN_LIMIT or b.size > _SCAN_LIMIT:
        return False
    return max(_max_abs(a), extra) * _max_abs(b) * n <= limit


def _finish(x, rt):
    """A float result in the result dtype: integers and bool exactly (rounded, then
    wrapped as integer arithmetic in ``rt`` would)."""
    if rt.kind in "biu":
        return _checks.exact_integer_cast(x, rt)
    return x.astype(rt, copy=False)


def _parts(a, cdt):
    """Real and imaginary parts of ``a`` in ``cdt`` (the imaginary part None for a real
    ``a``)."""
    if a.dtype.kind == "c":
        return np.asarray(a.real, dtype=cdt), np.asarray(a.imag, dtype=cdt)
    return np.asarray(a, dtype=cdt), None


def _zero_imag(parts, other):
    """The parts of a real operand, with an explicit zero imaginary part when the other
    operand holds NaN or inf: scipy multiplies complex numbers, and ``0 * inf`` is NaN
    in the imaginary part of ``x * (inf + 1j)``."""
    re, im = parts
    if im is None and other.dtype.kind == "c" and other.size <= _SCAN_LIMIT and not np.isfinite(other).all():
        im = np.zeros_like(re)
    return re, im


def _combine(rt, re, im):
    out = np.empty(re.shape, dtype=rt)
    out.real = re
    out.imag = 0 if im is None else im
    return out


def _add(x, y, sign=1.0):
    if y is None:
        return x
    if x is None:
        return y if sign > 0 else -y
    return x + y if sign > 0 else x - y


# ------------------------------------------------------------------ N-D correlation
def _correlate(a, k, mode, method):
    """scipy.signal's correlation of the float arrays ``a`` and ``k``. Its direct N-D path
    swaps the inputs in 'full' mode when the kernel is the larger and reverses the result;
    the value is the same, except with inf/NaN, where it decides which zero padding gets
    multiplied (0 * inf). 1-D 'full' goes through numpy.correlate, which sums only the
    overlap, so the swap changes nothing there."""
    if isinstance(mode, str) and mode == "full" and a.ndim > 1 and k.size > a.size and k.ndim == a.ndim:
        return np.ascontiguousarray(np.flip(call_backend().correlate_signal(k, a, mode, method)))
    return call_backend().correlate_signal(a, k, mode, method)


def _corr(func, a, b, mode, method, rt):
    """``z[k] = sum_l a[l + k - K] * conj(b[l])`` in the result dtype ``rt``."""
    cdt = _parts_dtype(rt)
    if cdt is None or (rt.kind in "iu" and not _float_exact(a, b)):
        return _exact_corr(func, a, b, mode, rt)
    if rt.kind != "c":
        out = _correlate(np.asarray(a, dtype=cdt), np.asarray(b, dtype=cdt), mode, method)
    else:
        (ar, ai), (br, bi) = _zero_imag(_parts(a, cdt), b), _zero_imag(_parts(b, cdt), a)

        def c(x, y):
            return None if x is None or y is None else _correlate(x, y, mode, method)
        # (ar + i ai) (br - i bi) = ar br + ai bi + i (ai br - ar bi)
        out = _combine(rt, _add(c(ar, br), c(ai, bi)), _add(c(ai, br), c(ar, bi), -1.0))
    if method != "direct" and rt.kind in "fc" and out.size and not np.isfinite(out.flat[0]):
        used = method if method == "fft" else choose_conv_method(a, b, mode)
        if used == "fft":
            warnings.warn("Use of fft convolution on input with NAN or inf results in NAN or inf output. "
                          "Consider using method='direct' instead.", RuntimeWarning, stacklevel=3)
    return _finish(out, rt)


def _centered(full, shape):
    start = [(f - n) // 2 for f, n in zip(full.shape, shape)]
    return full[tuple(slice(s, s + n) for s, n in zip(start, shape))]


def _valid_shape(func, s1, s2):
    if all(i >= j for i, j in zip(s1, s2)) or all(j >= i for i, j in zip(s1, s2)):
        return [abs(i - j) + 1 for i, j in zip(s1, s2)]
    raise ValueError(f"{func}: for 'valid' mode, one must be at least as large as the other in every dimension, "
                     f"got in1 of shape {list(s1)} and in2 of shape {list(s2)}")


def _shift_add(x, y):
    """The full correlation ``z[k] = sum_j xpad[k + j] * y[j]`` in the arrays' own dtype
    (integer wrap-around, long double): one multiply-add over the output per element of
    the smaller array."""
    if y.size > x.size:
        return np.flip(_shift_add(y, x))
    return _valid_shift_add(np.pad(x, [(n - 1, n - 1) for n in y.shape]), y)


def _valid_shift_add(xp, y):
    """``z[k] = sum_j xp[k + j] * y[j]`` over the positions where ``y`` fits in ``xp``,
    in the arrays' own dtype."""
    full = [i - j + 1 for i, j in zip(xp.shape, y.shape)]
    out = np.zeros(full, dtype=np.result_type(xp, y))
    for j in np.ndindex(*y.shape):
        v = y[j]
        if v:
            out += xp[tuple(slice(i, i + f) for i, f in zip(j, full))] * v
    return out


def _exact_corr(func, a, b, mode, rt):
    """The correlation summed by numpy in ``rt`` itself: integers beyond float64's
    exact range, long double."""
    if a.size == 0 or b.size == 0:
        raise ValueError(f"{func}: inputs must not be empty, got shapes {list(a.shape)} and {list(b.shape)}")
    a = a.astype(rt)
    b = np.conj(b.astype(rt)) if rt.kind == "c" else b.astype(rt)
    full = _shift_add(a, b)
    if mode == "full":
        return full
    if mode == "same":
        return np.ascontiguousarray(_centered(full, a.shape))
    return np.ascontiguousarray(_centered(full, _valid_shape(func, a.shape, b.shape)))


def _reverse_and_conj(b):
    b = np.flip(b)
    return np.conj(b) if b.dtype.kind == "c" else b


@device_arg
def correlate(in1, in2, mode="full", method="auto"):
    """Cross-correlate two N-dimensional arrays, as ``scipy.signal.correlate``.

    ``z[k] = sum_l in1[l + k - K] * conj(in2[l])`` over the overlap, with ``K`` fixed by
    ``mode``.

    Parameters
    ----------
    in1, in2 : array_like
        Inputs of the same number of dimensions (1-D, 2-D, 3-D or more): bool, integer,
        float or complex.
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
        Of dtype ``np.result_type(in1, in2)``, as scipy: float32 for float32 inputs,
        int8 for int8 inputs (with integer wrap-around), complex for complex inputs.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x = np.array([1, 4, 3, -1, 2, -4, 1, 0, 2, -1.0])
    >>> convcore.correlate(x, [1.0, 2.0, 1.0], mode='valid')
    array([12.,  9.,  3., -1., -5., -2.,  3.,  3.])
    """
    _mode("correlate", mode)
    _method("correlate", method)
    a, b, rt = _pair("correlate", in1, in2)
    if a.ndim == 0 and b.ndim == 0:
        return a * (np.conj(b) if b.dtype.kind == "c" else b)
    return _corr("correlate", a, b, mode, method, rt)


@device_arg
def convolve(in1, in2, mode="full", method="auto"):
    """Convolve two N-dimensional arrays, as ``scipy.signal.convolve``.

    The convolution is the correlation with ``in2`` flipped on every axis (and not
    conjugated); modes, methods and dtypes are those of :func:`correlate`.

    Examples
    --------
    >>> import convcore
    >>> convcore.convolve([1.0, 2.0, 3.0], [0.0, 1.0, 0.5])
    array([0. , 1. , 2.5, 4. , 1.5])
    """
    _mode("convolve", mode)
    _method("convolve", method)
    a, b, rt = _pair("convolve", in1, in2)
    if a.ndim == 0 and b.ndim == 0:
        return a * b
    return _corr("convolve", a, _reverse_and_conj(b), mode, method, rt)


# ---------------------------------------------------------------------- 2-D
def _corr2d(func, a, b, mode, boundary, fillvalue, rt, conv):
    """scipy's ``_convolve2d``: ``in1`` extended by ``boundary`` (``fillvalue`` cast to the
    result dtype) against ``in2`` conjugated (correlation) or flipped (convolution)."""
    boundary = _BOUNDARY_ALIASES.get(boundary, boundary) if isinstance(boundary, str) else boundary
    # (scipy reads fillvalue only for boundary='fill')
    fill = _fillvalue(func, fillvalue, rt) if boundary == "fill" else np.zeros((), rt)[()]
    cdt = _parts_dtype(rt)
    if cdt is None or (rt.kind in "iu" and not _float_exact(a, b, _max_abs(np.asarray(fill)))):
        return _exact_corr2d(func, a, b, mode, boundary, fill, rt, conv)

    def k(x, y, f):
        if x is None or y is None:
            return None
        return call_backend().correlate_signal2d(x, np.flip(y) if conv else y, mode, boundary, float(f), conv)
    if rt.kind != "c":
        return _finish(k(np.asarray(a, dtype=cdt), np.asarray(b, dtype=cdt), fill), rt)
    fr, fi = float(np.real(fill)), float(np.imag(fill))
    (ar, ai), (br, bi) = _zero_imag(_parts(a, cdt), b), _zero_imag(_parts(b, cdt), a)
    if ai is None and fi != 0:
        ai = np.zeros_like(ar)  # the fill's imaginary part pads a zero imaginary input
    if conv:  # (ar + i ai) (br + i bi)
        re = _add(k(ar, br, fr), k(ai, bi, fi), -1.0)
        im = _add(k(ar, bi, fr), k(ai, br, fi))
    else:  # (ar + i ai) (br - i bi)
        re = _add(k(ar, br, fr), k(ai, bi, fi))
        im = _add(k(ai, br, fi), k(ar, bi, fr), -1.0)
    return _combine(rt, re, im)


_PADS = {"fill": "constant", "wrap": "wrap", "symm": "symmetric"}
#: scipy's other names of the boundaries.
_BOUNDARY_ALIASES = {"pad": "fill", "circular": "wrap", "symmetric": "symm"}


def _exact_corr2d(func, a, b, mode, boundary, fill, rt, conv):
    """The 2-D correlation summed by numpy in ``rt`` (integers beyond float64's exact
    range, long double): ``in1`` padded by the boundary rule, then the valid
    correlation."""
    _checks.choice(func, "boundary", boundary, tuple(_PADS))
    if a.size == 0 or b.size == 0:
        raise ValueError(f"{func}: inputs must not be empty, got shapes {list(a.shape)} and {list(b.shape)}")
    if mode == "valid":  # (_exact_corr conjugates its kernel: a flipped one is conjugated first to cancel it)
        return _exact_corr(func, a, np.conj(np.flip(b)) if conv else b, "valid", rt)
    yy = (np.flip(b) if conv else np.conj(b)).astype(rt)
    kw = {"constant_values": fill} if boundary == "fill" else {}
    out = _valid_shift_add(np.pad(a.astype(rt), [(n - 1, n - 1) for n in b.shape], mode=_PADS[boundary], **kw), yy)
    if mode == "full":
        return out
    # 'same': convolve2d starts at (n - 1) // 2 of the full result, correlate2d at n // 2
    start = [(n - 1) // 2 if conv else n // 2 for n in b.shape]
    return np.ascontiguousarray(out[tuple(slice(s, s + n) for s, n in zip(start, a.shape))])


@device_arg
def correlate2d(in1, in2, mode="full", boundary="fill", fillvalue=0):
    """Cross-correlate two 2-D arrays, as ``scipy.signal.correlate2d``.

    Parameters
    ----------
    in1, in2 : array_like, 2-D
        Real or complex (``in2`` is conjugated).
    mode : {'full', 'valid', 'same'}
    boundary : {'fill', 'wrap', 'symm'}
        Values outside ``in1``: ``fillvalue``, periodic, or mirrored with the edge
        repeated (``d c b a | a b c d``).
    fillvalue : scalar
        The value used with ``boundary='fill'``, cast to the result dtype (3.7 is 3 for
        integer inputs, as in scipy).

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x = np.array([[3,3,2,1,0],[0,0,1,3,1],[3,1,2,2,3],[2,0,0,2,2],[2,0,0,0,1]])
    >>> w = np.array([[0,1,2],[2,2,0],[0,1,2]])
    >>> convcore.correlate2d(x, w, mode='valid')
    array([[12, 12, 17],
           [10, 17, 19],
           [ 9,  6, 14]])
    """
    a, b, rt = _pair("correlate2d", in1, in2, two_d=True)
    out = _corr2d("correlate2d", a, b, mode, boundary, fillvalue, rt, False)
    if rt.kind == "c" and mode == "valid" and not all(i >= j for i, j in zip(a.shape, b.shape)):
        # scipy swaps the inputs here (in2 larger) and flips the result without
        # conjugating it: its valid correlation is then the conjugate of the one above.
        out = np.conj(out)
    return out


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
    a, b, rt = _pair("convolve2d", in1, in2, two_d=True)
    return _corr2d("convolve2d", a, b, mode, boundary, fillvalue, rt, True)


def _timeit(fn, repeat=3):
    """The best of ``repeat`` timings of ``fn()``, in seconds, looping short calls to
    about 2 ms so that the clock's resolution does not decide."""
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    n = max(1, min(1000, int(2e-3 / once)))
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def choose_conv_method(in1, in2, mode="full", measure=False):
    """The method ``correlate(in1, in2, mode, method='auto')`` uses: 'direct' or 'fft'.

    Like ``scipy.signal.choose_conv_method``, but from a cost model of this library's
    own kernels (measured, see BENCHMARKS.md), not scipy's. As scipy: 'direct' for
    integer inputs whose sums would not be exact in float64, for bool inputs and long
    double. ``measure=True`` times both methods on these inputs with :func:`convolve`
    and returns ``(fastest, {'fft': seconds, 'direct': seconds})``.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.signal.choose_conv_method(np.zeros(100), np.zeros(3))
    'direct'
    """
    _mode("choose_conv_method", mode)
    if not isinstance(measure, (bool, np.bool_)):
        raise TypeError(f"choose_conv_method: measure must be True or False, got {measure!r}")
    a, b, rt = _pair("choose_conv_method", in1, in2)
    if measure:
        times = {m: _timeit(lambda m=m: convolve(a, b, mode=mode, method=m)) for m in ("fft", "direct")}
        return ("fft" if times["fft"] < times["direct"] else "direct"), times
    if a.ndim == 0 and b.ndim == 0:
        return "direct"
    if (a.dtype.kind in "iu" or b.dtype.kind in "iu") and not _float_exact(a, b):
        return "direct"
    if (a.dtype.kind == "b" and b.dtype.kind == "b") or _parts_dtype(rt) is None:
        return "direct"
    return _core.choose_method(list(a.shape), list(b.shape), mode, _parts_dtype(rt) == np.float64)


def _fillvalue(func, fillvalue, rt):
    """scipy's fill value: a scalar (or one-element array), cast to the result dtype (C's
    cast: 3.7 is 3 for integers); a complex one for a real result is a ValueError."""
    f = np.asarray(fillvalue)
    if f.size != 1:
        raise ValueError(f"{func}: `fillvalue` must be scalar or an array with one element, got an array of shape "
                         f"{f.shape}")
    if f.dtype.kind not in "biufc":
        raise TypeError(f"{func}: fillvalue must be a number, got {fillvalue!r}")
    f = f.reshape(())
    if f.dtype.kind == "c" and rt.kind != "c" and isinstance(fillvalue, np.generic):
        # scipy casts a numpy complex scalar to a real result as numpy does (the
        # imaginary part dropped, with numpy's ComplexWarning); a Python complex or a
        # complex array is refused.
        warnings.warn("Casting complex values to real discards the imaginary part", np.exceptions.ComplexWarning,
                      stacklevel=4)
        f = f.real
    if f.dtype.kind == "c" and rt.kind != "c":
        raise ValueError(f"{func}: could not cast `fillvalue` directly to the output type {rt} (it was first "
                         f"converted to complex): got {fillvalue!r}")
    if rt.kind in "biu" and f.dtype.kind in "fc" and not np.isfinite(f):
        raise ValueError(f"{func}: could not cast `fillvalue` directly to the output type {rt}: got {fillvalue!r}")
    if rt.kind in "iu" and (f.dtype.kind in "fc" or (f.dtype.kind in "iu" and not isinstance(fillvalue, np.generic))):
        # scipy converts a Python number to complex and then to the integer result type,
        # refusing a value whose integer part that type does not hold (a numpy integer
        # scalar is cast directly, wrapping around).
        v = math.trunc(float(f.real))
        info = np.iinfo(rt)
        if not info.min <= v <= info.max:
            raise ValueError(f"{func}: could not cast `fillvalue` directly to the output type {rt} (it was first "
                             f"converted to complex): got {fillvalue!r}, outside [{info.min}, {info.max}]")
    if rt.kind in "iu":
        with np.errstate(invalid="ignore", over="ignore"):
            return f.astype(rt)[()]
    return f.astype(rt)[()]


# ------------------------------------------------------------------ FFT convolution
def _fft_axes(func, a, b, mode, axes):
    """scipy's ``_init_freq_conv_axes``: the axes convolved (default all; those where
    either input has length 1 are broadcast instead), the other axes' lengths equal or
    1, and the inputs swapped in 'valid' mode when ``in2`` is the larger."""
    if axes is None:
        ax = list(range(a.ndim))
    else:
        raw = _checks._unwrap0d(axes)
        try:
            raw = [raw] if np.isscalar(raw) else list(raw)
        except TypeError:
            raw = None
        if raw is not None and not raw:
            raise ValueError(f"{func}: when provided, axes cannot be empty")
        if raw is None or not all(isinstance(_checks._unwrap0d(v), (int, np.integer)) and not isinstance(
                _checks._unwrap0d(v), (bool, np.bool_)) for v in raw):
            raise ValueError(f"{func}: axes must be a scalar or iterable of integers, got axes={axes!r}")
        ax = []
        for v in raw:
            v = int(_checks._unwrap0d(v))
            if not -a.ndim <= v < a.ndim:
                raise ValueError(f"{func}: axes exceeds dimensionality of input: axis {v} for inputs of "
                                 f"{a.ndim} dimensions")
            ax.append(v % a.ndim)
        if len(set(ax)) != len(ax):
            raise ValueError(f"{func}: all axes must be unique, got axes={axes!r}")
    s1, s2 = a.shape, b.shape
    ax = sorted(d for d in ax if s1[d] != 1 and s2[d] != 1)
    if not all(s1[d] == s2[d] or s1[d] == 1 or s2[d] == 1 for d in range(a.ndim) if d not in ax):
        raise ValueError(f"{func}: incompatible shapes for in1 and in2: {s1} and {s2} (axes not convolved must "
                         "have equal lengths or length 1)")
    if mode == "valid":
        ok1 = all(s1[d] >= s2[d] for d in ax)
        ok2 = all(s2[d] >= s1[d] for d in ax)
        if not (ok1 or ok2):
            raise ValueError(f"{func}: For 'valid' mode, one must be at least as large as the other in every "
                             f"dimension, got shapes {s1} and {s2}")
        if not ok1:
            a, b = b, a
    return a, b, ax


def _fft_result_dtype(a, b):
    """scipy's result type: each input transformed in its own precision (integers and
    bool as float64, float16 as float32), the product's type (float32 with uint8 is
    float64)."""
    def own(dt):
        if dt.kind in "biu":
            return np.dtype(np.float64)
        if dt.kind == "f" and dt.itemsize < 4:
            return np.dtype(np.float32)
        return dt
    return np.result_type(own(a.dtype), own(b.dtype))


def _fft_full_real(x, k, ax):
    """The full convolution of the real float arrays ``x`` and ``k`` (one dtype) along
    the axes ``ax``, broadcast along the others: one native N-D FFT correlation with
    ``k`` flipped (an axis where one input has length 1 is the broadcast product there),
    looped only over the axes outside ``ax`` where both inputs are longer than 1."""
    batch = [d for d in range(x.ndim) if d not in ax and x.shape[d] > 1 and k.shape[d] > 1]
    if not batch:
        return call_backend().correlate_fft(np.ascontiguousarray(x), np.ascontiguousarray(np.flip(k)))
    shape = [x.shape[d] + k.shape[d] - 1 if d in ax else max(x.shape[d], k.shape[d]) for d in range(x.ndim)]
    out = np.empty(shape, dtype=x.dtype)
    for idx in np.ndindex(*[x.shape[d] for d in batch]):
        sel = [slice(None)] * x.ndim
        for d, i in zip(batch, idx):
            sel[d] = slice(i, i + 1)
        sel = tuple(sel)
        out[sel] = _fft_full_real(x[sel], k[sel], ax)
    return out


def _fftconvolve(func, in1, in2, mode, axes):
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"{func}: acceptable mode flags are 'valid', 'same', or 'full', got mode={mode!r}")
    a = _numeric_array(func, "in1", in1, complex_ok=True)
    b = _numeric_array(func, "in2", in2, complex_ok=True)
    if a.ndim == 0 and b.ndim == 0:
        return a * b
    if a.ndim != b.ndim:
        raise ValueError(f"{func}: in1 and in2 should have the same dimensionality, got shapes {a.shape} and "
                         f"{b.shape}")
    if a.size == 0 or b.size == 0:
        return np.asarray([])
    a, b, ax = _fft_axes(func, a, b, mode, axes)
    s1, s2 = a.shape, b.shape
    if not ax:
        ret = a * b
    else:
        rt = _fft_result_dtype(a, b)
        cdt = _parts_dtype(rt) or np.dtype(np.float64)  # (long double: computed in float64)
        (ar, ai), (br, bi) = _parts(a, cdt), _parts(b, cdt)

        def c(x, y):
            return None if x is None or y is None else _fft_full_real(x, y, ax)
        if rt.kind == "c":
            # (ar + i ai)(br + i bi) = ar br - ai bi + i (ar bi + ai br)
            ret = _combine(rt, _add(c(ar, br), c(ai, bi), -1.0), _add(c(ar, bi), c(ai, br)))
        else:
            ret = c(ar, br).astype(rt, copy=False)
    if mode == "full":
        return ret
    if mode == "same":
        return np.ascontiguousarray(_centered(ret, s1))
    valid = [ret.shape[d] if d not in ax else s1[d] - s2[d] + 1 for d in range(ret.ndim)]
    return np.ascontiguousarray(_centered(ret, valid))


def fftconvolve(in1, in2, mode="full", axes=None):
    """Convolve two N-dimensional arrays with the FFT, as ``scipy.signal.fftconvolve``.

    Computed by the native FFT engine (realfft, all cores), which pads each axis to a
    fast length, or, for a long 1-D input against a short kernel, transforms it in
    blocks by overlap-save when that costs less. ``axes`` (default all) are the axes
    convolved; along the others the inputs must have equal lengths or length 1 and are
    broadcast (not convolved). The result is float64 for integer and bool inputs, float32 for
    float16 / float32 and complex64 for complex64, as scipy.fft gives (long double is
    computed in float64). Runs on the CPU whatever the device.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.signal.fftconvolve([1.0, 2.0, 3.0], [0.0, 1.0, 0.5]).round(12) + 0.0
    array([0. , 1. , 2.5, 4. , 1.5])
    """
    return _fftconvolve("fftconvolve", in1, in2, mode, axes)


def oaconvolve(in1, in2, mode="full", axes=None):
    """Convolve two N-dimensional arrays by overlap-add, as ``scipy.signal.oaconvolve``.

    Same arguments, shapes and dtypes as :func:`fftconvolve`, and the same native FFT
    engine: its cost model already splits a long 1-D input against a short kernel (the
    case ``oaconvolve`` is for) into blocks, by overlap-save rather than overlap-add
    (the same sums, without the additions of the overlaps), and transforms the whole
    padded input when that is cheaper; the values agree with scipy's to float rounding.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.signal.oaconvolve(np.ones(6), np.ones(3), mode='valid').round(12)
    array([3., 3., 3., 3.])
    """
    return _fftconvolve("oaconvolve", in1, in2, mode, axes)
