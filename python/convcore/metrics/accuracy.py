"""Accuracy metrics and the metrics that are running means of a per-sample function
(regression errors, cross-entropies, hinges), as ``keras.metrics`` names them. The
per-sample functions compare with arithmetic (``sign``, ``maximum``), which the GPU runs
on the device."""
from __future__ import annotations

import numpy as np

from .. import losses, ops
from ..losses import squeeze_or_expand_to_same_rank
from .base import Mean, MeanMetricWrapper, _float_dtype, as_float, device_of, eq, gt


def _tensors(y_true, y_pred):
    dev = device_of(y_pred, y_true)
    p = as_float(y_pred, dev, _float_dtype(y_pred))
    return as_float(y_true, dev, p.dtype), p


def _pred_of(y_true, y_pred):
    return as_float(y_pred, device_of(y_pred, y_true), _float_dtype(y_pred))


def accuracy(y_true, y_pred):
    """1.0 where ``y_true == y_pred`` (``keras.metrics.Accuracy``'s per-element value)."""
    t, p = squeeze_or_expand_to_same_rank(*_tensors(y_true, y_pred))
    return eq(t, p)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """1.0 where ``(y_pred > threshold) == y_true``."""
    t, p = squeeze_or_expand_to_same_rank(*_tensors(y_true, y_pred))
    return eq(t, gt(p, float(threshold)))


def _labels_host(y):
    """Class labels on the host (device labels: one read-back)."""
    return y.numpy() if isinstance(y, ops.Tensor) else np.asarray(y)


def _argmax_matches(labels, p):
    """1.0 where ``argmax(p, -1) == labels`` (numpy's first-maximum rule), computed on
    ``p``'s device: no value above the label's, and none equal to it before it."""
    k = p.shape[-1]
    labels = np.asarray(labels).astype(np.int64)
    ar = np.arange(k)
    onehot = ops.convert_to_tensor((labels[..., None] == ar).astype(np.float32), device=p.device)
    before = ops.convert_to_tensor((ar < labels[..., None]).astype(np.float32), device=p.device)
    neg = ops.convert_to_tensor(np.float32(-3.0e38), device=p.device)
    # the label's score (a row of -3e38 elsewhere, so inf and -inf stay out of products)
    at = ops.max(ops.add(ops.multiply(onehot, p), ops.multiply(ops.subtract(1.0, onehot), neg)), axis=-1,
                 keepdims=True)
    above = ops.sum(gt(p, at), axis=-1)
    tied_before = ops.sum(ops.multiply(eq(p, at), before), axis=-1)
    return ops.subtract(1.0, ops.minimum(ops.add(above, tied_before), 1.0))


def categorical_accuracy(y_true, y_pred):
    """1.0 where ``argmax(y_true) == argmax(y_pred)`` along the last axis."""
    p = _pred_of(y_true, y_pred)
    return _argmax_matches(np.argmax(_labels_host(y_true), axis=-1), p)


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the integer label equals ``argmax(y_pred)`` (labels (N,) or (N, 1))."""
    p = _pred_of(y_true, y_pred)
    lab = _labels_host(y_true)
    if lab.ndim == p.ndim and lab.shape[-1] == 1:
        lab = lab.reshape(lab.shape[:-1])
    valid = (lab == np.round(lab)) & (lab >= 0) & (lab < p.shape[-1])
    m = _argmax_matches(np.where(valid, lab, 0), p)
    if not valid.all():  # a label that is no class never matches
        m = ops.multiply(m, ops.convert_to_tensor(valid.astype(np.float32), device=p.device))
    return m


def _in_top_k(labels, p, k):
    kk = p.shape[-1]
    onehot = ops.convert_to_tensor((np.asarray(labels)[..., None] == np.arange(kk)).astype(np.float32),
                                   device=p.device)
    neg = ops.convert_to_tensor(np.float32(-3.0e38), device=p.device)
    at = ops.max(ops.add(ops.multiply(onehot, p), ops.multiply(ops.subtract(1.0, onehot), neg)), axis=-1,
                 keepdims=True)
    above = ops.sum(gt(p, at), axis=-1)  # the label's rank is 1 + above; ties count for the label
    return ops.subtract(1.0, gt(above, k - 0.5))


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where the one-hot label's class is among the ``k`` highest scores."""
    p = _pred_of(y_true, y_pred)
    return _in_top_k(np.argmax(_labels_host(y_true), axis=-1), p, k)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5, from_sorted_ids=False):
    """1.0 where the integer label is among the ``k`` highest scores (``from_sorted_ids``:
    ``y_pred`` holds class ids, best first, and the label is sought in its first ``k``)."""
    p = _pred_of(y_true, y_pred)
    lab = _labels_host(y_true).astype(np.int64)
    if lab.ndim == p.ndim and lab.shape[-1] == 1:
        lab = lab.reshape(lab.shape[:-1])
    if from_sorted_ids:
        ids = p[..., :k]
        want = ops.convert_to_tensor(lab[..., None].astype(np.float32 if p.device == "gpu" else np.dtype(p.dtype)),
                                     device=p.device)
        return ops.max(eq(ids, want), axis=-1)
    return _in_top_k(lab, p, k)


def _check_k(owner, k):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{owner}: k must be a positive int, received k={k!r}")
    return int(k)


def _config(metric, **args):
    """A built-in wrapper's config: name, dtype and its own arguments, without
    MeanMetricWrapper's ``fn`` (the class names the function)."""
    return {"name": metric.name, "dtype": metric.dtype, **args}


class Accuracy(MeanMetricWrapper):
    """How often predictions equal labels (``keras.metrics.Accuracy``)."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)

    def get_config(self):
        return _config(self)


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches the binary labels (``keras.metrics.BinaryAccuracy``)."""

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) or \
                not np.isfinite(threshold):
            raise ValueError(f"BinaryAccuracy: threshold must be a finite number, received threshold={threshold!r}")
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=float(threshold))
        self.threshold = float(threshold)

    def get_config(self):
        return _config(self, threshold=self.threshold)


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the arg-max of the prediction is the one-hot label's class."""

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)

    def get_config(self):
        return _config(self)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the arg-max of the prediction is the integer label."""

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)

    def get_config(self):
        return _config(self)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot label's class is in the top ``k`` predictions."""

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        k = _check_k("TopKCategoricalAccuracy", k)
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k

    def get_config(self):
        return _config(self, k=self.k)


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is in the top ``k`` predictions (``from_sorted_ids``:
    the predictions are class ids, best first)."""

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None, from_sorted_ids=False):
        k = _check_k("SparseTopKCategoricalAccuracy", k)
        if not isinstance(from_sorted_ids, (bool, np.bool_)):
            raise TypeError(f"SparseTopKCategoricalAccuracy: from_sorted_ids must be True or False, received "
                            f"from_sorted_ids={from_sorted_ids!r}")
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k,
                         from_sorted_ids=bool(from_sorted_ids))
        self.k, self.from_sorted_ids = k, bool(from_sorted_ids)

    def get_config(self):
        cfg = _config(self, k=self.k)
        if self.from_sorted_ids:  # as Keras: only when set
            cfg["from_sorted_ids"] = True
        return cfg


# ---------------------------------------------------------------- running means of per-sample functions
def _positive_cosine(y_true, y_pred, axis=-1):
    return ops.negative(losses.cosine_similarity(y_true, y_pred, axis=axis))


def _wrapper(cls_name, fn, default, args=(), doc=""):
    """A MeanMetricWrapper class with Keras's name, default name and arguments."""
    def __init__(self, name=default, dtype=None, **kw):
        bad = set(kw) - set(a for a, _ in args)
        if bad:
            raise TypeError(f"{cls_name}: unexpected arguments {sorted(bad)}; its arguments are name, dtype"
                            f"{''.join(', ' + a for a, _ in args)}")
        full = {a: kw.get(a, d) for a, d in args}
        MeanMetricWrapper.__init__(self, fn, name=name, dtype=dtype, **full)
        for a, v in full.items():
            setattr(self, a, v)

    def get_config(self):
        return _config(self, **{a: getattr(self, a) for a, _ in args})

    return type(cls_name, (MeanMetricWrapper,), {
        "__init__": __init__, "get_config": get_config, "__module__": __name__,
        "__doc__": doc or f"The running mean of ``{fn.__name__}`` (``keras.metrics.{cls_name}``)."})


MeanSquaredError = _wrapper("MeanSquaredError", losses.mean_squared_error, "mean_squared_error")
MeanAbsoluteError = _wrapper("MeanAbsoluteError", losses.mean_absolute_error, "mean_absolute_error")
MeanAbsolutePercentageError = _wrapper("MeanAbsolutePercentageError", losses.mean_absolute_percentage_error,
                                       "mean_absolute_percentage_error")
MeanSquaredLogarithmicError = _wrapper("MeanSquaredLogarithmicError", losses.mean_squared_logarithmic_error,
                                       "mean_squared_logarithmic_error")
CosineSimilarity = _wrapper("CosineSimilarity", _positive_cosine, "cosine_similarity", (("axis", -1),),
                            "The running mean of the cosine similarity (1: same direction).")
LogCoshError = _wrapper("LogCoshError", losses.log_cosh, "logcosh")
Hinge = _wrapper("Hinge", losses.hinge, "hinge")
SquaredHinge = _wrapper("SquaredHinge", losses.squared_hinge, "squared_hinge")
CategoricalHinge = _wrapper("CategoricalHinge", losses.categorical_hinge, "categorical_hinge")
KLDivergence = _wrapper("KLDivergence", losses.kl_divergence, "kl_divergence")
Poisson = _wrapper("Poisson", losses.poisson, "poisson")
BinaryCrossentropy = _wrapper("BinaryCrossentropy", losses.binary_crossentropy, "binary_crossentropy",
                              (("from_logits", False), ("label_smoothing", 0.0)))
CategoricalCrossentropy = _wrapper("CategoricalCrossentropy", losses.categorical_crossentropy,
                                   "categorical_crossentropy",
                                   (("from_logits", False), ("label_smoothing", 0.0), ("axis", -1)))
SparseCategoricalCrossentropy = _wrapper("SparseCategoricalCrossentropy", losses.sparse_categorical_crossentropy,
                                         "sparse_categorical_crossentropy",
                                         (("from_logits", False), ("ignore_class", None), ("axis", -1)))


class RootMeanSquaredError(Mean):
    """``sqrt`` of the running (weighted) mean of squared errors (``keras.metrics.RootMeanSquaredError``)."""

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        t, p = squeeze_or_expand_to_same_rank(*_tensors(y_true, y_pred))
        return super().update_state(ops.square(ops.subtract(p, t)), sample_weight=sample_weight)

    def result(self):
        return ops.sqrt(super().result())
