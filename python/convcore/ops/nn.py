"""Neural-network operations with ``keras.ops``'s names and meaning, each with its
gradient: activations, convolutions, pooling, normalization, dropout, one-hot and the
cross-entropies. Tensors are channels-last, as in Keras.

The fused operations that make training fast are ops too, with a gradient from a
dedicated backward kernel: convolution + bias + activation (:func:`conv_bias_activation`),
dense + bias + activation (:func:`dense_bias_activation`), pooling that keeps its argmax,
training-mode batch normalization (:func:`fused_batch_norm`) and the mean loss of a batch
with its gradient (:func:`fused_loss`). A softmax output remembers its logits, so a
cross-entropy on it is computed from the logits (stable, and one kernel).

Inputs are real: bool and integer tensors are computed in float32 (Keras's floatx), as
are float16 inputs of the ops with a native kernel (activations, convolution, dense,
pooling, batch normalization, dropout, upsampling, the fused loss); complex, datetime,
string and object inputs are a TypeError. Scalar arguments (axes, rates, epsilons,
sizes, class counts, seeds) are checked: a bool, a string or a fraction where an integer
belongs is a TypeError, a value out of range a ValueError.
"""
from __future__ import annotations

import math as _math
import os as _os

import numpy as np

from .. import _checks, _core
from .core import backend, cast, is_float, needs_grad, out, record, recording, tensor, tensors
from .numpy import (abs, add, expm1, clip, divide, equal, exp, expand_dims, greater, log, log1p, logsumexp, maximum,
                    mean, minimum, multiply, negative, reshape, sqrt, square, subtract, sum, tanh as _tanh_np,
                    transpose, where, zeros_like, erf, concatenate)
from ..tensor import Tensor

NATIVE_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh", "softmax")


# ------------------------------------------------------------------ argument checks
def _real(func, x, native=False):
    """``x`` (a Tensor) in a real float dtype: floats as they are (float16 in float32 where
    ``native``: the kernels compute in float32 / float64), bool and integers in float32;
    any other dtype is a TypeError."""
    kind = np.dtype(x.dtype).kind
    if kind == "f":
        return cast(x, "float32") if native and np.dtype(x.dtype).itemsize < 4 else x
    if kind in "biu":
        return cast(x, "float32")
    raise TypeError(f"{func}: expected a real (bool, integer or float) tensor, got dtype {x.dtype}")


def _reals(func, *xs, native=False):
    """The non-None ``xs`` as Tensors on one device, each through :func:`_real`."""
    given = [x for x in xs if x is not None]
    ts = iter(tensors(*given)) if given else iter(())
    return [None if x is None else _real(func, next(ts), native) for x in xs]


def _axis(func, axis, ndim):
    """An axis of a tensor of rank ``ndim`` (an integer in [-ndim, ndim)), normalized."""
    a = _checks.integer(func, "axis", axis)
    if not -ndim <= a < ndim:
        raise ValueError(f"{func}: axis {a} is out of range for a tensor of rank {ndim}")
    return a % ndim


def _axes_arg(func, axes, ndim):
    """Distinct axes (an integer or a sequence of them) of a tensor of rank ``ndim``."""
    items = (axes,) if isinstance(axes, (int, np.integer)) or isinstance(axes, (bool, np.bool_)) else axes
    try:
        items = tuple(items)
    except TypeError:
        raise TypeError(f"{func}: axes must be an integer or a sequence of integers, got {axes!r}") from None
    out_ = tuple(_axis(func, a, ndim) for a in items)
    if len(set(out_)) != len(out_):
        raise ValueError(f"{func}: repeated axis in {axes!r}")
    return out_


# ------------------------------------------------------------------ activations
def _native_activation(name, x):
    """An activation with a Rust / WGSL kernel, forward and backward, on the last axis
    (a float16 input is computed in float32 and the result given back in float16)."""
    x0 = tensor(x)
    x = _real(name, x0, native=True)
    y = out(backend(x).activation(name, x._data), x)
    if recording() and is_float(x):
        def vjp(g):
            return (out(backend(g).activation_backward(name, x._data, y._data, g._data), g),)
        record(name, (x,), (y,), vjp)
    half = np.dtype(x0.dtype).kind == "f" and np.dtype(x0.dtype).itemsize == 2
    return cast(y, np.float16) if half else y


def relu(x):
    return _native_activation("relu", x)


def sigmoid(x):
    return _native_activation("sigmoid", x)


def tanh(x):
    """``ops.tanh`` (numpy's): the native kernel for float32 / float64, numpy's rule for
    other dtypes (bool and small integers in float16, complex as complex)."""
    x = tensor(x)
    if np.dtype(x.dtype) not in (np.float32, np.float64):
        return _tanh_np(x)
    return _native_activation("tanh", x)


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` over ``axis``; the result remembers ``x`` as its logits."""
    x0 = tensor(x)
    x = _real("softmax", x0)
    if x.ndim == 0:
        raise ValueError("softmax: needs a tensor with at least one axis, got a scalar")
    ax = _axis("softmax", axis, x.ndim)
    if ax == x.ndim - 1:
        y = _native_activation("softmax", x)
    else:
        _check_fits("softmax", x)
        e = exp(subtract(x, _stop(logsumexp(x, axis=ax, keepdims=True))))
        y = divide(e, sum(e, axis=ax, keepdims=True))
    y._keras_logits = (x0, axis)
    return y


def softmax_logits(y):
    """The logits a softmax output ``y`` was computed from (a convcore extension: the
    pre-softmax scores saliency maps and fused cross-entropies use), or None."""
    link = getattr(y, "_keras_logits", None)
    return None if link is None else link[0]


def _stop(t):
    return Tensor(t._data, t._device)


def log_softmax(x, axis=-1):
    """``x - max - log(sum(exp(x - max)))`` along ``axis``, as jax / PyTorch compute it
    (a row holding +inf or NaN is NaN throughout, as there)."""
    x = _real("log_softmax", tensor(x))
    if x.ndim == 0:
        raise ValueError("log_softmax: needs a tensor with at least one axis, got a scalar")
    axis = _axis("log_softmax", axis, x.ndim)
    _check_fits("log_softmax", x)
    from .numpy import max as _max, sum as _sum
    from .core import stop_gradient
    shifted = subtract(x, stop_gradient(_max(x, axis=axis, keepdims=True)))
    return subtract(shifted, log(_sum(exp(shifted), axis=axis, keepdims=True)))


def softplus(x):
    x = _real("softplus", tensor(x))
    return add(relu(x), log1p(exp(negative(abs(x)))))


def silu(x):
    x = _real("silu", tensor(x))
    return multiply(x, sigmoid(x))


swish = silu


def gelu(x, approximate=True):
    """Gaussian error linear unit (Keras's default ``approximate=True``: the tanh form)."""
    x = _real("gelu", tensor(x))
    if approximate:
        c = float(np.sqrt(2.0 / np.pi))
        inner = multiply(add(x, multiply(multiply(square(x), x), 0.044715)), c)
        return multiply(multiply(x, 0.5), add(_tanh_np(inner), 1.0))
    return multiply(multiply(x, 0.5), add(erf(multiply(x, float(1.0 / np.sqrt(2.0)))), 1.0))


def leaky_relu(x, negative_slope=0.2):
    x = _real("leaky_relu", tensor(x))
    slope = _checks.real("leaky_relu", "negative_slope", negative_slope)
    return where(greater(x, 0), x, multiply(x, slope))


def elu(x, alpha=1.0):
    x = _real("elu", tensor(x))
    alpha = _checks.real("elu", "alpha", alpha)
    neg = multiply(expm1(minimum(x, 0.0)), alpha)  # expm1: no cancellation near 0
    return where(greater(x, 0), x, neg)


def selu(x):
    x = _real("selu", tensor(x))
    return multiply(elu(x, 1.6732632423543772), 1.0507009873554805)


def relu6(x):
    return minimum(relu(x), 6.0)


def hard_sigmoid(x):
    x = _real("hard_sigmoid", tensor(x))
    return clip(add(multiply(x, 1.0 / 6.0), 0.5), 0.0, 1.0)


def linear(x):
    return tensor(x)


# ------------------------------------------------------------------ dense and convolution
def _spatial(name, v, rank):
    vals = (v,) * rank if isinstance(v, (int, np.integer)) else tuple(v)
    if len(vals) != rank or any(isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1 for t in vals):
        raise ValueError(f"{name} must be a positive int or a tuple of {rank} positive ints, got {v!r}")
    return [int(t) for t in vals]


def _padding(p):
    if not isinstance(p, str) or p.lower() not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {p!r}")
    return p.lower()


def _channels_last(data_format):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"only data_format='channels_last' is supported, got {data_format!r}")


def _act_name(activation):
    if activation not in NATIVE_ACTIVATIONS:
        raise ValueError(f"fused activation must be one of {NATIVE_ACTIVATIONS}, got {activation!r}")
    return activation


def conv_bias_activation(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, activation="linear"):
    """``activation(conv(x, kernel) + bias)`` in one kernel (a Keras Conv layer's
    forward); its gradient is the convolution's backward kernel. A kernel of
    ``C_in / groups`` input channels is a grouped convolution (one native convolution per
    group, then the bias and the activation)."""
    x, kernel, bias = _reals("conv", x, kernel, bias, native=True)
    rank = kernel.ndim - 2
    if rank < 1 or x.ndim != rank + 2:
        raise ValueError(f"conv: inputs of shape (batch, *spatial, channels) with {rank} spatial axes need a kernel "
                         f"of rank {rank + 2}; got inputs {x.shape} and kernel {kernel.shape}")
    s, d, pad = _spatial("strides", strides, rank), _spatial("dilation_rate", dilation_rate, rank), _padding(padding)
    b = _bias("conv_forward", bias, kernel.shape[-1])
    act = _act_name(activation)
    groups = _conv_groups(x.shape[-1], kernel.shape)
    if groups > 1:
        return _grouped_conv(x, kernel, b, s, pad, d, act, groups)
    B = backend(x)
    if act != "softmax" and getattr(B, "fused_conv_activation", False):
        y = _conv_act_fused(B, x, kernel, b, act, s, d, pad)
    else:
        y = _linear_bias_activation(
            "conv_bias_activation", x, kernel, b, act, lambda B, bd: B.conv(x._data, kernel._data, bd, s, d, pad),
            lambda B, dz, need_dx: B.conv_backward(x._data, kernel._data, dz, s, d, pad, need_dx))
    return softmax(y) if act == "softmax" else y


def _conv_act_fused(B, x, kernel, b, act, s, d, pad):
    """The CPU's one-pass ``act(conv(x, kernel) + b)``: the activation is applied to each
    piece of the output in cache, and the gradient is computed from the output alone
    (``dz = dy * act'(y)`` piece by piece inside the convolution's backward), so the
    pre-activation is never stored. Same bits as the unfused op."""
    bd = None if b is None else b._data
    y = out(B.conv_act(x._data, kernel._data, bd, act, s, d, pad), x)
    if recording() and is_float(x):
        need_dx = needs_grad(x)

        def vjp(g):
            Bg = backend(g)
            dx, dw, db = Bg.conv_act_backward(x._data, kernel._data, y._data, g._data, act, s, d, pad, need_dx)
            return (None if dx is None else out(dx, g), out(dw, g), None if b is None else out(db, g))
        record("conv_bias_activation", (x, kernel, b), (y,), vjp)
    return y


def _conv_groups(c_in, kernel_shape):
    """The number of groups of a convolution, as Keras infers it: ``C_in`` over the
    kernel's input channels, which must divide both ``C_in`` and the filters."""
    kc, filters = kernel_shape[-2], kernel_shape[-1]
    if kc == c_in:
        return 1
    if kc < 1 or c_in % kc:
        raise ValueError(f"conv: the kernel's input channels ({kc}, kernel shape {tuple(kernel_shape)}) must equal "
                         f"the input's channels ({c_in}) or divide them (a grouped convolution)")
    groups = c_in // kc
    if filters % groups:
        raise ValueError(f"conv: a grouped convolution of {groups} groups (input channels {c_in}, kernel shape "
                         f"{tuple(kernel_shape)}) needs a number of filters divisible by {groups}, got {filters}")
    return groups


def _grouped_conv(x, kernel, b, s, pad, d, act, groups):
    """A grouped convolution with bias and activation: :func:`_grouped_conv_linear`, then
    the bias and the activation as their own ops. One input channel per group is the
    native depthwise kernel (kernel (*k, 1, C * M) read as (*k, C, M))."""
    rank = kernel.ndim - 2
    if groups == x.shape[-1] and rank <= 3:
        y = _depthwise_native(x, reshape(kernel, tuple(kernel.shape[:rank]) + (groups, kernel.shape[-1] // groups)),
                              s, pad, d)
    else:
        y = _grouped_conv_linear(x, kernel, groups, s, pad, d)
    if b is not None:
        y = add(y, b)
    return {"linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax}[act](y)


def _grouped_conv_linear(x, kernel, groups, s, pad, d):
    """Group ``g`` of the input channels convolved with group ``g`` of the filters: one
    native convolution per group (a block-diagonal kernel would multiply the other groups
    by zeros, and 0 * inf would leak NaN across groups), joined along the channels.
    Recorded as one op, so its gradient is one backward kernel per group and two joins
    (on the GPU: three host joins per step, not one per group and weight)."""
    _check_fits("conv", x, "a copy of each group of channels")
    B = backend(x)
    cg, fg = x.shape[-1] // groups, kernel.shape[-1] // groups

    def channels(ndim, g, width):  # the key of group g along the last axis
        return (slice(None),) * (ndim - 1) + (slice(g * width, (g + 1) * width),)

    xs = [B.array_op("getitem", x._data, channels(x.ndim, g, cg)) for g in range(groups)]
    ks = [B.array_op("getitem", kernel._data, channels(kernel.ndim, g, fg)) for g in range(groups)]
    y = out(B.array_op("concatenate", [B.conv(xi, ki, None, s, d, pad) for xi, ki in zip(xs, ks)], x.ndim - 1), x)
    if recording() and is_float(x):
        need_dx = needs_grad(x)

        def vjp(g):
            Bg = backend(g)
            parts = [Bg.conv_backward(xi, ki, Bg.array_op("getitem", g._data, channels(g.ndim, j, fg)),
                                      s, d, pad, need_dx) for j, (xi, ki) in enumerate(zip(xs, ks))]
            dx = out(Bg.array_op("concatenate", [p[0] for p in parts], x.ndim - 1), g) if need_dx else None
            dw = out(Bg.array_op("concatenate", [p[1] for p in parts], kernel.ndim - 1), g)
            return dx, dw
        record("grouped_conv", (x, kernel), (y,), vjp)
    return y


def _bias(func, b, units):
    """A bias must be a vector of one value per output channel (every device's rule; the
    GPU kernels would take any tensor of that many values)."""
    if b is not None and tuple(b.shape) != (units,):
        raise ValueError(f"{func}: b must have shape [{units}], got shape {list(b.shape)}")
    return b


def _linear_bias_activation(name, x, kernel, b, act, forward, backward):
    """The fused op behind conv and dense: ``act(forward(x) + b)`` with the backward
    kernel ``backward(backend, dz, need_dx) -> (dx, dw, db)`` for its gradient. A softmax
    is left to the caller, as its own op, so the output remembers its logits."""
    B = backend(x)
    z = out(forward(B, None if b is None else b._data), x)
    y = z if act in ("linear", "softmax") else out(B.activation(act, z._data), x)
    if recording() and is_float(x):
        need_dx = needs_grad(x)

        def vjp(g):
            Bg = backend(g)
            dz = g._data if act in ("linear", "softmax") else Bg.activation_backward(act, z._data, y._data, g._data)
            dx, dw, db = backward(Bg, dz, need_dx)
            return (None if dx is None else out(dx, g), out(dw, g), None if b is None else out(db, g))
        record(name, (x, kernel, b), (y,), vjp)
    return y


def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """N-D convolution (cross-correlation summed over input channels), as
    ``keras.ops.conv``: inputs (batch, *spatial, C_in), kernel (*k, C_in, C_out). A
    kernel of ``C_in / groups`` input channels is a grouped convolution, as in Keras."""
    _channels_last(data_format)
    return conv_bias_activation(inputs, kernel, None, strides, padding, dilation_rate)


def _conv_transpose_geometry(in_spatial, k, s, d, pad, output_padding):
    """Per spatial axis, ``(length, before)``: Keras's output length of a transposed
    convolution, and where that output starts inside the input of the convolution it is
    the adjoint of (``before`` cells of that input lie left of the output). Keras (jax's
    ``conv_transpose`` with ``transpose_kernel=True``) pads the dilated input by ``(lo, hi)``:
    ``lo = kernel - 1`` for 'valid'; for 'same' the total is ``strides + kernel - 2`` (or
    ``kernel + kernel % 2 - 2 + output_padding``), ``lo`` its larger half, at most
    ``kernel - 1``. Then ``before = kernel - 1 - lo``."""
    geo = []
    for i, (n, kk, ss, dd) in enumerate(zip(in_spatial, k, s, d)):
        ke = (kk - 1) * dd + 1
        op = None if output_padding is None else output_padding[i]
        if pad == "valid":
            op = max(ke, ss) - ke if op is None else op
            lo, hi = ke - 1, ke - 1 + op
        else:
            total = ss + ke - 2 if op is None else ke + ke % 2 - 2 + op
            lo = min(total // 2 + total % 2, ke - 1)
            hi = total - lo
        geo.append(((n - 1) * ss + lo + hi - ke + 2, ke - 1 - lo))
    return geo


def _conv_transpose_shape(in_spatial, k, s, d, pad, output_padding):
    """Keras's output length of a transposed convolution, per spatial axis."""
    return [length for length, _ in _conv_transpose_geometry(in_spatial, k, s, d, pad, output_padding)]


def _native_padding_fits(n, length, before, k, s, d, pad):
    """Whether the native convolution with ``pad`` on an input of ``length`` gives ``n``
    outputs and starts ``before`` cells left of its input (then the transpose is its
    backward kernel as it is, with no extended input to crop)."""
    ke = (k - 1) * d + 1
    if pad == "valid":
        return before == 0 and length >= ke and (length - ke) // s + 1 == n
    return -(-length // s) == n and max((n - 1) * s + ke - length, 0) // 2 == before


def conv_transpose(inputs, kernel, strides=1, padding="valid", output_padding=None, data_format=None,
                   dilation_rate=1):
    """Transposed convolution, as ``keras.ops.conv_transpose``: kernel (*k, C_out, C_in),
    inputs (batch, *spatial, C_in); the gradient of :func:`conv` with respect to its input,
    with Keras's output shapes and alignment (``output_padding`` added on the right).

    Where no native 'valid' / 'same' convolution has this transpose as its exact adjoint
    (an even kernel with 'same' and an ``output_padding``), it is the adjoint of a 'valid'
    convolution over an input extended on both sides, cropped to Keras's output."""
    _channels_last(data_format)
    x, kernel = _reals("conv_transpose", inputs, kernel, native=True)
    rank = kernel.ndim - 2
    if rank < 1 or x.ndim != rank + 2 or kernel.shape[-1] != x.shape[-1]:
        raise ValueError(f"conv_transpose: inputs (batch, *spatial, C_in) and kernel (*k, C_out, C_in) with "
                         f"{rank} spatial axes; got inputs {x.shape} and kernel {kernel.shape}")
    s, d, pad = _spatial("strides", strides, rank), _spatial("dilation_rate", dilation_rate, rank), _padding(padding)
    op = None
    if output_padding is not None:
        one = isinstance(output_padding, (int, np.integer, bool, np.bool_))
        try:
            vals = [output_padding] * rank if one else list(output_padding)
        except TypeError:
            raise TypeError(f"conv_transpose: output_padding must be an int or {rank} of them, got "
                            f"{output_padding!r}") from None
        op = [_checks.integer("conv_transpose", "output_padding", v) for v in vals]
        if len(op) != rank or any(v < 0 for v in op):
            raise ValueError(f"conv_transpose: output_padding must be a non-negative int or {rank} of them, got "
                             f"{output_padding!r}")
        if any(v >= ss for v, ss in zip(op, s)):
            raise ValueError(f"conv_transpose: output_padding must be smaller than strides, received "
                             f"output_padding={tuple(op)}, strides={tuple(s)}")
    k = list(kernel.shape[:rank])
    n_in = list(x.shape[1:-1])
    geo = _conv_transpose_geometry(n_in, k, s, d, pad, op)
    spatial = [length for length, _ in geo]
    if any(length < 1 for length in spatial):
        raise ValueError(f"conv_transpose: inputs {x.shape} with kernel {kernel.shape}, strides {s} and "
                         f"output_padding {output_padding!r} give an empty output {spatial}")
    _checks.element_count("conv_transpose", (x.shape[0],) + tuple(spatial) + (kernel.shape[-2],), "the result")
    native = all(_native_padding_fits(n, length, before, kk, ss, dd, pad)
                 for n, (length, before), kk, ss, dd in zip(n_in, geo, k, s, d))
    c_out = kernel.shape[-2]
    if native:
        ext, cpad, crop = spatial, pad, None
    else:
        # the 'valid' convolution over [before cells | output | after cells] that gives
        # exactly the input's length on every axis
        ext = [max((n - 1) * ss + (kk - 1) * dd + 1, before + length)
               for n, (length, before), kk, ss, dd in zip(n_in, geo, k, s, d)]
        cpad = "valid"
        crop = (slice(None),) + tuple(slice(before, before + length) for length, before in geo) + (slice(None),)
        widths = [(0, 0)] + [(before, e - before - length) for (length, before), e in zip(geo, ext)] + [(0, 0)]
    B = backend(x)
    ext_shape = (x.shape[0],) + tuple(ext) + (c_out,)
    y_data = B.conv_input_grad(ext_shape, kernel._data, x._data, s, d, cpad)
    if crop is not None:
        y_data = B.array_op("getitem", y_data, crop)
    y = out(y_data, x)
    if recording() and is_float(x):
        def vjp(g):
            Bg = backend(g)
            ge = g._data if crop is None else Bg.array_op("pad", g._data, widths, 0)
            gx = out(Bg.conv(ge, kernel._data, None, s, d, cpad), g)
            _, dw, _ = Bg.conv_backward(ge, kernel._data, x._data, s, d, cpad, False)
            return gx, out(dw, g)
        record("conv_transpose", (x, kernel), (y,), vjp)
    return y


def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """Depthwise convolution, as ``keras.ops.depthwise_conv``: kernel (*k, C_in, M) gives
    C_in * M output channels, channel ``c * M + m`` from input channel ``c`` only."""
    _channels_last(data_format)
    x, kernel = _reals("depthwise_conv", inputs, kernel, native=True)
    rank = kernel.ndim - 2
    if rank < 1:
        raise ValueError(f"depthwise_conv: the kernel must be (*k, C_in, M) with at least one spatial axis, got "
                         f"shape {kernel.shape}")
    c, m = kernel.shape[-2], kernel.shape[-1]
    if x.ndim != rank + 2 or x.shape[-1] != c:
        raise ValueError(f"depthwise_conv: inputs (batch, *spatial, {c}) for a kernel of shape {kernel.shape}; "
                         f"got {x.shape}")
    if c == 1:
        return conv(x, kernel, strides, padding, None, dilation_rate)
    s, d, pad = _spatial("strides", strides, rank), _spatial("dilation_rate", dilation_rate, rank), _padding(padding)
    if rank > 3:
        # a grouped convolution of C groups: kernel (*k, C, M) as (*k, 1, C * M), whose
        # filter c * M + m is the depthwise kernel's [..., c, m]
        return _grouped_conv_linear(x, reshape(kernel, tuple(kernel.shape[:rank]) + (1, c * m)), c, s, pad, d)
    return _depthwise_native(x, kernel, s, pad, d)


def _depthwise_native(x, kernel, s, pad, d):
    """The native depthwise kernel (CPU and GPU), recorded with its two backward kernels.
    Each output channel reads one input channel, so a NaN stays in its channel."""
    B = backend(x)
    y = out(B.depthwise_conv(x._data, kernel._data, s, d, pad), x)
    if recording() and is_float(x):
        need_dx = needs_grad(x)

        def vjp(g):
            Bg = backend(g)
            dx, dk = Bg.depthwise_conv_backward(x._data, kernel._data, g._data, s, d, pad, need_dx)
            return (None if dx is None else out(dx, g)), out(dk, g)
        record("depthwise_conv", (x, kernel), (y,), vjp)
    return y


def separable_conv(inputs, depthwise_kernel, pointwise_kernel, strides=1, padding="valid", data_format=None,
                   dilation_rate=1):
    """Depthwise-separable convolution, as ``keras.ops.separable_conv``: a
    :func:`depthwise_conv` with ``depthwise_kernel`` (*k, C_in, M) (strides, padding and
    dilation apply here), then a pointwise :func:`conv` with ``pointwise_kernel``
    (1, ..., 1, C_in * M, C_out)."""
    _channels_last(data_format)
    dk, pk = _reals("separable_conv", depthwise_kernel, pointwise_kernel)
    rank = dk.ndim - 2
    if pk.ndim != rank + 2 or any(v != 1 for v in pk.shape[:rank]) or pk.shape[-2] != dk.shape[-2] * dk.shape[-1]:
        raise ValueError(f"separable_conv: the pointwise kernel must be (1,) * {rank} + (C_in * M, C_out) = "
                         f"{(1,) * rank + (dk.shape[-2] * dk.shape[-1], 'C_out')} for a depthwise kernel of shape "
                         f"{dk.shape}; got {pk.shape}")
    y = depthwise_conv(inputs, dk, strides, padding, None, dilation_rate)
    return conv(y, pk)


def dense_bias_activation(x, kernel, bias=None, activation="linear"):
    """``activation(x @ kernel + bias)`` on the last axis in one kernel (a Keras Dense
    layer's forward); its gradient is the dense backward kernel."""
    x, kernel, bias = _reals("dense", x, kernel, bias, native=True)
    if x.ndim < 1 or kernel.ndim != 2 or x.shape[-1] != kernel.shape[0]:
        raise ValueError(f"dense: inputs (..., {kernel.shape[0] if kernel.ndim == 2 else '?'}) for a kernel of "
                         f"shape {kernel.shape}; got inputs {x.shape}")
    act = _act_name(activation)
    b = _bias("dense_forward", bias, kernel.shape[1])
    lead = x.shape[:-1]
    x2 = x if x.ndim == 2 else reshape(x, (-1, x.shape[-1]))
    y = _linear_bias_activation(
        "dense_bias_activation", x2, kernel, b, act, lambda B, bd: B.dense(x2._data, kernel._data, bd),
        lambda B, dz, need_dx: B.dense_backward(x2._data, kernel._data, dz, need_dx))
    y_out = y if len(lead) == 1 else reshape(y, tuple(lead) + (kernel.shape[1],))
    return softmax(y_out) if act == "softmax" else y_out


# ------------------------------------------------------------------ pooling
def _pool(kind, inputs, pool_size, strides, padding, data_format):
    _channels_last(data_format)
    x = _real(f"{kind}_pool", tensor(inputs), native=True)
    rank = x.ndim - 2
    if rank < 1 or rank > 3:
        raise ValueError(f"{kind}_pool: inputs must be (batch, *spatial, channels) with 1 to 3 spatial axes, got "
                         f"shape {x.shape}")
    p = _spatial("pool_size", pool_size, rank)
    s = p if strides is None else _spatial("strides", strides, rank)
    pad = _padding(padding)
    y_data, argmax = backend(x).pool(x._data, kind, p, s, pad)
    y = out(y_data, x)
    if recording() and is_float(x):
        def vjp(g):
            return (out(backend(g).pool_backward(g._data, kind, argmax, x.shape, p, s, pad), g),)
        record(f"{kind}_pool", (x,), (y,), vjp)
    return y


def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Max pooling, as ``keras.ops.max_pool``; the gradient goes to the first maximum of
    each window (the same on every device)."""
    return _pool("max", inputs, pool_size, strides, padding, data_format)


def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Average pooling, as ``keras.ops.average_pool`` (padded cells not counted)."""
    return _pool("avg", inputs, pool_size, strides, padding, data_format)


def _adaptive_pool(kind, inputs, output_size, data_format):
    """Adaptive pooling to ``output_size`` cells per spatial axis: output cell ``i`` of an
    axis of ``n`` cells pools cells ``[floor(i * n / o), ceil((i + 1) * n / o))`` (Keras 3's
    and PyTorch's windows; they overlap when ``o`` does not divide ``n``, and repeat
    cells when ``o > n``). Where every ``o`` divides its ``n`` this is the native pooling
    with windows and strides ``n / o``. Else each axis in turn (a box's max / mean is the
    max / mean along each axis, as the windows of an axis do not depend on the others):
    the windows of an axis have at most two sizes, so a native stride-1 pooling per size
    gives every window, and a gather picks each output's (Keras's two-pool gather)."""
    func = f"adaptive_{kind}_pool"
    _channels_last(data_format)
    x = _real(func, tensor(inputs), native=True)
    rank = x.ndim - 2
    if rank < 1 or rank > 3:
        raise ValueError(f"{func}: inputs must be (batch, *spatial, channels) with 1 to 3 spatial axes, got shape "
                         f"{x.shape}")
    sizes = _spatial(f"{func}: output_size", output_size, rank)
    _checks.element_count(func, (x.shape[0],) + tuple(sizes) + (x.shape[-1],), "the result")
    spatial = x.shape[1:-1]
    if all(n % o == 0 for n, o in zip(spatial, sizes)):
        window = [n // o for n, o in zip(spatial, sizes)]
        return _pool(kind, x, window, window, "valid", None)
    y = x
    for ax, (n, o) in enumerate(zip(spatial, sizes)):
        if n % o == 0:
            if n != o:
                window = [1] * rank
                window[ax] = n // o
                y = _pool(kind, y, window, window, "valid", None)
            continue
        i = np.arange(o)
        start = i * n // o
        length = -(-(i + 1) * n // o) - start
        pooled, offset, at = [], {}, 0
        for w in np.unique(length):
            window = [1] * rank
            window[ax] = int(w)
            offset[int(w)] = at
            pooled.append(_pool(kind, y, window, [1] * rank, "valid", None))
            at += pooled[-1].shape[1 + ax]
        rows = pooled[0] if len(pooled) == 1 else concatenate(pooled, axis=1 + ax)
        index = np.array([offset[int(w)] for w in length]) + start
        y = rows[(slice(None),) * (1 + ax) + (index,)]
    return y


def adaptive_average_pool(inputs, output_size, data_format=None):
    """Adaptive average pooling, as ``keras.ops.adaptive_average_pool``: the mean of each
    of ``output_size`` windows per spatial axis (see :func:`_adaptive_pool`)."""
    return _adaptive_pool("avg", inputs, output_size, data_format)


def adaptive_max_pool(inputs, output_size, data_format=None):
    """Adaptive max pooling, as ``keras.ops.adaptive_max_pool`` (the windows of
    :func:`adaptive_average_pool`); the gradient goes to the first maximum of each window,
    as max pooling's."""
    return _adaptive_pool("max", inputs, output_size, data_format)


def global_pool(kind, x):
    """Global max / average pooling over the spatial axes of (batch, *spatial, C); the
    max gradient is shared evenly among tied maxima (the same on every device)."""
    x = _real("global_pool", tensor(x), native=True)
    if x.ndim < 3:
        raise ValueError(f"global pooling needs inputs (batch, *spatial, channels), got shape {x.shape}")
    y_data, cache = backend(x).global_pool(kind, x._data)
    y = out(y_data, x)
    if recording() and is_float(x):
        def vjp(g):
            return (out(backend(g).global_pool_backward(kind, cache, x.shape, g._data), g),)
        record(f"global_{kind}_pool", (x,), (y,), vjp)
    return y


# ------------------------------------------------------------------ normalization and dropout
def moments(x, axes, keepdims=False):
    """(mean, variance) over ``axes`` (biased variance, as Keras)."""
    x = _real("moments", tensor(x))
    ax = _axes_arg("moments", axes, x.ndim)
    _check_fits("moments", x, "a temporary as large as its input")
    m = mean(x, axis=ax, keepdims=True)
    v = mean(square(subtract(x, m)), axis=ax, keepdims=True)
    if not keepdims:
        keep = [s for i, s in enumerate(x.shape) if i not in ax]
        m, v = reshape(m, keep), reshape(v, keep)
    return m, v


def batch_normalization(x, mean, variance, axis, offset=None, scale=None, epsilon=1e-3):
    """``(x - mean) / sqrt(variance + epsilon) * scale + offset`` with the statistics
    broadcast along ``axis``, as ``keras.ops.batch_normalization``."""
    x = _real("batch_normalization", tensor(x))
    ax = _axis("batch_normalization", axis, x.ndim)
    eps = _checks.real("batch_normalization", "epsilon", epsilon, minimum=0.0)
    shape = [1] * x.ndim
    shape[ax] = x.shape[ax]

    def b(v):
        t = _real("batch_normalization", tensor(v, x))
        if t.size != x.shape[ax]:
            raise ValueError(f"batch_normalization: the statistics need {x.shape[ax]} values (axis {axis} of "
                             f"shape {x.shape}), got shape {t.shape}")
        return reshape(t, shape)

    inv = divide(1.0, sqrt(add(b(variance), eps)))
    if scale is not None:
        inv = multiply(inv, b(scale))
    y = multiply(subtract(x, b(mean)), inv)
    return y if offset is None else add(y, b(offset))


def fused_batch_norm(x, gamma, beta, epsilon, training, moving_mean, moving_variance):
    """Batch normalization over every axis but the last in one kernel:
    ``(y, mean, variance)``, with the batch statistics in training (biased variance) and
    the moving ones otherwise; its gradient (for x, gamma, beta) is the backward kernel."""
    x, g_, b_, mm, mv = _reals("fused_batch_norm", x, gamma, beta, moving_mean, moving_variance, native=True)
    epsilon = _checks.real("fused_batch_norm", "epsilon", epsilon, minimum=0.0, strict_min=True)
    B = backend(x)
    y_d, mean_d, var_d = B.batchnorm(x._data, None if g_ is None else g_._data, None if b_ is None else b_._data,
                                     epsilon, bool(training), mm._data, mv._data)
    y, m, v = out(y_d, x), out(mean_d, x), out(var_d, x)
    if recording() and is_float(x):
        def vjp(gy, gm=None, gv=None):
            dx, dgamma, dbeta = backend(gy).batchnorm_backward(x._data, None if g_ is None else g_._data, mean_d,
                                                               var_d, float(epsilon), gy._data, bool(training))
            return out(dx, gy), (None if g_ is None else out(dgamma, gy)), (None if b_ is None else out(dbeta, gy))
        record("fused_batch_norm", (x, g_, b_), (y, m, v), vjp)
    return y, m, v


def _fused_norm(func, x, gamma, beta, rows, pixels, groups, epsilon):
    """The fused group / layer normalization kernel on ``x`` viewed as (rows, pixels,
    groups, C / groups): ``(y, mean, rstd)``, statistics of shape (rows, groups); its
    gradient (x, gamma, beta) is one backward kernel."""
    x, g_, b_ = _reals(func, x, gamma, beta, native=True)
    g_, b_ = [t if t is None or t.dtype == x.dtype else cast(t, x.dtype) for t in (g_, b_)]
    c = x.shape[-1]
    for what, t in (("gamma", g_), ("beta", b_)):
        if t is not None and tuple(t.shape) != (c,):
            raise ValueError(f"{func}: {what} must have shape ({c},) (one value per channel), got {tuple(t.shape)}")
    B = backend(x)
    y_d, mean_d, rstd_d = B.group_norm(x._data, None if g_ is None else g_._data, None if b_ is None else b_._data,
                                       rows, pixels, groups, epsilon)
    y = out(y_d, x)
    if recording() and is_float(x):
        need_dx = needs_grad(x)

        def vjp(gy):
            dx, dg, db = backend(gy).group_norm_backward(x._data, None if g_ is None else g_._data, gy._data, mean_d,
                                                         rstd_d, rows, pixels, groups, need_dx)
            return ((None if dx is None else out(dx, gy)), (None if g_ is None else out(dg, gy)),
                    (None if b_ is None else out(db, gy)))
        record(func, (x, g_, b_), (y,), vjp)
    return y, out(mean_d, x), out(rstd_d, x)


def fused_layer_norm(x, gamma=None, beta=None, epsilon=1e-3):
    """Layer normalization over the last axis in one kernel (Keras's
    ``LayerNormalization(axis=-1)``): ``(x - mean) / sqrt(var + epsilon) * gamma + beta``
    with each row's mean and biased variance; ``gamma`` / ``beta`` (one per channel) are
    optional. A NaN stays in its row."""
    x = _real("fused_layer_norm", tensor(x), native=True)
    epsilon = _checks.real("fused_layer_norm", "epsilon", epsilon, minimum=0.0)
    if x.ndim < 1 or x.size == 0:
        raise ValueError(f"fused_layer_norm: expected a non-empty tensor of rank >= 1, got shape {x.shape}")
    return _fused_norm("fused_layer_norm", x, gamma, beta, x.size // x.shape[-1], 1, 1, epsilon)[0]


def fused_group_norm(x, gamma=None, beta=None, groups=1, epsilon=1e-3):
    """Group normalization of channels-last ``x`` (batch, *spatial, C) in one kernel
    (Keras's ``GroupNormalization(axis=-1)``): the C channels in ``groups`` consecutive
    groups, each sample's group normalized by its mean and biased variance over the
    group's channels and every spatial position, then ``* gamma + beta`` per channel."""
    x = _real("fused_group_norm", tensor(x), native=True)
    epsilon = _checks.real("fused_group_norm", "epsilon", epsilon, minimum=0.0)
    groups = _checks.integer("fused_group_norm", "groups", groups)
    if x.ndim < 2 or x.size == 0:
        raise ValueError(f"fused_group_norm: expected a non-empty tensor (batch, ..., channels), got shape {x.shape}")
    c = x.shape[-1]
    if groups < 1 or c % groups:
        raise ValueError(f"fused_group_norm: groups must be a positive divisor of the channels ({c}), got {groups}")
    return _fused_norm("fused_group_norm", x, gamma, beta, x.shape[0], x.size // (x.shape[0] * c), groups,
                       epsilon)[0]


def dropout(x, rate, noise_shape=None, seed=None):
    """Inverted dropout: each value zeroed with probability ``rate``, the rest scaled by
    ``1 / (1 - rate)`` (``keras.random.dropout``). ``seed`` (an int) fixes the mask."""
    x = _real("dropout", tensor(x), native=True)
    rate = _checks.real("dropout", "rate", rate, minimum=0.0)
    if not rate < 1.0:
        raise ValueError(f"dropout: rate must be in [0, 1), got {rate}")
    if seed is not None:
        seed = _checks.integer("dropout", "seed", seed)
    if noise_shape is not None:
        raise ValueError("dropout: noise_shape is not supported")
    if rate == 0.0:
        return x
    if seed is None:
        from .. import backend as _b
        seed = _b.next_seed()
    y_d, mask = backend(x).dropout(x._data, rate, int(seed) % (2**63))
    y = out(y_d, x)
    if recording() and is_float(x):
        m = out(mask, x)
        record("dropout", (x,), (y,), lambda g: (multiply(g, m),))
    return y


# ------------------------------------------------------------------ one-hot and losses
def one_hot(x, num_classes, axis=-1, dtype="float32"):
    """``(x[..., None] == arange(num_classes))`` in ``dtype``: a row of zeros for a class
    index outside [0, num_classes)."""
    x = tensor(x)
    n = _checks.integer("one_hot", "num_classes", num_classes, minimum=1)
    if _checks.integer("one_hot", "axis", axis) != -1:
        raise ValueError("one_hot: only axis=-1 is supported")
    if np.dtype(x.dtype).kind not in "iub":
        raise TypeError(f"one_hot: expected integer class indices, got dtype {x.dtype}")
    dt = np.dtype(dtype)
    _checks.element_count("one_hot", tuple(x.shape) + (n,), "the result")
    return out(backend(x).array_op("one_hot", x._data, n, dt), x)


def _probs(output, axis):
    output = divide(output, sum(output, axis=axis, keepdims=True))
    return clip(output, 1e-7, 1.0 - 1e-7)


def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Per-sample cross-entropy of one-hot (or soft) targets, as
    ``keras.ops.categorical_crossentropy``."""
    target, output = _reals("categorical_crossentropy", target, output)
    if output.ndim == 0:
        raise ValueError("categorical_crossentropy: output needs a class axis, got a scalar")
    _axis("categorical_crossentropy", axis, output.ndim)
    _check_fits("categorical_crossentropy", output, "a temporary as large as its output argument")
    if tuple(target.shape) != tuple(output.shape):
        raise ValueError(f"categorical_crossentropy: target and output must have the same shape, got "
                         f"{target.shape} and {output.shape}")
    if not from_logits and output._keras_logits is not None and output._keras_logits[1] in (axis, -1):
        output, from_logits = _real("categorical_crossentropy", output._keras_logits[0]), True
    if from_logits:
        return negative(sum(multiply(cast(target, output.dtype), log_softmax(output, axis=axis)), axis=axis))
    return negative(sum(multiply(cast(target, output.dtype), log(_probs(output, axis))), axis=axis))


def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Per-sample cross-entropy of integer class targets, as
    ``keras.ops.sparse_categorical_crossentropy``. The targets are class indices in
    [0, classes) (integers, or floats holding whole numbers), along the last axis."""
    f = "sparse_categorical_crossentropy"
    target, output = tensors(target, output)
    output = _real(f, output)
    if output.ndim == 0:
        raise ValueError(f"{f}: output needs a class axis, got a scalar")
    if _axis(f, axis, output.ndim) != output.ndim - 1:
        raise ValueError(f"{f}: only the last axis holds the classes (axis=-1), got axis={axis}")
    k = output.shape[-1]
    labels = _class_labels(f, target.numpy(), k)  # (the host: one_hot runs there on every device)
    if labels.ndim == output.ndim and labels.shape[-1] == 1:
        labels = labels.reshape(labels.shape[:-1])
    if tuple(labels.shape) != tuple(output.shape[:-1]):
        raise ValueError(f"{f}: target (class labels) must have shape {output.shape[:-1]} (the output's shape "
                         f"without the class axis) or {output.shape[:-1] + (1,)}, got {tuple(target.shape)}")
    oh = tensor((labels[..., None] == np.arange(k)).astype(output.dtype), output)
    return categorical_crossentropy(oh, output, from_logits=from_logits, axis=-1)


def _class_labels(func, y, classes):
    """Sparse labels as int64 class indices: integers (or bools), or floats holding whole
    numbers, each in [0, classes); else a TypeError / ValueError (the fused loss's rule)."""
    y = np.asarray(y)
    kind = y.dtype.kind
    if kind == "f":
        v = y.astype(np.float64)
        bad = ~np.isfinite(v) | (v != np.round(v))
        if bad.any():
            first = float(v.reshape(-1)[np.argmax(bad.reshape(-1))])
            raise ValueError(f"{func}: labels must be whole numbers (class indices), got {first}")
        y = v
    elif kind not in "biu":
        raise TypeError(f"{func}: labels must be integer class indices, got dtype {y.dtype}")
    out_ = (y < 0) | (y >= classes)
    if out_.any():
        bad = y.reshape(-1)[np.argmax(out_.reshape(-1))]
        raise ValueError(f"{func}: label {int(bad)} is out of range for {classes} classes (valid labels: "
                         f"0..{classes - 1})")
    return y.astype(np.int64)


def binary_crossentropy(target, output, from_logits=False):
    """Elementwise binary cross-entropy, as ``keras.ops.binary_crossentropy``."""
    target, output = _reals("binary_crossentropy", target, output)
    t = cast(target, output.dtype)
    if from_logits:
        return add(subtract(relu(output), multiply(output, t)), log1p(exp(negative(abs(output)))))
    o = clip(output, 1e-7, 1.0 - 1e-7)
    return negative(add(multiply(t, log(o)), multiply(subtract(1.0, t), log(subtract(1.0, o)))))


def fused_loss(name, y_true, y_pred, from_logits=False):
    """The mean loss of a batch in one kernel (``'sparse_categorical_crossentropy'``,
    ``'categorical_crossentropy'``, ``'binary_crossentropy'``, ``'mse'``), with its
    gradient from the same kernel. A softmax ``y_pred`` is taken from its logits. On the
    GPU the result also carries the batch's [loss, accuracy] pair on the device
    (``_stats``), read back once by the trainer."""
    pred = _real("fused_loss", tensor(y_pred), native=True)
    if (not from_logits and pred._keras_logits is not None and name in (
            "sparse_categorical_crossentropy", "categorical_crossentropy") and pred._keras_logits[1] in (-1, pred.ndim - 1)):
        pred, from_logits = _real("fused_loss", pred._keras_logits[0], native=True), True
    y = y_true._data if isinstance(y_true, Tensor) else y_true
    if isinstance(y_true, Tensor) and y_true._device != pred._device:
        y = y_true.numpy()
    if not isinstance(y, _core.GpuArray):
        y = _loss_targets(y)
    value, grad, stats = backend(pred).loss(name, y, pred._data, bool(from_logits))
    loss = out(value, pred)
    if stats is not None:
        loss._stats = stats
    if recording() and is_float(pred):
        def vjp(g):
            gt = out(grad, pred)
            return (gt if g._is_seed else multiply(gt, g),)
        record(f"fused_{name}", (pred,), (loss,), vjp)
    return loss


def _loss_targets(y):
    """Host targets of the fused loss as every device's kernel takes them: a numpy array
    of a real dtype in native byte order (float16 as float32); else a TypeError."""
    a = np.asarray(y)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"fused_loss: y_true must be a real (bool, integer or float) array, got dtype {a.dtype}")
    if a.dtype.kind == "f" and a.dtype.itemsize < 4:
        return a.astype(np.float32)
    return a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))


def _physical_memory():
    try:
        return _os.sysconf("SC_PAGE_SIZE") * _os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def _check_fits(func, x, what="a result as large as its input"):
    """An op that builds ``what`` (x's size) after a long pass over ``x`` — a reduction,
    a piecewise copy — on a strided or broadcast view of ``2**40`` elements that takes a
    few bytes: a MemoryError now, not after minutes of work."""
    if x._device != "cpu":
        return  # (device tensors are buffers of their own size)
    a = x._data
    need = int(a.size) * a.dtype.itemsize
    if need <= (1 << 30):
        return
    total = _physical_memory()
    if need > total:
        raise MemoryError(f"{func}: the input of shape {tuple(a.shape)} ({a.size} elements) needs {what}, "
                          f"{need / 2 ** 30:.1f} GiB, more than this machine's memory ({total / 2 ** 30:.1f} GiB)")
