"""convcore against the libraries people use for the same job, measured in one run.

    python benches/compare.py [--quick] [--threads N] [--only NAME ...]

Prints one markdown table: median wall time of each call on float32 data (the rank,
Laplace and FFT rows say their dtype), and the ratio anchor_time / convcore_time (above
1: convcore is faster), with the target the issue set. Anchors: scipy.ndimage.correlate,
scipy.signal.correlate (method 'auto'), numpy.correlate and OpenCV cv2.filter2D
(opencv-python-headless); for issue 16's rows scipy.ndimage's median / minimum / maximum
filters and gaussian_laplace, cv2.medianBlur / erode / dilate, scipy.signal.fftconvolve
/ oaconvolve; each skipped with a note when not importable. The ``f32sums`` rows (issue
16, item 2) time the float32 filters that sum in float64 as scipy against the same calls
forced to sum in float32 (what they did before), in alternating rounds, and the
Gaussians against scipy. Then the peak memory of a 2-D filter call, measured in a fresh
subprocess from its peak resident set size.

Each row also states convcore's rate against this machine's roofline (``_machine.roofline``:
numpy's SGEMM and the 256 MiB copy bandwidth, measured in the same run, or read from
benches/peak.py's JSON through ``CONVCORE_PEAK_JSON``): the bytes are the float32 input
read once plus the output written once (2 x 4 bytes per element), the flops two per
multiply-add of the direct correlation (for an FFT method, the direct-equivalent rate).
The 2-D 3x3 rows are memory-bound and state GB/s against the copy bandwidth (the issue's
target: >= 90 %); 5x5 and 15x15 state GFLOP/s against SGEMM; the 1-D and 3-D rows state
the roof that bounds them (GB/s below the ridge, flops per byte = SGEMM / copy, else
GFLOP/s).
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

import numpy as np

from _machine import bound_note, gbps_note, gflops_note, machine_line, roofline  # (benches/: the script's folder)

import convcore
from convcore import ndimage as cnd

try:
    import scipy.ndimage as snd
    import scipy.signal as ssig
except ImportError:  # pragma: no cover
    snd = ssig = None
try:
    import cv2
except ImportError:  # pragma: no cover
    cv2 = None


def median_time(f, repeat):
    f()  # warm up (thread pool, FFT plans, page faults)
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def alternating_times(fns, repeat):
    """Median time of each function of ``fns`` (a dict), measured in alternating rounds
    (one call of each per round, after a warm-up call of each), so that a burst of load
    on the shared machine hits them alike."""
    for f in fns.values():
        f()
    ts = {k: [] for k in fns}
    for _ in range(repeat):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            ts[k].append(time.perf_counter() - t)
    return {k: float(np.median(v)) for k, v in ts.items()}


def row(case, ours, anchor_name, anchor_t, target, rate=None):
    ratio = anchor_t / ours
    status = "" if target is None else ("met" if ratio >= target else "MISSED")
    tgt = "" if target is None else f">= {target:g}x"
    rate = "" if rate is None else rate(ours)
    return (f"| {case} | {ours * 1e3:.2f} | {anchor_name} | {anchor_t * 1e3:.2f} | {ratio:.2f}x | {tgt} {status} |"
            f" {rate} |")


ROOF = None  # this run's roofline (main sets it)


def rate_2d(a, k, method=None):
    """The rate note of a 2-D k x k filter over ``a``: GB/s against the copy bandwidth
    for 3x3 (the issue's target >= 90 % of it), GFLOP/s against SGEMM otherwise."""
    nbytes, flops = 2 * a.nbytes, 2 * k * k * a.size
    eq = " direct-equivalent" if method == "fft" else ""
    if k == 3:
        def note(t):
            frac = nbytes / t / 1e9 / ROOF.copy_gbps
            return f"{gbps_note(nbytes, t, ROOF)}, target >= 90 % {'met' if frac >= 0.9 else 'MISSED'}"
        return note
    return lambda t: gflops_note(flops, t, ROOF) + eq


def rate_bound(a, taps, method=None):
    """The note of the roof that bounds a filter of ``taps`` multiply-adds per element."""
    eq = " (direct-equivalent)" if method == "fft" else ""
    return lambda t: bound_note(2 * taps * a.size, 2 * a.nbytes, t, ROOF) + eq


def bench_2d(rng, repeat, lines):
    a = rng.random((2048, 2048), dtype=np.float32)
    for k in (3, 5, 15):
        w = rng.random((k, k), dtype=np.float32)
        case = f"2-D 2048x2048, {k}x{k}, same, zero fill"
        # convcore's two entry points and the fast anchors in alternating rounds
        # (scipy.ndimage, 10-30x slower, is timed on its own).
        fns = {"nd": lambda: cnd.correlate(a, w, mode="constant"),
               "sig": lambda: convcore.correlate(a, w, mode="same")}
        if ssig is not None:
            fns["ssig"] = lambda: ssig.correlate(a, w, mode="same")
        if cv2 is not None:
            fns["cv2"] = lambda: cv2.filter2D(a, -1, w, borderType=cv2.BORDER_CONSTANT)
        t = alternating_times(fns, repeat)
        t_nd, t_sig = t["nd"], t["sig"]
        method = convcore.signal.choose_conv_method(a, w, "same")
        t_ours = min(t_nd, t_sig)
        if snd is not None:
            lines.append(row(case + " (convcore.ndimage.correlate)", t_nd, "scipy.ndimage.correlate",
                             median_time(lambda: snd.correlate(a, w, mode="constant"), max(1, repeat // 3)),
                             10 if k <= 5 else None, rate_2d(a, k)))
            lines.append(row(case + f" (convcore.correlate, {method})", t_sig, "scipy.signal.correlate (auto)",
                             t["ssig"], 1.0 if k >= 15 else None, rate_2d(a, k, method)))
        if cv2 is not None:
            lines.append(row(case + " (fastest convcore)", t_ours, "cv2.filter2D", t["cv2"],
                             1.0, rate_2d(a, k, method if t_sig < t_nd else None)))
        else:
            lines.append(f"| {case} (fastest convcore) | {t_ours * 1e3:.2f} | cv2 not importable: skipped | | | |"
                         f" {rate_2d(a, k, method if t_sig < t_nd else None)(t_ours)} |")


def bench_1d(rng, repeat, lines):
    s = rng.random(1 << 20, dtype=np.float32)
    for k in (8, 64, 512):
        w = rng.random(k, dtype=np.float32)
        case = f"1-D 2^20, k={k}, same"
        method = convcore.signal.choose_conv_method(s, w, "same")
        t = median_time(lambda: convcore.correlate(s, w, mode="same"), repeat)
        lines.append(row(case + f" ({method})", t, "numpy.correlate",
                         median_time(lambda: np.correlate(s, w, mode="same"), max(1, repeat // 2)), 1.0,
                         rate_bound(s, k, method)))
        if ssig is not None:
            lines.append(row(case + f" ({method})", t, "scipy.signal.correlate (auto)",
                             median_time(lambda: ssig.correlate(s, w, mode="same"), repeat), 1.0,
                             rate_bound(s, k, method)))


def bench_3d(rng, repeat, lines):
    v = rng.random((128, 128, 128), dtype=np.float32)
    for k in (3, 5):
        w = rng.random((k, k, k), dtype=np.float32)
        t = median_time(lambda: cnd.correlate(v, w, mode="reflect"), repeat)
        if snd is not None:
            lines.append(row(f"3-D 128^3, {k}^3, reflect", t, "scipy.ndimage.correlate",
                             median_time(lambda: snd.correlate(v, w, mode="reflect"), max(1, repeat // 3)), 5,
                             rate_bound(v, k ** 3)))
        else:
            lines.append(f"| 3-D 128^3, {k}^3, reflect | {t * 1e3:.2f} | scipy not importable: skipped | | | |"
                         f" {rate_bound(v, k ** 3)(t)} |")


MEM_CHILD = r"""
import resource, sys, numpy as np
import convcore
lib = sys.argv[1]
n = int(sys.argv[2])
if lib == "scipy":
    import scipy.ndimage as snd
def current_rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()
a = np.ones((n, n), dtype=np.float32)          # no temporaries: the earlier peak stays low
a[::7] = 2.0
w = np.linspace(0, 1, 25, dtype=np.float32).reshape(5, 5)
convcore.ndimage.correlate(a[:8, :8].copy(), w[:3, :3], mode="constant")   # start the pool
base = current_rss()
if lib == "scipy":
    out = snd.correlate(a, w, mode="constant")
else:
    out = convcore.ndimage.correlate(a, w, mode="constant")
# VmHWM (this process's peak resident set), not ru_maxrss: Linux carries ru_maxrss
# across exec, so a child of a large parent would report the parent's peak.
with open("/proc/self/status") as f:
    peak = [int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:")][0]
print(max(peak - base, 0))
"""


def bench_memory(lines, n=4096):
    """Peak memory of a 2-D filter call beyond the input: it must hold the output; the
    target is (input + extra) <= 1.5 x (input + output)."""
    in_bytes = out_bytes = n * n * 4
    res = {}
    for lib in ("convcore", "scipy"):
        if lib == "scipy" and snd is None:
            continue
        ratios = []
        for _ in range(3):  # separate fresh processes; the median is reported, all are shown
            r = subprocess.run([sys.executable, "-c", MEM_CHILD, lib, str(n)], capture_output=True, text=True)
            if r.returncode != 0:
                lines.append(f"- memory ({lib}): child failed: {r.stderr.strip()[-200:]}")
                break
            ratios.append((in_bytes + int(r.stdout.strip())) / (in_bytes + out_bytes))
        if ratios:
            res[lib] = ratios
    for lib, ratios in res.items():
        ratio = float(np.median(ratios))
        tgt = " (target <= 1.5x: " + ("met" if ratio <= 1.5 else "MISSED") + ")" if lib == "convcore" else ""
        runs = ", ".join(f"{x:.2f}" for x in ratios)
        lines.append(f"- peak memory of `{lib}` 2-D 5x5 filter on {n}x{n} float32: "
                     f"{ratio:.2f}x (input + output), median of 3 processes ({runs}){tgt}")


def bench_rank(rng, repeat, lines):
    """Issue 16's rank-filter rows: median 3x3 / 5x5 against scipy.ndimage.median_filter
    (target >= 10x) and cv2.medianBlur (>= 1x); minimum / maximum against
    scipy.ndimage and cv2.erode / cv2.dilate with a square kernel."""
    base = rng.random((2048, 2048))
    # the calls take 0.3-15 ms: more alternating rounds than the default 9 steady the
    # medians on a shared machine (the first rounds also pay for cold pages and threads;
    # a burst of load from a neighbour lasts tens of rounds of the fast cases)
    rounds = max(repeat, 80)
    for dt in (np.uint8, np.float32):
        a = (base * 255).astype(dt)
        for k in (3, 5):
            case = f"median {k}x{k}, 2048x2048 {np.dtype(dt).name}, reflect"
            fns = {"cc": lambda: cnd.median_filter(a, size=k)}
            if cv2 is not None:
                fns["cv2"] = lambda: cv2.medianBlur(a, k)
            t = alternating_times(fns, rounds)
            if snd is not None:
                lines.append(row(case, t["cc"], "scipy.ndimage.median_filter",
                                 median_time(lambda: snd.median_filter(a, size=k), 1), 10))
            if cv2 is not None:
                lines.append(row(case, t["cc"], "cv2.medianBlur", t["cv2"], 1.0))
            for name, op in (("minimum", "erode"), ("maximum", "dilate")):
                case = f"{name}_filter {k}x{k}, 2048x2048 {np.dtype(dt).name}, reflect"
                fns = {"cc": lambda: getattr(cnd, f"{name}_filter")(a, size=k)}
                if cv2 is not None:
                    kern = np.ones((k, k), np.uint8)
                    fns["cv2"] = lambda: getattr(cv2, op)(a, kern, borderType=cv2.BORDER_REFLECT)
                t = alternating_times(fns, rounds)
                if snd is not None:
                    lines.append(row(case, t["cc"], f"scipy.ndimage.{name}_filter",
                                     median_time(lambda: getattr(snd, f"{name}_filter")(a, size=k),
                                                 max(1, repeat // 3)), 10))
                if cv2 is not None:
                    lines.append(row(case, t["cc"], f"cv2.{op}", t["cv2"], 1.0))


def bench_composed(rng, repeat, lines):
    """gaussian_laplace against scipy (target >= 10x)."""
    a = rng.random((2048, 2048), dtype=np.float32)
    if snd is None:
        return
    # alternating rounds: timed in separate blocks, this row swung 7.4-10x on a shared
    # 2-core machine as its load moved between the blocks
    t = alternating_times({"cc": lambda: cnd.gaussian_laplace(a, 2.0),
                           "sp": lambda: snd.gaussian_laplace(a, 2.0)}, max(3, repeat // 2))
    lines.append(row("gaussian_laplace sigma 2, 2048x2048 float32", t["cc"], "scipy.ndimage.gaussian_laplace",
                     t["sp"], 10))


def bench_f32sums(rng, repeat, lines):
    """Issue 16, item 2: the cost of summing float32 in float64 (scipy's precision) in
    the Gaussian filters and the 1-D windows of >= 16 taps, against the same call with
    float32 sums (the weights as the float32 kernels take them), in alternating rounds;
    and the Gaussians against scipy (target >= 10x)."""
    a = rng.random((2048, 2048), dtype=np.float32)
    w17 = rng.random(17)
    wide_as = cnd._weights_as

    def f32(fn):
        def call():
            cnd._weights_as = lambda w, dtype, wide=False: wide_as(w, dtype, False)
            try:
                return fn()
            finally:
                cnd._weights_as = wide_as
        return call

    cases = [("gaussian_filter sigma 1", lambda: cnd.gaussian_filter(a, 1.0), lambda: snd.gaussian_filter(a, 1.0)),
             ("gaussian_filter sigma 2", lambda: cnd.gaussian_filter(a, 2.0), lambda: snd.gaussian_filter(a, 2.0)),
             ("gaussian_filter sigma 5", lambda: cnd.gaussian_filter(a, 5.0), lambda: snd.gaussian_filter(a, 5.0)),
             ("gaussian_laplace sigma 2", lambda: cnd.gaussian_laplace(a, 2.0), None),
             ("uniform_filter1d 31, axis 0", lambda: cnd.uniform_filter1d(a, 31, axis=0), None),
             ("uniform_filter1d 31, axis 1", lambda: cnd.uniform_filter1d(a, 31, axis=1), None),
             ("correlate1d 17 taps, axis 0", lambda: cnd.correlate1d(a, w17, axis=0), None),
             ("correlate1d 17 taps, axis 1", lambda: cnd.correlate1d(a, w17, axis=1), None)]
    for name, fn, sp in cases:
        t = alternating_times({"wide": fn, "f32": f32(fn)}, repeat)
        lines.append(row(f"{name}, 2048x2048 float32: float64 sums", t["wide"], "the same, float32 sums", t["f32"],
                         None))
        if sp is not None and snd is not None:
            lines.append(row(f"{name}, 2048x2048 float32", t["wide"], f"scipy.ndimage.{name.split()[0]}",
                             median_time(sp, max(1, repeat // 3)), 10))


def bench_fftconv(rng, repeat, lines):
    """fftconvolve / oaconvolve of a 2**20-sample signal with 4,096 taps against scipy's
    (target >= 1x)."""
    if ssig is None:
        return
    for dt in (np.float64, np.float32):
        x = rng.standard_normal(2 ** 20).astype(dt)
        k = rng.standard_normal(4096).astype(dt)
        for name in ("fftconvolve", "oaconvolve"):
            t = alternating_times({"cc": lambda: getattr(convcore.signal, name)(x, k),
                                   "sp": lambda: getattr(ssig, name)(x, k)}, repeat)
            lines.append(row(f"{name} 2^20 x 4096 taps, full, {np.dtype(dt).name}", t["cc"],
                             f"scipy.signal.{name}", t["sp"], 1.0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--threads", type=int, default=None, help="convcore threads (default: all cores)")
    ap.add_argument("--only", nargs="+", default=None, metavar="NAME",
                    help="run only these groups: 2d 1d 3d rank composed f32sums fftconv memory")
    args = ap.parse_args()
    if args.threads:
        convcore.set_num_threads(args.threads)
    repeat = 3 if args.quick else 9
    rng = np.random.default_rng(0)
    print(f"# convcore {convcore.__version__}, {convcore.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"numpy {np.__version__}" + (f", scipy {__import__('scipy').__version__}" if snd else "")
          + (f", OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads)" if cv2 else ", OpenCV not installed"))
    global ROOF
    ROOF = roofline()
    load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else ["?"]
    print(f"# {machine_line()}; {time.strftime('%Y-%m-%d')}, load average {' '.join(load)}")
    print(f"# {ROOF.header()}")
    print()
    print("| case | convcore ms | anchor | anchor ms | speed-up | target | convcore rate (% of the roof) |")
    print("|---|---:|---|---:|---:|---|---|")
    lines = []
    for bench in (bench_2d, bench_1d, bench_3d, bench_rank, bench_composed, bench_f32sums, bench_fftconv):
        if args.only and bench.__name__[len("bench_"):] not in args.only:
            continue
        bench(rng, repeat, lines)
        for line in lines:
            print(line, flush=True)
        lines.clear()
    print()
    if not args.only or "memory" in args.only:
        bench_memory(lines)
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
