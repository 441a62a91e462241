"""Which of a project's files a curated mirror leaves out, whatever the env: pure.

A sync config's bandersnatch-style file filters (``exclude-platform``,
``package-types``, ``max-file-size``, ``exclude-release``) become one
FileSelection; ``why_left_out`` says why a file is not wanted, in words the
run's report shows as they are.  The sync's file rules (modes/sync_plan.py)
and the resolver's FileFilter (resolve/candidates.py) both ask it, so a
dependency resolution never picks a file the slice would leave out.

Where this follows bandersnatch 8 (src/bandersnatch_filter_plugins/) and where not:

* Platforms: the names are bandersnatch's ``exclude_platform`` ones (windows,
  macos, freebsd, linux, with its aliases win and macosx) plus musllinux, which
  bandersnatch accepts as one of its linux patterns; as there, ``linux`` also
  leaves out musllinux wheels, and an sdist never has a platform.  A wheel's
  platform is read from its tags (win*, macosx_*, freebsd*, manylinux*/linux_*/
  musllinux_*), where bandersnatch looks for substrings of the file name from a
  fixed list: that list misses manylinux2014 on riscv64, plain ``linux_x86_64``
  wheels and any later architecture, which the tags do not.  Other binary files
  (eggs, .exe/.msi installers, .dmg, .rpm) have no tags, so bandersnatch's own
  name patterns and package types decide for them.  bandersnatch's Python
  version names (py2.7, ...) and single architectures are not taken: an
  [env.NAME] section selects wheels by Python and architecture.
* Package types: ``wheel`` and ``sdist`` (bandersnatch's ``bdist_wheel`` and
  ``sdist`` spellings are accepted by the config).  With a type list, every other
  file (eggs, installers) is left out too, as bandersnatch's packagetype
  filter leaves out every type it does not list.
* ``exclude-release``: as bandersnatch's ``[filter_regex] releases``, each regex
  is matched (``re.match``: anchored at the start, case-sensitive) against the
  version; here the version is the one in the file's name in PEP 440's
  normal form (``1.0.dev1``, not ``1.0-dev1``), since a page lists files, not
  the release keys of Warehouse's JSON.
* ``max-file-size`` is per file, where bandersnatch's ``size_project_metadata``
  leaves out a whole project whose files add up past ``max_package_size``; and
  its suffixes follow SI and IEC (K = 1000, KiB = 1024), where bandersnatch
  (humanfriendly's ``parse_size(binary=True)``) reads K, KB and KiB all as
  1024: a translated bandersnatch ``1G`` is ``1GiB`` here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from morgan_like.dists.links import RemoteFile

PLATFORMS = ("windows", "macos", "freebsd", "linux", "musllinux")
PLATFORM_ALIASES = {"win": "windows", "macosx": "macos"}
PACKAGE_TYPES = ("wheel", "sdist")
PACKAGE_TYPE_ALIASES = {"bdist_wheel": "wheel"}
# A wheel's platform tag prefix -> the platform names that leave it out.
_TAG_PLATFORMS = (
    ("win", ("windows",)),
    ("macosx_", ("macos",)),
    ("freebsd", ("freebsd",)),
    ("musllinux_", ("linux", "musllinux")),
    ("manylinux", ("linux",)),
    ("linux_", ("linux",)),
)
# Files without tags (eggs, installers): bandersnatch's substrings of the file name,
# and its package types as file suffixes (bdist_msi, bdist_wininst, bdist_dmg, bdist_rpm).
_NAME_PATTERNS = {
    "windows": (".win32", "-win32", "win_amd64", "win-amd64", "win_arm64", "win-arm64"),
    "macos": ("macosx_", "macosx-"),
    "freebsd": (".freebsd", "-freebsd"),
    "linux": (
        "linux-i686",
        "linux-x86_64",
        "linux_armv7l",
        "linux_armv6l",
        "manylinux",
        "musllinux",
    ),
    "musllinux": ("musllinux",),
}
_INSTALLERS = {"windows": (".msi", ".exe"), "macos": (".dmg",), "linux": (".rpm",)}
_ARTICLES = {"wheel": "a wheel", "sdist": "an sdist"}
# max-file-size suffixes (case-insensitive): SI powers of 1000, IEC powers of 1024.
SIZE_UNITS = {
    "": 1,
    "b": 1,
    **{p: 1000**i for i, p in enumerate(("k", "m", "g", "t"), 1)},
    **{f"{p}b": 1000**i for i, p in enumerate(("k", "m", "g", "t"), 1)},
    **{f"{p}ib": 1024**i for i, p in enumerate(("k", "m", "g", "t"), 1)},
}
SIZE_HINT = (
    "bytes, or with a suffix: K, M, G, T (powers of 1000) or KiB, MiB, GiB, TiB (1024), e.g. 50M"
)


def parse_size(text: str) -> int:
    """``50M`` -> 50000000, ``1.5GiB`` -> 1610612736; ValueError (worded for the user)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in SIZE_UNITS:
        raise ValueError(f"{text.strip()!r} is not a size")
    size = int(float(m.group(1)) * SIZE_UNITS[unit])
    if size < 1:
        raise ValueError(f"{text.strip()!r} is less than one byte")
    return size


def human_size(size: int) -> str:
    """Bytes in SI units, one decimal at most: 73100000 -> ``73.1 MB``."""
    for unit, scale in (("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if size >= scale:
            return f"{size / scale:.1f}".rstrip("0").rstrip(".") + f" {unit}"
    return f"{size} bytes"


def file_platforms(file: RemoteFile) -> frozenset[str]:
    """The platform names (PLATFORMS) that leave ``file`` out; none for an sdist or a
    pure wheel."""
    if file.is_sdist:
        return frozenset()
    found: set[str] = set()
    if file.is_wheel:
        for tag in file.tags:
            for prefix, names in _TAG_PLATFORMS:
                if tag.platform.startswith(prefix):
                    found.update(names)
                    break
        return frozenset(found)
    name = file.filename.lower()
    for platform, patterns in _NAME_PATTERNS.items():
        if any(p in name for p in patterns):
            found.add(platform)
    for platform, suffixes in _INSTALLERS.items():
        if name.endswith(suffixes):
            found.add(platform)
    return frozenset(found)


@dataclass(frozen=True)
class FileSelection:
    """The file filters of a sync config; the default leaves nothing out.

    ``exclude_platforms``: names from PLATFORMS; ``package_types``: names from
    PACKAGE_TYPES (empty: every type); ``max_file_size``: bytes (None: no limit;
    a file whose size the page does not give is kept); ``exclude_releases``:
    regexes matched against the version (see the module docstring).
    """

    exclude_platforms: frozenset[str] = frozenset()
    package_types: frozenset[str] = frozenset()
    max_file_size: int | None = None
    exclude_releases: tuple[re.Pattern[str], ...] = ()

    def why_left_out(self, file: RemoteFile) -> str | None:
        """Why ``file`` is not wanted (one phrase), or None when it is."""
        return self.why_not_selected(file) or self.too_large(file)

    def why_not_selected(self, file: RemoteFile) -> str | None:
        """The reasons of ``why_left_out`` other than the size: what the config chose
        to leave out, as opposed to what it could not afford."""
        if not (self.package_types or self.exclude_platforms or self.exclude_releases):
            return None  # a full mirror asks for every file: cheap
        kind = "wheel" if file.is_wheel else "sdist" if file.is_sdist else "file"
        if self.package_types and kind not in self.package_types:
            wanted = sorted(self.package_types)
            what = _ARTICLES.get(kind) or "not " + " or ".join(_ARTICLES[t] for t in wanted)
            return f"{what} (package-types = {' '.join(wanted)})"
        if self.exclude_platforms:  # a wheel's tags are parsed only when asked
            hit = sorted(self.exclude_platforms & file_platforms(file))
            if hit:
                return f"a {hit[0]} {kind} (exclude-platform)"
        if self.exclude_releases and file.version is not None:
            version = str(file.version)
            for pattern in self.exclude_releases:
                if pattern.match(version):
                    return f"version {version} matches exclude-release {pattern.pattern!r}"
        return None

    def too_large(self, file: RemoteFile) -> str | None:
        if self.max_file_size is None or file.size is None or file.size <= self.max_file_size:
            return None
        limit, size = human_size(self.max_file_size), human_size(file.size)
        return f"larger than max-file-size {limit} ({size})"
