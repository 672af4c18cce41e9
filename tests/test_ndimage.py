"""convcore.ndimage against scipy.ndimage and skimage.feature.match_template."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage as nd
import skimage.data
import skimage.feature
from hypothesis import given, settings, strategies as st

from convcore import ndimage as cn

from conftest import RTOL, assert_close, float_dtypes, layouts, make_array, scale_of, seeds, styles

MODES = ["reflect", "constant", "nearest", "mirror", "wrap"]
ALIASES = ["grid-mirror", "grid-constant", "grid-wrap"]
CVALS = [0.0, 1.0, -2.5, 7.0]

# sizes 1 and 2 appear often: they are where the boundary rules differ most
small_dims = st.sampled_from([1, 1, 2, 2, 3, 4, 5, 7])


def nd_shapes(ndim):
    return st.tuples(*[small_dims] * ndim)


def _scale(a, cval, mode, weights_abs_sum):
    """max|value seen by the filter| * sum|weights| (see conftest.scale_of)."""
    m = float(np.abs(a.astype(np.float64)).max())
    if mode in ("constant", "grid-constant"):
        m = max(m, abs(cval))
    return m * weights_abs_sum + 1e-30


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _origin_strategy(n):
    return st.integers(-(n // 2), (n - 1) // 2)


# ------------------------------------------------------------------ correlate / convolve

@pytest.mark.parametrize("func", ["correlate", "convolve"])
@settings(max_examples=60)
@given(data=st.data())
def test_correlate_convolve_vs_scipy(func, data):
    ndim = data.draw(st.integers(1, 3), label="ndim")
    dtype = data.draw(float_dtypes, label="dtype")
    shape = data.draw(nd_shapes(ndim), label="shape")
    wshape = data.draw(st.tuples(*[st.integers(1, 6)] * ndim), label="wshape")  # may exceed the input
    mode = data.draw(st.sampled_from(MODES + ALIASES), label="mode")
    cval = data.draw(st.sampled_from(CVALS), label="cval")
    origin = [data.draw(_origin_strategy(n), label="origin") for n in wshape]
    if data.draw(st.booleans(), label="scalar origin"):
        lo = max(-(n // 2) for n in wshape)
        hi = min((n - 1) // 2 for n in wshape)
        origin = data.draw(st.integers(lo, hi), label="origin0")
    style = data.draw(styles, label="style")
    a = make_array(data.draw(seeds), shape, dtype, style)
    w = make_array(data.draw(seeds), wshape, dtype, style)
    ours, theirs = getattr(cn, func), getattr(nd, func)
    expected = theirs(_f64(a), _f64(w), mode=mode, cval=cval, origin=origin)
    got = ours(a, w, mode=mode, cval=cval, origin=origin)
    assert_close(got, expected, dtype, _scale(a, cval, mode, np.abs(_f64(w)).sum()))


@pytest.mark.parametrize("func", ["correlate1d", "convolve1d"])
@settings(max_examples=60)
@given(data=st.data())
def test_1d_filters_vs_scipy(func, data):
    ndim = data.draw(st.integers(1, 3), label="ndim")
    dtype = data.draw(float_dtypes, label="dtype")
    shape = data.draw(nd_shapes(ndim), label="shape")
    axis = data.draw(st.integers(-ndim, ndim - 1), label="axis")
    n = data.draw(st.integers(1, 9), label="wlen")
    origin = data.draw(_origin_strategy(n), label="origin")
    mode = data.draw(st.sampled_from(MODES), label="mode")
    cval = data.draw(st.sampled_from(CVALS), label="cval")
    a = make_array(data.draw(seeds), shape, dtype, data.draw(styles))
    w = make_array(data.draw(seeds), (n,), dtype)
    ours, theirs = getattr(cn, func), getattr(nd, func)
    expected = theirs(_f64(a), _f64(w), axis=axis, mode=mode, cval=cval, origin=origin)
    got = ours(a, w, axis=axis, mode=mode, cval=cval, origin=origin)
    assert_close(got, expected, dtype, _scale(a, cval, mode, np.abs(_f64(w)).sum()))


@settings(max_examples=50)
@given(data=st.data())
def test_uniform_filters_vs_scipy(data):
    ndim = data.draw(st.integers(1, 3), label="ndim")
    dtype = data.draw(float_dtypes, label="dtype")
    shape = data.draw(nd_shapes(ndim), label="shape")
    mode = data.draw(st.sampled_from(MODES), label="mode")
    cval = data.draw(st.sampled_from(CVALS), label="cval")
    a = make_array(data.draw(seeds), shape, dtype, data.draw(styles))
    if data.draw(st.booleans(), label="1d"):
        size = data.draw(st.integers(1, 8), label="size")
        axis = data.draw(st.integers(-ndim, ndim - 1), label="axis")
        origin = data.draw(_origin_strategy(size), label="origin")
        expected = nd.uniform_filter1d(_f64(a), size, axis=axis, mode=mode, cval=cval, origin=origin)
        got = cn.uniform_filter1d(a, size, axis=axis, mode=mode, cval=cval, origin=origin)
    else:
        size = data.draw(st.one_of(st.integers(1, 6), st.tuples(*[st.integers(1, 6)] * ndim)), label="size")
        sizes = [size] * ndim if isinstance(size, int) else list(size)
        origin = [data.draw(_origin_strategy(s), label="origin") for s in sizes]
        expected = nd.uniform_filter(_f64(a), size, mode=mode, cval=cval, origin=origin)
        got = cn.uniform_filter(a, size, mode=mode, cval=cval, origin=origin)
    # an average never exceeds the largest value it sees
    assert_close(got, expected, dtype, _scale(a, cval, mode, 1.0) * ndim)


def _gauss_abs_sum(sigma, order, truncate):
    from scipy.ndimage._filters import _gaussian_kernel1d

    radius = int(truncate * sigma + 0.5)
    return float(np.abs(_gaussian_kernel1d(sigma, order, radius)).sum())


@settings(max_examples=60)
@given(data=st.data())
def test_gaussian_filters_vs_scipy(data):
    ndim = data.draw(st.integers(1, 3), label="ndim")
    dtype = data.draw(float_dtypes, label="dtype")
    shape = data.draw(nd_shapes(ndim), label="shape")
    mode = data.draw(st.sampled_from(MODES), label="mode")
    cval = data.draw(st.sampled_from(CVALS), label="cval")
    truncate = data.draw(st.sampled_from([4.0, 2.0, 1.5, 0.5]), label="truncate")
    sigmas_st = st.floats(0.3, 3.0).map(lambda s: round(s, 3))
    a = make_array(data.draw(seeds), shape, dtype, "normal")
    if data.draw(st.booleans(), label="1d"):
        sigma = data.draw(sigmas_st, label="sigma")
        order = data.draw(st.integers(0, 2), label="order")
        axis = data.draw(st.integers(-ndim, ndim - 1), label="axis")
        expected = nd.gaussian_filter1d(_f64(a), sigma, axis=axis, order=order, mode=mode, cval=cval,
                                        truncate=truncate)
        got = cn.gaussian_filter1d(a, sigma, axis=axis, order=order, mode=mode, cval=cval, truncate=truncate)
        wsum = _gauss_abs_sum(sigma, order, truncate)
    else:
        per_axis = data.draw(st.booleans(), label="per-axis")
        if per_axis:
            sigma = tuple(data.draw(st.lists(sigmas_st, min_size=ndim, max_size=ndim), label="sigma"))
            order = tuple(data.draw(st.lists(st.integers(0, 2), min_size=ndim, max_size=ndim), label="order"))
        else:
            sigma = data.draw(sigmas_st, label="sigma")
            order = data.draw(st.integers(0, 2), label="order")
        expected = nd.gaussian_filter(_f64(a), sigma, order=order, mode=mode, cval=cval, truncate=truncate)
        got = cn.gaussian_filter(a, sigma, order=order, mode=mode, cval=cval, truncate=truncate)
        sig = sigma if per_axis else [sigma] * ndim
        ords = order if per_axis else [order] * ndim
        wsum = math.prod(_gauss_abs_sum(s, o, truncate) for s, o in zip(sig, ords))
    # the dtype rule is checked once in test_float32_input_gives_float32_output
    assert got.shape == expected.shape
    r = RTOL[np.dtype(dtype)]
    np.testing.assert_allclose(_f64(got), expected, rtol=r, atol=r * _scale(a, cval, mode, wsum))


@pytest.mark.parametrize("func,smooth", [("sobel", 4.0), ("prewitt", 3.0)])
@settings(max_examples=50)
@given(data=st.data())
def test_derivative_filters_vs_scipy(func, smooth, data):
    ndim = data.draw(st.integers(1, 3), label="ndim")
    dtype = data.draw(float_dtypes, label="dtype")
    shape = data.draw(nd_shapes(ndim), label="shape")
    axis = data.draw(st.integers(-ndim, ndim - 1), label="axis")
    mode = data.draw(st.sampled_from(MODES), label="mode")
    cval = data.draw(st.sampled_from(CVALS), label="cval")
    a = make_array(data.draw(seeds), shape, dtype, data.draw(styles))
    expected = getattr(nd, func)(_f64(a), axis=axis, mode=mode, cval=cval)
    got = getattr(cn, func)(a, axis=axis, mode=mode, cval=cval)
    assert_close(got, expected, dtype, _scale(a, cval, mode, 2.0 * smooth ** (ndim - 1)))


@pytest.mark.parametrize("mode", MODES)
def test_kernel_much_larger_than_input(mode):
    """Weights several times the input's size: the boundary rule is applied repeatedly."""
    rng = np.random.default_rng(11)
    for shape, wshape in [((1,), (9,)), ((2,), (11,)), ((3,), (12,)), ((2, 3), (7, 8)), ((1, 2, 2), (5, 4, 6))]:
        a = rng.standard_normal(shape)
        w = rng.standard_normal(wshape)
        for func in ("correlate", "convolve"):
            np.testing.assert_allclose(
                getattr(cn, func)(a, w, mode=mode, cval=1.5), getattr(nd, func)(a, w, mode=mode, cval=1.5),
                rtol=1e-12, atol=1e-12 * _scale(a, 1.5, mode, np.abs(w).sum()), err_msg=f"{func} {shape} {wshape}")


# ------------------------------------------------------------------ dtypes and layouts

def _wdt(a):
    """Weights of the input's dtype for float inputs, float64 otherwise."""
    return a.dtype if a.dtype.kind == "f" else np.float64


ND_FUNCS = {
    "correlate": lambda m, a: m.correlate(a, np.ones((2,) * a.ndim, dtype=_wdt(a))),
    "convolve": lambda m, a: m.convolve(a, np.ones((3,) * a.ndim, dtype=_wdt(a))),
    "correlate1d": lambda m, a: m.correlate1d(a, np.array([1.0, -2.0, 0.5], dtype=_wdt(a)), axis=0),
    "convolve1d": lambda m, a: m.convolve1d(a, np.array([1.0, -2.0], dtype=_wdt(a)), axis=1),
    "uniform_filter": lambda m, a: m.uniform_filter(a, 3),
    "uniform_filter1d": lambda m, a: m.uniform_filter1d(a, 4, axis=0),
    "gaussian_filter": lambda m, a: m.gaussian_filter(a, 1.2),
    "gaussian_filter1d": lambda m, a: m.gaussian_filter1d(a, 0.8, order=1),
    "sobel": lambda m, a: m.sobel(a, axis=0),
    "prewitt": lambda m, a: m.prewitt(a, axis=1),
}


@pytest.mark.parametrize("name", list(ND_FUNCS))
def test_float32_input_gives_float32_output(name):
    """Module docstring: float32 in gives float32 out (scipy.ndimage keeps the input dtype)."""
    a = make_array(0, (6, 7), np.float32)
    got = ND_FUNCS[name](cn, a)
    expected = ND_FUNCS[name](nd, a)
    assert expected.dtype == np.float32
    assert got.dtype == np.float32, f"{name}(float32) returned {got.dtype}"
    np.testing.assert_allclose(got, ND_FUNCS[name](nd, _f64(a)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(ND_FUNCS))
def test_float64_and_integer_inputs_keep_their_dtype(name):
    """scipy.ndimage's rule: the result has the input's dtype; integer results are
    truncated (every pass of a separable filter), with wrap-around; bool is uint8's cast
    tested for non-zero."""
    a = make_array(1, (6, 7), np.float64, "int")
    np.testing.assert_allclose(ND_FUNCS[name](cn, a), ND_FUNCS[name](nd, a), rtol=1e-12, atol=1e-12)
    for inp in (a.astype(np.int8), a.astype(np.uint8), a.astype(np.int32), a.astype(np.int64),
                (a * 1000).astype(np.int16), a > 0):
        got, want = ND_FUNCS[name](cn, inp), ND_FUNCS[name](nd, inp)
        assert got.dtype == want.dtype == inp.dtype, (got.dtype, want.dtype)
        np.testing.assert_array_equal(got, want)


def test_correlate1d_float32_input_with_list_weights_stays_float32():
    """scipy.ndimage returns the input's dtype whatever the weights' type; the docstring's
    example passes a Python list of weights."""
    a = make_array(2, (9,), np.float32)
    assert nd.correlate1d(a, [1.0, 3.0]).dtype == np.float32
    assert cn.correlate1d(a, [1.0, 3.0]).dtype == np.float32
    assert cn.correlate(a, np.array([1.0, 3.0])).dtype == np.float32


@pytest.mark.parametrize("name", list(ND_FUNCS))
def test_output_argument(name):
    a = make_array(3, (5, 6), np.float64)
    ref = ND_FUNCS[name](cn, a)
    fn = {
        "correlate": lambda **k: cn.correlate(a, np.ones((2, 2)), **k),
        "convolve": lambda **k: cn.convolve(a, np.ones((3, 3)), **k),
        "correlate1d": lambda **k: cn.correlate1d(a, np.array([1.0, -2.0, 0.5]), axis=0, **k),
        "convolve1d": lambda **k: cn.convolve1d(a, np.array([1.0, -2.0]), axis=1, **k),
        "uniform_filter": lambda **k: cn.uniform_filter(a, 3, **k),
        "uniform_filter1d": lambda **k: cn.uniform_filter1d(a, 4, axis=0, **k),
        "gaussian_filter": lambda **k: cn.gaussian_filter(a, 1.2, **k),
        "gaussian_filter1d": lambda **k: cn.gaussian_filter1d(a, 0.8, order=1, **k),
        "sobel": lambda **k: cn.sobel(a, axis=0, **k),
        "prewitt": lambda **k: cn.prewitt(a, axis=1, **k),
    }[name]
    out = np.empty_like(a)
    r = fn(output=out)
    assert r is out
    np.testing.assert_array_equal(out, ref)
    r32 = fn(output=np.float32)
    assert r32.dtype == np.float32
    np.testing.assert_allclose(r32, ref, rtol=1e-6, atol=1e-6)


@settings(max_examples=40)
@given(data=st.data())
def test_noncontiguous_inputs(data):
    ndim = data.draw(st.integers(1, 3))
    dtype = data.draw(float_dtypes)
    a = make_array(data.draw(seeds), data.draw(nd_shapes(ndim)), dtype)
    w = make_array(data.draw(seeds), data.draw(st.tuples(*[st.integers(1, 4)] * ndim)), dtype)
    mode = data.draw(st.sampled_from(MODES))
    expected = cn.correlate(a, w, mode=mode, cval=1.0)
    a2, w2 = data.draw(layouts(a)), data.draw(layouts(w))
    np.testing.assert_array_equal(cn.correlate(a2, w2, mode=mode, cval=1.0), expected)
    np.testing.assert_array_equal(cn.gaussian_filter(a2, 1.0, mode=mode), cn.gaussian_filter(a, 1.0, mode=mode))


# ------------------------------------------------------------------ kernel builders

@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("k", [1, 2, 3, 5, 6])
def test_uniform_kernel(k, ndim):
    u = cn.uniform_kernel(k, ndim)
    assert u.shape == (k,) * ndim
    assert u.dtype == np.float64
    assert u.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(u == u.flat[0])
    assert cn.uniform_kernel(k, ndim, dtype=np.float32).dtype == np.float32
    # correlating with it is the uniform filter (odd k: same centring)
    if k % 2 == 1:
        a = make_array(k, (7,) * ndim, np.float64)
        np.testing.assert_allclose(cn.correlate(a, u), nd.uniform_filter(a, k), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("k,sigma", [(1, 1.0), (3, 0.5), (4, 1.0), (5, 1.0), (7, 2.5), (8, 0.7)])
def test_gaussian_kernel(k, sigma, ndim):
    g = cn.gaussian_kernel(k, sigma, ndim)
    assert g.shape == (k,) * ndim
    assert g.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(g > 0)
    for ax in range(ndim):
        np.testing.assert_allclose(np.flip(g, axis=ax), g, rtol=1e-14)  # centred
    # the outer product of sampled 1-D Gaussians at x = i - (k - 1) / 2
    x = np.arange(k) - (k - 1) / 2
    g1 = np.exp(-x ** 2 / (2 * sigma ** 2))
    g1 /= g1.sum()
    ref = g1
    for _ in range(ndim - 1):
        ref = np.multiply.outer(ref, g1)
    np.testing.assert_allclose(g, ref, rtol=1e-12)
    if k % 2 == 1:
        assert g[(k // 2,) * ndim] == g.max()
    assert cn.gaussian_kernel(k, sigma, ndim, dtype=np.float32).dtype == np.float32


def test_gaussian_kernel_matches_gaussian_filter():
    """A (2r+1)-wide kernel equals scipy's Gaussian with radius r (up to normalisation of
    the truncated tails, which both do per axis)."""
    a = make_array(5, (12, 10), np.float64)
    g = cn.gaussian_kernel(9, 1.5)
    np.testing.assert_allclose(cn.correlate(a, g), nd.gaussian_filter(a, 1.5, radius=4), rtol=1e-12, atol=1e-12)


def test_sobel_kernels():
    kx, ky = cn.sobel_kernels()
    np.testing.assert_array_equal(kx, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    np.testing.assert_array_equal(ky, kx.T)
    assert cn.sobel_kernels(np.float32)[0].dtype == np.float32
    img = skimage.data.camera()[200:260, 150:230].astype(np.float64)
    for mode in MODES:
        # with scipy's own correlate: the kernel definition itself matches scipy's sobel
        np.testing.assert_allclose(nd.correlate(img, kx, mode=mode), nd.sobel(img, axis=1, mode=mode), atol=1e-9)
        np.testing.assert_allclose(nd.correlate(img, ky, mode=mode), nd.sobel(img, axis=0, mode=mode), atol=1e-9)
        # and with convcore's
        np.testing.assert_allclose(cn.correlate(img, kx, mode=mode), nd.sobel(img, axis=1, mode=mode), atol=1e-9)
        np.testing.assert_allclose(cn.correlate(img, ky, mode=mode), nd.sobel(img, axis=0, mode=mode), atol=1e-9)


# ------------------------------------------------------------------ edge_filter

@pytest.mark.parametrize("mode", MODES)
def test_edge_filter_axis_angles(mode):
    img = make_array(7, (9, 11), np.float64, "int")
    sx = nd.sobel(img, axis=1, mode=mode)   # d/dx, x along columns
    sy_down = nd.sobel(img, axis=0, mode=mode)  # d/d(row), pointing down
    atol = 1e-12 * _scale(img, 0.0, mode, 8.0)
    e = lambda ang: cn.edge_filter(img, ang, mode=mode)  # noqa: E731
    np.testing.assert_allclose(e(0), sx, atol=atol)
    np.testing.assert_allclose(e(90), -sy_down, atol=atol)   # y points up the image
    np.testing.assert_allclose(e(180), -sx, atol=atol)
    np.testing.assert_allclose(e(270), sy_down, atol=atol)
    np.testing.assert_allclose(e(360), sx, atol=atol)
    for ang in (45, 30, 135, -60, 200.5):
        t = math.radians(ang)
        np.testing.assert_allclose(e(ang), math.cos(t) * sx - math.sin(t) * sy_down, atol=atol)


@pytest.mark.parametrize("mode", MODES)
def test_edge_filter_is_one_correlation(mode):
    """With a nonzero cval, scipy's separable sobel pads its intermediate pass with cval
    too, so it is not one 3x3 correlation; edge_filter is documented as one correlation
    with cos(a) kx - sin(a) ky, and is compared with exactly that."""
    img = make_array(8, (7, 10), np.float64, "int")
    kx, ky = cn.sobel_kernels()
    for ang in (0, 45, 90, 123.4, 270):
        t = math.radians(ang)
        ref = nd.correlate(img, math.cos(t) * kx - math.sin(t) * ky, mode=mode, cval=0.5)
        np.testing.assert_allclose(cn.edge_filter(img, ang, mode=mode, cval=0.5), ref,
                                   atol=1e-12 * _scale(img, 0.5, mode, 8.0))


def test_edge_filter_contrast_convention():
    # dark bottom, bright top: dark -> bright going up the image, so 90 degrees is positive
    img = np.zeros((6, 5))
    img[:3] = 1.0
    assert cn.edge_filter(img, 90)[2:4].min() > 0
    assert cn.edge_filter(img, 270)[2:4].max() < 0
    assert np.allclose(cn.edge_filter(img, 0), 0)
    # dark left, bright right: 0 degrees positive
    img = np.zeros((5, 6))
    img[:, 3:] = 1.0
    assert cn.edge_filter(img, 0)[:, 2:4].min() > 0
    assert cn.edge_filter(img, 180)[:, 2:4].max() < 0
    assert np.allclose(cn.edge_filter(img, 90), 0)


def test_edge_filter_dtype():
    img = make_array(1, (6, 6), np.float32)
    assert cn.edge_filter(img, 30).dtype == np.float32
    assert cn.edge_filter(img.astype(np.float64), 30).dtype == np.float64
    assert cn.edge_filter(img.astype(np.uint8), 30).dtype == np.float64


# ------------------------------------------------------------------ match_template

@settings(max_examples=40)
@given(data=st.data())
def test_match_template_vs_skimage(data):
    ndim = data.draw(st.integers(2, 3), label="ndim")
    shape = data.draw(st.tuples(*[st.integers(2, 12)] * ndim), label="shape")
    tshape = tuple(data.draw(st.integers(1, n), label="tshape") for n in shape)
    if ndim == 3 and data.draw(st.booleans(), label="rgb"):
        shape = shape[:2] + (3,)
        tshape = tshape[:2] + (3,)
    if np.prod(tshape) < 2:
        tshape = (2,) + tshape[1:] if shape[0] >= 2 else tshape
    dtype = data.draw(float_dtypes, label="dtype")
    seed = data.draw(seeds, label="seed")
    img = make_array(seed, shape, dtype, "normal")
    if data.draw(st.booleans(), label="plant"):
        pos = tuple(data.draw(st.integers(0, n - t), label="pos") for n, t in zip(shape, tshape))
        tpl = img[tuple(slice(p, p + t) for p, t in zip(pos, tshape))].copy()
    else:
        tpl = make_array(seed + 1, tshape, dtype, "normal")
    # skimage computes float32 images in float32 and is itself off by up to ~1e-2 on
    # real images; convcore computes in float64 and rounds at the end, so both dtypes
    # are compared with skimage's float64 result.
    expected = skimage.feature.match_template(_f64(img), _f64(tpl), pad_input=False)
    got = cn.match_template(img, tpl)
    assert got.dtype == dtype
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-7 if dtype == np.float64 else 1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_match_template_real_image_vs_skimage(dtype):
    img = skimage.data.camera()[100:228, 200:328].astype(dtype) / 255.0
    tpl = img[40:60, 70:95]
    # reference in float64 (skimage's own float32 path is off by ~8e-3 here)
    expected = skimage.feature.match_template(_f64(img), _f64(tpl), pad_input=False)
    got = cn.match_template(img, tpl)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, expected, atol=1e-7 if dtype == np.float64 else 1e-5)
    assert np.unravel_index(np.argmax(got), got.shape) == (40, 70)
    # an RGB crop
    rgb = skimage.data.chelsea()[50:130, 100:180].astype(dtype) / 255.0
    tpl = rgb[10:30, 22:40]
    expected = skimage.feature.match_template(_f64(rgb), _f64(tpl), pad_input=False)
    got = cn.match_template(rgb, tpl)
    np.testing.assert_allclose(got, expected, atol=1e-7 if dtype == np.float64 else 1e-5)
    assert np.unravel_index(np.argmax(got), got.shape) == (10, 22, 0)


def test_match_template_constant_windows_score_zero():
    img = np.zeros((8, 8))
    img[4:, 4:] = np.arange(16).reshape(4, 4)
    tpl = img[4:7, 4:7].copy()
    got = cn.match_template(img, tpl)
    assert got[0, 0] == 0.0  # flat window
    assert got[4, 4] == pytest.approx(1.0)
    np.testing.assert_allclose(got, skimage.feature.match_template(img, tpl), atol=1e-7)
    # brightness/contrast change of the window still scores 1
    img2 = img.copy()
    img2[4:7, 4:7] = 3.0 * tpl + 5.0
    assert cn.match_template(img2, tpl)[4, 4] == pytest.approx(1.0)
