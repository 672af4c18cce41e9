"""CIFAR-100, as ``keras.datasets.cifar100``: ``load_data(label_mode='fine')`` returns
50,000 training and 10,000 test colour images, uint8 (N, 32, 32, 3) (channels last),
with int64 labels (N, 1): the 100 'fine' classes, or the 20 'coarse' superclasses.

Where the data comes from: ``path=`` (convcore's addition) — a folder holding
``cifar-100-python/`` (or ``train`` / ``test`` themselves), or the
``cifar-100-python.tar.gz`` archive (read in memory); else Keras's cache: the folder
Keras extracted (``cifar-100-python-target/cifar-100-python/``), a
``cifar-100-python/`` folder, or the archive saved as ``cifar-100-python.tar.gz``
(sha256 checked); else downloaded from Keras's origin through
:func:`convcore.utils.get_file`. The pickles are read with
:class:`convcore.datasets.cifar.RestrictedUnpickler` (only numpy arrays).
"""
from __future__ import annotations

import numpy as np

from .cifar import locate

__all__ = ["load_data", "ORIGIN", "SHA256"]

# keras/src/datasets/cifar100.py (Keras 3.15)
ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
SHA256 = "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7"


def load_data(label_mode="fine", path=None):
    """``((x_train, y_train), (x_test, y_test))``: uint8 (N, 32, 32, 3) images and
    int64 (N, 1) labels of ``label_mode`` ('fine' or 'coarse')."""
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f'`label_mode` must be one of `"fine"`, `"coarse"`. Received: label_mode={label_mode}.')
    (x_train, y_train), (x_test, y_test) = locate(
        path, "cifar-100-python", "cifar-100-python.tar.gz", "cifar-100-python-target", ("train", "test"),
        ORIGIN, SHA256, f"{label_mode}_labels")
    y_train = np.reshape(y_train, (len(y_train), 1))
    y_test = np.reshape(y_test, (len(y_test), 1))
    return (x_train.transpose(0, 2, 3, 1), y_train), (x_test.transpose(0, 2, 3, 1), y_test)
