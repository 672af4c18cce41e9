"""LambdaCallback: a callback made of functions given for any of the hooks."""
from __future__ import annotations

from .callback import Callback

_HOOKS = ("on_epoch_begin", "on_epoch_end", "on_train_begin", "on_train_end", "on_train_batch_begin",
          "on_train_batch_end", "on_batch_begin", "on_batch_end", "on_test_begin", "on_test_end",
          "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
          "on_predict_batch_begin", "on_predict_batch_end")


class LambdaCallback(Callback):
    """A callback of functions, as ``keras.callbacks.LambdaCallback``: each argument
    is a function for that hook, called with the hook's arguments (``epoch, logs``;
    ``logs``; ``batch, logs=...``). Any hook of :class:`Callback` may be given by
    keyword (``on_test_end=...``). Deviation: Keras stores any keyword as an attribute;
    convcore refuses a keyword that is not a hook, and a hook that is not callable."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        unknown = sorted(k for k in kwargs if k not in _HOOKS)
        if unknown:
            raise TypeError(f"LambdaCallback: unexpected argument(s) {', '.join(unknown)}; the hooks are "
                            f"{', '.join(_HOOKS)}")
        given = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        self._functions = {}
        for name, fn in given.items():
            if fn is None:
                continue
            if not callable(fn):
                raise TypeError(f"LambdaCallback: {name} must be a function, received {name}={fn!r}")
            self._functions[name] = fn
            setattr(self, name, fn)

    def get_config(self):
        return dict(self._functions)
