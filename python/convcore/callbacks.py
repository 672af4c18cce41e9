"""Callbacks for ``fit``: History, ProgbarLogger (the progress bar), EarlyStopping,
ModelCheckpoint (Keras semantics). Each hook receives Keras's ``logs`` dict."""
from __future__ import annotations

import sys
import time

import numpy as np


class Callback:
    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): ...
    def on_train_end(self, logs=None): ...
    def on_epoch_begin(self, epoch, logs=None): ...
    def on_epoch_end(self, epoch, logs=None): ...
    def on_train_batch_begin(self, batch, logs=None): ...
    def on_train_batch_end(self, batch, logs=None): ...

    def _wants_batch_logs(self):
        return type(self).on_train_batch_end is not Callback.on_train_batch_end


class CallbackList:
    """The callbacks of one ``fit``, called in order."""

    def __init__(self, callbacks, model, epochs, steps):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params({"epochs": epochs, "steps": steps, "verbose": getattr(cb, "verbose", 0)})

    def wants_batch_logs(self):
        return any(cb._wants_batch_logs() for cb in self.callbacks)

    def on_train_begin(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_train_end(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_end(logs)

    def on_epoch_begin(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        for cb in self.callbacks:
            cb.on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        for cb in self.callbacks:
            cb.on_train_batch_end(batch, logs)


class ProgbarLogger(Callback):
    """Keras-style progress: verbose=1 a live bar with ETA and running metrics,
    verbose=2 one line per epoch, verbose=0 nothing."""

    def __init__(self, verbose=1):
        super().__init__()
        self.verbose = int(verbose)

    def _wants_batch_logs(self):
        return self.verbose == 1

    def on_epoch_begin(self, epoch, logs=None):
        self.steps = self.params.get("steps", 1)
        self.epochs = self.params.get("epochs", 1)
        self.start = time.perf_counter()
        self.last = 0.0
        if self.verbose == 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)
        self.prefix = f"Epoch {epoch + 1}/{self.epochs} - " if self.verbose == 2 else ""

    @staticmethod
    def _fmt(logs):
        return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())

    def on_train_batch_end(self, batch, logs=None):
        if self.verbose != 1:
            return
        step = batch + 1
        now = time.perf_counter()
        if step < self.steps and now - self.last < 0.1:
            return
        self.last = now
        el = now - self.start
        width = 30
        done = int(width * step / self.steps)
        bar = "=" * max(done - 1, 0) + (">" if done < width else "=") + "." * (width - done)
        eta = el / step * (self.steps - step)
        tail = f"ETA: {eta:.0f}s" if step < self.steps else f"{el:.0f}s {el / step * 1e3:.0f}ms/step"
        width_steps = len(str(self.steps))
        sys.stdout.write(f"\r{step:>{width_steps}}/{self.steps} [{bar}] - {tail} - {self._fmt(logs or {})}")
        sys.stdout.flush()

    def on_epoch_end(self, epoch, logs=None):
        el = time.perf_counter() - self.start
        logs = logs or {}
        if self.verbose == 1:
            sys.stdout.write(f"\r{self.steps}/{self.steps} [{'=' * 30}] - {el:.0f}s "
                             f"{el / self.steps * 1e3:.0f}ms/step - {self._fmt(logs)}\n")
            sys.stdout.flush()
        elif self.verbose == 2:
            print(f"{self.prefix}{el:.0f}s - {self._fmt(logs)}", flush=True)


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


def _mode(monitor, mode):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        mode = "max" if "acc" in monitor else "min"
    return mode


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved by ``min_delta`` for ``patience``
    epochs; optionally restore the best weights."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto",
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor, self.min_delta, self.patience = monitor, abs(float(min_delta)), int(patience)
        self.mode = _mode(monitor, mode)
        self.restore_best_weights, self.verbose, self.start_from_epoch = restore_best_weights, verbose, start_from_epoch

    def _better(self, a, b):
        return a < b - self.min_delta if self.mode == "min" else a > b + self.min_delta

    def on_train_begin(self, logs=None):
        self.wait, self.best, self.best_weights, self.stopped_epoch = 0, None, None, 0

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise ValueError(f"EarlyStopping: monitor {self.monitor!r} is not in the logs "
                             f"({', '.join(sorted(logs or {}))})")
        if epoch < self.start_from_epoch:
            return
        if self.best is None or self._better(value, self.best):
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.restore_best_weights and self.best_weights is not None:
                self.model.set_weights(self.best_weights)
            if self.verbose:
                print(f"Epoch {epoch + 1}: early stopping")


class ModelCheckpoint(Callback):
    """Save the model (or its weights) after each epoch, or only when ``monitor``
    improves. ``filepath`` may contain ``{epoch}`` and log keys, e.g.
    ``'ckpt-{epoch:02d}-{val_loss:.3f}.convcore'``. Writes are atomic."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto"):
        super().__init__()
        self.filepath, self.monitor, self.verbose = str(filepath), monitor, verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        self.mode = _mode(monitor, mode)
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None:
                raise ValueError(f"ModelCheckpoint: monitor {self.monitor!r} is not in the logs "
                                 f"({', '.join(sorted(logs))})")
            if self.best is not None and not (value < self.best if self.mode == "min" else value > self.best):
                return
            self.best = value
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved to {path}")
