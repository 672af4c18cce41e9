"""tf.keras 2's ``layers.experimental`` namespace, for notebooks written against
``tf.keras.layers.experimental.preprocessing``: its ``preprocessing`` module holds the
same classes as :mod:`convcore.layers` (Keras 3 has no such namespace)."""
from . import preprocessing

__all__ = ["preprocessing"]
