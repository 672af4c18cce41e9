"""Global settings and helpers, as ``keras.backend`` / ``tf.keras.backend``: the
default float type, the fuzz factor epsilon, the image data format, the random seed, and
``clear_session`` (which resets the layer-name counters).

``set_floatx('float64')`` makes new layers compute in float64; ``set_seed(n)`` makes
weight initialisation, shuffling and dropout reproducible.
"""
from __future__ import annotations

import gc as _gc
import math as _math
import numbers as _numbers

import numpy as np

__all__ = ["backend", "clear_session", "epsilon", "set_epsilon", "floatx", "set_floatx", "image_data_format",
           "set_image_data_format", "is_keras_tensor", "int_shape", "count_params", "set_seed", "rng",
           "next_seed", "standardize_dtype", "get_uid", "get_value", "set_value"]

_FLOATX = "float32"
_EPSILON = 1e-7
_SEED = None
_RNG = np.random.default_rng()
_UIDS: dict = {}


def backend() -> str:
    """The name of the backend: 'convcore'."""
    return "convcore"


def floatx() -> str:
    """The default float type of new layers: 'float32' (default) or 'float64'."""
    return _FLOATX


def set_floatx(value: str) -> None:
    """Set the default float type of new layers: 'float32' or 'float64' (the GPU
    computes in float32 only)."""
    global _FLOATX
    if value not in ("float32", "float64"):
        raise ValueError(f"set_floatx: expected 'float32' or 'float64', got {value!r}")
    _FLOATX = value


def epsilon() -> float:
    """The fuzz factor added to denominators (default 1e-7), as ``keras.backend.epsilon``."""
    return _EPSILON


def set_epsilon(value) -> None:
    """Set the fuzz factor :func:`epsilon` (a positive finite number)."""
    global _EPSILON
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, _numbers.Real):
        raise TypeError(f"set_epsilon: expected a positive number, received {value!r}")
    v = float(value)
    if not (_math.isfinite(v) and v > 0):
        raise ValueError(f"set_epsilon: expected a positive finite number, received {value!r}")
    _EPSILON = v


def image_data_format() -> str:
    """'channels_last': the only layout convcore's layers compute in."""
    return "channels_last"


def set_image_data_format(data_format) -> None:
    """Keras's setter; only 'channels_last' is supported (convcore's kernels are
    channels-last), anything else is a ValueError."""
    if not isinstance(data_format, str) or data_format.lower() not in ("channels_last", "channels_first"):
        raise ValueError("set_image_data_format: the `data_format` argument must be one of {'channels_first', "
                         f"'channels_last'}}. Received: data_format={data_format!r}")
    if data_format.lower() != "channels_last":
        raise ValueError("set_image_data_format: convcore supports only 'channels_last' (its kernels are "
                         f"channels-last); received data_format={data_format!r}")


def standardize_dtype(dtype=None) -> str:
    """A dtype's canonical name ('float32', 'int64', ...); None is :func:`floatx`."""
    if dtype is None:
        return floatx()
    try:
        return np.dtype(getattr(dtype, "name", dtype)).name
    except TypeError:
        raise ValueError(f"standardize_dtype: invalid dtype {dtype!r}") from None


def is_keras_tensor(x) -> bool:
    """True for a symbolic tensor of the functional API (``Input(...)`` and layer
    outputs on it), False for concrete tensors and arrays."""
    from .layers.core import KerasTensor
    return isinstance(x, KerasTensor)


def int_shape(x):
    """The shape of ``x`` as a tuple (None for an unknown axis, e.g. a symbolic batch)."""
    shape = getattr(x, "shape", None)
    if shape is None:
        shape = np.shape(x)
    return tuple(None if s is None else int(s) for s in shape)


def count_params(x) -> int:
    """The number of scalars in a weight or tensor (the product of its shape)."""
    shape = int_shape(x)
    if any(s is None for s in shape):
        raise ValueError(f"count_params: the shape {shape} has an unknown axis")
    return _math.prod(shape)


def get_value(x):
    """``x`` as a numpy array (a number as it is), as tf.keras 2's ``K.get_value``."""
    if hasattr(x, "numpy"):
        return x.numpy()
    if isinstance(x, (_numbers.Number, np.generic)):
        return x
    return np.asarray(x)


def set_value(x, value) -> None:
    """Assign ``value`` to the Variable ``x`` in place, as tf.keras 2's ``K.set_value``
    (e.g. an optimizer's learning rate when it is a Variable)."""
    if not hasattr(x, "assign"):
        raise TypeError(f"set_value: expected a Variable (something with assign), received {type(x).__name__}; "
                        "to change a plain attribute such as a float learning rate, set the attribute")
    x.assign(value)


def get_uid(prefix="") -> int:
    """A counter per prefix, from 1 (as ``keras.backend.get_uid``); reset by
    :func:`clear_session`."""
    _UIDS[prefix] = _UIDS.get(prefix, 0) + 1
    return _UIDS[prefix]


def clear_session(free_memory=True) -> None:
    """Reset the global state Keras keeps: the layer-name counters (the next Dense is
    'dense' again) and :func:`get_uid`'s. Settings (floatx, epsilon) and the seed stay,
    as in Keras 3. ``free_memory`` runs Python's garbage collector."""
    from .layers import core
    core._NAME_COUNTS.clear()
    _UIDS.clear()
    if free_memory:
        _gc.collect()


def set_seed(seed: int) -> None:
    """Seed everything random in convcore (initializers, shuffling, dropout)."""
    global _SEED, _RNG
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"set_seed: expected a non-negative integer, got {seed!r}")
    _SEED = int(seed)
    _RNG = np.random.default_rng(_SEED)


def rng() -> np.random.Generator:
    """The package's random generator (seeded by :func:`set_seed`)."""
    return _RNG


def next_seed() -> int:
    """A 63-bit seed drawn from the package generator (for native random streams)."""
    return int(_RNG.integers(0, 2**63 - 1))
