"""convcore.losses against real Keras 3 (same arrays, every reduction, with and without
sample_weight), float64 finite differences for the gradients, the GPU against the CPU,
configs and bad arguments."""
from __future__ import annotations

import os

import numpy as np
import pytest

import convcore
from convcore import _core, device, losses, ops
from finite_differences import central_differences

import keras  # noqa: E402  (conftest sets KERAS_BACKEND=jax first)

HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CONVCORE_CI is set but no GPU adapter is available (lavapipe is required in CI)")
needs_gpu = pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter (install mesa-vulkan-drivers for lavapipe)")

N, K = 6, 4
# "mean" and "none" are spellings of "sum_over_batch_size" and None (test_reduction_aliases)
REDUCTIONS = ["sum_over_batch_size", "sum", "mean_with_sample_weight", None]


def _data(kind, seed=0, dtype=np.float32):
    """(y_true, y_pred, sample_weight) for one kind of targets."""
    r = np.random.default_rng(seed)
    sw = r.uniform(0.2, 2.0, N)
    if kind == "reg":
        yt, yp = r.normal(size=(N, K)), r.normal(size=(N, K))
    elif kind == "reg_col":  # (N,) targets against an (N, 1) output: Keras's rank rule
        yt, yp = r.normal(size=N), r.normal(size=(N, 1))
    elif kind == "reg3":  # (N, T, C) with a per-step weight (N, T)
        yt, yp = r.normal(size=(N, 3, K)), r.normal(size=(N, 3, K))
        sw = r.uniform(0.2, 2.0, (N, 3))
    elif kind == "pos":
        yt, yp = r.uniform(0.1, 3, (N, K)), r.uniform(0.1, 3, (N, K))
    elif kind == "prob":
        yt = np.eye(K)[r.integers(0, K, N)]
        yp = r.uniform(0.1, 1, (N, K))
        yp /= yp.sum(1, keepdims=True)
    elif kind == "softprob":  # soft targets (kl_divergence)
        yt, yp = r.uniform(0.1, 1, (N, K)), r.uniform(0.1, 1, (N, K))
        yt /= yt.sum(1, keepdims=True)
        yp /= yp.sum(1, keepdims=True)
    elif kind == "logit":
        yt, yp = np.eye(K)[r.integers(0, K, N)], r.normal(size=(N, K)) * 2
    elif kind == "bin":
        yt, yp = (r.random((N, K)) < 0.5).astype(float), r.uniform(0.05, 0.95, (N, K))
    elif kind == "binlogit":
        yt, yp = (r.random((N, K)) < 0.5).astype(float), r.normal(size=(N, K)) * 2
    elif kind == "pm1":  # hinge labels already in {-1, 1}
        yt, yp = np.where(r.random((N, K)) < 0.5, -1.0, 1.0), r.normal(size=(N, K))
    elif kind == "sparse":
        yt, yp = r.integers(0, K, N), r.uniform(0.1, 1, (N, K))
        yp /= yp.sum(1, keepdims=True)
        return yt, yp.astype(dtype), sw.astype(dtype)
    elif kind == "sparse_logit":
        yt, yp = r.integers(0, K, N).reshape(N, 1), r.normal(size=(N, K))
        return yt, yp.astype(dtype), sw.astype(dtype)
    else:
        raise KeyError(kind)
    return yt.astype(dtype), yp.astype(dtype), sw.astype(dtype)


# (Keras class name, constructor arguments, data kind)
CASES = [
    ("MeanSquaredError", {}, "reg"),
    ("MeanSquaredError", {}, "reg_col"),
    ("MeanSquaredError", {}, "reg3"),
    ("MeanAbsoluteError", {}, "reg"),
    ("MeanAbsoluteError", {}, "reg3"),
    ("MeanAbsolutePercentageError", {}, "reg"),
    ("MeanSquaredLogarithmicError", {}, "pos"),
    ("Huber", {}, "reg"),
    ("Huber", {"delta": 0.5}, "reg3"),
    ("LogCosh", {}, "reg"),
    ("KLDivergence", {}, "softprob"),
    ("Poisson", {}, "pos"),
    ("Hinge", {}, "bin"),
    ("Hinge", {}, "pm1"),
    ("SquaredHinge", {}, "bin"),
    ("SquaredHinge", {}, "pm1"),
    ("CategoricalHinge", {}, "prob"),
    ("CosineSimilarity", {}, "reg"),
    ("BinaryCrossentropy", {}, "bin"),
    ("BinaryCrossentropy", {"from_logits": True}, "binlogit"),
    ("BinaryCrossentropy", {"label_smoothing": 0.2}, "bin"),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "binlogit"),
    ("BinaryFocalCrossentropy", {}, "bin"),
    ("BinaryFocalCrossentropy", {"apply_class_balancing": True, "alpha": 0.3, "gamma": 1.5}, "bin"),
    ("BinaryFocalCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "binlogit"),
    ("CategoricalCrossentropy", {}, "prob"),
    ("CategoricalCrossentropy", {"from_logits": True}, "logit"),
    ("CategoricalCrossentropy", {"label_smoothing": 0.1}, "prob"),
    ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.2}, "logit"),
    ("CategoricalFocalCrossentropy", {}, "prob"),
    ("CategoricalFocalCrossentropy", {"alpha": 0.5, "gamma": 1.0, "from_logits": True}, "logit"),
    ("SparseCategoricalCrossentropy", {}, "sparse"),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, "sparse_logit"),
    ("SparseCategoricalCrossentropy", {"ignore_class": 1}, "sparse"),
    ("Dice", {}, "bin"),
    ("Dice", {"axis": -1}, "bin"),
    ("Tversky", {"alpha": 0.3, "beta": 0.7}, "bin"),
    ("Tversky", {"axis": 1}, "bin"),
]
IDS = [f"{c}-{'-'.join(f'{k}={v}' for k, v in kw.items())}-{d}" for c, kw, d in CASES]


@pytest.mark.parametrize("cls,kw,kind", CASES, ids=IDS)
def test_loss_equals_keras_every_reduction(cls, kw, kind):
    yt, yp, sw = _data(kind)
    for red in REDUCTIONS:
        ref_loss = getattr(keras.losses, cls)(reduction=red, **kw)
        ours = getattr(losses, cls)(reduction=red, **kw)
        for w in (None, sw):
            want = np.asarray(ref_loss(yt, yp, sample_weight=w))
            got = ours(yt, yp, sample_weight=w)
            assert isinstance(got, convcore.Tensor)
            got = got.numpy()
            assert got.shape == want.shape, (red, w is None, got.shape, want.shape)
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=f"reduction={red} sw={w is not None}")


# The functions (Keras's per-sample values) and the string names Keras accepts.
FUNCTIONS = [("mean_squared_error", "reg"), ("mean_absolute_error", "reg"), ("mean_absolute_percentage_error", "reg"),
             ("mean_squared_logarithmic_error", "pos"), ("huber", "reg"), ("log_cosh", "reg"),
             ("kl_divergence", "softprob"), ("poisson", "pos"), ("hinge", "bin"), ("squared_hinge", "pm1"),
             ("categorical_hinge", "prob"), ("cosine_similarity", "reg"), ("binary_crossentropy", "bin"),
             ("binary_focal_crossentropy", "bin"), ("categorical_crossentropy", "prob"),
             ("categorical_focal_crossentropy", "prob"), ("sparse_categorical_crossentropy", "sparse")]


@pytest.mark.parametrize("fn,kind", FUNCTIONS)
def test_function_per_sample_values_equal_keras(fn, kind):
    yt, yp, _ = _data(kind, seed=3)
    want = np.asarray(getattr(keras.losses, fn)(yt, yp))
    got = getattr(losses, fn)(yt, yp).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,kind", [("mse", "reg"), ("MSE", "reg"), ("mae", "reg"), ("mape", "reg"),
                                       ("msle", "pos"), ("kld", "softprob"), ("bce", "bin"), ("huber", "reg"),
                                       ("MeanAbsoluteError", "reg"), ("categorical_crossentropy", "prob")])
def test_string_names_mean_what_keras_means(name, kind):
    yt, yp, _ = _data(kind, seed=4)
    ref = keras.losses.get(name)
    want = np.mean(np.asarray(ref(yt, yp)))  # a function (per sample) or a Loss (already reduced)
    np.testing.assert_allclose(losses.get(name)(yt, yp).numpy(), want, rtol=1e-5)


def test_reduction_aliases():
    yt, yp, sw = _data("reg3", seed=8)
    for red in ("mean", "none"):
        for w in (None, sw):
            want = np.asarray(keras.losses.MeanAbsoluteError(reduction=red)(yt, yp, sample_weight=w))
            np.testing.assert_allclose(losses.MeanAbsoluteError(reduction=red)(yt, yp, sample_weight=w).numpy(), want,
                                       rtol=1e-5)


def test_cosine_similarity_along_another_axis():
    yt, yp, _ = _data("reg", seed=7)
    for red in ("sum_over_batch_size", None):
        want = np.asarray(keras.losses.CosineSimilarity(axis=0, reduction=red)(yt, yp))
        np.testing.assert_allclose(losses.CosineSimilarity(axis=0, reduction=red)(yt, yp).numpy(), want, rtol=1e-5)


def test_tf_keras_2_spellings():
    yt, yp, sw = _data("reg", seed=10)
    want = np.asarray(keras.losses.MeanSquaredError(reduction="sum_over_batch_size")(yt, yp, sample_weight=sw))
    got = losses.MeanSquaredError(reduction=losses.Reduction.AUTO)(yt, yp, sample_weight=sw)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)
    assert losses.MeanSquaredError(reduction="auto").reduction == "sum_over_batch_size"
    np.testing.assert_allclose(losses.MSE(yt, yp).numpy(), np.asarray(keras.losses.mean_squared_error(yt, yp)),
                               rtol=1e-5)


def test_logcosh_aliases():
    yt, yp, _ = _data("reg", seed=5)
    want = np.asarray(keras.losses.LogCosh()(yt, yp))
    for name in ("logcosh", "log_cosh", "LogCosh"):
        np.testing.assert_allclose(losses.get(name)(yt, yp).numpy(), want, rtol=1e-5)
    assert losses.logcosh is losses.log_cosh


# ---------------------------------------------------------------- gradients
GRAD_CASES = [c for c in CASES if c[2] not in ("reg_col",)]


def _value(loss, yt, p, sw):
    return float(loss(yt, p, sample_weight=sw).numpy())


@pytest.mark.parametrize("cls,kw,kind", GRAD_CASES, ids=[i for i, c in zip(IDS, CASES) if c in GRAD_CASES])
def test_gradient_wrt_y_pred_equals_float64_finite_differences(cls, kw, kind):
    yt, yp, sw = _data(kind, seed=1, dtype=np.float64)
    for w in (None, sw):
        loss = getattr(losses, cls)(**kw)
        p = ops.convert_to_tensor(yp)
        with convcore.GradientTape() as tape:
            tape.watch(p)
            v = loss(yt, p, sample_weight=w)
        g = tape.gradient(v, p).numpy()
        assert g.dtype == np.float64
        fd = central_differences(lambda a: _value(loss, yt, a, w), yp, 1e-6)
        # central differences of float64 values: truncation O(h^2) and rounding ~1e-10 / h
        np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-7, err_msg=f"sample_weight={w is not None}")


def test_fused_kernels_are_used_when_nothing_they_lack_is_asked_for():
    # the fused loss leaves its device stats / a single recorded op: check by the tape's record name
    yt, yp, sw = _data("prob")
    p = ops.convert_to_tensor(yp)
    for loss, fused in [(losses.CategoricalCrossentropy(), True), (losses.CategoricalCrossentropy(label_smoothing=0.1),
                                                                   False),
                        (losses.CategoricalCrossentropy(reduction="sum"), False)]:
        with convcore.GradientTape() as tape:
            tape.watch(p)
            loss(yt, p)
            names = [n[0] for n in tape._nodes]
        assert (names == ["fused_categorical_crossentropy"]) == fused, names
    with convcore.GradientTape() as tape:
        tape.watch(p)
        losses.CategoricalCrossentropy()(yt, p, sample_weight=sw)
        assert "fused_categorical_crossentropy" not in [n[0] for n in tape._nodes]


# ---------------------------------------------------------------- GPU
@needs_gpu
@pytest.mark.parametrize("cls,kw,kind", CASES, ids=IDS)
def test_gpu_equals_cpu(cls, kw, kind):
    yt, yp, sw = _data(kind, seed=2)
    for red in ("sum_over_batch_size", None):
        loss = getattr(losses, cls)(reduction=red, **kw)
        for w in (None, sw):
            cpu = loss(yt, yp, sample_weight=w).numpy()
            pg = ops.convert_to_tensor(yp, device="gpu")
            before = device.host_fallbacks()
            with convcore.GradientTape() as tape:
                tape.watch(pg)
                vg = loss(yt, pg, sample_weight=w)
                total = ops.sum(vg)
            assert vg.device == "gpu"
            assert device.host_fallbacks() == before, "the loss ran an op on the host"
            np.testing.assert_allclose(vg.numpy(), cpu, rtol=1e-5, atol=1e-6)
            pc = ops.convert_to_tensor(yp)
            with convcore.GradientTape() as tape2:
                tape2.watch(pc)
                tc = ops.sum(loss(yt, pc, sample_weight=w))
            np.testing.assert_allclose(tape.gradient(total, pg).numpy(), tape2.gradient(tc, pc).numpy(),
                                       rtol=1e-4, atol=1e-6)  # float32 sums in another order on the device


# ---------------------------------------------------------------- configs and names
CONFIG_CASES = CASES + [("MeanSquaredError", {"reduction": "sum", "name": "m"}, "reg"),
                        ("SparseCategoricalCrossentropy", {"reduction": None}, "sparse")]


@pytest.mark.parametrize("cls,kw,kind", CONFIG_CASES)
def test_config_round_trip_behaves_the_same(cls, kw, kind):
    yt, yp, sw = _data(kind, seed=6)
    a = getattr(losses, cls)(**kw)
    b = type(a).from_config(a.get_config())
    c = losses.deserialize(losses.serialize(a))
    assert type(b) is type(a) and type(c) is type(a) and b.get_config() == a.get_config() == c.get_config()
    for other in (b, c):
        np.testing.assert_array_equal(other(yt, yp, sample_weight=sw).numpy(), a(yt, yp, sample_weight=sw).numpy())


def test_config_keys_match_keras():
    for cls, kw, _ in CASES:
        ours, ref = getattr(losses, cls)(**kw).get_config(), getattr(keras.losses, cls)(**kw).get_config()
        ref.pop("dtype", None)
        # Keras leaves Huber's delta and CosineSimilarity's axis out of their configs (they
        # are then lost on reload); convcore keeps them
        extra = set(ours) - set(ref)
        assert extra <= {"delta", "axis"}, (cls, extra)
        assert {k: ours[k] for k in ref} == ref, cls


def test_legacy_configs_still_load():
    for cfg, cls, logits in [({"name": "sparse_categorical_crossentropy", "from_logits": True},
                              losses.SparseCategoricalCrossentropy, True),
                             ({"name": "mse"}, losses.MeanSquaredError, False),
                             ({"name": "mean_squared_error", "from_logits": False}, losses.MeanSquaredError, False),
                             ("binary_crossentropy", losses.BinaryCrossentropy, False),
                             ({"name": "mae"}, losses.MeanAbsoluteError, False)]:
        loss = losses.deserialize(cfg)
        assert type(loss) is cls and loss.from_logits is logits if hasattr(loss, "_fn_kwargs") else True
    # a default built-in is written the old way (older convcore reads it)
    assert losses.serialize(losses.SparseCategoricalCrossentropy(from_logits=True)) == \
        {"name": "sparse_categorical_crossentropy", "from_logits": True}


def test_keras_style_config_loads():
    cfg = keras.losses.serialize(keras.losses.CategoricalCrossentropy(label_smoothing=0.1, from_logits=True))
    loss = losses.deserialize(cfg)
    assert isinstance(loss, losses.CategoricalCrossentropy)
    assert loss.label_smoothing == 0.1 and loss.from_logits


def test_function_wrapper_config_and_registered_function():
    @convcore.saving.register_keras_serializable(package="tests")
    def my_loss(y_true, y_pred):
        return ops.mean(ops.square(y_true - y_pred), axis=-1)

    yt, yp, sw = _data("reg")
    loss = losses.get(my_loss)
    cfg = losses.serialize(loss)
    again = losses.deserialize(cfg)
    np.testing.assert_allclose(again(yt, yp, sample_weight=sw).numpy(),
                               np.asarray(keras.losses.MeanSquaredError()(yt, yp, sample_weight=sw)), rtol=1e-5)


def test_a_loss_subclass_gets_tensors_and_the_reductions():
    class Quartic(losses.Loss):
        def call(self, y_true, y_pred):
            assert isinstance(y_true, convcore.Tensor) and isinstance(y_pred, convcore.Tensor)
            return ops.mean(ops.square(ops.square(y_true - y_pred)), axis=-1)

    class KQuartic(keras.losses.Loss):
        def call(self, y_true, y_pred):
            return keras.ops.mean((y_true - y_pred) ** 4, axis=-1)

    yt, yp, sw = _data("reg", seed=9)
    for red in ("sum", "mean_with_sample_weight"):
        want = np.asarray(KQuartic(reduction=red)(yt, yp, sample_weight=sw))
        np.testing.assert_allclose(Quartic(reduction=red)(yt, yp, sample_weight=sw).numpy(), want, rtol=1e-5)
    assert Quartic().name == "quartic" and Quartic().get_config() == {"name": "quartic",
                                                                      "reduction": "sum_over_batch_size"}


@pytest.mark.parametrize("call,match", [
    (lambda: losses.MeanSquaredError()(np.ones((4, 3)), np.ones((4, 2))),
     r"MeanSquaredError: y_true and y_pred must have the same shape, received y_true.shape=\(4, 3\)"),
    (lambda: losses.Huber()(np.ones((4, 3)), np.ones((4, 2)), sample_weight=np.ones(4)), "Huber: y_true and y_pred"),
    (lambda: losses.CategoricalCrossentropy(label_smoothing=0.1)(np.ones((2, 4)), np.ones((2, 3))),
     "CategoricalCrossentropy: y_true and y_pred must have the same shape"),
    (lambda: losses.SparseCategoricalCrossentropy()(np.array([0, 5]), np.ones((2, 3)), sample_weight=np.ones(2)),
     r"label 5 is out of range for 3 classes \(valid labels: 0..2\)"),
    (lambda: losses.SparseCategoricalCrossentropy()(np.array([0.5, 1]), np.ones((2, 3)), sample_weight=np.ones(2)),
     "labels must be whole numbers"),
    (lambda: losses.SparseCategoricalCrossentropy(reduction=None)(np.array([[0, 1]]), np.ones((2, 3))),
     r"y_true \(class labels\) must have shape \(2,\)"),
])
def test_bad_calls_are_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="Unknown loss 'nope'; valid losses are .*mean_absolute_error.*mse"):
        losses.get("nope")
    from convcore.saving import ConfigError
    with pytest.raises(ConfigError, match="unknown loss 'nope'; known losses are .*huber"):
        losses.deserialize({"name": "nope"})
    with pytest.raises(ConfigError, match="unknown loss class 'Nope'"):
        losses.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(ConfigError, match="is not an argument of Huber"):
        losses.deserialize({"class_name": "Huber", "config": {"gamma": 1.0}})


@pytest.mark.parametrize("make,match", [
    (lambda: losses.MeanSquaredError(reduction="avg"), "MeanSquaredError: reduction must be one of .*received "
                                                       "reduction='avg'"),
    (lambda: losses.BinaryCrossentropy(label_smoothing=1.5), r"BinaryCrossentropy: label_smoothing must be in "
                                                             r"\[0, 1\], received label_smoothing=1.5"),
    (lambda: losses.CategoricalCrossentropy(from_logits="yes"), "CategoricalCrossentropy: from_logits must be True "
                                                                "or False"),
    (lambda: losses.Huber(delta=float("nan")), "Huber: delta must be a finite number"),
    (lambda: losses.CategoricalCrossentropy(axis=1.5), "CategoricalCrossentropy: axis must be an int"),
    (lambda: losses.SparseCategoricalCrossentropy(ignore_class="a"), "ignore_class must be an int"),
    (lambda: losses.SparseCategoricalCrossentropy(axis=0), "only the last axis"),
    (lambda: losses.BinaryFocalCrossentropy(gamma=-1.0), "gamma must be in"),
    (lambda: losses.LossFunctionWrapper(3), "fn must be a function"),
])
def test_bad_arguments_raise_at_construction(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
