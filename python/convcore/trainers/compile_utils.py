"""The loss and metrics a model is compiled with, and their running totals over an
epoch."""
from __future__ import annotations

import numpy as np

from .. import device as device_mod, losses as losses_mod, ops
from ..tensor import Tensor

_ACCURACY_KIND = {"sparse_categorical_crossentropy": "sparse", "categorical_crossentropy": "categorical",
                  "binary_crossentropy": "binary"}


class CompiledLoss:
    """The compiled loss: a Loss object (a name or a function are wrapped)."""

    def __init__(self, loss):
        self.loss = losses_mod.get(loss)

    def check_labels(self, y, out_shape):
        return self.loss.check_labels(y, out_shape)

    def __call__(self, y, pred):
        return self.loss(y, pred)


class CompiledMetrics:
    """``'accuracy'`` (with the loss's meaning of accuracy) and metric functions
    ``fn(y_true, y_pred)`` of tensors (their batch mean)."""

    def __init__(self, metrics, compiled_loss):
        self.loss = compiled_loss.loss
        self.names, self.fns = [], []
        for m in list(metrics or []):
            if isinstance(m, str):
                if m not in ("accuracy", "acc"):
                    raise ValueError(f"Unknown metric {m!r}; valid metrics are 'accuracy' or a function "
                                     "fn(y_true, y_pred)")
                if "accuracy" not in self.names:
                    self.names.append("accuracy")
                    self.fns.append(None)
            elif callable(m):
                self.names.append(getattr(m, "__name__", type(m).__name__))
                self.fns.append(m)
            else:
                raise ValueError(f"Unknown metric {m!r}; valid metrics are 'accuracy' or a function fn(y_true, y_pred)")

    def can_defer(self):
        """Whether loss and metrics can stay on the GPU for a whole epoch (the fused
        losses give [loss, accuracy] on the device)."""
        return getattr(self.loss, "native", "") != "" and all(f is None for f in self.fns)

    def _accuracy(self, y, pred):
        kind = _ACCURACY_KIND.get(getattr(self.loss, "name", ""))
        if kind is None:
            return float(np.mean(y == pred.numpy()))
        return float(ops.core.backend(pred).accuracy(kind, y, pred._data))

    def batch_values(self, loss, y, pred):
        """(loss, [metric values]) as floats."""
        if loss._stats is not None and self.names == ["accuracy"]:
            lv, av = loss._stats.numpy()  # the step's one read-back
            return float(lv), [float(av)]
        lv = float(loss)
        vals = []
        for f in self.fns:
            if f is None:
                vals.append(self._accuracy(y, pred))
            else:
                vals.append(float(ops.mean(f(ops.convert_to_tensor(y, device=pred.device), pred))))
        return lv, vals

    def running(self, deferred):
        return _Totals(self.names, deferred)


class _Totals:
    """Sample-weighted running means of the loss and metrics over an epoch."""

    def __init__(self, names, deferred):
        self.names, self.deferred = names, deferred
        self.sums = np.zeros(1 + len(names))
        self.seen = 0
        self.device_sum = None

    def add(self, lv, ms, k):
        self.sums += np.array([lv] + list(ms)) * k
        self.seen += k

    def add_device(self, loss, k):
        self.device_sum = device_mod.accumulate_pair(self.device_sum, loss._stats, k)
        self.seen += k

    def logs(self):
        if self.device_sum is not None:
            vals = np.asarray(self.device_sum.numpy(), dtype=np.float64)
            self.sums = vals[:1 + len(self.names)]
            self.device_sum = None
        means = self.sums / max(self.seen, 1)
        return dict(zip(["loss"] + self.names, [float(v) for v in means]))
