"""Normalization layers (batch, layer, group, RMS and unit normalization), as
``keras.layers``' normalization family.

Batch normalization over the last axis runs the fused kernel (``ops.fused_batch_norm``:
statistics, normalization and its backward in one pass on each device), and so do layer
normalization over the last axis (``ops.nn.fused_layer_norm``) and channels-last group
normalization (``ops.nn.fused_group_norm``); every other case (other axes, RMS scaling)
composes :mod:`convcore.ops` (moments, sqrt, division), so the tape gives the gradients
and both devices run it.
"""
from __future__ import annotations

import numpy as np

from .. import _checks, initializers, ops
from .core import Layer
from ._weights import constraint_get, constraint_save, init_save, regularizer_get, regularizer_save


def _flag(cls, name, v):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{cls}: {name} must be True or False, received {name}={v!r}")
    return bool(v)


def _axes(cls, axis):
    """An int or a non-empty list of ints, as given (resolved against the rank at build)."""
    if isinstance(axis, (list, tuple)):
        if not axis:
            raise ValueError(f"{cls}: axis must be an int or a non-empty list of ints, received axis={axis!r}")
        return [_checks.integer(cls, "axis entries", a) for a in axis]
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{cls}: axis must be an int or a list of ints, received axis={axis!r}")
    return int(axis)


def _resolve(cls, axis, input_shape, batch_ok=False):
    """Sorted non-negative axes of the full (batch-first) shape for ``axis``."""
    ndim = len(input_shape) + 1
    out = []
    for a in (axis if isinstance(axis, list) else [axis]):
        r = a + ndim if a < 0 else a
        if not 0 <= r < ndim or (r == 0 and not batch_ok):
            raise ValueError(f"{cls}: axis {a} is not a feature axis of inputs of shape "
                             f"{(None,) + tuple(input_shape)} (valid: 1..{ndim - 1} or -1..-{ndim - 1})")
        if r in out:
            raise ValueError(f"{cls}: axis lists axis {a} twice, received axis={axis!r}")
        out.append(r)
    return sorted(out)


def _rsqrt(v):
    return ops.divide(1.0, ops.sqrt(v))


class _WeightsMixin:
    """gamma / beta resolved at construction, saved Keras's way."""

    def _init_affine(self, beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer,
                     beta_constraint, gamma_constraint):
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizer_get(beta_regularizer)
        self.gamma_regularizer = regularizer_get(gamma_regularizer)
        self.beta_constraint = constraint_get(beta_constraint)
        self.gamma_constraint = constraint_get(gamma_constraint)

    def _add_affine(self, shape, gamma=True, beta=True):
        self.gamma = self.add_weight("gamma", shape, self.gamma_initializer, regularizer=self.gamma_regularizer,
                                     constraint=self.gamma_constraint) if gamma else None
        self.beta = self.add_weight("beta", shape, self.beta_initializer, regularizer=self.beta_regularizer,
                                    constraint=self.beta_constraint) if beta else None

    def _affine_config(self):
        return {"beta_initializer": init_save(self.beta_initializer),
                "gamma_initializer": init_save(self.gamma_initializer),
                "beta_regularizer": regularizer_save(self.beta_regularizer),
                "gamma_regularizer": regularizer_save(self.gamma_regularizer),
                "beta_constraint": constraint_save(self.beta_constraint),
                "gamma_constraint": constraint_save(self.gamma_constraint)}


class BatchNormalization(_WeightsMixin, Layer):
    """Normalize by batch statistics in training (updating the moving statistics as
    Keras does: ``moving = moving * momentum + batch * (1 - momentum)``, biased batch
    variance) and by the moving statistics in inference; then scale by ``gamma`` and
    shift by ``beta``, as ``keras.layers.BatchNormalization``.

    ``axis`` is the feature axis (an int; a list of axes, as tf.keras 2 allowed, keeps
    statistics per entry of those axes). A layer with ``trainable=False`` runs in
    inference mode and leaves its moving statistics alone, as Keras 3. ``gamma`` exists
    only with ``scale``, ``beta`` only with ``center`` (Keras's weights: gamma, beta,
    moving_mean, moving_variance). ``synchronized`` is accepted and has no effect (one
    device); ``renorm=True`` is not supported. tf.keras 2's ``fused`` is accepted (a
    speed hint; the last axis always runs fused), its ``virtual_batch_size`` and
    ``adjustment`` only as None.
    """

    _min_input_rank = 1  # the channels axis

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, renorm=False, renorm_clipping=None,
                 renorm_momentum=0.99, synchronized=False, **kw):
        # tf.keras 2's arguments: ``fused`` is a speed hint (accepted, not saved); the
        # other two change the computation and are not supported.
        fused = kw.pop("fused", None)
        if fused is not None:
            _flag("BatchNormalization", "fused", fused)
        for name in ("virtual_batch_size", "adjustment"):
            if kw.pop(name, None) is not None:
                raise ValueError(f"BatchNormalization: {name} (tf.keras 2) is not supported; expected None")
        super().__init__(**kw)
        self.axis = _axes("BatchNormalization", axis)
        self.momentum = _checks.real("BatchNormalization", "momentum", momentum, minimum=0, maximum=1)
        self.epsilon = _checks.real("BatchNormalization", "epsilon", epsilon, minimum=0, strict_min=True)
        self.center = _flag("BatchNormalization", "center", center)
        self.scale = _flag("BatchNormalization", "scale", scale)
        if _flag("BatchNormalization", "renorm", renorm):
            raise ValueError("BatchNormalization: renorm=True (batch renormalization) is not supported; "
                             "received renorm=True")
        self.renorm, self.renorm_clipping = False, renorm_clipping
        self.renorm_momentum = _checks.real("BatchNormalization", "renorm_momentum", renorm_momentum)
        self.synchronized = _flag("BatchNormalization", "synchronized", synchronized)
        self._init_affine(beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer,
                          beta_constraint, gamma_constraint)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)

    def build(self, input_shape):
        self._axes = _resolve("BatchNormalization", self.axis, input_shape)
        shape = tuple(input_shape[a - 1] for a in self._axes)
        self._fused = self._axes == [len(input_shape)]
        if self.__dict__.get("_legacy_affine"):
            # a layer of a file written by convcore before Keras 3's weights: it held
            # gamma and beta always (the unused one frozen), so its weights keep loading
            self._add_affine(shape)
            self.gamma.trainable, self.beta.trainable = self.scale, self.center
            self.gamma = self.gamma if self.scale else None
            self.beta = self.beta if self.center else None
        else:
            self._add_affine(shape, gamma=self.scale, beta=self.center)
        self.moving_mean = self.add_weight("moving_mean", shape, self.moving_mean_initializer, trainable=False)
        self.moving_variance = self.add_weight("moving_variance", shape, self.moving_variance_initializer,
                                               trainable=False)
        self.built = True

    def call(self, inputs, training=None):
        # A frozen layer (trainable=False) normalizes with its moving statistics, as Keras 3.
        training = bool(training) and self.trainable
        if self._fused:
            y, mean, var = ops.fused_batch_norm(inputs, self.gamma, self.beta, self.epsilon, training,
                                                self.moving_mean, self.moving_variance)
        else:
            y, mean, var = self._composed(inputs, training)
        if training:
            m = self.momentum
            self.moving_mean.assign_axpby(mean, m, 1.0 - m)
            self.moving_variance.assign_axpby(var, m, 1.0 - m)
        return y

    def _composed(self, x, training):
        axes = self._axes
        bshape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]
        if training:
            red = tuple(i for i in range(x.ndim) if i not in axes)
            mean, var = ops.moments(x, red, keepdims=True)
        else:
            mean, var = ops.reshape(self.moving_mean, bshape), ops.reshape(self.moving_variance, bshape)
        inv = _rsqrt(ops.add(var, self.epsilon))
        if self.gamma is not None:
            inv = ops.multiply(inv, ops.reshape(self.gamma, bshape))
        y = ops.multiply(ops.subtract(x, mean), inv)
        if self.beta is not None:
            y = ops.add(y, ops.reshape(self.beta, bshape))
        shape = tuple(self.moving_mean.shape)
        return y, ops.reshape(mean, shape), ops.reshape(var, shape)

    @classmethod
    def from_config(cls, config):
        layer = cls(**config)
        # convcore's configs before Keras 3's BatchNormalization keys (renorm...) had
        # four weights whatever center / scale said
        if "renorm" not in config and not (layer.center and layer.scale):
            layer._legacy_affine = True
        return layer

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, **self._affine_config(),
                "moving_mean_initializer": init_save(self.moving_mean_initializer),
                "moving_variance_initializer": init_save(self.moving_variance_initializer),
                "synchronized": self.synchronized, "renorm": self.renorm, "renorm_clipping": self.renorm_clipping,
                "renorm_momentum": self.renorm_momentum}


class LayerNormalization(_WeightsMixin, Layer):
    """Normalize each sample over ``axis`` (an int or a list of ints; default the last
    axis) by its own mean and variance, then scale by ``gamma`` and shift by ``beta``
    (weights of the shape of those axes), as ``keras.layers.LayerNormalization``.

    ``rms_scaling=True`` follows Keras 3.15 exactly (deprecated there): it divides by
    ``sqrt(variance + epsilon)`` without subtracting the mean and has no ``beta``.
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, rms_scaling=False, **kw):
        super().__init__(**kw)
        self.axis = _axes("LayerNormalization", axis)
        self.epsilon = _checks.real("LayerNormalization", "epsilon", epsilon, minimum=0)
        self.center = _flag("LayerNormalization", "center", center)
        self.scale = _flag("LayerNormalization", "scale", scale)
        self.rms_scaling = _flag("LayerNormalization", "rms_scaling", rms_scaling)
        self._init_affine(beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer,
                          beta_constraint, gamma_constraint)

    def build(self, input_shape):
        self._axes = _resolve("LayerNormalization", self.axis, input_shape)
        if isinstance(self.axis, int):
            self.axis = [self.axis]  # Keras's built layer reports a list (its config too)
        shape = tuple(input_shape[a - 1] for a in self._axes)
        self._add_affine(shape, gamma=self.scale or self.rms_scaling, beta=self.center and not self.rms_scaling)
        self.built = True

    def call(self, inputs, training=None):
        x, axes = inputs, tuple(self._axes)
        bshape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]
        if self.rms_scaling:
            _, var = ops.moments(x, axes, keepdims=True)
            y = ops.multiply(x, _rsqrt(ops.add(var, self.epsilon)))
            return y if self.gamma is None else ops.multiply(y, ops.reshape(self.gamma, bshape))
        if axes == (x.ndim - 1,):
            return ops.nn.fused_layer_norm(x, self.gamma, self.beta, self.epsilon)
        mean, var = ops.moments(x, axes, keepdims=True)
        inv = _rsqrt(ops.add(var, self.epsilon))
        if self.gamma is not None:
            inv = ops.multiply(inv, ops.reshape(self.gamma, bshape))
        y = ops.multiply(ops.subtract(x, mean), inv)
        return y if self.beta is None else ops.add(y, ops.reshape(self.beta, bshape))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale, "rms_scaling": self.rms_scaling, **self._affine_config()}


class GroupNormalization(_WeightsMixin, Layer):
    """Split the channels (``axis``) into ``groups`` groups and normalize each sample's
    group by its mean and variance over the group's channels and every other non-batch
    axis; then scale by ``gamma`` and shift by ``beta`` (one per channel), as
    ``keras.layers.GroupNormalization``. ``groups=-1`` is one group per channel
    (instance normalization); ``groups=1`` is layer normalization over all axes."""

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kw):
        super().__init__(**kw)
        self.groups = _checks.integer("GroupNormalization", "groups", groups)
        if self.groups == 0 or self.groups < -1:
            raise ValueError(f"GroupNormalization: groups must be a positive integer or -1 (one group per "
                             f"channel), received groups={groups!r}")
        self.axis = _checks.integer("GroupNormalization", "axis", axis)
        self.epsilon = _checks.real("GroupNormalization", "epsilon", epsilon, minimum=0)
        self.center = _flag("GroupNormalization", "center", center)
        self.scale = _flag("GroupNormalization", "scale", scale)
        self._init_affine(beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer,
                          beta_constraint, gamma_constraint)

    def _groups_for(self, channels):
        return channels if self.groups == -1 else self.groups

    def build(self, input_shape):
        (self._axis,) = _resolve("GroupNormalization", self.axis, input_shape)
        dim = input_shape[self._axis - 1]
        if dim is None or dim < 1:
            raise ValueError(f"GroupNormalization: the normalized axis ({self.axis}) needs a known size of at least "
                             f"1 channel, received input shape {(None,) + tuple(input_shape)}")
        g = self._groups_for(dim)
        if dim < g:
            raise ValueError(f"GroupNormalization: the number of groups ({g}) cannot be more than the number of "
                             f"channels ({dim}, axis {self.axis} of input shape {(None,) + tuple(input_shape)})")
        if dim % g:
            raise ValueError(f"GroupNormalization: the number of channels ({dim}, axis {self.axis} of input shape "
                             f"{(None,) + tuple(input_shape)}) must be a multiple of groups ({g})")
        self._add_affine((dim,), gamma=self.scale, beta=self.center)
        self.built = True

    def call(self, inputs, training=None):
        x, ax = inputs, self._axis
        c = x.shape[ax]
        g = self._groups_for(c)
        if ax == x.ndim - 1:
            return ops.nn.fused_group_norm(x, self.gamma, self.beta, g, self.epsilon)
        gshape = list(x.shape)
        gshape[ax:ax + 1] = [g, c // g]
        xg = ops.reshape(x, gshape)
        red = tuple(i for i in range(1, len(gshape)) if i != ax)
        mean, var = ops.moments(xg, red, keepdims=True)
        inv = _rsqrt(ops.add(var, self.epsilon))
        bshape = [1] * len(gshape)
        bshape[ax:ax + 2] = [g, c // g]
        if self.gamma is not None:
            inv = ops.multiply(inv, ops.reshape(self.gamma, bshape))
        y = ops.multiply(ops.subtract(xg, mean), inv)
        if self.beta is not None:
            y = ops.add(y, ops.reshape(self.beta, bshape))
        return ops.reshape(y, tuple(x.shape))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, **self._affine_config()}


class RMSNormalization(Layer):
    """Root-mean-square normalization, as ``keras.layers.RMSNormalization``:
    ``x / sqrt(mean(x ** 2 over axis) + epsilon) * scale``, with a learned ``scale``
    (initialized to ones) of the shape of ``axis`` (an int or a list of ints)."""

    def __init__(self, axis=-1, epsilon=1e-6, **kw):
        super().__init__(**kw)
        self.axis = _axes("RMSNormalization", axis)
        self.epsilon = _checks.real("RMSNormalization", "epsilon", epsilon, minimum=0)

    def build(self, input_shape):
        self._axes = tuple(_resolve("RMSNormalization", self.axis, input_shape))
        if isinstance(self.axis, int):
            self.axis = [self.axis]  # as Keras's built layer
        self.scale = self.add_weight("scale", tuple(input_shape[a - 1] for a in self._axes), "ones")
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        bshape = [x.shape[i] if i in self._axes else 1 for i in range(x.ndim)]
        ms = ops.mean(ops.square(x), axis=self._axes, keepdims=True)
        return ops.multiply(ops.multiply(x, _rsqrt(ops.add(ms, self.epsilon))), ops.reshape(self.scale, bshape))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}


class UnitNormalization(Layer):
    """Scale each sample to unit L2 norm over ``axis`` (an int or a list of ints), as
    ``keras.layers.UnitNormalization``: ``x * min(1 / sqrt(sum(x ** 2)), 1e12)``."""

    def __init__(self, axis=-1, **kw):
        super().__init__(**kw)
        self.axis = _axes("UnitNormalization", axis)

    def build(self, input_shape):
        # no weights: the batch axis is a valid axis too, as Keras
        self._axes = tuple(_resolve("UnitNormalization", self.axis, input_shape, batch_ok=True))
        self.built = True

    def call(self, inputs, training=None):
        sq = ops.sum(ops.square(inputs), axis=self._axes, keepdims=True)
        return ops.multiply(inputs, ops.minimum(_rsqrt(sq), 1e12))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


__all__ = ["BatchNormalization", "LayerNormalization", "GroupNormalization", "RMSNormalization", "UnitNormalization"]
