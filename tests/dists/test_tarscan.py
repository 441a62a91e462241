"""The in-memory tar scan lists exactly what tarfile lists, or leaves the archive to it."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from morgan_like.dists import tarscan
from morgan_like.dists.archive import iter_tar, tar_members
from morgan_like.dists.sdistread import read_sdist
from morgan_like.errors import MetadataError

from ..distbuilder import make_sdist

LONG = "pkg-1.0/" + "/".join(["deep" * 20] * 3) + "/PKG-INFO"  # past ustar's 100 + 155


def _tar(fmt: int, entries: list[tuple[str, bytes | None]], **kw) -> bytes:
    """A tar of ``entries`` (None: a directory; bytes starting '->': a symlink)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt, **kw) as tf:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
            elif data.startswith(b"->"):
                info.type, info.linkname = tarfile.SYMTYPE, data[2:].decode()
            else:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data and info.isfile() else None)
    return out.getvalue()


def _listing(reader, raw: bytes):
    try:
        return [(m.name, m.size, read()) for m, read in reader(io.BytesIO(raw), "t.tar.gz")]
    except MetadataError as exc:
        return ("MetadataError", str(exc))
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        return (type(exc).__name__, str(exc))


def _same(raw: bytes, *, scanned: bool) -> None:
    assert _listing(tar_members, raw) == _listing(iter_tar, raw)
    assert (tarscan.scan_gzip_tar(raw, 1 << 30) is not None) == scanned


ENTRIES = [
    ("pkg-1.0", None),
    ("pkg-1.0/PKG-INFO", b"Metadata-Version: 2.2\nName: pkg\n"),
    ("pkg-1.0/pyproject.toml", b"[build-system]\nrequires = []\n"),
    ("pkg-1.0/src/link", b"->PKG-INFO"),
    ("pkg-1.0/empty", b""),
    (LONG, b"long"),
    ("pkg-1.0/" + "n\u00e9" * 60 + ".py", b"x = 1\n"),  # a non-ASCII name past 100 bytes
]


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_each_format_is_listed_as_tarfile_lists_it(fmt) -> None:
    entries = ENTRIES if fmt != tarfile.USTAR_FORMAT else ENTRIES[:5]  # ustar: no long names
    _same(gzip.compress(_tar(fmt, entries)), scanned=True)


def test_a_real_sdist_reads_the_same_either_way(tmp_path, monkeypatch) -> None:
    path = make_sdist(tmp_path, "pkg", "1.0", requires_dist=["alpha>=1"])
    scanned = read_sdist(path)
    monkeypatch.setattr(tarscan, "scan_gzip_tar", lambda raw, total: None)
    assert read_sdist(path) == scanned


def _edit(raw_tar: bytes, at: int, new: bytes, *, fix_checksum: bool = True) -> bytes:
    """The first header's bytes at ``at`` replaced (its checksum made right again)."""
    buf = bytearray(raw_tar)
    buf[at : at + len(new)] = new
    if fix_checksum:
        buf[148:156] = b" " * 8
        buf[148:156] = b"%06o\0 " % sum(buf[:512])
    return bytes(buf)


PLAIN = _tar(tarfile.USTAR_FORMAT, [("pkg-1.0/PKG-INFO", b"Name: pkg\n"), ("pkg-1.0/x", b"x")])


@pytest.mark.parametrize(
    "raw",
    [
        gzip.compress(_edit(PLAIN, 100, b"0000 644")),  # digits parted by a space
        gzip.compress(_edit(PLAIN, 136, b"\x80" + b"\0" * 10 + b"\1")),  # base-256 mtime
        gzip.compress(_edit(PLAIN, 124, b"-0000000012")),  # a signed size
        gzip.compress(_edit(PLAIN, 0, b"x", fix_checksum=False)),  # a bad checksum
        gzip.compress(_edit(PLAIN, 156, b"S")),  # sparse
        gzip.compress(_edit(PLAIN, 156, b"V")),  # a type tarfile does not know
        gzip.compress(PLAIN[:700]),  # truncated in a member's data
        gzip.compress(PLAIN[:300]),  # truncated in a header
        gzip.compress(PLAIN) + gzip.compress(b"\0" * 1024),  # a second gzip member
        gzip.compress(PLAIN)[:-4] + b"\0\0\0\0",  # a wrong gzip length
        gzip.compress(b""),  # an empty tar
        gzip.compress(b"\0" * 1024),  # only the end marker
        gzip.compress(_tar(tarfile.PAX_FORMAT, [("a", b"x")], pax_headers={"comment": "hi"})),
        gzip.compress(
            _tar(tarfile.PAX_FORMAT, [("a", b"x")], pax_headers={"hdrcharset": "BINARY"})
        ),
    ],
)
def test_what_the_scan_does_not_read_as_tarfile_does_is_left_to_tarfile(raw) -> None:
    _same(raw, scanned=False)


def test_an_old_tars_directory_and_a_ustar_prefix_are_named_as_tarfile_names_them() -> None:
    out = io.BytesIO()
    deep = "pkg-1.0/" + "d" * 90 + "/setup.py"  # past 100 bytes: ustar splits it (prefix)
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        old_dir = tarfile.TarInfo("pkg-1.0/sub/")
        old_dir.type = tarfile.AREGTYPE  # a directory as a V7 tar wrote one
        tf.addfile(old_dir)
        info = tarfile.TarInfo(deep)
        info.size = 2
        tf.addfile(info, io.BytesIO(b"x\n"))
    raw = gzip.compress(out.getvalue())
    _same(raw, scanned=True)
    assert [m.name for m, _ in tar_members(io.BytesIO(raw), "t")] == [deep]


def test_an_archive_past_the_cap_is_refused_as_tarfile_refuses_it(monkeypatch) -> None:
    raw = gzip.compress(_tar(tarfile.USTAR_FORMAT, [("a", b"x" * 5000)]))
    for reader in (tar_members, iter_tar):
        with pytest.raises(MetadataError):
            list(reader(io.BytesIO(raw), "t", 4096))


def test_the_real_sdists_of_a_tree_list_the_same(tmp_path: Path) -> None:
    for name, kw in [
        ("a", {}),
        ("b", {"build_requires": None, "build_backend": None}),
        ("c", {"pyproject": False}),
    ]:
        raw = make_sdist(tmp_path, name, "1.0", **kw).read_bytes()
        _same(raw, scanned=True)
