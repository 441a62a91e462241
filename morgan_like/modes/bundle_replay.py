"""Replaying the last run's plan when neither the config nor upstream changed.

A bundle's plan is a function of the config, the options, the pages the
resolution read and the files those pages list (wheel metadata, sdist
metadata and build requirements are fixed by the files' hashes).  So after a
run, the plan is kept in ``.morgan-like/plan.json`` with two digests of every
page the resolution read (or found missing).  The next run with the same
config and options asks upstream for those pages again, all at once, and
compares them:

* the page as sent (``Upstream.check_page``: sha256 of its body, type and
  URL; on a ``304`` the page cache's, with no body read): the same bytes parse
  to the same page, so nothing is parsed;
* only for a page whose bytes moved, what the resolution and the tree's pages
  read of it (``page_digest``): every file with all its fields, the versions,
  the entries left out, the project's status and tracks; not the serial,
  which PyPI moves on events that change none of these.

When every page passes, nothing the resolution saw can have changed, and the
kept plan is used without resolving.  A page that differs, or fails, falls
back to a full resolution, which parses the pages the check already holds:
none is asked for twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import operator
import threading
import weakref
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from morgan_like import __version__
from morgan_like.config.ini import Config
from morgan_like.dists.links import ProjectPage, RemoteFile
from morgan_like.errors import ProjectNotFound, UpstreamError
from morgan_like.index.pagebody import PAGE_GONE
from morgan_like.index.upstream import Upstream
from morgan_like.modes.bundle_report import BuildRows, EnvBuilds, FallbackRow, SdistRow
from morgan_like.resolve.plan import Plan, PlannedFile
from morgan_like.tree.files import atomic_write_bytes
from morgan_like.tree.generations import current
from morgan_like.tree.layout import STATE_DIR
from morgan_like.tree.state import TreeState

if TYPE_CHECKING:
    from morgan_like.index.finder import Finder

REPLAY_NAME = "plan.json"
# /4: pages are kept as name -> [Upstream.check_page digest, page_digest].
REPLAY_FORMAT = "morgan-like-plan/4"
_PAGE_FIELDS = tuple(f.name for f in dataclasses.fields(ProjectPage) if f.name != "last_serial")
# Every field of a RemoteFile, read in one C call per file (a page can list thousands).
_FILE_NAMES = tuple(f.name for f in dataclasses.fields(RemoteFile))
_FILE_FIELDS = operator.attrgetter(*_FILE_NAMES)
# Finder -> {page name: page_digest}: the Finder holds each page once for the run, so
# its digest is taken once, whether by the replay check or when the plan is saved.
_DIGESTS: weakref.WeakKeyDictionary[Finder, dict[str, str]] = weakref.WeakKeyDictionary()
# Finder -> {page name: (sent, page_digest)} the check found as the kept plan has them.
_CHECKED: weakref.WeakKeyDictionary[Finder, dict[str, tuple[str, str]]] = (
    weakref.WeakKeyDictionary()
)
_DIGESTS_LOCK = threading.Lock()
# tree root -> the Replay load_replay read last (one: a run reads one), so that saving it
# back unchanged writes nothing.
_LOADED: dict[Path, Replay] = {}


@dataclass(frozen=True)
class Replay:
    """A kept plan, the pages it depends on (name -> (digest as sent, page_digest)), what
    the summary said about builds, and the key of what the run that made it published
    (``publish_key``)."""

    plan: Plan
    pages: Mapping[str, tuple[str, str]]
    builds: BuildRows
    published: str | None = None
    key: str = ""


def replay_key(config: Config, choices: tuple[Any, ...]) -> str:
    """Everything besides upstream that decides the plan: the config as read (requirement
    files, pyprojects and locks included), the options and this version."""
    parts = (
        REPLAY_FORMAT,
        __version__,
        # Tag's repr carries its id(): spell the envs out.
        [
            (e.name, sorted(e.markers.items()), [str(t) for t in e.tags], e.binary_only)
            for e in config.environments
        ],
        config.requirements,
        config.constraints,
        config.build_requirements,
        sorted(config.dependency_overrides.items(), key=repr),
        [lock.digest for lock in config.locks],  # what each lock says, byte for byte
        choices,
    )
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()


def page_digest(page: ProjectPage) -> str:
    """sha256 of everything the resolution and the tree's pages read of ``page``, in
    upstream's order (a reordered page resolves again: a tie may break the other way).

    Left out: ``last_serial``, which a bundle never reads (its pages carry serials of
    their own) and PyPI moves on events no file shows (a description edited, a role
    granted).
    """
    doc: list[Any] = []
    for name in _PAGE_FIELDS:  # a field the page gains later is in, unless left out here
        value = getattr(page, name)
        if name == "files":
            value = [_FILE_FIELDS(f) for f in value]
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.astuple(value)  # the project's status and tracks
        doc.append(value)
    return hashlib.sha256(json.dumps(doc, separators=(",", ":")).encode("utf-8")).hexdigest()


def _digest_of(finder: Finder, name: str) -> str:
    """page_digest of ``finder``'s page ``name``, taken once per run."""
    with _DIGESTS_LOCK:
        known = _DIGESTS.setdefault(finder, {})
        digest = known.get(name)
    if digest is None:
        digest = page_digest(finder.page(name))
        with _DIGESTS_LOCK:
            known[name] = digest
    return digest


def page_digests(finder: Finder, names: Iterable[str]) -> dict[str, tuple[str, str]]:
    """name -> (digest as sent, page_digest) of each page ``finder`` read this run, and of
    each project upstream was found not to have (already fetched: no request).

    A page the replay check found unchanged keeps the kept plan's pair without being
    parsed.
    """
    upstream = finder.upstream
    with _DIGESTS_LOCK:
        checked = dict(_CHECKED.get(finder, {}))
    found: dict[str, tuple[str, str]] = {}
    for name in [*names, *upstream.pages_gone()]:
        sent = upstream.page_digest(name)
        if sent == PAGE_GONE:
            found[name] = (PAGE_GONE, PAGE_GONE)
        elif sent is None and name in checked:
            found[name] = checked[name]
        else:
            found[name] = (sent or "", _digest_of(finder, name))
    return found


def save_replay(
    root: Path,
    key: str,
    plan: Plan,
    pages: Mapping[str, tuple[str, str]],
    builds: BuildRows,
    tmp_dir: Path,
    published: str | None = None,
) -> None:
    """Keep the plan for the next run (not written again when it is already kept as is)."""
    kept = _LOADED.get(root)
    if (
        kept is not None
        and kept.plan is plan
        and (kept.key, kept.pages, kept.builds, kept.published)
        == (key, dict(pages), builds, published)
    ):
        return  # the replayed plan, as it was read
    entries = [
        {
            "project": e.project,
            "envs": sorted(e.envs),
            "build": e.build,
            "file": dict(zip(_FILE_NAMES, _FILE_FIELDS(e.file))),  # its fields are scalars
        }
        for e in plan.files.values()
    ]
    doc = {
        "format": REPLAY_FORMAT,
        "key": key,
        "envs": plan.env_names,
        "problems": plan.problems,
        "pages": {name: list(pair) for name, pair in sorted(pages.items())},
        "files": entries,
        "builds": {env: dataclasses.asdict(report) for env, report in builds.items()},
        "published": published,
    }
    data = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    path = root / STATE_DIR / REPLAY_NAME
    with contextlib.suppress(OSError):
        if path.read_bytes() == data:
            return
    atomic_write_bytes(path, data, tmp_dir=tmp_dir)


def publish_key(
    state: TreeState,
    prune: bool,
    config: bytes,
    inputs: Mapping[str, bytes] | None,
    server: bytes | None,
) -> str | None:
    """What a publish of a kept plan writes, besides the plan: the tree as it stands (its
    generation, which every publish that changes a path moves), ``--prune``, the config
    and its inputs, the server; None while the state holds changes no publish has
    handed on yet (a killed run's), which the next publish must.

    A replayed plan whose files were all in place, with the key its last publish
    left, would publish the tree's own bytes again: the run leaves the tree as it is.
    """
    changed, removed = state.unsent()
    if changed or removed:
        return None

    def sha(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    parts = [
        current(state),
        prune,
        sha(config),
        None if inputs is None else sorted((path, sha(data)) for path, data in inputs.items()),
        None if server is None else sha(server),
    ]
    return sha(json.dumps(parts).encode("utf-8"))


def forget_replay(root: Path) -> None:
    (root / STATE_DIR / REPLAY_NAME).unlink(missing_ok=True)


def load_replay(root: Path, key: str) -> Replay | None:
    """The kept plan if it was made with ``key``; None when absent, stale or unreadable."""
    try:
        doc = json.loads((root / STATE_DIR / REPLAY_NAME).read_bytes())
        if doc.get("format") != REPLAY_FORMAT or doc.get("key") != key:
            return None
        plan = Plan(env_names=list(doc["envs"]), problems=list(doc["problems"]))
        for item in doc["files"]:
            entry = PlannedFile(
                canonicalize_name(item["project"]),
                RemoteFile(**item["file"]),
                set(item["envs"]),
                bool(item["build"]),
            )
            plan.files[entry.relpath] = entry
        builds = {env: _env_builds(report) for env, report in doc["builds"].items()}
        pages = {
            str(name): (str(sent), str(parsed)) for name, (sent, parsed) in doc["pages"].items()
        }
        published = doc.get("published")
        replay = Replay(plan, pages, builds, published if isinstance(published, str) else None, key)
        _LOADED.clear()
        _LOADED[root] = replay
        return replay
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _env_builds(doc: dict[str, Any]) -> EnvBuilds:
    """An env's build report as save_replay wrote it (a no-op re-run prints the same)."""
    sdists = tuple(
        SdistRow(row["project"], row["version"], row["reason"], tuple(row.get("needed_by", ())))
        for row in doc["sdists"]
    )
    return EnvBuilds(sdists, tuple(FallbackRow(**row) for row in doc["fallbacks"]))


def _sent_digest(upstream: Upstream, name: str) -> str:
    try:
        return upstream.check_page(name)
    except ProjectNotFound:
        return PAGE_GONE


class PageCheck:
    """Every page the kept plan read, asked for side by side as soon as the run has its
    Upstream: the requests go out while the run imports and builds what a resolution
    needs, and ``unchanged`` collects their answers.

    The pages stay with the upstream: a resolution that follows parses them from there.
    """

    def __init__(self, replay: Replay, upstream: Upstream) -> None:
        self.replay = replay
        names = list(replay.pages)
        self._futures: list[tuple[str, Future[str]]] = []
        self._pool: ThreadPoolExecutor | None = None
        if names:
            # As many at once as the upstream keeps connections: a round trip for the
            # lot when they fit.
            self._pool = ThreadPoolExecutor(
                min(len(names), upstream.pool_size), thread_name_prefix="check"
            )
            self._futures = [
                (name, self._pool.submit(_sent_digest, upstream, name)) for name in names
            ]

    def close(self) -> None:
        """Requests not sent yet are dropped (a run that stops before it asks)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def unchanged(self, finder: Finder) -> bool:
        """True if each page is the one the plan was made from: the same bytes (a ``304``
        included), or bytes that parse to the same page_digest (``finder`` parses them
        from its upstream, the one the check asked)."""
        try:
            sent = {}
            for name, future in self._futures:
                try:
                    sent[name] = future.result()
                except UpstreamError:  # out of reach: the resolution says which
                    return False
        finally:
            self.close()
        checked = {}
        for name, (kept_sent, kept_parsed) in self.replay.pages.items():
            if sent[name] != kept_sent:
                if PAGE_GONE in (sent[name], kept_sent):
                    return False
                try:
                    if _digest_of(finder, name) != kept_parsed:
                        return False
                except UpstreamError:
                    return False
            else:
                checked[name] = (kept_sent, kept_parsed)
        with _DIGESTS_LOCK:
            _CHECKED[finder] = checked
        return True
