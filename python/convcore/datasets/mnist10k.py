"""The 10,000 real MNIST digits shipped inside convcore (no download, no file needed):
``load_data()`` returns the first 8,000 for training and the last 2,000 for testing,
as uint8 images (N, 28, 28) and uint8 labels — Keras's ``mnist.load_data`` contract
on a smaller set. The digits are the test set of the original MNIST distribution
(MIT licence in ``convcore/data/mnist10k.LICENSE``). For the full 60,000 / 10,000
dataset use :func:`convcore.datasets.mnist.load_data`.
"""
from __future__ import annotations

from importlib import resources

import numpy as np

N_TRAIN = 8000

__all__ = ["load_data", "N_TRAIN"]


def load_data():
    """``((x_train, y_train), (x_test, y_test))``: (8000, 28, 28) and (2000, 28, 28)
    uint8 images, uint8 labels 0-9."""
    with resources.files("convcore").joinpath("data/mnist10k.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as z:
            x, y = z["x"], z["y"]
    return (x[:N_TRAIN], y[:N_TRAIN]), (x[N_TRAIN:], y[N_TRAIN:])
