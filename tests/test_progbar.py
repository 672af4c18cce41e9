"""convcore.utils.progbar.Progbar against keras.utils.Progbar (Keras 3.15): the same
updates, the same clock, the same output — character for character where the output
is a terminal, and Keras's final line without escapes where it is not (a log file)."""
from __future__ import annotations

import io
import re
import sys
import time

import pytest

from convcore.utils.progbar import Progbar, dynamic_display
from fake_terminal import Clock, FakeTTY

import keras  # noqa: E402  (KERAS_BACKEND=jax is set by conftest)

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(time, "time", c)
    return c


def _run(cls, case, clock, stdout, monkeypatch):
    """Output of one case: ``ops`` are (dt, 'update' | 'add', n, values, finalize)."""
    monkeypatch.setattr(sys, "stdout", stdout)
    clock.t = 1000.0
    bar = cls(case["target"], **case.get("kw", {}))
    for dt, op, n, values, finalize in case["ops"]:
        clock.t += dt
        if op == "update":
            bar.update(n, values, finalize=finalize)
        else:
            bar.add(n, values)
    monkeypatch.setattr(sys, "stdout", sys.__stdout__)
    return stdout.getvalue() if hasattr(stdout, "getvalue") else None


def _steps(n, dt=0.3, values=lambda i: [("loss", 1.0 / (i + 1)), ("acc", 0.1 * i)]):
    return [(dt, "update", i + 1, values(i), None) for i in range(n)]


CASES = {
    "known target": dict(target=5, ops=_steps(5)),
    "width 7, slow steps": dict(target=3, kw=dict(width=7), ops=_steps(3, dt=75.0)),
    "eta over an hour": dict(target=4, ops=[(0.5, "update", 1, [("loss", 2.0)], None),
                                            (4000.0, "update", 2, [("loss", 1.0)], None),
                                            (1.0, "update", 4, [("loss", 0.5)], None)]),
    "interval skips redraws": dict(target=6, kw=dict(interval=1.0), ops=_steps(6, dt=0.4)),
    "stateful metric": dict(target=3, kw=dict(stateful_metrics=["acc"]), ops=_steps(3)),
    "stateless metric": dict(target=3, kw=dict(stateless_metrics=["loss"]), ops=_steps(3)),
    "tiny and negative values": dict(target=2, ops=_steps(2, values=lambda i: [("a", 1e-5), ("b", -0.25 - i)])),
    "add": dict(target=4, ops=[(0.2, "add", 1, [("loss", 3.0)], None), (0.2, "add", 2, [("loss", 1.0)], None),
                               (0.2, "add", 1, None, None)]),
    "unknown target": dict(target=None, ops=_steps(3) + [(0.1, "update", 3, [("loss", 0.2)], True)]),
    "shorter line after a longer one": dict(target=2, ops=[(0.1, "update", 1, [("loss", 123456.0)], False),
                                                           (0.1, "update", 2, [("loss", 1.0)], True)]),
    "unit name": dict(target=2, kw=dict(unit_name="sample"), ops=_steps(2, dt=0.0005)),
    "verbose 2": dict(target=3, kw=dict(verbose=2), ops=_steps(3)),
    "verbose 2, negative mean": dict(target=1, kw=dict(verbose=2), ops=[(1.5, "update", 1, [("m", -0.5)], None)]),
    "verbose 0": dict(target=3, kw=dict(verbose=0), ops=_steps(3)),
}


def _as_log(dynamic_out):
    """What a log file should get from Keras's terminal output: each finished line's
    last redraw, without escapes or the padding that erased a longer one."""
    lines = []
    for line in dynamic_out.split("\n")[:-1]:
        lines.append(ANSI.sub("", line.split("\r")[-1].replace("\b", "")).rstrip(" "))
    return "".join(l + "\n" for l in lines)


@pytest.mark.parametrize("name", list(CASES))
def test_terminal_output_equals_keras(name, clock, monkeypatch):
    case = CASES[name]
    ours = _run(Progbar, case, clock, FakeTTY(), monkeypatch)
    ref = _run(keras.utils.Progbar, case, clock, FakeTTY(), monkeypatch)
    assert ours == ref
    if case.get("kw", {}).get("verbose", 1) == 1:
        assert "\r" in ours and "\x1b[" in ours  # the case does draw a live bar


@pytest.mark.parametrize("name", list(CASES))
def test_log_file_output_is_one_plain_line_per_bar(name, clock, monkeypatch):
    case = CASES[name]
    ours = _run(Progbar, case, clock, io.StringIO(), monkeypatch)
    ref = _run(keras.utils.Progbar, case, clock, FakeTTY(), monkeypatch)
    assert ours == _as_log(ref)
    assert "\r" not in ours and "\b" not in ours and "\x1b" not in ours
    assert ours.count("\n") == (0 if case.get("kw", {}).get("verbose", 1) == 0 else 1)


def test_unknown_target_shows_a_running_count(clock, monkeypatch):
    out = _run(Progbar, CASES["unknown target"], clock, FakeTTY(), monkeypatch)
    redraws = [ANSI.sub("", s) for s in out.split("\r")[1:]]
    assert [r.split("/")[0].strip() for r in redraws] == ["1", "2", "3", "3"]
    assert all("/Unknown" in r for r in redraws)


def test_a_stdout_that_cannot_encode_the_bar_gets_equals_signs(clock, monkeypatch):
    class AsciiTTY(io.TextIOWrapper):
        def isatty(self):
            return True

    outs = []
    for cls in (Progbar, keras.utils.Progbar):
        raw = io.BytesIO()
        stream = AsciiTTY(raw, encoding="ascii")
        _run(cls, CASES["known target"], clock, stream, monkeypatch)
        stream.flush()
        outs.append(raw.getvalue())
    assert outs[0] == outs[1] and b"=" in outs[0]


def test_dynamic_display_detection(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.delenv("PYCHARM_HOSTED", raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert not dynamic_display()
    monkeypatch.setattr(sys, "stdout", FakeTTY())
    assert dynamic_display()
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.setitem(sys.modules, "ipykernel", sys)  # a Jupyter kernel is loaded
    assert dynamic_display()


@pytest.mark.parametrize("kw, err, match", [
    (dict(target=-1), ValueError, "target"),
    (dict(target=2.5), TypeError, "target"),
    (dict(target=3, width=0), ValueError, "width"),
    (dict(target=3, verbose=3), ValueError, "verbose"),
    (dict(target=3, interval=-1.0), ValueError, "interval"),
    (dict(target=3, stateful_metrics=["a"], stateless_metrics=["b"]), ValueError, "give at most one"),
    (dict(target=3, stateful_metrics="loss"), TypeError, "stateful_metrics"),
    (dict(target=3, unit_name=None), TypeError, "unit_name"),
])
def test_bad_arguments(kw, err, match):
    with pytest.raises(err, match=f"Progbar: {match}"):
        Progbar(**kw)
    with pytest.raises(TypeError, match="current"):
        Progbar(3).update("2")
