"""Argument checking that needs Python: dtype rules, array coercion and scalar arguments.

Shape and mode rules live in the Rust specs (``convcore._core``); this module decides
which float type a call computes in, rejects types that cannot be computed, and checks
scalar arguments strictly: a count or an axis is an integer (bool, 1.5 and '1' are
TypeError, see :func:`integer`), a real number is finite unless said otherwise
(:func:`real`), a mode is one of its strings (:func:`choice`, for the arguments a call
would otherwise never hand to Rust: an axis a filter skips, a 0-d shortcut).
"""
from __future__ import annotations

import numpy as np


def as_float_arrays(func: str, names, arrays):
    """Coerce ``arrays`` to one float dtype, following the package's dtype rule.

    float32 stays float32 (float16 is computed in float32), float64 stays float64, and
    integer and bool inputs are computed in float64. Complex, object and other dtypes
    raise TypeError. Arrays already of the chosen dtype are passed through without a
    copy, whatever their strides.
    """
    out = [_numeric_array(func, name, a) for name, a in zip(names, arrays)]
    if all(a.dtype.kind == "f" and a.dtype.itemsize <= 4 for a in out):
        dtype = np.dtype(np.float32)
    else:
        dtype = np.dtype(np.float64)
    return [np.asarray(a, dtype=dtype) for a in out], dtype


def _numeric_array(func: str, name: str, a, complex_ok=False) -> np.ndarray:
    """``a`` as an ndarray of a bool, integer or real float dtype (or complex, with
    ``complex_ok``), or a clear error."""
    if isinstance(a, np.ndarray):
        arr = a
    else:
        try:
            arr = np.asarray(a)
        except Exception as e:  # ragged lists and the like
            raise ValueError(f"{func}: {name} could not be converted to an array: {e}") from None
    kind = arr.dtype.kind
    if kind == "c" and complex_ok:
        return arr
    if kind == "c":
        raise TypeError(
            f"{func}: complex input is not supported ({name} has dtype {arr.dtype}); "
            "pass the real and imaginary parts separately"
        )
    if kind not in "biuf":
        raise TypeError(f"{func}: {name} must be a numeric array (bool, int or float), got dtype {arr.dtype}")
    return arr


def as_float_array(func: str, name: str, a):
    (arr,), dtype = as_float_arrays(func, [name], [a])
    return arr


def _unwrap0d(value):
    """A 0-d ndarray as its numpy scalar (``np.array(2)`` is the integer 2, as scipy's
    ``operator.index`` has it); anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def normalize_axis(func: str, axis, ndim: int) -> int:
    """``axis`` as an index in ``[0, ndim)``: an integer (bool, float and str are not:
    TypeError), within ``[-ndim, ndim)`` (else ValueError)."""
    axis = integer(func, "axis", _unwrap0d(axis))
    if not -ndim <= axis < ndim:
        raise ValueError(f"{func}: axis {axis} is out of bounds for an array of dimension {ndim}")
    return axis % ndim


class UnsupportedDtypeError(TypeError, RuntimeError):
    """A dtype a filter cannot compute in or store (float16, long double, object...): a
    TypeError, and the RuntimeError scipy.ndimage raises for the same arrays."""


class ArgumentTypeError(TypeError, RuntimeError):
    """An argument of the wrong type where scipy raises RuntimeError (a sequence of
    modes for a filter that takes one mode): a TypeError and a RuntimeError."""


def c_cast(x: np.ndarray, dtype) -> np.ndarray:
    """A float result stored in ``dtype`` as scipy.ndimage's C code stores it: a float
    dtype rounds, an integer dtype truncates toward zero with C's (this machine's)
    wrap-around (numpy's cast is that same C cast), and bool is the uint8 cast tested for
    non-zero (so 0.5 and 256.0 are False, as in scipy)."""
    dt = np.dtype(dtype)
    if x.dtype == dt:
        return x
    with np.errstate(invalid="ignore", over="ignore"):
        if dt.kind == "b":
            return x.astype(np.uint8) != 0
        return x.astype(dt)


def exact_integer_cast(x: np.ndarray, dtype) -> np.ndarray:
    """A float array holding exact integer sums (or FFT results near them) stored in the
    integer or bool ``dtype`` as integer arithmetic in ``dtype`` would have produced them
    (scipy.signal's rule): rounded, then reduced modulo 2**bits (through int64); bool is
    'not zero'."""
    dt = np.dtype(dtype)
    r = np.rint(x)
    if dt.kind == "b":
        return r != 0
    with np.errstate(invalid="ignore", over="ignore"):
        return r.astype(np.int64).astype(dt)


def real_dtype_of(dtype) -> np.dtype:
    """The real dtype of a complex dtype's components (complex64 -> float32)."""
    dt = np.dtype(dtype)
    return np.dtype(f"f{dt.itemsize // 2}") if dt.kind == "c" else dt


class IntegerValueError(ValueError, TypeError):
    """A float where an integer is wanted and scipy raises ValueError (a Gaussian's
    ``radius=1.5``): a ValueError, and the TypeError this package raises for a float
    count elsewhere."""


class ArgumentShapeError(ValueError, RuntimeError):
    """An argument whose length or number of dimensions does not fit the axes (a per-axis
    sequence of the wrong length, weights that do not match ``axes``): a ValueError, and
    the RuntimeError scipy.ndimage raises for the same mistakes."""


class ArgumentValueError(ValueError, RuntimeError):
    """An argument out of its range where scipy raises RuntimeError (a filter size below
    1, a rank outside the footprint, a percentile outside [-100, 100], no size nor
    footprint): a ValueError, and scipy's RuntimeError."""


def per_axis(func: str, name: str, value, ndim: int, cast=int):
    """Expand a scalar or a sequence (one entry per axis) to a list of ``ndim`` values.

    Each value is checked by ``cast``: ``int`` means :func:`integer` (bool, float and
    str are TypeError), ``float`` means :func:`real` (finite; bool and str are
    TypeError); any other callable is applied as it is and does its own checking. A
    sequence of the wrong length is a ValueError."""
    value = _unwrap0d(value)
    if value is None or np.isscalar(value):
        vals = [value] * ndim
    else:
        try:
            vals = list(value)
        except TypeError:
            raise TypeError(f"{func}: {name} must be a scalar or a sequence with one entry per axis, "
                            f"got {value!r}") from None
        if len(vals) != ndim:
            raise ArgumentShapeError(
                f"{func}: {name} must be a scalar or have one entry per axis ({ndim}), got {value!r} "
                f"(scipy: sequence argument must have length equal to input rank)")
    if cast is int:
        return [integer(func, name, _unwrap0d(v)) for v in vals]
    if cast is float:
        return [real(func, name, _unwrap0d(v)) for v in vals]
    return [cast(v) for v in vals]


# --------------------------------------------------------------------- scalar arguments
import math as _math
import numbers as _numbers
import sys as _sys

#: The most elements one array may have: numpy's own limit (a byte count that fits an
#: ssize_t for the smallest item).
MAX_ELEMENTS = _sys.maxsize


def integer(func: str, name: str, value, minimum=None, maximum=None) -> int:
    """``value`` as a Python int: an integer (bool is not one), within the bounds, else a
    TypeError / ValueError naming ``func`` and ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _numbers.Integral):
        raise TypeError(f"{func}: {name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{func}: {name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{func}: {name} must be <= {maximum}, got {value}")
    return value


def real(func: str, name: str, value, minimum=None, maximum=None, finite=True, strict_min=False) -> float:
    """``value`` as a float: a real number (bool is not one), finite unless ``finite``
    is False, within the bounds (``strict_min``: > minimum), else TypeError/ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _numbers.Real):
        raise TypeError(f"{func}: {name} must be a real number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if value != value or (finite and not _math.isfinite(value)):
        raise ValueError(f"{func}: {name} must be a finite number, got {value}")
    if minimum is not None and (value <= minimum if strict_min else value < minimum):
        raise ValueError(f"{func}: {name} must be {'>' if strict_min else '>='} {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{func}: {name} must be <= {maximum}, got {value}")
    return value


def choice(func: str, name: str, value, options) -> str:
    """``value`` if it is one of the strings ``options`` (exactly: no case folding); a
    non-string is a TypeError, any other string a ValueError."""
    if not isinstance(value, str):
        raise TypeError(f"{func}: {name} must be a string, one of {', '.join(map(repr, options))}; got {value!r}")
    if value not in options:
        raise ValueError(f'{func}: {name} must be one of {", ".join(map(repr, options))}, got "{value}"')
    return value


def element_count(func: str, shape, what="a tensor") -> int:
    """The number of elements of ``shape`` (entries ``None`` are skipped: the batch
    axis of a symbolic shape), computed exactly; a count no array can hold is a
    ValueError instead of a product that wraps around. The one place shape products are
    taken for symbolic shapes."""
    n = _math.prod(int(s) for s in shape if s is not None)
    if n > MAX_ELEMENTS:
        raise ValueError(f"{func}: {what} of shape {tuple(shape)} would have {n} elements, more than any array "
                         f"can hold ({MAX_ELEMENTS})")
    return n
