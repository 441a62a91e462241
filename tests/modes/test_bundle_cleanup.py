"""A failed or interrupted mirror run leaves nothing outside the hidden state.

One env conflicts after another env's downloads have already landed: the run
fails and the tree is as it was (no file, no empty ``packages/<project>/``).
Ctrl+C (SIGINT to a real ``python -m morgan_like`` process) against a slow
upstream, while resolving and while downloading: exit 130 without a
traceback, the tree as it was (``server.py --verify`` passes, or there is no
tree yet), and the run ends long before the slow transfers would have.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.modes import bundle_resolve

from ..fakeindex import FakeIndex
from ..helpers import ini_env_block, wheel

REPO = Path(__file__).resolve().parents[2]
SLOW_WHEEL = "slow-1.0-py3-none-any.whl"


def _snapshot(tree: Path) -> dict[str, str]:
    """Every visible path under the tree (folders too) -> its sha256 ('' for a folder)."""
    out = {}
    for path in sorted(tree.rglob("*")):
        rel = path.relative_to(tree)
        if rel.parts[0].startswith("."):
            continue
        out[rel.as_posix()] = (
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        )
    return out


def _config(tree: Path, requirements: str, *envs: tuple[str, str]) -> None:
    tree.mkdir(parents=True, exist_ok=True)
    blocks = "".join(ini_env_block(name, python) for name, python in envs)
    (tree / "morgan.ini").write_text(blocks + "[requirements]\n" + requirements)


@pytest.fixture
def conflicting(fake_index: FakeIndex, dists: Path, monkeypatch: pytest.MonkeyPatch) -> FakeIndex:
    """app needs lib>=2; env 'old' (3.11) also asks for lib<2 and so conflicts, but only
    once env 'new' has its files in the tree (resolve_env held until one lands)."""
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib>=2"])
    wheel(fake_index, dists, "lib", "1.0")
    wheel(fake_index, dists, "lib", "2.0")
    real = bundle_resolve.resolve_env

    def held(env, requirements, finder, ropts, roots=None):  # type: ignore[no-untyped-def]
        if env.name == "old":
            packages = Path(fake_index.tree) / "packages"  # type: ignore[attr-defined]
            deadline = time.monotonic() + 20
            while not any(packages.glob("*/*.whl")) and time.monotonic() < deadline:
                time.sleep(0.01)
        return real(env, requirements, finder, ropts, roots)

    monkeypatch.setattr(bundle_resolve, "resolve_env", held)
    return fake_index


def test_a_conflict_in_one_env_leaves_a_new_tree_empty(
    conflicting: FakeIndex, tmp_path: Path
) -> None:
    tree = tmp_path / "bundle"
    conflicting.tree = tree  # type: ignore[attr-defined]
    _config(
        tree, 'app =\nlib = <2; python_version == "3.11"\n', ("new", "3.12.1"), ("old", "3.11.9")
    )
    assert main(["mirror", "-i", str(tree), "-I", conflicting.url, "-q"]) != 0
    assert any(r.path.startswith("/files/") for r in conflicting.requests)  # it had started
    assert _snapshot(tree) == {"morgan.ini": _snapshot(tree)["morgan.ini"]}


def test_a_conflict_in_one_env_leaves_an_old_tree_as_it_was(
    conflicting: FakeIndex, tmp_path: Path, dists: Path
) -> None:
    tree = tmp_path / "bundle"
    conflicting.tree = tree  # type: ignore[attr-defined]
    _config(tree, "lib = <2\n", ("new", "3.12.1"))
    assert main(["mirror", "-i", str(tree), "-I", conflicting.url, "-q"]) == 0
    _config(
        tree, 'app =\nlib = <2; python_version == "3.11"\n', ("new", "3.12.1"), ("old", "3.11.9")
    )
    before = _snapshot(tree)
    (tree / "packages/lib/lib-1.0-py3-none-any.whl").rename(tmp_path / "kept.whl")
    # held until a wheel lands: app's, in its own new folder
    assert main(["mirror", "-i", str(tree), "-I", conflicting.url, "-q"]) != 0
    (tmp_path / "kept.whl").rename(tree / "packages/lib/lib-1.0-py3-none-any.whl")
    assert _snapshot(tree) == before
    assert not (tree / "packages/app").exists()


# -- Ctrl+C ------------------------------------------------------------------------------


def _start(tree: Path, index: FakeIndex, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return subprocess.Popen(
        [sys.executable, "-m", "morgan_like", "mirror", "-i", str(tree), "-I", index.url, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _interrupt_when(proc: subprocess.Popen[str], ready, what: str) -> tuple[int, str, float]:  # type: ignore[no-untyped-def]
    """SIGINT once ``ready()``; (exit code, stderr, seconds from the signal to the exit)."""
    deadline = time.monotonic() + 60
    while not ready():
        assert proc.poll() is None, f"ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.02)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    try:
        _out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, err, time.monotonic() - sent


def _verify(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "server.py"), "--verify", "-i", str(tree)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def slow(fake_index: FakeIndex, dists: Path) -> FakeIndex:
    """app -> lib, and slow's wheel, which the upstream drips (a byte per 20 ms: ~60 s)."""
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib>=1"])
    wheel(fake_index, dists, "lib", "1.0")
    wheel(fake_index, dists, "slow", "1.0", pad_bytes=3000)
    return fake_index


def test_ctrl_c_while_downloading_takes_back_the_run(slow: FakeIndex, tmp_path: Path) -> None:
    tree = tmp_path / "bundle"
    _config(tree, "app =\n", ("linux", "3.12.1"))
    assert main(["mirror", "-i", str(tree), "-I", slow.url, "-q"]) == 0
    before = _snapshot(tree)
    size = slow.files[SLOW_WHEEL].size
    slow.drip(SLOW_WHEEL, 0.02)
    _config(tmp_path / "next", "app =\nslow =\n", ("linux", "3.12.1"))
    proc = _start(tree, slow, "-c", str(tmp_path / "next/morgan.ini"))
    rc, err, took = _interrupt_when(
        proc, lambda: any(p.endswith(SLOW_WHEEL) for p in slow.started()), "downloading"
    )
    assert rc == 130, err
    assert "Traceback" not in err and "unexpected" not in err
    assert "interrupted" in err
    assert _snapshot(tree) == before
    assert _verify(tree).returncode == 0
    assert not list((tree / ".morgan-like").glob("tmp/*"))
    # Not a timing test: the drip alone would have taken size * 0.02 s (about a minute).
    assert took < size * 0.02 / 2


def test_ctrl_c_while_resolving_stops_fetching(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    # A chain of 6 projects behind an upstream that answers each request after 3 s.
    for i in range(6):
        wheel(fake_index, dists, f"p{i}", "1.0", requires_dist=[f"p{i + 1}"] if i < 5 else [])
    fake_index.latency = 3.0
    tree = tmp_path / "bundle"
    _config(tree, "p0 =\n", ("linux", "3.12.1"), ("win", "3.12.1"))
    proc = _start(tree, fake_index)
    rc, err, took = _interrupt_when(proc, lambda: len(fake_index.started()) >= 1, "fetching")
    assert rc == 130, err
    assert "Traceback" not in err and "unexpected" not in err
    assert _snapshot(tree) == {"morgan.ini": _snapshot(tree)["morgan.ini"]}  # no tree yet
    # Resolving to the end would take 6 pages and 6 metadata files, 3 s each.
    assert took < 12 * 3.0 / 2
    asked = len(fake_index.started())
    time.sleep(0.5)
    assert len(fake_index.started()) == asked  # nothing asked for after the exit
