"""The first training step's own costs (issue 15, item 3), counted, not timed: the
optimizer makes its state once, one buffer per slot (no transient copy), and later steps
reuse it. The times themselves are benches/warmup.py's."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import convcore as cc
from convcore import _core, optimizers

HAVE_GPU = _core.gpu_available()


def _dense_model(units=500, inputs=400, device=None):
    cc.set_seed(0)
    m = cc.Sequential([cc.Input((inputs,)), cc.layers.Dense(units, activation="relu"), cc.layers.Dense(3)])
    if device is not None:
        m.compile(optimizer="sgd", loss="mse", device=device)
    return m


def _data(n=16, inputs=400):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, inputs)).astype(np.float32), rng.standard_normal((n, 3)).astype(np.float32)


def _state(opt):
    """(slot variable, its buffer) of every state variable of ``opt``."""
    return [(s, s._data) for s in opt.variables]


@pytest.mark.parametrize("make, n_slots", [
    (lambda: optimizers.SGD(0.01, momentum=0.9), 1),
    (lambda: optimizers.Adam(), 2),
    (lambda: optimizers.Adam(amsgrad=True), 3),
    (lambda: optimizers.RMSprop(momentum=0.5, centered=True), 3),
])
def test_optimizer_state_is_one_buffer_per_slot(make, n_slots):
    # Variable(array) copies its initial value; a slot made as Variable(np.full(...)) held
    # a second buffer of the weights' size while it was made (Adam: a peak of 3x the
    # weights for 2x of state). numpy reports its buffers to tracemalloc.
    m = _dense_model()
    w = m.trainable_weights
    nbytes = sum(v.numpy().nbytes for v in w)
    opt = make()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        opt.build(w)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    slack = 64 << 10  # the Variable objects, names, dicts
    assert current - base >= n_slots * nbytes  # the state is really there
    assert peak - base <= n_slots * nbytes + slack, (peak - base) / nbytes


@pytest.mark.parametrize("make, name, init", [
    (lambda: optimizers.SGD(0.01, momentum=0.9), "velocity", 0.0),
    (lambda: optimizers.Adagrad(initial_accumulator_value=0.3), "accumulator", 0.3),
    (lambda: optimizers.Adam(), "m", 0.0),
])
def test_slots_hold_their_initial_value_in_their_own_buffer(make, name, init):
    m = _dense_model()
    w = m.trainable_weights
    opt = make()
    opt.build(w)
    first = [opt._slots_of(v)[0] for v in w]
    for v, s in zip(w, first):
        assert isinstance(s, cc.Variable) and not s.trainable
        assert s.name == f"{v.name}_{name}"
        assert s.shape == v.shape and s.dtype == v.dtype and s.device == v.device == "cpu"
        np.testing.assert_array_equal(s.numpy(), np.full(v.shape, init, np.float32))
        assert s._data.flags.c_contiguous and s._data.flags.writeable
        assert not np.shares_memory(s._data, v._data)
    buffers = [s._data for s, _ in _state(opt)]
    for i, a in enumerate(buffers):
        for b in buffers[i + 1:]:
            assert not np.shares_memory(a, b)


def test_second_step_makes_no_new_optimizer_state():
    m = _dense_model()
    m.compile(optimizer=optimizers.Adam(1e-3), loss="mse")
    x, y = _data()
    m.train_on_batch(x, y)
    opt = m.optimizer
    after_first = _state(opt)
    assert len(after_first) == 2 * len(m.trainable_weights)
    before = [b.copy() for _, b in after_first]
    for _ in range(3):
        m.train_on_batch(x, y)
    m.fit(x, y, batch_size=4, epochs=2, verbose=0)
    later = _state(opt)
    assert len(later) == len(after_first)
    for (s0, b0), (s1, b1), old in zip(after_first, later, before):
        assert s1 is s0 and b1 is b0  # the same variable, updated in place in the same buffer
    assert any(not np.array_equal(b, old) for (_, b), old in zip(later, before))  # and it was updated


def test_slot_path_trains_as_the_reference_update():
    # SGD with momentum, written out in float64 numpy for the same weights and gradients:
    # the slots made on the new path start at zero and carry the velocity.
    m = _dense_model(units=6, inputs=5)
    x, y = _data(8, 5)
    opt = optimizers.SGD(0.1, momentum=0.9)
    w = m.trainable_weights
    ref_w = [v.numpy().astype(np.float64) for v in w]
    ref_v = [np.zeros_like(a) for a in ref_w]
    for _ in range(3):
        with cc.GradientTape() as tape:
            out = m(x, training=True)
            loss = cc.ops.mean(cc.ops.square(out - y))
        grads = tape.gradient(loss, w)
        for i, g in enumerate(grads):
            ref_v[i] = 0.9 * ref_v[i] - 0.1 * g.numpy().astype(np.float64)
            ref_w[i] = ref_w[i] + ref_v[i]
        opt.apply_gradients(zip(grads, w))
    for v, r in zip(w, ref_w):
        np.testing.assert_allclose(v.numpy(), r, rtol=1e-5, atol=1e-6)
    for v, r in zip(w, ref_v):
        np.testing.assert_allclose(opt._slots_of(v)[0].numpy(), r, rtol=1e-5, atol=1e-6)


def test_accumulator_and_average_state_are_fresh_zeros_and_averages_start_at_the_weights():
    m = _dense_model(units=6, inputs=5)
    x, y = _data(8, 5)
    m.compile(optimizer=optimizers.SGD(0.05, gradient_accumulation_steps=2), loss="mse")
    w0 = [v.numpy().copy() for v in m.trainable_weights]
    m.train_on_batch(x, y)  # not an update step: only the accumulators move
    for v, a in zip(m.trainable_weights, w0):
        np.testing.assert_array_equal(v.numpy(), a)
    accs = [m.optimizer._accumulator(v) for v in m.trainable_weights]
    for v, acc in zip(m.trainable_weights, accs):
        assert acc.shape == v.shape and not acc.trainable and acc.name == f"{v.name}_gradient_accumulator"
        assert not np.shares_memory(acc._data, v._data)
        assert np.any(acc.numpy() != 0)  # the first gradient, summed
    m2 = _dense_model(units=6, inputs=5)
    opt = optimizers.SGD(0.05, use_ema=True, ema_momentum=0.5)
    opt.build(m2.trainable_weights)
    for v, avg in zip(m2.trainable_weights, opt._averages):
        assert avg.name == f"{v.name}_average" and avg.shape == v.shape
        np.testing.assert_array_equal(avg.numpy(), 0.0)
    m2.compile(optimizer=opt, loss="mse")
    w_before = [v.numpy().copy() for v in m2.trainable_weights]
    m2.train_on_batch(x, y)
    # Keras: the first EMA step copies the (updated) weights
    for v, avg, b in zip(m2.trainable_weights, opt._averages, w_before):
        np.testing.assert_allclose(avg.numpy(), v.numpy(), rtol=1e-6)
        assert not np.array_equal(v.numpy(), b)


@pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter on this machine")
def test_slots_live_on_the_weights_device():
    m = _dense_model(units=6, inputs=5, device="gpu")
    m.compile(optimizer=optimizers.Adam(1e-2), loss="mse", device="gpu")
    x, y = _data(8, 5)
    m.train_on_batch(x, y)
    state = _state(m.optimizer)
    for s, _ in state:
        assert s.device == "gpu"
        assert np.all(np.isfinite(s.numpy())) and np.any(s.numpy() != 0)
    m.train_on_batch(x, y)
    assert all(s1 is s0 and b1 is b0 for (s0, b0), (s1, b1) in zip(state, _state(m.optimizer)))
