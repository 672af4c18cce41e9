"""Keras-style layers. Each layer's forward and backward arithmetic runs in Rust
(``convcore._core``); the classes here hold weights, shapes and configuration.

Tensors are channels-last, as in Keras: ``(batch, steps, channels)`` for 1-D,
``(batch, height, width, channels)`` for 2-D, ``(batch, depth, height, width,
channels)`` for 3-D. Shapes given to and returned by layers exclude the batch axis.
"""
from __future__ import annotations

import re

import numpy as np

from .. import _core, activations, backend, initializers
from .core import InputSpecError, KerasTensor, Layer, Node, Input, InputLayer
from .conv import Conv1D, Conv2D, Conv3D
from .pooling import (AveragePooling1D, AveragePooling2D, AveragePooling3D, GlobalAveragePooling1D,
                      GlobalAveragePooling2D, GlobalAveragePooling3D, GlobalMaxPooling1D,
                      GlobalMaxPooling2D, GlobalMaxPooling3D, MaxPooling1D, MaxPooling2D, MaxPooling3D)
from .basic import Activation, Dense, Dropout, Flatten, ReLU, Reshape, Softmax
from .normalization import BatchNormalization
from .merge import Add, Concatenate
from .augmentation import RandomFlip, RandomTranslation, RandomRotation, RandomZoom, RandomContrast, RandomBrightness

__all__ = [
    "Layer", "Input", "InputLayer", "KerasTensor", "Dense", "Conv1D", "Conv2D", "Conv3D",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "Flatten", "Reshape",
    "Activation", "ReLU", "Softmax", "BatchNormalization", "Dropout", "Add", "Concatenate",
    "RandomFlip", "RandomTranslation", "RandomRotation", "RandomZoom", "RandomContrast", "RandomBrightness",
    "deserialize", "serialize",
]


def serialize(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(d):
    cls = Layer.registry().get(d.get("class_name"))
    if cls is None:
        raise ValueError(f"Unknown layer class {d.get('class_name')!r}; known: {', '.join(sorted(Layer.registry()))}")
    return cls.from_config(dict(d.get("config", {})))
