"""ResNet18 and ResNet34 with torchvision's architecture and weight files
(``torchvision.models.resnet18`` / ``resnet34``: BasicBlocks, the stride on the first 3x3
convolution of a stage, a 1x1 convolution + BatchNormalization as ``downsample``),
built channels-last from convcore's layers with Keras's signature.

Layer names are torchvision's module paths (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer2.0.downsample.0``, ``layer2.0.downsample.1``, ``fc``), so a torchvision state
dict maps onto the layers by name (:func:`convcore.saving.torch_format.load_torch_weights`:
``<layer>.weight`` / ``.bias`` / ``.running_mean`` / ``.running_var``); layers torch has
no module for are named beside them (``conv1_pad``, ``layer1.0.relu1``, ``layer1.0.add``).
BatchNormalization uses torch's epsilon (1e-5) and momentum (0.1, Keras's 0.9).

``weights='imagenet'`` reads torchvision's ``resnet18-f37072fd.pth`` /
``resnet34-b627a593.pth`` (IMAGENET1K_V1) from torch hub's cache
(``$TORCH_HOME/hub/checkpoints/``, else ``~/.cache/torch/hub/checkpoints/``), used as it
is when there, else downloaded from download.pytorch.org and checked against the sha256
prefix in its name. Inputs are preprocessed with :func:`preprocess_input` (torch's:
[0, 1], then ImageNet's mean / standard deviation).

Where these differ from torchvision: channels-last inputs ``(batch, 224, 224, 3)``;
the top has Keras's ``classifier_activation='softmax'`` by default (torchvision returns
logits: pass ``classifier_activation=None``); ``count_params()`` also counts the
BatchNormalization running statistics (Keras's count; torch counts parameters only:
the trainable weights here, 11,689,512 for ResNet18 and 21,797,672 for ResNet34).
"""
from __future__ import annotations

import os

from . import imagenet_utils

__all__ = ["ResNet18", "ResNet34", "preprocess_input", "decode_predictions", "WEIGHTS_URLS"]

WEIGHTS_URLS = {
    "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    "resnet34": "https://download.pytorch.org/models/resnet34-b627a593.pth",
}

_EPS = 1e-5        # torch.nn.BatchNorm2d's default
_MOMENTUM = 0.9    # torch's momentum 0.1 in Keras's convention (the weight of the old statistic)


def _bn(name):
    from .. import layers
    return layers.BatchNormalization(axis=-1, epsilon=_EPS, momentum=_MOMENTUM, name=name)


def _conv3x3(x, filters, stride, name):
    """torch's Conv2d(3x3, stride, padding=1, bias=False)."""
    from .. import layers
    if stride == 1:
        # symmetric padding of 1 is exactly 'same' at stride 1
        return layers.Conv2D(filters, 3, strides=1, padding="same", use_bias=False, name=name)(x)
    # at stride 2 'same' would pad (0, 1) on even sizes; torch pads 1 on each side
    x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    return layers.Conv2D(filters, 3, strides=stride, padding="valid", use_bias=False, name=name)(x)


def _basic_block(x, filters, stride, name):
    from .. import layers
    identity = x
    out = _conv3x3(x, filters, stride, f"{name}.conv1")
    out = _bn(f"{name}.bn1")(out)
    out = layers.ReLU(name=f"{name}.relu1")(out)
    out = _conv3x3(out, filters, 1, f"{name}.conv2")
    out = _bn(f"{name}.bn2")(out)
    if stride != 1 or x.shape[-1] != filters:
        identity = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}.downsample.0")(x)
        identity = _bn(f"{name}.downsample.1")(identity)
    out = layers.Add(name=f"{name}.add")([out, identity])
    return layers.ReLU(name=f"{name}.relu2")(out)


def _resnet(blocks, arch, include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation,
            name):
    from .. import layers
    from ..models import Model
    img_input, inputs = imagenet_utils.standard_input(weights, include_top, classes, pooling, input_tensor,
                                                      input_shape, classifier_activation)

    x = layers.ZeroPadding2D(3, name="conv1_pad")(img_input)
    x = layers.Conv2D(64, 7, strides=2, use_bias=False, name="conv1")(x)
    x = _bn("bn1")(x)
    x = layers.ReLU(name="relu")(x)
    # torch's MaxPool2d(3, 2, padding=1) pads with -inf; its input comes out of a ReLU
    # (>= 0) and every window holds at least one real value, so zero padding gives the
    # same maxima
    x = layers.ZeroPadding2D(1, name="maxpool_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="valid", name="maxpool")(x)
    for stage, (filters, n) in enumerate(zip((64, 128, 256, 512), blocks), start=1):
        for i in range(n):
            x = _basic_block(x, filters, 2 if (i == 0 and stage > 1) else 1, f"layer{stage}.{i}")

    if include_top:
        # AdaptiveAvgPool2d((1, 1)) + flatten: the Dense sees channels only, no
        # reordering of torch's (C, H, W) flatten is needed
        x = layers.GlobalAveragePooling2D(name="avgpool")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="fc")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="maxpool_global")(x)

    model = Model(inputs, x, name=name)
    if weights is not None and isinstance(weights, str) and weights == "imagenet":
        url = WEIGHTS_URLS[arch]
        path = imagenet_utils.torch_weights_path(url.rsplit("/", 1)[1], url)
        _load_torch_file(model, path, include_top)
    elif weights is not None:
        if str(weights).lower().endswith(_TORCH_SUFFIXES):
            _load_torch_file(model, weights, include_top)
        else:
            imagenet_utils.load_weights_file(model, weights)
    return model


_TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


def _load_torch_file(model, path, include_top):
    from ..saving import torch_format
    if include_top:
        torch_format.load_torch_weights(model, path)
        return
    # without the top the model has no ``fc``: the checkpoint's fc.* entries are not for it
    state = torch_format.load_state_dict(os.fspath(path))
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    torch_format.load_torch_weights(model, state)


_DOC = """The {title} network with torchvision's architecture (``torchvision.models.{arch}``;
    {params} parameters, torch's count) and Keras's signature.

    Parameters
    ----------
    include_top : bool
        Whether to include the global average pooling (``avgpool``) and the dense layer
        (``fc``).
    weights : None, 'imagenet' or a path
        None: random initialisation; 'imagenet': torchvision's IMAGENET1K_V1 weights
        (``{fname}`` from torch hub's cache, else downloaded, sha256-prefix checked); a
        path: a ``.pth`` / ``.pt`` / ``.bin`` / ``.safetensors`` state dict with
        torchvision's key names (its ``fc.*`` entries are ignored without the top), or any
        other weight file ``model.load_weights`` reads.
    input_tensor, input_shape, pooling, classes, classifier_activation, name
        As :func:`convcore.applications.VGG16` (the top needs ``(224, 224, 3)`` with
        ImageNet weights; sizes at least 32). ``classifier_activation=None`` gives
        torchvision's logits.

    Returns a functional :class:`convcore.models.Model` taking ``(batch, rows, cols, 3)``
    images preprocessed with ``resnet_torch.preprocess_input``. See the module docstring
    for where it differs from torchvision.
    """


def ResNet18(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", name="resnet18"):
    return _resnet((2, 2, 2, 2), "resnet18", include_top, weights, input_tensor, input_shape, pooling, classes,
                   classifier_activation, name)


def ResNet34(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", name="resnet34"):
    return _resnet((3, 4, 6, 3), "resnet34", include_top, weights, input_tensor, input_shape, pooling, classes,
                   classifier_activation, name)


ResNet18.__doc__ = _DOC.format(title="ResNet18", arch="resnet18", params="11,689,512", fname="resnet18-f37072fd.pth")
ResNet34.__doc__ = _DOC.format(title="ResNet34", arch="resnet34", params="21,797,672", fname="resnet34-b627a593.pth")


def preprocess_input(x, data_format=None):
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="torch")


def decode_predictions(preds, top=5):
    return imagenet_utils.decode_predictions(preds, top=top)


preprocess_input.__doc__ = imagenet_utils.PREPROCESS_INPUT_DOC.format(
    keras="keras.applications.imagenet_utils.preprocess_input(mode='torch')", mode="",
    ret=imagenet_utils._RET["torch"] + " (torchvision's ``transforms.Normalize`` of ImageNet's statistics.)")
decode_predictions.__doc__ = imagenet_utils.decode_predictions.__doc__
