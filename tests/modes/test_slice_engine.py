"""The curated slice's engine rules (modes/slice.py): what a re-sync reads and redoes,
failed closures, bad allowlist names, the deletion guard, the tree's kind.

The guarantee itself (every kept release installs offline in each env) is
tests/modes/test_slice.py's; these tests pin the bookkeeping that keeps it cheap.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.tree.kind import tree_kind

from ..fakeindex import FakeIndex
from ..helpers import ini_env_block, wheel
from .sync_support import sync


def _config(tmp_path: Path, projects: str, extra: str = "") -> Path:
    path = tmp_path / "slice.ini"
    path.write_text(
        "[sync]\nprojects =\n"
        + "".join(f"    {line}\n" for line in projects.splitlines())
        + extra
        + "\n"
        + ini_env_block("old", "3.11.7")
        + ini_env_block("new", "3.12.1")
    )
    return path


def _files(tree: Path) -> set[str]:
    return {
        p.name for p in (tree / "packages").rglob("*") if p.is_file() and p.suffix != ".metadata"
    }


def _view(tree: Path, env: str, project: str) -> set[str]:
    doc = json.loads((tree / "envs" / env / "simple" / project / "index.json").read_text())
    return {f["filename"] for f in doc["files"]}


@pytest.fixture
def upstream(fake_index: FakeIndex, dists: Path) -> FakeIndex:
    wheel(fake_index, dists, "dep", "1.0")
    wheel(fake_index, dists, "dep", "2.0")
    wheel(fake_index, dists, "other", "1.0")
    wheel(fake_index, dists, "app", "1.0", requires_dist=["dep<2"])
    wheel(fake_index, dists, "app", "2.0", requires_dist=["dep"])
    wheel(fake_index, dists, "app", "3.0", requires_dist=["dep", 'other; python_version < "3.12"'])
    return fake_index


def test_closures_per_env_and_keep_latest(upstream: FakeIndex, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    config = _config(tmp_path, "app", "keep-latest = 2\n")
    assert sync(tree, upstream, "-c", str(config)).rc == 0
    assert _files(tree) == {
        "app-2.0-py3-none-any.whl",
        "app-3.0-py3-none-any.whl",
        "dep-2.0-py3-none-any.whl",
        "other-1.0-py3-none-any.whl",
    }
    # other is pulled in only where its marker holds.
    assert _view(tree, "old", "other") == {"other-1.0-py3-none-any.whl"}
    assert not (tree / "envs" / "new" / "simple" / "other").exists()
    assert tree_kind(tree) == "sync"


def test_a_no_op_resync_reads_the_serial_list_only(upstream: FakeIndex, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    config = _config(tmp_path, "app")
    assert sync(tree, upstream, "-c", str(config)).rc == 0
    before = len(upstream.requests)
    run = sync(tree, upstream, "-c", str(config))
    assert run.rc == 0 and run.changed == [] and run.removed == []
    assert [r.path for r in upstream.requests[before:]] == ["/simple/"]


def test_only_closures_reaching_a_moved_page_are_resolved_again(
    upstream: FakeIndex, dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree"
    config = _config(tmp_path, "app ==1.0\nother")
    assert sync(tree, upstream, "-c", str(config)).rc == 0
    wheel(upstream, dists, "other", "1.1")  # other's closures read other only
    before = len(upstream.requests)
    capsys.readouterr()
    assert main(["sync", "-i", str(tree), "-I", upstream.url, "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "4 closures resolved, 2 unchanged" in out  # other 1.0 and 1.1; app 1.0 kept
    read = {r.path for r in upstream.requests[before:]}
    assert "/simple/app/" not in read and "/simple/dep/" not in read
    assert "other-1.1-py3-none-any.whl" in _files(tree)


def test_a_new_dependency_release_moves_the_closures_that_read_it(
    upstream: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    config = _config(tmp_path, "app ==2.0")
    assert sync(tree, upstream, "-c", str(config)).rc == 0
    wheel(upstream, dists, "dep", "3.0")
    run = sync(tree, upstream, "-c", str(config))
    assert run.rc == 0
    assert "packages/dep/dep-3.0-py3-none-any.whl" in run.changed
    assert "packages/dep/dep-2.0-py3-none-any.whl" in run.removed  # no kept release needs it
    assert _view(tree, "new", "dep") == {"dep-3.0-py3-none-any.whl"}


def test_a_failed_closure_keeps_its_last_good_files(
    upstream: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree"
    config = _config(tmp_path, "app ==1.0")
    assert sync(tree, upstream, "-c", str(config)).rc == 0
    upstream.remove("dep-1.0-py3-none-any.whl")  # app 1.0 needs dep<2: nothing left
    capsys.readouterr()
    assert main(["sync", "-i", str(tree), "-I", upstream.url, "-c", str(config), "-q"]) == 1
    err = capsys.readouterr().err
    assert "cannot keep app==1.0 for env old; its files from the last good sync stay" in err
    assert "dep" in err  # the conflict is named
    assert err.count("cannot keep") == 2  # once per env, not once per retry
    assert "dep-1.0-py3-none-any.whl" in _view(tree, "old", "dep")
    assert "dep-1.0-py3-none-any.whl" in _files(tree)


def test_an_unknown_allowlisted_name_stops_before_any_change(
    upstream: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree"
    config = _config(tmp_path, "ap")
    capsys.readouterr()
    assert main(["sync", "-i", str(tree), "-I", upstream.url, "-c", str(config)]) != 0
    err = capsys.readouterr().err
    assert "ap is not on the upstream" in err and "did you mean app" in err
    assert not (tree / "simple").exists() and not (tree / "packages").exists()


def test_the_deletion_guard_holds_for_a_slice(
    upstream: FakeIndex, dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(12):
        wheel(upstream, dists, f"p{n}", "1.0")
    tree = tmp_path / "tree"
    config = _config(tmp_path, "\n".join(f"p{n}" for n in range(12)))
    assert sync(tree, upstream, "-c", str(config)).rc == 0
    narrowed = _config(tmp_path, "p0")
    before = _files(tree)
    assert sync(tree, upstream, "-c", str(narrowed)).rc == 3
    assert _files(tree) == before
    assert sync(tree, upstream, "-c", str(narrowed), "--max-deletions", "11").rc == 0
    assert _files(tree) == {"p0-1.0-py3-none-any.whl"}


def test_dry_run_prints_the_slice_and_writes_nothing(
    upstream: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = tmp_path / "tree"
    config = _config(tmp_path, "app", "keep-latest = 1\n")
    capsys.readouterr()
    assert main(["sync", "-i", str(tree), "-I", upstream.url, "-c", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3.0" in out and "would fetch" in out and "other" in out
    assert not tree.exists() or not any(tree.iterdir())


def test_max_file_size_leaves_out_and_reports(
    upstream: FakeIndex, dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In a slice and in a full mirror alike: the big file is left out, with one line."""
    wheel(upstream, dists, "big", "1.0", pad_bytes=200_000)
    wheel(upstream, dists, "big", "1.0", tag="py3-none-manylinux_2_17_x86_64")
    tree = tmp_path / "tree"
    config = _config(tmp_path, "big", "max-file-size = 100K\n")
    capsys.readouterr()
    assert main(["sync", "-i", str(tree), "-I", upstream.url, "-c", str(config)]) == 0
    err = capsys.readouterr().err
    assert "big: big-1.0-py3-none-any.whl left out: larger than max-file-size" in err
    assert _files(tree) == {"big-1.0-py3-none-manylinux_2_17_x86_64.whl"}
    full = tmp_path / "full.ini"
    full.write_text("[sync]\nmax-file-size = 100K\n")
    mirror = tmp_path / "mirror"
    assert main(["sync", "-i", str(mirror), "-I", upstream.url, "-c", str(full)]) == 0
    err = capsys.readouterr().err
    assert "big: big-1.0-py3-none-any.whl left out: larger than max-file-size" in err
    assert not (mirror / "packages" / "big" / "big-1.0-py3-none-any.whl").exists()


def test_a_slice_verifies_and_travels_by_export(
    upstream: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    """server.py --verify is clean on a slice; a full export and then a delta (a new
    dependency release, an old one leaving) imported offline leave an identical copy."""
    import subprocess
    import sys

    from ..transfer_support import tree_files

    tree, copy = tmp_path / "tree", tmp_path / "copy"
    config = _config(tmp_path, "app ==2.0")

    def carry(out: Path, *args: str) -> None:
        assert main(["export", "-i", str(tree), "-o", str(out), "--site", "s", "-q", *args]) == 0
        run = subprocess.run(
            [sys.executable, str(tree / "server.py"), "--import", str(out), "-i", str(copy)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        verify = subprocess.run(
            [sys.executable, str(copy / "server.py"), "--verify", "-i", str(copy)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert tree_files(copy) == tree_files(tree)

    assert sync(tree, upstream, "-c", str(config)).rc == 0
    copy.mkdir()
    carry(tmp_path / "e1", "--full")
    wheel(upstream, dists, "dep", "3.0")
    assert sync(tree, upstream, "-c", str(config)).rc == 0
    carry(tmp_path / "e2")
    assert _view(copy, "old", "dep") == {"dep-3.0-py3-none-any.whl"}


def test_kill_minus_9_during_a_slice_resync(
    upstream: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    """A re-sync that adds and removes files, killed at points spread over its writes:
    what a client sees stays whole, and the next sync ends as an uninterrupted one."""
    import os
    import shutil
    import signal
    import subprocess
    import sys

    from morgan_like.tree import crashpoints

    from .test_crash import REPO, assert_whole, verify

    base = tmp_path / "base"
    config = _config(tmp_path, "app ==2.0\nother")
    assert sync(base, upstream, "-c", str(config)).rc == 0
    wheel(upstream, dists, "dep", "3.0")
    upstream.remove("other-1.0-py3-none-any.whl")
    wheel(upstream, dists, "other", "2.0")
    trace: list[str] = []
    real_step = crashpoints.step

    def tracing() -> None:
        trace.append(sys._getframe(1).f_code.co_name)
        real_step()

    clean = tmp_path / "clean"
    shutil.copytree(base, clean)
    crashpoints.step = tracing  # type: ignore[assignment]
    try:
        assert main(["sync", "-i", str(clean), "-I", upstream.url, "-c", str(config), "-q"]) == 0
    finally:
        crashpoints.step = real_step  # type: ignore[assignment]
    assert len(trace) >= 8
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "MORGAN_LIKE_"))}
    env.update(PYTHONPATH=str(REPO), PIP_CONFIG_FILE=os.devnull)
    points = sorted({1 + round(i * (len(trace) - 1) / 7) for i in range(8)})
    for point in points:
        work = tmp_path / f"kill{point}"
        shutil.copytree(base, work)
        cli = [sys.executable, "-m", "morgan_like", "sync", "-i", str(work), "-I", upstream.url]
        run = subprocess.run(
            [*cli, "-c", str(config), "-q"],
            env=dict(env, MORGAN_LIKE_CRASH_AFTER=str(point)),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == -signal.SIGKILL, (point, run.returncode, run.stderr)
        assert_whole(work)
        assert sync(work, upstream, "-c", str(config)).rc == 0, point
        code, report = verify(work)
        assert code == 0, f"killed at step {point}, then re-run:\n{report}"
        assert _files(work) == _files(clean), point
        for env_name in ("old", "new"):
            for project in ("app", "dep", "other"):
                assert _view(work, env_name, project) == _view(clean, env_name, project)
        shutil.rmtree(work)


def test_the_sbom_takes_sdist_licences_from_what_the_slice_read(
    fake_index: FakeIndex, dists: Path, tiny_backend_wheel: Path, tmp_path: Path, monkeypatch
) -> None:
    """A slice reads each sdist it must build once (its build requirements): the SBOM
    takes that sdist's licence from the read, not from another walk of the archive."""
    from ..helpers import sdist

    fake_index.add(tiny_backend_wheel)
    sdist(fake_index, dists, "srconly", "1.0")
    wheel(fake_index, dists, "app", "1.0", requires_dist=["srconly"])

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an sdist read again for the SBOM")

    monkeypatch.setattr("morgan_like.tree.licences.read_archive", refuse)
    tree = tmp_path / "tree"
    assert sync(tree, fake_index, "-c", str(_config(tmp_path, "app"))).rc == 0
    doc = json.loads((tree / "sbom.cdx.json").read_text())
    (component,) = [c for c in doc["components"] if c["bom-ref"].endswith("/srconly-1.0.tar.gz")]
    said = [p["value"] for p in component["properties"] if p["name"] == "morgan-like:license-from"]
    assert said == ["none"]  # a static PKG-INFO that names no licence
