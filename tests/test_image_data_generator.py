"""convcore.preprocessing.image (ImageDataGenerator and its iterators) against the
reference, Keras 3.15's ``keras.src.legacy.preprocessing.image`` (tf.keras 2's
``ImageDataGenerator``): the same random parameters for the same seed, the same
transformed pixels (scipy's affine_transform in Keras, the native warp here), the same
statistics after ``fit``, the same batches from ``flow`` / ``flow_from_directory`` /
``flow_from_dataframe``.

The native warp has scipy.ndimage's plain 'constant' / 'wrap' modes and its
round-half-up nearest tap, so every fill mode and order equals Keras.
"""
from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import convcore
from convcore.preprocessing import image as cimage
from convcore.preprocessing.image import ImageDataGenerator

# Keras's legacy module calls scipy.ndimage.interpolation.affine_transform (deprecated name)
pytestmark = pytest.mark.filterwarnings("ignore:Please import `affine_transform`:DeprecationWarning")


@pytest.fixture(scope="module")
def K():
    from keras.src.legacy.preprocessing import image as kimage
    return kimage


def rand_image(shape=(8, 10, 3), seed=0, low=0.0, high=255.0, dtype=np.float32):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


def close(a, b, dtype=np.float32):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    if dtype == np.float64:
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-9)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


GEOMETRIC = dict(rotation_range=35, width_shift_range=0.2, height_shift_range=0.15, shear_range=12,
                 zoom_range=0.25)
EVERYTHING = dict(GEOMETRIC, channel_shift_range=25.0, horizontal_flip=True, vertical_flip=True,
                  brightness_range=(0.4, 1.6))


def both(K, **kw):
    return K.ImageDataGenerator(**kw), ImageDataGenerator(**kw)


# ---------------------------------------------------------------------------------
# random parameters
# ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [
    {},
    EVERYTHING,
    dict(width_shift_range=3, height_shift_range=[1, 2, 5], zoom_range=(0.5, 0.9)),
    dict(width_shift_range=2.5, height_shift_range=0.3, horizontal_flip=True),
    dict(EVERYTHING, data_format="channels_first"),
], ids=["identity", "everything", "int-and-list-shifts", "pixel-float-shift", "channels-first"])
def test_get_random_transform_equals_keras_for_the_same_seed(K, kw):
    k, c = both(K, **kw)
    shape = (3, 8, 10) if kw.get("data_format") == "channels_first" else (8, 10, 3)
    for seed in range(6):
        pk, pc = k.get_random_transform(shape, seed=seed), c.get_random_transform(shape, seed=seed)
        assert pk.keys() == pc.keys()
        for key in pk:
            assert pk[key] == pc[key], (key, pk[key], pc[key])
            assert type(pk[key]) is type(pc[key]), key
    # without a seed both continue numpy's global stream the same way
    np.random.seed(11)
    pk = [k.get_random_transform(shape) for _ in range(3)]
    np.random.seed(11)
    pc = [c.get_random_transform(shape) for _ in range(3)]
    assert pk == pc


# ---------------------------------------------------------------------------------
# apply_transform / random_transform
# ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fill_mode", ["nearest", "reflect", "constant", "wrap"])
def test_random_transform_equals_keras_for_every_fill_mode(K, fill_mode):
    k, c = both(K, fill_mode=fill_mode, cval=40.0, **EVERYTHING)
    x = rand_image()
    for seed in range(8):
        close(c.random_transform(x, seed=seed), k.random_transform(x, seed=seed))


@pytest.mark.parametrize("fill_mode", ["nearest", "reflect", "constant", "wrap"])
def test_zoom_in_never_reaches_the_border_and_equals_keras_for_every_fill_mode(K, fill_mode):
    # zoom factors < 1 sample strictly inside the image: the fill mode is never used
    k, c = both(K, fill_mode=fill_mode, cval=-5.0, zoom_range=(0.5, 0.8), channel_shift_range=10.0,
                horizontal_flip=True)
    x = rand_image((9, 9, 2), seed=3)
    for seed in range(5):
        p = k.get_random_transform(x.shape, seed=seed)
        close(c.apply_transform(x, p), k.apply_transform(x, p))


@pytest.mark.parametrize("name,params", [
    ("rotation", {"theta": 23.0}),
    ("rotation-negative", {"theta": -71.0}),
    ("height-shift", {"tx": 1.7}),
    ("width-shift", {"ty": -2.4}),
    ("shear", {"shear": 14.0}),
    ("zoom", {"zx": 1.3, "zy": 0.7}),
    ("combined", {"theta": 10.0, "tx": 0.6, "ty": -1.1, "shear": -8.0, "zx": 0.9, "zy": 1.15}),
    ("horizontal-flip", {"flip_horizontal": True}),
    ("vertical-flip", {"flip_vertical": True}),
    ("both-flips", {"flip_horizontal": 1, "flip_vertical": 1}),
    ("channel-shift", {"channel_shift_intensity": 30.0}),
    ("channel-shift-down", {"channel_shift_intensity": -60.0}),
    ("brightness-dim", {"brightness": 0.37}),
    ("brightness-bright", {"brightness": 1.8}),
    ("brightness-negative", {"brightness": -0.2}),
])
@pytest.mark.parametrize("fill_mode", ["nearest", "reflect"])
def test_apply_transform_equals_keras_for_each_parameter(K, name, params, fill_mode):
    k, c = both(K, fill_mode=fill_mode)
    for shape in [(8, 10, 3), (7, 7, 1)]:
        x = rand_image(shape, seed=len(name))
        close(c.apply_transform(x, params), k.apply_transform(x, params))


@pytest.mark.parametrize("fill_mode", ["constant", "wrap"])
def test_apply_transform_interior_equals_keras_for_constant_and_wrap(K, fill_mode):
    # away from the border (sample points inside [0, n-1]) the modes agree already
    k, c = both(K, fill_mode=fill_mode, cval=9.0)
    x = rand_image((8, 10, 3), seed=5)
    p = {"theta": 23.0, "tx": 1.5}
    got, want = c.apply_transform(x, p), k.apply_transform(x, p)
    close(got[2:6, 3:7], want[2:6, 3:7])


@pytest.mark.parametrize("fill_mode", ["constant", "wrap"])
def test_apply_transform_border_equals_keras_for_constant_and_wrap(K, fill_mode):
    k, c = both(K, fill_mode=fill_mode, cval=9.0)
    x = rand_image((8, 10, 3), seed=5)
    p = {"theta": 23.0, "tx": 1.5}
    close(c.apply_transform(x, p), k.apply_transform(x, p))


def test_brightness_matches_pillow_outside_the_8_bit_range(K):
    # an image outside [0, 255] is rescaled to 8 bits and back (Keras's round trip)
    k, c = both(K)
    for shape, low, high in [((6, 5, 3), -1.0, 1.0), ((6, 5, 1), -300.0, 900.0), ((6, 5, 4), 0.0, 700.0)]:
        x = rand_image(shape, seed=int(high), low=low, high=high)
        for b in (0.3, 1.0, 1.7):
            close(c.apply_transform(x, {"brightness": b}), k.apply_transform(x, {"brightness": b}))
    x = rand_image((4, 4, 3))
    close(cimage.apply_brightness_shift(x * 3, 0.6, scale=True), K.apply_brightness_shift(x * 3, 0.6, True))
    close(cimage.apply_brightness_shift(x, 1.3, scale=False), K.apply_brightness_shift(x, 1.3, False))


@pytest.mark.parametrize("order", [0, 1, 3])
def test_interpolation_orders_equal_keras(K, order):
    # order 0 and 1 are native; 3 (a spline) goes through scipy as Keras does
    k, c = both(K, interpolation_order=order, fill_mode="nearest")
    x = rand_image((8, 8, 2), seed=order)
    for p in ({"theta": 17.0}, {"theta": -40.0, "tx": 0.3, "shear": 5.0}):
        close(c.apply_transform(x, p), k.apply_transform(x, p))


def test_nearest_order_at_exact_half_pixel_ties_equals_keras(K):
    k, c = both(K, interpolation_order=0, fill_mode="nearest")
    x = rand_image((8, 10, 1), seed=2)
    p = {"zx": 1.0, "zy": 0.8}  # column coordinates 0.9, 1.7, 2.5, ...: exact ties
    close(c.apply_transform(x, p), k.apply_transform(x, p))


def test_float64_and_channels_first_equal_keras(K):
    kw = dict(GEOMETRIC, channel_shift_range=20.0, horizontal_flip=True, vertical_flip=True)
    k, c = both(K, dtype="float64", **kw)
    x = rand_image((8, 10, 3), seed=4, dtype=np.float64)
    for seed in range(4):
        got, want = c.random_transform(x, seed=seed), k.random_transform(x, seed=seed)
        assert got.dtype == want.dtype == np.float64
        close(got, want, np.float64)
    k, c = both(K, data_format="channels_first", **kw)
    xc = np.ascontiguousarray(rand_image((8, 10, 3), seed=6).transpose(2, 0, 1))
    for seed in range(4):
        close(c.random_transform(xc, seed=seed), k.random_transform(xc, seed=seed))


def test_apply_affine_transform_and_channel_shift_functions_equal_keras(K):
    x = rand_image((3, 8, 10), seed=8)  # Keras's default axes: channels first
    for kw in ({"theta": 30}, {"tx": 2, "ty": -1, "zx": 1.2}, {"shear": 20, "zy": 0.8}):
        close(cimage.apply_affine_transform(x, **kw), K.apply_affine_transform(x, **kw))
    close(cimage.apply_affine_transform(x.transpose(1, 2, 0), theta=30, row_axis=0, col_axis=1, channel_axis=2),
          K.apply_affine_transform(x.transpose(1, 2, 0), theta=30, row_axis=0, col_axis=1, channel_axis=2))
    close(cimage.apply_channel_shift(x, 12.5), K.apply_channel_shift(x, 12.5))
    assert cimage.apply_affine_transform(x) is x


# ---------------------------------------------------------------------------------
# fit / standardize
# ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [
    dict(featurewise_center=True),
    dict(featurewise_center=True, featurewise_std_normalization=True, rescale=1 / 255),
    dict(samplewise_center=True, samplewise_std_normalization=True),
    dict(zca_whitening=True, zca_epsilon=1e-3),
    dict(featurewise_std_normalization=True, samplewise_center=True, data_format="channels_first"),
    dict(rescale=0.5, preprocessing_function=lambda im: im[::-1] * 2.0),
], ids=["center", "center-std-rescale", "samplewise", "zca", "channels-first", "preprocessing-function"])
def test_fit_statistics_and_standardize_equal_keras(K, kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k, c = both(K, **kw)
    cf = kw.get("data_format") == "channels_first"
    x = rand_image((12, 3, 4, 5) if cf else (12, 4, 5, 3), seed=9)
    k.fit(x)
    c.fit(x)
    for attr in ("mean", "std", "zca_whitening_matrix"):
        want = getattr(k, attr)
        if want is None:
            assert getattr(c, attr) is None, attr
        else:
            close(getattr(c, attr), want)
    assert c.featurewise_center == k.featurewise_center
    assert c.featurewise_std_normalization == k.featurewise_std_normalization
    assert c.samplewise_center == k.samplewise_center
    for i in range(3):
        close(c.standardize(np.copy(x[i])), k.standardize(np.copy(x[i])))
    # the iterators standardize each image on its own (samplewise stats per image)
    xb = np.copy(x[:4])
    close(c._standardize_batch(np.copy(xb)), np.stack([k.standardize(np.copy(xi)) for xi in xb]))


def test_fit_with_augmentation_equals_keras(K):
    kw = dict(featurewise_center=True, featurewise_std_normalization=True, rotation_range=20, horizontal_flip=True,
              zoom_range=0.1)
    k, c = both(K, **kw)
    x = rand_image((6, 8, 8, 3), seed=10)
    k.fit(x, augment=True, rounds=2, seed=3)
    c.fit(x, augment=True, rounds=2, seed=3)
    close(c.mean, k.mean)
    close(c.std, k.std)


def test_standardize_before_fit_warns_as_keras():
    c = ImageDataGenerator(featurewise_center=True)
    x = rand_image((4, 4, 3))
    with pytest.warns(UserWarning, match="hasn't been fit on any training data"):
        out = c.standardize(np.copy(x))
    np.testing.assert_array_equal(out, x)


# ---------------------------------------------------------------------------------
# flow
# ---------------------------------------------------------------------------------

def _same_batches(a, b):
    if isinstance(a, tuple) or isinstance(a, list):
        assert type(a) is type(b) and len(a) == len(b)
        for u, v in zip(a, b):
            _same_batches(u, v)
    else:
        assert np.asarray(a).dtype == np.asarray(b).dtype
        close(a, b)


@pytest.mark.parametrize("shuffle", [True, False])
def test_flow_batches_equal_keras(K, shuffle):
    k, c = both(K, rescale=1 / 255, **GEOMETRIC, horizontal_flip=True, channel_shift_range=5.0)
    x = rand_image((10, 8, 8, 3), seed=12)
    y = np.arange(10)
    w = np.linspace(0.1, 1.0, 10)
    kit = k.flow(x, y, batch_size=4, shuffle=shuffle, sample_weight=w, seed=7)
    cit = c.flow(x, y, batch_size=4, shuffle=shuffle, sample_weight=w, seed=7)
    assert len(cit) == len(kit) == 3 and cit.n == 10 and cit.batch_size == 4
    for step in range(7):  # past one epoch: the reshuffle at the wrap-around too
        got = cit.next() if step % 2 else next(cit)
        _same_batches(got, next(kit))
    assert len(got) == 3 and got[0].shape[1:] == (8, 8, 3)
    # the Sequence protocol (what fit consumes), seeded per batch as Keras
    k2, c2 = both(K, rotation_range=30)
    kit, cit = k2.flow(x, y, batch_size=3, seed=1), c2.flow(x, y, batch_size=3, seed=1)
    for i in (0, 3, 1):
        _same_batches(cit[i], kit[i])
    assert cit[3][0].shape[0] == kit[3][0].shape[0] == 1
    with pytest.raises(ValueError, match="Asked to retrieve element 4, but the Sequence has length 4"):
        cit[4]
    for it in (cit, kit):  # both reshuffle from the same global numpy state
        np.random.seed(5)
        it.on_epoch_end()
    _same_batches(cit[0], kit[0])


def test_flow_without_y_and_with_extra_inputs_equals_keras(K):
    k, c = both(K, vertical_flip=True)
    x = rand_image((5, 4, 6, 1), seed=13)
    _same_batches(next(c.flow(x, batch_size=2, seed=2)), next(k.flow(x, batch_size=2, seed=2)))
    misc = np.arange(10.0).reshape(5, 2)
    got = next(c.flow((x, misc), np.arange(5), batch_size=5, shuffle=False, seed=4))
    want = next(k.flow((x, misc), np.arange(5), batch_size=5, shuffle=False, seed=4))
    assert isinstance(got[0], list) and len(got[0]) == 2
    _same_batches(got, want)


def test_flow_order_without_shuffle_and_reset(K):
    c = ImageDataGenerator()
    x = np.arange(7 * 2 * 2, dtype=np.float32).reshape(7, 2, 2, 1)
    it = c.flow(x, np.arange(7), batch_size=3, shuffle=False)
    ys = [next(it)[1].tolist() for _ in range(4)]
    assert ys == [[0, 1, 2], [3, 4, 5], [6], [0, 1, 2]]
    next(it)
    it.reset()
    assert next(it)[1].tolist() == [0, 1, 2]
    assert iter(it) is it


@pytest.mark.parametrize("subset", ["training", "validation"])
def test_flow_subset_equals_keras(K, subset):
    k, c = both(K, validation_split=0.3, horizontal_flip=True)
    x = rand_image((10, 4, 4, 3), seed=14)
    y = np.array([0, 1] * 5)
    kit = k.flow(x, y, batch_size=4, seed=3, subset=subset)
    cit = c.flow(x, y, batch_size=4, seed=3, subset=subset)
    assert cit.n == kit.n == (3 if subset == "validation" else 7)
    assert len(cit) == len(kit)
    for _ in range(3):
        _same_batches(next(cit), next(kit))


def test_flow_subset_class_split_check_as_keras(K):
    c = ImageDataGenerator(validation_split=0.5)
    x = rand_image((6, 2, 2, 1))
    y = np.array([0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="different number of classes after the split"):
        c.flow(x, y, subset="training")
    assert c.flow(x, y, subset="training", ignore_class_split=True).n == 3
    with pytest.raises(ValueError, match='Invalid subset name: train; expected "training" or "validation"'):
        c.flow(x, y, subset="train")


def test_flow_warps_a_whole_batch_in_one_native_call(monkeypatch):
    calls = []
    real = convcore._core.affine_warp

    def counting(x, m, *a):
        calls.append(x.shape[0])
        return real(x, m, *a)

    monkeypatch.setattr(convcore._core, "affine_warp", counting)
    c = ImageDataGenerator(rotation_range=40)
    it = c.flow(rand_image((9, 5, 5, 3)), batch_size=4, seed=0)
    for _ in range(3):
        next(it)
    assert calls == [4, 4, 1]


def test_iterator_is_a_pydataset_and_next_is_thread_safe():
    from convcore.utils.py_dataset import PyDataset
    c = ImageDataGenerator()
    x = np.arange(64, dtype=np.float32).reshape(64, 1, 1, 1)
    it = c.flow(x, np.arange(64), batch_size=4, shuffle=True, seed=5)
    assert isinstance(it, PyDataset) and isinstance(it, cimage.Iterator)
    assert it.workers == 1 and it.use_multiprocessing is False and it.max_queue_size == 10
    seen, lock = [], threading.Lock()

    def work():
        for _ in range(4):
            _, yb = next(it)
            with lock:
                seen.extend(yb.tolist())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(64))  # one epoch, every sample exactly once


# ---------------------------------------------------------------------------------
# flow_from_directory / flow_from_dataframe
# ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    from PIL import Image
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(21)
    names = {"cats": ["b.png", "a.png", "c.PNG", "notes.txt"], "dogs": ["z.png", "y.jpg"],
             "empty": []}
    for cls, files in names.items():
        (root / cls).mkdir()
        for f in files:
            if f.endswith(".txt"):
                (root / cls / f).write_text("not an image")
                continue
            arr = rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f, quality=95) if f.endswith(".jpg") else \
                Image.fromarray(arr).save(root / cls / f)
    (root / "cats" / "sub").mkdir()
    Image.fromarray(rng.integers(0, 256, (8, 10), dtype=np.uint8)).save(root / "cats" / "sub" / "d.png")
    return root


def _dir_pair(K, folder, gen_kw=None, **kw):
    gen_kw = gen_kw or {}
    k, c = both(K, **gen_kw)
    return k.flow_from_directory(str(folder), **kw), c.flow_from_directory(str(folder), **kw)


def test_flow_from_directory_lists_classes_and_files_as_keras(K, image_folder, capsys):
    kit, cit = _dir_pair(K, image_folder, target_size=(8, 10), shuffle=False)
    out = capsys.readouterr().out
    assert out.count("Found 6 images belonging to 3 classes.") == 2
    assert cit.class_indices == kit.class_indices == {"cats": 0, "dogs": 1, "empty": 2}
    assert cit.filenames == kit.filenames
    assert cit.filepaths == kit.filepaths
    assert cit.classes.dtype == kit.classes.dtype == np.int32
    np.testing.assert_array_equal(cit.classes, kit.classes)
    np.testing.assert_array_equal(cit.labels, kit.labels)
    assert cit.samples == cit.n == 6 and cit.num_classes == 3 and len(cit) == 1
    kit, cit = _dir_pair(K, image_folder, classes=["dogs", "cats"], target_size=(8, 10), shuffle=False)
    assert cit.class_indices == kit.class_indices == {"dogs": 0, "cats": 1}
    assert cit.filenames == kit.filenames


@pytest.mark.parametrize("class_mode", ["categorical", "binary", "sparse", "input", None])
def test_flow_from_directory_batches_equal_keras_for_every_class_mode(K, image_folder, class_mode):
    kw = dict(classes=["cats", "dogs"], class_mode=class_mode, target_size=(6, 5), batch_size=4, seed=3,
              interpolation="bilinear")
    kit, cit = _dir_pair(K, image_folder, gen_kw=dict(rotation_range=20, horizontal_flip=True, rescale=1 / 255),
                         **kw)
    for _ in range(3):
        _same_batches(next(cit), next(kit))


@pytest.mark.parametrize("color_mode,channels", [("grayscale", 1), ("rgb", 3), ("rgba", 4)])
def test_flow_from_directory_color_modes_and_sizes_equal_keras(K, image_folder, color_mode, channels):
    kit, cit = _dir_pair(K, image_folder, color_mode=color_mode, target_size=(4, 7), batch_size=6, shuffle=False)
    got, want = next(cit), next(kit)
    assert got[0].shape == (6, 4, 7, channels) and got[0].dtype == np.float32
    _same_batches(got, want)


@pytest.mark.parametrize("subset", ["training", "validation"])
def test_flow_from_directory_subset_equals_keras(K, image_folder, subset):
    kit, cit = _dir_pair(K, image_folder, gen_kw=dict(validation_split=0.5), subset=subset, target_size=(8, 10),
                         shuffle=False)
    assert cit.filenames == kit.filenames and cit.samples == kit.samples
    np.testing.assert_array_equal(cit.classes, kit.classes)
    _same_batches(next(cit), next(kit))


def test_flow_from_dataframe_equals_keras(K, image_folder):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"filename": ["cats/a.png", "dogs/z.png", "cats/b.png", "dogs/missing.png", "dogs/y.jpg"],
                       "class": ["cat", "dog", "cat", "dog", "dog"], "w": [1.0, 2.0, 3.0, 4.0, 5.0],
                       "score": [0.1, 0.2, 0.3, 0.4, 0.5]})
    for kw in (dict(class_mode="categorical"), dict(class_mode="binary", weight_col="w"),
               dict(class_mode="sparse"), dict(class_mode="raw", y_col="score"), dict(class_mode=None),
               dict(class_mode="multi_output", y_col=["score", "w"])):
        k, c = both(K, horizontal_flip=True)
        args = dict(directory=str(image_folder), target_size=(5, 5), batch_size=3, seed=4, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the missing file, as Keras warns
            kit, cit = k.flow_from_dataframe(df, **args), c.flow_from_dataframe(df, **args)
        assert cit.filenames == kit.filenames and cit.samples == kit.samples == 4
        if kw["class_mode"] in ("categorical", "binary", "sparse"):
            assert cit.class_indices == kit.class_indices
            assert list(cit.classes) == list(kit.classes)
        for _ in range(2):
            _same_batches(next(cit), next(kit))
    with pytest.warns(UserWarning, match='Found 1 invalid image filename'):
        ImageDataGenerator().flow_from_dataframe(df, directory=str(image_folder))
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        ImageDataGenerator().flow_from_dataframe({"filename": ["a.png"]})
    with pytest.raises(ValueError, match='If class_mode="binary" there must be 2 classes. Found 1 classes.'):
        ImageDataGenerator().flow_from_dataframe(df[df["class"] == "dog"], class_mode="binary")


# ---------------------------------------------------------------------------------
# bad input, lazy re-exports
# ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kw,err,match", [
    (dict(zoom_range=(0.5, 1.0, 2.0)), ValueError, "`zoom_range` should be a float or a tuple or list of two"),
    (dict(zoom_range="big"), ValueError, "`zoom_range` should be a float"),
    (dict(brightness_range=0.5), ValueError, "`brightness_range should be tuple or list of two floats"),
    (dict(validation_split=1.5), ValueError, "`validation_split` must be strictly between 0 and 1"),
    (dict(data_format="NHWC"), ValueError, '`data_format` should be `"channels_last"`'),
    (dict(fill_mode="mirror"), ValueError, "`fill_mode` must be one of .*Received: fill_mode='mirror'"),
    (dict(interpolation_order=7), ValueError, "`interpolation_order` must be an integer spline order from 0 to 5"),
    (dict(rotation_range="30"), ValueError, "`rotation_range` must be a number. Received: rotation_range='30'"),
    (dict(width_shift_range="x"), ValueError, "`width_shift_range` must be a float"),
    (dict(preprocessing_function=3), TypeError, "`preprocessing_function` must be a callable"),
])
def test_bad_generator_arguments_raise_clear_errors(kw, err, match):
    with pytest.raises(err, match=match):
        ImageDataGenerator(**kw)


def test_bad_data_raises_keras_messages(image_folder):
    c = ImageDataGenerator()
    with pytest.raises(ValueError, match=r"should have rank 4. You passed an array with shape \(4, 4, 3\)"):
        c.flow(rand_image((4, 4, 3)))
    with pytest.raises(ValueError, match="`x` \\(images tensor\\) and `y` \\(labels\\) should have the same length"):
        c.flow(rand_image((4, 2, 2, 3)), np.arange(3))
    with pytest.raises(ValueError, match="`x` \\(images tensor\\) and `sample_weight` should have the same"):
        c.flow(rand_image((4, 2, 2, 3)), np.arange(4), sample_weight=np.ones(2))
    with pytest.raises(ValueError, match="Input to `.fit\\(\\)` should have rank 4"):
        c.fit(rand_image((4, 4, 3)))
    with pytest.raises(ValueError, match="single image of rank 3"):
        c.apply_transform(rand_image((2, 4, 4, 3)), {})
    with pytest.raises(ValueError, match="Invalid class_mode: rainbow"):
        c.flow_from_directory(str(image_folder), class_mode="rainbow")
    with pytest.raises(ValueError, match='Invalid color mode: cmyk; expected "rgb", "rgba", or "grayscale"'):
        c.flow_from_directory(str(image_folder), color_mode="cmyk")
    with pytest.raises(ValueError, match="`directory` must be an existing folder"):
        c.flow_from_directory(str(image_folder / "nope"))
    with pytest.raises(ValueError, match="`target_size` must be a tuple of two positive integers"):
        c.flow_from_directory(str(image_folder), target_size=(8,))
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):
        c.flow(rand_image((4, 2, 2, 3)), batch_size=0)
    with pytest.warns(UserWarning, match="expected either 1, 3, or 4 channels on axis 3"):
        c.flow(rand_image((4, 2, 2, 5)))


def test_image_utils_and_dataset_function_resolve_lazily():
    import convcore.preprocessing as pre
    from convcore.utils import image_utils
    for name in ("load_img", "img_to_array", "array_to_img", "save_img", "smart_resize"):
        assert getattr(cimage, name) is getattr(image_utils, name)
    assert pre.image is cimage
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        cimage.nothing
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        pre.nothing


def test_image_dataset_from_directory_resolves_to_utils():
    import convcore.preprocessing as pre
    from convcore.utils import image_dataset_utils
    assert pre.image_dataset_from_directory is image_dataset_utils.image_dataset_from_directory


def test_fit_on_a_flow_iterator_equals_fit_on_the_arrays():
    from convcore import layers
    x = rand_image((24, 4, 4, 1), seed=40)
    y = (x.mean(axis=(1, 2, 3)) > 127).astype("float32")

    def train(data, **kw):
        convcore.utils.set_random_seed(3)
        model = convcore.Sequential([layers.Input((4, 4, 1)), layers.Flatten(), layers.Dense(1, activation="sigmoid")])
        model.compile("sgd", "binary_crossentropy")
        history = model.fit(data, epochs=2, verbose=0, shuffle=False, **kw)
        return history.history["loss"], model.get_weights()

    it = ImageDataGenerator(rescale=1 / 255).flow(x, y, batch_size=6, shuffle=False)
    loss_it, w_it = train(it)
    loss_np, w_np = train(x / 255, y=y, batch_size=6)
    np.testing.assert_allclose(loss_it, loss_np, rtol=1e-5)
    for a, b in zip(w_it, w_np):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_module_docstring_example_runs():
    import doctest
    result = doctest.testmod(cimage, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_save_to_dir_writes_the_files_keras_writes(K, tmp_path):
    from PIL import Image
    x = rand_image((5, 4, 6, 3), seed=30)
    outs = []
    for G in (K, cimage):
        folder = tmp_path / G.__name__.split(".")[0]
        folder.mkdir()
        it = G.ImageDataGenerator(rotation_range=15).flow(x, np.arange(5), batch_size=3, seed=2,
                                                          save_to_dir=str(folder), save_prefix="aug")
        next(it)
        outs.append({p.name: np.asarray(Image.open(p)) for p in sorted(folder.iterdir())})
    assert sorted(outs[0]) == sorted(outs[1]) and len(outs[0]) == 3
    for name in outs[0]:
        assert np.abs(outs[0][name].astype(int) - outs[1][name].astype(int)).max() <= 1, name


def test_importing_the_module_loads_no_optional_package():
    import subprocess
    import sys
    code = ("import sys, convcore.preprocessing.image as m; m.ImageDataGenerator(rotation_range=5); "
            "print(sorted(k for k in ('keras', 'jax', 'torch', 'pandas', 'scipy', 'PIL') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_flow_from_directory_links_and_aspect_ratio_equal_keras(K, image_folder, tmp_path):
    import os
    root = tmp_path / "linked"
    (root / "only").mkdir(parents=True)
    os.symlink(image_folder / "cats", root / "only" / "cats_link")
    for follow in (False, True):
        kit, cit = _dir_pair(K, root, follow_links=follow, target_size=(6, 4), shuffle=False,
                             keep_aspect_ratio=True, interpolation="bicubic")
        assert cit.filenames == kit.filenames and cit.samples == (4 if follow else 0)
        if follow:
            _same_batches(next(cit), next(kit))


def test_iterators_survive_pickling_for_worker_processes(K):
    import pickle
    c = ImageDataGenerator(rotation_range=25, horizontal_flip=True)
    x = rand_image((6, 5, 5, 3), seed=31)
    it = c.flow(x, np.arange(6), batch_size=4, seed=8)
    copy = pickle.loads(pickle.dumps(it))
    _same_batches(copy[1], it[1])
    fresh = c.flow(x, np.arange(6), batch_size=4, seed=8)
    copy = pickle.loads(pickle.dumps(fresh))
    for _ in range(3):
        _same_batches(next(copy), next(fresh))


@pytest.mark.parametrize("name,args", [
    ("random_rotation", (40,)), ("random_shift", (0.2, 0.3)), ("random_shear", (25,)),
    ("random_zoom", ((0.7, 1.3),)), ("random_channel_shift", (30.0,)), ("random_brightness", ((0.5, 1.5),)),
])
def test_random_functions_equal_keras(K, name, args):
    x = rand_image((3, 8, 8), seed=50) if name != "random_brightness" else rand_image((6, 7, 3), seed=50)
    for seed in range(3):
        np.random.seed(seed)
        want = getattr(K, name)(x, *args)
        np.random.seed(seed)
        close(getattr(cimage, name)(x, *args), want)
