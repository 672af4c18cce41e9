"""Keras's legacy HDF5 files (``.h5``) in both directions, against real Keras 3.

- files written by real Keras 3's legacy writer (``model.save('x.h5')``) load in convcore
  and predict as Keras does, for a table of layer types; files convcore writes load in
  real Keras 3 and predict the same;
- the committed tf.keras 2.2 / 2.9 and Keras 1 style files of ``fixtures/keras_files``
  (made by ``fixtures/make_keras_fixtures.py``) load and predict their stored outputs,
  with their compile settings and optimizer state;
- legacy weight files: topological and by name, ``skip_mismatch`` (compared with what
  Keras's own loader does with the same file);
- hostile files: not HDF5, truncated, absurd dataset shapes, wrong dtypes, links and
  external storage, oversized attributes, bytecode Lambdas, unknown classes: each a
  ValueError naming the file, and a live model is never left half loaded.
"""
from __future__ import annotations

import json
import re
import os
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

import convcore
from convcore import layers as L
from convcore.saving import keras2_compat, legacy_h5

FIXTURES = Path(__file__).parent / "fixtures" / "keras_files"
RNG = np.random.default_rng(1414)


def _keras():
    import keras
    return keras


def _randomize_keras(model, seed=0):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        a = rng.standard_normal(tuple(v.shape)).astype("float32") * 0.5
        if "variance" in v.path:
            a = np.abs(a) + 0.5
        v.assign(a)


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        a = rng.standard_normal(tuple(v.shape)).astype(v.dtype) * 0.5
        if "variance" in (getattr(v, "path", "") or v.name):
            a = np.abs(a) + 0.5
        v.assign(a)


def _close(a, b, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def _keras_predict(km, x):
    return np.asarray(km(x, training=False))


# ---------------------------------------------------------------------- Keras 3 -> convcore -> Keras 3
def _k_seq_conv(k):
    l = k.layers
    return k.Sequential([k.Input((8, 8, 3)), l.Conv2D(4, 3, padding="same", activation="relu"),
                         l.BatchNormalization(), l.MaxPooling2D(), l.Flatten(), l.Dense(3, activation="softmax")]), \
        (2, 8, 8, 3)


def _k_depthwise(k):
    l = k.layers
    return k.Sequential([k.Input((8, 8, 3)), l.DepthwiseConv2D(3, depth_multiplier=2),
                         l.SeparableConv2D(4, 3, padding="same", activation="relu"), l.AveragePooling2D(2),
                         l.GlobalAveragePooling2D(), l.Dense(2)]), (2, 8, 8, 3)


def _k_transpose(k):
    l = k.layers
    return k.Sequential([k.Input((5, 5, 2)), l.Conv2DTranspose(3, 3, strides=2), l.UpSampling2D(2),
                         l.ZeroPadding2D(1), l.Cropping2D(2), l.Conv2D(2, 1)]), (2, 5, 5, 2)


def _k_conv1d(k):
    l = k.layers
    return k.Sequential([k.Input((12, 3)), l.Conv1D(4, 3, activation="elu"), l.MaxPooling1D(),
                         l.Conv1D(3, 2, dilation_rate=2, padding="causal"), l.GlobalMaxPooling1D(), l.Dense(2)]), \
        (2, 12, 3)


def _k_dense_norms(k):
    l = k.layers
    return k.Sequential([k.Input((6,)), l.Dense(8), l.LayerNormalization(), l.LeakyReLU(negative_slope=0.1),
                         l.PReLU(), l.Dropout(0.5), l.Dense(4), l.Activation("tanh"), l.BatchNormalization(),
                         l.Dense(2, activation="sigmoid")]), (3, 6)


def _k_merge(k):
    l = k.layers
    i = k.Input((6,), name="features")
    a, b = l.Dense(4, name="a")(i), l.Dense(4, name="b")(i)
    m = l.Concatenate()([l.Add()([a, b]), l.Multiply()([a, b]), l.Subtract()([a, b]), l.Maximum()([a, b]),
                         l.Average()([a, b])])
    return k.Model(i, l.Dense(2, name="head")(m)), (3, 6)


def _k_nested(k):
    l = k.layers
    inner = k.Sequential([k.Input((6,)), l.Dense(5, activation="relu"), l.BatchNormalization()], name="block")
    i = k.Input((6,))
    return k.Model(i, l.Dense(2)(inner(i))), (3, 6)


def _k_groupnorm(k):
    l = k.layers
    return k.Sequential([k.Input((4, 4, 6)), l.GroupNormalization(groups=3), l.Reshape((16, 6)),
                         l.Permute((2, 1)), l.Flatten(), l.Rescaling(0.5), l.Dense(3)]), (2, 4, 4, 6)


def _k_frozen(k):
    l = k.layers
    m = k.Sequential([k.Input((6,)), l.Dense(5), l.BatchNormalization(), l.Dense(2)])
    m.layers[0].trainable = False  # its weights come after the trainable ones of nothing: order kept
    return m, (3, 6)


def _k_conv3d(k):
    l = k.layers
    return k.Sequential([k.Input((4, 4, 4, 2)), l.Conv3D(3, 2, activation="relu"), l.MaxPooling3D(1),
                         l.GlobalAveragePooling3D(), l.Dense(2)]), (2, 4, 4, 4, 2)


KERAS_MODELS = {"conv_bn_pool_dense": _k_seq_conv, "depthwise_separable": _k_depthwise,
                "transpose_upsampling": _k_transpose, "conv1d_causal": _k_conv1d, "dense_norms": _k_dense_norms,
                "functional_merges": _k_merge, "nested_model": _k_nested, "groupnorm_reshape": _k_groupnorm,
                "frozen_layer": _k_frozen, "conv3d": _k_conv3d}


@pytest.mark.parametrize("kind", sorted(KERAS_MODELS))
def test_keras3_h5_loads_and_round_trips(kind, tmp_path):
    k = _keras()
    km, shape = KERAS_MODELS[kind](k)
    _randomize_keras(km, seed=len(kind))
    x = RNG.standard_normal(shape).astype("float32")
    ref = _keras_predict(km, x)
    km.save(tmp_path / "keras.h5")
    m = convcore.models.load_model(tmp_path / "keras.h5")
    _close(m.predict(x, verbose=0), ref)
    m.save(tmp_path / "convcore.h5")  # and back: real Keras 3 reads convcore's file
    back = k.saving.load_model(tmp_path / "convcore.h5", compile=False)
    _close(_keras_predict(back, x), ref)
    assert [l.name for l in back.layers] == [l.name for l in km.layers]


def test_convcore_model_h5_layout_is_keras_legacy(tmp_path):
    # Layer names given: the automatic ones depend on what earlier tests created.
    m = convcore.models.Sequential([convcore.Input((8, 8, 3)), L.Conv2D(4, 3, name="conv2d"),
                                    L.BatchNormalization(name="batch_normalization"), L.Flatten(name="flatten"),
                                    L.Dense(2, name="dense")], name="net")
    _randomize(m)
    m.save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5") as f:
        assert set(f.attrs) >= {"model_config", "keras_version", "backend"}
        assert "training_config" not in f.attrs and "optimizer_weights" not in f
        cfg = json.loads(f.attrs["model_config"])
        assert cfg["class_name"] == "Sequential"
        assert all("module" not in l for l in cfg["config"]["layers"])  # as Keras 3's legacy writer
        g = f["model_weights"]
        assert [n.decode() if isinstance(n, bytes) else n for n in g.attrs["layer_names"]] == \
            ["conv2d", "batch_normalization", "flatten", "dense"]
        names = [n.decode() if isinstance(n, bytes) else n for n in g["batch_normalization"].attrs["weight_names"]]
        assert [n.rsplit("/", 1)[-1] for n in names] == ["gamma", "beta", "moving_mean", "moving_variance"]
        _close(g["conv2d"][names_of(g["conv2d"])[0]][()], m.layers[0].weights[0].numpy())
        assert "top_level_model_weights" in g
    x = RNG.standard_normal((2, 8, 8, 3)).astype("float32")
    km = _keras().saving.load_model(tmp_path / "m.h5", compile=False)
    _close(_keras_predict(km, x), m.predict(x, verbose=0))


def names_of(group):
    return [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]


# ---------------------------------------------------------------------- compile settings, optimizer state
def test_keras3_compiled_file_restores_compile_and_adam_state(tmp_path):
    k = _keras()
    km, shape = _k_seq_conv(k)
    km.compile(optimizer=k.optimizers.Adam(learning_rate=0.02, beta_1=0.8), loss="categorical_crossentropy",
               metrics=["accuracy"])
    x = RNG.standard_normal((8,) + shape[1:]).astype("float32")
    y = np.eye(3, dtype="float32")[RNG.integers(0, 3, 8)]
    km.fit(x, y, batch_size=4, epochs=1, verbose=0)
    km.save(tmp_path / "k.h5")
    m = convcore.models.load_model(tmp_path / "k.h5")
    opt = m.optimizer
    assert type(opt).__name__ == "Adam" and opt.iterations == 2
    assert np.isclose(float(opt.learning_rate), 0.02) and np.isclose(opt.beta_1, 0.8)
    assert type(m.loss).__name__ == "CategoricalCrossentropy" or m.loss == "categorical_crossentropy"
    kv = [np.asarray(v) for v in km.optimizer.variables]  # iteration, learning_rate, then per variable
    assert re.search(r"conv2d(_\d+)?_kernel_momentum$", km.optimizer.variables[2].path)
    kernel = m.layers[0].weights[0]
    _close(opt._slots_of(kernel)[0].numpy(), kv[2])
    _close(opt._slots_of(kernel)[1].numpy(), kv[3])
    # one more step in both from the same state: the same weights (Adam's state was used)
    xs, ys = x[:4], y[:4]
    km.train_on_batch(xs, ys)
    m.train_on_batch(xs, ys)
    _close(m.layers[0].weights[0].numpy(), np.asarray(km.layers[0].kernel), rtol=1e-4, atol=1e-5)
    # convcore's file: Keras 3 compiles it and gets the same optimizer variables
    m.save(tmp_path / "c.h5")
    back = k.saving.load_model(tmp_path / "c.h5")
    assert int(back.optimizer.iterations) == 3
    for v_keras, v_conv in zip(km.optimizer.variables, back.optimizer.variables):
        _close(np.asarray(v_conv), np.asarray(v_keras), rtol=1e-4, atol=1e-6)


def test_include_optimizer_false_and_compile_false(tmp_path):
    m = convcore.models.Sequential([convcore.Input((4,)), L.Dense(2)])
    m.compile(optimizer="sgd", loss="mse")
    m.fit(np.ones((4, 4), "float32"), np.ones((4, 2), "float32"), verbose=0)
    m.save(tmp_path / "a.h5", include_optimizer=False)
    with h5py.File(tmp_path / "a.h5") as f:
        assert "training_config" not in f.attrs and "optimizer_weights" not in f
    assert convcore.models.load_model(tmp_path / "a.h5").optimizer is None
    m.save(tmp_path / "b.h5")
    assert convcore.models.load_model(tmp_path / "b.h5", compile=False).optimizer is None
    assert type(convcore.models.load_model(tmp_path / "b.h5").optimizer).__name__ == "SGD"


def test_incompatible_optimizer_state_is_skipped_with_a_warning(tmp_path):
    src = FIXTURES / "keras3_compiled_adam.h5"
    p = tmp_path / "bad_opt.h5"
    shutil.copy(src, p)
    with h5py.File(p, "r+") as f:
        g = f["optimizer_weights"]
        first_slot = names_of(g)[2]
        del g[first_slot]
        g.create_dataset(first_slot, data=np.zeros((7,), "float32"))  # wrong shape
    with pytest.warns(UserWarning, match="optimizer state was not loaded"):
        m = convcore.models.load_model(p)
    assert m.optimizer.iterations == 0
    x, y = np.load(FIXTURES / "keras3_compiled_adam.input.npy"), np.load(FIXTURES / "keras3_compiled_adam.output.npy")
    _close(m.predict(x, verbose=0), y)


# ---------------------------------------------------------------------- committed fixtures
@pytest.mark.parametrize("name", ["keras3_convnet", "keras3_compiled_adam", "tfkeras2_sequential",
                                  "tfkeras2_functional", "keras1_sequential"])
def test_fixture_files_predict_their_stored_outputs(name):
    x, y = np.load(FIXTURES / f"{name}.input.npy"), np.load(FIXTURES / f"{name}.output.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tfkeras2_sequential's optimizer state: its own test
        m = convcore.models.load_model(FIXTURES / f"{name}.h5")
    _close(m.predict(x, verbose=0), y)


def test_tfkeras2_functional_fixture_compile_and_optimizer_state():
    p = FIXTURES / "tfkeras2_functional.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every optimizer array finds its variable
        m = convcore.models.load_model(p)
    assert [l.name for l in m.layers if l.weights] == ["conv2d", "depthwise_conv2d", "batch_normalization",
                                                       "conv2d_1", "dense"]
    opt = m.optimizer
    assert type(opt).__name__ == "Adam" and opt.iterations == 7 and np.isclose(float(opt.learning_rate), 0.01)
    assert type(m.loss).__name__ == "CategoricalCrossentropy"
    with h5py.File(p) as f:
        g = f["optimizer_weights"]
        for layer in ("conv2d", "depthwise_conv2d", "dense"):
            lw = m.get_layer(layer).weights[0]
            kname = "depthwise_kernel" if layer.startswith("depthwise") else "kernel"
            _close(opt._slots_of(lw)[0].numpy(), g[f"Adam/{layer}/{kname}/m:0"][()])
            _close(opt._slots_of(lw)[1].numpy(), g[f"Adam/{layer}/{kname}/v:0"][()])
        gamma = m.get_layer("batch_normalization").weights[0]
        _close(opt._slots_of(gamma)[1].numpy(), g["Adam/batch_normalization/gamma/v:0"][()])


def test_tfkeras2_sequential_fixture_compile_and_unmappable_optimizer_state():
    p = FIXTURES / "tfkeras2_sequential.h5"
    with pytest.warns(UserWarning, match=r"training/Adam/Variable:0.*freshly initialized optimizer"):
        m = convcore.models.load_model(p)
    assert type(m.optimizer).__name__ == "Adam" and np.isclose(float(m.optimizer.learning_rate), 0.001)
    assert m.optimizer.iterations == 0
    assert [l.name for l in m.layers] == ["conv2d_1", "batch_normalization_1", "max_pooling2d_1", "dropout_1",
                                          "flatten_1", "dense_1"]
    assert m.layers[-1].kernel_regularizer is not None  # the L1L2 of the file
    assert m.input_shape == (None, 8, 8, 3)


def test_keras1_fixture_names_and_compile():
    m = convcore.models.load_model(FIXTURES / "keras1_sequential.h5")
    assert [type(l).__name__ for l in m.layers] == ["Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    assert m.layers[0].filters == 4 and tuple(m.layers[0].kernel_size) == (3, 3) and m.layers[-1].units == 3
    assert type(m.optimizer).__name__ == "SGD" and np.isclose(float(m.optimizer.learning_rate), 0.01)


@pytest.mark.filterwarnings("ignore:The structure of `inputs`")
def test_real_keras3_reads_the_tfkeras2_functional_fixture_the_same():
    """Keras 3's own legacy loader on the tf.keras 2.9-style file (after dropping the
    DepthwiseConv2D ``groups`` key Keras 3 refuses): the same outputs as convcore."""
    k = _keras()
    with h5py.File(FIXTURES / "tfkeras2_functional.h5") as f:
        cfg = json.loads(f.attrs["model_config"])
    for l in cfg["config"]["layers"]:
        if l["class_name"] == "DepthwiseConv2D":
            l["config"].pop("groups")
    from keras.src.legacy.saving import legacy_h5_format, saving_utils
    km = saving_utils.model_from_config(cfg)
    with h5py.File(FIXTURES / "tfkeras2_functional.h5") as f:
        legacy_h5_format.load_weights_from_hdf5_group(f["model_weights"], km)
    x = np.load(FIXTURES / "tfkeras2_functional.input.npy")
    _close(_keras_predict(km, x), np.load(FIXTURES / "tfkeras2_functional.output.npy"))
    del k


# ---------------------------------------------------------------------- keras2_compat
def test_keras2_to_keras3_rewrites():
    cfg = {"class_name": "Model", "config": {"name": "m", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "dtype": "float32", "name": "in"},
         "name": "in", "inbound_nodes": []},
        {"class_name": "Dense", "config": {"name": "d", "units": 2, "kernel_initializer":
                                           {"class_name": "VarianceScaling", "config": {"distribution": "normal"}},
                                           "dtype": {"class_name": "Policy", "config": {"name": "float32"}}},
         "name": "d", "inbound_nodes": [[["in", 0, 0, {}]]]},
        {"class_name": "LeakyReLU", "config": {"name": "r", "alpha": 0.2}, "name": "r",
         "inbound_nodes": [[["d", 0, 0, {}]]]},
        {"class_name": "MaxPool2D", "config": {"name": "p"}, "name": "p", "inbound_nodes": []},
        {"class_name": "BatchNormalization", "config": {"name": "bn", "axis": [3], "fused": None}, "name": "bn",
         "inbound_nodes": []}],
        "input_layers": [["in", 0, 0]], "output_layers": [["r", 0, 0]]}}
    before = json.dumps(cfg)
    out = keras2_compat.keras2_to_keras3(cfg)
    assert json.dumps(cfg) == before  # the argument is not changed
    c = out["config"]
    assert out["class_name"] == "Functional"
    assert c["layers"][0]["config"]["batch_shape"] == [None, 4] and "batch_input_shape" not in c["layers"][0]["config"]
    d = c["layers"][1]
    assert d["config"]["kernel_initializer"]["module"] == "keras.initializers"
    assert d["config"]["kernel_initializer"]["config"]["distribution"] == "truncated_normal"
    assert d["config"]["dtype"]["class_name"] == "DTypePolicy"
    assert d["inbound_nodes"] == [{"args": [{"class_name": "__keras_tensor__", "config": {
        "shape": None, "dtype": None, "keras_history": ["in", 0, 0]}}], "kwargs": {}}]
    assert c["layers"][2]["config"]["negative_slope"] == 0.2 and "alpha" not in c["layers"][2]["config"]
    assert c["layers"][3]["class_name"] == "MaxPooling2D"
    assert c["layers"][4]["config"]["axis"] == 3 and "fused" not in c["layers"][4]["config"]
    assert c["input_layers"] == ["in", 0, 0] and c["output_layers"] == ["r", 0, 0]
    assert keras2_compat.keras2_to_keras3(out) == out  # idempotent


def test_keras2_to_keras3_leaves_keras3_legacy_configs_unchanged(tmp_path):
    km, _ = _k_merge(_keras())
    km.save(tmp_path / "k.h5")
    with h5py.File(tmp_path / "k.h5") as f:
        cfg = json.loads(f.attrs["model_config"])
    assert keras2_compat.keras2_to_keras3(cfg) == cfg
    assert not keras2_compat.is_keras2_config(cfg)


def test_keras2_training_config_rewrites_optimizer_loss_metrics():
    tc = {"optimizer_config": {"class_name": "Custom>Adam", "config": {"lr": 0.5, "decay": 0.0,
                                                                       "is_legacy_optimizer": False}},
          "loss": {"class_name": "MeanSquaredError", "config": {"reduction": "auto", "name": "mse"}},
          "metrics": [[{"class_name": "MeanMetricWrapper", "config": {"name": "acc", "fn": "binary_accuracy"}},
                       {"class_name": "MeanMetricWrapper", "config": {"name": "mae", "fn": "mean_absolute_error"}}]],
          "loss_weights": None}
    c = keras2_compat.keras2_training_config(tc)
    assert c["optimizer"]["class_name"] == "Adam" and c["optimizer"]["config"] == {"learning_rate": 0.5}
    assert c["loss"]["config"]["reduction"] == "sum_over_batch_size"
    assert c["metrics"] == [["acc", "mean_absolute_error"]]


def test_tf_only_layer_and_channels_first_are_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="TFOpLambda"):
        keras2_compat.keras2_to_keras3({"class_name": "Functional", "config": {"layers": [
            {"class_name": "TFOpLambda", "config": {"name": "tf.math.add"}, "inbound_nodes": []}]}})
    with pytest.raises(ValueError, match="channels-last"):
        keras2_compat.keras2_to_keras3({"class_name": "Sequential", "config": [
            {"class_name": "Convolution2D", "config": {"name": "c", "dim_ordering": "th", "nb_filter": 2}}]})


# ---------------------------------------------------------------------- legacy weight files
def _keras_weights_file(km, path):
    from keras.src.legacy.saving import legacy_h5_format
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, km)


def _conv_pair(filters=4):
    """The same small convnet in convcore and in Keras."""
    k = _keras()
    m = convcore.models.Sequential([convcore.Input((8, 8, 3)), L.Conv2D(filters, 3, activation="relu", name="c1"),
                                    L.BatchNormalization(name="bn"), L.Flatten(name="f"), L.Dense(3, name="d")])
    km = k.Sequential([k.Input((8, 8, 3)), k.layers.Conv2D(filters, 3, activation="relu", name="c1"),
                       k.layers.BatchNormalization(name="bn"), k.layers.Flatten(name="f"), k.layers.Dense(3, name="d")])
    return m, km


def test_weights_both_ways_topological(tmp_path):
    m, km = _conv_pair()
    _randomize_keras(km, 3)
    _keras_weights_file(km, tmp_path / "k.h5")
    m.load_weights(tmp_path / "k.h5")
    x = RNG.standard_normal((2, 8, 8, 3)).astype("float32")
    _close(m.predict(x, verbose=0), _keras_predict(km, x))
    _randomize(m, 4)
    m.save_weights(tmp_path / "c.h5")
    with h5py.File(tmp_path / "c.h5") as f:
        assert "layer_names" in f.attrs and "model_config" not in f.attrs
    km.load_weights(tmp_path / "c.h5")  # Keras 3's own legacy reader
    _close(_keras_predict(km, x), m.predict(x, verbose=0))


def test_weights_from_a_model_file_and_open_h5py_file(tmp_path):
    m, km = _conv_pair()
    _randomize_keras(km, 5)
    km.save(tmp_path / "model.h5")
    m.load_weights(tmp_path / "model.h5")  # the model_weights group of a full model file
    x = RNG.standard_normal((2, 8, 8, 3)).astype("float32")
    _close(m.predict(x, verbose=0), _keras_predict(km, x))
    m2, _ = _conv_pair()
    with h5py.File(tmp_path / "model.h5") as f:
        legacy_h5.load_weights(m2, f["model_weights"])
    _close(m2.predict(x, verbose=0), _keras_predict(km, x))


def test_weights_by_name_as_keras(tmp_path):
    k = _keras()
    src = k.Sequential([k.Input((6,)), k.layers.Dense(4, name="shared"), k.layers.Dense(3, name="old_head")])
    _randomize_keras(src, 6)
    _keras_weights_file(src, tmp_path / "w.h5")
    # a different model: an extra layer first, the shared one by name, a new head
    km = k.Sequential([k.Input((6,)), k.layers.Dense(6, name="extra"), k.layers.Dense(4, name="shared"),
                       k.layers.Dense(2, name="new_head")])
    m = convcore.models.Sequential([convcore.Input((6,)), L.Dense(6, name="extra"), L.Dense(4, name="shared"),
                                    L.Dense(2, name="new_head")])
    # the extra layer takes 6 inputs: give "shared" the file's (6, 4) kernel in both
    before = [w.numpy().copy() for w in m.weights]
    km_before = [np.asarray(w).copy() for w in km.weights]
    km.load_weights(tmp_path / "w.h5", by_name=True)
    m.load_weights(tmp_path / "w.h5", by_name=True)
    for name in ("extra", "new_head"):  # not in the file: unchanged
        for w, b in zip(m.get_layer(name).weights, before[:2] if name == "extra" else before[4:]):
            _close(w.numpy(), b)
    for w, kw_ in zip(m.get_layer("shared").weights, km.get_layer("shared").weights):
        _close(w.numpy(), np.asarray(kw_))
    assert not np.allclose(np.asarray(km.get_layer("shared").kernel), km_before[2])
    with pytest.raises(ValueError, match="Layer count mismatch"):
        m.load_weights(tmp_path / "w.h5")  # topological: 3 layers with weights, the file 2


def test_skip_mismatch_as_keras(tmp_path):
    m, km = _conv_pair(filters=4)
    _randomize_keras(km, 7)
    _keras_weights_file(km, tmp_path / "w.h5")
    m5, km5 = _conv_pair(filters=5)  # c1, bn, d have other shapes now
    _randomize(m5, 8)
    before = [w.numpy().copy() for w in m5.weights]
    for kv, b in zip(km5.weights, before):  # both start from the same weights
        kv.assign(b)
    with pytest.raises(ValueError, match=r"w\.h5.*'c1/kernel' has shape \(3, 3, 3, 5\).*\(3, 3, 3, 4\)"):
        m5.load_weights(tmp_path / "w.h5")
    for w, b in zip(m5.weights, before):  # nothing loaded halfway
        _close(w.numpy(), b)
    with pytest.raises(ValueError):
        km5.load_weights(tmp_path / "w.h5")  # Keras refuses it too
    with pytest.warns(UserWarning, match="skipping loading weights"):
        m5.load_weights(tmp_path / "w.h5", skip_mismatch=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km5.load_weights(tmp_path / "w.h5", skip_mismatch=True)
    # Keras skips each mismatched weight and loads the rest (the Dense bias (3,) fits): the same here
    for w, kv in zip(m5.weights, km5.weights):
        _close(w.numpy(), np.asarray(kv))
    _close(m5.get_layer("d").bias.numpy(), np.asarray(km.get_layer("d").bias))
    _close(m5.get_layer("c1").kernel.numpy(), before[0])


def test_weight_count_mismatch_names_the_layer(tmp_path):
    k = _keras()
    km = k.Sequential([k.Input((6,)), k.layers.Dense(4, name="d")])
    _keras_weights_file(km, tmp_path / "w.h5")
    m = convcore.models.Sequential([convcore.Input((6,)), L.Dense(4, use_bias=False, name="d")])
    with pytest.raises(ValueError, match=r"w\.h5.*Weight count mismatch for layer #0.*'d'.*expects 1.*2"):
        m.load_weights(tmp_path / "w.h5")
    with pytest.warns(UserWarning, match="Weight count mismatch"):
        m.load_weights(tmp_path / "w.h5", by_name=True, skip_mismatch=True)


def test_chunked_name_lists_load(tmp_path):
    """Keras splits a name list over 64 KB into layer_names0, layer_names1 ..."""
    m, km = _conv_pair()
    _randomize_keras(km, 9)
    _keras_weights_file(km, tmp_path / "w.h5")
    with h5py.File(tmp_path / "w.h5", "r+") as f:
        names = list(f.attrs["layer_names"])
        del f.attrs["layer_names"]
        f.attrs["layer_names0"] = names[:2]
        f.attrs["layer_names1"] = names[2:]
    m.load_weights(tmp_path / "w.h5")
    _close(m.layers[-1].kernel.numpy(), np.asarray(km.layers[-1].kernel))


# ---------------------------------------------------------------------- hostile files
def _small_model():
    return convcore.models.Sequential([convcore.Input((6,)), L.Dense(4, name="d")])


def _dense_file(path, kernel=None, dtype="float32"):
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"d"]
        g = f.create_group("d")
        g.attrs["weight_names"] = [b"d/kernel:0", b"d/bias:0"]
        if kernel is None:
            g.create_dataset("d/kernel:0", data=np.ones((6, 4), dtype))
        else:
            kernel(g)
        g.create_dataset("d/bias:0", data=np.ones((4,), "float32"))


def _unchanged(model, fn):
    before = [w.numpy().copy() for w in model.weights]
    fn()
    for w, b in zip(model.weights, before):
        _close(w.numpy(), b)


def test_not_hdf5_and_truncated_files(tmp_path):
    m = _small_model()
    (tmp_path / "text.h5").write_text("this is not a model")
    with pytest.raises(ValueError, match=r"text\.h5.*not an HDF5 file"):
        legacy_h5.load_weights(m, tmp_path / "text.h5")
    with pytest.raises(ValueError, match=r"text\.h5"):
        m.load_weights(tmp_path / "text.h5")
    with pytest.raises(ValueError, match=r"text\.h5"):
        convcore.models.load_model(tmp_path / "text.h5")
    whole = (FIXTURES / "keras3_convnet.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ValueError, match=r"cut\.h5.*truncated"):
        convcore.models.load_model(tmp_path / "cut.h5")
    mm = convcore.models.load_model(FIXTURES / "keras3_convnet.h5")
    _unchanged(mm, lambda: pytest.raises(ValueError, mm.load_weights, tmp_path / "cut.h5"))


def test_absurd_dataset_shape_is_refused_before_reading(tmp_path):
    def huge(g):  # declares 4 TB, stores nothing (a fill value of a chunked dataset)
        g.create_dataset("d/kernel:0", shape=(1 << 20, 1 << 20), dtype="float32", chunks=(64, 64),
                         compression="gzip")
    _dense_file(tmp_path / "bomb.h5", huge)
    assert os.path.getsize(tmp_path / "bomb.h5") < 1 << 20
    m = _small_model()
    before = [w.numpy().copy() for w in m.weights]
    with pytest.raises(ValueError, match=r"bomb\.h5.*'d/kernel' has shape \(6, 4\).*\(1048576, 1048576\)"):
        m.load_weights(tmp_path / "bomb.h5")
    for w, b in zip(m.weights, before):
        _close(w.numpy(), b)


@pytest.mark.parametrize("kind", ["string", "compound", "complex", "object_ref"])
def test_non_numeric_datasets_are_refused(tmp_path, kind):
    def bad(g):
        if kind == "string":
            g.create_dataset("d/kernel:0", data=np.full((6, 4), b"x", dtype="S1"))
        elif kind == "compound":
            g.create_dataset("d/kernel:0", data=np.zeros((6, 4), dtype=[("a", "f4"), ("b", "f4")]))
        elif kind == "complex":
            g.create_dataset("d/kernel:0", data=np.zeros((6, 4), "complex64"))
        else:
            g.create_dataset("d/kernel:0", shape=(6, 4), dtype=h5py.ref_dtype)
    _dense_file(tmp_path / "bad.h5", bad)
    m = _small_model()
    before = [w.numpy().copy() for w in m.weights]
    with pytest.raises(ValueError, match=r"bad\.h5.*type"):
        m.load_weights(tmp_path / "bad.h5")
    for w, b in zip(m.weights, before):
        _close(w.numpy(), b)


def test_links_and_external_storage_are_refused(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(24, dtype="float32").tobytes())
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("k", data=np.zeros((6, 4), "float32"))

    def external(g):
        g.create_dataset("d/kernel:0", shape=(6, 4), dtype="float32", external=[(str(secret), 0, 96)])

    def ext_link(g):
        g.create_group("d")
        g["d"]["kernel:0"] = h5py.ExternalLink(str(other), "/k")

    def soft_link(g):
        g.create_dataset("elsewhere", data=np.zeros((6, 4), "float32"))
        g.create_group("d")
        g["d"]["kernel:0"] = h5py.SoftLink(g.name + "/elsewhere")

    m = _small_model()
    for name, fn, what in (("ext.h5", external, "another file"), ("elink.h5", ext_link, "ExternalLink"),
                           ("slink.h5", soft_link, "SoftLink")):
        _dense_file(tmp_path / name, fn)
        with pytest.raises(ValueError, match=rf"{name}.*{what}"):
            m.load_weights(tmp_path / name)
    assert not np.allclose(m.layers[0].kernel.numpy()[0, :4], [0, 1, 2, 3])


def test_oversized_attributes_are_refused(tmp_path, monkeypatch):
    p = FIXTURES / "keras3_convnet.h5"
    monkeypatch.setattr(legacy_h5, "MAX_CONFIG_BYTES", 100)
    with pytest.raises(ValueError, match=r"keras3_convnet\.h5.*model_config.*more than the 100"):
        convcore.models.load_model(p)
    monkeypatch.undo()
    q = tmp_path / "names.h5"
    with h5py.File(q, "w", libver="latest") as f:  # dense attribute storage: no 64 KB limit
        f.attrs["layer_names"] = np.zeros((legacy_h5.MAX_NAMES + 1,), "S1")
    with pytest.raises(ValueError, match=r"names\.h5.*declares 65537 values"):
        _small_model().load_weights(q)


def test_weights_file_is_not_a_model_file(tmp_path):
    m = _small_model()
    m.save_weights(tmp_path / "w.h5")
    with pytest.raises(ValueError, match=r"w\.h5.*No model config"):
        convcore.models.load_model(tmp_path / "w.h5")
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    with pytest.raises(ValueError, match=r"empty\.h5.*not a legacy Keras weights file"):
        legacy_h5.load_weights(m, tmp_path / "empty.h5")


def test_fifo_named_h5_is_refused_without_blocking(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(tmp_path / "pipe.h5")
    with pytest.raises(ValueError, match=r"pipe\.h5.*not a regular file"):
        legacy_h5.load_weights(_small_model(), tmp_path / "pipe.h5")


def _model_file_with_config(path, cfg):
    shutil.copy(FIXTURES / "keras1_sequential.h5", path)
    with h5py.File(path, "r+") as f:
        f.attrs["model_config"] = json.dumps(cfg).encode()


def test_bytecode_lambda_refused_in_safe_mode_and_unknown_class_named(tmp_path):
    lam = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 3], "name": "i"}},
        {"class_name": "Lambda", "config": {"name": "lam", "function": ["4wEAAAAAAAAA", None, None],
                                            "function_type": "lambda", "module": "__main__", "arguments": {}}}]}}
    _model_file_with_config(tmp_path / "lam.h5", lam)
    with pytest.raises(ValueError, match=r"lam\.h5.*(safe_mode|bytecode|lambda)"):
        convcore.models.load_model(tmp_path / "lam.h5")
    unk = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 3], "name": "i"}},
        {"class_name": "MyFancyLayer", "config": {"name": "x"}}]}}
    _model_file_with_config(tmp_path / "unk.h5", unk)
    with pytest.raises(ValueError, match=r"unk\.h5.*MyFancyLayer.*custom_objects"):
        convcore.models.load_model(tmp_path / "unk.h5")


def test_custom_objects_load_a_user_layer(tmp_path):
    @convcore.saving.register_keras_serializable(package="h5test")
    class Doubler(L.Layer):
        def call(self, x):
            return x * 2.0

    m = convcore.models.Sequential([convcore.Input((3,)), L.Dense(2, name="d"), Doubler(name="dbl")])
    m.save(tmp_path / "u.h5")
    back = convcore.models.load_model(tmp_path / "u.h5", custom_objects={"Doubler": Doubler})
    x = RNG.standard_normal((2, 3)).astype("float32")
    _close(back.predict(x, verbose=0), m.predict(x, verbose=0))


def test_save_is_atomic_and_overwrite_false(tmp_path):
    m = _small_model()
    p = tmp_path / "m.h5"
    m.save(p)
    first = p.read_bytes()
    with pytest.raises(FileExistsError):
        m.save(p, overwrite=False)
    assert p.read_bytes() == first

    class Boom(Exception):
        pass

    orig = legacy_h5._write_weights_group

    def failing(group, model):
        orig(group, model)
        raise Boom()

    legacy_h5._write_weights_group = failing
    try:
        with pytest.raises(Boom):
            m.save(p)
    finally:
        legacy_h5._write_weights_group = orig
    assert p.read_bytes() == first
    assert [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")] == []


def test_weights_are_streamed_not_held_twice(tmp_path):
    """Loading reads and assigns one checked dataset at a time: the loader's own peak is
    about one layer's weights, not the file's (numpy buffers are seen by tracemalloc)."""
    import tracemalloc
    n = 1200
    m = convcore.models.Sequential([convcore.Input((n,))] + [L.Dense(n, name=f"d{i}") for i in range(4)])
    _randomize(m, 11)
    m.save_weights(tmp_path / "big.h5")
    total = sum(w.numpy().nbytes for w in m.weights)  # 4 x 5.8 MB
    m2 = convcore.models.Sequential([convcore.Input((n,))] + [L.Dense(n, name=f"d{i}") for i in range(4)])
    tracemalloc.start()
    try:
        m2.load_weights(tmp_path / "big.h5")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * total, (peak, total)
    for a, b in zip(m.weights, m2.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_keras1_input_dim_and_keras22_first_layer_get_an_input_layer():
    from convcore.saving.keras_config import from_keras_config
    k1 = {"class_name": "Sequential", "config": [
        {"class_name": "Dense", "config": {"name": "dense_1", "output_dim": 3, "init": "glorot_uniform",
                                           "activation": "relu", "input_dim": 4, "bias": True}},
        {"class_name": "Dropout", "config": {"name": "dropout_1", "p": 0.5}}]}
    out = keras2_compat.keras2_to_keras3(k1)
    first = out["config"]["layers"][0]
    assert first["class_name"] == "InputLayer" and first["config"]["batch_shape"] == [None, 4]
    assert out["config"]["layers"][1]["config"] == {"name": "dense_1", "units": 3,
                                                    "kernel_initializer": "glorot_uniform", "activation": "relu",
                                                    "use_bias": True}
    assert out["config"]["layers"][2]["config"] == {"name": "dropout_1", "rate": 0.5}
    m = from_keras_config(out)
    assert m.input_shape == (None, 4) and m.layers[0].units == 3 and m.layers[1].rate == 0.5


@pytest.mark.parametrize("kind", ["conv_bn_pool_dense", "functional_merges"])
def test_model_config_written_equals_keras3_legacy_writers(kind, tmp_path):
    """The model of a Keras 3 file, saved again by convcore: the same ``model_config``
    JSON Keras 3's legacy writer put there, key for key, and the same layer_names and
    weight counts per layer."""
    km, _ = KERAS_MODELS[kind](_keras())
    km.save(tmp_path / "k.h5")
    convcore.models.load_model(tmp_path / "k.h5").save(tmp_path / "c.h5")
    with h5py.File(tmp_path / "k.h5") as fk, h5py.File(tmp_path / "c.h5") as fc:
        assert json.loads(fc.attrs["model_config"]) == json.loads(fk.attrs["model_config"])
        gk, gc = fk["model_weights"], fc["model_weights"]
        assert list(gc.attrs["layer_names"]) == list(gk.attrs["layer_names"])
        for name in gk.attrs["layer_names"]:
            name = name.decode() if isinstance(name, bytes) else name
            assert len(gc[name].attrs["weight_names"]) == len(gk[name].attrs["weight_names"])


def test_file_cut_inside_a_dataset_with_a_consistent_superblock(tmp_path):
    """A file cut in the middle of a weight's data, its superblock's end-of-file
    address rewritten to match (so HDF5 opens it): refused, naming the file, before
    any weight of the live model changes."""
    import struct
    p = tmp_path / "w.h5"
    with h5py.File(p, "w") as f:  # libver earliest: superblock v0, end-of-file address at byte 40
        f.attrs["layer_names"] = [b"d"]
        g = f.create_group("d")
        g.attrs["weight_names"] = [b"d/kernel:0", b"d/bias:0"]
        g.create_dataset("d/bias:0", data=np.ones(4, "f4"))
        g.create_dataset("d/kernel:0", data=np.ones((600, 4), "f4"))
    with h5py.File(p) as f:
        offset = f["d/d/kernel:0"].id.get_offset()
    data = bytearray(p.read_bytes())
    assert data[8] == 0 and struct.unpack("<Q", data[40:48])[0] == len(data)
    cut = offset + 100
    data = data[:cut]
    data[40:48] = struct.pack("<Q", cut)
    (tmp_path / "cut.h5").write_bytes(bytes(data))
    m = convcore.models.Sequential([convcore.Input((600,)), L.Dense(4, name="d")])
    before = [w.numpy().copy() for w in m.weights]
    with pytest.raises(ValueError, match=r"cut\.h5.*(damaged|truncated)"):
        m.load_weights(tmp_path / "cut.h5")
    for w, b in zip(m.weights, before):
        _close(w.numpy(), b)
