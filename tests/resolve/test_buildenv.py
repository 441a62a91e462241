"""Dependencies and build requirements learnt by running the backend, as pip does."""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from morgan_like.errors import MetadataError
from morgan_like.resolve.buildenv import BuildEnvs
from morgan_like.resolve.hooks import Platform
from morgan_like.resolve.resolver import ResolveOptions

from ..backends import make_fake_setuptools_wheels, make_mesonlike_wheels
from ..helpers import env, sdist, wheel


@pytest.fixture
def buildenvs(res):
    envs = BuildEnvs(res.finder, res.cache, ResolveOptions())
    yield envs
    envs.close()


def _legacy(fake_index, dists):
    for path in make_fake_setuptools_wheels(dists / "st"):
        fake_index.add(path)
    wheel(fake_index, dists, "alpha", "1.0")
    wheel(fake_index, dists, "beta", "1.0")
    return sdist(
        fake_index,
        dists,
        "oldie",
        "0.9",
        requires_dist=["alpha>=1", "beta; python_version < '3.8'"],
        pkg_info_metadata_version="1.0",
        include_requires_dist_in_pkg_info=False,
        build_requires=None,
        build_backend=None,
    )


def test_legacy_sdist_dependencies_come_from_its_metadata_hook(fake_index, dists, res, buildenvs):
    _legacy(fake_index, dists)

    class Hooks:
        def metadata(self, file):
            return buildenvs.metadata(res.cache.get(file), file.filename)

        def foresee(self, file, env):
            pass

    assert res.pins(env("old", "3.7.16"), "oldie", hooks=Hooks()) == {
        "oldie": "0.9",
        "alpha": "1.0",
        "beta": "1.0",
    }
    assert res.pins(env("new", "3.12.1"), "oldie", hooks=Hooks()).keys() == {
        "oldie",
        "alpha",
    }


def test_static_metadata_only_refuses_with_the_chain_and_the_override_hint(fake_index, dists, res):
    _legacy(fake_index, dists)
    wheel(fake_index, dists, "app", "1.0", requires_dist=["oldie"])
    with pytest.raises(MetadataError) as info:
        res.resolve(env("e", "3.12.1"), "app")
    text = str(info.value)
    assert "oldie-0.9.tar.gz: cannot read its dependencies statically" in text
    assert "\n  wanted by: app 1.0 -> oldie\n" in text
    assert "[dependencies] oldie==0.9 = " in text
    overrides = {("oldie", Version("0.9")): (Requirement("alpha"),)}
    assert res.pins(env("e", "3.12.1"), "app", dependency_overrides=overrides) == {
        "app": "1.0",
        "oldie": "0.9",
        "alpha": "1.0",
    }


def test_dynamic_build_requirements_follow_the_target_platform(fake_index, dists, res, buildenvs):
    for path in make_mesonlike_wheels(dists / "ml"):
        fake_index.add(path)
    path = sdist(
        fake_index, dists, "sci", "1.0", build_requires=["mesonlike"], build_backend="mesonlike"
    )
    linux = buildenvs.build_requires(path, path.name, Platform("linux", "Linux", "x86_64"))
    windows = buildenvs.build_requires(path, path.name, Platform("win32", "Windows", "AMD64"))
    assert [str(r) for r in linux] == ["mlninja", "mlpatchelf"]
    assert [str(r) for r in windows] == ["mlninja"]


def test_build_environment_needs_wheels_for_this_machine(fake_index, dists, res, buildenvs):
    sdist(fake_index, dists, "srconly", "1.0")
    path = sdist(
        fake_index, dists, "needs", "1.0", build_requires=["srconly"], build_backend="srconly"
    )
    with pytest.raises(MetadataError, match="srconly 1.0 has no wheel for this machine"):
        buildenvs.build_requires(path, path.name, Platform("linux", "Linux", "x86_64"))


def test_scratch_in_ram_sweeps_dead_runs_leftovers(tmp_path, monkeypatch) -> None:
    import os
    import subprocess
    import sys

    from morgan_like.resolve import buildenv

    ram = tmp_path / "shm"
    ram.mkdir()
    monkeypatch.setattr(buildenv, "RAM_DIR", ram)
    monkeypatch.setattr(buildenv, "RAM_MIN_FREE", 0)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (ram / f"{buildenv.RAM_PREFIX}{dead}-abc" / "src").mkdir(parents=True)
    alive = ram / f"{buildenv.RAM_PREFIX}{os.getppid()}-def"  # a live process's: kept
    alive.mkdir()
    scratch = buildenv._make_scratch(tmp_path / "tree-tmp")
    assert scratch.parent == ram and scratch.name.startswith(f"{buildenv.RAM_PREFIX}{os.getpid()}-")
    assert sorted(p.name for p in ram.iterdir()) == sorted([alive.name, scratch.name])


def test_scratch_falls_back_to_the_trees_tmp(tmp_path, monkeypatch) -> None:
    from morgan_like.resolve import buildenv

    monkeypatch.setattr(buildenv, "RAM_DIR", tmp_path / "no-such-dir")
    (tmp_path / "tree-tmp").mkdir()
    scratch = buildenv._make_scratch(tmp_path / "tree-tmp")
    assert scratch.parent == tmp_path / "tree-tmp"
