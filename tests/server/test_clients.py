"""server.py on every CPython 3.6-3.13, and real clients installing through it.

* The server starts under each pyenv interpreter, answers, and stops gracefully on
  SIGTERM/SIGINT (finishing a transfer in progress).
* Client matrix: each interpreter's bundled pip (18.1 ... 24.2) installs from the
  tree via the server and via file://; uv does too.  The combined access log shows
  who fetched what: pip >= 23.2 fetched ``.metadata``, uv and pip >= 22.2 got JSON,
  pip 18.1 got HTML, and range requests got 206.
* "Latest pip": the newest pip wheel available offline (``$MORGAN_LIKE_TEST_WHEELS``,
  else the newest ensurepip bundle) is put into a tree, installed *from our server*
  into a venv, and then used to install from it.  Tests never reach PyPI.

Interpreters that are not installed are skipped; set MORGAN_LIKE_PYTHONS to a
comma-separated list of interpreter paths to use others.  Everything that runs a
pyenv interpreter or a client is marked e2e; the server tests also run once on the
current interpreter, in the fast loop (``pytest -m "not e2e"``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from ..clients import (
    CHECK,
    MATRIX_DISTS,
    PYENV,
    PYTHONS,
    find_uv,
    installed,
    make_venv,
    need,
    pip_install,
    pip_version,
    pyenv_python,
    python_params,
    run,
    uv_install,
    uv_venv,
)
from ..server_support import SERVER_PY, SubprocessServer, write_tree


@pytest.fixture(scope="module")
def mtree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("matrix") / "tree"
    write_tree(root, MATRIX_DISTS)
    return root


@pytest.fixture(scope="module")
def mserver(mtree, tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "access.log"
    srv = SubprocessServer(mtree, args=["--access-log", str(log), "--log-format", "combined"])
    srv.log_path = log
    yield srv
    code, err = srv.stop()
    assert code == 0, err


def page_sizes(port: int, paths: list[str]) -> dict[tuple[str, int], str]:
    """(path, bytes) -> "json"/"html" for every representation the server can send."""
    sizes = {}
    for path in paths:
        for accept, kind in (
            ("application/vnd.pypi.simple.v1+json", "json"),
            ("text/html", "html"),
        ):
            for enc in ("gzip", "identity"):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", path, headers={"Accept": accept, "Accept-Encoding": enc})
                body = conn.getresponse().read()
                conn.close()
                sizes[(path, len(body))] = kind
    return sizes


LOG_LINE = re.compile(
    r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/1\.[01]" (?P<status>\d{3}) (?P<size>\S+) "[^"]*" "(?P<ua>.*)"$'
)


def log_entries(path: Path, start: int = 0) -> list[dict]:
    out = []
    for line in path.read_text().splitlines()[start:]:
        m = LOG_LINE.search(line)
        if m:
            d = m.groupdict()
            d["size"] = 0 if d["size"] == "-" else int(d["size"])
            out.append(d)
    return out


# --------------------------------------------------------------------------- startup / stop


@pytest.mark.parametrize(("version", "python"), python_params(PYTHONS))
def test_server_starts_on_every_interpreter(version, python, mtree, openssl_cert, tmp_path):
    need(python)
    srv = SubprocessServer(mtree, python=python)
    try:
        assert f"http://127.0.0.1:{srv.port}/simple/" in srv.startup_line
        assert "index-url" in srv.startup_line and "[[index]]" in srv.startup_line
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.request(
            "GET", "/simple/alpha/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        )
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["name"] == "alpha"
        conn.request(
            "GET", "/simple/alpha/", headers={"Accept": "text/html", "Accept-Encoding": "gzip"}
        )
        resp = conn.getresponse()
        assert resp.getheader("Content-Type") == "text/html; charset=utf-8"
        resp.read()
        conn.request(
            "GET", "/packages/gamma/gamma-0.5-py3-none-any.whl", headers={"Range": "bytes=-100"}
        )
        resp = conn.getresponse()
        assert resp.status == 206 and len(resp.read()) == 100
        # a big body that the client reads slowly while the server is told to stop
        conn.request("GET", "/packages/gamma/gamma-0.5-py3-none-any.whl")
        resp = conn.getresponse()
        first = resp.read(1000)
        srv.proc.send_signal(signal.SIGTERM if version != "3.8.18" else signal.SIGINT)
        time.sleep(0.3)
        rest = resp.read()
        size = (mtree / "packages/gamma/gamma-0.5-py3-none-any.whl").stat().st_size
        assert len(first) + len(rest) == size, "transfer in progress was not finished"
        conn.close()
    finally:
        code, err = srv.stop()
    assert code == 0, err
    assert "server stopped" in err
    assert "Traceback" not in err, err
    assert any('"GET /simple/alpha/ HTTP/1.1" 200' in line for line in srv.log_lines)

    if openssl_cert is not None:
        certfile, keyfile = openssl_cert
        srv = SubprocessServer(
            mtree,
            python=python,
            args=["-q", "--certfile", str(certfile), "--keyfile", str(keyfile)],
        )
        try:
            ctx = ssl.create_default_context(cafile=str(certfile))
            conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=10)
            conn.request("GET", "/packages/gamma/gamma-0.5-py3-none-any.whl")
            resp = conn.getresponse()
            assert resp.status == 200
            assert (
                len(resp.read())
                == (mtree / "packages/gamma/gamma-0.5-py3-none-any.whl").stat().st_size
            )
            conn.close()
        finally:
            code, err = srv.stop()
        assert code == 0, err


@pytest.mark.parametrize(
    ("version", "python"), python_params(PYTHONS[:1] + PYTHONS[-1:], ids=["oldest", "newest"])
)
def test_copied_tree_serves_itself(version, python, mtree, tmp_path):
    """`cd anywhere && python3 TREE/server.py` serves TREE (no -i)."""
    need(python)
    srv = SubprocessServer(None, python=python, script=mtree / "server.py", cwd=tmp_path)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        conn.request("GET", "/simple/")
        assert conn.getresponse().status == 200
        conn.close()
        assert str(mtree) in srv.startup_line
    finally:
        assert srv.stop()[0] == 0


def test_not_a_tree_fails_clearly(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SERVER_PY), "-i", str(tmp_path), "-p", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "no simple/" in proc.stderr


def test_port_in_use_fails_clearly(mtree):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, str(SERVER_PY), "-i", str(mtree), "-H", "127.0.0.1", "-p", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode == 2 and "error:" in proc.stderr


def test_cli_entry_points(mtree):
    from morgan_like.modes import serve

    src = serve.server_source()
    assert src.read_bytes() == SERVER_PY.read_bytes()
    assert serve.run(["--verify", "-i", str(mtree)]) == 0
    mod = serve.load_server()
    for name in ("main", "build_parser", "serve", "verify"):
        assert callable(getattr(mod, name))


# ------------------------------------------------------------------------------ pip matrix


@pytest.fixture(scope="module")
def venvs(tmp_path_factory):
    return tmp_path_factory.mktemp("venvs")


@pytest.mark.e2e
@pytest.mark.parametrize(("version", "python"), PYTHONS, ids=[v for v, _ in PYTHONS])
def test_pip_matrix(version, python, mtree, mserver, venvs):
    need(python)
    vpy = make_venv(python, venvs / version)
    pv = pip_version(vpy)
    start = len(mserver.log_path.read_text().splitlines())
    pip_install(vpy, f"{mserver.base}/simple/", "gamma")
    if pv < (19, 2):
        expected_alpha = "3.0"  # pip < 19.2 knows nothing of PEP 592 (yanked)
    elif tuple(int(x) for x in version.split(".")[:2]) >= (3, 8):
        expected_alpha = "2.0"
    else:
        expected_alpha = "1.0"  # requires-python honoured; 3.0 is yanked
    assert installed(vpy, CHECK) == f"{expected_alpha} 1.0 0.5"

    entries = [e for e in log_entries(mserver.log_path, start) if "pip/" in e["ua"]]
    assert entries, "pip's requests are not in the access log"
    assert all(e["status"] in ("200", "206", "304") for e in entries), entries
    sizes = page_sizes(mserver.port, ["/simple/alpha/", "/simple/beta-pkg/", "/simple/gamma/"])
    kinds = {sizes.get((e["path"], e["size"])) for e in entries if e["path"].startswith("/simple/")}
    if pv >= (22, 2):
        assert kinds == {"json"}, entries
    else:
        assert kinds == {"html"}, entries
    fetched_metadata = any(e["path"].endswith(".whl.metadata") for e in entries)
    if pv >= (23, 2):
        assert fetched_metadata, entries
    if pv < (22, 2):
        assert not fetched_metadata

    # and from the same tree over file://, no server
    run([vpy, "-m", "pip", "uninstall", "-y", "alpha", "beta-pkg", "gamma"])
    pip_install(vpy, mtree.joinpath("simple").as_uri() + "/", "gamma")
    assert installed(vpy, CHECK) == f"{expected_alpha} 1.0 0.5"

    # morgan-style index-url = http://host:port/ (pages at /<project>/): oldest and newest pip
    if version not in (PYTHONS[0][0], PYTHONS[-1][0]):
        return
    run([vpy, "-m", "pip", "uninstall", "-y", "alpha", "beta-pkg", "gamma"])
    pip_install(vpy, f"{mserver.base}/", "gamma")
    assert installed(vpy, CHECK) == f"{expected_alpha} 1.0 0.5"


# ---------------------------------------------------------------------------------- uv


@pytest.mark.e2e
@pytest.mark.parametrize("version", ["3.8.18", "3.13.0"])
def test_uv(version, mtree, mserver, tmp_path):
    uv = find_uv()
    if uv is None:
        pytest.skip("uv not available")
    python = str(pyenv_python(version))
    need(python)
    vpy = uv_venv(uv, python, tmp_path / "venv")
    start = len(mserver.log_path.read_text().splitlines())
    uv_install(uv, vpy, f"{mserver.base}/simple/", "gamma")
    assert installed(vpy, CHECK) == "2.0 1.0 0.5"
    entries = [e for e in log_entries(mserver.log_path, start) if e["ua"].startswith("uv/")]
    sizes = page_sizes(mserver.port, ["/simple/alpha/", "/simple/beta-pkg/", "/simple/gamma/"])
    kinds = {sizes.get((e["path"], e["size"])) for e in entries if e["path"].startswith("/simple/")}
    assert kinds == {"json"}, entries
    assert any(e["path"].endswith(".whl.metadata") for e in entries)

    run([*uv, "pip", "uninstall", "--no-config", "-p", str(vpy), "alpha", "beta-pkg", "gamma"])
    uv_install(uv, vpy, mtree.joinpath("simple").as_uri() + "/", "gamma")
    assert installed(vpy, CHECK) == "2.0 1.0 0.5"


@pytest.mark.e2e
def test_ranged_requests_without_metadata(mtree, tmp_path):
    """With --no-metadata, clients read the wheel's METADATA with range requests (206)."""
    uv = find_uv()
    log = tmp_path / "access.log"
    srv = SubprocessServer(
        mtree, args=["--no-metadata", "--access-log", str(log), "--log-format", "combined"]
    )
    try:
        if uv is not None:
            vpy = uv_venv(uv, pyenv_python("3.12.1"), tmp_path / "venv")
            uv_install(uv, vpy, f"{srv.base}/simple/", "gamma")
        py = pyenv_python("3.11.7")
        if py.exists():
            vpy = make_venv(str(py), tmp_path / "pipvenv")
            pip_install(vpy, f"{srv.base}/simple/", "--use-feature=fast-deps", "gamma")
    finally:
        code, err = srv.stop()
    assert code == 0, err
    entries = log_entries(log)
    assert not any(e["path"].endswith(".metadata") for e in entries)
    assert any(e["status"] == "206" for e in entries), entries


# ------------------------------------------------------------------------------ latest pip


def newest_pip_wheel() -> Path | None:
    dirs = [
        os.environ.get("MORGAN_LIKE_TEST_WHEELS", ""),
        str(Path.home() / ".cache/morgan-like-test-wheels"),
    ]
    candidates = [
        p for d in dirs if d and Path(d).is_dir() for p in Path(d).glob("pip-*-py3-none-any.whl")
    ]
    candidates += list(PYENV.glob("3.*/lib/python3.*/ensurepip/_bundled/pip-*-py3-none-any.whl"))

    def key(p: Path):
        return tuple(int(x) for x in re.findall(r"\d+", p.name.split("-")[1])[:3])

    return max(candidates, key=key) if candidates else None


@pytest.mark.e2e
def test_newest_pip_from_our_server(tmp_path):
    """Upgrade pip from the tree itself (it carries a pip wheel), then install with it."""
    wheel = newest_pip_wheel()
    python = pyenv_python("3.13.0")
    if wheel is None or not python.exists():
        pytest.skip("no pip wheel available offline")
    with zipfile.ZipFile(wheel) as zf:
        assert any(n.endswith("METADATA") for n in zf.namelist())
    root = tmp_path / "tree"
    write_tree(root, MATRIX_DISTS, extra_wheels=[wheel])
    log = tmp_path / "access.log"
    srv = SubprocessServer(root, args=["--access-log", str(log), "--log-format", "combined"])
    try:
        vpy = make_venv(str(python), tmp_path / "venv")
        pip_install(vpy, f"{srv.base}/simple/", "--upgrade", "pip")
        want = wheel.name.split("-")[1]
        assert installed(vpy, "import pip; print(pip.__version__)") == want
        pip_install(vpy, f"{srv.base}/simple/", "gamma")
        assert installed(vpy, CHECK) == "2.0 1.0 0.5"
    finally:
        code, err = srv.stop()
    assert code == 0, err
    assert any(
        e["path"].endswith(".whl.metadata") and f"pip/{want}" in e["ua"] for e in log_entries(log)
    )


@pytest.mark.parametrize(
    ("version", "python"), python_params(PYTHONS[:1] + PYTHONS[-1:], ids=["oldest", "newest"])
)
def test_stops_promptly(version, python, mtree):
    """SIGTERM wakes the I/O loop at once (signal.set_wakeup_fd), whichever thread gets it."""
    need(python)
    srv = SubprocessServer(mtree, python=python, args=["-q"])
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", "/simple/")
    conn.getresponse().read()
    conn.close()
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        srv.proc.wait(5)
    elapsed = time.monotonic() - t0
    code, err = srv.stop()
    assert code == 0, err
    assert elapsed < 0.8
