"""Training from a small generated folder of JPEGs, and the bad inputs of reading data
from disk (issue 13).

- ``fit`` on ``ImageDataGenerator(rescale=1/255).flow_from_directory(..., shuffle=False)``,
  on ``utils.image_dataset_from_directory(..., shuffle=False)``, on a Python generator and
  on a ``utils.Sequence`` that reads the same files reaches the same weights, history and
  accuracy as ``fit`` on the equivalent in-memory arrays (same initial weights, same
  batches, shuffle off); the arrays themselves are Keras's: the file order, labels and
  pixels of Keras 3.15's ``DirectoryIterator`` (``keras.src.legacy.preprocessing.image``)
  and ``index_directory`` / ``load_img``.
- Bad input, each against Keras's behaviour and wording where Keras has one: a folder
  without class sub-folders, non-image and corrupt files, mixed image modes, a generator
  whose shapes change, an infinite source without ``steps_per_epoch``,
  ``validation_split`` without ``subset``, a download whose hash does not match.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import warnings

import numpy as np
import pytest

import convcore as cc
from convcore.preprocessing.image import ImageDataGenerator

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

CLASSES = ("horizontal", "vertical")
N_PER_CLASS = 12  # 24 images of 16x16
SIZE = (16, 16)
BS = 6  # 4 batches an epoch
EPOCHS = 2


def _keras():
    import keras
    return keras


def _keras_generator(**kw):
    from keras.src.legacy.preprocessing.image import ImageDataGenerator as KerasImageDataGenerator
    return KerasImageDataGenerator(**kw)


def _stripes(rng, vertical):
    t = np.sin(2 * np.pi * np.arange(SIZE[0]) / rng.uniform(3, 6) + rng.uniform(0, 6))
    img = np.tile(t[None, :], (SIZE[0], 1)) if vertical else np.tile(t[:, None], (1, SIZE[1]))
    rgb = 0.5 + 0.3 * img[..., None] + rng.normal(0, 0.1, SIZE + (3,))
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("jpegs")
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir()
        for i in range(N_PER_CLASS):
            Image.fromarray(_stripes(rng, bool(c))).save(root / name / f"{i:02d}.jpg", quality=90)
    return root


@pytest.fixture(scope="module")
def keras_arrays(folder):
    """Keras's DirectoryIterator over the folder (rescale=1/255, shuffle off): its file
    order, labels and pixels, as arrays; and the raw 0..255 pixels by Keras's load_img."""
    k = _keras()
    it = _keras_generator(rescale=1 / 255).flow_from_directory(str(folder), target_size=SIZE, batch_size=BS,
                                                                 class_mode="binary", shuffle=False)
    xs, ys = zip(*[it[i] for i in range(len(it))])
    raw = np.stack([k.utils.img_to_array(k.utils.load_img(p)) for p in it.filepaths])
    return dict(x=np.concatenate(xs), y=np.concatenate(ys), raw=raw, filenames=list(it.filenames),
                class_indices=dict(it.class_indices), filepaths=list(it.filepaths))


def _model(rescale=False):
    """A tiny convnet with fixed initial weights (the same for every copy)."""
    layers = cc.layers
    m = cc.Sequential([cc.Input(SIZE + (3,))] + ([layers.Rescaling(1 / 255)] if rescale else [])
                      + [layers.Conv2D(4, 3, activation="relu"), layers.MaxPooling2D(2), layers.Flatten(),
                         layers.Dense(1, activation="sigmoid")])
    rng = np.random.default_rng(1)
    m.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in m.get_weights()])
    m.compile(optimizer=cc.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=["accuracy"])
    return m


def _assert_same_training(ref, ref_hist, other, other_hist, x_eval, y_eval):
    for a, b in zip(ref.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(b, a)
    assert other_hist.history.keys() == ref_hist.history.keys()
    for key in ref_hist.history:
        np.testing.assert_array_equal(other_hist.history[key], ref_hist.history[key], err_msg=key)
    np.testing.assert_array_equal(other.evaluate(x_eval, y_eval, verbose=0), ref.evaluate(x_eval, y_eval, verbose=0))


@pytest.fixture(scope="module")
def array_fit(keras_arrays):
    """The reference: fit on the in-memory arrays, batch 6, shuffle off."""
    m = _model()
    h = m.fit(keras_arrays["x"], keras_arrays["y"], batch_size=BS, epochs=EPOCHS, shuffle=False, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]  # it learns something
    return m, h


# ---------------------------------------------------------------------- same training as arrays
def test_flow_from_directory_yields_keras_batches(folder, keras_arrays, capsys):
    it = ImageDataGenerator(rescale=1 / 255).flow_from_directory(folder, target_size=SIZE, batch_size=BS,
                                                                  class_mode="binary", shuffle=False)
    assert "Found 24 images belonging to 2 classes." in capsys.readouterr().out
    assert it.class_indices == keras_arrays["class_indices"] == {"horizontal": 0, "vertical": 1}
    assert it.filenames == keras_arrays["filenames"] and len(it) == 4 and it.samples == 24
    xs, ys = zip(*[it[i] for i in range(len(it))])
    assert xs[0].dtype == np.float32 and xs[0].shape == (BS,) + SIZE + (3,) and ys[0].dtype == np.float32
    np.testing.assert_array_equal(np.concatenate(ys), keras_arrays["y"])
    np.testing.assert_array_equal(np.concatenate(xs), keras_arrays["x"])


def test_fit_on_flow_from_directory_equals_fit_on_arrays(folder, keras_arrays, array_fit):
    it = ImageDataGenerator(rescale=1 / 255).flow_from_directory(folder, target_size=SIZE, batch_size=BS,
                                                                  class_mode="binary", shuffle=False)
    m = _model()
    h = m.fit(it, epochs=EPOCHS, shuffle=False, verbose=0)
    _assert_same_training(*array_fit, m, h, keras_arrays["x"], keras_arrays["y"])
    # the tf.keras 2 spelling, with steps_per_epoch
    it.reset()
    m2 = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        h2 = m2.fit_generator(it, steps_per_epoch=len(it), epochs=EPOCHS, shuffle=False, verbose=0)
    _assert_same_training(*array_fit, m2, h2, keras_arrays["x"], keras_arrays["y"])


def test_fit_on_image_dataset_from_directory_equals_fit_on_arrays(folder, keras_arrays):
    from keras.src.utils.dataset_utils import index_directory
    ds = cc.utils.image_dataset_from_directory(folder, image_size=SIZE, batch_size=BS, label_mode="binary",
                                               shuffle=False, verbose=False)
    paths, labels, names = index_directory(str(folder), "inferred", formats=(".jpg",), shuffle=False,
                                           verbose=False)
    assert ds.class_names == names == list(CLASSES) and ds.file_paths == paths == keras_arrays["filepaths"]
    xs, ys = zip(*list(ds))
    np.testing.assert_array_equal(np.concatenate(ys).ravel(), labels)
    # 16x16 files at image_size 16x16: the raw pixels (0..255), as Keras's load_img decodes them
    np.testing.assert_allclose(np.concatenate(xs), keras_arrays["raw"], atol=1e-3)
    x, y = np.concatenate(xs), np.concatenate(ys)
    ref = _model(rescale=True)
    ref_hist = ref.fit(x, y, batch_size=BS, epochs=EPOCHS, shuffle=False, verbose=0)
    m = _model(rescale=True)
    h = m.fit(ds, epochs=EPOCHS, shuffle=False, verbose=0)
    _assert_same_training(ref, ref_hist, m, h, x, y)


def test_fit_on_python_generator_equals_fit_on_arrays(keras_arrays, array_fit):
    x, y = keras_arrays["x"], keras_arrays["y"]

    def batches():  # infinite, in order: steps_per_epoch cuts it into epochs
        while True:
            for b in range(0, len(x), BS):
                yield x[b:b + BS], y[b:b + BS]
    m = _model()
    h = m.fit(batches(), steps_per_epoch=len(x) // BS, epochs=EPOCHS, shuffle=False, verbose=0)
    _assert_same_training(*array_fit, m, h, x, y)


def test_fit_on_sequence_reading_the_files_equals_fit_on_arrays(keras_arrays, array_fit):
    paths, y = keras_arrays["filepaths"], keras_arrays["y"]

    class Files(cc.utils.Sequence):
        def __init__(self, **kw):
            super().__init__(**kw)

        def __len__(self):
            return len(paths) // BS

        def __getitem__(self, i):
            sl = slice(i * BS, (i + 1) * BS)
            imgs = [cc.utils.img_to_array(cc.utils.load_img(p)) for p in paths[sl]]
            return np.stack(imgs) * np.float32(1 / 255), y[sl]
    for kw in ({}, {"workers": 2}):
        m = _model()
        h = m.fit(Files(**kw), epochs=EPOCHS, shuffle=False, verbose=0)
        _assert_same_training(*array_fit, m, h, keras_arrays["x"], y)


def test_validation_from_folder_equals_validation_on_arrays(folder, keras_arrays):
    x, y = keras_arrays["x"], keras_arrays["y"]
    ref = _model()
    ref_hist = ref.fit(x, y, batch_size=BS, epochs=EPOCHS, shuffle=False, validation_data=(x, y), verbose=0)
    gen = ImageDataGenerator(rescale=1 / 255)
    flow = dict(target_size=SIZE, batch_size=BS, class_mode="binary", shuffle=False)
    m = _model()
    h = m.fit(gen.flow_from_directory(folder, **flow), steps_per_epoch=4, epochs=EPOCHS,
              validation_data=gen.flow_from_directory(folder, **flow), validation_steps=4, shuffle=False,
              verbose=0)
    _assert_same_training(ref, ref_hist, m, h, x, y)
    np.testing.assert_array_equal(m.predict(gen.flow_from_directory(folder, **flow), verbose=0),
                                  ref.predict(x, batch_size=BS, verbose=0))


# ---------------------------------------------------------------------- bad input: the folder
def _png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


def test_folder_without_class_subfolders(tmp_path, capsys):
    """Keras's DirectoryIterator finds 0 images in 0 classes (images directly inside are
    not listed); fit then refuses the empty iterator. image_dataset_from_directory
    raises Keras's 'No images found in directory', with convcore's hint."""
    rgb = np.zeros((4, 4, 3), np.uint8)
    for i in range(3):
        _png(tmp_path / f"{i}.png", rgb)
    it = ImageDataGenerator().flow_from_directory(tmp_path, target_size=(4, 4))
    assert "Found 0 images belonging to 0 classes." in capsys.readouterr().out
    k = _keras_generator().flow_from_directory(str(tmp_path), target_size=(4, 4))
    assert (it.samples, it.num_classes, it.class_indices, len(it)) == (k.samples, k.num_classes, k.class_indices,
                                                                       len(k)) == (0, 0, {}, 0)
    m = cc.Sequential([cc.Input((4, 4, 3)), cc.layers.Flatten(), cc.layers.Dense(1)])
    m.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"has no batches \(its length is 0\)"):
        m.fit(it, verbose=0)
    with pytest.raises(ValueError, match="No images found in directory") as ours:
        cc.utils.image_dataset_from_directory(tmp_path, verbose=False)
    assert "no class sub-folders" in str(ours.value) and "labels=None" in str(ours.value)
    with pytest.raises(ValueError, match="No images found in directory"):
        _keras().utils.image_dataset_from_directory(str(tmp_path), verbose=False)
    with pytest.raises(ValueError, match="must be an existing folder"):
        ImageDataGenerator().flow_from_directory(tmp_path / "missing")


def test_non_image_files_are_skipped_as_keras(tmp_path):
    rgb = np.full((4, 4, 3), 9, np.uint8)
    for name in ("a.jpg", "b.PNG", "c.jpeg", "d.bmp", "e.ppm", "f.gif", "g.webp"):
        _png(tmp_path / "cls" / name, rgb) if not name.endswith(".jpeg") else \
            Image.fromarray(rgb).save(tmp_path / "cls" / name, "JPEG")
    (tmp_path / "cls" / "notes.txt").write_text("not an image")
    (tmp_path / "cls" / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / "cls" / "README").write_text("x")
    it = ImageDataGenerator().flow_from_directory(tmp_path, target_size=(4, 4), shuffle=False)
    k = _keras_generator().flow_from_directory(str(tmp_path), target_size=(4, 4), shuffle=False)
    assert it.filenames == k.filenames
    assert [os.path.basename(f) for f in it.filenames] == ["a.jpg", "b.PNG", "c.jpeg", "d.bmp", "e.ppm"]
    np.testing.assert_array_equal(it[0][0], k[0][0])


def _corrupt_folder(tmp_path, kind):
    _png(tmp_path / "cls" / "a_ok.png", np.zeros((4, 4, 3), np.uint8))
    bad = tmp_path / "cls" / "b_bad.jpg"
    if kind == "garbage":
        bad.write_bytes(b"this is not a JPEG")
    else:  # a real JPEG cut short
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, "JPEG")
        bad.write_bytes(buf.getvalue()[:300])
    return bad


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_corrupt_jpeg_raises_as_keras(tmp_path, kind):
    """Keras 3.15's DirectoryIterator neither skips nor warns: loading the batch raises
    Pillow's error (UnidentifiedImageError, an OSError, for a file that is not an image;
    OSError for a truncated JPEG). convcore raises the same type, and fit passes it on."""
    _corrupt_folder(tmp_path, kind)
    it = ImageDataGenerator().flow_from_directory(tmp_path, target_size=(4, 4), batch_size=2, shuffle=False)
    k = _keras_generator().flow_from_directory(str(tmp_path), target_size=(4, 4), batch_size=2, shuffle=False)
    assert it.filenames == k.filenames == ["cls/a_ok.png", "cls/b_bad.jpg"]
    with pytest.raises(OSError) as keras_err:
        k[0]
    with pytest.raises(OSError) as ours:
        it[0]
    assert type(ours.value) is type(keras_err.value)
    if kind == "garbage":
        assert isinstance(ours.value, PIL.UnidentifiedImageError)
    m = cc.Sequential([cc.Input((4, 4, 3)), cc.layers.Flatten(), cc.layers.Dense(1)])
    m.compile("sgd", "mse")
    with pytest.raises(OSError):
        m.fit(it, verbose=0)
    # image_dataset_from_directory names the file (Keras's would fail inside tf.io)
    ds = cc.utils.image_dataset_from_directory(tmp_path, image_size=(4, 4), shuffle=False, verbose=False)
    with pytest.raises(ValueError, match="could not decode the image file .*b_bad.jpg"):
        ds[0]


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_corrupt_jpeg_error_names_the_file(tmp_path, kind):
    _corrupt_folder(tmp_path, kind)
    it = ImageDataGenerator().flow_from_directory(tmp_path, target_size=(4, 4), batch_size=2, shuffle=False)
    with pytest.raises(OSError, match="b_bad.jpg"):
        it[0]


def test_mixed_image_modes_convert_as_keras(tmp_path):
    """Grayscale, RGB, RGBA, palette and grayscale+alpha PNGs in one class folder:
    every color_mode converts them all, to Keras's pixels."""
    rng = np.random.default_rng(3)
    _png(tmp_path / "c" / "a_gray.png", rng.integers(0, 256, (5, 6), dtype=np.uint8))
    _png(tmp_path / "c" / "b_rgb.png", rng.integers(0, 256, (5, 6, 3), dtype=np.uint8))
    _png(tmp_path / "c" / "c_rgba.png", rng.integers(0, 256, (5, 6, 4), dtype=np.uint8))
    Image.fromarray(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)).convert("P").save(tmp_path / "c" / "d_p.png")
    Image.fromarray(rng.integers(0, 256, (5, 6), dtype=np.uint8)).convert("LA").save(tmp_path / "c" / "e_la.png")
    for mode, channels in (("rgb", 3), ("grayscale", 1), ("rgba", 4)):
        kw = dict(target_size=(5, 6), color_mode=mode, batch_size=5, shuffle=False, class_mode="sparse")
        x, y = ImageDataGenerator().flow_from_directory(tmp_path, **kw)[0]
        kx, ky = _keras_generator().flow_from_directory(str(tmp_path), **kw)[0]
        assert x.shape == (5, 5, 6, channels)
        np.testing.assert_array_equal(x, kx, err_msg=mode)
        np.testing.assert_array_equal(y, ky)


# ---------------------------------------------------------------------- bad input: generators
def test_generator_with_inconsistent_shapes_names_the_batch_and_both_shapes(keras_arrays):
    x, y = keras_arrays["x"], keras_arrays["y"]

    def batches():
        yield x[:BS], y[:BS]
        yield x[BS:2 * BS], y[BS:2 * BS]
        yield x[2 * BS:3 * BS, :12, :12], y[2 * BS:3 * BS]  # a batch of 12x12 images
    with pytest.raises(ValueError, match=r"batch 3 of the generator has inputs of shape \(12, 12, 3\).*the first "
                                         r"batch had \(16, 16, 3\)"):
        _model().fit(batches(), shuffle=False, verbose=0)
    built_later = cc.Sequential([cc.layers.Flatten(), cc.layers.Dense(1)])  # no Input: built from batch 1
    built_later.compile("sgd", "mse")
    with pytest.raises(ValueError, match=r"batch 3 .* \(12, 12, 3\).*\(16, 16, 3\)"):
        built_later.fit(batches(), shuffle=False, verbose=0)


def test_infinite_sources_and_steps_per_epoch(keras_arrays):
    """An infinite PyDataset (num_batches None) without steps_per_epoch is refused
    (Keras 3 would run one endless epoch); with it, each epoch takes exactly that many
    batches. A plain generator cannot say it is infinite: as in Keras, it is read until
    it ends, so an infinite one needs steps_per_epoch (Model.fit's docstring says so)."""
    x, y = keras_arrays["x"], keras_arrays["y"]

    class Endless(cc.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.got = []

        @property
        def num_batches(self):
            return None

        def __getitem__(self, i):
            self.got.append(i)
            b = (i % 4) * BS
            return x[b:b + BS], y[b:b + BS]
    m = _model()
    with pytest.raises(ValueError, match=r"infinite \(its num_batches is None\), so steps_per_epoch must be given"):
        m.fit(Endless(), shuffle=False, verbose=0)
    with pytest.raises(ValueError, match="steps must be given"):
        m.evaluate(Endless(), verbose=0)
    ds = Endless()
    h = m.fit(ds, steps_per_epoch=3, epochs=2, shuffle=False, verbose=0)
    assert len(h.history["loss"]) == 2
    assert ds.got[-6:] == [0, 1, 2, 3, 4, 5]  # the pass goes on across epochs
    assert "steps_per_epoch" in cc.Model.fit.__doc__ and "infinite" in cc.Model.fit.__doc__


def test_validation_split_without_subset(folder, keras_arrays):
    """ImageDataGenerator(validation_split=...).flow_from_directory without `subset`
    takes every file, as Keras; with it, Keras's split of each class folder (validation
    first). image_dataset_from_directory refuses it with Keras's message."""
    gen, kgen = ImageDataGenerator(validation_split=0.25), _keras_generator(validation_split=0.25)
    kw = dict(target_size=SIZE, shuffle=False)
    assert gen.flow_from_directory(folder, **kw).filenames == keras_arrays["filenames"]
    for subset, n in (("training", 18), ("validation", 6)):
        ours = gen.flow_from_directory(folder, subset=subset, **kw)
        assert ours.samples == n and ours.filenames == kgen.flow_from_directory(str(folder), subset=subset,
                                                                                **kw).filenames
    with pytest.raises(ValueError, match='Invalid subset name: train;expected "training" or "validation"'):
        gen.flow_from_directory(folder, subset="train")
    msg = "If `subset` is set, `validation_split` must be set, and inversely."
    for lib in (cc.utils, _keras().utils):
        with pytest.raises(ValueError, match=re.escape(msg)):
            lib.image_dataset_from_directory(str(folder), validation_split=0.25)
        with pytest.raises(ValueError, match="validation_split` must be set"):
            lib.image_dataset_from_directory(str(folder), subset="training")


# ---------------------------------------------------------------------- bad input: downloads
def _origin(tmp_path, payload=b"the real payload\n" * 100):
    src = tmp_path / "server" / "payload.bin"
    src.parent.mkdir()
    src.write_bytes(payload)
    return src.as_uri(), hashlib.sha256(payload).hexdigest()


def test_get_file_hash_mismatch_leaves_nothing_in_the_cache(tmp_path, capsys):
    origin, good = _origin(tmp_path)
    cache = tmp_path / "cache"
    wrong = "0" * 64
    with pytest.raises(ValueError, match="Incomplete or corrupted file detected. The .* file hash does not match "
                                         f"the provided value of {wrong}"):
        cc.utils.get_file("payload.bin", origin, file_hash=wrong, cache_dir=str(cache))
    assert list((cache / "datasets").iterdir()) == []  # neither the file nor a partial .part
    # Keras's wording is the same, but Keras leaves the bad file in its cache
    kcache = tmp_path / "kcache"
    kcache.mkdir()  # Keras falls back to /tmp/.keras for a cache_dir it cannot write to (or that is missing)
    with pytest.raises(ValueError, match="Incomplete or corrupted file detected"):
        _keras().utils.get_file("payload.bin", origin, file_hash=wrong, cache_dir=str(kcache))
    assert [p.name for p in (kcache / "datasets").iterdir()] == ["payload.bin"]
    # the right hash downloads it; a corrupted copy in the cache is downloaded again
    path = cc.utils.get_file("payload.bin", origin, file_hash=good, cache_dir=str(cache))
    assert path == str(cache / "datasets" / "payload.bin")
    with open(path, "r+b") as f:
        f.write(b"XX")
    capsys.readouterr()
    assert cc.utils.get_file("payload.bin", origin, file_hash=good, cache_dir=str(cache)) == path
    assert "hash does not match the original value" in capsys.readouterr().out
    assert hashlib.sha256(open(path, "rb").read()).hexdigest() == good
    assert sorted(p.name for p in (cache / "datasets").iterdir()) == ["payload.bin"]


def test_get_file_hash_mismatch_error_says_the_file_was_removed(tmp_path):
    origin, _ = _origin(tmp_path)
    with pytest.raises(ValueError, match=r"Incomplete or corrupted file detected(.|\n)*removed"):
        cc.utils.get_file("payload.bin", origin, file_hash="0" * 64, cache_dir=str(tmp_path / "cache"))
