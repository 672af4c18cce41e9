"""Merging layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot)
and their functional forms against real Keras 3 (jax, CPU) for the same inputs: outputs
on the CPU and the GPU (float32, rtol 1e-5), output shapes (with Keras's broadcasting of
sizes 1 and of lower ranks), config keys; float64 central finite differences for the
gradient of every input; config round trips; functional models; Keras-style errors
naming both shapes."""
from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402  (the reference)

from convcore import Input, Model, layers  # noqa: E402
from layer_reference import (DEVICES, check_gpu_gradients, check_gradients, config_round_trip,  # noqa: E402
                             needs_gpu, run)

# (class name, constructor arguments, input shapes with the batch axis)
CASES = [
    ("Add", {}, [(2, 3, 4), (2, 3, 4)]),
    ("Add", {}, [(2, 3, 1), (2, 1, 4), (2, 3, 4)]),
    ("Add", {}, [(2, 4), (2, 3, 4)]),
    ("Subtract", {}, [(2, 3, 4), (2, 3, 4)]),
    ("Subtract", {}, [(2, 3, 1), (2, 1, 4)]),
    ("Subtract", {}, [(2, 3, 4), (2, 4)]),
    ("Multiply", {}, [(2, 3), (2, 3)]),
    ("Multiply", {}, [(2, 1, 4), (2, 3, 1), (2, 3, 4)]),
    ("Average", {}, [(2, 3), (2, 3), (2, 3)]),
    ("Average", {}, [(2, 2, 3), (2, 3)]),
    ("Maximum", {}, [(2, 3, 2), (2, 3, 2)]),
    ("Maximum", {}, [(2, 1, 2), (2, 3, 1), (2, 3, 2)]),
    ("Minimum", {}, [(2, 4), (2, 4), (2, 4)]),
    ("Minimum", {}, [(2, 3, 4), (2, 1, 4)]),
    ("Concatenate", {}, [(2, 3, 4), (2, 3, 2)]),
    ("Concatenate", {"axis": 1}, [(2, 3, 4), (2, 1, 4), (2, 2, 4)]),
    ("Concatenate", {"axis": -2}, [(2, 2, 3, 2), (2, 2, 1, 2)]),
    ("Dot", {"axes": 1}, [(2, 3), (2, 3)]),
    ("Dot", {"axes": -1}, [(2, 3, 4), (2, 5, 4)]),
    ("Dot", {"axes": (1, 2)}, [(2, 3, 5), (2, 4, 3)]),
    ("Dot", {"axes": (2, 1)}, [(2, 3, 4), (2, 4, 2)]),
    ("Dot", {"axes": (1, 2)}, [(2, 4), (2, 3, 4)]),
    ("Dot", {"axes": 1, "normalize": True}, [(2, 3), (2, 3)]),
    ("Dot", {"axes": (2, 1), "normalize": True}, [(2, 2, 3), (2, 3, 2)]),
    ("Dot", {"axes": 2}, [(2, 3, 2, 4), (2, 2, 2)]),
]
IDS = [f"{c}-{i}" for i, (c, _, _) in enumerate(CASES)]


def _inputs(shapes, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


_KERAS = {}


def keras_reference(i):
    """(output, output shape, config) of the Keras layer of case ``i`` (computed once)."""
    if i not in _KERAS:
        name, kw, shapes = CASES[i]
        k = getattr(keras.layers, name)(**kw)
        y = np.asarray(k(_inputs(shapes)))
        _KERAS[i] = (y, tuple(k.compute_output_shape([(None,) + s[1:] for s in shapes])), k.get_config())
    return _KERAS[i]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_matches_keras(i, device):
    name, kw, shapes = CASES[i]
    want, want_shape, _ = keras_reference(i)
    layer = getattr(layers, name)(**kw)
    got = run(layer, _inputs(shapes), device)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # Dot sums products: absolute floor 1e-6
    assert (None,) + layer.compute_output_shape([s[1:] for s in shapes]) == want_shape


@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_config_matches_keras_and_round_trips(i):
    name, kw, shapes = CASES[i]
    _, _, keras_cfg = keras_reference(i)
    layer = getattr(layers, name)(**kw)
    cfg = layer.get_config()
    assert set(cfg) == set(keras_cfg)
    for key in set(cfg) - {"name", "dtype", "trainable"}:
        want = keras_cfg[key]
        assert cfg[key] == (list(want) if isinstance(want, tuple) else want), key
    config_round_trip(layer, _inputs(shapes))


@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_gradients_match_finite_differences(i):
    name, kw, shapes = CASES[i]
    layer = getattr(layers, name)(dtype="float64", **kw)
    check_gradients(layer, _inputs(shapes, seed=i + 1, dtype=np.float64), multi=True)


FUNCTIONAL = [("add", {}), ("subtract", {}), ("multiply", {}), ("average", {}), ("maximum", {}),
              ("minimum", {}), ("concatenate", {"axis": 1}), ("dot", {"axes": -1}),
              ("dot", {"axes": 1, "normalize": True})]


@pytest.mark.parametrize("fn, kw", FUNCTIONAL, ids=[f for f, _ in FUNCTIONAL])
def test_functional_form_builds_a_model(fn, kw):
    a, b = Input((3,)), Input((3,))
    y = getattr(layers, fn)([a, b], **kw)
    m = Model([a, b], layers.Dense(2, kernel_initializer="ones")(y))
    xs = _inputs([(4, 3), (4, 3)], seed=5)
    want = np.asarray(getattr(keras.layers, fn)(xs, **kw)).sum(axis=-1, keepdims=True).repeat(2, axis=-1)
    np.testing.assert_allclose(m.predict(xs), want, rtol=1e-5, atol=1e-6)
    merge = m.layers[2]
    assert merge.name == y.node.layer.name and type(merge).__name__.lower() == fn


def test_functional_form_passes_layer_arguments():
    a, b = Input((2, 3)), Input((2, 3))
    y = layers.add([a, b], name="the_sum")
    assert y.node.layer.name == "the_sum" and y.shape == (None, 2, 3)
    y = layers.dot([a, b], axes=(2, 2), normalize=True, name="cos")
    assert y.node.layer.get_config()["axes"] == [2, 2] and y.node.layer.normalize and y.shape == (None, 2, 2)


@pytest.mark.parametrize("device", DEVICES)
def test_residual_model_trains_on_both_devices(device):
    import convcore
    convcore.set_seed(0)
    inp = Input((4,))
    h = layers.Dense(4)(inp)
    out = layers.Dense(1)(layers.average([layers.subtract([h, inp]), layers.multiply([h, inp])]))
    m = Model(inp, out)
    m.compile(optimizer="sgd", loss="mse", device=device)
    x = _inputs([(8, 4)], seed=3)[0]
    y = x.sum(axis=1, keepdims=True)
    before = m.evaluate(x, y, verbose=0)
    m.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert m.evaluate(x, y, verbose=0) < before


@pytest.mark.parametrize("layer, shapes, error, words", [
    (lambda: layers.Add(), [(2, 3), (2, 4)], ValueError, ["Add", "incompatible", "[(3,), (4,)]",
                                                           "(3,) and (4,) do not broadcast"]),
    (lambda: layers.Multiply(), [(2, 3, 2), (2, 2, 3)], ValueError, ["(3, 2) and (2, 3) do not"]),
    (lambda: layers.Maximum(), [(2, 3, 1), (2, 1, 2), (2, 3, 3)], ValueError, ["[(3, 1), (1, 2), (3, 3)]",
                                                                                "(3, 2) and (3, 3) do not"]),
    (lambda: layers.Subtract(), [(2, 3)] * 3, ValueError, ["Subtract", "exactly 2", "received 3"]),
    (lambda: layers.Dot(axes=1), [(2, 3), (2, 4)], ValueError, ["Dot", "3 (at axis 1) != 4 (at axis 1)",
                                                                 "(None, 3)", "(None, 4)"]),
    (lambda: layers.Dot(axes=(1, 2)), [(2, 3, 4), (2, 3)], ValueError, ["Dot", "axes", "(None, 3)"]),
    (lambda: layers.Dot(axes=1), [(2, 3)] * 3, ValueError, ["Dot", "2 inputs"]),
    (lambda: layers.Concatenate(), [(2, 3, 4), (2, 2, 4)], ValueError, ["Concatenate", "(None, 3, 4)",
                                                                         "(None, 2, 4)"]),
    (lambda: layers.Concatenate(axis=0), [(2, 3), (2, 3)], ValueError, ["Concatenate", "axis 0"]),
])
def test_incompatible_inputs_are_value_errors(layer, shapes, error, words):
    """Both on arrays and on symbolic inputs (where the functional model is built)."""
    for call in (lambda l: l([np.zeros(s, np.float32) for s in shapes]), lambda l: l([Input(s[1:]) for s in shapes])):
        with pytest.raises(error) as e:
            call(layer())
        for w in words:
            assert w in str(e.value), (w, str(e.value))


@pytest.mark.parametrize("cls", ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate"])
def test_a_merge_of_one_input_is_a_value_error(cls):
    """tf.keras 2's rule, kept where Keras 3 would pass the one input through."""
    for x in ([np.zeros((2, 3), np.float32)], [Input((3,))]):
        with pytest.raises(ValueError, match="(at least two|exactly 2) inputs, received 1"):
            getattr(layers, cls)()(x)


def test_merging_one_tensor_instead_of_a_list_is_a_value_error():
    for cls in (layers.Add, layers.Maximum, layers.Concatenate):
        with pytest.raises(ValueError, match="list of inputs"):
            cls()(np.zeros((2, 3), np.float32))


def test_different_batch_sizes_are_value_errors():
    with pytest.raises(ValueError, match=r"different batch sizes.*\(2, 3\).*\(3, 3\)"):
        layers.Add()([np.zeros((2, 3), np.float32), np.zeros((3, 3), np.float32)])


@pytest.mark.parametrize("make, error, words", [
    (lambda: layers.Dot(axes=(1, 2, 3)), ValueError, ["Dot", "axes=(1, 2, 3)"]),
    (lambda: layers.Dot(axes="1"), TypeError, ["Dot", "axes='1'"]),
    (lambda: layers.Dot(axes=(1, 1.5)), ValueError, ["Dot", "integers", "axes=(1, 1.5)"]),
    (lambda: layers.Dot(axes=1, normalize="yes"), TypeError, ["Dot", "normalize='yes'"]),
    (lambda: layers.Concatenate(axis=1.0), TypeError, ["Concatenate", "axis"]),
])
def test_bad_arguments_are_refused_at_construction(make, error, words):
    with pytest.raises(error) as e:
        make()
    for w in words:
        assert w in str(e.value), (w, str(e.value))


def config_instances():
    """One instance per class, for test_nn_layers' every-layer-has-a-config check."""
    return [layers.Add(), layers.Subtract(), layers.Multiply(), layers.Average(), layers.Maximum(),
            layers.Minimum(), layers.Concatenate(axis=1), layers.Dot(axes=(1, 2), normalize=True)]


def test_merge_model_saves_and_loads(tmp_path):
    import convcore
    a, b = Input((3,)), Input((2, 3))
    y = layers.concatenate([layers.maximum([a, b]), layers.subtract([b, a]), layers.dot([b, b], axes=2)], axis=-1)
    m = Model([a, b], y)
    path = str(tmp_path / "merge.keras")
    m.save(path)
    again = convcore.models.load_model(path)
    xs = _inputs([(3, 3), (3, 2, 3)], seed=8)
    assert again.output_shape == (None, 2, 8)
    np.testing.assert_array_equal(again.predict(xs, verbose=0), m.predict(xs, verbose=0))


@pytest.mark.parametrize("device", DEVICES)
def test_dot_normalize_of_tiny_and_zero_vectors_matches_keras(device):
    """keras.ops.normalize floors the norm at 1e-7: vectors of norm ~1e-5 are still
    normalized, a zero vector gives 0 (not NaN)."""
    x = _inputs([(3, 4), (3, 4)], seed=11)
    x = [x[0] * np.float32(1e-5), x[1]]
    x[0][2] = 0.0
    want = np.asarray(keras.layers.Dot(axes=1, normalize=True)(x))
    got = run(layers.Dot(axes=1, normalize=True), x, device)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert got[2, 0] == 0.0


NONFINITE = [("Maximum", {}), ("Minimum", {}), ("Average", {}), ("Multiply", {}), ("Dot", {"axes": 1}),
             ("Dot", {"axes": 1, "normalize": True})]
_NONFINITE_KERAS = {}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("i", range(len(NONFINITE)), ids=[f"{n}-{i}" for i, (n, _) in enumerate(NONFINITE)])
def test_nan_and_inf_as_in_keras(i, device):
    name, kw = NONFINITE[i]
    xs = _inputs([(3, 4), (3, 4)], seed=13)
    xs[0][0, 1], xs[1][1, 2], xs[0][2, 3], xs[1][2, 0] = np.nan, np.inf, -np.inf, np.nan
    if i not in _NONFINITE_KERAS:
        _NONFINITE_KERAS[i] = np.asarray(getattr(keras.layers, name)(**kw)(xs))
    got = run(getattr(layers, name)(**kw), xs, device)
    np.testing.assert_allclose(got, _NONFINITE_KERAS[i], rtol=1e-5, atol=1e-6, equal_nan=True)


@needs_gpu
@pytest.mark.parametrize("i", range(len(CASES)), ids=IDS)
def test_gpu_gradients_equal_cpu(i):
    name, kw, shapes = CASES[i]
    check_gpu_gradients(lambda: getattr(layers, name)(**kw), _inputs(shapes, seed=i), multi=True)


@needs_gpu
@pytest.mark.parametrize("name, kw, shapes", [
    ("Add", {}, [(2, 3, 1), (2, 1, 4)]), ("Subtract", {}, [(2, 4), (2, 3, 4)]), ("Multiply", {}, [(2, 3), (2, 3)]),
    ("Average", {}, [(2, 3), (2, 3), (2, 3)]), ("Dot", {"axes": 1, "normalize": True}, [(2, 4), (2, 4)]),
    ("Dot", {"axes": (2, 1)}, [(2, 3, 4), (2, 4)]), ("Dot", {"axes": (1, 1), "normalize": True}, [(2, 4), (2, 4, 5)]),
], ids=["Add", "Subtract", "Multiply", "Average", "Dot-cosine", "Dot-matrix-vector", "Dot-vector-matrix"])
def test_gpu_runs_without_host_fallback(name, kw, shapes):
    """Elementwise merges and dot products with a vector on one side are native on the
    GPU, forward and backward (Maximum / Minimum's gradient and a Dot of two matrices
    per sample go through the host fallback)."""
    import convcore
    from convcore import device, ops
    xs = [ops.convert_to_tensor(x, device="gpu") for x in _inputs(shapes, seed=2)]
    before = device.host_fallbacks()
    with convcore.GradientTape() as tape:
        for x in xs:
            tape.watch(x)
        loss = ops.sum(ops.square(getattr(layers, name)(**kw)(xs)))
    grads = tape.gradient(loss, xs)
    assert device.host_fallbacks() == before and all(g.device == "gpu" for g in grads)
