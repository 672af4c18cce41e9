"""The Callback base class (Keras's hooks, each given a ``logs`` dict) and
CallbackList, the callbacks of one ``fit`` / ``evaluate`` / ``predict`` called in order."""
from __future__ import annotations

import numbers

import numpy as np


def _default(method):
    """Marks a base-class hook, so a list can tell which hooks a callback overrides."""
    method._is_default = True
    return method


def _is_default(method):
    return getattr(method, "_is_default", False)


class Callback:
    """Base class of the callbacks, as ``keras.callbacks.Callback``: override the hooks
    you need. ``self.model`` is the model being trained and ``self.params`` the run's
    parameters (``epochs``, ``steps``, ``verbose``). As in Keras, the base
    ``on_train_batch_begin`` / ``on_train_batch_end`` call tf.keras 2's
    ``on_batch_begin`` / ``on_batch_end``, so either name works."""

    def __init__(self):
        self.params = {}
        self._model = None

    @property
    def model(self):
        return self._model

    @model.setter
    def model(self, model):
        self._model = model

    def set_model(self, model):
        self._model = model

    def set_params(self, params):
        self.params = params

    @_default
    def on_batch_begin(self, batch, logs=None):
        """tf.keras 2's name of :meth:`on_train_batch_begin`."""

    @_default
    def on_batch_end(self, batch, logs=None):
        """tf.keras 2's name of :meth:`on_train_batch_end`."""

    @_default
    def on_epoch_begin(self, epoch, logs=None):
        """At the start of epoch ``epoch`` (0-based) of ``fit``."""

    @_default
    def on_epoch_end(self, epoch, logs=None):
        """At the end of an epoch; ``logs`` holds the epoch's metrics and the
        ``val_`` ones when there is validation data."""

    @_default
    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    @_default
    def on_train_batch_end(self, batch, logs=None):
        """``logs``: the running means of the epoch's metrics up to this batch."""
        self.on_batch_end(batch, logs=logs)

    @_default
    def on_test_batch_begin(self, batch, logs=None):
        """At the start of a batch of ``evaluate``."""

    @_default
    def on_test_batch_end(self, batch, logs=None):
        """At the end of a batch of ``evaluate``."""

    @_default
    def on_predict_batch_begin(self, batch, logs=None):
        """At the start of a batch of ``predict``."""

    @_default
    def on_predict_batch_end(self, batch, logs=None):
        """At the end of a batch of ``predict``."""

    @_default
    def on_train_begin(self, logs=None):
        """At the start of ``fit``."""

    @_default
    def on_train_end(self, logs=None):
        """At the end of ``fit``."""

    @_default
    def on_test_begin(self, logs=None):
        """At the start of ``evaluate``."""

    @_default
    def on_test_end(self, logs=None):
        """At the end of ``evaluate``."""

    @_default
    def on_predict_begin(self, logs=None):
        """At the start of ``predict``."""

    @_default
    def on_predict_end(self, logs=None):
        """At the end of ``predict``."""

    def _wants_batch_logs(self):
        """Whether this callback reads the logs of training batches (on the GPU the
        trainer then reads them back every batch instead of once an epoch)."""
        return not (_is_default(self.on_train_batch_end) and _is_default(self.on_batch_end))

    def get_config(self):
        """The constructor arguments (convcore's addition: Keras's callbacks have no
        config)."""
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _pythonify_logs(logs):
    """A new dict of ``logs`` as Keras passes them: sorted by key, nested dicts
    flattened, values as Python floats where they convert (else as given)."""
    out = {}
    for k, v in sorted((logs or {}).items()):
        if isinstance(v, dict):
            out.update(_pythonify_logs(v))
            continue
        if hasattr(v, "numpy") and not isinstance(v, np.ndarray):
            v = v.numpy()
        try:
            v = float(v)
        except (TypeError, ValueError):
            pass
        out[k] = v
    return out


def _flatten(callbacks):
    out = []
    for cb in callbacks:
        if isinstance(cb, (list, tuple)):
            out.extend(_flatten(cb))
        elif isinstance(cb, Callback):
            out.append(cb)
        else:
            raise TypeError(f"CallbackList: callbacks must be Callback objects, got {cb!r} ({type(cb).__name__})")
    return out


class CallbackList(Callback):
    """The callbacks of one ``fit`` / ``evaluate`` / ``predict``, called in order, as
    ``keras.callbacks.CallbackList``: ``CallbackList(callbacks, model, epochs=...,
    steps=..., verbose=...)``. Every hook passes one copy of the logs (sorted, floats)
    to all the callbacks, so a value one callback adds (``learning_rate``) is seen by
    those after it. ``add_history`` / ``add_progbar`` append a History / ProgbarLogger
    when the list has none, as Keras's. Deviation: ``model`` is the second positional
    argument (Keras 3's second is ``add_history``; pass these two by keyword)."""

    def __init__(self, callbacks=None, model=None, *, add_history=False, add_progbar=False, **params):
        super().__init__()
        self.callbacks = _flatten(callbacks) if callbacks else []
        from .history import History
        from .progbar_logger import ProgbarLogger
        self._history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        self._progbar = next((cb for cb in self.callbacks if isinstance(cb, ProgbarLogger)), None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)
        self.set_model(model)
        self.set_params(params)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)

    def append(self, callback):
        (callback,) = _flatten([callback])
        self.callbacks.append(callback)
        if self._model is not None:
            callback.set_model(self._model)
        if self.params:
            callback.set_params(self.params)

    def set_model(self, model):
        if model is None:
            return
        self._model = model
        if self._history is not None:
            model.history = self._history
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params):
        self.params = params
        if params:
            for cb in self.callbacks:
                cb.set_params(params)

    def wants_batch_logs(self):
        """Whether some callback reads the logs of training batches."""
        return any(cb._wants_batch_logs() for cb in self.callbacks)

    def _wants_batch_logs(self):
        return self.wants_batch_logs()

    def _call(self, hook, *args, logs=None):
        logs = _pythonify_logs(logs)
        for cb in self.callbacks:
            getattr(cb, hook)(*args, logs)

    def _call_batch(self, hook, batch, logs):
        # Keras passes a batch hook's logs by keyword (LambdaCallback's functions
        # may name it so), the others' by position.
        logs = _pythonify_logs(logs)
        for cb in self.callbacks:
            getattr(cb, hook)(batch, logs=logs)

    def on_batch_begin(self, batch, logs=None):
        self._call_batch("on_batch_begin", batch, logs)

    def on_batch_end(self, batch, logs=None):
        self._call_batch("on_batch_end", batch, logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs=logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs=logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call_batch("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call_batch("on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._call_batch("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch, logs=None):
        self._call_batch("on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._call_batch("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._call_batch("on_predict_batch_end", batch, logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs=logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs=logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs=logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs=logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs=logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs=logs)


def _positive_int_or_epoch(cls, name, value):
    """``'epoch'`` or a positive number of batches (``save_freq``)."""
    if value == "epoch" and isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{cls}: {name} must be 'epoch' or a positive number of batches, received "
                         f"{name}={value!r}")
    return int(value)


def _save_freq_reached(cb, batch):
    """Whether ``cb`` (ModelCheckpoint, BackupAndRestore) saves after ``batch``: its
    ``save_freq`` in batches counted across epochs (a batch number not above the last
    one starts a new epoch; batches are 0-based), as Keras's ``_should_save_on_batch``."""
    if cb.save_freq == "epoch":
        return False
    if cb._last_batch_seen is None or batch <= cb._last_batch_seen:
        add = batch + 1
    else:
        add = batch - cb._last_batch_seen
    cb._batches_seen_since_last_saving += add
    cb._last_batch_seen = batch
    if cb._batches_seen_since_last_saving >= cb.save_freq:
        cb._batches_seen_since_last_saving = 0
        return True
    return False
