"""Batch normalization folded into the convolution before it, in inference
(convcore.models.inference_fusion): the folded model's outputs against the same model
unfused (``inference_fusion.enabled(False)``) and against real Keras 3 with the same
weights; the fold is used only when it may be (inference, no tape, one reader, not a
model output, normalization over the channels), and follows the weights as they change."""
from __future__ import annotations

import functools
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import convcore as cc
from convcore import layers as L, ops
from convcore.models import inference_fusion as F
from core_layers_reference import needs_gpu

rng = np.random.default_rng(15)


def libs():
    return [(cc, L), (keras, keras.layers)]


def randomize(model, seed=0):
    """Every weight random; the normalizations' statistics non-trivial (variance in
    [0.3, 3], gamma in [0.5, 2] with sign flips, mean and beta normal)."""
    r = np.random.default_rng(seed)
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        if isinstance(layer, cc.Model):
            randomize(layer, seed + 1)
        elif isinstance(layer, L.BatchNormalization):
            names = [w.name for w in layer.weights]
            new = []
            for name, w in zip(names, ws):
                if name == "gamma":
                    new.append(r.uniform(0.5, 2.0, w.shape) * r.choice([-1.0, 1.0], w.shape))
                elif name == "moving_variance":
                    new.append(r.uniform(0.3, 3.0, w.shape))
                else:
                    new.append(r.normal(0.0, 1.0, w.shape))
            layer.set_weights([n.astype(w.dtype) for n, w in zip(new, ws)])
        else:
            layer.set_weights([r.normal(0.0, 0.5, w.shape).astype(w.dtype) for w in ws])


class _KerasZeroInit:
    """``keras.layers`` whose kernels start at zeros: the weights are overwritten at
    once, and Keras's random initializers compile one jax program per shape (seconds
    per model on this machine)."""

    KEYS = {"Conv1D": "kernel_initializer", "Conv2D": "kernel_initializer", "Conv3D": "kernel_initializer",
            "Dense": "kernel_initializer", "DepthwiseConv2D": "depthwise_initializer"}

    def __getattr__(self, name):
        cls = getattr(keras.layers, name)
        key = self.KEYS.get(name)
        return functools.partial(cls, **{key: "zeros"}) if key else cls


def keras_twin(build, model):
    """The same architecture in Keras with ``model``'s weights (copied layer by layer,
    by name)."""
    km = build(keras, _KerasZeroInit())
    for layer in model.layers:
        if layer.get_weights():
            km.get_layer(layer.name).set_weights(layer.get_weights())
    return km


def unfused(model, x, **kw):
    with F.enabled(False):
        return np.asarray(model(x, **kw)) if kw else model.predict(x, verbose=0)


def check(build, x, groups, keras_atol=1e-4):
    """Folded == unfused (float32 rounding) == Keras (1e-4), with ``groups`` folded
    groups used once each per call, and the weights untouched."""
    model = build(cc, L)
    randomize(model)
    before = [w.copy() for w in model.get_weights()]
    runs = F.runs_of(model)
    got = model.predict(x, verbose=0)
    assert len(F.plan_of(model)) == groups, F.plan_of(model)
    assert F.runs_of(model) - runs == groups
    ref = unfused(model, x)
    scale = float(np.abs(ref).max())
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=2e-6 * scale)
    want = np.asarray(keras_twin(build, model)(x, training=False))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=keras_atol * max(scale, 1.0))
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    return model


# ------------------------------------------------------------------ the architectures
def seq_conv_bn_relu(k, kl):
    return k.Sequential([k.Input((9, 9, 3)), kl.Conv2D(8, 3, strides=2, padding="same", name="c"),
                         kl.BatchNormalization(name="bn"), kl.ReLU(name="r"),
                         kl.Conv2D(4, 3, use_bias=False, name="c2"), kl.BatchNormalization(name="bn2"),
                         kl.Activation("relu", name="r2")])


def resnet_block(k, kl):
    """ResNet's bottleneck: conv->BN->relu twice, conv->BN feeding the Add, and the
    shortcut conv->BN (no activation) feeding it too."""
    inp = k.Input((8, 8, 4))
    x = kl.Conv2D(6, 1, name="c1")(inp)
    x = kl.BatchNormalization(epsilon=1.001e-5, name="bn1")(x)
    x = kl.Activation("relu", name="r1")(x)
    x = kl.Conv2D(6, 3, padding="same", dilation_rate=2, name="c2")(x)
    x = kl.BatchNormalization(epsilon=1.001e-5, name="bn2")(x)
    x = kl.Activation("relu", name="r2")(x)
    x = kl.Conv2D(8, 1, use_bias=False, name="c3")(x)
    x = kl.BatchNormalization(epsilon=1.001e-5, name="bn3")(x)
    s = kl.Conv2D(8, 1, name="c0")(inp)
    s = kl.BatchNormalization(epsilon=1.001e-5, name="bn0")(s)
    x = kl.Add(name="add")([s, x])
    return k.Model(inp, kl.Activation("relu", name="out")(x))


def mobilenet_block(k, kl):
    """MobileNetV2's inverted residual: expand 1x1 -> BN -> ReLU6, depthwise -> BN ->
    ReLU6, project 1x1 -> BN (no activation), added to the input."""
    inp = k.Input((7, 7, 4))
    x = kl.Conv2D(12, 1, use_bias=False, name="expand")(inp)
    x = kl.BatchNormalization(momentum=0.999, name="expand_bn")(x)
    x = kl.ReLU(6.0, name="expand_relu")(x)
    x = kl.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = kl.BatchNormalization(momentum=0.999, name="dw_bn")(x)
    x = kl.ReLU(6.0, name="dw_relu")(x)
    x = kl.Conv2D(4, 1, use_bias=False, name="project")(x)
    x = kl.BatchNormalization(momentum=0.999, name="project_bn")(x)
    return k.Model(inp, kl.Add(name="add")([inp, x]))


def depthwise_multiplier(k, kl):
    return k.Sequential([k.Input((6, 6, 3)), kl.DepthwiseConv2D(3, depth_multiplier=2, strides=2, name="dw"),
                         kl.BatchNormalization(name="bn"), kl.ReLU(name="r"), kl.Flatten(name="f")])


def dense_bn(k, kl):
    return k.Sequential([k.Input((10,)), kl.Dense(7, name="d"), kl.BatchNormalization(name="bn"),
                         kl.Activation("tanh", name="t"), kl.Dense(5, use_bias=False, name="d2"),
                         kl.BatchNormalization(center=False, name="bn2"), kl.Activation("sigmoid", name="s")])


def conv1d_conv3d(k, kl):
    inp = k.Input((10, 3))
    x = kl.Conv1D(5, 3, padding="causal", dilation_rate=2, name="c1")(inp)
    x = kl.BatchNormalization(scale=False, name="bn1")(x)
    x = kl.Conv1D(4, 2, name="c2")(x)
    x = kl.BatchNormalization(center=False, scale=False, name="bn2")(x)
    return k.Model(inp, kl.ReLU(name="r")(x))


def conv3d(k, kl):
    return k.Sequential([k.Input((5, 5, 5, 2)), kl.Conv3D(4, 2, name="c"), kl.BatchNormalization(name="bn"),
                         kl.ReLU(name="r")])


def grouped(k, kl):
    return k.Sequential([k.Input((6, 6, 4)), kl.Conv2D(6, 3, groups=2, name="c"), kl.BatchNormalization(name="bn"),
                         kl.ReLU(name="r")])


def img(*shape):
    return rng.normal(size=shape).astype(np.float32)


def test_sequential_conv_bn_relu():
    m = check(seq_conv_bn_relu, img(3, 9, 9, 3), 2)
    assert F.plan_of(m) == [("c", "bn", "r"), ("c2", "bn2", "r2")]


def test_resnet_block():
    m = check(resnet_block, img(2, 8, 8, 4), 4)
    assert sorted(F.plan_of(m)) == [("c0", "bn0"), ("c1", "bn1", "r1"), ("c2", "bn2", "r2"), ("c3", "bn3")]


def test_mobilenet_v2_block_depthwise_relu6():
    m = check(mobilenet_block, img(2, 7, 7, 4), 3)
    assert sorted(F.plan_of(m)) == [("dw", "dw_bn", "dw_relu"), ("expand", "expand_bn", "expand_relu"),
                                    ("project", "project_bn")]


def test_depthwise_with_depth_multiplier():
    check(depthwise_multiplier, img(2, 6, 6, 3), 1)


def test_dense_bn_center_false_and_activations():
    m = check(dense_bn, img(4, 10), 2)
    assert F.plan_of(m) == [("d", "bn", "t"), ("d2", "bn2", "s")]


def test_conv1d_causal_and_no_scale_no_center():
    check(conv1d_conv3d, img(2, 10, 3), 2)


def test_conv3d_and_grouped_conv():
    check(conv3d, img(2, 5, 5, 5, 2), 1)
    check(grouped, img(2, 6, 6, 4), 1)


def test_float64_model_folds_in_float64():
    m = cc.Sequential([cc.Input((6, 6, 2), dtype="float64"), L.Conv2D(3, 3, dtype="float64"),
                       L.BatchNormalization(dtype="float64")])
    randomize(m)
    x = rng.normal(size=(2, 6, 6, 2))
    got = m.predict(x, verbose=0)
    assert got.dtype == np.float64 and F.runs_of(m) == 1
    np.testing.assert_allclose(got, unfused(m, x), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ when it must not fold
def test_not_used_in_training_or_under_a_tape():
    m = seq_conv_bn_relu(cc, L)
    randomize(m)
    x = img(2, 9, 9, 3)
    runs = F.runs_of(m)
    m(x, training=True)
    assert F.runs_of(m) == runs
    xt = ops.convert_to_tensor(x)
    with cc.GradientTape() as tape:
        tape.watch(xt)
        y = m(xt, training=False)
        loss = ops.sum(ops.square(y))
    assert F.runs_of(m) == runs
    g = np.asarray(tape.gradient(loss, xt))
    # the tape's gradient is that of the unfused graph: float64 central differences
    # of the same (inference) function along a random direction
    d = rng.normal(size=x.shape).astype(np.float32)
    f = lambda v: float(np.sum(np.square(unfused(m, v).astype(np.float64))))
    h = 1e-2
    fd = (f(x + h * d) - f(x - h * d)) / (2 * h)
    assert abs(float(np.sum(g * d)) - fd) <= 2e-2 * abs(fd) + 1e-3
    m(x)
    assert F.runs_of(m) == runs + 2  # no tape, training=None: folded


def test_not_used_when_an_intermediate_has_two_readers_or_is_an_output():
    inp = cc.Input((6, 6, 2))
    c = L.Conv2D(3, 3, name="c")(inp)
    b = L.BatchNormalization(name="bn")(c)
    r = L.ReLU(name="r")(b)
    two = cc.Model(inp, L.Add(name="a")([r, b]))  # the BN output is read twice
    assert F.plan_of(two) == [("c", "bn")]  # the conv still folds; the relu stays outside
    conv_out = cc.Model(inp, [r, c])  # the conv output is a model output
    assert F.plan_of(conv_out) == []
    bn_out = cc.Model(inp, [r, b])  # the BN output is a model output: the ReLU stays apart
    assert F.plan_of(bn_out) == [("c", "bn")]
    cc2 = L.Conv2D(3, 3, name="cc")(inp)
    shared = cc.Model(inp, L.Add()([L.BatchNormalization(name="bnx")(cc2), cc2]))  # conv output read twice
    assert F.plan_of(shared) == []
    x = img(2, 6, 6, 2)
    for m in (two, conv_out, bn_out, shared):
        randomize(m)
        got = m.predict(x, verbose=0)
        ref = unfused(m, x)
        for a, e in zip(got if isinstance(got, list) else [got], ref if isinstance(ref, list) else [ref]):
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)


def test_not_used_for_a_normalization_over_another_axis():
    # convcore computes channels_last only (data_format='channels_first' is refused by
    # the convolution layers); a BN over axis 1 of a channels-last output does not fold
    def build(k, kl):
        return k.Sequential([k.Input((5, 5, 3)), kl.Conv2D(4, 1, name="c"),
                             kl.BatchNormalization(axis=1, name="bn"), kl.ReLU(name="r")])
    m = build(cc, L)
    assert F.plan_of(m) == []
    randomize(m)
    x = img(2, 5, 5, 3)
    np.testing.assert_allclose(m.predict(x, verbose=0), np.asarray(keras_twin(build, m)(x, training=False)),
                               rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="channels_first"):
        L.Conv2D(4, 1, data_format="channels_first")


def test_leaky_relu_and_softmax_stay_layers_of_their_own():
    def build(k, kl):
        return k.Sequential([k.Input((5, 5, 2)), kl.Conv2D(4, 3, name="c"), kl.BatchNormalization(name="bn"),
                             kl.ReLU(negative_slope=0.1, name="r"), kl.Conv2D(3, 1, name="c2"),
                             kl.BatchNormalization(name="bn2"), kl.Activation("softmax", name="s")])
    m = check(build, img(2, 5, 5, 2), 2)
    assert F.plan_of(m) == [("c", "bn"), ("c2", "bn2")]


def test_not_used_for_a_nonlinear_conv_or_a_subclass():
    class Scaled(L.Conv2D):
        def convolution_op(self, inputs, kernel):
            return ops.multiply(super().convolution_op(inputs, kernel), 2.0)

    for conv in (L.Conv2D(3, 1, activation="relu"), Scaled(3, 1)):
        m = cc.Sequential([cc.Input((4, 4, 2)), conv, L.BatchNormalization()])
        assert F.plan_of(m) == []
        randomize(m)
        x = img(2, 4, 4, 2)
        np.testing.assert_allclose(m.predict(x, verbose=0), unfused(m, x), rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------ the cache follows the weights
def test_cache_follows_set_weights_assign_and_fit():
    m = resnet_block(cc, L)
    randomize(m, seed=1)
    x = img(4, 8, 8, 4)
    m.predict(x, verbose=0)
    randomize(m, seed=2)  # set_weights on every layer
    np.testing.assert_allclose(m.predict(x, verbose=0), unfused(m, x), rtol=1e-5, atol=1e-5)
    c2 = m.get_layer("c2")
    c2.kernel.assign(np.flip(c2.kernel.numpy(), (0, 1)).copy())  # a permutation of the same values
    np.testing.assert_allclose(m.predict(x, verbose=0), unfused(m, x), rtol=1e-5, atol=1e-5)
    k = m.get_layer("c1").kernel.numpy().copy()
    k[0, 0, 1, 2] += 0.25  # one value
    m.get_layer("c1").kernel.assign(k)
    m.get_layer("bn3").moving_variance.assign_add(np.full(8, 0.5, np.float32))
    np.testing.assert_allclose(m.predict(x, verbose=0), unfused(m, x), rtol=1e-5, atol=1e-5)
    m.compile(optimizer="sgd", loss="mse")
    before = m.predict(x, verbose=0)
    m.fit(x, np.zeros((4, 8, 8, 8), np.float32), epochs=1, batch_size=4, verbose=0)
    after = m.predict(x, verbose=0)
    assert not np.allclose(after, before)
    np.testing.assert_allclose(after, unfused(m, x), rtol=1e-5, atol=1e-5)


def test_frozen_normalization_during_fit_of_the_convolution():
    # transfer learning: BN frozen, only the convolutions train; the fold still follows
    m = seq_conv_bn_relu(cc, L)
    randomize(m)
    for l in m.layers:
        if isinstance(l, L.BatchNormalization):
            l.trainable = False
    x = img(4, 9, 9, 3)
    m.predict(x, verbose=0)
    m.compile(optimizer="adam", loss="mse")
    m.train_on_batch(x, np.ones((4, 3, 3, 4), np.float32))
    np.testing.assert_allclose(m.predict(x, verbose=0), unfused(m, x), rtol=1e-5, atol=1e-5)


def test_changed_layer_arguments_run_unfolded():
    m = seq_conv_bn_relu(cc, L)
    randomize(m)
    x = img(2, 9, 9, 3)
    m.predict(x, verbose=0)
    m.get_layer("bn").epsilon = 0.5  # part of the cache key
    np.testing.assert_allclose(m.predict(x, verbose=0), unfused(m, x), rtol=1e-5, atol=1e-5)
    m.get_layer("c").activation = cc.activations.get("tanh")  # no longer linear: not folded
    runs = F.runs_of(m)
    np.testing.assert_allclose(m.predict(x, verbose=0), unfused(m, x), rtol=1e-6, atol=1e-6)
    assert F.runs_of(m) == runs + 1  # only the second group


def test_saved_file_is_the_unfused_model(tmp_path):
    import h5py
    import zipfile
    m = resnet_block(cc, L)
    randomize(m)
    x = img(2, 8, 8, 4)
    got = m.predict(x, verbose=0)
    p = str(tmp_path / "m.keras")
    m.save(p)
    with zipfile.ZipFile(p) as z:
        z.extract("model.weights.h5", str(tmp_path))
    with h5py.File(str(tmp_path / "model.weights.h5")) as h:
        stored = []
        h.visititems(lambda name, obj: stored.append(obj[()]) if isinstance(obj, h5py.Dataset) else None)
    assert len(stored) == len(m.weights)  # the layers' own weights, nothing folded
    assert sum(a.size for a in stored) == m.count_params()
    loaded = cc.models.load_model(p)
    for a, b in zip(loaded.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), got, rtol=1e-6, atol=1e-6)
    assert F.plan_of(loaded) == F.plan_of(m)


def test_switch_and_bad_input():
    with pytest.raises(TypeError, match="True or False"):
        with F.enabled("no"):
            pass
    m = seq_conv_bn_relu(cc, L)
    x = img(1, 9, 9, 3)
    with F.enabled(False):
        assert not F.is_enabled()
        runs = F.runs_of(m)
        m.predict(x, verbose=0)
        assert F.runs_of(m) == runs
        with F.enabled(True):
            m.predict(x, verbose=0)
            assert F.runs_of(m) == runs + 2
    with pytest.raises(TypeError, match="expected a convcore Model, got Dense"):
        F.plan_of(L.Dense(3))

    class Sub(cc.Model):
        def call(self, x):
            return x
    assert F.plan_of(Sub()) == [] and F.runs_of(Sub()) == 0
    code = ("import numpy as np, convcore as cc; from convcore import layers as L; "
            "from convcore.models import inference_fusion as F; "
            "m = cc.Sequential([cc.Input((3,)), L.Dense(2), L.BatchNormalization()]); "
            "m.predict(np.ones((1, 3), np.float32), verbose=0); print(F.is_enabled(), F.runs_of(m))")
    env = {**os.environ, "CONVCORE_FOLD_BN": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "0"]


def test_nested_model_folds_inside_its_outer_model():
    inner = seq_conv_bn_relu(cc, L)
    inp = cc.Input((9, 9, 3))
    outer = cc.Model(inp, L.GlobalAveragePooling2D()(inner(inp)))
    randomize(outer)
    x = img(2, 9, 9, 3)
    runs = F.runs_of(inner)
    got = outer.predict(x, verbose=0)
    assert F.runs_of(inner) == runs + 2 and F.plan_of(outer) == []
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, unfused(outer, x), rtol=1e-5, atol=1e-6)


def test_a_version_counter_replaces_the_fingerprint():
    """When Variables carry ``_version`` (a counter bumped by every in-place write), the
    cache key is the counter: no values are read."""
    class V:
        def __init__(self, a):
            self._data, self._version = a, 0
    a = np.arange(5000, dtype=np.float32)
    v = V(a)
    k0 = F._key((v, None), "gpu", 1e-3, "float32")
    a[7] = -1.0  # not counted: the key trusts the counter
    assert F._key((v, None), "gpu", 1e-3, "float32") == k0
    v._version += 1
    assert F._key((v, None), "gpu", 1e-3, "float32") != k0
    # convcore's Variables count their writes: assign, assign_add and an optimizer step
    # each change the key, on every device, without reading a value
    w = cc.Variable(np.arange(5000, dtype=np.float32))
    keys = [F._key((w, None), dev, 1e-3, "float32") for dev in ("cpu", "gpu")]
    w.assign(np.roll(np.arange(5000, dtype=np.float32), 61 * 3 + 1))
    keys2 = [F._key((w, None), dev, 1e-3, "float32") for dev in ("cpu", "gpu")]
    assert all(a != b for a, b in zip(keys, keys2))
    w.assign_add(np.ones(5000, np.float32))
    assert F._key((w, None), "cpu", 1e-3, "float32") != keys2[0]
    m = cc.Sequential([L.Input((3,)), L.Dense(2)])
    m.compile(optimizer="sgd", loss="mse")
    kern = m.layers[0].kernel
    before = kern._version
    m.train_on_batch(np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32))
    assert kern._version == before + 1


# ------------------------------------------------------------------ the GPU
@needs_gpu
def test_gpu_equals_cpu():
    for build, x in ((resnet_block, img(2, 8, 8, 4)), (mobilenet_block, img(2, 7, 7, 4)), (dense_bn, img(3, 10))):
        cpu = build(cc, L)
        randomize(cpu)
        want = cpu.predict(x, verbose=0)
        gpu = build(cc, L)
        gpu.set_weights(cpu.get_weights())
        gpu.compile(loss="mse", device="gpu")
        runs = F.runs_of(gpu)
        got = gpu.predict(x, verbose=0)
        assert all(w.device == "gpu" for w in gpu.weights)
        assert F.runs_of(gpu) - runs == len(F.plan_of(gpu)) > 0
        scale = float(np.abs(want).max())
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale)
        with F.enabled(False):
            np.testing.assert_allclose(gpu.predict(x, verbose=0), want, rtol=1e-4, atol=1e-4 * scale)
        bn = gpu.get_layer({resnet_block: "bn1", mobilenet_block: "dw_bn", dense_bn: "bn"}[build])
        bn.moving_mean.assign_add(np.full(bn.moving_mean.shape, 0.5, np.float32))  # on the device
        cpu.set_weights(gpu.get_weights())
        np.testing.assert_allclose(gpu.predict(x, verbose=0), cpu.predict(x, verbose=0), rtol=1e-4,
                                   atol=1e-4 * scale)
