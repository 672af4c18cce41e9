"""Pooling layers (local, global, adaptive) against real Keras 3 (jax, CPU): forward
outputs on CPU and GPU (odd sizes with 'same' padding included: Keras 3's TensorFlow-style padding, padded cells
not counted in averages), ``compute_output_shape``, config keys, ``keepdims`` of the
global poolings; gradients against float64 central finite differences; GPU = CPU;
config round trips; Keras's aliases; bad arguments."""
from __future__ import annotations

import functools
import json
import zlib

import numpy as np
import pytest

import keras  # (KERAS_BACKEND=jax is set by conftest)

import convcore
from convcore import layers, ops
from layer_reference import DEVICES, fd_gradients, needs_gpu, tape_gradients

# (id, class name, constructor arguments (the same for Keras and convcore), input shape)
CASES = [
    ("mp1_default", "MaxPooling1D", dict(), (2, 7, 3)),
    ("mp1_same_odd", "MaxPooling1D", dict(pool_size=3, strides=2, padding="same"), (2, 8, 2)),
    ("mp2_default_odd", "MaxPooling2D", dict(), (2, 5, 7, 2)),
    ("mp2_same_odd", "MaxPooling2D", dict(pool_size=(3, 2), strides=(2, 1), padding="same"), (1, 7, 5, 3)),
    ("mp2_same_even_pool", "MaxPooling2D", dict(pool_size=2, strides=3, padding="same"), (1, 8, 7, 2)),
    ("mp3_valid", "MaxPooling3D", dict(pool_size=2, strides=(1, 2, 1)), (1, 4, 5, 3, 2)),
    ("mp3_same", "MaxPooling3D", dict(pool_size=3, strides=2, padding="same"), (1, 5, 4, 5, 1)),
    ("ap1_valid", "AveragePooling1D", dict(pool_size=3, strides=2), (2, 9, 2)),
    ("ap1_same_odd", "AveragePooling1D", dict(pool_size=4, strides=3, padding="same"), (1, 10, 3)),
    ("ap2_same_odd", "AveragePooling2D", dict(pool_size=3, strides=2, padding="same"), (2, 7, 6, 2)),
    ("ap2_valid", "AveragePooling2D", dict(pool_size=(2, 3)), (1, 6, 7, 2)),
    ("ap3_same", "AveragePooling3D", dict(pool_size=2, strides=2, padding="same"), (1, 3, 5, 4, 2)),
    ("gmp1", "GlobalMaxPooling1D", dict(), (2, 6, 3)),
    ("gmp2_keep", "GlobalMaxPooling2D", dict(keepdims=True), (2, 4, 5, 3)),
    ("gmp3", "GlobalMaxPooling3D", dict(), (1, 3, 2, 4, 2)),
    ("gap1_keep", "GlobalAveragePooling1D", dict(keepdims=True), (2, 6, 3)),
    ("gap2", "GlobalAveragePooling2D", dict(), (2, 4, 5, 3)),
    ("gap3_keep", "GlobalAveragePooling3D", dict(keepdims=True), (1, 3, 2, 4, 2)),
    # adaptive: overlapping windows (o does not divide n), repeated cells (o > n), native (o divides n)
    ("aap1_overlap", "AdaptiveAveragePooling1D", dict(output_size=3), (2, 7, 2)),
    ("aap2_mixed", "AdaptiveAveragePooling2D", dict(output_size=(4, 3)), (1, 6, 7, 2)),
    ("aap2_native", "AdaptiveAveragePooling2D", dict(output_size=2), (1, 6, 4, 3)),
    ("aap3_up", "AdaptiveAveragePooling3D", dict(output_size=(2, 4, 1)), (1, 3, 3, 2, 2)),
    ("amp1_up", "AdaptiveMaxPooling1D", dict(output_size=5), (2, 3, 2)),
    ("amp2_overlap", "AdaptiveMaxPooling2D", dict(output_size=(3, 2)), (1, 7, 5, 2)),
    ("amp2_native", "AdaptiveMaxPooling2D", dict(output_size=(3, 2)), (2, 6, 4, 1)),
    ("amp3", "AdaptiveMaxPooling3D", dict(output_size=2), (1, 3, 4, 5, 1)),
]
IDS = [c[0] for c in CASES]
BY_ID = {c[0]: c for c in CASES}

# float32: a max is exact; a mean of up to 27 values differs from Keras's summation
# order by a few ulps of the sum.
RTOL, ATOL = 1e-5, 1e-6


@functools.lru_cache(maxsize=None)
def keras_reference(case_id):
    """(input, Keras's output, Keras's config, Keras's output shape) of a case."""
    _, cls, kw, shape = BY_ID[case_id]
    rng = np.random.default_rng(zlib.crc32(case_id.encode()))
    kl = getattr(keras.layers, cls)(**kw)
    x = rng.standard_normal(shape).astype(np.float32)
    y = np.asarray(kl(x))
    return x, y, kl.get_config(), tuple(kl.compute_output_shape((None,) + shape[1:]))


def ours(case_id, dtype="float32"):
    _, cls, kw, _ = BY_ID[case_id]
    return getattr(layers, cls)(**kw, dtype=dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case_id", IDS)
def test_forward_matches_keras(case_id, device):
    x, want, _, _ = keras_reference(case_id)
    y = ours(case_id)(ops.convert_to_tensor(x, device=device))
    assert y.device == device
    assert y.shape == want.shape
    np.testing.assert_allclose(np.asarray(y), want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case_id", IDS)
def test_output_shape_and_config_keys_match_keras(case_id):
    _, want, kcfg, kshape = keras_reference(case_id)
    shape = BY_ID[case_id][3]
    layer = ours(case_id)
    assert (None,) + tuple(layer.compute_output_shape(shape[1:])) == kshape
    assert kshape[1:] == want.shape[1:]
    assert set(layer.get_config()) == set(kcfg)


@pytest.mark.parametrize("case_id", IDS)
def test_gradient_matches_float64_finite_differences(case_id):
    _, cls, kw, shape = BY_ID[case_id]
    rng = np.random.default_rng(5)
    # a permutation of well separated values: no ties, so the max's gradient is defined
    x = (rng.permutation(int(np.prod(shape))) / 7.0).reshape(shape)
    layer = ours(case_id, "float64")
    y = np.asarray(layer(x))
    r = rng.standard_normal(y.shape)
    got, = tape_gradients(layer, [x], r)
    want, = fd_gradients(lambda a: np.asarray(layer(a[0])), [x], r)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


@needs_gpu
@pytest.mark.parametrize("case_id", IDS)
def test_gpu_equals_cpu_values_and_gradients(case_id):
    x, _, _, _ = keras_reference(case_id)
    got = {}
    for dev in ("cpu", "gpu"):
        xt = ops.convert_to_tensor(x, device=dev)
        with convcore.GradientTape() as tape:
            tape.watch(xt)
            y = ours(case_id)(xt)
            loss = ops.sum(ops.multiply(y, y))
        got[dev] = (np.asarray(y), np.asarray(tape.gradient(loss, xt)))
    for c, g in zip(got["cpu"], got["gpu"]):
        np.testing.assert_allclose(g, c, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case_id", IDS)
def test_config_round_trip_computes_the_same(case_id):
    x, _, _, _ = keras_reference(case_id)
    layer = ours(case_id)
    cfg = layer.get_config()
    assert json.loads(json.dumps(cfg)) == cfg
    again = type(layer).from_config(cfg)
    assert again.get_config() == cfg
    np.testing.assert_array_equal(np.asarray(again(x)), np.asarray(layer(x)))
    assert layers.deserialize(layers.serialize(layer)).get_config() == cfg


@pytest.mark.parametrize("case_id", IDS)
def test_a_keras_config_loads_and_computes_what_keras_computes(case_id):
    """Keras's own ``get_config()`` (with its DTypePolicy dict) builds our layer."""
    x, want, kcfg, _ = keras_reference(case_id)
    layer = getattr(layers, BY_ID[case_id][1]).from_config(kcfg)
    np.testing.assert_allclose(np.asarray(layer(x)), want, rtol=RTOL, atol=ATOL)


def test_none_sizes_in_output_shapes_follow_keras():
    for cls, kw, shape in [("MaxPooling1D", dict(pool_size=3, padding="same"), (None, 3)),
                           ("AveragePooling2D", dict(pool_size=2), (None, 7, 3)),
                           ("GlobalMaxPooling1D", dict(keepdims=True), (None, 4))]:
        want = getattr(keras.layers, cls)(**kw).compute_output_shape((None,) + shape)
        assert (None,) + tuple(getattr(layers, cls)(**kw).compute_output_shape(shape)) == tuple(want), cls


def test_aliases_are_the_keras_classes():
    pairs = [(f"{a}{r}D", f"{c}{r}D") for r in (1, 2, 3) for a, c in [
        ("MaxPool", "MaxPooling"), ("AvgPool", "AveragePooling"), ("GlobalMaxPool", "GlobalMaxPooling"),
        ("GlobalAvgPool", "GlobalAveragePooling")]]
    for alias, cls in pairs:
        assert getattr(layers, alias) is getattr(layers, cls)
        assert getattr(keras.layers, alias) is getattr(keras.layers, cls)  # Keras's own aliases, for the table


@pytest.mark.parametrize("n,o", [(7, 7), (3, 7), (7, 14), (5, 15)])
def test_adaptive_pooling_follows_its_windows_where_keras_3_15_does_not(n, o):
    """Keras 3.15's jax two-pool gather returns NaN / shifted values for some sizes
    (e.g. 7 -> 7 cells; a known difference): our output cell i pools
    [floor(i n / o), ceil((i + 1) n / o)), the definition its docs and PyTorch give."""
    x = np.random.default_rng(n * 100 + o).standard_normal((2, n, 3)).astype(np.float32)
    for cls, reduce in (("AdaptiveAveragePooling1D", np.mean), ("AdaptiveMaxPooling1D", np.max)):
        want = np.stack([reduce(x[:, i * n // o:-(-(i + 1) * n // o)], axis=1) for i in range(o)], axis=1)
        np.testing.assert_allclose(np.asarray(getattr(layers, cls)(o)(x)), want, rtol=1e-6, atol=1e-7)
    k = np.asarray(keras.layers.AdaptiveAveragePooling1D(o)(x))
    assert not np.allclose(k, np.stack([x[:, i * n // o:-(-(i + 1) * n // o)].mean(1) for i in range(o)], 1),
                           equal_nan=False), "Keras now follows the definition: drop this case from the README"


def test_keras_positional_argument_order():
    # Keras 3: MaxPooling2D(pool_size, strides, padding, data_format, name)
    p = layers.MaxPooling2D((3, 2), 1, "same", "channels_last", "p5")
    assert (p.pool_size, p.strides, p.padding, p.name) == ((3, 2), (1, 1), "same", "p5")
    g = layers.GlobalAveragePooling1D("channels_last", True)
    assert g.keepdims is True
    a = layers.AdaptiveMaxPooling2D((2, 3), "channels_last")
    assert a.output_size == (2, 3)


BAD = [
    (lambda: layers.MaxPooling2D(padding="full"), ValueError,
     r"MaxPooling2D: padding must be one of 'valid', 'same', got 'full'"),
    (lambda: layers.AveragePooling1D(2, padding="causal"), ValueError, r"AveragePooling1D: padding must be one of"),
    (lambda: layers.MaxPooling2D(data_format="channels_first"), ValueError,
     r"MaxPooling2D: data_format='channels_first' is not supported; convcore layers are channels_last only"),
    (lambda: layers.GlobalAveragePooling2D(data_format="channels_first"), ValueError,
     r"GlobalAveragePooling2D: data_format='channels_first' is not supported"),
    (lambda: layers.GlobalMaxPooling1D(keepdims="yes"), TypeError,
     r"GlobalMaxPooling1D: keepdims must be True or False, received keepdims='yes'"),
    (lambda: layers.MaxPooling2D((2, 2, 2)), ValueError, r"MaxPooling2D: pool_size must be a positive int or a tuple of 2"),
    (lambda: layers.AveragePooling3D(2, strides=0), ValueError, r"AveragePooling3D: strides must be a positive int"),
    (lambda: layers.AdaptiveAveragePooling2D((2, 2, 2)), TypeError,
     r"AdaptiveAveragePooling2D: output_size must be a positive integer or a tuple of 2 positive integers, "
     r"received output_size=\(2, 2, 2\)"),
    (lambda: layers.AdaptiveMaxPooling1D(0), TypeError, r"AdaptiveMaxPooling1D: output_size must be a positive"),
    (lambda: layers.AdaptiveMaxPooling3D(2, data_format="channels_first"), ValueError,
     r"AdaptiveMaxPooling3D: data_format='channels_first' is not supported"),
    (lambda: layers.MaxPooling2D(3).compute_output_shape((2, 5, 1)), ValueError,
     r"MaxPooling2D: the input's spatial size 2 is smaller than pool_size \(3, 3\) with padding='valid'"),
]


@pytest.mark.parametrize("make,exc,msg", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_arguments_fail_keras_style(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make()


def config_instances():
    """Instances with the new arguments, for the suite's config-coverage test."""
    return [layers.MaxPool2D(3, strides=2, padding="same", data_format="channels_last", name="cfg_mpool2"),
            layers.GlobalAvgPool1D(keepdims=True, name="cfg_gavg1"),
            layers.GlobalMaxPool3D(keepdims=True, name="cfg_gmax3"),
            layers.AdaptiveAveragePooling1D(3, name="cfg_aap1"), layers.AdaptiveAveragePooling2D((2, 3), name="cfg_aap2"),
            layers.AdaptiveAveragePooling3D(2, name="cfg_aap3"), layers.AdaptiveMaxPooling1D(4, name="cfg_amp1"),
            layers.AdaptiveMaxPooling2D(1, name="cfg_amp2"), layers.AdaptiveMaxPooling3D((1, 2, 3), name="cfg_amp3")]
