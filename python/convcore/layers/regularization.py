"""Regularization layers (noise and dropout variants, activity regularization), as
``keras.layers``' regularization family."""
from __future__ import annotations

__all__: list = []
