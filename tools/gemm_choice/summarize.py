"""Combine several runs of gemm_choice (and numpy_blas.py) into one table per part.

    python tools/gemm_choice/summarize.py RESULTS_DIR

Reads RESULTS_DIR/{avx2,v4}.<part>.r*.md (outputs of the default build and of the
`gemm-v4,mm-avx512` build), mmthreads.t2.r*.md and numpy.{t1,t2}.r*.md; each cell is
the median over the runs of that configuration. The libraries both builds contain
(private-gemm-x86, faer) are pooled over both.
"""
import glob
import os
import statistics
import sys

LIBS = ["gemm", "matrixmultiply", "pgx86-avx2", "pgx86-avx512", "faer"]


def tables(path):
    """{(title, reading): {row label: [cells]}} of one output file."""
    out, key = {}, None
    for line in open(path):
        line = line.rstrip("\n")
        if ": GFLOP/s, " in line and not line.startswith("|"):
            title, reading = line.split(": GFLOP/s, ", 1)
            key = (title, reading)
            out[key] = {}
        elif key and line.startswith("| ") and not line.startswith("| shape") and not line.startswith("| K x"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            nlab = len(cells) - len(LIBS)
            out[key][tuple(cells[:nlab])] = cells[nlab:]
    return out


def gather(pattern, title, reading):
    runs = [tables(f).get((title, reading), {}) for f in sorted(glob.glob(pattern))]
    labels = []
    for r in sorted(runs, key=len, reverse=True):  # the newest layout has the most rows
        labels += [lab for lab in r if lab not in labels]
    return labels, runs, len(runs)


def med(values):
    v = [float(x) for x in values if x not in ("-", "")]
    return f"{statistics.median(v):.0f}" if v else "-"


def numpy_col(d, part, col):
    res = {}
    for f in sorted(glob.glob(os.path.join(d, f"numpy.{part}.r*.md"))):
        for line in open(f):
            if line.startswith("| ") and not line.startswith("| shape"):
                c = [x.strip() for x in line.strip().strip("|").split("|")]
                res.setdefault(tuple(c[:6]), []).append(c[6 + col])
    return res


def shapes_table(d, part, reading, np_col):
    la, ra, na = gather(os.path.join(d, f"avx2.{part}.r*.md"), "shapes", reading)
    lv, rv, nv = gather(os.path.join(d, f"v4.{part}.r*.md"), "shapes", reading)
    _, rm, nm = gather(os.path.join(d, f"mmthreads.{part}.r*.md"), "shapes", reading)
    npc = numpy_col(d, part, np_col)
    print(f"\n### {part}: GFLOP/s, {reading} (runs: {na} default build, {nv} x86-v4 build, {nm} mm-threading)\n")
    print("| shape | op | m | k | n | thr | gemm AVX2 | gemm AVX-512 (x86-v4) | matrixmultiply AVX2 | "
          "matrixmultiply AVX-512 | pgx86 AVX2 | pgx86 AVX-512 | faer | OpenBLAS (numpy) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for lab in la:
        col = lambda runs, i: [r[lab][i] for r in runs if lab in r]
        mm_v4 = col(rv, 1) if part == "t1" else col(rm, 1)
        cells = [med(col(ra, 0)), med(col(rv, 0)), med(col(ra, 1)), med(mm_v4),
                 med(col(ra, 2) + col(rv, 2)), med(col(ra, 3) + col(rv, 3)), med(col(ra, 4) + col(rv, 4)),
                 med(npc.get(lab[:6], []))]
        print("| " + " | ".join(lab) + " | " + " | ".join(cells) + " |")


def pieces_table(d, title, reading):
    la, ra, na = gather(os.path.join(d, "avx2.pack.r*.md"), title, reading)
    lv, rv, nv = gather(os.path.join(d, "v4.pack.r*.md"), title, reading)
    print(f"\n### {title}: GFLOP/s, {reading} (runs: {na} default build, {nv} x86-v4 build)\n")
    nlab = len(la[0]) if la else 0
    print("| " + " | ".join(["K x c_out", "op", "rows", "piece rows"][:nlab] if nlab == 4 else ["K x c_out", "rows", "piece rows"]) +
          " | gemm AVX2 | gemm AVX-512 | matrixmultiply AVX2 | matrixmultiply AVX-512 | pgx86 AVX2 | pgx86 AVX-512 |")
    print("|" + "---|" * (nlab + 6))
    for lab in la:
        col = lambda runs, i: [r[lab][i] for r in runs if lab in r]
        cells = [med(col(ra, 0)), med(col(rv, 0)), med(col(ra, 1)), med(col(rv, 1)),
                 med(col(ra, 2) + col(rv, 2)), med(col(ra, 3) + col(rv, 3))]
        print("| " + " | ".join(lab) + " | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    d = sys.argv[1]
    cpu = "CPU time of the calling thread, median (1-thread rows only)"
    shapes_table(d, "t1", cpu, 0)
    shapes_table(d, "t2", "wall clock, best round", 2)
    shapes_table(d, "t2", "wall clock, median", 1)
    pieces_table(d, "packing", cpu)
    pieces_table(d, "dW over pieces", cpu)
