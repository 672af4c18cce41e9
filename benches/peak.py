"""This machine's peaks, the roofline every benchmark row is set against, in one run.

    python benches/peak.py [--rounds N] [--quick] [--json PATH]

Prints two markdown tables and one JSON line (``--json PATH`` also writes it, for
``_machine.roofline(cache=PATH)`` or ``CONVCORE_PEAK_JSON=PATH``):

1. SGEMM: GFLOP/s of float32 (M x K) @ (K x N) on all cores, for numpy (its BLAS; name,
   kernels and thread count stated), convcore's own GEMM (the ``gemm`` crate, through
   ``_core.dense_forward`` without a bias: on the CPU ``convcore.ops.matmul`` is numpy's
   matmul, the crate runs under Dense and Conv2D) and, when importable, PyTorch's
   ``torch.mm``; on a square 2048^3 and on the GEMM shapes of real convolutions (im2col
   of a 3x3 conv). The SGEMM peak is numpy's best over the shapes.
2. Memory bandwidth: GB/s of copy (read + write: 2x the array), read (a max reduction: 1x) and
   write (a fill: 1x) over float32 arrays that fit in L2, in L3, of a 2048x2048 image
   (16 MiB, what benches/compare.py filters) and of 256 MiB (far past the caches), on one
   thread (numpy) and on all cores (numpy over contiguous chunks in threads); a copy
   into a new array (``a.copy()``: the page faults of a fresh result included, what
   every op that returns a new array pays); and convcore's native elementwise passes
   (``ops.relu``, ``_core.activation_backward('relu', ...)``: all cores, a new result),
   each with its fraction of the copy at that size. The copy bandwidth of the roofline
   is the best 256 MiB copy (one thread or all cores).

Every figure alternates with the others of its table over ``--rounds`` rounds after a
warm-up; the tables show the best (the peak: noise only slows a run down) and the
median. GFLOP/s and GB/s are 1e9 per second. The whole run takes ~20-40 s.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import (COPY_ARRAY_BYTES, ChunkPool, alternate, blas_info, blas_line, cache_bytes,  # noqa: E402
                      cpu_flags, cpu_model, machine_line, simd_level)

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # torch's threads must not spin between its rounds

import convcore  # noqa: E402
from convcore import _core, ops  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

# (M, K, N, what it is)
GEMM_SHAPES = [
    (2048, 2048, 2048, "square"),
    (6272, 576, 64, "3x3 conv 64->64 on 56x56, batch 2 (im2col)"),
    (15488, 288, 64, "3x3 conv 32->64 on 13x13, batch 128 (MNIST convnet's 2nd)"),
    (3136, 2304, 256, "3x3 conv 256->256 on 14x14, batch 16 (im2col)"),
]


def mib(b):
    return f"{b / 2**20:g} MiB" if b >= 2**20 else f"{b / 2**10:g} KiB"


# ---------------------------------------------------------------------- SGEMM
def bench_gemm(rounds, rng):
    impls = {"numpy": np.matmul, "convcore": lambda a, b: _core.dense_forward(a, b)}
    if torch is not None:
        impls["torch"] = lambda a, b: torch.mm(a, b)
    rows = []
    for m, k, n, what in GEMM_SHAPES:
        a = rng.random((m, k), dtype=np.float32)
        b = rng.random((k, n), dtype=np.float32)
        ref = a @ b
        got = _core.dense_forward(a, b)
        if not np.allclose(got, ref, rtol=1e-4, atol=1e-3 * k):
            raise SystemExit(f"convcore's GEMM disagrees with numpy at {(m, k, n)}: "
                             f"max |diff| {np.abs(got - ref).max():g}")
        ta, tb = torch.from_numpy(a) if torch else None, torch.from_numpy(b) if torch else None
        fns = {name: (lambda f=f, x=(ta if name == "torch" else a), y=(tb if name == "torch" else b): f(x, y))
               for name, f in impls.items()}
        flops = 2 * m * k * n
        # short calls are timed a few at a time: a sample of >= ~20 ms
        est = flops / 100e9
        inner = {name: max(1, int(0.02 / est)) for name in fns}
        ts = alternate(fns, rounds, warmup=1, inner=inner)
        rec = {"m": m, "k": k, "n": n, "what": what, "flops": flops}
        for name, v in ts.items():
            rec[f"{name}_best_gflops"] = flops / min(v) / 1e9
            rec[f"{name}_median_gflops"] = flops / float(np.median(v)) / 1e9
        rows.append(rec)
    return rows


def print_gemm(rows, blas, threads):
    tv = (f" | torch {torch.__version__} ({torch.get_num_threads()} threads) best (median)" if torch else "")
    print(f"| float32 (M x K) @ (K x N) | GFLOP | numpy ({blas}) GFLOP/s best (median) | "
          f"convcore gemm crate ({threads} threads) best (median) | convcore / numpy (best){tv} |")
    print("|---|---:|---:|---:|---:|" + ("---:|" if torch else ""))
    for r in rows:
        line = (f"| ({r['m']} x {r['k']}) @ ({r['k']} x {r['n']}): {r['what']} | {r['flops'] / 1e9:.2f} | "
                f"{r['numpy_best_gflops']:.0f} ({r['numpy_median_gflops']:.0f}) | "
                f"{r['convcore_best_gflops']:.0f} ({r['convcore_median_gflops']:.0f}) | "
                f"{r['convcore_best_gflops'] / r['numpy_best_gflops']:.2f}x |")
        if torch:
            line += f" {r['torch_best_gflops']:.0f} ({r['torch_median_gflops']:.0f}) |"
        print(line, flush=True)
    if not torch:
        print("\n(torch not importable: its column skipped)")


# ---------------------------------------------------------------------- bandwidth
def bandwidth_sizes():
    """(label, bytes of one array): L2 (the pair of a copy fills half of one core's L2),
    L3 (a copy's pair fills a quarter of it), a 2048x2048 float32 image, 256 MiB."""
    c = cache_bytes()
    l2, l3 = c.get("L2", 2**20), c.get("L3", 32 * 2**20)
    return [(f"in L2 ({mib(l2)} per core)", l2 // 4), (f"in L3 ({mib(l3)})", l3 // 8),
            ("2048x2048 float32 image", 2048 * 2048 * 4), ("far past L3", COPY_ARRAY_BYTES)]


def bench_bandwidth(rounds, rng, pool):
    rows = []
    for label, nbytes in bandwidth_sizes():
        n = nbytes // 4
        x = rng.standard_normal(n, dtype=np.float32)
        dst = np.zeros(n, np.float32)
        dy = rng.standard_normal(n, dtype=np.float32)
        xt, dyt = ops.convert_to_tensor(x), ops.convert_to_tensor(dy)
        partial = np.zeros(pool.threads, np.float64)
        many = nbytes >= 4 * 2**20  # all-cores numpy passes where a chunk outweighs a thread hand-off

        def pool_max():
            chunks = pool.chunks(n)
            list(pool.pool.map(lambda ic: partial.__setitem__(ic[0], np.maximum.reduce(x[ic[1]])), enumerate(chunks)))

        # (name, threads, bytes counted as a multiple of the array, function)
        passes = [
            ("copy (np.copyto into an existing array)", "1", 2, lambda: np.copyto(dst, x)),
            ("read (np.maximum.reduce)", "1", 1, lambda: np.maximum.reduce(x)),
            ("write (ndarray.fill)", "1", 1, lambda: dst.fill(1.0)),
            ("copy into a new array (a.copy(): page faults included)", "1", 2, lambda: x.copy()),
        ]
        if many:
            passes += [
                ("copy (np.copyto into an existing array)", "all", 2,
                 lambda: pool.run(lambda s: np.copyto(dst[s], x[s]), n)),
                ("read (np.maximum.reduce)", "all", 1, pool_max),
                ("write (ndarray.fill)", "all", 1, lambda: pool.run(lambda s: dst[s].fill(1.0), n)),
            ]
        passes += [
            ("numpy np.maximum(x, 0) (ReLU, new result)", "1", 2, lambda: np.maximum(x, 0)),
            ("convcore ops.relu (native, new result)", "all", 2, lambda: ops.relu(xt)),
            ("convcore relu backward (native: reads x, dy; writes dx)", "all", 3,
             lambda: _core.activation_backward("relu", x, None, dy)),
        ]
        fns = {i: p[3] for i, p in enumerate(passes)}
        inner = {i: max(1, int(64 * 2**20 // (p[2] * nbytes))) for i, p in enumerate(passes)}
        ts = alternate(fns, rounds, warmup=2, inner=inner)
        recs = []
        for i, (name, thr, mult, _) in enumerate(passes):
            moved = mult * nbytes
            recs.append({"pass": name, "size": label, "array_bytes": nbytes, "threads": thr,
                         "bytes_per_call": moved, "best_gbps": moved / min(ts[i]) / 1e9,
                         "median_gbps": moved / float(np.median(ts[i])) / 1e9})
        copy = max(r["best_gbps"] for r in recs if r["pass"].startswith("copy (np.copyto"))
        for r in recs:
            r["fraction_of_copy"] = r["best_gbps"] / copy
        rows += recs
        del x, dst, dy, xt, dyt
    return rows


def print_bandwidth(rows, threads):
    print("| pass (bytes counted) | array | threads | GB/s best (median) | % of the best copy at that size |")
    print("|---|---|---|---:|---:|")
    for r in rows:
        thr = "1" if r["threads"] == "1" else f"all ({threads})"
        mult = r["bytes_per_call"] // r["array_bytes"]
        print(f"| {r['pass']} ({mult}x) | {mib(r['array_bytes'])}, {r['size']} | {thr} | "
              f"{r['best_gbps']:.1f} ({r['median_gbps']:.1f}) | {100 * r['fraction_of_copy']:.0f} % |", flush=True)


# ---------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=None, help="rounds of each table (default 7, --quick 3)")
    ap.add_argument("--quick", action="store_true", help="3 rounds")
    ap.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    args = ap.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    if rounds < 1:
        raise SystemExit(f"--rounds must be >= 1, got {rounds}")
    t0 = time.time()
    load0 = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else ["?"]
    rng = np.random.default_rng(0)
    threads = convcore.get_num_threads()
    if torch is not None:
        torch.set_num_threads(os.cpu_count())
    blas = blas_info()
    level, levels = simd_level()
    print(f"# {machine_line()}")
    print(f"# {blas_line()}; convcore {convcore.__version__} ({threads} threads)"
          + (f"; torch {torch.__version__}" if torch else "; torch not importable")
          + f"; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {' '.join(load0)}; "
            f"{rounds} alternated rounds")
    print()
    gemm = bench_gemm(rounds, rng)
    bl = " ".join(str(v) for v in (blas["name"], blas["version"]) if v) or "BLAS"
    print_gemm(gemm, f"{bl}, {blas['threads'] or '?'} threads", threads)
    best = max(gemm, key=lambda r: r["numpy_best_gflops"])
    best_cc = max(gemm, key=lambda r: r["convcore_best_gflops"])
    print(f"\nSGEMM peak: {best['numpy_best_gflops']:.0f} GFLOP/s (numpy, ({best['m']} x {best['k']}) @ "
          f"({best['k']} x {best['n']})); convcore's GEMM: {best_cc['convcore_best_gflops']:.0f} GFLOP/s "
          f"(({best_cc['m']} x {best_cc['k']}) @ ({best_cc['k']} x {best_cc['n']}))\n")
    pool = ChunkPool()
    try:
        bw = bench_bandwidth(rounds, rng, pool)
    finally:
        pool.close()
    print_bandwidth(bw, pool.threads)
    far = [r for r in bw if r["array_bytes"] == COPY_ARRAY_BYTES]
    copies = {r["threads"]: r["best_gbps"] for r in far if r["pass"].startswith("copy (np.copyto")}
    copy = max(copies.values())
    relu = next(r for r in far if r["pass"].startswith("convcore ops.relu"))
    print(f"\ncopy bandwidth: {copy:.1f} GB/s ({mib(COPY_ARRAY_BYTES)} arrays, read + write; one thread "
          f"{copies['1']:.1f}, all cores {copies.get('all', float('nan')):.1f}); convcore's native ReLU there: "
          f"{relu['best_gbps']:.1f} GB/s ({100 * relu['best_gbps'] / copy:.0f} % of the copy); ridge "
          f"{best['numpy_best_gflops'] / copy:.1f} flop/byte\n")
    load1 = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else ["?"]
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "time": time.time(),
        "cpu_model": cpu_model(), "cores": os.cpu_count(), "cpu_flags": cpu_flags(),
        "simd_level": level, "simd_levels": levels, "caches": cache_bytes(),
        "numpy": np.__version__, "blas": blas, "convcore": convcore.__version__, "convcore_threads": threads,
        "torch": getattr(torch, "__version__", None),
        "sgemm_gflops": best["numpy_best_gflops"],
        "sgemm_shape": [best["m"], best["k"], best["n"]],
        "convcore_gemm_gflops": best_cc["convcore_best_gflops"],
        "copy_gbps": copy, "copy_gbps_1thread": copies["1"], "copy_gbps_all_cores": copies.get("all"),
        "copy_array_bytes": COPY_ARRAY_BYTES,
        "load_avg": " ".join(load0), "load_avg_after": " ".join(load1), "rounds": rounds,
        "seconds": round(time.time() - t0, 1), "gemm": gemm, "bandwidth": bw,
    }
    line = json.dumps(result, separators=(",", ":"))
    print(line)
    if args.json:
        with open(args.json, "w") as f:
            f.write(line + "\n")
        print(f"\n(written to {args.json}; took {result['seconds']} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
