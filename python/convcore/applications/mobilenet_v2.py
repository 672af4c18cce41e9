"""MobileNetV2 (Sandler et al., 2018) with Keras's architecture, layer names and ImageNet
weight files, as ``keras.applications.mobilenet_v2`` (``Conv1``, ``bn_Conv1``,
``expanded_conv_depthwise``, ``block_<i>_expand`` ..., ``Conv_1``, ``out_relu``,
``predictions``); inputs preprocessed to [-1, 1]."""
from __future__ import annotations

import warnings

from . import imagenet_utils

__all__ = ["MobileNetV2", "preprocess_input", "decode_predictions"]

BASE_WEIGHT_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
_SIZES = (96, 128, 160, 192, 224)  # the input sizes Keras publishes weights for


def _make_divisible(v, divisor, min_value=None):
    # the channel rounding of the reference implementation (and Keras's)
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # rounding down must not lose more than 10 %
        new_v += divisor
    return new_v


def _bn(name):
    from .. import layers
    return layers.BatchNormalization(axis=-1, epsilon=1e-3, momentum=0.999, name=name)


def _inverted_res_block(inputs, expansion, stride, alpha, filters, block_id):
    from .. import layers
    in_channels = inputs.shape[-1]
    pointwise_filters = _make_divisible(int(filters * alpha), 8)
    x = inputs
    prefix = f"block_{block_id}_"
    if block_id:
        x = layers.Conv2D(expansion * in_channels, kernel_size=1, padding="same", use_bias=False, activation=None,
                          name=f"{prefix}expand")(x)
        x = _bn(f"{prefix}expand_BN")(x)
        x = layers.ReLU(6.0, name=f"{prefix}expand_relu")(x)
    else:
        prefix = "expanded_conv_"
    if stride == 2:
        x = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, 3), name=f"{prefix}pad")(x)
    x = layers.DepthwiseConv2D(kernel_size=3, strides=stride, activation=None, use_bias=False,
                               padding="same" if stride == 1 else "valid", name=f"{prefix}depthwise")(x)
    x = _bn(f"{prefix}depthwise_BN")(x)
    x = layers.ReLU(6.0, name=f"{prefix}depthwise_relu")(x)
    x = layers.Conv2D(pointwise_filters, kernel_size=1, padding="same", use_bias=False, activation=None,
                      name=f"{prefix}project")(x)
    x = _bn(f"{prefix}project_BN")(x)
    if in_channels == pointwise_filters and stride == 1:
        return layers.Add(name=f"{prefix}add")([inputs, x])
    return x


# (filters, stride, expansion) of blocks 0-16
_BLOCKS = ((16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6), (64, 2, 6), (64, 1, 6),
           (64, 1, 6), (64, 1, 6), (96, 1, 6), (96, 1, 6), (96, 1, 6), (160, 2, 6), (160, 1, 6), (160, 1, 6),
           (320, 1, 6))


def _square_size(shape):
    if shape is None:
        return 224
    rows, cols = shape[0], shape[1]
    return rows if rows == cols and rows in _SIZES else 224


def MobileNetV2(input_shape=None, alpha=1.0, include_top=True, weights="imagenet", input_tensor=None, pooling=None,
                classes=1000, classifier_activation="softmax", name=None):
    """The MobileNetV2 network, as ``keras.applications.MobileNetV2`` (3,538,984 parameters
    with the top at ``alpha=1.0``). Keras's argument order (``input_shape`` first).

    Parameters (Keras's)
    --------------------
    input_shape : tuple, optional
        ``(rows, cols, 3)``; with ``include_top=True`` and ImageNet weights only the
        default. A square size in (96, 128, 160, 192, 224) becomes the default size (and
        picks that size's weight file); other sizes load the 224 weights with Keras's
        warning.
    alpha : float
        The width multiplier (ImageNet weights exist for 0.35, 0.5, 0.75, 1.0, 1.3, 1.4).
    include_top, weights, input_tensor, pooling, classes, classifier_activation, name
        As :func:`convcore.applications.VGG16`; ``weights='imagenet'`` reads
        ``mobilenet_v2_weights_tf_dim_ordering_tf_kernels_<alpha>_<rows>.h5`` (or
        ``..._no_top.h5``) from Keras's cache, else downloads it (Keras gives no hash for
        these files). The default name is ``mobilenetv2_<alpha>_<rows>``.

    Expects inputs preprocessed with ``mobilenet_v2.preprocess_input`` (to [-1, 1]).
    Differs from Keras: channels_last only; ``input_tensor`` must be symbolic.
    """
    from .. import layers
    from ..backend import is_keras_tensor
    from ..models import Model
    imagenet_utils.check_weights_argument(weights, include_top, classes, quote="`")
    imagenet_utils.check_pooling(pooling)
    if input_tensor is not None and not is_keras_tensor(input_tensor):
        raise ValueError(f"input_tensor is not a Keras tensor; Received `input_tensor={input_tensor}`")
    if input_shape is not None and input_tensor is not None:
        if len(input_shape) < 2 or len(input_tensor.shape) < 3 or input_tensor.shape[2] != input_shape[1]:
            raise ValueError("input_tensor.shape[2] must equal input_shape[1]; Received "
                             f"`input_tensor.shape={input_tensor.shape}`, `input_shape={input_shape}`")
    if input_shape is None and input_tensor is not None:
        default_size = _square_size(tuple(input_tensor.shape[1:3]))
    elif input_shape is None:
        default_size = 224
    else:
        default_size = _square_size(tuple(input_shape))
    input_shape = imagenet_utils.obtain_input_shape(
        imagenet_utils.input_sizes(input_tensor, input_shape), default_size=default_size, min_size=32,
        data_format="channels_last", require_flatten=include_top, weights=weights)
    rows, cols = input_shape[0], input_shape[1]
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(f"`alpha` must be a positive number. Received `alpha={alpha!r}`")
    if weights is not None and isinstance(weights, str) and weights == "imagenet":
        if alpha not in [0.35, 0.50, 0.75, 1.0, 1.3, 1.4]:
            raise ValueError("If imagenet weights are being loaded, alpha must be one of `0.35`, `0.50`, `0.75`, "
                             f"`1.0`, `1.3` or `1.4` only; Received `alpha={alpha}`")
        if rows != cols or rows not in _SIZES:
            rows = 224
            warnings.warn("`input_shape` is undefined or non-square, or `rows` is not in [96, 128, 160, 192, 224]. "
                          "Weights for input shape (224, 224) will be loaded as the default.", stacklevel=2)
    if include_top:
        imagenet_utils.validate_activation(classifier_activation, weights)
    img_input, inputs = imagenet_utils.model_input(input_tensor, input_shape)

    x = layers.Conv2D(_make_divisible(32 * alpha, 8), kernel_size=3, strides=(2, 2), padding="same", use_bias=False,
                      name="Conv1")(img_input)
    x = _bn("bn_Conv1")(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(x)
    for block_id, (filters, stride, expansion) in enumerate(_BLOCKS):
        x = _inverted_res_block(x, filters=filters, alpha=alpha, stride=stride, expansion=expansion,
                                block_id=block_id)
    last_block_filters = _make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
    x = layers.Conv2D(last_block_filters, kernel_size=1, use_bias=False, name="Conv_1")(x)
    x = _bn("Conv_1_bn")(x)
    x = layers.ReLU(6.0, name="out_relu")(x)

    if include_top:
        x = layers.GlobalAveragePooling2D()(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D()(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D()(x)

    if name is None:
        name = f"mobilenetv2_{alpha:0.2f}_{rows}"
    model = Model(inputs, x, name=name)
    if weights is not None and isinstance(weights, str) and weights == "imagenet":
        tail = ".h5" if include_top else "_no_top.h5"
        fname = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}{tail}"
        imagenet_utils.load_keras_imagenet_weights(model, fname, BASE_WEIGHT_PATH + fname)
    elif weights is not None:
        imagenet_utils.load_weights_file(model, weights)
    return model


def preprocess_input(x, data_format=None):
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds, top=5):
    return imagenet_utils.decode_predictions(preds, top=top)


preprocess_input.__doc__ = imagenet_utils.PREPROCESS_INPUT_DOC.format(
    keras="keras.applications.mobilenet_v2.preprocess_input", mode="", ret=imagenet_utils._RET["tf"])
decode_predictions.__doc__ = imagenet_utils.decode_predictions.__doc__
