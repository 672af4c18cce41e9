"""Weight regularizers with Keras 3's classes, names, defaults and formulas
(``keras.regularizers``): ``reg(x)`` is a 0-d Tensor computed with :mod:`convcore.ops`,
so the tape differentiates it and it runs on ``x``'s device.

Where tf.keras 2 and Keras 3 differ: ``l1_l2`` is Keras 3's alias of the class
``L1L2`` (defaults ``l1=0.0, l2=0.0``; tf.keras 2's function defaulted to 0.01 each),
while the *name* ``'l1_l2'`` (which Keras 3.15 refuses) gives tf.keras 2's
``L1L2(l1=0.01, l2=0.01)``, as Keras 3's docstring of L1L2 says.
"""
from __future__ import annotations

import numpy as np

from . import _checks, ops
from .utils import _lookup

__all__ = ["Regularizer", "L1", "L2", "L1L2", "OrthogonalRegularizer", "l1", "l2", "l1_l2",
           "orthogonal_regularizer", "get", "serialize", "deserialize"]


def _factor(cls, name, value):
    """A non-negative finite factor (Keras's validate_float_arg; None: the default)."""
    return _checks.real(cls, name, value, minimum=0.0)


def _tensor(x):
    return x if isinstance(x, ops.Tensor) else ops.convert_to_tensor(x)


class Regularizer:
    """Base class: ``reg(x)`` returns the penalty of weight ``x`` (a 0-d Tensor) to add
    to the loss; subclasses implement ``__call__`` and ``get_config``."""

    def __call__(self, x):
        return 0.0

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self):
        raise NotImplementedError(f"{self} does not implement get_config()")

    def __repr__(self):
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"


class L1L2(Regularizer):
    """``l1 * sum(|x|) + l2 * sum(x**2)``.

    Parameters
    ----------
    l1, l2 : float, default 0.0
        Non-negative factors (None means 0.0), as Keras 3.
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor("L1L2", "l1", 0.0 if l1 is None else l1)
        self.l2 = _factor("L1L2", "l2", 0.0 if l2 is None else l2)

    def __call__(self, x):
        x = _tensor(x)
        out = None
        if self.l1:
            out = self.l1 * ops.sum(ops.abs(x))
        if self.l2:
            t = self.l2 * ops.sum(ops.square(x))
            out = t if out is None else out + t
        # both factors 0: an exact 0 on x's device (Keras: a 0.0 constant)
        return ops.zeros_like(ops.sum(x)) if out is None else out

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    """``l1 * sum(|x|)``.

    Parameters
    ----------
    l1 : float, default 0.01
    """

    def __init__(self, l1=0.01):
        self.l1 = _factor("L1", "l1", 0.01 if l1 is None else l1)

    def __call__(self, x):
        return self.l1 * ops.sum(ops.abs(_tensor(x)))

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum(x**2)``.

    Parameters
    ----------
    l2 : float, default 0.01
    """

    def __init__(self, l2=0.01):
        self.l2 = _factor("L2", "l2", 0.01 if l2 is None else l2)

    def __call__(self, x):
        return self.l2 * ops.sum(ops.square(_tensor(x)))

    def get_config(self):
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """``factor * 0.5 * mean |<u_i, u_j>|`` over the pairs ``i != j`` of the
    L2-normalized rows (``mode='rows'``) or columns (``'columns'``) of a 2-D weight, as
    Keras 3 (normalization as ``keras.ops.normalize``: ``x * min(1/||x||, 1/epsilon)``).

    Parameters
    ----------
    factor : float, default 0.01
    mode : {'rows', 'columns'}, default 'rows'
    """

    def __init__(self, factor=0.01, mode="rows"):
        self.factor = _factor("OrthogonalRegularizer", "factor", factor)
        self.mode = _checks.choice("OrthogonalRegularizer", "mode", mode, ("rows", "columns"))

    def __call__(self, inputs):
        from . import backend
        x = _tensor(inputs)
        if x.ndim != 2:
            raise ValueError(f"OrthogonalRegularizer: inputs must have rank 2, received inputs.shape={x.shape}")
        axis = 1 if self.mode == "rows" else 0
        size = x.shape[1 - axis]
        if size < 2:
            raise ValueError(f"OrthogonalRegularizer: needs at least two {self.mode} to compare, received "
                             f"inputs.shape={x.shape}")
        # Keras's x * min(1/||x||, 1/eps), as x / sqrt(max(||x||^2, eps^2)): no division by zero
        eps = backend.epsilon()
        u = x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=axis, keepdims=True), eps * eps))
        product = ops.matmul(u, ops.transpose(u)) if axis == 1 else ops.matmul(ops.transpose(u), u)
        off = product * (1.0 - np.eye(size, dtype=np.float32 if x.dtype == np.float32 else np.float64))
        pairs = size * (size - 1.0) / 2.0
        return self.factor * 0.5 * ops.sum(ops.abs(off)) / pairs

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


# Keras 3's aliases: the classes themselves.
l1, l2, l1_l2, orthogonal_regularizer = L1, L2, L1L2, OrthogonalRegularizer

_CLASSES = (L1, L2, L1L2, OrthogonalRegularizer)
_TABLE = {"Regularizer": Regularizer, "L1": L1, "L2": L2, "L1L2": L1L2, "OrthogonalRegularizer": OrthogonalRegularizer,
          "l1": L1, "l2": L2, "l1l2": L1L2, "l1_l2": L1L2, "orthogonal_regularizer": OrthogonalRegularizer}
REGULARIZERS = tuple(_lookup.valid_names(_TABLE))


def deserialize(config, custom_objects=None):
    """The regularizer of a config: a ``{"class_name", "config"}`` dict (Keras 2 or 3
    form) or a name (``'l1_l2'``: ``L1L2(0.01, 0.01)``, see the module)."""
    if isinstance(config, str):
        if config == "l1_l2":
            return L1L2(l1=0.01, l2=0.01)
    return _lookup.deserialize("regularizer", config, _TABLE, custom_objects, Regularizer)


def get(identifier):
    """A Regularizer (or a user callable ``x -> penalty``) from None (None), a name
    ('l1', 'l2', 'l1_l2', 'orthogonal_regularizer', a class name, a registered name), a
    config dict, a Regularizer, a class (instantiated) or a callable."""
    return _lookup.get_callable("regularizer", identifier, _TABLE, deserialize, "Regularizer")


def serialize(regularizer):
    """``{"class_name": ..., "config": {...}}`` (None for None; a function: its name)."""
    return _lookup.to_dict("regularizer", regularizer, set(_CLASSES) | {Regularizer})
