"""``server.py --verify`` and start-up at scale: memory stays flat as the tree grows.

Functional checks with generous bounds, never timings: the peak RSS of a verify of a
20,000-project tree stays within a few MB of a 100-project tree's (the verify of
the old format held every file of the tree in dicts: +60 MB at this size), and the
server starts without reading any per-file state.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .test_verify import PY36, SERVER_PY, build_tree

pytestmark = pytest.mark.e2e

BIG = 20000
SMALL = 100
FLAT_MB = 25  # allowed growth of the peak RSS from SMALL to BIG projects

# Runs the command as its only child and prints that child's peak RSS (KiB on Linux).
_MEASURE = (
    "import resource, subprocess, sys\n"
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
    "sys.stderr.write(p.stdout.decode('utf-8', 'replace')[-2000:])\n"
    "sys.stderr.write(p.stderr.decode('utf-8', 'replace')[-2000:])\n"
    "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def peak_rss(python: str, root: Path) -> tuple[int, float, str]:
    """(exit code, peak RSS in MB, output) of ``python server.py --verify -i root``."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, python, str(SERVER_PY), "--verify", "-i", str(root)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    code, kib = proc.stdout.split()
    return int(code), int(kib) / 1024.0, proc.stderr


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("scale")
    small, big = base / "small", base / "big"
    build_tree(small, {f"p{i:06d}": ["1.0"] for i in range(SMALL)})
    build_tree(big, {f"p{i:06d}": ["1.0"] for i in range(BIG)})
    return small, big


@pytest.mark.parametrize("python", [sys.executable, str(PY36)], ids=["current", "py36"])
def test_verify_memory_is_flat(trees, python):
    if not Path(python).exists():
        pytest.skip(f"no {python}")
    small, big = trees
    code, small_mb, out = peak_rss(python, small)
    assert code == 0, out
    code, big_mb, out = peak_rss(python, big)
    assert code == 0, out
    assert f"{BIG} projects, {2 * BIG + 4} files checked" in out
    print(f"verify peak RSS: {SMALL} projects {small_mb:.1f} MB, {BIG} projects {big_mb:.1f} MB")
    assert big_mb < small_mb + FLAT_MB, (small_mb, big_mb)


def test_verify_finds_a_problem_in_a_big_tree(trees, tmp_path):
    """The streaming joins see one unlisted page and one stray file among thousands."""
    _, big = trees
    root_json = big / "simple" / "index.json"
    original = root_json.read_bytes()
    stray = big / "packages" / "p012345" / "stray-1.0.tar.gz"
    try:
        text = original.decode()
        root_json.write_text(text.replace('{"name": "p004321", "_last-serial": 7},\n', ""))
        stray.write_bytes(b"x")
        proc = subprocess.run(
            [sys.executable, str(SERVER_PY), "--verify", "-i", str(big)],
            capture_output=True,
            text=True,
            timeout=1800,
        )
    finally:
        root_json.write_bytes(original)
        stray.unlink()
    assert proc.returncode == 1
    problems = [line for line in proc.stdout.splitlines() if not line.startswith("verify ")]
    assert problems == [
        line
        for line in proc.stdout.splitlines()
        if line.startswith(("CORRUPT ", "DISAGREE ", "UNEXPECTED "))
    ]
    assert "DISAGREE    simple/ (p004321: in simple/index.html, not in simple/index.json)" in (
        problems
    )
    assert "UNEXPECTED  packages/p012345/stray-1.0.tar.gz" in problems
    assert any(line.startswith("CORRUPT     simple/index.json") for line in problems)
    assert len(problems) == 3


def _vm_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise AssertionError("no VmRSS")


def _start(root: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER_PY), "-i", str(root), "-H", "127.0.0.1", "-p", "0", "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = re.search(r"bound to (\S+):(\d+)", line)
        if match:
            return proc, int(match.group(2))
        if not line:
            break
    proc.kill()
    raise AssertionError(f"server did not start: {proc.communicate()}")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_server_start_up_holds_no_per_file_state(trees):
    small, big = trees
    rss = {}
    for name, root in (("small", small), ("big", big)):
        proc, port = _start(root)
        try:
            rss[name] = _vm_rss_mb(proc.pid)
            if name == "big":
                page = json.loads((big / "simple" / "p019999" / "index.json").read_text())
                entry = page["files"][0]
                url = f"http://127.0.0.1:{port}/packages/p019999/{entry['filename']}"
                with urllib.request.urlopen(url, timeout=10) as resp:
                    assert resp.headers["ETag"] == f'"sha256-{entry["hashes"]["sha256"]}"'
        finally:
            proc.terminate()
            proc.wait(30)
            proc.stdout.close()
    print(f"server RSS after start-up: small {rss['small']:.1f} MB, big {rss['big']:.1f} MB")
    assert rss["big"] < rss["small"] + 10, rss
