"""Array operations with numpy's (and ``keras.ops``'s) names and meaning, each with its
gradient: elementwise arithmetic and functions, comparisons, reductions, shape and
indexing operations, ``matmul`` and the array constructors."""
from __future__ import annotations

import math

import builtins

import numpy as np

from .. import _checks
from .core import (axes_tuple, axis_index, backend, cast, dtype_arg, float_tensor, is_float, is_weak_scalar,
                   needs_grad, out, record, recording, reserve, same_device, size_of, tensor, tensors, unbroadcast)
from ..tensor import Tensor


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
    """The error function; bool and integer inputs are computed in float64 (as scipy's
    ``special.erf``), float32 on the GPU."""
    x = float_tensor(tensor(x))
    return _unary("erf", x, lambda g, x, y: multiply(g, multiply(exp(negative(square(x))), 2.0 / np.sqrt(np.pi))))


def floor(x):
    return _unary("floor", x, lambda g, x, y: zeros_like(x))


def ceil(x):
    return _unary("ceil", x, lambda g, x, y: zeros_like(x))


def round(x, decimals=0):
    """Round half to even to ``decimals`` places, as numpy: ``rint(x * 10**d) / 10**d``
    (``rint(x / 10**-d) * 10**-d`` for negative ``d``); integers are unchanged for
    ``d >= 0``."""
    decimals = _checks.integer("round", "decimals", decimals, minimum=-2 ** 31, maximum=2 ** 31 - 1)  # a C int
    if decimals == 0:
        return _unary("round", x, lambda g, x, y: zeros_like(x))
    x = tensor(x)
    kind = np.dtype(x.dtype).kind
    if kind not in "iuf":
        raise TypeError(f"round: decimals={decimals} needs an integer or float tensor, got dtype {x.dtype}")
    if kind in "iu":
        if decimals > 0:
            return copy(x)
        f = 10.0 ** -decimals if -decimals < 400 else math.inf
        return cast(multiply(round(divide(x, f)), f), x.dtype)
    if decimals > 0:
        f = 10.0 ** decimals if decimals < 400 else math.inf
        return divide(round(multiply(x, f)), f)
    f = 10.0 ** -decimals if -decimals < 400 else math.inf
    return multiply(round(divide(x, f)), f)


def logical_not(x):
    return _unary("logical_not", x, None)


def isnan(x):
    return _unary("isnan", x, None)


def isfinite(x):
    return _unary("isfinite", x, None)


# ------------------------------------------------------------------ elementwise binary
_COMPARISONS = ("equal", "not_equal", "greater", "greater_equal", "less", "less_equal")


def _exact_int(v):
    """A Python int out of an integer tensor's range, for a comparison (numpy 2 compares
    such ints exactly instead of raising)."""
    for dt in (np.int64, np.uint64):
        if np.iinfo(dt).min <= v <= np.iinfo(dt).max:
            return np.asarray(v, dtype=dt)
    return np.asarray(float(v))


def _operands(a, b, name=None):
    """(a, b) as tensors on one device. A Python number next to an array or tensor is
    weak (numpy 2, NEP 50): it takes the other operand's dtype where its kind allows
    (``float32 - 1e300`` is float32 -inf; ``uint16 + -1`` an OverflowError, except in a
    comparison, which numpy answers exactly)."""
    wa, wb = is_weak_scalar(a), is_weak_scalar(b)
    if wa == wb:
        a, b = tensors(a, b)
        return a, b
    t = tensor(b if wa else a)
    v = a if wa else b
    try:
        s = tensor(v, t)
    except OverflowError:
        if name not in _COMPARISONS or not isinstance(v, int):
            raise
        s = tensor(_exact_int(v), t)
    return (s, t) if wa else (t, s)


def _binary(name, a, b, grad):
    a, b = _operands(a, b, name)
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
    if x1 is None or x2 is None:
        raise ValueError("where: give both x1 and x2, or neither")
    a, b = _operands(x1, x2)
    dev = same_device(condition, x1, x2)
    if is_weak_scalar(x1) and is_weak_scalar(x2) and dev != "cpu":
        # two Python numbers: numpy's dtype for them, on the condition's device
        a, b = (tensor(np.asarray(t.numpy(), dtype=np.float32) if t.dtype == np.float64 else t.numpy(),
                       condition) for t in (a, b))
    c, a, b = tensors(condition, a, b)
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
    """numpy's ``dot``: a product with a 0-d operand is ``multiply``; 1-D and 2-D
    operands (and an N-D one with a 1-D one) are ``matmul``; otherwise the sum over the
    last axis of ``a`` and the second-to-last of ``b``, shape
    ``a.shape[:-1] + b.shape[:-2] + b.shape[-1:]``."""
    a, b = tensors(a, b)
    for t in (a, b):
        if np.dtype(t.dtype).kind not in "biufc":
            raise TypeError(f"dot: expected numeric tensors, got dtype {t.dtype}")
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    if a.ndim == 1 or b.ndim == 1 or (a.ndim == 2 and b.ndim == 2):
        return matmul(a, b)
    k = a.shape[-1]
    if b.shape[-2] != k:
        raise ValueError(f"dot: shapes {a.shape} and {b.shape} are not aligned: {k} (the last axis of a) != "
                         f"{b.shape[-2]} (the second-to-last axis of b)")
    lead_a, lead_b, n = a.shape[:-1], b.shape[:-2], b.shape[-1]
    shape = lead_a + lead_b + (n,)
    size_of("dot", shape)
    p, q = math.prod(lead_a), math.prod(lead_b)
    a2 = reshape(a, (p, k))
    b2 = reshape(moveaxis(b, -2, 0), (k, q * n))
    return reshape(matmul(a2, b2), shape)


# ------------------------------------------------------------------ reductions
def _kept_shape(shape, axes):
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def _reduced_shape(shape, axes, keepdims):
    return _kept_shape(shape, axes) if keepdims else tuple(s for i, s in enumerate(shape) if i not in axes)


def _reduce(name, x, axis, keepdims, grad, scalar_ok=True):
    x = tensor(x)
    axes = tuple(sorted(axes_tuple(name, axis, x.ndim, scalar_ok=scalar_ok)))
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
    return _reduce("mean", x, axis, keepdims, grad, scalar_ok=False)


def _extreme_grad(g, x, y, ax):
    """The gradient of max / min: shared evenly among the tied extremes (TensorFlow's
    rule), the same on every device."""
    hit = cast(equal(x, y), x.dtype)
    count = sum(hit, axis=ax, keepdims=True)
    return multiply(hit, divide(g, count))


def _extreme(name, x, axis, keepdims, initial):
    """max / min, with numpy's ``initial``: the value the reduction starts from (cast
    to ``x``'s dtype, as numpy does), so also the result of an empty reduction."""
    if initial is None:
        return _reduce(name, x, axis, keepdims, _extreme_grad)
    x = tensor(x)
    axes = tuple(sorted(axes_tuple(name, axis, x.ndim, scalar_ok=True)))
    if isinstance(initial, Tensor):
        initial = initial.numpy()
    if np.ndim(initial) != 0:
        raise ValueError(f"{name}: initial must be a scalar, got {initial!r}")
    if np.asarray(initial).dtype.kind not in "biuf":
        raise TypeError(f"{name}: initial must be a number, got {initial!r}")
    init = np.array(initial, dtype=x.dtype)  # an int out of range: numpy's OverflowError; inf / NaN to int too
    if builtins.any(x.shape[a] == 0 for a in axes):
        shape = _reduced_shape(x.shape, axes, keepdims)
        return tensor(np.full(shape, init, dtype=x.dtype), x)
    y = _reduce(name, x, axis, keepdims, _extreme_grad)
    return (maximum if name == "max" else minimum)(y, tensor(init, y))


def max(x, axis=None, keepdims=False, initial=None):
    return _extreme("max", x, axis, keepdims, initial)


def min(x, axis=None, keepdims=False, initial=None):
    return _extreme("min", x, axis, keepdims, initial)


amax, amin = max, min


def prod(x, axis=None, keepdims=False):
    return _reduce("prod", x, axis, keepdims, lambda g, x, y, ax: multiply(broadcast_to(g, x.shape), divide(y, x)))


def any(x, axis=None, keepdims=False):
    return _reduce("any", x, axis, keepdims, None)


def all(x, axis=None, keepdims=False):
    return _reduce("all", x, axis, keepdims, None)


def _one_axis(func, axis, ndim):
    """An ``axis=`` that must be None or one integer (argmax, cumsum): the normalized
    axis, or None; a 0-d tensor accepts 0 and -1 (numpy's rule)."""
    if axis is None:
        return None
    if isinstance(axis, (tuple, list)):
        raise TypeError(f"{func}: axis must be an integer or None, got {axis!r}")
    return axis_index(func, axis, builtins.max(ndim, 1))


def _argreduce(name, x, axis, keepdims):
    x = tensor(x)
    ax = _one_axis(name, axis, x.ndim)
    y = out(backend(x).reduce(name, x._data, ax, bool(keepdims)), x)
    if recording() and is_float(x):
        record(name, (x,), (y,), None)  # no gradient: reaching it is an error
    return y


def argmax(x, axis=None, keepdims=False):
    """Index of the largest value (the first one where several tie)."""
    return _argreduce("argmax", x, axis, keepdims)


def argmin(x, axis=None, keepdims=False):
    return _argreduce("argmin", x, axis, keepdims)


def _real(func, x):
    if np.dtype(x.dtype).kind not in "biuf":
        raise TypeError(f"{func}: expected a real (bool, integer or float) tensor, got dtype {x.dtype}")
    return x


def logsumexp(x, axis=None, keepdims=False):
    """``log(sum(exp(x)))`` computed stably (scipy's ``special.logsumexp``: bool and
    integer inputs in float64, an empty reduction is -inf); its gradient is the softmax."""
    x = float_tensor(_real("logsumexp", tensor(x)))
    axes = tuple(sorted(axes_tuple("logsumexp", axis, x.ndim, scalar_ok=True)))
    if builtins.any(x.shape[a] == 0 for a in axes):
        return tensor(np.full(_reduced_shape(x.shape, axes, keepdims), -np.inf, dtype=x.dtype), x)
    # The kernel scans x for its maximum, then allocates x - max: ask for that first.
    reserve("logsumexp", x.size * np.dtype(x.dtype).itemsize, "a temporary as large as its input")
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
    x = _real("var", tensor(x))
    axes_tuple("var", axis, x.ndim)
    # the mean scans x before x - mean is allocated: ask for that first
    reserve("var", x.size * builtins.max(np.dtype(x.dtype).itemsize, 8 if not is_float(x) else 0),
            "a temporary as large as its input")
    m = mean(x, axis=axis, keepdims=True)
    return mean(square(subtract(x, m)), axis=axis, keepdims=keepdims)


def std(x, axis=None, keepdims=False):
    x = _real("std", tensor(x))
    axes_tuple("std", axis, x.ndim)
    return sqrt(var(x, axis=axis, keepdims=keepdims))


def cumsum(x, axis=None):
    """Cumulative sums along ``axis`` (None: of the flattened tensor)."""
    x = tensor(x)
    ax = _one_axis("cumsum", axis, x.ndim)
    if ax is not None and x.ndim == 0:
        x = reshape(x, (1,))  # numpy: a 0-d input counts as 1-d
    y = out(backend(x).array_op("cumsum", x._data, ax, False), x)
    if recording() and is_float(x):
        def vjp(g):  # the sums from the end, back in x's shape
            r = out(backend(g).array_op("cumsum", g._data, ax, True), g)
            return (reshape(r, x.shape),)
        record("cumsum", (x,), (y,), vjp)
    return y


# ------------------------------------------------------------------ shapes and indexing
def _ints(func, name, value, minimum=None, minus_one=False):
    """A shape-like argument (an int, or a tuple / list / 1-D integer array of ints) as a
    tuple of Python ints, each an integer (bool, float, str, None are a TypeError) >=
    ``minimum`` (``minus_one``: one entry may be -1); else a ValueError."""
    if isinstance(value, Tensor):
        value = value.numpy()
    if isinstance(value, np.ndarray):
        if value.ndim > 1:
            raise ValueError(f"{func}: {name} must be an int or a sequence of ints, got an array of shape "
                             f"{value.shape}")
        if value.dtype.kind not in "iu":
            raise TypeError(f"{func}: {name} must be integers, got dtype {value.dtype}")
        value = value.tolist()
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    lo = -1 if minus_one else minimum
    vals = tuple(_checks.integer(func, name, v, minimum=lo) for v in items)
    if minus_one and vals.count(-1) > 1:
        raise ValueError(f"{func}: {name} {vals} may hold -1 only once")
    return vals


def reshape(x, newshape):
    x = tensor(x)
    newshape = _ints("reshape", "newshape", newshape, minus_one=True)
    known = math.prod(s for s in newshape if s != -1)
    n = x.size
    if (-1 not in newshape and known != n) or (-1 in newshape and (known == 0 or n % known)):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({n} values) into {newshape}")
    if -1 in newshape:
        newshape = tuple(n // known if s == -1 else s for s in newshape)
    if newshape == x.shape:
        return x
    y = out(backend(x).array_op("reshape", x._data, newshape), x)
    if recording() and is_float(x):
        record("reshape", (x,), (y,), lambda g: (reshape(g, x.shape),))
    return y


def _axis_list(value):
    if isinstance(value, Tensor):
        value = value.numpy()
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return value.tolist()
    return list(value) if isinstance(value, (tuple, list)) else [value]


def transpose(x, axes=None):
    x = tensor(x)
    if axes is None:
        perm = tuple(range(x.ndim))[::-1]
    else:
        perm = axes_tuple("transpose", _axis_list(axes), x.ndim)
        if len(perm) != x.ndim:
            raise ValueError(f"transpose: axes {tuple(_axis_list(axes))} do not match a tensor of rank {x.ndim}")
    y = out(backend(x).array_op("transpose", x._data, perm), x)
    if recording() and is_float(x):
        inv = tuple(int(i) for i in np.argsort(perm))
        record("transpose", (x,), (y,), lambda g: (transpose(g, inv),))
    return y


def swapaxes(x, axis1, axis2):
    x = tensor(x)
    a1 = axis_index("swapaxes", axis1, x.ndim, "axis1")
    a2 = axis_index("swapaxes", axis2, x.ndim, "axis2")
    p = list(range(x.ndim))
    p[a1], p[a2] = p[a2], p[a1]
    return transpose(x, p)


def moveaxis(x, source, destination):
    """Move the axes ``source`` (an int or a sequence) to the positions
    ``destination``, the others keeping their order (numpy's ``moveaxis``)."""
    x = tensor(x)
    src = axes_tuple("moveaxis", _axis_list(source), x.ndim, "source")
    dst = axes_tuple("moveaxis", _axis_list(destination), x.ndim, "destination")
    if len(src) != len(dst):
        raise ValueError(f"moveaxis: source {source!r} and destination {destination!r} must name as many axes")
    order = [i for i in range(x.ndim) if i not in src]
    for d, s_ in sorted(zip(dst, src)):
        order.insert(d, s_)
    return transpose(x, order)


def broadcast_to(x, shape):
    x = tensor(x)
    shape = _ints("broadcast_to", "shape", shape, minimum=0)
    if tuple(x.shape) == shape:
        return x
    if len(shape) < x.ndim or builtins.any(s != 1 and s != t for s, t in zip(x.shape[::-1], shape[::-1])):
        raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}")
    size_of("broadcast_to", shape)
    y = out(backend(x).array_op("broadcast_to", x._data, shape), x)
    if recording() and is_float(x):
        record("broadcast_to", (x,), (y,), lambda g: (unbroadcast(g, x.shape),))
    return y


def expand_dims(x, axis):
    """``x`` with a new axis of size 1 at each of ``axis`` (an int or a sequence, in the
    result's numbering)."""
    x = tensor(x)
    items = _axis_list(axis)
    nd = x.ndim + len(items)
    new = axes_tuple("expand_dims", items, nd)
    it = iter(x.shape)
    return reshape(x, tuple(1 if i in new else next(it) for i in range(nd)))


def squeeze(x, axis=None):
    x = tensor(x)
    if axis is None:
        shape = [s for s in x.shape if s != 1]
    else:
        axes = axes_tuple("squeeze", axis, x.ndim, scalar_ok=True)
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"squeeze: axis {a} of shape {x.shape} has size {x.shape[a]}, not 1")
        shape = [s for i, s in enumerate(x.shape) if i not in axes]
    return reshape(x, shape)


def ravel(x):
    return reshape(x, (-1,))


def _sequence(func, xs):
    if isinstance(xs, (str, bytes)) or not hasattr(xs, "__iter__"):
        raise TypeError(f"{func}: expected a sequence of tensors, got {type(xs).__name__}")
    xs = list(xs)
    if not xs:
        raise ValueError(f"{func}: needs at least one tensor")
    return tensors(*xs)


def concatenate(xs, axis=0):
    """Join tensors along ``axis`` (None: their flattened values)."""
    xs = _sequence("concatenate", xs)
    if axis is None:
        xs, axis = [reshape(t, (-1,)) for t in xs], 0
    nd = xs[0].ndim
    if nd == 0:
        raise ValueError("concatenate: 0-d tensors cannot be concatenated")
    ax = axis_index("concatenate", axis, nd)
    for t in xs:
        if t.ndim != nd or builtins.any(a != b for i, (a, b) in enumerate(zip(t.shape, xs[0].shape)) if i != ax):
            raise ValueError(f"concatenate: shapes {[t.shape for t in xs]} differ off axis {ax}")
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
    xs = _sequence("stack", xs)
    if builtins.any(t.shape != xs[0].shape for t in xs):
        raise ValueError(f"stack: every tensor must have the same shape, got {[t.shape for t in xs]}")
    ax = axis_index("stack", axis, xs[0].ndim + 1)
    return concatenate([expand_dims(t, ax) for t in xs], axis=ax)


def split(x, indices_or_sections, axis=0):
    """``x`` cut along ``axis`` into ``indices_or_sections`` equal parts (an int), or at
    the given indices (a sequence, numpy's slicing rules)."""
    x = tensor(x)
    if x.ndim == 0:
        raise ValueError("split: a 0-d tensor cannot be split")
    ax = axis_index("split", axis, x.ndim)
    n = x.shape[ax]
    ios = indices_or_sections
    if isinstance(ios, (np.ndarray, Tensor)) and np.ndim(ios) == 0:
        ios = np.asarray(ios)[()]  # a 0-d array is a count of sections, as in numpy
    if isinstance(ios, (list, tuple, np.ndarray, Tensor)):
        cuts = list(_ints("split", "indices", ios))
    else:
        k = _checks.integer("split", "indices_or_sections", ios, minimum=1)
        if n % k:
            raise ValueError(f"split: axis {ax} of size {n} cannot be split into {k} equal parts")
        reserve("split", k * 256, f"a list of {k} tensors")
        cuts = [n // k * i for i in range(1, k)]
    edges = [0] + cuts + [n]
    return [_getitem(x, tuple(slice(None) if i != ax else slice(a, b) for i in range(x.ndim)))
            for a, b in zip(edges[:-1], edges[1:])]


def pad(x, pad_width, mode="constant", constant_values=0):
    """Pad with ``constant_values`` (mode 'constant'); ``pad_width`` as numpy's (an int,
    a (before, after) pair, or one pair per axis)."""
    if not isinstance(mode, str) or mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    x = tensor(x)
    if isinstance(pad_width, Tensor):
        pad_width = pad_width.numpy()
    try:
        pw = np.asarray(pad_width)
    except (ValueError, TypeError):
        raise ValueError(f"pad: pad_width must be an int or pairs of ints, got {pad_width!r}") from None
    if pw.dtype.kind not in "iu":
        raise TypeError(f"pad: pad_width must be integers, got {pad_width!r}")
    try:
        pw = np.broadcast_to(pw, (x.ndim, 2))
    except ValueError:
        raise ValueError(f"pad: pad_width {pad_width!r} does not fit a tensor of rank {x.ndim} (one (before, after) "
                         "pair per axis)") from None
    pw = [tuple(int(v) for v in r) for r in pw]
    if builtins.any(v < 0 for r in pw for v in r):
        raise ValueError(f"pad: pad widths must be >= 0, got {pad_width!r}")
    size_of("pad", [s + lo + hi for s, (lo, hi) in zip(x.shape, pw)])
    cv = constant_values.numpy() if isinstance(constant_values, Tensor) else constant_values
    try:
        cv_kind = np.asarray(cv).dtype.kind
    except (ValueError, TypeError):
        cv_kind = "O"
    if cv_kind not in "biufc":
        raise TypeError(f"pad: constant_values must be a number, got {constant_values!r}")
    y = out(backend(x).array_op("pad", x._data, pw, cv), x)
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


def _int_indices(func, indices):
    """Indices for take / take_along_axis as an integer array (a bool is 0 / 1, numpy's
    cast; an empty list is empty); any other dtype is a TypeError."""
    idx = np.asarray(_key(indices))
    kind = idx.dtype.kind
    if kind == "b" or (idx.size == 0 and kind == "f"):
        return idx.astype(np.intp)
    if kind not in "iu":
        raise TypeError(f"{func}: indices must be integers, got {indices!r}")
    return idx


def _as_1d_axis(func, x, axis):
    """(x, axis) for take / repeat: numpy treats a 0-d input as 1-d there."""
    if x.ndim == 0:
        axis_index(func, axis, 1)
        return reshape(x, (1,)), 0
    return x, axis_index(func, axis, x.ndim)


def take(x, indices, axis=None):
    x = tensor(x)
    idx = _int_indices("take", indices)
    if axis is None:
        return _getitem(reshape(x, (-1,)), idx)
    x, ax = _as_1d_axis("take", x, axis)
    return _getitem(x, tuple(slice(None) for _ in range(ax)) + (idx,))


def take_along_axis(x, indices, axis):
    """``x`` indexed along ``axis`` by ``indices`` (same rank as ``x``; the other axes
    broadcast, numpy's ``take_along_axis``); ``axis=None`` indexes the flattened ``x``
    with 1-D indices."""
    x = tensor(x)
    idx = _int_indices("take_along_axis", indices)
    if axis is None:
        if idx.ndim != 1:
            raise ValueError(f"take_along_axis: with axis=None the indices must be 1-D, got shape {idx.shape}")
        x, ax = reshape(x, (-1,)), 0
    else:
        if idx.ndim != x.ndim:
            raise ValueError(f"take_along_axis: indices of rank {idx.ndim} for a tensor of rank {x.ndim} (they must "
                             "have the same rank)")
        ax = axis_index("take_along_axis", axis, x.ndim)
    shape = []
    for i, (n, m) in enumerate(zip(x.shape, idx.shape)):
        if i == ax:
            shape.append(m)
        elif n == m or m == 1 or n == 1:
            shape.append(n if m == 1 else m)
        else:
            raise ValueError(f"take_along_axis: indices of shape {idx.shape} do not broadcast with a tensor of "
                             f"shape {x.shape} off axis {ax}")
    size_of("take_along_axis", shape)
    nd = x.ndim
    key = []
    for i in range(nd):
        if i == ax:
            key.append(np.broadcast_to(idx, shape))
        else:
            g = np.arange(shape[i]) if x.shape[i] != 1 else np.zeros(shape[i], dtype=np.intp)
            key.append(g.reshape(tuple(-1 if j == i else 1 for j in range(nd))))
    return _getitem(x, tuple(key))


def tile(x, repeats):
    """``x`` repeated ``repeats`` times along each axis (numpy's ``tile``)."""
    x = tensor(x)
    reps = _ints("tile", "repeats", repeats, minimum=0)
    d = builtins.max(len(reps), x.ndim)
    reps = (1,) * (d - len(reps)) + reps
    shape = (1,) * (d - x.ndim) + x.shape
    final = tuple(r * s for r, s in zip(reps, shape))
    size_of("tile", final)
    if builtins.all(r == 1 for r in reps):
        return reshape(x, shape)
    spread = reshape(x, tuple(v for s in shape for v in (1, s)))
    return reshape(broadcast_to(spread, tuple(v for r, s in zip(reps, shape) for v in (r, s))), final)


def repeat(x, repeats, axis=None):
    """Each element of ``x`` repeated ``repeats`` times along ``axis`` (None: of the
    flattened ``x``); ``repeats`` an int >= 0 or one per element of that axis."""
    x = tensor(x)
    if axis is None:
        x, ax = reshape(x, (-1,)), 0
    else:
        x, ax = _as_1d_axis("repeat", x, axis)
    n = x.shape[ax]
    if isinstance(repeats, Tensor):
        repeats = repeats.numpy()
    if isinstance(repeats, (list, tuple, np.ndarray)):
        r = np.asarray(repeats)
        if r.size == 0 and r.dtype.kind == "f":
            r = r.astype(np.intp)
        if r.dtype.kind not in "iu" or r.ndim > 1:
            raise TypeError(f"repeat: repeats must be an int or a 1-D sequence of ints, got {repeats!r}")
        if r.size not in (1, n):
            raise ValueError(f"repeat: {r.size} repeats for an axis of size {n}")
        counts = [int(v) for v in r.reshape(-1)]
        if builtins.any(v < 0 for v in counts):
            raise ValueError(f"repeat: repeats must be >= 0, got {repeats!r}")
        total = counts[0] * n if len(counts) == 1 else builtins.sum(counts)
        reps = counts[0] if len(counts) == 1 else np.asarray(counts, dtype=np.int64)
    else:
        reps = _checks.integer("repeat", "repeats", repeats, minimum=0)
        total = reps * n
    size_of("repeat", x.shape[:ax] + (total,) + x.shape[ax + 1:])
    idx = np.repeat(np.arange(n), reps)
    return _getitem(x, tuple(slice(None) for _ in range(ax)) + (idx,))


def flip(x, axis=None):
    x = tensor(x)
    ax = tuple(sorted(axes_tuple("flip", axis, x.ndim)))
    y = out(backend(x).array_op("flip", x._data, ax), x)
    if recording() and is_float(x):
        record("flip", (x,), (y,), lambda g: (flip(g, ax),))
    return y


# ------------------------------------------------------------------ constructors
def _device(func, device):
    from ..tensor import _device_name
    return _device_name(device, func)


def _on(a, device):
    from ..tensor import convert_to_tensor
    return convert_to_tensor(a, device=device)


def _new(func, shape, dtype):
    """(shape, dtype) of a new tensor: shape an int or a sequence of ints >= 0 (bool,
    float, None are a TypeError), the element count checked before anything is made."""
    shape = _ints(func, "shape", shape, minimum=0)
    dt = dtype_arg(func, dtype)
    reserve(func, size_of(func, shape) * dt.itemsize, "the result")
    return shape, dt


def zeros(shape, dtype="float32", device=None):
    dev = _device("zeros", device)
    shape, dt = _new("zeros", shape, dtype)
    return _on(np.zeros(shape, dtype=dt), dev)


def ones(shape, dtype="float32", device=None):
    dev = _device("ones", device)
    shape, dt = _new("ones", shape, dtype)
    return _on(np.ones(shape, dtype=dt), dev)


def full(shape, fill_value, dtype=None, device=None):
    dev = _device("full", device)
    shape, dt = _new("full", shape, "float64" if dtype is None else dtype)
    return _on(np.full(shape, _fill("full", fill_value), dtype=None if dtype is None else dt), dev)


def _fill(func, v):
    if isinstance(v, Tensor):
        v = v.numpy()
    try:
        kind = np.asarray(v).dtype.kind
    except (ValueError, TypeError):
        kind = "O"
    if kind in "OV":
        raise TypeError(f"{func}: fill_value must be a number (or an array of them), got {v!r}")
    return v


def _like_dtype(func, x, dtype):
    return x.dtype if dtype is None else dtype_arg(func, dtype)


def _like_result(a, x, dtype):
    """``a`` on ``x``'s device: in ``x``'s dtype as it is; a dtype asked for is kept (so
    float64 on the GPU is its TypeError, as for ``zeros(..., device='gpu')``)."""
    return tensor(a, x) if dtype is None else _on(a, x._device)


def zeros_like(x, dtype=None):
    x = tensor(x)
    dt = _like_dtype("zeros_like", x, dtype)
    if x._device == "gpu" and np.dtype(dt) == np.float32:
        return out(backend(x).zeros(x.shape, dt), x)
    return _like_result(np.zeros(x.shape, dtype=dt), x, dtype)


def ones_like(x, dtype=None):
    x = tensor(x)
    return _like_result(np.ones(x.shape, dtype=_like_dtype("ones_like", x, dtype)), x, dtype)


def full_like(x, fill_value, dtype=None):
    x = tensor(x)
    a = np.full(x.shape, _fill("full_like", fill_value), dtype=_like_dtype("full_like", x, dtype))
    return _like_result(a, x, dtype)


def arange(start, stop=None, step=1, dtype=None):
    """Evenly spaced values in ``[start, stop)`` (numpy's ``arange``): finite real
    numbers (bool is not one), a step other than 0."""
    for name, v in (("start", start), ("stop", stop), ("step", step)):
        if v is not None or name != "stop":
            _checks.real("arange", name, v)
    if step == 0:
        raise ValueError("arange: step must not be 0")
    lo, hi = (0, start) if stop is None else (start, stop)
    n = builtins.max(math.ceil((hi - lo) / step), 0)
    dt = None if dtype is None else dtype_arg("arange", dtype)
    reserve("arange", size_of("arange", (n,)) * (8 if dt is None else dt.itemsize), "the result")
    return tensor(np.arange(start, stop, step, dtype=dt))


def eye(n, m=None, k=0, dtype="float32"):
    n = _checks.integer("eye", "N", n, minimum=0)
    m = n if m is None else _checks.integer("eye", "M", m, minimum=0)
    k = _checks.integer("eye", "k", k)
    dt = dtype_arg("eye", dtype)
    reserve("eye", size_of("eye", (n, m)) * dt.itemsize, "the result")
    return tensor(np.eye(n, m, k, dtype=dt))


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
