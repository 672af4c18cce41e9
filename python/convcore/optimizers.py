"""SGD and Adam with Keras's update rules; the updates run in Rust, in place."""
from __future__ import annotations

import numpy as np

from . import _core
from .device import is_gpu


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

    def _slot(self, key, name, like):
        k = (key, name)
        if k not in self._slots:
            self._slots[k] = _core.gpu_zeros(list(like.shape)) if is_gpu(like) else np.zeros_like(like)
        return self._slots[k]

    def apply_gradients(self, params_and_grads):
        """Update each (key, param, grad) in place."""
        self.iterations += 1
        for key, p, g in params_and_grads:
            self._update(key, p, g if is_gpu(p) else np.ascontiguousarray(g, dtype=p.dtype))

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

    def _update(self, key, p, g):
        v = self._slot(key, "velocity", p) if self.momentum > 0 else None
        f = _core.gpu_sgd_update if is_gpu(p) else _core.sgd_update
        f(p, g, v, self.learning_rate, self.momentum, self.nesterov)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Kingma & Ba) with Keras's defaults and bias correction."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, lr=None, name=None):
        super().__init__(learning_rate, lr, name)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        if not (0 <= self.beta_1 < 1 and 0 <= self.beta_2 < 1 and self.epsilon > 0):
            raise ValueError(f"Adam: need 0 <= beta_1, beta_2 < 1 and epsilon > 0, got {beta_1}, {beta_2}, {epsilon}")

    def _update(self, key, p, g):
        m = self._slot(key, "m", p)
        v = self._slot(key, "v", p)
        f = _core.gpu_adam_update if is_gpu(p) else _core.adam_update
        f(p, g, m, v, self.learning_rate, self.beta_1, self.beta_2, self.epsilon, self.iterations)

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
