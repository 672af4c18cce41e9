"""ReduceLROnPlateau: multiply the optimizer's learning rate by ``factor`` when a
monitored value stops improving (Keras 3.15's counting, cooldown and floor)."""
from __future__ import annotations

import warnings

import numpy as np

from .. import _checks
from .monitor import MonitorCallback


def _lr_of(optimizer):
    if not hasattr(optimizer, "learning_rate"):
        raise ValueError(f"the optimizer {optimizer!r} has no learning_rate attribute")
    lr = optimizer.learning_rate
    return float(lr.numpy() if hasattr(lr, "numpy") else lr)


class ReduceLROnPlateau(MonitorCallback):
    """Reduce the learning rate when ``monitor`` has stopped improving, as
    ``keras.callbacks.ReduceLROnPlateau``: after ``patience`` epochs without an
    improvement larger than ``min_delta``, ``lr = max(lr * factor, min_lr)``, then
    ``cooldown`` epochs in which epochs without improvement are not counted. Each
    epoch's logs get ``learning_rate`` (the rate before this epoch's reduction). As in
    Keras, the floor is compared in float32 (Keras keeps the rate in a float32
    variable). tf.keras 2's ``epsilon=`` is accepted as ``min_delta``.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0, **kwargs):
        if "epsilon" in kwargs:
            min_delta = kwargs.pop("epsilon")
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau: unexpected argument(s) {', '.join(sorted(kwargs))}; valid "
                            "arguments are monitor, factor, patience, verbose, mode, min_delta, cooldown, min_lr")
        super().__init__(monitor, mode, min_delta=min_delta)
        factor = _checks.real("ReduceLROnPlateau", "factor", factor)
        if not 0.0 <= factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0 (or < 0). Received factor={factor}")
        self.factor = factor
        self.min_lr = _checks.real("ReduceLROnPlateau", "min_lr", min_lr, minimum=0.0)
        self.patience = _checks.integer("ReduceLROnPlateau", "patience", patience, minimum=0)
        self.verbose = _checks.integer("ReduceLROnPlateau", "verbose", verbose, minimum=0)
        self.cooldown = _checks.integer("ReduceLROnPlateau", "cooldown", cooldown, minimum=0)
        self.cooldown_counter = 0
        self.wait = 0

    def _reset(self):
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def _reduce_optimizer_lr(self, optimizer, epoch):
        old_lr = _lr_of(optimizer)
        if np.float32(old_lr) > np.float32(self.min_lr):
            new_lr = max(old_lr * self.factor, self.min_lr)
            optimizer.learning_rate = new_lr
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.", flush=True)
            return True
        return False

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        logs["learning_rate"] = _lr_of(self.model.optimizer)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(list(logs.keys()))}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce_optimizer_lr(self.model.optimizer, epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def get_config(self):
        return {**self._config(), "factor": self.factor, "patience": self.patience, "verbose": self.verbose,
                "cooldown": self.cooldown, "min_lr": self.min_lr}
