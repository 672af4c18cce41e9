"""CIFAR-10, as ``keras.datasets.cifar10``: ``load_data()`` returns 50,000 training
and 10,000 test colour images, uint8 (N, 32, 32, 3) (channels last), with uint8
labels (N, 1) in 0-9.

Where the data comes from: ``path=`` (convcore's addition) — a folder holding
``cifar-10-batches-py/`` (or the batches themselves), or the ``cifar-10-python.tar.gz``
archive (read in memory, nothing extracted); else Keras's cache
(``$KERAS_HOME/datasets/`` or ``~/.keras/datasets/``): the folder Keras extracted
(``cifar-10-batches-py-target/cifar-10-batches-py/``), a ``cifar-10-batches-py/``
folder, or the archive saved as ``cifar-10-python.tar.gz`` (its sha256 checked); else
downloaded from Keras's origin through :func:`convcore.utils.get_file` (sha256
checked, extracted as Keras does). The batches are pickles, read with
:class:`convcore.datasets.cifar.RestrictedUnpickler` (only numpy arrays: a crafted
file runs nothing). Keras fills a fixed 50,000-sample training array; convcore takes
the batches' own sizes.
"""
from __future__ import annotations

import numpy as np

from .cifar import locate

__all__ = ["load_data", "ORIGIN", "SHA256"]

# keras/src/datasets/cifar10.py (Keras 3.15)
ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
NAMES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def load_data(path=None):
    """``((x_train, y_train), (x_test, y_test))``: uint8 (N, 32, 32, 3) images and
    uint8 (N, 1) labels. See the module docstring for ``path``."""
    batches = locate(path, "cifar-10-batches-py", "cifar-10-python.tar.gz", "cifar-10-batches-py-target", NAMES,
                     ORIGIN, SHA256, "labels")
    x_train = np.concatenate([d for d, _ in batches[:5]]).astype(np.uint8, copy=False)
    y_train = np.concatenate([np.asarray(lab, dtype=np.uint8) for _, lab in batches[:5]]).reshape(-1, 1)
    x_test, y_test = batches[5]
    y_test = np.reshape(y_test, (len(y_test), 1)).astype(np.uint8)
    return (x_train.transpose(0, 2, 3, 1), y_train), (x_test.transpose(0, 2, 3, 1).astype(np.uint8), y_test)
