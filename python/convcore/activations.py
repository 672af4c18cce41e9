"""Activation functions by name (Keras's names), as functions of tensors.

``get(identifier)`` resolves a name, None ('linear') or a callable; the layers fuse the
ones with a native kernel ('relu', 'sigmoid', 'tanh', 'softmax') into their
convolution / dense kernel.
"""
from __future__ import annotations

from . import ops


def linear(x):
    return ops.convert_to_tensor(x)


relu, sigmoid, tanh, softmax = ops.relu, ops.sigmoid, ops.tanh, ops.softmax
gelu, silu, swish, elu, selu = ops.gelu, ops.silu, ops.swish, ops.elu, ops.selu
leaky_relu, log_softmax, softplus, relu6, hard_sigmoid = ops.leaky_relu, ops.log_softmax, ops.softplus, ops.relu6, \
    ops.hard_sigmoid

_BY_NAME = {
    "linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softmax": softmax, "gelu": gelu,
    "silu": silu, "swish": swish, "elu": elu, "selu": selu, "leaky_relu": leaky_relu, "log_softmax": log_softmax,
    "softplus": softplus, "relu6": relu6, "hard_sigmoid": hard_sigmoid,
}
ACTIVATIONS = tuple(_BY_NAME)
NATIVE = ops.nn.NATIVE_ACTIVATIONS


def get(identifier):
    """A canonical name for a known activation (a name, None, or one of the functions
    here), or the callable itself for a user function of tensors."""
    if identifier is None:
        return "linear"
    if isinstance(identifier, str):
        if identifier.lower() not in _BY_NAME:
            from .saving.object_registration import get_registered_object
            obj = get_registered_object(identifier)
            if callable(obj) and not isinstance(obj, type):
                return obj
            raise ValueError(f"Unknown activation {identifier!r}; valid activations are {', '.join(ACTIVATIONS)} "
                             "or a function of tensors")
        return identifier.lower()
    if callable(identifier):
        for n, f in _BY_NAME.items():
            if identifier is f:
                return n
        name = getattr(identifier, "__name__", None)
        if name in _BY_NAME and getattr(identifier, "__module__", "").startswith(("keras", "tensorflow")):
            return name
        return identifier
    raise ValueError(f"Unknown activation {identifier!r}; valid activations are {', '.join(ACTIVATIONS)} "
                     "or a function of tensors")


def apply(activation, x):
    """``activation(x)`` for a name from :func:`get` or a callable."""
    f = _BY_NAME[activation] if isinstance(activation, str) else activation
    return f(x)


def serialize(activation):
    if isinstance(activation, str):
        return activation
    name = getattr(activation, "__name__", None)
    if not name or name == "<lambda>":
        raise ValueError("save: a lambda activation cannot be saved; give it a name (def) and pass "
                         "custom_objects when loading")
    return name


def deserialize(name, custom_objects=None):
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    return get(name)
