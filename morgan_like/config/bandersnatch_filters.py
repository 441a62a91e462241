"""bandersnatch.conf's filter sections translated: which plugins act ([plugins] enabled)
and what each of their options becomes in our [sync] section (config/bandersnatch.py).

Each function reads one family of bandersnatch 8.2's filter plugins with that
plugin's own parsing (its comment rules, its name normalization, its substring
tests), so that the keys written keep the same files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

if TYPE_CHECKING:
    from morgan_like.config.bandersnatch import _Builder

# Each filter section, the plugins that read it, and the keys they read (None: any key).
SECTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    "allowlist": (
        ("allowlist_project", "allowlist_release", "project_requirements", "size_project_metadata"),
        ("packages", "requirements", "requirements_path"),
    ),
    "blocklist": (
        ("blocklist_project", "blocklist_release", "exclude_platform"),
        ("packages", "platforms"),
    ),
    "latest_release": (("latest_release",), ("keep", "sort_by")),
    "filter_prerelease": (("prerelease_release",), ("packages",)),
    "filter_regex": (("regex_project", "regex_release"), ("packages", "releases")),
    "size_project_metadata": (("size_project_metadata",), ("max_package_size",)),
    "versions_count_project_metadata": (
        ("versions_count_project_metadata",),
        ("min_versions", "max_versions"),
    ),
    "regex_project_metadata": (("regex_project_metadata",), None),
    "regex_release_file_metadata": (("regex_release_file_metadata",), None),
    "version_range_release_file_metadata": (("version_range_release_file_metadata",), None),
}
# [blocklist] platforms names -> our exclude-platform names (bandersnatch's "linux"
# patterns include musllinux); the py2.7-style names and single architectures have none.
_PLATFORMS = (
    (("windows", "win"), ("windows",)),
    (("macos", "macosx"), ("macos",)),
)
_PACKAGE_TYPES = {"sdist": "sdist", "bdist_wheel": "wheel"}

WITH_DEPENDENCIES_NOTE = (
    "bandersnatch mirrors no dependencies; with-dependencies = true (and an [env.NAME] "
    "section per target, see `morgan-like generate_env`) adds what each kept release needs"
)


def translate_filters(b: _Builder) -> None:
    for section, (plugins, keys) in SECTIONS.items():
        if not b.conf.has_section(section):
            continue
        for key in b.conf[section]:
            if keys is not None and key not in keys:
                b.skip(section, key, b.conf.get(section, key, raw=True), "unknown key")
        if not any(b.on(p) for p in plugins):
            b.notes.append(
                f"[{section}] is inert, in bandersnatch too: none of its plugins "
                f"({', '.join(plugins)}) is in [plugins] enabled"
            )
    excludes = _excludes(b)
    _allowlist(b, excludes)
    if excludes:
        b.put("sync", "exclude", [p for p, _ in excludes], *_exclude_notes(b))
    _release_filters(b)
    _file_filters(b)
    _metadata_filters(b)


def _excludes(b: _Builder) -> list[tuple[str, str]]:
    """(our exclude pattern, where it came from), from blocklist_project and regex_project."""
    found: list[tuple[str, str]] = []
    if b.on("blocklist_project"):
        for line in b.lines_of("blocklist", "packages"):
            if line.startswith("#"):
                continue
            requirement = _requirement(b, "blocklist", line)
            if requirement is None or requirement.specifier or requirement.name != line:
                continue  # bandersnatch's blocklist_project skips these lines too
            name = canonicalize_name(requirement.name)
            found.append((f"^{name}$", f"[blocklist] packages {line}"))  # [a-z0-9-] only
    if b.on("regex_project"):
        for line in (b.get("filter_regex", "packages") or "").split("\n"):
            if line:
                found.append((line, f"[filter_regex] packages {line}"))
    return found


def _exclude_notes(b: _Builder) -> tuple[str, ...]:
    if b.on("regex_project") and b.get("filter_regex", "packages"):
        return (
            "bandersnatch matched [filter_regex] packages against the upstream's names as "
            "listed, case-sensitively; ours matches normalized names, any case",
        )
    return ()


def _requirement(b: _Builder, section: str, line: str) -> Requirement | None:
    try:
        return Requirement(line)
    except InvalidRequirement as exc:
        b.skip(
            section,
            "packages",
            line,
            f"not a PEP 508 requirement ({exc}); bandersnatch stops on it",
        )
        return None


def _allowlist(b: _Builder, excludes: list[tuple[str, str]]) -> None:
    """[allowlist] packages -> projects (specifiers only where allowlist_release reads
    them), requirements files -> requirements."""
    names_only = not b.on("allowlist_release")  # allowlist_project reads names only
    projects: list[str] = []
    seen: dict[str, str] = {}
    for raw in b.lines_of("allowlist", "packages"):
        if raw.startswith("#"):
            continue
        line = raw.split("#", 1)[0].strip()
        requirement = _requirement(b, "allowlist", line)
        if requirement is None or not (b.on("allowlist_project") or b.on("allowlist_release")):
            continue
        name = canonicalize_name(requirement.name)
        blocked = [where for pattern, where in excludes if re.match(pattern, name, re.I)]
        if blocked:
            b.notes.append(f"{name} is allowlisted and blocked ({blocked[0]}): never synced")
            continue
        if name in seen:
            b.skip(
                "allowlist",
                "packages",
                line,
                f"{name} is listed on another line too "
                f"({seen[name]}): bandersnatch keeps releases matching either line, ours "
                "takes one line per project",
            )
            continue
        seen[name] = line
        specifier = "" if names_only else str(requirement.specifier)
        if requirement.specifier and names_only:
            b.notes.append(
                f"{line}: bandersnatch applies the specifier only with allowlist_release "
                "enabled; every release kept"
            )
        if requirement.extras or requirement.marker:
            b.notes.append(f"{line}: bandersnatch ignores extras and markers; left out")
        if specifier and not b.on("prerelease_release"):
            b.skip(
                "allowlist",
                "packages",
                line,
                f"translated as {name}{specifier}, but "
                "bandersnatch keeps every prerelease it matches; ours only when it names "
                "one or no final release matches (PEP 440)",
            )
        projects.append(f"{name}{specifier}")
    if b.on("allowlist_release") and not b.on("allowlist_project") and projects:
        b.skip(
            "plugins",
            "enabled",
            "allowlist_release",
            "without allowlist_project "
            "bandersnatch also writes an empty page for every other project; ours syncs "
            "only the listed ones",
        )
    requirements = _requirement_files(b)
    if projects:
        b.put("sync", "projects", projects)
    if requirements:
        b.put("sync", "requirements", requirements)
    if projects or requirements:
        b.put("sync", "with-dependencies", ["false"], WITH_DEPENDENCIES_NOTE)


def _requirement_files(b: _Builder) -> list[str]:
    if not b.on("project_requirements"):
        return []
    base = b.get("allowlist", "requirements_path")
    files = []
    for line in b.lines_of("allowlist", "requirements"):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "*" in line:
            b.skip("allowlist", "requirements", line, "a glob: list the files it matches")
        elif not base or not Path(base).is_absolute():
            b.skip(
                "allowlist",
                "requirements",
                line,
                "relative to the folder bandersnatch runs "
                "in (no absolute requirements_path): write the file's absolute path",
            )
        else:
            files.append(str(Path(base) / line))
    if files and b.on("allowlist_project") and b.lines_of("allowlist", "packages"):
        b.skip(
            "plugins",
            "enabled",
            "project_requirements",
            "with allowlist_project too, "
            "bandersnatch keeps only projects on both lists; ours keeps either",
        )
    if files and not b.on("project_requirements_pinned"):
        b.skip(
            "plugins",
            "enabled",
            "project_requirements",
            "without project_requirements_pinned "
            "bandersnatch keeps every release of the files' projects; ours applies their "
            "specifiers (and follows -r, -c and --hash lines, which bandersnatch skips)",
        )
    return files


def _release_filters(b: _Builder) -> None:
    if b.on("latest_release"):
        keep = (b.get("latest_release", "keep") or "").strip()
        if keep.isdigit() and int(keep) > 0:
            if (b.get("latest_release", "sort_by") or "version") == "time":
                b.skip("latest_release", "sort_by", "time", "ours keeps the newest by version")
            b.put(
                "sync",
                "keep-latest",
                [str(int(keep))],
                "bandersnatch also keeps the "
                "upstream's latest final release (its info.version) in place of the last one",
            )
            if any(
                s.key == "projects" and any(re.search(r"[<>=!~]", v) for v in s.values)
                for s in b.settings
            ):
                b.skip(
                    "latest_release",
                    "keep",
                    keep,
                    "bandersnatch counts the newest among all "
                    "releases, before the allowlist specifiers; ours among those they keep",
                )
        elif keep:
            b.skip(
                "latest_release",
                "keep",
                keep,
                "not a whole number >= 1: bandersnatch keeps every release",
            )
    if b.on("prerelease_release"):
        names = [canonicalize_name(n) for n in b.lines_of("filter_prerelease", "packages")]
        patterns = [f"^{n}$" for n in names] or [".*"]
        b.put(
            "sync",
            "prerelease-exclude",
            patterns,
            "bandersnatch matched versions ending "
            "in rcN, aN, alphaN, bN, betaN or devN; ours leaves out PEP 440 prereleases",
        )
    if b.on("regex_release"):
        releases = [p for p in (b.get("filter_regex", "releases") or "").split("\n") if p]
        if releases:
            b.put("sync", "exclude-release", releases)
    if b.on("blocklist_release"):
        for line in b.lines_of("blocklist", "packages"):
            requirement = None if line.startswith("#") else _requirement(b, "blocklist", line)
            if requirement is not None and requirement.specifier:
                b.skip(
                    "blocklist",
                    "packages",
                    line,
                    "ours has no per-project release "
                    "blocklist (exclude-release matches versions of every project)",
                )
    if b.on("project_requirements_pinned") and b.on("latest_release"):
        b.skip(
            "plugins",
            "enabled",
            "project_requirements_pinned",
            "bandersnatch applies no "
            "other release filter to a project its files pin; ours applies keep-latest too",
        )


def _file_filters(b: _Builder) -> None:
    if b.on("exclude_platform"):
        ours: list[str] = []
        for name in (b.get("blocklist", "platforms") or "").split():
            found = _platform(name.lower())
            if found is None:
                b.skip(
                    "blocklist",
                    "platforms",
                    name,
                    "ours excludes whole platforms only "
                    "(windows, macos, freebsd, linux, musllinux), not Python versions or "
                    "single architectures",
                )
            ours += [p for p in found or () if p not in ours]
        if ours:
            b.put(
                "sync",
                "exclude-platform",
                ours,
                "bandersnatch matched names in every file "
                "name (.exe, .msi, .egg, .dmg, .rpm too); ours reads wheel tags",
            )
    if b.on("regex_release_file_metadata") and b.conf.has_section("regex_release_file_metadata"):
        for key in b.conf["regex_release_file_metadata"]:
            value = b.get("regex_release_file_metadata", key) or ""
            types = [_PACKAGE_TYPES.get(p) for p in value.split("\n") if p]
            if (
                key in ("release_file.packagetype", "any:release_file.packagetype")
                and types
                and all(types)
            ):
                b.put("sync", "package-types", [t for t in types if t])
            else:
                b.skip(
                    "regex_release_file_metadata",
                    key,
                    value,
                    "ours filters no file metadata but its package type (sdist, bdist_wheel)",
                )
    if b.on("version_range_release_file_metadata"):
        _untranslated_section(b, "version_range_release_file_metadata", "ours has no such filter")


def _platform(name: str) -> tuple[str, ...] | None:
    """bandersnatch's ExcludePlatformFilter branches, in its order (its freebsd and linux
    tests are substring tests of those words)."""
    for names, ours in _PLATFORMS:
        if name in names:
            return ours
    if name in "freebsd":
        return ("freebsd",)
    if name in "linux":
        return ("linux", "musllinux")
    return None


def _metadata_filters(b: _Builder) -> None:
    if b.on("size_project_metadata") and b.conf.has_section("size_project_metadata"):
        size = b.get("size_project_metadata", "max_package_size") or ""
        exempt = b.on("allowlist_project") and b.lines_of("allowlist", "packages")
        if exempt:
            b.notes.append(
                f"[size_project_metadata] max_package_size = {size} changes nothing: "
                "every project synced is allowlisted, and allowlisted ones are exempt"
            )
        else:
            b.skip(
                "size_project_metadata",
                "max_package_size",
                size,
                "bandersnatch leaves out "
                "projects whose files add up to more; ours has max-file-size, per file",
            )
    for section in ("versions_count_project_metadata", "regex_project_metadata"):
        if b.on(section):
            _untranslated_section(b, section, "ours has no such project filter")


def _untranslated_section(b: _Builder, section: str, reason: str) -> None:
    if b.conf.has_section(section):
        for key in b.conf[section]:
            b.skip(section, key, b.conf.get(section, key, raw=True), reason)
