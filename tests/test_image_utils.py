"""convcore.utils' image files and arrays against real Keras 3 (keras.utils.load_img,
img_to_array, array_to_img, save_img, keras.preprocessing.image.smart_resize) on the
same files and arrays; the files are written by Pillow in tmp_path."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

from PIL import Image

import convcore
from convcore import utils
from convcore.utils import image_utils

keras = pytest.importorskip("keras")

FORMATS = {"png": "PNG", "jpeg": "JPEG", "bmp": "BMP", "gif": "GIF"}


def _pixels(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One 13 x 17 image per format and source mode (RGB, RGBA where the format keeps
    it, L, a 16-bit grayscale PNG)."""
    d = tmp_path_factory.mktemp("images")
    out = {}
    for ext, fmt in FORMATS.items():
        for mode, shape in (("RGB", (13, 17, 3)), ("RGBA", (13, 17, 4)), ("L", (13, 17))):
            if mode == "RGBA" and fmt in ("JPEG", "BMP", "GIF"):
                continue
            p = d / f"{mode}.{ext}"
            Image.fromarray(_pixels(shape, len(out)), mode).save(p, format=fmt)
            out[(ext, mode)] = p
    p = d / "I16.png"
    Image.fromarray(np.random.default_rng(9).integers(0, 65536, (13, 17), dtype=np.uint16)).save(p)
    out[("png", "I;16")] = p
    return out


def _same_image(a, b):
    assert type(a) is type(b) or (isinstance(a, Image.Image) and isinstance(b, Image.Image))
    assert a.mode == b.mode and a.size == b.size
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ---------------------------------------------------------------------- load_img
@pytest.mark.parametrize("color_mode", ["rgb", "rgba", "grayscale"])
def test_load_img_every_file_and_color_mode_as_keras(files, color_mode):
    for key, p in files.items():
        got = utils.load_img(p, color_mode=color_mode)
        ref = keras.utils.load_img(p, color_mode=color_mode)
        _same_image(got, ref)
        assert got.mode == {"rgb": "RGB", "rgba": "RGBA"}.get(color_mode, got.mode)
        if color_mode == "grayscale":
            assert got.mode == ("I;16" if key[1] == "I;16" else "L")
        np.testing.assert_array_equal(utils.img_to_array(got), keras.utils.img_to_array(ref))


def test_load_img_decodes_the_pixels_written(files):
    # lossless formats give back exactly the array Pillow wrote
    for ext in ("png", "bmp"):
        x = utils.img_to_array(utils.load_img(files[(ext, "RGB")]))
        assert x.dtype == np.float32 and x.shape == (13, 17, 3)
        np.testing.assert_array_equal(x, np.asarray(Image.open(files[(ext, "RGB")]), np.float32))
    x = utils.img_to_array(utils.load_img(files[("png", "I;16")], color_mode="grayscale"))
    assert x.shape == (13, 17, 1) and x.max() > 255  # 16-bit values kept


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear", "bicubic", "hamming", "box", "lanczos"])
@pytest.mark.parametrize("keep_aspect_ratio", [False, True])
def test_load_img_target_size_as_keras(files, interpolation, keep_aspect_ratio):
    for key in (("png", "RGB"), ("jpeg", "L"), ("gif", "RGB")):
        for size in ((7, 9), (20, 11), (13, 17)):
            kw = dict(target_size=size, interpolation=interpolation, keep_aspect_ratio=keep_aspect_ratio)
            got = utils.load_img(files[key], **kw)
            ref = keras.utils.load_img(files[key], **kw)
            _same_image(got, ref)
            assert got.size == (size[1], size[0])


def test_load_img_path_forms(files):
    p = files[("png", "RGBA")]
    ref = np.asarray(keras.utils.load_img(str(p), color_mode="rgba"))
    for form in (str(p), p, str(p).encode(), io.BytesIO(p.read_bytes())):
        np.testing.assert_array_equal(np.asarray(utils.load_img(form, color_mode="rgba")), ref)
    with open(p, "rb") as f:  # any binary file object (Keras: io.BytesIO only)
        np.testing.assert_array_equal(np.asarray(utils.load_img(f, color_mode="rgba")), ref)


def test_load_img_bad_input(files, tmp_path):
    p = files[("png", "RGB")]
    with pytest.raises(ValueError, match="color_mode must be"):
        utils.load_img(p, color_mode="cmyk")
    with pytest.raises(ValueError, match="Invalid interpolation method cubic"):
        utils.load_img(p, target_size=(5, 5), interpolation="cubic")
    with pytest.raises(ValueError, match="target_size"):
        utils.load_img(p, target_size=5)
    with pytest.raises(TypeError, match="path should be path-like or io.BytesIO"):
        utils.load_img(123)
    with pytest.raises(FileNotFoundError):
        utils.load_img(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(Image.UnidentifiedImageError):
        utils.load_img(tmp_path / "junk.png")


# ---------------------------------------------------------------------- img_to_array / array_to_img
@pytest.mark.parametrize("data_format", [None, "channels_last", "channels_first"])
@pytest.mark.parametrize("dtype", [None, "float64", "uint8"])
def test_img_to_array_as_keras(files, data_format, dtype):
    for key in (("png", "RGB"), ("png", "RGBA"), ("bmp", "L"), ("png", "I;16")):
        img = Image.open(files[key])
        got = utils.img_to_array(img, data_format=data_format, dtype=dtype)
        ref = keras.utils.img_to_array(img, data_format=data_format, dtype=dtype)
        assert got.dtype == ref.dtype and got.shape == ref.shape
        np.testing.assert_array_equal(got, ref)


def test_img_to_array_bad_input():
    with pytest.raises(ValueError, match="Unsupported image shape"):
        utils.img_to_array(np.zeros(5))
    with pytest.raises(ValueError, match="data_format"):
        utils.img_to_array(np.zeros((2, 2, 3)), data_format="channels_middle")


@pytest.mark.parametrize("scale", [True, False])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_array_to_img_as_keras(scale, channels):
    rng = np.random.default_rng(channels)
    for x in (rng.uniform(-3, 7, (6, 5, channels)), rng.uniform(0, 255, (6, 5, channels)).astype(np.float32),
              np.zeros((6, 5, channels)), rng.integers(0, 256, (6, 5, channels)).astype(np.uint8)):
        _same_image(utils.array_to_img(x, scale=scale), keras.utils.array_to_img(x, scale=scale))
    xf = rng.uniform(0, 1, (channels, 6, 5))
    _same_image(utils.array_to_img(xf, data_format="channels_first"),
                keras.utils.array_to_img(xf, data_format="channels_first"))
    # a Tensor is converted as an array
    _same_image(utils.array_to_img(convcore.ops.convert_to_tensor(xf.transpose(1, 2, 0))),
                keras.utils.array_to_img(xf.transpose(1, 2, 0)))


def test_array_to_img_values_and_modes():
    x = np.array([[[0.0], [0.5]], [[1.0], [0.25]]])
    img = utils.array_to_img(x)
    assert img.mode == "L"
    np.testing.assert_array_equal(np.asarray(img), [[0, 127], [255, 63]])  # scaled to 0..255, truncated
    big = utils.array_to_img(np.array([[[1000.0]], [[7.0]]]), scale=False)
    assert big.mode == "I" and np.asarray(big).ravel().tolist() == [1000, 7]
    _same_image(big, keras.utils.array_to_img(np.array([[[1000.0]], [[7.0]]]), scale=False))


def test_array_to_img_bad_input():
    with pytest.raises(ValueError, match="Expected image array to have rank 3"):
        utils.array_to_img(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="Unsupported channel number: 2"):
        utils.array_to_img(np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match="data_format"):
        utils.array_to_img(np.zeros((4, 4, 3)), data_format="NHWC")


# ---------------------------------------------------------------------- save_img
@pytest.mark.parametrize("ext", ["png", "jpg", "jpeg", "bmp", "gif"])
def test_save_img_writes_keras_bytes_and_round_trips(tmp_path, ext):
    x = np.random.default_rng(3).uniform(0, 1, (9, 11, 3))
    ours, theirs = tmp_path / f"ours.{ext}", tmp_path / f"theirs.{ext}"
    utils.save_img(ours, x)
    keras.utils.save_img(theirs, x)
    assert ours.read_bytes() == theirs.read_bytes()
    back = utils.img_to_array(utils.load_img(ours))
    assert back.shape == (9, 11, 3)
    if ext in ("png", "bmp"):  # lossless: the scaled pixels come back
        np.testing.assert_array_equal(back, np.asarray(utils.array_to_img(x), np.float32))


def test_save_img_file_object_grayscale_and_kwargs(tmp_path):
    x = np.random.default_rng(4).uniform(0, 255, (8, 8, 1))
    buf, ref = io.BytesIO(), io.BytesIO()
    utils.save_img(buf, x, file_format="png", scale=False)
    keras.utils.save_img(ref, x, file_format="png", scale=False)
    assert buf.getvalue() == ref.getvalue()
    buf.seek(0)
    np.testing.assert_array_equal(utils.img_to_array(utils.load_img(buf, color_mode="grayscale")),
                                  x.astype(np.uint8).astype(np.float32))
    utils.save_img(tmp_path / "q.jpg", x.repeat(3, -1), quality=20)  # kwargs go to PIL.Image.save
    keras.utils.save_img(tmp_path / "k.jpg", x.repeat(3, -1), quality=20)
    assert (tmp_path / "q.jpg").read_bytes() == (tmp_path / "k.jpg").read_bytes()
    xc = np.random.default_rng(5).uniform(0, 1, (3, 6, 7))
    utils.save_img(tmp_path / "cf.png", xc, data_format="channels_first")
    assert utils.load_img(tmp_path / "cf.png").size == (7, 6)


def test_save_img_rgba_as_jpeg_warns_and_converts(tmp_path):
    x = np.random.default_rng(6).uniform(0, 1, (5, 5, 4))
    with pytest.warns(UserWarning, match="JPEG format does not support RGBA"):
        utils.save_img(tmp_path / "a.jpg", x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras.utils.save_img(tmp_path / "b.jpg", x)
    assert (tmp_path / "a.jpg").read_bytes() == (tmp_path / "b.jpg").read_bytes()
    assert Image.open(tmp_path / "a.jpg").mode == "RGB"


def test_save_img_bad_input(tmp_path):
    with pytest.raises(ValueError, match="rank 3"):
        utils.save_img(tmp_path / "x.png", np.zeros(4))
    with pytest.raises((ValueError, KeyError)):
        utils.save_img(tmp_path / "x.notaformat", np.zeros((2, 2, 3)))


# ---------------------------------------------------------------------- smart_resize
def _keras_smart_resize(x, size, **kw):
    return keras.preprocessing.image.smart_resize(x, size, **kw)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest", "bicubic", "lanczos3", "lanczos5"])
def test_smart_resize_matches_keras(interpolation):
    rng = np.random.default_rng(7)
    # downscaling with a crop of the width, upscaling a batch with a crop of the height (Keras
    # compiles each shape: few cases)
    for shape, size in (((13, 17, 3), (5, 5)), ((2, 9, 6, 1), (30, 12))):
        x = rng.uniform(0, 255, shape).astype(np.float32)
        got = utils.smart_resize(x, size, interpolation=interpolation)
        ref = _keras_smart_resize(x, size, interpolation=interpolation)
        assert isinstance(got, np.ndarray) and got.dtype == ref.dtype and got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=2e-3)


@pytest.mark.parametrize("dtype", ["uint8", "float64", "float16", "int64"])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_smart_resize_dtypes_as_keras(dtype, interpolation):
    x = np.random.default_rng(8).integers(0, 255, (11, 7, 3)).astype(dtype)
    got = utils.smart_resize(x, (4, 6), interpolation=interpolation)
    ref = _keras_smart_resize(x, (4, 6), interpolation=interpolation)
    assert got.dtype == ref.dtype and got.shape == ref.shape == (4, 6, 3)
    tol = 0.5 if dtype == "float16" else 2e-3
    np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64), rtol=1e-3, atol=tol)


def test_smart_resize_channels_first_and_tensor_input():
    x = np.random.default_rng(10).uniform(0, 1, (2, 3, 10, 14)).astype(np.float32)
    got = utils.smart_resize(x, (6, 6), data_format="channels_first")
    ref = _keras_smart_resize(x, (6, 6), data_format="channels_first")
    assert got.shape == ref.shape == (2, 3, 6, 6)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    t = utils.smart_resize(convcore.ops.convert_to_tensor(x[0].transpose(1, 2, 0)), (6, 6))
    assert isinstance(t, convcore.Tensor) and t.shape == (6, 6, 3)
    np.testing.assert_allclose(t.numpy(), ref[0].transpose(1, 2, 0), rtol=1e-5, atol=1e-6)
    # a list is not a numpy array: a Tensor comes back (Keras: its backend's tensor)
    assert isinstance(utils.smart_resize(x[0].transpose(1, 2, 0).tolist(), (6, 6)), convcore.Tensor)


def test_smart_resize_crops_the_centre():
    # a (4, 8) image to (2, 2): the centred (4, 4) crop, columns 2..5, then halved
    x = np.arange(32, dtype=np.float32).reshape(4, 8, 1)
    got = utils.smart_resize(x, (2, 2), interpolation="nearest")
    np.testing.assert_array_equal(got[..., 0], x[[1, 3]][:, [3, 5], 0])
    np.testing.assert_array_equal(got, _keras_smart_resize(x, (2, 2), interpolation="nearest"))


def test_smart_resize_bad_input():
    x = np.zeros((4, 4, 3), np.float32)
    with pytest.raises(ValueError, match="Expected `size` to be a tuple of 2 integers"):
        utils.smart_resize(x, (4,))
    with pytest.raises(ValueError, match="incorrect rank"):
        utils.smart_resize(np.zeros((4, 4)), (2, 2))
    with pytest.raises(ValueError, match="interpolation"):
        utils.smart_resize(x, (2, 2), interpolation="area")
    with pytest.raises(TypeError, match="unexpected keyword arguments"):
        utils.smart_resize(x, (2, 2), antialias=True)
    with pytest.raises(TypeError, match="size"):
        utils.smart_resize(x, (2.5, 2))
    with pytest.raises(ValueError, match="data_format"):
        utils.smart_resize(x, (2, 2), data_format="NHWC")


def test_exports():
    for name in image_utils.__all__:
        assert getattr(utils, name) is getattr(image_utils, name)
    assert utils.get_file.__module__ == "convcore.utils.file_utils"
