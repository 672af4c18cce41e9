"""Automatic differentiation: ``GradientTape`` records the operations of
:mod:`convcore.ops` and replays their gradients backwards, with TensorFlow's interface.

    with convcore.GradientTape() as tape:
        tape.watch(x)
        loss = loss_fn(y, model(x))
    dx = tape.gradient(loss, x)

A tape records an operation when one of its inputs is watched (``watch``), is a
trainable :class:`~convcore.Variable` (watched automatically unless
``watch_accessed_variables=False``) or is the output of an operation it recorded. Each
operation gives its gradient once, beside its definition in :mod:`convcore.ops`, as a
function of the output gradients (a vector-Jacobian product). What a gradient needs
(inputs, outputs, argmax indices) is held by that function only, and released when the
tape is: a non-persistent tape is released by its one ``gradient`` call.
"""
from __future__ import annotations

import threading

import numpy as np

from .tensor import Tensor, Variable

__all__ = ["GradientTape", "stop_recording"]

_local = threading.local()


def _tapes():
    t = getattr(_local, "tapes", None)
    if t is None:
        t = _local.tapes = []
    return t


def active():
    """True when some tape in this thread is recording (ops then build their gradient)."""
    t = getattr(_local, "tapes", None)
    return bool(t) and any(tp._recording for tp in t)


def needs_grad(x):
    """Whether a recording tape will want the gradient of ``x``."""
    for tp in getattr(_local, "tapes", ()):
        if tp._recording and tp._tracks(x):
            return True
    return False


def record(name, inputs, outputs, vjp):
    """Record one operation: ``vjp(*output_grads)`` returns one gradient (Tensor or None)
    per input. ``vjp=None`` marks an operation without a gradient (argmax): a gradient
    reaching it is an error."""
    for tp in getattr(_local, "tapes", ()):
        # every input is asked (no short-circuit): each trainable variable gets tracked
        if tp._recording and sum([x is not None and tp._tracks(x) for x in inputs]):
            tp._nodes.append((name, inputs, outputs, vjp))
            for o in outputs:
                tp._tracked[id(o)] = o


class _Pause:
    def __init__(self, tapes):
        self.tapes = tapes

    def __enter__(self):
        self.prev = [t._recording for t in self.tapes]
        for t in self.tapes:
            t._recording = False

    def __exit__(self, *exc):
        for t, p in zip(self.tapes, self.prev):
            t._recording = p


def stop_recording():
    """A context in which no tape of this thread records (as ``tape.stop_recording()``)."""
    return _Pause(list(_tapes()))


class GradientTape:
    """Records operations for automatic differentiation (``tf.GradientTape``).

    Parameters
    ----------
    persistent : bool
        Allow several ``gradient`` calls (the recording is kept until the tape is
        deleted); otherwise one call releases it.
    watch_accessed_variables : bool
        Watch every trainable Variable the recorded code reads (default True).
    """

    def __init__(self, persistent=False, watch_accessed_variables=True):
        self._persistent = bool(persistent)
        self._watch_vars = bool(watch_accessed_variables)
        self._nodes = []
        self._tracked = {}
        self._recording = False
        self._used = False

    # ------------------------------------------------------------------ recording
    def __enter__(self):
        _tapes().append(self)
        self._recording = True
        return self

    def __exit__(self, *exc):
        self._recording = False
        t = _tapes()
        if self in t:
            t.remove(self)
        return False

    def _tracks(self, x):
        if id(x) in self._tracked:
            return True
        if self._watch_vars and isinstance(x, Variable) and x.trainable:
            self._tracked[id(x)] = x
            return True
        return False

    def watch(self, tensor):
        """Track ``tensor`` (a Tensor, Variable, or a nested list/tuple/dict of them)."""
        for t in _flatten(tensor):
            if not isinstance(t, Tensor):
                raise TypeError(f"GradientTape.watch: expected Tensors (convert arrays with "
                                f"convcore.convert_to_tensor), got {type(t).__name__}")
            self._tracked[id(t)] = t

    def watched_variables(self):
        return [t for t in self._tracked.values() if isinstance(t, Variable)]

    def stop_recording(self):
        """A context in which this tape does not record."""
        return _Pause([self])

    def reset(self):
        """Forget everything recorded so far."""
        self._nodes, self._tracked = [], {}

    # ------------------------------------------------------------------ gradients
    def gradient(self, target, sources, output_gradients=None, unconnected_gradients="none"):
        """d(sum of ``target``)/d``sources``, shaped as ``sources`` (a Tensor, or a nested
        list/tuple/dict of them). A source ``target`` does not depend on gives None (or
        zeros with ``unconnected_gradients='zero'``)."""
        ops = _ops()
        if self._used and not self._persistent:
            raise RuntimeError("A non-persistent GradientTape can only be used to compute one set of gradients "
                               "(or ops inside it); use GradientTape(persistent=True) for several")
        if unconnected_gradients not in ("none", "zero"):
            raise ValueError(f"unconnected_gradients must be 'none' or 'zero', got {unconnected_gradients!r}")
        targets = _flatten(target)
        srcs = _flatten(sources)
        for t in targets + srcs:
            if not isinstance(t, Tensor):
                raise TypeError(f"GradientTape.gradient: targets and sources must be Tensors or Variables, got "
                                f"{type(t).__name__}")
        grads = {}
        if output_gradients is not None:
            ogs = _flatten(output_gradients)
            if len(ogs) != len(targets):
                raise ValueError(f"output_gradients: expected {len(targets)} gradients, got {len(ogs)}")
            for t, g in zip(targets, ogs):
                _acc(grads, t, ops.convert_to_tensor(g, device=t.device))
        else:
            for t in targets:
                _acc(grads, t, _seed(t))
        keep = {id(s) for s in srcs}
        with _Pause(_tapes()):
            nodes = self._nodes
            if not self._persistent:
                self._nodes = []
            for i in range(len(nodes) - 1, -1, -1):
                name, inputs, outputs, vjp = nodes[i]
                if not self._persistent:
                    nodes[i] = None  # what this op's gradient held is released once used
                gs = [grads.get(id(o)) if id(o) in keep else grads.pop(id(o), None) for o in outputs]
                if all(g is None for g in gs):
                    continue
                if vjp is None:
                    raise ValueError(f"The operation {name!r} has no gradient, and the target depends on a source "
                                     f"through it (argmax and comparisons are not differentiable)")
                in_grads = vjp(*gs)
                for x, g in zip(inputs, in_grads):
                    if g is not None and x is not None and (id(x) in self._tracked):
                        _acc(grads, x, g)
        self._used = True
        if not self._persistent:
            self._tracked = {}
        out = []
        for s in srcs:
            g = grads.get(id(s))
            if g is None and unconnected_gradients == "zero":
                g = ops.zeros_like(s)
            out.append(g)
        return _unflatten(sources, out)

    def jacobian(self, target, sources):
        """d target[i] / d sources for each element i (stacked on a leading axis); needs a
        persistent tape."""
        ops = _ops()
        if not self._persistent:
            raise RuntimeError("jacobian needs GradientTape(persistent=True)")
        t = target
        rows = []
        n = t.size
        for i in range(n):
            seed = np.zeros(n, dtype=t.dtype)
            seed[i] = 1
            g = self.gradient(t, sources, output_gradients=ops.reshape(ops.convert_to_tensor(seed, device=t.device),
                                                                      t.shape))
            rows.append(g)
        srcs = _flatten(sources)
        outs = []
        for j, s in enumerate(srcs):
            col = [(_flatten(r)[j] if _flatten(r)[j] is not None else ops.zeros_like(s)) for r in rows]
            outs.append(ops.reshape(ops.stack(col), t.shape + s.shape))
        return _unflatten(sources, outs)


def _ops():
    """convcore.ops (imported on first use: it imports this module)."""
    global _OPS
    if _OPS is None:
        from . import ops
        _OPS = ops
    return _OPS


_OPS = None


def _seed(t):
    g = _ops().ones_like(t)
    g._is_seed = True  # fused losses return their gradient as is
    return g


def _acc(grads, x, g):
    prev = grads.get(id(x))
    grads[id(x)] = g if prev is None else _ops().add(prev, g)


def _flatten(s):
    if isinstance(s, (list, tuple)):
        out = []
        for v in s:
            out.extend(_flatten(v))
        return out
    if isinstance(s, dict):
        out = []
        for k in sorted(s, key=str):
            out.extend(_flatten(s[k]))
        return out
    return [s]


def _unflatten(structure, flat):
    """``flat`` put back into the nesting of ``structure`` (no closure: a recursive
    closure would be a reference cycle holding the gradients until the next GC)."""
    return _build(structure, iter(flat))


def _build(s, it):
    if isinstance(s, (list, tuple)):
        vals = [_build(v, it) for v in s]
        return type(s)(vals) if isinstance(s, list) or type(s) is tuple else type(s)(*vals)
    if isinstance(s, dict):
        out = {}
        for k in sorted(s, key=str):
            out[k] = _build(s[k], it)
        return {k: out[k] for k in s}
    return next(it)
