"""Batch normalization folded into the convolution (or Dense layer) before it, when a
model runs in inference.

In inference a ``BatchNormalization`` over the last axis is an affine map per channel,
``y = (z - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``; after a linear
convolution ``z = conv(x, w) + b`` it is the same convolution with the weights

    w' = w * s        (per output channel)
    b' = (b - mean) * s + beta

so the chain ``Conv1D/2D/3D | DepthwiseConv1D/2D | Dense`` (linear activation, any
``use_bias``) -> ``BatchNormalization`` [-> ``ReLU()`` / ``ReLU(max_value)`` /
``Activation('relu' | 'sigmoid' | 'tanh')``] runs as one fused ``conv + bias +
activation`` op: one pass over the activations instead of three, as PyTorch's
``fuse_conv_bn_eval``, TensorRT and ONNX Runtime's graph optimizer do. (ReLU6's clip
stays a pass of its own, and so does a depthwise convolution's bias: that native
kernel takes no bias.) :meth:`convcore.Model.call` uses it when

- ``training`` is falsy and no GradientTape records (``convcore.tape.active()``): the
  gradients of ``fit``, of an adversarial example, of any tape, see the exact unfused
  graph, and training-mode batch statistics are never folded;
- each intermediate output (the convolution's, the normalization's) has exactly one
  reader in the graph and is not a model output (a model that exposes the
  pre-normalization features still gets them);
- the layers are the library's own (a subclass with its own ``call`` or
  ``convolution_op`` is left alone), compute in one dtype, have no activity
  regularizer, and the normalization is over the last (channels) axis.

The folded weights are computed in float64 from the layers' current variables and cast
to the layers' dtype (on the GPU: with ops, in float32, on the device), cached with the
state of every variable they came from, and computed again when any of them changed.
Variables have no version counter yet (their writes are in place), so on the CPU that
state is a fingerprint of the values, read on every call (ResNet50: ~94 MB, 5-10 ms on
the 2-core benchmark machine); on the GPU, where reading the values back would cost
more, the weights are folded again on every call. A ``_version`` attribute on
Variables, once they have one, replaces both (see :func:`_key`). Nothing here writes a
weight, and nothing is saved: the model's files are the same.

``CONVCORE_FOLD_BN=0`` in the environment turns folding off (read at import); so does
``with inference_fusion.enabled(False):`` (this thread). :func:`plan_of` names the folded
groups of a model and :func:`runs_of` counts the folded groups its calls have run.
"""
from __future__ import annotations

import contextlib
import os
import threading

import numpy as np

from .. import ops, tape as _tape
from ..tensor import Tensor

__all__ = ["enabled", "is_enabled", "plan_of", "runs_of"]

_DEFAULT = os.environ.get("CONVCORE_FOLD_BN", "1").strip().lower() not in ("0", "false", "no", "off")
_local = threading.local()

# The activations the fused convolution applies in its own pass (ops.nn.NATIVE_ACTIVATIONS
# without softmax, which is an op of its own there).
_FUSED_ACTIVATIONS = ("linear", "relu", "sigmoid", "tanh")

# Variables at most this large are fingerprinted by their bytes (exactly).
_EXACT_BYTES = 4096
_LANES = 61  # a prime: a permutation moves values across lanes unless it shifts by 61k


# ------------------------------------------------------------------ the switch
def is_enabled():
    """Whether folding is on in this thread."""
    v = getattr(_local, "enabled", None)
    return _DEFAULT if v is None else v


@contextlib.contextmanager
def enabled(flag=True):
    """``with enabled(False):`` runs models unfused in this thread (a reference for the
    fused result, or a way around a suspected bug); ``enabled(True)`` turns it back on
    inside such a block."""
    if not isinstance(flag, (bool, np.bool_)):
        raise TypeError(f"inference_fusion.enabled: flag must be True or False, got {flag!r}")
    prev = getattr(_local, "enabled", None)
    _local.enabled = bool(flag)
    try:
        yield
    finally:
        _local.enabled = prev


def applies(training):
    """Whether a model call with ``training`` runs the folded plan: folding is on, the
    call is in inference, and no tape records (a recorded forward must be the graph
    whose gradient the user asked for)."""
    if training is not None and not isinstance(training, (bool, np.bool_)):
        try:
            training = bool(training)
        except (TypeError, ValueError):
            return False
    return not training and is_enabled() and not _tape.active()


# ------------------------------------------------------------------ which layers fold
def _classes():
    from ..layers.activation import ReLU
    from ..layers.basic import Activation, Dense
    from ..layers.conv import _Conv, _DepthwiseConv
    from ..layers.normalization import BatchNormalization
    return _Conv, _DepthwiseConv, Dense, BatchNormalization, ReLU, Activation


def _plain(layer):
    """A built layer whose forward is its ``call`` alone (no activity regularizer)."""
    return layer.built and layer.__dict__.get("activity_regularizer") is None


def _linear_kind(layer):
    """'conv', 'depthwise' or 'dense' for a layer whose output folds a normalization;
    None otherwise."""
    _Conv, _DepthwiseConv, Dense, _, _, _ = _classes()
    t = type(layer)
    if isinstance(layer, _Conv) and t.call is _Conv.call and t.convolution_op is _Conv.convolution_op:
        kind = "conv"
    elif isinstance(layer, _DepthwiseConv) and t.call is _DepthwiseConv.call:
        kind = "depthwise"
    elif isinstance(layer, Dense) and t.call is Dense.call:
        kind = "dense"
    else:
        return None
    if not _plain(layer) or layer.activation != "linear":
        return None
    if kind != "dense" and getattr(layer, "data_format", "channels_last") != "channels_last":
        return None
    return kind


def _foldable_norm(layer, units):
    _, _, _, BatchNormalization, _, _ = _classes()
    return (isinstance(layer, BatchNormalization) and type(layer).call is BatchNormalization.call and _plain(layer)
            and layer.__dict__.get("_fused") is True and tuple(layer.moving_mean.shape) == (units,))


def _fused_activation(layer):
    """``(name, top)`` for an activation layer whose activation the fused convolution
    applies in its own pass (``name``), followed by ``minimum(y, top)`` when ``top`` is
    not None (``ReLU(max_value=6)``: exactly ReLU.call's two steps, the first one
    fused); None for any other layer."""
    _, _, _, _, ReLU, Activation = _classes()
    if not _plain(layer):
        return None
    t = type(layer)
    if isinstance(layer, ReLU) and t.call is ReLU.call:
        if layer.negative_slope == 0.0 and layer.threshold == 0.0:
            return "relu", layer.max_value
        return None
    if isinstance(layer, Activation) and t.call is Activation.call:
        a = layer.activation
        return (str(a), None) if isinstance(a, str) and a in _FUSED_ACTIVATIONS else None
    return None


def _units(layer, kind):
    if kind == "depthwise":
        return int(layer.kernel.shape[-2] * layer.kernel.shape[-1])
    return int(layer.kernel.shape[-1])


def _simple(node):
    return not node.multi and not node.call_kwargs and len(node.outputs) == 1 and len(node.inputs) == 1


# ------------------------------------------------------------------ the plan
class _Group:
    """One folded chain: the nodes at ``indices`` (linear layer, normalization, maybe
    an activation) run as one op at the first one's place."""

    __slots__ = ("indices", "kind", "linear", "norm", "act", "act_name", "input_id", "output_id", "release",
                 "_key", "_kernel", "_bias")

    def __init__(self, indices, kind, linear, norm, act, act_name, input_id, output_id):
        self.indices, self.kind, self.linear, self.norm = indices, kind, linear, norm
        self.act, self.act_name = act, act_name
        self.input_id, self.output_id = input_id, output_id
        self.release = []
        self._key = self._kernel = self._bias = None

    def names(self):
        return tuple(l.name for l in (self.linear, self.norm, self.act) if l is not None)

    # -------------------------------------------------------------- the folded weights
    def _variables(self):
        n = self.norm
        return (self.linear.kernel, self.linear.bias, n.gamma, n.beta, n.moving_mean, n.moving_variance)

    def folded(self):
        """``(kernel, bias)`` folded from the variables as they are now (cached)."""
        vs = self._variables()
        dev = vs[0]._device
        if any(v is not None and v._device != dev for v in vs):
            return None
        key = _key(vs, dev, float(self.norm.epsilon), self.linear.dtype)
        if key is not None and key == self._key:
            return self._kernel, self._bias
        kernel, bias = (_fold_host if dev == "cpu" else _fold_device)(self.kind, vs, float(self.norm.epsilon),
                                                                      self.linear.dtype, dev)
        if key is not None:
            self._key, self._kernel, self._bias = key, kernel, bias
        return kernel, bias

    def still_foldable(self):
        """The layers' arguments a user might change after the plan was made."""
        return (self.linear.activation == "linear" and self.norm.__dict__.get("_fused") is True
                and self.linear.dtype == self.norm.dtype
                and (self.act is None or _fused_activation(self.act) == self.act_name))

    # -------------------------------------------------------------- the forward
    def run(self, x):
        """The chain's output for input ``x`` (a tensor), or None when it cannot be
        folded now (the caller runs the layers one by one)."""
        if not self.still_foldable():
            return None
        w = self.folded()
        if w is None:
            return None
        kernel, bias = w
        lin = self.linear
        x = lin._cast(x)
        act, top = self.act_name or ("linear", None)
        if self.kind == "dense":
            y = ops.dense_bias_activation(x, kernel, bias, act)
        elif self.kind == "conv":
            padding = lin.padding
            if padding == "causal":  # as Conv1D.call: left-pad the steps, then 'valid'
                x = ops.pad(x, [(0, 0), ((lin.kernel_size[0] - 1) * lin.dilation_rate[0], 0), (0, 0)])
                padding = "valid"
            y = ops.conv_bias_activation(x, kernel, bias, lin.strides, padding, lin.dilation_rate, act)
        else:
            y = ops.add(ops.depthwise_conv(x, kernel, lin.strides, lin.padding, None, lin.dilation_rate), bias)
            y = y if act == "linear" else getattr(ops.nn, act)(y)
        return y if top is None else ops.minimum(y, top)


class Plan:
    """The folded groups of one graph: ``at[i]`` is the group that runs at node ``i``,
    ``skip`` the nodes it stands for after that one."""

    __slots__ = ("groups", "at", "skip", "runs")

    def __init__(self, groups):
        self.groups = groups
        self.at = {g.indices[0]: g for g in groups}
        self.skip = frozenset(i for g in groups for i in g.indices[1:])
        self.runs = 0


def build_plan(nodes, outputs, release):
    """The plan of the graph ``nodes`` (topological order) with model outputs
    ``outputs``; ``release[i]`` (the tensors node ``i`` reads last, from
    ``Model._release_after``) is merged per group."""
    readers, reader_of = {}, {}
    for i, node in enumerate(nodes):
        for t in node.inputs:
            readers[id(t)] = readers.get(id(t), 0) + 1
            reader_of[id(t)] = i
    kept = {id(t) for t in outputs}

    def only_reader(t):
        """The index of the one node that reads ``t``, if one does and ``t`` is not a
        model output."""
        if readers.get(id(t)) != 1 or id(t) in kept:
            return None
        return reader_of[id(t)]

    groups, used = [], set()
    for i, node in enumerate(nodes):
        if i in used or not _simple(node):
            continue
        kind = _linear_kind(node.layer)
        if kind is None:
            continue
        j = only_reader(node.output)
        if j is None or j in used or not _simple(nodes[j]):
            continue
        norm = nodes[j].layer
        if not _foldable_norm(norm, _units(node.layer, kind)) or norm.dtype != node.layer.dtype:
            continue
        indices, act, act_name, out = [i, j], None, None, nodes[j].output
        k = only_reader(out)
        if k is not None and k not in used and _simple(nodes[k]):
            name = _fused_activation(nodes[k].layer)
            if name is not None and nodes[k].layer.dtype == node.layer.dtype:
                indices.append(k)
                act, act_name, out = nodes[k].layer, name, nodes[k].output
        g = _Group(tuple(indices), kind, node.layer, norm, act, act_name, id(node.inputs[0]), id(out))
        for n in indices:
            g.release.extend(release[n])
        used.update(indices)
        groups.append(g)
    return Plan(groups)


# ------------------------------------------------------------------ folding
def _fold_host(kind, vs, eps, dtype, dev):
    """The folded kernel and bias in float64 from numpy, cast to ``dtype``."""
    kernel, bias, gamma, beta, mean, var = (None if v is None else np.asarray(v.numpy(), dtype=np.float64)
                                            for v in vs)
    s = 1.0 / np.sqrt(var + eps)
    if gamma is not None:
        s = s * gamma
    b = -mean if bias is None else bias - mean
    b = b * s
    if beta is not None:
        b = b + beta
    if kind == "depthwise":
        s = s.reshape(kernel.shape[-2:])
    w = kernel * s
    return (Tensor(np.ascontiguousarray(w.astype(dtype)), dev), Tensor(np.ascontiguousarray(b.astype(dtype)), dev))


def _fold_device(kind, vs, eps, dtype, dev):
    """The folded kernel and bias computed with ops where the variables live (the GPU
    computes in float32)."""
    kernel, bias, gamma, beta, mean, var = vs
    s = ops.divide(1.0, ops.sqrt(ops.add(var, eps)))
    if gamma is not None:
        s = ops.multiply(s, gamma)
    b = ops.negative(mean) if bias is None else ops.subtract(bias, mean)
    b = ops.multiply(b, s)
    if beta is not None:
        b = ops.add(b, beta)
    if kind == "depthwise":
        s = ops.reshape(s, tuple(kernel.shape[-2:]))
    return ops.multiply(kernel, s), b


def _key(vs, dev, eps, dtype):
    """What the folded weights depend on, or None when that cannot be told cheaply
    (then they are folded on every call). A variable's state is its buffer's identity
    and its version counter when Variables have one (``_version``); until then, on
    the CPU, a fingerprint of its values (exact for small variables; for a kernel the
    xor of its words in 61 interleaved lanes, which changes with any one changed value
    and with any permutation other than shifts by multiples of 61)."""
    states = []
    for v in vs:
        if v is None:
            states.append(None)
            continue
        version = getattr(v, "_version", None)
        if version is None:
            if dev != "cpu":
                return None  # reading the values back would cost more than folding them again
            version = _fingerprint(v._data)
        states.append((id(v), id(v._data), version))
    return (dev, eps, str(dtype), tuple(states))


def _fingerprint(a):
    a = np.ascontiguousarray(a)
    if a.nbytes <= _EXACT_BYTES:
        return a.tobytes()
    flat = a.reshape(-1)
    words = flat.view(np.uint64) if a.nbytes % 8 == 0 else flat.view(np.uint8)
    n = (words.size // _LANES) * _LANES
    lanes = np.bitwise_xor.reduce(words[:n].reshape(-1, _LANES), axis=0)
    return lanes.tobytes() + words[n:].tobytes() + str(a.shape).encode()


# ------------------------------------------------------------------ introspection
def _plan(model):
    from .model import Model
    if not isinstance(model, Model):
        raise TypeError(f"inference_fusion: expected a convcore Model, got {type(model).__name__}")
    if not model._is_graph():
        return None
    return model._fusion_plan()


def plan_of(model):
    """The folded groups of ``model``'s graph, each as the names of its layers
    (``('conv1', 'bn1', 'relu1')``), in the order they run; ``[]`` for a model without
    a graph or nothing to fold."""
    plan = _plan(model)
    return [] if plan is None else [g.names() for g in plan.groups]


def runs_of(model):
    """How many folded groups ``model``'s calls have run so far."""
    plan = _plan(model)
    return 0 if plan is None else plan.runs
