"""convcore.activations against Keras 3: values equal ``keras.activations.X`` for the same
inputs and arguments (float32), the GPU equals the CPU (values and gradients), gradients
equal float64 central finite differences; ``get`` / ``serialize`` / ``deserialize``."""
from __future__ import annotations

import json
import os
import pickle

import keras
import numpy as np
import pytest
from scipy.special import erfc

import convcore as cc
from convcore import _core, activations as A, ops
from finite_differences import central_differences

HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CI requires a GPU adapter (lavapipe) for the GPU half of these tests")
needs_gpu = pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter (install mesa-vulkan-drivers for lavapipe)")

# Inputs at least 0.07 from every kink of the table (0; +-0.5, +-1, +-3, 6; the
# thresholds and max_values below), so central differences with eps 1e-6 see smooth
# functions; the tails (-7.3, 7.7) exercise exp / softplus / erf far from 0.
X = np.array([[-7.3, -4.1, -2.9, -1.7, -0.83], [-0.41, -0.12, 0.07, 0.33, 0.64], [1.26, 2.2, 3.4, 5.3, 7.7]])

CASES = [
    ("linear", {}), ("relu", {}), ("relu", {"negative_slope": 0.1}), ("relu", {"max_value": 2.5}),
    ("relu", {"threshold": 1.0}), ("relu", {"negative_slope": 0.1, "max_value": 3.0, "threshold": -1.0}),
    ("relu", {"negative_slope": 0.3, "threshold": 0.5}), ("relu", {"max_value": 6.0}),
    ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.05}), ("relu6", {}),
    ("softmax", {}), ("softmax", {"axis": 0}), ("log_softmax", {}), ("log_softmax", {"axis": 0}),
    ("elu", {}), ("elu", {"alpha": 0.5}), ("selu", {}), ("celu", {}), ("celu", {"alpha": 2.0}),
    ("gelu", {}), ("gelu", {"approximate": True}), ("silu", {}), ("swish", {}), ("hard_silu", {}),
    ("hard_swish", {}), ("mish", {}), ("softplus", {}), ("softsign", {}), ("squareplus", {}),
    ("squareplus", {"b": 1.5}), ("sparse_plus", {}), ("sigmoid", {}), ("hard_sigmoid", {}),
    ("log_sigmoid", {}), ("sparse_sigmoid", {}), ("tanh", {}), ("hard_tanh", {}), ("tanh_shrink", {}),
    ("soft_shrink", {}), ("soft_shrink", {"threshold": 1.0}), ("hard_shrink", {}),
    ("hard_shrink", {"threshold": 2.0}), ("threshold", {"threshold": 0.2, "default_value": -1.5}),
    ("glu", {}), ("glu", {"axis": 0}), ("exponential", {}),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]


def _input(name, kw, dtype):
    if name == "glu":  # the gated axis must have an even size
        return np.asarray(X[:2, :4] if kw.get("axis") == 0 else X[:, :4], dtype=dtype)
    return np.asarray(X, dtype=dtype)


def _fn(name, kw):
    return lambda x: getattr(A, name)(x, **kw)


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_values_equal_kerass(name, kw):
    x = _input(name, kw, np.float32)
    ours = _fn(name, kw)(x)
    assert isinstance(ours, cc.Tensor) and ours.dtype == np.float32
    ref = np.asarray(getattr(keras.activations, name)(x, **kw))
    # rtol 1e-5 of float32 values; atol 1e-7 for the values that are differences of
    # nearly equal numbers (tanh_shrink near 0, log_sigmoid / softplus tails), where
    # either library's rounding is the size of float32's eps at the operands' scale.
    # Keras's tanh-form gelu computes 1 + tanh(u), which cancels for x < -3 (absolute
    # error ~ eps * |x|: 0.1% of the value at -4.1); ours has no cancellation, checked
    # against float64 at rtol 1e-5 below.
    atol = 3e-7 if name == "gelu" and kw.get("approximate") else 1e-7
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-5, atol=atol)


def test_approximate_gelu_equals_its_float64_formula():
    x = np.linspace(-9, 9, 181)
    u = np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)
    exact = x / (1 + np.exp(-2 * u))  # = x (1 + tanh u) / 2 without float64's cancellation
    # rtol 1e-5: float32 rounding of u (up to 72 at |x| = 9: 72 * 6e-8) moves exp(-2u) by 4e-6
    np.testing.assert_allclose(A.gelu(x.astype(np.float32), approximate=True).numpy(), exact, rtol=1e-5)


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_gradients_equal_float64_finite_differences(name, kw):
    x = _input(name, kw, np.float64)
    f = _fn(name, kw)
    r = np.random.default_rng(0).uniform(0.5, 1.5, f(x).shape)  # a random cotangent
    t = ops.convert_to_tensor(x)
    with cc.GradientTape() as tape:
        tape.watch(t)
        y = f(t)
        loss = ops.sum(y * r)
    assert y.dtype == np.float64
    g = tape.gradient(loss, t).numpy()
    num = central_differences(lambda a: np.sum(f(a).numpy() * r), x, 1e-6)
    err = np.max(np.abs(g - num)) / max(np.max(np.abs(num)), 1e-3)
    assert err <= 1e-6, f"relative error {err:.3g}\nanalytic {g}\nnumeric {num}"


def test_float32_gelu_gradient_is_the_exact_derivative():
    # float32 gelu has its own erfc path (float64 FD above tests the float64 path):
    # d/dx x Phi(x) = Phi(x) + x phi(x), in float64 with scipy
    x = np.linspace(-9, 9, 181).astype(np.float32)
    t = ops.convert_to_tensor(x)
    with cc.GradientTape() as tape:
        tape.watch(t)
        loss = ops.sum(A.gelu(t))
    g = tape.gradient(loss, t).numpy()
    x64 = x.astype(np.float64)
    exact = 0.5 * erfc(-x64 / np.sqrt(2)) + x64 * np.exp(-x64 ** 2 / 2) / np.sqrt(2 * np.pi)
    # rtol 1e-5: the erfc approximation's 1.2e-7 plus float32 rounding of exp's
    # argument (x**2 / 2 up to 40: 40 * 6e-8); atol for the derivative's zero near -0.75
    np.testing.assert_allclose(g, exact, rtol=1e-5, atol=1e-6)


def test_float32_gelu_tail_has_no_cancellation():
    # (1 + erf(x / sqrt 2)) / 2 in float32 is 5% off at -5; ours is float32-exact
    x = np.array([-12.0, -8.0, -5.0, -3.0], np.float32)
    exact = x.astype(np.float64) * 0.5 * erfc(-x.astype(np.float64) / np.sqrt(2))
    # rtol 2e-5: exp of an argument near -72 rounded to float32 (ulp 7.6e-6)
    np.testing.assert_allclose(A.gelu(x).numpy(), exact, rtol=2e-5)


@needs_gpu
@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
def test_gpu_equals_cpu(name, kw):
    x = _input(name, kw, np.float32)
    f = _fn(name, kw)
    out = {}
    for dev in ("cpu", "gpu"):
        t = ops.convert_to_tensor(x, device=dev)
        with cc.GradientTape() as tape:
            tape.watch(t)
            y = f(t)
            loss = ops.sum(y * np.linspace(0.5, 1.5, y.size, dtype=np.float32).reshape(y.shape))
        assert y.device == dev
        out[dev] = (y.numpy(), tape.gradient(loss, t).numpy())
    # rtol 1e-5 as everywhere; atol 1e-6: the GPU's exp / log / tanh are float32
    # shaders whose last bits differ from numpy's near results of 0
    for a, b in zip(out["gpu"], out["cpu"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_every_keras_activation_name_is_here():
    from keras.src.activations import ALL_OBJECTS_DICT
    missing = set(ALL_OBJECTS_DICT) - set(A.ACTIVATIONS)
    assert missing == {"sparsemax"}  # not built (needs a sort): README's known differences
    for n in ALL_OBJECTS_DICT:
        if n != "sparsemax":
            assert A.get(n) == n and callable(A.get(n))


def test_get_returns_callable_names_that_configs_and_fusion_use():
    r = A.get("relu")
    assert r == "relu" and isinstance(r, str) and r in A.NATIVE
    x = np.array([-1.0, 2.0], np.float32)
    np.testing.assert_array_equal(r(x).numpy(), [0.0, 2.0])
    np.testing.assert_array_equal(A.get("leaky_relu")(x, negative_slope=0.5).numpy(), [-0.5, 2.0])
    assert A.get(None) == "linear" and A.get("ReLU") == "relu"
    for f, n in ((A.gelu, "gelu"), (ops.relu, "relu"), (ops.softmax, "softmax"), (keras.activations.mish, "mish"),
                 (keras.activations.hard_swish, "hard_silu"), (ops.exp, "exponential")):
        assert A.get(f) == n
    assert A.get({"class_name": "function", "config": "selu", "module": "keras.activations",
                  "registered_name": None}) == "selu"
    assert type(A.serialize(A.get("tanh"))) is str and A.serialize(A.get("tanh")) == "tanh"
    assert json.dumps({"a": A.get("tanh")}) == '{"a": "tanh"}'
    assert pickle.loads(pickle.dumps(A.get("elu"))) == "elu"
    # what Keras serializes its built-ins as: their names
    for n in ("relu", "gelu", "softmax", "hard_silu"):
        assert A.serialize(A.get(n)) == keras.activations.serialize(getattr(keras.activations, n))


def test_tf_keras_2_alpha_is_the_negative_slope():
    x = X.astype(np.float32)
    np.testing.assert_array_equal(A.relu(x, alpha=0.1, max_value=3.0).numpy(),
                                  A.relu(x, negative_slope=0.1, max_value=3.0).numpy())
    np.testing.assert_array_equal(A.leaky_relu(x, alpha=0.3).numpy(), A.leaky_relu(x, negative_slope=0.3).numpy())
    with pytest.raises(TypeError, match="both negative_slope=0.1 and alpha=0.2"):
        A.relu(x, 0.1, alpha=0.2)


def test_user_functions_round_trip_by_name():
    from convcore.saving import register_keras_serializable

    def halve(x):
        return x * 0.5

    assert A.get(halve) is halve
    assert A.serialize(halve) == "halve"
    assert A.deserialize("halve", custom_objects={"halve": halve}) is halve

    @register_keras_serializable(package="test_activations")
    def double(x):
        return x * 2.0

    assert A.serialize(double) == "double" and A.get("double") is double
    # what Keras 3 writes for the same function registered the same way loads as ours
    @keras.saving.register_keras_serializable(package="test_activations", name="double")
    def keras_double(x):
        return x * 2.0

    saved = keras.activations.serialize(keras_double)
    assert saved["config"] == "test_activations>double"
    assert A.deserialize(saved) is double
    with pytest.raises(ValueError, match="lambda"):
        A.serialize(lambda x: x)


@pytest.mark.parametrize("call,err,match", [
    (lambda: A.get("relu7"), ValueError, r"Unknown activation 'relu7'; valid activations are linear, relu"),
    (lambda: A.get(3), ValueError, "Unknown activation 3"),
    (lambda: A.relu(X, negative_slope="a"), TypeError, "relu: negative_slope must be a real number"),
    (lambda: A.relu(X, max_value=float("nan")), ValueError, "relu: max_value must be a finite number"),
    (lambda: A.gelu(X, approximate="yes"), TypeError, "gelu: approximate must be True or False"),
    (lambda: A.celu(X, alpha=0), ValueError, "celu: alpha must be non-zero"),
    (lambda: A.glu(X), ValueError, "glu: axis -1 must have an even size"),
    (lambda: A.glu(X, axis=2), ValueError, "glu"),
    (lambda: A.squareplus(X, b=-1), ValueError, "squareplus: b must be >= 0"),
    (lambda: A.softmax(np.float32(1.0)), ValueError, "softmax"),
    (lambda: A.deserialize({"class_name": "function", "config": 5}), ValueError, "Could not interpret"),
])
def test_bad_arguments_are_clear_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()
