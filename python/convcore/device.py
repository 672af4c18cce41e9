"""Where work runs, and the one place that decides it.

User side: ``set_device('cpu' | 'gpu' | 'auto')`` sets the default device for models
compiled afterwards, for new tensors and for the scipy-style functions; the
``CONVCORE_DEVICE`` environment variable gives the initial default (otherwise 'cpu').
``'auto'`` prefers a discrete GPU, then any hardware GPU, then the CPU (a software
Vulkan device such as lavapipe is used only when 'gpu' is asked for explicitly). The
GPU computes in float32.

Library side: this module is the only one that knows how data is stored on each device
and which native function computes an operation there. :class:`CpuBackend` and
:class:`GpuBackend` implement one interface (the same method names, checked by the
tests); :func:`backend` gives the one for a device, and every op in
:mod:`convcore.ops` calls through it. An operation the GPU has no shader for runs
through one documented fallback, :meth:`GpuBackend._host`: the operands are read back,
the CPU computes, the result is uploaded (counted by :func:`host_fallbacks`).
"""
from __future__ import annotations

import contextvars as _cv
import functools as _ft
import os

import numpy as np

from . import _core

_DEVICES = ("cpu", "gpu", "auto")
_current = None


# ------------------------------------------------------------------ choosing a device
def devices():
    """Every place work can run: the CPU first, then each GPU adapter wgpu finds (name,
    backend, type), best first."""
    out = [{"name": "cpu", "backend": "rayon", "type": "cpu", "hardware": True, "device": "cpu"}]
    for a in _core.gpu_adapters():
        out.append({**a, "device": "gpu"})
    return out


def device_info():
    """The GPU adapter work runs on (name, backend, type, limits); RuntimeError when none."""
    return _core.gpu_info()


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


# ------------------------------------------------------------------ storage
def _float64_error(where):
    return TypeError(f"{where}: the GPU computes in float32 but got a float64 array; convert it with "
                     "x.astype(np.float32), or use device='cpu' for float64")


def device_of(data):
    """'gpu' for device storage, 'cpu' for anything else."""
    return "gpu" if isinstance(data, _core.GpuArray) else "cpu"


def to_host(data):
    """A numpy array of ``data`` (read back from the GPU when it lives there)."""
    return data.numpy() if isinstance(data, _core.GpuArray) else data


def to_device(data, device, where="GPU"):
    """``data`` stored on ``device``: on the GPU float32 (or uint32 for integers; float64
    raises a TypeError suggesting ``astype(np.float32)`` or ``device='cpu'``); on the CPU
    a numpy array."""
    if device == "cpu":
        return data.numpy() if isinstance(data, _core.GpuArray) else data
    if isinstance(data, _core.GpuArray):
        return data
    a = np.asarray(data)
    if a.dtype == np.float64:
        raise _float64_error(where)
    if a.dtype.kind == "f" and a.dtype != np.float32:
        a = a.astype(np.float32)
    elif a.dtype.kind == "b":
        a = a.astype(np.uint32)
    return _core.gpu_upload(np.require(a, requirements="C"))


def host_fallbacks():
    """How many operations ran through the GPU's host fallback (read back, computed on
    the CPU, uploaded) since the process started."""
    return GpuBackend.fallbacks


# ------------------------------------------------------------------ backends
class CpuBackend:
    """The CPU: numpy arrays; network kernels in Rust (rayon, GIL released), the generic
    array algebra in numpy."""

    name = "cpu"

    # --- storage
    def put(self, a, where="CPU"):
        return a.numpy() if isinstance(a, _core.GpuArray) else a

    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype=dtype)

    def write(self, dst, a):
        dst[...] = a

    # --- generic array algebra (numpy semantics)
    def unary(self, name, x):
        return _UNARY[name](x)

    def binary(self, name, a, b):
        return _BINARY[name](a, b)

    def reduce(self, name, x, axis, keepdims):
        return _REDUCE[name](x, axis=axis, keepdims=keepdims)

    def array_op(self, name, *args, **kw):
        """Shape and indexing operations (reshape, transpose, pad, ...)."""
        return _ARRAY_OPS[name](*args, **kw)

    def axpby(self, a, b, alpha, beta):
        return alpha * a + beta * b

    def axpby_inplace(self, p, v, alpha, beta):
        p *= alpha
        p += beta * v

    # --- the guard of a training step (see convcore.trainers.step_guard)
    def new_guard(self):
        """A fresh step guard: on the CPU the check happens on the host (None)."""
        return None

    def flag_nonfinite(self, xs, guard):
        """Whether the arrays ``xs`` hold no inf or NaN (the CPU answers now; a device
        records it in ``guard`` and answers True)."""
        return all(bool(np.isfinite(x).all()) for x in xs if x.size)

    def guard_tripped(self, guard):
        return False

    # --- network kernels: one binding for every device (it dispatches on the storage)
    def activation(self, name, x):
        return _core.activation_forward(name, x)

    def activation_backward(self, name, x, y, dy):
        return _core.activation_backward(name, x, y, dy)

    def dense(self, x, w, b):
        return _core.dense_forward(x, w, b)

    def dense_backward(self, x, w, dz, need_dx):
        return _core.dense_backward(x, w, dz, need_dx)

    def conv(self, x, w, b, strides, dilation, padding):
        return _core.conv_forward(x, w, b, strides, dilation, padding)

    def conv_backward(self, x, w, dz, strides, dilation, padding, need_dx):
        return _core.conv_backward(x, w, dz, strides, dilation, padding, need_dx)

    def pool(self, x, kind, pool, strides, padding):
        return _core.pool_train_forward(x, kind, pool, strides, padding)

    def pool_backward(self, dy, kind, argmax, x_shape, pool, strides, padding):
        return _core.pool_backward(dy, kind, argmax, list(x_shape), pool, strides, padding)

    def global_pool(self, kind, x):
        return _core.global_pool_forward(kind, x), x

    def global_pool_backward(self, kind, cache, x_shape, dy):
        return _core.global_pool_backward(kind, cache, np.ascontiguousarray(dy))

    def batchnorm(self, x, gamma, beta, eps, training, mm, mv):
        return _core.batchnorm_forward(x, gamma, beta, eps, bool(training), mm, mv)

    def batchnorm_backward(self, x, gamma, mean, var, eps, dy, training):
        if training:
            return _core.batchnorm_backward(x, gamma, mean, var, eps, np.ascontiguousarray(dy))
        # Inference: an affine map per channel.
        inv = 1.0 / np.sqrt(var + eps)
        axes = tuple(range(x.ndim - 1))
        dgamma = (dy * ((x - mean) * inv)).sum(axis=axes).astype(x.dtype)
        dbeta = dy.sum(axis=axes).astype(x.dtype)
        scale = inv if gamma is None else gamma * inv
        return (dy * scale).astype(x.dtype), dgamma, dbeta

    def dropout(self, x, rate, seed):
        return _core.dropout_forward(x, rate, seed)

    def loss(self, name, y, pred, from_logits):
        """(mean loss as a 0-d array, dLoss/dpred, None)."""
        loss, grad = _core.loss(name, y, np.ascontiguousarray(pred), bool(from_logits))
        return np.asarray(loss, dtype=pred.dtype), grad, None

    def accuracy(self, kind, y, pred):
        return float(_core.accuracy(kind, y, pred))

    def sgd_update(self, p, g, v, lr, momentum, nesterov):
        _core.sgd_update(p, _like(g, p), v, lr, momentum, nesterov)

    def adam_update(self, p, g, m, v, lr, b1, b2, eps, t):
        _core.adam_update(p, _like(g, p), m, v, lr, b1, b2, eps, t)

    # --- one binding for every device (the binding dispatches on the storage)
    def upsample2d(self, x, size, interpolation):
        return _core.upsample2d(x, list(size), interpolation)

    def upsample2d_backward(self, dy, x_shape, size, interpolation):
        return _core.upsample2d_backward(dy, list(x_shape), list(size), interpolation)

    # --- host code (augmentation: Rust kernels on numpy arrays)
    def host_call(self, f, x):
        """``f(x) -> (array, cache)`` on a numpy array."""
        return f(x)

    # --- scipy-style filtering
    def correlate_signal(self, a, b, mode, method):
        return _core.correlate(a, b, mode, method)

    def correlate_signal2d(self, a, b, mode, boundary, fill, flipped):
        return _core.correlate2d(a, b, mode, boundary, fill, flipped)

    def correlate_ndimage(self, a, w, mode, cval, origin, footprint=False):
        return _core.ndimage_correlate(a, w, mode, cval, origin, footprint)

    def pool_nd(self, x, kind, batch, spatial, channels, pool, stride, padding):
        return _core.pool(x, kind, batch, spatial, channels, pool, stride, padding)


def _erf(x):
    from math import erf
    return np.vectorize(erf, otypes=[x.dtype])(x) if x.size else x.copy()


_UNARY = {
    "negative": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs, "sign": np.sign,
    "square": np.square, "reciprocal": np.reciprocal, "log1p": np.log1p, "expm1": np.expm1, "sin": np.sin,
    "cos": np.cos, "tanh": np.tanh, "floor": np.floor, "ceil": np.ceil, "round": np.round,
    "logical_not": np.logical_not, "isnan": np.isnan, "isfinite": np.isfinite, "erf": _erf,
}
_BINARY = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.true_divide,
    "power": np.power, "maximum": np.maximum, "minimum": np.minimum, "equal": np.equal,
    "not_equal": np.not_equal, "greater": np.greater, "greater_equal": np.greater_equal, "less": np.less,
    "less_equal": np.less_equal, "matmul": np.matmul, "logical_and": np.logical_and,
    "logical_or": np.logical_or, "floor_divide": np.floor_divide, "mod": np.mod,
}
_REDUCE = {"sum": np.sum, "max": np.max, "min": np.min, "mean": np.mean, "prod": np.prod, "any": np.any,
           "all": np.all, "argmax": np.argmax, "argmin": np.argmin}


def _scatter_slice(g, shape, key):
    out = np.zeros(shape, dtype=g.dtype)
    np.add.at(out, key, g) if _has_advanced(key) else out.__setitem__(key, g)
    return out


def _has_advanced(key):
    ks = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, (list, np.ndarray)) for k in ks)


def _where(c, a, b):
    return np.where(c.astype(bool) if c.dtype != bool else c, a, b)


def _c(a):
    """A C-contiguous array that owns its values (0-d stays 0-d)."""
    return np.array(a, order="C", copy=True)


_ARRAY_OPS = {
    "reshape": lambda x, shape: np.reshape(x, shape),
    "transpose": lambda x, axes: _c(np.transpose(x, axes)),
    "broadcast_to": lambda x, shape: _c(np.broadcast_to(x, shape)),
    "concatenate": lambda xs, axis: np.concatenate(xs, axis=axis),
    "pad": lambda x, pad_width, constant_values: np.pad(x, pad_width, constant_values=constant_values),
    "getitem": lambda x, key: _c(x[key]),
    "scatter_slice": _scatter_slice,
    "where": _where,
    "cast": lambda x, dtype: x.astype(dtype),
    "clip": lambda x, lo, hi: np.clip(x, lo, hi),
    "copy": lambda x: x.copy(),
    "flip": lambda x, axis: _c(np.flip(x, axis)),
    "cumsum": lambda x, axis, reverse: _cumsum(x, axis, reverse),
    "one_hot": lambda x, n, dtype: (np.asarray(x)[..., None] == np.arange(n)).astype(dtype),
    "logsumexp": lambda x, axis, keepdims: _logsumexp(x, axis, keepdims),
    "softmax": lambda x, axis: _softmax(x, axis),
    "random_mask": lambda shape, rate, seed, dtype: _mask(shape, rate, seed, dtype),
}


_guards = _cv.ContextVar("convcore_step_guard", default=None)


class guarded:
    """``with guarded(flag):`` — the in-place updates (optimizer steps, moving averages)
    on the GPU skip their writes once ``flag`` is set: how a training step that produced
    inf or NaN leaves the weights of the last good step without a read-back."""

    def __init__(self, flag):
        self.flag = flag

    def __enter__(self):
        self._token = _guards.set(self.flag)
        return self

    def __exit__(self, *exc):
        _guards.reset(self._token)
        return False


def current_guard():
    return _guards.get()


def _like(g, p):
    """A numpy gradient in its parameter's dtype (device arrays are already float32)."""
    if isinstance(g, np.ndarray) and g.dtype != p.dtype:
        return g.astype(p.dtype)
    return g


def _cumsum(x, axis, reverse):
    """Cumulative sums along ``axis`` (None: of the flattened array), or from the end."""
    if axis is None:
        x = x.reshape(-1)
        axis = 0
    if not reverse:
        return np.cumsum(x, axis=axis)
    return _c(np.flip(np.cumsum(np.flip(x, axis), axis=axis), axis))


def _logsumexp(x, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis if axis is not None else None)


def _softmax(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def _mask(shape, rate, seed, dtype):
    _, mask = _core.dropout_forward(np.ones(shape, dtype=dtype), rate, seed)
    return mask


class GpuBackend(CpuBackend):
    """A GPU through wgpu: GpuArrays (float32, uint32 indices). The network kernels are
    the CPU backend's methods: their bindings dispatch on the storage, so a GpuArray
    runs the WGSL kernel. What is left here differs on the GPU (the loss's device pair,
    the inference batch-norm backward, global max pooling's tie rule) or has no shader
    yet and goes through :meth:`_host` — the one fallback."""

    name = "gpu"
    fallbacks = 0

    @classmethod
    def _host(cls, f, *args, **kw):
        """The fallback: read GpuArray arguments back, run ``f`` (the CPU kernel), upload
        the array results."""
        cls.fallbacks += 1
        r = f(*[_to_host_deep(a) for a in args], **{k: _to_host_deep(v) for k, v in kw.items()})
        return tuple(_upload_arrays(v) for v in r) if isinstance(r, tuple) else _upload_arrays(r)

    def put(self, a, where="GPU"):
        return to_device(a, "gpu", where)

    def zeros(self, shape, dtype):
        return _core.gpu_zeros(list(shape))

    def write(self, dst, a):
        _core.gpu_write(dst, np.ascontiguousarray(a, dtype=np.float32))

    def unary(self, name, x):
        code = _GPU_UNARY.get(name)
        if code is not None and _f32gpu(x):
            return _core.gpu_unary(code, x)
        return self._host(super().unary, name, x)

    def binary(self, name, a, b):
        code = _GPU_BINARY.get(name)
        if code is not None and _f32gpu(a) and _f32gpu(b):
            if a.shape == b.shape and name in ("add", "subtract"):
                return _core.gpu_axpby(a, b, 1.0, 1.0 if name == "add" else -1.0)
            try:
                shape = tuple(np.broadcast_shapes(a.shape, b.shape))
            except ValueError:
                raise ValueError(f"{name}: shapes {a.shape} and {b.shape} do not broadcast") from None
            if len(shape) <= _MAX_RANK:
                try:
                    return _core.gpu_binary(code, a, _bstrides(a.shape, shape), 0, b, _bstrides(b.shape, shape), 0,
                                            list(shape))
                except MemoryError:
                    pass  # an operand larger than one binding: the host computes it
        return self._host(super().binary, name, a, b)

    def reduce(self, name, x, axis, keepdims):
        code = _GPU_REDUCE.get(name)
        shape = tuple(x.shape)
        axes = tuple(range(len(shape))) if axis is None else tuple(sorted(axis))
        if code is None or not _f32gpu(x) or any(shape[a] == 0 for a in axes) or x.size == 0:
            return self._host(super().reduce, name, x, axis, keepdims)
        try:
            y, cur = x, list(shape)
            for a in sorted(axes, reverse=True):  # one axis at a time, the last first
                outer = int(np.prod(cur[:a], dtype=np.int64))
                inner = int(np.prod(cur[a + 1:], dtype=np.int64))
                y = _core.gpu_reduce_axis(code, y, outer, cur[a], inner)
                cur[a] = 1
        except MemoryError:
            return self._host(super().reduce, name, x, axis, keepdims)
        if name == "mean":
            n = int(np.prod([shape[a] for a in axes], dtype=np.int64))
            y = _core.gpu_axpby(y, y, 1.0 / n, 0.0)
        out = tuple(cur) if keepdims else tuple(s for i, s in enumerate(shape) if i not in axes)
        return y.reshape(out)

    def array_op(self, name, *args, **kw):
        x = args[0] if args else None
        if name == "reshape" and isinstance(x, _core.GpuArray):
            return x.reshape(tuple(args[1]))
        if _f32gpu(x) and name in ("transpose", "broadcast_to", "getitem", "flip"):
            view = _view(name, tuple(x.shape), *args[1:])
            if view is not None:
                strides, base, shape = view
                if len(shape) <= _MAX_RANK:
                    try:
                        return _core.gpu_gather(x, strides, base, list(shape)).reshape(tuple(shape))
                    except MemoryError:
                        pass
        return self._host(super().array_op, name, *args, **kw)

    def axpby(self, a, b, alpha, beta):
        return _core.gpu_axpby(a, b, float(alpha), float(beta))

    def axpby_inplace(self, p, v, alpha, beta):
        _core.gpu_axpby_inplace(p, v, float(alpha), float(beta), guard=current_guard())

    def new_guard(self):
        """A zero [flag, 0] pair on the device: element 0 becomes NaN in
        :meth:`flag_nonfinite`; the in-place update kernels read it and then leave every
        weight as it was — no read-back per step. A pair, so that it adds onto the loss's
        [loss, accuracy] pair (a tripped guard makes the read-back loss NaN)."""
        return _core.gpu_zeros([2])

    def flag_nonfinite(self, xs, guard):
        on = [x for x in xs if isinstance(x, _core.GpuArray)]
        if on:
            _core.gpu_flag_nonfinite(on, guard)  # one dispatch per five tensors
        return super().flag_nonfinite([x for x in xs if not isinstance(x, _core.GpuArray)], guard)

    def guard_tripped(self, guard):
        return guard is not None and not bool(guard.numpy()[0] == 0)

    def sgd_update(self, p, g, v, lr, momentum, nesterov):
        _core.sgd_update(p, _like(g, p), v, lr, momentum, nesterov, guard=current_guard())

    def adam_update(self, p, g, m, v, lr, b1, b2, eps, t):
        _core.adam_update(p, _like(g, p), m, v, lr, b1, b2, eps, t, guard=current_guard())

    def global_pool(self, kind, x):
        y, argmax = _core.gpu_global_pool_forward(kind, x)
        # max keeps x: its gradient is shared among tied maxima, the CPU's rule (below)
        return y, (x if kind == "max" else argmax)

    def global_pool_backward(self, kind, cache, x_shape, dy):
        if kind == "max":  # the tie rule of the CPU kernel, through the one fallback
            return self._host(super().global_pool_backward, kind, cache, x_shape, dy)
        return _core.gpu_global_pool_backward(kind, dy, cache, list(x_shape))

    def batchnorm_backward(self, x, gamma, mean, var, eps, dy, training):
        return _core.gpu_batchnorm_backward(x, gamma, mean, var, eps, dy, bool(training))

    def loss(self, name, y, pred, from_logits):
        """(mean loss as a 0-d device array, dLoss/dpred, the device pair [mean loss,
        accuracy]): the caller reads the pair back when it needs the values."""
        if isinstance(y, np.ndarray) and y.dtype == np.float64:
            y = y.astype(np.float32)
        stats, grad = _core.gpu_loss(name, to_device(y, "gpu", "targets"), pred, bool(from_logits))
        return _core.gpu_slice_last(stats, 0, 1).reshape(()), grad, stats

    def accuracy(self, kind, y, pred):
        type(self).fallbacks += 1
        return super().accuracy(kind, to_host(y), pred.numpy())

    def host_call(self, f, x):
        type(self).fallbacks += 1
        y, cache = f(np.ascontiguousarray(x.numpy(), dtype=np.float32))
        return to_device(y, "gpu"), cache

    def correlate_signal(self, a, b, mode, method):
        return _core.gpu_correlate(_f32(a), _f32(b), "signal", mode=mode).numpy()

    def correlate_signal2d(self, a, b, mode, boundary, fill, flipped):
        return _core.gpu_correlate(_f32(a), _f32(b), "signal2d", mode=mode, boundary=boundary,
                                   fillvalue=fill, flipped=flipped).numpy()

    def correlate_ndimage(self, a, w, mode, cval, origin, footprint=False):
        return _core.gpu_correlate(_f32(a), _f32(w), "ndimage", mode=mode, fillvalue=cval, origin=origin,
                                   footprint=footprint).numpy()

    def pool_nd(self, x, kind, batch, spatial, channels, pool, stride, padding):
        xg = _core.gpu_upload(_f32(x).reshape([batch] + list(spatial) + [channels]))
        y, _ = _core.gpu_pool_forward(xg, kind, list(pool), list(stride), padding)
        out = y.numpy()
        return out, out.shape[1:-1]


# Codes of shaders/array.wgsl.
_GPU_UNARY = {"negative": 0, "exp": 1, "log": 2, "sqrt": 3, "abs": 4, "sign": 5, "square": 6, "reciprocal": 7,
              "log1p": 8, "expm1": 9, "sin": 10, "cos": 11, "floor": 12, "ceil": 13, "round": 14, "tanh": 15}
_GPU_BINARY = {"add": 0, "subtract": 1, "multiply": 2, "divide": 3, "power": 4, "maximum": 5, "minimum": 6}
_GPU_REDUCE = {"sum": 0, "max": 1, "min": 2, "mean": 0}
_MAX_RANK = 6


def _f32gpu(a):
    return isinstance(a, _core.GpuArray) and a.dtype == "float32"


def _contiguous_strides(shape):
    st, acc = [], 1
    for n in reversed(shape):
        st.append(acc)
        acc *= n
    return st[::-1]


def _bstrides(shape, out):
    """Element strides of a C-contiguous operand of ``shape`` broadcast to ``out``."""
    full = (1,) * (len(out) - len(shape)) + tuple(shape)
    cs = _contiguous_strides(full)
    return [0 if n == 1 and o != 1 else s for n, o, s in zip(full, out, cs)]


def _view(name, shape, *args):
    """(strides, base, out shape) of a strided view of a C-contiguous tensor, or None
    when the view is not a plain strided one (advanced indexing)."""
    cs = _contiguous_strides(shape)
    if name == "transpose":
        axes = args[0]
        return [cs[a] for a in axes], 0, tuple(shape[a] for a in axes)
    if name == "broadcast_to":
        out = tuple(args[0])
        return _bstrides(shape, out), 0, out
    if name == "flip":
        axes = set(args[0])
        base = sum((shape[a] - 1) * cs[a] for a in axes if shape[a] > 0)
        return [-s if i in axes else s for i, s in enumerate(cs)], base, shape
    key = args[0]
    key = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis for k in key):
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - len(key) + 1) + key[i + 1:]
    if len(key) > len(shape) or not all(isinstance(k, (slice, int, np.integer)) and not isinstance(k, bool)
                                        for k in key):
        return None
    strides, out, base = [], [], 0
    for d, n in enumerate(shape):
        k = key[d] if d < len(key) else slice(None)
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            m = len(range(start, stop, step))
            base += start * cs[d] if m else 0
            strides.append(step * cs[d])
            out.append(m)
        else:
            i = int(k) + n if k < 0 else int(k)
            if not 0 <= i < n:
                return None  # the host raises numpy's IndexError
            base += i * cs[d]
    return strides, base, tuple(out)


def _to_host_deep(a):
    """GpuArrays (also inside a list) read back; anything else as it is. A module
    function, not a recursive closure: that would be a cycle holding the arrays."""
    if isinstance(a, _core.GpuArray):
        return a.numpy()
    if isinstance(a, list):
        return [_to_host_deep(v) for v in a]
    return a


def _upload_arrays(v):
    return to_device(v, "gpu") if isinstance(v, np.ndarray) else v


def _is_scalar(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


_BACKENDS = {"cpu": CpuBackend(), "gpu": GpuBackend()}


def backend(device):
    """The backend computing on ``device`` ('cpu' or 'gpu')."""
    return _BACKENDS[device]


def sync():
    """Wait for queued GPU work (a no-op without a GPU in use)."""
    if _core.gpu_available():
        _core.gpu_sync()


def readbacks():
    """How many times data was read back from the GPU since the process started."""
    return _core.gpu_readbacks()


def accumulate_pair(running, st, k):
    """``running + k * st`` for the GPU's [loss, accuracy] pairs, on the device."""
    if running is None:
        return _core.gpu_axpby(st, st, float(k), 0.0)
    return _core.gpu_axpby(running, st, 1.0, float(k))


# ------------------------------------------------------------------ functional API
_CALL_DEVICE = _cv.ContextVar("convcore_call_device", default=None)


def call_device():
    """The device of the functional-API call in progress ('cpu' or 'gpu')."""
    d = _CALL_DEVICE.get()
    return d if d is not None else get_device()


def call_backend():
    """The backend of the functional-API call in progress."""
    return _BACKENDS[call_device()]


def _float64_sequence(a):
    """A list / tuple of Python floats (or nested ones): numpy makes it float64, which
    the GPU does not compute, like a float64 array. Scalars (sigma, cval) are not data."""
    if not isinstance(a, (list, tuple)) or not a:
        return False
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError):
        return False
    return arr.dtype == np.float64 and arr.ndim >= 1 and any(isinstance(v, float) for v in np.ravel(arr).tolist()[:1])


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
            # The data as a list of Python floats is float64 data too (weights given as
            # a list follow the input's dtype, scipy's rule, so only the input counts).
            if args and _float64_sequence(args[0]):
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
