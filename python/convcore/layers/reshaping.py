"""Reshaping layers built on :mod:`convcore.ops` (UpSampling2D)."""
from __future__ import annotations

from .. import ops
from .conv import _tuple
from .core import Layer


class UpSampling2D(Layer):
    """Repeat ('nearest') or interpolate ('bilinear') the rows and columns of
    (batch, height, width, channels) images by ``size``, as ``keras.layers.UpSampling2D``."""

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kw):
        super().__init__(**kw)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"UpSampling2D: only data_format='channels_last' is supported, got {data_format!r}")
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"UpSampling2D: interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
        self.size = _tuple("size", size, 2, "UpSampling2D")
        self.interpolation = interpolation
        self._input_rank = 3

    def compute_output_shape(self, input_shape):
        h, w, c = input_shape
        return (h * self.size[0], w * self.size[1], c)

    def call(self, inputs, training=None):
        return ops.upsample2d(inputs, self.size, self.interpolation)

    def get_config(self):
        return {**super().get_config(), "size": list(self.size), "data_format": "channels_last",
                "interpolation": self.interpolation}


__all__ = ["UpSampling2D"]
