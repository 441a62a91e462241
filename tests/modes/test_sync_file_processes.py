"""A sync with files fetches in worker processes from a smaller threshold than an
index-only one, on 2 cores too: its downloads would otherwise hold the interpreter
lock the writer's thread needs (modes/sync_run.fetch_processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from morgan_like.modes import sync_run

from ..fakeindex import FakeIndex
from ..helpers import sdist, wheel
from .sync_support import assert_matches_upstream, sync


def test_with_files_processes_start_below_the_index_only_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sync_run, "PAGE_PROCESSES", 1)  # a 2-core machine's
    monkeypatch.setattr(sync_run, "FILE_PROCESSES", 2)
    at = sync_run.FILES_PROCESS_THRESHOLD
    assert at < sync_run.PROCESS_THRESHOLD
    assert sync_run.fetch_processes(at, files=True) == 2
    assert sync_run.fetch_processes(at - 1, files=True) == 1
    assert sync_run.fetch_processes(sync_run.PROCESS_THRESHOLD, files=False) == 1


def test_files_fetched_in_worker_processes(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the threshold, pages and files come from worker processes: the same tree,
    and a failed download fails its project until a later run fetches it."""
    used: list[int] = []
    real = sync_run.fetch_in_processes

    def spy(job, items, processes, deliver):  # type: ignore[no-untyped-def]
        used.append(processes)
        real(job, items, processes, deliver)

    monkeypatch.setattr(sync_run, "fetch_in_processes", spy)
    monkeypatch.setattr(sync_run, "FILES_PROCESS_THRESHOLD", 1)
    monkeypatch.setattr(sync_run, "FILE_PROCESSES", 2)
    for n in range(4):
        wheel(fake_index, dists, f"proj{n}", "1.0")
        sdist(fake_index, dists, f"proj{n}", "1.0")
    fake_index.dists = dists  # type: ignore[attr-defined]
    fake_index.fail("proj2-1.0.tar.gz", times=100)
    tree = tmp_path / "tree"
    assert sync(tree, fake_index).rc == 1
    assert used == [2]
    assert (tree / "packages/proj1/proj1-1.0.tar.gz").is_file()
    assert not (tree / "packages/proj2/proj2-1.0.tar.gz").exists()
    fake_index.clear_faults()
    assert sync(tree, fake_index).rc == 0
    assert used == [2, 2]
    assert_matches_upstream(tree, fake_index)
