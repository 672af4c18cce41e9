"""Keras-style layers: each builds its weights and calls :mod:`convcore.ops`; the tape
differentiates them.

Tensors are channels-last, as in Keras: ``(batch, steps, channels)`` for 1-D,
``(batch, height, width, channels)`` for 2-D, ``(batch, depth, height, width,
channels)`` for 3-D. Shapes given to and returned by layers exclude the batch axis.
"""
from __future__ import annotations

import re

import numpy as np

from .core import InputSpecError, KerasTensor, Layer, Node, Input, InputLayer
from .conv import Conv1D, Conv2D, Conv3D
from .pooling import (AveragePooling1D, AveragePooling2D, AveragePooling3D, GlobalAveragePooling1D,
                      GlobalAveragePooling2D, GlobalAveragePooling3D, GlobalMaxPooling1D,
                      GlobalMaxPooling2D, GlobalMaxPooling3D, MaxPooling1D, MaxPooling2D, MaxPooling3D)
from .basic import Activation, Dense, Dropout, Flatten, Lambda, ReLU, Reshape, Softmax
from .normalization import BatchNormalization
from .merge import Add, Concatenate
from .reshaping import UpSampling2D
from .augmentation import RandomFlip, RandomTranslation, RandomRotation, RandomZoom, RandomContrast, RandomBrightness

__all__ = [
    "Layer", "Input", "InputLayer", "KerasTensor", "Dense", "Conv1D", "Conv2D", "Conv3D",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "Flatten", "Reshape",
    "Activation", "ReLU", "Lambda", "UpSampling2D", "Softmax", "BatchNormalization", "Dropout", "Add", "Concatenate",
    "RandomFlip", "RandomTranslation", "RandomRotation", "RandomZoom", "RandomContrast", "RandomBrightness",
    "deserialize", "serialize",
]


def serialize(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(d, custom_objects=None):
    name = d.get("class_name")
    cls = (custom_objects or {}).get(name) or Layer.registry().get(name)
    if cls is None:
        raise ValueError(f"Unknown layer class {d.get('class_name')!r}; known: {', '.join(sorted(Layer.registry()))}")
    cfg = dict(d.get("config", {}))
    if cls is Lambda or (isinstance(cls, type) and issubclass(cls, Lambda)):
        return cls.from_config(cfg, custom_objects)
    return cls.from_config(cfg)
