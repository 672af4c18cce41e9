"""Losses by name, object or function. The built-in losses are one fused kernel each
(mean loss and its gradient, CPU and GPU); a function ``fn(y_true, y_pred)`` of tensors
is differentiated by the tape."""
from __future__ import annotations

import numpy as np

from . import ops


class Loss:
    name = "loss"
    native = ""

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)

    def check_labels(self, y, n_outputs_shape):
        return y

    def __call__(self, y_true, y_pred, sample_weight=None):
        """Mean loss over the batch (a 0-d tensor)."""
        if sample_weight is not None:
            raise ValueError(f"{type(self).__name__}: sample_weight is not supported yet")
        return ops.fused_loss(self.native, _labels(y_true), y_pred, self.from_logits)

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


class SparseCategoricalCrossentropy(Loss):
    name = native = "sparse_categorical_crossentropy"
    fusable = True

    def check_labels(self, y, out_shape):
        y = np.asarray(y)
        if y.ndim == len(out_shape) and y.shape[-1] == 1:
            y = y.reshape(y.shape[:-1])
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
                raise ValueError("sparse_categorical_crossentropy: labels must be integer class indices")
        elif y.dtype.kind not in "iub":
            raise TypeError(f"sparse_categorical_crossentropy: labels must be integers, got dtype {y.dtype}")
        y = y.astype(np.int64)
        n = out_shape[-1]
        if y.size and (y.min() < 0 or y.max() >= n):
            bad = int(y.min()) if y.min() < 0 else int(y.max())
            raise ValueError(f"sparse_categorical_crossentropy: label {bad} is out of range for a model "
                             f"with {n} outputs (valid labels: 0..{n - 1})")
        return y


class CategoricalCrossentropy(Loss):
    name = native = "categorical_crossentropy"
    fusable = True

    def check_labels(self, y, out_shape):
        y = np.asarray(y)
        if tuple(y.shape[1:]) != tuple(out_shape):
            raise ValueError(f"categorical_crossentropy: labels must be one-hot of shape (N,) + {tuple(out_shape)}, "
                             f"got {y.shape}")
        return y


class _ElementwiseLoss(Loss):
    """Targets shaped like the output (a 1-D vector is accepted for one output)."""
    fusable = False

    def check_labels(self, y, out_shape):
        y = np.asarray(y)
        if y.ndim == 1 and tuple(out_shape) == (1,):
            y = y.reshape(-1, 1)
        if tuple(y.shape[1:]) != tuple(out_shape):
            raise ValueError(f"{self.native}: targets must have shape (N,) + {tuple(out_shape)}, got {y.shape}")
        return y


class BinaryCrossentropy(_ElementwiseLoss):
    name = native = "binary_crossentropy"


class MeanSquaredError(_ElementwiseLoss):
    name = "mean_squared_error"
    native = "mse"


def _labels(y):
    return y.numpy() if isinstance(y, ops.Tensor) else np.asarray(y)


class LossFunctionWrapper(Loss):
    """A loss from a function ``fn(y_true, y_pred)`` of tensors returning per-sample (or
    per-element) losses: the mean over the batch, differentiated by the tape."""

    fusable = False

    def __init__(self, fn, name=None):
        super().__init__(False)
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        self.native = ""

    def check_labels(self, y, out_shape):
        return y

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(f"loss {self.name!r}: sample_weight is not supported yet")
        pred = ops.convert_to_tensor(y_pred)
        yt = ops.convert_to_tensor(y_true, device=pred.device) if not isinstance(y_true, ops.Tensor) else y_true
        if np.dtype(yt.dtype).kind == "f" and yt.dtype != pred.dtype:
            yt = ops.cast(yt, pred.dtype)
        return ops.mean(self.fn(yt, pred))

    def get_config(self):
        return {"name": self.name, "from_logits": False}


_LOSSES = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
}


def get(identifier):
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _LOSSES:
        return _LOSSES[identifier.lower()]()
    if callable(identifier) and not isinstance(identifier, type):
        return LossFunctionWrapper(identifier)
    raise ValueError(f"Unknown loss {identifier!r}; valid losses are {', '.join(sorted(_LOSSES))}, a Loss object "
                     "or a function fn(y_true, y_pred)")


def serialize(loss):
    return {"name": loss.name, "from_logits": loss.from_logits}


def deserialize(config, custom_objects=None):
    """The loss of ``serialize(loss)``: ``{"name": ..., "from_logits": ...}`` (or a bare
    name). A built-in name gives the built-in loss; another name must be a function
    registered with ``register_keras_serializable`` or given in ``custom_objects`` (code
    is never loaded). Anything else is a :class:`~convcore.saving.ConfigError` naming
    the key."""
    from .saving.config_errors import ConfigError, check_dict
    from .saving.object_registration import get_registered_object, is_private
    if isinstance(config, str):
        config = {"name": config}
    check_dict(config, (), "a loss config (a dict with 'name' and 'from_logits')")
    for k in config:
        if k not in ("name", "from_logits"):
            raise ConfigError(k, "is not a loss setting (a loss config has 'name' and 'from_logits')")
    if "name" not in config:
        raise ConfigError("name", "is missing")
    name, from_logits = config["name"], config.get("from_logits", False)
    if not isinstance(from_logits, bool):
        raise ConfigError("from_logits", f"must be true or false, got {from_logits!r}")
    if not isinstance(name, str):
        raise ConfigError("name", f"must be the name of a loss, got {type(name).__name__}")
    if name in _LOSSES:
        return _LOSSES[name](from_logits=from_logits)
    fn = get_registered_object(name, custom_objects) if not is_private(name) else None
    if callable(fn) and not isinstance(fn, type):
        if from_logits:
            raise ConfigError("from_logits", f"a loss function ({name!r}) takes no from_logits")
        return LossFunctionWrapper(fn, name=name)
    raise ConfigError("name", f"unknown loss {name!r}; known losses are {', '.join(sorted(_LOSSES))}, or a function "
                              "registered with register_keras_serializable or passed in custom_objects")
