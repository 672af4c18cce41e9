"""TerminateOnNaN: stop training when a batch's loss is NaN or infinite."""
from __future__ import annotations

import numpy as np

from .callback import Callback


class TerminateOnNaN(Callback):
    """Stop training when the loss of a batch is NaN or inf, as
    ``keras.callbacks.TerminateOnNaN``: by ``model.stop_training = True`` (the other
    callbacks' ``on_train_end`` still run), or with ``raise_error=True`` by a
    RuntimeError at once.

    Note: convcore's ``fit`` itself raises FloatingPointError on a non-finite loss
    before the batch's callbacks run (keeping the last good weights), so inside
    ``fit`` this callback only sees finite losses today."""

    def __init__(self, raise_error=False):
        super().__init__()
        if not isinstance(raise_error, (bool, np.bool_)):
            raise TypeError(f"TerminateOnNaN: raise_error must be True or False, received raise_error={raise_error!r}")
        self.raise_error = bool(raise_error)

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and (np.isnan(loss) or np.isinf(loss)):
            if self.raise_error:
                raise RuntimeError(f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                                   "Terminating training immediately.")
            print(f"Batch {batch}: Invalid loss, terminating training", flush=True)
            self.model.stop_training = True

    def get_config(self):
        return {"raise_error": self.raise_error}
