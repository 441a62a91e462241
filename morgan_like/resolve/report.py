"""Explanations a user can act on: why an env gets only an sdist of a project.

Air-gapped targets rarely have compilers, so a project that an env can only get
as an sdist is worth a line in the summary, with the reason and the config key
that would change it: most often the env's glibc, musl or macOS floor is older
than the one the project's wheels are built for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from packaging.tags import Tag

from morgan_like.dists.links import RemoteFile
from morgan_like.targets.environments import Environment
from morgan_like.targets.tags import policy_platform_tag

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
