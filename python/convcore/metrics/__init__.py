"""``convcore.metrics``: Keras 3's stateful metrics (``update_state`` / ``result`` /
``reset_state``), their per-sample functions, and ``get`` / ``serialize`` /
``deserialize`` by Keras's names. State lives on the device of the tensors given."""
from __future__ import annotations

import inspect as _inspect

from .. import losses as _losses
from .accuracy import (Accuracy, BinaryAccuracy, BinaryCrossentropy, CategoricalAccuracy, CategoricalCrossentropy,
                       CategoricalHinge, CosineSimilarity, Hinge, KLDivergence, LogCoshError, MeanAbsoluteError,
                       MeanAbsolutePercentageError, MeanSquaredError, MeanSquaredLogarithmicError, Poisson,
                       RootMeanSquaredError, SparseCategoricalAccuracy, SparseCategoricalCrossentropy,
                       SparseTopKCategoricalAccuracy, SquaredHinge, TopKCategoricalAccuracy, accuracy, binary_accuracy,
                       categorical_accuracy, sparse_categorical_accuracy, sparse_top_k_categorical_accuracy,
                       top_k_categorical_accuracy)
from .base import Mean, MeanMetricWrapper, Metric, Sum, reduce_to_samplewise_values
from .confusion import (AUC, F1Score, FalseNegatives, FalsePositives, FBetaScore, MeanIoU, Precision, Recall,
                        TrueNegatives, TruePositives)

# the loss functions are metric functions too (keras.metrics.mean_squared_error, ...)
from ..losses import (binary_crossentropy, binary_focal_crossentropy, categorical_crossentropy,
                      categorical_focal_crossentropy, categorical_hinge, hinge, huber, kl_divergence, log_cosh,
                      logcosh, mean_absolute_error, mean_absolute_percentage_error, mean_squared_error,
                      mean_squared_logarithmic_error, poisson, sparse_categorical_crossentropy, squared_hinge)

mse, mae, mape, msle, kld = (mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
                             mean_squared_logarithmic_error, kl_divergence)
MSE, MAE, MAPE, MSLE, KLD = mse, mae, mape, msle, kld  # tf.keras 2's upper-case names

_CLASSES = {c.__name__: c for c in (
    Metric, Mean, Sum, MeanMetricWrapper, Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
    TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanSquaredError, MeanAbsoluteError,
    MeanAbsolutePercentageError, MeanSquaredLogarithmicError, RootMeanSquaredError, CosineSimilarity, LogCoshError,
    Hinge, SquaredHinge, CategoricalHinge, KLDivergence, Poisson, BinaryCrossentropy, CategoricalCrossentropy,
    SparseCategoricalCrossentropy, Precision, Recall, AUC, F1Score, FBetaScore, MeanIoU, TruePositives,
    FalsePositives, TrueNegatives, FalseNegatives)}
_FUNCTIONS = {f.__name__: f for f in (
    accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, top_k_categorical_accuracy,
    sparse_top_k_categorical_accuracy)}
_FUNCTIONS.update({n: f for n, f in _losses._FUNCTIONS.items()})


def _snake(n):
    from .base import _snake as s
    return s(n)


# Keras's table: class names, their snake_case, and the short aliases all name classes
_NAMES = dict(_CLASSES)
_NAMES.update({_snake(n): c for n, c in _CLASSES.items() if c not in (Metric, MeanMetricWrapper)})
_NAMES.update({"auc": AUC, "bce": BinaryCrossentropy, "BCE": BinaryCrossentropy, "mse": MeanSquaredError,
               "MSE": MeanSquaredError, "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
               "mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,
               "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError,
               "log_cosh_error": LogCoshError, "logcosh": LogCoshError, "kld": KLDivergence,
               "f1_score": F1Score, "fbeta_score": FBetaScore, "mean_io_u": MeanIoU, "mean_iou": MeanIoU})
_NAMES.pop("metric", None)


def _known():
    return ", ".join(sorted(n for n in _NAMES if n not in ("Metric", "MeanMetricWrapper")))


def _function_named(name, custom_objects=None):
    return _losses._function_in("metric", _FUNCTIONS, name, custom_objects)


def get(identifier):
    """A metric for an identifier, as ``keras.metrics.get``: a Metric (as is), a name
    (class names, their snake_case and 'mse', 'mae', 'mape', 'msle', 'bce', ...: a new
    Metric), a Metric class (instantiated), a config dict, or a function (returned as
    is: compile wraps it in :class:`MeanMetricWrapper`). ``'accuracy'`` / ``'acc'`` name
    :class:`Accuracy` here; ``compile`` resolves them from the loss and output shape."""
    if identifier is None:
        return None
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        cls = _NAMES.get(identifier) or (Accuracy if identifier == "acc" else None)
        if cls is None:
            raise ValueError(f"Unknown metric {identifier!r}; valid metrics are {_known()}, a Metric object or a "
                             "function fn(y_true, y_pred)")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier) and not isinstance(identifier, type):
        return identifier
    raise ValueError(f"Unknown metric {identifier!r}; valid metrics are {_known()}, a Metric object or a function "
                     "fn(y_true, y_pred)")


def serialize(metric):
    """Keras's ``{"module", "class_name", "config", "registered_name"}`` for a Metric; a
    function's registered name for a function."""
    from ..saving.object_registration import registered_name
    if not isinstance(metric, Metric):
        return registered_name(metric)
    return {"module": "keras.metrics", "class_name": type(metric).__name__ if type(metric).__name__ in _CLASSES
            else registered_name(type(metric)), "config": metric.get_config(), "registered_name": None}


def deserialize(config, custom_objects=None):
    """The metric of :func:`serialize` (or a name); unknown names and arguments are a
    :class:`~convcore.saving.ConfigError` naming the key."""
    from ..saving.config_errors import ConfigError, check_dict
    from ..saving.object_registration import get_registered_object, is_private
    if isinstance(config, str):
        try:
            return get(config)
        except ValueError:
            try:
                return _function_named(config, custom_objects)
            except ValueError:
                raise ConfigError((), f"unknown metric {config!r}; known metrics are {_known()}") from None
    check_dict(config, (), "a metric config (a dict with 'class_name' and 'config')")
    if "class_name" not in config:
        raise ConfigError("class_name", "is missing")
    cname = config["class_name"]
    cls = _CLASSES.get(cname) if isinstance(cname, str) else None
    if cls is None and isinstance(cname, str) and not is_private(cname):
        c = get_registered_object(cname, custom_objects)
        cls = c if isinstance(c, type) and issubclass(c, Metric) else None
    if cls is None or cls is Metric:
        raise ConfigError("class_name", f"unknown metric class {cname!r}; known classes are "
                                        f"{', '.join(sorted(n for n in _CLASSES if n != 'Metric'))}")
    inner = config.get("config", {})
    if not isinstance(inner, dict):
        raise ConfigError("config", f"must be a dict of the metric's arguments, got {type(inner).__name__}")
    params = _inspect.signature(cls.__init__).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        for k in inner:
            if k not in params or k == "self":
                raise ConfigError(("config", k), f"is not an argument of {cname}")
    try:
        return cls.from_config(inner)
    except (TypeError, ValueError) as e:
        raise ConfigError("config", str(e)) from None


__all__ = sorted(n for n in set(_CLASSES) | set(_FUNCTIONS) | {"get", "serialize", "deserialize",
                                                               "reduce_to_samplewise_values", "MSE", "MAE", "MAPE",
                                                               "MSLE", "KLD"} if n in globals())
