"""Issue 11's reproducers of hostile and faulty use (items 1, 3, 4, 7, 8, 9, 10, 12, 13),
each kept as a regression test on the CPU and, where a device is involved, on the GPU
(lavapipe in CI). Items 2, 5, 6 and 11 (files, configs, deep graphs, killed saves) live
in test_hostile_files.py and test_nn_saving.py; the fuzz test in test_fuzz.py."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
import scipy.signal as ss

import convcore
from convcore import Input, Model, Sequential, layers, optimizers

nan, inf = np.nan, np.inf


def _dense_model(compile_kw=None, device=None):
    convcore.set_seed(0)
    m = Sequential([Input((4,)), layers.Dense(3)])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", device=device, **(compile_kw or {}))
    return m


def _xy():
    rng = np.random.default_rng(0)
    return rng.random((5, 4)).astype(np.float32), np.array([0, 1, 2, 0, 1])


# ----------------------------------------------------------------- 4: attacks
@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
@pytest.mark.parametrize("bs", [-1, 0, True, 2.5, "8"])
def test_attack_batch_size_is_validated(attack, bs):
    m = _dense_model()
    x, y = _xy()
    fn = getattr(convcore.adversarial, attack)
    with pytest.raises((ValueError, TypeError), match="batch_size"):
        fn(m, x, y, 0.1, batch_size=bs)


@pytest.mark.parametrize("eps", [inf, nan, -0.1, True])
def test_attack_eps_must_be_finite(eps):
    m = _dense_model()
    x, y = _xy()
    for fn in (convcore.adversarial.fgsm, convcore.adversarial.pgd):
        with pytest.raises((ValueError, TypeError), match="eps"):
            fn(m, x, y, eps)


def test_attack_rejects_nan_inputs_and_small_batches_match_one_batch():
    m = _dense_model()
    x, y = _xy()
    bad = x.copy()
    bad[0, 0] = nan
    with pytest.raises(ValueError, match="NaN"):
        convcore.adversarial.fgsm(m, bad, y, 0.1)
    # A batch size of 1 writes every row of the gradient: equal to one big batch.
    a = convcore.adversarial.fgsm(m, x, y, 0.1, batch_size=1)
    b = convcore.adversarial.fgsm(m, x, y, 0.1, batch_size=256)
    np.testing.assert_array_equal(a, b)
    p = convcore.adversarial.pgd(m, x, y, 0.1, batch_size=1, seed=3)
    assert np.isfinite(p).all() and np.abs(p - x).max() <= 0.1 + 1e-6


# ----------------------------------------------------------------- 7: exception types
def test_batch_normalization_on_rank_1_is_a_value_error():
    with pytest.raises(ValueError, match="rank >= 2"):
        layers.BatchNormalization()(np.ones(4))


def test_concatenate_axis_errors():
    with pytest.raises(ValueError, match="besides the batch axis"):
        layers.Concatenate()([np.ones(3), np.ones(3)])
    for axis in (5, 0, -3):
        with pytest.raises(ValueError, match="axis"):
            layers.Concatenate(axis=axis)([np.ones((2, 3)), np.ones((2, 3))])
    with pytest.raises(TypeError, match="axis"):
        layers.Concatenate(axis=1.5)
    # Valid axes still work, counted with the batch axis as Keras does.
    y = layers.Concatenate(axis=1)([np.ones((2, 3)), np.zeros((2, 2))])
    assert y.shape == (2, 5)
    y = layers.Concatenate(axis=-2)([np.ones((2, 3, 1)), np.zeros((2, 2, 1))])
    assert y.shape == (2, 5, 1)


def test_dense_on_zero_features_initializes():
    y = layers.Dense(2, kernel_initializer="he_normal")(np.ones((2, 0), np.float32))
    np.testing.assert_array_equal(y.numpy(), np.zeros((2, 2), np.float32))


def test_huge_conv_kernel_is_a_value_error():
    with pytest.raises(ValueError, match="more than any array can hold"):
        Sequential([Input((8, 8, 1)), layers.Conv2D(2, 2**62, padding="same")])


def test_maximize_activation_on_the_input_layer():
    i = Input((8, 8, 1))
    fm = Model(i, layers.Conv2D(2, 3)(i))
    try:
        img, _ = convcore.inspect.maximize_activation(fm, fm.layers[0].name, 0, steps=2)
        assert img.shape == (8, 8, 1) and np.isfinite(img).all()
    except ValueError:
        pass  # a clear refusal is fine too; IndexError is not


# ----------------------------------------------------------------- 8: shape arithmetic
def test_shape_products_do_not_wrap():
    with pytest.raises(ValueError, match="more than any array can hold"):
        Sequential([Input((2**32, 2**32, 1)), layers.Flatten(), layers.Dense(10)])
    with pytest.raises(ValueError, match="more than any array can hold"):
        Sequential([Input((2**40, 2**40)), layers.Reshape((1024, -1))])
    # Large but representable shapes keep their exact size.
    assert layers.Flatten().compute_output_shape((2**20, 2**20, 4)) == (2**42,)
    assert layers.Reshape((1024, -1)).compute_output_shape((2**20, 2**20)) == (1024, 2**30)
    with pytest.raises(ValueError, match="reshape"):
        convcore.ops.reshape(np.ones(4), (2**62, 2**62, -1))


# ----------------------------------------------------------------- 9: non-finite weights at boundaries
def test_correlate1d_inf_weight_at_the_boundary_matches_scipy():
    want = ndi.correlate1d(np.ones(3), [inf, 1, 1], mode="constant")
    assert np.isnan(want[0])
    got = convcore.ndimage.correlate1d(np.ones(3), [inf, 1, 1], mode="constant")
    np.testing.assert_array_equal(got, want)
    g = convcore.ndimage.correlate1d(np.ones(3, np.float32), np.array([inf, 1, 1], np.float32), mode="constant",
                                     device="gpu")
    np.testing.assert_array_equal(g, want.astype(np.float32))


def test_correlate2d_valid_with_the_larger_kernel_matches_scipy():
    want = ss.correlate2d(np.ones((1, 2)), [[inf, 1, 1]], "valid")
    np.testing.assert_array_equal(want, [[2.0, inf]])
    for dev in ("cpu", "gpu"):
        got = convcore.signal.correlate2d(np.ones((1, 2), np.float32), np.array([[inf, 1, 1]], np.float32), "valid",
                                          device=dev)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("device", ["cpu", "gpu"])
def test_non_finite_correlations_match_scipy(device):
    """inf in either input, every mode: scipy's rules of which padding is multiplied
    (numpy.correlate's overlap for 1-D, the swap of 'full' N-D when in2 is the larger,
    'valid' never padding, ndimage.correlate's footprint dropping zero weights)."""
    rng = np.random.default_rng(7)
    dt = np.float32 if device == "gpu" else np.float64
    for _ in range(150):
        nd = int(rng.integers(1, 3))
        a = rng.integers(-2, 3, size=tuple(rng.integers(1, 5, nd))).astype(np.float64)
        b = rng.integers(-2, 3, size=tuple(rng.integers(1, 5, nd))).astype(np.float64)
        for arr in (a, b):
            m = rng.random(arr.shape)
            arr[m < 0.2] = inf
            arr[(m > 0.2) & (m < 0.3)] = -inf
        for mode in ("full", "same", "valid"):
            try:
                want = ss.correlate(a, b, mode, method="direct")
            except ValueError:
                continue
            got = convcore.signal.correlate(a.astype(dt), b.astype(dt), mode, method="direct", device=device)
            np.testing.assert_array_equal(got, want.astype(dt), err_msg=f"{mode} {a} {b}")
            if nd == 2:
                want = ss.correlate2d(a, b, mode)
                got = convcore.signal.correlate2d(a.astype(dt), b.astype(dt), mode, device=device)
                np.testing.assert_array_equal(got, want.astype(dt), err_msg=f"2d {mode} {a} {b}")
        for mode in ("constant", "reflect", "nearest", "wrap"):
            want = ndi.correlate(a, b, mode=mode)
            got = convcore.ndimage.correlate(a.astype(dt), b.astype(dt), mode=mode, device=device)
            np.testing.assert_array_equal(got, want.astype(dt), err_msg=f"ndimage {mode} {a} {b}")
