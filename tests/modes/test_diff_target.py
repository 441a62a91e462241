"""--diff-file never overwrites what it should not: not inside the tree, not a non-regular file.

A diff-file path inside the tree emptied ``TREE/morgan.ini`` and blanked a page
with exit 0; ``/dev/full`` became a regular file.  Both are refused before
anything is fetched (mirror and sync), and again when the file is written.
(The mirror tests use a FIFO of their own for "not a regular file": a
regression must not replace a device of the machine running the tests.)
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.errors import MorganLikeError
from morgan_like.tree.diff import check_diff_target, write_diff

from ..fakeindex import FakeIndex
from ..helpers import ini_env_block


def _tree(root: Path, index: FakeIndex) -> Path:
    root.mkdir(parents=True)
    (root / "morgan.ini").write_text(ini_env_block("linux", "3.12.1") + "[requirements]\napp =\n")
    assert main(["mirror", "-i", str(root), "-I", index.url, "-q"]) == 0
    return root


def _digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.relative_to(root).parts[0].startswith(".")
    }


@pytest.mark.parametrize(
    "inside", ["morgan.ini", "simple/app/index.html", "newdir/diff.txt", "diff.txt"]
)
def test_mirror_refuses_a_diff_file_inside_the_tree(
    small: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str], inside: str
) -> None:
    tree = _tree(tmp_path / "bundle", small)
    before = _digest(tree)
    small.reset_log()
    for path in (tree / inside, Path(os.path.relpath(tree / inside))):
        argv = ["mirror", "-i", str(tree), "-I", small.url, "--diff-file", str(path)]
        assert main([*argv, "-q"]) != 0
        err = capsys.readouterr().err
        assert "inside the tree" in err and "unexpected" not in err
    assert _digest(tree) == before
    assert not small.requests  # refused before any request


def test_mirror_refuses_a_link_into_the_tree_and_non_regular_targets(
    small: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = _tree(tmp_path / "bundle", small)
    before = _digest(tree)
    (tmp_path / "into").symlink_to(tree)
    (tmp_path / "link.txt").symlink_to(tree / "morgan.ini")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "out.txt.removed")
    cases = {
        "into/diff.txt": "inside the tree",
        "link.txt": "is a symlink",
        "fifo": "is a FIFO",
        "folder": "is a folder",
        "out.txt": "out.txt.removed is a FIFO",
        "fifo/x": "is not a folder",
    }
    for name, said in cases.items():
        argv = ["mirror", "-i", str(tree), "-I", small.url, "--diff-file", str(tmp_path / name)]
        assert main([*argv, "-q"]) != 0, name
        err = capsys.readouterr().err
        assert said in err and "unexpected" not in err, (name, err)
    assert _digest(tree) == before
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)
    assert (tmp_path / "link.txt").is_symlink()


def test_a_device_is_refused(tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with pytest.raises(MorganLikeError, match="is a character device"):
        check_diff_target(tmp_path, "/dev/full")
    with pytest.raises(MorganLikeError, match="inside the tree"):
        write_diff(tmp_path, tmp_path / "d.txt", [], [])
    assert not (tmp_path / "d.txt").exists()


def test_a_regular_file_outside_is_replaced(small: FakeIndex, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "bundle", small)
    diff = tmp_path / "out" / "diff.txt"
    diff.parent.mkdir()
    diff.write_text("old\n")
    (tree / "morgan.ini").write_text(
        (tree / "morgan.ini").read_text().replace("app =", "app =\nlib =")
    )
    assert main(["mirror", "-i", str(tree), "-I", small.url, "-q", "--diff-file", str(diff)]) == 0
    assert "morgan.ini" in diff.read_text().split()
    assert sorted(p.name for p in diff.parent.iterdir()) == ["diff.txt", "diff.txt.removed"]


def test_sync_refuses_a_diff_file_inside_the_tree(
    small: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "mirror"
    assert main(["sync", "-i", str(tree), "-I", small.url, "-q"]) == 0
    before = _digest(tree)
    small.reset_log()
    argv = ["sync", "-i", str(tree), "-I", small.url, "--diff-file", str(tree / "local.json")]
    assert main([*argv, "-q"]) != 0
    assert "inside the tree" in capsys.readouterr().err
    assert _digest(tree) == before
    assert not small.requests
