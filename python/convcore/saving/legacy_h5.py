"""Keras's legacy HDF5 files (``model.save('m.h5')``, ``save_weights('w.h5')``), both ways.

The layout is the one of Keras 3's ``keras/src/legacy/saving/legacy_h5_format.py`` and of
tf.keras 2 before it:

- root attributes ``model_config`` (the architecture, JSON), ``keras_version``,
  ``backend`` and, for a compiled model, ``training_config`` (JSON: loss, metrics,
  loss weights and ``optimizer_config``);
- group ``model_weights`` with attributes ``layer_names`` (every layer, in
  ``model.layers`` order), ``backend``, ``keras_version``; one group per layer with the
  attribute ``weight_names`` (the layer's trainable weights, then its non-trainable
  ones) and one dataset per name; Keras 3 adds an (empty) ``top_level_model_weights``;
- group ``optimizer_weights`` (``weight_names`` and datasets) when the model was compiled
  and saved with ``include_optimizer=True``.

A weights file of ``save_weights('w.h5')`` holds the ``model_weights`` part at its root.
Name lists longer than HDF5's 64 KB attribute limit are split into ``layer_names0``,
``layer_names1``, ... as Keras splits them.

Loading: the config of a tf.keras 2 file goes through
:func:`convcore.saving.keras2_compat.keras2_to_keras3`, then
``keras_config.from_keras_config`` builds the model; weights are matched to layers by
order (layers with weights, as Keras's ``load_weights_from_hdf5_group``) or by name
(``by_name=True``). The file is hostile until checked: it must be a regular file with
HDF5's signature; soft and external links, external and virtual datasets are refused
(they would read other files); attributes are read only when their declared size is
below a limit; every weight dataset must be a real (float or integer) array of exactly
the shape of the model variable it is for, and its stored bytes must lie inside the
file (a truncated file is caught here), all checked before any dataset is read, so
memory stays bounded by the model. Then the datasets are read and assigned one at a
time: the weights are never held twice (a 500 MB file needs 500 MB more, not 1 GB) and a
model is either fully loaded or left unchanged. The one exception to one-at-a-time is a
file with compressed datasets (Keras never writes them): their data can turn out
corrupt while being decompressed, so those are read whole before anything is assigned.
Every problem is a ValueError naming the file.

Where convcore differs from Keras: the files it writes say ``keras_version="3.15.1"``
(the Keras release whose legacy layout they follow) and ``backend="convcore"`` (neither
Keras 3 nor tf.keras 2 checks these); a weight count or shape mismatch names the file,
the layer and both shapes; ``skip_mismatch`` skips (with a warning) what Keras skips.
Optimizer state loads for convcore's own optimizers when the file's names and shapes
match the model (Keras 3's order, or tf.keras 2's ``<optimizer>/<layer>/<weight>/<slot>``
names); otherwise it is skipped with a warning, as Keras does.
"""
from __future__ import annotations

import json
import math
import os
import re
import warnings

import numpy as np

from . import keras2_compat
from .config_errors import ConfigError

#: The Keras release whose legacy writer this module follows (written as ``keras_version``).
KERAS_VERSION = "3.15.1"
BACKEND = "convcore"

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
HDF5_OBJECT_HEADER_LIMIT = 64512  # Keras's chunking limit for name lists
MAX_CONFIG_BYTES = 16 << 20  # model_config / training_config
MAX_NAMES = 1 << 16  # entries of one name list (layers of a model, weights of a layer)
MAX_NAME_BYTES = 16 << 20  # all the names of one list together
_MAX_NAME_CHUNKS = 4096

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "is_hdf5"]


def _h5py():
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency
        raise ImportError("Keras .h5 files need h5py: pip install h5py") from None
    return h5py


class _Refused(ValueError):
    """A file the loader refused (its message names the file)."""


def _bad(path, message):
    return _Refused(f"{path!s}: {message}")


def _file_name(obj):
    """The name a message gives the file of an open h5py object."""
    try:
        return obj.file.filename
    except Exception:  # a closed or in-memory file
        return "<HDF5 file>"


# ---------------------------------------------------------------------- opening
def is_hdf5(path):
    """Whether ``path`` starts with HDF5's signature (at 0 or at a user-block offset)."""
    try:
        with open(path, "rb") as f:
            return _signature_at(f) is not None
    except OSError:
        return False


def _signature_at(f):
    f.seek(0, os.SEEK_END)
    size = f.tell()
    offset = 0
    while offset + 8 <= size:
        f.seek(offset)
        if f.read(8) == HDF5_SIGNATURE:
            return offset
        offset = 512 if offset == 0 else offset * 2
    return None


class _Open:
    """``with _Open(path_or_h5) as f``: an h5py File (or the group given), refusing
    what is not a regular HDF5 file with a ValueError naming it."""

    def __init__(self, target, mode="r"):
        self.target, self.mode, self.file = target, mode, None

    def __enter__(self):
        h5py = _h5py()
        if isinstance(self.target, (h5py.File, h5py.Group)):
            return self.target
        from .saving_lib import _FileError, _open_regular
        path = os.fspath(self.target)
        try:
            with _open_regular(path) as raw:  # a FIFO or a device is refused without blocking
                at = _signature_at(raw)
        except _FileError as e:
            raise _Refused(str(e)) from None
        if at is None:
            raise _bad(path, "not an HDF5 file (no HDF5 signature; a Keras .h5 file is HDF5)")
        try:
            self.file = h5py.File(path, "r")
        except (OSError, ValueError, RuntimeError) as e:  # truncated, damaged superblock
            raise _bad(path, f"not a readable HDF5 file (it may be truncated or damaged): {e}") from None
        return self.file

    def __exit__(self, *exc):
        if self.file is not None:
            self.file.close()
        return False


# ---------------------------------------------------------------------- safe reading
def _child(group, name, kind, what):
    """``group[name]`` if it is a plain member of type ``kind`` (no soft or external
    link: those would read elsewhere, possibly another file)."""
    h5py = _h5py()
    current = group
    parts = name.split("/")
    for i, part in enumerate(parts):
        if not part:
            raise _bad(_file_name(group), f"{what}: invalid path {name!r} (an empty part)")
        try:
            link = current.get(part, default=None, getlink=True)
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            raise _bad(_file_name(group), f"{what}: damaged entry {name!r}: {e}") from None
        if link is None:
            raise _bad(_file_name(group), f"{what}: no entry {name!r} in group {group.name!r}")
        if isinstance(link, (h5py.SoftLink, h5py.ExternalLink)):
            raise _bad(_file_name(group), f"{what}: {name!r} is a {type(link).__name__}; links are refused "
                                          "(a weight file holds its own data)")
        try:
            current = current[part]
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            raise _bad(_file_name(group), f"{what}: damaged entry {name!r}: {e}") from None
        want = kind if i == len(parts) - 1 else h5py.Group
        if not isinstance(current, want):
            raise _bad(_file_name(group), f"{what}: {name!r} is not an HDF5 {want.__name__.lower()}")
    return current


def _group(group, name, what):
    return _child(group, name, _h5py().Group, what)


def _attr(obj, name, what, limit=None):
    """Attribute ``name`` of ``obj`` (None if absent), read only after its declared
    size is checked against ``limit`` (default ``MAX_CONFIG_BYTES``)."""
    h5py = _h5py()
    limit = MAX_CONFIG_BYTES if limit is None else limit
    try:
        if name not in obj.attrs:
            return None
        aid = obj.attrs.get_id(name)
        shape, dtype = aid.shape, aid.dtype
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise _bad(_file_name(obj), f"{what}: damaged attribute {name!r}: {e}") from None
    n = math.prod(shape) if shape else 1
    info = h5py.check_string_dtype(dtype)
    vlen = info is not None and info.length is None or h5py.check_vlen_dtype(dtype) is not None
    if n > MAX_NAMES:
        raise _bad(_file_name(obj), f"{what}: attribute {name!r} declares {n} values; at most {MAX_NAMES} "
                                    "(refused before reading it)")
    if dtype.kind == "O" and not vlen:
        raise _bad(_file_name(obj), f"{what}: attribute {name!r} has object type {dtype}")
    if not vlen and n * dtype.itemsize > limit:
        raise _bad(_file_name(obj), f"{what}: attribute {name!r} declares {n * dtype.itemsize} bytes, more than "
                                    f"the {limit} it may have (refused before reading it)")
    try:
        value = obj.attrs[name]
    except (OSError, ValueError, RuntimeError, TypeError) as e:
        raise _bad(_file_name(obj), f"{what}: damaged attribute {name!r}: {e}") from None
    if vlen:  # each string is at most the file's size; their total is checked after
        flat = value if isinstance(value, np.ndarray) else [value]
        total = sum(len(v) for v in np.ravel(flat) if isinstance(v, (bytes, str)))
        if total > limit:
            raise _bad(_file_name(obj), f"{what}: attribute {name!r} holds {total} bytes, more than the {limit} "
                                        "it may have")
    return value


def _text(v, where, what):
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v[()]
    if isinstance(v, (bytes, np.bytes_)):
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            raise _bad(where, f"{what} is not UTF-8 text") from None
    if isinstance(v, str):
        return v
    raise _bad(where, f"{what} must be a string, got {type(v).__name__}")


def _names(group, name, what):
    """A list of names stored as Keras stores them: attribute ``name``, or chunks
    ``name0``, ``name1``, ... (the 64 KB HDF5 attribute limit)."""
    where = _file_name(group)
    try:
        has = name in group.attrs
    except (OSError, RuntimeError) as e:
        raise _bad(where, f"{what}: damaged attributes: {e}") from None
    chunks = [name] if has else []
    if not has:
        while f"{name}{len(chunks)}" in group.attrs:
            chunks.append(f"{name}{len(chunks)}")
            if len(chunks) > _MAX_NAME_CHUNKS:
                raise _bad(where, f"{what}: more than {_MAX_NAME_CHUNKS} chunks of {name!r}")
    out, total = [], 0
    for c in chunks:
        v = _attr(group, c, what, MAX_NAME_BYTES)
        for item in (np.ravel(np.asarray(v, dtype=object)) if np.ndim(v) else [v]):
            s = _text(item, where, f"{what}: an entry of {name!r}")
            total += len(s)
            out.append(s)
        if len(out) > MAX_NAMES or total > MAX_NAME_BYTES:
            raise _bad(where, f"{what}: {name!r} lists more than {MAX_NAMES} names or {MAX_NAME_BYTES} bytes")
    return out


class _Pending:
    """A checked dataset, read later (``read()``): the loader checks every dataset of a
    file before it reads any, then reads them one at a time into the model, so at no
    point are all the weights held twice."""

    __slots__ = ("ds", "shape", "dtype", "filtered", "path", "name", "what")

    def __init__(self, ds, shape, dtype, filtered, path, name, what):
        self.ds, self.shape, self.dtype, self.filtered = ds, shape, dtype, filtered
        self.path, self.name, self.what = path, name, what

    def read(self):
        out = np.empty(self.shape, dtype=self.dtype)
        try:
            if out.size:
                self.ds.read_direct(out)
        except (OSError, ValueError, RuntimeError, TypeError) as e:
            raise _bad(self.path, f"{self.what}: cannot read dataset {self.name!r} (the file may be damaged): "
                                  f"{e}") from None
        return out


def _check_extent(ds, path, name, what, nbytes):
    """Whether the dataset's stored bytes lie inside the file (a truncated file is
    refused before anything is read). Returns whether its storage is filtered
    (compressed): such data can still turn out corrupt while it is read."""
    h5py = _h5py()
    try:
        size_of_file = ds.file.id.get_filesize()
        dcpl = ds.id.get_create_plist()
        layout = dcpl.get_layout()
        filtered = dcpl.get_nfilters() > 0
        if layout == h5py.h5d.CONTIGUOUS:
            offset = ds.id.get_offset()
            if offset is not None:  # None: never written, reads as the fill value
                stored = ds.id.get_storage_size()
                if stored < nbytes or offset + stored > size_of_file:
                    raise _bad(path, f"{what}: dataset {name!r} needs {nbytes} bytes at offset {offset}; the file "
                                     f"has {size_of_file} (it is truncated or damaged)")
        elif layout == h5py.h5d.CHUNKED:
            for i in range(ds.id.get_num_chunks()):
                info = ds.id.get_chunk_info(i)
                if info.byte_offset is not None and info.byte_offset + info.size > size_of_file:
                    raise _bad(path, f"{what}: a chunk of dataset {name!r} lies past the end of the file "
                                     f"({size_of_file} bytes; it is truncated or damaged)")
    except _Refused:
        raise
    except (OSError, ValueError, RuntimeError, TypeError, AttributeError) as e:
        raise _bad(path, f"{what}: damaged dataset {name!r}: {e}") from None
    return filtered


def _dataset(group, name, want_shape, what, where_var):
    """Dataset ``name`` of ``group`` for a variable of shape ``want_shape``, checked
    without reading it: a plain real array of exactly that shape whose bytes lie inside
    the file. Returns (_Pending, None), or (None, message) for a shape mismatch (the
    caller decides whether it is an error)."""
    h5py = _h5py()
    ds = _child(group, name, h5py.Dataset, what)
    path = _file_name(group)
    try:
        if ds.external:
            raise _bad(path, f"{what}: dataset {name!r} stores its data in another file ({ds.external[0][0]!r}); "
                             "refused")
        if ds.is_virtual:
            raise _bad(path, f"{what}: dataset {name!r} is a virtual dataset (data from other files); refused")
        raw_shape, dtype = ds.shape, ds.dtype
    except _Refused:
        raise
    except (OSError, ValueError, RuntimeError, TypeError) as e:
        raise _bad(path, f"{what}: damaged dataset {name!r}: {e}") from None
    if dtype.kind not in "fiub" or dtype.fields is not None or dtype.subdtype is not None or dtype.itemsize > 8:
        raise _bad(path, f"{what}: dataset {name!r} has type {dtype}; weights are real numbers (float or integer)")
    if raw_shape is None:
        raise _bad(path, f"{what}: dataset {name!r} is empty (a null dataspace)")
    shape = tuple(raw_shape)
    if shape != tuple(want_shape):
        return None, (f"{where_var} has shape {tuple(want_shape)}; the file's weight {name!r} has shape {shape}")
    filtered = _check_extent(ds, path, name, what, math.prod(shape) * dtype.itemsize)
    return _Pending(ds, shape, dtype, filtered, path, name, what), None


def _read_now(group, name, want_shape, what, where_var):
    """The array of a small dataset (optimizer state), read at once."""
    pending, problem = _dataset(group, name, want_shape, what, where_var)
    return None if pending is None else pending.read()


# ---------------------------------------------------------------------- weight order
def _ordered_weights(layer):
    """A layer's variables in Keras's creation order (a nested model: its layers')."""
    from ..models import Model
    if isinstance(layer, Model) and layer._is_graph():
        out, seen = [], set()
        for l in layer.layers:
            for w in _ordered_weights(l):
                if id(w) not in seen:
                    seen.add(id(w))
                    out.append(w)
        return out
    try:
        from .keras_config import keras_layer_weights
    except ImportError:
        return list(layer.weights)
    return list(keras_layer_weights(layer))


def _legacy_weights(layer):
    """The weights of ``layer`` in the legacy files' order: trainable, then
    non-trainable (``trainable_weights + non_trainable_weights``, as Keras)."""
    order = _ordered_weights(layer)
    tw = {id(w) for w in layer.trainable_weights}
    return [w for w in order if id(w) in tw] + [w for w in order if id(w) not in tw]


def _var_name(v):
    return getattr(v, "path", None) or v.name


# ---------------------------------------------------------------------- writing
def _save_names(group, name, data):
    """Keras's ``save_attributes_to_hdf5_group``: one attribute, or chunks of it."""
    data = [d.encode("utf8") if isinstance(d, str) else d for d in data]
    bad = [x for x in data if len(x) > HDF5_OBJECT_HEADER_LIMIT]
    if bad:
        raise RuntimeError(f"The following attributes cannot be saved to HDF5 file because they are larger than "
                           f"{HDF5_OBJECT_HEADER_LIMIT} bytes: {bad}")
    data_npy = np.asarray(data)
    num_chunks = 1
    chunked = np.array_split(data_npy, num_chunks)
    while any(x.nbytes > HDF5_OBJECT_HEADER_LIMIT for x in chunked):
        num_chunks += 1
        chunked = np.array_split(data_npy, num_chunks)
    if num_chunks > 1:
        for i, chunk in enumerate(chunked):
            group.attrs[f"{name}{i}"] = chunk
    else:
        group.attrs[name] = data


def _unique_names(variables):
    """Dataset names for ``variables`` (their paths), none equal to or a group prefix of another."""
    out, taken = [], set()
    for v in variables:
        base = _var_name(v)
        name, i = base, 1
        while name in taken or any(t.startswith(name + "/") or name.startswith(t + "/") for t in taken):
            name = f"{base}_{i}"
            i += 1
        taken.add(name)
        out.append(name)
    return out


def _write_subset(group, variables):
    names = _unique_names(variables)
    _save_names(group, "weight_names", names)
    for name, v in zip(names, variables):
        val = np.asarray(v.numpy())
        ds = group.create_dataset(name, val.shape, dtype=val.dtype)
        if val.shape:
            ds[:] = val
        else:
            ds[()] = val


def _write_weights_group(group, model):
    """Keras's ``save_weights_to_hdf5_group``."""
    layers = model.layers
    _save_names(group, "layer_names", [l.name for l in layers])
    group.attrs["backend"] = BACKEND.encode("utf8")
    group.attrs["keras_version"] = KERAS_VERSION.encode("utf8")
    for layer in sorted(layers, key=lambda l: l.name):
        _write_subset(group.create_group(layer.name), _legacy_weights(layer))
    _write_subset(group.create_group("top_level_model_weights"), list(getattr(model, "_variables", [])))


def _legacy_config(cfg):
    """Keras 3's serialized model as its legacy writer puts it in ``model_config``: the
    model and each of its layers without ``module``, ``registered_name`` and
    ``build_config`` (nested objects -- initializers, dtype policies -- keep theirs)."""
    if not isinstance(cfg, dict):
        return cfg
    out = {k: v for k, v in cfg.items() if k not in ("module", "registered_name", "build_config",
                                                      "compile_config")}
    c = out.get("config")
    if isinstance(c, dict) and isinstance(c.get("layers"), list):
        out["config"] = {**c, "layers": [_legacy_config(l) for l in c["layers"]]}
    return out


def _training_config(model):
    """The ``training_config`` attribute (Keras 3's legacy writer: the compile config
    without its optimizer, plus ``optimizer_config``)."""
    from .keras_config import keras_compile_config
    cc = keras_compile_config(model)
    if cc is None:
        return None
    cc = dict(cc)
    opt = cc.pop("optimizer", None)
    out = {"loss": cc.get("loss"), "loss_weights": cc.get("loss_weights"), "metrics": cc.get("metrics"),
           "weighted_metrics": cc.get("weighted_metrics"), "run_eagerly": cc.get("run_eagerly", False),
           "steps_per_execution": cc.get("steps_per_execution", 1), "jit_compile": cc.get("jit_compile", True)}
    if isinstance(opt, dict):
        out["optimizer_config"] = {"class_name": opt.get("registered_name") or opt.get("class_name"),
                                   "config": opt.get("config", {})}
    elif isinstance(opt, str):
        out["optimizer_config"] = {"class_name": opt, "config": {}}
    return out


# convcore's slot names -> Keras 3's variable names (names only; Keras reads them by order).
_KERAS3_SLOT_NAMES = {"Adam": {"m": "momentum", "v": "velocity", "v_hat": "velocity_hat"},
                      "AdamW": {"m": "momentum", "v": "velocity", "v_hat": "velocity_hat"},
                      "SGD": {"velocity": "momentum"}, "Adamax": {"m": "momentum", "u": "norm"},
                      "Nadam": {"m": "momentum", "v": "velocity"}, "Lion": {"m": "momentum"}}


def _optimizer_state(model):
    """(names, arrays) of the optimizer state in Keras 3's ``optimizer.variables`` order
    (iterations, learning rate, then the slots), or None when there is none to save (an
    optimizer class Keras does not have)."""
    opt = getattr(model, "optimizer", None)
    if opt is None or not getattr(model, "_compiled", False):
        return None
    from .keras_config import optimizer_values, optimizer_variables_keras_order
    entries = optimizer_variables_keras_order(model)
    if not entries:
        return None
    prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", type(opt).__name__).lower()
    spec = opt._slot_spec()
    keras_names = _KERAS3_SLOT_NAMES.get(type(opt).__name__, {})
    names = []
    for kind, target, shape, dtype in entries:
        if kind == "slot":
            v, i = target
            slot = keras_names.get(spec[i][0], spec[i][0])
            names.append(f"{prefix}/{_var_name(v).replace('/', '_')}_{slot}")
        elif kind == "accumulator":
            names.append(f"{prefix}/{_var_name(target).replace('/', '_')}_accumulator")
        else:
            names.append(f"{prefix}/{'iteration' if kind == 'iterations' else kind}")
    arrays = [np.asarray(a) for a in optimizer_values(opt, entries)]
    if len(set(names)) != len(names):
        names = [f"{n}_{i}" for i, n in enumerate(names)]
    return names, arrays


def save_model(model, path, include_optimizer=True):
    """Write ``model`` to ``path`` in the legacy HDF5 layout of Keras 3's
    ``legacy_h5_format.save_model_to_hdf5`` (readable by Keras 3's
    ``keras.saving.load_model`` and by tf.keras 2 for the layers they share),
    atomically: a failed save leaves any previous file as it was."""
    h5py = _h5py()
    from .keras_config import to_keras_config
    from .saving_lib import _atomic_write
    model_config = _legacy_config(to_keras_config(model))
    training_config = _training_config(model) if include_optimizer and getattr(model, "_compiled", False) else None
    opt_state = _optimizer_state(model) if training_config is not None else None

    def write(f):
        with h5py.File(f, "w") as h:
            h.attrs["keras_version"] = KERAS_VERSION
            h.attrs["backend"] = BACKEND
            h.attrs["model_config"] = json.dumps(model_config).encode("utf8")
            if training_config is not None:
                h.attrs["training_config"] = json.dumps(training_config).encode("utf8")
            _write_weights_group(h.create_group("model_weights"), model)
            if opt_state is not None:
                names, arrays = opt_state
                g = h.create_group("optimizer_weights")
                _save_names(g, "weight_names", names)
                for n, a in zip(names, arrays):
                    ds = g.create_dataset(n, a.shape, dtype=a.dtype)
                    if a.shape:
                        ds[:] = a
                    else:
                        ds[()] = a

    _atomic_write(path, write)


def save_weights(model, path):
    """Write the weights of ``model`` to ``path`` in the legacy layout of Keras's
    ``save_weights('w.h5')`` (``layer_names`` at the root), atomically."""
    h5py = _h5py()
    from .saving_lib import _atomic_write

    def write(f):
        with h5py.File(f, "w") as h:
            _write_weights_group(h, model)

    _atomic_write(path, write)


# ---------------------------------------------------------------------- reading weights
def _weights_root(f):
    """The group holding ``layer_names``: the root of a weights file, or ``model_weights``
    of a model file."""
    where = _file_name(f)
    try:
        if "layer_names" in f.attrs or "layer_names0" in f.attrs:
            return f
        if "model_weights" in f:
            return _group(f, "model_weights", "model_weights")
    except _Refused:
        raise
    except (OSError, RuntimeError) as e:
        raise _bad(where, f"damaged file: {e}") from None
    raise _bad(where, "not a legacy Keras weights file (no 'layer_names' attribute at its root or in "
                      "'model_weights'); a Keras 3 weights file is named '*.weights.h5' and a Keras 3 model "
                      "'*.keras'")


def _read_layer(group, name, variables, layer_desc, skip_mismatch, mismatches, file_names=None):
    """The arrays of layer group ``name`` for ``variables`` (None where skipped);
    ``file_names`` (a dict) collects the file's weight name of each variable."""
    g = _group(group, name, f"layer {name!r}")
    wnames = _names(g, "weight_names", f"layer {name!r}")
    out = []
    for wn, v in zip(wnames, variables):
        if file_names is not None:
            file_names[wn.rsplit(":", 1)[0]] = v
        arr, problem = _dataset(g, wn, v.shape, f"layer {name!r}", f"{layer_desc}: weight {_var_name(v)!r}")
        if problem is not None:
            if not skip_mismatch:
                raise _bad(_file_name(group), f"shape mismatch: {problem}")
            mismatches.append(problem)
        out.append(arr)
    return out


def _top_level(group, model, skip_mismatch, mismatches):
    """The ``top_level_model_weights`` of a Keras 3 file: none, as convcore models have."""
    try:
        present = "top_level_model_weights" in group
    except (OSError, RuntimeError):
        present = False
    if not present:
        return []
    g = _group(group, "top_level_model_weights", "top_level_model_weights")
    names = _names(g, "weight_names", "top_level_model_weights")
    own = list(getattr(model, "_variables", []))
    if len(names) != len(own):
        msg = (f"Weight count mismatch for top-level weights of model {model.name!r}: the model has {len(own)}, "
               f"the file {len(names)}")
        if skip_mismatch:
            mismatches.append(msg)
            return []
        raise _bad(_file_name(group), msg)
    return list(zip(own, _read_layer(group, "top_level_model_weights", own, f"model {model.name!r}",
                                     skip_mismatch, mismatches)))


def _topological(group, model, skip_mismatch, file_names=None):
    """(variable, array) pairs of Keras's ``load_weights_from_hdf5_group``."""
    where = _file_name(group)
    layers = [l for l in model.layers if _legacy_weights(l)]
    names = _names(group, "layer_names", "the weights")
    with_weights = []
    for n in names:
        g = _group(group, n, f"layer {n!r}")
        if _names(g, "weight_names", f"layer {n!r}"):
            with_weights.append(n)
    if len(with_weights) != len(layers):
        raise _bad(where, f"Layer count mismatch when loading weights from file. Model {model.name!r} expected "
                          f"{len(layers)} layers with weights, found {len(with_weights)} saved layers "
                          f"({', '.join(with_weights[:8])}{'...' if len(with_weights) > 8 else ''})")
    pairs, mismatches = [], []
    for k, (name, layer) in enumerate(zip(with_weights, layers)):
        variables = _legacy_weights(layer)
        g = _group(group, name, f"layer {name!r}")
        count = len(_names(g, "weight_names", f"layer {name!r}"))
        if count != len(variables):
            raise _bad(where, f"Weight count mismatch for layer #{k} (named {layer.name!r} in the current model, "
                              f"{name!r} in the save file). Layer expects {len(variables)} weight(s). Received "
                              f"{count} saved weight(s)")
        desc = f"layer #{k} (named {layer.name!r}; {name!r} in the file)"
        arrays = _read_layer(group, name, variables, desc, skip_mismatch, mismatches, file_names)
        pairs += [(v, a) for v, a in zip(variables, arrays) if a is not None]
    pairs += _top_level(group, model, skip_mismatch, mismatches)
    return pairs, mismatches


def _by_name(group, model, skip_mismatch):
    """(variable, array) pairs of Keras's ``load_weights_from_hdf5_group_by_name``:
    layers of the file without a namesake in the model are ignored."""
    where = _file_name(group)
    index = {}
    for layer in model.layers:
        index.setdefault(layer.name, []).append(layer)
    pairs, mismatches = [], []
    for k, name in enumerate(_names(group, "layer_names", "the weights")):
        if name not in index:
            continue
        g = _group(group, name, f"layer {name!r}")
        count = len(_names(g, "weight_names", f"layer {name!r}"))
        for layer in index[name]:
            variables = _legacy_weights(layer)
            if count != len(variables):
                msg = (f"Weight count mismatch for layer #{k} (named {layer.name!r}). Layer expects "
                       f"{len(variables)} weight(s). Received {count} saved weight(s)")
                if skip_mismatch:
                    mismatches.append(msg)
                    continue
                raise _bad(where, msg)
            arrays = _read_layer(group, name, variables, f"layer #{k} (named {layer.name!r})", skip_mismatch,
                                 mismatches)
            pairs += [(v, a) for v, a in zip(variables, arrays) if a is not None]
    pairs += _top_level(group, model, skip_mismatch, mismatches)
    return pairs, mismatches


def _assign(pairs):
    """Assign ``(variable, _Pending)`` pairs, every dataset already checked. Plain
    (uncompressed, in-bounds) datasets are read and assigned one at a time, so the
    weights are never held twice; if any dataset is compressed -- its data may still be
    corrupt -- all are read first, so a live model is never left half loaded."""
    def put(v, a):
        v.assign(a.astype(v.dtype, copy=False) if a.dtype != np.dtype(v.dtype) else a)

    if any(p.filtered for _, p in pairs):
        arrays = [p.read() for _, p in pairs]
        for (v, _), a in zip(pairs, arrays):
            put(v, a)
        return
    for v, p in pairs:
        put(v, p.read())


def _warn_skipped(path, mismatches):
    for m in mismatches:
        warnings.warn(f"{path!s}: skipping loading weights: {m}", stacklevel=3)


def load_weights(model, path, by_name=False, skip_mismatch=False):
    """Load a legacy Keras ``.h5`` weights file (``save_weights('w.h5')``, or the
    ``model_weights`` of a model file) into ``model``: layers with weights in order, or
    ``by_name=True`` by layer name (layers the file lacks keep their weights).
    ``skip_mismatch=True`` skips, with a warning, weights whose shape differs (and, by
    name, layers whose weight count differs), as Keras. ``path`` may be an open
    ``h5py.File`` or group. The model is fully loaded or left unchanged."""
    with _Open(path) as f:
        name = _file_name(f)
        root = _weights_root(f)
        pairs, mismatches = (_by_name if by_name else _topological)(root, model, skip_mismatch)
        _warn_skipped(name, mismatches)
        _assign(pairs)


# ---------------------------------------------------------------------- reading models
def _json_attr(f, key, required):
    where = _file_name(f)
    v = _attr(f, key, key)
    if v is None:
        if required:
            raise _bad(where, f"No model config found in the file (no {key!r} attribute): not a Keras model file; "
                              "a weights file loads with model.load_weights")
        return None
    from .saving_lib import parse_config_json
    try:
        return parse_config_json(_text(v, where, key), f"{where} ({key})")
    except _Refused:
        raise
    except ValueError as e:
        raise _bad(where, str(e).split(": ", 1)[-1]) from None


def _keras_version(f):
    v = _attr(f, "keras_version", "keras_version", 1024)
    try:
        return _text(v, _file_name(f), "keras_version") if v is not None else "1"
    except _Refused:
        return "1"


def _compile(model, training_config, custom_objects, where):
    from .keras_config import compile_from_keras
    try:
        compile_cfg = keras2_compat.keras2_training_config(training_config)
        kwargs = compile_from_keras(compile_cfg, custom_objects)
    except ConfigError as e:
        raise ConfigError(("training_config",) + e.key, e.reason, where) from None
    except (ValueError, TypeError) as e:
        raise _bad(where, f"training_config: {e}") from None
    try:
        model.compile(**kwargs)
    except (ValueError, TypeError) as e:
        raise _bad(where, f"training_config: the model cannot be compiled with the file's settings: {e}") from None


# Slot names of tf.keras 2's optimizers (``Adam/dense/kernel/m:0``) -> convcore's slot index.
_KERAS2_SLOTS = {"SGD": {"momentum": 0}, "Adam": {"m": 0, "v": 1, "vhat": 2}, "AdamW": {"m": 0, "v": 1, "vhat": 2},
                 "RMSprop": {"rms": 0, "mg": 1, "momentum": 2}, "Adagrad": {"accumulator": 0},
                 "Adadelta": {"accum_grad": 0, "accum_var": 1}, "Adamax": {"m": 0, "v": 1},
                 "Nadam": {"m": 0, "v": 1}}


def _read_optimizer(f, model, file_names):
    """The optimizer state of the file, read and checked against the compiled model:
    ``(apply, None)`` with ``apply()`` assigning it, or ``(None, reason)`` when it does
    not fit (it is then skipped). Keras 3's files are matched by order (iterations,
    learning rate, slots), tf.keras 2's by name (``Adam/dense/kernel/m:0``)."""
    h5py = _h5py()
    from .keras_config import assign_optimizer_values, optimizer_variables_keras_order
    g = _group(f, "optimizer_weights", "optimizer_weights")
    names = _names(g, "weight_names", "optimizer_weights")
    opt = model.optimizer
    shapes = []
    for n in names:
        ds = _child(g, n, h5py.Dataset, "optimizer_weights")
        shapes.append(tuple(ds.shape or ()))
    for built in (True, False):
        entries = optimizer_variables_keras_order(model, built=built)
        if entries is None:
            return None, f"{type(opt).__name__} is not one of Keras's optimizers"
        if len(entries) == len(names) and all(tuple(e[2]) == s for e, s in zip(entries, shapes)):
            arrays = [_read_now(g, n, e[2], "optimizer_weights", f"optimizer state {n!r}")
                      for n, e in zip(names, entries)]
            return (lambda: assign_optimizer_values(model, opt, entries, arrays)), None
    return _read_keras2_optimizer(g, names, shapes, model, file_names)


def _read_keras2_optimizer(g, names, shapes, model, file_names):
    """tf.keras 2's OptimizerV2 state, by name: ``<optimizer>/<weight name>/<slot>:0``,
    the weight name as the file's ``model_weights`` has it (``conv2d/kernel``)."""
    opt = model.optimizer
    variables = list(model.trainable_weights)
    trainable = {id(v) for v in variables}
    by_path = {n: v for n, v in file_names.items() if id(v) in trainable}
    spec = opt._slot_spec()
    plan, iterations = [], None
    for n, shape in zip(names, shapes):
        base = n.rsplit(":", 1)[0]  # tf.keras 2 appends ':0'
        parts = base.split("/")
        if parts[-1] in ("iter", "iteration", "iterations") and shape == ():
            iterations = n
            continue
        if len(parts) <= 2 and shape == ():
            continue  # hyperparameters: the config holds them
        var = by_path.get("/".join(parts[1:-1])) if len(parts) >= 3 else None
        idx = _KERAS2_SLOTS.get(type(opt).__name__, {}).get(parts[-1])
        if var is None or idx is None:
            return None, f"the file's optimizer weight {n!r} matches no state of the model's {type(opt).__name__}"
        if idx >= len(spec) or spec[idx] is None:
            return None, f"the file's optimizer weight {n!r} is a state {type(opt).__name__} does not keep"
        if shape != tuple(var.shape):
            return None, f"the file's optimizer weight {n!r} has shape {shape}, the variable {tuple(var.shape)}"
        plan.append((var, idx, n))
    wanted = sum(1 for s in spec if s is not None) * len(variables)
    if len(plan) != wanted or len({(id(v), i) for v, i, _ in plan}) != len(plan):
        return None, f"the file has {len(plan)} optimizer state arrays, {type(opt).__name__} keeps {wanted}"
    arrays = [_read_now(g, n, v.shape, "optimizer_weights", f"optimizer state {n!r}") for v, i, n in plan]
    step = None
    if iterations is not None:
        a = _read_now(g, iterations, (), "optimizer_weights", "iterations")
        if a is not None and a.dtype.kind in "iu" and a >= 0:
            step = int(a)

    def apply():
        opt.build(variables)
        for (v, i, _), a in zip(plan, arrays):
            opt._slots_of(v)[i].assign(np.asarray(a, dtype=v.dtype))
        if step is not None:
            opt.iterations = step

    return apply, None


def load_model(path, custom_objects=None, compile=True, safe_mode=True):
    """The model of a legacy Keras ``.h5`` file, written by Keras 3's legacy writer, by
    tf.keras 2 (or 1; their configs go through :func:`keras2_compat.keras2_to_keras3`)
    or by :func:`save_model`. ``compile=True`` compiles it with the file's training
    config (when it has one) and restores the optimizer state when it fits; otherwise
    the state is skipped with a warning. ``safe_mode=True`` refuses a Lambda holding
    bytecode. Nothing in the file is executed."""
    from .keras_config import from_keras_config
    with _Open(path) as f:
        where = _file_name(f)
        cfg = _json_attr(f, "model_config", True)
        if not isinstance(cfg, dict):
            raise _bad(where, f"model_config must be a JSON object, got {type(cfg).__name__}")
        try:
            cfg = keras2_compat.keras2_to_keras3(cfg)
        except ValueError as e:
            raise _bad(where, str(e)) from None
        try:
            model = from_keras_config(cfg, custom_objects=custom_objects, safe_mode=safe_mode)
        except ConfigError as e:
            raise ConfigError(("model_config",) + e.key, e.reason, where) from None
        except (ValueError, TypeError) as e:
            if str(e).startswith(str(where)):
                raise
            raise _bad(where, f"model_config: {e}") from None
        file_names = {}
        pairs, mismatches = _topological(_group(f, "model_weights", "model_weights"), model, False, file_names)
        training_config = _json_attr(f, "training_config", False) if compile else None
        opt_state, opt_problem = None, None
        if training_config is not None:
            if not isinstance(training_config, dict):
                raise _bad(where, "training_config must be a JSON object")
            _compile(model, training_config, custom_objects, where)
            try:
                has_opt = "optimizer_weights" in f
            except (OSError, RuntimeError):
                has_opt = False
            if has_opt:
                opt_state, opt_problem = _read_optimizer(f, model, file_names)
        _assign(pairs)  # a new model: read and assigned one dataset at a time
    if opt_problem is not None:
        warnings.warn(f"{where}: the saved optimizer state was not loaded ({opt_problem}); the model starts with "
                      "a freshly initialized optimizer", stacklevel=2)
    elif opt_state is not None:
        opt_state()
    return model
