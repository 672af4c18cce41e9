"""The adversarial lab: FGSM and PGD against a pretrained ResNet18 (torchvision's weights).

    python examples/adversarial_resnet18.py [OUTDIR] [--quick] [--no-download]
    (default OUTDIR: examples/output/)

* The network: ``convcore.applications.ResNet18(weights='imagenet',
  classifier_activation=None)`` (torchvision's architecture and its IMAGENET1K_V1 file
  ``resnet18-f37072fd.pth``, read from torch hub's cache ``$TORCH_HOME/hub/checkpoints/``,
  else ``~/.cache/torch/hub/checkpoints/``; it gives logits, as torchvision does).
* torch's preprocessing is the first layer of a wrapper model,
  ``Normalization(mean=(0.485, 0.456, 0.406), variance=(0.229, 0.224, 0.225) ** 2)``,
  so the model takes pixels in [0, 1] and the attacks' eps, their clipping to [0, 1] and
  the figure are all in pixel units (eps = 2/255 is two grey levels of an 8-bit image).
  The wrapper is compiled with ``SparseCategoricalCrossentropy(from_logits=True)``,
  the loss whose input gradient the attacks follow.
* The photos ship with scikit-image (``skimage.data.chelsea()`` (a cat), ``coffee()``,
  ``astronaut()``), resized to 224 x 224 (``convcore.utils.smart_resize``: centred crop,
  bilinear).
* The attacks are untargeted, away from the network's own clean prediction (the photos
  have no ImageNet label): ``convcore.adversarial.fgsm(model, x, y, eps)`` and
  ``convcore.adversarial.pgd(model, x, y, eps, steps=10, seed=0)`` (step 2.5 * eps / 10,
  random start in the eps-ball), L-infinity, eps = 2/255 and 8/255.

Prints the table of predicted classes (with their softmax probability) before, after
FGSM and after PGD, for each photo and eps, and writes ``adversarial_resnet18.png``: for
each photo at eps = 8/255, the original, the FGSM perturbation (the mean over RGB, on a
diverging colour map spanning +-eps, i.e. amplified 1 / (2 eps) = 16 times), the FGSM image,
the PGD perturbation and the PGD image, each image titled with its predicted class and
probability (red where the class changed); the PNG is reduced to 256 colours (Pillow's
median cut, no dithering: about 200 KB for the three photos).

With the file in the cache, the table and the figure's title name it ("weights: torch
hub's resnet18-f37072fd.pth"): whatever file has that name is used, as torch hub does.
Without it the script downloads it (as torch hub would), unless ``--no-download`` or
``--quick``; when it is neither there nor downloadable it says so and goes on with random
weights (``weights=None``, seed 0), said in the printout and the figure's title. A random
network predicts nearly the same class for every photo, with probability ~0.002, and
whether the attacks change it depends on the draw (seed 0: eps = 2/255 changes none of
the three photos' classes, 8/255 one with FGSM and all three with PGD-10).

``--quick`` (what the tests run, ~5 s on 2 cores): the cat only, PGD with 3 steps, never
downloads.
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
from convcore import adversarial, applications, layers, losses
from convcore.applications import imagenet_utils, resnet_torch
from convcore.utils import file_utils

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output")
PHOTOS = (("chelsea", "chelsea (a cat)"), ("coffee", "coffee"), ("astronaut", "astronaut"))
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)
EPS = (2, 8)  # in grey levels: eps = level / 255
FIGURE_EPS = 8
SIZE = 224


def parse(argv):
    p = argparse.ArgumentParser(description="FGSM and PGD against a pretrained ResNet18.")
    p.add_argument("outdir", nargs="?", default=DEFAULT_OUT)
    p.add_argument("--quick", action="store_true", help="one photo, 3 PGD steps, never download (the tests' mode)")
    p.add_argument("--no-download", action="store_true", help="use torchvision's weights only if already cached")
    a = p.parse_args(argv)
    return a.outdir, a.quick, not (a.quick or a.no_download)


def load_photos(names):
    """The photos as a (n, 224, 224, 3) float32 batch in [0, 1]."""
    from skimage import data
    imgs = [convcore.utils.smart_resize(getattr(data, n)().astype(np.float32) / 255.0, (SIZE, SIZE)) for n in names]
    return np.clip(np.stack(imgs), 0.0, 1.0)


def torchvision_weights(download):
    """The path of torchvision's ResNet18 file in torch hub's cache (downloaded there
    when ``download``), or None; says which."""
    url = resnet_torch.WEIGHTS_URLS["resnet18"]
    fname = url.rsplit("/", 1)[1]
    path = os.path.join(imagenet_utils.torch_home(), "hub", "checkpoints", fname)
    if os.path.isfile(path):
        print(f"ResNet18: torchvision's ImageNet weights found in torch hub's cache: {path}")
        return path
    if not download:
        print(f"ResNet18: no torchvision weights at {path} and not downloading (--quick / --no-download): "
              f"RANDOM weights (weights=None, seed 0)")
        return None
    try:
        got = imagenet_utils.torch_weights_path(fname, url)
    except (file_utils.DownloadError, ValueError) as e:
        print(f"ResNet18: torchvision's weights are not in torch hub's cache and could not be downloaded:\n  {e}\n"
              f"  -> RANDOM weights (weights=None, seed 0)")
        return None
    print(f"ResNet18: torchvision's ImageNet weights downloaded to {got}")
    return got


def build(path):
    """(wrapper model taking pixels in [0, 1], whether the weights are ImageNet's)."""
    real = False
    if path is not None:
        try:
            net = applications.ResNet18(weights="imagenet", classifier_activation=None)
            real = True
        except (ValueError, OSError) as e:
            print(f"ResNet18: {path} does not load ({e}): RANDOM weights (weights=None, seed 0)")
    if not real:
        convcore.set_seed(0)
        net = applications.ResNet18(weights=None, classifier_activation=None)
    pixels = layers.Input((SIZE, SIZE, 3), name="pixels")
    x = layers.Normalization(mean=TORCH_MEAN, variance=np.square(TORCH_STD), name="torch_normalize")(pixels)
    model = convcore.Model(pixels, net(x), name="resnet18_on_pixels")
    model.compile(loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, real


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def classes(model, x):
    """(class indices, their probabilities, their names) of a batch."""
    p = softmax(model.predict(x, batch_size=len(x), verbose=0).astype(np.float64))
    idx = p.argmax(axis=1)
    names = [row[0][1] for row in resnet_torch.decode_predictions(p, top=1)]
    return idx, p[np.arange(len(p)), idx], names


def save_256_colours(path):
    """Rewrite a PNG as a 256-colour palette PNG (the perturbations are noise, which RGB
    PNG compresses badly: this keeps the figure small enough for a README)."""
    from PIL import Image
    with Image.open(path) as im:
        q = im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    q.save(path, optimize=True)


def main(argv):
    outdir, quick, download = parse(argv)
    os.makedirs(outdir, exist_ok=True)
    photos = PHOTOS[:1] if quick else PHOTOS
    steps = 3 if quick else 10
    path = torchvision_weights(download)
    model, real = build(path)
    # named by the file (what the script knows): torchvision's ImageNet file, or whatever was put there
    weights = f"weights: torch hub's {os.path.basename(path)}" if real else "RANDOM weights: no torchvision file"
    x = load_photos([n for n, _ in photos])
    print(f"{len(x)} photo(s) of scikit-image, {SIZE}x{SIZE}, pixels in [0, 1]; torch's normalisation is the "
          f"model's first layer")

    y, p0, n0 = classes(model, x)
    print(f"attacks: untargeted, away from the clean prediction; L-inf eps in pixel units; "
          f"PGD-{steps}: step 2.5 * eps / {steps}, random start (seed 0)")
    rows, shown = [], {}
    t0 = time.perf_counter()
    for level in EPS:
        eps = level / 255.0
        adv_f = adversarial.fgsm(model, x, y, eps)
        adv_p = adversarial.pgd(model, x, y, eps, steps=steps, seed=0)
        for adv in (adv_f, adv_p):  # the attacks keep to the ball and to the pixel range
            assert np.abs(adv - x).max() <= eps + 1e-6 and adv.min() >= 0.0 and adv.max() <= 1.0
        f = classes(model, adv_f)
        p = classes(model, adv_p)
        for j in range(len(x)):
            rows.append((photos[j][1], f"{level}/255", f"{n0[j]} ({p0[j]:.3f})", f"{f[2][j]} ({f[1][j]:.3f})",
                         f"{p[2][j]} ({p[1][j]:.3f})"))
        shown[level] = (adv_f, f, adv_p, p)
        print(f"  eps = {level}/255: FGSM changes the class of {int(np.sum(f[0] != y))}/{len(x)} photo(s), "
              f"PGD-{steps} of {int(np.sum(p[0] != y))}/{len(x)}")
    print(f"(attacks took {time.perf_counter() - t0:.1f} s)")

    print(f"\nResNet18, {weights}: predicted class (probability)")
    head = ("photo", "eps", "before", "after FGSM", f"after PGD-{steps}")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    print(("  " + "  ".join(h.ljust(w) for h, w in zip(head, widths))).rstrip())
    for r in rows:
        print(("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths))).rstrip())

    # the figure: eps = 8/255
    level = FIGURE_EPS
    eps = level / 255.0
    adv_f, f, adv_p, p = shown[level]
    cols = [("original", x, (y, p0, n0)), ("FGSM perturbation", adv_f - x, None), ("FGSM", adv_f, f),
            (f"PGD-{steps} perturbation", adv_p - x, None), (f"PGD-{steps}", adv_p, p)]
    fig, axes = plt.subplots(len(x), len(cols), figsize=(2.1 * len(cols), 2.25 * len(x) + 0.5), squeeze=False)
    for j in range(len(x)):
        for c, (name, imgs, pred) in enumerate(cols):
            ax = axes[j, c]
            ax.axis("off")
            if pred is None:
                ax.imshow(imgs[j].mean(axis=-1), cmap="RdBu_r", vmin=-eps, vmax=eps)
                ax.set_title(f"{name}\n(±{level}/255, x{255 / (2 * level):.0f})", fontsize=7)
            else:
                ax.imshow(imgs[j])
                changed = pred[0][j] != y[j]
                ax.set_title(f"{name}: {pred[2][j][:18]}\np = {pred[1][j]:.3f}", fontsize=7,
                             color="red" if changed else "black")
        axes[j, 0].text(-0.06, 0.5, photos[j][1], transform=axes[j, 0].transAxes, rotation=90, ha="right",
                        va="center", fontsize=8)
    fig.suptitle(f"ResNet18 ({weights}): FGSM and PGD-{steps}, L-inf eps = {level}/255 in pixels", fontsize=9)
    fig.tight_layout()
    out = os.path.join(outdir, "adversarial_resnet18.png")
    fig.savefig(out, dpi=72)
    plt.close(fig)
    save_256_colours(out)
    print(f"\nfigure:\n  {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
