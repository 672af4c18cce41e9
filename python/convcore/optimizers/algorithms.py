"""The optimizers of Keras 3 (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax,
Nadam, Lion) with its argument names, defaults and update rules. Each class only names
its hyperparameters, its state slots and the native rule that applies them
(``src/ops/optim.rs`` has the formulas, the CPU and GPU kernels run them)."""
from __future__ import annotations

import numpy as np

from .base_optimizer import Optimizer, _flag, _positive, _real, _unit

_COMMON = ("clipnorm", "clipvalue", "global_clipnorm", "use_ema", "ema_momentum", "ema_overwrite_frequency",
           "loss_scale_factor", "gradient_accumulation_steps")


def _common(kw):
    return {k: kw[k] for k in _COMMON}


class SGD(Optimizer):
    """Gradient descent with momentum: ``v = momentum * v - lr * g; w += v`` (with
    ``nesterov``: ``w += momentum * v - lr * g``); without momentum ``w -= lr * g``."""

    _rule = "sgd"
    _always = ("momentum", "nesterov")

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name="SGD", **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, name=name, **_common(locals()), **kwargs)
        self.momentum = _unit("SGD", "momentum", momentum)
        self.nesterov = _flag("SGD", "nesterov", nesterov)

    def _slot_spec(self):
        return (("velocity", 0.0) if self.momentum != 0 else None, None, None)

    def _hyper(self, lr):
        return [lr, self.momentum, float(self.nesterov)]


class Adam(Optimizer):
    """Adam with Keras's bias correction folded into the step size (``epsilon`` outside
    the square root's correction); ``amsgrad`` divides by the running maximum of the
    second moment."""

    _rule = "adam"
    _always = ("beta_1", "beta_2", "epsilon")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None, name="adam",
                 **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, name=name, **_common(locals()), **kwargs)
        c = type(self).__name__
        self.beta_1 = _unit(c, "beta_1", beta_1, open_top=True)
        self.beta_2 = _unit(c, "beta_2", beta_2, open_top=True)
        self.epsilon = _positive(c, "epsilon", epsilon)
        self.amsgrad = _flag(c, "amsgrad", amsgrad)

    def _slot_spec(self):
        return (("m", 0.0), ("v", 0.0), ("v_hat", 0.0) if self.amsgrad else None)

    def _hyper(self, lr):
        return [lr, self.beta_1, self.beta_2, self.epsilon, self.iterations + 1, float(self.amsgrad)]


class AdamW(Adam):
    """Adam with decoupled weight decay (``weight_decay`` defaults to 0.004, as Keras 3's
    AdamW; the decay is the base class's ``w -= w * weight_decay * lr``)."""

    _always = ("weight_decay", "beta_1", "beta_2", "epsilon")

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name="adamw", **kwargs):
        if weight_decay is None:
            from .base_optimizer import _ArgumentError
            raise _ArgumentError("weight_decay", "AdamW: weight_decay must be a number >= 0, received "
                                                 "weight_decay=None")
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad,
                         weight_decay=weight_decay, name=name, **_common(locals()), **kwargs)


class RMSprop(Optimizer):
    """``v = rho v + (1 - rho) g^2``; ``w -= lr g / sqrt(v + epsilon)`` (``centered``:
    ``v - mean_g^2`` under the root; ``momentum``: the steps are accumulated)."""

    _rule = "rmsprop"
    _always = ("rho", "momentum", "epsilon", "centered")

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None,
                 name="rmsprop", **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, name=name, **_common(locals()), **kwargs)
        self.rho = _unit("RMSprop", "rho", rho)
        self.momentum = _unit("RMSprop", "momentum", momentum)
        self.epsilon = _positive("RMSprop", "epsilon", epsilon)
        self.centered = _flag("RMSprop", "centered", centered)

    def _slot_spec(self):
        return (("velocity", 0.0), ("average_gradient", 0.0) if self.centered else None,
                ("momentum", 0.0) if self.momentum > 0 else None)

    def _hyper(self, lr):
        return [lr, self.rho, self.momentum, self.epsilon, float(self.centered)]


class Adagrad(Optimizer):
    """``a += g^2``; ``w -= lr g / sqrt(a + epsilon)``, ``a`` starting at
    ``initial_accumulator_value``."""

    _rule = "adagrad"
    _always = ("initial_accumulator_value", "epsilon")

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None,
                 name="adagrad", **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, name=name, **_common(locals()), **kwargs)
        self.initial_accumulator_value = _real("Adagrad", "initial_accumulator_value", initial_accumulator_value,
                                               lambda v: v >= 0, ">= 0")
        self.epsilon = _positive("Adagrad", "epsilon", epsilon)

    def _slot_spec(self):
        return (("accumulator", self.initial_accumulator_value), None, None)

    def _hyper(self, lr):
        return [lr, self.epsilon]


class Adadelta(Optimizer):
    """Adadelta: running averages (``rho``) of squared gradients and squared steps; the
    step is ``-sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g``, scaled by the learning
    rate (Keras's default 0.001, not the paper's 1)."""

    _rule = "adadelta"
    _always = ("rho", "epsilon")

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name="adadelta", **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, name=name, **_common(locals()), **kwargs)
        self.rho = _unit("Adadelta", "rho", rho)
        self.epsilon = _positive("Adadelta", "epsilon", epsilon)

    def _slot_spec(self):
        return (("accumulated_grad", 0.0), ("accumulated_delta_var", 0.0), None)

    def _hyper(self, lr):
        return [lr, self.rho, self.epsilon]


class Adamax(Optimizer):
    """Adam with the infinity norm: ``u = max(beta_2 u, |g|)``;
    ``w -= lr m / ((1 - beta_1^t) (u + epsilon))``."""

    _rule = "adamax"
    _always = ("beta_1", "beta_2", "epsilon")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name="adamax", **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, name=name, **_common(locals()), **kwargs)
        self.beta_1 = _unit("Adamax", "beta_1", beta_1, open_top=True)
        self.beta_2 = _unit("Adamax", "beta_2", beta_2, open_top=True)
        self.epsilon = _positive("Adamax", "epsilon", epsilon)

    def _slot_spec(self):
        return (("m", 0.0), ("u", 0.0), None)

    def _hyper(self, lr):
        return [lr, self.beta_1, self.beta_2, self.epsilon, self.iterations + 1]


class Nadam(Optimizer):
    """Adam with Nesterov momentum and Keras's momentum schedule
    ``u_t = beta_1 (1 - 0.5 * 0.96^t)`` (its running product is kept per optimizer)."""

    _rule = "nadam"
    _always = ("beta_1", "beta_2", "epsilon")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name="nadam", **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, name=name, **_common(locals()), **kwargs)
        self.beta_1 = _unit("Nadam", "beta_1", beta_1, open_top=True)
        self.beta_2 = _unit("Nadam", "beta_2", beta_2, open_top=True)
        self.epsilon = _positive("Nadam", "epsilon", epsilon)
        self._u_product = None

    def _before_step(self, variables):
        # Keras keeps the product as a variable of the first variable's dtype and
        # updates it in that precision (float32 rounding is visible in the trajectory).
        if self._u_product is None:
            self._u_product = np.dtype(variables[0].dtype).type(1.0)
        f = type(self._u_product)
        self._u_product = self._u_product * f(self.beta_1) * (f(1.0) - f(0.5) * f(0.96) ** f(self.iterations + 1))

    def _slot_spec(self):
        return (("m", 0.0), ("v", 0.0), None)

    def _hyper(self, lr):
        return [lr, self.beta_1, self.beta_2, self.epsilon, self.iterations + 1, float(self._u_product)]


class Lion(Optimizer):
    """``w -= lr sign(beta_1 m + (1 - beta_1) g)``; ``m = beta_2 m + (1 - beta_2) g``
    (use a learning rate 3-10 times smaller than AdamW's)."""

    _rule = "lion"
    _always = ("beta_1", "beta_2")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name="lion", **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, name=name, **_common(locals()), **kwargs)
        # Keras: beta_1 must be in (0, 1] (0 would make the step the sign of g alone)
        self.beta_1 = _real("Lion", "beta_1", beta_1, lambda v: 0.0 < v <= 1.0, "in (0, 1]")
        self.beta_2 = _unit("Lion", "beta_2", beta_2)

    def _slot_spec(self):
        return (("m", 0.0), None, None)

    def _hyper(self, lr):
        return [lr, self.beta_1, self.beta_2]
