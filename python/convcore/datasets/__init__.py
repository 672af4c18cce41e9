"""Datasets with ``keras.datasets``' names and ``load_data`` contracts: ``mnist``
(the full 60,000 / 10,000 ``mnist.npz``), ``fashion_mnist``, ``cifar10``, ``cifar100``
— read from Keras's cache (``~/.keras/datasets`` or ``$KERAS_HOME/datasets``, so files
Keras downloaded are used), downloaded there when absent — and ``mnist10k``, the
10,000 real MNIST digits shipped inside convcore (8,000 / 2,000; no file, no network).
"""
from . import cifar10, cifar100, fashion_mnist, mnist, mnist10k

__all__ = ["mnist", "mnist10k", "fashion_mnist", "cifar10", "cifar100"]
