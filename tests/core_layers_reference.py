"""Helpers shared by the core, normalization, regularization and activation layer tests:
running a layer on a device (inside a model compiled for it, as users do), copying
weights from a Keras layer, float64 central finite differences of the input and weight
gradients, config round trips checked by behaviour, and a short fit against Keras's."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

import convcore
from convcore import Input, Sequential, _core, ops

HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CI requires a GPU adapter (lavapipe) for the GPU half of the layer tests")
DEVICES = ["cpu"] + (["gpu"] if HAVE_GPU else [])
needs_gpu = pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter (install mesa-vulkan-drivers for lavapipe)")


def on_device(layer, input_shape, device):
    """``f(x, training)`` running ``layer`` (built for ``input_shape``, batch excluded) on
    ``device``: the layer sits in a Sequential compiled for that device. The output
    must live there."""
    model = Sequential([Input(tuple(input_shape)), layer])
    model.compile(loss="mse", device=device)

    def f(x, training=False, **kw):
        y = model(ops.convert_to_tensor(np.asarray(x), device=device), training=training, **kw)
        assert y.device == device, (y.device, device)
        return np.asarray(y)

    return f


def device_gradients(layer, weights, x, device, training=False, seed=0):
    """The tape's gradients of ``sum(layer(x) * r)`` for the input and each trainable
    weight, with ``layer`` (given ``weights``) in a model compiled for ``device``."""
    model = Sequential([Input(tuple(x.shape[1:])), layer])
    model.compile(loss="mse", device=device)
    if weights:
        layer.set_weights(weights)
    xt = ops.convert_to_tensor(x, device=device)
    model(xt, training=training)  # moves the weights to the device
    r = ops.convert_to_tensor(np.random.default_rng(seed).standard_normal(x.shape[:1] + tuple(
        layer.compute_output_shape(tuple(x.shape[1:])))).astype(x.dtype), device=device)
    with convcore.GradientTape() as tape:
        tape.watch(xt)
        loss = ops.sum(ops.multiply(model(xt, training=training), r))
    grads = tape.gradient(loss, [xt] + list(layer.trainable_weights))
    assert all(g is not None and g.device == device for g in grads)
    return [np.asarray(g) for g in grads]


def assert_gpu_gradients_match_cpu(make, x, training=False, rtol=1e-4, atol=1e-5):
    """Input and weight gradients on the GPU equal the CPU's (float32; the GPU's
    reductions sum in another order, hence 1e-4)."""
    cpu_layer = make()
    cpu_layer.build(tuple(x.shape[1:]))
    cpu_layer.built = True
    rng = np.random.default_rng(3)
    weights = [rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in cpu_layer.get_weights()]
    want = device_gradients(cpu_layer, weights, x, "cpu", training)
    got = device_gradients(make(), weights, x, "gpu", training)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def copy_keras_weights(layer, keras_layer, input_shape):
    """Build ``layer`` for ``input_shape`` and give it the Keras layer's weights (same
    order and shapes, as Keras's ``get_weights``)."""
    if not layer.built:
        layer.build(tuple(input_shape))
        layer.built = True
    kw = keras_layer.get_weights()
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in kw], \
        ([w.shape for w in layer.get_weights()], [w.shape for w in kw])
    layer.set_weights(kw)


def assert_matches_keras(layer, keras_layer, x, want, device, rtol=1e-5, atol=1e-6):
    """``layer``, given ``keras_layer``'s weights and run on ``device`` (in a model
    compiled for it), computes Keras's output ``want`` for ``x`` (float32 on both
    sides: a few ulps of difference)."""
    copy_keras_weights(layer, keras_layer, x.shape[1:])
    np.testing.assert_allclose(on_device(layer, x.shape[1:], device)(x), want, rtol=rtol, atol=atol)


def check_gradients(layer, x, training=False, seed=0, rtol=1e-6, atol=1e-8, eps=1e-6):
    """The tape's gradients of ``sum(layer(x) * r)`` for the input and every trainable
    weight of a float64 layer equal float64 central differences."""
    assert layer.dtype == "float64"
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(layer(x, training=training))
    r = np.random.default_rng(seed).standard_normal(y.shape)
    xt = ops.convert_to_tensor(x)
    ws = list(layer.trainable_weights)
    with convcore.GradientTape() as tape:
        tape.watch(xt)
        loss = ops.sum(ops.multiply(layer(xt, training=training), r))
    got = tape.gradient(loss, [xt] + ws)

    def f():
        return float(np.sum(np.asarray(layer(x, training=training)) * r))

    # the input
    want = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        keep = x[idx]
        x[idx] = keep + eps
        hi = f()
        x[idx] = keep - eps
        lo = f()
        x[idx] = keep
        want[idx] = (hi - lo) / (2 * eps)
    np.testing.assert_allclose(np.asarray(got[0]), want, rtol=rtol, atol=atol, err_msg="input gradient")
    # each trainable weight
    for w, g in zip(ws, got[1:]):
        base = w.numpy().copy()
        want = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            v = base.copy()
            v[idx] += eps
            w.assign(v)
            hi = f()
            v[idx] -= 2 * eps
            w.assign(v)
            lo = f()
            want[idx] = (hi - lo) / (2 * eps)
        w.assign(base)
        assert g is not None, f"no gradient for {w.name}"
        np.testing.assert_allclose(np.asarray(g), want, rtol=rtol, atol=atol, err_msg=f"gradient of {w.name}")


def config_round_trip(layer, x, training=False, keras_layer=None, keras_only=()):
    """``from_config(get_config())`` computes what ``layer`` does on ``x`` (same weights)
    and reproduces its config, which is JSON-friendly; with ``keras_layer``, the config
    has Keras's keys (less ``keras_only``: keys of features convcore leaves out)."""
    cfg = layer.get_config()
    assert json.loads(json.dumps(cfg)) == cfg
    again = type(layer).from_config(cfg)
    assert type(again) is type(layer)
    assert again.get_config() == cfg
    y = np.asarray(layer(x, training=training))
    if layer.weights:
        copy_weights = layer.get_weights()
        again.build(tuple(np.shape(x)[1:]))
        again.built = True
        again.set_weights(copy_weights)
    np.testing.assert_array_equal(np.asarray(again(x, training=training)), y)
    if keras_layer is not None:
        kcfg = keras_layer.get_config()
        assert set(cfg) | set(keras_only) == set(kcfg) | set(keras_only), sorted(set(cfg) ^ set(kcfg))
        # Keras's own config (its dtype policy and initializer dicts) builds the same layer
        loaded = type(layer).from_config(kcfg)
        if layer.weights:
            loaded.build(tuple(np.shape(x)[1:]))
            loaded.built = True
            loaded.set_weights(layer.get_weights())
        np.testing.assert_array_equal(np.asarray(loaded(x, training=training)), y)
        # and Keras builds the same layer from convcore's config
        theirs = type(keras_layer).from_config(cfg)
        theirs.build(tuple((None,) + np.shape(x)[1:]))
        if layer.weights:
            theirs.set_weights(layer.get_weights())
        np.testing.assert_allclose(np.asarray(theirs(x, training=training)), y, rtol=1e-5, atol=1e-6)
    return again


def assert_fit_matches_keras(keras_model, convcore_model, x, y, device, cache):
    """Two epochs of SGD(0.1) on mse (batches of 4, unshuffled) from Keras's initial
    weights leave convcore's model (``convcore_model()``, compiled for ``device``) with
    the weights Keras's (``keras_model()``) ends with. ``cache``, a module-level dict,
    keeps Keras's run for the other devices."""
    if not cache:
        import keras  # imported by the calling test module already (KERAS_BACKEND set first)
        km = keras_model()
        km.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        cache["w0"] = km.get_weights()
        km.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
        cache["w1"] = km.get_weights()
    cm = convcore_model()
    cm.set_weights(cache["w0"])
    cm.compile(optimizer=convcore.optimizers.SGD(0.1), loss="mse", device=device)
    cm.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    for got, want, w in zip(cm.get_weights(), cache["w1"], cm.weights):
        # four float32 steps: a few ulps of drift on values of order 1
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=w.path)

