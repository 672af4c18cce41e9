"""Shared helpers for the convcore test suite: tolerances, data strategies."""
from __future__ import annotations

import os

# Real Keras 3 is the reference of the Keras-API tests; it runs on jax, on the CPU
# (set before any test module imports keras). convcore itself never imports keras.
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np
import pytest
from hypothesis import HealthCheck, settings, strategies as st

# One profile for the whole suite: no deadline (native calls on a busy 2-core machine
# vary a lot in time), moderate example counts set per test.
# In CI (CONVCORE_CI=1, set by .ci/run) the examples are derandomized: the same
# randomized shapes every run, so a landing is never decided by a lucky draw; local
# runs keep exploring new examples.
settings.register_profile(
    "convcore",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("convcore-ci", parent=settings.get_profile("convcore"), derandomize=True,
                          database=None)
settings.load_profile("convcore-ci" if os.environ.get("CONVCORE_CI") else "convcore")

RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
TINY = 1e-30


def scale_of(a, b):
    """Natural magnitude of one output element of a correlation of ``a`` with ``b``.

    Every output is a sum of products ``a[i] * b[j]``, so ``max|a| * sum|b|`` bounds
    each output's terms. Where the terms cancel (outputs near zero) the rounding error
    is still of the order ``eps * max|a| * sum|b|`` -- it does not shrink with the
    result -- so a purely relative tolerance cannot work there; the absolute tolerance
    is ``rtol`` times this bound.
    """
    a = np.abs(np.asarray(a, dtype=np.float64))
    b = np.abs(np.asarray(b, dtype=np.float64))
    am = a.max() if a.size else 0.0
    return float(am * b.sum()) + TINY


def assert_close(actual, expected, dtype, scale, rtol=None, equal_nan=False):
    """``actual`` has dtype ``dtype`` and the shape of ``expected``, and matches it within
    ``rtol`` relative plus ``rtol * scale`` absolute (see :func:`scale_of`)."""
    dtype = np.dtype(dtype)
    assert isinstance(actual, np.ndarray), type(actual)
    assert actual.dtype == dtype, f"dtype {actual.dtype}, expected {dtype}"
    assert actual.shape == np.shape(expected), f"shape {actual.shape}, expected {np.shape(expected)}"
    r = RTOL[dtype] if rtol is None else rtol
    np.testing.assert_allclose(
        actual.astype(np.float64), np.asarray(expected, dtype=np.float64),
        rtol=r, atol=r * scale, equal_nan=equal_nan,
    )


def make_array(seed, shape, dtype, style="normal"):
    """Deterministic test data from a seed: normal floats, small integers (exact sums,
    many ties and cancellations), or values of very different magnitudes."""
    rng = np.random.default_rng(seed)
    if style == "int":
        a = rng.integers(-3, 4, size=shape).astype(np.float64)
    elif style == "wide":
        a = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, size=shape)
    else:
        a = rng.standard_normal(shape)
    return a.astype(dtype)


float_dtypes = st.sampled_from([np.float32, np.float64])
styles = st.sampled_from(["normal", "int", "wide"])
seeds = st.integers(0, 2**32 - 1)


def shapes(ndim, lo=1, hi=6):
    return st.tuples(*[st.integers(lo, hi)] * ndim)


@st.composite
def layouts(draw, a):
    """The same values as ``a`` in another memory layout: C, Fortran, reversed
    strides, or a strided view into a bigger array."""
    kind = draw(st.sampled_from(["c", "f", "neg", "step"]))
    if kind == "c":
        return a
    if kind == "f":
        return np.asfortranarray(a)
    if kind == "neg":
        big = np.flip(a).copy()
        return np.flip(big)  # negative strides on every axis, same values as a
    big = np.zeros(tuple(2 * n for n in a.shape), dtype=a.dtype)
    idx = tuple(slice(None, None, 2) for _ in a.shape)
    big[idx] = a
    return big[idx]


@pytest.fixture
def restore_threads():
    import convcore

    n = convcore.get_num_threads()
    yield n
    convcore.set_num_threads(n)
