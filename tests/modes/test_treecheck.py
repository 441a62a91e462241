"""``verify --repair`` and ``--remove-unreferenced``: report first, then mend a damaged tree."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.tree.state import TreeState

from ..fakeindex import FakeIndex
from ..helpers import sdist, wheel
from .sync_support import assert_matches_upstream, sha256, snapshot, sync

SDIST = "packages/app/app-1.0.tar.gz"
WHEEL = "packages/lib/lib-1.0-py3-none-any.whl"
METADATA = "packages/app/app-1.0-py3-none-any.whl.metadata"
STRAY = "packages/app/stray.bin"


@pytest.fixture
def tree(fake_index: FakeIndex, dists: Path, tmp_path: Path) -> Path:
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib"])
    sdist(fake_index, dists, "app", "1.0")
    wheel(fake_index, dists, "lib", "1.0")
    tree = tmp_path / "tree"
    assert sync(tree, fake_index).rc == 0
    return tree


def damage(tree: Path) -> None:
    """A missing file, a corrupt one (same size, other bytes), a missing .metadata."""
    (tree / SDIST).unlink()
    data = bytearray((tree / WHEEL).read_bytes())
    data[-10] ^= 0xFF
    (tree / WHEEL).write_bytes(bytes(data))
    (tree / METADATA).unlink()


def server_verify(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(tree / "server.py"), "--verify", "-i", str(tree)],
        capture_output=True,
        text=True,
    )


def test_plain_verify_reports_every_problem_and_changes_nothing(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damage(tree)
    (tree / STRAY).write_bytes(b"x")
    before = snapshot(tree)
    assert main(["verify", "-i", str(tree)]) == 1
    out = capsys.readouterr().out
    for kind, relpath in (
        ("MISSING", SDIST),
        ("CORRUPT", WHEEL),
        ("MISSING", METADATA),
        ("UNEXPECTED", STRAY),
    ):
        assert any(kind in line and relpath in line for line in out.splitlines()), (kind, out)
    assert snapshot(tree) == before


def test_repair_restores_every_file_from_the_upstream(
    tree: Path, fake_index: FakeIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    metadata_before = (tree / METADATA).read_bytes()
    damage(tree)
    fake_index.reset_log()
    # No -I: the upstream the last sync used, from the tree state.
    assert main(["verify", "-i", str(tree), "--repair"]) == 0
    out = capsys.readouterr().out
    report = [
        f"missing            {SDIST}",
        f"corrupt            {WHEEL}: sha256 differs from the page",
        f"bad .metadata      {METADATA}: missing",
    ]
    for line in report:
        assert line in out, out
    # Every problem is reported before the first download.
    assert max(out.index(line) for line in report) < out.index("fetching 2 files again from")
    assert f"repaired {SDIST}" in out and f"repaired {WHEEL}" in out
    assert f"rewrote {METADATA}" in out
    assert sha256(tree / SDIST) == fake_index.files["app-1.0.tar.gz"].sha256
    assert sha256(tree / WHEEL) == fake_index.files["lib-1.0-py3-none-any.whl"].sha256
    assert (tree / METADATA).read_bytes() == metadata_before
    fetched = sorted(r.path for r in fake_index.requests if r.path.startswith("/files/"))
    assert fetched == ["/files/app-1.0.tar.gz", "/files/lib-1.0-py3-none-any.whl"]
    verify = server_verify(tree)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert_matches_upstream(tree, fake_index)
    # The state trusts the repaired files again: a re-sync fetches nothing.
    fake_index.reset_log()
    assert sync(tree, fake_index).rc == 0
    assert [r.path for r in fake_index.requests] == ["/simple/"]


def test_remove_unreferenced_removes_only_the_blobs(
    tree: Path, fake_index: FakeIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(tree)
    (tree / STRAY).write_bytes(b"x")
    (tree / "packages/gone/old-1.0.tar.gz").parent.mkdir()
    (tree / "packages/gone/old-1.0.tar.gz").write_bytes(b"old")
    (tree / "packages/app/.hidden").write_bytes(b"ignored")
    fake_index.reset_log()
    assert main(["verify", "-i", str(tree), "--remove-unreferenced"]) == 0
    out = capsys.readouterr().out
    assert f"unreferenced       {STRAY}" in out
    assert out.index("unreferenced") < out.index("removed")
    assert f"removed {STRAY}" in out and "removed packages/gone/old-1.0.tar.gz" in out
    assert {k: v for k, v in snapshot(tree).items() if "/." not in k} == before
    assert not (tree / "packages/gone").exists()
    assert (tree / "packages/app/.hidden").exists()
    assert fake_index.requests == []


def test_remove_unreferenced_alone_leaves_damage_reported(
    tree: Path, fake_index: FakeIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    damage(tree)
    (tree / STRAY).write_bytes(b"x")
    fake_index.reset_log()
    assert main(["verify", "-i", str(tree), "--remove-unreferenced"]) == 1
    assert not (tree / STRAY).exists()
    assert not (tree / SDIST).exists()
    assert fake_index.requests == []


def test_nothing_a_page_links_is_ever_removed(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A wheel gone, its .metadata still linked; a project whose pages cannot be read.
    (tree / "packages/app/app-1.0-py3-none-any.whl").unlink()
    for page in ("index.json", "index.html"):
        (tree / "simple/lib" / page).write_bytes(b"\xff not a page")
    assert main(["verify", "-i", str(tree), "--remove-unreferenced"]) == 1
    out = capsys.readouterr().out
    assert "unreadable page    simple/lib/index.json" in out
    assert (tree / METADATA).exists()
    assert (tree / WHEEL).exists() and (tree / f"{WHEEL}.metadata").exists()
    assert "removed" not in out


def test_repair_of_a_file_upstream_dropped_fails_clearly(
    tree: Path, fake_index: FakeIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    damage(tree)
    fake_index.remove("app-1.0.tar.gz")
    assert main(["verify", "-i", str(tree), "--repair", "-I", fake_index.url]) == 1
    captured = capsys.readouterr()
    assert f"{SDIST}: not repaired: upstream no longer has app-1.0.tar.gz" in captured.err
    assert f"repaired {WHEEL}" in captured.out  # the rest is still mended
    assert not (tree / SDIST).exists()


def test_stale_and_outdated_state_rows_are_corrected(tree: Path, fake_index: FakeIndex) -> None:
    with TreeState(tree) as state:
        (tree / "packages/app/ghost-1.0.tar.gz").write_bytes(b"ghost")
        state.record("packages/app/ghost-1.0.tar.gz", 5, "0" * 64)
        (tree / "packages/app/ghost-1.0.tar.gz").unlink()
        state.record(WHEEL, 1, "1" * 64)  # a row that no longer says what is on disk
        state.commit()
    assert main(["verify", "-i", str(tree), "--repair", "-q"]) == 0
    with TreeState(tree) as state:
        assert state.get("packages/app/ghost-1.0.tar.gz") is None
        row = state.get(WHEEL)
        assert row is not None and row.sha256 == sha256(tree / WHEEL)
        assert state.is_verified(WHEEL)


def test_repair_finds_the_upstream_in_morgan_ini(
    tree: Path, fake_index: FakeIndex, capsys: pytest.CaptureFixture[str]
) -> None:
    # A tree synced with a config, whose state was then lost: the upstream comes from
    # morgan.ini's [mirror].
    (tree / "morgan.ini").write_text(f"[mirror]\nindex-url = {fake_index.url}\n")
    assert sync(tree, fake_index).rc == 0
    shutil.rmtree(tree / ".morgan-like")
    damage(tree)
    assert main(["verify", "-i", str(tree), "--repair"]) == 0
    out = capsys.readouterr().out
    assert f"fetching 2 files again from {fake_index.url}" in out
    assert sha256(tree / SDIST) == fake_index.files["app-1.0.tar.gz"].sha256


def test_an_index_only_tree_has_no_local_files_to_check(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    wheel(fake_index, dists, "lib", "1.0")
    tree = tmp_path / "tree"
    assert sync(tree, fake_index, "--index-only").rc == 0
    before = snapshot(tree)
    (tree / "packages/lib").mkdir(parents=True)
    (tree / "packages/lib/lib-1.0-py3-none-any.whl").write_bytes(b"not linked")
    fake_index.reset_log()
    assert main(["verify", "-i", str(tree), "--repair", "--remove-unreferenced", "-q"]) == 0
    assert snapshot(tree) == before
    assert fake_index.requests == []
