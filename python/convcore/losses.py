"""Losses by name or object; values and gradients are computed in Rust."""
from __future__ import annotations

import numpy as np

from . import _core


class Loss:
    name = "loss"
    native = ""

    def __init__(self, from_logits=False):
        self.from_logits = bool(from_logits)

    def check_labels(self, y, n_outputs_shape):
        return y

    def __call__(self, y_true, y_pred):
        """Mean loss over the batch (a float)."""
        return self.value_and_grad(y_true, y_pred, self.from_logits)[0]

    def value_and_grad(self, y_true, y_pred, from_logits):
        return _core.loss(self.native, y_true, np.ascontiguousarray(y_pred), bool(from_logits))

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
    raise ValueError(f"Unknown loss {identifier!r}; valid losses are {', '.join(sorted(_LOSSES))} or a Loss object")


def serialize(loss):
    return {"name": loss.name, "from_logits": loss.from_logits}


def deserialize(d):
    return _LOSSES[d["name"]](from_logits=d.get("from_logits", False))
