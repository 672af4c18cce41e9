"""Activation functions of tensors with Keras 3's names, arguments and formulas
(``keras.activations``), composed of :mod:`convcore.ops` (so they run on the tensor's
device and the tape differentiates them).

``get(identifier)`` resolves a name, None ('linear'), a config dict or any callable.
For a built-in activation it returns its name as an :class:`ActivationName`: a ``str``
that is also callable as the function (Keras's ``get`` returns the function), so the
layers can fuse the ones with a native kernel ('relu', 'sigmoid', 'tanh', 'softmax')
into their convolution / dense kernel by name.

Where tf.keras 2 and Keras 3 differ, Keras 3 is followed: ``gelu`` defaults to
``approximate=False`` (``convcore.ops.gelu``, like ``keras.ops.gelu``, to True),
``hard_sigmoid`` is ``relu6(x + 3) / 6`` (tf.keras 2: ``clip(0.2 x + 0.5, 0, 1)``) and
``leaky_relu``'s default slope is 0.2 (tf.keras 2's ``LeakyReLU``: 0.3).
"""
from __future__ import annotations

import numpy as np

from . import _checks, ops

__all__ = ["ActivationName", "get", "serialize", "deserialize", "apply", "relu", "leaky_relu", "relu6", "softmax",
           "log_softmax", "elu", "selu", "celu", "gelu", "silu", "swish", "hard_silu", "hard_swish", "mish",
           "softplus", "softsign", "squareplus", "sparse_plus", "sigmoid", "hard_sigmoid", "log_sigmoid",
           "sparse_sigmoid", "tanh", "hard_tanh", "tanh_shrink", "soft_shrink", "hard_shrink", "threshold", "glu",
           "exponential", "linear"]


def _t(x):
    return x if isinstance(x, ops.Tensor) else ops.convert_to_tensor(x)


def linear(x):
    """The identity: ``x`` as a Tensor."""
    return ops.convert_to_tensor(x)


def _slope(func, negative_slope, alpha, default):
    """Keras 3's ``negative_slope``, or tf.keras 2's name for it, ``alpha``."""
    if alpha is not None:
        if negative_slope is not None and negative_slope != default:
            raise TypeError(f"{func}: got both negative_slope={negative_slope!r} and alpha={alpha!r} "
                            "(tf.keras 2's name for it); pass one")
        negative_slope = alpha
    return _checks.real(func, "negative_slope", default if negative_slope is None else negative_slope)


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0, *, alpha=None):
    """Keras 3's ``relu``: ``x`` above ``threshold`` (else 0), clipped at ``max_value``,
    minus ``negative_slope * relu(threshold - x)`` below it. The defaults are
    ``max(x, 0)`` (the native kernel). ``alpha=`` is tf.keras 2's name of the slope."""
    slope = _slope("relu", negative_slope, alpha, 0.0)
    thr = _checks.real("relu", "threshold", threshold)
    top = None if max_value is None else _checks.real("relu", "max_value", max_value)
    if slope == 0.0 and top is None and thr == 0.0:
        return ops.relu(x)
    x = _t(x)
    if slope != 0.0 and top is None and thr == 0.0:
        return ops.leaky_relu(x, negative_slope=slope)
    negative = ops.relu(thr - x) if slope != 0.0 else None
    if thr != 0.0:
        y = ops.where(ops.greater(x, thr), x, 0.0)
    else:
        y = ops.relu(x)
    if top is not None:
        y = ops.clip(y, 0.0, top)
    return y if negative is None else y - slope * negative


def leaky_relu(x, negative_slope=0.2, *, alpha=None):
    """``x`` for ``x > 0``, else ``negative_slope * x`` (Keras 3's default slope 0.2;
    ``alpha=`` is tf.keras 2's name of the slope)."""
    return ops.leaky_relu(x, negative_slope=_slope("leaky_relu", negative_slope, alpha, 0.2))


def relu6(x):
    """``min(max(x, 0), 6)``."""
    return ops.relu6(x)


def softmax(x, axis=-1):
    """``exp(x) / sum(exp(x))`` along ``axis`` (the output remembers ``x`` as its logits)."""
    return ops.softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    """``x - logsumexp(x)`` along ``axis``."""
    return ops.log_softmax(x, axis=axis)


def elu(x, alpha=1.0):
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``."""
    return ops.elu(x, alpha=alpha)


def selu(x):
    """``scale * elu(x, alpha)`` with the self-normalizing constants
    (alpha=1.67326324, scale=1.05070098)."""
    return ops.selu(x)


def celu(x, alpha=1.0):
    """``max(x, 0) + min(alpha * (exp(x / alpha) - 1), 0)``."""
    alpha = _checks.real("celu", "alpha", alpha)
    if alpha == 0.0:
        raise ValueError("celu: alpha must be non-zero, received alpha=0.0")
    x = _t(x)
    return ops.where(ops.greater(x, 0.0), x, alpha * ops.expm1(ops.minimum(x, 0.0) / alpha))


# Numerical Recipes' erfcc: erfc(z) for z >= 0 as t * exp(-z**2 + P(t)), t = 1 / (1 + z/2),
# with a relative error below 1.2e-7 everywhere (float32's resolution).
_ERFC = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587,
         -0.82215223, 0.17087277)


def _erfc_nonneg(z):
    t = 1.0 / (z * 0.5 + 1.0)
    p = _ERFC[-1]
    for c in reversed(_ERFC[:-1]):
        p = t * p + c
    return t * ops.exp(p - ops.square(z))


def gelu(x, approximate=False):
    """Gaussian error linear unit ``x * Phi(x)``; ``approximate=True`` is the tanh form
    (Keras 3's ``keras.activations.gelu`` defaults to the exact one).

    Both forms avoid the cancellation of ``1 + erf`` / ``1 + tanh`` in the negative
    tail (in float32 5% off at x = -5 for erf; Keras's tanh form is 0.1% off at -4):
    the tanh form is computed as ``x * sigmoid(2 u)``, and in float32 (both devices)
    ``Phi`` comes from an erfc approximation of relative error < 1.2e-7. float64's
    exact form is ``ops.gelu``'s erf form."""
    if not isinstance(approximate, (bool, np.bool_)):
        raise TypeError(f"gelu: approximate must be True or False, received approximate={approximate!r}")
    x = ops.nn._real("gelu", _t(x))
    if approximate:
        u = (x + ops.square(x) * x * 0.044715) * float(np.sqrt(2.0 / np.pi))
        return x * ops.sigmoid(u * 2.0)
    if np.dtype(x.dtype) == np.float64:
        return ops.gelu(x, approximate=False)
    e = _erfc_nonneg(ops.abs(x) * float(1.0 / np.sqrt(2.0)))
    phi = ops.where(ops.less(x, 0.0), e * 0.5, 1.0 - e * 0.5)
    return x * phi


def silu(x):
    """``x * sigmoid(x)`` (also called swish)."""
    return ops.silu(x)


swish = silu


def hard_silu(x):
    """``x * hard_sigmoid(x)`` (also called hard_swish)."""
    x = _t(x)
    return x * ops.hard_sigmoid(x)


hard_swish = hard_silu


def mish(x):
    """``x * tanh(softplus(x))``."""
    x = _t(x)
    return x * ops.tanh(ops.softplus(x))


def softplus(x):
    """``log(1 + exp(x))``."""
    return ops.softplus(x)


def softsign(x):
    """``x / (1 + |x|)``."""
    x = _t(x)
    return x / (ops.abs(x) + 1.0)


def squareplus(x, b=4):
    """``(x + sqrt(x**2 + b)) / 2``."""
    b = _checks.real("squareplus", "b", b, minimum=0.0)
    x = _t(x)
    return (x + ops.sqrt(ops.square(x) + b)) * 0.5


def sparse_plus(x):
    """0 for ``x <= -1``, ``x`` for ``x >= 1``, ``(x + 1)**2 / 4`` between."""
    x = _t(x)
    mid = ops.square(x + 1.0) * 0.25
    return ops.where(ops.less_equal(x, -1.0), 0.0, ops.where(ops.greater_equal(x, 1.0), x, mid))


def sigmoid(x):
    """``1 / (1 + exp(-x))`` (the output remembers ``x`` as its logits)."""
    return ops.sigmoid(x)


def hard_sigmoid(x):
    """Keras 3's ``relu6(x + 3) / 6`` (0 below -3, 1 above 3, linear between)."""
    return ops.hard_sigmoid(x)


def log_sigmoid(x):
    """``log(sigmoid(x)) = -softplus(-x)``."""
    return -ops.softplus(-_t(x))


def sparse_sigmoid(x):
    """0 for ``x <= -1``, 1 for ``x >= 1``, ``(x + 1) / 2`` between."""
    return ops.clip((_t(x) + 1.0) * 0.5, 0.0, 1.0)


def tanh(x):
    """The hyperbolic tangent."""
    return ops.tanh(x)


def hard_tanh(x):
    """``clip(x, -1, 1)``."""
    return ops.clip(_t(x), -1.0, 1.0)


def tanh_shrink(x):
    """``x - tanh(x)``."""
    x = _t(x)
    return x - ops.tanh(x)


def soft_shrink(x, threshold=0.5):
    """``x - threshold`` above ``threshold``, ``x + threshold`` below ``-threshold``, 0 between."""
    t = _checks.real("soft_shrink", "threshold", threshold)
    x = _t(x)
    return ops.where(ops.greater(x, t), x - t, ops.where(ops.less(x, -t), x + t, 0.0))


def hard_shrink(x, threshold=0.5):
    """``x`` where ``|x| > threshold``, else 0."""
    t = _checks.real("hard_shrink", "threshold", threshold)
    x = _t(x)
    return ops.where(ops.greater(ops.abs(x), t), x, 0.0)


def threshold(x, threshold, default_value):
    """``x`` where ``x > threshold``, else ``default_value``."""
    t = _checks.real("threshold", "threshold", threshold)
    d = _checks.real("threshold", "default_value", default_value)
    x = _t(x)
    return ops.where(ops.greater(x, t), x, d)


def glu(x, axis=-1):
    """Gated linear unit: ``a * sigmoid(b)`` for the two halves ``a, b`` of ``axis``."""
    x = _t(x)
    ax = _checks.normalize_axis("glu", axis, x.ndim)
    if x.shape[ax] % 2:
        raise ValueError(f"glu: axis {axis} must have an even size, received shape {x.shape}")
    a, b = ops.split(x, 2, axis=ax)
    return a * ops.sigmoid(b)


def exponential(x):
    """``exp(x)``."""
    return ops.exp(x)


_BY_NAME = {
    "linear": linear, "relu": relu, "leaky_relu": leaky_relu, "relu6": relu6, "softmax": softmax,
    "log_softmax": log_softmax, "elu": elu, "selu": selu, "celu": celu, "gelu": gelu, "silu": silu, "swish": swish,
    "hard_silu": hard_silu, "hard_swish": hard_swish, "mish": mish, "softplus": softplus, "softsign": softsign,
    "squareplus": squareplus, "sparse_plus": sparse_plus, "sigmoid": sigmoid, "hard_sigmoid": hard_sigmoid,
    "log_sigmoid": log_sigmoid, "sparse_sigmoid": sparse_sigmoid, "tanh": tanh, "hard_tanh": hard_tanh,
    "tanh_shrink": tanh_shrink, "soft_shrink": soft_shrink, "hard_shrink": hard_shrink, "threshold": threshold,
    "glu": glu, "exponential": exponential,
}
ACTIVATIONS = tuple(_BY_NAME)
NATIVE = ops.nn.NATIVE_ACTIVATIONS
# What each function of ops (the same computation) is called here, so a layer given
# ``ops.relu`` fuses it as 'relu'.
_OPS_ALIASES = {ops.relu: "relu", ops.sigmoid: "sigmoid", ops.tanh: "tanh", ops.softmax: "softmax",
                ops.linear: "linear", ops.silu: "silu", ops.elu: "elu", ops.selu: "selu", ops.softplus: "softplus",
                ops.relu6: "relu6", ops.hard_sigmoid: "hard_sigmoid", ops.leaky_relu: "leaky_relu",
                ops.log_softmax: "log_softmax", ops.exp: "exponential"}


class ActivationName(str):
    """The name of a built-in activation (what :func:`get` returns for one): a ``str``
    equal to the name (configs and fusion go by it) and callable as the function,
    ``get('relu')(x)``, as Keras's ``get`` returns a callable."""

    __slots__ = ()

    def __call__(self, x, *args, **kwargs):
        return _BY_NAME[str(self)](x, *args, **kwargs)

    def __repr__(self):
        return f"<activation {str(self)!r}>"

    def __reduce__(self):
        return ActivationName, (str(self),)


def _invalid(identifier):
    return ValueError(f"Unknown activation {identifier!r}; valid activations are {', '.join(ACTIVATIONS)}, a name "
                      "registered with register_keras_serializable, or a function of tensors")


def get(identifier):
    """A built-in activation's name (an :class:`ActivationName`: callable) for a name
    (case-insensitive), None ('linear') or one of the functions here (or the same one
    of ``keras.activations``); the callable itself for a user function of tensors; a
    registered name resolves to its object."""
    if identifier is None:
        return ActivationName("linear")
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        if identifier.lower() in _BY_NAME:
            return ActivationName(identifier.lower())
        from .saving.object_registration import get_registered_object, is_private
        obj = None if is_private(identifier) else get_registered_object(identifier)
        if callable(obj) and not isinstance(obj, type):
            return obj
        raise _invalid(identifier)
    if callable(identifier) and not isinstance(identifier, type):
        for n, f in _BY_NAME.items():
            if identifier is f:
                return ActivationName(n)
        try:
            alias = _OPS_ALIASES.get(identifier)
        except TypeError:  # an unhashable callable
            alias = None
        if alias is not None:
            return ActivationName(alias)
        name = getattr(identifier, "__name__", None)
        if name in _BY_NAME and getattr(identifier, "__module__", "").startswith(("keras", "tensorflow")):
            return ActivationName(name)
        return identifier
    raise _invalid(identifier)


def apply(activation, x):
    """``activation(x)`` for a name from :func:`get` or a callable."""
    f = _BY_NAME[activation] if isinstance(activation, str) else activation
    return f(x)


def serialize(activation):
    """A built-in activation's name; a user function's registered (or plain) name, as
    Keras 3 saves an activation (a lambda cannot be saved)."""
    if isinstance(activation, str):
        return str(activation)
    known = get(activation)
    if isinstance(known, str):
        return str(known)
    from .utils import _lookup
    return _lookup.to_dict("activation", activation, set())


def deserialize(config, custom_objects=None):
    """The activation of a saved name (``custom_objects`` first), or of Keras 3's
    ``{"class_name": "function", "config": name}`` form."""
    if isinstance(config, dict):
        # Keras 3: {"class_name": "function", "config": "<registered name>", "registered_name": "function"}
        name = config.get("config") if config.get("class_name") == "function" else config.get("class_name")
        if not isinstance(name, str):
            raise ValueError(f"Could not interpret activation config {config!r}: expected a name or "
                             "{'class_name': 'function', 'config': name}")
        config = name
    if custom_objects and config in custom_objects:
        return custom_objects[config]
    return get(config)
