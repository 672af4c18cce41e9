"""LearningRateScheduler: set the optimizer's learning rate at the start of every
epoch from a function of the epoch (and of the current rate)."""
from __future__ import annotations

import inspect

import numpy as np

from .. import _checks
from .callback import Callback
from .reduce_lr_on_plateau import _lr_of


def _takes_lr(schedule):
    """Whether ``schedule`` accepts ``(epoch, lr)`` (Keras 3) rather than only
    ``(epoch)`` (tf.keras 1's form)."""
    try:
        sig = inspect.signature(schedule)
    except (TypeError, ValueError):
        return True
    try:
        sig.bind(0, 0.1)
        return True
    except TypeError:
        return False


class LearningRateScheduler(Callback):
    """At the start of each epoch set ``optimizer.learning_rate = schedule(epoch, lr)``
    (``schedule(epoch)`` also works), as ``keras.callbacks.LearningRateScheduler``.
    The schedule must return a float (a Python or numpy float; an int is refused, as
    Keras does). Each epoch's logs get ``learning_rate``.

    Deviation: Keras calls ``schedule(epoch, lr)`` and falls back to ``schedule(epoch)``
    on any TypeError (which also hides a TypeError raised inside a two-argument
    schedule); convcore chooses the form from the function's signature.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be a function of (epoch, lr) or (epoch), "
                            f"received schedule={schedule!r}")
        self.schedule = schedule
        self.verbose = _checks.integer("LearningRateScheduler", "verbose", verbose, minimum=0)
        self._two_args = _takes_lr(schedule)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if not hasattr(optimizer, "learning_rate"):
            raise ValueError('Optimizer must have a "learning_rate" attribute.')
        lr = self.schedule(epoch, _lr_of(optimizer)) if self._two_args else self.schedule(epoch)
        if hasattr(lr, "numpy") and not isinstance(lr, np.ndarray):
            lr = lr.numpy()
        if isinstance(lr, np.ndarray) and lr.ndim == 0:
            lr = lr[()]
        if not isinstance(lr, (float, np.floating)) or isinstance(lr, bool):
            raise ValueError(f"The output of the `schedule` function should be a float. Got: {lr}")
        if not np.isfinite(lr) or lr < 0:
            raise ValueError(f"LearningRateScheduler: the schedule returned {lr} at epoch {epoch}; a learning rate "
                             "is a finite number >= 0")
        optimizer.learning_rate = float(lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.", flush=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _lr_of(self.model.optimizer)

    def get_config(self):
        return {"schedule": self.schedule, "verbose": self.verbose}
