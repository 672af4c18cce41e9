"""Activation functions by name; forward and backward are computed in Rust."""
from __future__ import annotations

from . import _ops

ACTIVATIONS = ("linear", "relu", "sigmoid", "softmax", "tanh")


def get(name):
    """Resolve an activation identifier ('relu', None, ...) to its canonical name."""
    if name is None:
        return "linear"
    if callable(name) and getattr(name, "__name__", None) in ACTIVATIONS:
        return name.__name__
    if not isinstance(name, str) or name.lower() not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; valid activations are {', '.join(ACTIVATIONS)}")
    return name.lower()


def forward(name, x):
    if name == "linear":
        return x
    return _ops.activation_forward(name, x)


def backward(name, x, y, dy):
    if name == "linear":
        return dy
    return _ops.activation_backward(name, x, y, dy)
