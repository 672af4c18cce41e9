"""Sequential and functional models with Keras's training API: ``compile``, ``fit``,
``evaluate``, ``predict``, ``summary``, ``save``; plus the gradients the inspection
and attack tools build on: ``loss_and_gradients`` and ``input_gradient``.

The model runs its layers in topological order; backprop walks them in reverse,
summing gradients where a tensor fans out (residual connections) and where a layer's
weights are used more than once.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from . import _core, backend, device as device_mod, losses as losses_mod, optimizers as optimizers_mod, saving
from .device import is_gpu, to_gpu, to_host
from .callbacks import Callback, History
from .layers import Add, Concatenate, InputLayer, KerasTensor, Layer, Input


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


class Model:
    """A functional model: ``Model(inputs, outputs)`` over symbolic tensors."""

    def __init__(self, inputs=None, outputs=None, name=None):
        self.name = name or ("model" if type(self) is Model else "sequential")
        self.stop_training = False
        self.optimizer = None
        self.loss = None
        self.metrics_names = []
        self._compiled = False
        self._device = None  # 'cpu' or 'gpu' once compiled (None: the default device)
        self.history = None
        if inputs is not None:
            if outputs is None:
                raise ValueError("Model(inputs, outputs): outputs are missing")
            self._init_graph(_as_list(inputs), _as_list(outputs))

    # ------------------------------------------------------------------ graph
    def _init_graph(self, inputs, outputs):
        for t in inputs + outputs:
            if not isinstance(t, KerasTensor):
                raise TypeError(f"Model inputs and outputs must be symbolic tensors (from Input or a layer call), got {t!r}")
        for t in inputs:
            if not isinstance(t.node.layer, InputLayer):
                raise ValueError(f"Model inputs must come from Input(...), got {t!r}")
        self.inputs, self.outputs = inputs, outputs
        order, seen = [], set()

        def visit(t):
            node = t.node
            if id(node) in seen:
                return
            seen.add(id(node))
            for s in node.inputs:
                visit(s)
            order.append(node)

        for t in outputs:
            visit(t)
        input_ids = {id(t) for t in inputs}
        for node in order:
            if isinstance(node.layer, InputLayer) and id(node.output) not in input_ids:
                raise ValueError(f"Output depends on input {node.layer.name!r}, which is not among the model inputs")
        self._nodes = [n for n in order if not isinstance(n.layer, InputLayer)]
        layers, ids = [], set()
        for n in order:
            if id(n.layer) not in ids:
                ids.add(id(n.layer))
                layers.append(n.layer)
        self._all_layers = layers

    @property
    def layers(self):
        return list(self._all_layers)

    def _weighted_layers(self):
        return [l for l in self._all_layers if l._params]

    @property
    def input_shape(self):
        return self.inputs[0].shape if len(self.inputs) == 1 else [t.shape for t in self.inputs]

    @property
    def output_shape(self):
        return self.outputs[0].shape if len(self.outputs) == 1 else [t.shape for t in self.outputs]

    def get_layer(self, name=None, index=None):
        """A layer by name or by index (``model.layers[index]``)."""
        self._require_graph()
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
        if not hasattr(self, "_nodes"):
            raise ValueError(f"Model {self.name!r} has no inputs yet: give the first layer input_shape=... or "
                             "start with Input(shape)")

    # ------------------------------------------------------------------ weights
    @property
    def weights(self):
        self._require_graph()
        return [w for l in self._weighted_layers() for w in l.weights]

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        weights = list(weights)
        mine = self.weights
        if len(weights) != len(mine):
            raise ValueError(f"set_weights: model {self.name!r} has {len(mine)} weight arrays, got {len(weights)}")
        for l in self._weighted_layers():
            k = len(l._params)
            l.set_weights(weights[:k])
            weights = weights[k:]

    def count_params(self):
        return int(sum(w.size for w in self.weights))

    # ------------------------------------------------------------------ execution
    def _check_x(self, x):
        xs = _as_list(x) if isinstance(x, (list, tuple)) and len(self.inputs) > 1 else [x]
        if len(xs) != len(self.inputs):
            raise ValueError(f"Model {self.name!r} expects {len(self.inputs)} inputs, got {len(xs)}")
        out = []
        for t, v in zip(self.inputs, xs):
            v = np.asarray(v)
            if v.dtype.kind not in "biuf":
                raise TypeError(f"Model {self.name!r}: inputs must be numeric arrays, got dtype {v.dtype}")
            if tuple(v.shape[1:]) != tuple(t.shape[1:]) or v.ndim != len(t.shape):
                raise ValueError(f"Input of model {self.name!r} has the wrong shape: expected {t.shape}, "
                                 f"received {v.shape}")
            out.append(np.ascontiguousarray(v, dtype=t.node.layer.dtype))
        n = {len(v) for v in out}
        if len(n) != 1:
            raise ValueError(f"Model inputs have different numbers of samples: {sorted(n)}")
        return out

    # ------------------------------------------------------------------ device
    @property
    def device(self):
        """Where the model computes: 'cpu' or 'gpu'."""
        return self._device or device_mod.get_device()

    def _place(self):
        """Move the layers to the model's device (weights are uploaded once and stay)."""
        dev = self.device
        for l in self._all_layers:
            if dev == "gpu":
                if l.dtype != "float32":
                    raise TypeError(f"Model {self.name!r}: layer {l.name!r} computes in {l.dtype} but the GPU computes "
                                    "in float32; build the model with float32 layers, or use device='cpu'")
                l._to_gpu()
            elif l._on_gpu():
                l._to_cpu()
        return dev

    def _mark_stale(self):
        for l in self._weighted_layers():
            if l._on_gpu():
                l._host_stale = True

    def _forward(self, xs, training):
        if self._place() == "gpu":
            xs = [to_gpu(v, f"Model {self.name!r}") for v in xs]
        values = {id(t): v for t, v in zip(self.inputs, xs)}
        caches = []
        for node in self._nodes:
            ins = [values[id(t)] for t in node.inputs]
            layer = node.layer
            arg = ins if isinstance(layer, (Add, Concatenate)) else ins[0]
            if isinstance(arg, list):
                arg = [a if is_gpu(a) else np.asarray(a, dtype=layer.dtype) for a in arg]
            elif is_gpu(arg):
                pass
            elif arg.dtype != np.dtype(layer.dtype):
                arg = arg.astype(layer.dtype)
            y, cache = layer.forward(arg, training)
            values[id(node.output)] = y
            caches.append(cache)
        return [values[id(t)] for t in self.outputs], caches, values

    def _backward(self, caches, d_out, need_input_grad=False, fused_dz=None):
        """Reverse pass. Returns ({layer id: [grad per weight]}, [dL/d input])."""
        grads = {id(self.outputs[0]): d_out}
        wgrads = {}
        input_ids = {id(t) for t in self.inputs}
        last = self._nodes[-1]
        for node, cache in zip(reversed(self._nodes), reversed(caches)):
            dy = grads.pop(id(node.output), None)
            fused = node is last and fused_dz is not None
            if dy is None and not fused:
                continue
            need_dx = need_input_grad or any(id(t) not in input_ids for t in node.inputs)
            layer = node.layer
            if fused:
                dx, gs = layer.backward(cache, None, need_dx, dz=fused_dz)
            else:
                dx, gs = layer.backward(cache, dy, need_dx)
            if gs:
                acc = wgrads.get(id(layer))
                wgrads[id(layer)] = list(gs) if acc is None else [
                    a if g is None else (g if a is None else a + g) for a, g in zip(acc, gs)]
            if need_dx and dx is not None:
                dxs = dx if isinstance(layer, (Add, Concatenate)) else [dx]
                for t, d in zip(node.inputs, dxs):
                    prev = grads.get(id(t))
                    grads[id(t)] = d if prev is None else prev + d
        return wgrads, [grads.get(id(t)) for t in self.inputs]

    def _fusable(self):
        last = self._nodes[-1].layer
        return (getattr(self.loss, "fusable", False) and not self.loss.from_logits
                and getattr(last, "activation", None) == "softmax" and hasattr(last, "_dz"))

    def _gpu_loss(self, y, pred, from_logits):
        """(stats GpuArray [loss, accuracy], grad) on the GPU."""
        yg = to_gpu(y if y.dtype.kind in "iub" else np.asarray(y, dtype=np.float32), "targets")
        return _core.gpu_loss(self.loss.native, yg, pred, bool(from_logits))

    def _loss_and_output_grad(self, y, outputs, caches):
        """(loss, dL/doutput or None, dL/dz of the fused softmax or None). On the GPU the
        loss is a GpuArray [loss, accuracy], read back by the caller."""
        if self._fusable():
            if is_gpu(outputs[0]):
                stats, dz = self._gpu_loss(y, caches[-1]["z"], True)
                return stats, None, dz
            loss, dz = self.loss.value_and_grad(y, caches[-1]["z"], True)
            return loss, None, dz
        if is_gpu(outputs[0]):
            stats, dy = self._gpu_loss(y, outputs[0], self.loss.from_logits)
            return stats, dy, None
        loss, dy = self.loss.value_and_grad(y, outputs[0], self.loss.from_logits)
        return loss, dy, None

    def __call__(self, x, training=False):
        if isinstance(x, KerasTensor) or (isinstance(x, (list, tuple)) and x and isinstance(x[0], KerasTensor)):
            raise TypeError("Calling a model on symbolic tensors is not supported; call its layers instead")
        self._ensure_built_for(x)
        outs, _, _ = self._forward(self._check_x(x), training)
        outs = [to_host(o) for o in outs]
        return outs[0] if len(outs) == 1 else outs

    def _ensure_built_for(self, x):
        self._require_graph()

    # ------------------------------------------------------------------ compile / train
    def compile(self, optimizer="adam", loss=None, metrics=None, device=None):
        """Choose the optimizer ('sgd', 'adam' or an optimizer object; the default is
        'adam' — Keras's default 'rmsprop' is not implemented), the loss, the metrics
        (``['accuracy']``) and the device ('cpu', 'gpu', 'auto'; default: the one set by
        :func:`convcore.set_device`). On the GPU, weights, activations, gradients and
        optimizer state stay on the device; ``get_weights()`` reads them back."""
        # Resolve everything first: a compile that raises leaves the model as it was.
        dev = None if device is None else device_mod.resolve(device, "compile")
        if dev == "gpu" and hasattr(self, "_all_layers"):
            bad = [l.name for l in self._all_layers if l.dtype != "float32"]
            if bad:
                raise TypeError(f"compile(device='gpu'): layers {bad} compute in float64 but the GPU computes in "
                                "float32; build them with dtype='float32' (set_floatx('float32')), or use device='cpu'")
        opt = optimizers_mod.get(optimizer)
        if loss is None:
            raise ValueError("compile: a loss is required, e.g. loss='sparse_categorical_crossentropy'")
        loss_obj = losses_mod.get(loss)
        metrics = list(metrics or [])
        for m in metrics:
            if m not in ("accuracy", "acc"):
                raise ValueError(f"Unknown metric {m!r}; valid metrics are 'accuracy'")
        self.optimizer, self.loss = opt, loss_obj
        self._device = dev
        self.metrics_names = ["accuracy"] if metrics else []
        self._compiled = True

    def _require_compiled(self, what):
        if not self._compiled:
            raise RuntimeError(f"You must call compile() before {what}()")

    def _prepare_y(self, y):
        if y is None:
            raise ValueError("targets y are required")
        self._require_graph()
        out_shape = tuple(self.outputs[0].shape[1:])
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise TypeError(f"targets must be numeric, got dtype {y.dtype}")
        y = self.loss.check_labels(y, out_shape)
        if y.dtype.kind == "f":
            y = np.ascontiguousarray(y, dtype=self.outputs[0].node.layer.dtype)
        return np.ascontiguousarray(y)

    def _accuracy(self, y, pred):
        pred = to_host(pred)
        name = self.loss.name
        if name == "sparse_categorical_crossentropy":
            return float(_core.accuracy("sparse", y, pred))
        if name == "categorical_crossentropy":
            return float(_core.accuracy("categorical", y, pred))
        if name == "binary_crossentropy":
            return float(_core.accuracy("binary", y, pred))
        return float(np.mean(y == pred))

    def _train_step(self, xs, y, readback=True):
        outs, caches, _ = self._forward(xs, True)
        loss, dy, dz = self._loss_and_output_grad(y, outs, caches)
        wgrads, _ = self._backward(caches, dy, fused_dz=dz)
        updates = []
        for layer in self._weighted_layers():
            gs = wgrads.get(id(layer))
            if gs is None:
                continue
            live = layer._dev if layer._on_gpu() else layer.weights
            for i, (p, g, tr) in enumerate(zip(live, gs, layer.trainable_mask)):
                if tr and g is not None:
                    updates.append(((id(layer), i), p, g))
        self.optimizer.apply_gradients(updates)
        if is_gpu(outs[0]):
            self._mark_stale()
            if not readback:
                return loss  # [loss, accuracy] on the device
            lv, av = loss.numpy()  # the one read-back of the step
            return float(lv), (float(av) if self.metrics_names else None)
        acc = self._accuracy(y, outs[0]) if self.metrics_names else None
        return float(loss), acc

    def train_on_batch(self, x, y):
        """One optimizer step on one batch; returns the loss (and accuracy if compiled with it)."""
        self._require_compiled("train_on_batch")
        xs = self._check_x(x)
        y = self._prepare_y(y)
        _check_len(xs, y)
        loss, acc = self._train_step(xs, y)
        return loss if acc is None else [loss, acc]

    def test_on_batch(self, x, y):
        """Loss (and accuracy) on one batch, in inference mode."""
        self._require_compiled("test_on_batch")
        xs = self._check_x(x)
        y = self._prepare_y(y)
        _check_len(xs, y)
        loss, acc = self._eval_batch(xs, y)
        return float(loss) if not self.metrics_names else [float(loss), acc]

    def loss_and_gradients(self, x, y, training=False):
        """``(loss, grads)`` with ``grads`` aligned with :meth:`get_weights` (zeros for
        non-trainable weights). ``training=False`` (default) runs dropout and batch
        normalization in inference mode, so the result is a deterministic function of
        the weights."""
        self._require_compiled("loss_and_gradients")
        xs = self._check_x(x)
        y = self._prepare_y(y)
        _check_len(xs, y)
        outs, caches, _ = self._forward(xs, training)
        loss, dy, dz = self._loss_and_output_grad(y, outs, caches)
        wgrads, _ = self._backward(caches, dy, fused_dz=dz)
        if is_gpu(outs[0]):
            loss = loss.numpy()[0]
            if training:
                self._mark_stale()
        grads = []
        for layer in self._weighted_layers():
            gs = wgrads.get(id(layer), [None] * len(layer._params))
            for w, g, tr in zip(layer.weights, gs, layer.trainable_mask):
                grads.append(np.zeros_like(w) if (g is None or not tr) else
                             np.asarray(to_host(g), dtype=w.dtype).reshape(w.shape))
        return float(loss), grads

    def input_gradient(self, x, y, training=False):
        """dLoss/dx for inputs ``x`` and targets ``y`` (same shape as ``x``)."""
        self._require_compiled("input_gradient")
        xs = self._check_x(x)
        y = self._prepare_y(y)
        _check_len(xs, y)
        outs, caches, _ = self._forward(xs, training)
        loss, dy, dz = self._loss_and_output_grad(y, outs, caches)
        _, dxs = self._backward(caches, dy, need_input_grad=True, fused_dz=dz)
        dxs = [np.zeros_like(v) if d is None else to_host(d) for v, d in zip(xs, dxs)]
        return dxs[0] if len(dxs) == 1 else dxs

    def _output_of(self, layer):
        """The symbolic output of ``layer`` inside this model's graph."""
        for node in self._nodes:
            if node.layer is layer:
                return node.output
        if isinstance(layer, InputLayer) and layer.output in self.inputs:
            return layer.output
        raise ValueError(f"Layer {layer.name!r} is not part of model {self.name!r}")

    def _input_vjp(self, x, d_out_fn, training=False, from_logits_of_softmax=False):
        """Vector-Jacobian product through the model: ``(outputs, dL/dx)`` where the
        output gradient is ``d_out_fn(outputs)``. With ``from_logits_of_softmax`` and a
        final softmax, the gradient is taken with respect to the pre-softmax scores."""
        xs = self._check_x(x)
        outs, caches, _ = self._forward(xs, training)
        last = self._nodes[-1].layer
        gpu = is_gpu(outs[0])
        back = (lambda a: to_gpu(np.asarray(a, dtype=np.float32))) if gpu else (lambda a: a)
        if from_logits_of_softmax and getattr(last, "activation", None) == "softmax" and hasattr(last, "_dz"):
            z = to_host(caches[-1]["z"])
            dz = back(np.ascontiguousarray(d_out_fn(z), dtype=z.dtype))
            _, dxs = self._backward(caches, None, need_input_grad=True, fused_dz=dz)
        else:
            o = to_host(outs[0])
            d_out = back(np.ascontiguousarray(d_out_fn(o), dtype=o.dtype))
            _, dxs = self._backward(caches, d_out, need_input_grad=True)
        dxs = [np.zeros_like(v) if d is None else to_host(d) for v, d in zip(xs, dxs)]
        return [to_host(o) for o in outs], dxs

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0):
        """Train for ``epochs`` epochs; returns a :class:`History`."""
        self._require_compiled("fit")
        self._ensure_built_for(x)
        xs = self._check_x(x)
        y = self._prepare_y(y)
        _check_len(xs, y)
        n = len(y)
        if n == 0:
            raise ValueError("fit: no training samples (x and y are empty)")
        batch_size = 32 if batch_size is None else int(batch_size)
        if batch_size < 1:
            raise ValueError(f"fit: batch_size must be >= 1, got {batch_size}")
        if validation_data is None and validation_split:
            if not 0.0 < validation_split < 1.0:
                raise ValueError(f"fit: validation_split must be in (0, 1), got {validation_split}")
            cut = int(np.ceil(n * (1.0 - validation_split)))  # Keras rounds the training part up
            if cut == 0 or cut == n:
                raise ValueError(f"fit: validation_split={validation_split} leaves no training or validation data")
            val = ([v[cut:] for v in xs], y[cut:])
            xs, y, n = [v[:cut] for v in xs], y[:cut], cut
        elif validation_data is not None:
            if len(validation_data) != 2:
                raise ValueError("fit: validation_data must be a tuple (x_val, y_val)")
            vx = self._check_x(validation_data[0])
            vy = self._prepare_y(validation_data[1])
            _check_len(vx, vy)
            val = (vx, vy)
        else:
            val = None
        verbose = 1 if verbose == "auto" else int(verbose)
        history = History()
        cbs = [history] + list(callbacks or [])
        for cb in cbs:
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: callbacks must be Callback objects, got {cb!r}")
            cb.set_model(self)
        self.stop_training = False
        for cb in cbs:
            cb.on_train_begin()
        steps = (n + batch_size - 1) // batch_size
        rng = backend.rng()
        # On the GPU with verbose=0 and no per-batch callback, loss and accuracy stay on
        # the device and are read back once per epoch instead of once per batch.
        deferred = (verbose == 0 and self.device == "gpu"
                    and not any(type(cb).on_train_batch_end is not Callback.on_train_batch_end
                                for cb in cbs))
        for epoch in range(initial_epoch, epochs):
            for cb in cbs:
                cb.on_epoch_begin(epoch)
            order = rng.permutation(n) if shuffle else np.arange(n)
            bar = _Progbar(steps, verbose, epoch, epochs)
            tot_loss = tot_acc = 0.0
            seen = 0
            running = None  # deferred: sum of k * [loss, accuracy] on the device
            for b in range(steps):
                idx = order[b * batch_size:(b + 1) * batch_size]
                if shuffle:
                    idx = np.sort(idx)
                bx = [v[idx] for v in xs]
                if deferred:
                    st = self._train_step(bx, y[idx], readback=False)
                    k = len(idx)
                    running = _core.gpu_axpby(st, st, float(k), 0.0) if running is None else \
                        _core.gpu_axpby(running, st, 1.0, float(k))
                    seen += k
                    continue
                loss, acc = self._train_step(bx, y[idx])
                if not np.isfinite(loss):
                    raise FloatingPointError(
                        f"fit: the loss became {loss} at epoch {epoch + 1}, batch {b + 1} of {steps}; "
                        "lower the learning rate or check the data for NaN/inf")
                k = len(idx)
                seen += k
                tot_loss += loss * k
                if acc is not None:
                    tot_acc += acc * k
                logs = {"loss": tot_loss / seen}
                if acc is not None:
                    logs["accuracy"] = tot_acc / seen
                for cb in cbs:
                    cb.on_train_batch_end(b, logs)
                bar.update(b + 1, logs)
            if deferred and running is not None:
                tot_loss, tot_acc = (float(v) for v in running.numpy())  # the epoch's one read-back
                if not np.isfinite(tot_loss):
                    raise FloatingPointError(
                        f"fit: the loss became {tot_loss / seen} during epoch {epoch + 1}; "
                        "lower the learning rate or check the data for NaN/inf")
            logs = {"loss": tot_loss / seen}
            if self.metrics_names:
                logs["accuracy"] = tot_acc / seen
            if val is not None:
                r = self._evaluate_arrays(val[0], val[1], batch_size)
                logs["val_loss"] = r[0]
                if self.metrics_names:
                    logs["val_accuracy"] = r[1]
            bar.finish(logs)
            for cb in cbs:
                cb.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        for cb in cbs:
            cb.on_train_end()
        self.history = history
        return history

    def _evaluate_arrays(self, xs, y, batch_size):
        n = len(y)
        tot_loss = tot_acc = 0.0
        for s in range(0, n, batch_size):
            bx = [v[s:s + batch_size] for v in xs]
            by = y[s:s + batch_size]
            loss, acc = self._eval_batch(bx, by)
            tot_loss += float(loss) * len(by)
            if self.metrics_names:
                tot_acc += acc * len(by)
        return [tot_loss / n, tot_acc / n] if self.metrics_names else [tot_loss / n]

    def _eval_batch(self, xs, y):
        """(loss, accuracy or None) of one batch in inference mode."""
        outs, _, _ = self._forward(xs, False)
        if is_gpu(outs[0]):
            stats, _ = self._gpu_loss(y, outs[0], self.loss.from_logits)
            lv, av = stats.numpy()
            return float(lv), (float(av) if self.metrics_names else None)
        loss = self.loss.value_and_grad(y, outs[0], self.loss.from_logits)[0]
        return float(loss), (self._accuracy(y, outs[0]) if self.metrics_names else None)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", return_dict=False):
        """Loss (and accuracy) over ``x, y`` in inference mode."""
        self._require_compiled("evaluate")
        xs = self._check_x(x)
        y = self._prepare_y(y)
        _check_len(xs, y)
        if len(y) == 0:
            raise ValueError("evaluate: no samples")
        r = self._evaluate_arrays(xs, y, 32 if batch_size is None else int(batch_size))
        if verbose not in (0, "auto") and verbose:
            print(" - ".join(f"{k}: {v:.4f}" for k, v in zip(["loss"] + self.metrics_names, r)))
        if return_dict:
            return dict(zip(["loss"] + self.metrics_names, r))
        return r[0] if len(r) == 1 else r

    def predict(self, x, batch_size=None, verbose=0):
        """Outputs for ``x``, computed in batches in inference mode."""
        self._ensure_built_for(x)
        xs = self._check_x(x)
        bs = 32 if batch_size is None else int(batch_size)
        if bs < 1:
            raise ValueError(f"predict: batch_size must be >= 1, got {bs}")
        n = len(xs[0])
        chunks = [[] for _ in self.outputs]
        for s in range(0, n, bs):
            outs, _, _ = self._forward([v[s:s + bs] for v in xs], False)
            for c, o in zip(chunks, outs):
                c.append(to_host(o))
        res = [np.concatenate(c) if c else np.zeros((0,) + t.shape[1:], dtype=t.node.layer.dtype)
               for c, t in zip(chunks, self.outputs)]
        return res[0] if len(res) == 1 else res

    # ------------------------------------------------------------------ summary / saving
    def summary(self, print_fn=None):
        """Print a table of layers, output shapes and parameter counts (as Keras)."""
        self._require_graph()
        print_fn = print_fn or print
        rows = []
        for l in self.layers:
            if isinstance(l, InputLayer) and isinstance(self, Sequential):
                continue
            shape = l.output.shape if hasattr(l, "output") and l.output is not None else "?"
            rows.append((f"{l.name} ({type(l).__name__})", str(shape), f"{l.count_params():,}"))
        w = [max(len(h), *(len(r[i]) for r in rows)) + 2 for i, h in enumerate(("Layer (type)", "Output Shape", "Param #"))]
        line = lambda r: "".join(c.ljust(w[i]) for i, c in enumerate(r))
        total = self.count_params()
        trainable = int(sum(p[1].size for l in self._weighted_layers() for p in l._params if p[2] and l.trainable))
        out = [f'Model: "{self.name}"', "_" * sum(w), line(("Layer (type)", "Output Shape", "Param #")), "=" * sum(w)]
        out += [line(r) for r in rows]
        out += ["=" * sum(w), f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                f"Non-trainable params: {total - trainable:,}", "_" * sum(w)]
        print_fn("\n".join(out))

    def get_config(self):
        return saving.model_config(self)

    def save(self, filepath):
        """Save architecture, weights and compile settings to one file (a zip holding
        JSON and .npy arrays: loading runs no code). Written atomically."""
        saving.save_model(self, filepath)

    def save_weights(self, filepath):
        """Save the weights to an .npz file (atomically)."""
        saving.save_weights(self, filepath)

    def load_weights(self, filepath):
        """Load weights saved by :meth:`save_weights` (or :meth:`save`)."""
        saving.load_weights(self, filepath)


class Sequential(Model):
    """A linear stack of layers, as ``keras.Sequential``."""

    def __init__(self, layers=None, name=None):
        super().__init__(name=name or "sequential")
        self._layers = []
        self._input_tensor = None
        for l in layers or []:
            self.add(l)

    def add(self, layer):
        if isinstance(layer, KerasTensor):
            if self._layers or self._input_tensor is not None:
                raise ValueError("Sequential: Input(...) must come first")
            self._input_tensor = layer
            return
        if isinstance(layer, InputLayer):
            self.add(layer.output)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add expects a Layer, got {layer!r}")
        self._layers.append(layer)
        if self._input_tensor is None and len(self._layers) == 1 and layer._input_shape_arg is not None:
            self._input_tensor = Input(layer._input_shape_arg, dtype=layer.dtype)
        if self._input_tensor is not None:
            self._rebuild()

    def pop(self):
        if not self._layers:
            raise ValueError("Sequential.pop: there are no layers")
        self._layers.pop()
        if self._layers and self._input_tensor is not None:
            self._rebuild()

    def _rebuild(self):
        t = self._input_tensor
        for l in self._layers:
            t = l._call_symbolic(t)
        self._init_graph([self._input_tensor], [t])

    def _ensure_built_for(self, x):
        if not hasattr(self, "_nodes"):
            if x is None or not self._layers:
                self._require_graph()
            shape = np.asarray(x).shape[1:]
            self._input_tensor = Input(shape, dtype=self._layers[0].dtype)
            self._rebuild()

    def build(self, input_shape):
        """Build with ``input_shape`` (batch axis first, may be None)."""
        self._input_tensor = Input(tuple(input_shape)[1:], dtype=self._layers[0].dtype if self._layers else None)
        self._rebuild()

    @property
    def layers(self):
        return list(self._layers)


def _check_len(xs, y):
    n = len(xs[0])
    if len(y) != n:
        raise ValueError(f"x and y have different numbers of samples: {n} and {len(y)}")


class _Progbar:
    """Keras-style progress: verbose=1 a live bar with ETA and running metrics,
    verbose=2 one line per epoch, verbose=0 nothing."""

    def __init__(self, steps, verbose, epoch, epochs):
        self.steps, self.verbose = steps, verbose
        self.start = time.perf_counter()
        self.last = 0.0
        if verbose == 1:
            print(f"Epoch {epoch + 1}/{epochs}", flush=True)
        self.prefix = f"Epoch {epoch + 1}/{epochs} - " if verbose == 2 else ""

    @staticmethod
    def _fmt(logs):
        return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())

    def update(self, step, logs):
        if self.verbose != 1:
            return
        now = time.perf_counter()
        if step < self.steps and now - self.last < 0.1:
            return
        self.last = now
        el = now - self.start
        width = 30
        done = int(width * step / self.steps)
        bar = "=" * max(done - 1, 0) + (">" if done < width else "=") + "." * (width - done)
        eta = el / step * (self.steps - step)
        tail = f"ETA: {eta:.0f}s" if step < self.steps else f"{el:.0f}s {el / step * 1e3:.0f}ms/step"
        width_steps = len(str(self.steps))
        sys.stdout.write(f"\r{step:>{width_steps}}/{self.steps} [{bar}] - {tail} - {self._fmt(logs)}")
        sys.stdout.flush()

    def finish(self, logs):
        el = time.perf_counter() - self.start
        if self.verbose == 1:
            sys.stdout.write(f"\r{self.steps}/{self.steps} [{'=' * 30}] - {el:.0f}s "
                             f"{el / self.steps * 1e3:.0f}ms/step - {self._fmt(logs)}\n")
            sys.stdout.flush()
        elif self.verbose == 2:
            print(f"{self.prefix}{el:.0f}s - {self._fmt(logs)}", flush=True)
