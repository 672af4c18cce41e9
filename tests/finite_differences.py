"""Float64 central finite differences, the reference of every gradient test: the
derivative of a scalar function of an array, element by element."""
from __future__ import annotations

import numpy as np


def central_differences(fn, x, eps=1e-6):
    """``d fn / d x`` of a scalar ``fn(array)`` at ``x`` by ``(fn(x + eps) - fn(x - eps))
    / (2 eps)`` in each element (``x`` itself is left unchanged)."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        hi, lo = x.copy(), x.copy()
        hi[idx] += eps
        lo[idx] -= eps
        g[idx] = (fn(hi) - fn(lo)) / (2 * eps)
    return g
