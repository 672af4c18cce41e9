"""The shapes of src/main.rs through numpy's BLAS (OpenBLAS in numpy's wheel), for
comparison only: a BLAS is not a dependency candidate.

    python tools/gemm_choice/numpy_blas.py --threads 1   # or 2; sets OPENBLAS_NUM_THREADS

Same operand layouts as main.rs (dW reads Col transposed, dCol reads W transposed, dW
accumulates into C), GFLOP/s in main.rs's three readings, with warm caches.
"""
import argparse
import ctypes
import glob
import os
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--quick", action="store_true")
args = ap.parse_args()
os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
import numpy as np  # noqa: E402  (after the thread count is set)

SHAPES = [  # (where, op, m, k, n, threads): as SHAPES in src/main.rs
    ("VGG16 conv5 / R50 l4 3x3, b32", "Fwd", 512, 4608, 512, 1),
    ("VGG16 conv4 / R50 l3 3x3, b32", "Fwd", 512, 2304, 256, 1),
    ("VGG16 conv2 / R18 l1 3x3, b32", "Fwd", 455, 576, 64, 1),
    ("VGG16 conv3 / R50 l2 3x3, b32", "Fwd", 227, 1152, 128, 1),
    ("R50 l3 1x1 256->1024, b32", "Fwd", 196, 256, 1024, 1),
    ("R50 l3 1x1 1024->256, b32", "Fwd", 196, 1024, 256, 1),
    ("R50 l1 1x1 64->256, b32", "Fwd", 3136, 64, 256, 1),
    ("R50 l2 1x1 128->512, b32", "Fwd", 784, 128, 512, 1),
    ("R50/R18 stem 7x7x3, b32", "Fwd", 1783, 147, 64, 1),
    ("MNIST conv2 fwd, b128", "Fwd", 484, 288, 64, 1),
    ("R18 l1 dW, b32", "DW", 576, 227, 64, 1),
    ("R18 l1 dCol, b32", "DCol", 227, 64, 576, 1),
    ("R18 l3 dW, b32", "DW", 2304, 196, 256, 1),
    ("R18 l3 dCol, b32", "DCol", 196, 256, 2304, 1),
    ("R18 l4 dW, b32", "DW", 4608, 49, 512, 1),
    ("R18 l4 dCol, b32", "DCol", 49, 512, 4608, 1),
    ("R18 l3 dCol, W^T copied, b32", "DColPre", 196, 256, 2304, 1),
    ("R18 l4 dCol, W^T copied, b32", "DColPre", 49, 512, 4608, 1),
    ("MNIST conv2 dW, b128", "DW", 288, 455, 64, 1),
    ("MNIST conv2 dCol, b128", "DCol", 455, 64, 288, 1),
    ("MNIST conv2 dCol, W^T copied, b128", "DColPre", 455, 64, 288, 1),
    ("MNIST conv1 dW, b128", "DW", 9, 2704, 32, 1),
    ("R50 l3 3x3, b1", "Fwd", 196, 2304, 256, 2),
    ("R50 l4 3x3, b1", "Fwd", 49, 4608, 512, 2),
    ("R50 l3 1x1 256->1024, b1", "Fwd", 196, 256, 1024, 2),
    ("VGG16 conv2, b1", "Fwd", 910, 576, 64, 2),
    ("VGG16 conv5 3x3, b1", "Fwd", 512, 4608, 512, 2),
]


def corename():
    for lib in glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "*openblas*", "lib", "*.so*")) + \
            glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "*openblas*")):
        try:
            h = ctypes.CDLL(lib)
        except OSError:
            continue
        for sym in ("scipy_openblas_get_corename64_", "openblas_get_corename64_", "openblas_get_corename"):
            f = getattr(h, sym, None)
            if f is not None:
                f.restype = ctypes.c_char_p
                return f().decode()
    return "unknown"


def main():
    rng = np.random.default_rng(0)
    rounds, slice_s = (3, 0.02) if args.quick else (7, 0.04)
    print(f"# numpy {np.__version__}, OpenBLAS core {corename()}, OPENBLAS_NUM_THREADS={args.threads}")
    print("GFLOP/s: median of the calling thread's CPU time (1 thread only), median wall time, best round's wall time")
    print("| shape | op | m | k | n | threads | cpu median | wall median | wall best |")
    for what, op, m, k, n, t in SHAPES:
        if t != args.threads:
            continue
        if op in ("Fwd", "DColPre"):
            a, b = rng.standard_normal((m, k), np.float32), rng.standard_normal((k, n), np.float32)
        elif op == "DW":  # A = Col^T, Col stored (rows = k) x (K = m)
            a, b = rng.standard_normal((k, m), np.float32).T, rng.standard_normal((k, n), np.float32)
        else:  # B = W^T, W stored (K = n) x (c_out = k)
            a, b = rng.standard_normal((m, k), np.float32), rng.standard_normal((n, k), np.float32).T
        c = np.zeros((m, n), np.float32)
        tmp = np.empty_like(c)
        if op == "DW":
            def f():
                np.matmul(a, b, out=tmp)
                np.add(c, tmp, out=c)  # numpy has no beta = 1 matmul: the add is counted
        else:
            def f():
                np.matmul(a, b, out=c)
        f()
        t0 = time.perf_counter()
        f()
        reps = max(1, int(slice_s / max(time.perf_counter() - t0, 1e-7)))
        ts, cs = [], []
        for _ in range(rounds):
            t0, c0 = time.perf_counter(), time.thread_time()
            for _ in range(reps):
                f()
            cs.append((time.thread_time() - c0) / reps)
            ts.append((time.perf_counter() - t0) / reps)
        fl = 2 * m * n * k / 1e9
        cpu = f"{fl / np.median(cs):.0f}" if t == 1 else "-"
        print(f"| {what} | {op} | {m} | {k} | {n} | {t} | {cpu} | {fl / np.median(ts):.0f} | {fl / min(ts):.0f} |")


if __name__ == "__main__":
    sys.exit(main())
