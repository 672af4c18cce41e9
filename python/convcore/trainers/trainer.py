"""The training API of a model: ``compile``, ``fit``, ``evaluate``, ``predict``,
``train_on_batch``, ``test_on_batch``, and the gradients the inspection and attack tools
use (``loss_and_gradients``, ``input_gradient``). A training step is a forward pass
under a :class:`~convcore.GradientTape`, the compiled loss, ``tape.gradient`` and the
optimizer's ``apply_gradients``: nothing here knows how any layer differentiates."""
from __future__ import annotations

import contextlib
import threading

import numpy as np

from .. import _checks, backend, device as device_mod, losses as losses_mod, optimizers as optimizers_mod
from ..callbacks import Callback, CallbackList, History, ProgbarLogger
from ..tape import GradientTape
from ..tensor import Tensor, deferred_assignments
from .compile_utils import CompiledLoss, CompiledMetrics
from .epoch_iterator import EpochIterator, check_len, split_validation


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


class Trainer:
    def __init__(self):
        self.stop_training = False
        self.optimizer = None
        self.loss = None
        self.metrics_names = []
        self._compiled = False
        self._compiled_device = None  # 'cpu' or 'gpu' once compiled (None: the default device)
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
    def compile(self, optimizer="adam", loss=None, metrics=None, device=None, loss_weights=None,
                run_eagerly=None, jit_compile=None, steps_per_execution=None):
        """Choose the optimizer ('sgd', 'adam' or an optimizer object; the default is
        'adam' — Keras's default 'rmsprop' is not implemented), the loss (a name, a Loss
        object or a function ``fn(y_true, y_pred)`` of tensors), the metrics
        (``['accuracy']`` and functions ``fn(y_true, y_pred)``) and the device ('cpu',
        'gpu', 'auto'; default: the one set by :func:`convcore.set_device`). On the GPU,
        weights, activations, gradients and optimizer state stay on the device;
        ``get_weights()`` reads them back."""
        # Resolve everything first: a compile that raises leaves the model as it was.
        dev = None if device is None else device_mod.resolve(device, "compile")
        if dev == "gpu" and self._is_graph():
            bad = [l.name for l in self.layers if l.dtype != "float32" and l.weights]
            if bad:
                raise TypeError(f"compile(device='gpu'): layers {bad} compute in float64 but the GPU computes in "
                                "float32; build them with dtype='float32' (set_floatx('float32')), or use device='cpu'")
        opt = optimizers_mod.get(optimizer)
        if loss is None:
            raise ValueError("compile: a loss is required, e.g. loss='sparse_categorical_crossentropy'")
        compiled_loss = CompiledLoss(loss)
        compiled_metrics = CompiledMetrics(metrics, compiled_loss)
        self.optimizer, self.loss = opt, compiled_loss.loss
        self._compiled_loss, self._compiled_metrics = compiled_loss, compiled_metrics
        self._compiled_device = dev
        self.metrics_names = compiled_metrics.names
        self._compiled = True

    def _require_compiled(self, what):
        if not self._compiled:
            raise RuntimeError(f"You must call compile() before {what}()")

    def _prepare_y(self, y):
        if y is None:
            raise ValueError("targets y are required")
        self._require_graph()
        y = y.numpy() if isinstance(y, Tensor) else np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise TypeError(f"targets must be numeric, got dtype {y.dtype}")
        y = self._compiled_loss.check_labels(y, tuple(self.outputs[0].shape[1:]))
        if y.dtype.kind == "f":
            y = np.ascontiguousarray(y, dtype=self.outputs[0].node.layer.dtype)
        return np.ascontiguousarray(y)

    # ------------------------------------------------------------------ steps
    def _loss(self, y, outs):
        return self._compiled_loss(y, outs[0])

    def _train_step(self, xs, y):
        """One optimizer step; returns (loss tensor, outputs). The loss, the gradients and
        the moving statistics the forward pass computed are checked before anything is
        written: on the CPU a non-finite one skips the update (``_step_ok`` is False);
        on the GPU the check sets the step guard on the device, and every in-place
        update kernel then leaves the weights as they were (no read-back per step)."""
        with GradientTape() as tape, deferred_assignments() as pending, self._weights().read():
            outs = self._run(xs, True)
            loss = self._loss(y, outs)
        variables = self.trainable_weights
        grads = tape.gradient(loss, variables)
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        be = device_mod.backend(loss.device)
        guard = self._step_guard(be)
        ok = be.flag_nonfinite([t._data for t in [loss] + [g for g, _ in pairs] + [p[1] for p in pending]], guard)
        self._step_ok = ok
        if not ok:
            return loss, outs  # nothing was written; the caller raises
        if guard is not None and loss._stats is not None:
            # The guard rides on the loss pair the trainer reads back anyway: once it is
            # tripped the read loss is NaN (no extra read-back).
            loss._stats = device_mod.accumulate_pair(guard, loss._stats, 1)
            self._guard_read = True
        else:
            self._guard_read = guard is None
        with device_mod.guarded(guard), self._weights().write():
            self.optimizer.apply_gradients(pairs)
            for v, o, alpha, beta in pending:
                v._apply_axpby(o, alpha, beta)
        return loss, outs

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

    def _batch_values(self, loss, y, outs):
        """(loss, metric values) of a batch as floats (the one read-back on the GPU)."""
        return self._compiled_metrics.batch_values(loss, y, outs[0])

    def train_on_batch(self, x, y):
        """One optimizer step on one batch; returns the loss (and the metrics if compiled
        with them)."""
        self._require_compiled("train_on_batch")
        xs = self._check_x(x)
        y = self._prepare_y(y)
        check_len(xs, y)
        with self._training("train_on_batch"):
            self._reset_guard()
            loss, outs = self._train_step(xs, y)
        lv, ms = self._batch_values(loss, y, outs)
        self._raise_if_not_finite(lv, "train_on_batch")
        if self._step_failed():
            raise FloatingPointError(f"train_on_batch: a gradient or moving statistic became inf or NaN; {self._KEPT}")
        return lv if not ms else [lv] + ms

    def _checked_data(self, x, y, where):
        """(inputs, targets) checked against the model and each other, not empty."""
        xs = self._check_x(x)
        y = self._prepare_y(y)
        check_len(xs, y)
        if len(y) == 0:
            raise ValueError(f"{where}: no {'training ' if where == 'fit' else ''}samples (x and y are empty)")
        return xs, y

    @staticmethod
    def _batch_size(batch_size, where):
        return 32 if batch_size is None else _checks.integer(where, "batch_size", batch_size, minimum=1)

    @staticmethod
    def _verbose(verbose, where):
        if verbose == "auto":
            return 1
        return _checks.integer(where, "verbose", verbose, minimum=0, maximum=2)

    def _raise_if_not_finite(self, lv, where):
        if not np.isfinite(lv):
            raise FloatingPointError(f"{where}: the loss became {lv}; {self._KEPT}; lower the learning rate or "
                                     "check the data for NaN/inf")

    def test_on_batch(self, x, y):
        """Loss (and metrics) on one batch, in inference mode."""
        self._require_compiled("test_on_batch")
        xs = self._check_x(x)
        y = self._prepare_y(y)
        check_len(xs, y)
        lv, ms = self._eval_batch(xs, y)
        return lv if not ms else [lv] + ms

    def _eval_batch(self, xs, y):
        with self._weights().read():
            outs = self._run(xs, False)
            return self._batch_values(self._loss(y, outs), y, outs)

    # ------------------------------------------------------------------ gradients
    def loss_and_gradients(self, x, y, training=False):
        """``(loss, grads)`` with ``grads`` aligned with :meth:`get_weights` (zeros for
        non-trainable weights). ``training=False`` (default) runs dropout and batch
        normalization in inference mode, so the result is a deterministic function of
        the weights."""
        self._require_compiled("loss_and_gradients")
        xs = self._check_x(x)
        y = self._prepare_y(y)
        check_len(xs, y)
        trainable = self.trainable_weights
        with self._weights().read():  # the backward reads the weights too
            with GradientTape() as tape:
                outs = self._run(xs, training)
                loss = self._loss(y, outs)
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
        xs = self._check_x(x)
        y = self._prepare_y(y)
        check_len(xs, y)
        dev = self._place()
        ts = [Tensor(device_mod.backend(dev).put(v, f"Model {self.name!r}"), dev) for v in xs]
        with self._weights().read():  # the backward reads the weights too
            with GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(ts)
                outs = self._run(ts, training)
                loss = self._loss(y, outs)
            gs = tape.gradient(loss, ts)
        dxs = [np.zeros_like(v) if g is None else np.asarray(g.numpy(), dtype=v.dtype) for v, g in zip(xs, gs)]
        return dxs[0] if len(dxs) == 1 else dxs

    # ------------------------------------------------------------------ fit / evaluate / predict
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0):
        """Train for ``epochs`` epochs; returns a :class:`History`."""
        self._require_compiled("fit")
        epochs = _checks.integer("fit", "epochs", epochs, minimum=0)
        initial_epoch = _checks.integer("fit", "initial_epoch", initial_epoch, minimum=0)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"fit: shuffle must be True or False, got {shuffle!r}")
        with self._training("fit"):
            return self._fit(x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data,
                             shuffle, initial_epoch)

    def _fit(self, x, y, batch_size, epochs, verbose, callbacks, validation_split, validation_data, shuffle,
             initial_epoch):
        self._ensure_built_for(x)
        xs, y = self._checked_data(x, y, "fit")
        batch_size = self._batch_size(batch_size, "fit")
        xs, y, val = split_validation(self, xs, y, validation_split, validation_data)
        verbose = self._verbose(verbose, "fit")
        history = History()
        user = list(callbacks or [])
        for cb in user:
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: callbacks must be Callback objects, got {cb!r}")
        it = EpochIterator(xs, y, batch_size, shuffle, backend.rng())
        cbs = CallbackList([history] + ([ProgbarLogger(verbose)] if verbose else []) + user, model=self,
                           epochs=epochs, steps=it.steps)
        self.stop_training = False
        self._reset_guard()
        cbs.on_train_begin()
        # On the GPU with no per-batch callback, loss and metrics stay on the device and
        # are read back once per epoch instead of once per batch.
        deferred = self.device == "gpu" and not cbs.wants_batch_logs() and self._compiled_metrics.can_defer()
        for epoch in range(initial_epoch, epochs):
            cbs.on_epoch_begin(epoch)
            totals = self._compiled_metrics.running(deferred)
            for b, (bx, by) in enumerate(it.epoch()):
                cbs.on_train_batch_begin(b)
                loss, outs = self._train_step(bx, by)
                if deferred:
                    totals.add_device(loss, len(by))
                    continue
                lv, ms = self._batch_values(loss, by, outs)
                if not np.isfinite(lv) or self._step_failed():
                    what = f"the loss became {lv}" if not np.isfinite(lv) else \
                        "a gradient or moving statistic became inf or NaN"
                    raise FloatingPointError(
                        f"fit: {what} at epoch {epoch + 1}, batch {b + 1} of {it.steps}; {self._KEPT}; "
                        "lower the learning rate or check the data for NaN/inf")
                totals.add(lv, ms, len(by))
                cbs.on_train_batch_end(b, totals.logs())
            logs = totals.logs()  # deferred: the epoch's one read-back
            if not np.isfinite(logs["loss"]) or self._step_failed():
                what = f"the loss became {logs['loss']}" if not np.isfinite(logs["loss"]) else \
                    "a gradient or moving statistic became inf or NaN"
                raise FloatingPointError(
                    f"fit: {what} during epoch {epoch + 1}; the weights are those before the first step that "
                    "did (no later update was applied either); lower the learning rate or check the data for NaN/inf")
            if val is not None:
                r = self._evaluate_arrays(val[0], val[1], batch_size)
                for k, v in zip(["loss"] + self.metrics_names, r):
                    logs["val_" + k] = float(v)
            cbs.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        cbs.on_train_end()
        self.history = history
        return history

    def _evaluate_arrays(self, xs, y, batch_size):
        n = len(y)
        tot = None
        for s in range(0, n, batch_size):
            bx = [v[s:s + batch_size] for v in xs]
            by = y[s:s + batch_size]
            lv, ms = self._eval_batch(bx, by)
            vals = np.array([lv] + ms, dtype=np.float64) * len(by)
            tot = vals if tot is None else tot + vals
        return list(tot / n)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", return_dict=False):
        """Loss (and metrics) over ``x, y`` in inference mode."""
        self._require_compiled("evaluate")
        verbose = 0 if verbose == "auto" else self._verbose(verbose, "evaluate")
        xs, y = self._checked_data(x, y, "evaluate")
        r = [float(v) for v in self._evaluate_arrays(xs, y, self._batch_size(batch_size, "evaluate"))]
        if verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in zip(["loss"] + self.metrics_names, r)))
        if return_dict:
            return dict(zip(["loss"] + self.metrics_names, r))
        return r[0] if len(r) == 1 else r

    def predict(self, x, batch_size=None, verbose=0):
        """Outputs for ``x`` as numpy arrays, computed in batches in inference mode."""
        self._ensure_built_for(x)
        xs = self._check_x(x)
        bs = self._batch_size(batch_size, "predict")
        n = len(xs[0])
        chunks = [[] for _ in self.outputs]
        for s in range(0, n, bs):
            with self._weights().read():
                outs = self._run([v[s:s + bs] for v in xs], False)
                for c, o in zip(chunks, outs):
                    c.append(o.numpy())
        res = [np.concatenate(c) if c else np.zeros((0,) + tuple(t.shape[1:]), dtype=t.node.layer.dtype)
               for c, t in zip(chunks, self.outputs)]
        return res[0] if len(res) == 1 else res

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=max(len(self._check_x(x)[0]), 1))

