"""Pattern matching in a colour image: normalized cross-correlation vs raw correlation.

    python examples/pattern_matching.py [OUTDIR]        (default OUTDIR: examples/output/)

A k x k x 3 patch (Grace Hopper's left eye) is cut out of matplotlib's colour sample
photo (``grace_hopper.jpg``, shipped with matplotlib; a tinted MNIST mosaic if it is
missing) and searched for over the whole (H, W, 3) image in two ways:

* ``ndimage.match_template(image, patch)``: normalized cross-correlation, scores in
  [-1, 1], shape (H-k+1, W-k+1, 1); the true position scores 1.
* ``convcore.correlate(image, patch, mode='valid')``: the raw 3-D correlation, same
  shape; it grows with the brightness of the window, so its peak lands on the
  brightest region rather than on the pattern.

Prints the true position and the position each score map finds; writes
``pattern_matching.png``.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

import convcore
from convcore import ndimage
from convcore.datasets import mnist10k

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output")


def load_colour():
    """(image float32 (H, W, 3) in [0, 1], description, patch corner, patch size)."""
    try:
        from matplotlib import cbook
        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        img = plt.imread(path).astype(np.float32) / 255.0
        return img[..., :3], "grace_hopper.jpg (matplotlib sample data)", (170, 180), 48
    except Exception as e:
        (_, _), (x, _) = mnist10k.load_data()
        rng = np.random.default_rng(0)
        d = x[:48].astype(np.float32) / 255.0
        tint = rng.uniform(0.3, 1.0, size=(48, 1, 1, 3)).astype(np.float32)
        c = (d[..., None] * tint).reshape(6, 8, 28, 28, 3).transpose(0, 2, 1, 3, 4).reshape(168, 224, 3)
        return c, f"tinted MNIST mosaic (photo unavailable: {e})", (3 * 28, 5 * 28), 28


def main(argv):
    outdir = argv[0] if argv else DEFAULT_OUT
    os.makedirs(outdir, exist_ok=True)
    img, source, (r, c), k = load_colour()
    patch = img[r:r + k, c:c + k, :].copy()
    print(f"image: {source}, shape {img.shape}; pattern: {patch.shape} cut at (row {r}, col {c})")

    t0 = time.perf_counter()
    ncc = ndimage.match_template(img, patch)                  # (H-k+1, W-k+1, 1)
    t_ncc = time.perf_counter() - t0
    t0 = time.perf_counter()
    raw = convcore.correlate(img, patch, mode="valid")        # (H-k+1, W-k+1, 1)
    t_raw = time.perf_counter() - t0
    ncc2, raw2 = ncc[..., 0], raw[..., 0]
    f_ncc = tuple(int(v) for v in np.unravel_index(int(np.argmax(ncc2)), ncc2.shape))
    f_raw = tuple(int(v) for v in np.unravel_index(int(np.argmax(raw2)), raw2.shape))

    print(f"match_template score map: shape {ncc.shape}, {t_ncc * 1e3:.0f} ms")
    print(f"raw correlation map     : shape {raw.shape}, {t_raw * 1e3:.0f} ms "
          f"(method {convcore.signal.choose_conv_method(img, patch, mode='valid')!r})")
    print(f"true position                  : {(r, c)}")
    print(f"found by match_template        : {f_ncc}  score {ncc2[f_ncc]:.4f}  "
          f"({'correct' if f_ncc == (r, c) else 'WRONG'})")
    print(f"found by raw correlation       : {f_raw}  score {raw2[f_raw]:.1f} "
          f"vs {raw2[r, c]:.1f} at the true position ({'correct' if f_raw == (r, c) else 'wrong'})")
    second = ncc2.copy()
    second[max(0, r - k // 2):r + k // 2, max(0, c - k // 2):c + k // 2] = -1
    print(f"match_template, best score away from the true position: {second.max():.4f}")

    fig, axes = plt.subplots(1, 4, figsize=(13, 4.2), gridspec_kw={"width_ratios": [0.45, 1, 1, 1]})
    axes[0].imshow(patch)
    axes[0].set_title(f"pattern {k}x{k}x3")
    axes[1].imshow(img)
    for (rr, cc), col, lab in (((r, c), "lime", "true"), (f_ncc, "red", "match_template"),
                               (f_raw, "yellow", "raw correlation")):
        ls = ":" if lab == "true" else "-"
        axes[1].add_patch(Rectangle((cc - 0.5, rr - 0.5), k, k, fill=False, edgecolor=col, lw=2, ls=ls, label=lab))
    axes[1].legend(loc="lower left", fontsize=7, framealpha=0.8)
    axes[1].set_title("image and boxes found")
    im2 = axes[2].imshow(ncc2, cmap="RdBu_r", vmin=-1, vmax=1)
    axes[2].plot(f_ncc[1], f_ncc[0], "o", mfc="none", mec="k", ms=12)
    axes[2].set_title("match_template (NCC)")
    fig.colorbar(im2, ax=axes[2], fraction=0.046)
    im3 = axes[3].imshow(raw2, cmap="viridis")
    axes[3].plot(f_raw[1], f_raw[0], "o", mfc="none", mec="r", ms=12)
    axes[3].set_title("raw correlate(image, pattern, 'valid')")
    fig.colorbar(im3, ax=axes[3], fraction=0.046)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    p = os.path.join(outdir, "pattern_matching.png")
    fig.savefig(p, dpi=100)
    plt.close(fig)
    print(f"\nfigure:\n  {p}")


if __name__ == "__main__":
    main(sys.argv[1:])
