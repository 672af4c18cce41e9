"""Helpers shared by the reshaping, merging, preprocessing, conv and pooling layer tests: devices,
calling a convcore layer on a device, the tape's input gradients and float64 central
finite differences of ``sum(layer(x) * r)``."""
from __future__ import annotations

import os

import numpy as np
import pytest

import convcore
from convcore import _core, ops
from finite_differences import central_differences

HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CI requires a GPU adapter (lavapipe) for the GPU half of the layer tests")
DEVICES = ["cpu"] + (["gpu"] if HAVE_GPU else [])
needs_gpu = pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter (install mesa-vulkan-drivers for lavapipe)")


def on(device, arrays):
    """Tensors of ``arrays`` (one array or a list) on ``device``."""
    if isinstance(arrays, (list, tuple)):
        return [ops.convert_to_tensor(a, device=device) for a in arrays]
    return ops.convert_to_tensor(arrays, device=device)


def run(layer, x, device="cpu", **kw):
    """``layer`` called on ``x`` (an array or a list of arrays) on ``device``, as a
    numpy array; the output must live on that device."""
    y = layer(on(device, x), **kw)
    assert y.device == device, (y.device, device)
    return np.asarray(y)


def tape_gradients(layer, xs, r, multi=False, **kw):
    """Gradients of ``sum(layer(xs) * r)`` for each array of ``xs`` (a list; the layer
    takes the list when ``multi``, else its one array), by the tape."""
    ts = [ops.convert_to_tensor(x) for x in xs]
    with convcore.GradientTape() as tape:
        for t in ts:
            tape.watch(t)
        y = layer(ts if multi else ts[0], **kw)
        loss = ops.sum(ops.multiply(y, r))
    return [np.asarray(g) for g in tape.gradient(loss, ts)]


def fd_gradients(f, xs, r, eps=1e-6):
    """Central finite differences of ``sum(f(xs) * r)`` in float64 for each array of ``xs``."""
    def of(i):
        return lambda a: np.sum(f([a if j == i else b.copy() for j, b in enumerate(xs)]) * r)

    return [central_differences(of(i), x, eps) for i, x in enumerate(xs)]


def check_gradients(layer, xs, seed=0, multi=False, **kw):
    """The tape's input gradients of a float64 layer equal float64 central differences."""
    xs = [np.asarray(x, dtype=np.float64) for x in xs]
    y = np.asarray(layer(xs if multi else xs[0], **kw))
    r = np.random.default_rng(seed).standard_normal(y.shape)
    got = tape_gradients(layer, xs, r, multi, **kw)
    want = fd_gradients(lambda a: np.asarray(layer(a if multi else a[0], **kw)), xs, r)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-8)


def config_round_trip(layer, x, device="cpu", **kw):
    """``from_config(get_config())`` computes what ``layer`` does on ``x`` and
    reproduces its config (JSON-friendly)."""
    import json
    cfg = layer.get_config()
    assert json.loads(json.dumps(cfg)) == cfg
    again = type(layer).from_config(cfg)
    assert type(again) is type(layer) and again.get_config() == cfg
    np.testing.assert_array_equal(run(again, x, device, **kw), run(layer, x, device, **kw))


def check_gpu_gradients(make, xs, multi=False, seed=0, **kw):
    """The GPU's output and input gradients of ``sum(layer(xs) * r)`` equal the CPU's
    (float32; one layer per device from ``make()``)."""
    xs = [np.asarray(x, dtype=np.float32) for x in xs]
    results = []
    for device in ("cpu", "gpu"):
        layer = make()
        ts = [ops.convert_to_tensor(x, device=device) for x in xs]
        with convcore.GradientTape() as tape:
            for t in ts:
                tape.watch(t)
            y = layer(ts if multi else ts[0], **kw)
            r = np.random.default_rng(seed).standard_normal(y.shape).astype(np.float32)
            loss = ops.sum(ops.multiply(y, r))
        grads = tape.gradient(loss, ts)
        assert y.device == device and all(g.device == device for g in grads)
        results.append([np.asarray(y)] + [np.asarray(g) for g in grads])
    for got, want in zip(*results[::-1]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # float32 sums in another order
