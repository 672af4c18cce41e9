"""What the benchmark tables state about the machine they ran on: its CPU (model, cores,
SIMD flags, the path convcore's kernels take) and its roofline (the SGEMM rate and the
copy bandwidth), so that every row can say what fraction of the machine's peak it reached.

    from _machine import cpu_flags, machine_line, roofline, gflops_note, gbps_note
    roof = roofline()                        # measures (~1-3 s), or reads peak.py's JSON
    print(roof.header())                     # one line: the peaks and where they came from
    gflops_note(2 * m * n * k, seconds, roof)    # '143 GFLOP/s (78 % of SGEMM)'
    gbps_note(2 * array.nbytes, seconds, roof)   # '21.3 GB/s (88 % of copy)'

Units: GFLOP/s and GB/s are 1e9 per second (not 2**30). The SGEMM peak is the best of a
few timed runs of numpy's float32 matmul of 2048x2048 matrices (its BLAS on all cores);
the copy bandwidth is the best of a few ``np.copyto`` passes over 256 MiB arrays (into an
array that exists already; the read and the write both counted, 2x the array), the best of
one thread and all cores. ``benches/peak.py`` measures the same figures at more shapes and
sizes and writes them as JSON (``--json PATH``); ``roofline(cache=PATH)`` (or the
``CONVCORE_PEAK_JSON`` environment variable) reads that file instead of measuring when it
is fresh (written in the last ``max_age_h`` hours on a CPU of the same model and core count).
"""
from __future__ import annotations

import ctypes
import json
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl")
COPY_ARRAY_BYTES = 256 * 2**20
SGEMM_SIZE = 2048


# ---------------------------------------------------------------------- the CPU
def _cpuinfo_field(name):
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.split(":")[0].strip() == name:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags():
    """The SIMD flags the kernels pick their paths by ('?' where /proc/cpuinfo is absent)."""
    flags = _cpuinfo_field("flags")
    if flags is None:
        return "?"
    flags = flags.split()
    return ", ".join(f for f in SIMD_FLAGS if f in flags)


def cpu_model():
    """The CPU's model name ('AMD EPYC', ...), from /proc/cpuinfo, else platform's guess."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cache_bytes():
    """{'L1d': .., 'L2': .., 'L3': ..} in bytes for CPU 0 (per core for L1 / L2; L3 as
    the core sees it), from sysfs; an empty dict where sysfs does not say."""
    out = {}
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return out
    for e in entries:
        if not e.startswith("index"):
            continue
        try:
            level = open(os.path.join(base, e, "level")).read().strip()
            kind = open(os.path.join(base, e, "type")).read().strip()
            size = open(os.path.join(base, e, "size")).read().strip()
        except OSError:
            continue
        if kind == "Instruction":
            continue
        mult = {"K": 2**10, "M": 2**20, "G": 2**30}.get(size[-1:], 1)
        out[f"L{level}" + ("d" if level == "1" else "")] = int(size.rstrip("KMG")) * mult
    return out


def simd_level():
    """The instruction-set path convcore's kernels take now and every path this CPU can
    take, or None where this build of ``convcore._core`` does not say."""
    try:
        from convcore import _core
    except ImportError:  # pragma: no cover
        return None, None
    level = getattr(_core, "simd_level", None)
    levels = getattr(_core, "simd_levels", None)
    return (level() if callable(level) else None), (list(levels()) if callable(levels) else None)


def blas_info():
    """numpy's BLAS: {'name', 'version', 'core', 'threads'} (threadpoolctl when installed,
    else the OpenBLAS library numpy loaded, asked through ctypes; None where unknown)."""
    info = {"name": None, "version": None, "core": None, "threads": None}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["name"], info["version"] = blas.get("name"), blas.get("version")
    except Exception:  # numpy < 1.26 has no mode='dicts'
        pass
    try:
        import threadpoolctl
        for p in threadpoolctl.threadpool_info():
            if p.get("user_api") == "blas":
                info.update(threads=p.get("num_threads"), core=p.get("architecture"),
                            version=info["version"] or p.get("version"))
                return info
    except ImportError:
        pass
    np.ones((2, 2), np.float32) @ np.ones((2, 2), np.float32)  # make sure the BLAS is loaded
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line}
    except OSError:
        libs = set()
    for path in sorted(libs):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                core = getattr(lib, f"{prefix}_get_corename{suffix}", None)
                if get is None:
                    continue
                get.restype = ctypes.c_int
                info["threads"] = int(get())
                if core is not None:
                    core.restype = ctypes.c_char_p
                    info["core"] = core().decode()
                return info
    return info


def blas_line():
    b = blas_info()
    name = " ".join(str(v) for v in (b["name"], b["version"]) if v) or "unknown BLAS"
    extra = ", ".join(s for s in ((f"{b['core']} kernels" if b["core"] else ""),
                                  (f"{b['threads']} threads" if b["threads"] else "threads unknown")) if s)
    return f"numpy {np.__version__} with {name} ({extra})"


def machine_line():
    """One line for a table's header: CPU, cores, SIMD flags and convcore's kernel path."""
    level, levels = simd_level()
    path = (f"convcore SIMD path {level}" + (f" (available: {', '.join(levels)})" if levels else "")
            if level else "convcore SIMD path not exposed by this _core")
    return f"{cpu_model()}, {os.cpu_count()} cores, CPU flags: {cpu_flags()}; {path}"


# ---------------------------------------------------------------------- timing
def alternate(fns, rounds, warmup=1, inner=None):
    """Seconds per call of each function in ``fns`` ({name: f}), over ``rounds`` rounds
    that call each function in turn (a burst of load on a shared machine hits them all
    alike), after ``warmup`` calls of each. ``inner`` ({name: k}) times k calls as one
    sample (short calls). Returns {name: [seconds per call, ...]}."""
    inner = inner or {}
    for f in fns.values():
        for _ in range(warmup):
            f()
    out = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            n = inner.get(k, 1)
            t = time.perf_counter()
            for _ in range(n):
                f()
            out[k].append((time.perf_counter() - t) / n)
    return out


class ChunkPool:
    """A numpy pass split over all cores: threads over contiguous chunks (numpy releases
    the GIL in copies, reductions and fills of large arrays)."""

    def __init__(self, threads=None):
        self.threads = threads or os.cpu_count() or 1
        self.pool = ThreadPoolExecutor(self.threads)

    def chunks(self, n):
        step = -(-n // self.threads)
        return [slice(i, min(i + step, n)) for i in range(0, n, step)]

    def run(self, fn, n):
        list(self.pool.map(fn, self.chunks(n)))

    def close(self):
        self.pool.shutdown()


def sgemm_seconds(m, k, n, rounds=4, impls=None, rng=None):
    """{name: [seconds]} of float32 (m x k) @ (k x n) for each implementation in
    ``impls`` ({name: f(a, b)}, default numpy's matmul), alternated."""
    rng = rng or np.random.default_rng(0)
    a = rng.random((m, k), dtype=np.float32)
    b = rng.random((k, n), dtype=np.float32)
    impls = impls or {"numpy": np.matmul}
    return alternate({name: (lambda f=f: f(a, b)) for name, f in impls.items()}, rounds)


def copy_seconds(nbytes=COPY_ARRAY_BYTES, rounds=5, pool=None):
    """{'1 thread': [s], 'all cores': [s]} of ``np.copyto`` over float32 arrays of
    ``nbytes`` (into an array that exists already), alternated."""
    n = nbytes // 4
    src = np.full(n, 1.5, np.float32)
    dst = np.zeros(n, np.float32)  # (zeros: the first copy faults its pages in, the warm-up)
    own = pool is None
    pool = pool or ChunkPool()
    try:
        return alternate({"1 thread": lambda: np.copyto(dst, src),
                          "all cores": lambda: pool.run(lambda s: np.copyto(dst[s], src[s]), n)}, rounds)
    finally:
        if own:
            pool.close()


# ---------------------------------------------------------------------- the roofline
@dataclass
class Roofline:
    """This machine's peaks: ``sgemm_gflops`` (numpy's float32 matmul, all cores) and
    ``copy_gbps`` (read + write of a copy over arrays far larger than the caches)."""
    sgemm_gflops: float
    copy_gbps: float
    source: str
    details: dict = field(default_factory=dict)

    @property
    def ridge(self):
        """Flops per byte where a kernel stops being memory-bound on this machine."""
        return self.sgemm_gflops / self.copy_gbps

    def header(self):
        m, k, n = self.details.get("sgemm_shape") or (SGEMM_SIZE,) * 3
        shape = f"{m}^3" if m == k == n else f"({m} x {k}) @ ({k} x {n})"
        return (f"roofline: SGEMM {self.sgemm_gflops:.0f} GFLOP/s (numpy float32 matmul {shape}, all cores), "
                f"copy {self.copy_gbps:.1f} GB/s ({COPY_ARRAY_BYTES >> 20} MiB arrays, read + write counted), "
                f"ridge {self.ridge:.1f} flop/byte; {self.source}")


def _read_cache(path, max_age_h):
    """The Roofline in peak.py's JSON at ``path``, or (None, why not)."""
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        return None, f"{path} unreadable ({type(e).__name__})"
    age_h = (time.time() - float(d.get("time", 0))) / 3600
    if age_h > max_age_h:
        return None, f"{path} is {age_h:.0f} h old (limit {max_age_h:g} h)"
    if d.get("cpu_model") != cpu_model() or d.get("cores") != os.cpu_count():
        return None, f"{path} was written on another CPU ({d.get('cpu_model')}, {d.get('cores')} cores)"
    try:
        roof = Roofline(float(d["sgemm_gflops"]), float(d["copy_gbps"]),
                        f"read from {path} (peak.py, {d.get('date', '?')}, load {d.get('load_avg', '?')})", d)
    except (KeyError, TypeError, ValueError):
        return None, f"{path} lacks sgemm_gflops / copy_gbps"
    return roof, None


def roofline(cache=None, max_age_h=12.0, rounds=4):
    """This machine's SGEMM GFLOP/s and copy GB/s: read from peak.py's JSON (``cache``,
    else the ``CONVCORE_PEAK_JSON`` environment variable) when it is fresh, else measured
    now (~1-3 s: numpy's 2048^3 matmul, best of ``rounds + 2``, and a 256 MiB copy, best
    of ``rounds + 1``, each on one thread and on all cores)."""
    path = cache or os.environ.get("CONVCORE_PEAK_JSON")
    why = ""
    if path:
        roof, why = _read_cache(path, max_age_h)
        if roof is not None:
            return roof
    s = SGEMM_SIZE
    gemm = sgemm_seconds(s, s, s, rounds + 2)["numpy"]  # (the GEMM is the noisier of the two)
    copies = copy_seconds(COPY_ARRAY_BYTES, rounds + 1)
    sgemm = 2 * s**3 / min(gemm) / 1e9
    per = {k: 2 * COPY_ARRAY_BYTES / min(v) / 1e9 for k, v in copies.items()}
    load = open("/proc/loadavg").read().split()[0] if os.path.exists("/proc/loadavg") else "?"
    src = f"measured in this run (best of {rounds}; load {load})" + (f"; not read: {why}" if why else "")
    # OpenBLAS's threads spin for about 0.1 s after a matmul (measured: 100 ms of CPU
    # on this 2-core machine), on the cores the first benchmark after this measures:
    # a 2048x2048 3x3 median read 0.79-0.99 ms in that window against 0.4-0.5 after it
    time.sleep(0.5)
    return Roofline(sgemm, max(per.values()), src, {"copy_gbps_by_threads": per})


def _peak(peak, attr):
    return float(getattr(peak, attr) if isinstance(peak, Roofline) else peak)


def gflops_note(flops, seconds, peak, what="SGEMM"):
    """'143 GFLOP/s (78 % of SGEMM)': ``flops`` done in ``seconds`` against ``peak`` (a
    Roofline or a GFLOP/s figure)."""
    rate = flops / seconds / 1e9
    return f"{rate:.0f} GFLOP/s ({100 * rate / _peak(peak, 'sgemm_gflops'):.0f} % of {what})"


def gbps_note(nbytes, seconds, peak, what="copy"):
    """'21.3 GB/s (88 % of copy)': ``nbytes`` moved in ``seconds`` against ``peak`` (a
    Roofline or a GB/s figure)."""
    rate = nbytes / seconds / 1e9
    return f"{rate:.1f} GB/s ({100 * rate / _peak(peak, 'copy_gbps'):.0f} % of {what})"


def bound_note(flops, nbytes, seconds, roof):
    """The note of the roof that bounds this work: GB/s when its arithmetic intensity
    (flops per byte of the minimal traffic) is below the ridge, else GFLOP/s."""
    if nbytes and flops / nbytes < roof.ridge:
        return gbps_note(nbytes, seconds, roof)
    return gflops_note(flops, seconds, roof)


def forward_flops(model, batch):
    """Two flops per multiply-add of the Conv2D / DepthwiseConv2D / Dense layers of a
    built convcore model, for ``batch`` samples (bias adds, normalization, pooling and
    activations not counted)."""
    from convcore import layers as L
    total = 0
    for layer in model.layers:
        if isinstance(layer, L.DepthwiseConv2D):
            kh, kw = layer.kernel_size
            total += 2 * kh * kw * int(np.prod(layer.output.shape[1:]))
        elif isinstance(layer, L.Conv2D):
            kh, kw = layer.kernel_size
            c_in = layer.input.shape[-1]
            total += 2 * kh * kw * c_in // layer.groups * int(np.prod(layer.output.shape[1:]))
        elif isinstance(layer, L.Dense):
            total += 2 * int(np.prod(layer.kernel.shape))
    return total * batch
