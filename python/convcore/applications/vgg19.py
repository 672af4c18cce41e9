"""VGG19 (Simonyan & Zisserman, 2015) with Keras's architecture, layer names and ImageNet
weight files, as ``keras.applications.vgg19``; inputs preprocessed 'caffe'-style."""
from __future__ import annotations

from . import imagenet_utils
from ._vgg import ARGS_DOC, build_vgg

__all__ = ["VGG19", "preprocess_input", "decode_predictions"]

WEIGHTS_PATH = ("https://storage.googleapis.com/tensorflow/keras-applications/"
                "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels.h5")
WEIGHTS_PATH_NO_TOP = ("https://storage.googleapis.com/tensorflow/keras-applications/"
                       "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
# Keras's md5 of the two files (with the top, without it)
WEIGHTS_HASHES = ("cbe5617147190e668d6c5d5026f83318", "253f8cb515780f3b799900260a226db6")


def VGG19(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
          classifier_activation="softmax", name="vgg19"):
    return build_vgg((2, 2, 4, 4, 4), "vgg19", WEIGHTS_HASHES, include_top, weights, input_tensor, input_shape,
                     pooling, classes, classifier_activation, name)


VGG19.__doc__ = ("The VGG19 network, as ``keras.applications.VGG19`` (143,667,240 parameters with the top).\n"
                 + ARGS_DOC.format(fname="vgg19_weights_tf_dim_ordering_tf_kernels.h5", module="vgg19"))


def preprocess_input(x, data_format=None):
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")


def decode_predictions(preds, top=5):
    return imagenet_utils.decode_predictions(preds, top=top)


preprocess_input.__doc__ = imagenet_utils.PREPROCESS_INPUT_DOC.format(
    keras="keras.applications.vgg19.preprocess_input", mode="", ret=imagenet_utils._RET["caffe"])
decode_predictions.__doc__ = imagenet_utils.decode_predictions.__doc__
