"""Translation between convcore's models and Keras 3's serialized form (``config.json``
of a ``.keras`` file, ``keras.saving.serialize_keras_object``), both directions.

convcore's layer configs already use Keras's keys; what differs is the wrapping:
Keras writes every object as ``{"module", "class_name", "config", "registered_name"}``
(initializers, regularizers, constraints, schedules, the ``DTypePolicy`` of ``dtype``),
adds a ``build_config`` to built layers, and describes a functional graph by each
layer's ``inbound_nodes`` (``{"args": [<__keras_tensor__ with keras_history [layer,
node index, tensor index]>], "kwargs": {}}``, one per call: shared layers and layers
called several times), ``input_layers`` and ``output_layers``. A ``Sequential`` lists
its ``InputLayer`` first.

The weights' order is Keras's too (:func:`keras_layer_weights`, :func:`keras_layer_paths`
and :func:`optimizer_variables_keras_order`): a layer's trainable variables then its
non-trainable ones, each in creation order; a functional model's layers in the order of
Keras's ``map_graph`` (decreasing depth, then first traversal from the outputs); the
optimizer's ``iterations``, ``learning_rate`` and its slots per Keras's ``build``.

A convcore layer with no Keras class is written with ``module: "convcore.layers"``: it
loads in convcore (by its registered class name), not in Keras. Nothing here runs code
from a config: a ``Lambda`` holding Python bytecode (Keras's ``__lambda__``) is refused
unless ``safe_mode=False``.
"""
from __future__ import annotations

import base64
import re

import numpy as np

from .config_errors import ConfigError, check_dict

#: Keras 3.15 layer classes convcore has under the same name (all of convcore's public
#: layers at the time of writing; a class missing here is written as convcore's own).
_KERAS_LAYERS = frozenset("""
Dense Activation Flatten Reshape Lambda Conv1D Conv2D Conv3D Conv1DTranspose Conv2DTranspose Conv3DTranspose
DepthwiseConv1D DepthwiseConv2D SeparableConv1D SeparableConv2D MaxPooling1D MaxPooling2D MaxPooling3D
AveragePooling1D AveragePooling2D AveragePooling3D GlobalAveragePooling1D GlobalAveragePooling2D
GlobalAveragePooling3D GlobalMaxPooling1D GlobalMaxPooling2D GlobalMaxPooling3D AdaptiveAveragePooling1D
AdaptiveAveragePooling2D AdaptiveAveragePooling3D AdaptiveMaxPooling1D AdaptiveMaxPooling2D AdaptiveMaxPooling3D
BatchNormalization LayerNormalization GroupNormalization RMSNormalization UnitNormalization Dropout AlphaDropout
SpatialDropout1D SpatialDropout2D SpatialDropout3D GaussianNoise GaussianDropout ActivityRegularization ReLU
LeakyReLU PReLU ELU Softmax Add Subtract Multiply Average Maximum Minimum Concatenate Dot ZeroPadding1D
ZeroPadding2D ZeroPadding3D Cropping1D Cropping2D Cropping3D UpSampling1D UpSampling2D UpSampling3D Permute
RepeatVector Identity Rescaling Resizing CenterCrop Normalization RandomCrop RandomFlip RandomTranslation
RandomRotation RandomZoom RandomContrast RandomBrightness InputLayer
""".split())

#: Keras variables a convcore layer does not have: written as these values, skipped when read.
_KERAS_EXTRA_VARIABLES = {"Normalization": [("count", (), "int64")]}

#: Keys of Keras's serialized objects that convcore's from_config does not take.
_WRAPPER_KEYS = ("module", "registered_name", "shared_object_id", "build_config", "compile_config")

_MODEL_CLASSES = ("Functional", "Model", "Sequential")

#: Keras layers whose config holds ``dtype`` as a plain name, not a DTypePolicy.
_PLAIN_DTYPE = frozenset({"SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"})

#: Keras layers whose config names the data format although convcore's do not.
_WITH_DATA_FORMAT = frozenset({"RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
                               "RandomBrightness", "RandomCrop"})

#: Keras-only config keys convcore's layers may not take, with the value they have when
#: they ask for nothing convcore does not do (dropped when the class does not take them).
_KERAS_DEFAULTS = {"data_format": ("channels_last", None), "quantization_config": (None,), "synchronized": (False,),
                   "renorm": (False,), "renorm_clipping": (None,), "renorm_momentum": (0.99,), "lora_rank": (None,),
                   "lora_alpha": (None,), "ragged": (False,), "optional": (False,)}

_UNSAFE_LAMBDA = ("Requested the deserialization of a `lambda` object (Python bytecode in the file). This carries "
                  "a potential risk of arbitrary code execution and thus it is disallowed by default. If you "
                  "trust the source of the saved model, you can pass `safe_mode=False` to the loading function "
                  "in order to allow `lambda` loading.")


def _snake(name):
    """Keras's ``naming.to_snake_case`` (the h5 path of a layer is its class's)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _policy(name):
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name}, "registered_name": None}


def keras_class_name(obj):
    """The class name Keras knows the layer or model by (a functional model is
    ``Functional``; aliases such as ``Convolution2D`` are the same class)."""
    from ..models import Model, Sequential
    if isinstance(obj, Sequential):
        return "Sequential"
    if isinstance(obj, Model) and type(obj).call is Model.call and obj._is_graph() and \
            type(obj).get_config is Model.get_config:
        return "Functional"
    from .object_registration import registered_name
    return registered_name(type(obj))


def _is_functional(model):
    from ..models import Model, Sequential
    return isinstance(model, Model) and not isinstance(model, Sequential) and model._is_graph() and \
        type(model).call is Model.call


# ---------------------------------------------------------------------- graph order
def keras_layer_order(model):
    """The layers of a functional model in the order of Keras's ``model.layers`` (its
    ``map_graph``: by decreasing depth, ties by first traversal from the outputs),
    input layers included. The h5 paths and the config's layer list follow it."""
    from ..layers.core import InputLayer
    node_ids = {id(n) for n in model._nodes}
    input_nodes = {id(t.node): t.node for t in model.inputs}
    in_graph = node_ids | set(input_nodes)
    order, finished, op_index = [], set(), {}

    def visit(tensor):
        # iterative DFS with Keras's visiting order (pre-order indices, post-order nodes)
        stack = [(tensor.node, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                if id(node) not in finished:
                    finished.add(id(node))
                    order.append(node)
                continue
            if id(node) in finished:
                continue
            op_index.setdefault(id(node.layer), len(op_index))
            stack.append((node, True))
            if not isinstance(node.layer, InputLayer):
                for t in reversed(node.inputs):
                    if id(t.node) not in finished:
                        stack.append((t.node, False))

    for t in model.outputs:
        visit(t)
    node_depth, layer_depth = {}, {}
    layers = {}
    for node in reversed(order):
        d = node_depth.setdefault(id(node), 0)
        d = max(d, layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = d
        layers[id(node.layer)] = node.layer
        node_depth[id(node)] = d
        if not isinstance(node.layer, InputLayer):
            for t in node.inputs:
                if id(t.node) in in_graph:
                    node_depth[id(t.node)] = max(d + 1, node_depth.get(id(t.node), 0))
    for t in model.inputs:  # inputs not connected to the outputs
        if id(t.node.layer) not in layer_depth:
            layer_depth[id(t.node.layer)] = 0
            op_index[id(t.node.layer)] = -1
            layers[id(t.node.layer)] = t.node.layer
    return sorted(layers.values(), key=lambda l: (-layer_depth[id(l)], op_index[id(l)]))


def _layer_nodes_in(model, layer):
    """The nodes of ``layer`` that belong to ``model``'s graph, in call order."""
    from ..layers.core import InputLayer
    if isinstance(layer, InputLayer):
        return list(layer._inbound_nodes[:1])
    ids = {id(n) for n in model._nodes}
    return [n for n in layer._inbound_nodes if id(n) in ids]


# ---------------------------------------------------------------------- to Keras
def _object_module(key, class_name):
    if key.endswith("initializer"):
        return "keras.initializers"
    if key.endswith("regularizer"):
        return "keras.regularizers"
    if key.endswith("constraint"):
        return "keras.constraints"
    if key == "learning_rate":
        return "keras.optimizers.schedules"
    return None


def _to_keras_value(key, value):
    """One value of a convcore config in Keras's form (nested objects wrapped)."""
    if isinstance(value, dict):
        if "class_name" in value and "config" in value and isinstance(value.get("config"), dict):
            out = {"module": value.get("module") or _object_module(key, value["class_name"]),
                   "class_name": value["class_name"],
                   "config": {k: _to_keras_value(k, v) for k, v in value["config"].items()},
                   "registered_name": value.get("registered_name")}
            return out
        return {k: _to_keras_value(k, v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_to_keras_value(key, v) for v in value]
    if isinstance(value, list):
        return [_to_keras_value(key, v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _function_config(fn):
    """A Lambda's function as Keras serializes it: a registered (or named) function by
    name, a ``lambda`` as Keras's ``__lambda__`` (its bytecode, marshalled and base64:
    what Keras writes; loading it needs ``safe_mode=False``)."""
    from .object_registration import registered_name
    name = getattr(fn, "__name__", None)
    if name == "<lambda>" and hasattr(fn, "__code__"):
        import marshal
        code = base64.encodebytes(marshal.dumps(fn.__code__)).decode("ascii")
        closure = fn.__closure__
        closure = None if closure is None else [c.cell_contents for c in closure]
        return {"class_name": "__lambda__", "config": {"code": code, "defaults": fn.__defaults__,
                                                        "closure": closure}}
    reg = getattr(fn, "_registered_name", None) or registered_name(fn)
    return {"module": getattr(fn, "__module__", None) or "builtins", "class_name": "function", "config": reg,
            "registered_name": "function"}


def _layer_config(layer):
    """``{"module", "class_name", "config", "registered_name"}`` of a layer (not a model)."""
    from ..layers import InputLayer, Lambda
    cls = keras_class_name(layer)
    cfg = layer.get_config()
    out = {}
    for k, v in cfg.items():
        if k == "dtype" and isinstance(v, str) and not isinstance(layer, InputLayer) and cls not in _PLAIN_DTYPE:
            out[k] = _policy(v)
        else:
            out[k] = _to_keras_value(k, v)
    if isinstance(layer, InputLayer):
        out.setdefault("ragged", False)
        out.setdefault("optional", False)
        order = ("batch_shape", "dtype", "sparse", "ragged", "name", "optional")
        out = {k: out[k] for k in order if k in out} | {k: v for k, v in out.items() if k not in order}
    if cls in _WITH_DATA_FORMAT:
        out.setdefault("data_format", "channels_last")
    if cls in ("LayerNormalization", "RMSNormalization") and isinstance(out.get("axis"), int):
        out["axis"] = [out["axis"]]  # Keras's built layer reports a list
    if isinstance(layer, Lambda):
        out["function"] = _function_config(layer.function)
        if out.get("output_shape") is None:
            out.pop("output_shape", None)
    registered = getattr(type(layer), "_registered_name", None)
    own = type(layer).__module__
    if cls in _KERAS_LAYERS and registered is None and own.startswith("convcore."):
        module = "keras.layers"
    else:  # a convcore-only layer: "convcore.layers"; a user's: its module
        module = "convcore.layers" if own.startswith("convcore.") else own
    return {"module": module, "class_name": cls, "config": out, "registered_name": registered}


def _build_config(layer):
    from ..layers import InputLayer
    if isinstance(layer, InputLayer):
        return None
    nodes = layer.__dict__.get("_inbound_nodes") or []
    if not nodes:
        return None
    n = nodes[0]
    shapes = [list(t.shape) for t in n.inputs]
    return {"input_shape": shapes if n.multi else (shapes[0] if shapes else None)}


def _tensor_ref(t, index_of):
    layer = t.node.layer
    return {"class_name": "__keras_tensor__",
            "config": {"shape": list(t.shape), "dtype": t.dtype or getattr(layer, "dtype", "float32"),
                       "keras_history": [layer.name, index_of(t.node), t.node.outputs.index(t)]}}


def to_keras_config(model):
    """Keras 3's serialized dict of a model or layer (``serialize_keras_object``): a
    ``Sequential`` with its ``InputLayer`` first, a functional model with Keras's
    ``inbound_nodes`` / ``input_layers`` / ``output_layers``, nested models the same
    way, every layer with ``module``, ``class_name``, ``config``, ``registered_name``
    and ``build_config``. A subclassed model is written with its ``get_config()`` and
    registered name (it loads where its class is registered, as in Keras)."""
    from ..layers import Layer
    from ..models import Model, Sequential
    if not isinstance(model, Layer):
        raise TypeError(f"to_keras_config: expected a convcore Model or Layer, received a {type(model).__name__}")
    if isinstance(model, Sequential):
        model._require_graph()
        inp = model.inputs[0].node.layer
        layers = [_layer_config(inp)] + [_entry(l) for l in model.layers]
        batch = list(model.inputs[0].shape)
        cfg = {"name": model.name, "trainable": model.trainable, "dtype": _policy(inp.dtype), "layers": layers,
               "build_input_shape": batch}
        return {"module": "keras", "class_name": "Sequential", "config": cfg, "registered_name": None,
                "build_config": {"input_shape": batch}}
    if _is_functional(model):
        order = keras_layer_order(model)
        entries = []
        for layer in order:
            nodes = _layer_nodes_in(model, layer)
            d = _entry(layer)
            d["name"] = layer.name
            d["inbound_nodes"] = [] if not nodes or not nodes[0].inputs else [
                _node_config(model, n) for n in nodes]
            entries.append(d)

        def ref(t):
            return [t.node.layer.name, _node_index(model, t.node), t.node.outputs.index(t)]
        ins = [ref(t) for t in model.inputs]
        outs = [ref(t) for t in model.outputs]
        cfg = {"name": model.name, "trainable": model.trainable, "layers": entries,
               "input_layers": ins[0] if len(ins) == 1 else ins, "output_layers": outs[0] if len(outs) == 1 else outs}
        return {"module": "keras.src.models.functional", "class_name": "Functional", "config": cfg,
                "registered_name": "Functional", "build_config": {"input_shape": None}}
    if isinstance(model, Model):
        from .object_registration import registered_name
        reg = registered_name(type(model))
        shape = model.__dict__.get("_build_input_shape")  # recorded by a first call, where the model does
        return {"module": type(model).__module__, "class_name": type(model).__name__,
                "config": {k: _to_keras_value(k, v) for k, v in model.get_config().items()},
                "registered_name": reg, "build_config": {"input_shape": None if shape is None else list(shape)}}
    return _entry(model)


def _entry(layer):
    """A layer or nested model as an entry of a model's ``layers``."""
    from ..models import Model
    if isinstance(layer, Model):
        return to_keras_config(layer)
    d = _layer_config(layer)
    b = _build_config(layer)
    if b is not None:
        d["build_config"] = b
    return d


def _node_index(model, node):
    """The index Keras's config gives a node of a layer: its place among the layer's
    calls in this model; a functional model counts its own construction node first
    (Keras 3 and tf.keras 2 alike)."""
    offset = 1 if _is_functional(node.layer) else 0
    nodes = _layer_nodes_in(model, node.layer)
    for i, n in enumerate(nodes):
        if n is node:
            return i + offset
    return offset


def _node_config(model, node):
    index_of = lambda n: _node_index(model, n)  # noqa: E731
    refs = [_tensor_ref(t, index_of) for t in node.inputs]
    kwargs = {k: _to_keras_value(k, v) for k, v in node.call_kwargs.items()}
    return {"args": [refs] if node.multi else refs, "kwargs": kwargs}


# ---------------------------------------------------------------------- from Keras
def _strip(value, safe_mode, key=None):
    """A Keras config value in convcore's form: wrapper keys dropped, a DTypePolicy by
    its name, Keras's function references by name, ``__lambda__`` refused in safe mode."""
    if isinstance(value, dict):
        cls = value.get("class_name")
        if cls in ("DTypePolicy", "FloatDTypePolicy") and isinstance(value.get("config"), dict):
            return value["config"].get("name")
        if cls == "__lambda__":
            return _load_lambda(value, safe_mode)
        if cls == "function" and "config" in value:
            return value["config"]
        if cls == "__tuple__" and isinstance(value.get("config"), dict):
            return [_strip(v, safe_mode) for v in value["config"].get("value", [])]
        if cls == "__numpy__" and isinstance(value.get("config"), dict):
            return value["config"].get("value")
        return {k: _strip(v, safe_mode, k) for k, v in value.items() if k not in _WRAPPER_KEYS}
    if isinstance(value, list):
        return [_strip(v, safe_mode, key) for v in value]
    return value


def _load_lambda(value, safe_mode):
    """A ``__lambda__`` function: refused in safe mode (Keras's message), else rebuilt
    from its marshalled bytecode with convcore's ``ops`` in its globals."""
    if safe_mode:
        raise ValueError(_UNSAFE_LAMBDA)
    import builtins
    import marshal
    import types

    from .. import backend, ops
    cfg = value.get("config") or {}
    code = cfg.get("code")
    if not isinstance(code, str):
        raise ConfigError("function", "a __lambda__ function needs its 'code' (base64 text)")
    try:
        raw = base64.decodebytes(code.encode("ascii"))
        code = marshal.loads(raw)
    except (ValueError, EOFError, TypeError) as e:
        raise ConfigError("function", f"the lambda's bytecode cannot be read: {e}") from None
    if not isinstance(code, types.CodeType):
        raise ConfigError("function", "the lambda's 'code' is not Python bytecode")
    import convcore
    globs = {"__builtins__": builtins, "ops": ops, "keras": convcore, "K": backend, "np": np}
    defaults = cfg.get("defaults")
    closure = cfg.get("closure")
    if closure is not None:
        closure = tuple(types.CellType(c) for c in closure)
    return types.FunctionType(code, globs, name=code.co_name, argdefs=tuple(defaults) if defaults else None,
                              closure=closure)


def _layer_class(d, custom_objects, where):
    """The convcore class of a layer entry, or a ConfigError naming the class and
    suggesting ``custom_objects``."""
    from ..layers import Layer
    from .object_registration import get_registered_object, is_private
    cls_name = d.get("class_name")
    if not isinstance(cls_name, str):
        raise ConfigError(where + ("class_name",), f"must be a layer class name, got {cls_name!r}")
    cls = None
    for n in (d.get("registered_name"), cls_name):
        if isinstance(n, str) and not is_private(n):
            cls = get_registered_object(n, custom_objects)
            if cls is not None:
                break
    if cls is None or not isinstance(cls, type) or not issubclass(cls, Layer):
        keras_own = isinstance(d.get("module"), str) and d["module"].startswith("keras")
        raise ConfigError(where + ("class_name",),
                          f"Unknown layer: '{cls_name}'"
                          + (" (a Keras layer convcore does not implement)" if keras_own else "")
                          + f". A layer of your own loads when it is registered with register_keras_serializable "
                          f"or passed in `custom_objects={{'{cls_name}': {cls_name}}}` when loading")
    return cls


def _check_classes(cfg, custom_objects, where=()):
    """Every layer class of a model config resolved before anything is built, so an
    unknown class is the error reported, whatever comes before it in the file."""
    stack = [(cfg, where)]
    while stack:
        d, w = stack.pop()
        c = d.get("config") if isinstance(d, dict) else None
        if not isinstance(c, dict) or not isinstance(c.get("layers"), list):
            continue
        for i, e in enumerate(c["layers"]):
            if not isinstance(e, dict):
                continue  # reported with its key when the layer is built
            if e.get("class_name") in _MODEL_CLASSES or (isinstance(e.get("config"), dict) and "layers" in e["config"]
                                                         and e.get("class_name") not in _KERAS_LAYERS):
                stack.append((e, w + ("config", "layers", i)))
            else:
                _layer_class(e, custom_objects, w + ("config", "layers", i))


def _deserialize_layer(d, custom_objects, safe_mode, where):
    """A convcore layer (or model) from one Keras layer entry."""
    from .object_registration import custom_object_scope
    check_dict(d, where, "a layer config (a dict with 'class_name' and 'config')")
    cls_name = d.get("class_name")
    if cls_name in _MODEL_CLASSES or (isinstance(d.get("config"), dict) and "layers" in d["config"] and
                                      cls_name not in _KERAS_LAYERS):
        try:
            return from_keras_config(d, custom_objects, safe_mode)
        except ConfigError as e:
            raise e.within(*where) from None
    cls = _layer_class(d, custom_objects, where)
    config = check_dict(d.get("config", {}), where + ("config",), "the layer's config (a dict)")
    try:
        cfg = _strip(config, safe_mode)
    except ConfigError as e:
        raise e.within(*where, "config") from None
    cfg = _drop_keras_only(cfg, cls)
    with custom_object_scope(custom_objects):
        try:
            if "custom_objects" in _from_config_params(cls):
                return cls.from_config(cfg, custom_objects=custom_objects)
            return cls.from_config(cfg)
        except ConfigError as e:
            raise e.within(*where, "config") from None
        except (TypeError, ValueError, OverflowError) as e:
            raise ConfigError(where + ("config",), f"{cls_name} {cfg.get('name')!r}: {e}") from None


def _accepted_keys(cls):
    """The keyword arguments the class's constructor takes (its own and, through
    ``**kwargs``, its bases' up to Layer's), or None when it takes any."""
    import inspect
    from ..layers import Layer
    keys = set()
    for c in cls.__mro__:
        init = c.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            return None
        keys |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return keys
        if c is Layer:
            return keys | {"batch_size", "batch_input_shape", "weights"}
    return None


def _drop_keras_only(cfg, cls):
    """``cfg`` without the Keras-only keys the class does not take, where they hold the
    value that asks for nothing more (``data_format='channels_last'``...); any other
    value stays, for the layer to refuse by name."""
    ok = _accepted_keys(cls)
    if ok is None:
        return cfg
    return {k: v for k, v in cfg.items() if k in ok or k not in _KERAS_DEFAULTS or v not in _KERAS_DEFAULTS[k]}


def _from_config_params(cls):
    import inspect
    try:
        return inspect.signature(cls.from_config).parameters
    except (TypeError, ValueError):
        return {}


def from_keras_config(cfg, custom_objects=None, safe_mode=True):
    """The convcore model (or layer) of a Keras 3 serialized dict: what ``config.json``
    of a ``.keras`` file holds, or the ``model_config`` of Keras 3's legacy ``.h5``
    (``inbound_nodes`` as Keras 3 or as tf.keras 2's ``[[name, node, tensor, kwargs]]``
    lists). Tolerant of missing ``module`` / ``registered_name`` / ``build_config``. An
    unknown class is a ValueError naming it and suggesting ``custom_objects``; a
    ``Lambda`` holding bytecode is refused unless ``safe_mode=False``. Problems are
    :class:`ConfigError` (a ValueError) naming the key."""
    check_dict(cfg, (), "a Keras model config (a dict with 'class_name' and 'config')")
    _check_classes(cfg, custom_objects)
    cls_name = cfg.get("class_name")
    config = cfg.get("config")
    if cls_name == "Sequential":
        return _sequential_from(check_dict(config, ("config",), "the model's config (a dict)"), custom_objects,
                                safe_mode)
    if cls_name in ("Functional", "Model") and isinstance(config, dict) and "layers" in config:
        return _functional_from(config, custom_objects, safe_mode)
    if isinstance(cls_name, str):
        from .object_registration import get_registered_object
        from ..models import Model
        cls = get_registered_object(cfg.get("registered_name") or cls_name, custom_objects) or \
            get_registered_object(cls_name, custom_objects)
        if isinstance(cls, type) and issubclass(cls, Model):
            c = _strip(check_dict(config or {}, ("config",), "the model's config (a dict)"), safe_mode)
            try:
                if isinstance(c, dict) and "layers" in c and "inputs" not in c:
                    return _functional_from(config, custom_objects, safe_mode, cls)
                m = cls.from_config(c)
                _build_subclassed(m, cfg.get("build_config"))
                return m
            except ConfigError:
                raise
            except (TypeError, ValueError) as e:
                raise ConfigError((), f"{cls_name}: {e}") from None
    return _deserialize_layer(cfg, custom_objects, safe_mode, ())


def _build_subclassed(model, build_config):
    """A subclassed model creates its weights on its first call: call it once on zeros
    of the ``build_config`` input shape (Keras's ``build_from_config``), so the file's
    weights have somewhere to go."""
    shape = build_config.get("input_shape") if isinstance(build_config, dict) else None
    if not isinstance(shape, list) or len(shape) < 2 or isinstance(shape[0], list):
        return
    if not all(isinstance(n, int) and 0 < n <= 1 << 16 for n in shape[1:]):
        raise ConfigError(("build_config", "input_shape"), f"must be a batch shape of sizes, got {shape!r}")
    dims = tuple(shape[1:])
    if int(np.prod(dims)) > 1 << 24:
        raise ConfigError(("build_config", "input_shape"), f"{shape!r} is too large a sample to build with")
    model(np.zeros((1,) + dims, dtype=np.float32))


def _sequential_from(config, custom_objects, safe_mode):
    from ..layers import Input, InputLayer
    from ..models import Sequential
    entries = config.get("layers", [])
    if not isinstance(entries, list):
        raise ConfigError(("config", "layers"), f"must be a list of layer configs, got {type(entries).__name__}")
    m = Sequential(name=config.get("name"))
    for i, d in enumerate(entries):
        layer = _deserialize_layer(d, custom_objects, safe_mode, ("config", "layers", i))
        if isinstance(layer, InputLayer):
            if m._input_tensor is None and not m._stack:
                m._append(layer)
            continue
        m._append(layer)
        try:
            m._call_pending()
        except (TypeError, ValueError) as e:
            raise ConfigError(("config", "layers", i), f"layer {layer.name!r} ({type(layer).__name__}) cannot take "
                              f"the output of the layers before it: {e}") from None
    if m._input_tensor is None:
        shape = config.get("build_input_shape")
        if isinstance(shape, list) and len(shape) >= 2:
            try:
                m._append(Input(tuple(shape[1:])))
            except (TypeError, ValueError) as e:
                raise ConfigError(("config", "build_input_shape"), str(e)) from None
    m._connect()
    if config.get("trainable") is False:
        m.trainable = False
    return m


def _history(ref, where):
    """``(layer name, node index, tensor index)`` of a ``__keras_tensor__`` or a tf.keras
    2 ``[name, node, tensor, kwargs]`` list."""
    if isinstance(ref, dict) and ref.get("class_name") == "__keras_tensor__":
        h = (ref.get("config") or {}).get("keras_history")
    else:
        h = ref
    if not isinstance(h, (list, tuple)) or len(h) < 3 or not isinstance(h[0], str) or \
            not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in h[1:3]):
        raise ConfigError(where, f"must be a tensor reference [layer name, node index, tensor index], got {h!r}")
    return h[0], h[1], h[2]


def _node_inputs(node, where):
    """The input references and call kwargs of one inbound node (Keras 3's dict, or
    tf.keras 2's list of ``[name, node, tensor, kwargs]``)."""
    if isinstance(node, dict):
        args = node.get("args", [])
        kwargs = node.get("kwargs") or {}
        if not isinstance(args, list) or not args:
            raise ConfigError(where + ("args",), f"must be a non-empty list, got {args!r}")
        first = args[0]
        if isinstance(first, list) and first and not isinstance(first[0], str):
            return [_history(r, where + ("args", 0, j)) for j, r in enumerate(first)], True, kwargs
        return [_history(first, where + ("args", 0))], False, kwargs
    if isinstance(node, list) and node:
        refs = [_history(r, where + (j,)) for j, r in enumerate(node)]
        kwargs = node[0][3] if isinstance(node[0], list) and len(node[0]) > 3 and isinstance(node[0][3], dict) else {}
        return refs, len(refs) > 1, kwargs
    raise ConfigError(where, f"must be an inbound node (a dict with 'args'), got {node!r}")


def _ends(value, where):
    if isinstance(value, list) and len(value) >= 3 and isinstance(value[0], str):
        return [_history(value, where)]
    if isinstance(value, dict):
        return [_history(v, where + (k,)) for k, v in value.items()]
    if not isinstance(value, list) or not value:
        raise ConfigError(where, f"must be a tensor reference or a list of them, got {value!r}")
    return [_history(v, where + (i,)) for i, v in enumerate(value)]


def _functional_from(config, custom_objects, safe_mode, cls=None):
    from ..layers import InputLayer
    from ..models import Model
    entries = config.get("layers")
    if not isinstance(entries, list):
        raise ConfigError(("config", "layers"), f"must be a list of layer configs, got {type(entries).__name__}")
    layers, pending, names = [], [], {}
    for i, d in enumerate(entries):
        where = ("config", "layers", i)
        check_dict(d, where, "a layer config (a dict)")
        layer = _deserialize_layer(d, custom_objects, safe_mode, where)
        name = d.get("name") or layer.name
        if name in names:
            raise ConfigError(where + ("name",), f"two layers are named {name!r}")
        names[name] = i
        nodes = d.get("inbound_nodes", [])
        if not isinstance(nodes, list):
            raise ConfigError(where + ("inbound_nodes",), f"must be a list, got {nodes!r}")
        layers.append((name, layer))
        pending.append([(_node_inputs(n, where + ("inbound_nodes", k))) for k, n in enumerate(nodes)])
    tensors = {}
    done = [0] * len(layers)
    for i, (name, layer) in enumerate(layers):
        if isinstance(layer, InputLayer):
            tensors[(name, 0, 0)] = layer.output
            done[i] = len(pending[i])
            pending[i] = []
    remaining = sum(len(p) for p in pending)
    while remaining:
        progress = False
        for i, (name, layer) in enumerate(layers):
            while pending[i]:
                refs, multi, kwargs = pending[i][0]
                for r in refs:
                    if r[0] not in names:
                        raise ConfigError(("config", "layers", i, "inbound_nodes"),
                                          f"layer {name!r} is called on unknown layer {r[0]!r}")
                if not all(r in tensors for r in refs):
                    break
                ins = [tensors[r] for r in refs]
                kw = {k: v for k, v in (kwargs or {}).items() if k != "mask" and v is not None}
                try:
                    out = layer(ins if multi else ins[0], **kw)
                except (TypeError, ValueError) as e:
                    raise ConfigError(("config", "layers", i), f"layer {name!r} ({type(layer).__name__}) cannot be "
                                      f"called on {[r[0] for r in refs]}: {e}") from None
                outs = out if isinstance(out, (list, tuple)) else [out]
                offset = 1 if _is_functional(layer) else 0  # Keras: a functional model's own node is 0
                for j, t in enumerate(outs):
                    tensors[(name, done[i] + offset, j)] = t
                done[i] += 1
                pending[i].pop(0)
                remaining -= 1
                progress = True
        if not progress:
            stuck = next(name for (name, _), p in zip(layers, pending) if p)
            raise ConfigError(("config", "layers", names[stuck], "inbound_nodes"),
                              f"layer {stuck!r} is called on tensors no layer produces (or the layers form a cycle)")
    ins = _ends(config.get("input_layers"), ("config", "input_layers"))
    outs = _ends(config.get("output_layers"), ("config", "output_layers"))
    for key, refs in (("input_layers", ins), ("output_layers", outs)):
        for r in refs:
            if r not in tensors:
                raise ConfigError(("config", key), f"names tensor {list(r)!r}, which no layer produces")
    try:
        m = (cls or Model)([tensors[r] for r in ins], [tensors[r] for r in outs], name=config.get("name"))
    except (TypeError, ValueError) as e:
        raise ConfigError(("config",), f"model {config.get('name')!r}: {e}") from None
    if config.get("trainable") is False:
        m.trainable = False
    return m


# ---------------------------------------------------------------------- weights in Keras's order
def keras_layer_weights(layer):
    """The variables a layer keeps itself, in Keras's order for its ``vars/<i>``:
    trainable ones then non-trainable ones, each in creation order (the variables of
    layers inside it are under their own paths)."""
    own = list(layer._variables)
    return [v for v in own if v.trainable] + [v for v in own if not v.trainable]


def _unique(base, used):
    """Keras's ``_get_unique_name``: ``dense``, ``dense_1``, ..."""
    if base in used:
        used[base] += 1
        return f"{base}_{used[base]}"
    used[base] = 0
    return base


def _children(obj):
    """``[(attribute name, layer or list of layers)]`` Keras's ``_walk_saveable`` visits
    below ``obj``, in its order: a Sequential's or functional model's ``layers`` first;
    for any other layer or model its public attributes holding layers, sorted by name
    (a subclassed model's ``layers`` among them, at its place in the order, catching the
    layers kept in private attributes)."""
    from ..layers import Layer
    from ..models import Model, Sequential
    if isinstance(obj, Sequential):
        return [("layers", list(obj.layers))]
    if _is_functional(obj):
        return [("layers", keras_layer_order(obj))]
    found = {}
    for name, value in vars(obj).items():
        if name.startswith("_"):
            continue
        if isinstance(value, Layer) and value is not obj:
            found[name] = value
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Layer) for v in value):
            found[name] = list(value)
        elif isinstance(value, dict) and value and all(isinstance(v, Layer) for v in value.values()):
            found[name] = list(value.values())
    if isinstance(obj, Model):
        found["layers"] = list(obj._sublayers())
    return sorted(found.items())


def keras_layer_paths(model, prefix=""):
    """``[(h5 path of a vars group, layer or model, its own variables)]`` in Keras 3's
    layout (``_save_state``): the object's ``vars``, then its children: a functional
    model's or Sequential's ``layers/<snake_case class name>[_n]`` (nested models below
    their own path), a subclassed model's or layer's attributes by name (``conv/vars``,
    a list as ``blocks/dense``, ``blocks/dense_1``). A layer met twice is saved once,
    where it is met first, as Keras does."""
    from ..layers import Layer
    out, visited = [], set()

    def walk(obj, path):
        if id(obj) in visited:
            return
        visited.add(id(obj))
        out.append((path + "vars", obj, keras_layer_weights(obj)))
        for name, value in _children(obj):
            if isinstance(value, Layer):
                walk(value, f"{path}{name}/")
                continue
            used = {}
            for v in value:
                walk(v, f"{path}{name}/{_unique(_snake(keras_class_name(v)), used)}/")

    walk(model, prefix)
    return out


def _keras_variables(obj, seen):
    """Every variable in the order of Keras's ``obj.variables``: its own (trainable
    first), then those of the layers it tracks (a functional model: its layers)."""
    from ..models import Sequential
    out = [v for v in keras_layer_weights(obj) if id(v) not in seen]
    seen.update(id(v) for v in out)
    if isinstance(obj, Sequential):
        subs = list(obj.layers)
    elif _is_functional(obj):
        subs = keras_layer_order(obj)
    else:
        subs = list(obj._sublayers())
    for sub in subs:
        out.extend(_keras_variables(sub, seen))
    return out


def extra_keras_variables(layer):
    """``[(name, shape, dtype)]`` of the variables Keras's class of ``layer`` has after
    convcore's (Normalization's ``count``)."""
    from ..models import Model
    if isinstance(layer, Model) or not layer._variables:  # Normalization(mean=, variance=): none in Keras either
        return []
    return list(_KERAS_EXTRA_VARIABLES.get(keras_class_name(layer), []))


def keras_trainable_variables(model):
    """The trainable variables in the order Keras's ``model.trainable_variables`` has
    them (the order its optimizer builds its state in)."""
    tw = {id(v) for v in model.trainable_weights}
    return [v for v in _keras_variables(model, set()) if id(v) in tw]


#: For each optimizer: groups of convcore slot indices (into ``_slot_spec``) in
#: Keras's ``build`` order. A group of several is interleaved per variable (Keras's
#: ``add_optimizer_variables`` with a list of names), groups follow each other.
_SLOT_GROUPS = {
    "SGD": [(0,)], "Adam": [(0, 1), (2,)], "AdamW": [(0, 1), (2,)], "RMSprop": [(0,), (2,), (1,)],
    "Adagrad": [(0,)], "Adadelta": [(0, 1)], "Adamax": [(0, 1)], "Nadam": [(0, 1)], "Lion": [(0,)],
}


def optimizer_variables_keras_order(model, optimizer=None, built=None):
    """The optimizer's state as Keras 3 saves it under ``optimizer/vars/<i>``: a list of
    entries ``(kind, target, shape, dtype)`` where kind is ``"iterations"``,
    ``"learning_rate"``, ``"slot"`` (target: ``(variable, slot index)``),
    ``"accumulator"`` (target: the variable) or ``"u_product"`` (Nadam). An optimizer
    that has not stepped yet has only iterations and the learning rate, as Keras's
    unbuilt optimizer. A class Keras does not have gives None."""
    from ..optimizers.schedules import LearningRateSchedule
    opt = optimizer if optimizer is not None else model.optimizer
    name = type(opt).__name__
    if name not in _SLOT_GROUPS:
        return None
    out = [("iterations", None, (), "int64")]
    lr = opt._learning_rate
    if not isinstance(lr, LearningRateSchedule) and not callable(lr):
        out.append(("learning_rate", None, (), "float32"))
    if built is None:
        built = bool(opt._slots) or opt._iterations > 0
    if not built:
        return out
    variables = keras_trainable_variables(model)
    if opt.gradient_accumulation_steps:
        out += [("accumulator", v, tuple(v.shape), v.dtype) for v in variables]
    spec = opt._slot_spec()
    for group in _SLOT_GROUPS[name]:
        group = [i for i in group if spec[i] is not None]
        if not group:
            continue
        for v in variables:
            for i in group:
                out.append(("slot", (v, i), tuple(v.shape), v.dtype))
    if name == "Nadam":
        out.append(("u_product", None, (), variables[0].dtype if variables else "float32"))
    return out


def optimizer_values(opt, entries):
    """The arrays of ``optimizer_variables_keras_order`` entries (state made where the
    optimizer has none yet: its initial values)."""
    vals = []
    for kind, target, shape, dtype in entries:
        if kind == "iterations":
            vals.append(np.asarray(opt._iterations, dtype=np.int64))
        elif kind == "learning_rate":
            vals.append(np.asarray(opt._current_learning_rate(), dtype=np.float32))
        elif kind == "u_product":
            u = getattr(opt, "_u_product", None)
            vals.append(np.asarray(1.0 if u is None else u, dtype=dtype))
        elif kind == "accumulator":
            acc = opt._accumulators.get(id(target))
            vals.append(acc[1].numpy() if acc is not None and acc[0] is target else np.zeros(shape, dtype))
        else:
            v, i = target
            vals.append(opt._slots_of(v)[i].numpy())
    return vals


def assign_optimizer_values(model, opt, entries, arrays):
    """Put arrays read from a file into the optimizer (shapes already checked)."""
    if any(k == "slot" for k, *_ in entries) and not opt.built:
        opt.build(model.trainable_weights)
    for (kind, target, shape, dtype), a in zip(entries, arrays):
        if kind == "iterations":
            opt._iterations = int(a)
        elif kind == "learning_rate":
            from ..optimizers.schedules import LearningRateSchedule
            if not isinstance(opt._learning_rate, LearningRateSchedule) and not callable(opt._learning_rate):
                opt._learning_rate = float(a)
        elif kind == "u_product":
            opt._u_product = np.dtype(dtype).type(a)
        elif kind == "accumulator":
            opt._accumulator(target).assign(np.asarray(a, dtype=target.dtype))
        else:
            v, i = target
            opt._slots_of(v)[i].assign(np.asarray(a, dtype=v.dtype))


# ---------------------------------------------------------------------- compile settings
def _loss_entry(x):
    from .object_registration import registered_name
    if x is None or isinstance(x, str):
        return x
    if callable(x) and not hasattr(x, "get_config"):
        return _function_config(x)["config"]
    cfg = x.get_config() if hasattr(x, "get_config") else {}
    return {"module": "keras.losses", "class_name": type(x).__name__, "config": _to_keras_value("", cfg),
            "registered_name": getattr(type(x), "_registered_name", None) or (
                None if type(x).__module__.startswith("convcore") else registered_name(type(x)))}


def _metric_entry(m):
    if m is None or isinstance(m, str):
        return m
    if isinstance(m, (list, tuple)):
        return [_metric_entry(v) for v in m]
    if isinstance(m, dict):
        return {k: _metric_entry(v) for k, v in m.items()}
    if callable(m) and not hasattr(m, "get_config"):
        return _function_config(m)["config"]
    from .. import metrics as metrics_mod
    d = metrics_mod.serialize(m)
    return _to_keras_value("", d) if isinstance(d, dict) else d


def _structure(v, entry):
    if v is None:
        return None
    if isinstance(v, dict):
        return {str(k): entry(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [entry(x) for x in v]
    return entry(v)


def keras_compile_config(model):
    """Keras 3's ``compile_config`` of a compiled model (None if not compiled): the
    optimizer serialized as Keras does, loss / metrics as given to ``compile`` (names
    stay names, objects are serialized)."""
    if not getattr(model, "_compiled", False):
        return None
    from .. import optimizers
    args = getattr(model, "_compile_args", None) or {"loss": model.loss}
    opt = optimizers.serialize(model.optimizer)
    opt = _to_keras_value("", opt)
    opt["config"] = {**opt["config"], "name": model.optimizer.name}
    lw = args.get("loss_weights")
    return {"optimizer": opt, "loss": _structure(args.get("loss"), _loss_entry),
            "loss_weights": dict(lw) if isinstance(lw, dict) else list(lw) if isinstance(lw, (list, tuple)) else lw,
            "metrics": _metric_entry(args.get("metrics")),
            "weighted_metrics": _metric_entry(args.get("weighted_metrics")), "run_eagerly": False,
            "steps_per_execution": 1, "jit_compile": False}


def compile_from_keras(compile_cfg, custom_objects=None):
    """The ``compile()`` keyword arguments of a Keras ``compile_config`` (ConfigErrors
    keyed inside it). Keras-only settings (``run_eagerly``, ``jit_compile``,
    ``steps_per_execution``) are dropped: convcore always runs eagerly."""
    from .saving_lib import _compile_args
    check_dict(compile_cfg, (), "the compile settings (a dict)")
    c = {k: _strip(v, True, k) for k, v in compile_cfg.items()
         if k in ("optimizer", "loss", "loss_weights", "metrics", "weighted_metrics")}
    if isinstance(c.get("optimizer"), str):
        from .. import optimizers
        try:
            opt = optimizers.get(c["optimizer"])
        except ValueError as e:
            raise ConfigError("optimizer", str(e)) from None
        c["optimizer"] = {"class_name": type(opt).__name__, "config": opt.get_config() | {"name": opt.name}}
    if isinstance(c.get("optimizer"), dict) and isinstance(c["optimizer"].get("config"), dict):
        oc = dict(c["optimizer"]["config"])
        oc.pop("is_legacy_optimizer", None)
        for k in ("decay",):
            if oc.get(k) in (None, 0, 0.0):
                oc.pop(k, None)
        c["optimizer"] = {**c["optimizer"], "config": oc}
    c.setdefault("loss", None)
    if "optimizer" not in c:
        c["optimizer"] = {"class_name": "RMSprop", "config": {}}
    return _compile_args(c, custom_objects)
