"""Fashion-MNIST, as ``keras.datasets.fashion_mnist``: ``load_data()`` returns 60,000
training and 10,000 test images of clothing, uint8 (N, 28, 28), with uint8 labels 0-9.

The four gzip'd IDX files (``train-labels-idx1-ubyte.gz``, ``train-images-idx3-ubyte.gz``,
``t10k-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz``) are read from Keras's
cache folder ``$KERAS_HOME/datasets/fashion-mnist/`` (or ``~/.keras/...``), each one
downloaded there from Keras's origin when absent (Keras publishes no hash for them,
so none is checked, as in Keras). convcore adds ``path=``: a folder holding the four
files (``.gz`` or not), read without the cache. The IDX headers are checked (Keras
skips them unread).
"""
from __future__ import annotations

import os

__all__ = ["load_data", "ORIGIN", "FILES"]

# keras/src/datasets/fashion_mnist.py (Keras 3.15)
ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz")


def load_data(path=None):
    """``((x_train, y_train), (x_test, y_test))``: uint8 images (N, 28, 28), uint8 labels."""
    from .mnist import _find, read_idx
    if path is not None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"fashion_mnist.load_data: path must be a folder, received path={path!r}")
        folder = os.fspath(path)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"fashion_mnist.load_data: {folder} is not a folder (expected one holding "
                                    f"{', '.join(FILES)})")
        paths = [_find(folder, f[:-3]) for f in FILES]
    else:
        from ..utils.file_utils import get_file
        dirname = os.path.join("datasets", "fashion-mnist")
        paths = [get_file(f, origin=ORIGIN + f, cache_subdir=dirname) for f in FILES]
    y_train, x_train, y_test, x_test = (read_idx(p) for p in paths)
    for x, y, p in ((x_train, y_train, paths[1]), (x_test, y_test, paths[3])):
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"fashion_mnist.load_data: {p} holds images of shape {x.shape} for {y.shape} labels; "
                             "expected (N, 28, 28) images and N labels")
    return (x_train, y_train), (x_test, y_test)
