"""BackupAndRestore: back up the training state every epoch (or N batches) and resume
an interrupted ``fit`` from it."""
from __future__ import annotations

import json
import os
import shutil

from .callback import Callback, _positive_int_or_epoch, _save_freq_reached


class BackupAndRestore(Callback):
    """Back up the model's weights and the epoch reached into ``backup_dir``, and
    restore them at the start of the next ``fit``, as
    ``keras.callbacks.BackupAndRestore``. At the end of a completed ``fit`` the folder
    is deleted (``delete_checkpoint=True``), so it must not hold anything else.
    ``double_checkpoint=True`` keeps the previous backup too and falls back to it
    when the latest cannot be read.

    What is restored: the weights, the epoch to start from (``model._initial_epoch``,
    which ``fit`` reads after ``on_train_begin``, as Keras's) and the optimizer's
    ``learning_rate`` (a scheduler or ReduceLROnPlateau may have changed it). Not
    restored (convcore's ``save_weights`` does not write optimizer state yet): Adam's
    moments, SGD's momentum and the step count, so the optimizer resumes as a fresh
    one — Keras restores them. (Restoring the step count alone would pair Adam's bias
    correction of step t with zero moments: a first step ~3x too large.)
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError(f"BackupAndRestore: backup_dir must be a folder path, received backup_dir={backup_dir!r}")
        if not isinstance(backup_dir, (str, os.PathLike)):
            raise TypeError(f"BackupAndRestore: backup_dir must be a folder path (str or os.PathLike), received "
                            f"backup_dir={backup_dir!r}")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = _positive_int_or_epoch("BackupAndRestore", "save_freq", save_freq)
        self.double_checkpoint = bool(double_checkpoint)
        self.delete_checkpoint = bool(delete_checkpoint)
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._current_epoch = 0
        self._weights_path = os.path.join(self.backup_dir, "latest.weights.npz")
        self._training_metadata_path = os.path.join(self.backup_dir, "training_metadata.json")
        self._prev_weights_path = self._weights_path + ".bkp"
        self._prev_training_metadata_path = self._training_metadata_path + ".bkp"

    def _wants_batch_logs(self):
        # Saving every N batches needs the batch hooks, which the GPU's deferred
        # epochs skip; saving per epoch does not.
        return self.save_freq != "epoch"

    def on_train_begin(self, logs=None):
        try:
            self._load_model()
        except (OSError, ValueError) as e:
            # The latest backup may be damaged (killed mid-write elsewhere): the previous one.
            if not os.path.exists(self._prev_weights_path):
                raise e
            shutil.copy(self._prev_weights_path, self._weights_path)
            if os.path.exists(self._prev_training_metadata_path):
                shutil.copy(self._prev_training_metadata_path, self._training_metadata_path)
            elif os.path.exists(self._training_metadata_path):
                os.remove(self._training_metadata_path)
            self._load_model()

    def _load_model(self):
        if not getattr(self.model, "built", True):
            raise ValueError("To use the BackupAndRestore callback, your model must be built before you call "
                             f"`fit()`. Model {self.model} is unbuilt. You can build it beforehand by calling it on "
                             "a batch of data.")
        if os.path.exists(self._weights_path):
            self.model.load_weights(self._weights_path)
        if os.path.exists(self._training_metadata_path):
            with open(self._training_metadata_path) as f:
                meta = json.loads(f.read())
            self.model._initial_epoch = meta["epoch"]
            opt = getattr(self.model, "optimizer", None)
            if opt is not None and "learning_rate" in meta and hasattr(opt, "learning_rate"):
                opt.learning_rate = meta["learning_rate"]

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if self.save_freq == "epoch":
            self._save_model()

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model()

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint and os.path.exists(self._weights_path):
            shutil.copy(self._weights_path, self._prev_weights_path)
        if self.double_checkpoint and os.path.exists(self._training_metadata_path):
            shutil.copy(self._training_metadata_path, self._prev_training_metadata_path)
        self.model.save_weights(self._weights_path)
        meta = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        opt = getattr(self.model, "optimizer", None)
        lr = getattr(opt, "learning_rate", None)
        if isinstance(lr, (int, float)) and not isinstance(lr, bool):
            meta["learning_rate"] = float(lr)
        tmp = self._training_metadata_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps(meta))
        os.replace(tmp, self._training_metadata_path)

    def _should_save_on_batch(self, batch):
        return _save_freq_reached(self, batch)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir)

    def get_config(self):
        return {"backup_dir": self.backup_dir, "save_freq": self.save_freq,
                "double_checkpoint": self.double_checkpoint, "delete_checkpoint": self.delete_checkpoint}
