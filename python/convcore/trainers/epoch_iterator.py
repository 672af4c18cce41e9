"""The data of ``fit`` / ``evaluate`` / ``predict`` in batches (Keras 3's epoch
iterator over arrays): inputs, targets (one array per output, None for an output without
one) and sample weights, shuffled per pass, with Keras's ``steps_per_epoch`` rule; and the
validation split of ``fit``."""
from __future__ import annotations

import warnings

import numpy as np

_RAN_OUT = ("Your input ran out of data; interrupting training. Make sure that your dataset or generator can "
            "generate at least `steps_per_epoch * epochs` batches.")


def check_len(xs, ys=None, sw=None):
    """Every input, target and the sample weights hold the same number of samples."""
    n = len(xs[0])
    for i, v in enumerate(xs[1:], 1):
        if len(v) != n:
            raise ValueError(f"the model's inputs have different numbers of samples: input 0 has {n}, input {i} "
                             f"has {len(v)}")
    for i, y in enumerate(ys or []):
        if y is not None and len(y) != n:
            which = "y" if len(ys) == 1 else f"y for output {i}"
            raise ValueError(f"x and {which} have different numbers of samples: {n} and {len(y)}")
    if sw is not None and len(sw) != n:
        raise ValueError(f"sample_weight has {len(sw)} entries, but x and y have {n} samples")


def _take(v, idx):
    return None if v is None else v[idx]


class EpochIterator:
    """Batches of ``(xs, ys, sample_weight)``. Without ``steps_per_epoch`` each epoch is
    one pass over the data (shuffled anew when ``shuffle``; indices sorted inside a batch
    so the gather reads memory in order). With it, as Keras 3: the passes continue across
    epochs, an epoch takes at most ``steps_per_epoch`` batches, and one that reaches the
    end of the data stops there (with Keras's warning when it stopped short), the next
    starting a new pass."""

    def __init__(self, xs, ys=None, sample_weight=None, batch_size=32, shuffle=False, rng=None,
                 steps_per_epoch=None):
        self.xs, self.ys, self.sw = list(xs), ys, sample_weight
        self.batch_size, self.shuffle, self.rng = batch_size, shuffle, rng
        self.n = len(self.xs[0])
        self.num_batches = (self.n + batch_size - 1) // batch_size
        self.steps_per_epoch = steps_per_epoch
        self.steps = steps_per_epoch or self.num_batches  # the progress bar's length
        self._order = None
        self._seen = 0  # batches of the current pass already given

    def _new_pass(self):
        self._order = self.rng.permutation(self.n) if self.shuffle else None
        self._seen = 0

    def _batch(self, b):
        lo, hi = b * self.batch_size, min((b + 1) * self.batch_size, self.n)
        if self._order is None:
            idx = slice(lo, hi)
        else:
            idx = np.sort(self._order[lo:hi])
        ys = None if self.ys is None else [_take(y, idx) for y in self.ys]
        return [v[idx] for v in self.xs], ys, _take(self.sw, idx)

    def epoch(self):
        """The batches of one epoch."""
        if self.steps_per_epoch is None:
            self._new_pass()
            for b in range(self.num_batches):
                yield self._batch(b)
            return
        if self._order is None and self._seen == 0 or self._seen >= self.num_batches:
            self._new_pass()
        for _ in range(self.steps_per_epoch):
            if self._seen >= self.num_batches:
                warnings.warn(_RAN_OUT, stacklevel=3)
                break
            b = self._seen
            self._seen += 1
            yield self._batch(b)
        if self._seen >= self.num_batches:
            self._new_pass()


def split_validation(xs, ys, sw, validation_split):
    """``(train, validation)`` as Keras: the last ``validation_split`` of the samples
    (the training part rounded up), before any shuffling. Each part is
    ``(xs, ys, sample_weight)``."""
    n = len(xs[0])
    if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float, np.floating,
                                                                               np.integer)):
        raise TypeError(f"fit: validation_split must be a float in [0, 1), got {validation_split!r}")
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
    cut = int(np.ceil(n * (1.0 - validation_split)))
    if cut == 0 or cut == n:
        raise ValueError(f"fit: validation_split={validation_split} of {n} samples leaves no training or no "
                         "validation data")

    def part(s):
        return ([v[s] for v in xs], None if ys is None else [_take(y, s) for y in ys], _take(sw, s))
    return part(slice(0, cut)), part(slice(cut, n))
