"""fit / evaluate / predict on generators, PyDatasets / Sequences and
image_dataset_from_directory (convcore.trainers.data_adapters), against fit on the
equivalent arrays and against real Keras 3.15 (jax backend): the batches drawn, the
callback hooks, the histories; loading in worker threads / processes (the same batches,
errors with their traceback, nothing left running); the file listing and pixels of
image_dataset_from_directory; the bad inputs."""
from __future__ import annotations

import contextlib
import io
import itertools
import multiprocessing
import threading
import traceback
import warnings

import numpy as np
import pytest

import convcore as cc
from convcore.utils.image_dataset_utils import image_dataset_from_directory
from convcore.utils.py_dataset import PyDataset, Sequence



class _Keras:
    """Real Keras, imported on first use (KERAS_BACKEND=jax comes from conftest): the
    worker processes of the use_multiprocessing tests import this module to unpickle
    its datasets, and need neither Keras nor jax."""

    def __getattr__(self, name):
        import keras as k
        return getattr(k, name)


keras = _Keras()

X = np.random.RandomState(0).rand(20, 4).astype("float32")
Y = (X @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32")).astype("float32")
C = (X[:, 0] > 0.5).astype("int64")  # classes, for class_weight
W0 = [np.array([[0.1], [-0.2], [0.3], [0.05]], dtype="float32"), np.array([0.01], dtype="float32")]
BS = 4  # 5 batches of 4


def batch(b):
    b %= 5
    return X[b * BS:(b + 1) * BS], Y[b * BS:(b + 1) * BS]


def gen(n=None, counter=None):
    """Batches 0..4 of the arrays, round and round; ``n`` of them (None: forever)."""
    i = 0
    while n is None or i < n:
        if counter is not None:
            counter[0] += 1
        yield batch(i)
        i += 1


class _Body:
    """The arrays as a PyDataset of 5 batches, recording its calls."""

    def __init__(self, n=5, fail_at=None, **kw):
        super().__init__(**kw)
        self.n, self.fail_at = n, fail_at
        self.calls = {"get": [], "begin": 0, "end": 0}

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise ZeroDivisionError(f"marker-{i}: batch failed in the worker")
        self.calls["get"].append(i)
        return batch(i)

    def on_epoch_begin(self):
        self.calls["begin"] += 1

    def on_epoch_end(self):
        self.calls["end"] += 1


class DS(_Body, PyDataset):
    pass


_KDS = []


def KDS(*args, **kw):
    """The same for Keras."""
    if not _KDS:
        _KDS.append(type("KDS", (_Body, keras.utils.PyDataset), {}))
    return _KDS[0](*args, **kw)


class InfiniteDS(DS):
    @property
    def num_batches(self):
        return None


class OldSequence(Sequence):
    """tf.keras 2 style: an __init__ that never calls super().__init__."""

    def __init__(self):
        self.n = 5

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return batch(i)


class DuckSequence:
    """No base class: __len__ + __getitem__ returning batches."""

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return batch(i)


def ours(loss="mse"):
    m = cc.Sequential([cc.Input((4,)), cc.layers.Dense(1)])
    m.set_weights(W0)
    m.compile(cc.optimizers.SGD(0.05), loss, metrics=["mae"])
    return m


def theirs():
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    m.set_weights(W0)
    m.compile(keras.optimizers.SGD(0.05), "mse", metrics=["mae"])
    return m


def make_counter(base):
    class Count(base):
        def __init__(self):
            super().__init__()
            self.c = collections_counter()

        def on_train_batch_begin(self, batch, logs=None):
            self.c["train_begin"] += 1

        def on_train_batch_end(self, batch, logs=None):
            self.c["train_end"] += 1

        def on_test_batch_end(self, batch, logs=None):
            self.c["test_end"] += 1

        def on_epoch_end(self, epoch, logs=None):
            self.c["epoch_end"] += 1
            self.c["steps_param"] = self.params.get("steps")
    return Count()


def collections_counter():
    import collections
    return collections.Counter()


def fit_both(make_data, **kw):
    """The same fit in convcore and Keras on fresh data: (batches drawn, hook counts,
    history) for each, and whether each warned that the input ran out."""
    out = []
    for lib, model, base in (("cc", ours, cc.callbacks.Callback), ("keras", theirs, keras.callbacks.Callback)):
        counter = [0]
        data = make_data(counter)
        cb = make_counter(base)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            h = model().fit(callbacks=[cb], verbose=0, shuffle=False, **data, **kw)
        ran_out = any("ran out of data" in str(x.message) for x in w)
        out.append((counter[0], dict(cb.c), {k: len(v) for k, v in h.history.items()}, ran_out))
    return out


# ---------------------------------------------------------------------- same result as arrays
def _assert_same(m1, h1, m2, h2):
    for a, b in zip(m1.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert h1.history.keys() == h2.history.keys()
    for k in h1.history:
        np.testing.assert_array_equal(h1.history[k], h2.history[k], err_msg=k)


@pytest.mark.parametrize("make,epochs,passes", [
    (lambda: dict(x=gen(), steps_per_epoch=5), 3, 1),
    (lambda: dict(x=gen(15)), 1, 3),  # finite: one epoch until it ends
    (lambda: dict(x=DS()), 3, 1),
    (lambda: dict(x=DS(workers=3, max_queue_size=2)), 3, 1),
    (lambda: dict(x=OldSequence()), 3, 1),
    (lambda: dict(x=DuckSequence()), 3, 1),
    (lambda: dict(x=iter([batch(b) for b in range(15)])), 1, 3),
], ids=["infinite-gen", "finite-gen", "pydataset", "threads", "sequence-no-super", "duck-sequence", "iterator"])
def test_fit_on_batches_equals_fit_on_arrays(make, epochs, passes):
    ma, mb = ours(), ours()
    ha = ma.fit(np.concatenate([X] * passes), np.concatenate([Y] * passes), batch_size=BS, epochs=epochs,
                shuffle=False, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the no-super() Sequence's warning
        hb = mb.fit(epochs=epochs, shuffle=False, verbose=0, **make())
    _assert_same(ma, ha, mb, hb)


@pytest.mark.skipif(not cc._core.gpu_available(), reason="no GPU adapter")
def test_fit_on_batches_on_the_gpu():
    """The GPU's deferred read-back (no per-batch callback) with batches from a
    generator / a PyDataset with workers: the same as the GPU's fit on arrays."""
    def model():
        m = cc.Sequential([cc.Input((4,)), cc.layers.Dense(1)])
        m.set_weights(W0)
        m.compile(cc.optimizers.SGD(0.05), "mse", metrics=["mae"], device="gpu")
        return m
    ma = model()
    ha = ma.fit(X, Y, batch_size=BS, epochs=2, shuffle=False, verbose=0, validation_data=(X[:8], Y[:8]))
    for data in (dict(x=gen(), steps_per_epoch=5), dict(x=DS(workers=2))):
        mb = model()
        hb = mb.fit(epochs=2, shuffle=False, verbose=0, validation_data=DS(n=2), **data)
        for a, b in zip(ma.get_weights(), mb.get_weights()):
            np.testing.assert_array_equal(a, b)
        for k in ha.history:
            np.testing.assert_allclose(hb.history[k], ha.history[k], rtol=1e-6, err_msg=k)
    np.testing.assert_array_equal(ma.predict(gen(5), verbose=0), ma.predict(X, batch_size=BS, verbose=0))


def test_fit_on_arrays_equals_keras():
    """The reference of the tests above: the array fit is Keras's."""
    mk, mc = theirs(), ours()
    hk = mk.fit(X, Y, batch_size=BS, epochs=2, shuffle=False, verbose=0)
    hc = mc.fit(X, Y, batch_size=BS, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(mk.get_weights(), mc.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hc.history["loss"], hk.history["loss"], rtol=1e-5)


def test_class_weight_and_sample_weight_per_batch():
    cw = {0: 0.5, 1: 2.0}
    yc = C.reshape(-1, 1).astype("float32")

    def bgen(n):
        for i in range(n):
            b = i % 5
            yield X[b * BS:(b + 1) * BS], yc[b * BS:(b + 1) * BS]
    ma, mb = ours("binary_crossentropy"), ours("binary_crossentropy")
    ha = ma.fit(X, yc, batch_size=BS, epochs=2, shuffle=False, class_weight=cw, verbose=0)
    with pytest.warns(UserWarning, match="shuffle=True"):  # fit's default shuffle, as Keras warns
        hb = mb.fit(bgen(10), steps_per_epoch=5, epochs=2, class_weight=cw, verbose=0)
    _assert_same(ma, ha, mb, hb)
    sw = np.linspace(0.5, 1.5, 20).astype("float32")
    ma, mb = ours(), ours()
    ha = ma.fit(X, Y, sample_weight=sw, batch_size=BS, epochs=1, shuffle=False, verbose=0)
    hb = mb.fit(((X[b * BS:(b + 1) * BS], Y[b * BS:(b + 1) * BS], sw[b * BS:(b + 1) * BS]) for b in range(5)),
                shuffle=False, verbose=0)
    _assert_same(ma, ha, mb, hb)


def test_evaluate_and_predict_on_batches():
    m = ours()
    m.fit(X, Y, batch_size=BS, epochs=1, shuffle=False, verbose=0)
    ref = m.evaluate(X, Y, batch_size=BS, verbose=0, return_dict=True)
    for data in (gen(5), DS(), DS(workers=2), iter([batch(b) for b in range(5)])):
        assert m.evaluate(data, verbose=0, return_dict=True) == ref
    assert m.evaluate(gen(), steps=5, verbose=0, return_dict=True) == ref
    p = m.predict(X, batch_size=BS, verbose=0)
    np.testing.assert_array_equal(m.predict(gen(5), verbose=0), p)
    np.testing.assert_array_equal(m.predict((batch(b)[0] for b in range(5)), verbose=0), p)  # x alone
    np.testing.assert_array_equal(m.predict(DS(workers=3), verbose=0), p)
    np.testing.assert_array_equal(m.predict(gen(), steps=2, verbose=0), p[:8])
    # the same against Keras with the same weights
    k = theirs()
    k.set_weights(m.get_weights())
    np.testing.assert_allclose(k.predict(gen(5), verbose=0), p, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(k.evaluate(gen(5), verbose=0), m.evaluate(gen(5), verbose=0), rtol=1e-6)


def test_validation_data_as_generator_and_pydataset():
    ma = ours()
    ha = ma.fit(X, Y, batch_size=BS, epochs=2, shuffle=False, validation_data=(X[:8], Y[:8]), verbose=0)
    # a generator is one stream: each validation goes on where the last stopped (as
    # tf.keras 2; Keras 3.15 replays the first batches it peeked at)
    two = (batch(i % 2) for i in itertools.count())
    for val, kw in ((two, dict(validation_steps=2)), (DS(n=2), {}), (DS(n=2, workers=2), {})):
        mb = ours()
        hb = mb.fit(DS(), epochs=2, shuffle=False, validation_data=val, verbose=0, **kw)
        _assert_same(ma, ha, mb, hb)


def test_validation_generator_that_ends_stops_training():
    with pytest.warns(UserWarning, match="ran out of data"):
        h = ours().fit(DS(), epochs=4, shuffle=False, validation_data=gen(2), verbose=0)
    assert len(h.history["loss"]) == 2 and len(h.history["val_loss"]) == 1


# ---------------------------------------------------------------------- counts against Keras
@pytest.mark.parametrize("case", [
    dict(data=lambda c: dict(x=gen(None, c), steps_per_epoch=3), epochs=2),
    dict(data=lambda c: dict(x=gen(9, c), steps_per_epoch=3), epochs=3),
    dict(data=lambda c: dict(x=gen(10, c), steps_per_epoch=4), epochs=3),  # runs out in epoch 3
    dict(data=lambda c: dict(x=gen(7, c)), epochs=1, keras_warns_at_end=True),
    dict(data=lambda c: dict(x=gen(None, c), steps_per_epoch=3, validation_data=gen(None, c),
                             validation_steps=2), epochs=1),
], ids=["infinite-steps", "finite-exact", "finite-runs-out", "finite-no-steps", "validation-generator"])
def test_generator_counts_equal_keras(case):
    (c_drawn, c_hooks, c_hist, c_warn), (k_drawn, k_hooks, k_hist, k_warn) = fit_both(case["data"],
                                                                                       epochs=case["epochs"])
    assert c_drawn == k_drawn
    assert c_hist == k_hist
    for k in ("train_end", "test_end", "epoch_end", "steps_param"):
        assert c_hooks.get(k) == k_hooks.get(k), k
    # Keras calls on_train_batch_begin once more when its input runs out (before it
    # finds out); convcore fetches the batch first, so begin and end pair up
    assert c_hooks["train_begin"] == c_hooks["train_end"]
    assert k_hooks["train_begin"] - k_hooks["train_end"] in (0, 1)
    assert c_warn == (case["epochs"] == 3 and c_drawn == 10)
    # Keras also gives its "ran out" warning at the natural end of a generator without
    # steps_per_epoch; convcore only when an epoch was cut short or nothing is left
    assert k_warn == (c_warn or case.get("keras_warns_at_end", False))


def test_finite_generator_without_steps_stops_after_it_ends():
    """Keras 3.15 replays the two batches it peeked at in every epoch after the
    generator ended; convcore stops with Keras's warning instead."""
    (c_drawn, c_hooks, c_hist, c_warn), (k_drawn, k_hooks, k_hist, k_warn) = fit_both(
        lambda c: dict(x=gen(10, c)), epochs=3)
    assert c_drawn == k_drawn == 10
    assert k_hooks["train_end"] == 10 + 2 + 2 and k_hist["loss"] == 3  # Keras's replay
    assert c_hooks["train_end"] == 10 and c_hist["loss"] == 1 and c_warn and k_warn


def test_pydataset_calls_equal_keras():
    """getitem / epoch-hook calls of a PyDataset: Keras's, minus the batch and the
    hook pair its symbolic build adds (its first dataset[0], one on_epoch_begin /
    on_epoch_end more, and one on_epoch_end per reset)."""
    for kw in (dict(epochs=2), dict(epochs=3, steps_per_epoch=3), dict(epochs=2, steps_per_epoch=4)):
        dc, dk = DS(), KDS()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hc = ours().fit(dc, shuffle=False, verbose=0, **kw)
            hk = theirs().fit(dk, shuffle=False, verbose=0, **kw)
        assert dc.calls["get"] == dk.calls["get"][1:], kw
        assert dc.calls["begin"] == dc.calls["end"] == kw["epochs"] == dk.calls["begin"] - 1
        assert {k: len(v) for k, v in hc.history.items()} == {k: len(v) for k, v in hk.history.items()}
    vc, vk = DS(), KDS()  # validation with validation_steps: from the first batch each time, as Keras
    ours().fit(X, Y, epochs=2, validation_data=vc, validation_steps=2, verbose=0)
    theirs().fit(X, Y, epochs=2, validation_data=vk, validation_steps=2, verbose=0)
    assert vc.calls["get"] == vk.calls["get"] == [0, 1, 0, 1]
    di = InfiniteDS()
    ours().fit(di, epochs=2, steps_per_epoch=3, verbose=0)
    assert di.calls["get"] == list(range(6))  # an infinite dataset's indices go on across epochs


def test_pydataset_shuffle_shuffles_batch_order():
    cc.set_seed(3)
    d = DS()
    ours().fit(d, epochs=3, shuffle=True, verbose=0)
    orders = [d.calls["get"][i * 5:(i + 1) * 5] for i in range(3)]
    assert all(sorted(o) == list(range(5)) for o in orders)
    assert len({tuple(o) for o in orders}) > 1
    cc.set_seed(3)
    d2 = DS()
    ours().fit(d2, epochs=3, shuffle=True, verbose=0)
    assert d2.calls["get"] == d.calls["get"]  # reproducible with convcore's seed


# ---------------------------------------------------------------------- workers
def test_worker_threads_give_the_same_batches_in_order():
    seen = []

    class Slow(DS):
        def __getitem__(self, i):
            seen.append(threading.current_thread().name)
            return super().__getitem__(i)
    d = Slow(workers=4, max_queue_size=3)
    m = ours()
    out = m.predict(d, verbose=0)
    np.testing.assert_array_equal(out, m.predict(X, batch_size=BS, verbose=0))
    assert sorted(d.calls["get"]) == list(range(5))
    assert all(name.startswith("convcore-loader") for name in seen)  # loaded off the main thread


class PicklableDS(PyDataset):
    def __init__(self, fail_at=None, **kw):
        super().__init__(**kw)
        self.fail_at = fail_at

    def __len__(self):
        return 5

    def __getitem__(self, i):
        if i == self.fail_at:
            raise KeyError(f"marker-process-{i}")
        return batch(i)


def test_use_multiprocessing_with_a_picklable_dataset():
    """Worker processes (forkserver / spawn: about a second to start): the same
    batches, and an error in a worker reaches fit with the worker's traceback."""
    ma, mb = ours(), ours()
    ha = ma.fit(X, Y, batch_size=BS, epochs=1, shuffle=False, verbose=0)
    hb = mb.fit(PicklableDS(workers=2, use_multiprocessing=True), epochs=1, shuffle=False, verbose=0)
    _assert_same(ma, ha, mb, hb)
    assert multiprocessing.active_children() == []
    with pytest.raises(KeyError, match="marker-process-3") as e:
        ours().fit(PicklableDS(fail_at=3, workers=2, use_multiprocessing=True), shuffle=False, verbose=0)
    assert "__getitem__" in str(e.value.__cause__) and "Traceback" in str(e.value.__cause__)  # the worker's own
    assert multiprocessing.active_children() == []


def test_unpicklable_dataset_with_processes():
    class Local(DS):  # a local class cannot be pickled
        pass
    with pytest.raises(TypeError, match="use_multiprocessing=True .* must be picklable"):
        ours().fit(Local(workers=2, use_multiprocessing=True), verbose=0)
    assert multiprocessing.active_children() == []


def _is_ours(t):
    return t.name.startswith(("convcore-loader", "convcore-generator"))


@pytest.mark.parametrize("make", [lambda: DS(fail_at=2, workers=3), lambda: DS(fail_at=2)],
                         ids=["threads", "main-thread"])
def test_worker_exception_reaches_fit_with_its_traceback(make):
    before = threading.active_count()
    with pytest.raises(ZeroDivisionError, match="marker-2") as e:
        ours().fit(make(), shuffle=False, verbose=0)
    frames = [f.name for f in traceback.extract_tb(e.value.__traceback__)]
    assert "__getitem__" in frames  # the worker's frame, under fit's
    assert threading.active_count() == before and not any(_is_ours(t) for t in threading.enumerate())


def test_generator_exception_reaches_fit_with_its_traceback():
    def bad():
        yield batch(0)
        yield batch(1)
        raise RuntimeError("marker-generator")
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="marker-generator") as e:
        ours().fit(bad(), shuffle=False, verbose=0)
    assert "bad" in [f.name for f in traceback.extract_tb(e.value.__traceback__)]
    assert threading.active_count() == before


def test_no_thread_left_after_fit_evaluate_predict():
    before = threading.active_count()
    m = ours()
    m.fit(DS(workers=3), epochs=3, validation_data=DS(n=2, workers=2), verbose=0)
    m.fit(gen(), steps_per_epoch=2, epochs=2, validation_data=gen(), validation_steps=1, shuffle=False, verbose=0)
    m.evaluate(gen(5), verbose=0)
    m.predict(DS(workers=2), verbose=0)
    assert threading.active_count() == before
    assert not any(_is_ours(t) for t in threading.enumerate())


def test_keyboard_interrupt_stops_cleanly():
    class Interrupt(cc.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                raise KeyboardInterrupt
    before = threading.active_count()
    for data in (dict(x=DS(workers=3)), dict(x=gen(), steps_per_epoch=5)):
        d = data["x"]
        with pytest.raises(KeyboardInterrupt):
            ours().fit(callbacks=[Interrupt()], shuffle=False, verbose=0, **data)
        assert threading.active_count() == before
        if isinstance(d, DS):
            assert d.calls["end"] == 1  # the epoch was closed
    m = ours()
    m.fit(DS(workers=2), verbose=0)  # and the next fit runs normally


@pytest.mark.parametrize("kind", ["threads", "generator"])
def test_ctrl_c_while_waiting_for_a_batch(kind):
    """A real SIGINT (Ctrl-C) arriving while fit waits for a worker: KeyboardInterrupt
    reaches the caller and every loading thread is joined."""
    import os
    import signal
    import time

    def interrupt():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)

    class Slow(DS):
        def __getitem__(self, i):
            if i == 2:
                interrupt()
            return super().__getitem__(i)

    def slow_gen():
        for i in range(5):
            if i == 2:
                interrupt()
            yield batch(i)
    before = threading.active_count()
    data = dict(x=Slow(workers=2, max_queue_size=1)) if kind == "threads" else dict(x=slow_gen())
    with pytest.raises(KeyboardInterrupt):
        ours().fit(shuffle=False, verbose=0, **data)
    assert threading.active_count() == before and not any(_is_ours(t) for t in threading.enumerate())


def test_generator_producer_draws_ahead_into_a_bounded_queue():
    from convcore.trainers.data_adapters import Producer
    drawn = [0]
    p = Producer(gen(None, drawn), max_queue_size=2)
    p.allow(None)
    first = p.next()
    for _ in range(100):
        if drawn[0] >= 3:
            break
        threading.Event().wait(0.005)
    assert drawn[0] <= 1 + 2 + 1  # one given, two queued, one waiting to be put
    np.testing.assert_array_equal(first[0], batch(0)[0])
    p.close()
    assert not any(_is_ours(t) for t in threading.enumerate())


# ---------------------------------------------------------------------- the aliases
def test_generator_aliases_take_tf_keras_2_arguments():
    import inspect
    sig = inspect.signature(cc.Model.fit_generator).parameters
    assert list(sig)[1:] == ["generator", "steps_per_epoch", "epochs", "verbose", "callbacks", "validation_data",
                             "validation_steps", "validation_freq", "class_weight", "max_queue_size", "workers",
                             "use_multiprocessing", "shuffle", "initial_epoch"]
    for name in ("evaluate_generator", "predict_generator"):
        assert list(inspect.signature(getattr(cc.Model, name)).parameters)[1:] == [
            "generator", "steps", "callbacks", "max_queue_size", "workers", "use_multiprocessing", "verbose"]
        assert "deprecated" in getattr(cc.Model, name).__doc__
    assert "deprecated" in cc.Model.fit_generator.__doc__
    ma, mb = ours(), ours()
    ha = ma.fit(X, Y, batch_size=BS, epochs=2, shuffle=False, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tf.keras 2 did not warn about shuffle with a generator
        hb = mb.fit_generator(gen(), steps_per_epoch=5, epochs=2, verbose=0, workers=1, max_queue_size=3)
    _assert_same(ma, ha, mb, hb)
    mc = ours()
    hc = mc.fit_generator(OldSequence(), epochs=2, verbose=0, shuffle=False, workers=3)  # workers on a Sequence
    _assert_same(ma, ha, mc, hc)
    assert ma.evaluate_generator(gen(5), workers=0) == ma.evaluate(X, Y, batch_size=BS, verbose=0)
    np.testing.assert_array_equal(ma.predict_generator(DS(), workers=2, use_multiprocessing=False),
                                  ma.predict(X, batch_size=BS, verbose=0))


def test_sequence_is_pydataset_and_warns_without_super():
    assert Sequence is PyDataset
    assert keras.utils.Sequence is keras.utils.PyDataset
    s = OldSequence()
    with pytest.warns(UserWarning, match=r"should call `super\(\).__init__"):
        assert s.workers == 1
    assert s.use_multiprocessing is False and s.max_queue_size == 10
    assert [b[0].shape for b in s] == [(4, 4)] * 5  # iterating by hand


# ---------------------------------------------------------------------- progress bar
def test_progress_bar_unknown_then_known(monkeypatch):
    from fake_terminal import FakeTTY
    out = FakeTTY()
    monkeypatch.setattr("sys.stdout", out)
    ours().fit(gen(10), steps_per_epoch=None, epochs=1, verbose=1, shuffle=False)
    text = out.getvalue()
    assert "/Unknown" in text and "10/10" in text.split("\n")[-2]
    out2 = FakeTTY()
    monkeypatch.setattr("sys.stdout", out2)
    ours().fit(DS(), epochs=1, verbose=1, shuffle=False)
    assert "Unknown" not in out2.getvalue() and "5/5" in out2.getvalue()


# ---------------------------------------------------------------------- bad input
def test_bad_input_messages():
    m = ours()
    with pytest.raises(ValueError, match="`batch_size` argument must not be specified"):
        m.fit(gen(), batch_size=4, steps_per_epoch=2, verbose=0)
    with pytest.raises(ValueError, match="`y` should not be passed"):
        m.fit(DS(), Y, verbose=0)
    with pytest.raises(ValueError, match="`sample_weights` should not be passed"):
        m.evaluate(gen(5), sample_weight=np.ones(20), verbose=0)
    with pytest.raises(ValueError, match="`validation_split` is only supported for tensors or NumPy arrays"):
        m.fit(gen(5), validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match="infinite .* steps_per_epoch must be given"):
        m.fit(InfiniteDS(), verbose=0)
    with pytest.raises(ValueError, match="infinite .* steps must be given"):
        m.predict(InfiniteDS(), verbose=0)
    with pytest.raises(ValueError, match="Unrecognized data type"):
        m.fit({1, 2}, verbose=0)
    with pytest.raises(ValueError, match="empty generator"):
        cc.Sequential([cc.layers.Dense(1)]).predict(iter([]), verbose=0)

    def shapes():
        yield batch(0)
        yield batch(1)
        yield np.ones((4, 5), "float32"), np.ones((4, 1), "float32")
    with pytest.raises(ValueError, match=r"batch 3 of the generator has inputs of shape \(5,\).*first batch had "
                                         r"\(4,\)"):
        m.fit(shapes(), shuffle=False, verbose=0)
    # axes the model leaves free may change from batch to batch
    free = cc.Sequential([cc.Input((None, 4)), cc.layers.GlobalAveragePooling1D(), cc.layers.Dense(1)])
    free.compile("sgd", "mse")
    free.fit(iter([(np.ones((2, n, 4), "float32"), np.ones((2, 1), "float32")) for n in (3, 5)]), shuffle=False,
             verbose=0)
    with pytest.raises(ValueError, match="must yield batches .* received a tuple of 4"):
        m.fit(iter([(X, Y, Y, Y)]), shuffle=False, verbose=0)
    with pytest.raises(ValueError, match="class_weight or sample_weight, not both"):
        m.fit(iter([(X, Y, np.ones(20, "float32"))]), class_weight={0: 1.0}, shuffle=False, verbose=0)
    with pytest.raises(ValueError, match="has no batches"):
        m.fit(DS(n=0), verbose=0)
    # Keras's own messages for the same mistakes
    with pytest.raises(ValueError, match="`validation_split` is only supported for tensors or NumPy arrays"):
        theirs().fit(gen(5), validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match="`y` should not be passed"):
        theirs().fit(KDS(), Y, verbose=0)


def test_model_without_input_is_built_from_the_first_batch():
    m = cc.Sequential([cc.layers.Dense(1)])
    m.compile("sgd", "mse")
    d = DS()
    m.fit(d, epochs=1, shuffle=False, verbose=0)
    assert d.calls["get"] == [0, 0, 1, 2, 3, 4]  # one peek, as Keras's symbolic build
    m2 = cc.Sequential([cc.layers.Dense(1)])
    m2.compile("sgd", "mse")
    counter = [0]
    m2.fit(gen(5, counter), verbose=0, shuffle=False)
    assert counter[0] == 5  # the peeked batch is trained on, not drawn twice


# ---------------------------------------------------------------------- image_dataset_from_directory
@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    from PIL import Image
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for c, n in (("b_dogs", 4), ("a_cats", 5), ("c_birds", 3)):
        (root / c / "sub").mkdir(parents=True)
        for i in range(n):
            a = rng.integers(0, 256, (9 + i % 2, 12 + 2 * (i % 2), 3), dtype=np.uint8)
            where = root / c / ("sub" if i == 0 else "") / f"img{i}.{'png' if i % 2 else 'jpg'}"
            Image.fromarray(a).save(where)
        (root / c / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    return root


_REFERENCE = {}


def _reference_batches(paths, size, mode="rgb", crop=False):
    """Keras's numbers: Pillow-decoded files (Keras's load_img) resized by
    keras.ops.image.resize / keras.preprocessing.image.smart_resize on jax
    (tensorflow, which Keras's image_dataset_from_directory needs, is not installed)."""
    out = []
    for p in paths:
        key = (p, size, mode, crop)
        if key not in _REFERENCE:
            a = keras.utils.img_to_array(keras.utils.load_img(p, color_mode=mode))
            r = keras.preprocessing.image.smart_resize(a, size) if crop else keras.ops.image.resize(a, size)
            _REFERENCE[key] = np.asarray(r, dtype="float32")
        out.append(_REFERENCE[key])
    return np.stack(out)


def test_image_dataset_equals_keras_listing_and_pixels(image_dir, capsys):
    from keras.src.utils.dataset_utils import index_directory
    for shuffle, seed in ((False, None), (True, 7)):
        ds = image_dataset_from_directory(image_dir, image_size=(8, 10), batch_size=5, shuffle=shuffle, seed=seed)
        assert "Found 12 files belonging to 3 classes." in capsys.readouterr().out
        paths, labels, names = index_directory(str(image_dir), "inferred", formats=(".bmp", ".gif", ".jpeg", ".jpg",
                                                                                  ".png"),
                                               shuffle=shuffle, seed=seed, verbose=False)
        assert ds.class_names == names == ["a_cats", "b_dogs", "c_birds"]
        assert ds.file_paths == paths and len(ds) == 3
        xs, ys = zip(*list(ds))
        np.testing.assert_array_equal(np.concatenate(ys), labels)
        assert xs[0].dtype == np.float32 and ys[0].dtype == np.int32 and xs[0].shape == (5, 8, 10, 3)
        np.testing.assert_allclose(np.concatenate(xs), _reference_batches(paths, (8, 10)), atol=1e-3)


def test_image_dataset_modes_and_split(image_dir):
    from keras.src.utils.dataset_utils import get_training_or_validation_split, index_directory
    tr, va = image_dataset_from_directory(image_dir, label_mode="categorical", image_size=(6, 6), batch_size=4,
                                          seed=3, validation_split=0.25, subset="both", verbose=False)
    paths, labels, _ = index_directory(str(image_dir), "inferred", formats=(".jpg", ".png"), shuffle=True, seed=3,
                                       verbose=False)
    with contextlib.redirect_stdout(io.StringIO()):
        pt, lt = get_training_or_validation_split(paths, labels, 0.25, "training")
        pv, lv = get_training_or_validation_split(paths, labels, 0.25, "validation")
    assert tr.file_paths == pt and va.file_paths == pv
    np.testing.assert_array_equal(np.concatenate([b[1] for b in va]), np.eye(3, dtype="float32")[lv])
    g = image_dataset_from_directory(image_dir, color_mode="grayscale", image_size=(5, 7), batch_size=None,
                                     shuffle=False, label_mode=None, verbose=False, crop_to_aspect_ratio=True)
    assert len(g) == 12 and g[0].shape == (5, 7, 1)  # single images, no labels
    np.testing.assert_allclose(np.stack([g[i] for i in range(12)]),
                               _reference_batches(g.file_paths, (5, 7), "grayscale", crop=True), atol=1e-3)
    explicit = list(np.arange(12) % 3)
    lab = image_dataset_from_directory(image_dir, labels=explicit, label_mode="int", image_size=(4, 4), seed=5,
                                       verbose=False)
    paths, labels, names = index_directory(str(image_dir), explicit, formats=(".jpg", ".png"), shuffle=True, seed=5,
                                           verbose=False)
    assert lab.file_paths == paths and lab.class_names == names == ["0", "1", "2"]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in lab]), labels)
    two = image_dataset_from_directory(image_dir, class_names=["c_birds", "a_cats"], label_mode="binary",
                                       image_size=(4, 4), shuffle=False, verbose=False)
    x, y = two[0]
    assert y.dtype == np.float32 and y.shape == (8, 1) and y[:3].ravel().tolist() == [0, 0, 0]


def test_fit_on_image_dataset_equals_fit_on_its_arrays(image_dir):
    ds = image_dataset_from_directory(image_dir, image_size=(6, 6), batch_size=4, shuffle=False, verbose=False)
    xs, ys = map(np.concatenate, zip(*list(ds)))

    def model():
        cc.set_seed(0)
        m = cc.Sequential([cc.Input((6, 6, 3)), cc.layers.Rescaling(1 / 255), cc.layers.Flatten(),
                           cc.layers.Dense(3, activation="softmax")])
        m.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        return m
    ma, mb = model(), model()
    ha = ma.fit(xs, ys, batch_size=4, epochs=3, shuffle=False, verbose=0)
    hb = mb.fit(ds, epochs=3, shuffle=False, verbose=0)
    _assert_same(ma, ha, mb, hb)


def test_image_dataset_in_worker_processes(image_dir):
    import pickle
    ds = image_dataset_from_directory(image_dir, image_size=(6, 6), batch_size=4, shuffle=False, verbose=False)
    first = ds[0]  # the resize layer now exists; the pickle leaves it out
    again = pickle.loads(pickle.dumps(ds))
    for a, b in zip(first, again[0]):
        np.testing.assert_array_equal(a, b)
    ds.workers, ds.use_multiprocessing = 2, True
    m = cc.Sequential([cc.Input((6, 6, 3)), cc.layers.Flatten(), cc.layers.Dense(3)])
    np.testing.assert_array_equal(m.predict(ds, verbose=0), m.predict(np.concatenate([b[0] for b in again]),
                                                                        verbose=0))
    assert multiprocessing.active_children() == []


def test_image_dataset_bad_input(image_dir, tmp_path):
    with pytest.raises(ValueError, match="If `subset` is set, `validation_split` must be set"):
        image_dataset_from_directory(image_dir, validation_split=0.2)
    with pytest.raises(ValueError, match="you must provide a `seed`"):
        image_dataset_from_directory(image_dir, validation_split=0.2, subset="training")
    with pytest.raises(ValueError, match='label_mode="binary"`, there must be exactly 2'):
        image_dataset_from_directory(image_dir, label_mode="binary", verbose=False)
    with pytest.raises(ValueError, match="`color_mode` must be one of"):
        image_dataset_from_directory(image_dir, color_mode="cmyk")
    with pytest.raises(ValueError, match="did not match the names of the subdirectories"):
        image_dataset_from_directory(image_dir, class_names=["a_cats", "zebras"])
    with pytest.raises(ValueError, match="No images found in directory"):
        image_dataset_from_directory(tmp_path, verbose=False)
    with pytest.raises(ValueError, match="tf.image's"):
        image_dataset_from_directory(image_dir, interpolation="area")
    from PIL import Image
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(flat / "one.png")
    with pytest.raises(ValueError, match="no class sub-folders .* pass labels=None"):
        image_dataset_from_directory(flat, verbose=False)
    assert image_dataset_from_directory(flat, labels=None, image_size=(2, 2), verbose=False)[0].shape == (1, 2, 2, 3)
    with pytest.raises(ValueError, match='`format` should be either "tf" or "grain"'):
        image_dataset_from_directory(flat, format="numpy")
    (tmp_path / "k").mkdir()
    (tmp_path / "k" / "broken.png").write_bytes(b"\x89PNG not really")
    ds = image_dataset_from_directory(tmp_path, verbose=False, image_size=(4, 4))
    with pytest.raises(ValueError, match="could not decode the image file .*broken.png"):
        ds[0]
