"""The tensor: an array that knows its device.

``Tensor`` holds its values where they are computed (a numpy array on the CPU, a GPU
buffer on the GPU) and carries that device, so an operation on tensors runs where its
inputs live and nothing else has to ask. ``np.asarray(t)`` gives the values (no copy on
the CPU; one read-back on the GPU). Arithmetic, comparisons, indexing and ``@`` are the
:mod:`convcore.ops` operations, so they are recorded by a :class:`GradientTape`.

``Variable`` is a tensor that can be assigned in place: layer weights, optimizer state.
A trainable variable read inside a tape is watched automatically, as in TensorFlow.
"""
from __future__ import annotations

import contextvars as _cv

import numpy as np

from . import device as _device

# Moving-average assignments made while a training step runs (batch normalization's
# statistics): applied by the trainer after it has checked the step's loss and
# gradients, so a step that turns out non-finite changes nothing.
_deferred = _cv.ContextVar("convcore_deferred_assignments", default=None)


class deferred_assignments:
    """``with deferred_assignments() as pending:`` — ``Variable.assign_axpby`` calls
    inside are recorded in ``pending`` as ``(variable, tensor, alpha, beta)`` instead of
    applied; :meth:`Variable._apply_axpby` applies one later."""

    def __enter__(self):
        self.pending = []
        self._token = _deferred.set(self.pending)
        return self.pending

    def __exit__(self, *exc):
        _deferred.reset(self._token)
        return False

__all__ = ["Tensor", "Variable", "convert_to_tensor", "is_tensor"]


_DTYPES = {"float32": np.dtype("float32"), "uint32": np.dtype("uint32")}  # a GpuArray's dtype names


class Tensor:
    """An array with a device ('cpu' or 'gpu'), a shape and a dtype."""

    __slots__ = ("_data", "_device", "_keras_logits", "_stats", "_is_seed", "__weakref__")
    # numpy defers binary operators to us, so ``ndarray + Tensor`` is a Tensor (recorded).
    __array_priority__ = 1000

    def __init__(self, data, device=None):
        self._device = _device.device_of(data) if device is None else device
        if isinstance(data, np.generic):  # numpy reductions give scalars: keep 0-d arrays
            data = np.asarray(data)
        self._data = data
        self._keras_logits = None  # the logits a softmax output came from (fused cross-entropy)
        self._stats = None  # GPU losses: the device pair [loss, accuracy] of the batch
        self._is_seed = False  # the gradient of ones a tape starts from

    # ------------------------------------------------------------------ facts
    @property
    def device(self):
        return self._device

    @property
    def shape(self):
        return tuple(self._data.shape)

    @property
    def dtype(self):
        """A numpy dtype (it compares equal to 'float32' and to np.float32 alike)."""
        d = self._data.dtype
        return d if isinstance(d, np.dtype) else _DTYPES[d]

    @property
    def ndim(self):
        return len(self._data.shape)

    @property
    def size(self):
        return int(np.prod(self._data.shape, dtype=np.int64))

    def __len__(self):
        if not self._data.shape:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    # ------------------------------------------------------------------ values
    def numpy(self):
        """The values as a numpy array (the array itself on the CPU, a copy read back
        from the GPU)."""
        return _device.to_host(self._data)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        if dtype is not None and np.dtype(dtype) != a.dtype:
            return a.astype(dtype)
        if copy:
            return a.copy()
        return a

    def item(self):
        return self.numpy().item()

    def __float__(self):
        return float(self.numpy())

    def __int__(self):
        return int(self.numpy())

    def __index__(self):
        a = self.numpy()
        if a.dtype.kind not in "iu" or a.ndim:
            raise TypeError(f"only integer scalar tensors can be used as an index, got {self.dtype} {self.shape}")
        return int(a)

    def __bool__(self):
        return bool(self.numpy())

    def tolist(self):
        return self.numpy().tolist()

    def __iter__(self):
        if not self._data.shape:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(self._data.shape[0]):
            yield self[i]

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", prefix="       ")
        return f"<Tensor shape={self.shape}, dtype={self.dtype}, device={self.device}: {body}>"

    # Arithmetic, comparison, indexing, reshape/astype and ``.T`` are installed by
    # convcore.ops (they are its operations).
    __hash__ = object.__hash__


class Variable(Tensor):
    """A tensor that can be assigned in place (``assign``, ``assign_add``,
    ``assign_sub``), with a ``name`` and a ``trainable`` flag, as ``keras.Variable``."""

    # regularizer / constraint: set by ``Layer.add_weight`` (Keras keeps them on the
    # variable; the trainer adds the penalty to the loss, the optimizer applies the
    # constraint after each update).
    # _version: counts in-place writes (assign, axpby, optimizer steps, moves), so caches
    # of values derived from the variable (inference_fusion's folded weights) know when
    # to recompute.
    __slots__ = ("name", "trainable", "path", "regularizer", "constraint", "_version")

    def __init__(self, initializer, shape=None, dtype=None, trainable=True, name=None, device="cpu"):
        from .ops.core import dtype_arg
        from . import _checks
        if not isinstance(trainable, (bool, np.bool_)):
            raise TypeError(f"Variable: trainable must be a bool, got {trainable!r}")
        dev = _device_name(device, "Variable") or "cpu"
        dt = None if dtype is None else dtype_arg("Variable", dtype)
        if callable(initializer) and not isinstance(initializer, (np.ndarray, Tensor)):
            if shape is None:
                raise ValueError("Variable: a callable initializer needs shape=")
            if isinstance(shape, (int, np.integer)):
                shape = (shape,)
            shape = tuple(_checks.integer("Variable", "shape", s, minimum=0) for s in shape)
            value = np.asarray(initializer(shape, dt or "float32"))
        else:
            value = np.asarray(initializer.numpy() if isinstance(initializer, Tensor) else initializer)
        if value.dtype.kind not in "biufc":
            raise TypeError(f"Variable: the initial value must be numeric, got dtype {value.dtype}")
        source = value
        if dt is not None:
            value = value.astype(dt, copy=False)
        elif value.dtype.kind != "f":
            value = value.astype("float32")
        # One copy at most (a VGG16 Dense kernel is 411 MB): a cast already made one;
        # the caller's array (or an initializer's) is never shared.
        if value is source or not value.flags.c_contiguous:
            value = np.array(value, copy=True, order="C")
        super().__init__(_device.backend(dev).put(value, f"variable {name!r}"), dev)
        self.name = name or "variable"
        self.path = self.name
        self.trainable = bool(trainable)
        self.regularizer = None
        self.constraint = None
        self._version = 0

    @property
    def value(self):
        """The current values as a (non-variable) tensor."""
        return Tensor(self._data, self._device)

    def assign(self, value):
        """Overwrite the values in place (same shape)."""
        v = np.asarray(value.numpy() if isinstance(value, Tensor) else value)
        if v.dtype.kind not in "biufc" or (v.dtype.kind == "c" and np.dtype(self.dtype).kind != "c"):
            raise TypeError(f"Variable {self.name!r}: cannot assign values of dtype {v.dtype} to a variable of dtype "
                            f"{self.dtype}")
        if v.shape != self.shape:
            raise ValueError(f"Variable {self.name!r}: cannot assign a value of shape {v.shape} to a variable of "
                             f"shape {self.shape}")
        _device.backend(self._device).write(self._data, v.astype(self.dtype, copy=False))
        self._version += 1
        return self

    def assign_axpby(self, other, alpha, beta):
        """``self = alpha * self + beta * other`` in place, on the variable's device
        (moving averages)."""
        o = other if isinstance(other, Tensor) else convert_to_tensor(other, dtype=self.dtype, device=self._device)
        pending = _deferred.get()
        if pending is not None:
            pending.append((self, o, alpha, beta))
            return self
        return self._apply_axpby(o, alpha, beta)

    def _apply_axpby(self, o, alpha, beta):
        _device.backend(self._device).axpby_inplace(self._data, o._data, alpha, beta)
        self._version += 1
        return self

    def assign_add(self, delta):
        return self.assign_axpby(delta, 1.0, 1.0)

    def assign_sub(self, delta):
        return self.assign_axpby(delta, 1.0, -1.0)

    def _move(self, device):
        """Keep the values on ``device`` from now on (weights follow their model)."""
        if device != self._device:
            self._data = _device.to_device(_device.to_host(self._data), device, f"variable {self.name!r}")
            self._device = device
            self._version += 1

    def __repr__(self):
        return (f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype}, device={self.device}, "
                f"value={np.array2string(self.numpy(), separator=', ', threshold=6)}>")

    def __deepcopy__(self, memo):
        v = Variable(self.numpy(), dtype=self.dtype, trainable=self.trainable, name=self.name, device=self._device)
        v.path, v.regularizer, v.constraint = self.path, self.regularizer, self.constraint
        memo[id(self)] = v
        return v


def is_tensor(x):
    return isinstance(x, Tensor)


def _device_name(device, func="convert_to_tensor"):
    """A ``device=`` argument: None, or a name of :data:`convcore.device`'s ('cpu',
    'gpu', 'auto', any case), resolved to 'cpu' or 'gpu'. Anything else is refused here,
    before it can reach the table of backends: a non-string a TypeError, an unknown name
    a ValueError naming the valid ones."""
    if device is None:
        return None
    if not isinstance(device, str):
        raise TypeError(f"{func}: device must be a string ('cpu', 'gpu' or 'auto') or None, got {device!r} "
                        f"({type(device).__name__})")
    return _device.resolve(device, func)


def convert_to_tensor(x, dtype=None, device=None):
    """A Tensor of ``x`` (a Tensor, numpy array, list or scalar). A Tensor stays on its
    device unless ``device`` names another; anything else goes to ``device`` (default:
    the CPU). Object arrays (and what numpy can only store as objects) are a TypeError."""
    dev = _device_name(device)
    if dtype is not None:
        from .ops.core import dtype_arg
        dtype = dtype_arg("convert_to_tensor", dtype)
    if isinstance(x, Tensor):
        if dtype is not None and np.dtype(dtype) != np.dtype(x.dtype):
            from . import ops
            x = ops.cast(x, dtype)
        if dev is not None and dev != x.device:
            return Tensor(_device.to_device(x._data, dev), dev)
        return x
    if isinstance(x, np.ndarray) and x.dtype.kind in "OV":
        raise TypeError(f"cannot convert an array of dtype {x.dtype} to a tensor: it is not numeric")
    a = np.asarray(x, dtype=dtype)
    if a.dtype.kind in "OV":
        raise TypeError(f"cannot convert {type(x).__name__} to a tensor: it is not numeric")
    if not a.dtype.isnative:  # a byte-swapped array: stored in the machine's order (one dtype name everywhere)
        a = a.astype(a.dtype.newbyteorder("="))
    dev = dev or "cpu"
    return Tensor(_device.backend(dev).put(a), dev)
