"""Adversarial examples: FGSM and PGD against the trained convnet, and the random baseline.

    python examples/adversarial.py [OUTDIR] [--quick]     (default OUTDIR: examples/output/)

Loads ``OUTDIR/convnet.convcore`` (written by ``mnist_convnet.py``); if it is missing,
trains the same convnet for 3 epochs first (not saved). On the 2,000 shipped test digits
(pixels in [0, 1]), with L-infinity perturbations of size eps = 0.1:

* clean accuracy, accuracy under random +-eps noise (``attack='random'``), under FGSM
  and under PGD (20 steps, step 2.5 * eps / 20, random start), all from
  ``adversarial.robust_accuracy``;
* ``adversarial_examples.png``: for 6 test digits that PGD fools, the original, the FGSM and PGD
  perturbations (scaled to +-eps) and the adversarial images, with predicted labels;
* ``adversarial_accuracy_vs_eps.png``: accuracy against eps in (0, 0.05, 0.1, 0.2, 0.3)
  for random noise, FGSM and PGD (20 steps), on the first 1,000 test digits (to stay
  under two minutes on 2 cores; the eps = 0.1 table is computed on the two halves of
  the 2,000 digits and averaged, so the curves reuse its first half).

``--quick`` (for the tests, a few seconds): 200 test digits (curves on 100), PGD with 5 steps, eps in
(0, 0.1, 0.3); uses ``convnet.convcore`` or ``convnet-quick.convcore`` if either is in
OUTDIR, else trains 1 epoch on 2,000 digits and saves ``convnet-quick.convcore``.
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
from convcore import adversarial, mnist_demo





def main(argv):
    outdir, quick = parse(argv)
    os.makedirs(outdir, exist_ok=True)
    (xtr, ytr), (xts, yts) = mnist_demo.load_scaled()
    model = get_model(outdir, quick, xtr, ytr)
    n_test = 200 if quick else len(xts)
    pgd_steps = 5 if quick else 20
    eps_list = (0.0, 0.1, 0.3) if quick else (0.0, 0.05, 0.1, 0.2, 0.3)
    x, y = xts[:n_test], yts[:n_test]
    eps = 0.1

    half = n_test // 2

    def acc(attack, e, part):
        """robust_accuracy on the first (part 0) or second (part 1) half of the test digits."""
        xp, yp = (x[:half], y[:half]) if part == 0 else (x[half:], y[half:])
        if attack == "none" or e == 0:
            return adversarial.robust_accuracy(model, xp, yp, "none")
        kw = {"pgd": dict(steps=pgd_steps, seed=0), "random": dict(seed=0)}.get(attack, {})
        return adversarial.robust_accuracy(model, xp, yp, attack, eps=e, **kw)

    # The table is computed on the two halves of the test digits and averaged (the halves
    # have equal sizes), so the first half's values serve as the eps = 0.1 points of the
    # curves below, which use the first half only (PGD is the slow part).
    print(f"\n{n_test:,} test digits, L-inf eps = {eps} (pixels in [0, 1]); PGD: {pgd_steps} steps, random start")
    t0 = time.perf_counter()
    table, first_half = {}, {}
    for name, attack in (("clean", "none"), ("random +-eps", "random"), ("FGSM", "fgsm"),
                         (f"PGD-{pgd_steps}", "pgd")):
        t1 = time.perf_counter()
        a0, a1 = acc(attack, eps, 0), acc(attack, eps, 1)
        table[name], first_half[name] = (a0 + a1) / 2, a0
        print(f"  {name:14s} accuracy {table[name]:.4f}   ({time.perf_counter() - t1:.1f} s)")

    curves = {"random +-eps": [], "FGSM": [], f"PGD-{pgd_steps}": []}
    keys = {"random +-eps": "random", "FGSM": "fgsm", f"PGD-{pgd_steps}": "pgd"}
    for e in eps_list:
        for name in curves:
            if e == 0:
                curves[name].append(first_half["clean"])
            elif e == eps:
                curves[name].append(first_half[name])
            else:
                curves[name].append(acc(keys[name], e, 0))
    print(f"\naccuracy vs eps (first {half:,} test digits):")
    print("  " + f"{'eps':>14s}" + "".join(f"{e:>8.2f}" for e in eps_list))
    for name, v in curves.items():
        print("  " + f"{name:>14s}" + "".join(f"{a:>8.4f}" for a in v))
    print(f"(attacks took {time.perf_counter() - t0:.1f} s)")

    # Examples: the first 6 test digits the model gets right and PGD fools (if there
    # are fewer than 6 such digits, correctly classified ones fill the rest).
    xa, ya = x[:200], y[:200]
    ok = np.argmax(model.predict(xa), axis=1) == ya
    fooled = ok & (np.argmax(model.predict(adversarial.pgd(model, xa, ya, eps, steps=pgd_steps, seed=0)),
                             axis=1) != ya)
    sel = np.concatenate([np.flatnonzero(fooled), np.flatnonzero(ok & ~fooled)])[:6]
    xs, ys = x[sel], y[sel]
    adv_f = adversarial.fgsm(model, xs, ys, eps)
    adv_p = adversarial.pgd(model, xs, ys, eps, steps=pgd_steps, seed=0)
    p_f = np.argmax(model.predict(adv_f), axis=1)
    p_p = np.argmax(model.predict(adv_p), axis=1)
    print(f"\nexamples: test digits {sel.tolist()} ({int(fooled.sum())} of the first {len(ya)} are classified "
          f"correctly and fooled by PGD): labels {ys.tolist()}, FGSM predicts {p_f.tolist()}, "
          f"PGD predicts {p_p.tolist()}")

    files = []
    rows = [("original", xs, None), ("FGSM perturbation", adv_f - xs, None), ("FGSM", adv_f, p_f),
            ("PGD perturbation", adv_p - xs, None), ("PGD", adv_p, p_p)]
    fig, axes = plt.subplots(len(rows), len(sel), figsize=(1.35 * len(sel) + 1.3, 1.45 * len(rows) + 0.4),
                             squeeze=False)
    for r, (name, imgs, preds) in enumerate(rows):
        for j in range(len(sel)):
            ax = axes[r, j]
            ax.axis("off")
            im = imgs[j, :, :, 0]
            if "perturbation" in name:
                ax.imshow(im, cmap="RdBu_r", vmin=-eps, vmax=eps)
            else:
                ax.imshow(im, cmap="gray", vmin=0, vmax=1)
            if r == 0:
                ax.set_title(f"label {ys[j]}", fontsize=8)
            elif preds is not None:
                ok = preds[j] == ys[j]
                ax.set_title(f"pred {preds[j]}", fontsize=8, color="black" if ok else "red")
        axes[r, 0].text(-0.15, 0.5, name, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=8)
    fig.suptitle(f"L-inf eps = {eps}: FGSM and PGD-{pgd_steps} (perturbations scaled to ±eps)", fontsize=9)
    fig.tight_layout(rect=(0.14, 0, 1, 1))
    files.append(os.path.join(outdir, "adversarial_examples.png"))
    fig.savefig(files[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for (name, v), m in zip(curves.items(), ("s", "o", "^")):
        ax.plot(eps_list, v, marker=m, label=name)
    ax.set_xlabel("eps (L-inf, pixels in [0, 1])")
    ax.set_ylabel(f"accuracy on the first {half:,} test digits")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("accuracy under attack")
    fig.tight_layout()
    files.append(os.path.join(outdir, "adversarial_accuracy_vs_eps.png"))
    fig.savefig(files[-1], dpi=100)
    plt.close(fig)
    print("figures:")
    for f in files:
        print(f"  {f}")


if __name__ == "__main__":
    main(sys.argv[1:])
