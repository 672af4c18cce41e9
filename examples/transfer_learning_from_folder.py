"""The course's transfer-learning lab in the Keras idiom: train from a folder of JPEGs
with ``ImageDataGenerator(...).flow_from_directory(...)``, freeze a trained convnet and
train a new head on top of it.

    python examples/transfer_learning_from_folder.py [OUTDIR] [--quick]   (default OUTDIR: examples/output/)

The lab's code with only the import prefix changed (``convcore`` where it wrote
``tensorflow.keras``). There is no network here, so instead of a folder of cat and dog
photos and VGG16's ImageNet weights the script

1. writes a small folder of noisy JPEGs in two classes, stripes that run
   ``horizontal`` or ``vertical`` (random period, phase, contrast and noise; 80x80
   pixels), into ``OUTDIR/data/train/<class>/`` and ``OUTDIR/data/validation/<class>/``;
2. reads them with the lab's augmentation, ``ImageDataGenerator(rescale=1./255,
   shear_range=0.2, zoom_range=0.2, horizontal_flip=True)`` and
   ``flow_from_directory(..., target_size=(64, 64), class_mode='binary')`` (the
   validation images only rescaled);
3. trains a small "base" convnet (two conv + max-pool blocks) with a temporary head —
   the stand-in for the pretrained network;
4. freezes it (``base.trainable = False``) and trains a new head on top,
   ``Sequential([base, layers.Flatten(), layers.Dense(32, 'relu'), layers.Dense(1,
   'sigmoid')])``, with ``fit(train_iter, steps_per_epoch=..., validation_data=val_iter,
   validation_steps=...)``;

prints each epoch of both stages (``verbose=2``) and, last, the frozen-base model's
``validation accuracy: 0.xxxx`` (chance: 0.5; 1.0 in about 5 s of training here),
and writes ``transfer_learning_curves.png`` (loss and accuracy of both stages) and
``augmented_images.png`` (a batch of augmented training images with their labels) into
OUTDIR.

``--quick`` (for the tests, a few seconds): fewer and smaller folders, fewer epochs.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from PIL import Image

import convcore
from _shared import parse
from convcore import layers, optimizers
from convcore.models import Sequential
from convcore.preprocessing.image import ImageDataGenerator

CLASSES = ("horizontal", "vertical")


def stripes(rng, vertical, size=80):
    """One noisy grey-on-colour image of stripes, uint8 (size, size, 3)."""
    period = rng.uniform(6, 14)
    phase = rng.uniform(0, 2 * np.pi)
    t = np.arange(size)
    wave = np.sin(2 * np.pi * t / period + phase)
    img = np.tile(wave[None, :] if vertical else wave[:, None], (size, 1) if vertical else (1, size))
    contrast = rng.uniform(0.4, 1.0)
    base = rng.uniform(0.25, 0.75, 3)  # a random tint
    rgb = base + 0.25 * contrast * img[..., None] + rng.normal(0, 0.12, (size, size, 3))
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def write_folder(root, n_train, n_val, seed=0):
    """``root/train/<class>/*.jpg`` and ``root/validation/<class>/*.jpg``."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("validation", n_val)):
        for c, name in enumerate(CLASSES):
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(n):
                Image.fromarray(stripes(rng, vertical=bool(c))).save(os.path.join(folder, f"{name}_{i:03d}.jpg"),
                                                                     quality=90)


def build_base():
    """The small convnet that plays the pretrained network."""
    return Sequential([
        convcore.Input((64, 64, 3)),
        layers.Conv2D(8, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(16, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.MaxPooling2D(2),  # 7x7x16 features for the head
    ], name="base")


def main(argv):
    outdir, quick = parse(argv)
    os.makedirs(outdir, exist_ok=True)
    convcore.set_seed(0)
    n_train, n_val, batch_size = (40, 16, 8) if quick else (120, 40, 16)
    epochs_base, epochs_head = (3, 2) if quick else (6, 4)
    data = os.path.join(outdir, "data")
    write_folder(data, n_train, n_val)
    print(f"wrote {2 * n_train} training and {2 * n_val} validation JPEGs (80x80) into {data}"
          + (" (--quick)" if quick else ""))

    # --- the lab's code, import prefix changed ------------------------------------
    train_datagen = ImageDataGenerator(rescale=1. / 255, shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
    test_datagen = ImageDataGenerator(rescale=1. / 255)
    train_iter = train_datagen.flow_from_directory(os.path.join(data, "train"), target_size=(64, 64),
                                                   batch_size=batch_size, class_mode="binary", seed=0)
    val_iter = test_datagen.flow_from_directory(os.path.join(data, "validation"), target_size=(64, 64),
                                                batch_size=batch_size, class_mode="binary", shuffle=False)
    print(f"class_indices: {train_iter.class_indices}")
    steps = len(train_iter)
    val_steps = len(val_iter)

    t0 = time.perf_counter()
    base = build_base()
    pre = Sequential([base, layers.Flatten(), layers.Dense(1, activation="sigmoid")], name="pretraining")
    pre.compile(optimizer=optimizers.Adam(learning_rate=2e-3), loss="binary_crossentropy", metrics=["accuracy"])
    print(f"stage 1: training the base convnet ({base.count_params():,} parameters) with a temporary head")
    h1 = pre.fit(train_iter, steps_per_epoch=steps, epochs=epochs_base, validation_data=val_iter,
                 validation_steps=val_steps, verbose=2)

    base.trainable = False
    model = Sequential([base, layers.Flatten(), layers.Dense(32, activation="relu"),
                        layers.Dense(1, activation="sigmoid")], name="transfer")
    model.compile(optimizer=optimizers.Adam(learning_rate=2e-3), loss="binary_crossentropy", metrics=["accuracy"])
    n_trainable = int(sum(w.size for w in model.trainable_weights))
    print(f"stage 2: base frozen; training the new head ({n_trainable:,} of {model.count_params():,} "
          "parameters trainable)")
    frozen = [w.copy() for w in base.get_weights()]
    h2 = model.fit(train_iter, steps_per_epoch=steps, epochs=epochs_head, validation_data=val_iter,
                   validation_steps=val_steps, verbose=2)
    assert all(np.array_equal(a, b) for a, b in zip(frozen, base.get_weights())), "the frozen base changed"
    train_s = time.perf_counter() - t0
    loss, acc = model.evaluate(val_iter, steps=val_steps, verbose=0)
    print(f"training took {train_s:.1f} s")
    print(f"validation accuracy: {acc:.4f} (loss {loss:.4f}; chance 0.5) on {val_iter.samples} images")

    # --- figures -------------------------------------------------------------------
    files = []
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
    for h, stage, off in ((h1.history, "base", 0), (h2.history, "head", len(h1.history["loss"]))):
        ep = np.arange(1, len(h["loss"]) + 1) + off
        a1.plot(ep, h["loss"], "o-", label=f"{stage}: train")
        a1.plot(ep, h["val_loss"], "s--", label=f"{stage}: validation")
        a2.plot(ep, h["accuracy"], "o-", label=f"{stage}: train")
        a2.plot(ep, h["val_accuracy"], "s--", label=f"{stage}: validation")
    for a in (a1, a2):
        a.axvline(len(h1.history["loss"]) + 0.5, color="grey", lw=0.8)
        a.set_xlabel("epoch")
        a.legend(fontsize=7)
    a1.set_title("loss")
    a2.set_title(f"accuracy (validation: {acc:.3f})")
    fig.tight_layout()
    files.append(os.path.join(outdir, "transfer_learning_curves.png"))
    fig.savefig(files[-1], dpi=100)
    plt.close(fig)

    names = {v: k for k, v in train_iter.class_indices.items()}
    xb, yb = next(train_iter)
    n = min(8, len(xb))
    fig, axes = plt.subplots(1, n, figsize=(1.6 * n, 2))
    for ax, x, y in zip(np.atleast_1d(axes), xb[:n], yb[:n]):
        ax.imshow(np.clip(x, 0, 1))
        ax.set_title(names[int(y)], fontsize=8)
        ax.axis("off")
    fig.suptitle("augmented training images (shear 0.2, zoom 0.2, horizontal flip)", fontsize=9)
    fig.tight_layout()
    files.append(os.path.join(outdir, "augmented_images.png"))
    fig.savefig(files[-1], dpi=100)
    plt.close(fig)
    print("figures:")
    for f in files:
        print(f"  {f}")


if __name__ == "__main__":
    main(sys.argv[1:])
