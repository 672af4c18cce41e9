"""Weight initializers with Keras 3's classes, names, formulas and seeds
(``keras.initializers``): ``get`` / ``serialize`` / ``deserialize`` and
``initialize(init, shape, dtype)`` for ``Layer.add_weight``.

Fans come from the kernel shape as in Keras: ``fan_in = prod(kernel) * in``,
``fan_out = prod(kernel) * out``. An initializer returns a numpy array (Keras returns a
backend tensor); the layer wraps it in a Variable on its device.

Seeds follow Keras 3: an initializer with ``seed=n`` gives the same values at every call,
and so does an unseeded one (it draws its seed once, when it is made, from
:func:`convcore.backend.rng`, so :func:`convcore.set_seed` makes it reproducible). Two
unseeded initializer objects give different values.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from . import backend
from .utils import _lookup

__all__ = ["Initializer", "Constant", "Zeros", "Ones", "Identity", "RandomNormal", "RandomUniform",
           "TruncatedNormal", "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeNormal", "HeUniform",
           "LecunNormal", "LecunUniform", "Orthogonal", "get", "serialize", "deserialize", "initialize",
           "constant", "zeros", "ones", "identity", "random_normal", "random_uniform", "truncated_normal",
           "variance_scaling", "glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal",
           "lecun_uniform", "orthogonal"]

# 1 / the standard deviation of a unit normal truncated at +-2: Keras scales the
# truncated draws by it so the variance is the formula's.
_TRUNC_STD = 0.87962566103423978


def _fans(shape, input_axes=None, output_axes=None):
    """Keras's ``compute_fans``: (fan_in, fan_out) of a kernel shape."""
    shape = tuple(int(s) for s in shape)
    if input_axes is not None and output_axes is not None:
        return (math.prod(shape[a] for a in input_axes), math.prod(shape[a] for a in output_axes))
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return receptive * shape[-2], receptive * shape[-1]


def _shape(cls, shape):
    if isinstance(shape, (numbers.Integral,)) and not isinstance(shape, (bool, np.bool_)):
        shape = (shape,)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"{cls}: shape must be a tuple of non-negative integers, received shape={shape!r}") from None
    for s in shape:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral) or s < 0:
            raise ValueError(f"{cls}: shape must be a tuple of non-negative integers, received shape={shape!r}")
    return tuple(int(s) for s in shape)


def _dtype(cls, dtype, float_only):
    try:
        dt = np.dtype(dtype or backend.floatx())
    except TypeError:
        raise TypeError(f"{cls}: dtype must be a numeric dtype name, received dtype={dtype!r}") from None
    if float_only and dt.kind != "f":
        raise TypeError(f"{cls}: random values need a float dtype, received dtype={dt.name!r}")
    if dt.kind not in "biuf":
        raise TypeError(f"{cls}: dtype must be a numeric or boolean dtype, received dtype={dt.name!r}")
    return dt


def _truncated_normal(rng, mean, std, shape):
    """Normal draws redrawn until all lie within two standard deviations (as
    ``keras.random.truncated_normal``)."""
    out = rng.normal(0.0, 1.0, size=shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.normal(0.0, 1.0, size=int(bad.sum()))
        bad = np.abs(out) > 2.0
    return mean + std * out


class Initializer:
    """Base class of initializers: ``init(shape, dtype=None)`` returns an array of
    ``shape`` (dtype defaults to :func:`convcore.backend.floatx`). Subclasses implement
    ``__call__`` and ``get_config``; ``from_config(config)`` is ``cls(**config)``."""

    def __call__(self, shape, dtype=None):
        raise NotImplementedError("Initializer subclasses must implement the `__call__()` method.")

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def clone(self):
        return self.__class__.from_config(self.get_config())

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Constant(Initializer):
    """Every entry equal to ``value`` (a number; an array broadcastable to the shape is
    accepted too).

    Parameters
    ----------
    value : number or array_like, default 0.0
    """

    def __init__(self, value=0.0):
        a = np.asarray(value)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"Constant: value must be a number (or an array of numbers), received value={value!r}")
        self.value = value

    def __call__(self, shape, dtype=None):
        shape = _shape("Constant", shape)
        dt = _dtype("Constant", dtype, float_only=False)
        try:
            return np.ascontiguousarray(np.broadcast_to(np.asarray(self.value, dtype=dt), shape))
        except ValueError:
            raise ValueError(f"Constant: value of shape {np.shape(self.value)} cannot fill shape {shape}") from None

    def get_config(self):
        v = self.value
        if isinstance(v, np.ndarray) or isinstance(v, np.generic):
            v = v.tolist()
        return {"value": v}

    @classmethod
    def from_config(cls, config):
        value = config.get("value", 0.0)
        # Keras 3 saves an array value as {"class_name": "__numpy__", "config": {"value": [...]}}
        if isinstance(value, dict) and value.get("class_name") == "__numpy__":
            value = np.asarray(value["config"]["value"], dtype=value["config"].get("dtype"))
        return cls(**{**config, "value": value})


class Zeros(Initializer):
    """All zeros."""

    def __call__(self, shape, dtype=None):
        return np.zeros(_shape("Zeros", shape), dtype=_dtype("Zeros", dtype, float_only=False))


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape, dtype=None):
        return np.ones(_shape("Ones", shape), dtype=_dtype("Ones", dtype, float_only=False))


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D shapes only, as Keras; a non-square shape
    gets ``eye(rows, cols)``).

    Parameters
    ----------
    gain : float, default 1.0
    """

    def __init__(self, gain=1.0):
        from . import _checks
        self.gain = _checks.real("Identity", "gain", gain)

    def __call__(self, shape, dtype=None):
        shape = _shape("Identity", shape)
        if len(shape) != 2:
            raise ValueError("Identity matrix initializer can only be used for 2D matrices. "
                             f"Received: shape={shape} of rank {len(shape)}.")
        dt = _dtype("Identity", dtype, float_only=False)
        return (self.gain * np.eye(*shape)).astype(dt)

    def get_config(self):
        return {"gain": self.gain}


class RandomInitializer(Initializer):
    """Base of the random initializers: the seed rule of Keras 3 (see the module)."""

    def __init__(self, seed=None):
        from . import _checks
        if seed is not None:
            seed = _checks.integer(type(self).__name__, "seed", seed)
        self.seed = seed
        # Keras 3 draws an unseeded initializer's seed once, at construction.
        self._seed = backend.next_seed() if seed is None else seed % (2 ** 64)

    def _rng(self):
        return np.random.default_rng(self._seed)

    def get_config(self):
        return {"seed": self.seed}


class _MeanStddev(RandomInitializer):
    """Base of the normal-draw initializers: ``mean``, ``stddev`` (>= 0) and the seed."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        from . import _checks
        self.mean = _checks.real(type(self).__name__, "mean", mean)
        self.stddev = _checks.real(type(self).__name__, "stddev", stddev, minimum=0)
        super().__init__(seed)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


class RandomNormal(_MeanStddev):
    """Normal draws with ``mean`` and ``stddev``.

    Parameters
    ----------
    mean : float, default 0.0
    stddev : float, default 0.05
    seed : int, optional
    """

    def __call__(self, shape, dtype=None):
        shape, dt = _shape("RandomNormal", shape), _dtype("RandomNormal", dtype, True)
        return self._rng().normal(self.mean, self.stddev, size=shape).astype(dt)


class TruncatedNormal(_MeanStddev):
    """Normal draws with ``mean`` and ``stddev``, redrawn until within two standard
    deviations of the mean (so the standard deviation of the values is about
    ``0.88 * stddev``, as Keras).

    Parameters
    ----------
    mean : float, default 0.0
    stddev : float, default 0.05
    seed : int, optional
    """

    def __call__(self, shape, dtype=None):
        shape, dt = _shape("TruncatedNormal", shape), _dtype("TruncatedNormal", dtype, True)
        return _truncated_normal(self._rng(), self.mean, self.stddev, shape).astype(dt)


class RandomUniform(RandomInitializer):
    """Uniform draws in ``[minval, maxval)``.

    Parameters
    ----------
    minval : float, default -0.05
    maxval : float, default 0.05
    seed : int, optional
    """

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        from . import _checks
        self.minval = _checks.real("RandomUniform", "minval", minval)
        self.maxval = _checks.real("RandomUniform", "maxval", maxval)
        if self.maxval < self.minval:
            raise ValueError(f"RandomUniform: maxval must be >= minval, received minval={minval!r}, "
                             f"maxval={maxval!r}")
        super().__init__(seed)

    def __call__(self, shape, dtype=None):
        shape, dt = _shape("RandomUniform", shape), _dtype("RandomUniform", dtype, True)
        return self._rng().uniform(self.minval, self.maxval, size=shape).astype(dt)

    def get_config(self):
        return {**super().get_config(), "minval": self.minval, "maxval": self.maxval}


_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")


class VarianceScaling(RandomInitializer):
    """Draws whose variance is ``scale / n``, ``n`` the fan of ``mode`` (fan_in,
    fan_out, or their mean for fan_avg, at least 1): a normal truncated at two standard
    deviations (``distribution='truncated_normal'``, also called 'normal'), an untruncated
    one, or a uniform in ``[-sqrt(3 scale / n), sqrt(3 scale / n)]``.

    Parameters
    ----------
    scale : float, default 1.0
        Positive.
    mode : {'fan_in', 'fan_out', 'fan_avg'}, default 'fan_in'
    distribution : {'truncated_normal', 'untruncated_normal', 'uniform'}, default 'truncated_normal'
    seed : int, optional
    input_axes, output_axes : sequence of int, optional
        The axes whose sizes multiply to fan_in / fan_out (both, or neither: Keras 3.15).
    """

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None, input_axes=None,
                 output_axes=None):
        from . import _checks
        cls = type(self).__name__
        self.scale = _checks.real(cls, "scale", scale, minimum=0.0, strict_min=True)
        self.mode = _checks.choice(cls, "mode", mode, _MODES)
        if not isinstance(distribution, str):
            raise TypeError(f"{cls}: distribution must be a string, one of {_DISTRIBUTIONS}; "
                            f"received distribution={distribution!r}")
        d = distribution.lower()
        d = "truncated_normal" if d == "normal" else d
        self.distribution = _checks.choice(cls, "distribution", d, _DISTRIBUTIONS)
        self.input_axes = None if input_axes is None else [_checks.integer(cls, "input_axes", a) for a in input_axes]
        self.output_axes = None if output_axes is None else [_checks.integer(cls, "output_axes", a)
                                                             for a in output_axes]
        super().__init__(seed)

    def __call__(self, shape, dtype=None):
        cls = type(self).__name__
        shape, dt = _shape(cls, shape), _dtype(cls, dtype, True)
        try:
            fan_in, fan_out = _fans(shape, self.input_axes, self.output_axes)
        except IndexError:
            raise ValueError(f"{cls}: input_axes={self.input_axes} / output_axes={self.output_axes} are not axes "
                             f"of shape {shape}") from None
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, n)
        rng = self._rng()
        if self.distribution == "truncated_normal":
            a = _truncated_normal(rng, 0.0, math.sqrt(scale) / _TRUNC_STD, shape)
        elif self.distribution == "untruncated_normal":
            a = rng.normal(0.0, math.sqrt(scale), size=shape)
        else:
            lim = math.sqrt(3.0 * scale)
            a = rng.uniform(-lim, lim, size=shape)
        return a.astype(dt)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "input_axes": self.input_axes, "output_axes": self.output_axes}


_PRESET_PARAMETERS = "Parameters\n----------\nseed : int, optional\ninput_axes, output_axes : optional\n"


def _preset(name, scale, mode, distribution, summary):
    """A VarianceScaling subclass of fixed scale, mode and distribution (Keras's named
    initializers); its docstring is ``summary`` and the arguments it keeps."""
    doc = summary + "\n\n" + _PRESET_PARAMETERS

    def __init__(self, seed=None, input_axes=None, output_axes=None):
        VarianceScaling.__init__(self, scale=scale, mode=mode, distribution=distribution, seed=seed,
                                 input_axes=input_axes, output_axes=output_axes)

    def get_config(self):
        return {"seed": self.seed, "input_axes": self.input_axes, "output_axes": self.output_axes}

    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config, "__doc__": doc,
                                           "__module__": __name__, "__qualname__": name})


GlorotUniform = _preset("GlorotUniform", 1.0, "fan_avg", "uniform",
                        "Uniform in ``[-l, l]``, ``l = sqrt(6 / (fan_in + fan_out))`` (Xavier uniform).")
GlorotNormal = _preset("GlorotNormal", 1.0, "fan_avg", "truncated_normal",
                       "Truncated normal with variance ``2 / (fan_in + fan_out)`` (Xavier normal).")
HeNormal = _preset("HeNormal", 2.0, "fan_in", "truncated_normal",
                   "Truncated normal with variance ``2 / fan_in``.")
HeUniform = _preset("HeUniform", 2.0, "fan_in", "uniform",
                    "Uniform in ``[-l, l]``, ``l = sqrt(6 / fan_in)``.")
LecunNormal = _preset("LecunNormal", 1.0, "fan_in", "truncated_normal",
                      "Truncated normal with variance ``1 / fan_in``.")
LecunUniform = _preset("LecunUniform", 1.0, "fan_in", "uniform",
                       "Uniform in ``[-l, l]``, ``l = sqrt(3 / fan_in)``.")


class Orthogonal(RandomInitializer):
    """An orthogonal matrix (of the shape flattened to ``(prod(shape[:-1]),
    shape[-1])``) times ``gain``: the Q of the QR decomposition of a normal draw, with
    the signs of R's diagonal (Keras's construction). Rows or columns, whichever are
    fewer, are orthonormal.

    Parameters
    ----------
    gain : float, default 1.0
    seed : int, optional
    """

    def __init__(self, gain=1.0, seed=None):
        from . import _checks
        self.gain = _checks.real("Orthogonal", "gain", gain)
        super().__init__(seed)

    def __call__(self, shape, dtype=None):
        shape, dt = _shape("Orthogonal", shape), _dtype("Orthogonal", dtype, True)
        if len(shape) < 2:
            raise ValueError("Orthogonal: the tensor to initialize must be at least two-dimensional. "
                             f"Received: shape={shape} of rank {len(shape)}.")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = self._rng().normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.where(np.diag(r) < 0, -1.0, 1.0)  # sign(0) = 1: keep a full-rank Q
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(dt)

    def get_config(self):
        return {**super().get_config(), "gain": self.gain}


# Snake-case aliases, as keras.initializers: the classes themselves.
constant, zeros, ones, identity = Constant, Zeros, Ones, Identity
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
variance_scaling, orthogonal = VarianceScaling, Orthogonal
glorot_uniform, glorot_normal, he_normal, he_uniform = GlorotUniform, GlorotNormal, HeNormal, HeUniform
lecun_normal, lecun_uniform = LecunNormal, LecunUniform

_CLASSES = (Constant, Zeros, Ones, Identity, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling,
            GlorotUniform, GlorotNormal, HeNormal, HeUniform, LecunNormal, LecunUniform, Orthogonal)


def _snake(name):
    import re
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


_TABLE = {c.__name__: c for c in _CLASSES}
_TABLE.update({_snake(c.__name__): c for c in _CLASSES})
_TABLE.update({"normal": RandomNormal, "uniform": RandomUniform, "one": Ones, "zero": Zeros,
               "IdentityInitializer": Identity, "OrthogonalInitializer": Orthogonal})
#: The names :func:`get` accepts (snake-case first).
INITIALIZERS = tuple(_lookup.valid_names(_TABLE))


class _FromArray:
    """The initializer of a given array (Keras's ``get(array)``): its values, for its
    own shape only."""

    def __init__(self, value):
        self.value = np.asarray(value)

    def __call__(self, shape, dtype=None):
        shape = _shape("initializer", shape)
        if shape != self.value.shape:
            raise ValueError(f"Expected `shape` to be {self.value.shape} for direct tensor as initializer. "
                             f"Received shape={shape}")
        return self.value.astype(_dtype("initializer", dtype, float_only=False))

    def get_config(self):
        return {"value": self.value.tolist()}


def deserialize(config, custom_objects=None):
    """The initializer of a config: a ``{"class_name", "config"}`` dict (Keras 2 or 3
    form) or a name."""
    return _lookup.deserialize("initializer", config, _TABLE, custom_objects, Initializer)


def get(identifier):
    """The initializer an identifier names: a name ('glorot_uniform', 'GlorotUniform',
    a registered one), a config dict, an Initializer, a class (instantiated), a
    callable ``(shape, dtype) -> array``, or an array (its own values). ``None`` gives
    None, as Keras (``add_weight`` then uses its default)."""
    if identifier is None:
        return None
    if isinstance(identifier, (str, dict)):
        return deserialize(identifier)
    if isinstance(identifier, (np.ndarray, np.generic)) or type(identifier).__name__ in ("Tensor", "Variable"):
        return _FromArray(np.asarray(identifier))
    if isinstance(identifier, type):
        if not callable(getattr(identifier, "__call__", None)):
            raise ValueError(f"Could not interpret initializer identifier: {identifier!r}")
        return identifier()
    if callable(identifier) and not isinstance(identifier, (bool, numbers.Number)):
        return identifier
    raise ValueError(f"Could not interpret initializer identifier: {identifier!r}; valid initializers are "
                     f"{', '.join(_lookup.valid_names(_TABLE, True))} (or their class names), "
                     f"a config dict, an Initializer or a function (shape, dtype)")


def serialize(initializer):
    """``{"class_name": ..., "config": {...}}`` for an Initializer (a user class also
    gets its "registered_name"); a function's registered (or plain) name."""
    return _lookup.to_dict("initializer", initializer, set(_CLASSES) | {_FromArray})


def initialize(init, shape, dtype):
    """An array of ``shape`` and ``dtype`` from ``init``: anything :func:`get` accepts
    (a name is resolved here; None is Keras's add_weight default: glorot_uniform for a
    float dtype, zeros otherwise)."""
    if init is None:
        init = "glorot_uniform" if np.dtype(dtype or backend.floatx()).kind == "f" else "zeros"
    if not callable(init) or isinstance(init, type):
        init = get(init)
    # reshape: ascontiguousarray gives a 0-d array one axis
    return np.ascontiguousarray(np.asarray(init(tuple(shape), dtype), dtype=dtype)).reshape(tuple(shape))
