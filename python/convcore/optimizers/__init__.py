"""``convcore.optimizers``, as ``keras.optimizers``: the optimizers (SGD, Adam, AdamW,
RMSprop, Adagrad, Adadelta, Adamax, Nadam, Lion), ``schedules`` (learning-rate
schedules), and ``get`` / ``serialize`` / ``deserialize``; ``legacy`` and
``experimental`` are tf.keras 2's import paths for the same classes."""
from __future__ import annotations


from . import experimental, legacy, schedules
from .algorithms import SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, Lion, Nadam, RMSprop
from .base_optimizer import Optimizer, _ArgumentError

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Lion",
           "schedules", "legacy", "experimental", "get", "serialize", "deserialize"]

_CLASSES = {c.__name__: c for c in (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, Nadam, Lion)}
# Keras's names for get(): the lowercase class names
_OPTIMIZERS = {n.lower(): c for n, c in _CLASSES.items()}


def get(identifier):
    """An optimizer from a name (``'adam'``, ``'rmsprop'``, ... any case), a config
    dict, or an Optimizer (returned as is)."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _OPTIMIZERS:
        return _OPTIMIZERS[identifier.lower()]()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise ValueError(f"Unknown optimizer {identifier!r}; valid optimizers are {', '.join(_OPTIMIZERS)} "
                     "or an Optimizer object")


def serialize(optimizer):
    """Keras's serialized form ``{"module": "keras.optimizers", "class_name": ...,
    "config": get_config(), "registered_name": None}``."""
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"serialize: expected an Optimizer, received a {type(optimizer).__name__}")
    return {"module": "keras.optimizers", "class_name": type(optimizer).__name__, "config": optimizer.get_config(),
            "registered_name": None}


def _class_named(name):
    if not isinstance(name, str):
        return None
    return _CLASSES.get(name) or _OPTIMIZERS.get(name.lower())


def deserialize(config, custom_objects=None):
    """The optimizer of a config: ``get_config()``'s flat form ``{"name": "SGD", <its
    arguments>}`` (older convcore saves included) or Keras's ``{"class_name": "Adam",
    "config": {...}}``. Anything else (an unknown name, an argument the class does not
    take, a value it refuses) is a :class:`~convcore.saving.ConfigError` naming the key."""
    from ..saving.config_errors import ConfigError, check_dict
    check_dict(config, (), "an optimizer config (a dict with 'name' and the optimizer's arguments)")
    known = ", ".join(_CLASSES)
    if "class_name" in config:
        name_key, name = "class_name", config["class_name"]
        args = check_dict(config.get("config", {}), ("config",), "the optimizer's arguments (a dict)")
        prefix = ("config",)
    else:
        if "name" not in config:
            raise ConfigError("name", f"is missing (the optimizer's class: {known})")
        name_key, name = "name", config["name"]
        args = {k: v for k, v in config.items() if k != "name"}
        prefix = ()
    cls = _class_named(name)
    if cls is None and custom_objects and isinstance(name, str):
        cls = custom_objects.get(name)
    if cls is None:
        raise ConfigError(name_key, f"unknown optimizer {name!r}; known optimizers are {known}")
    allowed = [p for p in cls._arguments() if p != "name" or prefix]
    for k in args:
        if k not in allowed:
            raise ConfigError(prefix + (k,), f"is not an argument of {cls.__name__} (its arguments: "
                                             f"{', '.join(a for a in allowed if a != 'name')})")
    args = dict(args)
    if isinstance(args.get("learning_rate"), dict):
        try:
            args["learning_rate"] = schedules.deserialize(args["learning_rate"], custom_objects)
        except ValueError as e:
            raise ConfigError(prefix + ("learning_rate",), str(e)) from None
    try:
        return cls(**args)
    except _ArgumentError as e:
        raise ConfigError(prefix + (e.arg,), str(e)) from None
