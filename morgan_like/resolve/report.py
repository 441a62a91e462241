"""Explanations a user can act on: conflicts, and why an env gets only an sdist.

Conflicts are summarised: resolvelib names every rejected version of a parent
as its own cause, and a project with 400 releases would print 400 lines.

Air-gapped targets rarely have compilers, so a project that an env can only get
as an sdist is worth a line in the summary, with the reason and the config key
that would change it: most often the env's glibc, musl or macOS floor is older
than the one the project's wheels are built for.  The same reason explains a
binary-first pick that fell back far (an old release with a wheel over a much
newer one without): a pydantic-core env with ``manylinux = 2.5`` silently got
0.0.1, a placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.tags import Tag
from packaging.utils import NormalizedName
from packaging.version import Version

from morgan_like.dists.links import RemoteFile
from morgan_like.errors import ProjectNotFound, ResolutionError
from morgan_like.index.finder import Finder
from morgan_like.resolve.candidates import FileFilter, group_by_version, usable_files
from morgan_like.targets.environments import Environment
from morgan_like.targets.tags import policy_platform_tag
from morgan_like.tree.pages import UPLOAD_TIME_FORMAT, normalize_upload_time

_MACOS = re.compile(r"macosx_(\d+)_(\d+)_(.+)")
_FLOOR_HINT = "run `morgan-like generate_env` on the target"


def _levels(platforms: Iterable[str], kind: str) -> dict[str, tuple[int, int]]:
    """The best manylinux / musllinux / macOS level per arch among ``platforms``."""
    best: dict[str, tuple[int, int]] = {}
    for platform in platforms:
        level: tuple[int, int] | None = None
        if kind == "macos":
            m = _MACOS.fullmatch(platform)
            if m:
                level, arch = (int(m.group(1)), int(m.group(2))), m.group(3)
        else:
            policy = policy_platform_tag(platform)
            if policy and policy[0] == kind:
                _, level, arch = policy
        if level is not None and level > best.get(arch, (0, 0)):
            best[arch] = level
    return best


def _lowest(platforms: Iterable[str], kind: str, arch: str) -> tuple[int, int] | None:
    levels = []
    for platform in platforms:
        if kind == "macos":
            m = _MACOS.fullmatch(platform)
            if m and m.group(3) in (arch, "universal2", "universal"):
                levels.append((int(m.group(1)), int(m.group(2))))
        else:
            policy = policy_platform_tag(platform)
            if policy and policy[0] == kind and policy[2] == arch:
                levels.append(policy[1])
    return min(levels) if levels else None


def _floor_reason(env_platforms: set[str], wheel_platforms: set[str]) -> str | None:
    """ "wheels exist only for manylinux_2_28; this env allows up to 2.17: ..." or None."""
    for kind, key, label in (
        ("manylinux", "manylinux", "glibc"),
        ("musllinux", "musllinux", "musl"),
        ("macos", "macos", "macOS"),
    ):
        for arch, allowed in _levels(env_platforms, kind).items():
            needed = _lowest(wheel_platforms, kind, arch)
            if needed is None or needed <= allowed:
                continue
            spelled = f"{needed[0]}.{needed[1]}"
            shown = (
                f"macosx_{needed[0]}_{needed[1]}"
                if kind == "macos"
                else f"{kind}_{needed[0]}_{needed[1]}"
            )
            return (
                f"wheels exist only for {shown} and newer; this env allows up to "
                f"{allowed[0]}.{allowed[1]}: set `{key} = {spelled}` if the target has "
                f"{label} {spelled} or newer, or {_FLOOR_HINT}"
            )
    return None


def _python_abi(tag: Tag) -> str:
    return f"{tag.interpreter}-{tag.abi}"


def why_no_wheel(files: Iterable[RemoteFile], env: Environment) -> str:
    """Why ``env`` can use none of the wheels among ``files`` (one version's files)."""
    wheels = [f for f in files if f.is_wheel]
    if not wheels:
        return "no wheels are published for this version"
    env_pairs = {(t.interpreter, t.abi) for t in env.tags}
    env_platforms = {t.platform for t in env.tags}
    same_python = {
        t.platform for f in wheels for t in f.tags if (t.interpreter, t.abi) in env_pairs
    }
    if same_python:
        reason = _floor_reason(env_platforms, same_python)
        if reason:
            return reason
        return "wheels exist only for " + ", ".join(sorted(same_python)[:6])
    pythons = sorted({_python_abi(t) for f in wheels for t in f.tags})
    shown = ", ".join(pythons[:6]) + (", ..." if len(pythons) > 6 else "")
    return f"no wheel for this env's Python ({env.python_full_version}); wheels exist for {shown}"


# Binary first falling back past this is worth a line: the pick is another world.
FAR_DAYS = 365


@dataclass(frozen=True)
class Fallback:
    """Binary first took ``picked`` (a wheel here) over ``newest``, the newest release
    that satisfies, which this env can only get as an sdist; kept when the gap is wide."""

    picked: Version
    newest: Version
    gap: str  # "another major version", "released 400 days later"
    reason: str  # why ``newest`` has no wheel here (why_no_wheel)


@dataclass(frozen=True)
class BuildSdist:
    """A build requirement this env can only get as an sdist, for sdists the env
    builds: compiling pydantic-core on the target first means compiling maturin."""

    name: NormalizedName
    version: Version
    reason: str  # why_no_wheel
    needed_by: tuple[str, ...]  # "pydantic-core 2.27.2": the sdists that need it


def _released(files: Iterable[RemoteFile]) -> datetime | None:
    """A release's upload time: its first file's (None when no file says)."""
    times = [normalize_upload_time(f.upload_time) for f in files]
    known = [datetime.strptime(t, UPLOAD_TIME_FORMAT) for t in times if t]
    return min(known) if known else None


def _gap(picked: Version, newest: Version, files: Mapping[Version, list[RemoteFile]]) -> str | None:
    """How far binary first fell back, when far: another major version, or a release
    more than FAR_DAYS older (by upload time; unknown times skip that test)."""
    if picked.release[0] != newest.release[0]:
        return "another major version"
    old, new = _released(files.get(picked, ())), _released(files.get(newest, ()))
    if old is None or new is None:
        return None
    days = (new - old).days
    return f"released {days} days later" if days > FAR_DAYS else None


def far_fallback(
    picked: Version, newest: Version, page_files: Iterable[RemoteFile], env: Environment
) -> Fallback | None:
    """The Fallback worth a line when binary first took ``picked`` over ``newest``
    (which has no wheel for ``env``), None when the two are close."""
    files = group_by_version(page_files)
    gap = _gap(picked, newest, files)
    if gap is None:
        return None
    return Fallback(picked, newest, gap, why_no_wheel(files.get(newest, ()), env))


def env_label(env: Environment) -> str:
    markers = env.markers
    return f"env '{env.name}' (Python {env.python_full_version}, {markers.get('sys_platform', '?')} {markers.get('platform_machine', '?')})"


def explain_no_match(
    finder: Finder, env: Environment, file_filter: FileFilter, name: str, specifier: SpecifierSet
) -> str:
    """Why a requirement has no candidate: name the versions and what ruled them out."""
    try:
        page = finder.page(name)
    except ProjectNotFound:
        return f"{name} does not exist upstream"
    versions = group_by_version(page.files)
    if not versions:
        return f"{name} has no installable files upstream"
    reasons = []
    for version in sorted(versions, reverse=True)[:6]:
        files = versions[version]
        if not specifier.contains(version, prereleases=True):
            continue
        usable = usable_files(files, env, file_filter)
        if not usable:
            rp = {f.requires_python for f in files if f.requires_python}
            if rp and not any(env.admits_python(r) for r in rp):
                reasons.append(f"{version} requires Python {' or '.join(sorted(rp))}")
            else:
                reasons.append(f"{version} has no file for this env's tags")
        elif all(f.is_yanked for f in usable):
            reasons.append(f"{version} is yanked")
    available = ", ".join(str(v) for v in sorted(versions, reverse=True)[:8])
    text = f"no version of {name} satisfies {specifier or '(any)'} (available: {available})"
    if reasons:
        text += "; " + "; ".join(reasons)
    return text


MAX_CAUSE_LINES = 20


def summarise_causes(roots: Mapping[str, str], causes: Sequence[Any]) -> list[str]:
    """One line per (parent project, requirement), with the parent's versions as a range.

    resolvelib reports every rejected version of a parent as its own cause; a
    project with 400 releases would print 400 lines saying the same thing.
    """
    groups: dict[tuple[str, str], list[Version]] = {}
    requested: list[str] = []
    for cause in causes:
        req = cause.requirement
        if cause.parent is None:
            line = f"{roots.get(req.name, 'the config')} requests {req}"
            if line not in requested:
                requested.append(line)
            continue
        parent = cause.parent
        extras = f"[{','.join(sorted(parent.extras))}]" if parent.extras else ""
        groups.setdefault((f"{parent.name}{extras}", str(req)), []).append(parent.version)
    lines = list(requested)
    for (parent_name, req_text), versions in groups.items():
        unique = sorted(set(versions))
        if len(unique) == 1:
            lines.append(f"{parent_name} {unique[0]} depends on {req_text}")
        else:
            lines.append(
                f"{parent_name} {unique[0]} … {unique[-1]} ({len(unique)} versions) "
                f"depend on {req_text}"
            )
    if len(lines) > MAX_CAUSE_LINES:
        hidden = len(lines) - MAX_CAUSE_LINES + 1
        lines = lines[: MAX_CAUSE_LINES - 1] + [f"... and {hidden} more"]
    return lines


class EnvResolutionError(ResolutionError):
    """A resolution that failed in one env: the env, and what is wrong there (``body``),
    so that the same failure in several envs is said once, naming them all."""

    def __init__(self, env: Environment, body: str) -> None:
        self.env = env
        self.body = body
        super().__init__(body)

    def __str__(self) -> str:
        return f"{env_label(self.env)}: {self.body}"


def format_impossible(
    finder: Finder,
    env: Environment,
    file_filter: FileFilter,
    roots: Mapping[str, str],
    causes: Sequence[Any],
) -> str:
    """resolvelib's ResolutionImpossible causes as pip-like text, summarised (the env's
    label goes in front: EnvResolutionError)."""
    lines = ["cannot resolve the requirements."]
    # Top-level requirements on one project: why it has no match comes first; when
    # every cause has a parent, it comes after the chain. Never both.
    if len({c.requirement.name for c in causes}) == 1 and all(c.parent is None for c in causes):
        first = causes[0].requirement
        lines.append("  " + explain_no_match(finder, env, file_filter, first.name, first.specifier))
    lines.append("  The conflict is caused by:")
    lines.extend(f"    {line}" for line in summarise_causes(roots, causes))
    if all(c.parent is not None for c in causes):
        first = causes[0].requirement
        lines.append("  " + explain_no_match(finder, env, file_filter, first.name, first.specifier))
    lines.append(
        "  Hint: loosen one of these requirements, or give this env its own Python version."
    )
    return "\n".join(lines)
