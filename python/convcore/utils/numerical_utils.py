"""``to_categorical`` and ``normalize``, as ``keras.utils``: numpy arrays in, numpy
arrays out (a convcore Tensor in: a Tensor out, computed with :mod:`convcore.ops` on its
device)."""
from __future__ import annotations

import numpy as np

from .. import _checks


def _is_tensor(x):
    from ..tensor import Tensor
    return isinstance(x, Tensor)


def to_categorical(x, num_classes=None):
    """One-hot rows for class indices: an array of shape ``x.shape + (num_classes,)``
    (a trailing axis of size 1 is dropped first, as Keras), float64 as Keras's numpy
    path (float32 for a Tensor). ``num_classes`` defaults to ``max(x) + 1``.

    Keras lets a negative index wrap around to the last classes and truncates
    fractional labels; here both are a ValueError."""
    tensor_in = _is_tensor(x)
    a = np.asarray(x.numpy() if tensor_in else x)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"to_categorical: expected integer class indices, received dtype {a.dtype}")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.floor(a)):
            raise ValueError("to_categorical: class indices must be whole numbers, received "
                             f"{a[~np.isfinite(a) | (a != np.floor(a))].ravel()[:5].tolist()}")
    a = a.astype(np.int64)
    if num_classes is not None:
        num_classes = _checks.integer("to_categorical", "num_classes", num_classes, minimum=1)
    if a.size and a.min() < 0:
        raise ValueError(f"to_categorical: class indices must be >= 0, received {a.min()}")
    if num_classes is None:
        num_classes = int(a.max()) + 1 if a.size else 1
    elif a.size and a.max() >= num_classes:
        raise ValueError(f"to_categorical: class index {a.max()} is out of range for num_classes={num_classes}")
    shape = a.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    _checks.element_count("to_categorical", tuple(shape) + (num_classes,), "the result")
    if tensor_in:
        from .. import ops
        idx = ops.convert_to_tensor(a.reshape(shape).astype(np.int32), device=x.device)
        return ops.one_hot(idx, num_classes)
    flat = a.reshape(-1)
    out = np.zeros((flat.size, num_classes))
    out[np.arange(flat.size), flat] = 1.0
    return out.reshape(tuple(shape) + (num_classes,))


def normalize(x, axis=-1, order=2):
    """``x`` divided by its ``order``-norm along ``axis``, as ``keras.utils.normalize``:
    a numpy array leaves zero-norm slices as they are; a Tensor follows
    ``keras.ops.normalize`` (order 2: ``x * min(1/||x||, 1/epsilon)``, else
    ``x / max(||x||, epsilon)``)."""
    if isinstance(order, (bool, np.bool_)) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"normalize: order must be an int >= 1, received order={order!r}")
    if _is_tensor(x):
        from .. import backend, ops
        if x.ndim == 0:
            x = ops.expand_dims(x, 0)
        ax = _checks.normalize_axis("normalize", axis, x.ndim)
        if order == 2:
            # min(1/||x||, 1/eps) as 1/sqrt(max(||x||^2, eps^2)): no division by zero
            eps = backend.epsilon()
            return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis=ax, keepdims=True), eps * eps))
        norm = ops.power(ops.sum(ops.power(ops.abs(x), float(order)), axis=ax, keepdims=True), 1.0 / order)
        return x / ops.maximum(norm, backend.epsilon())
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"normalize: expected a numeric array, received dtype {a.dtype}")
    if a.ndim == 0:
        raise ValueError("normalize: expected an array with at least one axis, received a scalar")
    axis = -1 if axis is None else _checks.normalize_axis("normalize", axis, a.ndim)
    norm = np.atleast_1d(np.linalg.norm(a, order, axis))
    norm[norm == 0] = 1
    return a / np.expand_dims(norm, axis)
