"""The cost of the tape: time per recorded op on small tensors, and the share of the
MNIST convnet's training step spent outside native kernels.

    python benches/tape.py [--quick]

1. Per-op cost on (4, 4) float32 tensors: numpy's own ``a + b``, ``ops.add`` without a
   tape, and ``ops.add`` recorded by a tape (forward only, and forward + gradient).
2. The course's convnet (batch 128): per step, its time and the time inside native
   calls (every ``convcore._core`` function, timed by a wrapper swapped into the
   module); the rest is the Python house around the kernels (ops, tape, layers,
   trainer, numpy glue). Median over steps of that share; goal: under 5 %.
Rounds alternate and medians are taken (the machine is shared).
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

import convcore
from convcore import mnist_demo


def median_us(f, n, rounds=7):
    ts = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            f()
        ts.append((time.perf_counter() - t) / n * 1e6)
    return float(np.median(ts))


def bench_ops(n):
    from convcore import ops
    a = np.ones((4, 4), np.float32)
    b = np.ones((4, 4), np.float32)
    ta, tb = ops.convert_to_tensor(a), ops.convert_to_tensor(b)

    def recorded():
        with convcore.GradientTape() as tape:
            tape.watch(ta)
            ops.add(ta, tb)

    def recorded_grad():
        with convcore.GradientTape() as tape:
            tape.watch(ta)
            y = ops.add(ta, tb)
        tape.gradient(y, ta)

    def tape_only():
        with convcore.GradientTape() as tape:
            tape.watch(ta)

    rows = [("numpy a + b", median_us(lambda: a + b, n)),
            ("ops.add, no tape", median_us(lambda: ops.add(ta, tb), n)),
            ("empty tape (enter, watch, exit)", median_us(tape_only, n)),
            ("ops.add recorded (incl. tape)", median_us(recorded, n)),
            ("ops.add recorded + gradient", median_us(recorded_grad, n))]
    print("| (4, 4) float32 | us per call |")
    print("|---|---:|")
    for name, us in rows:
        print(f"| {name} | {us:.1f} |")
    print(f"\nrecording one op costs {rows[3][1] - rows[2][1] - rows[1][1]:.1f} us over the unrecorded op "
          f"(tape enter/exit excluded); its gradient {rows[4][1] - rows[3][1]:.1f} us more")


class _Timed:
    """Times every function of the native module while active (its attributes are
    swapped for timing wrappers, so every caller is counted)."""

    def __init__(self, mod):
        self.mod, self.total, self.calls = mod, 0.0, 0
        self.saved = {n: f for n, f in vars(mod).items() if callable(f) and not isinstance(f, type)
                      and not n.startswith("_")}

    def __enter__(self):
        for n, f in self.saved.items():
            setattr(self.mod, n, self._wrap(f))
        return self

    def __exit__(self, *exc):
        for n, f in self.saved.items():
            setattr(self.mod, n, f)

    def _wrap(self, f):
        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                self.total += time.perf_counter() - t
                self.calls += 1
        return timed


def bench_step(repeat):
    convcore.set_seed(0)
    (xtr, ytr), _ = mnist_demo.load_scaled()
    xb, yb = xtr[:128], ytr[:128]
    m = mnist_demo.build_convnet()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    for _ in range(3):
        m.train_on_batch(xb, yb)
    steps, kernels, calls, shares = [], [], [], []
    with _Timed(convcore._core) as timed:
        for _ in range(repeat):
            timed.total, timed.calls = 0.0, 0
            t = time.perf_counter()
            m.train_on_batch(xb, yb)
            dt = time.perf_counter() - t  # the same step: its total and its time in native calls
            steps.append(dt)
            kernels.append(timed.total)
            calls.append(timed.calls)
            shares.append((dt - timed.total) / dt)
    step, kern, share = float(np.median(steps)), float(np.median(kernels)), float(np.median(shares))
    print(f"\n| MNIST convnet step, batch 128 | step ms | in native kernels ms | native calls | outside kernels |")
    print("|---|---:|---:|---:|---:|")
    print(f"| train_on_batch | {step * 1e3:.2f} | {kern * 1e3:.2f} | {int(np.median(calls))} | "
          f"{share * 100:.1f} % (goal < 5 %: {'met' if share < 0.05 else 'MISSED'}) |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    print(f"# convcore {convcore.__version__}, {convcore.get_num_threads()} threads, {platform.machine()}, "
          f"{os.cpu_count()} CPUs\n")
    if hasattr(convcore, "ops"):
        bench_ops(2000 if args.quick else 20000)
    else:
        print("(this convcore has no ops / GradientTape: per-op figures skipped)")
    bench_step(5 if args.quick else 21)


if __name__ == "__main__":
    main()
