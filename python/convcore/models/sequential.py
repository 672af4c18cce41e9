"""``Sequential``: a linear stack of layers, as ``keras.Sequential``."""
from __future__ import annotations

import numpy as np

from ..layers.core import Input, InputLayer, KerasTensor, Layer
from ..tensor import Tensor
from .model import Model, _deserialize_entry


class Sequential(Model):
    """A linear stack of layers, as ``keras.Sequential``."""

    def __init__(self, layers=None, name=None):
        super().__init__(name=name or "sequential")
        self.__dict__["_stack"] = []
        self._input_tensor = None
        self._tip = None  # the symbolic output of the last layer called so far
        self._called = 0  # how many layers of the stack have been called on it
        for l in layers or []:
            self._append(l)
        self._connect()

    def add(self, layer):
        self._append(layer)
        self._connect()

    def _append(self, layer):
        """Put ``layer`` on the stack (or take it as the input); not yet called."""
        if isinstance(layer, KerasTensor):
            if self._stack or self._input_tensor is not None:
                raise ValueError("Sequential: Input(...) must come first")
            self._input_tensor = layer
            return
        if isinstance(layer, InputLayer):
            self._append(layer.output)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {layer!r}")
        self._stack.append(layer)
        if self._input_tensor is None and len(self._stack) == 1:
            if layer._input_shape_arg is not None:
                self._input_tensor = Input(layer._input_shape_arg, batch_size=layer._batch_size_arg,
                                           dtype=layer.dtype)
            elif isinstance(layer, Model) and layer._is_graph() and len(layer.inputs) == 1:
                # a model as the first layer: its input shape is the stack's (as Keras)
                mine = layer.inputs[0]
                self._input_tensor = Input(mine.shape[1:], batch_size=mine.shape[0], dtype=mine.node.layer.dtype)

    def _call_pending(self):
        """Call the layers not yet called, each on the output of the one before. A
        layer that cannot take its input is taken off the stack again (with any after
        it), so the model stays as it was."""
        if self._input_tensor is None or not self._stack:
            return False
        if self._tip is None:
            self._tip, self._called = self._input_tensor, 0
        made = self.__dict__.setdefault("_made_nodes", [])
        while self._called < len(self._stack):
            layer = self._stack[self._called]
            try:
                self._tip = layer._call_symbolic(self._tip)
            except BaseException:
                del self._stack[self._called:]
                raise
            made.append((layer, layer._inbound_nodes[-1]))
            self._called += 1
        return True

    def _connect(self):
        """Call the pending layers, then make the graph once: building a stack of n
        layers costs n layer calls and one graph walk, not n^2."""
        if self._call_pending():
            self._init_graph([self._input_tensor], [self._tip])

    def pop(self):
        if not self._stack:
            raise ValueError("Sequential.pop: there are no layers")
        self._stack.pop()
        self._rebuild()

    def _rebuild(self):
        """Call every layer again from the input (after ``pop`` or a new input). The
        nodes of the old graph are dropped from the layers, so ``layer.output`` is the
        new graph's."""
        for layer, node in self.__dict__.get("_made_nodes", []):
            nodes = layer.__dict__.get("_inbound_nodes", [])
            for i, n in enumerate(nodes):
                if n is node:
                    del nodes[i]
                    break
        self.__dict__["_made_nodes"] = []
        self._tip = None
        self._connect()

    def _build_for_symbolic(self, ins):
        if len(ins) != 1 or not self._stack:
            raise ValueError(f"Sequential {self.name!r} takes one input and needs layers, called on {len(ins)} "
                             f"input(s) with {len(self._stack)} layer(s)")
        t = ins[0]
        self._input_tensor = Input(t.shape[1:], dtype=self._stack[0].dtype)
        self._rebuild()

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

    def _sublayers(self):
        # the stack, built or not: freezing an unbuilt Sequential freezes its layers
        return list(self._stack)

    def get_config(self):
        from ..layers import serialize
        self._require_graph()
        return {"name": self.name, "input_shape": list(self.inputs[0].shape[1:]),
                "input_dtype": self.inputs[0].node.layer.dtype, "layers": [serialize(l) for l in self._stack]}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """The model of ``get_config()``; a bad entry is a ConfigError naming its key
        (``layers.3``) and the layer."""
        from ..saving.config_errors import ConfigError, check_dict
        check_dict(config, (), "a model config (a dict)")
        entries = config.get("layers", [])
        if not isinstance(entries, list):
            raise ConfigError("layers", f"must be a list of layer configs, got {type(entries).__name__}")
        try:
            m = cls(name=config.get("name"))
        except (TypeError, ValueError) as e:
            raise ConfigError("name", str(e)) from None
        if config.get("input_shape") is not None:
            shape = config["input_shape"]
            if not isinstance(shape, list):
                raise ConfigError("input_shape", f"must be a list of sizes, got {shape!r}")
            try:
                m._append(Input(tuple(shape), dtype=config.get("input_dtype")))
            except (TypeError, ValueError, OverflowError) as e:
                raise ConfigError("input_shape", str(e)) from None
        for i, d in enumerate(entries):
            layer = _deserialize_entry(d, i, custom_objects)
            if isinstance(layer, InputLayer):
                if m._input_tensor is None and not m._stack:
                    m._append(layer)
                continue
            m._append(layer)
            try:
                m._call_pending()
            except (TypeError, ValueError) as e:
                raise ConfigError(("layers", i), f"layer {layer.name!r} ({type(layer).__name__}) cannot take the "
                                  f"output of the layers before it: {e}") from None
        m._connect()
        return m

    @property
    def weights(self):
        if not self._is_graph():
            self._require_graph()
        return Model.weights.fget(self)
