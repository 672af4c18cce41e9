"""Models: ``Model`` (functional, or subclassed with a ``call``), ``Sequential``, and
loading / saving, as ``keras.models``."""
from __future__ import annotations

from .model import Model
from .sequential import Sequential


def load_model(filepath, compile=True, custom_objects=None):
    """Load a model saved by ``model.save(filepath)``."""
    from ..saving import load_model as _load
    return _load(filepath, compile=compile, custom_objects=custom_objects)


def save_model(model, filepath):
    model.save(filepath)


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
