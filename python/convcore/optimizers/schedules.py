"""Learning-rate schedules, as ``keras.optimizers.schedules``: callables of the optimizer
step that an optimizer takes as its ``learning_rate`` (it calls them with the number of
steps applied so far). Each returns a 0-d float32 tensor; the optimizer reads the value
as a Python float through ``_value(step)``, computed in float64 with Keras's formula."""
from __future__ import annotations

import math
import numbers
import reprlib

import numpy as np

__all__ = ["LearningRateSchedule", "ExponentialDecay", "InverseTimeDecay", "PiecewiseConstantDecay",
           "PolynomialDecay", "CosineDecay", "CosineDecayRestarts", "serialize", "deserialize"]


def _number(cls, arg, value, ok=lambda v: True, wanted="", integer=False):
    """``value`` as a finite float for which ``ok`` holds, else a Keras-style ValueError."""
    kinds = numbers.Integral if integer else numbers.Real
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, kinds):
        what = "an integer" if integer else "a number"
        raise ValueError(f"{cls}: {arg} must be {what}{' ' + wanted if wanted else ''}, received "
                         f"{arg}={reprlib.repr(value)}")
    try:
        v = float(value)
    except OverflowError:
        v = math.inf
    if not math.isfinite(v) or not ok(v):
        raise ValueError(f"{cls}: {arg} must be a finite number{' ' + wanted if wanted else ''}, received "
                         f"{arg}={reprlib.repr(value)}")
    if integer:
        return int(value)
    return value if type(value) in (int, float) else v  # get_config keeps what was given


def _flag(cls, arg, value):
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{cls}: {arg} must be True or False, received {arg}={reprlib.repr(value)}")
    return bool(value)


def _step(step):
    """The step as a float (an int, a float, a 0-d array or tensor)."""
    if hasattr(step, "numpy"):
        step = step.numpy()
    return float(np.asarray(step, dtype=np.float64))


class LearningRateSchedule:
    """Base class of learning-rate schedules: subclasses define ``__call__(step)`` and
    ``get_config()`` (``from_config(config)`` is ``cls(**config)``), as Keras's."""

    def __call__(self, step):
        from .. import ops
        return ops.convert_to_tensor(np.float32(self._value(step)))

    def _value(self, step):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must override "
                                  "`__call__(self, step)`.")

    def get_config(self):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must override `get_config()` in "
                                  "order to be serializable.")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class _StepDecay(LearningRateSchedule):
    """Base of ExponentialDecay and InverseTimeDecay: the same arguments and config, and
    the same progress ``step / decay_steps`` (floored with ``staircase``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase, name):
        c = type(self).__name__
        self.initial_learning_rate = _number(c, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _number(c, "decay_steps", decay_steps, lambda v: v > 0, "> 0")
        self.decay_rate = _number(c, "decay_rate", decay_rate)
        self.staircase = _flag(c, "staircase", staircase)
        self.name = name

    def _progress(self, step):
        p = _step(step) / self.decay_steps
        return math.floor(p) if self.staircase else p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_StepDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``; with
    ``staircase`` the exponent is floored."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="ExponentialDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def _value(self, step):
        return self.initial_learning_rate * self.decay_rate ** self._progress(step)


class InverseTimeDecay(_StepDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)`` (floored
    ``step / decay_steps`` with ``staircase``). tf.keras 2's ``decay=`` argument of the
    optimizers is this schedule with ``decay_steps=1``."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name="InverseTimeDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def _value(self, step):
        return self.initial_learning_rate / (1.0 + self.decay_rate * self._progress(step))


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after the last boundary."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        c = type(self).__name__
        if not isinstance(boundaries, (list, tuple)) or not isinstance(values, (list, tuple)):
            raise ValueError(f"{c}: boundaries and values must be lists, received boundaries="
                             f"{reprlib.repr(boundaries)}, values={reprlib.repr(values)}")
        if len(boundaries) != len(values) - 1:
            raise ValueError(f"{c}: the length of boundaries should be 1 less than the length of values. Received: "
                             f"boundaries={boundaries} of length {len(boundaries)}, and values={values} of length "
                             f"{len(values)}.")
        b = [_number(c, "boundaries", x) for x in boundaries]
        if any(x >= y for x, y in zip(b, b[1:])):
            raise ValueError(f"{c}: boundaries must be strictly increasing, received boundaries={boundaries}")
        self.boundaries = list(boundaries)
        self.values = [_number(c, "values", v) for v in values]
        self._b = b
        self.name = name

    def _value(self, step):
        s = _step(step)
        for b, v in zip(self._b, self.values):
            if s <= b:
                return v
        return self.values[-1]

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """``(initial - end) * (1 - step / decay_steps) ** power + end`` with ``step`` capped
    at ``decay_steps``; with ``cycle`` the horizon is the first multiple of
    ``decay_steps`` at or above ``step`` (``decay_steps`` itself at step 0)."""

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0, cycle=False,
                 name="PolynomialDecay"):
        c = type(self).__name__
        self.initial_learning_rate = _number(c, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _number(c, "decay_steps", decay_steps, lambda v: v > 0, "> 0")
        self.end_learning_rate = _number(c, "end_learning_rate", end_learning_rate)
        self.power = _number(c, "power", power)
        self.cycle = _flag(c, "cycle", cycle)
        self.name = name

    def _value(self, step):
        s, d = _step(step), self.decay_steps
        if self.cycle:
            d = d * (1.0 if s == 0 else math.ceil(s / d))
        else:
            s = min(s, d)
        return (self.initial_learning_rate - self.end_learning_rate) * (1.0 - s / d) ** self.power + \
            self.end_learning_rate

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "end_learning_rate": self.end_learning_rate, "power": self.power, "cycle": self.cycle,
                "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Cosine decay from ``initial_learning_rate`` (or, after a linear warmup of
    ``warmup_steps`` to ``warmup_target``, from ``warmup_target``) to ``alpha`` times it
    over ``decay_steps`` (SGDR without restarts)."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay", warmup_target=None,
                 warmup_steps=0):
        c = type(self).__name__
        self.initial_learning_rate = _number(c, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _number(c, "decay_steps", decay_steps, lambda v: v > 0, "> 0")
        self.alpha = _number(c, "alpha", alpha)
        self.name = name
        self.warmup_target = None if warmup_target is None else _number(c, "warmup_target", warmup_target)
        self.warmup_steps = _number(c, "warmup_steps", warmup_steps, lambda v: v >= 0, ">= 0")

    def _decay(self, s, start):
        cosine = 0.5 * (1.0 + math.cos(math.pi * (s / self.decay_steps)))
        return start * ((1.0 - self.alpha) * cosine + self.alpha)

    def _value(self, step):
        s = _step(step)
        if self.warmup_target is None:
            return self._decay(min(s, self.decay_steps), self.initial_learning_rate)
        s = min(s, self.decay_steps + self.warmup_steps)
        if s < self.warmup_steps:
            return (self.warmup_target - self.initial_learning_rate) * (s / self.warmup_steps) + \
                self.initial_learning_rate
        return self._decay(s - self.warmup_steps, self.warmup_target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR): the i-th period lasts
    ``first_decay_steps * t_mul ** i`` steps and starts at ``m_mul ** i`` times the
    initial rate; each period decays to ``alpha`` times its start."""

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0, alpha=0.0, name="SGDRDecay"):
        c = type(self).__name__
        self.initial_learning_rate = _number(c, "initial_learning_rate", initial_learning_rate)
        self.first_decay_steps = _number(c, "first_decay_steps", first_decay_steps, lambda v: v > 0, "> 0")
        self._t_mul = _number(c, "t_mul", t_mul, lambda v: v > 0, "> 0")
        self._m_mul = _number(c, "m_mul", m_mul)
        self.alpha = _number(c, "alpha", alpha)
        self.name = name

    def _value(self, step):
        f = _step(step) / self.first_decay_steps
        t = self._t_mul
        if t == 1.0:
            i = math.floor(f)
            f -= i
        else:
            i = math.floor(math.log(1.0 - f * (1.0 - t)) / math.log(t))
            sum_r = (1.0 - t ** i) / (1.0 - t)
            f = (f - sum_r) / t ** i
        cosine = 0.5 * self._m_mul ** i * (1.0 + math.cos(math.pi * f))
        return self.initial_learning_rate * ((1.0 - self.alpha) * cosine + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "first_decay_steps": self.first_decay_steps,
                "t_mul": self._t_mul, "m_mul": self._m_mul, "alpha": self.alpha, "name": self.name}


_SCHEDULES = {c.__name__: c for c in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay, PolynomialDecay,
                                      CosineDecay, CosineDecayRestarts)}


def serialize(learning_rate_schedule):
    """Keras's serialized form: ``{"module": "keras.optimizers.schedules", "class_name":
    ..., "config": ..., "registered_name": None}`` (real Keras loads it too)."""
    if not isinstance(learning_rate_schedule, LearningRateSchedule):
        raise TypeError(f"serialize: expected a LearningRateSchedule, received {reprlib.repr(learning_rate_schedule)}")
    cls = type(learning_rate_schedule).__name__
    return {"module": "keras.optimizers.schedules", "class_name": cls, "config": learning_rate_schedule.get_config(),
            "registered_name": None if cls in _SCHEDULES else cls}


def deserialize(config, custom_objects=None):
    """The schedule of ``serialize`` (``{"class_name": ..., "config": {...}}``);
    ``custom_objects`` maps the names of your own schedule classes to them."""
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str) or \
            not isinstance(config.get("config", {}), dict):
        raise ValueError("deserialize: expected a schedule config {'class_name': ..., 'config': {...}}, received "
                         f"{reprlib.repr(config)}")
    name = config["class_name"]
    known = dict(_SCHEDULES, **(custom_objects or {}))
    cls = known.get(name)
    if cls is None:
        raise ValueError(f"deserialize: unknown learning rate schedule {name!r}; the schedules are "
                         f"{', '.join(_SCHEDULES)}")
    try:
        return cls.from_config(dict(config.get("config", {})))
    except TypeError as e:
        raise ValueError(f"deserialize: bad config for {name}: {e}") from None
