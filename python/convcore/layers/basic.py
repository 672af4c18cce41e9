"""Dense, activations, dropout and reshaping layers."""
from __future__ import annotations

import numpy as np

from .. import _ops, activations, backend, initializers
from ..device import is_gpu
from .core import Layer


class _WithActivation(Layer):
    """A layer computing ``activation(z)``: keeps ``z`` so the model can fuse softmax
    with cross-entropy (``backward(..., dz=...)``)."""

    def _activate(self, z):
        return activations.forward(self.activation, z)

    def _dz(self, cache, dy, dz):
        if dz is not None:
            return dz
        z, y = cache["z"], cache["y"]
        return activations.backward(self.activation, z, y, dy)


class Dense(_WithActivation):
    """``activation(x @ kernel + bias)`` on the last axis, as ``keras.layers.Dense``."""

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kw):
        super().__init__(**kw)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"Dense: units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape):
        if len(input_shape) < 1:
            raise ValueError(f"Dense {self.name!r} needs inputs with a feature axis, got shape {input_shape}")
        self.kernel = self.add_weight("kernel", (input_shape[-1], self.units), self.kernel_initializer)
        if self.use_bias:
            self.bias = self.add_weight("bias", (self.units,), self.bias_initializer)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def forward(self, x, training=False):
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1])
        z = _ops.dense_forward(x2, self._w("kernel"), self._w("bias") if self.use_bias else None)
        y = self._activate(z)
        return y.reshape(lead + (self.units,)), {"x": x2, "z": z, "y": y, "lead": lead}

    def backward(self, cache, dy, need_dx=True, dz=None):
        dz = self._dz(cache, None if dy is None else dy.reshape(-1, self.units), dz)
        dx, dw, db = _ops.dense_backward(cache["x"], self._w("kernel"), dz, need_dx)
        grads = [dw, db] if self.use_bias else [dw]
        if dx is not None:
            dx = dx.reshape(tuple(cache["lead"]) + (self.kernel.shape[0],))
        return dx, grads

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "use_bias": self.use_bias, "kernel_initializer": _init_name(self.kernel_initializer),
                "bias_initializer": _init_name(self.bias_initializer)}


def _init_name(i):
    return i if isinstance(i, str) else "glorot_uniform"


class Activation(_WithActivation):
    """Apply an activation function by name."""

    def __init__(self, activation, **kw):
        super().__init__(**kw)
        self.activation = activations.get(activation)

    def forward(self, x, training=False):
        y = self._activate(x)
        return y, {"z": x, "y": y}

    def backward(self, cache, dy, need_dx=True, dz=None):
        return self._dz(cache, dy, dz), []

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


class ReLU(Activation):
    """max(x, 0)."""

    def __init__(self, **kw):
        kw.pop("activation", None)
        super().__init__("relu", **kw)

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("activation")
        return cfg


class Softmax(Activation):
    """Softmax over the last axis."""

    def __init__(self, **kw):
        kw.pop("activation", None)
        super().__init__("softmax", **kw)

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("activation")
        return cfg


class Dropout(Layer):
    """Inverted dropout: in training, zero each value with probability ``rate`` and scale
    the rest by ``1 / (1 - rate)``; the identity outside training."""

    def __init__(self, rate, seed=None, **kw):
        super().__init__(**kw)
        rate = float(rate)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.seed = seed
        self._calls = 0

    def forward(self, x, training=False):
        if not training or self.rate == 0.0:
            return x, None
        if self.seed is None:
            seed = backend.next_seed()
        else:
            seed = (int(self.seed) * 1_000_003 + self._calls) % (2**63)
        self._calls += 1
        y, mask = _ops.dropout_forward(x, self.rate, seed)
        return y, mask

    def backward(self, cache, dy, need_dx=True):
        return (dy if cache is None else dy * cache), []

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class Flatten(Layer):
    """Collapse all axes but the batch axis."""

    def compute_output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x, training=False):
        return x.reshape(x.shape[0], -1), tuple(x.shape)

    def backward(self, cache, dy, need_dx=True):
        return dy.reshape(cache), []


class Reshape(Layer):
    """Reshape to ``target_shape`` (without the batch axis; one entry may be -1)."""

    def __init__(self, target_shape, **kw):
        super().__init__(**kw)
        self.target_shape = tuple(int(s) for s in target_shape)
        if sum(1 for s in self.target_shape if s == -1) > 1 or any(s == 0 or s < -1 for s in self.target_shape):
            raise ValueError(f"Reshape: invalid target_shape {target_shape!r}")

    def compute_output_shape(self, input_shape):
        n = int(np.prod(input_shape))
        known = int(np.prod([s for s in self.target_shape if s != -1]))
        if -1 in self.target_shape:
            if n % known:
                raise ValueError(f"Reshape {self.name!r}: cannot reshape {tuple(input_shape)} into {self.target_shape}")
            return tuple(n // known if s == -1 else s for s in self.target_shape)
        if known != n:
            raise ValueError(f"Reshape {self.name!r}: cannot reshape {tuple(input_shape)} ({n} values) "
                             f"into {self.target_shape} ({known} values)")
        return self.target_shape

    def forward(self, x, training=False):
        return x.reshape((x.shape[0],) + self.compute_output_shape(tuple(x.shape[1:]))), tuple(x.shape)

    def backward(self, cache, dy, need_dx=True):
        return dy.reshape(cache), []

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}
