"""Regularization layers (Dropout with noise_shape, AlphaDropout, SpatialDropout1D/2D/3D,
GaussianNoise, GaussianDropout, ActivityRegularization) on CPU and GPU: the identity at inference; in
training the statistics Keras's formulas give (drop fraction, scale of the kept values,
noise mean and deviation, masks shared along the broadcast axes); gradients equal to
the mask the forward used; the activity penalty against real Keras 3; configs against
Keras's keys and by behaviour; bad arguments."""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import convcore  # noqa: E402
from convcore import layers, ops  # noqa: E402
from core_layers_reference import DEVICES, config_round_trip, needs_gpu  # noqa: E402

K = keras.layers


def _x(shape, seed=0):
    # away from 0, so that y / x recovers the mask or the noise
    x = np.random.default_rng(seed).uniform(0.5, 2.0, shape) * np.random.default_rng(seed + 1).choice([-1, 1], shape)
    return x.astype(np.float32)


def _call(layer, x, device, training):
    y = layer(ops.convert_to_tensor(x, device=device), training=training)
    assert y.device == device
    return np.asarray(y)


def _sigma_bound(p, n):
    """Five standard deviations of a fraction of ``n`` Bernoulli(p) draws: the drop
    fraction of one seeded draw is within it (the seed is fixed: no flakiness)."""
    return 5 * np.sqrt(p * (1 - p) / n)


# id: (layer, input shape with batch)
NOISE = {
    "dropout": (lambda: layers.Dropout(0.3, seed=1), (40, 50)),
    "dropout_noise_shape": (lambda: layers.Dropout(0.4, noise_shape=(None, 1, 30), seed=2), (40, 6, 30)),
    "dropout_noise_shape_batch": (lambda: layers.Dropout(0.25, noise_shape=(1, 8, 1), seed=3), (30, 8, 5)),
    "spatial1d": (lambda: layers.SpatialDropout1D(0.5, seed=4), (40, 5, 30)),
    "spatial2d": (lambda: layers.SpatialDropout2D(0.3, seed=5), (30, 3, 2, 40)),
    "spatial2d_first": (lambda: layers.SpatialDropout2D(0.3, data_format="channels_first", seed=6), (30, 40, 3, 2)),
    "spatial3d": (lambda: layers.SpatialDropout3D(0.2, seed=7), (30, 2, 2, 2, 40)),
    "spatial3d_first": (lambda: layers.SpatialDropout3D(0.2, data_format="channels_first", seed=8), (30, 40, 2, 2, 2)),
    "gaussian_noise": (lambda: layers.GaussianNoise(0.7, seed=9), (40, 50)),
    "alpha_dropout": (lambda: layers.AlphaDropout(0.2, seed=15), (40, 50)),
    "alpha_dropout_noise_shape": (lambda: layers.AlphaDropout(0.3, noise_shape=(None, 1, 30), seed=16), (40, 6, 30)),
    "gaussian_dropout": (lambda: layers.GaussianDropout(0.4, seed=10), (40, 50)),
}

# the axes along which one mask value is shared, per case
SHARED = {"dropout_noise_shape": (1,), "alpha_dropout_noise_shape": (1,), "dropout_noise_shape_batch": (0, 2),
          "spatial1d": (1,), "spatial2d": (1, 2),
          "spatial2d_first": (2, 3), "spatial3d": (1, 2, 3), "spatial3d_first": (2, 3, 4)}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", sorted(NOISE))
def test_identity_at_inference(case, device):
    make, shape = NOISE[case]
    x = _x(shape)
    layer = make()
    np.testing.assert_array_equal(_call(layer, x, device, False), x)
    np.testing.assert_array_equal(_call(layer, x, device, None), x)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", sorted(c for c in NOISE if "gaussian" not in c))
def test_dropout_statistics_and_shared_masks(case, device):
    make, shape = NOISE[case]
    layer = make()
    x = _x(shape)
    y = _call(layer, x, device, True)
    rate = layer.rate
    if case.startswith("alpha"):
        a, b = _alpha_affine(rate)
        kept = np.abs(y - (a * ALPHA_P + b)) > 1e-6  # dropped values are a * alpha_p + b
        np.testing.assert_allclose(y[kept], a * x[kept] + b, rtol=1e-5, atol=1e-6)  # kept ones a * x + b
    else:
        m = y / x
        kept = m != 0
        np.testing.assert_allclose(m[kept], 1.0 / (1.0 - rate), rtol=1e-6)  # kept values scaled exactly
    axes = SHARED.get(case, ())
    if axes:  # one draw per slice: the mask is constant along the shared axes
        first = np.take(kept, [0], axis=axes[0])
        for a in axes[1:]:
            first = np.take(first, [0], axis=a)
        np.testing.assert_array_equal(kept, np.broadcast_to(first, kept.shape))
    draws = kept.size // int(np.prod([shape[a] for a in axes])) if axes else kept.size
    frac = 1.0 - kept.mean()
    assert abs(frac - rate) < _sigma_bound(rate, draws), (frac, rate, draws)


ALPHA_P = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946  # SELU's -alpha * scale


def _alpha_affine(rate):
    """Keras's AlphaDropout affine correction (a, b)."""
    a = ((1 - rate) * (1 + rate * ALPHA_P ** 2)) ** -0.5
    return a, -a * ALPHA_P * rate


@pytest.mark.parametrize("device", DEVICES)
def test_alpha_dropout_keeps_selu_moments(device):
    """Inputs with SELU's fixed point (mean 0, variance 1) keep mean 0 and variance 1."""
    x = np.random.default_rng(17).standard_normal((200, 100)).astype(np.float32)
    y = _call(layers.AlphaDropout(0.3, seed=18), x, device, True)
    assert abs(y.mean()) < 5 / np.sqrt(y.size)
    assert abs(y.var() - 1.0) < 0.03  # a few standard errors of a variance of 2e4 non-Gaussian values


@needs_gpu
@pytest.mark.parametrize("case", sorted(NOISE))
def test_gpu_draws_what_the_cpu_draws(case):
    """A seeded layer draws the same masks and noise on both devices."""
    make, shape = NOISE[case]
    x = _x(shape)
    np.testing.assert_allclose(_call(make(), x, "gpu", True), _call(make(), x, "cpu", True), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
def test_gaussian_statistics(device):
    x = _x((200, 100))
    y = _call(layers.GaussianNoise(0.7, seed=11), x, device, True)
    n = y - x
    assert abs(n.mean()) < 5 * 0.7 / np.sqrt(n.size)
    assert abs(n.std() - 0.7) < 5 * 0.7 / np.sqrt(2 * n.size)
    m = _call(layers.GaussianDropout(0.4, seed=12), x, device, True) / x
    std = np.sqrt(0.4 / 0.6)  # Keras: sqrt(rate / (1 - rate))
    assert abs(m.mean() - 1.0) < 5 * std / np.sqrt(m.size)
    assert abs(m.std() - std) < 5 * std / np.sqrt(2 * m.size)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", sorted(NOISE))
def test_gradient_is_the_forward_mask(case, device):
    """Each layer is linear in x for its draw: d sum(y * r) / dx is r * (dy/dx), with
    dy/dx = y / x for the multiplicative ones and 1 for additive noise."""
    make, shape = NOISE[case]
    x = _x(shape)
    r = np.random.default_rng(13).standard_normal(shape).astype(np.float32)
    xt = ops.convert_to_tensor(x, device=device)
    with convcore.GradientTape() as tape:
        tape.watch(xt)
        y = make()(xt, training=True)
        loss = ops.sum(ops.multiply(y, r))
    g = np.asarray(tape.gradient(loss, xt))
    if case == "gaussian_noise":
        slope = np.ones_like(x)
    elif case.startswith("alpha"):
        a, b = _alpha_affine(make().rate)
        slope = a * (np.abs(np.asarray(y) - (a * ALPHA_P + b)) > 1e-6)
    else:
        slope = np.asarray(y) / x
    np.testing.assert_allclose(g, r * slope, rtol=1e-5, atol=1e-6)


# small float64 cases for finite differences: id -> (layer from its dtype, input shape)
FD = {
    "dropout": (lambda dt: layers.Dropout(0.4, seed=31, dtype=dt), (3, 4)),
    "dropout_noise_shape": (lambda dt: layers.Dropout(0.4, noise_shape=(None, 1, 3), seed=32, dtype=dt), (2, 2, 3)),
    "alpha_dropout": (lambda dt: layers.AlphaDropout(0.3, seed=33, dtype=dt), (3, 4)),
    "spatial1d": (lambda dt: layers.SpatialDropout1D(0.5, seed=34, dtype=dt), (2, 2, 3)),
    "spatial2d": (lambda dt: layers.SpatialDropout2D(0.5, seed=35, dtype=dt), (2, 2, 1, 3)),
    "spatial3d": (lambda dt: layers.SpatialDropout3D(0.5, seed=36, dtype=dt), (2, 1, 2, 1, 3)),
    "gaussian_noise": (lambda dt: layers.GaussianNoise(0.5, seed=37, dtype=dt), (3, 4)),
    "gaussian_dropout": (lambda dt: layers.GaussianDropout(0.3, seed=38, dtype=dt), (3, 4)),
}


@pytest.mark.parametrize("case", sorted(FD))
def test_gradients_match_finite_differences(case):
    """float64 central differences through the same draw: a fresh layer with the same
    seed draws the same first mask or noise, so each evaluation sees one function."""
    make, shape = FD[case]
    x = np.random.default_rng(39).standard_normal(shape)
    r = np.random.default_rng(40).standard_normal(shape)
    xt = ops.convert_to_tensor(x)
    with convcore.GradientTape() as tape:
        tape.watch(xt)
        loss = ops.sum(ops.multiply(make("float64")(xt, training=True), r))
    got = np.asarray(tape.gradient(loss, xt))

    def f(v):
        return float(np.sum(np.asarray(make("float64")(v, training=True)) * r))

    want = np.zeros_like(x)
    for idx in np.ndindex(shape):
        hi, lo = x.copy(), x.copy()
        hi[idx] += 1e-6
        lo[idx] -= 1e-6
        want[idx] = (f(hi) - f(lo)) / 2e-6
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_seeded_layers_repeat_their_sequence():
    x = _x((10, 12))
    for make in (lambda: layers.Dropout(0.5, noise_shape=(None, 1), seed=21),
                 lambda: layers.GaussianNoise(1.0, seed=21),
                 lambda: layers.SpatialDropout1D(0.5, seed=21)):
        xx = x if not isinstance(make(), layers.SpatialDropout1D) else x.reshape(10, 3, 4)
        a, b = make(), make()
        first = [np.asarray(a(xx, training=True)) for _ in range(2)]
        np.testing.assert_array_equal(first[0], np.asarray(b(xx, training=True)))
        assert not np.array_equal(first[0], first[1])  # a new draw per call


def test_dropout_in_a_model_trains_on_both_devices():
    x = _x((16, 3, 4))
    y = np.random.default_rng(14).standard_normal((16, 1)).astype(np.float32)
    losses = []
    for device in DEVICES:
        model = convcore.Sequential([convcore.Input((3, 4)), layers.SpatialDropout1D(0.5, seed=1),
                                     layers.Dropout(0.3, noise_shape=(None, 3, 1), seed=2),
                                     layers.GaussianNoise(0.1, seed=3), layers.GaussianDropout(0.2, seed=4),
                                     layers.Flatten(), layers.Dense(1, kernel_initializer="ones")])
        model.compile(optimizer=convcore.optimizers.SGD(0.001), loss="mse", device=device)
        hist = model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
        losses.append(hist.history["loss"][0])
        assert np.isfinite(losses[-1])
    # the same seeds give the same masks and noise on both devices
    np.testing.assert_allclose(losses, losses[0], rtol=1e-4)


@pytest.mark.parametrize("l1, l2", [(0.1, 0.0), (0.0, 0.2), (0.03, 0.05)])
def test_activity_regularization_matches_keras(l1, l2):
    x = _x((6, 4, 3))
    kl = K.ActivityRegularization(l1=l1, l2=l2)
    np.testing.assert_array_equal(np.asarray(kl(x)), x)
    want = [float(v) for v in kl.losses]
    for device in DEVICES:
        layer = layers.ActivityRegularization(l1=l1, l2=l2)
        np.testing.assert_array_equal(_call(layer, x, device, True), x)
        got = [float(np.asarray(v)) for v in layer.losses]
        np.testing.assert_allclose(got, want, rtol=1e-5)
    # in a model, the penalty is part of the training loss (its gradient reaches the Dense weights)
    m = convcore.Sequential([convcore.Input((3,)), layers.Dense(2, kernel_initializer="ones"),
                             layers.ActivityRegularization(l1=l1, l2=l2)])
    dense = m.layers[0]
    xt = ops.convert_to_tensor(x[:, 0, :])
    with convcore.GradientTape() as tape:
        out = m(xt, training=True)
        pen = ops.sum(ops.stack(m.losses))
    g = np.asarray(tape.gradient(pen, dense.kernel))
    z = x[:, 0, :] @ np.ones((3, 2)) + dense.bias.numpy()
    want_g = x[:, 0, :].T @ (l1 * np.sign(z) + 2 * l2 * z) / 6
    np.testing.assert_allclose(g, want_g, rtol=1e-5, atol=1e-6)
    assert out.shape == (6, 2)


def test_fit_with_activity_regularization_matches_keras():
    """The layer's penalty joins the training loss as Keras's: two epochs of SGD leave
    Keras's weights, on each device."""
    rng = np.random.default_rng(41)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.standard_normal((8, 2)).astype(np.float32)

    def build(M, mod):
        return M.Sequential([M.Input((3,)), mod.Dense(2), mod.ActivityRegularization(l1=0.03, l2=0.05)])

    km = build(keras, K)
    km.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    w0 = km.get_weights()
    km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    for device in DEVICES:
        cm = build(convcore, layers)
        cm.set_weights(w0)
        cm.compile(optimizer=convcore.optimizers.SGD(0.1), loss="mse", device=device)
        cm.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
        for got, want in zip(cm.get_weights(), km.get_weights()):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


KERAS_CFG = {
    "dropout": lambda: K.Dropout(0.3, seed=1), "dropout_noise_shape": lambda: K.Dropout(0.4, noise_shape=(None, 1, 30)),
    "spatial1d": lambda: K.SpatialDropout1D(0.5, seed=4), "spatial2d": lambda: K.SpatialDropout2D(0.3),
    "spatial3d": lambda: K.SpatialDropout3D(0.2), "gaussian_noise": lambda: K.GaussianNoise(0.7),
    "gaussian_dropout": lambda: K.GaussianDropout(0.4), "spatial2d_first": lambda: K.SpatialDropout2D(0.3),
    "spatial3d_first": lambda: K.SpatialDropout3D(0.2), "dropout_noise_shape_batch": lambda: K.Dropout(0.1),
    "alpha_dropout": lambda: K.AlphaDropout(0.2),
    "alpha_dropout_noise_shape": lambda: K.AlphaDropout(0.3, noise_shape=(None, 1, 30)),
}


@pytest.mark.parametrize("case", sorted(NOISE))
def test_config_round_trip(case):
    make, shape = NOISE[case]
    layer = make()
    again = config_round_trip(layer, _x((2,) + shape[1:]), keras_layer=KERAS_CFG[case]())
    x = _x((6,) + shape[1:])
    # the seed is saved: the reloaded layer draws what a fresh layer with that seed draws
    np.testing.assert_array_equal(np.asarray(again(x, training=True)), np.asarray(make()(x, training=True)))


def test_activity_regularization_config():
    layer = layers.ActivityRegularization(l1=0.1, l2=0.2, name="ar")
    config_round_trip(layer, _x((2, 3)), keras_layer=K.ActivityRegularization(l1=0.1, l2=0.2))
    again = layers.ActivityRegularization.from_config(layer.get_config())
    x = _x((4, 3))
    layer(x)
    again(x)
    np.testing.assert_allclose(float(np.asarray(again.losses[0])), float(np.asarray(layer.losses[0])), rtol=1e-7)


@pytest.mark.parametrize("make, err, match", [
    (lambda: layers.Dropout(1.0), ValueError, r"Dropout: rate must be a float in \[0, 1\), received rate=1.0"),
    (lambda: layers.Dropout(-0.1), ValueError, r"received rate=-0.1"),
    (lambda: layers.Dropout("0.5"), TypeError, r"Dropout: rate must be a real number"),
    (lambda: layers.Dropout(0.5, noise_shape=5), TypeError, r"noise_shape must be a tuple"),
    (lambda: layers.Dropout(0.5, noise_shape=(None, 0)), ValueError, r"noise_shape entries must be >= 1"),
    (lambda: layers.Dropout(0.5, seed=-1), ValueError, r"Dropout: seed must be >= 0"),
    (lambda: layers.SpatialDropout2D(0.5, data_format="nhwc"), ValueError,
     r"SpatialDropout2D: data_format must be one of 'channels_last', 'channels_first'"),
    (lambda: layers.AlphaDropout(1.0), ValueError, r"AlphaDropout: rate must be a float in \[0, 1\)"),
    (lambda: layers.GaussianNoise(-1.0), ValueError, r"GaussianNoise: stddev must be >= 0"),
    (lambda: layers.GaussianDropout(1.5), ValueError, r"GaussianDropout: rate must be a float in \[0, 1\)"),
    (lambda: layers.ActivityRegularization(l1=-1), ValueError, r"ActivityRegularization: l1 must be >= 0"),
])
def test_bad_arguments(make, err, match):
    with pytest.raises(err, match=match):
        make()


def test_bad_shapes_at_call():
    with pytest.raises(ValueError, match=r"noise_shape \(2, 3\) does not broadcast to the input shape \(4, 5\)"):
        layers.Dropout(0.5, noise_shape=(2, 3))(np.ones((4, 5), np.float32), training=True)
    with pytest.raises(ValueError, match=r"noise_shape \(None, 1\) must have one entry per input axis"):
        layers.Dropout(0.5, noise_shape=(None, 1))(np.ones((4, 5, 2), np.float32), training=True)
    with pytest.raises(ValueError, match=r"expects inputs of rank 4"):
        layers.SpatialDropout2D(0.5)(np.ones((4, 5, 2), np.float32), training=True)


def config_instances():
    """One instance per class of this family (the suite's config-coverage test)."""
    return [layers.Dropout(0.2, noise_shape=(None, 1, 3), seed=1, name="cfg_dropout_ns"),
            layers.SpatialDropout1D(0.2, name="cfg_sd1"), layers.SpatialDropout2D(0.2, name="cfg_sd2"),
            layers.SpatialDropout3D(0.2, data_format="channels_first", name="cfg_sd3"),
            layers.GaussianNoise(0.1, seed=2, name="cfg_gn"), layers.AlphaDropout(0.1, seed=3, name="cfg_ad"),
            layers.GaussianDropout(0.1, name="cfg_gd"),
            layers.ActivityRegularization(l1=0.01, name="cfg_ar")]
