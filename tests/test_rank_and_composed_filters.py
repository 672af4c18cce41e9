"""Issue 16's new functions against their references: scipy.ndimage's rank filters
(minimum, maximum, median, rank, percentile), Laplace and gradient-magnitude filters,
scipy.signal's fftconvolve / oaconvolve, and scikit-image's match_template with
pad_input / mode / constant_values (its own test scenarios, rewritten, and the function
itself as the reference)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import convcore.ndimage as cn
import convcore.signal as cs

nd = pytest.importorskip("scipy.ndimage")
ss = pytest.importorskip("scipy.signal")

RNG = np.random.default_rng(16)
MODES = ["reflect", "constant", "nearest", "mirror", "wrap", "grid-mirror", "grid-constant", "grid-wrap"]
DTYPES = [np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64, np.uint64, np.float32,
          np.float64, bool]


def _data(shape, dt):
    x = RNG.standard_normal(shape) * 60
    if np.dtype(dt).kind == "u":
        x = np.abs(x)
    return x.astype(dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_rank_filters_equal_scipy_for_every_dtype_and_mode(dt, mode):
    x = _data((23, 31), dt)
    fp = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 1]], bool)
    for cval in (0.0, 17.5, -3.0, 300.0):
        if dt == np.uint64 and cval < 0:
            continue  # (scipy casts it to uint64 as C does, undefined: it gives 0, 2**63 or 7 for the same cval)
        for f, args, kw in [("median_filter", (), dict(size=3)), ("median_filter", (), dict(size=(5, 5))),
                            ("median_filter", (), dict(size=(4, 6))), ("median_filter", (), dict(footprint=fp)),
                            ("minimum_filter", (), dict(size=(3, 4))), ("maximum_filter", (), dict(footprint=fp)),
                            ("rank_filter", (-3,), dict(size=5)), ("rank_filter", (2,), dict(footprint=fp)),
                            ("percentile_filter", (30,), dict(size=(3, 7))),
                            ("percentile_filter", (-20.5,), dict(size=11)),
                            ("minimum_filter1d", (4,), dict(axis=0)), ("maximum_filter1d", (5,), dict(origin=-2))]:
            want = getattr(nd, f)(x, *args, mode=mode, cval=cval, **kw)
            got = getattr(cn, f)(x, *args, mode=mode, cval=cval, **kw)
            assert got.dtype == want.dtype, (f, kw, cval)
            np.testing.assert_array_equal(got, want, err_msg=f"{f} {kw} cval={cval}")


@pytest.mark.parametrize("shape, kw", [((50,), dict(size=7)), ((3, 4, 5), dict(size=(3, 1, 2))),
                                       ((6, 7, 8), dict(footprint=np.ones((2, 3, 2), bool))),
                                       ((6, 7, 8), dict(size=3, axes=(0, 2))),
                                       ((6, 7, 8), dict(size=(2, 3), axes=(-1, 0), origin=(-1, -1))),
                                       ((9, 10), dict(size=3, origin=(1, -1))), ((4, 5), dict(size=9))])
def test_rank_filters_shapes_axes_origins(shape, kw):
    x = _data(shape, np.float64)
    for f in ("median_filter", "minimum_filter", "maximum_filter"):
        np.testing.assert_array_equal(getattr(cn, f)(x, **kw), getattr(nd, f)(x, **kw), err_msg=f"{f} {kw}")
    np.testing.assert_array_equal(cn.percentile_filter(x, 75, **kw), nd.percentile_filter(x, 75, **kw))


def test_per_axis_modes_and_output_arrays():
    x = _data((12, 13), np.int16)
    modes = ["wrap", "constant"]
    np.testing.assert_array_equal(cn.minimum_filter(x, size=3, mode=modes, cval=5),
                                  nd.minimum_filter(x, size=3, mode=modes, cval=5))
    out = np.empty((12, 13), np.float32)
    r = cn.median_filter(x, size=3, output=out)
    assert r is out
    np.testing.assert_array_equal(out, nd.median_filter(x, size=3, output=np.float32))
    # an integer output of a separable filter is stored after each pass, as scipy does
    y = _data((12, 13), np.float64)
    np.testing.assert_array_equal(cn.maximum_filter(y, size=3, output=np.uint8),
                                  nd.maximum_filter(y, size=3, output=np.uint8))


def test_worked_examples():
    a = np.array([2, 8, 0, 4, 1, 9, 9, 0])
    np.testing.assert_array_equal(cn.median_filter(a, size=3), [2, 2, 4, 1, 4, 9, 9, 0])
    np.testing.assert_array_equal(cn.minimum_filter1d(a, 3), [2, 0, 0, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(cn.maximum_filter1d(a, 3), [8, 8, 8, 4, 9, 9, 9, 9])
    img = np.zeros((5, 5))
    img[2, 2] = 1.0
    np.testing.assert_array_equal(cn.laplace(img, mode="constant")[1:4, 1:4], [[0, 1, 0], [1, -4, 1], [0, 1, 0]])


def test_large_windows_and_long_rows_take_the_select_path():
    x = _data((3, 5000), np.float32)
    for size in [(1, 121), (3, 41), (11, 11)]:  # 121 / 123 / 121 values: beyond the networks
        np.testing.assert_array_equal(cn.median_filter(x, size=size), nd.median_filter(x, size=size))
    y = _data((20000,), np.int32)
    np.testing.assert_array_equal(cn.median_filter(y, size=9), nd.median_filter(y, size=9))
    np.testing.assert_array_equal(cn.rank_filter(y, 10, size=25), nd.rank_filter(y, 10, size=25))


def test_box_minima_and_maxima_of_arrays_larger_than_the_cache():
    """An input and output that together fill the last-level cache (32 MiB or more: the
    cache of the machines CI runs on) have their output rows stored past the cache; odd
    row lengths, so each row's vectors start at another alignment; scipy's bits."""
    for shape, dt in [((2049, 2051), np.float32), ((1450, 1453), np.float64)]:
        x = _data(shape, dt)
        x[::97, ::5] = np.inf
        x[3::89, 1::7] = -np.inf
        x[5::13, 2::3] = -0.0
        # (cval -3.0: with the default 0.0, a window holding +0.0 and the data's -0.0 has
        # two equal minima, and which one scipy returns follows the order of its passes)
        for size, mode in [(3, "reflect"), ((2, 5), "constant")]:
            for cc, sp in [(cn.minimum_filter, nd.minimum_filter), (cn.maximum_filter, nd.maximum_filter)]:
                got, want = cc(x, size=size, mode=mode, cval=-3.0), sp(x, size=size, mode=mode, cval=-3.0)
                assert got.dtype == want.dtype
                np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


def test_median_filters_common_call_is_the_general_call():
    """median_filter(array, size=int) with the defaults takes a short path to the kernel:
    the same results (and dtype) as the general argument handling (forced here by naming
    the axes), and scipy's; the arguments it leaves to the general path still checked."""
    for dt in (np.uint8, np.int16, np.uint64, np.float32, np.float64):
        for shape in [(9, 70), (4, 3, 30), (7, 3), (2, 2)]:
            x = _data(shape, dt)
            axes = tuple(range(x.ndim))
            for mode in ["reflect", "nearest", "mirror", "wrap", "grid-mirror", "grid-wrap"]:
                for size in (2, 3, 4, 5):
                    got = cn.median_filter(x, size=size, mode=mode)
                    general = cn.median_filter(x, size=size, mode=mode, axes=axes)
                    assert got.dtype == general.dtype == x.dtype
                    np.testing.assert_array_equal(got, general)
                    np.testing.assert_array_equal(got, nd.median_filter(x, size=size, mode=mode))
    x = _data((6, 6), np.float32)
    with pytest.raises(TypeError):
        cn.median_filter(x, size=3, cval="a")
    with pytest.raises(RuntimeError):
        cn.median_filter(x, size=3, mode=["reflect", "wrap"])
    with pytest.raises(ValueError):
        cn.median_filter(x, size=3, mode="bogus")


def test_rank_filters_bad_input():
    x = np.zeros((4, 4))
    with pytest.raises(TypeError):
        cn.median_filter(x + 1j, size=3)
    with pytest.raises(RuntimeError):  # scipy's types: no size nor footprint, rank outside
        cn.median_filter(x)
    with pytest.raises(ValueError):
        cn.median_filter(x)
    with pytest.raises(RuntimeError):
        cn.rank_filter(x, 9, size=3)
    with pytest.raises(RuntimeError):
        cn.percentile_filter(x, 101, size=3)
    with pytest.raises(ValueError, match="origin"):
        cn.median_filter(x, size=3, origin=2)
    with pytest.raises(ValueError, match="All-zero|all-zero"):
        cn.minimum_filter(x, footprint=np.zeros((3, 3)))
    with pytest.raises(RuntimeError, match="sequence of modes"):
        cn.median_filter(x, size=3, mode=["reflect", "wrap"])
    with pytest.raises(TypeError):
        cn.rank_filter(x, 1.5, size=3)
    with pytest.raises(RuntimeError, match="filter size"):
        cn.minimum_filter1d(x, 0)
    with pytest.raises(MemoryError):
        cn.maximum_filter(np.zeros(3), size=2 ** 50)
    with pytest.warns(UserWarning, match="ignoring size"):
        cn.median_filter(x, size=3, footprint=np.ones((3, 3)))


def test_rank_filters_are_thread_safe():
    x = _data((256, 256), np.uint8)
    want = nd.median_filter(x, size=5)
    errors = []

    def work():
        for _ in range(5):
            if not np.array_equal(cn.median_filter(x, size=5), want):
                errors.append("mismatch")
    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


@pytest.mark.parametrize("dt", [np.float64, np.float32, np.int16, np.complex128, np.complex64])
def test_laplace_and_gradient_magnitudes_equal_scipy(dt):
    x = _data((17, 19, 5), np.float64).astype(dt)
    if np.dtype(dt).kind == "c":
        x = x + 1j * _data((17, 19, 5), np.float64).astype(dt)
    tol = 1e-4 if np.dtype(dt) in (np.float32, np.complex64) else 1e-9
    scale = np.abs(x).max()
    for mode in ("reflect", ["wrap", "nearest", "constant"]):
        for f, args, kw in [("laplace", (), {}), ("gaussian_laplace", (1.5,), {}),
                            ("gaussian_laplace", ([1.0, 2.0],), dict(axes=(0, 2))),
                            ("gaussian_gradient_magnitude", (2.0,), {}),
                            ("gaussian_laplace", (1.0,), dict(truncate=2.0))]:
            if np.dtype(dt).kind == "c" and "gradient" in f:
                continue  # (the complex square root's branch depends on signed zeros)
            m = mode if not isinstance(mode, list) or "axes" not in kw else mode[:2]
            want = getattr(nd, f)(x, *args, mode=m, cval=2.5, **kw)
            got = getattr(cn, f)(x, *args, mode=m, cval=2.5, **kw)
            assert got.dtype == want.dtype
            if want.dtype.kind in "iu":  # (a sum within rounding of an integer may truncate either way)
                assert np.abs(got.astype(np.int64) - want).max() <= 1
            else:
                np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale, err_msg=f"{f} {mode} {kw}")


def test_generic_forms_call_the_given_derivative():
    x = _data((8, 9), np.float64)

    def d2(inp, axis, output, mode, cval, k):
        return cn.correlate1d(inp, k, axis, output, mode, cval)

    def d2_ref(inp, axis, output, mode, cval, k):
        return nd.correlate1d(inp, k, axis, output, mode, cval)
    k = [1.0, -2.0, 1.0]
    np.testing.assert_allclose(cn.generic_laplace(x, d2, extra_arguments=(k,)),
                               nd.generic_laplace(x, d2_ref, extra_arguments=(k,)), atol=1e-12)
    np.testing.assert_allclose(cn.generic_gradient_magnitude(x, d2, extra_keywords={"k": [-1.0, 0, 1.0]}),
                               nd.generic_gradient_magnitude(x, d2_ref, extra_keywords={"k": [-1.0, 0, 1.0]}),
                               atol=1e-12)
    with pytest.raises(TypeError):
        cn.generic_laplace(x, None)


@pytest.mark.parametrize("f", ["fftconvolve", "oaconvolve"])
def test_fft_convolutions_equal_scipy(f):
    cases = [((1000,), (31,), None), ((7, 40), (3, 9), None), ((7, 40), (1, 9), [1]), ((5, 40), (5, 9), 1),
             ((4, 1, 30), (1, 6, 7), (2,)), ((3, 4, 5), (3, 4, 5), None), ((8,), (20,), None),
             ((2, 3000), (2, 100), -1)]
    for s1, s2, axes in cases:
        for dt in (np.float64, np.float32, np.int16, np.complex128, bool):
            a, b = _data(s1, dt), _data(s2, dt)
            for mode in ("full", "same", "valid"):
                try:
                    want = getattr(ss, f)(a, b, mode=mode, axes=axes)
                except ValueError:
                    with pytest.raises(ValueError):
                        getattr(cs, f)(a, b, mode=mode, axes=axes)
                    continue
                got = getattr(cs, f)(a, b, mode=mode, axes=axes)
                assert got.shape == want.shape and got.dtype == want.dtype, (s1, s2, axes, dt, mode)
                scale = np.abs(a).max() * np.abs(b).sum() + 1
                tol = 1e-5 if np.dtype(dt) == np.float32 else 1e-11
                np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale)
    with pytest.raises(ValueError, match="axes exceeds dimensionality"):
        getattr(cs, f)([1.0], [2.0], axes=[1])
    with pytest.raises(ValueError, match="acceptable mode flags"):
        getattr(cs, f)([1.0], [2.0], mode="chips")
    assert getattr(cs, f)(np.zeros(0), np.ones(3)).size == 0


# ------------------------------------------------------------------ match_template
skf = pytest.importorskip("skimage.feature")


@pytest.mark.parametrize("pad_input", [False, True])
@pytest.mark.parametrize("mode, cv", [("constant", 0), ("constant", 33.0), ("reflect", 0), ("edge", 0),
                                      ("wrap", 0), ("symmetric", 0), ("linear_ramp", 0), ("mean", 0)])
def test_match_template_equals_scikit_image(pad_input, mode, cv):
    for ishape, tshape, dt in [((30, 40), (5, 7), np.float64), ((30, 40), (4, 6), np.float32),
                               ((12, 12, 12), (3, 4, 3), np.float64), ((9, 19), (5, 5), np.uint8),
                               ((20, 20), (20, 20), np.float64)]:
        img, tpl = (RNG.random(ishape) * 100).astype(dt), (RNG.random(tshape) * 100).astype(dt)
        want = skf.match_template(img, tpl, pad_input=pad_input, mode=mode, constant_values=cv)
        got = cn.match_template(img, tpl, pad_input=pad_input, mode=mode, constant_values=cv)
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 if dt == np.float32 else 1e-9)


def _diamond(r):
    i, j = np.mgrid[-r:r + 1, -r:r + 1]
    return (np.abs(i) + np.abs(j) <= r).astype(np.uint8)


def test_match_template_scikit_image_scenarios():
    # scikit-image's test_pad_input: two full templates and two half ones at the edges
    template = 0.5 * _diamond(2)
    image = 0.5 * np.ones((9, 19))
    mid = slice(2, 7)
    image[mid, :3] -= template[:, -3:]
    image[mid, 4:9] += template
    image[mid, -9:-4] -= template
    image[mid, -3:] += template[:, :3]
    result = cn.match_template(image, template, pad_input=True, constant_values=image.mean())
    order = np.argsort(result.flat)
    assert tuple(np.unravel_index(order[:2], result.shape)[1]) == (12, 0)
    assert tuple(np.unravel_index(order[-2:], result.shape)[1]) == (18, 6)
    # test_3d / test_3d_pad_input
    tpl = np.random.RandomState(3113877123).rand(3, 3, 3)
    vol = np.zeros((12, 12, 12))
    vol[3:6, 5:8, 4:7] = tpl
    r = cn.match_template(vol, tpl)
    assert r.shape == (10, 10, 10) and np.unravel_index(r.argmax(), r.shape) == (3, 5, 4)
    r = cn.match_template(vol, tpl, pad_input=True)
    assert r.shape == (12, 12, 12) and np.unravel_index(r.argmax(), r.shape) == (4, 6, 5)
    # test_padding_reflect
    d = _diamond(2)
    img = np.zeros((10, 10))
    img[2:7, :3] = d[:, -3:]
    r = cn.match_template(img, d, pad_input=True, mode="reflect")
    assert np.unravel_index(r.argmax(), r.shape) == (4, 0)
    # test_no_nans, test_switched_arguments, test_wrong_input
    noisy = 0.5 + 1e-9 * np.random.RandomState(2813589124).normal(size=(20, 20))
    t = np.ones((6, 6))
    t[:3] = 0
    assert not np.isnan(cn.match_template(noisy, t)).any()
    with pytest.raises(ValueError):
        cn.match_template(np.ones((3, 3)), np.ones((5, 5)))
    with pytest.raises(ValueError):
        cn.match_template(np.ones((3, 3)), np.ones((5, 5, 1)))
    with pytest.raises(ValueError):
        cn.match_template(np.ones((3, 3, 2)), np.ones((5, 5, 3, 3)))
    with pytest.raises(ValueError):
        cn.match_template(np.ones((5, 5)), np.ones((3, 3)), pad_input=True, mode="bogus")
