"""``plot_model`` and ``model_to_dot``, as ``keras.utils``: a model's layers as a
graphviz graph, drawn with pydot (``pip install pydot`` or ``convcore[plot]``) and the
graphviz ``dot`` program. Without them ``plot_model`` raises ImportError (in IPython it
prints the message and returns, as Keras)."""
from __future__ import annotations

import os
import sys

_PYDOT = []  # the module, imported on first use (pydot, or Keras's fallbacks)


def _pydot():
    if not _PYDOT:
        mod = None
        for name in ("pydot", "pydot_ng", "pydotplus"):
            try:
                mod = __import__(name)
                break
            except ImportError:
                continue
        _PYDOT.append(mod)
    return _PYDOT[0]


_NO_PYDOT = "You must install pydot (`pip install pydot`, or `pip install convcore[plot]`) for `{}` to work."
_NO_GRAPHVIZ = ("You must install graphviz (see instructions at https://graphviz.gitlab.io/download/) for "
                "`plot_model` to work.")


def check_pydot():
    return _pydot() is not None


def check_graphviz():
    pydot = _pydot()
    if pydot is None:
        return False
    try:
        pydot.Dot.create(pydot.Dot())
        return True
    except (OSError, getattr(pydot, "PydotException", OSError)):
        return False


def _format_shape(shape):
    if shape is None:
        return "?"
    return f"{shape}".replace("}", "").replace("{", "")


def _activation_name(layer):
    act = layer.activation
    if isinstance(act, str):
        return str(act)
    return getattr(act, "name", None) or getattr(act, "__name__", None) or str(act)


def _layer_info(model):
    """layer id -> (input shape(s), output shape(s), output dtype) from the graph's nodes."""
    from ..layers.core import InputLayer
    info = {}
    if not model._is_graph():
        return info
    for t in model.inputs:
        layer = t.node.layer
        if isinstance(layer, InputLayer):
            info[id(layer)] = (None, t.shape, t.dtype or layer.dtype)
    for node in model._nodes:
        ins = [t.shape for t in node.inputs]
        outs = [t.shape for t in node.outputs]
        dtype = node.outputs[0].dtype or getattr(node.layer, "dtype", None)
        info[id(node.layer)] = (ins[0] if len(ins) == 1 else ins, outs[0] if len(outs) == 1 else outs, dtype)
    return info


def _label(layer, info, show_layer_names, show_layer_activations, show_dtype, show_shapes, show_trainable):
    """Keras's HTML-table label of a layer."""
    class_name = type(layer).__name__
    colspan = max(1, int(show_dtype) + int(show_trainable) + (2 if show_shapes else 0))
    table = '<<table border="0" cellborder="1" bgcolor="black" cellpadding="10">'
    title = f"<b>{layer.name}</b> ({class_name})" if show_layer_names else f"<b>{class_name}</b>"
    table += (f'<tr><td colspan="{colspan}" bgcolor="black"><font point-size="16" color="white">{title}</font>'
              "</td></tr>")
    if show_layer_activations and getattr(layer, "activation", None) is not None:
        table += (f'<tr><td bgcolor="white" colspan="{colspan}"><font point-size="14">Activation: '
                  f"<b>{_activation_name(layer)}</b></font></td></tr>")
    ins, outs, dtype = info.get(id(layer), (None, None, None))
    cols = []
    if show_shapes:
        if class_name != "InputLayer":
            cols.append(f'<td bgcolor="white"><font point-size="14">Input shape: <b>{_format_shape(ins)}</b></font>'
                        "</td>")
        cols.append(f'<td bgcolor="white"><font point-size="14">Output shape: <b>{_format_shape(outs)}</b></font>'
                    "</td>")
    if show_dtype:
        cols.append(f'<td bgcolor="white"><font point-size="14">Output dtype: <b>{dtype or "?"}</b></font></td>')
    if show_trainable and layer.weights:
        if layer.trainable:
            cols.append('<td bgcolor="forestgreen"><font point-size="14" color="white"><b>Trainable</b></font></td>')
        else:
            cols.append('<td bgcolor="firebrick"><font point-size="14" color="white"><b>Non-trainable</b></font></td>')
    if cols:
        table += f"<tr>{''.join(cols)}</tr>"
    return table + "</table>>"


def _node(pydot, layer, label):
    node = pydot.Node(str(id(layer)), label=label)
    node.set("fontname", "Helvetica")
    node.set("border", "0")
    node.set("margin", "0")
    return node


def _add_edge(pydot, dot, src, dst):
    s, d = str(id(src)), str(id(dst))
    if not dot.get_edge(s, d):
        edge = pydot.Edge(s, d)
        edge.set("penwidth", "2")
        dot.add_edge(edge)


def _is_model(layer):
    from ..models import Model
    return isinstance(layer, Model) and layer._is_graph()


def _source_of(t):
    """The drawn layer that makes symbolic tensor ``t`` (inside a nested model: the layer
    making that model's output)."""
    layer = t.node.layer
    while _is_model(layer):
        idx = next(i for i, o in enumerate(t.node.outputs) if o is t)
        t = layer.outputs[idx]
        layer = t.node.layer
    return layer


def _destination_of(layer, input_index):
    """The drawn layer that takes input ``input_index`` of ``layer`` (a nested model:
    its input layer; a nested Sequential: its first layer, as Keras)."""
    from ..models import Sequential
    while _is_model(layer):
        if isinstance(layer, Sequential):
            layer = layer.layers[0]
        else:
            layer = layer.inputs[min(input_index, len(layer.inputs) - 1)].node.layer
            input_index = 0
    return layer


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True, rankdir="TB",
                 expand_nested=False, dpi=200, subgraph=False, show_layer_activations=False, show_trainable=False,
                 splines="ortho", **kwargs):
    """A ``pydot.Dot`` of the model: one node per layer (Keras's labels), edges along
    the graph; nested models as dashed clusters with ``expand_nested``."""
    from ..models import Model, Sequential
    if not isinstance(model, Model):
        raise TypeError(f"model_to_dot: expected a Model, received {type(model).__name__}")
    if not model.built:
        raise ValueError("This model has not yet been built. Build the model first by calling `build()` or by "
                         "calling the model on a batch of data.")
    pydot = _pydot()
    if pydot is None:
        raise ImportError(_NO_PYDOT.format("model_to_dot"))
    if kwargs.pop("layer_range", None) is not None:
        raise ValueError("Argument `layer_range` is no longer supported.")
    if kwargs:
        raise ValueError(f"Unrecognized keyword arguments: {kwargs}")
    if subgraph:
        dot = pydot.Cluster(style="dashed", graph_name=model.name)
        dot.set("label", model.name)
        dot.set("labeljust", "l")
    else:
        dot = pydot.Dot()
        dot.set("rankdir", rankdir)
        dot.set("concentrate", True)
        dot.set("dpi", dpi)
        dot.set("splines", splines)
        dot.set_node_defaults(shape="record")
    flags = dict(show_layer_names=show_layer_names, show_layer_activations=show_layer_activations,
                 show_dtype=show_dtype, show_shapes=show_shapes, show_trainable=show_trainable)
    if not model._is_graph():  # a subclassed model: one node
        dot.add_node(_node(pydot, model, _label(model, {}, **flags)))
        return dot
    info = _layer_info(model)
    layers = model.layers  # a Sequential's leave out its input layer, as Keras's
    drawn = set()
    for layer in layers:
        if expand_nested and _is_model(layer):
            dot.add_subgraph(model_to_dot(layer, show_shapes, show_dtype, show_layer_names, rankdir, expand_nested,
                                          subgraph=True, show_layer_activations=show_layer_activations,
                                          show_trainable=show_trainable))
        else:
            dot.add_node(_node(pydot, layer, _label(layer, info, **flags)))
        drawn.add(id(layer))
    for node in model._nodes:
        for i, t in enumerate(node.inputs):
            src = t.node.layer
            if id(src) not in drawn:  # a Sequential's input layer
                continue
            if expand_nested:
                _add_edge(pydot, dot, _source_of(t), _destination_of(node.layer, i))
            else:
                _add_edge(pydot, dot, src, node.layer)
    return dot


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False, show_layer_names=False,
               rankdir="TB", expand_nested=False, dpi=200, show_layer_activations=False, show_trainable=False,
               splines="ortho", **kwargs):
    """Draw the model to ``to_file`` (its extension names the format, png by default),
    as ``keras.utils.plot_model``; returns an IPython Image where IPython is installed
    (not for pdf)."""
    from ..models import Model
    if not isinstance(model, Model):
        raise TypeError(f"plot_model: expected a Model, received {type(model).__name__}")
    if not model.built:
        raise ValueError("This model has not yet been built. Build the model first by calling `build()` or by "
                         "calling the model on a batch of data.")
    for ok, message in ((check_pydot, _NO_PYDOT.format("plot_model")), (check_graphviz, _NO_GRAPHVIZ)):
        if not ok():
            if "IPython.core.magics.namespace" in sys.modules:
                print(message)
                return None
            raise ImportError(message)
    if kwargs.pop("layer_range", None) is not None:
        raise ValueError("Argument `layer_range` is no longer supported.")
    if kwargs:
        raise ValueError(f"Unrecognized keyword arguments: {kwargs}")
    dot = model_to_dot(model, show_shapes=show_shapes, show_dtype=show_dtype, show_layer_names=show_layer_names,
                       rankdir=rankdir, expand_nested=expand_nested, dpi=dpi,
                       show_layer_activations=show_layer_activations, show_trainable=show_trainable, splines=splines)
    to_file = str(to_file)
    extension = os.path.splitext(to_file)[1][1:] or "png"
    dot.write(to_file, format=extension)
    if extension != "pdf":
        try:
            from IPython import display
            return display.Image(filename=to_file)
        except ImportError:
            pass
    return None
