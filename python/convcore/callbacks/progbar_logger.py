"""ProgbarLogger: the progress bars of ``fit`` (one per epoch), ``evaluate`` and
``predict``, drawn by :class:`convcore.utils.progbar.Progbar`."""
from __future__ import annotations

import numbers

from ..utils.progbar import Progbar, dynamic_display
from .callback import Callback


class ProgbarLogger(Callback):
    """Print the progress of training, evaluation and prediction, as
    ``keras.callbacks.ProgbarLogger``: ``Epoch i/N`` (when N > 1) and a bar per epoch
    with the running logs (verbose=1), or one summary line per epoch (verbose=2).
    ``verbose``, ``epochs`` and ``steps`` come from the run's params (``steps`` None:
    a running count). Inside ``fit`` the validation pass draws no bar, as Keras.

    ``verbose`` may be given here (it then wins over the params); tf.keras 2's
    ``count_mode='steps'`` is accepted, ``'samples'`` is not (Keras 3 counts steps).
    """

    def __init__(self, count_mode="steps", stateful_metrics=None, verbose=None):
        super().__init__()
        if isinstance(count_mode, numbers.Integral) and not isinstance(count_mode, bool):
            count_mode, verbose = "steps", count_mode  # convcore's earlier ProgbarLogger(verbose)
        if count_mode != "steps":
            raise ValueError(f"ProgbarLogger: count_mode must be 'steps' (Keras 3 counts steps), received "
                             f"count_mode={count_mode!r}")
        if verbose is not None and (isinstance(verbose, bool) or verbose not in (0, 1, 2)):
            raise ValueError(f"ProgbarLogger: verbose must be 0, 1 or 2, received verbose={verbose!r}")
        self._given_verbose = verbose
        self.seen = 0
        self.progbar = None
        self.target = None
        self.verbose = 1 if verbose is None else int(verbose)
        self.epochs = 1
        self._called_in_fit = False

    def set_params(self, params):
        super().set_params(params)
        verbose = params.get("verbose", self.verbose) if self._given_verbose is None else self._given_verbose
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def _wants_batch_logs(self):
        # Only a bar redrawn in place shows the batches; a log file gets the epoch's line.
        return self.verbose == 1 and dynamic_display()

    def on_train_begin(self, logs=None):
        self._called_in_fit = True

    def on_test_begin(self, logs=None):
        if not self._called_in_fit:
            self._reset_progbar()
            self._maybe_init_progbar()

    def on_predict_begin(self, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()

    def on_epoch_begin(self, epoch, logs=None):
        self._reset_progbar()
        self._maybe_init_progbar()
        if self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}", flush=True)

    def on_train_batch_end(self, batch, logs=None):
        self._update_progbar(batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        if not self._called_in_fit:
            self._update_progbar(batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._update_progbar(batch, None)  # the predictions are no metrics

    def on_epoch_end(self, epoch, logs=None):
        self._finalize_progbar(logs)

    def on_test_end(self, logs=None):
        if not self._called_in_fit:
            self._finalize_progbar(logs)

    def on_predict_end(self, logs=None):
        self._finalize_progbar(logs)

    def _reset_progbar(self):
        self.seen = 0
        self.progbar = None

    def _maybe_init_progbar(self):
        if self.progbar is None:
            self.progbar = Progbar(target=self.target, verbose=self.verbose, unit_name="step",
                                   stateless_metrics=set())

    def _update_progbar(self, batch, logs=None):
        self._maybe_init_progbar()
        self.seen = batch + 1
        if self.verbose == 1:
            self.progbar.update(self.seen, list((logs or {}).items()), finalize=False)

    def _finalize_progbar(self, logs):
        self._maybe_init_progbar()
        if self.target is None:
            self.target = self.seen
            self.progbar.target = self.target
        self.progbar.update(self.target, list((logs or {}).items()), finalize=True)

    def get_config(self):
        return {"count_mode": "steps", "verbose": self._given_verbose}
