"""Fixtures shared by the server.py tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


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
