"""MNIST handwritten digits, as ``keras.datasets.mnist``: ``load_data()`` returns the
full 60,000 training and 10,000 test digits from the standard ``mnist.npz`` (keys
x_train, y_train, x_test, y_test; uint8 images (N, 28, 28), uint8 labels).

Where the file comes from: ``path`` is Keras's — a file name looked up in Keras's
cache, ``$KERAS_HOME/datasets/`` or ``~/.keras/datasets/`` (so a file Keras downloaded
is used), and downloaded there from Keras's origin when absent, its sha256 checked
(:func:`convcore.utils.get_file`). convcore also takes a path with a folder in it (or a
``pathlib.Path``): that file is read as it is (Keras refuses paths), either an
``mnist.npz`` or a folder holding the four IDX files of the original distribution
(``train-images-idx3-ubyte`` etc., optionally ``.gz``). Offline, a missing file raises
:class:`convcore.utils.file_utils.DownloadError` naming the URL and the path to put
the file at.

The 10,000 digits shipped inside convcore (no file needed) are
:func:`convcore.datasets.mnist10k.load_data`.
"""
from __future__ import annotations

import gzip
import os

import numpy as np

__all__ = ["load_data", "read_idx", "ORIGIN", "SHA256"]

# keras/src/datasets/mnist.py (Keras 3.15)
ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"


def _is_path(path):
    """A path with a folder in it (read as it is) rather than a name in the cache."""
    if isinstance(path, os.PathLike):
        return True
    return os.path.isabs(path) or os.sep in path or bool(os.altsep and os.altsep in path)


def load_data(path="mnist.npz"):
    """``((x_train, y_train), (x_test, y_test))``: uint8 images (N, 28, 28), uint8
    labels; 60,000 / 10,000 for the standard file. See the module docstring for
    ``path``."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"mnist.load_data: path must be a file name or a path, received path={path!r} "
                        f"(of type {type(path).__name__})")
    if not path:
        raise ValueError("mnist.load_data: path must not be empty (Keras's default is 'mnist.npz')")
    if _is_path(path):
        path = os.fspath(path)
        if os.path.isdir(path):
            return _load_idx_dir(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"mnist.load_data: {path} does not exist")
        return _load_npz(path)
    from ..utils.file_utils import cache_folder, get_file
    cached = os.path.join(cache_folder("datasets"), path)
    if os.path.isdir(cached):  # the IDX files in a folder of the cache
        return _load_idx_dir(cached)
    return _load_npz(get_file(fname=path, origin=ORIGIN, file_hash=SHA256))


def _load_npz(path):
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError) as e:
        raise ValueError(f"mnist.load_data: {path} is not a readable .npz file: {e}") from None
    if not hasattr(z, "files"):
        raise ValueError(f"mnist.load_data: {path} is a .npy array, not an .npz archive")
    with z:
        keys = ("x_train", "y_train", "x_test", "y_test")
        missing = [k for k in keys if k not in z.files]
        if missing:
            raise ValueError(f"mnist.load_data: {path} lacks {missing} (found {z.files})")
        return (z["x_train"], z["y_train"]), (z["x_test"], z["y_test"])


def _find(folder, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"mnist.load_data: {stem}[.gz] not found in {folder}")


def read_idx(path):
    """Read one IDX file (the format of the original MNIST distribution; ``.gz``
    compressed when the name ends so)."""
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    start = 4 + 4 * ndim
    n = int(np.prod(dims))
    if len(data) - start != n:
        raise ValueError(f"{path}: expected {n} bytes of data for shape {dims}, found {len(data) - start}")
    return np.frombuffer(data, dtype=np.uint8, offset=start).reshape(dims)


def _load_idx_dir(folder):
    x_train = read_idx(_find(folder, "train-images-idx3-ubyte"))
    y_train = read_idx(_find(folder, "train-labels-idx1-ubyte"))
    x_test = read_idx(_find(folder, "t10k-images-idx3-ubyte"))
    y_test = read_idx(_find(folder, "t10k-labels-idx1-ubyte"))
    return (x_train, y_train), (x_test, y_test)
