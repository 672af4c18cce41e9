"""A corpus of hostile files for every format convcore reads: the model file
(``model.save``: a zip of ``config.json`` and ``weights/NNNNN.npy``) and the weights file
(``model.save_weights``: an ``np.savez`` archive of ``wNNNNN.npy``).

Truncated files, zip bombs (a 1 MB ``config.json`` expanding to 1 GiB of spaces, an
11 MB weight entry expanding to 11 GiB, a directory of 10^6 entries), path-traversal
entry names, pickle-bearing and huge-header ``.npy`` entries, weights of the wrong
dtype or shape, encrypted and oddly compressed entries, and malformed configs (the
reproducers of issue 11). ``write_corpus(folder)`` writes them, deterministically and
in about a second, and returns the manifest: for each case the file, and for each
loader ("model": ``load_model``, "weights": ``load_weights`` into
:func:`reference_model`) the exception it must raise ("ok" for the control cases).

Run as a script to write the corpus somewhere: ``python tests/hostile_corpus.py DIR``.
Every payload only ever writes ``PAYLOAD_FILE`` next to the corpus or sets
``builtins.<PAYLOAD_FLAG>``: if either appears, a loader ran code from a file.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import struct
import sys
import warnings
import zipfile
import zlib

import numpy as np

PAYLOAD_FLAG = "_convcore_hostile_payload_ran"
PAYLOAD_FILE = "PAYLOAD_RAN"

GiB = 1 << 30


def reference_model():
    """The model every weights case is loaded into (and the model files are saved
    from): a few layers with weights of several shapes, compiled."""
    import convcore
    from convcore import Input, Sequential, layers, optimizers
    convcore.set_seed(0)
    m = Sequential([Input((6, 6, 1)), layers.Conv2D(2, 3, name="conv"), layers.BatchNormalization(name="bn"),
                    layers.Flatten(name="flat"), layers.Dense(3, name="out")], name="reference")
    m.compile(optimizer=optimizers.SGD(learning_rate=0.05, momentum=0.9), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    return m


def _functional_model():
    import convcore
    from convcore import Input, Model, layers
    convcore.set_seed(1)
    inp = Input((4,), name="inp")
    a = layers.Dense(3, name="a")(inp)
    b = layers.Dense(3, name="b")(a)
    m = Model(inp, b, name="functional")
    m.compile("adam", "mse")
    return m


# ---------------------------------------------------------------------- building blocks
class _Payload:
    """Unpickling this runs code: it writes PAYLOAD_FILE and sets a builtins flag."""

    def __init__(self, folder):
        self.folder = folder

    def __reduce__(self):
        code = (f"import builtins; builtins.{PAYLOAD_FLAG} = True; "
                f"open({os.path.join(self.folder, PAYLOAD_FILE)!r}, 'w').write('ran')")
        return (exec, (code,))


def _npy(a):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=True)
    return buf.getvalue()


def _npy_header(shape, descr="<f4", fortran=False, version=(1, 0)):
    """The magic, version, length and header of a .npy (what precedes the data)."""
    d = {"descr": descr, "fortran_order": fortran, "shape": tuple(shape)}
    buf = io.BytesIO()
    if version == (1, 0):
        np.lib.format.write_array_header_1_0(buf, d)
    else:
        np.lib.format.write_array_header_2_0(buf, d)
    return buf.getvalue()


def _raw_npy_header(text, version=1, declared_len=None):
    """A .npy header of arbitrary text (and optionally a lying length field)."""
    body = text.encode("latin1")
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body) if declared_len is None else declared_len) + body
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(body) if declared_len is None else declared_len) + body


def _members(path):
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i.filename) for i in z.infolist()}


def _zip(path, members, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in members.items():
            z.writestr(name, data)


def _periodic_deflate(prefix, fill, total):
    """A raw deflate stream of ``prefix`` followed by ``total`` bytes of ``fill``,
    built in milliseconds: after a full flush, deflate compresses each identical 16
    MiB chunk to identical bytes, so the stream is one compressed chunk repeated."""
    chunk = 16 << 20
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(fill * chunk) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(fill * chunk) + c.flush(zlib.Z_FULL_FLUSH)
    assert block == again, "deflate output is not periodic on this zlib"
    n, rest = divmod(total, chunk)
    return head + block * n + c.compress(fill * rest) + c.flush()


class _Entry:
    """One entry of a hand-made zip: the stored bytes and what the directory claims."""

    def __init__(self, name, data, size, crc=0, method=zipfile.ZIP_DEFLATED, flags=0):
        self.name = name.encode("utf-8") if isinstance(name, str) else name
        self.data, self.size, self.crc, self.method, self.flags = data, size, crc, method, flags


def _raw_zip(path, entries, central_copies=1, declared_entries=None):
    """Write a zip by hand (zipfile cannot write pre-compressed data, lie about sizes
    or repeat a directory entry): zip64 fields where sizes, offsets or the number of
    entries need them. ``central_copies`` repeats the whole central directory."""
    out = io.BytesIO()
    central = []
    for e in entries:
        offset = out.tell()
        big = e.size >= 0xFFFFFFFF or len(e.data) >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, e.size, len(e.data)) if big else b""
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 45 if big else 20, e.flags, e.method, 0, 0x21,
                              e.crc, 0xFFFFFFFF if big else len(e.data), 0xFFFFFFFF if big else e.size,
                              len(e.name), len(extra)))
        out.write(e.name + extra + e.data)
        cextra = struct.pack("<HHQQ", 1, 16, e.size, len(e.data)) if big else b""
        central.append(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 45 if big else 20, 45 if big else 20,
                                   e.flags, e.method, 0, 0x21, e.crc, 0xFFFFFFFF if big else len(e.data),
                                   0xFFFFFFFF if big else e.size, len(e.name), len(cextra), 0, 0, 0, 0, offset)
                       + e.name + cextra)
    cd_offset = out.tell()
    cd = b"".join(central) * central_copies
    out.write(cd)
    n = len(entries) * central_copies if declared_entries is None else declared_entries
    if n >= 0xFFFF or len(cd) >= 0xFFFFFFFF or cd_offset >= 0xFFFFFFFF:
        z64 = out.tell()
        out.write(struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, len(cd), cd_offset))
        out.write(struct.pack("<4sIQI", b"PK\x06\x07", 0, z64, 1))
        out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))
    else:
        out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, len(cd), cd_offset, 0))
    with open(path, "wb") as f:
        f.write(out.getvalue())


def _deflated(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def _directory_records(raw):
    """Offsets of the central directory records of a zip's bytes."""
    i = 0
    while (at := raw.find(b"PK\x01\x02", i)) >= 0:
        yield at
        i = at + 4


def _patch_entry(path, name, local_field, central_field, change):
    """Rewrite one 2-byte field of entry ``name`` of a zip, at ``local_field`` of its
    local header and ``central_field`` of its directory record: ``change(old) -> new``."""
    raw = bytearray(open(path, "rb").read())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as z:
        local = z.getinfo(name).header_offset
    for at, field in [(local, local_field)] + [
            (at, central_field) for at in _directory_records(raw)
            if bytes(raw[at + 46:at + 46 + struct.unpack_from("<H", raw, at + 28)[0]]) == name.encode()]:
        struct.pack_into("<H", raw, at + field, change(struct.unpack_from("<H", raw, at + field)[0]))
    open(path, "wb").write(bytes(raw))


def _set_flag_bits(path, name, bits):
    """Set general-purpose flag ``bits`` (0x1: encrypted) on entry ``name`` of a zip,
    in the local header and the directory."""
    _patch_entry(path, name, 6, 8, lambda v: v | bits)


def _set_version_needed(path, version):
    """Set the "version needed to extract" of every directory entry."""
    raw = bytearray(open(path, "rb").read())
    for at in _directory_records(raw):
        struct.pack_into("<H", raw, at + 6, version)
    open(path, "wb").write(bytes(raw))


def _set_method(path, name, method):
    """Change the compression method recorded for entry ``name`` (local and directory)."""
    _patch_entry(path, name, 8, 10, lambda v: method)


# ---------------------------------------------------------------------- the corpus
def write_corpus(folder):
    """Write every case into ``folder`` (which must exist) and return the manifest, a
    list of ``{"name", "file", "expect": {loader: exception name or "ok"}}``."""
    folder = os.path.abspath(folder)
    cases = []

    def case(name, filename, model="ValueError", weights="ValueError"):
        expect = {}
        if model:
            expect["model"] = model
        if weights:
            expect["weights"] = weights
        cases.append({"name": name, "file": os.path.join(folder, filename), "expect": expect})
        return os.path.join(folder, filename)

    ref = reference_model()
    model_path = case("control_model_file", "reference.convcore", "ok", "ok")
    ref.save(model_path)
    weights_path = case("control_weights_file", "reference.weights.npz", None, "ok")
    ref.save_weights(weights_path)
    func_path = case("control_functional_file", "functional.convcore", "ok", None)
    _functional_model().save(func_path)
    M, W, F = _members(model_path), _members(weights_path), _members(func_path)
    cfg = json.loads(M["config.json"])
    fcfg = json.loads(F["config.json"])
    n_weights = len(ref.weights)
    shapes = [tuple(w.shape) for w in ref.weights]

    def model_file(name, members=None, weights="ValueError", **kw):
        path = case(name, name + ".convcore", weights=weights)
        _zip(path, members if members is not None else M, **kw)
        return path

    def weights_file(name, members, **kw):
        path = case(name + "_npz", name + ".weights.npz", model="ValueError")
        _zip(path, members, **kw)
        return path

    def config_file(name, edit, base="seq", text=None):
        """A model file whose config.json is ``edit``ed (load_weights ignores the config,
        so only load_model is asked)."""
        c = json.loads(json.dumps(cfg if base == "seq" else fcfg))
        if edit is not None:
            edit(c)
        data = text if text is not None else json.dumps(c)
        path = case("config_" + name, "config_" + name + ".convcore", weights=None)
        _zip(path, {**(M if base == "seq" else F), "config.json": data})

    # ------------------------------------------------------------------ not a model at all
    for name, data in [("empty", b""), ("text", b"this is not a model\n" * 50),
                       ("random_bytes", np.random.default_rng(11).bytes(4096)),
                       ("npy_not_zip", _npy(np.ones((3, 3), np.float32))),
                       ("zip_end_record_only", b"PK\x05\x06" + b"\0" * 18)]:
        p = case(name, name + ".bin")
        open(p, "wb").write(data)
    p = case("plain_pickle_payload", "model.pkl")
    open(p, "wb").write(pickle.dumps(_Payload(folder)))
    case("missing_file", "does_not_exist.convcore", "FileNotFoundError", "FileNotFoundError")
    if hasattr(os, "mkfifo"):
        p = case("fifo", "fifo.convcore")
        os.mkfifo(p)
    if os.path.exists("/dev/zero"):
        p = case("symlink_to_dev_zero", "zero.convcore")
        os.symlink("/dev/zero", p)

    # ------------------------------------------------------------------ truncated
    for src, kind, data in [(model_path, "model", open(model_path, "rb").read()),
                            (weights_path, "weights", open(weights_path, "rb").read())]:
        for frac in (0.0, 0.01, 0.1, 0.5, 0.9, 0.99):
            p = case(f"truncated_{kind}_{int(frac * 100)}pct", f"trunc_{kind}_{int(frac * 100)}.zip")
            open(p, "wb").write(data[:int(len(data) * frac)])
        p = case(f"truncated_{kind}_minus_1_byte", f"trunc_{kind}_m1.zip")
        open(p, "wb").write(data[:-1])

    # ------------------------------------------------------------------ bombs
    # config.json: 1 GiB of spaces in 1 MB (the size is declared honestly, then a liar)
    spaces = _periodic_deflate(b"", b" ", GiB)
    for name, declared in [("bomb_config_1GiB", GiB), ("bomb_config_lying_size", 1000)]:
        p = case(name, name + ".convcore")
        _raw_zip(p, [_Entry("config.json", spaces, declared)])
    p = case("config_over_16MiB", "config_over_16MiB.convcore")
    _raw_zip(p, [_Entry("config.json", _periodic_deflate(b"{}", b" ", 17 << 20), (17 << 20) + 2)])
    # an 11 MB weight entry expanding to 11 GiB: a huge declared shape; the right shape
    # with 11 GiB of data declared; the right size declared while the stream goes on
    big_n = 11 * GiB // 4
    good_header = _npy_header(shapes[0])
    good_size = len(good_header) + int(np.prod(shapes[0])) * 4
    for name, header, declared in [
            ("bomb_weight_huge_shape", _npy_header((big_n,)), None),
            ("bomb_weight_right_shape_11GiB", good_header, None),
            ("bomb_weight_lying_size", good_header, good_size)]:
        stream = _periodic_deflate(header, b"\0", 11 * GiB)
        size = declared if declared is not None else len(header) + 11 * GiB
        rest = [_Entry(f"weights/{i:05d}.npy", _deflated(M[f"weights/{i:05d}.npy"]), len(M[f"weights/{i:05d}.npy"]),
                       zlib.crc32(M[f"weights/{i:05d}.npy"])) for i in range(1, n_weights)]
        cfg_bytes = M["config.json"]
        p = case(name, name + ".convcore")
        _raw_zip(p, [_Entry("config.json", _deflated(cfg_bytes), len(cfg_bytes), zlib.crc32(cfg_bytes)),
                     _Entry("weights/00000.npy", stream, size)] + rest)
        p = case(name + "_npz", name + ".weights.npz")
        _raw_zip(p, [_Entry("w00000.npy", stream, size)] +
                 [_Entry(f"w{i:05d}.npy", _deflated(W[f"w{i:05d}.npy"]), len(W[f"w{i:05d}.npy"]),
                         zlib.crc32(W[f"w{i:05d}.npy"])) for i in range(1, n_weights)])
    # a directory of 10^6 entries (47 MB), declared honestly (zip64), then with the
    # count lying: zipfile reads as many entries as the directory's size holds
    tiny = _Entry("a", b"", 0, 0, zipfile.ZIP_STORED)
    p = case("many_entries_1e6", "many_entries.convcore")
    _raw_zip(p, [tiny], central_copies=10 ** 6)
    p = case("many_entries_lying_count", "many_entries_lying.convcore")
    _raw_zip(p, [tiny], central_copies=200_000, declared_entries=1)
    # a model file with 70,000 extra empty entries (zip64 written by zipfile itself)
    p = case("many_entries_70000_extra", "many_extra.convcore")
    _raw_zip(p, [_Entry("config.json", _deflated(M["config.json"]), len(M["config.json"]), zlib.crc32(M["config.json"]))]
             + [tiny] * 70000)

    # ------------------------------------------------------------------ entry names
    for name, extra in [("traversal_dotdot", "../../escaped_by_traversal.txt"),
                        ("traversal_absolute", os.path.join(folder, "absolute_target.txt")),
                        ("traversal_in_weights_dir", "weights/../../../escaped.npy"),
                        ("traversal_backslash", "..\\..\\escaped.txt")]:
        model_file(name, {**M, extra: b"written?"})
        weights_file(name, {**W, extra: b"written?"})
    p = model_file("duplicate_entry_names", M)
    with zipfile.ZipFile(p, "a") as z, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name
        z.writestr("weights/00000.npy", M["weights/00000.npy"])
    model_file("no_config_json", {k: v for k, v in M.items() if k != "config.json"})
    model_file("extra_weight_entry", {**M, f"weights/{n_weights:05d}.npy": M["weights/00000.npy"]})
    model_file("missing_weight_entry", {k: v for k, v in M.items() if k != f"weights/{n_weights - 1:05d}.npy"})
    weights_file("npz_positional_keys", {f"arr_{i}.npy": W[f"w{i:05d}.npy"] for i in range(n_weights)})
    weights_file("npz_missing_entry", {k: v for k, v in W.items() if k != "w00001.npy"})
    weights_file("npz_empty_archive", {})

    # ------------------------------------------------------------------ .npy entries
    payload = np.empty(2, dtype=object)
    payload[0], payload[1] = _Payload(folder), 1.0
    bad_arrays = {
        "pickle_payload": _npy(payload),
        "complex_weight": _npy(np.ones(shapes[0], np.complex128) * (1 + 2j)),
        "datetime_weight": _npy(np.zeros(shapes[0], "datetime64[s]")),
        "structured_weight": _npy(np.zeros(shapes[0], [("a", "<f4"), ("b", "<f4")])),
        "bool_weight": _npy(np.ones(shapes[0], bool)),
        "string_weight": _npy(np.full(shapes[0], "abc")),
        "wrong_shape": _npy(np.ones((7, 7), np.float32)),
        "scalar_for_tensor": _npy(np.float32(1)),
        "subarray_dtype": _raw_npy_header("{'descr': [('a', '<f4', (1000000,))], 'fortran_order': False, "
                                          f"'shape': {shapes[0]!r}, }}" + " " * 20 + "\n"),
        "huge_header_v2_length": _raw_npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n",
                                                 version=2, declared_len=0xFFFFFFF0),
        "huge_header_v1_64KiB": _raw_npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': "
                                                f"{shapes[0]!r}, }}" + " " * 65000 + "\n"),
        "nested_header": _raw_npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': "
                                         + "(" * 3000 + ")" * 3000 + "}\n"),
        "code_in_header": _raw_npy_header("{'descr': __import__('builtins').setattr(__import__('builtins'), "
                                          f"'{PAYLOAD_FLAG}', True), 'fortran_order': False, 'shape': (3,)}}\n"),
        "header_not_a_dict": _raw_npy_header("[1, 2, 3]\n"),
        "npy_version_3_and_up": b"\x93NUMPY\x09\x00" + b"\0" * 64,
        "no_npy_magic": b"not an npy file at all" * 4,
        "data_truncated": M["weights/00000.npy"][:-8],
        "trailing_data": M["weights/00000.npy"] + b"\0" * 8,
    }
    for name, data in bad_arrays.items():
        model_file("npy_" + name, {**M, "weights/00000.npy": data})
        weights_file("npy_" + name, {**W, "w00000.npy": data})
    # Valid variants that must load: Fortran order and big-endian data.
    a0 = np.asarray(ref.get_weights()[0])
    for name, arr in [("fortran_order", np.asfortranarray(a0)), ("big_endian", a0.astype(">f4"))]:
        p = case("valid_npy_" + name, "valid_" + name + ".convcore", "ok", "ok")
        _zip(p, {**M, "weights/00000.npy": _npy(arr)})

    # ------------------------------------------------------------------ damaged zips
    stored = model_file("crc_mismatch", M, compression=zipfile.ZIP_STORED)
    raw = bytearray(open(stored, "rb").read())
    at = raw.find(b"\x93NUMPY", raw.find(b"weights/00001.npy"))
    raw[at + 130] ^= 0xFF
    open(stored, "wb").write(bytes(raw))
    stored = weights_file("crc_mismatch", W, compression=zipfile.ZIP_STORED)
    raw = bytearray(open(stored, "rb").read())
    at = raw.find(b"\x93NUMPY", raw.find(b"w00001.npy"))
    raw[at + 130] ^= 0xFF
    open(stored, "wb").write(bytes(raw))
    p = case("corrupt_deflate_stream", "corrupt_deflate.convcore")
    cfg_bytes = M["config.json"]
    _raw_zip(p, [_Entry("config.json", b"\xff" * 64 + _deflated(cfg_bytes), len(cfg_bytes), zlib.crc32(cfg_bytes))])
    # (load_weights does not read config.json: a model file whose config alone is odd
    # still gives its weights)
    p = model_file("encrypted_config.json", M, weights="ok")
    _set_flag_bits(p, "config.json", 0x1)
    p = model_file("encrypted_weights_00000.npy", M)
    _set_flag_bits(p, "weights/00000.npy", 0x1)
    p = weights_file("encrypted_w00000.npy", W)
    _set_flag_bits(p, "w00000.npy", 0x1)
    for bits, label in [(0x20, "patched_data"), (0x40, "strong_encryption")]:  # zipfile: NotImplementedError
        p = model_file("flag_" + label, M)
        _set_flag_bits(p, "weights/00001.npy", bits)
        p = weights_file("flag_" + label, W)
        _set_flag_bits(p, "w00001.npy", bits)
    p = model_file("zip_version_needed_9_9", M)
    _set_version_needed(p, 99)
    p = weights_file("zip_version_needed_9_9", W)
    _set_version_needed(p, 99)
    for method, label in [(zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "lzma"), (99, "unknown")]:
        p = model_file("compression_" + label, M, weights="ok")
        _set_method(p, "config.json", method)
        p = model_file("compression_weight_" + label, M)
        _set_method(p, "weights/00002.npy", method)
        p = weights_file("compression_" + label, W)
        _set_method(p, "w00000.npy", method)

    # ------------------------------------------------------------------ malformed configs
    def set_key(path, value):
        def edit(c):
            d = c
            for k in path[:-1]:
                d = d[k]
            d[path[-1]] = value
        return edit

    def del_key(path):
        def edit(c):
            d = c
            for k in path[:-1]:
                d = d[k]
            del d[path[-1]]
        return edit

    config_file("optimizer_os_system", set_key(["compile", "optimizer", "name"], "os.system"))
    config_file("optimizer_lr_inf", set_key(["compile", "optimizer", "learning_rate"], float("inf")))
    config_file("optimizer_lr_nan", set_key(["compile", "optimizer", "learning_rate"], float("nan")))
    config_file("optimizer_lr_string", set_key(["compile", "optimizer", "learning_rate"], "0.1"))
    config_file("optimizer_unknown_argument", set_key(["compile", "optimizer", "exec"], "print(1)"))
    config_file("optimizer_not_a_dict", set_key(["compile", "optimizer"], ["SGD"]))
    config_file("loss_unknown", set_key(["compile", "loss", "name"], "os.system"))
    config_file("loss_missing", del_key(["compile", "loss"]))
    config_file("metric_unknown", set_key(["compile", "metrics"], ["os.system"]))
    config_file("compile_not_a_dict", set_key(["compile"], "sgd"))
    config_file("model_missing", del_key(["model"]))
    config_file("class_name_missing", del_key(["model", "layers", 0, "class_name"]))
    config_file("class_name_os_system", set_key(["model", "layers", 0, "class_name"], "os.system"))
    config_file("class_name_private", set_key(["model", "layers", 0, "class_name"], "_Conv"))
    config_file("model_class_private", set_key(["model", "class_name"], "_Conv"))
    config_file("model_class_is_a_layer", set_key(["model", "class_name"], "Dense"))
    config_file("units_string", set_key(["model", "layers", 3, "config", "units"], "abc"))
    config_file("units_list", set_key(["model", "layers", 3, "config", "units"], [3]))
    config_file("units_negative", set_key(["model", "layers", 3, "config", "units"], -3))
    config_file("layer_config_list", set_key(["model", "layers", 3, "config"], [1, 2]))
    config_file("layer_entry_string", set_key(["model", "layers", 3], "Dense"))
    config_file("layers_dict", set_key(["model", "layers"], {"a": 1}))
    config_file("input_shape_string", set_key(["model", "input_shape"], "abc"))
    config_file("input_shape_negative", set_key(["model", "input_shape"], [-6, 6, 1]))
    config_file("activation_os_system", set_key(["model", "layers", 3, "config", "activation"], "os.system"))
    config_file("initializer_os_system", set_key(["model", "layers", 3, "config", "kernel_initializer"], "os.system"))
    config_file("layer_dtype_object", set_key(["model", "layers", 3, "config", "dtype"], "object"))
    config_file("lambda_unknown_function", set_key(["model", "layers", 3],
                                                   {"class_name": "Lambda", "config": {"name": "l", "function": "os.system"}}))
    # a 1 KB config asking for a 238 GiB weight, or one of 128 MB (which would fit in
    # memory): refused before allocating, since the file's weight entries cannot hold it
    config_file("dense_of_238GiB", set_key(["model", "layers", 3, "config", "units"], 10 ** 9))
    config_file("dense_of_128MB", set_key(["model", "layers", 3, "config", "units"], 10 ** 6))
    config_file("version_99", set_key(["version"], 99))
    config_file("version_string", set_key(["version"], "1"))
    config_file("version_missing", del_key(["version"]))
    config_file("format_missing", del_key(["format"]))
    config_file("not_json", None, text=b"{'format': 'convcore-model'")
    config_file("not_utf8", None, text=b"\xff\xfe{}")
    config_file("json_list", None, text="[1, 2, 3]")
    config_file("json_nested_1000", None, text="[" * 1000 + "]" * 1000)
    config_file("json_nested_100000", None, text="[" * 100000 + "]" * 100000)
    config_file("json_huge_integer", None, text='{"format": "convcore-model", "version": ' + "9" * 100000 + "}")
    config_file("units_nested_150", set_key(["model", "layers", 3, "config", "units"], json.loads("[" * 150 + "]" * 150)))
    config_file("inbound_cycle", set_key(["model", "layers", 1, "inbound"], ["b"]), base="func")
    config_file("inbound_self", set_key(["model", "layers", 1, "inbound"], ["a"]), base="func")
    config_file("inbound_unknown", set_key(["model", "layers", 1, "inbound"], ["nowhere"]), base="func")
    config_file("inbound_string", set_key(["model", "layers", 1, "inbound"], "inp"), base="func")
    config_file("inbound_missing", del_key(["model", "layers", 1, "inbound"]), base="func")
    config_file("outputs_unknown", set_key(["model", "outputs"], ["nowhere"]), base="func")
    config_file("inputs_not_input_layers", set_key(["model", "inputs"], ["a"]), base="func")
    config_file("duplicate_layer_names", set_key(["model", "layers", 2, "config", "name"], "a"), base="func")
    config_file("nested_models_deep", None, text=json.dumps({**cfg, "model": _nested_sequential(40)}))
    return cases


def _nested_sequential(depth):
    """A Sequential inside a Sequential ... ``depth`` times (past the config depth limit)."""
    inner = {"class_name": "Dense", "config": {"name": "d", "units": 2}}
    for i in range(depth):
        inner = {"class_name": "Sequential", "config": {"name": f"s{i}", "input_shape": [2], "layers": [inner]}}
    return {"class_name": "Sequential", "name": "outer", "input_shape": [2], "layers": [inner]}


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "hostile_corpus"
    os.makedirs(out, exist_ok=True)
    manifest = write_corpus(out)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"{len(manifest)} cases written to {out}")
