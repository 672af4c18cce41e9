#!/usr/bin/env python
"""Run scipy's OWN filtering tests with scipy's functions swapped for convcore's.

The test files are taken from the installed scipy wheel (``scipy/signal/tests/
test_signaltools.py``, ``scipy/ndimage/tests/test_filters.py``), copied with their
package ``__init__.py`` and scipy's root ``conftest.py`` into a temporary directory, and
run there by pytest, assertions untouched. A pytest plugin (this very file, loaded
with ``-p``) replaces, before any test module is imported, the attributes of
``scipy.signal`` / ``scipy.ndimage`` named in :data:`SWAPS` by thin wrappers that call
convcore's function (``--no-swap``: scipy's own, the control run). Since the test files
import those names (``from scipy.signal import correlate``) or look them up on the
module (``ndimage.correlate``), every call a test makes goes through a wrapper; calls
scipy makes internally do not (they use their own module's names). The wrapper counts
calls, so the plugin knows, per test, whether it called a swapped function; the pass
rate is reported over those tests.

Each test's outcome is appended to a JSON-lines file as it finishes; if the interpreter
dies (a crash in native code) or a test runs past ``--timeout``, the runner records the
test that was running as ``crashed`` / ``timeout`` and starts pytest again on the tests
not yet run.

    nice -n 19 python tools/scipy_suite/run.py --json /tmp/suite.json
    nice -n 19 python tools/scipy_suite/run.py --no-swap --json /tmp/control.json
    python tools/scipy_suite/run.py --only "TestCorrelate and not complex"

See README.md next to this file.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

# ---------------------------------------------------------------------------------------
# The one table: which scipy functions are swapped for which convcore functions.
# (scipy module, name) -> (convcore module, name). Only functions convcore implements.
# ---------------------------------------------------------------------------------------
SWAPS = {
    ("scipy.signal", "correlate"): ("convcore.signal", "correlate"),
    ("scipy.signal", "convolve"): ("convcore.signal", "convolve"),
    ("scipy.signal", "correlate2d"): ("convcore.signal", "correlate2d"),
    ("scipy.signal", "convolve2d"): ("convcore.signal", "convolve2d"),
    ("scipy.signal", "choose_conv_method"): ("convcore.signal", "choose_conv_method"),
    ("scipy.ndimage", "correlate"): ("convcore.ndimage", "correlate"),
    ("scipy.ndimage", "convolve"): ("convcore.ndimage", "convolve"),
    ("scipy.ndimage", "correlate1d"): ("convcore.ndimage", "correlate1d"),
    ("scipy.ndimage", "convolve1d"): ("convcore.ndimage", "convolve1d"),
    ("scipy.ndimage", "uniform_filter"): ("convcore.ndimage", "uniform_filter"),
    ("scipy.ndimage", "uniform_filter1d"): ("convcore.ndimage", "uniform_filter1d"),
    ("scipy.ndimage", "gaussian_filter"): ("convcore.ndimage", "gaussian_filter"),
    ("scipy.ndimage", "gaussian_filter1d"): ("convcore.ndimage", "gaussian_filter1d"),
    ("scipy.ndimage", "sobel"): ("convcore.ndimage", "sobel"),
    ("scipy.ndimage", "prewitt"): ("convcore.ndimage", "prewitt"),
    ("scipy.signal", "fftconvolve"): ("convcore.signal", "fftconvolve"),
    ("scipy.signal", "oaconvolve"): ("convcore.signal", "oaconvolve"),
    ("scipy.ndimage", "laplace"): ("convcore.ndimage", "laplace"),
    ("scipy.ndimage", "generic_laplace"): ("convcore.ndimage", "generic_laplace"),
    ("scipy.ndimage", "gaussian_laplace"): ("convcore.ndimage", "gaussian_laplace"),
    ("scipy.ndimage", "generic_gradient_magnitude"): ("convcore.ndimage", "generic_gradient_magnitude"),
    ("scipy.ndimage", "gaussian_gradient_magnitude"): ("convcore.ndimage", "gaussian_gradient_magnitude"),
    ("scipy.ndimage", "minimum_filter"): ("convcore.ndimage", "minimum_filter"),
    ("scipy.ndimage", "minimum_filter1d"): ("convcore.ndimage", "minimum_filter1d"),
    ("scipy.ndimage", "maximum_filter"): ("convcore.ndimage", "maximum_filter"),
    ("scipy.ndimage", "maximum_filter1d"): ("convcore.ndimage", "maximum_filter1d"),
    ("scipy.ndimage", "rank_filter"): ("convcore.ndimage", "rank_filter"),
    ("scipy.ndimage", "median_filter"): ("convcore.ndimage", "median_filter"),
    ("scipy.ndimage", "percentile_filter"): ("convcore.ndimage", "percentile_filter"),
}

# scipy test files run (relative to the scipy package directory). Each is copied with
# its package's __init__.py (test_filters.py does ``from . import types, ...``).
TEST_FILES = (
    "signal/tests/test_signaltools.py",
    "ndimage/tests/test_filters.py",
)

# Environment variables the runner passes to the plugin.
ENV_MODE = "CONVCORE_SUITE_MODE"          # "swap" or "noswap"
ENV_RESULTS = "CONVCORE_SUITE_RESULTS"    # JSON-lines file, one record per test
ENV_CURRENT = "CONVCORE_SUITE_CURRENT"    # file holding the id of the running test
ENV_SKIPIDS = "CONVCORE_SUITE_SKIPIDS"    # file of ids already done (deselected on rerun)
ENV_COLLECTED = "CONVCORE_SUITE_COLLECTED"  # file receiving the collected ids

PLUGIN_NAME = "convcore_suite_plugin"


def _first_line(text):
    for line in str(text).splitlines():
        line = line.strip()
        if line:
            return line
    return ""


# =======================================================================================
# Plugin side (runs inside the pytest process)
# =======================================================================================
class _State:
    calls = collections.Counter()   # swapped function name -> calls during this test
    raised = []                     # exceptions that left a swapped function this test
    dtypes = set()                  # dtypes of the array arguments of swapped calls
    reports = []                    # (when, outcome, wasxfail) for this test
    exc = {}                        # when -> (type name, message, detail, exception)


def _make_wrapper(qualname, impl, original):
    import functools

    import numpy as np

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        _State.calls[qualname] += 1
        for a in args + tuple(kwargs.values()):
            dt = getattr(a, "dtype", None)
            if isinstance(dt, np.dtype):
                _State.dtypes.add(str(dt))
        try:
            return impl(*args, **kwargs)
        except BaseException as e:  # recorded, re-raised unchanged
            _State.raised.append((qualname, e))
            raise

    wrapper.__wrapped__ = impl
    wrapper._convcore_suite_swapped = True
    return wrapper


def install_swaps(mode):
    """Replace the scipy module attributes of SWAPS by counting wrappers (around
    convcore's function, or around scipy's own with mode 'noswap')."""
    import importlib

    try:
        from scipy._lib._array_api import xp_capabilities_table
    except ImportError:  # pragma: no cover - older scipy
        xp_capabilities_table = None
    installed = []
    for (smod, sname), (cmod, cname) in SWAPS.items():
        sm = importlib.import_module(smod)
        original = getattr(sm, sname)
        if getattr(original, "_convcore_suite_swapped", False):
            continue
        impl = getattr(importlib.import_module(cmod), cname) if mode == "swap" else original
        wrapper = _make_wrapper(f"{smod}.{sname}", impl, original)
        # make_xp_test_case / make_xp_pytest_param look the function up in scipy's
        # capabilities table; give the wrapper the entry of the function it replaces.
        if xp_capabilities_table is not None and original in xp_capabilities_table:
            xp_capabilities_table[wrapper] = xp_capabilities_table[original]
        setattr(sm, sname, wrapper)
        installed.append(f"{smod}.{sname}")
    return installed


def _read_lines(path):
    if not path or not os.path.exists(path):
        return set()
    with open(path) as f:
        return {line.rstrip("\n") for line in f if line.strip()}


class SuitePlugin:
    def __init__(self):
        self.results_path = os.environ[ENV_RESULTS]
        self.current_path = os.environ[ENV_CURRENT]
        self.skip_ids = _read_lines(os.environ.get(ENV_SKIPIDS))
        self.collected_path = os.environ.get(ENV_COLLECTED)

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session, config, items):
        if self.skip_ids:
            keep = [it for it in items if it.nodeid not in self.skip_ids]
            dropped = [it for it in items if it.nodeid in self.skip_ids]
            if dropped:
                config.hook.pytest_deselected(items=dropped)
            items[:] = keep

    def pytest_collection_finish(self, session):
        if self.collected_path:  # after -k and our own deselection (first run: none)
            with open(self.collected_path, "w") as f:
                for item in session.items:
                    f.write(item.nodeid + "\n")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        _State.calls.clear()
        _State.dtypes.clear()
        _State.raised.clear()
        _State.reports.clear()
        _State.exc.clear()
        with open(self.current_path, "w") as f:
            f.write(item.nodeid + "\n")
        _selftest(item.nodeid)
        t0 = time.perf_counter()
        yield
        dt = time.perf_counter() - t0
        rec = self._record(item, dt)
        with open(self.results_path, "a") as f:
            f.write(json.dumps(rec) + "\n")
            f.flush()
        _State.raised.clear()
        _State.exc.clear()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        rep = outcome.get_result()
        _State.reports.append((rep.when, rep.outcome, hasattr(rep, "wasxfail")))
        if call.excinfo is not None and rep.failed:
            e = call.excinfo.value
            text = str(e)
            _State.exc[rep.when] = (call.excinfo.typename, _first_line(text),
                                    text[:600], e)

    def _record(self, item, dt):
        outcome = "passed"
        phase = None
        for when, out, wasxfail in _State.reports:
            if out == "failed":
                outcome = "failed" if when == "call" else "error"
                phase = when
                break
            if out == "skipped":
                outcome = "xfailed" if wasxfail else "skipped"
                phase = when
                break
            if when == "call" and out == "passed" and wasxfail:
                outcome = "xpassed"
        rec = {
            "id": item.nodeid,
            "outcome": outcome,
            "calls": dict(_State.calls),
            "called_swapped": bool(_State.calls),
            "arg_dtypes": sorted(_State.dtypes),
            "seconds": round(dt, 4),
        }
        if phase is not None and phase in _State.exc:
            typ, msg, detail, exc = _State.exc[phase]
            rec.update(phase=phase, exc_type=typ, message=msg, detail=detail)
            for fname, e in reversed(_State.raised):
                if e is exc:
                    rec["raised_by"] = fname  # the swapped function itself raised it
                    break
            rec["test_expects_raise"] = _expects_raise(item)
        return rec


def _selftest(nodeid):
    """Self-test of the crash / timeout recovery: CONVCORE_SUITE_SELFTEST_CRASH or
    _HANG set to a substring of a test id kills / stalls the interpreter there."""
    crash = os.environ.get("CONVCORE_SUITE_SELFTEST_CRASH")
    if crash and crash in nodeid:
        os.kill(os.getpid(), signal.SIGSEGV)
    hang = os.environ.get("CONVCORE_SUITE_SELFTEST_HANG")
    if hang and hang in nodeid:
        time.sleep(3600)


def _expects_raise(item):
    import inspect

    fn = getattr(item, "function", None)
    try:
        src = inspect.getsource(fn)
    except Exception:
        return False
    return bool(re.search(r"\braises\(|assert_raises", src))


def _plugin_main():
    """Called when this file is imported by pytest as the ``-p`` plugin."""
    mode = os.environ.get(ENV_MODE, "swap")
    install_swaps(mode)
    return SuitePlugin()


# =======================================================================================
# Runner side
# =======================================================================================
CATEGORIES = (
    "crash",
    "timeout",
    "complex input",
    "axes=",
    "missing argument",
    "exception type mismatch",
    "integer/bool dtype rules",
    "float32 accuracy",
    "other",
)

_INT_DTYPE = re.compile(r"\b(u?int(8|16|32|64)?|bool_?|int_|uintp|intp|longlong|"
                        r"ulonglong|short|ushort|ubyte|byte)\b", re.I)
_INT_IN_ID = re.compile(r"[\[\-_](u?int(8|16|32|64)?|bool_?|int_)[\]\-_]", re.I)


def classify(rec):
    """Likely cause of a failing test, by simple rules on its id and message."""
    out = rec["outcome"]
    if out == "crashed":
        return "crash"
    if out == "timeout":
        return "timeout"
    tid = rec["id"]
    name = tid.split("::")[-1]
    msg = rec.get("message", "")
    detail = rec.get("detail", "")
    typ = rec.get("exc_type", "")
    low = (name + " " + detail).lower()
    lname = name.lower()
    # 1. what the error itself says
    if re.search(r"keyword argument '?axes'?|\baxes\b", detail):
        return "axes="
    if "complex" in detail.lower():
        return "complex input"
    if typ == "TypeError" and re.search(
            r"unexpected keyword argument|positional argument|missing \d+ required|"
            r"takes \d+ positional|mode must be a string, got [\[(]", detail):
        return "missing argument"   # (the last: per-axis mode sequences)
    if ("DID NOT RAISE" in detail or "Regex pattern did not match" in detail
            or (rec.get("raised_by") and rec.get("test_expects_raise")
                and typ in ("ValueError", "TypeError", "RuntimeError", "IndexError",
                            "OverflowError", "MemoryError", "KeyError"))):
        return "exception type mismatch"
    m = re.search(r"dtypes? do not match.*?Actual:\s*(\S+).*?Desired:\s*(\S+)", detail,
                  re.S)
    if m and _INT_DTYPE.search(m.group(1) + " " + m.group(2)):
        return "integer/bool dtype rules"
    if not m and typ == "AssertionError" and re.search(r"dtype", detail) \
            and _INT_DTYPE.search(detail):
        return "integer/bool dtype rules"
    # 2. what the test is about
    if "complex" in lname:
        return "complex input"
    if "axes" in lname:
        return "axes="
    if not m and typ == "AssertionError" and _INT_IN_ID.search(name):
        return "integer/bool dtype rules"
    dts = rec.get("arg_dtypes") or []
    if typ == "AssertionError" and not m and any(
            re.fullmatch(r"u?int\d+|bool", d) for d in dts) and not any(
            d.startswith("float") for d in dts):
        return "integer/bool dtype rules"
    if typ == "AssertionError" and not m and ("float32" in low or "float32" in dts):
        return "float32 accuracy"
    return "other"


def _normalize_message(msg):
    msg = re.sub(r"0x[0-9a-f]+", "0x#", msg)
    msg = re.sub(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?", "#", msg)
    return msg[:160]


def _scipy_dir():
    import scipy

    return os.path.dirname(scipy.__file__)


def prepare_tree(tmp):
    """Copy scipy's test files, their package __init__.py and scipy's conftest.py into
    ``tmp``; write the plugin shim and a pytest.ini. Returns the test paths."""
    sdir = _scipy_dir()
    shutil.copy(os.path.join(sdir, "conftest.py"), os.path.join(tmp, "conftest.py"))
    paths = []
    for rel in TEST_FILES:
        sub, fname = os.path.split(rel)          # signal/tests, test_signaltools.py
        pkg = sub.replace("/", "_")              # signal_tests
        dst = os.path.join(tmp, pkg)
        os.makedirs(dst, exist_ok=True)
        init = os.path.join(sdir, sub, "__init__.py")
        if os.path.exists(init):
            shutil.copy(init, os.path.join(dst, "__init__.py"))
        else:
            open(os.path.join(dst, "__init__.py"), "w").close()
        shutil.copy(os.path.join(sdir, rel), os.path.join(dst, fname))
        paths.append(os.path.join(pkg, fname))
    here = os.path.abspath(__file__)
    with open(os.path.join(tmp, PLUGIN_NAME + ".py"), "w") as f:
        f.write(
            "# generated by tools/scipy_suite/run.py\n"
            "import importlib.util as _u\n"
            f"_spec = _u.spec_from_file_location('convcore_scipy_suite_run', {here!r})\n"
            "_m = _u.module_from_spec(_spec)\n"
            "_spec.loader.exec_module(_m)\n"
            "_plugin = _m._plugin_main()\n"
            "def pytest_configure(config):\n"
            "    config.pluginmanager.register(_plugin, 'convcore-suite')\n"
        )
    with open(os.path.join(tmp, "pytest.ini"), "w") as f:
        f.write("[pytest]\n")
    return paths


def _have_xdist():
    try:
        import xdist  # noqa: F401
        return True
    except ImportError:
        return False


def run_suite(args):
    tmp = tempfile.mkdtemp(prefix="convcore_scipy_suite_")
    paths = prepare_tree(tmp)
    results = os.path.join(tmp, "results.jsonl")
    current = os.path.join(tmp, "current.txt")
    skipids = os.path.join(tmp, "skip_ids.txt")
    collected = os.path.join(tmp, "collected.txt")
    log = os.path.join(tmp, "pytest.log")
    open(results, "w").close()
    open(skipids, "w").close()

    env = dict(os.environ)
    env.update({
        ENV_MODE: "noswap" if args.no_swap else "swap",
        ENV_RESULTS: results,
        ENV_CURRENT: current,
        ENV_SKIPIDS: skipids,
        "PYTHONPATH": tmp + os.pathsep + env.get("PYTHONPATH", ""),
        "PYTHONFAULTHANDLER": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    env.pop("SCIPY_ARRAY_API", None)  # numpy backend only: convcore takes numpy arrays
    cmd = [sys.executable, "-m", "pytest", "-p", PLUGIN_NAME, "-p", "no:cacheprovider",
           "-q", "--tb=no", "-rN", "--rootdir", tmp, "-c", os.path.join(tmp, "pytest.ini")]
    if args.only:
        cmd += ["-k", args.only]
    if args.xdist and _have_xdist():
        # crash/timeout recovery and the collected-id file assume one process
        cmd += ["-n", str(args.xdist)]
    cmd += paths

    crashes = []
    restarts = 0
    t_start = time.time()
    while True:
        env[ENV_COLLECTED] = collected if restarts == 0 else ""
        if os.path.exists(current):
            os.remove(current)
        with open(log, "a") as lf:
            lf.write(f"\n===== run {restarts}: {' '.join(cmd)}\n")
            lf.flush()
            proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=lf,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            timed_out_id = None
            last_id, last_t = None, time.time()
            while proc.poll() is None:
                time.sleep(0.5)
                cur = _read_current(current)
                if cur != last_id:
                    last_id, last_t = cur, time.time()
                elif cur is not None and time.time() - last_t > args.timeout:
                    timed_out_id = cur
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    break
            rc = proc.returncode
        done = _done_ids(results)
        cur = _read_current(current)
        if cur is not None and cur not in done:
            outcome = "timeout" if timed_out_id == cur else "crashed"
            tail = _tail(log, 40)
            rec = {"id": cur, "outcome": outcome, "calls": {}, "called_swapped": True,
                   "exc_type": "timeout" if outcome == "timeout" else f"signal/rc {rc}",
                   "message": (f"ran past {args.timeout}s" if outcome == "timeout"
                               else f"interpreter died (rc {rc})"),
                   "detail": tail[-600:], "log_tail": tail}
            # called_swapped is assumed (the counter died with the process); the
            # control run tells whether the test calls a swapped function.
            with open(results, "a") as f:
                f.write(json.dumps(rec) + "\n")
            crashes.append(rec)
            with open(skipids, "w") as f:
                for i in _done_ids(results):
                    f.write(i + "\n")
            restarts += 1
            if restarts > args.max_restarts:
                print(f"giving up after {restarts} restarts", file=sys.stderr)
                break
            continue
        if rc not in (0, 1, 5):
            print(f"pytest exited with rc {rc}; see {log}", file=sys.stderr)
            print(_tail(log, 30), file=sys.stderr)
        break
    wall = time.time() - t_start
    recs = _load(results)
    ids = _read_lines(collected) or {r["id"] for r in recs}
    return tmp, recs, ids, wall, restarts, log


def _read_current(path):
    try:
        with open(path) as f:
            s = f.read().strip()
        return s or None
    except OSError:
        return None


def _tail(path, n):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def _load(path):
    recs = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                recs[r["id"]] = r
    return list(recs.values())


def _done_ids(path):
    return {r["id"] for r in _load(path)}


def summarize(recs, ids, args, wall, restarts):
    called = [r for r in recs if r["called_swapped"]]
    by_out = collections.Counter(r["outcome"] for r in called)
    ran = [r for r in called if r["outcome"] not in ("skipped",)]
    passed = by_out["passed"] + by_out["xpassed"]
    bad = [r for r in ran if r["outcome"] not in ("passed", "xpassed", "xfailed")]
    for r in bad:
        r["cause"] = classify(r)
    causes = collections.Counter(r["cause"] for r in bad)
    msgs = collections.Counter(
        f'{r.get("exc_type", "")}: {_normalize_message(r.get("message", ""))}' for r in bad)
    per_func = collections.defaultdict(lambda: collections.Counter())
    for r in ran:
        ok = r["outcome"] in ("passed", "xpassed", "xfailed")
        for fn in r["calls"]:
            per_func[fn]["tests"] += 1
            per_func[fn]["passed"] += ok
    summary = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "mode": "noswap (control: scipy's own functions)" if args.no_swap
                else "swap (convcore's functions)",
        "scipy_version": _version("scipy"),
        "convcore_version": _version("convcore"),
        "numpy_version": _version("numpy"),
        "only": args.only,
        "test_files": list(TEST_FILES),
        "swapped": [f"{a}.{b}" for a, b in SWAPS],
        "total_tests": len(ids),
        "tests_run_recorded": len(recs),
        "outcomes_all": dict(collections.Counter(r["outcome"] for r in recs)),
        "calling_swapped": len(called),
        "calling_swapped_skipped": by_out["skipped"],
        "denominator": len(ran),
        "passed": passed,
        "failed": by_out["failed"],
        "errors": by_out["error"],
        "crashed": by_out["crashed"],
        "timeout": by_out["timeout"],
        "xfailed": by_out["xfailed"],
        "pass_rate": round(passed / len(ran), 4) if ran else None,
        "causes": {c: causes[c] for c in CATEGORIES if causes[c]},
        "top_messages": msgs.most_common(20),
        "per_function": {k: dict(v) for k, v in sorted(per_func.items())},
        "wall_seconds": round(wall, 1),
        "pytest_restarts": restarts,
    }
    failures = [{k: r.get(k) for k in ("id", "outcome", "cause", "exc_type", "message",
                                       "raised_by", "calls", "arg_dtypes", "detail",
                                       "log_tail")}
                for r in sorted(bad, key=lambda r: r["id"])]
    return summary, failures


def _version(mod):
    try:
        from importlib.metadata import version
        return version(mod)
    except Exception:
        return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", metavar="PATTERN", help="pytest -k expression")
    p.add_argument("--no-swap", action="store_true",
                   help="control: wrap scipy's own functions (counting only)")
    p.add_argument("--json", metavar="PATH", help="write summary + every failure here")
    p.add_argument("--control", metavar="PATH",
                   help="JSON of a --no-swap run: compare which tests call swapped ones")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds one test may run before it is killed (default 600)")
    p.add_argument("--max-restarts", type=int, default=50)
    p.add_argument("--xdist", type=int, default=0, metavar="N",
                   help="pytest-xdist workers, if installed (disables crash recovery)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--top", type=int, default=10, help="failure messages to print")
    args = p.parse_args(argv)

    try:  # run at the lowest priority (inherited by pytest)
        os.nice(19 - os.nice(0))
    except OSError:
        pass

    tmp, recs, ids, wall, restarts, log = run_suite(args)
    summary, failures = summarize(recs, ids, args, wall, restarts)

    s = summary
    print(f"mode: {s['mode']}   scipy {s['scipy_version']}   "
          f"convcore {s['convcore_version']}   ({s['wall_seconds']} s)")
    print(f"total tests collected:           {s['total_tests']}")
    print(f"outcomes (all tests):            {s['outcomes_all']}")
    print(f"tests calling a swapped function: {s['calling_swapped']}"
          f" (of which skipped: {s['calling_swapped_skipped']})")
    print(f"  passed {s['passed']}  failed {s['failed']}  errors {s['errors']}"
          f"  crashed {s['crashed']}  timeout {s['timeout']}  xfailed {s['xfailed']}")
    if s["pass_rate"] is not None:
        print(f"  pass rate {s['passed']}/{s['denominator']} = {100 * s['pass_rate']:.1f} %")
    if s["causes"]:
        print("failures by likely cause:")
        for c, n in s["causes"].items():
            print(f"  {n:5d}  {c}")
    if s["top_messages"]:
        print(f"most common failure messages (numbers -> #):")
        for m, n in s["top_messages"][:args.top]:
            print(f"  {n:5d}  {m}")
    print("per swapped function (tests calling it: passed/tests):")
    for fn, c in s["per_function"].items():
        print(f"  {fn:32s} {c.get('passed', 0):5d}/{c['tests']}")
    for r in failures:
        if r["outcome"] in ("crashed", "timeout"):
            print(f"{r['outcome'].upper()}: {r['id']}  ({r['message']})")
    called_ids = sorted(r["id"] for r in recs if r["called_swapped"])
    if args.control:
        with open(args.control) as f:
            ctrl = json.load(f)
        cset, sset = set(ctrl.get("calling_swapped_ids", [])), set(called_ids)
        print(f"vs control {args.control}: {len(cset)} tests call a swapped function "
              f"there; {len(sset - cset)} only here, {len(cset - sset)} only there")
        for i in sorted(sset ^ cset)[:20]:
            print(f"  {'here ' if i in sset else 'there'}  {i}")
        summary["control_calling_swapped"] = len(cset)
        summary["only_here"] = sorted(sset - cset)
        summary["only_in_control"] = sorted(cset - sset)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "failures": failures,
                       "calling_swapped_ids": called_ids}, f, indent=1)
        print(f"wrote {args.json}")
    if args.keep:
        print(f"kept {tmp} (pytest log: {log})")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
