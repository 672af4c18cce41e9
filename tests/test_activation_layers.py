"""Activation layers (ReLU, LeakyReLU, PReLU, ELU, Softmax) against real Keras 3 with the
same weights and inputs, on CPU and GPU; gradients against float64 finite differences;
configs against Keras's keys and by behaviour after a round trip; bad arguments."""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from convcore import layers  # noqa: E402
from core_layers_reference import (DEVICES, assert_gpu_gradients_match_cpu, assert_matches_keras,  # noqa: E402
                                   check_gradients, config_round_trip, copy_keras_weights, needs_gpu)

K = keras.layers


def _data(shape, seed=0, kinks=(0.0,)):
    """Normal values kept 0.05 away from the kinks of the function (finite differences
    across a kink are not a derivative)."""
    x = np.random.default_rng(seed).standard_normal(shape) * 1.5
    for k in kinks:
        near = np.abs(x - k) < 0.05
        x[near] = k + 0.1 * np.sign(x[near] - k + 1e-12)
    return x


# id: (convcore layer, Keras layer, input shape with batch, the function's kinks)
CASES = {
    "relu": (lambda **d: layers.ReLU(**d), lambda: K.ReLU(), (3, 4, 5), (0.0,)),
    "relu_max": (lambda **d: layers.ReLU(max_value=1.5, **d), lambda: K.ReLU(max_value=1.5), (3, 4, 5), (0.0, 1.5)),
    "relu_slope": (lambda **d: layers.ReLU(negative_slope=0.1, **d), lambda: K.ReLU(negative_slope=0.1), (3, 4, 5),
                   (0.0,)),
    "relu_all": (lambda **d: layers.ReLU(max_value=1.0, negative_slope=0.2, threshold=0.5, **d),
                 lambda: K.ReLU(max_value=1.0, negative_slope=0.2, threshold=0.5), (3, 4, 5), (0.0, 0.5, 1.0)),
    "relu_threshold": (lambda **d: layers.ReLU(threshold=0.3, **d), lambda: K.ReLU(threshold=0.3), (3, 4, 5),
                       (0.0, 0.3)),
    "relu6": (lambda **d: layers.ReLU(max_value=6.0, **d), lambda: K.ReLU(max_value=6.0), (3, 4, 5), (0.0, 6.0)),
    "leaky": (lambda **d: layers.LeakyReLU(**d), lambda: K.LeakyReLU(), (3, 4, 5), (0.0,)),
    "leaky_slope": (lambda **d: layers.LeakyReLU(negative_slope=0.05, **d), lambda: K.LeakyReLU(negative_slope=0.05),
                    (3, 4, 5), (0.0,)),
    "elu": (lambda **d: layers.ELU(**d), lambda: K.ELU(), (3, 4, 5), (0.0,)),
    "elu_alpha": (lambda **d: layers.ELU(alpha=0.4, **d), lambda: K.ELU(alpha=0.4), (3, 4, 5), (0.0,)),
    "prelu": (lambda **d: layers.PReLU(**d), lambda: K.PReLU(alpha_initializer="random_normal"), (3, 4, 5), (0.0,)),
    "prelu_shared1": (lambda **d: layers.PReLU(shared_axes=[1], **d),
                      lambda: K.PReLU(alpha_initializer="random_normal", shared_axes=[1]), (3, 4, 5), (0.0,)),
    "prelu_shared12": (lambda **d: layers.PReLU(shared_axes=[1, 2], **d),
                       lambda: K.PReLU(alpha_initializer="random_normal", shared_axes=[1, 2]), (2, 3, 4, 2), (0.0,)),
    "prelu_int_axis": (lambda **d: layers.PReLU(shared_axes=2, **d),
                       lambda: K.PReLU(alpha_initializer="random_normal", shared_axes=2), (3, 4, 5), (0.0,)),
    "softmax": (lambda **d: layers.Softmax(**d), lambda: K.Softmax(), (3, 4, 5), ()),
    "softmax_axis1": (lambda **d: layers.Softmax(axis=1, **d), lambda: K.Softmax(axis=1), (3, 4, 5), ()),
    "softmax_axes": (lambda **d: layers.Softmax(axis=[1, 2], **d), lambda: K.Softmax(axis=[1, 2]), (3, 4, 5), ()),
    "softmax_rank2": (lambda **d: layers.Softmax(**d), lambda: K.Softmax(), (4, 7), ()),
}


_KERAS_OUT: dict = {}


def _keras(case):
    """Keras's layer, input and output for a case (once per module)."""
    if case not in _KERAS_OUT:
        _, kf, shape, kinks = CASES[case]
        x = _data(shape, kinks=kinks).astype(np.float32)
        kl = kf()
        y = np.asarray(kl(x))
        _KERAS_OUT[case] = (kl, x, y)
    return _KERAS_OUT[case]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_keras(case, device):
    # float32 on both sides; softmax / elu differ from jax's by a few ulps of exp
    assert_matches_keras(CASES[case][0](), *_keras(case), device)


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_match_finite_differences(case):
    cf, _, shape, kinks = CASES[case]
    layer = cf(dtype="float64")
    x = _data(shape, seed=1, kinks=kinks)
    layer.build(x.shape[1:])
    layer.built = True
    if layer.weights:  # PReLU: alphas away from 0 so the weight gradient is exercised
        layer.set_weights([np.random.default_rng(2).uniform(0.1, 0.5, w.shape) for w in layer.get_weights()])
    check_gradients(layer, x)


@needs_gpu
@pytest.mark.parametrize("case", sorted(CASES))
def test_gpu_gradients_match_cpu(case):
    cf, _, shape, kinks = CASES[case]
    assert_gpu_gradients_match_cpu(cf, _data(shape, seed=1, kinks=kinks).astype(np.float32))


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_round_trip(case):
    kl, x, _ = _keras(case)
    layer = CASES[case][0](name=f"cfg_{case}")
    copy_keras_weights(layer, kl, x.shape[1:])
    config_round_trip(layer, x, keras_layer=kl)


def test_softmax_mask_matches_keras():
    x = _data((2, 3, 5), seed=3).astype(np.float32)
    mask = np.random.default_rng(4).random((2, 3, 5)) > 0.4
    mask[0, 1] = False  # a fully masked row: zeros, as Keras
    mask3 = np.random.default_rng(5).random((1, 5)).astype(np.float32)  # float mask, broadcast (> 0.5 keeps)
    for m in (mask, mask3):
        want = np.asarray(K.Softmax()(x, mask=m))
        for device in DEVICES:
            from convcore import ops
            got = layers.Softmax()(ops.convert_to_tensor(x, device=device), mask=m)
            assert got.device == device
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="mask must be broadcastable"):
        layers.Softmax()(x, mask=np.ones((3, 3), bool))


def test_leaky_relu_alpha_is_tf_keras_2s_name():
    x = _data((2, 6), seed=6).astype(np.float32)
    got = np.asarray(layers.LeakyReLU(alpha=0.07)(x))
    np.testing.assert_allclose(got, np.asarray(K.LeakyReLU(negative_slope=0.07)(x)), rtol=1e-6)
    assert layers.LeakyReLU(alpha=0.07).get_config()["negative_slope"] == 0.07
    with pytest.raises(ValueError, match="alpha .* and negative_slope"):
        layers.LeakyReLU(negative_slope=0.1, alpha=0.2)


def test_prelu_trains_its_alpha():
    import convcore
    from convcore import ops
    layer = layers.PReLU(shared_axes=[1])
    x = -np.abs(_data((8, 3, 2), seed=7)).astype(np.float32)
    layer.build(x.shape[1:])
    before = layer.get_weights()[0].copy()
    assert before.shape == (1, 2) and [w.name for w in layer.trainable_weights] == ["alpha"]
    with convcore.GradientTape() as tape:
        loss = ops.mean(ops.square(ops.add(layer(x, training=True), 1.0)))
    grads = tape.gradient(loss, layer.trainable_weights)
    convcore.optimizers.SGD(0.1).apply_gradients(zip(grads, layer.trainable_weights))
    # d loss / d alpha_c = mean over the channel of 2 (y + 1) * (-relu(-x)) = 2 (1 - a |x|) * -|x| / 24 per entry
    want = before - 0.1 * np.sum(2 * (1 + before * x) * x, axis=(0, 1), keepdims=True)[0] / x.size
    np.testing.assert_allclose(layer.get_weights()[0], want, rtol=1e-5)


@pytest.mark.parametrize("make, match", [
    (lambda: layers.ReLU(max_value=-1.0), r"ReLU: max_value must be .*>= 0.0.*received max_value=-1.0"),
    (lambda: layers.ReLU(negative_slope=-0.1), r"ReLU: negative_slope .*received negative_slope=-0.1"),
    (lambda: layers.ReLU(threshold=None), r"ReLU: threshold cannot be None"),
    (lambda: layers.LeakyReLU(negative_slope=-1), r"LeakyReLU: negative_slope .*received negative_slope=-1"),
    (lambda: layers.PReLU(shared_axes=[0]), r"PReLU: shared_axes entries must be >= 1, got 0"),
    (lambda: layers.Softmax(axis=[]), r"Softmax: axis must be an int or a non-empty list"),
    (lambda: layers.PReLU(alpha_initializer="nope"), r"nope"),
])
def test_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_bad_axes_at_call():
    with pytest.raises(ValueError, match=r"PReLU: shared_axes entries must be input axes 1..2"):
        layers.PReLU(shared_axes=[3])(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"Softmax: axis 3 is out of range for inputs of rank 3"):
        layers.Softmax(axis=3)(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(TypeError, match=r"ELU: alpha must be a real number"):
        layers.ELU(alpha="big")


def config_instances():
    """One instance per class of this family (the suite's config-coverage test)."""
    return [layers.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.2, name="cfg_relu2"),
            layers.LeakyReLU(0.2, name="cfg_leaky"), layers.ELU(0.5, name="cfg_elu"),
            layers.PReLU(shared_axes=[1], name="cfg_prelu"), layers.Softmax(axis=[1, 2], name="cfg_softmax2")]
