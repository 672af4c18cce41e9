"""convcore.backend and convcore.utils against Keras 3: clear_session and the name
counters, epsilon / floatx / image_data_format, is_keras_tensor / int_shape /
count_params, to_categorical and normalize (values vs keras.utils, CPU and GPU),
set_random_seed (the same global numpy / random streams as Keras), and model_to_dot
(the same graph as Keras's for the same model, where pydot is installed)."""
from __future__ import annotations

import os
import random

import keras
import numpy as np
import pytest

import convcore as cc
from convcore import _core, backend, layers, ops, utils
from convcore.utils import model_visualization as mv

HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CI requires a GPU adapter (lavapipe) for the GPU half of these tests")
DEVICES = ["cpu"] + (["gpu"] if HAVE_GPU else [])
HAVE_PYDOT = mv.check_pydot()
needs_pydot = pytest.mark.skipif(not HAVE_PYDOT, reason="pydot is not installed (pip install convcore[plot])")


# ------------------------------------------------------------------ backend
def test_clear_session_resets_layer_names_as_keras():
    def names(mod):
        return [mod.layers.Dense(2).name, mod.layers.Dense(2).name, mod.layers.Conv2D(1, 3).name]

    backend.clear_session()
    keras.backend.clear_session()
    first = names(cc)
    assert first == names(keras) == ["dense", "dense_1", "conv2d"]
    assert names(cc)[:2] == ["dense_2", "dense_3"]
    backend.clear_session()
    keras.backend.clear_session()
    assert names(cc) == names(keras) == ["dense", "dense_1", "conv2d"]
    utils.clear_session(free_memory=False)  # keras.utils's alias
    assert layers.Dense(1).name == "dense"


def test_get_uid_counts_per_prefix_as_keras():
    backend.clear_session()
    keras.backend.clear_session()
    ours = [backend.get_uid("a"), backend.get_uid("a"), backend.get_uid("b"), backend.get_uid("a")]
    ref = [keras.backend.get_uid("a"), keras.backend.get_uid("a"), keras.backend.get_uid("b"),
           keras.backend.get_uid("a")]
    assert ours == ref == [1, 2, 1, 3]


def test_settings_default_to_kerass():
    assert backend.epsilon() == keras.backend.epsilon() == 1e-7
    assert backend.floatx() == keras.backend.floatx() == "float32"
    assert backend.image_data_format() == keras.backend.image_data_format() == "channels_last"
    assert backend.backend() == "convcore"
    for d in ("float32", np.float64, "int8", np.dtype("uint16"), None):
        assert backend.standardize_dtype(d) == keras.backend.standardize_dtype(d)


def test_set_epsilon_is_used_by_the_constraints():
    w = np.full((4, 1), 1e-4, np.float32)  # norm 2e-4: epsilon matters
    try:
        backend.set_epsilon(1e-3)
        keras.backend.set_epsilon(1e-3)
        assert backend.epsilon() == 1e-3
        np.testing.assert_allclose(cc.constraints.UnitNorm()(w).numpy(),
                                   np.asarray(keras.constraints.UnitNorm()(w)), rtol=1e-5)
    finally:
        backend.set_epsilon(1e-7)
        keras.backend.set_epsilon(1e-7)
    for bad, err in ((0, ValueError), (-1e-3, ValueError), (float("nan"), ValueError), ("1e-7", TypeError),
                     (True, TypeError)):
        with pytest.raises(err, match="set_epsilon"):
            backend.set_epsilon(bad)
    assert backend.epsilon() == 1e-7


def test_set_floatx_builds_float64_layers():
    try:
        backend.set_floatx("float64")
        d = layers.Dense(2)
        d(np.ones((1, 3)))
        assert d.kernel.dtype == np.float64
    finally:
        backend.set_floatx("float32")
    with pytest.raises(ValueError, match="set_floatx: expected 'float32' or 'float64'"):
        backend.set_floatx("float16")


def test_image_data_format_is_channels_last_only():
    backend.set_image_data_format("channels_last")
    with pytest.raises(ValueError, match="supports only 'channels_last'.*'channels_first'"):
        backend.set_image_data_format("channels_first")
    with pytest.raises(ValueError, match="must be one of"):
        backend.set_image_data_format("nhwc")
    assert backend.image_data_format() == "channels_last"


def test_symbolic_tensor_helpers_as_keras():
    ours, ref = cc.Input((3, 4)), keras.Input((3, 4))
    assert backend.is_keras_tensor(ours) and keras.backend.is_keras_tensor(ref)
    assert utils.is_keras_tensor(ours)
    x = np.zeros((2, 3), np.float32)
    assert not backend.is_keras_tensor(x) and not keras.backend.is_keras_tensor(x)
    assert not backend.is_keras_tensor(ops.convert_to_tensor(x))
    assert backend.int_shape(ours) == tuple(ref.shape) == (None, 3, 4)
    assert backend.int_shape(ops.convert_to_tensor(x)) == (2, 3) == backend.int_shape(x)
    v = cc.Variable(np.zeros((3, 4, 5), np.float32))
    assert backend.count_params(v) == 60 and backend.count_params(x) == 6
    with pytest.raises(ValueError, match="unknown axis"):
        backend.count_params(ours)


def test_get_value_and_set_value_as_tf_keras():
    v = cc.Variable(np.zeros((2,), np.float32))
    backend.set_value(v, [1.5, -2.0])
    np.testing.assert_array_equal(backend.get_value(v), [1.5, -2.0])
    assert isinstance(backend.get_value(v), np.ndarray) and backend.get_value(0.1) == 0.1
    with pytest.raises(TypeError, match="set_value: expected a Variable"):
        backend.set_value(0.1, 0.2)


def test_set_seed_rng_and_next_seed_are_reproducible():
    backend.set_seed(11)
    a = (backend.rng().random(3), backend.next_seed())
    backend.set_seed(11)
    b = (backend.rng().random(3), backend.next_seed())
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1] and 0 <= a[1] < 2 ** 63
    with pytest.raises(ValueError, match="set_seed"):
        backend.set_seed(-1)


# ------------------------------------------------------------------ utils: to_categorical / normalize
CAT_CASES = [([0, 2, 1], None), ([0, 2, 1], 4), (np.array([[1], [3]]), 5), (np.array([[0, 1, 2], [2, 1, 0]]), None),
             (np.array([3.0, 1.0]), None), (np.array([[[1]], [[0]]]), 2), ([5], None)]


@pytest.mark.parametrize("y,n", CAT_CASES, ids=[str(i) for i in range(len(CAT_CASES))])
def test_to_categorical_equals_kerass(y, n):
    ours, ref = utils.to_categorical(y, n), keras.utils.to_categorical(y, n)
    assert isinstance(ours, np.ndarray) and ours.dtype == ref.dtype and ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("device", DEVICES)
def test_to_categorical_of_a_tensor_is_a_tensor_on_its_device(device):
    y = np.array([[2], [0], [1]])
    t = ops.convert_to_tensor(y.astype(np.int32), device=device)
    out = utils.to_categorical(t, 4)
    assert isinstance(out, cc.Tensor) and out.device == device and out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), keras.utils.to_categorical(y, 4))


@pytest.mark.parametrize("y,n,err,match", [
    ([0, -1], None, ValueError, "class indices must be >= 0"),
    ([0, 3], 3, ValueError, "class index 3 is out of range for num_classes=3"),
    ([0.5], None, ValueError, "whole numbers"),
    ([0, 1], 0, ValueError, "num_classes must be >= 1"),
    ([0, 1], 2.0, TypeError, "num_classes must be an integer"),
    (["a"], None, TypeError, "expected integer class indices"),
])
def test_to_categorical_bad_input(y, n, err, match):
    with pytest.raises(err, match=match):
        utils.to_categorical(y, n)


NORM_CASES = [(-1, 2), (0, 2), (1, 1), (-1, 3), (0, 1)]
X = np.array([[3.0, -4.0, 1.0], [0.0, 0.0, 0.0], [0.5, 2.0, -1.5], [1e-3, 0.0, -2e-3]])


@pytest.mark.parametrize("axis,order", NORM_CASES)
def test_normalize_arrays_equal_kerass(axis, order):
    for x in (X, X.astype(np.float32)):
        ours = utils.normalize(x, axis=axis, order=order)
        if axis == 0:
            # Keras 3.15's numpy path turns axis=0 into -1 (`axis = axis or -1`) and
            # fails to broadcast; ours normalizes columns: Keras's rows of x.T
            with pytest.raises(ValueError):
                keras.utils.normalize(x, axis=0, order=order)
            ref = keras.utils.normalize(x.T, axis=-1, order=order).T
        else:
            ref = keras.utils.normalize(x, axis=axis, order=order)
        assert isinstance(ours, np.ndarray) and ours.dtype == ref.dtype
        np.testing.assert_allclose(ours, ref, rtol=1e-6 if x.dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("axis,order", NORM_CASES)
@pytest.mark.parametrize("device", DEVICES)
def test_normalize_tensors_equal_kerass_ops_normalize(axis, order, device):
    x = X.astype(np.float32)
    ours = utils.normalize(ops.convert_to_tensor(x, device=device), axis=axis, order=order)
    assert isinstance(ours, cc.Tensor) and ours.device == device
    ref = np.asarray(keras.utils.normalize(keras.ops.convert_to_tensor(x), axis=axis, order=order))
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-5, atol=1e-7)  # atol: the all-zero row's 0s


def test_normalize_gradient_equals_float64_finite_differences():
    x = X[[0, 2, 3]]
    r = np.random.default_rng(1).uniform(0.5, 1.5, x.shape)
    t = ops.convert_to_tensor(x)
    with cc.GradientTape() as tape:
        tape.watch(t)
        loss = ops.sum(utils.normalize(t) * r)
    g = tape.gradient(loss, t).numpy()
    eps, num = 1e-6, np.zeros_like(x)
    for i in range(x.size):
        xp, xm = x.copy(), x.copy()
        xp.flat[i] += eps
        xm.flat[i] -= eps
        num.flat[i] = (np.sum(utils.normalize(ops.convert_to_tensor(xp)).numpy() * r)
                       - np.sum(utils.normalize(ops.convert_to_tensor(xm)).numpy() * r)) / (2 * eps)
    assert np.max(np.abs(g - num)) / np.max(np.abs(num)) <= 1e-6


def test_normalize_bad_input():
    with pytest.raises(ValueError, match="order must be an int >= 1"):
        utils.normalize(X, order=0)
    with pytest.raises(ValueError, match="normalize: axis"):
        utils.normalize(X, axis=2)
    with pytest.raises(TypeError, match="numeric"):
        utils.normalize(np.array(["a"]))


PAD_SEQS = [[1, 2, 3], [4], [], [5, 6, 7, 8, 9]]
PAD_CASES = [{}, {"maxlen": 3}, {"maxlen": 6, "padding": "post"}, {"maxlen": 2, "truncating": "post"},
             {"padding": "post", "truncating": "post", "value": -1, "dtype": "float32"},
             {"maxlen": 4, "value": 0.5, "dtype": "float64"}]


@pytest.mark.parametrize("kw", PAD_CASES, ids=[str(i) for i in range(len(PAD_CASES))])
def test_pad_sequences_equals_kerass(kw):
    ours, ref = utils.pad_sequences(PAD_SEQS, **kw), keras.utils.pad_sequences(PAD_SEQS, **kw)
    assert ours.dtype == ref.dtype
    np.testing.assert_array_equal(ours, ref)
    vec = [np.ones((2, 3)), np.zeros((1, 3))]  # samples with a feature axis
    np.testing.assert_array_equal(utils.pad_sequences(vec, **kw), keras.utils.pad_sequences(vec, **kw))
    strs = [["a", "b"], ["c"]]
    np.testing.assert_array_equal(utils.pad_sequences(strs, dtype=object, value="-"),
                                  keras.utils.pad_sequences(strs, dtype=object, value="-"))


@pytest.mark.parametrize("kw,err,match", [
    ({"padding": "middle"}, ValueError, "pad_sequences: padding must be one of"),
    ({"truncating": "both"}, ValueError, "pad_sequences: truncating must be one of"),
    ({"maxlen": -1}, ValueError, "pad_sequences: maxlen must be >= 0"),
    ({"maxlen": 2.5}, TypeError, "pad_sequences: maxlen must be an integer"),
    ({"value": "x"}, ValueError, "is not compatible with `value`'s type"),
])
def test_pad_sequences_bad_input(kw, err, match):
    with pytest.raises(err, match=match):
        utils.pad_sequences(PAD_SEQS, **kw)
    with pytest.raises(ValueError, match="non-iterable"):
        utils.pad_sequences([[1], 2])
    with pytest.raises(ValueError, match="different from expected shape"):
        utils.pad_sequences([np.ones((2, 3)), np.ones((2, 4))])


# ------------------------------------------------------------------ utils: seeds
def test_set_random_seed_seeds_the_global_streams_as_keras():
    keras.utils.set_random_seed(1234)
    ref = (np.random.random(4), random.random())
    utils.set_random_seed(1234)
    ours = (np.random.random(4), random.random())
    np.testing.assert_array_equal(ours[0], ref[0])
    assert ours[1] == ref[1]
    utils.set_random_seed(7)
    a = cc.initializers.GlorotUniform()((3, 3))
    utils.set_random_seed(7)
    np.testing.assert_array_equal(cc.initializers.GlorotUniform()((3, 3)), a)  # convcore's own generator too
    for bad in (1.5, "3", None, True):
        with pytest.raises(ValueError, match="Expected `seed` argument to be an integer"):
            utils.set_random_seed(bad)
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*32\)"):
        utils.set_random_seed(-1)


def test_utils_exports_the_serialization_helpers():
    from convcore import saving
    assert utils.register_keras_serializable is saving.register_keras_serializable
    assert utils.custom_object_scope is saving.custom_object_scope is utils.CustomObjectScope
    assert utils.get_registered_object is saving.get_registered_object
    assert utils.serialize_keras_object is saving.serialize_keras_object
    assert utils.deserialize_keras_object is saving.deserialize_keras_object
    assert utils.get_registered_name(layers.Dense) == "Dense"
    from convcore.utils import file_utils
    assert utils.get_file is file_utils.get_file  # (downloads happen only when a user asks; tests/test_datasets.py)


# ------------------------------------------------------------------ utils: model_to_dot / plot_model
def _canonical(dot):
    """A dot graph without object ids: its attributes, node labels (sorted), edges as
    label pairs, and the same for each cluster."""
    labels = {n.get_name(): n.get_attributes().get("label") for n in dot.get_nodes() if n.get_name() != "node"}

    def collect(g, acc):
        for n in g.get_nodes():
            if n.get_name() != "node":
                acc[n.get_name()] = n.get_attributes().get("label")
        for s in g.get_subgraphs():
            collect(s, acc)
        return acc

    every = collect(dot, {})
    return {"attrs": dot.get_attributes(), "nodes": sorted(labels.values()),
            "node_attrs": sorted(str(sorted(n.get_attributes().items())) for n in dot.get_nodes()),
            "edges": sorted((every[e.get_source()], every[e.get_destination()], str(e.get_attributes()))
                            for e in dot.get_edges()),
            "clusters": sorted((s.get_name(), str(_canonical(s))) for s in dot.get_subgraphs())}


_MODELS = {}


def _two_models(mod, nested):
    """The same functional model (and a Sequential) in convcore or keras (built once per
    module: Keras's models are slow to build)."""
    key = (mod.__name__, nested)
    if key not in _MODELS:
        _MODELS[key] = _build_two_models(mod, nested)
    return _MODELS[key]


def _build_two_models(mod, nested):
    (keras.backend if mod is keras else backend).clear_session()
    L = mod.layers
    a = mod.Input((4,), name="a")
    b = mod.Input((3,), name="b")
    x = L.Dense(5, activation="relu", name="d1")(a)
    y = L.Dense(5, name="d2")(b)
    if nested:
        inner = mod.Sequential([mod.Input((5,)), L.Dense(5, activation="tanh", name="i1"), L.Dense(5, name="i2")],
                               name="inner")
        y = inner(y)
    z = L.Add(name="add")([x, y])
    func = mod.Model([a, b], L.Dense(1, activation="sigmoid", name="out")(z), name="func")
    seq = mod.Sequential([mod.Input((6,)), L.Dense(4, name="s1"), L.Dense(2, activation="softmax", name="s2")],
                         name="seq")
    return func, seq


@needs_pydot
@pytest.mark.parametrize("kw", [{}, {"show_shapes": True, "show_dtype": True, "show_layer_activations": True,
                                     "show_trainable": True}, {"show_layer_names": False, "rankdir": "LR", "dpi": 96}])
@pytest.mark.parametrize("nested,expand", [(False, False), (True, False), (True, True)])
def test_model_to_dot_is_kerass_graph(kw, nested, expand):
    ours, ref = _two_models(cc, nested), _two_models(keras, nested)
    for o, r in zip(ours, ref):
        o.layers[-1].trainable = r.layers[-1].trainable = False  # a Non-trainable cell
        assert _canonical(utils.model_to_dot(o, expand_nested=expand, **kw)) == \
            _canonical(keras.utils.model_to_dot(r, expand_nested=expand, **kw))


@needs_pydot
def test_model_to_dot_of_a_subclassed_model_is_one_node():
    class Two(cc.Model):
        def __init__(self):
            super().__init__(name="two")
            self.d = layers.Dense(2)

        def call(self, x):
            return self.d(x)

    m = Two()
    m(np.ones((1, 3), np.float32))
    nodes = [n for n in utils.model_to_dot(m).get_nodes() if n.get_name() != "node"]
    assert len(nodes) == 1 and "<b>two</b> (Two)" in nodes[0].get_attributes()["label"]


def test_plot_model_without_pydot_or_graphviz_is_an_import_error(monkeypatch, tmp_path):
    m, _ = _two_models(cc, False)
    monkeypatch.setattr(mv, "_PYDOT", [None])
    with pytest.raises(ImportError, match=r"pip install pydot.*convcore\[plot\].*plot_model"):
        utils.plot_model(m, to_file=tmp_path / "m.png")
    with pytest.raises(ImportError, match="model_to_dot"):
        utils.model_to_dot(m)
    assert not (tmp_path / "m.png").exists()
    if HAVE_PYDOT:
        monkeypatch.undo()
        monkeypatch.setattr(mv, "check_graphviz", lambda: False)
        with pytest.raises(ImportError, match="You must install graphviz"):
            utils.plot_model(m, to_file=tmp_path / "m.png")


@pytest.mark.skipif(not (HAVE_PYDOT and mv.check_graphviz()), reason="graphviz's dot program is not installed")
def test_plot_model_writes_the_file(tmp_path):
    m, _ = _two_models(cc, True)
    utils.plot_model(m, to_file=tmp_path / "m.png", show_shapes=True)
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_model_bad_arguments():
    m, _ = _two_models(cc, False)
    with pytest.raises(TypeError, match="expected a Model"):
        utils.plot_model(layers.Dense(2))
    for unbuilt in (cc.Sequential([layers.Dense(2)]), cc.Model()):
        for f in (utils.plot_model, utils.model_to_dot):
            with pytest.raises(ValueError, match="This model has not yet been built"):
                f(unbuilt)
    if HAVE_PYDOT:
        with pytest.raises(ValueError, match="Unrecognized keyword arguments"):
            utils.model_to_dot(m, colour="red")
        with pytest.raises(ValueError, match="layer_range"):
            utils.model_to_dot(m, layer_range=["a", "b"])
