"""Keras 3 ``.keras`` and ``.weights.h5`` files between convcore and real Keras 3, both
ways: one small model per layer family (plus functional, nested, shared, multi-input /
multi-output models) built by the same code in both libraries; predictions equal, each
layer's serialized config equal to Keras's own, compiled models' settings and optimizer
state carried over (one more training step on both sides gives the same weights);
hostile files refused with a clear error and nothing loaded halfway."""
from __future__ import annotations

import io
import json
import os
import warnings
import zipfile

import numpy as np
import pytest

import convcore
from convcore.saving import keras_config as kc

keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")


# ---------------------------------------------------------------------- the model table
def _act(L, Input, Model, Sequential):
    inp = Input((6,), name="x")
    y = L.Dense(5, activation="relu", kernel_regularizer="l2", bias_constraint="non_neg", name="d1")(inp)
    y = L.Activation("tanh", name="act")(y)
    y = L.Dropout(0.2, seed=1, name="drop")(y)
    y = L.PReLU(name="prelu")(y)
    y = L.LeakyReLU(negative_slope=0.2, name="leaky")(y)
    y = L.ELU(0.5, name="elu")(y)
    y = L.ReLU(max_value=2.0, negative_slope=0.1, name="relu")(y)
    y = L.GaussianNoise(0.1, seed=2, name="gn")(y)
    y = L.GaussianDropout(0.1, seed=3, name="gd")(y)
    y = L.AlphaDropout(0.1, seed=4, name="ad")(y)
    y = L.ActivityRegularization(l1=0.01, name="areg")(y)
    y = L.Identity(name="ident")(y)
    y = L.UnitNormalization(name="unit")(y)
    y = L.RepeatVector(2, name="rep")(y)
    y = L.Flatten(name="flat")(y)
    y = L.Dense(3, use_bias=False, kernel_initializer="he_normal", name="d2")(y)
    y = L.Softmax(name="soft")(y)
    return Model(inp, y, name="activations"), (6,)


def _conv2d(L, Input, Model, Sequential):
    return Sequential([
        Input((8, 8, 3)),
        L.Conv2D(4, 3, padding="same", activation="relu", name="c"),
        L.DepthwiseConv2D(3, depth_multiplier=2, name="dw"),
        L.SeparableConv2D(4, 3, padding="same", name="sep"),
        L.Conv2DTranspose(3, 3, strides=2, name="ct"),
        L.BatchNormalization(name="bn"),
        L.MaxPooling2D(name="mp"),
        L.AveragePooling2D(2, strides=1, name="ap"),
        L.ZeroPadding2D(1, name="zp"),
        L.Cropping2D(((1, 0), (0, 1)), name="crop"),
        L.UpSampling2D(name="up"),
        L.SpatialDropout2D(0.1, seed=1, name="sd"),
        L.GroupNormalization(groups=3, name="gn"),
        L.LayerNormalization(name="ln"),
        L.RMSNormalization(name="rms"),
        L.GlobalAveragePooling2D(name="gap"),
        L.Dense(2, name="out"),
    ], name="conv2d_family"), (8, 8, 3)


def _conv1d(L, Input, Model, Sequential):
    return Sequential([
        Input((10, 3)),
        L.Conv1D(4, 3, padding="causal", dilation_rate=2, name="c"),
        L.DepthwiseConv1D(3, name="dw"),
        L.SeparableConv1D(4, 2, name="sep"),
        L.Conv1DTranspose(3, 3, strides=2, name="ct"),
        L.MaxPooling1D(name="mp"),
        L.AveragePooling1D(2, name="ap"),
        L.ZeroPadding1D(1, name="zp"),
        L.Cropping1D((1, 0), name="crop"),
        L.UpSampling1D(2, name="up"),
        L.SpatialDropout1D(0.1, seed=1, name="sd"),
        L.GlobalMaxPooling1D(name="gmp"),
    ], name="conv1d_family"), (10, 3)


def _conv3d(L, Input, Model, Sequential):
    return Sequential([
        Input((6, 6, 6, 2)),
        L.Conv3D(3, 2, name="c"),
        L.Conv3DTranspose(2, 2, name="ct"),
        L.MaxPooling3D(name="mp"),
        L.ZeroPadding3D(1, name="zp"),
        L.Cropping3D(1, name="crop"),
        L.UpSampling3D(2, name="up"),
        L.AveragePooling3D(2, name="ap"),
        L.SpatialDropout3D(0.1, seed=1, name="sd"),
        L.GlobalAveragePooling3D(name="gap"),
    ], name="conv3d_family"), (6, 6, 6, 2)


def _pooling(L, Input, Model, Sequential):
    inp = Input((8, 8, 4), name="x")
    a = L.AdaptiveAveragePooling2D(4, name="aap")(inp)
    b = L.AdaptiveMaxPooling2D((2, 4), name="amp")(inp)
    a = L.GlobalMaxPooling2D(name="gmp")(a)
    b = L.Flatten(name="fl")(b)
    r = L.Reshape((8, 4), name="rs")(L.Cropping2D(((0, 7), (0, 0)), name="row")(inp))
    c = L.AdaptiveAveragePooling1D(4, name="aap1")(r)
    d = L.AdaptiveMaxPooling1D(2, name="amp1")(r)
    c = L.GlobalAveragePooling1D(name="gap1")(c)
    d = L.Flatten(name="fl1")(d)
    v = L.Reshape((4, 4, 4, 4), name="vol")(inp)
    e = L.AdaptiveAveragePooling3D((1, 2, 2), name="aap3")(v)
    f = L.AdaptiveMaxPooling3D((2, 2, 1), name="amp3")(v)
    e = L.GlobalMaxPooling3D(name="gmp3")(e)
    f = L.Flatten(name="fl3")(f)
    return Model(inp, L.Concatenate(name="cat")([a, b, c, d, e, f]), name="pooling"), (8, 8, 4)


def _reshaping(L, Input, Model, Sequential):
    return Sequential([
        Input((4, 6)),
        L.Reshape((6, 4), name="rs"),
        L.Permute((2, 1), name="perm"),
        L.Flatten(name="fl"),
        L.Dense(4, name="d"),
    ], name="reshaping"), (4, 6)


def _merging(L, Input, Model, Sequential):
    a, b = Input((4,), name="a"), Input((4,), name="b")
    outs = [L.Add(name="add")([a, b]), L.Subtract(name="sub")([a, b]), L.Multiply(name="mul")([a, b]),
            L.Average(name="avg")([a, b]), L.Maximum(name="max")([a, b]), L.Minimum(name="min")([a, b]),
            L.Dot(axes=1, name="dot")([a, b])]
    cat = L.Concatenate(axis=-1, name="cat")(outs)
    return Model([a, b], [cat, L.Dense(2, name="d")(cat)], name="merging"), [(4,), (4,)]


def _preprocessing(L, Input, Model, Sequential):
    return Sequential([
        Input((8, 8, 3)),
        L.Rescaling(1 / 255.0, offset=-0.5, name="resc"),
        L.Normalization(mean=[0.1, 0.2, 0.3], variance=[1.0, 4.0, 0.25], name="norm_fixed"),
        L.Resizing(6, 6, name="resize"),
        L.CenterCrop(5, 5, name="cc"),
        L.RandomFlip(seed=1, name="flip"),
        L.RandomRotation(0.1, seed=2, name="rot"),
        L.RandomZoom(0.1, seed=3, name="zoom"),
        L.RandomTranslation(0.1, 0.1, seed=4, name="tr"),
        L.RandomContrast(0.1, seed=5, name="contrast"),
        L.RandomBrightness(0.1, seed=6, name="bright"),
        L.Normalization(name="norm"),
        L.Flatten(name="fl"),
        L.Dense(2, name="d"),
    ], name="preprocessing"), (8, 8, 3)


def _random_crop(L, Input, Model, Sequential):
    """RandomCrop last: in inference it passes its input through, in Keras as in
    convcore, although its symbolic output is the crop (so no layer can follow it)."""
    return Sequential([Input((5, 5, 3)), L.Conv2D(2, 1, name="c"), L.RandomCrop(4, 4, seed=7, name="rc")],
                      name="random_crop"), (5, 5, 3)


def _graph(L, Input, Model, Sequential):
    """Functional: a shared layer called twice (node indices), a nested Sequential and a
    nested functional model, two outputs."""
    inp = Input((8, 8, 3), name="img")
    x = L.Conv2D(4, 3, name="c1")(inp)
    x = L.BatchNormalization(name="bn")(x)
    shared = L.Dense(5, name="shared")
    a = shared(L.Flatten(name="fa")(x))
    b = shared(L.Flatten(name="fb")(L.MaxPooling2D(1, name="mp")(x)))
    s = L.Add(name="add")([a, b])
    sub = Sequential([Input((5,)), L.Dense(3, name="sd1"), L.Dense(3, name="sd2")], name="subseq")
    i2 = Input((3,), name="inner_in")
    inner = Model(i2, L.Dense(2, name="inner_d")(i2), name="inner")
    return Model(inp, [s, inner(sub(s))], name="graph"), (8, 8, 3)


def _variants(L, Input, Model, Sequential):
    """Settings that change the weights a layer has (groups, no center / scale, no
    bias), a frozen layer, an activity regularizer and constraints with values."""
    inp = Input((6, 6, 4), name="x")
    y = L.Conv2D(4, 3, groups=2, padding="same", kernel_constraint=keras_or_cc(L).constraints.MaxNorm(2.0),
                 name="grouped")(inp)
    y = L.BatchNormalization(center=False, momentum=0.9, epsilon=1e-4, name="bn_nocenter")(y)
    y = L.BatchNormalization(scale=False, name="bn_noscale")(y)
    y = L.LayerNormalization(center=False, epsilon=1e-5, name="ln_nocenter")(y)
    y = L.Conv2D(2, 1, use_bias=False, trainable=False, name="frozen")(y)
    y = L.Flatten(name="fl")(y)
    y = L.Dense(3, activity_regularizer="l1", kernel_regularizer=keras_or_cc(L).regularizers.L1L2(0.01, 0.02),
                name="d")(y)
    return Model(inp, y, name="variants"), (6, 6, 4)


def keras_or_cc(L):
    return keras if L is keras.layers else convcore


def _nested_sequential(L, Input, Model, Sequential):
    """A Sequential holding a Sequential and a functional model."""
    i = Input((4,), name="fin")
    fn = Model(i, L.Dense(3, activation="relu", name="fd")(i), name="fn")
    inner = Sequential([Input((6,)), L.Dense(4, name="sd")], name="inner_seq")
    return Sequential([Input((6,)), inner, fn, L.Dense(2, name="out")], name="outer_seq"), (6,)


CASES = {f.__name__[1:]: f for f in (_act, _conv2d, _conv1d, _conv3d, _pooling, _reshaping, _merging,
                                      _preprocessing, _random_crop, _graph, _variants, _nested_sequential)}


def _build_convcore(case):
    from convcore import Input, layers, models
    return CASES[case](layers, Input, models.Model, models.Sequential)


def _build_keras(case):
    return CASES[case](keras.layers, keras.Input, keras.Model, keras.Sequential)


_NATIVE = {}


def _native_keras(case):
    """One Keras build of each case for the module (building is the slow part): (a)
    reads its layer configs, (b) sets its weights and saves it."""
    if case not in _NATIVE:
        _NATIVE[case] = _build_keras(case)
    return _NATIVE[case]


def _set_keras_weights(km, weights):
    """``set_weights`` on a Keras model; Normalization then computes from its new mean
    and variance (Keras does this after loading a file, not after set_weights)."""
    km.set_weights(weights)
    for layer in km.layers:
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()


def _inputs(shapes, seed=0):
    rng = np.random.default_rng(seed)
    shapes = shapes if isinstance(shapes, list) else [shapes]
    xs = [rng.uniform(0, 1, (3,) + s).astype(np.float32) for s in shapes]
    return xs if len(xs) > 1 else xs[0]


def _random_weights(weights, seed=1):
    rng = np.random.default_rng(seed)
    out = []
    for w in weights:
        w = np.asarray(w)
        if w.dtype.kind == "f":
            out.append(rng.uniform(0.2, 1.0, w.shape).astype(w.dtype))
        else:
            out.append(np.zeros(w.shape, w.dtype))
    return out


def _outputs(y):
    return [np.asarray(v) for v in y] if isinstance(y, (list, tuple)) else [np.asarray(y)]


def _assert_same_predictions(a, b, x):
    for u, v in zip(_outputs(a.predict(x, verbose=0)), _outputs(b.predict(x, verbose=0))):
        assert u.shape == v.shape
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(v).max())))


def _strip_ids(d):
    if isinstance(d, dict):
        return {k: _strip_ids(v) for k, v in d.items() if k != "shared_object_id"}
    if isinstance(d, list):
        return [_strip_ids(v) for v in d]
    return d


def _layer_configs(model):
    """{layer name: Keras's serialized layer} of every layer of a Keras model, nested
    models' layers included."""
    out = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.update(_layer_configs(layer))
            continue
        out[layer.name] = json.loads(json.dumps(_strip_ids(keras.saving.serialize_keras_object(layer))))
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("keras3")


# ---------------------------------------------------------------------- (a) convcore -> Keras
@pytest.mark.parametrize("case", list(CASES))
def test_convcore_file_loads_in_keras(case, folder):
    m, shape = _build_convcore(case)
    m.set_weights(_random_weights(m.get_weights()))
    path = str(folder / f"cc_{case}.keras")
    m.save(path)
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["config.json", "metadata.json", "model.weights.h5"]
    km = keras.saving.load_model(path)
    x = _inputs(shape)
    _assert_same_predictions(m, km, x)
    # each layer as Keras serializes it equals the same layer built by Keras itself
    native, _ = _native_keras(case)
    got, want = _layer_configs(km), _layer_configs(native)
    assert set(got) == set(want)
    for name in want:
        g, w = got[name], want[name]
        assert g["class_name"] == w["class_name"] and g["module"] == w["module"], name
        assert g["config"] == w["config"], name
    # and each layer entry convcore wrote has Keras's keys and builds that same layer in Keras
    written = {}
    stack = [kc.to_keras_config(m)]
    while stack:
        d = stack.pop()
        for e in d["config"]["layers"]:
            if e["class_name"] in ("Functional", "Sequential"):
                stack.append(e)
            elif e["class_name"] != "InputLayer":
                written[e["config"]["name"]] = e
    for name, e in written.items():
        assert set(e["config"]) == set(want[name]["config"]), name
        assert e["module"] == want[name]["module"] and e["registered_name"] == want[name]["registered_name"]
        again = json.loads(json.dumps(_strip_ids(keras.saving.serialize_keras_object(keras.layers.deserialize(e)))))
        assert again["config"] == want[name]["config"], name


# ---------------------------------------------------------------------- (b) Keras -> convcore
@pytest.mark.parametrize("case", list(CASES))
def test_keras_file_loads_in_convcore(case, folder):
    km, shape = _native_keras(case)
    _set_keras_weights(km, _random_weights(km.get_weights(), seed=2))
    path = str(folder / f"k_{case}.keras")
    km.save(path)
    m = convcore.models.load_model(path)
    x = _inputs(shape, seed=3)
    _assert_same_predictions(m, km, x)
    assert sorted(l.name for l in m.layers) == sorted(l.name for l in km.layers)
    # Keras's weights-only file too, into a convcore model built by convcore
    wpath = str(folder / f"k_{case}.weights.h5")
    km.save_weights(wpath)
    fresh, _ = _build_convcore(case)
    fresh.load_weights(wpath)
    _assert_same_predictions(fresh, km, x)


def test_convcore_weights_file_loads_in_keras(folder):
    m, shape = _build_convcore("graph")
    m.set_weights(_random_weights(m.get_weights(), seed=4))
    path = str(folder / "cc.weights.h5")
    m.save_weights(path)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89HDF\r\n\x1a\n"
    km, _ = _build_keras("graph")
    km.load_weights(path)
    _assert_same_predictions(m, km, _inputs(shape))


def test_keras_layer_order_is_keras_model_layers_order():
    m, _ = _build_convcore("graph")
    km, _ = _build_keras("graph")
    assert [l.name for l in kc.keras_layer_order(m)] == [l.name for l in km.layers]


# ---------------------------------------------------------------------- compiled models
def _small(lib):
    L = lib.layers
    Input = lib.Input
    inp = Input((5,), name="x")
    h = L.Dense(6, activation="tanh", name="h")(inp)
    h = L.BatchNormalization(name="bn")(h)
    return (lib.Model if lib is keras else lib.models.Model)(inp, L.Dense(2, name="o")(h), name="small")


_OPTIMIZERS = {
    "adam": lambda o: o.Adam(0.01),
    "adam_amsgrad": lambda o: o.Adam(0.01, amsgrad=True),
    "sgd_momentum": lambda o: o.SGD(0.05, momentum=0.9, nesterov=True),
    "rmsprop_centered": lambda o: o.RMSprop(0.01, momentum=0.5, centered=True),
    "nadam": lambda o: o.Nadam(0.01),
    "adagrad": lambda o: o.Adagrad(0.05),
    "adamw": lambda o: o.AdamW(0.01, weight_decay=0.01),
    "adadelta": lambda o: o.Adadelta(0.5),
    "adamax": lambda o: o.Adamax(0.01),
    "lion": lambda o: o.Lion(0.001),
    "adam_schedule": lambda o: o.Adam(o.schedules.ExponentialDecay(0.01, decay_steps=1, decay_rate=0.5)),
    "sgd_accumulating": lambda o: o.SGD(0.05, momentum=0.5, gradient_accumulation_steps=2),
}


def _data():
    rng = np.random.default_rng(7)
    return rng.standard_normal((8, 5)).astype(np.float32), rng.standard_normal((8, 2)).astype(np.float32)


@pytest.mark.parametrize("opt", list(_OPTIMIZERS))
def test_keras_compiled_model_resumes_training_in_convcore(opt, folder):
    x, y = _data()
    km = _small(keras)
    km.set_weights(_random_weights(km.get_weights(), seed=5))
    km.compile(optimizer=_OPTIMIZERS[opt](keras.optimizers), loss="mse", metrics=["mae"])
    # with gradient accumulation over 2 steps, 3 steps leave one gradient accumulated
    km.fit(x, y, batch_size=8, epochs=3 if "accumulating" in opt else 2, verbose=0, shuffle=False)
    path = str(folder / f"k_opt_{opt}.keras")
    km.save(path)
    m = convcore.models.load_model(path)
    assert type(m.optimizer).__name__ == type(km.optimizer).__name__
    assert m.optimizer.iterations == int(np.asarray(km.optimizer.iterations))
    assert m.optimizer._iterations == int(np.asarray(km.optimizer._iterations)) in (2, 3)
    np.testing.assert_allclose(float(m.optimizer.learning_rate), float(np.asarray(km.optimizer.learning_rate)),
                               rtol=1e-6)
    _assert_same_predictions(m, km, x)
    km.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    m.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(m.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opt", ["adam", "rmsprop_centered", "nadam", "sgd_accumulating"])
def test_convcore_compiled_model_resumes_training_in_keras(opt, folder):
    x, y = _data()
    m = _small(convcore)
    m.set_weights(_random_weights(m.get_weights(), seed=6))
    m.compile(optimizer=_OPTIMIZERS[opt](convcore.optimizers), loss="mse", metrics=["mae"])
    m.fit(x, y, batch_size=8, epochs=3 if "accumulating" in opt else 2, verbose=0, shuffle=False)
    path = str(folder / f"cc_opt_{opt}.keras")
    m.save(path)
    km = keras.saving.load_model(path)
    assert type(km.optimizer).__name__ == type(m.optimizer).__name__
    assert int(np.asarray(km.optimizer._iterations)) == m.optimizer._iterations in (2, 3)
    km.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    m.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(m.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-6)


def test_untrained_compiled_model_and_compile_false(folder):
    km = _small(keras)
    km.compile(optimizer="adam", loss="mse")
    path = str(folder / "k_untrained.keras")
    km.save(path)
    m = convcore.models.load_model(path)
    assert type(m.optimizer).__name__ == "Adam" and m.optimizer.iterations == 0
    m2 = convcore.models.load_model(path, compile=False)
    assert not m2._compiled


def test_incompatible_optimizer_state_is_skipped_with_a_warning(folder):
    x, y = _data()
    km = _small(keras)
    km.compile(optimizer="adam", loss="mse")
    km.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = str(folder / "k_adam.weights.h5")
    km.save_weights(path)
    m = _small(convcore)
    m.compile(optimizer=convcore.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    m.fit(x, y, batch_size=8, epochs=1, verbose=0)
    with pytest.warns(UserWarning, match="optimizer state is not loaded"):
        m.load_weights(path)
    _assert_same_predictions(m, km, x)  # the model's weights did load


# ---------------------------------------------------------------------- Lambda and safe_mode
def test_keras_lambda_bytecode_needs_safe_mode_false(folder):
    inp = keras.Input((3,))
    km = keras.Model(inp, keras.layers.Lambda(lambda t: t * 2)(inp))
    path = str(folder / "lambda.keras")
    km.save(path)
    with pytest.raises(ValueError, match="safe_mode=False"):
        convcore.models.load_model(path)
    m = convcore.models.load_model(path, safe_mode=False)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(np.asarray(m.predict(x, verbose=0)), x * 2)


def test_lambda_with_a_registered_function_both_ways(folder):
    @convcore.saving.register_keras_serializable(package="k3test")
    def triple(t):
        return t * 3

    @keras.saving.register_keras_serializable(package="k3test")
    def triple_k(t):
        return t * 3

    inp = convcore.Input((3,))
    m = convcore.models.Model(inp, convcore.layers.Lambda(triple, name="lam")(inp))
    path = str(folder / "lam_cc.keras")
    m.save(path)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    km = keras.saving.load_model(path, custom_objects={"k3test>triple": triple_k})
    np.testing.assert_allclose(np.asarray(km.predict(x, verbose=0)), x * 3)
    again = convcore.models.load_model(path)
    np.testing.assert_allclose(np.asarray(again.predict(x, verbose=0)), x * 3)


# ---------------------------------------------------------------------- dispatch and names
def test_formats_by_name_and_content(folder):
    m, shape = _build_convcore("reshaping")
    own = str(folder / "m.convcore")
    m.save(own)
    with zipfile.ZipFile(own) as z:
        assert json.loads(z.read("config.json"))["format"] == "convcore-model"
    kpath = str(folder / "m.keras")
    m.save(kpath)
    renamed = str(folder / "renamed.bin.zip")
    with open(kpath, "rb") as a, open(renamed, "wb") as b:
        b.write(a.read())
    x = _inputs(shape)
    for p in (own, kpath, renamed):
        _assert_same_predictions(convcore.models.load_model(p), m, x)
    with pytest.raises(FileExistsError, match="overwrite=False"):
        m.save(kpath, overwrite=False)
    with pytest.raises(FileExistsError, match="overwrite=False"):
        m.save_weights(own, overwrite=False)


def test_unzipped_folder_form(folder):
    m, shape = _build_convcore("conv1d")
    m.set_weights(_random_weights(m.get_weights(), seed=8))
    with pytest.raises(ValueError, match="should not end in `.keras`"):
        m.save(str(folder / "unzipped.keras"), zipped=False)
    path = str(folder / "unzipped")
    m.save(path, zipped=False)
    assert os.path.isdir(path) and sorted(os.listdir(path)) == ["config.json", "metadata.json", "model.weights.h5"]
    x = _inputs(shape)
    _assert_same_predictions(convcore.models.load_model(path), m, x)
    km, _ = _build_keras("conv1d")
    km.set_weights(_random_weights(km.get_weights(), seed=9))
    kpath = str(folder / "k_unzipped")
    km.save(kpath, zipped=False)
    assert {"config.json", "metadata.json", "model.weights.h5"} <= set(os.listdir(kpath))
    _assert_same_predictions(convcore.models.load_model(kpath), km, x)


# ---------------------------------------------------------------------- bad and hostile files
def _rewrite(src, dst, change):
    """Copy the .keras file ``src`` to ``dst`` with its members passed through
    ``change(dict name -> bytes)``."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members = change(members)
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


@pytest.fixture(scope="module")
def good(folder):
    m, shape = _build_convcore("reshaping")
    path = str(folder / "good.keras")
    m.save(path)
    return path, m


def test_unknown_class_names_it_and_suggests_custom_objects(good, folder):
    src, _ = good
    bad = str(folder / "unknown.keras")
    _rewrite(src, bad, lambda mem: {**mem, "config.json": mem["config.json"].replace(b'"Permute"', b'"FancyPermute"')})
    with pytest.raises(ValueError, match="FancyPermute") as e:
        convcore.models.load_model(bad)
    assert "custom_objects" in str(e.value) and "unknown.keras" in str(e.value)


def test_path_traversal_member_is_refused(good, folder):
    src, _ = good
    bad = str(folder / "traversal.keras")
    _rewrite(src, bad, lambda mem: {**mem, "../../evil.txt": b"x"})
    before = set(os.listdir(folder)) | set(os.listdir(folder.parent))
    with pytest.raises(ValueError, match="path traversal") as e:
        convcore.models.load_model(bad)
    assert "traversal.keras" in str(e.value)
    assert set(os.listdir(folder)) | set(os.listdir(folder.parent)) == before


def test_zip_bomb_is_refused_before_decompressing(good, folder):
    src, _ = good
    with zipfile.ZipFile(src) as z:
        cfg = z.read("config.json")
    for member, name in (("model.weights.h5", "bomb_weights.keras"), ("config.json", "bomb_config.keras")):
        bad = str(folder / name)
        with zipfile.ZipFile(bad, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("metadata.json", b"{}")
            z.writestr("config.json", cfg if member != "config.json" else b" " * (40 << 20))
            if member != "model.weights.h5":
                z.writestr("model.weights.h5", b"")
            else:
                with z.open("model.weights.h5", "w", force_zip64=True) as f:
                    chunk = bytes(1 << 20)
                    for _ in range(64):
                        f.write(chunk)
        assert os.path.getsize(bad) < 1 << 20
        with pytest.raises(ValueError, match="refused before decompressing") as e:
            convcore.models.load_model(bad)
        assert name in str(e.value) and member in str(e.value)


def test_truncated_file_is_a_clear_error(good, folder):
    src, _ = good
    data = open(src, "rb").read()
    for n in (len(data) // 2, len(data) - 10):
        bad = str(folder / f"truncated{n}.keras")
        with open(bad, "wb") as f:
            f.write(data[:n])
        with pytest.raises(ValueError, match=f"truncated{n}.keras"):
            convcore.models.load_model(bad)


def _h5_variant(good, folder, name, edit):
    """``good`` with its model.weights.h5 edited by ``edit(h5py.File)``."""
    src, _ = good
    with zipfile.ZipFile(src) as z:
        raw = z.read("model.weights.h5")
    buf = io.BytesIO(raw)
    with h5py.File(buf, "r+") as f:
        edit(f)
    bad = str(folder / name)
    _rewrite(src, bad, lambda mem: {**mem, "model.weights.h5": buf.getvalue()})
    return bad


def test_absurd_dataset_shape_is_refused_before_reading(good, folder):
    def edit(f):
        del f["layers/dense/vars/0"]
        f["layers/dense/vars"].create_dataset("0", shape=(1 << 30, 1 << 30), dtype="float32", chunks=(1, 16))
    bad = _h5_variant(good, folder, "absurd.keras", edit)
    with pytest.raises(ValueError, match=r"'d'.*\(24, 4\).*\(1073741824, 1073741824\)") as e:
        convcore.models.load_model(bad)
    assert "absurd.keras" in str(e.value)


@pytest.mark.parametrize("kind", ["string", "complex", "external_link", "external_storage", "soft_link"])
def test_dataset_that_is_not_a_plain_real_array_is_refused(kind, good, folder, tmp_path):
    def edit(f):
        shape = f["layers/dense/vars/1"].shape
        del f["layers/dense/vars/1"]
        g = f["layers/dense/vars"]
        if kind == "string":
            g.create_dataset("1", data=np.array([b"abcd"] * shape[0]))
        elif kind == "complex":
            g.create_dataset("1", data=np.zeros(shape, np.complex64))
        elif kind == "external_link":
            g["1"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/x")
        elif kind == "soft_link":
            g["1"] = h5py.SoftLink("/layers/dense/vars/0")
        else:
            g.create_dataset("1", shape=shape, dtype="float32", external=[(str(tmp_path / "raw.bin"), 0, 1 << 20)])
    bad = _h5_variant(good, folder, f"dtype_{kind}.keras", edit)
    with pytest.raises(ValueError, match=f"dtype_{kind}.keras"):
        convcore.models.load_model(bad)


def test_weights_of_another_architecture_name_the_layer_and_leave_the_model_unchanged(folder):
    km, _ = _build_keras("reshaping")
    path = str(folder / "other_arch.weights.h5")
    km.save_weights(path)
    from convcore import Input, layers, models
    m = models.Sequential([Input((4, 6)), layers.Reshape((6, 4), name="rs"), layers.Permute((2, 1), name="perm"),
                           layers.Flatten(name="fl"), layers.Dense(5, name="d")])
    before = m.get_weights()
    with pytest.raises(ValueError, match=r"layer 'd'.*\(24, 5\).*\(24, 4\)"):
        m.load_weights(path)
    for a, b in zip(m.get_weights(), before):
        np.testing.assert_array_equal(a, b)
    with pytest.warns(UserWarning, match="'d'"):
        m.load_weights(path, skip_mismatch=True)
    with pytest.raises(ValueError, match="by_name"):
        m.load_weights(path, by_name=True)


def test_import_convcore_does_not_import_h5py_or_keras():
    import subprocess
    import sys
    code = "import sys, convcore, convcore.saving; print(sorted(m for m in ('h5py', 'keras', 'jax') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_keras3_legacy_h5_config_is_read(folder):
    """Keras 3's legacy HDF5 writer keeps the config in the ``model_config`` attribute,
    without ``module`` / ``registered_name`` / ``build_config``: from_keras_config reads
    it (the legacy weights layout is legacy_h5's)."""
    km, shape = _build_keras("graph")
    _set_keras_weights(km, _random_weights(km.get_weights(), seed=11))
    path = str(folder / "legacy.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km.save(path)
    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
    assert "module" not in cfg["config"]["layers"][1]
    m = kc.from_keras_config(cfg)
    by_name = {}
    stack = [km]
    while stack:
        for layer in stack.pop().layers:
            (stack if isinstance(layer, keras.Model) else [by_name]).append(layer) if isinstance(layer, keras.Model) \
                else by_name.__setitem__(layer.name, layer)
    stack = [m]
    while stack:
        for layer in stack.pop().layers:
            if isinstance(layer, convcore.models.Model):
                stack.append(layer)
            else:
                for v, w in zip(kc.keras_layer_weights(layer), by_name[layer.name].weights):
                    v.assign(np.asarray(w))
    _assert_same_predictions(m, km, _inputs(shape))


def test_keras_frozen_layer_model_resumes_training(folder):
    x, y = _data()
    km = _small(keras)
    km.get_layer("h").trainable = False
    _set_keras_weights(km, _random_weights(km.get_weights(), seed=12))
    km.compile(optimizer="adam", loss="mse")
    km.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    path = str(folder / "frozen.keras")
    km.save(path)
    m = convcore.models.load_model(path)
    assert not m.get_layer("h").trainable
    km.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    m.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(m.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-6)


def test_keras_layer_convcore_lacks_is_named(folder):
    inp = keras.Input((3,), dtype="int32")
    km = keras.Model(inp, keras.layers.Embedding(5, 2, name="emb")(inp))
    path = str(folder / "embedding.keras")
    km.save(path)
    with pytest.raises(ValueError, match="Embedding") as e:
        convcore.models.load_model(path)
    assert "custom_objects" in str(e.value)


def test_registered_layer_of_your_own_round_trips(folder):
    @convcore.saving.register_keras_serializable(package="k3test")
    class Scale(convcore.layers.Layer):
        def __init__(self, factor=2.0, **kw):
            super().__init__(**kw)
            self.factor = factor

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

        def call(self, x):
            return x * self.w * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    inp = convcore.Input((3,))
    m = convcore.models.Model(inp, Scale(3.0, name="scale")(inp))
    m.set_weights([np.array([1.0, 2.0, 3.0], np.float32)])
    path = str(folder / "custom.keras")
    m.save(path)
    with zipfile.ZipFile(path) as z:
        entry = json.loads(z.read("config.json"))["config"]["layers"][1]
    assert entry["registered_name"] == "k3test>Scale" and entry["config"]["factor"] == 3.0
    x = np.ones((2, 3), np.float32)
    _assert_same_predictions(convcore.models.load_model(path), m, x)


def test_load_model_does_not_hold_the_weights_twice(folder):
    """load_model assigns each array of its new model as it is read: the peak while
    loading exceeds what the loaded model holds by about one array (and an
    initializer's temporary), not by all of them (reading all first: ~7 arrays here)."""
    import tracemalloc
    from convcore import Input, layers, models
    m = models.Sequential([Input((512,))] + [layers.Dense(512, name=f"d{i}") for i in range(6)])
    path = str(folder / "big.keras")
    m.save(path)
    one = 512 * 512 * 4
    tracemalloc.start()
    try:
        again = models.load_model(path)
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - held < 3 * one, f"peak {peak} bytes, {held} held after loading 6 arrays of {one}"
    for a, b in zip(again.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_multi_output_compile_settings_both_ways(folder):
    """Losses and metrics per output (dicts, Loss and Metric objects, names), loss
    weights: convcore evaluates a Keras file as Keras does, and the reverse."""
    L = keras.layers
    i = keras.Input((4,), name="x")
    km = keras.Model(i, [L.Dense(2, name="a")(i), L.Dense(3, name="b")(i)])
    km.compile(optimizer=keras.optimizers.SGD(0.1), loss={"a": keras.losses.Huber(), "b": "mse"},
               loss_weights={"a": 0.5, "b": 2.0}, metrics={"a": [keras.metrics.MeanAbsoluteError()], "b": ["mae"]})
    path = str(folder / "multi_compile.keras")
    km.save(path)
    rng = np.random.default_rng(13)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    y = [rng.standard_normal((6, 2)).astype(np.float32), rng.standard_normal((6, 3)).astype(np.float32)]
    want = km.evaluate(x, y, verbose=0, return_dict=True)
    m = convcore.models.load_model(path)
    assert m._compile_args["loss_weights"] == {"a": 0.5, "b": 2.0}
    got = m.evaluate(x, y, verbose=0, return_dict=True)
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5)
    back = str(folder / "multi_compile_cc.keras")
    m.save(back)
    again = keras.saving.load_model(back).evaluate(x, y, verbose=0, return_dict=True)
    for k in want:
        np.testing.assert_allclose(again[k], want[k], rtol=1e-5)


def _subclassed(lib):
    """The same subclassed model in Keras and convcore: layers in attributes (sorted
    names: Keras's ``layers`` list comes between ``conv`` and ``zed``), in a list, and
    in a private attribute."""
    L, base = lib.layers, (keras.Model if lib is keras else convcore.models.Model)

    class Net(base):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.conv = L.Dense(3)
            self.zed = L.Dense(2)
            self.blocks = [L.Dense(4), L.Dense(4)]
            self._hidden = L.Dense(5)

        def call(self, x):
            return self.zed(self.conv(self._hidden(self.blocks[1](self.blocks[0](x)))))
    return Net()


def test_subclassed_model_weights_both_ways(folder):
    x, y = _data()
    x = x[:, :3]
    km = _subclassed(keras)
    km(x)
    _set_keras_weights(km, _random_weights(km.get_weights(), seed=14))
    km.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    km.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    path = str(folder / "sub_k.weights.h5")
    km.save_weights(path)
    m = _subclassed(convcore)
    m(x)
    m.compile(optimizer=convcore.optimizers.Adam(0.01), loss="mse")
    m.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)  # a state to be replaced
    m.load_weights(path)
    _assert_same_predictions(m, km, x)
    assert m.optimizer._iterations == 1
    km.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    m.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(sorted(m.get_weights(), key=lambda a: (a.shape, a.sum())),
                    sorted((np.asarray(w) for w in km.get_weights()), key=lambda a: (a.shape, a.sum()))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    back = str(folder / "sub_cc.weights.h5")
    m.save_weights(back)
    k2 = _subclassed(keras)
    k2(x)
    k2.load_weights(back)
    _assert_same_predictions(m, k2, x)


def test_registered_subclassed_keras_model_loads_with_custom_objects(folder):
    x = _data()[0][:, :3]
    km = keras.saving.register_keras_serializable(package="k3sub")(type(_subclassed(keras)))()
    km(x)
    _set_keras_weights(km, _random_weights(km.get_weights(), seed=15))
    path = str(folder / "sub.keras")
    km.save(path)
    net = type(_subclassed(convcore))
    m = convcore.models.load_model(path, custom_objects={"k3sub>Net": net})
    assert type(m) is net
    _assert_same_predictions(m, km, x)


def test_convcore_subclassed_model_reloads_from_its_keras_file(folder):
    """The first call (here through predict) records the input shape as the file's
    build_config, so load_model can build the model before its weights go in."""
    x = _data()[0][:, :3]
    net = type(_subclassed(convcore))
    m = net()
    y = m.predict(x, verbose=0)
    _set_keras_weights(m, _random_weights(m.get_weights(), seed=16))
    y = m.predict(x, verbose=0)
    path = str(folder / "sub_cc.keras")
    m.save(path)
    with zipfile.ZipFile(path) as z:
        assert json.loads(z.read("config.json"))["build_config"] == {"input_shape": [None] + list(x.shape[1:])}
    m2 = convcore.models.load_model(path, custom_objects={"Net": net})
    assert type(m2) is net
    np.testing.assert_array_equal(m2.predict(x, verbose=0), y)


def test_unbuilt_subclassed_model_is_told_to_build_first(folder):
    x = _data()[0][:, :3]
    km = _subclassed(keras)
    km(x)
    path = str(folder / "sub_unbuilt.weights.h5")
    km.save_weights(path)
    with pytest.raises(ValueError, match="not built yet"):
        _subclassed(convcore).load_weights(path)


def test_convcore_lambda_bytecode_both_ways(folder):
    inp = convcore.Input((3,))
    m = convcore.models.Model(inp, convcore.layers.Lambda(lambda t: t * 2 + 1, name="lam")(inp))
    path = str(folder / "cc_lambda.keras")
    m.save(path)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with pytest.raises(ValueError, match="safe_mode=False"):
        convcore.models.load_model(path)
    np.testing.assert_allclose(np.asarray(convcore.models.load_model(path, safe_mode=False).predict(x, verbose=0)),
                               x * 2 + 1)
    with pytest.raises(ValueError):
        keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(keras.saving.load_model(path, safe_mode=False).predict(x, verbose=0)),
                               x * 2 + 1)
