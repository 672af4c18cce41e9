"""convcore.signal against scipy.signal (method='direct', computed in float64)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given, settings, strategies as st

import convcore
from convcore import signal as cs

from conftest import assert_close, float_dtypes, layouts, make_array, scale_of, seeds, shapes, styles

MODES = ["full", "valid", "same"]
METHODS = ["direct", "fft", "auto"]
FUNCS = {"correlate": (convcore.correlate, ss.correlate), "convolve": (convcore.convolve, ss.convolve)}
FUNCS2D = {
    "correlate2d": (convcore.correlate2d, ss.correlate2d),
    "convolve2d": (convcore.convolve2d, ss.convolve2d),
}


def _valid_ok(s1, s2):
    return all(a >= b for a, b in zip(s1, s2)) or all(b >= a for a, b in zip(s1, s2))


def _reference(fn, a, b, mode, **kw):
    return fn(a.astype(np.float64), b.astype(np.float64), mode=mode, **kw)


def _check_nd(data, ndim, hi_a, hi_b, func):
    dtype = data.draw(float_dtypes, label="dtype")
    s1 = data.draw(shapes(ndim, 1, hi_a), label="shape1")
    s2 = data.draw(shapes(ndim, 1, hi_b), label="shape2")
    mode = data.draw(st.sampled_from(MODES), label="mode")
    method = data.draw(st.sampled_from(METHODS), label="method")
    style = data.draw(styles, label="style")
    a = make_array(data.draw(seeds), s1, dtype, style)
    b = make_array(data.draw(seeds), s2, dtype, style)
    ours, theirs = FUNCS[func]
    if mode == "valid" and not _valid_ok(s1, s2):
        with pytest.raises(ValueError):
            ours(a, b, mode=mode, method=method)
        with pytest.raises(ValueError):
            theirs(a, b, mode=mode, method="direct")
        return
    expected = theirs(a.astype(np.float64), b.astype(np.float64), mode=mode, method="direct")
    got = ours(a, b, mode=mode, method=method)
    assert_close(got, expected, dtype, scale_of(a, b))


@pytest.mark.parametrize("func", list(FUNCS))
@settings(max_examples=60)
@given(data=st.data())
def test_1d_vs_scipy(func, data):
    _check_nd(data, 1, 12, 12, func)


@pytest.mark.parametrize("func", list(FUNCS))
@settings(max_examples=60)
@given(data=st.data())
def test_2d_vs_scipy(func, data):
    _check_nd(data, 2, 8, 6, func)


@pytest.mark.parametrize("func", list(FUNCS))
@settings(max_examples=50)
@given(data=st.data())
def test_3d_vs_scipy(func, data):
    _check_nd(data, 3, 5, 4, func)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("func", list(FUNCS))
def test_4d_vs_scipy(func, mode, method):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3, 4, 2, 5))
    b = rng.standard_normal((2, 3, 2, 2))
    ours, theirs = FUNCS[func]
    assert_close(ours(a, b, mode=mode, method=method), theirs(a, b, mode=mode, method="direct"),
                 np.float64, scale_of(a, b))
    assert_close(ours(a.astype(np.float32), b.astype(np.float32), mode=mode, method=method),
                 theirs(a, b, mode=mode, method="direct"), np.float32, scale_of(a, b))


@pytest.mark.parametrize("func", list(FUNCS))
@settings(max_examples=40)
@given(
    n1=st.integers(1, 400), n2=st.integers(1, 60), mode=st.sampled_from(MODES),
    method=st.sampled_from(METHODS), dtype=float_dtypes, seed=seeds,
)
def test_1d_longer_signals(func, n1, n2, mode, method, dtype, seed):
    """Longer 1-D signals reach the SIMD-wide inner loops and the FFT path of 'auto'."""
    a = make_array(seed, (n1,), dtype)
    b = make_array(seed + 1, (n2,), dtype)
    ours, theirs = FUNCS[func]
    if mode == "valid" and not _valid_ok(a.shape, b.shape):
        with pytest.raises(ValueError):
            ours(a, b, mode=mode, method=method)
        return
    assert_close(ours(a, b, mode=mode, method=method), _reference(theirs, a, b, mode, method="direct"),
                 dtype, scale_of(a, b))


@settings(max_examples=20)
@given(
    s1=shapes(2, 1, 70), s2=shapes(2, 1, 20), mode=st.sampled_from(MODES),
    method=st.sampled_from(METHODS), dtype=float_dtypes, seed=seeds,
)
def test_2d_larger_images(s1, s2, mode, method, dtype, seed):
    a = make_array(seed, s1, dtype)
    b = make_array(seed + 1, s2, dtype)
    if mode == "valid" and not _valid_ok(s1, s2):
        return
    assert_close(convcore.correlate(a, b, mode=mode, method=method),
                 _reference(ss.correlate, a, b, mode, method="direct"), dtype, scale_of(a, b))


# ------------------------------------------------------------------ correlate2d / convolve2d

@pytest.mark.parametrize("func", list(FUNCS2D))
@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
@settings(max_examples=50)
@given(
    s1=shapes(2, 1, 7), s2=shapes(2, 1, 9), mode=st.sampled_from(MODES), dtype=float_dtypes,
    style=styles, seed=seeds, fill=st.sampled_from([0.0, 1.5, -3.0, 100.0]),
)
def test_2d_boundaries_vs_scipy(func, boundary, s1, s2, mode, dtype, style, seed, fill):
    """Every boundary x mode, kernels up to larger than the image on either axis."""
    a = make_array(seed, s1, dtype, style)
    b = make_array(seed + 7, s2, dtype, style)
    ours, theirs = FUNCS2D[func]
    kw = dict(mode=mode, boundary=boundary, fillvalue=fill)
    if mode == "valid" and not _valid_ok(s1, s2):
        with pytest.raises(ValueError):
            ours(a, b, **kw)
        with pytest.raises(ValueError):
            theirs(a, b, **kw)
        return
    expected = _reference(theirs, a, b, **kw)
    got = ours(a, b, **kw)
    scale = scale_of(np.append(a.ravel(), fill), b)
    assert_close(got, expected, dtype, scale)


def test_2d_boundary_aliases():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 6)), rng.standard_normal((3, 4))
    for ours_name, scipy_name in [("pad", "fill"), ("circular", "wrap"), ("symmetric", "symm")]:
        np.testing.assert_allclose(
            convcore.correlate2d(a, b, "same", ours_name, 2.0),
            ss.correlate2d(a, b, "same", scipy_name, 2.0), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ dtypes

INT_DTYPES = [np.int8, np.uint8, np.int16, np.int32, np.int64, np.uint32]


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("func", list(FUNCS) + list(FUNCS2D))
def test_integer_inputs_keep_scipys_integer_type(func, dtype):
    """numpy's promotion and integer arithmetic, as scipy: int8 stays int8 and wraps."""
    rng = np.random.default_rng(1)
    hi = 120 if np.dtype(dtype).itemsize == 1 else 3000
    a = rng.integers(0, hi, size=(6, 7)).astype(dtype)
    b = rng.integers(0, hi, size=(3, 2)).astype(dtype)
    ours, theirs = {**FUNCS, **FUNCS2D}[func]
    for mode in MODES:
        got = ours(a, b, mode=mode)
        expected = theirs(a, b, mode=mode)
        assert got.dtype == expected.dtype == dtype
        np.testing.assert_array_equal(got, expected)
    mixed = ours(a, b.astype(np.int16))
    assert mixed.dtype == np.result_type(dtype, np.int16)
    np.testing.assert_array_equal(mixed, theirs(a, b.astype(np.int16)))


@pytest.mark.parametrize("func", list(FUNCS) + list(FUNCS2D))
def test_int64_beyond_float64_is_exact(func):
    """Sums past 2**53 are summed in int64 itself (with its wrap-around), not in float64."""
    rng = np.random.default_rng(4)
    a = rng.integers(-2 ** 40, 2 ** 40, size=(5, 6), dtype=np.int64)
    b = rng.integers(-2 ** 30, 2 ** 30, size=(3, 2), dtype=np.int64)
    ours, theirs = {**FUNCS, **FUNCS2D}[func]
    for mode in MODES:
        got = ours(a, b, mode=mode)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, theirs(a, b, mode=mode))


@pytest.mark.parametrize("func", list(FUNCS) + list(FUNCS2D))
def test_bool_inputs_give_bool(func):
    rng = np.random.default_rng(2)
    a = rng.random((5, 6)) > 0.4
    b = rng.random((3, 3)) > 0.5
    ours, theirs = {**FUNCS, **FUNCS2D}[func]
    for mode in MODES:
        got = ours(a, b, mode=mode)
        assert got.dtype == np.bool_
        # any overlapping True pair (scipy's N-D and 2-D kernels have no bool type; its 1-D does)
        np.testing.assert_array_equal(got, theirs(a.astype(np.int64), b.astype(np.int64), mode=mode) != 0)
    if func in FUNCS:
        np.testing.assert_array_equal(ours(a[0], b[0]), theirs(a[0], b[0]))


@pytest.mark.parametrize("func", list(FUNCS) + list(FUNCS2D))
def test_float_dtype_rules(func):
    rng = np.random.default_rng(3)
    a64, b64 = rng.standard_normal((5, 6)), rng.standard_normal((2, 3))
    ours, theirs = {**FUNCS, **FUNCS2D}[func]
    ref = theirs(a64.astype(np.float32).astype(np.float64), b64.astype(np.float32).astype(np.float64))
    assert ours(a64.astype(np.float32), b64.astype(np.float32)).dtype == np.float32
    assert ours(a64, b64).dtype == np.float64
    # float16 is computed in float32 and rounded to float16 (numpy's result type)
    r16 = ours(a64.astype(np.float16), b64.astype(np.float16))
    assert r16.dtype == np.float16
    np.testing.assert_array_equal(
        r16, theirs(a64.astype(np.float16).astype(np.float32), b64.astype(np.float16).astype(np.float32))
        .astype(np.float16))
    # mixed float32/float64 is float64 (as numpy's promotion)
    mixed = ours(a64.astype(np.float32), b64.astype(np.float32).astype(np.float64))
    assert mixed.dtype == np.float64
    np.testing.assert_allclose(mixed, ref, rtol=1e-12, atol=1e-12)
    # python lists are accepted and give float64
    assert ours(a64.tolist(), b64.tolist()).dtype == np.float64
    # long double is summed in long double
    rl = ours(a64.astype(np.longdouble), b64.astype(np.longdouble))
    assert rl.dtype == np.longdouble
    np.testing.assert_allclose(rl.astype(np.float64), theirs(a64, b64), rtol=1e-12, atol=1e-12)


def test_scalars_0d():
    assert convcore.correlate(2.0, 3.0) == 6.0
    assert convcore.convolve(np.float32(2.0), np.float32(3.0)) == 6.0
    assert convcore.correlate(np.array(-1.5), np.array(4.0)) == ss.correlate(-1.5, 4.0) == -6.0


# ------------------------------------------------------------------ memory layouts

@pytest.mark.parametrize("func", list(FUNCS))
@settings(max_examples=40)
@given(data=st.data())
def test_noncontiguous_inputs_nd(func, data):
    ndim = data.draw(st.integers(1, 3))
    dtype = data.draw(float_dtypes)
    a = make_array(data.draw(seeds), data.draw(shapes(ndim, 1, 7)), dtype)
    b = make_array(data.draw(seeds), data.draw(shapes(ndim, 1, 4)), dtype)
    mode = data.draw(st.sampled_from(["full", "same"]))
    method = data.draw(st.sampled_from(METHODS))
    ours = FUNCS[func][0]
    expected = ours(a, b, mode=mode, method=method)
    a2, b2 = data.draw(layouts(a)), data.draw(layouts(b))
    np.testing.assert_array_equal(a2, a)
    got = ours(a2, b2, mode=mode, method=method)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("func", list(FUNCS2D))
@settings(max_examples=40)
@given(data=st.data())
def test_noncontiguous_inputs_2d(func, data):
    dtype = data.draw(float_dtypes)
    a = make_array(data.draw(seeds), data.draw(shapes(2, 1, 8)), dtype)
    b = make_array(data.draw(seeds), data.draw(shapes(2, 1, 4)), dtype)
    boundary = data.draw(st.sampled_from(["fill", "wrap", "symm"]))
    ours = FUNCS2D[func][0]
    expected = ours(a, b, "same", boundary, 1.0)
    got = ours(data.draw(layouts(a)), data.draw(layouts(b)), "same", boundary, 1.0)
    np.testing.assert_array_equal(got, expected)


def test_explicit_strided_views():
    rng = np.random.default_rng(5)
    big = rng.standard_normal((20, 30))
    k = rng.standard_normal((5, 4))
    for view in (big[::3, 1::2], big[::-1, ::-2], big.T, np.asfortranarray(big)[2:15, 3:], big[:, ::-1].T):
        kview = np.asfortranarray(k)[::-1]
        for method in METHODS:
            np.testing.assert_allclose(
                convcore.correlate(view, kview, "full", method),
                ss.correlate(np.ascontiguousarray(view), np.ascontiguousarray(kview), "full", "direct"),
                rtol=1e-12, atol=1e-12 * scale_of(view, kview))
        np.testing.assert_allclose(
            convcore.convolve2d(view, kview, "same", "symm"),
            ss.convolve2d(np.ascontiguousarray(view), np.ascontiguousarray(kview), "same", "symm"),
            rtol=1e-12, atol=1e-12 * scale_of(view, kview))


def test_inputs_not_modified():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((6, 5)), rng.standard_normal((3, 3))
    a0, b0 = a.copy(), b.copy()
    for m in METHODS:
        convcore.convolve(a, b, method=m)
    convcore.convolve2d(a, b, boundary="wrap")
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


# ------------------------------------------------------------------ choose_conv_method

def test_choose_conv_method():
    assert cs.choose_conv_method(np.zeros(100), np.zeros(3)) == "direct"
    big = cs.choose_conv_method(np.zeros((512, 512), np.float32), np.zeros((63, 63), np.float32))
    assert big == "fft"
    assert cs.choose_conv_method(np.zeros((8, 8)), np.zeros((3, 3)), "same") in ("direct", "fft")
