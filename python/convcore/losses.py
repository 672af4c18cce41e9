"""``convcore.losses``: Keras 3's losses (classes, functions and string names) written
with :mod:`convcore.ops`, so they run on the device of their inputs and the tape
differentiates them. A loss object ``loss(y_true, y_pred, sample_weight=None)`` reduces
the per-sample values as Keras does (``reduction``). The four losses with a native kernel
(sparse / categorical / binary cross-entropy, mean squared error) take that one fused
kernel whenever no option it lacks is asked for: that is what makes training fast."""
from __future__ import annotations

import inspect

import numpy as np

from . import ops

_EPSILON = 1e-7  # keras.backend.epsilon()
_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


class Reduction:
    """tf.keras 2's names of the reductions (``tf.keras.losses.Reduction``); ``AUTO`` is
    ``"sum_over_batch_size"`` as there."""
    AUTO = "auto"
    NONE = "none"
    SUM = "sum"
    SUM_OVER_BATCH_SIZE = "sum_over_batch_size"

    @classmethod
    def all(cls):
        return (cls.AUTO, cls.NONE, cls.SUM, cls.SUM_OVER_BATCH_SIZE)


def _standardize_reduction(owner, reduction):
    if reduction == "auto":  # tf.keras 2
        return "sum_over_batch_size"
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{owner}: reduction must be one of {', '.join(repr(r) for r in _REDUCTIONS)}, "
                         f"received reduction={reduction!r}")
    return reduction


def _snake(name):
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(c.lower())
    return "".join(out)


# ---------------------------------------------------------------------- tensor helpers
def _pred(y_pred, dtype=None):
    p = ops.core.tensor(y_pred)
    if dtype is not None:
        return ops.cast(p, dtype)
    if np.dtype(p.dtype).kind != "f":
        from . import backend
        p = ops.cast(p, backend.floatx())
    return p


def _like(y, pred, dtype=None):
    """``y`` as a tensor on ``pred``'s device in ``pred``'s float dtype (Keras casts the
    targets to the loss's dtype)."""
    t = ops.core.tensor(y, pred)
    if isinstance(y, ops.Tensor) and t.device != pred.device:
        t = ops.core.tensor(y.numpy(), pred)
    return ops.cast(t, dtype or pred.dtype)


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Keras's rule: where the ranks differ by one and the longer has a last axis of 1,
    squeeze it (or expand a rank-1 partner)."""
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = ops.expand_dims(x2, -1)
        else:
            x1 = ops.squeeze(x1, -1)
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = ops.expand_dims(x1, -1)
        else:
            x2 = ops.squeeze(x2, -1)
    return x1, x2


def _pair(y_true, y_pred):
    p = _pred(y_pred)
    return squeeze_or_expand_to_same_rank(_like(y_true, p), p)


def _divide_no_nan(a, b):
    # as arithmetic (sign has a device kernel; comparisons and where run on the host on the GPU)
    is0 = ops.subtract(1.0, ops.abs(ops.sign(b)))
    return ops.multiply(ops.divide(a, ops.add(b, is0)), ops.subtract(1.0, is0))


def _l2_normalize(x, axis):
    inv = ops.minimum(ops.reciprocal(ops.sqrt(ops.sum(ops.square(x), axis=axis, keepdims=True))), 1.0 / _EPSILON)
    return ops.multiply(x, inv)


# ---------------------------------------------------------------------- functions
def mean_squared_error(y_true, y_pred):
    """``mean(square(y_true - y_pred), axis=-1)``."""
    t, p = _pair(y_true, y_pred)
    return ops.mean(ops.square(ops.subtract(t, p)), axis=-1)


def mean_absolute_error(y_true, y_pred):
    """``mean(abs(y_true - y_pred), axis=-1)``."""
    t, p = _pair(y_true, y_pred)
    return ops.mean(ops.abs(ops.subtract(t, p)), axis=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    """``100 * mean(abs((y_true - y_pred) / max(abs(y_true), epsilon)), axis=-1)``."""
    t, p = _pair(y_true, y_pred)
    diff = ops.abs(ops.divide(ops.subtract(t, p), ops.maximum(ops.abs(t), _EPSILON)))
    return ops.multiply(ops.mean(diff, axis=-1), 100.0)


def mean_squared_logarithmic_error(y_true, y_pred):
    """``mean(square(log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)), axis=-1)``."""
    t, p = _pair(y_true, y_pred)
    a = ops.log(ops.add(ops.maximum(p, _EPSILON), 1.0))
    b = ops.log(ops.add(ops.maximum(t, _EPSILON), 1.0))
    return ops.mean(ops.square(ops.subtract(a, b)), axis=-1)


def cosine_similarity(y_true, y_pred, axis=-1):
    """``-sum(l2_normalize(y_true) * l2_normalize(y_pred), axis)`` (-1: same direction)."""
    t, p = _pair(y_true, y_pred)
    return ops.negative(ops.sum(ops.multiply(_l2_normalize(t, axis), _l2_normalize(p, axis)), axis=axis))


def huber(y_true, y_pred, delta=1.0):
    """Quadratic for ``|error| <= delta``, linear beyond; mean over the last axis."""
    t, p = _pair(y_true, y_pred)
    a = ops.abs(ops.subtract(p, t))
    # 0.5 a**2 where a <= delta, else delta * a - 0.5 delta**2: with m = min(a, delta) both
    # are 0.5 m**2 + delta (a - m), values and gradient (device kernels only)
    m = ops.minimum(a, float(delta))
    return ops.mean(ops.add(ops.multiply(ops.square(m), 0.5), ops.multiply(ops.subtract(a, m), float(delta))), axis=-1)


def log_cosh(y_true, y_pred):
    """``mean(log(cosh(y_pred - y_true)), axis=-1)``, as ``x + softplus(-2x) - log 2``."""
    t, p = _pair(y_true, y_pred)
    x = ops.subtract(p, t)
    return ops.mean(ops.subtract(ops.add(x, ops.softplus(ops.multiply(x, -2.0))), float(np.log(2.0))), axis=-1)


logcosh = log_cosh


def kl_divergence(y_true, y_pred):
    """``sum(y_true * log(y_true / y_pred), axis=-1)``, both clipped to [epsilon, 1]."""
    p = _pred(y_pred)
    # clip as maximum / minimum: the same values and gradient, and device kernels on the GPU
    t = ops.minimum(ops.maximum(_like(y_true, p), _EPSILON), 1.0)
    p = ops.minimum(ops.maximum(p, _EPSILON), 1.0)
    return ops.sum(ops.multiply(t, ops.log(ops.divide(t, p))), axis=-1)


def poisson(y_true, y_pred):
    """``mean(y_pred - y_true * log(y_pred + epsilon), axis=-1)``."""
    p = _pred(y_pred)
    t = _like(y_true, p)
    return ops.mean(ops.subtract(p, ops.multiply(t, ops.log(ops.add(p, _EPSILON)))), axis=-1)


def _hinge_labels(y_true, p):
    """Keras's rule: labels that are all 0 / 1 become -1 / 1. Host labels are checked on
    the host; device labels by one reduction read back."""
    t = _like(y_true, p)
    if isinstance(y_true, ops.Tensor) and y_true.device != "cpu":
        binary = float(ops.sum(ops.abs(ops.multiply(t, ops.subtract(t, 1.0)))).numpy()) == 0.0
    else:
        a = y_true.numpy() if isinstance(y_true, ops.Tensor) else np.asarray(y_true)
        binary = bool(np.all((a == 0) | (a == 1)))
    return ops.subtract(ops.multiply(t, 2.0), 1.0) if binary else t


def hinge(y_true, y_pred):
    """``mean(max(1 - y_true * y_pred, 0), axis=-1)``; 0 / 1 labels are taken as -1 / 1."""
    p = _pred(y_pred)
    t = _hinge_labels(y_true, p)
    return ops.mean(ops.maximum(ops.subtract(1.0, ops.multiply(t, p)), 0.0), axis=-1)


def squared_hinge(y_true, y_pred):
    """``mean(square(max(1 - y_true * y_pred, 0)), axis=-1)``; 0 / 1 labels as -1 / 1."""
    p = _pred(y_pred)
    t = _hinge_labels(y_true, p)
    return ops.mean(ops.square(ops.maximum(ops.subtract(1.0, ops.multiply(t, p)), 0.0)), axis=-1)


def categorical_hinge(y_true, y_pred):
    """``max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)`` over the last axis."""
    p = _pred(y_pred)
    t = _like(y_true, p)
    pos = ops.sum(ops.multiply(t, p), axis=-1)
    neg = ops.max(ops.multiply(ops.subtract(1.0, t), p), axis=-1)
    return ops.maximum(ops.add(ops.subtract(neg, pos), 1.0), 0.0)


def _check_axis(f, axis):
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"{f}: axis must be an int, received axis={axis!r}")
    return int(axis)


def _smooth_categorical(t, label_smoothing):
    if label_smoothing:
        k = t.shape[-1]
        t = ops.add(ops.multiply(t, 1.0 - label_smoothing), label_smoothing / k)
    return t


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample cross-entropy of one-hot (or soft) targets; ``label_smoothing`` mixes
    the targets with the uniform distribution."""
    axis = _check_axis("categorical_crossentropy", axis)
    p = _pred(y_pred)
    t = _smooth_categorical(_like(y_true, p), label_smoothing)
    return _cce_values("categorical_crossentropy", t, p, from_logits, axis)


def categorical_focal_crossentropy(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0,
                                   axis=-1):
    """Cross-entropy with each class term scaled by ``alpha * (1 - p)**gamma``."""
    axis = _check_axis("categorical_focal_crossentropy", axis)
    p = _pred(y_pred)
    t = _smooth_categorical(_like(y_true, p), label_smoothing)
    if from_logits:
        p = ops.softmax(p, axis=axis)
    o = _clip_probs(ops.divide(p, ops.sum(p, axis=axis, keepdims=True)))
    cce = ops.negative(ops.multiply(t, ops.log(o)))
    w = ops.multiply(ops.power(ops.subtract(1.0, o), gamma), alpha)
    return ops.sum(ops.multiply(w, cce), axis=axis)


def _sparse_labels(y_true, p):
    """Integer labels on the host (device labels: one read-back), checked: whole
    numbers in [0, classes), shaped as y_pred without its class axis."""
    f = "sparse_categorical_crossentropy"
    y = y_true.numpy() if isinstance(y_true, ops.Tensor) else np.asarray(y_true)
    if y.ndim == p.ndim and y.ndim and y.shape[-1] == 1:
        y = y.reshape(y.shape[:-1])
    if y.dtype.kind not in "biuf":
        raise TypeError(f"{f}: labels must be integer class indices, received dtype {y.dtype}")
    if tuple(y.shape) != tuple(p.shape[:-1]):
        raise ValueError(f"{f}: y_true (class labels) must have shape {tuple(p.shape[:-1])} (y_pred's shape without "
                         f"the class axis) or {tuple(p.shape[:-1]) + (1,)}, received {y.shape}")
    if y.dtype.kind == "f" and (not np.all(np.isfinite(y)) or np.any(y != np.round(y))):
        raise ValueError(f"{f}: labels must be whole numbers (class indices)")
    return y.astype(np.int64)


def _one_hot(labels, p):
    k = p.shape[-1]
    bad = (labels < 0) | (labels >= k)
    if bad.any():
        b = int(labels[bad].reshape(-1)[0])
        raise ValueError(f"sparse_categorical_crossentropy: label {b} is out of range for {k} classes (valid labels: "
                         f"0..{k - 1})")
    return ops.core.tensor((labels[..., None] == np.arange(k)).astype(np.dtype(p.dtype)), p)


def _clip_probs(o):
    # Keras's clip to [eps, 1 - eps] as maximum / minimum: the same values and gradient, and
    # device kernels on the GPU (ops.clip runs on the host there)
    return ops.minimum(ops.maximum(o, _EPSILON), 1.0 - _EPSILON)


def _cce_values(f, t, p, from_logits, axis):
    """``-sum(t * log(probabilities), axis)``; a softmax output is taken from its logits
    (as the fused kernel and ops.categorical_crossentropy do)."""
    if p.ndim == 0:
        raise ValueError(f"{f}: y_pred needs a class axis, received a scalar")
    if tuple(t.shape) != tuple(p.shape):
        raise ValueError(f"{f}: y_true and y_pred must have the same shape, received y_true.shape={tuple(t.shape)} "
                         f"and y_pred.shape={tuple(p.shape)}")
    if not -p.ndim <= axis < p.ndim:
        raise ValueError(f"{f}: axis {axis} is out of range for y_pred of rank {p.ndim}")
    link = getattr(p, "_keras_logits", None)
    if not from_logits and link is not None and isinstance(link[0], ops.Tensor) and \
            link[0].device == p.device and link[1] % p.ndim == axis % p.ndim:
        p, from_logits = link[0], True
    if from_logits:
        logp = ops.log_softmax(p, axis=axis)
    else:
        logp = ops.log(_clip_probs(ops.divide(p, ops.sum(p, axis=axis, keepdims=True))))
    return ops.negative(ops.sum(ops.multiply(t, logp), axis=axis))


def _bce_values(t, p, from_logits):
    if tuple(t.shape) != tuple(p.shape):
        raise ValueError(f"binary_crossentropy: y_true and y_pred must have the same shape, received "
                         f"y_true.shape={tuple(t.shape)} and y_pred.shape={tuple(p.shape)}")
    if from_logits:
        return ops.add(ops.subtract(ops.relu(p), ops.multiply(p, t)), ops.log1p(ops.exp(ops.negative(ops.abs(p)))))
    o = _clip_probs(p)
    return ops.negative(ops.add(ops.multiply(t, ops.log(o)), ops.multiply(ops.subtract(1.0, t),
                                                                          ops.log(ops.subtract(1.0, o)))))


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    """Per-sample cross-entropy of integer class labels. ``ignore_class``: samples with
    that label count as zero loss and are left out of the mean."""
    return _sparse_cce(y_true, y_pred, from_logits, ignore_class, axis)[0]


def _sparse_cce(y_true, y_pred, from_logits, ignore_class, axis):
    """(per-sample losses, the mask of samples that count or None)."""
    axis = _check_axis("sparse_categorical_crossentropy", axis)
    p = _pred(y_pred)
    if p.ndim == 0:
        raise ValueError("sparse_categorical_crossentropy: y_pred needs a class axis, received a scalar")
    if axis not in (-1, p.ndim - 1):
        raise ValueError(f"sparse_categorical_crossentropy: only the last axis holds the classes (axis=-1), "
                         f"received axis={axis}")
    labels = _sparse_labels(y_true, p)
    f = "sparse_categorical_crossentropy"
    if ignore_class is None:
        return _cce_values(f, _one_hot(labels, p), p, from_logits, -1), None
    valid = labels != ignore_class
    # the ignored samples' labels become 0 (a valid class); their loss is then zeroed
    res = _cce_values(f, _one_hot(np.where(valid, labels, 0), p), p, from_logits, -1)
    return ops.multiply(res, ops.core.tensor(valid.astype(np.dtype(res.dtype)), res)), valid


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Mean over ``axis`` of the elementwise binary cross-entropy; ``label_smoothing``
    pulls the targets towards 0.5."""
    p = _pred(y_pred)
    t = _like(y_true, p)
    if label_smoothing:
        t = ops.add(ops.multiply(t, 1.0 - label_smoothing), 0.5 * label_smoothing)
    return ops.mean(_bce_values(t, p, from_logits), axis=axis)


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                              label_smoothing=0.0, axis=-1):
    """Binary cross-entropy scaled by ``(1 - p_t)**gamma`` (and by ``alpha`` / ``1 -
    alpha`` for positives / negatives with ``apply_class_balancing``)."""
    p = _pred(y_pred)
    t = _like(y_true, p)
    if label_smoothing:
        t = ops.add(ops.multiply(t, 1.0 - label_smoothing), 0.5 * label_smoothing)
    if from_logits:
        p = ops.sigmoid(p)
    bce = _bce_values(t, p, False)
    p_t = ops.add(ops.multiply(t, p), ops.multiply(ops.subtract(1.0, t), ops.subtract(1.0, p)))
    focal = ops.multiply(ops.power(ops.subtract(1.0, p_t), gamma), bce)
    if apply_class_balancing:
        w = ops.add(ops.multiply(t, alpha), ops.multiply(ops.subtract(1.0, t), 1.0 - alpha))
        focal = ops.multiply(w, focal)
    return ops.mean(focal, axis=axis)


def _axis_arg(f, axis):
    if axis is None:
        return None
    if isinstance(axis, (list, tuple)):
        return tuple(_check_axis(f, a) for a in axis)
    return _check_axis(f, axis)


def dice(y_true, y_pred, axis=None):
    """``1 - 2 sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + epsilon)`` over
    ``axis`` (None: everything, one value for the batch)."""
    axis = _axis_arg("dice", axis)
    p = _pred(y_pred)
    t = _like(y_true, p)
    inter = ops.sum(ops.multiply(t, p), axis=axis)
    den = ops.add(ops.add(ops.sum(t, axis=axis), ops.sum(p, axis=axis)), _EPSILON)
    return ops.subtract(1.0, ops.divide(ops.multiply(inter, 2.0), den))


def tversky(y_true, y_pred, alpha=0.5, beta=0.5, axis=None):
    """``1 - tp / (tp + alpha fp + beta fn + epsilon)`` over ``axis`` (None: everything)."""
    axis = _axis_arg("tversky", axis)
    p = _pred(y_pred)
    t = _like(y_true, p)
    tp = ops.sum(ops.multiply(t, p), axis=axis)
    fp = ops.sum(ops.multiply(ops.subtract(1.0, p), t), axis=axis)
    fn = ops.sum(ops.multiply(p, ops.subtract(1.0, t)), axis=axis)
    den = ops.add(ops.add(ops.add(tp, ops.multiply(fp, alpha)), ops.multiply(fn, beta)), _EPSILON)
    return ops.subtract(1.0, ops.divide(tp, den))


# ---------------------------------------------------------------------- reduction
def _reduce(values, sample_weight, mask, reduction):
    """Keras's ``reduce_weighted_values``: mask and sample weights multiply the values,
    then ``reduction`` sums them (divided by their count or by the weights' sum)."""
    if mask is not None:
        m = np.asarray(mask, dtype=np.float64)
        if reduction in ("mean", "sum_over_batch_size"):
            valid = m.sum()
            m = m * (m.size / valid if valid else 0.0)
        mt = ops.core.tensor(m, values)
        sample_weight = mt if sample_weight is None else ops.multiply(
            *squeeze_or_expand_to_same_rank(mt, _like(sample_weight, values)))
    if sample_weight is not None:
        sw = _like(sample_weight, values)
        values, sw = squeeze_or_expand_to_same_rank(values, sw)
        values = ops.multiply(values, sw)
        sample_weight = sw
    if reduction in (None, "none") or values.ndim == 0 or tuple(values.shape) == (0,):
        return values
    total = ops.sum(values)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        return _divide_no_nan(total, ops.sum(sample_weight))
    n = int(np.prod(values.shape))
    return ops.multiply(total, 1.0 / n) if n else ops.zeros_like(total)


# ---------------------------------------------------------------------- classes
class Loss:
    """Base class of losses (``keras.losses.Loss``): subclasses write ``call(y_true,
    y_pred)`` returning per-sample values; ``__call__`` applies ``sample_weight`` and
    ``reduction`` (``"sum_over_batch_size"`` (default) / ``"mean"``: the sum over the
    number of values; ``"sum"``; ``"mean_with_sample_weight"``: over the sum of the
    weights; ``None`` / ``"none"``: the weighted values). ``dtype=None`` computes in
    ``y_pred``'s float dtype (Keras: floatx)."""

    native = ""  # the fused kernel's name, where there is one
    fusable = False

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        self.name = name or _snake(type(self).__name__)
        self.reduction = _standardize_reduction(type(self).__name__, reduction)
        self.dtype = None if dtype is None else str(np.dtype(dtype))

    def check_labels(self, y, out_shape):
        return y

    def _fused_ok(self, y_true, pred, sample_weight):
        return False

    def __call__(self, y_true, y_pred, sample_weight=None):
        pred = _pred(y_pred, self.dtype)
        if self.native and self._fused_ok(y_true, pred, sample_weight):
            return ops.fused_loss(self.native, _labels(y_true) if not isinstance(y_true, ops.Tensor) else y_true,
                                  pred, getattr(self, "from_logits", False))
        if not isinstance(self, LossFunctionWrapper):
            y_true = _like(y_true, pred)  # a user's call() gets tensors, as Keras converts them
        values = self.call(y_true, pred)
        mask = None
        if isinstance(values, tuple):
            values, mask = values
        return _reduce(values, sample_weight, mask, self.reduction)

    def call(self, y_true, y_pred):
        raise NotImplementedError(f"{type(self).__name__}: a Loss subclass writes call(y_true, y_pred)")

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


class LossFunctionWrapper(Loss):
    """A loss from a function ``fn(y_true, y_pred, **kwargs)`` of tensors returning
    per-sample (or per-element) values, reduced as the ``reduction`` says and
    differentiated by the tape."""

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        if not callable(fn):
            raise TypeError(f"LossFunctionWrapper: fn must be a function fn(y_true, y_pred), received {fn!r}")
        super().__init__(name=name or getattr(fn, "__name__", type(fn).__name__), reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true, y_pred):
        if not isinstance(y_true, ops.Tensor) or np.dtype(y_true.dtype).kind == "f":
            t = _like(y_true, y_pred)
        else:
            t = y_true if y_true.device == y_pred.device else ops.core.tensor(y_true.numpy(), y_pred)
        t, p = squeeze_or_expand_to_same_rank(t, y_pred)
        if type(self) is not LossFunctionWrapper:  # a built-in: elementwise in y_true and y_pred
            try:
                np.broadcast_shapes(tuple(t.shape), tuple(p.shape))
            except ValueError:
                raise ValueError(f"{type(self).__name__}: y_true and y_pred must have the same shape, received "
                                 f"y_true.shape={tuple(t.shape)} and y_pred.shape={tuple(p.shape)}") from None
        return self.fn(t, p, **self._fn_kwargs)

    @property
    def from_logits(self):
        return bool(self._fn_kwargs.get("from_logits", False))

    def get_config(self):
        return _fn_config(super().get_config(), self.fn, self._fn_kwargs)

    @classmethod
    def from_config(cls, config):
        return _from_fn_config(cls, config, _function_named)


# A function wrapper's config (LossFunctionWrapper here, metrics' MeanMetricWrapper): the
# base's, the function by its registered name, and the function's keyword arguments.
def _fn_config(cfg, fn, fn_kwargs):
    from .saving.object_registration import registered_name
    cfg["fn"] = registered_name(fn)
    cfg.update(fn_kwargs)
    return cfg


def _from_fn_config(cls, config, function_named):
    config = dict(config)
    fn = config.pop("fn", None)
    if isinstance(fn, str):
        fn = function_named(fn)
    return cls(fn, **config)


def _function_in(kind, functions, name, custom_objects=None):
    """The function ``name`` of the table ``functions`` (built-in) or registered, for the
    ``kind`` ('loss', 'metric') of wrapper that saved it."""
    from .saving.object_registration import get_registered_object, is_private
    if name in functions:
        return functions[name]
    fn = None if is_private(name) else get_registered_object(name, custom_objects)
    if callable(fn) and not isinstance(fn, type):
        return fn
    raise ValueError(f"Unknown {kind} function {name!r}; known functions are {', '.join(sorted(functions))}, or a "
                     "function registered with register_keras_serializable")


def _function_named(name, custom_objects=None):
    return _function_in("loss", _FUNCTIONS, name, custom_objects)


def _labels(y):
    return y.numpy() if isinstance(y, ops.Tensor) else np.asarray(y)


def _check_float(owner, arg, v, lo=None, hi=None, lo_open=False):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v):
        raise ValueError(f"{owner}: {arg} must be a finite number, received {arg}={v!r}")
    v = float(v)
    if lo is not None and (v < lo or (lo_open and v == lo)) or hi is not None and v > hi:
        rng = f"{'(' if lo_open else '['}{lo}, {hi}]"
        raise ValueError(f"{owner}: {arg} must be in {rng}, received {arg}={v!r}")
    return v


def _check_bool(owner, arg, v):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{owner}: {arg} must be True or False, received {arg}={v!r}")
    return bool(v)


class _Wrapped(LossFunctionWrapper):
    """A built-in: its function and its own arguments in get_config."""
    _fn = None
    _default = ""
    _args = ()

    def __init__(self, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        super().__init__(type(self)._fn, reduction=reduction, name=name or self._default, dtype=dtype, **kwargs)

    def get_config(self):
        cfg = Loss.get_config(self)
        cfg.update({k: self._fn_kwargs[k] for k in self._args})
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __getattr__(self, k):
        kw = self.__dict__.get("_fn_kwargs", {})
        if k in kw:
            return kw[k]
        raise AttributeError(k)


def _simple(cls_name, fn, default):
    def __init__(self, reduction="sum_over_batch_size", name=default, dtype=None):
        _Wrapped.__init__(self, reduction=reduction, name=name, dtype=dtype)
    doc = f"``{cls_name}``: the batch reduction of :func:`{fn.__name__}` (``keras.losses.{cls_name}``)."
    return type(cls_name, (_Wrapped,), {"_fn": staticmethod(fn), "_default": default, "__init__": __init__,
                                         "__doc__": doc, "__module__": __name__})


MeanAbsoluteError = _simple("MeanAbsoluteError", mean_absolute_error, "mean_absolute_error")
MeanAbsolutePercentageError = _simple("MeanAbsolutePercentageError", mean_absolute_percentage_error,
                                      "mean_absolute_percentage_error")
MeanSquaredLogarithmicError = _simple("MeanSquaredLogarithmicError", mean_squared_logarithmic_error,
                                      "mean_squared_logarithmic_error")
LogCosh = _simple("LogCosh", log_cosh, "log_cosh")
KLDivergence = _simple("KLDivergence", kl_divergence, "kl_divergence")
Poisson = _simple("Poisson", poisson, "poisson")
Hinge = _simple("Hinge", hinge, "hinge")
SquaredHinge = _simple("SquaredHinge", squared_hinge, "squared_hinge")
CategoricalHinge = _simple("CategoricalHinge", categorical_hinge, "categorical_hinge")


class MeanSquaredError(_Wrapped):
    """Mean of squared errors (``keras.losses.MeanSquaredError``); the fused native
    kernel when no sample_weight and a mean reduction are asked for."""
    _fn = staticmethod(mean_squared_error)
    native = "mse"
    fusable = True

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)

    def check_labels(self, y, out_shape):
        return _elementwise_labels("mse", y, out_shape)

    def _fused_ok(self, y, pred, sample_weight):
        return _mean_reduction(self, sample_weight) and pred.ndim >= 1 and tuple(np.shape(y)) == tuple(pred.shape)


class CosineSimilarity(_Wrapped):
    """Negative cosine similarity along ``axis`` (``keras.losses.CosineSimilarity``)."""
    _fn = staticmethod(cosine_similarity)
    _args = ("axis",)

    def __init__(self, axis=-1, reduction="sum_over_batch_size", name="cosine_similarity", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype, axis=_check_axis("CosineSimilarity", axis))


class Huber(_Wrapped):
    """Huber loss with threshold ``delta`` (``keras.losses.Huber``; name 'huber_loss')."""
    _fn = staticmethod(huber)
    _args = ("delta",)

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss", dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype, delta=_check_float("Huber", "delta", delta, 0))


def _mean_reduction(loss, sample_weight):
    return sample_weight is None and loss.reduction in ("sum_over_batch_size", "mean", "mean_with_sample_weight") \
        and loss.dtype is None


def _elementwise_labels(native, y, out_shape):
    y = np.asarray(y)
    if y.ndim == 1 and tuple(out_shape) == (1,):
        y = y.reshape(-1, 1)
    if tuple(y.shape[1:]) != tuple(out_shape):
        raise ValueError(f"{native}: targets must have shape (N,) + {tuple(out_shape)}, got {y.shape}")
    return y


def _crossentropy_args(owner, from_logits, label_smoothing, axis):
    """The checked arguments every cross-entropy loss takes, in Keras's order."""
    return {"from_logits": _check_bool(owner, "from_logits", from_logits),
            "label_smoothing": _check_float(owner, "label_smoothing", label_smoothing, 0, 1),
            "axis": _check_axis(owner, axis)}


class BinaryCrossentropy(_Wrapped):
    """Binary cross-entropy (``keras.losses.BinaryCrossentropy``): ``from_logits``,
    ``label_smoothing`` (targets pulled towards 0.5), ``axis`` of the mean."""
    _fn = staticmethod(binary_crossentropy)
    _args = ("from_logits", "label_smoothing", "axis")
    native = "binary_crossentropy"
    fusable = True

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_crossentropy", dtype=None):
        o = "BinaryCrossentropy"
        super().__init__(reduction=reduction, name=name, dtype=dtype,
                         **_crossentropy_args(o, from_logits, label_smoothing, axis))

    def check_labels(self, y, out_shape):
        return _elementwise_labels(self.native, y, out_shape)

    def _fused_ok(self, y, pred, sample_weight):
        return (_mean_reduction(self, sample_weight) and not self.label_smoothing and self.axis in (-1, pred.ndim - 1)
                and tuple(np.shape(y)) == tuple(pred.shape))


class BinaryFocalCrossentropy(_Wrapped):
    """Focal binary cross-entropy (``keras.losses.BinaryFocalCrossentropy``)."""
    _fn = staticmethod(binary_focal_crossentropy)
    _args = ("from_logits", "label_smoothing", "axis", "apply_class_balancing", "alpha", "gamma")

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0,
                 axis=-1, reduction="sum_over_batch_size", name="binary_focal_crossentropy", dtype=None):
        o = "BinaryFocalCrossentropy"
        super().__init__(reduction=reduction, name=name, dtype=dtype,
                         apply_class_balancing=_check_bool(o, "apply_class_balancing", apply_class_balancing),
                         alpha=_check_float(o, "alpha", alpha), gamma=_check_float(o, "gamma", gamma, 0),
                         **_crossentropy_args(o, from_logits, label_smoothing, axis))


class CategoricalCrossentropy(_Wrapped):
    """Cross-entropy of one-hot targets (``keras.losses.CategoricalCrossentropy``):
    ``from_logits``, ``label_smoothing``, ``axis`` of the classes."""
    _fn = staticmethod(categorical_crossentropy)
    _args = ("from_logits", "label_smoothing", "axis")
    native = "categorical_crossentropy"
    fusable = True

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="categorical_crossentropy", dtype=None):
        o = "CategoricalCrossentropy"
        super().__init__(reduction=reduction, name=name, dtype=dtype,
                         **_crossentropy_args(o, from_logits, label_smoothing, axis))

    def check_labels(self, y, out_shape):
        y = np.asarray(y)
        if tuple(y.shape[1:]) != tuple(out_shape):
            raise ValueError(f"categorical_crossentropy: labels must be one-hot of shape (N,) + {tuple(out_shape)}, "
                             f"got {y.shape}")
        return y

    def _fused_ok(self, y, pred, sample_weight):
        return (_mean_reduction(self, sample_weight) and not self.label_smoothing and pred.ndim == 2
                and self.axis in (-1, 1) and tuple(np.shape(y)) == tuple(pred.shape))


class CategoricalFocalCrossentropy(_Wrapped):
    """Focal cross-entropy of one-hot targets (``keras.losses.CategoricalFocalCrossentropy``)."""
    _fn = staticmethod(categorical_focal_crossentropy)
    _args = ("from_logits", "label_smoothing", "axis", "alpha", "gamma")

    def __init__(self, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_focal_crossentropy", dtype=None):
        o = "CategoricalFocalCrossentropy"
        super().__init__(reduction=reduction, name=name, dtype=dtype, alpha=_check_float(o, "alpha", alpha),
                         gamma=_check_float(o, "gamma", gamma, 0),
                         **_crossentropy_args(o, from_logits, label_smoothing, axis))


class SparseCategoricalCrossentropy(_Wrapped):
    """Cross-entropy of integer class labels (``keras.losses.SparseCategoricalCrossentropy``):
    ``from_logits``, ``ignore_class`` (a label whose samples are left out of the mean);
    the classes are on the last axis."""
    _fn = staticmethod(sparse_categorical_crossentropy)
    _args = ("from_logits", "ignore_class")
    native = "sparse_categorical_crossentropy"
    fusable = True

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size", axis=-1,
                 name="sparse_categorical_crossentropy", dtype=None):
        o = "SparseCategoricalCrossentropy"
        if ignore_class is not None and (isinstance(ignore_class, bool) or not isinstance(ignore_class, (int, np.integer))):
            raise TypeError(f"{o}: ignore_class must be an int class label or None, received ignore_class={ignore_class!r}")
        if _check_axis(o, axis) != -1:
            raise ValueError(f"{o}: only the last axis holds the classes (axis=-1), received axis={axis!r}")
        super().__init__(reduction=reduction, name=name, dtype=dtype, from_logits=_check_bool(o, "from_logits",
                         from_logits), ignore_class=None if ignore_class is None else int(ignore_class), axis=-1)

    def check_labels(self, y, out_shape):
        y = np.asarray(y)
        if y.ndim == len(out_shape) + 1 and y.ndim > 1 and y.shape[-1] == 1:  # (N, 1) labels of (N, C) outputs
            y = y.reshape(y.shape[:-1])
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
                raise ValueError("sparse_categorical_crossentropy: labels must be integer class indices")
        elif y.dtype.kind not in "iub":
            raise TypeError(f"sparse_categorical_crossentropy: labels must be integers, got dtype {y.dtype}")
        y = y.astype(np.int64)
        n = out_shape[-1]
        bad = (y < 0) | (y >= n)
        if self.ignore_class is not None:
            bad &= y != self.ignore_class
        if bad.any():
            b = int(y[bad].reshape(-1)[0])
            raise ValueError(f"sparse_categorical_crossentropy: label {b} is out of range for a model "
                             f"with {n} outputs (valid labels: 0..{n - 1})")
        return y

    def call(self, y_true, y_pred):
        return _sparse_cce(y_true, y_pred, self.from_logits, self.ignore_class, -1)

    def _fused_ok(self, y, pred, sample_weight):
        if not _mean_reduction(self, sample_weight) or self.ignore_class is not None or pred.ndim != 2:
            return False
        s = tuple(np.shape(y))
        return s == tuple(pred.shape[:1]) or s == (pred.shape[0], 1)


class Dice(_Wrapped):
    """Dice loss over ``axis`` (``keras.losses.Dice``; None: the whole batch at once)."""
    _fn = staticmethod(dice)
    _args = ("axis",)

    def __init__(self, reduction="sum_over_batch_size", name="dice", axis=None, dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype, axis=_axis_arg("Dice", axis))


class Tversky(_Wrapped):
    """Tversky loss (``keras.losses.Tversky``): ``alpha`` weighs false positives, ``beta``
    false negatives."""
    _fn = staticmethod(tversky)
    _args = ("alpha", "beta", "axis")

    def __init__(self, alpha=0.5, beta=0.5, reduction="sum_over_batch_size", name="tversky", axis=None, dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype, alpha=_check_float("Tversky", "alpha", alpha),
                         beta=_check_float("Tversky", "beta", beta), axis=_axis_arg("Tversky", axis))


# ---------------------------------------------------------------------- names
_CLASSES = {c.__name__: c for c in (
    MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError, CosineSimilarity,
    Huber, LogCosh, KLDivergence, Poisson, Hinge, SquaredHinge, CategoricalHinge, BinaryCrossentropy,
    BinaryFocalCrossentropy, CategoricalCrossentropy, CategoricalFocalCrossentropy, SparseCategoricalCrossentropy,
    Dice, Tversky)}
_FUNCTIONS = {f.__name__: f for f in (
    mean_squared_error, mean_absolute_error, mean_absolute_percentage_error, mean_squared_logarithmic_error,
    cosine_similarity, huber, log_cosh, kl_divergence, poisson, hinge, squared_hinge, categorical_hinge,
    binary_crossentropy, binary_focal_crossentropy, categorical_crossentropy, categorical_focal_crossentropy,
    sparse_categorical_crossentropy, dice, tversky)}
_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error", "mape": "mean_absolute_percentage_error",
            "msle": "mean_squared_logarithmic_error", "kld": "kl_divergence", "kullback_leibler_divergence":
            "kl_divergence", "bce": "binary_crossentropy", "logcosh": "log_cosh", "huber_loss": "huber"}
_FUNCTIONS.update({a: _FUNCTIONS[f] for a, f in _ALIASES.items()})
_FUNCTION_CLASS = {mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError,
                   mean_absolute_percentage_error: MeanAbsolutePercentageError,
                   mean_squared_logarithmic_error: MeanSquaredLogarithmicError, cosine_similarity: CosineSimilarity,
                   huber: Huber, log_cosh: LogCosh, kl_divergence: KLDivergence, poisson: Poisson, hinge: Hinge,
                   squared_hinge: SquaredHinge, categorical_hinge: CategoricalHinge,
                   binary_crossentropy: BinaryCrossentropy, binary_focal_crossentropy: BinaryFocalCrossentropy,
                   categorical_crossentropy: CategoricalCrossentropy,
                   categorical_focal_crossentropy: CategoricalFocalCrossentropy,
                   sparse_categorical_crossentropy: SparseCategoricalCrossentropy, dice: Dice, tversky: Tversky}

#: The names the first convcore files were written with (and that keep their fused kernel).
_LOSSES = {"sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
           "categorical_crossentropy": CategoricalCrossentropy, "binary_crossentropy": BinaryCrossentropy,
           "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError}


def _loss_for_name(name):
    """A fresh Loss for a class name, function name or alias (case as Keras writes it,
    upper-case aliases 'MSE' too), else None."""
    if name in _CLASSES:
        return _CLASSES[name]()
    fn = _FUNCTIONS.get(name) or (_FUNCTIONS.get(name.lower()) if name.isupper() else None)
    if fn is None:
        return None
    loss = _FUNCTION_CLASS[fn]()
    return loss


def _known():
    return ", ".join(sorted(set(_CLASSES) | set(_FUNCTIONS)))


def get(identifier):
    """A Loss object for a loss identifier: a Loss (as is), a class or function name or
    an alias ('mse', 'mae', 'mape', 'msle', 'kld', 'bce', 'huber', 'logcosh' / 'log_cosh'),
    a Loss class, a config dict, or a function ``fn(y_true, y_pred)`` (wrapped).
    Unlike Keras, a function *name* gives the Loss object of that function (the reduced
    value), not the per-sample function; those are ``convcore.losses.<name>``."""
    if identifier is None:
        return None
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        loss = _loss_for_name(identifier)
        if loss is None:
            raise ValueError(f"Unknown loss {identifier!r}; valid losses are {_known()}, a Loss object or a function "
                             "fn(y_true, y_pred)")
        return loss
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier) and not isinstance(identifier, type):
        cls = _FUNCTION_CLASS.get(identifier)
        return cls() if cls is not None else LossFunctionWrapper(identifier)
    raise ValueError(f"Unknown loss {identifier!r}; valid losses are {_known()}, a Loss object or a function "
                     "fn(y_true, y_pred)")


def serialize(loss):
    """A JSON-able config of ``loss``. The four first losses with their defaults, and
    user functions, are written as ``{"name", "from_logits"}`` (what every convcore
    version reads); everything else as Keras writes it (``class_name`` / ``config``)."""
    if isinstance(loss, LossFunctionWrapper) and type(loss) is LossFunctionWrapper and not loss._fn_kwargs \
            and loss.reduction == "sum_over_batch_size" and loss.dtype is None:
        from .saving.object_registration import registered_name
        return {"name": registered_name(loss.fn), "from_logits": False}
    cfg = loss.get_config()
    legacy = {SparseCategoricalCrossentropy: "sparse_categorical_crossentropy",
              CategoricalCrossentropy: "categorical_crossentropy", BinaryCrossentropy: "binary_crossentropy",
              MeanSquaredError: "mse"}.get(type(loss))
    if legacy is not None:
        default = type(loss)(from_logits=loss.from_logits) if legacy != "mse" else type(loss)()
        if cfg == default.get_config() and loss.dtype is None:
            return {"name": legacy if legacy != "mse" else "mean_squared_error", "from_logits": loss.from_logits}
    from .saving.object_registration import registered_name
    return {"module": "keras.losses", "class_name": type(loss).__name__ if type(loss).__name__ in _CLASSES
            else registered_name(type(loss)), "config": cfg, "registered_name": None}


def deserialize(config, custom_objects=None):
    """The loss of ``serialize(loss)``: ``{"name": ..., "from_logits": ...}`` (or a bare
    name) or Keras's ``{"class_name": ..., "config": {...}}``. A built-in name gives the
    built-in loss; another name must be registered with ``register_keras_serializable``
    or given in ``custom_objects`` (code is never loaded). Anything else is a
    :class:`~convcore.saving.ConfigError` naming the key."""
    from .saving.config_errors import ConfigError, check_dict
    from .saving.object_registration import get_registered_object, is_private
    if isinstance(config, str):
        config = {"name": config}
    check_dict(config, (), "a loss config (a dict with 'name' and 'from_logits')")
    if "class_name" in config:
        return _deserialize_keras(config, custom_objects)
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
        return _LOSSES[name](from_logits=from_logits) if name not in ("mse", "mean_squared_error") else \
            _no_logits(MeanSquaredError(), from_logits, name)
    builtin = _loss_for_name(name)
    if builtin is not None:
        if from_logits:
            if "from_logits" not in inspect.signature(type(builtin).__init__).parameters:
                raise ConfigError("from_logits", f"the loss {name!r} takes no from_logits")
            return type(builtin)(from_logits=True)
        return builtin
    fn = get_registered_object(name, custom_objects) if not is_private(name) else None
    if callable(fn) and not isinstance(fn, type):
        if from_logits:
            raise ConfigError("from_logits", f"a loss function ({name!r}) takes no from_logits")
        return LossFunctionWrapper(fn, name=name)
    if isinstance(fn, type) and issubclass(fn, Loss):
        return fn()
    raise ConfigError("name", f"unknown loss {name!r}; known losses are {_known()}, or a function "
                              "registered with register_keras_serializable or passed in custom_objects")


def _no_logits(loss, from_logits, name):
    if from_logits:
        from .saving.config_errors import ConfigError
        raise ConfigError("from_logits", f"the loss {name!r} takes no from_logits")
    return loss


def _deserialize_keras(config, custom_objects):
    from .saving.config_errors import ConfigError
    from .saving.object_registration import get_registered_object, is_private
    for k in config:
        if k not in ("module", "class_name", "config", "registered_name"):
            raise ConfigError(k, "is not a key of a Keras object config (module, class_name, config, registered_name)")
    cname = config["class_name"]
    if not isinstance(cname, str):
        raise ConfigError("class_name", f"must be the name of a Loss class, got {type(cname).__name__}")
    cls = _CLASSES.get(cname)
    if cls is None and cname == "LossFunctionWrapper":
        cls = LossFunctionWrapper
    if cls is None and not is_private(cname):
        c = get_registered_object(cname, custom_objects)
        cls = c if isinstance(c, type) and issubclass(c, Loss) else None
    if cls is None:
        raise ConfigError("class_name", f"unknown loss class {cname!r}; known classes are {', '.join(sorted(_CLASSES))}"
                                        ", or a Loss subclass registered with register_keras_serializable")
    inner = config.get("config", {})
    if not isinstance(inner, dict):
        raise ConfigError("config", f"must be a dict of the loss's arguments, got {type(inner).__name__}")
    if cls is LossFunctionWrapper:
        inner = dict(inner)
        fn = inner.pop("fn", None)
        if not isinstance(fn, str):
            raise ConfigError(("config", "fn"), f"must be the name of a loss function, got {fn!r}")
        try:
            f = _function_named(fn, custom_objects)
        except ValueError as e:
            raise ConfigError(("config", "fn"), str(e)) from None
        try:
            return LossFunctionWrapper(f, **inner)
        except (TypeError, ValueError) as e:
            raise ConfigError("config", str(e)) from None
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        for k in inner:
            if k not in params or k == "self":
                raise ConfigError(("config", k), f"is not an argument of {cname} (its arguments: "
                                                 f"{', '.join(p for p in params if p != 'self')})")
    try:
        return cls.from_config(inner)
    except (TypeError, ValueError) as e:
        raise ConfigError("config", str(e)) from None


__all__ = ["Loss", "LossFunctionWrapper", "get", "serialize", "deserialize", "squeeze_or_expand_to_same_rank",
           *sorted(_CLASSES), *sorted(set(_FUNCTIONS) - set(_ALIASES)), *sorted(_ALIASES)]
mse, mae, mape, msle, kld, bce = (mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
                                  mean_squared_logarithmic_error, kl_divergence, binary_crossentropy)
kullback_leibler_divergence = kl_divergence
huber_loss = huber
MSE, MAE, MAPE, MSLE, KLD = mse, mae, mape, msle, kld  # tf.keras 2's upper-case names
__all__ += ["logcosh", "kullback_leibler_divergence", "huber_loss", "Reduction", "MSE", "MAE", "MAPE", "MSLE", "KLD"]
__all__ = list(dict.fromkeys(__all__))
