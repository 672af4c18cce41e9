"""The Layer base class, symbolic tensors and graph nodes."""
from __future__ import annotations

import re
from typing import Optional

import numpy as np

from .. import backend, initializers

_NAME_COUNTS: dict = {}


def _auto_name(cls_name):
    base = re.sub(r"(?<!^)(?=[A-Z])", "_", cls_name).lower()
    base = base.replace("_d", "d") if re.search(r"\d_d$", base) else base
    n = _NAME_COUNTS.get(base, 0)
    _NAME_COUNTS[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


class InputSpecError(ValueError):
    pass


class KerasTensor:
    """A symbolic tensor of the functional API: a shape (batch axis first, ``None``) and
    the node that produces it."""

    def __init__(self, shape, node=None, name=None):
        self.shape = (None,) + tuple(int(s) for s in shape)
        self.node = node
        self.name = name

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, name={self.name}>"


class Node:
    """One call of a layer on symbolic inputs."""

    def __init__(self, layer, inputs, output):
        self.layer = layer
        self.inputs = list(inputs)
        self.output = output


class Layer:
    """Base class of all layers (Keras conventions: ``build(input_shape)``,
    ``get_config()``, ``get_weights()`` / ``set_weights()``, ``count_params()``)."""

    _registry: dict = {}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        Layer._registry[cls.__name__] = cls

    @staticmethod
    def registry():
        return dict(Layer._registry)

    def __init__(self, name=None, input_shape=None, dtype=None, trainable=True, input_dim=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword arguments {sorted(kwargs)}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{type(self).__name__}: name must be a non-empty string, got {name!r}")
        self.name = name or _auto_name(type(self).__name__)
        if input_dim is not None and input_shape is None:
            input_shape = (int(input_dim),)
        self._input_shape_arg = None if input_shape is None else tuple(int(s) for s in input_shape)
        self.dtype = dtype or backend.floatx()
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"{type(self).__name__}: dtype must be 'float32' or 'float64', got {self.dtype!r}")
        self.trainable = bool(trainable)
        self.built = False
        self.input_shape: Optional[tuple] = None
        self.output_shape: Optional[tuple] = None
        self._params = []  # [name, array, trainable]
        self._dev = None  # GpuArrays mirroring _params while the layer lives on the GPU
        self._host_stale = False
        self._inbound_nodes = []

    # ------------------------------------------------------------------ weights
    def add_weight(self, name, shape, initializer="zeros", trainable=True):
        value = initializers.initialize(initializers.get(initializer), tuple(shape), self.dtype)
        self._params.append([name, value, bool(trainable)])
        return value

    @property
    def weights(self):
        self._sync_host()
        return [p[1] for p in self._params]

    # ------------------------------------------------------------------ device placement
    def _w(self, name):
        """The weight ``name`` where the layer computes (GpuArray on the GPU)."""
        for i, p in enumerate(self._params):
            if p[0] == name:
                return self._dev[i] if self._dev is not None else p[1]
        raise KeyError(name)

    def _on_gpu(self):
        return self._dev is not None

    def _to_gpu(self):
        from ..device import to_gpu
        if self._dev is None:
            self._dev = [to_gpu(p[1], f"layer {self.name!r}") for p in self._params]
            self._host_stale = False

    def _to_cpu(self):
        self._sync_host()
        self._dev = None

    def _sync_host(self):
        """Read device weights back into the host arrays (in place) when they changed."""
        if self._dev is not None and self._host_stale:
            for p, d in zip(self._params, self._dev):
                p[1][...] = d.numpy().reshape(p[1].shape)
            self._host_stale = False

    @property
    def trainable_mask(self):
        return [p[2] and self.trainable for p in self._params]

    def get_weights(self):
        self._sync_host()
        return [p[1].copy() for p in self._params]

    def set_weights(self, weights):
        weights = list(weights)
        if len(weights) != len(self._params):
            raise ValueError(
                f"Layer {self.name!r} expects {len(self._params)} weight arrays "
                f"({', '.join(p[0] for p in self._params) or 'none'}), got {len(weights)}"
            )
        for p, w in zip(self._params, weights):
            w = np.asarray(w)
            if w.shape != p[1].shape:
                raise ValueError(f"Layer {self.name!r}: weight {p[0]!r} has shape {p[1].shape}, got {w.shape}")
            p[1][...] = w
        if self._dev is not None:
            self._sync_host()
            from .. import _core
            for p, d in zip(self._params, self._dev):
                _core.gpu_write(d, np.ascontiguousarray(p[1], dtype=np.float32))

    def count_params(self):
        return int(sum(p[1].size for p in self._params))

    # ------------------------------------------------------------------ shapes
    def build(self, input_shape):
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _ensure_built(self, input_shape):
        if not self.built:
            self.input_shape = input_shape
            self.build(input_shape)
            self.built = True
        self.output_shape = self.compute_output_shape(input_shape)
        return self.output_shape

    def _check_input(self, shape):
        """Layers declare the rank they accept through ``_input_rank`` (without batch)."""
        rank = getattr(self, "_input_rank", None)
        if rank is not None and len(shape) != rank:
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) expects inputs of rank {rank + 1} "
                f"(batch + {rank} axes), got shape {(None,) + tuple(shape)}"
            )

    # ------------------------------------------------------------------ compute
    def forward(self, x, training=False):
        """(output, cache) for a numpy batch ``x``."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def backward(self, cache, dy, need_dx=True):
        """(dL/dx or None, [dL/dw per weight, None for non-trainable])."""
        raise NotImplementedError(f"{type(self).__name__} must implement backward")

    def _cast(self, x):
        from ..device import is_gpu
        if is_gpu(x):
            return x
        return np.asarray(x, dtype=self.dtype)

    def __call__(self, inputs, training=False):
        if isinstance(inputs, KerasTensor) or (
            isinstance(inputs, (list, tuple)) and inputs and all(isinstance(t, KerasTensor) for t in inputs)
        ):
            return self._call_symbolic(inputs)
        x = [self._cast(v) for v in inputs] if isinstance(inputs, (list, tuple)) else self._cast(inputs)
        shape = [tuple(v.shape[1:]) for v in x] if isinstance(x, list) else tuple(x.shape[1:])
        if not isinstance(x, list):
            self._check_input(shape)
        self._ensure_built(shape)
        if self._on_gpu():
            from ..device import is_gpu, to_gpu
            if not isinstance(x, list) and not is_gpu(x):
                return self.forward(to_gpu(x, f"layer {self.name!r}"), training)[0].numpy()
        return self.forward(x, training)[0]

    def _call_symbolic(self, inputs):
        multi = isinstance(inputs, (list, tuple))
        shapes = [t.shape[1:] for t in inputs] if multi else inputs.shape[1:]
        if not multi:
            self._check_input(shapes)
        out_shape = self._ensure_built(shapes)
        out = KerasTensor(out_shape, name=self.name)
        node = Node(self, inputs if multi else [inputs], out)
        out.node = node
        self._inbound_nodes.append(node)
        self.output = out
        self.input = inputs
        return out

    # ------------------------------------------------------------------ config
    def get_config(self):
        cfg = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self._input_shape_arg is not None:
            cfg["input_shape"] = list(self._input_shape_arg)
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


class InputLayer(Layer):
    """The layer behind :func:`Input`: it passes its input through."""

    def __init__(self, shape=None, name=None, dtype=None, input_shape=None, **kw):
        shape = shape if shape is not None else input_shape
        if shape is None:
            raise ValueError("InputLayer needs a shape (without the batch axis), e.g. shape=(28, 28, 1)")
        super().__init__(name=name, dtype=dtype, **kw)
        self.shape = tuple(int(s) for s in shape)
        if any(s < 1 for s in self.shape):
            raise ValueError(f"Input shape must contain positive sizes, got {self.shape}")
        self.built = True
        self.output = KerasTensor(self.shape, node=None, name=self.name)
        self.output.node = Node(self, [], self.output)
        self.input_shape = self.output_shape = self.shape

    def forward(self, x, training=False):
        return x, None

    def backward(self, cache, dy, need_dx=True):
        return dy, []

    def get_config(self):
        return {"shape": list(self.shape), "name": self.name, "dtype": self.dtype}


def Input(shape, name=None, dtype=None):
    """A symbolic input of ``shape`` (without the batch axis), as ``keras.Input``."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    return InputLayer(shape=tuple(shape), name=name, dtype=dtype).output
