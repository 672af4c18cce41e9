"""The course's worked examples, exactly as taught."""
from __future__ import annotations

import numpy as np
import pytest
import skimage.data

import convcore
from convcore import ndimage as cn

X1 = [1, 4, 3, -1, 2, -4, 1, 0, 2, -1]
W1 = [1, 2, 1]
Y1 = [12, 9, 3, -1, -5, -2, 3, 3]

X2 = [[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]]
W2 = [[0, 1, 2], [2, 2, 0], [0, 1, 2]]
Y2 = [[12, 12, 17], [10, 17, 19], [9, 6, 14]]

POOL_X = [[29, 15, 28, 184], [0, 100, 70, 38], [12, 12, 7, 2], [12, 12, 45, 6]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, None])
@pytest.mark.parametrize("method", ["auto", "direct", "fft"])
def test_1d_valid(dtype, method):
    x = X1 if dtype is None else np.array(X1, dtype=dtype)
    w = W1 if dtype is None else np.array(W1, dtype=dtype)
    out = convcore.correlate(x, w, mode="valid", method=method)
    assert out.shape == (8,)
    np.testing.assert_allclose(out, Y1, atol=1e-5)
    # the kernel is symmetric, so convolution gives the same numbers
    np.testing.assert_allclose(convcore.convolve(x, w, mode="valid", method=method), Y1, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, None])
def test_2d_valid(dtype):
    x = X2 if dtype is None else np.array(X2, dtype=dtype)
    w = W2 if dtype is None else np.array(W2, dtype=dtype)
    for method in ("auto", "direct", "fft"):
        out = convcore.correlate(x, w, mode="valid", method=method)
        assert out.shape == (3, 3)
        np.testing.assert_allclose(out, Y2, atol=1e-5)
    out = convcore.correlate2d(x, w, mode="valid")
    assert out.shape == (3, 3)
    np.testing.assert_array_equal(out, Y2)
    # convolution with the flipped kernel is the same correlation
    np.testing.assert_array_equal(convcore.convolve2d(x, np.flip(np.array(W2)), mode="valid"), Y2)


def test_2d_full_and_same_contain_valid():
    full = convcore.correlate2d(X2, W2, mode="full")
    assert full.shape == (7, 7)
    np.testing.assert_array_equal(full[2:5, 2:5], Y2)
    same = convcore.correlate2d(X2, W2, mode="same")
    assert same.shape == (5, 5)
    np.testing.assert_array_equal(same[1:4, 1:4], Y2)
    # zero padding: the corner sees only the bottom-right 2x2 of the kernel
    # w[1:, 1:] . x[:2, :2] = 2*3 + 0*3 + 1*0 + 2*0
    assert same[0, 0] == 6


@pytest.mark.parametrize("d1,d2", [(1, 1), (2, 3), (5, 5), (7, 4), (10, 13)])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_zero_padding_same_size(d1, d2, k):
    rng = np.random.default_rng(d1 * 100 + d2 * 10 + k)
    img = rng.standard_normal((d1, d2))
    w = rng.standard_normal((k, k))
    for method in ("direct", "fft", "auto"):
        assert convcore.correlate(img, w, mode="same", method=method).shape == (d1, d2)
        assert convcore.convolve(img, w, mode="same", method=method).shape == (d1, d2)
    assert convcore.correlate2d(img, w, mode="same").shape == (d1, d2)
    assert convcore.convolve2d(img, w, mode="same").shape == (d1, d2)
    assert cn.correlate(img, w, mode="constant").shape == (d1, d2)
    # and "full" grows by k - 1 per axis
    assert convcore.correlate(img, w, mode="full").shape == (d1 + k - 1, d2 + k - 1)


def test_max_pool_2x2():
    x = np.array(POOL_X, dtype=float)
    out = convcore.max_pool(x, (2, 2))
    np.testing.assert_array_equal(out, [[100, 184], [12, 45]])
    assert out.dtype == np.float64
    out = convcore.max_pool(x, 2)
    np.testing.assert_array_equal(out, [[100, 184], [12, 45]])
    out32 = convcore.max_pool(x.astype(np.float32), (2, 2), strides=(2, 2))
    assert out32.dtype == np.float32
    np.testing.assert_array_equal(out32, [[100, 184], [12, 45]])


def test_avg_pool_2x2():
    x = np.array(POOL_X, dtype=float)
    x[0, 0] = 31
    out = convcore.avg_pool(x, (2, 2))
    np.testing.assert_array_equal(out, [[36.5, 80], [12, 15]])
    out = convcore.avg_pool(x.astype(np.int32), 2)
    np.testing.assert_array_equal(out, [[36.5, 80], [12, 15]])
    assert out.dtype == np.float64


def _rgb_image():
    img = skimage.data.astronaut()  # (512, 512, 3) uint8, shipped with scikit-image
    return img[100:228:2, 150:278:2].astype(np.float64)  # (64, 64, 3) crop, kept small


@pytest.mark.parametrize("k", [3, 5, 8])
def test_rgb_valid_correlation_shape(k):
    img = _rgb_image()
    H, W, _ = img.shape
    r, c = 20, 31
    pattern = img[r:r + k, c:c + k, :]
    assert pattern.shape == (k, k, 3)
    out = convcore.correlate(img, pattern, mode="valid")
    assert out.shape == (H - k + 1, W - k + 1, 1)
    # value at the pattern's own position is its squared norm
    np.testing.assert_allclose(out[r, c, 0], (pattern ** 2).sum(), rtol=1e-10)
    # and it equals the per-channel 2-D correlations summed
    direct = sum(convcore.correlate2d(img[:, :, ch], pattern[:, :, ch], mode="valid") for ch in range(3))
    np.testing.assert_allclose(out[:, :, 0], direct, rtol=1e-10, atol=1e-6)


@pytest.mark.parametrize("name,pos,k", [("astronaut", (25, 40), 9), ("chelsea", (10, 5), 12)])
def test_match_template_finds_pattern(name, pos, k):
    img = getattr(skimage.data, name)()[::4, ::4].astype(np.float64)  # small RGB image
    r, c = pos
    pattern = img[r:r + k, c:c + k, :]
    scores = cn.match_template(img, pattern)
    assert scores.shape == (img.shape[0] - k + 1, img.shape[1] - k + 1, 1)
    peak = np.unravel_index(np.argmax(scores), scores.shape)
    assert peak == (r, c, 0)
    assert scores[r, c, 0] == pytest.approx(1.0, abs=1e-9)
    assert np.all(scores <= 1 + 1e-9) and np.all(scores >= -1 - 1e-9)
    # second best clearly lower: the pattern occurs once
    s = scores[:, :, 0].copy()
    s[max(r - 2, 0):r + 3, max(c - 2, 0):c + 3] = -np.inf
    assert s.max() < 0.999
