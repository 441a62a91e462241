"""``verify --repair`` never claims what the check after it denies: a page linking outside
the tree is a problem no repair mends, reported as ``server.py --verify`` reports it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from morgan_like.cli import main

from ..fakeindex import FakeIndex
from ..helpers import sdist, wheel
from .sync_support import sync

WHEEL = "lib-1.0-py3-none-any.whl"


@pytest.fixture
def tree(fake_index: FakeIndex, dists: Path, tmp_path: Path) -> Path:
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib"])
    sdist(fake_index, dists, "app", "1.0")
    wheel(fake_index, dists, "lib", "1.0")
    tree = tmp_path / "tree"
    assert sync(tree, fake_index).rc == 0
    return tree


def _relink(tree: Path, old: str, new: str) -> None:
    """Point lib's link (both of its pages) somewhere else."""
    for page in ("index.json", "index.html"):
        path = tree / "simple/lib" / page
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    "link, said",
    [
        (f"../../../{WHEEL}", "leaves the tree"),
        (f"../../../../elsewhere/{WHEEL}", "leaves the tree"),
        (f"../../simple/{WHEEL}", "is not a file under packages/"),
    ],
)
def test_repair_with_a_link_out_of_the_tree_is_not_sound(
    tree: Path, capsys: pytest.CaptureFixture[str], link: str, said: str
) -> None:
    (tree / "packages/app/app-1.0.tar.gz").unlink()  # mendable, so a repair runs
    (tree.parent / WHEEL).write_bytes((tree / "packages/lib" / WHEEL).read_bytes())
    _relink(tree, f"../../packages/lib/{WHEEL}", link)
    assert main(["verify", "-i", str(tree), "--repair"]) == 1
    out = capsys.readouterr().out
    assert "repaired packages/app/app-1.0.tar.gz" in out
    assert "bad link" in out and said in out
    assert "sound again" not in out and "mended all" not in out
    assert "3 of 4 problems found are not mended" in out  # and lib's now unreferenced files
    assert "BAD-LINK" in out  # the check that follows says the same


def test_a_link_to_another_project_folder_is_followed(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A link into packages/, even another project's folder, is sound for verify: the
    check follows it too (and repairs the file where the link points)."""
    os.makedirs(tree / "packages/other")
    (tree / "packages/lib" / WHEEL).rename(tree / "packages/other" / WHEEL)
    (tree / "packages/lib" / (WHEEL + ".metadata")).rename(
        tree / "packages/other" / (WHEEL + ".metadata")
    )
    _relink(tree, f"../../packages/lib/{WHEEL}", f"../../packages/other/{WHEEL}")
    (tree / "packages/other" / WHEEL).unlink()
    assert main(["verify", "-i", str(tree), "--repair"]) == 0
    out = capsys.readouterr().out
    assert f"repaired packages/other/{WHEEL}" in out and "mended all 1 problems found" in out
