"""A remote wheel's core metadata, read from the cheapest source first.

The PEP 658 ``.metadata`` file (hash checked), else two HTTP range reads of the
zip (its central directory, then the METADATA member), else the whole file.
Parsing itself is ``dists/metadata.py``; this module only fetches.  Every read
is bounded: a ``.metadata`` or METADATA member past the metadata cap is refused
(never read whole), and a whole wheel is spooled to a temporary file, not held
in memory.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import zipfile
from typing import BinaryIO

from morgan_like.dists.links import RemoteFile
from morgan_like.dists.metadata import (
    ZIP_ERRORS,
    DistMetadata,
    dist_info_metadata_member,
    parse_core_metadata,
    read_wheel_zip,
)
from morgan_like.errors import MetadataError, RangeError, UpstreamError
from morgan_like.index.upstream import Upstream, UpstreamHTTPError

# The tail read first: EOCD (22 bytes) + the longest archive comment (64 KiB) + zip64
# records, and for most wheels the whole central directory too.
TAIL_BYTES = 64 * 1024 + 1024
# A zip local header: 30 bytes, a name and an extra field of up to 64 KiB each, a data descriptor.
_LOCAL_HEADER_MAX = 30 + 2 * 65535 + 24
MIB = 1024 * 1024


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
        if fetch_end - start > self.upstream.limits.page_bytes:
            raise RangeError(f"GET {self.url}: a {fetch_end - start} byte range is too large")
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

    def readinto(self, buffer) -> int:
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
        return _read_whole_wheel(upstream, file, tail), "zip-range" if partial else "download"
    remote = _RemoteZip(upstream, file.url, total, tail)
    with zipfile.ZipFile(remote) as zf:
        member = dist_info_metadata_member(zf.namelist(), file.filename)
        if member is None:
            raise MetadataError(f"{file.filename}: no single *.dist-info/METADATA in the wheel")
        info = zf.getinfo(member)
        limit = upstream.limits.metadata_bytes
        if info.file_size > limit or info.compress_size > limit:
            raise MetadataError(
                f"{file.filename}: {member} inflates past {limit / MIB:g} MiB; not read"
            )
        # The member ends where the next one (or the central directory) begins; never
        # further than its own header, name, extra field and data can reach.
        offsets = sorted(i.header_offset for i in zf.infolist())
        following = [o for o in offsets if o > info.header_offset]
        end = following[0] if following else zf.start_dir
        end = min(end, info.header_offset + _LOCAL_HEADER_MAX + info.compress_size)
        remote.prefetch(info.header_offset, end)
        return read_wheel_zip(zf, file.filename, limit), "zip-range"


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
    except (UpstreamError, *ZIP_ERRORS) as exc:
        if isinstance(exc, UpstreamError) and not _range_refused(exc):
            raise  # the server is failing, not just its ranges: a full GET would fail too
        problems.append(f"{origin}: range reads failed ({exc}); downloaded the whole wheel")
        raw, source = _download_wheel(upstream, file), "download"
    meta = parse_core_metadata(raw, origin, source=source)
    meta.problems[:0] = problems
    return meta


def _download_wheel(upstream: Upstream, file: RemoteFile) -> bytes:
    """METADATA from the whole wheel, streamed to a temporary file (wheels reach gigabytes)."""
    digest = hashlib.sha256()
    with tempfile.TemporaryFile() as spool:
        for chunk in upstream.iter_file(file.url, 256 * 1024, size=file.size):
            digest.update(chunk)
            spool.write(chunk)
        return _wheel_member(upstream, file, spool, digest.hexdigest())


def _read_whole_wheel(upstream: Upstream, file: RemoteFile, data: bytes) -> bytes:
    """METADATA from a (small) wheel held in memory."""
    return _wheel_member(upstream, file, io.BytesIO(data), hashlib.sha256(data).hexdigest())


def _wheel_member(upstream: Upstream, file: RemoteFile, data: BinaryIO, sha256: str) -> bytes:
    """METADATA of a whole wheel; a broken wheel is final (no second download)."""
    if file.sha256 and sha256 != file.sha256.lower():
        raise MetadataError(f"{file.filename}: sha256 mismatch with the index")
    try:
        with zipfile.ZipFile(data) as zf:
            return read_wheel_zip(zf, file.filename, upstream.limits.metadata_bytes)
    except ZIP_ERRORS as exc:
        raise MetadataError(f"{file.filename}: not a readable wheel: {exc}") from exc


def _range_refused(exc: UpstreamError) -> bool:
    """Errors after which a plain GET may still work (416, odd 206, short ranges)."""
    if isinstance(exc, RangeError):
        return True
    return isinstance(exc, UpstreamHTTPError) and exc.status in (400, 416, 501)
