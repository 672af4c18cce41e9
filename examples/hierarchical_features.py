"""Hierarchical features: an edge detector followed by a vertical-line matcher.

    python examples/hierarchical_features.py [OUTDIR]     (default OUTDIR: examples/output/)

Two layers of hand-made filters, as in the course, on the 10,000 shipped MNIST digits:

1. edges: the Sobel x kernel (``ndimage.sobel_kernels``) correlated with each digit.
   A vertical stroke gives a positive response on its left edge (dark to bright) and
   a negative one on its right edge.
2. vertical lines: a 7 x 6 kernel that is +1 down its first column and -1 down its last
   one, correlated with the edge map: it fires where a left edge and a right edge run
   side by side for several rows, i.e. on a vertical stroke. A ReLU with a small
   threshold keeps the strong matches.

The feature is the mean response over the image divided by the mean ink of the digit
(so thick or big digits do not score higher just for having more ink). Digits with
vertical strokes (1, 4, 7) should score higher than round ones (0, 6, 8). All 10,000
digits are filtered in one call per layer: the stack (N, 28, 28) is correlated with a
(1, kh, kw) kernel, so no filter crosses from one digit into the next.

Prints the per-class median of the feature, the ROC AUC of "vertical vs round" and the
accuracy of the best single threshold; writes ``hierarchical_features.png``.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

from convcore import ndimage
from convcore.datasets import mnist10k

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output")
VERTICAL, ROUND = (1, 4, 7), (0, 6, 8)


def line_kernel(length=7, gap=5):
    """+1/length down column 0, -1/length down column ``gap``: a left edge and a right
    edge ``gap`` pixels apart, i.e. a vertical stroke a few pixels wide."""
    k = np.zeros((length, gap + 1), dtype=np.float32)
    k[:, 0] = 1.0 / length
    k[:, gap] = -1.0 / length
    return k


def auc(pos, neg):
    """P(feature of a random positive > feature of a random negative) (Mann-Whitney)."""
    ranks = np.concatenate([pos, neg]).argsort(kind="stable").argsort() + 1.0
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def main(argv):
    outdir = argv[0] if argv else DEFAULT_OUT
    os.makedirs(outdir, exist_ok=True)
    (xtr, ytr), (xts, yts) = mnist10k.load_data()
    x = np.concatenate([xtr, xts]).astype(np.float32) / 255.0     # (10000, 28, 28)
    y = np.concatenate([ytr, yts])

    kx, _ = ndimage.sobel_kernels(np.float32)
    kline = line_kernel()
    t0 = time.perf_counter()
    edges = ndimage.correlate(x, kx[None])                          # layer 1: Sobel x
    lines = ndimage.correlate(edges, kline[None], mode="constant")  # layer 2: vertical-line matcher
    act = np.maximum(lines - 0.5, 0.0)                              # ReLU with threshold 0.5
    feature = act.mean(axis=(1, 2)) / (x.mean(axis=(1, 2)) + 1e-6)
    ms = (time.perf_counter() - t0) * 1e3
    print(f"{len(x)} digits: Sobel x -> 7x6 vertical-line matcher -> ReLU -> mean / ink ({ms:.0f} ms)")

    print("median feature per class:")
    print("  " + "  ".join(f"{c}:{np.median(feature[y == c]):.2f}" for c in range(10)))
    v, r = np.isin(y, VERTICAL), np.isin(y, ROUND)
    a = auc(feature[v], feature[r])
    thr = np.sort(feature[v | r])
    accs = [(np.mean((feature[v | r] > t) == v[v | r]), t) for t in thr[::10]]
    best_acc, best_t = max(accs)
    print(f"vertical {VERTICAL} vs round {ROUND}: {v.sum()} vs {r.sum()} digits")
    print(f"  ROC AUC {a:.3f}; best single threshold {best_t:.2f} classifies {best_acc:.1%} correctly")
    for d in VERTICAL:
        print(f"  {d} vs round: AUC {auc(feature[y == d], feature[r]):.3f}")

    # Figure: the pipeline on one '1' and one '0', and the histogram per class.
    fig = plt.figure(figsize=(11, 6))
    gs = fig.add_gridspec(2, 5, width_ratios=[1, 1, 1, 0.6, 3.2])
    examples = [int(np.flatnonzero(y == 1)[0]), int(np.flatnonzero(y == 0)[0])]
    for row, i in enumerate(examples):
        for col, (im, title, cmap) in enumerate(((x[i], f"digit {y[i]}", "gray"),
                                                 (edges[i], "Sobel x", "RdBu_r"),
                                                 (act[i], "line matcher\n(ReLU)", "magma"))):
            ax = fig.add_subplot(gs[row, col])
            if cmap == "RdBu_r":
                m = float(np.abs(im).max()) or 1.0
                ax.imshow(im, cmap=cmap, vmin=-m, vmax=m)
            else:
                ax.imshow(im, cmap=cmap, vmax=None if cmap == "gray" else float(act[examples].max()))
            ax.set_title(title + (f"\nfeature {feature[i]:.2f}" if col == 2 else ""), fontsize=9)
            ax.axis("off")
    ax = fig.add_subplot(gs[0, 3])
    ax.imshow(kline, cmap="RdBu_r", vmin=-kline.max(), vmax=kline.max())
    ax.set_title("line kernel\n7x6", fontsize=9)
    ax.axis("off")
    ax = fig.add_subplot(gs[:, 4])
    bins = np.linspace(0, np.percentile(feature[v | r], 99.5), 40)
    for d in VERTICAL:
        ax.hist(feature[y == d], bins=bins, histtype="step", lw=1.8, label=f"{d} (vertical)")
    for d in ROUND:
        ax.hist(feature[y == d], bins=bins, histtype="stepfilled", alpha=0.35, label=f"{d} (round)")
    ax.axvline(best_t, color="k", ls="--", lw=1, label=f"threshold {best_t:.2f}")
    ax.set_xlabel("mean vertical-line response / mean ink")
    ax.set_ylabel("digits")
    ax.set_title(f"vertical vs round: ROC AUC {a:.3f}\nbest threshold: {best_acc:.1%} correct", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = os.path.join(outdir, "hierarchical_features.png")
    fig.savefig(p, dpi=100)
    plt.close(fig)
    print(f"\nfigure:\n  {p}")


if __name__ == "__main__":
    main(sys.argv[1:])
