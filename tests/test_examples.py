"""Run every script in examples/ in a subprocess and check it writes its PNG figures.

The network examples (mnist_convnet, activation_maximization, adversarial,
pretrained_classify, adversarial_resnet18) run with ``--quick`` (fewer epochs, steps,
digits and photos; 4-15 s each) so the whole file takes under a minute and a half; nothing
is skipped. Needs matplotlib and scikit-image (the ``test`` extra).

Every example runs with Keras's and torch hub's caches (``KERAS_HOME``, ``TORCH_HOME``)
pointed at empty temporary folders, so a developer's cached ImageNet weights do not
change the result, and with the HTTP(S) proxy set to a closed local port, so a download
attempted by mistake fails at once instead of reaching the network; the pretrained
examples must say they did not try. Stand-in weight files under the official names
(random networks whose classifier always answers 'goldfish') check the other path:
found in the cache, loaded, used.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("skimage")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

CASES = {
    "smoothing": ([], ["smoothing_1d.png", "smoothing_2d.png"]),
    "edges": ([], ["edges.png"]),
    "pattern_matching": ([], ["pattern_matching.png"]),
    "hierarchical_features": ([], ["hierarchical_features.png"]),
    "mnist_convnet": (["--quick"], ["training_curves.png", "filters_conv1.png", "feature_maps_conv1.png",
                                    "feature_maps_conv2.png", "convnet-quick.convcore"]),
    "activation_maximization": (["--quick"], ["activation_maximization.png", "activation_traces.png",
                                              "top_activating.png"]),
    "adversarial": (["--quick"], ["adversarial_examples.png", "adversarial_accuracy_vs_eps.png"]),
    "transfer_learning_from_folder": (["--quick"], ["transfer_learning_curves.png", "augmented_images.png",
                                                    "data/train/horizontal/horizontal_000.jpg",
                                                    "data/validation/vertical/vertical_000.jpg"]),
    "pretrained_classify": (["--quick"], ["pretrained_predictions.png", "vgg16_feature_maps.png"]),
    "adversarial_resnet18": (["--quick"], ["adversarial_resnet18.png"]),
}

# what an example must print in the test's environment (empty caches, no network)
PRINTS = {
    "pretrained_classify": ["VGG16: no ImageNet weights at", "ResNet50: no ImageNet weights at",
                            "VGG16: built with RANDOM weights", "ResNet50: built with RANDOM weights",
                            "VGG16 (RANDOM weights), top 3 classes", "ResNet50 (RANDOM weights), top 3 classes",
                            "block1_conv2", "block5_conv3"],
    "adversarial_resnet18": ["ResNet18: no torchvision weights at", "ResNet18, RANDOM weights: no torchvision file",
                             "after FGSM", "after PGD-3"],
}


def _run(name, args, outdir, keras_home=None, torch_home=None):
    """Run an example; the caches are empty folders under ``outdir`` unless given."""
    keras_home = keras_home or outdir / ".caches" / "keras"
    torch_home = torch_home or outdir / ".caches" / "torch"
    os.makedirs(keras_home, exist_ok=True)
    os.makedirs(torch_home, exist_ok=True)
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, a connection is refused at once
    env = dict(os.environ, MPLBACKEND="Agg", CONVCORE_NUM_THREADS=os.environ.get("CONVCORE_NUM_THREADS", "2"),
               KERAS_HOME=str(keras_home), TORCH_HOME=str(torch_home), HTTP_PROXY=closed, HTTPS_PROXY=closed,
               http_proxy=closed, https_proxy=closed, NO_PROXY="", no_proxy="")
    proc = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), str(outdir), *args],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_writes_its_figures(name, tmp_path):
    args, files = CASES[name]
    out = _run(name, args, tmp_path)
    assert out.strip(), f"{name} printed nothing"
    assert "Downloading data from" not in out, f"{name} tried to download:\n{out}"
    for line in PRINTS.get(name, []):
        assert line in out, f"{name} did not print {line!r}:\n{out}"
    for f in files:
        p = tmp_path / f
        assert p.is_file() and p.stat().st_size > 0, f"{name} did not write {f}"
        if f.endswith(".png"):
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{f} is not a PNG"


def test_examples_are_all_tested():
    scripts = {p.stem for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(CASES), f"untested examples: {scripts - set(CASES)}; stale: {set(CASES) - scripts}"


def test_pattern_matching_finds_the_patch(tmp_path):
    out = _run("pattern_matching", [], tmp_path)
    line = next(l for l in out.splitlines() if l.startswith("found by match_template"))
    assert "(correct)" in line, out


def test_transfer_learning_beats_chance_in_quick_mode(tmp_path):
    """--quick (80 training JPEGs, 3 + 2 epochs, seed 0) learns the stripes' orientation:
    the printed validation accuracy on 32 images is well above chance (0.5); it was 1.0,
    and 0.69 to 1.0 with five other seeds."""
    out = _run("transfer_learning_from_folder", ["--quick"], tmp_path)
    line = next(l for l in out.splitlines() if l.startswith("validation accuracy:"))
    acc = float(line.split()[2])
    assert acc > 0.6, out


GOLDFISH = 1  # ImageNet class 1, 'goldfish': what the stand-in classifiers always answer


def test_pretrained_classify_uses_cached_weights(tmp_path):
    """A stand-in for Keras's ResNet50 file in KERAS_HOME (random weights, the top
    answering 'goldfish' whatever the photo) is found and loaded (every photo:
    goldfish, probability 1.000); VGG16's file is absent, so VGG16 is random."""
    from convcore import applications
    keras_home = tmp_path / "keras"
    (keras_home / "models").mkdir(parents=True)
    net = applications.ResNet50(weights=None)
    top = net.get_layer("predictions")
    kernel, bias = top.get_weights()
    bias = np.zeros_like(bias)
    bias[GOLDFISH] = 30.0
    top.set_weights([np.zeros_like(kernel), bias])
    path = keras_home / "models" / "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
    net.save_weights(str(path))  # Keras's legacy HDF5 weight layout, as Keras's own file
    del net
    out = _run("pretrained_classify", ["--quick"], tmp_path / "out", keras_home=keras_home)
    assert f"ResNet50: ImageNet weights found in Keras's cache: {path}" in out, out
    assert "ResNet50: built with the ImageNet weights" in out, out
    assert "VGG16: built with RANDOM weights" in out, out
    lines = out.splitlines()
    start = lines.index(next(l for l in lines if l.startswith("ResNet50 (ImageNet weights), top 3 classes")))
    rows = lines[start + 1:start + 4]
    assert [r.split()[0] for r in rows] == ["chelsea", "coffee", "astronaut"], out
    assert all(r.split("|")[0].split()[-2:] == ["goldfish", "1.000"] for r in rows), out
    for f in ("pretrained_predictions.png", "vgg16_feature_maps.png"):
        assert (tmp_path / "out" / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_adversarial_resnet18_uses_cached_weights(tmp_path):
    """A stand-in for torchvision's resnet18-f37072fd.pth in TORCH_HOME (torch's zip
    format, torchvision's key names; random weights, ``fc`` answering 'goldfish' with a
    zero weight matrix) is found and loaded: the cat is a goldfish before and after
    both attacks (the loss has no gradient through a zero ``fc``), probability 1.000."""
    import torch_pickle
    from convcore import applications
    from convcore.saving import torch_format
    torch_home = tmp_path / "torch"
    (torch_home / "hub" / "checkpoints").mkdir(parents=True)
    state = torch_format.torch_state_dict(applications.ResNet18(weights=None))
    assert state["fc.weight"].shape == (1000, 512)
    state["fc.weight"] = np.zeros_like(state["fc.weight"])
    state["fc.bias"] = np.zeros_like(state["fc.bias"])
    state["fc.bias"][GOLDFISH] = 30.0
    path = torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    torch_pickle.save_state_dict(state, str(path))
    out = _run("adversarial_resnet18", ["--quick"], tmp_path / "out", torch_home=torch_home)
    assert f"ResNet18: torchvision's ImageNet weights found in torch hub's cache: {path}" in out, out
    assert "RANDOM" not in out, out
    assert "ResNet18, weights: torch hub's resnet18-f37072fd.pth: predicted class (probability)" in out, out
    rows = [l.split() for l in out.splitlines() if l.strip().startswith("chelsea (a cat)")]
    assert [r[3] for r in rows] == ["2/255", "8/255"], out
    assert all(r[4:] == ["goldfish", "(1.000)"] * 3 for r in rows), out
    assert (tmp_path / "out" / "adversarial_resnet18.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
