"""Issue 15, item 3: the warm-up tax. The time of each of the first training steps of a
fresh model against its steady state, convcore against the same model in PyTorch, each
case in a fresh process (what warms up - memory the allocator has not handed out yet,
optimizer state, the thread pool - is per process).

    python benches/warmup.py [--cases convnet,resnet18] [--modes train_on_batch,fit]
        [--frameworks convcore,torch] [--envs default,glibc] [--steps 40] [--repeats 3]
        [--resnet-batch 8] [--resnet-size 112] [--torch-python /tmp/benchvenv/bin/python]
    python benches/warmup.py --by-kernel [--cases ...] [--envs ...]   # where the faults are

Cases: ``convnet`` is the course's MNIST convnet (``mnist_demo.build_convnet()``), batch
128, Adam, sparse categorical cross-entropy (as benches/train.py); ``resnet18`` is
``applications.ResNet18`` (random weights, logits out) trained with SGD + momentum 0.9 on
random images, at ``--resnet-batch`` x ``--resnet-size``^2 (default 8 x 112x112: the
issue's batch 32 at 224x224 takes ~5 s a step here, too long for 40 steps per process).

Modes: ``train_on_batch`` repeats one batch; ``fit`` is one epoch over ``--steps``
batches with a callback timing each batch (on_train_batch_begin to on_train_batch_end).
PyTorch's rows are the same loops written by hand (``torch.set_num_threads`` = convcore's
thread count; torch is run with ``--torch-python``, an interpreter that has it; it is never
imported by convcore or its tests).

Per case: step 1, 2 and 3, the steady state (median of steps 20 to 40, 1-based), the
ratios step2 / steady (target <= 1.10) and step1 / steady, and the minor page faults per
step (``getrusage``): a fault is a page the process touches for the first time (or again,
after the allocator gave it back to the OS), and the CPU time the kernel spent for the
process in each step (``ru_stime``: mostly those faults; less disturbed than wall time by
other processes on a shared machine). ``--envs`` runs convcore under glibc malloc
settings as well, which need no code change and tell what a native buffer pool would
gain: ``glibc`` = ``MALLOC_MMAP_THRESHOLD_=32 MiB MALLOC_TRIM_THRESHOLD_=1 GiB
MALLOC_TOP_PAD_=64 MiB`` (freed buffers stay in the process instead of going back to the
OS), ``arena1`` = ``MALLOC_ARENA_MAX=1`` (one malloc arena for all threads, the kernels'
worker threads included), ``nothp`` = ``CONVCORE_HUGE_PAGES=0``. Each figure is the median
over ``--repeats`` fresh processes, run in alternating order (the machine is shared).

``--by-kernel`` instead wraps every ``convcore._core`` function and prints, per function,
its calls, the MiB it returns, its page faults at step 1, step 2 and per steady step, and
its time: which buffers a pool would have to keep.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

ENVS = {
    "default": {},
    "glibc": {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30),
              "MALLOC_TOP_PAD_": str(64 << 20)},
    "arena1": {"MALLOC_ARENA_MAX": "1"},
    "arena1+glibc": {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": str(32 << 20),
                     "MALLOC_TRIM_THRESHOLD_": str(1 << 30), "MALLOC_TOP_PAD_": str(64 << 20)},
    "nothp": {"CONVCORE_HUGE_PAGES": "0"},
}
STEADY = slice(19, 40)  # steps 20..40 (1-based)


# ---------------------------------------------------------------------- children
def _faults():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _sys_s():
    """CPU seconds the kernel spent for this process (page faults are most of it here);
    less disturbed by other processes' load than wall time."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def _convcore_case(case, steps, rb, rs):
    """(model, xs, ys, batch) with ``steps`` batches of data."""
    import numpy as np
    import convcore as cc
    cc.set_seed(0)
    if case == "convnet":
        from convcore import mnist_demo
        (xtr, ytr), _ = mnist_demo.load_scaled()
        batch = 128
        reps = -(-steps * batch // len(xtr))
        x, y = np.concatenate([xtr] * reps)[:steps * batch], np.concatenate([ytr] * reps)[:steps * batch]
        m = mnist_demo.build_convnet()
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    else:
        from convcore import applications
        batch = rb
        rng = np.random.default_rng(0)
        x = rng.random((steps * batch, rs, rs, 3), dtype=np.float32)
        y = rng.integers(0, 1000, steps * batch)
        m = applications.ResNet18(weights=None, input_shape=(rs, rs, 3), classifier_activation=None)
        m.compile(optimizer=cc.optimizers.SGD(0.01, momentum=0.9),
                  loss=cc.losses.SparseCategoricalCrossentropy(from_logits=True))
    return m, x, y, batch


def child_convcore(case, mode, steps, rb, rs):
    import convcore as cc
    m, x, y, batch = _convcore_case(case, steps, rb, rs)
    times, faults, sys_s = [], [], []
    if mode == "train_on_batch":
        xb, yb = x[:batch], y[:batch]
        for _ in range(steps):
            f0, s0, t0 = _faults(), _sys_s(), time.perf_counter()
            m.train_on_batch(xb, yb)
            times.append(time.perf_counter() - t0)
            faults.append(_faults() - f0)
            sys_s.append(_sys_s() - s0)
    else:
        class Timer(cc.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                self.f0, self.s0, self.t0 = _faults(), _sys_s(), time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                times.append(time.perf_counter() - self.t0)
                faults.append(_faults() - self.f0)
                sys_s.append(_sys_s() - self.s0)

        m.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0, callbacks=[Timer()])
    return {"times": times, "faults": faults, "sys": sys_s, "threads": cc.get_num_threads()}


def child_by_kernel(case, steps, rb, rs):
    """Per ``convcore._core`` function: calls, page faults and ms per step, and the MiB it
    returns, over ``steps`` train_on_batch steps (each native function wrapped, so
    every caller is counted)."""
    import numpy as np
    import convcore as cc
    from convcore import _core
    m, x, y, batch = _convcore_case(case, 1, rb, rs)
    rec = {}

    def wrap(name, f):
        def counted(*args, **kw):
            f0, t0 = _faults(), time.perf_counter()
            try:
                out = f(*args, **kw)
            finally:
                r = rec.setdefault(name, [0, 0, 0.0, 0])
                r[0] += 1
                r[1] += _faults() - f0
                r[2] += time.perf_counter() - t0
            outs = out if isinstance(out, (tuple, list)) else (out,)
            rec[name][3] += sum(int(o.nbytes) for o in outs if isinstance(o, np.ndarray))
            return out
        return counted

    for name, f in list(vars(_core).items()):
        if callable(f) and not isinstance(f, type) and not name.startswith("_"):
            setattr(_core, name, wrap(name, f))
    per_step = []
    for _ in range(steps):
        rec.clear()
        f0, t0 = _faults(), time.perf_counter()
        m.train_on_batch(x, y)
        per_step.append({"total": [0, _faults() - f0, time.perf_counter() - t0, 0], **{k: list(v) for k, v in rec.items()}})
    return {"steps": per_step, "threads": cc.get_num_threads()}


def print_by_kernel(results, title):
    """The by-kernel table: faults (and ms) at step 1, step 2 and per steady step."""
    names = sorted({k for r in results for s in r["steps"] for k in s}, key=lambda k: (k != "total", k))
    def med(name, i, j):
        return _median([r["steps"][i].get(name, [0, 0, 0.0, 0])[j] for r in results])
    def steady(name, j):
        v = [r["steps"][i].get(name, [0, 0, 0.0, 0])[j] for r in results for i in range(19, len(r["steps"]))]
        return sum(v) / len(v)
    print(f"\n{title}\n")
    print("| native function | calls / step | MiB returned / step | faults step 1 | faults step 2 | faults per steady "
          "step (mean) | ms step 1 | ms step 2 | ms steady (mean) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [(n, steady(n, 1)) for n in names]
    rows.sort(key=lambda r: (r[0] != "total", -med(r[0], 0, 1) - r[1]))
    for n, sf in rows:
        if n != "total" and med(n, 0, 1) < 50 and sf < 50:
            continue
        print(f"| {'whole step' if n == 'total' else n} | {'' if n == 'total' else f'{med(n, 0, 0):.0f}'} | "
              f"{'' if n == 'total' else f'{steady(n, 3) / 2**20:.1f}'} | {med(n, 0, 1):.0f} | {med(n, 1, 1):.0f} | "
              f"{sf:.0f} | {med(n, 0, 2) * 1e3:.1f} | {med(n, 1, 2) * 1e3:.1f} | {steady(n, 2) * 1e3:.1f} |")
    print("(functions with under 50 faults at step 1 and per steady step left out)")


def child_torch(case, mode, steps, rb, rs, threads):
    import numpy as np
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    if case == "convnet":
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(1600, 10))
        batch = 128
        x = torch.from_numpy(rng.random((steps * batch, 1, 28, 28), dtype=np.float32))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    else:
        import torchvision
        net = torchvision.models.resnet18()
        batch = rb
        x = torch.from_numpy(rng.random((steps * batch, 3, rs, rs), dtype=np.float32))
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    net.train()
    y = torch.from_numpy(rng.integers(0, 10 if case == "convnet" else 1000, steps * batch))
    loss_fn = torch.nn.CrossEntropyLoss()
    times, faults, sys_s = [], [], []
    for i in range(steps):
        j = 0 if mode == "train_on_batch" else i
        xb, yb = x[j * batch:(j + 1) * batch], y[j * batch:(j + 1) * batch]
        f0, s0, t0 = _faults(), _sys_s(), time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xb), yb)
        loss.backward()
        opt.step()
        float(loss)  # read back, as train_on_batch returns the loss
        times.append(time.perf_counter() - t0)
        faults.append(_faults() - f0)
        sys_s.append(_sys_s() - s0)
    return {"times": times, "faults": faults, "sys": sys_s, "threads": torch.get_num_threads()}


# ---------------------------------------------------------------------- parent
def _median(v):
    v = sorted(v)
    n = len(v)
    return float(v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2)


def run_child(python, args, env_extra):
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # torch's OpenMP threads must not spin in the other's way
    env["PYTHONPATH"] = os.path.join(ROOT, "python") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH")
                                                         else "")
    env.update(env_extra)
    r = subprocess.run([python, os.path.abspath(__file__), "--child"] + args, capture_output=True, text=True,
                       env=env, cwd=ROOT)
    if r.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def summarize(results):
    """Per step index, the median over the processes; then the row's figures."""
    steps = min(len(r["times"]) for r in results)
    t = [_median([r["times"][i] for r in results]) * 1e3 for i in range(steps)]
    f = [_median([r["faults"][i] for r in results]) for i in range(steps)]
    steady = _median(t[STEADY])
    steady_mean = sum(t[STEADY]) / len(t[STEADY])
    # steady-state faults: over every process's steps 20..40 (mean: how much a step pays on average)
    sf = [x for r in results for x in r["faults"][STEADY]]
    sy = [_median([r["sys"][i] for r in results]) * 1e3 for i in range(steps)]
    ssy = [x * 1e3 for r in results for x in r["sys"][STEADY]]
    return {"t": t, "f": f, "sys": sy, "steady_sys_mean": sum(ssy) / len(ssy), "steady": steady, "steady_mean": steady_mean,
            "steady_faults_median": _median(sf), "steady_faults_mean": sum(sf) / len(sf),
            "steady_fault_steps": sum(1 for x in sf if x > 100) / len(sf)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs="+")
    ap.add_argument("--cases", default="convnet,resnet18")
    ap.add_argument("--modes", default="train_on_batch,fit")
    ap.add_argument("--frameworks", default="convcore,torch")
    ap.add_argument("--envs", default="default,glibc", help=f"convcore's malloc settings: {', '.join(ENVS)}")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--resnet-batch", type=int, default=8)
    ap.add_argument("--resnet-size", type=int, default=112)
    ap.add_argument("--torch-python", default="/tmp/benchvenv/bin/python")
    ap.add_argument("--by-kernel", action="store_true",
                    help="instead: page faults and time per native function (train_on_batch, convcore, each --envs)")
    ap.add_argument("--json", help="write every process's per-step times and faults here")
    a = ap.parse_args()
    if a.child:
        fw, case, mode, steps, rb, rs = a.child[:6]
        steps, rb, rs = int(steps), int(rb), int(rs)
        if fw == "by-kernel":
            out = child_by_kernel(case, steps, rb, rs)
        elif fw == "convcore":
            out = child_convcore(case, mode, steps, rb, rs)
        else:
            out = child_torch(case, mode, steps, rb, rs, int(a.child[6]))
        print(json.dumps(out))
        return
    if a.steps < 40:
        ap.error("--steps must be >= 40 (the steady state is the median of steps 20 to 40)")
    envs = [e for e in a.envs.split(",") if e]
    for e in envs:
        if e not in ENVS:
            ap.error(f"--envs: unknown setting {e!r} (known: {', '.join(ENVS)})")
    fws = a.frameworks.split(",")
    torch_py = a.torch_python if os.path.exists(a.torch_python) else sys.executable
    have_torch = "torch" in fws and subprocess.run([torch_py, "-c", "import torch, torchvision"],
                                                   capture_output=True).returncode == 0
    sys.path.insert(0, HERE)
    sys.path.insert(0, os.path.join(ROOT, "python"))
    try:
        from _machine import machine_line
        machine = machine_line()
    except ImportError:
        from _machine import cpu_flags
        machine = f"{os.cpu_count()} cores, CPU flags: {cpu_flags()}"
    import convcore
    threads = convcore.get_num_threads()
    load0 = open("/proc/loadavg").read().split()[:3]
    print(f"# warm-up tax, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine}; "
          f"convcore {threads} threads; load average at start {' '.join(load0)}")
    print(f"# resnet18: batch {a.resnet_batch} at {a.resnet_size}x{a.resnet_size}; {a.steps} steps per process, "
          f"median over {a.repeats} fresh processes per row; steady = median of steps 20-40\n")
    if a.by_kernel:
        for case in a.cases.split(","):
            for e in envs:
                res = [run_child(sys.executable, ["by-kernel", case, "train_on_batch", str(a.steps), str(a.resnet_batch),
                                                  str(a.resnet_size), str(threads)], ENVS[e]) for _ in range(a.repeats)]
                print_by_kernel(res, f"{case}, train_on_batch, malloc {e} ({' '.join(f'{k}={v}' for k, v in ENVS[e].items()) or 'glibc defaults'})")
        print(f"\nload average at the end {' '.join(open('/proc/loadavg').read().split()[:3])}")
        return
    runs = []  # (case, mode, framework, env)
    for case in a.cases.split(","):
        for mode in a.modes.split(","):
            for fw in fws:
                if fw == "torch":
                    if have_torch:
                        runs.append((case, mode, "torch", "default"))
                    continue
                for e in envs:
                    runs.append((case, mode, fw, e))
    if "torch" in fws and not have_torch:
        print(f"(torch / torchvision not importable by {torch_py}: PyTorch rows skipped)\n")
    results = {r: [] for r in runs}
    for rep in range(a.repeats):
        order = runs if rep % 2 == 0 else runs[::-1]  # alternate, so drifts in load hit all rows alike
        for (case, mode, fw, e) in order:
            args = [fw, case, mode, str(a.steps), str(a.resnet_batch), str(a.resnet_size), str(threads)]
            py = torch_py if fw == "torch" else sys.executable
            results[(case, mode, fw, e)].append(run_child(py, args, ENVS[e]))
    load1 = open("/proc/loadavg").read().split()[:3]
    print("| case | mode | framework | malloc | step 1 ms | step 2 ms | step 3 ms | steady ms (mean) | "
          "step2 / steady | step1 / steady | faults step 1 / 2 / 3 | faults per steady step: median, mean "
          "(share of steps > 100) | kernel CPU ms step 1 / 2 / steady mean |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    dump = {}
    for key in runs:
        s = summarize(results[key])
        case, mode, fw, e = key
        t, f = s["t"], s["f"]
        r2 = t[1] / s["steady"]
        name = {"convnet": "MNIST convnet, batch 128",
                "resnet18": f"ResNet18, batch {a.resnet_batch}, {a.resnet_size}x{a.resnet_size}"}[case]
        print(f"| {name} | {mode} | {fw} | {e if fw == 'convcore' else '-'} | {t[0]:.1f} | {t[1]:.1f} | {t[2]:.1f} | "
              f"{s['steady']:.1f} ({s['steady_mean']:.1f}) | {r2:.2f} ({'met' if r2 <= 1.10 else 'MISSED'}) | "
              f"{t[0] / s['steady']:.2f} | {f[0]:.0f} / {f[1]:.0f} / {f[2]:.0f} | {s['steady_faults_median']:.0f}, "
              f"{s['steady_faults_mean']:.0f} ({100 * s['steady_fault_steps']:.0f} %) | "
              f"{s['sys'][0]:.0f} / {s['sys'][1]:.0f} / {s['steady_sys_mean']:.1f} |")
        dump["/".join(key)] = results[key]
    print(f"\nload average at the end {' '.join(load1)}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(dump, fh)


if __name__ == "__main__":
    main()
