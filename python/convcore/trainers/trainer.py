"""The training API of a model, as Keras 3's ``Trainer``: ``compile``, ``fit``,
``evaluate``, ``predict``, ``train_on_batch``, ``test_on_batch``, ``predict_on_batch``,
the overridable ``train_step`` / ``test_step`` / ``predict_step`` with ``compute_loss``
and ``compute_metrics``, and the gradients the inspection and attack tools use
(``loss_and_gradients``, ``input_gradient``).

A training step is a forward pass under a :class:`~convcore.GradientTape`, the compiled
loss plus the model's own losses (``model.losses``: weight regularizers, ``add_loss``),
``tape.gradient`` and the optimizer's ``apply_gradients``: nothing here knows how any
layer differentiates. A model that does not override ``train_step`` runs the built-in
step, which keeps loss and metrics on the GPU for a whole epoch when no callback reads
per-batch logs, and checks the loss, the gradients and the moving statistics before
anything is written (the step guard)."""
from __future__ import annotations

import contextlib
import threading
import warnings

import numpy as np

from .. import _checks, backend, device as device_mod, optimizers as optimizers_mod, ops
from ..callbacks import Callback, CallbackList
from ..tape import GradientTape
from ..tensor import Tensor, deferred_assignments
from .compile_utils import CompiledLoss, CompiledMetrics, sample_weights
from . import data_adapters
from .epoch_iterator import _RAN_OUT, EpochIterator, check_len, split_validation


class _ReadWriteLock:
    """Many readers or one writer. Inference, evaluation and ``get_weights`` read the
    weights; a training step's update phase writes them (every in-place write of a
    step happens there), so another thread sees the weights of one step or the next,
    never a half-written step, and never meets a weight being written."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0  # writers go first: a busy reader cannot starve training
        self._mine = threading.local()  # reads this thread holds (re-entry never waits)

    @contextlib.contextmanager
    def read(self):
        self._acquire(False)
        try:
            yield
        finally:
            self._release(False)

    @contextlib.contextmanager
    def write(self):
        self._acquire(True)
        try:
            yield
        finally:
            self._release(True)

    def _acquire(self, write):
        with self._cond:
            if write:
                self._waiting_writers += 1
                try:
                    while self._writer or self._readers:
                        self._cond.wait()
                finally:
                    self._waiting_writers -= 1
                self._writer = True
            else:
                held = getattr(self._mine, "n", 0)
                while not held and (self._writer or self._waiting_writers):
                    self._cond.wait()
                self._readers += 1
                self._mine.n = held + 1

    def _release(self, write):
        with self._cond:
            if write:
                self._writer = False
            else:
                self._readers -= 1
                self._mine.n -= 1
            self._cond.notify_all()


def unpack_x_y_sample_weight(data):
    """``(x, y, sample_weight)`` of a batch given as ``x``, ``(x,)``, ``(x, y)`` or
    ``(x, y, sample_weight)`` (missing parts are None), as ``keras.utils``."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data
    raise ValueError(f"Data is expected to be in format `x`, `(x,)`, `(x, y)`, or `(x, y, sample_weight)`, found: "
                     f"a tuple of {len(data)} entries")


def _pack(x, y, sw):
    return (x,) if y is None and sw is None else (x, y) if sw is None else (x, y, sw)


def _should_eval(epoch, validation_freq):
    """Keras 3: validate after epoch ``epoch`` (0-based) every ``validation_freq``
    epochs, or after the epochs (1-based) a list names."""
    e = epoch + 1
    if isinstance(validation_freq, (list, tuple, set, range)):
        return e in validation_freq
    return e % validation_freq == 0


def _float_logs(logs):
    """A step's logs as floats (a custom train_step may return tensors or metrics)."""
    out = {}
    for k, v in dict(logs or {}).items():
        if hasattr(v, "result") and callable(v.result):
            v = v.result()
        try:
            out[k] = float(np.asarray(v.numpy() if isinstance(v, Tensor) else v))
        except (TypeError, ValueError):
            out[k] = v
    return out


class Trainer:
    def __init__(self):
        self.stop_training = False
        self.optimizer = None
        self.loss = None
        self._compiled = False
        self._compiled_device = None  # 'cpu' or 'gpu' once compiled (None: the default device)
        self._compiled_loss = None
        self._compiled_metrics = None
        self.history = None
        self._weights_lock = _ReadWriteLock()
        self._training_lock = threading.Lock()

    def _weights(self):
        lock = self.__dict__.get("_weights_lock")
        if lock is None:  # a subclass that did not call Trainer.__init__
            lock = self.__dict__["_weights_lock"] = _ReadWriteLock()
        return lock

    @contextlib.contextmanager
    def _training(self, where):
        """Held while ``fit`` / ``train_on_batch`` runs: a second training of the same
        model from another thread is refused (its updates would interleave)."""
        lock = self.__dict__.get("_training_lock")
        if lock is None:
            lock = self.__dict__["_training_lock"] = threading.Lock()
        if not lock.acquire(blocking=False):
            raise RuntimeError(f"{where}: this model is already being trained (in another thread); train one model "
                               "from one thread at a time, or train a copy")
        try:
            yield
        finally:
            lock.release()

    def get_weights(self):
        """The weights as numpy arrays: a consistent snapshot, even while another thread
        trains the model (between two steps)."""
        with self._weights().read():
            return super().get_weights()

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True, device=None):
        """Configure training, as ``keras.Model.compile``: the optimizer (a name —
        'rmsprop', Keras's default, 'adam', 'adamw', 'sgd', 'adagrad', 'adadelta',
        'adamax', 'nadam', 'lion' — or an optimizer object), the loss (a
        name, a Loss object or a function ``fn(y_true, y_pred)``; for several outputs a
        list or a dict keyed by output name; None when the model's own ``add_loss``
        losses are all there is), ``loss_weights``, ``metrics`` and ``weighted_metrics``
        (names, Metric objects or functions; per output as a list of lists or a dict),
        and convcore's ``device`` ('cpu', 'gpu', 'auto'; default: the one set by
        :func:`convcore.set_device`). On the GPU, weights, activations, gradients and
        optimizer state stay on the device; ``get_weights()`` reads them back.
        ``run_eagerly``, ``jit_compile``, ``steps_per_execution`` and
        ``auto_scale_loss`` are accepted for compatibility: convcore always runs
        eagerly, one step at a time."""
        # Resolve everything first: a compile that raises leaves the model as it was.
        dev = None if device is None else device_mod.resolve(device, "compile")
        if dev == "gpu" and self._is_graph():
            bad = [l.name for l in self.layers if l.dtype != "float32" and l.weights]
            if bad:
                raise TypeError(f"compile(device='gpu'): layers {bad} compute in float64 but the GPU computes in "
                                "float32; build them with dtype='float32' (set_floatx('float32')), or use device='cpu'")
        _checks.integer("compile", "steps_per_execution", steps_per_execution, minimum=1)
        if isinstance(loss_weights, (list, tuple)) and any(isinstance(w, str) for w in loss_weights):
            raise ValueError(f"compile: loss_weights must be numbers, received {list(loss_weights)!r}; in Keras 3 "
                             "the third argument of compile is loss_weights: pass metrics by name "
                             "(metrics=[...])")
        opt = optimizers_mod.get(optimizer)
        names = self.output_names if self._is_graph() else None
        compiled_loss = CompiledLoss(loss, loss_weights, names) if loss is not None else None
        if compiled_loss is None and loss_weights is not None:
            raise ValueError("compile: loss_weights were given without a loss")
        compiled_metrics = CompiledMetrics(metrics, compiled_loss, names, weighted_metrics)
        self.optimizer = opt
        self.loss = None if compiled_loss is None else compiled_loss.loss
        self._compiled_loss, self._compiled_metrics = compiled_loss, compiled_metrics
        self._compile_args = {"loss": loss, "loss_weights": loss_weights, "metrics": metrics,
                              "weighted_metrics": weighted_metrics}
        self._compiled_device = dev
        self._compiled = True

    @property
    def metrics_names(self):
        """The names of the logged values: 'loss', then the metrics (Keras's names)."""
        if self._compiled_metrics is None:
            return []
        return list(self._compiled_metrics.names)

    @property
    def output_names(self):
        """The names of the outputs (the layers that produce them), as Keras: they key
        per-output losses, metrics and targets given as dicts."""
        if self._is_graph():
            names = [t.node.layer.name for t in self.outputs]
            if len(set(names)) != len(names):  # one layer with several outputs
                names = [f"{n}_{i}" if names.count(n) > 1 else n for i, n in enumerate(names)]
            return names
        n = getattr(self, "_n_outputs", 1)
        return ["output"] if n == 1 else [f"output_{i}" for i in range(n)]

    def _require_compiled(self, what):
        if not self._compiled:
            raise RuntimeError(f"You must call compile() before {what}()")

    # ------------------------------------------------------------------ data
    def _output_shapes(self, xs=None):
        """The output shapes without the batch axis (a subclassed model: from one
        forward pass in inference mode on the first sample, as Keras builds it)."""
        if self._is_graph():
            return [tuple(t.shape[1:]) for t in self.outputs]
        shapes = self.__dict__.get("_probed_output_shapes")
        if shapes is None:
            if xs is None:
                raise ValueError(f"Model {self.name!r} has not been called yet, so its output shapes are unknown")
            from ..tape import stop_recording
            with stop_recording(), self._weights().read():
                outs = self._run([v[:1] for v in xs], False)
            shapes = self.__dict__["_probed_output_shapes"] = [tuple(o.shape[1:]) for o in outs]
            self.__dict__["_n_outputs"] = len(shapes)
        return shapes

    def _split_y(self, y, where, n_outputs):
        """Targets as a list, one numpy array (or None) per output: one array for one
        output; a list / tuple or a dict keyed by output name for several."""
        if y is None:
            return None
        if isinstance(y, dict):
            names = self.output_names
            unknown = sorted(str(k) for k in y if k not in names)
            if unknown:
                raise ValueError(f"{where}: y has keys {unknown} that are not output names; the outputs are "
                                 f"{names}")
            ys = [y.get(n) for n in names]
        elif n_outputs > 1:
            if not isinstance(y, (list, tuple)) or len(y) != n_outputs:
                got = f"a list of {len(y)}" if isinstance(y, (list, tuple)) else "one array"
                raise ValueError(f"{where}: the model has {n_outputs} outputs {self.output_names}, so y must be a "
                                 f"list of {n_outputs} arrays or a dict keyed by output name; got {got}")
            ys = list(y)
        elif isinstance(y, tuple) and len(y) == 1:
            ys = [y[0]]
        else:
            ys = [y]
        out = []
        for i, v in enumerate(ys):
            if v is None:
                out.append(None)
                continue
            v = v.numpy() if isinstance(v, Tensor) else np.asarray(v)
            if v.dtype.kind not in "biuf":
                what = "targets" if n_outputs == 1 else f"targets of output {self.output_names[i]!r}"
                raise TypeError(f"{where}: {what} must be numeric, got dtype {v.dtype}")
            out.append(v)
        return out

    def _prepare_ys(self, y, where, xs=None):
        """The targets, checked against the outputs by the compiled loss."""
        shapes = self._output_shapes(xs)
        ys = self._split_y(y, where, len(shapes))
        if ys is None:
            return None
        if self._compiled_loss is not None:
            ys = self._compiled_loss.check_labels_all(ys, shapes)
        dts = [t.node.layer.dtype for t in self.outputs] if self._is_graph() else [backend.floatx()] * len(ys)
        return [None if v is None else np.ascontiguousarray(v, dtype=dt) if v.dtype.kind == "f"
                else np.ascontiguousarray(v) for v, dt in zip(ys, dts)]

    def _x_list(self, x):
        """Inputs as numpy arrays: checked against the graph's inputs, or (a subclassed
        model) converted as they are."""
        if self._is_graph():
            return self._check_x(x)
        xs = list(x) if isinstance(x, (list, tuple)) else [x]
        out = []
        for v in xs:
            v = v.numpy() if isinstance(v, Tensor) else np.asarray(v)
            if v.dtype.kind not in "biuf":
                raise TypeError(f"Model {self.name!r}: inputs must be numeric arrays, got dtype {v.dtype}")
            if v.ndim == 0:
                raise ValueError(f"Model {self.name!r}: inputs need a batch axis, got a scalar")
            out.append(np.ascontiguousarray(v, dtype=backend.floatx()) if v.dtype.kind != "f" else
                       np.ascontiguousarray(v))
        return out

    def _sample_weight(self, sample_weight, class_weight, ys, n, where):
        """Per-sample weights from ``sample_weight`` or ``class_weight`` (one output,
        keys checked against the output's classes: a single unit is binary)."""
        classes = None
        if class_weight is not None:
            if ys is None or ys[0] is None:
                raise ValueError(f"{where}: class_weight needs targets y")
            shape = self._output_shapes()[0]
            width = shape[-1] if shape else 1
            classes = 2 if width in (1, None) else width
        return sample_weights(ys or [None], sample_weight, class_weight, where, n=n, classes=classes)

    def _data(self, x, y, sample_weight, class_weight, where, need_y=True):
        """(xs, ys, sample weights) checked against the model and each other."""
        xs = self._x_list(x)
        ys = self._prepare_ys(y, where, xs)
        if ys is None and need_y and self._compiled_loss is not None:
            raise ValueError(f"{where}: targets y are required")
        sw = self._sample_weight(sample_weight, class_weight, ys, len(xs[0]), where)
        check_len(xs, ys, sw)
        return xs, ys, sw

    # ------------------------------------------------------------------ loss
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The total loss of a batch, as Keras 3: the compiled loss of ``y`` and
        ``y_pred`` (weighted by ``sample_weight``) plus the model's own losses
        (``self.losses``). Use it in a custom ``train_step``."""
        outs = list(y_pred) if isinstance(y_pred, (list, tuple)) else [y_pred]
        ys = None
        if y is not None:
            ys = list(y) if isinstance(y, (list, tuple)) and len(outs) > 1 else [y]
            ys = [v.numpy() if isinstance(v, Tensor) else v for v in ys]
        sw = sample_weight.numpy() if isinstance(sample_weight, Tensor) else sample_weight
        total, per = self._total_loss(ys, outs, sw)
        self._last_losses = (total, per)
        return total

    def _total_loss(self, ys, outs, sw):
        """(total loss tensor, per-output loss tensors)."""
        total, per = None, []
        if self._compiled_loss is not None:
            if ys is None:
                raise ValueError("the compiled loss needs targets y")
            total, per = self._compiled_loss.total(ys, outs, sw)
        extra = self.losses
        if extra:
            dev = outs[0].device if outs and isinstance(outs[0], Tensor) else None
            reg = None
            for t in extra:
                t = ops.convert_to_tensor(t, device=dev)
                t = ops.sum(t) if t.ndim else t
                reg = t if reg is None else ops.add(reg, t)
            total = reg if total is None else ops.add(total, ops.cast(reg, total.dtype))
        if total is None:
            raise ValueError("No loss to compute. Provide a `loss` argument in `compile()` (or add losses with "
                             "`layer.add_loss`)")
        return total, per

    # ------------------------------------------------------------------ the built-in step
    def _train_step(self, xs, ys, sw):
        """One optimizer step; returns (total loss, per-output losses, outputs). The
        loss, the gradients and the moving statistics the forward pass computed are
        checked before anything is written: on the CPU a non-finite one skips the
        update (``_step_ok`` is False); on the GPU the check sets the step guard on the
        device, and every in-place update kernel then leaves the weights as they were
        (no read-back per step)."""
        with GradientTape() as tape, deferred_assignments() as pending, self._weights().read():
            outs = self._run(xs, True)
            total, per = self._total_loss(ys, outs, sw)
        variables = self.trainable_weights
        grads = tape.gradient(total, variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        be = device_mod.backend(total.device)
        guard = self._step_guard(be)
        ok = be.flag_nonfinite([t._data for t in [total] + [g for g, _ in pairs] + [p[1] for p in pending]], guard)
        self._step_ok = ok
        if not ok:
            return total, per, outs  # nothing was written; the caller raises
        carrier = total if total._stats is not None else (per[0] if len(per) == 1 and per[0] is not None
                                                           and per[0]._stats is not None else None)
        if guard is not None and carrier is not None:
            # The guard rides on the loss pair the trainer reads back anyway: once it is
            # tripped the read loss is NaN (no extra read-back).
            carrier._stats = device_mod.accumulate_pair(guard, carrier._stats, 1)
            self._guard_read = True
        else:
            self._guard_read = guard is None
        with device_mod.guarded(guard), self._weights().write():
            self.optimizer.apply_gradients(pairs)
            for v, o, alpha, beta in pending:
                v._apply_axpby(o, alpha, beta)
        return total, per, outs

    def _step_guard(self, be):
        """The device flag of this training run (None on the CPU); a fresh one per fit."""
        g = getattr(self, "_guard", None)
        if g is None or g[0] is not be:
            g = self._guard = (be, be.new_guard())
        return g[1]

    def _reset_guard(self):
        self._guard = None

    def _step_failed(self):
        """Whether a step since the guard was made met inf or NaN (a read-back on the
        GPU: called once per epoch, or per batch when the batch is read back anyway)."""
        if not getattr(self, "_step_ok", True):
            return True
        if getattr(self, "_guard_read", True):
            return False  # the loss read back already carries the guard
        g = getattr(self, "_guard", None)
        return g is not None and g[0].guard_tripped(g[1])

    _KEPT = "the weights are those of the last good step (this step's update was not applied)"

    def _custom(self, name):
        """Whether a subclass overrides the step ``name`` (train_step, test_step,
        predict_step): then fit / evaluate / predict call it."""
        return getattr(type(self), name) is not getattr(Trainer, name)

    # ------------------------------------------------------------------ overridable steps (Keras 3)
    def train_step(self, data):
        """One training step on ``data`` (``(x, y)`` or ``(x, y, sample_weight)`` of
        tensors); returns the logs. Override it for a custom step (Keras 3): compute the
        loss under a :class:`convcore.GradientTape` with ``self.compute_loss``, apply the
        gradients with ``self.optimizer.apply_gradients``, and return
        ``self.compute_metrics(x, y, y_pred, sample_weight)``."""
        x, y, sw = unpack_x_y_sample_weight(data)
        with GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sw)
        variables = self.trainable_variables
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return self.compute_metrics(x, y, y_pred, sample_weight=sw)

    def test_step(self, data):
        """One evaluation step on ``data``; returns the logs (override as train_step)."""
        x, y, sw = unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sw, training=False)
        return self.compute_metrics(x, y, y_pred, sample_weight=sw)

    def predict_step(self, data):
        """The outputs for one batch of ``data`` (override for custom inference)."""
        x, _, _ = unpack_x_y_sample_weight(data)
        return self(x, training=False)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Update the metrics with one batch (the loss: the last ``compute_loss``) and
        return the running logs, as Keras 3."""
        outs = list(y_pred) if isinstance(y_pred, (list, tuple)) else [y_pred]
        ys = None
        if y is not None:
            ys = list(y) if isinstance(y, (list, tuple)) and len(outs) > 1 else [y]
            ys = [v.numpy() if isinstance(v, Tensor) else np.asarray(v) for v in ys]
        total, per = getattr(self, "_last_losses", (None, []))
        sw = sample_weight.numpy() if isinstance(sample_weight, Tensor) else sample_weight
        tracker = self._current_tracker()
        tracker.update(total, per, ys, outs, sw, n=len(outs[0]))
        return tracker.logs()

    def _current_tracker(self):
        t = self.__dict__.get("_tracker")
        if t is None:
            t = self.__dict__["_tracker"] = self._compiled_metrics.tracker(False)
        return t

    def reset_metrics(self):
        """Reset the running loss and metrics (at each epoch, as Keras)."""
        t = self.__dict__.get("_tracker")
        if t is not None:
            t.reset()

    def _tensor_batch(self, xs, ys, sw):
        """A batch as tensors on the model's device, packed as Keras gives it to a step."""
        dev = self._place()
        be = device_mod.backend(dev)
        tx = [Tensor(be.put(v, f"Model {self.name!r}"), dev) for v in xs]
        x = tx[0] if len(tx) == 1 else tx
        y = None
        if ys is not None:
            ty = [None if v is None else ops.convert_to_tensor(v, device=dev)
                  for v in ys]
            y = ty[0] if len(ty) == 1 else ty
        s = None if sw is None else ops.convert_to_tensor(np.asarray(sw, dtype=np.float32), device=dev)
        return _pack(x, y, s)

    # ------------------------------------------------------------------ batches
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns the loss (and the metrics if compiled
        with them), or a dict of them with ``return_dict=True``."""
        self._require_compiled("train_on_batch")
        xs, ys, sw = self._data(x, y, sample_weight, class_weight, "train_on_batch")
        with self._training("train_on_batch"):
            self._reset_guard()
            logs = self._one_train_batch(xs, ys, sw, self._compiled_metrics.tracker(False), "train_on_batch")
        return self._result(logs, return_dict)

    def _one_train_batch(self, xs, ys, sw, tracker, where, epoch=None, batch=None, steps=None):
        """Run one training batch and update ``tracker``; raises FloatingPointError when
        the loss, a gradient or a moving statistic is not finite (nothing was written)."""
        if self._custom("train_step"):
            self.__dict__["_tracker"] = tracker
            return _float_logs(self.train_step(self._tensor_batch(xs, ys, sw)))
        total, per, outs = self._train_step(xs, ys, sw)
        tracker.update(total, per, ys, outs, sw, n=len(xs[0]))
        logs = tracker.logs()
        lv = logs.get("loss", 0.0)
        if not np.isfinite(lv) or self._step_failed():
            what = f"the loss became {lv}" if not np.isfinite(lv) else \
                "a gradient or moving statistic became inf or NaN"
            at = f" at epoch {epoch + 1}, batch {batch + 1} of {steps}" if epoch is not None else ""
            raise FloatingPointError(f"{where}: {what}{at}; {self._KEPT}; lower the learning rate or check the data "
                                     "for NaN/inf")
        return logs

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss (and metrics) on one batch, in inference mode."""
        self._require_compiled("test_on_batch")
        xs, ys, sw = self._data(x, y, sample_weight, None, "test_on_batch")
        tracker = self._compiled_metrics.tracker(False)
        logs = self._one_test_batch(xs, ys, sw, tracker)
        return self._result(tracker.logs() if logs is None else logs, return_dict)

    def _one_test_batch(self, xs, ys, sw, tracker):
        if self._custom("test_step"):
            self.__dict__["_tracker"] = tracker
            with self._weights().read():
                return _float_logs(self.test_step(self._tensor_batch(xs, ys, sw)))
        with self._weights().read():
            outs = self._run(xs, False)
            total, per = self._total_loss(ys, outs, sw)
            tracker.update(total, per, ys, outs, sw, n=len(xs[0]))
        return None

    def _result(self, logs, return_dict):
        """Keras's return value of evaluate / *_on_batch: the loss alone, a list
        ``[loss, *metrics]``, or the dict."""
        logs = dict(logs)
        if return_dict:
            return logs
        vals = list(logs.values())
        return vals[0] if len(vals) == 1 else vals

    def predict_on_batch(self, x):
        """The outputs for one batch, in inference mode."""
        xs = self._x_list(x)
        return self._predict_batch(xs)

    def _predict_batch(self, xs):
        with self._weights().read():
            if self._custom("predict_step"):
                y = self.predict_step(self._tensor_batch(xs, None, None))
                outs = list(y) if isinstance(y, (list, tuple)) else [y]
            else:
                outs = self._run(xs, False)
            res = [o.numpy() if isinstance(o, Tensor) else np.asarray(o) for o in outs]
        return res[0] if len(res) == 1 else res

    # ------------------------------------------------------------------ gradients
    def loss_and_gradients(self, x, y, training=False):
        """``(loss, grads)`` with ``grads`` aligned with :meth:`get_weights` (zeros for
        non-trainable weights). ``training=False`` (default) runs dropout and batch
        normalization in inference mode, so the result is a deterministic function of
        the weights."""
        self._require_compiled("loss_and_gradients")
        xs, ys, sw = self._data(x, y, None, None, "loss_and_gradients")
        trainable = self.trainable_weights
        with self._weights().read():  # the backward reads the weights too
            with GradientTape() as tape:
                outs = self._run(xs, training)
                loss, _ = self._total_loss(ys, outs, sw)
            gs = tape.gradient(loss, trainable)
        by_id = {id(v): g for v, g in zip(trainable, gs)}
        grads = []
        for w in self.weights:
            g = by_id.get(id(w))
            grads.append(np.zeros(w.shape, dtype=w.dtype) if g is None else
                         np.asarray(g.numpy(), dtype=w.dtype).reshape(w.shape))
        return float(loss), grads

    def input_gradient(self, x, y, training=False):
        """dLoss/dx for inputs ``x`` and targets ``y`` (same shape as ``x``)."""
        self._require_compiled("input_gradient")
        xs, ys, sw = self._data(x, y, None, None, "input_gradient")
        dev = self._place()
        ts = [Tensor(device_mod.backend(dev).put(v, f"Model {self.name!r}"), dev) for v in xs]
        with self._weights().read():  # the backward reads the weights too
            with GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(ts)
                outs = self._run(ts, training)
                loss, _ = self._total_loss(ys, outs, sw)
            gs = tape.gradient(loss, ts)
        dxs = [np.zeros_like(v) if g is None else np.asarray(g.numpy(), dtype=v.dtype) for v, g in zip(xs, gs)]
        return dxs[0] if len(dxs) == 1 else dxs

    # ------------------------------------------------------------------ arguments
    @staticmethod
    def _batch_size(batch_size, where):
        return 32 if batch_size is None else _checks.integer(where, "batch_size", batch_size, minimum=1)

    @staticmethod
    def _verbose(verbose, where):
        if verbose == "auto":
            return 1
        return _checks.integer(where, "verbose", verbose, minimum=0, maximum=2)

    @staticmethod
    def _n_steps(n, batch_size, steps):
        """Batches of an evaluate / predict pass: all of them, or at most ``steps``."""
        batches = -(-n // batch_size)
        return batches if steps is None else min(steps, batches)

    @staticmethod
    def _steps(steps, where, name):
        return None if steps is None else _checks.integer(where, name, steps, minimum=1)

    @staticmethod
    def _user_callbacks(callbacks, where):
        if callbacks is None:
            return []
        if isinstance(callbacks, Callback):
            callbacks = [callbacks]
        if isinstance(callbacks, CallbackList):
            callbacks = callbacks.callbacks
        out = list(callbacks)
        for cb in out:
            if not isinstance(cb, Callback):
                raise TypeError(f"{where}: callbacks must be Callback objects, got {cb!r}")
        return out

    def _callback_list(self, user, verbose, **params):
        """Keras's order: the user's callbacks, then History (fit), then the progress
        bar, so History records what a callback adds to the logs."""
        add_history = params.pop("add_history", False)
        cbs = CallbackList(user, model=self, add_history=add_history, add_progbar=verbose != 0, verbose=verbose,
                           **params)
        return cbs, cbs._history

    # ------------------------------------------------------------------ fit / evaluate / predict
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs (counting from ``initial_epoch``), as
        ``keras.Model.fit``; returns a :class:`History` whose ``history`` dict holds
        each epoch's logs ('loss', the metrics, and 'val_' ones on validation epochs).

        ``x`` is numpy arrays (with ``y``), a :class:`~convcore.utils.PyDataset` /
        ``Sequence`` (or any object with ``__len__`` and ``__getitem__`` returning
        batches), or a Python generator / iterator yielding ``x``, ``(x, y)`` or ``(x,
        y, sample_weight)``; ``validation_data`` may be any of these too. A PyDataset
        with ``workers > 1`` (or ``use_multiprocessing``) and a generator load their
        next batches in worker threads (processes) while the step runs
        (:mod:`convcore.trainers.data_adapters`). With batches, ``y``,
        ``sample_weight``, ``batch_size`` and ``validation_split`` are refused, and
        ``shuffle`` shuffles a PyDataset's batch order (a generator's: ignored, with
        Keras's warning). ``steps_per_epoch`` follows Keras 3: an epoch takes that many
        batches, a finite source going on across epochs; one that runs out stops
        training with Keras's warning. Where convcore differs from Keras 3.15: a
        generator's first batches are never replayed after it ends (Keras replays the
        two it peeked at); ``class_weight`` works with generators (Keras 3 refuses it);
        ``batch_size`` with batches is an error (Keras 3 ignores it); an infinite
        PyDataset needs ``steps_per_epoch``; a PyDataset's epoch hooks run once per
        epoch (Keras runs one extra pair to build the model); worker processes start
        with 'forkserver' / 'spawn', not 'fork', so the dataset must be picklable. Each
        validation on a PyDataset starts from its first batch (as Keras); a validation
        generator goes on where the last validation stopped, and one without
        ``validation_steps`` that has ended stops training with Keras's warning."""
        return self._fit_entry(x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data,
                               shuffle, class_weight, sample_weight, initial_epoch, steps_per_epoch,
                               validation_steps, validation_batch_size, validation_freq)

    def _fit_entry(self, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
                   class_weight, sample_weight, initial_epoch, steps_per_epoch, validation_steps,
                   validation_batch_size, validation_freq, loader=None, warn_shuffle=True):
        self._require_compiled("fit")
        epochs = _checks.integer("fit", "epochs", epochs, minimum=0)
        initial_epoch = _checks.integer("fit", "initial_epoch", initial_epoch, minimum=0)
        if not isinstance(shuffle, (bool, np.bool_)) and shuffle != "batch":
            raise TypeError(f"fit: shuffle must be True or False, got {shuffle!r}")
        if isinstance(validation_freq, (list, tuple, set, range)):
            validation_freq = [_checks.integer("fit", "validation_freq entries", e, minimum=1) for e in validation_freq]
        else:
            validation_freq = _checks.integer("fit", "validation_freq", validation_freq, minimum=1)
        with self._training("fit"):
            return self._fit(x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data,
                             bool(shuffle), class_weight, sample_weight, initial_epoch,
                             self._steps(steps_per_epoch, "fit", "steps_per_epoch"),
                             self._steps(validation_steps, "fit", "validation_steps"),
                             validation_batch_size, validation_freq, loader, warn_shuffle)

    @staticmethod
    def _loader(max_queue_size, workers, use_multiprocessing):
        """tf.keras 2's loading arguments of the *_generator methods (None: the
        PyDataset's own, or 10 / 1 / False)."""
        out = {}
        if max_queue_size is not None:
            out["max_queue_size"] = max_queue_size
        if workers is not None:
            out["workers"] = workers
        if use_multiprocessing is not None:
            if not isinstance(use_multiprocessing, (bool, np.bool_)):
                raise TypeError(f"use_multiprocessing must be True or False, got {use_multiprocessing!r}")
            out["use_multiprocessing"] = bool(use_multiprocessing)
        return out

    def fit_generator(self, generator, steps_per_epoch=None, epochs=1, verbose=1, callbacks=None,
                      validation_data=None, validation_steps=None, validation_freq=1, class_weight=None,
                      max_queue_size=None, workers=None, use_multiprocessing=None, shuffle=True, initial_epoch=0):
        """tf.keras 2's ``fit_generator`` (deprecated there, removed in Keras 3: use
        :meth:`fit`, which takes generators and PyDatasets). Kept as an alias with
        tf.keras 2's arguments: ``max_queue_size`` (default 10), ``workers`` (default
        1; 0 draws a generator in the training thread) and ``use_multiprocessing``
        (default False) set how batches are loaded (for a PyDataset they override its
        own settings when given). A generator is always drawn by one producer thread
        (``workers`` > 1 and ``use_multiprocessing`` do not apply to it: tf.keras 2's
        several threads or processes on one generator duplicated or reordered its
        batches). ``shuffle`` shuffles a PyDataset's batches and is ignored for a
        generator (silently, as tf.keras 2)."""
        return self._fit_entry(generator, None, None, epochs, verbose, callbacks, 0.0, validation_data, shuffle,
                               class_weight, None, initial_epoch, steps_per_epoch, validation_steps, None,
                               validation_freq, self._loader(max_queue_size, workers, use_multiprocessing),
                               warn_shuffle=False)

    def evaluate_generator(self, generator, steps=None, callbacks=None, max_queue_size=None, workers=None,
                           use_multiprocessing=None, verbose=0):
        """tf.keras 2's ``evaluate_generator`` (deprecated there, removed in Keras 3:
        use :meth:`evaluate`). Kept as an alias with tf.keras 2's arguments (see
        :meth:`fit_generator`); returns what ``evaluate`` returns."""
        return self._evaluate(generator, None, None, verbose, None, steps, callbacks, False,
                              self._loader(max_queue_size, workers, use_multiprocessing))

    def predict_generator(self, generator, steps=None, callbacks=None, max_queue_size=None, workers=None,
                          use_multiprocessing=None, verbose=0):
        """tf.keras 2's ``predict_generator`` (deprecated there, removed in Keras 3:
        use :meth:`predict`). Kept as an alias with tf.keras 2's arguments (see
        :meth:`fit_generator`)."""
        return self._predict(generator, None, verbose, steps, callbacks,
                             self._loader(max_queue_size, workers, use_multiprocessing))

    def _batches(self, x, y, sample_weight, batch_size, steps, shuffle, class_weight, where, loader,
                 warn_shuffle=True, predict=False):
        """A :class:`~.data_adapters.DataEpochIterator` over ``x`` when it is a
        PyDataset or a generator (None for arrays), the model built from its first batch
        if it has no input shape yet."""
        adapter = data_adapters.get_data_adapter(x, y, sample_weight, batch_size, steps, shuffle, class_weight,
                                                 where, loader, warn_shuffle)
        if adapter is None:
            return None
        try:
            if not self._is_graph():
                first = data_adapters.standardize_batch(adapter.peek(), where, adapter.source)
                bx = first[0]
                self._ensure_built_for(bx if not isinstance(bx, (list, tuple)) else bx[0])
            if predict:
                def convert(bx, by, bsw):
                    return self._x_list(bx)
            else:
                def convert(bx, by, bsw):
                    return self._data(bx, by, bsw, class_weight, where)
            shapes = [tuple(t.shape[1:]) for t in self.inputs] if self._is_graph() else None
            return data_adapters.DataEpochIterator(adapter, steps, convert, where, shapes)
        except BaseException:
            adapter.close()
            raise

    def _validation(self, validation_data, where):
        """``validation_data`` as checked ``(xs, ys, sample_weight)``."""
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError(f"{where}: validation_data must be a tuple (x_val, y_val) or (x_val, y_val, "
                             f"val_sample_weight), got {type(validation_data).__name__}"
                             + (f" of {len(validation_data)}" if isinstance(validation_data, (tuple, list)) else ""))
        vx, vy = validation_data[0], validation_data[1]
        vsw = validation_data[2] if len(validation_data) == 3 else None
        return self._data(vx, vy, vsw, None, f"{where} (validation_data)")

    def _fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
             class_weight, sample_weight, initial_epoch, steps_per_epoch, validation_steps, validation_batch_size,
             validation_freq, loader=None, warn_shuffle=True):
        it = val = None
        try:
            if not data_adapters.is_array_data(x):
                if validation_split and validation_data is None:
                    raise ValueError("Argument `validation_split` is only supported for tensors or NumPy arrays. "
                                     f"Found incompatible type in the input: [{type(x)}]")
                it = self._batches(x, y, sample_weight, batch_size, steps_per_epoch, shuffle, class_weight, "fit",
                                   loader, warn_shuffle)
            if validation_data is not None and not data_adapters.is_array_data(validation_data):
                val = self._batches(validation_data, None, None, validation_batch_size, validation_steps, False,
                                    None, "fit (validation_data)", loader)
            return self._fit_loop(it, val, x, y, batch_size, epochs, verbose, callbacks, validation_split,
                                  validation_data, shuffle, class_weight, sample_weight, initial_epoch,
                                  steps_per_epoch, validation_steps, validation_batch_size, validation_freq)
        finally:
            for i in (it, val):
                if i is not None:
                    i.close()

    def _fit_loop(self, it, val, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data,
                  shuffle, class_weight, sample_weight, initial_epoch, steps_per_epoch, validation_steps,
                  validation_batch_size, validation_freq):
        if it is None:
            self._ensure_built_for(x)
            xs, ys, sw = self._data(x, y, sample_weight, class_weight, "fit")
            if len(xs[0]) == 0:
                raise ValueError("fit: no training samples (x and y are empty)")
            batch_size = self._batch_size(batch_size, "fit")
        if val is not None:
            pass
        elif validation_data is not None:
            val = self._validation(validation_data, "fit")
        elif validation_split and it is None:
            (xs, ys, sw), val = split_validation(xs, ys, sw, validation_split)
        elif not isinstance(validation_split, (int, float, np.floating, np.integer)) or \
                isinstance(validation_split, bool):
            raise TypeError(f"fit: validation_split must be a float in [0, 1), got {validation_split!r}")
        if isinstance(val, data_adapters.DataEpochIterator):
            val_bs = None
        else:
            val_bs = self._batch_size(validation_batch_size, "fit") if validation_batch_size is not None else \
                (batch_size or 32)
        verbose = self._verbose(verbose, "fit")
        if it is None:
            it = EpochIterator(xs, ys, sw, batch_size, shuffle, backend.rng(), steps_per_epoch)
        cbs, history = self._callback_list(self._user_callbacks(callbacks, "fit"), verbose, add_history=True,
                                           epochs=epochs, steps=it.steps)
        self.stop_training = False
        self._reset_guard()
        custom = self._custom("train_step")
        self._initial_epoch = None
        cbs.on_train_begin()
        # a callback may move the start (BackupAndRestore resuming an interrupted fit)
        initial_epoch = self._initial_epoch or initial_epoch
        logs = {}
        # On the GPU with no per-batch callback, loss and metrics stay on the device and
        # are read back once per epoch instead of once per batch.
        deferred = (self.device == "gpu" and not custom and not cbs.wants_batch_logs())
        batches = isinstance(it, data_adapters.DataEpochIterator)
        try:
            logs = self._epochs(it, val, batches, cbs, custom, deferred, initial_epoch, epochs, val_bs,
                                validation_steps, validation_freq)
        finally:
            if it.__dict__.get("_open") is not None:
                it._open.close()
        # use_ema: the moving averages become the weights at the end of training (Keras)
        finalize = getattr(self.optimizer, "finalize_variable_values", None)
        if finalize is not None:
            with self._weights().write():
                finalize(self.trainable_weights)
        cbs.on_train_end(logs)
        self.history = history
        return history

    def _epochs(self, it, val, batches, cbs, custom, deferred, initial_epoch, epochs, val_bs, validation_steps,
                validation_freq):
        logs = {}
        for epoch in range(initial_epoch, epochs):
            if batches and not it.has_more():  # a generator that has ended: Keras's warning, and stop
                if not it.ran_out:
                    warnings.warn(_RAN_OUT, stacklevel=6)
                break
            cbs.on_epoch_begin(epoch)
            tracker = self._compiled_metrics.tracker(deferred)  # the metrics from zero, as Keras's epoch
            step_logs = {}
            epoch_batches = it._open = it.epoch()
            for b, (bx, by, bsw) in enumerate(epoch_batches):
                cbs.on_train_batch_begin(b)
                if deferred:
                    total, per, outs = self._train_step(bx, by, bsw)
                    tracker.update(total, per, by, outs, bsw, n=len(bx[0]))
                    if not self._step_ok:
                        raise FloatingPointError(f"fit: the loss, a gradient or a moving statistic became inf or "
                                                 f"NaN at epoch {epoch + 1}, batch {b + 1}; {self._KEPT}")
                    continue
                step_logs = self._one_train_batch(bx, by, bsw, tracker, "fit", epoch, b, it.steps)
                cbs.on_train_batch_end(b, step_logs)
                if self.stop_training:
                    break
            epoch_batches.close()  # the epoch's workers joined, the dataset's on_epoch_end called
            it._open = None
            logs = step_logs if custom else tracker.logs()  # deferred: the epoch's one read-back
            lv = logs.get("loss", 0.0)
            if not custom and (not np.isfinite(lv) or self._step_failed()):
                what = f"the loss became {lv}" if not np.isfinite(lv) else \
                    "a gradient or moving statistic became inf or NaN"
                raise FloatingPointError(
                    f"fit: {what} during epoch {epoch + 1}; the weights are those before the first step that "
                    "did (no later update was applied either); lower the learning rate or check the data for NaN/inf")
            logs = dict(logs)
            if val is not None and _should_eval(epoch, validation_freq):
                if isinstance(val, data_adapters.DataEpochIterator) and not val.has_more():
                    # a validation generator that has ended: Keras's warning, and stop after this epoch
                    warnings.warn(_RAN_OUT, stacklevel=6)
                    self.stop_training = True
                else:
                    vlogs = self._evaluate_data(val, val_bs, validation_steps, cbs)
                    logs.update({"val_" + k: v for k, v in vlogs.items()})
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        return logs

    def _evaluate_data(self, data, batch_size, steps, cbs):
        """Logs of the loss and metrics over ``data`` = (xs, ys, sw) in batches, or a
        :class:`~.data_adapters.DataEpochIterator`, with the ``on_test_*`` hooks."""
        if isinstance(data, data_adapters.DataEpochIterator):
            it, n_steps = data, None
            it.reset()  # each evaluation from the first batch of a PyDataset, as Keras
        else:
            xs, ys, sw = data
            it = EpochIterator(xs, ys, sw, batch_size, False, None, None)
            n_steps = self._n_steps(len(xs[0]), batch_size, steps)
        custom = self._custom("test_step")
        deferred = self.device == "gpu" and not custom and not cbs.wants_batch_logs()
        tracker = self._compiled_metrics.tracker(deferred)
        cbs.on_test_begin()
        logs = {}
        with contextlib.closing(it.epoch()) as epoch_batches:
            for b, (bx, by, bsw) in enumerate(epoch_batches):
                if n_steps is not None and b >= n_steps:
                    break
                cbs.on_test_batch_begin(b)
                step_logs = self._one_test_batch(bx, by, bsw, tracker)
                if not deferred:
                    logs = step_logs if custom else tracker.logs()
                    cbs.on_test_batch_end(b, logs)
        if not custom:
            logs = tracker.logs()
        cbs.on_test_end(logs)
        return dict(logs)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False):
        """The loss (and metrics) over ``x, y`` in inference mode, as
        ``keras.Model.evaluate``: a float, a list ``[loss, *metrics]``, or a dict with
        ``return_dict=True``. ``x`` may be a PyDataset or a generator of batches (see
        :meth:`fit`): all of its batches, or ``steps`` of them (needed for an infinite
        PyDataset; a generator runs until it ends)."""
        return self._evaluate(x, y, batch_size, verbose, sample_weight, steps, callbacks, return_dict)

    def _evaluate(self, x, y, batch_size, verbose, sample_weight, steps, callbacks, return_dict, loader=None):
        self._require_compiled("evaluate")
        verbose = self._verbose(verbose, "evaluate")
        steps = self._steps(steps, "evaluate", "steps")
        if not data_adapters.is_array_data(x):
            it = self._batches(x, y, sample_weight, batch_size, steps, False, None, "evaluate", loader)
            try:
                cbs, _ = self._callback_list(self._user_callbacks(callbacks, "evaluate"), verbose, steps=it.steps)
                logs = self._evaluate_data(it, None, steps, cbs)
            finally:
                it.close()
            return self._result(logs, return_dict)
        self._ensure_built_for(x)
        data = self._data(x, y, sample_weight, None, "evaluate")
        if len(data[0][0]) == 0:
            raise ValueError("evaluate: no samples (x and y are empty)")
        bs = self._batch_size(batch_size, "evaluate")
        n_steps = self._n_steps(len(data[0][0]), bs, steps)
        cbs, _ = self._callback_list(self._user_callbacks(callbacks, "evaluate"), verbose, steps=n_steps)
        logs = self._evaluate_data(data, bs, steps, cbs)
        return self._result(logs, return_dict)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for ``x`` as numpy arrays, computed in batches in inference mode, as
        ``keras.Model.predict`` (several outputs: a list). ``x`` may be a PyDataset or
        a generator of batches (``x`` or ``(x, ...)``; targets are ignored), see
        :meth:`fit`."""
        return self._predict(x, batch_size, verbose, steps, callbacks)

    def _predict(self, x, batch_size, verbose, steps, callbacks, loader=None):
        verbose = self._verbose(verbose, "predict")
        steps = self._steps(steps, "predict", "steps")
        if not data_adapters.is_array_data(x):
            it = self._batches(x, None, None, batch_size, steps, False, None, "predict", loader, predict=True)
            try:
                cbs, _ = self._callback_list(self._user_callbacks(callbacks, "predict"), verbose, steps=it.steps)
                with contextlib.closing(it.epoch()) as batches:
                    return self._predict_loop(cbs, ((b, bx) for b, (bx) in enumerate(batches)))
            finally:
                it.close()
        self._ensure_built_for(x)
        xs = self._x_list(x)
        bs = self._batch_size(batch_size, "predict")
        n = len(xs[0])
        n_steps = self._n_steps(n, bs, steps)
        cbs, _ = self._callback_list(self._user_callbacks(callbacks, "predict"), verbose, steps=n_steps)
        return self._predict_loop(cbs, ((b, [v[b * bs:(b + 1) * bs] for v in xs]) for b in range(n_steps)))

    def _predict_loop(self, cbs, batches):
        """The outputs over ``(b, xs)`` batches, with the ``on_predict_*`` hooks."""
        cbs.on_predict_begin()
        chunks = None
        for b, bxs in batches:
            cbs.on_predict_batch_begin(b)
            outs = self._predict_batch(bxs)
            outs = list(outs) if isinstance(outs, list) else [outs]
            chunks = [[] for _ in outs] if chunks is None else chunks
            for c, o in zip(chunks, outs):
                c.append(o)
            cbs.on_predict_batch_end(b, {"outputs": outs[0] if len(outs) == 1 else outs})
        cbs.on_predict_end()
        if chunks is None:
            shapes = self._output_shapes() if self._is_graph() else []
            dts = [t.node.layer.dtype for t in self.outputs] if self._is_graph() else []
            res = [np.zeros((0,) + tuple(s), dtype=d) for s, d in zip(shapes, dts)]
        else:
            res = [np.concatenate(c) for c in chunks]
        return res[0] if len(res) == 1 else res
