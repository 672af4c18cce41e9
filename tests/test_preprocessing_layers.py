"""Preprocessing layers (Rescaling, Resizing, CenterCrop, Normalization with adapt,
RandomCrop) against real Keras 3 (jax, CPU) for the same inputs and the same adapt data:
outputs on the CPU and the GPU (float32, rtol 1e-5), output shapes, config keys and the
adapted statistics; float64 central finite differences for the gradients; config round
trips (with the adapted weights); RandomCrop's random windows against slices of the
input; Keras-style errors."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402  (the reference)

import convcore  # noqa: E402
from convcore import Input, Model, layers, ops  # noqa: E402
from layer_reference import DEVICES, check_gpu_gradients, check_gradients, needs_gpu, run  # noqa: E402

# (class name, constructor arguments, input shape, adapt data shape or None, call arguments)
CASES = [
    ("Rescaling", {"scale": 1 / 255}, (2, 3, 4, 2), None, {}),
    ("Rescaling", {"scale": 2.0, "offset": -1.0}, (2, 5), None, {}),
    ("Rescaling", {"scale": [0.5, 2.0, -1.0], "offset": [1.0, 0.0, 0.25]}, (2, 2, 2, 3), None, {}),
    ("Resizing", {"height": 3, "width": 4}, (2, 5, 7, 2), None, {}),
    ("Resizing", {"height": 8, "width": 10}, (2, 3, 4, 1), None, {}),
    ("Resizing", {"height": 4, "width": 3, "interpolation": "nearest"}, (1, 7, 5, 2), None, {}),
    ("Resizing", {"height": 9, "width": 7, "interpolation": "nearest"}, (1, 4, 3, 1), None, {}),
    ("Resizing", {"height": 8, "width": 2, "interpolation": "nearest"}, (2, 4, 6, 2), None, {}),  # x2, /3
    ("Resizing", {"height": 3, "width": 9, "interpolation": "nearest"}, (1, 6, 3, 1), None, {}),  # /2, x3
    ("Resizing", {"height": 5, "width": 6, "interpolation": "bicubic"}, (1, 7, 4, 2), None, {}),
    ("Resizing", {"height": 6, "width": 3, "interpolation": "lanczos3"}, (1, 4, 5, 1), None, {}),
    ("Resizing", {"height": 3, "width": 7, "interpolation": "lanczos5"}, (1, 6, 4, 1), None, {}),
    ("Resizing", {"height": 3, "width": 2, "antialias": True}, (1, 7, 6, 2), None, {}),
    ("Resizing", {"height": 2, "width": 3, "interpolation": "bicubic", "antialias": True}, (1, 7, 8, 1), None, {}),
    ("Resizing", {"height": 4, "width": 4, "crop_to_aspect_ratio": True}, (2, 5, 8, 1), None, {}),
    ("Resizing", {"height": 3, "width": 6, "crop_to_aspect_ratio": True}, (1, 6, 5, 2), None, {}),
    ("Resizing", {"height": 4, "width": 4, "pad_to_aspect_ratio": True, "fill_value": 0.5}, (2, 3, 6, 1), None,
     {}),
    ("Resizing", {"height": 6, "width": 2, "pad_to_aspect_ratio": True}, (1, 4, 4, 2), None, {}),
    ("Resizing", {"height": 5, "width": 3}, (4, 6, 2), None, {}),  # one image (height, width, channels)
    ("CenterCrop", {"height": 3, "width": 4}, (2, 6, 5, 1), None, {}),
    ("CenterCrop", {"height": 2, "width": 2}, (1, 5, 4, 3), None, {}),
    ("CenterCrop", {"height": 6, "width": 3}, (2, 4, 4, 2), None, {}),  # smaller: aspect crop + resize
    ("CenterCrop", {"height": 3, "width": 2}, (5, 5, 1), None, {}),
    ("Normalization", {"mean": 2.0, "variance": 4.0}, (2, 3), None, {}),
    ("Normalization", {"mean": [1.0, -1.0, 0.5], "variance": [1.0, 0.25, 9.0]}, (2, 4, 3), None, {}),
    ("Normalization", {"mean": [1.0, -1.0], "variance": [2.0, 0.5], "invert": True}, (3, 2), None, {}),
    ("Normalization", {}, (2, 3), (10, 3), {}),
    ("Normalization", {"axis": None}, (2, 3, 2), (5, 3, 2), {}),
    ("Normalization", {"axis": (1, 2)}, (2, 3, 2), (6, 3, 2), {}),
    ("Normalization", {"axis": -2}, (2, 4, 3), (5, 4, 3), {}),
    ("Normalization", {"invert": True}, (2, 3), (8, 3), {}),
    ("RandomCrop", {"height": 2, "width": 3, "seed": 1}, (2, 4, 5, 1), None, {"training": False}),
    ("RandomCrop", {"height": 6, "width": 3, "seed": 1}, (2, 4, 4, 2), None, {"training": True}),
    ("RandomCrop", {"height": 4, "width": 2, "seed": 1}, (1, 4, 4, 1), None, {"training": True}),
    ("RandomCrop", {"height": 3, "width": 5, "seed": 1}, (1, 5, 4, 1), None, {}),
]
IDS = [f"{c}-{i}" for i, (c, *_) in enumerate(CASES)]


def _array(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _adapt_data(i):
    shape = CASES[i][3]
    return None if shape is None else (_array(shape, seed=100 + i) * 3 + 1).astype(np.float32)


def _make(i, **extra):
    name, kw, _, _, _ = CASES[i]
    layer = getattr(layers, name)(**kw, **extra)
    if _adapt_data(i) is not None:
        layer.adapt(_adapt_data(i) if extra.get("dtype") != "float64" else _adapt_data(i).astype(np.float64))
    return layer


_KERAS = {}


def keras_reference(i):
    """(output, output shape, config, weights) of the Keras layer of case ``i`` (computed once)."""
    if i not in _KERAS:
        name, kw, shape, _, call_kw = CASES[i]
        k = getattr(keras.layers, name)(**kw)
        if _adapt_data(i) is not None:
            k.adapt(_adapt_data(i))
        y = np.asarray(k(_array(shape), **call_kw))
        _KERAS[i] = (y, tuple(k.compute_output_shape((None,) + shape[1:])), k.get_config(),
                     [np.asarray(w) for w in k.weights if w.name in ("mean", "variance")])
    return _KERAS[i]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_matches_keras(i, device):
    name, kw, shape, _, call_kw = CASES[i]
    want, want_shape, _, want_weights = keras_reference(i)
    layer = _make(i)
    got = run(layer, _array(shape), device, **call_kw)
    assert got.dtype == np.float32 and got.shape == want.shape
    # resizing kernels sum products: an absolute floor of 1e-6 on values of order 1
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    if len(shape) == 4 or name not in ("Resizing", "CenterCrop"):  # Keras's shape rule reads a batch as given
        assert (None,) + layer.compute_output_shape(shape[1:]) == want_shape
    for w, k in zip(layer.get_weights(), want_weights):  # the adapted mean and variance
        # known difference: a scalar statistic (axis=None) is stored with shape (1,), not ()
        assert w.shape == (k.shape or (1,))
        np.testing.assert_allclose(w, k.reshape(w.shape), rtol=1e-5, atol=1e-6)
    assert len(layer.get_weights()) == len(want_weights)


@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_config_matches_keras_and_round_trips(i):
    import json
    name, kw, shape, _, call_kw = CASES[i]
    _, _, keras_cfg, _ = keras_reference(i)
    layer = _make(i)
    cfg = layer.get_config()
    assert set(cfg) == set(keras_cfg)
    for key in set(cfg) - {"name", "dtype", "trainable", "seed"}:  # Keras draws a seed when none is given
        want = keras_cfg[key]
        assert cfg[key] == (list(want) if isinstance(want, tuple) else want), key
    assert json.loads(json.dumps(cfg)) == cfg
    again = type(layer).from_config(cfg)
    assert again.get_config() == cfg
    x = _array(shape)
    if layer.weights:  # adapted statistics travel as weights, as in Keras
        run(again, x)
        again.set_weights(layer.get_weights())
    np.testing.assert_array_equal(run(again, x, **call_kw), run(layer, x, **call_kw))


@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_gradients_match_finite_differences(i):
    name, kw, shape, _, call_kw = CASES[i]
    layer = _make(i, dtype="float64")
    x = _array((1,) + shape[1:] if len(shape) == 4 else shape, seed=i, dtype=np.float64)  # one sample: FD cost
    check_gradients(layer, [x], **call_kw)


def test_rescaling_of_uint8_images_is_float():
    x = np.arange(24, dtype=np.uint8).reshape(1, 2, 4, 3) * 10
    y = run(layers.Rescaling(1 / 255), x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, np.asarray(keras.layers.Rescaling(1 / 255)(x)), rtol=1e-6)


def test_resizing_integer_images_round_back_to_their_dtype():
    """(CPU: the GPU holds integer tensors as uint32, so a uint8 image put there clips to
    uint32's range.)"""
    x = np.random.default_rng(3).integers(0, 256, size=(2, 5, 7, 3)).astype(np.uint8)
    x[0, :2] = 255  # bicubic overshoots above 255 next to the edge: clipped as Keras's saturating cast
    for kw in ({"height": 8, "width": 9, "interpolation": "bicubic"},):
        k = keras.layers.Resizing(**kw)
        want, exact = np.asarray(k(x)), np.asarray(k(x.astype(np.float32)))
        got = run(layers.Resizing(**kw), x)
        assert want.dtype == got.dtype == np.uint8
        # values within float32 rounding of a half may round either way
        tie = np.abs(exact - np.floor(exact) - 0.5) < 1e-3
        np.testing.assert_array_equal(got[~tie], want[~tie])
        assert np.all(np.abs(got[tie].astype(int) - want[tie]) <= 1)


def test_normalization_adapts_from_batches_as_from_the_whole_array():
    data = _array((12, 3), seed=7) * 2 + 5
    whole = layers.Normalization()
    whole.adapt(data)
    batched = layers.Normalization()
    batched.adapt(iter([data[:5], data[5:9], data[9:]]))
    for w, v in zip(batched.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(w, v, rtol=1e-5)
    np.testing.assert_allclose(whole.get_weights()[0], data.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(whole.get_weights()[1], data.var(axis=0), rtol=1e-5)
    adapted = ops.convert_to_tensor(data)
    t = layers.Normalization()
    t.adapt(adapted)  # a convcore Tensor
    np.testing.assert_allclose(t.get_weights()[0], whole.get_weights()[0], rtol=1e-6)


def test_random_crop_windows_are_slices_of_the_input_and_repeat_with_the_seed():
    x = _array((3, 6, 7, 2), seed=2)
    offsets = set()
    a, b = layers.RandomCrop(3, 4, seed=5), layers.RandomCrop(3, 4, seed=5)
    for _ in range(12):
        y = run(a, x)  # a direct call trains, as in Keras
        assert y.shape == (3, 3, 4, 2)
        found = [(h, w) for h in range(4) for w in range(4) if np.array_equal(y, x[:, h:h + 3, w:w + 4])]
        assert found, "the output is not a window of the input"
        offsets.add(found[0])
        np.testing.assert_array_equal(run(b, x), y)  # the same seed draws the same windows
    assert len(offsets) > 3  # offsets spread over the 16 possible windows
    np.testing.assert_array_equal(run(a, x, training=False), x)  # inference: unchanged (Keras 3)


@pytest.mark.parametrize("device", DEVICES)
def test_preprocessing_model_fits_and_predicts(device):
    convcore.set_seed(0)
    data = _array((16, 6, 6, 1), seed=4) * 4 + 2
    norm = layers.Normalization(axis=None)
    norm.adapt(data)
    inp = Input((6, 6, 1))
    y = layers.Resizing(4, 4)(layers.CenterCrop(5, 5)(norm(layers.Rescaling(0.5, offset=1.0)(inp))))
    m = Model(inp, layers.Dense(1)(layers.Flatten()(y)))
    m.compile(optimizer="sgd", loss="mse", device=device)
    target = data.reshape(16, -1).mean(axis=1, keepdims=True)
    before = m.evaluate(data, target, verbose=0)
    m.fit(data, target, epochs=3, batch_size=8, verbose=0)
    assert m.evaluate(data, target, verbose=0) < before
    h = (np.asarray(run(layers.CenterCrop(5, 5), (data * 0.5 + 1.0 - norm.get_weights()[0])
                        / np.sqrt(norm.get_weights()[1]))))
    want = run(layers.Resizing(4, 4), h).reshape(16, -1) @ m.layers[-1].get_weights()[0] + m.layers[-1].get_weights()[1]
    np.testing.assert_allclose(m.predict(data, verbose=0), want, rtol=1e-4, atol=1e-5)  # float32 through 5 layers


@pytest.mark.parametrize("make, error, words", [
    (lambda: layers.Rescaling("2"), TypeError, ["Rescaling", "scale", "'2'"]),
    (lambda: layers.Rescaling(1.0, offset=float("nan")), ValueError, ["Rescaling", "offset", "finite"]),
    (lambda: layers.Resizing(0, 3), ValueError, ["Resizing", "height", "height=0"]),
    (lambda: layers.Resizing(3, 2.5), TypeError, ["Resizing", "width", "width=2.5"]),
    (lambda: layers.Resizing(3, 3, interpolation="area"), ValueError, ["Resizing", "'lanczos5'", "'area'"]),
    (lambda: layers.Resizing(3, 3, crop_to_aspect_ratio=True, pad_to_aspect_ratio=True), ValueError,
     ["Resizing", "only one of"]),
    (lambda: layers.Resizing(3, 3, fill_mode="reflect"), ValueError, ["Resizing", "fill_mode='reflect'"]),
    (lambda: layers.Resizing(3, 3, antialias="yes"), TypeError, ["Resizing", "antialias='yes'"]),
    (lambda: layers.CenterCrop(3, -1), ValueError, ["CenterCrop", "width=-1"]),
    (lambda: layers.CenterCrop(3, 3, data_format="channels_first"), ValueError, ["CenterCrop", "channels_first"]),
    (lambda: layers.RandomCrop(3, 3, seed=-2), ValueError, ["RandomCrop", "seed=-2"]),
    (lambda: layers.Normalization(mean=1.0), ValueError, ["Normalization", "both mean and variance"]),
    (lambda: layers.Normalization(mean=[1.0, 2.0], variance=[1.0]), ValueError, ["Normalization", "(2,)", "(1,)"]),
    (lambda: layers.Normalization(mean=[[1.0]], variance=[[1.0]]), ValueError, ["Normalization", "rank of mean"]),
    (lambda: layers.Normalization(mean=0.0, variance=-1.0), ValueError, ["Normalization", "non-negative"]),
    (lambda: layers.Normalization(axis="last"), TypeError, ["Normalization", "axis='last'"]),
])
def test_bad_arguments_are_refused_at_construction(make, error, words):
    with pytest.raises(error) as e:
        make()
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def test_bad_inputs_and_adapt_data_are_clear_errors():
    with pytest.raises(ValueError, match=r"Resizing .*\(batch, height, width, channels\).*\(2, 3\)"):
        layers.Resizing(2, 2)(np.zeros((2, 3), np.float32))
    n = layers.Normalization()
    n.adapt(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"built for inputs of shape \(None, 3\).*\(4, 2\)"):
        n.adapt(np.ones((4, 2), np.float32))
    with pytest.raises(ValueError, match="batch axis 0"):
        layers.Normalization(axis=0).adapt(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"axis values must be in \[-2, 2\)"):
        layers.Normalization(axis=3)(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"known sizes, received axis=\(1,\) for inputs of shape \(None, None, 3\)"):
        layers.Normalization(axis=1)(Input((None, 3)))
    with pytest.raises(TypeError, match="adapt expects an array"):
        layers.Normalization().adapt(3.0)
    with pytest.raises(ValueError, match="no data"):
        layers.Normalization().adapt(iter([]))
    with pytest.raises(ValueError, match="mean and variance were given"):
        layers.Normalization(mean=0.0, variance=1.0).adapt(np.ones((4, 3), np.float32))


def config_instances():
    """One instance per class, for test_nn_layers' every-layer-has-a-config check."""
    return [layers.Rescaling([1.0, 2.0], offset=0.5), layers.Resizing(3, 4, interpolation="bicubic"),
            layers.CenterCrop(2, 3), layers.Normalization(axis=(1, 2)), layers.RandomCrop(2, 2, seed=3)]


def test_model_saves_and_loads_with_the_adapted_statistics(tmp_path):
    data = _array((8, 5, 5, 2), seed=9) * 2 + 1
    norm = layers.Normalization()
    norm.adapt(data)
    inp = Input((5, 5, 2))
    y = layers.CenterCrop(4, 4)(norm(layers.Rescaling([1.0, 0.5], offset=-0.25)(inp)))
    m = Model(inp, layers.Resizing(3, 2, interpolation="lanczos3", antialias=True)(y))
    path = str(tmp_path / "pre.keras")
    m.save(path)
    again = convcore.models.load_model(path)
    np.testing.assert_array_equal(again.predict(data, verbose=0), m.predict(data, verbose=0))
    for w, v in zip(again.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(w, v)


@needs_gpu
@pytest.mark.parametrize("interpolation, size", [("bilinear", (3, 9)), ("bicubic", (3, 9)), ("lanczos3", (3, 9)),
                                                 ("nearest", (10, 14))])
def test_gpu_resize_runs_without_host_fallback(interpolation, size):
    """The interpolating kernels are dense products on the device, forward and backward;
    'nearest' by integer factors is a broadcast."""
    from convcore import device
    x = ops.convert_to_tensor(_array((2, 5, 7, 3)), device="gpu")
    layer = layers.Resizing(*size, interpolation=interpolation)
    before = device.host_fallbacks()
    with convcore.GradientTape() as tape:
        tape.watch(x)
        loss = ops.sum(ops.square(layer(x)))
    g = tape.gradient(loss, x)
    assert device.host_fallbacks() == before and g.device == "gpu"


NONFINITE = [("Resizing", {"height": 3, "width": 7}),
             ("Resizing", {"height": 8, "width": 10, "interpolation": "nearest"}),
             ("Resizing", {"height": 6, "width": 4, "interpolation": "bicubic", "antialias": True}),
             ("CenterCrop", {"height": 6, "width": 3}), ("Rescaling", {"scale": 0.5, "offset": 1.0}),
             ("Normalization", {"mean": [0.5], "variance": [2.0]})]
_NONFINITE_KERAS = {}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("i", range(len(NONFINITE)), ids=[n for n, _ in NONFINITE])
def test_nan_and_inf_spread_as_in_keras(i, device):
    """A NaN or inf pixel reaches every output whose weights cover it, zero weights
    included (0 * inf is NaN in Keras's einsum too)."""
    name, kw = NONFINITE[i]
    x = _array((1, 4, 5, 1), seed=12)
    x[0, 1, 2, 0], x[0, 3, 0, 0] = np.nan, np.inf
    if i not in _NONFINITE_KERAS:
        _NONFINITE_KERAS[i] = np.asarray(getattr(keras.layers, name)(**kw)(x))
    got = run(getattr(layers, name)(**kw), x, device)
    np.testing.assert_allclose(got, _NONFINITE_KERAS[i], rtol=1e-5, atol=1e-6, equal_nan=True)


def test_tf_keras_2_experimental_preprocessing_path():
    """``tf.keras.layers.experimental.preprocessing.X`` with the prefix changed: the same
    classes, by attribute and by import."""
    from convcore.layers.experimental.preprocessing import Normalization, RandomFlip, Rescaling
    pre = convcore.layers.experimental.preprocessing
    assert Rescaling is pre.Rescaling is layers.Rescaling and Normalization is layers.Normalization
    assert RandomFlip is layers.RandomFlip
    for name in pre.__all__:
        assert getattr(pre, name) is getattr(layers, name), name
    x = _array((2, 3, 3, 1))
    np.testing.assert_array_equal(run(pre.Rescaling(1 / 255.0), x), run(layers.Rescaling(1 / 255.0), x))


@needs_gpu
@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_gpu_gradients_equal_cpu(i):
    name, kw, shape, _, call_kw = CASES[i]
    check_gpu_gradients(lambda: _make(i), [_array(shape, seed=i)], **call_kw)
