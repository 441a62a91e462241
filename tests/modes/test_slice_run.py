"""modes.slice: a dry run is its own kind (DrySliceRun: no tree state, no page cache,
nothing written); each run closes what it opened, in reverse, however it ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.errors import ResolutionError
from morgan_like.modes import slice as slice_mode

from ..fakeindex import FakeIndex
from ..helpers import ini_env_block, record_closes, wheel


def _config(path: Path) -> Path:
    path.write_text("[sync]\nprojects =\n    app\n\n" + ini_env_block("py312", "3.12.1"))
    return path


def _sync(tree: Path, index: FakeIndex, config: Path, *args: str) -> int:
    return main(["sync", "-i", str(tree), "-I", index.url, "-c", str(config), "-q", *args])


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_slice_run_closes_what_it_opened_in_reverse(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dry_run
) -> None:
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib"])
    wheel(fake_index, dists, "lib", "1.0")
    tree, config = tmp_path / "tree", _config(tmp_path / "slice.ini")
    closed = record_closes(monkeypatch)
    assert _sync(tree, fake_index, config, *(["--dry-run"] if dry_run else [])) == 0
    # A dry run opens no tree state and no page cache: it writes nothing.
    expected = ["session", "upstream"] if dry_run else ["session", "upstream", "pages", "state"]
    assert closed == expected
    if dry_run:
        assert not (tree / "simple").exists() and not (tree / "packages").exists()
    else:
        assert (tree / "packages").is_dir()


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_failing_slice_run_closes_what_it_opened(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dry_run
) -> None:
    wheel(fake_index, dists, "app", "1.0")
    tree, config = tmp_path / "tree", _config(tmp_path / "slice.ini")
    closed = record_closes(monkeypatch)

    def broken(*args: object, **kwargs: object) -> None:
        raise ResolutionError("cannot resolve")

    monkeypatch.setattr(slice_mode.SliceRun, "resolve", broken)
    assert _sync(tree, fake_index, config, *(["--dry-run"] if dry_run else [])) != 0
    expected = ["session", "upstream"] if dry_run else ["session", "upstream", "pages", "state"]
    assert closed == expected


def test_a_dry_run_is_its_own_kind_and_has_no_tree_state() -> None:
    assert slice_mode.DrySliceRun.dry_run and not slice_mode.TreeSliceRun.dry_run
    assert slice_mode.DrySliceRun.state is None
