"""ONNX export of a model's inference graph (``model.export('m.onnx')``).

The model's graph is walked node by node (Sequential and functional models, models
nested as layers, layers called more than once) and each layer call becomes the ONNX
nodes of its inference computation, with its weights as float32 initializers. Nothing
runs through a tracer: each supported layer class has a converter here, and a layer
without one (a Lambda, a subclassed layer or model with its own ``call``, a layer ONNX
cannot express) is a ValueError naming the layer and its class, raised before anything
is written.

Layout. convcore is channels-last; ONNX's convolutions and poolings are channels-first.
Each tensor of the ONNX graph carries the permutation of the Keras tensor's axes it
holds: a convolution asks for its input channels-first (one Transpose, cached, so a
tensor read by several layers is transposed once), and its output stays channels-first
through the layers that do not care (activations, normalization, pooling, padding,
merges, ...). A layer that depends on the axis order — Flatten, Reshape, Dense on a
rank > 2 input — asks for Keras's order again, so a Flatten flattens (H, W, C) as Keras
does, and the model's outputs are always in Keras's order.

Opsets 13 to the installed ``onnx``'s newest are supported (default 18); ``Gelu`` is
used from opset 20, composed from ``Erf`` before.
"""
from __future__ import annotations

import math
import os

import numpy as np

DEFAULT_OPSET = 18
MIN_OPSET = 13
_PROTOBUF_LIMIT = 2 ** 31 - 2 ** 24  # protobuf's 2 GiB, less room for the graph itself


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install onnx") from None
    return onnx, helper, numpy_helper


class _Value:
    """A tensor of the ONNX graph: its name, the Keras shape (batch axis first, None for
    unknown sizes) and ``perm``: stored axis j holds Keras axis perm[j]."""

    __slots__ = ("name", "shape", "perm")

    def __init__(self, name, shape, perm=None):
        self.name = name
        self.shape = tuple(shape)
        self.perm = tuple(range(len(self.shape))) if perm is None else tuple(perm)

    @property
    def rank(self):
        return len(self.shape)

    def axis(self, keras_axis):
        """The stored axis that holds Keras axis ``keras_axis`` (negative counts from the end)."""
        return self.perm.index(keras_axis % self.rank)


def _identity(r):
    return tuple(range(r))


def _first(r):
    """Channels-first order of a rank-r channels-last tensor."""
    return (0, r - 1) + tuple(range(1, r - 1)) if r >= 3 else _identity(r)


class Unsupported(ValueError):
    pass


def _unsupported(layer, why):
    return Unsupported(f"export to ONNX: layer {layer.name!r} ({type(layer).__name__}) cannot be exported: {why}")


class _Builder:
    """The ONNX graph being built: nodes, initializers and unique names."""

    def __init__(self, helper, numpy_helper, opset):
        self.h, self.nh, self.opset = helper, numpy_helper, opset
        self.nodes, self.inits = [], []
        self._names = set()
        self._weights = {}  # id(variable) -> (variable, initializer name): shared layers share weights
        self._consts = {}  # small constants by content
        self._perms = {}  # (name, perm) -> transposed value
        self.weight_bytes = 0
        self.node_shapes = {}  # id(node) -> its outputs' Keras shapes here (see _output_shapes)

    def out_shape(self, node, i=0):
        return self.node_shapes[id(node)][i]

    def fresh(self, base):
        base = "".join(c if c.isalnum() or c in "_./-:" else "_" for c in str(base)) or "t"
        name, i = base, 0
        while name in self._names:
            i += 1
            name = f"{base}_{i}"
        self._names.add(name)
        return name

    def reserve(self, name):
        self._names.add(name)

    def op(self, op_type, inputs, hint, n_out=1, **attrs):
        outs = [self.fresh(f"{hint}/{op_type}" if n_out == 1 else f"{hint}/{op_type}_{i}") for i in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.h.make_node(op_type, list(inputs), outs, name=self.fresh(f"{hint}/{op_type}:node"),
                                           **attrs))
        return outs[0] if n_out == 1 else outs

    def array(self, a, hint, dtype=np.float32):
        """An initializer holding ``a`` (small constants are shared by content)."""
        a = np.ascontiguousarray(np.asarray(a, dtype=dtype))
        key = (a.dtype.str, a.shape, a.tobytes()) if a.size <= 64 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.fresh(hint)
        self.inits.append(self.nh.from_array(a, name))
        self.weight_bytes += a.nbytes
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values, hint="const"):
        return self.array(np.asarray(list(values), dtype=np.int64), hint, dtype=np.int64)

    def scalar(self, v, hint="const"):
        return self.array(np.float32(v), hint)

    def weight(self, variable, hint, transform=None):
        """A layer weight as a float32 initializer (once per variable and transform)."""
        key = (id(variable), None if transform is None else transform[:-1])
        if key in self._weights:
            return self._weights[key][1]
        a = variable.numpy() if hasattr(variable, "numpy") else np.asarray(variable)
        a = np.asarray(a, dtype=np.float32)
        if transform is not None:
            a = transform[-1](a)
        name = self.array(a, hint)
        self._weights[key] = (variable, name)  # keep the variable alive: ids stay unique
        return name

    def to_perm(self, v, perm):
        """``v`` with its axes stored in order ``perm`` (a Transpose, once per tensor)."""
        perm = tuple(perm)
        if v.perm == perm:
            return v
        key = (v.name, perm)
        if key not in self._perms:
            q = [v.perm.index(p) for p in perm]
            self._perms[key] = _Value(self.op("Transpose", [v.name], v.name.split("/")[0], perm=q), v.shape, perm)
        return self._perms[key]

    def bconst(self, v, a, hint):
        """Constant ``a`` (broadcastable against Keras tensor ``v``, aligned from the last
        axis) stored in ``v``'s axis order."""
        a = np.asarray(a, dtype=np.float64)
        if a.ndim == 0:
            return self.scalar(float(a), hint)
        if a.ndim > v.rank:
            raise ValueError(f"a constant of shape {a.shape} cannot broadcast against a tensor of rank {v.rank}")
        full = a.reshape((1,) * (v.rank - a.ndim) + a.shape)
        return self.array(full.transpose(v.perm), hint)

    def reduce(self, op_type, x, axes, hint, keepdims=1):
        axes = [int(a) for a in axes]
        takes_input = op_type == "ReduceSum" or self.opset >= 18
        if takes_input:
            return self.op(op_type, [x, self.ints(axes, "axes")], hint, keepdims=keepdims)
        return self.op(op_type, [x], hint, axes=axes, keepdims=keepdims)

    def clip(self, x, lo, hi, hint):
        return self.op("Clip", [x, "" if lo is None else self.scalar(lo), "" if hi is None else self.scalar(hi)],
                       hint)

    def unsqueeze(self, x, axes, hint):
        return self.op("Unsqueeze", [x, self.ints(axes, "axes")], hint)


# ---------------------------------------------------------------------- activations
def _gelu(b, x, hint):
    """Exact gelu (Keras 3's default): the Gelu op from opset 20, ``x/2 (1 + erf(x / sqrt 2))`` before."""
    if b.opset >= 20:
        return b.op("Gelu", [x], hint)
    e = b.op("Erf", [b.op("Mul", [x, b.scalar(1.0 / math.sqrt(2.0))], hint)], hint)
    half = b.op("Mul", [x, b.scalar(0.5)], hint)
    return b.op("Mul", [half, b.op("Add", [e, b.scalar(1.0)], hint)], hint)


def _activation(b, v, activation, layer, hint):
    """``activation`` (a name from ``convcore.activations.get``) applied to value ``v``."""
    if not isinstance(activation, str):
        raise _unsupported(layer, f"its activation {getattr(activation, '__name__', activation)!r} is a Python "
                                  "function; only convcore's built-in activations can be exported")
    a, x = str(activation), v.name

    def out(name):
        return _Value(name, v.shape, v.perm)
    if a == "linear":
        return v
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus", "softsign": "Softsign",
              "exponential": "Exp", "selu": "Selu", "elu": "Elu"}
    if a in simple:
        return out(b.op(simple[a], [x], hint))
    if a == "relu6":
        return out(b.clip(x, 0.0, 6.0, hint))
    if a == "leaky_relu":
        return out(b.op("LeakyRelu", [x], hint, alpha=0.2))
    if a in ("softmax", "log_softmax"):
        return out(b.op("Softmax" if a == "softmax" else "LogSoftmax", [x], hint, axis=v.axis(-1)))
    if a == "gelu":
        return out(_gelu(b, x, hint))
    if a in ("silu", "swish"):
        return out(b.op("Mul", [x, b.op("Sigmoid", [x], hint)], hint))
    if a == "hard_sigmoid":
        return out(b.op("HardSigmoid", [x], hint, alpha=1.0 / 6.0, beta=0.5))
    if a in ("hard_silu", "hard_swish"):
        return out(b.op("Mul", [x, b.op("HardSigmoid", [x], hint, alpha=1.0 / 6.0, beta=0.5)], hint))
    if a == "mish":
        return out(b.op("Mul", [x, b.op("Tanh", [b.op("Softplus", [x], hint)], hint)], hint))
    if a == "celu":
        return out(b.op("Celu", [x], hint, alpha=1.0))
    if a == "hard_tanh":
        return out(b.clip(x, -1.0, 1.0, hint))
    if a == "tanh_shrink":
        return out(b.op("Sub", [x, b.op("Tanh", [x], hint)], hint))
    if a == "soft_shrink":
        return out(b.op("Shrink", [x], hint, bias=0.5, lambd=0.5))
    if a == "hard_shrink":
        return out(b.op("Shrink", [x], hint, bias=0.0, lambd=0.5))
    if a == "log_sigmoid":
        return out(b.op("Neg", [b.op("Softplus", [b.op("Neg", [x], hint)], hint)], hint))
    if a == "sparse_sigmoid":
        return out(b.clip(b.op("Mul", [b.op("Add", [x, b.scalar(1.0)], hint), b.scalar(0.5)], hint), 0.0, 1.0,
                          hint))
    if a == "squareplus":
        r = b.op("Sqrt", [b.op("Add", [b.op("Mul", [x, x], hint), b.scalar(4.0)], hint)], hint)
        return out(b.op("Mul", [b.op("Add", [x, r], hint), b.scalar(0.5)], hint))
    if a == "sparse_plus":
        mid = b.op("Mul", [b.op("Mul", [b.op("Add", [x, b.scalar(1.0)], hint)] * 2, hint), b.scalar(0.25)], hint)
        hi = b.op("Where", [b.op("GreaterOrEqual", [x, b.scalar(1.0)], hint), x, mid], hint)
        return out(b.op("Where", [b.op("LessOrEqual", [x, b.scalar(-1.0)], hint), b.scalar(0.0), hi], hint))
    if a == "glu":
        ax = v.axis(-1)
        if v.shape[-1] is None or v.shape[-1] % 2:
            raise _unsupported(layer, f"glu needs an even, known size of the last axis, got shape {v.shape}")
        if b.opset >= 18:
            h1, h2 = b.op("Split", [x], hint, n_out=2, axis=ax, num_outputs=2)
        else:
            half = v.shape[-1] // 2
            h1, h2 = b.op("Split", [x, b.ints([half, half])], hint, n_out=2, axis=ax)
        shape = v.shape[:-1] + (v.shape[-1] // 2,)
        return _Value(b.op("Mul", [h1, b.op("Sigmoid", [h2], hint)], hint), shape, v.perm)
    raise _unsupported(layer, f"activation {a!r} has no ONNX conversion")


# ---------------------------------------------------------------------- windows
def _same_pads(sizes, kernel, strides, dilations):
    """TensorFlow's (Keras's) 'same' padding: (before, after) per axis, the smaller half first."""
    pads = []
    for n, k, s, d in zip(sizes, kernel, strides, dilations):
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def _window_attrs(x, padding, kernel, strides, dilations=None, causal_pad=None):
    """``pads`` / ``auto_pad`` for a window over the spatial axes of channels-last shape ``x``."""
    d = len(kernel)
    dilations = dilations or (1,) * d
    if causal_pad is not None:
        return {"pads": [causal_pad, 0]}
    if padding == "valid":
        return {"pads": [0] * (2 * d)}
    spatial = x.shape[1:-1]
    if any(n is None for n in spatial):
        return {"auto_pad": "SAME_UPPER"}  # the same split as TensorFlow's: the extra cell after
    pads = _same_pads(spatial, kernel, strides, dilations)
    return {"pads": [p[0] for p in pads] + [p[1] for p in pads]}


# ---------------------------------------------------------------------- converters
def _dilate_kernel(a, dilations):
    """Kernel (k..., in, out) with ``dilations - 1`` zeros between its taps."""
    if dilations is None:
        return a
    d = len(dilations)
    shape = tuple((k - 1) * r + 1 for k, r in zip(a.shape[:d], dilations)) + a.shape[d:]
    out = np.zeros(shape, a.dtype)
    out[tuple(slice(None, None, r) for r in dilations)] = a
    return out


def _conv(b, layer, ins, node, hint):
    from ..layers import conv as C
    x = ins[0]
    r = x.rank
    d = r - 2
    xf = b.to_perm(x, _first(r))
    causal = None
    if isinstance(layer, C._Conv) and layer.padding == "causal":
        causal = (layer.kernel_size[0] - 1) * layer.dilation_rate[0]
    win = _window_attrs(x, layer.padding, layer.kernel_size, layer.strides, layer.dilation_rate, causal)
    kernel, dilations, dilate = list(layer.kernel_size), list(layer.dilation_rate), None
    if "auto_pad" in win and any(r_ > 1 for r_ in dilations):
        # onnxruntime refuses SAME_UPPER with dilations: the kernel is dilated with zeros instead
        kernel = [(k - 1) * r_ + 1 for k, r_ in zip(kernel, dilations)]
        dilate, dilations = tuple(dilations), [1] * d
    common = dict(kernel_shape=kernel, strides=list(layer.strides), dilations=dilations, **win)

    def spatial_first(a):  # (k..., in, out) -> (out, in, k...)
        a = _dilate_kernel(a, dilate)
        return a.transpose((d + 1, d) + tuple(range(d)))

    def depthwise(a):  # (k..., C, M) -> (C * M, 1, k...): output channel c * M + m reads input channel c
        a = _dilate_kernel(a, dilate)
        a = a.reshape(a.shape[:d] + (-1,))
        return a.transpose((d,) + tuple(range(d)))[:, None]
    bias = [b.weight(layer.bias, f"{layer.name}/bias")] if layer.bias is not None else []
    if isinstance(layer, C._Conv):
        w = b.weight(layer.kernel, f"{layer.name}/kernel", ("oihw", dilate, spatial_first))
        y = b.op("Conv", [xf.name, w] + bias, hint, group=layer.groups, **common)
    elif isinstance(layer, C._DepthwiseConv):
        c = layer.kernel.shape[-2]
        w = b.weight(layer.kernel, f"{layer.name}/kernel", ("depthwise", dilate, depthwise))
        y = b.op("Conv", [xf.name, w] + bias, hint, group=c, **common)
    elif isinstance(layer, C._SeparableConv):
        c = layer.depthwise_kernel.shape[-2]
        w1 = b.weight(layer.depthwise_kernel, f"{layer.name}/depthwise_kernel", ("depthwise", dilate, depthwise))
        z = b.op("Conv", [xf.name, w1], hint, group=c, **common)
        w2 = b.weight(layer.pointwise_kernel, f"{layer.name}/pointwise_kernel", ("oihw", None, spatial_first))
        y = b.op("Conv", [z, w2] + bias, hint, kernel_shape=[1] * d)
    else:  # transposed convolution
        return _conv_transpose(b, layer, xf, node, hint)
    return _activation(b, _Value(y, b.out_shape(node), _first(r)), layer.activation, layer, hint)


def _conv_transpose(b, layer, xf, node, hint):
    """Keras's transposed convolution (jax's padding of the dilated input, converted to
    ConvTranspose's crop of the full output; a negative crop is zero padding after)."""
    d = len(layer.kernel_size)
    begins, ends, extra = [], [], []
    for i in range(d):
        ke = (layer.kernel_size[i] - 1) * layer.dilation_rate[i] + 1
        s = layer.strides[i]
        op = None if layer.output_padding is None else layer.output_padding[i]
        if layer.padding == "valid":
            op = max(ke, s) - ke if op is None else op
            left, right = ke - 1, ke - 1 + op
        else:
            pad_len = s + ke - 2 if op is None else ke + ke % 2 - 2 + op
            left = min(pad_len // 2 + pad_len % 2, ke - 1)
            right = pad_len - left
        begin, end = ke - 1 - left, ke - 1 - right
        begins.append(begin)
        ends.append(max(end, 0))
        extra.append(max(-end, 0))
    w = b.weight(layer.kernel, f"{layer.name}/kernel",
                 ("iohw", None, lambda a: a.transpose((d + 1, d) + tuple(range(d)))))  # (k..., F, C) -> (C, F, k...)
    y = b.op("ConvTranspose", [xf.name, w], hint, kernel_shape=list(layer.kernel_size), strides=list(layer.strides),
             dilations=list(layer.dilation_rate), pads=begins + ends)
    if any(extra):
        y = b.op("Pad", [y, b.ints([0, 0] + [0] * d + [0, 0] + extra)], hint)
    r = d + 2
    v = _Value(y, b.out_shape(node), _first(r))
    if layer.bias is not None:
        bias = b.weight(layer.bias, f"{layer.name}/bias", ("c11", None, lambda a: a.reshape((-1,) + (1,) * d)))
        v = _Value(b.op("Add", [y, bias], hint), v.shape, v.perm)
    return _activation(b, v, layer.activation, layer, hint)


def _dense(b, layer, ins, node, hint):
    x = b.to_perm(ins[0], _identity(ins[0].rank))
    y = b.op("MatMul", [x.name, b.weight(layer.kernel, f"{layer.name}/kernel")], hint)
    if layer.bias is not None:
        y = b.op("Add", [y, b.weight(layer.bias, f"{layer.name}/bias")], hint)
    return _activation(b, _Value(y, b.out_shape(node)), layer.activation, layer, hint)


def _pool(b, layer, ins, node, hint):
    x = ins[0]
    xf = b.to_perm(x, _first(x.rank))
    win = _window_attrs(x, layer.padding, layer.pool_size, layer.strides)
    if layer.kind == "max":
        y = b.op("MaxPool", [xf.name], hint, kernel_shape=list(layer.pool_size), strides=list(layer.strides), **win)
    else:  # padded cells are not counted (Keras's 'same' average)
        y = b.op("AveragePool", [xf.name], hint, kernel_shape=list(layer.pool_size), strides=list(layer.strides),
                 count_include_pad=0, **win)
    return _Value(y, b.out_shape(node), _first(x.rank))


def _global_pool(b, layer, ins, node, hint):
    x = ins[0]
    axes = [x.axis(a) for a in range(1, x.rank - 1)]
    y = b.reduce("ReduceMax" if layer.kind == "max" else "ReduceMean", x.name, axes, hint,
                 keepdims=1 if layer.keepdims else 0)
    if layer.keepdims:
        return _Value(y, b.out_shape(node), x.perm)
    return _Value(y, b.out_shape(node))  # (batch, channels)


def _adaptive_pool(b, layer, ins, node, hint):
    """Keras's adaptive windows ([floor(i n / o), ceil((i + 1) n / o)) per axis), one
    axis at a time (a box's max / mean is the max / mean along each axis in turn): a
    pooling of window and stride n / o where o divides n, else a Slice and a Reduce per
    output cell, concatenated. The spatial sizes must be known."""
    x = ins[0]
    spatial = x.shape[1:-1]
    if any(n is None for n in spatial):
        raise _unsupported(layer, f"it needs known spatial sizes (give input_signature=...), got input shape "
                                  f"{x.shape}")
    reduce_op = "ReduceMax" if layer.kind == "max" else "ReduceMean"
    y, shape = x.name, list(x.shape)
    for i, (n, o) in enumerate(zip(spatial, layer.output_size), start=1):
        ax = x.axis(i)
        if n == o:
            continue
        cells = []
        for j in range(o):
            lo, hi = (j * n) // o, -(-((j + 1) * n) // o)
            part = b.op("Slice", [y, b.ints([lo]), b.ints([hi]), b.ints([ax])], hint)
            cells.append(b.reduce(reduce_op, part, [ax], hint))
        y = cells[0] if o == 1 else b.op("Concat", cells, hint, axis=ax)
        shape[i] = o
    return _Value(y, tuple(shape), x.perm)


def _batch_norm(b, layer, ins, node, hint):
    x = ins[0]
    full = (1,) + tuple(s if s is not None else 1 for s in x.shape[1:])
    bshape = [full[i] if i in layer._axes else 1 for i in range(x.rank)]
    f64 = lambda w: np.asarray(w.numpy(), dtype=np.float64).reshape(bshape)
    mean, var = f64(layer.moving_mean), f64(layer.moving_variance)
    inv = 1.0 / np.sqrt(var + layer.epsilon)
    if layer.gamma is not None:
        inv = inv * f64(layer.gamma)
    y = b.op("Mul", [b.op("Sub", [x.name, b.bconst(x, mean, f"{layer.name}/moving_mean")], hint),
                     b.bconst(x, inv, f"{layer.name}/scale")], hint)
    if layer.beta is not None:
        y = b.op("Add", [y, b.bconst(x, f64(layer.beta), f"{layer.name}/beta")], hint)
    return _Value(y, x.shape, x.perm)


def _affine(b, layer, x, y, axes, gamma, beta):
    """``y * gamma + beta`` with weights of the shape of Keras axes ``axes`` of ``x``."""
    bshape = [x.shape[i] if i in axes else 1 for i in range(x.rank)]
    if gamma is not None:
        y = b.op("Mul", [y, b.bconst(x, np.asarray(gamma.numpy(), np.float64).reshape(bshape),
                                     f"{layer.name}/{gamma.name}")], layer.name)
    if beta is not None:
        y = b.op("Add", [y, b.bconst(x, np.asarray(beta.numpy(), np.float64).reshape(bshape),
                                     f"{layer.name}/{beta.name}")], layer.name)
    return y


def _rsqrt_plus(b, v, eps, hint):
    return b.op("Reciprocal", [b.op("Sqrt", [b.op("Add", [v, b.scalar(eps)], hint)], hint)], hint)


def _layer_norm(b, layer, ins, node, hint):
    x = ins[0]
    axes = [x.axis(a) for a in layer._axes]
    mean = b.reduce("ReduceMean", x.name, axes, hint)
    dev = b.op("Sub", [x.name, mean], hint)
    var = b.reduce("ReduceMean", b.op("Mul", [dev, dev], hint), axes, hint)
    inv = _rsqrt_plus(b, var, layer.epsilon, hint)
    y = b.op("Mul", [x.name if layer.rms_scaling else dev, inv], hint)
    return _Value(_affine(b, layer, x, y, layer._axes, layer.gamma, layer.beta), x.shape, x.perm)


def _group_norm(b, layer, ins, node, hint):
    x = ins[0]
    ax = layer._axis
    c = x.shape[ax]
    g = layer._groups_for(c)
    perm = (0, ax) + tuple(i for i in range(1, x.rank) if i != ax)
    xp = b.to_perm(x, perm)  # (batch, channels, rest...): a group is a contiguous run of each sample
    grouped = b.op("Reshape", [xp.name, b.ints([0, g, -1])], hint)
    mean = b.reduce("ReduceMean", grouped, [2], hint)
    dev = b.op("Sub", [grouped, mean], hint)
    var = b.reduce("ReduceMean", b.op("Mul", [dev, dev], hint), [2], hint)
    y = b.op("Mul", [dev, _rsqrt_plus(b, var, layer.epsilon, hint)], hint)
    y = b.op("Reshape", [y, b.op("Shape", [xp.name], hint)], hint)
    return _Value(_affine(b, layer, xp, y, [ax], layer.gamma, layer.beta), x.shape, perm)


def _rms_norm(b, layer, ins, node, hint):
    x = ins[0]
    axes = [x.axis(a) for a in layer._axes]
    ms = b.reduce("ReduceMean", b.op("Mul", [x.name, x.name], hint), axes, hint)
    y = b.op("Mul", [x.name, _rsqrt_plus(b, ms, layer.epsilon, hint)], hint)
    return _Value(_affine(b, layer, x, y, layer._axes, layer.scale, None), x.shape, x.perm)


def _unit_norm(b, layer, ins, node, hint):
    x = ins[0]
    axes = [x.axis(a) for a in layer._axes]
    sq = b.reduce("ReduceSum", b.op("Mul", [x.name, x.name], hint), axes, hint)
    inv = b.op("Min", [b.op("Reciprocal", [b.op("Sqrt", [sq], hint)], hint), b.scalar(1e12)], hint)
    return _Value(b.op("Mul", [x.name, inv], hint), x.shape, x.perm)


def _relu_layer(b, layer, ins, node, hint):
    x = ins[0]
    slope, t, top = layer.negative_slope, layer.threshold, layer.max_value
    v = lambda name: _Value(name, x.shape, x.perm)
    if slope == 0.0 and t == 0.0 and top is None:
        return v(b.op("Relu", [x.name], hint))
    if slope != 0.0 and t == 0.0 and top is None:
        return v(b.op("LeakyRelu", [x.name], hint, alpha=float(slope)))
    if t == 0.0:
        pos = b.op("Relu", [x.name], hint)
    else:
        pos = b.op("Where", [b.op("Greater", [x.name, b.scalar(t)], hint), x.name, b.scalar(0.0)], hint)
    if top is not None:
        pos = b.op("Min", [pos, b.scalar(top)], hint)
    if slope == 0.0:
        return v(pos)
    neg = b.op("Relu", [b.op("Sub", [b.scalar(t), x.name], hint)], hint)
    return v(b.op("Sub", [pos, b.op("Mul", [neg, b.scalar(slope)], hint)], hint))


def _prelu(b, layer, ins, node, hint):
    x = ins[0]
    alpha = np.asarray(layer.alpha.numpy(), np.float64)
    return _Value(b.op("PRelu", [x.name, b.bconst(x, alpha, f"{layer.name}/alpha")], hint), x.shape, x.perm)


def _softmax_layer(b, layer, ins, node, hint):
    x = ins[0]
    axes = layer.axis if isinstance(layer.axis, list) else [layer.axis]
    for a in axes:
        if not -x.rank <= a < x.rank:
            raise _unsupported(layer, f"axis {a} is out of range for inputs of rank {x.rank}")
    stored = [x.axis(a) for a in axes]
    if len(stored) == 1:
        return _Value(b.op("Softmax", [x.name], hint, axis=stored[0]), x.shape, x.perm)
    lse = b.reduce("ReduceLogSumExp", x.name, stored, hint)
    return _Value(b.op("Exp", [b.op("Sub", [x.name, lse], hint)], hint), x.shape, x.perm)


def _simple_act_layer(op, **attrs_of):
    def convert(b, layer, ins, node, hint):
        x = ins[0]
        attrs = {k: float(f(layer)) for k, f in attrs_of.items()}
        return _Value(b.op(op, [x.name], hint, **attrs), x.shape, x.perm)
    return convert


def _activation_layer(b, layer, ins, node, hint):
    return _activation(b, ins[0], layer.activation, layer, hint)


def _identity_layer(b, layer, ins, node, hint):
    return ins[0] if len(ins) == 1 else list(ins)


def _flatten(b, layer, ins, node, hint):
    x = ins[0]
    r = x.rank
    if layer.data_format == "channels_first" and r > 2:
        order = (0,) + tuple(range(2, r)) + (1,)  # Keras moves the channels (axis 1) last first
    else:
        order = _identity(r)
    xk = b.to_perm(x, order)
    return _Value(b.op("Flatten", [xk.name], hint, axis=1), b.out_shape(node))


def _reshape(b, layer, ins, node, hint):
    x = b.to_perm(ins[0], _identity(ins[0].rank))
    return _Value(b.op("Reshape", [x.name, b.ints((0,) + tuple(layer.target_shape))], hint), b.out_shape(node))


def _permute(b, layer, ins, node, hint):
    # No data moves: output axis i is input axis dims[i - 1], so the stored tensor is the
    # output with its axes relabelled.
    x = ins[0]
    where = {0: 0}
    for i, dim in enumerate(layer.dims, start=1):
        where[dim] = i  # input axis dim -> output axis i
    return _Value(x.name, b.out_shape(node), tuple(where[p] for p in x.perm))


def _repeat_vector(b, layer, ins, node, hint):
    x = b.to_perm(ins[0], (0, 1))
    u = b.unsqueeze(x.name, [1], hint)
    return _Value(b.op("Expand", [u, b.ints([1, layer.n, 1])], hint), b.out_shape(node))


def _zero_pad(b, layer, ins, node, hint):
    x = ins[0]
    before, after = [0] * x.rank, [0] * x.rank
    for i, (p0, p1) in enumerate(layer.padding, start=1):
        before[x.axis(i)], after[x.axis(i)] = p0, p1
    return _Value(b.op("Pad", [x.name, b.ints(before + after)], hint), b.out_shape(node), x.perm)


def _crop(b, layer, ins, node, hint):
    x = ins[0]
    starts, ends, axes = [], [], []
    for i, (p0, p1) in enumerate(layer.cropping, start=1):
        starts.append(p0)
        ends.append(-p1 if p1 else np.iinfo(np.int64).max)
        axes.append(x.axis(i))
    y = b.op("Slice", [x.name, b.ints(starts), b.ints(ends), b.ints(axes)], hint)
    return _Value(y, b.out_shape(node), x.perm)


def _resize_value(b, x, factors, mode, hint, coord, **attrs):
    """Resize the spatial axes (Keras axes 1..r-2) of ``x`` by ``factors``."""
    xf = b.to_perm(x, _first(x.rank))
    scales = [1.0, 1.0] + [float(f) for f in factors]
    return b.op("Resize", [xf.name, "", b.array(scales, "scales")], hint, mode=mode,
                coordinate_transformation_mode=coord, **attrs), _first(x.rank)


def _resize_matrices(b, x, height, width, interpolation, antialias, layer, hint):
    """Resize Keras axes 1 and 2 of ``x`` with jax.image's interpolation weights (what
    convcore's and Keras's resize compute): one MatMul per axis that changes size, the
    axis brought last. The input's sizes must be known."""
    from ..layers.reshaping import _weights
    h, w = x.shape[1], x.shape[2]
    if h is None or w is None:
        raise _unsupported(layer, f"interpolation={interpolation!r} needs known input sizes here (give "
                                  f"input_signature=...), got input shape {x.shape}")
    v = x
    for axis, m, n in ((1, h, height), (2, w, width)):
        if m == n:
            continue
        order = tuple(a for a in range(v.rank) if a != axis) + (axis,)
        v = b.to_perm(v, order)
        mat = b.array(_weights(m, n, interpolation, antialias).T, f"{hint}/resize_weights")
        shape = list(v.shape)
        shape[axis] = n
        v = _Value(b.op("MatMul", [v.name, mat], hint), tuple(shape), order)
    return v


def _upsampling(b, layer, ins, node, hint):
    from ..layers import reshaping as R
    x = ins[0]
    if isinstance(layer, R.UpSampling1D):
        size, interp = (layer.size,), "nearest"
    elif isinstance(layer, R.UpSampling3D):
        size, interp = layer.size, "nearest"
    else:
        size, interp = layer.size, layer.interpolation
    if interp == "nearest":
        y, perm = _resize_value(b, x, size, "nearest", hint, "asymmetric", nearest_mode="floor")
    elif interp == "bilinear":
        y, perm = _resize_value(b, x, size, "linear", hint, "half_pixel")
    elif interp == "bicubic":  # Keys' a = -0.5, the weights renormalised at the edges, as jax
        y, perm = _resize_value(b, x, size, "cubic", hint, "half_pixel", cubic_coeff_a=-0.5, exclude_outside=1)
    else:  # lanczos: no ONNX mode; the interpolation weights as matrices
        h, w = x.shape[1], x.shape[2]
        return _resize_matrices(b, x, None if h is None else h * size[0], None if w is None else w * size[1],
                                interp, False, layer, hint)
    return _Value(y, b.out_shape(node), perm)


def _resizing(b, layer, ins, node, hint):
    x = ins[0]
    h, w = x.shape[1], x.shape[2]
    if layer.crop_to_aspect_ratio or layer.pad_to_aspect_ratio:
        from ..layers.preprocessing import _aspect_crop_box
        if h is None or w is None:
            raise _unsupported(layer, f"crop_to_aspect_ratio / pad_to_aspect_ratio need known input sizes here "
                                      f"(give input_signature=...), got input shape {x.shape}")
        if layer.crop_to_aspect_ratio:
            h0, w0, ch, cw = _aspect_crop_box(h, w, layer.height, layer.width)
            y = b.op("Slice", [x.name, b.ints([h0, w0]), b.ints([h0 + ch, w0 + cw]), b.ints([x.axis(1), x.axis(2)])],
                     hint)
            x = _Value(y, (x.shape[0], ch, cw, x.shape[3]), x.perm)
        else:
            ph = max(h, int(float(w * layer.height) / layer.width))
            pw = max(w, int(float(h * layer.width) / layer.height))
            top, left = int(float(ph - h) / 2), int(float(pw - w) / 2)
            pads, shape = None, None
            if top > 0:
                pads, shape = (1, top), (x.shape[0], h + 2 * top, w, x.shape[3])
            elif left > 0:
                pads, shape = (2, left), (x.shape[0], h, w + 2 * left, x.shape[3])
            if pads is not None:
                amounts = [0] * (2 * x.rank)
                amounts[x.axis(pads[0])] = amounts[x.rank + x.axis(pads[0])] = pads[1]
                y = b.op("Pad", [x.name, b.ints(amounts), b.scalar(layer.fill_value)], hint, mode="constant")
                x = _Value(y, shape, x.perm)
        h, w = x.shape[1], x.shape[2]
    if layer.interpolation == "nearest" or (layer.interpolation == "bilinear" and not layer.antialias):
        if layer.interpolation == "bilinear":
            mode, coord, attrs = "linear", "half_pixel", {}
        else:  # jax's floor((i + 0.5) * in / out) (antialias does not change 'nearest')
            mode, coord, attrs = "nearest", "tf_half_pixel_for_nn", {"nearest_mode": "floor"}
        xf = b.to_perm(x, _first(x.rank))
        shape = b.op("Shape", [xf.name], hint)
        nc = b.op("Slice", [shape, b.ints([0]), b.ints([2]), b.ints([0])], hint)
        sizes = b.op("Concat", [nc, b.ints([layer.height, layer.width])], hint, axis=0)
        y = b.op("Resize", [xf.name, "", "", sizes], hint, mode=mode, coordinate_transformation_mode=coord, **attrs)
        return _Value(y, b.out_shape(node), _first(x.rank))
    # bicubic, lanczos, antialiased bilinear (onnxruntime's cubic Resize does not shrink):
    # the interpolation weights as matrices
    return _resize_matrices(b, x, layer.height, layer.width, layer.interpolation, layer.antialias, layer, hint)


def _center_crop(b, layer, ins, node, hint):
    x = ins[0]
    h, w = x.shape[1], x.shape[2]
    if h is None or w is None or h < layer.height or w < layer.width:
        raise _unsupported(layer, f"it needs a known input size at least ({layer.height}, {layer.width}) (a "
                                  f"smaller image is resized, not cropped), got input shape {x.shape}")
    h0, w0 = (h - layer.height) // 2, (w - layer.width) // 2
    y = b.op("Slice", [x.name, b.ints([h0, w0]), b.ints([h0 + layer.height, w0 + layer.width]),
                       b.ints([x.axis(1), x.axis(2)])], hint)
    return _Value(y, b.out_shape(node), x.perm)


def _rescaling(b, layer, ins, node, hint):
    x = ins[0]
    y = b.op("Mul", [x.name, b.bconst(x, layer.scale, f"{layer.name}/scale")], hint)
    if not (isinstance(layer.offset, float) and layer.offset == 0.0):
        y = b.op("Add", [y, b.bconst(x, layer.offset, f"{layer.name}/offset")], hint)
    return _Value(y, x.shape, x.perm)


def _normalization(b, layer, ins, node, hint):
    from ..layers.preprocessing import EPSILON
    x = ins[0]
    if layer.input_mean is not None:
        mean, std = np.asarray(layer._mean, np.float64), np.asarray(layer._std, np.float64)
    else:
        mean = np.asarray(layer.adapt_mean.numpy(), np.float64).reshape(layer._bshape)
        var = np.asarray(layer.adapt_variance.numpy(), np.float64).reshape(layer._bshape)
        std = np.maximum(np.sqrt(var), EPSILON)
    m, s = b.bconst(x, mean, f"{layer.name}/mean"), b.bconst(x, std, f"{layer.name}/std")
    if layer.invert:
        y = b.op("Add", [b.op("Mul", [x.name, s], hint), m], hint)
    else:
        y = b.op("Div", [b.op("Sub", [x.name, m], hint), s], hint)
    return _Value(y, x.shape, x.perm)


def _aligned(b, ins):
    """The inputs of an elementwise merge in one axis order, lower ranks given size-1
    axes after the batch axis (Keras's broadcasting)."""
    rank = max(v.rank for v in ins)
    if all(v.rank == rank for v in ins):
        perm = ins[0].perm
        return [b.to_perm(v, perm) for v in ins], perm
    out = []
    for v in ins:
        v = b.to_perm(v, _identity(v.rank))
        if v.rank < rank:
            v = _Value(b.unsqueeze(v.name, list(range(1, 1 + rank - v.rank)), "merge"),
                       (v.shape[0],) + (1,) * (rank - v.rank) + v.shape[1:])
        out.append(v)
    return out, _identity(rank)


def _merge(op, average=False):
    def convert(b, layer, ins, node, hint):
        xs, perm = _aligned(b, ins)
        y = xs[0].name
        for v in xs[1:]:
            y = b.op(op, [y, v.name], hint)
        if average:
            y = b.op("Div", [y, b.scalar(float(len(xs)))], hint)
        return _Value(y, b.out_shape(node), perm)
    return convert


def _concatenate(b, layer, ins, node, hint):
    perm = ins[0].perm
    xs = [b.to_perm(v, perm) for v in ins]
    ax = xs[0].axis(layer._axis(xs[0].rank - 1) + 1)
    return _Value(b.op("Concat", [v.name for v in xs], hint, axis=ax), b.out_shape(node), perm)


def _dot(b, layer, ins, node, hint):
    x, y = (b.to_perm(v, _identity(v.rank)) for v in ins)
    (a1, a2), _, _ = layer._resolve([x.shape[1:], y.shape[1:]])
    xn, yn = x.name, y.name
    if layer.normalize:
        def l2(name, ax):
            ss = b.reduce("ReduceSum", b.op("Mul", [name, name], hint), [ax], hint)
            floor = b.op("Add", [b.op("Relu", [b.op("Sub", [ss, b.scalar(1e-14)], hint)], hint), b.scalar(1e-14)],
                         hint)
            return b.op("Div", [name, b.op("Sqrt", [floor], hint)], hint)
        xn, yn = l2(xn, a1), l2(yn, a2)
    r1, r2 = x.rank, y.rank
    if any(s is None for s in x.shape[1:] + y.shape[1:]):
        raise _unsupported(layer, f"it needs inputs of known sizes, got shapes {x.shape} and {y.shape}")
    # (batch, rest1, k) @ (batch, k, rest2) as one batched MatMul
    p1 = [0] + [i for i in range(1, r1) if i != a1] + [a1]
    p2 = [0, a2] + [i for i in range(1, r2) if i != a2]
    xt = b.op("Transpose", [xn], hint, perm=p1)
    yt = b.op("Transpose", [yn], hint, perm=p2)
    k = x.shape[a1]
    xt = b.op("Reshape", [xt, b.ints([0, -1, k])], hint)
    yt = b.op("Reshape", [yt, b.ints([0, k, -1])], hint)
    z = b.op("MatMul", [xt, yt], hint)
    return _Value(b.op("Reshape", [z, b.ints((0,) + b.out_shape(node)[1:])], hint), b.out_shape(node))


def _converters():
    from .. import layers as L
    from ..layers import conv as C, pooling as P, reshaping as R
    table = {}
    for cls in (C._Conv, C._ConvTranspose, C._DepthwiseConv, C._SeparableConv):
        table[cls] = _conv
    table[L.Dense] = _dense
    table[P._Pool] = _pool
    table[P._GlobalPool] = _global_pool
    table[P._AdaptivePool] = _adaptive_pool
    table[L.BatchNormalization] = _batch_norm
    table[L.LayerNormalization] = _layer_norm
    table[L.GroupNormalization] = _group_norm
    table[L.RMSNormalization] = _rms_norm
    table[L.UnitNormalization] = _unit_norm
    table[L.ReLU] = _relu_layer
    table[L.LeakyReLU] = _simple_act_layer("LeakyRelu", alpha=lambda l: l.negative_slope)
    table[L.ELU] = _simple_act_layer("Elu", alpha=lambda l: l.alpha)
    table[L.PReLU] = _prelu
    table[L.Softmax] = _softmax_layer
    table[L.Activation] = _activation_layer
    for cls in (L.Dropout, L.AlphaDropout, L.SpatialDropout1D, L.SpatialDropout2D, L.SpatialDropout3D,
                L.GaussianNoise, L.GaussianDropout, L.ActivityRegularization, L.Identity, L.RandomCrop,
                L.RandomFlip, L.RandomTranslation, L.RandomRotation, L.RandomZoom, L.RandomContrast,
                L.RandomBrightness):
        table[cls] = _identity_layer  # the identity in inference
    table[L.Flatten] = _flatten
    table[L.Reshape] = _reshape
    table[L.Permute] = _permute
    table[L.RepeatVector] = _repeat_vector
    table[R._ZeroPadding] = _zero_pad
    table[R._Cropping] = _crop
    for cls in (L.UpSampling1D, L.UpSampling2D, L.UpSampling3D):
        table[cls] = _upsampling
    table[L.Resizing] = _resizing
    table[L.CenterCrop] = _center_crop
    table[L.Rescaling] = _rescaling
    table[L.Normalization] = _normalization
    table[L.Add] = _merge("Add")
    table[L.Subtract] = _merge("Sub")
    table[L.Multiply] = _merge("Mul")
    table[L.Average] = _merge("Add", average=True)
    table[L.Maximum] = _merge("Max")
    table[L.Minimum] = _merge("Min")
    table[L.Concatenate] = _concatenate
    table[L.Dot] = _dot
    return table


_OVERRIDABLE = ("call", "convolution_op", "_merge", "_forward", "_call_eager")


def _converter_for(layer, table):
    """The converter of ``layer``'s class: a registered class among its bases whose
    computation the layer does not override (a subclass with its own ``call`` computes
    something else)."""
    from ..layers import Lambda
    if isinstance(layer, Lambda):
        fn = getattr(layer.function, "__name__", "<lambda>")
        raise _unsupported(layer, f"a Lambda runs Python code ({fn!r}) that ONNX cannot hold; replace it with "
                                  "built-in layers to export the model")
    for cls in type(layer).__mro__:
        if cls in table:
            if all(getattr(type(layer), m, None) is getattr(cls, m, None) for m in _OVERRIDABLE):
                return table[cls]
            break
    raise _unsupported(layer, "no ONNX conversion for this layer class (a custom layer or one with its own call())")


# ---------------------------------------------------------------------- graph walk
def _walk(b, model, in_values, table, prefix=""):
    """Convert the nodes of ``model``'s graph, given the values of its inputs; returns
    the values of its outputs."""
    from ..models import Model
    values = {id(t): v for t, v in zip(model.inputs, in_values)}
    for node in model._nodes:
        layer = node.layer
        ins = [values[id(t)] for t in node.inputs]
        if node.call_kwargs:
            raise _unsupported(layer, f"it is called with arguments {sorted(node.call_kwargs)}, which the export "
                                      "does not carry")
        hint = prefix + layer.name
        b.node_shapes[id(node)] = _output_shapes(layer, node, ins)
        if isinstance(layer, Model):
            if not layer._is_graph() or type(layer).call is not Model.call:
                raise _unsupported(layer, "a subclassed model (its own call()) has no graph to export")
            outs = _walk(b, layer, ins, table, prefix=hint + "/")
        else:
            convert = _converter_for(layer, table)
            outs = convert(b, layer, ins, node, hint)
        outs = outs if isinstance(outs, list) else [outs]
        if len(outs) != len(node.outputs):
            raise _unsupported(layer, f"its conversion gave {len(outs)} outputs for {len(node.outputs)}")
        for t, v in zip(node.outputs, outs):
            values[id(t)] = v
    return [values[id(t)] for t in model.outputs]


def _output_shapes(layer, node, ins):
    """The Keras shapes of ``node``'s outputs for the shapes its inputs have here. They
    differ from the graph's where an input signature fixed a size, or where a layer's
    inference output is not its declared shape (RandomCrop is the identity in inference;
    the 'glu' activation halves the channels): the layer's own shape rule is asked again."""
    declared = [tuple(t.shape) for t in node.outputs]
    actual = [v.shape for v in ins]
    if actual == [tuple(t.shape) for t in node.inputs]:
        return declared
    shapes = [s[1:] for s in actual]
    try:
        out = layer._symbolic_output_shape(shapes if node.multi else shapes[0])
    except Exception:  # a layer whose rule cannot take these shapes: the graph's shapes
        return declared
    out = out if isinstance(out, list) else [out]
    batch = actual[0][0]
    return [(batch,) + tuple(o) for o in out]


def _spec_shape(spec, what):
    """The full shape (batch axis first) of one input_signature entry."""
    if isinstance(spec, (tuple, list)) and all(s is None or isinstance(s, (int, np.integer)) for s in spec):
        return tuple(None if s is None else int(s) for s in spec)
    shape = getattr(spec, "shape", None)
    if shape is None:
        raise TypeError(f"export: {what} must be a shape (a tuple with the batch axis, None for free sizes) or an "
                        f"object with .shape (keras.InputSpec, a KerasTensor, an array), received {spec!r}")
    try:
        return tuple(None if s is None else int(s) for s in shape)
    except (TypeError, ValueError):
        raise TypeError(f"export: {what} has a shape that is not a tuple of sizes: {shape!r}") from None


def _input_shapes(model, input_signature, dynamic_batch):
    """Per model input: the ONNX input's dims (int, a dim_param name, or None)."""
    n = len(model.inputs)
    if input_signature is None:
        specs = [None] * n
    else:
        specs = input_signature
        if not isinstance(specs, (list, tuple)) or (specs and all(
                s is None or isinstance(s, (int, np.integer)) for s in specs)):
            specs = [specs]  # one spec for a one-input model
        specs = list(specs)
        if len(specs) == 1 and n > 1 and isinstance(specs[0], (list, tuple)) and len(specs[0]) == n and \
                not all(s is None or isinstance(s, (int, np.integer)) for s in specs[0]):
            specs = list(specs[0])  # Keras's nested form [[spec1, spec2, ...]]
        if len(specs) != n:
            raise ValueError(f"export: input_signature has {len(specs)} entries, but model {model.name!r} has {n} "
                             f"inputs ({', '.join(t.node.layer.name for t in model.inputs)})")
    out = []
    for i, (t, spec) in enumerate(zip(model.inputs, specs)):
        declared = tuple(t.shape)
        shape = declared
        if spec is not None:
            given = _spec_shape(spec, f"input_signature entry {i}")
            if len(given) != len(declared) or any(d is not None and g is not None and d != g
                                                  for d, g in zip(declared, given)):
                raise ValueError(f"export: input_signature entry {i} has shape {given}, but input "
                                 f"{t.node.layer.name!r} of model {model.name!r} has shape {declared}")
            shape = tuple(g if g is not None else d for d, g in zip(declared, given))
        dims = []
        for j, s in enumerate(shape):
            if j == 0:
                if dynamic_batch:
                    dims.append("batch" if spec is None or given[0] is None else int(given[0]))
                elif s is None:
                    raise ValueError(f"export: dynamic_batch=False needs a known batch size for input "
                                     f"{t.node.layer.name!r}: give input_signature=[(batch, ...)] or "
                                     "Input(..., batch_size=...)")
                else:
                    dims.append(int(s))
            else:
                dims.append(f"dim_{i}_{j}" if s is None else int(s))
        out.append(dims)
    return out


def build_onnx_model(model, opset=None, input_signature=None, dynamic_batch=True):
    """The ``onnx.ModelProto`` of ``model``'s inference graph (nothing written)."""
    onnx, helper, numpy_helper = _onnx()
    from ..models import Model
    if not isinstance(model, Model):
        raise TypeError(f"export: expected a convcore Model (functional or Sequential), received "
                        f"{type(model).__name__}")
    if not model._is_graph() or type(model).call is not Model.call:
        raise ValueError(f"export: model {model.name!r} has no graph of layers to export (a subclassed model with "
                         "its own call(), or a Sequential not built yet: give it an input shape first)")
    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        opset = min(DEFAULT_OPSET, newest)
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"export: opset must be an integer from {MIN_OPSET} to {newest} (the installed onnx's "
                         f"newest), received opset={opset!r}")
    if not isinstance(dynamic_batch, (bool, np.bool_)):
        raise TypeError(f"export: dynamic_batch must be True or False, received dynamic_batch={dynamic_batch!r}")
    opset = int(opset)
    b = _Builder(helper, numpy_helper, opset)
    dims = _input_shapes(model, input_signature, bool(dynamic_batch))
    graph_inputs, in_values = [], []
    for t, d in zip(model.inputs, dims):
        name = t.node.layer.name
        b.reserve(name)
        graph_inputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, d))
        in_values.append(_Value(name, tuple(s if isinstance(s, int) else None for s in d)))
    table = _converters()
    outs = _walk(b, model, in_values, table)
    graph_outputs = []
    batch_dim = dims[0][0] if dims else "batch"
    for t, v in zip(model.outputs, outs):
        v = b.to_perm(v, _identity(v.rank))
        name = b.fresh(t.node.layer.name)  # an output that is also an input gets a suffix
        b.nodes.append(helper.make_node("Identity", [v.name], [name], name=b.fresh(f"{name}/Identity:node")))
        shape = [batch_dim] + [None if s is None else int(s) for s in v.shape[1:]]
        graph_outputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape))
    if b.weight_bytes > _PROTOBUF_LIMIT:
        raise ValueError(f"export: model {model.name!r} has {b.weight_bytes / 2 ** 30:.2f} GiB of weights, more "
                         "than one ONNX file (a 2 GiB protobuf) can hold")
    graph = helper.make_graph(b.nodes, model.name, graph_inputs, graph_outputs, initializer=b.inits)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="convcore",
                              doc_string=f"convcore model {model.name!r}, channels-last inputs as in Keras")
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    return proto


def export_onnx(model, filepath, opset=None, input_signature=None, dynamic_batch=True):
    """Write ``model``'s inference graph to ``filepath`` as an ONNX model.

    Parameters
    ----------
    model : Model
        A functional or Sequential model; models nested as layers and layers called
        more than once are exported as they run. Every layer must have an ONNX
        conversion (a Lambda, or a custom layer, is a ValueError naming it, raised
        before anything is written).
    filepath : str or path-like
        Written atomically (a temporary file in the same folder, renamed over the
        path): a failed export leaves no file.
    opset : int, optional
        The ONNX opset (13 to the installed onnx's newest; default 18).
    input_signature : optional
        One entry per model input: a shape with the batch axis, or an object with
        ``.shape``; sizes given there replace the model's None sizes (a fixed
        spatial size lets the 'same' paddings be written explicitly).
    dynamic_batch : bool
        True (default): the batch axis is the symbolic dimension ``"batch"`` (unless
        the signature fixes it). False: the batch size is fixed, from the signature or
        the model's ``Input(batch_size=...)``.

    The ONNX inputs are named after the model's Input layers and take float32
    channels-last arrays, as ``model.predict``; the outputs are named after the layers
    that produce them. Dropout, noise and augmentation layers are the identity, as in
    inference. A float64 model is exported in float32. BatchNormalization is folded
    into a shift and a scale (``gamma / sqrt(moving_variance + epsilon)``), so its
    moving statistics are not initializers of their own.
    """
    proto = build_onnx_model(model, opset=opset, input_signature=input_signature, dynamic_batch=dynamic_batch)
    try:
        path = os.fspath(filepath)
    except TypeError:
        raise TypeError(f"export: filepath must be a str or path-like object, received {filepath!r}") from None
    from ..saving.saving_lib import _atomic_write
    data = proto.SerializeToString()
    _atomic_write(path, lambda f: f.write(data))
