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
    """``{"class_name", "config"}`` of a layer (Keras's layer serialization)."""
    from ..saving import serialize_keras_object
    return serialize_keras_object(layer)


def deserialize(d, custom_objects=None):
    """The layer of ``serialize(layer)``; user classes come from the registry,
    ``custom_objects`` or a ``custom_object_scope``."""
    from ..saving import deserialize_keras_object
    obj = deserialize_keras_object(d, custom_objects)  # Lambda finds its function through the scope
    if not isinstance(obj, Layer):
        raise ValueError(f"{d.get('class_name')!r} is not a layer class")
    return obj
