"""Bad arguments raise ValueError / TypeError / MemoryError with useful messages;
NaN and inf propagate as in scipy; a fuzz test over every public function."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.ndimage as nd
import scipy.signal as ss
import skimage.feature
from hypothesis import given, settings, strategies as st

import convcore
from convcore import ndimage as cn
from convcore import signal as cs

from conftest import RTOL, scale_of
from test_pooling import ref_pool

z = np.zeros
OK_ERRORS = (ValueError, TypeError, MemoryError)


def raises(exc, fn, *parts):
    """``fn()`` raises ``exc`` and the message contains every string in ``parts``."""
    with pytest.raises(exc) as info:
        fn()
    msg = str(info.value)
    for p in parts:
        assert p in msg, f"{p!r} not in message {msg!r}"
    return msg


SIGNAL = [("correlate", convcore.correlate), ("convolve", convcore.convolve),
          ("correlate2d", convcore.correlate2d), ("convolve2d", convcore.convolve2d)]
NDIMAGE2 = [("correlate", cn.correlate), ("convolve", cn.convolve)]
NDIMAGE1 = [("correlate1d", cn.correlate1d), ("convolve1d", cn.convolve1d)]
UNARY = {
    "uniform_filter": lambda a: cn.uniform_filter(a, 3),
    "uniform_filter1d": lambda a: cn.uniform_filter1d(a, 3),
    "gaussian_filter": lambda a: cn.gaussian_filter(a, 1.0),
    "gaussian_filter1d": lambda a: cn.gaussian_filter1d(a, 1.0),
    "sobel": lambda a: cn.sobel(a),
    "prewitt": lambda a: cn.prewitt(a),
    "edge_filter": lambda a: cn.edge_filter(a, 30),
    "max_pool": lambda a: convcore.max_pool(a, 1),
    "avg_pool": lambda a: convcore.avg_pool(a, 1),
    "correlate1d": lambda a: cn.correlate1d(a, [1.0, 2.0]),
    "ndimage.correlate": lambda a: cn.correlate(a, np.ones((1,) * max(np.ndim(a), 1))),
    "match_template": lambda a: cn.match_template(a, np.ones((1,) * max(np.ndim(a), 1))),
    "correlate": lambda a: convcore.correlate(a, np.ones((1,) * max(np.ndim(a), 1))),
    "correlate2d": lambda a: convcore.correlate2d(a, np.ones((1, 1))),
}


# ------------------------------------------------------------------ shapes and ndim

@pytest.mark.parametrize("name,fn", SIGNAL)
def test_signal_mismatched_ndim(name, fn):
    if name.endswith("2d"):
        raises(ValueError, lambda: fn(z((3, 3)), z(3)), "2-D", "[3, 3]", "[3]")
        raises(ValueError, lambda: fn(z((3, 3, 3)), z((3, 3, 3))), "2-D", "[3, 3, 3]")
        raises(ValueError, lambda: fn(z(4), z(3)), "2-D", "[4]", "[3]")
    else:
        raises(ValueError, lambda: fn(z((3, 3)), z(3)), "dimensionality", "[3, 3]", "[3]")
        raises(ValueError, lambda: fn(z(3), z((1, 1, 3))), "[3]", "[1, 1, 3]")
        raises(ValueError, lambda: fn(2.0, z(3)), "[3]")
        # the other order too (it was a TypeError naming dtypes before)
        raises(ValueError, lambda: fn(z(3), 2.0), "dimensionality", "[3]", "[]")


@pytest.mark.parametrize("name,fn", SIGNAL)
@pytest.mark.parametrize("s1,s2", [((0,), (3,)), ((3,), (0,)), ((0, 3), (2, 2)), ((2, 2), (2, 0)), ((0, 0), (0, 0))])
def test_signal_empty(name, fn, s1, s2):
    if name.endswith("2d") and len(s1) != 2:
        s1, s2 = (1,) + s1, (1,) + s2
    raises(ValueError, lambda: fn(z(s1), z(s2)), "empty", str(list(s1)), str(list(s2)))


@pytest.mark.parametrize("name,fn", SIGNAL)
def test_signal_valid_neither_contains_other(name, fn):
    raises(ValueError, lambda: fn(z((3, 5)), z((5, 3)), "valid"), "valid", "[3, 5]", "[5, 3]")
    raises(ValueError, lambda: fn(z((4, 4)), z((2, 5)), mode="valid"), "valid", "[4, 4]", "[2, 5]")


@pytest.mark.parametrize("name,fn", SIGNAL)
@pytest.mark.parametrize("mode", ["bogus", "", "FULL", "Same", "reflect"])
def test_signal_unknown_mode(name, fn, mode):
    raises(ValueError, lambda: fn(z((3, 3)), z((2, 2)), mode), f'"{mode}"')


def test_unknown_method_and_boundary():
    raises(ValueError, lambda: convcore.correlate(z(3), z(2), "full", "fast"), "'fast'")
    raises(ValueError, lambda: convcore.convolve(z(3), z(2), "full", "FFT"), "'FFT'")
    for fn in (convcore.correlate2d, convcore.convolve2d):
        raises(ValueError, lambda: fn(z((3, 3)), z((2, 2)), "same", "reflect"), "reflect")
        raises(ValueError, lambda: fn(z((3, 3)), z((2, 2)), "same", "bogus"), "bogus")
        raises(ValueError, lambda: fn(z((3, 3)), z((2, 2)), "same", "fill", [1.0, 2.0]), "(2,)")
        raises(TypeError, lambda: fn(z((3, 3)), z((2, 2)), "same", "fill", "x"), "'x'")
        # scipy: a Python complex fill value cannot be cast to a real result (ValueError)
        raises(ValueError, lambda: fn(z((3, 3)), z((2, 2)), "same", "fill", 1 + 2j), "(1+2j)", "fillvalue")


def test_non_string_mode_is_type_or_value_error():
    for fn in (lambda: convcore.correlate(z(3), z(2), None), lambda: convcore.correlate2d(z((2, 2)), z((1, 1)), 3),
               lambda: cn.correlate(z(3), z(2), mode=None), lambda: cn.gaussian_filter(z(3), 1, mode=1),
               lambda: convcore.max_pool(z(4), 2, padding=None), lambda: convcore.correlate(z(3), z(2), method=None)):
        with pytest.raises((TypeError, ValueError)):
            fn()


@pytest.mark.parametrize("name,fn", NDIMAGE2)
def test_ndimage_shapes(name, fn):
    raises(ValueError, lambda: fn(z((3, 3)), z(3)), "(3, 3)", "(3,)")
    empty = fn(z((0, 3)), z((1, 1)))  # an empty input gives an empty result, as scipy
    assert empty.shape == (0, 3) and empty.dtype == np.float64
    raises(ValueError, lambda: fn(z((3, 3)), z((0, 1))), "empty", "[0, 1]")
    raises(ValueError, lambda: fn(np.float64(1.0), np.float64(1.0)), "0-d")
    raises(ValueError, lambda: fn(z((3, 3)), z((3, 3)), origin=[0, 0, 0]), "[0, 0, 0]")


@pytest.mark.parametrize("name,fn", NDIMAGE2 + NDIMAGE1)
@pytest.mark.parametrize("mode", ["bogus", "", "symm", "fill", "Reflect"])
def test_ndimage_unknown_mode(name, fn, mode):
    w = z(3) if name.endswith("1d") else z((3, 3))
    raises(ValueError, lambda: fn(z((4, 4)), w, mode=mode), f'"{mode}"')


@pytest.mark.parametrize("name,fn", NDIMAGE2 + NDIMAGE1)
@pytest.mark.parametrize("n,origin", [(3, 2), (3, -2), (4, 2), (4, -3), (1, 1), (1, -1), (5, 3)])
def test_ndimage_invalid_origin(name, fn, n, origin):
    w = z(n) if name.endswith("1d") else z((n, n))
    # scipy rejects the same origins
    sfn = getattr(nd, name)
    with pytest.raises(ValueError):
        sfn(z((6, 6)), w, origin=origin)
    raises(ValueError, lambda: fn(z((6, 6)), w, origin=origin), "origin")


def test_ndimage_1d_specific():
    for fn in (cn.correlate1d, cn.convolve1d):
        raises(ValueError, lambda: fn(z(5), [[1.0, 1.0]]), "(1, 2)")
        raises(ValueError, lambda: fn(z(5), []), "empty")
        raises(ValueError, lambda: fn(z(5), [1.0], axis=1), "axis 1")
        raises(ValueError, lambda: fn(z((5, 4)), [1.0], axis=-3), "axis -3")
        assert fn(z((3, 0)), [1.0]).shape == (3, 0)  # empty in, empty out (scipy)
        raises(TypeError, lambda: fn(z(5), [1.0], axis="x"), "'x'")


def test_filter_parameters():
    np.testing.assert_array_equal(cn.uniform_filter(np.arange(5.0), 0), np.arange(5.0))  # size 0: no filter (scipy)
    raises(ValueError, lambda: cn.uniform_filter(z(5), -1), "-1")
    raises(ValueError, lambda: cn.uniform_filter1d(z(5), 0), "0")
    raises(ValueError, lambda: cn.uniform_filter(z((5, 5)), (3, 3, 3)), "(3, 3, 3)")
    raises(ValueError, lambda: cn.gaussian_filter(z(5), -1.0), "-1")
    raises(ValueError, lambda: cn.gaussian_filter1d(z(5), 0.0), "0")
    raises(ValueError, lambda: cn.gaussian_filter1d(z(5), 1.0, order=-1), "-1")
    raises(ValueError, lambda: cn.gaussian_filter(z((5, 5)), [1.0, 2.0, 3.0]), "[1.0, 2.0, 3.0]")
    raises(ValueError, lambda: cn.gaussian_filter(z((5, 5)), 1.0, axes=[0, 0]), "[0, 0]")
    raises(ValueError, lambda: cn.sobel(z(4), axis=3), "axis 3")
    raises(ValueError, lambda: cn.prewitt(z((4, 4)), axis=-3), "axis -3")
    raises(TypeError, lambda: cn.correlate(z(3), z(3), cval="a"), "'a'")
    raises(ValueError, lambda: cn.correlate(z((3, 3)), z((3, 3)), output=z((2, 2))), "(2, 2)", "(3, 3)")
    raises(TypeError, lambda: cn.correlate(z((3, 3)), z((3, 3)), output=np.complex128), "complex")
    raises(RuntimeError, lambda: cn.correlate(z((3, 3)), z((3, 3)), output=np.complex128), "complex")  # scipy's type
    raises(RuntimeError, lambda: cn.correlate(z((3, 3)) + 0j, z((3, 3)), output=z((3, 3))), "complex")
    raises(RuntimeError, lambda: cn.correlate(z((3, 3)) + 0j, z((3, 3)), output="float64"), "complex")
    raises(ValueError, lambda: cn.correlate(z((3, 3)), z((3, 3)) + 1j, cval=1j), "complex-valued cval")
    for fn in (lambda: cn.gaussian_filter(z(3).astype(np.float16), 1.0),
               lambda: cn.correlate1d(z(3), [1.0], output=np.float16),
               lambda: cn.uniform_filter(z(3).astype(np.longdouble), 3)):
        raises(TypeError, fn, "not supported")
        raises(RuntimeError, fn, "not supported")  # scipy.ndimage's type


def test_edge_and_template_shapes():
    raises(ValueError, lambda: cn.edge_filter(z(4), 0), "(4,)")
    raises(ValueError, lambda: cn.edge_filter(z((2, 2, 2)), 0), "(2, 2, 2)")
    assert cn.edge_filter(z((0, 4)), 0).shape == (0, 4)
    raises(ValueError, lambda: cn.edge_filter(z((3, 4)), 0, mode="bogus"), "bogus")
    raises(ValueError, lambda: cn.match_template(z((4, 4)), z(2)), "(2,)", "(4, 4)")
    raises(ValueError, lambda: cn.match_template(z((4, 4)), z((5, 2))), "(5, 2)", "(4, 4)")
    raises(ValueError, lambda: cn.match_template(z((4, 4)), z((0, 2))), "(0, 2)")
    raises(ValueError, lambda: cn.match_template(z((0, 4)), z((0, 2))), "(0, 4)")


def test_kernel_builder_parameters():
    raises(ValueError, lambda: cn.uniform_kernel(0), "k=0")
    raises(ValueError, lambda: cn.uniform_kernel(3, 0), "ndim=0")
    raises(ValueError, lambda: cn.gaussian_kernel(0, 1.0), "k=0")
    raises(ValueError, lambda: cn.gaussian_kernel(3, 0.0), "0.0")
    raises(ValueError, lambda: cn.gaussian_kernel(3, -1.0), "-1.0")
    raises(ValueError, lambda: cn.gaussian_kernel(3, float("nan")), "nan")


# ------------------------------------------------------------------ pooling arguments

@pytest.mark.parametrize("fn", [convcore.max_pool, convcore.avg_pool])
def test_pool_arguments(fn):
    raises(ValueError, lambda: fn(z((3, 3)), (4, 4)), "[4, 4]", "valid")
    raises(ValueError, lambda: fn(z((5, 3)), (2, 4)), "4 > 3")
    raises(ValueError, lambda: fn(z(2), 3), "3")
    raises(ValueError, lambda: fn(z((3, 3)), (2, 2), padding="bogus"), "bogus")
    raises(ValueError, lambda: fn(z((3, 3)), (2, 2), padding="full"), "full")
    raises(TypeError, lambda: fn(z((3, 3)), (2, 2), padding=None), "None")
    raises(ValueError, lambda: fn(z((3, 3)), (0, 2)), "(0, 2)")
    raises(ValueError, lambda: fn(z((3, 3)), (-1, 2)), "(-1, 2)")
    raises(ValueError, lambda: fn(z((3, 3)), (2, 2), strides=0), "0")
    raises(ValueError, lambda: fn(z((3, 3)), (2, 2), strides=(1, 1, 1)), "(1, 1, 1)")
    raises(ValueError, lambda: fn(z((3, 3)), (1.5, 2)), "1.5")
    raises(TypeError, lambda: fn(z((3, 3)), ("a", 2)), "'a'")
    raises(ValueError, lambda: fn(z((0, 3)), (1, 2)), "[1, 0, 3, 1]")
    raises(ValueError, lambda: fn(z((3, 3, 0)), 2), "0")
    raises(ValueError, lambda: fn(z((0, 3)), (1, 2), padding="same"), "0")
    raises(ValueError, lambda: fn(z((2,) * 6), 2), "6-D")
    raises(ValueError, lambda: fn(np.float64(1.0), 2), "0-D")
    raises(ValueError, lambda: fn(z((3, 3, 3, 3)), (1, 1, 1, 1)), "(1, 1, 1, 1)")
    raises(ValueError, lambda: fn(z(3), (1, 1)), "(3,)")
    raises(ValueError, lambda: fn(z((2,) * 6), (1, 1)), "(2, 2, 2, 2, 2, 2)")


# ------------------------------------------------------------------ dtypes

#: Functions that take complex input, as their scipy namesakes.
COMPLEX_OK = {"uniform_filter", "uniform_filter1d", "gaussian_filter", "gaussian_filter1d", "sobel", "prewitt",
              "correlate1d", "ndimage.correlate", "correlate", "correlate2d"}

BAD_DTYPES = {
    "object": np.array([[1.0, 2.0], [3.0, 4.0]], dtype=object),
    "str": np.array([["a", "b"], ["c", "d"]]),
    "bytes": np.array([[b"a", b"b"], [b"c", b"d"]]),
    "complex64": np.ones((2, 2), dtype=np.complex64),
    "complex128": np.ones((2, 2), dtype=np.complex128),
    "datetime": np.array([["2020-01-01"] * 2] * 2, dtype="datetime64[D]"),
}


@pytest.mark.parametrize("kind", list(BAD_DTYPES))
@pytest.mark.parametrize("name", list(UNARY))
def test_bad_dtypes_raise_type_error(name, kind):
    a = BAD_DTYPES[kind]
    if name in COMPLEX_OK and kind.startswith("complex"):
        assert UNARY[name](a).dtype.kind == "c"  # filtered, as scipy
        return
    msg = raises(TypeError, lambda: UNARY[name](a))
    assert str(a.dtype) in msg or "complex" in msg, msg


@pytest.mark.parametrize("kind", list(BAD_DTYPES))
def test_bad_dtype_as_second_argument(kind):
    k = BAD_DTYPES[kind]
    if kind.startswith("complex"):  # complex weights: a complex result, as scipy
        for fn in (convcore.correlate, convcore.convolve, convcore.correlate2d, convcore.convolve2d,
                   cn.correlate, cn.convolve):
            assert fn(np.ones((3, 3)), k).dtype.kind == "c"
        raises(TypeError, lambda: cn.match_template(np.ones((3, 3)), k))
        return
    for fn in (convcore.correlate, convcore.convolve, convcore.correlate2d, convcore.convolve2d,
               cn.correlate, cn.convolve, cn.match_template):
        raises(TypeError, lambda: fn(np.ones((3, 3)), k))
    raises(TypeError, lambda: cn.correlate1d(np.ones(3), k[0]))


def test_ragged_input_is_value_error():
    raises(ValueError, lambda: convcore.correlate([[1.0], [1.0, 2.0]], [1.0]), "in1")
    raises(ValueError, lambda: cn.correlate(np.ones((2, 2)), [[1.0], [1.0, 2.0]]), "weights")


# ------------------------------------------------------------------ NaN and inf

def _specials(seed, shape, p=0.15):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    m = rng.random(shape)
    a[m < p] = np.nan
    a[(m >= p) & (m < 2 * p)] = np.inf
    a[(m >= 2 * p) & (m < 3 * p)] = -np.inf
    return a


@pytest.mark.parametrize("mode", ["full", "valid", "same"])
@pytest.mark.parametrize("func", ["correlate", "convolve"])
@pytest.mark.parametrize("shapes", [((9,), (3,)), ((6, 7), (3, 2)), ((4, 3, 5), (2, 2, 3))])
def test_nonfinite_in_first_input_direct(shapes, func, mode):
    for seed in range(5):
        a = _specials(seed, shapes[0])
        b = np.random.default_rng(seed + 100).standard_normal(shapes[1])
        with np.errstate(invalid="ignore"):
            expected = getattr(ss, func)(a, b, mode=mode, method="direct")
        got = getattr(convcore, func)(a, b, mode=mode, method="direct")
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("mode", ["full", "valid", "same"])
@pytest.mark.parametrize("shapes", [((9,), (3,)), ((6, 7), (3, 2))])
def test_nonfinite_in_second_input_direct(shapes, mode):
    """Products are taken only where the inputs overlap (the docstring's formula and
    scipy's): an inf in in2 must not meet the zero fill outside in1 and make NaN."""
    for seed in range(5):
        a = np.random.default_rng(seed + 100).standard_normal(shapes[0])
        b = _specials(seed, shapes[1], p=0.2)
        with np.errstate(invalid="ignore"):
            expected = ss.correlate(a, b, mode=mode, method="direct")
        got = convcore.correlate(a, b, mode=mode, method="direct")
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, equal_nan=True,
                                   err_msg=f"a={a!r} b={b!r}")


@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
def test_nonfinite_correlate2d(boundary):
    for seed in range(5):
        a = _specials(seed, (6, 5))
        b = np.random.default_rng(seed).standard_normal((3, 3))
        for mode in ("full", "valid", "same"):
            with np.errstate(invalid="ignore"):
                expected = ss.convolve2d(a, b, mode=mode, boundary=boundary, fillvalue=1.0)
            got = convcore.convolve2d(a, b, mode=mode, boundary=boundary, fillvalue=1.0)
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("mode", ["reflect", "constant", "nearest", "mirror", "wrap"])
def test_nonfinite_ndimage(mode):
    for seed in range(5):
        a = _specials(seed, (7, 6))
        w = np.random.default_rng(seed).standard_normal((3, 2))
        with np.errstate(invalid="ignore"):
            pairs = [
                (cn.correlate(a, w, mode=mode, cval=2.0), nd.correlate(a, w, mode=mode, cval=2.0)),
                (cn.convolve(a, w, mode=mode), nd.convolve(a, w, mode=mode)),
                (cn.correlate1d(a, w[:, 0], axis=0, mode=mode), nd.correlate1d(a, w[:, 0], axis=0, mode=mode)),
                # scipy's uniform_filter keeps a running sum, so one inf turns the rest of
                # the line into inf - inf = NaN; the reference is the moving average itself
                (cn.uniform_filter(a, 3, mode=mode), nd.correlate(a, np.full((3, 3), 1 / 9), mode=mode)),
                (cn.gaussian_filter(a, 0.7, mode=mode), nd.gaussian_filter(a, 0.7, mode=mode)),
                (cn.sobel(a, axis=0, mode=mode), nd.sobel(a, axis=0, mode=mode)),
                (cn.prewitt(a, axis=1, mode=mode), nd.prewitt(a, axis=1, mode=mode)),
            ]
        for i, (got, expected) in enumerate(pairs):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=str(i))


def test_nonfinite_pooling():
    for seed in range(5):
        a = _specials(seed, (7, 8))
        for padding in ("valid", "same"):
            np.testing.assert_array_equal(convcore.max_pool(a, (2, 3), padding=padding),
                                          ref_pool(a, "max", (2, 3), (2, 3), padding, 0))
            with np.errstate(invalid="ignore"):
                ref = ref_pool(a, "avg", (2, 3), (2, 3), padding, 0)
            np.testing.assert_allclose(convcore.avg_pool(a, (2, 3), padding=padding), ref,
                                       rtol=1e-12, equal_nan=True)


def test_nonfinite_fft_spreads_like_scipy():
    """With method='fft' any non-finite input makes the whole result non-finite in scipy;
    convcore must not return finite garbage either."""
    a = np.random.default_rng(0).standard_normal((40, 40))
    a[3, 4] = np.nan
    b = np.ones((5, 5))
    got = convcore.correlate(a, b, method="fft")
    assert not np.isfinite(got[3 + 4, 4 + 4])  # the full-mode output over the NaN
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy warns about NaN with fft
        assert not np.isfinite(ss.correlate(a, b, method="fft")[7, 8])


# ------------------------------------------------------------------ absurd sizes

HUGE = 2 ** 20  # (HUGE, 1) x (1, HUGE) in 'full' is 2**40 outputs: 8 TiB of float64


@pytest.mark.parametrize("method", ["direct", "fft", "auto"])
def test_huge_output_is_memory_error(method):
    a, b = np.ones((HUGE, 1)), np.ones((1, HUGE))  # 8 MiB each
    raises(MemoryError, lambda: convcore.correlate(a, b, "full", method))
    raises(MemoryError, lambda: convcore.convolve(a.astype(np.float32), b.astype(np.float32), "full", method))


def test_huge_output_2d_is_memory_error():
    a, b = np.ones((HUGE, 1)), np.ones((1, HUGE))
    for boundary in ("fill", "wrap", "symm"):
        raises(MemoryError, lambda: convcore.correlate2d(a, b, "full", boundary))


def test_huge_broadcast_input_is_memory_error():
    big = np.broadcast_to(np.ones(1), (2 ** 40,))  # zero strides: no real memory
    raises(MemoryError, lambda: convcore.correlate(np.ones(1), big, "full"))
    big2 = np.broadcast_to(np.ones((1, 1)), (2 ** 20, 2 ** 20))
    raises(MemoryError, lambda: convcore.correlate(big2, np.ones((1, 1)), "same"))
    raises(MemoryError, lambda: cn.correlate(big2, np.ones((1, 1))))
    raises(MemoryError, lambda: convcore.max_pool(big2, (2, 2)))
    raises(MemoryError, lambda: convcore.avg_pool(big2, (1, 1), padding="same"))


# ------------------------------------------------------------------ fuzz

FUZZ_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint16, np.bool_,
               np.complex128, object]
MODE_STRINGS = ["full", "valid", "same", "reflect", "constant", "nearest", "mirror", "wrap", "grid-wrap",
                "fill", "symm", "bogus", "", "FULL", "Valid"]


def _out_dtype(*arrays):
    if all(a.dtype.kind == "f" and a.dtype.itemsize <= 4 for a in arrays):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


@st.composite
def fuzz_arrays(draw, ndim=None, max_side=5):
    nd_ = draw(st.integers(0, 4)) if ndim is None else ndim
    shape = tuple(draw(st.lists(st.integers(0, max_side), min_size=nd_, max_size=nd_)))
    dtype = draw(st.sampled_from(FUZZ_DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    vals = rng.integers(-4, 5, size=shape) if draw(st.booleans()) else rng.standard_normal(shape) * 3
    if np.dtype(dtype).kind in "ub":
        vals = np.abs(vals)
    a = np.asarray(vals).astype(dtype)
    how = draw(st.sampled_from(["c", "f", "neg", "step", "T"]))
    if how == "f":
        a = np.asfortranarray(a)
    elif how == "neg" and a.ndim:
        a = np.flip(np.flip(a).copy())
    elif how == "step" and a.ndim:
        big = np.zeros(tuple(2 * n for n in a.shape), dtype=a.dtype)
        idx = tuple(slice(None, None, 2) for _ in a.shape)
        big[idx] = a
        a = big[idx]
    elif how == "T":
        a = np.ascontiguousarray(a.T).T  # same values, transposed (Fortran-like) layout
    return a


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _up(a, up):
    """``a`` itself, or (``up``) in the type scipy computes every dtype in: float64, or
    complex128 for complex input; for the references scipy has no kernel for (its N-D
    direct path refuses float16 and bool)."""
    if not up:
        return a
    return np.asarray(a, dtype=np.complex128 if np.asarray(a).dtype.kind == "c" else np.float64)


def _compare(got, expected, inputs, which):
    """``got`` has scipy's dtype and shape and equals the reference within the dtype's
    rtol plus rtol * natural scale (max|input| or the fill value, times sum|weights|;
    see conftest.scale_of). Integer results of scipy.ndimage are truncated from float
    sums, so they may differ by a few units where a sum lies within rounding of an
    integer (modulo the type's range); bool results are checked for dtype and shape."""
    expected = np.asarray(expected)
    assert isinstance(got, (np.ndarray, np.generic)), type(got)
    got = np.asarray(got)
    if which in ("match_template", "edge_filter"):  # no scipy namesake: the package's float rule
        assert got.dtype == _out_dtype(*inputs[:1]), f"dtype {got.dtype}, expected {_out_dtype(*inputs[:1])}"
    elif which in ("max_pool", "avg_pool", "uniform_kernel", "gaussian_kernel"):
        assert got.dtype == _out_dtype(*inputs), f"dtype {got.dtype}, expected {_out_dtype(*inputs)}"
    else:
        assert got.dtype == expected.dtype, f"dtype {got.dtype}, expected scipy's {expected.dtype}"
    assert got.shape == expected.shape, f"shape {got.shape}, expected {expected.shape}"
    if got.dtype.kind == "b":
        return
    if got.dtype.kind in "iu":
        if not which.startswith(NDIMAGE_NAMES):
            np.testing.assert_array_equal(got, expected)  # scipy.signal: exact integer arithmetic
            return
        bits = 8 * got.dtype.itemsize
        d = (got.astype(object) - expected.astype(object)) % (2 ** bits)
        d = np.minimum(d, 2 ** bits - d) if d.size else d
        assert d.size == 0 or int(np.max(d)) <= 8, f"integer result off by {int(np.max(d))}"
        return
    real = np.dtype(f"f{got.dtype.itemsize // 2}") if got.dtype.kind == "c" else got.dtype
    if which == "match_template" or which.startswith(NDIMAGE_NAMES):
        dt = _out_dtype(inputs[0])  # ndimage: the input's float type decides (weights are cast)
    else:
        dt = _out_dtype(*inputs)
    dt = np.dtype(np.float32) if real.itemsize <= 4 or dt == np.float32 else np.dtype(np.float64)
    r = RTOL[dt] * (50 if real.itemsize < 4 else 1)  # float16: rounded once at the end
    amax = max(float(np.abs(np.asarray(inputs[0], dtype=np.complex128)).max(initial=0.0)), 2.0)  # 2.0: largest |cval|
    if which == "match_template":
        atol = 1e-7 if dt == np.float64 else 1e-5
    elif len(inputs) > 1:
        atol = r * amax * float(np.abs(np.asarray(inputs[1], dtype=np.complex128)).sum()) * 2
    else:
        atol = r * amax * 64  # sum|w| of every built-in filter here is below 64
    c = np.complex128 if got.dtype.kind == "c" else np.float64
    np.testing.assert_allclose(np.asarray(got, c), np.asarray(expected, c), rtol=r, atol=atol + 1e-30)


NDIMAGE_NAMES = ("nd.", "correlate1d", "convolve1d", "uniform", "gaussian", "sobel", "prewitt", "edge")


def _case(draw):
    """(call, reference, inputs, name) for one random public-function call."""
    which = draw(st.sampled_from([
        "correlate", "convolve", "correlate2d", "convolve2d", "choose_conv_method",
        "nd.correlate", "nd.convolve", "correlate1d", "convolve1d", "uniform_filter", "uniform_filter1d",
        "gaussian_filter", "gaussian_filter1d", "sobel", "prewitt", "edge_filter", "match_template",
        "max_pool", "avg_pool", "uniform_kernel", "gaussian_kernel",
    ]))
    return _build(draw, which) + (which,)


def _build(draw, which):
    mode = draw(st.sampled_from(MODE_STRINGS))
    a = draw(fuzz_arrays())
    b = draw(fuzz_arrays(ndim=a.ndim if draw(st.booleans()) else None, max_side=4))
    cval = draw(st.sampled_from([0.0, 1.0, -2.0]))
    axis = draw(st.integers(-3, 3))
    if which in ("correlate", "convolve"):
        method = draw(st.sampled_from(["auto", "direct", "fft", "bad"]))
        f = getattr(convcore, which)
        return (lambda: f(a, b, mode, method),
                lambda up=False: getattr(ss, which)(_up(a, up), _up(b, up), mode, "direct"), (a, b))
    if which in ("correlate2d", "convolve2d"):
        boundary = draw(st.sampled_from(["fill", "wrap", "symm", "bad", "reflect"]))
        return (lambda: getattr(convcore, which)(a, b, mode, boundary, cval),
                lambda up=False: getattr(ss, which)(_up(a, up), _up(b, up), mode, boundary, cval), (a, b))
    if which == "choose_conv_method":
        return (lambda: cs.choose_conv_method(a, b, mode), None, (a, b))
    if which in ("nd.correlate", "nd.convolve"):
        name = which[3:]
        return (lambda: getattr(cn, name)(a, b, mode=mode, cval=cval),
                lambda up=False: getattr(nd, name)(a, b, mode=mode, cval=cval), (a, b))
    if which in ("correlate1d", "convolve1d"):
        w = b.ravel()[:5]
        return (lambda: getattr(cn, which)(a, w, axis=axis, mode=mode, cval=cval),
                lambda up=False: getattr(nd, which)(a, w, axis=axis, mode=mode, cval=cval), (a, w))
    if which == "uniform_filter":
        size = draw(st.integers(0, 4))
        return (lambda: cn.uniform_filter(a, size, mode=mode, cval=cval),
                lambda up=False: nd.uniform_filter(a, size, mode=mode, cval=cval), (a,))
    if which == "uniform_filter1d":
        size = draw(st.integers(0, 4))
        return (lambda: cn.uniform_filter1d(a, size, axis=axis, mode=mode, cval=cval),
                lambda up=False: nd.uniform_filter1d(a, size, axis=axis, mode=mode, cval=cval), (a,))
    if which in ("gaussian_filter", "gaussian_filter1d"):
        sigma = draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, -1.0]))
        order = draw(st.integers(-1, 2))
        if which == "gaussian_filter":
            return (lambda: cn.gaussian_filter(a, sigma, order=order, mode=mode, cval=cval),
                    lambda up=False: nd.gaussian_filter(a, sigma, order=order, mode=mode, cval=cval), (a,))
        return (lambda: cn.gaussian_filter1d(a, sigma, axis=axis, order=order, mode=mode, cval=cval),
                lambda up=False: nd.gaussian_filter1d(a, sigma, axis=axis, order=order, mode=mode, cval=cval),
                (a,))
    if which in ("sobel", "prewitt"):
        return (lambda: getattr(cn, which)(a, axis=axis, mode=mode, cval=cval),
                lambda up=False: getattr(nd, which)(a, axis=axis, mode=mode, cval=cval), (a,))
    if which == "edge_filter":
        ang = draw(st.sampled_from([0.0, 45.0, 90.0, 200.0]))

        def ref():
            assert a.ndim == 2
            t = math.radians(ang)
            kx, ky = cn.sobel_kernels()
            return nd.correlate(_f64(a), math.cos(t) * kx - math.sin(t) * ky, mode=mode, cval=cval)
        return (lambda: cn.edge_filter(a, ang, mode=mode, cval=cval), ref, (a,))
    if which == "match_template":
        def ref():
            if a.ndim == 1 and b.ndim == 1:  # skimage wants 2-D or 3-D: a 1-row image
                return skimage.feature.match_template(_f64(a)[None], _f64(b)[None], pad_input=False)[0]
            return skimage.feature.match_template(_f64(a), _f64(b), pad_input=False)
        return (lambda: cn.match_template(a, b), ref if a.ndim <= 3 else None, (a, b))
    if which in ("max_pool", "avg_pool"):
        d = draw(st.integers(1, 3))
        pool = draw(st.one_of(st.integers(0, 3), st.tuples(*[st.integers(0, 3)] * d)))
        strides = draw(st.one_of(st.none(), st.integers(0, 3)))
        padding = draw(st.sampled_from(["valid", "same", "bogus"]))
        kind = which[:3]

        def ref():
            dd = len(pool) if isinstance(pool, tuple) else {1: 1, 2: 2, 3: 2, 4: 2, 5: 3}[a.ndim]
            p = pool if isinstance(pool, tuple) else (pool,) * dd
            s = p if strides is None else (strides,) * dd
            return ref_pool(a, kind, p, s, padding, a.ndim - dd)
        return (lambda: getattr(convcore, which)(a, pool, strides=strides, padding=padding), ref, (a,))
    k = draw(st.integers(-1, 4))
    ndim = draw(st.integers(0, 3))
    if which == "uniform_kernel":
        return (lambda: cn.uniform_kernel(k, ndim), lambda: np.full((k,) * ndim, 1.0 / k ** ndim), ())
    sigma = draw(st.sampled_from([0.5, 1.0, 0.0, -1.0]))
    return (lambda: cn.gaussian_kernel(k, sigma, ndim), None, ())


@settings(max_examples=400)
@given(data=st.data())
def test_no_input_crashes(data):
    call, ref, inputs, which = _case(data.draw)
    try:
        got = call()
    except OK_ERRORS:
        return
    # it returned: the inputs must have been numeric, and the result must be scipy's
    if which == "choose_conv_method":
        assert got in ("direct", "fft")
    complex_ok = which in ("correlate", "convolve", "correlate2d", "convolve2d", "choose_conv_method") or (
        which.startswith(NDIMAGE_NAMES) and which != "edge_filter")
    for x in inputs:
        assert x.dtype.kind in ("biufc" if complex_ok else "biuf"), f"accepted dtype {x.dtype}"
    if ref is None:
        return
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                expected = ref()
            except (ValueError, RuntimeError) as e:
                if "nsupported type" not in str(e):
                    raise
                expected = np.asarray(ref(True)).astype(np.asarray(got).dtype)  # scipy has no kernel for the type
    except Exception as e:  # noqa: BLE001 - any failure of the reference
        raise AssertionError(f"convcore accepted what the reference rejects ({type(e).__name__}: {e})")
    if inputs:
        _compare(got, expected, inputs, which)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12)
