"""Bad input to convcore's Keras-style API gives clean exceptions whose messages say
what was expected and what was received."""
from __future__ import annotations

import re

import numpy as np
import pytest

import convcore
from convcore import Input, Model, Sequential, layers, losses, optimizers


def _model(loss="sparse_categorical_crossentropy", metrics=("accuracy",), nout=3):
    m = Sequential([Input((4,)), layers.Dense(5, activation="tanh", name="hidden"),
                    layers.Dense(nout, activation="softmax", name="out")], name="net")
    m.compile(optimizer="adam", loss=loss, metrics=list(metrics) if metrics else None)
    return m


X = np.ones((6, 4), np.float32)
Y = np.array([0, 1, 2, 0, 1, 2])


# ---------------------------------------------------------------------- shapes
@pytest.mark.parametrize("bad", [np.ones((6, 3)), np.ones((6,)), np.ones((6, 4, 1)), np.ones((6, 2, 2))])
@pytest.mark.parametrize("method", ["fit", "predict", "evaluate", "train_on_batch", "test_on_batch",
                                    "loss_and_gradients", "input_gradient", "call"])
def test_wrong_input_shape_names_expected_and_received(bad, method):
    m = _model()
    with pytest.raises(ValueError) as ei:
        if method == "fit":
            m.fit(bad, Y, verbose=0)
        elif method == "predict":
            m.predict(bad)
        elif method == "call":
            m(bad)
        elif method in ("evaluate",):
            m.evaluate(bad, Y, verbose=0)
        else:
            getattr(m, method)(bad, Y)
    msg = str(ei.value)
    assert "(None, 4)" in msg, msg
    assert str(bad.shape) in msg, msg


def test_wrong_validation_data_shape():
    m = _model()
    with pytest.raises(ValueError, match=re.escape("(6, 3)")):
        m.fit(X, Y, validation_data=(np.ones((6, 3)), Y), verbose=0)
    with pytest.raises(ValueError, match="6 and 3"):
        m.fit(X, Y, validation_data=(X, Y[:3]), verbose=0)
    with pytest.raises(ValueError, match="validation_data"):
        m.fit(X, Y, validation_data=(X, Y, Y, Y), verbose=0)  # (x, y, sample_weight) is the longest form


def test_functional_multi_input_errors():
    i1, i2 = Input((3,)), Input((2,))
    out = layers.Dense(2, activation="softmax")(layers.Concatenate()([i1, i2]))
    m = Model([i1, i2], out)
    m.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="expects 2 inputs"):
        m.predict(np.ones((4, 3)))
    with pytest.raises(ValueError, match="different numbers of samples"):
        m.predict([np.ones((4, 3)), np.ones((5, 2))])
    with pytest.raises(ValueError, match=re.escape("(None, 2)")):
        m.predict([np.ones((4, 3)), np.ones((4, 3))])


def test_non_numeric_input_and_targets():
    m = _model()
    with pytest.raises(TypeError, match="numeric"):
        m.fit(np.full((6, 4), "a"), Y, verbose=0)
    with pytest.raises(TypeError, match="numeric"):
        m.fit(X, np.array(list("abcdef")), verbose=0)


def test_layer_rank_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"'c2'.*rank 4.*\(None, 5, 5\)"):
        Sequential([Input((5, 5)), layers.Conv2D(3, 3, name="c2")])
    with pytest.raises(ValueError, match=r"rank"):
        layers.MaxPooling1D()(np.ones((2, 4, 4, 1)))
    with pytest.raises(ValueError, match="larger than the input"):
        Sequential([Input((2, 2, 1)), layers.Conv2D(3, 3)])
    with pytest.raises(ValueError, match=re.escape("(3,)") + ".*" + re.escape("(4,)")):  # names both shapes
        layers.Add()([Input((3,)), Input((4,))])
    with pytest.raises(ValueError, match="cannot reshape"):
        Sequential([Input((5,)), layers.Reshape((2, 3))])


# ---------------------------------------------------------------------- labels
@pytest.mark.parametrize("bad,label", [(3, "3"), (-1, "-1"), (10, "10")])
def test_sparse_label_out_of_range_names_the_label(bad, label):
    m = _model()
    y = Y.copy()
    y[2] = bad
    for call in (lambda: m.fit(X, y, verbose=0), lambda: m.evaluate(X, y, verbose=0),
                 lambda: m.train_on_batch(X, y), lambda: m.loss_and_gradients(X, y)):
        with pytest.raises(ValueError) as ei:
            call()
        msg = str(ei.value)
        assert f"label {label}" in msg and "0..2" in msg, msg


def test_sparse_label_out_of_range_in_validation_data():
    m = _model()
    with pytest.raises(ValueError, match="label 7"):
        m.fit(X, Y, validation_data=(X, np.array([0, 1, 7, 0, 1, 2])), verbose=0)


def test_non_integer_sparse_labels():
    m = _model()
    with pytest.raises(ValueError, match="integer"):
        m.fit(X, Y + 0.5, verbose=0)
    with pytest.raises(ValueError, match="integer"):
        m.fit(X, np.where(Y == 0, np.nan, Y), verbose=0)
    # integer-valued floats and (N, 1) labels are accepted, as in Keras
    m.fit(X, Y.astype(np.float32), verbose=0)
    m.fit(X, Y[:, None], verbose=0)


def test_target_shape_mismatch_for_dense_losses():
    with pytest.raises(ValueError, match=re.escape("(6,)")):
        _model(loss="categorical_crossentropy").fit(X, Y, verbose=0)
    with pytest.raises(ValueError, match=re.escape("(6, 2)")):
        _model(loss="mse").fit(X, np.ones((6, 2)), verbose=0)
    with pytest.raises(ValueError, match="binary_crossentropy"):
        _model(loss="binary_crossentropy").fit(X, Y, verbose=0)


# ---------------------------------------------------------------------- lengths and empty data
def test_mismatched_x_y_lengths():
    m = _model()
    for call in (lambda: m.fit(X, Y[:4], verbose=0), lambda: m.evaluate(X, Y[:4], verbose=0),
                 lambda: m.train_on_batch(X, Y[:4]), lambda: m.test_on_batch(X[:2], Y),
                 lambda: m.input_gradient(X, Y[:5])):
        with pytest.raises(ValueError, match=r"different numbers of samples"):
            call()
    with pytest.raises(ValueError, match="6 and 4"):
        m.fit(X, Y[:4], verbose=0)


def test_empty_data():
    m = _model()
    with pytest.raises(ValueError, match="no training samples"):
        m.fit(X[:0], Y[:0], verbose=0)
    with pytest.raises(ValueError, match="no samples"):
        m.evaluate(X[:0], Y[:0], verbose=0)
    assert m.predict(X[:0]).shape == (0, 3)


def test_bad_fit_arguments():
    m = _model()
    with pytest.raises(ValueError, match="batch_size"):
        m.fit(X, Y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        m.predict(X, batch_size=0)
    with pytest.raises(ValueError, match="validation_split"):
        m.fit(X, Y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        m.fit(X, Y, validation_split=0.0 - 0.5, verbose=0)
    with pytest.raises(TypeError, match="Callback"):
        m.fit(X, Y, callbacks=[lambda: None], verbose=0)
    with pytest.raises(ValueError, match="targets"):
        m.fit(X, None, verbose=0)


# ---------------------------------------------------------------------- unknown names
def test_unknown_optimizer_lists_valid():
    m = _model()
    with pytest.raises(ValueError) as ei:
        m.compile(optimizer="rmsprob", loss="mse")
    msg = str(ei.value)
    assert "'rmsprob'" in msg and "sgd" in msg and "adam" in msg and "rmsprop" in msg


def test_unknown_loss_lists_valid():
    m = _model()
    with pytest.raises(ValueError) as ei:
        m.compile(optimizer="adam", loss="hinj")
    msg = str(ei.value)
    assert "'hinj'" in msg
    for name in ("sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy", "mse",
                 "hinge"):
        assert name in msg
    # Keras 3: compile without a loss is allowed (a model may add its own losses); fit has nothing to minimise
    m.compile(optimizer="adam")
    with pytest.raises(ValueError, match="No loss to compute"):
        m.fit(X, Y, verbose=0)


def test_unknown_metric_lists_valid():
    with pytest.raises(ValueError, match=r"'aucc'.*accuracy"):
        _model().compile(optimizer="adam", loss="mse", metrics=["aucc"])


def test_failed_compile_leaves_previous_settings():
    """compile() validates everything before changing the model: a call that raises
    leaves the previous optimizer, loss and metrics in place."""
    m = _model()
    opt, loss = m.optimizer, m.loss
    for bad in (dict(optimizer="adam", loss="hinj"), dict(optimizer="adam", loss="mse", metrics=["aucc"]),
                dict(optimizer="rmsprob", loss="mse")):
        with pytest.raises(ValueError):
            m.compile(**bad)
        assert m.optimizer is opt
        assert m.loss is loss
        assert m.metrics_names == ["accuracy"]
    m.fit(X, Y, verbose=0)


@pytest.mark.parametrize("make", [lambda: layers.Dense(3, activation="gelux"),
                                  lambda: layers.Conv2D(3, 3, activation="swishy"),
                                  lambda: layers.Activation("leaky")])
def test_unknown_activation_lists_valid(make):
    with pytest.raises(ValueError) as ei:
        make()
    msg = str(ei.value)
    for name in ("linear", "relu", "sigmoid", "softmax", "tanh"):
        assert name in msg, msg


@pytest.mark.parametrize("make", [lambda: layers.Dense(3, kernel_initializer="glorot"),
                                  lambda: layers.Conv1D(3, 3, bias_initializer="bogus")])
def test_unknown_initializer_lists_valid(make):
    with pytest.raises(ValueError) as ei:
        make()
    msg = str(ei.value)
    for name in ("glorot_uniform", "he_normal", "zeros", "ones"):
        assert name in msg, msg


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="units"):
        layers.Dense(0)
    with pytest.raises(ValueError, match="kernel_size"):
        layers.Conv2D(3, (3, 3, 3))
    with pytest.raises(ValueError, match="padding"):
        layers.Conv2D(3, 3, padding="full")
    with pytest.raises(ValueError, match="strides"):
        layers.MaxPooling2D(strides=0)
    with pytest.raises(TypeError, match="foo"):
        layers.Dense(3, foo=1)
    with pytest.raises(ValueError, match="float"):
        convcore.set_floatx("float16")
    with pytest.raises(ValueError, match="seed"):
        convcore.set_seed(-1)


# ---------------------------------------------------------------------- compile order
@pytest.mark.parametrize("method", ["fit", "evaluate", "train_on_batch", "test_on_batch", "loss_and_gradients",
                                    "input_gradient"])
def test_use_before_compile(method):
    m = Sequential([Input((4,)), layers.Dense(3, activation="softmax")])
    with pytest.raises(RuntimeError, match=r"compile\(\)"):
        if method in ("fit", "evaluate"):
            getattr(m, method)(X, Y, verbose=0)
        else:
            getattr(m, method)(X, Y)
    # predict works without compile, as in Keras
    assert m.predict(X).shape == (6, 3)


def test_model_without_input_shape():
    m = Sequential()
    with pytest.raises(ValueError, match="input_shape"):
        m.summary()
    with pytest.raises(ValueError, match="input_shape"):
        m.get_weights()
    # built lazily from the data on first use
    m = Sequential([layers.Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    m.fit(X, Y, verbose=0)
    assert m.count_params() == 15


# ---------------------------------------------------------------------- NaN during training
def test_nan_loss_from_huge_learning_rate_names_epoch_and_batch():
    rng = np.random.default_rng(0)
    m = Sequential([Input((4,)), layers.Dense(1)])
    m.compile(optimizers.SGD(learning_rate=1e12), "mse")
    with pytest.raises(FloatingPointError) as ei:
        m.fit(rng.standard_normal((300, 4)), np.full(300, 1e3), epochs=5, batch_size=10, verbose=0, shuffle=False)
    msg = str(ei.value)
    assert re.search(r"epoch 1, batch \d+ of 30", msg), msg


def test_nan_input_names_epoch_and_batch():
    m = _model()
    x = np.ones((300, 4), np.float32)
    x[250, 1] = np.nan
    with pytest.raises(FloatingPointError) as ei:
        m.fit(x, np.zeros(300, int), epochs=2, batch_size=100, verbose=0, shuffle=False)
    msg = str(ei.value)
    assert "epoch 1, batch 3 of 3" in msg, msg


def test_nan_in_second_epoch_names_epoch_2():
    """Clean data, a callback poisons the weights after epoch 1: the error names epoch 2."""
    from convcore import callbacks

    class Poison(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            w = self.model.get_weights()
            w[0][0, 0] = np.nan
            self.model.set_weights(w)

    m = _model()
    x = np.ones((50, 4), np.float32)
    with pytest.raises(FloatingPointError, match="epoch 2, batch 1 of 5"):
        m.fit(x, np.zeros(50, int), epochs=3, batch_size=10, verbose=0, shuffle=False, callbacks=[Poison()])


# ---------------------------------------------------------------------- get_layer
def test_unknown_layer_name_lists_existing():
    m = _model()
    with pytest.raises(ValueError) as ei:
        m.get_layer("nope")
    msg = str(ei.value)
    assert "'nope'" in msg and "hidden" in msg and "out" in msg
    with pytest.raises(ValueError, match="out of range"):
        m.get_layer(index=5)
    assert m.get_layer("hidden") is m.layers[0]
    assert m.get_layer(index=-1) is m.layers[-1]


def test_set_weights_errors():
    m = _model()
    with pytest.raises(ValueError, match="4 weight arrays, got 1"):
        m.set_weights([np.ones((4, 5))])
    with pytest.raises(ValueError, match=re.escape("'kernel' has shape (4, 5), got (4, 2)")):
        m.get_layer("hidden").set_weights([np.ones((4, 2)), np.ones(5)])


def test_loss_object_accepted():
    m = _model(loss=losses.SparseCategoricalCrossentropy(from_logits=False))
    m.fit(X, Y, verbose=0)
