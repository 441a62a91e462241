"""What bundle mode tells the user: the plan, problems, what each env must build, the totals
(and an upstream whose pages a re-run cannot revalidate)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from morgan_like.fetch.download import DownloadResult
from morgan_like.index.httputil import redact_url
from morgan_like.index.upstream import Upstream
from morgan_like.output import Reporter, human_size
from morgan_like.resolve.plan import Plan
from morgan_like.resolve.records import EnvResolution


def print_plan(plan: Plan, reporter: Reporter) -> None:
    for env in plan.env_names:
        entries = plan.for_env(env)
        rows = [
            (
                str(e.project),
                str(e.file.version),
                e.file.filename + (" (build)" if e.build else ""),
                human_size(e.file.size) if e.file.size is not None else "?",
            )
            for e in entries
        ]
        reporter.table(f"env {env}", ("project", "version", "file", "size"), rows)
        size = sum(e.file.size or 0 for e in entries)
        reporter.info(
            f"env {env}: {len({e.project for e in entries})} projects, {len(entries)} files, {human_size(size)}"
        )
    reporter.info(
        f"total: {len(plan.by_project())} projects, {len(plan.files)} files, {human_size(plan.total_size)}"
    )


def download_log(reporter: Reporter) -> Callable[[DownloadResult], None]:
    def done(result: DownloadResult) -> None:
        if result.skipped:
            reporter.detail(f"present {result.relpath}")
        elif result.ok:
            reporter.detail(f"fetched {result.relpath} ({human_size(result.size)})")
        else:
            reporter.error(result.error or result.relpath)

    return done


def print_summary(
    plan: Plan,
    results: list[DownloadResult],
    reporter: Reporter,
    elapsed: float,
    upstream: Upstream,
) -> None:
    failed = {r.relpath for r in results if not r.ok}
    # The sizes of the files as they are on disk: an upstream need not give any.
    sizes = {r.relpath: r.size for r in results if r.ok}
    rows = []
    for env in plan.env_names:
        # The plan is keyed by relpath: no entry's path is worked out again.
        entries = [
            (relpath, e)
            for relpath, e in plan.files.items()
            if env in e.envs and relpath not in failed
        ]
        rows.append(
            (
                env,
                str(len({e.project for _, e in entries})),
                str(len(entries)),
                human_size(sum(sizes.get(path, e.file.size or 0) for path, e in entries)),
            )
        )
    reporter.table("Bundle", ("env", "projects", "files", "size"), rows)
    fetched = sum(r.size for r in results if r.ok and not r.skipped)
    reporter.info(
        f"{sum(1 for r in results if r.ok and not r.skipped)} files fetched ({human_size(fetched)}), "
        f"{sum(1 for r in results if r.skipped)} already present, {len(failed)} failed; "
        f"{human_size(upstream.bytes_fetched)} from upstream in {elapsed:.1f}s"
    )
    report_validators(upstream, reporter)


def report_validators(upstream: Upstream, reporter: Reporter) -> None:
    """Once per run: pages sent without validators cannot be revalidated (304), so the
    next run fetches them whole (its plan still replays when their bytes are the same)."""
    missing, sent = upstream.pages_without_validators
    if not missing:
        return
    url = redact_url(upstream.index_url)
    if missing == sent:
        reporter.warn(f"{url} sends no ETag or Last-Modified: a re-run fetches every page again")
    else:
        reporter.warn(
            f"{url} sent {missing} of {sent} project pages without ETag or Last-Modified: "
            "a re-run fetches those again"
        )


def report_problems(plan: Plan, reporter: Reporter) -> None:
    for problem in plan.problems:
        reporter.warn(problem)


@dataclass(frozen=True)
class SdistRow:
    """A project an env can only get as an sdist, and why; ``needed_by`` names the
    sdists it is a build requirement of (empty: the env's own requirements want it)."""

    project: str
    version: str
    reason: str
    needed_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class FallbackRow:
    """Binary first took ``picked`` far below ``newest``, which has no wheel here."""

    project: str
    picked: str
    newest: str
    gap: str
    reason: str


@dataclass(frozen=True)
class EnvBuilds:
    """What the summary says about one env's builds; kept in plan.json for a replay."""

    sdists: tuple[SdistRow, ...] = ()
    fallbacks: tuple[FallbackRow, ...] = ()


# env name -> its report
BuildRows = dict[str, EnvBuilds]


def _env_builds(r: EnvResolution) -> EnvBuilds:
    sdists = [
        SdistRow(str(name), str(r.pins[name].version), reason)
        for name, reason in sorted(r.sdist_only.items())
    ]
    listed = {(row.project, row.version) for row in sdists}
    # A build requirement the env also wants for itself is listed once, as its own.
    sdists += [
        SdistRow(str(b.name), str(b.version), b.reason, b.needed_by)
        for b in sorted(r.build_sdists, key=lambda b: (b.name, b.version))
        if (str(b.name), str(b.version)) not in listed
    ]
    fallbacks = tuple(
        FallbackRow(str(name), str(f.picked), str(f.newest), f.gap, f.reason)
        for name, f in sorted(r.fallbacks.items())
    )
    return EnvBuilds(tuple(sdists), fallbacks)


def build_rows(resolutions: list[EnvResolution]) -> BuildRows:
    """What report_builds prints, kept apart from the resolutions so a replay can print it."""
    return {r.env.name: _env_builds(r) for r in resolutions}


def report_builds(builds: BuildRows, reporter: Reporter) -> None:
    """Per env, the projects it can only get as an sdist (a build on the target), and why;
    then where binary first fell back far.

    Air-gapped targets rarely have compilers: this is the list to read before
    shipping the bundle.  A far fallback is the other side of the same choice: a
    wheel, but of a release so old it may not be what anyone meant (pydantic-core
    0.0.1, a placeholder, for an env whose glibc floor is too old for 2.x).
    """
    for env, report in builds.items():
        if report.sdists:
            reporter.warn(
                f"env {env}: {len(report.sdists)} project(s) only as sdists, built on the target:"
            )
        for row in report.sdists:
            of = f" (build requirement of {', '.join(row.needed_by)})" if row.needed_by else ""
            reporter.warn(f"  {row.project} {row.version}{of}: {row.reason}")
        for f in report.fallbacks:
            reporter.warn(
                f"env {env}: {f.project} {f.picked} picked over {f.newest} (newest; {f.gap}), "
                f"which has no wheel here: {f.reason}"
            )
