"""Batch normalization over the channel (last) axis."""
from __future__ import annotations

import numpy as np

from .. import _checks, initializers, ops
from .core import Layer


class BatchNormalization(Layer):
    """Normalize each channel by batch statistics in training (updating the moving
    statistics as Keras does: ``moving = moving * momentum + batch * (1 - momentum)``)
    and by the moving statistics in inference; then scale by ``gamma`` and shift by
    ``beta``. Weights (Keras order): gamma, beta, moving_mean, moving_variance."""

    _min_input_rank = 1  # the channels axis

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", **kw):
        super().__init__(**kw)
        if axis not in (-1,):
            raise ValueError(f"BatchNormalization: only the channels-last axis (-1) is supported, got axis={axis!r}")
        self.axis = -1
        self.momentum = _checks.real("BatchNormalization", "momentum", momentum, minimum=0, maximum=1)
        self.epsilon = _checks.real("BatchNormalization", "epsilon", epsilon, minimum=0, strict_min=True)
        for name, v in (("center", center), ("scale", scale)):
            if not isinstance(v, (bool, np.bool_)):
                raise TypeError(f"BatchNormalization: {name} must be True or False, got {v!r}")
        self.center, self.scale = bool(center), bool(scale)
        # Resolved now, so a bad name is an error here rather than at build time.
        self._inits = {k: initializers.get(v) for k, v in dict(
            beta_initializer=beta_initializer, gamma_initializer=gamma_initializer,
            moving_mean_initializer=moving_mean_initializer,
            moving_variance_initializer=moving_variance_initializer).items()}

    def build(self, input_shape):
        c = (input_shape[-1],)
        self.gamma = self.add_weight("gamma", c, self._inits["gamma_initializer"], trainable=self.scale)
        self.beta = self.add_weight("beta", c, self._inits["beta_initializer"], trainable=self.center)
        self.moving_mean = self.add_weight("moving_mean", c, self._inits["moving_mean_initializer"], trainable=False)
        self.moving_variance = self.add_weight("moving_variance", c, self._inits["moving_variance_initializer"],
                                               trainable=False)
        self.built = True

    def call(self, inputs, training=None):
        # A frozen layer (trainable=False) normalizes with its moving statistics, as Keras 3.
        training = bool(training) and self.trainable
        y, mean, var = ops.fused_batch_norm(inputs, self.gamma if self.scale else None,
                                            self.beta if self.center else None, self.epsilon, training,
                                            self.moving_mean, self.moving_variance)
        if training:
            m = self.momentum
            self.moving_mean.assign_axpby(mean, m, 1.0 - m)
            self.moving_variance.assign_axpby(var, m, 1.0 - m)
        return y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                **{k: (v if isinstance(v, str) else "zeros") for k, v in self._inits.items()}}


__all__ = ["BatchNormalization"]
