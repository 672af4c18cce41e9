"""Issue 12's layer table: forward, and forward + backward (gradients of the sum of the
output with respect to the input and every weight), of the new layers on batch-32 image
shapes, against the same op in PyTorch on the CPU, measured in one run.

    python benches/layers.py [--rounds N] [--threads N]

PyTorch is not a dependency: run with an interpreter that has torch and sees convcore
(e.g. ``PYTHONPATH=python /path/to/torch-venv/bin/python benches/layers.py``). Rounds
alternate convcore and torch after a warm-up of each; the table holds medians and the
ratio torch_time / convcore_time (above 1: convcore is faster; target >= 0.8x, goal 1x).

Both libraries share the cores in one process, so PyTorch's OpenMP threads are set to
wait passively (``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it): by default
they spin after each op and take the cores from the convcore round that follows
(measured on 2 cores: a 0.6 ms layer normalization timed at 2.6 ms right after a torch
round). Passive waiting did not slow PyTorch's own rounds there.

Without torch the convcore columns are still measured (the torch ones say so). Each row
also states convcore's rate against this machine's roofline (``_machine.roofline``:
numpy's SGEMM and the 256 MiB copy bandwidth, measured in the same run, or read from
benches/peak.py's JSON through ``CONVCORE_PEAK_JSON``), the roof that bounds the layer:
flops are two per multiply-add of its convolutions (forward+backward: 3x the forward,
the input and the weight gradients); bytes are its minimal float32 traffic (forward:
input read + output written; backward: input and output gradient read, input gradient
written); GB/s against the copy bandwidth where flops per byte are below the ridge
(SGEMM / copy), GFLOP/s against SGEMM otherwise.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from _machine import bound_note, cpu_flags, machine_line, roofline  # (benches/ is the script's folder)

import convcore as cc
from convcore import layers, ops

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its threads (see above)

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover
    torch = None


def cases():
    """(name, input shape NHWC, convcore layer, torch module, torch input layout)."""
    out = []
    n = 32
    out.append(("Conv2DTranspose 32->32, 3x3, stride 2, same", (n, 16, 16, 32),
                lambda: layers.Conv2DTranspose(32, 3, strides=2, padding="same"),
                lambda: torch.nn.ConvTranspose2d(32, 32, 3, stride=2, padding=1, output_padding=1), "nchw"))
    out.append(("DepthwiseConv2D 64, 3x3, same", (n, 32, 32, 64),
                lambda: layers.DepthwiseConv2D(3, padding="same"),
                lambda: torch.nn.Conv2d(64, 64, 3, padding=1, groups=64), "nchw"))
    out.append(("SeparableConv2D 64->64, 3x3, same", (n, 32, 32, 64),
                lambda: layers.SeparableConv2D(64, 3, padding="same"),
                lambda: torch.nn.Sequential(torch.nn.Conv2d(64, 64, 3, padding=1, groups=64, bias=False),
                                            torch.nn.Conv2d(64, 64, 1)), "nchw"))
    out.append(("LayerNormalization over 64 channels", (n, 32, 32, 64),
                lambda: layers.LayerNormalization(), lambda: torch.nn.LayerNorm(64), "nhwc"))
    out.append(("GroupNormalization 8 groups of 64 channels", (n, 32, 32, 64),
                lambda: layers.GroupNormalization(groups=8), lambda: torch.nn.GroupNorm(8, 64), "nchw"))
    out.append(("UpSampling2D x2, bilinear", (n, 32, 32, 64),
                lambda: layers.UpSampling2D(2, interpolation="bilinear"),
                lambda: torch.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), "nchw"))
    return out


def work(name, shape):
    """(forward flops, forward bytes, forward+backward flops, forward+backward bytes) of
    the case ``name`` on an input of ``shape`` (NHWC, float32), or None for a case this
    table does not count."""
    n, h, w, c = shape
    size = n * h * w * c * 4  # bytes of the input
    kind = name.split()[0]
    if kind == "Conv2DTranspose":  # 32->32, 3x3, stride 2, same: each input pixel meets 9 x 32 weights
        out = size * 4 * 32 // c
        f = 2 * n * h * w * c * 9 * 32
        return f, size + out, 3 * f, 2 * (size + out) + size
    if kind == "DepthwiseConv2D":  # 3x3, same
        f = 2 * n * h * w * c * 9
        return f, 2 * size, 3 * f, 5 * size
    if kind == "SeparableConv2D":  # 3x3 depthwise, then 1x1 64 -> 64
        f = 2 * n * h * w * c * 9 + 2 * n * h * w * c * 64
        return f, 2 * size, 3 * f, 5 * size
    if kind in ("LayerNormalization", "GroupNormalization"):  # memory-bound: flops not counted
        return 0, 2 * size, 0, 5 * size
    if kind == "UpSampling2D":  # x2: the output is 4x the input
        return 0, 5 * size, 0, 10 * size
    return None


def convcore_runs(make, x):
    layer = make()
    t = cc.convert_to_tensor(x)
    layer(t)  # build

    def fwd():
        np.asarray(layer(t))

    def fwd_bwd():
        with cc.GradientTape() as tape:
            tape.watch(t)
            loss = ops.sum(layer(t, training=True))
        gs = tape.gradient(loss, [t] + layer.trainable_weights)
        for g in gs:
            np.asarray(g)
    return fwd, fwd_bwd


def torch_runs(make, x, layout):
    mod = make()
    a = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2) if layout == "nchw" else x))
    a.requires_grad_(True)

    def fwd():
        with torch.no_grad():
            mod(a)

    def fwd_bwd():
        mod.zero_grad(set_to_none=True)
        a.grad = None
        mod(a).sum().backward()
    return fwd, fwd_bwd


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    cc.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    roof = roofline()
    tv = f"torch {torch.__version__}" if torch is not None else "torch not importable: its columns skipped"
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads, "
          f"CPU flags: {cpu_flags()}; {tv}; OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}; "
          f"{time.strftime('%Y-%m-%d')}")
    load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else ["?"]
    print(f"# {machine_line()}; load average {' '.join(load)}")
    print(f"# {roof.header()}")
    print("| layer | input (NHWC) | pass | convcore ms | torch ms | torch / convcore | target 0.8x | "
          "convcore rate (% of the roof) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, shape, make_cc, make_torch, layout in cases():
        x = rng.standard_normal(shape, dtype=np.float32)
        ours = convcore_runs(make_cc, x)
        theirs = torch_runs(make_torch, x, layout) if torch is not None else (None, None)
        wk = work(name, shape)
        for k, label in enumerate(("forward", "forward+backward")):
            a, b = ours[k], theirs[k]
            rate = "not counted" if wk is None else None
            if b is None:  # no torch: convcore alone, the same warm-up and rounds
                a(), a()
                ma = float(np.median([timed(a) for _ in range(args.rounds)]))
                rate = rate or bound_note(wk[2 * k], wk[2 * k + 1], ma, roof)
                print(f"| {name} | {shape} | {label} | {ma * 1e3:.2f} | torch not importable | | | {rate} |",
                      flush=True)
                continue
            a(), b(), a(), b()  # warm up
            ta, tb = [], []
            for _ in range(args.rounds):
                ta.append(timed(a))
                tb.append(timed(b))
            ma, mb = float(np.median(ta)), float(np.median(tb))
            ratio = mb / ma
            rate = rate or bound_note(wk[2 * k], wk[2 * k + 1], ma, roof)
            print(f"| {name} | {shape} | {label} | {ma * 1e3:.2f} | {mb * 1e3:.2f} | {ratio:.2f}x | "
                  f"{'met' if ratio >= 0.8 else 'MISSED'} | {rate} |", flush=True)


if __name__ == "__main__":
    main()
