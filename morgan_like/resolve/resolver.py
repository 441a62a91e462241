"""Per-environment dependency resolution with resolvelib, following pip's rules.

Each env is resolved on its own, with all of its requirements together, so a
3.7 env and a 3.12 env may pin different versions of the same project.  The
rules for which versions are candidates (tags, Requires-Python, yanked,
prereleases) are pip's, because pip on the target decides in the end.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version
from resolvelib import AbstractProvider, BaseReporter, Resolver
from resolvelib.resolvers import ResolutionImpossible, ResolutionTooDeep

from morgan_like.dists.links import ProjectPage, RemoteFile
from morgan_like.dists.metadata import DistMetadata
from morgan_like.errors import MetadataError, ProjectNotFound, ResolutionError
from morgan_like.index.finder import Finder
from morgan_like.resolve.candidates import (
    Candidate,
    Req,
    identifier,
    metadata_file,
    usable_files,
)
from morgan_like.resolve.records import EnvResolution, ResolveOptions
from morgan_like.resolve.report import (
    EnvResolutionError,
    Fallback,
    far_fallback,
    format_impossible,
    why_no_wheel,
)
from morgan_like.targets.environments import Environment


class _Provider(AbstractProvider):
    def __init__(
        self, env: Environment, finder: Finder, options: ResolveOptions, roots: Mapping[str, str]
    ):
        self.env = env
        self.finder = finder
        self.options = options
        self.parents: dict[NormalizedName, str] = {}
        self.roots = roots
        self.problems: list[str] = []
        self._satisfied: dict[tuple[int, int], tuple[Req, Candidate, bool]] = {}

    # -- resolvelib protocol -------------------------------------------------
    def identify(self, requirement_or_candidate: Req | Candidate) -> str:
        return identifier(requirement_or_candidate.name, requirement_or_candidate.extras)

    def get_preference(self, identifier, resolutions, candidates, information, backtrack_causes):
        pinned = any(info.requirement.pinned for info in information[identifier])
        in_causes = any(identifier == self.identify(c.requirement) for c in backtrack_causes)
        return (not pinned, not in_causes, identifier)

    def _by_version(
        self, page: ProjectPage
    ) -> tuple[dict[Version, list[RemoteFile]], list[Version], dict[Version, list[RemoteFile]]]:
        """The page's files by version, its versions newest first (both once per page),
        and this env's usable files by version, filled in as versions are asked for:
        shared by every resolution of the run (ResolveOptions.views)."""
        views = self.options.views
        by_version, newest_first = views.versions(page)
        return by_version, newest_first, views.usable(page, self.env, self.options.file_filter)

    def find_matches(
        self, identifier, requirements, incompatibilities
    ) -> Callable[[], Iterator[Candidate]]:
        reqs = list(requirements[identifier])
        name, extras = reqs[0].name, reqs[0].extras
        versions = self._versions(name, reqs, {c.version for c in incompatibilities[identifier]})

        def matches() -> Iterator[Candidate]:
            """Newest first; with prefer_binary, the versions with a wheel here first,
            then the sdist-only ones.  Lazy: resolvelib asks for the next one only when
            the one before fails, so older versions' files are never filtered."""
            first = True
            later: list[Candidate] = []
            for version, files in versions():
                candidate = Candidate(name, version, extras, tuple(files))
                if self.env.binary_only and not any(f.is_wheel for f in files):
                    continue  # never a build on this target
                if self.options.prefer_binary and not any(f.is_wheel for f in files):
                    later.append(candidate)
                    continue
                if first:
                    first = False
                    self._read_ahead(files)
                yield candidate
            for candidate in later:
                if first:
                    first = False
                    self._read_ahead(list(candidate.files))
                yield candidate

        return matches

    def _versions(
        self, name: NormalizedName, reqs: list[Req], bad: set[Version]
    ) -> Callable[[], Iterator[tuple[Version, list[RemoteFile]]]]:
        """The versions ``reqs`` allow, newest first, each with this env's usable files;
        the page is asked for now, the files of a version filtered only when reached.

        Shared by find_matches and by the binary-first report (newest_allowed), so
        "the newest that satisfies" means what the resolver would have tried.
        """
        try:
            page = self.finder.page(name)
        except ProjectNotFound as exc:
            raise ProjectNotFound(exc.project, exc.index_url, self.chain(name)) from None
        by_version, newest_first, usable = self._by_version(page)
        env, file_filter = self.env, self.options.file_filter
        pins = {r.pin for r in reqs if r.pin is not None}
        exact = {
            Version(s.version)
            for r in reqs
            for s in r.specifier
            if s.operator in ("==", "===") and "*" not in s.version
        }
        constraint = self.options.constraints.get(name)
        hashes = self.options.hashes.get(name)

        def allowed(version: Version) -> list[RemoteFile]:
            if (
                version in bad
                or (pins and version not in pins)
                or not all(r.specifier.contains(version, prereleases=True) for r in reqs)
                or (constraint is not None and not constraint.contains(version, prereleases=True))
            ):
                return []
            files = usable.get(version)
            if files is None:
                files = usable[version] = usable_files(by_version[version], env, file_filter)
            if hashes is not None:
                files = [f for f in files if f.sha256 in hashes]
            live = [f for f in files if not f.is_yanked]
            # PEP 592: a yanked file is selectable only by an exact pin.
            return files if not live and version in exact else live

        # PEP 440: prereleases only when asked for, or when no final release is usable
        # (what SpecifierSet.filter does with prereleases=None); a pin takes what it names.
        # Each pass: which versions it takes (None: all).
        passes: list[bool | None] = (
            [None]
            if pins or self.options.pre or any(r.specifier.prereleases for r in reqs)
            else [False, True]
        )

        def versions() -> Iterator[tuple[Version, list[RemoteFile]]]:
            for prerelease in passes:
                found = False
                for version in newest_first:
                    if prerelease is not None and version.is_prerelease != prerelease:
                        continue
                    files = allowed(version)
                    if files:
                        found = True
                        yield version, files
                if found:
                    return

        return versions

    def newest_allowed(
        self, name: NormalizedName, reqs: list[Req], bad: set[Version]
    ) -> tuple[Version, list[RemoteFile]] | None:
        """The newest version ``reqs`` allow here, wheel or not: what binary first passed over."""
        return next(self._versions(name, reqs, bad)(), None)

    def _read_ahead(self, files: list[RemoteFile]) -> None:
        """Read ahead the metadata of the likeliest pick (and, for an sdist this env has
        no wheel of, ask its backend ahead what building it needs)."""
        likeliest = metadata_file(files, self.env)
        self.finder.prefetch_metadata(likeliest)
        self._foresee(likeliest)

    def is_satisfied_by(self, requirement: Req, candidate: Candidate) -> bool:
        if requirement.pin is not None:
            return candidate.version == requirement.pin
        # resolvelib re-checks every pin against every requirement each round; memoize by
        # identity (the entry keeps both alive, so their ids cannot be reused meanwhile).
        key = (id(requirement), id(candidate))
        entry = self._satisfied.get(key)
        if entry is None or entry[0] is not requirement or entry[1] is not candidate:
            ok = requirement.specifier.contains(candidate.version, prereleases=True)
            entry = self._satisfied[key] = (requirement, candidate, ok)
        return entry[2]

    def _foresee(self, file: RemoteFile) -> None:
        if not file.is_wheel and self.options.hooks is not None:
            self.options.hooks.foresee(file, self.env)

    def _metadata(self, candidate: Candidate) -> DistMetadata:
        override = self.options.dependency_overrides.get((candidate.name, candidate.version))
        if override is not None:
            return DistMetadata(
                candidate.name, str(candidate.version), list(override), source="config"
            )
        file = metadata_file(candidate.files, self.env)
        self._foresee(file)
        try:
            return self.finder.metadata(file)
        except MetadataError as exc:
            if file.is_wheel:
                raise
            static_error = exc
        chain = " -> ".join(self.chain(candidate.name))
        override_hint = (
            f"or state them in morgan.ini: [dependencies] {candidate.name}=={candidate.version} = "
            "one requirement per line (empty for none)"
        )
        if self.options.hooks is None:
            raise MetadataError(
                f"{static_error}\n  wanted by: {chain}\n  hint: drop --static-metadata-only "
                f"to run its metadata hook as pip does, {override_hint}"
            ) from None
        try:
            return self.options.hooks.metadata(file)
        except MetadataError as exc:
            raise MetadataError(
                f"{static_error}\n  and its metadata hook failed: {exc}"
                f"\n  wanted by: {chain}\n  hint: {override_hint}"
            ) from None

    def get_dependencies(self, candidate: Candidate) -> Iterator[Req]:
        meta = self._metadata(candidate)
        self.problems.extend(meta.problems)
        missing = candidate.extras - {canonicalize_name(e) for e in meta.provides_extra}
        if missing and meta.provides_extra:
            self.problems.append(
                f"{candidate} does not provide the extra(s) {', '.join(sorted(missing))}"
            )
        deps = []
        if candidate.extras:
            deps.append(Req(candidate.name, pin=candidate.version))
        for req in meta.requires_dist:
            if not self.env.evaluate(req.marker, candidate.extras):
                continue
            dep = Req.from_requirement(req)
            self.parents.setdefault(dep.name, f"{candidate.name} {candidate.version}")
            self.finder.prefetch_page(dep.name)
            deps.append(dep)
        return iter(deps)

    # -- messages ------------------------------------------------------------
    def chain(self, name: NormalizedName) -> tuple[str, ...]:
        chain = [str(name)]
        seen = {name}
        while name in self.parents:
            parent = self.parents[name]
            chain.append(parent)
            name = canonicalize_name(parent.split()[0])
            if name in seen:
                break
            seen.add(name)
        if name in self.roots:
            chain.append(self.roots[name])
        return tuple(reversed(chain))


def _check_hashes(finder: Finder, hashes: Mapping[NormalizedName, frozenset[str]]) -> None:
    """A listed sha256 that no upstream file has is a typo or a replaced file: stop."""
    for name, wanted in hashes.items():
        known = {f.sha256 for f in finder.page(name).files if f.sha256}
        unknown = sorted(wanted - known)
        if unknown:
            raise ResolutionError(
                f"--hash=sha256:{unknown[0]} of the requirement on {name} matches no file "
                f"upstream{f' (and {len(unknown) - 1} more hashes)' if len(unknown) > 1 else ''}; "
                "check the requirements file against the project's files"
            )


def resolve_env(
    env: Environment,
    requirements: Sequence[Requirement],
    finder: Finder,
    options: ResolveOptions,
    roots: Mapping[str, str] | None = None,
) -> EnvResolution:
    """Resolve ``requirements`` together for ``env``; raise ResolutionError with pip-like text."""
    provider = _Provider(env, finder, options, dict(roots or {}))
    reqs = [Req.from_requirement(r) for r in requirements]
    for req in reqs:
        finder.prefetch_page(req.name)
    _check_hashes(finder, options.hashes)
    resolver = Resolver(provider, BaseReporter())
    try:
        result = resolver.resolve(reqs, max_rounds=options.max_rounds)
    except ResolutionImpossible as exc:
        raise EnvResolutionError(
            env,
            format_impossible(finder, env, options.file_filter, provider.roots, list(exc.causes)),
        ) from None
    except ResolutionTooDeep:
        raise EnvResolutionError(
            env,
            f"resolution took too long (more than {options.max_rounds} rounds); "
            "pin some requirements more tightly.",
        ) from None
    pins: dict[NormalizedName, Candidate] = {}
    for candidate in result.mapping.values():
        # Extras candidates share the base's files; keep one entry per project.
        pins.setdefault(candidate.name, candidate)
    sdist_only = {
        name: why_no_wheel(
            [f for f in finder.page(name).files if f.version == candidate.version], env
        )
        for name, candidate in pins.items()
        if not any(f.is_wheel for f in candidate.files)
    }
    fallbacks = _far_fallbacks(provider, result.criteria, pins) if options.prefer_binary else {}
    return EnvResolution(
        env, pins, provider.parents, sorted(set(provider.problems)), sdist_only, fallbacks
    )


def _far_fallbacks(
    provider: _Provider, criteria: Mapping[str, Any], pins: Mapping[NormalizedName, Candidate]
) -> dict[NormalizedName, Fallback]:
    """The pins binary first took far below the newest release that satisfies every
    requirement on them (resolvelib's final criteria), when that one has no wheel here."""
    reqs: dict[NormalizedName, list[Req]] = defaultdict(list)
    bad: dict[NormalizedName, set[Version]] = defaultdict(set)
    for criterion in criteria.values():
        # An extras candidate's pin on its base says only "the same version".
        for info in criterion.information:
            if info.requirement.pin is None:
                reqs[info.requirement.name].append(info.requirement)
        for rejected in criterion.incompatibilities:
            bad[rejected.name].add(rejected.version)
    fallbacks = {}
    for name, candidate in pins.items():
        if not reqs[name] or not any(f.is_wheel for f in candidate.files):
            continue
        newest = provider.newest_allowed(name, reqs[name], bad[name])
        # A newest with a wheel here was ruled out by a conflict, not by binary first.
        if newest is None or newest[0] <= candidate.version or any(f.is_wheel for f in newest[1]):
            continue
        fallback = far_fallback(
            candidate.version, newest[0], provider.finder.page(name).files, provider.env
        )
        if fallback is not None:
            fallbacks[name] = fallback
    return fallbacks
