"""``keras.utils.get_file``: a file from a URL, kept in Keras's cache.

The cache is Keras's own, so a file Keras downloaded is found by convcore and the
other way round: ``$KERAS_HOME`` when set (read at each call; Keras reads it once, at
import), else ``~/.keras`` (``/tmp/.keras`` when the home folder is not writable),
the file going into ``cache_subdir`` (``datasets``) under it. A file already there is
used (its hash checked when one is given: a mismatch downloads it again); otherwise it
is fetched from ``origin`` with urllib, a :class:`convcore.utils.Progbar` showing the
progress.

Where convcore differs from Keras (for safety, not for API):

* the download goes into a temporary file next to the target, checked against the
  hash there and only then renamed onto the target (``os.replace``): an interrupted or
  corrupted download never leaves a file at the target;
* a failed download (no network, HTTP error) raises :class:`DownloadError` (an
  ``OSError``) naming the URL and the exact path where the file can be placed by hand
  for offline use (Keras: a bare ``Exception("URL fetch failure on ...")``);
* an archive with a member that would land outside the extraction folder (an absolute
  path, ``..``), a link pointing outside it, or a device / fifo member is refused
  whole with a ``ValueError`` before anything is written (Keras skips such members
  with a warning); tar archives are also extracted with ``filter='data'``. The
  archive is extracted into a temporary folder first and then moved into place;
  a member written through a link of the same archive is refused too;
* a connection or read that stalls for ``TIMEOUT`` (60) seconds fails the download
  (Keras waits forever);
* a cache folder that does not exist yet is created (Keras, whose import creates
  ``~/.keras``, falls back to ``/tmp/.keras`` for a ``cache_dir`` that does not exist);
  only an existing folder that is not writable sends the files to ``/tmp/.keras``.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile

# seconds a connection or a read may stall before the download fails (Keras: no limit)
TIMEOUT = 60

__all__ = ["get_file", "hash_file", "validate_file", "extract_archive", "keras_home", "DownloadError"]


class DownloadError(OSError):
    """A file that could not be downloaded; ``url`` and ``path`` (where to place it
    by hand) are attributes."""

    def __init__(self, message, url=None, path=None):
        super().__init__(message)
        self.url = url
        self.path = path


def keras_home():
    """Keras's cache folder: ``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras`` where
    the home folder is not writable), as ``keras.src.backend.config.keras_home``."""
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    base = os.path.expanduser("~")
    if not os.access(base, os.W_OK):
        base = "/tmp"
    return os.path.join(base, ".keras")


def cache_folder(cache_subdir="datasets", cache_dir=None):
    """The folder ``get_file`` keeps ``cache_subdir``'s files in (not created)."""
    base = os.path.expanduser(os.fspath(cache_dir) if cache_dir is not None else keras_home())
    if os.path.isdir(base) and not os.access(base, os.W_OK):
        base = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")
    return os.path.join(base, cache_subdir)


def _resolve_hasher(algorithm, file_hash=None):
    if algorithm == "sha256":
        return hashlib.sha256()
    if algorithm == "auto" and file_hash is not None and len(file_hash) == 64:
        return hashlib.sha256()
    if algorithm in ("auto", "md5"):
        return hashlib.md5()
    raise ValueError(f"hash_algorithm must be one of 'auto', 'sha256', 'md5'. Received: hash_algorithm={algorithm!r}")


def hash_file(fpath, algorithm="sha256", chunk_size=65535):
    """The sha256 (or md5) hex digest of a file, as ``keras.src.utils.file_utils.hash_file``."""
    hasher = _resolve_hasher(algorithm) if isinstance(algorithm, str) else algorithm
    with open(fpath, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def validate_file(fpath, file_hash, algorithm="auto", chunk_size=65535):
    """Whether the file's hash is ``file_hash`` ('auto': sha256 for a 64-digit hash, else md5)."""
    return str(hash_file(fpath, _resolve_hasher(algorithm, file_hash), chunk_size)) == str(file_hash)


# ---------------------------------------------------------------------- extraction
def _inside(base, rel):
    """Whether ``base/rel`` (resolved) stays within ``base`` (resolved)."""
    if os.path.isabs(rel) or (os.altsep and rel.startswith(os.altsep)):
        return False
    if any(part == ".." for part in rel.replace("\\", "/").split("/")):
        return False
    path = os.path.realpath(os.path.join(base, rel))
    try:
        return os.path.commonpath([path, base]) == base
    except ValueError:
        return False


def _check_tar(archive, base):
    members = archive.getmembers()
    links = {os.path.normpath(m.name) for m in members if m.issym() or m.islnk()}
    for m in members:
        parts = os.path.normpath(m.name).split(os.sep)
        through = [os.sep.join(parts[:i]) for i in range(1, len(parts)) if os.sep.join(parts[:i]) in links]
        if through:
            raise ValueError(f"Refusing to extract the archive: member {m.name!r} is written through the link "
                             f"{through[0]!r} of the same archive")
        if not _inside(base, m.name):
            raise ValueError(f"Refusing to extract the archive: member {m.name!r} would be written outside "
                             f"the extraction folder {base}")
        if m.isdev() or m.isfifo():
            raise ValueError(f"Refusing to extract the archive: member {m.name!r} is a device or fifo")
        if m.issym():
            target = os.path.join(os.path.dirname(m.name), m.linkname)
            if os.path.isabs(m.linkname) or not _inside(base, os.path.normpath(target)):
                raise ValueError(f"Refusing to extract the archive: link {m.name!r} points outside the extraction "
                                 f"folder ({m.linkname!r})")
        elif m.islnk():
            if not _inside(base, m.linkname):
                raise ValueError(f"Refusing to extract the archive: hard link {m.name!r} points outside the "
                                 f"extraction folder ({m.linkname!r})")


def _check_zip(archive, base):
    for info in archive.infolist():
        if not _inside(base, info.filename):
            raise ValueError(f"Refusing to extract the archive: member {info.filename!r} would be written outside "
                             f"the extraction folder {base}")


def extract_archive(file_path, path=".", archive_format="auto"):
    """Extract a tar (.tar, .tar.gz, .tar.bz2, .tar.xz) or zip archive into ``path``,
    as Keras's ``extract_archive``: True when one of ``archive_format``'s kinds
    ('auto' is ['tar', 'zip']) matched. Unsafe archives are refused (ValueError, see
    the module docstring); the members are extracted into a temporary folder beside
    ``path`` and then moved into it."""
    if archive_format is None:
        return False
    if archive_format == "auto":
        archive_format = ["tar", "zip"]
    if isinstance(archive_format, str):
        archive_format = [archive_format]
    file_path, path = os.fspath(file_path), os.fspath(path)
    for kind in archive_format:
        if kind == "tar":
            is_match, opener, check = tarfile.is_tarfile, tarfile.open, _check_tar
        elif kind == "zip":
            is_match, opener, check = zipfile.is_zipfile, zipfile.ZipFile, _check_zip
        else:
            raise NotImplementedError(kind)
        if not is_match(file_path):
            continue
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".extract-", dir=parent)
        try:
            with opener(file_path) as archive:
                check(archive, os.path.realpath(tmp))
                if kind == "tar" and sys.version_info < (3, 14) and hasattr(tarfile, "data_filter"):
                    archive.extractall(tmp, filter="data")
                else:
                    archive.extractall(tmp)
            os.makedirs(path, exist_ok=True)
            for name in os.listdir(tmp):
                dest = os.path.join(path, name)
                if os.path.isdir(dest) and not os.path.islink(dest):
                    shutil.rmtree(dest)
                elif os.path.lexists(dest):
                    os.remove(dest)
                os.replace(os.path.join(tmp, name), dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return True
    return False


# ---------------------------------------------------------------------- download
def _download(origin, target, file_hash, hash_algorithm, place_hint):
    """``origin`` into ``target`` through a temporary file, checked, then renamed."""
    from .progbar import Progbar
    print(f"Downloading data from {origin}")
    folder = os.path.dirname(target)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(target) + ".", suffix=".part", dir=folder)
    hint = (f"convcore could not download {origin}. To use the file offline, download it by other means and "
            f"place it at {place_hint or target}")
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(origin, timeout=TIMEOUT) as response:
                total = response.headers.get("Content-Length") if hasattr(response, "headers") else None
                total = int(total) if total and str(total).isdigit() else None
                bar = Progbar(total)
                done = 0
                while True:
                    chunk = response.read(1 << 16)
                    if not chunk:
                        break
                    out.write(chunk)
                    done += len(chunk)
                    if total is None or done < total:
                        bar.update(done)
                bar.update(done, finalize=True)
        except urllib.error.HTTPError as e:
            raise DownloadError(f"URL fetch failure on {origin}: {e.code} -- {e.reason}. {hint}", origin,
                                place_hint or target) from None
        except urllib.error.URLError as e:
            raise DownloadError(f"URL fetch failure on {origin}: {e.errno} -- {e.reason}. {hint}", origin,
                                place_hint or target) from None
        except OSError as e:
            if isinstance(e, DownloadError):
                raise
            raise DownloadError(f"URL fetch failure on {origin}: {e}. {hint}", origin, place_hint or target) from None
        if file_hash is not None and not validate_file(tmp, file_hash, algorithm=hash_algorithm):
            raise ValueError(f"Incomplete or corrupted file detected. The {hash_algorithm} file hash does not match "
                             f"the provided value of {file_hash}. The downloaded file was removed; nothing was saved "
                             f"at {target}.")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None, cache_subdir="datasets",
             hash_algorithm="auto", extract=False, archive_format="auto", cache_dir=None, force_download=False):
    """Download a file from ``origin`` unless it is already in the cache, as
    ``keras.utils.get_file``; the path of the file (or, with ``extract``, of the folder
    it was extracted into).

    ``fname``: the file's name in the cache (default: the last part of ``origin``'s
    path); a path with a folder is refused, as Keras. ``file_hash``: the expected
    sha256 or md5 ('auto' tells them apart by length; ``md5_hash`` is the deprecated
    spelling). ``cache_subdir``: the folder under the cache (an absolute path is used
    as it is). With ``extract`` (``untar``: deprecated, tar only) the archive is saved
    as ``<fname>_archive`` and extracted into ``<fname>`` — or, for an ``fname`` with
    an extension, saved as ``fname`` and extracted into ``<stem>_extracted`` — Keras's
    names. ``force_download`` downloads even when the file is there. See the module
    docstring for the cache folder and where convcore is stricter than Keras."""
    if origin is None:
        raise ValueError('Please specify the "origin" argument (URL of the file to download).')
    if md5_hash is not None and file_hash is None:
        file_hash = md5_hash
        hash_algorithm = "md5"
    if hash_algorithm not in ("auto", "sha256", "md5"):
        raise ValueError("hash_algorithm must be one of 'auto', 'sha256', 'md5'. "
                         f"Received: hash_algorithm={hash_algorithm!r}")
    datadir = cache_folder(cache_subdir, cache_dir)
    os.makedirs(datadir, exist_ok=True)

    provided_fname = fname
    fname = os.fspath(fname) if isinstance(fname, os.PathLike) else fname
    if not fname:
        fname = os.path.basename(urllib.parse.urlsplit(origin).path)
        if not fname:
            raise ValueError(f"Can't parse the file name from the origin provided: '{origin}'."
                             "Please specify the `fname` argument.")
    elif os.sep in fname or (os.altsep and os.altsep in fname):
        raise ValueError("Paths are no longer accepted as the `fname` argument. To specify the file's parent "
                         f"directory, use the `cache_dir` argument. Received: fname={fname}")

    if extract or untar:
        if provided_fname and "." in fname:
            download_target = os.path.join(datadir, fname)
            extraction_dir = os.path.join(datadir, f"{fname[:fname.find('.')]}_extracted")
        else:
            extraction_dir = os.path.join(datadir, fname)
            download_target = os.path.join(datadir, f"{fname}_archive")
    else:
        download_target = os.path.join(datadir, fname)

    if force_download or not os.path.exists(download_target):
        download = True
    else:
        download = False
        if file_hash is not None and not validate_file(download_target, file_hash, algorithm=hash_algorithm):
            print(f"A local file was found, but it seems to be incomplete or outdated because the {hash_algorithm} "
                  f"file hash does not match the original value of {file_hash} so we will re-download the data.")
            download = True
    if download:
        _download(origin, download_target, file_hash, hash_algorithm, download_target)

    if extract or untar:
        if untar:
            archive_format = "tar"
        if not extract_archive(download_target, extraction_dir, archive_format):
            warnings.warn("Could not extract archive.", stacklevel=2)
        return extraction_dir
    return download_target
