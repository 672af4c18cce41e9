"""ResNet50 (He et al., 2015) with Keras's architecture, layer names and ImageNet weight
files, as ``keras.applications.resnet`` (``conv1_conv``, ``conv2_block1_0_conv`` ...,
``avg_pool``, ``predictions``); inputs preprocessed 'caffe'-style. torchvision's
ResNet18 / ResNet34 are in :mod:`convcore.applications.resnet_torch`."""
from __future__ import annotations

from . import imagenet_utils
from ._vgg import ARGS_DOC

__all__ = ["ResNet50", "preprocess_input", "decode_predictions"]

BASE_WEIGHTS_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
# Keras's md5 of the files with the top and without it
WEIGHTS_HASHES = {"resnet50": ("2cb95161c43110f7111970584f804107", "4d473c1dd8becc155b73f8504c6f6626")}

_EPS = 1.001e-5  # Keras's BatchNormalization epsilon in ResNet (the Caffe model's)


def _residual_block_v1(x, filters, kernel_size=3, stride=1, conv_shortcut=True, name=None):
    from .. import layers
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_0_bn")(shortcut)
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_1_bn")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = layers.Conv2D(filters, kernel_size, padding="same", name=f"{name}_2_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_2_bn")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name=f"{name}_3_bn")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _stack_v1(x, filters, blocks, stride1=2, name=None):
    x = _residual_block_v1(x, filters, stride=stride1, name=f"{name}_block1")
    for i in range(2, blocks + 1):
        x = _residual_block_v1(x, filters, conv_shortcut=False, name=f"{name}_block{i}")
    return x


def _resnet_v1(stacks, weights_name, include_top, weights, input_tensor, input_shape, pooling, classes,
               classifier_activation, name):
    from .. import layers
    from ..models import Model
    img_input, inputs = imagenet_utils.standard_input(weights, include_top, classes, pooling, input_tensor,
                                                      input_shape, classifier_activation)

    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(img_input)
    x = layers.Conv2D(64, 7, strides=2, use_bias=True, name="conv1_conv")(x)
    x = layers.BatchNormalization(axis=3, epsilon=_EPS, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for i, (filters, blocks) in enumerate(stacks):
        x = _stack_v1(x, filters, blocks, stride1=1 if i == 0 else 2, name=f"conv{i + 2}")

    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)

    model = Model(inputs, x, name=name)
    if weights is not None and isinstance(weights, str) and weights == "imagenet":
        suffix = "" if include_top else "_notop"
        fname = f"{weights_name}_weights_tf_dim_ordering_tf_kernels{suffix}.h5"
        imagenet_utils.load_keras_imagenet_weights(model, fname, f"{BASE_WEIGHTS_PATH}{fname}",
                                                   WEIGHTS_HASHES[weights_name][0 if include_top else 1])
    elif weights is not None:
        imagenet_utils.load_weights_file(model, weights)
    return model


def ResNet50(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", name="resnet50"):
    return _resnet_v1(((64, 3), (128, 4), (256, 6), (512, 3)), "resnet50", include_top, weights, input_tensor,
                      input_shape, pooling, classes, classifier_activation, name)


ResNet50.__doc__ = ("The ResNet50 network (v1, Keras's: the stride on the first 1x1 convolution of a stage), as "
                    "``keras.applications.ResNet50`` (25,636,712 parameters with the top).\n"
                    + ARGS_DOC.format(fname="resnet50_weights_tf_dim_ordering_tf_kernels.h5", module="resnet50")
                    .replace("the 3 fully-connected layers", "the global average pooling and the dense layer"))


def preprocess_input(x, data_format=None):
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")


def decode_predictions(preds, top=5):
    return imagenet_utils.decode_predictions(preds, top=top)


preprocess_input.__doc__ = imagenet_utils.PREPROCESS_INPUT_DOC.format(
    keras="keras.applications.resnet.preprocess_input", mode="", ret=imagenet_utils._RET["caffe"])
decode_predictions.__doc__ = imagenet_utils.decode_predictions.__doc__
