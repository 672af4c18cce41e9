"""Data-augmentation layers (RandomFlip, RandomTranslation, RandomRotation, RandomZoom,
RandomContrast, RandomBrightness) and their Rust kernels.

References: scipy.ndimage.map_coordinates for the affine warp (Keras fill modes
'reflect' / 'wrap' / 'constant' / 'nearest' are scipy's 'reflect' / 'grid-wrap' /
'grid-constant' / 'nearest'; bilinear is order=1, nearest order=0), np.rot90 and
shifted arrays for exact cases, the dot-product test for the adjoint, and float64
central finite differences for each layer's backward in training mode.
"""
from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
from scipy import ndimage as ndi

import convcore
from convcore import _core, backend, layers
from convcore.layers import (RandomBrightness, RandomContrast, RandomFlip, RandomRotation, RandomTranslation,
                             RandomZoom)
from convcore.layers import augmentation

FILL_MODES = ["reflect", "wrap", "constant", "nearest"]


def forward(layer, x):
    """(y, the random parameters drawn) of one training-mode augmentation: the host
    computation the layer's op runs."""
    return layer._augment(np.ascontiguousarray(x, dtype=layer.dtype))


def backward(layer, cache, dy):
    """The op's gradient for those parameters (what the tape calls)."""
    return layer._augment_backward(cache, np.ascontiguousarray(dy, dtype=layer.dtype))


def tape_grad(layer, x, dy, training=True):
    """(y, dL/dx) of ``sum(layer(x) * dy)`` through convcore.GradientTape."""
    xt = convcore.convert_to_tensor(x)
    with convcore.GradientTape() as tape:
        tape.watch(xt)
        y = layer(xt, training=training)
    g = tape.gradient(y, xt, output_gradients=convcore.convert_to_tensor(np.asarray(dy, dtype=x.dtype)))
    return y.numpy(), g.numpy()
INTERPOLATIONS = ["bilinear", "nearest"]
SCIPY_MODE = {"reflect": "reflect", "wrap": "grid-wrap", "constant": "grid-constant", "nearest": "nearest"}


def images(shape=(3, 7, 9, 2), seed=0, dtype="float64", lo=0.0, hi=255.0):
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(dtype)


def random_matrices(n, h, w, seed):
    """Rotation + anisotropic scale + shift about the centre, reaching well outside the
    image so every fill region is sampled."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = rng.uniform(-np.pi, np.pi)
        sx, sy = rng.uniform(0.6, 1.6, 2)
        c, s = np.cos(a), np.sin(a)
        m = np.array([[c * sx, -s * sy], [s * sx, c * sy]])
        ctr = np.array([(w - 1) / 2, (h - 1) / 2])
        off = ctr - m @ ctr + rng.uniform(-0.5, 0.5, 2) * np.array([w, h])
        out.append([m[0, 0], m[0, 1], off[0], m[1, 0], m[1, 1], off[1]])
    return np.array(out)


def scipy_warp(x, mats, interpolation, fill_mode, fill_value):
    n, h, w, c = x.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty(x.shape, dtype=np.float64)
    order = 1 if interpolation == "bilinear" else 0
    for i in range(n):
        a0, a1, a2, b0, b1, b2 = mats[i]
        sx = a0 * xx + a1 * yy + a2
        sy = b0 * xx + b1 * yy + b2
        for ch in range(c):
            out[i, :, :, ch] = ndi.map_coordinates(x[i, :, :, ch].astype(np.float64), [sy, sx], order=order,
                                                   mode=SCIPY_MODE[fill_mode], cval=fill_value)
    return out


def every_layer(seed=None, **extra):
    """One instance of each augmentation layer with non-trivial random parameters."""
    return [
        RandomFlip(seed=seed, **extra),
        RandomTranslation(0.3, (-0.2, 0.4), seed=seed, **extra),
        RandomRotation(0.2, seed=seed, **extra),
        RandomZoom((-0.3, 0.4), (-0.2, 0.2), seed=seed, **extra),
        RandomContrast(0.5, seed=seed, **extra),
        RandomBrightness(0.3, seed=seed, **extra),
    ]


LAYER_IDS = ["flip", "translation", "rotation", "zoom", "contrast", "brightness"]


# ---------------------------------------------------------------------- identities
def test_flip_applied_twice_is_the_identity():
    x = images(seed=1)
    for mode in ["horizontal", "vertical", "horizontal_and_vertical"]:
        layer = RandomFlip(mode, seed=3, dtype="float64")
        y, cache = forward(layer, x)
        hz, vt = cache
        np.testing.assert_array_equal(_core.flip_images(y, hz, vt), x)
        np.testing.assert_array_equal(backward(layer, cache, y), x)  # backward is the same flip
        for i in range(len(x)):
            want = x[i][::-1 if vt[i] else 1, ::-1 if hz[i] else 1]
            np.testing.assert_array_equal(y[i], want)
        if mode == "horizontal":
            assert not vt.any()
        if mode == "vertical":
            assert not hz.any()


def test_flip_draws_both_outcomes():
    x = images((64, 2, 3, 1), seed=2)
    _, (hz, vt) = forward(RandomFlip(seed=5, dtype="float64"), x)
    assert 0 < hz.sum() < 64 and 0 < vt.sum() < 64


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_zero_geometric_augmentation_is_exactly_the_identity(fill_mode, interpolation):
    for dtype in ["float32", "float64"]:
        x = images(seed=4, dtype=dtype)
        kw = dict(fill_mode=fill_mode, interpolation=interpolation, fill_value=7.0, seed=1, dtype=dtype)
        for layer in [RandomTranslation(0.0, 0.0, **kw), RandomTranslation((0, 0), (0.0, 0.0), **kw),
                      RandomRotation(0.0, **kw), RandomZoom(0.0, **kw), RandomZoom(0.0, 0.0, **kw)]:
            y, cache = forward(layer, x)
            assert y.dtype == x.dtype
            np.testing.assert_array_equal(y, x)
            np.testing.assert_array_equal(backward(layer, cache, x), x)


@pytest.mark.parametrize("layer", every_layer(seed=0), ids=LAYER_IDS)
def test_identity_outside_training(layer):
    x = images((2, 6, 5, 3), seed=6, dtype="float32")
    np.testing.assert_array_equal(layer(x, training=False), x)
    dy = images((2, 6, 5, 3), seed=7, dtype="float32")
    y, dx = tape_grad(layer, x, dy, training=False)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(dx, dy)
    assert layer.count_params() == 0 and layer.get_weights() == []


@pytest.mark.parametrize("make", [
    lambda: RandomFlip(seed=0),
    lambda: RandomTranslation(0.3, 0.3, seed=0),
    lambda: RandomRotation(0.3, seed=0),
    lambda: RandomZoom(0.3, seed=0),
    lambda: RandomContrast(0.5, seed=0),
    lambda: RandomBrightness(0.3, seed=0),
], ids=LAYER_IDS)
def test_identity_in_predict_and_active_in_fit(make):
    convcore.set_seed(0)
    x = images((16, 6, 6, 2), seed=8, dtype="float32")
    model = convcore.Sequential([layers.Input((6, 6, 2)), make()])
    np.testing.assert_array_equal(model.predict(x), x)
    np.testing.assert_array_equal(model(x), x)
    # in training (and by default in a direct call, as Keras 3) it changes the images
    aug = model.layers[-1]
    assert not np.array_equal(aug(x), x)
    assert not np.array_equal(aug(x, training=True), x)
    # a model that trains through it
    net = convcore.Sequential([layers.Input((6, 6, 2)), make(), layers.Conv2D(2, 3), layers.Flatten(),
                               layers.Dense(1)])
    net.compile(optimizer="adam", loss="mse")
    hist = net.fit(x / 255.0, np.ones((16, 1), "float32"), epochs=2, batch_size=8, verbose=0)
    assert np.all(np.isfinite(hist.history["loss"]))


def test_single_image_call():
    x = images((5, 4, 3), seed=9, dtype="float32")
    for a, b in zip(every_layer(seed=11), every_layer(seed=11)):
        y = a(x, training=True)
        assert y.shape == x.shape and y.dtype == np.float32
        np.testing.assert_array_equal(y, b(x[None], training=True)[0])
        np.testing.assert_array_equal(a(x, training=False), x)


# ---------------------------------------------------------------------- seeding
@pytest.mark.parametrize("index", range(6), ids=LAYER_IDS)
def test_seeded_layers_repeat_and_different_seeds_differ(index):
    x = images((8, 6, 7, 2), seed=10, dtype="float32")
    a, b, c = every_layer(seed=42)[index], every_layer(seed=42)[index], every_layer(seed=43)[index]
    ya = [a(x, training=True) for _ in range(2)]
    yb = [b(x, training=True) for _ in range(2)]
    yc = [c(x, training=True) for _ in range(2)]
    for p, q in zip(ya, yb):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(ya[0], ya[1])  # the stream advances
    assert not np.array_equal(ya[0], yc[0])
    # seed=None draws from the package generator: reproducible with set_seed
    outs = []
    for _ in range(2):
        convcore.set_seed(123)
        layer = every_layer(seed=None)[index]
        outs.append(layer(x, training=True))
    np.testing.assert_array_equal(outs[0], outs[1])
    backend.set_seed(124)
    assert not np.array_equal(every_layer(seed=None)[index](x, training=True), outs[0])


def test_from_config_repeats_the_seeded_stream():
    x = images((4, 5, 5, 1), seed=12, dtype="float32")
    for layer in every_layer(seed=9):
        clone = type(layer).from_config(layer.get_config())
        np.testing.assert_array_equal(layer(x, training=True), clone(x, training=True))


# ---------------------------------------------------------------------- geometry
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_quarter_turn_is_rot90_counter_clockwise(fill_mode, interpolation):
    x = images((3, 6, 6, 2), seed=13)
    ccw = RandomRotation((0.25, 0.25), fill_mode=fill_mode, interpolation=interpolation, dtype="float64")
    np.testing.assert_allclose(ccw(x, training=True), np.rot90(x, 1, axes=(1, 2)), rtol=0, atol=1e-9)
    cw = RandomRotation((-0.25, -0.25), fill_mode=fill_mode, interpolation=interpolation, dtype="float64")
    np.testing.assert_allclose(cw(x, training=True), np.rot90(x, -1, axes=(1, 2)), rtol=0, atol=1e-9)
    half = RandomRotation((0.5, 0.5), fill_mode=fill_mode, interpolation=interpolation, dtype="float64")
    np.testing.assert_allclose(half(x, training=True), x[:, ::-1, ::-1], rtol=0, atol=1e-9)


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_whole_pixel_translation_with_constant_fill_is_a_padded_shift(interpolation):
    x = images((2, 8, 8, 3), seed=14)
    # +0.25 * 8 = 2 rows down, -0.375 * 8 = 3 columns left (both exact in binary)
    layer = RandomTranslation((0.25, 0.25), (-0.375, -0.375), fill_mode="constant", fill_value=-4.5,
                              interpolation=interpolation, dtype="float64")
    want = np.full_like(x, -4.5)
    want[:, 2:, :5] = x[:, :6, 3:]
    np.testing.assert_array_equal(layer(x, training=True), want)


def test_translation_sign_follows_keras():
    x = np.zeros((1, 5, 5, 1))
    x[0, 2, 2, 0] = 1.0
    down_right = RandomTranslation((0.2, 0.2), (0.4, 0.4), fill_mode="constant", dtype="float64")
    y = down_right(x, training=True)
    assert y[0, 3, 4, 0] == 1.0 and y.sum() == 1.0


def test_zoom_sign_follows_keras():
    # positive factor zooms out: the content shrinks towards the centre
    x = np.zeros((1, 9, 9, 1))
    x[0, 0, :, 0] = 1.0  # top row
    out = RandomZoom((1.0, 1.0), fill_mode="constant", interpolation="nearest", dtype="float64")(x, training=True)
    rows = np.nonzero(out[0, :, :, 0].any(axis=1))[0]
    assert rows.tolist() == [2]  # row 0 now appears at row 2 (scale 2 about row 4)
    inward = RandomZoom((-0.5, -0.5), fill_mode="constant", interpolation="nearest", dtype="float64")
    assert inward(x, training=True).sum() == 0.0  # zoomed in: the top row leaves the frame


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_warp_matches_scipy_map_coordinates(fill_mode, interpolation):
    for dtype, tol in [("float64", 1e-10), ("float32", 1e-5)]:
        x = images((4, 7, 10, 3), seed=15, dtype=dtype, lo=-1.0, hi=1.0)
        mats = random_matrices(4, 7, 10, seed=16)
        got = _core.affine_warp(x, mats, interpolation, fill_mode, 0.75)
        want = scipy_warp(x, mats, interpolation, fill_mode, 0.75)
        assert got.dtype == x.dtype
        np.testing.assert_allclose(got, want, rtol=0, atol=tol)


@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_layers_match_scipy_with_their_own_matrices(fill_mode):
    x = images((5, 8, 6, 2), seed=17, lo=-1.0, hi=1.0)
    for layer in [RandomTranslation(0.6, 0.6, fill_mode=fill_mode, fill_value=-2.0, seed=1, dtype="float64"),
                  RandomRotation(0.5, fill_mode=fill_mode, fill_value=-2.0, seed=2, dtype="float64"),
                  RandomZoom(0.8, fill_mode=fill_mode, fill_value=-2.0, seed=3, dtype="float64"),
                  RandomZoom((-0.5, 0.3), (-0.2, 0.9), fill_mode=fill_mode, fill_value=-2.0, seed=3, dtype="float64",
                             interpolation="nearest")]:
        y, mats = forward(layer, x)
        np.testing.assert_allclose(y, scipy_warp(x, mats, layer.interpolation, fill_mode, -2.0), rtol=0, atol=1e-10)


def test_one_pixel_axes_and_empty_batches():
    x = images((2, 1, 5, 1), seed=18)
    for mode in FILL_MODES:
        mats = random_matrices(2, 1, 5, seed=19)
        np.testing.assert_allclose(_core.affine_warp(x, mats, "bilinear", mode, 0.5),
                                   scipy_warp(x, mats, "bilinear", mode, 0.5), rtol=0, atol=1e-10)
    empty = np.zeros((0, 4, 4, 3), "float32")
    assert _core.affine_warp(empty, np.zeros((0, 6))).shape == empty.shape
    for layer in every_layer(seed=0, dtype="float32"):
        assert forward(layer, empty)[0].shape == empty.shape
        assert layer(empty, training=True).shape == empty.shape


# ---------------------------------------------------------------------- gradients
@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
@pytest.mark.parametrize("fill_mode", FILL_MODES)
def test_warp_adjoint_is_exact(fill_mode, interpolation):
    rng = np.random.default_rng(20)
    x = rng.standard_normal((3, 9, 8, 2))
    g = rng.standard_normal((3, 9, 8, 2))
    mats = random_matrices(3, 9, 8, seed=21)
    for fill_value in [0.0, 3.5]:
        # the linear part: warp(x) - warp(0) (the constant fill is an offset)
        wx = _core.affine_warp(x, mats, interpolation, fill_mode, fill_value) - \
            _core.affine_warp(np.zeros_like(x), mats, interpolation, fill_mode, fill_value)
        wtg = _core.affine_warp_adjoint(g, mats, interpolation, fill_mode)
        lhs, rhs = float(np.sum(wx * g)), float(np.sum(x * wtg))
        assert abs(lhs - rhs) <= 1e-10 * max(abs(lhs), 1.0), (lhs, rhs)
    # also for a single image (the adjoint then uses row blocks with private accumulators)
    one = _core.affine_warp_adjoint(g[:1], mats[:1], interpolation, fill_mode)
    np.testing.assert_allclose(one, _core.affine_warp_adjoint(g, mats, interpolation, fill_mode)[:1],
                               rtol=1e-13, atol=1e-13)


def _fd_check(make, x, seed_dy=0, eps=1e-4):
    """The layer's backward in training mode against central differences of
    sum(forward(x) * dy); every evaluation uses a fresh layer with the same seed, hence
    the same random parameters."""
    dy = np.random.default_rng(seed_dy).standard_normal(x.shape)
    layer = make()
    y, dx = tape_grad(layer, x, dy)
    assert layer.weights == [] and dx.shape == x.shape and dx.dtype == np.float64
    fd = np.empty_like(x)
    flat, fdf = x.reshape(-1), fd.reshape(-1)
    for i in range(flat.size):
        xp, xm = flat.copy(), flat.copy()
        xp[i] += eps
        xm[i] -= eps
        fp = np.sum(np.asarray(make()(xp.reshape(x.shape), training=True)) * dy)
        fm = np.sum(np.asarray(make()(xm.reshape(x.shape), training=True)) * dy)
        fdf[i] = (fp - fm) / (2 * eps)
    err = np.linalg.norm(dx - fd) / max(np.linalg.norm(fd), 1e-3)
    assert err < 1e-7, err
    return y, dx


@pytest.mark.parametrize("make", [
    lambda: RandomFlip(seed=1, dtype="float64"),
    lambda: RandomTranslation(0.4, 0.4, seed=2, dtype="float64"),
    lambda: RandomTranslation(0.4, 0.4, fill_mode="constant", fill_value=3.0, seed=2, dtype="float64"),
    lambda: RandomRotation(0.3, fill_mode="wrap", seed=3, dtype="float64"),
    lambda: RandomRotation(0.3, fill_mode="nearest", interpolation="nearest", seed=3, dtype="float64"),
    lambda: RandomZoom((-0.4, 0.6), seed=4, dtype="float64"),
    lambda: RandomContrast((0.6, 0.9), seed=5, dtype="float64"),
    lambda: RandomBrightness(0.4, seed=6, dtype="float64"),
], ids=["flip", "translation", "translation-constant", "rotation-wrap", "rotation-nearest", "zoom", "contrast",
        "brightness"])
def test_layer_backward_matches_finite_differences(make):
    x = images((2, 5, 6, 2), seed=22)
    _fd_check(make, x)


def test_clipping_stops_the_gradient():
    x = images((4, 5, 6, 2), seed=23)
    y, dx = _fd_check(lambda: RandomBrightness((0.5, 0.5), seed=1, dtype="float64"), x)
    assert (y == 255.0).any()
    np.testing.assert_array_equal(dx[y == 255.0], 0.0)
    y, dx = _fd_check(lambda: RandomContrast((0.0, 1.0), seed=7, dtype="float64"), x)
    assert (y == 255.0).any() or (y == 0.0).any()


# ---------------------------------------------------------------------- colour
@pytest.mark.parametrize("value_range", [(0, 255), (0.0, 1.0), (-1, 1)])
def test_contrast_and_brightness_stay_in_value_range(value_range):
    lo, hi = value_range
    x = images((6, 5, 5, 3), seed=24, dtype="float32", lo=lo, hi=hi)
    for layer in [RandomContrast((1.0, 3.0), value_range=value_range, seed=1),
                  RandomBrightness(1.0, value_range=value_range, seed=2)]:
        for _ in range(3):
            y = layer(x, training=True)
            assert y.min() >= lo and y.max() <= hi and y.dtype == np.float32


def test_contrast_formula():
    x = images((3, 4, 5, 2), seed=25, lo=50.0, hi=150.0)
    layer = RandomContrast((0.3, 0.3), seed=3, dtype="float64")
    y, (_, f) = forward(layer, x)
    assert np.all((f >= 0.7) & (f <= 1.3))
    mean = x.mean(axis=(1, 2), keepdims=True)
    want = np.clip((x - mean) * f[:, None, None, None] + mean, 0, 255)
    np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-10)


def test_brightness_formula():
    x = images((3, 4, 5, 2), seed=26, lo=0.0, hi=1.0)
    layer = RandomBrightness((-0.2, 0.1), value_range=(0, 1), seed=4, dtype="float64")
    y, (_, d) = forward(layer, x)
    assert np.all((d >= -0.2) & (d <= 0.1))
    np.testing.assert_allclose(y, np.clip(x + d[:, None, None, None], 0, 1), rtol=0, atol=1e-15)


# ---------------------------------------------------------------------- config and errors
@pytest.mark.parametrize("layer", every_layer(seed=5) + [
    RandomZoom(0.2), RandomTranslation((-0.1, 0.2), 0.1, fill_mode="constant", fill_value=1.5,
                                       interpolation="nearest"),
    RandomContrast((0.2, 0.5), value_range=(0, 1)), RandomBrightness((-0.1, 0.4), value_range=[0, 1]),
    RandomFlip("vertical")], ids=lambda l: type(l).__name__)
def test_get_config_round_trip(layer):
    cfg = layer.get_config()
    json.dumps(cfg)
    clone = type(layer).from_config(cfg)
    assert clone.get_config() == cfg
    again = layers.deserialize(json.loads(json.dumps(layers.serialize(layer))))
    assert type(again) is type(layer) and again.get_config() == cfg


@pytest.mark.parametrize("make, what", [
    (lambda: RandomFlip("diagonal"), "'diagonal'"),
    (lambda: RandomTranslation(0.1, 0.1, fill_mode="mirror"), "'mirror'"),
    (lambda: RandomRotation(0.1, interpolation="bicubic"), "'bicubic'"),
    (lambda: RandomZoom(0.1, fill_mode="grid-wrap"), "'grid-wrap'"),
    (lambda: RandomRotation(1.5), "1.5"),
    (lambda: RandomRotation((0.1, 0.2, 0.3)), r"\(0.1, 0.2, 0.3\)"),
    (lambda: RandomRotation("0.1"), "'0.1'"),
    (lambda: RandomTranslation(1.2, 0.1), "1.2"),
    (lambda: RandomTranslation(0.1, (0.3, 0.1)), r"\(0.3, 0.1\)"),
    (lambda: RandomTranslation(-0.1, 0.1), "-0.1"),
    (lambda: RandomZoom((-1.5, 0.0)), r"\(-1.5, 0.0\)"),
    (lambda: RandomZoom(0.1, 2.0), "2.0"),
    (lambda: RandomContrast(-0.1), "-0.1"),
    (lambda: RandomContrast((1.5, 0.1)), r"\(1.5, 0.1\)"),
    (lambda: RandomBrightness(1.1), "1.1"),
    (lambda: RandomBrightness(0.1, value_range=(0, 1, 2)), r"\(0, 1, 2\)"),
    (lambda: RandomContrast(0.1, value_range=None), "None"),
    (lambda: RandomFlip(seed=-1), "-1"),
    (lambda: RandomRotation(0.1, fill_value=float("nan")), "nan"),
])
def test_bad_arguments_are_value_errors(make, what):
    with pytest.raises(ValueError, match=what):
        make()


@pytest.mark.parametrize("index", range(6), ids=LAYER_IDS)
def test_wrong_input_rank_is_a_value_error(index):
    layer = every_layer(seed=0)[index]
    for shape in [(4, 4), (2, 4, 4, 3, 1), (5,)]:
        with pytest.raises(ValueError, match=r"\(batch, height, width, channels\).*" + str(shape).replace("(", r"\(")
                           .replace(")", r"\)")):
            layer(np.zeros(shape, "float32"), training=True)
    with pytest.raises(ValueError, match="rank 4"):
        every_layer(seed=0)[index](layers.Input((8, 8)))


def test_kernel_argument_errors():
    x = np.zeros((2, 3, 3, 1))
    with pytest.raises(ValueError, match="transforms must have shape"):
        _core.affine_warp(x, np.zeros((3, 6)))
    with pytest.raises(ValueError, match="'mirror'"):
        _core.affine_warp(x, np.zeros((2, 6)), "bilinear", "mirror")
    with pytest.raises(ValueError, match="'cubic'"):
        _core.affine_warp_adjoint(x, np.zeros((2, 6)), "cubic")
    with pytest.raises(ValueError, match="finite"):
        _core.affine_warp(x, np.full((2, 6), np.nan))
    with pytest.raises(ValueError, match=r"shape \(batch, height, width, channels\)"):
        _core.flip_images(np.zeros((3, 3)), [True], [False])
    with pytest.raises(ValueError, match="one value per image"):
        _core.flip_images(x, [True], [False, True])
    with pytest.raises(ValueError, match="low <= high"):
        _core.brightness_forward(x, [0.0, 0.0], 1.0, 0.0)
    with pytest.raises(ValueError, match="dy must have the shape of x"):
        _core.contrast_backward(x, [1.0, 1.0], np.zeros((2, 3, 3, 2)))
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.affine_warp(x.astype(int), np.zeros((2, 6)))


def test_docstring_examples():
    result = doctest.testmod(augmentation, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
