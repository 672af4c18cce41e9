"""Gradients of convcore's Keras-style models against float64 central finite differences.

Every check builds a tiny model in float64, compares ``model.loss_and_gradients``
(gradients aligned with ``get_weights()``) and ``model.input_gradient`` with central
differences of the loss, and requires a relative error of at most 1e-6 per array:
norm(a - b) / max(norm(a), norm(b), 1e-3). The 1e-3 floor makes arrays whose gradient
is genuinely zero (a bias feeding batch normalization) an absolute check at 1e-9: FD
round-off is ~1e-10 per element. Non-trainable weights (batch-norm moving statistics) must get zero gradients.

Relu kinks are avoided (sigmoid/tanh in the random-shape tests; where relu is tested
the pre-activations are checked to stay well away from 0).
"""
from __future__ import annotations

import zlib

import numpy as np
import pytest

import convcore
from convcore import Input, Model, Sequential, layers, losses

EPS = 1e-6
TOL = 1e-6
FLOOR = 1e-3  # absolute floor: FD round-off is ~1e-10 per element; genuinely zero gradients (bias before BN) need it


@pytest.fixture(autouse=True)
def float64(request):
    convcore.set_floatx("float64")
    convcore.set_seed(1234)
    request.addfinalizer(lambda: convcore.set_floatx("float32"))


# ---------------------------------------------------------------------- helpers
def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), FLOOR))


def trainable_mask(model):
    return [m for l in model.layers for m in l.trainable_mask]


def loss_at(model, x, y, training):
    return model.loss_and_gradients(x, y, training=training)[0]


def check_weight_grads(model, x, y, training=False, tol=TOL):
    w0 = model.get_weights()
    loss, grads = model.loss_and_gradients(x, y, training=training)
    assert np.isfinite(loss)
    assert len(grads) == len(w0)
    mask = trainable_mask(model)
    assert len(mask) == len(w0)
    for i, (w, g) in enumerate(zip(w0, grads)):
        assert g.shape == w.shape, (i, g.shape, w.shape)
        assert g.dtype == np.float64
        if not mask[i]:
            assert not np.any(g), f"non-trainable weight {i} got a non-zero gradient"
            continue
        num = np.zeros_like(w)
        for j in range(w.size):
            ws = [a.copy() for a in w0]
            ws[i].flat[j] += EPS
            model.set_weights(ws)
            lp = loss_at(model, x, y, training)
            ws[i].flat[j] -= 2 * EPS
            model.set_weights(ws)
            lm = loss_at(model, x, y, training)
            num.flat[j] = (lp - lm) / (2 * EPS)
        model.set_weights(w0)
        err = rel_err(g, num)
        assert err <= tol, f"weight {i} (shape {w.shape}): relative error {err:.3g}\nanalytic {g}\nnumeric {num}"
    return loss, grads


def check_input_grad(model, x, y, training=False, tol=TOL):
    w0 = model.get_weights()
    g = model.input_gradient(x, y, training=training)
    assert g.shape == x.shape
    num = np.zeros_like(x)
    for j in range(x.size):
        xp = x.copy()
        xp.flat[j] += EPS
        model.set_weights(w0)
        lp = loss_at(model, xp, y, training)
        xp.flat[j] -= 2 * EPS
        model.set_weights(w0)
        lm = loss_at(model, xp, y, training)
        num.flat[j] = (lp - lm) / (2 * EPS)
    model.set_weights(w0)
    err = rel_err(g, num)
    assert err <= tol, f"input gradient: relative error {err:.3g}\nanalytic {g}\nnumeric {num}"
    return g


def check_all(model, x, y, training=False, tol=TOL):
    check_weight_grads(model, x, y, training, tol)
    check_input_grad(model, x, y, training, tol)


def randn(rng, *shape):
    return rng.standard_normal(shape)


def sparse_labels(rng, n, k):
    return rng.integers(0, k, size=n)


def compiled(model, loss="sparse_categorical_crossentropy"):
    model.compile(optimizer="sgd", loss=loss)
    return model


# ---------------------------------------------------------------------- dense
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "linear", None, "softmax"])
def test_dense_activations(activation):
    rng = np.random.default_rng(0)
    m = Sequential([Input((4,)), layers.Dense(5, activation=activation), layers.Dense(3, activation="softmax")])
    m.get_layer(index=0).set_weights([randn(rng, 4, 5) * 0.7, randn(rng, 5) * 0.3])
    compiled(m)
    x = randn(rng, 6, 4)
    check_all(m, x, sparse_labels(rng, 6, 3))


def test_dense_relu_away_from_kink():
    rng = np.random.default_rng(1)
    m = compiled(Sequential([Input((3,)), layers.Dense(4, activation="relu", name="r"),
                             layers.Dense(2, activation="softmax")]))
    x = randn(rng, 5, 3)
    # Choose kernel/bias so that every pre-activation is at least 0.05 away from 0.
    for _ in range(100):
        w, b = randn(rng, 3, 4), randn(rng, 4)
        if np.abs(x @ w + b).min() > 0.05 and ((x @ w + b) > 0).any():
            break
    else:  # pragma: no cover
        pytest.fail("could not draw relu weights away from the kink")
    m.get_layer("r").set_weights([w, b])
    check_all(m, x, sparse_labels(rng, 5, 2))


def test_dense_on_3d_input():
    rng = np.random.default_rng(2)
    m = compiled(Sequential([Input((3, 4)), layers.Dense(2, activation="tanh"), layers.Flatten(),
                             layers.Dense(3, activation="softmax")]))
    check_all(m, randn(rng, 4, 3, 4), sparse_labels(rng, 4, 3))


def test_dense_without_bias():
    rng = np.random.default_rng(3)
    m = compiled(Sequential([Input((4,)), layers.Dense(3, activation="tanh", use_bias=False),
                             layers.Dense(2, activation="softmax", use_bias=False)]))
    assert [w.shape for w in m.get_weights()] == [(4, 3), (3, 2)]
    check_all(m, randn(rng, 5, 4), sparse_labels(rng, 5, 2))


# ---------------------------------------------------------------------- convolutions
def _conv_cases():
    rng = np.random.default_rng(20240501)
    cases = []
    for rank, n_cases, size_hi in ((1, 14, 9), (2, 12, 7), (3, 8, 5)):
        for _ in range(n_cases):
            k = tuple(int(v) for v in rng.integers(1, 4, rank))
            s = tuple(int(v) for v in rng.integers(1, 3, rank))
            d = tuple(int(v) for v in rng.integers(1, 3, rank))
            padding = str(rng.choice(["valid", "same"]))
            lo = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
            size = tuple(int(rng.integers(l, max(l, size_hi) + 1)) for l in lo)
            cin = int(rng.integers(1, 3))
            filters = int(rng.integers(1, 3))
            cases.append((rank, size, cin, filters, k, s, d, padding))
    # Corner cases: stride and dilation 2 together, 'same' with even kernels, 1x1 kernels.
    cases += [
        (1, (7,), 2, 2, (3,), (2,), (2,), "same"),
        (2, (5, 6), 1, 2, (2, 2), (1, 1), (1, 1), "same"),
        (2, (6, 5), 2, 1, (3, 2), (2, 2), (2, 1), "same"),
        (2, (4, 4), 2, 2, (1, 1), (2, 2), (1, 1), "valid"),
        (3, (4, 4, 3), 1, 2, (2, 2, 2), (2, 1, 1), (1, 2, 1), "same"),
    ]
    return cases


_CONV = {1: layers.Conv1D, 2: layers.Conv2D, 3: layers.Conv3D}


@pytest.mark.parametrize("rank,size,cin,filters,k,s,d,padding", _conv_cases())
def test_conv_random_shapes(rank, size, cin, filters, k, s, d, padding):
    rng = np.random.default_rng(zlib.crc32(repr((rank, size, cin, filters, k, s, d, padding)).encode()))
    conv = _CONV[rank](filters, k, strides=s, padding=padding, dilation_rate=d, activation="tanh", name="conv")
    m = compiled(Sequential([Input(size + (cin,)), conv, layers.Flatten(), layers.Dense(3, activation="softmax")]))
    conv.set_weights([randn(rng, *k, cin, filters) * 0.6, randn(rng, filters) * 0.2])
    x = randn(rng, 2, *size, cin)
    check_all(m, x, sparse_labels(rng, 2, 3))


def test_conv_stack_relu_away_from_kink():
    """Two convolutions with relu; checked only where no pre-activation is near 0."""
    rng = np.random.default_rng(5)
    c1 = layers.Conv2D(2, 3, activation="relu", padding="same", name="c1")
    m = compiled(Sequential([Input((5, 5, 1)), c1, layers.Conv2D(2, 2, strides=2, activation="tanh"),
                             layers.Flatten(), layers.Dense(2, activation="softmax")]))
    x = randn(rng, 2, 5, 5, 1)
    probe = Sequential([Input((5, 5, 1)), layers.Conv2D(2, 3, padding="same", name="probe")])
    for _ in range(500):
        w, b = randn(rng, 3, 3, 1, 2), randn(rng, 2)
        probe.get_layer("probe").set_weights([w, b])
        if np.abs(probe.predict(x)).min() > 1e-3:
            break
    else:  # pragma: no cover
        pytest.fail("could not draw weights away from the relu kink")
    c1.set_weights([w, b])
    check_all(m, x, sparse_labels(rng, 2, 2))


# ---------------------------------------------------------------------- pooling
_POOLS = [
    (layers.MaxPooling1D, (7,), 2, None), (layers.MaxPooling1D, (8,), 3, 2),
    (layers.AveragePooling1D, (7,), 2, None), (layers.AveragePooling1D, (8,), 3, 2),
    (layers.MaxPooling2D, (5, 6), 2, None), (layers.MaxPooling2D, (5, 5), (3, 2), (2, 1)),
    (layers.AveragePooling2D, (5, 6), 2, None), (layers.AveragePooling2D, (5, 5), (3, 2), (2, 1)),
    (layers.MaxPooling3D, (3, 4, 5), 2, None), (layers.AveragePooling3D, (3, 4, 5), 2, None),
    (layers.MaxPooling3D, (4, 3, 3), (2, 2, 1), (1, 2, 1)), (layers.AveragePooling3D, (4, 3, 3), (2, 2, 1), (1, 2, 1)),
]


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("cls,size,pool,strides", _POOLS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_pooling(cls, size, pool, strides, padding):
    rng = np.random.default_rng(7)
    m = compiled(Sequential([Input(size + (2,)), cls(pool, strides=strides, padding=padding), layers.Flatten(),
                             layers.Dense(3, activation="softmax")]))
    x = randn(rng, 2, *size, 2)  # continuous values: no ties for max pooling
    check_all(m, x, sparse_labels(rng, 2, 3))


@pytest.mark.parametrize("cls,size", [
    (layers.GlobalAveragePooling1D, (5,)), (layers.GlobalMaxPooling1D, (5,)),
    (layers.GlobalAveragePooling2D, (3, 4)), (layers.GlobalMaxPooling2D, (3, 4)),
    (layers.GlobalAveragePooling3D, (2, 3, 2)), (layers.GlobalMaxPooling3D, (2, 3, 2)),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_global_pooling(cls, size):
    rng = np.random.default_rng(8)
    conv = _CONV[len(size)](3, 1, activation="tanh")
    m = compiled(Sequential([Input(size + (2,)), conv, cls(), layers.Dense(3, activation="softmax")]))
    x = randn(rng, 3, *size, 2)
    check_all(m, x, sparse_labels(rng, 3, 3))


def test_pool_after_conv():
    rng = np.random.default_rng(9)
    m = compiled(Sequential([Input((6, 6, 1)), layers.Conv2D(2, 3, activation="tanh"), layers.MaxPooling2D(2),
                             layers.Conv2D(2, 1, activation="sigmoid"), layers.AveragePooling2D(2, padding="same"),
                             layers.Flatten(), layers.Dense(3, activation="softmax")]))
    check_all(m, randn(rng, 2, 6, 6, 1), sparse_labels(rng, 2, 3))


# ---------------------------------------------------------------------- reshaping, activations, dropout
def test_flatten_and_reshape():
    rng = np.random.default_rng(10)
    m = compiled(Sequential([Input((6,)), layers.Dense(12, activation="tanh"), layers.Reshape((4, 3)),
                             layers.Conv1D(2, 2, activation="sigmoid"), layers.Flatten(),
                             layers.Reshape((-1, 2)), layers.Flatten(), layers.Dense(3, activation="softmax")]))
    check_all(m, randn(rng, 3, 6), sparse_labels(rng, 3, 3))


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "linear", "softmax"])
def test_activation_layers(act):
    rng = np.random.default_rng(11)
    m = compiled(Sequential([Input((4,)), layers.Dense(5), layers.Activation(act), layers.Dense(3),
                             layers.Activation("softmax")]))
    check_all(m, randn(rng, 4, 4), sparse_labels(rng, 4, 3))


def test_relu_and_softmax_layers():
    rng = np.random.default_rng(12)
    m = compiled(Sequential([Input((4,)), layers.ReLU(), layers.Dense(3), layers.Softmax()]))
    x = randn(rng, 5, 4)
    x = np.where(np.abs(x) < 0.1, 0.5, x)  # keep the relu input away from 0
    check_all(m, x, sparse_labels(rng, 5, 3))


def test_dropout_inference_is_identity():
    rng = np.random.default_rng(13)
    m = compiled(Sequential([Input((4,)), layers.Dense(6, activation="tanh"), layers.Dropout(0.5),
                             layers.Dense(3, activation="softmax")]))
    x, y = randn(rng, 5, 4), sparse_labels(rng, 5, 3)
    check_all(m, x, y, training=False)
    ref = compiled(Sequential([Input((4,)), layers.Dense(6, activation="tanh"), layers.Dense(3, activation="softmax")]))
    ref.set_weights(m.get_weights())
    l1, g1 = m.loss_and_gradients(x, y)
    l2, g2 = ref.loss_and_gradients(x, y)
    assert l1 == l2
    for a, b in zip(g1, g2):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- batch normalization
def _bn_model(rng, input_shape):
    bn = layers.BatchNormalization(name="bn", momentum=0.9)
    if len(input_shape) == 1:
        first = layers.Dense(4, name="first")
    else:
        first = layers.Conv2D(3, 2, name="first")
    m = compiled(Sequential([Input(input_shape), first, bn, layers.Activation("tanh"), layers.Flatten(),
                             layers.Dense(3, activation="softmax")]))
    c = bn.get_weights()[0].shape[0]
    bn.set_weights([1 + 0.3 * randn(rng, c), 0.2 * randn(rng, c), 0.5 * randn(rng, c),
                    0.5 + rng.random(c)])
    return m, bn


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("input_shape", [(5,), (4, 4, 2)])
def test_batchnorm(training, input_shape):
    rng = np.random.default_rng(14)
    m, bn = _bn_model(rng, input_shape)
    x = randn(rng, 6, *input_shape)
    y = sparse_labels(rng, 6, 3)
    check_all(m, x, y, training=training)
    # gamma/beta trainable, moving statistics not
    assert bn.trainable_mask == [True, True, False, False]


def test_batchnorm_training_and_inference_differ():
    rng = np.random.default_rng(15)
    m, bn = _bn_model(rng, (5,))
    x, y = randn(rng, 6, 5), sparse_labels(rng, 6, 3)
    w = m.get_weights()
    l_inf, g_inf = m.loss_and_gradients(x, y, training=False)
    assert all(np.array_equal(a, b) for a, b in zip(w, m.get_weights())), "inference mode changed weights"
    l_tr, g_tr = m.loss_and_gradients(x, y, training=True)
    assert l_inf != l_tr


# ---------------------------------------------------------------------- functional graphs
def test_residual_add_and_concatenate_with_fanout():
    rng = np.random.default_rng(16)
    inp = Input((6, 2))
    h = layers.Conv1D(2, 3, padding="same", activation="tanh")(inp)
    a = layers.Add()([inp, h])  # inp fans out to the conv and to the add
    c = layers.Conv1D(3, 3, padding="same", activation="sigmoid")(a)
    cat = layers.Concatenate()([a, c])  # a fans out as well
    d = layers.Conv1D(2, 2, strides=2, activation="tanh")(cat)
    out = layers.Dense(3, activation="softmax")(layers.Flatten()(d))
    m = compiled(Model(inp, out))
    check_all(m, randn(rng, 3, 6, 2), sparse_labels(rng, 3, 3))


def test_add_of_same_tensor_and_three_way_add():
    rng = np.random.default_rng(17)
    inp = Input((4,))
    d1 = layers.Dense(4, activation="tanh")(inp)
    s = layers.Add()([inp, d1, inp])  # inp used twice in one layer call
    d2 = layers.Dense(4, activation="sigmoid")(s)
    t = layers.Add()([s, d2])
    cat = layers.Concatenate(axis=1)([t, d1])
    out = layers.Dense(2, activation="softmax")(cat)
    m = compiled(Model(inp, out))
    check_all(m, randn(rng, 5, 4), sparse_labels(rng, 5, 2))


def test_concatenate_non_channel_axis():
    rng = np.random.default_rng(18)
    inp = Input((3, 2))
    a = layers.Conv1D(2, 1, activation="tanh")(inp)
    b = layers.Conv1D(2, 2, padding="same", activation="sigmoid")(inp)
    cat = layers.Concatenate(axis=1)([a, b, inp])  # (9, 2)
    out = layers.Dense(3, activation="softmax")(layers.Flatten()(cat))
    m = compiled(Model(inp, out))
    assert m.output_shape == (None, 3)
    check_all(m, randn(rng, 2, 3, 2), sparse_labels(rng, 2, 3))


def test_multiple_inputs():
    rng = np.random.default_rng(19)
    i1, i2 = Input((3,)), Input((2,))
    cat = layers.Concatenate()([layers.Dense(2, activation="tanh")(i1), i2])
    out = layers.Dense(2, activation="softmax")(cat)
    m = compiled(Model([i1, i2], out))
    x1, x2 = randn(rng, 4, 3), randn(rng, 4, 2)
    y = sparse_labels(rng, 4, 2)
    w0 = m.get_weights()
    _, grads = m.loss_and_gradients([x1, x2], y)
    gx1, gx2 = m.input_gradient([x1, x2], y)
    for xi, gi, other, first in ((x1, gx1, x2, True), (x2, gx2, x1, False)):
        num = np.zeros_like(xi)
        for j in range(xi.size):
            vals = []
            for sgn in (1, -1):
                xp = xi.copy()
                xp.flat[j] += sgn * EPS
                vals.append(m.loss_and_gradients([xp, other] if first else [other, xp], y)[0])
            num.flat[j] = (vals[0] - vals[1]) / (2 * EPS)
        assert rel_err(gi, num) <= TOL
    m.set_weights(w0)
    check_weight_grads(m, [x1, x2], y)


# ---------------------------------------------------------------------- losses
def _onehot(y, k):
    return np.eye(k)[y]


def _soft_targets(rng, n, k):
    t = rng.random((n, k)) + 0.1
    return t / t.sum(axis=1, keepdims=True)


def _head(kind, k):
    """Layers ending the model: fused softmax (Dense / Softmax layer), logits, or a
    softmax that is not the last layer (so the loss cannot fuse it)."""
    if kind == "dense_softmax":
        return [layers.Dense(k, activation="softmax")]
    if kind == "softmax_layer":
        return [layers.Dense(k), layers.Softmax()]
    if kind == "activation_softmax":
        return [layers.Dense(k), layers.Activation("softmax")]
    if kind == "logits":
        return [layers.Dense(k)]
    if kind == "unfused_softmax":
        return [layers.Dense(k, activation="softmax"), layers.Reshape((k,))]
    raise AssertionError(kind)


_HEADS = ["dense_softmax", "softmax_layer", "activation_softmax", "logits", "unfused_softmax"]


@pytest.mark.parametrize("head", _HEADS)
def test_sparse_categorical_crossentropy(head):
    rng = np.random.default_rng(20)
    loss = losses.SparseCategoricalCrossentropy(from_logits=True) if head == "logits" \
        else "sparse_categorical_crossentropy"
    m = compiled(Sequential([Input((4,)), layers.Dense(5, activation="tanh")] + _head(head, 3)), loss)
    x, y = randn(rng, 6, 4), sparse_labels(rng, 6, 3)
    check_all(m, x, y)
    # y given as (N, 1) works the same
    l1, g1 = m.loss_and_gradients(x, y)
    l2, g2 = m.loss_and_gradients(x, y[:, None])
    assert l1 == l2


@pytest.mark.parametrize("head", _HEADS)
@pytest.mark.parametrize("soft", [False, True])
def test_categorical_crossentropy(head, soft):
    rng = np.random.default_rng(21)
    loss = losses.CategoricalCrossentropy(from_logits=True) if head == "logits" else "categorical_crossentropy"
    m = compiled(Sequential([Input((4,)), layers.Dense(5, activation="tanh")] + _head(head, 3)), loss)
    x = randn(rng, 6, 4)
    y = _soft_targets(rng, 6, 3) if soft else _onehot(sparse_labels(rng, 6, 3), 3)
    check_all(m, x, y)


def test_sparse_and_categorical_agree():
    rng = np.random.default_rng(22)
    m = Sequential([Input((4,)), layers.Dense(3, activation="softmax")])
    x, y = randn(rng, 6, 4), sparse_labels(rng, 6, 3)
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    l1, g1 = m.loss_and_gradients(x, y)
    m.compile(optimizer="sgd", loss="categorical_crossentropy")
    l2, g2 = m.loss_and_gradients(x, _onehot(y, 3))
    p = m.predict(x)
    expected = -np.mean(np.log(p[np.arange(6), y]))
    assert abs(l1 - expected) < 1e-12 and abs(l2 - expected) < 1e-12
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("head", ["sigmoid", "logits", "sigmoid_activation_layer"])
@pytest.mark.parametrize("soft", [False, True])
def test_binary_crossentropy(head, soft):
    rng = np.random.default_rng(23)
    if head == "sigmoid":
        top, loss = [layers.Dense(2, activation="sigmoid")], "binary_crossentropy"
    elif head == "sigmoid_activation_layer":
        top, loss = [layers.Dense(2), layers.Activation("sigmoid")], "binary_crossentropy"
    else:
        top, loss = [layers.Dense(2)], losses.BinaryCrossentropy(from_logits=True)
    m = compiled(Sequential([Input((4,)), layers.Dense(5, activation="tanh")] + top), loss)
    x = randn(rng, 6, 4)
    y = rng.random((6, 2)) if soft else rng.integers(0, 2, (6, 2)).astype(np.float64)
    check_all(m, x, y)


def test_binary_crossentropy_single_output_1d_labels():
    rng = np.random.default_rng(24)
    m = compiled(Sequential([Input((3,)), layers.Dense(1, activation="sigmoid")]), "binary_crossentropy")
    x, y = randn(rng, 7, 3), rng.integers(0, 2, 7)
    check_all(m, x, y)
    p = m.predict(x)[:, 0]
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert abs(m.loss_and_gradients(x, y)[0] - expected) < 1e-7


@pytest.mark.parametrize("act", ["linear", "tanh", "softmax"])
def test_mse(act):
    rng = np.random.default_rng(25)
    m = compiled(Sequential([Input((4,)), layers.Dense(5, activation="tanh"), layers.Dense(3, activation=act)]),
                 "mse")
    x, y = randn(rng, 6, 4), randn(rng, 6, 3)
    check_all(m, x, y)
    expected = np.mean((m.predict(x) - y) ** 2)
    assert abs(m.loss_and_gradients(x, y)[0] - expected) < 1e-12


def test_mse_conv_output():
    rng = np.random.default_rng(26)
    m = compiled(Sequential([Input((5, 2)), layers.Conv1D(2, 2, activation="tanh")]), "mean_squared_error")
    x, y = randn(rng, 3, 5, 2), randn(rng, 3, 4, 2)
    check_all(m, x, y)


def test_from_logits_matches_softmax_model():
    """Sparse CE from logits on a linear head equals sparse CE on the same head with
    softmax, in value and in gradients."""
    rng = np.random.default_rng(27)
    logits = compiled(Sequential([Input((4,)), layers.Dense(3)]),
                      losses.SparseCategoricalCrossentropy(from_logits=True))
    probs = compiled(Sequential([Input((4,)), layers.Dense(3, activation="softmax")]))
    probs.set_weights(logits.get_weights())
    x, y = randn(rng, 5, 4), sparse_labels(rng, 5, 3)
    l1, g1 = logits.loss_and_gradients(x, y)
    l2, g2 = probs.loss_and_gradients(x, y)
    assert abs(l1 - l2) < 1e-12
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(logits.input_gradient(x, y), probs.input_gradient(x, y), rtol=1e-10, atol=1e-14)


def test_gradients_do_not_change_weights_or_optimizer():
    rng = np.random.default_rng(28)
    m = compiled(Sequential([Input((4,)), layers.Dense(3, activation="softmax")]))
    w = m.get_weights()
    x, y = randn(rng, 5, 4), sparse_labels(rng, 5, 3)
    m.loss_and_gradients(x, y)
    m.input_gradient(x, y)
    assert m.optimizer.iterations == 0
    for a, b in zip(w, m.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_float32_gradients_are_float32():
    convcore.set_floatx("float32")
    rng = np.random.default_rng(29)
    m = compiled(Sequential([Input((4,)), layers.Dense(3, activation="softmax")]))
    x, y = randn(rng, 5, 4), sparse_labels(rng, 5, 3)
    _, grads = m.loss_and_gradients(x, y)
    assert all(g.dtype == np.float32 for g in grads)
    assert m.input_gradient(x, y).dtype == np.float32
