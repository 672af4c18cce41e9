"""convcore: correlation, filtering, pooling (and convolutional networks) with a native
Rust core.

The scipy-compatible functions live in :mod:`convcore.signal` (``correlate``,
``convolve``, ``correlate2d``, ``convolve2d``) and :mod:`convcore.ndimage` (filters,
kernel builders, edge detection, template matching); pooling in
:mod:`convcore.pooling`. Native work runs on a rayon thread pool with the GIL released;
size it with :func:`set_num_threads`.
"""
from __future__ import annotations

from . import _core
from .tensor import Tensor, Variable, convert_to_tensor
from . import ops
from .tape import GradientTape
from . import ndimage, pooling, signal
from .pooling import avg_pool, max_pool
from .signal import convolve, convolve2d, correlate, correlate2d
from . import activations, backend, callbacks, constraints, datasets, initializers, layers, losses, optimizers
from . import metrics, regularizers, utils
from . import adversarial, inspect, models, preprocessing
from . import applications, export, saving
from .backend import set_floatx, set_seed
from .device import devices, get_device, set_device
from .layers import Input
from .models import Model, Sequential, load_model

__version__ = "0.1.0"

__all__ = [
    "correlate", "convolve", "correlate2d", "convolve2d", "max_pool", "avg_pool",
    "signal", "ndimage", "pooling", "set_num_threads", "get_num_threads", "__version__",
    "Sequential", "Model", "Input", "layers", "preprocessing", "optimizers", "losses", "callbacks", "datasets", "models",
    "activations", "backend", "constraints", "metrics", "initializers", "regularizers", "utils",
    "load_model", "set_seed", "Tensor", "Variable", "convert_to_tensor", "ops", "GradientTape", "set_floatx", "inspect", "adversarial", "devices", "set_device", "get_device",
    "applications", "export", "saving",
]


def set_num_threads(n: int) -> None:
    """Use ``n`` worker threads for native kernels (default: all cores, or the
    ``CONVCORE_NUM_THREADS`` environment variable). A pool of one worker per CPU the
    process may run on pins each worker to its own CPU (Linux; ``CONVCORE_PIN_THREADS=0``
    turns that off); a pool of any other size is not pinned."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {n!r}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The number of worker threads native kernels use."""
    return _core.get_num_threads()
