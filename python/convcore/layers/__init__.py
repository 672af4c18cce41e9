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

# Each family module lists its public layers (and functional forms) in ``__all__``;
# this package exports them all, as ``keras.layers`` does.
from . import (activation as _activation, augmentation as _augmentation, basic as _basic, conv as _conv,
               merge as _merge, normalization as _normalization, pooling as _pooling,
               preprocessing as _preprocessing, regularization as _regularization, reshaping as _reshaping)

_FAMILIES = (_basic, _conv, _pooling, _normalization, _regularization, _activation, _merge, _reshaping,
             _preprocessing, _augmentation)
for _m in _FAMILIES:
    for _n in _m.__all__:
        globals()[_n] = getattr(_m, _n)

from . import experimental  # tf.keras 2's layers.experimental.preprocessing path

__all__ = ["Layer", "Input", "InputLayer", "KerasTensor", "InputSpecError", "deserialize", "serialize"] + [
    n for m in _FAMILIES for n in m.__all__]


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
