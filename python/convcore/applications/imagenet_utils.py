"""Helpers shared by the pretrained networks, with ``keras.applications.imagenet_utils``'s
names: ``preprocess_input`` (Keras's 'caffe', 'tf' and 'torch' conventions),
``decode_predictions`` (the ImageNet class index ships in the package), and the input
shape rules of Keras's applications (``obtain_input_shape``, ``correct_pad``,
``validate_activation``).

Also where the pretrained weight files are looked for: Keras's files in Keras's cache
(``$KERAS_HOME/models/``, else ``~/.keras/models/``), torchvision's in torch hub's
(``$TORCH_HOME/hub/checkpoints/``, else ``$XDG_CACHE_HOME/torch/hub/checkpoints/``, else
``~/.cache/torch/hub/checkpoints/``). A file found there is used as it is, as torch hub
does (so converted or fine-tuned weights can be placed there); only a missing file is
downloaded, from the official URL, and checked (Keras's md5 / sha256, or the sha256
prefix in torch's file name) before it is put in place.

Where convcore differs from Keras:

* ``decode_predictions`` reads the class index shipped with convcore
  (``applications/data/imagenet_class_index.json``, Keras's file byte for byte) instead
  of downloading it;
* a weight file already in Keras's cache is used without checking its hash (Keras
  checks it and downloads again on a mismatch);
* ``preprocess_input`` of a symbolic tensor (``Input(...)``) returns the output of a
  ``Lambda`` layer doing the same arithmetic (a model saved with it holds that
  ``Lambda``, which loads with ``safe_mode=False`` only); of a convcore ``Tensor`` it is
  computed with :mod:`convcore.ops`, so a ``GradientTape`` differentiates through it.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import warnings

import numpy as np

__all__ = ["preprocess_input", "decode_predictions", "obtain_input_shape", "correct_pad", "validate_activation",
           "CLASS_INDEX_PATH", "keras_weights_path", "torch_weights_path", "torch_home"]

CLASS_INDEX = None
# where Keras downloads the class index from (convcore ships the same file)
CLASS_INDEX_PATH = "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"
_CLASS_INDEX_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "imagenet_class_index.json")

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)

PREPROCESS_INPUT_DOC = """Preprocess a batch of images (or one image), as Keras's ``{keras}``.

    ``x``: a float numpy array (3-D or 4-D, 3 colour channels, values in [0, 255]); a
    float array is preprocessed in place (as Keras; pass ``np.copy(x)`` to keep it), any
    other dtype is first converted to float32. A convcore ``Tensor`` is preprocessed with
    :mod:`convcore.ops` (differentiable); a symbolic tensor goes through a ``Lambda``
    layer. ``data_format``: None (``'channels_last'``) or ``'channels_first'``.
    {mode}
    Returns the preprocessed array (float).{ret}
    """

_RET = {
    "caffe": " The images are converted from RGB to BGR, then each colour channel is zero-centred with respect "
             "to the ImageNet dataset (BGR means 103.939, 116.779, 123.68), without scaling.",
    "tf": " The pixel values are scaled to [-1, 1] (x / 127.5 - 1).",
    "torch": " The pixel values are scaled to [0, 1] and each channel is normalised with ImageNet's mean "
             "(0.485, 0.456, 0.406) and standard deviation (0.229, 0.224, 0.225).",
}


def preprocess_input(x, data_format=None, mode="caffe"):
    """Preprocess a batch of images, as ``keras.applications.imagenet_utils.preprocess_input``.

    ``mode``: 'caffe' (RGB -> BGR, minus ImageNet's BGR mean, no scaling: VGG16/19,
    ResNet50), 'tf' (to [-1, 1]: MobileNetV2) or 'torch' (to [0, 1], then ImageNet's
    mean and standard deviation per channel: torchvision's networks). ``x``: a numpy
    array (a float array is changed in place, as Keras), a convcore ``Tensor`` or a
    symbolic tensor; see the module docstring."""
    if mode not in {"caffe", "tf", "torch"}:
        raise ValueError(f"Expected mode to be one of `caffe`, `tf` or `torch`. Received: mode={mode}")
    if data_format is None:
        from .. import backend
        data_format = backend.image_data_format()
    elif data_format not in {"channels_first", "channels_last"}:
        raise ValueError("Expected data_format to be one of `channels_first` or `channels_last`. "
                         f"Received: data_format={data_format}")
    from ..backend import is_keras_tensor
    from ..tensor import Tensor
    if is_keras_tensor(x):
        from ..layers import Lambda
        return Lambda(lambda t: preprocess_input(t, data_format=data_format, mode=mode),
                      name=f"preprocess_input_{mode}")(x)
    if isinstance(x, Tensor):
        return _preprocess_tensor(x, data_format, mode)
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"preprocess_input expects a numeric array of images, received dtype {x.dtype}")
    return _preprocess_numpy(x, data_format, mode)


def _channel_axis(x, data_format):
    if data_format == "channels_first":
        axis = 0 if x.ndim == 3 else 1
    else:
        axis = x.ndim - 1
    if x.ndim < 1 or x.shape[axis] != 3:
        raise ValueError(f"preprocess_input expects images with 3 colour channels on the "
                         f"{'first' if data_format == 'channels_first' else 'last'} axis "
                         f"({data_format}); received an array of shape {tuple(x.shape)}")
    return axis


def _preprocess_numpy(x, data_format, mode):
    if not issubclass(x.dtype.type, np.floating):
        from .. import backend
        x = x.astype(backend.floatx(), copy=False)
    if mode == "tf":
        x /= 127.5
        x -= 1.0
        return x
    axis = _channel_axis(x, data_format)
    if mode == "torch":
        x /= 255.0
        mean, std = _TORCH_MEAN, _TORCH_STD
    else:
        x = np.flip(x, axis=axis)  # RGB -> BGR (a view, as Keras's x[..., ::-1])
        mean, std = _CAFFE_MEAN_BGR, None
    shape = [1] * x.ndim
    shape[axis] = 3
    x -= np.asarray(mean, dtype=x.dtype).reshape(shape)
    if std is not None:
        x /= np.asarray(std, dtype=x.dtype).reshape(shape)
    return x


def _preprocess_tensor(x, data_format, mode):
    from .. import ops
    if x.dtype not in ("float32", "float64"):
        from .. import backend
        x = ops.cast(x, backend.floatx())
    if mode == "tf":
        return x / 127.5 - 1.0
    axis = _channel_axis(x, data_format)
    shape = [1] * len(x.shape)
    shape[axis] = 3
    if mode == "torch":
        mean = np.asarray(_TORCH_MEAN, dtype=x.dtype).reshape(shape)
        std = np.asarray(_TORCH_STD, dtype=x.dtype).reshape(shape)
        return (x / 255.0 - mean) / std
    idx = [slice(None)] * len(x.shape)
    channels = []
    for i in (2, 1, 0):
        idx[axis] = i
        channels.append(x[tuple(idx)])
    x = ops.stack(channels, axis=axis)
    return x - np.asarray(_CAFFE_MEAN_BGR, dtype=x.dtype).reshape(shape)


def _class_index():
    global CLASS_INDEX
    if CLASS_INDEX is None:
        with open(_CLASS_INDEX_FILE, encoding="utf-8") as f:
            CLASS_INDEX = json.load(f)
    return CLASS_INDEX


def decode_predictions(preds, top=5):
    """The ``top`` classes of each row of ImageNet predictions, as Keras's
    ``decode_predictions``: one list per sample of ``(class_name, class_description,
    score)`` tuples, best first (``('n02123045', 'tabby', 0.82)``). ``preds``: a
    ``(samples, 1000)`` array or Tensor. The class index ships with convcore (Keras
    downloads it into its cache)."""
    from ..tensor import Tensor
    if isinstance(preds, Tensor):
        preds = preds.numpy()
    elif not hasattr(preds, "shape"):
        preds = np.asarray(preds)
    if len(preds.shape) != 2 or preds.shape[1] != 1000:
        raise ValueError("`decode_predictions` expects a batch of predictions (i.e. a 2D array of shape "
                         f"(samples, 1000)). Received array with shape: {preds.shape}")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ValueError(f"decode_predictions: top must be a positive integer, received top={top!r}")
    index = _class_index()
    preds = np.asarray(preds)
    results = []
    for pred in preds:
        top_indices = pred.argsort()[-top:][::-1]
        result = [tuple(index[str(i)]) + (pred[i],) for i in top_indices]
        result.sort(key=lambda r: r[2], reverse=True)
        results.append(result)
    return results


# ---------------------------------------------------------------------- input shapes
def obtain_input_shape(input_shape, default_size, min_size, data_format, require_flatten, weights=None):
    """The model's input shape from the user's ``input_shape`` (None: the default),
    checked with Keras's rules and messages: with ImageNet weights and the top,
    only the default shape; a static shape for the top; 3 channels for ImageNet
    weights; sizes at least ``min_size``."""
    if input_shape is not None:
        try:
            input_shape = tuple(input_shape)
        except TypeError:
            raise ValueError(f"`input_shape` must be a tuple of three integers. Received: input_shape={input_shape!r}") \
                from None
    if data_format == "channels_first":
        raise ValueError("convcore's networks are channels_last only (data_format='channels_first' is not "
                         "supported)")
    if weights != "imagenet" and input_shape and len(input_shape) == 3:
        if input_shape[-1] not in {1, 3}:
            warnings.warn("This model usually expects 1 or 3 input channels. However, it was passed an "
                          f"input_shape with {input_shape[-1]} input channels.", stacklevel=3)
        default_shape = (default_size, default_size, input_shape[-1])
    else:
        default_shape = (default_size, default_size, 3)
    if weights == "imagenet" and require_flatten:
        if input_shape is not None and input_shape != default_shape:
            raise ValueError("When setting `include_top=True` and loading `imagenet` weights, `input_shape` should "
                             f"be {default_shape}.  Received: input_shape={input_shape}")
        return default_shape
    if input_shape:
        if len(input_shape) != 3:
            raise ValueError("`input_shape` must be a tuple of three integers.")
        for s in input_shape:
            if s is not None and (isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1):
                raise ValueError(f"`input_shape` must be a tuple of three positive integers (or None for a size "
                                 f"known only with the data). Received: input_shape={input_shape}")
        if input_shape[-1] != 3 and weights == "imagenet":
            raise ValueError(f"The input must have 3 channels; Received `input_shape={input_shape}`")
        if (input_shape[0] is not None and input_shape[0] < min_size) or (
                input_shape[1] is not None and input_shape[1] < min_size):
            raise ValueError(f"Input size must be at least {min_size}x{min_size}; Received: "
                             f"input_shape={input_shape}")
    else:
        input_shape = default_shape if require_flatten else (None, None, 3)
    if require_flatten and None in input_shape:
        raise ValueError("If `include_top` is True, you should specify a static `input_shape`. "
                         f"Received: input_shape={input_shape}")
    return tuple(input_shape)


def correct_pad(inputs, kernel_size):
    """The ``((top, bottom), (left, right))`` zero padding of a strided convolution
    that makes it match TensorFlow's 'same' padding, as Keras's ``correct_pad``."""
    input_size = inputs.shape[1:3]
    if isinstance(kernel_size, int):
        kernel_size = (kernel_size, kernel_size)
    if input_size[0] is None:
        adjust = (1, 1)
    else:
        adjust = (1 - input_size[0] % 2, 1 - input_size[1] % 2)
    correct = (kernel_size[0] // 2, kernel_size[1] // 2)
    return ((correct[0] - adjust[0], correct[0]), (correct[1] - adjust[1], correct[1]))


def validate_activation(classifier_activation, weights):
    """With pretrained weights only None and 'softmax' are allowed on the top layer (Keras's rule)."""
    if weights is None:
        return
    from .. import activations
    act = activations.get(classifier_activation)
    if act not in {activations.get("softmax"), activations.get(None)}:
        raise ValueError("Only `None` and `softmax` activations are allowed for the `classifier_activation` argument "
                         "when using pretrained weights, with `include_top=True`; Received: "
                         f"classifier_activation={classifier_activation}")


# ---------------------------------------------------------------------- arguments shared by the networks
def check_weights_argument(weights, include_top, classes, quote="'"):
    """Keras's two checks of ``weights`` and ``classes`` (MobileNetV2 quotes with backticks)."""
    if not (weights is None or (isinstance(weights, str) and weights == "imagenet") or _exists(weights)):
        if quote == "`":
            raise ValueError("The `weights` argument should be either `None` (random initialization), `imagenet` "
                             "(pre-training on ImageNet), or the path to the weights file to be loaded.  "
                             f"Received `weights={weights}`")
        raise ValueError("The `weights` argument should be either `None` (random initialization), 'imagenet' "
                         "(pre-training on ImageNet), or the path to the weights file to be loaded.  Received: "
                         f"weights={weights}")
    if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or classes < 1:
        raise ValueError(f"`classes` must be a positive integer. Received: classes={classes!r}")
    if weights == "imagenet" and include_top and classes != 1000:
        if quote == "`":
            raise ValueError('If using `weights="imagenet"` with `include_top` as true, `classes` should be 1000. '
                             f"Received `classes={classes}`")
        raise ValueError("If using `weights='imagenet'` with `include_top=True`, `classes` should be 1000.  "
                         f"Received classes={classes}")


def check_pooling(pooling):
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"`pooling` should be None, 'avg' or 'max'. Received: pooling={pooling!r}")


def _exists(path):
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    return isinstance(path, str) and os.path.exists(path)


def standard_input(weights, include_top, classes, pooling, input_tensor, input_shape, classifier_activation,
                   default_size=224, min_size=32):
    """The argument checks and the input of a 224x224 application (VGG, ResNet50,
    ResNet18/34), in Keras's order and with its messages: ``(img_input, inputs)``."""
    check_weights_argument(weights, include_top, classes)
    check_pooling(pooling)
    input_shape = obtain_input_shape(input_sizes(input_tensor, input_shape), default_size=default_size,
                                     min_size=min_size, data_format="channels_last", require_flatten=include_top,
                                     weights=weights)
    if include_top:
        validate_activation(classifier_activation, weights)
    return model_input(input_tensor, input_shape)


def model_input(input_tensor, input_shape):
    """The Input of a network (a new one, or the user's symbolic ``input_tensor``) and
    the inputs its Model starts from (the sources of ``input_tensor``)."""
    from ..backend import is_keras_tensor
    from ..layers import Input
    if input_tensor is None:
        img_input = Input(shape=input_shape)
        return img_input, img_input
    if not is_keras_tensor(input_tensor):
        raise ValueError("input_tensor must be a symbolic tensor of the functional API (the output of "
                         f"convcore.layers.Input(...) or of a layer called on one); received {type(input_tensor)} "
                         "(convcore's Input does not wrap a concrete tensor)")
    if len(input_tensor.shape) != 4:
        raise ValueError(f"input_tensor must be 4-D (batch, height, width, channels); received shape "
                         f"{input_tensor.shape}")
    return input_tensor, source_inputs(input_tensor)


def source_inputs(tensor):
    """The ``Input`` tensors a symbolic tensor is computed from (Keras's
    ``operation_utils.get_source_inputs``), in the order they are first reached."""
    from ..layers.core import InputLayer
    out, seen, stack = [], set(), [tensor]
    while stack:
        t = stack.pop()
        node = t.node
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node.layer, InputLayer):
            if all(o is not t for o in out):
                out.append(t)
            continue
        stack.extend(reversed(node.inputs))
    return out[0] if len(out) == 1 else out


def input_sizes(input_tensor, input_shape):
    """``input_shape`` or, when it is None, the spatial shape of a symbolic ``input_tensor`` (Keras
    derives the model's shape from the tensor in that case)."""
    if input_shape is None and input_tensor is not None and getattr(input_tensor, "shape", None) is not None \
            and len(input_tensor.shape) == 4:
        return tuple(input_tensor.shape[1:])
    return input_shape


# ---------------------------------------------------------------------- weight files
def keras_weights_path(fname, origin, file_hash=None):
    """Keras's cached weight file ``fname`` (``$KERAS_HOME/models/`` or ``~/.keras/models/``),
    used as it is when present; else downloaded from ``origin`` (hash-checked) into that
    place. Offline, the error names the URL and the path to place the file at."""
    from ..utils import file_utils
    folder = file_utils.cache_folder("models")
    path = os.path.join(folder, fname)
    if os.path.isfile(path):
        return path
    # get_file's offline error names the URL and this path already.
    return file_utils.get_file(fname, origin, cache_subdir="models", file_hash=file_hash)


def torch_home():
    """torch hub's folder: ``$TORCH_HOME``, else ``$XDG_CACHE_HOME/torch``, else
    ``~/.cache/torch`` (as ``torch.hub._get_torch_home``)."""
    return os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"),
                                                                    "torch")))


_TORCH_HASH = re.compile(r"-([a-f0-9]*)\.")


def torch_weights_path(fname, url):
    """torch hub's cached checkpoint ``fname`` (``<torch home>/hub/checkpoints/``), used
    as it is when present; else downloaded from ``url`` and checked against the sha256
    prefix in its name (torch hub's rule) before it is put in place."""
    from ..utils import file_utils
    folder = os.path.join(torch_home(), "hub", "checkpoints")
    path = os.path.join(folder, fname)
    if os.path.isfile(path):
        return path
    os.makedirs(folder, exist_ok=True)
    part = f".{fname}.unverified"
    tmp = os.path.join(folder, part)
    try:
        file_utils._download(url, tmp, None, "sha256", path)  # the offline error names `path`, not the temp
    except file_utils.DownloadError as e:
        raise file_utils.DownloadError(str(e), url, path) from None
    try:
        m = _TORCH_HASH.search(fname)
        if m and m.group(1):
            h = hashlib.sha256()
            with open(tmp, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            digest = h.hexdigest()
            if not digest.startswith(m.group(1)):
                raise ValueError(f"The file downloaded from {url} has sha256 {digest}, which does not start with "
                                 f"{m.group(1)!r} (its name's hash prefix): it was removed and nothing was saved at "
                                 f"{path}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_keras_imagenet_weights(model, fname, origin, file_hash=None):
    """Load Keras's ImageNet weight file (a legacy HDF5 weight file) into ``model``."""
    load_legacy_h5(model, keras_weights_path(fname, origin, file_hash))


def load_legacy_h5(model, path):
    """A legacy Keras HDF5 weight file into ``model``: by layer name when the file's
    layers with weights are exactly the model's (Keras's files name them as these
    networks do), else in order (Keras's ``load_weights``; ``model.layers`` follows
    Keras's order, so a file Keras wrote for the same architecture loads either way).
    Every shape is checked before anything is assigned."""
    from ..saving import legacy_h5
    with legacy_h5._Open(path) as f:
        root = legacy_h5._weights_root(f)
        saved = [n for n in legacy_h5._names(root, "layer_names", "the weights")
                 if legacy_h5._names(legacy_h5._group(root, n, f"layer {n!r}"), "weight_names", f"layer {n!r}")]
        mine = [l.name for l in model.layers if l.weights]
        by_name = sorted(saved) == sorted(mine) and len(set(mine)) == len(mine)
        legacy_h5.load_weights(model, f, by_name=by_name)


def load_weights_file(model, weights):
    """``weights=<path>``: a legacy Keras HDF5 weight file as :func:`load_legacy_h5`, any
    other file as ``model.load_weights`` reads it."""
    path = os.fspath(weights)
    lower = path.lower()
    if not lower.endswith((".weights.h5", ".keras")) and os.path.isfile(path):
        from ..saving import legacy_h5
        if legacy_h5.is_hdf5(path):
            load_legacy_h5(model, path)
            return
    model.load_weights(path)
