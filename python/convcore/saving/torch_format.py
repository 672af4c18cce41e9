"""PyTorch weight files: ``.pth`` / ``.pt`` / ``.bin`` state dicts and ``.safetensors``,
read without torch and without running any code from the file, and mapped onto convcore
layers by torchvision's module names.

Reading a ``.pth``
------------------
``torch.save`` writes a zip: ``<archive>/data.pkl`` (a pickle of the object) and one
member ``<archive>/data/<key>`` per tensor storage (raw bytes, in the order of
``<archive>/byteorder``). The pickle is read by a restricted unpickler (Python's own
opcode interpreter, with its table cut down): the only globals it resolves are
``collections.OrderedDict``, torch's tensor rebuild functions
(``torch._utils._rebuild_tensor_v2``, ``_rebuild_tensor``, ``_rebuild_parameter``,
``_rebuild_parameter_with_state``, ``torch._tensor._rebuild_from_type_v2``), the typed
storage classes (``torch.FloatStorage`` ...), ``torch.Size``, and the tensor / parameter
types. None of them is torch's: each name resolves to a small function of this module
that records what the pickle describes (a storage key, an offset, sizes and strides), or
to an inert marker. Any other global (``os.system``, ``builtins.eval``,
``subprocess.Popen``, ``numpy.core.multiarray._reconstruct``, ...) is refused with an
error naming it, before anything is called (and before any module is imported);
``REDUCE`` calls only those functions, ``BUILD`` is accepted on an ordered dict only
(torch's ``_metadata``, dropped), ``NEWOBJ`` makes ordered dicts only, and ``INST``,
``OBJ``, ``EXT*``, ``NEWOBJ_EX`` and out-of-band buffers are refused outright. Nothing
of the file is executed.

Every declared size is checked before anything is allocated: the pickle's size
(``MAX_PICKLE_BYTES``), the zip's directory (``MAX_ENTRIES``), each storage's element
count against its member's size, each tensor's offset, sizes and strides against its
storage (an index past the storage is an error, never an out-of-bounds read), a deflated
member against what deflate can expand to, and the tensors' total size against their
storages'. Each storage is then read once, straight into its array.

dtypes: float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8 and bool.
**float16 and bfloat16 tensors are returned as float32** (every value of either is
exactly a float32 value; numpy has no bfloat16, and convcore computes in float32 /
float64), in ``.pth`` and ``.safetensors`` alike; the other dtypes keep their own.
Big-endian files (``byteorder`` ``big``) are converted to native order.

``load_state_dict`` unwraps a checkpoint (``{"epoch": 3, "state_dict": {...}}``,
``{"model": {...}, "optimizer": {...}}``) when it holds exactly one dict of tensors;
with several (``model`` and ``ema``), ``key=`` chooses. The legacy (PyTorch 0.4 to
1.5) non-zip format (``_use_new_zipfile_serialization=False``: pickles of a magic
number, the protocol,
sys_info, the object and the storage keys, then each storage's raw bytes) is read by
the same unpickler, its pickles bounded by ``MAX_PICKLE_BYTES`` and each storage's size
checked against the file's before it is read. Not supported, each with an error saying
so: the tar format of PyTorch < 0.4 (re-save it with a current PyTorch), a
TorchScript archive (``torch.jit.save``: save its ``state_dict()`` instead), whole
pickled modules (``torch.save(model)``: the pickle names the module's class, which is
code) and tensors of other dtypes (complex, float8, quantized).

Mapping onto a model
--------------------
``load_torch_weights(model, path_or_state_dict)`` gives each convcore layer the tensors
named ``<prefix>.weight`` / ``.bias`` / ``.running_mean`` / ``.running_var``, where the
prefix is the layer's name (a convcore layer named ``layer1.0.conv1`` takes
``layer1.0.conv1.weight``; a layer inside a nested model ``block`` is looked for as
``block.<name>`` first, then as ``<name>``), or what ``name_map`` says. Layouts:

==========================  ======================  ===================================
convcore layer              torch tensor            conversion
==========================  ======================  ===================================
Conv1D/2D/3D (any groups)   weight (O, I/g, *k)     kernel (*k, I/g, O)
DepthwiseConv1D/2D          weight (C*m, 1, *k)     kernel (*k, C, m) (Conv2d groups=C)
Conv1D/2D/3DTranspose       weight (I, O, *k)       kernel (*k, O, I)
Dense                       weight (out, in)        kernel (in, out); after a Flatten of
                                                    an (H, W, C) tensor the rows are
                                                    reordered from torch's C, H, W order
BatchNormalization          weight, bias,           gamma, beta, moving_mean,
                            running_mean,           moving_variance
                            running_var             (num_batches_tracked is ignored)
LayerNormalization,         weight, bias            gamma, beta
GroupNormalization
RMSNormalization            weight                  scale
PReLU                       weight (C,) or (1,)     alpha, reshaped when the sizes agree
Embedding                   weight                  embeddings
other layers                <prefix>.<var name>     as they are
==========================  ======================  ===================================

The Flatten before a Dense is found through the model's graph (Sequential and
functional), through layers that keep each value in its place (Dropout and the noise
layers, Activation, ReLU, LeakyReLU, ELU, Softmax, Identity); any other layer in between
stops the search and the rows are taken as they are. Hyperparameters are the
architecture's business, not the file's: torch's BatchNorm has ``eps=1e-5`` and
``momentum=0.1`` where Keras has ``epsilon=1e-3`` and ``momentum=0.99``
(``momentum = 1 - torch's``), LayerNorm ``eps=1e-5`` where Keras has ``1e-3``; a
convcore model standing in for a torch one must set them (and torch's explicit padding,
with ``ZeroPadding2D``) itself.

Loading is all or nothing: every key and shape is checked first (an error names the
first layer whose shapes differ and both shapes, or the missing / unexpected key), then
every weight is assigned. ``Model.load_weights`` dispatches ``.pth`` / ``.pt`` /
``.bin`` / ``.safetensors`` here. ``torch_state_dict(model)`` is the inverse: the
model's weights as a state dict in torch's layouts and names.
"""
from __future__ import annotations

import collections
import io
import json
import os
import pickle
import re
import struct
import warnings
import zipfile
import zlib

import numpy as np

MAX_PICKLE_BYTES = 64 << 20  # data.pkl of a state dict is metadata: ~100 bytes a tensor
MAX_SAFETENSORS_HEADER = 100 << 20  # the safetensors library's own limit
_MAX_NDIM = 64  # numpy's limit
_VIEW_SLACK_BYTES = 64 << 20  # tensors may overlap their storages (expand) by this much in all
_DEFLATE_MAX_RATIO = 1032  # deflate expands at most ~1032:1
_CHUNK = 16 << 20

# torch's typed storage classes -> (numpy dtype of the stored bytes, little-endian)
_STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "<u2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}
_SAFETENSORS_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4",
                       "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


class TorchFileError(ValueError):
    """A PyTorch file refused by the reader (the message names the file)."""


def _bad(path, message):
    return TorchFileError(f"{os.fspath(path)!s}: {message}")


# ---------------------------------------------------------------------- the pickle's vocabulary
class _StorageType:
    """What ``torch.FloatStorage`` (...) resolves to: an inert marker naming a dtype."""
    __slots__ = ("name", "dtype")

    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype

    def __repr__(self):
        return f"torch.{self.name}"

    def __call__(self, *args):
        raise pickle.UnpicklingError(f"the pickle calls torch.{self.name}; a state dict only names storage types")


class _TypeMarker:
    """What ``torch.Tensor`` / ``torch.nn.parameter.Parameter`` resolve to (the
    ``new_type`` of ``_rebuild_from_type_v2``): a name, never called."""
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name

    def __call__(self, *args):
        raise pickle.UnpicklingError(f"the pickle calls {self.name}; a state dict only names it")


class _Storage:
    """One storage the pickle refers to: its member key, dtype and element count (read
    later, once, when every tensor has been checked)."""
    __slots__ = ("key", "stype", "numel", "array")

    def __init__(self, key, stype, numel):
        self.key, self.stype, self.numel, self.array = key, stype, numel, None


class _Tensor:
    """A tensor the pickle describes: a checked view (offset, sizes, strides in
    elements) of a storage."""
    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __setstate__(self, state):
        raise pickle.UnpicklingError("the pickle sets the state of a tensor (BUILD); a state dict does not")

    @property
    def numel(self):
        n = 1
        for s in self.size:
            n *= s
        return n


def _int(what, v):
    if isinstance(v, bool) or not isinstance(v, int):
        raise pickle.UnpicklingError(f"{what} must be an int, got {type(v).__name__}")
    return v


def _rebuild_tensor(storage, storage_offset, size, stride, *rest):
    """``torch._utils._rebuild_tensor(_v2)``: a view of ``storage``, its bounds checked."""
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"a tensor's storage must be a persistent storage reference, got "
                                     f"{type(storage).__name__}")
    offset = _int("a tensor's storage offset", storage_offset)
    if not isinstance(size, tuple) or not isinstance(stride, tuple):
        raise pickle.UnpicklingError(f"a tensor's size and stride must be tuples, got {type(size).__name__} and "
                                     f"{type(stride).__name__}")
    if len(size) != len(stride) or len(size) > _MAX_NDIM:
        raise pickle.UnpicklingError(f"a tensor has size {size!r} and stride {stride!r} (of different lengths, or "
                                     f"more than {_MAX_NDIM} axes)")
    size = tuple(_int("a tensor size", s) for s in size)
    stride = tuple(_int("a tensor stride", s) for s in stride)
    if offset < 0 or any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise pickle.UnpicklingError(f"a tensor has a negative offset, size or stride: offset {offset}, size {size}, "
                                     f"stride {stride}")
    if any(s > storage.numel and s > 1 << 31 for s in size):  # numpy's limits; an empty tensor checks no bound below
        raise pickle.UnpicklingError(f"a tensor of size {size} over a storage of {storage.numel} elements")
    if 0 in size:
        last = offset - 1
    else:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.numel or offset > storage.numel:
        raise pickle.UnpicklingError(
            f"a tensor of size {size}, stride {stride} at offset {offset} reaches element {last} of storage "
            f"{storage.key!r}, which has {storage.numel} elements")
    if rest:  # requires_grad, backward_hooks[, metadata]
        hooks = rest[1] if len(rest) > 1 else None
        if hooks is not None and (not isinstance(hooks, dict) or hooks):
            raise pickle.UnpicklingError("a tensor carries backward hooks (code); a state dict does not")
    return _Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    """``torch._utils._rebuild_parameter(_with_state)``: the tensor itself."""
    if not isinstance(data, _Tensor):
        raise pickle.UnpicklingError(f"a parameter must wrap a tensor, got {type(data).__name__}")
    if backward_hooks is not None and (not isinstance(backward_hooks, dict) or backward_hooks):
        raise pickle.UnpicklingError("a parameter carries backward hooks (code); a state dict does not")
    if state:
        raise pickle.UnpicklingError("a parameter carries Python state; a state dict's parameters do not")
    return data


def _rebuild_from_type_v2(func, new_type, args, state):
    """``torch._tensor._rebuild_from_type_v2``: one of the rebuild functions above,
    applied; the type must be Tensor or Parameter and the state empty."""
    if func not in (_rebuild_tensor, _rebuild_parameter):
        raise pickle.UnpicklingError(f"_rebuild_from_type_v2 of {func!r}; only torch's tensor rebuilds are loaded")
    if not isinstance(new_type, _TypeMarker):
        raise pickle.UnpicklingError(f"_rebuild_from_type_v2 to type {new_type!r}; only Tensor and Parameter are "
                                     "loaded")
    if not isinstance(args, tuple):
        raise pickle.UnpicklingError("_rebuild_from_type_v2's arguments must be a tuple")
    if state:
        raise pickle.UnpicklingError("a tensor carries Python state (a subclass); a state dict's tensors do not")
    return func(*args)


def _torch_size(sizes=()):
    if not isinstance(sizes, (tuple, list)):
        raise pickle.UnpicklingError("torch.Size of something other than a tuple")
    return tuple(_int("a torch.Size entry", s) for s in sizes)


_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Size"): _torch_size,
    ("torch", "Tensor"): _TypeMarker("torch.Tensor"),
    ("torch.nn.parameter", "Parameter"): _TypeMarker("torch.nn.parameter.Parameter"),
    **{("torch", n): _StorageType(n, d) for n, d in _STORAGE_DTYPES.items()},
    **{("torch.cuda", n): _StorageType(n, d) for n, d in _STORAGE_DTYPES.items()},  # legacy files saved on a GPU
}
_CALLABLE = (collections.OrderedDict, _rebuild_tensor, _rebuild_parameter, _rebuild_from_type_v2, _torch_size)


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global a state dict does not hold."""


class _RestrictedUnpickler(pickle._Unpickler):
    """Python's pickle interpreter with its globals, calls and object construction
    restricted to what a state dict needs (see the module docstring)."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, data, storage_for):
        super().__init__(io.BytesIO(data) if isinstance(data, bytes) else data, fix_imports=False, encoding="utf-8")
        self._storage_for = storage_for

    def find_class(self, module, name):
        obj = _GLOBALS.get((module, name))
        if obj is None:
            raise RefusedGlobal(f"the pickle names the global {module}.{name}, which a state dict does not hold "
                                "(only tensors, storages and ordered dicts are loaded; nothing is run)")
        return obj

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage") or self._storage_for is None:
            raise pickle.UnpicklingError(f"a persistent id {pid!r:.200}; a state dict's are "
                                         "('storage', type, key, location, numel)")
        if len(pid) == 6 and pid[5] is not None:  # the legacy format's view_metadata
            raise pickle.UnpicklingError("a storage view (view_metadata) of a PyTorch < 0.4 file; re-save it with "
                                         "a current PyTorch")
        _, stype, key, _location, numel = pid[:5]
        if not isinstance(stype, _StorageType):
            raise pickle.UnpicklingError(f"a storage of type {stype!r:.100}; only torch's typed storages are loaded")
        if not isinstance(key, str):
            raise pickle.UnpicklingError(f"a storage key {key!r:.100} (not a string)")
        return self._storage_for(key, stype, _int("a storage's element count", numel))

    def _refuse(what):
        def load(self):
            raise pickle.UnpicklingError(f"the pickle uses opcode {what}, which a state dict does not")
        return load

    def load_reduce(self):
        args = self.stack.pop()
        func = self.stack[-1]
        if not any(func is f for f in _CALLABLE) and not isinstance(func, (_StorageType, _TypeMarker)):
            raise pickle.UnpicklingError(f"the pickle calls a {type(func).__name__}; only torch's tensor rebuilds "
                                         "and OrderedDict are called")
        if not isinstance(args, tuple):
            raise pickle.UnpicklingError("REDUCE with arguments that are not a tuple")
        self.stack[-1] = func(*args)

    def load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is not collections.OrderedDict:
            raise pickle.UnpicklingError(f"the pickle sets the state of a {type(inst).__name__} (BUILD); a state "
                                         "dict only sets an ordered dict's metadata")
        # torch's ``_metadata`` (module versions): not needed, not kept.

    def load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        if cls is not collections.OrderedDict or not isinstance(args, tuple) or args:
            raise pickle.UnpicklingError(f"the pickle makes an object of {cls!r:.100} (NEWOBJ); a state dict "
                                         "makes ordered dicts only")
        self.append(collections.OrderedDict())

    def load_inst(self):
        module = self.readline()[:-1].decode("ascii", "replace")
        name = self.readline()[:-1].decode("ascii", "replace")
        self.find_class(module, name)  # refuses every global a state dict does not name
        raise pickle.UnpicklingError(f"the pickle uses opcode INST ({module}.{name}); a state dict does not")

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.INST[0]] = load_inst
    for _op, _what in ((pickle.OBJ, "OBJ"), (pickle.EXT1, "EXT1"), (pickle.EXT2, "EXT2"), (pickle.EXT4, "EXT4"),
                       (pickle.NEWOBJ_EX, "NEWOBJ_EX"), (pickle.NEXT_BUFFER, "NEXT_BUFFER"),
                       (pickle.READONLY_BUFFER, "READONLY_BUFFER")):
        dispatch[_op[0]] = _refuse(_what)
    del _op, _what, _refuse


def _unpickle(data, storage_for, path):
    try:
        return _RestrictedUnpickler(data, storage_for).load()
    except RefusedGlobal as e:
        raise _bad(path, str(e)) from None
    except TorchFileError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            struct.error, UnicodeDecodeError, OverflowError, RecursionError, MemoryError) as e:
        raise _bad(path, f"data.pkl is not a state dict pickle: {type(e).__name__}: {e}") from None


# ---------------------------------------------------------------------- the zip
def _check_member_names(infos, path):
    """The archive's prefix: every member must be ``<prefix>/...`` for one prefix, with
    no absolute, ``..``, backslash or NUL names (refused even though nothing is ever
    extracted), and ``<prefix>/data.pkl`` must be its only ``data.pkl``."""
    prefixes = set()
    for info in infos:
        n = info.filename
        parts = n.split("/")
        if (n.startswith("/") or "\\" in n or "\x00" in n or ".." in parts or re.match(r"[A-Za-z]:", n)
                or len(parts) < 2 or not parts[0]):
            raise _bad(path, f"the zip has a member named {n!r}; a torch file's members are <archive>/<name>")
        prefixes.add(parts[0])
    if len(prefixes) != 1:
        raise _bad(path, f"the zip's members lie under {len(prefixes)} folders ({', '.join(sorted(prefixes)[:4])}); "
                         "a torch file's lie under one")
    prefix = prefixes.pop()
    pkls = [i.filename for i in infos if i.filename.endswith("data.pkl")]
    if pkls != [f"{prefix}/data.pkl"]:
        if not pkls:
            if any(i.filename.endswith("/model.json") or "/code/" in i.filename for i in infos):
                raise _bad(path, "a TorchScript or legacy archive, not a state dict (load it in torch and save its "
                                 "state_dict() with torch.save)")
            raise _bad(path, "not a torch file: the zip has no data.pkl")
        raise _bad(path, f"the zip has data.pkl members {pkls[:4]}; a torch file has exactly {prefix}/data.pkl")
    if any(i.filename in (f"{prefix}/constants.pkl",) or i.filename.startswith(f"{prefix}/code/") for i in infos):
        raise _bad(path, "a TorchScript archive (torch.jit.save), not a state dict: load it in torch and save its "
                         "state_dict() with torch.save")
    return prefix


def _read_member(z, info, limit, path):
    if info.file_size > limit:
        raise _bad(path, f"member {info.filename!r} declares {info.file_size} bytes, more than the {limit} it may "
                         "have (refused before reading it)")
    try:
        with z.open(info) as f:
            data = f.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, struct.error, ValueError, NotImplementedError) as e:
        raise _bad(path, f"damaged member {info.filename!r}: {e}") from None
    if len(data) > limit:
        raise _bad(path, f"member {info.filename!r} is larger than the {limit} bytes it may have")
    return data


def _data_offset(f, info, file_size, path):
    """Where a stored member's data starts in the file (after its local header)."""
    f.seek(info.header_offset)
    head = f.read(30)
    if len(head) != 30 or head[:4] != b"PK\x03\x04":
        raise _bad(path, f"member {info.filename!r}: bad local header (the file is damaged or truncated)")
    n, m = struct.unpack("<HH", head[26:30])
    start = info.header_offset + 30 + n + m
    if start + info.file_size > file_size:
        raise _bad(path, f"member {info.filename!r} runs past the end of the file (it is truncated)")
    return start


def _read_storage(z, f, info, storage, dtype, file_size, path):
    """Storage ``storage`` read once, straight into a new array of ``numel`` elements."""
    nbytes = storage.numel * dtype.itemsize
    out = np.empty(storage.numel, dtype=dtype)
    buf = out.view(np.uint8).reshape(-1)
    if nbytes == 0:
        return out
    if info.compress_type == zipfile.ZIP_STORED:
        f.seek(_data_offset(f, info, file_size, path))
        pos = 0
        while pos < nbytes:
            got = f.readinto(memoryview(buf)[pos:min(nbytes, pos + _CHUNK)])
            if not got:
                raise _bad(path, f"member {info.filename!r} ends early (the file is truncated)")
            pos += got
        return out
    try:
        with z.open(info) as g:
            pos = 0
            while pos < nbytes:
                chunk = g.read(min(_CHUNK, nbytes - pos))
                if not chunk:
                    raise _bad(path, f"member {info.filename!r} ends early (the file is truncated)")
                buf[pos:pos + len(chunk)] = np.frombuffer(chunk, np.uint8)
                pos += len(chunk)
            if g.read(1):
                raise _bad(path, f"member {info.filename!r} holds more than its {nbytes} bytes")
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, struct.error) as e:
        raise _bad(path, f"damaged member {info.filename!r}: {e}") from None
    return out


def _load_torch_zip(path, f, key=None):
    from .saving_lib import _check_directory, _FileError
    try:
        _check_directory(f, path)
    except _FileError as e:
        raise TorchFileError(str(e)) from None
    f.seek(0, os.SEEK_END)
    file_size = f.tell()
    f.seek(0)
    try:
        z = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError, EOFError, struct.error, OverflowError, ValueError,
            NotImplementedError) as e:
        raise _bad(path, f"not a torch zip file (or it is truncated): {e}") from None
    with z:
        infos = z.infolist()
        by_name = {}
        for i in infos:
            if i.filename in by_name:
                raise _bad(path, f"the zip holds two members named {i.filename!r}")
            by_name[i.filename] = i
        prefix = _check_member_names(infos, path)
        big_endian = False
        if f"{prefix}/byteorder" in by_name:
            order = _read_member(z, by_name[f"{prefix}/byteorder"], 16, path).strip()
            if order not in (b"little", b"big"):
                raise _bad(path, f"byteorder is {order[:16]!r}; torch writes 'little' or 'big'")
            big_endian = order == b"big"
        pkl = _read_member(z, by_name[f"{prefix}/data.pkl"], MAX_PICKLE_BYTES, path)
        storages = {}

        def member_of(key):
            info = by_name.get(f"{prefix}/data/{key}")
            if info is None or "/" in key:
                raise pickle.UnpicklingError(f"the pickle refers to storage {key!r}, which the zip does not hold "
                                             f"(no member {prefix}/data/{key})")
            return info

        def storage_for(key, stype, numel):
            s = _known_storage(storages, key, stype, numel)
            if s is not None:
                return s
            info = member_of(key)
            itemsize = np.dtype(stype.dtype).itemsize
            if numel < 0 or numel * itemsize != info.file_size:
                raise pickle.UnpicklingError(
                    f"storage {key!r} claims {numel} elements of {stype} ({numel * itemsize} bytes); its member "
                    f"{info.filename!r} holds {info.file_size} bytes")
            if info.flag_bits & 0x1:
                raise pickle.UnpicklingError(f"member {info.filename!r} is encrypted")
            if info.compress_type == zipfile.ZIP_STORED:
                if info.compress_size != info.file_size or info.file_size > file_size:
                    raise pickle.UnpicklingError(f"member {info.filename!r} declares {info.file_size} bytes in a file "
                                                 f"of {file_size}")
            elif info.compress_type == zipfile.ZIP_DEFLATED:
                if info.file_size > _DEFLATE_MAX_RATIO * info.compress_size + 1024:
                    raise pickle.UnpicklingError(
                        f"member {info.filename!r} declares {info.file_size} bytes from {info.compress_size} "
                        "compressed bytes, more than deflate can expand to (a zip bomb)")
            else:
                raise pickle.UnpicklingError(f"member {info.filename!r} uses compression method "
                                             f"{info.compress_type}; torch stores its members")
            s = storages[key] = _Storage(key, stype, numel)
            return s

        state = _checked_state(_unpickle(pkl, storage_for, path), path, key)
        for s in _storages_of(state):
            dtype = np.dtype(s.stype.dtype)
            if big_endian:
                dtype = dtype.newbyteorder(">")
            s.array = _read_storage(z, f, member_of(s.key), s, dtype, file_size, path)
    return _materialize(state)


def _known_storage(storages, key, stype, numel):
    """The storage already named ``key`` (it must be named alike each time), or None."""
    s = storages.get(key)
    if s is not None and (s.stype is not stype or s.numel != numel):
        raise pickle.UnpicklingError(f"storage {key!r} is named as {s.numel} x {s.stype} and as {numel} x {stype}")
    return s


def _checked_state(obj, path, key=None):
    state = _state_dict_of(obj, path, key)
    _check_total(state, path)
    return state


def _storages_of(state):
    """The storages the state dict's tensors use, each once."""
    return list({id(t.storage): t.storage for t in state.values()}.values())


class _BoundedFile:
    """The legacy file's pickles read from the file itself, at most ``limit`` bytes in all."""

    def __init__(self, f, limit, path):
        self.f, self.left, self.path = f, limit, path

    def _room(self, n):
        if n is None or n < 0 or n > self.left:
            raise _bad(self.path, f"the pickles take more than {MAX_PICKLE_BYTES} bytes (refused)")
        self.left -= n

    def read(self, n=-1):
        self._room(n)
        return self.f.read(n)

    def readinto(self, b):
        self._room(len(b))
        return self.f.readinto(b)

    def readline(self, limit=-1):
        line = self.f.readline(min(self.left, 1 << 16) + 1)
        self._room(len(line))
        return line


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


def _load_legacy(path, f, key=None):
    """torch's legacy (< 1.6) format: pickles of the magic number, the protocol version,
    sys_info and the object, then the sorted storage keys, then each storage as an
    int64 element count and its raw little-endian bytes."""
    f.seek(0, os.SEEK_END)
    file_size = f.tell()
    f.seek(0)
    reader = _BoundedFile(f, MAX_PICKLE_BYTES, path)
    storages = {}

    def storage_for(key, stype, numel):
        s = _known_storage(storages, key, stype, numel)
        if s is None:
            if numel < 0 or numel * np.dtype(stype.dtype).itemsize > file_size:
                raise pickle.UnpicklingError(f"storage {key!r} claims {numel} elements of {stype}, more than the "
                                             f"file's {file_size} bytes hold")
            s = storages[key] = _Storage(key, stype, numel)
        return s

    if _unpickle(reader, None, path) != _LEGACY_MAGIC:
        raise _bad(path, "not a PyTorch file (a pickle, but not torch's legacy format: its magic number differs)")
    if _unpickle(reader, None, path) != _LEGACY_PROTOCOL:
        raise _bad(path, f"a legacy PyTorch file of a protocol version other than {_LEGACY_PROTOCOL}")
    if not isinstance(_unpickle(reader, None, path), dict):
        raise _bad(path, "a legacy PyTorch file whose sys_info is not a dict")
    state = _checked_state(_unpickle(reader, storage_for, path), path, key)
    keys = _unpickle(reader, None, path)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys) \
            or set(keys) != set(storages):
        raise _bad(path, "a legacy PyTorch file whose list of storage keys does not match the storages its pickle "
                         "names")
    used = {id(s) for s in _storages_of(state)}
    for key in keys:
        s = storages[key]
        dtype = np.dtype(s.stype.dtype)
        head = f.read(8)
        if len(head) != 8:
            raise _bad(path, f"the file ends before storage {key!r} (it is truncated)")
        n = struct.unpack("<q", head)[0]
        nbytes = n * dtype.itemsize
        if n != s.numel:
            raise _bad(path, f"storage {key!r} holds {n} elements; the pickle says {s.numel}")
        if f.tell() + nbytes > file_size:
            raise _bad(path, f"storage {key!r} runs past the end of the file (it is truncated)")
        if id(s) not in used:
            f.seek(nbytes, os.SEEK_CUR)
            continue
        s.array = np.empty(n, dtype=dtype)
        buf = memoryview(s.array.view(np.uint8).reshape(-1))
        pos = 0
        while pos < nbytes:
            got = f.readinto(buf[pos:min(nbytes, pos + _CHUNK)])
            if not got:
                raise _bad(path, f"storage {key!r} ends early (the file is truncated)")
            pos += got
    return _materialize(state)


def _check_total(state, path):
    """The tensors' total size against their storages': a pickle of size N can name the
    same storage with huge sizes and zero strides (each view in bounds)."""
    distinct = {id(t): t for t in state.values()}.values()
    need = sum(t.numel * np.dtype(t.storage.stype.dtype).itemsize for t in distinct)
    have = sum(s.numel * np.dtype(s.stype.dtype).itemsize for s in {id(t.storage): t.storage for t in distinct}.values())
    if need > have + _VIEW_SLACK_BYTES:
        raise _bad(path, f"the tensors of the state dict would take {need} bytes from storages of {have} bytes "
                         "(overlapping views of a small storage; refused before reading)")


def _as_native_float(a, stype_name):
    """float16 / bfloat16 -> float32 (exact); big-endian -> native order."""
    if stype_name == "BFloat16Storage":
        return (a.astype(np.uint32) << 16).view(np.float32)
    if a.dtype.kind == "f" and a.dtype.itemsize == 2:  # float16, either byte order
        return a.astype(np.float32)
    if not a.dtype.isnative:
        return a.astype(a.dtype.newbyteorder("="))
    return a


def _materialize(state):
    """The numpy array of each checked tensor: a view of its storage when it covers the
    storage in order (no copy), else a copy of the strided view."""
    out = collections.OrderedDict()
    done = {}
    for key, t in state.items():
        if id(t) in done:
            out[key] = done[id(t)]
            continue
        st = t.storage.array
        item = st.dtype.itemsize
        contiguous, expect = True, 1
        for n, s in zip(reversed(t.size), reversed(t.stride)):
            if n != 1 and s != expect:
                contiguous = False
                break
            expect *= n
        if t.numel == 0:
            a = np.empty(t.size, dtype=st.dtype)
        elif contiguous:
            a = st[t.offset:t.offset + t.numel].reshape(t.size)
            if t.numel != t.storage.numel:
                a = a.copy()  # a part of a bigger storage: do not keep the rest alive
        else:
            a = np.lib.stride_tricks.as_strided(st[t.offset:], shape=t.size,
                                                strides=tuple(s * item for s in t.stride)).copy()
        a = _as_native_float(a, t.storage.stype.name)
        done[id(t)] = out[key] = a
    return out


def _is_tensor_dict(d):
    return isinstance(d, dict) and bool(d) and all(isinstance(v, _Tensor) for v in d.values())


def _state_dict_of(obj, path, key=None):
    """The state dict in what the pickle holds: ``obj[key]`` when a key is given; else
    the dict itself when it holds tensors only, else a checkpoint's only dict of
    tensors."""
    if not isinstance(obj, dict):
        raise _bad(path, f"the file holds a {type(obj).__name__}, not a state dict (a dict of tensors)")
    if key is not None:
        if not _is_tensor_dict(obj.get(key)):
            raise _bad(path, f"the file has no dict of tensors under {key!r} (its keys: "
                             f"{', '.join(repr(k) for k in list(obj)[:8])})")
        obj = obj[key]
    if not obj:
        raise _bad(path, "the file holds an empty dict, not a state dict")
    if _is_tensor_dict(obj):
        state = obj
    else:
        anywhere = [k for k, v in obj.items() if _is_tensor_dict(v)]
        if any(isinstance(v, _Tensor) for v in obj.values()):
            bad = next(k for k, v in obj.items() if not isinstance(v, _Tensor))
            raise _bad(path, f"the state dict's entry {bad!r} is a {type(obj[bad]).__name__}, not a tensor")
        if len(anywhere) == 1:
            state = obj[anywhere[0]]
        else:
            keys = ", ".join(repr(k) for k in list(obj)[:8])
            raise _bad(path, f"the file holds a dict ({keys}) with {len(anywhere)} dicts of tensors"
                             f"{' (' + ', '.join(map(repr, anywhere[:4])) + ')' if anywhere else ''}; "
                             + ("which one is the state dict is ambiguous: choose one with "
                                "load_state_dict(path, key=...)" if anywhere else "it is not a state dict"))
    for k in state:
        if not isinstance(k, str):
            raise _bad(path, f"the state dict has a key {k!r:.80} that is not a string")
    return state


# ---------------------------------------------------------------------- safetensors
def _load_safetensors(path):
    try:
        from safetensors import safe_open
    except ImportError:
        raise ImportError("reading a .safetensors file needs the safetensors package: pip install safetensors") \
            from None
    header = _safetensors_header(path)
    out = collections.OrderedDict()
    try:
        with safe_open(os.fspath(path), framework="numpy") as f:
            keys = list(f.keys())
            for k in sorted(keys, key=lambda k: header[k]["data_offsets"][0]):
                dt = header[k]["dtype"]
                if dt not in _SAFETENSORS_DTYPES:
                    raise _bad(path, f"tensor {k!r} has dtype {dt}; convcore reads "
                                     f"{', '.join(_SAFETENSORS_DTYPES)}")
                if dt == "BF16":
                    out[k] = _bf16_tensor(path, header, k)
                else:
                    a = f.get_tensor(k)
                    out[k] = a.astype(np.float32) if a.dtype == np.float16 else a
    except TorchFileError:
        raise
    except Exception as e:  # safetensors_rust.SafetensorError, a key the library and the header disagree on
        raise _bad(path, f"not a valid safetensors file: {type(e).__name__}: {e}") from None
    return out


def _safetensors_header(path):
    """The header of a safetensors file, parsed with its size bounded (the library
    checks the rest: offsets, overlaps, sizes)."""
    from .saving_lib import _open_regular
    with _open_regular(path) as f:
        head = f.read(8)
        size = os.fstat(f.fileno()).st_size
        if len(head) != 8:
            raise _bad(path, "not a safetensors file (shorter than its 8-byte header length)")
        n = struct.unpack("<Q", head)[0]
        if n > MAX_SAFETENSORS_HEADER or n > size - 8:
            raise _bad(path, f"not a safetensors file (its header claims {n} bytes in a file of {size})")
        raw = f.read(n)
        data_start = 8 + n
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _bad(path, f"not a safetensors file (its header is not JSON: {e})") from None
    if not isinstance(header, dict):
        raise _bad(path, "not a safetensors file (its header is not a JSON object)")
    header.pop("__metadata__", None)
    for k, v in header.items():
        ok = (isinstance(v, dict) and isinstance(v.get("dtype"), str) and isinstance(v.get("shape"), list)
              and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in v["shape"])
              and isinstance(v.get("data_offsets"), list) and len(v["data_offsets"]) == 2
              and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in v["data_offsets"]))
        if not ok:
            raise _bad(path, f"not a safetensors file (its header entry {k!r:.80} is not dtype, shape, data_offsets)")
        v["_start"] = data_start
        v["_size"] = size
    return header


def _bf16_tensor(path, header, k):
    from .saving_lib import _open_regular
    h = header[k]
    begin, end = h["data_offsets"]
    n = int(np.prod(h["shape"], dtype=np.int64)) if h["shape"] else 1
    if end - begin != 2 * n or h["_start"] + end > h["_size"]:
        raise _bad(path, f"tensor {k!r}: its data_offsets do not hold a {h['shape']} bfloat16 tensor")
    raw = np.empty(n, dtype="<u2")
    with _open_regular(path) as f:
        f.seek(h["_start"] + begin)
        if f.readinto(memoryview(raw.view(np.uint8))) != 2 * n:
            raise _bad(path, f"tensor {k!r}: the file ends inside its data (it is truncated)")
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(h["shape"])


# ---------------------------------------------------------------------- public: reading
def load_state_dict(path, key=None):
    """The tensors of a PyTorch state dict file as ``{name: numpy array}``, in the
    file's order, without torch and without running code from the file.

    Parameters
    ----------
    path : str or os.PathLike
        A ``torch.save`` file (``.pth``, ``.pt``, ``.bin``: torch's zip format) or a
        ``.safetensors`` file (read with the safetensors package). The format is
        recognised by content.
    key : str, optional
        The entry of a checkpoint dict that holds the state dict (``"model_ema"``);
        by default a checkpoint's only dict of tensors is taken.

    Returns
    -------
    dict of str to numpy.ndarray
        float16 / bfloat16 tensors as float32 (exactly); other dtypes as stored. A
        checkpoint holding one dict of tensors (under ``state_dict``, ``model``, ...)
        gives that dict.

    Raises
    ------
    ValueError
        (``TorchFileError``) for anything that is not a plain state dict: a pickle
        naming any global other than torch's tensor rebuilds (``os.system``,
        ``builtins.eval``, a module class), a storage or tensor out of bounds, a
        truncated or damaged file, a zip bomb, the tar format of PyTorch < 0.4,
        TorchScript.
    """
    from .saving_lib import _FileError, _open_regular
    try:
        f = _open_regular(path)
    except _FileError as e:
        raise TorchFileError(str(e)) from None
    with f:
        head = f.read(16)
        if head[:4] == b"PK\x03\x04" or head[:4] == b"PK\x05\x06":
            return _load_torch_zip(path, f, key)
        if head[:2] == b"\x80\x02" and head[2:3] == b"\x8a":  # pickle protocol 2, a LONG1: the magic number
            return _load_legacy(path, f, key)
    if len(head) >= 9 and head[8:9] == b"{" or os.fspath(path).endswith(".safetensors"):
        if key is not None:
            raise ValueError(f"{os.fspath(path)!s}: a safetensors file holds one flat dict of tensors; key= is for "
                             "torch checkpoints")
        return _load_safetensors(path)
    if len(head) < 16:
        raise _bad(path, f"not a PyTorch state dict file ({len(head)} bytes)")
    if len(head) > 0 and _is_tar(path):
        raise _bad(path, "a legacy PyTorch (< 0.4) tar file, not the zip format convcore reads: re-save it with "
                         "a current PyTorch: torch.save(torch.load(path, weights_only=True), new_path)")
    raise _bad(path, "not a PyTorch state dict file (neither torch's zip format nor safetensors)")


def _is_tar(path):
    from .saving_lib import _open_regular
    with _open_regular(path) as f:
        f.seek(257)
        return f.read(5) == b"ustar"


# ---------------------------------------------------------------------- mapping onto layers
_ORDER_KEEPING = frozenset({"Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise", "SpatialDropout1D",
                            "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Identity", "ActivityRegularization"})


def _kind(layer):
    from ..layers import conv, normalization
    from ..layers.activation import PReLU
    from ..layers.basic import Dense
    if isinstance(layer, conv._DepthwiseConv):
        return "depthwise"
    if isinstance(layer, conv._SeparableConv):
        return "separable"
    if isinstance(layer, conv._ConvTranspose):
        return "conv_transpose"
    if isinstance(layer, conv._Conv):
        return "conv"
    if isinstance(layer, Dense):
        return "dense"
    if isinstance(layer, normalization.BatchNormalization):
        return "batch_norm"
    if isinstance(layer, (normalization.LayerNormalization, normalization.GroupNormalization)):
        return "norm"
    if isinstance(layer, normalization.RMSNormalization):
        return "rms_norm"
    if isinstance(layer, PReLU):
        return "prelu"
    if type(layer).__name__ == "Embedding" and getattr(layer, "embeddings", None) is not None:
        return "embedding"
    return None


class _Slot:
    """One model variable and the torch tensor it takes: key, torch shape, and the
    conversions both ways."""
    __slots__ = ("layer", "var", "key", "torch_shape", "to_keras", "to_torch")

    def __init__(self, layer, var, key, torch_shape, to_keras, to_torch):
        self.layer, self.var, self.key, self.torch_shape = layer, var, key, tuple(torch_shape)
        self.to_keras, self.to_torch = to_keras, to_torch


def _move_last_two_first(nd):
    """(…k, I, O) <-> (O, I, …k) axis orders."""
    to_torch = (nd - 1, nd - 2) + tuple(range(nd - 2))
    to_keras = tuple(range(2, nd)) + (1, 0)
    return to_keras, to_torch


def _slots_of(layer, prefix, graph):
    """The slots of one layer of a known kind (its own variables only)."""
    kind = _kind(layer)
    slots = []

    def add(var, suffix, torch_shape, to_keras=None, to_torch=None):
        if var is not None:
            slots.append(_Slot(layer, var, f"{prefix}.{suffix}", torch_shape, to_keras or (lambda a: a),
                               to_torch or (lambda a: a)))

    bias = getattr(layer, "bias", None)
    if kind in ("conv", "conv_transpose"):
        k = layer.kernel
        nd = len(k.shape)
        tk, tt = _move_last_two_first(nd)
        # conv: keras (*k, I/g, O) <- torch (O, I/g, *k); transposed: keras (*k, O, I) <- torch (I, O, *k)
        add(k, "weight", tuple(k.shape[i] for i in tt), lambda a, tk=tk: a.transpose(tk),
            lambda a, tt=tt: a.transpose(tt))
        add(bias, "bias", bias.shape if bias is not None else ())
    elif kind == "depthwise":  # keras (*k, C, m) <- torch (C*m, 1, *k)
        k = layer.kernel
        ks, c, m = tuple(k.shape[:-2]), k.shape[-2], k.shape[-1]
        r = len(ks)
        add(k, "weight", (c * m, 1) + ks,
            lambda a, c=c, m=m, ks=ks, r=r: a.reshape((c, m) + ks).transpose(tuple(range(2, 2 + r)) + (0, 1)),
            lambda a, c=c, m=m, ks=ks, r=r: a.transpose((r, r + 1) + tuple(range(r))).reshape((c * m, 1) + ks))
        add(bias, "bias", bias.shape if bias is not None else ())
    elif kind == "dense":
        k = layer.kernel
        n_in, n_out = k.shape
        flat = _flatten_input_shape(layer, graph)
        if flat is not None and int(np.prod(flat)) == n_in and len(flat) >= 2:
            spatial, c = tuple(flat[:-1]), flat[-1]
            r = len(spatial)
            # torch rows are (C, *S) flattened; keras's (*S, C)
            add(k, "weight", (n_out, n_in),
                lambda a, s=spatial, c=c, r=r, n_in=n_in, n_out=n_out:
                    a.reshape((n_out, c) + s).transpose(tuple(range(2, 2 + r)) + (1, 0)).reshape(n_in, n_out),
                lambda a, s=spatial, c=c, r=r, n_in=n_in, n_out=n_out:
                    a.reshape(s + (c, n_out)).transpose((r + 1, r) + tuple(range(r))).reshape(n_out, n_in))
        else:
            add(k, "weight", (n_out, n_in), lambda a: a.T, lambda a: a.T)
        add(bias, "bias", bias.shape if bias is not None else ())
    elif kind == "batch_norm":
        for var, suffix in ((layer.gamma, "weight"), (layer.beta, "bias"), (layer.moving_mean, "running_mean"),
                            (layer.moving_variance, "running_var")):
            if var is not None:
                add(var, suffix, var.shape)
    elif kind == "norm":
        for var, suffix in ((layer.gamma, "weight"), (layer.beta, "bias")):
            if var is not None:
                add(var, suffix, var.shape)
    elif kind == "rms_norm":
        add(layer.scale, "weight", layer.scale.shape)
    elif kind == "prelu":
        alpha = layer.alpha
        size = int(np.prod(alpha.shape))
        add(alpha, "weight", (size,), lambda a, s=tuple(alpha.shape): a.reshape(s), lambda a: a.reshape(-1))
    elif kind == "embedding":
        add(layer.embeddings, "weight", layer.embeddings.shape)
    elif kind == "separable":
        raise ValueError(f"layer {layer.name!r} (SeparableConv): PyTorch has no separable convolution module; build "
                         "the model with a DepthwiseConv and a 1x1 Conv (torch's two convolutions) instead")
    return slots


def _flatten_input_shape(dense, graph):
    """The (…, C) input shape of the Flatten feeding ``dense`` in ``graph`` (through
    order-keeping layers), or None."""
    if graph is None or not hasattr(graph, "_nodes"):
        return None
    from ..layers.basic import Flatten
    node = next((n for n in graph._nodes if n.layer is dense), None)
    for _ in range(len(graph._nodes) + 1):
        if node is None or len(node.inputs) != 1:
            return None
        producer = node.inputs[0].node
        if producer is None:
            return None
        if isinstance(producer.layer, Flatten):
            if len(producer.inputs) != 1:
                return None
            shape = tuple(producer.inputs[0].shape[1:])
            if any(s is None for s in shape):
                return None
            if producer.layer.data_format == "channels_first" and len(shape) >= 2:
                shape = shape[1:] + shape[:1]  # Keras's Flatten moved the channels last
            return shape
        if type(producer.layer).__name__ not in _ORDER_KEEPING:
            return None
        node = producer
    return None


def _walk(model):
    """``(layer, default prefix, short prefix, graph)`` for every layer with weights,
    nested models and layers with sub-layers entered (their prefix joined by dots)."""
    from ..layers.core import InputLayer
    from ..models import Model
    seen = set()
    stack = [(model, (), model)]
    out = []
    while stack:
        holder, path, graph = stack.pop(0)
        children = holder.layers if isinstance(holder, Model) else list(holder.__dict__.get("_layers", []))
        for l in children:
            if isinstance(l, InputLayer) or id(l) in seen:
                continue
            seen.add(id(l))
            p = path + (l.name,)
            if isinstance(l, Model) or (_kind(l) is None and l.__dict__.get("_layers")):
                if _kind(l) is None and not isinstance(l, Model) and l.__dict__.get("_variables"):
                    out.append((l, p, graph))
                stack.append((l, p, l if isinstance(l, Model) else graph))
            elif l.weights:
                out.append((l, p, graph))
    return out


def _prefix_of(layer, path, name_map, keys):
    """The torch prefix of a layer: ``name_map``'s, else its dotted path (when the state
    dict has keys under it), else its own name."""
    dotted = ".".join(path)
    if name_map is not None:
        if callable(name_map):
            return name_map(dotted)
        if layer.name in name_map:
            return name_map[layer.name]
        if dotted in name_map:
            return name_map[dotted]
    if len(path) == 1 or keys is None:
        return dotted
    if any(k.startswith(dotted + ".") for k in keys):
        return dotted
    return layer.name


def _slots(model, name_map, keys):
    if name_map is not None and not callable(name_map) and not isinstance(name_map, dict):
        raise TypeError(f"name_map must be a dict of convcore layer names to torch prefixes or a callable, got "
                        f"{type(name_map).__name__}")
    slots = []
    for layer, path, graph in _walk(model):
        prefix = _prefix_of(layer, path, name_map, keys)
        if prefix is None:
            continue
        if not isinstance(prefix, str):
            raise TypeError(f"name_map gave {prefix!r} for layer {layer.name!r}; expected a torch prefix (str) or None")
        if _kind(layer) is None:
            own = layer.__dict__.get("_variables", []) if layer.__dict__.get("_layers") else layer.weights
            for v in own:
                slots.append(_Slot(layer, v, f"{prefix}.{v.name}" if prefix else v.name, v.shape,
                                   lambda a: a, lambda a: a))
        else:
            slots.extend(_slots_of(layer, prefix, graph))
    return slots


def torch_state_dict(model, name_map=None):
    """The model's weights as a torch state dict (``{key: numpy array}`` in torch's
    layouts, the inverse of :func:`load_torch_weights`), with
    ``<prefix>.num_batches_tracked`` (0) for each BatchNormalization as torch has. Save it
    with ``safetensors.numpy.save_file`` or load it in torch with
    ``model.load_state_dict({k: torch.from_numpy(v) ...})``."""
    out = collections.OrderedDict()
    for s in _slots(model, name_map, None):
        out[s.key] = np.asarray(s.to_torch(s.var.numpy()), order="C")
        if _kind(s.layer) == "batch_norm" and s.key.endswith(".running_var"):
            out[s.key[:-len("running_var")] + "num_batches_tracked"] = np.array(0, dtype=np.int64)
    return out


def _strip_module(state, slots):
    """DataParallel's ``module.`` prefix, removed when every key has it and no layer's
    key does."""
    if state and all(k.startswith("module.") for k in state) and not any(s.key.startswith("module.") for s in slots):
        return collections.OrderedDict((k[len("module."):], v) for k, v in state.items())
    return state


def load_torch_weights(model, path_or_state_dict, name_map=None, skip_mismatch=False, strict=True):
    """Load a PyTorch state dict into ``model`` by torchvision-style module names.

    Parameters
    ----------
    model : convcore.Model
        A built model whose layers are named like the torch modules (``conv1``,
        ``layer1.0.bn1``, ``features.0``), or mapped with ``name_map``.
    path_or_state_dict : str, os.PathLike or dict
        A ``.pth`` / ``.pt`` / ``.bin`` / ``.safetensors`` file (see
        :func:`load_state_dict`), or a dict of arrays (numpy, or anything with
        ``.numpy()`` such as torch tensors on the CPU).
    name_map : dict or callable, optional
        convcore layer name (or its dotted path inside nested models) -> torch module
        prefix; or a callable taking the dotted path and returning the prefix. ``None``
        as a prefix: the layer takes nothing from the file (neither missing nor loaded).
    skip_mismatch : bool
        Skip (with a warning) layers whose tensors have other shapes, instead of
        raising, as Keras's ``load_weights(skip_mismatch=True)``.
    strict : bool
        As torch's ``load_state_dict(strict=)``: a key of the file that no layer takes,
        or a weight of the model that the file lacks, is an error; with
        ``strict=False`` those are ignored (the weight keeps its value).
        ``num_batches_tracked`` is always ignored.

    Returns
    -------
    dict
        ``{"missing_keys": [...], "unexpected_keys": [...]}`` (empty under ``strict=True``).

    The model is either fully loaded or unchanged: every key and shape is checked
    before anything is assigned.
    """
    from ..models import Model
    if not isinstance(model, Model) and not hasattr(model, "weights"):
        raise TypeError(f"load_torch_weights expects a convcore Model, got {type(model).__name__}")
    if isinstance(path_or_state_dict, dict):
        state = collections.OrderedDict()
        for k, v in path_or_state_dict.items():
            if not isinstance(k, str):
                raise TypeError(f"a state dict's keys are strings, got {k!r:.80}")
            a = v.detach().cpu().numpy() if hasattr(v, "detach") else v.numpy() if hasattr(v, "numpy") else v
            a = np.asarray(a)
            if a.dtype.kind not in "biuf":
                raise TypeError(f"state dict entry {k!r} has dtype {a.dtype}; expected numeric tensors")
            state[k] = a
        source = "the state dict"
    elif isinstance(path_or_state_dict, (str, os.PathLike)):
        state = load_state_dict(path_or_state_dict)
        source = os.fspath(path_or_state_dict)
    else:
        raise TypeError(f"load_torch_weights expects a file path or a state dict (a dict of arrays), got "
                        f"{type(path_or_state_dict).__name__}")
    if not model.weights:
        raise ValueError(f"load_torch_weights: model {model.name!r} has no weights yet; build it (give it an Input) "
                         "before loading a state dict")
    slots = _slots(model, name_map, list(state))
    state = _strip_module(state, slots)
    keys_seen, plan, missing, skipped = set(), [], [], set()
    for s in slots:
        if s.key in keys_seen:
            raise ValueError(f"load_torch_weights: two weights of model {model.name!r} take {s.key!r} (layer "
                             f"{s.layer.name!r}); give them distinct names or a name_map")
        keys_seen.add(s.key)
        if s.key not in state:
            missing.append(s)
            continue
        a = state[s.key]
        if tuple(a.shape) != s.torch_shape:
            msg = (f"layer {s.layer.name!r} ({type(s.layer).__name__}): weight {s.var.name!r} of shape "
                   f"{tuple(s.var.shape)} takes torch tensor {s.key!r} of shape {s.torch_shape}, but {source} has "
                   f"shape {tuple(a.shape)}")
            if skip_mismatch:
                warnings.warn(f"Skipping loading weights for {msg}", stacklevel=2)
                skipped.add(id(s.layer))
                continue
            raise ValueError(f"load_torch_weights: {msg}")
        if a.dtype.kind not in "biuf":
            raise ValueError(f"load_torch_weights: {s.key!r} has dtype {a.dtype}; expected a numeric tensor")
        plan.append((s, a))
    unexpected = [k for k in state if k not in keys_seen and not k.endswith("num_batches_tracked")]
    if strict and missing:
        s = missing[0]
        near = [k for k in state if k.startswith(s.key.rsplit(".", 1)[0] + ".")] or list(state)[:5]
        raise ValueError(f"load_torch_weights: {source} has no {s.key!r} for layer {s.layer.name!r} "
                         f"({type(s.layer).__name__}, weight {s.var.name!r} of shape {tuple(s.var.shape)}); "
                         f"{len(missing)} weight(s) missing (its keys include {', '.join(map(repr, near[:5]))}; "
                         "name the layers like the torch modules, pass name_map, or strict=False)")
    if strict and unexpected:
        raise ValueError(f"load_torch_weights: {source}'s {unexpected[0]!r} matches no weight of model "
                         f"{model.name!r} ({len(unexpected)} unexpected key(s); pass name_map, or strict=False to "
                         "ignore them)")
    # Everything is checked: the conversions and assignments below cannot fail. Each
    # tensor is dropped once assigned (a file's state dict is ours), so the peak is the
    # model plus the file's tensors, not two copies of them.
    owned = not isinstance(path_or_state_dict, dict)
    for i, (s, a) in enumerate(plan):
        plan[i] = None
        if owned:
            state.pop(s.key, None)
        if id(s.layer) in skipped:
            continue
        v = s.to_keras(a)  # a view where it can be: assign copies it into the variable once
        del a
        s.var.assign(v if v.dtype == np.dtype(s.var.dtype) else v.astype(s.var.dtype))
        del v
    return {"missing_keys": [s.key for s in missing], "unexpected_keys": unexpected}
