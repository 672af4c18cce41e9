"""Batches of an epoch, and the validation split of ``fit``."""
from __future__ import annotations

import numpy as np


def check_len(xs, y):
    n = len(xs[0])
    if len(y) != n:
        raise ValueError(f"x and y have different numbers of samples: {n} and {len(y)}")


class EpochIterator:
    """The batches of ``(xs, y)``: shuffled each epoch (in sorted order inside a batch,
    as before), the last one smaller."""

    def __init__(self, xs, y, batch_size, shuffle, rng):
        self.xs, self.y, self.batch_size, self.shuffle, self.rng = xs, y, batch_size, shuffle, rng
        self.n = len(y)
        self.steps = (self.n + batch_size - 1) // batch_size

    def epoch(self):
        order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        for b in range(self.steps):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            if self.shuffle:
                idx = np.sort(idx)
            yield [v[idx] for v in self.xs], self.y[idx]


def split_validation(model, xs, y, validation_split, validation_data):
    """(train xs, train y, (val xs, val y) or None) as Keras: the last
    ``validation_split`` of the samples (the training part rounded up), or
    ``validation_data``."""
    n = len(y)
    if validation_data is None and validation_split:
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"fit: validation_split must be in (0, 1), got {validation_split}")
        cut = int(np.ceil(n * (1.0 - validation_split)))
        if cut == 0 or cut == n:
            raise ValueError(f"fit: validation_split={validation_split} leaves no training or validation data")
        return [v[:cut] for v in xs], y[:cut], ([v[cut:] for v in xs], y[cut:])
    if validation_data is not None:
        if len(validation_data) != 2:
            raise ValueError("fit: validation_data must be a tuple (x_val, y_val)")
        vx = model._check_x(validation_data[0])
        vy = model._prepare_y(validation_data[1])
        check_len(vx, vy)
        return xs, y, (vx, vy)
    return xs, y, None
