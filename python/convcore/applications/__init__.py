"""Pretrained networks with ``keras.applications``'s names: ``VGG16``, ``VGG19``,
``ResNet50``, ``MobileNetV2`` (Keras's architectures, layer names and ImageNet weight
files) and ``ResNet18``, ``ResNet34`` (torchvision's architecture and weight files, layer
names equal to torchvision's module paths). Each module has its own
``preprocess_input`` and ``decode_predictions`` (``convcore.applications.vgg16.preprocess_input``);
:mod:`imagenet_utils` holds the shared ones. The ImageNet class index ships in
``applications/data/`` (Keras's file; its source and licence are beside it).

``weights='imagenet'`` uses the file in Keras's cache (``~/.keras/models/``,
``$KERAS_HOME``) or torch hub's (``~/.cache/torch/hub/checkpoints/``, ``$TORCH_HOME``)
as it is, and downloads it (hash-checked) only when it is not there.
"""
from __future__ import annotations

from . import imagenet_utils, mobilenet_v2, resnet, resnet50, resnet_torch, vgg16, vgg19
from .mobilenet_v2 import MobileNetV2
from .resnet import ResNet50
from .resnet_torch import ResNet18, ResNet34
from .vgg16 import VGG16
from .vgg19 import VGG19

__all__ = ["VGG16", "VGG19", "ResNet50", "MobileNetV2", "ResNet18", "ResNet34", "imagenet_utils", "vgg16", "vgg19",
           "resnet", "resnet50", "mobilenet_v2", "resnet_torch"]
