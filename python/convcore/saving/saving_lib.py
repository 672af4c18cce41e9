"""Saving and loading models without pickle.

A saved model is one zip file holding ``config.json`` (architecture, compile settings)
and one ``.npy`` file per weight array, read back with ``allow_pickle=False``: loading
never executes code from the file. Files are written to a temporary file in the same
folder and renamed over the target, so an interrupted save leaves the previous file
intact.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile

import numpy as np

from .object_registration import custom_object_scope, get_registered_object, registered_name

FORMAT = "convcore-model"
VERSION = 1


def _atomic_write(path, write):
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path) + "-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def serialize_keras_object(obj):
    """``{"class_name": registered name, "config": obj.get_config()}``."""
    return {"class_name": registered_name(type(obj)), "config": obj.get_config()}


def _class(name, custom_objects, what="class"):
    cls = get_registered_object(name, custom_objects) if isinstance(name, str) else None
    if cls is None or not isinstance(cls, type):
        known = ", ".join(sorted(n for n, o in _registered().items() if isinstance(o, type) and ">" not in n))
        raise ValueError(f"Unknown {what} {name!r}; known: {known} (a user class loads when it is registered with "
                         "register_keras_serializable or passed in custom_objects)")
    return cls


def _registered():
    from .object_registration import _GLOBAL
    return _GLOBAL


def deserialize_keras_object(d, custom_objects=None):
    """The object ``serialize_keras_object`` described, built by its class's
    ``from_config`` (inside a custom-object scope, so nested names resolve too)."""
    if not isinstance(d, dict):
        raise ValueError(f"expected a serialized object (a dict with 'class_name' and 'config'), got {d!r}")
    cls = _class(d.get("class_name"), custom_objects)
    with custom_object_scope(custom_objects):
        return cls.from_config(dict(d.get("config", {})))


def model_config(model):
    """A model's config as it is saved: its class name and its ``get_config()`` (no
    special case for any model class)."""
    return {"class_name": registered_name(type(model)), **model.get_config()}


def model_from_config(cfg, custom_objects=None):
    """The model of ``model_config``: the registered class's ``from_config``."""
    if not isinstance(cfg, dict):
        raise ValueError(f"a model config must be a dict, got {type(cfg).__name__}")
    cls = _class(cfg.get("class_name"), custom_objects, "model class")
    with custom_object_scope(custom_objects):
        return cls.from_config({k: v for k, v in cfg.items() if k != "class_name"})


def _npy_bytes(a):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def save_model(model, path):
    from .. import losses, optimizers
    cfg = {"format": FORMAT, "version": VERSION, "model": model_config(model)}
    if model._compiled:
        cfg["compile"] = {"optimizer": model.optimizer.get_config(), "loss": losses.serialize(model.loss),
                          "metrics": list(model.metrics_names)}
    weights = model.get_weights()

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("config.json", json.dumps(cfg, indent=1))
            for i, w in enumerate(weights):
                z.writestr(f"weights/{i:05d}.npy", _npy_bytes(w))

    _atomic_write(path, write)


def _read_zip(path):
    try:
        z = zipfile.ZipFile(os.fspath(path))
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(f"{path!s} is not a convcore model file (or it is truncated): {e}") from None
    return z


def _read_weights(z, names, path):
    out = []
    for n in names:
        try:
            with z.open(n) as f:
                out.append(np.lib.format.read_array(io.BytesIO(f.read()), allow_pickle=False))
        except (ValueError, zipfile.BadZipFile, OSError, EOFError, KeyError) as e:
            raise ValueError(f"{path!s}: weight entry {n!r} is damaged or not a plain array: {e}") from None
    return out


def load_model(path, compile=True, custom_objects=None):
    """Load a model saved by ``model.save(path)``; ``custom_objects`` maps the names of
    user layers and functions (Lambda, activations) to them (code is never loaded)."""
    from .. import losses, optimizers
    with _read_zip(path) as z:
        try:
            cfg = json.loads(z.read("config.json").decode("utf-8"))
        except (KeyError, ValueError, zipfile.BadZipFile, OSError, EOFError) as e:
            raise ValueError(f"{path!s} is not a convcore model file: {e}") from None
        if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
            raise ValueError(f"{path!s} is not a convcore model file (format {cfg.get('format') if isinstance(cfg, dict) else None!r})")
        names = sorted(n for n in z.namelist() if n.startswith("weights/"))
        weights = _read_weights(z, names, path)
    model = model_from_config(cfg["model"], custom_objects)
    model.set_weights(weights)
    if compile and "compile" in cfg:
        c = cfg["compile"]
        model.compile(optimizer=optimizers.deserialize(c["optimizer"]), loss=losses.deserialize(c["loss"]),
                      metrics=c.get("metrics") or None)
    return model


def save_weights(model, path):
    weights = model.get_weights()

    def write(f):
        np.savez(f, **{f"w{i:05d}": w for i, w in enumerate(weights)})

    _atomic_write(path, write)


def load_weights(model, path):
    try:
        with np.load(os.fspath(path), allow_pickle=False) as z:
            keys = sorted(k for k in z.files if k.startswith("w"))
            weights = [z[k] for k in keys]
    except FileNotFoundError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        # A full model file also carries the weights.
        try:
            with _read_zip(path) as zz:
                weights = _read_weights(zz, sorted(n for n in zz.namelist() if n.startswith("weights/")), path)
        except ValueError:
            raise ValueError(f"{path!s} is not a convcore weights file (or it is truncated): {e}") from None
    model.set_weights(weights)
