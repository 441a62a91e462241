"""Is an env's Python version (and its glibc) one that exists?

``packaging`` holds no list of Python releases (``packaging.tags`` derives
tags from whatever version it is given), so "known" needs a rule of our own:
the newest CPython feature release at the time of writing (3.14) or the
running interpreter's, whichever is newer.  Only the MAJOR.MINOR part is
compared.  A patch-level table would go stale every two months and then warn
about real releases, while the mistake worth catching is a feature release
that does not exist yet (a typo such as 3.41, or a future 3.15): no wheel is
tagged for it, so a bundle for it would hold sdists only.  That is a warning,
not an error, because building a bundle ahead of a release is legitimate.
"""

from __future__ import annotations

import sys

from packaging.version import InvalidVersion, Version

from morgan_like.errors import TagKeyError
from morgan_like.targets.environments import Environment
from morgan_like.targets.tags import NEWEST_KNOWN_GLIBC, version_pair

# Bump with each CPython feature release (3.15: October 2026).
NEWEST_KNOWN_PYTHON = (3, 14)


def newest_known_python() -> tuple[int, int]:
    """The newest MAJOR.MINOR we know was released: the constant or the running interpreter."""
    return max(NEWEST_KNOWN_PYTHON, (sys.version_info[0], sys.version_info[1]))


def python_version_warning(env: Environment, written: dict[str, str], where: str) -> str | None:
    """A warning when ``env`` targets a Python newer than any known release, naming the key.

    ``written`` is the env section as the user wrote it (to name the key they
    used: python_full_version when given, else python_version); ``where`` is
    ``FILE:LINE`` or ``FILE`` for the message.
    """
    key = "python_full_version" if "python_full_version" in written else "python_version"
    value = env.markers.get(key, "")
    try:
        release = Version(value).release
    except InvalidVersion:
        return None
    newest = newest_known_python()
    if tuple(release[:2]) <= newest:
        return None
    return (
        f"{where} [env.{env.name}] {key} = {value}: newer than any Python release known "
        f"to morgan-like ({newest[0]}.{newest[1]}); few projects publish wheels for it yet, "
        "so expect mostly sdists in the bundle (check the value if it is a typo)"
    )


def glibc_warning(env: Environment, written: dict[str, str], where: str) -> str | None:
    """A warning when ``manylinux`` names a glibc newer than any known release (a typo such
    as 2.82 for 2.28 would let in wheels the target cannot load); the rule as for Python:
    legal, so not an error."""
    value = written.get("manylinux", "")
    try:
        level = version_pair("manylinux", value, prefix="manylinux", example="2.28")
    except TagKeyError:
        return None
    if level <= NEWEST_KNOWN_GLIBC:
        return None
    newest = f"{NEWEST_KNOWN_GLIBC[0]}.{NEWEST_KNOWN_GLIBC[1]}"
    return (
        f"{where} [env.{env.name}] manylinux = {value}: newer than any glibc release known "
        f"to morgan-like ({newest}); the bundle may hold wheels the target's glibc cannot "
        "load (check the value with `ldd --version` on the target)"
    )
