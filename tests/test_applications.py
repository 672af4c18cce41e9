"""convcore.applications against real Keras 3 (VGG16, VGG19, ResNet50, MobileNetV2) and
real torchvision (ResNet18 / ResNet34, through a committed reference made by
tests/fixtures/make_resnet_torch_reference.py).

Keras's networks get seeded random weights (Keras's own initial values would leave the
batch-norm statistics at 0 / 1), copied into convcore's network either layer by layer
with ``set_weights`` or through a real legacy weight file written by Keras's own
``save_weights_to_hdf5_group`` under Keras's cache file name in a temporary
``KERAS_HOME``, then loaded with ``weights='imagenet'``: the path the course takes with
the real ImageNet files. torchvision's state dict is rebuilt from the fixture script's
seeded generator and written as torch's ``.pth`` (tests/torch_pickle.py) under torch
hub's file name in a temporary ``TORCH_HOME``. Nothing is downloaded: every test runs
with ``urlopen`` replaced by a failure.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import urllib.error
import urllib.request
from unittest import mock

import numpy as np
import pytest

import convcore as cc
from convcore import applications as A
from convcore import layers as L
from convcore.applications import imagenet_utils
from convcore.models import Model
from convcore.utils.file_utils import DownloadError

HERE = os.path.dirname(os.path.abspath(__file__))


def _load_fixture_module():
    spec = importlib.util.spec_from_file_location(
        "make_resnet_torch_reference", os.path.join(HERE, "fixtures", "make_resnet_torch_reference.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


R = _load_fixture_module()
REF = np.load(os.path.join(HERE, "fixtures", "resnet_torch_reference.npz"))


# ---------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any download attempt fails (and is recorded), as on an offline machine."""
    calls = []

    def refuse(url, *a, **k):
        calls.append(getattr(url, "full_url", url))
        raise urllib.error.URLError("network disabled in the tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return calls


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras_home"
    (home / "models").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    home = tmp_path / "torch_home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@contextlib.contextmanager
def fast_keras_init():
    """Keras's random initializers return zeros while a network is built: jax compiles
    one sampler per weight shape (tens of seconds for a network), and every weight is
    replaced by :func:`randomize` anyway."""
    from keras.src.initializers import random_initializers as ri

    def zeros(shape, *args, dtype=None, **kwargs):
        return np.zeros(shape, dtype=dtype or "float32")

    with contextlib.ExitStack() as stack:
        for n in ("uniform", "normal", "truncated_normal"):
            stack.enter_context(mock.patch.object(ri.random, n, zeros))
        yield


def keras_app(name, **kw):
    import keras
    with fast_keras_init():
        return getattr(keras.applications, name)(weights=None, **kw)


def randomize(kmodel, seed=0):
    """Seeded weights for every Keras layer: kernels with variance ~1/fan_in,
    batch-norm statistics and affine parameters away from 0 / 1."""
    rng = np.random.default_rng(seed)

    def u(shape, lo, hi):
        n = int(np.prod(shape))
        # arrays over 2**20 values (VGG's dense layers) repeat a block of 2**20 + 7
        # random values: as good a test, a fraction of the time
        r = rng.random(min(n, (1 << 20) + 7), dtype=np.float32)
        r = np.resize(r, n).reshape(shape) if r.size < n else r.reshape(shape)
        return (lo + (hi - lo) * r).astype(np.float32)

    for layer in kmodel.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        if type(layer).__name__ == "BatchNormalization":
            g, b, m, v = (w.shape for w in ws)
            new = [u(g, 0.6, 1.4), u(b, -0.2, 0.2), u(m, -0.2, 0.2), u(v, 0.5, 1.5)]
        else:
            new = []
            for w in ws:
                if w.ndim > 1:
                    fan_in = int(np.prod(w.shape[:2])) if type(layer).__name__ == "DepthwiseConv2D" else \
                        int(np.prod(w.shape[:-1]))
                    a = np.float32(np.sqrt(3.0 / fan_in))
                    new.append(u(w.shape, -a, a))
                else:
                    new.append(u(w.shape, -0.1, 0.1))
        layer.set_weights(new)


def copy_weights(kmodel, cmodel):
    """Keras's weights into convcore's network, layer by layer by name."""
    n = 0
    for layer in kmodel.layers:
        if layer.weights:
            cmodel.get_layer(layer.name).set_weights(layer.get_weights())
            n += 1
    assert n == sum(1 for l in cmodel.layers if l.weights)


def write_keras_h5(kmodel, path):
    """Keras's own legacy weight-file writer (the layout of Keras's ImageNet files)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, kmodel)


def image(shape, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.random(shape, dtype=np.float32) * 2 - 1).astype(np.float32)


def close(got, want, rtol=1e-4):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-5 * float(np.abs(want).max()))


def keras_outputs(kmodel, x, *names):
    """The model's output and the outputs of the layers ``names`` (one compiled graph)."""
    import keras
    m = keras.Model(kmodel.input, [kmodel.output] + [kmodel.get_layer(n).output for n in names])
    return [np.asarray(a) for a in m.predict(x, verbose=0)]


def cc_outputs(cmodel, x, *names):
    m = Model(cmodel.input, [cmodel.output] + [cmodel.get_layer(n).output for n in names])
    return [np.asarray(a) for a in m.predict(x, verbose=0)]


def cc_sub(cmodel, name):
    return Model(cmodel.input, cmodel.get_layer(name).output)


def close_all(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        close(g, w)


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


# ---------------------------------------------------------------------- Keras's networks
def test_vgg16_imagenet_file_with_the_top_equals_keras(keras_home, no_network):
    k = keras_app("VGG16")  # 224 x 224 with the 3 dense layers: 138,357,544 parameters
    randomize(k, seed=16)
    path = keras_home / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
    write_keras_h5(k, path)
    c = A.VGG16()  # weights='imagenet': the file above, used as it is (its md5 is not Keras's)
    assert no_network == []
    assert c.name == "vgg16" and c.count_params() == k.count_params() == 138_357_544
    assert [l.name for l in c.layers][1:] == [l.name for l in k.layers][1:]
    x = A.vgg16.preprocess_input(np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32))
    want = keras_outputs(k, x, "block3_pool", "fc2")
    got = cc_outputs(c, x, "block3_pool", "fc2")
    close_all(got, want)
    np.testing.assert_allclose(got[0].sum(axis=1), 1.0, rtol=1e-5)


def test_vgg16_input_tensor_and_set_weights_equal_keras():
    import keras
    kin = keras.Input((40, 40, 3))
    k = keras_app("VGG16", include_top=False, input_tensor=keras.layers.Rescaling(1 / 127.5, offset=-1.0)(kin),
                  pooling="avg")
    randomize(k, seed=1)
    cin = L.Input((40, 40, 3))
    t = L.Rescaling(1 / 127.5, offset=-1.0)(cin)
    c = A.VGG16(weights=None, include_top=False, input_tensor=t, pooling="avg")
    assert c.inputs[0] is cin and isinstance(c.layers[1], L.Rescaling)
    copy_weights(k, c)
    x = np.random.default_rng(2).uniform(0, 255, (2, 40, 40, 3)).astype(np.float32)
    assert c.output_shape == (None, 512)
    close(c.predict(x, verbose=0), np.asarray(k.predict(x, verbose=0)))


def test_vgg19_notop_max_pooling_set_weights_and_imagenet_file_equal_keras(keras_home, tmp_path):
    k = keras_app("VGG19", include_top=False, input_shape=(32, 48, 3), pooling="max")
    randomize(k, seed=19)
    x = image((2, 32, 48, 3))
    want = keras_outputs(k, x, "block4_conv4")
    c = A.VGG19(weights=None, include_top=False, input_shape=(32, 48, 3), pooling="max")
    assert c.count_params() == k.count_params()
    copy_weights(k, c)
    close_all(cc_outputs(c, x, "block4_conv4"), want)
    write_keras_h5(k, keras_home / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
    c2 = A.VGG19(include_top=False, input_shape=(32, 48, 3), pooling="max")
    close_all(cc_outputs(c2, x, "block4_conv4"), want)
    # weights=<path> of a Keras 3 weights file written by real Keras
    k.save_weights(str(tmp_path / "vgg19.weights.h5"))
    c3 = A.VGG19(weights=str(tmp_path / "vgg19.weights.h5"), include_top=False, input_shape=(32, 48, 3),
                 pooling="max")
    close_all(cc_outputs(c3, x, "block4_conv4"), want)


def test_vgg19_with_the_top_has_keras_count():
    k = keras_app("VGG19", input_shape=(32, 32, 3), classes=7)
    c = A.VGG19(weights=None, input_shape=(32, 32, 3), classes=7)
    assert c.count_params() == k.count_params() and c.output_shape == (None, 7)
    assert [l.name for l in c.layers][1:] == [l.name for l in k.layers][1:]
    # at 224 x 224 (fc1 takes 7 x 7 x 512 features instead of 1 x 1 x 512) with 1000
    # classes instead of 7: Keras's 143,667,240
    assert c.count_params() + (49 - 1) * 512 * 4096 + (1000 - 7) * (4096 + 1) == 143_667_240


def test_resnet50_set_weights_and_keras_file_equal_keras(tmp_path):
    kw = dict(include_top=True, input_shape=(64, 64, 3), classes=10, classifier_activation=None)
    k = keras_app("ResNet50", **kw)
    randomize(k, seed=50)
    x = image((2, 64, 64, 3))
    want = keras_outputs(k, x, "conv3_block4_out")
    c = A.ResNet50(weights=None, **kw)
    assert c.count_params() == k.count_params() and c.output_shape == (None, 10)
    copy_weights(k, c)
    close_all(cc_outputs(c, x, "conv3_block4_out"), want)
    # Keras's weight file lists the layers in Keras's order, in which a stage's shortcut
    # convolution comes after the main branch's second one; convcore's layer order
    # differs there, and the networks match Keras's files by name
    path = tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
    write_keras_h5(k, path)
    c2 = A.resnet50.ResNet50(weights=str(path), **kw)
    close_all(cc_outputs(c2, x, "conv3_block4_out"), want)


def test_resnet50_full_has_keras_count_and_names():
    c = A.ResNet50(weights=None)
    assert c.count_params() == 25_636_712 and c.name == "resnet50"
    assert c.get_layer("avg_pool") is not None and c.get_layer("conv5_block3_out") is not None
    assert A.ResNet50(weights=None, include_top=False, pooling="max").layers[-1].name == "max_pool"


def test_mobilenet_v2_imagenet_file_at_96_equals_keras(keras_home):
    k = keras_app("MobileNetV2", input_shape=(96, 96, 3))
    randomize(k, seed=2)
    write_keras_h5(k, keras_home / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96.h5")
    c = A.MobileNetV2(input_shape=(96, 96, 3))  # include_top with ImageNet weights at Keras's 96 size
    assert c.name == k.name == "mobilenetv2_1.00_96"
    assert c.count_params() == k.count_params()
    x = A.mobilenet_v2.preprocess_input(np.random.default_rng(4).uniform(0, 255, (2, 96, 96, 3)).astype(np.float32))
    close_all(cc_outputs(c, x, "block_13_expand_relu"), keras_outputs(k, x, "block_13_expand_relu"))


def test_mobilenet_v2_alpha_odd_sizes_set_weights_equal_keras():
    kw = dict(input_shape=(33, 47, 3), alpha=0.35, include_top=False, pooling="max")
    k = keras_app("MobileNetV2", **kw)
    randomize(k, seed=3)
    c = A.MobileNetV2(weights=None, **kw)
    # (the input and the global pooling are named by counters, which depend on the session)
    assert c.name == k.name and [l.name for l in c.layers][1:-1] == [l.name for l in k.layers][1:-1]
    assert type(c.layers[-1]).__name__ == type(k.layers[-1]).__name__ == "GlobalMaxPooling2D"
    copy_weights(k, c)
    x = image((2, 33, 47, 3), seed=5)
    close(c.predict(x, verbose=0), np.asarray(k.predict(x, verbose=0)))


def test_mobilenet_v2_full_has_keras_count():
    c = A.MobileNetV2(weights=None)
    assert c.count_params() == 3_538_984 and c.name == "mobilenetv2_1.00_224"


def test_mobilenet_v2_non_square_imagenet_warns_and_reads_the_224_file(keras_home):
    with pytest.warns(UserWarning, match=r"Weights for input shape \(224, 224\) will be loaded"):
        with pytest.raises(DownloadError) as e:
            A.MobileNetV2(input_shape=(64, 80, 3), include_top=False)
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5" in str(e.value)


# ---------------------------------------------------------------------- torchvision's networks
def _write_torch_checkpoint(torch_home, arch, state=None):
    import torch_pickle
    url = A.resnet_torch.WEIGHTS_URLS[arch]
    path = torch_home / "hub" / "checkpoints" / url.rsplit("/", 1)[1]
    torch_pickle.save_state_dict(R.state_dict(arch) if state is None else state, str(path))
    return path


@pytest.mark.parametrize("arch", ["resnet18", "resnet34"])
def test_resnet_torch_imagenet_file_equals_torchvision(torch_home, no_network, arch):
    state = R.state_dict(arch)
    np.testing.assert_array_equal(R.checksum(state), REF[f"{arch}_checksum"],
                                  err_msg="numpy's generator no longer gives the fixture's weights: rerun "
                                          "tests/fixtures/make_resnet_torch_reference.py")
    path = _write_torch_checkpoint(torch_home, arch, state)
    assert path.name == {"resnet18": "resnet18-f37072fd.pth", "resnet34": "resnet34-b627a593.pth"}[arch]
    fn = A.ResNet18 if arch == "resnet18" else A.ResNet34
    m = fn(weights="imagenet", classifier_activation=None)
    assert no_network == [] and m.name == arch
    assert trainable_count(m) == int(REF[f"{arch}_num_parameters"])
    xs = R.inputs()
    close(m.predict(xs["x224"], verbose=0), REF[f"{arch}_logits"])
    feats = fn(weights="imagenet", include_top=False, input_shape=(67, 75, 3), pooling="avg")
    close(feats.predict(xs["odd"], verbose=0), REF[f"{arch}_pooled"])
    if arch == "resnet18":
        close(cc_sub(feats, "layer2.1.relu2").predict(xs["odd"], verbose=0), REF["resnet18_layer2"])
        probs = fn(weights="imagenet").predict(xs["x224"], verbose=0)  # Keras's default softmax on top
        z = REF["resnet18_logits"].astype(np.float64)
        close(probs, np.exp(z - z.max(1, keepdims=True)) / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True))


def test_resnet_torch_counts_and_names():
    r18, r34 = A.ResNet18(weights=None), A.ResNet34(weights=None)
    assert trainable_count(r18) == 11_689_512 and trainable_count(r34) == 21_797_672
    # count_params also counts the running statistics (Keras's count; torch's buffers)
    bn = sum(int(np.prod(l.weights[2].shape)) * 2 for l in r18.layers if isinstance(l, L.BatchNormalization))
    assert r18.count_params() == 11_689_512 + bn
    names = {l.name for l in r18.layers}
    assert {"conv1", "bn1", "layer1.0.conv1", "layer2.0.downsample.0", "layer2.0.downsample.1", "fc"} <= names
    assert r18.get_layer("bn1").epsilon == 1e-5
    # every torchvision key of the checkpoint is taken by a layer of that name
    keys = [k for k, _, _ in R.keys_and_shapes("resnet18") if not k.endswith("num_batches_tracked")]
    assert {k.rsplit(".", 1)[0] for k in keys} <= names


def test_resnet18_safetensors_path(tmp_path):
    from safetensors.numpy import save_file
    state = {k: v for k, v in R.state_dict("resnet18").items() if v.ndim}
    save_file(state, str(tmp_path / "r18.safetensors"))
    m = A.ResNet18(weights=str(tmp_path / "r18.safetensors"), include_top=False, input_shape=(67, 75, 3),
                   pooling="avg")
    close(m.predict(R.inputs()["odd"], verbose=0), REF["resnet18_pooled"])


# ---------------------------------------------------------------------- preprocess / decode
def test_class_index_is_keras_file():
    with open(imagenet_utils._CLASS_INDEX_FILE, "rb") as f:
        data = f.read()
    assert hashlib.md5(data).hexdigest() == "c2c37ea517e94d9795004a39431a14cb"  # Keras's file_hash
    index = json.loads(data)
    assert len(index) == 1000 and index["0"] == ["n01440764", "tench"] and index["281"][1] == "tabby"
    readme = os.path.join(os.path.dirname(imagenet_utils._CLASS_INDEX_FILE), "README.md")
    assert "c2c37ea517e94d9795004a39431a14cb" in open(readme).read()


def test_decode_predictions_equals_keras(keras_home, monkeypatch):
    import keras.src.backend.config as kconfig
    from keras.applications import imagenet_utils as kiu
    from keras.src.applications import imagenet_utils as kiu_src
    # Keras reads the class index from its cache (checking its md5): ours, copied there
    with open(imagenet_utils._CLASS_INDEX_FILE, "rb") as f:
        (keras_home / "models" / "imagenet_class_index.json").write_bytes(f.read())
    monkeypatch.setattr(kconfig, "_KERAS_DIR", str(keras_home))
    monkeypatch.setattr(kiu_src, "CLASS_INDEX", None)
    preds = np.random.default_rng(7).random((3, 1000)).astype(np.float32)
    for top in (5, 1, 3):
        want = kiu.decode_predictions(preds, top=top)
        for mod in (A.vgg16, A.vgg19, A.resnet50, A.resnet, A.mobilenet_v2, A.resnet_torch, imagenet_utils):
            got = mod.decode_predictions(preds, top=top)
            assert [[r[:2] for r in row] for row in got] == [[r[:2] for r in row] for row in want]
            np.testing.assert_array_equal([[r[2] for r in row] for row in got], [[r[2] for r in row] for row in want])
    got = A.vgg16.decode_predictions(cc.convert_to_tensor(preds))  # a Tensor of predictions
    assert [[r[:2] for r in row] for row in got] == [[r[:2] for r in row] for row in kiu.decode_predictions(preds)]
    with pytest.raises(ValueError) as ke:
        kiu.decode_predictions(preds[:, :10])
    with pytest.raises(ValueError) as ce:
        A.vgg16.decode_predictions(preds[:, :10])
    assert str(ce.value) == str(ke.value)


@pytest.mark.parametrize("module,mode", [("vgg16", "caffe"), ("vgg19", "caffe"), ("resnet50", "caffe"),
                                         ("mobilenet_v2", "tf"), (None, "torch")])
def test_preprocess_input_equals_keras(module, mode):
    import keras
    rng = np.random.default_rng(11)
    x = rng.uniform(0, 255, (2, 5, 6, 3)).astype(np.float32)
    if module is None:
        ours = A.resnet_torch.preprocess_input
        theirs = lambda a, **kw: keras.applications.imagenet_utils.preprocess_input(a, mode="torch", **kw)  # noqa
    else:
        ours = getattr(A, module).preprocess_input
        theirs = getattr(keras.applications, module).preprocess_input
    want = np.asarray(theirs(x.copy()))
    a = x.copy()
    got = ours(a)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-5)
    k_in = x.copy()
    theirs(k_in)
    np.testing.assert_allclose(a, k_in, rtol=1e-6, atol=1e-5)  # written over the input as Keras does
    # uint8 images, one image (3-D), channels_first
    u8 = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    np.testing.assert_allclose(ours(u8), np.asarray(theirs(u8.copy())), rtol=1e-6, atol=1e-5)
    cf = x.transpose(0, 3, 1, 2).copy()
    np.testing.assert_allclose(ours(cf.copy(), data_format="channels_first"),
                               np.asarray(theirs(cf.copy(), data_format="channels_first")), rtol=1e-6, atol=1e-5)
    # a convcore Tensor: the same values, differentiable
    t = cc.convert_to_tensor(x)
    with cc.GradientTape() as tape:
        tape.watch(t)
        y = ours(t)
        s = cc.ops.sum(y)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-6, atol=1e-5)
    g = tape.gradient(s, t).numpy()
    scale = {"caffe": 1.0, "tf": 1 / 127.5}.get(mode)
    if scale is not None:
        np.testing.assert_allclose(g, scale, rtol=1e-6)
    else:
        np.testing.assert_allclose(g[..., 0], 1 / (255 * 0.229), rtol=1e-5)


def test_preprocess_input_in_a_model_and_bad_arguments():
    x = L.Input((8, 8, 3))
    y = A.vgg16.preprocess_input(x)
    m = Model(x, y)
    img = np.random.default_rng(0).uniform(0, 255, (1, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(m.predict(img, verbose=0), A.vgg16.preprocess_input(img.copy()), rtol=1e-6)
    import keras
    for bad in (dict(mode="bgr"), dict(data_format="nhwc")):
        with pytest.raises(ValueError) as ce:
            imagenet_utils.preprocess_input(img.copy(), **bad)
        with pytest.raises(ValueError) as ke:
            keras.applications.imagenet_utils.preprocess_input(img.copy(), **bad)
        assert str(ce.value) == str(ke.value)
    with pytest.raises(ValueError, match="3 colour channels"):
        A.vgg16.preprocess_input(np.zeros((2, 8, 8, 4), np.float32))


# ---------------------------------------------------------------------- bad input
_KERAS_ERRORS = [
    dict(weights="imagenet", include_top=True, input_shape=(200, 200, 3)),
    dict(weights="imagenet", include_top=True, classes=10),
    dict(weights="/no/such/weights.h5"),
    dict(weights=None, include_top=False, input_shape=(20, 40, 3)),
    dict(weights="imagenet", include_top=False, input_shape=(64, 64, 2)),
    dict(weights=None, include_top=True, input_shape=(None, None, 3)),
    dict(weights=None, include_top=False, input_shape=(64, 64)),
]


@pytest.mark.parametrize("name", ["VGG16", "VGG19", "ResNet50", "MobileNetV2"])
@pytest.mark.parametrize("kw", _KERAS_ERRORS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_argument_errors_are_keras_errors(name, kw):
    import keras
    with pytest.raises(ValueError) as ke:
        getattr(keras.applications, name)(**kw)
    with pytest.raises(ValueError) as ce:
        getattr(A, name)(**kw)
    assert str(ce.value) == str(ke.value)


@pytest.mark.parametrize("fn", [A.ResNet18, A.ResNet34])
@pytest.mark.parametrize("kw", _KERAS_ERRORS[:4], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_resnet_torch_argument_errors_are_keras_errors(fn, kw):
    import keras
    with pytest.raises(ValueError) as ke:
        keras.applications.ResNet50(**kw)
    with pytest.raises(ValueError) as ce:
        fn(**kw)
    assert str(ce.value) == str(ke.value)


def test_other_argument_errors():
    import keras
    with pytest.raises(ValueError) as ke:
        keras.applications.MobileNetV2(weights="imagenet", alpha=0.6)
    with pytest.raises(ValueError) as ce:
        A.MobileNetV2(weights="imagenet", alpha=0.6)
    assert str(ce.value) == str(ke.value)
    with pytest.raises(ValueError, match="Only `None` and `softmax` activations are allowed"):
        A.ResNet18(weights="imagenet", classifier_activation="relu")
    with pytest.raises(ValueError, match="pooling"):
        A.VGG16(weights=None, include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="input_tensor must be a symbolic tensor"):
        A.ResNet18(weights=None, input_tensor=np.zeros((1, 224, 224, 3), np.float32))


def test_offline_error_names_url_and_path(keras_home, torch_home, no_network):
    with pytest.raises(DownloadError) as e:
        A.VGG16(include_top=False)
    target = keras_home / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert A.vgg16.WEIGHTS_PATH_NO_TOP in str(e.value) and str(target) in str(e.value)
    assert e.value.url == A.vgg16.WEIGHTS_PATH_NO_TOP and e.value.path == str(target)
    with pytest.raises(DownloadError) as e:
        A.ResNet18()
    target = torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in str(e.value) and str(target) in str(e.value)
    assert no_network == [A.vgg16.WEIGHTS_PATH_NO_TOP, "https://download.pytorch.org/models/resnet18-f37072fd.pth"]
    assert os.listdir(keras_home / "models") == [] and os.listdir(torch_home / "hub" / "checkpoints") == []


def test_torch_download_with_the_wrong_hash_is_removed(torch_home, monkeypatch):
    class Response(io.BytesIO):
        headers = {}

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Response(b"not the checkpoint"))
    with pytest.raises(ValueError, match="does not start with 'b627a593'"):
        A.ResNet34()
    assert os.listdir(torch_home / "hub" / "checkpoints") == []


def test_torch_home_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert imagenet_utils.torch_home() == os.path.join(str(tmp_path), "torch")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert imagenet_utils.torch_home() == os.path.expanduser("~/.cache/torch")


def test_weight_file_of_another_architecture_names_layer_and_shapes(tmp_path, torch_home):
    # MobileNetV2 alpha=0.35's weights for an alpha=1.0 network: same layer names, other shapes
    kw = dict(input_shape=(32, 32, 3), include_top=False)
    k = keras_app("MobileNetV2", alpha=0.35, **kw)
    path = tmp_path / "mobilenet_035.h5"
    write_keras_h5(k, path)
    with pytest.raises(ValueError) as e:
        A.MobileNetV2(weights=str(path), alpha=1.0, **kw)
    msg = str(e.value)
    assert "Conv1" in msg and "(3, 3, 3, 32)" in msg and "(3, 3, 3, 16)" in msg, msg
    # torchvision's 1000-class checkpoint for a 10-class ResNet18
    p = _write_torch_checkpoint(torch_home, "resnet18")
    with pytest.raises(ValueError) as e:
        A.ResNet18(weights=str(p), classes=10)
    msg = str(e.value)
    assert "'fc'" in msg and "(1000, 512)" in msg and "(10, 512)" in msg, msg
    # ResNet18's checkpoint under ResNet34's name
    import shutil
    shutil.copy(p, torch_home / "hub" / "checkpoints" / "resnet34-b627a593.pth")
    with pytest.raises(ValueError, match=r"has no 'layer1\.2\.conv1\.weight' for layer 'layer1\.2\.conv1'"):
        A.ResNet34()


def test_truncated_weight_file_in_the_cache(keras_home, torch_home):
    k = keras_app("VGG16", include_top=False, input_shape=(32, 32, 3))
    path = keras_home / "models" / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    write_keras_h5(k, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"):
        A.VGG16(include_top=False, input_shape=(32, 32, 3))
    p = _write_torch_checkpoint(torch_home, "resnet18")
    p.write_bytes(p.read_bytes()[:100_000])
    with pytest.raises(ValueError, match="resnet18-f37072fd.pth"):
        A.ResNet18()


def test_resnet18_input_gradient_equals_torch(torch_home):
    # what the adversarial lab steps along (FGSM / PGD): d loss / d image, inference mode
    p = _write_torch_checkpoint(torch_home, "resnet18")
    m = A.ResNet18(weights=str(p), input_shape=(35, 41, 3), classifier_activation=None)
    x = cc.convert_to_tensor(R.inputs()["small"])
    loss_fn = cc.losses.SparseCategoricalCrossentropy(from_logits=True)
    with cc.GradientTape() as tape:
        tape.watch(x)
        loss = loss_fn(np.array(R.GRAD_LABELS), m(x, training=False))
    np.testing.assert_allclose(float(loss.numpy()), float(REF["resnet18_loss"]), rtol=1e-5)
    close(tape.gradient(loss, x).numpy(), REF["resnet18_input_grad"])


def test_frozen_base_fine_tuning_keeps_the_base():
    base = A.MobileNetV2(weights=None, include_top=False, input_shape=(32, 32, 3), alpha=0.35)
    base.trainable = False
    model = cc.Sequential([base, L.GlobalAveragePooling2D(), L.Dense(2)])
    model.compile(optimizer="adam", loss=cc.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [w.copy() for w in base.get_weights()]
    head = model.layers[-1].get_weights()[0].copy()
    x = image((4, 32, 32, 3))
    model.fit(x, np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, base.get_weights()))  # nor the BN statistics
    assert not np.array_equal(head, model.layers[-1].get_weights()[0])
