"""tf.keras 2.x (and Keras 1) model configs rewritten into Keras 3's form.

A legacy ``.h5`` file written by tf.keras 2 holds its architecture in the root attribute
``model_config``: JSON in Keras 2's form. :func:`keras2_to_keras3` rewrites such a
config into the Keras 3 form that ``keras_config.from_keras_config`` (and real Keras 3's
``Model.from_config``) reads; :func:`keras2_training_config` does the same for the
``training_config`` attribute (the compile settings). Both are pure dict rewrites: no
class is looked up and nothing is imported or run, so an unknown layer is left for the
loader to refuse by name.

What changes (the list of Keras 3's own legacy loader, ``keras/src/legacy/saving``,
plus the renames of Keras 1):

- class aliases: ``Convolution2D`` -> ``Conv2D``, ``Deconvolution2D`` -> ``Conv2DTranspose``,
  ``MaxPool2D`` -> ``MaxPooling2D``, ``AvgPool2D`` -> ``AveragePooling2D``,
  ``GlobalMaxPool2D`` -> ``GlobalMaxPooling2D`` ... (1D/2D/3D), ``Model`` -> ``Functional``;
- ``batch_input_shape``: an InputLayer's becomes ``batch_shape``; on the first layer of a
  Sequential without an InputLayer (Keras 2.2), an InputLayer is put before it (so is one
  for Keras 1's ``input_dim``); elsewhere it is dropped (Keras 3 has no such argument);
- Keras 2 ``inbound_nodes`` (``[[[layer, node, tensor, kwargs], ...]]``) become Keras 3's
  ``[{"args": [...], "kwargs": {...}}]`` of ``__keras_tensor__`` references; their
  ``shape`` is ``None`` (the file does not say it; readers rebuild the tensors from
  ``keras_history``); ``input_layers`` / ``output_layers`` of one tensor are unwrapped as
  Keras 3 writes them;
- initializer, regularizer and constraint configs get Keras 3's ``module`` (and
  VarianceScaling's ``distribution="normal"`` of Keras 2.0 is ``"truncated_normal"``);
  a mixed-precision ``Policy`` dtype becomes a ``DTypePolicy`` config;
- arguments Keras 3 renamed or dropped: Keras 1's ``output_dim``, ``init``,
  ``W_regularizer``, ``nb_filter`` / ``nb_row`` / ``nb_col``, ``border_mode``, ``subsample``,
  ``atrous_rate``, ``dim_ordering``, Dropout's ``p``, LeakyReLU's ``alpha``;
  BatchNormalization's one-element ``axis`` list, ``fused``, ``virtual_batch_size`` and
  ``adjustment`` (when unused); DepthwiseConv / SeparableConv's ``groups=1``; Lambda's ``function_type`` / ``module`` / ``output_shape_*``
  (its marshalled ``function`` list becomes Keras 3's ``__lambda__`` config, which a loader
  refuses under ``safe_mode=True``);
- Keras 2.0's Sequential config that is a bare list of layers.

Configs already in Keras 3's form pass through unchanged (the function is idempotent),
so a loader can apply it to every legacy file. Configs of Keras 1 with
``dim_ordering="th"`` (channels-first kernels) are refused: convcore is channels-last.
"""
from __future__ import annotations

import copy

__all__ = ["keras2_to_keras3", "keras2_training_config", "is_keras2_config"]

_CLASS_ALIASES = {
    "Convolution1D": "Conv1D", "Convolution2D": "Conv2D", "Convolution3D": "Conv3D",
    "AtrousConvolution1D": "Conv1D", "AtrousConvolution2D": "Conv2D",
    "Deconvolution2D": "Conv2DTranspose", "Deconvolution3D": "Conv3DTranspose",
    "Convolution2DTranspose": "Conv2DTranspose", "Convolution3DTranspose": "Conv3DTranspose",
    "Convolution1DTranspose": "Conv1DTranspose",
    "SeparableConvolution1D": "SeparableConv1D", "SeparableConvolution2D": "SeparableConv2D",
    "MaxPool1D": "MaxPooling1D", "MaxPool2D": "MaxPooling2D", "MaxPool3D": "MaxPooling3D",
    "AvgPool1D": "AveragePooling1D", "AvgPool2D": "AveragePooling2D", "AvgPool3D": "AveragePooling3D",
    "GlobalMaxPool1D": "GlobalMaxPooling1D", "GlobalMaxPool2D": "GlobalMaxPooling2D",
    "GlobalMaxPool3D": "GlobalMaxPooling3D",
    "GlobalAvgPool1D": "GlobalAveragePooling1D", "GlobalAvgPool2D": "GlobalAveragePooling2D",
    "GlobalAvgPool3D": "GlobalAveragePooling3D",
    "BatchNormalizationV1": "BatchNormalization", "BatchNormalizationV2": "BatchNormalization",
    "Model": "Functional",
}

#: tf.keras 2 layers that wrap a TensorFlow function: no Keras 3 (or convcore) class.
_TF_ONLY = {"TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer", "ClassMethod", "InstanceMethod",
            "InstanceProperty", "KerasOpDispatcher"}

_MODELS = ("Sequential", "Functional")

# Keras 1 argument names (the Keras 2 name each became).
_KERAS1_RENAMES = {
    "output_dim": "units", "init": "kernel_initializer", "W_regularizer": "kernel_regularizer",
    "b_regularizer": "bias_regularizer", "W_constraint": "kernel_constraint", "b_constraint": "bias_constraint",
    "bias": "use_bias", "nb_filter": "filters", "border_mode": "padding", "subsample": "strides",
    "atrous_rate": "dilation_rate", "subsample_length": "strides", "filter_length": "kernel_size",
    "input_dtype": "dtype", "depth_multiplier": "depth_multiplier", "depthwise_initializer": "depthwise_initializer",
}

_OBJECT_MODULES = (("_initializer", "keras.initializers"), ("_regularizer", "keras.regularizers"),
                   ("_constraint", "keras.constraints"))

_LAMBDA_DROPPED = ("module", "function_type", "output_shape_type", "output_shape_module")


def _fail(where, message):
    return ValueError(f"Keras 2 model config, {where}: {message}")


def is_keras2_config(cfg):
    """Whether the model config ``cfg`` (a ``{"class_name", "config"}`` dict) shows any of
    Keras 2's (or Keras 1's) forms :func:`keras2_to_keras3` rewrites."""
    if not isinstance(cfg, dict):
        return False
    return keras2_to_keras3(cfg) != cfg


def keras2_to_keras3(model_config_dict):
    """The tf.keras 2.x model config ``model_config_dict`` (``{"class_name": ...,
    "config": ...}``, as in an ``.h5`` file's ``model_config`` attribute) rewritten into
    Keras 3's form (a new dict; the argument is not changed). A config in Keras 3's form
    comes back equal. Raises ValueError for a config that is not a dict with
    ``class_name`` and ``config``, and for one of Keras 1's channels-first layers."""
    if not isinstance(model_config_dict, dict) or "class_name" not in model_config_dict:
        raise ValueError("keras2_to_keras3 expects a model config: a dict with 'class_name' and 'config', got "
                         f"{type(model_config_dict).__name__}")
    return _layer_entry(copy.deepcopy(model_config_dict), "model")


# ---------------------------------------------------------------------- layers
def _layer_entry(entry, where):
    """One serialized layer (or model) ``{"class_name", "config", ...}``, rewritten in place."""
    if not isinstance(entry, dict):
        return entry
    cls = entry.get("class_name")
    if not isinstance(cls, str):
        return entry
    cls = _CLASS_ALIASES.get(cls, cls)
    if cls in _TF_ONLY:
        raise _fail(where, f"layer class {cls!r} (a TensorFlow function called on a Keras tensor in tf.keras 2) "
                           "has no Keras 3 equivalent; rebuild that part of the model with Keras layers")
    config = entry.get("config")
    if cls == "Sequential" and isinstance(config, list):  # Keras 2.0: the layers themselves
        config = {"name": "sequential", "layers": config}
    if cls == "Functional" and isinstance(config, dict) and "layers" not in config:
        cls = "Model"  # a subclassed model's own config: not a graph (Keras 3 keeps the name)
    entry["class_name"] = cls
    if not isinstance(config, dict):
        return entry
    entry["config"] = config
    name = config.get("name", where)
    if cls == "Sequential":
        _sequential(config, f"{where} ({name})")
    elif cls == "Functional":
        _functional(config, f"{where} ({name})")
    else:
        _layer_config(cls, config, f"layer {name!r}")
    if "inbound_nodes" in entry:
        entry["inbound_nodes"] = _inbound_nodes(entry["inbound_nodes"], f"layer {name!r}")
    return entry


def _input_layer(batch_shape, dtype, name):
    return {"class_name": "InputLayer",
            "config": {"batch_shape": list(batch_shape), "dtype": dtype or "float32", "sparse": False,
                       "name": name}}


def _sequential(config, where):
    layers = config.get("layers")
    if not isinstance(layers, list):
        return
    first = layers[0] if layers and isinstance(layers[0], dict) else None
    if first is not None and first.get("class_name") != "InputLayer" and isinstance(first.get("config"), dict):
        c = first["config"]
        shape = c.get("batch_input_shape")
        if shape is None and isinstance(c.get("input_dim"), int):  # Keras 1: Dense(input_dim=...)
            shape = [None, c["input_dim"]]
        if shape is None and isinstance(c.get("input_shape"), list):  # Keras 1
            shape = [None] + c["input_shape"]
        if isinstance(shape, list):
            dtype = c.get("dtype") if isinstance(c.get("dtype"), str) else None
            layers.insert(0, _input_layer(shape, dtype, f"{c.get('name', 'layer')}_input"))
    config["layers"] = [_layer_entry(l, f"{where} layers[{i}]") for i, l in enumerate(layers)]


def _functional(config, where):
    layers = config.get("layers")
    if isinstance(layers, list):
        config["layers"] = [_layer_entry(l, f"{where} layers[{i}]") for i, l in enumerate(layers)]
    for key in ("input_layers", "output_layers"):
        v = config.get(key)
        if (isinstance(v, list) and len(v) == 1 and isinstance(v[0], list) and len(v[0]) == 3
                and isinstance(v[0][0], str)):
            config[key] = v[0]  # one tensor: Keras 3 writes [name, node, tensor]


def _keras_tensor(history, where):
    if (not isinstance(history, list) or len(history) not in (3, 4) or not isinstance(history[0], str)
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in history[1:3])):
        raise _fail(where, f"an inbound node entry must be [layer name, node index, tensor index(, kwargs)], got "
                           f"{history!r}")
    return {"class_name": "__keras_tensor__",
            "config": {"shape": None, "dtype": None, "keras_history": [history[0], history[1], history[2]]}}


def _inbound_nodes(nodes, where):
    """Keras 2's nodes (each a list of [layer, node, tensor, kwargs]) as Keras 3's."""
    if not isinstance(nodes, list):
        return nodes
    out = []
    for node in nodes:
        if not isinstance(node, list):  # Keras 3's {"args", "kwargs"} already
            out.append(node)
            continue
        if not node:
            continue
        tensors = [_keras_tensor(h, where) for h in node]
        kwargs = {}
        last = node[-1]
        if len(last) == 4:
            if not isinstance(last[3], dict):
                raise _fail(where, f"the call arguments of an inbound node must be a dict, got {last[3]!r}")
            kwargs = last[3]
        out.append({"args": [tensors[0] if len(tensors) == 1 else tensors], "kwargs": kwargs})
    return out


def _dtype(d):
    """A Keras 2 mixed-precision ``Policy`` config as Keras 3's DTypePolicy config."""
    if isinstance(d, dict) and d.get("class_name") in ("Policy", "PolicyV1") and "module" not in d:
        name = (d.get("config") or {}).get("name")
        return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": name}, "registered_name": None}
    return d


def _object(d, module):
    """A nested initializer / regularizer / constraint config with Keras 3's ``module``."""
    if not isinstance(d, dict) or not isinstance(d.get("class_name"), str):
        return d
    d = dict(d)
    if "module" not in d:
        d["module"] = module
        d.setdefault("registered_name", None)
    c = d.get("config")
    if d["class_name"] == "VarianceScaling" and isinstance(c, dict) and c.get("distribution") == "normal":
        d["config"] = {**c, "distribution": "truncated_normal"}  # Keras 2.0's name of the same draw
    return d


def _layer_config(cls, c, where):
    if c.get("dim_ordering") == "th" or c.get("data_format") == "channels_first":
        raise _fail(where, f"{cls} is channels-first (dim_ordering='th' / data_format='channels_first'); convcore "
                           "is channels-last only")
    for old, new in _KERAS1_RENAMES.items():
        if old in c and old != new and new not in c:
            c[new] = c.pop(old)
    c.pop("dim_ordering", None)
    if "nb_row" in c and "nb_col" in c:  # Keras 1 Convolution2D
        c["kernel_size"] = [c.pop("nb_row"), c.pop("nb_col")]
    if cls == "Dropout" and "p" in c and "rate" not in c:
        c["rate"] = c.pop("p")
    if cls == "LeakyReLU" and "alpha" in c:
        c.setdefault("negative_slope", c.pop("alpha"))
        c.pop("alpha", None)
    if cls == "InputLayer":
        if "batch_input_shape" in c:
            c.setdefault("batch_shape", c.pop("batch_input_shape"))
            c.pop("batch_input_shape", None)
        c.pop("input_shape", None)
    else:
        c.pop("batch_input_shape", None)
        if "input_dim" in c and not isinstance(c.get("input_dim"), bool):
            c.pop("input_dim")  # Sequential put an InputLayer before the layer
    if cls == "BatchNormalization":
        axis = c.get("axis")
        if isinstance(axis, list) and len(axis) == 1:
            c["axis"] = int(axis[0])
        for key in ("fused", "virtual_batch_size", "adjustment"):
            if key in c and c[key] not in (None, False) and key != "fused":
                raise _fail(where, f"BatchNormalization's {key}={c[key]!r} has no Keras 3 equivalent")
            c.pop(key, None)
    if cls.startswith(("DepthwiseConv", "SeparableConv")) and c.get("groups") in (1, None):
        c.pop("groups", None)  # tf.keras 2 inherits it from Conv; Keras 3 has no such argument there
    if cls == "Lambda":
        for key in _LAMBDA_DROPPED:
            c.pop(key, None)
        f = c.get("function")
        if isinstance(f, list) and len(f) == 3:  # [marshalled code, defaults, closure]
            c["function"] = {"class_name": "__lambda__",
                             "config": {"code": f[0], "defaults": f[1], "closure": f[2]}}
    if "dtype" in c:
        c["dtype"] = _dtype(c["dtype"])
    for key in list(c):
        for suffix, module in _OBJECT_MODULES:
            if key.endswith(suffix):
                c[key] = _object(c[key], module)
    if cls in ("Bidirectional", "TimeDistributed", "Wrapper") and isinstance(c.get("layer"), dict):
        c["layer"] = _layer_entry(c["layer"], where)


# ---------------------------------------------------------------------- compile settings
_OPTIMIZER_DROPPED = ("is_legacy_optimizer", "jit_compile")


def _optimizer(cfg):
    """A Keras 2 optimizer config ({"class_name": "Adam", "config": {"lr": ...}}) in
    Keras 3's form."""
    if not isinstance(cfg, dict):
        return cfg
    cls = cfg.get("class_name")
    if isinstance(cls, str) and cls.startswith("Custom>"):  # tf 2.11+'s new optimizers, registered so
        cls = cls[len("Custom>"):]
    if isinstance(cls, str) and cls.startswith("Legacy>"):
        cls = cls[len("Legacy>"):]
    c = dict(cfg.get("config") or {})
    if "lr" in c:
        c.setdefault("learning_rate", c.pop("lr"))
        c.pop("lr", None)
    if c.get("decay") in (0, 0.0, None):
        c.pop("decay", None)
    for key in _OPTIMIZER_DROPPED:
        c.pop(key, None)
    lr = c.get("learning_rate")
    if isinstance(lr, dict) and "module" not in lr:
        c["learning_rate"] = {**lr, "module": "keras.optimizers.schedules", "registered_name": None}
    return {"module": "keras.optimizers", "class_name": cls, "config": c, "registered_name": None}


def _loss(loss):
    if isinstance(loss, dict) and "class_name" in loss:
        c = dict(loss.get("config") or {})
        if c.get("reduction") in ("auto", "sum_over_batch_size", None):
            c["reduction"] = "sum_over_batch_size"
        out = {"module": loss.get("module", "keras.losses"), "class_name": loss["class_name"], "config": c,
               "registered_name": loss.get("registered_name")}
        return out
    if isinstance(loss, dict):
        return {k: _loss(v) for k, v in loss.items()}
    if isinstance(loss, list):
        return [_loss(v) for v in loss]
    return loss


def _metric(m):
    if isinstance(m, dict) and m.get("class_name") == "MeanMetricWrapper":
        c = m.get("config") or {}
        name, fn = c.get("name"), c.get("fn")
        if name in ("accuracy", "acc", "crossentropy", "ce"):
            return name  # compile picks the accuracy of the output's kind, as Keras does
        return fn if isinstance(fn, str) else name
    if isinstance(m, dict) and "class_name" in m:
        return {"module": m.get("module", "keras.metrics"), "class_name": m["class_name"],
                "config": m.get("config") or {}, "registered_name": m.get("registered_name")}
    if isinstance(m, dict):
        return {k: _metric(v) for k, v in m.items()}
    if isinstance(m, list):
        return [_metric(v) for v in m]
    return m


def keras2_training_config(training_config):
    """An ``.h5`` file's ``training_config`` (tf.keras 2's or Keras 3's legacy writer's:
    ``optimizer_config``, ``loss``, ``metrics``, ``loss_weights``, ``weighted_metrics``)
    as the ``compile_config`` of a Keras 3 ``.keras`` file: ``{"optimizer": ...,
    "loss": ..., "metrics": ..., "loss_weights": ..., "weighted_metrics": ...}``, with
    Keras 2's optimizer arguments (``lr``, a zero ``decay``, ``Custom>`` names), loss
    reductions (``"auto"``) and ``MeanMetricWrapper`` metrics rewritten."""
    if not isinstance(training_config, dict):
        raise ValueError(f"training_config must be a dict, got {type(training_config).__name__}")
    out = {"optimizer": _optimizer(training_config.get("optimizer_config")),
           "loss": _loss(training_config.get("loss")),
           "loss_weights": training_config.get("loss_weights"),
           "metrics": _metric(training_config.get("metrics")),
           "weighted_metrics": _metric(training_config.get("weighted_metrics"))}
    return out
