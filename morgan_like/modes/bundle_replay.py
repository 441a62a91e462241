"""Replaying the last run's plan when neither the config nor upstream changed.

A bundle's plan is a function of the config, the options, the pages the
resolution read and the files those pages list (wheel metadata, sdist
metadata and build requirements are fixed by the files' hashes).  So after a
run, the plan is kept in ``.morgan-like/plan.json`` with the names of every
page the resolution read.  The next run with the same config and options asks
for those pages again, all at once; when every one of them is answered
``304 Not Modified``, nothing the resolution saw can have changed, and the
kept plan is used without resolving.  Any other answer (a changed page, a page
without validators, an error) falls back to a full resolution, which then
finds those pages already fetched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from morgan_like import __version__
from morgan_like.config.ini import Config
from morgan_like.dists.links import RemoteFile
from morgan_like.index.upstream import Upstream
from morgan_like.modes.bundle_report import BuildRows, EnvBuilds, FallbackRow, SdistRow
from morgan_like.resolve.plan import Plan, PlannedFile
from morgan_like.tree.files import atomic_write_bytes
from morgan_like.tree.layout import STATE_DIR

REPLAY_NAME = "plan.json"
# /2: the build report holds typed rows (sdist-only projects and build requirements,
# far fallbacks).
REPLAY_FORMAT = "morgan-like-plan/2"


@dataclass(frozen=True)
class Replay:
    """A kept plan, the pages it depends on, and what the summary said about builds."""

    plan: Plan
    pages: tuple[str, ...]
    builds: BuildRows


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


def save_replay(
    root: Path, key: str, plan: Plan, pages: list[str], builds: BuildRows, tmp_dir: Path
) -> None:
    entries = [
        {
            "project": e.project,
            "envs": sorted(e.envs),
            "build": e.build,
            "file": dataclasses.asdict(e.file),
        }
        for e in plan.files.values()
    ]
    doc = {
        "format": REPLAY_FORMAT,
        "key": key,
        "envs": plan.env_names,
        "problems": plan.problems,
        "pages": sorted(pages),
        "files": entries,
        "builds": {env: dataclasses.asdict(report) for env, report in builds.items()},
    }
    data = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    atomic_write_bytes(root / STATE_DIR / REPLAY_NAME, data, tmp_dir=tmp_dir)


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
        return Replay(plan, tuple(doc["pages"]), builds)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _env_builds(doc: dict[str, Any]) -> EnvBuilds:
    """An env's build report as save_replay wrote it (a no-op re-run prints the same)."""
    sdists = tuple(
        SdistRow(row["project"], row["version"], row["reason"], tuple(row.get("needed_by", ())))
        for row in doc["sdists"]
    )
    return EnvBuilds(sdists, tuple(FallbackRow(**row) for row in doc["fallbacks"]))


def unchanged_upstream(replay: Replay, upstream: Upstream, workers: int = 16) -> bool:
    """Ask for every page the kept plan read, side by side; True if each answered 304.

    Nothing is parsed: a 304 says the page is the one the plan was made from.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return all(pool.map(upstream.page_unchanged, replay.pages))
