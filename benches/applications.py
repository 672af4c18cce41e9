"""Issue 14's applications table: VGG16, ResNet50 and MobileNetV2 inference at 224x224
(batch 1 and 32), and a ResNet18 training step (batch 32), convcore against the same
architectures in PyTorch on the CPU (torchvision's models), random weights, float32,
all cores; the peak memory of each; and the time to load a large weight file against
the time to read it from disk.

    PYTHONPATH=python /path/to/torch-venv/bin/python benches/applications.py [--rounds N]
        [--cases vgg16,resnet50,mobilenet_v2,resnet18_train] [--batches 1,32] [--no-memory]
        [--no-load]

PyTorch and torchvision are not dependencies: run with an interpreter that has them and
sees convcore (the convcore side alone runs without them). Rounds alternate convcore and
torch after a warm-up of each; the table holds medians and the ratio torch_time /
convcore_time (above 1: convcore is faster; target >= 1.0x, goal >= 1.5x). GFLOP/s count
two flops per multiply-add of the convolutions and dense layers (a training step: three
times the forward's), and are set against this machine's SGEMM rate measured in the
same run (numpy's matmul of 2048x2048 float32, ``_machine.roofline``; or read from
benches/peak.py's JSON through ``CONVCORE_PEAK_JSON``).

Peak memory is measured in a fresh process per framework and case (``ru_maxrss`` after
two runs of the case minus ``ru_maxrss`` after the imports: the model's weights, its
construction and the runs), so the two frameworks' allocations do not mix. PyTorch's OpenMP threads
wait passively (see benches/layers.py).

The load row writes VGG16's weights (528 MiB of float32) in Keras's legacy HDF5 layout
(``save_weights('x.h5')``, the layout of Keras's ImageNet files), reads the file once
(warm page cache) as the disk-read anchor, then times ``load_weights`` (warm too) and
reports the peak memory it adds over the model's own weights (one copy of the weights
is 528 MiB: the target is to hold no second copy).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from _machine import cpu_flags, forward_flops, gflops_note, machine_line, roofline  # (benches/: the script's folder)

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts its threads

import convcore as cc  # noqa: E402

try:
    import torch
    import torchvision
except ImportError:  # pragma: no cover
    torch = torchvision = None

CASES = ("vgg16", "resnet50", "mobilenet_v2", "resnet18_train")


def _maxrss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


# ---------------------------------------------------------------------- models
def convcore_model(case):
    from convcore import applications as apps
    make = {"vgg16": apps.VGG16, "resnet50": apps.ResNet50, "mobilenet_v2": apps.MobileNetV2,
            "resnet18_train": apps.ResNet18}[case]
    kw = dict(weights=None)
    if case == "resnet18_train":
        kw["classifier_activation"] = None
    return make(**kw)


def torch_model(case):
    m = {"vgg16": torchvision.models.vgg16, "resnet50": torchvision.models.resnet50,
         "mobilenet_v2": torchvision.models.mobilenet_v2, "resnet18_train": torchvision.models.resnet18}[case]()
    return m


flops = forward_flops  # two flops per multiply-add of the Conv2D / DepthwiseConv2D / Dense layers


# ---------------------------------------------------------------------- runners
def convcore_runner(case, batch, rng):
    model = convcore_model(case)
    x = rng.random((batch, 224, 224, 3), dtype=np.float32)
    if case == "resnet18_train":
        y = rng.integers(0, 1000, batch)
        model.compile(optimizer=cc.optimizers.SGD(0.01, momentum=0.9),
                      loss=cc.losses.SparseCategoricalCrossentropy(from_logits=True))

        def run():
            model.train_on_batch(x, y)
    else:
        def run():
            np.asarray(model(x, training=False))
    return model, run


def torch_runner(case, batch, rng):
    model = torch_model(case)
    x = torch.from_numpy(rng.random((batch, 3, 224, 224), dtype=np.float32))
    if case == "resnet18_train":
        model.train()
        y = torch.from_numpy(rng.integers(0, 1000, batch))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()

        def run():
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()
    else:
        model.eval()

        def run():
            with torch.inference_mode():
                model(x).numpy()
    return model, run


def _time(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# ---------------------------------------------------------------------- memory (own process)
def memory_case(framework, case, batch):
    rng = np.random.default_rng(0)
    if framework == "torch":
        torch.set_num_threads(os.cpu_count())
    runner = torch_runner if framework == "torch" else convcore_runner
    base = _maxrss_mib()  # after the imports: the model's weights count
    _, run = runner(case, batch, rng)
    run()
    run()
    print(json.dumps({"peak_mib": _maxrss_mib() - base}))


def measure_memory(framework, case, batch):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (os.path.join(os.path.dirname(__file__), "..",
                                                                                "python"),
                                                                   os.environ.get("PYTHONPATH")) if p))
    out = subprocess.run([sys.executable, __file__, "--memory-case", framework, case, str(batch)],
                         capture_output=True, text=True, env=env, timeout=1800)
    if out.returncode != 0:
        return float("nan")
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]


# ---------------------------------------------------------------------- weight-file load
def load_case():
    from convcore import applications as apps
    model = apps.VGG16(weights=None)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "vgg16.h5")
        model.save_weights(path)
        size = os.path.getsize(path)
        with open(path, "rb") as f:  # warm the page cache
            while f.read(1 << 24):
                pass
        reads, loads = [], []
        for _ in range(3):
            t = time.perf_counter()
            with open(path, "rb") as f:
                while f.read(1 << 24):
                    pass
            reads.append(time.perf_counter() - t)
            base = _maxrss_mib()
            t = time.perf_counter()
            model.load_weights(path)
            loads.append(time.perf_counter() - t)
            added = _maxrss_mib() - base
        weights_mib = sum(int(np.prod(w.shape)) * 4 for w in model.weights) / 2 ** 20
    print(json.dumps({"file_mib": size / 2 ** 20, "read_s": float(np.median(reads)),
                      "load_s": float(np.median(loads)), "added_peak_mib": added, "weights_mib": weights_mib}))


def measure_load():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (os.path.join(os.path.dirname(__file__), "..",
                                                                                "python"),
                                                                   os.environ.get("PYTHONPATH")) if p))
    out = subprocess.run([sys.executable, __file__, "--load-case"], capture_output=True, text=True, env=env,
                         timeout=1800)
    if out.returncode != 0:
        print(out.stderr[-2000:])
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-load", action="store_true")
    ap.add_argument("--memory-only", action="store_true", help="only the peak-memory columns")
    ap.add_argument("--memory-case", nargs=3, metavar=("FRAMEWORK", "CASE", "BATCH"), help=argparse.SUPPRESS)
    ap.add_argument("--load-case", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_case:
        fw, case, batch = args.memory_case
        return memory_case(fw, case, int(batch))
    if args.load_case:
        return load_case()

    threads = os.cpu_count()
    if torch is not None:
        torch.set_num_threads(threads)
    roof = roofline()
    peak = roof.sgemm_gflops
    print(f"# {platform.processor() or platform.machine()}, {threads} threads, CPU flags: {cpu_flags()}; "
          f"numpy SGEMM {peak:.0f} GFLOP/s; torch {getattr(torch, '__version__', 'absent')}, "
          f"torchvision {getattr(torchvision, '__version__', 'absent')}; {time.strftime('%Y-%m-%d')}")
    load = open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else ["?"]
    print(f"# {machine_line()}; load average {' '.join(load)}")
    print(f"# {roof.header()}" + ("" if torch is not None else "; torch / torchvision not importable: their "
                                  "columns skipped"))
    rng = np.random.default_rng(0)
    if args.memory_only:
        print("| case | batch | peak MiB convcore | peak MiB torch |\n|---|---|---|---|")
        for case in args.cases.split(","):
            for batch in ([32] if case == "resnet18_train" else [int(b) for b in args.batches.split(",")]):
                mem_t = measure_memory("torch", case, batch) if torch is not None else float("nan")
                print(f"| {case} | {batch} | {measure_memory('convcore', case, batch):.0f} | {mem_t:.0f} |", flush=True)
        return
    print("| case | batch | convcore ms | torch ms | torch/convcore | convcore GFLOP/s (% of SGEMM) |"
          + ("" if args.no_memory else " peak MiB convcore | peak MiB torch |"))
    print("|---|---|---|---|---|---|" + ("" if args.no_memory else "---|---|"))
    for case in args.cases.split(","):
        batches = [32] if case == "resnet18_train" else [int(b) for b in args.batches.split(",")]
        for batch in batches:
            model, cc_run = convcore_runner(case, batch, rng)
            fl = flops(model, batch) * (3 if case == "resnet18_train" else 1)
            runs = {"convcore": cc_run}
            if torch is not None:
                runs["torch"] = torch_runner(case, batch, rng)[1]
            for fn in runs.values():  # warm-up
                fn()
            times = {k: [] for k in runs}
            for _ in range(args.rounds):
                for k, fn in runs.items():
                    times[k].append(_time(fn))
            med = {k: float(np.median(v)) for k, v in times.items()}
            ratio = med["torch"] / med["convcore"] if "torch" in med else float("nan")
            row = (f"| {case} | {batch} | {med['convcore'] * 1e3:.1f} | "
                   f"{med.get('torch', float('nan')) * 1e3:.1f} | {ratio:.2f}x | "
                   f"{gflops_note(fl, med['convcore'], roof)} |")
            if not args.no_memory:
                mem_cc = measure_memory("convcore", case, batch)
                mem_t = measure_memory("torch", case, batch) if torch is not None else float("nan")
                row += f" {mem_cc:.0f} | {mem_t:.0f} |"
            print(row, flush=True)
            del model, runs
    if not args.no_load:
        r = measure_load()
        if r:
            print(f"\nload_weights of VGG16 ({r['file_mib']:.0f} MiB legacy .h5): {r['load_s']:.2f} s vs "
                  f"{r['read_s']:.2f} s to read the file ({r['load_s'] / r['read_s']:.2f}x, target <= 2x); "
                  f"peak memory added {r['added_peak_mib']:.0f} MiB (one copy of the weights: "
                  f"{r['weights_mib']:.0f} MiB)")


if __name__ == "__main__":
    main()
