"""MonitorCallback: what EarlyStopping, ModelCheckpoint and ReduceLROnPlateau share —
the monitored key, its direction (``mode``) and Keras's improvement test."""
from __future__ import annotations

import operator

from .. import _checks
from .callback import Callback

# The direction Keras 3 gives its metrics (``Metric._direction``), by the names
# ``compile(metrics=[...])`` logs them under; a function metric that is one of Keras's
# losses is minimised.
_UP = {"accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
       "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "auc", "precision", "recall",
       "f1_score", "fbeta_score", "r2_score", "iou", "mean_iou", "one_hot_iou", "one_hot_mean_iou",
       "binary_iou", "pearson_correlation", "concordance_correlation", "cosine_similarity",
       "precision_at_recall", "recall_at_precision", "sensitivity_at_specificity",
       "specificity_at_sensitivity"}
_DOWN = {"mean_squared_error", "mse", "mean_absolute_error", "mae", "mean_absolute_percentage_error", "mape",
         "mean_squared_logarithmic_error", "msle", "root_mean_squared_error", "log_cosh_error", "logcosh",
         "hinge", "squared_hinge", "categorical_hinge", "kl_divergence", "kld", "kullback_leibler_divergence",
         "poisson", "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
         "binary_focal_crossentropy", "categorical_focal_crossentropy", "huber", "log_cosh"}


def _mode(cls, mode):
    """``mode`` checked at construction. (Keras 3.15 warns on an unknown mode and falls
    back to 'auto'; convcore refuses it.)"""
    return _checks.choice(cls, "mode", mode, ("auto", "min", "max"))


def _real_or_none(cls, name, value):
    return None if value is None else _checks.real(cls, name, value, finite=False)


class MonitorCallback(Callback):
    """Base of the callbacks that watch ``logs[monitor]``: in 'min' mode a value
    improves on the reference when ``value + min_delta < reference``, in 'max' mode
    when ``value - min_delta > reference`` (Keras's test; a NaN never improves). 'auto'
    minimises losses and the metrics Keras minimises, maximises accuracies and the
    metrics Keras maximises, and refuses a name whose direction it cannot tell (as
    Keras 3 does; pass mode='min' or 'max')."""

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        cls = type(self).__name__
        if not isinstance(monitor, str):
            raise TypeError(f"{cls}: monitor must be the name of a logged value, received monitor={monitor!r}")
        self.monitor = monitor
        self.mode = _mode(cls, mode)
        self.best = _real_or_none(cls, "baseline", baseline)
        self.min_delta = abs(_checks.real(cls, "min_delta", min_delta))
        self.monitor_op = None

    def _set_monitor_op(self):
        if self.mode == "min":
            self.monitor_op = operator.lt
        elif self.mode == "max":
            self.monitor_op = operator.gt
        else:
            name = self.monitor.removeprefix("val_")
            if name == "loss" or name in _DOWN:
                self.monitor_op = operator.lt
            elif name in _UP:
                self.monitor_op = operator.gt
            for m in getattr(self.model, "metrics", None) or []:
                if getattr(m, "name", None) == name and getattr(m, "_direction", None) in ("up", "down"):
                    self.monitor_op = operator.gt if m._direction == "up" else operator.lt
            if self.monitor_op is None:
                raise ValueError(f"{type(self).__name__} callback received monitor={self.monitor}, but convcore "
                                 "(as Keras) is not able to determine whether that metric should be maximized or "
                                 "minimized. Pass mode='max' in order to monitor based on the highest metric "
                                 "value, or pass mode='min' in order to use the lowest value.")
        if self.monitor_op is operator.lt:
            self.min_delta = -abs(self.min_delta)

    def _is_improvement(self, monitor_value, reference_value):
        if reference_value is None:
            return True
        return bool(self.monitor_op(monitor_value - self.min_delta, reference_value))

    def _config(self):
        return {"monitor": self.monitor, "mode": self.mode, "min_delta": abs(self.min_delta)}
