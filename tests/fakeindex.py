"""A fake upstream package index on 127.0.0.1 so that no test touches the internet.

It serves the distributions tests build with ``tests.distbuilder`` the way PyPI
does: PEP 503 HTML and PEP 691 JSON pages chosen by Accept, PEP 658 ``.metadata``
files, HEAD and single byte ranges, a serial per project.  Faults (latency,
failing, truncated, corrupt or drip-fed responses) can be injected per path, a
project page can be replaced by any bytes (odd JSON, hostile entries, a gzip
bomb), and every request is logged so tests can assert what a client fetched.

    with FakeIndex() as index:
        index.add(make_wheel(tmp, "foo", "1.0"))
        pip install --index-url index.url foo
"""

from __future__ import annotations

import base64
import email.utils
import gzip
import hashlib
import html
import json
import os
import socket
import tarfile
import threading
import time
import xmlrpc.client
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.parser import HeaderParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from .distbuilder import read_sdist_pkg_info, read_wheel_metadata

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
V1_HTML_TYPE = "application/vnd.pypi.simple.v1+html"
TEXT_HTML_TYPE = "text/html"
AUTO: Any = object()  # "derive it": default of add()'s upload_time and requires_python
LAST_MODIFIED = "Wed, 01 Jan 2020 00:00:00 GMT"
_EPOCH = datetime(2020, 1, 1, tzinfo=timezone.utc)
_INVERT = bytes(255 - i for i in range(256))


class Request(NamedTuple):
    """One logged request; a plain tuple (method, path, headers, status, bytes_sent)."""

    method: str
    path: str
    headers: dict[str, str]
    status: int
    bytes_sent: int


class Dist(NamedTuple):
    """A registered distribution file and everything its index entry says about it."""

    filename: str
    project: str
    version: str | None
    path: Path
    sha256: str
    size: int
    requires_python: str | None
    yanked: bool | str
    upload_time: str | None
    metadata: bytes | Path | None  # served as <file>.metadata (PEP 658) when not None
    serial: int
    metadata_sha256: str | None = None
    listed_size: int | None = None  # what pages say, when it should differ from the file
    provenance: bytes | None = None  # PEP 740, served at provenance_path() when not None

    @property
    def page_size(self) -> int:
        return self.size if self.listed_size is None else self.listed_size


def negotiate(accept: str | None, offers: list[str]) -> str | None:
    """PEP 691 content negotiation: q-values decide, ties go to the earlier offer."""
    if not accept:
        return TEXT_HTML_TYPE if TEXT_HTML_TYPE in offers else offers[0]
    best: dict[str, tuple[int, float]] = {}  # offer -> (specificity, q) of its best range
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        media = media.lower().replace(".latest+", ".v1+")
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        for offer in offers:
            if media == offer:
                spec = 3
            elif media == offer.split("/")[0] + "/*":
                spec = 2
            elif media == "*/*":
                spec = 1
            else:
                continue
            if spec > best.get(offer, (0, 0.0))[0]:
                best[offer] = (spec, q)
    scored = [(best[o][1], -i, o) for i, o in enumerate(offers) if o in best and best[o][1] > 0]
    return max(scored)[2] if scored else None


def _parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """(start, end inclusive) for one ``bytes=`` range; None = ignore it; False = 416."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, sep, last = spec.strip().partition("-")
    if not sep:
        return None
    try:
        if not first:
            n = int(last)
            return (max(0, size - n), size - 1) if n > 0 and size else False
        start = int(first)
        end = int(last) if last else max(start, size - 1)
    except ValueError:
        return None
    if start > end:
        return None  # syntactically invalid: ignored, the whole file is sent
    if start >= size:
        return False
    return start, min(end, size - 1)


class FakeIndex:
    """A threaded HTTP/1.1 index on 127.0.0.1; see the module docstring."""

    def __init__(
        self,
        *,
        json: bool = True,
        html: bool = True,
        pep658: bool = True,
        ranges: bool = True,
        latency: float = 0.0,
        relative_urls: bool = False,
        gzip_pages: bool = True,
    ) -> None:
        self.json, self.html, self.pep658, self.ranges = json, html, pep658, ranges
        self.latency = latency
        self.relative_urls = relative_urls
        self.gzip_pages = gzip_pages
        # Pages carry ETag and Last-Modified and answer conditional requests with 304;
        # False: neither, like an upstream that sends no validators.
        self.page_validators = True
        # Serial lists besides the root index: /local.json + /local.db.serial (another
        # mirror's), and XML-RPC list_packages_with_serial at /pypi.
        self.local_json = False
        self.xmlrpc = False
        # False: no serial anywhere (no _last-serial, <!--SERIAL n--> or X-PyPI-Last-Serial),
        # and no sizes on pages: a plain PEP 503 index such as pypiserver.
        self.serials = True
        self.sizes = True
        # path -> (status, Location): e.g. pypiserver's 303 to another index for a project
        # it does not have.
        self.redirects: dict[str, tuple[int, str]] = {}
        # (user, password): every request without them gets a 401, as a private index answers.
        self.auth: tuple[str, str] | None = None
        self.serial = 0
        self.projects: dict[str, dict[str, Dist]] = {}  # normalized -> filename -> Dist
        self.files: dict[str, Dist] = {}
        # A mutable catalogue, as a full mirror sees one: every change to a project
        # (new file, deletion, yank, status) bumps the index serial and the project's.
        self._project_serials: dict[str, int] = {}
        self.statuses: dict[str, tuple[str, str | None]] = {}  # PEP 792
        self.tracks: dict[str, tuple[list[str], list[str]]] = {}  # PEP 708
        self._stale: dict[str, list[Any]] = {}  # norm -> [times, json, html, serial]
        self._lock = threading.Lock()
        self._idle = threading.Condition()
        self._inflight = 0
        self._log: list[Request] = []
        self._started: list[str] = []  # paths as their requests arrive (the log: as they end)
        self._faults: dict[tuple[str, str], list[Any]] = {}  # (kind, path) -> [times, status]
        self._raw_pages: dict[str, tuple[bytes, str, str | None]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> FakeIndex:
        handler = type("Handler", (_Handler,), {"index": self})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler, bind_and_activate=False)
        server.daemon_threads = True
        server.request_queue_size = 128
        server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        server.server_bind()
        server.server_activate()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeIndex:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeIndex not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The index URL to give clients (``--index-url``)."""
        return f"{self.base_url}/simple/"

    def file_url(self, filename: str) -> str:
        return f"{self.base_url}/files/{quote(filename)}"

    def provenance_path(self, filename: str) -> str:
        """Where a file's provenance is served: PyPI's integrity API path."""
        d = self.files[filename]
        return f"/integrity/{d.project}/{d.version}/{filename}/provenance"

    # -- content ---------------------------------------------------------------------
    def add(
        self,
        path: str | Path,
        *,
        yanked: bool | str = False,
        upload_time: str | datetime | None = AUTO,
        serve_metadata: bool | bytes | Path | None = None,
        requires_python: str | None = AUTO,
        project: str | None = None,
        listed_size: int | None = None,
        provenance: bytes | Path | None = None,
    ) -> str:
        """Register a dist file under its project; return its absolute URL.

        ``upload_time``: AUTO = a made-up time rising with the serial, None = left out.
        ``serve_metadata``: None = wheels only; bytes = serve these bytes instead; a Path =
        serve that file (streamed, for huge ones).
        ``requires_python``: AUTO = the dist's own Requires-Python, None = left out.
        ``listed_size``: the size pages give, instead of the file's (a lying index).
        ``provenance``: PEP 740 provenance (bytes or a file), listed on the pages and served
        where PyPI serves it (``/integrity/<project>/<version>/<filename>/provenance``).
        """
        if isinstance(provenance, Path):
            provenance = provenance.read_bytes()
        path = Path(path)
        filename = path.name
        data_hash, size = hashlib.sha256(), 0
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                data_hash.update(chunk)
                size += len(chunk)
        try:  # a deliberately broken file needs an explicit project=
            if filename.endswith(".whl"):
                name, ver, _build, _tags = parse_wheel_filename(filename)
            else:
                name, ver = parse_sdist_filename(filename)
            version: str | None = str(ver)
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            if project is None:
                raise
            name, version = project, None
        try:
            if filename.endswith(".whl"):
                # Only the headers, unless they are served: a zip bomb stays unread.
                full = serve_metadata is True or serve_metadata is None
                raw = read_wheel_metadata(path, -1 if full else 1 << 20)
            else:
                raw = read_sdist_pkg_info(path)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, tarfile.TarError):
            raw = None
        headers = HeaderParser().parsestr(raw.decode("utf-8", "replace")) if raw else None
        if requires_python is AUTO:
            requires_python = headers.get("Requires-Python") if headers else None
        if serve_metadata is None:
            serve_metadata = filename.endswith(".whl")
        metadata = serve_metadata if isinstance(serve_metadata, (bytes, Path)) else None
        if serve_metadata is True:
            metadata = raw
        metadata_sha256 = None
        if isinstance(metadata, Path):
            digest = hashlib.sha256()
            with open(metadata, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            metadata_sha256 = digest.hexdigest()
        elif metadata is not None:
            metadata_sha256 = hashlib.sha256(metadata).hexdigest()
        norm = canonicalize_name(project or name)
        with self._lock:
            self.serial += 1
            if upload_time is AUTO:
                upload_time = _EPOCH + timedelta(minutes=self.serial)
            if isinstance(upload_time, datetime):
                upload_time = upload_time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            dist = Dist(
                filename, norm, version, path, data_hash.hexdigest(), size,
                requires_python, yanked, upload_time, metadata, self.serial,
                metadata_sha256, listed_size, provenance,
            )  # fmt: skip
            self.projects.setdefault(norm, {})[filename] = dist
            self.files[filename] = dist
            self._project_serials[norm] = self.serial
        return self.file_url(filename)

    def add_project(self, name: str) -> None:
        """An (empty) project page, e.g. for a project whose files were all deleted."""
        with self._lock:
            self.serial += 1
            self.projects.setdefault(canonicalize_name(name), {})
            self._project_serials[canonicalize_name(name)] = self.serial

    def _bump(self, norm: str) -> None:
        """Under the lock: a change to ``norm`` takes the next serial."""
        self.serial += 1
        self._project_serials[norm] = self.serial

    def touch(self, name: str) -> None:
        """A change no file shows (PyPI: a description edited, a role granted): only the
        project's serial moves, and with it the page's bytes (``_last-serial``)."""
        with self._lock:
            self._bump(canonicalize_name(name))

    def remove(self, filename: str) -> None:
        """Delete one file (its project page stays, listing the rest)."""
        with self._lock:
            dist = self.files.pop(filename)
            del self.projects[dist.project][filename]
            self._bump(dist.project)

    def remove_project(self, name: str) -> None:
        """Delete a whole project: gone from the root, the serial lists and its page (404)."""
        norm = canonicalize_name(name)
        with self._lock:
            for filename in self.projects.pop(norm):
                self.files.pop(filename, None)
            self._project_serials.pop(norm, None)
            self.statuses.pop(norm, None)
            self.serial += 1

    def yank(self, filename: str, reason: bool | str = True) -> None:
        """Yank (``reason`` True or a text) or un-yank (False) one file."""
        with self._lock:
            dist = self.files[filename]._replace(yanked=reason)
            self.files[filename] = self.projects[dist.project][filename] = dist
            self._bump(dist.project)

    def set_status(self, name: str, status: str | None, reason: str | None = None) -> None:
        """PEP 792 status marker (None: active, no marker); quarantined lists no files."""
        norm = canonicalize_name(name)
        with self._lock:
            if status is None:
                self.statuses.pop(norm, None)
            else:
                self.statuses[norm] = (status, reason)
            self._bump(norm)

    def set_tracks(self, name: str, tracks: list[str], alternates: list[str] = ()) -> None:  # type: ignore[assignment]
        """PEP 708 ``tracks`` and ``alternate-locations`` of a project's page."""
        norm = canonicalize_name(name)
        with self._lock:
            self.tracks[norm] = (list(tracks), list(alternates))
            self._bump(norm)

    def stale(self, name: str, times: int = 1) -> None:
        """The next ``times`` requests of the project's page get the page as it is now
        (body and serial), whatever changes after: a CDN serving a cached page."""
        norm = canonicalize_name(name)
        with self._lock:
            self._stale[norm] = [
                times,
                self.project_json(norm),
                self.project_html(norm),
                self.project_serial(norm),
            ]

    def project_serial(self, name: str) -> int:
        norm = canonicalize_name(name)
        if norm in self._project_serials:
            return self._project_serials[norm]
        dists = self.projects.get(norm, {})
        return max((d.serial for d in dists.values()), default=0)

    # -- faults ----------------------------------------------------------------------
    @staticmethod
    def _key(target: str) -> str:
        """A URL path from a URL, a path, or a bare filename (= /files/<filename>)."""
        if "://" in target:
            return unquote(urlsplit(target).path)
        return target if target.startswith("/") else "/files/" + target

    def _inject(self, kind: str, target: str, times: int | None, status: int = 0) -> None:
        with self._lock:
            self._faults[(kind, self._key(target))] = [times, status]

    def fail(self, path_or_filename: str, times: int = 1, status: int = 503) -> None:
        """The next ``times`` requests of this path (or /files/<filename>) get ``status``."""
        self._inject("fail", path_or_filename, times, status)

    def truncate(self, filename: str, times: int | None = None) -> None:
        """Send half the body (Content-Length stays full), then close; None = every time."""
        self._inject("truncate", filename, times)

    def corrupt(self, filename: str, times: int | None = None) -> None:
        """Serve bytes that differ from the advertised sha256 (same length)."""
        self._inject("corrupt", filename, times)

    def drip(self, filename: str, interval: float, times: int | None = None) -> None:
        """Send the body one byte every ``interval`` seconds (headers at once)."""
        self._inject("drip", filename, times, 0)
        with self._lock:
            self._faults[("drip", self._key(filename))].append(interval)

    def raw_page(
        self,
        name: str,
        body: bytes,
        content_type: str = JSON_TYPE,
        content_encoding: str | None = None,
    ) -> None:
        """Answer the project page of ``name`` with exactly ``body``, whatever the Accept.

        For hostile or malformed pages: odd JSON shapes, unsafe filenames, a gzip bomb
        (``content_encoding="gzip"`` with a pre-compressed body).
        """
        norm = canonicalize_name(name)
        with self._lock:
            self.serial += 1
            self.projects.setdefault(norm, {})
            self._raw_pages[norm] = (body, content_type, content_encoding)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take(self, kind: str, path: str) -> Any:
        """The status (a drip: its interval) of a fault due on this request, else None."""
        with self._lock:
            entry = self._faults.get((kind, path))
            if entry is None or (entry[0] is not None and entry[0] <= 0):
                return None
            if entry[0] is not None:
                entry[0] -= 1
            return entry[-1]

    # -- observability ---------------------------------------------------------------
    def _settle(self, timeout: float = 2.0) -> None:
        """Wait for requests still being answered, so a log read right after a client returns is complete."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._inflight and time.monotonic() < deadline:
                self._idle.wait(0.05)

    @property
    def requests(self) -> list[Request]:
        """A snapshot of every request so far: (method, path, headers, status, bytes_sent)."""
        self._settle()
        with self._lock:
            return list(self._log)

    @property
    def bytes_sent(self) -> int:
        self._settle()
        with self._lock:
            return sum(r.bytes_sent for r in self._log)

    def started(self) -> list[str]:
        """The path of every request so far, in arrival order, answered or not (a slow or
        dripped answer is in ``requests`` only once it ends)."""
        with self._lock:
            return list(self._started)

    def _begin(self, path: str = "") -> None:
        with self._lock:
            self._started.append(path)
        with self._idle:
            self._inflight += 1

    def reset_log(self) -> None:
        """Forget the requests so far, those still being answered included (a client can
        have its response before the server logs it)."""
        self._settle()
        with self._lock:
            self._log.clear()

    def _record(self, request: Request) -> None:
        with self._lock:
            self._log.append(request)
        with self._idle:
            self._inflight -= 1
            self._idle.notify_all()

    # -- pages -----------------------------------------------------------------------
    def _href(self, filename: str) -> str:
        return f"../../files/{quote(filename)}" if self.relative_urls else self.file_url(filename)

    def _listed(self, norm: str) -> list[Dist]:
        if self.statuses.get(norm, ("",))[0] == "quarantined":
            return []
        return list(self.projects[norm].values())

    def project_json(self, norm: str) -> bytes:
        dists = self._listed(norm)
        files = []
        for d in dists:
            entry: dict[str, Any] = {
                "filename": d.filename,
                "url": self._href(d.filename),
                "hashes": {"sha256": d.sha256},
            }
            if d.requires_python is not None:
                entry["requires-python"] = d.requires_python
            entry["yanked"] = d.yanked
            if self.pep658 and d.metadata is not None:
                entry["core-metadata"] = {"sha256": d.metadata_sha256}
            if self.sizes:
                entry["size"] = d.page_size
            if d.upload_time is not None:
                entry["upload-time"] = d.upload_time
            if d.provenance is not None:
                entry["provenance"] = self.base_url + quote(self.provenance_path(d.filename))
            files.append(entry)
        versions = sorted({d.version for d in dists if d.version}, key=_version_key)
        meta: dict[str, Any] = {"api-version": "1.4"}
        if self.serials:
            meta["_last-serial"] = self.project_serial(norm)
        doc: dict[str, Any] = {"meta": meta, "name": norm}
        if norm in self.statuses:
            status, reason = self.statuses[norm]
            doc["project-status"] = {"status": status, **({"reason": reason} if reason else {})}
        if norm in self.tracks:
            doc["tracks"], doc["alternate-locations"] = self.tracks[norm]
        doc["versions"] = versions
        doc["files"] = files
        return json.dumps(doc).encode()

    def project_html(self, norm: str) -> bytes:
        lines = [
            "<!DOCTYPE html>",
            '<html><head><meta name="pypi:repository-version" content="1.1">',
        ]
        if norm in self.statuses:
            status, reason = self.statuses[norm]
            lines.append(f'<meta name="pypi:project-status" content="{html.escape(status)}">')
            if reason:
                lines.append(
                    f'<meta name="pypi:project-status-reason" content="{html.escape(reason)}">'
                )
        for key, urls in zip(("tracks", "alternate-locations"), self.tracks.get(norm, ([], []))):
            lines += [f'<meta name="pypi:{key}" content="{html.escape(u)}">' for u in urls]
        lines.append(f"<title>Links for {norm}</title></head><body><h1>Links for {norm}</h1>")
        for d in self._listed(norm):
            attrs = [f'href="{html.escape(self._href(d.filename))}#sha256={d.sha256}"']
            if d.requires_python is not None:
                attrs.append(f'data-requires-python="{html.escape(d.requires_python)}"')
            if d.yanked is not False:
                reason = "" if d.yanked is True else str(d.yanked)
                attrs.append(f'data-yanked="{html.escape(reason)}"')
            if self.pep658 and d.metadata is not None:
                digest = d.metadata_sha256
                attrs.append(f'data-core-metadata="sha256={digest}"')
                attrs.append(f'data-dist-info-metadata="sha256={digest}"')
            if self.sizes:
                attrs.append(f'data-size="{d.page_size}"')
            if d.upload_time is not None:
                attrs.append(f'data-upload-time="{html.escape(d.upload_time)}"')
            if d.provenance is not None:
                url = self.base_url + quote(self.provenance_path(d.filename))
                attrs.append(f'data-provenance="{html.escape(url)}"')
            lines.append(f"<a {' '.join(attrs)}>{html.escape(d.filename)}</a><br>")
        lines.append("</body></html>")
        if self.serials:
            lines.append(f"<!--SERIAL {self.project_serial(norm)}-->")
        lines.append("")
        return "\n".join(lines).encode()

    def root_json(self) -> bytes:
        if not self.serials:
            names = [{"name": n} for n in self.projects]
            return json.dumps({"meta": {"api-version": "1.1"}, "projects": names}).encode()
        projects = [{"name": n, "_last-serial": self.project_serial(n)} for n in self.projects]
        doc = {"meta": {"api-version": "1.1", "_last-serial": self.serial}, "projects": projects}
        return json.dumps(doc).encode()

    def root_html(self) -> bytes:
        links = "".join(f'<a href="{n}/">{n}</a><br>\n' for n in self.projects)
        return (
            '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.1">'
            f"<title>Simple index</title></head><body>\n{links}</body></html>\n"
            + (f"<!--SERIAL {self.serial}-->\n" if self.serials else "")
        ).encode()


def _version_key(version: str) -> tuple[int, Any]:
    try:
        return 0, Version(version)
    except InvalidVersion:
        return 1, version


class _Handler(BaseHTTPRequestHandler):
    """Routes /simple/ pages and /files/ downloads of ``index``."""

    index: FakeIndex
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm and
        # the client's delayed ACK add ~40 ms to every response, on top of ``latency``.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is ``index.requests``."""

    def do_GET(self) -> None:
        self._handle(head=False)

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def do_POST(self) -> None:
        """XML-RPC at /pypi: list_packages_with_serial, as Warehouse answers it."""
        self._status, self._sent = 0, 0
        self.index._begin()
        try:
            self._xmlrpc()
        finally:
            self.index._record(
                Request(self.command, self.path, dict(self.headers), self._status, self._sent)
            )

    def _xmlrpc(self) -> None:
        index = self.index
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self._authorized():
            return None
        if urlsplit(self.path).path != "/pypi" or not index.xmlrpc:
            return self._send(404, b"no xmlrpc here\n", "text/plain", False)
        _params, method = xmlrpc.client.loads(body)
        if method != "list_packages_with_serial":
            fault = xmlrpc.client.Fault(1, f"unknown method {method}")
            return self._send(200, xmlrpc.client.dumps(fault).encode(), "text/xml", False)
        with index._lock:
            result = {n: index.project_serial(n) for n in index.projects}
        answer = xmlrpc.client.dumps((result,), methodresponse=True).encode()
        self._send(200, answer, "text/xml", False)

    def _handle(self, head: bool) -> None:
        self._status, self._sent = 0, 0
        self.index._begin(self.path)
        try:
            self._route(head)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self.index._record(
                Request(self.command, self.path, dict(self.headers), self._status, self._sent)
            )

    def _authorized(self, head: bool = False) -> bool:
        """True when the index wants no credentials or the request carries them; else a 401 is sent."""
        if self.index.auth is None:
            return True
        token = base64.b64encode(":".join(self.index.auth).encode()).decode()
        if self.headers.get("Authorization") == f"Basic {token}":
            return True
        challenge = {"WWW-Authenticate": 'Basic realm="fake"'}
        self._send(401, b"authentication required\n", "text/plain", head, challenge)
        return False

    def _route(self, head: bool) -> None:
        index = self.index
        if index.latency:
            time.sleep(index.latency)
        if not self._authorized(head):
            return None
        split = urlsplit(self.path)
        path = unquote(split.path)
        status = index._take("fail", path)
        if status is not None:
            return self._send(status, b"injected failure\n", "text/plain", head)
        if path in index.redirects:
            status, location = index.redirects[path]
            return self._send(status, b"", "text/plain", head, {"Location": location})
        if index.local_json and path in ("/local.json", "/local.db.serial"):
            with index._lock:
                serials = {n: index.project_serial(n) for n in index.projects}
                body = (
                    json.dumps(serials).encode()
                    if path == "/local.json"
                    else f"{index.serial}\n".encode()
                )
            return self._send(200, body, "application/json", head)
        if path == "/simple" or path == "/simple/":
            if path == "/simple":
                return self._redirect("/simple/", split.query)
            return self._page(None, split.query, head)
        if path.startswith("/simple/"):
            name = path[len("/simple/") :]
            norm = canonicalize_name(name.rstrip("/"))
            if name != norm + "/":
                return self._redirect(f"/simple/{norm}/", split.query)
            if norm not in index.projects:
                return self._send(404, b"no such project\n", "text/plain", head)
            return self._page(norm, split.query, head)
        if path.startswith("/files/"):
            return self._file(path, path[len("/files/") :], head)
        if path.startswith("/integrity/") and path.endswith("/provenance"):
            dist = index.files.get(path.split("/")[-2])
            if (
                dist is None
                or dist.provenance is None
                or path != index.provenance_path(dist.filename)
            ):
                return self._send(404, b"no provenance\n", "text/plain", head)
            return self._send(200, dist.provenance, "application/json", head)
        return self._send(404, b"not found\n", "text/plain", head)

    def _redirect(self, target: str, query: str) -> None:
        location = self.index.base_url + target + (f"?{query}" if query else "")
        self._send(301, b"", "text/plain", False, {"Location": location})

    def _page(self, norm: str | None, query: str, head: bool) -> None:
        index = self.index
        offers = ([JSON_TYPE] if index.json else []) + (
            [V1_HTML_TYPE, TEXT_HTML_TYPE] if index.html else []
        )
        if not index.json:
            chosen: str | None = TEXT_HTML_TYPE
        else:
            fmt = parse_qs(query).get("format")
            # An unquoted "+" in ?format= arrives as a space.
            wanted = fmt[0].replace(" ", "+") if fmt else self.headers.get("Accept")
            chosen = negotiate(wanted, offers)
        raw = index._raw_pages.get(norm) if norm is not None else None
        if raw is not None:
            body, ctype, encoding = raw
            extra = {"Content-Encoding": encoding} if encoding else {}
            return self._send(200, body, ctype, head, extra)
        if chosen is None:
            return self._send(406, b"not acceptable\n", "text/plain", head)
        with index._lock:  # a test may add() files while a client reads pages
            stale = index._stale.get(norm) if norm is not None else None
            if stale is not None and stale[0] > 0:
                stale[0] -= 1
                body = stale[1] if chosen == JSON_TYPE else stale[2]
                serial = stale[3]
            elif chosen == JSON_TYPE:
                body = index.root_json() if norm is None else index.project_json(norm)
                serial = index.serial if norm is None else index.project_serial(norm)
            else:
                body = index.root_html() if norm is None else index.project_html(norm)
                serial = index.serial if norm is None else index.project_serial(norm)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        # Last-Modified moves with the serial, as a page changes only when it does.
        modified = email.utils.formatdate(1_700_000_000 + serial, usegmt=True)
        headers = {"Vary": "Accept"}
        if index.serials:
            headers["X-PyPI-Last-Serial"] = str(serial)
        if index.page_validators:
            headers.update({"ETag": etag, "Last-Modified": modified, "Cache-Control": "max-age=0"})
            if_none_match = self.headers.get("If-None-Match")
            if if_none_match == etag or (
                if_none_match is None and self.headers.get("If-Modified-Since") == modified
            ):
                return self._send(304, b"", None, True, headers)
        if index.gzip_pages and "gzip" in (self.headers.get("Accept-Encoding") or ""):
            # Like PyPI: pages (never files) are compressed for clients that ask.
            body = gzip.compress(body, mtime=0)
            headers["Content-Encoding"] = "gzip"
            headers["Vary"] = "Accept, Accept-Encoding"
        self._send(200, body, chosen, head, headers)

    def _start(self, status: int, length: int | None, ctype: str | None, headers: dict) -> None:
        """Status line and headers; Content-Length is always exact (keep-alive)."""
        self._status = status
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def _send(self, status: int, body: bytes, ctype: str | None, head: bool, headers=None) -> None:
        self._start(status, None if status == 304 else len(body), ctype, headers or {})
        if not head and body:
            self.wfile.write(body)
            self._sent += len(body)

    def _file(self, path: str, name: str, head: bool) -> None:
        index = self.index
        dist = index.files.get(name)
        metadata = None
        if dist is None and name.endswith(".metadata"):
            dist = index.files.get(name[: -len(".metadata")])
            metadata = dist.metadata if dist is not None else None
            if metadata is None or not index.pep658:
                dist = None
        if dist is None:
            return self._send(404, b"no such file\n", "text/plain", head)
        if isinstance(metadata, Path):
            size = metadata.stat().st_size
        else:
            size = len(metadata) if metadata is not None else dist.size
        etag = f'"{dist.metadata_sha256 if metadata is not None else dist.sha256}"'
        headers = {"ETag": etag, "Last-Modified": LAST_MODIFIED}
        headers["Cache-Control"] = "max-age=365000000, immutable, public"
        start, end, status = 0, size - 1, 200
        if index.ranges:
            headers["Accept-Ranges"] = "bytes"
            if_range = self.headers.get("If-Range")
            wanted = self.headers.get("Range")
            if wanted and (if_range is None or if_range in (etag, LAST_MODIFIED)):
                parsed = _parse_range(wanted, size)
                if parsed is False:
                    headers["Content-Range"] = f"bytes */{size}"
                    return self._send(416, b"", "text/plain", head, headers)
                if parsed:
                    start, end = parsed
                    status = 206
                    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        if status == 200 and self.headers.get("If-None-Match") == etag:
            return self._send(304, b"", None, True, headers)
        length = end - start + 1
        self._start(status, length, "application/octet-stream", headers)
        if head:
            return
        truncated = index._take("truncate", path) is not None
        corrupt = index._take("corrupt", path) is not None
        drip = index._take("drip", path)
        limit = length // 2 if truncated else length
        for chunk in _read(dist.path if metadata is None else metadata, start, limit, corrupt):
            if drip is not None:
                return self._drip(chunk, drip)
            self.wfile.write(chunk)
            self._sent += len(chunk)
        if truncated:
            self.wfile.flush()
            self.close_connection = True

    def _drip(self, data: bytes, interval: float) -> None:
        """One byte every ``interval`` seconds until the client hangs up (or the data ends)."""
        self.close_connection = True
        for i in range(len(data)):
            self.wfile.write(data[i : i + 1])
            self.wfile.flush()
            self._sent += 1
            time.sleep(interval)


def _read(source: Path | bytes, start: int, length: int, corrupt: bool) -> Iterator[bytes]:
    """``length`` bytes from ``start``; with ``corrupt`` every byte is inverted."""
    if isinstance(source, bytes):
        chunks: Iterator[bytes] = iter([source[start : start + length]])
    else:
        chunks = _file_chunks(source, start, length)
    for chunk in chunks:
        yield chunk.translate(_INVERT) if corrupt else chunk


def _file_chunks(path: Path, start: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(start)
        while length > 0:
            chunk = f.read(min(length, 1 << 16))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


def serve_directory(directory: str | Path, **options: Any) -> FakeIndex:
    """A started FakeIndex serving every .whl / .tar.gz in ``directory`` (for benchmarks)."""
    index = FakeIndex(**options).start()
    for entry in sorted(os.listdir(directory)):
        if entry.endswith((".whl", ".tar.gz", ".zip")):
            index.add(Path(directory, entry))
    return index
