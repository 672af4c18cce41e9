"""The progress bar of ``fit``, as a callback (``verbose=1``: a live bar with ETA and
running metrics; ``verbose=2``: one line per epoch)."""
from __future__ import annotations

import sys
import time

from .callback import Callback


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
