"""Saving and loading, as ``keras.saving``: models and weights to files (Keras 3's
``.keras`` and ``.weights.h5``, the legacy ``.h5``, convcore's own zip; PyTorch state
dicts into a model; no pickle: no file can run code, except a Keras ``Lambda``'s
bytecode with ``safe_mode=False``), and the serialization of any layer or model through
``get_config`` / ``from_config`` and the registry. ``keras_config`` translates a model
to and from Keras 3's serialized form (``to_keras_config`` / ``from_keras_config``)."""
from __future__ import annotations

from .config_errors import ConfigError
from .object_registration import (custom_object_scope, get_registered_object, register_keras_serializable,
                                  registered_name)
from .saving_lib import (FORMAT, VERSION, deserialize_keras_object, load_model, load_weights, model_config,
                         model_from_config, parse_config_json, save_model, save_weights,
                         serialize_keras_object)

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "serialize_keras_object",
           "deserialize_keras_object", "register_keras_serializable", "custom_object_scope",
           "get_registered_object", "model_config", "model_from_config", "ConfigError"]
