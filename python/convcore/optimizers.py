"""SGD and Adam with Keras's update rules; each update is one kernel, in place, on the
device where the variable lives."""
from __future__ import annotations

import inspect as _inspect
import math
import numbers
import reprlib

import numpy as np

from . import ops
from .tensor import Variable


class _ArgumentError(ValueError):
    """A bad optimizer argument; ``arg`` names it (``deserialize`` reports it as the
    config key)."""

    def __init__(self, arg, message):
        super().__init__(message)
        self.arg = arg


def _real(opt, arg, value, ok, wanted):
    """``value`` as a finite float for which ``ok(v)`` holds, else a ValueError naming
    ``arg``: an infinite or NaN learning rate or decay turns every weight into NaN on the
    first step, and a bool or a string is a mistake, not a number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise _ArgumentError(arg, f"{opt}: {arg} must be a real number {wanted}, got {reprlib.repr(value)}")
    try:
        v = float(value)
    except (OverflowError, ValueError):
        v = math.nan
    if not math.isfinite(v) or not ok(v):
        raise _ArgumentError(arg, f"{opt}: {arg} must be a finite number {wanted}, got {reprlib.repr(value)}")
    return v


def _learning_rate(opt, value):
    return _real(opt, "learning_rate", value, lambda v: v > 0, "> 0")


class Optimizer:
    def __init__(self, learning_rate=0.01, lr=None, name=None):
        if lr is not None:
            learning_rate = lr
        self.learning_rate = _learning_rate(type(self).__name__, learning_rate)
        self.iterations = 0
        self._slots = {}

    @property
    def lr(self):
        return self.learning_rate

    @lr.setter
    def lr(self, v):
        self.learning_rate = _learning_rate(type(self).__name__, v)

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
        self.momentum = _real("SGD", "momentum", momentum, lambda v: 0.0 <= v <= 1.0, "in [0, 1]")
        if not (isinstance(nesterov, (bool, np.bool_, numbers.Integral)) and nesterov in (0, 1)):
            raise _ArgumentError("nesterov", f"SGD: nesterov must be True or False, got {reprlib.repr(nesterov)}")
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
        self.beta_1 = _real("Adam", "beta_1", beta_1, lambda v: 0.0 <= v < 1.0, "in [0, 1)")
        self.beta_2 = _real("Adam", "beta_2", beta_2, lambda v: 0.0 <= v < 1.0, "in [0, 1)")
        self.epsilon = _real("Adam", "epsilon", epsilon, lambda v: v > 0, "> 0")

    def _update(self, var, g):
        m = self._slot(var, "m")
        v = self._slot(var, "v")
        ops.core.backend(var).adam_update(var._data, g._data, m, v, self.learning_rate, self.beta_1, self.beta_2,
                                          self.epsilon, self.iterations)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


_OPTIMIZERS = {"sgd": SGD, "adam": Adam}
_CLASSES = {"SGD": SGD, "Adam": Adam}  # the names get_config writes


def get(identifier):
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _OPTIMIZERS:
        return _OPTIMIZERS[identifier.lower()]()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"Unknown optimizer {identifier!r}; valid optimizers are {', '.join(_OPTIMIZERS)} "
                     "or an Optimizer object")


def serialize(optimizer):
    return optimizer.get_config()


def deserialize(config):
    """The optimizer of ``get_config()``: ``{"name": "SGD" | "Adam", <arguments>}``.
    Anything else (an unknown name, an argument the class does not take, a value it
    refuses) is a :class:`~convcore.saving.ConfigError` naming the key."""
    from .saving.config_errors import ConfigError, check_dict
    check_dict(config, (), "an optimizer config (a dict with 'name' and the optimizer's arguments)")
    if "name" not in config:
        raise ConfigError("name", f"is missing (the optimizer's class: {', '.join(_CLASSES)})")
    name = config["name"]
    cls = _CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ConfigError("name", f"unknown optimizer {name!r}; known optimizers are {', '.join(_CLASSES)}")
    allowed = [p for p in _inspect.signature(cls.__init__).parameters if p not in ("self", "name")]
    args = {}
    for k, v in config.items():
        if k == "name":
            continue
        if k not in allowed:
            raise ConfigError(k, f"is not an argument of {name} (its arguments: {', '.join(allowed)})")
        args[k] = v
    try:
        return cls(**args)
    except _ArgumentError as e:
        raise ConfigError(e.arg, str(e)) from None
