"""The hostile-file corpus (tests/hostile_corpus.py) loaded with ``load_model`` and
``load_weights`` in a child process under an address-space limit: every file is
refused with the expected error naming it (the control files load), within bounded
memory and time, without writing a file or running code, and a refused
``load_weights`` leaves the model's weights as they were.

One child runs all cases (importing convcore once); it measures each load's peak
resident memory (``/proc/self/clear_refs`` resets the peak) and time, and reports JSON.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

import hostile_corpus

HERE = os.path.dirname(os.path.abspath(__file__))

# Address space the child may use beyond what importing convcore and one ordinary load
# took: a loader that decompressed a bomb (1 GiB, 11 GiB) would hit it.
HEADROOM_MB = 768
# What one load may add to the peak resident memory, and how long it may take.
MAX_PEAK_MB = 160
MAX_SECONDS = 5.0

CHILD = r"""
import builtins, json, os, resource, sys, time
manifest_path, headroom_mb, tests_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.path.insert(0, tests_dir)
import numpy as np
import convcore
import hostile_corpus as hc

folder = os.path.dirname(manifest_path)
parent = os.path.dirname(folder)
manifest = json.load(open(manifest_path))


def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def listing():
    return sorted(os.listdir(folder)), sorted(os.listdir(parent))


ref = hc.reference_model()
ref_weights = ref.get_weights()
control = [c for c in manifest if c["name"] == "control_model_file"][0]["file"]
convcore.load_model(control)  # warm up once, then fix the limit above what that took
vm = status("VmSize")
limit = int((vm + headroom_mb) * 2 ** 20)
resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))

results = []
for case in manifest:
    for loader, expect in case["expect"].items():
        model = hc.reference_model() if loader == "weights" else None
        before = listing()
        can_reset = reset_peak()
        base = status("VmRSS")
        t = time.perf_counter()
        error, mro, message, same = None, [], "", None
        try:
            if loader == "model":
                loaded = convcore.load_model(case["file"])
            else:
                model.load_weights(case["file"])
                loaded = model
            w = loaded.get_weights() if loader == "weights" or case["name"] == "control_model_file" else None
            same = w is None or (len(w) == len(ref_weights) and all(np.array_equal(a, b) for a, b in zip(w, ref_weights)))
        except Exception as e:
            error, mro, message = type(e).__name__, [c.__name__ for c in type(e).__mro__], str(e)
            if model is not None:
                same = all(np.array_equal(a, b) for a, b in zip(model.get_weights(), ref_weights))
        seconds = time.perf_counter() - t
        peak = status("VmHWM")
        ran = hasattr(builtins, hc.PAYLOAD_FLAG) or os.path.exists(os.path.join(folder, hc.PAYLOAD_FILE))
        results.append({"name": case["name"], "file": case["file"], "loader": loader, "expect": expect,
                        "error": error, "mro": mro, "message": message[:400], "seconds": seconds,
                        "peak_mb": peak - base, "peak_measured": can_reset, "wrote": listing() != before,
                        "ran": ran, "weights_unchanged": same})
print(json.dumps({"results": results, "vm_after_import_mb": vm, "limit_mb": limit / 2 ** 20,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    """Write the corpus into a fresh folder (inside its own parent, so that a write
    next to it is seen too), run every case in one child, return its report; the
    corpus (about 130 MB of bombs) is removed afterwards."""
    folder = tmp_path_factory.mktemp("hostile") / "corpus"
    folder.mkdir()
    t0 = time.perf_counter()
    manifest = hostile_corpus.write_corpus(str(folder))
    written = time.perf_counter() - t0
    manifest_path = folder / "manifest.json"
    manifest_path.write_text(json.dumps(manifest))
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "PYTHONDONTWRITEBYTECODE": "1"}
    t1 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(manifest_path), str(HEADROOM_MB), HERE],
                          capture_output=True, text=True, timeout=240, env=env, cwd=str(folder))
    ran = time.perf_counter() - t1
    assert proc.returncode == 0, f"the child failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    report.update(manifest=manifest, write_seconds=written, child_seconds=ran)
    print(f"\nhostile corpus: {len(manifest)} files, {len(report['results'])} loads; written in {written:.2f} s, "
          f"loaded in {ran:.2f} s; child address space after import {report['vm_after_import_mb']:.0f} MB, "
          f"limit {report['limit_mb']:.0f} MB; peak RSS {report['max_rss_mb']:.0f} MB; largest load "
          f"{max(r['peak_mb'] for r in report['results']):.1f} MB over its start, slowest "
          f"{max(r['seconds'] for r in report['results']) * 1000:.0f} ms")
    yield report
    shutil.rmtree(folder.parent, ignore_errors=True)


def _fail(bad):
    return "\n".join(bad[:40]) + (f"\n... and {len(bad) - 40} more" if len(bad) > 40 else "")


def test_every_case_ran(corpus_run):
    expected = sum(len(c["expect"]) for c in corpus_run["manifest"])
    assert len(corpus_run["results"]) == expected
    names = {c["name"] for c in corpus_run["manifest"]}
    # The kinds of file the issue lists are all there (a corpus bug must not empty it).
    for must in ("bomb_config_1GiB", "bomb_weight_lying_size", "bomb_weight_huge_shape_npz", "many_entries_1e6",
                 "traversal_dotdot", "npy_pickle_payload", "npy_huge_header_v2_length", "truncated_model_50pct",
                 "truncated_weights_50pct", "config_optimizer_os_system", "config_json_nested_1000",
                 "encrypted_config.json", "config_version_99", "config_class_name_private", "npy_complex_weight",
                 "npy_datetime_weight", "config_inbound_cycle", "crc_mismatch"):
        assert must in names, must
    assert len(names) > 120


def test_each_file_raises_the_expected_error_naming_it(corpus_run):
    bad = []
    for r in corpus_run["results"]:
        where = f"{r['name']} ({r['loader']})"
        if r["expect"] == "ok":
            if r["error"] is not None:
                bad.append(f"{where}: should load, raised {r['error']}: {r['message']}")
            elif not r["weights_unchanged"]:
                bad.append(f"{where}: loaded other weights than the reference's")
            continue
        if r["expect"] not in r["mro"]:
            bad.append(f"{where}: expected {r['expect']}, got {r['error'] or 'no error'}: {r['message']}")
        elif os.path.basename(r["file"]) not in r["message"]:
            bad.append(f"{where}: the message does not name the file: {r['message']}")
    assert not bad, _fail(bad)


def test_loads_are_bounded_in_memory_and_time(corpus_run):
    bad = [f"{r['name']} ({r['loader']}): {r['peak_mb']:.0f} MB, {r['seconds']:.2f} s" for r in corpus_run["results"]
           if r["peak_mb"] > MAX_PEAK_MB or r["seconds"] > MAX_SECONDS]
    assert not bad, _fail(bad)
    assert all(r["peak_measured"] for r in corpus_run["results"]) or sys.platform != "linux"
    assert corpus_run["child_seconds"] < 60


def test_no_file_is_written_and_no_code_runs(corpus_run):
    bad = [f"{r['name']} ({r['loader']}): {'wrote a file' if r['wrote'] else 'ran the payload'}"
           for r in corpus_run["results"] if r["wrote"] or r["ran"]]
    assert not bad, _fail(bad)
    folder = os.path.dirname(corpus_run["manifest"][0]["file"])
    assert not os.path.exists(os.path.join(folder, hostile_corpus.PAYLOAD_FILE))


def test_refused_load_weights_leaves_the_model_as_it_was(corpus_run):
    bad = [f"{r['name']}: the weights changed" for r in corpus_run["results"]
           if r["loader"] == "weights" and r["error"] is not None and not r["weights_unchanged"]]
    assert not bad, _fail(bad)


def test_payloads_are_live(tmp_path):
    """The corpus's pickle payload does run when pickle is allowed (so its absence
    above means something)."""
    import builtins
    import io
    import numpy as np
    payload = np.empty(1, dtype=object)
    payload[0] = hostile_corpus._Payload(str(tmp_path))
    try:
        np.lib.format.read_array(io.BytesIO(hostile_corpus._npy(payload)), allow_pickle=True)
        assert getattr(builtins, hostile_corpus.PAYLOAD_FLAG, False)
        assert (tmp_path / hostile_corpus.PAYLOAD_FILE).exists()
    finally:
        if hasattr(builtins, hostile_corpus.PAYLOAD_FLAG):
            delattr(builtins, hostile_corpus.PAYLOAD_FLAG)


if __name__ == "__main__":  # print every case's outcome: python tests/test_hostile_files.py
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        class _F:
            def mktemp(self, name):
                p = __import__("pathlib").Path(d) / name
                p.mkdir()
                return p
        for r in next(corpus_run.__wrapped__(_F()))["results"]:
            print(f"{r['name']:40s} {r['loader']:8s} {r['error'] or 'ok':18s} {r['peak_mb']:6.1f} MB "
                  f"{r['seconds'] * 1000:6.1f} ms  {r['message'][:150]}")
