"""Hooks asked ahead of the resolution (BuildEnvs.foresee): the one it waits for goes first."""

from __future__ import annotations

import pytest

from morgan_like.resolve import buildenv
from morgan_like.resolve.buildenv import BuildEnvs
from morgan_like.resolve.hooks import Platform
from morgan_like.resolve.resolver import ResolveOptions

from ..backends import make_fake_setuptools_wheels
from ..helpers import sdist, wheel

LINUX = Platform("linux", "Linux", "x86_64")


@pytest.fixture
def asked(monkeypatch):
    """The hooks run, in order."""
    calls: list[str] = []
    metadata, requires = buildenv.hook_metadata, buildenv.dynamic_build_requires

    def hook_metadata(*args, **kwargs):
        calls.append("metadata")
        return metadata(*args, **kwargs)

    def dynamic_build_requires(*args, **kwargs):
        calls.append("get_requires")
        return requires(*args, **kwargs)

    monkeypatch.setattr(buildenv, "hook_metadata", hook_metadata)
    monkeypatch.setattr(buildenv, "dynamic_build_requires", dynamic_build_requires)
    return calls


def _sdist(fake_index, dists, *, static: bool):
    for path in make_fake_setuptools_wheels(dists / "st"):
        fake_index.add(path)
    wheel(fake_index, dists, "alpha", "1.0")
    if static:
        return sdist(
            fake_index,
            dists,
            "modern",
            "1.0",
            requires_dist=["alpha"],
            build_requires=["setuptools"],
            build_backend="setuptools.build_meta",
        )
    return sdist(
        fake_index,
        dists,
        "oldie",
        "0.9",
        requires_dist=["alpha>=1"],
        pkg_info_metadata_version="1.0",
        include_requires_dist_in_pkg_info=False,
        build_requires=None,
        build_backend=None,
    )


def _remote(res, name):
    (file,) = [f for f in res.finder.page(name).files if f.is_sdist]
    return file


def test_a_foreseen_sdist_with_dynamic_metadata_runs_its_metadata_hook_first(
    fake_index, dists, res, asked
):
    """Resolution waits for the metadata hook, the build step (much later) for
    get_requires_for_build_wheel: the first hook of a fresh site runs alone, so the one
    resolution waits for takes that turn, and resolution's own ask runs no hook again."""
    _sdist(fake_index, dists, static=False)
    file = _remote(res, "oldie")
    envs = BuildEnvs(res.finder, res.cache, ResolveOptions())
    try:
        envs.foresee(file, LINUX)
        envs._ahead.shutdown(wait=True)  # the hooks asked ahead are done
        assert asked == ["metadata", "get_requires"]
        meta = envs.metadata(res.cache.get(file), file.filename)
        assert [str(r) for r in meta.requires_dist] == ["alpha>=1"]
        assert [str(r) for r in envs.build_requires(res.cache.get(file), file.filename, LINUX)] == [
            "wheel"
        ]
        assert asked == ["metadata", "get_requires"]
    finally:
        envs.close()


def test_a_foreseen_sdist_with_static_metadata_runs_no_metadata_hook(fake_index, dists, res, asked):
    _sdist(fake_index, dists, static=True)
    file = _remote(res, "modern")
    envs = BuildEnvs(res.finder, res.cache, ResolveOptions())
    try:
        envs.foresee(file, LINUX)
        envs._ahead.shutdown(wait=True)
        assert asked == ["get_requires"]
    finally:
        envs.close()


def test_the_build_environment_is_laid_out_while_the_sdist_unpacks(
    fake_index, dists, res, monkeypatch
) -> None:
    """The site's requirements come from the run's read of the archive's pyproject.toml:
    resolving them and fetching their wheels does not wait for the unpack."""
    import threading

    _sdist(fake_index, dists, static=False)
    file = _remote(res, "oldie")
    site_begun = threading.Event()
    seen_while_unpacking: list[bool] = []
    unpack, site = buildenv.unpack_archive, BuildEnvs.site

    def slow_unpack(*args, **kwargs):
        seen_while_unpacking.append(site_begun.wait(5))
        return unpack(*args, **kwargs)

    def noted_site(self, requires, origin):
        site_begun.set()
        return site(self, requires, origin)

    monkeypatch.setattr(buildenv, "unpack_archive", slow_unpack)
    monkeypatch.setattr(BuildEnvs, "site", noted_site)
    envs = BuildEnvs(res.finder, res.cache, ResolveOptions())
    try:
        envs.prepare(res.cache.get(file), file.filename)
    finally:
        envs.close()
    assert seen_while_unpacking == [True]
