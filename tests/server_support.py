"""Helpers for the server tests: a tree written by the real TreeWriter, and a running
server.py (in-process or as a subprocess of any interpreter).

write_tree() only places the distribution files under ``packages/``; the pages,
the PEP 658 ``.metadata`` files, the root pages and ``manifest.json`` come from
morgan_like.tree (writer + publish), so the server is tested against what ``mirror``
produces.
The tree also gets ``morgan.ini``, ``server.py`` and a hidden ``.morgan-like/``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from morgan_like.dists.links import RemoteFile
from morgan_like.dists.metadata import parse_core_metadata
from morgan_like.modes.serve import server_source
from morgan_like.tree.layout import package_relpath
from morgan_like.tree.publish import publish
from morgan_like.tree.state import TreeState
from morgan_like.tree.writer import TreeWriter

from .distbuilder import make_wheel, package_name, read_wheel_metadata

REPO = Path(__file__).resolve().parent.parent
SERVER_PY = REPO / "server.py"

UPLOAD_TIME = "2024-01-02T03:04:05.123456Z"
SERIAL = 1


@dataclass
class Dist:
    name: str
    version: str
    requires: list[str] = field(default_factory=list)
    requires_python: str | None = None
    yanked: bool | str = False
    payload: bytes = b""


@dataclass
class BuiltFile:
    project: str
    filename: str
    relpath: str
    sha256: str
    size: int
    metadata_sha256: str | None


def _listed(path: Path, **attrs) -> RemoteFile:
    """The RemoteFile of a file placed at packages/<normalized>/<filename> (url: any)."""
    data = path.read_bytes()
    return RemoteFile(
        filename=path.name,
        url=path.as_uri(),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        upload_time=UPLOAD_TIME,
        **attrs,
    )


def write_tree(
    root: Path, dists: list[Dist], *, sdist_for: tuple[str, ...] = (), extra_wheels: list[Path] = ()
) -> dict:
    """Write a complete tree; returns {"files": [BuiltFile...], "projects": [normalized...]}.

    ``sdist_for``: normalized names whose dists also get a (fake, non-tarball) sdist.
    ``extra_wheels``: existing wheel files to include as they are (e.g. a pip wheel).
    """
    root.mkdir(parents=True, exist_ok=True)
    by_project: dict[str, list[RemoteFile]] = {}
    for whl in extra_wheels:
        project = canonicalize_name(whl.name.split("-")[0])
        placed = root / package_relpath(project, whl.name)
        placed.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(whl, placed)
        meta = parse_core_metadata(read_wheel_metadata(placed), whl.name)
        rf = _listed(placed, requires_python=meta.requires_python)
        by_project.setdefault(project, []).append(rf)
    for d in dists:
        project = canonicalize_name(d.name)
        pkgdir = root / "packages" / project
        files = {f"{package_name(d.name)}/payload.bin": d.payload} if d.payload else None
        wheel = make_wheel(
            pkgdir,
            d.name,
            d.version,
            requires_dist=d.requires,
            requires_python=d.requires_python,
            files=files,
        )
        attrs = {"requires_python": d.requires_python, "yanked": d.yanked}
        by_project.setdefault(project, []).append(_listed(wheel, **attrs))
        if project in sdist_for:
            sdist = pkgdir / f"{project.replace('-', '_')}-{d.version}.tar.gz"
            sdist.write_bytes(b"\x1f\x8b not really a tarball " + sdist.name.encode())
            by_project[project].append(_listed(sdist, **attrs))

    with TreeState(root) as state:
        writer = TreeWriter(root, state)
        for project, files in by_project.items():
            writer.write_project(project, files, last_serial=SERIAL)
        publish(
            writer,
            server=server_source().read_bytes(),
            config=b"[env.test]\npython_version = 3.11\n[requirements]\n",
        )
        assert not writer.problems, writer.problems
        records = {}
        for project, files in by_project.items():
            for rf in files:
                rel = package_relpath(project, rf.filename)
                records[rel] = state.get(rel)
                records[rel + ".metadata"] = state.get(rel + ".metadata")

    hidden = root / ".morgan-like"
    hidden.mkdir(exist_ok=True)
    for leftover in hidden.glob("state.db*"):
        leftover.unlink()
    (hidden / "state.db").write_bytes(b"SQLite format 3\x00secret-state")

    projects = sorted(by_project)
    built = []
    for project in projects:
        for rf in by_project[project]:
            relpath = package_relpath(project, rf.filename)
            entry = records[relpath]
            meta = records[relpath + ".metadata"]
            assert entry is not None
            built.append(
                BuiltFile(
                    project,
                    rf.filename,
                    relpath,
                    entry.sha256,
                    entry.size,
                    meta.sha256 if meta else None,
                )
            )
    return {"files": built, "projects": projects}


def write_manifest(root: Path) -> None:
    """Re-hash the top-level files manifest.json lists (after a test edited some) and save it."""
    with TreeState(root) as state:
        writer = TreeWriter(root, state)
        for relpath, _record in state.top_level():
            state.record_file(relpath)
        writer.write_manifest()


# ---------------------------------------------------------------------------------------
# Running the server
# ---------------------------------------------------------------------------------------


def load_server_module():
    from morgan_like.modes.serve import load_server

    return load_server()


class InProcessServer:
    """server.py's IndexServer on a thread, on 127.0.0.1 and a free port."""

    def __init__(self, root: Path, **opts):
        mod = load_server_module()
        self.mod = mod
        self.server = mod.IndexServer(str(root), "127.0.0.1", 0, **opts)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"{self.server.scheme}://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(15)


_STARTUP = re.compile(r"bound to (\S+):(\d+)")


class SubprocessServer:
    """``<python> server.py -i ROOT -H 127.0.0.1 -p 0 ARGS`` with its startup line parsed."""

    def __init__(
        self,
        root: Path,
        python: str = sys.executable,
        args: list[str] = (),
        script: Path | None = None,
        cwd: Path | None = None,
    ):
        self.root = root
        cmd = [python, str(script or SERVER_PY)]
        if root is not None:
            cmd += ["-i", str(root)]
        cmd += ["-H", "127.0.0.1", "-p", "0", *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=str(cwd) if cwd else None,
        )
        deadline = time.monotonic() + 30
        line = b""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = _STARTUP.search(line.decode("utf-8", "replace"))
            if m:
                self.startup_line = line.decode()
                self.port = int(m.group(2))
                break
        else:
            line = b""
        if not getattr(self, "port", None):
            self.proc.kill()
            out, err = self.proc.communicate()
            raise RuntimeError(f"server did not start: {line!r} {out!r} {err!r}")
        # keep draining stdout (access log) so the server never blocks on a full pipe
        self.log_lines: list[str] = []
        self._drain = threading.Thread(target=self._read_stdout, daemon=True)
        self._drain.start()

    def _read_stdout(self):
        for raw in self.proc.stdout:
            self.log_lines.append(raw.decode("utf-8", "replace"))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig=signal.SIGTERM, timeout: float = 20) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._drain.join(5)
        err = self.proc.stderr.read().decode("utf-8", "replace")
        self.proc.stderr.close()
        self.proc.stdout.close()
        return self.proc.returncode, err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def raw_request(port: int, data: bytes, timeout: float = 10.0, read_all: bool = True) -> bytes:
    """Send raw bytes, return everything the server sends until it closes (or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if not read_all:
                    break
        except socket.timeout:
            pass
    return b"".join(chunks)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
