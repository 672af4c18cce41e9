"""Callbacks for ``fit``, as ``keras.callbacks``: History, ProgbarLogger (the progress
bar), EarlyStopping, ModelCheckpoint; each hook receives Keras's ``logs`` dict."""
from .callback import Callback, CallbackList
from .early_stopping import EarlyStopping
from .history import History
from .model_checkpoint import ModelCheckpoint
from .progbar_logger import ProgbarLogger

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping", "ModelCheckpoint"]
