"""The loss and metrics a model is compiled with, as Keras 3's ``compile`` takes them
(one or several outputs, loss weights, metrics and weighted metrics per output), and
their running values over an epoch (Keras's means: the loss weighted by batch size, the
stateful metrics' ``result()``).

Two interfaces live here. The general one: ``CompiledLoss.check_labels_all`` /
``total`` and ``CompiledMetrics.tracker``. The first one, which the trainer used for a
single output: ``CompiledLoss.check_labels`` / ``__call__`` and
``CompiledMetrics.batch_values`` / ``running`` / ``can_defer``."""
from __future__ import annotations

import numpy as np

from .. import device as device_mod, losses as losses_mod, metrics as metrics_mod, ops
from ..tensor import Tensor


def _is_seq(x):
    return isinstance(x, (list, tuple))


def _binary_or_sparse(y_shape, out_shape):
    """Keras's ``is_binary_or_sparse_categorical`` on (N, ...) shapes."""
    yt_rank, yp_rank = len(y_shape), len(out_shape)
    yt_last = y_shape[-1] if y_shape else None
    yp_last = out_shape[-1] if out_shape else None
    is_binary = yp_last == 1
    is_sparse = yt_rank < yp_rank or (yt_last == 1 and yp_last is not None and yp_last > 1)
    return is_binary, is_sparse


def _resolve_loss(identifier, y_shape=None, out_shape=None):
    """A Loss for one output; 'crossentropy' / 'ce' choose binary / sparse / categorical
    cross-entropy from the shapes as Keras does (then the shapes are needed)."""
    if isinstance(identifier, str) and identifier.lower() in ("crossentropy", "ce"):
        if y_shape is None:
            return None  # resolved when the shapes are known
        b, s = _binary_or_sparse(y_shape, out_shape)
        loss = losses_mod.BinaryCrossentropy() if b else losses_mod.SparseCategoricalCrossentropy() if s else \
            losses_mod.CategoricalCrossentropy()
        loss.name = identifier
        return loss
    loss = losses_mod.get(identifier)
    if isinstance(identifier, str) and not isinstance(loss, losses_mod.Loss):
        loss.name = identifier
    return loss


class CompiledLoss:
    """The compiled loss. ``loss``: a name, a Loss, a function, or (several outputs) a
    list or a dict keyed by output name, None entries skipping an output; one loss for
    several outputs applies to each. ``loss_weights``: a number, list or dict (a missing
    dict key weighs 1.0, as tf.keras 2). A dict of losses may leave outputs out
    (tf.keras 2; Keras 3 asks for every key)."""

    def __init__(self, loss, loss_weights=None, output_names=None):
        if loss is None:
            raise ValueError("compile: a loss is required, e.g. loss='sparse_categorical_crossentropy'")
        self._user_loss, self._user_weights = loss, loss_weights
        self.output_names = list(output_names) if output_names is not None else None
        if loss_weights is not None and not isinstance(loss_weights, (list, tuple, dict, int, float)) or \
                isinstance(loss_weights, bool):
            raise ValueError(f"compile: loss_weights must be a number, a list or a dict keyed by output name, "
                             f"received loss_weights={loss_weights!r}")
        if isinstance(loss, dict) and self.output_names is not None:
            bad = sorted(set(loss) - set(self.output_names))
            if bad:
                raise ValueError(f"compile: loss has keys {bad} that are not outputs of the model; the outputs are "
                                 f"{self.output_names}")
        if isinstance(loss, dict) and self.output_names is None:
            raise ValueError("compile: a dict of losses needs the model's output names")
        self._entries = None  # per output: identifier or None
        self._losses = None  # per output: Loss or None
        self._weights = None
        if self.output_names is not None:
            self._build(len(self.output_names))
        elif not _is_seq(loss):
            self._build(1)
        if self._losses is None:  # a list, its outputs not known yet (resolved by check_labels_all)
            self.loss = [None if x is None else _resolve_loss(x) for x in loss]

    # ---------------------------------------------------------------- structure
    def _build(self, n):
        loss = self._user_loss
        names = self.output_names or [f"output_{i}" for i in range(n)]
        if isinstance(loss, dict):
            entries = [loss.get(k) for k in names]
        elif _is_seq(loss):
            if len(loss) != n:
                raise ValueError(f"compile: loss is a list of {len(loss)} losses for a model with {n} outputs; give one "
                                 "loss per output (None skips one), or one loss for all of them")
            entries = list(loss)
        else:
            entries = [loss] * n
        if all(e is None for e in entries):
            raise ValueError("compile: every output's loss is None; at least one output needs a loss")
        w = self._user_weights
        if w is None:
            weights = [None] * n
        elif isinstance(w, dict):
            bad = sorted(set(w) - set(names))
            if bad:
                raise ValueError(f"compile: loss_weights has keys {bad} that are not outputs of the model; the outputs "
                                 f"are {names}")
            weights = [w.get(k) for k in names]
        elif _is_seq(w):
            if len(w) != n:
                raise ValueError(f"compile: loss_weights has {len(w)} entries for a model with {n} outputs")
            weights = list(w)
        else:
            weights = [w] * n
        for i, x in enumerate(weights):
            if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float, np.number))
                                  or not np.isfinite(x)):
                raise ValueError(f"compile: loss_weights entries must be finite numbers, received {x!r} for output "
                                 f"{names[i]!r}")
        self._entries = entries
        self._weights = [None if x is None else float(x) for x in weights]
        self._losses = [None if e is None else _resolve_loss(e) for e in entries]
        self._names = names
        self._set_loss()

    def _set_loss(self):
        """``self.loss``: the one Loss (the trainer's ``model.loss``), or the list of them."""
        self.loss = self._losses[0] if len(self._losses) == 1 else list(self._losses)

    def _ensure(self, n):
        if self._entries is None:
            self._build(n)
        elif len(self._entries) != n:
            raise ValueError(f"the model has {n} outputs but the loss was compiled for {len(self._entries)}")

    @property
    def losses(self):
        """The Loss of each output (None where an output has no loss)."""
        return list(self._losses or [])

    @property
    def loss_names(self):
        """Log keys of the per-output losses (``'<output>_loss'``) when more than one
        output has a loss, as Keras 3 logs them; else empty."""
        if self._losses is None:
            return []
        with_loss = [i for i, l in enumerate(self._entries) if l is not None]
        if len(with_loss) < 2:
            return []
        return [f"{self._names[i]}_loss" for i in with_loss]

    # ---------------------------------------------------------------- the general interface
    def check_labels_all(self, ys, out_shapes):
        """The targets of every output, checked and converted by its loss (one numpy
        array per output); resolves 'crossentropy' from the shapes."""
        self._ensure(len(out_shapes))
        if len(ys) != len(out_shapes):
            raise ValueError(f"the model has {len(out_shapes)} outputs but {len(ys)} target arrays were given")
        out = []
        for i, (y, shape) in enumerate(zip(ys, out_shapes)):
            y = y.numpy() if isinstance(y, Tensor) else np.asarray(y)
            if self._losses[i] is None and self._entries[i] is not None:
                self._losses[i] = _resolve_loss(self._entries[i], y.shape, (y.shape[0],) + tuple(shape))
                self._set_loss()
            loss = self._losses[i]
            out.append(y if loss is None else loss.check_labels(y, tuple(shape)))
        self._shapes = [(np.shape(y), (np.shape(y)[0],) + tuple(s)) for y, s in zip(out, out_shapes)]
        return out

    def total(self, ys, outs, sample_weight=None):
        """(the weighted sum of the outputs' losses as a 0-d Tensor, [each output's loss
        before its weight, None where it has none]). ``sample_weight``: None or one weight
        per sample (N,), applied to every output."""
        self._ensure(len(outs))
        per, total = [], None
        for i, (y, o) in enumerate(zip(ys, outs)):
            loss = self._losses[i]
            if loss is None and self._entries[i] is not None:
                y_arr = y.numpy() if isinstance(y, Tensor) else np.asarray(y)
                loss = self._losses[i] = _resolve_loss(self._entries[i], y_arr.shape, tuple(o.shape))
            if loss is None:
                per.append(None)
                continue
            v = loss(y, o, sample_weight=sample_weight)
            per.append(v)
            w = self._weights[i]
            term = v if w is None or w == 1.0 else ops.multiply(v, w)
            total = term if total is None else ops.add(total, term)
        return total, per

    # ---------------------------------------------------------------- the first interface (one output)
    def check_labels(self, y, out_shape):
        self._ensure(1)
        return self.check_labels_all([y], [out_shape])[0]

    def __call__(self, y, pred):
        return self.total([y], [pred])[0]


def sample_weights(ys, sample_weight=None, class_weight=None, where="fit", n=None, classes=None):
    """The per-sample weights of a fit / evaluate (a float32 array (N,), or None), as
    Keras makes them: ``sample_weight`` as given (one weight per sample), or
    ``class_weight`` ({class: weight}, classes missing weigh 1.0) looked up by each
    sample's class (its label; one-hot: its arg-max; rounded). Both at once, or
    ``class_weight`` for several outputs, is a ValueError, as in Keras. ``n``: the
    number of samples (default: the targets'); ``classes``: the output's number of
    classes, when known (a class_weight key outside 0..classes-1 is then an error)."""
    n = len(ys[0]) if n is None else n
    if sample_weight is not None and class_weight is not None:
        raise ValueError(f"{where}: give class_weight or sample_weight, not both at the same time (as Keras)")
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise TypeError(f"{where}: class_weight must be a dict {{class: weight}}, received {class_weight!r}")
        if len(ys) > 1:
            raise ValueError(f"{where}: class_weight is only supported for models with a single output (this one has "
                             f"{len(ys)}); give a sample_weight instead")
        for k, v in class_weight.items():
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or isinstance(v, bool) or \
                    not isinstance(v, (int, float, np.number)) or not np.isfinite(v) or v < 0:
                raise ValueError(f"{where}: class_weight maps integer classes to finite weights >= 0, received "
                                 f"{k!r}: {v!r}")
            if classes is not None and not 0 <= int(k) < classes:
                raise ValueError(f"{where}: class_weight names class {int(k)}, but the labels' classes are "
                                 f"0..{classes - 1}")
        y = np.asarray(ys[0].numpy() if isinstance(ys[0], Tensor) else ys[0])
        if y.ndim > 1:
            y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else y.reshape(y.shape[:-1])
        cls = np.round(y.astype(np.float64)).astype(np.int64).reshape(n, -1)[:, 0]
        return np.array([float(class_weight.get(int(c), 1.0)) for c in cls], dtype=np.float32)
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight.numpy() if isinstance(sample_weight, Tensor) else sample_weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{where}: sample_weight must be numbers, received dtype {w.dtype}")
    if w.ndim == 2 and w.shape[1] == 1:
        w = w.reshape(-1)
    if w.shape != (n,):
        got = 0 if w.ndim == 0 else len(w)
        raise ValueError(f"{where}: sample_weight has {got} entries, but x and y have {n} samples: it must have "
                         f"one weight per sample, shape ({n},), received shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{where}: sample_weight must be finite")
    return w.astype(np.float32)


def _metric_name(identifier, obj):
    if isinstance(identifier, str):
        return identifier
    if isinstance(identifier, dict):  # a Keras config: the name it builds
        return metrics_mod.get(identifier).name
    if isinstance(obj, metrics_mod.Metric):
        return obj.name
    return getattr(obj, "__name__", type(obj).__name__)


def _resolve_metric(identifier, y_shape, out_shape):
    """Keras's ``get_metric``: 'accuracy' / 'acc' become binary, sparse categorical or
    categorical accuracy from the shapes; the metric is named as the user wrote it."""
    if identifier is None:
        raise ValueError("compile: a metric is None")
    if isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc"):
        b, s = _binary_or_sparse(y_shape, out_shape)
        obj = metrics_mod.BinaryAccuracy() if b else metrics_mod.SparseCategoricalAccuracy() if s else \
            metrics_mod.CategoricalAccuracy()
    else:
        obj = metrics_mod.get(identifier)
    name = _metric_name(identifier, obj)
    if not isinstance(obj, metrics_mod.Metric):
        obj = metrics_mod.MeanMetricWrapper(obj)
    obj.name = name
    return obj


def _check_metric(identifier):
    """Refuse an unknown metric at compile time (before any shape is known)."""
    if isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc"):
        return
    if isinstance(identifier, (str, dict)):
        metrics_mod.get(identifier)
    elif not (isinstance(identifier, metrics_mod.Metric) or callable(identifier)):
        raise ValueError(f"Unknown metric {identifier!r}; valid metrics are {metrics_mod._known()}, a Metric object "
                         "or a function fn(y_true, y_pred)")


class CompiledMetrics:
    """The compiled metrics (``metrics`` and ``weighted_metrics`` as Keras's compile
    takes them: a list (a list of lists, or a list with one entry per output, for
    several outputs) or a dict keyed by output name). ``names``: the log keys after
    'loss', as Keras 3 names them. A flat list for several outputs whose length is not
    the number of outputs applies to every output (tf.keras 2; Keras 3 refuses it)."""

    def __init__(self, metrics, compiled_loss, output_names=None, weighted_metrics=None):
        self.compiled_loss = compiled_loss  # None: compiled without a loss (the model's own losses only)
        self.loss = compiled_loss.loss if compiled_loss is not None else None
        self.output_names = list(output_names) if output_names is not None else (
            compiled_loss.output_names if compiled_loss is not None else None)
        for arg, v in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
            if v is not None and not isinstance(v, (list, tuple, dict)):
                raise ValueError(f"compile: {arg} must be a list, tuple or dict, received {arg}={v!r}")
        self._user = metrics
        self._user_weighted = weighted_metrics
        n = len(self.output_names) if self.output_names is not None else 1
        self._n = n
        self._plain = self._per_output(metrics, "metrics")
        self._weighted = self._per_output(weighted_metrics, "weighted_metrics")
        for lst in self._plain + self._weighted:
            for m in lst:
                _check_metric(m)
        self._built = None  # (plain, weighted) Metric objects per output, built from the first shapes

    def _per_output(self, metrics, arg):
        n = self._n
        if not metrics:
            return [[] for _ in range(n)]
        if isinstance(metrics, dict):
            names = self.output_names or []
            bad = sorted(set(metrics) - set(names))
            if bad:
                raise ValueError(f"compile: {arg} has keys {bad} that are not outputs of the model; the outputs are "
                                 f"{names}")
            return [_as_list(metrics.get(k)) for k in names]
        metrics = list(metrics)
        if n == 1:
            flat = []
            for m in metrics:
                flat.extend(_as_list(m))
            return [flat]
        if len(metrics) == n:
            return [_as_list(m) for m in metrics]
        if any(_is_seq(m) for m in metrics):
            raise ValueError(f"compile: {arg} has {len(metrics)} entries for a model with {n} outputs; give one list "
                             "per output, a dict keyed by output name, or one flat list for every output")
        return [list(metrics) for _ in range(n)]

    # ---------------------------------------------------------------- names
    def _prefix(self, i):
        return f"{self.output_names[i]}_" if self._n > 1 and self.output_names else ""

    def _objects(self, shapes):
        """The Metric objects (built once, from the first batch's (y, output) shapes)."""
        if self._built is None:
            self._built = tuple([[_resolve_metric(m, *shapes[i]) for m in lst] for i, lst in enumerate(group)]
                                for group in (self._plain, self._weighted))
        return self._built

    def _keys(self, objects):
        """Keras 3's unique names: '<output>_<metric>', a repeat gets '_1', '_2'; a
        weighted metric named as a plain one is 'weighted_<name>'."""
        seen, keys = {}, []
        plain, weighted = objects
        for group, is_w in ((plain, False), (weighted, True)):
            for i, lst in enumerate(group):
                for m in lst:
                    name = self._prefix(i) + m.name
                    if name not in seen:
                        seen[name] = 1
                    elif not is_w:
                        idx = seen[name]
                        seen[name] += 1
                        name = f"{name}_{idx}"
                    else:
                        name = self._prefix(i) + "weighted_" + m.name
                        if name not in seen:
                            seen[name] = 1
                        else:
                            idx = seen[name]
                            seen[name] += 1
                            name = f"{name}_{idx}"
                    keys.append(name)
        return keys

    @property
    def names(self):
        """Log keys after 'loss': the metrics (named as written; before the first batch
        'accuracy' / 'acc' keep their spelling), then the per-output losses."""
        if self._built is None:
            stub = tuple([[_Named(_metric_name(m, m if not isinstance(m, str) else None)) for m in lst]
                          for lst in group] for group in (self._plain, self._weighted))
            keys = self._keys(stub)
        else:
            keys = self._keys(self._built)
        return keys + (self.compiled_loss.loss_names if self.compiled_loss is not None else [])

    # ---------------------------------------------------------------- the general interface
    def tracker(self, deferred=False):
        """Running loss and metrics of an epoch: ``update(...)`` per batch, ``logs()``.
        The metric objects are the compiled ones (as in Keras, shared by training and
        evaluation): a new tracker resets them, as Keras does at the start of an epoch
        or an evaluate, so read one tracker's logs before starting the next."""
        if self._built is not None:
            for group in self._built:
                for lst in group:
                    for m in lst:
                        m.reset_state()
        return _Tracker(self, deferred)

    # ---------------------------------------------------------------- the first interface (one output)
    def _shapes_seen(self, y, pred):
        return [(tuple(np.shape(y)), tuple(pred.shape))]

    def _fused_kind(self):
        """The accuracy the fused loss kernel reports on the device, when it is exactly
        the one metric compiled (Keras's resolution of 'accuracy' from the shapes)."""
        loss = self.loss
        if self._n != 1 or not isinstance(loss, losses_mod.Loss) or not loss.native or self._weighted[0]:
            return None
        if len(self._plain[0]) != 1 or not isinstance(self._plain[0][0], str) or \
                self._plain[0][0].lower() not in ("accuracy", "acc"):
            return None
        shapes = getattr(self.compiled_loss, "_shapes", None)
        if not shapes:
            return None
        b, s = _binary_or_sparse(*shapes[0])
        kind = "binary" if b else "sparse" if s else "categorical"
        want = {"sparse_categorical_crossentropy": "sparse", "categorical_crossentropy": "categorical",
                "binary_crossentropy": "binary"}.get(loss.native)
        return kind if kind == want else None

    def can_defer(self):
        """Whether loss and metrics can stay on the GPU for a whole epoch (the fused
        losses give [loss, accuracy] on the device)."""
        if not isinstance(self.loss, losses_mod.Loss) or not self.loss.native:
            return False
        return not any(self._plain[0]) and not any(self._weighted[0]) or self._fused_kind() is not None

    def batch_values(self, loss, y, pred):
        """(loss, [metric values]) of one batch as floats."""
        if loss._stats is not None and self._fused_kind() is not None:
            lv, av = loss._stats.numpy()  # the step's one read-back
            return float(lv), [float(av)]
        lv = float(loss)
        plain, weighted = self._objects(self._shapes_seen(y, pred))
        vals = []
        for m in plain[0] + weighted[0]:
            m.reset_state()
            m.update_state(y, pred)
            vals.append(float(np.asarray(m.result().numpy())))
        return lv, vals

    def running(self, deferred):
        return _Totals(self.names, deferred)


class _Named:
    def __init__(self, name):
        self.name = name


def _as_list(m):
    if m is None:
        return []
    return list(m) if _is_seq(m) else [m]


class _Tracker:
    """Keras's running values over an epoch: the loss and each output's loss as means
    weighted by batch size, the metrics as their ``result()``. All of it is tensors on
    the device of the batches; ``logs()`` reads them back (once per call)."""

    def __init__(self, compiled, deferred):
        self.compiled, self.deferred = compiled, deferred
        self.loss = metrics_mod.Mean(name="loss")
        self.output_losses = None
        self._objects = None

    def update(self, loss_total, per_output_losses, ys, outs, sample_weight=None, n=None):
        """Add one batch: the total loss (0-d tensor), the outputs' losses (a list, None
        for an output without one), the targets and outputs (one per output), the
        sample weights (N,) or None, and the batch size ``n`` (default: len(ys[0]))."""
        c = self.compiled
        if n is None:
            n = len(ys[0]) if len(ys) else 0
        self.loss.update_state(loss_total, sample_weight=float(n))
        names = c.compiled_loss.loss_names if c.compiled_loss is not None else []
        if names:
            if self.output_losses is None:
                self.output_losses = [metrics_mod.Mean(name=k) for k in names]
            for m, v in zip(self.output_losses, [v for v in per_output_losses if v is not None]):
                m.update_state(v, sample_weight=float(n))
        plain, weighted = self._objects = c._objects([(tuple(np.shape(y)), tuple(o.shape)) for y, o in zip(ys, outs)])
        for i, (y, o) in enumerate(zip(ys, outs)):
            for m in plain[i]:
                m.update_state(y, o)
            for m in weighted[i]:
                m.update_state(y, o, sample_weight=sample_weight)

    def _metrics(self):
        if self._objects is None:
            return []
        plain, weighted = self._objects
        return [m for group in (plain, weighted) for lst in group for m in lst]

    def logs(self):
        """{'loss': ..., metrics..., per-output losses...} as floats."""
        out = {"loss": _float(self.loss.result())}
        ms = self._metrics()
        if ms:
            for k, m in zip(self.compiled._keys(self._objects), ms):
                out[k] = _float(m.result())
        if self.output_losses:
            for m in self.output_losses:
                out[m.name] = _float(m.result())
        return out

    def reset(self):
        self.loss.reset_state()
        for m in self.output_losses or []:
            m.reset_state()
        for m in self._metrics():
            m.reset_state()


def _float(t):
    a = np.asarray(t.numpy() if isinstance(t, Tensor) else t, dtype=np.float64)
    return float(a) if a.ndim == 0 else a.tolist()


class _Totals:
    """Sample-weighted running means of the loss and metrics over an epoch (the first
    interface: per-batch values averaged by batch size)."""

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
