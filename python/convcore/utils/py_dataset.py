"""``PyDataset`` (tf.keras 2's ``Sequence``): a dataset of batches written in Python,
as ``keras.utils.PyDataset`` of Keras 3.15.

A subclass implements ``__getitem__(index)`` (a whole batch: ``x``, ``(x,)``,
``(x, y)`` or ``(x, y, sample_weight)``) and ``__len__`` (the number of batches) or a
``num_batches`` property (None: infinite), and may implement ``on_epoch_begin`` /
``on_epoch_end``. ``workers``, ``use_multiprocessing`` and ``max_queue_size`` tell
``fit`` / ``evaluate`` / ``predict`` how to load the next batches while the current step
runs (:mod:`convcore.trainers.data_adapters`); iterating over the dataset by hand loads
one batch at a time, as Keras.
"""
from __future__ import annotations

import itertools
import warnings

__all__ = ["PyDataset", "Sequence"]


class PyDataset:
    """Base class of a dataset of batches computed in Python, as
    ``keras.utils.PyDataset``.

    Parameters
    ----------
    workers : int, default 1
        Threads (or processes) loading batches ahead of the step in ``fit``. With 1 and
        ``use_multiprocessing=False`` the batches are loaded in the training thread.
    use_multiprocessing : bool, default False
        Load batches in worker processes (Python-heavy preprocessing). The dataset is
        pickled to them (never the model), so it must be picklable.
    max_queue_size : int, default 10
        The most batches loaded ahead.

    A subclass that never calls ``super().__init__`` (tf.keras 2's ``Sequence`` did not
    need it) still works: the defaults apply, with Keras's warning.
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    def _warn_if_super_not_called(self):
        warn = False
        if not hasattr(self, "_workers"):
            self._workers = 1
            warn = True
        if not hasattr(self, "_use_multiprocessing"):
            self._use_multiprocessing = False
            warn = True
        if not hasattr(self, "_max_queue_size"):
            self._max_queue_size = 10
            warn = True
        if warn:
            warnings.warn(
                "Your `PyDataset` class should call `super().__init__(**kwargs)` in its constructor. `**kwargs` can "
                "include `workers`, `use_multiprocessing`, `max_queue_size`. Do not pass these arguments to "
                "`fit()`, as they will be ignored.", stacklevel=3)

    @property
    def workers(self):
        self._warn_if_super_not_called()
        return self._workers

    @workers.setter
    def workers(self, value):
        self._workers = value

    @property
    def use_multiprocessing(self):
        self._warn_if_super_not_called()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = value

    @property
    def max_queue_size(self):
        self._warn_if_super_not_called()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = value

    def __getitem__(self, index):
        """The batch at position ``index``."""
        del index
        raise NotImplementedError

    def __iter__(self):
        index_range = None
        try:
            num_batches = self.num_batches
            if num_batches is not None:
                index_range = range(num_batches)
        except NotImplementedError:
            pass
        if index_range is None:
            index_range = itertools.count()
        for index in index_range:
            yield self[index]

    @property
    def num_batches(self):
        """The number of batches, or None for an infinite dataset (default:
        ``len(self)``)."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError("You need to implement the `num_batches` property:\n\n"
                                  "@property\ndef num_batches(self):\n  return ...")

    def on_epoch_begin(self):
        """Called at the beginning of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch."""


#: tf.keras 2's name of :class:`PyDataset` (Keras 3 exports both names for one class).
Sequence = PyDataset
