"""Pretrained ImageNet networks: VGG16 and ResNet50 classify three photos, and VGG16's
feature maps of blocks 1-5.

    python examples/pretrained_classify.py [OUTDIR] [--quick] [--no-download]
    (default OUTDIR: examples/output/)

As in the course (``from keras.applications import VGG16``), with ``convcore.applications``:

* the photos ship with scikit-image (``skimage.data.chelsea()`` (a cat), ``coffee()``,
  ``astronaut()``: PNG files inside its wheel, no network), resized to 224 x 224 with
  ``convcore.utils.smart_resize`` (the largest centred crop of the right aspect ratio,
  bilinear), in [0, 255];
* ``VGG16(weights='imagenet')`` and ``ResNet50(weights='imagenet')``, each fed with its
  module's ``preprocess_input`` (both 'caffe': RGB -> BGR, minus ImageNet's mean), print
  the top 3 classes of each photo (``decode_predictions(preds, top=3)``);
* a model of VGG16's intermediate outputs (``block1_conv2``, ``block2_conv2``,
  ``block3_conv3``, ``block4_conv3``, ``block5_conv3``: the last convolution of each
  block) shows, for the cat, the 6 most active channels of each block.

The ImageNet weights are Keras's own files (``vgg16_weights_tf_dim_ordering_tf_kernels.h5``,
528 MB; ``resnet50_weights_tf_dim_ordering_tf_kernels.h5``, 98 MB), looked for in Keras's
cache (``$KERAS_HOME/models/``, else ``~/.keras/models/``): a file there is used as it
is. Without it the script downloads it as Keras does, unless ``--no-download`` or
``--quick``; when it is neither there nor downloadable (offline) it says so and goes on
with random weights (``weights=None``, seed 0), and the printout and both figures say
"RANDOM weights" (the classes are then meaningless; the feature maps still show what
random 3x3 filters stacked 13 deep do to a photo).

Writes ``pretrained_predictions.png`` (the photos with both networks' top 3) and
``vgg16_feature_maps.png``.

``--quick`` (what the tests run, 10-15 s on 2 cores): the same work, but the script never
tries to download (only a file already in the cache is used).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

import convcore
from convcore import applications
from convcore.applications import imagenet_utils, resnet, resnet50, vgg16
from convcore.utils import file_utils

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output")
PHOTOS = (("chelsea", "chelsea (a cat)"), ("coffee", "coffee"), ("astronaut", "astronaut"))
BLOCKS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
CHANNELS = 6
SIZE = 224


def parse(argv):
    p = argparse.ArgumentParser(description="VGG16 / ResNet50 on three photos, and VGG16's feature maps.")
    p.add_argument("outdir", nargs="?", default=DEFAULT_OUT)
    p.add_argument("--quick", action="store_true", help="never download (the tests' mode)")
    p.add_argument("--no-download", action="store_true", help="use the ImageNet weights only if already cached")
    a = p.parse_args(argv)
    return a.outdir, a.quick, not (a.quick or a.no_download)


def load_photos():
    """The three photos as a (3, 224, 224, 3) float32 batch in [0, 255]."""
    from skimage import data
    imgs = [convcore.utils.smart_resize(getattr(data, name)().astype(np.float32), (SIZE, SIZE))
            for name, _ in PHOTOS]
    return np.clip(np.stack(imgs), 0.0, 255.0)


def cached_or_downloaded(title, fname, origin, file_hash, download):
    """Whether Keras's ImageNet file ``fname`` is in Keras's cache (after downloading it
    when ``download``); says which."""
    path = os.path.join(file_utils.cache_folder("models"), fname)
    if os.path.isfile(path):
        print(f"{title}: ImageNet weights found in Keras's cache: {path}")
        return True
    if not download:
        print(f"{title}: no ImageNet weights at {path} and not downloading (--quick / --no-download): "
              f"RANDOM weights (weights=None, seed 0)")
        return False
    try:
        got = imagenet_utils.keras_weights_path(fname, origin, file_hash)
    except (file_utils.DownloadError, ValueError) as e:
        print(f"{title}: the ImageNet weights are not in Keras's cache and could not be downloaded:\n  {e}\n"
              f"  -> RANDOM weights (weights=None, seed 0)")
        return False
    print(f"{title}: ImageNet weights downloaded to {got}")
    return True


def build(title, constructor, found):
    """``constructor(weights='imagenet')`` when the file is there (falling back to random
    weights, saying why, if it does not load), else ``constructor(weights=None)``."""
    t0 = time.perf_counter()
    if found:
        try:
            model = constructor(weights="imagenet")
            print(f"{title}: built with the ImageNet weights ({time.perf_counter() - t0:.1f} s)")
            return model, True
        except (ValueError, OSError) as e:
            print(f"{title}: the cached weight file does not load ({e}): RANDOM weights (weights=None, seed 0)")
    convcore.set_seed(0)
    model = constructor(weights=None)
    print(f"{title}: built with RANDOM weights ({time.perf_counter() - t0:.1f} s)")
    return model, False


def main(argv):
    outdir, quick, download = parse(argv)
    os.makedirs(outdir, exist_ok=True)
    x = load_photos()
    print(f"photos (scikit-image's, offline): {', '.join(n for n, _ in PHOTOS)}, resized to {SIZE}x{SIZE} "
          f"(centred crop + bilinear)")

    vgg_fname = os.path.basename(vgg16.WEIGHTS_PATH)
    r50_fname = "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
    nets = [("VGG16", vgg16, applications.VGG16,
             cached_or_downloaded("VGG16", vgg_fname, vgg16.WEIGHTS_PATH, vgg16.WEIGHTS_HASHES[0], download)),
            ("ResNet50", resnet50, applications.ResNet50,
             cached_or_downloaded("ResNet50", r50_fname, resnet.BASE_WEIGHTS_PATH + r50_fname,
                                  resnet.WEIGHTS_HASHES["resnet50"][0], download))]

    results, vgg, vgg_real = {}, None, False
    for title, module, constructor, found in nets:
        model, real = build(title, constructor, found)
        t0 = time.perf_counter()
        preds = model.predict(module.preprocess_input(x.copy()), batch_size=len(x), verbose=0)
        top = module.decode_predictions(preds, top=3)
        label = "ImageNet weights" if real else "RANDOM weights"
        print(f"\n{title} ({label}), top 3 classes ({time.perf_counter() - t0:.1f} s for {len(x)} photos):")
        for (_, shown), row in zip(PHOTOS, top):
            print(f"  {shown:16s} " + " | ".join(f"{desc} {p:.3f}" for _, desc, p in row))
        results[title] = (top, real)
        if title == "VGG16":
            vgg, vgg_real = model, real
        else:
            del model

    # VGG16's intermediate outputs: one model with the five blocks' last convolutions
    features = convcore.Model(vgg.input, [vgg.get_layer(n).output for n in BLOCKS], name="vgg16_blocks")
    t0 = time.perf_counter()
    maps = features.predict(vgg16.preprocess_input(x[:1].copy()), verbose=0)
    print(f"\nVGG16 feature maps of {PHOTOS[0][1]} ({time.perf_counter() - t0:.1f} s):")
    chosen = []
    for name, m in zip(BLOCKS, maps):
        m = m[0]
        act = m.mean(axis=(0, 1))
        idx = np.argsort(act)[::-1][:CHANNELS]
        chosen.append(idx)
        print(f"  {name:13s} {m.shape[0]:>3d} x {m.shape[1]:<3d} x {m.shape[2]:>3d} channels, "
              f"{100 * np.mean(m > 0):4.1f}% nonzero after the ReLU; most active channels {idx.tolist()}")

    files = []
    # the photos with both networks' top 3
    fig, axes = plt.subplots(1, len(PHOTOS), figsize=(3.3 * len(PHOTOS), 4.6))
    for j, (ax, (_, shown)) in enumerate(zip(axes, PHOTOS)):
        ax.imshow(x[j].astype(np.uint8))
        ax.axis("off")
        lines = []
        for title in results:
            top, real = results[title]
            lines.append(f"{title}{'' if real else ' (random)'}:")
            lines += [f"  {desc[:22]} {p:.3f}" for _, desc, p in top[j]]
        ax.set_title(shown, fontsize=10)
        ax.text(0.0, -0.03, "\n".join(lines), transform=ax.transAxes, ha="left", va="top", fontsize=8,
                family="monospace")
    reals = [real for _, real in results.values()]
    state = ("ImageNet weights" if all(reals) else "RANDOM weights (no ImageNet file)" if not any(reals)
             else ", ".join(f"{t}: {'ImageNet' if r else 'RANDOM'} weights" for t, (_, r) in results.items()))
    fig.suptitle(f"top 3 classes, {state}", fontsize=10)
    fig.tight_layout(rect=(0, 0.22, 1, 1))
    files.append(os.path.join(outdir, "pretrained_predictions.png"))
    fig.savefig(files[-1], dpi=90)
    plt.close(fig)

    # the feature maps: one row per block, the photo first
    fig, axes = plt.subplots(len(BLOCKS), CHANNELS + 1, figsize=(1.45 * (CHANNELS + 1) + 0.3, 1.5 * len(BLOCKS) + 0.5),
                             squeeze=False)
    for r, (name, m, idx) in enumerate(zip(BLOCKS, maps, chosen)):
        ax = axes[r, 0]
        ax.axis("off")
        if r == 0:
            ax.imshow(x[0].astype(np.uint8))
            ax.set_title(PHOTOS[0][1], fontsize=8)
        ax.text(1.0 if r else -0.05, 0.5, f"{name}\n{m.shape[1]}x{m.shape[2]}x{m.shape[3]}",
                transform=ax.transAxes, ha="right", va="center", fontsize=8)
        for c, ch in enumerate(idx):
            ax = axes[r, c + 1]
            ax.imshow(m[0, :, :, ch], cmap="viridis")
            ax.set_title(f"channel {ch}", fontsize=7)
            ax.axis("off")
    fig.suptitle(f"VGG16 feature maps, blocks 1-5 (the {CHANNELS} most active channels), "
                 f"{'ImageNet' if vgg_real else 'RANDOM'} weights", fontsize=9)
    fig.tight_layout()
    files.append(os.path.join(outdir, "vgg16_feature_maps.png"))
    fig.savefig(files[-1], dpi=80)
    plt.close(fig)
    print("figures:")
    for f in files:
        print(f"  {f}")


if __name__ == "__main__":
    main(sys.argv[1:])
