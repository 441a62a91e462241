"""The push: make a store (a bucket) equal to the working tree's visible files, in an order
that never lets a reader of the store see a page listing a missing object.

A bucket has no rename, so the tree's "write aside, then swap" cannot be had there.
Instead the objects go up in ranks, each finished before the next starts:

1. distribution files and provenance (``packages/**``, not ``.metadata``)
2. ``.metadata`` (PEP 658: a page that says a file has one must be able to serve it)
3. project pages (``simple/<p>/``, ``envs/<e>/simple/<p>/``, ``json/<p>``)
4. root pages (``simple/index.*``, ``envs/<e>/simple/index.*``)
5. top-level files (``local.json``, ``local.db.serial``, ``index.html``, ``locks/``, ...)
6. ``manifest.json``, which vouches for all of the above

then deletions in the reverse ranks: a page leaves before the files it listed, and no
file leaves before every page that listed it has been rewritten (rank 3 above).  Each
object carries its Content-Type (the table server.py and the nginx config use) and
Cache-Control: files under ``packages/`` never change once named, pages do.

A journal (``.morgan-like/push.json``: what is still to upload and delete) is written
before the first request and rewritten as each rank completes; a push killed at any
point leaves it, and the next push takes it in first.  A full push journals only that
it is one (resumed, it reconciles again); an unreadable journal means the same.  Whether a journalled path is
uploaded or deleted is decided when it runs, by whether the working tree has it then.
A resumed push skips objects the store already holds identically.

``full=True`` reconciles from scratch (a first push, a lost journal, a repair): list the
store, upload what it lacks or holds differently (files under ``packages/`` by size: they
are immutable by name; anything else by MD5 against the ETag, or against the bytes where
the store has none), delete what the tree lacks.

With ``evict`` the working tree drops its distribution files once they are in the store
(pages, ``.metadata``, provenance and the state stay).  No push deletes an object a
working tree page still links, so an evicted file stays in the store whatever the caller
or a full reconcile takes its absence from the working tree for.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from morgan_like.tree import crashpoints
from morgan_like.tree.files import atomic_write_bytes, files_under
from morgan_like.tree.layout import (
    ENVS_DIR,
    JSON_DIR,
    LOCAL_JSON,
    LOCAL_SERIAL,
    LOCKS_DIR,
    MANIFEST_NAME,
    METADATA_SUFFIX,
    PACKAGES_DIR,
    PROVENANCE_SUFFIX,
    SBOM_NAME,
    SIMPLE_DIR,
    STATE_DIR,
    is_hidden,
)
from morgan_like.tree.storage import MULTIPART_THRESHOLD, ObjectStat, Storage

JOURNAL = f"{STATE_DIR}/push.json"
_JOURNAL_FORMAT = 1
# Uploads within one rank run side by side: a store answers each request in a few ms,
# and a sync pushes thousands of small pages.
WORKERS = 8

FILES, METADATA, PROJECT_PAGES, ROOT_PAGES, TOP_LEVEL, MANIFEST = range(6)

JSON_V1 = "application/vnd.pypi.simple.v1+json"
TEXT_HTML = "text/html; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"


@dataclass(frozen=True)
class PushResult:
    """What one push did: objects uploaded (and their bytes), deleted, files evicted."""

    uploaded: int
    deleted: int
    bytes: int
    evicted: int = 0
    resumed: bool = False  # a journal from a killed push was taken in
    streamed: int = 0  # objects sent during the run, before this push (tree/bucketstream.py)
    streamed_bytes: int = 0


@dataclass(frozen=True)
class Sent:
    """An object already uploaded during the run (tree/bucketstream.py): its size, and
    the MD5 of its bytes (None under ``packages/``: named by content, the size says it)."""

    size: int
    md5: str | None


def rank(relpath: str) -> int:
    """Where a path goes in the upload order (see the module docstring)."""
    parts = relpath.split("/")
    if parts[0] == PACKAGES_DIR:
        return METADATA if relpath.endswith(METADATA_SUFFIX) else FILES
    if relpath == MANIFEST_NAME:
        return MANIFEST
    simple_at = 2 if parts[0] == ENVS_DIR and len(parts) > 2 and parts[2] == SIMPLE_DIR else 0
    if (parts[0] == SIMPLE_DIR and simple_at == 0) or simple_at:
        return PROJECT_PAGES if len(parts) > simple_at + 2 else ROOT_PAGES
    if parts[0] == JSON_DIR and len(parts) > 1:
        return PROJECT_PAGES
    return TOP_LEVEL


def content_type(relpath: str) -> str:
    """The Content-Type a store serves ``relpath`` with: server.py's table."""
    name = relpath.rsplit("/", 1)[-1]
    parts = relpath.split("/")
    if parts[0] == PACKAGES_DIR:
        return (
            "application/json" if name.endswith(PROVENANCE_SUFFIX) else "application/octet-stream"
        )
    if name == "index.json" and rank(relpath) in (PROJECT_PAGES, ROOT_PAGES):
        return JSON_V1
    if name.endswith((".html", ".htm")):
        return TEXT_HTML
    if parts[0] == JSON_DIR or relpath in (LOCAL_JSON, MANIFEST_NAME) or name.endswith(".json"):
        return "application/vnd.cyclonedx+json" if relpath == SBOM_NAME else "application/json"
    if parts[0] == LOCKS_DIR and name.endswith(".toml"):
        return "application/toml; charset=utf-8"
    if relpath == LOCAL_SERIAL or name.endswith((".txt", ".ini", ".cfg")):
        return "text/plain; charset=utf-8"
    if name.endswith(".py"):
        return "text/x-python; charset=utf-8"
    return "application/octet-stream"


def cache_control(relpath: str) -> str:
    """Files under ``packages/`` never change once named; everything else is re-checked."""
    return IMMUTABLE if relpath.split("/", 1)[0] == PACKAGES_DIR else NO_CACHE


def is_distribution(relpath: str) -> bool:
    """A file eviction may drop locally (not its ``.metadata`` or provenance)."""
    return rank(relpath) == FILES and not relpath.endswith(PROVENANCE_SUFFIX)


def push(
    root: Path,
    storage: Storage,
    changed: Iterable[str],
    removed: Iterable[str],
    *,
    evict: bool = False,
    on_evicted: Callable[[list[str]], None] | None = None,
    full: bool = False,
    already: Mapping[str, Sent] | None = None,
) -> PushResult:
    """Make ``storage`` hold the working tree's visible files (see the module docstring).

    ``already``: objects this run streamed up (tree/bucketstream.py); one the working
    tree still holds with those bytes is not uploaded again."""
    root = Path(root)
    streamed = already or {}
    pending = read_journal(root)
    resumed = pending is not None
    full = full or (pending is not None and pending.full)
    paths = set(pending.paths if pending else ()) | set(changed) | set(removed)
    # A full push journals only that it is one: resumed, it reconciles again, which skips
    # what already landed (a full mirror's path list would be hundreds of MB to rewrite).
    write_journal(root, paths, full=full)
    if resumed or full:
        storage.sweep()  # what the push cut short left: temp files, unfinished multiparts
    remote: dict[str, ObjectStat] | None = None
    if full:
        remote = {s.key: s for s in storage.list()}
        local = set(files_under(root, root))
        paths |= {
            p
            for p in local
            if not _streamed(root, p, streamed) and not _same(root, p, remote.get(p), storage)
        }
        paths |= {k for k in remote if k not in local}
    paths = {p for p in paths if not is_hidden(p)}

    uploads = sorted(
        (p for p in paths if (root / p).is_file() and not _streamed(root, p, streamed)),
        key=lambda p: (rank(p), p),
    )
    listed = _Listed(root)
    deletes = sorted(
        (p for p in paths if not (root / p).is_file() and not listed(p)),
        key=lambda p: (-rank(p), p),
    )
    uploaded = size = 0
    remaining = set(paths)
    for level in range(MANIFEST + 1):
        batch = [p for p in uploads if rank(p) == level]
        if resumed and remote is None:
            batch = [p for p in batch if not _same(root, p, storage.stat(p), storage)]
        for sent in _run(batch, lambda p: _upload(root, storage, p)):
            uploaded += 1
            size += sent
        remaining -= {p for p in uploads if rank(p) == level}
        if batch and not full:
            write_journal(root, remaining)
    for level in reversed(range(MANIFEST + 1)):
        batch = [p for p in deletes if rank(p) == level]
        list(_run(batch, lambda p: _delete(storage, p)))
        remaining -= set(batch)
        if batch and not full:
            write_journal(root, remaining)
    evicted = _evict(root, storage, [*uploads, *streamed], on_evicted) if evict else 0
    clear_journal(root)
    return PushResult(uploaded, len(deletes), size, evicted, resumed)


def _streamed(root: Path, relpath: str, streamed: Mapping[str, Sent]) -> bool:
    """Whether the run streamed ``relpath`` with the bytes the working tree has now."""
    sent = streamed.get(relpath)
    if sent is None:
        return False
    try:
        if (root / relpath).stat().st_size != sent.size:
            return False
    except OSError:
        return False
    return sent.md5 is None or _md5(root / relpath) == sent.md5


def _upload(root: Path, storage: Storage, relpath: str) -> int:
    path = root / relpath
    crashpoints.step()
    storage.put_file(
        relpath, path, content_type=content_type(relpath), cache_control=cache_control(relpath)
    )
    return path.stat().st_size


def _delete(storage: Storage, relpath: str) -> int:
    crashpoints.step()
    storage.delete(relpath)
    return 0


def _run(batch: list[str], job: Callable[[str], int]) -> Iterable[int]:
    """``job`` over ``batch``, side by side; the first failure stops the push (raised)."""
    if len(batch) <= 1:
        return [job(p) for p in batch]
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(job, batch))


def _same(root: Path, relpath: str, stat: ObjectStat | None, storage: Storage) -> bool:
    """Whether the store already holds ``relpath`` as the working tree has it."""
    path = root / relpath
    if stat is None or not path.is_file() or path.stat().st_size != stat.size:
        return False
    if rank(relpath) in (FILES, METADATA) or (stat.etag is not None and "-" in stat.etag):
        # Named by their content (immutable), or a multipart object whose ETag is no MD5:
        # the size agreed.  Reading every local file would cost a full mirror's bytes.
        return True
    local = _md5(path)
    if stat.etag is not None:
        return local == stat.etag
    digest = hashlib.md5(usedforsecurity=False)
    with storage.open(relpath) as reader:
        while chunk := reader.read(1024 * 1024):
            digest.update(chunk)
    return local == digest.hexdigest()


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _evict(
    root: Path,
    storage: Storage,
    uploaded: list[str],
    on_evicted: Callable[[list[str]], None] | None = None,
) -> int:
    """Drop the local copy of each distribution file now in the store: the ones this push
    uploaded, and any other the working tree holds that the store has at its size (a file
    a run fetched again, e.g. while rewriting its project's page).  Under eviction the
    working tree holds few files, so the walk is short."""
    sent = set(uploaded)
    count = 0
    for relpath in files_under(root, root / PACKAGES_DIR):
        if not is_distribution(relpath):
            continue
        if relpath not in sent:
            stat = storage.stat(relpath)
            if stat is None or stat.size != (root / relpath).stat().st_size:
                continue
        if on_evicted is not None:
            on_evicted([relpath])  # recorded first: a kill after it leaves a copy, no gap
        crashpoints.step()
        with contextlib.suppress(FileNotFoundError):
            (root / relpath).unlink()
            count += 1
    return count


class _Listed:
    """Whether a working tree page still links a ``packages/`` key (a file, its .metadata
    or provenance), reading the pages of that key's project once.  Such an object is never
    deleted from the store, whether or not the working tree holds it: evicted, with the
    state lost since, or "removed" by a caller that took an evicted file for a deletion."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._projects: dict[str, set[str]] = {}

    def __call__(self, key: str) -> bool:
        parts = key.split("/")
        if parts[0] != PACKAGES_DIR or len(parts) < 3:
            return False
        if parts[1] not in self._projects:
            self._projects[parts[1]] = self._read(parts[1])
        return key in self._projects[parts[1]]

    def _read(self, project: str) -> set[str]:
        listed: set[str] = set()
        pages = [self.root / SIMPLE_DIR / project / "index.json"]
        pages += self.root.glob(f"{ENVS_DIR}/*/{SIMPLE_DIR}/{project}/index.json")
        for page in pages:
            try:
                doc = json.loads(page.read_bytes())
                urls = [str(f["url"]) for f in doc.get("files", [])]
            except (OSError, ValueError, TypeError, KeyError, AttributeError):
                continue  # missing or unreadable: it vouches for nothing
            base = "http://tree/" + page.relative_to(self.root).as_posix()
            for url in urls:
                full = urljoin(base, url)
                if full.startswith("http://tree/"):
                    key = unquote(urlsplit(full).path).lstrip("/")
                    listed.update((key, key + METADATA_SUFFIX, key + PROVENANCE_SUFFIX))
        return listed


# --- the journal -----------------------------------------------------------------------


@dataclass(frozen=True)
class Journal:
    """What a push cut short left to do: its paths, or (``full``) a whole reconcile."""

    paths: tuple[str, ...]
    full: bool = False


def read_journal(root: Path) -> Journal | None:
    """What a killed push left to do; None: no push was cut short."""
    try:
        data = json.loads((Path(root) / JOURNAL).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return Journal((), full=True)  # unreadable: only a full reconcile is sure
    if not isinstance(data, dict) or not isinstance(data.get("paths"), list):
        return Journal((), full=True)
    paths = tuple(p for p in data["paths"] if isinstance(p, str))
    return Journal(paths, full=bool(data.get("full")))


def write_journal(root: Path, paths: Iterable[str], *, full: bool = False) -> None:
    body = {"format": _JOURNAL_FORMAT, "full": full, "paths": sorted(paths)}
    atomic_write_bytes(Path(root) / JOURNAL, json.dumps(body).encode(), durable=True)


def clear_journal(root: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(Path(root) / JOURNAL)


__all__ = [
    "JOURNAL",
    "MULTIPART_THRESHOLD",
    "PushResult",
    "Sent",
    "cache_control",
    "content_type",
    "push",
    "rank",
]
