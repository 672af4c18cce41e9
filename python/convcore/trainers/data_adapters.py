"""The kinds of data ``fit`` / ``evaluate`` / ``predict`` accept, one adapter each, as
Keras 3's ``keras.src.trainers.data_adapters``:

- numpy arrays (and lists / dicts of them, Tensors): :class:`ArrayDataAdapter`, the
  array epoch iterator of :mod:`.epoch_iterator` (batches sliced from memory);
- a :class:`~convcore.utils.PyDataset` (tf.keras 2's ``Sequence``), or any object with
  ``__len__`` and ``__getitem__`` returning whole batches: :class:`PyDatasetAdapter`;
- a Python generator or iterator yielding ``x``, ``(x,)``, ``(x, y)`` or ``(x, y,
  sample_weight)``, finite or infinite: :class:`GeneratorDataAdapter`.

**Loading overlaps training.** A PyDataset loads its next batches in a pool of
``workers`` threads (the default ``workers=1``: one loader thread beside the step, as
tf.keras 2's enqueuer; Keras 3 loads in the caller's thread then; ``workers=0``: in the
caller's thread) (``use_multiprocessing=True``: processes, started with 'forkserver' or
'spawn', never 'fork' (a forked child deadlocks in convcore's native thread pool): the
dataset is pickled to them, never the model, so it must be picklable and its class
importable), at most ``max_queue_size`` ahead, in order; a generator is drawn by one
producer thread into a bounded queue. The native steps release the GIL, so the loading
runs while the step computes. An exception in a worker reaches the caller of ``fit`` with
the worker's traceback (threads: the exception's own traceback; processes: chained as
its ``__cause__``); KeyboardInterrupt and any other exit stop and join the workers; a
PyDataset's pool lives for one epoch, a generator's producer for one ``fit`` /
``evaluate`` / ``predict``.

Where convcore differs from Keras 3.15 (documented in ``Model.fit``):

- Keras peeks at a generator's first two batches and, once the generator is exhausted,
  starts every later epoch by replaying those two; convcore never replays: a finite
  generator that has run out stops training with Keras's "ran out of data" warning.
- Keras calls a PyDataset's ``on_epoch_begin`` / ``on_epoch_end`` once more than the
  epochs (a pass that builds the model symbolically) and ``on_epoch_end`` once more at
  each reset; convcore calls them once per epoch (and once per evaluate / predict).
- ``class_weight`` is applied per batch to generators too (tf.keras 2 did; Keras 3
  refuses it for generators).
- ``batch_size`` with a generator or a PyDataset is refused (tf.keras 2's error);
  Keras 3 ignores it.
- Worker processes are started with 'forkserver' / 'spawn' (Keras: the platform's
  default, 'fork' on Linux), so the dataset is pickled to them: it must be picklable,
  and its class defined in a module (not a notebook); each epoch's pool starts in about
  a second.
- A PyDataset whose ``num_batches`` is None (infinite) without ``steps_per_epoch`` is
  refused (Keras 3 runs one endless epoch). A plain generator cannot say whether it
  ends: without ``steps_per_epoch`` its first epoch lasts until it stops, as Keras.
"""
from __future__ import annotations

import collections
import concurrent.futures
import concurrent.futures.process
import itertools
import math
import multiprocessing
import queue
import threading
import types
import warnings

import numpy as np

from .epoch_iterator import _RAN_OUT, EpochIterator

__all__ = ["ArrayDataAdapter", "PyDatasetAdapter", "GeneratorDataAdapter", "get_data_adapter", "is_array_data",
           "DataEpochIterator"]

_SHUFFLE_IGNORED = ("`shuffle=True` was passed, but will be ignored since the data `x` was provided as a generator. "
                    "The generator is expected to yield already-shuffled data.")


# ---------------------------------------------------------------------- classification
def _is_dataset(x):
    from ..utils.py_dataset import PyDataset
    return isinstance(x, PyDataset)


def is_array_data(x):
    """Whether ``x`` is data the array path takes: numpy arrays, Tensors, anything
    with ``__array__`` (pandas), numbers, or lists / tuples / dicts of them."""
    if x is None:
        return True
    if _is_dataset(x) or isinstance(x, (types.GeneratorType, str, bytes)):
        return False
    if isinstance(x, (np.ndarray, np.generic, int, float, bool)) or hasattr(x, "__array__"):
        return True
    from ..tensor import Tensor
    if isinstance(x, Tensor):
        return True
    if isinstance(x, dict):
        return all(is_array_data(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return all(is_array_data(v) or isinstance(v, (list, tuple)) for v in x)
    return False


def _kind(x):
    """'arrays', 'dataset' (PyDataset or __len__ + __getitem__), 'generator' or None."""
    if is_array_data(x):
        return "arrays"
    if _is_dataset(x):
        return "dataset"
    if isinstance(x, types.GeneratorType) or (hasattr(x, "__next__") and hasattr(x, "__iter__")):
        return "generator"
    if hasattr(x, "__getitem__") and hasattr(x, "__len__"):
        return "dataset"
    return None


def _type_name(x):
    return "PyDataset" if _is_dataset(x) else "generator" if _kind(x) == "generator" else type(x).__name__


def _unsupported_arg(arg_name, arg_description, input_type):
    raise ValueError(f"When providing `x` as a {input_type}, `{arg_name}` should not be passed. Instead, "
                     f"{arg_description} should be included as part of the {input_type}.")


def get_data_adapter(x, y=None, sample_weight=None, batch_size=None, steps=None, shuffle=False, class_weight=None,
                     where="fit", loader=None, warn_shuffle=True):
    """The adapter of ``x`` (None for arrays: the caller keeps its array path), with
    Keras's refusals: ``y`` / ``sample_weight`` given beside batches that carry them,
    ``batch_size`` beside data that is already in batches."""
    kind = _kind(x)
    if kind == "arrays":
        return None
    if kind is None:
        raise ValueError(f"Unrecognized data type: x={x!r} (of type {type(x)}); {where} takes numpy arrays (or "
                         "lists / dicts of them), a PyDataset / Sequence (or an object with __len__ and "
                         "__getitem__ returning batches), or a generator / iterator of batches")
    input_type = _type_name(x)
    if y is not None:
        _unsupported_arg("y", "the targets", input_type)
    if sample_weight is not None:
        _unsupported_arg("sample_weights", "the sample weights", input_type)
    if batch_size is not None:
        raise ValueError(f"{where}: the `batch_size` argument must not be specified for the given input type: a "
                         f"{input_type} yields whole batches. Received: x={type(x).__name__}, "
                         f"batch_size={batch_size!r}")
    loader = loader or {}
    if kind == "dataset":
        return PyDatasetAdapter(x, class_weight=class_weight, shuffle=shuffle, where=where, **loader)
    if shuffle and warn_shuffle:
        warnings.warn(_SHUFFLE_IGNORED, stacklevel=4)
    return GeneratorDataAdapter(x, class_weight=class_weight, where=where, **loader)


class ArrayDataAdapter:
    """numpy arrays, sliced into batches by :class:`~.epoch_iterator.EpochIterator`
    (the path ``fit`` has always taken for arrays; unchanged)."""

    def __init__(self, xs, ys=None, sample_weight=None, batch_size=32, shuffle=False, rng=None, steps=None):
        self.iterator = EpochIterator(xs, ys, sample_weight, batch_size, shuffle, rng, steps)

    @property
    def num_batches(self):
        return self.iterator.num_batches


# ---------------------------------------------------------------------- batch format
def standardize_batch(batch, where, source):
    """A batch as ``(x, y, sample_weight)`` (missing parts None)."""
    if isinstance(batch, list):
        batch = tuple(batch)
    if not isinstance(batch, tuple):
        if isinstance(batch, dict) or is_array_data(batch):
            return batch, None, None
        raise ValueError(f"{where}: a {source} must yield batches `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`; "
                         f"received {str(batch)[:100]} of type {type(batch)}")
    if len(batch) not in (1, 2, 3):
        raise ValueError(f"{where}: a {source} must yield batches `x`, `(x,)`, `(x, y)` or `(x, y, sample_weight)`; "
                         f"received a tuple of {len(batch)} entries")
    return tuple(batch) + (None,) * (3 - len(batch))


# ---------------------------------------------------------------------- workers
_WORKER_DATASET = None


def _init_worker(payload):
    """A worker process: the dataset (unpickled from ``payload``), and Ctrl-C left to
    the parent (which stops the pool), so a KeyboardInterrupt prints one traceback,
    not one per worker."""
    global _WORKER_DATASET
    import pickle
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_DATASET = pickle.loads(payload)  # the parent's own dataset: data it pickled itself


def _worker_get(index):
    return _WORKER_DATASET[index]


def _mp_context():
    """The start method of the worker processes: 'forkserver' (else 'spawn'), never
    'fork': a forked child inherits the parent's native thread pools without their
    threads, and the first native op it runs (a resize, an augmentation warp) waits
    for them forever."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class _ThreadPool:
    """``workers`` threads calling ``fn(i)``, started at once. Every thread is counted
    before it starts and signals when it has finished, so :meth:`shutdown` joins all of
    them even when a KeyboardInterrupt arrived while one was starting (which leaves
    ``concurrent.futures.ThreadPoolExecutor`` a thread it never joins)."""

    def __init__(self, workers, fn):
        self.fn = fn
        self.tasks = queue.SimpleQueue()
        self.threads = []
        for k in range(workers):
            done = threading.Event()
            t = threading.Thread(target=self._work, args=(done,), name=f"convcore-loader_{k}", daemon=True)
            self.threads.append((t, done))
            t.start()

    def submit(self, i):
        f = concurrent.futures.Future()
        self.tasks.put((f, i))
        return f

    def _work(self, done):
        try:
            while True:
                item = self.tasks.get()
                if item is None:
                    return
                f, i = item
                if not f.set_running_or_notify_cancel():
                    continue
                try:
                    f.set_result(self.fn(i))
                except BaseException as e:  # the consumer re-raises it, with this thread's traceback
                    f.set_exception(e)
        finally:
            done.set()

    def shutdown(self, wait=True, cancel_futures=True):
        for _ in self.threads:
            self.tasks.put(None)
        for t, done in self.threads:
            done.wait()
            t.join()


class OrderedLoader:
    """``dataset[i]`` for the indices given, loaded by ``workers`` threads (processes
    with ``use_multiprocessing``) at most ``max_queue_size`` ahead, yielded in order.
    The pool lives as long as the iteration: closing the generator (the end of the
    epoch, an exception, KeyboardInterrupt) cancels what is queued and joins it."""

    def __init__(self, dataset, indices, workers, use_multiprocessing, max_queue_size):
        self.dataset, self.indices = dataset, indices
        self.workers, self.use_multiprocessing = max(1, int(workers)), bool(use_multiprocessing)
        self.ahead = max(1, int(max_queue_size), self.workers)

    def _executor(self):
        if not self.use_multiprocessing:
            return _ThreadPool(self.workers, self.dataset.__getitem__), None
        payload = self._pickled()
        ex = concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=_mp_context(), initializer=_init_worker,
                                                    initargs=(payload,))
        return ex, _worker_get

    def _pickled(self):
        """The dataset pickled for the worker processes (never the model), or a clear
        error when it cannot be."""
        import pickle
        import sys
        cls = type(self.dataset)
        if cls.__module__ == "__main__" and not hasattr(sys.modules.get("__main__"), "__file__"):
            raise TypeError(f"use_multiprocessing=True: the dataset's class {cls.__name__} is defined in an "
                            "interactive session (a notebook, a REPL), which worker processes cannot import; "
                            "define it in a module, or use threads (use_multiprocessing=False)")
        try:
            return pickle.dumps(self.dataset)
        except Exception as e:
            raise TypeError(f"use_multiprocessing=True sends the dataset ({cls.__name__}) to worker processes, so it "
                            f"must be picklable, and it is not: {e}. Use threads (use_multiprocessing=False), or "
                            "keep unpicklable things out of the dataset") from e

    def __iter__(self):
        executor = None
        pending = collections.deque()
        try:
            executor, get = self._executor()
            submit = executor.submit if get is None else (lambda i: executor.submit(get, i))
            it = iter(self.indices)
            for i in itertools.islice(it, self.ahead):
                pending.append(submit(i))
            while pending:
                try:
                    batch = pending.popleft().result()  # a worker's exception is raised here
                except concurrent.futures.process.BrokenProcessPool as e:
                    raise RuntimeError("use_multiprocessing=True: a worker process died before it returned a "
                                       f"batch of {type(self.dataset).__name__} (it could not import the "
                                       "dataset's class or unpickle the dataset, or it crashed); see the "
                                       "worker's error above, or use threads (use_multiprocessing=False)") from e
                for i in itertools.islice(it, 1):
                    pending.append(submit(i))
                yield batch
        finally:
            for f in pending:
                f.cancel()
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)


_END = object()


class Producer:
    """One thread drawing a generator into a bounded queue (``max_queue_size``). It
    draws only the batches asked for (:meth:`allow`; None: all), so the count of
    batches drawn is Keras's. :meth:`close` stops and joins it."""

    def __init__(self, iterator, max_queue_size=10):
        self._it = iterator
        self._q = queue.Queue(max(1, int(max_queue_size)))
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._allowed, self._drawn = 0, 0
        self._thread = None
        self._done = threading.Event()

    def allow(self, n):
        """Let the producer draw ``n`` more batches (None: until the generator ends)."""
        with self._cond:
            self._allowed = math.inf if n is None else self._allowed + n
            self._cond.notify_all()
        if self._thread is None:
            # counted before it starts: close() joins it even if Ctrl-C interrupts the start
            self._thread = threading.Thread(target=self._run, name="convcore-generator", daemon=True)
            self._thread.start()

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def _run(self):
        try:
            self._produce()
        finally:
            self._done.set()

    def _produce(self):
        try:
            while True:
                with self._cond:
                    while self._drawn >= self._allowed and not self._stop.is_set():
                        self._cond.wait(0.1)
                    if self._stop.is_set():
                        return
                    self._drawn += 1
                try:
                    item = next(self._it)
                except StopIteration:
                    self._put((_END, None))
                    return
                if not self._put((None, item)):
                    return
        except BaseException as e:  # the consumer re-raises it, with this thread's traceback
            self._put((e, None))

    def next(self):
        while True:
            try:
                err, item = self._q.get(timeout=0.1)
                break
            except queue.Empty:
                if self._thread is None or self._done.is_set() and self._q.empty():
                    raise RuntimeError("the generator's producer thread stopped without a batch") from None
        if err is _END:
            self._q.put((_END, None))  # stays exhausted
            raise StopIteration
        if err is not None:
            raise err
        return item

    def close(self):
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        t = self._thread
        if t is not None:
            while not self._done.wait(0.05):  # the producer may be blocked on a full queue
                try:
                    while True:
                        self._q.get_nowait()
                except queue.Empty:
                    pass
            t.join()
            self._thread = None


# ---------------------------------------------------------------------- adapters
class PyDatasetAdapter:
    """A PyDataset / Sequence (or any object with ``__len__`` and ``__getitem__``
    returning batches). ``shuffle`` shuffles the order of the batches at each pass (as
    Keras; with convcore's generator, :func:`convcore.set_seed`). ``class_weight``
    becomes each batch's sample weights."""

    restartable = True

    def __init__(self, dataset, class_weight=None, shuffle=False, where="fit", workers=None,
                 use_multiprocessing=None, max_queue_size=None):
        self.dataset, self.class_weight, self.shuffle, self.where = dataset, class_weight, bool(shuffle), where
        if _is_dataset(dataset):
            w, mp, q = dataset.workers, dataset.use_multiprocessing, dataset.max_queue_size
        else:
            w, mp, q = 1, False, 10
        # tf.keras 2's fit_generator / evaluate_generator / predict_generator arguments
        self.workers = w if workers is None else workers
        self.use_multiprocessing = mp if use_multiprocessing is None else use_multiprocessing
        self.max_queue_size = q if max_queue_size is None else max_queue_size
        from .. import _checks
        _checks.integer(where, "workers", self.workers, minimum=0)
        _checks.integer(where, "max_queue_size", self.max_queue_size, minimum=0)
        nb = self._num_batches()
        if nb is None and shuffle and _is_dataset(dataset):
            warnings.warn("`shuffle=True` was passed, but will be ignored since the data `x` was provided as an "
                          "infinite PyDataset. The PyDataset is expected to already be shuffled.", stacklevel=4)
            self.shuffle = False
        self._order, self._pos = None, 0

    def _num_batches(self):
        try:
            nb = self.dataset.num_batches if _is_dataset(self.dataset) else len(self.dataset)
        except NotImplementedError:
            raise ValueError(f"{self.where}: the PyDataset {type(self.dataset).__name__} has neither __len__ nor a "
                             "num_batches property") from None
        if nb is not None:
            from .. import _checks
            nb = _checks.integer(self.where, "the dataset's number of batches (len)", nb, minimum=0)
        return nb

    @property
    def num_batches(self):
        return self._num_batches()

    @property
    def source(self):
        return "PyDataset" if _is_dataset(self.dataset) else type(self.dataset).__name__

    def peek(self):
        """The first batch (to build a model that has no input shape yet), as Keras's
        symbolic build: one extra ``dataset[0]``."""
        return self.dataset[0]

    def on_epoch_begin(self):
        if hasattr(self.dataset, "on_epoch_begin"):
            self.dataset.on_epoch_begin()

    def on_epoch_end(self):
        if hasattr(self.dataset, "on_epoch_end"):
            self.dataset.on_epoch_end()

    def _indices(self, n):
        """The next ``n`` indices of the current pass (None: the rest of it), a new pass
        (shuffled) begun when the last one is done."""
        nb = self._num_batches()
        if nb is None:  # infinite: the indices go on across epochs
            start = self._pos
            self._pos += n
            return range(start, start + n)
        if self._order is None or self._pos >= nb:
            from .. import backend
            self._order = list(backend.rng().permutation(nb)) if self.shuffle else range(nb)
            self._pos = 0
        take = nb - self._pos if n is None else min(n, nb - self._pos)
        idx = self._order[self._pos:self._pos + take]
        self._pos += take
        return [int(i) for i in idx]

    def has_more(self):
        return True

    def pass_done(self):
        nb = self._num_batches()
        return nb is not None and self._order is not None and self._pos >= nb

    def reset(self):
        self._order, self._pos = None, 0

    def batches(self, n):
        """The raw batches of one epoch: ``n`` of them (None: the rest of the pass)."""
        idx = self._indices(n)
        if self.workers > 0:  # (workers=1: one loader thread, as tf.keras 2; 0: in the caller's thread)
            return iter(OrderedLoader(self.dataset, idx, self.workers, self.use_multiprocessing,
                                      self.max_queue_size))
        return (self.dataset[i] for i in idx)

    def close(self):
        pass


class GeneratorDataAdapter:
    """A Python generator or iterator of batches, drawn by one producer thread
    (``workers=0``: in the caller's thread) into a queue of ``max_queue_size``. It is
    one stream: an epoch continues where the last one stopped."""

    restartable = False

    def __init__(self, generator, class_weight=None, where="fit", workers=None, use_multiprocessing=None,
                 max_queue_size=None):
        from .. import _checks
        self.it = generator if hasattr(generator, "__next__") else iter(generator)
        self.class_weight, self.where = class_weight, where
        self.workers = 1 if workers is None else _checks.integer(where, "workers", workers, minimum=0)
        self.max_queue_size = 10 if max_queue_size is None else _checks.integer(where, "max_queue_size",
                                                                                 max_queue_size, minimum=0)
        self._peeked = collections.deque()
        self._producer = None
        self.exhausted = False

    num_batches = None
    source = "generator"

    def _draw(self):
        if self._peeked:
            return self._peeked.popleft()
        if self.workers == 0:
            return next(self.it)
        if self._producer is None:
            self._producer = Producer(self.it, self.max_queue_size)
        return self._producer.next()

    def _draw_one(self):
        if self.workers == 0:
            return next(self.it)
        if self._producer is None:
            self._producer = Producer(self.it, self.max_queue_size)
        self._producer.allow(1)
        return self._producer.next()

    def has_more(self):
        """Whether the generator has another batch (drawn now and kept for the next
        step); False once it has ended."""
        if self._peeked:
            return True
        if self.exhausted:
            return False
        try:
            self._peeked.append(self._draw_one())
        except StopIteration:
            self.exhausted = True
            return False
        return True

    def peek(self):
        """The first batch, kept for the first step (it is not drawn twice)."""
        if not self.has_more():
            raise ValueError(f"{self.where}: when passing a Python generator, the generator must yield at least "
                             "one batch. Received an empty generator.")
        return self._peeked[0]

    def on_epoch_begin(self):
        pass

    def on_epoch_end(self):
        pass

    def batches(self, n):
        """Up to ``n`` raw batches (None: until the generator ends)."""
        if self.workers and self._producer is None:
            self._producer = Producer(self.it, self.max_queue_size)
        if self._producer is not None:
            self._producer.allow(None if n is None else max(0, n - len(self._peeked)))
        count = itertools.count() if n is None else range(n)
        for _ in count:
            try:
                b = self._draw()
            except StopIteration:
                self.exhausted = True
                return
            yield b

    def close(self):
        if self._producer is not None:
            self._producer.close()
            self._producer = None


class DataEpochIterator:
    """The epochs of a PyDataset or a generator, with Keras 3's ``steps_per_epoch``
    rule: without it an epoch is one pass (a generator: until it ends); with it an
    epoch takes ``steps_per_epoch`` batches, the pass going on across epochs, and one
    that reaches the end of a finite dataset stops short there with Keras's warning.
    ``convert(x, y, sample_weight)`` checks and converts each batch; the inputs'
    shapes (batch axis aside) must stay those of the first batch, except along the
    axes ``input_shapes`` (the model's, without the batch axis) leave as None. Without
    ``input_shapes`` (a subclassed model) the shapes are not compared."""

    def __init__(self, adapter, steps_per_epoch, convert, where, input_shapes=None):
        self.input_shapes = input_shapes
        self.adapter, self.steps_per_epoch, self.convert, self.where = adapter, steps_per_epoch, convert, where
        nb = adapter.num_batches
        if nb is None and steps_per_epoch is None and adapter.restartable:
            raise ValueError(f"{where}: the {adapter.source} is infinite (its num_batches is None), so "
                             f"{'steps' if where != 'fit' else 'steps_per_epoch'} must be given")
        if nb == 0:
            raise ValueError(f"{where}: the {adapter.source} has no batches (its length is 0)")
        self._learned = None  # a generator's batches in its first full pass
        self._shapes = None
        self._batch_no = 0
        self.ran_out = False  # Keras's warning was given

    @property
    def steps(self):
        """The progress bar's length: None while unknown."""
        if self.steps_per_epoch is not None:
            return self.steps_per_epoch
        nb = self.adapter.num_batches
        return nb if nb is not None else self._learned

    def _check_shapes(self, data, b):
        if self.input_shapes is None:
            return
        x = data[0]
        shapes = [np.shape(v)[1:] for v in (x if isinstance(x, (list, tuple)) else
                                            x.values() if isinstance(x, dict) else [x])]
        if len(shapes) == len(self.input_shapes):  # the axes the model leaves free may vary
            shapes = [tuple(None if m is None else d for d, m in zip(s, ms)) if len(s) == len(ms) else s
                      for s, ms in zip(shapes, self.input_shapes)]
        if self._shapes is None:
            self._shapes = shapes
        elif shapes != self._shapes:
            raise ValueError(f"{self.where}: batch {b + 1} of the {self.adapter.source} has inputs of shape "
                             f"{shapes if len(shapes) > 1 else shapes[0]} (without the batch axis), but the first "
                             f"batch had {self._shapes if len(shapes) > 1 else self._shapes[0]}; every batch must "
                             "have the same shape apart from its number of samples")

    def epoch(self):
        """The converted batches of one epoch, between the dataset's epoch hooks."""
        a = self.adapter
        a.on_epoch_begin()
        try:
            n = self.steps_per_epoch
            got = 0
            source = a.batches(n)
            try:
                for raw in source:
                    data = standardize_batch(raw, self.where, a.source)
                    self._check_shapes(data, self._batch_no)
                    self._batch_no += 1
                    got += 1
                    yield self.convert(*data)
            finally:
                close = getattr(source, "close", None)
                if close is not None:
                    close()  # a worker pool: stopped and joined now, whatever ended the epoch
            if n is not None and got < n:
                warnings.warn(_RAN_OUT, stacklevel=3)
                self.ran_out = True
            elif n is None and not a.restartable and self._learned is None:
                self._learned = got
        finally:
            a.on_epoch_end()

    def reset(self):
        """Start a new pass at the next epoch (each evaluation does, as Keras resets its
        evaluation iterator); a generator cannot restart and goes on."""
        if self.adapter.restartable:
            self.adapter.reset()

    def has_more(self):
        """False once a generator has ended (an epoch would have no batch)."""
        return self.adapter.has_more()

    def close(self):
        self.adapter.close()
