"""How the core, normalization and activation layers resolve and save a weight's
initializer, regularizer and constraint, as Keras does: ``get`` at construction (a bad
name fails there, not at build), ``serialize`` in ``get_config``."""
from __future__ import annotations

from .. import constraints, initializers, regularizers


def regularizer_get(identifier):
    return None if identifier is None else regularizers.get(identifier)


def regularizer_save(obj):
    return None if obj is None else regularizers.serialize(obj)


def constraint_get(identifier):
    return None if identifier is None else constraints.get(identifier)


def constraint_save(obj):
    return None if obj is None else constraints.serialize(obj)


def init_save(obj):
    """A config entry for an initializer (a callable by its own registered name)."""
    return initializers.serialize(obj)
