"""Helpers for the sync tests: run a sync, read its diff-file, compare a tree with upstream."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from morgan_like.cli import main
from morgan_like.modes.sync import SyncOptions, run_sync
from morgan_like.output import Reporter

from ..fakeindex import FakeIndex

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    rc: int
    changed: list[str]
    removed: list[str]


def sync(tree: Path, index: FakeIndex | str, *args: str) -> Run:
    """``morgan-like sync`` through the CLI, with a diff-file next to the tree."""
    url = index if isinstance(index, str) else index.url
    diff = tree.parent / f"{tree.name}.diff"
    for stale in (diff, diff.with_name(diff.name + ".removed")):
        stale.unlink(missing_ok=True)
    rc = main(["sync", "-i", str(tree), "-I", url, "--diff-file", str(diff), "-q", *args])
    changed = diff.read_text().split() if diff.exists() else []
    removed_file = diff.with_name(diff.name + ".removed")
    removed = removed_file.read_text().split() if removed_file.exists() else []
    return Run(rc, changed, removed)


def sync_api(tree: Path, index: FakeIndex, **options) -> int:
    """run_sync directly, for options the command line does not expose (stale_delay)."""
    return run_sync(
        SyncOptions(index_path=tree, index_url=index.url, **options), Reporter(verbosity=0)
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def page(tree: Path, name: str) -> dict:
    return json.loads((tree / "simple" / name / "index.json").read_bytes())


def assert_matches_upstream(tree: Path, index: FakeIndex, *, files: bool = True) -> None:
    """Root, pages and files of ``tree`` say what ``index`` says, and verify passes."""
    root = json.loads((tree / "simple" / "index.json").read_bytes())
    assert sorted(p["name"] for p in root["projects"]) == sorted(index.projects)
    for p in root["projects"]:
        assert p["_last-serial"] == index.project_serial(p["name"])
    for name, dists in index.projects.items():
        doc = page(tree, name)
        status = index.statuses.get(name)
        listed = {} if status and status[0] == "quarantined" else dists
        got = {f["filename"]: f for f in doc["files"]}
        assert sorted(got) == sorted(listed), name
        for filename, dist in listed.items():
            entry = got[filename]
            assert entry["hashes"] == {"sha256": dist.sha256}
            assert entry["yanked"] == dist.yanked
            assert entry.get("upload-time") == dist.upload_time
            assert entry.get("requires-python") == dist.requires_python
            if files:
                assert sha256(tree / "packages" / name / filename) == dist.sha256
        if status:
            expected = {"status": status[0], **({"reason": status[1]} if status[1] else {})}
            assert doc["project-status"] == expected
        else:
            assert "project-status" not in doc
        on_disk = (
            sorted(p.name for p in (tree / "packages" / name).iterdir() if p.suffix != ".metadata")
            if (tree / "packages" / name).is_dir()
            else []
        )
        if files:
            assert on_disk == sorted(listed), name
    for leftover in ("simple", "packages"):
        if not (tree / leftover).is_dir():
            continue
        names = {p.name for p in (tree / leftover).iterdir() if p.is_dir()}
        assert names <= set(index.projects), leftover
    verify = subprocess.run(
        [sys.executable, str(tree / "server.py"), "--verify", "-i", str(tree)],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def snapshot(tree: Path) -> dict[str, str]:
    """Every visible file of the tree with its sha256."""
    return {
        str(p.relative_to(tree)): sha256(p)
        for p in sorted(tree.rglob("*"))
        if p.is_file() and ".morgan-like" not in p.parts
    }
