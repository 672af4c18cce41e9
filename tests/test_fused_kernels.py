"""The native depthwise convolution and the fused layer / group normalization kernels in
a training step: on the GPU they run with no host fallback (the depthwise layer and a
grouped convolution of one channel per group are the depthwise kernel; a grouped
convolution of several channels per group joins its groups with the GPU's
concatenation kernel), and the
step's gradients equal the CPU's. Values and gradients of the ops themselves are checked
by tests/test_ops.py's table; the layers against Keras in test_normalization_layers.py
and test_conv_layers.py."""
from __future__ import annotations

import os

import numpy as np
import pytest

import convcore
from convcore import _core, layers, ops

HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CI requires a GPU adapter (lavapipe)")
needs_gpu = pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter")


def _model(extra):
    return convcore.Sequential([layers.Input((6, 6, 8)), layers.Conv2D(8, 1, name="c"), *extra, layers.Flatten(),
                                layers.Dense(2)])


def _second_step_fallbacks(extra, seed):
    """Host fallbacks of the second GPU training step of ``_model(extra)``."""
    from convcore import device
    x = np.random.default_rng(seed).standard_normal((2, 6, 6, 8)).astype(np.float32)
    y = np.zeros((2, 2), np.float32)
    m = _model(extra)
    m.compile(optimizer="sgd", loss="mse", device="gpu")
    m.train_on_batch(x, y)
    before = device.host_fallbacks()
    m.train_on_batch(x, y)
    return device.host_fallbacks() - before


@needs_gpu
def test_depthwise_steps_use_no_host_fallback():
    # g2 (two channels per group) joins its groups with the GPU's concatenation kernel
    assert _second_step_fallbacks([layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw"),
                                   layers.Conv2D(16, 3, groups=16, name="g1"),
                                   layers.Conv2D(16, 1, groups=8, name="g2")], seed=0) == 0


@needs_gpu
def test_normalization_steps_use_no_host_fallback():
    assert _second_step_fallbacks([layers.LayerNormalization(name="ln"),
                                   layers.GroupNormalization(groups=4, name="gn")], seed=1) == 0


@needs_gpu
@pytest.mark.parametrize("make", [
    lambda: layers.DepthwiseConv2D((3, 2), strides=(2, 1), padding="same", depth_multiplier=3),
    lambda: layers.LayerNormalization(),
    lambda: layers.GroupNormalization(groups=2, center=False),
], ids=["depthwise", "layer_norm", "group_norm"])
def test_a_gpu_step_updates_the_weights_as_the_cpu(make):
    r = np.random.default_rng(2)
    x = r.standard_normal((3, 6, 6, 8)).astype(np.float32)
    y = r.standard_normal((3, 2)).astype(np.float32)
    models = {dev: _model([make()]) for dev in ("cpu", "gpu")}
    w0 = [r.standard_normal(w.shape).astype(np.float32) * 0.5 for w in models["cpu"].get_weights()]
    for dev, m in models.items():
        m.set_weights(w0)
        m.compile(optimizer="sgd", loss="mse", device=dev)
        m.train_on_batch(x, y)
    for wg, wc in zip(models["gpu"].get_weights(), models["cpu"].get_weights()):
        np.testing.assert_allclose(wg, wc, rtol=1e-4, atol=1e-5)
    assert any(not np.allclose(a, b) for a, b in zip(models["cpu"].get_weights(), w0))
