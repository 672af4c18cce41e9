"""max_pool / avg_pool against a NumPy reference built on sliding_window_view."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from numpy.lib.stride_tricks import sliding_window_view

import convcore

from conftest import assert_close, float_dtypes, layouts, make_array, seeds, styles


def ref_pool(x, kind, pool, strides, padding, extra):
    """Reference pooling of ``x`` with ``d = len(pool)`` spatial axes and ``extra``
    (0, 1 or 2) non-spatial axes (channels last, batch first), computed in float64."""
    d = len(pool)
    x = np.asarray(x, dtype=np.float64)
    if extra == 0:
        x5 = x[None, ..., None]
    elif extra == 1:
        x5 = x[None]
    else:
        x5 = x
    spatial = x5.shape[1:1 + d]
    pads = []
    for n, k, s in zip(spatial, pool, strides):
        if padding == "valid":
            pads.append((0, 0))
        else:  # Keras/TensorFlow 'same'
            out = math.ceil(n / s)
            total = max((out - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
    width = [(0, 0)] + pads + [(0, 0)]
    axes = tuple(range(1, 1 + d))
    if kind == "max":
        xp = np.pad(x5, width, constant_values=-np.inf)  # padded cells never win a max
        win = sliding_window_view(xp, pool, axis=axes)
        sl = (slice(None),) + tuple(slice(None, None, s) for s in strides)
        r = win[sl].max(axis=tuple(range(-d, 0)))
    else:
        xp = np.pad(x5, width, constant_values=0.0)
        ones = np.pad(np.ones_like(x5), width, constant_values=0.0)  # padded cells not counted
        sl = (slice(None),) + tuple(slice(None, None, s) for s in strides)
        tot = sliding_window_view(xp, pool, axis=axes)[sl].sum(axis=tuple(range(-d, 0)))
        cnt = sliding_window_view(ones, pool, axis=axes)[sl].sum(axis=tuple(range(-d, 0)))
        r = tot / cnt
    if extra == 0:
        return r[0, ..., 0]
    if extra == 1:
        return r[0]
    return r


@st.composite
def pool_cases(draw):
    d = draw(st.integers(1, 3), label="d")
    extra = draw(st.integers(0, 2), label="extra")
    hi = {1: 12, 2: 8, 3: 5}[d]
    spatial = draw(st.tuples(*[st.integers(1, hi)] * d), label="spatial")
    pool = tuple(draw(st.integers(1, min(n, 4) if draw(st.booleans()) else 4), label="pool") for n in spatial)
    strides = draw(st.one_of(st.none(), st.tuples(*[st.integers(1, 4)] * d)), label="strides")
    padding = draw(st.sampled_from(["valid", "same"]), label="padding")
    shape = spatial
    if extra >= 1:
        shape = shape + (draw(st.integers(1, 3), label="channels"),)
    if extra == 2:
        shape = (draw(st.integers(1, 3), label="batch"),) + shape
    return d, extra, shape, pool, strides, padding


@pytest.mark.parametrize("kind", ["max", "avg"])
@settings(max_examples=60)
@given(case=pool_cases(), dtype=float_dtypes, seed=seeds, style=styles)
def test_pool_vs_reference(kind, case, dtype, seed, style):
    d, extra, shape, pool, strides, padding = case
    x = make_array(seed, shape, dtype, style)
    st_ = pool if strides is None else strides
    spatial = shape[1:1 + d] if extra == 2 else shape[:d]
    fn = convcore.max_pool if kind == "max" else convcore.avg_pool
    if padding == "valid" and any(k > n for k, n in zip(pool, spatial)):
        with pytest.raises(ValueError):
            fn(x, pool, strides=strides, padding=padding)
        return
    expected = ref_pool(x, kind, pool, st_, padding, extra)
    got = fn(x, pool, strides=strides, padding=padding)
    if kind == "max":
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, expected.astype(dtype))  # a max is exact
    else:
        # the mean of at most prod(pool) values: error ~ eps * max|x|
        assert_close(got, expected, dtype, float(np.abs(x.astype(np.float64)).max()) + 1e-30)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("n,k,s", [(7, 2, 2), (7, 3, 2), (8, 3, 3), (5, 5, 1), (1, 1, 1), (6, 4, 1), (9, 2, 4)])
def test_output_sizes_keras(n, k, s, padding):
    x = np.arange(n * n, dtype=np.float64).reshape(n, n)
    out = convcore.max_pool(x, (k, k), strides=(s, s), padding=padding)
    m = math.ceil(n / s) if padding == "same" else (n - k) // s + 1
    assert out.shape == (m, m)
    assert convcore.avg_pool(x, (k, k), strides=(s, s), padding=padding).shape == (m, m)


def test_same_padding_rule_by_hand():
    # n = 5, k = 2, s = 2: out = 3, total pad = 1, pad before 0, after 1
    x = np.array([1.0, 5.0, 2.0, 3.0, -4.0])
    np.testing.assert_array_equal(convcore.max_pool(x, (2,), padding="same"), [5.0, 3.0, -4.0])
    np.testing.assert_array_equal(convcore.avg_pool(x, (2,), padding="same"), [3.0, 2.5, -4.0])
    # n = 4, k = 3, s = 1: out = 4, total pad = 2, one on each side
    x = np.array([1.0, 2.0, 3.0, 10.0])
    np.testing.assert_array_equal(convcore.avg_pool(x, (3,), strides=(1,), padding="same"), [1.5, 2.0, 5.0, 6.5])
    np.testing.assert_array_equal(convcore.max_pool(-x, (3,), strides=(1,), padding="same"), [-1, -1, -2, -3])


def test_int_pool_size_infers_layout():
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal(10)
    np.testing.assert_array_equal(convcore.max_pool(x1, 2), ref_pool(x1, "max", (2,), (2,), "valid", 0))
    x2 = rng.standard_normal((6, 8))
    np.testing.assert_array_equal(convcore.max_pool(x2, 2), ref_pool(x2, "max", (2, 2), (2, 2), "valid", 0))
    x3 = rng.standard_normal((6, 8, 3))  # (H, W, C)
    np.testing.assert_array_equal(convcore.max_pool(x3, 2), ref_pool(x3, "max", (2, 2), (2, 2), "valid", 1))
    x4 = rng.standard_normal((2, 6, 8, 3))  # (N, H, W, C)
    out = convcore.avg_pool(x4, 2, padding="same")
    assert out.shape == (2, 3, 4, 3)
    np.testing.assert_allclose(out, ref_pool(x4, "avg", (2, 2), (2, 2), "same", 2), rtol=1e-12)
    x5 = rng.standard_normal((2, 4, 6, 5, 3))  # (N, D, H, W, C)
    out = convcore.max_pool(x5, 2, strides=1)
    np.testing.assert_array_equal(out, ref_pool(x5, "max", (2, 2, 2), (1, 1, 1), "valid", 2))
    # a tuple overrides the guess: a 3-D array as a volume
    np.testing.assert_array_equal(convcore.max_pool(x3, (2, 2, 2)), ref_pool(x3, "max", (2, 2, 2), (2, 2, 2), "valid", 0))


def test_keras_image_batch():
    x = np.zeros((8, 28, 28, 3))
    x[:, 5, 7, 1] = 3.0
    out = convcore.avg_pool(x, 2, padding="same")
    assert out.shape == (8, 14, 14, 3)
    assert np.all(out[:, 2, 3, 1] == 0.75)
    assert out.sum() == pytest.approx(8 * 0.75)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_nan_propagates(dtype):
    x = np.arange(16, dtype=dtype).reshape(4, 4)
    x[0, 1] = np.nan
    x[3, 3] = np.nan
    out = convcore.max_pool(x, (2, 2))
    expected = np.array([[np.nan, 7], [13, np.nan]], dtype=dtype)
    np.testing.assert_array_equal(out, expected)  # equal_nan by default
    # NaN in the middle or end of a window, any position, strided overlapping windows
    rng = np.random.default_rng(1)
    for _ in range(20):
        y = rng.standard_normal((7, 9)).astype(dtype)
        y[rng.random(y.shape) < 0.1] = np.nan
        for padding in ("valid", "same"):
            got = convcore.max_pool(y, (3, 2), strides=(2, 1), padding=padding)
            ref = ref_pool(y, "max", (3, 2), (2, 1), padding, 0).astype(dtype)
            np.testing.assert_array_equal(got, ref)
            got = convcore.avg_pool(y, (3, 2), strides=(2, 1), padding=padding)
            ref = ref_pool(y, "avg", (3, 2), (2, 1), padding, 0)
            scale = float(np.nanmax(np.abs(y)))  # a mean's rounding error is ~ eps * max|y|
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * scale, equal_nan=True)


def test_max_pool_infinities():
    x = np.array([-np.inf, -np.inf, 1.0, np.inf, -np.inf])
    np.testing.assert_array_equal(convcore.max_pool(x, (2,), padding="same"), [-np.inf, np.inf, -np.inf])


@pytest.mark.parametrize("kind", ["max", "avg"])
@settings(max_examples=30)
@given(data=st.data())
def test_pool_noncontiguous(kind, data):
    d = data.draw(st.integers(1, 3))
    shape = data.draw(st.tuples(*[st.integers(2, 6)] * (d + 1)))
    x = make_array(data.draw(seeds), shape, data.draw(float_dtypes))
    fn = convcore.max_pool if kind == "max" else convcore.avg_pool
    pool = (2,) * d
    expected = fn(x, pool, padding="same")
    x2 = data.draw(layouts(x))
    np.testing.assert_array_equal(fn(x2, pool, padding="same"), expected)


def test_pool_integer_and_bool_inputs():
    x = np.arange(24).reshape(4, 6)
    out = convcore.avg_pool(x, (2, 3))
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, ref_pool(x, "avg", (2, 3), (2, 3), "valid", 0))
    out = convcore.max_pool(x > 10, (2, 2))
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 1, 1]])
    assert convcore.max_pool(x.astype(np.float16), (2, 2)).dtype == np.float32
