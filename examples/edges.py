"""Edges: Sobel x / y, gradient magnitude, and directional edges at 0, 45, 90, 135 degrees.

    python examples/edges.py [OUTDIR]        (default OUTDIR: examples/output/)

The image is the photo of Grace Hopper that ships with matplotlib
(``matplotlib.cbook.get_sample_data('grace_hopper.jpg')``, no download), in grey and
halved with ``convcore.avg_pool``; if it is missing, a mosaic of the shipped MNIST
digits is used instead. Filters:
``ndimage.sobel(img, axis=1)`` (x, along columns: vertical edges),
``ndimage.sobel(img, axis=0)`` (y, along rows: horizontal edges), their magnitude, and
``ndimage.edge_filter(img, angle)`` (the Sobel derivative along any direction, y pointing
up). Prints consistency checks and the mean absolute response per angle; writes
``edges.png``.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

from convcore import avg_pool, ndimage
from convcore.datasets import mnist10k

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output")


def load_grey():
    """A grey float32 image in [0, 1]: matplotlib's sample photo, or a digit mosaic."""
    try:
        from matplotlib import cbook
        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        rgb = plt.imread(path).astype(np.float32) / 255.0
        grey = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601 luma
        # Halve the resolution with 2x2 average pooling: the panels are drawn about
        # 250 pixels wide, and the edges of the half-size photo are easier to see.
        grey = avg_pool(grey, (2, 2))
        return grey, "grace_hopper.jpg (matplotlib sample data), 2x2 average-pooled"
    except Exception as e:  # sample data not installed, or no JPEG reader
        (_, _), (x, _) = mnist10k.load_data()
        m = (x[:48].astype(np.float32) / 255.0).reshape(6, 8, 28, 28).transpose(0, 2, 1, 3).reshape(168, 224)
        return m, f"MNIST digit mosaic (photo unavailable: {e})"


def main(argv):
    outdir = argv[0] if argv else DEFAULT_OUT
    os.makedirs(outdir, exist_ok=True)
    img, source = load_grey()
    print(f"image: {source}, {img.shape[0]}x{img.shape[1]}, grey")

    t0 = time.perf_counter()
    gx = ndimage.sobel(img, axis=1)          # d/dx, x along columns
    gy = ndimage.sobel(img, axis=0)          # d/d(row), rows go down
    mag = np.hypot(gx, gy)
    angles = (0, 45, 90, 135)
    directional = {a: ndimage.edge_filter(img, a) for a in angles}
    ms = (time.perf_counter() - t0) * 1e3
    print(f"Sobel x, Sobel y, magnitude and 4 directional filters: {ms:.1f} ms")

    # edge_filter(a) = cos(a) * d/dx + sin(a) * d/dy with y pointing up (= -d/d(row)).
    kx, _ = ndimage.sobel_kernels(np.float32)
    checks = {
        "edge_filter(0) vs sobel(axis=1)": np.abs(directional[0] - gx).max(),
        "edge_filter(90) vs -sobel(axis=0)": np.abs(directional[90] + gy).max(),
        "edge_filter(45) vs (gx - gy)/sqrt2": np.abs(directional[45] - (gx - gy) / np.sqrt(2)).max(),
        "correlate(img, kx) vs sobel(axis=1)": np.abs(ndimage.correlate(img, kx) - gx).max(),
    }
    print("consistency (max abs difference):")
    for k, v in checks.items():
        print(f"  {k:38s} {v:.2e}")
    print("mean |response|:")
    print(f"  {'Sobel magnitude':16s} {mag.mean():.4f}")
    for a in angles:
        print(f"  {f'{a} degrees':16s} {np.abs(directional[a]).mean():.4f}")

    panels = [("image", img, "gray"), ("Sobel x (axis=1)", gx, "signed"), ("Sobel y (axis=0)", gy, "signed"),
              ("magnitude", mag, "gray")]
    panels += [(f"edge_filter {a}°", directional[a], "signed") for a in angles]
    fig, axes = plt.subplots(2, 4, figsize=(10, 6.9))
    for ax, (title, a, kind) in zip(axes.ravel(), panels):
        if kind == "signed":
            v = float(np.percentile(np.abs(a), 99.5)) or 1.0
            ax.imshow(a, cmap="RdBu_r", vmin=-v, vmax=v)
        elif title == "magnitude":
            ax.imshow(a, cmap="gray_r", vmax=float(np.percentile(a, 99.5)))
        else:
            ax.imshow(a, cmap="gray")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.suptitle("Sobel and directional edges (red: positive, blue: negative)", fontsize=11)
    fig.tight_layout()
    p = os.path.join(outdir, "edges.png")
    fig.savefig(p, dpi=100)
    plt.close(fig)
    print(f"\nfigure:\n  {p}")


if __name__ == "__main__":
    main(sys.argv[1:])
