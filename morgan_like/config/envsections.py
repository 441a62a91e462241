"""An ``[env.NAME]`` section of morgan.ini -> Environment, or a ConfigError naming the key.

Missing markers are derived from the ones given (an env says ``sys_platform = linux``
and gets ``os_name = posix``), markers that contradict each other are refused, and
the wheel tags are derived (``targets.tags``) unless the section lists them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

from packaging.tags import Tag
from packaging.version import InvalidVersion, Version

from morgan_like.config.options import parse_bool
from morgan_like.errors import ConfigError, TagKeyError
from morgan_like.targets import tags as _tags
from morgan_like.targets.environments import ENV_NAME, MARKER_KEYS, VALID_KEYS, Environment

# Keys that steer tag derivation, pointless (so an error) next to an explicit ``tags``.
_DERIVATION_KEYS = ("platform_tags", "manylinux", "musllinux", "macos", "free_threaded")

_IMPLEMENTATIONS = {
    "cpython": "CPython",
    "pypy": "PyPy",
    "graalpy": "GraalVM",
    "ironpython": "IronPython",
    "jython": "Jython",
}
_SYSTEMS = {
    "linux": ("posix", "linux", "Linux"),
    "windows": ("nt", "win32", "Windows"),
    "darwin": ("posix", "darwin", "Darwin"),
}
_DEFAULT_MACHINE = {"linux": "x86_64", "windows": "AMD64", "darwin": "arm64"}
_PYTHON_VERSION = re.compile(r"\d+\.\d+")


def environment_from_section(
    name: str, keys: Mapping[str, str], *, file: str, binary_only: bool = False
) -> Environment:
    """Build an Environment from one ``[env.NAME]`` section, or raise a ConfigError naming the key.

    ``binary_only``: the default for the section's ``binary-only`` ([mirror]'s value).
    """
    section = f"env.{name}"
    raw = {k.strip().lower(): v.strip() for k, v in keys.items()}
    if "binary_only" in raw:
        raw["binary-only"] = raw.pop("binary_only")

    def error(problem: str, key: str | None = None, hint: str | None = None) -> ConfigError:
        return ConfigError(file=file, problem=problem, section=section, key=key, hint=hint)

    for key in raw:
        if key not in VALID_KEYS:
            close = difflib.get_close_matches(key, VALID_KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise error(
                f"unknown key {key!r} in an environment section",
                key,
                hint + "valid keys: " + ", ".join(VALID_KEYS),
            )
    if not name.strip():
        raise error(
            "environment section without a name", hint="write it as [env.NAME], e.g. [env.linux312]"
        )
    if not ENV_NAME.fullmatch(name) or len(name) > 100:
        raise error(
            f"environment name {name!r} cannot name its index folder envs/{name}/",
            hint="use letters, digits, '.', '_' and '-' (starting with a letter or digit), "
            "e.g. [env.linux312]",
        )

    markers: dict[str, str] = {k: raw[k] for k in MARKER_KEYS if k in raw}
    full = _python_versions(markers, error)
    implementation = _implementation(markers, error)
    system = _system(raw, error, explicit_tags="tags" in raw)
    _agree_with_system(raw, system, error)
    if system in _SYSTEMS:
        for key, value in zip(("os_name", "sys_platform", "platform_system"), _SYSTEMS[system]):
            markers.setdefault(key, value)
    if "platform_machine" not in markers:
        markers["platform_machine"] = _machine_from_platform_tag(raw.get("platform_tag"), system)
    if "implementation_version" not in markers:
        markers["implementation_version"] = (
            markers["python_full_version"] if implementation == "cpython" else ""
        )
    for key in MARKER_KEYS:
        markers.setdefault(key, "")

    if "tags" in raw:
        for key in _DERIVATION_KEYS:
            if key in raw:
                raise error(
                    f"{key!r} is ignored next to an explicit 'tags' list",
                    key,
                    "keep either the full 'tags' list (as generate_env writes it) or the keys that derive it",
                )
        try:
            tag_list = _tags.parse_tags(raw["tags"])
        except ValueError as exc:
            raise error(
                f"invalid tag: {exc}",
                "tags",
                "write tags like cp312-cp312-manylinux_2_17_x86_64, best first",
            ) from None
        if not tag_list:
            raise error(
                "'tags' is empty",
                "tags",
                "list the accepted tags, or remove the key to derive them",
            )
    else:
        tag_list = _derive_tags(raw, markers, system, implementation, full, error)
    try:
        tag_list = _tags.filter_whl_tags(raw, tag_list)
    except TagKeyError as exc:
        raise error(exc.problem, exc.key, exc.hint) from None
    only = parse_bool(raw.get("binary-only"), binary_only)
    if only is None:
        raise error(
            f"binary-only = {raw['binary-only']!r} is not a boolean",
            "binary-only",
            "write binary-only = true or false",
        )
    return Environment(
        name=name, markers=markers, tags=tag_list, python_full_version=full, binary_only=only
    )


def _python_versions(markers: dict[str, str], error) -> Version:
    """Fill python_version/python_full_version from each other; both missing or inconsistent is an error."""
    pv = markers.get("python_version")
    pfv = markers.get("python_full_version")
    if pv is None and pfv is None:
        raise error(
            "no python version",
            "python_version",
            "add e.g. python_version = 3.12 (and python_full_version = 3.12.7)",
        )
    if pv is not None and not _PYTHON_VERSION.fullmatch(pv):
        raise error(
            f"python_version {pv!r} is not MAJOR.MINOR",
            "python_version",
            "write e.g. python_version = 3.12",
        )
    full: Version | None = None
    if pfv is not None:
        try:
            # A development build says e.g. "3.14.0a1+"; the marker keeps that spelling.
            full = Version(pfv[:-1] if pfv.endswith("+") else pfv)
        except InvalidVersion:
            full = None
        if full is None or len(full.release) < 2 or full.local is not None or full.epoch:
            raise error(
                f"python_full_version {pfv!r} is not a Python version",
                "python_full_version",
                "write e.g. python_full_version = 3.12.7",
            )
        major_minor = f"{full.release[0]}.{full.release[1]}"
        if full.release[0] < 2:
            raise error(
                f"python_full_version = {pfv} is not a Python that wheels are made for",
                "python_full_version",
                "write e.g. python_full_version = 3.12.7",
            )
        if pv is not None and pv != major_minor:
            raise error(
                f"python_version = {pv} contradicts python_full_version = {pfv}",
                "python_version",
                f"python_version must be the first two parts of python_full_version: {major_minor}",
            )
        markers["python_version"] = major_minor
    else:
        assert pv is not None
        if int(pv.split(".")[0]) < 2:
            raise error(
                f"python_version = {pv} is not a Python that wheels are made for",
                "python_version",
                "write e.g. python_version = 3.12",
            )
        # pip's --python-version 3.12 means 3.12.0 for Requires-Python checks.
        full = Version(f"{pv}.0")
        markers["python_full_version"] = f"{pv}.0"
    return full


def _implementation(markers: dict[str, str], error) -> str:
    name = markers.get("implementation_name")
    ppi = markers.get("platform_python_implementation")
    if name is None:
        name = ppi.lower() if ppi else "cpython"
        name = {"graalvm": "graalpy"}.get(name, name)
        markers["implementation_name"] = name
    if ppi is None:
        markers["platform_python_implementation"] = _IMPLEMENTATIONS.get(name, name)
    elif name in _IMPLEMENTATIONS and ppi.lower() != _IMPLEMENTATIONS[name].lower():
        raise error(
            f"implementation_name = {name} contradicts platform_python_implementation = {ppi}",
            "platform_python_implementation",
            f"for {name} it is {_IMPLEMENTATIONS[name]}",
        )
    return name


def _system(raw: Mapping[str, str], error, *, explicit_tags: bool) -> str | None:
    """linux / windows / darwin (or another sys_platform) from whichever keys say so; they must agree."""
    votes: list[tuple[str, str]] = []
    if "sys_platform" in raw:
        sp = raw["sys_platform"].lower()
        votes.append(
            (
                "sys_platform",
                "linux" if sp.startswith("linux") else {"win32": "windows"}.get(sp, sp),
            )
        )
    if "platform_system" in raw:
        votes.append(("platform_system", raw["platform_system"].lower()))
    if "platform_tag" in raw:
        pt = _tags.normalize_platform(raw["platform_tag"])
        prefixes = (
            ("linux", "linux"),
            ("manylinux", "linux"),
            ("musllinux", "linux"),
            ("win", "windows"),
            ("macosx", "darwin"),
        )
        for prefix, system in prefixes:
            if pt.startswith(prefix):
                votes.append(("platform_tag", system))
                break
    if not votes and raw.get("os_name") == "nt":
        votes.append(("os_name", "windows"))
    for key, system in votes[1:]:
        if system != votes[0][1]:
            raise error(
                f"{key} = {raw[key]} contradicts {votes[0][0]} = {raw[votes[0][0]]}",
                key,
                "all platform keys must describe the same system; run `morgan-like generate_env` on the target",
            )
    if votes:
        return votes[0][1]
    if explicit_tags:
        return None
    raise error(
        "cannot tell which platform this environment is",
        "sys_platform",
        "add sys_platform = linux | win32 | darwin (or paste `morgan-like generate_env` run on the target)",
    )


def _agree_with_system(raw: Mapping[str, str], system: str | None, error) -> None:
    """os_name and platform_machine, when given, must fit the system the other keys name
    (sys_platform = win32 with os_name = posix, or platform_machine = potato, would make
    every marker that tests them lie)."""
    if system is None:
        return
    said = next((k for k in ("sys_platform", "platform_system", "platform_tag") if k in raw), None)
    os_name = raw.get("os_name")
    if system in _SYSTEMS and said is not None and os_name is not None:
        expected = _SYSTEMS[system][0]
        if os_name != expected:
            raise error(
                f"os_name = {os_name} contradicts {said} = {raw[said]}",
                "os_name",
                f"on {_SYSTEMS[system][2]} os_name is {expected}; run `morgan-like generate_env` "
                "on the target",
            )
    machine = raw.get("platform_machine")
    if machine is not None and not _tags.known_machine(system, machine):
        known = {
            "linux": "x86_64, aarch64, i686, armv7l, ppc64le, s390x, riscv64, ...",
            "windows": "AMD64, x86, ARM64",
            "darwin": "arm64, x86_64",
        }[system]
        raise error(
            f"unknown {_SYSTEMS[system][2]} machine {machine!r}",
            "platform_machine",
            f"write the target's platform.machine(): {known}",
        )


def _machine_from_platform_tag(platform_tag: str | None, system: str | None) -> str:
    if platform_tag:
        pt = _tags.normalize_platform(platform_tag)
        if system == "windows":
            return _tags.WINDOWS_MACHINE.get(pt, _DEFAULT_MACHINE["windows"])
        if system == "linux" and pt.startswith("linux_"):
            return pt[len("linux_") :]
        policy = _tags.policy_platform_tag(pt)
        if system == "linux" and policy:
            return policy[2]
        if system == "darwin":
            arch = pt.rsplit("_", 1)[-1]
            if arch in ("arm64", "x86_64"):
                return arch
    return _DEFAULT_MACHINE.get(system or "", "")


def _derive_tags(raw, markers, system, implementation, full: Version, error) -> list[Tag]:
    """Tags pip would compute on the described interpreter (platform_tags: like pip's --platform)."""
    py = (full.release[0], full.release[1])
    free_threaded = parse_bool(raw.get("free_threaded"), default=False)
    if free_threaded is None:
        raise error(
            f"free_threaded = {raw['free_threaded']!r} is not a boolean",
            "free_threaded",
            "write true or false",
        )
    if free_threaded and (implementation != "cpython" or py < (3, 13)):
        raise error(
            "free_threaded needs CPython 3.13 or newer",
            "free_threaded",
            "remove free_threaded, or set python_full_version to 3.13 or newer",
        )
    for key, wanted in (("manylinux", "linux"), ("musllinux", "linux"), ("macos", "darwin")):
        if key in raw and system != wanted:
            raise error(
                f"{key} only applies to {wanted} environments",
                key,
                f"remove {key} from this section",
            )
    if "platform_tags" in raw:
        for key in ("manylinux", "musllinux", "macos"):
            if key in raw:
                raise error(
                    f"{key!r} is ignored next to an explicit 'platform_tags' list",
                    key,
                    "platform_tags are taken verbatim; list the platforms there, or drop platform_tags",
                )
        platforms = _tags.split_words(raw["platform_tags"])
        if not platforms:
            raise error(
                "'platform_tags' is empty",
                "platform_tags",
                "e.g. platform_tags = manylinux_2_17_x86_64",
            )
        try:
            platforms = [_tags.check_platform_tag(p, "platform_tags") for p in platforms]
        except TagKeyError as exc:
            raise error(exc.problem, exc.key, exc.hint) from None
    else:
        try:
            platforms = _tags.derive_platforms(raw, system, markers["platform_machine"])
        except TagKeyError as exc:
            raise error(exc.problem, exc.key, exc.hint) from None
    iv: tuple[int, ...] | None = None
    if implementation == "pypy" and markers["implementation_version"]:
        try:
            iv = Version(markers["implementation_version"]).release
        except InvalidVersion:
            raise error(
                f"implementation_version {markers['implementation_version']!r} is not a version",
                "implementation_version",
                "write e.g. implementation_version = 7.3.17",
            ) from None
    return _tags.python_tags(
        py,
        platforms,
        implementation=implementation,
        free_threaded=free_threaded,
        implementation_version=iv,
        linux=system == "linux",
    )
