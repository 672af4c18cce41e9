"""Argument checking that needs Python: dtype rules and array coercion.

Shape and mode rules live in the Rust specs (``convcore._core``); this module only
decides which float type a call computes in and rejects types that cannot be computed.
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


def _numeric_array(func: str, name: str, a) -> np.ndarray:
    """``a`` as an ndarray of a bool, integer or real float dtype, or a clear error."""
    if isinstance(a, np.ndarray):
        arr = a
    else:
        try:
            arr = np.asarray(a)
        except Exception as e:  # ragged lists and the like
            raise ValueError(f"{func}: {name} could not be converted to an array: {e}") from None
    kind = arr.dtype.kind
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


def normalize_axis(func: str, axis, ndim: int) -> int:
    try:
        axis = int(axis)
    except (TypeError, ValueError):
        raise TypeError(f"{func}: axis must be an integer, got {axis!r}") from None
    if not -ndim <= axis < ndim:
        raise ValueError(f"{func}: axis {axis} is out of bounds for an array of dimension {ndim}")
    return axis % ndim


def per_axis(func: str, name: str, value, ndim: int, cast=int):
    """Expand a scalar or sequence argument to one value per axis."""
    if np.isscalar(value):
        return [cast(value)] * ndim
    vals = list(value)
    if len(vals) != ndim:
        raise ValueError(f"{func}: {name} must be a scalar or have one entry per axis ({ndim}), got {value!r}")
    return [cast(v) for v in vals]


def finish_output(func: str, result: np.ndarray, output):
    """Apply scipy.ndimage's ``output`` argument: None, a dtype, or an array to fill."""
    if output is None:
        return result
    if isinstance(output, np.ndarray):
        if output.shape != result.shape:
            raise ValueError(f"{func}: output array has shape {output.shape}, expected {result.shape}")
        output[...] = result
        return output
    try:
        dt = np.dtype(output)
    except TypeError:
        raise TypeError(f"{func}: output must be None, a dtype or an ndarray, got {output!r}") from None
    if dt.kind == "c":
        raise TypeError(f"{func}: complex output is not supported")
    return result.astype(dt)


def as_input_and_weights(func: str, input, weights):
    """scipy.ndimage's dtype rule: the result has the input's float type (float32 for
    float16/float32 input, float64 for everything else numeric); the weights are cast to
    it."""
    a = as_float_array(func, "input", input)
    w = _numeric_array(func, "weights", weights)
    return a, np.asarray(w, dtype=a.dtype)


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
