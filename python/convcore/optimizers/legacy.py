"""tf.keras 2's ``tf.keras.optimizers.legacy``: the same classes as ``convcore.optimizers``
(which take the legacy ``lr=`` and ``decay=`` arguments), so notebooks importing the
legacy optimizers run unchanged."""
from .algorithms import SGD, Adadelta, Adagrad, Adam, Adamax, Nadam, RMSprop
from .base_optimizer import Optimizer

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam"]
