"""tf.keras 2.9-2.11's ``tf.keras.optimizers.experimental``: the same classes as
``convcore.optimizers`` (Keras 3's optimizers), under their old import path."""
from .algorithms import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, Lion, Nadam, RMSprop
from .base_optimizer import Optimizer

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Lion"]
