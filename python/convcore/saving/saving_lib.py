"""Saving and loading models without pickle, and the dispatch between formats.

``save_model`` / ``save_weights`` pick the format by the file's name, as Keras:
``.keras`` is Keras 3's zip (:mod:`.keras_zip`; ``zipped=False`` its folder form),
``.weights.h5`` Keras 3's weights file, ``.h5`` / ``.hdf5`` the legacy HDF5 format
(:mod:`.legacy_h5`), any other name convcore's own zip (a model) or an ``.npz``
(weights). ``load_model`` / ``load_weights`` recognise a file by its content (a Keras
zip, an HDF5 signature, convcore's zip), whatever its name; ``load_weights`` also reads
PyTorch state dicts (``.pth`` / ``.pt`` / ``.bin`` / ``.safetensors``, by name:
:mod:`.torch_format`). ``overwrite=False`` on an existing file raises FileExistsError
(Keras asks on the terminal; convcore never prompts).

convcore's own model file is one zip holding ``config.json`` (architecture, compile
settings) and one ``.npy`` file per weight array, read back with ``allow_pickle=False``:
loading never executes code from the file. Files of every format are written to a
temporary file in the same folder and renamed over the target, so an interrupted save
leaves the previous file intact; the next save to that path removes the temporary
files of saves that were killed.

Loading treats the file as hostile: nothing is decompressed without a limit. The zip
directory may list at most ``MAX_ENTRIES`` entries; ``config.json`` is refused above
``MAX_CONFIG_BYTES`` before it is read; each weight entry must be a plain real array of
exactly the shape the model built from the config (or passed to ``load_weights``) has,
and is read with a limit of that many bytes. Every problem is a ValueError naming the
file (a config problem: a :class:`ConfigError` naming the key too).
"""
from __future__ import annotations

import io
import json
import os
import re
import secrets
import stat
import struct
import time
import zipfile
import zlib

import numpy as np

from .config_errors import ConfigError, check_dict
from .object_registration import custom_object_scope, get_registered_object, is_private, registered_name

try:
    import fcntl
except ImportError:  # Windows: stale temp files are recognised by age alone
    fcntl = None

FORMAT = "convcore-model"
VERSION = 1

MAX_CONFIG_BYTES = 16 << 20  # a config of thousands of layers is well under 1 MiB
MAX_ENTRIES = 1 << 16  # zip entries of a model or weights file (one per weight array)
_MAX_DIRECTORY_BYTES = MAX_ENTRIES * 96  # the zip's central directory, read whole by zipfile
_MAX_CONFIG_DEPTH = 100  # nesting of config.json (a model in a model adds 3 levels)
_NPY_HEADER_BYTES = 16 << 10  # magic, version, length and header of one .npy (numpy: 10,000 characters)
_CHUNK = 1 << 20
_STALE_AFTER_S = 600.0  # without fcntl, a temp file this old is taken to be an orphan


# ---------------------------------------------------------------------- writing
def _temp_prefix(path):
    return ".tmp-" + os.path.basename(path) + "-"


def _remove_stale_temps(folder, prefix):
    """Remove the temp files a killed save to the same path left behind. A writer
    holds an exclusive ``flock`` on its temp file from just after creating it until it
    has renamed it, so a temp file that can be locked has no writer any more (the lock
    went with the process) -- unless it is still empty: its writer may be between
    creating and locking it, so an empty one is only removed once it is old."""
    pattern = re.compile(re.escape(prefix) + r"[a-z0-9_]{8}")  # ours, and tempfile.mkstemp's of older versions
    try:
        names = [n for n in os.listdir(folder) if pattern.fullmatch(n)]
    except OSError:
        return
    for n in names:
        full = os.path.join(folder, n)
        try:
            # Non-blocking: a FIFO under a temp name must not hang the save.
            fd = os.open(full, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue  # not a file a save of ours wrote
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live writer holds it (or the file system has no locks: keep it)
                st = os.fstat(fd)
                stale = st.st_size > 0 or time.time() - st.st_mtime > _STALE_AFTER_S
            else:
                st = os.fstat(fd)
                stale = time.time() - st.st_mtime > _STALE_AFTER_S
            if stale and os.path.samestat(st, os.stat(full, follow_symlinks=False)):
                os.unlink(full)
        except OSError:
            pass
        finally:
            os.close(fd)


def _new_temp(folder, prefix):
    """A new temp file, created with mode 0o666 so the umask applies as for any
    ``open()`` (``mkstemp`` would make it 0o600), and locked while it is written."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        name = os.path.join(folder, prefix + secrets.token_hex(4))
        try:
            fd = os.open(name, flags, 0o666)
        except FileExistsError:
            continue
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:  # a file system without locks: the file is then never taken for stale
                pass
        return fd, name
    raise FileExistsError(f"could not create a temporary file next to {prefix!r} in {folder}")


def _atomic_write(path, write):
    """Write the file through ``write(f)`` into a temp file in the same folder, then
    rename it over ``path``: a save that fails or is killed never leaves a partial
    file under ``path``. The new file keeps the mode of the one it replaces (a shared
    0644 model stays 0644); a new one gets the mode ``open()`` would give."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    prefix = _temp_prefix(path)
    _remove_stale_temps(folder, prefix)
    fd, tmp = _new_temp(folder, prefix)
    try:
        try:
            mode = os.stat(path).st_mode & 0o777
        except OSError:
            mode = None
        with os.fdopen(fd, "wb") as f:
            if mode is not None and hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
            if fcntl is not None:
                os.replace(tmp, path)  # before the close releases the lock
        if fcntl is None:
            os.replace(tmp, path)  # Windows cannot rename an open file
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---------------------------------------------------------------------- (de)serialization
def serialize_keras_object(obj):
    """``{"class_name": registered name, "config": obj.get_config()}``."""
    return {"class_name": registered_name(type(obj)), "config": obj.get_config()}


_is_private = is_private


def _class(name, custom_objects, what="class", base=object):
    """The registered class ``name`` (a subclass of ``base``), or a ConfigError at
    ``class_name`` listing the known ones."""
    if not isinstance(name, str):
        raise ConfigError("class_name", f"must be the name of a registered class, got {name!r}")
    cls = None if _is_private(name) else get_registered_object(name, custom_objects)
    if cls is None or not isinstance(cls, type) or not issubclass(cls, base):
        known = ", ".join(sorted(n for n, o in _registered().items()
                                 if isinstance(o, type) and issubclass(o, base) and ">" not in n and not _is_private(n)))
        raise ConfigError("class_name", f"Unknown {what} {name!r}; known: {known} (a user class loads when it is "
                                        "registered with register_keras_serializable or passed in custom_objects)")
    return cls


def _registered():
    from .object_registration import _GLOBAL
    return _GLOBAL


def deserialize_keras_object(d, custom_objects=None):
    """The object ``serialize_keras_object`` described, built by its class's
    ``from_config`` (inside a custom-object scope, so nested names resolve too). A
    config the class refuses (its constructor's TypeError or ValueError) is a
    ConfigError at ``config`` naming the class and the object."""
    check_dict(d, (), "a serialized object (a dict with 'class_name' and 'config')")
    cls = _class(d.get("class_name"), custom_objects)
    config = check_dict(d.get("config", {}), "config", "the object's config (a dict)")
    with custom_object_scope(custom_objects):
        try:
            return cls.from_config(dict(config))
        except ConfigError as e:  # a nested model: its keys are inside this config
            raise e.within("config") from None
        except (TypeError, ValueError, OverflowError) as e:
            name = config.get("name")
            raise ConfigError("config", f"{cls.__name__}{'' if name is None else f' {name!r}'}: {e}") from None


def model_config(model):
    """A model's config as it is saved: its class name and its ``get_config()`` (no
    special case for any model class)."""
    return {"class_name": registered_name(type(model)), **model.get_config()}


def model_from_config(cfg, custom_objects=None):
    """The model of ``model_config``: the registered class's ``from_config``."""
    from ..models import Model
    check_dict(cfg, (), "a model config (a dict)")
    cls = _class(cfg.get("class_name"), custom_objects, "model class", Model)
    with custom_object_scope(custom_objects):
        try:
            return cls.from_config({k: v for k, v in cfg.items() if k != "class_name"})
        except ConfigError:
            raise
        except (TypeError, ValueError, OverflowError) as e:  # a user model's own from_config
            raise ConfigError((), f"{cls.__name__}: {e}") from None


def parse_config_json(text, source):
    """The JSON ``text`` of a config, or a ValueError naming ``source``: invalid
    JSON, and JSON nested so deeply that parsing or using it would exhaust the stack."""
    try:
        cfg = json.loads(text)
    except RecursionError:
        raise ValueError(f"{source}: the config is nested too deeply to be a model config") from None
    except ValueError as e:  # JSONDecodeError, an integer of 10^5 digits
        raise ValueError(f"{source}: the config is not valid JSON: {e}") from None
    stack = [(cfg, 1)]
    while stack:  # iterative: the check must not itself recurse
        v, d = stack.pop()
        if d > _MAX_CONFIG_DEPTH:
            raise ValueError(f"{source}: the config is nested more than {_MAX_CONFIG_DEPTH} levels deep")
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return cfg


# ---------------------------------------------------------------------- reading zips
class _FileError(ValueError):
    """A file refused by the loader itself (its message names the file already)."""


def _bad(path, message):
    return _FileError(f"{path!s}: {message}")


def _check_directory(f, path):
    """Refuse a zip whose end record declares more entries, or a bigger central
    directory, than a model file has, before ``zipfile`` reads the directory into
    memory (a ZipInfo per entry). Anything unreadable is left to ``zipfile`` to refuse."""
    f.seek(0, os.SEEK_END)
    size = f.tell()
    n = min(size, 22 + 0xFFFF + 20 + 56)  # end record, its comment, zip64 locator and record
    f.seek(size - n)
    tail = f.read(n)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return
    entries, directory = struct.unpack("<HI", tail[at + 10:at + 16])
    loc = at - 20
    if loc >= 56 and tail[loc:loc + 4] == b"PK\x06\x07" and tail[loc - 56:loc - 52] == b"PK\x06\x06":
        entries, directory = struct.unpack("<QQ", tail[loc - 24:loc - 8])
    if entries > MAX_ENTRIES or directory > _MAX_DIRECTORY_BYTES:
        raise _bad(path, f"the zip directory lists {entries} entries in {directory} bytes; a model or weights "
                         f"file has at most {MAX_ENTRIES} (refused before reading it)")


def _open_regular(path):
    """``path`` opened for reading if it is a regular file. Opened non-blocking first,
    so that a FIFO put where a model is expected is refused instead of waiting
    forever for a writer (and a device such as /dev/zero is refused too)."""
    nonblock = getattr(os, "O_NONBLOCK", 0)
    fd = os.open(os.fspath(path), os.O_RDONLY | nonblock | getattr(os, "O_BINARY", 0))  # FileNotFoundError passes
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _bad(path, "not a regular file")
        if nonblock:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class _ZipReader:
    """An open zip with bounded member reads (``with _ZipReader(path) as z``)."""

    def __init__(self, path, what):
        self.path, self.what = path, what
        self.file = _open_regular(path)
        try:
            _check_directory(self.file, path)
            self.file.seek(0)
            self.zip = zipfile.ZipFile(self.file)
        except _FileError:
            self.file.close()
            raise
        except (zipfile.BadZipFile, OSError, EOFError, struct.error, OverflowError, ValueError,
                NotImplementedError) as e:  # zipfile: "zip file version 19.2"
            self.file.close()
            raise _bad(path, f"not a convcore {what} file (or it is truncated): {e}") from None
        except BaseException:
            self.file.close()
            raise
        self.infos = self.zip.infolist()
        names = [i.filename for i in self.infos]
        if len(names) > MAX_ENTRIES:
            self.close()
            raise _bad(path, f"the zip has {len(names)} entries; a {what} file has at most {MAX_ENTRIES}")
        if len(set(names)) != len(names):
            self.close()
            raise _bad(path, "the zip holds two entries of the same name")
        self.by_name = {i.filename: i for i in self.infos}

    def close(self):
        self.zip.close()
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def open(self, name, limit):
        """A bounded reader of entry ``name``: its declared size is checked against
        ``limit`` before it is opened, and reading stops past ``limit`` bytes."""
        info = self.by_name[name]
        if info.flag_bits & 0x1:
            raise _bad(self.path, f"entry {name!r} is encrypted (convcore never writes encrypted entries)")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _bad(self.path, f"entry {name!r} uses compression method {info.compress_type}; convcore files "
                                  "are stored or deflated")
        if info.file_size > limit:
            raise _bad(self.path, f"entry {name!r} declares {info.file_size} bytes, more than the {limit} it may "
                                  "have (refused before reading it)")
        try:
            f = self.zip.open(info)
        except _READ_ERRORS + (ValueError, NotImplementedError) as e:  # a bad local header, flag bits 5 and 6
            raise _damaged(self.path, name, e) from None
        return _Bounded(f, min(limit, info.file_size), self.path, name)


def _damaged(path, name, e):
    return _bad(path, f"damaged entry {name!r}: {e}")


# The errors reading a damaged zip entry can raise: a bad header or CRC, a corrupt
# deflate stream, a truncated file.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, EOFError, struct.error, OverflowError)


class _Bounded:
    """A file-like view of one zip entry that refuses to return more than ``limit``
    bytes in all (at most its declared size: zipfile already stops there, this also
    holds if that ever changes), asks zipfile for no more than that (it decompresses as
    much as it is asked for before cutting at the declared size), and reports read
    errors as a damaged entry."""

    def __init__(self, f, limit, path, name):
        self.f, self.limit, self.count, self.path, self.name = f, limit, 0, path, name

    def read(self, n=-1):
        room = self.limit - self.count
        if n is None or n < 0 or n > room:
            n = room + 1
        try:
            data = self.f.read(n)
        except _READ_ERRORS as e:
            raise _damaged(self.path, self.name, e) from None
        self.count += len(data)
        if self.count > self.limit:
            raise _bad(self.path, f"entry {self.name!r} is larger than the {self.limit} bytes it may have")
        return data

    def read_exactly(self, n, what):
        data = self.read(n)
        if len(data) != n:
            raise _damaged(self.path, self.name, f"it ends inside the {what}")
        return data

    def close(self):
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _read_config(z):
    """``config.json`` of an open model zip, parsed, its size bounded."""
    if "config.json" not in z.by_name:
        raise _bad(z.path, "not a convcore model file (it has no config.json)")
    with z.open("config.json", MAX_CONFIG_BYTES) as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _bad(z.path, f"config.json is not UTF-8 text: {e}") from None
    return parse_config_json(text, f"{z.path!s}: config.json")


def _weight_dtype_ok(dtype):
    """Weights are real numbers: no object (pickle), complex (the imaginary part would
    be dropped), datetime, string or structured arrays."""
    return dtype.kind in "fiu" and dtype.fields is None and dtype.subdtype is None and dtype.itemsize <= 8


def _read_npy(z, name, var):
    """Entry ``name`` as an array of ``var``'s shape. The header is read with its own
    small limit; a header declaring another shape, or a dtype that is not a plain real
    number, is refused before any data is read; the data is read in chunks into an
    array of exactly the declared size."""
    shape = tuple(var.shape)
    n_items = int(np.prod(shape, dtype=np.int64)) if shape else 1
    info = z.by_name[name]
    with z.open(name, _NPY_HEADER_BYTES + n_items * 8) as f:
        f.limit = min(f.limit, _NPY_HEADER_BYTES)  # first the header alone
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                h_shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=_NPY_HEADER_BYTES)
            elif version == (2, 0):
                h_shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=_NPY_HEADER_BYTES)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except _FileError:
            raise
        except ValueError as e:
            raise _damaged(z.path, name, f"not a .npy array: {e}") from None
        except (RecursionError, MemoryError, SyntaxError, TypeError, KeyError) as e:  # literal_eval of a hostile header
            raise _damaged(z.path, name, f"not a .npy array: {type(e).__name__}") from None
        if not _weight_dtype_ok(dtype):
            raise _bad(z.path, f"weight entry {name!r} has dtype {dtype}; weights are real numbers (float or "
                               "integer) and an object array would need pickle, which is never loaded")
        if tuple(h_shape) != shape:
            raise _bad(z.path, f"weight entry {name!r} has shape {tuple(h_shape)}; the model's weight "
                               f"{getattr(var, 'path', var.name)!r} has shape {shape}")
        nbytes = n_items * dtype.itemsize
        if info.file_size != f.count + nbytes:
            raise _damaged(z.path, name, f"its size ({info.file_size} bytes) is not its header's {f.count} plus the "
                                         f"{nbytes} bytes of a {shape} {dtype} array")
        f.limit = f.count + nbytes
        out = np.empty(shape[::-1] if fortran else shape, dtype=dtype)
        flat = out.reshape(-1).view(np.uint8)
        pos = 0
        while pos < nbytes:
            chunk = f.read_exactly(min(_CHUNK, nbytes - pos), "array data")
            flat[pos:pos + len(chunk)] = np.frombuffer(chunk, np.uint8)
            pos += len(chunk)
        if f.read(1):  # also completes zipfile's CRC check
            raise _damaged(z.path, name, "it has data after the array")
    return out.T if fortran else out


def _read_weights(z, names, variables):
    """The arrays of entries ``names`` for ``variables``; the entries of the zip must
    be exactly these names (plus ``config.json`` in a model file)."""
    return [_read_npy(z, n, v) for n, v in zip(names, variables)]


def _check_entries(z, expected, extra_ok, n_model, model_name):
    """Refuse entries no convcore file has (a traversal name, a stray member), then a
    set of weight entries other than the model's weights ``expected``."""
    in_file = [n for n in z.by_name if n not in extra_ok]
    expected_set = set(expected)
    for name in in_file:
        if name not in expected_set and not re.fullmatch(r"(weights/|w)\d{5,}\.npy", name):
            raise _bad(z.path, f"unexpected entry {name!r} (a convcore file holds only "
                               f"{'config.json and ' if extra_ok else ''}its weight arrays)")
    missing = [n for n in expected if n not in z.by_name]
    if missing or len(in_file) != len(expected):
        raise _bad(z.path, f"the file has {len(in_file)} weight arrays; model {model_name!r} has {n_model}"
                           + (f" (no entry {missing[0]!r})" if missing else ""))


def _model_file_names(n):
    return [f"weights/{i:05d}.npy" for i in range(n)]


def _weights_file_names(n):
    return [f"w{i:05d}.npy" for i in range(n)]  # the keys np.savez writes, w00000.npy ...


# ---------------------------------------------------------------------- public API
def _npy_bytes(a):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def _save_convcore_model(model, path):
    """convcore's own zip: config.json and one .npy per weight."""
    cfg = {"format": FORMAT, "version": VERSION, "model": model_config(model)}
    if model._compiled:
        cfg["compile"] = _compile_config(model)
    weights = model.get_weights()

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("config.json", json.dumps(cfg, indent=1))
            for i, w in enumerate(weights):
                z.writestr(f"weights/{i:05d}.npy", _npy_bytes(w))

    _atomic_write(path, write)


def _check_header(cfg, path):
    """The format and version of a parsed config.json."""
    if not isinstance(cfg, dict):
        raise _bad(path, f"not a convcore model file (its config.json holds a {type(cfg).__name__}, not a dict)")
    if cfg.get("format") != FORMAT:
        raise _bad(path, f"not a convcore model file (format {cfg.get('format')!r})")
    version = cfg.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError("version", f"must be a format version (1 to {VERSION}), got {version!r}", path)
    if version > VERSION:
        raise ConfigError("version", f"the file has format version {version}, written by a newer convcore; this "
                                     f"one reads versions up to {VERSION}", path)


def _compile_config(model):
    """The ``compile`` section: the optimizer's config, and the loss, loss weights and
    metrics as the user gave them to ``compile`` (several outputs: lists or dicts keyed
    by output name), each loss and metric serialized (a function by its registered
    name)."""
    from .. import losses, metrics as metrics_mod
    args = getattr(model, "_compile_args", None) or {"loss": model.loss, "loss_weights": None, "metrics": None,
                                                     "weighted_metrics": None}

    def loss_entry(x):
        return None if x is None else losses.serialize(losses.get(x))

    def metric_entry(m):
        if isinstance(m, str):
            return m
        if isinstance(m, (list, tuple)):
            return [metric_entry(v) for v in m]
        return metrics_mod.serialize(m)

    def structure(v, entry):
        if v is None:
            return None
        if isinstance(v, dict):
            return {str(k): entry(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [entry(x) for x in v]
        return entry(v)

    out = {"optimizer": model.optimizer.get_config(), "loss": structure(args["loss"], loss_entry)}
    lw = args.get("loss_weights")
    if lw is not None:
        out["loss_weights"] = dict(lw) if isinstance(lw, dict) else list(lw) if isinstance(lw, (list, tuple)) \
            else float(lw)
    for key in ("metrics", "weighted_metrics"):
        if args.get(key) is not None:
            out[key] = structure(args[key], metric_entry)
    return out


def _compile_args(c, custom_objects):
    """The ``compile`` arguments of the ``compile`` section (ConfigErrors keyed inside
    it): optimizer, loss, loss_weights, metrics, weighted_metrics."""
    from .. import losses, optimizers
    check_dict(c, (), "the compile settings (a dict with 'optimizer', 'loss' and 'metrics')")
    for key in c:
        if key not in ("optimizer", "loss", "loss_weights", "metrics", "weighted_metrics"):
            raise ConfigError(key, "is not a compile setting (optimizer, loss, loss_weights, metrics, "
                                   "weighted_metrics)")
    for key in ("optimizer", "loss"):  # a file always holds both (the loss may be null)
        if key not in c:
            raise ConfigError(key, "is missing")
    try:
        opt = optimizers.deserialize(c["optimizer"])
    except ConfigError as e:
        raise e.within("optimizer") from None

    def loss_entry(x, where):
        if x is None:
            return None
        try:
            return losses.deserialize(x, custom_objects)
        except ConfigError as e:
            raise e.within(*where) from None

    loss = c.get("loss")
    if isinstance(loss, list):
        loss = [loss_entry(x, ("loss", i)) for i, x in enumerate(loss)]
    elif isinstance(loss, dict) and "name" not in loss and "class_name" not in loss:
        loss = {k: loss_entry(x, ("loss", k)) for k, x in loss.items()}
    else:
        loss = loss_entry(loss, ("loss",))
    lw = c.get("loss_weights")
    if lw is not None and not isinstance(lw, (list, dict, int, float)) or isinstance(lw, bool):
        raise ConfigError("loss_weights", f"must be a number, a list or a dict of numbers, got {lw!r}")
    out = {"optimizer": opt, "loss": loss, "loss_weights": lw}
    for key in ("metrics", "weighted_metrics"):
        out[key] = _metrics_entry(c.get(key), (key,), custom_objects)
    return out


def _metrics_entry(m, where, custom_objects):
    """A metrics structure of the compile section (a list, a list of lists, a dict per
    output) with each entry resolved: a name stays a name (compile resolves it; a
    function's name must be registered or in custom_objects), a config becomes its
    Metric."""
    from .. import metrics as metrics_mod
    if m is None:
        return None
    if isinstance(m, dict) and "class_name" not in m:
        return {k: _metrics_entry(v, where + (k,), custom_objects) for k, v in m.items()}
    if isinstance(m, list):
        return [_metrics_entry(v, where + (i,), custom_objects) for i, v in enumerate(m)]
    if isinstance(m, str):
        if m in ("accuracy", "acc"):
            return m
        try:
            metrics_mod.get(m)
            return m
        except ValueError:
            pass
        fn = None if _is_private(m) else get_registered_object(m, custom_objects)
        if fn is None or not (callable(fn) and not isinstance(fn, type)):
            raise ConfigError(where, f"unknown metric {m!r} (a metric function loads when it is registered with "
                                     "register_keras_serializable or passed in custom_objects)")
        return fn
    if isinstance(m, dict):
        try:
            return metrics_mod.deserialize(m, custom_objects)
        except ConfigError as e:
            raise e.within(*where) from None
    raise ConfigError(where, f"must be a metric name or config, got {m!r}")


#: Deflate expands at most ~1032:1; an entry's data can be no larger than that (or
#: than its declared size), whatever its header says.
_DEFLATE_MAX_RATIO = 1032


def _weight_bytes_held(z):
    """The most bytes of weight data the file's weight entries can hold: each entry's
    declared size, bounded by what its compressed size can expand to."""
    total = 0
    for info in z.infos:
        if info.filename.startswith("weights/"):
            cap = min(info.file_size, info.compress_size if info.compress_type == zipfile.ZIP_STORED else
                      _DEFLATE_MAX_RATIO * info.compress_size + 1024)
            total += cap
    return total


def _load_convcore_model(path, custom_objects=None, compile=True):
    """Load a model of convcore's own zip format; ``custom_objects`` maps the names of
    user layers and functions (Lambda, activations) to them (code is never loaded).
    The model is built from the config first; its weights' shapes then bound what is
    read of the file."""
    with _ZipReader(path, "model") as z:
        cfg = _read_config(z)
        _check_header(cfg, path)
        try:
            if "model" not in cfg:
                raise ConfigError("model", "is missing")
            from ..layers.core import weight_budget
            try:
                token = weight_budget.set([_weight_bytes_held(z)])
                try:
                    model = model_from_config(cfg["model"], custom_objects)
                finally:
                    weight_budget.reset(token)
            except ConfigError as e:
                raise e.within("model") from None
            except ValueError as e:  # the budget: weights larger than the file's entries
                if "can hold" not in str(e):
                    raise
                raise ConfigError("model", str(e)) from None
            if compile and "compile" in cfg:
                try:
                    compile_args = _compile_args(cfg["compile"], custom_objects)
                except ConfigError as e:
                    raise e.within("compile") from None
        except ConfigError as e:
            raise e.in_file(path) from None
        except MemoryError as e:
            raise MemoryError(f"{path!s}: the model of its config does not fit in memory: {e}") from None
        variables = model.weights
        names = _model_file_names(len(variables))
        _check_entries(z, names, {"config.json"}, len(variables), model.name)
        weights = _read_weights(z, names, variables)
    model.set_weights(weights)
    if compile and "compile" in cfg:
        try:
            model.compile(**compile_args)
        except (TypeError, ValueError) as e:
            raise ConfigError("compile", str(e), path) from None
    return model


def _save_npz_weights(model, path):
    weights = model.get_weights()

    def write(f):
        np.savez(f, **{f"w{i:05d}": w for i, w in enumerate(weights)})

    _atomic_write(path, write)


def _load_convcore_weights(model, path):
    """Load weights saved by ``save_weights`` (an .npz) or ``save`` (a model file)
    into ``model``: the model's weights' shapes bound what is read."""
    variables = model.weights
    with _ZipReader(path, "weights") as z:
        if "config.json" in z.by_name:  # a full model file also carries the weights
            names, extra = _model_file_names(len(variables)), {"config.json"}
        else:
            names, extra = _weights_file_names(len(variables)), set()
        _check_entries(z, names, extra, len(variables), model.name)
        weights = _read_weights(z, names, variables)
    model.set_weights(weights)


# ---------------------------------------------------------------------- dispatch
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


def _lower(path):
    return os.fspath(path).lower() if isinstance(path, (str, os.PathLike)) else ""


def _check_overwrite(path, overwrite):
    """``overwrite=False`` on an existing file: Keras asks on the terminal; convcore
    never prompts and raises FileExistsError instead (as if the answer were no, but
    loudly, so a script does not silently keep the old file)."""
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"{os.fspath(path)} exists and overwrite=False; pass overwrite=True to replace it "
                              "(convcore never asks on the terminal as Keras does)")


def _sniff(path):
    """What a file holds by its content: 'folder' (Keras's zipped=False form),
    'hdf5', 'keras' (a zip with model.weights.h5), 'zip' (convcore's zip or an .npz),
    or 'unknown'."""
    p = os.fspath(path)
    if os.path.isdir(p):
        return "folder"
    with _open_regular(p) as f:
        head = f.read(8)
        if head == _HDF5_SIGNATURE:
            return "hdf5"
        for off in (512, 1024, 2048):  # an HDF5 user block
            f.seek(off)
            if f.read(8) == _HDF5_SIGNATURE:
                return "hdf5"
        if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            _check_directory(f, p)
            f.seek(0)
            try:
                with zipfile.ZipFile(f) as z:
                    names = set(z.namelist())
            except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, OverflowError,
                    struct.error):
                return "zip"  # the zip reader names the damage
            return "keras" if "model.weights.h5" in names else "zip"
    return "unknown"


def save_model(model, path, overwrite=True, zipped=None, **kwargs):
    """Save ``model`` by the file's name, as Keras: ``.keras`` is Keras 3's zip (or, with
    ``zipped=False``, Keras's folder of the same files), ``.h5`` / ``.hdf5`` the legacy
    HDF5 file (``include_optimizer=`` as there), any other name convcore's own zip.
    ``save_format='h5'`` (tf.keras 2) picks the HDF5 file whatever the name;
    ``zipped=False`` writes Keras's folder form (a name not ending in ``.keras``).
    ``overwrite=False`` and an existing file: a FileExistsError (Keras asks on the
    terminal). Every format is written atomically."""
    include_optimizer = kwargs.pop("include_optimizer", True)
    save_format = kwargs.pop("save_format", None)
    if kwargs:
        raise ValueError(f"The following argument(s) are not supported: {sorted(kwargs)}")
    if save_format not in (None, "h5", "keras"):
        raise ValueError(f"save_format must be 'keras' or 'h5', received save_format={save_format!r} (convcore "
                         "writes no TensorFlow SavedModel)")
    _check_overwrite(path, overwrite)
    name = _lower(path)
    if save_format == "h5" or (save_format is None and name.endswith((".h5", ".hdf5"))):
        from . import legacy_h5
        return legacy_h5.save_model(model, path, include_optimizer=include_optimizer)
    if zipped is False:
        if name.endswith(".keras"):
            raise ValueError("When using `zipped=False`, the `filepath` argument should not end in `.keras`. "
                             f"Received: filepath={os.fspath(path)}")
        from . import keras_zip
        return keras_zip.save_model(model, path, zipped=False, include_optimizer=include_optimizer)
    if save_format == "keras" or name.endswith(".keras"):
        from . import keras_zip
        return keras_zip.save_model(model, path, zipped=zipped is not False, include_optimizer=include_optimizer)
    return _save_convcore_model(model, path)


def load_model(path, custom_objects=None, compile=True, safe_mode=True):
    """Load a model of any format ``save_model`` writes, recognised by content: Keras
    3's ``.keras`` zip (or its folder), an HDF5 file (Keras 3's legacy ``.h5`` or tf.keras
    2's), or convcore's own zip. ``custom_objects`` maps the names of user layers and
    functions to them; ``safe_mode=False`` lets a Keras ``Lambda`` holding bytecode
    load (it runs that code). Nothing else in a file ever runs."""
    kind = _sniff(path)
    if kind in ("keras", "folder"):
        from . import keras_zip
        return keras_zip.load_model(path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)
    if kind == "hdf5":
        from . import legacy_h5
        return legacy_h5.load_model(path, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)
    return _load_convcore_model(path, custom_objects=custom_objects, compile=compile)


def save_weights(model, path, overwrite=True, max_shard_size=None):
    """Save the weights by the file's name: ``.weights.h5`` in Keras 3's layout (with a
    compiled model's optimizer state, as Keras), another ``.h5`` in the legacy layout
    (``layer_names`` / ``weight_names``), any other name an .npz. ``max_shard_size``
    (Keras's sharded files) is not supported: a ValueError unless None."""
    if max_shard_size is not None:
        raise ValueError(f"save_weights: max_shard_size={max_shard_size!r} (sharded weight files) is not supported; "
                         "pass max_shard_size=None")
    _check_overwrite(path, overwrite)
    name = _lower(path)
    if name.endswith(".weights.h5"):
        from . import keras_zip
        return keras_zip.save_weights(model, path)
    if name.endswith((".h5", ".hdf5")):
        from . import legacy_h5
        return legacy_h5.save_weights(model, path)
    return _save_npz_weights(model, path)


def _is_keras3_h5(path):
    """Whether an HDF5 file has Keras 3's weights layout (``layers`` / ``vars``) rather
    than the legacy one (``layer_names``, ``model_weights``)."""
    import h5py
    try:
        with _open_regular(path) as f, h5py.File(f, "r") as h:
            if "layer_names" in h.attrs or "model_weights" in h or "model_config" in h.attrs:
                return False
            return "vars" in h or "layers" in h
    except (OSError, ValueError, KeyError, RuntimeError):
        return _lower(path).endswith(".weights.h5")


def load_weights(model, path, skip_mismatch=False, **kwargs):
    """Load weights into ``model`` from a file recognised by content: Keras 3's
    ``.weights.h5`` or ``.keras``, a legacy ``.h5`` (``by_name=True`` matches layers by
    name there), a PyTorch ``.pth`` / ``.pt`` / ``.bin`` / ``.safetensors`` state dict,
    or convcore's own zip / .npz. Everything is read and checked before anything is
    assigned: the model is fully loaded or left unchanged."""
    by_name = kwargs.pop("by_name", False)
    if kwargs:
        raise ValueError(f"load_weights: argument(s) not recognized: {sorted(kwargs)}")
    name = _lower(path)
    if name.endswith(_TORCH_SUFFIXES):
        from . import torch_format
        return torch_format.load_torch_weights(model, path, skip_mismatch=skip_mismatch)
    kind = _sniff(path)
    if kind == "keras" or (kind == "hdf5" and _is_keras3_h5(path)):
        if by_name:
            raise ValueError("Invalid keyword arguments: by_name=True is only supported for legacy .h5 weight "
                             f"files, not Keras 3's layout of {os.fspath(path)}")
        from . import keras_zip
        return keras_zip.load_weights(model, path, skip_mismatch=skip_mismatch)
    if kind == "hdf5":
        from . import legacy_h5
        return legacy_h5.load_weights(model, path, by_name=by_name, skip_mismatch=skip_mismatch)
    return _load_convcore_weights(model, path)
