"""A bundle's lock files installed by real clients, offline: the upstream is gone before
any client runs, and every install is hash-checked.

Per env (two pyenv Pythons, each with its own pip):

* ``pip install --require-hashes -r http://HOST/locks/<env>.requirements.txt`` (server.py
  puts the env view's --index-url in) and ``-r TREE/locks/<env>.requirements.txt`` (pip
  reads the --find-links paths against the file's folder);
* ``uv pip sync http://HOST/locks/pylock.<env>.toml`` (server.py makes its paths URLs)
  and ``uv pip sync TREE/locks/pylock.<env>.toml``;
* pip >= 26.1 (``-r pylock.toml``, experimental there), from the newest pip wheel the
  machine keeps (tests/server/test_clients.py's newest_pip_wheel), when there is one.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from morgan_like.cli import main

from ..clients import (
    find_uv,
    installed,
    make_venv,
    need,
    pip_version,
    pyenv_python,
    run,
    uv_venv,
)
from ..fakeindex import FakeIndex
from ..helpers import ini_env_block, sdist, wheel
from ..server.test_clients import newest_pip_wheel
from ..server_support import SubprocessServer

# env name -> the pyenv Python it is for (its own pip: 23.0.1 and 24.2)
ENVS = {"py39": "3.9.18", "py313": "3.13.0"}
CHECK = "import app, dep, sdonly; print(app.__version__, dep.__version__, sdonly.__version__)"
EXPECTED = {"py39": "1.0 1.0 1.0", "py313": "1.0 2.0 1.0"}


@pytest.fixture(scope="module")
def lock_tree(tmp_path_factory: pytest.TempPathFactory, tiny_backend_wheel: Path) -> Path:
    """dep 2.0 needs Python >= 3.10, so py39 pins dep 1.0; sdonly has only an sdist (a
    build with tinybackend, from the same view)."""
    base = tmp_path_factory.mktemp("locks-e2e")
    root, dists = base / "bundle", base / "dists"
    with FakeIndex() as index:
        index.add(tiny_backend_wheel)
        wheel(index, dists, "app", "1.0", requires_dist=["dep", "sdonly"])
        wheel(index, dists, "dep", "1.0")
        sdist(index, dists, "dep", "1.0")
        wheel(index, dists, "dep", "2.0", requires_python=">=3.10")
        sdist(index, dists, "dep", "2.0", requires_python=">=3.10")
        sdist(index, dists, "sdonly", "1.0")
        root.mkdir()
        blocks = "".join(ini_env_block(name, py) for name, py in ENVS.items())
        (root / "morgan.ini").write_text(blocks + "[requirements]\napp =\n")
        assert main(["mirror", "-i", str(root), "-I", index.url, "-q"]) == 0
    return root


@pytest.fixture(scope="module")
def lock_server(lock_tree: Path):
    with SubprocessServer(lock_tree, args=["-q"]) as server:
        yield server


def test_the_locks_verify(lock_tree: Path) -> None:
    assert sorted(p.name for p in (lock_tree / "locks").iterdir()) == [
        "py313.requirements.txt",
        "py39.requirements.txt",
        "pylock.py313.toml",
        "pylock.py39.toml",
    ]
    text = (lock_tree / "locks/py39.requirements.txt").read_text()
    assert (
        "dep==1.0 \\\n" in text
        and "sdonly==1.0 \\\n" in text
        and "tinybackend"
        not in text.split("--find-links ../envs/py39/simple/tinybackend/index.html")[1]
    )
    proc = subprocess.run(
        [sys.executable, str(lock_tree / "server.py"), "--verify", "-i", str(lock_tree)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _pip(vpy: Path, *args: str) -> subprocess.CompletedProcess:
    return run([vpy, "-m", "pip", "install", "--no-cache-dir", *args])


@pytest.mark.e2e
@pytest.mark.parametrize("env", sorted(ENVS))
def test_pip_installs_the_requirements_lock_hash_checked(
    env: str, lock_tree: Path, lock_server: SubprocessServer, tmp_path: Path
) -> None:
    python = pyenv_python(ENVS[env])
    need(python)
    sources = [
        f"{lock_server.base}/locks/{env}.requirements.txt",
        str(lock_tree / "locks" / f"{env}.requirements.txt"),
    ]
    for i, source in enumerate(sources):
        vpy = make_venv(python, tmp_path / f"venv{i}")
        _pip(vpy, "--require-hashes", "-r", source)
        assert installed(vpy, CHECK) == EXPECTED[env]


@pytest.mark.e2e
@pytest.mark.parametrize("env", sorted(ENVS))
def test_uv_syncs_the_pylock(
    env: str, lock_tree: Path, lock_server: SubprocessServer, tmp_path: Path
) -> None:
    python = pyenv_python(ENVS[env])
    need(python)
    uv = find_uv()
    assert uv is not None, "uv is a test dependency"
    sources = [
        f"{lock_server.base}/locks/pylock.{env}.toml",
        str(lock_tree / "locks" / f"pylock.{env}.toml"),
    ]
    for i, source in enumerate(sources):
        vpy = uv_venv(uv, python, tmp_path / f"uv{i}")
        # sdonly is built: its backend comes from the env's view (a lock holds no build tools)
        index = (
            f"{lock_server.base}/envs/{env}/simple/"
            if i == 0
            else (lock_tree / "envs" / env / "simple").as_uri() + "/"
        )
        run(
            [
                *uv,
                "pip",
                "sync",
                "--no-config",
                "--no-cache",
                "-p",
                vpy,
                "--index-url",
                index,
                source,
            ]
        )
        assert installed(vpy, CHECK) == EXPECTED[env]


@pytest.mark.e2e
def test_pip_26_installs_the_pylock(
    lock_tree: Path, lock_server: SubprocessServer, tmp_path: Path
) -> None:
    wheel_path = newest_pip_wheel()
    python = pyenv_python(ENVS["py313"])
    need(python)
    vpy = make_venv(python, tmp_path / "venv")
    if wheel_path is not None:
        _pip(vpy, "--no-index", str(wheel_path))
    if pip_version(vpy) < (26, 1):
        pytest.skip(f"no pip >= 26.1 wheel on this machine ({wheel_path}): none reads pylock")
    sources = [
        f"{lock_server.base}/locks/pylock.py313.toml",
        str(lock_tree / "locks" / "pylock.py313.toml"),
    ]
    for i, source in enumerate(sources):
        target = make_venv(python, tmp_path / f"target{i}")
        index = (
            f"{lock_server.base}/envs/py313/simple/"
            if i == 0
            else (lock_tree / "envs/py313/simple").as_uri() + "/"
        )
        run(
            [
                vpy,
                "-m",
                "pip",
                "--python",
                target,
                "install",
                "--no-cache-dir",
                "--index-url",
                index,
                "-r",
                source,
            ]
        )
        assert installed(target, CHECK) == EXPECTED["py313"]


def test_the_locks_and_the_sbom_travel_by_export_and_import(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, tiny_backend_wheel: Path
) -> None:
    """Top-level files like the root pages: a full export, then a delta after upstream
    moved (a release gone, so a lock and the SBOM change); the copy is the source byte for
    byte and its --verify (which checks the locks and the SBOM) is clean."""
    from .test_transfer import assert_same, build_bundle, export, import_into

    src = build_bundle(fake_index, dists, tmp_path / "src", tiny_backend_wheel)
    copy, out = tmp_path / "copy", tmp_path / "out"
    copy.mkdir()
    assert export(src, out / "1", "lab", "--full") == 0
    import_into(src, out / "1", copy)
    assert_same(src, copy)
    assert sorted(p.name for p in (copy / "locks").iterdir()) == [
        "new.requirements.txt",
        "old.requirements.txt",
        "pylock.new.toml",
        "pylock.old.toml",
    ]
    before = (copy / "sbom.cdx.json").read_bytes()
    src.move(2)  # app 1.1 without extra: the locks and the SBOM change
    assert export(src, out / "2", "lab") == 0
    import_into(src, out / "2", copy)
    assert_same(src, copy)
    assert (copy / "sbom.cdx.json").read_bytes() != before
    assert "extra" not in (copy / "locks/old.requirements.txt").read_text()
