"""A slice's file filters (dists/selection.py) and the resolver's FileFilter that honours them."""

from __future__ import annotations

import re

import pytest

from morgan_like.dists.links import RemoteFile
from morgan_like.dists.selection import FileSelection, file_platforms, human_size, parse_size
from morgan_like.resolve.candidates import FileFilter

WIN = RemoteFile("lib-1.0-cp312-cp312-win_amd64.whl", "u")
WIN32 = RemoteFile("lib-1.0-cp312-cp312-win32.whl", "u")
MAC = RemoteFile("lib-1.0-cp312-cp312-macosx_11_0_arm64.whl", "u")
MANY = RemoteFile("lib-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "u")
RISCV = RemoteFile("lib-1.0-cp312-cp312-manylinux2014_riscv64.whl", "u")
MUSL = RemoteFile("lib-1.0-cp312-cp312-musllinux_1_2_x86_64.whl", "u")
BSD = RemoteFile("lib-1.0-cp312-cp312-freebsd_14_0_amd64.whl", "u")
PURE = RemoteFile("lib-1.0-py3-none-any.whl", "u")
SDIST = RemoteFile("lib-1.0.tar.gz", "u")
ZIP = RemoteFile("lib-1.0.zip", "u")
EGG_WIN = RemoteFile("lib-1.0-py2.7-win32.egg", "u")
EGG_LINUX = RemoteFile("lib-1.0-py2.7-linux-x86_64.egg", "u")
EGG_PURE = RemoteFile("lib-1.0-py2.7.egg", "u")
MSI = RemoteFile("lib-1.0.msi", "u")
EXE = RemoteFile("lib-1.0.win-amd64-py2.7.exe", "u")
DMG = RemoteFile("lib-1.0.dmg", "u")


def test_platforms_come_from_wheel_tags_and_sdists_have_none() -> None:
    assert file_platforms(WIN) == file_platforms(WIN32) == {"windows"}
    assert file_platforms(MAC) == {"macos"}
    assert file_platforms(MANY) == file_platforms(RISCV) == {"linux"}
    # bandersnatch's linux list holds "musllinux": linux leaves musllinux out too.
    assert file_platforms(MUSL) == {"linux", "musllinux"}
    assert file_platforms(BSD) == {"freebsd"}
    assert file_platforms(PURE) == file_platforms(SDIST) == file_platforms(ZIP) == set()
    # Files without tags: bandersnatch's name patterns and installer types.
    assert file_platforms(EGG_WIN) == file_platforms(MSI) == file_platforms(EXE) == {"windows"}
    assert file_platforms(EGG_LINUX) == {"linux"}
    assert file_platforms(DMG) == {"macos"}
    assert file_platforms(EGG_PURE) == set()


def test_exclude_platform() -> None:
    windows = FileSelection(exclude_platforms=frozenset({"windows"}))
    assert windows.why_left_out(WIN) == "a windows wheel (exclude-platform)"
    assert windows.why_left_out(EXE) == "a windows file (exclude-platform)"
    assert [windows.why_left_out(f) for f in (MAC, MANY, PURE, SDIST)] == [None] * 4
    musl = FileSelection(exclude_platforms=frozenset({"musllinux"}))
    assert musl.why_left_out(MUSL) is not None and musl.why_left_out(MANY) is None
    linux = FileSelection(exclude_platforms=frozenset({"linux"}))
    assert all(linux.why_left_out(f) for f in (MANY, RISCV, MUSL, EGG_LINUX))


def test_package_types() -> None:
    wheels = FileSelection(package_types=frozenset({"wheel"}))
    assert wheels.why_left_out(SDIST) == "an sdist (package-types = wheel)"
    assert wheels.why_left_out(EGG_PURE) == "not a wheel (package-types = wheel)"
    assert wheels.why_left_out(PURE) is None
    sdists = FileSelection(package_types=frozenset({"sdist"}))
    assert sdists.why_left_out(PURE) == "a wheel (package-types = sdist)"
    assert sdists.why_left_out(ZIP) is None
    both = FileSelection(package_types=frozenset({"sdist", "wheel"}))
    assert both.why_left_out(MSI) == "not an sdist or a wheel (package-types = sdist wheel)"


def test_exclude_release_matches_the_version_from_its_start() -> None:
    dev = FileSelection(exclude_releases=(re.compile(r".*\.dev\d+$"), re.compile("1\\.0")))
    assert dev.why_left_out(RemoteFile("lib-2.0.dev3.tar.gz", "u")) == (
        "version 2.0.dev3 matches exclude-release '.*\\\\.dev\\\\d+$'"
    )
    assert dev.why_left_out(SDIST) is not None  # 1.0 matches "1\.0"
    # re.match, as bandersnatch: "1\.0" does not match 2.1.0 (it would be found inside).
    assert dev.why_left_out(RemoteFile("lib-2.1.0.tar.gz", "u")) is None
    # The normal form: 2.0dev3 in a file name is 2.0.dev3.
    assert dev.why_left_out(RemoteFile("lib-2.0dev3.tar.gz", "u")) is not None


def test_max_file_size() -> None:
    limit = FileSelection(max_file_size=50_000_000)
    big = RemoteFile("lib-1.0.tar.gz", "u", size=73_100_000)
    assert limit.why_left_out(big) == "larger than max-file-size 50 MB (73.1 MB)"
    assert limit.why_left_out(RemoteFile("lib-1.0.tar.gz", "u", size=50_000_000)) is None
    assert limit.why_left_out(SDIST) is None  # no size given: kept
    assert limit.why_not_selected(big) is None and limit.too_large(big) is not None


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("123", 123),
        ("50M", 50_000_000),
        ("50 mb", 50_000_000),
        ("1.5G", 1_500_000_000),
        ("2KiB", 2048),
        ("1 GiB", 1 << 30),
        ("3T", 3 * 10**12),
        ("10b", 10),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "5X", "-5M", "0", "0.1", "5 M B", "1e6"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_human_size() -> None:
    assert human_size(999) == "999 bytes"
    assert human_size(52_428_800) == "52.4 MB"
    assert human_size(2 * 10**12) == "2 TB"


def test_file_filter_honours_the_selection() -> None:
    selection = FileSelection(exclude_platforms=frozenset({"windows"}))
    assert FileFilter().allows(WIN)
    assert not FileFilter(selection=selection).allows(WIN)
    assert FileFilter(selection=selection).allows(MANY)
    # The package-type regex still applies first.
    assert not FileFilter("(tar\\.gz)", selection=selection).allows(MANY)
