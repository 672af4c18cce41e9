"""ndimage.correlate / convolve with ``axes=`` (issue 16): scipy 1.17's meaning, compared
with scipy.ndimage on the same arrays (weights' dimensions go to the filtered axes in
increasing order, origins follow ``axes`` as given, other axes are not filtered)."""
import numpy as np
import pytest
import scipy.ndimage as snd

import convcore.ndimage as cnd

rng = np.random.default_rng(16)
A = rng.standard_normal((6, 7, 8))

CASES = [((0,), (3,)), ((2,), (4,)), (1, (5,)), ((1, 2), (3, 2)), ((2, 1), (3, 2)), ((0, 2), (2, 3)),
         ((-1, 0), (3, 3)), ((0, 1, 2), (2, 3, 2)), ((2, 0, 1), (3, 1, 2)), ((), ())]


@pytest.mark.parametrize("func", ["correlate", "convolve"])
@pytest.mark.parametrize("axes, wshape", CASES)
@pytest.mark.parametrize("mode", ["reflect", "constant", "nearest", "mirror", "wrap"])
def test_axes_match_scipy(func, axes, wshape, mode):
    w = rng.standard_normal(wshape)
    n = len(wshape)
    origins = [0, tuple(-(s // 2) for s in wshape), tuple((s - 1) // 2 for s in wshape)]
    checked = 0
    for origin in origins:
        try:
            want = getattr(snd, func)(A, w, mode=mode, cval=0.5, origin=origin, axes=axes)
        except ValueError:
            # an origin valid for the weights' own dimension but not for the axis it
            # lands on (origins follow `axes` as given, weights its sorted order)
            with pytest.raises(ValueError, match="origin"):
                getattr(cnd, func)(A, w, mode=mode, cval=0.5, origin=origin, axes=axes)
            continue
        got = getattr(cnd, func)(A, w, mode=mode, cval=0.5, origin=origin, axes=axes)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        checked += 1
    assert checked >= 1
    assert n == (1 if np.isscalar(axes) else len(axes))


def test_axes_float32():
    a = A.astype(np.float32)
    w = rng.standard_normal((3, 2)).astype(np.float32)
    got = cnd.correlate(a, w, axes=(2, 0))
    want = snd.correlate(a.astype(np.float64), w.astype(np.float64), axes=(2, 0))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_axes_bad_input():
    # weights' dimensions must match the axes: scipy raises RuntimeError; convcore's error
    # is a ValueError and a RuntimeError
    for func in (cnd.correlate, cnd.convolve):
        with pytest.raises(RuntimeError, match=r"one dimension per filtered axis \(1, axes=\(0,\)\).*\(3, 3\)"):
            func(A, np.ones((3, 3)), axes=(0,))
        with pytest.raises(ValueError, match="weights must have the same number of dimensions"):
            func(A, np.ones((3, 3)))
        with pytest.raises(ValueError, match="unique"):
            func(A, np.ones((3, 3)), axes=(0, 0))
        with pytest.raises(ValueError, match="out of bounds"):
            func(A, np.ones(3), axes=(5,))
        # scipy's own test matches these phrases
        with pytest.raises(TypeError, match=r"axes must hold integers, got 1\.5 .*cannot be interpreted as an integer"):
            func(A, np.ones(3), axes=(1.5,))
        with pytest.raises(ValueError, match="axis -4 is out of range"):
            func(A, np.ones(3), axes=(-4,))
        with pytest.raises(RuntimeError, match=r"weights\.ndim \(3\) must match len\(axes\) \(2\)"):
            func(A, np.ones((3, 3, 3)), axes=(1, 2))
        with pytest.raises(RuntimeError, match="sequence argument must have length equal to input rank"):
            func(A, np.ones((3, 3)), axes=(0, 1), origin=(0,))
        with pytest.raises(ValueError, match="origin"):
            func(A, np.ones((3, 3)), axes=(0, 1), origin=(0, 0, 0))
