"""Reshaping layers (ZeroPadding1D/2D/3D, Cropping1D/2D/3D, UpSampling1D/2D/3D, Permute,
RepeatVector, Identity) against real Keras 3 (jax, CPU) for the same inputs: outputs on
the CPU and the GPU (float32, rtol 1e-5), output shapes, config keys; float64 central
finite differences for the gradients; config round trips; Keras-style errors."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402  (the reference)

from convcore import Input, Model, layers  # noqa: E402
from layer_reference import (DEVICES, check_gpu_gradients, check_gradients, config_round_trip,  # noqa: E402
                             needs_gpu, run)

# (class name, constructor arguments (the same for both libraries), input shape with batch)
CASES = [
    ("ZeroPadding1D", {}, (2, 4, 3)),
    ("ZeroPadding1D", {"padding": (0, 2)}, (2, 4, 3)),
    ("ZeroPadding2D", {}, (2, 3, 4, 2)),
    ("ZeroPadding2D", {"padding": 2}, (1, 2, 3, 1)),
    ("ZeroPadding2D", {"padding": ((1, 0), (0, 3))}, (2, 3, 2, 2)),
    ("ZeroPadding3D", {}, (1, 2, 3, 2, 2)),
    ("ZeroPadding3D", {"padding": (1, 0, 2)}, (1, 2, 2, 3, 1)),
    ("ZeroPadding3D", {"padding": ((0, 1), (2, 0), (1, 1))}, (2, 2, 2, 2, 1)),
    ("Cropping1D", {}, (2, 5, 3)),
    ("Cropping1D", {"cropping": (0, 2)}, (2, 5, 3)),
    ("Cropping1D", {"cropping": 1}, (1, 4, 2)),
    ("Cropping2D", {}, (2, 3, 4, 2)),
    ("Cropping2D", {"cropping": 1}, (2, 4, 5, 2)),
    ("Cropping2D", {"cropping": ((1, 0), (0, 2))}, (2, 4, 5, 1)),
    ("Cropping2D", {"cropping": ((0, 1), (2, 1))}, (1, 4, 5, 2)),
    ("Cropping3D", {}, (1, 4, 3, 5, 2)),
    ("Cropping3D", {"cropping": (1, 0, 2)}, (2, 3, 2, 5, 1)),
    ("Cropping3D", {"cropping": ((0, 1), (1, 0), (0, 0))}, (1, 3, 3, 3, 2)),
    ("UpSampling1D", {}, (2, 3, 2)),
    ("UpSampling1D", {"size": 3}, (1, 4, 2)),
    ("UpSampling2D", {}, (2, 3, 4, 2)),
    ("UpSampling2D", {"size": (1, 3)}, (1, 2, 3, 1)),
    ("UpSampling2D", {"size": (2, 3), "interpolation": "bilinear"}, (2, 3, 4, 2)),
    ("UpSampling2D", {"size": 2, "interpolation": "bicubic"}, (1, 4, 3, 2)),
    ("UpSampling2D", {"size": (3, 2), "interpolation": "lanczos3"}, (1, 3, 4, 1)),
    ("UpSampling2D", {"size": (2, 2), "interpolation": "lanczos5"}, (1, 3, 3, 1)),
    ("UpSampling3D", {}, (1, 2, 3, 2, 2)),
    ("UpSampling3D", {"size": (1, 3, 2)}, (2, 2, 2, 2, 1)),
    ("Permute", {"dims": (2, 1)}, (2, 3, 4)),
    ("Permute", {"dims": (3, 1, 2)}, (2, 2, 3, 4)),
    ("Permute", {"dims": (1, 2, 3)}, (1, 2, 3, 2)),
    ("RepeatVector", {"n": 3}, (2, 4)),
    ("Identity", {}, (2, 3, 2)),
]
IDS = [f"{c}-{i}" for i, (c, _, _) in enumerate(CASES)]


def _input(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


_KERAS = {}


def keras_reference(i):
    """(output, output shape, config) of the Keras layer of case ``i`` (computed once)."""
    if i not in _KERAS:
        name, kw, shape = CASES[i]
        k = getattr(keras.layers, name)(**kw)
        y = np.asarray(k(_input(shape)))
        _KERAS[i] = (y, tuple(k.compute_output_shape((None,) + shape[1:])), k.get_config())
    return _KERAS[i]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_matches_keras(i, device):
    name, kw, shape = CASES[i]
    want, want_shape, _ = keras_reference(i)
    layer = getattr(layers, name)(**kw)
    got = run(layer, _input(shape), device)
    assert got.dtype == np.float32 and got.shape == want.shape
    # interpolating kernels sum products: an absolute floor of 1e-6 on values of order 1
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert (None,) + layer.compute_output_shape(shape[1:]) == want_shape


@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_config_matches_keras_and_round_trips(i):
    name, kw, shape = CASES[i]
    _, _, keras_cfg = keras_reference(i)
    layer = getattr(layers, name)(**kw)
    cfg = layer.get_config()
    assert set(cfg) == set(keras_cfg)
    for key in set(cfg) - {"name", "dtype", "trainable"}:  # Keras's tuples are lists here (JSON)
        assert cfg[key] == _lists(keras_cfg[key]), key
    config_round_trip(layer, _input(shape))


def _lists(v):
    return [_lists(e) for e in v] if isinstance(v, (list, tuple)) else v


@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_gradients_match_finite_differences(i):
    name, kw, shape = CASES[i]
    layer = getattr(layers, name)(dtype="float64", **kw)
    check_gradients(layer, [np.random.default_rng(i).standard_normal((1,) + shape[1:])])  # one sample: FD cost


def test_functional_model_runs_the_layers():
    inp = Input((4, 5, 2))
    y = layers.ZeroPadding2D(((1, 0), (0, 1)))(inp)
    y = layers.Cropping2D(((0, 1), (1, 0)))(y)
    y = layers.UpSampling2D((2, 1))(y)
    y = layers.Permute((3, 1, 2))(y)
    m = Model(inp, layers.Identity()(y))
    assert m.output_shape == (None, 2, 8, 5)
    x = _input((3, 4, 5, 2))
    want = np.transpose(np.repeat(np.pad(x, ((0, 0), (1, 0), (0, 1), (0, 0)))[:, :-1, 1:], 2, axis=1), (0, 3, 1, 2))
    np.testing.assert_array_equal(m.predict(x), want)


def test_repeat_vector_in_a_sequence_model():
    inp = Input((3,))
    m = Model(inp, layers.UpSampling1D(2)(layers.RepeatVector(2)(inp)))
    x = _input((2, 3))
    np.testing.assert_array_equal(m.predict(x), np.repeat(x[:, None, :], 4, axis=1))


@pytest.mark.parametrize("make, error, words", [
    (lambda: layers.ZeroPadding2D(padding=(1, 2, 3)), ValueError, ["ZeroPadding2D", "padding", "(1, 2, 3)"]),
    (lambda: layers.ZeroPadding2D(padding=-1), ValueError, ["ZeroPadding2D", "non-negative", "padding=-1"]),
    (lambda: layers.ZeroPadding1D(padding=(1, 2.5)), ValueError, ["ZeroPadding1D", "pair of ints", "2.5"]),
    (lambda: layers.ZeroPadding3D(padding=((1, 1), (1, 1))), ValueError, ["ZeroPadding3D", "3 pairs"]),
    (lambda: layers.Cropping2D(cropping=((1, 2), (3, -1))), ValueError, ["Cropping2D", "non-negative", "-1"]),
    (lambda: layers.Cropping1D(cropping="1"), ValueError, ["Cropping1D", "cropping", "'1'"]),
    (lambda: layers.Cropping3D(data_format="channels_first"), ValueError, ["Cropping3D", "channels_last",
                                                                             "channels_first"]),
    (lambda: layers.UpSampling1D(size=2.0), TypeError, ["UpSampling1D", "size=2.0"]),
    (lambda: layers.UpSampling1D(size=0), ValueError, ["UpSampling1D", "positive", "size=0"]),
    (lambda: layers.UpSampling2D(interpolation="area"), ValueError, ["UpSampling2D", "'bicubic'", "'area'"]),
    (lambda: layers.UpSampling3D(size=(2, 2)), ValueError, ["UpSampling3D", "size", "(2, 2)"]),
    (lambda: layers.Permute((1, 3)), ValueError, ["Permute", "permutation of 1..2", "(1, 3)"]),
    (lambda: layers.Permute((0, 1)), ValueError, ["Permute", "(0, 1)"]),
    (lambda: layers.Permute("12"), TypeError, ["Permute", "dims", "'12'"]),
    (lambda: layers.RepeatVector(n=2.0), TypeError, ["RepeatVector", "n=2.0"]),
    (lambda: layers.RepeatVector(n=0), ValueError, ["RepeatVector", "positive", "n=0"]),
])
def test_bad_arguments_are_refused_at_construction(make, error, words):
    with pytest.raises(error) as e:
        make()
    for w in words:
        assert w in str(e.value), (w, str(e.value))


@pytest.mark.parametrize("layer, shape, words", [
    (lambda: layers.Cropping1D((2, 3)), (2, 5, 1), ["Cropping1D", "smaller", "(None, 5, 1)", "[2, 3]"]),
    (lambda: layers.Cropping2D(((1, 1), (2, 2))), (2, 3, 4, 1), ["Cropping2D", "smaller", "(None, 3, 4, 1)"]),
    (lambda: layers.Permute((2, 1)), (2, 3, 4, 5), ["rank 3", "(None, 3, 4, 5)"]),
    (lambda: layers.ZeroPadding2D(), (2, 3, 4), ["rank 4", "(None, 3, 4)"]),
    (lambda: layers.RepeatVector(2), (2, 3, 4), ["rank 2", "(None, 3, 4)"]),
])
def test_inputs_of_the_wrong_shape_are_value_errors(layer, shape, words):
    for call in (lambda l: l(np.zeros(shape, np.float32)), lambda l: l(Input(shape[1:]))):
        with pytest.raises(ValueError) as e:
            call(layer())
        for w in words:
            assert w in str(e.value), (w, str(e.value))


def config_instances():
    """One instance per class, for test_nn_layers' every-layer-has-a-config check."""
    return [layers.ZeroPadding1D((1, 2)), layers.ZeroPadding2D(((1, 0), (2, 3))), layers.ZeroPadding3D(2),
            layers.Cropping1D(1), layers.Cropping2D(((1, 0), (0, 2))), layers.Cropping3D((1, 0, 1)),
            layers.UpSampling1D(3), layers.UpSampling2D((2, 3), interpolation="bicubic"),
            layers.UpSampling3D((1, 2, 2)), layers.Permute((2, 1)), layers.RepeatVector(2), layers.Identity()]


def test_reshaping_model_saves_and_loads(tmp_path):
    import convcore
    inp = Input((3, 4, 2))
    y = layers.UpSampling2D((2, 1), interpolation="lanczos5")(layers.ZeroPadding2D(((0, 1), (2, 0)))(inp))
    y = layers.Permute((2, 1, 3))(layers.Cropping2D(((1, 0), (0, 1)))(y))
    m = Model(inp, layers.Identity()(y))
    path = str(tmp_path / "reshape.keras")
    m.save(path)
    again = convcore.models.load_model(path)
    x = _input((2, 3, 4, 2))
    np.testing.assert_array_equal(again.predict(x, verbose=0), m.predict(x, verbose=0))


@needs_gpu
@pytest.mark.parametrize("layer, shape", [
    (lambda: layers.UpSampling1D(3), (2, 4, 3)), (lambda: layers.UpSampling3D((2, 1, 3)), (1, 2, 3, 2, 2)),
    (lambda: layers.RepeatVector(4), (2, 3)), (lambda: layers.UpSampling2D(2, interpolation="bicubic"), (1, 3, 4, 2)),
    (lambda: layers.Permute((2, 1)), (2, 3, 4)),
], ids=["UpSampling1D", "UpSampling3D", "RepeatVector", "UpSampling2D-bicubic", "Permute"])
def test_gpu_runs_without_host_fallback(layer, shape):
    """Repeats are broadcasts and the wide kernels dense products: native on the GPU,
    forward and backward."""
    import convcore
    from convcore import device, ops
    x = ops.convert_to_tensor(_input(shape), device="gpu")
    before = device.host_fallbacks()
    with convcore.GradientTape() as tape:
        tape.watch(x)
        loss = ops.sum(ops.square(layer()(x)))
    g = tape.gradient(loss, x)
    assert device.host_fallbacks() == before and g.device == "gpu"


def test_symbolic_inputs_with_unknown_sizes():
    """Inputs with None sizes (Keras's variable-size inputs): the known sizes are
    computed, the unknown ones stay None, and the model runs on any size as Keras's."""
    def build(L, inp):
        y = L.UpSampling2D((2, 1), interpolation="bicubic")(L.ZeroPadding2D(((1, 0), (0, 2)))(inp))
        return L.Cropping2D(((0, 1), (1, 0)))(y)
    inp = Input((None, None, 2))
    y = build(layers, inp)
    assert y.shape == (None, None, None, 2)
    m = Model(inp, y)
    k_inp = keras.Input((None, None, 2))
    k = keras.Model(k_inp, build(keras.layers, k_inp))
    for shape in ((1, 3, 4, 2), (2, 2, 5, 2)):
        x = _input(shape)
        np.testing.assert_allclose(m.predict(x, verbose=0), k.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert layers.Permute((2, 1))(Input((None, 3))).shape == (None, 3, None)
    assert layers.UpSampling3D()(Input((None, 2, None, 1))).shape == (None, None, 4, None, 1)


@needs_gpu
@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_gpu_gradients_equal_cpu(i):
    name, kw, shape = CASES[i]
    check_gpu_gradients(lambda: getattr(layers, name)(**kw), [_input(shape, seed=i)])
