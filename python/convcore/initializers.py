"""Weight initializers with Keras's names and formulas (fans from the kernel shape:
``fan_in = prod(kernel) * in``, ``fan_out = prod(kernel) * out``)."""
from __future__ import annotations

import math

import numpy as np

from . import backend

INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal",
                "lecun_uniform", "zeros", "ones", "random_normal", "random_uniform")


def _fans(shape):
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(int(s) for s in shape[:-2])
    return receptive * shape[-2], receptive * shape[-1]


def _truncated_normal(rng, std, shape):
    out = rng.normal(0.0, std, size=shape)
    bad = np.abs(out) > 2 * std
    while bad.any():
        out[bad] = rng.normal(0.0, std, size=int(bad.sum()))
        bad = np.abs(out) > 2 * std
    return out


def get(name):
    if callable(name) and not isinstance(name, str):
        return name
    if isinstance(name, str) and name not in INITIALIZERS:
        from .saving.object_registration import get_registered_object
        obj = get_registered_object(name)
        if callable(obj):
            return obj
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise ValueError(f"Unknown initializer {name!r}; valid initializers are {', '.join(INITIALIZERS)}")
    return name


def initialize(name, shape, dtype):
    """An array of ``shape`` drawn by initializer ``name`` (or a callable(shape, dtype))."""
    if callable(name) and not isinstance(name, str):
        return np.asarray(name(shape, dtype), dtype=dtype)
    rng = backend.rng()
    # A fan of 0 (a kernel over no features) has no entries to draw; Keras divides by
    # max(1, fan) so the formulas stay defined.
    fan_in, fan_out = (max(1, f) for f in _fans(shape))
    if name == "zeros":
        a = np.zeros(shape)
    elif name == "ones":
        a = np.ones(shape)
    elif name == "glorot_uniform":
        lim = math.sqrt(6.0 / (fan_in + fan_out))
        a = rng.uniform(-lim, lim, size=shape)
    elif name == "glorot_normal":
        a = _truncated_normal(rng, math.sqrt(2.0 / (fan_in + fan_out)) / 0.87962566103423978, shape)
    elif name == "he_normal":
        a = _truncated_normal(rng, math.sqrt(2.0 / fan_in) / 0.87962566103423978, shape)
    elif name == "he_uniform":
        lim = math.sqrt(6.0 / fan_in)
        a = rng.uniform(-lim, lim, size=shape)
    elif name == "lecun_normal":
        a = _truncated_normal(rng, math.sqrt(1.0 / fan_in) / 0.87962566103423978, shape)
    elif name == "lecun_uniform":
        lim = math.sqrt(3.0 / fan_in)
        a = rng.uniform(-lim, lim, size=shape)
    elif name == "random_normal":
        a = rng.normal(0.0, 0.05, size=shape)
    elif name == "random_uniform":
        a = rng.uniform(-0.05, 0.05, size=shape)
    else:  # pragma: no cover - get() rejects unknown names first
        raise ValueError(f"Unknown initializer {name!r}")
    return np.ascontiguousarray(a, dtype=dtype)
