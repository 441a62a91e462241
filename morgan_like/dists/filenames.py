"""Distribution file names: what a name says (project, version, tags) and whether we
may keep a file under it.

Pages list thousands of files, and each name is parsed when its entry is vetted and
again by every env that filters the page.  packaging's parsers build a Version and
parse the tag set for every call, though a page repeats the same few project
names, versions and tag sets over and over.  So a name is cut into those parts and
each part is parsed by packaging itself, on a stand-in name that differs only
elsewhere, and remembered: the answer is packaging's, whatever its version checks,
at the cost of a dict lookup for a part seen before.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz", ".tar")
# Old distribution formats pip no longer installs: left out of pages without a word.
LEGACY_SUFFIXES = (".egg", ".exe", ".msi", ".rpm", ".dmg", ".deb")

Parsed = tuple[NormalizedName | None, Version | None, frozenset[Tag]]
_NOTHING: Parsed = (None, None, frozenset())
_INVALID = (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion)

# A file's name becomes a path in packages/<project>/ and a segment of its URL: no path
# separator, control character (C0, DEL) or unpaired surrogate (no file system or URL
# can carry it), found in one regex pass.  server.py's filename_problem is a copy of
# this rule (tests/dists/test_filename_rule.py holds them equal).
_UNSAFE_CHAR = re.compile(r"[\x00-\x1f\x7f/\\\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _part(parse: Callable[[str], tuple[Any, ...]], stand_in: str, index: int, size: int) -> Any:
    """A remembered parser of one part of a name: packaging parses ``stand_in`` with the
    part put in (the other parts valid), and gives item ``index``, or None if refused."""

    @functools.lru_cache(maxsize=size)
    def part(text: str) -> Any:
        try:
            return parse(stand_in.format(text))[index]
        except _INVALID:
            return None

    return part


_wheel_project = _part(parse_wheel_filename, "{}-0-py3-none-any.whl", 0, 1024)
_wheel_version = _part(parse_wheel_filename, "x-{}-py3-none-any.whl", 1, 8192)
_wheel_tags = _part(parse_wheel_filename, "x-0-{}.whl", 3, 4096)  # [build-]python-abi-platform
_sdist_project = _part(parse_sdist_filename, "{}-0.tar.gz", 0, 1024)
_sdist_version = _part(parse_sdist_filename, "x-{}.tar.gz", 1, 8192)


def _parse_wheel(stem: str) -> Parsed:
    # packaging's cut: 4 or 5 dashes; name, version, [build], then the three tags.
    dashes = stem.count("-")
    if dashes not in (4, 5):
        return _NOTHING
    name_part, version_part, rest = stem.split("-", 2)
    project, version = _wheel_project(name_part), _wheel_version(version_part)
    tags = _wheel_tags(rest)
    if project is None or version is None or tags is None:
        return _NOTHING
    return project, version, tags


def parse_filename(filename: str) -> Parsed:
    """(project, version, tags) of a wheel or sdist name; (None, None, ∅) when it is
    neither or packaging refuses it (such files are ignored)."""
    if filename.endswith(".whl"):
        return _parse_wheel(filename[:-4])
    lower = filename.lower()
    for suffix in SDIST_SUFFIXES:
        if lower.endswith(suffix):
            # packaging reads .tar.gz and .zip; the older suffixes name the same layout.
            name_part, sep, version_part = filename[: -len(suffix)].rpartition("-")
            if not sep:
                return _NOTHING
            project, version = _sdist_project(name_part), _sdist_version(version_part)
            if project is None or version is None:
                return _NOTHING
            return project, version, frozenset()
    return _NOTHING


def is_wheel_name(filename: str) -> bool:
    return filename.endswith(".whl")


def is_sdist_name(filename: str) -> bool:
    return not filename.endswith(".whl") and filename.lower().endswith(SDIST_SUFFIXES)


@functools.lru_cache(maxsize=256)
def _canonical(project: str) -> NormalizedName:
    return canonicalize_name(project)  # a page's thousand entries name one project


def unsafe_filename(filename: str) -> str | None:
    """Why ``filename`` cannot name a file in packages/<project>/, or None.

    The one rule for every name we would write there (``tree.layout.check_filename``
    raises on it, ``vet_filename`` leaves such a page entry out): nothing that could
    leave that folder, hide in it (a leading dot) or not be written and served at all.
    """
    if not filename:
        return "empty filename"
    if filename[0] != "." and not _UNSAFE_CHAR.search(filename):
        return None
    if "/" in filename or "\\" in filename:
        return "path separator in filename"
    if filename.startswith("."):
        return "filename starts with a dot"
    if _CONTROL.search(filename):
        return "control character in filename"
    return "unpaired surrogate in filename"


def vet_filename(filename: str, project: str | None = None) -> tuple[str | None, Parsed]:
    """Why ``filename`` cannot be a file of ours (or None), and the parse it was judged
    on (a page's record keeps it).  It becomes a path in the tree, so a name the tree
    rule refuses (``unsafe_filename``), or that is not a wheel or sdist of ``project``,
    is left out."""
    problem = unsafe_filename(filename)
    if problem is not None:
        return problem, _NOTHING
    wheel = is_wheel_name(filename)
    if not (wheel or is_sdist_name(filename)):
        return "not a wheel or sdist name", _NOTHING
    parsed = parse_filename(filename)
    name, version, _tags = parsed
    if wheel and version is None:
        return "not a valid wheel name", parsed
    if project and name is not None and name != _canonical(project):
        return f"a file of project {name!r}", parsed
    return None, parsed
