"""A sync killed (-9) anywhere resumes where it stopped; a synced tree is an upstream.

The kill sweep stops a real ``sync`` (a subprocess against the fake upstream)
at steps spread over its write sequence with ``MORGAN_LIKE_CRASH_AFTER``; what a
client sees must be whole after each kill, and the next sync must finish the job
with the tree identical to upstream.  Chaining: a second tree synced from the
first one's ``server.py`` (serial list from its root index, or its local.json)
ends identical to the first.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from morgan_like.tree import crashpoints

from ..fakeindex import FakeIndex
from ..helpers import manifest_entries, sdist, unstamped, wheel
from ..server_support import SubprocessServer
from .sync_support import assert_matches_upstream, snapshot, sync
from .test_crash import _env, assert_whole

KILL_POINTS = 12


@pytest.fixture
def upstream(fake_index: FakeIndex, dists: Path) -> FakeIndex:
    for name in ("alpha", "beta", "gamma", "delta"):
        wheel(fake_index, dists, name, "1.0")
        sdist(fake_index, dists, name, "1.0")
    fake_index.dists = dists  # type: ignore[attr-defined]
    return fake_index


def _change(upstream: FakeIndex) -> None:
    """A night's worth of changes: a release, a deleted project, a deleted file, a new one."""
    dists = upstream.dists  # type: ignore[attr-defined]
    wheel(upstream, dists, "alpha", "2.0")
    upstream.remove_project("beta")
    upstream.remove("gamma-1.0.tar.gz")
    wheel(upstream, dists, "epsilon", "1.0")


def _count_steps(base: Path, tmp_path: Path, upstream: FakeIndex) -> int:
    steps = 0
    real_step = crashpoints.step

    def counting() -> None:
        nonlocal steps
        steps += 1
        real_step()

    probe = tmp_path / "probe"
    shutil.copytree(base, probe)
    crashpoints.step = counting  # type: ignore[assignment]
    try:
        assert sync(probe, upstream).rc == 0
    finally:
        crashpoints.step = real_step  # type: ignore[assignment]
    shutil.rmtree(probe)
    return steps


def test_kill_minus_9_anywhere_then_resume(upstream: FakeIndex, tmp_path: Path) -> None:
    base = tmp_path / "base"
    assert sync(base, upstream).rc == 0
    _change(upstream)
    total = _count_steps(base, tmp_path, upstream)
    assert total >= 15
    points = sorted({1 + round(i * (total - 1) / (KILL_POINTS - 1)) for i in range(KILL_POINTS)})
    for point in points:
        work = tmp_path / f"kill{point}"
        shutil.copytree(base, work)
        killed_diff = tmp_path / "kill.diff"
        for old in (killed_diff, tmp_path / "kill.diff.removed"):
            old.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "morgan_like", "sync", "-i", str(work), "-I", upstream.url]
        run = subprocess.run(
            [*cmd, "-q", "--diff-file", str(killed_diff)],
            env=_env(MORGAN_LIKE_CRASH_AFTER=str(point)),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == -signal.SIGKILL, (point, run.returncode, run.stderr)
        try:
            assert_whole(work)
        except AssertionError as exc:
            raise AssertionError(f"killed at step {point}: {exc}") from exc
        resumed = sync(work, upstream)
        assert resumed.rc == 0, f"re-run after a kill at step {point}"
        assert_matches_upstream(work, upstream)
        # The far side had the tree as it was before the killed run; the diff-files (the
        # resumed run's, and the killed run's if it got that far) must bring it level.
        far = tmp_path / "far"
        shutil.copytree(base, far, ignore=shutil.ignore_patterns(".morgan-like"))
        diffs = [(resumed.changed, resumed.removed)]
        if killed_diff.exists():
            removed_file = tmp_path / "kill.diff.removed"
            diffs.insert(0, (killed_diff.read_text().split(), removed_file.read_text().split()))
        for changed, removed in diffs:
            for relpath in changed:
                (far / relpath).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(work / relpath, far / relpath)
            for relpath in removed:
                (far / relpath).unlink(missing_ok=True)
        assert snapshot(far) == snapshot(work), f"killed at step {point}: diff-file incomplete"
        shutil.rmtree(far)
        assert (work / "local.db.serial").read_text() == f"{upstream.serial}\n"
        assert not (work / ".morgan-like/tmp").exists() or not any(
            (work / ".morgan-like/tmp").iterdir()
        )
        shutil.rmtree(work)


@pytest.mark.parametrize("source", ["simple", "local-json"])
def test_chained_tree_ends_identical(upstream: FakeIndex, tmp_path: Path, source: str) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    upstream.set_status("delta", "deprecated", "use alpha")
    assert sync(first, upstream).rc == 0
    with SubprocessServer(first) as server:
        url = f"{server.base}/simple/"
        assert sync(second, url, "--serial-source", source).rc == 0
        assert unstamped(snapshot(second)) == unstamped(snapshot(first))
        assert manifest_entries(second) == manifest_entries(first)
        # The next night: changes flow through both.
        _change(upstream)
        assert sync(first, upstream).rc == 0
        run = sync(second, url, "--serial-source", source)
        assert run.rc == 0
        assert unstamped(snapshot(second)) == unstamped(snapshot(first))
        assert manifest_entries(second) == manifest_entries(first)
        assert "packages/beta/beta-1.0.tar.gz" in run.removed
        assert_matches_upstream(second, upstream)
        local = json.loads((second / "local.json").read_bytes())
        assert local == json.loads((first / "local.json").read_bytes())
