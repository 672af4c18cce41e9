"""convcore.optimizers against real Keras 3: each optimizer's 20-step trajectory on the
same gradients (CPU and GPU) for a table of argument settings, each schedule's values,
config round trips (ours and Keras's configs), Keras-style argument errors, the GPU step
guard for every rule, and a small model trained with each optimizer by name."""
from __future__ import annotations

import json
import os

import jax
import keras
import numpy as np
import pytest

import convcore
from convcore import Input, Sequential, _core, layers, ops, optimizers
from convcore.optimizers import schedules
from convcore.saving.config_errors import ConfigError

HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CI requires a GPU adapter (lavapipe) for the GPU half of the optimizer tests")
DEVICES = ["cpu"] + (["gpu"] if HAVE_GPU else [])
needs_gpu = pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter (install mesa-vulkan-drivers for lavapipe)")

STEPS = 20
_rng = np.random.default_rng(7)
W0 = [_rng.normal(size=(3, 4)).astype(np.float32), _rng.normal(size=(5,)).astype(np.float32)]
# Gradients bounded away from 0 so Lion's sign() is not decided by rounding; their norms
# (about 2-4 per variable) are above the clip thresholds of the table.
GRADS = [[(np.sign(g) * (0.2 + np.abs(g))).astype(np.float32) for g in (_rng.normal(size=w.shape) for w in W0)]
         for _ in range(STEPS)]


def _decay_lr(lr, decay, opt):
    """tf.keras 2's time-based decay, computed here from Keras's own step counter."""
    return lambda: lr / (1.0 + decay * int(opt.iterations.numpy()))


# id: (class, convcore kwargs, keras kwargs (None: the same), constraint on the variables)
CASES = {
    "sgd": ("SGD", dict(learning_rate=0.05), None, False),
    "sgd_momentum": ("SGD", dict(learning_rate=0.05, momentum=0.9), None, False),
    "sgd_nesterov": ("SGD", dict(learning_rate=0.05, momentum=0.8, nesterov=True), None, False),
    "sgd_weight_decay": ("SGD", dict(learning_rate=0.05, weight_decay=0.5), None, False),
    "sgd_clipvalue": ("SGD", dict(learning_rate=0.05, clipvalue=0.5), None, False),
    "sgd_clipnorm": ("SGD", dict(learning_rate=0.05, clipnorm=1.0), None, False),
    "sgd_global_clipnorm": ("SGD", dict(learning_rate=0.05, momentum=0.5, global_clipnorm=1.5), None, False),
    "sgd_loss_scale": ("SGD", dict(learning_rate=0.05, loss_scale_factor=4.0), None, False),
    "sgd_constraint": ("SGD", dict(learning_rate=0.1), None, True),
    "sgd_callable_lr": ("SGD", dict(learning_rate=lambda: 0.03), None, False),
    "sgd_lr_decay": ("SGD", dict(lr=0.05, decay=0.1, momentum=0.9), "decay", False),
    "sgd_accumulate": ("SGD", dict(learning_rate=0.05, momentum=0.9, gradient_accumulation_steps=3), None, False),
    "adam": ("Adam", dict(learning_rate=0.05), None, False),
    "adam_ema": ("Adam", dict(learning_rate=0.05, use_ema=True, ema_momentum=0.8, ema_overwrite_frequency=6), None,
                 False),
    "sgd_ema": ("SGD", dict(learning_rate=0.05, momentum=0.5, use_ema=True), None, False),
    "adam_accumulate_exponential": ("Adam", dict(learning_rate=schedules.ExponentialDecay(0.05, 4, 0.5),
                                                 gradient_accumulation_steps=2, loss_scale_factor=2.0), "schedule",
                                    False),
    "adam_amsgrad": ("Adam", dict(learning_rate=0.05, amsgrad=True, beta_2=0.9), None, False),
    "adam_weight_decay": ("Adam", dict(learning_rate=0.05, weight_decay=0.1), None, False),
    "adam_exponential": ("Adam", dict(learning_rate=schedules.ExponentialDecay(0.05, 4, 0.5)), "schedule", False),
    "adam_piecewise": ("Adam", dict(learning_rate=schedules.PiecewiseConstantDecay([5, 12], [0.05, 0.02, 0.01])),
                       "schedule", False),
    "adam_lr_decay": ("Adam", dict(lr=0.05, decay=0.2), "decay", False),
    "adamw": ("AdamW", dict(learning_rate=0.05), None, False),
    "adamw_amsgrad_clip": ("AdamW", dict(learning_rate=0.05, weight_decay=0.05, amsgrad=True, clipvalue=0.7), None,
                           False),
    "rmsprop": ("RMSprop", dict(learning_rate=0.01), None, False),
    "rmsprop_centered": ("RMSprop", dict(learning_rate=0.01, centered=True), None, False),
    "rmsprop_momentum": ("RMSprop", dict(learning_rate=0.01, momentum=0.9), None, False),
    "rmsprop_centered_momentum": ("RMSprop", dict(learning_rate=0.01, rho=0.8, momentum=0.5, centered=True), None,
                                  False),
    "rmsprop_lr_decay": ("RMSprop", dict(lr=0.01, decay=0.05), "decay", False),
    "adagrad": ("Adagrad", dict(learning_rate=0.1), None, False),
    "adagrad_accumulator_clipnorm": ("Adagrad", dict(learning_rate=0.1, initial_accumulator_value=0.5,
                                                     clipnorm=0.8), None, False),
    "adadelta": ("Adadelta", dict(learning_rate=1.0), None, False),
    "adadelta_rho_weight_decay": ("Adadelta", dict(learning_rate=1.0, rho=0.5, weight_decay=0.01), None, False),
    "adamax": ("Adamax", dict(learning_rate=0.05), None, False),
    "adamax_global_clipnorm": ("Adamax", dict(learning_rate=0.05, beta_2=0.9, global_clipnorm=1.0), None, False),
    "nadam": ("Nadam", dict(learning_rate=0.05), None, False),
    "nadam_weight_decay_polynomial": ("Nadam", dict(learning_rate=schedules.PolynomialDecay(0.05, 10, 0.01, power=2.0),
                                                    weight_decay=0.1), "schedule", False),
    "lion": ("Lion", dict(learning_rate=0.01), None, False),
    "lion_weight_decay_clipnorm": ("Lion", dict(learning_rate=0.01, beta_1=0.5, weight_decay=0.5, clipnorm=1.0),
                                   None, False),
}


def _keras_optimizer(case):
    cls, kw, how, _ = CASES[case]
    kw = dict(kw)
    if how == "schedule":
        s = kw["learning_rate"]
        kw["learning_rate"] = keras.optimizers.schedules.deserialize(
            {"class_name": type(s).__name__, "config": s.get_config()})
    if how == "decay":
        lr, decay = kw.pop("lr"), kw.pop("decay")
        opt = getattr(keras.optimizers, cls)(learning_rate=lr, **kw)
        opt.learning_rate = _decay_lr(lr, decay, opt)
        return opt
    return getattr(keras.optimizers, cls)(**kw)


_KERAS_CACHE = {}
# Keras's gradient accumulation runs jax.lax.cond eagerly (~0.7 s a call): fewer steps.
STEPS_OF = {"sgd_accumulate": 6, "adam_accumulate_exponential": 4}


def _keras_trajectory(case):
    """Keras's weights after each step (computed once per case)."""
    if case not in _KERAS_CACHE:
        opt = _keras_optimizer(case)
        vs = [keras.Variable(w) for w in W0]
        if CASES[case][3]:
            for v in vs:
                v.constraint = keras.constraints.NonNeg()
        out = []
        for gs in GRADS[:STEPS_OF.get(case, STEPS)]:
            opt.apply_gradients(zip(gs, vs))
            out.append([np.asarray(v.numpy()) for v in vs])
        if opt.use_ema:  # the weights fit ends with
            opt.finalize_variable_values(vs)
            out.append([np.asarray(v.numpy()) for v in vs])
        _KERAS_CACHE[case] = out
    return _KERAS_CACHE[case]


def _ours(case, device):
    cls, kw, _, constrained = CASES[case]
    opt = getattr(optimizers, cls)(**kw)
    vs = [convcore.Variable(w, name=f"w{i}", device=device) for i, w in enumerate(W0)]
    if constrained:
        for v in vs:
            v.constraint = lambda t: ops.maximum(t, 0.0)
    out = []
    steps = STEPS_OF.get(case, STEPS)
    for gs in GRADS[:steps]:
        opt.apply_gradients(zip([ops.convert_to_tensor(g, device=device) for g in gs], vs))
        out.append([v.numpy().copy() for v in vs])
    if opt.use_ema:
        opt.finalize_variable_values(vs)
        out.append([v.numpy().copy() for v in vs])
    assert opt.iterations == steps // (kw.get("gradient_accumulation_steps") or 1)
    return out


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_trajectory_equals_keras(case, device):
    want = _keras_trajectory(case)
    got = _ours(case, device)
    for step, (g, w) in enumerate(zip(got, want)):
        for a, b in zip(g, w):
            # atol: a few weights pass through 0 on their way (rtol alone is unbounded there)
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{case} on {device}, step {step + 1}")


@needs_gpu
@pytest.mark.parametrize("case", ["adam_amsgrad", "rmsprop_centered_momentum", "nadam", "adadelta", "lion",
                                  "sgd_global_clipnorm", "adamw_amsgrad_clip"])
def test_gpu_equals_cpu(case):
    for g, c in zip(_ours(case, "gpu"), _ours(case, "cpu")):
        for a, b in zip(g, c):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------- schedules
SCHEDULES = {
    "exponential": ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=7, decay_rate=0.5)),
    "exponential_staircase": ("ExponentialDecay", dict(initial_learning_rate=0.1, decay_steps=7, decay_rate=0.5,
                                                       staircase=True)),
    "inverse_time": ("InverseTimeDecay", dict(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.7)),
    "inverse_time_staircase": ("InverseTimeDecay", dict(initial_learning_rate=0.1, decay_steps=3, decay_rate=0.7,
                                                        staircase=True)),
    "piecewise": ("PiecewiseConstantDecay", dict(boundaries=[5, 12, 30], values=[1.0, 0.5, 0.1, 0.01])),
    "polynomial": ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=25, end_learning_rate=0.01)),
    "polynomial_power_cycle": ("PolynomialDecay", dict(initial_learning_rate=0.1, decay_steps=9,
                                                       end_learning_rate=0.001, power=0.5, cycle=True)),
    "cosine": ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=30)),
    "cosine_alpha": ("CosineDecay", dict(initial_learning_rate=0.1, decay_steps=30, alpha=0.2)),
    "cosine_warmup": ("CosineDecay", dict(initial_learning_rate=0.0, decay_steps=20, alpha=0.1, warmup_target=0.2,
                                          warmup_steps=8)),
    "cosine_restarts": ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=5)),
    "cosine_restarts_mul": ("CosineDecayRestarts", dict(initial_learning_rate=0.1, first_decay_steps=4, t_mul=1.0,
                                                        m_mul=0.7, alpha=0.05)),
}


@pytest.mark.parametrize("case", sorted(SCHEDULES))
def test_schedule_values_equal_keras(case):
    cls, kw = SCHEDULES[case]
    ours = getattr(schedules, cls)(**kw)
    ref = getattr(keras.optimizers.schedules, cls)(**kw)
    steps = np.arange(45)
    want = np.asarray(jax.vmap(ref)(steps.astype(np.float32)))  # one trace (Keras's ops.cond is slow eagerly)
    got = np.array([float(ours(int(s))) for s in steps])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)
    assert ours(3).dtype == "float32"
    # config round trips: ours, and through Keras's own loader
    again = schedules.deserialize(json.loads(json.dumps(schedules.serialize(ours))))
    assert type(again) is type(ours) and again.get_config() == ours.get_config()
    np.testing.assert_array_equal([again._value(s) for s in steps], [ours._value(s) for s in steps])
    by_keras = keras.optimizers.schedules.deserialize(schedules.serialize(ours))
    assert by_keras.get_config() == ref.get_config()


# ---------------------------------------------------------------------- configs
def _three_steps(opt, device="cpu"):
    vs = [convcore.Variable(w, device=device) for w in W0]
    for gs in GRADS[:3]:
        opt.apply_gradients(zip(gs, vs))
    return [v.numpy().copy() for v in vs]


@pytest.mark.parametrize("case", sorted(c for c in CASES if c != "sgd_callable_lr"))
def test_config_round_trip(case):
    cls, kw, _, _ = CASES[case]
    opt = getattr(optimizers, cls)(**kw)
    cfg = json.loads(json.dumps(opt.get_config()))
    assert cfg["name"] == cls
    for again in (optimizers.deserialize(cfg), getattr(optimizers, cls).from_config(cfg),
                  optimizers.deserialize(json.loads(json.dumps(optimizers.serialize(opt)))), optimizers.get(cfg)):
        assert type(again) is type(opt) and again.get_config() == opt.get_config()
        for a, b in zip(_three_steps(again), _three_steps(getattr(optimizers, cls)(**kw))):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam",
                                 "Lion"])
def test_keras_configs_load(cls):
    """Keras's own serialized optimizer (every key, its instance name) loads with the
    same hyperparameters and the same trajectory."""
    ref = getattr(keras.optimizers, cls)(learning_rate=0.02, clipnorm=2.0)
    ours = optimizers.deserialize(keras.optimizers.serialize(ref))
    assert type(ours).__name__ == cls and ours.name == ref.name
    kcfg = ref.get_config()
    for k, v in ours.get_config().items():
        if k != "name":
            assert v == pytest.approx(kcfg[k]), k
    want = getattr(optimizers, cls)(learning_rate=kcfg["learning_rate"], clipnorm=2.0)  # float32's 0.02
    for a, b in zip(_three_steps(ours), _three_steps(want)):
        np.testing.assert_array_equal(a, b)


def test_old_configs_and_decay_configs():
    sgd = optimizers.deserialize({"name": "SGD", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True})
    assert isinstance(sgd, optimizers.SGD) and sgd.momentum == 0.9 and sgd.nesterov
    adam = optimizers.deserialize({"name": "Adam", "learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99,
                                   "epsilon": 1e-6})
    assert isinstance(adam, optimizers.Adam) and adam.beta_1 == 0.8 and not adam.amsgrad
    # tf.keras 2's decay is saved as Keras 3's InverseTimeDecay (real Keras loads it)
    opt = optimizers.RMSprop(lr=0.01, decay=0.5)
    cfg = opt.get_config()
    assert cfg["learning_rate"]["class_name"] == "InverseTimeDecay" and "decay" not in cfg
    k = keras.optimizers.deserialize({"class_name": "RMSprop", "config": {**cfg, "name": "rmsprop"}})
    assert float(k.learning_rate) == pytest.approx(0.01)
    again = optimizers.deserialize(cfg)
    for a, b in zip(_three_steps(opt), _three_steps(again)):  # the reloaded decay steps alike
        np.testing.assert_array_equal(a, b)
    assert again.learning_rate == opt.learning_rate == pytest.approx(0.01 / (1 + 0.5 * 3))
    # a custom instance name stays on the object; the config names the class
    named = optimizers.Adam(name="my_adam")
    assert named.name == "my_adam" and named.get_config()["name"] == "Adam"


# ---------------------------------------------------------------------- learning rate, iterations, apply
def test_learning_rate_reads_and_sets():
    opt = optimizers.SGD(lr=0.5)
    assert opt.learning_rate == opt.lr == 0.5
    opt.learning_rate = 0.25
    assert opt.lr == 0.25
    opt.lr = 0.125
    assert opt.learning_rate == 0.125
    s = schedules.ExponentialDecay(0.1, 1, 0.5)
    opt.learning_rate = s
    assert opt.learning_rate == pytest.approx(0.1)
    v = convcore.Variable(np.ones(3, np.float32))
    opt.apply_gradients([(np.ones(3, np.float32), v)])
    assert opt.iterations == 1 and opt.learning_rate == pytest.approx(0.05)
    np.testing.assert_allclose(v.numpy(), 0.9, rtol=1e-6)
    with pytest.raises(TypeError, match="not settable"):
        opt.learning_rate = 0.1
    # tf.keras 2: with decay, setting lr sets the rate that decay divides
    d = optimizers.Adam(lr=0.1, decay=1.0)
    d.apply_gradients([(np.ones(3, np.float32), convcore.Variable(np.ones(3, np.float32)))])
    assert d.learning_rate == pytest.approx(0.05)
    d.lr = 0.4
    assert d.learning_rate == pytest.approx(0.2)
    c = optimizers.SGD(learning_rate=lambda: 0.3)
    assert c.learning_rate == pytest.approx(0.3)


def test_apply_forms_none_gradients_and_iterations():
    opt = optimizers.SGD(0.5)
    a, b = convcore.Variable(np.ones(2, np.float32)), convcore.Variable(np.ones(3, np.float32))
    opt.apply_gradients(zip([np.ones(2, np.float32), None], [a, b]))  # an iterator; None skipped
    np.testing.assert_array_equal(a.numpy(), [0.5, 0.5])
    np.testing.assert_array_equal(b.numpy(), [1, 1, 1])
    opt.apply([np.ones(2, np.float32), np.ones(3, np.float32)], [a, b])
    np.testing.assert_array_equal(b.numpy(), [0.5, 0.5, 0.5])
    opt.apply([None, np.full(3, 2.0, np.float32)])  # the variables of the first step
    np.testing.assert_array_equal(b.numpy(), [-0.5, -0.5, -0.5])
    assert opt.iterations == 3
    opt.apply_gradients([])  # nothing to do: not a step (Keras)
    assert opt.iterations == 3
    with pytest.raises(ValueError, match="no gradients"):
        opt.apply_gradients([(None, a)])
    with pytest.raises(ValueError, match="shape"):
        opt.apply_gradients([(np.ones(3, np.float32), a)])
    with pytest.raises(ValueError, match="without variables"):
        optimizers.Adam().apply([np.ones(2)])
    assert len(opt.variables) == 0 and len(optimizers.Adam(amsgrad=True).variables) == 0


def test_exclude_from_weight_decay():
    opt = optimizers.AdamW(learning_rate=0.1, weight_decay=0.5)
    w, bias = convcore.Variable(np.ones(2, np.float32), name="kernel"), convcore.Variable(np.ones(2, np.float32),
                                                                                          name="bias")
    opt.exclude_from_weight_decay(var_names=["bias"])
    opt.apply_gradients([(np.zeros(2, np.float32), w), (np.zeros(2, np.float32), bias)])
    np.testing.assert_allclose(w.numpy(), 1 - 0.5 * 0.1, rtol=1e-6)
    np.testing.assert_array_equal(bias.numpy(), [1, 1])
    with pytest.raises(ValueError, match="before the optimizer is built"):
        opt.exclude_from_weight_decay(var_names=["kernel"])


# ---------------------------------------------------------------------- bad arguments
BAD = [
    (lambda: optimizers.SGD(learning_rate=-0.1), ValueError, r"SGD: learning_rate must be a finite number > 0.*"
                                                             r"received learning_rate=-0.1"),
    (lambda: optimizers.Adam(learning_rate="fast"), ValueError, r"Adam: learning_rate must be a real number"),
    (lambda: optimizers.RMSprop(rho=1.5), ValueError, r"RMSprop: rho must be a finite number in \[0, 1\], "
                                                      r"received rho=1.5"),
    (lambda: optimizers.Adadelta(rho=-0.1), ValueError, r"Adadelta: rho must be .* received rho=-0.1"),
    (lambda: optimizers.Adam(beta_1=1.0), ValueError, r"Adam: beta_1 must be .*\[0, 1\)"),
    (lambda: optimizers.Lion(beta_1=0.0), ValueError, r"Lion: beta_1 must be .*\(0, 1\]"),
    (lambda: optimizers.Adagrad(initial_accumulator_value=-1), ValueError, r"initial_accumulator_value must be"),
    (lambda: optimizers.Nadam(epsilon=0), ValueError, r"Nadam: epsilon must be a finite number > 0"),
    (lambda: optimizers.SGD(clipnorm=1.0, clipvalue=0.5), ValueError,
     r"only one of clipnorm, clipvalue and global_clipnorm can be set. Received: clipnorm=1.0, clipvalue=0.5"),
    (lambda: optimizers.Adam(global_clipnorm=1.0, clipnorm=1.0), ValueError, r"only one of"),
    (lambda: optimizers.SGD(clipvalue=-1.0), ValueError, r"SGD: clipvalue must be a finite number >= 0"),
    (lambda: optimizers.SGD(lr=0.1, decay=0.01, learning_rate=schedules.ExponentialDecay(0.1, 10, 0.9)),
     ValueError, r"lr is an alias of learning_rate"),
    (lambda: optimizers.SGD(learning_rate=schedules.ExponentialDecay(0.1, 10, 0.9), decay=0.01), ValueError,
     r"SGD: decay .* cannot be combined with a learning-rate schedule"),
    (lambda: optimizers.Adam(learning_rate=lambda: 0.1, decay=0.01), ValueError, r"cannot be combined"),
    (lambda: optimizers.SGD(lr=0.1, learning_rate=0.2), ValueError, r"SGD: lr is an alias of learning_rate; "
                                                                    r"received both, with different values"),
    (lambda: optimizers.SGD(decay=-1.0), ValueError, r"SGD: decay must be a finite number >= 0"),
    (lambda: optimizers.Adam(use_ema=True, ema_momentum=1.5), ValueError, r"Adam: ema_momentum must be a finite "
                                                                          r"number in \[0, 1\]"),
    (lambda: optimizers.Adam(gradient_accumulation_steps=1), ValueError, r"Adam: gradient_accumulation_steps must "
                                                                         r"be an integer >= 2 or None, received "
                                                                         r"gradient_accumulation_steps=1"),
    (lambda: optimizers.AdamW(weight_decay=None), ValueError, r"AdamW: weight_decay must be a number"),
    (lambda: optimizers.SGD(momentom=0.9), ValueError, r"SGD: argument\(s\) not recognized: momentom"),
    (lambda: optimizers.RMSprop(centered="yes"), ValueError, r"RMSprop: centered must be True or False"),
    (lambda: optimizers.get("adamm"), ValueError, r"Unknown optimizer 'adamm'; valid optimizers are sgd, adam, "
                                                  r"adamw, rmsprop, adagrad, adadelta, adamax, nadam, lion"),
    (lambda: schedules.ExponentialDecay(0.1, 0, 0.9), ValueError, r"ExponentialDecay: decay_steps must be a finite "
                                                                  r"number > 0, received decay_steps=0"),
    (lambda: schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.2]), ValueError, r"the length of boundaries should "
                                                                                r"be 1 less"),
    (lambda: schedules.PiecewiseConstantDecay([2, 1], [0.1, 0.2, 0.3]), ValueError, r"strictly increasing"),
    (lambda: schedules.CosineDecayRestarts(0.1, -5), ValueError, r"first_decay_steps must be"),
    (lambda: schedules.deserialize({"class_name": "StepDecay", "config": {}}), ValueError,
     r"unknown learning rate schedule 'StepDecay'; the schedules are ExponentialDecay"),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_arguments_raise_keras_style_errors(i):
    make, exc, match = BAD[i]
    with pytest.raises(exc, match=match):
        make()


def test_bad_configs_name_the_key():
    for cfg, key in [({"name": "Lion", "beta_1": 2.0}, ("beta_1",)), ({"name": "AdamW", "decay": 0.1}, ("decay",)),
                     ({"class_name": "Nadam", "config": {"rho": 0.9}}, ("config", "rho")),
                     ({"class_name": "Adamax", "config": {"learning_rate": {"class_name": "X", "config": {}}}},
                      ("config", "learning_rate")),
                     ({"class_name": "Adamm", "config": {}}, ("class_name",))]:
        with pytest.raises(ConfigError) as e:
            optimizers.deserialize(cfg)
        assert e.value.key == key, (cfg, e.value)


def test_setting_a_bad_learning_rate():
    opt = optimizers.Lion()
    for bad in (0.0, -1.0, float("nan"), "0.1", None):
        with pytest.raises(ValueError, match="Lion: learning_rate must be"):
            opt.learning_rate = bad
    assert opt.learning_rate == 0.001


# ---------------------------------------------------------------------- the GPU step guard
@needs_gpu
@pytest.mark.parametrize("case", ["sgd_momentum", "adam_ema", "adam_amsgrad", "rmsprop_centered_momentum", "adagrad", "adadelta",
                                  "adamax", "nadam", "lion_weight_decay_clipnorm", "adamw", "sgd_accumulate"])
def test_a_guarded_gpu_step_writes_nothing(case):
    """A tripped step guard (the trainer's flag for non-finite gradients) leaves every
    weight and every optimizer state variable as it was, for every rule."""
    from convcore import device as dev
    cls, kw, _, _ = CASES[case]
    opt = getattr(optimizers, cls)(**kw)
    vs = [convcore.Variable(w, device="gpu") for w in W0]
    opt.apply_gradients(zip([ops.convert_to_tensor(g, device="gpu") for g in GRADS[0]], vs))
    before = [v.numpy().copy() for v in vs] + [s.numpy().copy() for s in opt.variables]
    be = dev.backend("gpu")
    guard = be.new_guard()
    bad = ops.convert_to_tensor(np.array([1.0, np.nan], np.float32), device="gpu")
    be.flag_nonfinite([bad._data], guard)
    assert be.guard_tripped(guard)
    with dev.guarded(guard):
        opt.apply_gradients(zip([ops.convert_to_tensor(g, device="gpu") for g in GRADS[1]], vs))
    after = [v.numpy() for v in vs] + [s.numpy() for s in opt.variables]
    assert len(after) == len(before) > len(vs)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------- training by name
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam",
                                  "lion"])
def test_a_model_trains_with_each_optimizer_by_name(name, device):
    convcore.set_seed(1)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    m = Sequential([Input((4,)), layers.Dense(8, activation="relu"), layers.Dense(2, activation="softmax")])
    m.compile(optimizer=name, loss="sparse_categorical_crossentropy", device=device)
    opt = m.optimizer
    assert isinstance(opt, optimizers.get(name).__class__)
    if name == "adadelta":
        opt.learning_rate = 1.0  # Keras's default 0.001 barely moves Adadelta in a few steps
    losses = [float(m.train_on_batch(x, y)) for _ in range(8)]
    assert losses[-1] < losses[0], losses
    assert opt.iterations == 8


# ---------------------------------------------------------------------- Keras's API for optimizers of your own
def _momentum_sgd(base, o):
    """Keras's own example of a custom optimizer (its Optimizer docstring), for either
    library: ``base`` the Optimizer class, ``o`` the ops module."""

    class MomentumSGD(base):
        def __init__(self, momentum=0.9, **kwargs):
            super().__init__(**kwargs)
            self.momentum = momentum

        def build(self, variables):
            super().build(variables)
            self.momentums = [self.add_variable_from_reference(reference_variable=v, name="momentum")
                              for v in variables]
            self.count = self.add_variable((), initializer="zeros", dtype="float32", name="count")

        def update_step(self, gradient, variable, learning_rate):
            m = self.momentums[self._get_variable_index(variable)]
            self.assign(m, o.subtract(o.multiply(m, self.momentum), o.multiply(gradient, learning_rate)))
            self.assign_add(variable, m)
            self.assign_add(self.count, 1.0)

    return MomentumSGD


@pytest.mark.parametrize("device", DEVICES)
def test_an_optimizer_of_your_own_follows_keras(device):
    kw = dict(learning_rate=0.05, momentum=0.8, weight_decay=0.1, clipvalue=0.9)
    ref = _momentum_sgd(keras.optimizers.Optimizer, keras.ops)(**kw)
    ours = _momentum_sgd(optimizers.Optimizer, ops)(**kw)
    kv = [keras.Variable(w) for w in W0]
    vs = [convcore.Variable(w, device=device) for w in W0]
    for gs in GRADS[:8]:
        ref.apply_gradients(zip(gs, kv))
        ours.apply_gradients(zip([ops.convert_to_tensor(g, device=device) for g in gs], vs))
    for a, b in zip(vs, kv):
        np.testing.assert_allclose(a.numpy(), np.asarray(b.numpy()), rtol=1e-5, atol=1e-6)
    assert float(ours.count.numpy()) == 16.0 and ours.iterations == 8
    assert len(ours.variables) == 3 and all(v.device == device for v in ours.variables)
    with pytest.raises(ValueError, match="not one this optimizer was built with"):
        ours.apply_gradients([(np.ones(2, np.float32), convcore.Variable(np.ones(2, np.float32), device=device))])


def test_learning_rate_and_iterations_answer_variable_idioms():
    opt = optimizers.Adam(0.01)
    assert isinstance(opt.learning_rate.numpy(), np.float32) and opt.learning_rate.numpy() == np.float32(0.01)
    opt.learning_rate.assign(0.5)
    assert opt.learning_rate == 0.5 and opt.lr == 0.5
    v = convcore.Variable(np.ones(2, np.float32))
    opt.apply_gradients([(np.ones(2, np.float32), v)])
    assert opt.iterations.numpy() == 1 and int(opt.iterations) == 1
    opt.iterations.assign(0)  # the bias correction starts over, as Keras's
    assert opt.iterations == 0
    with pytest.raises(ValueError, match="iterations must be >= 0"):
        opt.iterations = -1
    assert json.loads(json.dumps(opt.get_config()))["learning_rate"] == 0.5


def test_tf_keras_2_import_paths():
    """tf.keras 2 notebooks import optimizers.legacy.Adam(lr=..., decay=...) and
    optimizers.experimental.AdamW: the same classes."""
    from convcore.optimizers import experimental, legacy
    assert legacy.Adam is optimizers.Adam and legacy.RMSprop is optimizers.RMSprop
    assert experimental.AdamW is optimizers.AdamW and experimental.Lion is optimizers.Lion
    opt = legacy.SGD(lr=0.1, decay=0.5)
    assert opt.learning_rate == pytest.approx(0.1)


def test_read_values_copy_as_plain_numbers():
    import copy
    import pickle
    opt = optimizers.SGD(0.25)
    for v, kind in ((opt.learning_rate, float), (opt.iterations, int)):
        for c in (copy.deepcopy(v), copy.copy(v), pickle.loads(pickle.dumps(v))):
            assert type(c) is kind and c == v


@needs_gpu
@pytest.mark.parametrize("cls", ["Adam", "RMSprop", "Nadam", "Lion"])
def test_gpu_update_of_a_variable_larger_than_one_binding(cls):
    """A variable over the binding window is updated in element chunks (each with its
    own state windows): the result equals the CPU's."""
    rng = np.random.default_rng(3)
    w = rng.normal(size=(3000,)).astype(np.float32)  # 12 KB: three 4 KB windows
    gs = [rng.normal(size=w.shape).astype(np.float32) for _ in range(3)]
    kw = dict(centered=True, momentum=0.5) if cls == "RMSprop" else {}
    out = {}
    for device in ("cpu", "gpu"):
        opt = getattr(optimizers, cls)(learning_rate=0.01, **kw)
        v = convcore.Variable(w, device=device)
        if device == "gpu":
            _core.gpu_set_binding_limit(4096)
        try:
            for g in gs:
                opt.apply_gradients([(ops.convert_to_tensor(g, device=device), v)])
            out[device] = v.numpy().copy()
        finally:
            _core.gpu_set_binding_limit(None)
    np.testing.assert_allclose(out["gpu"], out["cpu"], rtol=1e-5, atol=1e-6)
