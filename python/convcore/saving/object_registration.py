"""The registry of serializable classes and functions, as Keras's
``saving.object_registration``: every public Layer subclass (models included) registers
under its class name when it is defined; user objects register with
``@register_keras_serializable`` or come in ``custom_objects`` / a
``custom_object_scope`` while a file loads. Nothing is ever imported by name: an object
not found here is an error, so no file can make convcore run code."""
from __future__ import annotations

import threading

_GLOBAL = {}
_local = threading.local()


def register(name, obj):
    """Register ``obj`` under ``name`` (the library's own classes do this on definition)."""
    _GLOBAL[name] = obj


def register_keras_serializable(package="Custom", name=None):
    """Decorator: ``@register_keras_serializable()`` makes a layer class, loss or
    function loadable by name (``package>name``, and the bare name)."""
    def deco(obj):
        n = name or getattr(obj, "__name__", None)
        if not n:
            raise ValueError("register_keras_serializable: the object has no __name__; pass name=")
        _GLOBAL[f"{package}>{n}"] = obj
        _GLOBAL.setdefault(n, obj)
        obj._registered_name = f"{package}>{n}"
        return obj
    return deco


class custom_object_scope:
    """``with custom_object_scope({"name": obj}):`` — names resolvable while loading."""

    def __init__(self, *dicts):
        self.objects = {}
        for d in dicts:
            self.objects.update(d or {})

    def __enter__(self):
        stack = getattr(_local, "scopes", None)
        if stack is None:
            stack = _local.scopes = []
        stack.append(self.objects)
        return self

    def __exit__(self, *exc):
        _local.scopes.pop()
        return False


def get_registered_object(name, custom_objects=None):
    """The object registered or given under ``name``, or None."""
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    for scope in reversed(getattr(_local, "scopes", None) or []):
        if name in scope:
            return scope[name]
    return _GLOBAL.get(name)


def registered_name(obj):
    return getattr(obj, "_registered_name", None) or getattr(obj, "__name__", None) or type(obj).__name__


def is_private(name):
    """``_Conv`` and ``package>_Helper``: private names never load from a file, even
    when something put them in the registry (the one rule for classes, losses and
    metrics)."""
    return isinstance(name, str) and name.rpartition(">")[2].startswith("_")
