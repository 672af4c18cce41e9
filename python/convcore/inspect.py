"""Looking inside a network: feature maps, filters, the inputs that excite a unit,
activation maximization and saliency. Each is one call on a trained model; the
gradients come from the tape (:class:`convcore.GradientTape`) on the model's call."""
from __future__ import annotations

import numpy as np

from . import _checks, ndimage, ops
from .layers import Layer
from .models import Model
from .tape import GradientTape

__all__ = ["feature_maps", "plot_filters", "plot_feature_maps", "top_activating", "maximize_activation",
           "saliency", "activation_model"]


def _layer(model, layer):
    if isinstance(layer, Layer):
        model.output_of(layer)  # raises if it is not in the model
        return layer
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        return model.get_layer(index=int(layer))
    if isinstance(layer, str):
        return model.get_layer(name=layer)
    raise TypeError(f"layer must be a name, an index or a Layer, got {layer!r}")


def activation_model(model, layer):
    """A model from ``model``'s inputs to the output of ``layer`` (name, index or
    Layer): the same as ``Model(inputs=model.inputs, outputs=model.get_layer(name).output)``."""
    layer = _layer(model, layer)
    return Model(inputs=model.inputs, outputs=model.output_of(layer), name=f"{model.name}_to_{layer.name}")


def feature_maps(model, x, layer, batch_size=128):
    """The activations of ``layer`` for inputs ``x`` (computed in batches, inference mode)."""
    batch_size = _checks.integer("feature_maps", "batch_size", batch_size, minimum=1)
    return activation_model(model, layer).predict(x, batch_size=batch_size)


def _unit_count(sub):
    return sub.outputs[0].shape[-1]


def _check_unit(sub, layer_name, unit):
    n = _unit_count(sub)
    if isinstance(unit, bool) or not isinstance(unit, (int, np.integer)) or not 0 <= unit < n:
        raise ValueError(f"unit {unit!r} is out of range for layer {layer_name!r}, which has {n} units "
                         f"(valid: 0..{n - 1})")
    return int(unit)


def top_activating(model, layer, unit, x, k=9, batch_size=256):
    """Indices and scores of the ``k`` inputs of ``x`` with the largest ``|h(x)|``, where
    ``h`` is unit ``unit`` of ``layer`` (for a convolution, channel ``unit``, scored by its
    largest absolute value over positions). Computed in batches; best first."""
    sub = activation_model(model, layer)
    unit = _check_unit(sub, sub.outputs[0].node.layer.name, unit)
    x = np.asarray(x)
    if len(x) == 0:
        raise ValueError("top_activating: x is empty")
    k = _checks.integer("top_activating", "k", k, minimum=1)
    batch_size = _checks.integer("top_activating", "batch_size", batch_size, minimum=1)
    scores = []
    for s in range(0, len(x), batch_size):
        h = sub.predict(x[s:s + batch_size], batch_size=batch_size)[..., unit]
        scores.append(np.abs(h.reshape(len(h), -1)).max(axis=1))
    scores = np.concatenate(scores)
    k = min(k, len(scores))
    idx = np.argsort(-scores, kind="stable")[:k]
    return idx, scores[idx]


def _tv_grad(x):
    """Gradient of the anisotropic total variation sum |x[i+1]-x[i]| over spatial axes."""
    g = np.zeros_like(x)
    for ax in range(1, x.ndim - 1):
        d = np.diff(x, axis=ax)
        s = np.sign(d)
        lo = [slice(None)] * x.ndim
        hi = [slice(None)] * x.ndim
        lo[ax] = slice(0, -1)
        hi[ax] = slice(1, None)
        g[tuple(lo)] -= s
        g[tuple(hi)] += s
    return g


def _objective_and_grad(sub, x, unit):
    """Mean activation of ``unit`` (over positions) and its gradient w.r.t. ``x``."""
    xt = ops.convert_to_tensor(np.asarray(x, dtype=sub.inputs[0].dtype), device=sub.device)
    with GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(xt)
        out = sub(xt, training=False)
        h = ops.mean(ops.reshape(out[..., unit], (len(x), -1)), axis=1)
        total = ops.sum(h)
    g = tape.gradient(total, xt)
    return h.numpy(), (np.zeros_like(x) if g is None else g.numpy())


def maximize_activation(model, layer, unit, steps=200, lr=0.05, l2=1e-3, tv=0.0, blur_every=0, blur_sigma=0.5,
                        jitter=0, seed=None, x0=None, value_range=None):
    """Find an input that a unit would most like to see, by gradient ascent on the input.

    Maximizes ``|h(x)| - l2/2 * ||x||^2 - tv * TV(x)`` where ``h`` is the mean activation
    of unit ``unit`` of ``layer`` (a channel, for convolutions). Each step follows the
    gradient normalised by its RMS (``lr`` is the step size in input units); every
    ``blur_every`` steps the image is blurred with a Gaussian of ``blur_sigma`` pixels;
    ``jitter`` randomly shifts the image by up to that many pixels before each gradient
    (and back after), which discourages high-frequency patterns; ``value_range`` clips
    the pixels. Without ``x0`` the ascent starts from the most exciting of 16 random
    images of growing contrast (a ReLU unit that is silent at the start would have no gradient).

    Returns ``(image, trace)``: the image (the model's input shape, no batch axis) and
    the unit's activation ``h`` before each step and after the last one.
    """
    sub = activation_model(model, layer)
    unit = _check_unit(sub, sub.outputs[0].node.layer.name, unit)
    f = "maximize_activation"
    steps = _checks.integer(f, "steps", steps, minimum=1)
    jitter = _checks.integer(f, "jitter", jitter, minimum=0)
    blur_every = _checks.integer(f, "blur_every", blur_every, minimum=0)
    lr = _checks.real(f, "lr", lr, minimum=0, strict_min=True)
    l2 = _checks.real(f, "l2", l2, minimum=0)
    tv = _checks.real(f, "tv", tv, minimum=0)
    blur_sigma = _checks.real(f, "blur_sigma", blur_sigma, minimum=0)
    if value_range is not None:
        try:
            lo, hi = value_range
        except (TypeError, ValueError):
            raise ValueError(f"{f}: value_range must be a pair (low, high), got {value_range!r}") from None
        lo, hi = _checks.real(f, "value_range[0]", lo), _checks.real(f, "value_range[1]", hi)
        if not lo < hi:
            raise ValueError(f"{f}: value_range must have low < high, got {value_range!r}")
        value_range = (lo, hi)
    rng = np.random.default_rng(seed)
    shape = tuple(model.inputs[0].shape[1:])
    dtype = model.inputs[0].node.layer.dtype
    if x0 is None:
        # Start from the best of a few random images: a ReLU unit that is silent at the
        # start has no gradient to follow.
        mid = 0.0 if value_range is None else 0.5 * (value_range[0] + value_range[1])
        spread = 0.1 if value_range is None else 0.1 * (value_range[1] - value_range[0])
        scales = spread * np.geomspace(1.0, 10.0, 16).reshape((16,) + (1,) * len(shape))
        cands = (mid + scales * rng.normal(0.0, 1.0, size=(16,) + shape)).astype(dtype)
        if value_range is not None:
            np.clip(cands, value_range[0], value_range[1], out=cands)
        h0, _ = _objective_and_grad(sub, cands, unit)
        x = cands[int(np.argmax(np.abs(h0)))][None].astype(np.float64)
    else:
        x = np.asarray(x0, dtype=np.float64).reshape((1,) + shape).copy()
    x = x.astype(dtype)
    spatial = tuple(range(1, x.ndim - 1)) if x.ndim > 2 else ()
    trace = []
    for step in range(steps):
        shift = tuple(int(v) for v in rng.integers(-jitter, jitter + 1, size=len(spatial))) if jitter else ()
        xj = np.roll(x, shift, axis=spatial) if shift else x
        h, g = _objective_and_grad(sub, xj, unit)
        if shift:
            g = np.roll(g, tuple(-v for v in shift), axis=spatial)
        trace.append(float(h[0]))
        g = (1.0 if h[0] >= 0 else -1.0) * g - l2 * x
        if tv:
            g = g - tv * _tv_grad(x)
        rms = float(np.sqrt(np.mean(g * g))) + 1e-12
        x = (x + lr * g / rms).astype(dtype)
        if blur_every and (step + 1) % blur_every == 0 and spatial:
            sig = [0.0] + [blur_sigma] * len(spatial) + [0.0]
            x = ndimage.gaussian_filter(x, sig).astype(dtype)
        if value_range is not None:
            np.clip(x, value_range[0], value_range[1], out=x)
    h, _ = _objective_and_grad(sub, x, unit)
    trace.append(float(h[0]))
    return x[0], np.array(trace)


def saliency(model, x, class_index):
    """Gradient of the class score with respect to the input (Simonyan et al. 2014).

    The class score is the pre-softmax score when the model ends in a softmax, else the
    output itself. ``class_index`` is an int or one index per sample. Returns an array
    of ``x``'s shape.
    """
    x = np.asarray(x)
    n_out = model.output_shape[-1]
    ci = np.broadcast_to(np.asarray(class_index), (len(x),))
    if ci.dtype.kind not in "iu" or ci.min() < 0 or ci.max() >= n_out:
        raise ValueError(f"saliency: class_index {class_index!r} is out of range for a model with {n_out} outputs")

    xt = ops.convert_to_tensor(np.asarray(x, dtype=model.inputs[0].dtype), device=model.device)
    with GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(xt)
        out = model(xt, training=False)
        logits = ops.softmax_logits(out)
        if logits is not None:  # the pre-softmax score
            out = logits
        score = ops.sum(ops.multiply(out, ops.one_hot(ops.convert_to_tensor(ci, device=out.device), n_out, dtype=out.dtype)))
    g = tape.gradient(score, xt)
    return np.zeros_like(x) if g is None else g.numpy()


def plot_filters(layer, cols=8, channel=None):
    """A grid of a convolution layer's filters (one panel per output channel; input
    channel ``channel``, or the mean over input channels). Returns the matplotlib figure."""
    import matplotlib.pyplot as plt
    if getattr(layer, "kernel", None) is None or layer.kernel.ndim < 3:
        raise ValueError(f"plot_filters expects a built convolution layer, got {layer!r}")
    k = layer.kernel.numpy()
    if k.ndim != 4:
        raise ValueError(f"plot_filters draws 2-D kernels; layer {layer.name!r} has kernel shape {k.shape}")
    if channel is not None:
        channel = _checks.integer("plot_filters", "channel", channel, minimum=0, maximum=k.shape[2] - 1)
    imgs = k.mean(axis=2) if channel is None else k[:, :, channel, :]
    imgs = np.moveaxis(imgs, -1, 0)
    return _grid_figure(imgs, cols, f"filters of {layer.name}", diverging=True)


def plot_feature_maps(maps, cols=8, title="feature maps"):
    """A grid of feature maps ``(H, W, C)`` (or ``(1, H, W, C)``). Returns the figure."""
    m = np.asarray(maps)
    if m.ndim == 4 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 3:
        raise ValueError(f"plot_feature_maps expects maps of shape (H, W, C) or (1, H, W, C), got {np.shape(maps)}")
    return _grid_figure(np.moveaxis(m, -1, 0), cols, title, diverging=False)


def _grid_figure(imgs, cols, title, diverging):
    import matplotlib.pyplot as plt
    n = len(imgs)
    cols = max(1, min(_checks.integer("plot", "cols", cols, minimum=1), n))
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.3 * rows + 0.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, im in enumerate(imgs):
        ax = axes[i // cols, i % cols]
        if diverging:
            v = float(np.abs(im).max()) or 1.0
            ax.imshow(im, cmap="RdBu_r", vmin=-v, vmax=v)
        else:
            ax.imshow(im, cmap="viridis")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
