"""Utilities with ``keras.utils``'s names."""
