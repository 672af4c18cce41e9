"""convcore.datasets and convcore.utils.get_file against real Keras 3 on small fake
archives in Keras's exact formats, built in tmp_path and found through KERAS_HOME
(convcore) / Keras's cache folder (keras.src.backend.config._KERAS_DIR, which Keras
reads once at import) — never the network: an autouse fixture refuses every host but
127.0.0.1, the downloads come from file:// origins or a local http.server."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import inspect
import io
import os
import pickle
import socket
import struct
import tarfile
import threading
import warnings
import zipfile

import numpy as np
import pytest

from convcore.datasets import cifar, cifar10, cifar100, fashion_mnist, mnist, mnist10k
from convcore.utils import file_utils, get_file
from convcore.utils.file_utils import DownloadError

keras = pytest.importorskip("keras")


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    real = socket.getaddrinfo

    def guarded(host, *a, **k):
        if host not in ("127.0.0.1", "localhost"):
            raise socket.gaierror(-2, f"test: no network (asked for {host})")
        return real(host, *a, **k)
    monkeypatch.setattr(socket, "getaddrinfo", guarded)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty Keras home used by both convcore (KERAS_HOME) and Keras (its cache dir)."""
    h = tmp_path / "keras_home"
    h.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(h))
    from keras.src.backend import config
    monkeypatch.setattr(config, "_KERAS_DIR", str(h))
    return h


def _sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _keras_with_hash(monkeypatch, module, file_hash):
    """Keras's load_data of ``module`` with its published hash replaced by the fake
    archive's (its get_file is wrapped; the rest is Keras's code)."""
    real = module.get_file

    def wrapped(*a, **k):
        if "file_hash" in k:
            k["file_hash"] = file_hash
        return real(*a, **k)
    monkeypatch.setattr(module, "get_file", wrapped)


class Py2Pickler(pickle._Pickler):
    """Pickles as Python 2 wrote the CIFAR batches: bytes as STRING opcodes (protocol 2)."""
    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj):
        n = len(obj)
        self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)) + obj)
        self.memoize(obj)
    dispatch[bytes] = save_bytes


def _py2_pickle(obj):
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def _assert_same(got, ref):
    (a, b), (c, d) = got
    (ra, rb), (rc, rd) = ref
    for x, r in ((a, ra), (b, rb), (c, rc), (d, rd)):
        assert x.dtype == r.dtype and x.shape == r.shape
        np.testing.assert_array_equal(x, r)


# ---------------------------------------------------------------------- mnist
def _fake_mnist(path, n_train=7, n_test=3, seed=0):
    rng = np.random.default_rng(seed)
    arrs = dict(x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
                y_train=rng.integers(0, 10, n_train).astype(np.uint8),
                x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
                y_test=rng.integers(0, 10, n_test).astype(np.uint8))
    np.savez_compressed(path, **arrs)
    return arrs


def test_mnist_from_keras_cache_as_keras(home, monkeypatch):
    (home / "datasets").mkdir()
    p = home / "datasets" / "mnist.npz"
    arrs = _fake_mnist(p)
    monkeypatch.setattr(mnist, "SHA256", _sha256(p))
    from keras.src.datasets import mnist as kmnist
    _keras_with_hash(monkeypatch, kmnist, _sha256(p))
    got = mnist.load_data()
    _assert_same(got, kmnist.load_data())
    np.testing.assert_array_equal(got[0][0], arrs["x_train"])
    _assert_same(mnist.load_data("mnist.npz"), got)
    _assert_same(mnist.load_data(str(p)), got)  # an absolute path is read as it is
    _assert_same(mnist.load_data(p), got)


def test_mnist_origin_and_hash_are_keras(home):
    src = inspect.getsource(keras.src.datasets.mnist.load_data)
    assert mnist.SHA256 in src and "tf-keras-datasets/" in src
    assert mnist.ORIGIN == "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"


def test_mnist_cached_file_with_wrong_hash_is_downloaded_again_offline_error(home, capsys):
    (home / "datasets").mkdir()
    p = home / "datasets" / "mnist.npz"
    _fake_mnist(p)
    before = p.read_bytes()
    with pytest.raises(DownloadError) as e:
        mnist.load_data()  # the real hash: the fake does not match, a download is tried
    msg = str(e.value)
    assert mnist.ORIGIN in msg and str(p) in msg and e.value.path == str(p)
    assert "hash does not match" in capsys.readouterr().out
    assert p.read_bytes() == before  # the failed download left the old file alone
    assert sorted(os.listdir(home / "datasets")) == ["mnist.npz"]  # no temporary file left


def test_mnist_downloaded_through_get_file(home, tmp_path, monkeypatch):
    srv = tmp_path / "srv"
    srv.mkdir()
    arrs = _fake_mnist(srv / "mnist.npz", seed=3)
    monkeypatch.setattr(mnist, "ORIGIN", (srv / "mnist.npz").as_uri())
    monkeypatch.setattr(mnist, "SHA256", _sha256(srv / "mnist.npz"))
    (a, b), (c, d) = mnist.load_data()
    np.testing.assert_array_equal(a, arrs["x_train"])
    np.testing.assert_array_equal(d, arrs["y_test"])
    assert (home / "datasets" / "mnist.npz").read_bytes() == (srv / "mnist.npz").read_bytes()


def test_mnist_idx_folder_in_cache_and_bad_input(home, tmp_path):
    d = home / "datasets" / "mnist_idx"
    d.mkdir(parents=True)
    rng = np.random.default_rng(2)
    xtr, ytr = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), rng.integers(0, 10, 4).astype(np.uint8)
    for name, arr in (("train-images-idx3-ubyte.gz", xtr), ("train-labels-idx1-ubyte.gz", ytr),
                      ("t10k-images-idx3-ubyte.gz", xtr[:2]), ("t10k-labels-idx1-ubyte.gz", ytr[:2])):
        _write_idx(d / name, arr)
    (a, b), (c, _) = mnist.load_data("mnist_idx")
    np.testing.assert_array_equal(a, xtr)
    np.testing.assert_array_equal(c, xtr[:2])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mnist.load_data(str(tmp_path / "nothing.npz"))
    with pytest.raises(TypeError, match="path must be"):
        mnist.load_data(3)
    with pytest.raises(ValueError, match="not a readable .npz"):
        (tmp_path / "bad.npz").write_bytes(b"garbage")
        mnist.load_data(tmp_path / "bad.npz")


def test_mnist10k_is_the_shipped_split():
    (xtr, ytr), (xts, yts) = mnist10k.load_data()
    assert xtr.shape == (8000, 28, 28) and xts.shape == (2000, 28, 28)
    assert xtr.dtype == np.uint8 and ytr.dtype == np.uint8 and yts.shape == (2000,)
    assert set(np.unique(ytr)) == set(range(10))


# ---------------------------------------------------------------------- fashion_mnist
def _write_idx(path, arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.tobytes())


def _fake_fashion(folder, seed=4):
    rng = np.random.default_rng(seed)
    data = {"train-labels-idx1-ubyte.gz": rng.integers(0, 10, 6).astype(np.uint8),
            "train-images-idx3-ubyte.gz": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
            "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 2).astype(np.uint8),
            "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)}
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in data.items():
        _write_idx(folder / name, arr)
    return data


def test_fashion_mnist_as_keras(home, tmp_path):
    data = _fake_fashion(home / "datasets" / "fashion-mnist")
    got = fashion_mnist.load_data()
    _assert_same(got, keras.datasets.fashion_mnist.load_data())
    np.testing.assert_array_equal(got[0][0], data["train-images-idx3-ubyte.gz"])
    assert got[0][0].shape == (6, 28, 28) and got[1][1].shape == (2,)
    _assert_same(fashion_mnist.load_data(path=home / "datasets" / "fashion-mnist"), got)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        fashion_mnist.load_data(path=tmp_path / "none")
    assert fashion_mnist.FILES == tuple(f for f in inspect.getsource(keras.src.datasets.fashion_mnist.load_data)
                                        .split('"') if f.endswith(".gz"))


def test_fashion_mnist_missing_file_offline(home):
    data_dir = home / "datasets" / "fashion-mnist"
    _fake_fashion(data_dir)
    (data_dir / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DownloadError) as e:
        fashion_mnist.load_data()
    assert fashion_mnist.ORIGIN + "t10k-images-idx3-ubyte.gz" in str(e.value)
    assert str(data_dir / "t10k-images-idx3-ubyte.gz") in str(e.value)


# ---------------------------------------------------------------------- cifar
N_BATCH = 3  # samples per fake batch


def _cifar_batch(rng, n, labels):
    d = {b"batch_label": b"testing batch 1 of 1", b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
         b"filenames": [b"img_%d.png" % i for i in range(n)]}
    for k in labels:
        d[k.encode()] = rng.integers(0, 100 if k == "fine_labels" else 10, n).tolist()
    return d


def _cifar10_files(seed=5):
    rng = np.random.default_rng(seed)
    return {name: _py2_pickle(_cifar_batch(rng, N_BATCH, ["labels"]))
            for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]}


def _cifar100_files(seed=6):
    rng = np.random.default_rng(seed)
    return {"train": _py2_pickle(_cifar_batch(rng, 5, ["fine_labels", "coarse_labels"])),
            "test": _py2_pickle(_cifar_batch(rng, 2, ["fine_labels", "coarse_labels"]))}


def _write_folder(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)


def _write_tar(path, inner, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{inner}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _keras_cifar10(n_per_batch):
    """Keras's own cifar10.load_data, with its fixed 50,000 / 10,000-per-batch sizes
    replaced by the fake's (everything else is Keras's code, executed in its module)."""
    import keras.src.datasets.cifar10 as m
    src = inspect.getsource(m.load_data)
    src = "\n".join(line for line in src.splitlines() if not line.startswith("@"))
    sizes = ("num_train_samples = 50000", "(i - 1) * 10000 : i * 10000")
    assert all(s in src for s in sizes)
    src = src.replace(sizes[0], f"num_train_samples = {5 * n_per_batch}")
    src = src.replace(sizes[1], f"(i - 1) * {n_per_batch} : i * {n_per_batch}")
    ns = dict(vars(m))
    exec(compile(src, m.__file__, "exec"), ns)
    return ns["load_data"]


def test_cifar10_as_keras_from_its_archive(home, monkeypatch):
    files = _cifar10_files()
    (home / "datasets").mkdir()
    archive = home / "datasets" / "cifar-10-batches-py-target_archive"  # Keras's name for the download
    _write_tar(archive, "cifar-10-batches-py", files)
    monkeypatch.setattr(cifar10, "SHA256", _sha256(archive))
    got = cifar10.load_data()  # get_file: the cached archive, hash checked, extracted as Keras
    assert (home / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py" / "test_batch").is_file()
    import keras.src.datasets.cifar10 as kc
    _keras_with_hash(monkeypatch, kc, _sha256(archive))
    ref = _keras_cifar10(N_BATCH)()
    _assert_same(got, ref)
    (x, y), (xt, yt) = got
    assert x.shape == (5 * N_BATCH, 32, 32, 3) and y.shape == (5 * N_BATCH, 1) and y.dtype == np.uint8
    # channels last: pixel (0, 0) of image 0 is bytes 0, 1024, 2048 of its row
    row = pickle.loads(files["data_batch_1"], encoding="bytes")[b"data"][0]
    np.testing.assert_array_equal(x[0, 0, 0], row[[0, 1024, 2048]])
    assert xt.shape == (N_BATCH, 32, 32, 3) and yt.dtype == np.uint8


def test_cifar10_every_location(home, tmp_path, monkeypatch):
    files = _cifar10_files(seed=7)
    _write_folder(tmp_path / "ref" / "cifar-10-batches-py", files)
    ref = cifar10.load_data(path=tmp_path / "ref")  # a folder holding cifar-10-batches-py/
    _assert_same(cifar10.load_data(path=tmp_path / "ref" / "cifar-10-batches-py"), ref)  # the batches' folder
    _write_tar(tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py", files)
    _assert_same(cifar10.load_data(path=str(tmp_path / "cifar-10-python.tar.gz")), ref)  # the archive, in memory
    assert not (tmp_path / "cifar-10-batches-py").exists()  # nothing extracted beside it
    # the cache: a cifar-10-batches-py/ folder alone is enough
    _write_folder(home / "datasets" / "cifar-10-batches-py", files)
    _assert_same(cifar10.load_data(), ref)
    # the archive under its own name, hash checked
    import shutil
    shutil.rmtree(home / "datasets" / "cifar-10-batches-py")
    shutil.copy(tmp_path / "cifar-10-python.tar.gz", home / "datasets")
    with pytest.raises(ValueError, match="sha256"):
        cifar10.load_data()
    monkeypatch.setattr(cifar10, "SHA256", _sha256(tmp_path / "cifar-10-python.tar.gz"))
    _assert_same(cifar10.load_data(), ref)


def test_cifar10_offline_names_url_and_paths(home):
    with pytest.raises(DownloadError) as e:
        cifar10.load_data()
    msg = str(e.value)
    assert cifar10.ORIGIN in msg
    assert str(home / "datasets" / "cifar-10-batches-py-target_archive") in msg
    assert str(home / "datasets" / "cifar-10-python.tar.gz") in msg
    assert str(home / "datasets" / "cifar-10-batches-py") in msg
    assert not [n for n in os.listdir(home / "datasets") if n.endswith(".part")]


@pytest.mark.parametrize("label_mode", ["fine", "coarse"])
def test_cifar100_as_keras(home, monkeypatch, label_mode):
    files = _cifar100_files()
    (home / "datasets").mkdir()
    archive = home / "datasets" / "cifar-100-python-target_archive"
    _write_tar(archive, "cifar-100-python", files)
    import keras.src.datasets.cifar100 as kc
    _keras_with_hash(monkeypatch, kc, _sha256(archive))
    ref = kc.load_data(label_mode=label_mode)  # Keras extracts into cifar-100-python-target/
    got = cifar100.load_data(label_mode=label_mode)  # convcore finds Keras's extracted folder
    _assert_same(got, ref)
    (x, y), (xt, yt) = got
    assert x.shape == (5, 32, 32, 3) and y.shape == (5, 1) and y.dtype == np.int64 and xt.shape == (2, 32, 32, 3)
    key = b"fine_labels" if label_mode == "fine" else b"coarse_labels"
    np.testing.assert_array_equal(y[:, 0], pickle.loads(files["train"], encoding="bytes")[key])


def test_cifar100_locations_and_bad_label_mode(home, tmp_path):
    files = _cifar100_files(seed=8)
    _write_tar(tmp_path / "c100.tar.gz", "cifar-100-python", files)
    ref = cifar100.load_data("coarse", path=tmp_path / "c100.tar.gz")
    _write_folder(home / "datasets" / "cifar-100-python", files)
    _assert_same(cifar100.load_data("coarse"), ref)
    with pytest.raises(ValueError, match='`label_mode` must be one of `"fine"`, `"coarse"`'):
        cifar100.load_data("medium")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cifar100.load_data(path=tmp_path / "missing")


# ---------------------------------------------------------------------- restricted unpickler
class _Evil:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("gadget", ["system", "eval", "exec"])
def test_crafted_cifar_batch_runs_nothing(home, tmp_path, gadget, protocol):
    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').write('x')"
    func, arg = {"system": (os.system, f"touch {marker}"), "eval": (eval, code), "exec": (exec, code)}[gadget]
    # the payload is a value of an otherwise valid batch, inside the archive
    rng = np.random.default_rng(0)
    files = _cifar10_files()
    bad = _cifar_batch(rng, N_BATCH, ["labels"])
    bad[b"batch_label"] = _Evil(func, arg)
    files["data_batch_3"] = _py2_pickle(bad) if protocol == 2 else pickle.dumps(bad, protocol=protocol)
    _write_tar(tmp_path / "evil.tar.gz", "cifar-10-batches-py", files)
    with pytest.raises(pickle.UnpicklingError, match="Refusing to deserialize") as e:
        cifar10.load_data(path=tmp_path / "evil.tar.gz")
    builtins = "__builtin__" if protocol == 2 else "builtins"  # protocol 2 writes Python 2's module names
    assert ("posix.system" if gadget == "system" else f"{builtins}.{gadget}") in str(e.value)
    _write_folder(tmp_path / "evil" / "cifar-10-batches-py", files)
    with pytest.raises(pickle.UnpicklingError):
        cifar10.load_data(path=tmp_path / "evil")
    assert not marker.exists()
    # the same pickle loaded without the restriction would have run it (the test's premise)
    if gadget == "eval":
        pickle.loads(files["data_batch_3"], encoding="bytes")
        assert marker.exists()


def test_restricted_unpickler_admits_exactly_numpy_arrays():
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for proto in (3, 4):
        for payload in (pickle.dumps({b"data": arr, "k": [1, 2], b"s": b"x"}, protocol=proto), _py2_pickle({b"a": arr})):
            out = cifar.RestrictedUnpickler(io.BytesIO(payload), encoding="bytes").load()
            np.testing.assert_array_equal(next(v for v in out.values() if isinstance(v, np.ndarray)), arr)
    assert cifar.RestrictedUnpickler._ALLOWED == {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct")}
    for module, name in (("numpy", "load"), ("builtins", "getattr"), ("numpy.core.multiarray", "scalar"),
                         ("collections", "OrderedDict"), ("subprocess", "Popen")):
        with pytest.raises(pickle.UnpicklingError, match=f"{module}.{name}"):
            cifar.RestrictedUnpickler(io.BytesIO(b""), encoding="bytes").find_class(module, name)


def test_load_batch_as_keras_and_bad_batches(tmp_path):
    from keras.src.datasets.cifar import load_batch as keras_load_batch
    rng = np.random.default_rng(9)
    (tmp_path / "b").write_bytes(_py2_pickle(_cifar_batch(rng, 4, ["labels"])))
    got, ref = cifar.load_batch(tmp_path / "b"), keras_load_batch(str(tmp_path / "b"))
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[0].shape == (4, 3, 32, 32) and got[1] == ref[1]
    (tmp_path / "list").write_bytes(pickle.dumps([1, 2], protocol=2))
    with pytest.raises(ValueError, match="is a dict"):
        cifar.load_batch(tmp_path / "list")
    (tmp_path / "short").write_bytes(_py2_pickle({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match=r"\(N, 3072\)"):
        cifar.load_batch(tmp_path / "short")
    (tmp_path / "trunc").write_bytes((tmp_path / "b").read_bytes()[:200])
    with pytest.raises(ValueError, match="not a readable CIFAR batch"):
        cifar.load_batch(tmp_path / "trunc")


# ---------------------------------------------------------------------- get_file
@pytest.fixture
def server(tmp_path):
    """A local http.server on 127.0.0.1 serving tmp_path/srv."""
    root = tmp_path / "srv"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def test_get_file_http_download_hash_and_cache(home, server, capsys):
    root, url = server
    payload = os.urandom(200_000)
    (root / "data.bin").write_bytes(payload)
    sha, md5 = hashlib.sha256(payload).hexdigest(), hashlib.md5(payload).hexdigest()
    p = get_file(origin=f"{url}/data.bin", file_hash=sha)
    assert p == str(home / "datasets" / "data.bin") and open(p, "rb").read() == payload
    assert f"Downloading data from {url}/data.bin" in capsys.readouterr().out
    (root / "data.bin").unlink()  # cached now: no request made
    assert get_file("data.bin", origin=f"{url}/data.bin", md5_hash=md5) == p
    assert get_file("data.bin", origin=f"{url}/data.bin", file_hash=md5, hash_algorithm="md5") == p
    with pytest.raises(DownloadError, match="404") as e:
        get_file("data.bin", origin=f"{url}/data.bin", force_download=True)
    assert f"{url}/data.bin" in str(e.value) and p in str(e.value)
    assert open(p, "rb").read() == payload  # the cached file survives a failed download


def test_get_file_path_matches_keras(home, tmp_path):
    src = tmp_path / "plain.txt"
    src.write_bytes(b"hello")
    ours = get_file("plain.txt", origin=src.as_uri(), cache_subdir="models")
    theirs = keras.utils.get_file("plain.txt", origin=src.as_uri(), cache_subdir="models")
    assert ours == theirs == str(home / "models" / "plain.txt")
    elsewhere = tmp_path / "cache_dir"
    assert get_file(origin=src.as_uri(), cache_dir=str(elsewhere)) == str(elsewhere / "datasets" / "plain.txt")
    absolute = tmp_path / "abs_subdir"
    assert get_file(origin=src.as_uri(), cache_subdir=str(absolute)) == str(absolute / "plain.txt")


def test_get_file_hash_mismatch_leaves_nothing(home, tmp_path):
    src = tmp_path / "f.bin"
    src.write_bytes(b"abc")
    with pytest.raises(ValueError, match="Incomplete or corrupted file detected"):
        get_file("f.bin", origin=src.as_uri(), file_hash="0" * 64)
    assert os.listdir(home / "datasets") == []  # neither the target nor a temporary file
    p = get_file("f.bin", origin=src.as_uri(), file_hash=hashlib.sha256(b"abc").hexdigest())
    assert open(p, "rb").read() == b"abc"
    # a cached file that no longer matches is downloaded again
    src.write_bytes(b"new")
    assert open(get_file("f.bin", origin=src.as_uri(), file_hash=hashlib.sha256(b"new").hexdigest()), "rb").read() \
        == b"new"


def test_get_file_offline_error_names_url_and_path(home):
    for origin in ("https://example.invalid/some/file.npz", "http://127.0.0.1:9/file.npz"):
        with pytest.raises(DownloadError) as e:
            get_file(origin=origin)
        target = str(home / "datasets" / "file.npz")
        assert origin in str(e.value) and target in str(e.value)
        assert e.value.url == origin and e.value.path == target and isinstance(e.value, OSError)
        assert os.listdir(home / "datasets") == []


def test_get_file_bad_arguments(home):
    with pytest.raises(ValueError, match='specify the "origin" argument'):
        get_file("x")
    with pytest.raises(ValueError, match="Paths are no longer accepted"):
        get_file("a/b.txt", origin="file:///x")
    with pytest.raises(ValueError, match="Can't parse the file name"):
        get_file(origin="http://127.0.0.1/")
    with pytest.raises(ValueError, match="hash_algorithm"):
        get_file("x", origin="file:///x", hash_algorithm="sha1")


def _tree(root):
    return sorted((os.path.relpath(os.path.join(d, f), root), open(os.path.join(d, f), "rb").read())
                  for d, _, fs in os.walk(root) for f in fs)


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
@pytest.mark.parametrize("fname", ["pack", "pack.tgz", None])
def test_get_file_extract_as_keras(tmp_path, monkeypatch, kind, fname):
    src = tmp_path / f"pack.{kind}"
    members = {"pack/a.txt": b"A", "pack/sub/b.txt": b"BB"}
    if kind == "zip":
        with zipfile.ZipFile(src, "w") as z:
            for n, d in members.items():
                z.writestr(n, d)
    else:
        with tarfile.open(src, "w:gz") as t:
            for n, d in members.items():
                info = tarfile.TarInfo(n)
                info.size = len(d)
                t.addfile(info, io.BytesIO(d))
    from keras.src.backend import config
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "ours"))
    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path / "theirs"))
    (tmp_path / "theirs").mkdir()  # Keras falls back to /tmp/.keras for a cache folder that does not exist
    ours = get_file(fname, origin=src.as_uri(), extract=True)
    theirs = keras.utils.get_file(fname, origin=src.as_uri(), extract=True)
    assert os.path.relpath(ours, tmp_path / "ours") == os.path.relpath(theirs, tmp_path / "theirs")
    assert _tree(ours) == _tree(theirs) == [("pack/a.txt", b"A"), ("pack/sub/b.txt", b"BB")]
    assert get_file(fname, origin=src.as_uri(), extract=True) == ours  # again: the cache, re-extracted
    assert not [n for n in os.listdir(os.path.dirname(ours)) if n.startswith(".")]


def _tar_with(path, info, data=b""):
    with tarfile.open(path, "w") as t:
        ok = tarfile.TarInfo("good.txt")
        ok.size = 2
        t.addfile(ok, io.BytesIO(b"ok"))
        info.size = len(data) if info.isreg() else 0
        t.addfile(info, io.BytesIO(data) if info.isreg() else None)


def _unsafe_members():
    out = {}
    out["dotdot"] = tarfile.TarInfo("../evil")
    out["nested_dotdot"] = tarfile.TarInfo("sub/../../evil")
    out["absolute"] = tarfile.TarInfo("/tmp/convcore_test_evil_abs")
    sym = tarfile.TarInfo("link")
    sym.type, sym.linkname = tarfile.SYMTYPE, "../../outside"
    out["symlink"] = sym
    sym_abs = tarfile.TarInfo("link_abs")
    sym_abs.type, sym_abs.linkname = tarfile.SYMTYPE, "/etc/passwd"
    out["symlink_abs"] = sym_abs
    hard = tarfile.TarInfo("hard")
    hard.type, hard.linkname = tarfile.LNKTYPE, "../evil"
    out["hardlink"] = hard
    dev = tarfile.TarInfo("dev")
    dev.type = tarfile.CHRTYPE
    out["device"] = dev
    fifo = tarfile.TarInfo("fifo")
    fifo.type = tarfile.FIFOTYPE
    out["fifo"] = fifo
    return out


@pytest.mark.parametrize("case", sorted(_unsafe_members()))
def test_get_file_refuses_unsafe_tar(home, tmp_path, case):
    info = _unsafe_members()[case]
    src = tmp_path / "bad.tar"
    _tar_with(src, info, b"pwned" if info.isreg() else b"")
    with pytest.raises(ValueError, match="Refusing to extract the archive"):
        get_file("bad", origin=src.as_uri(), extract=True)
    assert not (tmp_path / "evil").exists() and not (home / "evil").exists() and not (home / "datasets" / "evil").exists()
    assert not os.path.exists("/tmp/convcore_test_evil_abs")
    extracted = home / "datasets" / "bad"
    assert not extracted.exists() or os.listdir(extracted) == []  # not even the good member
    assert not [n for n in os.listdir(home / "datasets") if n.startswith(".extract")]


def test_get_file_refuses_links_chained_outside(home, tmp_path):
    # each link's target is inside lexically, but a/b resolves to the parent of the folder
    src = tmp_path / "chain.tar"
    with tarfile.open(src, "w") as t:
        for name, target in (("a", "."), ("a/b", "..")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            t.addfile(info)
        info = tarfile.TarInfo("a/b/evil")
        info.size = 5
        t.addfile(info, io.BytesIO(b"pwned"))
    with pytest.raises(ValueError, match="through the link 'a'"):
        get_file("chain", origin=src.as_uri(), extract=True)
    assert not (home / "datasets" / "evil").exists() and not (home / "evil").exists()


def test_get_file_refuses_unsafe_zip_and_keeps_safe_links(home, tmp_path):
    src = tmp_path / "bad.zip"
    with zipfile.ZipFile(src, "w") as z:
        z.writestr("good.txt", b"ok")
        z.writestr("../evil", b"pwned")
    with pytest.raises(ValueError, match="'../evil'"):
        get_file("badzip", origin=src.as_uri(), extract=True)
    assert not (home / "datasets" / "evil").exists()
    # a link inside the folder is fine
    info = tarfile.TarInfo("sub/link")
    info.type, info.linkname = tarfile.SYMTYPE, "../good.txt"
    _tar_with(tmp_path / "ok.tar", info)
    out = get_file("ok", origin=(tmp_path / "ok.tar").as_uri(), extract=True)
    assert open(os.path.join(out, "sub", "link"), "rb").read() == b"ok"


def test_keras_home_default(monkeypatch, tmp_path):
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert file_utils.keras_home() == str(tmp_path / ".keras")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert file_utils.keras_home() == str(tmp_path / "kh")


def test_no_warning_on_clean_runs(home, tmp_path):
    src = tmp_path / "w.txt"
    src.write_bytes(b"w")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_file(origin=src.as_uri())
