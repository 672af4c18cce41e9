"""Exporting a model's inference graph for other runtimes, as ``keras.Model.export``.

``export_model(model, filepath, format=None, ...)`` is what ``Model.export`` calls;
``format="onnx"`` (the default for a path ending in ``.onnx``) writes an ONNX model with
:func:`export_onnx`. Keras's other formats (``"tf_saved_model"``, ``"openvino"``,
``"litert"``, ``"torch"``) need TensorFlow, OpenVINO or PyTorch to run a Keras backend
and are refused with a ValueError naming what convcore supports.

Where convcore differs from Keras: ``format`` has no default of ``"tf_saved_model"``
(it is inferred from a ``.onnx`` path, else it must be given); the ONNX graph is built
from the model's layers directly (no tf2onnx / jax2onnx), and ``export_onnx`` takes
``opset`` (Keras: ``opset_version=``, accepted here too) and ``dynamic_batch``.
Nothing here imports ``onnx`` until an export runs.
"""
from __future__ import annotations

import os

from .onnx import export_onnx

__all__ = ["export_model", "export_onnx", "SUPPORTED_FORMATS"]

SUPPORTED_FORMATS = ("onnx",)
# Keras 3's formats (keras.Model.export), named in the error for the ones convcore lacks.
KERAS_FORMATS = ("tf_saved_model", "onnx", "openvino", "litert", "torch")


def export_model(model, filepath, format=None, verbose=True, input_signature=None, **kwargs):
    """Export ``model`` for inference to ``filepath``.

    Parameters
    ----------
    model : Model
        A functional or Sequential model (models nested inside it are exported too).
    filepath : str or path-like
        The file to write (atomically: a failed export leaves nothing there).
    format : {"onnx"} or None
        None infers ``"onnx"`` from a ``.onnx`` path. Keras's other formats are a
        ValueError.
    verbose : bool or None
        Print Keras's ``Saved artifact at '...'.`` line (None: True, as Keras).
    input_signature : optional
        One spec per model input (a shape tuple with the batch axis, or any object
        with ``.shape`` — ``keras.InputSpec``, a KerasTensor, an array), fixing the
        sizes the model leaves as None; see :func:`export_onnx`.
    **kwargs
        ``opset`` (or Keras's ``opset_version``) and ``dynamic_batch`` for ONNX.
    """
    if format is None:
        try:
            path = os.fspath(filepath)
        except TypeError:
            raise TypeError(f"export: filepath must be a str or path-like object, received {filepath!r}") from None
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not path.lower().endswith(".onnx"):
            raise ValueError(f"export: cannot infer the format of {path!r}: give format='onnx' or a path ending in "
                             f"'.onnx' (convcore exports {list(SUPPORTED_FORMATS)}; Keras's default "
                             "'tf_saved_model' needs TensorFlow)")
        format = "onnx"
    if not isinstance(format, str):
        raise TypeError(f"export: format must be a string, received format={format!r}")
    fmt = format.lower()
    if fmt not in SUPPORTED_FORMATS:
        if fmt in KERAS_FORMATS:
            raise ValueError(f"export: format={format!r} is not supported by convcore (it needs Keras's "
                             f"{'TensorFlow' if fmt in ('tf_saved_model', 'litert') else fmt} backend); supported "
                             f"formats are {list(SUPPORTED_FORMATS)}")
        raise ValueError(f"Unrecognized format={format}. Supported formats are: {list(SUPPORTED_FORMATS)}.")
    if "opset_version" in kwargs:
        v = kwargs.pop("opset_version")
        if kwargs.get("opset") is not None and v is not None and kwargs["opset"] != v:
            raise ValueError(f"export: opset={kwargs['opset']!r} and opset_version={v!r} (Keras's name) disagree; "
                             "pass one")
        if kwargs.get("opset") is None:
            kwargs["opset"] = v
    unknown = sorted(set(kwargs) - {"opset", "dynamic_batch"})
    if unknown:
        raise TypeError(f"export: unexpected keyword arguments {unknown} for format='onnx' (expected opset / "
                        "opset_version, dynamic_batch)")
    export_onnx(model, filepath, input_signature=input_signature, **kwargs)
    if verbose is None or verbose:  # Keras: None means True for ONNX
        print(f"Saved artifact at '{os.fspath(filepath)}'.")
