"""ModelCheckpoint: save the model (or its weights) after epochs, or when it improves."""
from __future__ import annotations

from .callback import Callback
from .monitor import _mode


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
