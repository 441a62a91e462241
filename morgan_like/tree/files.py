"""File primitives of the tree: atomic replacement, chunked hashing, the scratch sweep.

Readers (pip over file://, server.py, rsync) must see a file's old bytes or its
new bytes, never half; and a large wheel must never sit in memory to be hashed.
The temp files of the tree's atomic writes live in the tree's scratch folder
(``.morgan-like/tmp``, same filesystem, so the rename stays atomic), never next to
their target: what a killed run leaves behind is then found without listing the
tree, and swept by the next run under the tree lock.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import os
import re
import shutil
from pathlib import Path

from morgan_like.tree import crashpoints
from morgan_like.tree.layout import SCRATCH_DIRS, STATE_DIR, TMP_DIR

_CHUNK = 1 << 20
# Directories this process has made or seen (a write skips its mkdir calls), the temp
# name counter, and the umask (read once: os.umask can only be read by setting it).
# A sync writes a folder or two per project: past _MADE_MAX the set starts again, so a
# mirror of a million projects does not keep a million names for a saved mkdir each.
_MADE: set[str] = set()
_MADE_MAX = 4096
_COUNTER = itertools.count()
_UMASK = os.umask(0o022)
os.umask(_UMASK)
# What atomic_write_bytes of older versions left next to a target: ".NAME.xxxxxxxx.tmp".
_LEGACY_TEMP = re.compile(r"\..+\.[A-Za-z0-9_]{6,}\.tmp")


def sha256_file(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def atomic_write_bytes(
    path: str | Path,
    data: bytes | bytearray,
    *,
    durable: bool = False,
    tmp_dir: Path | None = None,
) -> None:
    """Write via a temp file, then os.replace: readers see the old bytes or the new.

    The temp file goes to ``tmp_dir`` (the tree's scratch folder, see
    :func:`scratch_dir`) or, without one, next to ``path`` (files outside a tree,
    such as the diff-file).  If ``tmp_dir`` turns out to be on another filesystem,
    the write falls back to the target's directory.  ``durable`` adds an fsync
    before the rename, for files that others vouch for.
    """
    # Plain strings: the writer calls this per page, and pathlib's objects cost more CPU
    # than the rest of the Python here.
    path = os.fspath(path)
    directory, name = os.path.split(path)
    directory = directory or os.curdir
    if directory not in _MADE:
        os.makedirs(directory, exist_ok=True)
        if len(_MADE) >= _MADE_MAX:
            _MADE.clear()
        _MADE.add(directory)
    if tmp_dir is not None and str(tmp_dir) not in _MADE:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        _MADE.add(str(tmp_dir))
    # A name no other writer uses (pid + counter: cheaper than mkstemp's random probing).
    tmp = os.path.join(tmp_dir or directory, f".{name}.{os.getpid()}_{next(_COUNTER):08d}.tmp")
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(tmp, flags, 0o644)
        except FileNotFoundError:  # the scratch folder was swept since: make it again
            os.makedirs(os.path.dirname(tmp), exist_ok=True)
            fd = os.open(tmp, flags, 0o644)
        # The descriptor itself, not a file object: os.fdopen adds an fstat, an ioctl and
        # an lseek to the open, write and close a page needs.
        try:
            write_all(fd, data)
            if _UMASK & 0o644:  # a strict umask: the tree is still readable by its server
                os.chmod(tmp, 0o644)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        crashpoints.step()  # a kill here leaves the temp file: swept by the next run
        try:
            os.replace(tmp, path)
        except FileNotFoundError:
            if not os.path.exists(tmp):
                raise
            _MADE.discard(directory)  # removed since (a prune): make it again
            os.makedirs(directory, exist_ok=True)
            os.replace(tmp, path)
        except OSError as exc:
            if exc.errno != errno.EXDEV or tmp_dir is None:
                raise
            os.unlink(tmp)
            atomic_write_bytes(path, data, durable=durable)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_all(fd: int, data: bytes | bytearray) -> None:
    """All of ``data`` to the descriptor (a write may take only part)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_bytes(path: str | Path) -> bytes | None:
    """A file's bytes, None when it cannot be read (a missing one costs one failed open).

    Through the descriptor (open, fstat, read, close): a file object would add an ioctl
    and an lseek, and the writer reads each page it may replace.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        chunks: list[bytes] = []
        while True:  # past the size fstat gave: a file that grew meanwhile is read whole
            chunk = os.read(fd, max(size, _CHUNK) + 1)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)


def scratch_dir(root: Path) -> Path:
    """The tree's folder for temp files (atomic writes, downloads in flight)."""
    return Path(root) / TMP_DIR


def sweep_scratch(root: Path) -> None:
    """Empty the tree's scratch folders (temp files, the sdist cache).

    Only safe under the tree lock (see :mod:`morgan_like.tree.lock`): another run's
    temp files live there too.  Called at the start of a run, for what a killed run
    left, and at its end.  Costs nothing in proportion to the tree: it never lists
    ``simple/`` or ``packages/``.
    """
    for name in SCRATCH_DIRS:
        shutil.rmtree(Path(root) / STATE_DIR / name, ignore_errors=True)


def is_legacy_temp(name: str) -> bool:
    """A temp file that an older version's atomic write left next to its target."""
    return bool(_LEGACY_TEMP.fullmatch(name))


def files_under(
    root: Path, base: Path, include_hidden: bool = False, temps: bool = False
) -> list[str]:
    """Paths relative to ``root`` of the files below ``base``, sorted; hidden ones
    optionally (``temps``: of those, only the temp files older versions left)."""
    found = []
    prefix = os.path.join(os.fspath(root), "")
    for dirpath, dirnames, filenames in os.walk(base):
        if not include_hidden:
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        # A folder below root as a relative prefix by slicing (a writer asks per project);
        # pathlib's relative_to for what slicing cannot answer.
        if dirpath.startswith(prefix) and os.sep == "/":
            rel_dir = dirpath[len(prefix) :] + "/"
        else:
            rel_dir = None
        for name in filenames:
            if include_hidden or not name.startswith(".") or (temps and is_legacy_temp(name)):
                if rel_dir is not None:
                    found.append(rel_dir + name)
                else:
                    found.append(Path(dirpath, name).relative_to(root).as_posix())
    return sorted(found)


def drop_empty_dirs(base: Path, including_base: bool) -> None:
    """Remove the empty folders below ``base`` (and ``base`` itself, optionally)."""
    if not base.is_dir():
        return
    for dirpath, _dirnames, _filenames in os.walk(base, topdown=False):
        if Path(dirpath) == base and not including_base:
            continue
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)
