"""Keras 3's ``.keras`` files and ``.weights.h5`` files, written and read by convcore.

A ``.keras`` file is a zip of ``metadata.json``, ``config.json`` (the model as
:func:`~convcore.saving.keras_config.to_keras_config` writes it, plus its
``compile_config``) and ``model.weights.h5``: one HDF5 group per layer,
``layers/<snake_case class name>[_n]/vars/<i>`` (nested models below their own path;
a subclassed model's layers under their attribute names, as Keras's ``_save_state``),
the model's own ``vars``, and ``optimizer/vars/<i>`` in Keras's order. A subclassed
model loads from a ``.keras`` file when its class is registered (or in
``custom_objects``) and the file has a ``build_config`` (Keras writes one; convcore can
only when the model recorded its first input shape). A
``.weights.h5`` file is that HDF5 file alone; ``zipped=False`` writes the three files
into a folder of that name, as Keras does.

Reading treats the file as hostile. Zip members are never extracted: a member named
with a path (``../x``, ``/etc/x``, ``C:\\x``) is refused, as is a member that declares
more bytes than it may hold (``config.json`` 16 MiB, the weights a bound from the model
the config describes) or more than its compressed size can expand to (a zip bomb). The
HDF5 member is read in place when stored (as Keras and convcore write it) or into
memory up to its bound when deflated. Every dataset must be reached through hard links
(no external or soft links), hold its data in the file (no external or virtual
storage), be a real number (float or integer: no strings, objects, compound or complex
types) and have exactly the shape of the variable it is for, checked before it is read.
Every dataset is checked before any data is read; ``load_weights`` reads every array
before assigning any, so a live model is fully loaded or left unchanged, while
``load_model`` assigns each array of its new model as it is read (the weights are
never held twice). The first layer whose shapes differ is named with both shapes.
"""
from __future__ import annotations

import datetime
import io
import json
import os
import warnings
import zipfile

import numpy as np

from . import keras_config as kc
from .config_errors import ConfigError
from .saving_lib import (MAX_CONFIG_BYTES, _DEFLATE_MAX_RATIO, _READ_ERRORS, _atomic_write, _bad, _check_directory,
                         _FileError, _open_regular, _weight_dtype_ok, parse_config_json)

KERAS_FORMAT_VERSION = "3.15.1"  # the Keras release whose layout this module writes
_MAX_METADATA_BYTES = 1 << 20
_ENTRIES = ("metadata.json", "config.json", "model.weights.h5")
_MAX_ZIP_ENTRIES = 4096


# ---------------------------------------------------------------------- writing
def _weights_h5_bytes(model, include_optimizer=True):
    """The HDF5 file of the model's weights (and optimizer state) in Keras 3's layout."""
    import h5py
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for path, layer, variables in kc.keras_layer_paths(model):
            g = f.require_group(path)
            g.attrs["name"] = layer.name
            i = 0
            for i, v in enumerate(variables):
                g.create_dataset(str(i), data=v.numpy())
            n = len(variables)
            for name, shape, dtype in kc.extra_keras_variables(layer):
                g.create_dataset(str(n), data=np.zeros(shape, dtype))
                n += 1
        if include_optimizer and getattr(model, "_compiled", False) and model.optimizer is not None:
            entries = kc.optimizer_variables_keras_order(model)
            if entries is None:
                warnings.warn(f"optimizer {type(model.optimizer).__name__} has no Keras counterpart: its state is "
                              "not saved", stacklevel=3)
            else:
                g = f.require_group("optimizer/vars")
                g.attrs["name"] = model.optimizer.name
                for i, a in enumerate(kc.optimizer_values(model.optimizer, entries)):
                    g.create_dataset(str(i), data=a)
    return buf.getvalue()


def _config_json(model):
    cfg = kc.to_keras_config(model)
    cc = kc.keras_compile_config(model)
    if cc is not None:
        cfg["compile_config"] = cc
    return json.dumps(cfg, indent=None).encode("utf-8")


def _metadata_json():
    from .. import __version__ as convcore_version
    return json.dumps({"keras_version": KERAS_FORMAT_VERSION,
                       "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                       "convcore_version": convcore_version}).encode("utf-8")


def save_model(model, path, zipped=True, include_optimizer=True):
    """Write ``model`` as a Keras 3 ``.keras`` file (atomically), or with
    ``zipped=False`` as Keras's folder of the same three files."""
    members = [("metadata.json", _metadata_json()), ("config.json", _config_json(model)),
               ("model.weights.h5", _weights_h5_bytes(model, include_optimizer))]
    if zipped is False:
        path = os.fspath(path)
        os.makedirs(path, exist_ok=True)
        for name, data in members:
            _atomic_write(os.path.join(path, name), lambda f, d=data: f.write(d))
        return

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as z:
            for name, data in members:
                z.writestr(name, data)

    _atomic_write(path, write)


def save_weights(model, path):
    """Write the weights (and a compiled model's optimizer state, as Keras) as a Keras 3
    ``.weights.h5`` file, atomically."""
    data = _weights_h5_bytes(model)
    _atomic_write(path, lambda f: f.write(data))


# ---------------------------------------------------------------------- reading: zip
def _unsafe_name(name):
    n = name.replace("\\", "/")
    return n.startswith("/") or (len(n) > 1 and n[1] == ":") or any(p == ".." for p in n.split("/")) or "\x00" in n


class _KerasZip:
    """An open ``.keras`` zip: members checked (names, sizes) before anything is read."""

    def __init__(self, path):
        self.path = path
        self.file = _open_regular(path)
        try:
            _check_directory(self.file, path)
            self.file.seek(0)
            self.zip = zipfile.ZipFile(self.file)
        except _FileError:
            self.file.close()
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, OverflowError) as e:
            self.file.close()
            raise _bad(path, f"not a Keras .keras file (or it is truncated): {e}") from None
        infos = self.zip.infolist()
        try:
            if len(infos) > _MAX_ZIP_ENTRIES:
                raise _bad(path, f"the zip has {len(infos)} entries; a .keras file has a few")
            names = [i.filename for i in infos]
            for n in names:
                if _unsafe_name(n):
                    raise _bad(path, f"zip member {n!r} has a path outside the archive (path traversal); refused")
            if len(set(names)) != len(names):
                raise _bad(path, "the zip holds two members of the same name")
            self.by_name = {i.filename: i for i in infos}
            for need in ("config.json", "model.weights.h5"):
                if need not in self.by_name:
                    raise _bad(path, f"not a Keras .keras file: it has no {need}")
        except BaseException:
            self.close()
            raise

    def close(self):
        self.zip.close()
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def _info(self, name, limit):
        info = self.by_name[name]
        if info.flag_bits & 0x1:
            raise _bad(self.path, f"zip member {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _bad(self.path, f"zip member {name!r} uses compression method {info.compress_type}; .keras files "
                                  "are stored or deflated")
        if info.file_size > limit:
            raise _bad(self.path, f"zip member {name!r} declares {info.file_size} bytes, more than the {limit} it "
                                  "may have (refused before decompressing it)")
        cap = info.compress_size if info.compress_type == zipfile.ZIP_STORED else \
            _DEFLATE_MAX_RATIO * info.compress_size + 1024
        if info.file_size > cap:
            raise _bad(self.path, f"zip member {name!r} declares {info.file_size} bytes from {info.compress_size} "
                                  "compressed bytes, more than they can hold (a damaged file or a zip bomb)")
        return info

    def read(self, name, limit):
        """A whole member, at most ``limit`` bytes, read in chunks."""
        info = self._info(name, limit)
        out = bytearray()
        try:
            with self.zip.open(info) as f:
                while True:
                    chunk = f.read(min(1 << 20, limit + 1 - len(out)))
                    if not chunk:
                        break
                    out += chunk
                    if len(out) > limit:
                        raise _bad(self.path, f"zip member {name!r} is larger than the {limit} bytes it may have")
        except _FileError:
            raise
        except _READ_ERRORS + (ValueError, NotImplementedError) as e:
            raise _bad(self.path, f"damaged zip member {name!r} (or the file is truncated): {e}") from None
        if len(out) != info.file_size:
            raise _bad(self.path, f"zip member {name!r} holds {len(out)} bytes, not the {info.file_size} it declares")
        return bytes(out)

    def h5_file_object(self, name, limit):
        """A read-only file object of member ``name`` for h5py: a window on the zip
        file itself when the member is stored, else the member decompressed into memory
        (at most ``limit`` bytes)."""
        info = self._info(name, limit)
        if info.compress_type == zipfile.ZIP_STORED:
            self.file.seek(info.header_offset)
            head = self.file.read(30)
            if len(head) != 30 or head[:4] != b"PK\x03\x04":
                raise _bad(self.path, f"damaged zip member {name!r}: no local header (or the file is truncated)")
            n, m = int.from_bytes(head[26:28], "little"), int.from_bytes(head[28:30], "little")
            start = info.header_offset + 30 + n + m
            self.file.seek(0, os.SEEK_END)
            if start + info.file_size > self.file.tell():
                raise _bad(self.path, f"zip member {name!r} ends past the end of the file (the file is truncated)")
            return _Window(self.file, start, info.file_size)
        return io.BytesIO(self.read(name, limit))


class _Window(io.RawIOBase):
    """Bytes ``[start, start + size)`` of an open file, as a read-only seekable file."""

    def __init__(self, f, start, size):
        super().__init__()
        self.f, self.start, self.size, self.pos = f, start, size, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, offset, whence=0):
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, b):
        n = max(0, min(len(b), self.size - self.pos))
        if n == 0:
            return 0
        self.f.seek(self.start + self.pos)
        data = self.f.read(n)
        b[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def read(self, n=-1):
        if n is None or n < 0:
            n = self.size - self.pos
        buf = bytearray(max(0, min(n, self.size - self.pos)))
        got = self.readinto(buf)
        return bytes(buf[:got])


# ---------------------------------------------------------------------- reading: h5
def _open_h5(fileobj, path):
    import h5py
    try:
        return h5py.File(fileobj, "r")
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise _bad(path, f"the weights are not a readable HDF5 file (or it is truncated): {e}") from None


def _child(group, name, path, where):
    """``group[name]`` reached through a hard link only (no external file, no soft link)."""
    import h5py
    try:
        link = group.get(name, getlink=True)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise _bad(path, f"the weights file is damaged at {where!r}: {e}") from None
    if link is None:
        return None
    if not isinstance(link, h5py.HardLink):
        raise _bad(path, f"{where!r} in the weights file is a {type(link).__name__}; only hard links are read (an "
                         "external or soft link could point at another file)")
    try:
        return group[name]
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise _bad(path, f"the weights file is damaged at {where!r}: {e}") from None


def _group(root, h5path, path):
    import h5py
    g = root
    parts = [p for p in h5path.split("/") if p]
    for i, p in enumerate(parts):
        g = _child(g, p, path, "/".join(parts[:i + 1]))
        if g is None:
            return None
        if not isinstance(g, h5py.Group):
            raise _bad(path, f"{'/'.join(parts[:i + 1])!r} in the weights file is not a group")
    return g


def _dataset_names(g, path, where):
    try:
        names = list(g.keys())
    except (OSError, ValueError, RuntimeError) as e:
        raise _bad(path, f"the weights file is damaged at {where!r}: {e}") from None
    if len(names) > 1 << 16:
        raise _bad(path, f"{where!r} holds {len(names)} entries")
    return names


def _check_dataset(g, key, shape, path, where, what):
    """Dataset ``key`` of group ``g``, checked (reached by hard links, a plain real array
    of ``shape`` stored in the file) without reading its data: ``(dataset, shape,
    name)`` for :func:`_read_checked`."""
    import h5py
    ds = _child(g, key, path, f"{where}/{key}")
    if ds is None:
        raise _bad(path, f"{what}: {where}/{key} is missing")
    if not isinstance(ds, h5py.Dataset):
        raise _bad(path, f"{where}/{key} is not a dataset")
    try:
        dtype, dshape = ds.dtype, tuple(ds.shape) if ds.shape is not None else None
        external, virtual = ds.external, ds.is_virtual
    except (OSError, ValueError, TypeError, RuntimeError) as e:
        raise _bad(path, f"{where}/{key} cannot be read: {e}") from None
    if external or virtual:
        raise _bad(path, f"{where}/{key} keeps its data outside the file (external or virtual storage); refused")
    if not _weight_dtype_ok(np.dtype(dtype)):
        raise _bad(path, f"{where}/{key} has dtype {dtype}; weights are real numbers (float or integer)")
    if dshape != tuple(shape):
        raise _ShapeError(path, what, dshape, tuple(shape))
    return ds, tuple(shape), f"{where}/{key}"


def _read_checked(checked, path):
    """The data of a checked dataset, read into an array of exactly its shape."""
    ds, shape, where = checked
    out = np.empty(shape, dtype=ds.dtype)
    try:
        if out.size:
            ds.read_direct(out)
        elif shape == ():
            out[...] = ds[()]
    except (OSError, ValueError, TypeError, RuntimeError) as e:
        raise _bad(path, f"{where} cannot be read (a damaged or truncated file): {e}") from None
    return out


class _ShapeError(_FileError):
    def __init__(self, path, what, got, want):
        super().__init__(f"{path!s}: {what} has shape {want} in the model but {got} in the file")
        self.got, self.want = got, want


def _check_model_weights(root, model, path, skip_mismatch=False):
    """``[(variable, checked dataset)]`` for every weight of ``model`` in an open Keras
    weights file: every group and dataset checked, no data read yet."""
    out = []
    for h5path, layer, variables in kc.keras_layer_paths(model):
        extra = kc.extra_keras_variables(layer)
        g = _group(root, h5path, path)
        if g is None:
            if not variables and not extra:
                continue
            if skip_mismatch:
                warnings.warn(f"{path!s}: no weights for layer {layer.name!r} ({h5path}); skipped", stacklevel=3)
                continue
            raise _bad(path, f"the file has no weights for layer {layer.name!r} (expected {h5path!r}); it is not "
                             "a weights file of this model")
        names = _dataset_names(g, path, h5path)
        expected = len(variables) + len(extra)
        n_file = len(names)
        if n_file != expected and not (extra and n_file == len(variables)):
            msg = f"layer {layer.name!r} expected {len(variables)} variables, but the file has {n_file} ({h5path})"
            if not variables and not getattr(layer, "built", True):
                msg += ("; the layer is not built yet (a subclassed model creates its weights on its first call: "
                        "call the model on a batch before loading)")
            if skip_mismatch:
                warnings.warn(f"{path!s}: {msg}; skipped", stacklevel=3)
                continue
            raise _bad(path, msg)
        got = []
        try:
            for i, v in enumerate(variables):
                got.append((v, _check_dataset(g, str(i), tuple(v.shape), path, h5path,
                                              f"layer {layer.name!r} weight {i} ({v.name})")))
        except _ShapeError as e:
            if skip_mismatch:
                warnings.warn(str(e) + "; skipped", stacklevel=3)
                continue
            raise
        out.extend(got)
    return out


def _check_optimizer(root, model, path):
    """``(entries, checked datasets)`` of the optimizer state to load, or None (warned:
    absent, or incompatible with the optimizer)."""
    g = _group(root, "optimizer/vars", path)
    opt = getattr(model, "optimizer", None)
    if g is None or opt is None:
        return None
    names = _dataset_names(g, path, "optimizer/vars")
    full = kc.optimizer_variables_keras_order(model, built=True)
    if full is None:
        warnings.warn(f"{path!s}: the optimizer state is not loaded: {type(opt).__name__} has no Keras "
                      "counterpart", stacklevel=3)
        return None
    fresh = kc.optimizer_variables_keras_order(model, built=False)
    if len(names) == len(full):
        entries = full
    elif len(names) == len(fresh):
        entries = fresh
    else:
        warnings.warn(f"{path!s}: the optimizer state is not loaded: the file has {len(names)} optimizer "
                      f"variables, {type(opt).__name__} of this model has {len(full)} (another optimizer or other "
                      "settings)", stacklevel=3)
        return None
    arrays = []
    for i, (kind, target, shape, dtype) in enumerate(entries):
        try:
            a = _check_dataset(g, str(i), shape, path, "optimizer/vars", f"optimizer variable {i} ({kind})")
        except _ShapeError as e:
            warnings.warn(f"{path!s}: the optimizer state is not loaded: optimizer variable {i} ({kind}) has "
                          f"shape {e.got} in the file, {e.want} here", stacklevel=3)
            return None
        arrays.append(a)
    return entries, arrays


def _weight_bytes(model):
    return int(sum(v.size * np.dtype(v.dtype).itemsize for v in model.weights))


def _h5_limit(n_bytes):
    """The most bytes the weights file of a model of ``n_bytes`` of weights may have:
    the weights, up to four optimizer copies of them, and HDF5's bookkeeping."""
    return 6 * n_bytes + (16 << 20)


def _as_dtype(a, v):
    return a if a.dtype == np.dtype(v.dtype) else a.astype(v.dtype)


def _load_h5_into(root, model, path, skip_mismatch=False, load_optimizer=True, fresh=False):
    """Check every dataset the model (and its optimizer) needs, then read them. A
    ``fresh`` model (just built by load_model, nobody else holds it) gets each array as
    it is read, so the weights are never held twice; a live model (load_weights) gets
    them only once all are read, so it is fully loaded or left unchanged."""
    pairs = _check_model_weights(root, model, path, skip_mismatch)
    opt = _check_optimizer(root, model, path) if load_optimizer and getattr(model, "_compiled", False) else None
    if fresh:
        for v, c in pairs:
            v.assign(_as_dtype(_read_checked(c, path), v))
        if opt is not None:
            for e, c in zip(*opt):
                kc.assign_optimizer_values(model, model.optimizer, [e], [_read_checked(c, path)])
        return
    arrays = [_as_dtype(_read_checked(c, path), v) for v, c in pairs]
    opt_arrays = None if opt is None else [_read_checked(c, path) for c in opt[1]]
    for (v, _), a in zip(pairs, arrays):
        v.assign(a)
    if opt is not None:
        kc.assign_optimizer_values(model, model.optimizer, opt[0], opt_arrays)


# ---------------------------------------------------------------------- public
def _read_json(data, path, what):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _bad(path, f"{what} is not UTF-8 text: {e}") from None
    return parse_config_json(text, f"{path!s}: {what}")


def _build(cfg, path, custom_objects, safe_mode, budget):
    from ..layers.core import weight_budget
    if not isinstance(cfg, dict):
        raise _bad(path, f"config.json holds a {type(cfg).__name__}, not a model config")
    token = weight_budget.set([budget]) if budget is not None else None
    try:
        return kc.from_keras_config(cfg, custom_objects=custom_objects, safe_mode=safe_mode)
    except ConfigError as e:
        raise e.in_file(path) from None
    except ValueError as e:
        if isinstance(e, _FileError):
            raise
        raise ValueError(f"{path!s}: {e}") from None
    finally:
        if token is not None:
            weight_budget.reset(token)


def _compile(model, cfg, path, custom_objects):
    cc = cfg.get("compile_config")
    if not cc:
        return
    try:
        args = kc.compile_from_keras(cc, custom_objects)
    except ConfigError as e:
        raise e.within("compile_config").in_file(path) from None
    try:
        model.compile(**args)
    except (TypeError, ValueError) as e:
        raise ConfigError("compile_config", str(e), path) from None


def load_model(path, custom_objects=None, compile=True, safe_mode=True):
    """The model of a Keras 3 ``.keras`` file (or Keras's ``zipped=False`` folder),
    compiled as it was saved when ``compile`` (and its optimizer state loaded when it
    fits the optimizer, else skipped with a warning saying why)."""
    if os.path.isdir(path):
        return _load_folder(path, custom_objects, compile, safe_mode)
    with _KerasZip(path) as z:
        cfg = _read_json(z.read("config.json", MAX_CONFIG_BYTES), path, "config.json")
        if "metadata.json" in z.by_name:
            _read_json(z.read("metadata.json", _MAX_METADATA_BYTES), path, "metadata.json")
        info = z.by_name["model.weights.h5"]
        budget = min(info.file_size, info.compress_size if info.compress_type == zipfile.ZIP_STORED
                     else _DEFLATE_MAX_RATIO * info.compress_size + 1024)
        model = _build(cfg, path, custom_objects, safe_mode, budget)
        if compile:
            _compile(model, cfg, path, custom_objects)
        fo = z.h5_file_object("model.weights.h5", _h5_limit(_weight_bytes(model)))
        with _open_h5(fo, path) as root:
            _load_h5_into(root, model, path, load_optimizer=compile, fresh=True)
    return model


def _load_folder(path, custom_objects, compile, safe_mode):
    def member(name, limit):
        p = os.path.join(path, name)
        with _open_regular(p) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise _bad(p, f"larger than the {limit} bytes it may have")
        return data
    cfg = _read_json(member("config.json", MAX_CONFIG_BYTES), path, "config.json")
    wpath = os.path.join(path, "model.weights.h5")
    model = _build(cfg, path, custom_objects, safe_mode, os.path.getsize(wpath))
    if compile:
        _compile(model, cfg, path, custom_objects)
    with _open_regular(wpath) as f, _open_h5(f, wpath) as root:
        _load_h5_into(root, model, wpath, load_optimizer=compile, fresh=True)
    return model


def load_weights(model, path, skip_mismatch=False):
    """Load a Keras 3 ``.weights.h5`` file, or the weights of a ``.keras`` file, into
    ``model`` (its optimizer state too when the model is compiled and it fits)."""
    if zipfile.is_zipfile(path):
        with _KerasZip(path) as z:
            fo = z.h5_file_object("model.weights.h5", _h5_limit(_weight_bytes(model)))
            with _open_h5(fo, path) as root:
                _load_h5_into(root, model, path, skip_mismatch)
        return
    with _open_regular(path) as f, _open_h5(f, path) as root:
        _load_h5_into(root, model, path, skip_mismatch)
