"""morgan.ini -> Config: environments, requirements and constraints, mirror options.

A morgan 0.15 config loads unchanged.  Every problem becomes one ConfigError
that names the file, section, key (and line when we can find it) and shows
what to write instead -- all before anything is downloaded.  What is legal
but probably not meant (a Python that does not exist yet, dependency groups
nobody named) becomes one line in ``Config.warnings`` instead.
"""

from __future__ import annotations

import configparser
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from morgan_like.config.envsections import environment_from_section
from morgan_like.config.initext import _locate, _section, read_config_text, read_ini
from morgan_like.config.locks import Lock
from morgan_like.config.options import DEFAULT_INDEX_URL, MIRROR_OPTIONS, parse_bool
from morgan_like.config.overrides import read_overrides
from morgan_like.config.pythons import glibc_warning, python_version_warning
from morgan_like.config.reqfiles import InputFile, RequirementLine, marker_problem
from morgan_like.config.sources import Sources, read_sources
from morgan_like.config.storageconf import StorageSettings, read_storage
from morgan_like.errors import ConfigError
from morgan_like.targets.environments import MARKER_KEYS, Environment

__all__ = ["Config", "RequirementLine", "load_config", "MIRROR_OPTIONS"]

REQ_HINT = (
    "write `name = SPEC`, e.g. requests = >=2.24.0, xonsh = [full]~=0.11.0, "
    'foo = >=1; python_version < "3.8", or `name =` for any version'
)
GENERATE_HINT = "`morgan-like generate_env >> morgan.ini` writes one for this machine"
SECTIONS = ("env.NAME", "requirements", "requirements_from", "dependencies", "mirror", "storage")
_NAMED_SECTIONS = SECTIONS[1:]


@dataclass
class Config:
    """Everything a mirror run needs from morgan.ini.

    * ``requirements``: the top-level requirements; a line's ``hashes`` restrict
      which files may satisfy it (``hashes_for``).
    * ``constraints``: pip ``-c`` lines; they narrow a project's versions
      wherever it appears in an env's resolution but never add a project
      (``constraints_for``).
    * ``build_requirements``: ``[build-system] requires`` of the listed local
      projects; resolve them per env on their own, as pip builds in an isolated
      environment, and bundle the result (``build_requirements_for``).
    * ``dependency_overrides``: ``(canonical name, Version)`` -> the requirements
      that replace that release's Requires-Dist (see ``config.overrides``).
    * ``warnings``: one line each, naming file and key, for the caller to show
      before resolving; nothing in them stops a run.
    * ``inputs``: every file ``[requirements_from]`` read, nested ones included,
      in reading order (``config.inputs`` copies them into a tree).
    * ``locks``: the ``uv.lock`` / ``pylock.toml`` files of ``[requirements_from]
      locks``, taken as locked (``config.locks``, ``modes.bundle_locks``).
    """

    path: Path
    environments: list[Environment]
    requirements: list[RequirementLine]
    index_url: str | None
    options: dict[str, str]
    constraints: tuple[RequirementLine, ...] = ()
    build_requirements: tuple[RequirementLine, ...] = ()
    dependency_overrides: Mapping[tuple[NormalizedName, Version], tuple[Requirement, ...]] = field(
        default_factory=dict
    )
    warnings: tuple[str, ...] = ()
    inputs: tuple[InputFile, ...] = ()
    locks: tuple[Lock, ...] = ()
    storage: StorageSettings | None = None  # [storage]: where an s3:// tree's bucket is

    @property
    def prefer_binary(self) -> bool:
        """[mirror] prefer-binary (default true): a version with a wheel beats a newer sdist-only one."""
        return bool(parse_bool(self.options.get("prefer-binary"), True))

    def requirements_for(self, env: Environment) -> list[Requirement]:
        """The top-level requirements whose marker holds in ``env``."""
        return [r.requirement for r in self.requirements if env.evaluate(r.requirement.marker)]

    def build_requirements_for(self, env: Environment) -> list[Requirement]:
        """The local projects' build requirements whose marker holds in ``env``."""
        return [
            r.requirement for r in self.build_requirements if env.evaluate(r.requirement.marker)
        ]

    def constraints_for(self, env: Environment) -> dict[NormalizedName, SpecifierSet]:
        """Project -> the versions its constraints allow in ``env`` (all lines must hold)."""
        return constraints_in(self.constraints, env)

    def hashes_for(self, env: Environment) -> dict[NormalizedName, frozenset[str]]:
        """Project -> the sha256 hex digests its files may have in ``env`` (hashes_in)."""
        return hashes_in((*self.requirements, *self.constraints), env)


def constraints_in(
    constraints: Iterable[RequirementLine], env: Environment
) -> dict[NormalizedName, SpecifierSet]:
    """Project -> the versions ``constraints`` allow in ``env`` (all lines must hold).

    Shared with a sync slice's config (config.syncconf), which reads the same lines."""
    out: dict[NormalizedName, SpecifierSet] = {}
    for line in constraints:
        req = line.requirement
        if env.evaluate(req.marker):
            name = canonicalize_name(req.name)
            out[name] = out.get(name, SpecifierSet()) & req.specifier
    return out


def hashes_in(
    lines: Iterable[RequirementLine], env: Environment
) -> dict[NormalizedName, frozenset[str]]:
    """Project -> the sha256 hex digests its files may have in ``env``.

    As pip: the hashes of every requirement and constraint line on one
    project (whose marker holds) intersect; lines without hashes do not
    restrict.  Only sha256 is listed, since indexes publish no other digest;
    a line with only sha384/sha512 hashes was warned about when read.
    """
    out: dict[NormalizedName, frozenset[str]] = {}
    for line in lines:
        wanted = line.sha256s()
        if wanted and env.evaluate(line.requirement.marker):
            name = canonicalize_name(line.requirement.name)
            out[name] = out[name] & wanted if name in out else wanted
    return out


def load_config(path: Path | str) -> Config:
    """Read and validate a morgan.ini; raise ConfigError on the first problem."""
    path = Path(path)
    if path.is_dir():  # an index directory, as morgan's -i: its morgan.ini
        path = path / "morgan.ini"
    file = str(path)
    text = read_config_text(
        path,
        f"create it with [env.NAME] sections and a [requirements] section; {GENERATE_HINT}",
    )
    try:
        return _load(path, text)
    except ConfigError as exc:
        if exc.file == file and exc.line is None and exc.section is not None:
            exc.line = _locate(text, exc.section, exc.key)
        raise


def _load(path: Path, text: str) -> Config:
    file = str(path)
    parser = read_ini(text, file)

    envs: list[Environment] = []
    warnings: list[str] = []
    index_url, options = _mirror_options(parser, file)
    if index_url is not None and urlparse(index_url).password:
        line = _locate(text, "mirror", "index-url")
        warnings.append(
            f"{file}:{line} [mirror] index-url holds a password, and a tree keeps a copy of "
            "its config: give the credentials with -I, or in ~/.netrc, instead"
        )
    binary_only = bool(parse_bool(options.get("binary-only"), False))
    for section in parser.sections():
        if section.startswith("env."):
            written = _section(parser, section, file)
            env = environment_from_section(section[4:], written, file=file, binary_only=binary_only)
            envs.append(env)
            key = "python_full_version" if "python_full_version" in written else "python_version"
            line = _locate(text, section, key)
            warning = python_version_warning(env, written, f"{file}:{line}" if line else file)
            if warning:
                warnings.append(warning)
            if "manylinux" in written:
                line = _locate(text, section, "manylinux")
                warning = glibc_warning(env, written, f"{file}:{line}" if line else file)
                if warning:
                    warnings.append(warning)
        elif section not in _NAMED_SECTIONS:
            close = difflib.get_close_matches(section, _NAMED_SECTIONS, n=1)
            hint = f"did you mean [{close[0]}]? " if close else ""
            if section.lower().startswith("env") or not close:
                hint += "an environment section is [env.NAME], e.g. [env.linux312]; "
            raise ConfigError(
                file=file,
                problem=f"unknown section [{section}]",
                section=section,
                hint=hint + "valid sections: " + ", ".join(f"[{s}]" for s in SECTIONS),
            )
    seen: dict[str, str] = {}
    for env in envs:
        other = seen.setdefault(env.name.lower(), env.name)
        if other != env.name:
            # Their view folders envs/NAME/ would be one folder on FAT, exFAT, NTFS, APFS.
            raise ConfigError(
                file=file,
                problem=f"environment names [env.{other}] and [env.{env.name}] differ only in case",
                section=f"env.{env.name}",
                hint="give each env a name of its own; each names a folder envs/NAME/ of the tree",
            )
    if not envs:
        raise ConfigError(
            file=file,
            problem="no environment sections ([env.NAME])",
            hint=f"add one [env.NAME] section per target machine; {GENERATE_HINT}",
        )
    requirements: list[RequirementLine] = []
    if parser.has_section("requirements"):
        requirements += _ini_requirements(parser, file)
    sources = Sources()
    if parser.has_section("requirements_from"):
        sources = read_sources(parser.items("requirements_from"), path)
    requirements += sources.requirements
    overrides = read_overrides(text, file) if parser.has_section("dependencies") else {}
    locks = tuple(sources.locks)
    for lock in locks:
        for env in envs:
            why = lock.excludes(env)
            if why is not None:
                warnings.append(
                    f"env {env.name}: {lock.path} is not for it ({why}): nothing of it is bundled there"
                )
    if not requirements and not locks:
        raise ConfigError(
            file=file,
            problem="no requirements",
            section="requirements",
            hint="add a [requirements] section, e.g. `requests = >=2.24.0`; "
            "`morgan-like generate_reqs >> morgan.ini` lists this environment's packages",
        )
    for env in envs:
        if not any(env.evaluate(r.requirement.marker) for r in requirements) and all(
            lock.excludes(env) for lock in locks
        ):
            raise ConfigError(
                file=file,
                problem=f"env {env.name} has no requirements to serve (every requirement's marker is false there)",
                section=f"env.{env.name}",
                hint="remove the environment, or add a requirement whose marker holds for it",
            )
    return Config(
        path=path,
        environments=envs,
        requirements=requirements,
        index_url=index_url,
        options=options,
        constraints=tuple(sources.constraints),
        build_requirements=tuple(sources.build_requirements),
        dependency_overrides=overrides,
        warnings=(*warnings, *sources.warnings),
        inputs=tuple(sources.inputs),
        locks=locks,
        storage=read_storage(parser, file),
    )


def _ini_requirements(parser: configparser.ConfigParser, file: str) -> list[RequirementLine]:
    """``name = spec`` lines; a multi-line value is several requirements for that name (as morgan)."""
    out: list[RequirementLine] = []
    for name, value in parser.items("requirements"):
        specs = [s.strip() for s in value.splitlines() if s.strip()] or [""]
        for spec in specs:
            req = parse_spec(name, spec, file=file, section="requirements")
            out.append(RequirementLine(req, f"{file} [requirements] {name}"))
    return out


def parse_spec(name: str, spec: str, *, file: str, section: str) -> Requirement:
    """``name`` + ``spec`` (``>=1``, ``[extra]~=0.11``, ``>=1; marker``, or empty) -> Requirement."""

    def error(problem: str, hint: str = REQ_HINT) -> ConfigError:
        return ConfigError(file=file, problem=problem, section=section, key=name, hint=hint)

    if spec.startswith("@") or " @ " in f" {spec}":
        raise error(
            f"direct references are not supported: {name} = {spec}",
            "a bundle serves index releases; write a version, e.g. foo = ==1.2",
        )
    if spec and (spec[0].isalnum() or spec[0] in "_."):
        if re.match(r"\d", spec):
            raise error(
                f"{spec!r} is a bare version, not a specifier",
                f"write {name} = =={spec.split(';')[0].strip()}",
            )
        raise error(
            f"the value must be a specifier for {name!r}, got {spec!r}",
            f"the key is the project name: write {name} = >=1.0 (not the whole requirement)",
        )
    text = f"{name}{spec}"
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        problem = marker_problem(text)
        if problem:
            raise error(
                problem, "markers use PEP 508 variables: " + ", ".join(MARKER_KEYS)
            ) from None
        hint = REQ_HINT
        if "#" in spec:
            hint = "comments go on their own line: an inline # is part of the value; " + hint
        raise error(f"invalid requirement {text!r}: {exc}", hint) from None
    return req


def _mirror_options(
    parser: configparser.ConfigParser, file: str
) -> tuple[str | None, dict[str, str]]:
    if not parser.has_section("mirror"):
        return None, {}
    index_url: str | None = None
    options: dict[str, str] = {}
    valid = ["index-url", *MIRROR_OPTIONS]
    for raw_key, raw_value in _section(parser, "mirror", file).items():
        key = raw_key.replace("_", "-")
        value = raw_value.strip()  # `workers =` with the value on an indented next line

        def error(problem: str, hint: str, raw_key: str = raw_key) -> ConfigError:
            return ConfigError(file=file, problem=problem, section="mirror", key=raw_key, hint=hint)

        if key == "index-url":
            url = urlparse(value)
            if url.scheme not in ("http", "https") or not url.netloc:
                raise error(
                    f"{value!r} is not an index URL", f"e.g. index-url = {DEFAULT_INDEX_URL}"
                )
            index_url = value
            continue
        kind = MIRROR_OPTIONS.get(key)
        if kind is None:
            close = difflib.get_close_matches(key, valid, n=1)
            raise error(
                f"unknown key {raw_key!r}",
                (f"did you mean {close[0]!r}? " if close else "")
                + "valid keys: "
                + ", ".join(valid),
            )
        if kind == "int" and not (value.isdigit() and int(value) > 0):
            raise error(f"{key} = {value!r} is not a positive whole number", f"e.g. {key} = 8")
        if kind == "bool":
            flag = parse_bool(value)
            if flag is None:
                raise error(f"{key} = {value!r} is not a boolean", f"write {key} = true or false")
            value = "true" if flag else "false"  # one spelling for readers
        if kind == "regex":
            try:
                re.compile(value)
            except re.error as exc:
                raise error(
                    f"invalid regular expression: {exc}", f"e.g. {key} = bdist_wheel|sdist"
                ) from None
        if kind == "path" and not value:
            raise error(f"{key} is empty", f"e.g. {key} = diff.txt")
        options[key] = value
    return index_url, options
