"""Datasets: ``convcore.datasets.mnist.load_data()`` as in Keras."""
from . import mnist

__all__ = ["mnist"]
