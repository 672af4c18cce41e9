"""Utilities with ``keras.utils``'s names: ``to_categorical``, ``normalize``,
``pad_sequences``, ``set_random_seed``, ``plot_model`` / ``model_to_dot``, the image
files (``load_img``, ``img_to_array``, ``array_to_img``, ``save_img``, ``smart_resize``;
Pillow, imported when used), ``get_file`` (downloads into Keras's cache, ``~/.keras``
or ``$KERAS_HOME``, only when the file is not already there), the data pipelines
(``Sequence`` / ``PyDataset``, ``image_dataset_from_directory``, imported on first use)
and the serialization helpers (``register_keras_serializable``, ``custom_object_scope``, ...)."""
from __future__ import annotations

import random as _random

import numpy as np

from .model_visualization import model_to_dot, plot_model
from .file_utils import get_file
from .image_utils import array_to_img, img_to_array, load_img, save_img, smart_resize
from .numerical_utils import normalize, to_categorical
from .sequence_utils import pad_sequences

__all__ = ["to_categorical", "normalize", "pad_sequences", "set_random_seed", "plot_model", "model_to_dot", "clear_session",
           "is_keras_tensor", "register_keras_serializable", "custom_object_scope", "CustomObjectScope",
           "get_registered_object", "get_registered_name", "serialize_keras_object", "deserialize_keras_object",
           "load_img", "img_to_array", "array_to_img", "save_img", "smart_resize", "get_file",
           "Sequence", "PyDataset", "image_dataset_from_directory"]


def set_random_seed(seed):
    """Seed Python's ``random``, numpy's global generator and convcore's own
    (:func:`convcore.set_seed`: initializers, shuffling, dropout), as
    ``keras.utils.set_random_seed``."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"Expected `seed` argument to be an integer. Received: seed={seed!r} (of type "
                         f"{type(seed)})")
    if not 0 <= seed < 2 ** 32:
        raise ValueError(f"set_random_seed: seed must be in [0, 2**32), received seed={seed}")
    from .. import backend
    _random.seed(int(seed))
    np.random.seed(int(seed))
    backend.set_seed(int(seed))


def clear_session(free_memory=True):
    """:func:`convcore.backend.clear_session`."""
    from .. import backend
    backend.clear_session(free_memory)


def is_keras_tensor(x):
    """:func:`convcore.backend.is_keras_tensor`."""
    from .. import backend
    return backend.is_keras_tensor(x)


def get_registered_name(obj):
    """The name ``obj`` is registered (or would be saved) under."""
    from ..saving.object_registration import registered_name
    return registered_name(obj)


def __getattr__(name):
    # the saving helpers, imported on first use (saving imports the layers, which
    # import this package through the initializers)
    if name in ("register_keras_serializable", "custom_object_scope", "get_registered_object"):
        from ..saving import object_registration
        return getattr(object_registration, name)
    if name == "CustomObjectScope":
        from ..saving.object_registration import custom_object_scope
        return custom_object_scope
    if name in ("serialize_keras_object", "deserialize_keras_object"):
        from ..saving import saving_lib
        return getattr(saving_lib, name)
    if name in ("Sequence", "PyDataset"):
        # the data pipelines, imported on first use (they import the trainers' helpers)
        from . import py_dataset
        return getattr(py_dataset, name)
    if name == "image_dataset_from_directory":
        from . import image_dataset_utils
        return image_dataset_utils.image_dataset_from_directory
    raise AttributeError(f"module 'convcore.utils' has no attribute {name!r}")
