"""The native thread pool: sizing, determinism, concurrent callers, GIL release."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.signal as ss

import convcore
from convcore import ndimage as cn

ORIGINAL_THREADS = convcore.get_num_threads()


def test_num_threads_round_trip(restore_threads):
    assert restore_threads >= 1
    for n in (1, 2, 3, 1):
        convcore.set_num_threads(n)
        assert convcore.get_num_threads() == n
    convcore.set_num_threads(restore_threads)
    assert convcore.get_num_threads() == restore_threads


@pytest.mark.parametrize("bad", [0, -1, -100])
def test_set_num_threads_rejects_non_positive(bad, restore_threads):
    with pytest.raises(ValueError) as info:
        convcore.set_num_threads(bad)
    assert str(bad) in str(info.value)
    assert convcore.get_num_threads() == restore_threads  # unchanged


@pytest.mark.parametrize("bad", [1.5, "2", None, True])
def test_set_num_threads_rejects_non_int(bad, restore_threads):
    with pytest.raises(TypeError):
        convcore.set_num_threads(bad)
    assert convcore.get_num_threads() == restore_threads


def _workload():
    rng = np.random.default_rng(0)
    a2 = rng.standard_normal((90, 70))
    k2 = rng.standard_normal((9, 7))
    a1 = rng.standard_normal(5000).astype(np.float32)
    k1 = rng.standard_normal(300).astype(np.float32)
    a3 = rng.standard_normal((12, 14, 10))
    k3 = rng.standard_normal((3, 4, 2))
    x = rng.standard_normal((4, 32, 30, 3))
    return [
        lambda: convcore.correlate(a2, k2, "full", "direct"),
        lambda: convcore.correlate(a2, k2, "same", "fft"),
        lambda: convcore.convolve(a1, k1, "valid", "direct"),
        lambda: convcore.convolve(a1, k1, "full", "fft"),
        lambda: convcore.correlate(a3, k3, "full", "auto"),
        lambda: convcore.correlate2d(a2, k2, "same", "symm"),
        lambda: cn.gaussian_filter(a2, 2.0, mode="mirror"),
        lambda: cn.correlate(a3, k3, mode="wrap"),
        lambda: convcore.max_pool(x, 3, strides=2, padding="same"),
        lambda: convcore.avg_pool(x, 2, padding="same"),
    ]


def test_results_identical_with_1_and_2_threads(restore_threads):
    convcore.set_num_threads(1)
    one = [f() for f in _workload()]
    convcore.set_num_threads(2)
    two = [f() for f in _workload()]
    for i, (r1, r2) in enumerate(zip(one, two)):
        assert r1.dtype == r2.dtype
        np.testing.assert_array_equal(r1, r2, err_msg=f"workload {i}")


def test_concurrent_python_threads_give_correct_results(restore_threads):
    convcore.set_num_threads(2)
    rng = np.random.default_rng(1)
    cases = []
    for i in range(16):
        a = rng.standard_normal((40 + i, 30))
        b = rng.standard_normal((3 + i % 5, 4))
        method = ("direct", "fft", "auto")[i % 3]
        cases.append((a, b, method, ss.correlate(a, b, "same", "direct")))

    def run(case):
        a, b, method, _ = case
        return [convcore.correlate(a, b, "same", method) for _ in range(5)]

    with ThreadPoolExecutor(max_workers=4) as ex:
        results = list(ex.map(run, cases))
    for (a, b, _, expected), outs in zip(cases, results):
        for out in outs:
            np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12 * np.abs(a).max() * np.abs(b).sum())


def test_gil_released_during_native_call(restore_threads):
    """While one thread is inside a long native correlate, another Python thread keeps
    running. The other thread timestamps its iterations; with the GIL held for the whole
    call no timestamp could fall in the middle half of the call."""
    convcore.set_num_threads(1)
    rng = np.random.default_rng(2)
    k = rng.standard_normal(1024)
    n = 100_000
    # grow the problem until one call takes at least 0.3 s (bounded)
    while True:
        a = rng.standard_normal(n)
        t = time.perf_counter()
        convcore.correlate(a, k, "valid", "direct")
        dt = time.perf_counter() - t
        if dt >= 0.3 or n >= 64_000_000:
            break
        n = int(n * min(max(0.4 / max(dt, 1e-4), 2.0), 16.0))
    span = {}
    started = threading.Event()

    def worker():
        started.set()
        span["t0"] = time.perf_counter()
        convcore.correlate(a, k, "valid", "direct")
        span["t1"] = time.perf_counter()

    th = threading.Thread(target=worker)
    stamps = []
    th.start()
    started.wait()
    while th.is_alive():
        stamps.append(time.perf_counter())
        time.sleep(0.001)
    th.join()
    t0, t1 = span["t0"], span["t1"]
    assert t1 - t0 > 0.1, "the native call was too short to measure"
    q = (t1 - t0) / 4
    inside = [s for s in stamps if t0 + q < s < t1 - q]
    assert len(inside) > 0, f"no Python progress during a {t1 - t0:.2f} s native call ({len(stamps)} stamps)"


def test_training_is_identical_on_1_and_2_threads():
    """Convolution weight gradients are reduced over a split that depends on the shape
    only, so a training step gives the same bits on any number of threads."""
    from convcore import Input, Sequential, layers

    def run(threads):
        convcore.set_num_threads(threads)
        try:
            convcore.set_seed(3)
            m = Sequential([Input((12, 12, 2)), layers.Conv2D(8, 3, activation="relu"), layers.MaxPooling2D(2),
                            layers.Conv2D(16, 3), layers.Flatten(), layers.Dense(4, activation="softmax")])
            m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            rng = np.random.default_rng(0)
            x = rng.random((37, 12, 12, 2), dtype=np.float32)
            y = rng.integers(0, 4, 37)
            loss, grads = m.loss_and_gradients(x, y)
            m.fit(x, y, epochs=2, batch_size=16, verbose=0)
            return loss, grads, m.get_weights()
        finally:
            convcore.set_num_threads(ORIGINAL_THREADS)

    l1, g1, w1 = run(1)
    l2, g2, w2 = run(2)
    assert l1 == l2
    for a, b in zip(g1 + w1, g2 + w2):
        np.testing.assert_array_equal(a, b)


def test_set_num_threads_rejects_absurd_counts():
    with pytest.raises(ValueError, match="1024"):
        convcore.set_num_threads(30000)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="os.fork exists on POSIX only")
def test_a_forked_child_runs_native_work():
    """A child forked after the parent used the native pool (a DataLoader or a
    multiprocessing worker with the 'fork' start method) starts its own pool instead
    of waiting forever on the parent's threads, which do not exist in the child; the
    parent's pool keeps working."""
    import os
    import warnings
    x = np.random.default_rng(2).random((64, 64)).astype(np.float32)
    want = cn.gaussian_filter(x, 2.0)  # the parent's pool exists now
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # (fork in a process with threads)
        pid = os.fork()
    if pid == 0:  # the child: report, never return into pytest
        try:
            os.close(r)
            got = cn.gaussian_filter(x, 2.0)
            ok = np.array_equal(got, want) and convcore.get_num_threads() == ORIGINAL_THREADS
            os.write(w, b"ok" if ok else b"wrong")
        finally:
            os._exit(0)
    os.close(w)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung in native work")
    assert os.read(r, 16) == b"ok"
    os.close(r)
    np.testing.assert_array_equal(cn.gaussian_filter(x, 2.0), want)
