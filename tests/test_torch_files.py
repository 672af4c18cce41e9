"""PyTorch weight files (item 2 of issue 14): ``.pth`` / ``.safetensors`` state dicts read
without torch by ``convcore.saving.torch_format`` and mapped onto convcore layers.

The reference is real PyTorch: tests/fixtures/torch/ holds state dicts that
``torch.save`` wrote and torch's outputs for a fixed input (made by
tests/fixtures/torch/make_torch_fixtures.py); the equivalent convcore model loaded from
them must predict the same. Files written by tests/torch_pickle.py (torch's format
without torch; checked against real torch by the fixture script) test the mapping of
every layer kind both ways. Hostile pickles are made opcode by opcode: each is refused
with an error naming the global, and nothing is run (no file appears, no module is
imported).
"""
from __future__ import annotations

import collections
import os
import pickle
import struct
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest

import convcore as cc
from convcore import layers as L
from convcore.saving import torch_format as tf

import torch_pickle as tp
from torch_pickle import pickle_ops as o

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures", "torch")


def _nhwc(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def _assert_torch_close(y, ref):
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))


def net_model():
    """convcore's twin of the fixture ``net`` (torch's padding 0 is 'valid', its BatchNorm eps 1e-5)."""
    return cc.models.Sequential([
        cc.Input((10, 10, 3)), L.Conv2D(4, 3, name="0"), L.BatchNormalization(epsilon=1e-5, name="1"),
        L.ReLU(name="2"), L.Conv2D(6, 3, strides=2, name="3"), L.BatchNormalization(epsilon=1e-5, name="4"),
        L.ReLU(name="5"), L.Flatten(name="6"), L.Dense(5, name="7")])


def mixed_model():
    return cc.models.Sequential([
        cc.Input((6, 6, 3)), L.Conv2D(4, 1, name="0"), L.DepthwiseConv2D(3, depth_multiplier=2, name="1"),
        L.ReLU(name="2"), L.Conv2DTranspose(3, 2, strides=2, name="3"), L.Flatten(name="4"), L.Dense(4, name="5")])


def mlp_model():
    i = cc.Input((2, 2, 3))
    h = L.Dense(8, name="1")(L.Flatten(name="0")(i))
    h = L.ReLU(name="3")(L.LayerNormalization(epsilon=1e-5, name="2")(h))
    return cc.models.Model(i, L.Dense(3, name="4")(h))


# ---------------------------------------------------------------------- real torch's files
@pytest.mark.parametrize("fname,make,io", [("net.pth", net_model, "net"), ("net_checkpoint.pth", net_model, "net"),
                                           ("mixed.pth", mixed_model, "mixed"),
                                           ("mlp.safetensors", mlp_model, "mlp")])
def test_torch_saved_files_predict_as_torch(fname, make, io):
    """Conv2d, BatchNorm2d (running statistics), Linear after Flatten (C,H,W -> H,W,C
    rows), depthwise and transposed convolutions, LayerNorm; float16 / bfloat16 tensors,
    a non-contiguous and an offset tensor; a checkpoint dict; safetensors."""
    model = make()
    result = tf.load_torch_weights(model, os.path.join(FIX, fname))
    assert result == {"missing_keys": [], "unexpected_keys": []}
    d = np.load(os.path.join(FIX, f"{io}_io.npz"))
    _assert_torch_close(model.predict(_nhwc(d["x"]), verbose=0), d["y"])


def test_fixture_state_dict_contents():
    sd = tf.load_state_dict(os.path.join(FIX, "mixed.pth"))
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias", "5.weight", "5.bias"]
    assert all(v.dtype == np.float32 for v in sd.values())  # float16 and bfloat16 come back as float32
    assert sd["5.weight"].shape == (4, 192) and sd["0.bias"].shape == (4,) and sd["3.weight"].shape == (8, 3, 2, 2)
    assert all(np.array_equal(v.astype(np.float16).astype(np.float32), v) for k, v in sd.items() if k != "3.bias")
    net = tf.load_state_dict(os.path.join(FIX, "net.pth"))
    assert net["1.num_batches_tracked"].dtype == np.int64 and net["1.num_batches_tracked"].shape == ()
    assert int(net["1.num_batches_tracked"]) == 7
    ck = tf.load_state_dict(os.path.join(FIX, "net_checkpoint.pth"))
    assert list(ck) == list(net) and all(np.array_equal(ck[k], net[k]) for k in net)


def test_whole_pickled_module_is_refused():
    with pytest.raises(ValueError, match=r"module\.pth: the pickle names the global "
                                         r"torch\.nn\.modules\.container\.Sequential"):
        tf.load_state_dict(os.path.join(FIX, "module.pth"))


def test_legacy_format_of_real_torch_loads():
    """``torch.save(..., _use_new_zipfile_serialization=False)`` (PyTorch < 1.6's format)."""
    sd = tf.load_state_dict(os.path.join(FIX, "legacy.pth"))
    net = tf.load_state_dict(os.path.join(FIX, "net.pth"))
    assert list(sd) == list(net) + ["half"] and all(np.array_equal(sd[k], net[k]) for k in net)
    assert sd["half"].dtype == np.float32 and list(sd["half"]) == [2.0, 3.0, 4.0]
    m = net_model()
    tf.load_torch_weights(m, {k: v for k, v in sd.items() if k != "half"})
    d = np.load(os.path.join(FIX, "net_io.npz"))
    _assert_torch_close(m.predict(_nhwc(d["x"]), verbose=0), d["y"])


def test_hostile_and_broken_legacy_files(tmp_path):
    target = tmp_path / "pwned"
    good = _state_pkl(("w", "FloatStorage", "0", 6, 0, (6,), (1,)))
    cases = {
        "global.pth": (_hostile_pickles(target)["os.system"], {"0": (6, F4)}, None, "names the global os.system"),
        "keys.pth": (good, {"0": (6, F4), "1": (6, F4)}, None, "list of storage keys does not match"),
        "count.pth": (good, {"0": (7, F4)}, None, "storage '0' holds 7 elements; the pickle says 6"),
        "claim.pth": (_state_pkl(("w", "FloatStorage", "0", 10 ** 12, 0, (6,), (1,))), {"0": (10 ** 12, F4)}, None,
                      "claims 1000000000000 elements of torch.FloatStorage, more than the file's"),
        "short.pth": (good, {"0": (6, F4[:-4])}, None, "runs past the end of the file"),
    }
    for name, (pkl, storages, keys, match) in cases.items():
        tp.write_legacy(tmp_path / name, pkl, storages, keys)
        with pytest.raises(ValueError, match=match):
            tf.load_state_dict(tmp_path / name)
    assert not target.exists()
    tp.write_legacy(tmp_path / "ok.pth", good, {"0": (6, F4)})
    np.testing.assert_array_equal(tf.load_state_dict(tmp_path / "ok.pth")["w"], np.arange(6))
    data = (tmp_path / "ok.pth").read_bytes()
    for cut in (3, 16, 40, len(data) - 30, len(data) - 1):
        (tmp_path / "cut.pth").write_bytes(data[:cut])
        with pytest.raises(ValueError, match=r"cut\.pth"):
            tf.load_state_dict(tmp_path / "cut.pth")


# ---------------------------------------------------------------------- tests/torch_pickle.py files
def test_writer_values_dtypes_views_and_byte_order(tmp_path):
    rng = np.random.default_rng(0)
    base = np.arange(24, dtype=np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    state = {"w": w, "d": np.arange(4, dtype=np.float64), "n": np.array(5, dtype=np.int64),
             "h": np.array([0.1, -2.5, 65504.0], dtype=np.float16), "b": tp.BFloat16(np.array([1.5, -2.25, 3.0e38])),
             "v1": tp.View(base, 2, (3, 4), (1, 3)), "v2": tp.View(base, 0, (2,), (5,)), "v0": tp.View(base, 24, (0,), (1,)),
             "flag": np.array([True, False]), "u": np.arange(3, dtype=np.uint8), "i": np.array([-7], dtype=np.int32),
             "s": np.array([-3], dtype=np.int16), "c": np.array([-1], dtype=np.int8)}
    for order in ("little", "big"):
        p = tmp_path / f"{order}.pth"
        tp.save_state_dict(state, p, byteorder=order)
        sd = tf.load_state_dict(p)
        assert list(sd) == list(state)
        np.testing.assert_array_equal(sd["w"], w)
        assert sd["d"].dtype == np.float64 and sd["n"].shape == () and int(sd["n"]) == 5
        assert sd["h"].dtype == np.float32 and np.array_equal(sd["h"], state["h"].astype(np.float32))
        bf = sd["b"]
        assert bf.dtype == np.float32 and bf[0] == 1.5 and bf[1] == -2.25
        assert abs(bf[2] / 3.0e38 - 1) < 2 ** -8 and bf[2:].view(np.uint32)[0] & 0xFFFF == 0  # rounded to bfloat16
        np.testing.assert_array_equal(sd["v1"], np.lib.stride_tricks.as_strided(base[2:], (3, 4), (4, 12)))
        np.testing.assert_array_equal(sd["v2"], [0.0, 5.0])
        assert sd["v0"].shape == (0,)
        assert sd["flag"].dtype == np.bool_ and sd["u"].dtype == np.uint8 and int(sd["i"][0]) == -7
        assert int(sd["s"][0]) == -3 and int(sd["c"][0]) == -1
        assert all(v.dtype.isnative for v in sd.values())


def _dict_pkl(entries):
    """A plain dict pickle of ``{key: ops bytes}``."""
    return o.PROTO2 + o.EMPTY_DICT + o.MARK + b"".join(o.str_(k) + v for k, v in entries.items()) + o.SETITEMS + o.STOP


def _tensor(key="0"):
    return tp._tensor_ops("FloatStorage", key, 6, 0, (6,), (1,))


def _inner(*names):
    return o.EMPTY_DICT + o.MARK + b"".join(o.str_(n) + _tensor() for n in names) + o.SETITEMS


@pytest.mark.parametrize("entries,expect", [
    ({"epoch": o.int_(3), "model": _inner("fc.weight"), "optimizer": o.EMPTY_DICT}, ["fc.weight"]),
    ({"epoch": o.int_(3), "weights": _inner("a", "b")}, ["a", "b"]),  # the one dict of tensors, under any key
    ({"model": _inner("a"), "ema": _inner("b")}, r"2 dicts of tensors \('model', 'ema'\); which one is the state "
                                                 "dict is ambiguous"),
    ({"w": _tensor(), "epoch": o.int_(1)}, r"the state dict's entry 'epoch' is a int, not a tensor"),
])
def test_checkpoints_are_unwrapped_when_unambiguous(tmp_path, entries, expect):
    p = _hostile(tmp_path, _dict_pkl(entries), {"0": F4}, name="ck.pt")
    if isinstance(expect, list):
        assert list(tf.load_state_dict(p)) == expect
    else:
        with pytest.raises(ValueError, match=expect):
            tf.load_state_dict(p)


def test_key_chooses_the_state_dict_of_a_checkpoint(tmp_path):
    p = _hostile(tmp_path, _dict_pkl({"model": _inner("a"), "ema": _inner("b")}), {"0": F4}, name="ck.pt")
    assert list(tf.load_state_dict(p, key="ema")) == ["b"] and list(tf.load_state_dict(p, key="model")) == ["a"]
    with pytest.raises(ValueError, match=r"no dict of tensors under 'opt' \(its keys: 'model', 'ema'\)"):
        tf.load_state_dict(p, key="opt")


def test_the_same_tensor_twice_and_shared_storage(tmp_path):
    pkl_body = []
    for key in ("a", "b"):
        pkl_body.append(o.str_(key) + tp._tensor_ops("FloatStorage", "0", 6, 0, (2, 3), (3, 1)))
    pkl_body.append(o.str_("c") + tp._tensor_ops("FloatStorage", "0", 6, 3, (3,), (1,)))
    pkl = (o.PROTO2 + o.global_("collections", "OrderedDict") + o.EMPTY_TUPLE + o.REDUCE + o.MARK
           + b"".join(pkl_body) + o.SETITEMS + o.STOP)
    tp.write_torch_zip(tmp_path / "s.pth", pkl, {"0": np.arange(6, dtype="<f4").tobytes()})
    sd = tf.load_state_dict(tmp_path / "s.pth")
    np.testing.assert_array_equal(sd["a"], [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(sd["b"], sd["a"])
    np.testing.assert_array_equal(sd["c"], [3, 4, 5])


def _layer_zoo():
    """A functional model with every mapped layer kind, a nested model and a Dense after
    Flatten -> Dropout."""
    rng = np.random.default_rng(3)
    inner_in = cc.Input((6, 6, 5))
    inner = cc.models.Model(inner_in, L.BatchNormalization(epsilon=1e-5, name="1")(
        L.Conv2D(5, 3, padding="same", groups=5, name="0")(inner_in)), name="features")
    i = cc.Input((8, 8, 3))
    h = L.Conv2D(5, 3, name="conv")(i)  # 6x6x5
    h = inner(h)
    h = L.GroupNormalization(groups=5, epsilon=1e-5, name="gn")(h)
    h = L.PReLU(shared_axes=[1, 2], name="act")(h)
    h = L.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(h)  # 4x4x10
    h = L.Conv2DTranspose(4, 3, strides=2, name="up")(h)  # 9x9x4
    h = L.Flatten(name="flat")(h)
    h = L.Dropout(0.5, name="drop")(h)
    h = L.Dense(6, name="fc")(h)
    h = L.LayerNormalization(epsilon=1e-5, name="ln")(h)
    h = L.Reshape((6, 1), name="rs")(h)
    h = L.Conv1D(3, 1, name="c1")(h)
    h = L.RMSNormalization(name="rms")(h)
    out = L.Dense(2, name="head")(L.Flatten(name="f2")(h))
    m = cc.models.Model(i, out)
    m.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.3 + (1.5 if "variance" in w.name else 0)
                   for w in m.weights])
    return m


def test_every_layer_kind_round_trips_through_a_pth(tmp_path):
    src, dst = _layer_zoo(), _layer_zoo()
    sd = tf.torch_state_dict(src)
    assert "features.0.weight" in sd and "features.1.running_var" in sd and "features.1.num_batches_tracked" in sd
    assert sd["conv.weight"].shape == (5, 3, 3, 3) and sd["features.0.weight"].shape == (5, 1, 3, 3)
    assert sd["dw.weight"].shape == (10, 1, 3, 3) and sd["up.weight"].shape == (10, 4, 3, 3)
    assert sd["fc.weight"].shape == (6, 324) and sd["act.weight"].shape == (5,) and sd["c1.weight"].shape == (3, 1, 1)
    assert sd["rms.weight"].shape == (3,) and sd["gn.weight"].shape == (5,)
    tp.save_state_dict(sd, tmp_path / "zoo.pth")
    assert tf.load_torch_weights(dst, tmp_path / "zoo.pth") == {"missing_keys": [], "unexpected_keys": []}
    for a, b in zip(src.weights, dst.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    x = np.random.default_rng(1).standard_normal((2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(src.predict(x, verbose=0), dst.predict(x, verbose=0))


def test_layouts_follow_torch_semantics():
    """The conversions against numpy's statement of torch's definitions: Conv2d's
    cross-correlation over (O, I, kh, kw), groups=C depthwise channel order c*m + j,
    ConvTranspose2d's (I, O, kh, kw) scatter, and Linear on torch's C,H,W flatten."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 5, 5, 2)).astype(np.float32)  # NHWC
    xt = x.transpose(0, 3, 1, 2)[0]  # C,H,W
    wc = rng.standard_normal((3, 2, 2, 2)).astype(np.float32)
    wd = rng.standard_normal((4, 1, 2, 2)).astype(np.float32)  # C=2, m=2
    wt = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)  # I=2, O=3
    wl = rng.standard_normal((3, 2 * 5 * 5)).astype(np.float32)
    conv = np.array([[[np.sum(xt[:, i:i + 2, j:j + 2] * wc[oc]) for j in range(4)] for i in range(4)]
                     for oc in range(3)])
    dw = np.array([[[np.sum(xt[oc // 2, i:i + 2, j:j + 2] * wd[oc, 0]) for j in range(4)] for i in range(4)]
                   for oc in range(4)])
    tr = np.zeros((3, 6, 6))
    for c in range(2):
        for i in range(5):
            for j in range(5):
                tr[:, i:i + 2, j:j + 2] += xt[c, i, j] * wt[c]
    lin = wl @ xt.reshape(-1)
    i = cc.Input((5, 5, 2))
    outs = [L.Conv2D(3, 2, use_bias=False, name="c")(i), L.DepthwiseConv2D(2, depth_multiplier=2, use_bias=False,
                                                                            name="d")(i),
            L.Conv2DTranspose(3, 2, use_bias=False, name="t")(i), L.Dense(3, use_bias=False, name="l")(L.Flatten()(i))]
    m = cc.models.Model(i, outs)
    tf.load_torch_weights(m, {"c.weight": wc, "d.weight": wd, "t.weight": wt, "l.weight": wl})
    yc, yd, yt, yl = m.predict(x, verbose=0)
    np.testing.assert_allclose(yc[0].transpose(2, 0, 1), conv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(yd[0].transpose(2, 0, 1), dw, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(yt[0].transpose(2, 0, 1), tr, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(yl[0], lin, rtol=1e-5, atol=1e-5)


def test_flatten_order_found_through_order_keeping_layers_only():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((2, 12)).astype(np.float32)
    x = rng.standard_normal((3, 2, 2, 3)).astype(np.float32)

    def model(between):
        i = cc.Input((2, 2, 3))
        h = L.Flatten()(i)
        for layer in between:
            h = layer(h)
        return cc.models.Model(i, L.Dense(2, use_bias=False, name="fc")(h))

    plain = model([])
    tf.load_torch_weights(plain, {"fc.weight": w})
    torch_y = x.transpose(0, 3, 1, 2).reshape(3, -1) @ w.T
    np.testing.assert_allclose(plain.predict(x, verbose=0), torch_y, rtol=1e-5, atol=1e-6)
    through = model([L.Dropout(0.3), L.Activation("linear"), L.Identity()])
    tf.load_torch_weights(through, {"fc.weight": w})
    np.testing.assert_array_equal(through.get_layer("fc").kernel.numpy(), plain.get_layer("fc").kernel.numpy())
    seq = cc.models.Sequential([cc.Input((2, 2, 3)), L.Flatten(), L.Dense(2, use_bias=False, name="fc")])
    tf.load_torch_weights(seq, {"fc.weight": w})
    np.testing.assert_array_equal(seq.get_layer("fc").kernel.numpy(), plain.get_layer("fc").kernel.numpy())
    # a Dense not fed by a Flatten (a rank-3 input) takes the transposed weight as it is
    i = cc.Input((4, 3))
    m = cc.models.Model(i, L.Dense(2, use_bias=False, name="fc")(i))
    tf.load_torch_weights(m, {"fc.weight": w[:, :3]})
    np.testing.assert_array_equal(m.get_layer("fc").kernel.numpy(), w[:, :3].T)


# ---------------------------------------------------------------------- safetensors
def _write_safetensors(path, entries, pad=True):
    header, blob = {}, b""
    for k, (dtype, shape, raw) in entries.items():
        header[k] = {"dtype": dtype, "shape": list(shape), "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = __import__("json").dumps(header).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)


def test_safetensors_half_and_bfloat16_become_float32(tmp_path):
    import safetensors.numpy
    p = tmp_path / "m.safetensors"
    half = np.array([0.5, -1.0e-3, 6.0e4], dtype=np.float16)
    bf = np.array([0x3F80, 0xC0A0, 0x7F7F], dtype="<u2")  # 1.0, -5.0, the largest bfloat16
    _write_safetensors(p, {"h": ("F16", (3,), half.tobytes()), "b": ("BF16", (3, 1), bf.tobytes()),
                           "i": ("I64", (2,), np.array([1, -2], "<i8").tobytes())})
    sd = tf.load_state_dict(p)
    assert sd["h"].dtype == np.float32 and np.array_equal(sd["h"], half.astype(np.float32))
    assert sd["b"].shape == (3, 1) and sd["b"].dtype == np.float32
    np.testing.assert_array_equal(sd["b"][:, 0], [1.0, -5.0, (np.uint32(0x7F7F) << 16).view(np.float32)])
    assert sd["i"].dtype == np.int64 and list(sd["i"]) == [1, -2]
    q = tmp_path / "n.safetensors"
    safetensors.numpy.save_file({"x": np.arange(6, dtype=np.float64).reshape(2, 3)}, str(q))
    np.testing.assert_array_equal(tf.load_state_dict(q)["x"], np.arange(6).reshape(2, 3))


def test_safetensors_bad_files(tmp_path):
    p = tmp_path / "f8.safetensors"
    _write_safetensors(p, {"x": ("F8_E4M3", (2,), b"\x01\x02")})
    with pytest.raises(ValueError, match=r"f8\.safetensors.*'x'.*F8_E4M3"):
        tf.load_state_dict(p)
    good = tmp_path / "g.safetensors"
    _write_safetensors(good, {"x": ("F32", (256,), np.zeros(256, "<f4").tobytes())})
    data = good.read_bytes()
    for cut in (4, 12, len(data) - 100, len(data) - 1):
        t = tmp_path / f"t{cut}.safetensors"
        t.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=f"t{cut}\\.safetensors"):
            tf.load_state_dict(t)
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(ValueError, match="header claims 1099511627776 bytes"):
        tf.load_state_dict(huge)


def test_safetensors_missing_package_names_pip(tmp_path, monkeypatch):
    p = tmp_path / "m.safetensors"
    _write_safetensors(p, {"x": ("F32", (1,), b"\0\0\0\0")})
    monkeypatch.setitem(sys.modules, "safetensors", None)
    with pytest.raises(ImportError, match="pip install safetensors"):
        tf.load_state_dict(p)


# ---------------------------------------------------------------------- hostile pickles
def _hostile(tmp_path, pkl, storages=None, name="evil.pth", **kw):
    p = tmp_path / name
    tp.write_torch_zip(p, pkl, storages, **kw)
    return p


def _call(module, name, *args):
    """GLOBAL module.name, called (REDUCE) on string arguments."""
    return o.global_(module, name) + o.MARK + b"".join(o.str_(a) for a in args) + o.TUPLE + o.REDUCE


class _Reduces:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def _hostile_pickles(target):
    touch = f"touch {target}"
    return {
        "os.system": o.PROTO2 + _call("os", "system", touch) + o.STOP,
        "posix.system": pickle.dumps(_Reduces(target), protocol=2),
        "builtins.eval": o.PROTO2 + _call("builtins", "eval", f"open({str(target)!r}, 'w')") + o.STOP,
        "builtins.exec": o.PROTO2 + _call("builtins", "exec", f"open({str(target)!r}, 'w')") + o.STOP,
        "builtins.open": o.PROTO2 + _call("builtins", "open", str(target), "w") + o.STOP,
        "builtins.getattr": o.PROTO2 + _call("builtins", "getattr", "x", "upper") + o.STOP,
        "subprocess.Popen": o.PROTO2 + o.global_("subprocess", "Popen") + o.MARK + o.EMPTY_LIST + o.MARK
        + o.str_("touch") + o.str_(str(target)) + b"e" + o.TUPLE + o.REDUCE + o.STOP,
        # INST names its class inline; STACK_GLOBAL (protocol 4) takes it from the stack
        "os.system ": o.PROTO2 + o.MARK + o.str_(touch) + b"ios\nsystem\n" + o.STOP,
        "os.system  ": b"\x80\x04" + b"\x8c\x02os\x8c\x06system\x93" + o.MARK + o.str_(touch) + o.TUPLE + o.REDUCE
        + o.STOP,
        "_reconstruct": pickle.dumps(np.array([1, 2]), protocol=2),
        # a global hidden inside a state dict, as a tensor's storage type or a hook
        "torch.nn.modules.module.Module": o.PROTO2 + o.global_("collections", "OrderedDict") + o.EMPTY_TUPLE
        + o.REDUCE + o.MARK + o.str_("w") + o.global_("torch.nn.modules.module", "Module") + o.EMPTY_TUPLE
        + o.REDUCE + o.SETITEMS + o.STOP,
        "this.x": o.PROTO2 + o.global_("this", "x") + o.STOP,  # importing 'this' would print the Zen
    }


@pytest.mark.parametrize("label", list(_hostile_pickles("t")))
def test_hostile_pickles_are_refused_naming_the_global(tmp_path, label):
    target = tmp_path / "pwned"
    pkl = _hostile_pickles(target)[label]
    p = _hostile(tmp_path, pkl)
    before = set(sys.modules)
    with pytest.raises(ValueError) as e:
        tf.load_state_dict(p)
    msg = str(e.value)
    assert "evil.pth" in msg
    assert f"names the global {label.strip()}" in msg or (label == "_reconstruct" and
                                                          "multiarray._reconstruct" in msg)
    assert not target.exists()
    assert set(sys.modules) - before == set()  # nothing was imported


@pytest.mark.parametrize("label,pkl,match", [
    ("EXT1", o.PROTO2 + b"\x82\x01" + o.STOP, "opcode EXT1"),
    ("NEWOBJ", o.PROTO2 + o.global_("torch", "FloatStorage") + o.EMPTY_TUPLE + b"\x81" + o.STOP, "NEWOBJ"),
    ("BUILD on a list", o.PROTO2 + o.EMPTY_LIST + o.EMPTY_DICT + o.BUILD + o.STOP, "BUILD"),
    ("call a storage type", o.PROTO2 + o.global_("torch", "FloatStorage") + o.EMPTY_TUPLE + o.REDUCE + o.STOP,
     "calls torch.FloatStorage"),
    ("rebuild a non-storage", o.PROTO2 + o.global_("torch._utils", "_rebuild_tensor_v2") + o.MARK + o.int_(1)
     + o.int_(0) + o.tuple_((1,)) + o.tuple_((1,)) + o.TUPLE + o.REDUCE + o.STOP, "persistent storage reference"),
    ("persistent id not a storage", o.PROTO2 + o.str_("x") + o.BINPERSID + o.STOP, "persistent id"),
    ("not a dict", o.PROTO2 + o.EMPTY_LIST + o.STOP, "holds a list, not a state dict"),
    ("a dict of ints", o.PROTO2 + o.EMPTY_DICT + o.str_("a") + o.int_(1) + o.SETITEM + o.STOP,
     "holds a dict .* with 0 dicts of tensors"),
    ("garbage", b"\x80\x02\xff\xfe", "not a state dict pickle"),
    ("truncated pickle", o.PROTO2 + o.MARK + o.str_("abc")[:-1], "not a state dict pickle"),
])
def test_other_pickle_tricks_are_refused(tmp_path, label, pkl, match):
    with pytest.raises(ValueError, match=match):
        tf.load_state_dict(_hostile(tmp_path, pkl))


def test_refused_pickle_in_a_state_dict_does_not_touch_the_model(tmp_path):
    target = tmp_path / "pwned"
    m = net_model()
    before = m.get_weights()
    p = _hostile(tmp_path, _hostile_pickles(target)["os.system"])
    with pytest.raises(ValueError, match="os.system"):
        tf.load_torch_weights(m, p)
    assert not target.exists()
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))


def _state_pkl(*tensors):
    """An OrderedDict pickle of ``(key, storage type, storage key, numel, offset, size, stride)``."""
    body = b"".join(o.str_(k) + tp._tensor_ops(st, sk, n, off, size, stride)
                    for k, st, sk, n, off, size, stride in tensors)
    return (o.PROTO2 + o.global_("collections", "OrderedDict") + o.EMPTY_TUPLE + o.REDUCE + o.MARK + body
            + o.SETITEMS + o.STOP)


F4 = np.arange(6, dtype="<f4").tobytes()


@pytest.mark.parametrize("tensor,storages,match", [
    (("w", "FloatStorage", "0", 10 ** 12, 0, (10 ** 12,), (1,)), {"0": F4},
     r"storage '0' claims 1000000000000 elements of torch.FloatStorage \(4000000000000 bytes\); its member "
     r"'evil/data/0' holds 24 bytes"),
    (("w", "FloatStorage", "0", 6, 0, (2, 4), (3, 1)), {"0": F4}, r"reaches element 6 of storage '0', which has 6"),
    (("w", "FloatStorage", "0", 6, 7, (0,), (1,)), {"0": F4}, "at offset 7"),
    (("w", "FloatStorage", "0", 6, 0, (2, 3), (3,)), {"0": F4}, "of different lengths"),
    (("w", "FloatStorage", "0", 6, -1, (2,), (1,)), {"0": F4}, "negative"),
    (("w", "FloatStorage", "0", 6, 0, (2, -3), (3, 1)), {"0": F4}, "negative"),
    (("w", "FloatStorage", "0", 6, 0, (0, 1 << 62), (1, 1)), {"0": F4}, r"a tensor of size \(0, 4611686018427387904\) "
                                                                     "over a storage of 6 elements"),
    (("w", "FloatStorage", "1", 6, 0, (6,), (1,)), {"0": F4}, r"no member evil/data/1"),
    (("w", "FloatStorage", "../0", 6, 0, (6,), (1,)), {"0": F4}, r"no member evil/data/\.\./0"),
    # an expanded (stride 0) view of 10^6 x 10^6 elements of one value: in bounds, but a bomb
    (("w", "FloatStorage", "0", 6, 0, (10 ** 6, 10 ** 6), (0, 0)), {"0": F4}, "would take 4000000000000 bytes"),
])
def test_sizes_strides_and_offsets_are_checked_before_reading(tmp_path, tensor, storages, match):
    with pytest.raises(ValueError, match=match):
        tf.load_state_dict(_hostile(tmp_path, _state_pkl(tensor), storages))


def test_a_storage_named_with_two_dtypes_is_refused(tmp_path):
    pkl = _state_pkl(("a", "FloatStorage", "0", 6, 0, (6,), (1,)), ("b", "IntStorage", "0", 6, 0, (6,), (1,)))
    with pytest.raises(ValueError, match=r"storage '0' is named as 6 x torch.FloatStorage and as 6 x torch.IntStorage"):
        tf.load_state_dict(_hostile(tmp_path, pkl, {"0": F4}))


@pytest.mark.parametrize("members,match", [
    ({"evil/b/data.pkl": b"x"}, r"data\.pkl members \['evil/data\.pkl', 'evil/b/data\.pkl'\]"),
    ({"evil/../data.pkl": b"x"}, r"a member named 'evil/\.\./data\.pkl'"),
    ({"../evil/x": b"x"}, r"a member named '\.\./evil/x'"),
    ({"/etc/passwd": b"x"}, r"a member named '/etc/passwd'"),
    ({"evil\\..\\x": b"x"}, r"a member named"),
    ({"other/x": b"x"}, r"under 2 folders"),
    ({"evil/constants.pkl": b"x", "evil/code/m.py": b"x"}, "TorchScript"),
])
def test_member_names_are_checked(tmp_path, members, match):
    pkl = _state_pkl(("w", "FloatStorage", "0", 6, 0, (6,), (1,)))
    with pytest.raises(ValueError, match=match):
        tf.load_state_dict(_hostile(tmp_path, pkl, {"0": F4}, extra_members=members))
    assert not (tmp_path.parent / "x").exists()


def test_truncated_and_foreign_files(tmp_path):
    data = open(os.path.join(FIX, "net.pth"), "rb").read()
    for cut in (0, 3, 20, 500, len(data) // 2, len(data) - 30, len(data) - 1):
        p = tmp_path / f"cut{cut}.pth"
        p.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=f"cut{cut}\\.pth"):
            tf.load_state_dict(p)
    for name, content in (("rand.pth", bytes(range(256)) * 4), ("text.pt", b"hello world, not a model\n" * 8)):
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.raises(ValueError, match="not a PyTorch state dict file"):
            tf.load_state_dict(p)
    with pytest.raises(ValueError, match="not a regular file"):
        tf.load_state_dict(tmp_path)
    with pytest.raises(FileNotFoundError):
        tf.load_state_dict(tmp_path / "absent.pth")


def _central_entry(raw, name):
    """Offset of member ``name``'s record in the zip's central directory."""
    at = raw.find(name.encode(), raw.find(b"PK\x01\x02")) - 46
    assert raw[at:at + 4] == b"PK\x01\x02"
    return at


def test_a_storage_whose_data_runs_past_a_truncated_end(tmp_path):
    """The zip directory intact but a stored member's local header moved past the end of
    the file (the directory lies): an error, never a short read taken as data."""
    p = tmp_path / "lie.pth"
    tp.write_torch_zip(p, _state_pkl(("w", "FloatStorage", "0", 6, 0, (6,), (1,))), {"0": F4})
    raw = bytearray(p.read_bytes())
    struct.pack_into("<I", raw, _central_entry(raw, "lie/data/0") + 42, len(raw) - 10)  # local header offset
    p.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"lie\.pth: member 'lie/data/0': bad local header"):
        tf.load_state_dict(p)


def _bomb(path, n):
    """A deflated 4 KiB storage member whose directory entry (and the pickle) declare
    ``4 n`` bytes."""
    stem = os.path.splitext(os.path.basename(path))[0]
    tp.write_torch_zip(path, _state_pkl(("w", "FloatStorage", "0", n, 0, (n,), (1,))), {"0": bytes(4096)},
                       compress=True)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, _central_entry(raw, f"{stem}/data/0") + 24, 4 * n)  # uncompressed size
    path.write_bytes(bytes(raw))


def test_a_deflate_bomb_is_refused_before_decompressing(tmp_path):
    """A deflated storage member declaring far more bytes than deflate can give
    (its sizes patched in the directory, the pickle agreeing): refused from the
    declared sizes alone."""
    p = tmp_path / "bomb.pth"
    _bomb(p, 1 << 28)  # 1 GiB of float32
    with pytest.raises(ValueError, match=r"more than deflate can expand to \(a zip bomb\)"):
        tf.load_state_dict(p)


def test_the_pickle_size_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(tf, "MAX_PICKLE_BYTES", 64)
    pkl = _state_pkl(("w", "FloatStorage", "0", 6, 0, (6,), (1,)))
    with pytest.raises(ValueError, match=r"'evil/data.pkl' declares \d+ bytes, more than the 64"):
        tf.load_state_dict(_hostile(tmp_path, pkl, {"0": F4}))


def test_bombs_stay_within_bounded_memory(tmp_path):
    """The huge-storage, expanded-view and deflate-bomb files in a child under a 1 GiB
    address-space limit beyond its start: each a ValueError, none a MemoryError."""
    tp.write_torch_zip(tmp_path / "claim.pth", _state_pkl(("w", "FloatStorage", "0", 10 ** 11, 0, (10 ** 11,), (1,))),
                       {"0": F4})
    tp.write_torch_zip(tmp_path / "expand.pth",
                       _state_pkl(("w", "FloatStorage", "0", 6, 0, (10 ** 5, 10 ** 5), (0, 1))), {"0": F4})
    _bomb(tmp_path / "bomb.pth", 1 << 28)
    child = (
        "import resource, sys\n"
        "from convcore.saving import torch_format as tf\n"
        "import numpy\n"
        "rss = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
        "resource.setrlimit(resource.RLIMIT_AS, (rss + (1 << 30), resource.RLIM_INFINITY))\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        tf.load_state_dict(name)\n"
        "    except ValueError as e:\n"
        "        print('refused', name)\n")
    names = [str(tmp_path / n) for n in ("claim.pth", "expand.pth", "bomb.pth")]
    r = subprocess.run([sys.executable, "-c", child, *names], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:3] == [f"refused {n}" for n in names]


# ---------------------------------------------------------------------- mapping: bad input
def test_wrong_shapes_name_the_layer_and_both_shapes_and_change_nothing(tmp_path):
    sd = tf.load_state_dict(os.path.join(FIX, "net.pth"))
    other = collections.OrderedDict(sd)
    other["7.weight"] = np.zeros((5, 60), np.float32)  # the last layer: every earlier one would fit
    m = net_model()
    before = m.get_weights()
    with pytest.raises(ValueError, match=r"layer '7' \(Dense\): weight 'kernel' of shape \(54, 5\) takes torch tensor "
                                         r"'7.weight' of shape \(5, 54\), but the state dict has shape \(5, 60\)"):
        tf.load_torch_weights(m, other)
    tp.save_state_dict(other, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=r"layer '7' .*other\.pth has shape \(5, 60\)"):
        tf.load_torch_weights(m, tmp_path / "other.pth")
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))


def test_missing_and_unexpected_keys(tmp_path):
    sd = collections.OrderedDict(tf.load_state_dict(os.path.join(FIX, "net.pth")))
    m = net_model()
    before = m.get_weights()
    old_var = m.get_layer("4").moving_variance.numpy().copy()
    no_bn = collections.OrderedDict((k, v) for k, v in sd.items() if k != "4.running_var")
    with pytest.raises(ValueError, match=r"has no '4.running_var' for layer '4' \(BatchNormalization, weight "
                                         r"'moving_variance' of shape \(6,\)\).*'4.weight', '4.bias'"):
        tf.load_torch_weights(m, no_bn)
    extra = collections.OrderedDict(sd, **{"fc2.weight": np.zeros((2, 2), np.float32)})
    with pytest.raises(ValueError, match=r"'fc2.weight' matches no weight of model"):
        tf.load_torch_weights(m, extra)
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
    r = tf.load_torch_weights(m, no_bn, strict=False)
    assert r == {"missing_keys": ["4.running_var"], "unexpected_keys": []}
    np.testing.assert_array_equal(m.get_layer("4").moving_variance.numpy(), old_var)  # kept its value
    np.testing.assert_array_equal(m.get_layer("4").moving_mean.numpy(), sd["4.running_mean"])
    assert tf.load_torch_weights(m, extra, strict=False)["unexpected_keys"] == ["fc2.weight"]
    without_counts = collections.OrderedDict((k, v) for k, v in sd.items() if "num_batches" not in k)
    assert tf.load_torch_weights(m, without_counts) == {"missing_keys": [], "unexpected_keys": []}


def test_skip_mismatch_skips_the_layer_with_a_warning():
    sd = collections.OrderedDict(tf.load_state_dict(os.path.join(FIX, "net.pth")))
    sd["3.weight"] = np.zeros((6, 4, 5, 5), np.float32)
    m = net_model()
    old = m.get_layer("3").get_weights()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        tf.load_torch_weights(m, sd, skip_mismatch=True)
    assert any("Skipping loading weights for layer '3'" in str(x.message) and "(6, 4, 5, 5)" in str(x.message)
               for x in w)
    for a, b in zip(old, m.get_layer("3").get_weights()):  # its bias too: the layer is skipped whole
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(m.get_layer("0").kernel.numpy(), sd["0.weight"].transpose(2, 3, 1, 0))


def test_name_map_dict_callable_none_and_module_prefix():
    sd = tf.load_state_dict(os.path.join(FIX, "net.pth"))
    d = np.load(os.path.join(FIX, "net_io.npz"))
    renamed = cc.models.Sequential([
        cc.Input((10, 10, 3)), L.Conv2D(4, 3, name="conv_a"), L.BatchNormalization(epsilon=1e-5, name="bn_a"),
        L.ReLU(), L.Conv2D(6, 3, strides=2, name="conv_b"), L.BatchNormalization(epsilon=1e-5, name="bn_b"),
        L.ReLU(), L.Flatten(), L.Dense(5, name="head")])
    mapping = {"conv_a": "0", "bn_a": "1", "conv_b": "3", "bn_b": "4", "head": "7"}
    tf.load_torch_weights(renamed, sd, name_map=mapping)
    _assert_torch_close(renamed.predict(_nhwc(d["x"]), verbose=0), d["y"])
    m2 = cc.models.clone_model(renamed)  # fresh weights; DataParallel's "module." keys, a callable name_map
    tf.load_torch_weights(m2, {f"module.{k}": v for k, v in sd.items()}, name_map=lambda n: mapping.get(n, n))
    _assert_torch_close(m2.predict(_nhwc(d["x"]), verbose=0), d["y"])
    head_before = renamed.get_layer("head").get_weights()
    no_head = {k: v for k, v in sd.items() if not k.startswith("7.")}
    tf.load_torch_weights(renamed, no_head, name_map={**mapping, "head": None})  # None: not from the file
    for a, b in zip(head_before, renamed.get_layer("head").get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="name_map must be a dict"):
        tf.load_torch_weights(renamed, sd, name_map=3)
    with pytest.raises(TypeError, match="expects a file path or a state dict"):
        tf.load_torch_weights(renamed, 3)


def test_an_unbuilt_model_is_a_clear_error():
    m = cc.models.Sequential([L.Dense(2, name="fc")])
    with pytest.raises(ValueError, match="has no inputs yet: give the first layer input_shape"):
        tf.load_torch_weights(m, {"fc.weight": np.zeros((2, 3), np.float32)})
    m = cc.models.Sequential([cc.Input((3,)), L.ReLU()])
    with pytest.raises(ValueError, match="has no weights yet"):
        tf.load_torch_weights(m, {"fc.weight": np.zeros((2, 3), np.float32)})


def test_separable_conv_has_no_torch_twin():
    m = cc.models.Sequential([cc.Input((5, 5, 2)), L.SeparableConv2D(3, 3, name="s")])
    with pytest.raises(ValueError, match="PyTorch has no separable convolution"):
        tf.load_torch_weights(m, {"s.weight": np.zeros((3, 2, 3, 3), np.float32)})


def test_model_load_weights_reads_torch_files():
    """``Model.load_weights`` dispatches .pth / .safetensors here (saving_lib)."""
    m = net_model()
    m.load_weights(os.path.join(FIX, "net.pth"))
    d = np.load(os.path.join(FIX, "net_io.npz"))
    _assert_torch_close(m.predict(_nhwc(d["x"]), verbose=0), d["y"])
    mlp = mlp_model()
    mlp.load_weights(os.path.join(FIX, "mlp.safetensors"))
    d = np.load(os.path.join(FIX, "mlp_io.npz"))
    _assert_torch_close(mlp.predict(_nhwc(d["x"]), verbose=0), d["y"])
