"""The progress bar of ``fit`` / ``evaluate`` / ``predict`` and of user loops, as
``keras.utils.Progbar``.

Keras 3.15's output, character for character, where the output is a terminal or a
Jupyter kernel: one line rewritten in place (``\\b`` / ``\\r``), a bar of ``━`` in ANSI
colours, the ETA, the time per step and the running metrics. Where the output is not
a terminal (a log file, CI), verbose=1 writes one plain line (no ANSI escapes, no
``\\r``) when the bar is finalized (the end of an epoch) instead of a line per update.
"""
from __future__ import annotations

import math
import os
import re
import sys
import time

import numpy as np

from .. import _checks

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def dynamic_display():
    """Whether stdout rewrites a line in place: a terminal, a Jupyter kernel or
    PyCharm's console. (Keras 3.15 also counts any POSIX system, which makes its log
    files fill with ``\\b``; convcore does not.)"""
    return bool((hasattr(sys.stdout, "isatty") and sys.stdout.isatty()) or "ipykernel" in sys.modules
                or "PYCHARM_HOSTED" in os.environ)


def _write(message):
    try:
        sys.stdout.write(message)
    except UnicodeEncodeError:  # a stdout that cannot encode the bar: Keras 2's '='
        message = message.replace("━", "=")
        encoding = sys.stdout.encoding or "utf-8"
        sys.stdout.write(message.encode(encoding, errors="ignore").decode(encoding))
    sys.stdout.flush()


class Progbar:
    """A progress bar, as ``keras.utils.Progbar``.

    Parameters
    ----------
    target : int or None
        Total number of steps expected; None if unknown (a running count is shown).
    width : int
        Width of the bar in characters (default 20).
    verbose : int
        0 silent, 1 the live bar, 2 one line when the bar is finalized.
    interval : float
        Minimum seconds between two redraws (default 0.05).
    stateful_metrics : iterable of str, optional
        Metrics shown as given; all others are averaged over the steps. Give at most
        one of ``stateful_metrics`` and ``stateless_metrics``.
    stateless_metrics : iterable of str, optional
        Metrics averaged over the steps; all others are shown as given.
    unit_name : str
        Name of a step in the time per step (``'step'``, ``'sample'``).
    """

    def __init__(self, target, width=20, verbose=1, interval=0.05, stateful_metrics=None, stateless_metrics=None,
                 unit_name="step"):
        if target is not None:
            target = _checks.integer("Progbar", "target", target, minimum=0)
        self.width = _checks.integer("Progbar", "width", width, minimum=1)
        self.verbose = _checks.integer("Progbar", "verbose", verbose, minimum=0, maximum=2)
        self.interval = _checks.real("Progbar", "interval", interval, minimum=0)
        if not isinstance(unit_name, str):
            raise TypeError(f"Progbar: unit_name must be a string, got {unit_name!r}")
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError("Progbar: give at most one of stateful_metrics and stateless_metrics, received "
                             f"stateful_metrics={stateful_metrics!r}, stateless_metrics={stateless_metrics!r}")
        self.target = target
        self.unit_name = unit_name
        for name, given in (("stateful_metrics", stateful_metrics), ("stateless_metrics", stateless_metrics)):
            if given is not None and (isinstance(given, str) or not all(isinstance(k, str) for k in given)):
                raise TypeError(f"Progbar: {name} must be an iterable of metric names, got {given!r}")
        if stateful_metrics is not None:
            self.stateful_metrics, self.stateless_metrics = set(stateful_metrics), None
        elif stateless_metrics is not None:
            self.stateful_metrics, self.stateless_metrics = None, set(stateless_metrics)
        else:
            self.stateful_metrics, self.stateless_metrics = set(), None
        self._dynamic_display = dynamic_display()
        self._seen_so_far = 0
        self._values = {}
        self._values_order = []
        self._start = time.time()
        self._last_update = 0
        self._time_after_first_step = None
        self._prev_total_width = 0

    def update(self, current, values=None, finalize=None):
        """Show step ``current`` (1-based); ``values`` is a list of ``(name, value)``
        for this step. ``finalize`` (default: ``current >= target``) ends the line."""
        current = _checks.integer("Progbar.update", "current", current, minimum=0)
        if finalize is None:
            finalize = False if self.target is None else current >= self.target
        values = values or []
        for k, v in values:
            if k not in self._values_order:
                self._values_order.append(k)
            stateless = (k not in self.stateful_metrics) if self.stateful_metrics is not None else \
                (k in self.stateless_metrics)
            if stateless:
                # When the target is unknown both the last batch and the epoch's end
                # report the same step: the weight is at least 1 so the mean survives.
                if finalize:
                    self._values[k] = [v, 1]
                else:
                    base = max(current - self._seen_so_far, 1)
                    if k not in self._values:
                        self._values[k] = [v * base, base]
                    else:
                        self._values[k][0] += v * base
                        self._values[k][1] += base
            else:
                self._values[k] = [v, 1]
        self._seen_so_far = current

        now = time.time()
        time_per_unit = self._estimate_step_duration(current, now)
        if self.verbose == 1:
            if now - self._last_update < self.interval and not finalize:
                return
            if not self._dynamic_display and not finalize:
                # Not a terminal: the one line is written when the bar is finalized.
                self._last_update = now
                return
            bar, info, special = self._line(current, now, time_per_unit, finalize)
            total_width = len(bar) + len(info) - special
            if self._dynamic_display:
                message = "\b" * self._prev_total_width + "\r" + bar + info
                if self._prev_total_width > total_width:
                    message += " " * (self._prev_total_width - total_width)
            else:
                message = _ANSI.sub("", bar + info)
            if finalize:
                message += "\n"
            _write(message)
            self._prev_total_width = total_width
        elif self.verbose == 2:
            if finalize and self.target is not None and self.target > 0:
                digits = int(math.log10(self.target)) + 1
                info = f"%{digits}d/%d" % (current, self.target) + f" - {now - self._start:.0f}s"
                info += f" -{self._format_time(time_per_unit, self.unit_name)}"
                for k in self._values_order:
                    # Keras 3.15 tests avg > 1e-3 here (not its absolute value as
                    # verbose=1 does): a negative mean is shown as 1.2e-01.
                    avg = self._mean(k)
                    info += f" - {k}: {avg:.4f}" if avg > 1e-3 else f" - {k}: {avg:.4e}"
                _write(info + "\n")
        self._last_update = now

    def _mean(self, k):
        total, count = self._values[k]
        if not isinstance(total, float):
            total = np.mean(total)
        return total / max(1, count)

    def _line(self, current, now, time_per_unit, finalize):
        """The bar and the info of verbose=1, and the count of their ANSI characters."""
        special = 0
        if self.target is not None and self.target > 0:
            digits = int(math.log10(self.target)) + 1
            bar = f"\x1b[1m{f'%{digits}d/%d' % (current, self.target)}\x1b[0m "
            special += 8
            prog_width = int(self.width * float(current) / self.target)
            if prog_width > 0:
                bar += f"\33[32m{'━' * prog_width}\x1b[0m"
                special += 9
            bar += f"\33[37m{'━' * (self.width - prog_width)}\x1b[0m"
            special += 9
        else:
            bar = "%7d/Unknown" % current
        if self.target is not None and self.target > 0 and not finalize:
            eta = time_per_unit * (self.target - current)
            if eta > 3600:
                eta_format = "%d:%02d:%02d" % (eta // 3600, (eta % 3600) // 60, eta % 60)
            elif eta > 60:
                eta_format = "%d:%02d" % (eta // 60, eta % 60)
            else:
                eta_format = "%ds" % eta
            info = f" \x1b[1m{eta_format}\x1b[0m"
        else:
            info = f" \x1b[1m{now - self._start:.0f}s\x1b[0m"
        special += 8
        info += self._format_time(time_per_unit, self.unit_name)
        for k in self._values_order:
            avg = self._mean(k)
            info += f" - {k}: {avg:.4f}" if abs(avg) > 1e-3 else f" - {k}: {avg:.4e}"
        return bar, info, special

    def add(self, n, values=None):
        """Advance by ``n`` steps: ``update(seen + n, values)``."""
        n = _checks.integer("Progbar.add", "n", n)
        self.update(self._seen_so_far + n, values)

    @staticmethod
    def _format_time(time_per_unit, unit_name):
        if time_per_unit >= 1 or time_per_unit == 0:
            return f" {time_per_unit:.0f}s/{unit_name}"
        if time_per_unit >= 1e-3:
            return f" {time_per_unit * 1000.0:.0f}ms/{unit_name}"
        return f" {time_per_unit * 1000000.0:.0f}us/{unit_name}"

    def _estimate_step_duration(self, current, now):
        """Seconds per step; the first step (compilation, warm-up) is left out of the
        estimate once there are more."""
        if not current:
            return 0
        if self._time_after_first_step is not None and current > 1:
            per = (now - self._time_after_first_step) / (current - 1)
        else:
            per = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per
