"""bandersnatch-style diff-file: what changed in the tree, for incremental transfers.

``DIFF`` lists every created or changed file, one tree-relative path per line
("/" separators, sorted, unique), so either of these carries a run's changes:

    rsync -a --files-from=DIFF bundle/ dest/
    tar -C bundle -cf update.tar -T DIFF

``DIFF.removed`` lists the paths to delete on the other side, e.g.
``(cd dest && xargs -r -d '\\n' rm -f -- < DIFF.removed)``; directories emptied
that way can then go with ``find dest -type d -empty -delete``.

The lists are reconciled with the tree when written: a "changed" path that no
longer exists moves to the removed list (rsync and tar fail on missing files),
and a "removed" path that exists again is dropped from it.  Hidden paths
(``.morgan-like/`` working state) never travel.

The diff-file's path is the user's, so it is checked before a run starts
(``check_diff_target``) and again when written: it must lie outside the tree
(a diff-file in it would overwrite a page or ``morgan.ini``, and
``server.py --verify`` reports any stray file), and whatever already has its name
must be a regular file (``/dev/full`` was replaced by one).  Both files are
written atomically: a temp file beside the target, fsynced, then renamed.
"""

from __future__ import annotations

import heapq
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from morgan_like.errors import MorganLikeError
from morgan_like.tree.files import atomic_write_bytes
from morgan_like.tree.layout import is_hidden
from morgan_like.tree.pathbook import PathBook

REMOVED_SUFFIX = ".removed"
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISLNK, "a symlink"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


def diff_paths(
    tree_root: Path, changed: Iterable[str], removed: Iterable[str]
) -> tuple[list[str], list[str]]:
    """(changed, removed) relpaths, normalized, sorted, unique and consistent with the tree."""
    out_changed: list[bytes] = []
    out_removed = list(_reconciled(Path(tree_root), changed, removed, out_changed.append))
    return [line[:-1].decode() for line in out_changed], out_removed


def _reconciled(
    root: Path, changed: Iterable[str], removed: Iterable[str], emit: Callable[[bytes], None]
) -> Iterator[str]:
    """Hand each changed path that is a file now to ``emit`` as a line, sorted; then yield the
    removed list, sorted: the changed paths that are gone and the removed ones that
    are.  Streamed from PathBooks (sorted as they iterate), so a first sync's millions
    of pages are never held as strings at once; only the gone changed paths are kept."""
    gone: list[str] = []
    for rel in _book(changed).normalized():
        if not _travels(rel):
            continue
        if (root / rel).is_file():
            emit(f"{rel}\n".encode())
        else:
            gone.append(rel)
    doomed = (r for r in _book(removed).normalized() if _travels(r) and not (root / r).exists())
    last = None
    for rel in heapq.merge(gone, doomed):
        if rel != last:
            yield rel
            last = rel


def _book(paths: Iterable[str]) -> PathBook:
    return paths if isinstance(paths, PathBook) else PathBook(paths)


def _travels(relpath: str) -> bool:
    # manifest.json travels too (the far side verifies against it); hidden paths never do.
    return not is_hidden(relpath)


def _lines(paths: Iterable[str]) -> bytearray:
    out = bytearray()
    for path in paths:
        out += path.encode("utf-8")
        out += b"\n"
    return out


def write_diff(
    tree_root: Path,
    diff_file: str | Path,
    changed: Iterable[str],
    removed: Iterable[str],
    *,
    append_epoch: bool = False,
) -> tuple[Path, Path]:
    """Write ``diff_file`` (``<diff_file>-<epoch>`` with append_epoch) and ``<that>.removed``.

    A relative ``diff_file`` is relative to the current directory, not to the tree
    (as bandersnatch's diff-file setting); keep it outside the tree, where
    ``server.py --verify`` would report it as unexpected.  Both files are written atomically and always
    exist afterwards, empty when nothing changed.  Returns their absolute paths.
    """
    target = Path(diff_file).expanduser()
    if append_epoch:
        target = target.with_name(f"{target.name}-{int(time.time())}")
    target = target.absolute()
    removed_target = target.with_name(target.name + REMOVED_SUFFIX)
    check_diff_target(tree_root, target, shown=str(diff_file))
    # The lists as bytes built line by line: at a first sync's scale a list of lines
    # (or their join) would hold each path twice over.
    lines = bytearray()
    removed_lines = _lines(_reconciled(Path(tree_root), changed, removed, lines.extend))
    atomic_write_bytes(target, lines, durable=True)
    atomic_write_bytes(removed_target, removed_lines, durable=True)
    return target, removed_target


def check_diff_target(tree_root: Path, diff_file: str | Path, *, shown: str | None = None) -> None:
    """Refuse a diff-file path (MorganLikeError) inside the tree, or whose name (or its
    ``.removed`` companion's) is taken by anything but a regular file, or whose folder
    is not one.  Cheap: a run calls it before it starts, ``write_diff`` again."""
    target = Path(diff_file).expanduser().absolute()
    what = f"diff-file {shown or diff_file}"
    folder = target.parent
    if folder.exists() and not folder.is_dir():
        raise MorganLikeError(f"{what}: {folder} is not a folder")
    tree = os.path.realpath(tree_root)
    where = os.path.realpath(folder)
    if where == tree or where.startswith(tree.rstrip(os.sep) + os.sep):
        raise MorganLikeError(
            f"{what}: inside the tree {tree_root}; it would overwrite the tree's files "
            "(and be reported by verify): give a path outside it, e.g. next to the tree"
        )
    for path in (target, target.with_name(target.name + REMOVED_SUFFIX)):
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise MorganLikeError(f"{what}: {path}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            raise MorganLikeError(
                f"{what}: {path} is {kind}; a diff-file replaces only a regular file "
                "(or is made new): give another path"
            )
