"""Issue 11 regressions for the nn / image ops and the device backends: every call
returns the reference (on the GPU the CPU's result, NaN and inf at the same places) or
raises ValueError / TypeError / MemoryError / OverflowError -- never IndexError and the
like, and never silently accepts an invalid argument.

The GPU half runs where an adapter exists (lavapipe in CI) and skips elsewhere.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

import convcore as cc
from convcore import _core, ops, signal

HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CI requires a GPU adapter (lavapipe) for the GPU half of these tests")
gpu_only = pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter (install mesa-vulkan-drivers for lavapipe)")
DEVICES = ["cpu"] + (["gpu"] if HAVE_GPU else [])
OK = (ValueError, TypeError, MemoryError, OverflowError)
inf, nan = float("inf"), float("nan")


def on(a, device, dtype=np.float32):
    return ops.convert_to_tensor(np.asarray(a, dtype=dtype), device=device)


def outcome(fn):
    """('ok', numpy result or tuple of them) or ('raises', exception type)."""
    try:
        r = fn()
    except Exception as e:  # noqa: BLE001 - the type is what is compared
        return "raises", type(e)
    if isinstance(r, (tuple, list)):
        return "ok", tuple(np.asarray(t) for t in r)
    return "ok", np.asarray(r)


def assert_same_outcome(make, rtol=1e-5):
    """``make(device)`` does the same on the GPU as on the CPU: the same exception type
    (an accepted one), or the same shapes, values and NaN / inf positions."""
    cpu, gpu = outcome(lambda: make("cpu")), outcome(lambda: make("gpu"))
    assert cpu[0] == gpu[0], (cpu, gpu)
    if cpu[0] == "raises":
        assert issubclass(cpu[1], OK) and cpu[1] is gpu[1], (cpu, gpu)
        return
    cs = cpu[1] if isinstance(cpu[1], tuple) else (cpu[1],)
    gs = gpu[1] if isinstance(gpu[1], tuple) else (gpu[1],)
    for c, g in zip(cs, gs):
        assert c.shape == g.shape, (c.shape, g.shape)
        np.testing.assert_allclose(g.astype(np.float64), c.astype(np.float64), rtol=rtol, atol=rtol)


def raises_ok(fn, types=OK):
    with pytest.raises(types):
        fn()


# ----------------------------------------------------------------------------- GPU vs CPU
@gpu_only
@pytest.mark.parametrize("op", ["sum", "mean", "min", "max", "amax", "amin", "std", "var", "flip", "log_softmax",
                                "count_nonzero", "argmax", "argmin"])
def test_gpu_zero_d_with_an_axis_raises_what_the_cpu_raises(op):
    assert_same_outcome(lambda d: getattr(ops, op)(on(1.0, d), axis=0))
    assert_same_outcome(lambda d: getattr(ops, op)(on(1.0, d), axis=1))


@gpu_only
@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_gpu_argmax_with_an_integer_axis(op):
    x = np.zeros((1, 1, 2), np.float32)
    x[0, 0, 1] = 1.0
    for axis in (2, -1, 0, None):
        assert_same_outcome(lambda d: getattr(ops, op)(on(x, d), axis=axis))
    got = getattr(ops, op)(on(x, "gpu"), axis=2)
    assert got.shape == (1, 1)


@gpu_only
def test_gpu_zero_d_results_stay_zero_d():
    x = on(1.5, "gpu")
    assert ops.ones_like(x, dtype="bool").shape == ()
    assert ops.zeros_like(x, dtype="bool").shape == ()
    assert ops.cast(x, "int32").shape == ()
    assert ops.clip(x, 0.0, 1.0).shape == ()
    assert ops.expand_dims(x, 0).shape == (1,)
    assert ops.one_hot(ops.convert_to_tensor(np.array(2, np.int32), device="gpu"), 3).shape == (3,)
    with cc.GradientTape() as tape:
        tape.watch(x)
        y = ops.clip(x, 0.0, 2.0)
    g = tape.gradient(y, x)
    assert g.shape == () and float(g.numpy()) == 1.0
    # an integer 0-d array uploaded keeps its shape
    assert ops.convert_to_tensor(np.array(3, np.int64), device="gpu").shape == ()


@gpu_only
def test_gpu_mean_of_minus_inf_is_minus_inf():
    assert float(ops.mean(on([0.2, -inf, 0.8], "gpu")).numpy()) == -inf
    assert_same_outcome(lambda d: ops.mean(on([[0.2, inf], [-inf, 1.0]], d), axis=0))
    assert_same_outcome(lambda d: ops.moments(on([[0.2], [-inf], [0.8]], d), 0))
    # a reduction over no axis is a copy, with inf kept
    assert float(ops.sum(on(inf, "gpu")).numpy()) == inf


@gpu_only
@pytest.mark.parametrize("dtype", [">f8", "<f8", "float64"])
def test_gpu_refuses_float64_in_any_byte_order(dtype):
    with pytest.raises(TypeError, match="float64"):
        ops.convert_to_tensor(np.ones(3, dtype), device="gpu")
    with pytest.raises(TypeError, match="float64"):
        signal.correlate(np.ones(3, dtype), np.ones(2, np.float32), device="gpu")


@gpu_only
def test_gpu_cast_to_float64_is_refused():
    with pytest.raises(TypeError, match="float64"):
        ops.cast(on([1.0, 2.0], "gpu"), "float64")


@gpu_only
def test_gpu_host_fallback_results_live_on_the_gpu():
    x = ops.convert_to_tensor(np.array([1, 2], np.int32), device="gpu")
    for y in (ops.mean(x), ops.exp(x), ops.divide(x, 2)):
        assert isinstance(y._data, _core.GpuArray) and y.dtype == np.float32


@gpu_only
@pytest.mark.parametrize("labels", [[4], [-1], [0.5], [nan], [[0, 1]], [[[0]]]])
def test_gpu_fused_loss_checks_sparse_labels(labels):
    y = np.array(labels)
    assert_same_outcome(lambda d: ops.fused_loss("sparse_categorical_crossentropy", y,
                                                 on(np.zeros((1, 4)), d), from_logits=True))
    with pytest.raises(ValueError):
        ops.fused_loss("sparse_categorical_crossentropy", y, on(np.zeros((1, 4)), "gpu"), from_logits=True)


@gpu_only
def test_gpu_fused_loss_label_tensors_and_target_shapes():
    labels = ops.convert_to_tensor(np.array([0, 5]), device="gpu")
    with pytest.raises(ValueError, match="out of range"):
        ops.fused_loss("sparse_categorical_crossentropy", labels, on(np.zeros((2, 3)), "gpu"))
    cases = [("categorical_crossentropy", np.zeros(3), np.zeros((3, 1))),
             ("categorical_crossentropy", np.zeros((2, 0)), np.zeros((2, 0))),
             ("mse", np.zeros((1, 3)), np.zeros((2, 3))),
             ("mse", np.zeros(3), np.zeros((3, 1))),
             ("binary_crossentropy", np.zeros((3, 1)), np.full(3, 0.5)),
             ("sparse_categorical_crossentropy", np.array([0, 1]), np.zeros((2, 3))),
             ("sparse_categorical_crossentropy", np.array([[0], [2]]), np.zeros((2, 3))),
             ("sparse_categorical_crossentropy", np.array([0.0, 2.0], np.float32), np.zeros((2, 3))),
             ("sparse_categorical_crossentropy", np.zeros(3, "U3"), np.zeros((3, 2))),
             ("mse", np.zeros(3, complex), np.zeros(3)),
             ("mse", [0.0, 1.0], np.zeros(2))]
    for name, y, p in cases:
        assert_same_outcome(lambda d: ops.fused_loss(name, y, on(p, d)))


@gpu_only
def test_gpu_dense_with_zero_input_features():
    assert_same_outcome(lambda d: ops.dense_bias_activation(on(np.zeros((2, 0)), d), on(np.zeros((0, 1)), d)))
    assert_same_outcome(lambda d: ops.dense_bias_activation(on(np.zeros((2, 0)), d), on(np.zeros((0, 2)), d),
                                                            on([1.0, -1.0], d), "relu"))
    assert ops.dense_bias_activation(on(np.zeros((2, 0)), "gpu"), on(np.zeros((0, 1)), "gpu")).shape == (2, 1)

    def grads(d):
        x, w, b = on(np.zeros((2, 0)), d), on(np.zeros((0, 2)), d), on([1.0, -1.0], d)
        with cc.GradientTape() as tape:
            tape.watch([x, w, b])
            y = ops.sum(ops.dense_bias_activation(x, w, b))
        return [t.numpy() for t in tape.gradient(y, [x, w, b])]
    assert_same_outcome(grads)


@gpu_only
def test_gpu_rejects_what_the_cpu_rejects():
    f32 = np.float32
    assert_same_outcome(lambda d: signal.correlate(f32(1), np.ones(2, f32), device=d))
    assert_same_outcome(lambda d: signal.correlate(np.array(1, f32), np.ones(2, f32), "valid", device=d))
    assert_same_outcome(lambda d: ops.broadcast_to(on(np.zeros((4, 2, 1)), d), (2,)))
    assert_same_outcome(lambda d: ops.broadcast_to(on(np.zeros((2, 1)), d), (3, 2, 4)))
    assert_same_outcome(lambda d: ops.count_nonzero(on(1.0, d), axis=0))
    assert_same_outcome(lambda d: ops.nonzero(on(1.0, d)))
    assert_same_outcome(lambda d: ops.where(on(1.0, d)))
    assert_same_outcome(lambda d: ops.softmax(on(1.0, d)))
    assert_same_outcome(lambda d: ops.flip(on(np.ones((2, 2)), d), axis=(0, 0)))
    assert_same_outcome(lambda d: ops.flip(on(np.ones((2, 2)), d), axis=2))
    # batch norm statistics of the wrong length, also in inference mode
    for training in (True, False):
        assert_same_outcome(lambda d: ops.fused_batch_norm(
            on(np.ones((4, 2)), d), on(np.ones(3), d), None, 1e-3, training, on(np.zeros(2), d),
            on(np.ones(2), d))[0])
        assert_same_outcome(lambda d: ops.fused_batch_norm(
            on(np.ones((4, 2)), d), None, None, 1e-3, training, on(np.zeros(3), d), on(np.ones(2), d))[0])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(1, 2), (2, 1), (3,), ()])
def test_bias_must_be_one_value_per_output_channel(device, shape):
    x, b = on(np.ones((1, 3, 3, 1)), device), on(np.ones(shape), device)
    with pytest.raises(ValueError, match="b must have shape"):
        ops.conv_bias_activation(x, on(np.ones((2, 2, 1, 2)), device), b)
    with pytest.raises(ValueError, match="b must have shape"):
        ops.dense_bias_activation(on(np.ones((3, 1)), device), on(np.ones((1, 2)), device), b)


@gpu_only
def test_gpu_sin_cos_of_huge_arguments():
    x = [1e15, 3e9, -1e8, 0.5, inf, nan, 1e-42]
    for op in ("sin", "cos"):
        assert_same_outcome(lambda d: getattr(ops, op)(on(x, d)), rtol=1e-6)


@gpu_only
def test_gpu_matches_cpu_on_byteswapped_and_integer_inputs():
    xs = np.arange(-6, 6, dtype=np.float32).reshape(1, 3, 2, 2) / 3
    assert_same_outcome(lambda d: ops.relu6(on(xs, d, ">f4")))
    assert_same_outcome(lambda d: ops.global_pool("max", on(xs, d, ">f4")))
    assert_same_outcome(lambda d: ops.conv_bias_activation(on(xs, d), on(np.ones((2, 2, 2, 3)), d, ">f4"),
                                                           on([1, 2, 3], d, ">f4")))
    for op in ("relu", "sigmoid", "tanh", "softmax", "gelu", "elu", "hard_sigmoid"):
        assert_same_outcome(lambda d: getattr(ops, op)(on([[3, 0, 5]], d, np.int32)), rtol=1e-3)  # (uint32 on the GPU)


# ----------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("device", DEVICES)
def test_integer_inputs_are_computed_in_float(device):
    vals = [-154, 0, 3] if device == "cpu" else [154, 0, 3]  # (the GPU stores integers as uint32)
    g = ops.gelu(on(vals, device, np.int16)).numpy()
    x = np.array(vals, np.float64)
    want = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)
    s = ops.softmax(on([[1, 5], [2, 0]], device, np.uint32), axis=0).numpy()
    e = np.exp(np.array([[1.0, 5.0], [2.0, 0.0]]))
    np.testing.assert_allclose(s, e / e.sum(axis=0), rtol=1e-5)
    loss = ops.sparse_categorical_crossentropy(np.array([1, 0]), on([[1, 3], [2, 2]], device, np.int32),
                                               from_logits=True).numpy()
    assert np.isfinite(loss).all()
    np.testing.assert_allclose(loss, [np.log1p(np.exp(-2.0)), np.log(2.0)], rtol=1e-5)
    for op in ("relu", "sigmoid", "elu", "selu", "silu", "softplus", "leaky_relu", "relu6", "hard_sigmoid"):
        assert np.dtype(getattr(ops, op)(on([2, 3], device, np.int64)).dtype).kind == "f", op


def test_float16_stays_float16_and_tanh_follows_numpy():
    assert ops.relu(np.array([-1, 2], np.float16)).dtype == np.float16
    assert ops.softmax(np.ones((2, 2), ">f2")).dtype == np.float16
    assert ops.softplus(np.array([1, 2], ">f2")).dtype == np.float16
    t = ops.tanh(np.array(True))
    assert t.dtype == np.tanh(np.array(True)).dtype
    np.testing.assert_allclose(np.asarray(t, np.float64), np.tanh(1.0), rtol=1e-3)


def test_erf_of_integers_is_a_float():
    np.testing.assert_allclose(np.asarray(ops.erf(np.array([2, 0, 113], np.uint32)), np.float64),
                               [0.9953222650189527, 0.0, 1.0], rtol=1e-6)


@pytest.mark.parametrize("bad", [np.array([1j, 2]), np.array([1, 2], "timedelta64[s]"), np.array(["a", "b"])])
def test_non_real_dtypes_are_a_type_error(bad):
    calls = [lambda: ops.hard_sigmoid(bad), lambda: ops.elu(bad), lambda: ops.selu(bad),
             lambda: ops.leaky_relu(bad), lambda: ops.gelu(bad), lambda: ops.relu(bad), lambda: ops.sigmoid(bad),
             lambda: ops.softplus(bad), lambda: ops.silu(bad), lambda: ops.relu6(bad), lambda: ops.softmax(bad),
             lambda: ops.log_softmax(bad), lambda: ops.moments(bad, 0), lambda: ops.dropout(bad, 0.5),
             lambda: ops.categorical_crossentropy(bad, np.ones(2)),
             lambda: ops.categorical_crossentropy(np.ones(2), bad),
             lambda: ops.sparse_categorical_crossentropy(np.array(0), bad),
             lambda: ops.sparse_categorical_crossentropy(bad[:1].reshape(()), np.ones(2)),
             lambda: ops.binary_crossentropy(bad, np.ones(2) / 2),
             lambda: ops.binary_crossentropy(np.ones(2), bad),
             lambda: ops.fused_loss("mse", bad, np.ones(2, np.float32)),
             lambda: ops.batch_normalization(np.ones((3, 2)), np.zeros(2), np.ones(2), -1, scale=bad),
             lambda: ops.batch_normalization(bad.reshape(1, 2), np.zeros(2), np.ones(2), -1),
             lambda: ops.dense_bias_activation(bad.reshape(1, 2), np.ones((2, 1))),
             lambda: ops.upsample2d(bad.reshape(1, 1, 2, 1), (2, 2))]
    for i, call in enumerate(calls):
        with pytest.raises(TypeError):
            call()
            pytest.fail(f"call {i} returned")


# ----------------------------------------------------------------------------- byte order
def test_cpu_kernels_take_byteswapped_input():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 4, 3)).astype(np.float32)
    w = rng.standard_normal((2, 2, 3, 2)).astype(np.float32)
    bs = lambda a: a.astype(a.dtype.newbyteorder(">" if np.little_endian else "<"))  # noqa: E731
    pairs = [
        (lambda a: ops.relu(a), (x,)),
        (lambda a: ops.softmax(a), (x,)),
        (lambda a, k: ops.conv(a, k), (x, w)),
        (lambda a, k: ops.depthwise_conv(a, k[..., :1]), (x, w)),
        (lambda a, k: ops.conv_transpose(a[..., :2], k), (x, w)),
        (lambda a, k: ops.dense_bias_activation(a.reshape(-1, 3), k[0, 0]), (x, w)),
        (lambda a: ops.max_pool(a, 2), (x,)),
        (lambda a: ops.average_pool(a, 2), (x,)),
        (lambda a: ops.global_pool("max", a), (x,)),
        (lambda a: ops.fused_batch_norm(a, None, None, 1e-3, True, np.zeros(3, np.float32),
                                        np.ones(3, np.float32))[0], (x,)),
        (lambda a: ops.dropout(a, 0.5, seed=3), (x,)),
        (lambda a: ops.upsample2d(a, (2, 1), "bilinear"), (x,)),
        (lambda a: ops.fused_loss("mse", a, np.zeros_like(x)), (x,)),
        (lambda a: ops.fused_loss("sparse_categorical_crossentropy", np.array([0, 2], ">i8"), a[:, 0, 0]), (x,)),
    ]
    for fn, args in pairs:
        want = np.asarray(fn(*args))
        got = np.asarray(fn(*[bs(a) for a in args]))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    # and gradients through the byte-swapped input
    t = ops.convert_to_tensor(bs(x))
    with cc.GradientTape() as tape:
        tape.watch(t)
        y = ops.sum(ops.max_pool(ops.relu(t), 2))
    assert tape.gradient(y, t).shape == x.shape


# ----------------------------------------------------------------------------- arguments
def test_sparse_labels_are_validated():
    out3 = np.zeros((1, 3), np.float32)
    for labels in ([3], [-1], [0.5], [nan], [inf]):
        with pytest.raises(ValueError):
            ops.sparse_categorical_crossentropy(np.array(labels), out3, from_logits=True)
    with pytest.raises(ValueError):
        ops.sparse_categorical_crossentropy(np.array([[0, 1]]), out3)  # wrong shape
    with pytest.raises(ValueError):
        ops.sparse_categorical_crossentropy(np.array([0]), out3, axis=0)  # only the last axis
    with pytest.raises(ValueError):
        ops.sparse_categorical_crossentropy(np.array(0), np.float32(1))  # no class axis
    with pytest.raises(TypeError):
        ops.sparse_categorical_crossentropy(np.array(["a"]), out3)
    # whole floats and a trailing axis of 1 are labels
    got = ops.sparse_categorical_crossentropy(np.array([[2.0]]), out3, from_logits=True).numpy()
    np.testing.assert_allclose(got, [np.log(3.0)], rtol=1e-6)


def test_depthwise_conv_kernel_and_size_checks():
    x = np.ones((1, 3, 3, 2), np.float32)
    for k in (np.ones(0, np.float32), np.float32(1), np.ones((2, 2), np.float32)):
        with pytest.raises(ValueError):
            ops.depthwise_conv(x, k)
    huge = np.broadcast_to(np.float32(1), (1, 2 ** 20, 2 ** 10, 2 ** 11))  # 2**41 elements, 8 TiB
    t = time.perf_counter()
    with pytest.raises(MemoryError):
        ops.depthwise_conv(huge, np.ones((1, 1, 2 ** 11, 1), np.float32))
    assert time.perf_counter() - t < 2.0
    with pytest.raises(ValueError):
        ops.depthwise_conv(x, np.ones((1, 1, 2, 1), np.float32), strides=0)


def test_reductions_of_huge_views_fail_before_the_pass():
    x = np.broadcast_to(np.float32(1), (3, 2 ** 40))
    for fn in (lambda: ops.log_softmax(x), lambda: ops.softmax(x, axis=0), lambda: ops.moments(x, 0),
               lambda: ops.categorical_crossentropy(x, x, from_logits=True)):
        t = time.perf_counter()
        with pytest.raises(MemoryError):
            fn()
        assert time.perf_counter() - t < 2.0


@pytest.mark.parametrize("call", [
    lambda x: ops.dropout(x, "0.5"),
    lambda x: ops.dropout(x, None),
    lambda x: ops.dropout(x, nan),
    lambda x: ops.dropout(x, 1.0),
    lambda x: ops.dropout(x, -0.1),
    lambda x: ops.dropout(x, True),
    lambda x: ops.dropout(x, 0.0, seed="a"),
    lambda x: ops.dropout(x, 0.5, seed="a"),
    lambda x: ops.dropout(x, 0.5, seed=1.5),
    lambda x: ops.dropout(x, 0.5, seed=True),
    lambda x: ops.batch_normalization(x, np.zeros(3), np.ones(3), 2),
    lambda x: ops.batch_normalization(x, np.zeros(3), np.ones(3), -3),
    lambda x: ops.batch_normalization(x, np.zeros(3), np.ones(3), 1.0),
    lambda x: ops.batch_normalization(x, np.zeros(3), np.ones(3), True),
    lambda x: ops.batch_normalization(x, np.zeros(3), np.ones(3), -1, epsilon=-1.0),
    lambda x: ops.batch_normalization(x, np.zeros(3), np.ones(3), -1, epsilon="a"),
    lambda x: ops.batch_normalization(x, np.zeros(4), np.ones(3), -1),
    lambda x: ops.batch_normalization(np.float32(1), np.zeros(1), np.ones(1), 0),
    lambda x: ops.fused_batch_norm(x, None, None, -1.0, True, np.zeros(3), np.ones(3)),
    lambda x: ops.fused_batch_norm(x, None, None, 0.0, True, np.zeros(3), np.ones(3)),
    lambda x: ops.fused_batch_norm(x, None, None, nan, True, np.zeros(3), np.ones(3)),
    lambda x: ops.softmax(x, axis=True),
    lambda x: ops.softmax(x, axis=2),
    lambda x: ops.softmax(x, axis=1.0),
    lambda x: ops.softmax(x, axis="0"),
    lambda x: ops.log_softmax(x, axis=True),
    lambda x: ops.log_softmax(x, axis=-3),
    lambda x: ops.softmax(np.float32(1)),
    lambda x: ops.log_softmax(np.float32(1)),
    lambda x: ops.moments(x, 2),
    lambda x: ops.moments(x, (0, 0)),
    lambda x: ops.moments(x, True),
    lambda x: ops.moments(np.float32(1), 0),
    lambda x: ops.upsample2d(x.reshape(1, 2, 3, 1), (2.5, 2)),
    lambda x: ops.upsample2d(x.reshape(1, 2, 3, 1), (True, 2)),
    lambda x: ops.upsample2d(x.reshape(1, 2, 3, 1), 2),
    lambda x: ops.upsample2d(x.reshape(1, 2, 3, 1), (2,)),
    lambda x: ops.upsample2d(x.reshape(1, 2, 3, 1), "22"),
    lambda x: ops.upsample2d(x.reshape(1, 2, 3, 1), (0, 2)),
    lambda x: ops.image.resize(x.reshape(1, 2, 3, 1), (4.0, 6)),
    lambda x: ops.image.resize(x.reshape(1, 2, 3, 1), (4, True)),
    lambda x: ops.one_hot(np.array([1, 2]), 2.5),
    lambda x: ops.one_hot(np.array([1, 2]), 0),
    lambda x: ops.one_hot(np.array([1, 2]), -1),
    lambda x: ops.one_hot(np.array([1, 2]), True),
    lambda x: ops.one_hot(np.array([1, 2]), "3"),
    lambda x: ops.one_hot(np.array([1, 2]), 3, axis=0),
    lambda x: ops.one_hot(np.array([1.0, 2.0]), 3),
    lambda x: ops.leaky_relu(x, negative_slope="a"),
    lambda x: ops.leaky_relu(x, negative_slope=None),
    lambda x: ops.elu(x, alpha=nan),
    lambda x: ops.categorical_crossentropy(x, x, axis=5),
    lambda x: ops.categorical_crossentropy(x, x, axis=True),
    lambda x: ops.conv_transpose(x.reshape(1, 2, 3, 1), np.ones((2, 2, 1, 1), np.float32), output_padding=1.5),
    lambda x: ops.conv_transpose(x.reshape(1, 2, 3, 1), np.ones((2, 2, 1, 1), np.float32), output_padding=True),
    lambda x: ops.conv_transpose(x.reshape(1, 2, 3, 1), np.ones((2, 2, 1, 1), np.float32), output_padding=-1),
])
def test_invalid_arguments_are_refused(call):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    raises_ok(lambda: call(x))


def test_valid_edge_arguments_still_work():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert ops.dropout(x, 0.0, seed=None) is not None
    assert ops.dropout(x, 0.5, seed=np.int64(3)).shape == (2, 3)
    assert ops.dropout(x, 0.5, seed=-1).shape == (2, 3)
    assert ops.dropout(x, 0.5, seed=2 ** 64).shape == (2, 3)
    assert ops.batch_normalization(x, np.zeros(2), np.ones(2), 0, epsilon=0).shape == (2, 3)
    assert ops.one_hot(np.array([1, 5, -1]), np.int64(3)).numpy().tolist() == [[0, 1, 0], [0, 0, 0], [0, 0, 0]]
    assert ops.upsample2d(x.reshape(1, 2, 3, 1), [np.int64(2), 1]).shape == (1, 4, 3, 1)
    m, v = ops.moments(x, (0, -1))
    assert m.shape == () and v.shape == ()
    m, v = ops.moments(x, [1], keepdims=True)
    assert m.shape == (2, 1)
    assert ops.softmax(x, axis=np.int64(0)).shape == (2, 3)
    t = ops.convert_to_tensor(np.array([[1, 2]], np.int32))
    assert ops.softmax_logits(ops.softmax(t)) is t


def test_cross_entropy_of_a_softmax_of_integer_logits_keeps_soft_targets():
    x = ops.convert_to_tensor(np.array([[1, 3], [2, 2]], np.int32))
    t = np.array([[0.3, 0.7], [0.5, 0.5]], np.float32)
    want = ops.categorical_crossentropy(t, np.asarray(x, np.float32), from_logits=True).numpy()
    np.testing.assert_allclose(ops.categorical_crossentropy(t, ops.softmax(x)).numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(float(ops.fused_loss("categorical_crossentropy", t, ops.softmax(x))),
                               float(np.mean(want)), rtol=1e-6)
