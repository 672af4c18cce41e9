"""Convolution layers against real Keras 3 (jax, CPU): for each case of one table the
Keras layer's weights (random, bias included) are copied into ours, and the forward
output (CPU and GPU), ``compute_output_shape`` and the config keys must match Keras's;
gradients of every input and weight match float64 central finite differences; configs
round-trip to a layer that computes the same; bad arguments fail Keras's way."""
from __future__ import annotations

import functools
import inspect
import json
import zlib

import numpy as np
import pytest

import keras  # (KERAS_BACKEND=jax is set by conftest)

import convcore
from convcore import layers, ops
from layer_reference import DEVICES, fd_gradients, needs_gpu

# (id, class name, constructor arguments (the same for Keras and convcore), input shape)
CASES = [
    ("c1_valid_odd", "Conv1D", dict(filters=3, kernel_size=3), (2, 9, 2)),
    ("c1_same_even_s2", "Conv1D", dict(filters=2, kernel_size=4, strides=2, padding="same"), (2, 9, 3)),
    ("c1_causal_d2", "Conv1D", dict(filters=2, kernel_size=3, padding="causal", dilation_rate=2), (2, 8, 2)),
    ("c1_causal_even", "Conv1D", dict(filters=2, kernel_size=2, padding="causal", activation="relu"), (1, 7, 3)),
    ("c1_causal_s2", "Conv1D", dict(filters=2, kernel_size=3, strides=2, padding="causal"), (2, 8, 2)),
    ("c1_groups", "Conv1D", dict(filters=4, kernel_size=3, groups=2, activation="tanh"), (2, 7, 4)),
    ("c2_same_s21", "Conv2D", dict(filters=3, kernel_size=(3, 2), strides=(2, 1), padding="same"), (2, 7, 6, 2)),
    ("c2_valid_d2", "Conv2D", dict(filters=2, kernel_size=2, dilation_rate=2, use_bias=False), (1, 6, 7, 3)),
    ("c2_same_even_s2", "Conv2D", dict(filters=2, kernel_size=4, strides=2, padding="same",
                                       activation="sigmoid"), (1, 7, 8, 2)),
    ("c2_groups3", "Conv2D", dict(filters=6, kernel_size=3, groups=3, padding="same", activation="relu"),
     (2, 5, 5, 6)),
    ("c2_elu", "Conv2D", dict(filters=2, kernel_size=3, activation="elu"), (1, 5, 6, 2)),
    ("c3_valid", "Conv3D", dict(filters=2, kernel_size=2), (1, 4, 5, 3, 2)),
    ("c3_same_d2", "Conv3D", dict(filters=2, kernel_size=2, padding="same", dilation_rate=(2, 1, 2)),
     (1, 4, 3, 5, 1)),
    ("c3_same_s2_groups", "Conv3D", dict(filters=4, kernel_size=3, strides=2, padding="same", groups=2),
     (1, 5, 4, 5, 2)),
    ("t1_same_s2", "Conv1DTranspose", dict(filters=2, kernel_size=3, strides=2, padding="same"), (2, 5, 3)),
    ("t1_valid_even_s2", "Conv1DTranspose", dict(filters=3, kernel_size=4, strides=2), (1, 5, 2)),
    ("t1_same_even_op", "Conv1DTranspose", dict(filters=2, kernel_size=4, strides=3, padding="same",
                                                output_padding=1), (1, 4, 2)),
    ("t1_valid_d2", "Conv1DTranspose", dict(filters=2, kernel_size=3, dilation_rate=2, activation="relu"),
     (1, 5, 2)),
    ("t2_same_s2_op1", "Conv2DTranspose", dict(filters=2, kernel_size=3, strides=2, padding="same",
                                               output_padding=1), (1, 4, 3, 2)),
    ("t2_same_even_op0", "Conv2DTranspose", dict(filters=3, kernel_size=4, strides=2, padding="same",
                                                 output_padding=0), (2, 3, 4, 2)),
    ("t2_same_even_s1", "Conv2DTranspose", dict(filters=2, kernel_size=2, padding="same", output_padding=0,
                                                activation="tanh"), (1, 4, 4, 3)),
    ("t2_valid_s21", "Conv2DTranspose", dict(filters=2, kernel_size=(2, 3), strides=(2, 1), use_bias=False),
     (1, 3, 4, 2)),
    ("t2_valid_s3_op2", "Conv2DTranspose", dict(filters=2, kernel_size=2, strides=3, output_padding=2),
     (1, 3, 3, 1)),
    ("t3_valid_s2", "Conv3DTranspose", dict(filters=2, kernel_size=2, strides=2), (1, 2, 3, 2, 2)),
    ("t3_same_s2_op1", "Conv3DTranspose", dict(filters=2, kernel_size=3, strides=2, padding="same",
                                               output_padding=1), (1, 2, 2, 3, 2)),
    ("d1_m2", "DepthwiseConv1D", dict(kernel_size=3, depth_multiplier=2), (2, 7, 3)),
    ("d1_same_s2", "DepthwiseConv1D", dict(kernel_size=4, strides=2, padding="same", activation="relu"),
     (1, 9, 2)),
    ("d2_same_s2_m2", "DepthwiseConv2D", dict(kernel_size=3, strides=2, padding="same", depth_multiplier=2),
     (2, 5, 6, 2)),
    ("d2_valid_d2", "DepthwiseConv2D", dict(kernel_size=2, dilation_rate=2, activation="sigmoid"),
     (1, 6, 5, 3)),
    ("d2_nobias", "DepthwiseConv2D", dict(kernel_size=(3, 2), use_bias=False), (1, 5, 4, 2)),
    ("s1_m2", "SeparableConv1D", dict(filters=3, kernel_size=3, depth_multiplier=2), (2, 8, 2)),
    ("s1_same_s2", "SeparableConv1D", dict(filters=2, kernel_size=2, strides=2, padding="same",
                                           activation="tanh"), (1, 7, 3)),
    ("s2_same_s2_relu", "SeparableConv2D", dict(filters=4, kernel_size=3, strides=2, padding="same",
                                                depth_multiplier=2, activation="relu"), (2, 6, 5, 2)),
    ("s2_valid_d2", "SeparableConv2D", dict(filters=2, kernel_size=2, dilation_rate=2, use_bias=False),
     (1, 6, 6, 3)),
    ("s2_softmax", "SeparableConv2D", dict(filters=3, kernel_size=3, activation="softmax"), (1, 5, 5, 2)),
]
IDS = [c[0] for c in CASES]
BY_ID = {c[0]: c for c in CASES}

# float32 against Keras: the outputs are sums of up to ~60 products of values of order 1,
# so float32 rounding (different summation orders) leaves absolute differences of a few
# 1e-7 to 1e-6 on values near 0, where rtol alone would ask for exactness.
RTOL, ATOL = 1e-5, 5e-6


@functools.lru_cache(maxsize=None)
def keras_reference(case_id):
    """(weights, input, Keras's output, Keras's config, Keras's output shape) of a case,
    with random weights (bias included) so every weight matters."""
    _, cls, kw, shape = BY_ID[case_id]
    rng = np.random.default_rng(zlib.crc32(case_id.encode()))
    kcls = getattr(keras.layers, cls)
    # Keras's random initializers compile a jax program per shape (seconds each); zeros
    # build fast, and the weights are overwritten anyway.
    zeros = {p: "zeros" for p in inspect.signature(kcls.__init__).parameters if p.endswith("_initializer")}
    kl = kcls(**kw, **zeros)
    kl.build(shape)
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in kl.weights]
    kl.set_weights(weights)
    x = rng.standard_normal(shape).astype(np.float32)
    y = np.asarray(kl(x))
    return weights, x, y, kl.get_config(), tuple(kl.compute_output_shape((None,) + shape[1:]))


def ours(case_id, dtype="float32", **extra):
    _, cls, kw, shape = BY_ID[case_id]
    layer = getattr(layers, cls)(**kw, **extra, dtype=dtype)
    layer.build(shape[1:])
    return layer


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case_id", IDS)
def test_forward_matches_keras(case_id, device):
    weights, x, want, _, _ = keras_reference(case_id)
    layer = ours(case_id)
    layer.set_weights(weights)
    layer._move_to(device)  # what compile(device=...) does to a model's layers; a lone layer has no compile
    y = layer(ops.convert_to_tensor(x, device=device))
    assert y.device == device
    assert y.shape == want.shape
    np.testing.assert_allclose(np.asarray(y), want, rtol=RTOL, atol=ATOL)


@needs_gpu
@pytest.mark.parametrize("case_id", IDS)
def test_gpu_equals_cpu_values_and_gradients(case_id):
    weights, x, _, _, _ = keras_reference(case_id)
    got = {}
    for dev in ("cpu", "gpu"):
        layer = ours(case_id)
        layer.set_weights(weights)
        layer._move_to(dev)
        xt = ops.convert_to_tensor(x, device=dev)
        with convcore.GradientTape() as tape:
            tape.watch(xt)
            y = layer(xt)
            loss = ops.sum(ops.multiply(y, y))
        grads = tape.gradient(loss, [xt] + layer.trainable_weights)
        got[dev] = [np.asarray(y)] + [np.asarray(g) for g in grads]
    for c, g in zip(got["cpu"], got["gpu"]):
        np.testing.assert_allclose(g, c, rtol=1e-4, atol=1e-4)  # float32, two summation orders, squared loss


# tiny shapes: every element of the input and of each weight is perturbed
GRAD_CASES = [
    ("Conv1D", dict(filters=2, kernel_size=3, padding="causal", dilation_rate=2, activation="tanh"), (1, 5, 2)),
    ("Conv1D", dict(filters=2, kernel_size=2, groups=2, strides=2, padding="same"), (1, 5, 2)),
    ("Conv2D", dict(filters=4, kernel_size=(2, 3), groups=2, padding="same", activation="sigmoid"), (1, 3, 4, 2)),
    ("Conv3D", dict(filters=2, kernel_size=2, strides=(1, 2, 1)), (1, 3, 3, 2, 1)),
    ("Conv1DTranspose", dict(filters=2, kernel_size=4, strides=2, padding="same", output_padding=0), (1, 3, 2)),
    ("Conv2DTranspose", dict(filters=2, kernel_size=3, strides=2, padding="same", output_padding=1,
                             activation="tanh"), (1, 2, 3, 2)),
    ("Conv2DTranspose", dict(filters=1, kernel_size=2, strides=(2, 1)), (1, 2, 2, 2)),
    ("Conv3DTranspose", dict(filters=1, kernel_size=2, strides=2, padding="same"), (1, 2, 1, 2, 1)),
    ("DepthwiseConv1D", dict(kernel_size=3, depth_multiplier=2, padding="same", activation="tanh"), (1, 4, 2)),
    ("DepthwiseConv2D", dict(kernel_size=2, strides=2, depth_multiplier=2), (1, 4, 3, 2)),
    ("SeparableConv1D", dict(filters=2, kernel_size=2, depth_multiplier=2, activation="softmax"), (1, 4, 2)),
    ("SeparableConv2D", dict(filters=2, kernel_size=2, padding="same", strides=2), (1, 3, 3, 2)),
]


@pytest.mark.parametrize("cls,kw,shape", GRAD_CASES, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(GRAD_CASES)])
def test_gradients_match_float64_finite_differences(cls, kw, shape):
    rng = np.random.default_rng(7)
    layer = getattr(layers, cls)(**kw, dtype="float64")
    layer.build(shape[1:])
    weights = [rng.standard_normal(w.shape) for w in layer.get_weights()]
    layer.set_weights(weights)
    x = rng.standard_normal(shape)
    y = np.asarray(layer(x))
    r = rng.standard_normal(y.shape)
    xt = ops.convert_to_tensor(x)
    with convcore.GradientTape() as tape:
        tape.watch(xt)
        loss = ops.sum(ops.multiply(layer(xt), r))
    got = tape.gradient(loss, [xt] + layer.trainable_weights)

    def f(arrays):
        layer.set_weights(arrays[1:])
        return np.asarray(layer(arrays[0]))

    want = fd_gradients(f, [x] + weights, r)
    assert len(got) == len(want) == 1 + len(weights)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("case_id", IDS)
def test_output_shape_and_config_keys_match_keras(case_id):
    _, _, want, kcfg, kshape = keras_reference(case_id)
    shape = BY_ID[case_id][3]
    layer = ours(case_id)
    assert (None,) + layer.compute_output_shape(shape[1:]) == kshape
    assert kshape[1:] == want.shape[1:]
    assert set(layer.get_config()) == set(kcfg)


@pytest.mark.parametrize("case_id", IDS)
def test_config_round_trip_computes_the_same(case_id):
    weights, x, _, _, _ = keras_reference(case_id)
    layer = ours(case_id)
    layer.set_weights(weights)
    cfg = layer.get_config()
    assert json.loads(json.dumps(cfg)) == cfg
    again = type(layer).from_config(cfg)
    assert again.get_config() == cfg
    again.build(x.shape[1:])
    again.set_weights(weights)
    np.testing.assert_array_equal(np.asarray(again(x)), np.asarray(layer(x)))
    d = layers.serialize(layer)
    assert layers.deserialize(d).get_config() == cfg


@pytest.mark.parametrize("case_id", IDS)
def test_a_keras_config_loads_and_computes_what_keras_computes(case_id):
    """Keras's own ``get_config()`` (DTypePolicy and initializer dicts) builds our layer."""
    weights, x, want, kcfg, _ = keras_reference(case_id)
    layer = getattr(layers, BY_ID[case_id][1]).from_config(kcfg)
    layer.build(x.shape[1:])
    layer.set_weights(weights)
    np.testing.assert_allclose(np.asarray(layer(x)), want, rtol=RTOL, atol=ATOL)


def test_none_sizes_in_output_shapes_follow_keras():
    for cls, kw, shape in [("Conv1D", dict(filters=2, kernel_size=3, padding="causal"), (None, 3)),
                           ("Conv1DTranspose", dict(filters=2, kernel_size=3, strides=2), (None, 3)),
                           ("SeparableConv2D", dict(filters=2, kernel_size=3), (None, 7, 3)),
                           ("DepthwiseConv2D", dict(kernel_size=3, depth_multiplier=3), (7, None, 2))]:
        want = getattr(keras.layers, cls)(**kw).compute_output_shape((None,) + shape)
        assert (None,) + getattr(layers, cls)(**kw).compute_output_shape(shape) == tuple(want), cls


def test_aliases_are_the_keras_classes():
    for alias, cls in [("Convolution1D", "Conv1D"), ("Convolution2D", "Conv2D"), ("Convolution3D", "Conv3D"),
                       ("Convolution1DTranspose", "Conv1DTranspose"), ("Convolution2DTranspose", "Conv2DTranspose"),
                       ("Convolution3DTranspose", "Conv3DTranspose"), ("SeparableConvolution1D", "SeparableConv1D"),
                       ("SeparableConvolution2D", "SeparableConv2D")]:
        assert getattr(layers, alias) is getattr(layers, cls)
        assert getattr(keras.layers, alias) is getattr(keras.layers, cls)  # Keras's own aliases, for the table


def test_depthwise_kernel_has_its_tf_keras_2_name_too():
    d = layers.DepthwiseConv2D(3, depth_multiplier=2)
    d.build((5, 5, 3))
    assert d.depthwise_kernel is d.kernel and d.kernel.shape == (3, 3, 3, 2)
    assert [w.name for w in d.weights] == ["kernel", "bias"]  # Keras 3's weight names


def test_keras_positional_argument_order():
    # Keras 3: Conv2D(filters, kernel_size, strides, padding, data_format, dilation_rate, groups, activation)
    c = layers.Conv2D(4, 3, 1, "same", "channels_last", 2, 2, "relu")
    assert (c.dilation_rate, c.groups, c.activation) == ((2, 2), 2, "relu")
    t = layers.Conv2DTranspose(4, 3, 2, "same", 1, None, 1, "tanh")
    assert (t.output_padding, t.activation) == ((1, 1), "tanh")
    t3 = layers.Conv3DTranspose(4, 3, 2, "same", None, 1)  # data_format before output_padding here
    assert t3.output_padding == (1, 1, 1)
    d = layers.DepthwiseConv2D(3, 1, "valid", 3)
    assert d.depth_multiplier == 3
    s = layers.SeparableConv1D(2, 3, 1, "valid", None, 1, 4)
    assert s.depth_multiplier == 4


def test_convolution_op_override_as_keras_io_weight_standardization():
    """keras.io's WSConv2D overrides ``convolution_op``; the same subclass body gives
    Keras's output here (bias and activation added after it, as Keras's call does)."""
    def standardize(mod, kernel):
        mean, var = mod.ops.mean(kernel, axis=(0, 1, 2), keepdims=True), mod.ops.var(kernel, axis=(0, 1, 2),
                                                                                      keepdims=True)
        return mod.ops.divide(mod.ops.subtract(kernel, mean), mod.ops.sqrt(mod.ops.add(var, 1e-5)))

    class KWS(keras.layers.Conv2D):
        def convolution_op(self, inputs, kernel):
            return super().convolution_op(inputs, standardize(keras, kernel))

    class WS(layers.Conv2D):
        def convolution_op(self, inputs, kernel):
            return super().convolution_op(inputs, standardize(convcore, kernel))

    rng = np.random.default_rng(17)
    kw = dict(filters=3, kernel_size=3, padding="same", activation="relu")
    kl, ol = KWS(**kw), WS(**kw)
    kl.build((1, 6, 5, 2))
    ol.build((6, 5, 2))
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in kl.weights]
    kl.set_weights(weights)
    ol.set_weights(weights)
    x = rng.standard_normal((1, 6, 5, 2)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(ol(x)), np.asarray(kl(x)), rtol=RTOL, atol=ATOL)


BAD = [
    (lambda: layers.Conv2D(3, 3, groups=2), ValueError,
     r"Conv2D: the number of filters must be evenly divisible by the number of groups, received groups=2, filters=3"),
    (lambda: layers.Conv2D(4, 3, groups=2).build((5, 5, 3)), ValueError,
     r"Conv2D: the number of input channels must be evenly divisible by the number of groups, received groups=2, "
     r"but the input has 3 channels"),
    (lambda: layers.Conv2D(2, 3, padding="causal"), ValueError,
     r"Conv2D: padding must be one of 'valid', 'same', got 'causal'"),
    (lambda: layers.Conv1DTranspose(2, 3, padding="causal"), ValueError, r"Conv1DTranspose: padding must be one of"),
    (lambda: layers.SeparableConv1D(2, 3, padding="full"), ValueError, r"SeparableConv1D: padding must be one of"),
    (lambda: layers.Conv2DTranspose(2, 3, strides=2, output_padding=2), ValueError,
     r"Conv2DTranspose: output_padding must be smaller than strides, received output_padding=\(2, 2\), "
     r"strides=\(2, 2\)"),
    (lambda: layers.Conv2DTranspose(2, 3, output_padding=(1, -1)), ValueError,
     r"Conv2DTranspose: output_padding must be None, a non-negative int or a tuple of 2"),
    (lambda: layers.Conv2D(2, 3, data_format="channels_first"), ValueError,
     r"Conv2D: data_format='channels_first' is not supported; convcore layers are channels_last only"),
    (lambda: layers.DepthwiseConv2D(3, data_format="nhwc"), ValueError,
     r"DepthwiseConv2D: data_format must be 'channels_last' \(or None\), received data_format='nhwc'"),
    (lambda: layers.Conv2D(0, 3), ValueError, r"Conv2D: filters must be a positive integer, received filters=0"),
    (lambda: layers.Conv2D(2, (3, 3, 3)), ValueError, r"Conv2D: kernel_size must be a positive int or a tuple of 2"),
    (lambda: layers.Conv1D(2, None), ValueError, r"Conv1D: kernel_size must be a positive int or a tuple of 1 "
                                                 r"positive ints, got None"),
    (lambda: layers.Conv2D(2, 3, strides=1.5), ValueError, r"Conv2D: strides must be a positive int"),
    (lambda: layers.DepthwiseConv1D(3, depth_multiplier=0), ValueError,
     r"DepthwiseConv1D: depth_multiplier must be a positive integer, received depth_multiplier=0"),
    (lambda: layers.Conv2D(2, 3, groups=True), ValueError, r"Conv2D: groups must be a positive integer"),
    (lambda: layers.Conv2D(2, 3).compute_output_shape((2, 5, 1)), ValueError,
     r"Conv2D: the \(dilated\) kernel size 3 is larger than the input's spatial size 2; received "
     r"input_shape=\(2, 5, 1\)"),
    (lambda: layers.Conv2D(2, 3, activation="nope"), ValueError, r"nope"),
]


@pytest.mark.parametrize("make,exc,msg", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_arguments_fail_keras_style(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make()


@pytest.mark.parametrize("cls,kw", [("Conv2D", dict(filters=2, kernel_size=3)),
                                    ("Conv2D", dict(filters=2, kernel_size=3, groups=2)),
                                    ("DepthwiseConv2D", dict(kernel_size=3)),
                                    ("SeparableConv2D", dict(filters=2, kernel_size=3)),
                                    ("Conv2DTranspose", dict(filters=2, kernel_size=3))])
def test_a_built_layer_refuses_another_channel_count(cls, kw):
    """Keras's InputSpec: a kernel built for 4 channels never reads 8 (as a grouped
    convolution would) nor 2."""
    layer = getattr(layers, cls)(**kw, name="c")
    layer(np.zeros((1, 5, 5, 4), np.float32))
    for c in (8, 2):
        with pytest.raises(ValueError, match=rf"Layer 'c' \({cls}\) expects axis -1 of its inputs to have value 4 "
                                             rf"\(it was built for 4 channels\), received input shape "
                                             rf"\(None, 5, 5, {c}\)"):
            layer(np.zeros((1, 5, 5, c), np.float32))
    with pytest.raises(ValueError, match="expects axis -1"):
        layer(layers.Input((5, 5, 8)))


def test_grouped_conv_op_refuses_channels_that_do_not_divide():
    with pytest.raises(ValueError, match=r"conv: the kernel's input channels \(2.*must equal the input's channels "
                                         r"\(3\) or divide them"):
        ops.conv(np.zeros((1, 4, 4, 3)), np.zeros((3, 3, 2, 2)))
    with pytest.raises(ValueError, match=r"needs a number of filters divisible by 2, got 3"):
        ops.conv(np.zeros((1, 4, 4, 4)), np.zeros((3, 3, 2, 3)))


def test_conv_layers_train_in_a_model_on_every_device():
    """A small model of the new layers fits (loss decreases) on each device, and the
    GPU's weights after two steps equal the CPU's."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 8, 8, 2)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    final = {}
    for dev in DEVICES:
        m = convcore.Sequential([
            layers.Input((8, 8, 2)),
            layers.SeparableConv2D(4, 3, padding="same", activation="relu", name="sep"),
            layers.Conv2D(4, 3, groups=2, name="grp"),
            layers.Conv2DTranspose(3, 2, strides=2, name="up"),
            layers.DepthwiseConv2D(3, strides=2, name="dw"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(3, name="out"),
        ])
        m.set_weights(_fixed_weights(m))
        m.compile(optimizer=convcore.optimizers.SGD(0.05),
                  loss=convcore.losses.SparseCategoricalCrossentropy(from_logits=True), device=dev)
        h = m.fit(x, y, batch_size=8, epochs=2, verbose=0)
        assert h.history["loss"][1] < h.history["loss"][0]
        final[dev] = m.get_weights()
    if "gpu" in final:
        for a, b in zip(final["cpu"], final["gpu"]):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


@needs_gpu
def test_depthwise_and_grouped_steps_run_without_host_fallback():
    """A depthwise convolution is one native kernel on the GPU; a grouped one (groups <
    channels, 8 groups of 2 channels here) is one recorded op whose groups are joined by
    the GPU's concatenation kernel: the training step has no host fallback."""
    from convcore import device
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 8)).astype(np.float32)
    m = convcore.Sequential([layers.Input((6, 6, 8)), layers.Conv2D(8, 1, name="c"),
                             layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw"),
                             layers.Conv2D(16, 3, groups=8, name="g"), layers.Flatten(), layers.Dense(2)])
    m.compile(optimizer="sgd", loss="mse", device="gpu")
    y = np.zeros((2, 2), np.float32)
    m.train_on_batch(x, y)
    before = device.host_fallbacks()
    m.train_on_batch(x, y)
    assert device.host_fallbacks() - before == 0


def _fixed_weights(model):
    r = np.random.default_rng(11)
    return [(r.standard_normal(w.shape) * 0.3).astype(np.float32) for w in model.get_weights()]


def config_instances():
    """One instance of each convolution class for the suite's config-coverage test."""
    return [layers.Conv1DTranspose(2, 3, strides=2, padding="same", name="cfg_c1t"),
            layers.Conv2DTranspose(2, (3, 2), strides=2, output_padding=1, activation="relu", name="cfg_c2t"),
            layers.Conv3DTranspose(1, 2, name="cfg_c3t"),
            layers.DepthwiseConv1D(3, depth_multiplier=2, name="cfg_dw1"),
            layers.DepthwiseConv2D((3, 2), padding="same", use_bias=False, name="cfg_dw2"),
            layers.SeparableConv1D(3, 2, depth_multiplier=2, name="cfg_sep1"),
            layers.SeparableConv2D(2, 3, strides=2, padding="same", activation="tanh", name="cfg_sep2")]


# (class name, constructor arguments with regularizers, input shape); the same for Keras
PENALTY_CASES = [
    ("Conv2D", dict(filters=2, kernel_size=3, kernel_regularizer="l2", bias_regularizer="l1"), (2, 5, 5, 2)),
    ("Conv1D", dict(filters=4, kernel_size=2, groups=2, padding="causal", activity_regularizer="l2"), (2, 5, 2)),
    ("Conv2DTranspose", dict(filters=2, kernel_size=3, strides=2, kernel_regularizer="l1",
                             activity_regularizer="l1"), (2, 3, 3, 2)),
    ("DepthwiseConv2D", dict(kernel_size=2, depth_multiplier=2, depthwise_regularizer="l2",
                             bias_regularizer="l2"), (1, 4, 4, 2)),
    ("SeparableConv1D", dict(filters=3, kernel_size=2, depthwise_regularizer="l1", pointwise_regularizer="l2",
                             bias_regularizer="l1"), (2, 5, 2)),
]


@pytest.mark.parametrize("cls,kw,shape", PENALTY_CASES, ids=[c[0] for c in PENALTY_CASES])
def test_regularizer_penalties_equal_keras_layer_losses(cls, kw, shape):
    rng = np.random.default_rng(13)
    kcls = getattr(keras.layers, cls)
    kl = kcls(**kw, **{p: "zeros" for p in inspect.signature(kcls.__init__).parameters if p.endswith("_initializer")})
    kl.build(shape)
    weights = [rng.standard_normal(w.shape).astype(np.float32) for w in kl.weights]
    kl.set_weights(weights)
    x = rng.standard_normal(shape).astype(np.float32)
    kl(x)
    want = sorted(float(v) for v in kl.losses)
    layer = getattr(layers, cls)(**kw)
    layer.build(shape[1:])
    layer.set_weights(weights)
    layer(x)
    got = sorted(float(np.asarray(v)) for v in layer.losses)
    assert len(got) == len(want) > 0
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # and the penalties survive a config round trip
    again = type(layer).from_config(layer.get_config())
    again.build(shape[1:])
    again.set_weights(weights)
    again(x)
    np.testing.assert_allclose(sorted(float(np.asarray(v)) for v in again.losses), got, rtol=1e-6)


def test_constraints_reach_the_weights_and_survive_the_config():
    from convcore import constraints
    layer = layers.SeparableConv2D(2, 3, depthwise_constraint="non_neg", pointwise_constraint=constraints.MaxNorm(2.0),
                                   bias_constraint="unit_norm")
    layer.build((5, 5, 2))
    kinds = [type(w.constraint).__name__ for w in layer.weights]
    assert kinds == ["NonNeg", "MaxNorm", "UnitNorm"]
    again = type(layer).from_config(layer.get_config())
    again.build((5, 5, 2))
    assert [type(w.constraint).__name__ for w in again.weights] == kinds
    assert again.weights[1].constraint.max_value == 2.0
    conv = layers.Conv3DTranspose(2, 2, kernel_constraint="max_norm", bias_constraint="non_neg")
    conv.build((2, 2, 2, 1))
    assert [type(w.constraint).__name__ for w in conv.weights] == ["MaxNorm", "NonNeg"]
