"""A synced tree is a master for a real bandersnatch 8.2, over https (when it is installed).

bandersnatch needs Python >= 3.12 and the network to install, so the test uses a
prepared venv (``.ci/run`` makes one in ~/.cache/morgan-like-test-bandersnatch) and
is skipped without it.  It reads our root index (``/simple``, PEP 691 JSON with
``_last-serial``), then ``/pypi/<project>/json`` checking ``X-PyPI-Last-Serial``,
then downloads every file and ``.metadata`` from the URLs given there.  Its mirror
must end holding every file of ours, hash for hash, through two rounds of changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ..clients import client_env
from ..fakeindex import FakeIndex
from ..helpers import sdist, wheel
from ..server_support import SubprocessServer
from .sync_support import sync

pytestmark = pytest.mark.e2e
VENV = Path.home() / ".cache" / "morgan-like-test-bandersnatch" / "venv"
BANDERSNATCH = VENV / "bin" / "bandersnatch"


def _cert(where: Path) -> tuple[Path, Path]:
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _bandersnatch(conf: Path, cert: Path) -> None:
    env = dict(client_env(), SSL_CERT_FILE=str(cert), HOME=str(conf.parent))
    run = subprocess.run(
        [str(BANDERSNATCH), "-c", str(conf), "mirror"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Stale serial" not in run.stderr and "Error syncing" not in run.stderr, run.stderr


def _assert_mirrored(tree: Path, web: Path) -> None:
    ours = sorted(p.relative_to(tree) for p in (tree / "packages").rglob("*") if p.is_file())
    assert ours
    for rel in ours:
        theirs = web / rel
        assert theirs.is_file(), f"bandersnatch lacks {rel}"
        assert (
            hashlib.sha256(theirs.read_bytes()).digest()
            == hashlib.sha256((tree / rel).read_bytes()).digest()
        ), rel
    for name in (p.name for p in (tree / "simple").iterdir() if p.is_dir()):
        assert (web / "simple" / name / "index.html").is_file(), name


def test_bandersnatch_mirrors_a_synced_tree(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    if not BANDERSNATCH.exists():
        pytest.skip(f"bandersnatch 8.2 not prepared in {VENV}")
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not available")
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib"])
    sdist(fake_index, dists, "app", "1.0")
    wheel(fake_index, dists, "lib", "1.0", requires_python=">=3.8")
    wheel(fake_index, dists, "lib", "2.0", yanked="broken")
    tree = tmp_path / "tree"
    assert sync(tree, fake_index).rc == 0
    cert, key = _cert(tmp_path)
    mirror = tmp_path / "bandersnatch"
    with SubprocessServer(tree, args=["--certfile", str(cert), "--keyfile", str(key)]) as server:
        conf = tmp_path / "bandersnatch.conf"
        conf.write_text(
            "[mirror]\n"
            f"directory = {mirror}\n"
            f"master = https://127.0.0.1:{server.port}\n"
            "json = true\nrelease-files = true\ncore-metadata = true\n"
            "workers = 2\ntimeout = 30\nglobal-timeout = 300\nstop-on-error = true\n"
            "hash-index = false\nsimple-format = ALL\ncompare-method = hash\n"
        )
        _bandersnatch(conf, cert)
        _assert_mirrored(tree, mirror / "web")
        # The next night: a new release and a new file flow through both mirrors.
        wheel(fake_index, dists, "lib", "3.0")
        sdist(fake_index, dists, "lib", "1.0")
        assert sync(tree, fake_index).rc == 0
        _bandersnatch(conf, cert)
        _assert_mirrored(tree, mirror / "web")
    assert os.path.isfile(mirror / "web" / "json" / "lib")


def test_a_change_reaches_bandersnatch_down_a_chain_without_upstream_serials(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    """A plain PEP 503 upstream (no serials, no sizes, HTML only, like pypiserver) -> tree A
    (sync) -> A's server.py -> tree B (sync from A) -> B's server.py over https ->
    bandersnatch: a new sdist upstream reaches bandersnatch's copy."""
    if not BANDERSNATCH.exists():
        pytest.skip(f"bandersnatch 8.2 not prepared in {VENV}")
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not available")
    fake_index.json = fake_index.serials = fake_index.sizes = False
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib"])
    wheel(fake_index, dists, "lib", "1.0", requires_python=">=3.8")
    a, b, mirror = tmp_path / "a", tmp_path / "b", tmp_path / "bandersnatch"
    assert sync(a, fake_index).rc == 0
    cert, key = _cert(tmp_path)
    tls = ["--certfile", str(cert), "--keyfile", str(key)]
    with contextlib.ExitStack() as servers:
        server_a = servers.enter_context(SubprocessServer(a))
        url_a = f"http://127.0.0.1:{server_a.port}/simple/"
        assert sync(b, url_a).rc == 0
        server_b = servers.enter_context(SubprocessServer(b, args=tls))  # B exists now
        conf = tmp_path / "bandersnatch.conf"
        conf.write_text(
            "[mirror]\n"
            f"directory = {mirror}\n"
            f"master = https://127.0.0.1:{server_b.port}\n"
            "json = true\nrelease-files = true\ncore-metadata = true\n"
            "workers = 2\ntimeout = 30\nglobal-timeout = 300\nstop-on-error = true\n"
            "hash-index = false\nsimple-format = ALL\ncompare-method = hash\n"
        )
        _bandersnatch(conf, cert)
        _assert_mirrored(b, mirror / "web")
        sdist(fake_index, dists, "lib", "1.0")  # the change, at the top of the chain
        assert sync(a, fake_index).rc == 0
        assert sync(b, url_a).rc == 0
        _bandersnatch(conf, cert)
    new = mirror / "web/packages/lib/lib-1.0.tar.gz"
    assert new.read_bytes() == (dists / "lib-1.0.tar.gz").read_bytes()
    _assert_mirrored(b, mirror / "web")
