"""``keras.applications.resnet50``'s path: :func:`ResNet50` and its ``preprocess_input``
('caffe') / ``decode_predictions``, from :mod:`convcore.applications.resnet`."""
from __future__ import annotations

from .resnet import ResNet50, decode_predictions, preprocess_input

__all__ = ["ResNet50", "preprocess_input", "decode_predictions"]
