"""Core layers (Dense, Activation, Flatten, Reshape, Lambda) against real Keras 3 with the same weights and inputs,
on CPU and GPU; gradients (input, kernel, bias) against float64 finite differences;
configs against Keras's keys and by behaviour after a round trip (initializers saved by
``initializers.serialize``, a callable by its own name); weight and activity
regularizers' losses against Keras's; bad arguments."""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import convcore  # noqa: E402
from convcore import layers, ops  # noqa: E402
from core_layers_reference import (DEVICES, assert_fit_matches_keras, assert_gpu_gradients_match_cpu,  # noqa: E402
                                   assert_matches_keras, check_gradients, config_round_trip, copy_keras_weights,
                                   needs_gpu, on_device)

K = keras.layers


def _gelu_tanh_c(x):
    return ops.multiply(x, ops.sigmoid(ops.multiply(x, 1.702)))


def _gelu_tanh_k(x):
    return x * keras.ops.sigmoid(x * 1.702)


# id: (convcore layer, Keras layer, input shape with batch)
CASES = {
    "dense": (lambda **d: layers.Dense(4, **d), lambda: K.Dense(4, bias_initializer="random_normal"), (5, 3)),
    "dense_relu": (lambda **d: layers.Dense(3, activation="relu", **d),
                   lambda: K.Dense(3, activation="relu", bias_initializer="random_normal"), (5, 6)),
    "dense_tanh_nobias": (lambda **d: layers.Dense(3, activation="tanh", use_bias=False, **d),
                          lambda: K.Dense(3, activation="tanh", use_bias=False), (5, 6)),
    "dense_rank3_softmax": (lambda **d: layers.Dense(4, activation="softmax", **d),
                            lambda: K.Dense(4, activation="softmax", bias_initializer="random_normal"), (2, 3, 5)),
    "dense_elu": (lambda **d: layers.Dense(2, activation="elu", **d),
                  lambda: K.Dense(2, activation="elu", bias_initializer="random_normal"), (4, 3)),
    "dense_sigmoid": (lambda **d: layers.Dense(2, activation="sigmoid", **d),
                      lambda: K.Dense(2, activation="sigmoid", bias_initializer="random_normal"), (4, 3)),
    "activation_tanh": (lambda **d: layers.Activation("tanh", **d), lambda: K.Activation("tanh"), (3, 4, 2)),
    "activation_none": (lambda **d: layers.Activation(None, **d), lambda: K.Activation(None), (3, 4)),
    "activation_softmax": (lambda **d: layers.Activation("softmax", **d), lambda: K.Activation("softmax"), (3, 5)),
    "activation_callable": (lambda **d: layers.Activation(_gelu_tanh_c, **d), lambda: K.Activation(_gelu_tanh_k),
                            (3, 5)),
    "flatten": (lambda **d: layers.Flatten(**d), lambda: K.Flatten(), (2, 3, 4, 2)),
    "flatten_channels_first": (lambda **d: layers.Flatten(data_format="channels_first", **d),
                               lambda: K.Flatten(data_format="channels_first"), (2, 3, 4, 2)),
    "flatten_rank1": (lambda **d: layers.Flatten(data_format="channels_first", **d),
                      lambda: K.Flatten(data_format="channels_first"), (2, 5)),
    "reshape": (lambda **d: layers.Reshape((2, -1), **d), lambda: K.Reshape((2, -1)), (3, 4, 3)),
    "reshape_full": (lambda **d: layers.Reshape((6, 2), **d), lambda: K.Reshape((6, 2)), (3, 4, 3)),
}

_KERAS_OUT: dict = {}


def _keras(case):
    if case not in _KERAS_OUT:
        _, kf, shape = CASES[case]
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        kl = kf()
        _KERAS_OUT[case] = (kl, x, np.asarray(kl(x)))
    return _KERAS_OUT[case]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_keras(case, device):
    assert_matches_keras(CASES[case][0](), *_keras(case), device)


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_match_finite_differences(case):
    cf, _, shape = CASES[case]
    layer = cf(dtype="float64")
    x = np.random.default_rng(1).standard_normal(shape)
    layer.build(x.shape[1:])
    layer.built = True
    layer.set_weights([np.random.default_rng(2).standard_normal(w.shape) * 0.5 for w in layer.get_weights()])
    if "relu" in case:  # keep pre-activations away from relu's kink
        z = x @ layer.get_weights()[0] + layer.get_weights()[1]
        assert np.min(np.abs(z)) > 1e-3
    check_gradients(layer, x)


@pytest.mark.parametrize("device", DEVICES)
def test_flatten_an_empty_batch(device):
    for fmt in ("channels_last", "channels_first"):
        want = np.asarray(K.Flatten(data_format=fmt)(np.zeros((0, 3, 4), np.float32)))
        got = on_device(layers.Flatten(data_format=fmt), (3, 4), device)(np.zeros((0, 3, 4), np.float32))
        assert got.shape == want.shape == (0, 12)


@pytest.mark.parametrize("device", DEVICES)
def test_model_of_every_layer_of_the_four_families_saves_and_loads(device, tmp_path):
    """A trained model through every class of the core, normalization, regularization
    and activation families: the saved file reloads to the same predictions (moving
    statistics included) and the same config."""
    m = convcore.Sequential([
        convcore.Input((4, 6)),
        layers.Dense(6, kernel_regularizer="l2", bias_constraint="non_neg"),
        layers.BatchNormalization(axis=1, momentum=0.5), layers.BatchNormalization(),
        layers.LayerNormalization(axis=[1, 2]), layers.GroupNormalization(groups=2),
        layers.RMSNormalization(), layers.UnitNormalization(axis=1), layers.PReLU(shared_axes=[1]),
        layers.LeakyReLU(alpha=0.2), layers.ELU(0.5), layers.ReLU(max_value=2.0, negative_slope=0.1),
        layers.Dropout(0.2, noise_shape=(None, 1, 6), seed=1), layers.SpatialDropout1D(0.2, seed=2),
        layers.GaussianNoise(0.1, seed=3), layers.GaussianDropout(0.1, seed=4), layers.AlphaDropout(0.1, seed=5),
        layers.ActivityRegularization(l1=0.01), layers.Softmax(axis=1), layers.Activation("tanh"),
        layers.Flatten(data_format="channels_first"), layers.Reshape((6, 4)), layers.Flatten(),
        layers.Dense(2, activation="softmax"),
    ])
    m.compile(optimizer=convcore.optimizers.SGD(0.01), loss="categorical_crossentropy", device=device)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((8, 4, 6)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[rng.integers(0, 2, 8)]
    m.fit(x, y, epochs=1, batch_size=4, verbose=0)
    path = str(tmp_path / "families.keras")
    m.save(path)
    again = convcore.models.load_model(path)
    assert again.get_config() == m.get_config()
    # the reloaded model computes on the CPU: equal to a GPU original within float32 rounding
    tol = 0 if device == "cpu" else 1e-5
    np.testing.assert_allclose(np.asarray(again.predict(x, verbose=0)), np.asarray(m.predict(x, verbose=0)),
                               rtol=tol, atol=tol)
    for a, b in zip(again.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(a, b)


def _lambda_c(x):
    return ops.multiply(ops.tanh(x), 2.0)


def test_lambda_matches_keras_and_reloads_by_name():
    x = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
    want = np.asarray(K.Lambda(lambda t: keras.ops.tanh(t) * 2.0)(x))
    for device in DEVICES:
        np.testing.assert_allclose(on_device(layers.Lambda(_lambda_c), (4,), device)(x), want, rtol=1e-5, atol=1e-6)
    lam = layers.Lambda(_lambda_c, name="lam")
    cfg = lam.get_config()
    assert cfg["function"] == "_lambda_c"
    again = layers.Lambda.from_config(cfg, custom_objects={"_lambda_c": _lambda_c})
    np.testing.assert_array_equal(np.asarray(again(x)), np.asarray(lam(x)))
    check_gradients(layers.Lambda(_lambda_c, dtype="float64"), x.astype(np.float64))


@needs_gpu
@pytest.mark.parametrize("case", sorted(CASES))
def test_gpu_gradients_match_cpu(case):
    cf, _, shape = CASES[case]
    assert_gpu_gradients_match_cpu(cf, np.random.default_rng(1).standard_normal(shape).astype(np.float32))


# Activation(callable) is saved by the function's name (test below); Keras saves its code
@pytest.mark.parametrize("case", sorted(c for c in CASES if c != "activation_callable"))
def test_config_round_trip(case):
    kl, x, _ = _keras(case)
    layer = CASES[case][0](name=f"cfg_{case}")
    copy_keras_weights(layer, kl, x.shape[1:])
    config_round_trip(layer, x, keras_layer=kl)


def test_dense_initializers_saved_by_serialize():
    x = np.random.default_rng(3).standard_normal((2, 3)).astype(np.float32)
    init = convcore.initializers.RandomNormal(mean=0.5, stddev=0.0)  # constant 0.5: the round trip is checkable
    d = layers.Dense(2, kernel_initializer=init, bias_initializer="ones", name="d_init")
    cfg = d.get_config()
    assert cfg["kernel_initializer"] == convcore.initializers.serialize(init)
    assert cfg["kernel_initializer"]["class_name"] == "RandomNormal"
    again = layers.Dense.from_config(cfg)
    np.testing.assert_allclose(np.asarray(again(x)), np.repeat(x.sum(axis=1, keepdims=True) * 0.5 + 1.0, 2, axis=1),
                               rtol=1e-6)
    assert again.get_config() == cfg


def test_dense_callable_initializer_saved_by_its_name():
    @convcore.saving.register_keras_serializable(package="core_layers_test")
    def quarter(shape, dtype=None):
        return np.full(shape, 0.25, dtype=dtype)

    d = layers.Dense(2, kernel_initializer=quarter, name="d_quarter")
    saved = d.get_config()["kernel_initializer"]
    assert "quarter" in str(saved) and "glorot" not in str(saved).lower(), saved
    again = layers.Dense.from_config(d.get_config())
    x = np.ones((1, 4), np.float32)
    np.testing.assert_array_equal(np.asarray(again(x)), np.full((1, 2), 1.0, np.float32))


def test_dense_regularizer_losses_match_keras():
    x = np.random.default_rng(4).standard_normal((6, 3)).astype(np.float32)
    args = dict(kernel_regularizer=("l2", 0.01), bias_regularizer=("l1", 0.3), activity_regularizer=("l1_l2", 0.02))

    def reg(mod, kind, f):
        return {"l2": mod.L2(f), "l1": mod.L1(f), "l1_l2": mod.L1L2(l1=f, l2=2 * f)}[kind]

    kl = K.Dense(2, bias_initializer="random_normal", **{k: reg(keras.regularizers, *v) for k, v in args.items()})
    kl(x)
    want = sorted(float(v) for v in kl.losses)
    for device in DEVICES:
        layer = layers.Dense(2, **{k: reg(convcore.regularizers, *v) for k, v in args.items()})
        copy_keras_weights(layer, kl, (3,))
        on_device(layer, (3,), device)(x)
        got = sorted(float(np.asarray(v)) for v in layer.losses)
        assert len(got) == 3
        np.testing.assert_allclose(got, want, rtol=1e-5)


_KERAS_REG_FIT: dict = {}


@pytest.mark.parametrize("device", DEVICES)
def test_fit_with_weight_and_activity_regularizers_matches_keras(device):
    """Two epochs of SGD with an L2 kernel penalty and an L2 activity penalty: the
    weights fit leaves equal Keras's (the penalties enter the training loss as
    Keras's model.losses: weight penalties as they are, activity ones per batch)."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.standard_normal((8, 1)).astype(np.float32)

    def build(M, mod, reg):
        return M.Sequential([M.Input((3,)), mod.Dense(4, activation="tanh", kernel_regularizer=reg.L2(0.05)),
                             mod.Dense(1, activity_regularizer=reg.L2(0.02))])

    assert_fit_matches_keras(lambda: build(keras, K, keras.regularizers),
                             lambda: build(convcore, layers, convcore.regularizers), x, y, device, _KERAS_REG_FIT)


def test_dense_constraints_carried_and_saved():
    d = layers.Dense(2, kernel_constraint="non_neg", bias_constraint=convcore.constraints.MaxNorm(2.0), name="dc")
    d.build((3,))
    assert isinstance(d.kernel.constraint, convcore.constraints.NonNeg)
    assert isinstance(d.bias.constraint, convcore.constraints.MaxNorm)
    kd = K.Dense(2, kernel_constraint="non_neg", bias_constraint=keras.constraints.MaxNorm(2.0))
    cfg, kcfg = d.get_config(), kd.get_config()
    for key in ("kernel_constraint", "bias_constraint"):
        assert cfg[key]["class_name"] == kcfg[key]["class_name"]
        assert cfg[key]["config"] == kcfg[key]["config"]
    again = layers.Dense.from_config(cfg)
    again.build((3,))
    assert again.get_config() == cfg and isinstance(again.bias.constraint, convcore.constraints.MaxNorm)


def test_activation_callable_config_by_name():
    a = layers.Activation(_gelu_tanh_c, name="act_fn")
    assert a.get_config()["activation"] == "_gelu_tanh_c"
    with pytest.raises(ValueError, match="lambda"):
        layers.Activation(lambda t: t).get_config()


@pytest.mark.parametrize("make, err, match", [
    (lambda: layers.Dense(0), ValueError, r"Dense: units must be a positive integer, received units=0"),
    (lambda: layers.Dense(2.5), ValueError, r"received units=2.5"),
    (lambda: layers.Dense(2, use_bias="yes"), TypeError, r"Dense: use_bias must be True or False"),
    (lambda: layers.Dense(2, activation="nope"), ValueError, r"Unknown activation 'nope'; valid activations"),
    (lambda: layers.Dense(2, kernel_initializer="nope"), ValueError, r"nope"),
    (lambda: layers.Dense(2, quantization_config={"mode": "int8"}), ValueError,
     r"Dense: quantization is not supported"),
    (lambda: layers.Dense(2, lora_rank=4), ValueError, r"Dense: LoRA .* not supported"),
    (lambda: layers.Flatten(data_format="NCHW"), ValueError, r"Flatten: data_format must be one of 'channels_last'"),
    (lambda: layers.Lambda(_lambda_c, mask=_lambda_c), ValueError, r"Lambda: masks are not supported"),
])
def test_bad_arguments(make, err, match):
    with pytest.raises(err, match=match):
        make()


def config_instances():
    """One instance per class of this family (the suite's config-coverage test)."""
    return [layers.Dense(3, activation="relu", name="cfg_dense_core"),
            layers.Activation("tanh", name="cfg_act_core"),
            layers.Flatten(data_format="channels_first", name="cfg_flat_cf")]
