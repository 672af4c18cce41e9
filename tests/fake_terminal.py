"""Stand-ins for the progress-bar tests (Progbar, ProgbarLogger) that compare output
with Keras's: a clock that moves only when a test says so, and a stream that says it
is a terminal (so both bars write their dynamic, in-place form)."""
from __future__ import annotations

import io


class Clock:
    """time.time() for both bars: it moves only when a case says so."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class FakeTTY(io.StringIO):
    def isatty(self):
        return True
