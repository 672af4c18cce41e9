"""Activation layers with their own arguments (LeakyReLU, PReLU, ELU, ...), as
``keras.layers``' activations family."""
from __future__ import annotations

__all__: list = []
