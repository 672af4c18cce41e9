"""Layer semantics of convcore's Keras-style API: convolution against convcore.correlate
and a numpy reference (Keras/TF padding rules), Dense, batch normalization, dropout,
configs, parameter counts, summary, and the SGD/Adam update rules."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import convcore
from convcore import Input, Sequential, layers, mnist_demo, optimizers
from convcore.layers import Layer


@pytest.fixture
def float64(request):
    convcore.set_floatx("float64")
    request.addfinalizer(lambda: convcore.set_floatx("float32"))


# ---------------------------------------------------------------------- references
def _same_pads(n, k, s, d):
    """TensorFlow's 'same' padding: output ceil(n / s), extra padding at the end."""
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return out, total // 2, total - total // 2


def ref_conv(x, w, b, strides, dilation, padding):
    """Direct channels-last N-d cross-correlation (Keras Conv semantics)."""
    nd = x.ndim - 2
    ks = w.shape[:nd]
    pads, outs = [], []
    for ax in range(nd):
        n, k, s, d = x.shape[1 + ax], ks[ax], strides[ax], dilation[ax]
        if padding == "same":
            out, lo, hi = _same_pads(n, k, s, d)
        else:
            out, lo, hi = (n - (k - 1) * d - 1) // s + 1, 0, 0
        pads.append((lo, hi))
        outs.append(out)
    xp = np.pad(x, [(0, 0)] + pads + [(0, 0)])
    y = np.zeros((x.shape[0],) + tuple(outs) + (w.shape[-1],))
    for o in itertools.product(*[range(v) for v in outs]):
        for kk in itertools.product(*[range(v) for v in ks]):
            idx = tuple(o[a] * strides[a] + kk[a] * dilation[a] for a in range(nd))
            y[(slice(None),) + o] += xp[(slice(None),) + idx] @ w[kk]
    return y + (0 if b is None else b)


def ref_pool(x, kind, pool, strides, padding):
    """Keras pooling: 'same' pads at the end as TF does; max ignores padding; average
    divides by the number of real (non-padding) cells."""
    nd = x.ndim - 2
    outs, lows = [], []
    for ax in range(nd):
        n, k, s = x.shape[1 + ax], pool[ax], strides[ax]
        if padding == "same":
            out, lo, _ = _same_pads(n, k, s, 1)
        else:
            out, lo = (n - k) // s + 1, 0
        outs.append(out)
        lows.append(lo)
    y = np.zeros((x.shape[0],) + tuple(outs) + (x.shape[-1],))
    for o in itertools.product(*[range(v) for v in outs]):
        sl = tuple(slice(max(o[a] * strides[a] - lows[a], 0), min(o[a] * strides[a] - lows[a] + pool[a], x.shape[1 + a]))
                   for a in range(nd))
        win = x[(slice(None),) + sl + (slice(None),)].reshape(x.shape[0], -1, x.shape[-1])
        y[(slice(None),) + o] = win.max(axis=1) if kind == "max" else win.mean(axis=1)
    return y


# ---------------------------------------------------------------------- convolution and dense
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_conv2d_equals_correlate_over_channels(dtype, request):
    convcore.set_floatx(dtype)
    request.addfinalizer(lambda: convcore.set_floatx("float32"))
    rng = np.random.default_rng(0)
    H, W, cin, f = 9, 7, 3, 4
    conv = layers.Conv2D(f, (3, 2))
    x = rng.standard_normal((1, H, W, cin)).astype(dtype)
    y = conv(x)
    assert y.dtype == np.dtype(dtype) and y.shape == (1, H - 2, W - 1, f)
    kernel, bias = rng.standard_normal((3, 2, cin, f)), rng.standard_normal(f)
    conv.set_weights([kernel, bias])
    y = conv(x)
    expected = np.zeros((H - 2, W - 1, f))
    for j in range(f):
        for c in range(cin):
            expected[:, :, j] += convcore.correlate(x[0, :, :, c].astype(np.float64), kernel[:, :, c, j], "valid")
        expected[:, :, j] += bias[j]
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(y[0], expected, rtol=tol, atol=tol * 10)


def test_conv1d_equals_correlate(float64):
    rng = np.random.default_rng(1)
    conv = layers.Conv1D(2, 4)
    x = rng.standard_normal((3, 11, 2))
    conv(x)
    kernel, bias = rng.standard_normal((4, 2, 2)), rng.standard_normal(2)
    conv.set_weights([kernel, bias])
    y = conv(x)
    assert y.shape == (3, 8, 2)
    for n in range(3):
        for j in range(2):
            expected = sum(convcore.correlate(x[n, :, c], kernel[:, c, j], "valid") for c in range(2)) + bias[j]
            np.testing.assert_allclose(y[n, :, j], expected, rtol=1e-12, atol=1e-12)


def _conv_param_cases():
    rng = np.random.default_rng(99)
    out = []
    for rank in (1, 2, 3):
        for _ in range(6):
            k = tuple(int(v) for v in rng.integers(1, 4, rank))
            s = tuple(int(v) for v in rng.integers(1, 3, rank))
            d = tuple(int(v) for v in rng.integers(1, 3, rank))
            pad = str(rng.choice(["valid", "same"]))
            size = tuple(int(rng.integers((kk - 1) * dd + 1, (kk - 1) * dd + 5)) for kk, dd in zip(k, d))
            out.append((rank, size, k, s, d, pad))
    return out


@pytest.mark.parametrize("rank,size,k,s,d,pad", _conv_param_cases())
def test_conv_strides_dilation_padding_match_reference(float64, rank, size, k, s, d, pad):
    rng = np.random.default_rng(sum(size) + 7 * sum(k))
    cls = {1: layers.Conv1D, 2: layers.Conv2D, 3: layers.Conv3D}[rank]
    conv = cls(3, k, strides=s, dilation_rate=d, padding=pad)
    x = rng.standard_normal((2,) + size + (2,))
    conv(x)
    w, b = rng.standard_normal(k + (2, 3)), rng.standard_normal(3)
    conv.set_weights([w, b])
    expected = ref_conv(x, w, b, s, d, pad)
    y = conv(x)
    assert y.shape == expected.shape
    assert conv.compute_output_shape(size + (2,)) == expected.shape[1:]
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("size,pool,strides", [((7,), (2,), (2,)), ((8,), (3,), (2,)),
                                               ((5, 6), (2, 2), (2, 2)), ((5, 5), (3, 2), (2, 1)),
                                               ((3, 4, 5), (2, 2, 2), (2, 2, 2))])
def test_pooling_matches_keras_reference(float64, kind, padding, size, pool, strides):
    rng = np.random.default_rng(3)
    name = ("MaxPooling" if kind == "max" else "AveragePooling") + f"{len(size)}D"
    layer = getattr(layers, name)(pool, strides=strides, padding=padding)
    x = rng.standard_normal((2,) + size + (3,))
    np.testing.assert_allclose(layer(x), ref_pool(x, kind, pool, strides, padding), rtol=1e-12, atol=1e-12)


def test_global_pooling_values(float64):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(layers.GlobalAveragePooling2D()(x), x.mean(axis=(1, 2)), rtol=1e-12)
    np.testing.assert_array_equal(layers.GlobalMaxPooling2D()(x), x.max(axis=(1, 2)))


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "softmax"])
def test_dense_equals_matmul(float64, activation):
    rng = np.random.default_rng(2)
    d = layers.Dense(4, activation=activation)
    x = rng.standard_normal((5, 3))
    d(x)
    w, b = rng.standard_normal((3, 4)), rng.standard_normal(4)
    d.set_weights([w, b])
    z = x @ w + b
    expected = {None: z, "relu": np.maximum(z, 0), "sigmoid": 1 / (1 + np.exp(-z)), "tanh": np.tanh(z),
                "softmax": np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)}[activation]
    np.testing.assert_allclose(d(x), expected, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------- batch normalization
def test_batchnorm_docs_say_biased_variance():
    doc = layers.BatchNormalization.__doc__
    assert "moving * momentum + batch * (1 - momentum)" in doc


def test_batchnorm_training_inference_and_moving_stats(float64):
    rng = np.random.default_rng(5)
    mom, eps = 0.9, 1e-3
    bn = layers.BatchNormalization(momentum=mom, epsilon=eps)
    x = rng.standard_normal((16, 3, 4)) * [1.0, 2.0, 0.5, 3.0] + [0.5, -1.0, 2.0, 0.0]
    bn(x)
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    mm, mv = rng.standard_normal(4), rng.random(4) + 0.5
    bn.set_weights([gamma, beta, mm, mv])

    # inference: moving statistics, nothing updated
    y = bn(x, training=False)
    np.testing.assert_allclose(y, gamma * (x - mm) / np.sqrt(mv + eps) + beta, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(bn.get_weights()[2], mm)
    np.testing.assert_array_equal(bn.get_weights()[3], mv)

    # training: batch statistics (biased variance), moving stats updated Keras-style
    y = bn(x, training=True)
    mean = x.reshape(-1, 4).mean(axis=0)
    var = x.reshape(-1, 4).var(axis=0)  # biased (ddof=0), as the Rust kernel documents
    np.testing.assert_allclose(y, gamma * (x - mean) / np.sqrt(var + eps) + beta, rtol=1e-10, atol=1e-12)
    w = bn.get_weights()
    np.testing.assert_allclose(w[2], mom * mm + (1 - mom) * mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(w[3], mom * mv + (1 - mom) * var, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(w[0], gamma)
    np.testing.assert_array_equal(w[1], beta)


def test_batchnorm_in_fit_updates_moving_stats_and_predict_uses_them():
    rng = np.random.default_rng(6)
    convcore.set_seed(0)
    m = Sequential([Input((3,)), layers.BatchNormalization(momentum=0.5, name="bn"), layers.Dense(2)])
    m.compile("sgd", "mse")
    x = (rng.standard_normal((64, 3)) * 3 + 5).astype(np.float32)
    m.fit(x, rng.standard_normal((64, 2)), epochs=5, batch_size=64, verbose=0, shuffle=False)
    _, _, mm, mv = m.get_layer("bn").get_weights()
    np.testing.assert_allclose(mm, x.mean(axis=0) * (1 - 0.5 ** 5), rtol=1e-4)
    # predict is inference: independent of the batch composition
    np.testing.assert_allclose(m.predict(x[:5]), m.predict(x)[:5], rtol=1e-6)


# ---------------------------------------------------------------------- dropout
def test_dropout_identity_at_inference():
    x = np.random.default_rng(7).standard_normal((4, 10)).astype(np.float32)
    d = layers.Dropout(0.5)
    np.testing.assert_array_equal(d(x), x)
    np.testing.assert_array_equal(d(x, training=False), x)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_training_statistics(rate):
    n = 100_000
    x = np.ones((10, n // 10), dtype=np.float32)
    y = layers.Dropout(rate, seed=123)(x, training=True)
    zeros = np.mean(y == 0)
    sigma = math.sqrt(rate * (1 - rate) / n)
    assert abs(zeros - rate) < 6 * sigma, (zeros, rate)
    kept = y[y != 0]
    np.testing.assert_allclose(kept, 1 / (1 - rate), rtol=1e-6)
    # expectation preserved: mean of y is 1 within the statistical bound
    assert abs(y.mean() - 1.0) < 6 * sigma / (1 - rate)


def test_dropout_same_seed_same_mask():
    x = np.random.default_rng(8).standard_normal((50, 40))
    a = layers.Dropout(0.3, seed=42)(x, training=True)
    b = layers.Dropout(0.3, seed=42)(x, training=True)
    np.testing.assert_array_equal(a, b)
    c = layers.Dropout(0.3, seed=43)(x, training=True)
    assert not np.array_equal(a, c)
    # unseeded layers follow convcore.set_seed
    convcore.set_seed(5)
    d1 = layers.Dropout(0.3)(x, training=True)
    convcore.set_seed(5)
    d2 = layers.Dropout(0.3)(x, training=True)
    np.testing.assert_array_equal(d1, d2)


def test_dropout_rate_zero_and_bad_rate():
    x = np.ones((3, 3))
    np.testing.assert_array_equal(layers.Dropout(0.0)(x, training=True), x)
    with pytest.raises(ValueError, match="rate"):
        layers.Dropout(1.0)
    with pytest.raises(ValueError, match="rate"):
        layers.Dropout(-0.1)


# ---------------------------------------------------------------------- configs
def _config_instances():
    return [
        layers.RandomFlip("vertical", seed=1, name="cfg_flip"),
        layers.RandomTranslation((-0.1, 0.2), 0.1, fill_mode="constant", name="cfg_trans"),
        layers.RandomRotation(0.1, name="cfg_rot"),
        layers.RandomZoom(0.2, name="cfg_zoom"),
        layers.RandomContrast(0.3, name="cfg_contrast"),
        layers.RandomBrightness(0.2, value_range=(0, 1), name="cfg_bright"),
        layers.Dense(5, activation="tanh", use_bias=False, kernel_initializer="he_normal", name="cfg_dense",
                     input_shape=(3,)),
        layers.Conv1D(3, 2, strides=2, padding="same", dilation_rate=1, activation="relu", name="cfg_c1"),
        layers.Conv2D(4, (3, 2), strides=(2, 1), padding="same", dilation_rate=(1, 2), activation="sigmoid",
                      use_bias=False, bias_initializer="ones", name="cfg_c2"),
        layers.Conv3D(2, (1, 2, 3), name="cfg_c3", trainable=False),
        layers.MaxPooling1D(3, strides=1, padding="same", name="cfg_mp1"),
        layers.MaxPooling2D((2, 3), name="cfg_mp2"),
        layers.MaxPooling3D(2, strides=(1, 2, 1), name="cfg_mp3"),
        layers.AveragePooling1D(2, name="cfg_ap1"),
        layers.AveragePooling2D((3, 3), strides=2, padding="same", name="cfg_ap2"),
        layers.AveragePooling3D(name="cfg_ap3"),
        layers.GlobalAveragePooling1D(name="cfg_gap1"), layers.GlobalAveragePooling2D(name="cfg_gap2"),
        layers.GlobalAveragePooling3D(name="cfg_gap3"), layers.GlobalMaxPooling1D(name="cfg_gmp1"),
        layers.GlobalMaxPooling2D(name="cfg_gmp2"), layers.GlobalMaxPooling3D(name="cfg_gmp3"),
        layers.Flatten(name="cfg_flat"), layers.Reshape((2, -1), name="cfg_reshape"),
        layers.Activation("softmax", name="cfg_act"), layers.ReLU(name="cfg_relu"),
        layers.Softmax(name="cfg_softmax"),
        layers.BatchNormalization(momentum=0.8, epsilon=1e-5, center=False, gamma_initializer="zeros",
                                  name="cfg_bn"),
        layers.Dropout(0.25, seed=3, name="cfg_drop"),
        layers.Add(name="cfg_add"), layers.Concatenate(axis=1, name="cfg_cat"),
        layers.InputLayer(shape=(4, 5), name="cfg_input"),
        layers.Lambda(convcore.ops.square, name="cfg_lambda"),
        layers.UpSampling2D((2, 3), interpolation="bilinear", name="cfg_up"),
    ]


@pytest.mark.parametrize("layer", _config_instances(), ids=lambda l: type(l).__name__)
def test_get_config_round_trip(layer):
    cfg = layer.get_config()
    again = type(layer).from_config(cfg)
    assert type(again) is type(layer)
    assert again.get_config() == cfg
    # configs are JSON-friendly
    import json
    assert json.loads(json.dumps(cfg)) == cfg
    # and survive serialize/deserialize
    d = layers.serialize(layer)
    assert layers.deserialize(d).get_config() == cfg


def _all_config_instances():
    """The instances above and those of each layer family's test module
    (``config_instances()`` in tests/test_*_layers.py)."""
    import importlib.util
    import pathlib
    out = list(_config_instances())
    for path in sorted(pathlib.Path(__file__).parent.glob("test_*_layers.py")):
        spec = importlib.util.spec_from_file_location(f"_cfg_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        if hasattr(mod, "config_instances"):
            out.extend(mod.config_instances())
    return out


def test_config_instances_cover_every_layer_class():
    """Every public layer class (aliases are the same class) has a config round trip
    somewhere in the suite."""
    covered = {type(l) for l in _all_config_instances()}
    public = {getattr(layers, n) for n in layers.__all__ if isinstance(getattr(layers, n), type)
              and issubclass(getattr(layers, n), Layer) and n != "Layer"}
    missing = sorted(c.__name__ for c in public - covered)
    assert not missing, missing


# ---------------------------------------------------------------------- parameter counts and summary
def test_count_params_per_layer():
    m = Sequential([Input((6, 5, 3)), layers.Conv2D(4, (3, 2), name="c"), layers.BatchNormalization(name="bn"),
                    layers.MaxPooling2D(name="p"), layers.Flatten(name="f"), layers.Dense(7, name="d"),
                    layers.Dense(2, use_bias=False, name="d2")])
    assert m.get_layer("c").count_params() == 3 * 2 * 3 * 4 + 4
    assert m.get_layer("bn").count_params() == 4 * 4
    assert m.get_layer("p").count_params() == 0
    assert m.get_layer("f").count_params() == 0
    assert m.get_layer("d").count_params() == (2 * 2 * 4) * 7 + 7
    assert m.get_layer("d2").count_params() == 14
    assert m.count_params() == 76 + 16 + 119 + 14
    lines = []
    m.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Total params: 225" in text
    assert "Trainable params: 217" in text  # moving mean/variance are non-trainable, as in Keras
    assert "Non-trainable params: 8" in text


def test_mnist_convnet_parameter_counts(capsys):
    m = mnist_demo.build_convnet()
    assert m.count_params() == 34_826
    assert [l.count_params() for l in m.layers] == [320, 0, 18_496, 0, 0, 0, 16_010]
    assert m.output_shape == (None, 10)
    m.summary()
    out = capsys.readouterr().out
    for s in ("34,826", "320", "18,496", "16,010", "conv1 (Conv2D)", "(None, 26, 26, 32)", "(None, 1600)"):
        assert s in out, s
    line = {l.split()[0]: l for l in out.splitlines() if l.strip() and l.split()[0] in ("conv1", "conv2", "output")}
    assert line["conv1"].rstrip().endswith("320")
    assert line["conv2"].rstrip().endswith("18,496")
    assert line["output"].rstrip().endswith("16,010")


@pytest.mark.parametrize("nin,nh,nout", [(784, 100, 10), (5, 3, 2)])
def test_sequential_add_dense_counts(nin, nh, nout):
    model = Sequential()
    model.add(layers.Dense(units=nh, input_shape=(nin,), activation="sigmoid", name="hidden"))
    model.add(layers.Dense(units=nout, activation="softmax", name="output"))
    assert model.count_params() == nin * nh + nh + nh * nout + nout
    assert model.get_layer("hidden").count_params() == nin * nh + nh
    assert model.input_shape == (None, nin)
    assert model.output_shape == (None, nout)
    lines = []
    model.summary(print_fn=lines.append)
    assert f"{nin * nh + nh + nh * nout + nout:,}" in "\n".join(lines)
    p = model.predict(np.zeros((3, nin), dtype=np.float32))
    assert p.shape == (3, nout)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)


# ---------------------------------------------------------------------- optimizers
@pytest.mark.parametrize("kw", [{"lr": 0.001}, {"learning_rate": 0.001}, {}])
def test_adam_lr_and_learning_rate(kw):
    opt = optimizers.Adam(**kw)
    assert opt.learning_rate == pytest.approx(0.001)
    assert opt.lr == pytest.approx(0.001)
    model = Sequential([Input((3,)), layers.Dense(2, activation="softmax")])
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    w0 = model.get_weights()
    loss, acc = model.train_on_batch(np.ones((4, 3), np.float32), np.array([0, 1, 0, 1]))
    assert np.isfinite(loss) and 0 <= acc <= 1
    assert opt.iterations == 1
    assert not np.array_equal(w0[0], model.get_weights()[0])


def test_sgd_lr_alias():
    assert optimizers.SGD(lr=0.5).learning_rate == 0.5
    assert optimizers.SGD(learning_rate=0.25).lr == 0.25


_GRADS = [np.array([0.5, -1.0, 2.0, 1e-3]), np.array([-0.25, 0.75, 1.5, -2.0]), np.array([1.0, 1.0, -0.5, 0.0])]


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True), (0.5, True)])
def test_sgd_matches_hand_computed(momentum, nesterov):
    lr = 0.1
    opt = optimizers.SGD(learning_rate=lr, momentum=momentum, nesterov=nesterov)
    w = convcore.Variable(np.array([1.0, -2.0, 0.5, 3.0]))
    ref = w.numpy().copy()
    v = np.zeros_like(ref)
    for g in _GRADS:
        opt.apply_gradients([(g, w)])
        # Keras: v = momentum * v - lr * g; p += v (nesterov: p += momentum * v - lr * g)
        v = momentum * v - lr * g
        ref = ref + (momentum * v - lr * g if nesterov else v)
        np.testing.assert_allclose(w.numpy(), ref, rtol=1e-14, atol=1e-15)
    assert opt.iterations == 3


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("eps", [1e-7, 0.1])
def test_adam_matches_keras_formula(dtype, eps):
    """Keras Adam: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    p -= lr sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)  (epsilon 'hat', outside the
    bias correction; a large epsilon tells it apart from the paper's form)."""
    lr, b1, b2 = 0.01, 0.8, 0.95
    opt = optimizers.Adam(learning_rate=lr, beta_1=b1, beta_2=b2, epsilon=eps)
    w = convcore.Variable(np.array([1.0, -2.0, 0.5, 3.0], dtype=dtype))
    p = w.numpy()  # the variable's own array on the CPU: updated in place
    ref = p.astype(np.float64)
    m = np.zeros(4)
    v = np.zeros(4)
    for t, g in enumerate(_GRADS, start=1):
        opt.apply_gradients([(g, w)])
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        ref = ref - lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
        tol = 1e-13 if dtype == np.float64 else 1e-6
        np.testing.assert_allclose(p, ref, rtol=tol, atol=tol)
    assert p.dtype == dtype


def test_optimizer_slots_are_per_parameter():
    opt = optimizers.SGD(learning_rate=0.1, momentum=0.9)
    a, b = convcore.Variable(np.zeros(2)), convcore.Variable(np.zeros(2))
    opt.apply_gradients([(np.ones(2), a), (-np.ones(2), b)])
    opt.apply_gradients([(np.ones(2), a), (-np.ones(2), b)])
    np.testing.assert_allclose(a.numpy(), [-0.1 - 0.19] * 2)
    np.testing.assert_allclose(b.numpy(), [0.1 + 0.19] * 2)


def test_optimizer_names_and_bad_values():
    assert isinstance(optimizers.get("adam"), optimizers.Adam)
    assert isinstance(optimizers.get("SGD"), optimizers.SGD)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Adam(learning_rate=0)
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(momentum=1.5)
