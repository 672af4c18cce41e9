"""Issue 11, filters: every argument of convcore.signal / ndimage / pooling is checked
strictly (bool is not an integer, 1.5 is not an integer, '1' is not a number), also
where the call would not use it, and degenerate values raise ValueError / TypeError
instead of ZeroDivisionError or garbage. Regression tests for the defects the fuzz test
(tests/test_fuzz.py, family 'filters') found."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as nd
import scipy.signal as ss

import convcore
from convcore import _checks
from convcore import ndimage as cn
from convcore import signal as cs

nan, inf = float("nan"), float("inf")


# ------------------------------------------------------------------ _checks helpers
@pytest.mark.parametrize("bad", [True, False, np.bool_(True), 1.5, 1.0, np.float64(1.0), "1", b"1", None, 1 + 0j,
                                 np.array(1.5), [1]])
def test_normalize_axis_is_strict(bad):
    with pytest.raises(TypeError, match="axis must be an integer"):
        _checks.normalize_axis("f", bad, 3)


def test_normalize_axis_accepts_integers_and_checks_bounds():
    assert _checks.normalize_axis("f", -1, 3) == 2
    assert _checks.normalize_axis("f", np.int64(1), 3) == 1
    assert _checks.normalize_axis("f", np.array(2), 3) == 2  # a 0-d integer array (operator.index has it)
    for bad in (3, -4, 2 ** 62):
        with pytest.raises(ValueError, match=f"axis {bad} is out of bounds"):
            _checks.normalize_axis("f", bad, 3)


@pytest.mark.parametrize("bad", [True, 1.5, 2.0, "1", None, np.array(1.5)])
def test_per_axis_integers_are_strict(bad):
    with pytest.raises(TypeError, match="origin must be an integer"):
        _checks.per_axis("f", "origin", bad, 2)
    with pytest.raises(TypeError, match="origin must be an integer"):
        _checks.per_axis("f", "origin", [0, bad], 2)


def test_per_axis_expands_and_checks_the_length():
    assert _checks.per_axis("f", "origin", 1, 3) == [1, 1, 1]
    assert _checks.per_axis("f", "origin", np.array([0, -1]), 2) == [0, -1]
    assert _checks.per_axis("f", "origin", np.int64(2), 1) == [2]
    assert _checks.per_axis("f", "sigma", 1, 2, float) == [1.0, 1.0]
    with pytest.raises(ValueError, match=r"one entry per axis \(2\), got \[1, 2, 3\]"):
        _checks.per_axis("f", "origin", [1, 2, 3], 2)
    with pytest.raises(TypeError, match="sigma must be a real number"):
        _checks.per_axis("f", "sigma", [1.0, "1"], 2, float)
    with pytest.raises(TypeError, match="sigma must be a real number"):
        _checks.per_axis("f", "sigma", True, 2, float)
    with pytest.raises(ValueError, match="finite"):
        _checks.per_axis("f", "sigma", [1.0, inf], 2, float)
    with pytest.raises(TypeError, match="a scalar or a sequence"):
        _checks.per_axis("f", "origin", object(), 2)


def test_choice():
    assert _checks.choice("f", "mode", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match='got "A"'):
        _checks.choice("f", "mode", "A", ("a", "b"))
    for bad in (None, 1, b"a", ["a"]):
        with pytest.raises(TypeError, match="mode must be a string"):
            _checks.choice("f", "mode", bad, ("a", "b"))


# ------------------------------------------------------------------ tiny sigma (ZeroDivisionError)
def test_gaussian_filter1d_tiny_sigma_second_derivative_is_a_value_error():
    # scipy: ZeroDivisionError (or NaN weights for np.float64(1e-300)); the weight at
    # the centre is -1/sigma^2, beyond float64.
    with pytest.raises(ValueError, match="order-2 derivative.*beyond the float64 range"):
        cn.gaussian_filter1d(np.ones(5), 1e-300, order=2, radius=1)
    with pytest.raises(ValueError, match="beyond the float64 range"):
        cn.gaussian_filter1d(np.ones(5), np.float64(1e-160), order=4)


def test_gaussian_filter1d_tiny_sigma_limits():
    x = np.arange(6.0)
    # order 0: the delta kernel; odd orders: the centre weight is exactly 0, the others
    # underflow, so the result is 0 (scipy: ZeroDivisionError or NaN).
    for sigma in (1e-300, 1e-160, 1e-20):
        np.testing.assert_array_equal(cn.gaussian_filter1d(x, sigma, radius=2), x)
        for order in (1, 3):
            np.testing.assert_array_equal(cn.gaussian_filter1d(x, sigma, order=order, radius=2), np.zeros(6))
    # sigma^2 still normal: the second-derivative kernel is [0, -1/s^2, 0], finite
    got = cn.gaussian_filter1d(x, 1e-100, order=2, radius=1)
    np.testing.assert_allclose(got, -x * 1e200, rtol=1e-12)


def test_gaussian_kernel1d_is_finite_and_matches_scipy_where_scipy_is_finite():
    from scipy.ndimage._filters import _gaussian_kernel1d as sk

    from convcore.ndimage import _gaussian_kernel1d
    for sigma in (0.3, 0.5, 1.0, 2.5, 1e-10):
        for order in range(0, 6):
            r = max(int(4 * sigma + 0.5), 1)
            want = sk(sigma, order, r)
            got = _gaussian_kernel1d(sigma, order, r)
            assert np.isfinite(got).all()
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * np.abs(want).max(),
                                       err_msg=f"sigma={sigma} order={order}")


def test_gaussian_filter_tiny_sigma_skips_the_axis_like_scipy():
    a = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(cn.gaussian_filter(a, 1e-300, order=2), nd.gaussian_filter(a, 1e-300, order=2))


def test_gaussian_order_is_bounded():
    x = np.ones(7)
    cn.gaussian_filter1d(x, 60.0, order=1000)  # the highest order
    for bad in (1001, 2 ** 62):
        with pytest.raises(ValueError, match="order must be <= 1000"):
            cn.gaussian_filter1d(x, 1.0, order=bad)
        with pytest.raises(ValueError, match="order must be <= 1000"):
            cn.gaussian_filter(x, 0.0, order=bad)
    with pytest.raises(ValueError, match="beyond the float64 range"):
        cn.gaussian_filter1d(x, 0.5, order=1000)  # weights near (n-1)!! * 2^n


# ------------------------------------------------------------------ lenient int() / float()
X2 = np.arange(20.0).reshape(4, 5)
W3 = np.array([1.0, 2.0, 1.0])

LENIENT = {
    "correlate origin=1.5": lambda: cn.correlate(X2, np.ones((3, 3)), origin=1.5),
    "correlate origin=[0, 1.5]": lambda: cn.correlate(X2, np.ones((3, 3)), origin=[0, 1.5]),
    "correlate origin=True": lambda: cn.correlate(X2, np.ones((3, 3)), origin=True),
    "convolve origin=1.5": lambda: cn.convolve(X2, np.ones((3, 3)), origin=1.5),
    "correlate1d origin=1.5": lambda: cn.correlate1d(X2, W3, origin=1.5),
    "correlate1d origin=True": lambda: cn.correlate1d(X2, W3, origin=True),
    "convolve1d origin=1.5": lambda: cn.convolve1d(X2, W3, origin=1.5),
    "convolve1d origin='1'": lambda: cn.convolve1d(X2, W3, origin="1"),
    "correlate1d axis=1.5": lambda: cn.correlate1d(X2, W3, axis=1.5),
    "correlate1d axis=True": lambda: cn.correlate1d(X2, W3, axis=True),
    "convolve1d axis=1.0": lambda: cn.convolve1d(X2, W3, axis=1.0),
    "uniform_filter1d axis=1.5": lambda: cn.uniform_filter1d(X2, 3, axis=1.5),
    "uniform_filter1d size=3.0": lambda: cn.uniform_filter1d(X2, 3.0),
    "uniform_filter1d size=True": lambda: cn.uniform_filter1d(X2, True),
    "uniform_filter size=1.5": lambda: cn.uniform_filter(X2, 1.5),
    "uniform_filter size=True": lambda: cn.uniform_filter(X2, True),
    "uniform_filter origin=True": lambda: cn.uniform_filter(X2, 3, origin=True),
    "uniform_filter axes=1.5": lambda: cn.uniform_filter(X2, 3, axes=1.5),
    "uniform_filter axes='x'": lambda: cn.uniform_filter(X2, 3, axes="x"),
    "gaussian_filter1d axis=1.5": lambda: cn.gaussian_filter1d(X2, 1.0, axis=1.5),
    "gaussian_filter1d sigma=True": lambda: cn.gaussian_filter1d(X2, True),
    "gaussian_filter1d sigma='1'": lambda: cn.gaussian_filter1d(X2, "1"),
    "gaussian_filter1d order=1.5": lambda: cn.gaussian_filter1d(X2, 1.0, order=1.5),
    "gaussian_filter1d order=True": lambda: cn.gaussian_filter1d(X2, 1.0, order=True),
    "gaussian_filter1d radius=1.0": lambda: cn.gaussian_filter1d(X2, 1.0, radius=1.0),
    "gaussian_filter1d radius=True": lambda: cn.gaussian_filter1d(X2, 1.0, radius=True),
    "gaussian_filter1d truncate='4'": lambda: cn.gaussian_filter1d(X2, 1.0, truncate="4"),
    "gaussian_filter order=1.5": lambda: cn.gaussian_filter(X2, 1.0, order=1.5),
    "gaussian_filter order=[0, 1.5]": lambda: cn.gaussian_filter(X2, 1.0, order=[0, 1.5]),
    "gaussian_filter sigma=True": lambda: cn.gaussian_filter(X2, True),
    "gaussian_filter radius=1.5": lambda: cn.gaussian_filter(X2, 1.0, radius=1.5),
    "gaussian_filter axes=True": lambda: cn.gaussian_filter(X2, 1.0, axes=True),
    "sobel axis=1.5": lambda: cn.sobel(X2, axis=1.5),
    "sobel axis=True": lambda: cn.sobel(X2, axis=True),
    "prewitt axis=1.5": lambda: cn.prewitt(X2, axis=1.5),
    "edge_filter angle='1'": lambda: cn.edge_filter(X2, "1"),
    "edge_filter angle=True": lambda: cn.edge_filter(X2, True),
    "correlate1d cval='1'": lambda: cn.correlate1d(X2, W3, cval="1"),
    "correlate cval=b'1'": lambda: cn.correlate(X2, np.ones((3, 3)), cval=b"1"),
    "gaussian_kernel sigma='1'": lambda: cn.gaussian_kernel(5, "1", 1),
    "gaussian_kernel k=b'2'": lambda: cn.gaussian_kernel(b"2", 1.0, 1),
    "gaussian_kernel ndim=1.5": lambda: cn.gaussian_kernel(5, 1.0, 1.5),
    "gaussian_kernel sigma=True": lambda: cn.gaussian_kernel(5, True),
    "uniform_kernel k=1.5": lambda: cn.uniform_kernel(1.5, 2),
    "uniform_kernel k=True": lambda: cn.uniform_kernel(True, "2"),
    "uniform_kernel ndim='2'": lambda: cn.uniform_kernel(2, "2"),
    "uniform_kernel k=2.0": lambda: cn.uniform_kernel(2.0),
    "max_pool pool_size=True": lambda: convcore.max_pool(np.zeros(17), True),
    "max_pool strides=True": lambda: convcore.max_pool(np.zeros(17), 2, strides=True),
    "max_pool pool_size='2'": lambda: convcore.max_pool(np.zeros(17), "2"),
    "max_pool pool_size=(2, True)": lambda: convcore.avg_pool(np.zeros((4, 4)), (2, True)),
    "avg_pool pool_size=True": lambda: convcore.avg_pool(np.zeros(17), True),
    "avg_pool strides=(True,)": lambda: convcore.avg_pool(np.zeros(17), 2, strides=(True,)),
    "avg_pool pool_size=None": lambda: convcore.avg_pool(np.zeros(17), None),
    "correlate method=None": lambda: cs.correlate(np.ones(3), np.ones(2), method=None),
    "correlate 0-d mode=None": lambda: cs.correlate(1.0, 2.0, None),
}


@pytest.mark.parametrize("name", list(LENIENT))
def test_lenient_conversions_are_type_errors(name):
    with pytest.raises(TypeError):
        LENIENT[name]()


@pytest.mark.parametrize("fn", [convcore.max_pool, convcore.avg_pool])
def test_pool_floats_are_value_errors(fn):
    # (as in Keras: pool_size and strides are ints; test_bad_input has 1.5 as a ValueError)
    for bad in (2.0, 1.5, np.float64(2.0), nan):
        with pytest.raises(ValueError, match="positive integers"):
            fn(np.zeros(8), bad)
        with pytest.raises(ValueError, match="positive integers"):
            fn(np.zeros(8), 2, strides=bad)
    np.testing.assert_array_equal(fn(np.arange(8.0), np.int64(2), strides=(np.int32(2),)),
                                  fn(np.arange(8.0), 2))


# ------------------------------------------------------------------ arguments a call does not use
def test_truncate_is_checked_when_a_radius_is_given():
    # scipy computes int(truncate * sigma + 0.5) first: OverflowError / ValueError
    for t in (inf, nan):
        with pytest.raises((OverflowError, ValueError)):
            nd.gaussian_filter1d(np.ones(5), 1.0, truncate=t, radius=1)
        with pytest.raises(ValueError, match="truncate must be a finite number"):
            cn.gaussian_filter1d(np.ones(5), 1.0, truncate=t, radius=1)
        with pytest.raises(ValueError, match="truncate must be a finite number"):
            cn.gaussian_filter(np.ones(5), 1.0, truncate=t, radius=1)
    with pytest.raises(ValueError, match="truncate must be >= 0"):
        cn.gaussian_filter1d(np.ones(5), 1.0, truncate=-1.0, radius=1)
    with pytest.raises(ValueError, match="larger than any array"):
        cn.gaussian_filter1d(np.ones(5), 1e300, truncate=1e300)  # truncate * sigma is inf
    with pytest.raises(ValueError, match="larger than any array"):
        cn.gaussian_filter1d(np.ones(5), 1.0, radius=2 ** 62)


@pytest.mark.parametrize("a", [np.zeros(0), np.ones(1), np.ones((1, 1)), np.zeros((0, 3))])
def test_uniform_filter_checks_everything_when_no_axis_is_filtered(a):
    with pytest.raises(TypeError, match="cval must be a real number"):
        cn.uniform_filter(a, 1, cval=[1, 2])
    with pytest.raises(ValueError, match='mode must be one of .*got "bogus"'):
        cn.uniform_filter(a, 1, mode="bogus")
    with pytest.raises(TypeError, match="mode must be a string"):
        cn.uniform_filter(a, 1, mode=None)
    with pytest.raises(ValueError, match="invalid origin 1 for a filter of size 1"):
        cn.uniform_filter(a, 1, origin=1)
    with pytest.raises(ValueError, match="size must be >= 0"):
        cn.uniform_filter(a, -1)
    np.testing.assert_array_equal(cn.uniform_filter(a, 0), nd.uniform_filter(a, 0))  # size 0: not filtered
    np.testing.assert_array_equal(cn.uniform_filter(a, 1), nd.uniform_filter(a, 1))


def test_gaussian_filter_checks_everything_on_a_skipped_axis():
    a = np.arange(6.0)
    bad = [dict(mode="bogus"), dict(mode=1), dict(order=1.5), dict(order=-1), dict(truncate=inf),
           dict(truncate=-1.0), dict(radius=-1), dict(radius=True), dict(cval=[1, 2]), dict(cval="0"),
           dict(axes=[0, 0]), dict(axes=[1])]
    for kw in bad:
        with pytest.raises((TypeError, ValueError)):
            cn.gaussian_filter(a, 0.0, **kw)
        with pytest.raises((TypeError, ValueError)):
            cn.gaussian_filter(a, 1.0, **kw)
    np.testing.assert_array_equal(cn.gaussian_filter(a, 0.0, order=2, mode="wrap"), a)
    np.testing.assert_array_equal(cn.gaussian_filter(a, 1.0, axes=[]), a)


def test_signal_mode_is_checked_for_0d_inputs():
    one = np.float64(1.0)
    with pytest.raises(ValueError, match="Acceptable mode flags"):
        ss.choose_conv_method(one, one, "bogus")
    for fn in (cs.choose_conv_method, cs.correlate, cs.convolve):
        with pytest.raises(ValueError, match='mode must be one of .*got "bogus"'):
            fn(one, one, "bogus")
        with pytest.raises(TypeError, match="mode must be a string"):
            fn(one, one, None)
    assert cs.choose_conv_method(one, one) == "direct"
    assert cs.correlate(np.float64(2.0), np.float64(3.0), "same") == 6.0
    with pytest.raises(ValueError, match="method must be one of"):
        cs.convolve(one, one, "full", "bogus")


# ------------------------------------------------------------------ kernel builders
def test_gaussian_kernel_tiny_sigma_is_normalised_not_nan():
    np.testing.assert_array_equal(cn.gaussian_kernel(2, 1e-3, 1), [0.5, 0.5])
    np.testing.assert_array_equal(cn.gaussian_kernel(4, 1e-300, 1), [0.0, 0.5, 0.5, 0.0])
    np.testing.assert_array_equal(cn.gaussian_kernel(2, 1e-3, 2), np.full((2, 2), 0.25))
    np.testing.assert_array_equal(cn.gaussian_kernel(5, 1e-300, 1), [0.0, 0.0, 1.0, 0.0, 0.0])
    g = cn.gaussian_kernel(6, 0.8, 1)  # an ordinary sigma: the sampled Gaussian
    x = np.arange(6) - 2.5
    want = np.exp(-x ** 2 / (2 * 0.8 ** 2))
    np.testing.assert_allclose(g, want / want.sum(), rtol=1e-14)


def test_kernel_builder_arguments():
    for bad in (inf, -inf, nan, 0.0, -1.0):
        with pytest.raises(ValueError, match="sigma"):
            cn.gaussian_kernel(3, bad)
    with pytest.raises(ValueError, match="ndim must be <= 64"):
        cn.uniform_kernel(1, 65)
    with pytest.raises(ValueError, match="more than any array can hold"):
        cn.uniform_kernel(2, 64)
    with pytest.raises(ValueError, match="more than any array can hold"):
        cn.gaussian_kernel(2 ** 62, 1.0, 1)
    assert cn.uniform_kernel(1, 64).shape == (1,) * 64
    assert cn.uniform_kernel(np.int64(3), np.array(2)).shape == (3, 3)
    for fn in (lambda d: cn.uniform_kernel(3, 1, d), lambda d: cn.gaussian_kernel(3, 1.0, 1, d)):
        for bad in (np.complex128, np.int32, bool, object, "U3"):
            with pytest.raises(TypeError, match="float dtype"):
                fn(bad)
        with pytest.raises(TypeError, match="numpy dtype"):
            fn("bogus")
        assert fn(np.float16).dtype == np.float16
        assert fn(None).dtype == np.float64
    with pytest.raises(TypeError):
        cn.sobel_kernels(bool)
    with pytest.raises(TypeError):
        cn.sobel_kernels(np.uint8)  # (-1 would wrap around)
    assert cn.sobel_kernels(np.int16)[0].dtype == np.int16


# ------------------------------------------------------------------ values and outputs
def test_cval_accepts_what_scipy_accepts():
    a = np.arange(5.0)
    for cval in (True, np.float32(0.5), 7, np.array(2.0), -inf):
        np.testing.assert_array_equal(cn.correlate1d(a, W3, mode="constant", cval=cval),
                                      nd.correlate1d(a, W3, mode="constant", cval=cval))
    for bad in ("1", None, 1 + 2j, [1.0], np.array([1.0])):
        with pytest.raises(TypeError, match="cval must be a real number"):
            cn.correlate1d(a, W3, cval=bad)


def test_edge_filter_angle():
    img = np.arange(16.0).reshape(4, 4)
    for bad in (nan, inf, -inf):
        with pytest.raises(ValueError, match="angle_degrees must be a finite number"):
            cn.edge_filter(img, bad)
    np.testing.assert_array_equal(cn.edge_filter(img, np.float32(30.0)), cn.edge_filter(img, float(np.float32(30))))


@pytest.mark.parametrize("bad", ["U3", object, "datetime64[D]", np.complex64, "S2"])
def test_output_must_be_a_real_numeric_dtype(bad):
    with pytest.raises((RuntimeError, TypeError)):
        nd.correlate1d(np.ones(3), [1.0], output=bad)
    with pytest.raises(TypeError, match="output"):
        cn.correlate1d(np.ones(3), [1.0], output=bad)
    with pytest.raises(TypeError, match="output"):
        cn.uniform_filter(np.ones(3), 3, output=np.zeros(3, dtype=bad))


def test_valid_per_axis_arguments_match_scipy():
    a = np.random.default_rng(0).standard_normal((5, 6))
    np.testing.assert_allclose(cn.uniform_filter(a, [3, 2], mode=["wrap", "constant"], origin=[1, -1], cval=2.0),
                               nd.uniform_filter(a, [3, 2], mode=["wrap", "constant"], origin=[1, -1], cval=2.0),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cn.gaussian_filter(a, [1.0, 0.0], order=[1, 5], mode=["mirror", "mirror"],
                                                  radius=[2, None]),
                               nd.gaussian_filter(a, [1.0, 0.0], order=[1, 5], mode="mirror", radius=[2, None]),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cn.correlate1d(a, W3, axis=np.int64(0), origin=np.int32(1)),
                               nd.correlate1d(a, W3, axis=0, origin=1), rtol=1e-12)
    np.testing.assert_allclose(cn.gaussian_filter1d(a, np.float32(0.7), order=np.int64(2), radius=np.uint8(3)),
                               nd.gaussian_filter1d(a, float(np.float32(0.7)), order=2, radius=3), rtol=1e-9,
                               atol=1e-12)


def test_match_template_with_a_constant_template_scores_zero():
    # The template's mean rounds (3 * v / 3 != v), so its centred values are ~1e-16, not
    # 0; dividing by that gave scores like 2.4 (skimage: 3.7), outside [-1, 1].
    img = np.random.default_rng(0).standard_normal((5, 13))
    t = np.broadcast_to(np.array([[-2.961462131498945]]), (3, 1))
    assert t.mean() != t[0, 0]
    for dt in (np.float64, np.float32):
        got = cn.match_template(img.astype(dt), t)
        assert got.dtype == dt and got.shape == (3, 13)
        np.testing.assert_array_equal(got, 0.0)
    r = cn.match_template(img, img[1:3, 2:6])  # an ordinary template still matches itself
    assert math.isclose(float(r[1, 2]), 1.0, rel_tol=1e-12) and np.abs(r).max() <= 1 + 1e-12
