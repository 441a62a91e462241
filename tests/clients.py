"""Real clients for the tests: pyenv interpreters, venvs, pip and uv, and what they send.

Shared by tests/server/test_clients.py, tests/modes/test_nginx.py, tests/test_e2e.py and
tests/test_fakeindex.py.  Tests that create venvs, install with pip or uv, or run on the
pyenv interpreters are marked ``e2e``: ``pytest -m "not e2e"`` is the fast loop.

Interpreters that are not installed are skipped; set MORGAN_LIKE_PYTHONS to a
comma-separated list of interpreter paths to use others.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .server_support import Dist

PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
VERSIONS = ["3.6.15", "3.7.16", "3.8.18", "3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"]

# The Accept headers pip (>= 22.2) and uv send for index pages.
PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"
UV_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"


def pyenv_python(version: str) -> Path:
    """A pyenv interpreter by full version ("3.12.1"); it may not be installed."""
    return PYENV / version / "bin" / "python"


def interpreters() -> list[tuple[str, str]]:
    env = os.environ.get("MORGAN_LIKE_PYTHONS")
    if env:
        return [(Path(p).name, p) for p in env.split(",") if p]
    return [(v, str(pyenv_python(v))) for v in VERSIONS]


PYTHONS = interpreters()


def python_params(pythons: list[tuple[str, str]], ids: list[str] | None = None) -> list[Any]:
    """(version, python) parameters: the running interpreter for the fast loop, then the
    given pyenv interpreters marked e2e."""
    current = pytest.param("current", sys.executable, id="current")
    rest = [
        pytest.param(version, python, id=ident, marks=pytest.mark.e2e)
        for (version, python), ident in zip(pythons, ids or [v for v, _ in pythons])
    ]
    return [current, *rest]


def need(python: str | Path) -> None:
    if not Path(python).exists():
        pytest.skip(f"{python} not installed")


def client_env() -> dict[str, str]:
    """The environment for pip, uv and venv interpreters: no user config, no uv cache."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "PYTHON", "VIRTUAL_ENV"))
    }
    # No PIP_NO_CACHE_DIR: pip 18.1 fails on it; pass --no-cache-dir instead.
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    env.update(UV_NO_CONFIG="1", UV_NO_CACHE="1", UV_PYTHON_DOWNLOADS="never")
    return env


def run(cmd: list[Any], timeout: float = 180) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(c) for c in cmd], env=client_env(), capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, (
        f"{' '.join(map(str, cmd))}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return proc


# A tree every client can install "gamma" from; CHECK prints the versions it got.
MATRIX_DISTS = [
    Dist("alpha", "1.0"),
    Dist("alpha", "2.0", requires_python=">=3.8"),
    Dist("alpha", "3.0", yanked="broken release"),
    Dist("Beta_Pkg", "1.0", requires=["alpha"]),
    Dist("gamma", "0.5", requires=["Beta_Pkg"], payload=os.urandom(200_000)),
]
CHECK = "import alpha, beta_pkg, gamma; print(alpha.__version__, beta_pkg.__version__, gamma.__version__)"


def installed(python: Path, code: str) -> str:
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True, env=client_env()
    ).stdout.strip()


def pip_version(python: Path) -> tuple[int, ...]:
    out = installed(python, "import pip; print(pip.__version__)")
    return tuple(int(x) for x in re.findall(r"\d+", out)[:3])


def make_venv(python: str | Path, where: Path) -> Path:
    run([python, "-m", "venv", str(where)], timeout=240)
    return where / "bin" / "python"


def pip_install(vpy: Path, index_url: str, *pkgs: str) -> None:
    run(
        [
            vpy,
            "-m",
            "pip",
            "install",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--index-url",
            index_url,
            *pkgs,
        ]
    )


def find_uv() -> list[str] | None:
    """uv next to the running interpreter (the test extra installs it), on PATH, or as a module."""
    exe = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if exe:
        return [exe]
    try:
        subprocess.run([sys.executable, "-m", "uv", "--version"], check=True, capture_output=True)
        return [sys.executable, "-m", "uv"]
    except (subprocess.CalledProcessError, OSError):
        return None


def uv_venv(uv: list[str], python: str | Path, where: Path) -> Path:
    run([*uv, "venv", "--no-config", "-p", python, where])
    return where / "bin" / "python"


def uv_install(uv: list[str], vpy: Path, index_url: str, *pkgs: str) -> None:
    options = ["--no-config", "--no-cache", "-p", vpy, "--index-url", index_url]
    run([*uv, "pip", "install", *options, *pkgs])
