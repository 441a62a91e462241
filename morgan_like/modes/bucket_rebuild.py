"""A bucket's working tree rebuilt from the bucket, when it is missing or its state is lost.

The working tree (pages, ``.metadata``, the hidden state) is what a run on ``-i s3://``
reads; the bucket holds the same visible files.  A working tree deleted, moved to
another machine, or whose ``state.db`` is gone or unreadable would make the next sync
start over: fetch every file from upstream again, or (the state rebuilt from pages
alone) take the evicted files for missing.  So before the run, the visible files the
working tree lacks come back from the bucket: the pages (``simple/``, ``envs/``,
``json/``), the ``.metadata`` and provenance files, the top-level files (``local.json``,
``local.db.serial``, ``manifest.json``, ``morgan.ini``...).  A file the working tree still
has is kept: it may be newer than the bucket's (a push cut short).

Then the state is seeded: every distribution file a project page lists, and the bucket
holds at the size the page gives, is recorded with the page's size and sha256 as
evicted (tree/state.py ``EVICTED``), so the next sync neither fetches it again nor drops
it from its page.  A working tree that keeps its files (a bundle's, a curated slice's:
their runs look for them on disk) gets the distribution files back too, each checked
against its page's sha256 as it is recorded.  The generation last pushed is lost with
the state, so the next push reconciles in full (which never deletes what a page links).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit

from morgan_like.output import Reporter
from morgan_like.tree.layout import PACKAGES_DIR, SIMPLE_DIR, STATE_DIR, is_hidden
from morgan_like.tree.storage import ObjectStat, Storage

if TYPE_CHECKING:
    from morgan_like.modes.bucket import BucketRun
    from morgan_like.tree.state import TreeState


# Present from the first download until the seeded state is committed: a rebuild killed
# in between (a state.db already there, its evicted rows not yet) runs again next time.
REBUILDING = f"{STATE_DIR}/rebuilding"


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild did: objects downloaded (and their bytes), files recorded as in the
    bucket only, and why it ran."""

    downloaded: int
    bytes: int
    evicted: int
    reason: str


def state_lost(root: Path) -> str | None:
    """Why the working tree's state cannot be trusted (missing, unreadable, of another
    format); None: it is there and readable."""
    from morgan_like.tree.state import STATE_FORMAT, STATE_NAME

    path = root / STATE_DIR / STATE_NAME
    if (root / REBUILDING).exists():
        return "a rebuild was cut short"
    if not path.is_file():
        return "no working tree" if not (root / SIMPLE_DIR).is_dir() else "its state is missing"
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return "its state is unreadable"
    return None if row is not None and row[0] == STATE_FORMAT else "its state is unreadable"


def rebuild_if_lost(run: BucketRun, storage: Storage, reporter: Reporter) -> Rebuilt | None:
    """Rebuild ``run``'s working tree from its bucket when it is missing or its state is
    lost; say what it did in one line.  None: nothing to do (the state is fine, or the
    bucket is empty: a first run)."""
    from morgan_like.tree.lock import TreeLock

    root = run.working_tree
    reason = state_lost(root)
    if reason is None:
        return None
    remote = {s.key: s for s in storage.list() if not is_hidden(s.key)}
    if not remote:
        return None
    root.mkdir(parents=True, exist_ok=True)
    with TreeLock(root, "rebuild", wait=run.wait_lock, on_wait=reporter.info):
        if state_lost(root) is None:  # another run rebuilt it while we waited
            return None
        from morgan_like.tree.files import atomic_write_bytes

        atomic_write_bytes(root / REBUILDING, reason.encode(), durable=True)
        result = _rebuild(root, storage, remote, keep_files=not run.evict, reason=reason)
        (root / REBUILDING).unlink()
    from morgan_like.output import human_size

    reporter.info(
        f"Rebuilt the working tree {root} from {run.target.url} ({result.reason}): "
        f"{result.downloaded} objects downloaded ({human_size(result.bytes)}), "
        f"{result.evicted} files recorded as in the bucket only"
    )
    return result


def _rebuild(
    root: Path, storage: Storage, remote: dict[str, ObjectStat], *, keep_files: bool, reason: str
) -> Rebuilt:
    from morgan_like.tree.bucketpush import is_distribution
    from morgan_like.tree.files import files_under
    from morgan_like.tree.state import TreeState

    fetched: list[str] = []
    size = 0
    for key, stat in sorted(remote.items()):
        if (root / key).exists() or is_distribution(key):
            continue  # distribution files: only those a page lists (below)
        _download(storage, key, root)
        fetched.append(key)
        size += stat.size
    evicted = 0
    # Opening the state rebuilds it from the pages now in place (projects, serials).
    with TreeState(root) as state:
        # .metadata and provenance (fetched now, or kept by a working tree whose state
        # alone was lost): small, hashed here; unrecorded, a page would stop listing them.
        for key in files_under(root, root / PACKAGES_DIR):
            if not is_distribution(key) and state.get(key) is None:
                state.record_file(key)
        for key, file_size, sha256 in listed_files(root):
            held = remote.get(key)
            if held is None or held.size != file_size or state.get(key) is not None:
                continue
            if (root / key).is_file():
                continue  # a copy the working tree kept: the run checks it as on disk
            if keep_files:
                _download(storage, key, root)
                fetched.append(key)
                size += held.size
                if state.record_file(key).sha256 != sha256:
                    state.discard(key)  # not the page's bytes: the run fetches it again
                    (root / key).unlink()
                continue
            _record_evicted(state, key, file_size, sha256)
            evicted += 1
        state.commit()
    return Rebuilt(len(fetched), size, evicted, reason)


def _download(storage: Storage, key: str, root: Path) -> None:
    from morgan_like.tree.files import atomic_write_bytes

    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, storage.get(key))


def _record_evicted(state: TreeState, key: str, size: int, sha256: str) -> None:
    from morgan_like.tree.state import EVICTED

    state.query(
        "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", (key, size, sha256.lower(), EVICTED)
    )


def listed_files(root: Path) -> list[tuple[str, int, str]]:
    """Every ``packages/`` file the project pages (``simple/<p>/index.json``) list, with
    the size and sha256 the page gives; entries without both are skipped."""
    out: list[tuple[str, int, str]] = []
    simple = root / SIMPLE_DIR
    for page in sorted(simple.glob("*/index.json")):
        try:
            files = json.loads(page.read_bytes()).get("files", [])
        except (OSError, ValueError, AttributeError):
            continue
        base = "http://tree/" + page.relative_to(root).as_posix()
        for entry in files if isinstance(files, list) else []:
            with contextlib.suppress(KeyError, TypeError, AttributeError, ValueError):
                full = urljoin(base, str(entry["url"]))
                sha256, size = entry["hashes"]["sha256"], entry["size"]
                if not full.startswith("http://tree/") or not isinstance(size, int):
                    continue
                key = unquote(urlsplit(full).path).lstrip("/")
                if key.startswith(f"{PACKAGES_DIR}/") and isinstance(sha256, str):
                    out.append((key, size, sha256))
    return out
