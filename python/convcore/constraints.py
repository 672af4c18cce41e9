"""Weight constraints with Keras 3's classes, names, default axes and formulas
(``keras.constraints``): ``c(w)`` returns the projected weight as a Tensor computed with
:mod:`convcore.ops` on ``w``'s device; the optimizer applies it after each update.

The norms are taken over ``axis`` (default 0: each column of a Dense kernel, the
incoming weights of one unit) and divided with Keras's fuzz factor
``backend.epsilon()`` (1e-7) added.
"""
from __future__ import annotations

from . import _checks, ops
from .utils import _lookup

__all__ = ["Constraint", "MaxNorm", "NonNeg", "UnitNorm", "MinMaxNorm", "max_norm", "non_neg", "unit_norm",
           "min_max_norm", "get", "serialize", "deserialize"]


def _axis(cls, axis):
    """An int, or a list of ints (kept as given for the config)."""
    if isinstance(axis, (list, tuple)):
        if not axis:
            raise ValueError(f"{cls}: axis must be an integer or a non-empty list of integers, received axis={axis!r}")
        return [_checks.integer(cls, "axis", a) for a in axis]
    return _checks.integer(cls, "axis", axis)


def _norms(w, axis):
    ax = tuple(axis) if isinstance(axis, list) else axis
    for a in (ax if isinstance(ax, tuple) else (ax,)):
        if not -w.ndim <= a < w.ndim:
            raise ValueError(f"constraint: axis {a} is out of range for a weight of shape {w.shape}")
    return ops.sqrt(ops.sum(ops.square(w), axis=ax, keepdims=True))


def _tensor(w):
    return w if isinstance(w, ops.Tensor) else ops.convert_to_tensor(w)


class Constraint:
    """Base class: ``c(w)`` returns the constrained weight (the identity here);
    subclasses implement ``__call__`` and ``get_config``."""

    def __call__(self, w):
        return w

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class MaxNorm(Constraint):
    """Rescales the weights along ``axis`` whose norm exceeds ``max_value``:
    ``w * clip(n, 0, max_value) / (epsilon + n)``.

    Parameters
    ----------
    max_value : float, default 2
    axis : int or list of int, default 0
    """

    def __init__(self, max_value=2, axis=0):
        self.max_value = max_value
        _checks.real("MaxNorm", "max_value", max_value, minimum=0.0)
        self.axis = _axis("MaxNorm", axis)

    def __call__(self, w):
        from . import backend
        w = _tensor(w)
        n = _norms(w, self.axis)
        return w * (ops.clip(n, 0.0, float(self.max_value)) / (backend.epsilon() + n))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """``max(w, 0)``."""

    def __call__(self, w):
        return ops.maximum(_tensor(w), 0.0)


class UnitNorm(Constraint):
    """``w / (epsilon + n)``: unit norm along ``axis``.

    Parameters
    ----------
    axis : int or list of int, default 0
    """

    def __init__(self, axis=0):
        self.axis = _axis("UnitNorm", axis)

    def __call__(self, w):
        from . import backend
        w = _tensor(w)
        return w / (backend.epsilon() + _norms(w, self.axis))

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Norms along ``axis`` moved into ``[min_value, max_value]`` at ``rate``:
    ``w * (rate * clip(n, min_value, max_value) + (1 - rate) * n) / (epsilon + n)``.

    Parameters
    ----------
    min_value : float, default 0.0
    max_value : float, default 1.0
    rate : float, default 1.0
        1.0 enforces the bounds at once; less moves towards them.
    axis : int or list of int, default 0
    """

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        lo = _checks.real("MinMaxNorm", "min_value", min_value, minimum=0.0)
        hi = _checks.real("MinMaxNorm", "max_value", max_value, minimum=0.0)
        if lo > hi:
            raise ValueError(f"MinMaxNorm: min_value must be <= max_value, received min_value={min_value!r}, "
                             f"max_value={max_value!r}")
        _checks.real("MinMaxNorm", "rate", rate)
        self.min_value, self.max_value, self.rate = min_value, max_value, rate
        self.axis = _axis("MinMaxNorm", axis)

    def __call__(self, w):
        from . import backend
        w = _tensor(w)
        n = _norms(w, self.axis)
        desired = float(self.rate) * ops.clip(n, float(self.min_value), float(self.max_value)) + \
            (1.0 - float(self.rate)) * n
        return w * (desired / (backend.epsilon() + n))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


# Keras's aliases: the classes themselves.
max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm
maxnorm, nonneg, unitnorm = MaxNorm, NonNeg, UnitNorm  # tf.keras 2's legacy aliases

_CLASSES = (Constraint, MaxNorm, NonNeg, UnitNorm, MinMaxNorm)
_TABLE = {c.__name__: c for c in _CLASSES}
_TABLE.update({"constraint": Constraint, "max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm,
               "min_max_norm": MinMaxNorm,
               # tf.keras 2's legacy names (Keras 3 refuses them)
               "maxnorm": MaxNorm, "nonneg": NonNeg, "unitnorm": UnitNorm})
CONSTRAINTS = tuple(_lookup.valid_names(_TABLE))


def deserialize(config, custom_objects=None):
    """The constraint of a config: a ``{"class_name", "config"}`` dict (Keras 2 or 3
    form) or a name."""
    return _lookup.deserialize("constraint", config, _TABLE, custom_objects, Constraint)


def get(identifier):
    """A Constraint (or a user callable ``w -> w``) from None (None), a name
    ('max_norm', 'non_neg', 'unit_norm', 'min_max_norm', a class name, a registered
    name), a config dict, a Constraint, a class (instantiated) or a callable."""
    return _lookup.get_callable("constraint", identifier, _TABLE, deserialize, "Constraint")


def serialize(constraint):
    """``{"class_name": ..., "config": {...}}`` (None for None; a function: its name)."""
    return _lookup.to_dict("constraint", constraint, set(_CLASSES))
