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
def _float64_error(where, dtype=None):
    got = "a float64 array" if dtype is None or np.dtype(dtype) == np.float64 else \
        f"a float64 array ({np.dtype(dtype).str}: {np.dtype(dtype).itemsize * 8}-bit floats)"
    return TypeError(f"{where}: the GPU computes in float32 but got {got}; convert it with "
                     "x.astype(np.float32), or use device='cpu' for float64")


def _is_float64(dtype):
    """float64 in any byte order (and wider floats): the dtypes the GPU refuses."""
    return dtype.kind == "f" and dtype.itemsize >= 8


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
    if device != "gpu":
        raise ValueError(f"{where}: device must be 'cpu' or 'gpu', got {device!r}")
    if isinstance(data, _core.GpuArray):
        return data
    a = np.asarray(data)
    if _is_float64(a.dtype):
        raise _float64_error(where, a.dtype)
    if a.dtype.kind == "f" and a.dtype != np.float32:
        a = a.astype(np.float32)  # float16, byte-swapped float32
    elif a.dtype.kind == "b":
        a = a.astype(np.uint32)
    g = _core.gpu_upload(np.require(a, requirements="C"))
    # (the upload gives integer 0-d arrays the shape (1,): a 0-d value stays 0-d)
    return g if tuple(g.shape) == a.shape else g.reshape(a.shape)


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
        if name in _NATIVE_BINARY and _native_binary_fits(a, b):
            return _core.binary(name, a, b)
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
    # (numpy arrays of another byte order are made native first, a cheap copy: the
    # kernels read native floats, and every device then takes the same inputs)
    def activation(self, name, x):
        return _core.activation_forward(name, _native(x))

    def activation_backward(self, name, x, y, dy):
        return _core.activation_backward(name, _native(x), _native(y), _native(dy))

    def dense(self, x, w, b):
        return _core.dense_forward(_native(x), _native(w), _native(b))

    def dense_backward(self, x, w, dz, need_dx):
        return _core.dense_backward(_native(x), _native(w), _native(dz), need_dx)

    def conv(self, x, w, b, strides, dilation, padding):
        return _core.conv_forward(_native(x), _native(w), _native(b), strides, dilation, padding)

    def conv_backward(self, x, w, dz, strides, dilation, padding, need_dx):
        return _core.conv_backward(_native(x), _native(w), _native(dz), strides, dilation, padding, need_dx)

    # one-pass conv + bias + elementwise activation (see ops.nn._conv_act_fused)
    fused_conv_activation = True

    def conv_act(self, x, w, b, act, strides, dilation, padding):
        return _core.conv_act_forward(_native(x), _native(w), _native(b), act, strides, dilation, padding)

    def conv_act_backward(self, x, w, y, dy, act, strides, dilation, padding, need_dx):
        return _core.conv_act_backward(_native(x), _native(w), _native(y), _native(dy), act, strides, dilation,
                                       padding, need_dx)

    def conv_input_grad(self, x_shape, w, dz, strides, dilation, padding):
        """The input gradient alone of a convolution whose input has ``x_shape`` (a
        transposed convolution of ``dz``): no weight gradient is computed."""
        return _core.conv_input_grad(list(x_shape), _native(w), _native(dz), strides, dilation, padding)

    def depthwise_conv(self, x, w, strides, dilation, padding):
        return _core.depthwise_conv(_native(x), _native(w), list(strides), list(dilation), padding)

    def depthwise_conv_backward(self, x, w, dy, strides, dilation, padding, need_dx):
        return _core.depthwise_conv_backward(_native(x), _native(w), _native(dy), list(strides), list(dilation),
                                             padding, need_dx)

    def group_norm(self, x, gamma, beta, rows, pixels, groups, epsilon):
        return _core.group_norm(_native(x), _native(gamma), _native(beta), rows, pixels, groups, float(epsilon))

    def group_norm_backward(self, x, gamma, dy, mean, rstd, rows, pixels, groups, need_dx):
        return _core.group_norm_backward(_native(x), _native(gamma), _native(dy), _native(mean), _native(rstd), rows,
                                         pixels, groups, need_dx)

    def pool(self, x, kind, pool, strides, padding):
        return _core.pool_train_forward(_native(x), kind, pool, strides, padding)

    def pool_backward(self, dy, kind, argmax, x_shape, pool, strides, padding):
        return _core.pool_backward(_native(dy), kind, argmax, list(x_shape), pool, strides, padding)

    def global_pool(self, kind, x):
        x = _native(x)
        return _core.global_pool_forward(kind, x), x

    def global_pool_backward(self, kind, cache, x_shape, dy):
        return _core.global_pool_backward(kind, cache, _contiguous(_native(dy)))

    def batchnorm(self, x, gamma, beta, eps, training, mm, mv):
        return _core.batchnorm_forward(_native(x), _native(gamma), _native(beta), eps, bool(training), _native(mm),
                                       _native(mv))

    def batchnorm_backward(self, x, gamma, mean, var, eps, dy, training):
        if training:
            return _core.batchnorm_backward(_native(x), _native(gamma), _native(mean), _native(var), eps,
                                            _contiguous(_native(dy)))
        # Inference: an affine map per channel.
        inv = 1.0 / np.sqrt(var + eps)
        axes = tuple(range(x.ndim - 1))
        dgamma = (dy * ((x - mean) * inv)).sum(axis=axes).astype(x.dtype)
        dbeta = dy.sum(axis=axes).astype(x.dtype)
        scale = inv if gamma is None else gamma * inv
        return (dy * scale).astype(x.dtype), dgamma, dbeta

    def dropout(self, x, rate, seed):
        return _core.dropout_forward(_native(x), rate, seed)

    def loss(self, name, y, pred, from_logits):
        """(mean loss as a 0-d array, dLoss/dpred, None)."""
        pred = _native(pred)
        loss, grad = _core.loss(name, _native(y), _contiguous(pred), bool(from_logits))
        return np.asarray(loss, dtype=pred.dtype), grad, None

    def accuracy(self, kind, y, pred):
        return float(_core.accuracy(kind, _native(y), _native(pred)))

    def sgd_update(self, p, g, v, lr, momentum, nesterov):
        _core.sgd_update(p, _like(g, p), v, lr, momentum, nesterov)

    def adam_update(self, p, g, m, v, lr, b1, b2, eps, t):
        _core.adam_update(p, _like(g, p), m, v, lr, b1, b2, eps, t)

    def optimizer_update(self, rule, p, g, slots, hyper, weight_decay=0.0, clipvalue=None):
        """One optimizer step of ``rule`` in place on ``p`` and its state ``slots``
        (three entries, None where unused); see ``_core.optimizer_update``."""
        _core.optimizer_update(rule, p, _like(g, p), list(slots), [float(h) for h in hyper], float(weight_decay),
                               clipvalue)

    # --- one binding for every device (the binding dispatches on the storage)
    def upsample2d(self, x, size, interpolation):
        return _core.upsample2d(_native(x), list(size), interpolation)

    def upsample2d_backward(self, dy, x_shape, size, interpolation):
        return _core.upsample2d_backward(_native(dy), list(x_shape), list(size), interpolation)

    # --- host code (augmentation: Rust kernels on numpy arrays)
    def host_call(self, f, x):
        """``f(x) -> (array, cache)`` on a numpy array."""
        return f(x)

    # --- scipy-style filtering
    def correlate_signal(self, a, b, mode, method):
        return _core.correlate(_native(a), _native(b), mode, method)

    def correlate_signal2d(self, a, b, mode, boundary, fill, flipped):
        return _core.correlate2d(_native(a), _native(b), mode, boundary, fill, flipped)

    def correlate_ndimage(self, a, w, mode, cval, origin, footprint=False):
        return _core.ndimage_correlate(_native(a), _native(w), mode, cval, origin, footprint)

    def correlate_separable2(self, a, filters, cval):
        """The sum of separable filters of a 2-D float array, fused: ``filters`` lists
        ``(w0, mode0, w1, mode1)``, ``w0`` along axis 0 then ``w1`` along axis 1, each
        pass stored in the array's dtype, the filters added in order. None where the
        backend has no fused kernel (then the passes run apart)."""
        return _core.ndimage_separable2(_native(a), [(_native(w0), m0, _native(w1), m1) for w0, m0, w1, m1 in filters],
                                        cval)

    # (host kernels on every device: the GPU backend calls these two as its fallback)
    def correlate_fft(self, a, b):
        """The full correlation of two float arrays of one dtype by the FFT."""
        return _core.correlate(_native(a), _native(b), "full", "fft")

    def rank_filter(self, a, footprint, rank, origin, mode, cval):
        return _core.rank_filter(_native(a), footprint, rank, origin, mode, cval)

    def pool_nd(self, x, kind, batch, spatial, channels, pool, stride, padding):
        return _core.pool(_native(x), kind, batch, spatial, channels, pool, stride, padding)


def _native(a):
    """A numpy array in the machine's byte order (a byte-swapped one is converted, a
    cheap copy); anything else (None, a GpuArray, a native array) as it is."""
    if isinstance(a, np.ndarray) and not a.dtype.isnative:
        return a.astype(a.dtype.newbyteorder("="))
    return a


def _erf(x):
    """The error function elementwise, in numpy's float type for ``x`` (that of np.sin:
    integers and bools become floats)."""
    from math import erf
    dt = np.sin(np.zeros(0, dtype=x.dtype)).dtype
    if not x.size:
        return np.zeros(x.shape, dtype=dt)
    return np.vectorize(erf, otypes=[np.float64])(x).astype(dt, copy=False)


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
# Binary ops run natively (all threads, vectorised; numpy's bits) on float arrays of one
# dtype and shape, or an array and a vector along its last axis (a bias, a per-channel
# scale), when large enough that the threads pay; numpy otherwise (broadcasting, small).
_NATIVE_BINARY = frozenset(("add", "subtract", "multiply", "divide", "maximum", "minimum"))
_NATIVE_BINARY_MIN = 1 << 16


def _native_binary_fits(a, b):
    if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
        return False
    if a.dtype != b.dtype or a.dtype not in (np.float32, np.float64) or a.size < _NATIVE_BINARY_MIN:
        return False
    if not (a.dtype.isnative and a.flags.c_contiguous and b.flags.c_contiguous):
        return False
    if a.shape == b.shape:
        return True
    return (b.ndim >= 1 and a.ndim >= b.ndim and b.shape[-1] == a.shape[-1]
            and all(n == 1 for n in b.shape[:-1]))


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
    # (a 0-d array has no (before, after) pairs: numpy's pad wants a plain 0 for it)
    "pad": lambda x, pad_width, constant_values: np.pad(x, pad_width if len(pad_width) else 0,
                                                        constant_values=constant_values),
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

    fused_conv_activation = False  # the WGSL convolution and activation are two kernels

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
        _core.gpu_write(dst, _contiguous(a, np.float32))

    def unary(self, name, x):
        code = _GPU_UNARY.get(name)
        if code is not None and _f32gpu(x) and (name not in ("sin", "cos") or _small_angles(x)):
            return _core.gpu_unary(code, x)
        code = _GPU_UNARY_BOOL.get(name)
        if code is not None and isinstance(x, _core.GpuArray):
            return _core.gpu_unary(code, x)
        return self._host(super().unary, name, x)

    def binary(self, name, a, b):
        r = self._device_binary(name, a, b)
        return r if r is not None else self._host(super().binary, name, a, b)

    def _device_binary(self, name, a, b):
        """The GPU kernel for ``binary(name, a, b)``, or None for the host."""
        code = _GPU_BINARY.get(name)
        if code is not None:  # arithmetic: two float32 operands
            if not (_f32gpu(a) and _f32gpu(b)):
                return None
            if a.shape == b.shape and name in ("add", "subtract"):
                return _core.gpu_axpby(a, b, 1.0, 1.0 if name == "add" else -1.0)
            return self._broadcast_binary(code, name, a, b)
        if not _all_gpu(a, b):
            return None
        # comparisons: two float32 or two uint32 operands (compared exactly); logical
        # ops: any two (their truth values); the result is uint32 0 / 1
        code = _GPU_COMPARE.get(name)
        if code is not None:
            if code < _GPU_COMPARE["logical_and"] and a.dtype != b.dtype:
                return None
            return self._broadcast_binary(code, name, a, b)
        if name == "matmul" and _f32gpu(a) and _f32gpu(b):
            return _gpu_matmul(a, b)
        return None

    @staticmethod
    def _broadcast_binary(code, name, a, b):
        """``gpu_binary`` over numpy's broadcast of the operands, or None when the host
        must decide (too many axes, an operand larger than one binding)."""
        try:
            shape = tuple(np.broadcast_shapes(a.shape, b.shape))
        except ValueError:
            raise ValueError(f"{name}: shapes {a.shape} and {b.shape} do not broadcast") from None
        if len(shape) > _MAX_RANK:
            return None
        try:
            return _core.gpu_binary(code, a, _bstrides(a.shape, shape), 0, b, _bstrides(b.shape, shape), 0,
                                    list(shape))
        except MemoryError:
            return None

    def reduce(self, name, x, axis, keepdims):
        code = _GPU_REDUCE.get(name)
        shape = tuple(x.shape)
        # Axes the kernels cannot take (out of range, repeated, not integers; argmax's
        # int) go to the host, which gives numpy's result or numpy's error.
        axes = _valid_axes(axis, len(shape)) if code is not None else None
        if axes is None or not _f32gpu(x) or any(shape[a] == 0 for a in axes) or x.size == 0:
            return self._host(super().reduce, name, x, axis, keepdims)
        try:
            y, cur = x, list(shape)
            for a in sorted(axes, reverse=True):  # one axis at a time, the last first
                outer = int(np.prod(cur[:a], dtype=np.int64))
                inner = int(np.prod(cur[a + 1:], dtype=np.int64))
                y = _core.gpu_reduce_axis(code, y, outer, cur[a], inner)
                cur[a] = 1
            if name == "mean" or not axes:  # (no axis: a copy, not the input's own buffer)
                n = int(np.prod([shape[a] for a in axes], dtype=np.int64))
                y = _gpu_divide(y, float(n))  # a division, as numpy's: 0 * inf would be NaN in axpby
        except MemoryError:
            return self._host(super().reduce, name, x, axis, keepdims)
        out = tuple(cur) if keepdims else tuple(s for i, s in enumerate(shape) if i not in axes)
        return y.reshape(out)

    def array_op(self, name, *args, **kw):
        x = args[0] if args else None
        if name == "cast" and _is_float64(np.dtype(args[1])):
            raise _float64_error("cast", args[1])  # (a host result would come back as float32)
        if name == "reshape" and isinstance(x, _core.GpuArray):
            return x.reshape(tuple(args[1]))
        r = _gpu_array_op(self, name, args) if isinstance(x, (_core.GpuArray, list)) else None
        if r is not None:
            return r
        if _f32gpu(x) and name in ("transpose", "broadcast_to", "getitem", "flip"):
            view = _view(name, tuple(x.shape), *args[1:])  # None: not a plain view, the host decides
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

    def optimizer_update(self, rule, p, g, slots, hyper, weight_decay=0.0, clipvalue=None):
        _core.optimizer_update(rule, p, g, list(slots), [float(h) for h in hyper], float(weight_decay), clipvalue,
                               guard=current_guard())

    def dense(self, x, w, b):
        if len(x.shape) == 2 and x.shape[1] == 0 and x.shape[0]:
            # No input features: x @ w is zeros (N, units); the kernel would drop the rows.
            return self._host(super().dense, x, w, b)
        return super().dense(x, w, b)

    def dense_backward(self, x, w, dz, need_dx):
        if len(x.shape) == 2 and x.shape[1] == 0 and x.shape[0]:
            return self._host(super().dense_backward, x, w, dz, need_dx)
        return super().dense_backward(x, w, dz, need_dx)

    def conv_input_grad(self, x_shape, w, dz, strides, dilation, padding):
        # the GPU's backward kernel takes the input itself: zeros of its shape
        return _core.conv_backward(_core.gpu_zeros(list(x_shape)).reshape(tuple(x_shape)), w, dz, strides, dilation,
                                   padding, True)[0]

    def global_pool(self, kind, x):
        y, argmax = _core.gpu_global_pool_forward(kind, x)
        # max keeps x: its gradient is shared among tied maxima, the CPU's rule (below)
        return y, (x if kind == "max" else argmax)

    def global_pool_backward(self, kind, cache, x_shape, dy):
        if kind == "max":  # from x itself: the CPU kernel's tie rule
            return _core.gpu_global_max_pool_backward(dy, cache)
        return _core.gpu_global_pool_backward(kind, dy, cache, list(x_shape))

    def batchnorm(self, x, gamma, beta, eps, training, mm, mv):
        # The CPU binding's shape rules (the GPU's checks only the statistics it reads).
        if not x.shape:
            raise ValueError("batchnorm_forward: x must have at least one axis (channels last), got a scalar")
        c = x.shape[-1]
        for name, v in (("gamma", gamma), ("beta", beta), ("moving_mean", mm), ("moving_var", mv)):
            if v is not None and tuple(v.shape) != (c,):
                raise ValueError(f"batchnorm_forward: {name} must have shape [{c}], got shape {list(v.shape)}")
        if c == 0:
            raise ValueError("batch normalization: x: the last axis must not be empty")
        return super().batchnorm(x, gamma, beta, eps, training, mm, mv)

    def batchnorm_backward(self, x, gamma, mean, var, eps, dy, training):
        return _core.gpu_batchnorm_backward(x, gamma, mean, var, eps, dy, bool(training))

    def loss(self, name, y, pred, from_logits):
        """(mean loss as a 0-d device array, dLoss/dpred, the device pair [mean loss,
        accuracy]): the caller reads the pair back when it needs the values. The targets
        are checked as the CPU kernel checks them (shapes; sparse labels whole numbers in
        [0, classes)) before the kernel runs."""
        y = _gpu_loss_targets(name, y, tuple(pred.shape))
        stats, grad = _core.gpu_loss(name, y, pred, bool(from_logits))
        return _core.gpu_slice_last(stats, 0, 1).reshape(()), grad, stats

    def accuracy(self, kind, y, pred):
        type(self).fallbacks += 1
        return super().accuracy(kind, to_host(y), pred.numpy())

    def host_call(self, f, x):
        type(self).fallbacks += 1
        y, cache = f(_contiguous(x.numpy(), np.float32))
        return to_device(y, "gpu"), cache

    # A 0-d operand: the CPU's rules decide (its plan rejects them; the GPU's would not).
    def correlate_signal(self, a, b, mode, method):
        if np.ndim(a) == 0 or np.ndim(b) == 0:
            return super().correlate_signal(_f32(a), _f32(b), mode, method)
        return _core.gpu_correlate(_f32(a), _f32(b), "signal", mode=mode).numpy()

    def correlate_signal2d(self, a, b, mode, boundary, fill, flipped):
        if np.ndim(a) == 0 or np.ndim(b) == 0:
            return super().correlate_signal2d(_f32(a), _f32(b), mode, boundary, fill, flipped)
        return _core.gpu_correlate(_f32(a), _f32(b), "signal2d", mode=mode, boundary=boundary,
                                   fillvalue=fill, flipped=flipped).numpy()

    def correlate_ndimage(self, a, w, mode, cval, origin, footprint=False):
        if np.ndim(a) == 0 or np.ndim(w) == 0:
            return super().correlate_ndimage(_f32(a), _f32(w), mode, cval, origin, footprint)
        return _core.gpu_correlate(_f32(a), _f32_weights(w), "ndimage", mode=mode, fillvalue=cval, origin=origin,
                                   footprint=footprint).numpy()

    def correlate_separable2(self, a, filters, cval):
        return None  # (no fused shader: the passes run one by one)

    # No shader for these two: the host kernels, counted as fallbacks.
    def correlate_fft(self, a, b):
        type(self).fallbacks += 1
        return super().correlate_fft(a, b)

    def rank_filter(self, a, footprint, rank, origin, mode, cval):
        type(self).fallbacks += 1
        return super().rank_filter(a, footprint, rank, origin, mode, cval)

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
# Truth-valued codes (uint32 0 / 1 results; uint32 operands read as their values).
_GPU_UNARY_BOOL = {"isnan": 17, "isfinite": 18, "logical_not": 19}
_GPU_COMPARE = {"equal": 7, "not_equal": 8, "greater": 9, "greater_equal": 10, "less": 11, "less_equal": 12,
                "logical_and": 13, "logical_or": 14}
_GPU_CLIP, _GPU_NONZERO, _GPU_TO_FLOAT = 16, 20, 21
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
    when the view is not a plain strided one (advanced indexing) or its arguments are not
    valid (the host then raises numpy's error)."""
    cs = _contiguous_strides(shape)
    nd = len(shape)
    if name == "transpose":
        axes = args[0]
        if sorted(_int_or_none(a) for a in axes if _int_or_none(a) is not None) != list(range(nd)) or \
                len(axes) != nd:
            return None
        return [cs[a] for a in axes], 0, tuple(shape[a] for a in axes)
    if name == "broadcast_to":
        out = tuple(args[0])
        if len(out) < nd or any(s != o and s != 1 for s, o in zip(shape, out[len(out) - nd:])) or \
                any(_int_or_none(o) is None or o < 0 for o in out):
            return None  # numpy's rule: the input's axes match the last ones of the target, or are 1
        return _bstrides(shape, out), 0, out
    if name == "flip":
        axes = _valid_axes(args[0], nd)
        if axes is None:
            return None
        axes = set(axes)
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


def _int_or_none(v):
    return int(v) if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) else None


def _valid_axes(axis, ndim):
    """The distinct axes ``axis`` names (None: all of them; an int or a sequence of ints,
    negative ones counted from the end) in [0, ndim), or None when one is out of range,
    repeated or not an integer."""
    if axis is None:
        return tuple(range(ndim))
    items = (axis,) if _int_or_none(axis) is not None else axis
    try:
        items = tuple(items)
    except TypeError:
        return None
    out = []
    for a in items:
        a = _int_or_none(a)
        if a is None or not -ndim <= a < ndim:
            return None
        out.append(a % ndim)
    return tuple(out) if len(set(out)) == len(out) else None


def _gpu_divide(y, n):
    """``y / n`` on the device (a broadcast division by one uploaded value)."""
    shape = list(y.shape)
    c = _core.gpu_upload(np.array([n], dtype=np.float32))
    return _core.gpu_binary(_GPU_BINARY["divide"], y, _contiguous_strides(shape), 0, c, [0] * len(shape), 0, shape)


#: Beyond this |x| the GPU's sin / cos are not trusted (WGSL bounds their error only on
#: [-pi, pi]; lavapipe's hold to about 1e7, a float32 argument's spacing there is ~1): a
#: larger (or NaN) argument sends the whole call through the host.
_TRIG_BOUND = 1e5


def _small_angles(x):
    """Whether every |x| <= _TRIG_BOUND: a max of |x| on the device, one value read back."""
    if x.size == 0:
        return True
    a = _core.gpu_unary(_GPU_UNARY["abs"], x)
    n = x.size
    m = _core.gpu_reduce_axis(_GPU_REDUCE["max"], a.reshape((n,)), 1, n, 1)
    return bool(m.numpy().reshape(-1)[0] <= _TRIG_BOUND)  # NaN compares False: the host


_LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy", "mse",
           "mean_squared_error")


def _gpu_loss_targets(name, y, ps):
    """The targets of a GPU loss, checked as the CPU kernel checks them (the same errors)
    and stored as the GPU kernel reads them: sparse labels as uint32 class indices, other
    targets as float32. ``ps`` is y_pred's shape."""
    if name not in _LOSSES:
        return y  # the kernel names the losses it knows
    f = "loss"
    sparse = name == "sparse_categorical_crossentropy"
    if isinstance(y, _core.GpuArray):
        if not sparse:
            _check_target_shape(f, tuple(y.shape), ps, name == "categorical_crossentropy")
            return y
        y = y.numpy()  # the labels are checked on the host (one read-back)
    y = _native(np.asarray(y))
    if not sparse:
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{f}: y_true must be a numeric numpy array (bool, int or float), got a {y.dtype} "
                            f"array of shape {list(y.shape)}")
        _check_target_shape(f, y.shape, ps, name == "categorical_crossentropy")
        if name == "categorical_crossentropy" and ps[-1] == 0:
            raise ValueError("categorical_crossentropy: y_pred: the last axis must not be empty")
        return to_device(y.astype(np.float32), "gpu", "targets")
    if y.dtype.kind == "f" and y.dtype.itemsize in (4, 8):
        v = y.astype(np.float64).reshape(-1)
        bad = ~np.isfinite(v) | (v != np.round(v)) | (np.abs(v) > 9.0e15)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"sparse labels must be whole numbers (class indices), got {v[i]} at flat index {i}")
    elif y.dtype.kind not in "biu":
        raise TypeError(f"{f}: y_true must be a numpy array of integer class labels (any integer dtype, or floats "
                        f"holding whole numbers), got a {y.dtype} array of shape {list(y.shape)}")
    if not ps:
        raise ValueError(f"{f}: y_pred must have a class axis (last), got a scalar")
    lead, k = ps[:-1], ps[-1]
    ls = y.shape
    if not (ls == lead or (len(ls) == len(ps) and ls[:-1] == lead and ls[-1] == 1)):
        raise ValueError(f"{f}: y_true (class labels) must have shape {list(lead)} (y_pred's shape {list(ps)} "
                         f"without the class axis) or {list(lead) + [1]}, got shape {list(ls)}")
    if k == 0:
        raise ValueError("sparse_categorical_crossentropy: y_pred: the last axis must not be empty")
    lab = y.reshape(-1)
    out = (lab < 0) | (lab >= k)
    if out.any():
        i = int(np.argmax(out))
        raise ValueError(f"label {int(lab[i])} (at flat index {i}) is out of range for {k} classes: labels must be "
                         f"in [0, {k - 1}]")
    return to_device(lab.astype(np.uint32).reshape(ls), "gpu", "targets")


def _check_target_shape(f, ts, ps, strict):
    """The CPU's target rule: y_pred's shape, or (not for categorical) one of the two
    with an extra trailing axis of 1."""
    ts, ps = tuple(ts), tuple(ps)

    def trailing_one(a, b):
        return len(a) == len(b) + 1 and a[:len(b)] == b and a[-1] == 1
    if ts == ps or (not strict and (trailing_one(ts, ps) or trailing_one(ps, ts))):
        return
    raise ValueError(f"{f}: y_true must have y_pred's shape {list(ps)}, got shape {list(ts)}")


def _to_host_deep(a):
    """GpuArrays (also inside a list) read back; anything else as it is. A module
    function, not a recursive closure: that would be a cycle holding the arrays."""
    if isinstance(a, _core.GpuArray):
        return a.numpy()
    if isinstance(a, list):
        return [_to_host_deep(v) for v in a]
    return a


def _upload_arrays(v):
    """A host result on the GPU: arrays and numpy scalars uploaded (as 0-d arrays);
    float64 — numpy's type for what it computes from the GPU's uint32 integers — as
    float32, the GPU's float."""
    if isinstance(v, np.generic):
        v = np.asarray(v)
    if not isinstance(v, np.ndarray):
        return v
    if _is_float64(v.dtype):
        v = v.astype(np.float32)
    return to_device(v, "gpu")


def _is_scalar(v):
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _contiguous(a, dtype=None):
    """A C-contiguous array of ``a`` (no copy when it is one); unlike
    np.ascontiguousarray a 0-d array stays 0-d."""
    return np.asarray(a, dtype=dtype, order="C")


def _f32(a):
    return _contiguous(a, np.float32)


def _f32_weights(w):
    """Weights rounded to float32 for a float32 kernel, the largest absorbing what the
    rounding took from their sum, so that a normalised kernel still sums to one (a
    Gaussian's float32 weights sum to 1 - 2e-8: over a 100x100 ramp a drift of 2 in the
    total, beyond scipy's own test tolerance)."""
    w64 = np.asarray(w, dtype=np.float64)
    w32 = _f32(w64)
    if w64.size >= 2 and np.isfinite(w64).all():
        i = np.unravel_index(int(np.argmax(np.abs(w64))), w64.shape)
        with np.errstate(over="ignore", invalid="ignore"):
            d = w64.sum() - w32.astype(np.float64).sum()
            if np.isfinite(d) and d != 0:
                w32[i] = np.float32(np.float64(w32[i]) + d)
    return w32


_BACKENDS = {"cpu": CpuBackend(), "gpu": GpuBackend()}


def backend(device):
    """The backend computing on ``device`` ('cpu' or 'gpu'; anything else is a
    ValueError)."""
    b = _BACKENDS.get(device) if isinstance(device, str) else None
    if b is None:
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    return b


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
    return backend(call_device())


def _float64_sequence(a):
    """A list / tuple of Python floats (or nested ones): numpy makes it float64, which
    the GPU does not compute, like a float64 array. Scalars (sigma, cval) are not data."""
    if not isinstance(a, (list, tuple)) or not a:
        return False
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError):
        return False
    return arr.dtype == np.float64


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
                if isinstance(a, np.ndarray) and _is_float64(a.dtype):
                    raise _float64_error(func.__name__, a.dtype)
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


# ------------------------------------------------------------------ GPU array ops
def _gpu_array_op(be, name, args):
    """The GPU kernel for ``array_op(name, *args)`` (where, clip, pad, concatenate,
    slice gradients, take, casts between float32 and bool, copy, logsumexp), or None
    when the host must compute it (an argument form the kernels do not take; the host
    then also gives numpy's errors)."""
    try:
        f = _GPU_ARRAY_OPS.get(name)
        return None if f is None else f(be, *args)
    except MemoryError:
        return None  # an operand larger than one binding


def _all_gpu(*xs):
    return all(isinstance(x, _core.GpuArray) for x in xs)


def _gpu_where(be, c, a, b):
    if not _all_gpu(c, a, b) or a.dtype != b.dtype:
        return None
    shape = tuple(np.broadcast_shapes(tuple(c.shape), tuple(a.shape), tuple(b.shape)))
    if len(shape) > _MAX_RANK:
        return None
    return _core.gpu_where(c, _bstrides(c.shape, shape), 0, a, _bstrides(a.shape, shape), 0, b,
                           _bstrides(b.shape, shape), 0, list(shape))


def _scalar(v):
    """A Python float for a real number or a 0-d real array, else None."""
    if v is None:
        return None
    a = np.asarray(v)
    if a.ndim or a.dtype.kind not in "biuf":
        return None
    return float(a)


def _gpu_clip(be, x, lo, hi):
    if not _f32gpu(x) or (lo is None and hi is None):
        return None  # (numpy decides what two missing bounds mean)
    slo, shi = _scalar(lo), _scalar(hi)
    if (lo is None or slo is not None) and (hi is None or shi is not None):
        return _core.gpu_unary(_GPU_CLIP, x, -np.inf if lo is None else float(np.float32(slo)),
                               np.inf if hi is None else float(np.float32(shi)))
    # array bounds: numpy's clip is minimum(maximum(x, lo), hi), with broadcasting
    y = x
    for bound, op in ((lo, "maximum"), (hi, "minimum")):
        if bound is None:
            continue
        b = np.asarray(bound)
        if b.dtype.kind not in "biuf":
            return None
        bg = to_device(b.astype(np.float32), "gpu")
        y = be._broadcast_binary(_GPU_BINARY[op], op, y, bg)
        if y is None:
            return None
    return y


def _gpu_pad(be, x, pad_width, constant_values):
    if not isinstance(x, _core.GpuArray) or len(x.shape) > _MAX_RANK:
        return None
    cv = np.asarray(constant_values)
    if cv.ndim or cv.dtype.kind not in "biuf":
        return None
    if x.dtype == "float32":
        bits = int(np.float32(cv).view(np.uint32))
    else:
        v = float(cv)
        if v != int(v) or not 0 <= v < 2 ** 32:
            return None
        bits = int(v)
    return _core.gpu_pad(x, [int(lo) for lo, _ in pad_width], [int(hi) for _, hi in pad_width], bits)


def _gpu_concatenate(be, xs, axis):
    if not xs or not _all_gpu(*xs) or any(not _f32gpu(t) for t in xs):
        return None
    nd = len(xs[0].shape)
    if nd > _MAX_RANK:
        return None
    shape = list(xs[0].shape)
    shape[axis] = sum(int(t.shape[axis]) for t in xs)
    out = _core.gpu_zeros(shape)
    cs = _contiguous_strides(shape)
    start = 0
    for t in xs:
        if t.size:
            _core.gpu_scatter(out, t, cs, start * cs[axis])
        start += int(t.shape[axis])
    return out.reshape(tuple(shape))


def _take_key(shape, key):
    """(axis, integer indices normalised to [0, n)) when ``key`` indexes one axis with an
    integer array and takes every other axis whole (take / a nearest resize), else None
    (also for indices out of range: the host raises numpy's IndexError)."""
    ks = key if isinstance(key, tuple) else (key,)
    arrays = [i for i, k in enumerate(ks) if isinstance(k, np.ndarray)]
    if len(arrays) != 1 or len(ks) > len(shape):
        return None
    ax = arrays[0]
    if any(not (isinstance(k, slice) and k == slice(None)) for i, k in enumerate(ks) if i != ax):
        return None
    idx = ks[ax]
    if idx.dtype.kind not in "iu" or not idx.ndim:
        return None
    n = shape[ax]
    idx = idx.astype(np.int64)
    idx = np.where(idx < 0, idx + n, idx)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        return None
    return ax, idx


def _gpu_getitem(be, x, key):
    if not isinstance(x, _core.GpuArray):
        return None
    shape = tuple(x.shape)
    t = _take_key(shape, key)
    if t is None:
        return None
    ax, idx = t
    outer = int(np.prod(shape[:ax], dtype=np.int64))
    inner = int(np.prod(shape[ax + 1:], dtype=np.int64))
    out = shape[:ax] + idx.shape + shape[ax + 1:]
    g = _core.gpu_take(x, to_device(idx.reshape(-1).astype(np.uint32), "gpu"), outer, shape[ax], inner, list(out))
    return g.reshape(out)


def _gpu_scatter_slice(be, g, shape, key):
    if not _f32gpu(g):
        return None
    shape = tuple(shape)
    t = _take_key(shape, key)
    if t is not None:
        ax, idx = t
        flat = idx.reshape(-1)
        order = np.argsort(flat, kind="stable").astype(np.uint32)
        starts = np.searchsorted(flat[order], np.arange(shape[ax] + 1), side="left").astype(np.uint32)
        outer = int(np.prod(shape[:ax], dtype=np.int64))
        inner = int(np.prod(shape[ax + 1:], dtype=np.int64))
        dx = _core.gpu_index_add(g.reshape((outer, flat.size, inner)), to_device(order, "gpu"),
                                 to_device(starts, "gpu"), outer, shape[ax], inner)
        return dx.reshape(shape)
    if _has_advanced(key) or len(shape) > _MAX_RANK:
        return None
    view = _view("getitem", shape, key)
    if view is None:
        return None
    strides, base, vshape = view
    if tuple(vshape) != tuple(g.shape) and int(np.prod(vshape, dtype=np.int64)) != g.size:
        return None
    out = _core.gpu_zeros(list(shape))
    if g.size:
        _core.gpu_scatter(out, g.reshape(tuple(vshape)), strides, base)
    return out.reshape(shape)


def _gpu_cast(be, x, dtype):
    if not isinstance(x, _core.GpuArray):
        return None
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return _core.gpu_unary(_GPU_NONZERO, x)
    if dt == np.float32 or dt.kind == "f" and dt.itemsize < 4:
        return _core.gpu_unary(_GPU_TO_FLOAT, x)  # (a float32 copy; uint32 values converted)
    if dt == np.uint32 and x.dtype == "uint32":
        return _gpu_copy(be, x)
    return None


def _gpu_copy(be, x):
    if not isinstance(x, _core.GpuArray) or len(x.shape) > _MAX_RANK:
        return None
    shape = list(x.shape)
    return _core.gpu_gather(x, _contiguous_strides(shape), 0, shape).reshape(tuple(shape))


def _gpu_logsumexp(be, x, axis, keepdims):
    if not _f32gpu(x) or x.size == 0 or len(x.shape) > _MAX_RANK:
        return None
    m = be.reduce("max", x, axis, True)
    m = _gpu_where(be, _core.gpu_unary(_GPU_UNARY_BOOL["isfinite"], m), m, _core.gpu_zeros([1]).reshape(()))
    if m is None:
        return None
    e = be._broadcast_binary(_GPU_BINARY["subtract"], "subtract", x, m)
    if e is None:
        return None
    s = be.reduce("sum", _core.gpu_unary(_GPU_UNARY["exp"], e), axis, True)
    y = _core.gpu_axpby(_core.gpu_unary(_GPU_UNARY["log"], s), m, 1.0, 1.0)
    if keepdims:
        return y
    axes = _valid_axes(axis, len(x.shape))
    return y.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))


def _gpu_matmul(a, b):
    """numpy's matmul of two float32 GpuArrays (1-D operands, broadcast batch axes) on
    the GPU's GEMM, or None for the host (mismatched sizes: numpy's error)."""
    sa, sb = tuple(a.shape), tuple(b.shape)
    if not sa or not sb:
        return None
    a2 = a.reshape((1,) + sa) if len(sa) == 1 else a
    b2 = b.reshape(sb + (1,)) if len(sb) == 1 else b
    (n, k), (k2, m) = tuple(a2.shape)[-2:], tuple(b2.shape)[-2:]
    if k != k2:
        return None
    ba, bb = tuple(a2.shape)[:-2], tuple(b2.shape)[:-2]
    try:
        batch = tuple(np.broadcast_shapes(ba, bb))
    except ValueError:
        return None
    ia = np.broadcast_to(np.arange(int(np.prod(ba, dtype=np.int64))).reshape(ba), batch).reshape(-1)
    ib = np.broadcast_to(np.arange(int(np.prod(bb, dtype=np.int64))).reshape(bb), batch).reshape(-1)
    y = _core.gpu_matmul(a2, b2, n, k, m, [int(i) for i in ia], [int(i) for i in ib])
    out = batch + (n, m)
    if len(sa) == 1:
        out = out[:-2] + out[-1:]
    if len(sb) == 1:
        out = out[:-1]
    return y.reshape(out)


_GPU_ARRAY_OPS = {
    "where": _gpu_where, "clip": _gpu_clip, "pad": _gpu_pad, "concatenate": _gpu_concatenate,
    "getitem": _gpu_getitem, "scatter_slice": _gpu_scatter_slice, "cast": _gpu_cast, "copy": _gpu_copy,
    "logsumexp": _gpu_logsumexp,
}
