"""The lecture idioms of issue 12, each as a convnet course writes it for tf.keras with
only the import prefix changed to convcore, on the CPU and on the GPU (lavapipe in CI).
Each asserts what the idiom is for: the values it gives (against real Keras or numpy
where there is one), what it trains, what it freezes, what it logs."""
from __future__ import annotations

import os

import numpy as np
import pytest

import convcore
from convcore import _core

HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CI requires a GPU adapter (lavapipe) for the GPU half of the idiom tests")
DEVICES = ["cpu"] + (["gpu"] if HAVE_GPU else [])


@pytest.fixture
def digits():
    """A small slice of the real MNIST digits shipped with convcore."""
    from convcore.datasets import mnist10k
    (x, y), (xt, yt) = mnist10k.load_data()
    return (x[:256], y[:256]), (xt[:64], yt[:64])


def test_clear_session_restarts_layer_names():
    import convcore.backend as K
    from convcore.layers import Dense
    Dense(2), Dense(2)
    K.clear_session()
    assert Dense(2).name == "dense"
    assert Dense(2).name == "dense_1"


@pytest.mark.parametrize("device", DEVICES)
def test_intermediate_layer_models(device):
    from convcore import layers
    from convcore.models import Model, Sequential
    convcore.set_seed(1)
    model = Sequential([layers.Input((6,)), layers.Dense(5, activation="relu", name="hidden"),
                        layers.Dense(3, activation="softmax", name="out")])
    model.compile(loss="sparse_categorical_crossentropy", device=device)
    x = np.random.default_rng(0).standard_normal((4, 6)).astype("float32")
    W, b = model.get_layer("hidden").get_weights()
    want = np.maximum(x @ W + b, 0)
    feat = Model(inputs=model.input, outputs=model.get_layer("hidden").output)
    np.testing.assert_allclose(feat.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    both = Model(inputs=model.input, outputs=[model.get_layer(n).output for n in ("hidden", "out")])
    h, p = both.predict(x, verbose=0)
    np.testing.assert_allclose(h, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_set_weights_on_a_whole_image_conv_then_predict_uint8(device):
    import keras
    from convcore import layers
    from convcore.models import Sequential
    rng = np.random.default_rng(2)
    W = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32).reshape(3, 3, 1, 1)
    W = np.concatenate([W, W.transpose(1, 0, 2, 3)], axis=3)  # Sobel x and y
    b = np.array([0.5, -0.5], np.float32)
    model = Sequential([layers.Conv2D(2, (3, 3), input_shape=(512, 512, 1), padding="same")])
    model.layers[0].set_weights((W, b))
    model.compile(loss="mse", device=device)
    batch = rng.integers(0, 256, (2, 512, 512, 1), dtype=np.uint8)
    ours = model.predict(batch, verbose=0)
    ref = keras.Sequential([keras.Input((512, 512, 1)), keras.layers.Conv2D(2, (3, 3), padding="same")])
    ref.layers[0].set_weights((W, b))
    want = np.asarray(ref.predict(batch.astype("float32"), verbose=0))
    assert ours.shape == (2, 512, 512, 2) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, want, rtol=1e-5, atol=1e-3)  # sums of up to 8 terms of 255


@pytest.mark.parametrize("device", DEVICES)
def test_rmsprop_lr_decay_with_batchnorm_after_flatten_and_dropout(device, digits):
    from convcore import layers, optimizers
    from convcore.models import Sequential
    (x, y), _ = digits
    convcore.set_seed(3)
    model = Sequential([layers.Input((28, 28, 1)), layers.Conv2D(4, 3, activation="relu"), layers.MaxPool2D(),
                        layers.Flatten(), layers.BatchNormalization(), layers.Dropout(0.5),
                        layers.Dense(10, activation="softmax")])
    opt = optimizers.RMSprop(lr=1e-3, decay=1e-4)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"], device=device)
    hist = model.fit(x[..., None] / 255.0, y, epochs=3, batch_size=32, verbose=0)
    loss = hist.history["loss"]
    assert loss[-1] < loss[0]
    assert opt.iterations == 3 * 8
    bn = model.layers[3]
    assert not np.allclose(bn.get_weights()[2], 0.0)  # moving mean followed the batches


@pytest.mark.parametrize("device", DEVICES)
def test_callback_subclass_with_tf_keras_2_hooks(device, digits):
    from convcore import callbacks, layers
    from convcore.models import Sequential
    (x, y), _ = digits

    class LossHistory(callbacks.Callback):
        def on_train_begin(self, logs={}):
            self.losses = []
            self.began = True

        def on_batch_end(self, batch, logs):
            self.losses.append(logs.get("loss"))

    convcore.set_seed(4)
    model = Sequential([layers.Input((28, 28)), layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", device=device)
    cb = LossHistory()
    hist = model.fit(x / 255.0, y, epochs=2, batch_size=64, callbacks=[cb], verbose=0)
    assert cb.began and len(cb.losses) == 2 * 4
    assert all(isinstance(v, float) and np.isfinite(v) for v in cb.losses)
    # the batch logs are Keras's running means: the last batch's is the epoch's loss
    assert cb.losses[3] == pytest.approx(hist.history["loss"][0], rel=1e-6)
    assert cb.losses[7] == pytest.approx(hist.history["loss"][1], rel=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_history_val_accuracy_and_load_model(device, digits, tmp_path):
    from convcore import layers
    from convcore.models import Sequential, load_model
    (x, y), (xt, yt) = digits
    x, xt = x[..., None] / 255.0, xt[..., None] / 255.0
    convcore.set_seed(5)
    model = Sequential([layers.Input((28, 28, 1)), layers.Conv2D(4, 3, activation="relu"), layers.MaxPool2D(),
                        layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"], device=device)
    hist = model.fit(x, y, epochs=2, batch_size=32, validation_data=(xt, yt), verbose=0)
    assert sorted(hist.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert len(hist.history["val_accuracy"]) == 2
    loss, acc = model.evaluate(xt, yt, verbose=0)
    assert hist.history["val_accuracy"][-1] == pytest.approx(acc, abs=1e-6)
    assert hist.history["val_loss"][-1] == pytest.approx(loss, rel=1e-5)
    assert acc == pytest.approx(np.mean(np.argmax(model.predict(xt, verbose=0), -1) == yt), abs=1e-6)
    path = tmp_path / "digits.keras"
    model.save(path)
    again = load_model(path)
    np.testing.assert_allclose(again.predict(xt, verbose=0), model.predict(xt, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_denoising_autoencoder(device):
    from convcore import layers
    from convcore.models import Model
    rng = np.random.default_rng(6)
    clean = np.clip(rng.uniform(0, 1, (32, 1, 1, 3)) + np.zeros((32, 32, 32, 3)), 0, 1).astype("float32")
    noisy = np.clip(clean + rng.normal(0, 0.2, clean.shape), 0, 1).astype("float32")
    convcore.set_seed(6)
    inp = layers.Input((32, 32, 3))
    x = layers.Conv2D(8, (3, 3), activation="relu", padding="same")(inp)
    x = layers.MaxPool2D((2, 2), padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Conv2D(8, (3, 3), activation="relu", padding="same")(x)
    x = layers.UpSampling2D((2, 2))(x)
    out = layers.Conv2D(3, (3, 3), activation="sigmoid", padding="same")(x)
    auto = Model(inp, out)
    auto.compile(optimizer="adam", loss="mean_squared_error", device=device)
    assert auto.output_shape == (None, 32, 32, 3)
    hist = auto.fit(noisy, clean, epochs=4, batch_size=8, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    pred = auto.predict(noisy[:2], verbose=0)
    assert pred.shape == (2, 32, 32, 3) and np.all((pred > 0) & (pred < 1))


@pytest.mark.parametrize("device", DEVICES)
def test_reuse_the_layers_of_a_base_frozen_with_a_new_head(device, digits):
    from convcore import layers
    from convcore.models import Sequential
    (x, y), _ = digits
    x = x[..., None] / 255.0
    convcore.set_seed(7)
    base = Sequential([layers.Input((28, 28, 1)), layers.Conv2D(4, 3, activation="relu", name="c1"),
                       layers.MaxPool2D(), layers.Flatten(), layers.Dense(16, activation="relu", name="d1")])
    model = Sequential()
    model.add(layers.Input((28, 28, 1)))
    for layer in base.layers:
        model.add(layer)
    for layer in model.layers:
        layer.trainable = False
    model.add(layers.Dense(10, activation="softmax", name="head"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", device=device)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    frozen = base.count_params()
    assert f"Non-trainable params: {frozen:,}" in text
    assert f"Trainable params: {16 * 10 + 10:,}" in text
    before = [w.copy() for w in base.get_weights()]
    head = model.get_layer("head").get_weights()[0].copy()
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    for a, b in zip(before, base.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(head, model.get_layer("head").get_weights()[0])


def test_importing_convcore_imports_no_keras_or_jax():
    import subprocess
    import sys
    code = ("import sys, convcore, convcore.models, convcore.layers, convcore.optimizers, convcore.losses, "
            "convcore.callbacks, convcore.utils, convcore.backend; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'jax', 'tensorflow', 'torch')); "
            "print(bad); sys.exit(1 if bad else 0)")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def _layer_order_graph(lib):
    """A residual block whose shortcut convolution is declared first, a layer shared
    at two depths, a second output, and an input no output uses."""
    L = lib.layers
    a = L.Input((8, 8, 3), name="a")
    unused = L.Input((4,), name="unused")
    short = L.Conv2D(4, 1, name="short")(a)
    x = L.Conv2D(4, 3, padding="same", name="c1")(a)
    x = L.ReLU(name="r1")(x)
    x = L.Conv2D(4, 3, padding="same", name="c2")(x)
    s = L.Add(name="add")([short, x])
    shared = L.Dense(4, name="shared")
    g = L.GlobalAveragePooling2D(name="gap")(s)
    out1 = shared(shared(g))
    out2 = L.Dense(2, name="head")(g)
    return lib.Model([a, unused], [out1, out2])


def test_model_layers_in_keras_order():
    """``model.layers`` (and so get_weights and Keras's positional HDF5 loading) in
    Keras's order: by depth from the outputs, ties by first visit -- where branches
    meet a plain depth-first walk differs."""
    import keras
    want = [l.name for l in _layer_order_graph(keras).layers]
    got = [l.name for l in _layer_order_graph(convcore).layers]
    assert got == want
    assert want.index("short") > want.index("r1")  # a depth-first walk puts it right after the input
