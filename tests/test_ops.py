"""The op table: every op of ``convcore.ops`` against a numpy / scipy reference on the
CPU, the same op on the GPU against the CPU, and every gradient against float64 central
finite differences (max relative error <= 1e-6), all from one table.

Each entry: (id, function of tensors, input makers, numpy reference). Inputs are drawn
away from kinks (ties, zeros of relu/abs, clip bounds) for the finite differences; the
kinks, ties, zeros, NaN, odd sizes and chunked GPU bindings have their own cases below.

In CI (CONVCORE_CI=1) the GPU half runs on lavapipe and may not skip.
"""
from __future__ import annotations

import math
import zlib
import os

import numpy as np
import pytest
from scipy import special
from skimage.transform import rescale

import convcore as cc
from convcore import _core, ops

HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CI requires a GPU adapter (lavapipe) for the op table's GPU half")
DEVICES = ["cpu"] + (["gpu"] if HAVE_GPU else [])

rng = np.random.default_rng(2024)


def U(*shape, lo=-1.0, hi=1.0):
    return lambda: rng.uniform(lo, hi, shape)


def AWAY(*shape, gap=0.1):
    """Uniform in [-1, 1] with no value within ``gap`` of 0 (away from kinks at 0)."""
    def make():
        v = rng.uniform(gap, 1.0, shape)
        return v * rng.choice([-1.0, 1.0], shape)
    return make


def DISTINCT(*shape, offset=0.0):
    """A permutation of well separated values (no ties, for max / min); two makers with
    offsets apart by less than the spacing never tie with each other either."""
    def make():
        n = int(np.prod(shape))
        return (rng.permutation(n) / n * 2 - 1 + 0.05 + offset / n).reshape(shape)
    return make


def POS(*shape):
    return U(*shape, lo=0.3, hi=2.0)


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _conv_ref(x, w, strides=(1, 1), padding="valid"):
    """Direct channels-last 2-D cross-correlation (Keras padding)."""
    n, h, wd, c = x.shape
    kh, kw, _, f = w.shape
    sh, sw = strides
    if padding == "same":
        oh, ow = -(-h // sh), -(-wd // sw)
        ph = max((oh - 1) * sh + kh - h, 0)
        pw = max((ow - 1) * sw + kw - wd, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - kh) // sh + 1, (wd - kw) // sw + 1
    out = np.zeros((n, oh, ow, f))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * sh:i * sh + kh, j * sw:j * sw + kw, :]
            out[:, i, j, :] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return out


def _depthwise_ref(x, w, strides=(1, 1), padding="valid", dilation=(1, 1)):
    """Direct channels-last 2-D depthwise convolution: zero padding (Keras's rule),
    output channel c * M + m = sum over taps of x[..., c] * w[tap, c, m]."""
    n, h, wd, c = x.shape
    kh, kw, _, m = w.shape
    (sh, sw), (dh, dw) = strides, dilation
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if padding == "same":
        oh, ow = -(-h // sh), -(-wd // sw)
        ph, pw = max((oh - 1) * sh + eh - h, 0), max((ow - 1) * sw + ew - wd, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - eh) // sh + 1, (wd - ew) // sw + 1
    out = np.zeros((n, oh, ow, c, m))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw, :]
            out += patch[..., None] * w[i, j]
    return out.reshape(n, oh, ow, c * m)


def _group_norm_ref(x, g, b, groups, eps):
    """x (rows, pixels, C): each row's group of C / groups channels over every pixel
    normalized by its mean and biased variance, then * g + b per channel."""
    r, p, c = x.shape
    xg = x.reshape(r, p, groups, c // groups)
    m = xg.mean(axis=(1, 3), keepdims=True)
    v = ((xg - m) ** 2).mean(axis=(1, 3), keepdims=True)
    y = ((xg - m) * (1 / np.sqrt(v + eps))).reshape(r, p, c)
    if g is not None:
        y = y * g
    return y if b is None else y + b


def _conv_transpose_ref(x, w, strides, padding, output_padding=None, dilation=1):
    """Direct channels-last 2-D transposed convolution as Keras 3 defines it: each input
    cell scatters ``x[i] * w[t]`` to cell ``i * s + t`` of the full result (length
    ``(n - 1) * s + k``), and Keras's output is the window of that result starting at
    ``k - 1 - lo``, where ``lo`` is the left padding of jax's conv_transpose that Keras
    computes (keras/src/backend/common/backend_utils.py,
    ``_convert_conv_transpose_padding_args_from_keras_to_jax``); cells beyond the full
    result are zeros. A dilated kernel's taps are ``dilation`` cells apart (and its
    holes are no taps: nothing, not a zero times a NaN, lands there)."""
    n, h, wd, _ = x.shape
    d = dilation
    kh, kw = ((k - 1) * d + 1 for k in w.shape[:2])  # the dilated extent
    f = w.shape[2]
    full = np.zeros((n, (h - 1) * strides[0] + kh, (wd - 1) * strides[1] + kw, f))
    for i in range(h):
        for j in range(wd):
            full[:, i * strides[0]:i * strides[0] + kh:d, j * strides[1]:j * strides[1] + kw:d, :] += np.einsum(
                "nc,abfc->nabf", x[:, i, j, :], w)
    out = full
    for ax, (size, k, s) in enumerate(zip((h, wd), (kh, kw), strides), start=1):
        op = None if output_padding is None else output_padding[ax - 1]
        if padding == "valid":
            op = max(k, s) - k if op is None else op
            lo, hi = k - 1, k - 1 + op
        else:
            total = s + k - 2 if op is None else k + k % 2 - 2 + op
            lo = min(total // 2 + total % 2, k - 1)
            hi = total - lo
        length = (size - 1) * s + 1 + lo + hi - k + 1
        start = k - 1 - lo
        widths = [(0, 0)] * out.ndim
        widths[ax] = (0, max(start + length - out.shape[ax], 0))
        out = np.pad(out, widths).take(range(start, start + length), axis=ax)
    return out


def _adaptive_ref(x, sizes, reduce):
    """Adaptive pooling by its definition (Keras 3's and PyTorch's windows): output cell
    ``(i, j)`` reduces the box ``[floor(i n / o), ceil((i + 1) n / o))`` of each axis."""
    n, h, w, c = x.shape
    oh, ow = sizes
    out = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            box = x[:, i * h // oh:-(-(i + 1) * h // oh), j * w // ow:-(-(j + 1) * w // ow), :]
            out[:, i, j, :] = reduce(box, axis=(1, 2))
    return out


def _pool_ref(x, k, kind):
    n, h, w, c = x.shape
    oh, ow = h // k, w // k
    v = x[:, :oh * k, :ow * k].reshape(n, oh, k, ow, k, c)
    return v.max(axis=(2, 4)) if kind == "max" else v.mean(axis=(2, 4))


W = rng.uniform(-1, 1, (3, 4))  # fixed operands used inside some entries

TABLE = [
    # elementwise unary
    ("negative", ops.negative, [U(3, 4)], np.negative),
    ("exp", ops.exp, [U(3, 4)], np.exp),
    ("log", ops.log, [POS(3, 4)], np.log),
    ("sqrt", ops.sqrt, [POS(3, 4)], np.sqrt),
    ("square", ops.square, [U(3, 4)], np.square),
    ("abs", ops.abs, [AWAY(3, 4)], np.abs),
    ("sign", ops.sign, [AWAY(3, 4)], np.sign),
    ("reciprocal", ops.reciprocal, [POS(5)], np.reciprocal),
    ("log1p", ops.log1p, [POS(5)], np.log1p),
    ("sin", ops.sin, [U(5)], np.sin),
    ("cos", ops.cos, [U(5)], np.cos),
    ("erf", ops.erf, [U(5)], special.erf),
    ("expm1", ops.expm1, [U(5)], np.expm1),
    # elementwise binary, with broadcasting
    ("add", ops.add, [U(3, 4), U(4)], np.add),
    ("subtract", ops.subtract, [U(3, 1), U(1, 4)], np.subtract),
    ("multiply", ops.multiply, [U(2, 3, 4), U(3, 1)], np.multiply),
    ("divide", ops.divide, [U(3, 4), POS(3, 4)], np.divide),
    ("power", ops.power, [POS(3, 4), U(3, 4)], np.power),
    ("maximum", ops.maximum, [DISTINCT(3, 4), DISTINCT(3, 4, offset=0.5)], np.maximum),
    ("minimum", ops.minimum, [DISTINCT(3, 4), DISTINCT(3, 4, offset=0.5)], np.minimum),
    ("add_scalar", lambda a: a + 2.5, [U(7)], lambda a: a + 2.5),
    ("rsub_scalar", lambda a: 1.5 - a, [U(7)], lambda a: 1.5 - a),
    ("scale", lambda a: a * 3.0, [U(7)], lambda a: a * 3.0),
    ("clip", lambda a: ops.clip(a, -0.5, 0.5), [AWAY(4, 5)],
     lambda a: np.clip(a, -0.5, 0.5)),
    ("where", lambda a, b: ops.where(a > 0, a, b), [AWAY(3, 4), U(3, 4)], lambda a, b: np.where(a > 0, a, b)),
    # reductions
    ("sum", ops.sum, [U(3, 4)], np.sum),
    ("sum_axis", lambda a: ops.sum(a, axis=1), [U(3, 4, 2)], lambda a: a.sum(axis=1)),
    ("sum_keepdims", lambda a: ops.sum(a, axis=(0, 2), keepdims=True), [U(3, 4, 2)],
     lambda a: a.sum(axis=(0, 2), keepdims=True)),
    ("mean", lambda a: ops.mean(a, axis=-1), [U(3, 4)], lambda a: a.mean(axis=-1)),
    ("max", lambda a: ops.max(a, axis=0), [DISTINCT(3, 4)], lambda a: a.max(axis=0)),
    ("min", ops.min, [DISTINCT(3, 4)], np.min),
    ("logsumexp", lambda a: ops.logsumexp(a, axis=1), [U(3, 5)], lambda a: special.logsumexp(a, axis=1)),
    ("var", lambda a: ops.var(a, axis=0), [U(4, 3)], lambda a: a.var(axis=0)),
    ("cumsum", lambda a: ops.cumsum(a, axis=1), [U(3, 4)], lambda a: np.cumsum(a, axis=1)),
    ("cumsum_flat", ops.cumsum, [U(2, 3)], np.cumsum),
    ("prod", lambda a: ops.prod(a, axis=0), [POS(3, 4)], lambda a: a.prod(axis=0)),
    ("std", lambda a: ops.std(a, axis=1), [U(3, 5)], lambda a: a.std(axis=1)),
    # shapes and indexing
    ("tile", lambda a: ops.tile(a, (2, 1)), [U(2, 3)], lambda a: np.tile(a, (2, 1))),
    ("repeat", lambda a: ops.repeat(a, 2, axis=1), [U(2, 3)], lambda a: np.repeat(a, 2, axis=1)),
    ("take", lambda a: ops.take(a, [2, 0, 2], axis=1), [U(2, 3)], lambda a: np.take(a, [2, 0, 2], axis=1)),
    ("take_along_axis", lambda a: ops.take_along_axis(a, np.array([[0, 2], [1, 1]]), 1), [U(2, 3)],
     lambda a: np.take_along_axis(a, np.array([[0, 2], [1, 1]]), 1)),
    ("split", lambda a: ops.split(a, 2, axis=1)[1], [U(2, 4)], lambda a: np.split(a, 2, axis=1)[1]),
    ("moveaxis", lambda a: ops.moveaxis(a, 0, -1), [U(2, 3, 4)], lambda a: np.moveaxis(a, 0, -1)),
    ("copy", ops.copy, [U(3)], np.copy),
    ("reshape", lambda a: ops.reshape(a, (4, 3)), [U(3, 4)], lambda a: a.reshape(4, 3)),
    ("transpose", lambda a: ops.transpose(a, (2, 0, 1)), [U(2, 3, 4)], lambda a: a.transpose(2, 0, 1)),
    ("concatenate", lambda a, b: ops.concatenate([a, b], axis=1), [U(2, 3), U(2, 2)],
     lambda a, b: np.concatenate([a, b], axis=1)),
    ("stack", lambda a, b: ops.stack([a, b], axis=-1), [U(2, 3), U(2, 3)], lambda a, b: np.stack([a, b], -1)),
    ("expand_dims", lambda a: ops.expand_dims(a, 1), [U(3, 4)], lambda a: a[:, None]),
    ("squeeze", lambda a: ops.squeeze(a, 1), [U(3, 1, 4)], lambda a: a[:, 0]),
    ("pad", lambda a: ops.pad(a, ((1, 0), (2, 1))), [U(3, 4)], lambda a: np.pad(a, ((1, 0), (2, 1)))),
    ("slice", lambda a: a[1:, ::2], [U(3, 5)], lambda a: a[1:, ::2]),
    ("index", lambda a: a[:, [0, 2, 2]], [U(3, 4)], lambda a: a[:, [0, 2, 2]]),
    ("broadcast_to", lambda a: ops.broadcast_to(a, (3, 4)), [U(1, 4)], lambda a: np.broadcast_to(a, (3, 4))),
    ("flip", lambda a: ops.flip(a, 1), [U(3, 4)], lambda a: a[:, ::-1]),
    # linear algebra
    ("matmul", ops.matmul, [U(3, 4), U(4, 2)], np.matmul),
    ("matmul_batched", ops.matmul, [U(2, 3, 4), U(4, 2)], np.matmul),
    ("matmul_vec", ops.matmul, [U(3, 4), U(4)], np.matmul),
    ("dot_nd", ops.dot, [U(2, 3, 4), U(3, 4, 2)], np.dot),  # numpy's N-D dot: a's last axis, b's second-to-last
    ("dot_vec", ops.dot, [U(2, 3, 4), U(4)], np.dot),
    ("rmatmul_const", lambda a: a @ W, [U(2, 3)], lambda a: a @ W),
    # activations
    ("relu", ops.relu, [AWAY(3, 5)], lambda a: np.maximum(a, 0)),
    ("sigmoid", ops.sigmoid, [U(3, 5)], special.expit),
    ("tanh", ops.tanh, [U(3, 5)], np.tanh),
    ("softmax", ops.softmax, [U(3, 5)], _softmax),
    ("softmax_axis0", lambda a: ops.softmax(a, axis=0), [U(3, 5)], lambda a: _softmax(a, 0)),
    ("log_softmax", ops.log_softmax, [U(3, 5)], lambda a: np.log(_softmax(a))),
    ("gelu", ops.gelu, [U(3, 5)],
     lambda a: 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a ** 3)))),
    ("gelu_exact", lambda a: ops.gelu(a, approximate=False), [U(3, 5)],
     lambda a: 0.5 * a * (1 + special.erf(a / np.sqrt(2)))),
    ("silu", ops.silu, [U(3, 5)], lambda a: a * special.expit(a)),
    ("leaky_relu", ops.leaky_relu, [AWAY(3, 5)], lambda a: np.where(a > 0, a, 0.2 * a)),
    ("elu", ops.elu, [AWAY(3, 5)], lambda a: np.where(a > 0, a, np.expm1(a))),
    ("softplus", ops.softplus, [U(3, 5)], lambda a: np.log1p(np.exp(a))),
    ("selu", ops.selu, [AWAY(3, 5)], lambda a: 1.0507009873554805 * np.where(a > 0, a, 1.6732632423543772 * np.expm1(a))),
    ("relu6", ops.relu6, [AWAY(3, 5)], lambda a: np.minimum(np.maximum(a, 0), 6)),
    ("hard_sigmoid", ops.hard_sigmoid, [U(3, 5)], lambda a: np.clip(a / 6 + 0.5, 0, 1)),
    # convolution, pooling, normalization
    ("conv", lambda x, w: ops.conv(x, w), [U(2, 6, 5, 2), U(3, 2, 2, 3)], _conv_ref),
    ("conv_same_strided", lambda x, w: ops.conv(x, w, strides=2, padding="same"), [U(1, 7, 6, 2), U(3, 3, 2, 2)],
     lambda x, w: _conv_ref(x, w, (2, 2), "same")),
    ("conv1d", lambda x, w: ops.conv(x, w), [U(2, 9, 2), U(3, 2, 3)],
     lambda x, w: _conv_ref(x[:, :, None], w[:, None])[:, :, 0]),
    ("conv_grouped", lambda x, w: ops.conv(x, w, padding="same"), [U(1, 5, 4, 4), U(3, 2, 2, 6)],
     lambda x, w: np.concatenate([_conv_ref(x[..., 2 * g:2 * g + 2], w[..., 3 * g:3 * g + 3], padding="same")
                                  for g in range(2)], -1)),
    ("conv_transpose_same_odd", lambda x, w: ops.conv_transpose(x, w, strides=2, padding="same"),
     [U(1, 3, 2, 2), U(3, 3, 2, 2)], lambda x, w: _conv_transpose_ref(x, w, (2, 2), "same")),
    ("conv_transpose_same_even_op", lambda x, w: ops.conv_transpose(x, w, strides=(2, 3), padding="same",
                                                                    output_padding=(0, 1)),
     [U(1, 3, 2, 2), U(4, 2, 1, 2)], lambda x, w: _conv_transpose_ref(x, w, (2, 3), "same", (0, 1))),
    ("conv_transpose_valid_op", lambda x, w: ops.conv_transpose(x, w, strides=(3, 2), output_padding=(2, 1)),
     [U(1, 2, 3, 1), U(2, 3, 2, 1)], lambda x, w: _conv_transpose_ref(x, w, (3, 2), "valid", (2, 1))),
    ("conv_transpose_dilated_strided", lambda x, w: ops.conv_transpose(x, w, strides=2, padding="same",
                                                                       dilation_rate=2),
     [U(1, 2, 3, 2), U(2, 3, 1, 2)], lambda x, w: _conv_transpose_ref(x, w, (2, 2), "same", dilation=2)),
    # (separable_conv is in ops.nn; convcore.ops exports it once ops/__init__.py names it)
    ("separable_conv", lambda x, dw, pw: ops.nn.separable_conv(x, dw, pw, strides=2, padding="same"),
     [U(1, 5, 4, 2), U(3, 2, 2, 2), U(1, 1, 4, 3)],
     lambda x, dw, pw: np.tensordot(np.concatenate(
         [_conv_ref(x[..., c:c + 1], dw[:, :, c:c + 1, :], (2, 2), "same") for c in range(2)], -1), pw[0, 0], 1)),
    ("adaptive_average_pool", lambda x: ops.nn.adaptive_average_pool(x, (3, 4)), [U(2, 5, 3, 2)],
     lambda x: _adaptive_ref(x, (3, 4), np.mean)),
    ("adaptive_max_pool", lambda x: ops.nn.adaptive_max_pool(x, (2, 3)), [DISTINCT(1, 5, 4, 2)],
     lambda x: _adaptive_ref(x, (2, 3), np.max)),
    ("adaptive_max_pool_native", lambda x: ops.nn.adaptive_max_pool(x, (2, 2)), [DISTINCT(1, 4, 6, 2)],
     lambda x: _adaptive_ref(x, (2, 2), np.max)),
    ("depthwise_conv", lambda x, w: ops.depthwise_conv(x, w), [U(2, 5, 5, 2), U(2, 2, 2, 2)],
     lambda x, w: np.concatenate([_conv_ref(x[..., c:c + 1], w[:, :, c:c + 1, :]) for c in range(2)], -1)),
    ("depthwise_conv_same_strided_dilated", lambda x, w: ops.depthwise_conv(x, w, strides=(2, 1), padding="same",
                                                                            dilation_rate=(1, 2)),
     [U(2, 7, 6, 3), U(3, 2, 3, 2)], lambda x, w: _depthwise_ref(x, w, (2, 1), "same", (1, 2))),
    ("depthwise_conv1d_same", lambda x, w: ops.depthwise_conv(x, w, strides=2, padding="same"),
     [U(2, 7, 4), U(3, 4, 1)], lambda x, w: _depthwise_ref(x[:, :, None], w[:, None], (2, 1), "same")[:, :, 0]),
    ("conv_groups_equal_channels", lambda x, w: ops.conv(x, w, padding="same"), [U(1, 5, 4, 3), U(3, 2, 1, 6)],
     lambda x, w: _depthwise_ref(x, w.reshape(3, 2, 3, 2), padding="same")),
    ("max_pool", lambda x: ops.max_pool(x, 2), [DISTINCT(2, 4, 6, 3)], lambda x: _pool_ref(x, 2, "max")),
    ("average_pool", lambda x: ops.average_pool(x, 2), [U(2, 5, 4, 3)], lambda x: _pool_ref(x, 2, "avg")),
    ("global_avg_pool", lambda x: ops.global_pool("avg", x), [U(2, 3, 4, 3)], lambda x: x.mean(axis=(1, 2))),
    ("global_max_pool", lambda x: ops.global_pool("max", x), [DISTINCT(2, 3, 4, 3)], lambda x: x.max(axis=(1, 2))),
    ("batch_normalization", lambda x, m, v, b, s: ops.batch_normalization(x, m, v, -1, b, s, 1e-3),
     [U(4, 3), U(3), POS(3), U(3), U(3)], lambda x, m, v, b, s: (x - m) / np.sqrt(v + 1e-3) * s + b),
    ("fused_layer_norm", lambda x, g, b: ops.nn.fused_layer_norm(x, g, b, epsilon=1e-3), [U(2, 3, 5), U(5), U(5)],
     lambda x, g, b: _group_norm_ref(x.reshape(6, 1, 5), g, b, 1, 1e-3).reshape(2, 3, 5)),
    ("fused_layer_norm_no_affine", lambda x: ops.nn.fused_layer_norm(x, epsilon=0.1), [U(4, 3)],
     lambda x: _group_norm_ref(x.reshape(4, 1, 3), None, None, 1, 0.1).reshape(4, 3)),
    ("fused_group_norm", lambda x, g, b: ops.nn.fused_group_norm(x, g, b, groups=2, epsilon=1e-3),
     [U(2, 3, 2, 4), U(4), U(4)], lambda x, g, b: _group_norm_ref(x.reshape(2, 6, 4), g, b, 2, 1e-3).reshape(2, 3, 2, 4)),
    ("fused_group_norm_scale_only", lambda x, g: ops.nn.fused_group_norm(x, g, groups=3, epsilon=1e-2),
     [U(3, 4, 6), U(6)], lambda x, g: _group_norm_ref(x, g, None, 3, 1e-2)),
    ("moments", lambda x: ops.moments(x, axes=(0,))[1], [U(5, 3)], lambda x: x.var(axis=0)),
    # image resizing (UpSampling2D); skimage's rescale is the bilinear reference
    ("upsample_nearest", lambda x: ops.upsample2d(x, (2, 3)), [U(2, 3, 2, 2)],
     lambda x: np.repeat(np.repeat(x, 2, 1), 3, 2)),
    ("upsample_bilinear", lambda x: ops.upsample2d(x, (3, 2), "bilinear"), [U(2, 4, 3, 2)],
     lambda x: np.stack([rescale(v, (3, 2), order=1, mode="edge", anti_aliasing=False, channel_axis=-1) for v in x])),
    # losses
    ("categorical_crossentropy", lambda p: ops.categorical_crossentropy(
        np.eye(4)[[0, 3, 1]], ops.softmax(p)), [U(3, 4)],
     lambda p: -np.log(_softmax(p)[np.arange(3), [0, 3, 1]])),
    ("categorical_crossentropy_probs", lambda p: ops.categorical_crossentropy(np.eye(4)[[0, 3, 1]], p),
     [POS(3, 4)], lambda p: -np.log((p / p.sum(1, keepdims=True))[np.arange(3), [0, 3, 1]])),
    ("sparse_categorical_crossentropy", lambda p: ops.sparse_categorical_crossentropy(
        np.array([2, 0, 1]), p, from_logits=True), [U(3, 4)],
     lambda p: -np.log(_softmax(p)[np.arange(3), [2, 0, 1]])),
    ("binary_crossentropy_logits", lambda p: ops.binary_crossentropy(np.array([[1.0, 0.0], [0.0, 1.0]]), p,
                                                                     from_logits=True), [U(2, 2)],
     lambda p: np.log1p(np.exp(-np.where([[1, 0], [0, 1]], p, -p)))),
    ("binary_crossentropy", lambda p: ops.binary_crossentropy(np.array([[1.0, 0.0], [0.0, 1.0]]), p),
     [U(2, 2, lo=0.1, hi=0.9)], lambda p: -np.where([[1, 0], [0, 1]], np.log(p), np.log(1 - p))),
    ("fused_sparse_ce", lambda p: ops.fused_loss("sparse_categorical_crossentropy", np.array([1, 0, 3]), p, True),
     [U(3, 4)], lambda p: np.mean(-np.log(_softmax(p)[np.arange(3), [1, 0, 3]]))),
    ("fused_mse", lambda p: ops.fused_loss("mse", np.array([[0.5, -1.0]]), p), [U(1, 2)],
     lambda p: np.mean((p - [[0.5, -1.0]]) ** 2)),
]

IDS = [e[0] for e in TABLE]


def _run(fn, arrays, device, dtype):
    ts = [ops.convert_to_tensor(np.asarray(a, dtype=dtype), device=device) for a in arrays]
    return fn(*ts)


@pytest.mark.parametrize("entry", TABLE, ids=IDS)
def test_op_matches_reference_on_cpu(entry):
    _, fn, makers, ref = entry
    arrays = [m() for m in makers]
    got = _run(fn, arrays, "cpu", np.float64)
    assert isinstance(got, cc.Tensor) and got.device == "cpu"
    want = np.asarray(ref(*arrays))
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


def _loss_of(fn, ts, weights):
    y = fn(*ts)
    return ops.sum(ops.multiply(y, weights)) if weights is not None else y


@pytest.mark.parametrize("entry", TABLE, ids=IDS)
def test_gradient_matches_finite_differences(entry):
    _, fn, makers, ref = entry
    arrays = [np.asarray(m(), dtype=np.float64) for m in makers]
    probe = fn(*[ops.convert_to_tensor(a) for a in arrays])
    r = rng.uniform(0.5, 1.5, probe.shape)  # a random cotangent
    ts = [ops.convert_to_tensor(a) for a in arrays]
    with cc.GradientTape() as tape:
        tape.watch(ts)
        loss = ops.sum(ops.multiply(fn(*ts), r))
    grads = tape.gradient(loss, ts)
    eps = 1e-6
    for k, (a, g) in enumerate(zip(arrays, grads)):
        num = np.zeros_like(a)
        for i in range(a.size):
            ap, am = a.copy(), a.copy()
            ap.flat[i] += eps
            am.flat[i] -= eps
            fp = np.sum(fn(*[ops.convert_to_tensor(ap if j == k else b) for j, b in enumerate(arrays)]).numpy() * r)
            fm = np.sum(fn(*[ops.convert_to_tensor(am if j == k else b) for j, b in enumerate(arrays)]).numpy() * r)
            num.flat[i] = (fp - fm) / (2 * eps)
        assert g is not None, f"input {k}: no gradient"
        g = g.numpy()
        assert g.shape == a.shape
        err = np.max(np.abs(g - num)) / max(np.max(np.abs(num)), 1e-3)
        assert err <= 1e-6, f"input {k}: relative error {err:.3g}\nanalytic {g}\nnumeric {num}"


@pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter")
@pytest.mark.parametrize("entry", TABLE, ids=IDS)
def test_gpu_matches_cpu_values_and_gradients(entry):
    _, fn, makers, ref = entry
    arrays = [np.asarray(m(), dtype=np.float32) for m in makers]
    outs = {}
    for dev in ("cpu", "gpu"):
        ts = [ops.convert_to_tensor(a, device=dev) for a in arrays]
        with cc.GradientTape() as tape:
            tape.watch(ts)
            y = fn(*ts)
            loss = ops.sum(y)
        assert y.device == dev
        outs[dev] = (y.numpy(), [g.numpy() for g in tape.gradient(loss, ts)])
    np.testing.assert_allclose(outs["gpu"][0], outs["cpu"][0], rtol=1e-4, atol=1e-5)
    for gg, gc_ in zip(outs["gpu"][1], outs["cpu"][1]):
        np.testing.assert_allclose(gg, gc_, rtol=1e-4, atol=1e-5)


def _poisoned(arrays, seed):
    """The entry's inputs with NaN, +inf and -inf written at random positions (at least
    one of each in the first input)."""
    r = np.random.default_rng(seed)
    out = []
    for k, a in enumerate(arrays):
        a = np.array(a, dtype=np.float64)
        flat = a.reshape(-1)
        for v in (np.nan, np.inf, -np.inf):
            if k == 0 or r.random() < 0.5:
                flat[r.integers(0, flat.size)] = v
        out.append(a)
    return out


# References that are textbook formulas, not the frameworks' ones, where inf / NaN are
# concerned: Keras's losses clip probabilities to [eps, 1 - eps] and sum y * log(p) over
# every class (0 * log(nan) is NaN), TF's logits form multiplies x * z (-inf * 0); and
# skimage's rescale clips its output to the input's range, which a NaN makes NaN
# everywhere (PyTorch's bilinear, which the kernels follow, is checked in
# test_hostile_use). The GPU-vs-CPU half still runs for them.
NONFINITE_REF_DIFFERS = {"categorical_crossentropy", "categorical_crossentropy_probs", "binary_crossentropy",
                         "binary_crossentropy_logits", "upsample_bilinear"}


@pytest.mark.parametrize("entry", TABLE, ids=IDS)
def test_nan_and_inf_match_the_reference_and_every_device(entry):
    """Issue 11: NaN and inf go through every op as through its numpy reference on the
    CPU, and the GPU gives the CPU's values, NaN and inf at the same places."""
    name, fn, makers, ref = entry
    arrays = _poisoned([m() for m in makers], zlib.crc32(name.encode()))
    with np.errstate(all="ignore"):
        want = np.asarray(ref(*arrays))
        got = _run(fn, arrays, "cpu", np.float64).numpy()
    if name not in NONFINITE_REF_DIFFERS:
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg="CPU vs reference")
    if HAVE_GPU:
        with np.errstate(all="ignore"):
            c32 = _run(fn, arrays, "cpu", np.float32).numpy()
            g32 = _run(fn, arrays, "gpu", np.float32).numpy()
        np.testing.assert_allclose(g32, c32, rtol=1e-4, atol=1e-5, err_msg="GPU vs CPU")


# ---------------------------------------------------------------- ties, zeros, NaN, sizes
@pytest.mark.parametrize("device", DEVICES)
def test_ties_follow_one_rule_on_every_device(device):
    dt = np.float32
    t = lambda a: ops.convert_to_tensor(np.asarray(a, dtype=dt), device=device)
    x = t([[1.0, 3.0], [3.0, 2.0]])
    # max pooling: the whole gradient to the first maximum of the window
    with cc.GradientTape() as tape:
        tape.watch(x)
        y = ops.max_pool(ops.reshape(x, (1, 2, 2, 1)), 2)
    np.testing.assert_array_equal(tape.gradient(y, x).numpy(), [[0, 1], [0, 0]])
    # global max and reduce max: shared evenly among the tied maxima (TensorFlow's rule)
    for f in (lambda v: ops.global_pool("max", ops.reshape(v, (1, 2, 2, 1))), lambda v: ops.max(v)):
        with cc.GradientTape() as tape:
            tape.watch(x)
            y = f(x)
        np.testing.assert_allclose(tape.gradient(y, x).numpy(), [[0, 0.5], [0.5, 0]])
    # maximum / minimum of equal values: the gradient goes to the first argument
    a, b = t([1.0, 2.0]), t([1.0, 5.0])
    with cc.GradientTape(persistent=True) as tape:
        tape.watch([a, b])
        y = ops.maximum(a, b)
        z = ops.minimum(a, b)
    np.testing.assert_array_equal(tape.gradient(y, a).numpy(), [1, 0])
    np.testing.assert_array_equal(tape.gradient(y, b).numpy(), [0, 1])
    np.testing.assert_array_equal(tape.gradient(z, a).numpy(), [1, 1])
    # relu at 0 has gradient 0; abs at 0 has gradient 0
    z0 = t([0.0, -1.0, 2.0])
    with cc.GradientTape(persistent=True) as tape:
        tape.watch(z0)
        r = ops.relu(z0)
        s = ops.abs(z0)
    np.testing.assert_array_equal(tape.gradient(r, z0).numpy(), [0, 0, 1])
    np.testing.assert_array_equal(tape.gradient(s, z0).numpy(), [0, -1, 1])
    # an all-zero channel trains the same way on every device
    zero = t(np.zeros((1, 2, 2, 1)))
    with cc.GradientTape() as tape:
        tape.watch(zero)
        y = ops.global_pool("max", ops.relu(zero))
    np.testing.assert_array_equal(tape.gradient(y, zero).numpy(), np.zeros((1, 2, 2, 1)))


@pytest.mark.parametrize("device", DEVICES)
def test_nan_propagates_through_host_computed_ops(device):
    x = ops.convert_to_tensor(np.array([1.0, np.nan, 3.0], dtype=np.float32), device=device)
    for f in (ops.exp, ops.sqrt, lambda v: ops.sum(v), lambda v: ops.max(v), lambda v: v * 2.0, lambda v: v + v):
        assert np.isnan(f(x).numpy()).any()


@pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter")
@pytest.mark.parametrize("n", [1, 255, 257, 1031])
def test_odd_sizes_and_chunked_bindings(n):
    """Sizes that are not multiples of the workgroup, and a 4 KiB binding limit that
    splits every tensor here into several windows."""
    a = rng.uniform(-1, 1, n).astype(np.float32)
    b = rng.uniform(-1, 1, n).astype(np.float32)
    for limit in (None, 4096):
        _core.gpu_set_binding_limit(limit)
        try:
            ta, tb = (ops.convert_to_tensor(v, device="gpu") for v in (a, b))
            with cc.GradientTape() as tape:
                tape.watch([ta, tb])
                y = ops.relu(ta * tb + ta) - ops.sigmoid(tb) * 3.0
                loss = ops.sum(y)
            ga, gb = tape.gradient(loss, [ta, tb])
        finally:
            _core.gpu_set_binding_limit(None)
        ref = np.maximum(a * b + a, 0) - 3.0 / (1 + np.exp(-b))
        np.testing.assert_allclose(y.numpy(), ref, rtol=1e-5, atol=1e-6)
        mask = (a * b + a) > 0
        np.testing.assert_allclose(ga.numpy(), mask * (b + 1), rtol=1e-5, atol=1e-6)
        s = 1 / (1 + np.exp(-b))
        np.testing.assert_allclose(gb.numpy(), mask * a - 3 * s * (1 - s), rtol=1e-4, atol=1e-5)


def test_conv_transpose_is_the_adjoint_of_conv():
    """<conv(x, w), y> == <x, conv_transpose(y, w)>: the definition. conv's kernel
    (k, C_in, C_out) is conv_transpose's (k, C_out of the transpose, C_in of it)."""
    for strides, padding, xs in [(1, "valid", (2, 6, 5, 2)), (2, "same", (1, 8, 6, 2)), (2, "valid", (1, 7, 7, 2))]:
        x = rng.standard_normal(xs)
        w = rng.standard_normal((3, 3, 2, 4))
        cx = ops.conv(x, w, strides=strides, padding=padding)
        y = rng.standard_normal(cx.shape)
        ct = ops.conv_transpose(y, w, strides=strides, padding=padding)
        assert ct.shape == x.shape
        lhs = float(np.sum(cx.numpy() * y))
        rhs = float(np.sum(x * ct.numpy()))
        assert math.isclose(lhs, rhs, rel_tol=1e-10), (lhs, rhs)
        # and its gradients against finite differences
        yt, wt = ops.convert_to_tensor(y), ops.convert_to_tensor(w)
        r = rng.standard_normal(x.shape)
        with cc.GradientTape() as tape:
            tape.watch([yt, wt])
            loss = ops.sum(ops.conv_transpose(yt, wt, strides=strides, padding=padding) * r)
        gy, gw = tape.gradient(loss, [yt, wt])
        for arr, g, which in ((y, gy, 0), (w, gw, 1)):
            idx = rng.choice(arr.size, 6, replace=False)
            for i in idx:
                ap, am = arr.copy(), arr.copy()
                ap.flat[i] += 1e-6
                am.flat[i] -= 1e-6
                args = lambda a: (a, w) if which == 0 else (y, a)
                fp = np.sum(ops.conv_transpose(*args(ap), strides=strides, padding=padding).numpy() * r)
                fm = np.sum(ops.conv_transpose(*args(am), strides=strides, padding=padding).numpy() * r)
                assert abs(g.numpy().flat[i] - (fp - fm) / 2e-6) <= 1e-6 * max(1.0, abs(g.numpy().flat[i]))


def test_conv_transpose_shape_follows_keras():
    y = np.zeros((1, 4, 5, 3))
    w = np.zeros((3, 3, 2, 3))
    assert ops.conv_transpose(y, w).shape == (1, 6, 7, 2)
    assert ops.conv_transpose(y, w, strides=2, padding="same").shape == (1, 8, 10, 2)
    assert ops.conv_transpose(y, w, strides=2).shape == (1, 9, 11, 2)


def test_argmax_and_comparisons_have_no_gradient():
    x = ops.convert_to_tensor(np.array([1.0, 3.0, 2.0]))
    assert int(ops.argmax(x)) == 1
    with cc.GradientTape() as tape:
        tape.watch(x)
        y = ops.cast(ops.argmax(x), "float64") * 2.0
    with pytest.raises(ValueError, match="argmax.*no gradient"):
        tape.gradient(y, x)


def test_mixing_devices_and_float64_on_the_gpu_raise():
    if not HAVE_GPU:
        pytest.skip("no GPU adapter")
    a = ops.convert_to_tensor(np.ones(3, np.float32))
    b = ops.convert_to_tensor(np.ones(3, np.float32), device="gpu")
    with pytest.raises(ValueError, match="two devices"):
        ops.add(a, b)
    with pytest.raises(TypeError, match="float32"):
        ops.convert_to_tensor(np.ones(3), device="gpu")


def test_op_messages_name_what_was_expected():
    with pytest.raises(ValueError, match=r"reshape.*\(2, 3\).*\(4,\)"):
        ops.reshape(np.zeros((2, 3)), (4,))
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        ops.sum(np.zeros((2, 3)), axis=3)
    with pytest.raises(ValueError, match="conv"):
        ops.conv(np.zeros((1, 4, 4)), np.zeros((3, 3, 1, 2)))
    with pytest.raises(ValueError, match="concatenate"):
        ops.concatenate([np.zeros((2, 3)), np.zeros((3, 3))], axis=1)
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        ops.max_pool(np.zeros((1, 4, 4, 1)), 2, padding="full")


def test_backends_implement_one_interface():
    """The CPU and GPU backends have the same operations: nothing is CPU-only by
    accident (the GPU's are a kernel, the same binding, or the one host fallback)."""
    from convcore.device import CpuBackend, GpuBackend
    cpu = {n for n in dir(CpuBackend) if not n.startswith("_") and callable(getattr(CpuBackend, n))}
    gpu = {n for n in dir(GpuBackend) if not n.startswith("_") and callable(getattr(GpuBackend, n))}
    assert cpu == gpu


@pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter")
def test_a_convnet_step_on_the_gpu_uses_no_fallback():
    """Every kernel of a convnet's training step (conv + bias + ReLU, pooling, batch
    norm, dropout, dense + softmax, the fused loss, Adam) runs on the device."""
    from convcore import layers as L
    cc.set_seed(0)
    m = cc.Sequential([L.Input((10, 10, 1)), L.Conv2D(4, 3, activation="relu"), L.BatchNormalization(),
                       L.MaxPooling2D(), L.Flatten(), L.Dropout(0.3), L.Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"], device="gpu")
    x = rng.uniform(0, 1, (8, 10, 10, 1)).astype(np.float32)
    y = np.arange(8) % 3
    m.train_on_batch(x, y)
    before = cc.device.host_fallbacks()
    for _ in range(3):
        m.train_on_batch(x, y)
    assert cc.device.host_fallbacks() == before


@pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter")
def test_generic_array_ops_run_on_the_gpu_without_fallback():
    """Elementwise functions, broadcasting arithmetic, reductions and strided views have
    WGSL kernels (shaders/array.wgsl): no host round trip, the CPU's values, NaN kept."""
    a = rng.uniform(0.2, 2.0, (3, 4, 5)).astype(np.float32)
    b = rng.uniform(0.2, 2.0, (4, 1)).astype(np.float32)
    cases = [
        (lambda x, y: ops.exp(x) - ops.log(x) * ops.sqrt(x) / ops.abs(-x), None),
        (lambda x, y: ops.square(x) + ops.reciprocal(x) - ops.sign(x), None),
        (lambda x, y: x * y + y / x - ops.power(x, y), None),
        (lambda x, y: ops.maximum(x, y) - ops.minimum(x, 1.0), None),
        (lambda x, y: ops.sum(x, axis=(0, 2)), None),
        (lambda x, y: ops.mean(x, axis=1, keepdims=True), None),
        (lambda x, y: ops.max(x) + ops.min(x, axis=0), None),
        (lambda x, y: ops.transpose(x, (2, 0, 1)), None),
        (lambda x, y: ops.broadcast_to(y, (3, 4, 5)), None),
        (lambda x, y: x[1:, ::2, -3:], None),
        (lambda x, y: x[..., 2], None),
        (lambda x, y: ops.flip(x, (0, 2)), None),
    ]
    for f, _ in cases:
        want = f(ops.convert_to_tensor(a), ops.convert_to_tensor(b)).numpy()
        ta, tb = ops.convert_to_tensor(a, device="gpu"), ops.convert_to_tensor(b, device="gpu")
        before = cc.device.host_fallbacks()
        got = f(ta, tb)
        assert cc.device.host_fallbacks() == before
        assert got.device == "gpu"
        np.testing.assert_allclose(got.numpy(), want, rtol=2e-5, atol=1e-6)
    n = ops.convert_to_tensor(np.array([[1.0, np.nan], [3.0, 2.0]], np.float32), device="gpu")
    assert np.isnan(ops.max(n).numpy()) and np.isnan(ops.maximum(n, 0.5).numpy()[0, 1])
    np.testing.assert_array_equal(np.isnan(ops.max(n, axis=0).numpy()), [False, True])


@pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter")
def test_nan_survives_relu_and_max_pooling_on_the_gpu():
    """The audit's reproducer: max_pool([[1, nan], [3, 4]], 2) is nan on the GPU as on
    the CPU (shaders test NaN by its bits; `v != v` may be folded away)."""
    x = np.array([[1.0, np.nan], [3.0, 4.0]], np.float32)
    assert np.isnan(cc.max_pool(x, 2, device="gpu")).all() and np.isnan(cc.max_pool(x, 2)).all()
    for dev in DEVICES:
        t = ops.convert_to_tensor(x.reshape(1, 2, 2, 1), device=dev)
        assert np.isnan(ops.relu(t).numpy()[0, 0, 1, 0])
        assert np.isnan(ops.max_pool(t, 2).numpy()).all()
        assert np.isnan(ops.global_pool("max", t).numpy()).all()
