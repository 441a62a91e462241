"""Helpers for the server tests: a hand-built tree in the exact wire format, and a
running server.py (in-process or as a subprocess of any interpreter).

The tree follows ARCHITECTURE.md: ``simple/`` pages (HTML + JSON), ``packages/``
files with PEP 658 ``.metadata`` next to each wheel, ``manifest.json``,
``morgan.ini``, ``server.py`` and a hidden ``.morgan-like/`` state directory.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVER_PY = REPO / "server.py"

UPLOAD_TIME = "2024-01-02T03:04:05.123456Z"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(
    name: str,
    version: str,
    requires: list[str] = (),
    requires_python: str | None = None,
    payload: bytes = b"",
) -> tuple[str, bytes, bytes]:
    """A pure-Python wheel: (filename, wheel bytes, METADATA bytes)."""
    dist = re.sub(r"[-_.]+", "_", name)
    filename = f"{dist}-{version}-py3-none-any.whl"
    distinfo = f"{dist}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        meta.append(f"Requires-Python: {requires_python}")
    meta += [f"Requires-Dist: {r}" for r in requires]
    metadata = ("\n".join(meta) + "\n\n").encode()
    module = normalize(name).replace("-", "_")
    files = {
        f"{module}/__init__.py": f"__version__ = {version!r}\n".encode(),
        f"{distinfo}/METADATA": metadata,
        f"{distinfo}/WHEEL": b"Wheel-Version: 1.0\nGenerator: server-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n\n",
        f"{distinfo}/top_level.txt": f"{module}\n".encode(),
    }
    if payload:
        files[f"{module}/payload.bin"] = payload
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in files.items())
    record += f"{distinfo}/RECORD,,\n"
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED if payload else zipfile.ZIP_DEFLATED) as zf:
        for p, d in files.items():
            info = zipfile.ZipInfo(p, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, d)
        zf.writestr(zipfile.ZipInfo(f"{distinfo}/RECORD", date_time=(2024, 1, 1, 0, 0, 0)), record)
    return filename, buf.getvalue(), metadata


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


def wheel_metadata(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        name = next(
            n for n in zf.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1
        )
        return zf.read(name)


def write_tree(
    root: Path, dists: list[Dist], *, sdist_for: tuple[str, ...] = (), extra_wheels: list[Path] = ()
) -> dict:
    """Write a complete tree; returns {"files": [BuiltFile...], "projects": {...}}.

    ``extra_wheels``: existing wheel files to include as they are (e.g. a pip wheel).
    """
    root.mkdir(parents=True, exist_ok=True)
    by_project: dict[str, list[BuiltFile]] = {}
    display: dict[str, str] = {}
    meta_of: dict[str, tuple[str, str | None, bool | str]] = {}
    for whl in extra_wheels:
        dist_name, version = whl.name.split("-")[:2]
        norm = normalize(dist_name)
        display.setdefault(norm, dist_name)
        pkgdir = root / "packages" / norm
        pkgdir.mkdir(parents=True, exist_ok=True)
        data = whl.read_bytes()
        metadata = wheel_metadata(whl)
        (pkgdir / whl.name).write_bytes(data)
        (pkgdir / (whl.name + ".metadata")).write_bytes(metadata)
        rp = None
        for line in metadata.decode("utf-8", "replace").splitlines():
            if line.startswith("Requires-Python:"):
                rp = line.split(":", 1)[1].strip()
            if not line:
                break
        by_project.setdefault(norm, []).append(
            BuiltFile(
                norm,
                whl.name,
                f"packages/{norm}/{whl.name}",
                sha256(data),
                len(data),
                sha256(metadata),
            )
        )
        meta_of[whl.name] = (version, rp, False)
    for d in dists:
        norm = normalize(d.name)
        display.setdefault(norm, d.name)
        pkgdir = root / "packages" / norm
        pkgdir.mkdir(parents=True, exist_ok=True)
        filename, data, metadata = make_wheel(
            d.name, d.version, d.requires, d.requires_python, d.payload
        )
        (pkgdir / filename).write_bytes(data)
        (pkgdir / (filename + ".metadata")).write_bytes(metadata)
        bf = BuiltFile(
            norm, filename, f"packages/{norm}/{filename}", sha256(data), len(data), sha256(metadata)
        )
        by_project.setdefault(norm, []).append(bf)
        meta_of[filename] = (d.version, d.requires_python, d.yanked)
        if norm in sdist_for:
            sdist = f"{norm.replace('-', '_')}-{d.version}.tar.gz"
            sdata = b"\x1f\x8b not really a tarball " + sdist.encode()
            (pkgdir / sdist).write_bytes(sdata)
            sf = BuiltFile(norm, sdist, f"packages/{norm}/{sdist}", sha256(sdata), len(sdata), None)
            by_project[norm].append(sf)
            meta_of[sdist] = (d.version, d.requires_python, d.yanked)

    simple = root / "simple"
    simple.mkdir(exist_ok=True)
    projects = sorted(by_project)
    # root pages
    lines = [
        "<!DOCTYPE html>",
        "<html>",
        "  <head>",
        '    <meta name="pypi:repository-version" content="1.1">',
        "    <title>Simple index</title>",
        "  </head>",
        "  <body>",
    ]
    lines += [f'    <a href="{p}/">{html.escape(display[p])}</a><br>' for p in projects]
    lines += ["  </body>", "</html>", ""]
    (simple / "index.html").write_text("\n".join(lines), encoding="utf-8")
    root_json = {
        "meta": {"api-version": "1.1", "_last-serial": 1},
        "projects": [{"name": display[p], "_last-serial": 1} for p in projects],
    }
    (simple / "index.json").write_text(json.dumps(root_json, indent=1), encoding="utf-8")
    # project pages
    for p in projects:
        pdir = simple / p
        pdir.mkdir(exist_ok=True)
        lines = [
            "<!DOCTYPE html>",
            "<html>",
            "  <head>",
            '    <meta name="pypi:repository-version" content="1.1">',
            f"    <title>Links for {html.escape(p)}</title>",
            "  </head>",
            "  <body>",
            f"    <h1>Links for {html.escape(p)}</h1>",
        ]
        jfiles = []
        versions = []
        for bf in sorted(by_project[p], key=lambda b: b.filename):
            version, rp, yanked = meta_of[bf.filename]
            if version not in versions:
                versions.append(version)
            url = f"../../packages/{p}/{bf.filename}"
            attrs = [f'href="{url}#sha256={bf.sha256}"']
            if rp:
                attrs.append(f'data-requires-python="{html.escape(rp)}"')
            if yanked is not False:
                attrs.append(
                    f'data-yanked="{html.escape(yanked if isinstance(yanked, str) else "")}"'
                )
            if bf.metadata_sha256:
                attrs.append(f'data-core-metadata="sha256={bf.metadata_sha256}"')
                attrs.append(f'data-dist-info-metadata="sha256={bf.metadata_sha256}"')
            attrs.append(f'data-size="{bf.size}"')
            attrs.append(f'data-upload-time="{UPLOAD_TIME}"')
            lines.append(f"    <a {' '.join(attrs)}>{html.escape(bf.filename)}</a><br>")
            jf = {
                "filename": bf.filename,
                "url": url,
                "hashes": {"sha256": bf.sha256},
                "yanked": yanked,
                "size": bf.size,
                "upload-time": UPLOAD_TIME,
            }
            if rp:
                jf["requires-python"] = rp
            if bf.metadata_sha256:
                jf["core-metadata"] = {"sha256": bf.metadata_sha256}
            jfiles.append(jf)
        lines += ["  </body>", "</html>", "<!--SERIAL 1-->", ""]
        (pdir / "index.html").write_text("\n".join(lines), encoding="utf-8")
        pj = {
            "meta": {"api-version": "1.1", "_last-serial": 1},
            "name": p,
            "versions": versions,
            "files": jfiles,
        }
        (pdir / "index.json").write_text(json.dumps(pj, indent=1), encoding="utf-8")

    (root / "morgan.ini").write_text(
        "[env.test]\npython_version = 3.11\n[requirements]\n", encoding="utf-8"
    )
    shutil.copyfile(SERVER_PY, root / "server.py")
    hidden = root / ".morgan-like"
    hidden.mkdir(exist_ok=True)
    (hidden / "state.db").write_bytes(b"SQLite format 3\x00secret-state")
    write_manifest(root)
    return {"files": [bf for p in projects for bf in by_project[p]], "projects": projects}


def write_manifest(root: Path) -> dict:
    files = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if rel == "manifest.json":
                continue
            data = full.read_bytes()
            files[rel] = {"size": len(data), "sha256": sha256(data)}
    manifest = {"format": "morgan-like-manifest/1", "files": files}
    (root / "manifest.json").write_text(
        json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8"
    )
    return manifest


# ---------------------------------------------------------------------------------------
# Running the server
# ---------------------------------------------------------------------------------------


def load_server_module():
    from morgan_like.serve import load_server

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
