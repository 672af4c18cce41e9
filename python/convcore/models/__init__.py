"""Models: ``Model`` (functional, or subclassed with a ``call``), ``Sequential``, and
loading / saving, as ``keras.models``."""
from __future__ import annotations

from .model import Model
from .sequential import Sequential


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a model saved by ``model.save(filepath)`` or by Keras (``.keras``, legacy
    ``.h5`` of Keras 3 or tf.keras 2); ``safe_mode=False`` lets a ``Lambda`` holding
    Python bytecode load (it runs that code: only for files you trust)."""
    from ..saving import load_model as _load
    return _load(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


def save_model(model, filepath, overwrite=True, zipped=None, **kwargs):
    model.save(filepath, overwrite=overwrite, zipped=zipped, **kwargs)


def model_from_json(json_string, custom_objects=None):
    """The model of a JSON config (``model.to_json()`` with its class name, as
    ``model_config`` gives); a bad one is a ValueError."""
    from ..saving import model_from_config, parse_config_json
    return model_from_config(parse_config_json(json_string, "model_from_json"), custom_objects=custom_objects)


def clone_model(model):
    """A new model with the same architecture and freshly initialised weights."""
    from ..saving import model_config, model_from_config
    return model_from_config(model_config(model))


__all__ = ["Model", "Sequential", "load_model", "save_model", "model_from_json", "clone_model"]
