"""kill -9 at every kind of moment of ``mirror --prune``, and two runs on one tree.

The crash sweep stops a real ``mirror --prune`` (a subprocess against the fake
upstream) at chosen steps of its write sequence with ``MORGAN_LIKE_CRASH_AFTER``
(see morgan_like.tree.crashpoints), so every kill point is deterministic.  After
each kill, what a client would see must be whole (every root link has its pages,
every page link its file); after the same command runs again, ``server.py
--verify`` must pass and the tree state must match the disk.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from morgan_like.cli import main
from morgan_like.dists.htmlpage import parse_html_page
from morgan_like.dists.links import parse_json_page
from morgan_like.modes.serve import load_server
from morgan_like.tree import crashpoints
from morgan_like.tree.lock import read_holder
from morgan_like.tree.state import TreeState

from ..fakeindex import FakeIndex
from ..helpers import wheel
from .test_bundle import mirror, write_config

REPO = Path(__file__).resolve().parents[2]
KILL_POINTS = 14  # spread over the whole run, plus every removal (see _kill_points)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "MORGAN_LIKE_"))}
    env.update(PYTHONPATH=str(REPO), PIP_CONFIG_FILE=os.devnull, **extra)
    return env


def _cli(root: Path, index: FakeIndex) -> list[str]:
    return [sys.executable, "-m", "morgan_like", "mirror", "-i", str(root), "-I", index.url, "-q"]


def verify(root: Path) -> tuple[int, str]:
    """``server.py --verify`` on the tree, in this process: (exit code, its report)."""
    out, err = io.StringIO(), io.StringIO()
    code = load_server().verify(str(root), out=out, err=err)
    return code, out.getvalue() + err.getvalue()


def assert_whole(root: Path) -> None:
    """What a client sees now: each project the root pages link has both its pages, each
    page link has its file with the page's sha256 (and its .metadata), and no temp file
    lies outside the hidden state folder."""
    root_html, root_json = root / "simple/index.html", root / "simple/index.json"
    linked = set(re.findall(r'href="([^"/]+)/"', root_html.read_text()))
    linked |= {p["name"] for p in json.loads(root_json.read_text())["projects"]}
    for name in linked:
        for page in ("index.html", "index.json"):
            assert (root / "simple" / name / page).is_file(), f"root links {name}/: no {page}"
    for page_path in (root / "simple").glob("*/index.*"):
        name, raw = page_path.parent.name, page_path.read_bytes()
        if page_path.suffix == ".json":
            page = parse_json_page(name, raw, page_path.as_uri())
        else:
            page = parse_html_page(name, raw.decode(), page_path.as_uri())
        for f in page.files:
            path = Path(unquote(urlparse(f.url).path))
            assert path.is_file(), f"{page_path.relative_to(root)} links missing {path.name}"
            assert hashlib.sha256(path.read_bytes()).hexdigest() == f.sha256, path.name
            if isinstance(f.core_metadata, str):
                assert Path(f"{path}.metadata").is_file(), f"no {path.name}.metadata"
    strays = [p for p in root.rglob(".*") if ".morgan-like" not in p.relative_to(root).parts]
    assert strays == [], f"temp files next to their targets: {strays}"


def assert_state_in_step(root: Path) -> None:
    """Every file row of the tree state names a file on disk of that size."""
    with TreeState(root) as state:
        for name in ("app", "lib", "gone", "keep", "newproj"):
            for rel in state.relpaths_under(f"packages/{name}"):
                record = state.get(rel)
                path = root / rel
                assert record is not None and path.is_file(), f"state row without file: {rel}"
                assert path.stat().st_size == record.size, rel


@pytest.fixture
def upstream(fake_index: FakeIndex, dists: Path) -> FakeIndex:
    """Run 1 mirrors app 1.0, lib 1.0, gone, keep; then app 2.0 (lib>=2) and newproj appear."""
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib>=1"])
    wheel(fake_index, dists, "lib", "1.0")
    wheel(fake_index, dists, "lib", "2.0")
    wheel(fake_index, dists, "gone", "1.0")
    wheel(fake_index, dists, "keep", "1.0")
    return fake_index


def _first_tree(tmp_path: Path, upstream: FakeIndex, dists: Path) -> Path:
    base = tmp_path / "base"
    write_config(base, "app = ==1.0\nlib = <2\ngone =\nkeep =\n")
    assert mirror(base, upstream) == 0
    assert verify(base)[0] == 0
    wheel(upstream, dists, "app", "2.0", requires_dist=["lib>=2"])
    wheel(upstream, dists, "newproj", "1.0")
    write_config(base, "app =\nnewproj =\nkeep =\n")
    return base


def _kill_points(base: Path, tmp_path: Path, upstream: FakeIndex) -> list[int]:
    """Count the steps of the prune run (in this process, on a copy), then pick points
    spread over all of them plus every step taken by a removal: that is where a project
    could vanish or the root could link a missing page."""
    trace: list[str] = []
    real_step = crashpoints.step

    def tracing() -> None:
        trace.append(sys._getframe(1).f_code.co_name)
        real_step()

    probe = tmp_path / "probe"
    shutil.copytree(base, probe)
    crashpoints.step = tracing  # type: ignore[assignment]
    try:
        assert mirror(probe, upstream, "--prune") == 0
    finally:
        crashpoints.step = real_step  # type: ignore[assignment]
    total = len(trace)
    kinds = Counter(trace)
    assert kinds["_remove"] >= 6 and kinds["commit"] >= 2 and kinds["atomic_write_bytes"] >= 8
    spread = {1 + round(i * (total - 1) / (KILL_POINTS - 1)) for i in range(KILL_POINTS)}
    removals = {i + 1 for i, kind in enumerate(trace) if kind in ("_remove", "commit")}
    return sorted(spread | removals)


def test_kill_minus_9_anywhere_in_a_prune(upstream: FakeIndex, dists: Path, tmp_path: Path) -> None:
    base = _first_tree(tmp_path, upstream, dists)
    points = _kill_points(base, tmp_path, upstream)
    assert len(points) >= 10
    for point in points:
        work = tmp_path / f"kill{point}"
        shutil.copytree(base, work)
        run = subprocess.run(
            [*_cli(work, upstream), "--prune"],
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
        assert mirror(work, upstream, "--prune") == 0, f"re-run after a kill at step {point}"
        code, report = verify(work)
        assert code == 0, f"killed at step {point}, then re-run:\n{report}"
        assert_state_in_step(work)
        assert not (work / ".morgan-like/tmp").exists(), "the re-run left temp files"
        assert not (work / "packages/gone").exists() and (work / "packages/newproj").is_dir()
        shutil.rmtree(work)


def test_prune_keeps_a_project_whose_download_failed(
    upstream: FakeIndex, dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """lib 2.0 cannot be fetched: lib keeps its page and lib 1.0, never vanishes, and the
    next run (download fixed) prunes as asked."""
    base = _first_tree(tmp_path, upstream, dists)
    upstream.corrupt("lib-2.0-py3-none-any.whl")
    assert mirror(base, upstream, "--prune") == 1
    assert "lib-2.0-py3-none-any.whl" in capsys.readouterr().err
    assert (base / "packages/lib/lib-1.0-py3-none-any.whl").is_file()
    assert "lib-1.0-py3-none-any.whl" in (base / "simple/lib/index.html").read_text()
    assert 'href="lib/"' in (base / "simple/index.html").read_text()
    assert not (base / "packages/gone").exists()  # the rest of the prune happened
    assert verify(base)[0] == 0
    upstream.clear_faults()
    assert mirror(base, upstream, "--prune") == 0
    assert sorted(p.name for p in (base / "packages/lib").iterdir()) == [
        "lib-2.0-py3-none-any.whl",
        "lib-2.0-py3-none-any.whl.metadata",
    ]


def test_second_run_refuses_naming_the_first(
    upstream: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """While one run writes the tree, another stops at once with one line naming its pid;
    with --wait-lock it waits, then both have run and the tree verifies."""
    root = tmp_path / "bundle"
    write_config(root, "app = ==1.0\ngone =\nkeep =\n")
    upstream.latency = 0.3  # the first run takes a while
    first = subprocess.Popen(
        [*_cli(root, upstream), "--prune"], env=_env(), stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while (holder := read_holder(root)) is None or holder.pid != first.pid:
            assert first.poll() is None and time.monotonic() < deadline, "first run never locked"
            time.sleep(0.02)
        assert mirror(root, upstream) == 1
        err = capsys.readouterr().err
        assert f"pid {first.pid}" in err and "--wait-lock" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        upstream.latency = 0.0
        second = ["mirror", "-i", str(root), "-I", upstream.url, "--prune", "--wait-lock"]
        assert main(second) == 0
        assert f"waiting for the run holding {root} (pid {first.pid}" in capsys.readouterr().out
        assert first.wait(60) == 0, first.stderr.read() if first.stderr else ""
    finally:
        if first.poll() is None:
            first.kill()
        first.wait(60)
        if first.stderr:
            first.stderr.close()
    assert verify(root)[0] == 0


def test_a_run_sweeps_what_a_killed_run_left(upstream: FakeIndex, tmp_path: Path) -> None:
    """Temp files of a killed run's writes and downloads, and its cached sdists, are gone
    after the next run; the tree's own folders were not listed to find them."""
    root = tmp_path / "bundle"
    write_config(root, "keep =\n")
    assert mirror(root, upstream) == 0
    left = [
        root / ".morgan-like/tmp/.index.html.ab12cd34.tmp",
        root / ".morgan-like/tmp/3f2a.part",
        root / ".morgan-like/cache/old-1.0.tar.gz",
    ]
    for path in left:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    assert mirror(root, upstream) == 0
    assert not any(path.exists() for path in left)
    assert not (root / ".morgan-like/tmp").exists()


def test_dry_run_leaves_a_running_mirror_alone(
    upstream: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dry run writes nothing: it needs no lock, and its scratch is its own, so the
    scratch of a run holding the tree is not swept from under it."""
    from morgan_like.tree.lock import TreeLock

    root = tmp_path / "bundle"
    write_config(root, "keep =\n")
    in_flight = root / ".morgan-like/tmp/download.part"
    with TreeLock(root, "mirror"):
        in_flight.parent.mkdir(parents=True)
        in_flight.write_bytes(b"someone else's download")
        assert main(["mirror", "-i", str(root), "-I", upstream.url, "--dry-run"]) == 0
        assert in_flight.read_bytes() == b"someone else's download"
    assert "keep-1.0-py3-none-any.whl" in capsys.readouterr().out
    assert not (root / ".morgan-like/state.db").exists()


def test_copy_server_waits_its_turn(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """copy_server writes the tree (server.py, manifest, state): it takes the lock too."""
    from morgan_like.tree.lock import TreeLock

    root = tmp_path / "bundle"
    with TreeLock(root, "mirror"):
        assert main(["copy_server", "-i", str(root)]) == 1
        assert f"pid {os.getpid()}, mirror since" in capsys.readouterr().err
        assert not (root / "server.py").exists()
    assert main(["copy_server", "-i", str(root), "--wait-lock", "5"]) == 0
    assert (root / "server.py").is_file()
