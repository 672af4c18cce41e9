"""EarlyStopping: stop ``fit`` when a monitored value stops improving (Keras 3.15's
exact decisions: patience counting, baseline, warm-up, restoring the best weights)."""
from __future__ import annotations

import warnings

from .. import _checks
from .monitor import MonitorCallback


class EarlyStopping(MonitorCallback):
    """Stop training when ``monitor`` has stopped improving, as
    ``keras.callbacks.EarlyStopping``.

    Each epoch from ``start_from_epoch`` on counts one towards ``patience`` unless the
    value improves on the best so far by more than ``min_delta`` (and, with a
    ``baseline``, also on the baseline); training stops at the end of the epoch where
    the count reaches ``patience`` (never at epoch 0). With
    ``restore_best_weights=True`` the weights of the best epoch are put back at the end
    of training, whether it stopped early or ran to its last epoch. A missing monitor
    is a warning and the epoch is skipped (as Keras).
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = _checks.integer("EarlyStopping", "patience", patience, minimum=0)
        self.verbose = _checks.integer("EarlyStopping", "verbose", verbose, minimum=0)
        self.baseline = None if baseline is None else _checks.real("EarlyStopping", "baseline", baseline,
                                                                   finite=False)
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = _checks.integer("EarlyStopping", "start_from_epoch", start_from_epoch, minimum=0)
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        # A callback object may serve several fits.
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # The first monitored epoch's weights are the best until one improves.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # The count restarts only when the value beats the baseline too.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping", flush=True)
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.", flush=True)
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                          f"Available metrics are: {','.join(list(logs.keys()))}", stacklevel=2)
        return value

    def get_config(self):
        return {**self._config(), "patience": self.patience, "verbose": self.verbose, "baseline": self.baseline,
                "restore_best_weights": self.restore_best_weights, "start_from_epoch": self.start_from_epoch}
