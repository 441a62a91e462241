"""What a curated slice remembers between syncs: ``.morgan-like/slice.json``.

A closure is one kept release of one allowlisted entry resolved for one env: the
pages it read (``touched``) and the files it picked.  With the serials the
upstream listed for every page the slice read, the next sync knows which
closures a change upstream can reach: only those whose ``touched`` holds a
project whose serial moved are resolved again; the rest keep their files as
recorded.  A no-op sync compares the serial list with this record and stops.

The record is written last, after publish: a run killed before that leaves the
old record, whose serials still differ from the list, so the next run redoes
the same work.  It is hidden state (never served, never exported); lost or
unreadable, the next sync resolves everything again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from morgan_like.tree.files import atomic_write_bytes, scratch_dir
from morgan_like.tree.layout import STATE_DIR

SLICE_NAME = "slice.json"
FORMAT = "morgan-like-slice/1"


@dataclass(frozen=True)
class ClosureKey:
    """One allowlisted entry (its requirement as written), one kept release, one env."""

    entry: str
    version: str
    env: str


@dataclass(frozen=True)
class Closure:
    """What resolving ``key`` read and picked.

    ``files``: tree paths (packages/<project>/<filename>); ``error``: why the last
    resolution failed (its ``files`` are then the last good ones, kept so the release
    stays installable); a conflict is tried again only when a page it read moves, any
    other failure (the upstream did not answer) on every run (``retry``);
    ``unsupported``: no file of the release installs in the env (Requires-Python,
    tags), so nothing was resolved.
    """

    key: ClosureKey
    touched: frozenset[str]
    files: tuple[str, ...] = ()
    error: str | None = None
    unsupported: str | None = None
    retry: bool = False


@dataclass(frozen=True)
class SliceRecord:
    key: str  # what the config asked, hashed: another key resolves everything again
    serials: Mapping[str, int] = field(default_factory=dict)
    kept: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # entry -> versions
    closures: Mapping[ClosureKey, Closure] = field(default_factory=dict)

    @property
    def failed(self) -> list[Closure]:
        return [c for c in self.closures.values() if c.error is not None]


def slice_path(root: Path) -> Path:
    return root / STATE_DIR / SLICE_NAME


def load_record(root: Path) -> SliceRecord | None:
    """The last run's record, or None (none yet, unreadable, another format)."""
    try:
        doc = json.loads(slice_path(root).read_bytes())
        if doc.get("format") != FORMAT:
            return None
        closures = {}
        for item in doc["closures"]:
            key = ClosureKey(str(item["entry"]), str(item["version"]), str(item["env"]))
            closures[key] = Closure(
                key,
                frozenset(str(n) for n in item["touched"]),
                tuple(str(f) for f in item["files"]),
                item.get("error"),
                item.get("unsupported"),
                bool(item.get("retry", False)),
            )
        return SliceRecord(
            key=str(doc["key"]),
            serials={str(k): int(v) for k, v in doc["serials"].items()},
            kept={str(k): tuple(str(v) for v in vs) for k, vs in doc["kept"].items()},
            closures=closures,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def save_record(root: Path, record: SliceRecord) -> None:
    closures = [
        {
            "entry": c.key.entry,
            "version": c.key.version,
            "env": c.key.env,
            "touched": sorted(c.touched),
            "files": sorted(c.files),
            **({"error": c.error} if c.error is not None else {}),
            **({"unsupported": c.unsupported} if c.unsupported is not None else {}),
            **({"retry": True} if c.retry else {}),
        }
        for c in sorted(
            record.closures.values(), key=lambda c: (c.key.entry, c.key.version, c.key.env)
        )
    ]
    doc = {
        "format": FORMAT,
        "key": record.key,
        "serials": dict(sorted(record.serials.items())),
        "kept": {k: list(v) for k, v in sorted(record.kept.items())},
        "closures": closures,
    }
    data = json.dumps(doc, indent=1).encode() + b"\n"
    atomic_write_bytes(slice_path(root), data, durable=True, tmp_dir=scratch_dir(root))


def mark_slice(root: Path) -> None:
    """Before a first run writes anything: a record no run can load (so the next run
    resolves everything) that still says the tree is a slice (tree/kind.py)."""
    if not slice_path(root).exists():
        data = json.dumps({"format": FORMAT, "pending": True}).encode() + b"\n"
        atomic_write_bytes(slice_path(root), data, tmp_dir=scratch_dir(root))
