"""Train the course's convnet on the shipped MNIST digits and look at what it learned.

    python examples/mnist_convnet.py [OUTDIR] [--quick]     (default OUTDIR: examples/output/)

``mnist_demo.build_convnet()`` (conv 32 -> max-pool -> conv 64 -> max-pool -> dropout ->
dense 10, 34,826 parameters) is trained with Adam (learning rate 1e-3), batch 128,
for 10 epochs on the 8,000 shipped training digits (``set_seed(0)``), then evaluated
on the 2,000 shipped test digits. Prints the test accuracy; writes
``training_curves.png``, ``filters_conv1.png`` (``inspect.plot_filters``) and
``feature_maps_conv1.png`` / ``feature_maps_conv2.png`` (``inspect.plot_feature_maps``
for one test digit); saves the trained model to ``OUTDIR/convnet.convcore``, which
``activation_maximization.py`` and ``adversarial.py`` load.

``--quick`` (for the tests, a few seconds): 1 epoch on the first 2,000 training digits;
the model is saved as ``OUTDIR/convnet-quick.convcore`` instead, so a quick run never
replaces a fully trained model.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

import convcore
from _shared import parse
from convcore import inspect, mnist_demo, optimizers




def main(argv):
    outdir, quick = parse(argv)
    os.makedirs(outdir, exist_ok=True)
    convcore.set_seed(0)
    (xtr, ytr), (xts, yts) = mnist_demo.load_scaled()
    epochs = 10
    if quick:
        xtr, ytr, epochs = xtr[:2000], ytr[:2000], 1
        print("--quick: 1 epoch on 2,000 training digits")
    model = mnist_demo.build_convnet()
    model.compile(optimizer=optimizers.Adam(learning_rate=1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    print(f"convnet: {model.count_params():,} parameters; training on {len(xtr):,} digits, "
          f"{epochs} epochs, batch 128, Adam 1e-3, {convcore.get_num_threads()} threads")
    t0 = time.perf_counter()
    hist = model.fit(xtr, ytr, epochs=epochs, batch_size=128, validation_data=(xts, yts), verbose=2)
    train_s = time.perf_counter() - t0
    loss, acc = model.evaluate(xts, yts, verbose=0)
    print(f"test accuracy on {len(yts):,} held-out digits: {acc:.4f} (loss {loss:.4f}); "
          f"training took {train_s:.1f} s")

    path = os.path.join(outdir, "convnet-quick.convcore" if quick else "convnet.convcore")
    model.save(path)
    print(f"model saved to {path}")

    files = []
    h = hist.history
    ep = np.arange(1, len(h["loss"]) + 1)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
    a1.plot(ep, h["loss"], "o-", label="train")
    a1.plot(ep, h["val_loss"], "o-", label="test")
    a1.set_xlabel("epoch"); a1.set_title("loss"); a1.legend()
    a2.plot(ep, h["accuracy"], "o-", label="train")
    a2.plot(ep, h["val_accuracy"], "o-", label="test")
    a2.set_xlabel("epoch"); a2.set_title(f"accuracy (test: {acc:.4f})"); a2.legend()
    fig.tight_layout()
    files.append(os.path.join(outdir, "training_curves.png"))
    fig.savefig(files[-1], dpi=100)
    plt.close(fig)

    fig = inspect.plot_filters(model.get_layer("conv1"), cols=8)
    files.append(os.path.join(outdir, "filters_conv1.png"))
    fig.savefig(files[-1], dpi=100)
    plt.close(fig)

    digit = xts[:1]
    pred = int(np.argmax(model.predict(digit)[0]))
    for layer, cols in (("conv1", 8), ("conv2", 8)):
        maps = inspect.feature_maps(model, digit, layer)
        fig = inspect.plot_feature_maps(maps, cols=cols, title=f"{layer} feature maps (ReLU) of a test digit "
                                                                f"(label {yts[0]}, predicted {pred})")
        # Put the input digit in the first (top-left) panel's place? Keep the library's grid;
        # add the digit as an inset at the top left instead.
        ax = fig.add_axes([0.005, 0.9, 0.08, 0.09])
        ax.imshow(digit[0, :, :, 0], cmap="gray")
        ax.axis("off")
        files.append(os.path.join(outdir, f"feature_maps_{layer}.png"))
        fig.savefig(files[-1], dpi=100)
        plt.close(fig)
    print("figures:")
    for f in files:
        print(f"  {f}")


if __name__ == "__main__":
    main(sys.argv[1:])
