"""The optimizer base class, as Keras 3's ``keras.optimizers.Optimizer``: the arguments
every optimizer takes (learning rate as a float, a schedule or a callable; tf.keras 2's
``lr=`` and ``decay=``; weight decay; clipping; loss scaling), the per-variable state,
the step (``apply`` / ``apply_gradients``), constraints and configs. A subclass names
its native update rule, its state slots and its hyperparameters; each variable's update
is one kernel, in place, on the variable's device (``backend.optimizer_update``)."""
from __future__ import annotations

import inspect as _inspect
import math
import numbers
import re
import reprlib

import numpy as np

from .. import ops
from ..tensor import Tensor, Variable
from . import schedules as schedules_mod
from .schedules import LearningRateSchedule


class _ArgumentError(ValueError):
    """A bad optimizer argument; ``arg`` names it (``deserialize`` reports it as the
    config key)."""

    def __init__(self, arg, message):
        super().__init__(message)
        self.arg = arg


def _real(opt, arg, value, ok, wanted):
    """``value`` as a finite float for which ``ok(v)`` holds, else a ValueError naming
    ``arg``: an infinite or NaN rate turns every weight into NaN on the first step, and
    a bool or a string is a mistake, not a number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise _ArgumentError(arg, f"{opt}: {arg} must be a real number {wanted}, received {arg}={reprlib.repr(value)}")
    try:
        v = float(value)
    except (OverflowError, ValueError):
        v = math.nan
    if not math.isfinite(v) or not ok(v):
        raise _ArgumentError(arg, f"{opt}: {arg} must be a finite number {wanted}, received "
                                  f"{arg}={reprlib.repr(value)}")
    return v


def _optional_real(opt, arg, value, ok, wanted):
    return None if value is None else _real(opt, arg, value, ok, wanted)


def _flag(opt, arg, value):
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise _ArgumentError(arg, f"{opt}: {arg} must be True or False, received {arg}={reprlib.repr(value)}")


def _unit(opt, arg, value, open_top=False):
    """A coefficient in [0, 1] (or [0, 1) where 1 divides by zero)."""
    if open_top:
        return _real(opt, arg, value, lambda v: 0.0 <= v < 1.0, "in [0, 1)")
    return _real(opt, arg, value, lambda v: 0.0 <= v <= 1.0, "in [0, 1]")


def _positive(opt, arg, value):
    return _real(opt, arg, value, lambda v: v > 0, "> 0")


def _is_schedule_like(value):
    return isinstance(value, LearningRateSchedule) or (callable(value) and not isinstance(value, type))


def _learning_rate(opt, value):
    """A float learning rate (> 0), a LearningRateSchedule or a callable of no arguments."""
    if _is_schedule_like(value):
        return value
    return _real(opt, "learning_rate", value, lambda v: v > 0,
                 "> 0 (or a LearningRateSchedule, or a callable of no arguments)")


def _state_variable(var, init, name):
    """A non-trainable Variable shaped as ``var`` (its dtype, its device) filled with
    ``init``: an optimizer slot. ``Variable(array)`` copies its initial value, so a slot
    made from ``np.full`` cost two buffers the size of the weights, both written at the
    first step (ResNet18: 2 x 47 MB, the copy's pages faulted in, at 4 KiB a fault, while
    the step's activations were alive). Here the Variable is made on an empty array and
    then holds one buffer: for zeros, ``np.zeros`` (calloc: a large one is fresh pages
    from the OS, first touched by the update kernel's worker threads, not by the main
    thread)."""
    v = Variable(np.zeros((0,), dtype=var.dtype), dtype=var.dtype, trainable=False, name=name)
    value = np.zeros(var.shape, dtype=var.dtype) if init == 0 else np.full(var.shape, init, dtype=var.dtype)
    # as Variable._move does: the buffer and its device together
    v._data, v._device = _device_backend(var.device).put(value, f"variable {name!r}"), var.device
    return v


def _device_backend(device):
    from .. import device as device_mod
    return device_mod.backend(device)


class _OptimizerNumber:
    """An optimizer's value as a plain number (of the subclass's number type) that also
    answers Keras's variable idioms: ``numpy()``, ``assign(v)`` (which sets the
    optimizer's attribute ``_attr``); a copy or a pickle is the plain number (not the
    optimizer)."""

    def __new__(cls, value, optimizer):
        self = super().__new__(cls, value)
        self._optimizer = optimizer
        return self

    def numpy(self):
        return self._numpy_type(self)

    def __reduce__(self):
        return self._plain, (self._plain(self),)

    def assign(self, value):
        setattr(self._optimizer, self._attr, value)
        return getattr(self._optimizer, self._attr)


class _LearningRate(_OptimizerNumber, float):
    """The current learning rate: a float that also answers Keras's variable idioms
    (``opt.learning_rate.numpy()``, ``opt.learning_rate.assign(1e-4)``)."""
    _plain, _numpy_type, _attr = float, np.float32, "learning_rate"


class _Iterations(_OptimizerNumber, int):
    """The number of steps applied: an int with Keras's variable idioms
    (``opt.iterations.numpy()``, ``opt.iterations.assign(0)``)."""
    _plain, _numpy_type, _attr = int, np.int64, "iterations"


class Optimizer:
    """Base class of the optimizers (Keras 3's ``keras.optimizers.Optimizer``).

    Parameters common to every optimizer: ``learning_rate`` (a float, a
    :class:`~convcore.optimizers.schedules.LearningRateSchedule` called with the number
    of steps applied so far, or a callable of no arguments); ``weight_decay``
    (decoupled: ``v -= v * weight_decay * lr`` before each update); ``clipnorm`` (each
    gradient to that L2 norm), ``clipvalue`` (each element to ``[-clipvalue,
    clipvalue]``) or ``global_clipnorm`` (all gradients of a step together), at most
    one of them; ``loss_scale_factor`` (gradients are divided by it first); ``name``.
    tf.keras 2's ``lr=`` (an alias of ``learning_rate``) and ``decay=`` (``lr / (1 +
    decay * iterations)``, kept as an ``InverseTimeDecay`` schedule so its config is
    Keras 3's) are accepted. ``gradient_accumulation_steps=n`` applies the mean gradient
    of every n calls (``iterations`` then counts applied updates). ``use_ema=True`` is
    refused (not implemented).

    A subclass of your own follows Keras's API: ``build(var_list)`` creating state with
    ``add_variable_from_reference`` / ``add_variable``, ``update_step(gradient,
    variable, learning_rate)`` written with ``convcore.ops`` and ``self.assign`` /
    ``assign_add`` / ``assign_sub``, and ``get_config``.
    """

    #: native rule of ``_core.optimizer_update``
    _rule = None
    #: arguments get_config always writes (the others only when not at their default)
    _always = ()

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        c = type(self).__name__
        lr = kwargs.pop("lr", None)
        decay = kwargs.pop("decay", None)
        if kwargs:
            raise ValueError(f"{c}: argument(s) not recognized: {', '.join(sorted(kwargs))} (the arguments are "
                             f"{', '.join(self._arguments())}, and tf.keras 2's lr and decay)")
        if lr is not None:
            default = _inspect.signature(type(self).__init__).parameters["learning_rate"].default
            if learning_rate is not default and learning_rate != default and learning_rate != lr:
                raise _ArgumentError("lr", f"{c}: lr is an alias of learning_rate; received both, with different "
                                           f"values: lr={reprlib.repr(lr)}, learning_rate={reprlib.repr(learning_rate)}")
            learning_rate = lr
        learning_rate = _learning_rate(c, learning_rate)
        self._from_decay = False
        if decay is not None:
            d = _real(c, "decay", decay, lambda v: v >= 0, ">= 0")
            if _is_schedule_like(learning_rate):
                raise _ArgumentError("decay", f"{c}: decay (tf.keras 2's time-based decay) cannot be combined with "
                                              f"a learning-rate schedule or callable; received decay={d} and "
                                              f"learning_rate={reprlib.repr(learning_rate)} (put the decay in the "
                                              "schedule, e.g. InverseTimeDecay)")
            if d > 0:
                learning_rate = schedules_mod.InverseTimeDecay(learning_rate, 1, d)
                self._from_decay = True
        self._learning_rate = learning_rate
        self.weight_decay = _optional_real(c, "weight_decay", weight_decay, lambda v: v >= 0, ">= 0")
        self.clipnorm = _optional_real(c, "clipnorm", clipnorm, lambda v: v >= 0, ">= 0")
        self.clipvalue = _optional_real(c, "clipvalue", clipvalue, lambda v: v >= 0, ">= 0")
        self.global_clipnorm = _optional_real(c, "global_clipnorm", global_clipnorm, lambda v: v >= 0, ">= 0")
        given = [k for k, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue), ("global_clipnorm", global_clipnorm))
                 if v is not None]
        if len(given) > 1:
            raise _ArgumentError(given[1], f"{c}: only one of clipnorm, clipvalue and global_clipnorm can be set. "
                                           f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                                           f"global_clipnorm={global_clipnorm}")
        self.use_ema = _flag(c, "use_ema", use_ema)
        self.ema_momentum = _unit(c, "ema_momentum", ema_momentum)
        if ema_overwrite_frequency is not None and (isinstance(ema_overwrite_frequency, bool) or not isinstance(
                ema_overwrite_frequency, numbers.Integral) or ema_overwrite_frequency < 1):
            raise _ArgumentError("ema_overwrite_frequency", f"{c}: ema_overwrite_frequency must be an integer >= 1 "
                                 f"or None, received ema_overwrite_frequency={reprlib.repr(ema_overwrite_frequency)}")
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = _optional_real(c, "loss_scale_factor", loss_scale_factor, lambda v: v > 0, "> 0")
        if gradient_accumulation_steps is not None and (
                isinstance(gradient_accumulation_steps, (bool, np.bool_)) or
                not isinstance(gradient_accumulation_steps, numbers.Integral) or gradient_accumulation_steps < 2):
            raise _ArgumentError("gradient_accumulation_steps", f"{c}: gradient_accumulation_steps must be an "
                                 "integer >= 2 or None, received gradient_accumulation_steps="
                                 f"{reprlib.repr(gradient_accumulation_steps)}")
        self.gradient_accumulation_steps = None if gradient_accumulation_steps is None else \
            int(gradient_accumulation_steps)
        self._accumulators = {}
        self._averages = []
        if name is None:
            name = c.lower()
        if not isinstance(name, str):
            raise _ArgumentError("name", f"{c}: name must be a string, received name={reprlib.repr(name)}")
        self.name = name
        self._iterations = 0
        self._slots = {}
        self._trainable_variables = []
        self.built = False
        self._exclude_ids = set()
        self._exclude_pattern = None

    # ------------------------------------------------------------------ arguments
    @classmethod
    def _arguments(cls):
        return [p for p, v in _inspect.signature(cls.__init__).parameters.items()
                if p != "self" and v.kind is not _inspect.Parameter.VAR_KEYWORD]

    # ------------------------------------------------------------------ learning rate
    def _current_learning_rate(self):
        """The rate of the next step as a float (a schedule at ``iterations``)."""
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            # ours: the float64 value directly; a user's subclass through its __call__
            v = lr._value(self._iterations) if type(lr).__call__ is LearningRateSchedule.__call__ \
                else lr(self._iterations)
        elif callable(lr):
            v = lr()
        else:
            return lr
        if isinstance(v, Tensor):
            v = v.numpy()
        return float(np.asarray(v, dtype=np.float64))

    @property
    def learning_rate(self):
        """The current learning rate as a float (a schedule's value at ``iterations``);
        set a float, a schedule or a callable."""
        return _LearningRate(self._current_learning_rate(), self)

    @learning_rate.setter
    def learning_rate(self, value):
        c = type(self).__name__
        value = _learning_rate(c, value)
        if _is_schedule_like(value):
            self._learning_rate, self._from_decay = value, False
        elif self._from_decay:
            self._learning_rate.initial_learning_rate = value  # tf.keras 2: lr is the rate decay divides
        elif isinstance(self._learning_rate, LearningRateSchedule):
            raise TypeError(f"{c}: this optimizer was created with a LearningRateSchedule as its learning_rate, "
                            "hence its learning rate is not settable to a number; create the optimizer with a "
                            "float learning_rate if you need to set it")
        else:
            self._learning_rate = value

    lr = learning_rate  # tf.keras 2's name

    @property
    def iterations(self):
        """The number of steps applied (an int; ``.numpy()`` and ``.assign()`` work as
        on Keras's variable)."""
        n = self.gradient_accumulation_steps
        return _Iterations(self._iterations // n if n else self._iterations, self)

    @iterations.setter
    def iterations(self, value):
        from .. import _checks
        self._iterations = _checks.integer(type(self).__name__, "iterations", value, minimum=0) * \
            (self.gradient_accumulation_steps or 1)

    # ------------------------------------------------------------------ state
    def _slot_spec(self):
        """Three entries (state name, initial value) or None, in the native rule's order
        (a subclass of your own keeps its state itself: none here)."""
        return (None, None, None)

    def _hyper(self, lr):
        """The native rule's hyperparameters for this step (``lr`` first)."""
        raise NotImplementedError

    def _slots_of(self, var):
        """The state variables of ``var`` (None where the rule has no slot), created
        at the first step, on var's device (and following it if it moves)."""
        s = self._slots.get(id(var))
        if s is None or s[0] is not var:
            made = []
            for spec in self._slot_spec():
                if spec is None:
                    made.append(None)
                    continue
                slot_name, init = spec
                made.append(_state_variable(var, init, f"{var.name}_{slot_name}"))
            s = self._slots[id(var)] = (var, made)
        for slot in s[1]:
            if slot is not None and slot.device != var.device:
                slot._move(var.device)
        return s[1]

    def build(self, var_list):
        """Create the state of every variable of ``var_list`` (the first step does it
        otherwise)."""
        var_list = list(var_list)
        for v in var_list:
            if not isinstance(v, Variable):
                raise TypeError(f"{type(self).__name__}.build: expected Variables, received a {type(v).__name__}")
            self._slots_of(v)
        self._trainable_variables = var_list
        self._indices = {id(v): i for i, v in enumerate(var_list)}
        if self.use_ema:
            self._averages = [_state_variable(v, 0.0, f"{v.name}_average") for v in var_list]
        self.built = True

    # --- Keras's API for optimizers of your own (update_step)
    def _get_variable_index(self, variable):
        """The index of ``variable`` in the list ``build`` received."""
        try:
            return self._indices[id(variable)]
        except (AttributeError, KeyError):
            raise ValueError(f"{type(self).__name__}: variable {getattr(variable, 'name', variable)!r} is not one "
                             "this optimizer was built with") from None

    def add_variable(self, shape, initializer="zeros", dtype=None, aggregation="none", name=None):
        """A state variable (not trainable) on the device of the variables being
        optimized (the CPU before ``build``)."""
        from .. import initializers
        dtype = dtype or "float32"
        device = self._trainable_variables[0].device if self._trainable_variables else "cpu"
        init = initializers.get(initializer)
        shape = tuple(shape)
        v = Variable(np.asarray(init(shape, dtype), dtype=dtype), dtype=dtype, trainable=False, name=name,
                     device=device)
        self._own_variables = getattr(self, "_own_variables", []) + [v]
        return v

    def add_variable_from_reference(self, reference_variable, name=None, initializer="zeros"):
        """A state variable shaped as ``reference_variable``, on its device and in its
        dtype (named ``<variable>_<name>``)."""
        from .. import initializers
        ref = reference_variable
        init = initializers.get(initializer)
        v = Variable(np.asarray(init(tuple(ref.shape), ref.dtype), dtype=ref.dtype), dtype=ref.dtype,
                     trainable=False, name=f"{ref.name}_{name}" if name else ref.name, device=ref.device)
        self._own_variables = getattr(self, "_own_variables", []) + [v]
        return v

    def add_optimizer_variables(self, trainable_variables, name, initializer="zeros"):
        """One state variable per trainable variable (a list), or one list per name of
        a list of names, as Keras."""
        if isinstance(name, (list, tuple)):
            return tuple(self.add_optimizer_variables(trainable_variables, n, initializer) for n in name)
        return [self.add_variable_from_reference(v, name, initializer) for v in trainable_variables]

    @staticmethod
    def _operand(variable, value):
        v = value if isinstance(value, Tensor) else ops.convert_to_tensor(value, dtype=variable.dtype,
                                                                           device=variable.device)
        if v.device != variable.device:
            raise ValueError(f"assign: the value is on {v.device}, variable {variable.name!r} on {variable.device}")
        if tuple(v.shape) != tuple(variable.shape):
            v = ops.broadcast_to(v, tuple(variable.shape))
        if v._data is variable._data:
            v = v * 1.0  # the in-place kernels need two buffers
        return v

    def assign(self, variable, value):
        """``variable = value`` in place, on the variable's device (skipped by a
        tripped GPU step guard, as the built-in updates)."""
        v = self._operand(variable, value)
        if variable.device == "cpu":
            variable.assign(v)
        else:
            variable._apply_axpby(v, 0.0, 1.0)

    def assign_add(self, variable, value):
        variable._apply_axpby(self._operand(variable, value), 1.0, 1.0)

    def assign_sub(self, variable, value):
        variable._apply_axpby(self._operand(variable, value), 1.0, -1.0)

    def update_step(self, gradient, variable, learning_rate):
        """One variable's update (a subclass of your own defines it; the built-in
        optimizers run a native kernel instead)."""
        raise NotImplementedError(f"{type(self).__name__} must define update_step(gradient, variable, learning_rate)")

    @property
    def variables(self):
        """The optimizer's state variables (slots of every variable it updated)."""
        return [s for _, made in self._slots.values() for s in made if s is not None] + \
            list(getattr(self, "_own_variables", [])) + [a for _, a in self._accumulators.values()] + \
            list(self._averages)

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Leave the variables of ``var_list``, and those whose name contains one of
        ``var_names``, out of the weight decay (as Keras, before the first step)."""
        if self.built:
            raise ValueError(f"{type(self).__name__}: exclude_from_weight_decay() can only be configured before the "
                             "optimizer is built")
        self._exclude_ids = {id(v) for v in (var_list or [])}
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None

    def _use_weight_decay(self, var):
        if id(var) in self._exclude_ids:
            return False
        return not (self._exclude_pattern is not None and self._exclude_pattern.search(var.name or ""))

    # ------------------------------------------------------------------ steps
    def apply_gradients(self, grads_and_vars):
        """``apply_gradients(zip(grads, variables))``: update each variable in place from
        its gradient (None gradients are skipped); returns ``iterations``."""
        pairs = list(grads_and_vars)
        for p in pairs:
            if not isinstance(p, (tuple, list)) or len(p) != 2:
                raise TypeError(f"{type(self).__name__}.apply_gradients: expected (gradient, variable) pairs, "
                                f"received {reprlib.repr(p)}")
        self.apply([g for g, _ in pairs], [v for _, v in pairs])
        return self.iterations

    def apply(self, grads, trainable_variables=None):
        """Update ``trainable_variables`` in place from ``grads`` (one per variable; None
        gradients are skipped). Without variables, those of ``build`` are updated."""
        c = type(self).__name__
        grads = list(grads)
        if trainable_variables is None:
            if not self.built:
                raise ValueError(f"{c}.apply: when passing grads without variables, the optimizer must already be "
                                 "built on a list of variables; call optimizer.build(trainable_variables) first")
            variables = self._trainable_variables
        else:
            variables = list(trainable_variables)
        if len(grads) != len(variables):
            raise ValueError(f"{c}.apply: received {len(grads)} gradients for {len(variables)} variables")
        if not grads:
            return
        for v in variables:
            if not isinstance(v, Variable):
                raise TypeError(f"{c}.apply_gradients: expected (gradient, Variable) pairs, got a "
                                f"{type(v).__name__} as the variable")
        if not self.built:
            self.build(variables)
        pairs = []
        for g, v in zip(grads, variables):
            if g is None:
                continue
            g = ops.convert_to_tensor(g, device=v.device)
            if tuple(g.shape) != tuple(v.shape):
                raise ValueError(f"{c}.apply_gradients: gradient of shape {g.shape} for variable {v.name!r} of "
                                 f"shape {v.shape}")
            pairs.append((g, v))
        if not pairs:
            raise ValueError(f"{c}.apply_gradients: no gradients provided for any variable")
        gs = [g for g, _ in pairs]
        if self.loss_scale_factor is not None:
            gs = [g / self.loss_scale_factor for g in gs]
        n = self.gradient_accumulation_steps
        if n:
            accs = [self._accumulator(v) for _, v in pairs]
            if (self._iterations + 1) % n:
                # not an update step: only the running sum moves (guarded on the GPU)
                for g, a in zip(gs, accs):
                    a._apply_axpby(g, 1.0, 1.0)
                self._ema_step()
                self._apply_constraints(pairs)
                self._iterations += 1
                return
            gs = [(g + a) / n for g, a in zip(gs, accs)]
            for a in accs:
                a._apply_axpby(ops.zeros_like(a), 0.0, 1.0)
        lr = self._current_learning_rate()
        gs = self._clip(gs)
        self._before_step([v for _, v in pairs])
        hyper = self._hyper(lr) if self._rule is not None else None
        clipvalue = self.clipvalue if self.clipvalue else None
        for g, (_, v) in zip(gs, pairs):
            wd = self.weight_decay * lr if self.weight_decay and self._use_weight_decay(v) else 0.0
            if self._rule is None:
                self._user_step(g, v, lr, wd, clipvalue)
                continue
            slots = [None if s is None else s._data for s in self._slots_of(v)]
            ops.core.backend(v).optimizer_update(self._rule, v._data, g._data, slots, hyper, wd, clipvalue)
            v._version += 1
        self._ema_step()
        self._apply_constraints(pairs)
        self._iterations += 1

    def _ema_step(self):
        """Keras's moving averages of the weights (the first step copies them), and
        their periodic write-back; in-place kernels, guarded on the GPU."""
        if not self.use_ema:
            return
        m = self.ema_momentum if self.iterations != 0 else 0.0
        for v, avg in zip(self._trainable_variables, self._averages):
            avg._move(v.device)
            avg._apply_axpby(v, m, 1.0 - m)
        f = self.ema_overwrite_frequency
        if f and (self.iterations + 1) % f == 0:
            self.finalize_variable_values(self._trainable_variables)

    def finalize_variable_values(self, var_list):
        """With ``use_ema``, write the moving averages into the variables (Keras's
        trainer calls this at the end of ``fit``)."""
        if not self.use_ema:
            return
        var_list = list(var_list)
        if len(var_list) != len(self._averages):
            raise ValueError(f"{type(self).__name__}.finalize_variable_values: {len(var_list)} variables, but the "
                             f"optimizer keeps averages of {len(self._averages)}; was it used on this model?")
        for v, avg in zip(var_list, self._averages):
            v._apply_axpby(avg, 0.0, 1.0)

    def _apply_constraints(self, pairs):
        for _, v in pairs:
            constraint = getattr(v, "constraint", None)
            if constraint is not None:
                self._constrain(v, constraint(v))

    def _accumulator(self, var):
        """The running gradient sum of ``var`` (gradient_accumulation_steps)."""
        a = self._accumulators.get(id(var))
        if a is None or a[0] is not var:
            a = self._accumulators[id(var)] = (var, _state_variable(var, 0.0, f"{var.name}_gradient_accumulator"))
        if a[1].device != var.device:
            a[1]._move(var.device)
        return a[1]

    def _user_step(self, g, v, lr, wd, clipvalue):
        """A subclass's ``update_step``, after the common parts done with ops."""
        if clipvalue:
            g = ops.clip(g, -clipvalue, clipvalue)
        if wd:
            v._apply_axpby(v.value * wd, 1.0, -1.0)
        self.update_step(g, v, lr)

    def _before_step(self, variables):
        """Per-step state outside the variables (Nadam's momentum product)."""

    def _clip(self, gs):
        """Norm clipping, computed on the gradients' device; clipvalue is applied
        inside the update kernel."""
        if self.clipnorm:
            c = self.clipnorm
            return [g * c / ops.maximum(ops.sqrt(ops.sum(ops.square(g))), c) for g in gs]
        if self.global_clipnorm:
            c = self.global_clipnorm
            total = None
            for g in gs:
                s = ops.sum(ops.square(g))
                total = s if total is None else total + s
            norm = ops.sqrt(total)
            # Keras's c * min(1 / norm, 1 / c) without dividing by a zero norm; (norm - norm)
            # makes the scale NaN for an infinite or NaN norm, as Keras's
            scale = c / ops.maximum(norm, c) + (norm - norm)
            return [g * scale for g in gs]
        return gs

    @staticmethod
    def _constrain(v, value):
        """``v.assign(value)``; on the variable's device a guarded in-place copy (so a
        GPU step the trainer's guard skips writes nothing here either)."""
        if isinstance(value, Tensor) and value.device == v.device and tuple(value.shape) == tuple(v.shape) and \
                value.dtype == v.dtype and value.device != "cpu":
            v._apply_axpby(value, 0.0, 1.0)
        else:
            v.assign(value)

    # ------------------------------------------------------------------ configs
    def get_config(self):
        """``{"name": <class name>, "learning_rate": ..., <hyperparameters>}``: the
        rule's numeric hyperparameters always, every other argument when it is not at
        its default; a schedule as Keras serializes it; a callable as its current value."""
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr_cfg = schedules_mod.serialize(lr)
        else:
            lr_cfg = self._current_learning_rate()
        cfg = {"name": type(self).__name__, "learning_rate": lr_cfg}
        for p, par in _inspect.signature(type(self).__init__).parameters.items():
            if p in ("self", "learning_rate", "name") or par.kind is _inspect.Parameter.VAR_KEYWORD:
                continue
            value = getattr(self, p, par.default)
            if value is _inspect.Parameter.empty:
                continue  # an argument of a subclass of your own that it does not keep
            if p in self._always or value != par.default:
                cfg[p] = value
        return cfg

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules_mod.deserialize(config["learning_rate"], custom_objects)
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} learning_rate={self._current_learning_rate():g} " \
               f"iterations={self._iterations}>"
