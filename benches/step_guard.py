"""Cost of issue 11's step guard (the check of loss, gradients and batch-norm statistics
before a training step writes anything): epochs of the demo-sized convnet on 2,048 MNIST
digits with the check on and with it replaced by a no-op, alternating, medians.

    python benches/step_guard.py          # CPU
    python benches/step_guard.py gpu      # the GPU (lavapipe in CI machines)
"""
import os
import sys
import time

import numpy as np

import convcore as cc
from convcore import Input, Sequential, device as D, layers

DEV = sys.argv[1] if len(sys.argv) > 1 else "cpu"
BACKEND = D.GpuBackend if DEV == "gpu" else D.CpuBackend
ROUNDS = 6 if DEV == "cpu" else 3


def data():
    d = np.load(os.path.join(os.path.dirname(cc.__file__), "data", "mnist10k.npz"))
    x, y = d[d.files[0]][:2048], d[d.files[1]][:2048]
    return x.reshape(-1, 28, 28, 1).astype(np.float32) / 255, y


def model():
    cc.set_seed(0)
    m = Sequential([Input((28, 28, 1)), layers.Conv2D(16, 3, activation="relu"), layers.MaxPooling2D(),
                    layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(), layers.Flatten(),
                    layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"], device=DEV)
    return m


def main():
    x, y = data()
    m = model()
    m.fit(x[:256], y[:256], batch_size=64, verbose=0)  # warm up
    check = BACKEND.flag_nonfinite
    times = {"on": [], "off": []}
    try:
        for _ in range(ROUNDS):
            for mode in ("on", "off"):
                BACKEND.flag_nonfinite = check if mode == "on" else (lambda self, xs, guard: True)
                t = time.perf_counter()
                m.fit(x, y, batch_size=64, verbose=0)
                times[mode].append(time.perf_counter() - t)
    finally:
        BACKEND.flag_nonfinite = check
    on, off = np.median(times["on"]), np.median(times["off"])
    print(f"{DEV}: epoch median with the guard {on:.3f} s, without {off:.3f} s: ratio {on / off:.3f}")


if __name__ == "__main__":
    main()
