"""``image_dataset_from_directory``, as ``keras.utils.image_dataset_from_directory`` of
Keras 3.15: a folder of images (one sub-folder per class) as a dataset of
``(images, labels)`` batches.

There is no tf.data here: the dataset is a :class:`~convcore.utils.PyDataset`
(:class:`ImageDirectoryDataset`) of numpy batches, so ``fit`` / ``evaluate`` /
``predict`` take it directly, loading the next batches in worker threads while the step
runs; ``len()`` is its number of batches, iterating over it gives the batches, and it has
Keras's ``class_names`` and ``file_paths``.

The files are listed as Keras's ``index_directory`` lists them (the same order, the same
shuffle for a seed, the same training / validation split), decoded with Pillow through
:func:`convcore.utils.image_utils.load_img` (``color_mode``) and resized with
convcore's native resize (:class:`convcore.layers.Resizing`'s code path, the numbers of
``keras.ops.image.resize``, without antialiasing, as ``tf.image.resize``).

Where convcore differs from Keras (which needs tensorflow, or grain, for this function;
neither is used here):

* Keras decodes with ``tf.image.decode_image`` and resizes with ``tf.image.resize``;
  convcore with Pillow and its own resize (to float32 rounding of Keras's jax resize).
  A grayscale conversion of a colour file is Pillow's (ITU-R 601-2 luma), tf's
  weights differ in the last digits.
* With ``shuffle=True`` Keras also shuffles each pass through a tf.data buffer of
  ``8 * batch_size`` files. convcore's first pass follows ``file_paths`` (Keras's
  shuffled listing) exactly; each later pass (after ``on_epoch_end``, which ``fit``
  calls) is a new permutation of the files drawn from ``seed``.
* ``pad_to_aspect_ratio`` pads first and then resizes (``keras.ops.image.resize`` /
  ``Resizing``); ``tf.image.resize_with_pad`` resizes and then pads, which differs on
  the pixels next to the padding.
* ``interpolation`` 'area', 'gaussian' and 'mitchellcubic' (tf's) are not available.
* A file that cannot be decoded raises a ValueError naming it when its batch is loaded.
"""
from __future__ import annotations

import math
import os

import numpy as np

from .py_dataset import PyDataset

__all__ = ["image_dataset_from_directory", "ImageDirectoryDataset", "index_directory", "ALLOWLIST_FORMATS"]

ALLOWLIST_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_KERAS_INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5", "gaussian",
                         "mitchellcubic")
_INTERPOLATIONS = ("bilinear", "nearest", "bicubic", "lanczos3", "lanczos5")


def _iter_valid_files(directory, follow_links, formats):
    for root, _, files in sorted(os.walk(directory, followlinks=follow_links), key=lambda x: x[0]):
        for fname in sorted(files):
            if fname.lower().endswith(formats):
                yield root, fname


def _index_subdirectory(directory, class_index, follow_links, formats):
    dirname = os.path.basename(directory)
    filenames, labels = [], []
    for root, fname in _iter_valid_files(directory, follow_links, formats):
        labels.append(class_index)
        filenames.append(os.path.join(dirname, os.path.relpath(os.path.join(root, fname), directory)))
    return filenames, labels


def index_directory(directory, labels, formats, class_names=None, shuffle=True, seed=None, follow_links=False,
                    verbose=True):
    """``(file_paths, labels, class_names)`` of the files in ``directory`` whose names
    end with one of ``formats``, as ``keras.src.utils.dataset_utils.index_directory``:
    class sub-folders in alphanumeric order (or ``class_names``' order), files sorted
    within each (sub-folders of a class walked in order), then shuffled with
    ``np.random.RandomState(seed)`` when ``shuffle``."""
    if labels == "inferred":
        subdirs = []
        for subdir in sorted(os.listdir(directory)):
            if os.path.isdir(os.path.join(directory, subdir)) and not subdir.startswith("."):
                subdirs.append(subdir.rstrip("/"))
        if class_names is not None:
            if not set(class_names).issubset(set(subdirs)):
                raise ValueError("The `class_names` passed did not match the names of the subdirectories of the "
                                 f"target directory. Expected: {subdirs} (or a subset of it), but received: "
                                 f"class_names={class_names}")
            subdirs = list(class_names)
    else:
        subdirs = [""]
        if class_names is not None:
            if labels is None:
                raise ValueError("When `labels=None` (no labels), argument `class_names` cannot be specified.")
            raise ValueError("When argument `labels` is specified, argument `class_names` cannot be specified (the "
                             "`class_names` will be the sorted list of labels).")
    class_names = subdirs
    filenames, labels_list = [], []
    for i, subdir in enumerate(subdirs):
        f, l = _index_subdirectory(os.path.join(directory, subdir), i, follow_links, formats)
        filenames += f
        labels_list += l
    if labels == "inferred":
        labels = np.asarray(labels_list, dtype="int32")
    elif labels is None:
        class_names = None
    else:
        if len(labels) != len(filenames):
            raise ValueError("Expected the lengths of `labels` to match the number of files in the target "
                             f"directory. len(labels) is {len(labels)} while we found {len(filenames)} files in "
                             f"directory {directory}.")
        class_names = [str(label) for label in sorted(set(labels))]
        labels = np.asarray(labels)
    if verbose:
        if labels is None:
            print(f"Found {len(filenames)} files.")
        else:
            print(f"Found {len(filenames)} files belonging to {len(class_names)} classes.")
    file_paths = [os.path.join(directory, fname) for fname in filenames]
    if shuffle:
        if seed is None:
            seed = np.random.randint(1e6)
        np.random.RandomState(seed).shuffle(file_paths)
        if labels is not None:
            np.random.RandomState(seed).shuffle(labels)
    return file_paths, labels, class_names


def _split(samples, labels, validation_split, subset, verbose=True):
    """Keras's ``get_training_or_validation_split``: the last ``int(validation_split *
    n)`` files are the validation subset."""
    if not validation_split:
        return samples, labels
    num_val = int(validation_split * len(samples))
    if subset == "training":
        if verbose:
            print(f"Using {len(samples) - num_val} files for training.")
        samples = samples[:-num_val] if num_val else samples
        if labels is not None:
            labels = labels[:-num_val] if num_val else labels
    elif subset == "validation":
        if verbose:
            print(f"Using {num_val} files for validation.")
        samples = samples[-num_val:] if num_val else []
        if labels is not None:
            labels = labels[-num_val:] if num_val else labels[:0]
    else:
        raise ValueError(f'`subset` must be either "training" or "validation", received: {subset}')
    return samples, labels


class ImageDirectoryDataset(PyDataset):
    """The dataset :func:`image_dataset_from_directory` returns: a PyDataset of
    ``(images, labels)`` batches (``images`` float32 ``(batch, height, width,
    channels)``; only the images when ``label_mode`` is None; single images when
    ``batch_size`` is None), with ``class_names`` and ``file_paths`` (in the order of
    the first pass). It loads its batches in ``workers`` threads inside ``fit`` (the
    file decoding and the resize release the GIL)."""

    def __init__(self, file_paths, labels, label_mode, class_names, image_size, color_mode, interpolation,
                 crop_to_aspect_ratio, pad_to_aspect_ratio, data_format, batch_size, shuffle, seed, workers=None):
        super().__init__(workers=min(4, os.cpu_count() or 1) if workers is None else workers,
                         use_multiprocessing=False, max_queue_size=10)
        self.file_paths = list(file_paths)
        self._labels = None if labels is None else np.asarray(labels)
        self.label_mode, self.class_names = label_mode, class_names
        self.image_size, self.color_mode, self.interpolation = tuple(image_size), color_mode, interpolation
        self.crop_to_aspect_ratio, self.pad_to_aspect_ratio = crop_to_aspect_ratio, pad_to_aspect_ratio
        self.data_format, self.batch_size = data_format, batch_size
        self.shuffle, self.seed = shuffle, seed
        self._order = np.arange(len(self.file_paths))
        self._passes = 0
        self._resizer = None

    def __getstate__(self):  # for worker processes: the resize layer is made again there
        state = dict(self.__dict__)
        state["_resizer"] = None
        return state

    def __len__(self):
        n = len(self.file_paths)
        return n if self.batch_size is None else math.ceil(n / self.batch_size)

    def _resize_layer(self):
        if self._resizer is None:
            from ..layers import Resizing
            self._resizer = Resizing(self.image_size[0], self.image_size[1], interpolation=self.interpolation,
                                     crop_to_aspect_ratio=self.crop_to_aspect_ratio,
                                     pad_to_aspect_ratio=self.pad_to_aspect_ratio, dtype="float32")
        return self._resizer

    def load_image(self, path):
        """One file as a float32 array (height, width, channels), resized."""
        from .image_utils import img_to_array, load_img
        try:
            img = load_img(path, color_mode=self.color_mode)
            a = img_to_array(img, data_format="channels_last", dtype="float32")
        except Exception as e:
            raise ValueError(f"image_dataset_from_directory: could not decode the image file {path!r}: {e}") from e
        if a.ndim == 2:
            a = a[:, :, None]
        if a.shape[:2] != self.image_size or self.crop_to_aspect_ratio or self.pad_to_aspect_ratio:
            a = np.asarray(self._resize_layer()(a[None]).numpy(), dtype=np.float32)[0]
        if self.data_format == "channels_first":
            a = np.transpose(a, (2, 0, 1))
        return a

    def _label_array(self, idx):
        lab = self._labels[idx]
        if self.label_mode == "int":
            return lab.astype("int32")
        if self.label_mode == "binary":
            return lab.astype("float32").reshape(-1, 1)
        out = np.zeros((len(idx), len(self.class_names)), dtype="float32")
        out[np.arange(len(idx)), lab.astype(np.int64)] = 1.0
        return out

    def __getitem__(self, index):
        n = len(self)
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"ImageDirectoryDataset: the batch index must be an integer, received {index!r}")
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"ImageDirectoryDataset: batch index {index} out of range for {n} batches")
        bs = 1 if self.batch_size is None else self.batch_size
        idx = self._order[index * bs:(index + 1) * bs]
        images = np.stack([self.load_image(self.file_paths[i]) for i in idx]).astype(np.float32, copy=False)
        labels = None if self.label_mode is None else self._label_array(idx)
        if self.batch_size is None:
            images = images[0]
            labels = None if labels is None else labels[0]
        return images if labels is None else (images, labels)

    def on_epoch_end(self):
        """A new order of the files for the next pass, when shuffling (seeded)."""
        self._passes += 1
        if self.shuffle:
            self._order = np.random.RandomState((self.seed + self._passes) % 2 ** 32).permutation(
                len(self.file_paths))


def _positive_int(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"image_dataset_from_directory: `{name}` must be a positive integer, received {name}="
                         f"{value!r}")
    return int(value)


def image_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None, color_mode="rgb",
                                 batch_size=32, image_size=(256, 256), shuffle=True, seed=None,
                                 validation_split=None, subset=None, interpolation="bilinear", follow_links=False,
                                 crop_to_aspect_ratio=False, pad_to_aspect_ratio=False, data_format=None,
                                 verbose=True, format="tf"):
    """A dataset of ``(images, labels)`` batches from the images in ``directory``, as
    ``keras.utils.image_dataset_from_directory``.

    ``labels='inferred'``: one sub-folder of ``directory`` per class (class index: the
    sub-folder's position in alphanumeric order, or in ``class_names``); a list / tuple
    of integer labels, one per file in the sorted order of ``os.walk``; None: images
    only. ``label_mode``: 'int' (int32 ``(batch,)``), 'categorical' (float32 one-hot),
    'binary' (float32 ``(batch, 1)``, exactly 2 classes) or None. ``color_mode``:
    'grayscale', 'rgb' or 'rgba' (1, 3, 4 channels). ``image_size``: ``(height,
    width)`` every image is resized to (``interpolation``; ``crop_to_aspect_ratio`` /
    ``pad_to_aspect_ratio`` keep the aspect ratio). ``shuffle`` / ``seed``: Keras's
    shuffle of the file listing. ``validation_split`` with ``subset`` 'training',
    'validation' or 'both' (a list ``[train, validation]``). Files are ``.bmp``,
    ``.gif``, ``.jpeg``, ``.jpg``, ``.png``.

    ``format`` ('tf' or 'grain', Keras 3.15's choice of the returned type) is accepted
    for compatibility: convcore returns its own dataset for both.

    Returns an :class:`ImageDirectoryDataset` (a PyDataset; Keras returns a
    ``tf.data.Dataset`` or a ``grain.IterDataset``): see the module docstring for where
    convcore differs."""
    if labels not in ("inferred", None):
        if not isinstance(labels, (list, tuple)):
            raise ValueError("`labels` argument should be a list/tuple of integer labels, of the same size as the "
                             "number of image files in the target directory. If you wish to infer the labels from "
                             'the subdirectory names in the target directory, pass `labels="inferred"`. If you wish '
                             f"to get a dataset that only contains images (no labels), pass `labels=None`. "
                             f"Received: labels={labels}")
        if class_names:
            raise ValueError(f'You can only pass `class_names` if `labels="inferred"`. Received: labels={labels}, '
                             f"and class_names={class_names}")
    if label_mode not in {"int", "categorical", "binary", None}:
        raise ValueError('`label_mode` argument must be one of "int", "categorical", "binary", or None. Received: '
                         f"label_mode={label_mode}")
    if labels is None or label_mode is None:
        labels = None
        label_mode = None
    if color_mode not in ("rgb", "rgba", "grayscale"):
        raise ValueError(f'`color_mode` must be one of {{"rgb", "rgba", "grayscale"}}. Received: color_mode='
                         f"{color_mode}")
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    elif not isinstance(image_size, (list, tuple)) or not len(image_size) == 2:
        raise ValueError(f"Invalid `image_size` value. Expected a tuple of 2 integers. Received: image_size="
                         f"{image_size}")
    image_size = (_positive_int("image_size", image_size[0]), _positive_int("image_size", image_size[1]))
    if batch_size is not None:
        batch_size = _positive_int("batch_size", batch_size)
    if not isinstance(interpolation, str):
        raise ValueError(f"Argument `interpolation` should be one of {_KERAS_INTERPOLATIONS}. Received: "
                         f"interpolation={interpolation}")
    interpolation = interpolation.lower()
    if interpolation not in _KERAS_INTERPOLATIONS:
        raise ValueError(f"Argument `interpolation` should be one of {_KERAS_INTERPOLATIONS}. Received: "
                         f"interpolation={interpolation}")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"image_dataset_from_directory: interpolation={interpolation!r} is tf.image's; convcore "
                         f"resizes with {_INTERPOLATIONS}")
    if format not in ("tf", "grain"):
        raise ValueError(f'`format` should be either "tf" or "grain". Received: format={format}')
    if pad_to_aspect_ratio and crop_to_aspect_ratio:
        raise ValueError("Only one of `pad_to_aspect_ratio`, `crop_to_aspect_ratio` can be set to `True`.")
    if validation_split and not 0 < validation_split < 1:
        raise ValueError(f"`validation_split` must be between 0 and 1, received: {validation_split}")
    if (validation_split or subset) and not (validation_split and subset):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely.")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f'`subset` must be either "training", "validation" or "both", received: {subset}')
    if validation_split and shuffle and seed is None:
        raise ValueError("If using `validation_split` and shuffling the data, you must provide a `seed` argument, "
                         "to make sure that there is no overlap between the training and validation subset.")
    if data_format is None:
        from .. import backend
        data_format = backend.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError("The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
                         f"Received: data_format={data_format!r}")
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"image_dataset_from_directory: directory must be a path, received {directory!r}")
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"image_dataset_from_directory: directory {directory!r} does not exist or is not a "
                         "directory")
    if seed is None:
        seed = np.random.randint(1e6)
    paths, labs, class_names = index_directory(directory, labels, ALLOWLIST_FORMATS, class_names=class_names,
                                               shuffle=shuffle, seed=seed, follow_links=follow_links,
                                               verbose=verbose)
    if label_mode == "binary" and len(class_names) != 2:
        raise ValueError(f'When passing `label_mode="binary"`, there must be exactly 2 class_names. Received: '
                         f"class_names={class_names}")
    if labs is not None and label_mode is not None and class_names:
        bad = [int(v) for v in np.asarray(labs).ravel() if not 0 <= int(v) < len(class_names)] \
            if label_mode != "int" else []
        if bad:
            raise ValueError(f"image_dataset_from_directory: labels {sorted(set(bad))[:5]} are outside "
                             f"0..{len(class_names) - 1}")

    def make(p, l, shuf):
        return ImageDirectoryDataset(p, l, label_mode, class_names, image_size, color_mode, interpolation,
                                     crop_to_aspect_ratio, pad_to_aspect_ratio, data_format, batch_size, shuf, seed)

    if subset == "both":
        pt, lt = _split(paths, labs, validation_split, "training", verbose)
        pv, lv = _split(paths, labs, validation_split, "validation", verbose)
        if not pt:
            raise ValueError(f"No training images found in directory {directory}. Allowed formats: "
                             f"{ALLOWLIST_FORMATS}")
        if not pv:
            raise ValueError(f"No validation images found in directory {directory}. Allowed formats: "
                             f"{ALLOWLIST_FORMATS}")
        return [make(pt, lt, shuffle), make(pv, lv, False)]
    paths, labs = _split(paths, labs, validation_split, subset, verbose)
    if not paths and labels == "inferred" and not class_names:
        raise ValueError(f"No images found in directory {directory}: it has no class sub-folders (labels='inferred' "
                         "takes one sub-folder of images per class); for a folder of images without classes pass "
                         "labels=None")
    if not paths:
        raise ValueError(f"No images found in directory {directory}. Allowed formats: {ALLOWLIST_FORMATS}")
    return make(paths, labs, shuffle)
