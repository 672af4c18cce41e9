"""The VGG architecture shared by :mod:`vgg16` and :mod:`vgg19` (Keras's layers and names:
``block<b>_conv<i>``, ``block<b>_pool``, ``flatten``, ``fc1``, ``fc2``, ``predictions``)."""
from __future__ import annotations

from . import imagenet_utils

_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/"


def build_vgg(convs_per_block, weights_name, hashes, include_top, weights, input_tensor, input_shape, pooling,
              classes, classifier_activation, name):
    from .. import layers
    from ..models import Model
    img_input, inputs = imagenet_utils.standard_input(weights, include_top, classes, pooling, input_tensor,
                                                      input_shape, classifier_activation)

    x = img_input
    for block, (filters, n) in enumerate(zip((64, 128, 256, 512, 512), convs_per_block), start=1):
        for i in range(1, n + 1):
            x = layers.Conv2D(filters, (3, 3), activation="relu", padding="same", name=f"block{block}_conv{i}")(x)
        x = layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool")(x)

    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D()(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D()(x)

    model = Model(inputs, x, name=name)
    if weights is not None and isinstance(weights, str) and weights == "imagenet":
        if include_top:
            fname = f"{weights_name}_weights_tf_dim_ordering_tf_kernels.h5"
            file_hash = hashes[0]
        else:
            fname = f"{weights_name}_weights_tf_dim_ordering_tf_kernels_notop.h5"
            file_hash = hashes[1]
        imagenet_utils.load_keras_imagenet_weights(model, fname, f"{_BASE}{weights_name}/{fname}", file_hash)
    elif weights is not None:
        imagenet_utils.load_weights_file(model, weights)
    return model


ARGS_DOC = """
    Parameters (Keras's)
    --------------------
    include_top : bool
        Whether to include the 3 fully-connected layers at the top of the network.
    weights : None, 'imagenet' or a path
        None: random initialisation; 'imagenet': Keras's ImageNet weights, the file
        ``{fname}`` (or ``..._notop.h5``) from Keras's cache (``$KERAS_HOME/models/`` or
        ``~/.keras/models/``), used as it is when there, else downloaded from Keras's URL
        (md5-checked); a path: any weight file ``model.load_weights`` reads.
    input_tensor : a symbolic tensor, optional
        The output of ``Input()`` (or of layers on one) to use as the image input.
    input_shape : tuple, optional
        Only with ``include_top=False`` (the top needs ``(224, 224, 3)``): 3 channels for
        ImageNet weights, height and width at least 32, e.g. ``(200, 200, 3)``; None
        sizes make a fully convolutional network.
    pooling : None, 'avg' or 'max'
        With ``include_top=False``: the 4-D output of the last block (None), or its
        global average / max pooling (a 2-D output).
    classes : int
        Classes of the top layer (1000 with ImageNet weights).
    classifier_activation : str, callable or None
        The top layer's activation (None: logits); with pretrained weights only None or
        'softmax'.
    name : str
        The model's name.

    Returns a functional :class:`convcore.models.Model`. Expects inputs preprocessed with
    ``{module}.preprocess_input`` (caffe: RGB -> BGR, ImageNet's mean subtracted).
    Differs from Keras: channels_last only; ``input_tensor`` must be symbolic.
"""
