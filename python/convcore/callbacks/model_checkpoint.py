"""ModelCheckpoint: save the model (or its weights) every epoch or every N batches,
or only when a monitored value improves; file names formatted from the epoch and the
logs (``'ckpt-{epoch:02d}-{val_loss:.2f}.keras'``)."""
from __future__ import annotations

import os
import warnings

import numpy as np

from .. import _checks
from .callback import _positive_int_or_epoch, _save_freq_reached
from .monitor import MonitorCallback, _real_or_none


class ModelCheckpoint(MonitorCallback):
    """Save the model or its weights, as ``keras.callbacks.ModelCheckpoint``.

    ``filepath`` is formatted with ``epoch`` (1-based), ``batch`` (1-based, when
    ``save_freq`` is a number of batches) and the keys of the logs, as Keras does
    (``str.format``). ``save_best_only`` writes only when ``monitor`` improves on the
    best so far (``initial_value_threshold`` is the first reference); a missing
    monitor is a warning and the model is saved. ``save_freq='epoch'`` saves at the
    end of each epoch, an integer every that many batches (counted across epochs).
    The parent folder is created. Writes are atomic (convcore's save).

    Deviation: Keras requires ``.keras`` / ``.h5`` (model) or ``.weights.h5``
    (weights) endings; convcore writes its own formats under any name, so those
    Keras names work and so do others (``.convcore``, ``.npz``).
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__(monitor, mode, _real_or_none("ModelCheckpoint", "initial_value_threshold",
                                                       initial_value_threshold))
        if not isinstance(filepath, (str, os.PathLike)):
            raise TypeError(f"ModelCheckpoint: filepath must be a path (str or os.PathLike), received "
                            f"filepath={filepath!r}")
        self.filepath = os.fspath(filepath)
        self.verbose = _checks.integer("ModelCheckpoint", "verbose", verbose, minimum=0)
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.save_freq = _positive_int_or_epoch("ModelCheckpoint", "save_freq", save_freq)
        self.initial_value_threshold = self.best
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = None
        self._current_epoch = 0

    def _wants_batch_logs(self):
        return self.save_freq != "epoch"

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model(epoch=self._current_epoch, batch=batch, logs=logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.save_freq == "epoch":
            self._save_model(epoch=epoch, batch=None, logs=logs)

    def _should_save_on_batch(self, batch):
        return _save_freq_reached(self, batch)

    def _should_save_model(self, epoch, batch, logs, filepath):
        logs = logs or {}
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}", flush=True)
            return True
        if self.monitor_op is None:
            self._set_monitor_op()
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=3)
            return True
        if isinstance(current, np.ndarray) and current.ndim > 0:
            warnings.warn(f"Can save best model only when `monitor` is a scalar value. Received: {current}. "
                          "Falling back to `save_best_only=False`.", stacklevel=3)
            return True
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_str} to {current:.5f}, saving "
                      f"model to {filepath}", flush=True)
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_str}", flush=True)
        return False

    def _save_model(self, epoch, batch, logs):
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, batch, logs, filepath):
            return
        if os.path.isdir(filepath):
            raise IOError(f"Please specify a non-directory filepath for ModelCheckpoint. Filepath used is an "
                          f"existing directory: {filepath}")
        folder = os.path.dirname(filepath)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}", flush=True)

    def _get_file_path(self, epoch, batch, logs):
        logs = logs or {}
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as e:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". Reason: {e} (the logs '
                           f"hold: epoch{', batch' if batch is not None else ''}"
                           f"{''.join(', ' + k for k in logs)})") from None

    def get_config(self):
        return {"filepath": self.filepath, "monitor": self.monitor, "verbose": self.verbose,
                "save_best_only": self.save_best_only, "save_weights_only": self.save_weights_only,
                "mode": self.mode, "save_freq": self.save_freq,
                "initial_value_threshold": self.initial_value_threshold}
