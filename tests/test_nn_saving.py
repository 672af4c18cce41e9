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


def test_batchnorm_without_center_or_scale_saved_before_keras_3_weights_loads():
    """tests/data/batchnorm_unscaled_v1.convcore was written by commit c00d466, whose
    BatchNormalization held gamma and beta even with scale=False / center=False (Keras 3
    holds neither then): the file keeps loading, with the same predictions."""
    m = convcore.load_model(DATA / "batchnorm_unscaled_v1.convcore")
    want = np.load(DATA / "batchnorm_unscaled_v1_outputs.npy")
    np.testing.assert_allclose(m.predict(np.ones((2, 4)), verbose=0), want, rtol=1e-6, atol=1e-7)
    bn1, bn2 = m.layers[1], m.layers[2]
    assert (bn1.center, bn1.scale, bn2.center, bn2.scale) == (False, True, True, False)
    assert len(bn1.weights) == len(bn2.weights) == 4 and len(bn1.trainable_weights) == len(bn2.trainable_weights) == 1


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


# ---------------------------------------------------------------- issue 11, item 2: zip bombs
import hostile_corpus as hc  # noqa: E402  (tests/ is on the path)
import struct  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
import zlib  # noqa: E402

from convcore.saving import ConfigError  # noqa: E402


def _bounded(fn, mb=40, seconds=3.0):
    """Run ``fn`` and return its exception; it must raise within ``seconds`` and
    allocate less than ``mb`` MB (traced by tracemalloc: a decompressed bomb would show)."""
    tracemalloc.start()
    t = time.perf_counter()
    try:
        fn()
    except Exception as e:
        err = e
    else:
        err = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.perf_counter() - t < seconds
    assert peak < mb * 2 ** 20, f"{peak / 2 ** 20:.0f} MB allocated"
    return err


def _model_members(tmp_path):
    m = _seq()
    p = tmp_path / "src.convcore"
    m.save(p)
    with zipfile.ZipFile(p) as z:
        return m, {n: z.read(n) for n in z.namelist()}


def test_config_bomb_is_refused_before_it_is_read(tmp_path):
    """Issue 11 #2: a 1 MB file whose config.json is 1 GiB of spaces drove RSS to 2.1 GB."""
    p = tmp_path / "bomb.convcore"
    hc._raw_zip(p, [hc._Entry("config.json", hc._periodic_deflate(b"", b" ", hc.GiB), hc.GiB)])
    assert p.stat().st_size < 2 << 20
    err = _bounded(lambda: convcore.load_model(p))
    assert isinstance(err, ValueError) and "bomb.convcore" in str(err) and "config.json" in str(err)
    # the same stream under a small declared size: cut at that size (a damaged entry)
    hc._raw_zip(p, [hc._Entry("config.json", hc._periodic_deflate(b"", b" ", hc.GiB), 5000)])
    err = _bounded(lambda: convcore.load_model(p))
    assert isinstance(err, ValueError) and "damaged entry 'config.json'" in str(err)


def test_config_over_the_limit_is_refused(tmp_path):
    from convcore.saving import saving_lib
    m = _seq()
    cfg = json.dumps({"format": "convcore-model", "version": 1, "model": convcore.saving.model_config(m)})
    p = tmp_path / "big.convcore"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", cfg + " " * (saving_lib.MAX_CONFIG_BYTES + 1 - len(cfg)))
    with pytest.raises(ValueError, match=r"big\.convcore: entry 'config.json' declares \d+ bytes, more than"):
        convcore.load_model(p)


@pytest.mark.parametrize("fmt", ["model", "weights"])
def test_weight_bomb_is_refused_before_it_is_read(tmp_path, fmt):
    """Issue 11 #2: an 11 MB file expanding to 11 GiB as one weight entry."""
    m, members = _model_members(tmp_path)
    header = hc._npy_header(m.weights[0].shape)
    stream = hc._periodic_deflate(header, b"\0", 11 * hc.GiB)
    first = "weights/00000.npy" if fmt == "model" else "w00000.npy"
    others = ({n: d for n, d in members.items() if n != first} if fmt == "model" else
              {f"w{i:05d}.npy": hc._npy(w) for i, w in enumerate(m.get_weights()) if i})
    entries = [hc._Entry(n, hc._deflated(d), len(d), zlib.crc32(d)) for n, d in others.items()]
    for declared in (len(header) + 11 * hc.GiB, len(members["weights/00000.npy"])):  # honest, then lying
        p = tmp_path / f"bomb.{fmt}"
        hc._raw_zip(p, [hc._Entry(first, stream, declared)] + entries)
        before = m.get_weights()
        err = _bounded((lambda: convcore.load_model(p)) if fmt == "model" else (lambda: m.load_weights(p)))
        assert isinstance(err, ValueError) and f"bomb.{fmt}" in str(err) and first in str(err), err
        for a, b in zip(before, m.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_weight_of_another_shape_is_refused_from_its_header(tmp_path, monkeypatch):
    """The model's shapes bound what is read: an entry bigger than the model's weight
    is refused from its declared size, one of another shape from its header, before
    any data is read (at most the header's bytes come out of the entry)."""
    m = _seq(compile_kw=False)
    p = tmp_path / "w.npz"
    got = {}
    real_read = zipfile.ZipExtFile.read

    def counting_read(self, n=-1):
        b = real_read(self, n)
        got[self.name] = got.get(self.name, 0) + len(b)
        return b

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    for wrong, message in [(np.zeros((1000, 1000), np.float32), r"entry 'w00002.npy' declares 4000128 bytes, more "
                                                                 r"than the \d+ it may have \(refused before reading"),
                           (np.zeros((3, 1), np.float32), r"weight entry 'w00002.npy' has shape \(3, 1\); the "
                                                          r"model's weight 'bn/gamma' has shape \(3,\)")]:
        np.savez(p, **{f"w{i:05d}": (wrong if i == 2 else w) for i, w in enumerate(m.get_weights())})
        got.clear()
        with pytest.raises(ValueError, match=r"w\.npz: " + message):
            m.load_weights(p)
        assert got.get("w00002.npy", 0) <= 128, got  # at most the 128-byte .npy header, never the data


def test_a_million_entries_are_refused_before_the_directory_is_read(tmp_path):
    p = tmp_path / "many.npz"
    hc._raw_zip(p, [hc._Entry("a", b"", 0, 0, zipfile.ZIP_STORED)], central_copies=10 ** 6)
    for load in (lambda: convcore.load_model(p), lambda: _seq(compile_kw=False).load_weights(p)):
        err = _bounded(load, mb=20)
        assert isinstance(err, ValueError) and "many.npz" in str(err) and "1000000 entries" in str(err)


@pytest.mark.parametrize("dtype", ["complex64", "complex128", "datetime64[s]", "timedelta64[ms]", "bool", "<U2",
                                   "f4,f4"])
def test_weights_of_a_non_real_dtype_are_refused(tmp_path, dtype):
    """Issue 11 #5: complex weights were accepted (the imaginary part dropped), datetime too."""
    m = _seq(compile_kw=False)
    w = m.get_weights()
    p = tmp_path / "odd.npz"
    np.savez(p, **{f"w{i:05d}": (np.zeros(a.shape, dtype) if i == 0 else a) for i, a in enumerate(w)})
    with pytest.raises(ValueError, match=r"odd\.npz: weight entry 'w00000.npy' has dtype"):
        m.load_weights(p)
    full = tmp_path / "odd.convcore"
    m.save(full)
    members = _members_of(full)
    members["weights/00000.npy"] = hc._npy(np.zeros(w[0].shape, dtype))
    _write_members(full, members)
    with pytest.raises(ValueError, match=r"odd\.convcore: weight entry 'weights/00000.npy' has dtype"):
        convcore.load_model(full)


def _members_of(p):
    with zipfile.ZipFile(p) as z:
        return {n: z.read(n) for n in z.namelist()}


def _write_members(p, members):
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in members.items():
            z.writestr(n, d)


def test_a_damaged_npz_entry_is_named(tmp_path):
    """Issue 11 #5: was "got 0 weight arrays"."""
    m = _seq(compile_kw=False)
    p = tmp_path / "w.npz"
    m.save_weights(p)
    raw = bytearray(p.read_bytes())
    at = raw.find(b"\x93NUMPY", raw.find(b"w00000.npy"))
    raw[at + 130] ^= 0x55  # in the data of the conv kernel
    p.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"w\.npz: damaged entry 'w00000.npy'") as e:
        m.load_weights(p)
    assert "0 weight arrays" not in str(e.value)


def test_valid_weights_in_other_layouts_still_load(tmp_path):
    """Fortran order, big-endian data and float64 into a float32 model (cast as set_weights does)."""
    m = _seq(compile_kw=False)
    w = [a + 1 for a in m.get_weights()]
    p = tmp_path / "w.npz"
    np.savez(p, **{f"w{i:05d}": [np.asfortranarray(a), a.astype(">f4"), a.astype(np.float64)][i % 3]
                   for i, a in enumerate(w)})
    m.load_weights(p)
    for a, b in zip(w, m.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_flipped_and_truncated_files_raise_only_value_errors(tmp_path):
    """Seeded byte flips and truncations of a model and a weights file: each load
    succeeds or raises a ValueError naming the file (zipfile's NotImplementedError for
    "zip file version 19.2" or flag bits 5 and 6 escaped before)."""
    m = _seq()
    rng = np.random.default_rng(20240611)
    for name, save in [("m.convcore", m.save), ("w.npz", m.save_weights)]:
        save(tmp_path / name)
        data = (tmp_path / name).read_bytes()
        target = tmp_path / ("flipped_" + name)
        for trial in range(150):
            b = bytearray(data)
            if trial % 3 == 0:
                b = b[:int(rng.integers(0, len(b)))]
            else:
                for _ in range(int(rng.integers(1, 4))):
                    b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
            target.write_bytes(bytes(b))
            for load in (lambda: convcore.load_model(target), lambda: _seq(compile_kw=False).load_weights(target)):
                try:
                    load()
                except ValueError as e:
                    assert target.name in str(e)


# ---------------------------------------------------------------- issue 11, item 5: malformed configs
def _edited(tmp_path, edit, functional=False, text=None, name="bad.convcore"):
    m = _functional() if functional else _seq()
    src = tmp_path / "src.convcore"
    m.save(src)
    members = _members_of(src)
    cfg = json.loads(members["config.json"])
    if edit is not None:
        edit(cfg)
    members["config.json"] = text if text is not None else json.dumps(cfg)
    p = tmp_path / name
    _write_members(p, members)
    return p


def _set(path, value):
    def edit(c):
        for k in path[:-1]:
            c = c[k]
        c[path[-1]] = value
    return edit


def _del(path):
    def edit(c):
        for k in path[:-1]:
            c = c[k]
        del c[path[-1]]
    return edit


MALFORMED = [
    # (id, edit, functional, text, expected message after the file name)
    ("optimizer_os_system", _set(["compile", "optimizer", "name"], "os.system"), False, None,
     "config key 'compile.optimizer.name': unknown optimizer 'os.system'"),
    ("optimizer_lr_inf", _set(["compile", "optimizer", "learning_rate"], float("inf")), False, None,
     "config key 'compile.optimizer.learning_rate': SGD: learning_rate must be a finite number"),
    ("optimizer_bad_key", _set(["compile", "optimizer", "decay"], 0.1), False, None,
     "config key 'compile.optimizer.decay': is not an argument of SGD"),
    ("optimizer_name_missing", _del(["compile", "optimizer", "name"]), False, None,
     "config key 'compile.optimizer.name': is missing"),
    ("loss_unknown", _set(["compile", "loss", "name"], "hinge_of_doom"), False, None,
     "config key 'compile.loss.name': unknown loss 'hinge_of_doom'"),
    ("loss_missing", _del(["compile", "loss"]), False, None, "config key 'compile.loss': is missing"),
    ("loss_from_logits_string", _set(["compile", "loss", "from_logits"], "yes"), False, None,
     "config key 'compile.loss.from_logits': must be true or false"),
    ("metric_unknown", _set(["compile", "metrics"], ["os.system"]), False, None,
     "config key 'compile.metrics.0': unknown metric 'os.system'"),
    ("model_missing", _del(["model"]), False, None, "config key 'model': is missing"),
    ("layer_class_missing", _del(["model", "layers", 0, "class_name"]), False, None,
     "config key 'model.layers.0.class_name': must be the name of a registered class"),
    ("private_class", _set(["model", "layers", 0, "class_name"], "_Conv"), False, None,
     "config key 'model.layers.0.class_name': Unknown class '_Conv'"),
    ("units_string", _set(["model", "layers", 5, "config", "units"], "abc"), False, None,
     "config key 'model.layers.5.config': Dense 'out': Dense: units must be a positive integer"),
    ("config_is_a_list", _set(["model", "layers", 5, "config"], [4]), False, None,
     "config key 'model.layers.5.config': must be the object's config (a dict), got list"),
    ("layers_is_a_dict", _set(["model", "layers"], {"0": {}}), False, None,
     "config key 'model.layers': must be a list of layer configs"),
    ("unknown_kwarg", _set(["model", "layers", 5, "config", "exec"], "1"), False, None,
     "config key 'model.layers.5.config': Dense 'out': Dense: unexpected keyword arguments"),
    ("layer_cannot_take_input", _set(["model", "input_shape"], [6, 6]), False, None,
     "config key 'model.layers.0': layer 'c' (Conv2D) cannot take the output of the layers before it"),
    ("version_99", _set(["version"], 99), False, None,
     "config key 'version': the file has format version 99, written by a newer convcore"),
    ("version_bool", _set(["version"], True), False, None, "config key 'version': must be a format version"),
    ("json_nested_1000", None, False, "[" * 1000 + "]" * 1000, "config.json: the config is nested too deeply"),
    ("json_nested_deep_in_model", _set(["model", "name"], json.loads("[" * 200 + "]" * 200)), False, None,
     "config.json: the config is nested more than 100 levels deep"),
    ("inbound_cycle", _set(["model", "layers", 1, "inbound"], ["cat"]), True, None,
     "config key 'model.layers.2.inbound': the layers form a cycle, each called on the next: 'conv_a' -> 'cat' -> "
     "'add' -> 'conv_a'"),
    ("inbound_unknown", _set(["model", "layers", 1, "inbound"], ["ghost"]), True, None,
     "config key 'model.layers.1.inbound': layer 'conv_a' is called on unknown layer 'ghost'"),
    ("inbound_missing", _del(["model", "layers", 1, "inbound"]), True, None,
     "config key 'model.layers.1.inbound': layer 'conv_a' is not called on any layer"),
    ("inbound_not_a_list", _set(["model", "layers", 1, "inbound"], {"inp": 1}), True, None,
     "config key 'model.layers.1.inbound': must be a list of layer names"),
    ("outputs_unknown", _set(["model", "outputs"], ["ghost"]), True, None,
     "config key 'model.outputs': names unknown layer 'ghost'"),
    ("outputs_missing", _del(["model", "outputs"]), True, None,
     "config key 'model.outputs': must be a non-empty list of layer names"),
    ("input_not_an_input_layer", _set(["model", "inputs"], ["conv_a"]), True, None,
     "config key 'model.inputs': 'conv_a' is not an input layer"),
    ("duplicate_layer_name", _set(["model", "layers", 2, "config", "name"], "conv_a"), True, None,
     "config key 'model.layers.2.config.name': two layers are named 'conv_a'"),
    ("shapes_do_not_fit", _set(["model", "layers", 1, "config", "filters"], 3), True, None,
     "config key 'model.layers.2': layer 'add' (Add) cannot be called on ['inp', 'conv_a']"),
]


@pytest.mark.parametrize("edit,functional,text,expected", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_config_is_a_value_error_naming_file_and_key(tmp_path, edit, functional, text, expected):
    """Issue 11 #5: these escaped as KeyError, IndexError, AttributeError, TypeError or
    RecursionError with no file name."""
    p = _edited(tmp_path, edit, functional, text)
    with pytest.raises(ValueError) as e:
        convcore.load_model(p)
    assert str(e.value).startswith(f"{p}: "), str(e.value)
    assert expected in str(e.value), str(e.value)


def test_encrypted_entry_is_a_value_error(tmp_path):
    """Issue 11 #5: the encrypted flag gave RuntimeError (password required)."""
    m = _seq()
    p = tmp_path / "enc.convcore"
    m.save(p)
    hc._set_flag_bits(str(p), "config.json", 0x1)
    with pytest.raises(ValueError, match=r"enc\.convcore: entry 'config.json' is encrypted"):
        convcore.load_model(p)
    m.save(p)
    hc._set_flag_bits(str(p), "weights/00002.npy", 0x1)
    with pytest.raises(ValueError, match=r"enc\.convcore: entry 'weights/00002.npy' is encrypted"):
        convcore.load_model(p)
    with pytest.raises(ValueError, match=r"enc\.convcore: entry 'weights/00002.npy' is encrypted"):
        m.load_weights(p)


def test_config_errors_are_config_errors_with_a_key():
    err = ConfigError(("layers", 3), "bad").within("model").in_file("m.convcore")
    assert isinstance(err, ValueError) and err.key == ("model", "layers", 3) and err.file == "m.convcore"
    assert str(err) == "m.convcore: config key 'model.layers.3': bad"


def test_private_names_never_load_even_when_registered():
    from convcore.saving import deserialize_keras_object, register_keras_serializable

    @register_keras_serializable(package="tests", name="_Hidden")
    class _Hidden(layers.Layer):
        pass

    for name in ("_Hidden", "tests>_Hidden"):
        assert convcore.saving.get_registered_object(name) is _Hidden
        with pytest.raises(ValueError, match="Unknown class"):
            deserialize_keras_object({"class_name": name, "config": {}})


def test_version_newer_than_ours_is_refused_and_ours_loads(tmp_path):
    from convcore.saving import VERSION
    p = _edited(tmp_path, _set(["version"], VERSION + 1))
    with pytest.raises(ValueError, match=f"format version {VERSION + 1}.*reads versions up to {VERSION}"):
        convcore.load_model(p)
    p = _edited(tmp_path, _set(["version"], VERSION), name="ok.convcore")
    assert isinstance(convcore.load_model(p), Sequential)


def test_custom_loss_and_metric_load_by_name(tmp_path):
    """A loss or metric function is saved by name and loads from custom_objects; an
    unknown one is a ConfigError (it was a KeyError)."""
    def half_mse(y_true, y_pred):
        return 0.5 * convcore.ops.square(y_pred - y_true)

    def mean_pred(y_true, y_pred):
        return convcore.ops.mean(y_pred)

    m = Sequential([Input((3,)), layers.Dense(2)])
    m.compile("sgd", half_mse, metrics=[mean_pred])
    p = tmp_path / "custom.convcore"
    m.save(p)
    with pytest.raises(ValueError, match=r"custom\.convcore: config key 'compile.loss.name': unknown loss 'half_mse'"):
        convcore.load_model(p)
    m2 = convcore.load_model(p, custom_objects={"half_mse": half_mse, "mean_pred": mean_pred})
    assert m2.loss.fn is half_mse and m2.metrics_names == ["mean_pred"]
    x, y = np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32)
    assert m2.evaluate(x, y, verbose=0) == m.evaluate(x, y, verbose=0)


def test_model_from_json_errors_are_value_errors():
    with pytest.raises(ValueError, match="nested too deeply"):
        convcore.models.model_from_json("[" * 100000 + "]" * 100000)
    with pytest.raises(ValueError, match="config key 'class_name'"):
        convcore.models.model_from_json('{"class_name": "os.system"}')


# ---------------------------------------------------------------- optimizers (issue 11, item 13)
@pytest.mark.parametrize("cls", [optimizers.SGD, optimizers.Adam])
@pytest.mark.parametrize("lr", [float("inf"), float("-inf"), float("nan"), 0, -1e-3, True, "0.1", None, [0.1],
                                pytest.param(10 ** 400, id="int_1e400")])
def test_optimizers_refuse_bad_learning_rates(cls, lr):
    with pytest.raises(ValueError, match="learning_rate"):
        cls(learning_rate=lr)
    opt = cls()
    with pytest.raises(ValueError, match="learning_rate"):
        opt.lr = lr
    assert opt.learning_rate > 0


@pytest.mark.parametrize("kw", [dict(momentum=float("nan")), dict(momentum=float("inf")), dict(momentum=-0.1),
                                dict(momentum="0.9"), dict(momentum=True), dict(nesterov="no"), dict(nesterov=2)])
def test_sgd_refuses_bad_arguments(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        optimizers.SGD(**kw)


@pytest.mark.parametrize("kw", [dict(beta_1=float("nan")), dict(beta_1=1.0), dict(beta_2=float("inf")),
                                dict(beta_2=-0.5), dict(epsilon=float("nan")), dict(epsilon=float("inf")),
                                dict(epsilon=0), dict(epsilon=False)])
def test_adam_refuses_bad_arguments(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        optimizers.Adam(**kw)


def test_optimizer_numbers_of_other_types_are_accepted():
    opt = optimizers.Adam(learning_rate=np.float32(0.5), beta_1=np.float64(0.5), epsilon=1)
    assert opt.get_config() == {"name": "Adam", "learning_rate": 0.5, "beta_1": 0.5, "beta_2": 0.999, "epsilon": 1.0}
    assert optimizers.SGD(nesterov=np.bool_(True), momentum=1).nesterov is True


def test_optimizer_deserialize_round_trip_and_refusals():
    for opt in (optimizers.SGD(0.3, momentum=0.5, nesterov=True), optimizers.Adam(0.02, 0.7, 0.8, 1e-5)):
        again = optimizers.deserialize(opt.get_config())
        assert type(again) is type(opt) and again.get_config() == opt.get_config()
    for cfg, key in [({"name": "os.system"}, "name"), ({"name": "sgd_"}, "name"), ({"learning_rate": 1}, "name"),
                     ({"name": "SGD", "evil": 1}, "evil"), ({"name": "Adam", "momentum": 0.9}, "momentum"),
                     ({"name": "SGD", "learning_rate": float("nan")}, "learning_rate"), ({"name": ["SGD"]}, "name")]:
        with pytest.raises(ConfigError) as e:
            optimizers.deserialize(cfg)
        assert e.value.key == (key,), (cfg, e.value)
    with pytest.raises(ValueError, match="must be an optimizer config"):
        optimizers.deserialize("SGD")


def test_loss_deserialize_refusals():
    assert isinstance(losses.deserialize({"name": "mse"}), losses.MeanSquaredError)
    assert losses.deserialize("binary_crossentropy").name == "binary_crossentropy"
    for cfg, key in [({"name": "os.system"}, "name"), ({}, "name"), ({"name": 3}, "name"),
                     ({"name": "mse", "reduction": "sum"}, "reduction"), ({"name": "mse", "from_logits": 1}, "from_logits"),
                     ({"name": "_private"}, "name")]:
        with pytest.raises(ConfigError) as e:
            losses.deserialize(cfg)
        assert e.value.key == (key,), (cfg, e.value)


# ---------------------------------------------------------------- issue 11, item 6: deep models
def test_sequential_of_3000_layers_builds_predicts_saves_and_loads(tmp_path):
    """Issue 11 #6: 1,000 layers raised RecursionError (the graph walk was recursive)."""
    t = time.perf_counter()
    m = Sequential([Input((3,))] + [layers.Dense(3, name=f"d{i}") for i in range(3000)])
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    y = m.predict(x)
    m.save(tmp_path / "deep.convcore")
    m2 = convcore.load_model(tmp_path / "deep.convcore")
    np.testing.assert_array_equal(m2.predict(x), y)
    assert len(m2.layers) == 3000 and m2.get_config() == m.get_config()
    m2.save_weights(tmp_path / "deep.npz")
    m2.load_weights(tmp_path / "deep.npz")
    assert time.perf_counter() - t < 30  # building is linear in the layers (was quadratic)


def test_functional_model_of_3000_layers(tmp_path):
    inp = Input((3,), name="x")
    h = inp
    for i in range(1500):
        h = layers.Dense(3, name=f"d{i}")(h)
        h = layers.Add(name=f"a{i}")([h, inp]) if i % 100 == 0 else layers.Activation("tanh", name=f"t{i}")(h)
    m = Model(inp, h)
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    y = m.predict(x)
    m.save(tmp_path / "deepf.convcore")
    m2 = convcore.load_model(tmp_path / "deepf.convcore")
    np.testing.assert_array_equal(m2.predict(x), y)
    assert [l.name for l in m2.layers] == [l.name for l in m.layers]


def test_sequential_add_of_a_layer_that_does_not_fit_leaves_the_model_as_it_was():
    m = Sequential([Input((4,)), layers.Dense(3)])
    with pytest.raises(ValueError):
        m.add(layers.Conv2D(2, 3))
    assert len(m.layers) == 1 and m.output_shape == (None, 3)
    m.add(layers.Dense(2))
    assert m.predict(np.ones((1, 4), np.float32)).shape == (1, 2)


# ---------------------------------------------------------------- issue 11, item 11: temp files, modes
def _temps(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith(".tmp-"))


KILLED_SAVE = r"""
import sys, time, zipfile
import convcore
from convcore import Input, Sequential, layers
m = Sequential([Input((4,)), layers.Dense(64), layers.Dense(3)])
real = zipfile.ZipFile.writestr
calls = [0]

def writestr_then_hang(self, *a, **k):
    real(self, *a, **k)
    calls[0] += 1
    if calls[0] == 2:  # config and one weight written: the temp file has data
        self.fp.flush()
        print("partial", flush=True)
        time.sleep(120)

zipfile.ZipFile.writestr = writestr_then_hang
getattr(m, sys.argv[2])(sys.argv[1])
"""


@pytest.mark.parametrize("method", ["save", "save_weights"])
def test_temp_file_of_a_killed_save_is_removed_by_the_next_save(tmp_path, method):
    """Issue 11 #11: killed saves left their temp files forever. A child is killed with
    SIGKILL in the middle of a save; the previous file is intact, its temp file is an
    orphan, and the next save to that path removes it."""
    import signal
    m = _seq()
    p = tmp_path / ("m.convcore" if method == "save" else "m.npz")
    getattr(m, method)(p)
    before = p.read_bytes()
    if method == "save_weights":  # np.savez writes through ZipFile.open, not writestr
        child = KILLED_SAVE.replace("zipfile.ZipFile.writestr = writestr_then_hang",
                                    "import numpy as np\nreal_w = np.lib.format.write_array\n"
                                    "def w(*a, **k):\n    real_w(*a, **k)\n    calls[0] += 1\n"
                                    "    if calls[0] == 2:\n        a[0].flush()\n        print('partial', flush=True)\n"
                                    "        time.sleep(120)\nnp.lib.format.write_array = w")
    else:
        child = KILLED_SAVE
    proc = subprocess.Popen([sys.executable, "-c", child, str(p), method], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"partial", proc.stderr.read().decode()
        orphans = _temps(tmp_path)
        assert len(orphans) == 1 and orphans[0].startswith(f".tmp-{p.name}-")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert p.read_bytes() == before  # the killed save never touched the file
    assert (tmp_path / orphans[0]).stat().st_size > 0
    m.set_weights([w + 1 for w in m.get_weights()])
    getattr(m, method)(p)
    assert _temps(tmp_path) == []
    assert os.listdir(tmp_path) == [p.name]
    if method == "save":
        for a, b in zip(convcore.load_model(p).get_weights(), m.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_temp_files_of_live_writers_and_other_paths_are_kept(tmp_path):
    from convcore.saving import saving_lib
    m = _seq(compile_kw=False)
    p = tmp_path / "m.convcore"
    prefix = saving_lib._temp_prefix(str(p))
    fd, live = saving_lib._new_temp(str(tmp_path), prefix)  # locked, as a writer holds it
    os.write(fd, b"partial data")
    empty = tmp_path / (prefix + "abcd1234")  # a writer between creating and locking it
    empty.touch()
    other = tmp_path / f".tmp-{p.name}-v2-abcd1234"  # the temp file of "m.convcore-v2"
    other.write_bytes(b"x")
    try:
        m.save(p)
        assert sorted(_temps(tmp_path)) == sorted([os.path.basename(live), empty.name, other.name])
    finally:
        os.close(fd)  # the writer is gone: its lock is released
    m.save(p)
    assert sorted(_temps(tmp_path)) == sorted([empty.name, other.name])
    old = time.time() - 2 * saving_lib._STALE_AFTER_S
    os.utime(empty, (old, old))
    m.save(p)
    assert _temps(tmp_path) == [other.name]


def test_concurrent_saves_to_one_path_all_succeed(tmp_path):
    """A save never removes the temp file another thread is writing."""
    import threading
    m = _seq()
    p = tmp_path / "m.convcore"
    errors = []

    def work():
        try:
            for _ in range(5):
                m.save(p)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert os.listdir(tmp_path) == ["m.convcore"]
    convcore.load_model(p)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002], ids=oct)
def test_saved_files_get_the_mode_open_would_give(tmp_path, umask):
    """Issue 11 #11: saved files were 0600 (the temp file's mode)."""
    m = _seq()
    old = os.umask(umask)
    try:
        m.save(tmp_path / "m.convcore")
        m.save_weights(tmp_path / "w.npz")
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    want = os.stat(tmp_path / "plain").st_mode & 0o777
    assert want == 0o666 & ~umask
    assert os.stat(tmp_path / "m.convcore").st_mode & 0o777 == want
    assert os.stat(tmp_path / "w.npz").st_mode & 0o777 == want


def test_overwriting_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    m = _seq()
    p = tmp_path / "shared.convcore"
    m.save(p)
    for mode in (0o644, 0o640, 0o604):
        os.chmod(p, mode)
        old = os.umask(0o077)
        try:
            m.save(p)
        finally:
            os.umask(old)
        assert os.stat(p).st_mode & 0o777 == mode
