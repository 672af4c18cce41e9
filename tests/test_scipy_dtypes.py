"""scipy's dtype rules in convcore's filters (issue 16, item 1), against scipy itself:
integer and bool results with scipy's truncation and wrap-around, numpy's promotion in
signal, complex inputs and kernels, and the issue's worked examples."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.ndimage as nd
import scipy.signal as ss

import convcore
from convcore import ndimage as cn, signal as cs

RNG = np.random.default_rng(16)


def test_issue_examples():
    # int8 correlate wraps around as scipy's integer arithmetic (was 5512.0)
    x = np.array([100, 50, -20, 7], np.int8)
    got, want = cs.correlate(x, x, method="direct"), ss.correlate(x, x, method="direct")
    assert got.dtype == want.dtype == np.int8
    np.testing.assert_array_equal(got, want)
    # unsigned sobel keeps uint8 with wrap-around (253 where the float result is -3)
    u = np.array([[0, 3, 0, 0]] * 3, np.uint8)
    np.testing.assert_array_equal(cn.sobel(u, axis=1), nd.sobel(u, axis=1))
    np.testing.assert_array_equal(cn.sobel(u, axis=1), cn.sobel(u.astype(np.float64), axis=1) % 256)
    assert cn.sobel(u, axis=1).dtype == np.uint8 and 244 in cn.sobel(u, axis=1)  # -12 as uint8
    # the uniform_filter1d docstring example, truncated as scipy
    np.testing.assert_array_equal(cn.uniform_filter1d([2, 8, 0, 4, 1, 9, 9, 0], size=3), [4, 3, 4, 1, 4, 6, 6, 3])


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("kernel_complex", [False, True])
def test_ndimage_complex_matches_scipy(dtype, kernel_complex):
    a = (RNG.standard_normal((7, 6)) + 1j * RNG.standard_normal((7, 6))).astype(dtype)
    w = RNG.standard_normal((3, 2)) + (1j * RNG.standard_normal((3, 2)) if kernel_complex else 0)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == "complex64" else dict(rtol=1e-12, atol=1e-12)
    for name in ("correlate", "convolve"):
        got = getattr(cn, name)(a, w, mode="constant", cval=1 - 2j)
        want = getattr(nd, name)(a, w, mode="constant", cval=1 - 2j)
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, **tol)
    for name in ("correlate1d", "convolve1d"):
        got, want = getattr(cn, name)(a, w[:, 0], axis=0), getattr(nd, name)(a, w[:, 0], axis=0)
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, **tol)
    for f, args in ((cn.uniform_filter, (3,)), (cn.gaussian_filter, (1.2,)), (cn.sobel, ()), (cn.prewitt, ()),
                    (cn.uniform_filter1d, (4,)), (cn.gaussian_filter1d, (0.8,))):
        got, want = f(a, *args), getattr(nd, f.__name__)(a, *args)
        assert got.dtype == want.dtype == np.dtype(dtype), f.__name__
        np.testing.assert_allclose(got, want, **tol)


def test_ndimage_real_input_complex_weights():
    a = RNG.integers(-9, 9, (5, 5)).astype(np.int16)
    w = RNG.standard_normal((3, 3)) + 1j
    got, want = cn.correlate(a, w), nd.correlate(a, w)
    assert got.dtype == want.dtype == np.complex64  # promote_types(int16, complex64)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="complex-valued cval"):
        cn.correlate(a, w, cval=1j)
    with pytest.raises(RuntimeError, match="complex"):
        cn.correlate(a, w, output=np.zeros((5, 5)))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = cn.correlate(a, w, output=np.float32)
    assert out.dtype == np.complex64 and any("promoting" in str(r.message) for r in rec)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.int64, np.bool_])
def test_ndimage_integer_outputs_per_pass(dtype):
    a = RNG.integers(0, 2 if dtype is np.bool_ else 100, (9, 8)).astype(dtype)
    for f, args in ((cn.uniform_filter, (3,)), (cn.gaussian_filter, (1.5,)), (cn.sobel, ()), (cn.prewitt, (0,)),
                    (cn.correlate1d, ([0.25, -1.5, 2.125],)), (cn.gaussian_filter, (1.0, 1))):  # (binary weights: exact sums)
        got, want = f(a, *args), getattr(nd, f.__name__)(a, *args)
        assert got.dtype == want.dtype == np.dtype(dtype), f.__name__
        np.testing.assert_array_equal(got, want, err_msg=f.__name__)
    # an integer output= for float input: truncated after every pass, as scipy
    x = RNG.standard_normal((9, 8)) * 50
    np.testing.assert_array_equal(cn.gaussian_filter(x, 2.0, output=np.int16), nd.gaussian_filter(x, 2.0, output=np.int16))


def test_signal_complex_matches_scipy():
    for shape_a, shape_b in (((11,), (4,)), ((6, 5), (3, 4)), ((4, 3, 5), (2, 2, 3))):
        a = RNG.standard_normal(shape_a) + 1j * RNG.standard_normal(shape_a)
        b = RNG.standard_normal(shape_b) - 2j * RNG.standard_normal(shape_b)
        for mode in ("full", "same", "valid"):
            for method in ("direct", "fft"):
                for x, y in ((a, b), (a.real, b), (a, b.real), (a.astype(np.complex64), b.real.astype(np.float32))):
                    got, want = cs.correlate(x, y, mode, method), ss.correlate(x, y, mode, method)
                    assert got.dtype == want.dtype
                    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
                    np.testing.assert_allclose(cs.convolve(x, y, mode, method), ss.convolve(x, y, mode, method),
                                               rtol=1e-4, atol=1e-4)
    a, b = RNG.standard_normal((6, 5)) + 1j, RNG.standard_normal((3, 2)) * 1j
    for fn in ("correlate2d", "convolve2d"):
        for boundary in ("fill", "wrap", "symm"):
            for mode in ("full", "same", "valid"):
                np.testing.assert_allclose(getattr(cs, fn)(a, b, mode, boundary, 2 - 1j),
                                           getattr(ss, fn)(a, b, mode, boundary, 2 - 1j), rtol=1e-12, atol=1e-12)
        # in2 larger in 'valid' mode: scipy swaps and conjugates
        np.testing.assert_allclose(getattr(cs, fn)(b, a, "valid"), getattr(ss, fn)(b, a, "valid"), rtol=1e-12)


def test_signal_nan_fft_warns_and_measure():
    x = RNG.standard_normal(1000)
    x[100] = np.nan
    with pytest.warns(RuntimeWarning, match="Use of fft convolution"):
        cs.convolve(x, np.ones(200), mode="same", method="fft")
    m, times = cs.choose_conv_method(RNG.standard_normal(64), RNG.standard_normal(9), measure=True)
    assert m in ("fft", "direct") and set(times) == {"fft", "direct"} and all(t > 0 for t in times.values())
    assert cs.choose_conv_method(np.array([2 ** 51], np.int64), np.array([4], np.int64)) == "direct"


def test_top_level_names_follow():
    assert convcore.correlate(np.arange(4, dtype=np.int16), np.ones(2, np.int16)).dtype == np.int16


@pytest.mark.parametrize("dtype, fill", [(np.uint8, -0.5), (np.uint8, 255.5), (np.uint8, 256), (np.uint32, -2.5),
                                         (np.uint32, -2), (np.int8, -128.9), (np.int8, -129), (np.int8, 128),
                                         (np.int32, 1e10), (np.uint8, np.int64(-1)), (np.uint8, True)])
def test_correlate2d_integer_fillvalue_range_is_scipys(dtype, fill):
    """scipy converts a Python fill value to complex, then to the integer result type,
    and refuses one whose integer part that type does not hold; a numpy integer scalar
    wraps around."""
    a = np.array([[3, 0], [3, 1], [3, 0], [2, 0]], dtype=dtype)
    b = np.ones((2, 3), dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            want = ss.correlate2d(a, b, "full", "fill", fill)
        except ValueError:
            with pytest.raises(ValueError, match="fillvalue"):
                convcore.signal.correlate2d(a, b, "full", "fill", fill)
            return
        got = convcore.signal.correlate2d(a, b, "full", "fill", fill)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
