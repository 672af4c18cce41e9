"""``keras.preprocessing`` of Keras 3 (and tf.keras 2): the :mod:`image` module
(``ImageDataGenerator`` and its iterators, ``load_img`` / ``img_to_array`` /
``array_to_img`` / ``save_img`` / ``smart_resize``) and ``image_dataset_from_directory``.

Everything here is imported on first use, so ``import convcore`` stays light (no
Pillow, no pandas, no scipy).
"""
from __future__ import annotations

import importlib

__all__ = ["image", "image_dataset_from_directory"]


def __getattr__(name):
    if name == "image":
        return importlib.import_module(".image", __name__)
    if name == "image_dataset_from_directory":
        from ..utils.image_dataset_utils import image_dataset_from_directory
        return image_dataset_from_directory
    raise AttributeError(f"module 'convcore.preprocessing' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
