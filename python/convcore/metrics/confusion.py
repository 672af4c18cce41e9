"""Metrics over confusion counts: ``Precision``, ``Recall``, ``AUC``, ``FBetaScore`` /
``F1Score`` and ``MeanIoU``, as ``keras.metrics`` defines them. The counts are tensors
on the device of the predictions, accumulated with arithmetic the GPU runs itself."""
from __future__ import annotations

import numpy as np

from .. import ops
from ..losses import squeeze_or_expand_to_same_rank
from .base import Metric, _float_dtype, as_float, device_of, divide_no_nan, ge, gt

NEG_INF = -1e10
_EPS = 1e-7


def _thresholds(owner, thresholds, default):
    if thresholds is None:
        return [default]
    ts = list(thresholds) if isinstance(thresholds, (list, tuple, np.ndarray)) else [thresholds]
    bad = [t for t in ts if isinstance(t, bool) or not isinstance(t, (int, float, np.number)) or not 0 <= t <= 1]
    if bad or not ts:
        raise ValueError(f"{owner}: thresholds must be numbers in [0, 1], received thresholds={thresholds!r}")
    return [float(t) for t in ts]


def _opt_int(owner, arg, v, minimum=0):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError(f"{owner}: {arg} must be an int >= {minimum} or None, received {arg}={v!r}")
    return int(v)


def _top_k_filter(p, k):
    """Scores outside the top ``k`` of their row become NEG_INF (ties: a value is kept
    when fewer than ``k`` values are strictly larger)."""
    above = ops.sum(gt(ops.expand_dims(p, -2), ops.expand_dims(p, -1)), axis=-1)
    keep = ops.subtract(1.0, gt(above, k - 0.5))
    return ops.add(ops.multiply(p, keep), ops.multiply(ops.subtract(1.0, keep), NEG_INF))


def confusion_counts(y_true, y_pred, thresholds, sample_weight=None, top_k=None, class_id=None, want=("tp",),
                     multi_label=False, label_weights=None):
    """Keras's ``update_confusion_matrix_variables``: for each threshold, the (weighted)
    counts of true / false positives / negatives, a prediction counting as positive when
    it is above the threshold and a label when it is non-zero (``multi_label``: one count
    per threshold and label; ``label_weights``: a weight per label of the last axis)."""
    dev = device_of(y_pred, y_true)
    p = as_float(y_pred, dev, _float_dtype(y_pred))
    t = as_float(y_true, dev, p.dtype)
    p, t = squeeze_or_expand_to_same_rank(p, t)
    if tuple(p.shape) != tuple(t.shape):
        raise ValueError(f"y_true and y_pred must have the same shape, received y_true.shape={tuple(t.shape)} and "
                         f"y_pred.shape={tuple(p.shape)}")
    sw = None
    if sample_weight is not None:
        sw = ops.expand_dims(as_float(sample_weight, dev, p.dtype), -1)
        _, sw = squeeze_or_expand_to_same_rank(t, sw, expand_rank_1=False)
    if top_k is not None:
        p = _top_k_filter(p, top_k)
    if class_id is not None:
        if p.ndim == 1:
            raise ValueError(f"class_id needs y_pred of shape (num_samples, num_classes), received shape {p.shape}")
        t, p = t[..., class_id:class_id + 1], p[..., class_id:class_id + 1]
    m = int(np.prod(p.shape))
    # (1, m) values against (thresholds, 1); multi-label: (1, N, labels) against (thresholds, 1, 1)
    flat = (1, m) if not multi_label else (1,) + tuple(p.shape)
    pf = ops.reshape(p, flat)
    label = ops.reshape(ops.minimum(ops.abs(ops.sign(t)), 1.0), flat)
    th = ops.convert_to_tensor(np.asarray(thresholds, dtype=np.float32 if dev == "gpu" else p.dtype).reshape(
        (-1,) + (1,) * (len(flat) - 1)), device=dev)
    pos = gt(pf, th)
    w = None
    if sw is not None:
        w = ops.reshape(ops.broadcast_to(sw, p.shape), flat)
    if label_weights is not None:
        lw = ops.reshape(ops.broadcast_to(as_float(label_weights, dev, p.dtype), p.shape), flat)
        w = lw if w is None else ops.multiply(w, lw)
    out = {}
    for key in want:
        lab = label if key in ("tp", "fn") else ops.subtract(1.0, label)
        pr = pos if key in ("tp", "fp") else ops.subtract(1.0, pos)
        both = ops.multiply(lab, pr)
        if w is not None:
            both = ops.multiply(both, w)
        out[key] = ops.sum(both, axis=1)
    return out


class _Confusion(Metric):
    _keys = ()

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        owner = type(self).__name__
        self.init_thresholds = thresholds
        self.top_k = _opt_int(owner, "top_k", top_k, 1)
        self.class_id = _opt_int(owner, "class_id", class_id)
        self.thresholds = _thresholds(owner, thresholds, 0.5 if top_k is None else NEG_INF)
        for k in self._keys:
            setattr(self, _NAMES[k], self.add_variable((len(self.thresholds),), name=_NAMES[k]))

    def update_state(self, y_true, y_pred, sample_weight=None):
        c = confusion_counts(y_true, y_pred, self.thresholds, sample_weight, self.top_k, self.class_id, self._keys)
        for k, v in c.items():
            self._add(_NAMES[k], v)

    def _value(self, other):
        r = divide_no_nan(self.true_positives, ops.add(self.true_positives, other))
        return r[0] if len(self.thresholds) == 1 else r

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"thresholds": self.init_thresholds, "top_k": self.top_k, "class_id": self.class_id})
        return cfg


_NAMES = {"tp": "true_positives", "fp": "false_positives", "tn": "true_negatives", "fn": "false_negatives"}


class Precision(_Confusion):
    """``tp / (tp + fp)`` over the batches (``keras.metrics.Precision``): ``thresholds``
    (one value or a list: a result per threshold; default 0.5), ``top_k`` (only the k
    highest scores of a row count as predicted), ``class_id`` (one class of a
    multi-label output)."""
    _keys = ("tp", "fp")

    def result(self):
        return self._value(self.false_positives)


class Recall(_Confusion):
    """``tp / (tp + fn)`` over the batches (``keras.metrics.Recall``); arguments as
    :class:`Precision`."""
    _keys = ("tp", "fn")

    def result(self):
        return self._value(self.false_negatives)


_CURVES = {"roc": "ROC", "pr": "PR"}
_SUMMATIONS = ("interpolation", "majoring", "minoring")


class AUC(Metric):
    """Area under the ROC or precision-recall curve from ``num_thresholds`` confusion
    counts (``keras.metrics.AUC``): ``curve='ROC'|'PR'``, ``summation_method``
    ('interpolation' (PR: Davis & Goadrich), 'majoring', 'minoring'), ``thresholds``
    (explicit interior thresholds), ``multi_label`` (an AUC per label of a (N, labels)
    output, averaged, weighted by ``label_weights``), ``label_weights`` (else: a weight
    per label in the counts), ``from_logits`` (a sigmoid is applied first). The curve
    'PRGAIN' is not supported."""

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name=None, dtype=None,
                 thresholds=None, multi_label=False, num_labels=None, label_weights=None, from_logits=False):
        if not isinstance(curve, str) or curve.lower() not in _CURVES:
            raise ValueError(f"AUC: curve must be one of 'ROC', 'PR', received curve={curve!r}")
        if not isinstance(summation_method, str) or summation_method.lower() not in _SUMMATIONS:
            raise ValueError(f"AUC: summation_method must be one of {', '.join(map(repr, _SUMMATIONS))}, received "
                             f"summation_method={summation_method!r}")
        if not isinstance(multi_label, (bool, np.bool_)):
            raise TypeError(f"AUC: multi_label must be True or False, received multi_label={multi_label!r}")
        if num_labels is not None and not multi_label:
            raise ValueError("AUC: num_labels is needed only when multi_label is True")
        num_labels = _opt_int("AUC", "num_labels", num_labels, 1)
        if not isinstance(from_logits, (bool, np.bool_)):
            raise TypeError(f"AUC: from_logits must be True or False, received from_logits={from_logits!r}")
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(_thresholds("AUC", thresholds, 0.5))
            self.num_thresholds = len(inner) + 2
        else:
            if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, (int, np.integer)) or \
                    num_thresholds <= 1:
                raise ValueError(f"AUC: num_thresholds must be an int > 1, received num_thresholds={num_thresholds!r}")
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) * 1.0 / (self.num_thresholds - 1) for i in range(self.num_thresholds - 2)]
        self._thresholds = np.array([0.0 - _EPS] + inner + [1.0 + _EPS])
        self.curve = _CURVES[curve.lower()]
        self.summation_method = summation_method.lower()
        self.multi_label, self.num_labels = bool(multi_label), num_labels
        self.label_weights = None if label_weights is None else [float(w) for w in np.asarray(
            label_weights, dtype=np.float64).reshape(-1)]
        self._from_logits = bool(from_logits)
        super().__init__(name=name, dtype=dtype)
        self._built = False
        if not self.multi_label:
            self._build(None)
        elif num_labels:
            self._build(num_labels)

    def _build(self, labels):
        shape = (self.num_thresholds,) if labels is None else (self.num_thresholds, labels)
        for k in ("tp", "fp", "tn", "fn"):
            setattr(self, _NAMES[k], self.add_variable(shape, name=_NAMES[k]))
        self._built = True

    @property
    def thresholds(self):
        return list(self._thresholds)

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self._from_logits:
            dev = device_of(y_pred, y_true)
            y_pred = ops.sigmoid(as_float(y_pred, dev, _float_dtype(y_pred)))
        if not self._built:
            shape = np.shape(y_pred)
            if len(shape) != 2:
                raise ValueError(f"AUC: y_pred must have rank 2 when multi_label=True, received shape {shape}")
            self._build(shape[1])
        c = confusion_counts(y_true, y_pred, self._thresholds, sample_weight, want=("tp", "fp", "tn", "fn"),
                             multi_label=self.multi_label,
                             label_weights=None if self.multi_label else self.label_weights)
        for k, v in c.items():
            self._add(_NAMES[k], v)

    def _interpolate_pr(self):
        n = self.num_thresholds
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = ops.subtract(tp[:n - 1], tp[1:])
        p = ops.add(tp, fp)
        dp = ops.subtract(p[:n - 1], p[1:])
        slope = divide_no_nan(dtp, ops.maximum(dp, 0.0))
        intercept = ops.subtract(tp[1:], ops.multiply(slope, p[1:]))
        both = ops.multiply(gt(p[:n - 1], 0.0), gt(p[1:], 0.0))
        ratio = divide_no_nan(p[:n - 1], ops.maximum(p[1:], 0.0))
        safe = ops.add(ops.multiply(both, ratio), ops.subtract(1.0, both))
        inc = divide_no_nan(ops.multiply(slope, ops.add(dtp, ops.multiply(intercept, ops.log(safe)))),
                            ops.maximum(ops.add(tp[1:], fn[1:]), 0.0))
        return self._over_labels(inc)

    def _over_labels(self, terms):
        """The sum over thresholds; multi-label: the (label-weighted) mean of each label's."""
        if not self.multi_label:
            return ops.sum(terms)
        by_label = ops.sum(terms, axis=0)
        if self.label_weights is None:
            return ops.mean(by_label)
        lw = as_float(self.label_weights, by_label.device, by_label.dtype)
        return divide_no_nan(ops.sum(ops.multiply(by_label, lw)), ops.sum(lw))

    def result(self):
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr()
        tp, fp, tn, fn = self.true_positives, self.false_positives, self.true_negatives, self.false_negatives
        recall = divide_no_nan(tp, ops.add(tp, fn))
        if self.curve == "ROC":
            x, y = divide_no_nan(fp, ops.add(fp, tn)), recall
        else:
            x, y = recall, divide_no_nan(tp, ops.add(tp, fp))
        n = self.num_thresholds
        if self.summation_method == "interpolation":
            h = ops.multiply(ops.add(y[:n - 1], y[1:]), 0.5)
        elif self.summation_method == "minoring":
            h = ops.minimum(y[:n - 1], y[1:])
        else:
            h = ops.maximum(y[:n - 1], y[1:])
        return self._over_labels(ops.multiply(ops.subtract(x[:n - 1], x[1:]), h))

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"num_thresholds": self.num_thresholds, "curve": self.curve,
                    "summation_method": self.summation_method, "multi_label": self.multi_label,
                    "num_labels": self.num_labels, "label_weights": self.label_weights,
                    "from_logits": self._from_logits})
        if self._init_from_thresholds:
            cfg["thresholds"] = self.thresholds[1:-1]
        return cfg


class FBetaScore(Metric):
    """F-beta score of multi-label / one-hot outputs (``keras.metrics.FBetaScore``):
    ``average`` None (one score per class), 'micro', 'macro' or 'weighted'; ``threshold``
    None takes each row's maximum as its prediction."""

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score", dtype=None):
        owner = type(self).__name__
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"{owner}: average must be one of None, 'micro', 'macro', 'weighted', received "
                             f"average={average!r}")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
            raise ValueError(f"{owner}: beta must be a number > 0, received beta={beta!r}")
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                      or not 0 < threshold <= 1):
            raise ValueError(f"{owner}: threshold must be a number in (0, 1] or None, received threshold={threshold!r}")
        super().__init__(name=name, dtype=dtype)
        self.average, self.beta = average, float(beta)
        self.threshold = None if threshold is None else float(threshold)
        self.axis = None if average == "micro" else 0
        self._built = False

    def _build(self, yt_shape, yp_shape):
        if len(yp_shape) != 2 or len(yt_shape) != 2:
            raise ValueError(f"{type(self).__name__} expects 2D inputs with shape (batch_size, output_dim), received "
                             f"y_pred.shape={tuple(yp_shape)} and y_true.shape={tuple(yt_shape)}")
        shape = (yp_shape[-1],) if self.average != "micro" else ()
        for n in ("true_positives", "false_positives", "false_negatives", "intermediate_weights"):
            setattr(self, n, self.add_variable(shape, name=n))
        self._built = True

    def update_state(self, y_true, y_pred, sample_weight=None):
        dev = device_of(y_pred, y_true)
        p = as_float(y_pred, dev, _float_dtype(y_pred))
        t = as_float(y_true, dev, p.dtype)
        if not self._built:
            self._build(t.shape, p.shape)
        if self.threshold is None:
            p = ops.multiply(ge(p, ops.max(p, axis=-1, keepdims=True)), gt(ops.abs(p), 1e-9))
        else:
            p = gt(p, self.threshold)
        sw = None if sample_weight is None else ops.expand_dims(as_float(sample_weight, dev, p.dtype), 1)

        def wsum(v):
            return ops.sum(v if sw is None else ops.multiply(v, sw), axis=self.axis)
        self._add("true_positives", wsum(ops.multiply(p, t)))
        self._add("false_positives", wsum(ops.multiply(p, ops.subtract(1.0, t))))
        self._add("false_negatives", wsum(ops.multiply(ops.subtract(1.0, p), t)))
        self._add("intermediate_weights", wsum(t))

    def result(self):
        if not self._built:
            raise ValueError(f"{type(self).__name__}: result() before any update_state()")
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        precision = ops.divide(tp, ops.add(ops.add(tp, fp), _EPS))
        recall = ops.divide(tp, ops.add(ops.add(tp, fn), _EPS))
        b2 = self.beta ** 2
        f = ops.multiply(ops.divide(ops.multiply(precision, recall),
                                    ops.add(ops.add(ops.multiply(precision, b2), recall), _EPS)), 1 + b2)
        if self.average == "weighted":
            w = ops.divide(self.intermediate_weights, ops.add(ops.sum(self.intermediate_weights), _EPS))
            return ops.sum(ops.multiply(f, w))
        if self.average is not None:
            return ops.mean(f)
        return f

    def reset_state(self):
        if self._built:
            super().reset_state()

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"average": self.average, "beta": self.beta, "threshold": self.threshold})
        return cfg


class F1Score(FBetaScore):
    """F1 score (``keras.metrics.F1Score``): :class:`FBetaScore` with ``beta=1``."""

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self):
        cfg = super().get_config()
        del cfg["beta"]
        return cfg


class MeanIoU(Metric):
    """Mean intersection-over-union over ``num_classes`` classes from a running
    confusion matrix (``keras.metrics.MeanIoU``): labels and predictions are class ids
    (``sparse_y_true`` / ``sparse_y_pred`` False: one-hot / scores, arg-max along
    ``axis``); ``ignore_class`` leaves a label out. As Keras's default integer dtype,
    sample weights are truncated to whole numbers unless ``dtype`` is a float type."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_true=True, sparse_y_pred=True,
                 axis=-1):
        n = _opt_int("MeanIoU", "num_classes", num_classes, 1)
        if n is None:
            raise ValueError("MeanIoU: num_classes must be an int >= 1, received num_classes=None")
        super().__init__(name=name, dtype=dtype)
        self._int_weights = dtype is None or dtype == "int" or np.dtype(dtype).kind in "iu"
        self._dtype_arg = dtype
        self.num_classes = n
        self.ignore_class = _opt_int("MeanIoU", "ignore_class", ignore_class, -2 ** 31)
        self.sparse_y_true, self.sparse_y_pred, self.axis = bool(sparse_y_true), bool(sparse_y_pred), int(axis)
        self.total_cm = self.add_variable((n, n), name="total_cm")

    def update_state(self, y_true, y_pred, sample_weight=None):
        dev = device_of(y_pred, y_true)
        t = y_true.numpy() if isinstance(y_true, ops.Tensor) else np.asarray(y_true)
        p = y_pred.numpy() if isinstance(y_pred, ops.Tensor) else np.asarray(y_pred)  # class ids: one read of y_pred
        if not self.sparse_y_true:
            t = np.argmax(t, axis=self.axis)
        if not self.sparse_y_pred:
            p = np.argmax(p, axis=self.axis)
        t, p = t.reshape(-1).astype(np.int64), p.reshape(-1).astype(np.int64)
        w = np.ones(t.shape) if sample_weight is None else np.broadcast_to(
            np.asarray(sample_weight.numpy() if isinstance(sample_weight, ops.Tensor) else sample_weight,
                       dtype=np.float64).reshape(-1), t.shape)
        if self._int_weights:
            w = np.trunc(w)
        ok = (t >= 0) & (t < self.num_classes) & (p >= 0) & (p < self.num_classes)
        if self.ignore_class is not None:
            ok &= t != self.ignore_class
        k = self.num_classes
        oh_t = ((np.where(ok, t, 0)[:, None] == np.arange(k)) * np.where(ok, w, 0)[:, None]).astype(np.float32)
        oh_p = (np.where(ok, p, 0)[:, None] == np.arange(k)).astype(np.float32)
        a, b = (ops.convert_to_tensor(v, device=dev) for v in (oh_t, oh_p))
        self._add("total_cm", ops.matmul(ops.transpose(a), b))

    def result(self):
        cm = self.total_cm
        rows, cols = ops.sum(cm, axis=0), ops.sum(cm, axis=1)
        diag = ops.sum(ops.multiply(cm, ops.convert_to_tensor(np.eye(self.num_classes, dtype=np.float32),
                                                               device=cm.device)), axis=1)
        denom = ops.subtract(ops.add(rows, cols), diag)
        valid = ops.sum(gt(denom, 0.0))
        return divide_no_nan(ops.sum(divide_no_nan(diag, denom)), valid)

    def get_config(self):
        return {"num_classes": self.num_classes, "name": self.name, "dtype": self._dtype_arg,
                "ignore_class": self.ignore_class, "sparse_y_true": self.sparse_y_true,
                "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class _Count(Metric):
    _key = ""

    def __init__(self, thresholds=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.thresholds = _thresholds(type(self).__name__, thresholds, 0.5)
        self.accumulator = self.add_variable((len(self.thresholds),), name="accumulator")

    def update_state(self, y_true, y_pred, sample_weight=None):
        c = confusion_counts(y_true, y_pred, self.thresholds, sample_weight, want=(self._key,))
        self._add("accumulator", c[self._key])

    def result(self):
        return ops.copy(self.accumulator[0] if len(self.thresholds) == 1 else self.accumulator)

    def get_config(self):
        cfg = super().get_config()
        cfg["thresholds"] = self.init_thresholds
        return cfg


def _count(cls_name, key, what):
    return type(cls_name, (_Count,), {"_key": key, "__module__": __name__, "__doc__":
                                      f"The (weighted) number of {what} at each threshold (default 0.5: a "
                                      f"prediction above it is positive; ``keras.metrics.{cls_name}``)."})


TruePositives = _count("TruePositives", "tp", "true positives")
FalsePositives = _count("FalsePositives", "fp", "false positives")
TrueNegatives = _count("TrueNegatives", "tn", "true negatives")
FalseNegatives = _count("FalseNegatives", "fn", "false negatives")
