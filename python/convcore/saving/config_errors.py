"""``ConfigError``: what every loader raises for a config it cannot load. It is a
ValueError that knows where in the config the problem is (``compile.optimizer.name``),
so each level that reads a nested config adds its own key on the way out and the file
loader adds the file name: ``model.convcore: config key 'compile.optimizer.name':
unknown optimizer 'os.system'``."""
from __future__ import annotations

import reprlib


class ConfigError(ValueError):
    """A config entry that cannot be loaded: ``key`` is the path of the entry (a tuple
    of keys and list indices, outermost first), ``reason`` what is wrong with it."""

    def __init__(self, key, reason, file=None):
        if key is None or key == "":
            key = ()
        self.key = tuple(key) if isinstance(key, (tuple, list)) else (key,)
        self.reason = str(reason)
        self.file = file
        super().__init__(self._message())

    def _message(self):
        where = f"config key {'.'.join(str(k) for k in self.key)!r}: " if self.key else "config: "
        return (f"{self.file!s}: " if self.file is not None else "") + where + self.reason

    def within(self, *prefix):
        """The same error seen from the enclosing config (``prefix`` + this key)."""
        return ConfigError(prefix + self.key, self.reason, self.file)

    def in_file(self, file):
        """The same error, naming the file it came from."""
        return ConfigError(self.key, self.reason, file)


def check_dict(value, key, what="a dict"):
    """``value`` if it is a dict, else a ConfigError at ``key``."""
    if not isinstance(value, dict):
        raise ConfigError(key, f"must be {what}, got {_kind(value)}")
    return value


def check_str(value, key, what="a string"):
    if not isinstance(value, str):
        raise ConfigError(key, f"must be {what}, got {_kind(value)}")
    return value


def _kind(value):
    """A config value for a message: its type and a shortened repr."""
    return f"{type(value).__name__} {reprlib.repr(value)}"
