"""A gzip tar of plain headers listed in memory, as tarfile lists it, at a fraction of its cost.

A run reads every sdist of its plan for a few members (dists/sdist.py), and
tarfile's pure-Python header parsing was half of that read (the other half is
inflating): each header goes through a dozen slices, decodes and ``int`` calls
and the stream's buffering.  ``scan_gzip_tar`` inflates the archive in one call
and walks its headers itself, and gives up (None) on anything it does not
read exactly as tarfile does: a checksum, number or type it does not expect, a
pax header with more than a path and a size, a global or sparse header, a
truncated or oversized archive, trailing gzip members.  The caller then reads
the archive with tarfile (dists/archive.iter_tar), so a given archive always
yields the same members, or the same error, whichever path reads it.
"""

from __future__ import annotations

import re
import tarfile
import zlib
from collections.abc import Callable
from typing import NamedTuple

# Inflated in memory up to this much; a larger tar is streamed by tarfile.
SCAN_LIMIT = 64 * 1024 * 1024
BLOCK = 512
_REGULAR = (b"0", b"\0", b"7")  # tarfile's isreg() types, sparse aside
_NO_DATA = (b"1", b"2", b"3", b"4", b"5", b"6")  # links, devices, directories, fifos
_PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")
# pax keys whose meaning here is nil (times, owners, link target) or read (path, size)
_PAX_KEYS = {"path", "size", "mtime", "atime", "ctime", "uid", "gid", "uname", "gname", "linkpath"}
_NUMBERS = ((100, 108), (108, 116), (116, 124), (136, 148), (329, 337), (337, 345))
# The usual header: every numeric field only octal digits, spaces and NULs, and no
# digits parted by spaces (which ``int`` refuses); each then parses, so none is
# parsed to check it.  Other headers are checked field by field.
_OCTAL_BYTES = b"01234567 \0"
_PARTED_DIGITS = re.compile(rb"[0-7] +[0-7]")


class ScannedMember(NamedTuple):
    """A regular file of the tar: its name as tarfile gives it, its size, where its data
    starts in the inflated tar."""

    name: str
    size: int
    offset_data: int


def _octal(field: bytes) -> int | None:
    """tarfile's ``nti`` for a plain octal field; None where it would do anything else
    (base-256, a sign, an underscore, a bad digit)."""
    if field[:1] in (b"\x80", b"\xff"):
        return None
    digits = field.split(b"\0", 1)[0].strip()
    if not digits:
        return 0
    if not digits.isdigit() or b"8" in digits or b"9" in digits:
        return None
    return int(digits, 8)


def _numbers_parse(block: bytes) -> bool:
    """Does tarfile parse each of the header's numeric fields (mode, owners, times, device)?"""
    region = block[100:148] + block[329:345]
    if not region.translate(None, _OCTAL_BYTES) and not _PARTED_DIGITS.search(region):
        return True
    return all(_octal(block[a:b]) is not None for a, b in _NUMBERS)


def _name(field: bytes) -> str:
    """tarfile's ``nts`` with the encoding and errors tarfile.open reads names with."""
    return field.split(b"\0", 1)[0].decode(tarfile.ENCODING, "surrogateescape")


def _pax(buf: bytes) -> dict[str, str] | None:
    """A pax header's records, when each is well formed and only of _PAX_KEYS."""
    if b"hdrcharset=" in buf:
        return None
    found: dict[str, str] = {}
    pos = 0
    while True:
        match = _PAX_RECORD.match(buf, pos)
        if match is None:
            break
        length = int(match.group(1))
        end = match.start(1) + length
        if length == 0 or end > len(buf) or buf[end - 1 : end] != b"\n":
            return None
        try:
            keyword = match.group(2).decode("utf-8")
            value = buf[match.end(2) + 1 : end - 1].decode("utf-8")
        except UnicodeDecodeError:
            return None
        if keyword not in _PAX_KEYS:
            return None
        found[keyword] = value
        pos = end
    if buf[pos:].strip(b"\0"):
        return None  # something past the records that tarfile would skip or refuse
    return found


def _blocks(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def scan_gzip_tar(raw: bytes, total: int) -> tuple[bytes, list[ScannedMember]] | None:
    """The inflated tar and its regular files, or None: read it with tarfile instead.

    ``total``: the cap on the inflated size and on any member's end (dists/archive.py);
    an archive that would pass it is left to tarfile, which refuses it.
    """
    inflater = zlib.decompressobj(31)
    try:
        data = inflater.decompress(raw, min(total, SCAN_LIMIT) + 1)
    except zlib.error:
        return None
    if not inflater.eof or inflater.unused_data or len(data) > min(total, SCAN_LIMIT):
        return None
    members: list[ScannedMember] = []
    offset, pending_name, pending_size = 0, None, None
    extended = False  # the header before this one was a pax or long-name header
    while True:
        block = data[offset : offset + BLOCK]
        if len(block) < BLOCK or not block.strip(b"\0"):
            if extended or len(block) not in (0, BLOCK) or offset == 0:
                return None  # truncated, an empty archive, a header with nothing after it
            return data, members
        chksum = _octal(block[148:156])
        if chksum is None or chksum != 256 + sum(block) - sum(block[148:156]):
            return None
        size = _octal(block[124:136])
        if size is None or not _numbers_parse(block):
            return None
        kind = block[156:157]
        data_at = offset + BLOCK
        if kind == b"x" or kind == b"L":
            if extended or size > 1024 * 1024:
                return None  # a chain of extended headers, or a huge one: tarfile's call
            body = data[data_at : data_at + _blocks(size)]
            if len(body) < _blocks(size):
                return None
            if kind == b"L":
                pending_name = _name(body)
            else:
                pax = _pax(body)
                if pax is None:
                    return None
                if "path" in pax:
                    pending_name = pax["path"].rstrip("/")
                if "size" in pax:
                    if not pax["size"].isdigit():
                        return None
                    pending_size = int(pax["size"])
            offset, extended = data_at + _blocks(size), True
            continue
        if kind not in _REGULAR and kind not in _NO_DATA:
            return None
        name = _name(block[0:100])
        prefix = _name(block[345:500])
        if kind == b"\0" and name.endswith("/"):
            kind = b"5"  # an old tar's directory
        if kind == b"5":
            name = name.rstrip("/")
        if prefix:
            name = prefix + "/" + name
        if pending_name is not None:
            name = pending_name
        if pending_size is not None:
            size = pending_size
        if data_at + size > total:
            return None  # tarfile's reader refuses it (dists/archive.iter_tar)
        if kind in _REGULAR:
            if data_at + _blocks(size) > len(data):
                return None  # its data (or the blocks padding it) cut short
            members.append(ScannedMember(name, size, data_at))
            offset = data_at + _blocks(size)
        else:
            offset = data_at
        pending_name, pending_size, extended = None, None, False


def reader(data: bytes, member: ScannedMember) -> Callable[[], bytes]:
    """A member's bytes, read when called (as iter_tar's readers)."""
    return lambda: data[member.offset_data : member.offset_data + member.size]
