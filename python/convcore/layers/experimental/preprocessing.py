"""tf.keras 2's ``tf.keras.layers.experimental.preprocessing``: the preprocessing and
augmentation layers under their old import path. These are the classes of
:mod:`convcore.layers` themselves (``layers.experimental.preprocessing.Rescaling is
layers.Rescaling``), with Keras 3's meaning where tf.keras 2 differed."""
from ..augmentation import RandomBrightness, RandomContrast, RandomFlip, RandomRotation, RandomTranslation, RandomZoom
from ..preprocessing import CenterCrop, Normalization, RandomCrop, Rescaling, Resizing

__all__ = ["CenterCrop", "Normalization", "RandomBrightness", "RandomContrast", "RandomCrop", "RandomFlip",
           "RandomRotation", "RandomTranslation", "RandomZoom", "Rescaling", "Resizing"]
