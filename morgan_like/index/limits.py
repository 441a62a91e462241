"""What one response may cost us: size caps on bodies and deadlines on files.

An index is input like any other: a page can inflate to gigabytes under gzip, a
``.metadata`` file can be huge, a file can be dripped one byte at a time.  Every
body is therefore read here, in bounded chunks of the *decoded* stream, against
a cap (pages, metadata) and a deadline that covers every attempt at the same
thing.  What goes past either raises LimitExceeded, which nobody retries.
"""

from __future__ import annotations

import socket
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import urllib3
from urllib3.response import HTTPResponse

from morgan_like.errors import BodyError, LimitExceeded
from morgan_like.index.httputil import header_int
from morgan_like.index.transport import Response

MIB = 1024 * 1024
CHUNK = 256 * 1024

# [mirror] keys (config/options.py) -> Limits fields, with the unit each key is written in.
OPTION_KEYS = {
    "max-page-mib": ("page_bytes", MIB),
    "max-metadata-mib": ("metadata_bytes", MIB),
    "download-timeout-floor": ("deadline_floor", 1),
    "download-min-rate": ("min_rate", 1000),
}


@dataclass(frozen=True)
class Limits:
    """Caps (bytes) and the deadline rule: ``floor`` seconds plus the size at ``min_rate``."""

    page_bytes: int = 64 * MIB
    metadata_bytes: int = 16 * MIB
    deadline_floor: float = 60.0
    min_rate: float = 50_000.0  # bytes per second

    @classmethod
    def from_options(cls, options: Mapping[str, str]) -> Limits:
        """From the validated ``[mirror]`` options (positive whole numbers)."""
        values = {
            field: int(options[key]) * unit
            for key, (field, unit) in OPTION_KEYS.items()
            if options.get(key)
        }
        return cls(**values)

    def deadline(self, size: int | None = None) -> Deadline:
        return Deadline(self, size)


class Deadline:
    """One clock for every attempt at one thing, so retries cannot multiply a slow drip.

    The allowance grows with the size: the known size, or the bytes that did arrive
    when the size is unknown (a body that keeps the minimum rate is never cut off).
    """

    def __init__(self, limits: Limits, size: int | None) -> None:
        self.floor = limits.deadline_floor
        self.rate = limits.min_rate
        self.size = size
        self.start = time.monotonic()

    def allowance(self, received: int = 0) -> float:
        return self.floor + max(self.size or 0, received) / self.rate

    def remaining(self, received: int = 0) -> float:
        return self.allowance(received) - (time.monotonic() - self.start)

    def check(self, shown: str, received: int = 0) -> None:
        """Raise LimitExceeded once the allowance for ``received`` bytes is spent."""
        if self.remaining(received) > 0:
            return
        of = f" of {self.size}" if self.size is not None else ""
        raise LimitExceeded(
            f"GET {shown}: gave up after {time.monotonic() - self.start:.0f}s with "
            f"{received}{of} bytes received (deadline {self.floor:.0f}s + size at "
            f"{self.rate / 1000:g} KB/s; [mirror] download-timeout-floor, download-min-rate)",
            timed_out=True,
        )


def content_length(response: Response) -> int | None:
    return header_int(response.headers.get("Content-Length"))


def _wire(raw: HTTPResponse, fallback: int) -> int:
    try:
        return int(raw.tell())
    except (AttributeError, OSError, ValueError, TypeError):
        return fallback


def wire_bytes(response: Response) -> int:
    """Body bytes read off the wire (compressed size if the body was encoded)."""
    try:
        return int(response.raw.tell())
    except (AttributeError, OSError, ValueError, TypeError):
        return len(response.content)


class _Inflater:
    """gzip / deflate decoding with a bound on each output piece, whatever urllib3 does."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._zlib = zlib.decompressobj(
            16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        )
        self._started = False

    def feed(self, data: bytes, most: int) -> Iterator[bytes]:
        while data:
            try:
                out = self._zlib.decompress(data, most)
            except zlib.error:
                if self.encoding != "deflate" or self._started:
                    raise
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as some send
                out = self._zlib.decompress(data, most)
            self._started = True
            if out:
                yield out
            data = self._zlib.unconsumed_tail
            if not data and self._zlib.eof and self._zlib.unused_data:  # concatenated gzip
                data = self._zlib.unused_data
                self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)


def _inflater(response: Response, shown: str) -> _Inflater | None:
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _Inflater("deflate" if encoding == "deflate" else "gzip")
    raise LimitExceeded(f"GET {shown}: unsupported Content-Encoding {encoding!r}")


def iter_body(
    response: Response,
    shown: str,
    *,
    decode: bool,
    deadline: Deadline | None = None,
    chunk_size: int = CHUNK,
) -> Iterator[bytes]:
    """The body in pieces of at most ``chunk_size`` bytes (gzip/deflate undone when ``decode``).

    We inflate ourselves, each piece bounded, so a compression bomb costs one
    piece at a time with any urllib3.  Reads return what has arrived (read1), so
    a drip-fed body meets its deadline between two bytes, not after a full
    chunk.  A body shorter than its Content-Length is "truncated: got N of M
    bytes"; no urllib3 text leaks out.
    """
    raw = response.raw
    length = content_length(response)
    inflater = _inflater(response, shown) if decode else None
    read = getattr(raw, "read1", None) or raw.read  # urllib3 < 2.3 has no read1
    received = 0
    while True:
        if deadline is not None:
            deadline.check(shown, received)
        try:
            chunk = read(chunk_size, decode_content=False)
        except urllib3.exceptions.ProtocolError as exc:
            if "IncompleteRead" in str(exc):
                of = f" of {length}" if length is not None else ""
                got = _wire(raw, received)
                raise BodyError(f"GET {shown}: truncated: got {got}{of} bytes") from None
            raise BodyError(f"GET {shown}: connection broken mid-body") from None
        except (urllib3.exceptions.ReadTimeoutError, socket.timeout, TimeoutError):
            raise BodyError(f"GET {shown}: timed out") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BodyError(f"GET {shown}: connection failed ({exc.__class__.__name__})") from None
        if not chunk:
            break
        received += len(chunk)
        if inflater is None:
            yield chunk
            continue
        try:
            yield from inflater.feed(chunk, chunk_size)
        except zlib.error:
            raise BodyError(f"GET {shown}: cannot decode its {inflater.encoding} body") from None
    wire = _wire(raw, received)
    if length is not None and wire < length:
        raise BodyError(f"GET {shown}: truncated: got {wire} of {length} bytes")


def iter_file_body(
    response: Response, shown: str, size: int | None, deadline: Deadline, chunk_size: int
) -> Iterator[bytes]:
    """A file's stored bytes; ``size`` (the index's) is checked against Content-Length first,
    and a body growing past it is cut off there rather than read to its end."""
    length = content_length(response)
    if size is not None and length is not None and length != size:
        raise LimitExceeded(
            f"GET {shown}: Content-Length {length} does not match the index's size {size}"
        )
    received = 0
    for chunk in iter_body(response, shown, decode=False, deadline=deadline, chunk_size=chunk_size):
        received += len(chunk)
        if size is not None and received > size:
            raise LimitExceeded(f"GET {shown}: larger than the index's size {size}")
        yield chunk


def read_capped(
    response: Response, shown: str, limit: int, deadline: Deadline | None = None
) -> bytes:
    """The decoded body, or LimitExceeded as soon as it passes ``limit`` bytes."""
    length = content_length(response)
    if length is not None and length > limit and not response.headers.get("Content-Encoding"):
        raise LimitExceeded(_too_large(shown, limit, f"Content-Length {length}"))
    chunks, total = [], 0
    for chunk in iter_body(response, shown, decode=True, deadline=deadline):
        total += len(chunk)
        if total > limit:
            raise LimitExceeded(_too_large(shown, limit, "its body"))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(shown: str, limit: int, what: str) -> str:
    cap = f"{limit / MIB:g} MiB" if limit >= MIB else f"{limit} bytes"
    return f"GET {shown}: not read: {what} is larger than the {cap} cap"
