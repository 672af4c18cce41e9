"""Activation layers with their own arguments (ReLU, LeakyReLU, PReLU, ELU, Softmax), as
``keras.layers``' activations family. Each composes :mod:`convcore.ops` (CPU and GPU;
the tape gives the gradients)."""
from __future__ import annotations

import numpy as np

from .. import _checks, initializers, ops
from .core import Layer
from ._weights import constraint_get, constraint_save, init_save, regularizer_get, regularizer_save


def _real(cls, name, value, minimum=None):
    """Keras's check of a layer's slope / threshold: a real number, not None, >= minimum."""
    if value is None:
        raise ValueError(f"{cls}: {name} cannot be None; expected a float >= {minimum}, received {name}=None")
    try:
        return _checks.real(cls, name, value, minimum=minimum)
    except ValueError:
        raise ValueError(f"{cls}: {name} must be a finite float >= {minimum}, received {name}={value!r}") from None


class _Elementwise(Layer):
    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


class ReLU(_Elementwise):
    """Rectified linear unit, as ``keras.layers.ReLU``: ``min(x, max_value)`` for
    ``x > threshold`` (``x`` itself, not clipped, when ``max_value`` is None), and
    ``negative_slope * (x - threshold)`` below the threshold — Keras's formula, in which
    values between 0 and the threshold map to 0 plus that negative part.

    Parameters
    ----------
    max_value : float >= 0 or None
        The largest output (None: no clipping).
    negative_slope : float >= 0
        Slope below the threshold.
    threshold : float >= 0
        Values at or below it are "negative".
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kw):
        kw.pop("activation", None)  # configs of older convcore versions
        super().__init__(**kw)
        if max_value is not None:
            max_value = _real("ReLU", "max_value", max_value, minimum=0.0)
        self.max_value = max_value
        self.negative_slope = _real("ReLU", "negative_slope", negative_slope, minimum=0.0)
        self.threshold = _real("ReLU", "threshold", threshold, minimum=0.0)

    def call(self, inputs, training=None):
        x = inputs
        slope, t, top = self.negative_slope, self.threshold, self.max_value
        if slope == 0.0 and t == 0.0 and top is None:
            return ops.relu(x)
        if slope != 0.0 and t == 0.0 and top is None:
            return ops.leaky_relu(x, negative_slope=slope)
        pos = ops.relu(x) if t == 0.0 else ops.where(ops.greater(x, t), x, 0.0)
        if top is not None:
            pos = ops.minimum(pos, top)
        if slope == 0.0:
            return pos
        return ops.subtract(pos, ops.multiply(ops.relu(ops.subtract(t, x)), slope))

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}


class LeakyReLU(_Elementwise):
    """``x`` for ``x > 0``, ``negative_slope * x`` otherwise, as
    ``keras.layers.LeakyReLU``. The layer's default slope is Keras's 0.3 (the function
    ``activations.leaky_relu`` defaults to 0.2, also as Keras). tf.keras 2's ``alpha=``
    is accepted for ``negative_slope`` (the config saves ``negative_slope``)."""

    def __init__(self, negative_slope=0.3, **kw):
        if "alpha" in kw:
            alpha = kw.pop("alpha")
            if negative_slope != 0.3 and alpha != negative_slope:
                raise ValueError(f"LeakyReLU: alpha (tf.keras 2's name) and negative_slope name the same slope; "
                                 f"received both, alpha={alpha!r}, negative_slope={negative_slope!r}")
            negative_slope = alpha
        super().__init__(**kw)
        self.negative_slope = _real("LeakyReLU", "negative_slope", negative_slope, minimum=0.0)

    def call(self, inputs, training=None):
        return ops.leaky_relu(inputs, negative_slope=self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(_Elementwise):
    """Exponential linear unit, as ``keras.layers.ELU``: ``x`` for ``x > 0``,
    ``alpha * (exp(x) - 1)`` otherwise."""

    def __init__(self, alpha=1.0, **kw):
        super().__init__(**kw)
        self.alpha = _checks.real("ELU", "alpha", alpha)

    def call(self, inputs, training=None):
        return ops.elu(inputs, alpha=self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class PReLU(_Elementwise):
    """Parametric ReLU, as ``keras.layers.PReLU``: ``relu(x) - alpha * relu(-x)`` with a
    learned ``alpha`` of the input's shape (without the batch axis), of size 1 along
    ``shared_axes`` (1-based input axes, batch axis 0, as Keras).

    Parameters
    ----------
    alpha_initializer, alpha_regularizer, alpha_constraint
        As for any weight (names, objects or callables; the initializer defaults to
        zeros).
    shared_axes : int or list of int, optional
        Axes along which one alpha is shared (e.g. ``[1, 2]`` for per-channel alphas
        of images).
    """

    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kw):
        super().__init__(**kw)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizer_get(alpha_regularizer)
        self.alpha_constraint = constraint_get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            self.shared_axes = [_checks.integer("PReLU", "shared_axes entries", a, minimum=1) for a in axes]

    def build(self, input_shape):
        shape = list(input_shape)
        for a in self.shared_axes or ():
            if a > len(shape):
                raise ValueError(f"PReLU: shared_axes entries must be input axes 1..{len(shape)} (0 is the batch "
                                 f"axis), received shared_axes={self.shared_axes} for input shape "
                                 f"{(None,) + tuple(input_shape)}")
            shape[a - 1] = 1
        self.alpha = self.add_weight("alpha", tuple(shape), self.alpha_initializer,
                                     regularizer=self.alpha_regularizer, constraint=self.alpha_constraint)
        self.built = True

    def call(self, inputs, training=None):
        return ops.subtract(ops.relu(inputs), ops.multiply(self.alpha, ops.relu(ops.negative(inputs))))

    def get_config(self):
        return {**super().get_config(), "alpha_initializer": init_save(self.alpha_initializer),
                "alpha_regularizer": regularizer_save(self.alpha_regularizer),
                "alpha_constraint": constraint_save(self.alpha_constraint), "shared_axes": self.shared_axes}


class Softmax(_Elementwise):
    """Softmax over ``axis`` (an int or a list of ints), as ``keras.layers.Softmax``.
    ``mask`` (call argument, broadcastable to the input; True or > 0.5 keeps a value)
    gives masked positions -1e9 before the softmax and 0 after it, as Keras."""

    _min_input_rank = 1

    def __init__(self, axis=-1, **kw):
        kw.pop("activation", None)  # configs of older convcore versions
        super().__init__(**kw)
        if isinstance(axis, (list, tuple)):
            if not axis:
                raise ValueError("Softmax: axis must be an int or a non-empty list of ints, received axis=[]")
            self.axis = [_checks.integer("Softmax", "axis entries", a) for a in axis]
        else:
            self.axis = _checks.integer("Softmax", "axis", axis)

    def call(self, inputs, mask=None, training=None):
        x = inputs
        if mask is not None:
            m = np.asarray(mask) if not isinstance(mask, ops.Tensor) else mask.numpy()
            if m.ndim > x.ndim or any(a != 1 and a != b for a, b in zip(m.shape[::-1], x.shape[::-1])):
                raise ValueError(f"Softmax: the mask must be broadcastable to the inputs, received inputs.shape="
                                 f"{tuple(x.shape)}, mask.shape={m.shape}")
            keep = np.broadcast_to(m if m.dtype == bool else m > 0.5, x.shape)
            keep = ops.convert_to_tensor(np.ascontiguousarray(keep), device=x.device)
            x = ops.where(keep, x, -1e9)
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        for a in axes:
            if not -x.ndim <= a < x.ndim:
                raise ValueError(f"Softmax: axis {a} is out of range for inputs of rank {x.ndim} "
                                 f"(shape {tuple(x.shape)})")
        if len(axes) == 1:
            y = ops.softmax(x, axis=axes[0])
        else:
            y = ops.exp(ops.subtract(x, ops.logsumexp(x, axis=tuple(axes), keepdims=True)))
        return y if mask is None else ops.where(keep, y, 0.0)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


__all__ = ["ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax"]
