"""Issue 13's data-pipeline table: training from a folder of JPEGs vs from arrays, the
augmentation's throughput vs Keras's (scipy-based) ImageDataGenerator, and the peak
memory of a generator epoch over 2,000 and 20,000 files, measured in one run.

    python benches/data.py [--rounds N] [--dir DIR] [--aug-batches N] [--workers 1,2] [--big N] [--no-memory]

1. Writes 2,000 150x150 JPEGs in two classes (numpy noise plus a few ellipses, Pillow,
   quality 90) into ``DIR/small/<class>/`` (default: a temporary folder, removed at the
   end; an existing ``--dir`` folder with the right number of files is reused).
2. **Epoch time.** One epoch of the course's small convnet at 64x64 (Conv2D 32 3x3 relu,
   MaxPool, Conv2D 64 3x3 relu, MaxPool, Flatten, Dense 64 relu, Dense 1 sigmoid;
   rmsprop, binary_crossentropy, batch 32) from the lab's
   ``ImageDataGenerator(rescale=1./255, shear_range=0.2, zoom_range=0.2,
   horizontal_flip=True).flow_from_directory(dir, target_size=(64, 64), batch_size=32,
   class_mode='binary')``, against the same epoch of ``fit(x, y, batch_size=32)`` on the
   same images already decoded in memory. The iterator is a ``PyDataset``: by default
   (``workers=1``) ``fit`` loads each batch in the training thread, between steps;
   ``it.workers = k`` (k > 1) makes ``fit`` load the next batches in k threads while the
   step runs (``convcore.trainers.data_adapters.OrderedLoader``). The default and each
   worker count are timed, labelled; ratio folder / in-memory (target <= 1.3x, goal
   <= 1.1x). One model serves every row; a warm-up epoch of each row first; rounds
   alternate the rows; medians.
3. **Augmentation throughput.** Images per second of ``ImageDataGenerator(rescale=1./255,
   shear_range=0.2, zoom_range=0.2, horizontal_flip=True, rotation_range=20,
   width_shift_range=0.1, height_shift_range=0.1).flow(x, batch_size=32)`` over the
   in-memory 64x64x3 float32 images (``--aug-batches`` batches), against Keras 3.15's
   ``keras.src.legacy.preprocessing.image.ImageDataGenerator`` with the same arguments
   (scipy's ``affine_transform`` per image), alternating; ratio convcore / Keras (target
   >= 3x). torchvision's transforms when it is importable (its row reads "not
   installed" otherwise).
4. **Peak memory.** Each case in a fresh process (``--_memory-case``): the resident set
   (``VmRSS`` of ``/proc/self/status``, sampled every 2 ms by a thread, so native buffers
   count) once the iterator is built and one batch loaded, and its peak during one epoch
   over 2,000 and over ``--big`` (default 20,000) files, read serially (``it[i]``) and
   through ``fit``'s loader with 2 worker threads and ``max_queue_size=10``. The
   ``--big`` files are 150x150 too (generated the same way into ``DIR/big/``).

Prints a markdown table with the command, the machine, its CPU flags and load average,
and the date. Run with the repository's venv (keras + jax for the Keras row).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from _machine import cpu_flags  # (benches/ is the script's folder)

HERE = os.path.dirname(os.path.abspath(__file__))
LAB = dict(rescale=1. / 255, shear_range=0.2, zoom_range=0.2, horizontal_flip=True)
AUG = dict(LAB, rotation_range=20, width_shift_range=0.1, height_shift_range=0.1)
CLASSES = ("cats", "dogs")


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


# ------------------------------------------------------------------------ the folder
def count_files(root):
    n = 0
    for c in CLASSES:
        d = os.path.join(root, c)
        if os.path.isdir(d):
            n += sum(1 for f in os.listdir(d) if f.endswith(".jpg"))
    return n


def write_folder(root, n, size=150, seed=0):
    """``root/<class>/NNNNN.jpg``: n JPEGs, half per class; class 1 has brighter
    noise and more ellipses (learnable, not trivially)."""
    from PIL import Image, ImageDraw
    if count_files(root) == n:
        return 0.0
    shutil.rmtree(root, ignore_errors=True)
    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (16, size, size, 3), dtype=np.uint8)  # reused tiles: generation stays fast
    for c, name in enumerate(CLASSES):
        folder = os.path.join(root, name)
        os.makedirs(folder)
        for i in range(n // 2):
            tint = rng.integers(0, 96, 3, dtype=np.uint8) + (48 if c else 0)
            a = noise[rng.integers(16)] // 2 + tint
            im = Image.fromarray(np.roll(a, int(rng.integers(size)), axis=int(rng.integers(2))))
            draw = ImageDraw.Draw(im)
            for _ in range(2 + 2 * c):
                x0, y0 = (int(v) for v in rng.integers(0, size - 20, 2))
                s = int(rng.integers(10, 50))
                draw.ellipse([x0, y0, x0 + s, y0 + s], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
            im.save(os.path.join(folder, f"{i:05d}.jpg"), quality=90)
    return time.perf_counter() - t


def in_memory(folder):
    """The folder's images as the lab's iterator reads them (64x64, nearest), without
    augmentation or rescaling: float32 (n, 64, 64, 3) in 0..255 and the binary labels."""
    from convcore.preprocessing.image import ImageDataGenerator
    it = ImageDataGenerator().flow_from_directory(folder, target_size=(64, 64), batch_size=250,
                                                  class_mode="binary", shuffle=False)
    xs, ys = zip(*(it[i] for i in range(len(it))))
    return np.concatenate(xs), np.concatenate(ys)


# ------------------------------------------------------------------------ 2. epochs
def build_model():
    import convcore
    from convcore import layers
    from convcore.models import Sequential
    convcore.set_seed(0)
    m = Sequential([
        convcore.Input((64, 64, 3)),
        layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
        layers.Flatten(), layers.Dense(64, activation="relu"), layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    return m


def bench_epochs(folder, x, y, rounds, worker_counts):
    from convcore.preprocessing.image import ImageDataGenerator
    model = build_model()
    xs = x / 255.0  # what the lab's rescale gives, so both epochs see the same value range
    its = {}
    for w in worker_counts:
        it = ImageDataGenerator(**LAB).flow_from_directory(folder, target_size=(64, 64), batch_size=32,
                                                           class_mode="binary")
        if w != 1:
            it.workers = w
        its[w] = it
    rows = {"mem": lambda: model.fit(xs, y, batch_size=32, epochs=1, verbose=0)}
    for w, it in its.items():
        rows[w] = (lambda it=it: model.fit(it, epochs=1, verbose=0))
    times = {k: [] for k in rows}
    for f in rows.values():  # warm-up epoch of each
        f()
    for _ in range(rounds):
        for k, f in rows.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return {k: float(np.median(v)) for k, v in times.items()}, {k: v for k, v in times.items()}


# ------------------------------------------------------------------------ 3. augmentation
def bench_augmentation(x, n_batches, rounds):
    """Images per second of .flow(x, batch_size=32) over n_batches batches, convcore vs
    Keras's legacy (scipy) ImageDataGenerator vs torchvision (when importable)."""
    from convcore.preprocessing.image import ImageDataGenerator
    n_img = n_batches * 32

    def runner(gen):
        def f():
            it = gen.flow(x, batch_size=32, seed=0)
            for _ in range(n_batches):
                next(it)
        return f

    runs = {"convcore": runner(ImageDataGenerator(**AUG))}
    notes = {}
    try:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        from keras.src.legacy.preprocessing.image import ImageDataGenerator as KerasIDG
        import keras
        runs["keras"] = runner(KerasIDG(**AUG))
        notes["keras"] = f"Keras {keras.__version__} legacy ImageDataGenerator (scipy.ndimage)"
    except ImportError as e:
        notes["keras"] = f"not installed ({e.name})"
    try:
        import torch
        import torchvision.transforms.v2 as T
        tx = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        tf = T.Compose([T.RandomAffine(degrees=20, translate=(0.1, 0.1), scale=(0.8, 1.2), shear=0.2),
                        T.RandomHorizontalFlip()])

        def torch_run():
            for b in range(n_batches):
                i = (b * 32) % (len(tx) - 32)
                batch = tx[i:i + 32]
                torch.stack([tf(im) for im in batch]) * (1. / 255)
        runs["torchvision"] = torch_run
        notes["torchvision"] = f"torchvision {__import__('torchvision').__version__} v2 RandomAffine + flip, per image"
    except ImportError:
        notes["torchvision"] = "not installed"
    times = {k: [] for k in runs}
    for f in runs.values():
        f()
    for _ in range(rounds):
        for k, f in runs.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return {k: n_img / float(np.median(v)) for k, v in times.items()}, notes


# ------------------------------------------------------------------------ 4. memory
def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def memory_case(folder, mode):
    """Run in a fresh process: RSS after building the iterator and one batch, peak RSS
    during one epoch (sampled every 2 ms); prints JSON."""
    import convcore  # noqa: F401
    from convcore.preprocessing.image import ImageDataGenerator
    from convcore.trainers.data_adapters import OrderedLoader
    it = ImageDataGenerator(**LAB).flow_from_directory(folder, target_size=(64, 64), batch_size=32,
                                                       class_mode="binary")
    it[0]
    base = rss_kib()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib())
            time.sleep(0.002)
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t = time.perf_counter()
    n = 0
    if mode == "serial":
        for i in range(len(it)):
            n += len(it[i][0])
    else:
        for bx, _ in OrderedLoader(it, list(range(len(it))), workers=2, use_multiprocessing=False,
                                   max_queue_size=10):
            n += len(bx)
    dt = time.perf_counter() - t
    stop.set()
    th.join()
    peak[0] = max(peak[0], rss_kib())
    print(json.dumps({"files": it.samples, "images": n, "base_kib": base, "peak_kib": peak[0], "seconds": dt}))


def bench_memory(folders):
    out = []
    for folder in folders:
        for mode in ("serial", "workers2"):
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--_memory-case", folder, mode],
                               capture_output=True, text=True, check=True)
            d = json.loads(r.stdout.strip().splitlines()[-1])
            d["mode"] = mode
            out.append(d)
    return out


# ------------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where the JPEG folders go (kept); default: a temporary folder")
    ap.add_argument("--aug-batches", type=int, default=60)
    ap.add_argument("--workers", default="1,2", help="the worker counts of the folder epoch rows")
    ap.add_argument("--big", type=int, default=20000, help="files of the second memory folder")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--_memory-case", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._memory_case:
        memory_case(*args._memory_case)
        return
    import convcore
    root = args.dir or tempfile.mkdtemp(prefix="convcore-bench-data-")
    try:
        run(args, root, convcore)
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)


def run(args, root, convcore):
    t_all = time.perf_counter()
    load0 = loadavg()
    small = os.path.join(root, "small")
    gen_s = write_folder(small, 2000)
    x, y = in_memory(small)
    worker_counts = [int(w) for w in args.workers.split(",")]
    med, allt = bench_epochs(small, x, y, args.rounds, worker_counts)
    ips, notes = bench_augmentation(x[:1024], args.aug_batches, args.rounds)
    mem = []
    if not args.no_memory:
        big = os.path.join(root, "big")
        gen_b = write_folder(big, args.big, seed=1)
        mem = bench_memory([small, big])
    load1 = loadavg()

    cmd = "python benches/data.py " + " ".join(sys.argv[1:])
    print(f"# `{cmd.strip()}`: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{convcore.get_num_threads() if hasattr(convcore, 'get_num_threads') else os.cpu_count()} native threads, "
          f"CPU flags: {cpu_flags()}; load average {load0} at the start, {load1} at the end; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {args.rounds} rounds, medians; "
          f"folders written in {gen_s:.1f} s"
          + ("" if args.no_memory else f" and {gen_b:.1f} s") + f"; whole run {time.perf_counter() - t_all:.0f} s")
    print()
    print("Ratios: epoch rows folder time / in-memory time (below 1.3x meets the target); augmentation rows "
          "convcore img/s / anchor img/s; memory rows the big folder's increase minus the small one's. "
          "Epoch times: median (fastest-slowest round).")
    print()
    print("| case | setting | time / rate | anchor | anchor time / rate | ratio | target |")
    print("|---|---|---:|---|---:|---:|---|")
    m = med["mem"]
    best = min(worker_counts, key=lambda w: med[w])
    for w in worker_counts:
        r = med[w] / m
        label = "default (workers=1: one loader thread beside the step)" if w == 1 else f"it.workers = {w} (threads)"
        if w == best:
            label += ", best"
        verdict = "goal met" if r <= 1.1 else ("met" if r <= 1.3 else "MISSED")
        print(f"| epoch, 2,000 JPEGs 150x150 -> 64x64, lab augmentation, flow_from_directory | {label} | "
              f"{med[w]:.2f} s ({min(allt[w]):.2f}-{max(allt[w]):.2f}) | fit(x, y) in memory | "
              f"{m:.2f} s ({min(allt['mem']):.2f}-{max(allt['mem']):.2f}) | {r:.2f}x | <= 1.3x (goal 1.1x) {verdict} |")
    n_aug = args.aug_batches * 32
    for k in ("keras", "torchvision"):
        if k in ips:
            r = ips["convcore"] / ips[k]
            verdict = ("met" if r >= 3 else "MISSED") if k == "keras" else ""
            print(f"| augmentation .flow(x), {n_aug} images 64x64x3 float32, rotation 20, shifts 0.1, shear 0.2, "
                  f"zoom 0.2, flip | convcore | {ips['convcore']:,.0f} img/s | {notes[k]} | {ips[k]:,.0f} img/s | "
                  f"{r:.2f}x | {'>= 3x ' + verdict if k == 'keras' else ''} |")
        else:
            print(f"| augmentation .flow(x), {n_aug} images | convcore | {ips['convcore']:,.0f} img/s | {k} | "
                  f"{notes[k]} | | |")
    if mem:
        by = {(d["files"], d["mode"]): d for d in mem}
        for mode, label in (("serial", "it[i], one at a time"), ("workers2", "fit's loader, 2 threads, queue 10")):
            a, b = by[(2000, mode)], by[(args.big, mode)]
            inc_a = (a["peak_kib"] - a["base_kib"]) / 1024
            inc_b = (b["peak_kib"] - b["base_kib"]) / 1024
            print(f"| peak RSS increase over one epoch, {args.big:,} files vs 2,000 | {label} | "
                  f"{inc_b:.1f} MiB (base {b['base_kib'] / 1024:.0f} MiB, {b['seconds']:.1f} s) | 2,000 files | "
                  f"{inc_a:.1f} MiB (base {a['base_kib'] / 1024:.0f} MiB, {a['seconds']:.1f} s) | "
                  f"{inc_b - inc_a:+.1f} MiB | independent of the folder's size "
                  f"(within 4 MiB): {'met' if inc_b <= inc_a + 4 else 'MISSED'} |")


if __name__ == "__main__":
    main()
