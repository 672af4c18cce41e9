"""scipy.ndimage-compatible filters, computed in Rust, plus the course's kernel builders,
a directional edge filter and template matching.

Boundary modes are scipy.ndimage's: 'reflect' (``d c b a | a b c d | d c b a``),
'constant' (``cval``), 'nearest' (``a a a | a b c d | d d d``), 'mirror'
(``d c b | a b c d | c b a``) and 'wrap' (``a b c d | a b c d``), plus the aliases
'grid-mirror', 'grid-constant' and 'grid-wrap'.

Dtype rule, scipy.ndimage's: the result has the input's dtype (or ``output=``'s, a dtype
or an array to fill), integer and bool results truncated and wrapped around as scipy's C
code stores them; a separable filter stores every 1-D pass in the output dtype, as
scipy does. float32 input with a float32 output is computed in float32 (the weights
adjusted so that their float32 sum is their float64 sum); everything else in float64.
Complex inputs and complex weights are filtered through their real and imaginary parts
(scipy's rule: ``correlate`` conjugates complex weights, ``convolve`` does not), with a
complex ``cval`` split the same way. float16 and long double arrays are refused, as in
scipy (:class:`convcore._checks.UnsupportedDtypeError`, a TypeError and a RuntimeError).
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from . import _checks, _core
from .device import _f32_weights, call_backend, device_arg
from ._checks import UnsupportedDtypeError, _numeric_array, as_float_array, normalize_axis, per_axis
from . import signal as _signal

__all__ = [
    "correlate", "convolve", "correlate1d", "convolve1d",
    "uniform_filter", "uniform_filter1d", "gaussian_filter", "gaussian_filter1d",
    "sobel", "prewitt", "laplace", "generic_laplace", "gaussian_laplace", "generic_gradient_magnitude",
    "gaussian_gradient_magnitude", "minimum_filter", "minimum_filter1d", "maximum_filter", "maximum_filter1d",
    "rank_filter", "median_filter", "percentile_filter", "uniform_kernel", "gaussian_kernel", "sobel_kernels",
    "edge_filter", "match_template",
]


#: scipy.ndimage's boundary modes (the Rust kernels check the mode they use; these names
#: check a mode that a filter never hands to them, for an axis it skips).
_MODES = ("reflect", "constant", "nearest", "mirror", "wrap", "grid-mirror", "grid-constant", "grid-wrap")


def _cval(func, cval):
    """``cval`` as a float: a real number (True is 1.0, as in scipy) or a 0-d numeric
    array, NaN and inf included; a string, None, a complex or a sequence is a TypeError."""
    if isinstance(cval, np.ndarray) and cval.ndim == 0 and cval.dtype.kind in "biuf":
        cval = cval[()]
    if not isinstance(cval, numbers.Real):
        raise TypeError(f"{func}: cval must be a real number, got {cval!r}")
    return float(cval)


def _complex_cval(func, cval):
    """``cval`` for a complex input: any real or complex number (or 0-d array)."""
    if isinstance(cval, np.ndarray) and cval.ndim == 0 and cval.dtype.kind in "biufc":
        cval = cval[()]
    if not isinstance(cval, numbers.Complex):
        raise TypeError(f"{func}: cval must be a number, got {cval!r}")
    return complex(cval)


def _mode(func, mode):
    return _checks.choice(func, "mode", mode, _MODES)


def _one_mode(func, mode):
    """The single mode of a filter that takes one (correlate, convolve, the 1-D filters):
    a sequence of modes is refused with scipy's exception type (RuntimeError), and a
    TypeError."""
    if not isinstance(mode, str):
        raise _checks.ArgumentTypeError(f"{func}: mode must be one string (this filter has no per-axis modes), "
                                        f"got {mode!r}")
    return _mode(func, mode)


def _check_origin(func, origin, size):
    """scipy's rule for the origin of a filter of ``size`` taps (also for an axis that is
    skipped, where only 0 is valid for size 1)."""
    if not -(size // 2) <= origin <= (size - 1) // 2:
        raise ValueError(f"{func}: invalid origin {origin} for a filter of size {size}: it must lie in "
                         f"[{-(size // 2)}, {(size - 1) // 2}]")


# ------------------------------------------------------------------ dtypes and output
def _supported(func, what, dt):
    """float16 and long double are not computed (scipy.ndimage refuses them too)."""
    if (dt.kind == "f" and dt.itemsize not in (4, 8)) or (dt.kind == "c" and dt.itemsize not in (8, 16)):
        raise UnsupportedDtypeError(f"{func}: {what} of dtype {dt} is not supported (scipy.ndimage: array type "
                                    f"not supported); use float32 or float64")


def _input(func, input):
    """The input as an ndarray of a dtype the filters take: bool, integer, float32,
    float64, complex64 or complex128."""
    a = _numeric_array(func, "input", input, complex_ok=True)
    _supported(func, "input", a.dtype)
    return a


def _output(func, a, output, complex_output=False):
    """scipy.ndimage's ``output`` argument (its ``_get_output``) as ``(dtype, array or
    None)``: None gives the input's dtype (complex results: the input's complex type, or
    ``promote_types(input, complex64)``); a dtype class or instance is that dtype (a
    real one promoted to complex, with scipy's warning, where the result is complex); a
    dtype string or an array must be complex where the result is (RuntimeError, as
    scipy), and an array must have the input's shape."""
    if output is None:  # (in the machine's byte order, as scipy's zeros(dtype=input.dtype.name))
        dt = a.dtype.newbyteorder("=")
        return (np.promote_types(dt, np.complex64) if complex_output else dt), None
    if isinstance(output, np.ndarray):
        if output.shape != a.shape:
            raise _checks.ArgumentShapeError(f"{func}: output array has shape {output.shape}, expected the input's "
                                             f"{a.shape} (output shape not correct)")
        if complex_output and output.dtype.kind != "c":
            raise UnsupportedDtypeError(f"{func}: output must have complex dtype for a complex result, got an array "
                                        f"of {output.dtype}")
        if not output.flags.writeable:
            raise ValueError(f"{func}: the output array is read-only")
        _output_kind(func, output.dtype, complex_output)
        return output.dtype, output
    try:
        dt = np.dtype(output)
    except TypeError:
        raise TypeError(f"{func}: output must be None, a dtype or an ndarray, got {output!r}") from None
    if complex_output and dt.kind != "c" and dt.kind in "biuf":
        if isinstance(output, str):
            raise UnsupportedDtypeError(f"{func}: output must have complex dtype for a complex result, got {dt}")
        warnings.warn("promoting specified output dtype to complex", UserWarning, stacklevel=4)
        dt = np.promote_types(dt, np.complex64)
    _output_kind(func, dt, complex_output)
    return dt, None


def _output_kind(func, dt, complex_output):
    if dt.kind not in "biufc":
        raise UnsupportedDtypeError(f"{func}: output must have a numeric dtype (bool, int, float or complex), "
                                    f"got {dt}")
    if dt.kind == "c" and not complex_output:
        raise UnsupportedDtypeError(f"{func}: complex output {dt} for a real result (real input and weights) is "
                                    "not supported, as in scipy")
    _supported(func, "output", dt)


def _compute(a, dt):
    """``a`` as the float array a filter computes in: float32 when the input and the
    output are both float32, float64 otherwise (scipy computes in double)."""
    if a.dtype.kind == "f" and a.dtype.itemsize == 4 and dt.kind == "f" and dt.itemsize == 4:
        return np.asarray(a, dtype=np.float32)
    return np.asarray(a, dtype=np.float64)


def _store(res, dt, arr):
    """The float result ``res`` in the output dtype ``dt`` (C's cast, scipy's store),
    written into ``arr`` when the caller gave one."""
    out = res.astype(dt) if dt.kind == "c" else _checks.c_cast(res, dt)
    if arr is None:
        return out
    arr[...] = out
    return arr


def _weights_as(w, dtype, wide=False):
    """Real weights as the kernels take them for data of ``dtype``. ``wide`` (a 1-D
    window of at least ``_WIDE_TAPS`` taps over float32 data): float64 weights, which
    the CPU kernel sums in float64 and rounds once, as scipy (its weights and lines are
    double). Otherwise float32 data is summed in float32 with float32 weights that still
    sum to what the weights sum to (``device._f32_weights``, as on the GPU)."""
    if dtype != np.float32:
        return np.asarray(w, dtype=dtype)
    return np.asarray(w, dtype=np.float64) if wide else _f32_weights(w)


#: Shortest 1-D window over float32 data summed in float64 (scipy's precision: within
#: half a float32 ulp of the exact sum); the Gaussian filters sum in float64 at any
#: length. Shorter windows, and the N-D kernels of correlate / convolve, sum in float32
#: (as OpenCV's filter2D), within a few float32 ulps of scipy, at up to 1.5 times the
#: speed (BENCHMARKS.md, issue 16).
_WIDE_TAPS = 16


def _via_real_components(func, fn, a, w, output, cval):
    """scipy.ndimage's ``_complex_via_real_components``: a filter of a complex input
    and/or complex weights as the linear combination of real filters, ``fn(x, k, cval,
    dtype)``; a complex ``cval`` is split with the input (and refused for a real input,
    as scipy: ValueError). ``w`` is None for the filters without weights."""
    dt, arr = _output(func, a, output, complex_output=True)
    rdt = _checks.real_dtype_of(dt)
    ca = a.dtype.kind == "c"
    cw = w is not None and w.dtype.kind == "c"
    if ca:
        cv = _complex_cval(func, cval)
        ar, ai, cr, ci = a.real, a.imag, cv.real, cv.imag
    else:
        if np.iscomplexobj(cval):
            raise ValueError(f"{func}: cannot provide a complex-valued cval when the input is real, got cval={cval!r}")
        ar, cr = a, cval
    if ca and cw:
        re = fn(ar, w.real, cr, rdt) - fn(ai, w.imag, ci, rdt)
        im = fn(ar, w.imag, cr, rdt) + fn(ai, w.real, ci, rdt)
    elif ca:
        re, im = fn(ar, w, cr, rdt), fn(ai, w, ci, rdt)
    else:
        re, im = fn(ar, w.real, cr, rdt), fn(ar, w.imag, cr, rdt)
    out = np.empty(a.shape, dtype=dt)
    out.real = re
    out.imag = im
    return _store(out, dt, arr)


def _footprint(weights, dtype):
    """scipy.ndimage.correlate's footprint: only weights with ``|w| > DBL_EPSILON`` take
    part (NaN and tiny weights are left out, even against inf inputs); the others
    become zeros that the kernels skip (``footprint=True``)."""
    w = np.asarray(weights, dtype=np.float64)
    keep = np.abs(w) > np.finfo(np.float64).eps
    return _weights_as(np.where(keep, w, 0.0) if not keep.all() else weights, dtype)


def _correlate_nd(func, a, w, mode, cval, origins, footprint=False):
    """The correlation of the float array ``a`` with weights of its dtype (the Rust
    kernels check mode, shapes and origins); an empty input gives an empty result once
    the arguments are checked here."""
    _one_mode(func, mode)
    if a.ndim == 0:
        raise ValueError(f"{func}: input must have at least one dimension, got a 0-d array")
    cval = _cval(func, cval)
    origins = [int(o) for o in origins]
    if a.size == 0:
        for o, n in zip(origins, w.shape):
            _check_origin(func, o, n)
        return np.zeros(a.shape, dtype=a.dtype)
    return call_backend().correlate_ndimage(a, w, mode, cval, origins, footprint)


def _on_axes(values, axes, ndim, fill):
    """``values`` (one per axis of ``axes``) placed on those axes of ``ndim``, ``fill``
    on the others."""
    full = [fill] * ndim
    for v, ax in zip(values, axes):
        full[ax] = v
    return full


def _weights_over_axes(func, a, w, origin, axes):
    """``weights`` and the per-axis origins over every axis of ``a``, scipy's rule for
    ``axes=``: the weights' dimensions go to the filtered axes in increasing order, size
    1 on the others; the origins follow ``axes`` in the order given (0 elsewhere)."""
    if axes is None:
        if w.ndim != a.ndim:
            raise _checks.ArgumentShapeError(
                f"{func}: weights must have the same number of dimensions as the input, "
                f"got input shape {a.shape} and weights shape {w.shape}"
            )
        return w, per_axis(func, "origin", origin, a.ndim)
    ax = _axes(func, axes, a.ndim)
    if w.ndim != len(ax):
        raise _checks.ArgumentShapeError(
            f"{func}: weights must have one dimension per filtered axis ({len(ax)}, axes={tuple(ax)}), "
            f"got weights shape {w.shape}: weights.ndim ({w.ndim}) must match len(axes) ({len(ax)})"
        )
    origins = per_axis(func, "origin", origin, len(ax))
    if len(ax) < a.ndim:
        w = np.expand_dims(w, tuple(i for i in range(a.ndim) if i not in ax))
        origins = _on_axes(origins, ax, a.ndim, 0)
    return w, origins


def _nd_weights(func, weights):
    w = _numeric_array(func, "weights", weights, complex_ok=True)
    _supported(func, "weights", w.dtype)
    return w


@device_arg
def correlate(input, weights, output=None, mode="reflect", cval=0.0, origin=0, *, axes=None):
    """Multidimensional correlation, as ``scipy.ndimage.correlate``.

    ``out[i] = sum_j input[i + j - c] * weights[j]`` with ``c = n // 2 + origin`` per
    axis and values beyond the edges given by ``mode``. The output has the input's shape.

    Parameters
    ----------
    input : array_like
        bool, integer, float32/64 or complex64/128.
    weights : array_like, same number of dimensions as ``input``
        Real or complex (complex weights are conjugated, as scipy and np.correlate).
    output : None, dtype or ndarray, optional
        The result's dtype, or an array to fill; default the input's dtype.
    mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap'}
    cval : float
        Value beyond the edges for mode 'constant' (complex for a complex input).
    origin : int or sequence of int
        Shift of the kernel centre per axis, in ``[-(n // 2), (n - 1) // 2]``.
    axes : None, int or sequence of int, keyword only
        The axes filtered (default: all). ``weights`` then has one dimension per entry,
        matched to the axes in increasing order (as scipy), and ``origin`` one entry per
        axis of ``axes``; the other axes are not filtered.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.ndimage.correlate(np.arange(5.0), np.array([1.0, 1.0, 1.0]), mode='constant')
    array([1., 3., 6., 9., 7.])
    """
    f = "correlate"
    a = _input(f, input)
    w = _nd_weights(f, weights)
    if a.dtype.kind == "c" or w.dtype.kind == "c":
        _one_mode(f, mode)
        return _via_real_components(f, lambda x, k, cv, dt: correlate(x, k, dt, mode, cv, origin, axes=axes), a,
                                    w.conj() if w.dtype.kind == "c" else w, output, cval)
    dt, arr = _output(f, a, output)
    x = _compute(a, dt)
    w, origins = _weights_over_axes(f, x, _footprint(w, x.dtype), origin, axes)
    return _store(_correlate_nd(f, x, w, mode, cval, origins, True), dt, arr)


@device_arg
def convolve(input, weights, output=None, mode="reflect", cval=0.0, origin=0, *, axes=None):
    """Multidimensional convolution, as ``scipy.ndimage.convolve``.

    The correlation with ``weights`` flipped on every axis, centred as scipy does
    (for an even size the centre moves by one). Dtypes as :func:`correlate` (complex
    weights are not conjugated).

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.ndimage.convolve(np.arange(5.0), np.array([1.0, 0.0, 0.0]), mode='constant')
    array([1., 2., 3., 4., 0.])
    """
    f = "convolve"
    a = _input(f, input)
    w = _nd_weights(f, weights)
    if a.dtype.kind == "c" or w.dtype.kind == "c":
        _one_mode(f, mode)
        return _via_real_components(f, lambda x, k, cv, dt: convolve(x, k, dt, mode, cv, origin, axes=axes), a, w,
                                    output, cval)
    dt, arr = _output(f, a, output)
    x = _compute(a, dt)
    w, origins = _weights_over_axes(f, x, _footprint(w, x.dtype), origin, axes)
    origins = [-o - (1 - n % 2) for o, n in zip(origins, w.shape)]
    return _store(_correlate_nd(f, x, np.flip(w), mode, cval, origins, True), dt, arr)


def _weights1d(func, weights):
    w = _nd_weights(func, weights)
    if w.ndim != 1:
        raise ValueError(f"{func}: weights must be a 1-D sequence, got shape {w.shape}")
    if w.size == 0:
        raise ValueError(f"{func}: weights must not be empty")
    return w


def _along_axis(w, axis, ndim):
    shape = [1] * ndim
    shape[axis] = w.shape[0]
    return w.reshape(shape)


@device_arg
def correlate1d(input, weights, axis=-1, output=None, mode="reflect", cval=0.0, origin=0):
    """One-dimensional correlation along ``axis``, as ``scipy.ndimage.correlate1d``.

    Dtypes as :func:`correlate`.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.ndimage.correlate1d(np.array([2.0, 8, 0, 4, 1, 9, 9, 0]), [1.0, 3.0])
    array([ 8., 26.,  8., 12.,  7., 28., 36.,  9.])
    """
    return _correlate1d(input, weights, axis, output, mode, cval, origin)


def _correlate1d(input, weights, axis, output, mode, cval, origin, wide=None):
    """``correlate1d``; ``wide``: whether float32 data is summed in float64 (None: from
    ``_WIDE_TAPS`` taps)."""
    f = "correlate1d"
    a = _input(f, input)
    w = _weights1d(f, weights)
    if a.ndim == 0:
        raise ValueError("correlate1d: input must have at least one dimension, got a 0-d array")
    axis = normalize_axis(f, axis, a.ndim)
    if a.dtype.kind == "c" or w.dtype.kind == "c":
        _one_mode(f, mode)
        return _via_real_components(f, lambda x, k, cv, dt: _correlate1d(x, k, axis, dt, mode, cv, origin, wide), a,
                                    w.conj() if w.dtype.kind == "c" else w, output, cval)
    dt, arr = _output(f, a, output)
    x = _compute(a, dt)
    origins = [0] * a.ndim
    origins[axis] = _checks.integer(f, "origin", _checks._unwrap0d(origin))
    wide = w.size >= _WIDE_TAPS if wide is None else wide
    out = _correlate_nd(f, x, _along_axis(_weights_as(w, x.dtype, wide), axis, a.ndim), mode, cval, origins)
    return _store(out, dt, arr)


@device_arg
def convolve1d(input, weights, axis=-1, output=None, mode="reflect", cval=0.0, origin=0):
    """One-dimensional convolution along ``axis``, as ``scipy.ndimage.convolve1d``.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.ndimage.convolve1d(np.array([2.0, 8, 0, 4, 1, 9, 9, 0]), [1.0, 3.0])
    array([14., 24.,  4., 13., 12., 36., 27.,  0.])
    """
    w = _weights1d("convolve1d", weights)
    origin = -_checks.integer("convolve1d", "origin", _checks._unwrap0d(origin)) - (1 - w.shape[0] % 2)
    w = w[::-1]
    return correlate1d(input, w.conj() if w.dtype.kind == "c" else w, axis, output, mode, cval, origin)


@device_arg
def uniform_filter1d(input, size, axis=-1, output=None, mode="reflect", cval=0.0, origin=0):
    """Moving average of ``size`` values along ``axis``, as ``scipy.ndimage.uniform_filter1d``.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.ndimage.uniform_filter1d(np.array([2.0, 8, 0, 4, 1, 9, 9, 0]), size=3)
    array([4.        , 3.33333333, 4.        , 1.66666667, 4.66666667, 6.33333333,
           6.        , 3.        ])
    """
    f = "uniform_filter1d"
    size = _checks.integer(f, "size", _checks._unwrap0d(size), minimum=1)
    a = _input(f, input)
    if a.ndim:
        normalize_axis(f, axis, a.ndim)
    if a.dtype.kind == "c":
        _one_mode(f, mode)
        return _via_real_components(f, lambda x, _, cv, dt: uniform_filter1d(x, size, axis, dt, mode, cv, origin),
                                    a, None, output, cval)
    dt, arr = _output(f, a, output)
    x = _compute(a, dt)
    if x.dtype == np.float64:
        # scipy's running sum divided by the size: exact for integer data, so that an
        # integer output truncates (1 + 1 + 1) / 3 to 1, not 0.999... to 0.
        out = correlate1d(x, np.ones(size), axis, None, mode, cval, origin)
        out /= size
        return _store(out, dt, arr)
    return correlate1d(x, np.full(size, 1.0 / size), axis, arr if arr is not None else dt, mode, cval, origin)


def _axes(func, axes, ndim):
    if axes is None:
        return list(range(ndim))
    axes = _checks._unwrap0d(axes)
    if np.isscalar(axes):
        axes = [axes]
    try:
        axes = list(axes)
    except TypeError:
        raise TypeError(f"{func}: axes must be None, an integer or a sequence of integers, got {axes!r}") from None
    checked = []
    for ax in axes:
        ax = _checks._unwrap0d(ax)
        if isinstance(ax, bool) or not isinstance(ax, (numbers.Integral, np.integer)):
            raise TypeError(f"{func}: axes must hold integers, got {ax!r} ({type(ax).__name__}): it "
                            f"cannot be interpreted as an integer")
        if not -ndim <= ax < ndim:
            raise ValueError(f"{func}: axis {ax} is out of range (out of bounds) for an array of dimension {ndim}")
        checked.append(int(ax) % ndim)
    axes = checked
    if len(set(axes)) != len(axes):
        raise ValueError(f"{func}: axes must be unique, got {axes}")
    return axes




def _separable(func, a, output, cval, passes):
    """A separable filter as scipy runs it: ``passes`` is a list of functions
    ``pass(x, dtype, cval) -> x`` (one 1-D filter each, applied in order); every pass
    is stored in the output dtype (an integer output is truncated after each pass, as in
    scipy); no pass gives a copy. A complex input is filtered through its real and
    imaginary parts."""
    if a.dtype.kind == "c":
        return _via_real_components(func, lambda x, _, cv, dt: _separable(func, x, dt, cv, passes), a, None,
                                    output, cval)
    cval = _cval(func, cval)
    dt, arr = _output(func, a, output)
    out = a
    # scipy stores a bool pass as the byte of the uint8 cast (-1.0 is 255, True), and the
    # next pass reads that byte as 255: the passes run in uint8, the result is its bool.
    pass_dt = np.dtype(np.uint8) if dt.kind == "b" and len(passes) > 1 else dt
    for p in passes:
        out = p(out, pass_dt, cval)
    if pass_dt != dt:
        out = out != 0
    if out is a:
        out = _checks.c_cast(a, dt) if dt.kind != "c" else a.astype(dt)
        if out is a:
            out = a.copy()
    return _store(out, dt, arr)


@device_arg
def uniform_filter(input, size=3, output=None, mode="reflect", cval=0.0, origin=0, axes=None):
    """Multidimensional moving average, as ``scipy.ndimage.uniform_filter``.

    Applied as one 1-D average per axis (separable), each pass stored in the output
    dtype, as scipy does. ``size``, ``mode`` and ``origin`` may be given per axis (of
    ``axes``); an axis of size 0 or 1 is not filtered (its arguments are checked).

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.ndimage.uniform_filter(np.eye(3), size=3, mode='constant')
    array([[0.22222222, 0.22222222, 0.11111111],
           [0.22222222, 0.33333333, 0.22222222],
           [0.11111111, 0.22222222, 0.22222222]])
    """
    f = "uniform_filter"
    a = _input(f, input)
    if a.ndim == 0:
        raise ValueError("uniform_filter: input must have at least one dimension, got a 0-d array")
    axes = _axes(f, axes, a.ndim)
    n = len(axes)
    sizes = per_axis(f, "size", size, n, cast=lambda v: _checks.integer(f, "size", _checks._unwrap0d(v), minimum=0))
    origins = per_axis(f, "origin", origin, n)
    modes = per_axis(f, "mode", mode, n, cast=lambda m: _mode(f, m))
    for sz, org in zip(sizes, origins):  # (an axis of size 1 is skipped, its arguments are checked)
        if sz >= 1:
            _check_origin(f, org, sz)
    passes = [(lambda x, dt, cv, ax=ax, sz=sz, org=org, m=m: uniform_filter1d(x, sz, ax, dt, m, cv, org))
              for ax, sz, org, m in zip(axes, sizes, origins, modes) if sz > 1]
    return _separable(f, a, output, cval, passes)


def _gaussian_kernel1d(sigma, order, radius):
    """Samples of the Gaussian (or its ``order``-th derivative) at ``-radius..radius``,
    normalised so the order-0 kernel sums to one.

    A sigma so small that every sample but the centre underflows gives the delta
    kernel (order 0) or zeros (odd orders, whose centre is exactly 0); an even-order
    derivative whose weights exceed the float64 range (sigma too small, order too
    high) is a ValueError. (scipy divides by ``sigma**2`` and fails with
    ZeroDivisionError, or gives NaN weights.)"""
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore"):
        phi = np.exp(-0.5 * (x / sigma) ** 2)  # (the centre is exp(0) = 1: the sum is >= 1)
    phi /= phi.sum()
    if order == 0:
        return phi
    # d^n/dx^n of exp(-x^2 / 2 s^2) = h_n(x) exp(...) with h_n = (-1/s)^n He_n(x / s)
    # (probabilists' Hermite polynomials), by the three-term recurrence on the values,
    # carried times phi so that the terms have the kernel's own magnitude:
    # k_{n+1} = -(x / s^2) k_n - (n / s^2) k_{n-1}, k_0 = phi. Unlike summing c_i x^i (x
    # up to the radius, i up to the order), no term overflows for high orders. The
    # recurrence is pointwise: samples where phi underflows to 0 stay 0 (the product
    # is below the float range there), and so does the centre of an odd order.
    live = phi > 0
    if order % 2:
        live[radius] = False
    out = np.zeros_like(x)
    if not live.any():
        return out
    xs, ph = x[live], phi[live]
    s2 = np.float64(sigma) * np.float64(sigma)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        c = np.where(xs == 0, 0.0, xs / s2)
        prev, k = ph, -c * ph
        for n in range(1, order):
            prev, k = k, -c * k - (n / s2) * prev
            if not np.isfinite(k).all():
                raise ValueError(
                    f"gaussian_filter1d: the order-{order} derivative of a Gaussian with sigma={sigma} has weights "
                    "beyond the float64 range (sigma too small or order too high)")
            if not (k.any() or prev.any()):
                break  # every weight underflowed to 0, and stays 0
    if not np.isfinite(k).all():  # (order 1: -x / s^2 itself)
        raise ValueError(f"gaussian_filter1d: the order-{order} derivative of a Gaussian with sigma={sigma} has "
                         "weights beyond the float64 range (sigma too small)")
    out[live] = k
    return out


#: The highest derivative order of the Gaussian filters. It keeps the kernel's
#: recurrence short whatever the order (scipy's own builds an (order + 1)^2 matrix); the
#: derivative kernels of the orders below it are finite wherever they fit in float64.
_MAX_ORDER = 1000


def _gaussian_radius(func, sigma, truncate, radius):
    """scipy's kernel radius ``int(truncate * sigma + 0.5)``, or ``radius``; both
    arguments are checked either way (scipy computes the first even when ``radius`` is
    given)."""
    lw = truncate * sigma + 0.5
    if radius is not None:
        lw = radius
    if not lw <= (_checks.MAX_ELEMENTS - 1) // 2:  # (inf: truncate * sigma overflowed)
        raise ValueError(f"{func}: a Gaussian kernel of radius {lw} (sigma={sigma}, truncate={truncate}, "
                         f"radius={radius}) is larger than any array can hold")
    return int(lw)




def _radius(func, radius):
    """``radius``: None or an integer >= 0; a float is a ValueError (scipy's type) and a
    TypeError (this package's rule for a float count)."""
    if radius is None:
        return None
    radius = _checks._unwrap0d(radius)
    if isinstance(radius, numbers.Real) and not isinstance(radius, (bool, np.bool_, numbers.Integral)):
        raise _checks.IntegerValueError(f"{func}: radius must be a non-negative integer, got {radius!r}")
    return _checks.integer(func, "radius", radius, minimum=0)


@device_arg
def gaussian_filter1d(input, sigma, axis=-1, order=0, output=None, mode="reflect", cval=0.0,
                      truncate=4.0, *, radius=None):
    """One-dimensional Gaussian filter, as ``scipy.ndimage.gaussian_filter1d``.

    The kernel has radius ``int(truncate * sigma + 0.5)`` (or ``radius``); ``order`` > 0
    convolves with a derivative of the Gaussian. ``sigma`` must be finite and > 0,
    ``truncate`` finite and >= 0 (also when ``radius`` is given), ``radius`` an integer
    >= 0 and ``order`` an integer from 0 to 1000. An order whose
    kernel has weights beyond the float64 range (a sigma far below 1) is a ValueError.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.ndimage.gaussian_filter1d(np.array([1.0, 2, 3, 4, 5]), 1)
    array([1.42704095, 2.06782203, 3.        , 3.93217797, 4.57295905])
    """
    f = "gaussian_filter1d"
    a = _input(f, input)
    if a.ndim:
        normalize_axis(f, axis, a.ndim)
    sigma = _checks.real(f, "sigma", _checks._unwrap0d(sigma), minimum=0, strict_min=True)
    order = _checks.integer(f, "order", _checks._unwrap0d(order), minimum=0, maximum=_MAX_ORDER)
    truncate = _checks.real(f, "truncate", _checks._unwrap0d(truncate), minimum=0)
    radius = _radius(f, radius)
    lw = _gaussian_radius(f, sigma, truncate, radius)
    w = _gaussian_kernel1d(sigma, order, lw)[::-1]
    # Every Gaussian pass sums float32 in float64, whatever its length: the filters
    # users hold against scipy's to the bit (scipy's test_gauss03 keeps the total of a
    # ramp through sigma 1; a float32 sum drifts it by 1.1 where scipy's drifts 0.07).
    return _correlate1d(a, w, axis, output, mode, cval, 0, wide=True)


@device_arg
def gaussian_filter(input, sigma, order=0, output=None, mode="reflect", cval=0.0, truncate=4.0,
                    *, radius=None, axes=None):
    """Multidimensional Gaussian filter, as ``scipy.ndimage.gaussian_filter``.

    One 1-D Gaussian pass per axis (separable), each stored in the output dtype;
    ``sigma``, ``order``, ``mode``, ``truncate`` and ``radius`` may be given per axis. An
    axis with ``sigma <= 1e-15`` is left as it is (as in scipy); its arguments are
    checked all the same.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.ndimage.gaussian_filter(np.array([[0.0, 0, 0], [0, 1, 0], [0, 0, 0]]), 1, mode='constant').round(4)
    array([[0.0586, 0.0965, 0.0586],
           [0.0965, 0.1592, 0.0965],
           [0.0586, 0.0965, 0.0586]])
    """
    f = "gaussian_filter"
    a, live = _gaussian_axes(f, input, sigma, order, mode, truncate, radius, axes)
    fused = _gaussian2d(f, a, output, cval, [live])
    if fused is not None:
        return fused
    passes = [(lambda x, dt, cv, ax=ax, s=s, o=o, m=m, t=t, r=r:
               gaussian_filter1d(x, s, ax, o, dt, m, cv, t, radius=r))
              for ax, s, o, m, t, r in live]
    return _separable(f, a, output, cval, passes)


def _gaussian_axes(f, input, sigma, order, mode, truncate, radius, axes):
    """gaussian_filter's arguments checked: the input array and the axes it filters, as
    ``(axis, sigma, order, mode, truncate, radius)`` in the order given (an axis with
    ``sigma <= 1e-15`` is left out, as in scipy)."""
    a = _input(f, input)
    if a.ndim == 0:
        raise ValueError("gaussian_filter: input must have at least one dimension, got a 0-d array")
    axes = _axes(f, axes, a.ndim)
    n = len(axes)
    sigmas = per_axis(f, "sigma", sigma, n, cast=lambda v: _checks.real(f, "sigma", _checks._unwrap0d(v), minimum=0))
    orders = per_axis(f, "order", order, n, cast=lambda v: _checks.integer(f, "order", _checks._unwrap0d(v),
                                                                           minimum=0, maximum=_MAX_ORDER))
    modes = per_axis(f, "mode", mode, n, cast=lambda m: _mode(f, m))
    truncs = per_axis(f, "truncate", truncate, n,
                      cast=lambda v: _checks.real(f, "truncate", _checks._unwrap0d(v), minimum=0))
    radii = per_axis(f, "radius", radius, n, cast=lambda v: _radius(f, v))
    return a, [(ax, s, o, m, t, r) for ax, s, o, m, t, r in zip(axes, sigmas, orders, modes, truncs, radii)
               if s > 1e-15]


def _gaussian2d(func, a, output, cval, filters):
    """The sum of Gaussian filters of a 2-D float32 / float64 array (``filters``: each
    the ``_gaussian_axes`` of one, along axis 0 then axis 1), in its own dtype, as one
    native call: each filter's two passes fused in strips of rows and the filters added
    in order, bit for bit the passes apart and numpy's adds. None where it does not
    apply: other ranks, dtypes, axes or outputs, or a backend without the fused kernel."""
    if a.ndim != 2 or a.dtype not in (np.float32, np.float64) or a.size == 0 or not a.dtype.isnative:
        return None
    cval = _cval(func, cval)  # (checked before output, as the passes apart check them)
    dt, arr = _output(func, a, output)
    if arr is not None or dt != a.dtype:
        return None
    spec = []
    for live in filters:
        if len(live) != 2 or (live[0][0], live[1][0]) != (0, 1):
            return None
        (_, s0, o0, m0, t0, r0), (_, s1, o1, m1, t1, r1) = live
        w0, w1 = (_weights_as(_gaussian_kernel1d(s, o, _gaussian_radius("gaussian_filter1d", s, t, r))[::-1],
                              a.dtype, True) for s, o, t, r in ((s0, o0, t0, r0), (s1, o1, t1, r1)))
        spec.append((w0, m0, w1, m1))
    return call_backend().correlate_separable2(a, spec, cval)


def _derivative_filter(func, input, axis, output, mode, cval, smooth):
    """scipy's sobel / prewitt: the central difference along ``axis``, then ``smooth``
    along every other axis, each pass stored in the output dtype; ``mode`` one or one
    per axis."""
    a = _input(func, input)
    if a.ndim == 0:
        raise ValueError(f"{func}: input must have at least one dimension, got a 0-d array")
    axis = normalize_axis(func, axis, a.ndim)
    modes = per_axis(func, "mode", mode, a.ndim, cast=lambda m: _mode(func, m))
    diff = np.array([-1.0, 0.0, 1.0])
    passes = [lambda x, dt, cv: correlate1d(x, diff, axis, dt, modes[axis], cv, 0)]
    passes += [(lambda x, dt, cv, ax=ax: correlate1d(x, smooth, ax, dt, modes[ax], cv, 0))
               for ax in range(a.ndim) if ax != axis]
    return _separable(func, a, output, cval, passes)


@device_arg
def sobel(input, axis=-1, output=None, mode="reflect", cval=0.0):
    """Sobel derivative along ``axis``, as ``scipy.ndimage.sobel``.

    The central difference ``[-1, 0, 1]`` along ``axis``, smoothed with ``[1, 2, 1]``
    along every other axis; ``mode`` may be given per axis. An unsigned input gives an
    unsigned result with scipy's wrap-around (pass ``output=np.float32`` for signed
    edges).

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.ndimage.sobel(np.array([[0.0, 0, 1, 1]] * 3), axis=1)
    array([[0., 4., 4., 0.],
           [0., 4., 4., 0.],
           [0., 4., 4., 0.]])
    """
    return _derivative_filter("sobel", input, axis, output, mode, cval, np.array([1.0, 2.0, 1.0]))


@device_arg
def prewitt(input, axis=-1, output=None, mode="reflect", cval=0.0):
    """Prewitt derivative along ``axis``, as ``scipy.ndimage.prewitt``.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.ndimage.prewitt(np.array([[0.0, 0, 1, 1]] * 3), axis=1)
    array([[0., 3., 3., 0.],
           [0., 3., 3., 0.],
           [0., 3., 3., 0.]])
    """
    return _derivative_filter("prewitt", input, axis, output, mode, cval, np.array([1.0, 1.0, 1.0]))


# ------------------------------------------------- Laplace and gradient magnitude
def _new_output(func, a, output):
    """scipy's ``_get_output`` for the composed filters: the array to accumulate into
    (``output`` itself when it is one, else a new zeroed array of the dtype)."""
    dt, arr = _output(func, a, output, complex_output=a.dtype.kind == "c")
    return arr if arr is not None else np.zeros(a.shape, dtype=dt)


def _composed_axes(func, a, axes, mode):
    axes = _axes(func, axes, a.ndim)
    return axes, per_axis(func, "mode", mode, len(axes), cast=lambda m: _mode(func, m))


def _generic_start(func, what, fn, input, output, mode, axes, extra_keywords):
    """The arguments of generic_laplace / generic_gradient_magnitude checked: the input,
    the array to accumulate into, the axes with their modes, the keyword dict."""
    if not callable(fn):
        raise TypeError(f"{func}: {what} must be callable, got {fn!r}")
    a = _numeric_array(func, "input", input, complex_ok=True)
    out = _new_output(func, a, output)
    axes, modes = _composed_axes(func, a, axes, mode)
    if not axes:
        out[...] = a
    return a, out, axes, modes, ({} if extra_keywords is None else extra_keywords)


def generic_laplace(input, derivative2, output=None, mode="reflect", cval=0.0, extra_arguments=(),
                    extra_keywords=None, *, axes=None):
    """N-D Laplace filter with a given second-derivative function, as
    ``scipy.ndimage.generic_laplace``: the sum over ``axes`` of
    ``derivative2(input, axis, output, mode, cval, *extra_arguments, **extra_keywords)``,
    accumulated in the output dtype. ``mode`` may be given per axis."""
    a, out, axes, modes, extra_keywords = _generic_start("generic_laplace", "derivative2", derivative2, input,
                                                          output, mode, axes, extra_keywords)
    if not axes:
        return out
    derivative2(a, axes[0], out, modes[0], cval, *extra_arguments, **extra_keywords)
    for ax, m in zip(axes[1:], modes[1:]):
        out += derivative2(a, ax, out.dtype, m, cval, *extra_arguments, **extra_keywords)
    return out


@device_arg
def laplace(input, output=None, mode="reflect", cval=0.0, *, axes=None):
    """N-D Laplace filter from second differences ``[1, -2, 1]`` along each axis, as
    ``scipy.ndimage.laplace`` (each axis stored in the output dtype, then summed there).

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.ndimage.laplace(np.array([[0.0, 0, 0], [0, 1, 0], [0, 0, 0]]), mode='constant')
    array([[ 0.,  1.,  0.],
           [ 1., -4.,  1.],
           [ 0.,  1.,  0.]])
    """
    def derivative2(x, axis, out, m, cv):
        return correlate1d(x, [1, -2, 1], axis, out, m, cv, 0)
    return _sum_over_axes("laplace", input, derivative2, output, mode, cval, axes)


def _sum_over_axes(func, input, derivative2, output, mode, cval, axes, *extra):
    """generic_laplace for this module's own derivatives: the first axis's result (in
    the output dtype) is the accumulator, instead of a zeroed output filled by copy."""
    a = _numeric_array(func, "input", input, complex_ok=True)
    if output is not None:
        return generic_laplace(a, derivative2, output, mode, cval, extra_arguments=extra, axes=axes)
    dt = _output(func, a, None, complex_output=a.dtype.kind == "c")[0]
    axes, modes = _composed_axes(func, a, axes, mode)
    if not axes:
        return a.astype(dt)
    out = derivative2(a, axes[0], dt, modes[0], cval, *extra)
    for ax, m in zip(axes[1:], modes[1:]):
        np.add(out, derivative2(a, ax, dt, m, cval, *extra), out=out)
    return out


def _sigma_over_axes(func, a, sigma, axes):
    """``sigma`` per axis of ``a``: one per filtered axis, 0 (no smoothing) elsewhere."""
    axes = _axes(func, axes, a.ndim)
    sig = per_axis(func, "sigma", sigma, len(axes), cast=lambda v: _checks.real(func, "sigma", _checks._unwrap0d(v),
                                                                              minimum=0))
    return _on_axes(sig, axes, a.ndim, 0.0)


@device_arg
def gaussian_laplace(input, sigma, output=None, mode="reflect", cval=0.0, *, axes=None, **kwargs):
    """Laplace filter from Gaussian second derivatives, as ``scipy.ndimage.gaussian_laplace``
    (the Laplacian of Gaussian): the sum over ``axes`` of :func:`gaussian_filter` of order 2
    along that axis. ``kwargs`` (``truncate``, ``radius``) go to :func:`gaussian_filter`.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x = np.zeros((5, 5)); x[2, 2] = 1
    >>> float(convcore.ndimage.gaussian_laplace(x, 1)[2, 2].round(6))
    -0.318312
    """
    f = "gaussian_laplace"
    a = _numeric_array(f, "input", input, complex_ok=True)
    sig = _sigma_over_axes(f, a, sigma, axes)

    if output is None and not (set(kwargs) - {"truncate", "radius"}):
        # a 2-D float array: both axes' filters and their sum in one native call
        ax_list, modes = _composed_axes(f, a, axes, mode)
        if a.ndim == 2 and [int(ax) for ax in ax_list] == [0, 1]:
            filters = []
            for i, m in enumerate(modes):
                order = [0, 0]
                order[i] = 2
                filters.append(_gaussian_axes("gaussian_filter", a, sig, order, m, kwargs.get("truncate", 4.0),
                                              kwargs.get("radius"), None)[1])
            fused = _gaussian2d(f, a, None, cval, filters)
            if fused is not None:
                return fused

    def derivative2(x, axis, out, m, cv, s):
        order = [0] * x.ndim
        order[axis] = 2
        return gaussian_filter(x, s, order, out, m, cv, **kwargs)
    return _sum_over_axes(f, a, derivative2, output, mode, cval, axes, sig)


def generic_gradient_magnitude(input, derivative, output=None, mode="reflect", cval=0.0, extra_arguments=(),
                               extra_keywords=None, *, axes=None):
    """Gradient magnitude with a given derivative function, as
    ``scipy.ndimage.generic_gradient_magnitude``: ``sqrt(sum over axes of
    derivative(input, axis, output, mode, cval, ...)**2)``, squared and summed in the
    output dtype (the square root cast to it, as scipy)."""
    a, out, axes, modes, extra_keywords = _generic_start("generic_gradient_magnitude", "derivative", derivative,
                                                          input, output, mode, axes, extra_keywords)
    if not axes:
        return out
    derivative(a, axes[0], out, modes[0], cval, *extra_arguments, **extra_keywords)
    with np.errstate(over="ignore", invalid="ignore"):
        np.multiply(out, out, out)
        for ax, m in zip(axes[1:], modes[1:]):
            tmp = derivative(a, ax, out.dtype, m, cval, *extra_arguments, **extra_keywords)
            np.multiply(tmp, tmp, tmp)
            out += tmp
        np.sqrt(out, out, casting="unsafe")
    return out


@device_arg
def gaussian_gradient_magnitude(input, sigma, output=None, mode="reflect", cval=0.0, *, axes=None, **kwargs):
    """Gradient magnitude from Gaussian derivatives, as
    ``scipy.ndimage.gaussian_gradient_magnitude``: ``sqrt(sum over axes of
    gaussian_filter(order 1 along the axis)**2)``. ``kwargs`` go to :func:`gaussian_filter`.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x = np.zeros((5, 5)); x[:, 3:] = 1
    >>> convcore.ndimage.gaussian_gradient_magnitude(x, 1)[2].round(4)
    array([0.0133, 0.1218, 0.3638, 0.3632, 0.108 ])
    """
    f = "gaussian_gradient_magnitude"
    a = _numeric_array(f, "input", input, complex_ok=True)

    def derivative(x, axis, out, m, cv, s, **kw):
        order = [0] * x.ndim
        order[axis] = 1
        return gaussian_filter(x, s, order, out, m, cv, **kw)
    return generic_gradient_magnitude(a, derivative, output, mode, cval, extra_arguments=(sigma,),
                                      extra_keywords=kwargs, axes=axes)


# ------------------------------------------------------------------ rank filters
def _rank_input(func, input):
    """The input of a rank filter: bool, integer, float32 or float64 (complex is a
    TypeError, as scipy; float16 and long double as :func:`_input`)."""
    a = _numeric_array(func, "input", input, complex_ok=True)
    if a.dtype.kind == "c":
        raise TypeError(f"{func}: complex input is not supported (Complex type not supported), got {a.dtype}")
    _supported(func, "input", a.dtype)
    return a


def _rank_native(a, mode, cval, cast_cval):
    """The array the native kernel orders and its ``cval``: bool as its uint8 bytes.
    ``cast_cval`` (scipy's N-D rank and min/max filters): ``cval`` is first stored in
    the input's dtype as C stores it (-3 is 253 in uint8). Otherwise (scipy's 1-D
    passes, which order in double or int64): an integer input keeps its type when
    ``cval`` truncated toward zero fits it (ordering commutes with that truncation, so
    the result is scipy's, which truncates the result), else everything is ordered in
    float64; a float32 input takes ``cval`` rounded to float32 (rounding commutes with
    ordering too)."""
    x = a.view(np.uint8) if a.dtype.kind == "b" else a
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    if mode not in ("constant", "grid-constant"):
        return x, np.zeros(1, dtype=x.dtype)
    if cast_cval:
        cv = _checks.c_cast(np.array([cval]), a.dtype)
        return x, (cv.view(np.uint8) if cv.dtype.kind == "b" else cv).astype(x.dtype)
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        if math.isfinite(cval) and info.min <= math.trunc(cval) <= info.max:
            return x, np.array([math.trunc(cval)], dtype=x.dtype)
        return x.astype(np.float64), np.array([cval])
    with np.errstate(over="ignore"):
        return x, np.array([cval], dtype=x.dtype)


def _rank_nd(func, a, fp, rank, origins, mode, cval, dt, arr, cast_cval=True):
    """The ``rank``-th smallest over the boolean footprint ``fp`` (one dimension per
    axis of ``a``), native and parallel, stored in ``dt`` (into ``arr``); ``cast_cval``
    as :func:`_rank_native`."""
    mode = _one_mode(func, mode)
    cval = _cval(func, cval)
    if a.size == 0:
        return _store(np.zeros(a.shape, dtype=a.dtype), dt, arr)
    x, cv = _rank_native(a, mode, cval, cast_cval)
    res = call_backend().rank_filter(np.ascontiguousarray(x), np.ascontiguousarray(fp, dtype=np.uint8), int(rank),
                                     [int(o) for o in origins], mode, np.ascontiguousarray(cv))
    return _store(res, dt, arr)


def _minmax1d(func, input, size, axis, output, mode, cval, origin, minimum):
    a = _rank_input(func, input)
    if a.ndim == 0:
        raise ValueError(f"{func}: input must have at least one dimension, got a 0-d array")
    axis = normalize_axis(func, axis, a.ndim)
    size = _checks.integer(func, "size", _checks._unwrap0d(size))
    if size < 1:
        raise _checks.ArgumentValueError(f"{func}: incorrect filter size {size}: it must be >= 1")
    dt, arr = _output(func, a, output)
    origin = _checks.integer(func, "origin", _checks._unwrap0d(origin))
    _check_origin(func, origin, size)
    shape = [1] * a.ndim
    shape[axis] = size
    origins = [0] * a.ndim
    origins[axis] = origin
    return _rank_nd(func, a, np.ones(shape, dtype=bool), 0 if minimum else size - 1, origins, mode, cval, dt, arr,
                    cast_cval=False)


@device_arg
def minimum_filter1d(input, size, axis=-1, output=None, mode="reflect", cval=0.0, origin=0):
    """Minimum over ``size`` values along ``axis``, as ``scipy.ndimage.minimum_filter1d``.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.ndimage.minimum_filter1d(np.array([2, 8, 0, 4, 1, 9, 9, 0]), size=3)
    array([2, 0, 0, 0, 1, 1, 0, 0])
    """
    return _minmax1d("minimum_filter1d", input, size, axis, output, mode, cval, origin, True)


@device_arg
def maximum_filter1d(input, size, axis=-1, output=None, mode="reflect", cval=0.0, origin=0):
    """Maximum over ``size`` values along ``axis``, as ``scipy.ndimage.maximum_filter1d``.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.ndimage.maximum_filter1d(np.array([2, 8, 0, 4, 1, 9, 9, 0]), size=3)
    array([8, 8, 8, 4, 9, 9, 9, 9])
    """
    return _minmax1d("maximum_filter1d", input, size, axis, output, mode, cval, origin, False)


def _footprint_or_size(func, size, footprint):
    if size is not None and footprint is not None:
        warnings.warn("ignoring size because footprint is set", UserWarning, stacklevel=4)
    if footprint is None:
        if size is None:
            raise _checks.ArgumentValueError(f"{func}: no footprint or filter size provided (pass size= or "
                                             "footprint=)")
        return None
    fp = np.asarray(footprint)
    if fp.dtype.kind not in "biuf":
        raise TypeError(f"{func}: footprint must be an array of booleans (or numbers), got dtype {fp.dtype}")
    return fp.astype(bool)


def _expand_footprint(func, a, fp, axes):
    """``fp`` over every axis of ``a`` (size 1 on the axes not in ``axes``)."""
    if len(axes) < a.ndim:
        if fp.ndim != len(axes):
            raise _checks.ArgumentShapeError(f"{func}: footprint.ndim ({fp.ndim}) must match len(axes) "
                                             f"({len(axes)}), got footprint shape {fp.shape}")
        fp = np.expand_dims(fp, tuple(ax for ax in range(a.ndim) if ax not in axes))
    if fp.ndim != a.ndim or 0 in fp.shape:
        raise _checks.ArgumentShapeError(f"{func}: footprint.ndim ({fp.ndim}) must match len(axes) "
                                         f"({len(axes)}) with no empty axis, got footprint shape {fp.shape}")
    return fp


def _expand_origins(func, a, origin, axes):
    return _on_axes(per_axis(func, "origin", origin, len(axes)), axes, a.ndim, 0)


#: Largest box that the minimum / maximum filters take in one N-D pass (measured faster
#: than one pass per axis up to 5x5, by benches/compare.py's rows: one output instead of
#: one per axis; the native box path folds the rows, then along the last axis, so a
#: pass costs what the separable passes cost in min/max).
_BOX_ONE_PASS = 49


def _box_in_one_pass(func, a, sizes, origins, modes, output, cval, axes, minimum):
    """A min/max box filter as one N-D pass when that gives the separable passes' result
    exactly: the output in the input's dtype (no cast between the passes), one mode, a
    constant ``cval`` that the input's dtype holds exactly; None otherwise."""
    live = [(ax, sz, org) for ax, sz, org in zip(axes, sizes, origins) if sz > 1]
    if not live or len(set(modes)) != 1 or math.prod(sz for _, sz, _ in live) > _BOX_ONE_PASS:
        return None
    for _, sz, org in live:
        _check_origin(func, org, sz)
    dt, arr = _output(func, a, output)
    if dt != a.dtype.newbyteorder("="):
        return None
    c = _cval(func, cval)
    if modes[0] in ("constant", "grid-constant"):
        if a.dtype.kind == "b" and c not in (0.0, 1.0):
            return None
        if a.dtype.kind in "iu" and not (math.isfinite(c) and c == math.trunc(c)
                                         and np.iinfo(a.dtype).min <= c <= np.iinfo(a.dtype).max):
            return None
    shape, full = [1] * a.ndim, [0] * a.ndim
    for ax, sz, org in live:
        shape[ax], full[ax] = sz, org
    fp = np.ones(shape, dtype=bool)
    return _rank_nd(func, a, fp, 0 if minimum else fp.size - 1, full, modes[0], c, dt, arr)


def _min_or_max(func, input, size, footprint, output, mode, cval, origin, axes, minimum):
    fp = _footprint_or_size(func, size, footprint)
    if fp is not None and not fp.any():
        raise ValueError(f"{func}: an all-zero footprint is not supported (All-zero footprint), got shape {fp.shape}")
    a = _rank_input(func, input)
    axes = _axes(func, axes, a.ndim)
    if fp is None or fp.all():
        # a box: one 1-D pass per axis (scipy's separable path), each stored in the
        # output dtype; sizes, origins and modes per axis.
        sizes = per_axis(func, "size", size if fp is None else fp.shape, len(axes),
                         cast=lambda v: _checks.integer(func, "size", _checks._unwrap0d(v)))
        origins = per_axis(func, "origin", origin, len(axes))
        modes = per_axis(func, "mode", mode, len(axes), cast=lambda m: _mode(func, m))
        box = _box_in_one_pass(func, a, sizes, origins, modes, output, cval, axes, minimum)
        if box is not None:
            return box
        one = minimum_filter1d if minimum else maximum_filter1d
        passes = [(lambda x, dt, cv, ax=ax, sz=sz, org=org, m=m: one(x, sz, ax, dt, m, cv, org))
                  for ax, sz, org, m in zip(axes, sizes, origins, modes) if sz > 1]
        return _separable(func, a, output, cval, passes)
    if not isinstance(mode, str):
        raise _checks.ArgumentTypeError(f"{func}: a sequence of modes is not supported for non-separable "
                                        f"footprints, got mode={mode!r}")
    fp = _expand_footprint(func, a, fp, axes)
    origins = _expand_origins(func, a, origin, axes)
    for o, n in zip(origins, fp.shape):
        _check_origin(func, o, n)
    dt, arr = _output(func, a, output)
    return _rank_nd(func, a, fp, 0 if minimum else int(fp.sum()) - 1, origins, mode, cval, dt, arr)


@device_arg
def minimum_filter(input, size=None, footprint=None, output=None, mode="reflect", cval=0.0, origin=0, *,
                   axes=None):
    """Minimum over a window, as ``scipy.ndimage.minimum_filter`` (grey erosion with a
    flat footprint).

    ``size`` (a box, per axis or one for all) or ``footprint`` (a boolean array, one
    dimension per filtered axis) gives the window; a box is filtered one axis at a time
    (``mode`` then may be given per axis). ``origin`` shifts the window, ``axes``
    chooses the axes filtered. The result has the input's dtype (or ``output``'s).

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.ndimage.minimum_filter(np.array([[3, 1, 4], [1, 5, 9], [2, 6, 5]]), size=2)
    array([[3, 1, 1],
           [1, 1, 1],
           [1, 1, 5]])
    """
    return _min_or_max("minimum_filter", input, size, footprint, output, mode, cval, origin, axes, True)


@device_arg
def maximum_filter(input, size=None, footprint=None, output=None, mode="reflect", cval=0.0, origin=0, *,
                   axes=None):
    """Maximum over a window, as ``scipy.ndimage.maximum_filter`` (grey dilation with a
    flat footprint); arguments as :func:`minimum_filter`.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.ndimage.maximum_filter(np.array([[3, 1, 4], [1, 5, 9], [2, 6, 5]]), size=2)
    array([[3, 3, 4],
           [3, 5, 9],
           [2, 6, 9]])
    """
    return _min_or_max("maximum_filter", input, size, footprint, output, mode, cval, origin, axes, False)


def _rank(func, input, rank, size, footprint, output, mode, cval, origin, operation, axes):
    """scipy's ``_rank_filter``: ``operation`` is 'rank' (``rank`` an integer, negative
    from the top), 'median' or 'percentile' (``rank`` a percentile in [-100, 100])."""
    fp = _footprint_or_size(func, size, footprint)
    a = _rank_input(func, input)
    axes = _axes(func, axes, a.ndim)
    if fp is None:
        sizes = per_axis(func, "size", size, len(axes),
                         cast=lambda v: _checks.integer(func, "size", _checks._unwrap0d(v), minimum=0))
        fp = np.ones(sizes, dtype=bool)
    fp = _expand_footprint(func, a, fp, axes)
    origins = _expand_origins(func, a, origin, axes)
    if not isinstance(mode, str):
        mode = _on_axes(per_axis(func, "mode", mode, len(axes), cast=lambda m: _mode(func, m)), axes, a.ndim,
                        "constant")
    for o, n in zip(origins, fp.shape):
        _check_origin(func, o, n)
    count = int(fp.sum())
    if operation == "median":
        rank = count // 2
    elif operation == "percentile":
        p = _checks.real(func, "percentile", _checks._unwrap0d(rank))
        if p < 0.0:
            p += 100.0
        if not 0 <= p <= 100:
            raise _checks.ArgumentValueError(f"{func}: invalid percentile {rank!r}: it must lie in [-100, 100]")
        rank = count - 1 if p == 100.0 else int(float(count) * p / 100.0)
    else:
        rank = _checks.integer(func, "rank", _checks._unwrap0d(rank))
    if rank < 0:
        rank += count
    if not 0 <= rank < count:
        raise _checks.ArgumentValueError(f"{func}: rank {rank} is not within the footprint's {count} positions "
                                         "(rank not within filter footprint size)")
    if rank == 0:
        return minimum_filter(a, None, fp, output, mode, cval, origins)
    if rank == count - 1:
        return maximum_filter(a, None, fp, output, mode, cval, origins)
    dt, arr = _output(func, a, output)
    if not isinstance(mode, str):
        raise _checks.ArgumentTypeError(f"{func}: a sequence of modes is not supported by non-separable rank "
                                        f"filters, got mode={mode!r}")
    # scipy's 1-D rank filter orders in int64 / float64 (cval cast to that), its N-D one
    # in the input's dtype
    one_d = a.ndim == 1 and (a.size - ((fp.size - 1) // 2 - origins[0]) >= 0 or a.size == 1)
    if one_d and a.dtype.kind in "biu":
        # (scipy's 1-D rank filter casts cval to int64 first, whatever the mode)
        c = _cval(func, cval)
        if not (math.isfinite(c) and -2.0 ** 63 <= c < 2.0 ** 63):
            raise ValueError(f"{func}: cval {cval!r} cannot be converted to the integer input's int64")
    return _rank_nd(func, a, fp, rank, origins, mode, cval, dt, arr, cast_cval=not one_d)


@device_arg
def rank_filter(input, rank, size=None, footprint=None, output=None, mode="reflect", cval=0.0, origin=0, *,
                axes=None):
    """The ``rank``-th smallest value of each window (0 the minimum, -1 the maximum), as
    ``scipy.ndimage.rank_filter``; windows as :func:`minimum_filter`.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.ndimage.rank_filter(np.array([2, 8, 0, 4, 1, 9, 9, 0]), 1, size=3)
    array([2, 2, 4, 1, 4, 9, 9, 0])
    """
    if isinstance(rank, (bool, np.bool_)) or not isinstance(_checks._unwrap0d(rank), numbers.Integral):
        raise TypeError(f"rank_filter: rank must be an integer, got {rank!r}")
    return _rank("rank_filter", input, rank, size, footprint, output, mode, cval, origin, "rank", axes)


@device_arg
def median_filter(input, size=None, footprint=None, output=None, mode="reflect", cval=0.0, origin=0, *,
                  axes=None):
    """Median of each window, as ``scipy.ndimage.median_filter`` (for an even number of
    values, the upper of the two middle ones, as scipy); windows as
    :func:`minimum_filter`. Small windows go through vectorised selection networks.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.ndimage.median_filter(np.array([2, 80, 6, 3, 1, 9]), size=3)
    array([2, 6, 6, 3, 3, 9])
    """
    if (footprint is None and output is None and axes is None and type(input) is np.ndarray
            and type(size) is int and size >= 2 and type(origin) is int and origin == 0
            and type(mode) is str and mode in _FAST_MODES and type(cval) in (int, float)
            and input.ndim >= 2 and input.size and input.dtype in _FAST_RANK_DTYPES):
        # The common call (an array, one integer size, the defaults, a mode other than
        # 'constant'): what _rank would pass the kernel, without the general argument
        # handling (measured: 45 -> 28 us a call on a small array; the kernel's own
        # call is 17).
        fp = _box_footprint(size, input.ndim)
        return call_backend().rank_filter(np.ascontiguousarray(input), fp, fp.size // 2, [0] * input.ndim, mode,
                                          np.zeros(1, dtype=input.dtype))
    return _rank("median_filter", input, 0, size, footprint, output, mode, cval, origin, "median", axes)


# median_filter's common call: the modes whose cval is unused, the dtypes the kernel
# takes as they are (native byte order), and its box footprints (read-only, cached)
_FAST_MODES = frozenset(_MODES) - {"constant", "grid-constant"}
_FAST_RANK_DTYPES = frozenset(np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32,
                                                    np.uint64, np.int64, np.float32, np.float64))
_BOX_FOOTPRINTS = {}


def _box_footprint(size, ndim):
    fp = _BOX_FOOTPRINTS.get((size, ndim))
    if fp is None:
        fp = np.ones((size,) * ndim, dtype=np.uint8)
        if size ** ndim <= 1 << 20:  # (a larger footprint is rare and costly to keep)
            fp.flags.writeable = False
            _BOX_FOOTPRINTS[(size, ndim)] = fp
    return fp


@device_arg
def percentile_filter(input, percentile, size=None, footprint=None, output=None, mode="reflect", cval=0.0,
                      origin=0, *, axes=None):
    """The ``percentile`` (-100 to 100; negative counts from the top) of each window, as
    ``scipy.ndimage.percentile_filter``: the value of rank ``int(n * percentile / 100)``
    of the window's ``n`` values; windows as :func:`minimum_filter`.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> convcore.ndimage.percentile_filter(np.array([2, 8, 0, 4, 1, 9, 9, 0]), 20, size=5)
    array([2, 2, 1, 1, 1, 1, 0, 0])
    """
    return _rank("percentile_filter", input, percentile, size, footprint, output, mode, cval, origin,
                 "percentile", axes)


# ---------------------------------------------------------------- kernel builders

#: The most dimensions a numpy array may have (64 since numpy 2.0, 32 before).
_MAX_NDIM = 64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32


def _kernel_shape(func, k, ndim):
    k = _checks.integer(func, "k", _checks._unwrap0d(k))
    ndim = _checks.integer(func, "ndim", _checks._unwrap0d(ndim), maximum=_MAX_NDIM)
    if k < 1 or ndim < 1:
        raise ValueError(f"{func}: k and ndim must be >= 1, got k={k}, ndim={ndim}")
    n = _checks.element_count(func, (k,) * ndim, f"a kernel (k={k}, ndim={ndim})")
    if n * 8 > _checks.MAX_ELEMENTS:  # (the weights are computed in float64)
        raise ValueError(f"{func}: a kernel with k={k}, ndim={ndim} would have {n} elements, more than any array "
                         "can hold")
    return k, ndim


def _kernel_dtype(func, dtype, kinds="f"):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{func}: dtype must be a numpy dtype, got {dtype!r}") from None
    if dt.kind not in kinds:
        what = "a float dtype" if kinds == "f" else "a signed integer or float dtype"
        raise TypeError(f"{func}: dtype must be {what}, got {dt}")
    return dt


def uniform_kernel(k, ndim=2, dtype=np.float64):
    """A ``k x ... x k`` averaging kernel (all weights ``1 / k**ndim``).

    ``k`` and ``ndim`` are integers >= 1 (bool, float and str are TypeError); ``dtype``
    is a float dtype.

    Examples
    --------
    >>> import convcore
    >>> convcore.ndimage.uniform_kernel(3).sum()
    np.float64(1.0)
    """
    k, ndim = _kernel_shape("uniform_kernel", k, ndim)
    dt = _kernel_dtype("uniform_kernel", dtype)
    return np.full((k,) * ndim, 1.0 / k ** ndim, dtype=dt)


def gaussian_kernel(k, sigma, ndim=2, dtype=np.float64):
    """A ``k x ... x k`` Gaussian smoothing kernel of standard deviation ``sigma``,
    centred, normalised to sum 1 (the outer product of 1-D Gaussians).

    ``k`` and ``ndim`` are integers >= 1, ``sigma`` a finite number > 0, ``dtype`` a
    float dtype. The samples are normalised relative to the ones nearest the centre, so
    a sigma far below the sample spacing gives the delta (odd ``k``) or the two middle
    samples at 1/2 each (even ``k``), not 0 / 0.

    Examples
    --------
    >>> import convcore
    >>> g = convcore.ndimage.gaussian_kernel(5, 1.0)
    >>> g.shape, round(float(g.sum()), 12), bool(g[2, 2] == g.max())
    ((5, 5), 1.0, True)
    """
    k, ndim = _kernel_shape("gaussian_kernel", k, ndim)
    sigma = _checks.real("gaussian_kernel", "sigma", _checks._unwrap0d(sigma), minimum=0, strict_min=True)
    dt = _kernel_dtype("gaussian_kernel", dtype)
    x = np.arange(k, dtype=np.float64) - (k - 1) / 2.0
    # exp(-(x^2 - x0^2) / 2 s^2), x0 the sample nearest the centre: the same kernel
    # after normalising, but the middle samples are exp(0) = 1 whatever sigma is.
    d = x * x - x[k // 2] ** 2
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        g1 = np.exp(np.where(d == 0, 0.0, -0.5 * (d / sigma) / sigma))
    g1 /= g1.sum()
    g = g1
    for _ in range(ndim - 1):
        g = np.multiply.outer(g, g1)
    return g.astype(dt)


def sobel_kernels(dtype=np.float64):
    """The 3x3 Sobel correlation kernels ``(kx, ky)``: ``kx`` differentiates along
    columns (axis 1, responds to vertical edges), ``ky = kx.T`` along rows (axis 0).

    ``correlate(image, kx)`` equals ``sobel(image, axis=1)``. ``dtype`` is a signed
    integer or float dtype.

    Examples
    --------
    >>> import convcore
    >>> kx, ky = convcore.ndimage.sobel_kernels()
    >>> kx
    array([[-1.,  0.,  1.],
           [-2.,  0.,  2.],
           [-1.,  0.,  1.]])
    """
    dtype = _kernel_dtype("sobel_kernels", dtype, kinds="if")
    kx = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=dtype)
    return kx, kx.T.copy()


@device_arg
def edge_filter(image, angle_degrees, mode="reflect", cval=0.0):
    """Sobel edge response in any direction.

    The directional derivative ``cos(a) * d/dx + sin(a) * d/dy`` with x along columns
    (left to right) and y pointing up the image (towards row 0): angle 0 responds to
    vertical edges that go dark to bright from left to right, 90 to horizontal edges
    that go dark to bright from bottom to top, 180 and 270 to the opposite contrasts.
    Computed as one correlation with ``cos(a) * kx - sin(a) * ky``.

    Parameters
    ----------
    image : array_like, 2-D
    angle_degrees : float
        A finite real number (bool and str are TypeError).

    Examples
    --------
    >>> import numpy as np, convcore
    >>> img = np.array([[0.0, 0, 1, 1]] * 3)
    >>> convcore.ndimage.edge_filter(img, 0)[1]
    array([0., 4., 4., 0.])
    """
    a = as_float_array("edge_filter", "image", image)
    if a.ndim != 2:
        raise ValueError(f"edge_filter: image must be 2-D, got shape {a.shape}")
    t = math.radians(_checks.real("edge_filter", "angle_degrees", _checks._unwrap0d(angle_degrees)))
    kx, ky = sobel_kernels(a.dtype)
    k = (math.cos(t) * kx - math.sin(t) * ky).astype(a.dtype)
    return correlate(a, k, mode=mode, cval=cval)


#: numpy.pad's modes, the ``mode`` of :func:`match_template`'s padding.
_PAD_MODES = ("constant", "edge", "linear_ramp", "maximum", "mean", "median", "minimum", "reflect", "symmetric",
              "wrap", "empty")


@device_arg
def match_template(image, template, pad_input=False, mode="constant", constant_values=0):
    """Normalized cross-correlation of ``template`` over every position of ``image``,
    as ``skimage.feature.match_template``.

    Scores lie in [-1, 1]; 1 where the window is an exact (affine-brightness) copy of the
    template. Works for any number of dimensions (2-D greyscale, 3-D colour or volume;
    scikit-image takes 2-D and 3-D). Windows of constant intensity score 0. Computed in
    float64; float32 images give a float32 result.

    ``pad_input=False``: one score per position where the template lies inside the
    image, output shape ``image.shape - template.shape + 1``, the score of the window
    whose first corner is there. ``pad_input=True``: the image is first padded by the
    template's size on each side with ``numpy.pad(mode=mode)`` (``constant_values``
    for 'constant'), and the output has the image's shape, each score that of the
    window centred on the pixel (for an even size, the centre is the cell after the
    middle, as scikit-image).

    Examples
    --------
    >>> import numpy as np, convcore
    >>> img = np.zeros((6, 6)); img[2:4, 3:5] = [[1, 2], [3, 4]]
    >>> r = convcore.ndimage.match_template(img, img[2:4, 3:5])
    >>> np.unravel_index(r.argmax(), r.shape), round(float(r.max()), 6)
    ((np.int64(2), np.int64(3)), 1.0)
    """
    f = "match_template"
    img = as_float_array(f, "image", image)
    tpl = as_float_array(f, "template", template)
    if not isinstance(pad_input, (bool, np.bool_)):
        raise TypeError(f"{f}: pad_input must be True or False, got {pad_input!r}")
    _checks.choice(f, "mode", mode, _PAD_MODES)
    if img.ndim != tpl.ndim:
        raise ValueError(
            f"match_template: dimensionality of template must match image, got template shape "
            f"{tpl.shape} and image shape {img.shape}"
        )
    if img.ndim == 0 or img.size == 0 or tpl.size == 0:
        raise ValueError(f"match_template: empty or 0-d input, got image {img.shape} and template {tpl.shape}")
    if any(t > i for t, i in zip(tpl.shape, img.shape)):
        raise ValueError(
            f"match_template: image must be at least as large as template on every axis (image must be larger "
            f"than template), got image shape {img.shape} and template shape {tpl.shape}"
        )
    if pad_input:
        # scikit-image pads by the template's size on each side, then keeps the windows
        # starting t // 2 before each pixel: the same padding is cut to what they reach.
        kw = {"constant_values": constant_values} if mode == "constant" else {}
        try:
            padded = np.pad(img, [(t, t) for t in tpl.shape], mode=mode, **kw)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{f}: cannot pad the image with mode={mode!r}: {e}") from None
        img = padded[tuple(slice(t - t // 2, t + n + t - 1 - t // 2) for t, n in zip(tpl.shape, img.shape))]
    return _ncc(img, tpl)


def _ncc(img, tpl):
    """The normalized cross-correlation of every valid window of ``img`` with ``tpl``."""
    out_dtype = img.dtype
    img64 = img.astype(np.float64)
    tpl64 = tpl.astype(np.float64)
    n = tpl64.size
    # Window sums of the image and its square, from cumulative sums (integral images).
    s1 = _window_sum(img64, tpl64.shape)
    s2 = _window_sum(img64 * img64, tpl64.shape)
    t_mean = tpl64.mean()
    t_centered = tpl64 - t_mean
    t_ssd = float((t_centered * t_centered).sum())
    # A constant template has no correlation to normalise: every score is 0. Its
    # centred values are not exactly 0 when the mean rounds (|t - mean| up to about
    # 2 eps max|t|), and dividing by that noise would give scores far outside [-1, 1].
    t_max = float(np.abs(tpl64).max())
    if t_ssd <= n * (8 * np.finfo(np.float64).eps * t_max) ** 2:
        return np.zeros(tuple(i - t + 1 for i, t in zip(img.shape, tpl.shape)), dtype=out_dtype)
    xcorr = _signal.correlate(img64, tpl64, mode="valid")
    numerator = xcorr - s1 * t_mean
    var = s2 - s1 * s1 / n
    np.maximum(var, 0, out=var)
    denom = np.sqrt(var * t_ssd)
    out = np.zeros_like(numerator)
    mask = denom > np.finfo(out_dtype).eps
    out[mask] = numerator[mask] / denom[mask]
    return out.astype(out_dtype)


def _window_sum(a, shape):
    """Sum of every window of ``shape`` fully inside ``a`` (valid positions)."""
    s = a
    for ax, w in enumerate(shape):
        c = np.cumsum(s, axis=ax)
        pad = [(0, 0)] * s.ndim
        pad[ax] = (1, 0)
        c = np.pad(c, pad)
        hi = [slice(None)] * s.ndim
        lo = [slice(None)] * s.ndim
        hi[ax] = slice(w, None)
        lo[ax] = slice(None, -w)
        s = c[tuple(hi)] - c[tuple(lo)]
    return s
