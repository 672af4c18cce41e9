"""``convcore.ops``: every computation of the library, with ``keras.ops``'s names and
meaning, on the CPU and the GPU, each differentiable by :class:`convcore.GradientTape`.

An op takes tensors (numpy arrays and numbers are accepted wherever a tensor is) and
returns a :class:`convcore.Tensor` on its inputs' device. Its gradient is written once,
next to it (``ops/numpy.py``, ``ops/nn.py``); ``docs/architecture.md`` says how to add
one.
"""
from __future__ import annotations

import numpy as _np

from . import core
from .core import cast, convert_to_numpy, convert_to_tensor, dtype, is_tensor, shape, stop_gradient
from .numpy import (abs, absolute, add, all, amax, amin, any, arange, argmax, argmin, broadcast_to, ceil, clip,
                    concatenate, copy, cos, count_nonzero, cumsum, divide, dot, equal, erf, exp, expand_dims, expm1,
                    eye, flip, floor, floor_divide, full, full_like, greater, greater_equal, isfinite, isnan, less,
                    less_equal, log, log1p, logical_and, logical_not, logical_or, logsumexp, matmul, max, maximum,
                    mean, min, minimum, mod, moveaxis, multiply, ndim, negative, nonzero, not_equal, ones, ones_like,
                    pad, power, prod, ravel, reciprocal, repeat, reshape, round, sign, sin, size, split, sqrt,
                    square, squeeze, stack, std, subtract, sum, swapaxes, take, take_along_axis, tanh, tile,
                    transpose, true_divide, var, where, zeros, zeros_like, _getitem)
from .nn import (average_pool, batch_normalization, binary_crossentropy, categorical_crossentropy, conv,
                 conv_bias_activation, conv_transpose, dense_bias_activation, depthwise_conv, dropout, elu,
                 fused_batch_norm, fused_loss, gelu, global_pool, hard_sigmoid, leaky_relu, linear, log_softmax,
                 max_pool, moments, one_hot, relu, relu6, selu, sigmoid, silu, softmax, softmax_logits, softplus,
                 sparse_categorical_crossentropy, swish)
from .nn import adaptive_average_pool, adaptive_max_pool, separable_conv
from .nn import tanh as _tanh_native
from . import image
from .image import upsample2d
from ..tensor import Tensor, Variable

# tanh has a native kernel on both devices (the numpy-style one is the generic fallback)
tanh = _tanh_native


def _method(f, a, axis, dtype, out_, keepdims):
    """A reduction as a Tensor method (numpy calls these with dtype= and out=)."""
    if out_ is not None:
        raise TypeError("Tensor reductions do not write into out=")
    r = f(a, axis=axis, keepdims=bool(keepdims))
    return r if dtype is None else cast(r, dtype)


def _compare(f, a, b):
    """Elementwise ``==`` / ``!=``. Where the dtypes cannot be compared (a str tensor
    and a number, say) the answer is unequal everywhere, in the broadcast shape, as
    numpy 2's operators give; an object array is a TypeError as everywhere; anything
    that is no array at all (None, a dict) lets Python try its own comparison."""
    try:
        return f(a, b)
    except TypeError:
        if isinstance(b, _np.ndarray) and b.dtype.kind in "OV":
            raise
        try:
            other = b.shape if isinstance(b, Tensor) else core.as_array(b).shape
        except (TypeError, ValueError):
            return NotImplemented
        shape = _np.broadcast_shapes(a.shape, other)  # shapes that do not broadcast: ValueError
        return full_like(zeros(shape, dtype=bool, device=a.device), f is not_equal, dtype=bool)


def _install_operators():
    """Tensor arithmetic, comparison and indexing are these ops."""
    T = Tensor
    T.__add__ = lambda a, b: add(a, b)
    T.__radd__ = lambda a, b: add(b, a)
    T.__sub__ = lambda a, b: subtract(a, b)
    T.__rsub__ = lambda a, b: subtract(b, a)
    T.__mul__ = lambda a, b: multiply(a, b)
    T.__rmul__ = lambda a, b: multiply(b, a)
    T.__truediv__ = lambda a, b: divide(a, b)
    T.__rtruediv__ = lambda a, b: divide(b, a)
    T.__floordiv__ = lambda a, b: floor_divide(a, b)
    T.__mod__ = lambda a, b: mod(a, b)
    T.__pow__ = lambda a, b: power(a, b)
    T.__rpow__ = lambda a, b: power(b, a)
    T.__matmul__ = lambda a, b: matmul(a, b)
    T.__rmatmul__ = lambda a, b: matmul(b, a)
    T.__neg__ = lambda a: negative(a)
    T.__pos__ = lambda a: a
    T.__abs__ = lambda a: abs(a)
    T.__eq__ = lambda a, b: _compare(equal, a, b)
    T.__ne__ = lambda a, b: _compare(not_equal, a, b)
    T.__lt__ = lambda a, b: less(a, b)
    T.__le__ = lambda a, b: less_equal(a, b)
    T.__gt__ = lambda a, b: greater(a, b)
    T.__ge__ = lambda a, b: greater_equal(a, b)
    T.__and__ = lambda a, b: logical_and(a, b)
    T.__or__ = lambda a, b: logical_or(a, b)
    T.__invert__ = lambda a: logical_not(a)
    T.__getitem__ = lambda a, key: _getitem(a, key)
    T.reshape = lambda a, *shape: reshape(a, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)
    T.astype = lambda a, dt: cast(a, dt)
    T.T = property(lambda a: transpose(a))
    T.sum = lambda a, axis=None, dtype=None, out=None, keepdims=False, **kw: _method(sum, a, axis, dtype, out, keepdims)
    T.mean = lambda a, axis=None, dtype=None, out=None, keepdims=False, **kw: _method(mean, a, axis, dtype, out, keepdims)
    T.max = lambda a, axis=None, dtype=None, out=None, keepdims=False, **kw: _method(max, a, axis, dtype, out, keepdims)
    T.min = lambda a, axis=None, dtype=None, out=None, keepdims=False, **kw: _method(min, a, axis, dtype, out, keepdims)
    T.all = lambda a, axis=None, dtype=None, out=None, keepdims=False, **kw: _method(all, a, axis, dtype, out, keepdims)
    T.any = lambda a, axis=None, dtype=None, out=None, keepdims=False, **kw: _method(any, a, axis, dtype, out, keepdims)
    T.transpose = lambda a, *axes: transpose(a, axes[0] if len(axes) == 1 and not isinstance(axes[0], int)
                                             else (axes or None))
    T.flatten = lambda a: reshape(a, (-1,))
    T.ravel = lambda a: reshape(a, (-1,))
    T.squeeze = lambda a, axis=None: squeeze(a, axis)
    T.argmax = lambda a, axis=None, keepdims=False: argmax(a, axis=axis, keepdims=keepdims)
    T.argmin = lambda a, axis=None, keepdims=False: argmin(a, axis=axis, keepdims=keepdims)
    T.clip = lambda a, min=None, max=None: clip(a, min, max)
    T.copy = lambda a: copy(a)
    T.std = lambda a, axis=None, keepdims=False: std(a, axis=axis, keepdims=keepdims)
    T.var = lambda a, axis=None, keepdims=False: var(a, axis=axis, keepdims=keepdims)
    T.prod = lambda a, axis=None, keepdims=False: prod(a, axis=axis, keepdims=keepdims)


_install_operators()
