"""diff-file contents, and that rsync --files-from / tar -T really carry a run's changes."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from morgan_like.tree.diff import diff_paths, write_diff
from morgan_like.tree.layout import package_relpath
from morgan_like.tree.publish import DiffRequest, publish
from morgan_like.tree.state import TreeState
from morgan_like.tree.writer import TreeWriter

from ..distbuilder import make_sdist, make_wheel
from .test_writer import place, tree_files


def _touch(root: Path, *relpaths: str) -> None:
    for rel in relpaths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rel.encode())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    _touch(
        root,
        "simple/index.html",
        "simple/a/index.html",
        "packages/a/a-1.0+x-py3-none-any.whl",
        "packages/a/a b-1.0.tar.gz",
        "manifest.json",
        ".morgan-like/tmp/partial",
    )
    return root


def test_diff_file_contents(tree: Path, tmp_path: Path) -> None:
    changed = [
        "simple/index.html",
        "packages\\a\\a-1.0+x-py3-none-any.whl",
        "./simple/a/index.html",
        "simple/index.html",
        "manifest.json",
        "packages/a/a b-1.0.tar.gz",
        ".morgan-like/tmp/partial",
        "packages/a/gone-1.0.tar.gz",
    ]
    removed = ["packages/old/old-1.0.tar.gz", "simple/a/index.html", "packages/old/old-1.0.tar.gz"]
    diff, gone = write_diff(tree, tmp_path / "out" / "DIFF", changed, removed)
    assert diff == tmp_path / "out" / "DIFF"
    assert gone == tmp_path / "out" / "DIFF.removed"
    assert diff.read_text() == (
        "manifest.json\n"
        "packages/a/a b-1.0.tar.gz\n"
        "packages/a/a-1.0+x-py3-none-any.whl\n"
        "simple/a/index.html\n"
        "simple/index.html\n"
    )
    # a changed path that no longer exists must be deleted on the far side instead;
    # a removed path that exists again is not deleted
    assert gone.read_text() == "packages/a/gone-1.0.tar.gz\npackages/old/old-1.0.tar.gz\n"
    assert sorted(p.name for p in diff.parent.iterdir()) == ["DIFF", "DIFF.removed"]


def test_empty_diff(tree: Path, tmp_path: Path) -> None:
    diff, gone = write_diff(tree, tmp_path / "DIFF", [], [])
    assert diff.read_bytes() == b"" and gone.read_bytes() == b""


def test_append_epoch(tree: Path, tmp_path: Path) -> None:
    diff, gone = write_diff(tree, tmp_path / "DIFF", ["simple/index.html"], [], append_epoch=True)
    name, _, epoch = diff.name.partition("-")
    assert name == "DIFF" and epoch.isdigit()
    assert gone.name == f"DIFF-{epoch}.removed"
    assert diff.read_text() == "simple/index.html\n"


def test_relative_diff_file_is_relative_to_cwd(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    diff, _ = write_diff(tree, "DIFF", ["simple/index.html"], [])
    assert diff == cwd / "DIFF" and diff.is_absolute()
    assert not (tree / "DIFF").exists()


def test_paths_outside_tree_refused(tree: Path) -> None:
    with pytest.raises(ValueError):
        diff_paths(tree, ["../etc/passwd"], [])


def test_tar_files_from(tree: Path, tmp_path: Path) -> None:
    changed = ["packages/a/a b-1.0.tar.gz", "packages/a/a-1.0+x-py3-none-any.whl"]
    diff, _ = write_diff(tree, tmp_path / "DIFF", changed, [])
    archive = tmp_path / "update.tar"
    subprocess.run(["tar", "-C", str(tree), "-cf", str(archive), "-T", str(diff)], check=True)
    with tarfile.open(archive) as tf:
        assert sorted(m.name for m in tf.getmembers() if m.isfile()) == sorted(changed)


def _run(tmp_path: Path, dists: Path) -> tuple[Path, Path, Path]:
    """Two writer runs; returns (tree, copy of the tree after run 1, DIFF of run 2)."""
    tree = tmp_path / "bundle"
    first = [
        place(tree, make_wheel(dists, "alpha", "1.0")),
        place(tree, make_sdist(dists, "alpha", "1.0")),
    ]
    with TreeState(tree) as state:
        writer = TreeWriter(tree, state)
        writer.write_project("alpha", first)
        writer.write_project("beta", [place(tree, make_wheel(dists, "beta", "1.0"))])
        publish(writer, server=b"# v1\n")
    dest = tmp_path / "dest"
    shutil.copytree(tree, dest)

    with TreeState(tree) as state:
        new = place(tree, make_wheel(dists, "alpha", "2.0"))
        state.record_file(package_relpath("alpha", new.filename))  # as the downloader does
        writer = TreeWriter(tree, state)
        writer.write_project("alpha", [*first, new], last_serial=3, replace=True)
        writer.remove_project("beta")
        done = publish(writer, server=b"# v1\n", diff=DiffRequest(tmp_path / "DIFF"))
    assert done.diff_file is not None
    return tree, dest, done.diff_file


def _apply_removed(dest: Path, removed_file: Path) -> None:
    for rel in removed_file.read_text().splitlines():
        (dest / rel).unlink(missing_ok=True)


def test_writer_changes_listed(tmp_path: Path, dists: Path) -> None:
    tree, _dest, diff = _run(tmp_path, dists)
    listed = diff.read_text().splitlines()
    assert listed == sorted(
        [
            "index.html",  # the landing page shows alpha's new version
            "manifest.json",
            "packages/alpha/alpha-2.0-py3-none-any.whl",
            "packages/alpha/alpha-2.0-py3-none-any.whl.metadata",
            "simple/alpha/index.html",
            "simple/alpha/index.json",
            "simple/index.html",
            "simple/index.json",
        ]
    )
    assert Path(str(diff) + ".removed").read_text().splitlines() == [
        "packages/beta/beta-1.0-py3-none-any.whl",
        "packages/beta/beta-1.0-py3-none-any.whl.metadata",
        "simple/beta/index.html",
        "simple/beta/index.json",
    ]


def _visible(root: Path) -> dict[str, bytes]:
    return {k: v for k, v in tree_files(root).items() if not k.startswith(".")}


@pytest.mark.skipif(shutil.which("rsync") is None, reason="rsync not installed")
def test_rsync_files_from_brings_dest_up_to_date(tmp_path: Path, dists: Path) -> None:
    tree, dest, diff = _run(tmp_path, dists)
    subprocess.run(
        ["rsync", "-a", f"--files-from={diff}", f"{tree}/", f"{dest}/"],
        check=True,
        capture_output=True,
    )
    _apply_removed(dest, Path(str(diff) + ".removed"))
    assert _visible(dest) == _visible(tree)


def test_tar_files_from_brings_dest_up_to_date(tmp_path: Path, dists: Path) -> None:
    tree, dest, diff = _run(tmp_path, dists)
    archive = tmp_path / "update.tar"
    subprocess.run(["tar", "-C", str(tree), "-cf", str(archive), "-T", str(diff)], check=True)
    subprocess.run(["tar", "-C", str(dest), "-xf", str(archive)], check=True)
    _apply_removed(dest, Path(str(diff) + ".removed"))
    assert _visible(dest) == _visible(tree)
