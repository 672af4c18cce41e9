"""The compiled loss and metrics (trainers/compile_utils.py) against real Keras 3: for
the same model outputs (a Keras model's own predictions, batch by batch), the tracker's
logs equal what Keras's ``model.evaluate`` reports (several outputs, loss weights, sample
weights, metrics and weighted metrics per output, Keras 3's log names); the GPU keeps
everything on the device until ``logs()``."""
from __future__ import annotations

import os

import numpy as np
import pytest

import convcore
from convcore import _core, device, losses, metrics, ops
from convcore.trainers.compile_utils import CompiledLoss, CompiledMetrics, sample_weights

import keras  # noqa: E402  (conftest sets KERAS_BACKEND=jax first)

HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CONVCORE_CI is set but no GPU adapter is available (lavapipe is required in CI)")
needs_gpu = pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter (install mesa-vulkan-drivers for lavapipe)")

N, BATCH = 20, 8  # batches of 8, 8 and 4: the last one weighs less in the running means
_R = np.random.default_rng(0)
X = _R.normal(size=(N, 5)).astype(np.float32)
Y_SPARSE = _R.integers(0, 3, N)
Y_ONEHOT = np.eye(3, dtype=np.float32)[Y_SPARSE]
Y_REG = _R.normal(size=(N, 2)).astype(np.float32)
Y_BIN = (_R.random((N, 1)) < 0.5).astype(np.float32)
SW = _R.uniform(0.2, 2.0, N).astype(np.float32)


def _two_outputs():
    keras.utils.set_random_seed(1)
    inp = keras.Input((5,))
    h = keras.layers.Dense(4, activation="tanh")(inp)
    a = keras.layers.Dense(3, activation="softmax", name="cls")(h)
    b = keras.layers.Dense(2, name="reg")(h)
    return keras.Model(inp, [a, b])


def _one_output(units, activation):
    keras.utils.set_random_seed(2)
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(units, activation=activation, name="out")])


# Each case: (model maker, output names, targets, compile arguments given the metrics module, sample weight)
CASES = {
    "two outputs, dicts, loss weights, weighted metrics, sample weights": (
        _two_outputs, ["cls", "reg"], [Y_SPARSE, Y_REG],
        lambda M: dict(loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                       loss_weights={"cls": 1.0, "reg": 0.5},
                       metrics={"cls": ["acc"], "reg": ["mae", M.RootMeanSquaredError()]},
                       weighted_metrics={"cls": ["accuracy"], "reg": ["mse"]}), SW),
    "two outputs, lists, one loss for both": (
        _two_outputs, ["cls", "reg"], [Y_ONEHOT, Y_REG],
        lambda M: dict(loss="mse", metrics=[["accuracy", "mse"], ["mae", "mae"]]), None),
    "two outputs, a None loss": (
        _two_outputs, ["cls", "reg"], [Y_ONEHOT, Y_REG],
        lambda M: dict(loss=["categorical_crossentropy", None], metrics=[["accuracy"], ["mae"]]), None),
    "binary output, stateful metrics": (
        lambda: _one_output(1, "sigmoid"), ["out"], [Y_BIN],
        lambda M: dict(loss="binary_crossentropy", metrics=["accuracy", M.Precision(name="precision"), M.AUC(name="auc"),
                                                                       M.Recall(name="recall")]), None),
    "binary output, weighted stateful metrics": (
        lambda: _one_output(1, "sigmoid"), ["out"], [Y_BIN],
        lambda M: dict(loss=M_BCE(M), metrics=["acc"], weighted_metrics=[M.AUC(name="auc"), "acc"]), SW),
    "softmax output, categorical accuracy from the shapes": (
        lambda: _one_output(3, "softmax"), ["out"], [Y_ONEHOT],
        lambda M: dict(loss="categorical_crossentropy", metrics=["acc", "top_k_categorical_accuracy",
                                                                  M.F1Score(average="macro")]), SW),
    "regression output, a Huber loss object": (
        lambda: _one_output(2, None), ["out"], [Y_REG],
        lambda M: dict(loss=M_HUBER(M), metrics=["mse", "mape", M.MeanSquaredError(name="m2")]), SW),
}


def M_BCE(M):
    return (keras.losses if M is keras.metrics else losses).BinaryCrossentropy(label_smoothing=0.1)


def M_HUBER(M):
    return (keras.losses if M is keras.metrics else losses).Huber(delta=0.5)


def _keras_logs(case):
    make, names, ys, args, sw = CASES[case]
    model = make()
    model.compile(optimizer="sgd", **args(keras.metrics))
    logs = model.evaluate(X, ys if len(ys) > 1 else ys[0], batch_size=BATCH, sample_weight=sw, return_dict=True,
                          verbose=0)
    return model, logs


def _ours(case, model, dev="cpu", deferred=False):
    make, names, ys, args, sw = CASES[case]
    a = args(metrics)
    cl = CompiledLoss(a["loss"], a.get("loss_weights"), output_names=names)
    cm = CompiledMetrics(a.get("metrics"), cl, output_names=names, weighted_metrics=a.get("weighted_metrics"))
    out_shapes = [tuple(o.shape[1:]) for o in model.outputs]
    ys = cl.check_labels_all(ys, out_shapes)
    tr = cm.tracker(deferred)
    for s in range(0, N, BATCH):
        pred = model(X[s:s + BATCH])
        pred = pred if isinstance(pred, (list, tuple)) else [pred]
        outs = [ops.convert_to_tensor(np.asarray(p), device=dev) for p in pred]
        yb = [y[s:s + BATCH] for y in ys]
        swb = None if sw is None else sw[s:s + BATCH]
        total, per = cl.total(yb, outs, sample_weight=swb)
        assert len(per) == len(outs)
        tr.update(total, per, yb, outs, sample_weight=swb)
    return cm, tr


@pytest.mark.parametrize("case", list(CASES))
def test_tracker_logs_equal_keras_evaluate(case):
    model, want = _keras_logs(case)
    cm, tr = _ours(case, model)
    got = tr.logs()
    assert list(got)[0] == "loss"
    assert set(got) == set(want), (sorted(got), sorted(want))
    assert set(cm.names) == set(want) - {"loss"}
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6, err_msg=k)
    # reset: the next epoch starts from nothing
    tr.reset()
    assert tr.logs()["loss"] == 0.0


@pytest.mark.parametrize("case", [list(CASES)[0], list(CASES)[4]])
def test_tracker_logs_equal_keras_fit_history(case):
    """fit with a learning rate of 0 (the weights stay those of the outputs compared):
    the epoch's history is the running means the tracker keeps."""
    make, names, ys, args, sw = CASES[case]
    model = make()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), **args(keras.metrics))
    hist = model.fit(X, ys if len(ys) > 1 else ys[0], batch_size=BATCH, sample_weight=sw, shuffle=False, epochs=1,
                     verbose=0).history
    _, tr = _ours(case, model)
    got = tr.logs()
    assert set(got) == set(hist)
    for k in hist:
        np.testing.assert_allclose(got[k], hist[k][0], rtol=1e-5, atol=1e-6, err_msg=k)


DEVICES = ["cpu"] + (["gpu"] if HAVE_GPU else [])


@pytest.mark.parametrize("dev", DEVICES)
def test_a_training_loop_on_the_compiled_loss_equals_keras_fit(dev):
    """Two epochs of SGD on a two-output model with Keras's weights: the tape's gradient
    of ``CompiledLoss.total`` (loss weights, sample weights, a Huber loss) moves the
    weights as Keras's fit does, and the tracker's logs are fit's history."""
    keras_model = _two_outputs()
    inp = convcore.Input((5,))
    h = convcore.layers.Dense(4, activation="tanh")(inp)
    model = convcore.Model(inp, [convcore.layers.Dense(3, activation="softmax", name="cls")(h),
                                 convcore.layers.Dense(2, name="reg")(h)])
    model.set_weights(keras_model.get_weights())
    if dev == "gpu":
        model.compile(optimizer="sgd", loss="mse", device="gpu")  # places the weights on the GPU

    def args(L, M):
        return dict(loss={"cls": "sparse_categorical_crossentropy", "reg": L.Huber(delta=0.5)},
                    loss_weights={"cls": 1.0, "reg": 0.3}, metrics={"cls": ["acc"], "reg": ["mae"]},
                    weighted_metrics={"cls": ["accuracy"]})
    keras_model.compile(optimizer=keras.optimizers.SGD(0.1), **args(keras.losses, keras.metrics))
    hist = keras_model.fit(X, [Y_SPARSE, Y_REG], batch_size=BATCH, sample_weight=SW, shuffle=False, epochs=2,
                           verbose=0).history
    a = args(losses, metrics)
    cl = CompiledLoss(a["loss"], a["loss_weights"], output_names=["cls", "reg"])
    cm = CompiledMetrics(a["metrics"], cl, output_names=["cls", "reg"], weighted_metrics=a["weighted_metrics"])
    ys = cl.check_labels_all([Y_SPARSE, Y_REG], [(3,), (2,)])
    opt = convcore.optimizers.SGD(learning_rate=0.1)
    for epoch in range(2):
        tr = cm.tracker()  # resets the metrics, as Keras does each epoch
        for s in range(0, N, BATCH):
            yb, swb = [y[s:s + BATCH] for y in ys], SW[s:s + BATCH]
            with convcore.GradientTape() as tape:
                outs = model._run([X[s:s + BATCH]], True)
                total, per = cl.total(yb, outs, sample_weight=swb)
            grads = tape.gradient(total, model.trainable_weights)
            opt.apply_gradients(zip(grads, model.trainable_weights))
            tr.update(total, per, yb, outs, sample_weight=swb)
        logs = tr.logs()
        assert set(logs) == set(hist)
        for k in hist:
            # float32 training on both sides; the GPU sums in another order
            np.testing.assert_allclose(logs[k], hist[k][epoch], rtol=1e-5 if dev == "cpu" else 1e-4, atol=1e-6,
                                       err_msg=f"{k} epoch {epoch}")


@needs_gpu
@pytest.mark.parametrize("case", list(CASES))
def test_gpu_tracker_equals_cpu_and_reads_nothing_back_until_logs(case, monkeypatch):
    model = CASES[case][0]()
    _, cpu = _ours(case, model)
    reads = []
    real = convcore.Tensor.numpy

    def counting(self):
        if self.device == "gpu":
            reads.append(tuple(self.shape))
        return real(self)

    monkeypatch.setattr(convcore.Tensor, "numpy", counting)
    fallbacks = device.host_fallbacks()
    _, gpu = _ours(case, model, dev="gpu", deferred=True)
    if CASES[case][4] is None and "Huber" not in case and "weighted" not in case:
        # no sample weight: the fused losses and the metrics' device arithmetic only
        assert reads == [] and device.host_fallbacks() == fallbacks, (reads, device.host_fallbacks() - fallbacks)
    monkeypatch.setattr(convcore.Tensor, "numpy", real)
    g, c = gpu.logs(), cpu.logs()
    assert list(g) == list(c)
    for k in c:
        np.testing.assert_allclose(g[k], c[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_names_follow_keras_before_the_first_batch():
    cl = CompiledLoss("sparse_categorical_crossentropy")
    assert CompiledMetrics(["acc"], cl).names == ["acc"]
    assert CompiledMetrics(["accuracy", "mae", metrics.AUC(name="roc")], cl).names == ["accuracy", "mae", "roc"]
    # repeats are numbered; a weighted metric named as a plain one is weighted_<name>
    assert CompiledMetrics(["mae", "mae"], cl, weighted_metrics=["mae"]).names == ["mae", "mae_1", "weighted_mae"]

    def my_metric(y, p):
        return ops.mean(p, axis=-1)
    assert CompiledMetrics([my_metric], cl).names == ["my_metric"]
    cfg = keras.metrics.serialize(keras.metrics.AUC(name="roc_auc", curve="PR"))
    assert CompiledMetrics([cfg], cl).names == ["roc_auc"]


def test_total_applies_loss_weights_and_returns_unweighted_parts():
    cl = CompiledLoss(["mse", "mae"], loss_weights=[2.0, 0.25], output_names=["a", "b"])
    y = [Y_REG[:4], Y_REG[4:8]]
    o = [ops.convert_to_tensor(Y_REG[8:12]), ops.convert_to_tensor(Y_REG[12:16])]
    total, per = cl.total(y, o)
    want_a = float(np.asarray(keras.losses.MeanSquaredError()(y[0], np.asarray(o[0]))))
    want_b = float(np.asarray(keras.losses.MeanAbsoluteError()(y[1], np.asarray(o[1]))))
    np.testing.assert_allclose([float(per[0]), float(per[1])], [want_a, want_b], rtol=1e-5)
    np.testing.assert_allclose(float(total), 2.0 * want_a + 0.25 * want_b, rtol=1e-5)
    assert cl.loss_names == ["a_loss", "b_loss"]


def test_a_one_entry_list_for_one_output_is_that_loss():
    cl = CompiledLoss(["mae"])
    cl.check_labels(Y_REG, (2,))
    assert isinstance(cl.loss, losses.MeanAbsoluteError)
    assert isinstance(CompiledLoss(losses.Huber()).loss, losses.Huber)


def test_registered_metric_function_config_round_trip():
    @convcore.saving.register_keras_serializable(package="tests")
    def mean_pred_cc(y_true, y_pred):
        return ops.mean(y_pred, axis=-1)

    m = metrics.MeanMetricWrapper(mean_pred_cc)
    m2 = metrics.deserialize(metrics.serialize(m))
    for q in (m, m2):
        q.update_state(Y_REG[:8], Y_REG[8:16], sample_weight=SW[:8])
    assert m2.name == "mean_pred_cc"
    np.testing.assert_array_equal(m2.result().numpy(), m.result().numpy())


def test_class_weight_becomes_keras_sample_weights():
    from keras.src.trainers.data_adapters.data_adapter_utils import class_weight_to_sample_weights
    cw = {0: 0.5, 2: 3.0}
    for y in (Y_SPARSE, Y_SPARSE.reshape(-1, 1), Y_ONEHOT, Y_BIN):
        np.testing.assert_array_equal(sample_weights([y], class_weight=cw), class_weight_to_sample_weights(y, cw))
    np.testing.assert_array_equal(sample_weights([Y_REG], sample_weight=SW.reshape(-1, 1)), SW)
    assert sample_weights([Y_REG]) is None
    for kw, match in [(dict(class_weight=cw, sample_weight=SW), "at the same time"),
                      (dict(sample_weight=SW[:3]), r"one weight per sample, shape \(20,\)"),
                      (dict(class_weight={0.5: 1.0}), "integer classes")]:
        with pytest.raises(ValueError, match=match):
            sample_weights([Y_SPARSE], **kw)
    with pytest.raises(ValueError, match="only supported for models with a single output"):
        sample_weights([Y_SPARSE, Y_REG], class_weight=cw)


def test_crossentropy_alias_resolves_from_the_shapes():
    for y, shape, cls in [(Y_SPARSE, (3,), losses.SparseCategoricalCrossentropy),
                          (Y_ONEHOT, (3,), losses.CategoricalCrossentropy), (Y_BIN, (1,), losses.BinaryCrossentropy)]:
        cl = CompiledLoss("ce")
        cl.check_labels_all([y], [shape])
        assert isinstance(cl.losses[0], cls)


def test_the_first_interface_still_works():
    cl = CompiledLoss("sparse_categorical_crossentropy")
    cm = CompiledMetrics(["accuracy"], cl)
    y = cl.check_labels(Y_SPARSE, (3,))
    p = ops.softmax(ops.convert_to_tensor(X[:, :3]))
    loss = cl(y, p)
    lv, ms = cm.batch_values(loss, y, p)
    np.testing.assert_allclose(lv, float(np.asarray(keras.losses.SparseCategoricalCrossentropy()(y, p.numpy()))),
                               rtol=1e-5)
    assert ms == [pytest.approx(np.mean(p.numpy().argmax(1) == y))]
    totals = cm.running(False)
    totals.add(lv, ms, len(y))
    assert list(totals.logs()) == ["loss", "accuracy"]
    assert cm.can_defer()
    assert not CompiledMetrics(["accuracy", "mae"], cl).can_defer()


@pytest.mark.parametrize("make,match", [
    (lambda: CompiledLoss({"nope": "mse"}, output_names=["a", "b"]), r"loss has keys \['nope'\] that are not outputs"),
    (lambda: CompiledLoss(["mse"], output_names=["a", "b"]), "a list of 1 losses for a model with 2 outputs"),
    (lambda: CompiledLoss([None, None], output_names=["a", "b"]), "at least one output needs a loss"),
    (lambda: CompiledLoss("mse", loss_weights="x"), "loss_weights must be a number, a list or a dict"),
    (lambda: CompiledLoss(["mse", "mae"], loss_weights=[1.0], output_names=["a", "b"]), "loss_weights has 1 entries"),
    (lambda: CompiledLoss("nope"), "Unknown loss 'nope'; valid losses are"),
    (lambda: CompiledMetrics(["aucx"], CompiledLoss("mse")), "Unknown metric 'aucx'; valid metrics are .*AUC"),
    (lambda: CompiledMetrics("mae", CompiledLoss("mse")), "metrics must be a list, tuple or dict"),
    (lambda: CompiledMetrics({"c": "mae"}, CompiledLoss("mse", output_names=["a", "b"]), output_names=["a", "b"]),
     r"metrics has keys \['c'\]"),
])
def test_bad_compile_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()
