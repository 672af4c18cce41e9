"""Models and training against real Keras 3 (jax backend, CPU): several outputs with
per-output losses, loss weights and metrics; class_weight and sample_weight; weight and
activity regularizers; steps_per_epoch, validation_freq, initial_epoch; the order and
logs of every callback hook; frozen nested models; inputs with unknown sizes; the
*_on_batch methods; custom train_step / test_step; the compile section of a saved model.
Each case builds the same model in both libraries with the same weights, trains with
plain SGD on the same unshuffled batches, and compares the logs and the weights."""
from __future__ import annotations

import os

import numpy as np
import pytest

import convcore as cc
from convcore import _core, layers

import keras  # noqa: E402  (KERAS_BACKEND=jax comes from conftest)

HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CI requires a GPU adapter (lavapipe) for the GPU half of these tests")
DEVICES = ["cpu"] + (["gpu"] if HAVE_GPU else [])

# float32 training over a dozen steps: the two libraries sum in different orders
RTOL, ATOL = 1e-4, 1e-6


def _copy_weights(keras_model, ours, seed=0):
    """Keras's initial weights into ours, with the zero biases made random first: at 0
    the subgradient of |x| (an L1 penalty) is 0 in TensorFlow and PyTorch but 1 in jax."""
    rng = np.random.default_rng(seed)
    for kl in keras_model.layers:
        if kl.get_weights():
            ws = [w if w.ndim > 1 or np.any(w != 0) else rng.uniform(-0.1, 0.1, w.shape).astype(w.dtype)
                  for w in kl.get_weights()]
            if type(kl).__name__ == "BatchNormalization":
                ws = kl.get_weights()
            kl.set_weights(ws)
            ours.get_layer(kl.name).set_weights(ws)


def _assert_same_weights(keras_model, ours):
    for kl in keras_model.layers:
        if not kl.get_weights():
            continue
        for a, b in zip(kl.get_weights(), ours.get_layer(kl.name).get_weights()):
            np.testing.assert_allclose(b, a, rtol=RTOL, atol=ATOL, err_msg=kl.name)


def _assert_same_history(kh, ch, keys=None):
    assert sorted(ch.history) == sorted(kh.history)
    for k in keys or kh.history:
        np.testing.assert_allclose(ch.history[k], kh.history[k], rtol=RTOL, atol=ATOL, err_msg=k)


def _data(n=24, d=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype("float32")
    return x, rng.integers(0, 3, n), rng.standard_normal((n, 1)).astype("float32"), rng


def _two_outputs(lib):
    i = lib.Input((5,))
    h = lib.layers.Dense(6, activation="tanh", name="h")(i)
    cls = lib.layers.Dense(3, activation="softmax", name="cls")(h)
    reg = lib.layers.Dense(1, name="reg")(h)
    return lib.Model(i, [cls, reg])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("form", ["dict", "list"])
def test_several_outputs_losses_weights_and_metrics_match_keras(device, form):
    x, y1, y2, _ = _data()
    km, cm = _two_outputs(keras), _two_outputs(cc)
    _copy_weights(km, cm)
    if form == "dict":
        kw = dict(loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"}, loss_weights={"cls": 1.0, "reg": 0.3},
                  metrics={"cls": ["accuracy"], "reg": ["mae"]})
        y = {"cls": y1, "reg": y2}
    else:
        kw = dict(loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.3],
                  metrics=[["accuracy"], ["mae"]])
        y = [y1, y2]
    km.compile(optimizer=keras.optimizers.SGD(0.1), **kw)
    cm.compile(optimizer=cc.optimizers.SGD(0.1), device=device, **kw)
    kh = km.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    ch = cm.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    _assert_same_history(kh, ch)
    _assert_same_weights(km, cm)
    ke = km.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    ce = cm.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert sorted(ce) == sorted(ke)
    for k in ke:
        assert ce[k] == pytest.approx(ke[k], rel=RTOL, abs=ATOL), k


def _classifier(lib, reg=False):
    kw = {}
    if reg:
        kw = dict(kernel_regularizer=lib.regularizers.L2(0.05), bias_regularizer=lib.regularizers.L1(0.02),
                  activity_regularizer=lib.regularizers.L2(0.01))
    return lib.Sequential([lib.Input((5,)), lib.layers.Dense(4, activation="relu", name="a", **kw),
                           lib.layers.Dense(3, activation="softmax", name="b")])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", ["class_weight", "sample_weight", "regularizers"])
def test_weighting_and_regularizers_match_keras(device, case):
    x, y, _, rng = _data(seed=1)
    km, cm = _classifier(keras, case == "regularizers"), _classifier(cc, case == "regularizers")
    _copy_weights(km, cm)
    km.compile(optimizer=keras.optimizers.SGD(0.2), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cm.compile(optimizer=cc.optimizers.SGD(0.2), loss="sparse_categorical_crossentropy", metrics=["accuracy"],
               device=device)
    kw = {}
    if case == "class_weight":
        kw["class_weight"] = {0: 0.5, 1: 2.0, 2: 1.5}
    elif case == "sample_weight":
        kw["sample_weight"] = rng.uniform(0.1, 2.0, len(y)).astype("float32")
    kh = km.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, **kw)
    ch = cm.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, **kw)
    _assert_same_history(kh, ch)
    _assert_same_weights(km, cm)
    if case == "regularizers":
        # the penalties themselves, after training
        cm(x[:8])
        km(x[:8])
        kl = sorted(float(v) for v in km.losses)
        cl = sorted(float(np.asarray(v)) for v in cm.losses)
        np.testing.assert_allclose(cl, kl, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("device", DEVICES)
def test_steps_per_epoch_validation_freq_and_initial_epoch_match_keras(device, recwarn):
    x, y, _, rng = _data(n=32, seed=2)
    xv, yv = rng.standard_normal((8, 5)).astype("float32"), rng.integers(0, 3, 8)
    km, cm = _classifier(keras), _classifier(cc)
    _copy_weights(km, cm)
    km.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    cm.compile(optimizer=cc.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", device=device)
    # 4 batches of 8; 3 steps an epoch: epoch 2 runs out of data after 1 step (Keras's warning)
    kw = dict(batch_size=8, epochs=5, initial_epoch=1, steps_per_epoch=3, shuffle=False, verbose=0,
              validation_data=(xv, yv), validation_freq=2)
    kh = km.fit(x, y, **kw)
    ch = cm.fit(x, y, **kw)
    assert ch.epoch == kh.epoch == [1, 2, 3, 4]
    assert len(ch.history["val_loss"]) == len(kh.history["val_loss"]) == 2
    _assert_same_history(kh, ch)
    _assert_same_weights(km, cm)
    assert km.optimizer.iterations.numpy() == cm.optimizer.iterations == 3 + 1 + 3 + 1
    assert any("ran out of data" in str(w.message) for w in recwarn.list)


class _Recorder:
    """The hooks called, in order, with the keys of their logs."""

    @staticmethod
    def make(base):
        class Rec(base):
            def __init__(self):
                super().__init__()
                self.calls = []

        hooks = ["on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
                 "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
                 "on_predict_begin", "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end"]

        def hook(name):
            def f(self, *args, **kw):
                args = args + tuple(kw.values())
                logs = args[-1] if args and (args[-1] is None or isinstance(args[-1], dict)) else None
                keys = None if logs is None else tuple(sorted(logs))
                self.calls.append((name,) + tuple(a for a in args if isinstance(a, int)) + (keys,))
            return f
        for h in hooks:
            setattr(Rec, h, hook(h))
        return Rec()


@pytest.mark.parametrize("device", DEVICES)
def test_every_hook_is_called_in_keras_order_with_keras_logs(device):
    x, y, _, rng = _data(n=16, seed=3)
    km, cm = _classifier(keras), _classifier(cc)
    km.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cm.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"], device=device)
    kr, cr = _Recorder.make(keras.callbacks.Callback), _Recorder.make(cc.callbacks.Callback)
    kw = dict(batch_size=8, epochs=2, validation_data=(x[:8], y[:8]), verbose=0)
    km.fit(x, y, callbacks=[kr], **kw)
    cm.fit(x, y, callbacks=[cr], **kw)
    km.evaluate(x, y, batch_size=8, callbacks=[kr], verbose=0)
    cm.evaluate(x, y, batch_size=8, callbacks=[cr], verbose=0)
    km.predict(x, batch_size=8, callbacks=[kr], verbose=0)
    cm.predict(x, batch_size=8, callbacks=[cr], verbose=0)

    def norm(calls):  # Keras passes logs={} where it has none; compare "no logs" alike
        return [c[:-1] + ((c[-1] or None),) for c in calls]
    assert norm(cr.calls) == norm(kr.calls)


def test_tf_keras_2_batch_hooks_and_callback_attributes():
    x, y, _, _ = _data(n=16)
    cm = _classifier(cc)
    cm.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    seen = []

    class Old(cc.callbacks.Callback):
        def on_batch_begin(self, batch, logs=None):
            seen.append(("begin", batch))

        def on_batch_end(self, batch, logs=None):
            seen.append(("end", batch, round(logs["loss"], 6)))
            assert self.model is cm and self.params["epochs"] == 1 and self.params["steps"] == 2

    cm.fit(x, y, batch_size=8, epochs=1, callbacks=[Old()], verbose=0)
    assert [s[:2] for s in seen] == [("begin", 0), ("end", 0), ("begin", 1), ("end", 1)]


def _base(lib):
    return lib.Sequential([lib.Input((5,)), lib.layers.Dense(6, activation="relu", name="f1"),
                           lib.layers.BatchNormalization(name="bn")], name="base")


@pytest.mark.parametrize("device", DEVICES)
def test_frozen_nested_model_matches_keras(device):
    x, y, _, _ = _data(seed=4)
    out = {}
    for lib in (keras, cc):
        base = _base(lib)
        base.trainable = False
        i = lib.Input((5,))
        m = lib.Model(i, lib.layers.Dense(3, activation="softmax", name="head")(base(i)))
        out[lib] = (base, m)
    (kb, km), (cb, cm) = out[keras], out[cc]
    for kl in kb.layers:
        cb.get_layer(kl.name).set_weights(kl.get_weights())
    cm.get_layer("head").set_weights(km.get_layer("head").get_weights())
    assert len(cm.trainable_weights) == len(km.trainable_weights) == 2
    assert len(cm.non_trainable_weights) == len(km.non_trainable_weights) == 6
    km.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    cm.compile(optimizer=cc.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", device=device)
    before = cb.get_weights()
    kh = km.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    ch = cm.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    _assert_same_history(kh, ch)
    for a, b in zip(before, cb.get_weights()):  # the frozen BN's moving statistics too
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(cm.get_layer("head").get_weights()[0], km.get_layer("head").get_weights()[0],
                               rtol=RTOL, atol=ATOL)


def test_nesting_a_model_whose_input_does_not_fit_names_both_shapes():
    base = _base(cc)
    with pytest.raises(ValueError, match=r"\(None, 5\).*\(None, 7\)"):
        base(cc.Input((7,)))


@pytest.mark.parametrize("device", DEVICES)
def test_unknown_sizes_fully_convolutional_match_keras(device):
    def build(lib):
        i = lib.Input((None, None, 2))
        h = lib.layers.Conv2D(3, 3, padding="same", activation="relu", name="c1")(i)
        h = lib.layers.MaxPooling2D(2, name="p")(h)
        h = lib.layers.Conv2D(4, 3, name="c2")(h)
        return lib.Model(i, lib.layers.GlobalAveragePooling2D(name="g")(h))
    km, cm = build(keras), build(cc)
    _copy_weights(km, cm)
    assert cm.get_layer("c2").output.shape == (None, None, None, 4)
    cm.compile(loss="mse", device=device)
    rng = np.random.default_rng(5)
    for hw in ((9, 12), (16, 7)):
        x = rng.standard_normal((2,) + hw + (2,)).astype("float32")
        np.testing.assert_allclose(cm.predict(x, verbose=0), np.asarray(km.predict(x, verbose=0)),
                                   rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_on_batch_methods_match_keras(device):
    x, y, _, _ = _data(n=8, seed=6)
    km, cm = _classifier(keras), _classifier(cc)
    _copy_weights(km, cm)
    km.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    cm.compile(optimizer=cc.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"],
               device=device)
    np.testing.assert_allclose(cm.test_on_batch(x, y), km.test_on_batch(x, y), rtol=1e-5)
    kd, cd = km.train_on_batch(x, y, return_dict=True), cm.train_on_batch(x, y, return_dict=True)
    assert sorted(cd) == sorted(kd)
    for k in kd:
        assert cd[k] == pytest.approx(float(kd[k]), rel=1e-5), k
    np.testing.assert_allclose(cm.predict_on_batch(x), np.asarray(km.predict_on_batch(x)), rtol=1e-5, atol=1e-6)
    ke, ce = km.evaluate(x, y, verbose=0), cm.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(ce, ke, rtol=1e-5)


class Custom(cc.Model):
    """A subclassed model with a custom train_step written as the Keras 3 guide writes
    it for TensorFlow, with convcore's tape."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.a = layers.Dense(4, activation="relu", name="a")
        self.b = layers.Dense(3, activation="softmax", name="b")

    def call(self, x, training=None):
        return self.b(self.a(x))

    def train_step(self, data):
        x, y = data
        with cc.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self.compute_metrics(x, y, y_pred)


@pytest.mark.parametrize("device", DEVICES)
def test_custom_train_step_trains_like_the_built_in_step(device):
    x, y, _, _ = _data(seed=7)
    cc.set_seed(7)
    custom = Custom()
    custom.compile(optimizer=cc.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                   device=device)
    custom.predict(x[:1], verbose=0)  # builds the layers
    plain = _classifier(cc)
    for name in ("a", "b"):
        plain.get_layer(name).set_weights(getattr(custom, name).get_weights())
    plain.compile(optimizer=cc.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  device=device)
    hc = custom.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    hp = plain.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    assert sorted(hc.history) == ["accuracy", "loss"]
    for k in ("accuracy", "loss"):
        np.testing.assert_allclose(hc.history[k], hp.history[k], rtol=1e-5)
    for name in ("a", "b"):
        for p, q in zip(getattr(custom, name).get_weights(), plain.get_layer(name).get_weights()):
            np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-7)
    ev = custom.evaluate(x, y, verbose=0, return_dict=True)
    loss, acc = plain.evaluate(x, y, verbose=0)
    assert ev["loss"] == pytest.approx(loss, rel=1e-5) and ev["accuracy"] == pytest.approx(acc, rel=1e-6)


def test_training_argument_errors_name_what_came():
    x, y, _, _ = _data(n=12)
    cm = _classifier(cc)
    cm.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"class 7.*0\.\.2"):
        cm.fit(x, y, class_weight={0: 1.0, 7: 2.0}, verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight has 5 entries.*12 samples"):
        cm.fit(x, y, sample_weight=np.ones(5), verbose=0)
    with pytest.raises(ValueError, match="class_weight or sample_weight"):
        cm.fit(x, y, class_weight={0: 1.0}, sample_weight=np.ones(12), verbose=0)
    with pytest.raises(ValueError, match="loss_weights"):
        cm.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])  # Keras 3's third argument
    m2 = _two_outputs(cc)
    m2.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"])
    with pytest.raises(ValueError, match=r"outputs \['cls', 'reg'\]"):
        m2.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="not output names"):
        m2.fit(x, {"cls": y, "bogus": y}, verbose=0)


def test_compile_section_of_a_saved_model_round_trips(tmp_path):
    x, y1, y2, _ = _data()
    m = _two_outputs(cc)
    m.compile(optimizer=cc.optimizers.Adam(1e-3), loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
              loss_weights={"cls": 1.0, "reg": 0.5},
              metrics={"cls": ["accuracy", cc.metrics.SparseTopKCategoricalAccuracy(k=2)], "reg": ["mae"]})
    m.fit(x, {"cls": y1, "reg": y2}, epochs=1, verbose=0)
    m.save(tmp_path / "two.keras")
    back = cc.models.load_model(tmp_path / "two.keras")
    a = m.evaluate(x, [y1, y2], verbose=0, return_dict=True)
    b = back.evaluate(x, [y1, y2], verbose=0, return_dict=True)
    assert sorted(a) == sorted(b) and all(b[k] == pytest.approx(a[k], rel=1e-6) for k in a)
    assert "cls_sparse_top_k_categorical_accuracy" in b
