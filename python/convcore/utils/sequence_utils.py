"""``pad_sequences``, as ``keras.utils.pad_sequences``: variable-length sequences into
one array (numpy only: data preparation, before any tensor exists)."""
from __future__ import annotations

import numpy as np

from .. import _checks


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """A ``(len(sequences), maxlen) + sample_shape`` array of the sequences, padded
    with ``value`` and truncated to ``maxlen`` (default: the longest) at the start
    ('pre') or the end ('post') of each.

    Parameters
    ----------
    sequences : list of sequences
    maxlen : int, optional
    dtype : dtype, default 'int32'
    padding, truncating : {'pre', 'post'}, default 'pre'
    value : number (or string with ``dtype=object`` / a string dtype), default 0.0
    """
    _checks.choice("pad_sequences", "padding", padding, ("pre", "post"))
    _checks.choice("pad_sequences", "truncating", truncating, ("pre", "post"))
    if not hasattr(sequences, "__len__"):
        raise ValueError("`sequences` must be iterable.")
    lengths, sample_shape = [], None
    for x in sequences:
        try:
            lengths.append(len(x))
        except TypeError:
            raise ValueError(f"`sequences` must be a list of iterables. Found non-iterable: {x!r}") from None
        if sample_shape is None and len(x):
            sample_shape = np.asarray(x).shape[1:]
    sample_shape = sample_shape or ()
    if maxlen is None:
        maxlen = max(lengths, default=0)
    else:
        maxlen = _checks.integer("pad_sequences", "maxlen", maxlen, minimum=0)
    is_str = np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_str:
        raise ValueError(f"`dtype` {dtype} is not compatible with `value`'s type: {type(value)}\n"
                         "You should set `dtype=object` for variable length strings.")
    _checks.element_count("pad_sequences", (len(lengths), maxlen) + tuple(sample_shape), "the result")
    out = np.full((len(lengths), maxlen) + tuple(sample_shape), value, dtype=dtype)
    if maxlen == 0:
        return out
    for i, s in enumerate(sequences):
        if not len(s):
            continue
        trunc = np.asarray(s[-maxlen:] if truncating == "pre" else s[:maxlen], dtype=dtype)
        if trunc.shape[1:] != tuple(sample_shape):
            raise ValueError(f"Shape of sample {trunc.shape[1:]} of sequence at position {i} is different from "
                             f"expected shape {tuple(sample_shape)}")
        if padding == "post":
            out[i, :len(trunc)] = trunc
        else:
            out[i, -len(trunc):] = trunc
    return out
