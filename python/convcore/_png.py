"""A tiny PNG writer (zlib + struct), so the demo writes images without matplotlib."""
from __future__ import annotations

import struct
import zlib

import numpy as np


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def write_png(path, image, scale: int = 1) -> None:
    """Write a 2-D array (greyscale) or (H, W, 3) array (RGB) as an 8-bit PNG.

    Values are mapped linearly from [min, max] to [0, 255]; ``scale`` repeats pixels.
    """
    a = np.asarray(image, dtype=np.float64)
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    a = np.zeros_like(a) if hi <= lo else (a - lo) / (hi - lo)
    u8 = np.clip(np.nan_to_num(a) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if scale > 1:
        u8 = u8.repeat(scale, axis=0).repeat(scale, axis=1)
    if u8.ndim == 2:
        color, rows = 0, u8
    elif u8.ndim == 3 and u8.shape[2] == 3:
        color, rows = 2, u8.reshape(u8.shape[0], -1)
    else:
        raise ValueError(f"write_png: expected (H, W) or (H, W, 3), got shape {u8.shape}")
    h, w = u8.shape[:2]
    raw = b"".join(b"\x00" + rows[i].tobytes() for i in range(h))
    png = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
           + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)
