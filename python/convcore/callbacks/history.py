"""History: the logs of every epoch, returned by ``fit``."""
from __future__ import annotations

from .callback import Callback


class History(Callback):
    """Records the logs of every epoch: ``history.history['val_accuracy']``."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
