"""Shared fixtures: a fake upstream index and somewhere to build distributions.

Other test modules add their own fixtures here (coordinate with the owner).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .distbuilder import make_tiny_backend_wheel
from .fakeindex import FakeIndex
from .helpers import Resolving
from .seaweed import Seaweed, cannot_run_reason, running_seaweed


@pytest.fixture(autouse=True)
def _bundle_processes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bundle and slice runs read and unpack sdists in this process unless the test is marked
    ``processes``: a spawned worker costs ~0.2 s of CPU a run, and the fast loop makes
    hundreds of runs (module-scoped trees, made before this, keep the real default)."""
    if request.node.get_closest_marker("processes") is None:
        monkeypatch.setattr("morgan_like.modes.resolving.default_processes", lambda: 0)


@pytest.fixture
def fake_index() -> Iterator[FakeIndex]:
    """A started, empty FakeIndex (JSON + HTML, PEP 658, ranges); stopped afterwards."""
    with FakeIndex() as index:
        yield index


@pytest.fixture
def res(fake_index: FakeIndex, tmp_path: Path) -> Iterator[Resolving]:
    """A resolving session (finder, sdist cache, reader) over ``fake_index``."""
    resolving = Resolving(fake_index, tmp_path)
    yield resolving
    resolving.close()


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    """One SeaweedFS (S3 gateway on 127.0.0.1) for the session; tests take a bucket each
    (``seaweed.new_bucket()``, ``seaweed.storage()``).  Skipped, saying why, where the
    ``weed`` binary cannot run."""
    reason = cannot_run_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_seaweed(tmp_path_factory.mktemp("seaweed")) as server:
        yield server


@pytest.fixture
def s3_env(seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The process's environment for an in-process run against ``seaweed``: its AWS_*
    only (never the developer's own profile or keys), and no user cache dir."""
    env = seaweed.client_env()
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def dists(tmp_path: Path) -> Path:
    """A directory for the distributions a test builds."""
    path = tmp_path / "dists"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def tiny_backend_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tinybackend-1.0-py3-none-any.whl: add it to an index that serves our sdists."""
    return make_tiny_backend_wheel(tmp_path_factory.mktemp("tinybackend"))


@pytest.fixture(scope="session")
def openssl_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path] | None:
    """(cert.pem, key.pem): self-signed for 127.0.0.1; None without the openssl CLI."""
    if not shutil.which("openssl"):
        return None
    d = tmp_path_factory.mktemp("cert")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"),
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return d / "cert.pem", d / "key.pem"


@pytest.fixture
def cert(openssl_cert: tuple[Path, Path] | None) -> tuple[Path, Path]:
    """Like ``openssl_cert``, but the test is skipped without openssl."""
    if openssl_cert is None:
        pytest.skip("openssl CLI not available")
    return openssl_cert
