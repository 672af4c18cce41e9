"""GPU benchmarks: convcore's wgpu backend on whatever adapter is present, beside PyTorch
on the same device when PyTorch has CUDA.

    python benches/gpu.py [--quick] [--repeat N]

Prints (float32), for the adapter convcore uses:
1. 2-D filtering of a 2048x2048 image (3x3, 5x5, 15x15, zero fill) vs
   torch.nn.functional.conv2d on the same card;
2. Conv2D forward and forward+backward on the training benchmark's shapes vs
   torch.nn.functional.conv2d (+ autograd);
3. the MNIST convnet's training throughput (samples/s, batch 128) vs the same model in
   PyTorch on the card.
Times are medians of device-synchronized runs with data already on the device (the
read-back is not timed, except the one loss read-back per training step, which PyTorch
also does with .item()). Ratios are torch_time / convcore_time (above 1: convcore is
faster). On a software device (lavapipe) the numbers only show the path works.
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np

import convcore
from convcore import _core, mnist_demo

try:
    import torch
    import torch.nn.functional as F
    CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover
    torch, CUDA = None, False

CONV_SHAPES = [(128, 28, 28, 1, 32, 3), (128, 13, 13, 32, 64, 3), (64, 32, 32, 64, 64, 3), (64, 32, 32, 32, 64, 5)]


def med(f, repeat, sync, warmup=2):
    for _ in range(warmup):
        f()
    sync()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        sync()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def tsync():
    if CUDA:
        torch.cuda.synchronize()


def ratio(t_torch, t_ours):
    return f"{t_torch / t_ours:.2f}x" if t_torch else "n/a"


def bench_filter(repeat, quick):
    rows = []
    n = 512 if quick else 2048
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    ag = _core.gpu_upload(a)
    for k in (3, 5, 15):
        w = rng.random((k, k), dtype=np.float32)
        t = med(lambda: _core.gpu_correlate(ag, w, "ndimage", mode="constant"), repeat, _core.gpu_sync)
        tt = None
        if CUDA:
            at = torch.from_numpy(a).cuda()[None, None]
            wt = torch.from_numpy(w).cuda()[None, None]
            tt = med(lambda: F.conv2d(at, wt, padding=k // 2), repeat, tsync)
        rows.append((f"filter {n}x{n}, {k}x{k}, same, zero fill", t, tt))
    return rows


def bench_conv(repeat, quick):
    rows = []
    rng = np.random.default_rng(1)
    for (n, h, w_, ci, co, k) in CONV_SHAPES:
        if quick:
            n = 8
        x = rng.standard_normal((n, h, w_, ci), dtype=np.float32)
        w = (rng.standard_normal((k, k, ci, co), dtype=np.float32) * 0.1).astype(np.float32)
        b = np.zeros(co, np.float32)
        xg, wg, bg = _core.gpu_upload(x), _core.gpu_upload(w), _core.gpu_upload(b)
        y = _core.gpu_conv_forward(xg, wg, bg)
        dz = _core.gpu_upload(np.ones(y.shape, np.float32))
        t_f = med(lambda: _core.gpu_conv_forward(xg, wg, bg), repeat, _core.gpu_sync)
        t_fb = med(lambda: (_core.gpu_conv_forward(xg, wg, bg), _core.gpu_conv_backward(xg, wg, dz)), repeat,
                   _core.gpu_sync)
        tf = tfb = None
        if CUDA:
            xt = torch.from_numpy(x).cuda().permute(0, 3, 1, 2).contiguous().requires_grad_(True)
            wt = torch.from_numpy(w).cuda().permute(3, 2, 0, 1).contiguous().requires_grad_(True)
            bt = torch.zeros(co, device="cuda", requires_grad=True)
            tf = med(lambda: F.conv2d(xt, wt, bt), repeat, tsync)

            def fb():
                out = F.conv2d(xt, wt, bt)
                out.backward(torch.ones_like(out))
            tfb = med(fb, repeat, tsync)
        name = f"Conv2D ({n}, {h}, {w_}, {ci} -> {co}, {k})"
        rows.append((name + " fwd", t_f, tf))
        rows.append((name + " fwd+bwd", t_fb, tfb))
    return rows


def bench_train(repeat, quick):
    bs = 32 if quick else 128
    convcore.set_seed(0)
    (xtr, ytr), _ = mnist_demo.load_scaled()
    xb, yb = xtr[:bs], ytr[:bs]
    m = mnist_demo.build_convnet()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"], device="gpu")
    t = med(lambda: m.train_on_batch(xb, yb), repeat, _core.gpu_sync)
    tt = None
    if CUDA:
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(1600, 10)).cuda()
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        xt = torch.from_numpy(xb).permute(0, 3, 1, 2).contiguous()
        yt = torch.from_numpy(yb)

        def step():  # the batch comes from the host, as convcore's does
            opt.zero_grad()
            loss = F.cross_entropy(net(xt.cuda()), yt.cuda())
            loss.backward()
            opt.step()
            return loss.item()
        tt = med(step, repeat, tsync)
    return [(f"MNIST convnet training step (batch {bs}); samples/s {bs / t:.0f}"
             + (f" vs torch {bs / tt:.0f}" if tt else ""), t, tt)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--repeat", type=int, default=None)
    args = ap.parse_args()
    repeat = args.repeat or (2 if args.quick else 10)
    info = _core.gpu_info()
    print(f"convcore GPU: {info['name']} ({info['backend']}, {info['type']}, driver {info['driver']})")
    print(f"PyTorch: {torch.__version__ + (' CUDA ' + torch.cuda.get_device_name(0) if CUDA else ' (no CUDA)') if torch else 'not installed'}")
    print(f"host: {platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}\n")
    rows = bench_filter(repeat, args.quick) + bench_conv(repeat, args.quick) + bench_train(max(3, repeat // 2), args.quick)
    print("| case | convcore GPU ms | torch CUDA ms | ratio (torch / convcore) |")
    print("|---|---:|---:|---:|")
    for name, t, tt in rows:
        print(f"| {name} | {t * 1e3:.2f} | {tt * 1e3:.2f} | {ratio(tt, t)} |" if tt else
              f"| {name} | {t * 1e3:.2f} | n/a | n/a |")


if __name__ == "__main__":
    main()
