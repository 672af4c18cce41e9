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

import numpy as np

from .. import device as _device
from .. import tape as _tape
from ..tensor import Tensor, Variable, convert_to_tensor

__all__ = ["convert_to_tensor", "convert_to_numpy", "cast", "stop_gradient", "shape", "dtype", "is_tensor"]

recording = _tape.active
record = _tape.record
needs_grad = _tape.needs_grad

_SCALARS = (int, float, bool, np.integer, np.floating, np.bool_)


def tensor(x, like=None):
    """``x`` as a Tensor: Tensors as they are; anything else on ``like``'s device (or the
    CPU), Python scalars in ``like``'s float dtype."""
    if isinstance(x, Tensor):
        return x
    dev = like._device if like is not None else "cpu"
    if like is not None and isinstance(x, _SCALARS) and not isinstance(x, (bool, np.bool_)):
        kind = np.dtype(like.dtype).kind
        dt = like.dtype if kind == "f" or (kind in "iu" and isinstance(x, (int, np.integer))) else None
        a = np.asarray(x, dtype=dt)
    else:
        a = np.asarray(x)
        if a.dtype == object:
            raise TypeError(f"expected a tensor, array or number, got {type(x).__name__}")
        if like is not None and a.dtype.kind == "f" and like.dtype.kind == "f" and a.dtype != like.dtype:
            a = a.astype(like.dtype)  # a float constant takes the tensor's float type (Keras's floatx rule)
        elif a.dtype == np.float64 and dev == "gpu":
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
    """Every argument as a Tensor on one device."""
    dev = same_device(*xs)
    like = next((x for x in xs if isinstance(x, Tensor)), None)
    return [x if isinstance(x, Tensor) else (tensor(x, like) if like is not None else
                                             Tensor(_device.backend(dev).put(np.asarray(x)), dev)) for x in xs]


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
    """The values of ``x`` as a numpy array."""
    return x.numpy() if isinstance(x, Tensor) else np.asarray(x)


def shape(x):
    return tuple(x.shape)


def dtype(x):
    return str(x.dtype)


def cast(x, dtype):
    """``x`` converted to ``dtype``; the gradient is cast back (float to float)."""
    x = tensor(x)
    dt = np.dtype(dtype)
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
