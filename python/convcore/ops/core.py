"""What every op is made of: converting arguments to tensors on one device, calling the
device's backend, and recording the op with its gradient on the active tapes.

An op is written once, for every device:

    def exp(x):
        x = tensor(x)
        y = out(backend(x).unary("exp", x._data), x)
        if recording():
            record("exp", (x,), (y,), lambda g: (multiply(g, y),))
        return y

``record`` is given the op's vector-Jacobian product: from the gradient of each output,
the gradient of each input (or None).
"""
from __future__ import annotations

import math
import operator
import os
import sys

import numpy as np

from .. import device as _device
from .. import tape as _tape
from ..tensor import Tensor, Variable, convert_to_tensor

__all__ = ["convert_to_tensor", "convert_to_numpy", "cast", "stop_gradient", "shape", "dtype", "is_tensor"]

recording = _tape.active
record = _tape.record
needs_grad = _tape.needs_grad


# ------------------------------------------------------------------ converting arguments
def is_weak_scalar(x):
    """A Python number (int, float or complex, not bool): NEP 50's *weak* scalar, which
    takes the dtype of the array it meets when its kind allows (numpy 2's rule). numpy
    scalars (np.float32(1), np.int8(3)) are not weak."""
    return isinstance(x, (int, float, complex)) and not isinstance(x, (bool, np.generic))


def _weak_array(x, dt):
    """The Python number ``x`` as a 0-d array of the dtype numpy 2 gives it next to an
    array of dtype ``dt``; an int that dtype cannot hold is numpy's OverflowError."""
    try:
        if np.dtype(dt).kind in "mM":  # numpy's loops take no Python number with most of them
            raise TypeError
        rdt = np.result_type(dt, x)
    except TypeError:  # numpy 2 has no common dtype for them (str, bytes, datetime)
        raise TypeError(f"a Python {type(x).__name__} cannot be combined with a tensor of dtype {dt}") from None
    return np.asarray(x, dtype=rdt)


def as_array(x, what="an op's input"):
    """``x`` (not a Tensor) as an ndarray that a Tensor can hold: object arrays (and
    what numpy can only store as objects: None, ragged lists, arbitrary objects) are a
    TypeError, arrays numpy cannot build a ValueError."""
    try:
        a = np.asarray(x)
    except (ValueError, TypeError) as e:  # ragged lists, failing __array__
        raise ValueError(f"{what} could not be converted to an array: {e}") from None
    if a.dtype.kind in "OV":
        raise TypeError(f"expected a tensor, array or number, got {type(x).__name__}"
                        + (f" of dtype {a.dtype}" if isinstance(x, np.ndarray) else ""))
    return native(a)


def native(a):
    """``a`` in the machine's byte order (a copy only when it is byte-swapped): a
    tensor's dtype is then the one name ('float32') on every device, and equal to
    np.float32 as documented."""
    return a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))


def tensor(x, like=None):
    """``x`` as a Tensor: Tensors as they are; anything else on ``like``'s device (or the
    CPU). Next to a Tensor ``like``: a Python number is weak (numpy 2: it takes
    ``like``'s dtype where its kind allows, an int out of that dtype's range is an
    OverflowError); a float array, list or numpy float scalar takes ``like``'s float
    type (Keras's floatx rule), a numpy integer scalar ``like``'s float type too."""
    if isinstance(x, Tensor):
        return x
    dev = like._device if like is not None else "cpu"
    if like is not None and is_weak_scalar(x):
        a = _weak_array(x, like.dtype)
    else:
        a = as_array(x)
        if like is not None:
            kind = np.dtype(like.dtype).kind
            if a.dtype.kind == "f" and kind == "f" and a.dtype != like.dtype:
                a = a.astype(like.dtype)  # a float constant takes the tensor's float type (Keras's floatx rule)
            elif isinstance(x, np.integer) and kind == "f":
                a = a.astype(like.dtype)
    if a.dtype == np.float64 and dev == "gpu":
        a = a.astype(np.float32)  # the GPU has no float64
    return Tensor(_device.backend(dev).put(a, "an op's input"), dev)


def same_device(*xs):
    """The one device of the tensors among ``xs`` (non-tensors follow it); mixing CPU and
    GPU tensors in one op is a ValueError."""
    dev = None
    for x in xs:
        if isinstance(x, Tensor):
            if dev is None:
                dev = x._device
            elif x._device != dev:
                raise ValueError(f"an op got tensors on two devices ({dev} and {x._device}); move one with "
                                 "convcore.ops.convert_to_tensor(x, device=...) first")
    return dev or "cpu"


def tensors(*xs):
    """Every argument as a Tensor on one device (the first Tensor's; see :func:`tensor`
    for how the others are converted)."""
    same_device(*xs)
    like = next((x for x in xs if isinstance(x, Tensor)), None)
    return [tensor(x, like) for x in xs]


# ------------------------------------------------------------------ axes and sizes
def axis_index(func, axis, ndim, name="axis"):
    """One axis of a tensor of rank ``ndim`` as 0..ndim-1 (negative counts from the
    end): an integer (bool, float, str, None are a TypeError) in ``[-ndim, ndim)``
    (else a ValueError, numpy's AxisError message)."""
    if isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"{func}: {name} must be an integer, got {axis!r}")
    try:
        a = operator.index(axis)
    except TypeError:
        raise TypeError(f"{func}: {name} must be an integer, got {axis!r} ({type(axis).__name__})") from None
    if not -ndim <= a < ndim:
        raise ValueError(f"{func}: {name} {a} is out of range for a tensor of rank {ndim}")
    return a % ndim


def axes_tuple(func, axis, ndim, name="axis", scalar_ok=False):
    """The axes ``axis`` names (None: all of them; an int; a tuple or list of ints), each
    checked by :func:`axis_index`, in the order given; an axis named twice is a
    ValueError. ``scalar_ok``: numpy's rule for most reductions, ``squeeze``, ``take``
    and ``repeat``: a 0-d tensor accepts a single int axis 0 or -1 (it means the whole
    tensor; the result is ())."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        out_ = tuple(axis_index(func, a, ndim, name) for a in axis)
        if len(set(out_)) != len(out_):
            raise ValueError(f"{func}: {name} {tuple(axis)!r} names an axis twice")
        return out_
    if scalar_ok and ndim == 0:
        axis_index(func, axis, 1, name)
        return ()
    return (axis_index(func, axis, ndim, name),)


def size_of(func, shape, what="the result"):
    """The element count of ``shape`` (exact, Python ints); a shape no array can hold
    (more elements than numpy's limit) is a MemoryError before anything is allocated."""
    n = math.prod(int(s) for s in shape)
    if n > sys.maxsize:
        raise MemoryError(f"{func}: {what} would have shape {tuple(int(s) for s in shape)} ({n} elements), more "
                          "than any array can hold")
    return n


def _memory_ceiling():
    try:
        phys = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        phys = sys.maxsize
    return phys


def reserve(func, nbytes, what="a temporary"):
    """Fail fast when an op will need ``nbytes`` it cannot get: a MemoryError now,
    instead of minutes of scanning (logsumexp and var read their input before they
    allocate a temporary as large as it) or of writing into memory the system
    overcommitted (eye's diagonal). More than the machine's physical memory is refused
    outright; above 1 GiB the memory is asked for (and given back at once, never
    touched), so the process's own limits decide, as the allocation itself would."""
    nbytes = int(nbytes)
    if nbytes > _memory_ceiling():
        raise MemoryError(f"{func}: needs {what} of {nbytes / 2 ** 30:.1f} GiB, more than this machine's memory")
    if nbytes > (1 << 30):
        try:
            probe = np.empty(nbytes, dtype=np.uint8)
        except MemoryError:
            raise MemoryError(f"{func}: cannot allocate {what} of {nbytes / 2 ** 30:.1f} GiB") from None
        del probe


def float_tensor(x):
    """``x`` in a float dtype, for ops whose result is a real function: float tensors as
    they are, bool and integer ones in float64 (float32 on the GPU), anything else
    (complex, str, datetime) a TypeError."""
    kind = np.dtype(x.dtype).kind
    if kind == "f":
        return x
    if kind in "biu":
        return cast(x, np.float32 if x._device == "gpu" else np.float64)
    raise TypeError(f"expected a real (bool, integer or float) tensor, got dtype {x.dtype}")


def backend(x):
    return _device.backend(x._device)


def out(data, like):
    """A result stored on ``like``'s device."""
    return Tensor(data, like._device)


def is_float(x):
    return x.dtype.kind == "f"


def is_tensor(x):
    return isinstance(x, Tensor)


def convert_to_numpy(x):
    """The values of ``x`` as a numpy array (object arrays are refused, as by
    :func:`convert_to_tensor`)."""
    return x.numpy() if isinstance(x, Tensor) else as_array(x, "convert_to_numpy")


def shape(x):
    """The shape of ``x`` (a tensor or anything convertible to one) as a tuple of ints."""
    return tuple(x.shape) if isinstance(x, Tensor) else tuple(as_array(x, "shape").shape)


def dtype(x):
    """The dtype name of ``x`` (a tensor or anything convertible to one), without a
    byte order ('float32' also for a big-endian array), as ``keras.ops.dtype``."""
    return str(x.dtype) if isinstance(x, Tensor) else str(as_array(x, "dtype").dtype)


def dtype_arg(func, dtype, name="dtype"):
    """A ``dtype=`` argument as a numpy dtype a tensor can hold: unknown names are a
    TypeError (numpy's), object and void dtypes too."""
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"{func}: {name} {dtype!r} is not a data type: {e}") from None
    if dt.kind in "OV":
        raise TypeError(f"{func}: {name} must be a numeric (or str / datetime) dtype, got {dt}")
    return dt


def cast(x, dtype):
    """``x`` converted to ``dtype``; the gradient is cast back (float to float)."""
    x = tensor(x)
    dt = dtype_arg("cast", dtype)
    if dt == np.dtype(x.dtype):
        return x
    y = out(backend(x).array_op("cast", x._data, dt), x)
    if recording():
        src = x.dtype
        record("cast", (x,), (y,), lambda g: (cast(g, src) if np.dtype(src).kind == "f" else g,))
    return y


def stop_gradient(x):
    """The values of ``x``, with no gradient flowing back through them."""
    x = tensor(x)
    return Tensor(x._data, x._device)


def unbroadcast(g, shape):
    """``g`` summed down to ``shape`` (the gradient of a broadcast)."""
    from .numpy import reshape, sum as _sum
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = len(g.shape) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and g.shape[lead + i] != 1)
    r = _sum(g, axis=axes) if axes else g
    return reshape(r, shape)


def host_function(name, forward, backward, x):
    """An op computed by host code: ``forward(array) -> (array, cache)`` and its gradient
    ``backward(cache, output_grad_array) -> input_grad_array``, numpy arrays in and out
    (augmentation kernels). On the GPU the values make one round trip through the host."""
    x = tensor(x)
    y_d, cache = backend(x).host_call(forward, x._data)
    y = out(y_d, x)
    if recording() and is_float(x):
        record(name, (x,), (y,), lambda g: (out(backend(g).host_call(lambda a: (backward(cache, a), None),
                                                                       g._data)[0], g),))
    return y
