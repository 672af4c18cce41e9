"""SGD and Adam with Keras's update rules; each update is one kernel, in place, on the
device where the variable lives."""
from __future__ import annotations

import numpy as np

from . import ops
from .tensor import Variable


class Optimizer:
    def __init__(self, learning_rate=0.01, lr=None, name=None):
        if lr is not None:
            learning_rate = lr
        learning_rate = float(learning_rate)
        if not learning_rate > 0:
            raise ValueError(f"{type(self).__name__}: learning_rate must be > 0, got {learning_rate}")
        self.learning_rate = learning_rate
        self.iterations = 0
        self._slots = {}

    @property
    def lr(self):
        return self.learning_rate

    @lr.setter
    def lr(self, v):
        v = float(v)
        if not v > 0:
            raise ValueError(f"{type(self).__name__}: learning_rate must be > 0, got {v}")
        self.learning_rate = v

    def _slot(self, var, name):
        """The optimizer state ``name`` of ``var`` (zeros at first), on var's device."""
        k = (id(var), name)
        s = self._slots.get(k)
        if s is None or s[0] is not var or s[1].device != var.device:
            slot = ops.zeros_like(var)
            s = self._slots[k] = (var, slot)
        return s[1]._data

    def apply_gradients(self, grads_and_vars):
        """Update each variable in place from its gradient: ``[(grad, variable), ...]``
        as Keras (None gradients are skipped)."""
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        for g, v in pairs:
            if not isinstance(v, Variable):
                raise TypeError(f"{type(self).__name__}.apply_gradients: expected (gradient, Variable) pairs, got a "
                                f"{type(v).__name__} as the variable")
        self.iterations += 1
        for g, v in pairs:
            g = ops.convert_to_tensor(g, device=v.device)
            if tuple(g.shape) != tuple(v.shape):
                raise ValueError(f"{type(self).__name__}.apply_gradients: gradient of shape {g.shape} for variable "
                                 f"{v.name!r} of shape {v.shape}")
            self._update(v, g)

    def get_config(self):
        return {"name": type(self).__name__, "learning_rate": self.learning_rate}


class SGD(Optimizer):
    """``v = momentum * v - lr * g; p += v`` (Nesterov: ``p += momentum * v - lr * g``)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, lr=None, name=None):
        super().__init__(learning_rate, lr, name)
        self.momentum = float(momentum)
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError(f"SGD: momentum must be in [0, 1], got {momentum}")
        self.nesterov = bool(nesterov)

    def _update(self, var, g):
        v = self._slot(var, "velocity") if self.momentum > 0 else None
        ops.core.backend(var).sgd_update(var._data, g._data, v, self.learning_rate, self.momentum, self.nesterov)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Kingma & Ba) with Keras's defaults and bias correction."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, lr=None, name=None):
        super().__init__(learning_rate, lr, name)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        if not (0 <= self.beta_1 < 1 and 0 <= self.beta_2 < 1 and self.epsilon > 0):
            raise ValueError(f"Adam: need 0 <= beta_1, beta_2 < 1 and epsilon > 0, got {beta_1}, {beta_2}, {epsilon}")

    def _update(self, var, g):
        m = self._slot(var, "m")
        v = self._slot(var, "v")
        ops.core.backend(var).adam_update(var._data, g._data, m, v, self.learning_rate, self.beta_1, self.beta_2,
                                          self.epsilon, self.iterations)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


_OPTIMIZERS = {"sgd": SGD, "adam": Adam}


def get(identifier):
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _OPTIMIZERS:
        return _OPTIMIZERS[identifier.lower()]()
    raise ValueError(f"Unknown optimizer {identifier!r}; valid optimizers are {', '.join(_OPTIMIZERS)} "
                     "or an Optimizer object")


def deserialize(cfg):
    cfg = dict(cfg)
    cls = {"SGD": SGD, "Adam": Adam}[cfg.pop("name")]
    return cls(**cfg)
