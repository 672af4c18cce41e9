"""Training benchmarks: convcore against PyTorch CPU, measured in one run.

    python benches/train.py [--quick]

Prints (float32, batch 128, all cores):
1. training throughput of the course's MNIST convnet (samples/s) vs the same model in
   PyTorch (skipped with a note when torch is not importable);
2. forward and forward+backward time of Conv2D on the issue's shapes vs
   torch.nn.functional.conv2d;
3. peak resident memory of a full ``fit`` of the convnet on the 10,000 shipped digits
   (fresh process each), for convcore and, when available, PyTorch.
Ratios are torch_time / convcore_time (above 1: convcore is faster). Every timed row also
states convcore's GFLOP/s and its fraction of this machine's SGEMM rate (numpy's float32
matmul, measured in the same run by ``_machine.roofline``, or read from benches/peak.py's
JSON through ``CONVCORE_PEAK_JSON``). Flops: two per multiply-add of the convolutions and
the dense layer (forward); a backward counted as twice its forward (the input gradient and
the weight gradient), so a training step or a forward+backward is 3x the forward (the
convnet's first layer needs no input gradient: the step's count is ~3 % above its work).
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

import numpy as np

from _machine import forward_flops, gflops_note, machine_line, roofline  # (benches/ is the script's folder)

import convcore
from convcore import _core, mnist_demo

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover
    torch = None


def median_time(f, repeat, warmup=2):
    for _ in range(warmup):
        f()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def torch_convnet():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(1600, 10))


def bench_step(repeat, roof):
    """convcore and PyTorch steps measured in alternating rounds, so that a burst of load
    on the shared machine hits both alike; medians over all rounds."""
    convcore.set_seed(0)
    (xtr, ytr), _ = mnist_demo.load_scaled()
    xb, yb = xtr[:128], ytr[:128]
    m = mnist_demo.build_convnet()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    ours_step = lambda: m.train_on_batch(xb, yb)
    step_flops = 3 * forward_flops(m, len(xb))  # forward 2 x MACs; backward 2 x forward
    rate = lambda t: f" {gflops_note(step_flops, t, roof)} of {step_flops / 1e9:.2f} GFLOP |"
    if torch is None:
        ours = median_time(ours_step, repeat, warmup=3)
        print(f"| convnet training step, batch 128 | {ours * 1e3:.1f} ms | {128 / ours:,.0f} samples/s |"
              " torch not importable: skipped | | |" + rate(ours))
        return
    net = torch_convnet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    tx = torch.from_numpy(xb.transpose(0, 3, 1, 2).copy())
    ty = torch.from_numpy(yb)

    def torch_step():
        opt.zero_grad()
        loss = F.cross_entropy(net(tx), ty)
        loss.backward()
        opt.step()

    t_ours, t_torch = [], []
    for _ in range(max(3, repeat // 3)):
        t_ours.append(median_time(ours_step, 5, warmup=1))
        t_torch.append(median_time(torch_step, 5, warmup=1))
    ours, t = float(np.median(t_ours)), float(np.median(t_torch))
    ratio = t / ours
    print(f"| convnet training step, batch 128 | {ours * 1e3:.1f} ms | {128 / ours:,.0f} samples/s |"
          f" {t * 1e3:.1f} ms | {ratio:.2f}x | >= 1.0x {'met' if ratio >= 1 else 'MISSED'} (goal 2x) |" + rate(ours))


CONV_SHAPES = [(128, 28, 28, 1, 32, 3), (128, 13, 13, 32, 64, 3), (64, 32, 32, 64, 64, 3), (64, 32, 32, 32, 64, 5)]


def bench_conv(repeat, roof):
    rng = np.random.default_rng(0)
    for (n, h, w, ci, co, k) in CONV_SHAPES:
        x = rng.standard_normal((n, h, w, ci), dtype=np.float32)
        wt = rng.standard_normal((k, k, ci, co), dtype=np.float32) * 0.1
        b = np.zeros(co, np.float32)
        y = _core.conv_forward(x, wt, b, [1, 1], [1, 1], "valid")
        dy = np.ones_like(y)
        fwd = median_time(lambda: _core.conv_forward(x, wt, b, [1, 1], [1, 1], "valid"), repeat)
        fb = median_time(lambda: (_core.conv_forward(x, wt, b, [1, 1], [1, 1], "valid"),
                                  _core.conv_backward(x, wt, dy, [1, 1], [1, 1], "valid", True)), repeat)
        flops = 2.0 * y.size * k * k * ci
        name = f"Conv2D ({n}, {h}, {w}, {ci} -> {co}, {k})"
        line = f"| {name} | {fwd * 1e3:.2f} | {fb * 1e3:.2f} |"
        rates = f" {gflops_note(flops, fwd, roof)} | {gflops_note(3 * flops, fb, roof)} |"  # backward: 2 x forward
        if torch is None:
            print(line + " torch not importable | | | |" + rates)
            continue
        tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
        tw = torch.from_numpy(wt.transpose(3, 2, 0, 1).copy()).requires_grad_(True)
        tb = torch.zeros(co, requires_grad=True)
        with torch.no_grad():
            tf = median_time(lambda: F.conv2d(tx, tw, tb), repeat)

        def tfb():
            out = F.conv2d(tx, tw, tb)
            out.backward(torch.ones_like(out))

        tfb_t = median_time(tfb, repeat)
        r1, r2 = tf / fwd, tfb_t / fb
        st = lambda r: "met" if r >= 0.8 else "MISSED"
        print(line + f" {tf * 1e3:.2f} | {tfb_t * 1e3:.2f} | {r1:.2f}x {st(r1)} | {r2:.2f}x {st(r2)} |" + rates)


MEM_CHILD = r"""
import resource, sys, numpy as np
lib = sys.argv[1]
if lib == "convcore":
    import convcore
    from convcore import mnist_demo
    convcore.set_seed(0)
    (xtr, ytr), (xts, yts) = mnist_demo.load_scaled()
    x = np.concatenate([xtr, xts]); y = np.concatenate([ytr, yts])
    m = mnist_demo.build_convnet()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(x, y, epochs=1, batch_size=128, verbose=0)
else:
    import torch, torch.nn.functional as F
    sys.path.insert(0, sys.argv[2])
    from train import torch_convnet
    from convcore.datasets import mnist10k
    (xtr, ytr), (xts, yts) = mnist10k.load_data()
    x = torch.from_numpy((np.concatenate([xtr, xts]).astype(np.float32) / 255.0)[:, None])
    y = torch.from_numpy(np.concatenate([ytr, yts]).astype(np.int64))
    net = torch_convnet(); opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for s in range(0, len(y), 128):
        opt.zero_grad(); F.cross_entropy(net(x[s:s+128]), y[s:s+128]).backward(); opt.step()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of a large
# parent would report the parent's peak.
with open("/proc/self/status") as f:
    print([int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:")][0])
"""


def bench_memory():
    libs = ["convcore"] + (["torch"] if torch is not None else [])
    for lib in libs:
        r = subprocess.run([sys.executable, "-c", MEM_CHILD, lib, os.path.dirname(os.path.abspath(__file__))],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"- peak memory ({lib}): child failed: {r.stderr.strip()[-300:]}")
            continue
        mb = int(r.stdout.strip().splitlines()[-1]) / 2**20
        tgt = f" (target <= 400 MB: {'met' if mb <= 400 else 'MISSED'})" if lib == "convcore" else ""
        print(f"- peak resident memory of a full fit (1 epoch, 10,000 digits, batch 128), {lib}: {mb:.0f} MB{tgt}")


def _loadavg():
    try:
        return open("/proc/loadavg").read().split()[:3]
    except OSError:
        return ["?"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    repeat = 5 if args.quick else 15
    tv = f"torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else "torch not installed"
    print(f"# convcore {convcore.__version__}, {convcore.get_num_threads()} threads, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, {tv}")
    roof = roofline()
    print(f"# {machine_line()}; {time.strftime('%Y-%m-%d')}, load average {' '.join(_loadavg())}")
    print(f"# {roof.header()}\n")
    print("| case | convcore | throughput | torch | speed-up | target | convcore GFLOP/s (% of SGEMM) "
          "(step = 3x forward) |")
    print("|---|---:|---:|---:|---:|---|---|")
    bench_step(repeat, roof)
    print("\n| Conv2D (N, H, W, C_in -> C_out, k), valid | convcore fwd ms | convcore fwd+bwd ms | torch fwd ms | "
          "torch fwd+bwd ms | fwd speed-up (target >= 0.8x) | fwd+bwd speed-up (target >= 0.8x) | "
          "convcore fwd GFLOP/s (% of SGEMM) | convcore fwd+bwd GFLOP/s (% of SGEMM) (3x forward) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    bench_conv(repeat, roof)
    print()
    bench_memory()


if __name__ == "__main__":
    main()
