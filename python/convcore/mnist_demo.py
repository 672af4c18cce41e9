"""The course's network: train the Keras-style convnet on the shipped MNIST digits,
report test accuracy, and draw what it learned. Run with ``python -m convcore demo``.

Figures (PNG): training curves, the 32 learned first-layer filters, and the feature
maps of one test digit after each convolution. matplotlib (``pip install
convcore[demo]``) draws annotated figures; without it, plain PNG grids are written.
"""
from __future__ import annotations

import os
import time

import numpy as np

from . import Input, Sequential, layers, optimizers, set_seed
from ._png import write_png
from .datasets import mnist10k


def build_convnet():
    """The convnet of the course (34,826 parameters)."""
    return Sequential([
        Input((28, 28, 1)),
        layers.Conv2D(32, (3, 3), activation="relu", name="conv1"), layers.MaxPooling2D((2, 2), name="pool1"),
        layers.Conv2D(64, (3, 3), activation="relu", name="conv2"), layers.MaxPooling2D((2, 2), name="pool2"),
        layers.Flatten(name="flatten"), layers.Dropout(0.5, name="dropout"),
        layers.Dense(10, activation="softmax", name="output"),
    ])


def load_scaled():
    (xtr, ytr), (xts, yts) = mnist10k.load_data()
    xtr = (xtr.astype(np.float32) / 255.0)[..., None]
    xts = (xts.astype(np.float32) / 255.0)[..., None]
    return (xtr, ytr.astype(np.int64)), (xts, yts.astype(np.int64))


def grid(images, cols):
    """Tile (n, h, w) images into one array with 1-pixel gaps, each scaled to [0, 1]."""
    n, h, w = images.shape
    rows = (n + cols - 1) // cols
    out = np.ones((rows * (h + 1) - 1, cols * (w + 1) - 1), dtype=np.float64)
    for i, im in enumerate(images):
        lo, hi = float(im.min()), float(im.max())
        im = (im - lo) / (hi - lo) if hi > lo else np.zeros_like(im)
        r, c = divmod(i, cols)
        out[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = im
    return out


def run(outdir="convcore-demo", epochs=10, batch_size=128, verbose=1, seed=0, device=None):
    """Train and evaluate the convnet, write the figures. ``device``: 'cpu', 'gpu' or
    'auto' (default: the current device, see ``convcore.set_device``)."""
    os.makedirs(outdir, exist_ok=True)
    set_seed(seed)
    (xtr, ytr), (xts, yts) = load_scaled()
    model = build_convnet()
    model.compile(optimizer=optimizers.Adam(learning_rate=1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], device=device)
    model.summary()
    where = model.device
    if where == "gpu":
        from . import device as device_mod
        info = device_mod.device_info()
        where = f"gpu ({info.get('name')}, {info.get('backend')})"
    print(f"training on: {where}")
    t0 = time.perf_counter()
    hist = model.fit(xtr, ytr, epochs=epochs, batch_size=batch_size, validation_data=(xts, yts), verbose=verbose)
    train_s = time.perf_counter() - t0
    loss, acc = model.evaluate(xts, yts, verbose=0)
    print(f"test accuracy on {len(yts)} held-out digits: {acc:.4f} (loss {loss:.4f}); "
          f"training took {train_s:.1f} s ({epochs * len(ytr) / train_s:.0f} samples/s)")

    filters = model.get_layer("conv1").get_weights()[0][:, :, 0, :].transpose(2, 0, 1)  # (32, 3, 3)
    digit = xts[:1]
    maps1 = model.get_layer("conv1")(digit)[0].transpose(2, 0, 1)
    feat = Sequential([Input((28, 28, 1))] + [model.get_layer(n) for n in ("conv1", "pool1", "conv2")])
    maps2 = feat.predict(digit)[0].transpose(2, 0, 1)
    files = _save(outdir, hist.history, filters, digit[0, :, :, 0], maps1, maps2)
    print(f"figures written to {os.path.abspath(outdir)}:")
    for f in files:
        print(f"  {f}")
    return {"accuracy": acc, "loss": loss, "history": hist.history, "files": files, "model": model}


def _save(outdir, history, filters, digit, maps1, maps2):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        files = []
        for name, img in (("filters_conv1.png", grid(filters, 8)), ("digit.png", digit),
                          ("feature_maps_conv1.png", grid(maps1, 8)), ("feature_maps_conv2.png", grid(maps2, 8))):
            p = os.path.join(outdir, name)
            write_png(p, img, scale=4 if name.startswith("filters") else 2)
            files.append(p)
        print("(matplotlib not installed: training curves skipped, grids written as plain PNGs)")
        return files
    files = []
    ep = np.arange(1, len(history["loss"]) + 1)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(ep, history["loss"], "o-", label="train")
    a1.plot(ep, history["val_loss"], "o-", label="test")
    a1.set_xlabel("epoch"); a1.set_ylabel("loss"); a1.legend(); a1.set_title("loss")
    a2.plot(ep, history["accuracy"], "o-", label="train")
    a2.plot(ep, history["val_accuracy"], "o-", label="test")
    a2.set_xlabel("epoch"); a2.set_ylabel("accuracy"); a2.legend(); a2.set_title("accuracy")
    fig.tight_layout()
    files.append(os.path.join(outdir, "training_curves.png"))
    fig.savefig(files[-1], dpi=100)
    plt.close(fig)
    for name, maps, title, cols in (("filters_conv1.png", filters, "learned 3x3 filters of conv1", 8),
                                    ("feature_maps_conv1.png", maps1, "feature maps after conv1 (ReLU)", 8),
                                    ("feature_maps_conv2.png", maps2, "feature maps after conv2 (ReLU)", 8)):
        rows = (len(maps) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols + (1 if name != "filters_conv1.png" else 0),
                                 figsize=(1.4 * (cols + 1), 1.4 * rows + 0.6), squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        off = 0
        if name != "filters_conv1.png":
            axes[0, 0].imshow(digit, cmap="gray"); axes[0, 0].set_title("input", fontsize=8)
            off = 1
        for i, m in enumerate(maps):
            r, c = divmod(i, cols)
            ax = axes[r, c + off]
            if name == "filters_conv1.png":
                v = float(np.abs(m).max()) or 1.0
                ax.imshow(m, cmap="RdBu_r", vmin=-v, vmax=v)
            else:
                ax.imshow(m, cmap="viridis")
        fig.suptitle(title)
        fig.tight_layout()
        files.append(os.path.join(outdir, name))
        fig.savefig(files[-1], dpi=100)
        plt.close(fig)
    return files
