"""What the benchmark tables state about the machine they ran on."""
from __future__ import annotations


def cpu_flags():
    """The SIMD flags the kernels pick their paths by ('?' where /proc/cpuinfo is absent)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "?"
    return ", ".join(f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl") if f in flags)
