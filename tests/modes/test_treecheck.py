"""``verify --repair`` and ``--remove-unreferenced``: report first, then mend a damaged tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from morgan_like.cli import main

from ..fakeindex import FakeIndex
from ..helpers import sdist, wheel
from .sync_support import assert_matches_upstream, snapshot, sync

WHEEL = "packages/lib/lib-1.0-py3-none-any.whl"


@pytest.fixture
def damaged(fake_index: FakeIndex, dists: Path, tmp_path: Path) -> Path:
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib"])
    sdist(fake_index, dists, "app", "1.0")
    wheel(fake_index, dists, "lib", "1.0")
    tree = tmp_path / "tree"
    assert sync(tree, fake_index).rc == 0
    (tree / "packages/app/app-1.0.tar.gz").unlink()  # missing
    data = bytearray((tree / WHEEL).read_bytes())
    data[-10] ^= 0xFF
    (tree / WHEEL).write_bytes(bytes(data))  # corrupt, same size
    (tree / "packages/app/app-1.0-py3-none-any.whl.metadata").unlink()  # metadata gone
    (tree / "packages/app/stray.bin").write_bytes(b"x")  # unreferenced
    return tree


def test_verify_reports_and_changes_nothing(damaged: Path, capsys) -> None:
    before = snapshot(damaged)
    assert main(["verify", "-i", str(damaged)]) == 1
    assert snapshot(damaged) == before


def test_repair_and_remove_unreferenced(
    damaged: Path, fake_index: FakeIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    # --repair alone: files and metadata mended, the stray blob reported and kept.
    assert main(["verify", "-i", str(damaged), "--repair"]) == 1
    out = capsys.readouterr().out
    for line in (
        "missing          packages/app/app-1.0.tar.gz",
        f"corrupt          {WHEEL}",
        "bad .metadata    packages/app/app-1.0-py3-none-any.whl.metadata",
        "unreferenced     packages/app/stray.bin",
        "repaired packages/app/app-1.0.tar.gz",
    ):
        assert line in out, line
    # The report comes before the first repair.
    assert out.index("unreferenced") < out.index("repaired")
    assert (damaged / "packages/app/stray.bin").exists()
    assert main(["verify", "-i", str(damaged), "--remove-unreferenced"]) == 0
    assert not (damaged / "packages/app/stray.bin").exists()
    assert_matches_upstream(damaged, fake_index)


def test_repair_of_a_file_upstream_dropped_fails_clearly(
    damaged: Path, fake_index: FakeIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_index.remove("app-1.0.tar.gz")
    assert main(["verify", "-i", str(damaged), "--repair", "--remove-unreferenced"]) == 1
    err = capsys.readouterr().err
    assert "packages/app/app-1.0.tar.gz: not repaired: upstream no longer has" in err
