"""Issue 11's reproducers of hostile and faulty use (items 1, 3, 4, 7, 8, 9, 10, 12, 13),
each kept as a regression test on the CPU and, where a device is involved, on the GPU
(lavapipe in CI). Items 2, 5, 6 and 11 (files, configs, deep graphs, killed saves) live
in test_hostile_files.py and test_nn_saving.py; the fuzz test in test_fuzz.py."""
from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as ss

import convcore
from convcore import Input, Model, Sequential, _core, layers, optimizers

nan, inf = np.nan, np.inf
HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CI requires a GPU adapter (lavapipe) for the GPU half of these reproducers")
DEVICES = ["cpu"] + (["gpu"] if HAVE_GPU else [])
needs_gpu = pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter (install mesa-vulkan-drivers for lavapipe)")


def _dense_model(compile_kw=None, device=None):
    convcore.set_seed(0)
    m = Sequential([Input((4,)), layers.Dense(3)])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", device=device, **(compile_kw or {}))
    return m


def _xy():
    rng = np.random.default_rng(0)
    return rng.random((5, 4)).astype(np.float32), np.array([0, 1, 2, 0, 1])


# ----------------------------------------------------------------- 4: attacks
@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
@pytest.mark.parametrize("bs", [-1, 0, True, 2.5, "8"])
def test_attack_batch_size_is_validated(attack, bs):
    m = _dense_model()
    x, y = _xy()
    fn = getattr(convcore.adversarial, attack)
    with pytest.raises((ValueError, TypeError), match="batch_size"):
        fn(m, x, y, 0.1, batch_size=bs)


@pytest.mark.parametrize("eps", [inf, nan, -0.1, True])
def test_attack_eps_must_be_finite(eps):
    m = _dense_model()
    x, y = _xy()
    for fn in (convcore.adversarial.fgsm, convcore.adversarial.pgd):
        with pytest.raises((ValueError, TypeError), match="eps"):
            fn(m, x, y, eps)


def test_attack_rejects_nan_inputs_and_small_batches_match_one_batch():
    m = _dense_model()
    x, y = _xy()
    bad = x.copy()
    bad[0, 0] = nan
    with pytest.raises(ValueError, match="NaN"):
        convcore.adversarial.fgsm(m, bad, y, 0.1)
    # A batch size of 1 writes every row of the gradient: equal to one big batch.
    a = convcore.adversarial.fgsm(m, x, y, 0.1, batch_size=1)
    b = convcore.adversarial.fgsm(m, x, y, 0.1, batch_size=256)
    np.testing.assert_array_equal(a, b)
    p = convcore.adversarial.pgd(m, x, y, 0.1, batch_size=1, seed=3)
    assert np.isfinite(p).all() and np.abs(p - x).max() <= 0.1 + 1e-6


# ----------------------------------------------------------------- 7: exception types
def test_batch_normalization_on_rank_1_is_a_value_error():
    with pytest.raises(ValueError, match="rank >= 2"):
        layers.BatchNormalization()(np.ones(4))


def test_concatenate_axis_errors():
    with pytest.raises(ValueError, match="besides the batch axis"):
        layers.Concatenate()([np.ones(3), np.ones(3)])
    for axis in (5, 0, -3):
        with pytest.raises(ValueError, match="axis"):
            layers.Concatenate(axis=axis)([np.ones((2, 3)), np.ones((2, 3))])
    with pytest.raises(TypeError, match="axis"):
        layers.Concatenate(axis=1.5)
    # Valid axes still work, counted with the batch axis as Keras does.
    y = layers.Concatenate(axis=1)([np.ones((2, 3)), np.zeros((2, 2))])
    assert y.shape == (2, 5)
    y = layers.Concatenate(axis=-2)([np.ones((2, 3, 1)), np.zeros((2, 2, 1))])
    assert y.shape == (2, 5, 1)


def test_dense_on_zero_features_initializes():
    y = layers.Dense(2, kernel_initializer="he_normal")(np.ones((2, 0), np.float32))
    np.testing.assert_array_equal(y.numpy(), np.zeros((2, 2), np.float32))


def test_huge_conv_kernel_is_a_value_error():
    with pytest.raises(ValueError, match="more than any array can hold"):
        Sequential([Input((8, 8, 1)), layers.Conv2D(2, 2**62, padding="same")])


def test_maximize_activation_on_the_input_layer():
    i = Input((8, 8, 1))
    fm = Model(i, layers.Conv2D(2, 3)(i))
    try:
        img, _ = convcore.inspect.maximize_activation(fm, fm.layers[0].name, 0, steps=2)
        assert img.shape == (8, 8, 1) and np.isfinite(img).all()
    except ValueError:
        pass  # a clear refusal is fine too; IndexError is not


# ----------------------------------------------------------------- 8: shape arithmetic
def test_shape_products_do_not_wrap():
    with pytest.raises(ValueError, match="more than any array can hold"):
        Sequential([Input((2**32, 2**32, 1)), layers.Flatten(), layers.Dense(10)])
    with pytest.raises(ValueError, match="more than any array can hold"):
        Sequential([Input((2**40, 2**40)), layers.Reshape((1024, -1))])
    # Large but representable shapes keep their exact size.
    assert layers.Flatten().compute_output_shape((2**20, 2**20, 4)) == (2**42,)
    assert layers.Reshape((1024, -1)).compute_output_shape((2**20, 2**20)) == (1024, 2**30)
    with pytest.raises(ValueError, match="reshape"):
        convcore.ops.reshape(np.ones(4), (2**62, 2**62, -1))


# ----------------------------------------------------------------- 9: non-finite weights at boundaries
def test_correlate1d_inf_weight_at_the_boundary_matches_scipy():
    want = ndi.correlate1d(np.ones(3), [inf, 1, 1], mode="constant")
    assert np.isnan(want[0])
    got = convcore.ndimage.correlate1d(np.ones(3), [inf, 1, 1], mode="constant")
    np.testing.assert_array_equal(got, want)
    if HAVE_GPU:
        g = convcore.ndimage.correlate1d(np.ones(3, np.float32), np.array([inf, 1, 1], np.float32), mode="constant",
                                         device="gpu")
        np.testing.assert_array_equal(g, want.astype(np.float32))


def test_correlate2d_valid_with_the_larger_kernel_matches_scipy():
    want = ss.correlate2d(np.ones((1, 2)), [[inf, 1, 1]], "valid")
    np.testing.assert_array_equal(want, [[2.0, inf]])
    for dev in DEVICES:
        got = convcore.signal.correlate2d(np.ones((1, 2), np.float32), np.array([[inf, 1, 1]], np.float32), "valid",
                                          device=dev)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("device", DEVICES)
def test_non_finite_correlations_match_scipy(device):
    """inf in either input, every mode: scipy's rules of which padding is multiplied
    (numpy.correlate's overlap for 1-D, the swap of 'full' N-D when in2 is the larger,
    'valid' never padding, ndimage.correlate's footprint dropping zero weights)."""
    rng = np.random.default_rng(7)
    dt = np.float32 if device == "gpu" else np.float64
    for _ in range(150):
        nd = int(rng.integers(1, 3))
        a = rng.integers(-2, 3, size=tuple(rng.integers(1, 5, nd))).astype(np.float64)
        b = rng.integers(-2, 3, size=tuple(rng.integers(1, 5, nd))).astype(np.float64)
        for arr in (a, b):
            m = rng.random(arr.shape)
            arr[m < 0.2] = inf
            arr[(m > 0.2) & (m < 0.3)] = -inf
        for mode in ("full", "same", "valid"):
            try:
                want = ss.correlate(a, b, mode, method="direct")
            except ValueError:
                continue
            got = convcore.signal.correlate(a.astype(dt), b.astype(dt), mode, method="direct", device=device)
            np.testing.assert_array_equal(got, want.astype(dt), err_msg=f"{mode} {a} {b}")
            if nd == 2:
                want = ss.correlate2d(a, b, mode)
                got = convcore.signal.correlate2d(a.astype(dt), b.astype(dt), mode, device=device)
                np.testing.assert_array_equal(got, want.astype(dt), err_msg=f"2d {mode} {a} {b}")
        for mode in ("constant", "reflect", "nearest", "wrap"):
            want = ndi.correlate(a, b, mode=mode)
            got = convcore.ndimage.correlate(a.astype(dt), b.astype(dt), mode=mode, device=device)
            np.testing.assert_array_equal(got, want.astype(dt), err_msg=f"ndimage {mode} {a} {b}")


# ----------------------------------------------------------------- 1 + 3: NaN on the GPU, fit keeps good weights
def _bn_model(device, opt):
    convcore.set_seed(0)
    m = Sequential([Input((6, 6, 1)), layers.Conv2D(3, 3, activation="relu"), layers.BatchNormalization(),
                    layers.Flatten(), layers.Dense(3)])
    m.compile(optimizer=opt(), loss="sparse_categorical_crossentropy", device=device)
    return m


def _poison(case, x, y):
    x, y = x.copy(), y.copy()
    if case == "nan_pixel":
        x[20, 2, 2, 0] = nan
    elif case == "inf_pixel":
        x[20, 3, 1, 0] = inf
    elif case == "huge_inputs":
        x[16:24] = 1e30  # float32 overflow in the conv / batch statistics
    return x, y


OPTS = {"sgd_momentum": lambda: optimizers.SGD(0.01, momentum=0.9, nesterov=True), "adam": lambda: optimizers.Adam(0.01)}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", ["nan_pixel", "inf_pixel", "huge_inputs"])
@pytest.mark.parametrize("opt", sorted(OPTS))
def test_fit_stops_with_the_weights_of_the_last_good_step(device, case, opt):
    """The audit's item 3: a non-finite step is detected before it is applied (loss,
    gradients and batch-norm statistics), on the GPU without a per-step read-back; the
    weights (moving statistics included) and optimizer state are those after the last
    good step, and the message says so."""
    rng = np.random.default_rng(0)
    x = rng.random((32, 6, 6, 1)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    bad_x, bad_y = _poison(case, x, y)
    ref = _bn_model(device, OPTS[opt])
    ref.train_on_batch(x[:8], y[:8])
    ref.train_on_batch(x[8:16], y[8:16])
    good = ref.get_weights()
    try:
        ref.train_on_batch(bad_x[16:24], bad_y[16:24])
    except FloatingPointError as e:
        assert "last good step" in str(e)
        for a, b in zip(good, ref.get_weights()):
            np.testing.assert_array_equal(a, b)
    else:
        # 1e30 inputs can stay finite (the CPU's batch statistics are float64): then
        # the step is a real one, and every weight stays finite.
        assert case == "huge_inputs" and all(np.isfinite(w).all() for w in ref.get_weights())
        return
    m = _bn_model(device, OPTS[opt])
    with pytest.raises(FloatingPointError, match="epoch 1") as e:
        m.fit(bad_x, bad_y, batch_size=8, shuffle=False, verbose=0)
    assert "weights are those" in str(e.value)
    for a, b in zip(good, m.get_weights()):
        np.testing.assert_array_equal(a, b)
    # The model still trains from there on clean data.
    m.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert all(np.isfinite(w).all() for w in m.get_weights())


@pytest.mark.parametrize("device", DEVICES)
def test_nan_targets_stop_fit_before_the_update(device):
    convcore.set_seed(0)
    m = Sequential([Input((4,)), layers.Dense(2)])
    m.compile(optimizer="sgd", loss="mse", device=device)
    x = np.ones((8, 4), np.float32)
    t = np.zeros((8, 2), np.float32)
    t[3, 1] = nan
    w0 = m.get_weights()
    with pytest.raises(FloatingPointError):
        m.fit(x, t, batch_size=8, verbose=0)
    for a, b in zip(w0, m.get_weights()):
        np.testing.assert_array_equal(a, b)


@needs_gpu
def test_gpu_losses_keep_nan_like_the_cpu():
    """Probabilities through Keras's clip: a NaN stays NaN on the GPU (WGSL's clamp and
    max may drop it)."""
    p = np.array([[0.2, nan, 0.5], [0.5, 0.2, 0.3]], np.float32)
    for loss in ("sparse_categorical_crossentropy",):
        c = convcore.ops.fused_loss(loss, np.array([0, 1]), p, False).numpy()
        g = convcore.ops.fused_loss(loss, np.array([0, 1]),
                                    convcore.ops.convert_to_tensor(p, device="gpu"), False).numpy()
        assert np.isnan(c) and np.isnan(g)


def test_bilinear_upsampling_nan_follows_pytorch():
    """PyTorch's F.interpolate(x, scale_factor=(1, 3), mode='bilinear') of [1, nan, 3]
    (align_corners=False) is [nan] * 7 + [3, 3]: every tap is multiplied, zero weights too."""
    x = np.array([1.0, nan, 3.0], np.float32).reshape(1, 1, 3, 1)
    want = np.array([nan] * 7 + [3.0, 3.0], np.float32)
    for dev in DEVICES:
        got = convcore.ops.upsample2d(convcore.ops.convert_to_tensor(x, device=dev), (1, 3), "bilinear").numpy()
        np.testing.assert_array_equal(got.ravel(), want)


@pytest.mark.parametrize("device", DEVICES)
def test_power_special_values_match_numpy(device):
    a = np.array([-inf, -inf, -inf, -2.0, -2.0, -0.0, -0.0, 0.0, 1.0, inf, 0.5, 2.0, nan, nan, -1.0, -8.0], np.float32)
    b = np.array([-0.5, 3.0, 2.0, 0.5, 3.0, -3.0, 3.0, -1.0, nan, -2.0, inf, -inf, 0.0, 1.0, inf, 1 / 3], np.float32)
    with np.errstate(all="ignore"):
        want = np.power(a, b)
    got = convcore.ops.power(convcore.ops.convert_to_tensor(a, device=device), b).numpy()
    np.testing.assert_array_equal(got, want)
    real = ~np.isnan(want)  # the sign of a NaN means nothing
    np.testing.assert_array_equal(np.signbit(got[real]), np.signbit(want[real]))


# ----------------------------------------------------------------- 12: threads
def test_predict_and_attacks_while_another_thread_trains():
    """Inference, get_weights and attacks from a second thread see the weights between
    two steps (no 'being written elsewhere'); a second fit at once is refused."""
    import threading

    convcore.set_seed(0)
    m = Sequential([Input((8, 8, 1)), layers.Conv2D(4, 3, activation="relu"), layers.BatchNormalization(),
                    layers.Flatten(), layers.Dense(3)])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((128, 8, 8, 1)).astype(np.float32)
    y = np.arange(128) % 3
    errors, done = [], threading.Event()

    def reader():
        while not done.is_set():
            try:
                p = m.predict(x[:16])
                assert np.isfinite(p).all()
                assert all(np.isfinite(w).all() for w in m.get_weights())
                convcore.adversarial.fgsm(m, x[:4], y[:4], 0.1)
            except BaseException as e:  # noqa: BLE001 - every failure counts here
                errors.append(repr(e))
                return

    t = threading.Thread(target=reader)
    t.start()
    try:
        m.fit(x, y, epochs=2, batch_size=8, verbose=0)
    finally:
        done.set()
        t.join()
    assert not errors, errors[:3]

    started, refused = threading.Event(), []

    class Slow(convcore.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            started.set()
            import time
            time.sleep(0.01)

    t = threading.Thread(target=lambda: m.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[Slow()]))
    t.start()
    started.wait(10)
    with pytest.raises(RuntimeError, match="already being trained"):
        m.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(RuntimeError, match="already being trained"):
        m.train_on_batch(x[:8], y[:8])
    t.join()
    m.train_on_batch(x[:8], y[:8])  # free again


# ----------------------------------------------------------------- 13: lesser
def test_float32_uniform_filter_with_a_long_window_matches_scipy():
    x = (1000 + np.random.default_rng(0).random(300_000)).astype(np.float32)
    got = convcore.ndimage.uniform_filter(x, 100_000)
    want = ndi.uniform_filter(x, 100_000)  # scipy sums in double
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=3e-7)


def test_gaussian_derivative_of_high_order_is_finite_and_exact():
    from numpy.polynomial import hermite_e

    from convcore.ndimage import _gaussian_kernel1d
    x = np.random.default_rng(1).random(300)
    for sigma in (1.0, 30.0, 60.0):
        assert np.isfinite(convcore.ndimage.gaussian_filter1d(x, sigma, order=100)).all()
        assert np.isfinite(convcore.ndimage.gaussian_filter1d(x, sigma, order=150)).all()
    # The kernel is (-1/s)^n He_n(x/s) phi(x) (scipy's own overflows int64 for
    # radius^order > 2^63, e.g. sigma=10, order=12; below that the two agree).
    for sigma, order in ((10.0, 12), (3.0, 40), (0.7, 9)):
        r = int(4 * sigma + 0.5)
        t = np.arange(-r, r + 1, dtype=np.float64)
        phi = np.exp(-0.5 * (t / sigma) ** 2)
        phi /= phi.sum()
        want = (-1 / sigma) ** order * hermite_e.hermeval(t / sigma, [0] * order + [1]) * phi
        np.testing.assert_allclose(_gaussian_kernel1d(sigma, order, r), want, rtol=1e-9, atol=1e-12 * abs(want).max())
    np.testing.assert_allclose(convcore.ndimage.gaussian_filter1d(x, 2.0, order=5),
                               ndi.gaussian_filter1d(x, 2.0, order=5), rtol=1e-9, atol=1e-12)


def test_lesser_argument_checks():
    with pytest.raises(ValueError, match="range of float32"):
        layers.RandomTranslation(0.1, 0.1, fill_mode="constant", fill_value=1e308)
    layers.RandomTranslation(0.1, 0.1, fill_mode="constant", fill_value=1e308, dtype="float64")
    if HAVE_GPU:
        with pytest.raises(TypeError, match="float64"):
            convcore.ndimage.gaussian_filter([1.0, 2.0, 3.0], 1.0, device="gpu")
        # Weights as a list follow the input's dtype: fine on the GPU.
        np.testing.assert_allclose(convcore.ndimage.correlate1d(np.ones(3, np.float32), [1.0, 2.0, 1.0],
                                                                device="gpu"), [4.0, 4.0, 4.0])
    for bad in (inf, nan):
        with pytest.raises(ValueError):
            optimizers.SGD(bad)
        with pytest.raises(ValueError):
            optimizers.Adam(bad)
    with pytest.raises(TypeError, match="size"):
        convcore.ndimage.uniform_filter1d(np.ones(4), 2.5)


# ----------------------------------------------------------------- 10: tensors larger than one binding
@needs_gpu
def test_gpu_dense_kernel_larger_than_one_binding_is_split():
    """A dense kernel over the binding limit runs in row blocks (forward and backward)
    with the values and gradients of the unsplit kernel; what is not split (a
    convolution kernel, one input row over a binding) is a clear MemoryError."""
    from convcore import _core, ops
    rng = np.random.default_rng(0)
    x = rng.standard_normal((70, 300)).astype(np.float32)
    w = rng.standard_normal((300, 40)).astype(np.float32)
    b = rng.standard_normal(40).astype(np.float32)
    outs = {}
    for limit in (None, 8192):  # 8 KiB: the 47 KiB kernel takes 6 blocks
        _core.gpu_set_binding_limit(limit)
        try:
            xt, wt, bt = (ops.convert_to_tensor(a, device="gpu") for a in (x, w, b))
            with convcore.GradientTape() as tape:
                tape.watch([xt, wt, bt])
                y = ops.dense_bias_activation(xt, wt, bt, "relu")
                loss = ops.sum(ops.multiply(y, y))
            outs[limit] = [y.numpy()] + [g.numpy() for g in tape.gradient(loss, [xt, wt, bt])]
            if limit:
                with pytest.raises(MemoryError, match="binding"):
                    ops.conv(ops.convert_to_tensor(np.ones((1, 8, 8, 64), np.float32), device="gpu"),
                             ops.convert_to_tensor(np.ones((3, 3, 64, 8), np.float32), device="gpu"))
        finally:
            _core.gpu_set_binding_limit(None)
    np.testing.assert_allclose(outs[8192][0], np.maximum(x.astype(np.float64) @ w + b, 0), rtol=1e-4, atol=1e-4)
    for split, whole in zip(outs[8192], outs[None]):
        np.testing.assert_allclose(split, whole, rtol=1e-5, atol=1e-5 * np.abs(whole).max())


def test_layer_flags_and_long_sublayer_lists():
    with pytest.raises(TypeError, match="trainable"):
        layers.Dense(2, trainable="abc")
    assert layers.Dense(2, trainable=np.bool_(False)).trainable is False

    class Many(layers.Layer):
        def __init__(self, n):
            super().__init__()
            self.blocks = [layers.Dense(1) for _ in range(n)]
            self.blocks_again = self.blocks  # tracked once

    m = Many(3000)
    assert len(m._sublayers()) == 3000


# ----------------------------------------------------------------- found by the fuzz test (layers, training, tools)
def test_layer_and_training_arguments_are_checked():
    with pytest.raises(TypeError, match="numeric"):
        layers.Reshape((4,))(np.zeros((1, 4), np.complex64))
    with pytest.raises(ValueError, match="list of inputs"):  # Keras 3: a list of one input is summed as is
        layers.Add()([])
    with pytest.raises(ValueError, match="epsilon"):
        layers.BatchNormalization(epsilon=nan)
    for bad in (5, "", "bogus_init"):
        with pytest.raises(ValueError, match="initializer"):
            layers.BatchNormalization(gamma_initializer=bad)
    with pytest.raises(TypeError, match="rate"):
        layers.Dropout("0.5")
    with pytest.raises(TypeError, match="seed"):
        layers.Dropout(0.5, seed="a")
    m = _dense_model()
    x, y = _xy()
    for bad in (True, 1.5, "2"):
        with pytest.raises(TypeError, match="batch_size"):
            m.fit(x, y, batch_size=bad, verbose=0)
        with pytest.raises(TypeError, match="batch_size"):
            m.evaluate(x, y, batch_size=bad, verbose=0)
    with pytest.raises(ValueError, match="epochs"):
        m.fit(x, y, epochs=-1, verbose=0)
    with pytest.raises(TypeError, match="epochs"):
        m.fit(x, y, epochs=True, verbose=0)
    with pytest.raises(TypeError, match="batch_size"):
        convcore.adversarial.robust_accuracy(m, x, y, attack="none", batch_size=1.5)


def test_inspection_arguments_are_checked():
    i = Input((6, 6, 1))
    fm = Model(i, layers.Conv2D(2, 3, name="c")(i))
    with pytest.raises(ValueError, match="value_range"):
        convcore.inspect.maximize_activation(fm, "c", 0, steps=2, value_range=(0.0,))
    with pytest.raises(ValueError, match="value_range"):
        convcore.inspect.maximize_activation(fm, "c", 0, steps=2, value_range=(1.0, 0.0))
    with pytest.raises(TypeError, match="steps"):
        convcore.inspect.maximize_activation(fm, "c", 0, steps=True)
    with pytest.raises(ValueError, match="lr"):
        convcore.inspect.maximize_activation(fm, "c", 0, steps=2, lr=inf)
    with pytest.raises(ValueError, match="channel"):
        convcore.inspect.plot_filters(fm.get_layer("c"), channel=5)
    with pytest.raises(TypeError, match="k"):
        convcore.inspect.top_activating(fm, "c", 0, np.ones((3, 6, 6, 1), np.float32), k="2")


def test_a_fifo_under_a_temp_name_does_not_hang_a_save(tmp_path):
    """The stale-temp cleaner opens candidates without blocking and skips non-files."""
    import os
    import threading

    m = _dense_model()
    os.mkfifo(tmp_path / ".tmp-m.convcore-abcdefgh")
    t = threading.Thread(target=m.save, args=(str(tmp_path / "m.convcore"),), daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), "save blocked on a FIFO"
    assert (tmp_path / "m.convcore").exists() and (tmp_path / ".tmp-m.convcore-abcdefgh").exists()
    convcore.models.load_model(str(tmp_path / "m.convcore"))


@pytest.mark.parametrize("device", DEVICES)
def test_divergent_momentum_stops_with_finite_weights(device):
    """SGD with momentum 0.99 and a large rate diverges; the loss or its gradients turn
    non-finite before the weights do, so fit stops with the last finite weights."""
    convcore.set_seed(0)
    m = Sequential([Input((4,)), layers.Dense(8), layers.Dense(1)])
    m.compile(optimizer=optimizers.SGD(0.5, momentum=0.99), loss="mse", device=device)
    x = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32) * 10
    y = (x.sum(axis=1, keepdims=True) * 100).astype(np.float32)
    with pytest.raises(FloatingPointError, match="weights are those"):
        m.fit(x, y, epochs=200, batch_size=16, verbose=0)
    assert all(np.isfinite(w).all() for w in m.get_weights())


def test_huge_conv_kernel_from_a_saved_config_is_a_value_error(tmp_path):
    """Item 7's Conv2D(2, 2**62, padding='same'), arriving through a saved file."""
    import json
    import zipfile

    convcore.set_seed(0)
    m = Sequential([Input((8, 8, 1)), layers.Conv2D(2, 3, padding="same", name="c"), layers.Flatten(),
                    layers.Dense(2)])
    m.compile(optimizer="sgd", loss="mse")
    good = tmp_path / "good.convcore"
    m.save(str(good))
    with zipfile.ZipFile(good) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(entries["config.json"])
    for d in cfg["model"]["layers"]:
        if d["config"].get("name") == "c":
            d["config"]["kernel_size"] = [2**62, 2**62]
    entries["config.json"] = json.dumps(cfg).encode()
    bad = tmp_path / "bad.convcore"
    with zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as z:
        for n, b in entries.items():
            z.writestr(n, b)
    with pytest.raises(ValueError, match="bad.convcore"):
        convcore.models.load_model(str(bad))


def test_a_config_naming_one_input_twice_is_refused():
    i = Input((3,), name="inp")
    m = Model(i, layers.Dense(2, name="d")(i))
    cfg = m.get_config()
    cfg["inputs"] = ["inp", "inp"]
    with pytest.raises(ValueError, match="inputs.*twice"):
        Model.from_config(cfg)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", [((2, 64, 64, 3), 2, 2, "valid"), ((1, 70, 33, 2), 3, 2, "same"),
                                  ((1, 50, 40, 4), (2, 3), (3, 1), "valid"), ((1, 300, 7), 4, 3, "same"),
                                  ((1, 20, 12, 10, 2), 2, 2, "same")])
@needs_gpu
def test_gpu_pooling_sample_larger_than_one_binding_is_split(kind, case):
    """Item 10: one pooling sample over the binding limit (8 KiB here, 128 MiB on
    lavapipe) runs in slices of rows, forward and backward, equal to the CPU (argmax
    indices stay whole-sample ones)."""
    from convcore import _core, ops
    shape, k, s, pad = case
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    f = ops.max_pool if kind == "max" else ops.average_pool
    out = {}
    for dev, limit in (("cpu", None), ("gpu", 8192)):
        _core.gpu_set_binding_limit(limit)
        try:
            t = ops.convert_to_tensor(x, device=dev)
            with convcore.GradientTape() as tape:
                tape.watch(t)
                y = f(t, k, strides=s, padding=pad)
                loss = ops.sum(ops.multiply(y, y))
            out[dev] = (y.numpy(), tape.gradient(loss, t).numpy())
        finally:
            _core.gpu_set_binding_limit(None)
    assert x[0].size * 4 > 8192  # one sample is over the limit
    for g, c in zip(out["gpu"], out["cpu"]):
        np.testing.assert_allclose(g, c, rtol=1e-5, atol=1e-6)
