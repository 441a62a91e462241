"""Bounded reads of zip and tar archives: no member, and no stream, inflates past a cap.

Wheels and sdists are untrusted input.  A zip member's declared size may lie, a
tar's headers may promise gigabytes, a long-name header may be a memory bomb.
Everything here reads through a cap: a zip member is read to at most ``limit``
bytes; a tar is read through one decompressing stream that refuses to go past
``total`` bytes, and a member whose header says it would is refused before a
byte of it is inflated.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import re
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath
from typing import Any, BinaryIO, Protocol

from morgan_like.dists.tarscan import reader, scan_gzip_tar
from morgan_like.errors import MetadataError

MIB = 1024 * 1024
# Metadata files are small; nothing bigger is read (PKG-INFO, METADATA, pyproject.toml, ...).
MAX_METADATA = 16 * MIB
# An sdist whose tar inflates past this is refused (resolve/hooks.py unpacks to the same cap).
MAX_UNPACKED = 1024 * MIB


# What reading a broken, truncated or hostile archive raises (besides MetadataError).
ARCHIVE_ERRORS = (
    tarfile.TarError,
    zipfile.BadZipFile,
    OSError,
    EOFError,
    ValueError,
    lzma.LZMAError,
    zlib.error,
    NotImplementedError,
    RuntimeError,
)
READ_CHUNK = 64 * 1024
# A long-name or pax header holds a name and a few keys; tarfile reads one whole.
MAX_TAR_HEADER = 1 * MIB
_EXTENDED_HEADERS = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)


def too_large(origin: str, what: str, limit: int) -> MetadataError:
    return MetadataError(f"{origin}: {what} inflates past {limit / MIB:g} MiB; not read")


def read_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, origin: str) -> bytes:
    """A zip member's bytes, at most ``limit`` (its declared size is checked, then the real one)."""
    if info.file_size > limit:
        raise too_large(origin, info.filename, limit)
    with zf.open(info) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise too_large(origin, info.filename, limit)
    return data


_UNCLEAN = re.compile(r"\\|//|/\.")


def clean_member_name(name: str) -> str | None:
    """A member path as a relative POSIX path, or None for absolute / ``..`` paths."""
    if name and name[0] not in "./" and name[-1] != "/" and not _UNCLEAN.search(name):
        return name  # already clean: no empty, "." or ".." part (sdists list thousands)
    path = PurePosixPath(name.replace("\\", "/"))
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts or path.is_absolute() or ".." in parts:
        return None
    return "/".join(parts)


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _Capped(io.RawIOBase):
    """A read-only stream that refuses to give more than ``limit`` bytes in total."""

    def __init__(self, inner: _Readable, limit: int, origin: str) -> None:
        super().__init__()
        self.inner, self.limit, self.origin = inner, limit, origin
        self.pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        # At most one byte past the cap is asked for: enough to know it is passed.
        data = self.inner.read(min(len(buffer), self.limit + 1 - self.pos))
        if self.pos + len(data) > self.limit:
            raise too_large(self.origin, "the archive", self.limit)
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def _decompressed(raw: BinaryIO) -> _Readable:
    """The tar stream inside gzip / bzip2 / xz (or a plain tar), decompressed lazily."""
    magic = raw.read(6)
    raw.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if magic[:3] == b"BZh":
        return bz2.BZ2File(raw)
    if magic == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(raw)
    return raw


class _BoundedTarInfo(tarfile.TarInfo):
    """tarfile reads a long-name or pax header whole into memory: refuse a huge one first."""

    def _proc_member(self, tf: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED_HEADERS and self.size > MAX_TAR_HEADER:
            raise tarfile.ReadError(f"an extended tar header of {self.size} bytes")
        return super()._proc_member(tf)  # type: ignore[misc]


def iter_tar(
    raw: BinaryIO, origin: str, total: int = MAX_UNPACKED
) -> Iterator[tuple[tarfile.TarInfo, Callable[[], bytes]]]:
    """Regular-file members of a tar(.gz/.bz2/.xz) in one streaming pass, each with a reader.

    Calling ``read()`` is optional (check ``member.size`` first).  Past ``total``
    inflated bytes, MetadataError; a header that promises more than that is
    refused before its data is inflated.
    """
    # Buffered in big reads: tarfile asks for 10 KiB at a time, and each small read
    # through the cap and gzip's Python layer cost more than the inflating itself.
    stream = io.BufferedReader(_Capped(_decompressed(raw), total, origin), READ_CHUNK)
    with tarfile.open(fileobj=stream, mode="r|", tarinfo=_BoundedTarInfo) as tf:
        for member in tf:
            if member.offset_data + member.size > total:  # refused before it is inflated
                raise MetadataError(
                    f"{origin}: its member {member.name} would take the archive past "
                    f"{total / MIB:g} MiB inflated; not read"
                )
            if not member.isfile():
                continue

            def read(member: tarfile.TarInfo = member) -> bytes:
                extracted = tf.extractfile(member)
                return extracted.read() if extracted is not None else b""

            yield member, read


class TarEntry(Protocol):
    """A regular file of a tar: tarfile's TarInfo, or dists/tarscan's ScannedMember."""

    @property
    def name(self) -> str: ...

    @property
    def size(self) -> int: ...


# A gzip tar up to this size is first scanned in memory (dists/tarscan.py).
SCAN_COMPRESSED = 16 * MIB


def tar_members(
    raw: BinaryIO, origin: str, total: int = MAX_UNPACKED
) -> Iterator[tuple[TarEntry, Callable[[], bytes]]]:
    """``iter_tar``'s members and readers; a gzip tar of plain headers, small enough, is
    listed in memory without tarfile (the same members, or tarfile reads it)."""
    head = raw.read(SCAN_COMPRESSED + 1)
    if head[:2] == b"\x1f\x8b" and len(head) <= SCAN_COMPRESSED:
        scanned = scan_gzip_tar(head, total)
        if scanned is not None:
            data, members = scanned
            for member in members:
                yield member, reader(data, member)
            return
    raw.seek(0)
    yield from iter_tar(raw, origin, total)
