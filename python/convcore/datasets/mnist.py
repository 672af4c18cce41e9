"""MNIST handwritten digits, with Keras's ``load_data`` contract.

``load_data()`` with no argument returns the 10,000 real MNIST digits shipped inside
the package (first 8,000 for training, last 2,000 for testing; MIT licence in
``convcore/data/mnist10k.LICENSE``). ``load_data(path)`` reads the full dataset from
the standard ``mnist.npz`` (keys x_train, y_train, x_test, y_test) or from a folder
holding the four IDX files (``train-images-idx3-ubyte`` etc., optionally ``.gz``).
Nothing is downloaded.
"""
from __future__ import annotations

import gzip
import os
from importlib import resources

import numpy as np

N_TRAIN = 8000


def load_data(path=None):
    """``((x_train, y_train), (x_test, y_test))``: uint8 images (N, 28, 28), uint8 labels."""
    if path is None:
        with resources.files("convcore").joinpath("data/mnist10k.npz").open("rb") as f:
            with np.load(f, allow_pickle=False) as z:
                x, y = z["x"], z["y"]
        return (x[:N_TRAIN], y[:N_TRAIN]), (x[N_TRAIN:], y[N_TRAIN:])
    path = os.fspath(path)
    if os.path.isdir(path):
        return _load_idx_dir(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"mnist.load_data: {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = ("x_train", "y_train", "x_test", "y_test")
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise ValueError(f"mnist.load_data: {path} lacks {missing} (found {z.files})")
            return (z["x_train"], z["y_train"]), (z["x_test"], z["y_test"])
    except (OSError, EOFError) as e:
        raise ValueError(f"mnist.load_data: {path} is not a readable .npz file: {e}") from None


def _find(folder, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"mnist.load_data: {stem}[.gz] not found in {folder}")


def read_idx(path):
    """Read one IDX file (the format of the original MNIST distribution)."""
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
