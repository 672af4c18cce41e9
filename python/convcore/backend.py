"""Global settings shared by layers and models: the default float type and the seed.

``set_floatx('float64')`` makes new layers compute in float64 (as
``keras.backend.set_floatx``); ``set_seed(n)`` makes weight initialisation, shuffling and
dropout reproducible.
"""
from __future__ import annotations

import numpy as np

_FLOATX = "float32"
_SEED = None
_RNG = np.random.default_rng()


def floatx() -> str:
    """The default float type of new layers: 'float32' (default) or 'float64'."""
    return _FLOATX


def set_floatx(value: str) -> None:
    global _FLOATX
    if value not in ("float32", "float64"):
        raise ValueError(f"set_floatx: expected 'float32' or 'float64', got {value!r}")
    _FLOATX = value


def set_seed(seed: int) -> None:
    """Seed everything random in convcore (initializers, shuffling, dropout)."""
    global _SEED, _RNG
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"set_seed: expected a non-negative integer, got {seed!r}")
    _SEED = int(seed)
    _RNG = np.random.default_rng(_SEED)


def rng() -> np.random.Generator:
    """The package's random generator (seeded by :func:`set_seed`)."""
    return _RNG


def next_seed() -> int:
    """A 63-bit seed drawn from the package generator (for native random streams)."""
    return int(_RNG.integers(0, 2**63 - 1))
