"""Core metadata of distributions, read from the cheapest source first.

For a remote wheel: the PEP 658 ``.metadata`` file, else two HTTP range reads of
the zip (its central directory, then the METADATA member), else the whole file.
For a local sdist (see sdist.py): PKG-INFO, requires.txt or pyproject.toml, but
only when they are static; we never guess.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.metadata import RawMetadata, parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from .errors import MetadataError, UpstreamError
from .links import RemoteFile
from .upstream import RangeError, UpstreamHTTPError

if TYPE_CHECKING:
    from .upstream import Upstream

# The tail read first: EOCD (22 bytes) + the longest archive comment (64 KiB) + zip64
# records, and for most wheels the whole central directory too.
TAIL_BYTES = 64 * 1024 + 1024
# What zipfile raises on broken, truncated or exotic (encrypted, unknown method) archives.
_ZIP_ERRORS = (zipfile.BadZipFile, EOFError, KeyError, OSError, NotImplementedError, RuntimeError)


@dataclass
class DistMetadata:
    """What the resolver needs from one distribution."""

    name: str
    version: str
    requires_dist: list[Requirement] = field(default_factory=list)
    requires_python: str | None = None
    provides_extra: list[str] = field(default_factory=list)
    raw: bytes | None = None  # a wheel's METADATA bytes (PEP 658 serves them verbatim)
    problems: list[str] = field(default_factory=list)
    source: str = "download"  # pep658 | zip-range | download | pkg-info | requires.txt | pyproject


def parse_metadata_fields(raw: bytes, origin: str) -> tuple[RawMetadata, list[str]]:
    """Lenient email-header parse: what packaging could not parse is kept, with a problem."""
    fields, unparsed = parse_email(raw)
    problems = []
    for key in ("name", "version", "requires_python"):
        values = unparsed.get(key)
        if values and key not in fields:
            fields[key] = values[0]  # type: ignore[literal-required]
            if len(values) > 1:
                problems.append(f"{origin}: {key} given {len(values)} times, used the first")
    for key in ("requires_dist", "provides_extra", "dynamic"):
        if unparsed.get(key):  # e.g. undecodable bytes: each line is judged on its own
            fields[key] = [*fields.get(key, []), *unparsed[key]]  # type: ignore[literal-required]
    return fields, problems


def error_line(exc: Exception) -> str:
    """packaging's parse errors span lines (a caret diagram); problems are one line each."""
    return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__


def requirements_from_lines(
    lines: list[str], origin: str, field_name: str = "Requires-Dist"
) -> tuple[list[Requirement], list[str]]:
    """Parse each line on its own, so one malformed line never loses the others."""
    reqs, problems = [], []
    for line in lines:
        try:
            reqs.append(Requirement(line))
        except InvalidRequirement as exc:
            problems.append(f"{origin}: skipped malformed {field_name} {line!r}: {error_line(exc)}")
    return reqs, problems


def parse_core_metadata(raw: bytes, origin: str, *, source: str = "download") -> DistMetadata:
    """METADATA / PKG-INFO bytes → DistMetadata; ``origin`` names the file in problems."""
    fields, problems = parse_metadata_fields(raw, origin)
    name = fields.get("name")
    version = fields.get("version")
    if not name or not version:
        raise MetadataError(f"{origin}: core metadata has no Name or Version")
    reqs, req_problems = requirements_from_lines(list(fields.get("requires_dist", [])), origin)
    problems += req_problems
    requires_python = fields.get("requires_python") or None
    if requires_python is not None:
        try:
            SpecifierSet(requires_python)
        except InvalidSpecifier as exc:
            problems.append(
                f"{origin}: ignored malformed Requires-Python {requires_python!r}: {error_line(exc)}"
            )
            requires_python = None
    return DistMetadata(
        name=name,
        version=version,
        requires_dist=reqs,
        requires_python=requires_python,
        provides_extra=list(fields.get("provides_extra", [])),
        raw=raw,
        problems=problems,
        source=source,
    )


# ----------------------------------------------------------------- wheels


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def dist_info_metadata_member(names: list[str], filename: str) -> str | None:
    """The ``*.dist-info/METADATA`` member matching the wheel's name-version, else the only one."""
    candidates = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
    try:
        project, version, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        project = version = None
    if project is not None:
        for member in candidates:
            stem = member.split("/", 1)[0][: -len(".dist-info")]
            dist_name, _, dist_version = stem.rpartition("-")
            if canonicalize_name(dist_name) == project and _same_version(
                dist_version, str(version)
            ):
                return member
    return candidates[0] if len(candidates) == 1 else None


def _read_wheel_zip(zf: zipfile.ZipFile, filename: str) -> bytes:
    member = dist_info_metadata_member(zf.namelist(), filename)
    if member is None:
        raise MetadataError(f"{filename}: no single *.dist-info/METADATA in the wheel")
    return zf.read(member)


def wheel_metadata_bytes(path: Path) -> bytes:
    """The exact bytes of a local wheel's METADATA (served byte-identical as PEP 658)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            return _read_wheel_zip(zf, path.name)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise MetadataError(f"{path.name}: cannot read wheel: {exc}") from exc


class _RemoteZip(io.RawIOBase):
    """A read-only, seekable view of a remote file that fetches only the ranges read.

    zipfile does the zip parsing (zip64, comments, methods, CRCs); we only make
    sure each read costs at most one range request, and that prefetched spans
    (the tail, the METADATA member) are served from memory.
    """

    def __init__(self, upstream: Upstream, url: str, size: int, tail: bytes) -> None:
        super().__init__()
        self.upstream, self.url, self.size = upstream, url, size
        self.tail_start = size - len(tail)
        self.spans: list[tuple[int, bytes]] = [(self.tail_start, tail)]
        self.pos = 0
        self.requests = 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def _covered(self, start: int, end: int) -> bytes | None:
        for span_start, data in self.spans:
            if span_start <= start and end <= span_start + len(data):
                return data[start - span_start : end - span_start]
        return None

    def prefetch(self, start: int, end: int) -> None:
        """Make [start, end) available, with one range request unless already held."""
        end = min(end, self.size)
        if start >= end or self._covered(start, end) is not None:
            return
        # Fetch only up to the held tail when the range runs into it.
        fetch_end = self.tail_start if start < self.tail_start < end else end
        body, _total, partial = self.upstream.fetch_range(self.url, start, fetch_end - 1)
        self.requests += 1
        if not partial:
            self.spans.insert(0, (0, body))  # the server sent everything: keep it all
            return
        if len(body) != fetch_end - start:
            raise RangeError(f"GET {self.url}: range {start}-{fetch_end - 1} came back short")
        if fetch_end < end:  # stitch with the tail so the span is contiguous
            body += self._covered(fetch_end, end) or b""
        self.spans.append((start, body))

    def readinto(self, buffer) -> int:  # type: ignore[override]
        n = min(len(buffer), self.size - self.pos)
        if n <= 0:
            return 0
        self.prefetch(self.pos, self.pos + n)
        data = self._covered(self.pos, self.pos + n)
        assert data is not None
        buffer[:n] = data
        self.pos += n
        return n


def _metadata_via_ranges(upstream: Upstream, file: RemoteFile) -> tuple[bytes, str]:
    """METADATA from the zip's tail (+ one more range); ('download' if ranges are ignored)."""
    tail, total, partial = upstream.fetch_range(file.url, None, TAIL_BYTES)
    if not partial or total is None or len(tail) >= total:  # we hold the whole file
        return _read_whole_wheel(file, tail), "zip-range" if partial else "download"
    remote = _RemoteZip(upstream, file.url, total, tail)
    with zipfile.ZipFile(remote) as zf:  # type: ignore[arg-type]
        member = dist_info_metadata_member(zf.namelist(), file.filename)
        if member is None:
            raise MetadataError(f"{file.filename}: no single *.dist-info/METADATA in the wheel")
        info = zf.getinfo(member)
        # The member ends where the next one (or the central directory) begins.
        offsets = sorted(i.header_offset for i in zf.infolist())
        following = [o for o in offsets if o > info.header_offset]
        end = following[0] if following else zf.start_dir
        remote.prefetch(info.header_offset, end)
        return zf.read(member), "zip-range"


def wheel_metadata(upstream: Upstream, file: RemoteFile) -> DistMetadata:
    """A remote wheel's metadata: PEP 658, else zip range reads, else a full download."""
    origin = file.filename
    problems: list[str] = []
    if file.core_metadata:
        try:
            raw = upstream.fetch_bytes(file.url + ".metadata")
        except UpstreamError as exc:
            problems.append(f"{origin}: PEP 658 metadata unavailable ({exc}); read the wheel")
        else:
            expected = file.metadata_sha256
            actual = hashlib.sha256(raw).hexdigest()
            if expected and actual != expected.lower():
                problems.append(
                    f"{origin}: PEP 658 metadata sha256 mismatch (index says {expected}, "
                    f"got {actual}); read the wheel instead"
                )
            else:
                meta = parse_core_metadata(raw, origin, source="pep658")
                meta.problems[:0] = problems
                return meta
    try:
        raw, source = _metadata_via_ranges(upstream, file)
    except (UpstreamError, *_ZIP_ERRORS) as exc:
        if isinstance(exc, UpstreamError) and not _range_refused(exc):
            raise  # the server is failing, not just its ranges: a full GET would fail too
        problems.append(f"{origin}: range reads failed ({exc}); downloaded the whole wheel")
        raw, source = _read_whole_wheel(file, upstream.fetch_bytes(file.url)), "download"
    meta = parse_core_metadata(raw, origin, source=source)
    meta.problems[:0] = problems
    return meta


def _read_whole_wheel(file: RemoteFile, data: bytes) -> bytes:
    """METADATA from a wheel held in memory; a broken wheel is final (no second download)."""
    if file.sha256 and hashlib.sha256(data).hexdigest() != file.sha256.lower():
        raise MetadataError(f"{file.filename}: sha256 mismatch with the index")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return _read_wheel_zip(zf, file.filename)
    except _ZIP_ERRORS as exc:
        raise MetadataError(f"{file.filename}: not a readable wheel: {exc}") from exc


def _range_refused(exc: UpstreamError) -> bool:
    """Errors after which a plain GET may still work (416, odd 206, short ranges)."""
    if isinstance(exc, RangeError):
        return True
    return isinstance(exc, UpstreamHTTPError) and exc.status in (400, 416, 501)


def sdist_metadata(path: Path) -> DistMetadata:
    """A local sdist's static dependencies (see sdist.py); MetadataError if none are static."""
    from .sdist import sdist_metadata as read

    return read(path)


def sdist_build_requires(path: Path) -> list[Requirement]:
    """A local sdist's [build-system].requires, else pip's legacy setuptools default."""
    from .sdist import sdist_build_requires as read

    return read(path)
