"""End to end: build a tree from the fake upstream, then install from it with real clients.

The upstream is stopped before any client runs, so every install is offline:
over HTTP from the tree's own server.py, and over file:// with no server.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from morgan_like.cli import main

from .clients import PYENV, client_env, find_uv
from .distbuilder import make_sdist, make_tiny_backend_wheel, make_wheel
from .fakeindex import FakeIndex
from .helpers import WINDOWS, ini_env_block
from .server_support import free_port

TARGETS = ["3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13"]


def _interpreters() -> dict[str, tuple[Path, str]]:
    found = {}
    if PYENV.is_dir():
        for entry in sorted(PYENV.iterdir()):
            minor = ".".join(entry.name.split(".")[:2])
            python = entry / "bin" / "python"
            if minor in TARGETS and python.exists() and entry.name[0].isdigit():
                found[minor] = (python, entry.name)
    return found


INTERPRETERS = _interpreters()


def publish(index: FakeIndex, dist_dir: Path) -> None:
    """A small graph that exercises every trap: Requires-Python, extras, ABI tags, sdists, yanks."""
    index.add(make_tiny_backend_wheel(dist_dir))
    index.add(
        make_wheel(dist_dir, "alpha", "1.0", requires_python=">=3.6", requires_dist=["beta[x,y]"])
    )
    index.add(
        make_wheel(dist_dir, "alpha", "2.0", requires_python=">=3.8", requires_dist=["beta[x,y]"])
    )
    index.add(
        make_wheel(
            dist_dir,
            "beta",
            "1.0",
            provides_extra=["x", "y"],
            requires_dist=['gamma; extra == "x"', 'delta; extra == "y"'],
        )
    )
    index.add(make_wheel(dist_dir, "gamma", "1.0"))
    index.add(make_wheel(dist_dir, "delta", "1.0"))
    for tag in (
        "cp37-cp37m-manylinux_2_17_x86_64.manylinux2014_x86_64",
        "cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64",
        "cp313-cp313t-manylinux_2_17_x86_64",
        "cp38-abi3-win_amd64",
        "cp38-abi3-macosx_11_0_arm64",
    ):
        index.add(make_wheel(dist_dir, "native", "1.0", tag=tag))
    index.add(make_sdist(dist_dir, "native", "1.0"))
    index.add(make_sdist(dist_dir, "srconly", "1.0", requires_dist=["gamma"]))
    # METADATA says "Spell_Ing", omega asks for "spell-ing": pip 22.3 to 23.1 compare the
    # two uncanonicalized when they read the wheel's metadata through PEP 658, discard the
    # wheel and build the sdist instead.
    index.add(make_wheel(dist_dir, "Spell_Ing", "1.0"))
    index.add(make_sdist(dist_dir, "Spell_Ing", "1.0"))
    index.add(make_wheel(dist_dir, "omega", "1.0", requires_dist=["spell-ing"]))
    index.add(make_wheel(dist_dir, "yan", "1.0"))
    index.add(make_wheel(dist_dir, "yan", "2.0"), yanked="broken")


REQUIREMENTS = ["alpha", "native", "srconly", "yan", "omega"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not INTERPRETERS:
        pytest.skip("no pyenv interpreters present")
    base = tmp_path_factory.mktemp("e2e")
    root = base / "bundle"
    root.mkdir()
    blocks = [
        ini_env_block(f"py{m.replace('.', '')}", full) for m, (_, full) in INTERPRETERS.items()
    ]
    blocks.append(ini_env_block("windows", "3.12.7", WINDOWS))
    reqs = "".join(f"{r} =\n" for r in REQUIREMENTS)
    (root / "morgan.ini").write_text("".join(blocks) + "[requirements]\n" + reqs)
    with FakeIndex() as index:
        publish(index, base / "dists")
        code = main(
            [
                "mirror",
                "-i",
                str(root),
                "-I",
                index.url,
                "-q",
                "--diff-file",
                str(base / "diff.txt"),
            ]
        )
        assert code == 0
    return root


@pytest.fixture(scope="module")
def server_url(tree: Path):
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(tree / "server.py"),
            "-i",
            str(tree),
            "-H",
            "127.0.0.1",
            "-p",
            str(port),
            "-q",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/simple/"
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("the tree's server.py did not start")
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


def test_tree_is_complete(tree: Path) -> None:
    names = sorted(p.name for p in (tree / "packages" / "native").iterdir())
    # pip's choice per env, not every wheel: abi3 for 3.8+, cp37m for 3.7, win_amd64 for windows.
    assert "native-1.0-cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl" in names
    assert "native-1.0-cp38-abi3-win_amd64.whl" in names
    assert not any("cp313t" in n or "macosx" in n for n in names)
    assert (tree / "packages" / "tinybackend").is_dir(), "build requirement of the sdists"
    assert not (tree / "packages" / "yan" / "yan-2.0-py3-none-any.whl").exists()
    for required in (
        "server.py",
        "manifest.json",
        "simple/index.html",
        "simple/index.json",
        "morgan.ini",
    ):
        assert (tree / required).is_file()
    diff = (tree.parent / "diff.txt").read_text().split()
    assert "simple/alpha/index.html" in diff
    assert all((tree / p).exists() for p in diff)


def _versions(python: Path) -> str:
    code = "import alpha, native, srconly, yan, beta, gamma, delta, omega, spell_ing; print(alpha.__version__, yan.__version__)"
    return subprocess.run(
        [str(python), "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()


def _built(pip_output: str) -> str:
    """What pip built from sdists (its "Building wheel for NAME" lines)."""
    return " ".join(line for line in pip_output.splitlines() if "Building wheel for" in line)


def _index_urls(minor: str, tree: Path, server_url: str) -> list[str]:
    """The env's own view, served and over file:// (what the README tells each target),
    then the union through server.py (what morgan-style clients use)."""
    view = f"envs/py{minor.replace('.', '')}/simple"
    base = server_url.removesuffix("simple/")
    return [base + view + "/", (tree / view).as_uri() + "/", server_url]


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, env=client_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("minor", TARGETS)
def test_pip_installs_offline(minor: str, tree: Path, server_url: str, tmp_path: Path) -> None:
    if minor not in INTERPRETERS:
        pytest.skip(f"CPython {minor} is not installed")
    python, _full = INTERPRETERS[minor]
    expected = "1.0 1.0" if minor == "3.7" else "2.0 1.0"
    for i, index_url in enumerate(_index_urls(minor, tree, server_url)):
        venv = tmp_path / f"venv-{i}"
        _run([str(python), "-m", "venv", str(venv)])
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-cache-dir"]
        pip += ["--index-url", index_url]
        out = _run(pip + REQUIREMENTS)
        assert "inconsistent Name" not in out and "spell" not in _built(out), out
        assert _versions(venv / "bin" / "python") == expected


@pytest.mark.e2e
@pytest.mark.parametrize("minor", TARGETS)
def test_uv_installs_offline(minor: str, tree: Path, server_url: str, tmp_path: Path) -> None:
    if minor not in INTERPRETERS:
        pytest.skip(f"CPython {minor} is not installed")
    uv = find_uv()
    if uv is None:
        pytest.fail("uv is a test dependency; install it with the test extras")
    python, _full = INTERPRETERS[minor]
    expected = "1.0 1.0" if minor == "3.7" else "2.0 1.0"
    for i, index_url in enumerate(_index_urls(minor, tree, server_url)):
        venv = tmp_path / f"uv-{i}"
        _run([*uv, "venv", "-q", "-p", str(python), str(venv)])
        _run(
            [
                *uv,
                "pip",
                "install",
                "-q",
                "-p",
                str(venv / "bin" / "python"),
                "--index-url",
                index_url,
            ]
            + REQUIREMENTS
        )
        assert _versions(venv / "bin" / "python") == expected
