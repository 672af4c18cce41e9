"""A fuzz test that stays (issue 11): seeded random calls of every public function and
layer with random layouts (C, F, negative strides, strided and broadcast views up to
2**62 elements, byte-swapped, unaligned, read-only, lists), dtypes (bool, every int and
uint, float16/32/64, complex, object, str, bytes, datetime), sizes (0, 1, odd, a few
thousand), NaN/inf/extreme values and bad arguments (negative, zero, bool, fractional,
None, strings, 2**62, NaN/inf), on the CPU and the GPU.

Every call must either

- return what the reference returns (scipy.ndimage / scipy.signal / numpy / a numpy
  formula; on the GPU the CPU's result, NaN and inf positions included), or
- raise ValueError, TypeError, MemoryError or OverflowError (training may also raise
  FloatingPointError, and must then leave the weights finite; indexing may raise
  IndexError, Python's own protocol for an index out of range).

Anything else is a defect, reported with the function, its arguments and the traceback:
another exception type (IndexError, KeyError, ZeroDivisionError, AttributeError,
RuntimeError, RecursionError, a pyo3 PanicException, which derives from BaseException),
a result that differs from the reference, a call that returns for an argument it must
refuse (what the reference rejects; else a count that is negative, zero, bool or
fractional, NaN/inf for a finite number, a non-numeric dtype), or a call slower than
``SLOW_S`` seconds twice in a row. A hang cannot stall CI: after ``HANG_S`` seconds in
one call every thread's stack goes to stderr and the process exits (status 1); the
hanging case is then named in ``Watchdog.path``.

Each test collects its failures, deduplicates them (entry point, kind, where raised) and
fails once, listing each distinct defect with its count, the smallest reproducer seen
(one line), the message and the traceback.

The cases come from tables of entry points, each with an argument generator and a
reference: FILTERS (signal, ndimage, pooling), OPS (every op of convcore.ops and the
Tensor methods), LAYERS (every layer class, eager and in a Sequential, and
layers.deserialize), MODELS (training and prediction of tiny models, adversarial,
inspect, optimizers, losses, package settings) and GPU (the filter and op generators with
float32 inputs on device='gpu' against the CPU, and models compiled for the GPU).
test_every_public_entry_point_is_fuzzed fails when a public name has no entry. Every
case has its own seed ``(CONVCORE_FUZZ_SEED, family, i)`` and the entry points are
visited in turn, so even a short run reaches all of them.

Environment: ``CONVCORE_FUZZ=N`` runs N cases in all, shared among the families in the
proportions of DEFAULT_CASES (the long version, e.g. 100000; the default, a few thousand
cases, is the CI run); ``CONVCORE_FUZZ_SEED`` (default 11) draws other cases;
``CONVCORE_FUZZ_CASE=family:i`` runs that one case and prints its reproducer (``-s``).
"""
from __future__ import annotations

import copy as _copy
import faulthandler
import math
import os
import resource
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import pytest
import scipy.ndimage as nd
import scipy.signal as ss
from scipy import special

import convcore as cc
from convcore import _core, adversarial, inspect as cinspect, layers as L, losses, ndimage as cn, ops, optimizers
from convcore import pooling as cpool, signal as csig
from convcore.layers import Layer

from test_pooling import ref_pool

# ---------------------------------------------------------------------------- configuration
DEFAULT_CASES = {"filters": 1300, "ops": 1600, "layers": 3000, "models": 500, "gpu": 400}
FAMILY_ID = {"filters": 1, "ops": 2, "layers": 3, "models": 4, "gpu": 5}
BASE_SEED = int(os.environ.get("CONVCORE_FUZZ_SEED", "11"))
SLOW_S = 5.0  # a call slower than this twice in a row is reported
HOG_BYTES = 3 << 30  # a call whose peak memory grows by more than this is reported
CAP_BYTES = 6 << 30  # address space a fuzz test may add (beyond, allocations are MemoryError)
HANG_S = 120.0  # a call slower than this dumps every stack and ends the process
OK_ERRORS = (ValueError, TypeError, MemoryError, OverflowError)
BIG = 10 ** 6  # results larger than this are checked for shape only
HAVE_GPU = _core.gpu_available()
if not HAVE_GPU and os.environ.get("CONVCORE_CI"):
    raise RuntimeError("CI requires a GPU adapter (lavapipe) for the fuzz test's GPU half")

nan, inf = float("nan"), float("inf")


def n_cases(family):
    total = os.environ.get("CONVCORE_FUZZ")
    if total:
        share = DEFAULT_CASES[family] / sum(DEFAULT_CASES.values())
        return max(1, round(int(total) * share))
    return DEFAULT_CASES[family]


# ---------------------------------------------------------------------------- describing calls
def _fmt_float(v):
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(v)


def layout_flags(a):
    """How an array is laid out in memory, in words (what a reproducer must rebuild)."""
    f = []
    if a.dtype.byteorder not in ("=", "|") and a.dtype.byteorder != {"little": "<", "big": ">"}[sys.byteorder]:
        f.append("byteswapped")
    if not a.flags.aligned:
        f.append("unaligned")
    if a.size > 1 and 0 in a.strides:
        f.append("broadcast")
    if any(s < 0 for s in a.strides):
        f.append("negative strides")
    if a.ndim >= 2 and a.flags.f_contiguous and not a.flags.c_contiguous:
        f.append("F")
    elif not a.flags.c_contiguous and "broadcast" not in f and a.size > 1:
        f.append("strided")
    if not a.flags.writeable and "broadcast" not in f:
        f.append("read-only")
    return f


def fmt_array(a):
    flags = layout_flags(a)
    dt = a.dtype.str if "byteswapped" in flags else a.dtype.name if a.dtype.kind not in "USO" else a.dtype.str
    if a.size == 0:
        body = f"np.zeros({a.shape}, dtype={dt!r})"
    elif a.size <= 8 and a.dtype.kind != "V":
        body = f"np.array({a.tolist()!r}, dtype={dt!r})".replace("nan", "np.nan").replace("inf", "np.inf")
    else:
        body = f"<{dt} array of shape {a.shape}"
        if a.dtype.kind in "fc" and a.size <= BIG:
            with np.errstate(all="ignore"):
                n_nan, n_inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
            body += f", {n_nan} NaN" if n_nan else ""
            body += f", {n_inf} inf" if n_inf else ""
        body += ">"
    return body + (f"[{', '.join(flags)}]" if flags else "")


def fmt(v, depth=0):
    """A short, mostly executable description of an argument."""
    try:
        if depth > 3:
            return "..."
        if isinstance(v, Wrapped):
            return v.describe()
        if isinstance(v, cc.Tensor):
            inner = fmt_array(v.numpy()) if v.size <= BIG else f"<{v.dtype} of shape {v.shape}>"
            return f"ops.convert_to_tensor({inner}, device={v.device!r})"
        if isinstance(v, np.ndarray):
            return fmt_array(v)
        if isinstance(v, float) and not isinstance(v, np.floating):
            return _fmt_float(v)
        if isinstance(v, (list, tuple)):
            items = [fmt(e, depth + 1) for e in v[:8]] + (["..."] if len(v) > 8 else [])
            if isinstance(v, tuple):
                return "(" + ", ".join(items) + ("," if len(v) == 1 else "") + ")"
            return "[" + ", ".join(items) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k!r}: {fmt(e, depth + 1)}" for k, e in v.items()) + "}"
        if isinstance(v, type):
            return f"np.{v.__name__}" if v.__module__ == "numpy" else v.__name__
        if isinstance(v, Layer) or hasattr(v, "_fuzz_desc"):
            return getattr(v, "_fuzz_desc", None) or repr(v)
        if callable(v) and hasattr(v, "__name__"):
            mod = getattr(v, "__module__", "") or ""
            return ("ops." if mod.startswith("convcore.ops") else "") + v.__name__
        r = repr(v)
        return r if len(r) <= 80 else r[:77] + "..."
    except Exception:  # noqa: BLE001 - describing must never fail the run
        return f"<{type(v).__name__}>"


class Wrapped:
    """An input kept as a numpy array and handed over as a Tensor on a device, an
    ndarray, a Python list or a Python scalar, converted inside the call (so a
    conversion error is the library's)."""

    def __init__(self, value, how="array", device="cpu"):
        self.value, self.how, self.device = value, how, device

    def on(self, device):
        return Wrapped(self.value, self.how, device)

    def realize(self):
        if self.how == "tensor":
            return ops.convert_to_tensor(self.value, device=self.device)
        if self.how == "list":
            return np.asarray(self.value).tolist()
        return self.value

    def numpy(self):
        """What a numpy reference is given."""
        return np.asarray(np.asarray(self.value).tolist()) if self.how == "list" else self.value

    def describe(self):
        if self.how == "tensor":
            return f"ops.convert_to_tensor({fmt(self.value)}, device={self.device!r})"
        if self.how == "list":
            return fmt(np.asarray(self.value).tolist())
        return fmt(self.value)


def realize(v):
    if isinstance(v, Wrapped):
        return v.realize()
    if isinstance(v, list) and any(isinstance(e, Wrapped) for e in v):
        return [realize(e) for e in v]
    return v


def as_numpy(v):
    if isinstance(v, Wrapped):
        return v.numpy()
    if isinstance(v, list) and any(isinstance(e, Wrapped) for e in v):
        return [as_numpy(e) for e in v]
    return v


# ---------------------------------------------------------------------------- running and reporting
class Mismatch(AssertionError):
    """A returned result that is wrong; ``tag`` names the kind (for deduplication), and
    ``group`` (optional) the entry points that share one cause."""

    def __init__(self, tag, msg, group=None):
        super().__init__(msg)
        self.tag = tag
        self.group = group


@dataclass
class Call:
    """One call of an entry point: ``fn(*args, **kwargs)``, described as ``label(shown)``.

    ``invalid`` lists the arguments the call must refuse (a return is a failure);
    ``check(result)`` raises Mismatch when the result is wrong; ``allow`` adds accepted
    exception types; ``on_raise(exc)`` checks the state after an accepted exception."""
    label: str
    fn: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    invalid: list = field(default_factory=list)
    check: Optional[Callable] = None
    allow: tuple = ()
    on_raise: Optional[Callable] = None
    entry: Optional[str] = None  # for deduplication; default: the label up to "("
    shown: Optional[tuple] = None  # (args, kwargs) shown in the reproducer, default the real ones
    setup: str = ""  # what the reproducer needs first (a model, a layer)
    group: Optional[str] = None  # the entry an accepted invalid argument is reported under

    def key_entry(self):
        return self.entry or self.label.split("(")[0]

    def repro(self):
        args, kwargs = self.shown if self.shown is not None else (self.args, self.kwargs)
        parts = [fmt(a) for a in args] + [f"{k}={fmt(v)}" for k, v in kwargs.items()]
        text = f"{self.label}({', '.join(parts)})"
        return f"{self.setup}; {text}" if self.setup else text


class Watchdog:
    """After HANG_S seconds in one call: every thread's stack to the real stderr (past
    pytest's capture, which a process exit would lose) and the process ends with status
    1; the hanging case's reproducer is in ``path`` (rewritten before each call)."""

    out = None
    fd = None
    path = os.path.join(tempfile.gettempdir(), "convcore-fuzz-current-case.txt")

    @classmethod
    def start(cls, config=None):
        cls.out = sys.__stderr__.fileno()
        try:  # pytest keeps the real stderr as a duplicate while it captures fd 2
            cls.out = config.pluginmanager.getplugin("capturemanager")._global_capturing.err.targetfd_save
        except Exception:  # noqa: BLE001 - not under pytest, or no fd capture
            pass
        if cls.fd is None:
            cls.fd = os.open(cls.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)

    @classmethod
    def case(cls, text):
        if cls.fd is not None:
            data = (text[:4000] + "\n").encode("utf-8", "replace")
            os.ftruncate(cls.fd, 0)
            os.pwrite(cls.fd, data, 0)


def _invoke(fn, args, kwargs):
    faulthandler.dump_traceback_later(HANG_S, exit=True, file=Watchdog.out or sys.__stderr__.fileno())
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return True, fn(*args, **kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - PanicException derives from BaseException
        return False, e
    finally:
        faulthandler.cancel_dump_traceback_later()


def _where_raised(e):
    """The innermost frame of the library (else the innermost frame) that raised ``e``."""
    frames = traceback.extract_tb(e.__traceback__)
    mine = [f for f in frames if "convcore" in f.filename and "tests" not in f.filename]
    f = (mine or frames or [None])[-1]
    return f"{os.path.basename(f.filename)}:{f.lineno} ({f.name})" if f else "?"


def _trimmed_tb(e, keep=8):
    tb = e.__traceback__
    frames = traceback.format_tb(tb)
    frames = [f for f in frames if "test_fuzz.py" not in f or "realize" in f] or frames
    body = "".join(frames[-keep:])
    return body + f"{type(e).__module__}.{type(e).__qualname__}: {e}"


class Fuzz:
    """Runs calls, keeping one entry (the smallest reproducer) per distinct failure."""

    def __init__(self, family):
        self.family = family
        self.cases = 0
        self.seen = {}
        self.started = time.perf_counter()

    def fail(self, call, case, tag, message, where="", group=None):
        entry = group or call.key_entry()
        key = (entry, tag, where)
        repro = call.repro()
        old = self.seen.get(key)
        if old is None or len(repro) < len(old["repro"]):
            count, entries = (old["count"], old["entries"]) if old else (0, set())
            self.seen[key] = {"entry": entry, "tag": tag, "repro": repro, "message": message, "case": case,
                              "count": count, "where": where, "entries": entries}
        self.seen[key]["count"] += 1
        self.seen[key]["entries"].add(call.key_entry())

    def run(self, call, case):
        self.cases += 1
        peak = _peak_rss()
        t0 = time.perf_counter()
        ok, out = _invoke(call.fn, call.args, call.kwargs)
        dt = time.perf_counter() - t0
        grew = _peak_rss() - peak  # (the high-water mark: the first hog of a run is seen)
        if grew > HOG_BYTES:
            self.fail(call, case, "memory hog", f"its peak memory grew by {grew / 2 ** 30:.1f} GiB, then it "
                                                f"{'returned' if ok else 'raised ' + type(out).__name__}")
        if dt > SLOW_S:  # once more: a busy machine or a first-time shader compile is not a hang
            t1 = time.perf_counter()
            _invoke(call.fn, call.args, call.kwargs)
            dt2 = time.perf_counter() - t1
            if dt2 > SLOW_S:
                self.fail(call, case, "slow", f"took {dt:.1f} s, then {dt2:.1f} s (budget {SLOW_S:g} s)")
        if not ok:
            if isinstance(out, OK_ERRORS + tuple(call.allow)):
                if call.on_raise is not None:
                    self._checked(call, case, call.on_raise, out)
                return
            self.fail(call, case, f"raises {type(out).__name__}", _trimmed_tb(out), _where_raised(out))
            return
        if call.invalid:
            first = sorted({a.split("=")[0] for a in call.invalid})[0]
            self.fail(call, case, f"accepts invalid {first}",
                      f"returned {fmt(out)[:200]} for {', '.join(call.invalid)}; must raise ValueError or TypeError",
                      group=call.group)
            return
        if call.check is not None:
            self._checked(call, case, call.check, out)

    def _checked(self, call, case, check, value):
        ok, err = _invoke(check, (value,), {})
        if ok or isinstance(err, NoReference):
            return
        if isinstance(err, Mismatch):
            self.fail(call, case, err.tag, str(err), group=err.group)
        else:
            self.fail(call, case, f"checking the result raised {type(err).__name__}", _trimmed_tb(err),
                      _where_raised(err))

    def report(self):
        fails = sorted(self.seen.values(), key=lambda f: (f["entry"], f["tag"]))
        total = sum(f["count"] for f in fails)
        took = time.perf_counter() - self.started
        head = (f"fuzz[{self.family}]: {total} failing calls of {self.cases} ({took:.1f} s), "
                f"{len(fails)} distinct defects")
        lines = [head]
        for i, f in enumerate(fails, 1):
            lines.append(f"\n[{i}] {f['entry']}: {f['tag']}  (x{f['count']}; case {self.family}:{f['case']}"
                         f"{'; ' + f['where'] if f['where'] else ''})")
            if len(f["entries"]) > 1 or f["entries"] != {f["entry"]}:
                lines.append(f"    in: {', '.join(sorted(f['entries']))}")
            lines.append(f"    repro: {f['repro']}")
            lines.extend("    " + ln for ln in f["message"].splitlines()[-14:])
        return "\n".join(lines)

    def finish(self):
        text = self.report()
        print(text.splitlines()[0])
        if self.seen:
            pytest.fail(text, pytrace=False)


class MemoryCap:
    """While a fuzz test runs, the process may map at most CAP_BYTES more than it had: a
    call that would fill gigabytes before failing (a per-channel copy of a 2**41-element
    view, say) meets MemoryError instead of the machine's OOM killer, and is reported by
    its peak memory (see Fuzz.run)."""

    def __enter__(self):
        self.old = resource.getrlimit(resource.RLIMIT_AS)
        try:
            with open("/proc/self/statm") as f:
                mapped = int(f.read().split()[0]) * resource.getpagesize()
            soft = mapped + CAP_BYTES
            if self.old[1] != resource.RLIM_INFINITY:
                soft = min(soft, self.old[1])
            resource.setrlimit(resource.RLIMIT_AS, (soft, self.old[1]))
        except (OSError, ValueError):  # no /proc, or a platform without RLIMIT_AS
            self.old = None
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            resource.setrlimit(resource.RLIMIT_AS, self.old)


def _peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def run_family(family, entries, config=None):
    """Visit ``entries`` (name -> maker(rng)) in turn, each case with its own seed."""
    Watchdog.start(config)
    with MemoryCap():
        _run_family(family, entries)


def _run_family(family, entries):
    fz = Fuzz(family)
    names = list(entries)
    only = os.environ.get("CONVCORE_FUZZ_CASE")
    if only:
        fam, _, idx = only.partition(":")
        cases = [int(idx)] if fam == family else []
    else:
        cases = range(n_cases(family))
    for i in cases:
        rng = np.random.default_rng([BASE_SEED, FAMILY_ID[family], i])
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call = entries[names[i % len(names)]](rng)
        if only:
            print(f"case {family}:{i}: {call.repro()}")
        Watchdog.case(f"case {family}:{i} (CONVCORE_FUZZ_CASE={family}:{i}, CONVCORE_FUZZ_SEED={BASE_SEED}): "
                      f"{call.key_entry()}")
        fz.run(call, i)
    fz.finish()


def weighted(entries, weights):
    """``entries`` with entry ``name`` visited ``weights[name]`` times per round."""
    out = {}
    for name, make in entries.items():
        for k in range(weights.get(name, 1)):
            out[name if k == 0 else f"{name} #{k + 1}"] = make
    return out


# ---------------------------------------------------------------------------- random choices
def choice(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def choose(rng, good, bad=(), p_bad=0.12):
    """A good value, or (with probability ``p_bad``) one of ``bad`` (no validity kept:
    for entry points whose reference decides)."""
    if bad and rng.random() < p_bad:
        return choice(rng, bad)
    return choice(rng, good)


class Args:
    """Arguments for entry points without a reference that rejects: each pick knows
    whether its value is valid, invalid (a return is a failure) or either."""

    def __init__(self, rng):
        self.rng = rng
        self.invalid = []
        self.overflow = False  # data so large that NaN/inf results are legitimate

    def pick(self, name, good, bad=(), maybe=(), p_bad=0.12, p_maybe=0.04):
        r = self.rng.random()
        if bad and r < p_bad:
            v = choice(self.rng, bad)
            self.invalid.append(f"{name}={fmt(v)}")
            return v
        if maybe and r < p_bad + p_maybe:
            return choice(self.rng, maybe)
        return choice(self.rng, good)

    def invalid_if(self, cond, text):
        if cond:
            self.invalid.append(text)


# Values that are never a valid count / size / positive number / rate.
POS_INT_BAD = [0, -1, -7, True, False, 1.5, 0.5, "2", None, nan, inf, -2 ** 62, 2 + 0j, b"2"]
POS_FLOAT_BAD = [0.0, -1.0, -1e-9, nan, inf, -inf, "1", None, 1 + 1j]
RATE_BAD = [-0.1, 1.0, 1.5, nan, inf, "0.5", None]

# ---------------------------------------------------------------------------- random arrays
NUMERIC = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32",
           "float64")
NONNUMERIC = ("complex64", "complex128", "object", "<U3", "|S3", "datetime64[D]", "timedelta64[s]")
SPECIALS = np.array([nan, nan, inf, -inf, 1e15, -1e15, -0.0, 1e-42])
LAYOUTS = ["C"] * 8 + ["F", "F", "neg", "neg", "step", "step", "T", "bcast", "bcast", "bswap", "bswap", "unaligned",
                       "unaligned", "readonly", "list"]


def draw_dtype(rng, gpu=False):
    r = rng.random()
    if gpu:
        return "float32" if r < 0.82 else "float64" if r < 0.9 else choice(rng, NUMERIC) if r < 0.97 else \
            choice(rng, NONNUMERIC)
    if r < 0.32:
        return "float32"
    if r < 0.58:
        return "float64"
    if r < 0.88:
        return choice(rng, NUMERIC)
    return choice(rng, NONNUMERIC)


def draw_shape(rng, ndim, hi=5, cap=4096):
    sides = []
    for _ in range(int(ndim)):
        r = rng.random()
        sides.append(0 if r < 0.04 else 1 if r < 0.2 else int(rng.integers(2, hi + 1)) if r < 0.92 else
                     int(choice(rng, [7, 9, 11, 13, 17, 31])))
    while sides and math.prod(sides) > cap:
        i = int(np.argmax(sides))
        sides[i] = max(1, sides[i] // 2)
    return tuple(sides)


def draw_values(rng, shape, special):
    style = int(rng.integers(4))
    if style == 0:
        v = rng.standard_normal(shape) * 3
    elif style == 1:
        v = rng.integers(-4, 5, size=shape).astype(np.float64)
    elif style == 2:
        v = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, size=shape)
    else:
        v = rng.uniform(0.0, 1.0, shape)
    v = np.asarray(v, dtype=np.float64)
    if special and v.size and rng.random() < special:
        m = rng.random(v.shape) < choice(rng, [0.05, 0.2, 0.5, 1.0])
        if not m.any():
            m.flat[int(rng.integers(v.size))] = True
        v[m] = rng.choice(SPECIALS, size=int(m.sum()))
    return v


def cast(rng, v, dtype):
    return np.asarray(_cast(rng, v, dtype))


def _cast(rng, v, dtype):
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return v.astype(dt)
    if dt.kind == "b":
        return v > 0
    w = np.clip(np.nan_to_num(np.round(v), nan=0.0, posinf=1e9, neginf=-1e9), -1e9, 1e9)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        w = np.abs(w) if dt.kind == "u" else w
        return np.clip(w, max(info.min, -1e9), min(info.max, 1e9)).astype(dt)
    if dt.kind == "c":
        return (v + 1j * rng.standard_normal(v.shape)).astype(dt)
    if dt.kind == "O":
        return v.astype(object)
    if dt.kind in "US":
        return np.clip(w, -99, 999).astype(np.int64).astype(dt)
    return w.astype(np.int64).astype(dt)  # datetime64 / timedelta64


def relayout(rng, a, kind=None):
    """The same values (or, for 'bcast', values repeated along an axis) in another memory
    layout."""
    kind = kind or choice(rng, LAYOUTS)
    numeric = a.dtype.kind in "iufc"
    if kind == "F":
        return np.asfortranarray(a)
    if kind == "neg" and a.ndim:
        return np.flip(np.flip(a).copy())
    if kind == "step" and a.ndim:
        big = np.zeros(tuple(2 * n for n in a.shape), dtype=a.dtype)
        idx = tuple(slice(None, None, 2) for _ in a.shape)
        big[idx] = a
        return big[idx]
    if kind == "T" and a.ndim >= 2:
        return np.ascontiguousarray(a.T).T
    if kind == "bcast" and a.size > 1:
        axes = [i for i, n in enumerate(a.shape) if n > 1]
        ax = choice(rng, axes)
        return np.broadcast_to(np.take(a, [0], axis=ax), a.shape)
    if kind == "bswap" and numeric and a.dtype.itemsize > 1:
        return a.astype(a.dtype.newbyteorder())
    if kind == "unaligned" and numeric and a.dtype.itemsize > 1 and a.size:
        buf = bytearray(a.nbytes + 1)
        u = np.frombuffer(buf, dtype=a.dtype, offset=1, count=a.size).reshape(a.shape)
        u[...] = a
        return u
    if kind == "readonly":
        a = a.copy()
        a.setflags(write=False)
        return a
    if kind == "list" and a.dtype.kind in "biuf" and a.ndim:
        return a.tolist()
    return a


def huge_array(rng, ndim, dtype="float32"):
    """A broadcast view of 2**40 to 2**62 elements (zero strides: no memory behind it)."""
    ndim = max(int(ndim), 1)
    dt = np.dtype(dtype) if np.dtype(dtype).kind in "biuf" else np.dtype("float32")
    top = 62 - int(math.log2(dt.itemsize))  # numpy's limit: size * itemsize < 2**63
    parts = rng.multinomial(min(int(choice(rng, [40, 41, 44, 50, 62])), top), [1.0 / ndim] * ndim)
    base = cast(rng, draw_values(rng, (1,) * ndim, 0.1), dt)
    return np.broadcast_to(base, tuple(2 ** int(p) for p in parts))


def arr(rng, shape=None, ndim=None, dtype=None, special=0.15, layout=True, huge=0.0, gpu=False, hi=5, cap=4096):
    """A random array: shape (or a random one of ``ndim`` axes), dtype (or a random one),
    values with NaN/inf/extremes (probability ``special``), a random memory layout; with
    probability ``huge`` a broadcast view of 2**40+ elements instead."""
    if ndim is None:
        ndim = len(shape) if shape is not None else int(rng.integers(0, 4))
    dt = dtype or draw_dtype(rng, gpu)
    if huge and rng.random() < huge:
        return huge_array(rng, ndim, dt)
    if shape is None:
        shape = draw_shape(rng, ndim, hi=hi, cap=cap)
    a = cast(rng, draw_values(rng, shape, special), dt)
    return relayout(rng, a) if layout else a


def is_huge(a):
    return isinstance(a, np.ndarray) and a.size > BIG


def numeric(*xs, kinds="biuf"):
    """Every argument is (convertible to) a bool, integer or real float array (or of
    the dtype ``kinds`` given)."""
    for x in xs:
        try:
            a = np.asarray(x)
        except Exception:  # noqa: BLE001 - ragged lists and the like
            return False
        if a.dtype.kind not in kinds:
            return False
    return True


def f64(a):
    return np.array(a, dtype=np.float64)


def finite(*xs):
    """Every argument is numeric (complex included), not huge, and finite everywhere."""
    if not numeric_c(*xs):
        return False
    for x in xs:
        a = np.asarray(x)
        if a.size > BIG or not np.isfinite(a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)).all():
            return False
    return True


def numeric_c(*xs):
    """Every argument is (convertible to) a bool, integer, real or complex array (what
    scipy's filters take)."""
    return numeric(*xs, kinds="biufc")


def _abs64(a):
    """|a| in float64 (a complex array's modulus)."""
    a = np.asarray(a)
    return np.abs(a.astype(np.complex128)) if a.dtype.kind == "c" else np.abs(np.asarray(a, dtype=np.float64))


def amax(a):
    """max |a| over the finite entries (0 when none, or not numeric)."""
    if not numeric_c(a):
        return 0.0
    v = _abs64(a)
    v = v[np.isfinite(v)]
    return float(v.max()) if v.size else 0.0


def asum(a):
    if not numeric_c(a):
        return 0.0
    v = _abs64(a)
    return float(v[np.isfinite(v)].sum())


def float_of(*xs):
    """The package's dtype rule: float32 when every input is float16/float32, else float64."""
    arrays = [np.asarray(x) for x in xs]
    return np.dtype(np.float32) if all(a.dtype.kind == "f" and a.dtype.itemsize <= 4 for a in arrays) else \
        np.dtype(np.float64)


RTOL = {np.dtype(np.float16): 2e-3, np.dtype(np.float32): 5e-5, np.dtype(np.float64): 1e-10}


def rtol_of(dtype):
    d = np.dtype(dtype).newbyteorder("=")  # a byte-swapped dtype has its native twin's precision
    if d.kind == "c":  # a complex number has its components' precision
        d = np.dtype(f"f{d.itemsize // 2}")
    return RTOL.get(d, 5e-5 if d.kind == "f" else 0.0)


# ---------------------------------------------------------------------------- comparing results
def _first(mask):
    return tuple(int(i) for i in np.argwhere(mask)[0])


def compare(got, want, rtol, atol=0.0, nan_rule="exact", dtype=None, what="result"):
    """``got`` (an ndarray) has ``want``'s shape (and ``dtype``) and values.

    nan_rule 'exact': NaN and +-inf exactly where the reference has them; 'ref-nonfinite':
    non-finite at least where the reference is; 'ref-finite': finite at least where the
    reference is; 'finite-only': only the finite values are compared. Finite values
    match within ``atol + rtol * |want|`` (``atol`` may be an array)."""
    if isinstance(got, cc.Tensor):
        got = got.numpy()
    if not isinstance(got, (np.ndarray, np.generic)):
        raise Mismatch("wrong result type", f"{what}: returned {type(got).__name__}, expected an ndarray")
    got = np.asarray(got)
    want = np.asarray(want)
    if dtype is not None and got.dtype != np.dtype(dtype):
        raise Mismatch("wrong dtype", f"{what}: dtype {got.dtype}, expected {np.dtype(dtype)}")
    if got.shape != want.shape:
        raise Mismatch("wrong shape", f"{what}: shape {got.shape}, expected {want.shape}")
    if got.size > BIG or got.size == 0:
        return
    if got.dtype.kind == "c" and want.dtype.kind == "c":
        compare(got.real.copy(), want.real.copy(), rtol, atol, nan_rule, what=what + ".real")
        compare(got.imag.copy(), want.imag.copy(), rtol, atol, nan_rule, what=what + ".imag")
        return
    if got.dtype.kind in "mM" and want.dtype.kind in "mM":
        got, want = got.view(np.int64), want.astype(got.dtype).view(np.int64)
    if got.dtype.kind not in "biuf" or want.dtype.kind not in "biuf":
        if got.dtype.kind != want.dtype.kind:
            raise Mismatch("wrong dtype", f"{what}: dtype {got.dtype}, expected one like {want.dtype}")
        if not np.array_equal(got, want):
            raise Mismatch("wrong values", f"{what}: got {got!r}, expected {want!r}")
        return
    g, w = got.astype(np.float64), want.astype(np.float64)
    gf, wf = np.isfinite(g), np.isfinite(w)

    def show(mask, text, tag):
        i = _first(mask)
        extra = f"\n    got      {g.tolist()}\n    expected {w.tolist()}" if g.size <= 12 else ""
        raise Mismatch(tag, f"{what}: {int(mask.sum())} of {g.size} values {text}; first at {i}: got "
                            f"{_fmt_float(g[i])}, expected {_fmt_float(w[i])}{extra}")

    if nan_rule == "exact":
        bad = (np.isnan(g) != np.isnan(w)) | ((np.isinf(g) | np.isinf(w)) & ~np.isnan(g) & ~np.isnan(w) & (g != w))
        if bad.any():
            show(bad, "differ in NaN/inf", "wrong NaN/inf positions")
    elif nan_rule == "ref-nonfinite":
        bad = ~wf & gf
        if bad.any():
            show(bad, "are finite where the reference is not", "finite where the reference is NaN/inf")
    elif nan_rule == "ref-finite":
        bad = wf & ~gf
        if bad.any():
            show(bad, "are NaN/inf where the reference is finite", "NaN/inf where the reference is finite")
    both = gf & wf
    tol = np.broadcast_to(np.asarray(atol, dtype=np.float64), w.shape) + rtol * np.abs(np.where(wf, w, 0.0))
    excess = np.where(both, np.abs(np.where(both, g - w, 0.0)) - tol, -1.0)
    if (excess > 0).any():
        i = np.unravel_index(int(np.argmax(excess)), excess.shape)
        extra = f"\n    got      {g.tolist()}\n    expected {w.tolist()}" if g.size <= 12 else ""
        raise Mismatch("wrong values", f"{what}: {int((excess > 0).sum())} of {g.size} values differ; worst at "
                                       f"{tuple(int(t) for t in i)}: got {g[i]!r}, expected {w[i]!r} (tolerance "
                                       f"{float(tol[i]):.3g}){extra}")


class NoReference(Exception):
    """The reference cannot judge this call (it fails itself): only the exception type
    is checked."""


REF_REJECTS = (ValueError, TypeError, LookupError, MemoryError, OverflowError, AssertionError)


def reference(ref):
    """The reference's value; a reference that rejects the arguments means the call
    should have raised too. A reference that fails otherwise (scipy's own
    ZeroDivisionError for sigma=1e-300, say) cannot judge: NoReference."""
    try:
        return ref()
    except (Mismatch, NoReference):
        raise
    except REF_REJECTS as e:
        raise Mismatch("accepts what the reference rejects",
                       f"returned, but the reference raises {type(e).__name__}: {str(e)[:300]}") from None
    except Exception as e:  # noqa: BLE001
        raise NoReference(f"{type(e).__name__}: {e}") from None


def _dtype_name(x):
    try:
        return str(np.asarray(x).dtype)
    except Exception:  # noqa: BLE001
        return f"ragged {type(x).__name__}"


def refuse_nonnumeric(*xs, group=None, complex_ok=False):
    if not (numeric_c if complex_ok else numeric)(*xs):
        kinds = sorted({_dtype_name(x) for x in xs if not numeric(x)})
        raise Mismatch("accepts a non-numeric dtype", f"returned for input dtype {', '.join(kinds)}; must raise "
                                                      "TypeError", group=group)


# ============================================================================ filters
# convcore.signal, convcore.ndimage, convcore.pooling against scipy (values computed in
# float64 from the same inputs). The reference decides what is valid: a call that returns
# where scipy raises is reported; raising where scipy returns is allowed.
SIG_MODES, SIG_MODES_BAD = ["full", "valid", "same"], ["bogus", "", "FULL", None, 1, "reflect"]
METHODS, METHODS_BAD = ["auto", "direct", "fft"], ["fast", "FFT", None, 0]
BOUNDARIES, BOUNDARIES_BAD = ["fill", "wrap", "symm"], ["reflect", "bogus", None, 1, "FILL", "symmetric"]
FILLVALUES = [0, 0, 1, -2.5, nan, inf, 1e15, True, np.float32(2.0), np.int64(3)]
FILLVALUES_BAD = [None, "x", 1 + 2j, [1.0, 2.0], np.array([3.0]), b"1"]
ND_MODES = ["reflect", "constant", "nearest", "mirror", "wrap", "grid-mirror", "grid-constant", "grid-wrap"]
ND_MODES_BAD = ["bogus", "", "REFLECT", "fill", None, 1, b"reflect"]
CVALS, CVALS_BAD = [0.0, 0.0, 1.5, -2.0, nan, inf, -inf, True, np.float32(0.5), 7], [None, "a", 1 + 2j, [1.0, 2.0]]
AXES1, AXES1_BAD = [-1, -1, 0, 1, -2, np.int64(1)], [2, 3, -4, True, 1.5, None, "x", 2 ** 62, -2 ** 63]
ORIGIN_BAD = [2, -2, 3, True, 1.5, None, "x", 2 ** 62, -2 ** 63]


def up(a):
    """``a`` in the type a float64 reference computes it in: float64, complex128 for a
    complex array (non-numeric values pass through, for the reference to reject)."""
    try:
        x = np.asarray(a)
    except Exception:  # noqa: BLE001
        return a
    if x.dtype.kind == "c":
        return x.astype(np.complex128)
    return f64(a) if x.dtype.kind in "biuf" else a


def compute_float(*xs):
    """The float type convcore computes in: float32 when every input is float16/float32
    or complex64, float64 otherwise."""
    arrays = [np.asarray(x) for x in xs]
    return np.dtype(np.float32) if all((a.dtype.kind == "f" and a.dtype.itemsize <= 4) or a.dtype == np.complex64
                                       for a in arrays) else np.dtype(np.float64)


def scipy_signal_reference(fn, a, b, *args, **kw):
    """scipy.signal's result for the raw inputs, in scipy's dtype (numpy's promotion):
    integers exactly (scipy's direct integer arithmetic), bool through int64, floats and
    complex through float64 / complex128 (then in the result type)."""
    rt = np.result_type(np.asarray(a), np.asarray(b))
    if rt.kind in "iu":
        try:
            return fn(np.asarray(a), np.asarray(b), *args, **kw)
        except ValueError as e:
            if "not available" not in str(e) and "nsupported" not in str(e):
                raise
            return fn(np.asarray(a).astype(np.int64), np.asarray(b).astype(np.int64), *args, **kw).astype(rt)
    if rt.kind == "b":
        return fn(np.asarray(a).astype(np.int64), np.asarray(b).astype(np.int64), *args, **kw) != 0
    return fn(up(a), up(b), *args, **kw)


def signal_dtype(a, b):
    return np.result_type(np.asarray(a), np.asarray(b)) if numeric_c(a, b) else None


def _sig_inputs(rng, two_d=False, gpu=False):
    nd_a = 2 if two_d and rng.random() < 0.9 else int(rng.integers(0, 4))
    a = arr(rng, ndim=nd_a, huge=0.03, gpu=gpu, cap=2048)
    nd_b = np.ndim(a) if rng.random() < 0.85 else int(rng.integers(0, 4))
    b = arr(rng, ndim=nd_b, hi=4, cap=64, huge=0.01, gpu=gpu)
    return a, b


def _correlation_check(ref, arrays, out_dtype, nan_rule="exact", extra_scale=0.0, factor=1.0):
    """Check for a correlation-like result: values within rtol * max|input| * sum|weights|
    (the size of one output's terms, see conftest.scale_of)."""
    def check(got):
        refuse_nonnumeric(*arrays, complex_ok=True)
        if any(is_huge(np.asarray(x)) if not isinstance(x, np.ndarray) else is_huge(x) for x in arrays):
            return
        want = reference(ref)
        dt = out_dtype() if callable(out_dtype) else out_dtype
        r = rtol_of(dt if dt is not None else np.asarray(got).dtype) * factor
        if dt is not None and np.dtype(dt).kind in "biu" and factor != 1.0:
            r = 1e-13 * factor  # (an integer result through the FFT: rounded, exact only to FFT accuracy)
        scale = (max(amax(arrays[0]), extra_scale) * (asum(arrays[1]) if len(arrays) > 1 else 1.0))
        rule = nan_rule if finite(*arrays) is False else "exact"
        kind_dt = np.dtype(dt) if dt is not None else np.asarray(got).dtype
        tiny = float(np.finfo(kind_dt).tiny) if kind_dt.kind == "f" else 1e-300  # denormal results round
        compare(got, want, r, r * scale + tiny, rule, dtype=dt)
    return check


def make_signal_correlate(name, gpu=False):
    def make(rng):
        a, b = _sig_inputs(rng, gpu=gpu)
        mode = choose(rng, SIG_MODES, SIG_MODES_BAD)
        method = choose(rng, METHODS, METHODS_BAD)
        ref_method = "direct" if method in METHODS else method

        def ref():
            return scipy_signal_reference(getattr(ss, name), a, b, mode=mode, method=ref_method)
        rule = "exact" if method == "direct" else "ref-nonfinite"
        factor = 1.0 if method == "direct" else 4.0  # FFT rounding
        return Call(f"convcore.signal.{name}", getattr(csig, name), (a, b, mode, method),
                    check=_correlation_check(ref, (a, b), lambda: signal_dtype(a, b), rule, factor=factor))
    return make


def make_signal_correlate2d(name, gpu=False):
    def make(rng):
        a, b = _sig_inputs(rng, two_d=True, gpu=gpu)
        mode = choose(rng, SIG_MODES, SIG_MODES_BAD)
        boundary = choose(rng, BOUNDARIES, BOUNDARIES_BAD)
        fill = choose(rng, FILLVALUES, FILLVALUES_BAD)

        def ref():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
                return scipy_signal_reference(getattr(ss, name), a, b, mode=mode, boundary=boundary, fillvalue=fill)
        extra = abs(complex(fill)) if isinstance(fill, (int, float, complex, np.number)) and np.isfinite(fill) else 0.0
        return Call(f"convcore.signal.{name}", getattr(csig, name), (a, b, mode, boundary, fill),
                    check=_correlation_check(ref, (a, b), lambda: signal_dtype(a, b), extra_scale=extra))
    return make


def make_choose_conv_method(rng):
    a, b = _sig_inputs(rng)
    mode = choose(rng, SIG_MODES, SIG_MODES_BAD)

    def check(got):
        refuse_nonnumeric(a, b, complex_ok=True)
        if not (is_huge(np.asarray(a)) or is_huge(np.asarray(b))):
            reference(lambda: ss.choose_conv_method(up(a), up(b), mode=mode))
        if got not in ("direct", "fft"):
            raise Mismatch("wrong values", f"returned {got!r}, expected 'direct' or 'fft'")
    return Call("convcore.signal.choose_conv_method", csig.choose_conv_method, (a, b, mode), check=check)


def _output_arg(rng, shape):
    """scipy.ndimage's ``output``: None, a dtype, an array to fill (or a bad one)."""
    if rng.random() < 0.75 or math.prod(shape) > BIG:
        return None
    k = int(rng.integers(9))
    if k < 6:
        return [np.float64, np.float32, "float32", np.int32, np.complex128, "bogus"][k]
    return np.zeros(shape if k < 8 else (1,) * (len(shape) + 1), np.float64 if k != 7 else np.float32)


def _scipy_quirks(a, w, mode):
    """Where scipy.ndimage is no reference: NaN weights (scipy drops them, and its
    correlate and correlate1d drop them differently), tiny weights (its correlate1d tests
    symmetry against an absolute DBL_EPSILON), and mode 'reflect' with a kernel several
    times longer than the input (scipy then departs from d c b a | a b c d, i.e.
    np.pad(mode='symmetric'), which convcore follows)."""
    if numeric(w) and np.isnan(f64(w)).any():
        return "finite-only"
    if numeric(w) and np.ndim(w) <= 1 and np.isinf(f64(w)).any():
        return "finite-only"  # scipy's correlate1d sums mirrored taps first for (anti)symmetric kernels
    if numeric(w) and np.ndim(w) <= 1:
        v = np.abs(f64(w))
        v = v[np.isfinite(v) & (v > 0)]
        if v.size and v.min() < 1e-12:  # scipy's correlate1d tests kernel symmetry with an absolute DBL_EPSILON
            raise NoReference("weights below scipy's absolute epsilon")
    if mode in ("reflect", "grid-mirror") and numeric(w):
        ws, as_ = np.shape(w), np.shape(a)
        if len(ws) == 1 and len(as_) >= 1:
            ws = (ws[0],)
            as_ = (min(as_),)
        if len(ws) == len(as_) and any(k // 2 >= 2 * max(n, 1) for k, n in zip(ws, as_)):
            raise NoReference("scipy's 'reflect' for a kernel far longer than the input")
    return None


def _nd_check(ref, a, w_scale, output, cval, nan_rule="exact", factor=1.0, weights=None, mode=None,
              package_rule=False):
    """Check for an ndimage filter: the result has the input's float type (or the
    ``output``'s), the values scipy's (computed in float64) within rtol * max(|input|,
    |cval|) * w_scale, where w_scale bounds the sum of |weights| over the passes."""
    def check(got):
        refuse_nonnumeric(a, complex_ok=not package_rule)
        if is_huge(a if isinstance(a, np.ndarray) else np.asarray(a)):
            return
        want = reference(ref)
        ain = np.asarray(a)
        cplx = ain.dtype.kind == "c" or (weights is not None and numeric_c(weights)
                                          and np.asarray(weights).dtype.kind == "c")
        if isinstance(output, np.ndarray):
            if got is not output:
                raise Mismatch("output= array not returned", "the output= array is not the result")
            dt = output.dtype
        elif output is not None:
            dt = np.dtype(output)
            if cplx and dt.kind != "c":
                dt = np.promote_types(dt, np.complex64)  # (scipy's promotion, with its warning)
        elif package_rule:
            dt = float_of(a)
        else:  # scipy.ndimage: the input's dtype, in the machine's byte order (complex for complex weights)
            dt = ain.dtype.newbyteorder("=")
            dt = np.promote_types(dt, np.complex64) if cplx else dt
        if dt.kind not in "fc":  # integer and bool results: dtype and shape (their values: test_ndimage, scipy_suite)
            compare(got, np.zeros(np.shape(want), dtype=dt), inf, dtype=dt)
            return
        quirk = _scipy_quirks(a, weights, mode) if weights is not None else None
        c = abs(complex(cval)) if isinstance(cval, (int, float, complex, np.number)) and np.isfinite(cval) else 0.0
        ws = w_scale() if callable(w_scale) else w_scale
        real = np.dtype(f"f{dt.itemsize // 2}") if dt.kind == "c" else dt
        cf = compute_float(a, *([weights] if weights is not None and numeric_c(weights) else []))
        if real == np.float32:
            cf = np.dtype(np.float32)
        r = max(rtol_of(cf), rtol_of(real if real.itemsize >= 4 else np.float32)) * factor  # computed in cf
        rule = quirk or (nan_rule if not finite(a) else "exact")
        tiny = 10 * np.finfo(cf).tiny  # (denormal products keep few bits)
        compare(got, want, r, r * max(amax(a), c) * ws + tiny, rule, dtype=dt)
    return check


def make_nd_correlate(name, gpu=False):
    def make(rng):
        a = arr(rng, ndim=int(rng.integers(0, 5)), huge=0.03, gpu=gpu)
        w_nd = np.ndim(a) if rng.random() < 0.85 else int(rng.integers(0, 4))
        w = arr(rng, ndim=w_nd, hi=4, cap=81, gpu=gpu, special=0.1)
        mode = choose(rng, ND_MODES, ND_MODES_BAD)
        cval = choose(rng, CVALS, CVALS_BAD)
        origin = choose(rng, [0, 0, 1, -1, [0] * np.ndim(a)], ORIGIN_BAD + [[0] * (np.ndim(a) + 1)], p_bad=0.15)
        output = _output_arg(rng, np.shape(a))
        ref_out = output.copy() if isinstance(output, np.ndarray) else output

        def ref():
            return getattr(nd, name)(up(a), _as_input_type(w, a), output=ref_out, mode=mode, cval=cval, origin=origin)
        return Call(f"convcore.ndimage.{name}", getattr(cn, name), (a, w),
                    dict(output=output, mode=mode, cval=cval, origin=origin),
                    check=_nd_check(ref, a, lambda: asum(w), output, cval, weights=w, mode=mode))
    return make


def _as_input_type(w, a):
    """ndimage's dtype rule: the weights are cast to the input's float type (float32 for
    float32 / complex64 input), then the reference computes in float64 (complex128 for
    complex weights)."""
    if not numeric_c(w):
        return w
    w = np.asarray(w)
    cf = compute_float(a) if numeric_c(a) else np.dtype(np.float64)
    if w.dtype.kind == "c":
        return w.astype(np.complex64 if cf == np.float32 else np.complex128).astype(np.complex128)
    return f64(w.astype(cf))


def _weights1d(rng, gpu=False):
    r = rng.random()
    if r < 0.85:
        return arr(rng, shape=(int(rng.integers(1, 6)),), gpu=gpu, special=0.15)
    return choice(rng, [np.zeros(0), [1.0, 2.0], [[1.0, 1.0]], np.array([[1.0], [2.0]]), [1, 2, 3], "abc", None])


def make_nd_correlate1d(name, gpu=False):
    def make(rng):
        a = arr(rng, ndim=int(rng.integers(0, 5)), huge=0.03, gpu=gpu)
        w = _weights1d(rng, gpu)
        axis = choose(rng, AXES1, AXES1_BAD)
        mode = choose(rng, ND_MODES, ND_MODES_BAD)
        cval = choose(rng, CVALS, CVALS_BAD)
        origin = choose(rng, [0, 0, 1, -1], ORIGIN_BAD)
        output = _output_arg(rng, np.shape(a))
        ref_out = output.copy() if isinstance(output, np.ndarray) else output

        def ref():
            return getattr(nd, name)(up(a), _as_input_type(w, a), axis=axis, output=ref_out, mode=mode, cval=cval,
                                     origin=origin)
        return Call(f"convcore.ndimage.{name}", getattr(cn, name), (a, w),
                    dict(axis=axis, output=output, mode=mode, cval=cval, origin=origin),
                    check=_nd_check(ref, a, lambda: asum(w), output, cval, weights=w, mode=mode))
    return make


SIZES, SIZES_BAD = [1, 2, 3, 3, 4, 5, 7], [0, -1, True, 2.5, None, "3", 2 ** 62, nan, inf]


def _box_reference(a, sizes_axes, mode, cval, origins):
    """The moving average as direct correlations (scipy's uniform_filter keeps a running
    sum, so one inf turns the rest of its line into inf - inf = NaN)."""
    out = up(a)
    for (size, ax), org in zip(sizes_axes, origins):
        if size > 1:
            out = nd.correlate1d(out, np.full(size, 1.0 / size), axis=ax, mode=mode, cval=cval, origin=org)
    return out


def make_uniform_filter1d(gpu=False):
    def make(rng):
        if rng.random() < 0.03:  # a long signal and a long window
            n = int(rng.integers(2000, 6000))
            a = arr(rng, shape=(n,), dtype=choice(rng, ["float32", "float64"]), special=0.0, layout=False)
            size = int(rng.integers(n // 3, n))
        else:
            a = arr(rng, ndim=int(rng.integers(0, 4)), huge=0.03, gpu=gpu)
            size = choose(rng, SIZES, SIZES_BAD)
        axis = choose(rng, AXES1, AXES1_BAD)
        mode = choose(rng, ND_MODES, ND_MODES_BAD)
        cval = choose(rng, CVALS, CVALS_BAD)
        origin = choose(rng, [0, 0, 1, -1], ORIGIN_BAD)

        def ref():
            r = nd.uniform_filter1d(up(a), size, axis=axis, mode=mode, cval=cval, origin=origin)
            if not finite(a) or not np.isfinite(cval):
                r = _box_reference(a, [(size, axis)], mode, cval, [origin])
            return r
        return Call("convcore.ndimage.uniform_filter1d", cn.uniform_filter1d, (a, size),
                    dict(axis=axis, mode=mode, cval=cval, origin=origin), check=_nd_check(ref, a, 1.0, None, cval))
    return make


def make_uniform_filter(gpu=False):
    def make(rng):
        a = arr(rng, ndim=int(rng.integers(0, 5)), huge=0.03, gpu=gpu)
        nd_ = np.ndim(a)
        size = choose(rng, SIZES + [[3] * nd_, [1, 2, 3, 4][:nd_]], SIZES_BAD + [[3] * (nd_ + 1), [0] * max(nd_, 1)])
        axes = choose(rng, [None, None, None, [0], [-1], (0, -1)], [[0, 0], [5], "x", 1.5])
        mode = choose(rng, ND_MODES, ND_MODES_BAD)
        cval = choose(rng, CVALS, CVALS_BAD)
        origin = choose(rng, [0, 0, 1, -1], ORIGIN_BAD)

        def ref():
            r = nd.uniform_filter(up(a), size, mode=mode, cval=cval, origin=origin, axes=axes)
            if not finite(a) or not np.isfinite(cval):
                ax = list(range(nd_)) if axes is None else [int(x) % nd_ for x in np.atleast_1d(axes)]
                sz = [int(size)] * len(ax) if np.isscalar(size) else [int(s) for s in size]
                org = [origin] * len(ax) if np.isscalar(origin) else list(origin)
                r = _box_reference(a, list(zip(sz, ax)), mode, cval, org)
            return r
        return Call("convcore.ndimage.uniform_filter", cn.uniform_filter, (a, size),
                    dict(mode=mode, cval=cval, origin=origin, axes=axes),
                    check=_nd_check(ref, a, max(1, nd_), None, cval))
    return make


SIGMAS, SIGMAS_BAD = [0.5, 1.0, 1.0, 2.0, 0.3, 3.7], [0.0, -1.0, nan, inf, None, "1", 1e-300, 1e10, True]
ORDERS, ORDERS_BAD = [0, 0, 0, 1, 2, 3], [-1, True, 1.5, 100, 12, None, "1"]
TRUNCS, TRUNCS_BAD = [4.0, 4.0, 2.0, 1.0, 0.5], [0.0, -1.0, nan, inf, 1e10, None]
RADII, RADII_BAD = [None, None, None, 0, 1, 3], [-1, 2 ** 62, 1.5, True, "2"]


def _gauss_scale(sigmas, orders, truncs, radii):
    """sum |kernel| of each 1-D Gaussian pass, multiplied (the bound of one output)."""
    from scipy.ndimage import _filters
    s = 1.0
    for sg, o, t, r in zip(sigmas, orders, truncs, radii):
        if sg > 1e5:
            raise NoReference("kernel weights below scipy's absolute epsilon (its symmetry test misfires)")
        if sg > 1e-15:
            rad = int(t * sg + 0.5) if r is None else int(r)
            s *= float(np.abs(_filters._gaussian_kernel1d(sg, o, rad)).sum())
    return s


def make_gaussian_filter1d(gpu=False):
    def make(rng):
        a = arr(rng, ndim=int(rng.integers(0, 4)), huge=0.03, gpu=gpu)
        sigma = choose(rng, SIGMAS, SIGMAS_BAD)
        axis = choose(rng, AXES1, AXES1_BAD)
        order = choose(rng, ORDERS, ORDERS_BAD)
        mode = choose(rng, ND_MODES, ND_MODES_BAD)
        cval = choose(rng, CVALS, CVALS_BAD)
        truncate = choose(rng, TRUNCS, TRUNCS_BAD)
        radius = choose(rng, RADII, RADII_BAD)

        def ref():
            return nd.gaussian_filter1d(up(a), sigma, axis=axis, order=order, mode=mode, cval=cval,
                                        truncate=truncate, radius=radius)

        def scale():
            return _gauss_scale([float(sigma)], [int(order)], [float(truncate)], [radius])
        # High derivative orders: the reference itself is inexact; only finiteness is compared.
        rule = "exact" if isinstance(order, int) and order <= 3 else "ref-finite"
        check = _nd_check(ref, a, scale, None, cval, nan_rule=rule)
        if rule != "exact":
            check = _finite_pattern_check(ref, a)
        return Call("convcore.ndimage.gaussian_filter1d", cn.gaussian_filter1d, (a, sigma),
                    dict(axis=axis, order=order, mode=mode, cval=cval, truncate=truncate, radius=radius), check=check)
    return make


def _finite_pattern_check(ref, a):
    def check(got):
        refuse_nonnumeric(a, complex_ok=True)
        if is_huge(np.asarray(a)) or not finite(a):
            return
        want = np.asarray(reference(ref))
        want = want.astype(np.complex128 if want.dtype.kind == "c" else np.float64)
        big = np.finfo(compute_float(a)).max / 1e3  # (beyond, the computation's float type overflows)
        if np.asarray(got).dtype.kind in "biu":
            compare(got, got, 0.0, dtype=np.asarray(a).dtype)  # (an integer result: its dtype only)
            return
        compare(got, np.where(np.abs(want) > big, nan, want), rtol=inf, nan_rule="ref-finite")
    return check


def make_gaussian_filter(gpu=False):
    def make(rng):
        a = arr(rng, ndim=int(rng.integers(0, 4)), huge=0.03, gpu=gpu)
        nd_ = np.ndim(a)
        sigma = choose(rng, SIGMAS + [[1.0] * nd_, [0.0, 1.0, 2.0][:nd_]], SIGMAS_BAD + [[1.0] * (nd_ + 1)])
        order = choose(rng, [0, 0, 0, 1, 2, [0, 1, 0][:nd_]], ORDERS_BAD)
        mode = choose(rng, ND_MODES + [["reflect", "constant", "wrap"][:nd_]], ND_MODES_BAD)
        cval = choose(rng, CVALS, CVALS_BAD)
        truncate = choose(rng, TRUNCS, TRUNCS_BAD)
        radius = choose(rng, RADII, RADII_BAD)
        axes = choose(rng, [None, None, None, [0], [-1]], [[0, 0], [5], "x"])

        def ref():
            return nd.gaussian_filter(up(a), sigma, order=order, mode=mode, cval=cval, truncate=truncate,
                                      radius=radius, axes=axes)

        def scale():
            n = nd_ if axes is None else len(np.atleast_1d(axes))
            per = lambda v, cast_: [cast_(v)] * n if np.isscalar(v) or v is None else [cast_(t) for t in v]  # noqa
            return _gauss_scale(per(sigma, float), per(order, int), per(truncate, float),
                                [radius] * n) * n
        big_order = not all(int(o) <= 3 for o in np.atleast_1d(order)) if numeric(order) else True
        check = _finite_pattern_check(ref, a) if big_order else _nd_check(ref, a, scale, None, cval)
        return Call("convcore.ndimage.gaussian_filter", cn.gaussian_filter, (a, sigma),
                    dict(order=order, mode=mode, cval=cval, truncate=truncate, radius=radius, axes=axes), check=check)
    return make


def make_derivative(name, gpu=False):
    smooth = 4.0 if name == "sobel" else 3.0

    def make(rng):
        a = arr(rng, ndim=int(rng.integers(0, 4)), huge=0.03, gpu=gpu)
        axis = choose(rng, AXES1, AXES1_BAD)
        mode = choose(rng, ND_MODES, ND_MODES_BAD)
        cval = choose(rng, CVALS, CVALS_BAD)

        def ref():
            return getattr(nd, name)(up(a), axis=axis, mode=mode, cval=cval)
        scale = 2.0 * smooth ** max(np.ndim(a) - 1, 0)
        return Call(f"convcore.ndimage.{name}", getattr(cn, name), (a,), dict(axis=axis, mode=mode, cval=cval),
                    check=_nd_check(ref, a, scale, None, cval))
    return make


def make_edge_filter(gpu=False):
    def make(rng):
        a = arr(rng, ndim=2 if rng.random() < 0.85 else int(rng.integers(0, 4)), huge=0.03, gpu=gpu)
        angle = choose(rng, [0, 30.0, 45, 90, 200.5, -45, np.float32(10)], [nan, inf, "a", None, 1 + 1j, 1e300])
        mode = choose(rng, ND_MODES, ND_MODES_BAD)
        cval = choose(rng, CVALS, CVALS_BAD)

        def ref():
            assert np.ndim(a) == 2, "edge_filter needs a 2-D image"
            t = math.radians(float(angle))
            kx, ky = cn.sobel_kernels()
            return nd.correlate(f64(a), math.cos(t) * kx - math.sin(t) * ky, mode=mode, cval=cval)
        return Call("convcore.ndimage.edge_filter", cn.edge_filter, (a, angle), dict(mode=mode, cval=cval),
                    check=_nd_check(ref, a, 8.0, None, cval, package_rule=True))
    return make


def make_match_template(gpu=False):
    import skimage.feature

    def make(rng):
        a = arr(rng, ndim=int(rng.integers(1, 4)), huge=0.02, gpu=gpu, special=0.1)
        t_nd = np.ndim(a) if rng.random() < 0.9 else int(rng.integers(0, 4))
        t = arr(rng, ndim=t_nd, hi=3, cap=27, gpu=gpu, special=0.1)

        def check(got):
            refuse_nonnumeric(a, t)
            if is_huge(np.asarray(a)) or not finite(a, t) or max(amax(a), amax(t)) > 1e6:
                return  # (normalized correlation of huge values is ill-conditioned in any implementation)
            A, T = f64(a), f64(t)
            if pad and A.ndim == 1:
                return  # (scikit-image takes 2-D and 3-D images: a 1-D one has no padded reference)
            if T.size and np.ptp(T) == 0:
                return  # (a constant template: convcore scores 0, scikit-image divides rounding noise)
            kw = dict(pad_input=pad, mode=mode, constant_values=cv)
            if A.ndim == 1:
                want = reference(lambda: skimage.feature.match_template(A[None], T[None], **kw)[0])
            else:
                want = reference(lambda: skimage.feature.match_template(A, T, **kw))
            dt = float_of(a)
            # Windows of (nearly) constant intensity are ill-conditioned in both.
            compare(got, want, 0.0, 1e-4 if dt == np.float32 else 1e-6, dtype=dt)
        pad = choose(rng, [False, False, True], [1, None, "yes"])
        mode = choose(rng, ["constant", "constant", "reflect", "edge", "wrap", "symmetric", "mean"], ["bogus", None])
        cv = choose(rng, [0, 0, 1.5, -2.0])
        return Call("convcore.ndimage.match_template", cn.match_template, (a, t),
                    dict(pad_input=pad, mode=mode, constant_values=cv), check=check)
    return make


# ---------------------------------------------------------------- rank filters (issue 16)
RANKS, RANKS_BAD = [0, 1, -1, 2, -2], [100, -100, 1.5, None, "1", True]
PERCENTILES, PERCENTILES_BAD = [0, 20, 50, 50.0, -30, 100, 99.9, np.float32(75)], [101, -101, nan, inf, "50", None]


def _rank_check(ref, a, output, cval, window=None):
    """Check for an order statistic: exactly scipy's values in scipy's dtype (an order
    statistic rounds nothing), for finite inputs and cval (with NaN the order is
    unspecified in both). ``window``: the footprint's length for a 1-D rank filter,
    whose scipy path reads past arrays shorter than it (values that are not in the
    input)."""
    def check(got):
        refuse_nonnumeric(a)
        if is_huge(a if isinstance(a, np.ndarray) else np.asarray(a)):
            return
        want = reference(ref)
        if isinstance(output, np.ndarray) and got is not output:
            raise Mismatch("output= array not returned", "the output= array is not the result")
        if window is not None and np.ndim(a) == 1 and np.size(a) < window():
            raise NoReference("scipy's 1-D rank filter on an array shorter than its window")
        if window is not None and np.ndim(a) == 1 and output is not None and want.dtype != np.asarray(a).dtype:
            raise NoReference("scipy's 1-D rank filter writes its own dtype into an output of another")
        if np.asarray(a).dtype == np.uint64 and isinstance(cval, (int, float, np.number)) and not 0 <= cval < 2 ** 63:
            raise NoReference("scipy's uint64 rank filters with a cval outside [0, 2**63): C's undefined cast")
        nan_cval = isinstance(cval, (float, np.floating)) and not np.isfinite(cval)
        if not finite(a) or nan_cval:
            compare(got, np.zeros(np.shape(want), dtype=want.dtype), inf, nan_rule="finite-only", dtype=want.dtype)
            return
        compare(got, want, 0.0, 0.0, dtype=want.dtype)
    return check


def _window_args(rng, nd_):
    """``size`` or ``footprint`` (or both, or neither), scipy's way."""
    r = rng.random()
    size = choose(rng, SIZES + [[3] * nd_, [1, 2, 3, 4][:nd_]], SIZES_BAD + [[3] * (nd_ + 1)])
    fp = (rng.random(tuple(int(rng.integers(1, 4)) for _ in range(nd_))) < 0.7) if nd_ else np.ones(())
    if r < 0.45:
        return size, None
    if r < 0.9:
        return None, fp
    return choice(rng, [(size, fp), (None, None), (None, np.zeros((2,) * max(nd_, 1), bool)),
                        (None, np.ones((2,) * (nd_ + 1), bool))])


def _scipy_layout(a):
    """``a`` as scipy reads it correctly: a broadcast (zero-stride) view copied (scipy's
    N-D min/max filters mis-read them, taking cval for values)."""
    if isinstance(a, np.ndarray) and a.size > 1 and 0 in a.strides and a.size <= BIG:
        return np.ascontiguousarray(a)
    return a


def make_rank(name):
    def make(rng):
        a = arr(rng, ndim=int(rng.integers(0, 4)), huge=0.02, hi=6)
        nd_ = np.ndim(a)
        size, fp = _window_args(rng, nd_)
        mode = choose(rng, ND_MODES + ([["reflect", "wrap", "constant"][:nd_]] if nd_ else []), ND_MODES_BAD)
        cval = choose(rng, CVALS + [300, -3, 1.7], CVALS_BAD)
        origin = choose(rng, [0, 0, 1, -1], ORIGIN_BAD)
        axes = choose(rng, [None, None, None, [0], [-1], (0, -1)], [[0, 0], [5], "x", 1.5])
        output = _output_arg(rng, np.shape(a))
        ref_out = output.copy() if isinstance(output, np.ndarray) else output
        extra, kw_extra = (), {}
        if name == "rank_filter":
            extra = (choose(rng, RANKS, RANKS_BAD),)
        elif name == "percentile_filter":
            extra = (choose(rng, PERCENTILES, PERCENTILES_BAD),)

        def ref():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return getattr(nd, name)(_scipy_layout(a), *extra, size=size, footprint=fp, output=ref_out, mode=mode,
                                         cval=cval, origin=origin, axes=axes)

        def window():
            return np.size(fp) if fp is not None else int(np.prod(np.atleast_1d(size)))
        return Call(f"convcore.ndimage.{name}", getattr(cn, name), (a,) + extra,
                    dict(size=size, footprint=fp, output=output, mode=mode, cval=cval, origin=origin, axes=axes,
                         **kw_extra), check=_rank_check(ref, a, output, cval,
                                                        window if name not in ("minimum_filter", "maximum_filter")
                                                        else None))
    return make


def make_minmax1d(name):
    def make(rng):
        a = arr(rng, ndim=int(rng.integers(0, 4)), huge=0.02)
        size = choose(rng, SIZES, SIZES_BAD)
        axis = choose(rng, AXES1, AXES1_BAD)
        mode = choose(rng, ND_MODES, ND_MODES_BAD)
        cval = choose(rng, CVALS + [300, -3], CVALS_BAD)
        origin = choose(rng, [0, 0, 1, -1], ORIGIN_BAD)
        output = _output_arg(rng, np.shape(a))
        ref_out = output.copy() if isinstance(output, np.ndarray) else output

        def ref():
            return getattr(nd, name)(_scipy_layout(a), size, axis=axis, output=ref_out, mode=mode, cval=cval,
                                     origin=origin)
        return Call(f"convcore.ndimage.{name}", getattr(cn, name), (a, size),
                    dict(axis=axis, output=output, mode=mode, cval=cval, origin=origin),
                    check=_rank_check(ref, a, output, cval))
    return make


# ------------------------------------------------- Laplace and gradient magnitudes (issue 16)
def _axes_modes(rng, nd_):
    axes = choose(rng, [None, None, [0], [-1], (0, -1)], [[0, 0], [5], "x"])
    n_ax = nd_ if axes is None else len(axes) if isinstance(axes, (list, tuple)) else 1
    mode = choose(rng, ND_MODES + [["nearest", "wrap", "mirror"][:max(n_ax, 0)] or "reflect"], ND_MODES_BAD)
    return axes, mode


def make_laplace(gpu=False):
    def make(rng):
        a = arr(rng, ndim=int(rng.integers(0, 4)), huge=0.02, gpu=gpu)
        nd_ = np.ndim(a)
        axes, mode = _axes_modes(rng, nd_)
        cval = choose(rng, CVALS, CVALS_BAD)

        def ref():
            return nd.laplace(up(a), mode=mode, cval=cval, axes=axes)
        return Call("convcore.ndimage.laplace", cn.laplace, (a,), dict(mode=mode, cval=cval, axes=axes),
                    check=_nd_check(ref, a, 4 * max(nd_, 1), None, cval, nan_rule="ref-nonfinite"))
    return make


def _deriv_scale(sigma, order, nd_):
    s = [float(x) for x in np.atleast_1d(sigma)] if numeric(sigma) else [1.0]
    return max(nd_, 1) * max(float(np.abs(cn._gaussian_kernel1d(v, order, int(4 * v + 0.5))).sum())
                             for v in s if np.isfinite(v) and v > 0.05) if any(
        np.isfinite(v) and v > 0.05 for v in s) else 1.0


def make_gaussian_composed(name, order, gpu=False):
    def make(rng):
        a = arr(rng, ndim=int(rng.integers(0, 4)), huge=0.02, gpu=gpu, hi=6)
        nd_ = np.ndim(a)
        axes, mode = _axes_modes(rng, nd_)
        sigma = choose(rng, [0.7, 1.0, 2.0, 1.5], [0.0, -1.0, nan, None, "1"])
        cval = choose(rng, CVALS, CVALS_BAD)

        def ref():
            if "gradient" in name and numeric_c(a) and np.asarray(a).dtype.kind == "c":
                # (the square root of a complex sum of squares: a signed zero in the
                # imaginary part, from either implementation's summation, picks the branch)
                raise NoReference("complex gradient magnitude: branch cut of sqrt")
            return getattr(nd, name)(up(a), sigma, mode=mode, cval=cval, axes=axes)
        return Call(f"convcore.ndimage.{name}", getattr(cn, name), (a, sigma), dict(mode=mode, cval=cval, axes=axes),
                    check=_nd_check(ref, a, lambda: _deriv_scale(sigma, order, nd_), None, cval, factor=4.0,
                                    nan_rule="ref-nonfinite"))
    return make


def make_generic_composed(name, gpu=False):
    def make(rng):
        a = arr(rng, ndim=int(rng.integers(1, 4)), huge=0.02, gpu=gpu)
        nd_ = np.ndim(a)
        axes, mode = _axes_modes(rng, nd_)
        cval = choose(rng, CVALS, CVALS_BAD)
        w = [1.0, -2.0, 1.0] if name == "generic_laplace" else [-0.5, 0.0, 0.5]

        def ours(x, axis, output, m, cv):
            return cn.correlate1d(x, w, axis, output, m, cv)

        def theirs(x, axis, output, m, cv):
            return nd.correlate1d(x, w, axis, output, m, cv)

        def ref():
            if "gradient" in name and numeric_c(a) and np.asarray(a).dtype.kind == "c":
                raise NoReference("complex gradient magnitude: branch cut of sqrt")
            return getattr(nd, name)(up(a), theirs, mode=mode, cval=cval, axes=axes)
        return Call(f"convcore.ndimage.{name}", getattr(cn, name), (a, ours), dict(mode=mode, cval=cval, axes=axes),
                    check=_nd_check(ref, a, 4 * nd_, None, cval, factor=4.0, nan_rule="ref-nonfinite"))
    return make


# ------------------------------------------------------------ FFT convolution (issue 16)
def make_fftconvolve(name):
    def make(rng):
        a, b = _sig_inputs(rng)
        mode = choose(rng, SIG_MODES, SIG_MODES_BAD)
        axes = choose(rng, [None, None, None, 0, -1, [0], (0, -1)], [[], [0, 0], 5, 1.5, [[0, 1]]])

        def raw():  # (scipy's dtype: each input's own FFT precision, integers in float64)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return getattr(ss, name)(a, b, mode=mode, axes=axes)

        def ref():  # (the values: in float64, scipy's float32 transforms are less exact than ours)
            r = raw()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if not numeric_c(a, b) or (np.ndim(a) == 0 and np.ndim(b) == 0):
                    return r  # (two scalars: their product in numpy's type, as scipy)
                return getattr(ss, name)(up(a), up(b), mode=mode, axes=axes)

        def out_dt():
            w = reference(raw)
            return w.dtype if np.asarray(a).size and np.asarray(b).size else None
        return Call(f"convcore.signal.{name}", getattr(csig, name), (a, b), dict(mode=mode, axes=axes),
                    check=_correlation_check(ref, (a, b), out_dt, "finite-only", factor=8.0))
    return make


def _count_pick(A, name, rng, good, huge_ok=False):
    return A.pick(name, good, POS_INT_BAD, maybe=[2.0, np.int64(2)] + ([2 ** 62] if huge_ok else []))


KERNEL_DTYPES = [np.float64, np.float32, "float32", None]
KERNEL_DTYPES_BAD = ["bogus", "float33"]


def make_uniform_kernel(rng):
    A = Args(rng)
    k = _count_pick(A, "k", rng, [1, 2, 3, 5], huge_ok=True)
    ndim = A.pick("ndim", [1, 2, 3], POS_INT_BAD, maybe=[2.0, 64, 100, 2 ** 62])
    dtype = A.pick("dtype", KERNEL_DTYPES, KERNEL_DTYPES_BAD)

    def check(got):
        want = np.full((int(k),) * int(ndim), 1.0 / int(k) ** int(ndim), dtype=dtype)
        compare(got, want, 1e-6, dtype=want.dtype)
    return Call("convcore.ndimage.uniform_kernel", cn.uniform_kernel, (k, ndim), dict(dtype=dtype),
                invalid=A.invalid, check=check)


def make_gaussian_kernel(rng):
    A = Args(rng)
    k = _count_pick(A, "k", rng, [1, 2, 3, 5], huge_ok=True)
    big_ndim = k == 1
    ndim = A.pick("ndim", [1, 2, 3], POS_INT_BAD, maybe=[2.0] + ([64, 100] if big_ndim else []))
    sigma = A.pick("sigma", [0.5, 1.0, 2.0, 1e-3, 1e3], POS_FLOAT_BAD, maybe=[inf, True, 1e-300])
    dtype = A.pick("dtype", KERNEL_DTYPES, KERNEL_DTYPES_BAD)

    def check(got):
        x = np.arange(int(k)) - (int(k) - 1) / 2.0
        # Relative to the samples nearest the centre: no 0 / 0 (or inf - inf) for a tiny sigma.
        d2 = x ** 2 - (x ** 2).min()
        with np.errstate(all="ignore"):
            g1 = np.where(d2 == 0, 1.0, np.exp(-0.5 * (d2 / float(sigma)) / float(sigma)))
        g1 /= g1.sum()
        g = g1
        for _ in range(int(ndim) - 1):
            g = np.multiply.outer(g, g1)
        want = g.astype(dtype)
        compare(got, want, 1e-6, 1e-12, dtype=want.dtype)
    return Call("convcore.ndimage.gaussian_kernel", cn.gaussian_kernel, (k, sigma, ndim), dict(dtype=dtype),
                invalid=A.invalid, check=check)


def make_sobel_kernels(rng):
    A = Args(rng)
    dtype = A.pick("dtype", [np.float64, np.float32, "float32", np.int16], KERNEL_DTYPES_BAD)

    def check(got):
        kx = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=dtype)
        compare(got[0], kx, 0.0, dtype=kx.dtype)
        compare(got[1], kx.T, 0.0, dtype=kx.dtype)
    return Call("convcore.ndimage.sobel_kernels", cn.sobel_kernels, (dtype,), invalid=A.invalid, check=check)


POOL_SIZES = [1, 2, 2, 3, (2, 2), (1, 2), (2,), (3,), (2, 1, 2), (1, 1, 1)]
POOL_SIZES_BAD = [0, -1, True, 1.5, (0, 2), (2, -1), ("a", 2), None, (1, 1, 1, 1), 2 ** 62, (2, 2.5)]
PADDINGS, PADDINGS_BAD = ["valid", "valid", "same", "SAME", "Valid"], ["full", "bogus", "", None, 1]


def _pool_ints(v, d):
    vals = [v] * d if np.isscalar(v) else list(v)
    if len(vals) != d:
        raise ValueError(f"{len(vals)} entries for {d} axes")
    out = []
    for t in vals:
        if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, float, np.integer, np.floating)):
            raise TypeError(f"not an integer: {t!r}")
        if int(t) != t or t < 1:
            raise ValueError(f"not a positive integer: {t!r}")
        out.append(int(t))
    return out


def pool_reference(x, kind, pool_size, strides, padding):
    """pooling's documented layouts and rules, then test_pooling.ref_pool."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(x.dtype)
    d = {1: 1, 2: 2, 3: 2, 4: 2, 5: 3}[x.ndim] if np.isscalar(pool_size) else len(tuple(pool_size))
    extra = x.ndim - d
    if not 1 <= d <= 3 or extra not in (0, 1, 2):
        raise ValueError("layout")
    p = _pool_ints(pool_size, d)
    s = p if strides is None else _pool_ints(strides, d)
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(padding)
    if x.size == 0:
        raise ValueError("empty")
    try:
        return ref_pool(x, kind, p, s, padding.lower(), extra)
    except (ValueError, MemoryError) as e:  # np.pad of a 2**62 window: the reference cannot judge
        if isinstance(e, MemoryError) or "too big" in str(e):
            raise NoReference(f"ref_pool: {e}") from None
        raise


def make_pool(name, gpu=False):
    kind = name[:3]

    def make(rng):
        x = arr(rng, ndim=int(rng.integers(0, 6)), huge=0.03, gpu=gpu)
        pool_size = choose(rng, POOL_SIZES, POOL_SIZES_BAD, p_bad=0.15)
        strides = choose(rng, [None, None, 1, 2, 3, (1, 2)], [0, -1, True, 1.5, (1, 1, 1, 1), "2"])
        padding = choose(rng, PADDINGS, PADDINGS_BAD)

        def check(got):
            refuse_nonnumeric(x)
            if is_huge(np.asarray(x)):
                return
            want = reference(lambda: pool_reference(x, kind, pool_size, strides, padding))
            dt = float_of(x)
            r = 0.0 if kind == "max" else rtol_of(dt)
            compare(got, want, r, r * amax(x), dtype=dt)
        return Call(f"convcore.pooling.{name}", getattr(cpool, name), (x, pool_size),
                    dict(strides=strides, padding=padding), check=check)
    return make


def filter_entries(gpu=False):
    e = {}
    for n in ("correlate", "convolve"):
        e[f"signal.{n}"] = make_signal_correlate(n, gpu)
    for n in ("correlate2d", "convolve2d"):
        e[f"signal.{n}"] = make_signal_correlate2d(n, gpu)
    for n in ("correlate", "convolve"):
        e[f"ndimage.{n}"] = make_nd_correlate(n, gpu)
    for n in ("correlate1d", "convolve1d"):
        e[f"ndimage.{n}"] = make_nd_correlate1d(n, gpu)
    e["ndimage.uniform_filter1d"] = make_uniform_filter1d(gpu)
    e["ndimage.uniform_filter"] = make_uniform_filter(gpu)
    e["ndimage.gaussian_filter1d"] = make_gaussian_filter1d(gpu)
    e["ndimage.gaussian_filter"] = make_gaussian_filter(gpu)
    e["ndimage.sobel"] = make_derivative("sobel", gpu)
    e["ndimage.prewitt"] = make_derivative("prewitt", gpu)
    e["ndimage.edge_filter"] = make_edge_filter(gpu)
    e["ndimage.match_template"] = make_match_template(gpu)
    e["ndimage.laplace"] = make_laplace(gpu)
    e["ndimage.gaussian_laplace"] = make_gaussian_composed("gaussian_laplace", 2, gpu)
    e["ndimage.gaussian_gradient_magnitude"] = make_gaussian_composed("gaussian_gradient_magnitude", 1, gpu)
    if not gpu:  # (CPU kernels whatever the device)
        e["ndimage.generic_laplace"] = make_generic_composed("generic_laplace")
        e["ndimage.generic_gradient_magnitude"] = make_generic_composed("generic_gradient_magnitude")
        for n in ("minimum_filter", "maximum_filter", "median_filter", "rank_filter", "percentile_filter"):
            e[f"ndimage.{n}"] = make_rank(n)
        for n in ("minimum_filter1d", "maximum_filter1d"):
            e[f"ndimage.{n}"] = make_minmax1d(n)
        for n in ("fftconvolve", "oaconvolve"):
            e[f"signal.{n}"] = make_fftconvolve(n)
    e["pooling.max_pool"] = make_pool("max_pool", gpu)
    e["pooling.avg_pool"] = make_pool("avg_pool", gpu)
    if not gpu:
        e["signal.choose_conv_method"] = make_choose_conv_method
        e["ndimage.uniform_kernel"] = make_uniform_kernel
        e["ndimage.gaussian_kernel"] = make_gaussian_kernel
        e["ndimage.sobel_kernels"] = make_sobel_kernels
    return e


FILTERS = filter_entries()


# ============================================================================ ops
# convcore.ops against numpy (the same inputs, numpy's promotion) or a numpy formula
# (in float64). Inputs arrive as Tensors, ndarrays, lists or Python scalars; some calls run
# under a GradientTape and take the gradient of ops.sum of the result (its shapes are
# checked). The GPU test runs the same cases on device='gpu' against the CPU.
def op_input(rng, shape=None, ndim=None, dtype=None, gpu=False, special=0.15, huge=0.0, hi=5, cap=512):
    a = arr(rng, shape=shape, ndim=ndim if ndim is not None or shape is not None else int(rng.integers(0, 4)),
            dtype=dtype, gpu=gpu, special=special, huge=huge, hi=hi, cap=cap, layout=False)
    if not is_huge(a):
        a = relayout(rng, a, choice(rng, [k for k in LAYOUTS if k != "list"]))
    r = rng.random()
    how = "tensor" if r < 0.62 else "array" if r < 0.94 or a.dtype.kind not in "biuf" or is_huge(a) else "list"
    return Wrapped(a, how)


def float_input(rng, shape=None, ndim=None, gpu=False, special=0.12, **kw):
    dt = choice(rng, ["float32", "float32", "float64"]) if not gpu else "float32"
    if rng.random() < 0.1:
        dt = draw_dtype(rng, gpu)
    return op_input(rng, shape=shape, ndim=ndim, dtype=dt, gpu=gpu, special=special, **kw)


def positive(w, offset, hi=None, how=None):
    """``w`` with its values made positive (|v| + offset, at most ``hi``), for
    probabilities and variances; non-numeric inputs stay as they are."""
    v = w.value
    if v.dtype.kind in "biuf":
        a = np.abs(f64(v)) + offset
        v = (np.minimum(a, hi) if hi is not None else a).astype(v.dtype)
    return Wrapped(v, how or w.how, w.device)


def _flat(v):
    if isinstance(v, (list, tuple)):
        for e in v:
            yield from _flat(e)
    else:
        yield v


def _op_runner(fn, tape):
    """Call ``fn`` on the realized inputs; under a tape, also the gradient of ops.sum of
    the (first float) result with respect to the float Tensor inputs."""
    def run(*args, **kwargs):
        real = [realize(a) for a in args]
        kw = {k: realize(v) for k, v in kwargs.items()}
        if not tape:
            return fn(*real, **kw), None
        watched = [t for t in _flat(real) if isinstance(t, cc.Tensor) and np.dtype(t.dtype).kind == "f"]
        with cc.GradientTape() as tp:
            tp.watch(watched)
            y = fn(*real, **kw)
            ys = [t for t in _flat(y) if isinstance(t, cc.Tensor) and np.dtype(t.dtype).kind == "f"]
            loss = ops.sum(ys[0]) if ys and watched else None
        if loss is None:
            return y, None
        return y, (watched, tp.gradient(loss, watched))
    return run


def _to_host(v):
    if isinstance(v, cc.Tensor):
        return v.numpy()
    if isinstance(v, (list, tuple)):
        return type(v)(_to_host(e) for e in v)
    return v


class Either(tuple):
    """Several acceptable references (the result must match one of them)."""


def compare_any(got, want, rtol, atol, rule, what="result"):
    """compare() for a result that may be a Tensor, an array, a tuple/list of them, or a
    Python value."""
    if isinstance(want, Either):
        first = None
        for w in want:
            try:
                compare_any(got, w, rtol, atol, rule, what)
                return
            except Mismatch as m:
                first = first or m
        raise first
    if isinstance(want, (list, tuple)) and not isinstance(got, (list, tuple)):
        raise Mismatch("wrong result type", f"{what}: returned {type(got).__name__}, expected a sequence of "
                                            f"{len(want)}")
    if isinstance(want, (list, tuple)):
        if len(got) != len(want):
            raise Mismatch("wrong result length", f"{what}: {len(got)} results, expected {len(want)}")
        for i, (g, w) in enumerate(zip(got, want)):
            compare_any(g, w, rtol, atol, rule, f"{what}[{i}]")
        return
    if isinstance(want, (np.ndarray, np.generic)):
        g = got.numpy() if isinstance(got, cc.Tensor) else got
        if isinstance(g, (bool, int, float)) and not isinstance(g, np.generic):
            g = np.asarray(g)
        if not isinstance(g, (np.ndarray, np.generic)):
            raise Mismatch("wrong result type", f"{what}: returned {type(got).__name__}, expected an array")
        a = atol(want) if callable(atol) else atol
        compare(np.asarray(g), want, rtol, a, rule, what=what)
        return
    if got != want and not (isinstance(want, float) and math.isnan(want) and math.isnan(got)):
        raise Mismatch("wrong values", f"{what}: returned {got!r}, expected {want!r}")


# Ops whose reference is a real formula: a complex, object, str or datetime input must
# raise TypeError (the others follow numpy, which computes with those dtypes).
REAL_ONLY = {"relu", "sigmoid", "softplus", "silu", "swish", "gelu", "leaky_relu", "elu", "selu", "relu6",
             "hard_sigmoid", "var", "std", "logsumexp", "conv", "conv_bias_activation", "conv_transpose",
             "depthwise_conv", "dense_bias_activation", "max_pool", "average_pool", "global_pool", "moments",
             "batch_normalization", "fused_batch_norm", "dropout", "categorical_crossentropy",
             "sparse_categorical_crossentropy", "binary_crossentropy", "fused_loss", "softmax", "log_softmax",
             "upsample2d", "image.resize"}


def op_call(name, fn, args, kwargs, ref, rng, *, rule="exact", atol_scale=None, tape_ok=True, allow=(),
            invalid=(), label=None, check_extra=None, entry=None):
    """A call of an op with inputs ``args`` (Wrapped or plain), checked against
    ``ref(*numpy_inputs, **kwargs)``. ``atol_scale(numpy_inputs)`` sizes the absolute
    tolerance (times the result's rtol); ``rule`` is compare()'s NaN rule for inputs with
    NaN/inf (clean inputs always compare exactly)."""
    np_args = [as_numpy(a) for a in args]
    np_kw = {k: as_numpy(v) for k, v in kwargs.items()}
    huge = any(is_huge(a) for a in _flat(np_args + list(np_kw.values())))
    tape = tape_ok and not huge and rng.random() < 0.25  # (ops.sum of a huge view would scan it all)

    def check(out):
        y, grads = out
        arrays = [a for a in _flat(np_args + list(np_kw.values())) if isinstance(a, np.ndarray)]
        if any(is_huge(a) for a in arrays):
            return
        if name in REAL_ONLY:
            refuse_nonnumeric(*arrays)
        if any(a.dtype == object for a in arrays) and name != "is_tensor":  # a predicate: False, as Keras's
            raise Mismatch("accepts a non-numeric dtype", "returned for an object array (tensor() refuses them, "
                                                          "unless no input is a Tensor); must raise TypeError",
                           group="ops (object arrays)")
        if ref is not None:
            want = reference(lambda: ref(*np_args, **np_kw))
            host = _to_host(y)
            dts = [np.asarray(t).dtype for t in _flat(host) if isinstance(t, (np.ndarray, np.generic))]
            # the tolerance of the least precise float among the result and the inputs
            dts += [a.dtype for a in arrays if a.dtype.kind == "f"]
            r = max([rtol_of(d) for d in dts if d.kind == "f"] + [rtol_of(np.float32) if rule != "exact" else 0.0])
            clean = finite(*arrays) if arrays else True
            scale = atol_scale(np_args, np_kw) if atol_scale is not None else max([amax(a) for a in arrays] + [0.0])
            compare_any(y, want, r, r * scale + 1e-300, "exact" if clean else rule)
        if check_extra is not None:
            check_extra(y, np_args, np_kw)
        if grads is not None:
            for t, g in zip(*grads):
                if g is not None and tuple(g.shape) != tuple(t.shape):
                    raise Mismatch("wrong gradient shape", f"gradient of shape {tuple(g.shape)} for an input of "
                                                           f"shape {tuple(t.shape)}")
    label = label or f"ops.{name}"
    setup = "under cc.GradientTape(), then tape.gradient(ops.sum(result), inputs)" if tape else ""
    return Call(label, _op_runner(fn, tape), tuple(args), dict(kwargs), invalid=list(invalid), check=check,
                allow=tuple(allow), setup=setup, shown=(tuple(args), dict(kwargs)), entry=entry or f"ops.{name}")


def _sum_scale(a, kw):
    return sum(asum(x) for x in _flat(a) if isinstance(x, np.ndarray)) + 1.0


def _stable_softmax(x, axis=-1):
    x = f64(x)
    if x.size == 0:
        return x.copy() if -max(x.ndim, 1) <= axis < max(x.ndim, 1) else np.sum(x, axis=axis)
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis=-1):
    x = f64(x)
    if x.size == 0:
        return _stable_softmax(x, axis)
    return x - special.logsumexp(x, axis=axis, keepdims=True)


def _elu(x, alpha=1.0):
    x = f64(x)
    return np.where(x > 0, x, float(alpha) * np.expm1(np.minimum(x, 0)))


def _gelu(x, approximate=True):
    x = f64(x)
    if approximate:
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + special.erf(x / np.sqrt(2)))


def _x(fn):
    """A numpy formula, computed in float64."""
    return lambda x, **kw: fn(f64(x), **kw)


# name: (reference, NaN rule for inputs with NaN/inf, parameter maker)
UNARY = {
    "negative": (np.negative, "exact", None), "exp": (np.exp, "exact", None), "log": (np.log, "exact", None),
    "log1p": (np.log1p, "exact", None), "expm1": (np.expm1, "exact", None), "sqrt": (np.sqrt, "exact", None),
    "square": (np.square, "exact", None), "reciprocal": (np.reciprocal, "exact", None),
    "abs": (np.abs, "exact", None), "absolute": (np.abs, "exact", None), "sign": (np.sign, "exact", None),
    "sin": (np.sin, "exact", None), "cos": (np.cos, "exact", None), "tanh": (np.tanh, "exact", None),
    "erf": (special.erf, "exact", None), "floor": (np.floor, "exact", None), "ceil": (np.ceil, "exact", None),
    "round": (np.round, "exact", lambda rng: {} if rng.random() < 0.8 else {"decimals": choice(rng, [0, 1, -1])}),
    "logical_not": (np.logical_not, "exact", None), "isnan": (np.isnan, "exact", None),
    "isfinite": (np.isfinite, "exact", None), "copy": (np.copy, "exact", None),
    "stop_gradient": (np.asarray, "exact", None), "ravel": (np.ravel, "exact", None),
    "linear": (np.asarray, "exact", None),
    "relu": (_x(lambda x: np.where(np.isnan(x), x, np.maximum(x, 0))), "exact", None),
    "sigmoid": (_x(special.expit), "exact", None),
    "softplus": (_x(lambda x: np.logaddexp(0, x)), "exact", None),
    "silu": (_x(lambda x: x * special.expit(x)), "exact", None),
    "swish": (_x(lambda x: x * special.expit(x)), "exact", None),
    "gelu": (lambda x, approximate=True: _gelu(x, approximate), "finite-only",
             lambda rng: {} if rng.random() < 0.7 else {"approximate": choice(rng, [True, False])}),
    "leaky_relu": (lambda x, negative_slope=0.2: np.where(f64(x) > 0, f64(x), float(negative_slope) * f64(x)),
                   "exact", lambda rng: {} if rng.random() < 0.6 else
                   {"negative_slope": choose(rng, [0.1, 0.0, 1.0, -0.5], [None, "a"])}),
    "elu": (lambda x, alpha=1.0: _elu(x, alpha), "exact",
            lambda rng: {} if rng.random() < 0.6 else {"alpha": choose(rng, [0.5, 2.0, 0.0], [None, "a"])}),
    "selu": (_x(lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(np.minimum(x, 0)))),
             "exact", None),
    "relu6": (_x(lambda x: np.where(np.isnan(x), x, np.clip(x, 0, 6))), "exact", None),
    "hard_sigmoid": (_x(lambda x: np.clip(x / 6 + 0.5, 0, 1)), "exact", None),
}


def make_unary(name, gpu=False):
    ref, rule, params = UNARY[name]

    def make(rng):
        x = op_input(rng, gpu=gpu, huge=0.03)
        kw = params(rng) if params else {}
        return op_call(name, getattr(ops, name), [x], kw, ref, rng, rule=rule)
    return make


BINARY = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide,
    "true_divide": np.true_divide, "power": np.power, "maximum": np.maximum, "minimum": np.minimum,
    "floor_divide": np.floor_divide, "mod": np.mod, "equal": np.equal, "not_equal": np.not_equal,
    "greater": np.greater, "greater_equal": np.greater_equal, "less": np.less, "less_equal": np.less_equal,
    "logical_and": np.logical_and, "logical_or": np.logical_or,
}
OPERATORS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "floor_divide": "//", "mod": "%",
             "power": "**", "equal": "==", "not_equal": "!=", "greater": ">", "greater_equal": ">=", "less": "<",
             "less_equal": "<=", "logical_and": "&", "logical_or": "|"}
SCALARS = [2, -1, 0, 2.5, 0.5, nan, inf, True, 2 ** 62, 1e300, np.float32(1.5), np.int8(3)]


def _broadcast_partner(rng, shape):
    """A shape that broadcasts with ``shape`` (usually), or one that does not."""
    if math.prod(shape) > 4096:  # a huge view: a small partner
        return choice(rng, [(), (1,) * len(shape), (1,)])
    r = rng.random()
    if r < 0.3:
        return shape
    if r < 0.55:
        return tuple(1 if rng.random() < 0.5 else s for s in shape)
    if r < 0.75:
        return shape[int(rng.integers(0, len(shape) + 1)):]
    if r < 0.9:
        return (2,) + tuple(shape)
    return tuple(s + 1 for s in shape) or (2,)


def tensor_float_rule(ref, args):
    """The reference with convcore's documented conversion of a two-operand op: a float
    array or list next to a float Tensor takes the Tensor's float type (Keras's floatx
    rule; Python scalars stay weak, as in numpy)."""
    like = next((a for a in args if isinstance(a, Wrapped) and a.how == "tensor"), None)
    if like is None or like.value.dtype.kind != "f":
        return ref
    keep = [not (isinstance(a, Wrapped) and a.how != "tensor") for a in args]

    def ref2(*vals, **kw):
        vals = [v if k or np.asarray(v).dtype.kind != "f" else np.asarray(v).astype(like.value.dtype)
                for v, k in zip(vals, keep)]
        return ref(*vals, **kw)
    return ref2


def _operator(sym):
    return eval(f"lambda a, b: a {sym} b")  # noqa: S307 - a fixed table of operator symbols


def make_binary(name, gpu=False):
    def make(rng):
        a = op_input(rng, gpu=gpu, huge=0.02)
        shape = np.shape(a.value)
        r = rng.random()
        if r < 0.2:
            b = choice(rng, SCALARS)
        else:
            b = op_input(rng, shape=_broadcast_partner(rng, shape), gpu=gpu, dtype=None if rng.random() < 0.4
                         else a.value.dtype)
        args = [a, b] if rng.random() < 0.85 else [b, a]
        ref = tensor_float_rule(BINARY[name], args)
        if name in OPERATORS and rng.random() < 0.3 and any(isinstance(v, Wrapped) and v.how == "tensor"
                                                           for v in args):
            op = _operator(OPERATORS[name])
            ref_op = tensor_float_rule(BINARY[name] if name in ("logical_and", "logical_or") else op,  # & | logical
                                       args)
            return op_call(name, op, args, {}, ref_op, rng, label=f"(lambda a, b: a {OPERATORS[name]} b)",
                           entry=f"Tensor operator {OPERATORS[name]}")
        return op_call(name, getattr(ops, name), args, {}, ref, rng)
    return make


def _matmul_shapes(rng):
    k = int(rng.integers(0, 5))
    kind = choice(rng, ["mm", "mm", "batched", "vec", "vecvec", "bad", "scalar"])
    if kind == "mm":
        return (int(rng.integers(1, 5)), k), (k, int(rng.integers(1, 5)))
    if kind == "batched":
        return (2, int(rng.integers(1, 4)), k), (k, 3) if rng.random() < 0.5 else (1, k, 3)
    if kind == "vec":
        return (3, k), (k,)
    if kind == "vecvec":
        return (k,), (k,)
    if kind == "scalar":
        return (), (3,)
    return (2, k), (k + 1, 2)


def make_matmul(name, gpu=False):
    ref = np.matmul if name == "matmul" else np.dot

    def make(rng):
        sa, sb = _matmul_shapes(rng)
        a, b = op_input(rng, shape=sa, gpu=gpu), op_input(rng, shape=sb, gpu=gpu)
        ref = tensor_float_rule(np.matmul if name == "matmul" else np.dot, [a, b])

        def scale(args, kw):
            try:
                return float(np.max(np.abs(f64(args[0])) @ np.abs(f64(args[1])), initial=0.0)) + 1.0
            except Exception:  # noqa: BLE001 - the reference raises anyway
                return 1.0
        if name == "matmul" and rng.random() < 0.2 and a.how == "tensor":
            return op_call(name, _operator("@"), [a, b], {}, ref, rng, atol_scale=scale, label="(lambda a, b: a @ b)",
                           entry="Tensor operator @")
        return op_call(name, getattr(ops, name), [a, b], {}, ref, rng, atol_scale=scale)
    return make


def make_where(gpu=False):
    def make(rng):
        x1 = op_input(rng, gpu=gpu)
        shape = np.shape(x1.value)
        c = op_input(rng, shape=_broadcast_partner(rng, shape), dtype=choice(rng, ["bool", "bool", "int32",
                                                                                   "float32"]), gpu=gpu)
        x2 = choice(rng, SCALARS) if rng.random() < 0.2 else op_input(rng, shape=_broadcast_partner(rng, shape),
                                                                      gpu=gpu)
        if rng.random() < 0.05:
            return op_call("where", ops.where, [c], {}, lambda c: np.nonzero(c), rng)
        return op_call("where", ops.where, [c, x1, x2], {}, np.where, rng)
    return make


def make_clip(gpu=False):
    def make(rng):
        x = op_input(rng, gpu=gpu, huge=0.02)
        lo = choose(rng, [-0.5, 0, None, -1, np.float32(-2)], [nan, "a"])
        hi = choose(rng, [0.5, 1, None, 3, 2 ** 62], [nan, "b"])
        return op_call("clip", ops.clip, [x, lo, hi], {}, np.clip, rng)
    return make


def axis_arg(rng, ndim, tuples=True, none=True):
    good = ([None, None] if none else []) + (list(range(-ndim, ndim)) or [0])
    if tuples and ndim >= 2:
        good.append(tuple(int(i) for i in sorted(rng.choice(ndim, 2, replace=False))))
        good.append((-1, 0))
    bad = [ndim, -ndim - 1, True, 1.5, "0", 2 ** 62, (0, 0), [0, ndim + 3]]
    return choose(rng, good, bad, p_bad=0.15)


def _logsumexp(x, axis=None, keepdims=False):
    x = f64(x)
    shape = np.sum(np.zeros(x.shape), axis=axis, keepdims=keepdims).shape  # numpy's, also for 0-d inputs
    if x.size == 0:  # log of an empty sum: -inf (scipy raises IndexError here, its own bug)
        return np.full(shape, -np.inf)
    return np.reshape(special.logsumexp(x, axis=axis, keepdims=keepdims), shape)


REDUCTIONS = {  # name: (reference, takes keepdims, atol scale)
    "sum": (np.sum, True, "sum"), "mean": (np.mean, True, "max"), "max": (np.max, True, "none"),
    "min": (np.min, True, "none"), "amax": (np.max, True, "none"), "amin": (np.min, True, "none"),
    "prod": (np.prod, True, "none"), "any": (np.any, True, "none"), "all": (np.all, True, "none"),
    "argmax": (np.argmax, True, "none"), "argmin": (np.argmin, True, "none"),
    "logsumexp": (_logsumexp, True, "max"), "var": (np.var, True, "sq"), "std": (np.std, True, "max"),
    "count_nonzero": (np.count_nonzero, False, "none"), "cumsum": (np.cumsum, False, "sum"),
}


def make_reduction(name, gpu=False):
    ref, keep, sc = REDUCTIONS[name]

    def make(rng):
        x = op_input(rng, gpu=gpu)
        nd_ = np.ndim(x.value)
        single = name in ("argmax", "argmin", "cumsum")
        kw = {"axis": axis_arg(rng, nd_, tuples=not single)} if rng.random() < 0.85 else {}
        if keep and rng.random() < 0.3:
            kw["keepdims"] = choice(rng, [True, False, 1, 0])
        if name in ("max", "min") and rng.random() < 0.1:
            kw["initial"] = choice(rng, [0.0, 5.0, -inf])

        def scale(args, kw_):
            x_ = args[0]
            return {"sum": asum(x_), "max": amax(x_), "sq": amax(x_) ** 2, "none": amax(x_)}[sc] + 1.0
        return op_call(name, getattr(ops, name), [x], kw, ref, rng, atol_scale=scale)
    return make


def _reshape_targets(rng, shape):
    n = math.prod(shape)
    good = [(n,), (-1,), (1, n), (n, 1), tuple(shape[::-1]), tuple(shape) + (1,), n]
    if len(shape) >= 2:
        good += [(-1, shape[-1]), (shape[0], -1)]
    bad = [(n + 1,), (-1, -1), (0,) if n else (1,), (-2, n), (2.5,), (True, n), None, "3", (2 ** 62,), 2 ** 62,
           (2 ** 40, 2 ** 40), (-1, 0)]
    return choose(rng, good, bad, p_bad=0.2)


def _perm(rng, ndim):
    good = [None, tuple(int(i) for i in rng.permutation(ndim)), tuple(int(i) - ndim for i in rng.permutation(ndim))]
    bad = [(0,) * max(ndim, 1), tuple(range(ndim + 1)), tuple(range(ndim - 1)) if ndim else (1,), (0, 5)]
    return choose(rng, good, bad, p_bad=0.2)


def _pad_widths(rng, ndim):
    good = [1, (1, 2), [(1, 0)] * ndim, [(0, 2)] * ndim, 0]
    bad = [-1, [(1, -1)] * max(ndim, 1), 1.5, [(1, 2, 3)], "a", [(2 ** 40, 0)] * max(ndim, 1)]
    return choose(rng, good, bad, p_bad=0.15)


def _index_key(rng, shape):
    """A random numpy index for an array of ``shape``: ints (some out of range), slices
    (negative steps, zero step), None, Ellipsis, int lists, boolean masks, floats."""
    if shape and rng.random() < 0.1:
        return np.asarray(rng.random(shape) < 0.5)  # boolean mask
    parts = []
    for n in shape[:int(rng.integers(0, len(shape) + 1))]:
        r = rng.random()
        if r < 0.3:
            parts.append(int(rng.integers(-n - 1, n + 1)) if n else 0)
        elif r < 0.7:
            step = choice(rng, [None, 1, 2, -1, -2, 0])
            parts.append(slice(choice(rng, [None, 0, 1, -1, 5]), choice(rng, [None, -1, 2, 9]), step))
        elif r < 0.8:
            parts.append([int(v) for v in rng.integers(-n - 1, n + 1, size=2)] if n else [])
        elif r < 0.87:
            parts.append(None)
        elif r < 0.93:
            parts.append(Ellipsis)
        else:
            parts.append(choice(rng, [1.5, "a", True, np.int64(0), (0,)]))
    if not parts:
        return choice(rng, [(), Ellipsis, slice(None), None, 0])
    return tuple(parts) if len(parts) > 1 or rng.random() < 0.5 else parts[0]


INDEX_ERRORS = (IndexError,)  # indexing out of range: Python's own protocol (iteration relies on it)


def make_shape_op(name, gpu=False):
    def make(rng):
        x = op_input(rng, gpu=gpu, huge=0.03 if name in ("reshape", "expand_dims", "squeeze") else 0.0)
        shape, nd_ = np.shape(x.value), np.ndim(x.value)
        allow = ()
        if name == "reshape":
            args, kw, ref = [x, _reshape_targets(rng, shape)], {}, np.reshape
        elif name == "transpose":
            args, kw, ref = [x], {"axes": _perm(rng, nd_)}, lambda a, axes=None: np.transpose(a, axes)
        elif name == "swapaxes":
            args, kw, ref = [x, axis_arg(rng, nd_, False, False), axis_arg(rng, nd_, False, False)], {}, np.swapaxes
        elif name == "moveaxis":
            args, kw, ref = [x, axis_arg(rng, nd_, False, False), axis_arg(rng, nd_, False, False)], {}, np.moveaxis
        elif name == "broadcast_to":
            tgt = choose(rng, [(2,) + tuple(shape), tuple(3 if s == 1 else s for s in shape), tuple(shape)],
                         [tuple(s + 1 for s in shape) or (0,), (-1,) + tuple(shape), (2 ** 62,) + tuple(shape),
                          (1.5,), None], p_bad=0.2)
            args, kw, ref = [x, tgt], {}, np.broadcast_to
        elif name == "expand_dims":
            ax = choose(rng, list(range(-nd_ - 1, nd_ + 1)), [nd_ + 1, -nd_ - 2, 1.5, (0, 1), None, 2 ** 62])
            args, kw, ref = [x, ax], {}, np.expand_dims
        elif name == "squeeze":
            ones_ = [i for i, s in enumerate(shape) if s == 1]
            ax = choose(rng, [None] + ones_ + ([tuple(ones_)] if ones_ else []), [0, nd_, -nd_ - 1, 1.5, "0"])
            args, kw, ref = [x], {"axis": ax}, lambda a, axis=None: np.squeeze(a, axis)
        elif name in ("concatenate", "stack"):
            k = int(rng.integers(0, 4))
            ax = axis_arg(rng, nd_ + (name == "stack"), tuples=False, none=False)
            parts = [x]
            for _ in range(k - 1):
                s = list(shape)
                if name == "concatenate" and s and rng.random() < 0.7:
                    s[int(ax) % len(s) if isinstance(ax, int) and not isinstance(ax, bool) else 0] = \
                        int(rng.integers(0, 4))
                if rng.random() < 0.1:
                    s = s + [1]
                parts.append(op_input(rng, shape=tuple(s), gpu=gpu, dtype=x.value.dtype
                                      if rng.random() < 0.7 else None))
            parts = parts[:k]
            args, kw = [parts], {"axis": ax}
            ref = (lambda xs, axis=0: np.concatenate(xs, axis)) if name == "concatenate" else \
                (lambda xs, axis=0: np.stack(xs, axis))
        elif name == "split":
            ax = axis_arg(rng, nd_, tuples=False, none=False)
            sec = choose(rng, [1, 2, 3, [1], [1, 2], [0, 5]], [0, -1, 1.5, True, None, "2"])
            args, kw, ref = [x, sec], {"axis": ax}, lambda a, s, axis=0: np.split(a, s, axis)
        elif name == "pad":
            pw = _pad_widths(rng, nd_)
            mode = choose(rng, ["constant"], ["reflect", "edge", "bogus", None], p_bad=0.1)
            cv = choose(rng, [0, 1.5, -2], [nan, "a", None], p_bad=0.1)
            args, kw, ref = [x, pw], {"mode": mode, "constant_values": cv}, np.pad
        elif name == "take":
            n0 = shape[0] if shape else 1
            idx = choose(rng, [0, [0, 0], [-1], np.arange(min(n0, 3)), [[0, 1]]], [n0, [n0 + 2], -n0 - 1, 1.5,
                                                                                   ["a"], None])
            ax = choose(rng, [None, None, 0, -1], [nd_, 1.5, "0"])
            args, kw, ref, allow = [x, idx], {"axis": ax}, np.take, INDEX_ERRORS
        elif name == "take_along_axis":
            ax = axis_arg(rng, nd_, tuples=False, none=False)
            ishape = tuple(s if rng.random() < 0.8 else 1 for s in shape)
            n_ax = shape[int(ax) % nd_] if nd_ and isinstance(ax, int) and not isinstance(ax, bool) else 1
            hi_ = n_ax if rng.random() < 0.9 else n_ax + 2
            idx = rng.integers(-n_ax if rng.random() < 0.2 else 0, max(hi_, 1), size=ishape)
            args, kw, ref, allow = [x, idx, ax], {}, np.take_along_axis, INDEX_ERRORS
        elif name == "tile":
            reps = choose(rng, [2, 1, (2, 1), (1,) * nd_, (2,) * (nd_ + 1)], [-1, (1, -1), 1.5, None, "2"])
            args, kw, ref = [x, reps], {}, np.tile
        elif name == "repeat":
            n_ = shape[0] if shape else 1
            rep = choose(rng, [2, 1, 0, [1] * n_], [-1, 1.5, None, [1, 2, 3, 4, 5, 6, 7]])
            ax = choose(rng, [None, None, 0, -1], [nd_, 1.5])
            args, kw, ref = [x, rep], {"axis": ax}, np.repeat
        elif name == "flip":
            args, kw, ref = [x], {"axis": axis_arg(rng, nd_)}, lambda a, axis=None: np.flip(a, axis)
        elif name == "getitem":
            key = _index_key(rng, shape)
            return op_call("getitem", lambda a, k: a[k] if isinstance(a, cc.Tensor) else ops._getitem(a, k),
                           [x, key], {}, lambda a, k: a[k], rng, allow=INDEX_ERRORS, label="(lambda t, key: t[key])")
        else:
            raise KeyError(name)
        return op_call(name, getattr(ops, name), args, kw, ref, rng, allow=allow)
    return make


SHAPE_OPS = ["reshape", "transpose", "swapaxes", "moveaxis", "broadcast_to", "expand_dims", "squeeze", "concatenate",
             "stack", "split", "pad", "take", "take_along_axis", "tile", "repeat", "flip", "getitem"]


# ---------------------------------------------------------------------- nn ops and their references
def _spatial_ref(v, rank):
    vals = (v,) * rank if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) else tuple(v)
    if len(vals) != rank or any(isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer)) or t < 1
                                for t in vals):
        raise ValueError(f"bad spatial argument {v!r}")
    return [int(t) for t in vals]


def _padding_ref(p):
    if not isinstance(p, str) or p.lower() not in ("valid", "same"):
        raise ValueError(f"padding {p!r}")
    return p.lower()


def conv_reference(x, w, strides=1, padding="valid", dilation=1):
    """Channels-last N-D cross-correlation summed over input channels, Keras padding, in
    float64: x (batch, *spatial, C_in), w (*k, C_in, C_out)."""
    x, w = f64(x), f64(w)
    r = w.ndim - 2
    if r < 1 or x.ndim != r + 2 or x.shape[-1] != w.shape[-2] or min(w.shape[:r]) < 1:
        raise ValueError(f"conv shapes {x.shape} and {w.shape}")
    s, d, pad = _spatial_ref(strides, r), _spatial_ref(dilation, r), _padding_ref(padding)
    sp, k = x.shape[1:-1], w.shape[:r]
    ke = [(kk - 1) * dd + 1 for kk, dd in zip(k, d)]
    if max(ke) > 10 ** 5:
        raise NoReference("an effective kernel far larger than the input")
    if pad == "same":
        out = [-(-n // ss_) for n, ss_ in zip(sp, s)]
        tot = [max((o - 1) * ss_ + e - n, 0) for o, ss_, e, n in zip(out, s, ke, sp)]
        x = np.pad(x, [(0, 0)] + [(t // 2, t - t // 2) for t in tot] + [(0, 0)])
    else:
        out = [(n - e) // ss_ + 1 for n, e, ss_ in zip(sp, ke, s)]
    if min(out) < 1:
        raise ValueError(f"conv output {out}")
    y = np.zeros((x.shape[0], *out, w.shape[-1]))
    for idx in np.ndindex(*k):
        sl = tuple(slice(i * dd, i * dd + (o - 1) * ss_ + 1, ss_) for i, dd, o, ss_ in zip(idx, d, out, s))
        y = y + x[(slice(None),) + sl + (slice(None),)] @ w[idx]
    return y


def _act_ref(name, z):
    return {"linear": lambda v: v, "relu": lambda v: np.where(np.isnan(v), v, np.maximum(v, 0)),
            "sigmoid": special.expit, "tanh": np.tanh, "softmax": _stable_softmax}[name](z)


NATIVE_ACTS, NATIVE_ACTS_BAD = ["linear", "relu", "sigmoid", "tanh", "softmax"], ["gelu", None, "bogus", "RELU"]
STRIDES, STRIDES_BAD = [1, 1, 2, 3], [0, -1, True, 1.5, None, "1", (1, 1, 1, 1, 1)]


def _conv_inputs(rng, gpu, rank=None):
    r = rank or int(rng.integers(1, 4))
    n = choice(rng, [1, 2, 3, 0])
    sp = draw_shape(rng, r, hi=6, cap=216)
    cin, cout = choice(rng, [1, 2, 3]), choice(rng, [1, 2, 3, 0])
    k = tuple(max(1, s) if rng.random() < 0.95 else 0 for s in draw_shape(rng, r, hi=3, cap=27))
    xs = (n,) + sp + (cin,)
    if rng.random() < 0.08:
        xs = xs[1:] if rng.random() < 0.5 else xs + (1,)
    ws = k + (cin if rng.random() < 0.92 else cin + 1, cout)
    return float_input(rng, shape=xs, gpu=gpu, huge=0.02), float_input(rng, shape=ws, gpu=gpu, special=0.05), r


def _conv_scale(args, kw, strides, padding, dilation):
    try:
        return float(np.max(conv_reference(np.abs(f64(args[0])), np.abs(f64(args[1])), strides, padding, dilation),
                            initial=0.0)) + 1.0
    except Exception:  # noqa: BLE001
        return 1.0


def make_conv(name, gpu=False):
    def make(rng):
        x, w, r = _conv_inputs(rng, gpu)
        strides = choose(rng, STRIDES + [tuple([2] * r)], STRIDES_BAD)
        dil = choose(rng, [1, 1, 1, 2], [0, True, -1, 1.5])
        padding = choose(rng, ["valid", "same", "SAME"], ["full", None, 1, ""])
        scale = lambda a, kw: _conv_scale(a, kw, strides, padding, dil)  # noqa: E731
        if name == "conv":
            df = choose(rng, [None, None, "channels_last"], ["channels_first", "bogus"])
            return op_call("conv", ops.conv, [x, w], dict(strides=strides, padding=padding, data_format=df,
                                                          dilation_rate=dil),
                           lambda x_, w_, strides, padding, data_format, dilation_rate: _need(
                               data_format in (None, "channels_last"),
                               lambda: conv_reference(x_, w_, strides, padding, dilation_rate)),
                           rng, atol_scale=scale)
        cout = np.shape(w.value)[-1]
        bias = choose(rng, [None, float_input(rng, shape=(cout,), gpu=gpu, special=0.05)],
                      [float_input(rng, shape=(cout + 1,), gpu=gpu)], p_bad=0.1)
        act = choose(rng, NATIVE_ACTS, NATIVE_ACTS_BAD)

        def ref(x_, w_, b_, strides, padding, dilation_rate, activation):
            z = conv_reference(x_, w_, strides, padding, dilation_rate)
            if b_ is not None:
                if np.shape(b_) != (z.shape[-1],):
                    raise ValueError("bias shape")
                z = z + f64(b_)
            return _act_ref(activation, z)
        return op_call(name, ops.conv_bias_activation, [x, w, bias],
                       dict(strides=strides, padding=padding, dilation_rate=dil, activation=act), ref, rng,
                       atol_scale=scale, rule="finite-only" if act == "softmax" else "exact")
    return make


def _last_axis_only(axis, ndim, fn):
    """A reference for the last axis only: another valid axis has none, an invalid one is
    rejected."""
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} out of range")
    if axis % ndim != ndim - 1:
        raise NoReference("the reference covers the last axis only")
    return fn()


def _need(cond, fn):
    if not cond:
        raise ValueError("the reference rejects these arguments")
    return fn()


def make_conv_transpose(gpu=False):
    def make(rng):
        r = int(rng.integers(1, 4))
        n = choice(rng, [1, 2])
        sp = draw_shape(rng, r, hi=4, cap=64)
        cin, cout = choice(rng, [1, 2]), choice(rng, [1, 2, 3])
        k = tuple(max(1, s) for s in draw_shape(rng, r, hi=3, cap=27))
        y = float_input(rng, shape=(n,) + sp + (cin,), gpu=gpu)
        w = float_input(rng, shape=k + (cout, cin if rng.random() < 0.92 else cin + 1), gpu=gpu, special=0.05)
        strides = choose(rng, STRIDES, STRIDES_BAD)
        padding = choose(rng, ["valid", "same"], ["full", None])
        op_pad = choose(rng, [None, None, 0, 1], [-1, 1.5, (0,) * (r + 1)])
        dil = choose(rng, [1, 1, 2], [0, True])

        def extra(got, args, kw):
            """The adjoint identity <conv(z, w), y> == <z, conv_transpose(y, w)> for a random z."""
            yv, wv = args[0], args[1]
            g = _to_host(got)
            if not finite(yv, wv, g):
                return
            z = np.random.default_rng(0).standard_normal(np.shape(g))
            try:
                cz = conv_reference(z, wv, kw["strides"], kw["padding"], kw["dilation_rate"])
            except ValueError:
                raise Mismatch("wrong shape", f"result shape {np.shape(g)} is not one that conv maps to the "
                                              f"input's {np.shape(yv)}") from None
            if cz.shape != np.shape(yv):
                raise Mismatch("wrong shape", f"conv of the result's shape {np.shape(g)} gives {cz.shape}, not "
                                              f"the input's {np.shape(yv)}")
            lhs, rhs = float(np.sum(cz * f64(yv))), float(np.sum(z * f64(g)))
            bound = float(np.sum(np.abs(cz) * np.abs(f64(yv)))) + 1e-12
            if abs(lhs - rhs) > rtol_of(np.asarray(g).dtype) * 10 * bound:
                raise Mismatch("wrong values", f"<conv(z, w), y> = {lhs!r} but <z, conv_transpose(y, w)> = {rhs!r}")
        return op_call("conv_transpose", ops.conv_transpose, [y, w],
                       dict(strides=strides, padding=padding, output_padding=op_pad, dilation_rate=dil), None, rng,
                       check_extra=extra)
    return make


def make_depthwise_conv(gpu=False):
    def make(rng):
        x, w0, r = _conv_inputs(rng, gpu)
        c = np.shape(x.value)[-1] if np.ndim(x.value) else 1
        kshape = np.shape(w0.value)[:r] + (c if rng.random() < 0.9 else c + 1, choice(rng, [1, 2]))
        w = float_input(rng, shape=kshape, gpu=gpu, special=0.05)
        strides = choose(rng, STRIDES, STRIDES_BAD)
        padding = choose(rng, ["valid", "same"], ["full", None])

        def ref(x_, w_, strides, padding):
            x_, w_ = f64(x_), f64(w_)
            if x_.ndim != w_.ndim or x_.shape[-1] != w_.shape[-2]:
                raise ValueError("depthwise shapes")
            return np.concatenate([conv_reference(x_[..., i:i + 1], w_[..., i:i + 1, :], strides, padding)
                                   for i in range(x_.shape[-1])], axis=-1)
        return op_call("depthwise_conv", ops.depthwise_conv, [x, w], dict(strides=strides, padding=padding), ref,
                       rng, atol_scale=lambda a, kw: _sum_scale(a, kw) ** 2)
    return make


def _adaptive_reference(kind):
    def ref(x_, output_size, data_format=None):
        x_ = f64(x_)
        if data_format not in (None, "channels_last") or x_.ndim < 3:
            raise ValueError("adaptive pooling arguments")
        r = x_.ndim - 2
        o = _spatial_ref(output_size, r)
        sp = x_.shape[1:-1]
        if min(sp) < 1 or x_.shape[0] * x_.shape[-1] == 0:
            raise NoReference("an empty input")
        out = np.empty((x_.shape[0],) + tuple(o) + (x_.shape[-1],))
        red = np.max if kind == "max" else np.mean
        for idx in np.ndindex(*o):  # PyTorch's windows [floor(i n / o), ceil((i + 1) n / o))
            win = tuple(slice(i * n // oo, -(-(i + 1) * n // oo)) for i, n, oo in zip(idx, sp, o))
            out[(slice(None),) + idx] = red(x_[(slice(None),) + win], axis=tuple(range(1, r + 1)))
        return out
    return ref


def make_adaptive_pool(name, gpu=False):
    kind = "max" if "max" in name else "avg"

    def make(rng):
        r = int(rng.integers(1, 4))
        shape = (choice(rng, [1, 2]),) + draw_shape(rng, r, hi=5, cap=125) + (choice(rng, [1, 2]),)
        if rng.random() < 0.06:
            shape = shape[1:]
        x = float_input(rng, shape=shape, gpu=gpu, huge=0.02)
        size = choose(rng, [1, 2, 3, tuple([2] * r), tuple([1] * r), [3] * r], [0, -1, True, 1.5, None, "2",
                                                                               (1,) * (r + 1), (0,) * r])
        df = choose(rng, [None, None, "channels_last"], ["channels_first", "bogus"], p_bad=0.05)
        return op_call(name, getattr(ops, name), [x, size], dict(data_format=df), _adaptive_reference(kind), rng)
    return make


def make_separable_conv(gpu=False):
    def make(rng):
        x, w0, r = _conv_inputs(rng, gpu)
        c = np.shape(x.value)[-1] if np.ndim(x.value) else 1
        m = choice(rng, [1, 2])
        dw = float_input(rng, shape=np.shape(w0.value)[:r] + (c if rng.random() < 0.92 else c + 1, m), gpu=gpu,
                         special=0.05)
        pw = float_input(rng, shape=(1,) * r + (c * m if rng.random() < 0.92 else c * m + 1, choice(rng, [1, 2])),
                         gpu=gpu, special=0.05)
        strides = choose(rng, STRIDES, STRIDES_BAD)
        padding = choose(rng, ["valid", "same"], ["full", None])
        dil = choose(rng, [1, 1, 2], [0, True, -1])

        def ref(x_, dw_, pw_, strides, padding, dilation_rate):
            x_, dw_, pw_ = f64(x_), f64(dw_), f64(pw_)
            if x_.ndim != dw_.ndim or pw_.ndim != dw_.ndim or pw_.shape[:-2] != (1,) * (pw_.ndim - 2):
                raise ValueError("separable shapes")
            z = _depthwise_ref(x_, dw_, strides, padding, dilation_rate)
            if z.shape[-1] != pw_.shape[-2]:
                raise ValueError("pointwise kernel")
            return z @ pw_.reshape(pw_.shape[-2:])
        return op_call("separable_conv", ops.separable_conv, [x, dw, pw],
                       dict(strides=strides, padding=padding, dilation_rate=dil), ref, rng,
                       atol_scale=lambda a, kw: _sum_scale(a, kw) ** 3)
    return make


def make_dense(gpu=False):
    def make(rng):
        f = choice(rng, [1, 2, 3, 4, 0])
        lead = draw_shape(rng, int(rng.integers(0, 3)), hi=4, cap=64)
        x = float_input(rng, shape=lead + (f,), gpu=gpu, huge=0.02)
        u = choice(rng, [1, 2, 3])
        k = float_input(rng, shape=(f if rng.random() < 0.92 else f + 1, u), gpu=gpu, special=0.05)
        bias = choose(rng, [None, float_input(rng, shape=(u,), gpu=gpu, special=0.05)],
                      [float_input(rng, shape=(u + 1,), gpu=gpu), float_input(rng, shape=(1, u), gpu=gpu)])
        act = choose(rng, NATIVE_ACTS, NATIVE_ACTS_BAD)

        def ref(x_, k_, b_, activation):
            x_, k_ = f64(x_), f64(k_)
            if x_.ndim < 1 or k_.ndim != 2 or x_.shape[-1] != k_.shape[0]:
                raise ValueError("dense shapes")
            z = x_ @ k_
            if b_ is not None:
                if np.shape(b_) != (k_.shape[1],):
                    raise ValueError("bias shape")
                z = z + f64(b_)
            return _act_ref(activation, z)

        def scale(a, kw):
            try:
                return float(np.max(np.abs(f64(a[0])) @ np.abs(f64(a[1])), initial=0.0)) + 2.0
            except Exception:  # noqa: BLE001
                return 1.0
        return op_call("dense_bias_activation", ops.dense_bias_activation, [x, k, bias], dict(activation=act), ref,
                       rng, atol_scale=scale, rule="finite-only" if act == "softmax" else "exact")
    return make


def make_ops_pool(name, gpu=False):
    kind = "max" if name == "max_pool" else "avg"

    def make(rng):
        r = int(rng.integers(1, 4))
        n = choice(rng, [1, 2, 0])
        shape = (n,) + draw_shape(rng, r, hi=6, cap=216) + (choice(rng, [1, 2, 3]),)
        if rng.random() < 0.08:
            shape = shape[1:]
        x = float_input(rng, shape=shape, gpu=gpu, huge=0.03)
        ps = choose(rng, [1, 2, 2, 3, (2,) * r, (1,) * r], [0, -1, True, 1.5, (2,) * (r + 1), None])
        st = choose(rng, [None, None, 1, 2], [0, -1, True, 1.5])
        pad = choose(rng, ["valid", "same"], ["full", None, "bogus"])
        df = choose(rng, [None, "channels_last"], ["channels_first"], p_bad=0.05)

        def ref(x_, pool_size, strides, padding, data_format):
            x_ = np.asarray(x_)
            rank = x_.ndim - 2
            if data_format not in (None, "channels_last") or not 1 <= rank <= 3:
                raise ValueError("layout")
            p = _spatial_ref(pool_size, rank)
            s = p if strides is None else _spatial_ref(strides, rank)
            if x_.size == 0:
                return np.zeros((0,))  # the op's own emptiness rule is not fuzzed
            return ref_pool(x_, kind, p, s, _padding_ref(padding), 2)
        return op_call(name, getattr(ops, name), [x], dict(pool_size=ps, strides=st, padding=pad, data_format=df),
                       ref, rng, atol_scale=None if kind == "avg" else (lambda a, kw: 0.0))
    return make


def make_global_pool(gpu=False):
    def make(rng):
        x = float_input(rng, ndim=int(rng.integers(2, 6)) if rng.random() < 0.9 else int(rng.integers(0, 2)),
                        gpu=gpu, huge=0.03)
        kind = choose(rng, ["max", "avg"], ["mean", "bogus", None, "MAX"])

        def ref(kind_, x_):
            x_ = f64(x_)
            if kind_ not in ("max", "avg") or x_.ndim < 3:
                raise ValueError("global pool")
            if x_.shape[0] == 0:
                return np.zeros((0, x_.shape[-1]))
            if x_.size == 0:
                raise NoReference("pooling over no positions")
            ax = tuple(range(1, x_.ndim - 1))
            return x_.max(axis=ax) if kind_ == "max" else x_.mean(axis=ax)
        return op_call("global_pool", ops.global_pool, [kind, x], {}, ref, rng)
    return make


def make_moments(gpu=False):
    def make(rng):
        x = float_input(rng, ndim=int(rng.integers(1, 4)), gpu=gpu)
        axes = axis_arg(rng, np.ndim(x.value), none=False)
        keep = choice(rng, [False, True])

        def ref(x_, axes, keepdims):
            x_ = f64(x_)
            return (np.mean(x_, axis=axes, keepdims=keepdims), np.var(x_, axis=axes, keepdims=keepdims))
        return op_call("moments", ops.moments, [x, axes], dict(keepdims=keep), ref, rng,
                       atol_scale=lambda a, kw: amax(a[0]) ** 2 + 1)
    return make


def make_batch_normalization(gpu=False):
    def make(rng):
        x = float_input(rng, ndim=int(rng.integers(1, 4)), gpu=gpu)
        nd_ = np.ndim(x.value)
        axis = choose(rng, [-1, 0, nd_ - 1], [nd_, -nd_ - 1, 1.5, None])
        c = np.shape(x.value)[int(axis) % nd_] if nd_ and isinstance(axis, int) and not isinstance(axis, bool) \
            else 1
        stat = lambda pos=False: (float_input(rng, shape=(c if rng.random() < 0.93 else c + 1,), gpu=gpu,  # noqa
                                              special=0.05))
        mean, var = stat(), positive(stat(), 0.0, how="tensor")
        off = choice(rng, [None, stat()])
        sc = choice(rng, [None, stat()])
        eps = choose(rng, [1e-3, 1e-5], [-1.0, nan, "a"], p_bad=0.05)

        def ref(x_, m_, v_, axis, offset, scale, epsilon):
            x_ = f64(x_)
            ax = int(axis)
            if isinstance(axis, bool) or not -x_.ndim <= ax < x_.ndim:
                raise ValueError("axis")
            shape = [1] * x_.ndim
            shape[ax] = x_.shape[ax]
            b = lambda v: f64(v).reshape(shape)  # noqa: E731
            y = (x_ - b(m_)) / np.sqrt(b(v_) + float(epsilon))
            if scale is not None:
                y = y * b(scale)
            return y if offset is None else y + b(offset)
        return op_call("batch_normalization", ops.batch_normalization, [x, mean, var, axis],
                       dict(offset=off, scale=sc, epsilon=eps), ref, rng,
                       atol_scale=lambda a, kw: amax(a[0]) * 1e3 + 1e3)
    return make


def make_fused_batch_norm(gpu=False):
    def make(rng):
        x = float_input(rng, ndim=int(rng.integers(1, 5)), gpu=gpu)
        c = np.shape(x.value)[-1] if np.ndim(x.value) else 1
        vec = lambda: float_input(rng, shape=(c if rng.random() < 0.95 else c + 1,), gpu=gpu, special=0.03)  # noqa
        gamma, beta = choice(rng, [None, vec()]), choice(rng, [None, vec()])
        mm, mv = vec(), positive(vec(), 0.1, how="tensor")
        eps = choose(rng, [1e-3, 1e-5], [-1.0, nan, 0.0], p_bad=0.05)
        training = choice(rng, [True, False])

        def ref(x_, g_, b_, epsilon, training, mm_, mv_):
            x_ = f64(x_)
            if x_.ndim < 1 or (x_.size == 0 and training):
                raise ValueError("shape")
            ax = tuple(range(x_.ndim - 1))
            m, v = (x_.mean(axis=ax), x_.var(axis=ax)) if training else (f64(mm_), f64(mv_))
            for t in (g_, b_, mm_, mv_):
                if t is not None and np.shape(t) != (x_.shape[-1],):
                    raise ValueError("stat shape")
            if not float(epsilon) > 0:
                raise ValueError("epsilon")
            y = (x_ - m) / np.sqrt(v + float(epsilon))
            y = y * (1.0 if g_ is None else f64(g_)) + (0.0 if b_ is None else f64(b_))
            return y

        def run(*a, **kw):
            return ops.fused_batch_norm(*a, **kw)[0]
        return op_call("fused_batch_norm", run, [x, gamma, beta, eps, training, mm, mv], {}, ref, rng,
                       atol_scale=lambda a, kw: amax(a[0]) * 1e3 + 1e3, label="ops.fused_batch_norm")
    return make


def make_dropout(gpu=False):
    def make(rng):
        x = float_input(rng, gpu=gpu)
        A = Args(rng)
        rate = A.pick("rate", [0.0, 0.3, 0.5, 0.9], RATE_BAD)
        noise = A.pick("noise_shape", [None], [(1,), "a"], p_bad=0.05)
        seed = A.pick("seed", [None, 0, 1, 12345], ["a"], maybe=[-1, 2 ** 64, 1.5])

        def extra(got, args, kw):
            x_ = f64(args[0])
            g = f64(_to_host(got))
            if g.shape != x_.shape:
                raise Mismatch("wrong shape", f"shape {g.shape}, expected {x_.shape}")
            if not finite(x_) or g.size == 0:
                return
            keep = x_ / (1.0 - float(rate))
            ok = np.isclose(g, 0.0) | np.isclose(g, keep, rtol=1e-5, atol=1e-6)
            if not ok.all():
                i = _first(~ok)
                raise Mismatch("wrong values", f"entry {i} is {g[i]!r}: neither 0 nor x / (1 - rate) = {keep[i]!r}")
        return op_call("dropout", ops.dropout, [x, rate], dict(noise_shape=noise, seed=seed), None, rng,
                       invalid=A.invalid, check_extra=extra)
    return make


def make_one_hot(gpu=False):
    def make(rng):
        A = Args(rng)
        n = A.pick("num_classes", [1, 3, 4], [0, -1, True, 2.5, None, "3"], maybe=[2 ** 62])
        dt = choice(rng, ["int32", "int32", "int64", "uint8", "bool", "float32"])
        x = op_input(rng, dtype=dt, gpu=gpu, special=0.0)
        axis = A.pick("axis", [-1], [0, 1, 5], p_bad=0.1)
        dtype = A.pick("dtype", ["float32", "int32", "float64"], ["bogus"], p_bad=0.05)

        def ref(x_, num_classes, axis, dtype):
            x_ = np.asarray(x_)
            if x_.dtype.kind not in "iub":
                raise TypeError("labels")
            return (x_[..., None] == np.arange(int(num_classes))).astype(dtype)
        return op_call("one_hot", ops.one_hot, [x, n], dict(axis=axis, dtype=dtype), ref, rng, invalid=A.invalid)
    return make


def _xent_inputs(rng, gpu):
    n, k = choice(rng, [1, 2, 3, 0]), choice(rng, [1, 2, 3, 4])
    lead = (n,) if rng.random() < 0.8 else (n, 2)
    return lead, k


def _clipped(p, dt):
    """Keras's clip of probabilities to [1e-7, 1 - 1e-7], in the computation's dtype (in
    float32 1 - 1e-7 is 0.99999988)."""
    return f64(np.clip(np.asarray(p, dt), dt.type(1e-7), dt.type(1.0 - 1e-7)))


def in_either_precision(ref):
    """A cross-entropy reference with its clip in float32 and in float64: which one a
    call computes in depends on which input is a Tensor (the others take its dtype)."""
    def both(*a, **kw):
        return Either(tuple(ref(*a, clip_dtype=np.dtype(t), **kw) for t in (np.float32, np.float64, np.float16)))
    return both


def _cce_ref(t, o, from_logits=False, axis=-1, clip_dtype=None):
    dt = clip_dtype or float_of(o)
    t, o = f64(t), f64(o)
    if t.shape != o.shape:
        raise ValueError("shapes")
    if from_logits:
        return -np.sum(t * _log_softmax(o, axis), axis=axis)
    p = _clipped(o / o.sum(axis=axis, keepdims=True), dt)
    return -np.sum(t * np.log(p), axis=axis)


def make_categorical_crossentropy(gpu=False):
    def make(rng):
        lead, k = _xent_inputs(rng, gpu)
        t = Wrapped(np.eye(k, dtype=np.float32)[rng.integers(0, k, size=lead)], "tensor")
        if rng.random() < 0.2:
            t = float_input(rng, shape=lead + (k,), gpu=gpu, special=0.05)
        logits = choice(rng, [True, False])
        o = float_input(rng, shape=lead + (k if rng.random() < 0.92 else k + 1,), gpu=gpu, special=0.08)
        if not logits:
            o = positive(o, 0.01)
        axis = choose(rng, [-1], [0, 1, 5], p_bad=0.1)
        return op_call("categorical_crossentropy", ops.categorical_crossentropy, [t, o],
                       dict(from_logits=logits, axis=axis), in_either_precision(
                           lambda t_, o_, from_logits, axis, clip_dtype: _last_axis_only(
                               axis, np.ndim(o_), lambda: _cce_ref(t_, o_, from_logits, axis, clip_dtype))), rng,
                       rule="finite-only", atol_scale=lambda a, kw: 20.0)
    return make


def make_sparse_categorical_crossentropy(gpu=False):
    def make(rng):
        A = Args(rng)
        lead, k = _xent_inputs(rng, gpu)
        labels = rng.integers(0, k, size=lead)
        r = rng.random()
        if r < 0.06 and labels.size:
            labels.flat[0] = choice(rng, [k, -1, 10 * k])
            A.invalid.append(f"labels=out of range ({labels.flat[0]} for {k} classes)")
        y = labels.astype(choice(rng, ["int64", "int32", "float32"]))
        if r > 0.96 and y.size:
            y = y.astype(np.float64) + 0.5
            A.invalid.append("labels=fractional")
        if rng.random() < 0.15:
            y = y[..., None]
        logits = choice(rng, [True, False])
        o = float_input(rng, shape=lead + (k,), gpu=gpu, special=0.08)
        if not logits:
            o = positive(o, 0.01)

        def ref(t_, o_, from_logits, clip_dtype):
            t_ = np.asarray(t_)
            if t_.ndim == np.ndim(o_) and t_.shape[-1:] == (1,):
                t_ = t_[..., 0]
            oh = np.eye(np.shape(o_)[-1])[t_.astype(np.int64)]
            return _cce_ref(oh, o_, from_logits, clip_dtype=clip_dtype)
        return op_call("sparse_categorical_crossentropy", ops.sparse_categorical_crossentropy,
                       [Wrapped(y, choice(rng, ["tensor", "array"])), o], dict(from_logits=logits),
                       in_either_precision(ref), rng,
                       invalid=A.invalid, rule="finite-only", atol_scale=lambda a, kw: 20.0)
    return make


def make_binary_crossentropy(gpu=False):
    def make(rng):
        shape = draw_shape(rng, int(rng.integers(1, 3)), hi=4)
        t = Wrapped((rng.random(shape) < 0.5).astype(np.float32), "tensor")
        logits = choice(rng, [True, False])
        o = float_input(rng, shape=_broadcast_partner(rng, shape) if rng.random() < 0.2 else shape, gpu=gpu,
                        special=0.08)
        if not logits:
            o = positive(o, 0.0, hi=1.0)

        def ref(t_, o_, from_logits, clip_dtype):
            return make_binary_crossentropy_ref(t_, o_, from_logits, clip_dtype)
        return op_call("binary_crossentropy", ops.binary_crossentropy, [t, o], dict(from_logits=logits),
                       in_either_precision(ref), rng,
                       rule="finite-only", atol_scale=lambda a, kw: 20.0)
    return make


LOSS_NAMES = ["sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy", "mse"]


def make_fused_loss(gpu=False):
    def make(rng):
        A = Args(rng)
        name = A.pick("name", LOSS_NAMES, ["bogus", None, "MSE", "hinge"])
        n, k = choice(rng, [1, 2, 3]), choice(rng, [1, 2, 3, 4])
        logits = choice(rng, [True, False])
        p = float_input(rng, shape=(n, k), gpu=gpu, special=0.08)
        if not logits or name in ("mse",):
            p = positive(p, 0.01, hi=1.0)
        if name == "sparse_categorical_crossentropy":
            y = rng.integers(0, k, size=(n,))
            if rng.random() < 0.08:
                y[0] = choice(rng, [k, -1])
                A.invalid.append(f"labels=out of range ({y[0]} for {k} classes)")
        elif name == "categorical_crossentropy":
            y = np.eye(k)[rng.integers(0, k, size=n)]
        else:
            y = (rng.random((n, k)) < 0.5).astype(np.float64) if name == "binary_crossentropy" else \
                rng.standard_normal((n, k))
        if rng.random() < 0.05:
            y = np.ones((n + 1, k))
            A.invalid.append("y=of another length")

        def ref(nm, y_, p_, from_logits, clip_dtype):
            y_, p_ = np.asarray(y_), np.asarray(p_)
            if nm not in LOSS_NAMES:
                raise ValueError(nm)
            if nm == "mse":
                if y_.shape != p_.shape:
                    raise ValueError("shapes")
                return np.mean((f64(p_) - y_) ** 2)
            if nm == "binary_crossentropy":
                if y_.shape != p_.shape:
                    raise ValueError("shapes")
                return np.mean(make_binary_crossentropy_ref(y_, p_, from_logits, clip_dtype))
            if len(y_) != len(p_):
                raise ValueError("lengths")
            oh = np.eye(p_.shape[-1])[y_.astype(np.int64)] if nm == "sparse_categorical_crossentropy" else y_
            return np.mean(_cce_ref(oh, p_, from_logits, clip_dtype=clip_dtype))
        return op_call("fused_loss", ops.fused_loss, [name, Wrapped(y, "array"), p], dict(from_logits=logits),
                       in_either_precision(ref),
                       rng, invalid=A.invalid, rule="finite-only", atol_scale=lambda a, kw: 20.0)
    return make


def make_binary_crossentropy_ref(t, o, from_logits, clip_dtype=None):
    dt = clip_dtype or float_of(o)
    t, o = f64(t), f64(o)
    if from_logits:
        return np.maximum(o, 0) - o * t + np.log1p(np.exp(-np.abs(o)))
    p = _clipped(o, dt)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


def make_softmax(name, gpu=False):
    def make(rng):
        x = float_input(rng, gpu=gpu, huge=0.02)
        # Huge views along any axis too: softmax once reduced all 2**40+ elements before checking the
        # result's size (minutes, gigabytes); it now fails fast with MemoryError.
        kw = {"axis": axis_arg(rng, np.ndim(x.value), tuples=False, none=False)} if rng.random() < 0.5 else {}
        ref = (lambda x_, axis=-1: _stable_softmax(x_, axis)) if name == "softmax" else \
            (lambda x_, axis=-1: _log_softmax(x_, axis))
        return op_call(name, getattr(ops, name), [x], kw, ref, rng, rule="finite-only")
    return make


def make_softmax_logits(gpu=False):
    def make(rng):
        x = float_input(rng, ndim=int(rng.integers(1, 3)), gpu=gpu)
        via_softmax = rng.random() < 0.6

        def run(t):
            t = ops.convert_to_tensor(t, device=x.device) if not isinstance(t, cc.Tensor) else t
            y = ops.softmax(t) if via_softmax else t
            return ops.softmax_logits(y), t

        def check(out):
            (got, t), _ = out
            if via_softmax and got is not t:
                raise Mismatch("wrong values", "softmax_logits(softmax(t)) is not t")
            if not via_softmax and got is not None:
                raise Mismatch("wrong values", "softmax_logits of a tensor that is not a softmax output is not None")
        call = op_call("softmax_logits", run, [x], {}, None, rng, tape_ok=False,
                       label="(lambda t: ops.softmax_logits(ops.softmax(t)))" if via_softmax else "ops.softmax_logits")
        call.check = check
        return call
    return make


def _upsample_ref(x_, size, interpolation="nearest"):
    x_ = f64(x_)
    sz = [int(s) for s in size] if not np.isscalar(size) else None
    if sz is None or len(sz) != 2 or any(isinstance(s, bool) or int(s) != s or s < 1 for s in size) or x_.ndim != 4:
        raise ValueError("upsample arguments")
    if interpolation == "nearest":
        return np.repeat(np.repeat(x_, sz[0], 1), sz[1], 2)
    if interpolation != "bilinear":
        raise ValueError(interpolation)
    if not x_.size:
        n, h, w, c = x_.shape
        return np.zeros((n, h * sz[0], w * sz[1], c))
    from skimage.transform import rescale
    return np.stack([rescale(v, tuple(sz), order=1, mode="edge", anti_aliasing=False, channel_axis=-1) for v in x_])


def make_upsample2d(gpu=False):
    def make(rng):
        shape = (choice(rng, [1, 2]),) + draw_shape(rng, 2, hi=4) + (choice(rng, [1, 2]),)
        if rng.random() < 0.08:
            shape = shape[1:]
        x = float_input(rng, shape=shape, gpu=gpu, huge=0.02)
        size = choose(rng, [(2, 2), (1, 3), (3, 1), [2, 2]], [(0, 2), (-1, 2), (2,), 2, (2.5, 2), (True, 2), None])
        interp = choose(rng, ["nearest", "bilinear"], ["bicubic", None, "NEAREST"])
        return op_call("upsample2d", ops.upsample2d, [x, size], dict(interpolation=interp), _upsample_ref, rng,
                       rule="finite-only" if interp == "bilinear" else "exact")
    return make


def make_resize(gpu=False):
    def make(rng):
        single = rng.random() < 0.2
        shape = draw_shape(rng, 2, hi=4) + (choice(rng, [1, 2]),)
        shape = shape if single else (choice(rng, [1, 2]),) + shape
        x = float_input(rng, shape=shape, gpu=gpu)
        h, w = shape[-3], shape[-2]
        size = choose(rng, [(2 * h, 2 * w), (h, w), (h, 3 * w), (h + 1, w)], [(0, w), (-h, w), (h,), None, "a"])
        interp = choose(rng, ["bilinear", "nearest"], ["bicubic", None])

        def ref(x_, size_, interpolation):
            x4 = f64(x_) if not single else f64(x_)[None]
            hh, ww = x4.shape[1], x4.shape[2]
            if len(size_) != 2 or size_[0] % hh or size_[1] % ww or min(size_) < 1:
                raise ValueError("not an integer multiple: no reference")
            out = _upsample_ref(x4, (size_[0] // hh, size_[1] // ww), interpolation)
            return out[0] if single else out
        return op_call("image.resize", ops.image.resize, [x, size], dict(interpolation=interp), ref, rng,
                       rule="finite-only", label="ops.image.resize")
    return make


# ---------------------------------------------------------------------- constructors and conversions
DTYPES_ARG = ["float32", "float64", "int32", "bool", np.float32, "int8"]
DTYPES_ARG_BAD = ["bogus", "float33", 5]
SHAPE_ARGS = [(2, 3), 3, (), (0,), (1, 2, 1), [2, 2]]
SHAPE_ARGS_BAD = [(-1,), (2.5,), (True, 2), None, "3", [2, None], (2 ** 21, 2 ** 21), (2 ** 62,), -1]
DEVICE_ARGS, DEVICE_ARGS_BAD = [None, "cpu", "CPU"], ["tpu", "", 1, "cpu:0"]


def make_constructor(name, gpu=False):
    def make(rng):
        A = Args(rng)
        if name in ("zeros", "ones", "full"):
            dev = "gpu" if gpu else A.pick("device", DEVICE_ARGS, DEVICE_ARGS_BAD, p_bad=0.08)
            shape = A.pick("shape", SHAPE_ARGS, SHAPE_ARGS_BAD, p_bad=0.15)
            dtype = A.pick("dtype", DTYPES_ARG + ([None] if name == "full" else []), DTYPES_ARG_BAD, p_bad=0.08)
            if name == "full":
                fill = choose(rng, [0, 1.5, -2, nan, inf, True], ["a", None, 2 ** 70])  # numpy decides
                return op_call(name, ops.full, [shape, fill], dict(dtype=dtype, device=dev),
                               lambda s, f, dtype, device: np.full(s, f, dtype=dtype), rng, invalid=A.invalid,
                               tape_ok=False)
            return op_call(name, getattr(ops, name), [shape], dict(dtype=dtype, device=dev),
                           lambda s, dtype, device: getattr(np, name)(s, dtype=dtype), rng, invalid=A.invalid,
                           tape_ok=False)
        if name in ("zeros_like", "ones_like", "full_like"):
            x = op_input(rng, gpu=gpu)
            dtype = A.pick("dtype", [None] + DTYPES_ARG, DTYPES_ARG_BAD, p_bad=0.08)
            if name == "full_like":
                fill = choose(rng, [0, 1.5, nan, True, None], ["a", 2 ** 70])  # numpy decides
                return op_call(name, ops.full_like, [x, fill], dict(dtype=dtype),
                               lambda x_, f, dtype: np.full_like(x_, f, dtype=dtype), rng, invalid=A.invalid,
                               tape_ok=False)
            return op_call(name, getattr(ops, name), [x], dict(dtype=dtype),
                           lambda x_, dtype: getattr(np, name)(x_, dtype=dtype), rng, invalid=A.invalid, tape_ok=False)
        if name == "arange":
            start = choose(rng, [0, 1, 2.5, -3], [nan, inf, "a", None, 2 ** 62])
            stop = choose(rng, [None, 5, 10, 0.5], [nan, inf, "b"])
            step = choose(rng, [1, 2, 0.5, -1], [0, 0.0, nan, None])
            dtype = choose(rng, [None, "float32", "int32"], ["bogus"])
            return op_call(name, ops.arange, [start, stop, step], dict(dtype=dtype),
                           lambda a, b, c, dtype: np.arange(a, b, c, dtype=dtype), rng, tape_ok=False)
        if name == "eye":
            n = choose(rng, [0, 1, 3], [-1, 2.5, True, None, 2 ** 21, "3"])
            m = choose(rng, [None, 2, 4], [-2, 1.5])
            k = choose(rng, [0, 1, -1, 5], [1.5, None])
            dtype = choose(rng, ["float32", "int32", "float64"], ["bogus"])
            return op_call(name, ops.eye, [n, m, k], dict(dtype=dtype),
                           lambda n_, m_, k_, dtype: np.eye(n_, m_, k_, dtype=dtype), rng, tape_ok=False)
        x = op_input(rng, gpu=gpu, huge=0.0 if name == "nonzero" else 0.02)  # nonzero scans every element
        if name == "cast":
            dtype = choose(rng, DTYPES_ARG + ["float16", "uint8", "int64"], DTYPES_ARG_BAD + [None, "complex64"])
            return op_call(name, ops.cast, [x, dtype], {}, lambda x_, d: np.asarray(x_).astype(d), rng)
        if name == "convert_to_tensor":
            dtype = choose(rng, [None, None, "float32", "int32", "float64"], ["bogus", object])
            device = "gpu" if gpu else choose(rng, [None, "cpu"], ["tpu", 1])
            return op_call(name, ops.convert_to_tensor, [x], dict(dtype=dtype, device=device),
                           lambda x_, dtype, device: _need(device in (None, "cpu", "gpu"),
                                                           lambda: np.asarray(x_, dtype=dtype)), rng)
        if name == "convert_to_numpy":
            return op_call(name, ops.convert_to_numpy, [x], {}, np.asarray, rng, tape_ok=False)
        refs = {"shape": lambda x_: tuple(np.shape(x_)), "dtype": lambda x_: str(np.asarray(x_).dtype.newbyteorder("=")),  # Keras's names: no byte order
                "size": lambda x_: int(np.size(x_)), "ndim": lambda x_: int(np.ndim(x_)),
                "nonzero": lambda x_: np.nonzero(x_), "is_tensor": None}
        if name == "is_tensor":
            def check_is(got, args, kw, x=x):
                if got is not (x.how == "tensor"):
                    raise Mismatch("wrong values", f"is_tensor returned {got!r} for a {x.how}")
            return op_call(name, ops.is_tensor, [x], {}, None, rng, check_extra=check_is, tape_ok=False)
        return op_call(name, getattr(ops, name), [x], {}, refs[name], rng, tape_ok=False)
    return make


CONSTRUCTORS = ["zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "arange", "eye", "cast",
                "convert_to_tensor", "convert_to_numpy", "shape", "dtype", "size", "ndim", "nonzero", "is_tensor"]

TENSOR_METHODS = {  # Tensor method: (argument choices, numpy equivalent on the array)
    "sum": [(), (0,), (-1,)], "mean": [(), (0,)], "max": [(), (0,)], "min": [(), (-1,)], "prod": [()],
    "any": [()], "all": [()], "argmax": [(), (0,)], "argmin": [()], "std": [()], "var": [(), (0,)],
    "astype": [("float64",), ("int32",), ("bogus",)], "clip": [(0, 1), (None, 0.5)], "copy": [()],
    "flatten": [()], "ravel": [()], "reshape": [(-1,), ((-1, 1),), (2, -1)], "squeeze": [()],
    "transpose": [()], "item": [()], "tolist": [()], "T": None, "__len__": [()], "__float__": [()],
    "__int__": [()], "__bool__": [()], "__iter__": [()], "__index__": [()], "__repr__": [()],
}


def make_tensor_method(rng):
    method = choice(rng, list(TENSOR_METHODS))
    x = op_input(rng)
    x = Wrapped(x.value, "tensor", x.device)
    args = () if TENSOR_METHODS[method] is None else choice(rng, TENSOR_METHODS[method])
    if method in ("sum", "mean", "max", "min", "argmax", "var") and args and np.ndim(x.value) == 0:
        args = ()

    def call(t, *a):
        if method == "T":
            return t.T
        if method == "__iter__":
            return list(iter(t))
        if method in ("__len__", "__float__", "__int__", "__bool__", "__index__", "__repr__"):
            return {"__len__": len, "__float__": float, "__int__": int, "__bool__": bool,
                    "__index__": lambda v: [0, 1, 2][v], "__repr__": repr}[method](t)
        return getattr(t, method)(*a)

    def ref(a, *rest):
        a = np.asarray(a)
        if method == "T":
            return a.T
        if method == "__iter__":
            if a.ndim == 0:
                raise TypeError("iteration over a 0-d array")
            return list(a)
        if method == "__repr__":
            return None
        if method == "__index__":
            if a.dtype.kind not in "iu" or a.ndim:
                raise TypeError("not an index")
            return [0, 1, 2][int(a)]
        if method in ("__len__", "__float__", "__int__", "__bool__"):
            return {"__len__": len, "__float__": float, "__int__": int, "__bool__": bool}[method](a)
        return getattr(a, method)(*rest)

    def ref_wrapped(*a):
        v = ref(*a)
        return np.asarray(v) if isinstance(v, (np.generic, np.ndarray)) else v
    allow = INDEX_ERRORS if method == "__index__" else ()
    return op_call(method, call, [x, *args], {}, (None if method == "__repr__" else ref_wrapped), rng,
                   label=f"(lambda t, *a: t.{method}(*a))" if method != "T" else "(lambda t: t.T)", allow=allow,
                   tape_ok=method not in ("item", "tolist", "__len__", "__float__", "__int__", "__bool__",
                                          "__index__", "__repr__", "__iter__"))


def op_entries(gpu=False):
    e = {}
    for n in UNARY:
        e[n] = make_unary(n, gpu)
    for n in BINARY:
        e[n] = make_binary(n, gpu)
    e["matmul"], e["dot"] = make_matmul("matmul", gpu), make_matmul("dot", gpu)
    e["where"], e["clip"] = make_where(gpu), make_clip(gpu)
    for n in REDUCTIONS:
        e[n] = make_reduction(n, gpu)
    for n in SHAPE_OPS:
        e[n] = make_shape_op(n, gpu)
    e["conv"], e["conv_bias_activation"] = make_conv("conv", gpu), make_conv("conv_bias_activation", gpu)
    e["conv_transpose"], e["depthwise_conv"] = make_conv_transpose(gpu), make_depthwise_conv(gpu)
    e["dense_bias_activation"] = make_dense(gpu)
    if not gpu:  # (on the GPU too once gpu:380, fused_batch_norm's float32 CPU/GPU split, is settled: adding
        # entries there reshuffles the GPU cases onto it)
        e["adaptive_average_pool"] = make_adaptive_pool("adaptive_average_pool", gpu)
        e["adaptive_max_pool"] = make_adaptive_pool("adaptive_max_pool", gpu)
        e["separable_conv"] = make_separable_conv(gpu)
    e["max_pool"], e["average_pool"] = make_ops_pool("max_pool", gpu), make_ops_pool("average_pool", gpu)
    e["global_pool"], e["moments"] = make_global_pool(gpu), make_moments(gpu)
    e["batch_normalization"], e["fused_batch_norm"] = make_batch_normalization(gpu), make_fused_batch_norm(gpu)
    e["dropout"], e["one_hot"] = make_dropout(gpu), make_one_hot(gpu)
    e["categorical_crossentropy"] = make_categorical_crossentropy(gpu)
    e["sparse_categorical_crossentropy"] = make_sparse_categorical_crossentropy(gpu)
    e["binary_crossentropy"], e["fused_loss"] = make_binary_crossentropy(gpu), make_fused_loss(gpu)
    e["softmax"], e["log_softmax"] = make_softmax("softmax", gpu), make_softmax("log_softmax", gpu)
    e["softmax_logits"] = make_softmax_logits(gpu)
    e["upsample2d"], e["image.resize"] = make_upsample2d(gpu), make_resize(gpu)
    for n in CONSTRUCTORS:
        e[n] = make_constructor(n, gpu)
    if not gpu:
        e["Tensor methods"] = make_tensor_method
    return e


OPS = op_entries()


# ============================================================================ layers
# Every layer class: constructed with random (sometimes invalid) arguments, then called on
# random input (eagerly, training or not), or placed in Sequential([Input(shape), layer])
# with shapes up to 2**62 (the output shape and parameter count are computed with Python
# ints) and predicted. The reference is a numpy forward pass with the layer's own weights.
ACT_NAMES = ["linear", "relu", "sigmoid", "tanh", "softmax", "gelu", "silu", "swish", "elu", "selu", "leaky_relu",
             "log_softmax", "softplus", "relu6", "hard_sigmoid", None]
ACT_BAD = ["bogus", 5, "", "RELU_"]
ACT_REF = {
    "linear": lambda z: z, "relu": lambda z: np.where(np.isnan(z), z, np.maximum(z, 0)), "sigmoid": special.expit,
    "tanh": np.tanh, "softmax": _stable_softmax,
    "gelu": lambda z: _gelu(z, approximate=False), "silu": lambda z: z * special.expit(z),
    "swish": lambda z: z * special.expit(z), "elu": _elu, "selu": UNARY["selu"][0],
    "leaky_relu": lambda z: np.where(z > 0, z, 0.2 * z), "log_softmax": _log_softmax,
    "softplus": lambda z: np.logaddexp(0, z), "relu6": UNARY["relu6"][0], "hard_sigmoid": UNARY["hard_sigmoid"][0],
}
INITS = ["glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform", "zeros",
         "ones", "random_normal", "random_uniform"]
INITS_BAD = ["bogus_init", 5, ""]  # Keras 3 accepts None and "orthogonal"


def _common_kwargs(rng, A):
    kw = {}
    r = rng.random()
    if r < 0.06:
        kw["name"] = A.pick("name", ["my_layer", "a/b"], ["", 5])
    elif r < 0.1:
        kw["dtype"] = A.pick("dtype", ["float32", "float64"], ["float16", "int32", 5])
    elif r < 0.12:
        kw["trainable"] = choice(rng, [True, False])
    elif r < 0.13:
        kw["bogus_keyword"] = 1
        A.invalid.append("bogus_keyword=1")
    return kw


def _pos(A, name, good, huge=True):
    return A.pick(name, good, POS_INT_BAD, maybe=[2.0, np.int64(2)] + ([2 ** 62, 2 ** 40] if huge else []))


def _tuple_arg(A, rng, name, rank, good_ints, none_ok=False, huge=True):
    good = list(good_ints) + [tuple(choice(rng, good_ints) for _ in range(rank))] + ([None] if none_ok else [])
    bad = [0, -1, True, 1.5, (0,) * rank, tuple([1] * (rank + 1)), (True,) * rank, "2", [1.5] * rank]
    maybe = [np.int64(2), 2.0] + ([2 ** 62, (2 ** 62,) * rank] if huge else [])
    if not none_ok:
        bad.append(None)
    return A.pick(name, good, bad, maybe=maybe)


def _act(A):
    return A.pick("activation", ACT_NAMES, ACT_BAD)


def ctor_dense(rng, A, shape):
    return (_pos(A, "units", [1, 2, 3, 5]),), dict(activation=_act(A), use_bias=choice(rng, [True, False]),
                                                   kernel_initializer=A.pick("kernel_initializer", INITS, INITS_BAD),
                                                   bias_initializer=A.pick("bias_initializer", INITS, INITS_BAD))


def ctor_conv(rank):
    def ctor(rng, A, shape):
        filters = _pos(A, "filters", [1, 2, 3, 4])
        kw = dict(strides=_tuple_arg(A, rng, "strides", rank, [1, 1, 2]),
                  padding=A.pick("padding", ["valid", "same", "SAME"] + (["causal"] if rank == 1 else []),
                                 ["full", None, 1, ""] + ([] if rank == 1 else ["causal"])),
                  dilation_rate=_tuple_arg(A, rng, "dilation_rate", rank, [1, 1, 2]), activation=_act(A),
                  use_bias=choice(rng, [True, False]))
        if rng.random() < 0.3:  # Keras 3's grouped convolution (the input channels must divide too: at build)
            kw["groups"] = A.pick("groups", [1, 2, 2, 3], [0, -1, 1.5, "2", None, True], p_bad=0.08)
            g, f = kw["groups"], filters
            A.invalid_if(all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (g, f)) and f % g,
                         f"filters={f} not a multiple of groups={g}")
        return (filters, _tuple_arg(A, rng, "kernel_size", rank, [1, 2, 3])), kw
    return ctor


def ctor_pool(rank):
    def ctor(rng, A, shape):
        return (), dict(pool_size=_tuple_arg(A, rng, "pool_size", rank, [1, 2, 2, 3]),
                        strides=_tuple_arg(A, rng, "strides", rank, [1, 2], none_ok=True),
                        padding=A.pick("padding", ["valid", "same"], ["full", None, 1]))
    return ctor


def ctor_none(rng, A, shape):
    return (), {}


def ctor_reshape(rng, A, shape):
    n = math.prod(shape) if shape else 1
    good = [(n,), (-1,), (1, n), (n, 1), tuple(shape[::-1]) or (1,), (-1, 1)]
    bad = [(0,), (-1, -1), (-2,), (1.5,), None, "3", (True,)]
    return (A.pick("target_shape", good, bad, maybe=[(2 ** 40, -1), (2 ** 31, 2 ** 31), (n + 1,)]),), {}


def ctor_activation(rng, A, shape):
    return (_act(A),), {}


def _double(x):
    return x * 2.0


LAMBDA_FNS = {"square": (ops.square, np.square), "relu": (ops.relu, ACT_REF["relu"]),
              "_double": (_double, lambda z: z * 2)}


def ctor_lambda(rng, A, shape):
    fn = A.pick("function", list(LAMBDA_FNS), [None, 5])
    f = LAMBDA_FNS[fn][0] if fn in LAMBDA_FNS else fn
    return (f,), dict(output_shape=choice(rng, [None, None, tuple(shape)]))


def ctor_upsampling(rng, A, shape):
    return (), dict(size=_tuple_arg(A, rng, "size", 2, [1, 2, 3]),
                    interpolation=A.pick("interpolation", ["nearest", "bilinear", "NEAREST"], ["cubic", None, 5]),
                    data_format=A.pick("data_format", [None, "channels_last"], ["channels_first", "x"], p_bad=0.05))


def ctor_batchnorm(rng, A, shape):
    return (), dict(axis=A.pick("axis", [-1], [1.5, None], maybe=[0, 1, 3], p_bad=0.05),
                    momentum=A.pick("momentum", [0.99, 0.9, 0.0, 1.0], [-0.1, 1.5, nan, "a", None]),
                    epsilon=A.pick("epsilon", [1e-3, 1e-5], [0.0, -1.0, nan, "a"], maybe=[inf]),
                    center=choice(rng, [True, False]), scale=choice(rng, [True, False]),
                    gamma_initializer=A.pick("gamma_initializer", ["ones", "random_uniform"], INITS_BAD),
                    moving_variance_initializer=A.pick("moving_variance_initializer", ["ones", "random_uniform"],
                                                       ["bogus_init"]))


def ctor_dropout(rng, A, shape):
    return (A.pick("rate", [0.0, 0.3, 0.5, 0.9], RATE_BAD),), dict(
        seed=A.pick("seed", [None, 0, 1, 7], ["a", 1 + 1j], maybe=[-1, 1.5, 2 ** 64]))


def ctor_concatenate(rng, A, shape):
    return (), dict(axis=A.pick("axis", [-1, -1, 1], [1.5, "x", None], maybe=[0, 2, -2, 5, -5]))


FACTORS = [0.1, 0.5, (-0.2, 0.3), 0.0, 1.0, [0.1, 0.2]]
FACTORS_BAD = [1.5, -2.0, nan, inf, "a", None, (0.1,), (1, 2, 3)]
FILL_MODES = ["reflect", "wrap", "constant", "nearest"]


def _aug_common(rng, A):
    return dict(fill_mode=A.pick("fill_mode", FILL_MODES, ["bogus", None, "REFLECT"]),
                interpolation=A.pick("interpolation", ["bilinear", "nearest"], ["bicubic", None]),
                seed=A.pick("seed", [None, 0, 3], ["a"], maybe=[-1, 1.5]),
                fill_value=A.pick("fill_value", [0.0, 1.5, -2], [nan, inf, "a", None], maybe=[1e308, True]))


def ctor_flip(rng, A, shape):
    return (), dict(mode=A.pick("mode", ["horizontal", "vertical", "horizontal_and_vertical"], ["diagonal", None, 1]),
                    seed=A.pick("seed", [None, 0, 3], ["a"], maybe=[-1, 1.5]))


def ctor_translation(rng, A, shape):
    return (A.pick("height_factor", FACTORS, FACTORS_BAD), A.pick("width_factor", FACTORS, FACTORS_BAD)), \
        _aug_common(rng, A)


def ctor_rotation(rng, A, shape):
    return (A.pick("factor", FACTORS + [2.0, (-1.0, 1.0)], [nan, inf, "a", None, (0.1,)]),), _aug_common(rng, A)


def ctor_zoom(rng, A, shape):
    return (A.pick("height_factor", FACTORS, FACTORS_BAD),), dict(
        width_factor=A.pick("width_factor", [None] + FACTORS, [f for f in FACTORS_BAD if f is not None]),
        **_aug_common(rng, A))


VALUE_RANGES, VALUE_RANGES_BAD = [(0, 255), (0, 1), (-1.0, 1.0), [0, 1]], [(0,), None, (0, inf), "a", (nan, 1)]


def ctor_contrast(rng, A, shape):
    return (A.pick("factor", [0.1, 0.5, (0.1, 0.2), 0.0, 0.9], [-0.1, nan, inf, "a", None, (0.1,)],
                   maybe=[1.5]),), dict(value_range=A.pick("value_range", VALUE_RANGES, VALUE_RANGES_BAD),
                                        seed=A.pick("seed", [None, 0], ["a"]))


def ctor_brightness(rng, A, shape):
    return (A.pick("factor", [0.1, 0.5, (-0.2, 0.1), 0.0, 1.0, -1.0], [1.5, -2.0, nan, inf, "a", None]),), dict(
        value_range=A.pick("value_range", VALUE_RANGES, VALUE_RANGES_BAD), seed=A.pick("seed", [None, 0], ["a"]))


# ---------------------------------------------------------------------- layer references (float64)
def _w(v):
    return None if v is None else f64(v.numpy())


def ref_dense(layer, x, training):
    z = x @ _w(layer.kernel) + (0.0 if layer.bias is None else _w(layer.bias))
    return _act_layer(layer, z)


def _act_layer(layer, z):
    a = layer.activation
    if not isinstance(a, str):
        raise NoReference("a user activation")
    return ACT_REF[a](z)


def ref_conv(layer, x, training):
    w, g, pad = _w(layer.kernel), layer.groups, layer.padding
    if x.ndim != w.ndim or x.shape[-1] % g or x.shape[-1] // g != w.shape[-2]:
        raise ValueError(f"{x.shape[-1]} input channels in {g} groups for a kernel {w.shape}")
    if pad == "causal":  # Conv1D: the steps left-padded by the dilated kernel's reach, then 'valid'
        x = np.pad(x, ((0, 0), ((layer.kernel_size[0] - 1) * layer.dilation_rate[0], 0), (0, 0)))
        pad = "valid"
    cg, fg = x.shape[-1] // g, layer.filters // g
    z = np.concatenate([conv_reference(x[..., i * cg:(i + 1) * cg], w[..., i * fg:(i + 1) * fg], list(layer.strides),
                                       pad, list(layer.dilation_rate)) for i in range(g)], axis=-1)
    return _act_layer(layer, z + (0.0 if layer.bias is None else _w(layer.bias)))


def ref_pool_layer(layer, x, training):
    if any(k > 4 * max(n, 1) for k, n in zip(layer.pool_size, x.shape[1:-1])):
        raise NoReference("a window far larger than the input")
    return ref_pool(x, layer.kind, list(layer.pool_size), list(layer.strides), layer.padding, 2)





def ref_global(layer, x, training):
    ax = tuple(range(1, x.ndim - 1))
    return x.max(axis=ax) if layer.kind == "max" else x.mean(axis=ax)


def ref_flatten(layer, x, training):
    return x.reshape((len(x),) + _expected_shape("Flatten", layer, x.shape[1:]))


def ref_reshape(layer, x, training):
    return x.reshape((len(x),) + _expected_shape("Reshape", layer, x.shape[1:]))


def ref_activation(layer, x, training):
    return _act_layer(layer, x)


def ref_lambda(layer, x, training):
    for name, (f, ref) in LAMBDA_FNS.items():
        if layer.function is f:
            return ref(x)
    raise NoReference("unknown function")


def ref_upsampling(layer, x, training):
    return _upsample_ref(x, layer.size, str(layer.interpolation).lower())


def ref_batchnorm(layer, x, training, before=None):
    if _feature_axes(layer.axis, x.ndim) != (x.ndim - 1,):  # (an axis is resolved against the input at build)
        raise NoReference("the reference covers the last axis only")
    g = _w(layer.gamma) if layer.scale else 1.0
    b = _w(layer.beta) if layer.center else 0.0
    if training and layer.trainable:
        ax = tuple(range(x.ndim - 1))
        m, v = x.mean(axis=ax), x.var(axis=ax)
    else:
        m, v = before
    return (x - m) / np.sqrt(v + layer.epsilon) * g + b


def ref_identity(layer, x, training):
    if training:
        raise NoReference("random in training")
    return x


# ---------------------------------------------------------------------- Keras 3's other layer families
# Constructors (valid and invalid arguments, Keras 3's names), numpy references (float64,
# from the layer's own weights) and output shapes (Python ints, for the symbolic calls).
# A reference raises ValueError where the layer must refuse the input (an axis out of
# range, a crop larger than the input), NoReference where it cannot judge.
def _ints_of(v, rank):
    """``v`` (an int or a tuple) as ``rank`` ints, or None when it is not that."""
    vals = (v,) * rank if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else v
    try:
        vals = tuple(vals)
    except TypeError:
        return None
    if len(vals) != rank or any(isinstance(t, bool) or not isinstance(t, (int, np.integer)) for t in vals):
        return None
    return tuple(int(t) for t in vals)


def _flag_pick(A, name, good=(True, False)):
    return A.pick(name, list(good), ["yes", 2.5], p_bad=0.05)


def ctor_conv_transpose(rank):
    def ctor(rng, A, shape):
        strides = _tuple_arg(A, rng, "strides", rank, [1, 1, 2, 3])
        op = A.pick("output_padding", [None, None, 0, 1], [-1, 1.5, "1", (0,) * (rank + 1), (True,) * rank])
        s, o = _ints_of(strides, rank), _ints_of(op, rank) if op is not None else None
        A.invalid_if(s is not None and o is not None and any(p >= q for p, q in zip(o, s)),
                     f"output_padding={fmt(op)} >= strides={fmt(strides)}")
        return (_pos(A, "filters", [1, 2, 3]), _tuple_arg(A, rng, "kernel_size", rank, [1, 2, 3])), dict(
            strides=strides, padding=A.pick("padding", ["valid", "same", "SAME"], ["full", "causal", None, 1]),
            output_padding=op, dilation_rate=_tuple_arg(A, rng, "dilation_rate", rank, [1, 1, 1, 2], huge=False),
            activation=_act(A), use_bias=choice(rng, [True, False]),
            kernel_initializer=A.pick("kernel_initializer", INITS, INITS_BAD, p_bad=0.04))
    return ctor


def ctor_depthwise(rank):
    def ctor(rng, A, shape):
        return (_tuple_arg(A, rng, "kernel_size", rank, [1, 2, 3]),), dict(
            strides=_tuple_arg(A, rng, "strides", rank, [1, 1, 2]),
            padding=A.pick("padding", ["valid", "same"], ["full", None, 1]),
            depth_multiplier=_pos(A, "depth_multiplier", [1, 1, 2, 3], huge=False),
            dilation_rate=_tuple_arg(A, rng, "dilation_rate", rank, [1, 1, 2], huge=False), activation=_act(A),
            use_bias=choice(rng, [True, False]),
            depthwise_initializer=A.pick("depthwise_initializer", INITS, INITS_BAD, p_bad=0.04))
    return ctor


def ctor_separable(rank):
    def ctor(rng, A, shape):
        return (_pos(A, "filters", [1, 2, 3]), _tuple_arg(A, rng, "kernel_size", rank, [1, 2, 3])), dict(
            strides=_tuple_arg(A, rng, "strides", rank, [1, 1, 2]),
            padding=A.pick("padding", ["valid", "same"], ["full", None, 1]),
            dilation_rate=_tuple_arg(A, rng, "dilation_rate", rank, [1, 1, 2], huge=False),
            depth_multiplier=_pos(A, "depth_multiplier", [1, 1, 2], huge=False), activation=_act(A),
            use_bias=choice(rng, [True, False]),
            pointwise_initializer=A.pick("pointwise_initializer", INITS, INITS_BAD, p_bad=0.04))
    return ctor


def ctor_adaptive(rank):
    def ctor(rng, A, shape):
        return (_tuple_arg(A, rng, "output_size", rank, [1, 2, 3, 4], huge=False),), dict(
            data_format=A.pick("data_format", [None, "channels_last"], ["channels_first", "x"], p_bad=0.05))
    return ctor


def ctor_global(rng, A, shape):
    return (), dict(keepdims=A.pick("keepdims", [False, True], ["yes", 1, None], p_bad=0.05),
                    data_format=A.pick("data_format", [None, "channels_last"], ["channels_first", "x"], p_bad=0.05))


def _axis_pick(A, name, shape, lists=True, none_ok=False):
    """A feature axis of inputs of ``shape`` (batch first), sometimes one out of range
    (the reference decides), or a non-integer (invalid)."""
    nd = len(shape) + 1
    good = [-1, -1, nd - 1] + ([[-1], [1, -1] if nd > 2 else [-1]] if lists else [])
    return A.pick(name, good, ["a", 1.5] + ([None] if not none_ok else []) + ([[]] if lists else []),
                  maybe=[0, nd, -nd - 1, 1, -2] + ([[1, 1]] if lists else []))


def _eps_pick(A, good=(1e-3, 1e-5, 1e-6)):
    return A.pick("epsilon", list(good), [-1.0, nan, inf, "a", None], maybe=[0.0])


def ctor_layernorm(rng, A, shape):
    return (), dict(axis=_axis_pick(A, "axis", shape), epsilon=_eps_pick(A), center=_flag_pick(A, "center"),
                    scale=_flag_pick(A, "scale"), rms_scaling=choice(rng, [False, False, True]),
                    gamma_initializer=A.pick("gamma_initializer", ["ones", "random_uniform"], INITS_BAD, p_bad=0.04),
                    beta_initializer=A.pick("beta_initializer", ["zeros", "random_uniform"], INITS_BAD, p_bad=0.04))


def ctor_groupnorm(rng, A, shape):
    kw = dict(axis=A.pick("axis", [-1, -1], ["a", 1.5, None], maybe=[1, -2, 0, 5]), epsilon=_eps_pick(A),
              center=_flag_pick(A, "center"), scale=_flag_pick(A, "scale"),
              gamma_initializer=A.pick("gamma_initializer", ["ones", "random_uniform"], INITS_BAD, p_bad=0.04))
    if rng.random() < 0.9:  # (else Keras's default, 32 groups)
        kw["groups"] = A.pick("groups", [1, 1, 2, 3, -1], [0, -2, 1.5, "a", None, True])
    return (), kw


def ctor_rmsnorm(rng, A, shape):
    return (), dict(axis=_axis_pick(A, "axis", shape), epsilon=_eps_pick(A, (1e-6, 1e-3)))


def ctor_unitnorm(rng, A, shape):
    return (), dict(axis=_axis_pick(A, "axis", shape))


def ctor_normalization(rng, A, shape):
    c = shape[-1] if shape and shape[-1] <= 8 else 2  # (huge symbolic shapes: statistics of a few)
    kw = dict(axis=A.pick("axis", [-1, -1, None], ["a", 1.5], maybe=[0, 1, (1, -1)]),
              invert=_flag_pick(A, "invert", (False, True)))
    r = rng.random()
    if r < 0.35:
        kw["mean"], kw["variance"] = choice(rng, [(0.5, 4.0), (-1.0, 0.0), ([0.5] * c, [2.0] * c),
                                                   (list(range(c)), [1.0 + i for i in range(c)])])
    elif r < 0.45:
        k, v = choice(rng, [("mean", 1.0), ("variance", 1.0)])
        kw[k] = A.pick(k, [v], [v], p_bad=1.0)  # one without the other
    elif r < 0.5:
        kw["mean"], kw["variance"] = 0.0, A.pick("variance", [1.0], [-1.0, nan, "a"], p_bad=1.0)
    return (), kw


def ctor_alpha_dropout(rng, A, shape):
    return (A.pick("rate", [0.0, 0.3, 0.5, 0.9], RATE_BAD),), dict(
        seed=A.pick("seed", [None, 0, 1, 7], ["a", 1 + 1j], maybe=[-1, 1.5, 2 ** 64]))


def ctor_spatial_dropout(rank):
    def ctor(rng, A, shape):
        kw = dict(seed=A.pick("seed", [None, 0, 3], ["a"], maybe=[-1, 1.5]))
        if rank > 1:
            kw["data_format"] = A.pick("data_format", [None, "channels_last", "channels_first"], ["x", 5],
                                       p_bad=0.05)
        return (A.pick("rate", [0.0, 0.3, 0.5, 0.9], RATE_BAD),), kw
    return ctor


def ctor_gaussian_noise(rng, A, shape):
    return (A.pick("stddev", [0.0, 0.1, 1.0, 3.0], [-1.0, nan, inf, "a", None]),), dict(
        seed=A.pick("seed", [None, 0, 5], ["a"], maybe=[-1, 1.5]))


def ctor_gaussian_dropout(rng, A, shape):
    return (A.pick("rate", [0.0, 0.2, 0.5, 0.9], RATE_BAD),), dict(
        seed=A.pick("seed", [None, 0, 5], ["a"], maybe=[-1, 1.5]))


def ctor_activity_reg(rng, A, shape):
    bad = [-1.0, nan, inf, "a", None]
    return (), dict(l1=A.pick("l1", [0.0, 0.01, 1.0], bad, p_bad=0.06), l2=A.pick("l2", [0.0, 0.01, 2.0], bad,
                                                                                p_bad=0.06))


SLOPES, SLOPES_BAD = [0.3, 0.0, 0.1, 1.0, 2.0], [-0.1, nan, inf, "a", None]


def ctor_leaky_relu(rng, A, shape):
    if rng.random() < 0.15:  # tf.keras 2's name
        return (), dict(alpha=A.pick("alpha", SLOPES, SLOPES_BAD))
    return (), dict(negative_slope=A.pick("negative_slope", SLOPES, SLOPES_BAD))


def ctor_prelu(rng, A, shape):
    nd = len(shape)
    return (), dict(alpha_initializer=A.pick("alpha_initializer", ["zeros", "Zeros", "ones", "random_uniform"],
                                             INITS_BAD, p_bad=0.05),
                    shared_axes=A.pick("shared_axes", [None, None, 1, [1], list(range(1, nd)) or None],
                                       [0, -1, "a", 1.5, [0]], maybe=[nd + 1, [nd + 1], [1, 1]]))


def ctor_elu(rng, A, shape):
    return (), dict(alpha=A.pick("alpha", [1.0, 0.5, 2.0, 0.0], ["a", None, nan, inf], maybe=[-1.0]))


def ctor_dot(rng, A, shape):
    return (A.pick("axes", [-1, -1, 1, 2, (1, 1), (2, 1), (-1, -2), [3, 3]], ["a", None, 1.5, (1,), (1, 2, 3),
                                                                              (1.5, 1)], maybe=[0, 5, (0, 1), -5]),), \
        dict(normalize=A.pick("normalize", [False, True], ["yes", None], p_bad=0.05))


def _amount_args(A, rng, name, rank, zero_ok=True):
    base = [0, 1, 2] if zero_ok else [1, 2]
    good = base + [(1, 2), (0, 1)] if rank == 1 else \
        base + [tuple(choice(rng, base) for _ in range(rank)),
                tuple((choice(rng, base), choice(rng, base)) for _ in range(rank))]
    bad = [-1, 1.5, "a", (1, 2, 3), (-1, 0), (True, 1)] if rank == 1 else \
        [-1, 1.5, "a", (1,) * (rank + 1), ((1, 2),) * (rank - 1) + ((-1, 0),), ((1, 2, 3),) * rank, (1.5,) * rank]
    return A.pick(name, good, bad, maybe=[None, np.int64(1)])


def ctor_zero_padding(rank):
    def ctor(rng, A, shape):
        kw = dict(padding=_amount_args(A, rng, "padding", rank))
        kw["data_format"] = A.pick("data_format", [None, "channels_last"], ["channels_first", "x"], p_bad=0.04)
        return (), kw
    return ctor


def ctor_cropping(rank):
    def ctor(rng, A, shape):
        kw = dict(cropping=_amount_args(A, rng, "cropping", rank))
        if rank > 1:
            kw["data_format"] = A.pick("data_format", [None, "channels_last"], ["channels_first", "x"], p_bad=0.04)
        return (), kw
    return ctor


def ctor_upsampling1d(rng, A, shape):
    return (), dict(size=_pos(A, "size", [1, 2, 3], huge=False))


def ctor_upsampling3d(rng, A, shape):
    return (), dict(size=_tuple_arg(A, rng, "size", 3, [1, 2], huge=False),
                    data_format=A.pick("data_format", [None, "channels_last"], ["channels_first", "x"], p_bad=0.04))


def ctor_permute(rng, A, shape):
    nd = max(len(shape), 1)
    perm = tuple(int(p) + 1 for p in rng.permutation(nd))
    return (A.pick("dims", [perm, perm, tuple(range(1, nd + 1)), list(perm)],
                   [(0, 1), (1, 1), (1, 3), "ab", (1.5,), None, 5, (True,)], maybe=[(2, 1), (1, 2, 3), (1,)]),), {}


def ctor_repeat_vector(rng, A, shape):
    return (_pos(A, "n", [1, 2, 3], huge=False),), {}


def ctor_rescaling(rng, A, shape):
    c = shape[-1] if shape and shape[-1] <= 8 else 2  # (huge symbolic shapes: statistics of a few)
    scale = A.pick("scale", [1 / 255, 2.0, -1.0, 0.0, 1, np.float32(0.5)], [nan, inf, "a", None, True, 1 + 1j],
                   maybe=[[1.0] * c + ([2.0] if rng.random() < 0.3 else []), np.arange(1, c + 1, dtype=float)])
    return (scale,), dict(offset=A.pick("offset", [0.0, -1.0, 0.5, 2], [nan, -inf, "a", None]))


RESIZE_METHODS = ["bilinear", "bilinear", "nearest", "bicubic", "lanczos3", "lanczos5"]


def ctor_resizing(rng, A, shape):
    crop, pad = _flag_pick(A, "crop_to_aspect_ratio", (False, False, True)), \
        _flag_pick(A, "pad_to_aspect_ratio", (False, False, True))
    A.invalid_if(crop is True and pad is True, "crop_to_aspect_ratio=True with pad_to_aspect_ratio=True")
    return (_pos(A, "height", [1, 2, 3, 5], huge=False), _pos(A, "width", [1, 2, 4], huge=False)), dict(
        interpolation=A.pick("interpolation", RESIZE_METHODS, ["cubic", None, "BILINEAR", 5]),
        crop_to_aspect_ratio=crop, pad_to_aspect_ratio=pad,
        fill_mode=A.pick("fill_mode", ["constant"], ["reflect", None], p_bad=0.04),
        fill_value=A.pick("fill_value", [0.0, 1.5, -2], [nan, "a", None], p_bad=0.04),
        antialias=_flag_pick(A, "antialias", (False, True)),
        data_format=A.pick("data_format", [None, "channels_last"], ["channels_first"], p_bad=0.03))


def ctor_center_crop(rng, A, shape):
    return (_pos(A, "height", [1, 2, 3], huge=False), _pos(A, "width", [1, 2, 4], huge=False)), dict(
        data_format=A.pick("data_format", [None, "channels_last"], ["channels_first"], p_bad=0.03))


def ctor_random_crop(rng, A, shape):
    return (_pos(A, "height", [1, 2, 3], huge=False), _pos(A, "width", [1, 2, 4], huge=False)), dict(
        seed=A.pick("seed", [None, 0, 3], ["a"], maybe=[-1, 1.5]))


# references of the layers above (float64, from the layer's own weights)
def _feature_axes(axis, ndim, batch_ok=False, dup_ok=False):
    """Keras's axes (an int or a list, counting the batch axis) resolved for inputs of
    ``ndim`` axes; ValueError where one is out of range, repeated or the batch axis."""
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
            raise ValueError(f"axis {a!r} for rank {ndim}")
        r = int(a) % ndim
        if r in out and dup_ok:
            continue
        if r in out or (r == 0 and not batch_ok):
            raise ValueError(f"axis {axis!r} for rank {ndim}")
        out.append(r)
    if not out:
        raise ValueError("no axes")
    return tuple(sorted(out))


def _bshape(x, axes):
    return [x.shape[i] if i in axes else 1 for i in range(x.ndim)]


def _weight_or(layer, name, default):
    v = getattr(layer, name, None)
    return default if v is None else _w(v)


def ref_conv_transpose(layer, x, training):
    w, r = _w(layer.kernel), len(layer.kernel_size)
    s, d, pad = list(layer.strides), list(layer.dilation_rate), layer.padding
    op = layer.output_padding
    sp = x.shape[1:-1]
    if min(sp, default=1) < 1:
        raise NoReference("an empty spatial axis")
    if max((k - 1) * dd + 1 for k, dd in zip(layer.kernel_size, d)) > 10 ** 5:
        raise NoReference("an effective kernel far larger than the input")
    outs, befores = [], []
    for i, n in enumerate(sp):
        ke = (layer.kernel_size[i] - 1) * d[i] + 1
        if pad == "valid":
            big = (n - 1) * s[i] + ke + (max(ke, s[i]) - ke if op is None else op[i])
        else:
            big = n * s[i] if op is None else (n - 1) * s[i] + ke % 2 + op[i]
        # the adjoint of conv over outputs of size `big` (Keras's alignment), where conv maps them to n
        back = (big - ke) // s[i] + 1 if pad == "valid" else -(-big // s[i])
        if back != n:
            raise NoReference("conv does not map this output size back to the input's")
        befores.append(0 if pad == "valid" else max((n - 1) * s[i] + ke - big, 0) // 2)
        outs.append(big)
    full = [max(o + b, (n - 1) * ss + (k - 1) * dd + 1) for o, b, n, ss, k, dd in
            zip(outs, befores, sp, s, layer.kernel_size, d)]
    y = np.zeros((x.shape[0], *full, w.shape[-2]))
    for idx in np.ndindex(*w.shape[:r]):
        sl = tuple(slice(i * dd, i * dd + (n - 1) * ss + 1, ss) for i, dd, n, ss in zip(idx, d, sp, s))
        y[(slice(None),) + sl + (slice(None),)] += x @ w[idx].T
    y = y[(slice(None),) + tuple(slice(b, b + o) for b, o in zip(befores, outs)) + (slice(None),)]
    return _act_layer(layer, y + _weight_or(layer, "bias", 0.0))


def _depthwise_ref(x, w, strides, padding, dilation):
    if x.ndim != w.ndim or x.shape[-1] != w.shape[-2]:
        raise ValueError("depthwise shapes")
    if x.shape[-1] == 0:
        raise NoReference("no channels")
    return np.concatenate([conv_reference(x[..., i:i + 1], w[..., i:i + 1, :], strides, padding, dilation)
                           for i in range(x.shape[-1])], axis=-1)


def ref_depthwise(layer, x, training):
    z = _depthwise_ref(x, _w(layer.kernel), list(layer.strides), layer.padding, list(layer.dilation_rate))
    return _act_layer(layer, z + _weight_or(layer, "bias", 0.0))


def ref_separable(layer, x, training):
    z = _depthwise_ref(x, _w(layer.depthwise_kernel), list(layer.strides), layer.padding, list(layer.dilation_rate))
    z = z @ _w(layer.pointwise_kernel).reshape(z.shape[-1], -1)
    return _act_layer(layer, z + _weight_or(layer, "bias", 0.0))


def ref_adaptive(layer, x, training):
    r = len(layer.output_size)
    sp = x.shape[1:-1]
    if min(sp, default=1) < 1:
        raise NoReference("an empty spatial axis")
    out = np.empty((x.shape[0],) + layer.output_size + (x.shape[-1],))
    red = np.max if layer.kind == "max" else np.mean
    for idx in np.ndindex(*layer.output_size):  # PyTorch's windows [floor(i n / o), ceil((i + 1) n / o))
        win = tuple(slice(i * n // o, -(-(i + 1) * n // o)) for i, n, o in zip(idx, sp, layer.output_size))
        out[(slice(None),) + idx] = red(x[(slice(None),) + win], axis=tuple(range(1, r + 1)))
    return out


def ref_global_keep(layer, x, training):
    y = ref_global(layer, x, training)
    return y.reshape((y.shape[0],) + (1,) * (x.ndim - 2) + (y.shape[-1],)) if layer.keepdims else y


def ref_layernorm(layer, x, training):
    axes = _feature_axes(layer.axis, x.ndim)
    bs = _bshape(x, axes)
    m, v = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    g = _weight_or(layer, "gamma", 1.0)
    g = np.reshape(g, bs) if np.ndim(g) else g
    if layer.rms_scaling:  # Keras 3.15's deprecated rule: no mean subtracted, no beta
        return x / np.sqrt(v + layer.epsilon) * g
    b = _weight_or(layer, "beta", 0.0)
    return (x - m) / np.sqrt(v + layer.epsilon) * g + (np.reshape(b, bs) if np.ndim(b) else b)


def _groups_ref(layer, x):
    (ax,) = _feature_axes(layer.axis, x.ndim)
    c = x.shape[ax]
    g = c if layer.groups == -1 else layer.groups
    if c < g or (g and c % g) or g == 0:
        raise ValueError(f"{c} channels in {g} groups")
    return ax, c, g


def ref_groupnorm(layer, x, training):
    ax, c, g = _groups_ref(layer, x)
    shp = list(x.shape)
    shp[ax:ax + 1] = [g, c // g]
    xg = x.reshape(shp)
    red = tuple(i for i in range(1, len(shp)) if i != ax)
    y = (xg - xg.mean(axis=red, keepdims=True)) / np.sqrt(xg.var(axis=red, keepdims=True) + layer.epsilon)
    y = y.reshape(x.shape)
    bs = [c if i == ax else 1 for i in range(x.ndim)]
    return y * np.reshape(_weight_or(layer, "gamma", np.ones(c)), bs) + np.reshape(
        _weight_or(layer, "beta", np.zeros(c)), bs)


def ref_rmsnorm(layer, x, training):
    axes = _feature_axes(layer.axis, x.ndim)
    return x / np.sqrt(np.mean(x * x, axis=axes, keepdims=True) + layer.epsilon) * _w(layer.scale).reshape(
        _bshape(x, axes))


def ref_unitnorm(layer, x, training):
    axes = _feature_axes(layer.axis, x.ndim, batch_ok=True)
    return x * np.minimum(1 / np.sqrt(np.sum(x * x, axis=axes, keepdims=True)), 1e12)  # keras.ops.normalize


def ref_normalization(layer, x, training):
    keep = _feature_axes(layer.axis, x.ndim, dup_ok=True) if layer.axis not in ((), None) else ()
    if layer.input_mean is None:
        mean, var = _w(layer.adapt_mean), _w(layer.adapt_variance)
        mean, var = mean.reshape(_bshape(x, keep)[1:]), var.reshape(_bshape(x, keep)[1:])
    else:
        mean, var = layer.input_mean, layer.input_variance
        if mean.ndim > len(keep):
            raise ValueError("statistics of a higher rank than the axes")
        ex = [1] * x.ndim
        for i in range(1, mean.ndim + 1):
            ex[keep[-i]] = mean.shape[-i]
        mean, var = mean.reshape(ex)[0], var.reshape(ex)[0]
        np.broadcast_shapes(mean.shape, _bshape(x, keep)[1:])
    std = np.maximum(np.sqrt(var), 1e-7)
    return mean + x * std if layer.invert else (x - mean) / std


def ref_activity_reg(layer, x, training):
    if x.size and np.isfinite(x).all() and np.abs(x).max() < 1e15:
        want = (layer.l1 * np.abs(x).sum() + layer.l2 * (x * x).sum()) / len(x)
        got = float(sum(float(np.asarray(_to_host(v))) for v in layer.losses)) if layer.losses else 0.0
        if not np.isclose(got, want, rtol=1e-4, atol=1e-6):
            raise Mismatch("wrong activity loss", f"losses sum to {got!r}, expected (l1 * sum|x| + l2 * sum x**2) / "
                                                  f"batch = {want!r}")
    return x


def ref_plain(layer, x, training):
    return x


def ref_leaky_relu(layer, x, training):
    return np.where(x > 0, x, layer.negative_slope * x)


def ref_prelu(layer, x, training):
    for a in layer.shared_axes or ():
        if a >= x.ndim:
            raise ValueError(f"shared axis {a} for rank {x.ndim}")
    relu = ACT_REF["relu"]
    return relu(x) - _w(layer.alpha) * relu(-x)


def ref_elu(layer, x, training):
    return _elu(x, layer.alpha)


def _pad_amounts(layer, x, attr):
    p = getattr(layer, attr)
    if x.ndim != len(p) + 2:
        raise ValueError("rank")
    return p


def ref_zero_padding(layer, x, training):
    return np.pad(x, ((0, 0),) + tuple(_pad_amounts(layer, x, "padding")) + ((0, 0),))


def ref_cropping(layer, x, training):
    c = _pad_amounts(layer, x, "cropping")
    if any(a + b >= n for (a, b), n in zip(c, x.shape[1:-1])):
        raise ValueError("cropping as large as the input")
    return x[(slice(None),) + tuple(slice(a, n - b) for (a, b), n in zip(c, x.shape[1:-1])) + (slice(None),)]


def ref_upsampling1d(layer, x, training):
    if x.ndim != 3:
        raise ValueError("rank")
    return np.repeat(x, layer.size, axis=1)


def ref_upsampling3d(layer, x, training):
    if x.ndim != 5:
        raise ValueError("rank")
    for ax, f in enumerate(layer.size, 1):
        x = np.repeat(x, f, axis=ax)
    return x


def ref_permute(layer, x, training):
    if x.ndim != len(layer.dims) + 1:
        raise ValueError("rank")
    return np.transpose(x, (0,) + tuple(layer.dims))


def ref_repeat_vector(layer, x, training):
    if x.ndim != 2:
        raise ValueError("rank")
    return np.repeat(x[:, None, :], layer.n, axis=1)


def ref_rescaling(layer, x, training):
    dt = np.dtype(layer.dtype)  # the layer casts an array scale to its dtype
    sc = layer.scale if np.ndim(layer.scale) == 0 else np.asarray(layer.scale).astype(dt).astype(np.float64)
    off = layer.offset if np.ndim(layer.offset) == 0 else np.asarray(layer.offset).astype(dt).astype(np.float64)
    np.broadcast_shapes(x.shape, np.shape(sc), np.shape(off))
    return x * sc + off


def _resize_weights(m, n, method, antialias):
    """(n, m): jax.image.resize's weights along one axis (m samples to n)."""
    if method == "nearest":
        w = np.zeros((n, m))
        w[np.arange(n), np.floor((np.arange(n) + 0.5) * m / n).astype(int)] = 1.0
        return w
    if method != "bilinear":
        raise NoReference(f"no reference for {method}")
    ks = max(m / n, 1.0) if antialias else 1.0
    sample = (np.arange(n) + 0.5) * m / n - 0.5
    w = np.maximum(0.0, 1.0 - np.abs(sample[:, None] - np.arange(m)[None, :]) / ks)
    tot = w.sum(axis=1, keepdims=True)
    return np.where(np.abs(tot) > 1000 * np.finfo(np.float32).eps, w / np.where(tot != 0, tot, 1), 0.0)


def _resize_ref(x, h, w, method="bilinear", antialias=False):
    """(batch, height, width, channels) images resized as keras.ops.image.resize (jax);
    an axis that keeps its size is left alone, as jax does."""
    if min(x.shape[1:3]) < 1:
        raise NoReference("an empty image")
    if h != x.shape[1]:
        x = np.einsum("oi,bi...->bo...", _resize_weights(x.shape[1], h, method, antialias), x)
    if w != x.shape[2]:
        x = np.einsum("oi,bhi...->bho...", _resize_weights(x.shape[2], w, method, antialias), x)
    return x


def _images(x):
    """A batch of images, from a batch or one image (as image layers take them)."""
    if x.ndim not in (3, 4):
        raise ValueError("rank")
    return (x[None], True) if x.ndim == 3 else (x, False)


def _aspect_box(h, w, th, tw):
    ch = max(min(h, int(float(w * th) / tw)), 1)
    cw = max(min(w, int(float(h * tw) / th)), 1)
    return int(float(h - ch) / 2), int(float(w - cw) / 2), ch, cw


def ref_resizing(layer, x, training):
    x4, single = _images(x)
    h, w = x4.shape[1:3]
    H, W = layer.height, layer.width
    if min(h, w) < 1:
        raise NoReference("an empty image")
    if layer.crop_to_aspect_ratio:
        h0, w0, ch, cw = _aspect_box(h, w, H, W)
        x4 = x4[:, h0:h0 + ch, w0:w0 + cw]
    elif layer.pad_to_aspect_ratio:
        ph, pw = max(h, int(float(w * H) / W)), max(w, int(float(h * W) / H))
        top, left = int(float(ph - h) / 2), int(float(pw - w) / 2)
        if top > 0:
            x4 = np.pad(x4, ((0, 0), (top, top), (0, 0), (0, 0)), constant_values=layer.fill_value)
        elif left > 0:
            x4 = np.pad(x4, ((0, 0), (0, 0), (left, left), (0, 0)), constant_values=layer.fill_value)
    y = _resize_ref(x4, H, W, layer.interpolation, layer.antialias)
    return y[0] if single else y


def ref_center_crop(layer, x, training):
    x4, single = _images(x)
    h, w = x4.shape[1:3]
    H, W = layer.height, layer.width
    if h >= H and w >= W:
        h0, w0 = (h - H) // 2, (w - W) // 2
        y = x4[:, h0:h0 + H, w0:w0 + W]
    else:
        if min(h, w) < 1:
            raise NoReference("an empty image")
        h0, w0, ch, cw = _aspect_box(h, w, H, W)
        y = _resize_ref(x4[:, h0:h0 + ch, w0:w0 + cw], H, W)
    return y[0] if single else y


def ref_random_crop(layer, x, training):
    """Inference: the input. Training on images larger than the target: a random window
    (checked in _random_check); otherwise Keras's centred box, resized."""
    x4, single = _images(x)
    if not training:
        return x
    h, w = x4.shape[1:3]
    H, W = layer.height, layer.width
    if h > H and w > W:
        raise NoReference("a random window")
    if min(h, w) < 1:
        raise NoReference("an empty image")
    h0, w0, _, _ = _aspect_box(h, w, H, W)
    y = x4[:, h0:h0 + H, w0:w0 + W]
    if y.shape[1:3] != (H, W):
        y = _resize_ref(y, H, W)
    return y[0] if single else y


# random layers in training: what must hold whatever the draws (inference is the identity)
def _kept_or_dropped(x, y, rate, groups=None):
    """Each value is 0 or x / (1 - rate); with ``groups`` (an axis tuple), one choice per
    group of values (a spatial dropout's feature map)."""
    keep = x / (1 - rate)
    kept = np.isclose(y, keep, rtol=1e-5, atol=1e-6) | (np.isnan(y) & ~np.isfinite(keep))
    dropped = (y == 0) | (np.isnan(y) & ~np.isfinite(x))
    if not (kept | dropped).all():
        raise Mismatch("wrong values", f"dropout output {y[~(kept | dropped)][:3]} is neither 0 nor x / (1 - rate)")
    if groups is not None:
        surely_kept, surely_dropped = kept & ~dropped, dropped & ~kept
        if (surely_kept.any(axis=groups) & surely_dropped.any(axis=groups)).any():
            raise Mismatch("wrong values", "a spatial dropout kept part of a feature map and dropped the rest")


def _check_alpha_dropout(layer, x, y):
    ap = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
    r = layer.rate
    a = ((1 - r) * (1 + r * ap ** 2)) ** -0.5
    b = -a * ap * r
    tol = 1e-4 * (1 + np.abs(np.where(np.isfinite(x), x, 0)))
    ok = np.isclose(y, a * x + b, rtol=1e-4, atol=1e-5) | (np.abs(y - (a * ap + b)) <= tol) | ~np.isfinite(x)
    if not ok.all():
        raise Mismatch("wrong values", f"alpha dropout output {y[~ok][:3]} is neither a * x + b nor a * alpha' + b")


def _check_spatial(layer, x, y):
    groups = tuple(range(1, x.ndim - 1)) if getattr(layer, "data_format", "channels_last") == "channels_last" else \
        tuple(range(2, x.ndim))
    _kept_or_dropped(x, y, layer.rate, groups)


def _check_gaussian_noise(layer, x, y):
    if np.isfinite(x).all() and not np.isfinite(y).all() and np.abs(x).max(initial=0) < 1e30:
        raise Mismatch("non-finite output for finite input", "Gaussian noise made a finite input non-finite")


def _check_gaussian_dropout(layer, x, y):
    _check_gaussian_noise(layer, x, y)
    if ((x == 0) & (y != 0) & np.isfinite(y)).any():
        raise Mismatch("wrong values", "Gaussian dropout (multiplicative noise) made a zero nonzero")


def _check_random_crop(layer, x, y):
    x4, single = _images(x)
    y4 = y[None] if single else y
    H, W = layer.height, layer.width
    if y4.shape != x4.shape[:1] + (H, W) + x4.shape[3:]:
        raise Mismatch("wrong shape", f"shape {y.shape}, expected a {H}x{W} crop of {x.shape}")
    for i in range(x4.shape[1] - H + 1):
        for j in range(x4.shape[2] - W + 1):
            if np.array_equal(x4[:, i:i + H, j:j + W], y4, equal_nan=True):
                return
    raise Mismatch("wrong values", "the random crop is no window of the input")


RANDOM_TRAINING = {"AlphaDropout": _check_alpha_dropout, "SpatialDropout1D": _check_spatial,
                   "SpatialDropout2D": _check_spatial, "SpatialDropout3D": _check_spatial,
                   "GaussianNoise": _check_gaussian_noise, "GaussianDropout": _check_gaussian_dropout}


def _random_check(name, layer, x, yv, training):
    """True when the random layer's training output was judged here."""
    if name == "RandomCrop":
        x4, _ = _images(x)
        if not (training and x4.shape[1] > layer.height and x4.shape[2] > layer.width):
            return False
        _check_random_crop(layer, x, yv)
        return True
    rate = getattr(layer, "rate", getattr(layer, "stddev", 0.0))
    if not training or rate == 0:
        return False
    if name.startswith("SpatialDropout") and x.ndim != layer._rank + 2:
        raise Mismatch("accepts what the reference rejects", f"returned for an input of rank {x.ndim}")
    if yv.shape != x.shape:
        raise Mismatch("wrong shape", f"shape {yv.shape}, expected the input's {x.shape}")
    RANDOM_TRAINING[name](layer, x, yv)
    return True


# merges of several inputs (Keras's elementwise rule: one rank, sizes equal or 1)
def _elementwise(fn, exact=None):
    def ref(layer, xs):
        _keras_add_shape([x.shape for x in xs])
        if exact is not None and len(xs) != exact:
            raise ValueError(f"exactly {exact} inputs")
        return fn(xs)
    return ref


def _reduce(f):
    return lambda xs: __import__("functools").reduce(f, xs[1:], xs[0])


def _dot_axes(layer, shapes):
    """Dot's two axes (counting the batch axis) for inputs of these shapes (with it)."""
    if len(shapes) != 2:
        raise ValueError("Dot takes two inputs")
    pair = (layer.axes, layer.axes) if isinstance(layer.axes, int) else tuple(layer.axes)
    out = []
    for a, s in zip(pair, shapes):
        if len(s) < 2 or not -len(s) <= a < len(s) or a % len(s) == 0:
            raise ValueError(f"axis {a} of rank {len(s)}")
        out.append(a % len(s))
    if shapes[0][out[0]] != shapes[1][out[1]]:
        raise ValueError("contracted sizes differ")
    return out


def _dot_ref(layer, xs):
    a1, a2 = _dot_axes(layer, [x.shape for x in xs])
    x, y = xs
    if layer.normalize:  # keras.ops.normalize: x * min(rsqrt(sum x**2), 1 / 1e-7)
        x = x * np.minimum(1 / np.sqrt(np.sum(x * x, axis=a1, keepdims=True)), 1e7)
        y = y * np.minimum(1 / np.sqrt(np.sum(y * y, axis=a2, keepdims=True)), 1e7)
    x, y = np.moveaxis(x, a1, -1), np.moveaxis(y, a2, 1)
    r1, r2, b, k = x.shape[1:-1], y.shape[2:], x.shape[0], x.shape[-1]
    z = np.matmul(x.reshape(b, math.prod(r1), k), y.reshape(b, k, math.prod(r2))).reshape((b,) + r1 + r2)
    return z.reshape(b, 1) if z.ndim == 1 else z


MERGES = {"Subtract": _elementwise(lambda xs: xs[0] - xs[1], exact=2), "Multiply": _elementwise(_reduce(np.multiply)),
          "Average": _elementwise(lambda xs: sum(xs[1:], xs[0]) / len(xs)),
          "Maximum": _elementwise(_reduce(np.maximum)), "Minimum": _elementwise(_reduce(np.minimum)),
          "Dot": _dot_ref}


# output shapes (no batch axis, Python ints) of the layers above, for the symbolic calls
def _shape_conv_transpose(layer, shape):
    out = []
    for i, n in enumerate(shape[:-1]):
        ke = (layer.kernel_size[i] - 1) * layer.dilation_rate[i] + 1
        s, op = layer.strides[i], layer.output_padding
        if layer.padding == "valid":
            out.append((n - 1) * s + ke + (max(ke, s) - ke if op is None else op[i]))
        else:
            out.append(n * s if op is None else (n - 1) * s + ke % 2 + op[i])
    if min(out, default=1) < 1:
        raise NoReference("an empty output")
    return tuple(out) + (layer.filters,)


def _shape_window(layer, shape, channels):
    out = []
    for n, k, s, d in zip(shape[:-1], layer.kernel_size, layer.strides, layer.dilation_rate):
        ke = (k - 1) * d + 1
        o = -(-n // s) if layer.padding == "same" else (n - ke) // s + 1
        if o < 1:
            raise ValueError("window larger than the input")
        out.append(o)
    return tuple(out) + (channels,)


class _Shaped:
    """A stand-in with an input's shape (batch axis first), for shape-only checks."""

    def __init__(self, shape):
        self.shape, self.ndim = (1,) + tuple(shape), len(shape) + 1


def _same(check=None):
    """Same shape out, after ``check(layer, stand_in)`` (which raises ValueError where
    the layer must refuse the shape)."""
    def shape_fn(layer, shape):
        if check is not None:
            check(layer, _Shaped(shape))
        return tuple(shape)
    return shape_fn


def _check_axes(layer, x, batch_ok=False):
    _feature_axes(layer.axis, x.ndim, batch_ok=batch_ok)


def _shape_via_ref(ref):
    """The shape of the reference's output on zeros of the shape (small shapes only)."""
    def shape_fn(layer, shape):
        if math.prod(shape) > 10 ** 5:
            raise NoReference("a huge shape")
        return ref(layer, np.zeros((1,) + tuple(shape)), True).shape[1:]
    return shape_fn


def _shape_resize_like(layer, shape):
    if len(shape) != 3:
        raise ValueError("rank")
    return (layer.height, layer.width, shape[-1])


def _shape_rescaling(layer, shape):
    try:
        np.broadcast_shapes((1,) + tuple(shape), np.shape(layer.scale), np.shape(layer.offset))
    except ValueError:  # Keras 3 builds such a model too (and fails when it runs): no judgement
        raise NoReference("a scale that does not broadcast against the input") from None
    return tuple(shape)


def _shape_prelu(layer, shape):
    for a in layer.shared_axes or ():
        if a > len(shape):
            raise ValueError("shared axis")
    return tuple(shape)


def _shape_normalization(layer, shape):
    if math.prod(shape) > 10 ** 5:
        raise NoReference("a huge shape")
    return ref_normalization(layer, np.zeros((1,) + tuple(shape)), False).shape[1:]


def _shape_dot(layer, shapes):
    a1, a2 = _dot_axes(layer, [(None,) + tuple(s) for s in shapes])
    out = [n for i, n in enumerate(shapes[0]) if i != a1 - 1] + [n for i, n in enumerate(shapes[1]) if i != a2 - 1]
    return tuple(out) or (1,)


LAYER_SPECS = {  # class name: (constructor arguments, input rank without batch (None: any), reference)
    "Dense": (ctor_dense, None, ref_dense),
    "Conv1D": (ctor_conv(1), 2, ref_conv), "Conv2D": (ctor_conv(2), 3, ref_conv), "Conv3D": (ctor_conv(3), 4, ref_conv),
    "MaxPooling1D": (ctor_pool(1), 2, ref_pool_layer), "MaxPooling2D": (ctor_pool(2), 3, ref_pool_layer),
    "MaxPooling3D": (ctor_pool(3), 4, ref_pool_layer), "AveragePooling1D": (ctor_pool(1), 2, ref_pool_layer),
    "AveragePooling2D": (ctor_pool(2), 3, ref_pool_layer), "AveragePooling3D": (ctor_pool(3), 4, ref_pool_layer),
    "GlobalAveragePooling1D": (ctor_none, 2, ref_global), "GlobalAveragePooling2D": (ctor_none, 3, ref_global),
    "GlobalAveragePooling3D": (ctor_none, 4, ref_global), "GlobalMaxPooling1D": (ctor_none, 2, ref_global),
    "GlobalMaxPooling2D": (ctor_none, 3, ref_global), "GlobalMaxPooling3D": (ctor_none, 4, ref_global),
    "Flatten": (ctor_none, None, ref_flatten), "Reshape": (ctor_reshape, None, ref_reshape),
    "Activation": (ctor_activation, None, ref_activation), "ReLU": (ctor_none, None, ref_activation),
    "Softmax": (ctor_none, None, ref_activation), "Lambda": (ctor_lambda, None, ref_lambda),
    "UpSampling2D": (ctor_upsampling, 3, ref_upsampling), "BatchNormalization": (ctor_batchnorm, None, ref_batchnorm),
    "Dropout": (ctor_dropout, None, None), "Add": (ctor_none, "multi", None), "Concatenate": (ctor_concatenate, "multi",
                                                                                              None),
    "RandomFlip": (ctor_flip, 3, ref_identity), "RandomTranslation": (ctor_translation, 3, ref_identity),
    "RandomRotation": (ctor_rotation, 3, ref_identity), "RandomZoom": (ctor_zoom, 3, ref_identity),
    "RandomContrast": (ctor_contrast, 3, ref_identity), "RandomBrightness": (ctor_brightness, 3, ref_identity),
}
AUGMENTATION = {"RandomFlip", "RandomTranslation", "RandomRotation", "RandomZoom", "RandomContrast",
                "RandomBrightness"}


def ref_rank(n):
    def ref(layer, x, training):
        if x.ndim != n + 1:
            raise ValueError("rank")
        return x
    return ref


NEW_LAYER_SPECS = {  # class name: (constructor arguments, input rank without batch, reference, output shape)
    "Conv1DTranspose": (ctor_conv_transpose(1), 2, ref_conv_transpose, _shape_conv_transpose),
    "Conv2DTranspose": (ctor_conv_transpose(2), 3, ref_conv_transpose, _shape_conv_transpose),
    "Conv3DTranspose": (ctor_conv_transpose(3), 4, ref_conv_transpose, _shape_conv_transpose),
    "DepthwiseConv1D": (ctor_depthwise(1), 2, ref_depthwise,
                        lambda l, s: _shape_window(l, s, s[-1] * l.depth_multiplier)),
    "DepthwiseConv2D": (ctor_depthwise(2), 3, ref_depthwise,
                        lambda l, s: _shape_window(l, s, s[-1] * l.depth_multiplier)),
    "SeparableConv1D": (ctor_separable(1), 2, ref_separable, lambda l, s: _shape_window(l, s, l.filters)),
    "SeparableConv2D": (ctor_separable(2), 3, ref_separable, lambda l, s: _shape_window(l, s, l.filters)),
    **{f"Adaptive{kind}Pooling{r}D": (ctor_adaptive(r), r + 1, ref_adaptive, lambda l, s: l.output_size + (s[-1],))
       for kind in ("Average", "Max") for r in (1, 2, 3)},
    "LayerNormalization": (ctor_layernorm, None, ref_layernorm, _same(_check_axes)),
    "GroupNormalization": (ctor_groupnorm, None, ref_groupnorm, _same(_groups_ref)),
    "RMSNormalization": (ctor_rmsnorm, None, ref_rmsnorm, _same(_check_axes)),
    "UnitNormalization": (ctor_unitnorm, None, ref_unitnorm, _same(lambda l, x: _check_axes(l, x, batch_ok=True))),
    "Normalization": (ctor_normalization, None, ref_normalization, _shape_normalization),
    "AlphaDropout": (ctor_alpha_dropout, None, ref_plain, _same()),
    "SpatialDropout1D": (ctor_spatial_dropout(1), 2, ref_rank(2), _same()),
    "SpatialDropout2D": (ctor_spatial_dropout(2), 3, ref_rank(3), _same()),
    "SpatialDropout3D": (ctor_spatial_dropout(3), 4, ref_rank(4), _same()),
    "GaussianNoise": (ctor_gaussian_noise, None, ref_plain, _same()),
    "GaussianDropout": (ctor_gaussian_dropout, None, ref_plain, _same()),
    "ActivityRegularization": (ctor_activity_reg, None, ref_activity_reg, _same()),
    "LeakyReLU": (ctor_leaky_relu, None, ref_leaky_relu, _same()),
    "PReLU": (ctor_prelu, None, ref_prelu, _shape_prelu),
    "ELU": (ctor_elu, None, ref_elu, _same()),
    "Subtract": (ctor_none, "multi", None, None), "Multiply": (ctor_none, "multi", None, None),
    "Average": (ctor_none, "multi", None, None), "Maximum": (ctor_none, "multi", None, None),
    "Minimum": (ctor_none, "multi", None, None), "Dot": (ctor_dot, "multi", None, None),
    "ZeroPadding1D": (ctor_zero_padding(1), 2, ref_zero_padding, _shape_via_ref(ref_zero_padding)),
    "ZeroPadding2D": (ctor_zero_padding(2), 3, ref_zero_padding, _shape_via_ref(ref_zero_padding)),
    "ZeroPadding3D": (ctor_zero_padding(3), 4, ref_zero_padding, _shape_via_ref(ref_zero_padding)),
    "Cropping1D": (ctor_cropping(1), 2, ref_cropping, _shape_via_ref(ref_cropping)),
    "Cropping2D": (ctor_cropping(2), 3, ref_cropping, _shape_via_ref(ref_cropping)),
    "Cropping3D": (ctor_cropping(3), 4, ref_cropping, _shape_via_ref(ref_cropping)),
    "UpSampling1D": (ctor_upsampling1d, 2, ref_upsampling1d, lambda l, s: (s[0] * l.size, s[1])),
    "UpSampling3D": (ctor_upsampling3d, 4, ref_upsampling3d,
                     lambda l, s: tuple(n * f for n, f in zip(s[:3], l.size)) + (s[3],)),
    "Permute": (ctor_permute, None, ref_permute, _shape_via_ref(ref_permute)),
    "RepeatVector": (ctor_repeat_vector, 1, ref_repeat_vector, lambda l, s: (l.n, s[0])),
    "Identity": (ctor_none, None, ref_plain, _same()),
    "Rescaling": (ctor_rescaling, None, ref_rescaling, _shape_rescaling),
    "Resizing": (ctor_resizing, 3, ref_resizing, _shape_resize_like),
    "CenterCrop": (ctor_center_crop, 3, ref_center_crop, _shape_resize_like),
    "RandomCrop": (ctor_random_crop, 3, ref_random_crop, _shape_resize_like),
}
for _g in ("GlobalAveragePooling", "GlobalMaxPooling"):  # now with keepdims and data_format
    for _r in (1, 2, 3):
        NEW_LAYER_SPECS[f"{_g}{_r}D"] = (ctor_global, _r + 1, ref_global_keep,
                                         lambda l, s: ((1,) * (len(s) - 1) if l.keepdims else ()) + (s[-1],))
LAYER_SHAPES = {n: spec[3] for n, spec in NEW_LAYER_SPECS.items() if spec[3] is not None}


def _no_channels(x):
    return np.ndim(x) >= 2 and np.shape(x)[-1] == 0


# Known defects of layers (found by this test, reported, not fixed here): while one is
# open its exception is accepted for the inputs it needs, so the rest of the entry keeps
# running. entry: (the inputs that meet it, the exception types, the reproducer)
KNOWN_LAYER_DEFECTS: dict = {}  # none open: 0-channel depthwise / separable / group norm now raise ValueError


# Layers that fill gigabytes for a huge broadcast view before its size fails (known
# defects, reported): weights of the input's feature shape (PReLU's alpha of 2**30 floats:
# 4 GiB, then MemoryError), spatial dropout's mask drawn on the host (batch x channels
# float64 draws: 3 GiB and 30 s). Their eager calls get no huge views until fixed.
HUGE_VIEWS_LEFT_OUT = {"PReLU", "RMSNormalization", "LayerNormalization", "GroupNormalization", "SpatialDropout1D",
                       "SpatialDropout2D", "SpatialDropout3D"}


def _known_defect(name, x):
    when, types, _ = KNOWN_LAYER_DEFECTS.get(name, (None, (), ""))
    return types if when is not None and when(x) else ()
LAYER_SPECS.update({n: spec[:3] for n, spec in NEW_LAYER_SPECS.items()})


def _feature_shape(rng, rank, huge=False):
    if rank is None:
        rank = int(rng.integers(1, 4))
    if rng.random() < 0.2:  # the wrong rank
        rank = int(rng.integers(0, 5))
    if huge:
        # Sizes near 2**32 (products that wrap), but every weight a layer would create from
        # them has 2**44+ elements: refused at once, never half-allocated (a kernel of 2**31
        # entries would be filled, and eat the machine).
        shape = [choice(rng, [1, 2, 3, 2 ** 32, 2 ** 40, 2 ** 62]) for _ in range(rank)]
        if shape:
            shape[-1] = choice(rng, [1, 2, 3, 2 ** 44])
            if 1 < math.prod(shape) < 2 ** 44:
                shape[int(np.argmax(shape))] = 2 ** 44
        return tuple(shape)
    return tuple(max(1, s) if rng.random() < 0.95 else 0 for s in draw_shape(rng, rank, hi=5, cap=200))


def _expected_shape(name, layer, shape):
    """The output shape (no batch axis) of ``layer`` on ``shape``, in Python ints (or
    ValueError where the shapes do not fit)."""
    shape = tuple(int(s) for s in shape)
    rank = LAYER_SPECS[name][1]
    if isinstance(rank, int) and len(shape) != rank:
        raise ValueError("rank")
    if name in LAYER_SHAPES:
        return tuple(LAYER_SHAPES[name](layer, shape))
    if name == "Dense":
        if not shape:
            raise ValueError("no feature axis")
        return shape[:-1] + (layer.units,)
    if name.startswith("Conv") or "Pooling" in name and not name.startswith("Global"):
        is_conv = name.startswith("Conv")
        k = layer.kernel_size if is_conv else layer.pool_size
        d = layer.dilation_rate if is_conv else (1,) * len(k)
        out = []
        for n, kk, ss, dd in zip(shape[:-1], k, layer.strides, d):
            ke = (kk - 1) * dd + 1
            o = -(-n // ss) if layer.padding == "same" else (n - 1) // ss + 1 if layer.padding == "causal" else \
                (n - ke) // ss + 1
            if o < 1:
                raise ValueError("window larger than the input")
            out.append(o)
        if is_conv and shape[-1] % layer.groups:
            raise ValueError("input channels not a multiple of groups")
        return tuple(out) + ((layer.filters,) if is_conv else (shape[-1],))
    if name.startswith("Global"):
        return (shape[-1],)
    if name == "Flatten":
        return (math.prod(shape),)
    if name == "Reshape":
        n, t = math.prod(shape), tuple(layer.target_shape)
        known = math.prod(s for s in t if s != -1)
        if -1 in t:
            if known == 0 or n % known:
                raise ValueError("reshape")
            return tuple(n // known if s == -1 else s for s in t)
        if known != n:
            raise ValueError("reshape")
        return t
    if name == "UpSampling2D":
        return (shape[0] * layer.size[0], shape[1] * layer.size[1], shape[2])
    return shape


def _layer_input(rng, name, shape, n=None):
    """An ndarray batch (a Python list would be a list of inputs to a layer)."""
    n = choice(rng, [1, 2, 3, 0]) if n is None else n
    dt = "float32" if rng.random() < 0.6 else draw_dtype(rng)
    x = arr(rng, shape=(n,) + tuple(shape), dtype=dt, special=0.12, huge=0.0 if name in HUGE_VIEWS_LEFT_OUT else 0.02,
            layout=False)
    return x if is_huge(x) else relayout(rng, x, choice(rng, [k for k in LAYOUTS if k != "list"]))


def _layer_setup(name, args, kwargs):
    parts = [fmt(a) for a in args] + [f"{k}={fmt(v)}" for k, v in kwargs.items()]
    return f"layers.{name}({', '.join(parts)})"


def _check_layer_output(name, layer, xs, y, training, before=None, direct=False):
    """``y`` against the spec's reference on the inputs as the layer sees them (``xs``:
    one array, or the list of a merge layer's inputs; ``direct``: the layer was called on
    them, not a model)."""
    spec_ref = LAYER_SPECS[name][2]
    xs_list = list(xs) if LAYER_SPECS[name][1] == "multi" else [xs]
    refuse_nonnumeric(*xs_list, group="layers (any layer)")
    if any(is_huge(x) for x in xs_list):
        return
    dt = np.dtype(layer.dtype)
    x32 = [f64(np.asarray(x).astype(dt)) for x in xs_list]
    yv = _to_host(y)
    if not isinstance(yv, np.ndarray):
        raise Mismatch("wrong result type", f"returned {type(y).__name__}")
    int_out = None  # Resizing returns integer images given directly in their dtype, as Keras
    if name == "Resizing" and direct and np.asarray(xs_list[0]).dtype.kind in "iu":
        int_out = np.asarray(xs_list[0]).dtype
        dt = int_out
    if yv.dtype != dt:
        raise Mismatch("wrong dtype", f"dtype {yv.dtype}, expected the layer's {dt}")
    clean = finite(*x32) and all(np.all(np.isfinite(_w(w))) for w in layer.weights)
    r = rtol_of(dt) * 4
    if name in RANDOM_TRAINING or name == "RandomCrop":
        if reference(lambda: _random_check(name, layer, x32[0], yv, training)):
            return
    if name == "Add":
        want = reference(lambda: _sum_same_shape(x32))
    elif name in MERGES:
        want = reference(lambda: MERGES[name](layer, x32))
    elif name == "Concatenate":
        if x32 and isinstance(layer.axis, int) and x32[0].ndim and layer.axis % x32[0].ndim == 0 \
                and -x32[0].ndim <= layer.axis < x32[0].ndim:
            raise NoReference("concatenation along the batch axis")
        want = reference(lambda: np.concatenate(x32, axis=layer.axis))
    elif name == "Dropout":
        x = x32[0]
        if not training or layer.rate == 0:
            want = x
        else:
            if yv.shape != x.shape:
                raise Mismatch("wrong shape", f"shape {yv.shape}, expected {x.shape}")
            keep = x / (1 - layer.rate)
            ok = (yv == 0) | np.isclose(yv, keep, rtol=1e-5, atol=1e-6) | (np.isnan(yv) & np.isnan(keep))
            if not ok.all():
                raise Mismatch("wrong values", f"dropout output {yv[~ok][:3]} is neither 0 nor x / (1 - rate)")
            return
    elif name in AUGMENTATION and training:
        x = x32[0]
        if yv.shape != x.shape:
            raise Mismatch("wrong shape", f"shape {yv.shape}, expected the input's {x.shape}")
        if clean and not np.isfinite(yv).all():
            raise Mismatch("non-finite output for finite input", f"{int((~np.isfinite(yv)).sum())} NaN/inf values "
                                                                 "in the augmented output of a finite input")
        return
    elif name == "BatchNormalization":
        want = reference(lambda: ref_batchnorm(layer, x32[0], training, before))
    else:
        want = reference(lambda: spec_ref(layer, x32[0], training))
    scale = max([amax(x) for x in x32] + [1.0]) * max([asum(_w(w)) for w in layer.weights] + [1.0])
    if name in ("Multiply", "Dot"):  # products of the inputs (summed over the contracted axis)
        scale = math.prod(max(amax(x), 1.0) for x in x32) * max([x.size for x in x32] + [1])
    if name in ("BatchNormalization", "LayerNormalization", "GroupNormalization", "RMSNormalization",
                "UnitNormalization"):
        scale *= 1e3  # (float32 statistics of nearly constant data: x - mean cancels)
    if int_out is not None:  # rounded to integers (float32 rounding may tip a half the other way)
        info = np.iinfo(int_out)
        want = np.clip(np.round(want), info.min, info.max)
        compare(yv.astype(np.float64), want, 0.0, 1.0 + r * scale, "finite-only")
        return
    compare(yv, want, r, r * scale, "exact" if clean else "finite-only")


def _merge_shape(name, layer, shapes):
    """The output shape (no batch axis) of Add / Concatenate on ``shapes``, in Python ints."""
    shapes = [tuple(s) for s in shapes]
    if len(shapes) < 2:
        raise ValueError("a merge needs two or more inputs")
    if name == "Add":
        return _keras_add_shape(shapes)
    if name == "Dot":
        return _shape_dot(layer, shapes)
    if name in MERGES:
        if name == "Subtract" and len(shapes) != 2:
            raise ValueError("Subtract takes exactly two inputs")
        return _keras_add_shape(shapes)
    nd_ = len(shapes[0]) + 1  # with the batch axis
    ax = layer.axis
    if isinstance(ax, bool) or not -nd_ <= ax < nd_:
        raise ValueError(f"axis {ax} for rank {nd_}")
    if ax % nd_ == 0:
        raise NoReference("concatenation along the batch axis")
    a = ax % nd_ - 1
    if any(len(s) != len(shapes[0]) or any(p != q for i, (p, q) in enumerate(zip(s, shapes[0])) if i != a)
           for s in shapes):
        raise ValueError("shapes differ off the axis")
    out = list(shapes[0])
    out[a] = sum(s[a] for s in shapes)
    return tuple(out)


def _keras_add_shape(shapes):
    """keras.layers.Add's rule: two or more inputs of one rank whose sizes agree or are 1."""
    shapes = [tuple(s) for s in shapes]
    if len(shapes) < 2 or any(len(s) != len(shapes[0]) for s in shapes):
        raise ValueError("Add needs two or more inputs of one rank")
    out = []
    for sizes in zip(*shapes):
        big = {n for n in sizes if n != 1}
        if len(big) > 1:
            raise ValueError(f"Add: sizes {sizes} neither agree nor are 1")
        out.append(big.pop() if big else 1)
    return tuple(out)


def _sum_same_shape(xs):
    _keras_add_shape([x.shape for x in xs])
    return sum(xs[1:], xs[0])


def make_layer(name):
    cls = getattr(L, name)
    ctor, rank, _ = LAYER_SPECS[name]

    def make(rng):
        A = Args(rng)
        mode = choice(rng, ["call", "call", "call", "symbolic", "construct"])
        shape = _feature_shape(rng, 3 if rank == "multi" else rank, huge=mode == "symbolic" and rng.random() < 0.3)
        args, kwargs = ctor(rng, A, shape)
        kwargs = {**kwargs, **_common_kwargs(rng, A)}
        setup = _layer_setup(name, args, kwargs)
        if mode == "construct":
            return Call(f"layers.{name}", cls, args, kwargs, invalid=A.invalid, entry=f"layers.{name} (constructor)",
                        group=f"layers.{name}")
        if rank == "multi":
            return _merge_call(rng, name, cls, args, kwargs, shape, A, setup, symbolic=mode == "symbolic")
        if mode == "symbolic":
            return _symbolic_call(rng, name, cls, args, kwargs, shape, A, setup)
        x = _layer_input(rng, name, shape)
        training = choice(rng, [None, False, True])

        def run(x, training):
            layer = cls(*args, **kwargs)
            y = layer(x, training=training)
            before = None
            if name == "BatchNormalization" and not (training and layer.trainable):  # inference leaves them as they were
                before = (_w(layer.moving_mean), _w(layer.moving_variance))
            return layer, y, before

        def check(out):
            layer, y, before = out
            _check_layer_output(name, layer, x, y, training, before, direct=True)
        return Call(f"{setup}", run, (x,), dict(training=training), invalid=A.invalid, check=check,
                    entry=f"layers.{name}.__call__", group=f"layers.{name}", allow=_known_defect(name, x))
    return make


def _merge_call(rng, name, cls, args, kwargs, shape, A, setup, symbolic):
    k = choice(rng, [2, 2, 3, 1])
    shapes = [shape] + [tuple(s if rng.random() < 0.8 else s + 1 for s in shape) for _ in range(k - 1)]
    if symbolic:
        def run():
            ins = [cc.Input(s) for s in shapes]
            layer = cls(*args, **kwargs)
            return layer, layer(ins)

        def check(out):
            layer, t = out
            want = reference(lambda: _merge_shape(name, layer, shapes))
            if tuple(t.shape[1:]) != tuple(want):
                raise Mismatch("wrong shape", f"symbolic output shape {t.shape}, expected {(None,) + tuple(want)}")
        return Call(f"{setup}(<Inputs of shapes {shapes}>)", run, invalid=A.invalid, check=check,
                    entry=f"layers.{name} (symbolic)", group=f"layers.{name}")
    n = choice(rng, [1, 2])
    xs = [_layer_input(rng, name, s, n) for s in shapes]

    def run(xs):
        layer = cls(*args, **kwargs)
        return layer, layer(xs)

    def check(out):
        layer, y = out
        _check_layer_output(name, layer, xs, y, False)
    return Call(setup, run, (xs,), invalid=A.invalid, check=check, entry=f"layers.{name}.__call__",
                group=f"layers.{name}")


def _symbolic_call(rng, name, cls, args, kwargs, shape, A, setup):
    chain = name == "Flatten" and rng.random() < 0.5  # Flatten -> Dense: the parameter count of a huge input

    def run():
        layer = cls(*args, **kwargs)
        stack = [cc.Input(shape), layer] + ([L.Dense(2)] if chain else [])
        m = cc.Sequential(stack)
        return layer, m

    def check(out):
        layer, m = out
        want = reference(lambda: _expected_shape(name, layer, shape))
        if chain:
            want_params = (math.prod(shape) + 1) * 2
            if m.count_params() != want_params:
                raise Mismatch("wrong parameter count", f"Flatten -> Dense(2) on {shape}: {m.count_params()} "
                                                        f"parameters, expected {want_params}")
            want = (2,)
        got = tuple(m.output_shape[1:])
        if got != tuple(want):
            raise Mismatch("wrong shape", f"output shape {(None,) + got}, expected {(None,) + tuple(want)}")
        if math.prod(shape) <= 4096 and not chain:
            x = _layer_input(np.random.default_rng(1), name, shape, n=2)
            if np.asarray(x).dtype.kind in "biuf" and not is_huge(x):
                y = m.predict(x, batch_size=choice(np.random.default_rng(2), [1, 2]))
                before = (_w(layer.moving_mean), _w(layer.moving_variance)) if name == "BatchNormalization" else None
                _check_layer_output(name, layer, x, y, False, before)
    label = f"cc.Sequential([cc.Input({shape}), {setup}{', layers.Dense(2)' if chain else ''}])"
    return Call(label, run, invalid=A.invalid, check=check, entry=f"layers.{name} (in a Sequential)",
                group=f"layers.{name}")


def _mutate(rng, v, depth=0):
    """A config value replaced by something hostile (or kept)."""
    r = rng.random()
    if r < 0.6:
        return v
    return choice(rng, [None, -1, 0, 2 ** 62, 1.5, nan, "x", [], {}, [None], {"a": 1}, True, "relu" * 100,
                        [1, 2, 3, 4, 5, 6], -2 ** 63])


def make_deserialize(rng):
    """layers.deserialize of a serialized layer with keys dropped, values replaced, an
    unknown or private class name, or nested garbage."""
    name = choice(rng, list(LAYER_SPECS))
    A = Args(rng)
    args, kwargs = LAYER_SPECS[name][0](rng, Args(rng), (3, 4, 2))
    try:
        cfg = L.serialize(getattr(L, name)(*args, **kwargs))
    except Exception:  # noqa: BLE001 - an invalid constructor argument: serialize a default instead
        cfg = {"class_name": name, "config": {"name": "x"}}
    conf = dict(cfg.get("config", {}))
    r = rng.random()
    if r < 0.4:
        conf = {k: _mutate(rng, v) for k, v in conf.items()}
    elif r < 0.55 and conf:
        conf.pop(choice(rng, list(conf)))
    elif r < 0.65:
        cfg = dict(cfg, class_name=choice(rng, ["_Conv", "Nope", "os.system", "", None, 5, "Layer"]))
    elif r < 0.72:
        conf["bogus"] = 1
    elif r < 0.8:
        nested = {}
        for _ in range(int(rng.integers(50, 2000))):
            nested = {"class_name": name, "config": nested}
        cfg = nested
    d = dict(cfg, config=conf) if isinstance(cfg, dict) and "config" in cfg and r < 0.72 else cfg

    def check(layer):
        if not isinstance(layer, Layer):
            raise Mismatch("wrong result type", f"deserialize returned {type(layer).__name__}")
    return Call("layers.deserialize", L.deserialize, (d,), check=check)


# The functional forms of the merges (layers.add([a, b]), layers.dot([a, b], axes=1)): the
# class's arguments, eager or symbolic inputs, the class's reference.
FUNCTIONAL_MERGES = {"add": "Add", "subtract": "Subtract", "multiply": "Multiply", "average": "Average",
                     "maximum": "Maximum", "minimum": "Minimum", "concatenate": "Concatenate", "dot": "Dot"}


def make_functional_merge(fname):
    cls_name = FUNCTIONAL_MERGES[fname]
    cls, fn = getattr(L, cls_name), getattr(L, fname)

    def make(rng):
        A = Args(rng)
        shape = _feature_shape(rng, 3)
        args, kwargs = LAYER_SPECS[cls_name][0](rng, A, shape)
        kw = dict(kwargs, **({"axes": args[0]} if cls_name == "Dot" else {}))
        k = choice(rng, [2, 2, 3, 1])
        shapes = [shape] + [tuple(s if rng.random() < 0.8 else s + 1 for s in shape) for _ in range(k - 1)]
        if rng.random() < 0.3:
            def check_symbolic(t):
                want = reference(lambda: _merge_shape(cls_name, cls(*args, **kwargs), shapes))
                if tuple(t.shape[1:]) != tuple(want):
                    raise Mismatch("wrong shape", f"symbolic output shape {t.shape}, expected {(None,) + tuple(want)}")
            return Call(f"layers.{fname}", lambda: fn([cc.Input(s) for s in shapes], **kw), invalid=A.invalid,
                        check=check_symbolic, shown=((f"<Inputs of shapes {shapes}>",), kw),
                        entry=f"layers.{fname} (symbolic)", group=f"layers.{fname}")
        n = choice(rng, [1, 2])
        xs = [_layer_input(rng, cls_name, s, n) for s in shapes]

        def check(y):
            _check_layer_output(cls_name, cls(*args, **kwargs), xs, y, False)
        return Call(f"layers.{fname}", fn, (xs,), kw, invalid=A.invalid, check=check, group=f"layers.{fname}")
    return make


LAYERS = {n: make_layer(n) for n in LAYER_SPECS}
LAYERS.update({f"layers.{f}": make_functional_merge(f) for f in FUNCTIONAL_MERGES})
LAYERS["layers.deserialize"] = make_deserialize


# ============================================================================ models, training, attacks, inspection
# Tiny models built, compiled and trained inside the call (so every error is the call's),
# then fit / predict / evaluate / train_on_batch / gradients with random (sometimes
# invalid) data and arguments; the adversarial attacks, the inspection tools, the
# optimizers and the losses on such models.
def _model_spec(rng):
    kind = choice(rng, ["dense", "dense", "conv2d", "conv1d", "functional"])
    k = choice(rng, [2, 3])
    out = choice(rng, ["softmax", "softmax", "sigmoid", "linear"])
    spec = dict(kind=kind, k=k, out=out, f=choice(rng, [3, 4]), hidden=choice(rng, ["tanh", "relu", "sigmoid"]),
                bn=rng.random() < 0.3, dropout=rng.random() < 0.3, merge=choice(rng, ["Add", "Concatenate"]),
                pool=choice(rng, ["MaxPooling2D", "AveragePooling2D", None]),
                head=choice(rng, ["Flatten", "GlobalAveragePooling2D"]), padding=choice(rng, ["valid", "same"]))
    spec["shape"] = {"dense": (spec["f"],), "functional": (spec["f"],), "conv2d": (5, 4, 2), "conv1d": (6, 2)}[kind]
    return spec


def _describe_model(sp):
    h, k = sp["hidden"], sp["k"]
    tail = (["layers.BatchNormalization()"] if sp["bn"] else []) + (["layers.Dropout(0.3)"] if sp["dropout"] else [])
    if sp["kind"] == "dense":
        body = [f"layers.Dense(3, activation={h!r})"] + tail
    elif sp["kind"] == "conv2d":
        body = [f"layers.Conv2D(2, 2, activation={h!r}, padding={sp['padding']!r})"] + \
            ([f"layers.{sp['pool']}()"] if sp["pool"] else []) + tail + [f"layers.{sp['head']}()"]
    elif sp["kind"] == "conv1d":
        body = [f"layers.Conv1D(2, 2, activation={h!r})", "layers.GlobalMaxPooling1D()"] + tail
    else:
        return (f"i = cc.Input({sp['shape']}); m = cc.Model(i, layers.Dense({k}, activation={sp['out']!r})("
                f"layers.{sp['merge']}()([layers.Dense(3, activation={h!r})(i), layers.Dense(3)(i)])))")
    head = f"layers.Dense({k}, activation={sp['out']!r})"
    return f"m = cc.Sequential([cc.Input({sp['shape']}), {', '.join(body)}, {head}])"


def build_model(sp):
    h, k = sp["hidden"], sp["k"]
    tail = ([L.BatchNormalization()] if sp["bn"] else []) + ([L.Dropout(0.3, seed=1)] if sp["dropout"] else [])
    if sp["kind"] == "functional":
        i = cc.Input(sp["shape"])
        merged = getattr(L, sp["merge"])()([L.Dense(3, activation=h)(i), L.Dense(3)(i)])
        m = cc.Model(i, L.Dense(k, activation=sp["out"])(merged))
    else:
        if sp["kind"] == "dense":
            body = [L.Dense(3, activation=h)] + tail
        elif sp["kind"] == "conv2d":
            pool = [getattr(L, sp["pool"])()] if sp["pool"] else []
            body = [L.Conv2D(2, 2, activation=h, padding=sp["padding"])] + pool + tail + [getattr(L, sp["head"])()]
        else:
            body = [L.Conv1D(2, 2, activation=h), L.GlobalMaxPooling1D()] + tail
        m = cc.Sequential([cc.Input(sp["shape"])] + body + [L.Dense(k, activation=sp["out"])])
    m._fuzz_desc = _describe_model(sp)
    return m


def _loss_for(rng, sp):
    if sp["out"] == "softmax":
        return choice(rng, ["sparse_categorical_crossentropy", "categorical_crossentropy",
                            losses.SparseCategoricalCrossentropy()])
    return "binary_crossentropy" if sp["out"] == "sigmoid" else choice(rng, ["mse", losses.MeanSquaredError()])


def _targets(rng, A, loss, n, k):
    name = loss if isinstance(loss, str) else loss.name
    if name == "sparse_categorical_crossentropy":
        y = rng.integers(0, k, size=n)
    elif name == "categorical_crossentropy":
        y = np.eye(k, dtype=np.float32)[rng.integers(0, k, size=n)]
    elif name == "binary_crossentropy":
        y = (rng.random((n, k)) < 0.5).astype(np.float32)
    else:
        y = rng.standard_normal((n, k)).astype(np.float32)
    r = rng.random()
    if r < 0.03 and n:  # (fit must then raise; see the check)
        y = np.array(y, dtype=np.float64)
        y.flat[0] = nan
    elif r < 0.06 and name == "sparse_categorical_crossentropy" and n:
        y[0] = choice(rng, [k, -1, 10 * k])
        A.invalid.append(f"y=labels out of range ({y[0]} for {k} classes)")
    elif r < 0.08:
        y = y[:max(n - 1, 0)] if n else np.zeros((1,) + y.shape[1:], y.dtype)
        A.invalid.append("y=of another length")
    elif r < 0.09:
        y = np.array(["a"] * n)
        A.invalid.append("y=strings")
    return y


def _model_data(rng, A, sp, gpu=False):
    n = choice(rng, [1, 2, 3, 5, 8])
    x = arr(rng, shape=(n,) + sp["shape"], dtype="float32" if rng.random() < 0.8 else draw_dtype(rng, gpu),
            special=0.0, layout=False)
    r = rng.random()
    if r < 0.1 and x.dtype.kind == "f" and x.size:
        x = np.array(x)
        x.flat[int(rng.integers(x.size))] = choice(rng, [nan, inf, -inf])
    elif r < 0.14 and x.dtype.kind == "f":
        x = (x * 1e30).astype(x.dtype)  # overflows the forward pass
        A.overflow = True
    elif r < 0.17:
        x = arr(rng, shape=(n,) + sp["shape"][:-1] + (sp["shape"][-1] + 1,), dtype="float32", special=0.0,
                layout=False)
        A.invalid.append("x=of the wrong shape")
    x = relayout(rng, x, choice(rng, [k for k in LAYOUTS if k != "list"]))
    if x.dtype.kind not in "biuf":
        A.invalid.append(f"x=of dtype {x.dtype}")
    return x, n


BATCH_GOOD, BATCH_BAD = [None, 1, 2, 3, 32], [0, -1, -5, True, 1.5, "2", nan]


def _all_finite(model):
    return all(np.isfinite(np.asarray(w)).all() for w in model.get_weights())


def _weights_stay_finite(model_box):
    def after(exc):
        m = model_box.get("model")
        if m is not None and model_box.get("finite_before") and not _all_finite(m):
            raise Mismatch("non-finite weights after the error",
                           f"after {type(exc).__name__}: {exc}: some weights are NaN/inf (they were finite)")
    return after


def make_training(gpu=False):
    device = "gpu" if gpu else None

    def make(rng):
        A = Args(rng)
        sp = _model_spec(rng)
        loss = _loss_for(rng, sp)
        opt = A.pick("optimizer", ["adam", "sgd", "SGD", "rmsprop"], ["ftrl", 5, "bogus"], maybe=[None], p_bad=0.04)
        if rng.random() < 0.3:
            A.invalid = [v for v in A.invalid if not v.startswith("optimizer=")]
            opt = optimizers.SGD(learning_rate=choice(rng, [0.01, 0.1, 1e3]), momentum=choice(rng, [0.0, 0.9]),
                                 nesterov=choice(rng, [False, True])) if rng.random() < 0.5 else \
                optimizers.Adam(learning_rate=choice(rng, [1e-3, 0.1, 1e3]))
        metrics = A.pick("metrics", [None, ["accuracy"]], [["aucc"]], p_bad=0.04)
        x, n = _model_data(rng, A, sp, gpu)
        y = _targets(rng, A, loss, n, sp["k"])
        method = choice(rng, ["fit", "fit", "fit", "predict", "evaluate", "train_on_batch", "test_on_batch",
                              "loss_and_gradients", "input_gradient", "predict_on_batch"])
        kw = {}
        if method in ("fit", "predict", "evaluate"):
            kw["batch_size"] = A.pick("batch_size", BATCH_GOOD, BATCH_BAD, maybe=[2 ** 62, 2.0])
        if method == "fit":
            kw["epochs"] = A.pick("epochs", [1, 1, 2, 0], [-1, True, 1.5, "1", None])
            kw["validation_split"] = A.pick("validation_split", [0.0, 0.0, 0.25, 0.5], [1.0, -0.1, nan, 1.5, "0.1"])
            kw["shuffle"] = choice(rng, [True, False])
            kw["verbose"] = 0
            if rng.random() < 0.1:
                kw["initial_epoch"] = A.pick("initial_epoch", [0, 1], ["1", 1.5], maybe=[-1, 5])
        if method in ("predict", "predict_on_batch"):
            A.invalid = [v for v in A.invalid if not v.startswith("y=")]
        box = {}
        data_finite = finite(x) and (method in ("predict", "predict_on_batch") or finite(y)) and not A.overflow
        data_bad = not finite(x) or not (method in ("predict", "predict_on_batch") or finite(y))

        def run(x, y, **kw):
            cc.set_seed(int(rng.integers(0, 1000)))
            m = build_model(sp)
            m.compile(optimizer=opt, loss=loss, metrics=metrics, device=device)
            box["model"], box["finite_before"] = m, _all_finite(m)
            if method in ("predict", "predict_on_batch"):
                return m, getattr(m, method)(x, **kw)
            if method in ("fit", "evaluate"):
                return m, getattr(m, method)(x, y, **({"verbose": 0} if method == "evaluate" else {}), **kw)
            return m, getattr(m, method)(x, y)

        def check(out):
            m, r = out
            k = sp["k"]
            if not _all_finite(m):
                raise Mismatch("non-finite weights after a call that returned",
                               f"{method} returned {fmt(r)[:120]} but some weights are now NaN/inf")
            if method in ("predict", "predict_on_batch"):
                compare(np.asarray(r), np.zeros((n, k)), inf, what="predictions", nan_rule="finite-only")
                if data_finite and not np.isfinite(r).all():
                    raise Mismatch("non-finite predictions for finite input", f"{fmt(r)}")
                if n > 1 and data_finite and np.isfinite(r).all():
                    whole = m.predict(x, batch_size=n)
                    compare(np.asarray(r), whole, 1e-4, 1e-5, what="predict in batches vs in one batch")
            elif method == "fit":
                losses_ = r.history.get("loss", [])
                ep = kw.get("epochs", 1) - kw.get("initial_epoch", 0)
                if isinstance(ep, int) and len(losses_) != max(ep, 0):
                    raise Mismatch("wrong history", f"{len(losses_)} epochs of losses, expected {max(ep, 0)}")
                if not np.isfinite(losses_).all():
                    raise Mismatch("non-finite loss returned", f"fit returned losses {losses_}")
                if data_bad and losses_ and not kw.get("validation_split"):  # (NaN in validation data is no error)
                    raise Mismatch("trains on non-finite data", f"fit returned (losses {losses_}) for data with "
                                                                 "NaN/inf; must raise FloatingPointError or ValueError")
            elif method in ("evaluate", "test_on_batch", "train_on_batch"):
                vals = np.atleast_1d(np.asarray(r, dtype=np.float64))
                if data_finite and not np.isfinite(vals).all() and method != "train_on_batch":
                    if finite(np.asarray(m.predict(x))):
                        raise Mismatch("non-finite loss for finite data", f"{method} returned {r}")
                if method == "train_on_batch" and not np.isfinite(vals).all():
                    raise Mismatch("non-finite loss returned", f"train_on_batch returned {r}")
            elif method == "loss_and_gradients":
                lv, grads = r
                for g, w in zip(grads, m.get_weights()):
                    if np.shape(g) != np.shape(w):
                        raise Mismatch("wrong gradient shape", f"gradient {np.shape(g)} for weight {np.shape(w)}")
            elif method == "input_gradient":
                if np.shape(r) != np.shape(x):
                    raise Mismatch("wrong shape", f"input gradient of shape {np.shape(r)} for x of {np.shape(x)}")
        desc = _describe_model(sp)
        setup = f"{desc}; m.compile(optimizer={fmt(opt)}, loss={fmt(loss)}, metrics={fmt(metrics)}" + \
            (", device='gpu')" if gpu else ")")
        return Call(f"m.{method}", run, (x, y) if method not in ("predict", "predict_on_batch") else (x,),
                    kw, invalid=A.invalid, check=check, setup=setup, entry=f"Model.{method}",
                    allow=(FloatingPointError,) if method in ("fit", "train_on_batch") else (),
                    on_raise=_weights_stay_finite(box), group=f"Model.{method}")
    return make


def _attack_model(rng):
    sp = _model_spec(rng)
    sp["out"] = "softmax"
    return sp


def make_attack(name):
    def make(rng):
        A = Args(rng)
        sp = _attack_model(rng)
        n = choice(rng, [1, 2, 3, 5])
        x = rng.uniform(0, 1, (n,) + sp["shape"]).astype(choice(rng, ["float32", "float32", "float64"]))
        r = rng.random()
        if r < 0.06:
            x.flat[0] = nan
            A.invalid.append("x=with NaN")
        elif r < 0.1:
            x = x * 3 - 1
            A.invalid.append("x=outside [clip_min, clip_max]")
        x = relayout(rng, x, choice(rng, [k for k in LAYOUTS if k != "list"]))
        y = rng.integers(0, sp["k"], size=n)
        if rng.random() < 0.05 and name != "random_perturbation":
            y = y[:-1]
            A.invalid.append("y=of another length")
        eps = A.pick("eps", [0.0, 0.05, 0.1, 0.3, np.float32(0.2)], [-0.1, nan, inf, "0.1", None], maybe=[True, 1e6])
        clip = A.pick("clip", [(0.0, 1.0), (0.0, 1.0), (-1.0, 2.0)], [(1.0, 0.0), (0.5, 0.5), (nan, 1.0)])
        if clip == (-1.0, 2.0) and "x=outside [clip_min, clip_max]" in A.invalid:
            A.invalid.remove("x=outside [clip_min, clip_max]")
        kw = dict(clip_min=clip[0], clip_max=clip[1])
        if name in ("fgsm", "pgd", "robust_accuracy"):
            kw["batch_size"] = A.pick("batch_size", [1, 2, 3, 256], [0, -1, -5, True, 1.5, "2"] +
                                      ([None] if name != "robust_accuracy" else []), maybe=[2 ** 62, None])
        if name in ("pgd", "random_perturbation"):
            kw["norm"] = A.pick("norm", ["inf", "2", "l2", "linf", np.inf, 2], ["l1", None, 1, "max"])
            kw["seed"] = A.pick("seed", [None, 0, 1], ["a"], maybe=[-1, 2 ** 64])
        if name == "pgd":
            kw["steps"] = A.pick("steps", [1, 2, 3], [0, -1, True, 1.5, None, "2"])
            kw["alpha"] = A.pick("alpha", [None, 0.01, 0.1], [-0.1, nan, inf, "a"])
            kw["random_start"] = choice(rng, [True, False])
        if name == "robust_accuracy":
            kw["attack"] = A.pick("attack", ["fgsm", "pgd", "random", "none"], ["bim", 5, None])
            if kw["attack"] == "pgd":
                kw["steps"] = 2
            if kw["attack"] == "none":
                kw = {"attack": "none", "batch_size": kw["batch_size"]}
                A.invalid = [v for v in A.invalid if not v.startswith(("eps", "clip", "x="))]
            else:
                kw["eps"] = eps
        box = {}

        def run(x, y, **kw):
            cc.set_seed(3)
            m = build_model(sp)
            m.compile("adam", "sparse_categorical_crossentropy")
            box["model"] = m
            if name == "random_perturbation":
                return getattr(adversarial, name)(x, eps, **kw)
            if name == "robust_accuracy":
                return adversarial.robust_accuracy(m, x, y, **kw)
            return getattr(adversarial, name)(m, x, y, eps, **kw)

        def check(adv):
            if name == "robust_accuracy":
                if not (isinstance(adv, float) and 0.0 <= adv <= 1.0):
                    raise Mismatch("wrong values", f"robust_accuracy returned {adv!r}, not a float in [0, 1]")
                return
            adv = np.asarray(adv)
            if adv.shape != np.shape(x):
                raise Mismatch("wrong shape", f"adversarial examples of shape {adv.shape} for x of {np.shape(x)}")
            if not np.isfinite(adv).all():
                raise Mismatch("non-finite adversarial examples", f"{int((~np.isfinite(adv)).sum())} NaN/inf")
            lo, hi = clip
            if adv.min() < lo - 1e-6 or adv.max() > hi + 1e-6:
                raise Mismatch("outside the pixel range", f"values in [{adv.min()}, {adv.max()}], clip [{lo}, {hi}]")
            d = adv.astype(np.float64) - np.asarray(x, dtype=np.float64)
            e = float(eps)
            norm = str(kw.get("norm", "inf")).lower()
            if norm in ("inf", "linf", "np.inf"):
                if np.abs(d).max() > e * (1 + 1e-5) + 1e-6:
                    raise Mismatch("outside the eps-ball", f"|delta|_inf = {np.abs(d).max()} > eps = {e}")
            else:
                nrm = np.sqrt((d.reshape(len(d), -1) ** 2).sum(axis=1))
                if nrm.max() > e * (1 + 1e-4) + 1e-6:
                    raise Mismatch("outside the eps-ball", f"|delta|_2 = {nrm.max()} > eps = {e}")
            if name == "fgsm":
                m = box["model"]
                bs = int(kw["batch_size"])
                g = np.concatenate([m.input_gradient(x[s:s + bs], y[s:s + bs]) for s in range(0, len(x), bs)])
                want = np.clip(np.asarray(x, np.float64) + e * np.sign(g), lo, hi)
                tiny = np.abs(g) <= 1e-6 * max(np.abs(g).max(), 1e-30)
                bad = (np.abs(adv - want) > 1e-5 + 1e-5 * e) & ~tiny
                if bad.any():
                    i = _first(bad)
                    raise Mismatch("wrong values", f"fgsm entry {i} is {adv[i]!r}, expected clip(x + eps * "
                                                   f"sign(grad)) = {want[i]!r} (grad {g[i]!r})")
        setup = _describe_model(sp) + "; m.compile('adam', 'sparse_categorical_crossentropy')"
        args = (x, eps) if name == "random_perturbation" else (x, y)
        label = f"adversarial.{name}"
        shown = ((x, eps), kw) if name == "random_perturbation" else ((("m", x, y) if name == "robust_accuracy" else
                                                                        ("m", x, y, eps)), kw)
        return Call(label, run, (x, y), kw, invalid=A.invalid, check=check, setup=setup, shown=_shown(shown),
                    group=f"adversarial.{name}")
    return make


class _Name:
    """A name shown as is in a reproducer (the model ``m``)."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


def _shown(shown):
    args, kw = shown
    return tuple(_Name(a) if isinstance(a, str) and a == "m" else a for a in args), kw


def _inspect_model(rng):
    sp = _model_spec(rng)
    if sp["kind"] == "dense" and rng.random() < 0.5:
        sp["kind"], sp["shape"] = "conv2d", (5, 4, 2)
    sp["out"] = "softmax"
    return sp


def _layer_arg(rng, A, m_layers, input_name):
    n = len(m_layers)
    good = list(range(n)) + [-1] + ["__name__", "__layer__"]
    v = A.pick("layer", good, ["nope", n + 3, -n - 5, True, None, 1.5], maybe=["__input__", 0])
    return v


def make_inspect(name):
    def make(rng):
        A = Args(rng)
        sp = _inspect_model(rng)
        n = choice(rng, [1, 2, 4])
        x = rng.uniform(0, 1, (n,) + sp["shape"]).astype("float32")
        if rng.random() < 0.08:
            x = x[..., :-1] if x.shape[-1] > 1 else x[..., None]
            A.invalid.append("x=of the wrong shape")
        layer_sel = _layer_arg(rng, A, range(5), "input")
        kw = {}
        if name in ("feature_maps", "top_activating"):
            kw["batch_size"] = A.pick("batch_size", [1, 2, 128], [0, -1, True, 1.5], maybe=[None])
        unit = A.pick("unit", [0, 1], [-1, 99, True, 1.5, None, "0"])
        if name == "top_activating":
            kw["k"] = A.pick("k", [1, 3, 100], [0, -1, True, 1.5, "2"])
        if name == "maximize_activation":
            kw["steps"] = A.pick("steps", [1, 2, 3], [0, -1, True, 1.5, None])
            kw["lr"] = A.pick("lr", [0.05, 1.0], [0.0, -1.0, nan, inf])
            kw["l2"] = A.pick("l2", [1e-3, 0.0], [-1.0, nan])
            kw["tv"] = A.pick("tv", [0.0, 0.1], [-0.1, nan])
            kw["blur_every"] = A.pick("blur_every", [0, 1, 2], [-1, 1.5, True])
            kw["jitter"] = A.pick("jitter", [0, 1], [-1, 1.5, True])
            kw["seed"] = choice(rng, [None, 0])
            kw["value_range"] = A.pick("value_range", [None, (0.0, 1.0)], [(1.0, 0.0), (0.0,), (nan, 1.0)])
            if rng.random() < 0.15:
                kw["x0"] = A.pick("x0", [np.zeros(sp["shape"])], [np.zeros((2, 2)), "a"])
        class_index = A.pick("class_index", [0, sp["k"] - 1, np.zeros(n, dtype=int)],
                             [-1, sp["k"], 1.5, None, "a", np.zeros(n + 1, dtype=int)])

        def resolve(m):
            if layer_sel == "__name__":
                return m.layers[-2].name
            if layer_sel == "__layer__":
                return m.layers[1]
            if layer_sel == "__input__":
                return m.inputs[0].node.layer.name
            return layer_sel

        def run(x):
            cc.set_seed(5)
            m = build_model(sp)
            m.compile("adam", "sparse_categorical_crossentropy")
            lay = resolve(m)
            if name == "feature_maps":
                return m, lay, cinspect.feature_maps(m, x, lay, **kw)
            if name == "activation_model":
                return m, lay, cinspect.activation_model(m, lay)
            if name == "top_activating":
                return m, lay, cinspect.top_activating(m, lay, unit, x, **kw)
            if name == "maximize_activation":
                return m, lay, cinspect.maximize_activation(m, lay, unit, **kw)
            if name == "saliency":
                return m, lay, cinspect.saliency(m, x, class_index)
            raise KeyError(name)

        def check(out):
            m, lay, r = out
            if name == "saliency":
                if np.shape(r) != np.shape(x) or not np.isfinite(r).all():
                    raise Mismatch("wrong result", f"saliency of shape {np.shape(r)} (x {np.shape(x)}), finite: "
                                                   f"{bool(np.isfinite(r).all())}")
                return
            sub = cinspect.activation_model(m, lay)
            if name == "activation_model":
                return
            if name == "feature_maps":
                want = sub.predict(x, batch_size=len(x) or 1)
                compare(np.asarray(r), want, 1e-5, 1e-6, what="feature maps vs the activation model's predict")
                if sp["kind"] != "functional":
                    h = x
                    for layer in m.layers:
                        h = layer(h, training=False)
                        if layer is sub.outputs[0].node.layer:
                            break
                    compare(np.asarray(r), np.asarray(h), 1e-5, 1e-6, what="feature maps vs the layers called in turn")
            elif name == "top_activating":
                idx, scores = r
                want_k = min(int(kw["k"]), len(x))
                if len(idx) != want_k or np.any(np.diff(scores) > 0):
                    raise Mismatch("wrong values", f"{len(idx)} indices (expected {want_k}), scores {scores}")
                h = sub.predict(x)[..., int(unit)]
                ref = np.abs(h.reshape(len(h), -1)).max(axis=1)
                compare(np.asarray(scores), ref[np.asarray(idx, dtype=int)], 1e-5, 1e-6, what="scores")
            elif name == "maximize_activation":
                img, trace = r
                if np.shape(img) != tuple(sp["shape"]) or len(trace) != int(kw["steps"]) + 1:
                    raise Mismatch("wrong shape", f"image {np.shape(img)} (expected {sp['shape']}), trace of "
                                                  f"{len(trace)} (expected {int(kw['steps']) + 1})")
                if not (np.isfinite(img).all() and np.isfinite(trace).all()):
                    raise Mismatch("non-finite result", "maximize_activation returned NaN/inf")
        call_kw = dict(kw)
        shown_args = {"feature_maps": (_Name("m"), x, _Name("layer")), "activation_model": (_Name("m"), _Name("layer")),
                      "top_activating": (_Name("m"), _Name("layer"), unit, x),
                      "maximize_activation": (_Name("m"), _Name("layer"), unit), "saliency": (_Name("m"), x,
                                                                                              class_index)}[name]
        if name != "saliency":
            A.invalid = [v for v in A.invalid if not v.startswith("class_index")]
        if name not in ("top_activating", "maximize_activation"):
            A.invalid = [v for v in A.invalid if not v.startswith("unit")]
        if name == "saliency":
            A.invalid = [v for v in A.invalid if not v.startswith("layer")]
        if name in ("activation_model", "maximize_activation"):
            A.invalid = [v for v in A.invalid if not v.startswith("x=")]
        layer_text = {"__name__": "m.layers[-2].name", "__layer__": "m.layers[1]",
                      "__input__": "m.inputs[0].node.layer.name"}.get(layer_sel, repr(layer_sel))
        setup = _describe_model(sp) + f"; m.compile('adam', 'sparse_categorical_crossentropy'); layer = {layer_text}"
        return Call(f"inspect.{name}", run, (x,), {}, invalid=A.invalid, check=check, setup=setup,
                    shown=(shown_args, call_kw), group=f"inspect.{name}")
    return make


def make_plot(rng):
    A = Args(rng)
    which = choice(rng, ["plot_filters", "plot_feature_maps"])
    cols = A.pick("cols", [1, 3, 8], [0, -1, True, 1.5, "2"])
    if which == "plot_filters":
        channel = A.pick("channel", [None, 0], [5, -7, 1.5, "a"])

        def run():
            import matplotlib
            matplotlib.use("Agg")
            lay = L.Conv2D(3, 2)
            lay(np.zeros((1, 4, 4, 2), np.float32))
            return cinspect.plot_filters(lay, cols=cols, channel=channel)
        shown = ((_Name("layers.Conv2D(3, 2) called on (1, 4, 4, 2)"),), dict(cols=cols, channel=channel))
    else:
        maps = choose(rng, [np.zeros((4, 4, 3)), np.zeros((1, 4, 4, 2))], [np.zeros((4, 4)), np.zeros((2, 4, 4, 2))])

        def run():
            import matplotlib
            matplotlib.use("Agg")
            return cinspect.plot_feature_maps(maps, cols=cols)
        shown = ((maps,), dict(cols=cols))

    def check(fig):
        import matplotlib.pyplot as plt
        plt.close(fig)
    return Call(f"inspect.{which}", lambda: run(), invalid=A.invalid, check=check, shown=shown,
                on_raise=lambda e: __import__("matplotlib.pyplot").pyplot.close("all"), group=f"inspect.{which}")


def make_optimizer(rng):
    A = Args(rng)
    kind = choice(rng, ["SGD", "Adam", "get"])
    if kind == "get":
        ident = A.pick("identifier", ["sgd", "adam", "SGD", "Adam", optimizers.SGD()], ["ftrl", None, 5, ""])
        return Call("optimizers.get", optimizers.get, (ident,), invalid=A.invalid,
                    check=lambda o: None if isinstance(o, optimizers.Optimizer) else (_ for _ in ()).throw(
                        Mismatch("wrong result type", f"optimizers.get returned {o!r}")), group="optimizers.get")
    lr = A.pick("learning_rate", [0.01, 0.1, 1e-3], POS_FLOAT_BAD, maybe=[1e30, True])
    if kind == "SGD":
        kw = dict(learning_rate=lr, momentum=A.pick("momentum", [0.0, 0.5, 0.9, 1.0], [-0.1, 1.5, nan, "a", None]),
                  nesterov=choice(rng, [False, True]))
    else:
        kw = dict(learning_rate=lr, beta_1=A.pick("beta_1", [0.9, 0.0, 0.5], [1.0, -0.1, nan, "a"]),
                  beta_2=A.pick("beta_2", [0.999, 0.0], [1.0, 1.5, nan]),
                  epsilon=A.pick("epsilon", [1e-7, 1e-3], [0.0, -1.0, nan, inf]))
    shape = draw_shape(rng, int(rng.integers(0, 3)), hi=4)
    p0 = rng.standard_normal(shape).astype(np.float32)
    g = arr(rng, shape=shape if rng.random() < 0.92 else shape + (2,), dtype="float32", special=0.1)

    def run(**kw):
        opt = getattr(optimizers, kind)(**kw)
        v = cc.Variable(p0.copy(), name="w")
        opt.apply_gradients([(g, v)])
        return v.numpy()

    def check(p1):
        if not finite(g):
            return
        lr_, gg, p = float(lr), f64(g), f64(p0)
        if kind == "SGD":
            m = float(kw["momentum"])
            want = p - lr_ * gg * ((1 + m) if kw["nesterov"] and m > 0 else 1.0)
        else:
            b1, b2, e = float(kw["beta_1"]), float(kw["beta_2"]), float(kw["epsilon"])
            mm, vv = (1 - b1) * gg, (1 - b2) * gg * gg
            want = p - lr_ * math.sqrt(1 - b2) / (1 - b1) * mm / (np.sqrt(vv) + e)
        scale = lr_ * (amax(gg) + 1.0) if kind == "SGD" else lr_ * 10
        compare(np.asarray(p1), want, 1e-4, 1e-5 * scale + 1e-6, what="the variable after one step")
    return Call(f"optimizers.{kind}", run, (), kw, invalid=A.invalid, check=check,
                setup=f"v = cc.Variable({fmt(p0)}); opt.apply_gradients([({fmt(g)}, v)]) with opt =",
                group=f"optimizers.{kind}")


def make_loss_object(rng):
    A = Args(rng)
    name = A.pick("name", ["mse", "mean_squared_error", "sparse_categorical_crossentropy", "categorical_crossentropy",
                           "binary_crossentropy"], ["hinj", None, 5])
    n, k = choice(rng, [1, 2, 3]), choice(rng, [2, 3])
    p = rng.uniform(0.05, 1, (n, k)).astype(np.float32)
    p /= p.sum(axis=1, keepdims=True)
    logits = choice(rng, [False, True])
    if name == "sparse_categorical_crossentropy":
        y = rng.integers(0, k, size=n)
    elif name == "categorical_crossentropy":
        y = np.eye(k, dtype=np.float32)[rng.integers(0, k, size=n)]
    else:
        y = (rng.random((n, k)) < 0.5).astype(np.float32)
    sw = A.pick("sample_weight", [None], [np.ones(n)], p_bad=0.05)

    def run(y, p, sample_weight=None):
        return losses.get(name).__class__(from_logits=logits)(y, p, sample_weight=sample_weight) \
            if isinstance(name, str) and name in losses._LOSSES else losses.get(name)(y, p)

    def check(v):
        v = float(np.asarray(v.numpy() if isinstance(v, cc.Tensor) else v))
        dt = np.dtype(np.float32)
        if name in ("mse", "mean_squared_error"):
            want = np.mean((f64(p) - f64(y)) ** 2)
        elif name == "binary_crossentropy":
            want = np.mean(make_binary_crossentropy_ref(y, p, logits, dt))
        else:
            oh = np.eye(k)[y] if name == "sparse_categorical_crossentropy" else f64(y)
            want = np.mean(_cce_ref(oh, p, logits, clip_dtype=dt))
        compare(np.asarray(v), np.asarray(want), 1e-4, 1e-5, what=f"{name} loss")
    return Call(f"losses.get({name!r})(from_logits={logits})", run, (y, p), dict(sample_weight=sw),
                invalid=A.invalid, check=check, entry="losses", group="losses")


def make_settings(rng):
    """The package-level settings with random arguments; the previous state is restored."""
    which = choice(rng, ["set_num_threads", "set_seed", "set_floatx", "set_device", "Input", "Sequential", "Model"])
    A = Args(rng)
    if which == "set_num_threads":
        arg = A.pick("n", [1, 2], POS_INT_BAD, maybe=[2 ** 62, 10 ** 6])
    elif which == "set_seed":
        arg = A.pick("seed", [0, 1, 12345, 2 ** 32], [-1, 1.5, "a", None, nan], maybe=[True, 2 ** 70])
    elif which == "set_floatx":
        arg = A.pick("dtype", ["float32", "float64"], ["float16", "int32", None, 5, "FLOAT32"])
    elif which == "set_device":
        arg = A.pick("device", ["cpu", "CPU"], ["tpu", "", None, 1, "cuda"])
    elif which == "Input":
        arg = A.pick("shape", [(3,), (2, 2), 4, (1, 1, 1)], [(0,), (-1,), (2.5,), (True,), "3"],
                     maybe=[(None, 3), (2 ** 62,), (None,) * 70, (1,) * 100])
    elif which == "Sequential":
        arg = A.pick("layers", [[L.Dense(2)], [], None], [[5], "x", [L.Dense(2), None]], maybe=[[L.Dense(2)] * 2])
    else:
        arg = A.pick("inputs", ["ok"], [None, 5, "x", []])

    def run(arg):
        threads, floatx, dev = cc.get_num_threads(), cc.backend.floatx(), cc.get_device()
        try:
            if which == "Model":
                i = cc.Input((3,))
                return cc.Model(i if arg == "ok" else arg, L.Dense(2)(i))
            return getattr(cc, which)(arg)
        finally:
            cc.set_num_threads(threads)
            cc.set_floatx(floatx)
            cc.set_device(dev)
    return Call(f"convcore.{which}", run, (arg,), invalid=A.invalid, group=f"convcore.{which}")


MODELS = {"convcore settings": make_settings, "Model.train/predict": make_training(),
          **{f"adversarial.{n}": make_attack(n) for n in adversarial.__all__},
          **{f"inspect.{n}": make_inspect(n) for n in ("feature_maps", "activation_model", "top_activating",
                                                       "maximize_activation", "saliency")},
          "inspect.plot": make_plot, "optimizers": make_optimizer, "losses": make_loss_object}
MODELS = weighted(MODELS, {"Model.train/predict": 8, "adversarial.fgsm": 2, "adversarial.pgd": 2,
                           "optimizers": 2})


# ============================================================================ GPU
# The filter and op cases again, with float32 inputs as GPU tensors / device='gpu', each
# against the same call on the CPU: the same acceptance, the same values (float32
# tolerance) and the same NaN and inf positions. Then tiny models compiled for the GPU:
# trained (finite weights and losses, or FloatingPointError) and predicted (as the CPU
# model with the same weights).
def _gpu_parity(cpu_call, what, inputs=(), rule="exact"):
    """GPU result == CPU result: values within the tolerance of the least precise float
    input, NaN/inf positions by ``rule``. The GPU stores integers as uint32 (documented):
    for integer inputs only the acceptance is compared, not the values."""
    arrays = [np.asarray(a) for a in _flat(list(inputs)) if isinstance(a, np.ndarray)]
    ints = any(a.dtype.kind in "biu" for a in arrays)
    r = max([1e-4] + [rtol_of(a.dtype) for a in arrays if a.dtype.kind == "f" and a.dtype.itemsize < 4])
    zero_d = any(a.ndim == 0 for a in arrays)

    def check(got):
        ok, want = _invoke(cpu_call, (), {})
        if not ok:
            if any(a.dtype.kind == "b" for a in arrays):
                # The GPU holds bools as uint32 (documented): an op numpy refuses for bools
                # (sign, subtract) is an op on integers there.
                raise NoReference("bool input: the GPU computes on uint32")
            if isinstance(want, OK_ERRORS):
                native = "float32 or float64" in str(want)  # one cause: the CPU kernels' dtype check
                raise Mismatch("the GPU accepts what the CPU rejects",
                               f"the GPU returned; the CPU raises {type(want).__name__}: {str(want)[:200]}",
                               group="GPU vs CPU native kernels (byte-swapped / integer input)" if native else None)
            raise NoReference("the CPU call fails")
        if ints:
            return
        if what == "op":
            gg, wg = (got[1][1] if got[1] else None), (want[1][1] if want[1] else None)
            if gg is not None and wg is not None:  # gradients where both devices have them
                pairs = [(a, b) for a, b in zip(gg, wg) if a is not None and b is not None]
                got, want = (got[0], [a for a, _ in pairs]), (want[0], [b for _, b in pairs])
            else:
                got, want = got[0], want[0]
        # A filter's float32 sums on the GPU are off by about eps * sum|w * x|, which the
        # input's magnitude bounds (the filters' weights sum to at most a few in absolute
        # value) even where the result cancels to far less: the CPU sums float32 data in
        # float64 for its Gaussians and long windows.
        scale = max([amax(a) for a in arrays if a.dtype.kind == "f"] + [0.0]) if what == "filter" else 0.0
        try:
            compare_any(_none_as_zero(got), _none_as_zero(want), r, lambda w: r * (max(amax(w), scale) + 1.0), rule,
                        what="GPU vs CPU")
        except Mismatch as m:
            if m.tag == "wrong shape" and zero_d:
                m.group = "GPU (0-d tensors)"
            raise
    return check


def _none_as_zero(v):
    if isinstance(v, (list, tuple)):
        return type(v)(_none_as_zero(e) for e in v)
    if isinstance(v, cc.Tensor):
        return v.numpy()
    return np.zeros(0) if v is None else v


def _float32_only(values):
    arrays = [a for a in _flat(list(values)) if isinstance(a, np.ndarray)]
    return bool(arrays) and all(a.dtype == np.float32 for a in arrays)


def _gpu_raise_check(cpu_call, inputs):
    def after(exc):
        if isinstance(exc, TypeError) and not _float32_only(inputs):
            return  # float64 and other dtypes: the GPU computes in float32 (documented)
        if any(t in str(exc) for t in ("float32", "uint32", "float64", "too large for the GPU")):
            return  # a dtype the GPU does not store (float32 and uint32 only), a GPU size limit: documented
        ok, _ = _invoke(cpu_call, (), {})
        if ok and _float32_only(inputs) and not isinstance(exc, MemoryError):
            raise Mismatch("the GPU rejects what the CPU accepts",
                           f"the GPU raises {type(exc).__name__}: {str(exc)[:200]}; the CPU returns")
    return after


def make_gpu_filter(name, maker):
    def make(rng):
        call = maker(rng)
        fn = call.fn
        args, kwargs = call.args, dict(call.kwargs)
        inputs = list(args) + list(kwargs.values())
        rule, cpu_args = "exact", args
        if name in ("signal.correlate", "signal.convolve") and args[3] in ("fft", "auto") and \
                not finite(args[0], args[1]):
            # FFT with NaN/inf input: non-finite at least where the direct method is, on the GPU too
            rule, cpu_args = "ref-nonfinite", tuple(args[:3]) + ("direct",)
        cpu = lambda: fn(*cpu_args, **kwargs, device="cpu")  # noqa: E731
        return Call(call.label, lambda *a, **kw: fn(*a, **kw, device="gpu"), args, kwargs,
                    check=_gpu_parity(cpu, "filter", inputs, rule), on_raise=_gpu_raise_check(cpu, inputs),
                    entry=f"GPU {call.key_entry()}", shown=(args, {**kwargs, "device": "gpu"}))
    return make


def _tensorize(v, device):
    if isinstance(v, Wrapped):
        return Wrapped(v.value, "tensor", device)
    if isinstance(v, list):
        return [_tensorize(e, device) for e in v]
    return v


def make_gpu_op(name, maker):
    def make(rng):
        call = maker(rng)
        cpu_call = _copy.copy(call)
        cpu_call.args = tuple(_tensorize(a, "cpu") for a in call.args)
        cpu_call.kwargs = {k: _tensorize(v, "cpu") for k, v in call.kwargs.items()}
        gpu_call = _copy.copy(call)
        gpu_call.args = tuple(_tensorize(a, "gpu") for a in call.args)
        gpu_call.kwargs = {k: _tensorize(v, "gpu") for k, v in call.kwargs.items()}
        gpu_call.shown = (gpu_call.args, gpu_call.kwargs)

        def cpu():
            return cpu_call.fn(*cpu_call.args, **cpu_call.kwargs)
        inputs = [as_numpy(a) for a in call.args] + [as_numpy(v) for v in call.kwargs.values()]
        gpu_call.invalid = []
        if name != "dropout":  # (the devices draw different masks: dropout keeps the CPU's rule check)
            gpu_call.check = _gpu_parity(cpu, "op", inputs)
        gpu_call.on_raise = _gpu_raise_check(cpu, inputs)
        gpu_call.entry = f"GPU ops.{name}"
        gpu_call.group = None
        return gpu_call
    return make


def make_gpu_predict(rng):
    """A model compiled for the GPU predicts what the CPU model with the same weights does."""
    sp = _model_spec(rng)
    n = choice(rng, [1, 2, 5])
    x = arr(rng, shape=(n,) + sp["shape"], dtype="float32", special=0.1, layout=False)
    bs = choice(rng, [None, 1, 2])

    def run(x):
        cc.set_seed(7)
        m = build_model(sp)
        m.compile("adam", "mse", device="gpu")
        return m, m.predict(x, batch_size=bs)

    def check(out):
        m, y = out
        c = build_model(sp)
        c.set_weights(m.get_weights())
        want = c.predict(x, batch_size=bs)
        compare(np.asarray(y), want, 1e-4, 1e-4 * (amax(want) + 1), "exact", what="GPU vs CPU predictions")
    return Call("m.predict", run, (x,), check=check, entry="GPU Model.predict",
                setup=_describe_model(sp) + "; m.compile('adam', 'mse', device='gpu')",
                shown=((x,), {"batch_size": bs}))


def gpu_entries():
    e = {f"filters {n}": make_gpu_filter(n, m) for n, m in filter_entries(gpu=True).items()}
    e.update({f"ops {n}": make_gpu_op(n, m) for n, m in op_entries(gpu=True).items()})
    e["Model.train (GPU)"] = make_training(gpu=True)
    e["Model.predict (GPU)"] = make_gpu_predict
    return weighted(e, {"Model.train (GPU)": 25, "Model.predict (GPU)": 10,
                        **{n: 3 for n in e if n.startswith("filters")}})


GPU = gpu_entries()


# ============================================================================ the tests
def test_fuzz_filters(pytestconfig):
    """signal, ndimage, pooling and the kernel builders against scipy / numpy."""
    run_family("filters", FILTERS, pytestconfig)


def test_fuzz_ops(pytestconfig):
    """Every convcore.ops op (and the Tensor methods) against numpy."""
    run_family("ops", OPS, pytestconfig)


def test_fuzz_layers(pytestconfig):
    """Every layer class: constructed, called, and in a Sequential (shapes up to 2**62)."""
    run_family("layers", LAYERS, pytestconfig)


def test_fuzz_models(pytestconfig):
    """Tiny models trained and predicted; attacks, inspection tools, optimizers, losses."""
    run_family("models", MODELS, pytestconfig)


def test_every_public_entry_point_is_fuzzed():
    """A new public function, op or layer fails this test until it has an entry in the
    tables above (so the fuzz test keeps covering everything)."""
    missing = []
    op_names = {n for n in dir(ops) if not n.startswith("_") and callable(getattr(ops, n))
                and not isinstance(getattr(ops, n), type) and getattr(getattr(ops, n), "__module__", "").startswith(
                    "convcore")}
    missing += [f"ops.{n}" for n in sorted(op_names - set(OPS) - {"image"})]
    missing += [f"ops.image.{n}" for n in ("resize",) if "image.resize" not in OPS]
    filters = {n.split(".", 1)[1] for n in FILTERS}
    for mod, prefix in ((csig, "signal"), (cn, "ndimage"), (cpool, "pooling")):
        missing += [f"{prefix}.{n}" for n in mod.__all__ if n not in filters]
    layer_classes = {n for n in L.__all__ if isinstance(getattr(L, n), type) and issubclass(getattr(L, n), Layer)}
    # Keras's aliases (MaxPool2D is MaxPooling2D, Convolution2D is Conv2D) share their class's entry
    fuzzed = {getattr(L, n) for n in LAYERS if isinstance(getattr(L, n, None), type)}
    missing += [f"layers.{n}" for n in sorted(layer_classes - set(LAYERS) - {"Layer", "InputLayer", "KerasTensor"})
                if getattr(L, n) not in fuzzed]
    # the functional forms (layers.add, ...); Input runs in every symbolic case, serialize in deserialize's
    missing += [f"layers.{n}" for n in L.__all__ if n not in layer_classes and callable(getattr(L, n))
                and not isinstance(getattr(L, n), type) and f"layers.{n}" not in LAYERS
                and n not in ("Input", "serialize")]
    missing += [f"adversarial.{n}" for n in adversarial.__all__ if f"adversarial.{n}" not in MODELS]
    fuzzed_inspect = {n.split(".", 1)[1] for n in MODELS if n.startswith("inspect.")} | {"plot_filters",
                                                                                        "plot_feature_maps"}
    missing += [f"inspect.{n}" for n in cinspect.__all__ if n not in fuzzed_inspect]
    assert not missing, f"public entry points with no fuzz entry: {missing}"


@pytest.mark.skipif(not HAVE_GPU, reason="no GPU adapter (CI requires one: lavapipe)")
def test_fuzz_gpu(pytestconfig):
    """The filter and op cases on device='gpu' against the CPU, and models compiled for the GPU."""
    run_family("gpu", GPU, pytestconfig)
