"""Name lookup and the ``{"class_name", "config"}`` form shared by initializers,
regularizers and constraints (Keras's ``serialize`` / ``deserialize`` / ``get``), so
the three accept the same identifiers and refuse bad ones with the same messages.

Names resolve against the module's own table first, then the registry of
``register_keras_serializable`` / ``custom_objects`` (nothing is ever imported by name)."""
from __future__ import annotations

import inspect as _inspect


def _registered(name, custom_objects):
    from ..saving.object_registration import get_registered_object, is_private
    if is_private(name):
        return None
    return get_registered_object(name, custom_objects)


def lookup(kind, name, table, custom_objects=None):
    """The class or function called ``name`` (built-in, registered or in
    ``custom_objects``), else a ValueError listing the valid names."""
    obj = table.get(name)
    if obj is None:
        obj = _registered(name, custom_objects)
    if obj is None or not callable(obj):
        raise ValueError(f"Unknown {kind} {name!r}; valid {kind}s are {', '.join(valid_names(table, True))} "
                         f"(or their class names), a name registered with register_keras_serializable, or one "
                         f"passed in custom_objects")
    return obj


def valid_names(table, snake_only=False):
    """The snake-case names first (what users type), then the class names."""
    names = sorted(table)
    snake = [n for n in names if n[:1].islower()]
    return snake if snake_only else snake + [n for n in names if not n[:1].islower()]


def from_dict(kind, d, table, custom_objects=None, base=None):
    """The object a ``{"class_name": ..., "config": {...}}`` dict describes (Keras 2's
    form, and Keras 3's with "module" / "registered_name"; a function as Keras 3 saves
    one: class_name "function" with its name as the config)."""
    class_name = d.get("class_name")
    if not isinstance(class_name, str):
        raise ValueError(f"{kind} config: expected a dict with a string 'class_name' and a 'config' dict, "
                         f"received {d!r}")
    config = d.get("config", {})
    registered = d.get("registered_name")
    if class_name == "function":  # Keras 3: config is the (registered) name, registered_name "function"
        name = config
        if not isinstance(name, str):
            raise ValueError(f"{kind} config: a function is saved by its name, received config={config!r}")
        return lookup(kind, name, table, custom_objects)
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValueError(f"{kind} config: 'config' must be a dict, received {config!r}")
    name = registered if isinstance(registered, str) and registered not in table else class_name
    obj = lookup(kind, name, table, custom_objects)
    if _inspect.isclass(obj):
        if base is not None and not issubclass(obj, base):
            # the registry also holds layers, losses, ...: a config cannot make one of
            # those stand in for an initializer / regularizer / constraint
            raise ValueError(f"{kind} config: class {name!r} is not a subclass of {base.__module__}."
                             f"{base.__name__}")
        from_config = getattr(obj, "from_config", None)
        return from_config(dict(config)) if from_config is not None else obj(**config)
    return obj


def to_dict(kind, obj, builtin_classes):
    """``{"class_name", "config"}`` for an object with ``get_config``; a function's
    registered (or plain) name; a lambda cannot be saved."""
    if obj is None or isinstance(obj, str):
        return obj
    if not _inspect.isclass(obj) and hasattr(obj, "get_config") and not _inspect.isroutine(obj):
        cls = type(obj)
        out = {"class_name": cls.__name__, "config": obj.get_config()}
        if cls not in builtin_classes:
            out["registered_name"] = getattr(cls, "_registered_name", None) or cls.__name__
        return out
    name = getattr(obj, "_registered_name", None)
    if name:
        # the bare name, as Keras 3 writes a function's config, when it resolves to obj
        short = name.rpartition(">")[2]
        if _registered(short, None) is obj:
            name = short
    else:
        name = getattr(obj, "__name__", None)
    if not name or name == "<lambda>" or not callable(obj):
        raise ValueError(f"save: a {kind} {obj!r} cannot be saved: give it a name (a def or a class with "
                         f"get_config) and register it or pass it in custom_objects when loading")
    return name


def deserialize(kind, config, table, custom_objects=None, base=None):
    """The object of a name or a ``{"class_name", "config"}`` dict (a class named
    without a config is built with its defaults)."""
    if isinstance(config, str):
        obj = lookup(kind, config, table, custom_objects)
    elif isinstance(config, dict):
        obj = from_dict(kind, config, table, custom_objects, base)
    else:
        raise ValueError(f"Could not interpret {kind} identifier: {config!r} (expected a name or a "
                         f"{{'class_name': ..., 'config': ...}} dict)")
    return obj() if isinstance(obj, type) else obj


def get_callable(kind, identifier, table, deserialize, base_name):
    """``get`` of a kind whose objects are callables of the weight (regularizers,
    constraints): None, a name or config (through ``deserialize``), a class
    (instantiated) or a callable (as is)."""
    if identifier is None:
        return None
    if isinstance(identifier, (str, dict)):
        return deserialize(identifier)
    if isinstance(identifier, type):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret {kind} identifier: {identifier!r}; valid {kind}s are "
                     f"{', '.join(valid_names(table, True))} (or their class names), "
                     f"a config dict, a {base_name} or a function of the weight")
