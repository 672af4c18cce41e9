"""Where work runs: the CPU (rayon) or a GPU (wgpu: Vulkan, Metal, DX12).

``set_device('cpu' | 'gpu' | 'auto')`` sets the default for models compiled afterwards
and for the functional API; the ``CONVCORE_DEVICE`` environment variable gives the
initial default (otherwise 'cpu'). ``'auto'`` prefers a discrete GPU, then any hardware
GPU, then the CPU (a software Vulkan device such as lavapipe is used only when 'gpu' is
asked for explicitly). The GPU computes in float32.
"""
from __future__ import annotations

import os

import numpy as np

from . import _core

_DEVICES = ("cpu", "gpu", "auto")
_current = None


def devices():
    """Every place work can run: the CPU first, then each GPU adapter wgpu finds (name,
    backend, type), best first."""
    out = [{"name": "cpu", "backend": "rayon", "type": "cpu", "hardware": True, "device": "cpu"}]
    for a in _core.gpu_adapters():
        out.append({**a, "device": "gpu"})
    return out


def _check_name(device, where):
    if not isinstance(device, str) or device.lower() not in _DEVICES:
        raise ValueError(f"{where}: device must be 'cpu', 'gpu' or 'auto', got {device!r}")
    return device.lower()


def _resolve(name, where):
    if name == "cpu":
        return "cpu"
    if name == "gpu":
        if not _core.gpu_available():
            found = ", ".join(f"{a['name']} ({a['backend']}, {a['type']})" for a in _core.gpu_adapters()) or "none"
            try:
                _core.gpu_info()
            except RuntimeError as e:
                raise RuntimeError(f"{where}: device='gpu' was asked for but no GPU device could be created "
                                   f"(adapters found: {found}). {e}") from None
        return "gpu"
    # auto: a hardware GPU if one works, else the CPU
    if any(a.get("hardware") for a in _core.gpu_adapters()) and _core.gpu_available():
        info = _core.gpu_info()
        if info.get("hardware"):
            return "gpu"
    return "cpu"


def set_device(device):
    """Set the default device ('cpu', 'gpu' or 'auto') and return what it resolved to."""
    global _current
    name = _check_name(device, "set_device")
    _current = _resolve(name, "set_device")
    return _current


def get_device():
    """The default device ('cpu' or 'gpu')."""
    global _current
    if _current is None:
        env = os.environ.get("CONVCORE_DEVICE")
        _current = _resolve(_check_name(env, "CONVCORE_DEVICE"), "CONVCORE_DEVICE") if env else "cpu"
    return _current


def resolve(device, where="device"):
    """'cpu' or 'gpu' for a ``device=`` argument (None: the default)."""
    if device is None:
        return get_device()
    return _resolve(_check_name(device, where), where)


def is_gpu(x):
    return isinstance(x, _core.GpuArray)


def _float64_error(where):
    return TypeError(f"{where}: the GPU computes in float32 but got a float64 array; convert it with "
                     "x.astype(np.float32), or use device='cpu' for float64")


def to_gpu(x, where="GPU"):
    """Upload a numpy array (float32; integers become uint32 indices). float64 raises a
    TypeError suggesting ``astype(np.float32)`` or ``device='cpu'``."""
    if is_gpu(x):
        return x
    a = np.asarray(x)
    if a.dtype == np.float64:
        raise _float64_error(where)
    if a.dtype.kind == "f" and a.dtype != np.float32:
        a = a.astype(np.float32)
    return _core.gpu_upload(np.ascontiguousarray(a))


def to_host(x):
    return x.numpy() if is_gpu(x) else x


# ------------------------------------------------------------------ functional API
import contextvars as _cv
import functools as _ft

_CALL_DEVICE = _cv.ContextVar("convcore_call_device", default=None)


def call_device():
    """The device of the functional-API call in progress ('cpu' or 'gpu')."""
    d = _CALL_DEVICE.get()
    return d if d is not None else get_device()


def device_arg(func):
    """Give a functional-API function a ``device=None`` keyword ('cpu', 'gpu', 'auto';
    None: the default device). On the GPU a float64 array argument is a TypeError."""

    @_ft.wraps(func)
    def wrapper(*args, device=None, **kw):
        outer = _CALL_DEVICE.get()
        if device is None and outer is not None:  # a call from inside the library
            return func(*args, **kw)
        dev = resolve(device, func.__name__)
        if dev == "gpu":
            for a in list(args) + list(kw.values()):
                if isinstance(a, np.ndarray) and a.dtype == np.float64:
                    raise _float64_error(func.__name__)
        token = _CALL_DEVICE.set(dev)
        try:
            return func(*args, **kw)
        finally:
            _CALL_DEVICE.reset(token)

    if wrapper.__doc__:
        wrapper.__doc__ += ("\n\n    ``device='cpu' | 'gpu' | 'auto'`` (keyword) chooses where it runs; the GPU "
                            "computes in float32.\n")
    return wrapper


def gpu_f32(a):
    """float32 copy of an array computed internally (kernels, integer inputs)."""
    return np.ascontiguousarray(a, dtype=np.float32)
