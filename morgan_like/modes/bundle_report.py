"""What bundle mode tells the user: the plan, problems, what each env must build, the totals."""

from __future__ import annotations

from collections.abc import Callable

from morgan_like.fetch.download import DownloadResult
from morgan_like.index.upstream import Upstream
from morgan_like.output import Reporter, human_size
from morgan_like.resolve.plan import Plan
from morgan_like.resolve.resolver import EnvResolution


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
    rows = []
    for env in plan.env_names:
        entries = [e for e in plan.for_env(env) if e.relpath not in failed]
        rows.append(
            (
                env,
                str(len({e.project for e in entries})),
                str(len(entries)),
                human_size(sum(e.file.size or 0 for e in entries)),
            )
        )
    reporter.table("Bundle", ("env", "projects", "files", "size"), rows)
    fetched = sum(r.size for r in results if r.ok and not r.skipped)
    reporter.info(
        f"{sum(1 for r in results if r.ok and not r.skipped)} files fetched ({human_size(fetched)}), "
        f"{sum(1 for r in results if r.skipped)} already present, {len(failed)} failed; "
        f"{human_size(upstream.bytes_fetched)} from upstream in {elapsed:.1f}s"
    )


def report_problems(plan: Plan, reporter: Reporter) -> None:
    for problem in plan.problems:
        reporter.warn(problem)


# env -> [(project, version, why it is only an sdist there)]
BuildRows = dict[str, list[tuple[str, str, str]]]


def build_rows(resolutions: list[EnvResolution]) -> BuildRows:
    """What report_builds prints, kept apart from the resolutions so a replay can print it."""
    return {
        r.env.name: [
            (str(name), str(r.pins[name].version), reason)
            for name, reason in sorted(r.sdist_only.items())
        ]
        for r in resolutions
    }


def report_builds(builds: BuildRows, reporter: Reporter) -> None:
    """Per env, the projects it can only get as an sdist (a build on the target), and why.

    Air-gapped targets rarely have compilers: this is the list to read before
    shipping the bundle.
    """
    for env, rows in builds.items():
        if not rows:
            continue
        reporter.warn(f"env {env}: {len(rows)} project(s) only as sdists, built on the target:")
        for name, version, reason in rows:
            reporter.warn(f"  {name} {version}: {reason}")
