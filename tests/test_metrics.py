"""convcore.metrics against real Keras 3's metric objects: the result after several
update_state calls (with and without sample_weight) on the same arrays, reset_state,
config round trips, names, the GPU against the CPU (with the state on the device and no
host fallback), and bad arguments."""
from __future__ import annotations

import os

import numpy as np
import pytest

import convcore
from convcore import _core, device, metrics, ops

import keras  # noqa: E402  (conftest sets KERAS_BACKEND=jax first)

HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CONVCORE_CI is set but no GPU adapter is available (lavapipe is required in CI)")
needs_gpu = pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter (install mesa-vulkan-drivers for lavapipe)")

N, K = 8, 4


def _batches(kind, seed=0):
    """Two batches (y_true, y_pred, sample_weight) of one kind; the second one weighted."""
    r = np.random.default_rng(seed)
    out = []
    for b in range(2):
        p = r.uniform(0, 1, (N, K)).astype(np.float32)
        sw = r.uniform(0.2, 2, N).astype(np.float32) if b == 1 else None
        if kind == "values":
            y, p = p[:, 0], None
        elif kind == "ids":
            y, p = r.integers(0, K, N), r.integers(0, K, N)
        elif kind == "onehot":
            y = np.eye(K, dtype=np.float32)[r.integers(0, K, N)]
        elif kind == "sparse":
            y = r.integers(0, K, N)
        elif kind == "sorted_ids":  # class ids, best first
            y, p = r.integers(0, K, N), np.argsort(-p, axis=1).astype(np.float32)
        elif kind == "sparse_col":
            y = r.integers(0, K, (N, 1))
        elif kind == "multilabel":
            y = (r.random((N, K)) < 0.5).astype(np.float32)
        elif kind == "binary_col":
            y, p = (r.random((N, 1)) < 0.5).astype(np.float32), p[:, :1]
        elif kind == "reg":
            y = r.normal(size=(N, K)).astype(np.float32)
        elif kind == "reg_col":
            y, p = r.normal(size=N).astype(np.float32), p[:, :1]
        else:
            raise KeyError(kind)
        out.append((y, p, sw))
    return out


# (class name, constructor arguments, data kind)
CASES = [
    ("Mean", {}, "values"),
    ("Sum", {}, "values"),
    ("Accuracy", {}, "ids"),
    ("BinaryAccuracy", {}, "multilabel"),
    ("BinaryAccuracy", {"threshold": 0.3}, "binary_col"),
    ("CategoricalAccuracy", {}, "onehot"),
    ("SparseCategoricalAccuracy", {}, "sparse"),
    ("SparseCategoricalAccuracy", {}, "sparse_col"),
    ("TopKCategoricalAccuracy", {"k": 2}, "onehot"),
    ("SparseTopKCategoricalAccuracy", {"k": 2}, "sparse"),
    ("SparseTopKCategoricalAccuracy", {}, "sparse_col"),
    ("SparseTopKCategoricalAccuracy", {"k": 2, "from_sorted_ids": True}, "sorted_ids"),
    ("MeanAbsoluteError", {}, "reg"),
    ("MeanSquaredError", {}, "reg"),
    ("MeanSquaredError", {}, "reg_col"),
    ("RootMeanSquaredError", {}, "reg"),
    ("MeanAbsolutePercentageError", {}, "reg"),
    ("MeanSquaredLogarithmicError", {}, "multilabel"),
    ("CosineSimilarity", {}, "reg"),
    ("LogCoshError", {}, "reg"),
    ("KLDivergence", {}, "onehot"),
    ("Poisson", {}, "multilabel"),
    ("Hinge", {}, "multilabel"),
    ("SquaredHinge", {}, "multilabel"),
    ("CategoricalHinge", {}, "onehot"),
    ("BinaryCrossentropy", {}, "multilabel"),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "multilabel"),
    ("CategoricalCrossentropy", {}, "onehot"),
    ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.2}, "onehot"),
    ("SparseCategoricalCrossentropy", {}, "sparse"),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, "sparse"),
    ("Precision", {}, "multilabel"),
    ("Precision", {"thresholds": [0.2, 0.5, 0.8]}, "multilabel"),
    ("Precision", {"top_k": 2}, "multilabel"),
    ("Precision", {"class_id": 1}, "multilabel"),
    ("Recall", {}, "multilabel"),
    ("Recall", {"thresholds": 0.7}, "binary_col"),
    ("Recall", {"top_k": 1, "class_id": 2}, "multilabel"),
    ("AUC", {}, "multilabel"),
    ("AUC", {"num_thresholds": 17, "summation_method": "minoring"}, "binary_col"),
    ("AUC", {"curve": "PR", "summation_method": "majoring", "num_thresholds": 31}, "multilabel"),
    ("AUC", {"thresholds": [0.1, 0.4, 0.5, 0.9]}, "multilabel"),
    ("AUC", {"from_logits": True}, "multilabel"),
    ("AUC", {"multi_label": True}, "multilabel"),
    ("AUC", {"multi_label": True, "num_labels": K, "curve": "PR", "label_weights": [0.1, 0.2, 0.3, 0.4]},
     "multilabel"),
    ("AUC", {"label_weights": [0.5, 1.0, 2.0, 0.0], "num_thresholds": 50}, "multilabel"),
    ("TruePositives", {}, "multilabel"),
    ("FalsePositives", {"thresholds": [0.3, 0.7]}, "multilabel"),
    ("TrueNegatives", {}, "binary_col"),
    ("FalseNegatives", {"thresholds": 0.2}, "multilabel"),
    ("F1Score", {}, "onehot"),
    ("F1Score", {"average": "macro", "threshold": 0.5}, "multilabel"),
    ("F1Score", {"average": "micro", "threshold": 0.4}, "multilabel"),
    ("F1Score", {"average": "weighted"}, "multilabel"),
    ("FBetaScore", {"beta": 2.0, "average": "macro", "threshold": 0.5}, "multilabel"),
    ("MeanIoU", {"num_classes": K, "ignore_class": 0}, "ids"),
    ("MeanIoU", {"num_classes": K, "sparse_y_true": False, "sparse_y_pred": False, "dtype": "float32"}, "onehot"),
]
IDS = [f"{c}-{'-'.join(f'{k}={v}' for k, v in kw.items())}-{d}" for c, kw, d in CASES]


def _update(m, y, p, sw):
    if p is None:
        m.update_state(y, sample_weight=sw)
    else:
        m.update_state(y, p, sample_weight=sw)


@pytest.mark.parametrize("cls,kw,kind", CASES, ids=IDS)
def test_result_equals_keras_after_several_updates(cls, kw, kind):
    ref, ours = getattr(keras.metrics, cls)(**kw), getattr(metrics, cls)(**kw)
    for y, p, sw in _batches(kind):
        _update(ref, y, p, sw)
        _update(ours, y, p, sw)
    got = ours.result()
    assert isinstance(got, convcore.Tensor)
    np.testing.assert_allclose(got.numpy(), np.asarray(ref.result()), rtol=1e-5, atol=1e-6)
    assert ours.name == (ref.name if not ref.name[-1].isdigit() else ours.name)  # Keras numbers repeats
    # reset_state starts again: one more batch alone equals a fresh metric given only it
    # (whose value the loop above checks against Keras's)
    ours.reset_state()
    fresh = getattr(metrics, cls)(**kw)
    y, p, sw = _batches(kind, seed=1)[1]
    _update(fresh, y, p, sw)
    _update(ours, y, p, sw)
    np.testing.assert_array_equal(ours.result().numpy(), fresh.result().numpy())


@pytest.mark.parametrize("cls,kw,kind", CASES, ids=IDS)
def test_config_round_trip_behaves_the_same(cls, kw, kind):
    a = getattr(metrics, cls)(**kw)
    b = type(a).from_config(a.get_config())
    c = metrics.deserialize(metrics.serialize(a))
    assert type(b) is type(a) and type(c) is type(a) and b.get_config() == a.get_config() == c.get_config()
    for y, p, sw in _batches(kind, seed=2):
        for m in (a, b, c):
            _update(m, y, p, sw)
    np.testing.assert_array_equal(b.result().numpy(), a.result().numpy())
    np.testing.assert_array_equal(c.result().numpy(), a.result().numpy())


def test_config_keys_match_keras():
    for cls, kw, _ in CASES:
        ours, ref = getattr(metrics, cls)(**kw).get_config(), getattr(keras.metrics, cls)(**kw).get_config()
        ref.pop("name"), ours.pop("name")  # Keras numbers repeated names (precision_1)
        if cls == "MeanIoU":
            ref.pop("dtype"), ours.pop("dtype")  # Keras writes its integer dtype: int32
        # convcore's CosineSimilarity keeps its axis (Keras's config leaves it out)
        if ref.get("label_weights") is not None:  # Keras keeps them as an array
            ref["label_weights"] = np.asarray(ref["label_weights"]).tolist()
            ours["label_weights"] = np.asarray(ours["label_weights"], dtype=np.float32).tolist()
        assert set(ours) - set(ref) <= {"axis"} and {k: ours[k] for k in ref} == ref, (cls, ours, ref)




@needs_gpu
@pytest.mark.parametrize("cls,kw,kind", [c for c in CASES if c[0] != "MeanIoU"],
                         ids=[i for i, c in zip(IDS, CASES) if c[0] != "MeanIoU"])
def test_gpu_equals_cpu_with_state_on_the_device(cls, kw, kind):
    cpu, gpu = getattr(metrics, cls)(**kw), getattr(metrics, cls)(**kw)
    before = device.host_fallbacks()
    for y, p, sw in _batches(kind, seed=3):
        _update(cpu, y, p, sw)
        if p is None:
            gpu.update_state(ops.convert_to_tensor(y, device="gpu"), sample_weight=sw)
        else:
            gpu.update_state(y, ops.convert_to_tensor(p, device="gpu"), sample_weight=sw)
    assert all(v.device == "gpu" for v in gpu.variables)
    if kind != "ids":  # integer ids on the device: their cast to float is a host op
        assert device.host_fallbacks() == before, "a metric update ran on the host"
    np.testing.assert_allclose(gpu.result().numpy(), cpu.result().numpy(), rtol=1e-5, atol=1e-6)


def test_metric_updates_are_not_recorded_by_a_tape():
    p = ops.convert_to_tensor(np.random.default_rng(0).uniform(size=(N, K)))
    m = metrics.AUC()
    with convcore.GradientTape() as tape:
        tape.watch(p)
        m.update_state((np.arange(N * K).reshape(N, K) % 2), p)
        assert tape._nodes == []


def test_reset_states_alias_and_mean_metric_wrapper():
    def mean_pred(y_true, y_pred):
        return ops.mean(y_pred, axis=-1)

    (y, p, _), (y2, p2, sw) = _batches("reg", seed=4)[:2]
    m, ref = metrics.MeanMetricWrapper(mean_pred), keras.metrics.MeanMetricWrapper(
        lambda t, q: keras.ops.mean(q, axis=-1))
    m.update_state(y, p)
    m.reset_states()
    for a, b, w in ((y, p, None), (y2, p2, sw)):
        m.update_state(a, b, sample_weight=w)
        ref.update_state(a, b, sample_weight=w)
    assert m.name == "mean_pred"
    np.testing.assert_allclose(m.result().numpy(), np.asarray(ref.result()), rtol=1e-5)


def test_a_metric_subclass_written_as_for_keras():
    def make(M, O):
        class WeightedPositives(M.Metric):
            def __init__(self, name="weighted_positives", **kw):
                super().__init__(name=name, **kw)
                self.hits = self.add_variable(shape=(), initializer="zeros", name="hits")
                self.seen = self.add_weight(shape=(), initializer="zeros", name="seen")

            def update_state(self, y_true, y_pred, sample_weight=None):
                hit = O.cast(O.greater(y_pred, 0.5), "float32") * O.cast(y_true, "float32")
                w = O.ones_like(hit) if sample_weight is None else O.expand_dims(O.cast(sample_weight, "float32"), 1)
                self.hits.assign_add(O.sum(hit * w))
                self.seen.assign_add(O.sum(O.ones_like(hit) * w))

            def result(self):
                return self.hits / self.seen
        return WeightedPositives()

    ours, ref = make(metrics, ops), make(keras.metrics, keras.ops)
    for y, p, sw in _batches("multilabel", seed=6):
        ours.update_state(y, p, sample_weight=sw)
        ref.update_state(y, p, sample_weight=sw)
    np.testing.assert_allclose(float(ours.result()), float(ref.result()), rtol=1e-6)
    assert [v.name for v in ours.variables] == ["hits", "seen"]
    ours.reset_state()
    assert float(ours.hits) == 0.0 and float(ours.seen) == 0.0
    if HAVE_GPU:  # the state follows GPU inputs, where assign_add then runs
        gpu = make(metrics, ops)
        for y, p, sw in _batches("multilabel", seed=6):
            gpu.update_state(ops.convert_to_tensor(y, device="gpu"), ops.convert_to_tensor(p, device="gpu"),
                             sample_weight=ops.convert_to_tensor(sw, device="gpu") if sw is not None else None)
        assert gpu.hits.device == "gpu"
        np.testing.assert_allclose(float(gpu.result()), float(ref.result()), rtol=1e-6)


def test_result_is_not_changed_by_later_updates():
    m = metrics.Sum()
    m.update_state([1.0, 2.0])
    r = m.result()
    m.update_state([4.0])
    assert float(r) == 3.0 and float(m.result()) == 7.0


def test_functions_equal_keras():
    for name, kind in [("binary_accuracy", "multilabel"), ("categorical_accuracy", "onehot"),
                       ("sparse_categorical_accuracy", "sparse"), ("top_k_categorical_accuracy", "onehot"),
                       ("sparse_top_k_categorical_accuracy", "sparse"), ("mean_absolute_error", "reg"),
                       ("mean_squared_error", "reg")]:
        y, p, _ = _batches(kind, seed=5)[0]
        np.testing.assert_allclose(getattr(metrics, name)(y, p).numpy(),
                                   np.asarray(getattr(keras.metrics, name)(y, p)), rtol=1e-5, err_msg=name)


def test_categorical_accuracy_ties_take_the_first_maximum_as_argmax():
    y = np.eye(3, dtype=np.float32)[[1, 0, 2]]
    p = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.2, 0.4, 0.4]], dtype=np.float32)
    want = np.asarray(keras.metrics.categorical_accuracy(y, p))
    np.testing.assert_array_equal(metrics.categorical_accuracy(y, p).numpy(), want)


def test_get_names_as_keras():
    for name in ("mae", "MSE", "mean_squared_error", "AUC", "auc", "precision", "Recall", "f1_score",
                 "root_mean_squared_error", "binary_accuracy", "accuracy"):
        ref = keras.metrics.get(name)
        assert type(metrics.get(name)).__name__ == type(ref).__name__, name
    assert metrics.get(metrics.mae) is metrics.mae


@pytest.mark.parametrize("make,match", [
    (lambda: metrics.get("aucx"), "Unknown metric 'aucx'; valid metrics are .*AUC.*mae"),
    (lambda: metrics.Precision(thresholds=[0.5, 1.5]), r"Precision: thresholds must be numbers in \[0, 1\]"),
    (lambda: metrics.Recall(top_k=0), "Recall: top_k must be an int >= 1"),
    (lambda: metrics.AUC(curve="XY"), "AUC: curve must be one of 'ROC', 'PR', received curve='XY'"),
    (lambda: metrics.AUC(summation_method="avg"), "AUC: summation_method must be one of"),
    (lambda: metrics.AUC(num_thresholds=1), "AUC: num_thresholds must be an int > 1"),
    (lambda: metrics.AUC(num_labels=3), "num_labels is needed only when multi_label is True"),
    (lambda: metrics.F1Score(average="mean"), "F1Score: average must be one of"),
    (lambda: metrics.F1Score(threshold=1.5), r"F1Score: threshold must be a number in \(0, 1\]"),
    (lambda: metrics.TopKCategoricalAccuracy(k=0), "k must be a positive int"),
    (lambda: metrics.MeanIoU(num_classes=0), "MeanIoU: num_classes must be an int >= 1"),
    (lambda: metrics.BinaryAccuracy(threshold="a"), "threshold must be a finite number"),
    (lambda: metrics.MeanMetricWrapper(3), "fn must be a function"),
    (lambda: metrics.MeanSquaredError(axis=0), "unexpected arguments"),
])
def test_bad_arguments_raise_at_construction(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_deserialize_refusals():
    from convcore.saving import ConfigError
    with pytest.raises(ConfigError, match="unknown metric class 'Nope'"):
        metrics.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(ConfigError, match="is not an argument of AUC"):
        metrics.deserialize({"class_name": "AUC", "config": {"evil": 1}})
