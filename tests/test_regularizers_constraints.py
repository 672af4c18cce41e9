"""convcore.regularizers and convcore.constraints against Keras 3: values equal Keras's
on the same arrays (float32), regularizer gradients equal float64 central finite
differences, the GPU equals the CPU, configs equal Keras's and round trip, and the
identifiers ``get`` accepts."""
from __future__ import annotations

import os

import keras
import numpy as np
import pytest

import convcore as cc
from convcore import _core, constraints as C, ops, regularizers as R
from finite_differences import central_differences

HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CI requires a GPU adapter (lavapipe) for the GPU half of these tests")
needs_gpu = pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter (install mesa-vulkan-drivers for lavapipe)")

rng = np.random.default_rng(0)
# no entry near 0 (|x|'s kink) so central differences see a smooth L1
W = np.where(rng.random((5, 4)) < 0.5, -1.0, 1.0) * rng.uniform(0.1, 1.5, (5, 4))
KERNEL = rng.normal(0, 1.0, (3, 3, 2, 4))

REGS = [("L1", {}), ("L1", {"l1": 0.3}), ("L2", {}), ("L2", {"l2": 0.05}), ("L1L2", {}),
        ("L1L2", {"l1": 0.1, "l2": 0.2}), ("L1L2", {"l1": 0.1}), ("OrthogonalRegularizer", {}),
        ("OrthogonalRegularizer", {"factor": 0.5, "mode": "columns"})]
RIDS = [f"{c}-{i}" for i, (c, _) in enumerate(REGS)]


@pytest.mark.parametrize("cls,kw", REGS, ids=RIDS)
def test_regularizer_values_equal_kerass(cls, kw):
    for w in (W, W.T):
        x = np.asarray(w, np.float32)
        ours = getattr(R, cls)(**kw)(x)
        assert isinstance(ours, cc.Tensor) and ours.shape == () and ours.dtype == np.float32
        ref = float(getattr(keras.regularizers, cls)(**kw)(keras.ops.convert_to_tensor(x)))
        np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-5)


@pytest.mark.parametrize("cls,kw", REGS, ids=RIDS)
def test_regularizer_gradients_equal_float64_finite_differences(cls, kw):
    reg = getattr(R, cls)(**kw)
    t = ops.convert_to_tensor(W)
    with cc.GradientTape() as tape:
        tape.watch(t)
        loss = reg(t)
    assert loss.dtype == np.float64
    g = tape.gradient(loss, t)
    if not (kw.get("l1") or kw.get("l2")) and cls == "L1L2":
        assert g is None or not np.any(g.numpy())  # both factors 0: no penalty
        return
    g = g.numpy()
    num = central_differences(lambda a: float(reg(a).numpy()), W, 1e-6)
    err = np.max(np.abs(g - num)) / max(np.max(np.abs(num)), 1e-6)
    assert err <= 1e-6, f"relative error {err:.3g}\nanalytic {g}\nnumeric {num}"


def test_a_regularizer_trains_a_weight_through_the_tape():
    v = cc.Variable(np.asarray(W, np.float32))
    reg = R.L2(0.5)
    with cc.GradientTape() as tape:
        loss = reg(v)
    np.testing.assert_allclose(tape.gradient(loss, v).numpy(), np.asarray(W, np.float32), rtol=1e-6)  # d/dw 0.5 w^2


@needs_gpu
@pytest.mark.parametrize("cls,kw", REGS, ids=RIDS)
def test_regularizers_gpu_equal_cpu(cls, kw):
    reg = getattr(R, cls)(**kw)
    out = {}
    for dev in ("cpu", "gpu"):
        t = ops.convert_to_tensor(np.asarray(W, np.float32), device=dev)
        with cc.GradientTape() as tape:
            tape.watch(t)
            loss = reg(t)
        assert loss.device == dev
        g = tape.gradient(loss, t)
        out[dev] = (loss.numpy(), None if g is None else g.numpy())
    np.testing.assert_allclose(out["gpu"][0], out["cpu"][0], rtol=1e-5)
    if out["cpu"][1] is not None:
        # atol: the orthogonal penalty's gradient sums products of float32 terms of
        # opposite signs (entries ~1e-3 cancel to ~1e-8)
        np.testing.assert_allclose(out["gpu"][1], out["cpu"][1], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cls,kw", REGS, ids=RIDS)
def test_regularizer_configs_equal_kerass_and_round_trip(cls, kw):
    ours = getattr(R, cls)(**kw)
    ref = getattr(keras.regularizers, cls)(**kw)
    kc = ref.get_config()
    # Keras keeps L1's and the orthogonal factor as float32 tensors: 0.01 reads back as
    # 0.009999999776482582; ours keeps the float given
    assert ours.get_config().keys() == kc.keys()
    for k, v in kc.items():
        assert ours.get_config()[k] == (pytest.approx(v, rel=1e-7) if isinstance(v, float) else v)
    for cfg in (R.serialize(ours), keras.regularizers.serialize(ref)):
        again = R.deserialize(cfg)
        assert type(again) is type(ours)
        x = np.asarray(W, np.float32)
        np.testing.assert_allclose(again(x).numpy(), ours(x).numpy(), rtol=1e-6)
    assert R.serialize(ours) == {"class_name": cls, "config": ours.get_config()}


def test_regularizer_names_and_identifiers():
    from keras.src.regularizers import ALL_OBJECTS_DICT
    for n in ALL_OBJECTS_DICT:
        if n not in ("Regularizer", "regularizer"):
            ours, ref = R.get(n), keras.regularizers.get(n)
            assert type(ours).__name__ == type(ref).__name__, n
            assert ours.get_config() == pytest.approx(ref.get_config(), rel=1e-7) if "mode" not in ref.get_config() \
                else ours.get_config()["mode"] == ref.get_config()["mode"]
    # 'l1_l2': Keras 3.15 refuses the name; ours is tf.keras 2's l1_l2() (0.01 each)
    with pytest.raises(ValueError):
        keras.regularizers.get("l1_l2")
    assert R.get("l1_l2").get_config() == {"l1": 0.01, "l2": 0.01}
    assert R.l1_l2 is R.L1L2 and R.l1_l2().get_config() == {"l1": 0.0, "l2": 0.0}  # Keras 3's alias
    assert R.get(None) is None and R.serialize(None) is None
    r = R.L2(0.3)
    assert R.get(r) is r and isinstance(R.get(R.L1), R.L1)

    def penalty(w):
        return ops.sum(w) * 0.0

    assert R.get(penalty) is penalty and R.serialize(penalty) == "penalty"
    assert R.deserialize("penalty", custom_objects={"penalty": penalty}) is penalty
    assert R.get({"class_name": "L1L2", "config": {"l1": 0.5}}).get_config() == {"l1": 0.5, "l2": 0.0}


@pytest.mark.parametrize("make,err,match", [
    (lambda: R.L1(-0.1), ValueError, "L1: l1 must be >= 0"),
    (lambda: R.L2(float("inf")), ValueError, "L2: l2 must be a finite number"),
    (lambda: R.L1L2(l1="a"), TypeError, "L1L2: l1 must be a real number"),
    (lambda: R.OrthogonalRegularizer(mode="diagonal"), ValueError, "OrthogonalRegularizer: mode must be one of"),
    (lambda: R.OrthogonalRegularizer()(np.ones((2, 2, 2))), ValueError, "must have rank 2"),
    (lambda: R.OrthogonalRegularizer()(np.ones((1, 3))), ValueError, "at least two rows"),
    (lambda: R.get("l3"), ValueError, r"Unknown regularizer 'l3'; valid regularizers are l1, l1_l2"),
    (lambda: R.get(0.1), ValueError, "Could not interpret regularizer identifier: 0.1"),
    (lambda: R.get({"class_name": "L1", "config": {"l2": 1}}), TypeError, "l2"),
    (lambda: R.get({"class_name": "Dense", "config": {"units": 1}}), ValueError, "is not a subclass"),
])
def test_regularizer_bad_input(make, err, match):
    with pytest.raises(err, match=match):
        make()


# ------------------------------------------------------------------ constraints
CONS = [("MaxNorm", {}, W * 3), ("MaxNorm", {"max_value": 1.5, "axis": 1}, W * 2),
        ("MaxNorm", {"max_value": 2, "axis": [0, 1, 2]}, KERNEL), ("MaxNorm", {"max_value": 100.0}, W),
        ("NonNeg", {}, W), ("UnitNorm", {}, W), ("UnitNorm", {"axis": [0, 1, 2]}, KERNEL),
        ("UnitNorm", {"axis": -1}, KERNEL), ("MinMaxNorm", {}, W), ("MinMaxNorm", {}, W * 0.1),
        ("MinMaxNorm", {"min_value": 0.5, "max_value": 2.0, "rate": 0.7, "axis": 1}, W * 3),
        ("MinMaxNorm", {"min_value": 3.0, "max_value": 4.0, "rate": 0.25, "axis": [0, 1, 2]}, KERNEL)]
CIDS = [f"{c}-{i}" for i, (c, _, _) in enumerate(CONS)]


@pytest.mark.parametrize("cls,kw,w", CONS, ids=CIDS)
def test_constraint_values_equal_kerass(cls, kw, w):
    x = np.asarray(w, np.float32)
    ours = getattr(C, cls)(**kw)(x)
    assert isinstance(ours, cc.Tensor) and ours.shape == x.shape and ours.dtype == np.float32
    ref = np.asarray(getattr(keras.constraints, cls)(**kw)(keras.ops.convert_to_tensor(x)))
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-5)


@pytest.mark.parametrize("cls,kw,w", CONS, ids=CIDS)
def test_constraints_on_the_gpu_equal_the_cpu_and_stay_there(cls, kw, w):
    if not HAVE_GPU:
        pytest.skip("no GPU adapter")
    c = getattr(C, cls)(**kw)
    x = np.asarray(w, np.float32)
    g = c(ops.convert_to_tensor(x, device="gpu"))
    assert g.device == "gpu"
    np.testing.assert_allclose(g.numpy(), c(x).numpy(), rtol=1e-5)


def test_a_constraint_keeps_a_variables_dtype():
    v = cc.Variable(np.asarray(W, np.float64))
    out = C.MaxNorm(1.0)(v)
    assert out.dtype == np.float64
    np.testing.assert_allclose(np.linalg.norm(out.numpy(), axis=0), 1.0, rtol=1e-6)  # eps 1e-7 in the divisor


@pytest.mark.parametrize("cls,kw,w", CONS, ids=CIDS)
def test_constraint_configs_equal_kerass_and_round_trip(cls, kw, w):
    ours = getattr(C, cls)(**kw)
    ref = getattr(keras.constraints, cls)(**kw)
    assert ours.get_config() == ref.get_config()
    x = np.asarray(w, np.float32)
    for cfg in (C.serialize(ours), keras.constraints.serialize(ref)):
        again = C.deserialize(cfg)
        assert type(again) is type(ours)
        np.testing.assert_array_equal(again(x).numpy(), ours(x).numpy())
    assert C.serialize(ours) == {"class_name": cls, "config": ref.get_config()}


def test_constraint_names_and_identifiers():
    from keras.src.constraints import ALL_OBJECTS_DICT
    for n in ALL_OBJECTS_DICT:
        assert type(C.get(n)).__name__ == type(keras.constraints.get(n)).__name__, n
    for legacy, cls in (("maxnorm", C.MaxNorm), ("nonneg", C.NonNeg), ("unitnorm", C.UnitNorm)):
        with pytest.raises(ValueError):  # Keras 3 refuses tf.keras 2's legacy names; ours takes them
            keras.constraints.get(legacy)
        assert type(C.get(legacy)) is cls
    assert C.get(None) is None and C.serialize(None) is None
    c = C.UnitNorm(1)
    assert C.get(c) is c and isinstance(C.get(C.NonNeg), C.NonNeg)

    def clip_one(w):
        return ops.clip(w, -1.0, 1.0)

    assert C.get(clip_one) is clip_one and C.serialize(clip_one) == "clip_one"
    assert C.get({"class_name": "MaxNorm", "config": {"max_value": 3}}).get_config() == {"max_value": 3, "axis": 0}


@pytest.mark.parametrize("make,err,match", [
    (lambda: C.MaxNorm(max_value=-1), ValueError, "MaxNorm: max_value must be >= 0"),
    (lambda: C.MaxNorm(axis="0"), TypeError, "MaxNorm: axis must be an integer"),
    (lambda: C.UnitNorm(axis=[]), ValueError, "UnitNorm: axis must be an integer or a non-empty list"),
    (lambda: C.MinMaxNorm(min_value=2, max_value=1), ValueError, "MinMaxNorm: min_value must be <= max_value"),
    (lambda: C.MinMaxNorm(rate=float("nan")), ValueError, "MinMaxNorm: rate must be a finite number"),
    (lambda: C.MaxNorm(axis=2)(np.ones((2, 2), np.float32)), ValueError, "axis 2 is out of range"),
    (lambda: C.get("max"), ValueError, r"Unknown constraint 'max'; valid constraints are .*max_norm"),
    (lambda: C.get(3), ValueError, "Could not interpret constraint identifier: 3"),
    (lambda: C.get({"class_name": "Dense", "config": {"units": 1}}), ValueError, "is not a subclass"),
])
def test_constraint_bad_input(make, err, match):
    with pytest.raises(err, match=match):
        make()
