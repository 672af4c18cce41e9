"""GradientTape (TensorFlow's interface) and what it makes possible: custom layers with
several inputs and outputs, custom losses and metrics as plain functions of ops,
``Lambda`` layers, and hand-written training loops — on the CPU and the GPU, with no
gradient code. Gradients are checked against float64 central finite differences and
against the model's own ``input_gradient``.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import convcore as cc
from convcore import _core, layers as L, ops

HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CI requires a GPU adapter (lavapipe) for the tape tests' GPU half")
DEVICES = ["cpu"] + (["gpu"] if HAVE_GPU else [])

rng = np.random.default_rng(7)


def fd(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in range(x.size):
        xp, xm = x.copy(), x.copy()
        xp.flat[i] += eps
        xm.flat[i] -= eps
        g.flat[i] = (f(xp) - f(xm)) / (2 * eps)
    return g


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-3))


# ---------------------------------------------------------------- the tape itself
def test_gradient_of_a_user_composite_function_matches_finite_differences():
    def f(x, w):
        h = ops.tanh(ops.matmul(x, w))
        return ops.logsumexp(ops.concatenate([h, ops.square(h)[:, :1]], axis=1), axis=1)

    x = rng.standard_normal((4, 3))
    w = rng.standard_normal((3, 2))
    xt, wt = ops.convert_to_tensor(x), cc.Variable(w)
    with cc.GradientTape() as tape:
        tape.watch(xt)
        y = ops.sum(f(xt, wt))
    gx, gw = tape.gradient(y, [xt, wt])
    assert rel(gx.numpy(), fd(lambda v: float(ops.sum(f(v, w))), x)) <= 1e-6
    assert rel(gw.numpy(), fd(lambda v: float(ops.sum(f(x, v))), w)) <= 1e-6


def test_nested_sources_unconnected_and_persistent():
    a, b, c = (ops.convert_to_tensor(np.array(v)) for v in (2.0, 3.0, 5.0))
    with cc.GradientTape(persistent=True) as tape:
        tape.watch([a, b, c])
        y = a * a * b
        z = y + 1.0
    g = tape.gradient(z, {"a": a, "pair": (b, c)})
    assert float(g["a"]) == 12.0 and float(g["pair"][0]) == 4.0
    assert g["pair"][1] is None  # z does not depend on c: None, as TF
    assert float(tape.gradient(z, c, unconnected_gradients="zero")) == 0.0
    assert float(tape.gradient(y, a)) == 12.0  # persistent: a second call works
    with cc.GradientTape() as t2:
        t2.watch(a)
        y = a * 3.0
    t2.gradient(y, a)
    with pytest.raises(RuntimeError, match="non-persistent"):
        t2.gradient(y, a)


def test_variables_are_watched_unless_asked_not_to():
    v = cc.Variable(np.array([1.0, 2.0]))
    frozen = cc.Variable(np.array([1.0, 2.0]), trainable=False)
    with cc.GradientTape() as tape:
        y = ops.sum(v * frozen)
    gv, gf = tape.gradient(y, [v, frozen])
    np.testing.assert_array_equal(gv.numpy(), [1.0, 2.0])
    assert gf is None
    with cc.GradientTape(watch_accessed_variables=False) as tape:
        y = ops.sum(v * v)
    assert tape.gradient(y, v) is None
    with cc.GradientTape() as tape:
        with tape.stop_recording():
            y = ops.sum(v * v)
    assert tape.gradient(y, v) is None


def test_watch_rejects_arrays_with_a_clear_message():
    with cc.GradientTape() as tape:
        with pytest.raises(TypeError, match="convert_to_tensor"):
            tape.watch(np.ones(3))


def test_jacobian():
    x = ops.convert_to_tensor(np.array([1.0, 2.0, 3.0]))
    with cc.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = ops.square(x)
    np.testing.assert_allclose(tape.jacobian(y, x).numpy(), np.diag([2.0, 4.0, 6.0]))


def test_tensor_basics_and_numpy_interop():
    a = np.arange(6.0).reshape(2, 3)
    t = ops.convert_to_tensor(a)
    assert np.asarray(t) is t._data or np.shares_memory(np.asarray(t), a)
    assert t.shape == (2, 3) and t.dtype == np.float64 and t.ndim == 2 and len(t) == 2
    assert isinstance(a + t, cc.Tensor)  # numpy defers to the tensor: the op is recorded
    np.testing.assert_array_equal((t * 2 - 1)[1], a[1] * 2 - 1)
    np.testing.assert_array_equal(t.T, a.T)
    np.testing.assert_array_equal((t > 2).numpy(), a > 2)
    assert float(t.sum()) == 15.0 and np.mean(t) == pytest.approx(2.5)


# ---------------------------------------------------------------- custom layers, losses, Lambda
class Gate(L.Layer):
    """Two inputs, two outputs, a training flag and weights from add_weight."""

    def build(self, input_shape):
        d = input_shape[0][-1]
        self.w = self.add_weight(shape=(d, d), initializer="glorot_uniform", name="w")
        self.b = self.add_weight(shape=(d,), initializer="zeros", name="b")

    def call(self, inputs, training=None):
        a, b = inputs
        g = ops.sigmoid(ops.matmul(a, self.w) + self.b)
        mixed = g * a + (1.0 - g) * b
        if training:
            mixed = mixed * 1.0
        return [mixed, ops.abs(a - b)]

    def compute_output_shape(self, input_shape):
        return [input_shape[0], input_shape[0]]


def _gate_model():
    cc.set_seed(3)
    a, b = cc.Input((4,)), cc.Input((4,))
    m, d = Gate(name="gate")([a, b])
    h = L.Concatenate()([m, d])
    h = L.Lambda(lambda t: ops.tanh(t) * 2.0)(h)
    out = L.Dense(3, activation="softmax")(h)
    return cc.Model([a, b], out)


def _custom_loss(y_true, y_pred):
    return -ops.sum(y_true * ops.log(ops.clip(y_pred, 1e-7, 1.0)), axis=-1)


def _mean_abs_err(y_true, y_pred):
    return ops.mean(ops.abs(y_true - y_pred), axis=-1)


@pytest.mark.parametrize("device", DEVICES)
def test_custom_layer_loss_metric_and_lambda_train_in_fit(device):
    x1 = rng.standard_normal((96, 4)).astype(np.float32)
    x2 = rng.standard_normal((96, 4)).astype(np.float32)
    labels = (x1[:, 0] > x2[:, 1]).astype(int) + (x1[:, 2] > 0)
    y = np.eye(3, dtype=np.float32)[labels]
    m = _gate_model()
    m.compile(cc.optimizers.Adam(0.05), loss=_custom_loss, metrics=["accuracy", _mean_abs_err], device=device)
    w0 = [w.copy() for w in m.get_weights()]
    h = m.fit([x1, x2], y, epochs=8, batch_size=16, verbose=0)
    assert set(h.history) == {"loss", "accuracy", "_mean_abs_err"}
    assert h.history["loss"][-1] < 0.7 * h.history["loss"][0]
    w1 = m.get_weights()
    assert all(not np.array_equal(a, b) for a, b in zip(w0, w1))  # every weight, the gate's included
    assert m.get_layer("gate").weights[0].device == device


def test_custom_loss_and_layer_gradients_match_finite_differences():
    cc.set_floatx("float64")
    try:
        m = _gate_model()
        m.compile("sgd", loss=_custom_loss)
        x1, x2 = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
        y = np.eye(3)[[0, 2, 1, 1, 0]]
        loss, grads = m.loss_and_gradients([x1, x2], y)
        w0 = m.get_weights()
        for i in (0, 1, len(w0) - 1):
            def f(v, i=i):
                ws = [a.copy() for a in w0]
                ws[i] = v
                m.set_weights(ws)
                return m.loss_and_gradients([x1, x2], y)[0]
            num = fd(f, w0[i].copy())
            m.set_weights(w0)
            assert rel(grads[i], num) <= 1e-6, i
    finally:
        cc.set_floatx("float32")


@pytest.mark.parametrize("device", DEVICES)
def test_tape_gradient_equals_input_gradient(device):
    cc.set_seed(0)
    m = cc.Sequential([L.Input((8, 8, 1)), L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(),
                       L.Flatten(), L.Dense(5, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", device=device)
    x = rng.uniform(0, 1, (6, 8, 8, 1)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 4, 0])
    loss_fn = cc.losses.SparseCategoricalCrossentropy()
    xt = ops.convert_to_tensor(x, device=device)
    with cc.GradientTape() as tape:
        tape.watch(xt)
        loss = loss_fn(y, m(xt))
    g = tape.gradient(loss, xt)
    np.testing.assert_allclose(g.numpy(), m.input_gradient(x, y), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("device", DEVICES)
def test_a_hand_written_training_loop_and_fgsm(device):
    """TensorFlow's custom training loop and its FGSM tutorial, with convcore names."""
    cc.set_seed(1)
    x = rng.uniform(0, 1, (64, 6, 6, 1)).astype(np.float32)
    y = (x[:, :3].mean(axis=(1, 2, 3)) > x[:, 3:].mean(axis=(1, 2, 3))).astype(int)
    model = cc.Sequential([L.Input((6, 6, 1)), L.Conv2D(4, 3, activation="relu"), L.Flatten(),
                           L.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", device=device)
    model._place()
    opt = cc.optimizers.Adam(learning_rate=0.02)
    loss_fn = cc.losses.SparseCategoricalCrossentropy()
    losses = []
    for epoch in range(15):
        with cc.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_weights)
        opt.apply_gradients(zip(grads, model.trainable_weights))
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    image = ops.convert_to_tensor(x[:8], device=device)
    with cc.GradientTape() as tape:
        tape.watch(image)
        loss = loss_fn(y[:8], model(image))
    signed = ops.sign(tape.gradient(loss, image))
    adv = ops.clip(image + 0.1 * signed, 0.0, 1.0)
    assert float(loss_fn(y[:8], model(adv))) > float(loss)


def test_lambda_saves_by_name_and_loads_with_custom_objects(tmp_path):
    def double_in_tape_test(t):  # a name no other test registers (the registry is global)
        return t * 2.0

    m = cc.Sequential([L.Input((3,)), L.Lambda(double_in_tape_test, name="dbl"), L.Dense(2)])
    m.compile("sgd", "mse")
    p = tmp_path / "m.convcore"
    m.save(p)
    with pytest.raises(ValueError, match="custom_objects"):
        cc.load_model(p)
    again = cc.load_model(p, custom_objects={"double_in_tape_test": double_in_tape_test})
    x = rng.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(again.predict(x), m.predict(x), rtol=1e-6)


def test_layer_call_on_numpy_returns_a_tensor_with_keras_meaning():
    d = L.Dense(3, activation="relu")
    y = d(np.ones((2, 4), np.float32))
    assert isinstance(y, cc.Tensor) and y.shape == (2, 3)
    assert len(d.weights) == 2 and d.kernel.shape == (4, 3)
    assert d.trainable_weights == d.weights
    d.trainable = False
    assert d.trainable_weights == [] and len(d.non_trainable_weights) == 2


def test_sublayers_are_tracked():
    class Block(L.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.a = L.Dense(4, activation="relu")
            self.b = L.Dense(2)

        def call(self, x):
            return self.b(self.a(x))

    blk = Block()
    y = blk(np.ones((3, 5), np.float32))
    assert y.shape == (3, 2) and len(blk.weights) == 4
    x = ops.convert_to_tensor(np.ones((3, 5), np.float32))
    with cc.GradientTape() as tape:
        loss = ops.sum(blk(x))
    grads = tape.gradient(loss, blk.trainable_weights)
    assert all(g is not None for g in grads)


def _autoencoder(interpolation):
    cc.set_seed(5)
    return cc.Sequential([L.Input((8, 8, 1)), L.Conv2D(4, 3, padding="same", activation="relu"), L.MaxPooling2D(),
                          L.UpSampling2D(2, interpolation=interpolation), L.Conv2D(1, 3, padding="same")])


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_upsampling2d_trains_the_same_on_every_device(interpolation):
    x = rng.uniform(0, 1, (16, 8, 8, 1)).astype(np.float32)
    runs = {}
    for dev in DEVICES:
        m = _autoencoder(interpolation)
        m.compile(cc.optimizers.Adam(0.01), "mse", device=dev)
        assert m.output_shape == (None, 8, 8, 1)
        runs[dev] = [m.train_on_batch(x, x) for _ in range(5)]
        assert runs[dev][-1] < runs[dev][0]
    if "gpu" in runs:
        np.testing.assert_allclose(runs["gpu"], runs["cpu"], rtol=1e-3)


def test_readme_tape_block_runs():
    """The README's tensors / ops / GradientTape example, as a user copies it."""
    import pathlib
    import re
    text = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "class Gate(layers.Layer)" in b]
    assert len(blocks) == 1
    ns = {}
    exec(blocks[0], ns)
    adv = ns["adv"]
    assert adv.shape == (8, 4) and float(ops.min(adv)) >= 0.0 and float(ops.max(adv)) <= 1.0
