"""The GPU backend against the CPU backend: one parity table runs every operation on
every available device (rtol 1e-4 in float32), with sizes that are not multiples of
the workgroup size and with a lowered binding limit that forces the chunked paths.

In CI (CONVCORE_CI=1) a GPU adapter is required (lavapipe, installed by .ci/run): the
tests fail instead of skipping. Elsewhere they skip with a message when none exists.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import convcore as cc
from convcore import _core, layers as L

HAVE_GPU = _core.gpu_available()
if not HAVE_GPU:
    if os.environ.get("CONVCORE_CI"):
        raise RuntimeError("CI requires a GPU adapter (lavapipe from mesa-vulkan-drivers) and none was found: "
                           f"{_core.gpu_adapters()}")
    pytest.skip("no GPU adapter (install mesa-vulkan-drivers for lavapipe)", allow_module_level=True)

RTOL = 1e-4


def close(gpu, cpu, rtol=RTOL, what=""):
    g = gpu.numpy() if isinstance(gpu, _core.GpuArray) else np.asarray(gpu)
    c = np.asarray(cpu)
    assert g.shape == c.shape, (what, g.shape, c.shape)
    scale = max(float(np.abs(c).max()) if c.size else 0.0, 1e-6)
    np.testing.assert_allclose(g.astype(np.float64), c.astype(np.float64), rtol=rtol, atol=rtol * scale, err_msg=what)


def up(a):
    return _core.gpu_upload(np.ascontiguousarray(a, dtype=np.float32))


rng = np.random.default_rng(1234)


def R(*shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, shape).astype(np.float32)


@pytest.fixture(params=["whole", "chunked"])
def binding(request):
    """Run each parity case with the adapter's binding limit and with a 4 KiB limit
    (every tensor here is split into several windows)."""
    if request.param == "chunked":
        _core.gpu_set_binding_limit(4096)
    yield request.param
    _core.gpu_set_binding_limit(None)


# ---------------------------------------------------------------- the parity table

CONV_CASES = [
    # x shape, kernel, strides, dilation, padding, filters
    ((3, 11, 13, 2), (3, 3), (1, 1), (1, 1), "valid", 5),
    ((2, 17, 9, 3), (3, 2), (2, 1), (1, 1), "same", 7),
    ((2, 12, 12, 4), (3, 3), (1, 1), (2, 2), "same", 3),
    ((2, 23, 3), (5,), (2,), (1,), "valid", 4),
    ((2, 5, 6, 7, 2), (2, 3, 2), (1, 2, 1), (1, 1, 1), "same", 3),
    ((5, 9, 9, 70), (3, 3), (1, 1), (1, 1), "same", 65),
    # the GEMM comes in four tile shapes chosen by M and N (<= 32 or not); these reach
    # the ones above leave out: 32x128 and 32x32 (tiny images), 64x64 with strides
    ((1, 5, 6, 3), (3, 3), (1, 1), (1, 1), "valid", 40),
    ((2, 10, 10, 8), (3, 3), (1, 1), (1, 1), "same", 6),   # dx as a GEMM (C_in > 4), 128x32
    ((1, 4, 5, 8), (2, 2), (1, 1), (1, 1), "valid", 3),    # dx as a GEMM, 32x32
    ((3, 12, 11, 1), (3, 3), (2, 1), (2, 1), "same", 8),   # dx direct, strided and dilated
    ((2, 15, 15, 40), (3, 3), (2, 2), (1, 1), "same", 36),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"{c[0]}-k{c[1]}-s{c[2]}-d{c[3]}-{c[4]}")
def test_conv_forward_backward(case, binding):
    shape, k, s, d, pad, f = case
    x = R(*shape)
    w = R(*k, shape[-1], f)
    b = R(f)
    if binding == "chunked":  # the weights must fit one window; the batch is split
        _core.gpu_set_binding_limit(max(4096, (w.nbytes + 767) // 256 * 256))
    y = _core.conv_forward(x, w, b, list(s), list(d), pad)
    close(_core.gpu_conv_forward(up(x), up(w), up(b), list(s), list(d), pad), y, what="conv forward")
    dz = R(*y.shape)
    dx, dw, db = _core.conv_backward(x, w, dz, list(s), list(d), pad, True)
    gx, gw, gb = _core.gpu_conv_backward(up(x), up(w), up(dz), list(s), list(d), pad, True)
    close(gx, dx, what="conv dx")
    close(gw, dw, what="conv dw")
    close(gb, db, what="conv db")


@pytest.mark.parametrize("rows,k,m", [(1, 1, 1), (37, 70, 13), (130, 65, 129), (8, 20, 40), (200, 40, 9)])
def test_dense(rows, k, m, binding):
    x, w, b = R(rows, k), R(k, m), R(m)
    if binding == "chunked":  # the kernel must fit one window; the rows are split
        _core.gpu_set_binding_limit(max(4096, (w.nbytes + 767) // 256 * 256))
    close(_core.gpu_dense_forward(up(x), up(w), up(b)), _core.dense_forward(x, w, b), what="dense")
    dz = R(rows, m)
    ref = _core.dense_backward(x, w, dz, True)
    got = _core.gpu_dense_backward(up(x), up(w), up(dz), True)
    for g, c, n in zip(got, ref, "dx dw db".split()):
        close(g, c, what=n)


POOL_CASES = [
    ((2, 9, 11, 3), (2, 2), None, "valid"),
    ((2, 9, 11, 3), (3, 3), (2, 2), "same"),
    ((3, 10, 5), (3,), (1,), "same"),
    ((1, 5, 6, 7, 2), (2, 2, 3), (2, 1, 2), "same"),
]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_pooling(kind, case, binding):
    shape, pool, strides, pad = case
    x = R(*shape)
    y, am = _core.pool_train_forward(x, kind, list(pool), strides and list(strides), pad)
    gy, gam = _core.gpu_pool_forward(up(x), kind, list(pool), strides and list(strides), pad)
    close(gy, y, what="pool forward")
    if kind == "max":  # the GPU counts indices inside each image, the CPU inside x
        img = int(np.prod(shape[1:]))
        np.testing.assert_array_equal(gam.numpy().astype(np.int64) + img * np.arange(shape[0]).reshape(
            (-1,) + (1,) * (len(shape) - 1)), am)
    dy = R(*y.shape)
    dx = _core.pool_backward(dy, kind, am, list(shape), list(pool), strides and list(strides), pad)
    gdx = _core.gpu_pool_backward(up(dy), kind, gam, list(shape), list(pool), strides and list(strides), pad)
    close(gdx, dx, what="pool backward")


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_global_pooling(kind, binding):
    x = R(3, 7, 5, 6)
    y = _core.global_pool_forward(kind, x)
    gy, am = _core.gpu_global_pool_forward(kind, up(x))
    close(gy, y)
    dy = R(3, 6)
    close(_core.gpu_global_pool_backward(kind, up(dy), am, list(x.shape)), _core.global_pool_backward(kind, x, dy))


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "softmax", "linear"])
def test_activations(name, binding):
    x = R(33, 300 if name != "softmax" else 11, lo=-4, hi=4)
    y = _core.activation_forward(name, x) if name != "linear" else x
    gy = _core.gpu_activation_forward(name, up(x))
    close(gy, y)
    dy = R(*x.shape)
    dx = _core.activation_backward(name, x, y, dy) if name != "linear" else dy
    close(_core.gpu_activation_backward(name, up(x), gy, up(dy)), dx)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm(training, binding):
    x = R(6, 9, 8, 7, lo=-3, hi=3)  # 12 KB: three row chunks under the 4 KiB binding
    gamma, beta = R(7, lo=0.5, hi=2), R(7)
    mm, mv = R(7), R(7, lo=0.5, hi=2)
    y, mean, var = _core.batchnorm_forward(x, gamma, beta, 1e-3, training, mm, mv)
    gy, gmean, gvar = _core.gpu_batchnorm_forward(up(x), up(gamma), up(beta), 1e-3, training, up(mm), up(mv))
    close(gy, y)
    dy = R(*x.shape)
    if training:
        close(gmean, mean)
        close(gvar, var)
        ref = _core.batchnorm_backward(x, gamma, mean, var, 1e-3, dy)
    else:
        # inference: an affine map per channel (the layer's CPU path, in float64)
        inv = 1.0 / np.sqrt(mv.astype(np.float64) + 1e-3)
        xhat = (x - mm) * inv
        ref = (dy * (gamma * inv), (dy * xhat).sum(axis=(0, 1, 2)), dy.sum(axis=(0, 1, 2)))
    got = _core.gpu_batchnorm_backward(up(x), up(gamma), gmean, gvar, 1e-3, up(dy), training)
    for g, c in zip(got, ref):
        close(g, c, rtol=3e-4)


@pytest.mark.parametrize("name,from_logits", [("sparse_categorical_crossentropy", True),
                                              ("sparse_categorical_crossentropy", False),
                                              ("categorical_crossentropy", True),
                                              ("categorical_crossentropy", False),
                                              ("binary_crossentropy", True),
                                              ("binary_crossentropy", False),
                                              ("mse", False)])
def test_losses(name, from_logits, binding):
    n, k = 301, 10
    if name.startswith("sparse"):
        y = rng.integers(0, k, n)
        yg = _core.gpu_upload(y)
    elif name.startswith("categorical"):
        y = np.eye(k, dtype=np.float32)[rng.integers(0, k, n)]
        yg = up(y)
    else:
        y = (rng.random((n, k)) > 0.5).astype(np.float32)
        yg = up(y)
    pred = R(n, k, lo=-3, hi=3) if from_logits else R(n, k, lo=0.01, hi=1.0)
    if name == "binary_crossentropy" and not from_logits:
        pred = R(n, k, lo=0.01, hi=0.99)
    loss, grad = _core.loss(name, y, pred, from_logits)
    stats, ggrad = _core.gpu_loss(name, yg, up(pred), from_logits)
    lv, av = stats.numpy()
    assert abs(lv - loss) <= RTOL * abs(loss)
    close(ggrad, grad)
    kind = {"sparse_categorical_crossentropy": "sparse", "categorical_crossentropy": "categorical",
            "binary_crossentropy": "binary"}.get(name)
    if kind:
        assert av == pytest.approx(_core.accuracy(kind, y, pred), abs=1e-6)


def test_dropout_same_mask_as_cpu(binding):
    x = R(1000, 37)
    for rate in (0.0, 0.3, 0.9, 1.0):
        y, mask = _core.dropout_forward(x, rate, 987654321)
        gy, gmask = _core.gpu_dropout_forward(up(x), rate, 987654321)
        np.testing.assert_array_equal(gmask.numpy(), mask)
        close(gy, y)


def test_optimizers(binding):
    p, g = R(1001), R(1001)
    for mom, nest in ((0.0, False), (0.9, False), (0.9, True)):
        pc, pg = p.copy(), up(p)
        vc = np.zeros_like(p) if mom else None
        vg = _core.gpu_zeros([1001]) if mom else None
        for _ in range(3):
            _core.sgd_update(pc, g, vc, 0.1, mom, nest)
            _core.gpu_sgd_update(pg, up(g), vg, 0.1, mom, nest)
        close(pg, pc)
    pc, pg = p.copy(), up(p)
    mc, vc = np.zeros_like(p), np.zeros_like(p)
    mg, vg = _core.gpu_zeros([1001]), _core.gpu_zeros([1001])
    for t in range(1, 4):
        _core.adam_update(pc, g, mc, vc, 0.01, 0.9, 0.999, 1e-7, t)
        _core.gpu_adam_update(pg, up(g), mg, vg, 0.01, 0.9, 0.999, 1e-7, t)
    close(pg, pc)


CORR_CASES = [
    ("ndimage", (37, 41), (3, 3), "reflect"),
    ("ndimage", (37, 41), (5, 4), "constant"),
    ("ndimage", (30, 20), (3, 5), "mirror"),
    ("ndimage", (30, 20), (4, 3), "nearest"),
    ("ndimage", (30, 20), (5, 5), "wrap"),
    ("ndimage", (9, 10, 11), (3, 2, 3), "reflect"),
    ("ndimage", (1000,), (7,), "wrap"),
    ("signal", (33, 40), (5, 6), "full"),
    ("signal", (33, 40), (5, 6), "same"),
    ("signal", (33, 40), (5, 6), "valid"),
    ("signal", (513,), (31,), "full"),
    ("signal", (5, 6, 7), (2, 3, 2), "same"),
]


@pytest.mark.parametrize("case", CORR_CASES, ids=str)
def test_correlate(case, binding):
    kind, xs, ks, mode = case
    x, k = R(*xs), R(*ks)
    if kind == "ndimage":
        ref = _core.ndimage_correlate(x, k, mode, 0.5)
        got = _core.gpu_correlate(x, k, "ndimage", mode=mode, fillvalue=0.5)
    else:
        ref = _core.correlate(x, k, mode, "direct")
        got = _core.gpu_correlate(x, k, "signal", mode=mode)
    close(got, ref)


@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
def test_correlate2d_boundaries(boundary, binding):
    x, k = R(20, 17), R(4, 3)
    for mode in ("full", "same", "valid"):
        close(_core.gpu_correlate(x, k, "signal2d", mode=mode, boundary=boundary, fillvalue=0.25),
              _core.correlate2d(x, k, mode, boundary, 0.25))


def test_concat_and_slice(binding):
    a, b = R(4, 5, 3), R(4, 5, 2)
    c = _core.gpu_concat_last([up(a), up(b)])
    close(c, np.concatenate([a, b], axis=-1))
    close(_core.gpu_slice_last(c, 3, 2), b)


def test_every_pipeline_builds():
    assert _core.gpu_build_all_pipelines() >= 20


# ---------------------------------------------------------------- functional API

def test_functional_api_device_argument():
    img = R(64, 70, lo=0, hi=1)
    for mode in ("reflect", "constant", "wrap"):
        close(cc.ndimage.gaussian_filter(img, 1.5, mode=mode, device="gpu"), cc.ndimage.gaussian_filter(img, 1.5, mode=mode))
        close(cc.ndimage.uniform_filter(img, 5, mode=mode, device="gpu"), cc.ndimage.uniform_filter(img, 5, mode=mode))
        close(cc.ndimage.sobel(img, axis=0, mode=mode, device="gpu"), cc.ndimage.sobel(img, axis=0, mode=mode))
    k = R(5, 5)
    close(cc.signal.correlate(img, k, device="gpu"), cc.signal.correlate(img, k))
    close(cc.signal.convolve2d(img, k, mode="same", device="gpu"), cc.signal.convolve2d(img, k, mode="same"))
    x = R(2, 9, 9, 3)
    close(cc.max_pool(x, 2, device="gpu"), cc.max_pool(x, 2))
    close(cc.avg_pool(x, 3, strides=2, padding="same", device="gpu"), cc.avg_pool(x, 3, strides=2, padding="same"))


def test_filters_the_cpu_sums_in_float64_are_float32_on_the_gpu():
    """The Gaussians and long windows, which the CPU sums in float64 (scipy's float32
    precision): the GPU sums them in float32 with weights rounded to float32 that still
    sum to one, so a ramp's total survives (scipy's test_gauss03 on the GPU)."""
    import scipy.ndimage as sn
    img = R(70, 301, lo=0, hi=100)
    for mode in ("reflect", "constant", "mirror"):
        close(cc.ndimage.gaussian_filter(img, 3.0, mode=mode, cval=0.1, device="gpu"),
              sn.gaussian_filter(img, 3.0, mode=mode, cval=0.1))
        close(cc.ndimage.uniform_filter1d(img, 40, mode=mode, device="gpu"), sn.uniform_filter1d(img, 40, mode=mode))
        close(cc.ndimage.correlate1d(img, np.linspace(-1, 1, 25, dtype=np.float32), mode=mode, device="gpu"),
              sn.correlate1d(img, np.linspace(-1, 1, 25), mode=mode))
    ramp = np.arange(100 * 100, dtype=np.float32).reshape(100, 100)
    out = cc.ndimage.gaussian_filter(ramp, [1.0, 1.0], device="gpu")
    assert out.dtype == np.float32
    np.testing.assert_almost_equal(out.sum(dtype=np.float64), ramp.sum(dtype=np.float64), decimal=0)


def test_float64_on_gpu_is_a_type_error():
    x = np.ones((8, 8))
    with pytest.raises(TypeError, match="float32"):
        cc.ndimage.gaussian_filter(x, 1.0, device="gpu")
    with pytest.raises(TypeError, match="astype"):
        _core.gpu_upload(x)


def test_devices_and_set_device():
    devs = cc.devices()
    assert devs[0]["device"] == "cpu"
    assert any(d["device"] == "gpu" for d in devs)
    prev = cc.get_device()
    try:
        assert cc.set_device("gpu") == "gpu"
        img = R(20, 20)
        assert isinstance(cc.ndimage.uniform_filter(img, 3), np.ndarray)
        close(cc.ndimage.uniform_filter(img, 3), cc.ndimage.uniform_filter(img, 3, device="cpu"))
        assert cc.set_device("cpu") == "cpu"
        assert cc.set_device("auto") in ("cpu", "gpu")
        with pytest.raises(ValueError, match="'cpu', 'gpu' or 'auto'"):
            cc.set_device("cuda")
    finally:
        cc.set_device(prev)


def test_gpu_array_handle():
    a = R(3, 4)
    g = up(a)
    assert g.shape == (3, 4) and g.dtype == "float32" and len(g) == 3
    np.testing.assert_array_equal(np.asarray(g), a)
    np.testing.assert_array_equal(g.reshape(-1).numpy(), a.reshape(-1))
    np.testing.assert_array_equal((g + g).numpy(), a + a)
    with pytest.raises(ValueError):
        g.reshape(5, -1)
    with pytest.raises(TypeError, match="GpuArray"):
        _core.gpu_conv_forward(a, g)


# ---------------------------------------------------------------- training on the GPU

def _convnet(seed=0):
    cc.set_seed(seed)
    return cc.Sequential([
        L.Input((28, 28, 1)),
        L.Conv2D(8, 3, activation="relu"),
        L.MaxPooling2D(),
        L.Conv2D(16, 3, activation="relu", padding="same"),
        L.BatchNormalization(),
        L.MaxPooling2D(),
        L.Flatten(),
        L.Dropout(0.25),
        L.Dense(32, activation="relu"),
        L.Dense(10, activation="softmax"),
    ])


def _mnist(n):
    x, y = cc.datasets.mnist10k.load_data()[0]
    return x[:n, ..., None].astype(np.float32) / 255.0, y[:n]


def test_ten_training_steps_match_cpu():
    """Ten steps from the same weights and batches: losses within 1e-3 relative and
    weights within 1e-3."""
    x, y = _mnist(320)
    runs = {}
    for dev in ("cpu", "gpu"):
        m = _convnet()
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"], device=dev)
        losses = [m.train_on_batch(x[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32])[0] for i in range(10)]
        runs[dev] = (np.array(losses), m.get_weights())
    np.testing.assert_allclose(runs["gpu"][0], runs["cpu"][0], rtol=1e-3)
    for wg, wc in zip(runs["gpu"][1], runs["cpu"][1]):
        np.testing.assert_allclose(wg, wc, atol=1e-3, rtol=1e-3)


def test_fit_on_gpu_learns_and_keeps_buffers():
    x, y = _mnist(1200)
    m = _convnet()
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"], device="gpu")
    m.fit(x[:64], y[:64], batch_size=32, epochs=1, verbose=0)
    before = _core.gpu_allocations()
    h = m.fit(x[:1000], y[:1000], batch_size=32, epochs=3, verbose=0, shuffle=False)
    # Same shapes every step except the last, smaller batch: the pool serves them.
    assert _core.gpu_allocations() - before <= 120
    assert h.history["loss"][-1] < h.history["loss"][0]
    loss, acc = m.evaluate(x[1000:], y[1000:], verbose=0)
    assert acc > 0.6, acc
    # predictions agree with the same weights on the CPU
    cpu = _convnet()
    cpu.compile("adam", "sparse_categorical_crossentropy", device="cpu")
    cpu.set_weights(m.get_weights())
    np.testing.assert_allclose(m.predict(x[:50]), cpu.predict(x[:50]), atol=1e-4)


def test_fit_reads_back_per_batch_or_only_per_epoch_when_silent():
    """verbose=1 (or a per-batch callback): the logs are read back every batch;
    verbose=0: the loss and metrics stay on the device and come back once per epoch
    (as many read-backs for 8 batches an epoch as for 4), with the same epoch logs."""

    class PerBatch(cc.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.last = logs

    hists, reads = {}, {}
    for mode in ("silent", "per-batch"):
        for n_batches in (4, 8):
            x, y = _mnist(n_batches * 32)
            m = _convnet(3)
            m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"], device="gpu")
            before = _core.gpu_readbacks()
            cbs = [PerBatch()] if mode == "per-batch" else []
            h = m.fit(x, y, batch_size=32, epochs=2, verbose=0, shuffle=False, callbacks=cbs)
            reads[mode, n_batches] = _core.gpu_readbacks() - before
            hists[mode, n_batches] = h.history
    assert reads["silent", 4] == reads["silent", 8], reads  # per epoch, not per batch
    assert reads["silent", 4] <= 2 * 4, reads  # a few values (loss, accuracy) per epoch
    assert reads["per-batch", 8] - reads["per-batch", 4] >= 2 * 4, reads  # every batch's logs
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(hists["silent", 4][key], hists["per-batch", 4][key], rtol=1e-5)


def test_gpu_model_gradients_and_saving(tmp_path):
    x, y = _mnist(16)
    m = _convnet()
    m.compile("sgd", "sparse_categorical_crossentropy", device="gpu")
    c = _convnet()
    c.compile("sgd", "sparse_categorical_crossentropy", device="cpu")
    lg, gg = m.loss_and_gradients(x, y)
    lc, gc = c.loss_and_gradients(x, y)
    assert lg == pytest.approx(lc, rel=1e-4)
    for a, b in zip(gg, gc):
        np.testing.assert_allclose(a, b, atol=1e-4 * max(1.0, float(np.abs(b).max())), rtol=1e-3)
    np.testing.assert_allclose(m.input_gradient(x, y), c.input_gradient(x, y), atol=1e-5)
    m.fit(x, y, epochs=1, verbose=0)
    m.save(tmp_path / "m.keras")
    back = cc.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(back.predict(x), m.predict(x), atol=1e-4)


def test_float64_model_on_gpu_is_a_type_error():
    cc.set_floatx("float64")
    try:
        m = cc.Sequential([L.Input((4,)), L.Dense(2)])
    finally:
        cc.set_floatx("float32")
    with pytest.raises(TypeError, match="float32"):
        m.compile("sgd", "mse", device="gpu")


def test_residual_and_concat_on_gpu():
    inp = L.Input((8, 8, 3))
    a = L.Conv2D(4, 3, padding="same", activation="relu")(inp)
    b = L.Conv2D(4, 1)(inp)
    s = L.Add()([a, b])
    c = L.Concatenate()([s, a])
    out = L.Dense(2, activation="softmax")(L.GlobalAveragePooling2D()(c))
    m = cc.Model(inp, out)
    x, y = R(6, 8, 8, 3), rng.integers(0, 2, 6)
    m.compile("sgd", "sparse_categorical_crossentropy", device="cpu")
    lc, gc = m.loss_and_gradients(x, y)
    m.compile("sgd", "sparse_categorical_crossentropy", device="gpu")
    lg, gg = m.loss_and_gradients(x, y)
    assert lg == pytest.approx(lc, rel=1e-4)
    for a_, b_ in zip(gg, gc):
        np.testing.assert_allclose(a_, b_, atol=1e-5, rtol=1e-3)


def test_out_of_gpu_memory_is_an_exception_and_everything_still_works():
    too_big = _core.gpu_info()["max_buffer_bytes"] // 4 + 1
    with pytest.raises(MemoryError, match="GPU"):
        _core.gpu_zeros([too_big])
    with pytest.raises(MemoryError):
        _core.gpu_set_binding_limit(4096)
        try:
            # A dense kernel over the limit is split into row blocks (test_hostile_use), but
            # one 8 KB input row cannot be split over 4 KB windows.
            _core.gpu_dense_forward(up(R(4, 2000)), up(R(2000, 3)))
        finally:
            _core.gpu_set_binding_limit(None)
    x = R(5, 6)
    close(_core.gpu_activation_forward("relu", up(x)), np.maximum(x, 0))
    np.testing.assert_allclose(cc.ndimage.uniform_filter(x, 3, device="cpu"), cc.ndimage.uniform_filter(x, 3))


def test_no_adapter_message_lists_what_exists(monkeypatch):
    monkeypatch.setattr(_core, "gpu_available", lambda: False)
    monkeypatch.setattr(_core, "gpu_info", lambda: (_ for _ in ()).throw(RuntimeError("no GPU adapter is available")))
    with pytest.raises(RuntimeError, match="adapters found"):
        cc.device.resolve("gpu")


def test_worked_examples_exact_on_gpu():
    """The filtering issue's worked examples give their exact values on the GPU."""
    x1 = np.array([1, 4, 3, -1, 2, -4, 1, 0, 2, -1], np.float32)
    w1 = np.array([1, 2, 1], np.float32)
    np.testing.assert_array_equal(cc.correlate(x1, w1, mode="valid", device="gpu"), [12, 9, 3, -1, -5, -2, 3, 3])
    x2 = np.array([[3, 3, 2, 1, 0], [0, 0, 1, 3, 1], [3, 1, 2, 2, 3], [2, 0, 0, 2, 2], [2, 0, 0, 0, 1]], np.float32)
    w2 = np.array([[0, 1, 2], [2, 2, 0], [0, 1, 2]], np.float32)
    y2 = [[12, 12, 17], [10, 17, 19], [9, 6, 14]]
    np.testing.assert_array_equal(cc.correlate(x2, w2, mode="valid", device="gpu"), y2)
    np.testing.assert_array_equal(cc.correlate2d(x2, w2, mode="valid", device="gpu"), y2)
    np.testing.assert_array_equal(cc.convolve2d(x2, np.flip(w2), mode="valid", device="gpu"), y2)
    pool = np.array([[29, 15, 28, 184], [0, 100, 70, 38], [12, 12, 7, 2], [12, 12, 45, 6]], np.float32)
    np.testing.assert_array_equal(cc.max_pool(pool, (2, 2), device="gpu"), [[100, 184], [12, 45]])
    pool[0, 0] = 31
    np.testing.assert_array_equal(cc.avg_pool(pool, 2, device="gpu"), [[36.5, 80], [12, 15]])
    # integer inputs are computed in float32 on the GPU (only float64 arrays are refused)
    np.testing.assert_array_equal(cc.correlate(x1.astype(np.int64), w1.astype(np.int64), mode="valid", device="gpu"),
                                  [12, 9, 3, -1, -5, -2, 3, 3])


def test_gpu_from_several_python_threads():
    """Commands from several threads share one device and one pending command list:
    every result equals its single-threaded value."""
    from concurrent.futures import ThreadPoolExecutor
    w = R(33, 17)
    img = R(64, 48)
    xs = [R(40 + i, 33) for i in range(8)]

    def work(x):
        out = []
        for _ in range(4):
            out.append(_core.gpu_dense_forward(up(x), up(w)).numpy())
            out.append(cc.ndimage.gaussian_filter(img, 1.5, device="gpu"))
        return out

    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(work, xs))
    ref_img = cc.ndimage.gaussian_filter(img, 1.5, device="cpu")
    for x, res in zip(xs, results):
        for i, r in enumerate(res):
            close(r, x.astype(np.float64) @ w if i % 2 == 0 else ref_img)
