"""VGG16 (Simonyan & Zisserman, 2015) with Keras's architecture, layer names and ImageNet
weight files, as ``keras.applications.vgg16``; inputs preprocessed 'caffe'-style."""
from __future__ import annotations

from . import imagenet_utils
from ._vgg import ARGS_DOC, build_vgg

__all__ = ["VGG16", "preprocess_input", "decode_predictions"]

WEIGHTS_PATH = ("https://storage.googleapis.com/tensorflow/keras-applications/"
                "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5")
WEIGHTS_PATH_NO_TOP = ("https://storage.googleapis.com/tensorflow/keras-applications/"
                       "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
# Keras's md5 of the two files (with the top, without it)
WEIGHTS_HASHES = ("64373286793e3c8b2b4e3219cbf3544b", "6d6bbae143d832006294945121d1f1fc")


def VGG16(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
          classifier_activation="softmax", name="vgg16"):
    return build_vgg((2, 2, 3, 3, 3), "vgg16", WEIGHTS_HASHES, include_top, weights, input_tensor, input_shape,
                     pooling, classes, classifier_activation, name)


VGG16.__doc__ = ("The VGG16 network, as ``keras.applications.VGG16`` (138,357,544 parameters with the top).\n"
                 + ARGS_DOC.format(fname="vgg16_weights_tf_dim_ordering_tf_kernels.h5", module="vgg16"))


def preprocess_input(x, data_format=None):
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")


def decode_predictions(preds, top=5):
    return imagenet_utils.decode_predictions(preds, top=top)


preprocess_input.__doc__ = imagenet_utils.PREPROCESS_INPUT_DOC.format(
    keras="keras.applications.vgg16.preprocess_input", mode="", ret=imagenet_utils._RET["caffe"])
decode_predictions.__doc__ = imagenet_utils.decode_predictions.__doc__
