"""Array operations with numpy's (and ``keras.ops``'s) names and meaning, each with its
gradient: elementwise arithmetic and functions, comparisons, reductions, shape and
indexing operations, ``matmul`` and the array constructors."""
from __future__ import annotations

import math

import builtins

import numpy as np

from .core import (backend, cast, is_float, needs_grad, out, record, recording, same_device, tensor, tensors,
                   unbroadcast)
from ..tensor import Tensor

_SC = (int, float, np.integer, np.floating)


# ------------------------------------------------------------------ elementwise unary
def _unary(name, x, grad):
    x = tensor(x)
    y = out(backend(x).unary(name, x._data), x)
    if grad is not None and recording() and is_float(x):
        record(name, (x,), (y,), lambda g: (grad(g, x, y),))
    return y


def negative(x):
    return _unary("negative", x, lambda g, x, y: negative(g))


def exp(x):
    return _unary("exp", x, lambda g, x, y: multiply(g, y))


def log(x):
    return _unary("log", x, lambda g, x, y: divide(g, x))


def log1p(x):
    return _unary("log1p", x, lambda g, x, y: divide(g, add(x, 1.0)))


def expm1(x):
    return _unary("expm1", x, lambda g, x, y: multiply(g, add(y, 1.0)))


def sqrt(x):
    return _unary("sqrt", x, lambda g, x, y: divide(multiply(g, 0.5), y))


def square(x):
    return _unary("square", x, lambda g, x, y: multiply(g, multiply(x, 2.0)))


def reciprocal(x):
    return _unary("reciprocal", x, lambda g, x, y: negative(multiply(g, square(y))))


def abs(x):
    return _unary("abs", x, lambda g, x, y: multiply(g, sign(x)))


absolute = abs


def sign(x):
    return _unary("sign", x, lambda g, x, y: zeros_like(x))


def sin(x):
    return _unary("sin", x, lambda g, x, y: multiply(g, cos(x)))


def cos(x):
    return _unary("cos", x, lambda g, x, y: negative(multiply(g, sin(x))))


def tanh(x):
    return _unary("tanh", x, lambda g, x, y: multiply(g, subtract(1.0, square(y))))


def erf(x):
    return _unary("erf", x, lambda g, x, y: multiply(g, multiply(exp(negative(square(x))), 2.0 / np.sqrt(np.pi))))


def floor(x):
    return _unary("floor", x, lambda g, x, y: zeros_like(x))


def ceil(x):
    return _unary("ceil", x, lambda g, x, y: zeros_like(x))


def round(x, decimals=0):
    if decimals:
        raise ValueError("round: only decimals=0 is supported")
    return _unary("round", x, lambda g, x, y: zeros_like(x))


def logical_not(x):
    return _unary("logical_not", x, None)


def isnan(x):
    return _unary("isnan", x, None)


def isfinite(x):
    return _unary("isfinite", x, None)


# ------------------------------------------------------------------ elementwise binary
def _operands(a, b):
    """(a, b) as tensors on one device; a Python number stays a number (kept in the
    other operand's dtype by the backend)."""
    if isinstance(a, _SC) and not isinstance(a, bool) and isinstance(b, Tensor):
        return tensor(a, b), b
    if isinstance(b, _SC) and not isinstance(b, bool) and isinstance(a, Tensor):
        return a, tensor(b, a)
    a, b = tensors(a, b)
    return a, b


def _binary(name, a, b, grad):
    a, b = _operands(a, b)
    y = out(backend(a).binary(name, a._data, b._data), a)
    if grad is not None and recording() and (is_float(a) or is_float(b)):
        def vjp(g):
            ga, gb = grad(g, a, b, y)
            return (None if ga is None else unbroadcast(ga, a.shape), None if gb is None else unbroadcast(gb, b.shape))
        record(name, (a, b), (y,), vjp)
    return y


def add(a, b):
    return _binary("add", a, b, lambda g, a, b, y: (g, g))


def subtract(a, b):
    return _binary("subtract", a, b, lambda g, a, b, y: (g, negative(g)))


def multiply(a, b):
    return _binary("multiply", a, b, lambda g, a, b, y: (multiply(g, b), multiply(g, a)))


def divide(a, b):
    return _binary("divide", a, b, lambda g, a, b, y: (divide(g, b), negative(multiply(g, divide(y, b)))))


true_divide = divide


def power(a, b):
    def grad(g, a, b, y):
        ga = multiply(g, multiply(b, power(a, subtract(b, 1.0))))
        safe = where(greater(a, 0), a, ones_like(a))  # d(a^b)/db = a^b log a, 0 where a <= 0
        gb = multiply(g, where(greater(a, 0), multiply(y, log(safe)), zeros_like(y)))
        return ga, gb
    return _binary("power", a, b, grad)


def maximum(a, b):
    """Elementwise maximum; where they tie the gradient goes to ``a`` (TensorFlow's rule)."""
    def grad(g, a, b, y):
        m = greater_equal(a, b)
        return where(m, g, zeros_like(g)), where(m, zeros_like(g), g)
    return _binary("maximum", a, b, grad)


def minimum(a, b):
    """Elementwise minimum; where they tie the gradient goes to ``a``."""
    def grad(g, a, b, y):
        m = less_equal(a, b)
        return where(m, g, zeros_like(g)), where(m, zeros_like(g), g)
    return _binary("minimum", a, b, grad)


def floor_divide(a, b):
    return _binary("floor_divide", a, b, None)


def mod(a, b):
    return _binary("mod", a, b, None)


def equal(a, b):
    return _binary("equal", a, b, None)


def not_equal(a, b):
    return _binary("not_equal", a, b, None)


def greater(a, b):
    return _binary("greater", a, b, None)


def greater_equal(a, b):
    return _binary("greater_equal", a, b, None)


def less(a, b):
    return _binary("less", a, b, None)


def less_equal(a, b):
    return _binary("less_equal", a, b, None)


def logical_and(a, b):
    return _binary("logical_and", a, b, None)


def logical_or(a, b):
    return _binary("logical_or", a, b, None)


def where(condition, x1=None, x2=None):
    """``x1`` where ``condition`` holds, else ``x2`` (broadcast)."""
    if x1 is None and x2 is None:
        return nonzero(condition)
    c = tensor(condition) if not isinstance(condition, Tensor) else condition
    a, b = _operands(x1, x2)
    c, a, b = tensors(c, a, b)
    y = out(backend(a).array_op("where", c._data, a._data, b._data), a)
    if recording() and (is_float(a) or is_float(b)):
        def vjp(g):
            z = zeros_like(g)
            return (None, unbroadcast(where(c, g, z), a.shape), unbroadcast(where(c, z, g), b.shape))
        record("where", (c, a, b), (y,), vjp)
    return y


def nonzero(x):
    x = tensor(x)
    return tuple(tensor(i) for i in np.nonzero(x.numpy()))


def clip(x, x_min, x_max):
    """``x`` limited to ``[x_min, x_max]``; the gradient passes where ``x`` is inside."""
    x = tensor(x)
    y = out(backend(x).array_op("clip", x._data, _raw(x_min), _raw(x_max)), x)
    if recording() and is_float(x):
        def vjp(g):
            inside = ones_like(x, dtype=bool)
            if x_min is not None:
                inside = logical_and(inside, greater_equal(x, x_min))
            if x_max is not None:
                inside = logical_and(inside, less_equal(x, x_max))
            return (where(inside, g, zeros_like(g)),)
        record("clip", (x,), (y,), vjp)
    return y


def _raw(v):
    return v.numpy() if isinstance(v, Tensor) else v


def matmul(a, b):
    """Matrix product with numpy's rules (1-D operands, broadcast batch axes)."""
    a, b = tensors(a, b)
    y = out(backend(a).binary("matmul", a._data, b._data), a)
    if recording() and (is_float(a) or is_float(b)):
        def vjp(g):
            if a.ndim == 1 and b.ndim == 1:  # a dot product: g is a scalar
                return multiply(g, b), multiply(g, a)
            a1 = a if a.ndim > 1 else reshape(a, (1, -1))
            b1 = b if b.ndim > 1 else reshape(b, (-1, 1))
            g1 = expand_dims(g, -2) if a.ndim == 1 else (expand_dims(g, -1) if b.ndim == 1 else g)
            ga = unbroadcast(matmul(g1, swapaxes(b1, -1, -2)), a1.shape)
            gb = unbroadcast(matmul(swapaxes(a1, -1, -2), g1), b1.shape)
            return reshape(ga, a.shape), reshape(gb, b.shape)
        record("matmul", (a, b), (y,), vjp)
    return y


def dot(a, b):
    return matmul(a, b)


# ------------------------------------------------------------------ reductions
def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    ax = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out_ = []
    for a in ax:
        a = int(a)
        if not -ndim <= a < builtins.max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor of rank {ndim}")
        out_.append(a % ndim if ndim else 0)
    return tuple(sorted(set(out_)))


def _kept_shape(shape, axes):
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _reduce(name, x, axis, keepdims, grad):
    x = tensor(x)
    axes = _axes(axis, x.ndim)
    ax = axes if axis is not None else None
    y = out(backend(x).reduce(name, x._data, ax, bool(keepdims)), x)
    if grad is not None and recording() and is_float(x):
        def vjp(g):
            kept = _kept_shape(x.shape, axes)
            yk = y if keepdims else reshape(y, kept)
            gk = g if keepdims else reshape(g, kept)
            return (grad(gk, x, yk, axes),)
        record(name, (x,), (y,), vjp)
    return y


def sum(x, axis=None, keepdims=False):
    return _reduce("sum", x, axis, keepdims, lambda g, x, y, ax: broadcast_to(g, x.shape))


def mean(x, axis=None, keepdims=False):
    def grad(g, x, y, ax):
        n = int(np.prod([x.shape[a] for a in ax], dtype=np.int64)) if ax else 1
        return broadcast_to(multiply(g, 1.0 / builtins.max(n, 1)), x.shape)
    return _reduce("mean", x, axis, keepdims, grad)


def _extreme_grad(g, x, y, ax):
    """The gradient of max / min: shared evenly among the tied extremes (TensorFlow's
    rule), the same on every device."""
    hit = cast(equal(x, y), x.dtype)
    count = sum(hit, axis=ax, keepdims=True)
    return multiply(hit, divide(g, count))


def max(x, axis=None, keepdims=False, initial=None):
    return _reduce("max", x, axis, keepdims, _extreme_grad)


def min(x, axis=None, keepdims=False, initial=None):
    return _reduce("min", x, axis, keepdims, _extreme_grad)


amax, amin = max, min


def prod(x, axis=None, keepdims=False):
    return _reduce("prod", x, axis, keepdims, lambda g, x, y, ax: multiply(broadcast_to(g, x.shape), divide(y, x)))


def any(x, axis=None, keepdims=False):
    return _reduce("any", x, axis, keepdims, None)


def all(x, axis=None, keepdims=False):
    return _reduce("all", x, axis, keepdims, None)


def _argreduce(name, x, axis, keepdims):
    x = tensor(x)
    if axis is not None:
        _axes(axis, x.ndim)
    y = out(backend(x).reduce(name, x._data, axis, bool(keepdims)), x)
    if recording() and is_float(x):
        record(name, (x,), (y,), None)  # no gradient: reaching it is an error
    return y


def argmax(x, axis=None, keepdims=False):
    """Index of the largest value (the first one where several tie)."""
    return _argreduce("argmax", x, axis, keepdims)


def argmin(x, axis=None, keepdims=False):
    return _argreduce("argmin", x, axis, keepdims)


def logsumexp(x, axis=None, keepdims=False):
    """``log(sum(exp(x)))`` computed stably; its gradient is the softmax."""
    x = tensor(x)
    axes = _axes(axis, x.ndim)
    ax = axes if axis is not None else None
    y = out(backend(x).array_op("logsumexp", x._data, ax, bool(keepdims)), x)
    if recording() and is_float(x):
        def vjp(g):
            kept = _kept_shape(x.shape, axes)
            yk = y if keepdims else reshape(y, kept)
            gk = g if keepdims else reshape(g, kept)
            return (multiply(broadcast_to(gk, x.shape), exp(subtract(x, yk))),)
        record("logsumexp", (x,), (y,), vjp)
    return y


def var(x, axis=None, keepdims=False):
    m = mean(x, axis=axis, keepdims=True)
    return mean(square(subtract(x, m)), axis=axis, keepdims=keepdims)


def std(x, axis=None, keepdims=False):
    return sqrt(var(x, axis=axis, keepdims=keepdims))


def cumsum(x, axis=None):
    x = tensor(x)
    y = out(backend(x).array_op("cumsum", x._data, axis, False), x)
    if recording() and is_float(x):
        def vjp(g):  # the sums from the end, back in x's shape
            r = out(backend(g).array_op("cumsum", g._data, axis, True), g)
            return (reshape(r, x.shape),)
        record("cumsum", (x,), (y,), vjp)
    return y


# ------------------------------------------------------------------ shapes and indexing
def reshape(x, newshape):
    x = tensor(x)
    newshape = (int(newshape),) if isinstance(newshape, (int, np.integer)) else tuple(int(s) for s in newshape)
    if builtins.any(s < -1 for s in newshape):
        raise ValueError(f"reshape: sizes must be >= 0 (or one -1), got {newshape}")
    known = math.prod(s for s in newshape if s != -1)
    n = x.size
    if newshape.count(-1) > 1 or (-1 not in newshape and known != n) or (-1 in newshape and (known == 0 or n % known)):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({n} values) into {newshape}")
    if -1 in newshape:
        newshape = tuple(n // known if s == -1 else s for s in newshape)
    if newshape == x.shape:
        return x
    y = out(backend(x).array_op("reshape", x._data, newshape), x)
    if recording() and is_float(x):
        record("reshape", (x,), (y,), lambda g: (reshape(g, x.shape),))
    return y


def transpose(x, axes=None):
    x = tensor(x)
    axes = tuple(range(x.ndim))[::-1] if axes is None else tuple(int(a) % builtins.max(x.ndim, 1) for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {x.ndim} axes of shape {x.shape}")
    y = out(backend(x).array_op("transpose", x._data, axes), x)
    if recording() and is_float(x):
        inv = tuple(int(i) for i in np.argsort(axes))
        record("transpose", (x,), (y,), lambda g: (transpose(g, inv),))
    return y


def swapaxes(x, axis1, axis2):
    x = tensor(x)
    p = list(range(x.ndim))
    a1, a2 = axis1 % x.ndim, axis2 % x.ndim
    p[a1], p[a2] = p[a2], p[a1]
    return transpose(x, p)


def moveaxis(x, source, destination):
    x = tensor(x)
    order = [i for i in range(x.ndim) if i != source % x.ndim]
    order.insert(destination % x.ndim, source % x.ndim)
    return transpose(x, order)


def broadcast_to(x, shape):
    x = tensor(x)
    shape = tuple(int(s) for s in shape)
    if tuple(x.shape) == shape:
        return x
    try:
        np.broadcast_shapes(x.shape, shape)
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}") from None
    y = out(backend(x).array_op("broadcast_to", x._data, shape), x)
    if recording() and is_float(x):
        record("broadcast_to", (x,), (y,), lambda g: (unbroadcast(g, x.shape),))
    return y


def expand_dims(x, axis):
    x = tensor(x)
    nd = x.ndim + 1
    a = axis % nd if -nd <= axis < nd else None
    if a is None:
        raise ValueError(f"expand_dims: axis {axis} is out of range for a result of rank {nd}")
    shape = list(x.shape)
    shape.insert(a, 1)
    return reshape(x, shape)


def squeeze(x, axis=None):
    x = tensor(x)
    if axis is None:
        shape = [s for s in x.shape if s != 1]
    else:
        axes = _axes(axis, x.ndim)
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"squeeze: axis {a} of shape {x.shape} has size {x.shape[a]}, not 1")
        shape = [s for i, s in enumerate(x.shape) if i not in axes]
    return reshape(x, shape)


def ravel(x):
    return reshape(x, (-1,))


def concatenate(xs, axis=0):
    xs = tensors(*xs)
    if not xs:
        raise ValueError("concatenate: needs at least one tensor")
    nd = xs[0].ndim
    ax = axis % nd if nd else 0
    for t in xs:
        if t.ndim != nd or builtins.any(a != b for i, (a, b) in enumerate(zip(t.shape, xs[0].shape)) if i != ax):
            raise ValueError(f"concatenate: shapes {[t.shape for t in xs]} differ off axis {axis}")
    y = out(backend(xs[0]).array_op("concatenate", [t._data for t in xs], ax), xs[0])
    if recording() and builtins.any(is_float(t) for t in xs):
        sizes = [t.shape[ax] for t in xs]

        def vjp(g):
            res, s = [], 0
            for w in sizes:
                key = tuple(slice(None) if i != ax else slice(s, s + w) for i in range(nd))
                res.append(_getitem(g, key))
                s += w
            return tuple(res)
        record("concatenate", tuple(xs), (y,), vjp)
    return y


def stack(xs, axis=0):
    xs = tensors(*xs)
    return concatenate([expand_dims(t, axis) for t in xs], axis=axis)


def split(x, indices_or_sections, axis=0):
    x = tensor(x)
    ax = axis % x.ndim
    n = x.shape[ax]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k < 1 or n % k:
            raise ValueError(f"split: axis {axis} of size {n} cannot be split into {k} equal parts")
        cuts = [n // k * i for i in range(1, k)]
    else:
        cuts = [int(c) for c in indices_or_sections]
    edges = [0] + cuts + [n]
    return [_getitem(x, tuple(slice(None) if i != ax else slice(a, b) for i in range(x.ndim)))
            for a, b in zip(edges[:-1], edges[1:])]


def pad(x, pad_width, mode="constant", constant_values=0):
    """Pad with ``constant_values`` (mode 'constant'); ``pad_width`` as numpy's."""
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    x = tensor(x)
    pw = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))
    if (pw < 0).any():
        raise ValueError(f"pad: pad widths must be >= 0, got {pad_width!r}")
    pw = [tuple(int(v) for v in r) for r in pw]
    y = out(backend(x).array_op("pad", x._data, pw, constant_values), x)
    if recording() and is_float(x):
        key = tuple(slice(lo, lo + s) for (lo, _), s in zip(pw, x.shape))
        record("pad", (x,), (y,), lambda g: (_getitem(g, key),))
    return y


def _key(key):
    if isinstance(key, tuple):
        return tuple(_key(k) for k in key)
    if isinstance(key, Tensor):
        return key.numpy()
    if isinstance(key, list):
        return np.asarray(key)
    return key


def _getitem(x, key):
    x = tensor(x)
    key = _key(key)
    y = out(backend(x).array_op("getitem", x._data, key), x)
    if recording() and is_float(x):
        record("getitem", (x,), (y,), lambda g: (out(backend(g).array_op("scatter_slice", g._data, x.shape, key), g),))
    return y


def take(x, indices, axis=None):
    x = tensor(x)
    idx = np.asarray(_key(indices))
    if axis is None:
        return _getitem(reshape(x, (-1,)), idx)
    ax = axis % x.ndim
    return _getitem(x, tuple(slice(None) for _ in range(ax)) + (idx,))


def take_along_axis(x, indices, axis):
    x = tensor(x)
    idx = np.asarray(_key(indices))
    ax = axis % x.ndim
    grids = np.indices(idx.shape, sparse=True)
    key = tuple(idx if i == ax else np.broadcast_to(grids[i], idx.shape) for i in range(x.ndim))
    return _getitem(x, key)


def tile(x, repeats):
    x = tensor(x)
    reps = (repeats,) if isinstance(repeats, int) else tuple(repeats)
    reps = (1,) * (x.ndim - len(reps)) + reps
    xs = reshape(x, (1,) * (len(reps) - x.ndim) + x.shape)
    for i, r in enumerate(reps):
        if r != 1:
            xs = concatenate([xs] * r, axis=i)
    return xs


def repeat(x, repeats, axis=None):
    x = tensor(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    ax = axis % x.ndim
    idx = np.repeat(np.arange(x.shape[ax]), repeats)
    return _getitem(x, tuple(slice(None) for _ in range(ax)) + (idx,))


def flip(x, axis=None):
    x = tensor(x)
    ax = tuple(range(x.ndim)) if axis is None else _axes(axis, x.ndim)
    y = out(backend(x).array_op("flip", x._data, ax), x)
    if recording() and is_float(x):
        record("flip", (x,), (y,), lambda g: (flip(g, ax),))
    return y


# ------------------------------------------------------------------ constructors
def _on(a, device):
    from ..tensor import convert_to_tensor
    from .. import device as _d
    return convert_to_tensor(a, device=None if device is None else _d.resolve(device, "ops"))


def zeros(shape, dtype="float32", device=None):
    return _on(np.zeros(shape, dtype=dtype), device)


def ones(shape, dtype="float32", device=None):
    return _on(np.ones(shape, dtype=dtype), device)


def full(shape, fill_value, dtype=None, device=None):
    return _on(np.full(shape, fill_value, dtype=dtype), device)


def zeros_like(x, dtype=None):
    x = tensor(x)
    dt = dtype or x.dtype
    if x._device == "gpu" and np.dtype(dt) == np.float32:
        return out(backend(x).zeros(x.shape, dt), x)
    return tensor(np.zeros(x.shape, dtype=dt), x)


def ones_like(x, dtype=None):
    x = tensor(x)
    return tensor(np.ones(x.shape, dtype=dtype or x.dtype), x)


def full_like(x, fill_value, dtype=None):
    x = tensor(x)
    return tensor(np.full(x.shape, fill_value, dtype=dtype or x.dtype), x)


def arange(start, stop=None, step=1, dtype=None):
    return tensor(np.arange(start, stop, step, dtype=dtype))


def eye(n, m=None, k=0, dtype="float32"):
    return tensor(np.eye(n, m, k, dtype=dtype))


def copy(x):
    x = tensor(x)
    y = out(backend(x).array_op("copy", x._data), x)
    if recording() and is_float(x):
        record("copy", (x,), (y,), lambda g: (g,))
    return y


def size(x):
    return tensor(x).size


def ndim(x):
    return tensor(x).ndim


def count_nonzero(x, axis=None):
    return sum(cast(not_equal(x, 0), "int64"), axis=axis)
