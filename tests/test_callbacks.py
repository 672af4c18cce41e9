"""convcore.callbacks against keras.callbacks (Keras 3.15): each callback's decisions
on the same sequence of logs (driven on stub models, Keras's on a stub holding a real
Keras optimizer), the files they write, the progress output, and the same callbacks
inside convcore's ``fit`` on the CPU and the GPU."""
from __future__ import annotations

import io
import math
import os
import re
import sys
import time
import warnings

import numpy as np
import pytest

import convcore
from convcore import Input, Sequential, _core, callbacks, layers, optimizers
from fake_terminal import Clock, FakeTTY

import keras  # noqa: E402  (KERAS_BACKEND=jax is set by conftest)

nan = math.nan
HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CI requires a GPU adapter (lavapipe) for the GPU half of the callback tests")
DEVICES = ["cpu"] + (["gpu"] if HAVE_GPU else [])
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# ----------------------------------------------------------------- stubs
class PlainOptimizer:
    def __init__(self, learning_rate):
        self.learning_rate = learning_rate
        self.iterations = 0
        self.built = True


class StubModel:
    """What the callbacks touch: stop_training, weights (stamped with the epoch that
    produced them), an optimizer, and save calls recorded (and written as files)."""

    def __init__(self, optimizer=None):
        self.stop_training = False
        self.weights = [np.zeros(2)]
        self.optimizer = optimizer
        self.saves = []
        self.built = True

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w) for w in weights]

    def _write(self, kind, filepath):
        self.saves.append((kind, os.path.basename(filepath)))
        with open(filepath, "w") as f:
            f.write(f"{kind} {self.weights[0][0]}")

    def save(self, filepath, overwrite=True):
        self._write("model", filepath)

    def save_weights(self, filepath, overwrite=True):
        self._write("weights", filepath)

    def load_weights(self, filepath):
        with open(filepath) as f:
            self.weights = [np.full(2, float(f.read().split()[1]))]


def _lr(opt):
    lr = opt.learning_rate
    return float(lr.numpy() if hasattr(lr, "numpy") else lr)  # a Keras variable or a float


def _epoch_logs(monitor, v, extra=None):
    logs = dict(extra or {})
    if v is not None:
        logs[monitor] = v
    return logs


def _keras_stub(optimizer=None):
    """A stub for Keras's callbacks: Keras 3 finds a metric's direction ('auto' mode)
    on the model's compiled metrics, as a model compiled with metrics=['accuracy',
    'mse'] has them."""
    from keras.src.trainers.compile_utils import MetricsList
    model = StubModel(optimizer)
    model.metrics = [MetricsList([keras.metrics.Accuracy(name="accuracy"), keras.metrics.MeanSquaredError(name="mse")])]
    return model


def _stub_for(cls, optimizer=None):
    return _keras_stub(optimizer) if cls.__module__.startswith("keras") else StubModel(optimizer)


def _drive_epochs(cb, model, monitor, values, steps=1, params=None, after_epoch=None):
    """A fit of len(values) epochs on a stub: the weights after epoch e are all e;
    returns the epochs run and the logs each epoch's callbacks left."""
    cb.set_model(model)
    cb.set_params(params or {"epochs": len(values), "steps": steps, "verbose": 0})
    cb.on_train_begin({})
    run, seen = [], []
    for epoch, v in enumerate(values):
        cb.on_epoch_begin(epoch, {})
        for b in range(steps):
            cb.on_train_batch_begin(b, {})
            model.weights = [np.full(2, epoch + (b + 1) / steps - 1.0)]
            cb.on_train_batch_end(b, {"loss": float(b)})
        model.weights = [np.full(2, float(epoch))]
        logs = _epoch_logs(monitor, v, {"tick": float(epoch)})  # never empty, as fit's
        cb.on_epoch_end(epoch, logs)
        if after_epoch is not None:
            after_epoch(logs)
        run.append(epoch)
        seen.append(logs)
        if model.stop_training:
            break
    cb.on_train_end({})
    return run, seen


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


# ----------------------------------------------------------------- EarlyStopping
ES_CASES = {
    "plateau": dict(values=[1.0, 0.9, 0.95, 0.96, 0.97, 0.8], patience=2),
    "patience 0": dict(values=[1.0, 1.1, 0.9], patience=0),
    "patience 0, improving": dict(values=[1.0, 0.9, 0.8, 0.7], patience=0),
    "min_delta": dict(values=[1.0, 0.97, 0.96, 0.9, 0.89, 0.88], patience=1, min_delta=0.05),
    "negative min_delta is its absolute value": dict(values=[1.0, 0.97, 0.9, 0.89], patience=1, min_delta=-0.05),
    "baseline never beaten": dict(values=[1.0, 0.9, 0.8, 0.7, 0.6], patience=2, baseline=0.5),
    "baseline beaten": dict(values=[0.6, 0.4, 0.45, 0.46, 0.47], patience=1, baseline=0.5),
    "baseline, patience larger than the run": dict(values=[0.9, 0.8, 0.85], patience=3, baseline=0.5),
    "start_from_epoch": dict(values=[1.0, 2.0, 3.0, 2.5, 2.6, 2.7], patience=1, start_from_epoch=2),
    "accuracy is maximised": dict(values=[0.1, 0.5, 0.4, 0.45, 0.3], patience=1, monitor="val_accuracy"),
    "mode max": dict(values=[1.0, 2.0, 2.05, 2.1, 2.5], patience=2, min_delta=0.1, mode="max",
                     monitor="score"),
    "mode min on a metric": dict(values=[3.0, 2.0, 2.0, 2.5], patience=1, mode="min", monitor="score"),
    "loss auto": dict(values=[3.0, 2.0, 2.0, 2.5, 1.0], patience=2, monitor="loss"),
    "mse auto": dict(values=[3.0, 2.0, 2.0, 2.5], patience=1, monitor="val_mse"),
    "NaN never improves": dict(values=[1.0, nan, 0.5, nan, nan], patience=1),
    "missing values are skipped": dict(values=[None, 1.0, None, 1.2, 1.3], patience=1),
    "runs to the end": dict(values=[1.0, 0.5, 0.7, 0.8], patience=5),
}


@pytest.mark.parametrize("restore", [False, True])
@pytest.mark.parametrize("name", list(ES_CASES))
def test_early_stopping_decisions_equal_keras(name, restore):
    case = dict(ES_CASES[name])
    values = case.pop("values")
    monitor = case.get("monitor", "val_loss")
    results = []
    for cls in (keras.callbacks.EarlyStopping, callbacks.EarlyStopping):
        cb = cls(restore_best_weights=restore, **case)
        model = _stub_for(cls)
        run, _ = _quiet(_drive_epochs, cb, model, monitor, values)
        results.append((run, cb.stopped_epoch, cb.wait, cb.best if cb.best is None or not math.isnan(cb.best)
                        else "nan", cb.best_epoch, model.weights[0][0], model.stop_training))
    assert results[0] == results[1]


def test_early_stopping_warns_on_a_missing_monitor_and_refuses_an_unknown_direction():
    cb = callbacks.EarlyStopping(monitor="val_loss", patience=0)
    with pytest.warns(UserWarning, match="val_loss.*not available. Available metrics are: tick,loss"):
        _drive_epochs(cb, StubModel(), "loss", [1.0, 2.0])
    for cls in (keras.callbacks.EarlyStopping, callbacks.EarlyStopping):
        with pytest.raises(ValueError, match="monitor=my_score.*mode='max'"):
            _drive_epochs(cls(monitor="my_score"), StubModel(), "my_score", [1.0])


def test_early_stopping_verbose_messages_equal_keras(capsys):
    outs = []
    for cls in (keras.callbacks.EarlyStopping, callbacks.EarlyStopping):
        _drive_epochs(cls(patience=1, verbose=1, restore_best_weights=True), StubModel(), "val_loss",
                      [1.0, 0.5, 0.7, 0.8])
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] == "Epoch 3: early stopping\nRestoring model weights from the end of the best epoch: 2.\n"


# ----------------------------------------------------------------- ReduceLROnPlateau
RLR_CASES = {
    "plateau": dict(values=[1.0] * 6, patience=2, factor=0.5),
    "cooldown": dict(values=[1.0] * 9, patience=1, factor=0.5, cooldown=2),
    "min_lr floor": dict(values=[1.0] * 8, patience=0, factor=0.5, min_lr=0.02),
    "min_lr in float32": dict(values=[1.0] * 6, patience=0, factor=0.1, min_lr=0.003, lr=0.3),
    "min_delta": dict(values=[1.0, 0.95, 0.9, 0.85, 0.7, 0.69, 0.68], patience=1, min_delta=0.1),
    "accuracy is maximised": dict(values=[0.1, 0.2, 0.2, 0.15, 0.3, 0.3], patience=1, monitor="val_accuracy"),
    "mode max": dict(values=[1.0, 0.5, 0.5, 2.0, 2.0], patience=1, mode="max", monitor="score"),
    "NaN": dict(values=[1.0, nan, nan, 0.5, nan], patience=1),
    "missing values": dict(values=[None, 1.0, None, 1.0, 1.0], patience=1),
    "patience 0, factor 0.1": dict(values=[1.0, 2.0, 3.0], patience=0, factor=0.1),
    "improving": dict(values=[1.0, 0.5, 0.2, 0.1], patience=1),
}


@pytest.mark.parametrize("name", list(RLR_CASES))
def test_reduce_lr_on_plateau_learning_rates_equal_keras(name):
    case = dict(RLR_CASES[name])
    values, lr = case.pop("values"), case.pop("lr", 0.1)
    monitor = case.get("monitor", "val_loss")
    per_epoch = []
    for cls, opt in ((keras.callbacks.ReduceLROnPlateau, keras.optimizers.SGD(learning_rate=lr)),
                     (callbacks.ReduceLROnPlateau, PlainOptimizer(lr))):
        cb = cls(**case)
        model = _stub_for(cls, opt)
        lrs = []
        _quiet(_drive_epochs, cb, model, monitor, values, after_epoch=lambda logs: lrs.append(
            (logs.get("learning_rate"), _lr(opt))))
        per_epoch.append((lrs, cb.wait, cb.cooldown_counter))
    (k_lrs, *k_state), (c_lrs, *c_state) = per_epoch
    assert k_state == c_state
    # Keras keeps the rate in a float32 variable; convcore's optimizer in a float64.
    np.testing.assert_allclose(np.array(c_lrs), np.array(k_lrs), rtol=1e-6)
    assert len({r for _, r in c_lrs}) > 1 or name in ("improving",)  # the case does reduce


def test_reduce_lr_on_plateau_verbose_message_and_learning_rate_log(capsys):
    opt = PlainOptimizer(0.1)
    cb = callbacks.ReduceLROnPlateau(patience=0, factor=0.5, verbose=1)
    _, seen = _drive_epochs(cb, StubModel(opt), "val_loss", [1.0, 1.0])
    assert capsys.readouterr().out == "\nEpoch 2: ReduceLROnPlateau reducing learning rate to 0.05.\n"
    assert [s["learning_rate"] for s in seen] == [0.1, 0.1]  # the rate each epoch ran with
    assert opt.learning_rate == 0.05


# ----------------------------------------------------------------- LearningRateScheduler
SCHEDULES = {
    "epoch and lr": lambda epoch, lr: lr * 0.5 if epoch > 0 else lr,
    "epoch only (tf.keras 1)": lambda epoch: 0.1 / (epoch + 1),
    "numpy float": lambda epoch, lr: np.float32(0.01 * (epoch + 1)),
    "exponential decay": lambda epoch, lr: float(lr * np.exp(-0.1)) if epoch >= 2 else lr,
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_learning_rate_scheduler_equals_keras(name):
    sequences = []
    for cls, opt in ((keras.callbacks.LearningRateScheduler, keras.optimizers.SGD(learning_rate=0.2)),
                     (callbacks.LearningRateScheduler, PlainOptimizer(0.2))):
        cb = cls(SCHEDULES[name])
        model = StubModel(opt)
        lrs = []
        cb.set_model(model)
        for epoch in range(5):
            cb.on_epoch_begin(epoch, {})
            logs = {"loss": 1.0}
            cb.on_epoch_end(epoch, logs)
            lrs.append((_lr(opt), logs["learning_rate"]))
        sequences.append(lrs)
    # Keras keeps the rate in a float32 variable; convcore's optimizer in a float64.
    np.testing.assert_allclose(np.array(sequences[1]), np.array(sequences[0]), rtol=1e-6)


def test_learning_rate_scheduler_refuses_what_keras_refuses():
    for cls, opt in ((keras.callbacks.LearningRateScheduler, keras.optimizers.SGD(learning_rate=0.2)),
                     (callbacks.LearningRateScheduler, PlainOptimizer(0.2))):
        cb = cls(lambda epoch, lr: 1)  # an int is not a float
        cb.set_model(StubModel(opt))
        with pytest.raises(ValueError, match="should be a float. Got: 1"):
            cb.on_epoch_begin(0, {})
    cb = callbacks.LearningRateScheduler(lambda epoch: float("nan"))
    cb.set_model(StubModel(PlainOptimizer(0.1)))
    with pytest.raises(ValueError, match="LearningRateScheduler: the schedule returned nan at epoch 0"):
        cb.on_epoch_begin(0, {})


def test_learning_rate_scheduler_in_fit_sets_the_optimizer_each_epoch():
    x, y = _data()
    model = _model()
    seen = []
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: 0.05 / (epoch + 1))
    spy = callbacks.LambdaCallback(on_train_batch_begin=lambda b, logs=None: seen.append(model.optimizer.learning_rate))
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[sched, spy])
    assert seen == [0.05] * 2 + [0.025] * 2 + [0.05 / 3] * 2


# ----------------------------------------------------------------- ModelCheckpoint
MC_CASES = {
    "every epoch, formatted": dict(filepath="m-{epoch:02d}-{val_loss:.2f}.keras", values=[0.5, 0.25, 0.125]),
    "weights only": dict(filepath="w{epoch}.weights.h5", values=[1.0, 2.0], save_weights_only=True),
    "best only": dict(filepath="best-{epoch:03d}.keras", values=[1.0, 0.5, 0.7, 0.4, 0.4], save_best_only=True),
    "best only, one file": dict(filepath="best.keras", values=[1.0, 0.5, 0.7, 0.4], save_best_only=True),
    "best only, max": dict(filepath="acc{val_accuracy:.1f}.keras", values=[0.2, 0.1, 0.3, 0.3],
                           save_best_only=True, monitor="val_accuracy"),
    "initial_value_threshold": dict(filepath="t{epoch}.keras", values=[1.0, 0.5, 0.3, 0.35, 0.2],
                                    save_best_only=True, initial_value_threshold=0.4),
    "best only, missing monitor saves": dict(filepath="x{epoch}.keras", values=[None, 1.0, None],
                                             save_best_only=True),
    "every 2 batches": dict(filepath="b-{epoch}-{batch}.keras", values=[1.0, 1.0, 1.0], save_freq=2, steps=3),
    "every 4 batches": dict(filepath="c-{epoch}-{batch}.keras", values=[1.0, 1.0, 1.0], save_freq=4, steps=3),
    "sub folder": dict(filepath="sub/dir/e{epoch}.keras", values=[1.0]),
}


@pytest.mark.parametrize("name", list(MC_CASES))
def test_model_checkpoint_writes_the_files_keras_writes(name, tmp_path):
    case = dict(MC_CASES[name])
    values, steps, pattern = case.pop("values"), case.pop("steps", 1), case.pop("filepath")
    monitor = case.get("monitor", "val_loss")
    results = []
    for tag, cls in (("keras", keras.callbacks.ModelCheckpoint), ("ours", callbacks.ModelCheckpoint)):
        root = tmp_path / tag
        root.mkdir()
        cb = cls(str(root / pattern), **case)
        model = _stub_for(cls)
        _quiet(_drive_epochs, cb, model, monitor, values, steps=steps)
        files = {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}
        results.append((model.saves, files, cb.best))
    assert results[0] == results[1]
    assert results[1][1]  # something was written


def test_model_checkpoint_verbose_messages_equal_keras(tmp_path, capsys):
    outs = []
    for tag, cls in (("k", keras.callbacks.ModelCheckpoint), ("c", callbacks.ModelCheckpoint)):
        cb = cls(str(tmp_path / "m.keras"), save_best_only=True, verbose=1)
        _drive_epochs(cb, StubModel(), "val_loss", [1.0, 2.0, 0.5])
        outs.append(capsys.readouterr().out.replace(str(tmp_path), "<tmp>"))
    assert outs[0] == outs[1] and "improved from 1.00000 to 0.50000" in outs[1]


def test_model_checkpoint_unknown_placeholder_names_the_pattern(tmp_path):
    cb = callbacks.ModelCheckpoint(str(tmp_path / "{epoch}-{val_acc}.keras"))
    with pytest.raises(KeyError, match="val_acc.*the logs hold: epoch, tick, val_loss"):
        _drive_epochs(cb, StubModel(), "val_loss", [1.0])


def test_model_checkpoint_in_fit_writes_loadable_models_named_from_the_logs(tmp_path):
    x, y = _data()
    model = _model()
    ck = callbacks.ModelCheckpoint(str(tmp_path / "ep{epoch:02d}-{loss:.3f}.keras"), monitor="loss",
                                   save_best_only=True)
    hist = model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[ck])
    want = [f"ep{e + 1:02d}-{l:.3f}.keras" for e, l in enumerate(hist.history["loss"])
            if hist.history["loss"][e] == min(hist.history["loss"][:e + 1])]
    assert sorted(os.listdir(tmp_path)) == want
    last = convcore.load_model(tmp_path / want[-1])
    np.testing.assert_array_equal(last.predict(x, verbose=0), model.predict(x, verbose=0))


# ----------------------------------------------------------------- CSVLogger
CSV_CASES = {
    "train only (val_ columns reserved)": [{"loss": 0.5, "accuracy": 0.25}, {"loss": 0.25, "accuracy": 0.5}],
    "with validation": [{"loss": 0.5, "val_loss": 0.75}, {"loss": 0.25, "val_loss": 0.5}],
    "missing values are NA, arrays are lists": [{"loss": 0.5, "lr": 0.1}, {"loss": np.float32(0.25),
                                                                          "vec": np.array([1.0, 2.5])}],
    "strings": [{"loss": 1.0, "note": "a,b"}],
}


@pytest.mark.parametrize("append", [False, True])
@pytest.mark.parametrize("sep", [",", ";"])
@pytest.mark.parametrize("name", list(CSV_CASES))
def test_csv_logger_file_equals_keras(name, sep, append, tmp_path):
    contents = []
    for tag, cls in (("keras", keras.callbacks.CSVLogger), ("ours", callbacks.CSVLogger)):
        path = tmp_path / f"{tag}.csv"
        for run in range(2 if append else 1):  # append: a second fit continues the file
            cb = cls(str(path), separator=sep, append=append)
            cb.on_train_begin({})
            for epoch, logs in enumerate(CSV_CASES[name]):
                cb.on_epoch_end(epoch, dict(logs))
            cb.on_train_end({})
        contents.append(path.read_bytes())
    assert contents[0] == contents[1]
    assert contents[1].count(b"epoch") == 1


def test_csv_logger_in_fit_logs_history(tmp_path):
    x, y = _data()
    model = _model()
    path = tmp_path / "log.csv"
    hist = model.fit(x, y, epochs=2, batch_size=16, verbose=0, validation_split=0.25,
                     callbacks=[callbacks.CSVLogger(str(path))])
    rows = path.read_text().splitlines()
    assert rows[0] == "epoch,accuracy,loss,val_accuracy,val_loss"
    for e, row in enumerate(rows[1:]):
        vals = [float(v) for v in row.split(",")]
        assert vals == [e] + [hist.history[k][e] for k in ("accuracy", "loss", "val_accuracy", "val_loss")]


# ----------------------------------------------------------------- TerminateOnNaN
@pytest.mark.parametrize("losses", [[1.0, 0.5], [1.0, nan, 0.5], [math.inf], [-math.inf, 1.0]])
def test_terminate_on_nan_equals_keras(losses, capsys):
    results = []
    for cls in (keras.callbacks.TerminateOnNaN, callbacks.TerminateOnNaN):
        model = StubModel()
        cb = cls()
        cb.set_model(model)
        for b, loss in enumerate(losses):
            cb.on_train_batch_end(b, {"loss": loss})
        results.append((model.stop_training, capsys.readouterr().out))
    assert results[0] == results[1]
    for cls in (keras.callbacks.TerminateOnNaN, callbacks.TerminateOnNaN):
        cb = cls(raise_error=True)
        cb.set_model(StubModel())
        if all(math.isfinite(v) for v in losses):
            cb.on_batch_end(0, {"loss": losses[0]})
        else:
            with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch"):
                for b, loss in enumerate(losses):
                    cb.on_batch_end(b, {"loss": loss})


# ----------------------------------------------------------------- LambdaCallback and CallbackList
HOOKS = [("on_train_begin", ()), ("on_epoch_begin", (0,)), ("on_train_batch_begin", (0,)),
         ("on_train_batch_end", (0,)), ("on_epoch_end", (0,)), ("on_test_begin", ()),
         ("on_test_batch_begin", (0,)), ("on_test_batch_end", (0,)), ("on_test_end", ()),
         ("on_predict_begin", ()), ("on_predict_batch_begin", (0,)), ("on_predict_batch_end", (0,)),
         ("on_predict_end", ()), ("on_train_end", ())]


def _record_all(lambda_cls, list_cls):
    calls = []
    fns = {h: (lambda h: lambda *a, **kw: calls.append((h, a, kw)))(h) for h, _ in HOOKS}
    cbl = list_cls([lambda_cls(**fns)], model=StubModel(), epochs=1, steps=1, verbose=0)
    for h, args in HOOKS:
        getattr(cbl, h)(*args, logs={"loss": np.float32(0.5), "accuracy": 1, "b": {"nested": 2.0}})
    return calls


def test_lambda_callback_every_hook_called_as_keras_calls_it():
    ours = _record_all(callbacks.LambdaCallback, callbacks.CallbackList)
    ref = _record_all(keras.callbacks.LambdaCallback, keras.callbacks.CallbackList)
    assert ours == ref
    assert [c[0] for c in ours] == [h for h, _ in HOOKS]
    assert ours[0][1] == ({"accuracy": 1.0, "loss": 0.5, "nested": 2.0},)  # sorted, floats, flattened


def test_tf_keras_2_batch_hooks_are_aliases_and_ask_for_batch_logs():
    seen = []

    class Old(callbacks.Callback):
        def on_batch_begin(self, batch, logs=None):
            seen.append(("begin", batch))

        def on_batch_end(self, batch, logs=None):
            seen.append(("end", batch, logs["loss"]))

    cbl = callbacks.CallbackList([Old()], model=StubModel(), epochs=1, steps=2)
    assert cbl.wants_batch_logs()
    cbl.on_train_batch_begin(0)
    cbl.on_train_batch_end(0, {"loss": 0.5})
    assert seen == [("begin", 0), ("end", 0, 0.5)]
    quiet = [callbacks.EarlyStopping(), callbacks.History(), callbacks.CSVLogger("unused.csv"),
             callbacks.ReduceLROnPlateau(), callbacks.ModelCheckpoint("m.keras"),
             callbacks.BackupAndRestore("unused"), callbacks.LambdaCallback(on_epoch_end=print)]
    assert not callbacks.CallbackList(quiet, model=StubModel()).wants_batch_logs()
    for busy in (callbacks.TerminateOnNaN(), callbacks.ModelCheckpoint("m.keras", save_freq=3),
                 callbacks.BackupAndRestore("unused", save_freq=2),
                 callbacks.LambdaCallback(on_train_batch_end=print)):
        assert callbacks.CallbackList(quiet + [busy], model=StubModel()).wants_batch_logs()


def test_callback_list_params_model_and_defaults():
    model = StubModel()
    es = callbacks.EarlyStopping()
    cbl = callbacks.CallbackList([[es]], model, add_history=True, add_progbar=True, epochs=3, steps=7, verbose=2)
    assert [type(c).__name__ for c in cbl] == ["EarlyStopping", "History", "ProgbarLogger"]
    assert all(c.model is model and c.params == {"epochs": 3, "steps": 7, "verbose": 2} for c in cbl)
    assert model.history is cbl.callbacks[1]
    old = callbacks.CallbackList([es], model=model, epochs=2, steps=5)  # today's trainer's call
    assert es.params == {"epochs": 2, "steps": 5}
    assert len(old) == 1
    with pytest.raises(TypeError, match="CallbackList: callbacks must be Callback objects, got 'x'"):
        callbacks.CallbackList([es, "x"])


def test_one_copy_of_the_logs_reaches_every_callback_in_order():
    """A value a callback adds (ReduceLROnPlateau's learning_rate) reaches those after
    it, and History records it, as in Keras where History comes after the user's."""
    opt = PlainOptimizer(0.1)
    hist = callbacks.History()
    cbl = callbacks.CallbackList([callbacks.ReduceLROnPlateau(monitor="loss"), hist], model=StubModel(opt),
                                 epochs=2, steps=1)
    cbl.on_train_begin()
    for e in range(2):
        cbl.on_epoch_end(e, {"loss": 1.0})
    assert hist.history == {"learning_rate": [0.1, 0.1], "loss": [1.0, 1.0]}
    assert hist.epoch == [0, 1]


# ----------------------------------------------------------------- BackupAndRestore
@pytest.mark.parametrize("save_freq, steps", [("epoch", 1), (2, 3), (1, 2)])
def test_backup_and_restore_saves_what_keras_saves(save_freq, steps, tmp_path):
    results = []
    for tag, cls in (("keras", keras.callbacks.BackupAndRestore), ("ours", callbacks.BackupAndRestore)):
        d = tmp_path / tag
        cb = cls(str(d), save_freq=save_freq, delete_checkpoint=False)
        model = StubModel(PlainOptimizer(0.1))
        _drive_epochs(cb, model, "loss", [1.0, 1.0], steps=steps)
        meta = [p for p in d.iterdir() if p.name.endswith(".json")]
        import json
        results.append((len(model.saves), {k: v for k, v in json.loads(meta[0].read_text()).items()
                                           if k in ("epoch", "batch")}))
        # a new fit restores the weights and the epoch to start from
        fresh = StubModel(PlainOptimizer(0.1))
        cb2 = cls(str(d), save_freq=save_freq)
        cb2.set_model(fresh)
        cb2.on_train_begin({})
        results[-1] += (fresh._initial_epoch, fresh.weights[0][0])
        cb2.on_train_end({})
        assert not d.exists()  # delete_checkpoint=True removed the folder
    assert results[0] == results[1]


def test_backup_and_restore_in_fit_restores_weights_epoch_and_learning_rate(tmp_path):
    x, y = _data()
    model = _model()
    model.optimizer.learning_rate = 0.05
    backup = callbacks.BackupAndRestore(str(tmp_path / "bk"))
    kept = {}

    class Interrupt(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            kept[epoch] = self.model.get_weights()
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=4, batch_size=16, verbose=0, callbacks=[backup, Interrupt()])
    assert sorted(os.listdir(tmp_path / "bk")) == ["latest.weights.npz", "training_metadata.json"]
    again = _model()
    restored = {}
    spy = callbacks.LambdaCallback(on_train_begin=lambda logs: restored.update(
        w=again.get_weights(), lr=again.optimizer.learning_rate, epoch=again._initial_epoch))
    again.fit(x, y, epochs=4, batch_size=16, verbose=0, callbacks=[callbacks.BackupAndRestore(str(tmp_path / "bk")),
                                                                   spy])
    # the backup of epoch index 1 (the backup ran before the interrupting callback)
    for a, b in zip(restored["w"], kept[1]):
        np.testing.assert_array_equal(a, b)
    assert restored["lr"] == 0.05 and restored["epoch"] == 2
    assert not (tmp_path / "bk").exists()


# ----------------------------------------------------------------- ProgbarLogger
def _logs(step):
    return {"loss": 1.0 / (step + 1), "accuracy": 0.125 * step}


def _fit_events(epochs, steps, validation=False, known=True):
    ev = [("on_train_begin", ())]
    for e in range(epochs):
        ev.append(("on_epoch_begin", (e,)))
        for b in range(steps):
            ev += [("on_train_batch_begin", (b,)), ("on_train_batch_end", (b, _logs(b)))]
        logs = _logs(steps)
        if validation:
            ev += [("on_test_begin", ()), ("on_test_batch_end", (0, {"loss": 9.0})), ("on_test_end", ({"loss": 9.0},))]
            logs = {**logs, "val_loss": 9.0}
        ev.append(("on_epoch_end", (e, logs)))
    return ev + [("on_train_end", ())]


PROGBAR_RUNS = {
    "fit, 2 epochs": dict(params=dict(epochs=2, steps=3, verbose=1), events=_fit_events(2, 3)),
    "fit, 1 epoch (no Epoch header)": dict(params=dict(epochs=1, steps=4, verbose=1), events=_fit_events(1, 4)),
    "fit verbose 2": dict(params=dict(epochs=2, steps=3, verbose=2), events=_fit_events(2, 3)),
    "fit with validation (silent)": dict(params=dict(epochs=2, steps=2, verbose=1),
                                         events=_fit_events(2, 2, validation=True)),
    "fit, unknown steps": dict(params=dict(epochs=2, steps=None, verbose=1), events=_fit_events(2, 3)),
    "evaluate": dict(params=dict(epochs=1, steps=3, verbose=1),
                     events=[("on_test_begin", ())] + [("on_test_batch_end", (b, _logs(b))) for b in range(3)]
                     + [("on_test_end", (_logs(3),))]),
    "predict": dict(params=dict(epochs=1, steps=2, verbose=1),
                    events=[("on_predict_begin", ())] + [("on_predict_batch_end", (b, {"outputs": 0})) for b in
                                                         range(2)] + [("on_predict_end", ())]),
    "verbose auto": dict(params=dict(epochs=2, steps=2, verbose="auto"), events=_fit_events(2, 2)),
}


def _progbar_output(cls, run, stdout, monkeypatch, clock):
    monkeypatch.setattr(sys, "stdout", stdout)
    clock.t = 1000.0
    cb = cls()
    cb.set_model(StubModel())
    cb.set_params(dict(run["params"]))
    for hook, args in run["events"]:
        clock.t += 0.25
        getattr(cb, hook)(*args)
    monkeypatch.setattr(sys, "stdout", sys.__stdout__)
    return stdout.getvalue()


def _as_log(dynamic_out):
    return "".join(ANSI.sub("", line.split("\r")[-1].replace("\b", "")).rstrip(" ") + "\n"
                   for line in dynamic_out.split("\n")[:-1])


@pytest.mark.parametrize("name", list(PROGBAR_RUNS))
def test_progbar_logger_output_equals_keras(name, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(time, "time", clock)
    run = PROGBAR_RUNS[name]
    ref = _progbar_output(keras.callbacks.ProgbarLogger, run, FakeTTY(), monkeypatch, clock)
    assert _progbar_output(callbacks.ProgbarLogger, run, FakeTTY(), monkeypatch, clock) == ref
    log = _progbar_output(callbacks.ProgbarLogger, run, io.StringIO(), monkeypatch, clock)
    assert log == _as_log(ref) and "\r" not in log and "\x1b" not in log


@pytest.mark.parametrize("device", DEVICES)
def test_fit_progress_in_a_log_file_is_one_line_per_epoch(device, capsys):
    x, y = _data()
    model = _model(device)
    hist = model.fit(x, y, epochs=2, batch_size=16, verbose=1, validation_split=0.25)
    out = capsys.readouterr().out
    assert "\r" not in out and "\x1b" not in out
    lines = out.splitlines()
    assert lines[0::2] == ["Epoch 1/2", "Epoch 2/2"]
    for e, line in enumerate(lines[1::2]):
        assert re.fullmatch(r"2/2 ━{20} \d+s \d+[mu]?s/step - accuracy: [\d.]+ - loss: [\d.]+ - "
                            r"val_accuracy: [\d.]+ - val_loss: [\d.]+", line), line
        assert f"loss: {hist.history['loss'][e]:.4f}" in line
        assert f"val_loss: {hist.history['val_loss'][e]:.4f}" in line


# ----------------------------------------------------------------- in fit, on both devices
def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 6)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def _model(device=None):
    convcore.set_seed(0)
    m = Sequential([Input((6,)), layers.Dense(2, activation="softmax")])
    m.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"], device=device)
    return m


@pytest.mark.parametrize("device", DEVICES)
def test_early_stopping_in_fit_matches_keras_and_restores_on_each_device(device):
    """The monitored value is injected (so the decision is known from Keras's callback
    on the same values); the weights are the model's own."""
    values = [1.0, 0.6, 0.7, 0.65, 0.9, 0.5, 0.4]
    ref = keras.callbacks.EarlyStopping(monitor="score", mode="min", patience=2, restore_best_weights=True)
    run, _ = _drive_epochs(ref, StubModel(), "score", values)
    x, y = _data()
    model = _model(device)
    weights = []

    class Inject(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["score"] = values[epoch]
            weights.append(self.model.get_weights())

    es = callbacks.EarlyStopping(monitor="score", mode="min", patience=2, restore_best_weights=True)
    hist = model.fit(x, y, epochs=len(values), batch_size=16, verbose=0, callbacks=[Inject(), es])
    assert hist.epoch == run and es.stopped_epoch == ref.stopped_epoch == 3
    for a, b in zip(model.get_weights(), weights[ref.best_epoch]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("device", DEVICES)
def test_model_checkpoint_every_n_batches_in_fit_writes_keras_names(device, tmp_path):
    """The batch hooks run on the GPU too (its deferred epochs skip them otherwise)."""
    pattern = "b{epoch}-{batch}.keras"
    (tmp_path / "keras").mkdir()
    _drive_epochs(keras.callbacks.ModelCheckpoint(str(tmp_path / "keras" / pattern), save_freq=3),
                  StubModel(), "loss", [1.0, 1.0, 1.0], steps=2)
    x, y = _data()
    model = _model(device)
    model.fit(x, y, epochs=3, batch_size=16, verbose=0,
              callbacks=[callbacks.ModelCheckpoint(str(tmp_path / "ours" / pattern), save_freq=3)])
    assert sorted(os.listdir(tmp_path / "ours")) == sorted(os.listdir(tmp_path / "keras")) == \
        ["b2-1.keras", "b3-2.keras"]


@pytest.mark.parametrize("device", DEVICES)
def test_restore_best_weights_at_the_end_of_a_full_run(device):
    x, y = _data()
    model = _model(device)
    weights = []
    values = [1.0, 0.2, 0.5]

    class Inject(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["score"] = values[epoch]
            weights.append(self.model.get_weights())

    es = callbacks.EarlyStopping(monitor="score", mode="min", patience=10, restore_best_weights=True)
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[Inject(), es])
    assert es.stopped_epoch == 0 and es.best_epoch == 1
    for a, b in zip(model.get_weights(), weights[1]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter (install mesa-vulkan-drivers for lavapipe)")
def test_callbacks_see_the_same_logs_on_gpu_as_on_cpu(tmp_path):
    """ReduceLROnPlateau, CSVLogger and per-batch logs through fit: the GPU's run
    equals the CPU's (float32 on both; summation order may differ: rtol 1e-5)."""
    x, y = _data()
    runs = {}
    for device in ("cpu", "gpu"):
        model = _model(device)
        batches = []
        cbs = [callbacks.ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5, min_delta=10.0),
               callbacks.CSVLogger(str(tmp_path / f"{device}.csv")),
               callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(logs["loss"]))]
        hist = model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=cbs)
        runs[device] = (hist.history, batches, model.optimizer.learning_rate,
                        (tmp_path / f"{device}.csv").read_text().splitlines()[0])
    (hc, bc, lc, headc), (hg, bg, lg, headg) = runs["cpu"], runs["gpu"]
    # the rate is a float32 variable, as Keras's
    assert float(lc) == float(lg) == pytest.approx(0.1 * 0.5 ** 2, rel=1e-7) and headc == headg
    for k in hc:
        np.testing.assert_allclose(hg[k], hc[k], rtol=1e-5)
    np.testing.assert_allclose(bg, bc, rtol=1e-5)


# ----------------------------------------------------------------- configs and bad input
CONFIG_CASES = [
    (callbacks.EarlyStopping, dict(monitor="loss", min_delta=0.1, patience=1, baseline=2.0, start_from_epoch=1,
                                   restore_best_weights=True)),
    (callbacks.ReduceLROnPlateau, dict(monitor="loss", factor=0.5, patience=1, cooldown=1, min_lr=0.01)),
    (callbacks.ModelCheckpoint, dict(filepath="{epoch}.keras", monitor="loss", save_best_only=True,
                                     initial_value_threshold=0.9)),
    (callbacks.CSVLogger, dict(filename="log.csv", separator=";")),
    (callbacks.TerminateOnNaN, dict(raise_error=False)),
    (callbacks.LearningRateScheduler, dict(schedule=lambda e, lr: lr * 0.9)),
    (callbacks.LambdaCallback, dict(on_epoch_end=lambda e, logs: logs.update(seen=1.0))),
    (callbacks.BackupAndRestore, dict(backup_dir="bk", delete_checkpoint=False)),
    (callbacks.ProgbarLogger, dict(verbose=0)),
    (callbacks.History, {}),
]


@pytest.mark.parametrize("cls, kw", CONFIG_CASES, ids=[c.__name__ for c, _ in CONFIG_CASES])
def test_config_round_trip_behaves_the_same(cls, kw, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = cls(**kw)
    b = cls.from_config(a.get_config())
    assert b.get_config() == a.get_config()
    outs = []
    for cb in (a, b):
        model = StubModel(PlainOptimizer(0.1))
        run, seen = _drive_epochs(cb, model, "loss", [1.0, 0.95, 0.97, 0.5, 0.99, 0.98], steps=2)
        outs.append((run, seen, model.saves, model.weights[0][0], model.optimizer.learning_rate))
    assert outs[0] == outs[1]


BAD = [
    (lambda: callbacks.EarlyStopping(mode="maximum"), ValueError,
     "EarlyStopping: mode must be one of 'auto', 'min', 'max', got \"maximum\""),
    (lambda: callbacks.EarlyStopping(patience=1.5), TypeError, "EarlyStopping: patience must be an integer"),
    (lambda: callbacks.EarlyStopping(patience=-1), ValueError, "EarlyStopping: patience must be >= 0"),
    (lambda: callbacks.EarlyStopping(monitor=3), TypeError, "EarlyStopping: monitor must be the name"),
    (lambda: callbacks.EarlyStopping(min_delta="0.1"), TypeError, "EarlyStopping: min_delta must be a real"),
    (lambda: callbacks.ReduceLROnPlateau(factor=1.0), ValueError, "does not support a factor >= 1.0"),
    (lambda: callbacks.ReduceLROnPlateau(factr=0.5), TypeError, "unexpected argument.*factr.*valid arguments"),
    (lambda: callbacks.ReduceLROnPlateau(min_lr=-1), ValueError, "ReduceLROnPlateau: min_lr must be >= 0"),
    (lambda: callbacks.ModelCheckpoint("m.keras", save_freq="batch"), ValueError,
     "ModelCheckpoint: save_freq must be 'epoch' or a positive number of batches, received save_freq='batch'"),
    (lambda: callbacks.ModelCheckpoint("m.keras", save_freq=0), ValueError, "save_freq"),
    (lambda: callbacks.ModelCheckpoint(None), TypeError, "ModelCheckpoint: filepath must be a path"),
    (lambda: callbacks.BackupAndRestore(""), ValueError, "BackupAndRestore: backup_dir must be a folder"),
    (lambda: callbacks.BackupAndRestore("d", save_freq=-2), ValueError, "BackupAndRestore: save_freq"),
    (lambda: callbacks.LearningRateScheduler(0.1), TypeError, "LearningRateScheduler: schedule must be a function"),
    (lambda: callbacks.LambdaCallback(on_epoch_ends=print), TypeError,
     "LambdaCallback: unexpected argument.*on_epoch_ends.*the hooks are on_epoch_begin"),
    (lambda: callbacks.LambdaCallback(on_epoch_end=3), TypeError, "LambdaCallback: on_epoch_end must be a function"),
    (lambda: callbacks.CSVLogger("a.csv", separator=", "), ValueError, "CSVLogger: separator must be a one-char"),
    (lambda: callbacks.TerminateOnNaN(raise_error="yes"), TypeError, "TerminateOnNaN: raise_error must be"),
    (lambda: callbacks.ProgbarLogger(count_mode="samples"), ValueError, "ProgbarLogger: count_mode must be 'steps'"),
    (lambda: callbacks.ProgbarLogger(verbose=3), ValueError, "ProgbarLogger: verbose must be 0, 1 or 2"),
]


@pytest.mark.parametrize("make, err, match", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_arguments_are_refused_at_construction(make, err, match):
    with pytest.raises(err, match=match):
        make()


@pytest.mark.parametrize("device", DEVICES)
def test_fit_progress_in_a_terminal_redraws_one_line(device, monkeypatch):
    x, y = _data()
    model = _model(device)
    tty = FakeTTY()
    monkeypatch.setattr(sys, "stdout", tty)
    hist = model.fit(x, y, epochs=2, batch_size=8, verbose=1)
    monkeypatch.setattr(sys, "stdout", sys.__stdout__)
    out = tty.getvalue()
    lines = out.split("\n")
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and lines[4] == ""
    for e, line in ((0, lines[1]), (1, lines[3])):
        last = ANSI.sub("", line.split("\r")[-1]).rstrip(" ")
        assert re.fullmatch(r"4/4 ━{20} \d+s \d+[mu]?s/step - accuracy: [\d.]+ - loss: [\d.]+", last), last
        assert f"loss: {hist.history['loss'][e]:.4f}" in last
        assert line.startswith("\r") or line.startswith("\b")  # redrawn in place, never a new line


def test_the_progress_bar_asks_for_batch_logs_only_where_it_redraws(monkeypatch):
    """In a log file the bar is written once an epoch, so the GPU need not read the
    logs back every batch."""
    for stdout, wants in ((FakeTTY(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, "stdout", stdout)
        monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
        for pl, w in ((callbacks.ProgbarLogger(), wants), (callbacks.ProgbarLogger(verbose=2), False)):
            assert callbacks.CallbackList([pl], model=StubModel(), epochs=1, steps=2, verbose=1).wants_batch_logs() \
                is w
    monkeypatch.setattr(sys, "stdout", sys.__stdout__)
