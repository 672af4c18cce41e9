"""Saving and loading convcore models: round trips, atomic writes, and refusing damaged
or foreign files without executing anything from them."""
from __future__ import annotations

import builtins
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import convcore
from convcore import Input, Model, Sequential, layers, losses, optimizers

FLAG = "_convcore_test_pickle_executed"


@pytest.fixture(autouse=True)
def _clean_flag():
    if hasattr(builtins, FLAG):
        delattr(builtins, FLAG)
    yield
    if hasattr(builtins, FLAG):
        delattr(builtins, FLAG)


def _seq(compile_kw=None):
    convcore.set_seed(0)
    m = Sequential([Input((6, 6, 1)), layers.Conv2D(3, 3, activation="relu", name="c"),
                    layers.BatchNormalization(name="bn"), layers.MaxPooling2D(name="p"), layers.Flatten(name="f"),
                    layers.Dropout(0.2, name="drop"), layers.Dense(4, activation="softmax", name="out")])
    if compile_kw is not False:
        m.compile(**(compile_kw or dict(optimizer=optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
                                        loss="sparse_categorical_crossentropy", metrics=["accuracy"])))
    return m


def _functional():
    convcore.set_seed(1)
    inp = Input((8, 2), name="inp")
    h = layers.Conv1D(2, 3, padding="same", activation="tanh", name="conv_a")(inp)
    a = layers.Add(name="add")([inp, h])
    c = layers.Conv1D(3, 3, padding="same", name="conv_b")(a)
    cat = layers.Concatenate(name="cat")([a, c])
    g = layers.GlobalAveragePooling1D(name="gap")(cat)
    out = layers.Dense(3, name="logits")(g)
    m = Model(inp, out, name="resnetish")
    m.compile(optimizer=optimizers.Adam(learning_rate=0.003, beta_1=0.8, epsilon=1e-6),
              loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    return m


def _train_a_bit(m, shape, k):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40,) + shape).astype(np.float32)
    y = rng.integers(0, k, 40)
    m.fit(x, y, epochs=2, batch_size=8, verbose=0)
    return x, y


def test_sequential_round_trip(tmp_path):
    m = _seq()
    x, y = _train_a_bit(m, (6, 6, 1), 4)
    p = tmp_path / "model.convcore"
    m.save(p)
    assert os.listdir(tmp_path) == ["model.convcore"]
    m2 = convcore.load_model(p)
    assert type(m2) is Sequential
    np.testing.assert_array_equal(m2.predict(x), m.predict(x))
    assert [l.name for l in m2.layers] == [l.name for l in m.layers]
    assert [type(l) for l in m2.layers] == [type(l) for l in m.layers]
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    assert isinstance(m2.optimizer, optimizers.SGD)
    assert m2.optimizer.get_config() == m.optimizer.get_config()
    assert m2.loss.name == "sparse_categorical_crossentropy" and not m2.loss.from_logits
    assert m2.metrics_names == ["accuracy"]
    assert m2.evaluate(x, y, verbose=0) == m.evaluate(x, y, verbose=0)
    assert m2.get_config() == m.get_config()
    # the loaded model trains
    m2.fit(x, y, epochs=1, verbose=0)
    # the file is a plain zip: JSON config plus .npy arrays
    with zipfile.ZipFile(p) as z:
        names = z.namelist()
        assert "config.json" in names
        assert all(n == "config.json" or (n.startswith("weights/") and n.endswith(".npy")) for n in names)
        assert json.loads(z.read("config.json"))["format"] == "convcore-model"


def test_functional_round_trip(tmp_path):
    m = _functional()
    x, y = _train_a_bit(m, (8, 2), 3)
    p = tmp_path / "f.convcore"
    m.save(str(p))
    m2 = convcore.load_model(str(p))
    assert type(m2) is Model and m2.name == "resnetish"
    np.testing.assert_array_equal(m2.predict(x), m.predict(x))
    assert [l.name for l in m2.layers] == [l.name for l in m.layers]
    assert m2.optimizer.get_config() == m.optimizer.get_config()
    assert isinstance(m2.loss, losses.SparseCategoricalCrossentropy) and m2.loss.from_logits
    assert m2.metrics_names == []
    g1 = m.loss_and_gradients(x, y)[1]
    g2 = m2.loss_and_gradients(x, y)[1]
    for a, b in zip(g1, g2):
        np.testing.assert_array_equal(a, b)


def test_load_without_compile(tmp_path):
    m = _seq()
    p = tmp_path / "m.convcore"
    m.save(p)
    m2 = convcore.load_model(p, compile=False)
    x = np.random.default_rng(0).standard_normal((3, 6, 6, 1)).astype(np.float32)
    np.testing.assert_array_equal(m2.predict(x), m.predict(x))
    with pytest.raises(RuntimeError, match="compile"):
        m2.fit(x, np.zeros(3, int), verbose=0)


def test_uncompiled_model_round_trip(tmp_path):
    m = _seq(compile_kw=False)
    p = tmp_path / "m.convcore"
    m.save(p)
    m2 = convcore.load_model(p)
    assert not m2._compiled
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_float64_model_round_trip(tmp_path):
    convcore.set_floatx("float64")
    try:
        m = Sequential([Input((3,)), layers.Dense(2)])
    finally:
        convcore.set_floatx("float32")
    m.compile("adam", "mse")
    p = tmp_path / "m64.convcore"
    m.save(p)
    m2 = convcore.load_model(p)
    assert all(w.dtype == np.float64 for w in m2.get_weights())
    x = np.random.default_rng(0).standard_normal((4, 3))
    np.testing.assert_array_equal(m2.predict(x), m.predict(x))
    assert m2.predict(x).dtype == np.float64


def test_save_weights_round_trip(tmp_path):
    m = _seq()
    x, _ = _train_a_bit(m, (6, 6, 1), 4)
    p = tmp_path / "w.weights.npz"
    m.save_weights(p)
    assert os.listdir(tmp_path) == ["w.weights.npz"]
    convcore.set_seed(99)
    fresh = Sequential([Input((6, 6, 1)), layers.Conv2D(3, 3, activation="relu"), layers.BatchNormalization(),
                        layers.MaxPooling2D(), layers.Flatten(), layers.Dropout(0.2),
                        layers.Dense(4, activation="softmax")])
    assert not np.array_equal(fresh.predict(x), m.predict(x))
    fresh.load_weights(p)
    np.testing.assert_array_equal(fresh.predict(x), m.predict(x))
    # a full model file also carries the weights
    m.save(tmp_path / "full.convcore")
    fresh2 = _seq(compile_kw=False)
    fresh2.set_weights([np.zeros_like(w) for w in fresh2.get_weights()])
    fresh2.load_weights(tmp_path / "full.convcore")
    np.testing.assert_array_equal(fresh2.predict(x), m.predict(x))


def test_load_weights_into_wrong_architecture(tmp_path):
    m = _seq()
    p = tmp_path / "w.npz"
    m.save_weights(p)
    other = Sequential([Input((6, 6, 1)), layers.Flatten(), layers.Dense(4)])
    with pytest.raises(ValueError):
        other.load_weights(p)


# ---------------------------------------------------------------------- atomic writes
def _boom_after(n, real):
    calls = {"n": 0}

    def wrapped(*a, **k):
        calls["n"] += 1
        if calls["n"] > n:
            raise OSError("disk full (simulated)")
        return real(*a, **k)

    return wrapped


@pytest.mark.parametrize("target", ["writestr", "write_array"])
def test_interrupted_save_keeps_previous_file(tmp_path, monkeypatch, target):
    m = _seq()
    p = tmp_path / "model.convcore"
    m.save(p)
    before = p.read_bytes()
    x = np.random.default_rng(0).standard_normal((5, 6, 6, 1)).astype(np.float32)
    pred = m.predict(x)
    m.set_weights([w + 1 for w in m.get_weights()])  # the new save would differ
    if target == "writestr":
        monkeypatch.setattr(zipfile.ZipFile, "writestr", _boom_after(2, zipfile.ZipFile.writestr))
    else:
        monkeypatch.setattr(np.lib.format, "write_array", _boom_after(2, np.lib.format.write_array))
    with pytest.raises(OSError, match="simulated"):
        m.save(p)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["model.convcore"]  # no temp file left behind
    assert p.read_bytes() == before
    np.testing.assert_array_equal(convcore.load_model(p).predict(x), pred)


def test_interrupted_save_weights_keeps_previous_file(tmp_path, monkeypatch):
    m = _seq()
    p = tmp_path / "w.npz"
    m.save_weights(p)
    before = p.read_bytes()
    m.set_weights([w + 1 for w in m.get_weights()])
    monkeypatch.setattr(np.lib.format, "write_array", _boom_after(3, np.lib.format.write_array))
    with pytest.raises(OSError, match="simulated"):
        m.save_weights(p)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["w.npz"]
    assert p.read_bytes() == before


def test_interrupted_first_save_leaves_nothing(tmp_path, monkeypatch):
    m = _seq()
    monkeypatch.setattr(zipfile.ZipFile, "writestr", _boom_after(1, zipfile.ZipFile.writestr))
    with pytest.raises(OSError):
        m.save(tmp_path / "new.convcore")
    assert os.listdir(tmp_path) == []


def test_keyboard_interrupt_during_save(tmp_path, monkeypatch):
    m = _seq()
    p = tmp_path / "m.convcore"
    m.save(p)
    before = p.read_bytes()

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(zipfile.ZipFile, "writestr", interrupt)
    with pytest.raises(KeyboardInterrupt):
        m.save(p)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["m.convcore"] and p.read_bytes() == before


# ---------------------------------------------------------------------- damaged and foreign files
@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_truncated_model_file(tmp_path, fraction):
    m = _seq()
    p = tmp_path / "m.convcore"
    m.save(p)
    data = p.read_bytes()
    cut = tmp_path / "cut.convcore"
    cut.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(ValueError):
        convcore.load_model(cut)
    with pytest.raises(ValueError):
        _seq(compile_kw=False).load_weights(cut)


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.7, 0.95])
def test_truncated_weights_file(tmp_path, fraction):
    m = _seq()
    p = tmp_path / "w.npz"
    m.save_weights(p)
    data = p.read_bytes()
    p.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(ValueError):
        m.load_weights(p)


def test_corrupted_weight_bytes(tmp_path):
    """Flip bytes inside a stored array (the zip CRC must catch it)."""
    m = _seq()
    p = tmp_path / "m.convcore"
    m.save(p)
    buf = io.BytesIO()
    with zipfile.ZipFile(p) as zin, zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    raw = bytearray(buf.getvalue())
    i = raw.find(b"weights/00000.npy")
    i = raw.find(b"\x93NUMPY", i)
    raw[i + 200] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(ValueError):
        convcore.load_model(p)


def test_foreign_text_file(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("this is not a model\n" * 10)
    with pytest.raises(ValueError):
        convcore.load_model(p)
    with pytest.raises(ValueError):
        _seq(compile_kw=False).load_weights(p)


def test_foreign_zip_and_json(tmp_path):
    p = tmp_path / "other.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("config.json", json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not a convcore model"):
        convcore.load_model(p)
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(ValueError):
        convcore.load_model(p)
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("config.json", b"\xff\xfe not json")
    with pytest.raises(ValueError):
        convcore.load_model(p)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        convcore.load_model(tmp_path / "nope.convcore")
    with pytest.raises(FileNotFoundError):
        _seq(compile_kw=False).load_weights(tmp_path / "nope.npz")


class _Evil:
    """Unpickling this sets a flag on builtins (what an attacker's payload would run)."""

    def __reduce__(self):
        return (exec, (f"import builtins; builtins.{FLAG} = True",))


def _evil_npy():
    arr = np.empty(2, dtype=object)
    arr[0] = _Evil()
    arr[1] = 1.0
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=True)
    return buf.getvalue()


def test_payload_is_live():
    """Sanity check of the crafted payload: loading it with pickle allowed runs it."""
    np.lib.format.read_array(io.BytesIO(_evil_npy()), allow_pickle=True)
    assert getattr(builtins, FLAG, False) is True


def test_pickled_object_array_in_weights_npz(tmp_path):
    m = _seq(compile_kw=False)
    p = tmp_path / "evil.npz"
    weights = {f"w{i:05d}": w for i, w in enumerate(m.get_weights())}
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("w00000.npy", _evil_npy())  # the first weight replaced by the payload
        for k, w in list(weights.items())[1:]:
            buf = io.BytesIO()
            np.lib.format.write_array(buf, w)
            z.writestr(k + ".npy", buf.getvalue())
    p2 = tmp_path / "evil2.npz"
    with zipfile.ZipFile(p2, "w") as z:
        z.writestr("w00000.npy", _evil_npy())
    w_before = m.get_weights()
    for path in (p, p2):
        with pytest.raises(ValueError):
            m.load_weights(path)
        assert not hasattr(builtins, FLAG), "loading weights executed pickled code"
    for a, b in zip(w_before, m.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_pickled_object_array_in_model_file(tmp_path):
    m = _seq()
    p = tmp_path / "m.convcore"
    m.save(p)
    evil = tmp_path / "evil.convcore"
    with zipfile.ZipFile(p) as zin, zipfile.ZipFile(evil, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "weights/00001.npy":
                data = _evil_npy()
            zout.writestr(info.filename, data)
    with pytest.raises(ValueError, match="00001"):
        convcore.load_model(evil)
    assert not hasattr(builtins, FLAG), "load_model executed pickled code"
    with pytest.raises(ValueError):
        _seq(compile_kw=False).load_weights(evil)
    assert not hasattr(builtins, FLAG), "load_weights executed pickled code"


def test_plain_pickle_file_is_refused(tmp_path):
    p = tmp_path / "m.pkl"
    p.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(ValueError):
        convcore.load_model(p)
    with pytest.raises(ValueError):
        _seq(compile_kw=False).load_weights(p)
    assert not hasattr(builtins, FLAG)


# ---------------------------------------------------------------- files from before the tape
DATA = __import__("pathlib").Path(__file__).parent / "data"


def test_files_saved_before_the_op_house_still_load():
    """tests/data/*_v1.convcore were written by `model.save` of commit 4201158 (layers
    with hand-written backward); their predictions then are in saved_v1_outputs.npz."""
    ref = np.load(DATA / "saved_v1_outputs.npz")
    seq = convcore.load_model(DATA / "sequential_v1.convcore")
    np.testing.assert_allclose(seq.predict(ref["x"]), ref["seq"], rtol=1e-6, atol=1e-7)
    assert isinstance(seq.optimizer, convcore.optimizers.SGD) and seq.optimizer.momentum == 0.9
    assert seq.metrics_names == ["accuracy"]
    func = convcore.load_model(DATA / "functional_v1.convcore")
    np.testing.assert_allclose(func.predict([ref["xa"], ref["xb"]]), ref["func"], rtol=1e-6, atol=1e-7)
    assert [l.name for l in func.layers][-2:] == ["cat", "out"]


def test_registered_initializer_and_layer_round_trip(tmp_path):
    from convcore.saving import register_keras_serializable

    @register_keras_serializable(package="tests")
    def halves(shape, dtype):
        return np.full(shape, 0.5, dtype=dtype)

    @register_keras_serializable(package="tests")
    class Scale(layers.Layer):
        def __init__(self, factor=2.0, **kw):
            super().__init__(**kw)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    m = Sequential([Input((3,)), Scale(3.0, name="scale"), layers.Dense(2, kernel_initializer=halves, name="d")])
    cfg = m.get_config()
    assert cfg["layers"][1]["config"]["kernel_initializer"] == "halves"  # not silently "glorot_uniform"
    m.compile("sgd", "mse")
    p = tmp_path / "m.convcore"
    m.save(p)
    again = convcore.load_model(p)
    assert isinstance(again.get_layer("scale"), Scale) and again.get_layer("scale").factor == 3.0
    x = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(again.predict(x), m.predict(x))
    # a fresh model from the config uses the registered initializer
    clone = convcore.models.clone_model(m)
    np.testing.assert_array_equal(clone.get_layer("d").get_weights()[0], np.full((3, 2), 0.5))


def test_unknown_classes_are_refused_by_name():
    from convcore.saving import deserialize_keras_object
    with pytest.raises(ValueError, match="Unknown class 'os.system'"):
        deserialize_keras_object({"class_name": "os.system", "config": {}})
    with pytest.raises(ValueError, match="Unknown class '_Conv'"):
        deserialize_keras_object({"class_name": "_Conv", "config": {}})
