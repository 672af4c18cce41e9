"""Normalization layers (BatchNormalization, LayerNormalization, GroupNormalization,
RMSNormalization, UnitNormalization) against real Keras 3 with the same weights and inputs, on CPU and
GPU, in inference and training (BatchNormalization's moving statistics after a training
call too, and Keras's frozen semantics); gradients against float64 finite differences;
configs against Keras's keys and by behaviour; bad arguments."""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import convcore  # noqa: E402
from convcore import layers  # noqa: E402
from core_layers_reference import (DEVICES, assert_fit_matches_keras, assert_gpu_gradients_match_cpu,  # noqa: E402
                                   check_gradients, config_round_trip, copy_keras_weights, needs_gpu, on_device)

K = keras.layers
RN = "random_normal"


def _bn_k(**kw):
    return K.BatchNormalization(gamma_initializer=RN, beta_initializer=RN, moving_mean_initializer=RN,
                                moving_variance_initializer=keras.initializers.RandomUniform(0.5, 1.5), **kw)


def _ln_k(**kw):
    return K.LayerNormalization(gamma_initializer=RN, beta_initializer=RN, **kw)


def _gn_k(**kw):
    return K.GroupNormalization(gamma_initializer=RN, beta_initializer=RN, **kw)


# id: (convcore layer from its arguments, the same arguments, Keras layer, input shape with batch)
CASES = {
    "bn": (layers.BatchNormalization, {}, _bn_k, (6, 4)),
    "bn_image": (layers.BatchNormalization, {}, _bn_k, (3, 2, 3, 4)),
    "bn_axis1": (layers.BatchNormalization, {"axis": 1}, _bn_k, (4, 3, 5)),
    "bn_axis_neg2": (layers.BatchNormalization, {"axis": -2}, _bn_k, (4, 3, 5)),
    "bn_axis2_rank4": (layers.BatchNormalization, {"axis": 2, "momentum": 0.5}, _bn_k, (2, 3, 4, 2)),
    "bn_no_center": (layers.BatchNormalization, {"center": False, "epsilon": 0.1}, _bn_k, (6, 4)),
    "bn_no_scale_axis1": (layers.BatchNormalization, {"scale": False, "axis": 1}, _bn_k, (4, 3, 5)),
    "bn_neither": (layers.BatchNormalization, {"scale": False, "center": False}, _bn_k, (6, 4)),
    "bn_frozen": (layers.BatchNormalization, {"trainable": False}, _bn_k, (6, 4)),
    "bn_frozen_axis1": (layers.BatchNormalization, {"trainable": False, "axis": 1}, _bn_k, (4, 3, 5)),
    "ln": (layers.LayerNormalization, {}, _ln_k, (4, 6)),
    "ln_axes": (layers.LayerNormalization, {"axis": [1, 2]}, _ln_k, (3, 4, 5)),
    "ln_axis1": (layers.LayerNormalization, {"axis": 1, "epsilon": 1e-5}, _ln_k, (3, 4, 5)),
    "ln_no_center": (layers.LayerNormalization, {"center": False}, _ln_k, (3, 4, 5)),
    "ln_no_scale": (layers.LayerNormalization, {"scale": False}, _ln_k, (3, 4, 5)),
    "ln_rms": (layers.LayerNormalization, {"rms_scaling": True}, _ln_k, (3, 4, 5)),
    "gn": (layers.GroupNormalization, {"groups": 2}, _gn_k, (3, 4, 6)),
    "gn_image": (layers.GroupNormalization, {"groups": 3}, _gn_k, (2, 3, 2, 6)),
    "gn_instance": (layers.GroupNormalization, {"groups": -1}, _gn_k, (3, 4, 6)),
    "gn_one_group": (layers.GroupNormalization, {"groups": 1, "center": False}, _gn_k, (3, 4, 6)),
    "gn_axis1": (layers.GroupNormalization, {"groups": 2, "axis": 1, "scale": False}, _gn_k, (3, 4, 5)),
    "rms": (layers.RMSNormalization, {}, lambda **kw: K.RMSNormalization(**kw), (4, 6)),
    "rms_axes": (layers.RMSNormalization, {"axis": [1, 2], "epsilon": 1e-3}, lambda **kw: K.RMSNormalization(**kw),
                 (3, 4, 5)),
    "un": (layers.UnitNormalization, {}, lambda **kw: K.UnitNormalization(**kw), (4, 6)),
    "un_axes": (layers.UnitNormalization, {"axis": [1, 2]}, lambda **kw: K.UnitNormalization(**kw), (3, 4, 5)),
    "un_axis1": (layers.UnitNormalization, {"axis": 1}, lambda **kw: K.UnitNormalization(**kw), (3, 4, 5)),
    "un_batch_axis": (layers.UnitNormalization, {"axis": [0, -1]}, lambda **kw: K.UnitNormalization(**kw), (3, 4, 5)),
}

_KERAS_OUT: dict = {}


def _keras(case):
    """Keras's layer (built), its initial weights, the input, the inference output, the
    training output and the weights after that training call."""
    if case not in _KERAS_OUT:
        _, args, kf, shape = CASES[case]
        x = (np.random.default_rng(0).standard_normal(shape) * 2 + 0.5).astype(np.float32)
        kl = kf(**args)
        kl.build(shape)
        if case.startswith("rms"):  # Keras's scale starts at ones, with no initializer argument
            kl.set_weights([np.random.default_rng(8).uniform(0.5, 1.5, w.shape) for w in kl.get_weights()])
        w0 = [w.copy() for w in kl.get_weights()]
        y_inf = np.asarray(kl(x, training=False))
        y_train = np.asarray(kl(x, training=True))
        _KERAS_OUT[case] = (kl, w0, x, y_inf, y_train, kl.get_weights())
    return _KERAS_OUT[case]


def _ours(case, **extra):
    cls, args, _, _ = CASES[case]
    return cls(**{**args, **extra})


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_keras_inference_and_training(case, device):
    kl, w0, x, y_inf, y_train, w1 = _keras(case)
    layer = _ours(case)
    layer.build(x.shape[1:])
    layer.built = True
    layer.set_weights(w0)
    f = on_device(layer, x.shape[1:], device)
    np.testing.assert_allclose(f(x, training=False), y_inf, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f(x, training=True), y_train, rtol=1e-5, atol=1e-5)
    # after the training call: moving statistics updated as Keras (frozen: unchanged)
    for got, want, w in zip(layer.get_weights(), w1, layer.weights):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=w.name)
    if "frozen" in case:
        for a, b in zip(layer.get_weights(), w0):
            np.testing.assert_array_equal(a, b)


# training changes only batch normalization: the others are checked once
@pytest.mark.parametrize("case, training", [(c, True) for c in sorted(CASES)] +
                         [(c, False) for c in sorted(CASES) if c.startswith("bn")])
def test_gradients_match_finite_differences(case, training):
    _, _, _, shape = CASES[case]
    layer = _ours(case, dtype="float64")
    x = np.random.default_rng(1).standard_normal(shape) + 0.3
    layer.build(x.shape[1:])
    layer.built = True
    rng = np.random.default_rng(2)
    layer.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in layer.get_weights()])
    check_gradients(layer, x, training=training, rtol=1e-5, atol=1e-7)


@needs_gpu
@pytest.mark.parametrize("case, training", [(c, True) for c in sorted(CASES)] +
                         [(c, False) for c in sorted(CASES) if c.startswith("bn")])
def test_gpu_gradients_match_cpu(case, training):
    x = (np.random.default_rng(1).standard_normal(CASES[case][3]) + 0.3).astype(np.float32)
    assert_gpu_gradients_match_cpu(lambda: _ours(case), x, training=training)


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_round_trip(case):
    kl, w0, x, _, _, _ = _keras(case)
    layer = _ours(case, name=f"cfg_{case}")
    layer.build(x.shape[1:])
    layer.built = True
    layer.set_weights(w0)
    config_round_trip(layer, x, training=False, keras_layer=kl)
    if case.startswith("bn"):
        config_round_trip(_ours(case, name=f"cfg_t_{case}"), x, training=True)


def test_batch_norm_weights_follow_center_and_scale_as_keras():
    for center, scale in ((True, True), (False, True), (True, False), (False, False)):
        layer = layers.BatchNormalization(center=center, scale=scale)
        layer.build((3,))
        kl = K.BatchNormalization(center=center, scale=scale)
        kl.build((None, 3))
        assert [w.name for w in layer.weights] == [w.name for w in kl.weights]
        assert [w.name for w in layer.trainable_weights] == [w.name for w in kl.trainable_weights]


def test_batch_norm_list_axis():
    """A list axis (tf.keras 2): statistics per (axis 1, axis 2) entry, reduced over
    the batch and axis 3 (Keras 3 has no list axis; the reference is numpy)."""
    x = np.random.default_rng(3).standard_normal((4, 2, 3, 5)).astype(np.float32)
    layer = layers.BatchNormalization(axis=[1, 2], momentum=0.0, epsilon=1e-3)
    for device in DEVICES:
        y = on_device(layer, x.shape[1:], device)(x, training=True)
        m, v = x.mean(axis=(0, 3), keepdims=True), x.var(axis=(0, 3), keepdims=True)
        np.testing.assert_allclose(y, (x - m) / np.sqrt(v + 1e-3), rtol=1e-5, atol=1e-5)
        assert layer.moving_mean.shape == (2, 3)
        np.testing.assert_allclose(layer.moving_mean.numpy(), m[0, :, :, 0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer.moving_variance.numpy(), v[0, :, :, 0], rtol=1e-5)
    check_gradients(layers.BatchNormalization(axis=[1, 2], dtype="float64"), x[:3, :, :, :2].astype(np.float64),
                    training=True, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("axis", [-1, 1])
def test_frozen_batch_norm_in_a_model_keeps_its_statistics_during_fit(device, axis):
    x = np.random.default_rng(4).standard_normal((16, 3, 4)).astype(np.float32) + 1
    y = np.random.default_rng(5).standard_normal((16, 1)).astype(np.float32)
    bn = layers.BatchNormalization(axis=axis, momentum=0.5)
    model = convcore.Sequential([convcore.Input((3, 4)), layers.Dense(4), bn, layers.Flatten(), layers.Dense(1)])
    bn.trainable = False
    model.compile(optimizer=convcore.optimizers.SGD(0.01), loss="mse", device=device)
    before = bn.get_weights()
    dense_before = model.layers[0].get_weights()[0].copy()
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    for a, b in zip(bn.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(model.layers[0].get_weights()[0], dense_before)  # the rest trained
    bn.trainable = True  # and unfrozen, fit moves them
    model.compile(optimizer=convcore.optimizers.SGD(0.01), loss="mse", device=device)
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert not np.array_equal(bn.get_weights()[2], before[2])


def _fit_model(M, mod, constraints):
    return M.Sequential([M.Input((4, 3)), mod.BatchNormalization(axis=1, momentum=0.5), mod.Flatten(),
                         mod.Dense(3, kernel_constraint=constraints.NonNeg()), mod.BatchNormalization(momentum=0.8),
                         mod.Dense(1)])


_KERAS_FIT: dict = {}


@pytest.mark.parametrize("device", DEVICES)
def test_fit_matches_keras_with_batch_norm_on_two_axes(device):
    """Two epochs of SGD through batch norm over axis 1 (composed) and the last axis
    (fused): every weight, moving statistics included, as Keras's fit leaves them."""
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((8, 4, 3)) * 2 + 1).astype(np.float32)
    y = rng.standard_normal((8, 1)).astype(np.float32)
    assert_fit_matches_keras(lambda: _fit_model(keras, K, keras.constraints),
                             lambda: _fit_model(convcore, layers, convcore.constraints), x, y, device, _KERAS_FIT)


def test_tf_keras_2_fused_is_accepted():
    x = np.random.default_rng(10).standard_normal((5, 2, 3)).astype(np.float32)
    for fused in (True, False, None):
        for axis in (-1, 1):
            a, b = layers.BatchNormalization(axis=axis, fused=fused), layers.BatchNormalization(axis=axis)
            np.testing.assert_array_equal(np.asarray(a(x, training=True)), np.asarray(b(x, training=True)))
            assert "fused" not in a.get_config()


def test_synchronized_is_accepted_and_changes_nothing():
    """One device: synchronized=True computes what synchronized=False does (Keras's
    TensorFlow backend on one replica); the config keeps the flag."""
    x = np.random.default_rng(7).standard_normal((5, 3)).astype(np.float32)
    a, b = layers.BatchNormalization(synchronized=True), layers.BatchNormalization()
    np.testing.assert_array_equal(np.asarray(a(x, training=True)), np.asarray(b(x, training=True)))
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    assert a.get_config()["synchronized"] is True
    assert layers.BatchNormalization.from_config(a.get_config()).synchronized is True


def test_regularizers_and_constraints_on_gamma_beta():
    x = np.random.default_rng(6).standard_normal((4, 3)).astype(np.float32)
    for cls in (layers.BatchNormalization, layers.LayerNormalization):
        layer = cls(gamma_regularizer=convcore.regularizers.L2(0.1), beta_regularizer="l1",
                    gamma_constraint="non_neg", beta_constraint=convcore.constraints.MaxNorm(1.0))
        kl = getattr(K, cls.__name__)(gamma_regularizer=keras.regularizers.L2(0.1), beta_regularizer="l1",
                                      gamma_initializer=RN, beta_initializer=RN)
        kl(x)
        copy_keras_weights(layer, kl, (3,))
        layer(x)
        np.testing.assert_allclose(sorted(float(np.asarray(v)) for v in layer.losses),
                                   sorted(float(v) for v in kl.losses), rtol=1e-5)
        assert isinstance(layer.gamma.constraint, convcore.constraints.NonNeg)
        cfg = layer.get_config()
        assert cfg["gamma_constraint"]["class_name"] == "NonNeg"
        assert cfg["beta_regularizer"]["class_name"] == "L1"
        assert cls.from_config(cfg).get_config() == cfg


@pytest.mark.parametrize("make, err, match", [
    (lambda: layers.BatchNormalization(axis="x"), TypeError, r"BatchNormalization: axis must be an int"),
    (lambda: layers.BatchNormalization(renorm=True), ValueError, r"renorm=True .* not supported"),
    (lambda: layers.BatchNormalization(virtual_batch_size=2), ValueError, r"virtual_batch_size \(tf.keras 2\)"),
    (lambda: layers.BatchNormalization(adjustment=abs), ValueError, r"adjustment \(tf.keras 2\) is not supported"),
    (lambda: layers.BatchNormalization(fused="yes"), TypeError, r"fused must be True or False"),
    (lambda: layers.BatchNormalization(momentum=2), ValueError, r"momentum must be <= 1"),
    (lambda: layers.BatchNormalization(center="no"), TypeError, r"center must be True or False"),
    (lambda: layers.LayerNormalization(axis=[]), ValueError, r"LayerNormalization: axis must be an int or a non-empty"),
    (lambda: layers.GroupNormalization(groups=0), ValueError, r"groups must be a positive integer or -1"),
    (lambda: layers.GroupNormalization(axis=[1]), TypeError, r"GroupNormalization: axis must be an integer"),
    (lambda: layers.UnitNormalization(axis=1.5), TypeError, r"UnitNormalization: axis must be an int"),
    (lambda: layers.LayerNormalization(gamma_initializer="nope"), ValueError, r"nope"),
])
def test_bad_arguments(make, err, match):
    with pytest.raises(err, match=match):
        make()


@pytest.mark.parametrize("make, shape, match", [
    (lambda: layers.GroupNormalization(groups=4), (3, 6), r"channels \(6, axis -1 .*\) must be a multiple of groups"),
    (lambda: layers.GroupNormalization(groups=8), (3, 6), r"number of groups \(8\) cannot be more than .* \(6"),
    (lambda: layers.BatchNormalization(axis=3), (3, 6), r"axis 3 is not a feature axis of inputs of shape"),
    (lambda: layers.LayerNormalization(axis=0), (3, 6), r"axis 0 is not a feature axis"),
    (lambda: layers.LayerNormalization(axis=[1, -2]), (3, 6), r"lists axis -2 twice"),
])
def test_bad_axes_at_build(make, shape, match):
    with pytest.raises(ValueError, match=match):
        make()(np.zeros((2,) + shape, np.float32))


def config_instances():
    """One instance per class of this family (the suite's config-coverage test)."""
    return [layers.BatchNormalization(axis=1, center=False, name="cfg_bn_axis"),
            layers.LayerNormalization(axis=[1, 2], name="cfg_ln"),
            layers.GroupNormalization(groups=2, name="cfg_gn"), layers.UnitNormalization(axis=1, name="cfg_un"),
            layers.RMSNormalization(axis=[1], name="cfg_rms")]
