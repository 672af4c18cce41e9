"""Uniform vs Gaussian smoothing, in 1-D and 2-D.

    python examples/smoothing.py [OUTDIR]        (default OUTDIR: examples/output/)

1-D: a noisy signal (a step plus a sine, Gaussian noise) is correlated with
``convcore.correlate`` against a uniform (moving-average) kernel and a Gaussian kernel
that remove the same amount of white noise. 2-D: a mosaic of the shipped MNIST digits,
with noise, filtered by ``ndimage.uniform_filter`` and ``ndimage.gaussian_filter`` at
several sizes. Prints the RMS error against the clean signal / image for each filter
and writes ``smoothing_1d.png`` and ``smoothing_2d.png``.
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
from convcore import ndimage
from convcore.datasets import mnist10k

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output")


def rms(a, b):
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - b) ** 2)))


def one_d(outdir):
    rng = np.random.default_rng(0)
    t = np.arange(600)
    clean = np.where(t >= 300, 1.0, 0.0) + 0.5 * np.sin(2 * np.pi * t / 150)
    noisy = clean + rng.normal(0, 0.3, t.shape)

    # A moving average of n samples divides the noise variance by n; a Gaussian of
    # standard deviation s by about 2 * sqrt(pi) * s. Pick s so both remove the same noise.
    n = 15
    s = n / (2 * np.sqrt(np.pi))
    k = 2 * int(4 * s) + 1
    uniform = ndimage.uniform_kernel(n, ndim=1)
    gauss = ndimage.gaussian_kernel(k, s, ndim=1)
    sm_u = convcore.correlate(noisy, uniform, mode="same")
    sm_g = convcore.correlate(noisy, gauss, mode="same")

    # mode='same' pads with zeros: leave the kernel's half-width out at each end.
    m = k // 2
    inner = slice(m, len(t) - m)
    step = slice(300 - 20, 300 + 20)
    print(f"1-D: step + sine, {len(t)} samples, noise sigma 0.3")
    print(f"  uniform kernel: {n} taps; Gaussian kernel: sigma {s:.2f}, {k} taps (same white-noise reduction)")
    print(f"  {'':24s} {'RMS error':>10s} {'RMS near the step':>18s}")
    for name, y in (("noisy", noisy), (f"uniform ({n})", sm_u), (f"Gaussian (sigma {s:.2f})", sm_g)):
        print(f"  {name:24s} {rms(y[inner], clean[inner]):10.4f} {rms(y[step], clean[step]):18.4f}")

    fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=False)
    ax = axes[0]
    ax.plot(t, noisy, color="0.75", lw=0.8, label="noisy")
    ax.plot(t, clean, "k", lw=1, label="clean")
    ax.plot(t, sm_u, lw=1.5, label=f"uniform, {n} taps")
    ax.plot(t, sm_g, lw=1.5, label=f"Gaussian, sigma {s:.1f}")
    ax.set_title("1-D: convcore.correlate(noisy, kernel, mode='same')")
    ax.legend(loc="upper left", fontsize=8, ncol=2)
    ax = axes[1]
    ax.plot(t[step], clean[step], "k", lw=1, label="clean")
    ax.plot(t[step], sm_u[step], "o-", ms=3, label="uniform")
    ax.plot(t[step], sm_g[step], "o-", ms=3, label="Gaussian")
    ax.set_title(f"zoom on the step: RMS error here, uniform {rms(sm_u[step], clean[step]):.3f}, "
                 f"Gaussian {rms(sm_g[step], clean[step]):.3f}")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_xlabel("sample")
    fig.tight_layout()
    p = os.path.join(outdir, "smoothing_1d.png")
    fig.savefig(p, dpi=100)
    plt.close(fig)
    return p


def two_d(outdir):
    (_, _), (x, _) = mnist10k.load_data()
    rows, cols = 4, 6
    clean = (x[: rows * cols].astype(np.float32) / 255.0).reshape(rows, cols, 28, 28)
    clean = clean.transpose(0, 2, 1, 3).reshape(rows * 28, cols * 28)
    rng = np.random.default_rng(1)
    noisy = (clean + rng.normal(0, 0.3, clean.shape)).astype(np.float32)

    t0 = time.perf_counter()
    uni = {n: ndimage.uniform_filter(noisy, size=n) for n in (3, 5, 7)}
    gau = {s: ndimage.gaussian_filter(noisy, sigma=s) for s in (0.7, 1.0, 1.5, 2.0)}
    ms = (time.perf_counter() - t0) * 1e3
    print(f"\n2-D: {clean.shape[0]}x{clean.shape[1]} mosaic of {rows * cols} test digits, noise sigma 0.3 "
          f"({ms:.1f} ms for all 7 filters)")
    print(f"  RMS error, {'noisy image':27s}: {rms(noisy, clean):.4f}")
    for n, im in uni.items():
        print(f"  RMS error, {f'uniform_filter(size={n})':27s}: {rms(im, clean):.4f}")
    for s, im in gau.items():
        print(f"  RMS error, {f'gaussian_filter(sigma={s})':27s}: {rms(im, clean):.4f}")
    bu = min(uni, key=lambda n: rms(uni[n], clean))
    bg = min(gau, key=lambda s: rms(gau[s], clean))
    print(f"  best: uniform size {bu} ({rms(uni[bu], clean):.4f}), Gaussian sigma {bg} ({rms(gau[bg], clean):.4f})")

    panels = [("clean", clean), (f"noisy (RMS {rms(noisy, clean):.3f})", noisy),
              (f"uniform_filter size {bu}\nRMS {rms(uni[bu], clean):.3f}", uni[bu]),
              (f"gaussian_filter sigma {bg}\nRMS {rms(gau[bg], clean):.3f}", gau[bg])]
    fig, axes = plt.subplots(1, 4, figsize=(12, 2.9))
    for ax, (title, im) in zip(axes, panels):
        ax.imshow(im, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    p = os.path.join(outdir, "smoothing_2d.png")
    fig.savefig(p, dpi=100)
    plt.close(fig)
    return p


def main(argv):
    outdir = argv[0] if argv else DEFAULT_OUT
    os.makedirs(outdir, exist_ok=True)
    files = [one_d(outdir), two_d(outdir)]
    print("\nfigures:")
    for f in files:
        print(f"  {f}")


if __name__ == "__main__":
    main(sys.argv[1:])
