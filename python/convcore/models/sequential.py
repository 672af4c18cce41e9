"""``Sequential``: a linear stack of layers, as ``keras.Sequential``."""
from __future__ import annotations

import numpy as np

from ..layers.core import Input, InputLayer, KerasTensor, Layer
from ..tensor import Tensor
from .model import Model


class Sequential(Model):
    """A linear stack of layers, as ``keras.Sequential``."""

    def __init__(self, layers=None, name=None):
        super().__init__(name=name or "sequential")
        self.__dict__["_stack"] = []
        self._input_tensor = None
        for l in layers or []:
            self.add(l)

    def add(self, layer):
        if isinstance(layer, KerasTensor):
            if self._stack or self._input_tensor is not None:
                raise ValueError("Sequential: Input(...) must come first")
            self._input_tensor = layer
            return
        if isinstance(layer, InputLayer):
            self.add(layer.output)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {layer!r}")
        self._stack.append(layer)
        if self._input_tensor is None and len(self._stack) == 1 and layer._input_shape_arg is not None:
            self._input_tensor = Input(layer._input_shape_arg, dtype=layer.dtype)
        if self._input_tensor is not None:
            self._rebuild()

    def pop(self):
        if not self._stack:
            raise ValueError("Sequential.pop: there are no layers")
        self._stack.pop()
        if self._stack and self._input_tensor is not None:
            self._rebuild()

    def _rebuild(self):
        t = self._input_tensor
        for l in self._stack:
            t = l._call_symbolic(t)
        self._init_graph([self._input_tensor], [t])

    def _ensure_built_for(self, x):
        if not self._is_graph():
            if x is None or not self._stack:
                self._require_graph()
            a = x.numpy() if isinstance(x, Tensor) else np.asarray(x)
            self._input_tensor = Input(a.shape[1:], dtype=self._stack[0].dtype)
            self._rebuild()

    def build(self, input_shape=None):
        """Build with ``input_shape`` (batch axis first, may be None)."""
        if input_shape is None:
            return
        self._input_tensor = Input(tuple(input_shape)[1:], dtype=self._stack[0].dtype if self._stack else None)
        self._rebuild()

    @property
    def layers(self):
        return list(self._stack)

    def get_config(self):
        from ..layers import serialize
        self._require_graph()
        return {"name": self.name, "input_shape": list(self.inputs[0].shape[1:]),
                "input_dtype": self.inputs[0].node.layer.dtype, "layers": [serialize(l) for l in self._stack]}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from ..layers import deserialize
        m = cls(name=config.get("name"))
        if config.get("input_shape") is not None:
            m.add(Input(tuple(config["input_shape"]), dtype=config.get("input_dtype")))
        for d in config.get("layers", []):
            layer = deserialize(d, custom_objects)
            if isinstance(layer, InputLayer):
                continue
            m.add(layer)
        return m

    @property
    def weights(self):
        if not self._is_graph():
            self._require_graph()
        return Model.weights.fget(self)
