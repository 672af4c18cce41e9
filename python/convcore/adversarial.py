"""Adversarial examples: perturbations inside an eps-ball that maximise the loss (FGSM,
PGD), the same-size random baseline, and accuracy under attack.

Every attack keeps ``||delta|| <= eps`` (per sample; L-infinity or L2) and clips the
result to the valid pixel range ``[clip_min, clip_max]`` (default [0, 1]); inputs outside
that range are rejected. Gradients are the model's ``input_gradient`` (its loss w.r.t.
the input, computed by the Rust backprop), so the model must be compiled with a loss.
"""
from __future__ import annotations

import numpy as np

from . import _checks

__all__ = ["fgsm", "pgd", "random_perturbation", "robust_accuracy"]


def _check_common(func, x, eps, clip_min, clip_max):
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{func}: x must be numeric, got dtype {x.dtype}")
    eps = _checks.real(func, "eps", eps, minimum=0)
    clip_min = None if clip_min is None else _checks.real(func, "clip_min", clip_min)
    clip_max = None if clip_max is None else _checks.real(func, "clip_max", clip_max)
    if x.size and not np.isfinite(x).all():
        raise ValueError(f"{func}: x contains NaN or inf")
    if clip_min is not None and clip_max is not None:
        if not clip_min < clip_max:
            raise ValueError(f"{func}: need clip_min < clip_max, got {clip_min} and {clip_max}")
    if clip_min is not None and clip_max is not None and x.size:
        lo, hi = float(np.min(x)), float(np.max(x))
        if lo < clip_min or hi > clip_max:
            raise ValueError(f"{func}: inputs must lie in the pixel range [{clip_min}, {clip_max}], "
                             f"got values in [{lo}, {hi}] (rescale them, or pass clip_min/clip_max)")
    return x.astype(np.float32) if x.dtype.kind != "f" else x, eps


def _check_norm(func, norm):
    n = str(norm).lower()
    if n in ("inf", "linf", "np.inf"):
        return "inf"
    if n in ("2", "l2"):
        return "2"
    raise ValueError(f"{func}: norm must be 'inf' or '2', got {norm!r}")


def _grad(model, x, y, batch_size):
    """Gradient of each sample's own loss w.r.t. that sample (input_gradient is the
    gradient of the batch mean, hence the factor)."""
    out = np.empty_like(x, dtype=model.inputs[0].dtype)
    for s in range(0, len(x), batch_size):
        xb = x[s:s + batch_size]
        out[s:s + batch_size] = model.input_gradient(xb, y[s:s + batch_size]) * len(xb)
    return out


def _per_sample_norm(d):
    return np.sqrt((d.reshape(len(d), -1).astype(np.float64) ** 2).sum(axis=1)).reshape((-1,) + (1,) * (d.ndim - 1))


def _project(delta, eps, norm):
    if norm == "inf":
        return np.clip(delta, -eps, eps)
    n = _per_sample_norm(delta)
    return delta * np.minimum(1.0, eps / np.maximum(n, 1e-12))


def _clip(x, clip_min, clip_max):
    if clip_min is None and clip_max is None:
        return x
    return np.clip(x, clip_min, clip_max)


def _labels(model, x, y):
    y = np.asarray(y)
    if y.ndim == 0 or len(y) != len(x):
        raise ValueError(f"labels do not match the inputs: {len(x)} inputs and {len(y)} labels")
    return y


def fgsm(model, x, y, eps, clip_min=0.0, clip_max=1.0, batch_size=256):
    """Fast gradient sign method: ``clip(x + eps * sign(dLoss/dx))``."""
    x, eps = _check_common("fgsm", x, eps, clip_min, clip_max)
    batch_size = _checks.integer("fgsm", "batch_size", batch_size, minimum=1)
    y = _labels(model, x, y)
    g = _grad(model, x, y, batch_size)
    return _clip(x + eps * np.sign(g), clip_min, clip_max).astype(x.dtype)


def pgd(model, x, y, eps, alpha=None, steps=10, norm="inf", random_start=True, clip_min=0.0, clip_max=1.0,
        seed=None, batch_size=256):
    """Projected gradient descent (Madry et al.): ``steps`` ascent steps of size ``alpha``
    (default ``2.5 * eps / steps``) on the loss, each projected back onto the eps-ball
    around ``x`` and the pixel range; ``random_start`` begins from a random point of the
    ball. ``norm='inf'`` steps along the gradient sign, ``norm='2'`` along the
    L2-normalised gradient."""
    x, eps = _check_common("pgd", x, eps, clip_min, clip_max)
    norm = _check_norm("pgd", norm)
    steps = _checks.integer("pgd", "steps", steps, minimum=1)
    batch_size = _checks.integer("pgd", "batch_size", batch_size, minimum=1)
    alpha = 2.5 * eps / steps if alpha is None else _checks.real("pgd", "alpha", alpha, minimum=0)
    if not alpha > 0 and eps > 0:
        raise ValueError(f"pgd: alpha must be > 0, got {alpha}")
    y = _labels(model, x, y)
    rng = np.random.default_rng(seed)
    x64 = x.astype(np.float64)
    delta = _random_delta(rng, x.shape, eps, norm) if random_start else np.zeros(x.shape)
    adv = _clip(x64 + delta, clip_min, clip_max)
    for _ in range(steps):
        g = _grad(model, adv.astype(x.dtype), y, batch_size).astype(np.float64)
        if norm == "inf":
            step = alpha * np.sign(g)
        else:
            step = alpha * g / np.maximum(_per_sample_norm(g), 1e-12)
        delta = _project(adv + step - x64, eps, norm)
        adv = _clip(x64 + delta, clip_min, clip_max)
    return adv.astype(x.dtype)


def _random_delta(rng, shape, eps, norm):
    if norm == "inf":
        return rng.uniform(-eps, eps, size=shape)
    d = rng.standard_normal(shape)
    d /= np.maximum(_per_sample_norm(d), 1e-12)
    r = rng.uniform(0, 1, size=(shape[0],) + (1,) * (len(shape) - 1)) ** (1.0 / np.prod(shape[1:]))
    return d * eps * r


def random_perturbation(x, eps, norm="inf", seed=None, clip_min=0.0, clip_max=1.0):
    """The random baseline of the same size: for 'inf', every pixel moves by ``+-eps``
    (random signs); for '2', each sample moves by ``eps`` in a uniformly random direction.
    Clipped to the pixel range like the attacks."""
    x, eps = _check_common("random_perturbation", x, eps, clip_min, clip_max)
    norm = _check_norm("random_perturbation", norm)
    rng = np.random.default_rng(seed)
    if norm == "inf":
        d = eps * rng.choice(np.array([-1.0, 1.0]), size=x.shape)
    else:
        d = rng.standard_normal(x.shape)
        d *= eps / np.maximum(_per_sample_norm(d), 1e-12)
    return _clip(x + d, clip_min, clip_max).astype(x.dtype)


def robust_accuracy(model, x, y, attack="fgsm", batch_size=256, **kwargs):
    """Accuracy of ``model`` on ``attack(model, x, y, **kwargs)``; ``attack`` is 'fgsm',
    'pgd', 'random' (the random baseline), 'none' (clean accuracy) or a callable with
    the signature of :func:`fgsm`."""
    if isinstance(attack, str):
        table = {"fgsm": fgsm, "pgd": pgd, "random": None, "none": None}
        if attack not in table:
            raise ValueError(f"robust_accuracy: attack must be one of {sorted(table)} or a callable, got {attack!r}")
    elif not callable(attack):
        raise TypeError(f"robust_accuracy: attack must be a string or a callable, got {attack!r}")
    batch_size = _checks.integer("robust_accuracy", "batch_size", batch_size, minimum=1)
    x = np.asarray(x)
    y_checked = _labels(model, x, y)
    if attack == "none":
        adv = x
    elif attack == "random":
        adv = random_perturbation(x, **kwargs)
    elif isinstance(attack, str):
        adv = {"fgsm": fgsm, "pgd": pgd}[attack](model, x, y, batch_size=batch_size, **kwargs)
    else:
        adv = attack(model, x, y, **kwargs)
    pred = model.predict(adv, batch_size=batch_size)
    if pred.ndim == 2 and pred.shape[1] > 1:
        labels = y_checked if y_checked.ndim == 1 else np.argmax(y_checked, axis=1)
        return float(np.mean(np.argmax(pred, axis=1) == labels))
    return float(np.mean((pred.reshape(len(pred), -1)[:, 0] > 0.5) == (y_checked.reshape(len(pred), -1)[:, 0] > 0.5)))
