"""float32 filtering at scipy's precision (issue 16, item 2).

scipy.ndimage converts every line to double, sums in double with double weights and
rounds once to float32. convcore's Gaussian filters and its other 1-D passes of at
least ``_WIDE_TAPS`` taps (long uniform windows, any ``correlate1d`` with a long
window) do the same on the CPU, so their float32 results
are scipy's, to the bit but where the two double sums round to different sides of a
float32 tie (at most one float32 ulp). Shorter windows and the N-D kernels of
``correlate`` / ``convolve`` sum in float32 (as OpenCV's filter2D): within a few ulps.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as sn

import convcore.ndimage as cn

MODES = ["reflect", "mirror", "nearest", "wrap", "constant", "grid-wrap", "grid-constant", "grid-mirror"]


def ulps(a, b):
    """Distance in float32 ulps between two float32 arrays (NaN where both are NaN)."""
    assert a.dtype == np.float32 and b.dtype == np.float32, (a.dtype, b.dtype)
    ai = a.view(np.int32).astype(np.int64)
    bi = b.view(np.int32).astype(np.int64)
    # Map the sign-magnitude bit patterns onto one ordered integer line.
    ai = np.where(ai < 0, -(ai & 0x7FFFFFFF), ai)
    bi = np.where(bi < 0, -(bi & 0x7FFFFFFF), bi)
    d = np.abs(ai - bi)
    both_nan = np.isnan(a) & np.isnan(b)
    return np.where(both_nan, 0, d)


def assert_scipy_precision(ours, ref):
    """``ours`` is scipy's float32 result: at most one ulp anywhere, equal almost
    everywhere (two double sums in different orders round to the same float32 except
    near a tie; a constant border of a ``cval`` that no float32 holds makes sums that
    double does not hold exactly either, and ties a little more frequent: up to 1.5 %
    of the values, where a float32 sum leaves a third to a half of them off)."""
    assert ours.dtype == np.float32 and ref.dtype == np.float32
    assert ours.shape == ref.shape
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    d = ulps(ours, ref)
    assert d.max() <= 1, f"max {d.max()} ulps from scipy at {np.unravel_index(d.argmax(), d.shape)}"
    assert (d == 0).mean() >= 0.98, f"only {(d == 0).mean():.4%} equal to scipy"


def rand(shape, seed, scale=100.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sigma", [2.0, 3.5, 20.0])
def test_gaussian_filter_float32_is_scipys(mode, sigma):
    x = rand((67, 301), 1)
    assert_scipy_precision(cn.gaussian_filter(x, sigma, mode=mode, cval=0.1),
                           sn.gaussian_filter(x, sigma, mode=mode, cval=0.1))


@pytest.mark.parametrize("order", [0, 1, 2, 3])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_gaussian_filter1d_orders_3d(order, axis):
    x = rand((19, 23, 37), 2)
    assert_scipy_precision(cn.gaussian_filter1d(x, 2.5, axis=axis, order=order),
                           sn.gaussian_filter1d(x, 2.5, axis=axis, order=order))


def test_gaussian_derivative_filters():
    x = rand((130, 97), 3)
    assert_scipy_precision(cn.gaussian_laplace(x, 2.5), sn.gaussian_laplace(x, 2.5))
    assert_scipy_precision(cn.gaussian_gradient_magnitude(x, [2.0, 3.0]),
                           sn.gaussian_gradient_magnitude(x, [2.0, 3.0]))
    assert_scipy_precision(cn.gaussian_filter(x, 2.0, axes=(1,), order=1),
                           sn.gaussian_filter(x, 2.0, axes=(1,), order=1))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [16, 31, 200])
def test_uniform_filter1d_long_windows(mode, size):
    x = rand((11, 2500), 4)
    for axis in (0, 1):
        if x.shape[axis] < size and mode in ("mirror",):
            continue
        assert_scipy_precision(cn.uniform_filter1d(x, size, axis=axis, mode=mode, cval=-3.3, origin=-1),
                               sn.uniform_filter1d(x, size, axis=axis, mode=mode, cval=-3.3, origin=-1))


def test_uniform_filter1d_long_window_drift():
    """A float32 running sum over 10^5 values drifts by about 1e-3 relative; scipy's
    double sum does not, nor does convcore's."""
    x = (np.random.default_rng(5).random(300_000) + 1000).astype(np.float32)
    assert_scipy_precision(cn.uniform_filter1d(x, 100_001), sn.uniform_filter1d(x, 100_001))


@pytest.mark.parametrize("mode", MODES)
def test_correlate1d_long_window_with_nonfinite(mode):
    x = rand((40, 150), 6)
    x[3, 7] = np.inf
    x[20, 100] = np.nan
    x[30, 0] = -np.inf
    w = np.random.default_rng(7).standard_normal(21)
    for axis in (0, 1):
        ours = cn.correlate1d(x, w, axis=axis, mode=mode, cval=0.1, origin=2)
        ref = sn.correlate1d(x, w, axis=axis, mode=mode, cval=0.1, origin=2)
        assert np.array_equal(np.isinf(ours), np.isinf(ref))
        assert_scipy_precision(np.where(np.isinf(ref), 0, ours).astype(np.float32),
                               np.where(np.isinf(ref), 0, ref).astype(np.float32))
        assert np.array_equal(ours[np.isinf(ref)], ref[np.isinf(ref)])


def test_convolve1d_and_output_dtypes():
    x = rand((50, 80), 8)
    w = np.linspace(-1, 1, 17) ** 3
    assert_scipy_precision(cn.convolve1d(x, w, axis=0, origin=-3), sn.convolve1d(x, w, axis=0, origin=-3))
    out = np.empty_like(x)
    cn.correlate1d(x, w, output=out)
    assert_scipy_precision(out, sn.correlate1d(x, w))


def test_gauss03_sum_is_kept():
    """scipy's test_gauss03: the total of a 100x100 float32 ramp survives the filter
    (decimal=0); convcore's drift is scipy's, to the last bit of the sum."""
    x = np.arange(100 * 100, dtype=np.float32).reshape(100, 100)
    ours = cn.gaussian_filter(x, [1.0, 1.0])
    ref = sn.gaussian_filter(x, [1.0, 1.0])
    assert abs(ours.sum(dtype=np.float64) - x.sum(dtype=np.float64)) < 0.5
    assert_scipy_precision(ours, ref)
    x2 = np.arange(300 * 300, dtype=np.float32).reshape(300, 300)
    ours2 = cn.gaussian_filter(x2, 4.0)
    ref2 = sn.gaussian_filter(x2, 4.0)
    assert_scipy_precision(ours2, ref2)
    assert ours2.sum(dtype=np.float64) == ref2.sum(dtype=np.float64)
    assert ours.dtype == ref.dtype == np.float32


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.5])
def test_short_gaussians_are_scipys_too(sigma):
    x = (np.random.default_rng(9).random((200, 300)) * 100).astype(np.float32)
    assert_scipy_precision(cn.gaussian_filter(x, sigma), sn.gaussian_filter(x, sigma))
    assert_scipy_precision(cn.gaussian_laplace(x, sigma), sn.gaussian_laplace(x, sigma))


def test_short_float32_windows_within_a_few_ulps():
    """The windows below 16 taps sum in float32: what the module docstring promises."""
    x = (np.random.default_rng(9).random((200, 300)) * 100).astype(np.float32)
    d = ulps(cn.uniform_filter(x, 5), sn.uniform_filter(x, 5))
    assert d.max() <= 4, d.max()
    d = ulps(cn.correlate1d(x, np.linspace(0.1, 1, 9)), sn.correlate1d(x, np.linspace(0.1, 1, 9)))
    assert d.max() <= 4, d.max()
    w = np.random.default_rng(10).random((5, 5))
    ours, ref = cn.correlate(x, w), sn.correlate(x, w)
    assert np.allclose(ours, ref, rtol=4 * 2.0 ** -23 * 25, atol=0)


def test_wide_path_matches_float64_rounded_once():
    """Against an independent reference: the exact (float64) filter of the float32 data
    rounded once to float32."""
    x = rand((64, 500), 11)
    w = np.random.default_rng(12).standard_normal(33)
    exact = sn.correlate1d(x.astype(np.float64), w, axis=1, mode="mirror").astype(np.float32)
    assert_scipy_precision(cn.correlate1d(x, w, axis=1, mode="mirror"), exact)
