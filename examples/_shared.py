"""Helpers shared by the network examples: command-line parsing and the trained model
they reuse (not an example itself)."""
from __future__ import annotations

import os

import convcore
from convcore import mnist_demo, optimizers

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output")


def parse(argv):
    """``[OUTDIR] [--quick]`` -> (outdir, quick)."""
    quick = "--quick" in argv
    rest = [a for a in argv if a != "--quick"]
    return (rest[0] if rest else DEFAULT_OUT), quick


def get_model(outdir, quick, xtr, ytr):
    """The convnet trained by mnist_convnet.py, or a quickly trained one."""
    full = os.path.join(outdir, "convnet.convcore")
    fast = os.path.join(outdir, "convnet-quick.convcore")
    for path in (full, fast) if quick else (full,):
        if os.path.exists(path):
            print(f"loaded {path}")
            return convcore.load_model(path)
    epochs, n = (1, 2000) if quick else (3, len(xtr))
    print(f"no {full}: training the convnet for {epochs} epoch(s) on {n:,} digits "
          f"(run examples/mnist_convnet.py first for the 10-epoch model)")
    convcore.set_seed(0)
    model = mnist_demo.build_convnet()
    model.compile(optimizer=optimizers.Adam(learning_rate=1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(xtr[:n], ytr[:n], epochs=epochs, batch_size=128, verbose=0)
    if quick:
        model.save(fast)
    return model
