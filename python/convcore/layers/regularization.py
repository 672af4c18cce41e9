"""Regularization layers (dropout and its spatial variants, multiplicative and additive
Gaussian noise, activity regularization), as ``keras.layers``' regularization family.

The noise layers act in training only and are the identity in inference. Their random
draws come from one stream per layer: a fixed ``seed`` gives the same sequence of masks
on every run (call ``n`` of a layer draws from ``(seed, n)``), no seed draws from the
package generator (``convcore.set_seed``). Masks that are not elementwise (a
``noise_shape``, spatial dropout), alpha dropout's mask and Gaussian noise are drawn on
the host and moved to the input's device (the same draws on CPU and GPU); plain dropout
draws on the device in one kernel.
"""
from __future__ import annotations

import numpy as np

from .. import _checks, backend, ops
from .core import Layer


def _rate(cls, rate, what="rate"):
    try:
        rate = _checks.real(cls, what, rate, minimum=0)
    except ValueError:
        raise ValueError(f"{cls}: {what} must be a float in [0, 1), received {what}={rate!r}") from None
    if not rate < 1.0:
        raise ValueError(f"{cls}: {what} must be a float in [0, 1), received {what}={rate!r}")
    return rate


def _seed(cls, seed):
    return None if seed is None else _checks.integer(cls, "seed", seed, minimum=0)


class _Noise(Layer):
    """A layer that draws random numbers in training: the per-layer stream."""

    def __init__(self, seed=None, **kw):
        super().__init__(**kw)
        self.seed = _seed(type(self).__name__, seed)
        self._calls = 0

    def _next_seed(self):
        if self.seed is None:
            return backend.next_seed()
        s = (int(self.seed) * 1_000_003 + self._calls) % (2**63)
        self._calls += 1
        return s

    def _rng(self):
        return np.random.default_rng(self._next_seed())

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


class Dropout(_Noise):
    """Inverted dropout, as ``keras.layers.Dropout``: in training, zero each value with
    probability ``rate`` and scale the rest by ``1 / (1 - rate)``; the identity outside
    training.

    Parameters
    ----------
    rate : float in [0, 1)
        Fraction of the values to drop.
    noise_shape : tuple, optional
        The shape of the binary mask, broadcast against the input (``None`` entries take
        the input's size): ``(batch, 1, features)`` drops the same features at every
        timestep.
    seed : int, optional
        Fixes the sequence of masks.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kw):
        super().__init__(seed=seed, **kw)
        self.rate = _rate(type(self).__name__, rate)
        if noise_shape is not None:
            if isinstance(noise_shape, (int, np.integer)) or not isinstance(noise_shape, (list, tuple)):
                raise TypeError(f"Dropout: noise_shape must be a tuple of ints or None entries, received "
                                f"noise_shape={noise_shape!r}")
            noise_shape = tuple(None if s is None else _checks.integer("Dropout", "noise_shape entries", s, minimum=1)
                                for s in noise_shape)
        self.noise_shape = noise_shape

    def _noise_shape(self, x):
        ns = self.noise_shape
        if ns is None:
            return None
        if len(ns) != x.ndim:
            raise ValueError(f"{type(self).__name__}: noise_shape {ns} must have one entry per input axis; received "
                             f"an input of shape {tuple(x.shape)}")
        ns = tuple(x.shape[i] if s is None else s for i, s in enumerate(ns))
        for s, n in zip(ns, x.shape):
            if s not in (1, n):
                raise ValueError(f"{type(self).__name__}: noise_shape {ns} does not broadcast to the input shape "
                                 f"{tuple(x.shape)} (each entry must be 1 or the input's size)")
        return ns

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        ns = self._noise_shape(inputs)
        if ns is None or ns == tuple(inputs.shape):
            return ops.dropout(inputs, self.rate, seed=self._next_seed())
        keep = self._rng().random(ns) >= self.rate
        mask = (keep / (1.0 - self.rate)).astype(inputs.dtype)
        return ops.multiply(inputs, ops.convert_to_tensor(mask, device=inputs.device))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "noise_shape": None if self.noise_shape is None else list(self.noise_shape)}


class AlphaDropout(Dropout):
    """Dropout that keeps the mean and variance of self-normalizing (SELU) activations,
    as ``keras.layers.AlphaDropout``: dropped values become SELU's negative saturation
    ``-alpha * scale``, then ``a * x + b`` restores the moments, with
    ``a = ((1 - rate) * (1 + rate * alpha_p ** 2)) ** -0.5`` and
    ``b = -a * alpha_p * rate``. ``noise_shape`` and ``seed`` as for Dropout. ``rate``
    must be below 1 (Keras accepts 1, where ``a`` is infinite)."""

    _ALPHA_P = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        ns = self._noise_shape(inputs) or tuple(inputs.shape)
        keep = (self._rng().random(ns) >= self.rate).astype(inputs.dtype)
        rate, ap = self.rate, self._ALPHA_P
        a = ((1 - rate) * (1 + rate * ap ** 2)) ** -0.5
        b = -a * ap * rate
        # a * (x * keep + ap * (1 - keep)) + b, with the constant part folded on the host
        scale = ops.convert_to_tensor((a * keep).astype(inputs.dtype), device=inputs.device)
        shift = ops.convert_to_tensor((a * ap * (1 - keep) + b).astype(inputs.dtype), device=inputs.device)
        return ops.add(ops.multiply(inputs, scale), shift)


class _SpatialDropout(Dropout):
    """Dropout of whole feature maps: the mask is ``(batch, 1, ..., 1, channels)``."""

    _rank = 1

    def __init__(self, rate, data_format=None, seed=None, **kw):
        super().__init__(rate, seed=seed, **kw)
        if data_format is None:
            data_format = "channels_last"
        self.data_format = _checks.choice(type(self).__name__, "data_format", data_format,
                                          ("channels_last", "channels_first"))
        self._input_rank = self._rank + 1

    def _noise_shape(self, x):
        if self.data_format == "channels_last":
            return (x.shape[0],) + (1,) * self._rank + (x.shape[-1],)
        return (x.shape[0], x.shape[1]) + (1,) * self._rank

    def get_config(self):
        cfg = super().get_config()
        # Keras's spatial dropout configs: rate, seed, name, dtype (and data_format).
        cfg.pop("noise_shape")
        cfg.pop("trainable")
        if self._rank > 1:
            cfg["data_format"] = self.data_format
        return cfg


class SpatialDropout1D(_SpatialDropout):
    """Dropout of whole channels of ``(batch, steps, channels)`` inputs, as
    ``keras.layers.SpatialDropout1D``: a dropped channel is zero at every step; the kept
    ones are scaled by ``1 / (1 - rate)``."""

    _rank = 1

    def __init__(self, rate, seed=None, **kw):
        kw.pop("data_format", None)
        super().__init__(rate, data_format="channels_last", seed=seed, **kw)


class SpatialDropout2D(_SpatialDropout):
    """Dropout of whole feature maps of 4-D inputs, as ``keras.layers.SpatialDropout2D``
    (``data_format`` 'channels_last' (default) or 'channels_first')."""

    _rank = 2


class SpatialDropout3D(_SpatialDropout):
    """Dropout of whole feature volumes of 5-D inputs, as
    ``keras.layers.SpatialDropout3D`` (``data_format`` 'channels_last' (default) or
    'channels_first')."""

    _rank = 3


class GaussianNoise(_Noise):
    """Add zero-mean Gaussian noise of standard deviation ``stddev`` in training, as
    ``keras.layers.GaussianNoise``; the identity in inference."""

    def __init__(self, stddev, seed=None, **kw):
        super().__init__(seed=seed, **kw)
        self.stddev = _checks.real("GaussianNoise", "stddev", stddev, minimum=0)

    def call(self, inputs, training=None):
        if not training or self.stddev == 0.0:
            return inputs
        noise = self._rng().normal(0.0, self.stddev, size=inputs.shape).astype(inputs.dtype)
        return ops.add(inputs, ops.convert_to_tensor(noise, device=inputs.device))

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_Noise):
    """Multiply by Gaussian noise of mean 1 and standard deviation
    ``sqrt(rate / (1 - rate))`` in training, as ``keras.layers.GaussianDropout``; the
    identity in inference."""

    def __init__(self, rate, seed=None, **kw):
        super().__init__(seed=seed, **kw)
        self.rate = _rate("GaussianDropout", rate)

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        std = float(np.sqrt(self.rate / (1.0 - self.rate)))
        noise = self._rng().normal(1.0, std, size=inputs.shape).astype(inputs.dtype)
        return ops.multiply(inputs, ops.convert_to_tensor(noise, device=inputs.device))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class ActivityRegularization(Layer):
    """The identity, adding ``(l1 * sum(|x|) + l2 * sum(x ** 2)) / batch_size`` to the
    layer's losses at each call, as ``keras.layers.ActivityRegularization`` (Keras 3
    divides an activity penalty by the batch size)."""

    def __init__(self, l1=0.0, l2=0.0, **kw):
        kw.pop("activity_regularizer", None)  # implied by l1 / l2, as Keras's config drops it
        super().__init__(**kw)
        self.l1 = _checks.real("ActivityRegularization", "l1", l1, minimum=0)
        self.l2 = _checks.real("ActivityRegularization", "l2", l2, minimum=0)

    def call(self, inputs, training=None):
        x = inputs
        loss = None
        if self.l1:
            loss = ops.multiply(ops.sum(ops.abs(x)), self.l1)
        if self.l2:
            sq = ops.multiply(ops.sum(ops.square(x)), self.l2)
            loss = sq if loss is None else ops.add(loss, sq)
        if loss is not None:
            if x.ndim > 0:
                loss = ops.divide(loss, float(x.shape[0]))
            self.add_loss(loss)
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "l1": self.l1, "l2": self.l2}


__all__ = ["Dropout", "AlphaDropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
           "GaussianDropout", "ActivityRegularization"]
