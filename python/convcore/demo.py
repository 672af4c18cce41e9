"""The course's filtering story on real handwritten digits: smoothing with uniform and
Gaussian kernels, Sobel and directional edges, max/average pooling, and finding a digit
in a mosaic by normalized cross-correlation. Run with ``python -m convcore demo``.

The digits ship with the package (10,000 MNIST digits, MIT licence in ``data/``). With
matplotlib installed (``pip install convcore[demo]``) the figures are annotated panels;
without it, each panel is written as its own PNG.
"""
from __future__ import annotations

import os
import time
from importlib import resources

import numpy as np

from . import ndimage, pooling
from ._png import write_png


def load_digits():
    """The shipped digits as (x uint8 (10000, 28, 28), y uint8 (10000,))."""
    with resources.files("convcore").joinpath("data/mnist10k.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as z:
            return z["x"], z["y"]


def mosaic(x, rows, cols):
    """Tile rows*cols digits into one float image in [0, 1]."""
    d = x[: rows * cols].astype(np.float32) / 255.0
    return d.reshape(rows, cols, 28, 28).transpose(0, 2, 1, 3).reshape(rows * 28, cols * 28)


def run(outdir: str = "convcore-demo") -> dict:
    os.makedirs(outdir, exist_ok=True)
    x, y = load_digits()
    img = mosaic(x, 6, 8)  # 168 x 224 real digits
    rng = np.random.default_rng(0)
    noisy = (img + rng.normal(0, 0.25, img.shape)).astype(np.float32)

    t0 = time.perf_counter()
    panels = {
        "original": img,
        "noisy": noisy,
        "uniform_5x5": ndimage.correlate(noisy, ndimage.uniform_kernel(5).astype(np.float32)),
        "gaussian_sigma1.5": ndimage.gaussian_filter(noisy, 1.5),
        "sobel_x": ndimage.sobel(img, axis=1),
        "sobel_y": ndimage.sobel(img, axis=0),
        "sobel_magnitude": np.hypot(ndimage.sobel(img, axis=1), ndimage.sobel(img, axis=0)),
        "edges_45deg": ndimage.edge_filter(img, 45),
        "max_pool_2x2": pooling.max_pool(img, (2, 2)),
        "avg_pool_2x2": pooling.avg_pool(img, (2, 2)),
    }
    # Pattern matching: cut one digit out of the mosaic and find it again.
    r, c = 3, 5
    template = img[r * 28:(r + 1) * 28, c * 28:(c + 1) * 28]
    score = ndimage.match_template(img, template)
    found = np.unravel_index(int(np.argmax(score)), score.shape)
    panels["template"] = template
    panels["match_score"] = score
    elapsed = time.perf_counter() - t0

    # Noise left after smoothing: the Gaussian keeps strokes sharper for similar noise.
    err = {k: float(np.sqrt(np.mean((panels[k] - img) ** 2))) for k in ("noisy", "uniform_5x5", "gaussian_sigma1.5")}

    files = _save(outdir, panels, found, template.shape)
    print(f"convcore filtering demo on {img.shape[0]}x{img.shape[1]} real MNIST digits ({elapsed * 1e3:.1f} ms of filtering)")
    for k, v in err.items():
        print(f"  RMS error vs clean image, {k:18s}: {v:.3f}")
    print(f"  template cut at ({r * 28}, {c * 28}), best match at {tuple(int(v) for v in found)}, score {score.max():.3f}")
    print(f"  figures written to {os.path.abspath(outdir)}:")
    for f in files:
        print(f"    {f}")
    return {"found": tuple(int(v) for v in found), "expected": (r * 28, c * 28), "rms": err, "files": files}


def _save(outdir, panels, found, tshape):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        files = []
        for name, a in panels.items():
            p = os.path.join(outdir, f"{name}.png")
            write_png(p, a, scale=2)
            files.append(p)
        print("  (matplotlib not installed: wrote one PNG per panel; `pip install convcore[demo]` for figures)")
        return files

    files = []
    groups = {
        "smoothing.png": ["original", "noisy", "uniform_5x5", "gaussian_sigma1.5"],
        "edges.png": ["original", "sobel_x", "sobel_y", "sobel_magnitude", "edges_45deg"],
        "pooling.png": ["original", "max_pool_2x2", "avg_pool_2x2"],
        "matching.png": ["original", "template", "match_score"],
    }
    for fname, names in groups.items():
        fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2))
        for ax, name in zip(axes, names):
            a = panels[name]
            if name in ("sobel_x", "sobel_y", "edges_45deg"):
                m = float(np.abs(a).max()) or 1.0
                ax.imshow(a, cmap="RdBu_r", vmin=-m, vmax=m)  # signed response
            else:
                ax.imshow(a, cmap="gray")
            ax.set_title(name.replace("_", " "))
            ax.axis("off")
            if fname == "matching.png" and name == "original":
                from matplotlib.patches import Rectangle
                ax.add_patch(Rectangle((found[1] - 0.5, found[0] - 0.5), tshape[1], tshape[0],
                                       fill=False, edgecolor="red", linewidth=2))
        fig.tight_layout()
        p = os.path.join(outdir, fname)
        fig.savefig(p, dpi=100)
        plt.close(fig)
        files.append(p)
    return files
