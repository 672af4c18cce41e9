"""Training with convcore's Keras-style API: the course's user code, fit options and
progress output, reproducibility, callbacks, predict/evaluate, the MNIST convnet, and
the MNIST loaders."""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest

import convcore
from convcore import Input, Sequential, callbacks, layers, mnist_demo, optimizers
from convcore.datasets import mnist, mnist10k


def _random_data(seed=0, n=600, nin=20, nout=4):
    """Random inputs with labels a (noisy) linear function of them, so training can learn."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, nin)).astype(np.float32)
    w = rng.standard_normal((nin, nout))
    y = np.argmax(x @ w + 0.3 * rng.standard_normal((n, nout)), axis=1)
    return x, y


def _mlp(nin=20, nh=16, nout=4, **compile_kw):
    model = Sequential()
    model.add(layers.Dense(units=nh, input_shape=(nin,), activation="sigmoid", name="hidden"))
    model.add(layers.Dense(units=nout, activation="softmax", name="output"))
    kw = dict(optimizer=optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    kw.update(compile_kw)
    model.compile(**kw)
    return model


# ---------------------------------------------------------------------- the user's code
def test_course_user_code_runs_unchanged(capsys):
    rng = np.random.default_rng(0)
    Xtr = rng.standard_normal((1000, 784)).astype(np.float32)
    ytr = rng.integers(0, 10, 1000)
    Xts = rng.standard_normal((300, 784)).astype(np.float32)
    yts = rng.integers(0, 10, 300)

    # --- the user's code (Keras imports replaced by convcore's) ---
    from convcore.models import Model, Sequential  # noqa: F811
    from convcore.layers import Dense, Activation  # noqa: F401
    from convcore import optimizers  # noqa: F811

    nin = Xtr.shape[1]  # dimension of input data
    nh = 256  # number of hidden units
    nout = int(np.max(ytr) + 1)  # number of outputs = 10 since there are 10 classes
    model = Sequential()
    model.add(Dense(units=nh, input_shape=(nin,), activation='sigmoid', name='hidden'))
    model.add(Dense(units=nout, activation='softmax', name='output'))
    model.summary()

    opt = optimizers.Adam(lr=0.001)
    model.compile(optimizer=opt,
                  loss='sparse_categorical_crossentropy',
                  metrics=['accuracy'])
    hist = model.fit(Xtr, ytr, epochs=3, batch_size=100, validation_data=(Xts, yts))
    # --- end of the user's code ---

    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for k, v in hist.history.items():
        assert len(v) == 3, k
        assert all(np.isfinite(v)), k
    assert all(0 <= a <= 1 for a in hist.history["accuracy"] + hist.history["val_accuracy"])
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert model.history is hist
    assert hist.epoch == [0, 1, 2]
    out = capsys.readouterr().out
    assert "203,530" in out  # 784*256+256 + 256*10+10
    assert "Epoch 3/3" in out


def test_fit_validation_split():
    x, y = _random_data()
    convcore.set_seed(0)
    model = _mlp()
    hist = model.fit(x, y, epochs=2, batch_size=50, validation_split=0.25, verbose=0)
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 2 for v in hist.history.values())
    # Keras takes the validation data from the end, before shuffling
    r = model.evaluate(x[450:], y[450:], verbose=0)
    assert r[0] == pytest.approx(hist.history["val_loss"][-1], rel=1e-5)
    assert r[1] == pytest.approx(hist.history["val_accuracy"][-1], rel=1e-6)


def test_fit_learns():
    x, y = _random_data()
    convcore.set_seed(0)
    model = _mlp()
    hist = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert hist.history["accuracy"][-1] > 0.8
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]


def test_verbose_modes(capsys):
    x, y = _random_data(n=200)
    model = _mlp()
    capsys.readouterr()
    model.fit(x, y, epochs=2, batch_size=50, verbose=0)
    assert capsys.readouterr().out == ""

    model.fit(x, y, epochs=2, batch_size=50, verbose=1, validation_split=0.2)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "4/4" in out  # the step counter: 160 samples in batches of 50
    assert "loss:" in out and "val_loss:" in out and "accuracy:" in out

    # Keras 3's verbose=2: the epoch header on its own line, then one line of logs
    model.fit(x, y, epochs=3, batch_size=50, verbose=2)
    out = capsys.readouterr().out
    lines = [l for l in out.splitlines() if l.strip()]
    assert len(lines) == 6, out
    for i in range(3):
        assert lines[2 * i] == f"Epoch {i + 1}/3"
        assert lines[2 * i + 1].startswith("4/4 - ") and "loss:" in lines[2 * i + 1]
    assert "\r" not in out and "\x1b" not in out


def test_verbose_auto_is_progress_bar(capsys):
    x, y = _random_data(n=100)
    model = _mlp()
    model.fit(x, y, epochs=1, batch_size=25)
    out = capsys.readouterr().out
    assert "4/4" in out and "loss:" in out
    assert "Epoch 1/1" not in out  # Keras 3 prints the epoch header only for several epochs
    model.fit(x, y, epochs=2, batch_size=25)
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out


def test_evaluate_and_predict_show_a_bar_by_default_as_keras(capsys):
    x, y = _random_data(n=100)
    model = _mlp()
    capsys.readouterr()
    model.predict(x, verbose=0)
    model.evaluate(x, y, verbose=0)
    assert capsys.readouterr().out == ""
    model.predict(x, batch_size=25)  # verbose='auto': Keras 3 shows the bar
    out = capsys.readouterr().out
    assert "4/4" in out and "step" in out
    model.evaluate(x, y, batch_size=50)
    out = capsys.readouterr().out
    assert "2/2" in out and "loss:" in out


def test_set_seed_makes_training_reproducible():
    x, y = _random_data()

    def train():
        convcore.set_seed(123)
        m = Sequential([Input((20,)), layers.Dense(16, activation="tanh"), layers.Dropout(0.3),
                        layers.Dense(4, activation="softmax")])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        h = m.fit(x, y, epochs=3, batch_size=32, verbose=0, validation_split=0.1)
        return m.get_weights(), h.history

    w1, h1 = train()
    w2, h2 = train()
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    assert h1 == h2
    convcore.set_seed(124)
    m = Sequential([Input((20,)), layers.Dense(16, activation="tanh")])
    assert not np.array_equal(m.get_weights()[0], w1[0])


def test_early_stopping_patience_and_restore_best_weights():
    x, y = _random_data(n=300)
    model = _mlp(optimizer=optimizers.SGD(learning_rate=1e-3))

    # A monitor that gets worse every epoch after the first: stops after patience+1 epochs.
    class Fake(callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.weights = []

        def on_epoch_end(self, epoch, logs=None):
            logs["fake"] = float(epoch)  # minimised: best at epoch 0
            self.weights.append(self.model.get_weights())

    fake = Fake()
    es = callbacks.EarlyStopping(monitor="fake", mode="min", patience=2, restore_best_weights=True)
    hist = model.fit(x, y, epochs=20, batch_size=100, verbose=0, callbacks=[fake, es])
    # Keras 3's patience: the second epoch without improvement stops training
    assert len(hist.history["loss"]) == 3
    assert es.stopped_epoch == 2
    assert model.stop_training
    for a, b in zip(model.get_weights(), fake.weights[0]):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(fake.weights[0], fake.weights[-1]))


def test_early_stopping_on_val_loss_stops_when_overfitting():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 20)).astype(np.float32)
    y = rng.integers(0, 4, 64)  # random labels: the validation loss can only get worse
    xv = rng.standard_normal((64, 20)).astype(np.float32)
    yv = rng.integers(0, 4, 64)
    convcore.set_seed(0)
    model = _mlp(nh=64, optimizer=optimizers.Adam(learning_rate=0.05))
    es = callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    hist = model.fit(x, y, epochs=100, batch_size=16, validation_data=(xv, yv), verbose=0, callbacks=[es])
    n = len(hist.history["val_loss"])
    assert n < 100
    best = min(hist.history["val_loss"])
    assert model.evaluate(xv, yv, verbose=0)[0] == pytest.approx(best, rel=1e-5)


def test_early_stopping_unknown_monitor():
    x, y = _random_data(n=100)
    model = _mlp()
    # Keras 3 warns that the monitor is missing and trains on
    with pytest.warns(UserWarning, match="val_loss"):
        hist = model.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.EarlyStopping(monitor="val_loss")])
    assert len(hist.history["loss"]) == 2


def test_model_checkpoint(tmp_path):
    x, y = _random_data(n=300)
    convcore.set_seed(1)
    model = _mlp()
    every = callbacks.ModelCheckpoint(str(tmp_path / "ep{epoch:02d}.convcore"), monitor="loss")
    hist = model.fit(x, y, epochs=3, batch_size=50, verbose=0, callbacks=[every])
    assert sorted(os.listdir(tmp_path)) == ["ep01.convcore", "ep02.convcore", "ep03.convcore"]
    last = convcore.load_model(tmp_path / "ep03.convcore")
    np.testing.assert_array_equal(last.predict(x), model.predict(x))

    # save_best_only: written when val_loss improves, never when it gets worse
    best_dir = tmp_path / "best"
    best_dir.mkdir()
    path = best_dir / "best.weights.npz"

    class Worse(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["score"] = [1.0, 0.5, 0.7, 0.9][epoch]

    ck = callbacks.ModelCheckpoint(str(path), monitor="score", mode="min", save_best_only=True,
                                   save_weights_only=True)

    class Spy(callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.mtimes, self.weights = [], []

        def on_epoch_end(self, epoch, logs=None):
            self.mtimes.append(os.stat(path).st_mtime_ns if path.exists() else None)
            self.weights.append(self.model.get_weights())

    spy = Spy()
    model.fit(x, y, epochs=4, batch_size=50, verbose=0, callbacks=[Worse(), ck, spy])
    assert os.listdir(best_dir) == ["best.weights.npz"]
    # the file holds epoch 2's weights (score 0.5)
    fresh = _mlp()
    fresh.load_weights(path)
    for a, b in zip(fresh.get_weights(), spy.weights[1]):
        np.testing.assert_array_equal(a, b)
    assert ck.best == 0.5


def test_predict_batches_equal_single_forward():
    x, y = _random_data(n=257)
    convcore.set_seed(2)
    model = Sequential([Input((20,)), layers.Dense(8, activation="tanh"), layers.Dropout(0.5),
                        layers.BatchNormalization(), layers.Dense(4, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    full = model(x)
    for bs in (1, 7, 32, 256, 257, 1000):
        np.testing.assert_allclose(model.predict(x, batch_size=bs), full, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(model.predict(x), full, rtol=1e-6, atol=1e-7)
    assert model.predict(x[:0]).shape == (0, 4)


def test_evaluate_matches_test_on_batch():
    x, y = _random_data(n=250)
    convcore.set_seed(4)
    model = _mlp()
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    loss_b, acc_b = model.test_on_batch(x, y)
    loss_e, acc_e = model.evaluate(x, y, batch_size=32, verbose=0)
    assert loss_e == pytest.approx(loss_b, rel=1e-5)
    assert acc_e == pytest.approx(acc_b, abs=1e-12)
    assert acc_b == pytest.approx(np.mean(model.predict(x).argmax(1) == y))
    d = model.evaluate(x, y, return_dict=True, verbose=0)
    assert set(d) == {"loss", "accuracy"}


def test_evaluate_without_metrics_returns_scalar():
    x, y = _random_data(n=100)
    model = _mlp(metrics=None)
    r = model.evaluate(x, y, verbose=0)
    assert isinstance(r, float)
    assert r == pytest.approx(model.test_on_batch(x, y), rel=1e-5)


def test_train_on_batch_reduces_loss():
    x, y = _random_data(n=128)
    convcore.set_seed(5)
    model = _mlp()
    first = model.train_on_batch(x, y)[0]
    for _ in range(30):
        last = model.train_on_batch(x, y)[0]
    assert last < first


def test_fit_other_losses():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((200, 5)).astype(np.float32)
    yb = (x[:, :1] > 0).astype(np.float32)
    convcore.set_seed(0)
    m = Sequential([Input((5,)), layers.Dense(1, activation="sigmoid")])
    m.compile(optimizers.Adam(learning_rate=0.05), "binary_crossentropy", metrics=["accuracy"])
    h = m.fit(x, yb, epochs=10, batch_size=20, verbose=0)
    assert h.history["accuracy"][-1] > 0.9
    m = Sequential([Input((5,)), layers.Dense(2)])
    m.compile(optimizers.SGD(learning_rate=0.05, momentum=0.9), "mse")
    target = x[:, :2] * 2 - 1
    h = m.fit(x, target, epochs=10, batch_size=20, verbose=0)
    assert h.history["loss"][-1] < 0.01
    yc = np.eye(3)[rng.integers(0, 3, 200)]
    m = Sequential([Input((5,)), layers.Dense(3, activation="softmax")])
    m.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    h = m.fit(x, yc, epochs=1, batch_size=50, verbose=0)
    assert set(h.history) == {"loss", "accuracy"}


# ---------------------------------------------------------------------- MNIST convnet (slow test)
def test_mnist_convnet_reaches_accuracy():
    """The course convnet, 2 epochs, batch 128, Adam 1e-3, seed 0, 8,000 shipped training
    digits. Measured on this build: 0.932 test accuracy (seeds 1 and 2: 0.928, 0.939;
    seed 0 after 1/3/4 epochs: 0.887/0.944/0.954), so 2 epochs do not reach 0.95 here;
    the bound 0.91 leaves a 2-point margin."""
    convcore.set_seed(0)
    (xtr, ytr), (xts, yts) = mnist_demo.load_scaled()
    model = mnist_demo.build_convnet()
    model.compile(optimizer=optimizers.Adam(learning_rate=1e-3), loss="sparse_categorical_crossentropy")
    model.fit(xtr, ytr, epochs=2, batch_size=128, verbose=0)
    acc = float(np.mean(model.predict(xts, batch_size=500).argmax(axis=1) == yts))
    assert acc >= 0.91, acc


# ---------------------------------------------------------------------- MNIST loaders
def test_mnist_load_data_shipped():
    (xtr, ytr), (xts, yts) = mnist10k.load_data()
    assert xtr.shape == (8000, 28, 28) and xtr.dtype == np.uint8
    assert ytr.shape == (8000,)
    assert xts.shape == (2000, 28, 28) and xts.dtype == np.uint8
    assert yts.shape == (2000,)
    assert set(np.unique(ytr)) == set(range(10)) and set(np.unique(yts)) <= set(range(10))
    assert xtr.max() == 255 and xtr.min() == 0
    (sx, sy), (tx, ty) = mnist_demo.load_scaled()
    assert sx.shape == (8000, 28, 28, 1) and sx.dtype == np.float32 and sx.max() == 1.0
    np.testing.assert_array_equal(ty, yts)


def test_mnist_load_data_npz(tmp_path):
    rng = np.random.default_rng(0)
    arrs = dict(x_train=rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), y_train=rng.integers(0, 10, 5).astype(np.uint8),
                x_test=rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), y_test=rng.integers(0, 10, 3).astype(np.uint8))
    p = tmp_path / "mnist.npz"
    np.savez(p, **arrs)
    (a, b), (c, d) = mnist.load_data(str(p))
    for got, k in zip((a, b, c, d), ("x_train", "y_train", "x_test", "y_test")):
        np.testing.assert_array_equal(got, arrs[k])
    (a2, _), _ = mnist.load_data(p)  # a pathlib path works too
    np.testing.assert_array_equal(a2, arrs["x_train"])
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=arrs["x_train"])
    with pytest.raises(ValueError, match="y_train"):
        mnist.load_data(bad)


def _write_idx(path, arr, gz=False):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(header + arr.tobytes())


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_load_data_idx_folder(tmp_path, gz):
    rng = np.random.default_rng(1)
    xtr = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    ytr = rng.integers(0, 10, 6).astype(np.uint8)
    xts = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    yts = rng.integers(0, 10, 4).astype(np.uint8)
    sfx = ".gz" if gz else ""
    _write_idx(tmp_path / f"train-images-idx3-ubyte{sfx}", xtr, gz)
    _write_idx(tmp_path / f"train-labels-idx1-ubyte{sfx}", ytr, gz)
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{sfx}", xts, gz)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{sfx}", yts, gz)
    (a, b), (c, d) = mnist.load_data(tmp_path)
    np.testing.assert_array_equal(a, xtr)
    np.testing.assert_array_equal(b, ytr)
    np.testing.assert_array_equal(c, xts)
    np.testing.assert_array_equal(d, yts)
    assert a.shape == (6, 28, 28) and b.shape == (6,)


def test_mnist_idx_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        mnist.load_data(tmp_path)  # empty folder
    _write_idx(tmp_path / "x", np.zeros((2, 3), np.uint8))
    data = (tmp_path / "x").read_bytes()
    (tmp_path / "short").write_bytes(data[:-1])
    with pytest.raises(ValueError, match="expected 6 bytes"):
        mnist.read_idx(str(tmp_path / "short"))
    (tmp_path / "notidx").write_bytes(b"hello world")
    with pytest.raises(ValueError, match="IDX"):
        mnist.read_idx(str(tmp_path / "notidx"))
    with pytest.raises(FileNotFoundError):
        mnist.load_data(tmp_path / "missing.npz")


def test_demo_cli_rejects_bad_arguments(capsys):
    from convcore.__main__ import main
    assert main(["demo", "--device", "tpu"]) == 2
    assert "--device needs one of: cpu, gpu, auto" in capsys.readouterr().err
    assert main(["demo", "--device"]) == 2
    assert main(["demo", "--epochs", "x"]) == 2
    assert "--epochs needs an integer" in capsys.readouterr().err


def test_demo_run_writes_its_figures(tmp_path, capsys):
    """`python -m convcore demo` end to end, one epoch: training, evaluation, the
    feature maps of a layer called on a digit, and the figures."""
    from convcore import mnist_demo
    r = mnist_demo.run(str(tmp_path), epochs=1, verbose=0)
    assert r["accuracy"] > 0.85  # 0.8865 after one epoch, the same as before the tape
    assert len(r["files"]) >= 3 and all(os.path.getsize(f) > 0 for f in r["files"])
    assert "test accuracy" in capsys.readouterr().out


def test_demo_cli_help_and_bad_arguments_do_not_train(capsys):
    from convcore.__main__ import main
    assert main(["demo", "--help"]) == 0
    assert "python -m convcore demo" in capsys.readouterr().out
    assert main(["demo", "--frobnicate"]) == 2
    assert main(["demo", "a", "b"]) == 2
    assert main(["demo", "--outdir"]) == 2
