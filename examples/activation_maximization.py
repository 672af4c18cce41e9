"""Activation maximization: the inputs that units of the trained convnet would most like to see.

    python examples/activation_maximization.py [OUTDIR] [--quick]   (default OUTDIR: examples/output/)

Loads ``OUTDIR/convnet.convcore`` (written by ``mnist_convnet.py``); if it is missing,
trains the same convnet for 3 epochs first (not saved). Then, with
``inspect.maximize_activation`` (gradient ascent on the input, 200 steps):

* 8 channels of ``conv2`` and the 10 output classes, each without regularizers (plain
  ascent) and with them (``l2``, total variation ``tv``, a Gaussian blur every 4 steps,
  1-pixel ``jitter``, pixels clipped to [0, 1]), all starting from the mean training
  digit (from the default start, faint noise around 0, most ReLU channels of conv2 are
  0 with a zero gradient and the ascent never moves); writes ``activation_maximization.png``
  (the images) and ``activation_traces.png`` (the unit's activation at each step);
* ``inspect.top_activating``: the 9 test digits that excite one ``conv2`` channel
  most, beside the image that maximizes it; writes ``top_activating.png``.

Prints the final activation of every unit, plain and regularized, and the model's
softmax probability for each maximized class image.

``--quick`` (for the tests, a few seconds): 40 steps, 4 channels and 4 classes; uses
``convnet.convcore`` or ``convnet-quick.convcore`` if either is in OUTDIR, else trains
1 epoch on 2,000 digits and saves ``convnet-quick.convcore``.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

import convcore
from _shared import parse, get_model
from convcore import inspect, mnist_demo





PLAIN = dict(l2=0.0)
REGULARIZED = dict(l2=1e-3, tv=1e-3, blur_every=4, blur_sigma=0.5, jitter=1, value_range=(0.0, 1.0))


def main(argv):
    outdir, quick = parse(argv)
    os.makedirs(outdir, exist_ok=True)
    (xtr, ytr), (xts, yts) = mnist_demo.load_scaled()
    model = get_model(outdir, quick, xtr, ytr)
    _, acc = model.evaluate(xts, yts, verbose=0)
    print(f"model test accuracy: {acc:.4f}")

    steps = 40 if quick else 200
    units = list(range(4 if quick else 8))
    classes = list(range(4 if quick else 10))
    # Start every ascent from the mean training digit: from the default start (faint
    # noise around 0) most conv2 channels output 0 after their ReLU, their gradient is 0
    # and the ascent never moves.
    x0 = xtr.mean(axis=0)
    print(f"\nmaximize_activation from the mean training digit, {steps} steps, lr 0.05; "
          f"plain = {PLAIN}, regularized = {REGULARIZED}")
    t0 = time.perf_counter()
    results = {}  # (layer, unit, kind) -> (image, trace)
    for layer, us in (("conv2", units), ("output", classes)):
        for u in us:
            for kind, kw in (("plain", PLAIN), ("regularized", REGULARIZED)):
                results[layer, u, kind] = inspect.maximize_activation(model, layer, u, steps=steps, lr=0.05,
                                                                      seed=u, x0=x0, **kw)
    print(f"({len(results)} optimizations in {time.perf_counter() - t0:.1f} s)")

    print("final mean activation of each conv2 channel (start -> end):")
    for u in units:
        p, r = results["conv2", u, "plain"][1], results["conv2", u, "regularized"][1]
        print(f"  channel {u}: plain {p[0]:.3f} -> {p[-1]:.3f}   regularized {r[0]:.3f} -> {r[-1]:.3f}")
    print("output classes: softmax probability of the class for its maximized image")
    for c in classes:
        probs = {k: model.predict(results["output", c, k][0][None])[0] for k in ("plain", "regularized")}
        print(f"  class {c}: plain p={probs['plain'][c]:.3f} (argmax {int(np.argmax(probs['plain']))})   "
              f"regularized p={probs['regularized'][c]:.3f} (argmax {int(np.argmax(probs['regularized']))})")

    files = []
    # Grid: conv2 plain / regularized, output plain / regularized.
    rows = [("conv2", units, "plain"), ("conv2", units, "regularized"),
            ("output", classes, "plain"), ("output", classes, "regularized")]
    ncols = max(len(units), len(classes))
    fig, axes = plt.subplots(4, ncols, figsize=(1.2 * ncols + 1.2, 5.6), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for r, (layer, us, kind) in enumerate(rows):
        for j, u in enumerate(us):
            img = results[layer, u, kind][0][:, :, 0]
            ax = axes[r, j]
            ax.imshow(img, cmap="gray")
            ax.set_title(f"{'ch' if layer == 'conv2' else 'class'} {u}", fontsize=8)
        axes[r, 0].text(-0.25, 0.5, f"{layer}\n{kind}", transform=axes[r, 0].transAxes, ha="right",
                        va="center", fontsize=9)
    fig.suptitle("maximize_activation: plain gradient ascent vs regularized (l2, tv, blur, jitter, clip)",
                 fontsize=10)
    fig.tight_layout(rect=(0.07, 0, 1, 1))
    files.append(os.path.join(outdir, "activation_maximization.png"))
    fig.savefig(files[-1], dpi=100)
    plt.close(fig)

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for u in units:
        line, = a1.plot(results["conv2", u, "plain"][1], lw=1, label=f"ch {u}")
        a1.plot(results["conv2", u, "regularized"][1], lw=1, ls="--", color=line.get_color())
    a1.set_title("conv2 channels: mean activation (solid plain, dashed regularized)", fontsize=9)
    a1.set_xlabel("step")
    a1.legend(fontsize=7, ncol=2)
    for c in classes:
        line, = a2.plot(results["output", c, "plain"][1], lw=1, label=f"class {c}")
        a2.plot(results["output", c, "regularized"][1], lw=1, ls="--", color=line.get_color())
    a2.set_title("output classes: softmax probability (solid plain, dashed regularized)", fontsize=9)
    a2.set_xlabel("step")
    a2.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    files.append(os.path.join(outdir, "activation_traces.png"))
    fig.savefig(files[-1], dpi=100)
    plt.close(fig)

    # The 9 test digits that excite one conv2 channel most.
    unit = units[-1]
    idx, scores = inspect.top_activating(model, "conv2", unit, xts, k=9)
    print(f"\ntop_activating(conv2, channel {unit}): test digits {idx.tolist()} "
          f"(labels {yts[idx].tolist()}), scores {[round(float(s), 2) for s in scores]}")
    fig, axes = plt.subplots(2, 6, figsize=(8, 3.2))
    for ax in axes.ravel():
        ax.axis("off")
    for i, (j, s) in enumerate(zip(idx, scores)):
        ax = axes.ravel()[i + (i // 5)]
        ax.imshow(xts[j, :, :, 0], cmap="gray")
        ax.set_title(f"#{j} ({yts[j]})\n{s:.2f}", fontsize=8)
    for r, kind in enumerate(("plain", "regularized")):
        axes[r, 5].imshow(results["conv2", unit, kind][0][:, :, 0], cmap="gray")
        axes[r, 5].set_title(f"maximized\n{kind}", fontsize=8)
    fig.suptitle(f"the 9 test digits that excite conv2 channel {unit} most (max |activation|)", fontsize=10)
    fig.tight_layout()
    files.append(os.path.join(outdir, "top_activating.png"))
    fig.savefig(files[-1], dpi=100)
    plt.close(fig)
    print("figures:")
    for f in files:
        print(f"  {f}")


if __name__ == "__main__":
    main(sys.argv[1:])
