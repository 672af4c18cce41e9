"""Reading the CIFAR-10 / CIFAR-100 batches (Python pickles) without running code.

The batches of ``cifar-10-python.tar.gz`` and ``cifar-100-python.tar.gz`` are pickled
dicts (bytes keys from Python 2: ``data``, a uint8 array (N, 3072); ``labels`` or
``fine_labels`` / ``coarse_labels``, lists of ints; ``filenames``, ``batch_label``).
:class:`RestrictedUnpickler` admits exactly the globals those need — ``numpy.ndarray``,
``numpy.dtype`` and ``multiarray._reconstruct`` (numpy 1's ``numpy.core`` and numpy
2's ``numpy._core`` spellings) — and refuses any other (``os.system``,
``builtins.eval``, ...) with a ``pickle.UnpicklingError`` before it is called, so a
crafted file runs nothing. This is the set Keras 3.15's own ``RestrictedUnpickler``
admits.
"""
from __future__ import annotations

import os
import pickle
import tarfile

import numpy as np

__all__ = ["RestrictedUnpickler", "RefusedPickle", "load_batch", "read_batches", "find_folder"]


def _reconstruct():
    core = getattr(np, "_core", None)
    if core is not None:
        from numpy._core import multiarray
    else:  # numpy 1
        from numpy.core import multiarray
    return multiarray._reconstruct


class RefusedPickle(pickle.UnpicklingError):
    """A global (or persistent id) the restricted unpickler does not admit."""


class RestrictedUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` whose ``find_class`` returns only ``numpy.ndarray``,
    ``numpy.dtype`` and ``numpy[._]core.multiarray._reconstruct``; any other global is a
    ``pickle.UnpicklingError`` (:class:`RefusedPickle`) naming it."""

    _ALLOWED = frozenset({("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                          ("numpy._core.multiarray", "_reconstruct")})

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise RefusedPickle(f"Refusing to deserialize `{module}.{name}` while loading a dataset: "
                                         "the CIFAR batches hold only numpy arrays, lists, ints and strings. "
                                         "The file may be corrupted or malicious.")
        if name == "ndarray":
            return np.ndarray
        if name == "dtype":
            return np.dtype
        return _reconstruct()

    def persistent_load(self, pid):
        raise RefusedPickle("Refusing to deserialize a persistent id while loading a dataset")


def _unpickle(f, where):
    try:
        d = RestrictedUnpickler(f, encoding="bytes").load()
    except RefusedPickle:
        raise
    except Exception as e:  # truncated / not a pickle
        raise ValueError(f"{where}: not a readable CIFAR batch ({type(e).__name__}: {e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{where}: a CIFAR batch is a dict, found {type(d).__name__}")
    return {(k.decode("utf8") if isinstance(k, bytes) else k): v for k, v in d.items()}


def _decode(d, label_key, where):
    if "data" not in d or label_key not in d:
        raise ValueError(f"{where}: a CIFAR batch needs the keys 'data' and {label_key!r}, found {sorted(d)}")
    data, labels = d["data"], d[label_key]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{where}: 'data' must be a uint8 array (N, 3072), found "
                         f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}")
    if not isinstance(labels, (list, np.ndarray)) or len(labels) != data.shape[0]:
        raise ValueError(f"{where}: {label_key!r} must be a list of {data.shape[0]} labels, found "
                         f"{type(labels).__name__} of length {len(labels) if hasattr(labels, '__len__') else '?'}")
    return data.reshape(data.shape[0], 3, 32, 32), labels


def load_batch(fpath, label_key="labels"):
    """One CIFAR batch file: ``(data, labels)``, data uint8 (N, 3, 32, 32), labels the
    stored list — as ``keras.src.datasets.cifar.load_batch``, with the restricted
    unpickler."""
    fpath = os.fspath(fpath)
    with open(fpath, "rb") as f:
        return _decode(_unpickle(f, fpath), label_key, fpath)


def find_folder(root, inner, marker):
    """``root`` itself when it holds ``marker``, else ``root/inner`` when that does; None otherwise."""
    if os.path.isfile(os.path.join(root, marker)):
        return root
    sub = os.path.join(root, inner)
    if os.path.isfile(os.path.join(sub, marker)):
        return sub
    return None


def read_batches(source, inner, names, label_key):
    """``[(data, labels), ...]`` for ``names`` from a folder (holding them, or holding
    ``inner/`` holding them) or from a tar archive (members ``inner/<name>``, read in
    memory: nothing is extracted)."""
    source = os.fspath(source)
    if os.path.isdir(source):
        folder = find_folder(source, inner, names[0])
        if folder is None:
            raise FileNotFoundError(f"{source} holds neither {names[0]} nor {inner}/{names[0]}")
        return [load_batch(os.path.join(folder, n), label_key) for n in names]
    if not tarfile.is_tarfile(source):
        raise ValueError(f"{source} is neither a folder nor a tar archive")
    out = []
    with tarfile.open(source) as tar:
        members = {m.name.lstrip("./"): m for m in tar.getmembers() if m.isfile()}
        for n in names:
            m = members.get(f"{inner}/{n}") or members.get(n)
            if m is None:
                raise FileNotFoundError(f"{source} has no member {inner}/{n}")
            where = f"{source}:{m.name}"
            out.append(_decode(_unpickle(tar.extractfile(m), where), label_key, where))
    return out


def locate(path, inner, archive_name, target_name, names, origin, sha256, label_key):
    """The batches from ``path`` (a folder or the archive), else from Keras's cache
    (the folder Keras extracted, ``datasets/<target_name>/<inner>``; a folder
    ``datasets/<inner>``; the archive as ``datasets/<archive_name>``, its hash checked),
    else downloaded and extracted through ``get_file`` as Keras does."""
    if path is not None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"load_data: path must be a folder or the {archive_name} archive, received "
                            f"path={path!r}")
        if not os.path.exists(path):
            raise FileNotFoundError(f"load_data: {os.fspath(path)} does not exist (expected a folder holding "
                                    f"{inner}/ or the {archive_name} archive)")
        return read_batches(path, inner, names, label_key)
    from ..utils.file_utils import DownloadError, cache_folder, get_file, validate_file
    datasets = cache_folder("datasets")
    for folder in (os.path.join(datasets, target_name, inner), os.path.join(datasets, inner)):
        if os.path.isfile(os.path.join(folder, names[0])):
            return read_batches(folder, inner, names, label_key)
    archive = os.path.join(datasets, archive_name)
    if os.path.isfile(archive):
        if not validate_file(archive, sha256):
            raise ValueError(f"load_data: {archive} does not have the sha256 of {origin} ({sha256}); it is "
                             "incomplete or not the original archive")
        return read_batches(archive, inner, names, label_key)
    try:
        folder = get_file(fname=target_name, origin=origin, extract=True, file_hash=sha256)
    except DownloadError as e:
        raise DownloadError(f"{e} (the archive), or put it at {archive}, or its extracted folder {inner}/ at "
                            f"{os.path.join(datasets, inner)}", e.url, e.path) from None
    return read_batches(folder, inner, names, label_key)
