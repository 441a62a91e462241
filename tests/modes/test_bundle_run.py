"""modes.bundle.BundleRun: what one mirror run owns is closed, in reverse, however it ends;
each env is handed to the run (bundle_resolve.ResolvedEnvs) as soon as it resolves."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from morgan_like.config.ini import load_config
from morgan_like.errors import ResolutionError
from morgan_like.interrupt import Stopped
from morgan_like.modes import bundle
from morgan_like.modes.bundle_resolve import resolve_all
from morgan_like.output import Reporter
from morgan_like.resolve.resolver import EnvResolution, ResolveOptions

from ..fakeindex import FakeIndex
from ..helpers import Resolving, ini_env_block, record_closes, wheel


def _broken(*args: object, **kwargs: object) -> None:
    raise ResolutionError("env 'x': cannot resolve the requirements.")


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_failed_resolution_closes_what_the_run_opened(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dry_run
) -> None:
    wheel(fake_index, dists, "lib", "1.0")
    root = tmp_path / "bundle"
    root.mkdir()
    (root / "morgan.ini").write_text(ini_env_block("py312", "3.12.1") + "[requirements]\nlib =\n")
    closed = record_closes(monkeypatch)
    monkeypatch.setattr("morgan_like.modes.bundle_resolve.resolve_all", _broken)
    options = bundle.MirrorOptions(index_path=root, index_url=fake_index.url, dry_run=dry_run)
    with pytest.raises(ResolutionError):
        bundle.run_mirror(options, Reporter(verbosity=0))
    # A dry run opens no tree state and no page cache: it writes nothing.
    expected = ["session", "upstream"] if dry_run else ["session", "upstream", "pages", "state"]
    assert closed == expected
    if dry_run:
        assert [p.name for p in root.iterdir()] == ["morgan.ini"]


class Handed:
    """bundle_resolve.ResolvedEnvs that keeps what it is handed."""

    def __init__(self) -> None:
        self.envs: list[list[EnvResolution]] = []

    def resolved(self, results: list[EnvResolution]) -> None:
        self.envs.append(results)


def _two_envs(tmp_path: Path, requirements: str) -> Path:
    conf = tmp_path / "morgan.ini"
    conf.write_text(
        ini_env_block("new", "3.12.1")
        + ini_env_block("old", "3.9.18")
        + f"[requirements]\n{requirements}"
    )
    return conf


def test_each_env_is_handed_over_once_with_every_resolution_of_it(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    wheel(fake_index, dists, "lib", "1.0")
    wheel(fake_index, dists, "other", "2.0")
    # Two lines of one project: the env's main resolution, then one for the later line.
    config = load_config(_two_envs(tmp_path, "lib = >=1\n    <2\nother =\n"))
    res, handed = Resolving(fake_index, tmp_path / "cache"), Handed()
    try:
        per_env = resolve_all(config, res.finder, ResolveOptions(), Reporter(verbosity=0), handed)
    finally:
        res.close()
    assert sorted(r[0].env.name for r in handed.envs) == ["new", "old"]
    assert all(len(results) == 2 for results in handed.envs)
    assert sorted(map(id, handed.envs)) == sorted(map(id, per_env))


def test_no_env_is_handed_over_once_another_failed(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    wheel(fake_index, dists, "lib", "1.0", requires_python=">=3.10")
    config = load_config(_two_envs(tmp_path, "lib =\n"))
    res, handed = Resolving(fake_index, tmp_path / "cache"), Handed()
    try:
        with pytest.raises(ResolutionError, match="old"):
            resolve_all(config, res.finder, ResolveOptions(), Reporter(verbosity=0), handed)
    finally:
        res.close()
    # "new" resolves; it is handed over only if it was done before "old" failed.
    assert [r[0].env.name for r in handed.envs] in ([], ["new"])


def test_the_head_start_thread_ends_quietly_when_the_run_is_stopping() -> None:
    """Ctrl+C while the files arrive: the thread digesting pages ahead of the end meets
    the run's Stopped and ends without a traceback (the main thread says what happened)."""

    class StoppingFinder:
        def page_names(self) -> list[str]:
            raise Stopped()

    class Run:
        finder = StoppingFinder()

    bundle.TreeBundleRun._ahead_of_the_end(cast(bundle.TreeBundleRun, Run()))
