"""A test utility: write PyTorch's zip ``.pth`` format (what ``torch.save`` writes)
from a dict of numpy arrays, without torch, so that tests in CI (which has no torch) can
make state dicts with torchvision's key names and shapes.

The layout is torch 2.x's: members ``<archive>/data.pkl`` (a protocol-2 pickle of an
``OrderedDict`` of ``torch._utils._rebuild_tensor_v2`` calls, each on a persistent
``('storage', torch.<T>Storage, key, 'cpu', numel)``), ``<archive>/.format_version``,
``<archive>/.storage_alignment``, ``<archive>/byteorder``, ``<archive>/data/<key>`` (raw
bytes, each aligned to 64 bytes in the file as torch aligns them),
``<archive>/version`` and ``<archive>/.data/serialization_id``; every member stored.
Real torch loads these files with ``torch.load(path, weights_only=True)``
(tests/fixtures/torch/make_torch_fixtures.py checks that).

    save_state_dict({"conv1.weight": w, "conv1.bias": b}, "m.pth")

Values may be numpy arrays (written contiguous, their own dtype), ``BFloat16(a)``
(float32 values rounded to bfloat16), or ``View(base, offset, size, stride)`` (a tensor
that is a strided view of the storage ``base``; several views of one ``base`` object
share one storage). ``write_torch_zip`` writes an arbitrary ``data.pkl`` and storage
members (hostile files for the tests); ``write_legacy`` the pre-1.6 non-zip format;
``pickle_ops`` has the opcode helpers.
"""
from __future__ import annotations

import collections
import os
import struct
import zipfile

import numpy as np

_STORAGE = {np.dtype("float32"): "FloatStorage", np.dtype("float64"): "DoubleStorage",
            np.dtype("float16"): "HalfStorage", np.dtype("int64"): "LongStorage", np.dtype("int32"): "IntStorage",
            np.dtype("int16"): "ShortStorage", np.dtype("int8"): "CharStorage", np.dtype("uint8"): "ByteStorage",
            np.dtype("bool"): "BoolStorage"}


class BFloat16:
    """A float32 array written as a bfloat16 tensor (rounded to nearest even)."""

    def __init__(self, a):
        self.a = np.ascontiguousarray(a, dtype=np.float32)

    def bits(self):
        u = self.a.view(np.uint32).astype(np.uint64)
        return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


class View:
    """A tensor viewing ``base`` (a 1-D array: the storage) at ``offset`` with ``size``
    and ``stride`` in elements."""

    def __init__(self, base, offset, size, stride):
        self.base, self.offset, self.size, self.stride = base, int(offset), tuple(size), tuple(stride)


# ---------------------------------------------------------------------- pickle opcodes
class pickle_ops:
    """Protocol-2 opcodes as bytes (torch writes protocol 2)."""
    PROTO2 = b"\x80\x02"
    MARK, STOP, TUPLE, EMPTY_TUPLE, REDUCE = b"(", b".", b"t", b")", b"R"
    SETITEMS, SETITEM, EMPTY_DICT, BUILD, BINPERSID = b"u", b"s", b"}", b"b", b"Q"
    NEWFALSE, NEWTRUE, NONE, EMPTY_LIST, APPENDS = b"\x89", b"\x88", b"N", b"]", b"e"

    @staticmethod
    def global_(module, name):
        return b"c" + module.encode() + b"\n" + name.encode() + b"\n"

    @staticmethod
    def str_(s):
        b = s.encode("utf-8")
        return b"X" + struct.pack("<I", len(b)) + b

    @staticmethod
    def int_(n):
        if 0 <= n < 256:
            return b"K" + bytes([n])
        if 0 <= n < 65536:
            return b"M" + struct.pack("<H", n)
        if -2 ** 31 <= n < 2 ** 31:
            return b"J" + struct.pack("<i", n)
        raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
        return b"\x8a" + bytes([len(raw)]) + raw

    @classmethod
    def tuple_(cls, items):
        return cls.MARK + b"".join(cls.int_(i) for i in items) + cls.TUPLE


def _tensor_ops(storage_name, key, numel, offset, size, stride):
    o = pickle_ops
    pid = (o.MARK + o.str_("storage") + o.global_("torch", storage_name) + o.str_(key) + o.str_("cpu")
           + o.int_(numel) + o.TUPLE)
    return (o.global_("torch._utils", "_rebuild_tensor_v2") + o.MARK + pid + o.BINPERSID + o.int_(offset)
            + o.tuple_(size) + o.tuple_(stride) + o.NEWFALSE + o.global_("collections", "OrderedDict")
            + o.EMPTY_TUPLE + o.REDUCE + o.TUPLE + o.REDUCE)


def _contiguous_strides(shape):
    out, s = [], 1
    for n in reversed(shape):
        out.append(s)
        s *= n
    return tuple(reversed(out))


def pickle_state_dict(state, byteorder="little"):
    """``(data.pkl bytes, {storage key: bytes})`` of a state dict (see the module
    docstring for the values it takes)."""
    o = pickle_ops
    body, storages, by_base = [], collections.OrderedDict(), {}
    endian = "<" if byteorder == "little" else ">"
    for name, v in state.items():
        if isinstance(v, View):
            base = np.asarray(v.base).reshape(-1)
            if id(v.base) not in by_base:
                key = str(len(storages))
                storages[key] = base.astype(base.dtype.newbyteorder(endian)).tobytes()
                by_base[id(v.base)] = key
            key = by_base[id(v.base)]
            sname, numel, offset, size, stride = _STORAGE[base.dtype], base.size, v.offset, v.size, v.stride
        elif isinstance(v, BFloat16):
            key = str(len(storages))
            storages[key] = v.bits().astype(endian + "u2").tobytes()
            sname, numel, offset, size, stride = "BFloat16Storage", v.a.size, 0, v.a.shape, \
                _contiguous_strides(v.a.shape)
        else:
            a = np.asarray(v, order="C")
            if a.dtype not in _STORAGE:
                raise TypeError(f"{name}: dtype {a.dtype} has no torch storage here")
            key = str(len(storages))
            storages[key] = a.astype(a.dtype.newbyteorder(endian)).tobytes()
            sname, numel, offset, size, stride = _STORAGE[a.dtype], a.size, 0, a.shape, _contiguous_strides(a.shape)
        body.append(o.str_(name) + _tensor_ops(sname, key, numel, offset, size, stride))
    pkl = (o.PROTO2 + o.global_("collections", "OrderedDict") + o.EMPTY_TUPLE + o.REDUCE
           + (o.MARK + b"".join(body) + o.SETITEMS if body else b"") + o.STOP)
    return pkl, storages


def write_torch_zip(path, data_pkl, storages=None, archive=None, byteorder="little", extra_members=None,
                    compress=False):
    """Write torch's zip layout with the given ``data.pkl`` bytes and storage members
    (``{key: bytes}``), aligned to 64 bytes as torch does. ``extra_members`` maps further
    member names (written as given, no archive prefix) to bytes."""
    archive = archive or os.path.splitext(os.path.basename(os.fspath(path)))[0] or "archive"
    members = [(f"{archive}/data.pkl", data_pkl), (f"{archive}/.format_version", b"1"),
               (f"{archive}/.storage_alignment", b"64"), (f"{archive}/byteorder", byteorder.encode())]
    members += [(f"{archive}/data/{k}", v) for k, v in (storages or {}).items()]
    members += [(f"{archive}/version", b"3\n"), (f"{archive}/.data/serialization_id", b"0" * 40)]
    members += list((extra_members or {}).items())
    with open(path, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            start = f.tell() + 30 + len(name.encode())
            pad = (-(start + 4)) % 64
            info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad  # torch's "FB" padding field
            z.writestr(info, data)


def save_state_dict(state, path, byteorder="little", archive=None):
    """Write ``state`` (``{name: array | BFloat16 | View}``) as torch's ``.pth``."""
    pkl, storages = pickle_state_dict(state, byteorder)
    write_torch_zip(path, pkl, storages, archive=archive, byteorder=byteorder)


def write_legacy(path, data_pkl, storages, keys=None):
    """torch's legacy (``_use_new_zipfile_serialization=False``) layout: pickles of the
    magic number, protocol 1001, sys_info and ``data_pkl`` (given), the storage keys,
    then each storage as an int64 element count and its bytes. ``storages`` maps a key to
    ``(numel, bytes)``."""
    o = pickle_ops
    magic = 0x1950A86A20F9469CFC6C
    sys_info = (o.EMPTY_DICT + o.MARK + o.str_("protocol_version") + o.int_(1001) + o.str_("little_endian")
                + o.NEWTRUE + o.SETITEMS)
    keys = list(storages) if keys is None else keys
    out = [o.PROTO2 + o.int_(magic) + o.STOP, o.PROTO2 + o.int_(1001) + o.STOP, o.PROTO2 + sys_info + o.STOP,
           data_pkl, o.PROTO2 + o.EMPTY_LIST + o.MARK + b"".join(o.str_(k) for k in keys) + o.APPENDS + o.STOP]
    for k in keys:
        numel, raw = storages[k]
        out.append(struct.pack("<q", numel) + raw)
    with open(path, "wb") as f:
        f.write(b"".join(out))
