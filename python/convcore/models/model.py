"""``Model``: a graph of layer calls from ``Input`` tensors to outputs (the functional
API), or a subclass with its own ``call``. It is a Layer (models nest), runs its layers
in topological order on tensors, and trains through :class:`~convcore.trainers.Trainer`
(``compile`` / ``fit`` / ``evaluate`` / ``predict``). Gradients come from the tape."""
from __future__ import annotations

import numpy as np

from .. import device as device_mod
from ..layers.core import InputLayer, KerasTensor, Layer, entry_call
from ..tensor import Tensor
from ..trainers.trainer import Trainer
from . import inference_fusion


def _deserialize_entry(d, i, custom_objects):
    """The layer of entry ``i`` of a model config's ``layers``, its errors as
    ConfigErrors under ``layers.i`` (an unknown class under ``layers.i.class_name``)."""
    from ..layers import deserialize
    from ..saving.config_errors import ConfigError
    try:
        return deserialize(d, custom_objects)
    except ConfigError as e:
        raise e.within("layers", i) from None
    except ValueError as e:  # not a layer class
        raise ConfigError(("layers", i, "class_name"), str(e)) from None


def _shape_fits(actual, declared):
    """Whether sizes ``actual`` fit ``declared`` (None: any size)."""
    return len(actual) == len(declared) and all(d is None or a == d for a, d in zip(actual, declared))


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _topological_nodes(outputs, first_visit=None):
    """The nodes the ``outputs`` depend on, each after the nodes of its inputs (the
    order of a depth-first walk from the outputs, inputs first). Iterative with an
    explicit stack: a chain of thousands of layers must not hit the recursion limit.
    ``first_visit`` (a dict), when given, receives each layer's index in the order the
    walk first reaches it (Keras's ``operation_indices``)."""
    order, seen = [], set()

    def visit(node):
        seen.add(id(node))
        if first_visit is not None:
            first_visit.setdefault(id(node.layer), len(first_visit))
        return node, iter(node.inputs)

    for t in outputs:
        if id(t.node) in seen:
            continue
        stack = [visit(t.node)]
        while stack:
            node, pending = stack[-1]
            for s in pending:
                if id(s.node) not in seen:
                    stack.append(visit(s.node))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def _keras_layer_order(order, first_visit, inputs):
    """The layers of the nodes ``order`` in Keras's order (``keras.ops.function.
    map_graph``): by depth from the outputs, deepest (nearest the inputs) first, ties by
    the walk's first visit; a layer called at several depths counts at its deepest. So
    ``model.layers``, ``get_weights()``, ``summary()`` and the positional loading of
    Keras's HDF5 files follow the same order as Keras where branches meet (ResNet's
    shortcut convolution comes after the branch's, as in Keras)."""
    node_depth, layer_depth = {}, {}
    for node in reversed(order):
        d = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = d
        node_depth[id(node)] = d
        for s in node.inputs:
            node_depth[id(s.node)] = max(d + 1, node_depth.get(id(s.node), 0))
    layers, seen = [], set()
    for node in order:
        if id(node.layer) not in seen:
            seen.add(id(node.layer))
            layers.append(node.layer)
    for t in inputs:  # an input no output uses is still a layer of the model (depth 0)
        if id(t.node.layer) not in seen:
            seen.add(id(t.node.layer))
            layers.append(t.node.layer)
            layer_depth[id(t.node.layer)] = 0
            first_visit[id(t.node.layer)] = -1
    layers.sort(key=lambda l: (-layer_depth[id(l)], first_visit[id(l)]))
    return layers


def _config_order(entries, names):
    """Indices of the layer configs ``entries``, each after the layers it is called on
    (file order when the file is already in that order, as saved files are), or a
    ConfigError naming the cycle. ``names`` maps a layer name to its index."""
    from ..saving.config_errors import ConfigError
    inbound = [[names[n] for n in d.get("inbound", [])] for d in entries]
    state = [0] * len(entries)  # 0: not seen, 1: on the stack, 2: placed
    order = []
    for root in range(len(entries)):
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, iter(inbound[root]))]
        while stack:
            i, pending = stack[-1]
            for j in pending:
                if state[j] == 1:
                    path = [k for k, _ in stack]
                    cycle = [entries[k]["config"]["name"] for k in path[path.index(j):]] + [entries[j]["config"]["name"]]
                    raise ConfigError(("layers", i, "inbound"), "the layers form a cycle, each called on the next: "
                                      + " -> ".join(repr(n) for n in cycle))
                if state[j] == 0:
                    state[j] = 1
                    stack.append((j, iter(inbound[j])))
                    break
            else:
                stack.pop()
                state[i] = 2
                order.append(i)
    return order


class Model(Trainer, Layer):
    """A functional model: ``Model(inputs, outputs)`` over symbolic tensors; or a
    subclass that builds layers in ``__init__`` and uses them in ``call``."""

    def __init__(self, inputs=None, outputs=None, name=None, **kw):
        Layer.__init__(self, name=name or ("model" if type(self) is Model else None), **kw)
        Trainer.__init__(self)
        if inputs is not None:
            if outputs is None:
                raise ValueError("Model(inputs, outputs): outputs are missing")
            self._init_graph(_as_list(inputs), _as_list(outputs))
            self.built = True

    # ------------------------------------------------------------------ graph
    def _init_graph(self, inputs, outputs):
        for t in inputs + outputs:
            if not isinstance(t, KerasTensor):
                raise TypeError(f"Model inputs and outputs must be symbolic tensors (from Input or a layer call), got {t!r}")
        for t in inputs:
            if not isinstance(t.node.layer, InputLayer):
                raise ValueError(f"Model inputs must come from Input(...), got {t!r}")
        self.inputs, self.outputs = inputs, outputs
        first_visit = {}
        order = _topological_nodes(outputs, first_visit)
        input_ids = {id(t) for t in inputs}
        for node in order:
            if isinstance(node.layer, InputLayer) and id(node.output) not in input_ids:
                raise ValueError(f"Output depends on input {node.layer.name!r}, which is not among the model inputs")
        self._nodes = [n for n in order if not isinstance(n.layer, InputLayer)]
        layers = _keras_layer_order(order, first_visit, inputs)
        self.__dict__["_all_layers"] = layers  # not through Layer.__setattr__, which would track them (InputLayers too)
        self.__dict__["_layers"] = [l for l in layers if not isinstance(l, InputLayer)]
        self._graph_weights = None  # computed on first use (the graph's layers are built)
        self.built = True

    def _is_graph(self):
        return hasattr(self, "_nodes")

    @property
    def layers(self):
        if self._is_graph():
            return list(self._all_layers)
        return list(self._layers)

    @property
    def input(self):
        self._require_graph()
        return self.inputs[0] if len(self.inputs) == 1 else self.inputs

    @property
    def output(self):
        self._require_graph()
        return self.outputs[0] if len(self.outputs) == 1 else self.outputs

    @property
    def input_shape(self):
        self._require_graph()
        return self.inputs[0].shape if len(self.inputs) == 1 else [t.shape for t in self.inputs]

    @property
    def output_shape(self):
        self._require_graph()
        return self.outputs[0].shape if len(self.outputs) == 1 else [t.shape for t in self.outputs]

    @input_shape.setter
    def input_shape(self, v):
        pass

    @output_shape.setter
    def output_shape(self, v):
        pass

    def get_layer(self, name=None, index=None):
        """A layer by name or by index (``model.layers[index]``)."""
        layers = self.layers
        if index is not None:
            if not isinstance(index, (int, np.integer)) or not -len(layers) <= index < len(layers):
                raise ValueError(f"get_layer: index {index!r} out of range for a model with {len(layers)} layers")
            return layers[index]
        for l in layers:
            if l.name == name:
                return l
        raise ValueError(f"No layer named {name!r}; layers are: {', '.join(l.name for l in layers)}")

    def _require_graph(self, x=None):
        if not self._is_graph():
            raise ValueError(f"Model {self.name!r} has no inputs yet: give the first layer input_shape=... or "
                             "start with Input(shape)")

    def output_of(self, layer):
        """The symbolic output of ``layer`` inside this model's graph."""
        self._require_graph()
        for node in self._nodes:
            if node.layer is layer:
                return node.output
        if isinstance(layer, InputLayer) and layer.output in self.inputs:
            return layer.output
        raise ValueError(f"Layer {layer.name!r} is not part of model {self.name!r}")

    _output_of = output_of

    # ------------------------------------------------------------------ weights
    @property
    def weights(self):
        if self._is_graph():
            if self._graph_weights is None:
                out, seen = [], set()
                for l in self._all_layers:
                    for w in l.weights:
                        if id(w) not in seen:
                            seen.add(id(w))
                            out.append(w)
                self._graph_weights = out
            return list(self._graph_weights)
        return Layer.weights.fget(self)

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        if self._is_graph():
            out, seen = [], set()
            for l in self._all_layers:
                for w in l.trainable_weights:
                    if id(w) not in seen:
                        seen.add(id(w))
                        out.append(w)
            return out
        return Layer.trainable_weights.fget(self)

    trainable_variables = trainable_weights

    def _sublayers(self):
        return list(self._all_layers) if self._is_graph() else Layer._sublayers(self)

    def set_weights(self, weights):
        weights = list(weights)
        mine = self.weights
        if len(weights) != len(mine):
            raise ValueError(f"set_weights: model {self.name!r} has {len(mine)} weight arrays, got {len(weights)}")
        Layer.set_weights(self, weights)

    def _move_to(self, device):
        self._device = device
        for l in self.layers:
            l._move_to(device)
        for v in self._variables:
            v._move(device)

    # ------------------------------------------------------------------ execution
    def _check_x(self, x):
        """The inputs as contiguous numpy arrays of the input dtypes, checked."""
        self._require_graph()
        xs = _as_list(x) if isinstance(x, (list, tuple)) and len(self.inputs) > 1 else [x]
        if isinstance(x, dict):
            xs = [x[t.node.layer.name] for t in self.inputs]
        if len(xs) != len(self.inputs):
            raise ValueError(f"Model {self.name!r} expects {len(self.inputs)} inputs, got {len(xs)}")
        out = []
        for t, v in zip(self.inputs, xs):
            v = v.numpy() if isinstance(v, Tensor) else np.asarray(v)
            if v.dtype.kind not in "biuf":
                raise TypeError(f"Model {self.name!r}: inputs must be numeric arrays, got dtype {v.dtype}")
            if v.ndim != len(t.shape) or not _shape_fits(v.shape[1:], t.shape[1:]):
                raise ValueError(f"Input of model {self.name!r} has the wrong shape: expected {t.shape}, "
                                 f"received {v.shape}")
            out.append(np.ascontiguousarray(v, dtype=t.node.layer.dtype))
        n = {len(v) for v in out}
        if len(n) != 1:
            raise ValueError(f"Model inputs have different numbers of samples: {sorted(n)}")
        return out

    def call(self, inputs, training=None):
        """Run the graph on tensors (one per model input) and return the output
        tensor(s). In inference (``training`` falsy, no tape recording) each
        convolution / Dense -> BatchNormalization [-> ReLU] chain of the graph runs as
        one convolution with the normalization folded into its weights
        (:mod:`convcore.models.inference_fusion`)."""
        self._require_graph()
        xs = _as_list(inputs) if len(self.inputs) > 1 else [inputs]
        values = {id(t): v for t, v in zip(self.inputs, xs)}
        release = self._release_after()
        plan = self._fusion_plan() if inference_fusion.applies(training) else None
        if plan is not None and not plan.groups:
            plan = None
        skip = plan.skip if plan is not None else ()
        for i, node in enumerate(self._nodes):
            if plan is not None:
                if i in skip:
                    continue
                group = plan.at.get(i)
                if group is not None:
                    x = values[group.input_id]
                    y = group.run(x) if isinstance(x, Tensor) else None
                    if y is not None:
                        plan.runs += 1
                        values[group.output_id] = y
                        del x, y
                        for k in group.release:
                            values.pop(k, None)
                        continue
                    del x  # not foldable now (a layer's arguments changed): its layers one by one
                    skip = skip - set(group.indices)
            ins = [values[id(t)] for t in node.inputs]
            layer = node.layer
            if layer.built and not node.multi and isinstance(ins[0], Tensor) and not node.call_kwargs:
                # the graph checked the shapes when it was built: only the dtype remains
                y = layer._forward(layer._cast(ins[0]), training)
            else:
                y = layer(ins if node.multi else ins[0], training=training, **node.call_kwargs)
            ys = y if isinstance(y, (list, tuple)) else [y]
            for t, v in zip(node.outputs, ys):
                values[id(t)] = v
            del ins, y, ys
            for k in release[i]:  # tensors no later node reads: freed now, not at the end
                values.pop(k, None)
        outs = [values[id(t)] for t in self.outputs]
        return outs[0] if len(outs) == 1 else outs

    def _fusion_plan(self):
        """The graph's folded convolution + normalization groups
        (:func:`inference_fusion.build_plan`), made once per graph as
        ``_release_after`` is; the folded weights it caches follow the variables."""
        cached = self.__dict__.get("_fusion_cache")
        if cached is not None and cached[0] is self._nodes:
            return cached[1]
        plan = inference_fusion.build_plan(self._nodes, self.outputs, self._release_after())
        self.__dict__["_fusion_cache"] = (self._nodes, plan)
        return plan

    def _release_after(self):
        """For each node of the graph, the ids of the tensors whose last reader it is
        (the model's outputs are never released). An inference forward then holds only
        the activations still to be read, not every layer's output (measured: ResNet50
        at batch 32 peaked at 4.6 GB, PyTorch at 0.5 GB); a GradientTape keeps what its
        backward needs itself."""
        cached = self.__dict__.get("_release_cache")
        if cached is not None and cached[0] is self._nodes:
            return cached[1]
        last = {}
        for i, node in enumerate(self._nodes):
            for t in node.inputs:
                last[id(t)] = i
        keep = {id(t) for t in self.outputs}
        release = [[] for _ in self._nodes]
        for k, i in last.items():
            if k not in keep:
                release[i].append(k)
        self.__dict__["_release_cache"] = (self._nodes, release)
        return release

    def _run(self, xs, training):
        """Outputs (a list of tensors) for checked numpy inputs ``xs``, on the model's
        device."""
        dev = self._place()
        ts = [x if isinstance(x, Tensor) else Tensor(device_mod.backend(dev).put(x, f"Model {self.name!r}"), dev)
              for x in xs]
        with entry_call(self):
            y = self._forward(ts if len(ts) > 1 else ts[0], training)
        return list(y) if isinstance(y, (list, tuple)) else [y]

    def __call__(self, inputs, training=None, **kwargs):
        if isinstance(inputs, KerasTensor) or (isinstance(inputs, (list, tuple)) and inputs and
                                               isinstance(inputs[0], KerasTensor)):
            return Layer.__call__(self, inputs, training=training, **kwargs)
        self._ensure_built_for(inputs)
        if not self._is_graph():
            return Layer.__call__(self, inputs, training=training, **kwargs)
        if isinstance(inputs, Tensor) or (isinstance(inputs, (list, tuple)) and inputs and
                                          isinstance(inputs[0], Tensor)):
            self._place()
            with entry_call(self):
                return self._forward(inputs, training)
        outs = self._run(self._check_x(inputs), training)
        return outs[0] if len(outs) == 1 else outs

    def _call_symbolic(self, inputs, kwargs=None):
        """The model called on symbolic tensors: one node of an outer graph (a model used
        as a layer). The tensors must fit the model's inputs."""
        ins = _as_list(inputs)
        if not self._is_graph():
            self._build_for_symbolic(ins)
        if self._is_graph():
            if len(ins) != len(self.inputs):
                raise ValueError(f"Model {self.name!r} takes {len(self.inputs)} input(s), called on {len(ins)}")
            for i, (t, mine) in enumerate(zip(ins, self.inputs)):
                a, m = tuple(t.shape[1:]), tuple(mine.shape[1:])
                if len(a) != len(m) or any(x is not None and y is not None and x != y for x, y in zip(a, m)):
                    raise ValueError(f"Model {self.name!r} expects input {i} of shape {mine.shape}, but it is called "
                                     f"on a tensor of shape {t.shape}")
        return Layer._call_symbolic(self, inputs, kwargs)

    def _build_for_symbolic(self, ins):
        """A model without a graph yet, first called on symbolic tensors (a Sequential
        builds its graph from them; a subclassed model needs nothing)."""

    def _ensure_built_for(self, x):
        if not self._is_graph() and type(self).call is Model.call:
            self._require_graph()
        if not self._is_graph() and "_build_input_shape" not in self.__dict__:
            # The input shape of the first call (from __call__, fit, evaluate, predict):
            # a .keras file's build_config, as Keras records it.
            xs = x if isinstance(x, (list, tuple)) else [x]
            if xs and all(hasattr(v, "shape") and len(v.shape) >= 1 for v in xs):
                shapes = [(None,) + tuple(int(n) for n in v.shape[1:]) for v in xs]
                self.__dict__["_build_input_shape"] = shapes if isinstance(x, (list, tuple)) else shapes[0]

    def compute_output_shape(self, input_shape):
        if self._is_graph():
            return self.outputs[0].shape[1:] if len(self.outputs) == 1 else [t.shape[1:] for t in self.outputs]
        return Layer.compute_output_shape(self, input_shape)

    def build(self, input_shape):
        if not self._is_graph() and input_shape is not None:
            self.__dict__.setdefault("_build_input_shape", input_shape)
        self.built = True

    # ------------------------------------------------------------------ device
    @property
    def device(self):
        """Where the model computes: 'cpu' or 'gpu'."""
        return self._compiled_device or device_mod.get_device()

    def _place(self):
        """Keep the model's weights on its device (moved once, then they stay)."""
        dev = self.device
        if self._device != dev or any(w._device != dev for w in self.weights):
            if dev == "gpu":
                for l in self.layers:
                    if l.dtype != "float32" and l.weights:
                        raise TypeError(f"Model {self.name!r}: layer {l.name!r} computes in {l.dtype} but the GPU "
                                        "computes in float32; build the model with float32 layers, or use device='cpu'")
            self._move_to(dev)
        return dev

    # ------------------------------------------------------------------ summary / saving
    def summary(self, print_fn=None):
        """Print a table of layers, output shapes and parameter counts (as Keras)."""
        self._require_graph()
        from ..layers import InputLayer as _IL
        from .sequential import Sequential
        print_fn = print_fn or print
        rows = []
        for l in self.layers:
            if isinstance(l, _IL) and isinstance(self, Sequential):
                continue
            out = getattr(l, "output", None)
            shape = out.shape if isinstance(out, KerasTensor) else "?"
            rows.append((f"{l.name} ({type(l).__name__})", str(shape), f"{l.count_params():,}"))
        w = [max(len(h), *(len(r[i]) for r in rows)) + 2 for i, h in enumerate(("Layer (type)", "Output Shape", "Param #"))]
        line = lambda r: "".join(c.ljust(w[i]) for i, c in enumerate(r))
        total = self.count_params()
        trainable = int(sum(v.size for v in self.trainable_weights))
        out = [f'Model: "{self.name}"', "_" * sum(w), line(("Layer (type)", "Output Shape", "Param #")), "=" * sum(w)]
        out += [line(r) for r in rows]
        out += ["=" * sum(w), f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                f"Non-trainable params: {total - trainable:,}", "_" * sum(w)]
        print_fn("\n".join(out))

    def count_params(self):
        return int(sum(w.size for w in self.weights))

    def get_config(self):
        """The graph: each layer's config with the names of the layers it is called on,
        and the input and output layer names (a subclassed model: its constructor
        arguments, which it must return itself, as in Keras)."""
        from ..layers import serialize
        if not self._is_graph() or type(self).call is not Model.call:
            return {"name": self.name, "trainable": self.trainable}
        layers = []
        for l in self.layers:
            if len(l._inbound_nodes) > 1:
                raise ValueError(f"save: layer {l.name!r} is called more than once; shared layers cannot be "
                                 "saved yet")
            node = l.output.node
            layers.append({**serialize(l), "inbound": [t.node.layer.name for t in node.inputs]})
        return {"name": self.name, "layers": layers,
                "inputs": [t.node.layer.name for t in self.inputs],
                "outputs": [t.node.layer.name for t in self.outputs]}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """The model of ``get_config()``. Every entry is checked before it is used: a
        layer config that is not a dict, a missing or duplicate name, an ``inbound``
        naming an unknown layer or a cycle, inputs that are not Input layers: each is a
        ConfigError naming the key (``layers.3.inbound``) and the layer."""
        from ..layers import InputLayer as _IL
        from ..saving.config_errors import ConfigError, check_dict
        check_dict(config, (), "a model config (a dict)")
        if "layers" not in config:  # a subclassed model: its constructor arguments
            try:
                return cls(**config)
            except (TypeError, ValueError) as e:
                raise ConfigError((), f"model class {cls.__name__}: {e}") from None
        entries = config["layers"]
        if not isinstance(entries, list):
            raise ConfigError("layers", f"must be a list of layer configs, got {type(entries).__name__}")
        names = {}
        for i, d in enumerate(entries):
            check_dict(d, ("layers", i), "a layer config (a dict with 'class_name', 'config' and 'inbound')")
            c = check_dict(d.get("config"), ("layers", i, "config"), "the layer's config (a dict)")
            name = c.get("name")
            if not isinstance(name, str) or not name:
                raise ConfigError(("layers", i, "config", "name"), "a layer of a functional model needs a name "
                                  f"(a non-empty string), got {name!r}")
            if name in names:
                raise ConfigError(("layers", i, "config", "name"), f"two layers are named {name!r}")
            inbound = d.get("inbound", [])
            if not isinstance(inbound, list) or not all(isinstance(n, str) for n in inbound):
                raise ConfigError(("layers", i, "inbound"), f"must be a list of layer names, got {inbound!r}")
            names[name] = i
        for i, d in enumerate(entries):
            for n in d.get("inbound", []):
                if n not in names:
                    raise ConfigError(("layers", i, "inbound"), f"layer {d['config']['name']!r} is called on "
                                      f"unknown layer {n!r}")
        for key in ("inputs", "outputs"):
            ends = config.get(key)
            if not isinstance(ends, list) or not ends or not all(isinstance(n, str) for n in ends):
                raise ConfigError(key, f"must be a non-empty list of layer names, got {ends!r}")
            for n in ends:
                if n not in names:
                    raise ConfigError(key, f"names unknown layer {n!r}")
            if key == "inputs" and len(set(ends)) != len(ends):  # as Keras: one input, one name
                raise ConfigError(key, f"names a layer twice: {ends!r}")
        tensors = {}
        for i in _config_order(entries, names):
            d = entries[i]
            name, inbound = d["config"]["name"], d.get("inbound", [])
            layer = _deserialize_entry(d, i, custom_objects)
            if isinstance(layer, _IL):
                if inbound:
                    raise ConfigError(("layers", i, "inbound"), f"input layer {name!r} cannot be called on layers")
                tensors[name] = layer.output
                continue
            if not inbound:
                raise ConfigError(("layers", i, "inbound"), f"layer {name!r} is not called on any layer")
            ins = [tensors[n] for n in inbound]
            try:
                tensors[name] = layer(ins if len(ins) > 1 else ins[0])
            except (TypeError, ValueError) as e:
                raise ConfigError(("layers", i), f"layer {name!r} ({type(layer).__name__}) cannot be called on "
                                  f"{inbound}: {e}") from None
        for n in config["inputs"]:
            if not isinstance(tensors.get(n), KerasTensor) or not isinstance(tensors[n].node.layer, _IL):
                raise ConfigError("inputs", f"{n!r} is not an input layer")
        try:
            return cls([tensors[n] for n in config["inputs"]], [tensors[n] for n in config["outputs"]],
                       name=config.get("name"))
        except (TypeError, ValueError) as e:
            raise ConfigError((), f"model {config.get('name')!r}: {e}") from None

    def to_json(self):
        import json
        return json.dumps(self.get_config())

    def save(self, filepath, overwrite=True, zipped=None, **kwargs):
        """Save architecture, weights, compile settings and optimizer state to one file,
        as Keras: ``.keras`` is Keras 3's zip (``config.json``, ``metadata.json``,
        ``model.weights.h5``), ``.h5`` / ``.hdf5`` the legacy HDF5 file of tf.keras 2
        (``include_optimizer=`` as there); any other name convcore's own zip of JSON and
        .npy arrays. Loading any of them runs no code from the file. Written atomically."""
        from .. import saving
        saving.save_model(self, filepath, overwrite=overwrite, zipped=zipped, **kwargs)

    def save_weights(self, filepath, overwrite=True, max_shard_size=None):
        """Save the weights: ``.weights.h5`` in Keras 3's layout, ``.h5`` in the legacy
        layout (``layer_names`` / ``weight_names``), any other name an .npz (atomically)."""
        from .. import saving
        saving.save_weights(self, filepath, overwrite=overwrite, max_shard_size=max_shard_size)

    def load_weights(self, filepath, skip_mismatch=False, **kwargs):
        """Load weights from a file of :meth:`save_weights` or :meth:`save`, a Keras
        ``.weights.h5`` / ``.keras`` / legacy ``.h5`` (``by_name=True`` matches layers by
        name there), or a PyTorch ``.pth`` / ``.pt`` / ``.safetensors`` state dict. The
        model is either fully loaded or left unchanged."""
        from .. import saving
        saving.load_weights(self, filepath, skip_mismatch=skip_mismatch, **kwargs)

    def export(self, filepath, format=None, verbose=True, input_signature=None, **kwargs):
        """Export the inference graph: ``format="onnx"`` (the default for a ``.onnx``
        path) writes an ONNX model (the ``onnx`` package) that onnxruntime runs with the
        same outputs."""
        from ..export import export_model
        return export_model(self, filepath, format=format, verbose=verbose, input_signature=input_signature,
                            **kwargs)
