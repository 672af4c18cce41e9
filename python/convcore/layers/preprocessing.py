"""Preprocessing layers (rescaling, resizing, cropping, normalization with ``adapt``),
as ``keras.layers``' preprocessing family."""
from __future__ import annotations

__all__: list = []
