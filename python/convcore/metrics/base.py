"""The stateful metric base (``keras.metrics.Metric``), ``Mean``, ``Sum`` and
``MeanMetricWrapper``. A metric's state is a set of tensors on the device of the values
it was last given, updated with :mod:`convcore.ops` (nothing is read back until
``result()`` is), and never recorded by a tape."""
from __future__ import annotations

import functools

import numpy as np

from .. import device as device_mod, ops
from ..tensor import Variable
from .. import losses as _losses
from ..losses import squeeze_or_expand_to_same_rank
from ..tape import stop_recording


def _snake(name):
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(c.lower())
    return "".join(out)


def device_of(*xs):
    for x in xs:
        if isinstance(x, ops.Tensor):
            return x.device
    return "cpu"


def as_float(x, device, dtype="float32"):
    """``x`` as a float tensor on ``device`` (a float64 array meeting the GPU becomes
    float32, as the GPU computes)."""
    if isinstance(x, ops.Tensor):
        if x.device != device:
            x = x.numpy()
        else:
            return x if np.dtype(x.dtype) == np.dtype(dtype) else ops.cast(x, dtype)
    a = np.asarray(x, dtype=np.float32 if device == "gpu" else dtype)
    return ops.convert_to_tensor(a, device=device)


def _float_dtype(x):
    dt = np.dtype(x.dtype) if hasattr(x, "dtype") else np.asarray(x).dtype
    return str(dt) if dt.kind == "f" and dt.itemsize >= 4 else "float32"


# Comparisons as arithmetic: sign / maximum / abs have device kernels on the GPU, where the
# comparison ops run on the host.
def gt(a, b):
    """1.0 where a > b, else 0.0."""
    return ops.maximum(ops.sign(ops.subtract(a, b)), 0.0)


def ge(a, b):
    return ops.subtract(1.0, gt(b, a))


def eq(a, b):
    return ops.subtract(1.0, ops.abs(ops.sign(ops.subtract(a, b))))


def divide_no_nan(a, b):
    """a / b, 0 where b is 0 (for counts: a <= b, so a is 0 there too)."""
    return ops.divide(a, ops.maximum(b, 1e-30))


class Metric:
    """Base class of metrics (``keras.metrics.Metric``): ``update_state(...)`` adds a
    batch, ``result()`` is the value so far (a 0-d tensor, or a vector), ``reset_state()``
    starts again. Subclasses create their state with ``self.total = self.add_variable(shape,
    name=...)`` and update it with ``self.total.assign_add(...)``, as in Keras."""

    def __init__(self, dtype=None, name=None):  # Keras's order
        self.name = name or _snake(type(self).__name__)
        from .. import backend  # Keras 3: a metric computes in floatx unless told
        self._dtype = str(np.dtype(dtype)) if dtype is not None and dtype != "int" else backend.floatx()
        self._variables = []

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        if "update_state" in cls.__dict__:
            f = cls.__dict__["update_state"]

            @functools.wraps(f)
            def update_state(self, *a, **k):
                if device_of(*a, *k.values()) == "gpu":  # the state follows GPU inputs (assign_add there)
                    for v in getattr(self, "_variables", ()):
                        self._place(v, "gpu")
                with stop_recording():  # a metric is never differentiated
                    return f(self, *a, **k)
            cls.update_state = update_state

    @property
    def dtype(self):
        return self._dtype

    def add_variable(self, shape=(), initializer="zeros", dtype=None, aggregation="sum", name=None):
        """A state variable (a non-trainable :class:`~convcore.Variable`, zeros), as
        Keras's: update it with ``assign`` / ``assign_add``. It moves to the device of the
        values it is first given (float32 on the GPU; float64 on the CPU by default, so
        counts stay exact past 2**24 samples)."""
        if initializer not in ("zeros", None) and getattr(initializer, "__name__", "") != "Zeros" and \
                type(initializer).__name__ != "Zeros":
            raise ValueError(f"{type(self).__name__}.add_variable: only initializer='zeros' is supported, "
                             f"received initializer={initializer!r}")
        name = name or f"variable_{len(self._variables)}"
        v = Variable(np.zeros(tuple(shape), dtype=dtype or np.float64), trainable=False, name=name)
        self._variables.append(v)
        return v

    def add_weight(self, shape=(), initializer=None, dtype=None, name=None):
        return self.add_variable(shape=shape, initializer=initializer, dtype=dtype, name=name)

    def _place(self, v, dev):
        """Move the state variable ``v`` to ``dev`` (in place: who holds it keeps it)."""
        if v.device != dev:
            host = v.numpy()
            v._data = device_mod.to_device(host.astype(np.float32) if dev == "gpu" else host.astype(np.float64),
                                           dev, f"metric {self.name!r}")
            v._device = dev

    def _add(self, v, value):
        """``v += value`` in place on the device of ``value`` (never deferred)."""
        if isinstance(v, str):
            v = getattr(self, v)
        value = value if isinstance(value, ops.Tensor) else ops.convert_to_tensor(value)
        self._place(v, value.device)
        if np.dtype(value.dtype) != np.dtype(v.dtype):
            value = ops.cast(value, v.dtype)
        if tuple(value.shape) != tuple(v.shape):
            value = ops.broadcast_to(value, v.shape)
        v._apply_axpby(value, 1.0, 1.0)

    @property
    def variables(self):
        return list(self._variables)

    def reset_state(self):
        for v in self._variables:
            v.assign(np.zeros(v.shape, dtype=v.dtype))

    def reset_states(self):
        """The tf.keras 2 name of :meth:`reset_state`."""
        self.reset_state()

    def update_state(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}: a Metric subclass writes update_state(...)")

    def result(self):
        raise NotImplementedError(f"{type(self).__name__}: a Metric subclass writes result()")

    def __call__(self, *args, **kwargs):
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


def reduce_to_samplewise_values(values, sample_weight, reduce_fn, device, dtype="float32"):
    """Keras's rule: values reduced to one per sample (the weight's rank decides), times
    the weights; returns (values, weights or None)."""
    values = as_float(values, device, dtype)
    if sample_weight is not None:
        sw = as_float(sample_weight, device, dtype)
        values, sw = squeeze_or_expand_to_same_rank(values, sw)
        if values.ndim > sw.ndim:
            values = reduce_fn(values, axis=tuple(range(sw.ndim, values.ndim)))
        sw = ops.broadcast_to(sw, values.shape)
        values = ops.multiply(values, sw)
        if sw.ndim > 1:
            sw = reduce_fn(sw, axis=tuple(range(1, sw.ndim)))
        sample_weight = sw
    if values.ndim > 1:
        values = reduce_fn(values, axis=tuple(range(1, values.ndim)))
    return values, sample_weight


class Sum(Metric):
    """The (weighted) sum of every value given (``keras.metrics.Sum``)."""

    def __init__(self, name="sum", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable((), name="total")

    def update_state(self, values, sample_weight=None):
        dev = device_of(values, sample_weight)
        values, _ = reduce_to_samplewise_values(values, sample_weight, ops.sum, dev)
        self._add("total", ops.sum(values))

    def result(self):
        return ops.copy(self.total)  # not the variable: later updates must not change it


class Mean(Metric):
    """The (weighted) mean of the values given (``keras.metrics.Mean``): a sample's
    values are first averaged to one per sample; with ``sample_weight`` the mean is
    ``sum(w * v) / sum(w)``."""

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable((), name="total")
        self.count = self.add_variable((), name="count")

    def update_state(self, values, sample_weight=None):
        dev = device_of(values, sample_weight)
        if sample_weight is not None and np.ndim(sample_weight) == 0 and not isinstance(sample_weight, ops.Tensor):
            # a scalar weight (a batch size): weight every value by it
            v = as_float(values, dev, self.dtype)
            n = float(sample_weight) * (v.shape[0] if v.ndim else 1)
            if v.ndim > 1:
                v = ops.mean(v, axis=tuple(range(1, v.ndim)))
            self._add("total", ops.multiply(ops.sum(v), float(sample_weight)))
            self._add("count", ops.convert_to_tensor(np.float32(n), device=dev))
            return
        values, sw = reduce_to_samplewise_values(values, sample_weight, ops.mean, dev, self.dtype)
        self._add("total", ops.sum(values))
        if sw is not None:
            n = ops.sum(sw)
        else:
            n = ops.convert_to_tensor(np.float32(values.shape[0] if values.ndim else 1), device=dev)
        self._add("count", n)

    def result(self):
        return divide_no_nan(self.total, self.count)


class MeanMetricWrapper(Mean):
    """The running mean of a function ``fn(y_true, y_pred, **kwargs)`` of tensors that
    returns per-sample (or per-element) values (``keras.metrics.MeanMetricWrapper``)."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        if not callable(fn):
            raise TypeError(f"MeanMetricWrapper: fn must be a function fn(y_true, y_pred), received {fn!r}")
        super().__init__(name=name or getattr(fn, "__name__", type(fn).__name__), dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        dev = device_of(y_pred, y_true)
        p = as_float(y_pred, dev, _float_dtype(y_pred))
        if getattr(self._fn, "__module__", "").startswith("convcore."):
            t = y_true  # built-in functions take host labels as they are (no upload and read-back)
        else:
            t = as_float(y_true, dev, p.dtype)  # a user's function gets tensors, as Keras casts them
        values = self._fn(t, p, **self._fn_kwargs)
        return super().update_state(values, sample_weight=sample_weight)

    def get_config(self):
        return _losses._fn_config(super().get_config(), self._fn, self._fn_kwargs)

    @classmethod
    def from_config(cls, config):
        if "fn" not in config:  # a built-in subclass: its own arguments only
            return cls(**config)
        from . import _function_named
        return _losses._from_fn_config(cls, config, _function_named)
