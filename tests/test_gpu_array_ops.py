"""The GPU kernels of the generic ops the Keras layers use in their training steps
(shaders/array.wgsl: comparisons and logical ops, where, clip, constant padding,
concatenation, slice gradients, take and its adjoint, casts to and from bool, batched
matmul; shaders/nn.wgsl: global max pooling's tie rule): each gives the CPU's values
(numpy's, NaN and inf included) and gradients with no host fallback, and each layer of
issue 12 trains on the GPU with no host fallback at all."""
from __future__ import annotations

import os

import numpy as np
import pytest

import convcore
from convcore import _core, device, layers, ops

HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CI requires a GPU adapter (lavapipe)")
pytestmark = pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter (install mesa-vulkan-drivers for lavapipe)")

R = np.random.default_rng(5)


def _poison(a):
    a = np.array(a, dtype=np.float32)
    f = a.reshape(-1)
    if f.size >= 4:
        f[[0, f.size // 2, -1]] = [np.nan, np.inf, -np.inf]
    return a


X = _poison(R.standard_normal((3, 4, 5)))
Y = R.standard_normal((4, 1)).astype(np.float32)
TIES = np.round(R.standard_normal((3, 4, 5)), 0).astype(np.float32)  # many equal values
MASK = R.random((3, 4, 5)) < 0.5


# (id, f(*tensors), inputs, differentiable)
CASES = [
    ("equal", lambda a, b: ops.equal(a, b), [TIES, TIES[:, :1, :]], False),
    ("not_equal", lambda a, b: ops.not_equal(a, b), [X, X[::-1]], False),
    ("greater", lambda a, b: ops.greater(a, b), [X, Y], False),
    ("greater_equal", lambda a, b: ops.greater_equal(a, b), [TIES, np.float32(0.0)], False),
    ("less", lambda a, b: ops.less(a, b), [X, Y], False),
    ("less_equal", lambda a, b: ops.less_equal(a, b), [TIES, TIES[:, :, :1]], False),
    ("logical_and", lambda a, b: ops.logical_and(ops.greater(a, 0), b), [X, MASK], False),
    ("logical_or", lambda a, b: ops.logical_or(a, ops.less(b, 0)), [X, Y], False),
    ("logical_not", lambda a: ops.logical_not(a), [TIES], False),
    ("isnan_isfinite", lambda a: ops.logical_or(ops.isnan(a), ops.isfinite(a)), [X], False),
    ("compare_bools", lambda a, b: ops.equal(ops.greater(a, 0), ops.greater(b, 0)), [X, Y], False),
    ("where", lambda a, b: ops.where(ops.greater(a, 0.3), a, b), [X, Y], True),
    ("where_scalar_branch", lambda a: ops.where(ops.less(a, 0), 0.0, a), [X], True),
    ("where_float_condition", lambda a, b: ops.where(a, b, -b), [TIES, Y], True),
    ("maximum_grad", lambda a, b: ops.maximum(a, b), [TIES, TIES[:1]], True),
    ("minimum_grad", lambda a, b: ops.minimum(a, b), [TIES, np.float32(0.0)], True),
    ("clip_scalars", lambda a: ops.clip(a, -0.5, 0.75), [X], True),
    ("clip_reversed_bounds", lambda a: ops.clip(a, 1.0, -1.0), [X], True),
    ("clip_one_side", lambda a: ops.clip(a, None, 0.2), [X], True),
    ("clip_array_bounds", lambda a: ops.clip(a, np.linspace(-1, 0, 5, dtype=np.float32), 0.5), [X], True),
    ("pad", lambda a: ops.pad(a, ((1, 0), (0, 2), (3, 1)), constant_values=-2.5), [X], True),
    ("pad_nan_fill", lambda a: ops.pad(a, 1, constant_values=np.nan), [Y], True),
    ("pad_bool", lambda a: ops.pad(ops.greater(a, 0), ((0, 1), (2, 0))), [Y], False),
    ("concatenate_0", lambda a, b: ops.concatenate([a, a[:1], a], axis=0), [X, Y], True),
    ("concatenate_1", lambda a, b: ops.concatenate([a, ops.broadcast_to(b, (3, 4, 1))], axis=-1), [X, Y], True),
    ("concatenate_empty_part", lambda a: ops.concatenate([a[:, :0], a, a[:, 1:3]], axis=1), [X], True),
    ("slice_grad_steps", lambda a: a[::-2, 1:3, ::3], [X], True),
    ("slice_grad_int", lambda a: a[1, :, 2:], [X], True),
    ("take_repeats", lambda a: ops.take(a, np.array([0, 2, 2, -1, 1, 2]), axis=1), [X], True),
    ("take_2d_indices", lambda a: ops.take(a, np.array([[4, 0], [4, 4]]), axis=2), [X], True),
    ("take_flat", lambda a: ops.take(a, np.array([7, 0, 59, 7])), [X], True),
    ("cast_bool_float", lambda a: ops.cast(ops.cast(a, "bool"), "float32"), [TIES], False),
    ("logsumexp", lambda a: ops.logsumexp(a, axis=1), [X], True),
    ("logsumexp_all_inf", lambda a: ops.logsumexp(a, axis=0, keepdims=True),
     [np.array([[-np.inf, 1.0], [-np.inf, 2.0]], np.float32)], True),
    ("softmax_axis_1", lambda a: convcore.ops.softmax(a, axis=1), [R.standard_normal((3, 4, 5)).astype(np.float32)],
     True),
    ("matmul_batched", lambda a, b: ops.matmul(a, b), [R.standard_normal((2, 3, 4, 5)).astype(np.float32),
                                                        R.standard_normal((3, 5, 2)).astype(np.float32)], True),
    ("matmul_vector", lambda a, b: ops.matmul(a, b), [R.standard_normal((2, 3, 4)).astype(np.float32),
                                                       R.standard_normal((4,)).astype(np.float32)], True),
    ("matmul_vector_left", lambda a, b: ops.matmul(a, b), [R.standard_normal((4,)).astype(np.float32),
                                                            R.standard_normal((4, 3)).astype(np.float32)], True),
    ("matmul_nan", lambda a, b: ops.matmul(a, b), [X[0], X[1].T], False),
]


def _run(f, arrays, dev, grad):
    ts = [ops.convert_to_tensor(a, device=dev) for a in arrays]
    if not grad:
        return f(*ts), []
    with convcore.GradientTape() as tape:
        for t in ts:
            tape.watch(t)
        y = f(*ts)
        loss = ops.sum(ops.multiply(ops.where(ops.isfinite(y), y, 0.0), y.numpy().size ** -0.5))
    gs = tape.gradient(loss, ts)
    return y, [None if g is None else g.numpy() for g in gs]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_gpu_kernel_matches_cpu_without_fallback(case):
    _, f, arrays, grad = case
    with np.errstate(all="ignore"):
        want, want_g = _run(f, arrays, "cpu", grad)
        before = device.host_fallbacks()
        got, got_g = _run(f, arrays, "gpu", grad)
        assert device.host_fallbacks() == before, "an op ran through the host fallback"
    assert got.device == "gpu" and got.shape == want.shape
    w, g = want.numpy(), got.numpy()
    if w.dtype == bool:
        assert g.dtype == np.uint32  # the GPU stores truth values as uint32 0 / 1
        np.testing.assert_array_equal(g, w.astype(np.uint32))
    else:
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=1e-6)  # NaN and inf at the same places
    for a, b in zip(got_g, want_g):
        if b is None:
            assert a is None
        else:
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


def test_uint32_comparisons_are_exact_beyond_float32():
    big = np.array([2 ** 24, 2 ** 24 + 1, 2 ** 31 + 3], np.uint32)
    a, b = (ops.convert_to_tensor(v, device="gpu") for v in (big, big[[1, 1, 2]]))
    np.testing.assert_array_equal(ops.equal(a, b).numpy(), [0, 1, 1])
    np.testing.assert_array_equal(ops.less(a, b).numpy(), [1, 0, 0])


def test_global_max_pool_gradient_shares_ties_as_the_cpu():
    x = np.zeros((2, 3, 3, 2), np.float32)
    x[0, 0, 0, 0] = x[0, 2, 1, 0] = 5.0  # two maxima share the gradient
    x[1, :, :, 1] = np.nan
    x[1, 1, 1, 1] = 1.0                  # NaN maxima tie with each other
    x[1, :, :, 0] = 2.0                  # nine ties
    got = {}
    for dev in ("cpu", "gpu"):
        t = ops.convert_to_tensor(x, device=dev)
        with convcore.GradientTape() as tape:
            tape.watch(t)
            y = layers.GlobalMaxPooling2D()(t)
            loss = ops.sum(ops.multiply(ops.where(ops.isnan(y), 0.0, y), np.array([1.0, 3.0], np.float32)))
        before = device.host_fallbacks()
        got[dev] = tape.gradient(loss, t).numpy()
        if dev == "gpu":
            assert device.host_fallbacks() == before
    np.testing.assert_allclose(got["gpu"], got["cpu"], rtol=1e-6)
    assert got["cpu"][0, 0, 0, 0] == 0.5 and got["cpu"][1, 0, 0, 0] == pytest.approx(1 / 9)


# Each layer of issue 12 that once had a host step: forward and backward on the GPU
# with no fallback, equal to the CPU.
LAYERS = [
    (lambda: layers.ZeroPadding2D(((1, 2), (0, 1))), [(2, 4, 5, 3)]),
    (lambda: layers.ZeroPadding3D(1), [(1, 2, 2, 2, 3)]),
    (lambda: layers.Conv1D(2, 3, padding="causal", dilation_rate=2), [(2, 6, 3)]),
    (lambda: layers.Conv2D(4, 3, groups=2), [(2, 6, 6, 4)]),
    (lambda: layers.LeakyReLU(0.2), [(2, 5, 3)]),
    (lambda: layers.ELU(), [(2, 5, 3)]),
    (lambda: layers.ReLU(max_value=1.0, negative_slope=0.1, threshold=0.2), [(2, 5, 3)]),
    (lambda: layers.Softmax(axis=1), [(2, 5, 3)]),
    (lambda: layers.UnitNormalization(), [(2, 5, 3)]),
    (lambda: layers.Cropping2D(((1, 0), (1, 1))), [(2, 5, 5, 3)]),
    (lambda: layers.Cropping3D(1), [(1, 4, 4, 4, 2)]),
    (lambda: layers.Resizing(7, 9, interpolation="nearest"), [(2, 4, 4, 3)]),
    (lambda: layers.Dot(axes=(2, 2)), [(2, 4, 3), (2, 5, 3)]),
    (lambda: layers.Maximum(), [(2, 4), (2, 4)]),
    (lambda: layers.Minimum(), [(2, 4), (2, 4)]),
    (lambda: layers.Concatenate(axis=1), [(2, 4, 3), (2, 2, 3)]),
    (lambda: layers.GlobalMaxPooling1D(keepdims=True), [(2, 5, 3)]),
    (lambda: layers.Activation("hard_sigmoid"), [(2, 5, 3)]),
    (lambda: layers.Activation("relu6"), [(2, 5, 3)]),
    (lambda: layers.Activation("selu"), [(2, 5, 3)]),
    (lambda: layers.Activation("hard_silu"), [(2, 5, 3)]),
]


@pytest.mark.parametrize("make,shapes", LAYERS, ids=[f"{m().__class__.__name__}-{i}" for i, (m, _) in
                                                     enumerate(LAYERS)])
def test_layer_step_runs_on_the_gpu_without_fallback(make, shapes):
    arrays = [R.standard_normal(s).astype(np.float32) for s in shapes]
    got = {}
    for dev in ("cpu", "gpu"):
        layer = make()
        layer([ops.convert_to_tensor(a) for a in arrays] if len(arrays) > 1 else ops.convert_to_tensor(arrays[0]))
        if dev == "gpu":
            layer._move_to("gpu")  # what compile(device='gpu') does to a model's layers
        xs = [ops.convert_to_tensor(a, device=dev) for a in arrays]
        weights = [np.asarray(w) for w in layer.get_weights()]
        if dev == "gpu":
            layer.set_weights(got["cpu"][2])
        before = device.host_fallbacks()
        with convcore.GradientTape() as tape:
            for t in xs:
                tape.watch(t)
            y = layer(xs if len(xs) > 1 else xs[0], training=True)
            loss = ops.sum(ops.multiply(y, y))
        grads = tape.gradient(loss, xs + list(layer.trainable_weights))
        if dev == "gpu":
            assert device.host_fallbacks() == before, "the step ran an op through the host fallback"
            assert y.device == "gpu"
        got[dev] = (y.numpy(), [g.numpy() for g in grads], weights)
    np.testing.assert_allclose(got["gpu"][0], got["cpu"][0], rtol=1e-4, atol=1e-5)
    for g, c in zip(got["gpu"][1], got["cpu"][1]):
        np.testing.assert_allclose(g, c, rtol=1e-4, atol=1e-5)
