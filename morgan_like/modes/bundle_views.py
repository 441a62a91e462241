"""Bundle mode's env views: which files each env's index lists, and where clients point.

A view lists the files of the versions that env resolved (its wheels, the sdists
of those releases, the build requirements of the sdists it builds): exactly the
plan's entries that name the env.  The summary then tells, per env, the one URL
its clients use, served (``server.py``) and over ``file://``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from morgan_like.output import Reporter
from morgan_like.resolve.plan import Plan
from morgan_like.tree.layout import view_dir

if TYPE_CHECKING:  # tree.views brings the writer, which a replayed run never uses
    from morgan_like.tree.views import EnvView

SERVER_URL = "http://HOST:8080"


def env_views(plan: Plan) -> list[EnvView]:
    """One view per env of the plan, in the config's order."""
    from morgan_like.tree.views import EnvView

    views = []
    for env in plan.env_names:
        projects: dict[str, set[str]] = {}
        for entry in plan.for_env(env):
            projects.setdefault(entry.project, set()).add(entry.file.filename)
        views.append(EnvView(env, {name: frozenset(files) for name, files in projects.items()}))
    return views


def report_view_urls(root: Path, envs: list[str], reporter: Reporter) -> None:
    """Each env's index URL: what ``pip install`` on a machine of that env points at."""
    reporter.info("Index per env (plain `pip install` there gets exactly that env's pins):")
    width = max(len(env) for env in envs)
    for env in envs:
        served = f"{SERVER_URL}/{view_dir(env)}/"
        local = (root.absolute() / view_dir(env)).as_uri() + "/"
        reporter.info(f"  {env:<{width}}  --index-url {served}   (or {local})")
