"""tree.publish: the end of every run, and what it costs on a tree that did not change."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from morgan_like.dists.links import RemoteFile
from morgan_like.tree.layout import package_relpath
from morgan_like.tree.publish import DiffRequest, publish
from morgan_like.tree.state import TreeState
from morgan_like.tree.writer import TreeWriter

PROJECTS = 120


def _file(root: Path, project: str, filename: str, data: bytes) -> RemoteFile:
    path = root / package_relpath(project, filename)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return RemoteFile(filename, f"https://upstream.invalid/{filename}")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A tree of PROJECTS projects with a sdist each, published once."""
    root = tmp_path / "tree"
    with TreeState(root) as state:
        writer = TreeWriter(root, state)
        for i in range(PROJECTS):
            name = f"p{i:04d}"
            writer.write_project(name, [_file(root, name, f"{name}-1.0.tar.gz", name.encode())])
        publish(writer, server=b"# server\n", config=b"[requirements]\n")
    return root


def _mtimes(root: Path, *rels: str) -> list[int]:
    return [(root / rel).stat().st_mtime_ns for rel in rels]


def test_noop_publish_reads_and_writes_no_whole_tree_state(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing changed: no directory is listed, no page is read, no root page or manifest
    is rewritten, and the diff-file is empty."""
    top = ("simple/index.html", "simple/index.json", "manifest.json", "server.py")
    before = _mtimes(tree, *top)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a no-op publish walked the tree")

    with TreeState(tree) as state:
        monkeypatch.setattr(os, "scandir", forbidden)
        monkeypatch.setattr(os, "walk", forbidden)
        monkeypatch.setattr(Path, "iterdir", forbidden)
        monkeypatch.setattr(state, "projects", forbidden)
        done = publish(
            TreeWriter(tree, state),
            server=b"# server\n",
            config=b"[requirements]\n",
            diff=DiffRequest(tmp_path / "DIFF"),
        )
        monkeypatch.undo()
    assert done.changed == () and done.removed == ()
    assert (tmp_path / "DIFF").read_text() == "" and (tmp_path / "DIFF.removed").read_text() == ""
    assert _mtimes(tree, *top) == before


def test_one_project_change_keeps_the_delta_small(tree: Path, tmp_path: Path) -> None:
    """The diff-file names the project's new file and pages, and at most the root pages, the
    landing page and the manifest; no state file in it grows with the tree."""
    with TreeState(tree) as state:
        writer = TreeWriter(tree, state)
        name = "p0042"
        files = writer.existing_files(name)
        files.append(_file(tree, name, f"{name}-2.0.tar.gz", b"new"))
        writer.write_project(name, files)
        publish(writer, server=b"# server\n", diff=DiffRequest(tmp_path / "DIFF"))
    diff = (tmp_path / "DIFF").read_text().split()
    # same projects, no serial moved: the root pages stay as they were; the landing page
    # (p0042's newest version and size) and so the manifest change
    assert diff == [
        "index.html",
        "manifest.json",
        "packages/p0042/p0042-2.0.tar.gz",
        "simple/p0042/index.html",
        "simple/p0042/index.json",
    ]
    # a new project changes the root pages, and so the manifest: still a few hundred bytes
    with TreeState(tree) as state:
        writer = TreeWriter(tree, state)
        writer.write_project("zzz", [_file(tree, "zzz", "zzz-1.0.tar.gz", b"z")], last_serial=9)
        publish(writer, diff=DiffRequest(tmp_path / "DIFF2"))
    diff = (tmp_path / "DIFF2").read_text().split()
    shared = {"index.html", "manifest.json", "simple/index.html", "simple/index.json"}
    assert set(diff) == shared | {
        "packages/zzz/zzz-1.0.tar.gz",
        "simple/zzz/index.html",
        "simple/zzz/index.json",
    }
    manifest = (tree / "manifest.json").read_bytes()
    assert len(manifest) < 1024 and b"p0042" not in manifest
    root = json.loads((tree / "simple/index.json").read_text())
    assert len(root["projects"]) == PROJECTS + 1
    assert root["projects"][-1] == {"name": "zzz", "_last-serial": 9}


def test_lost_state_is_rebuilt_from_the_tree(tree: Path) -> None:
    """state.db never travels: a copy of the tree, or a deleted state, is rebuilt from the
    pages, and the next publish changes nothing in the tree but the root pages' layout."""
    shutil.rmtree(tree / ".morgan-like")
    before = (tree / "simple/index.json").read_bytes()
    with TreeState(tree) as state:
        assert len(state.projects()) == PROJECTS
        done = publish(TreeWriter(tree, state), server=b"# server\n", config=b"[requirements]\n")
    assert (tree / "simple/index.json").read_bytes() == before
    assert done.changed == ()
