"""Bundle round 2, proven by real builds offline: binary first, the build requirements a
backend adds, and a legacy sdist whose dependencies only its setup.py knows.

The tree is built from the fake upstream for CPython 3.6, 3.12 and 3.13 on Linux
plus a Windows env; then each present interpreter's own pip installs from it
over file:// with the upstream stopped.  pip 18.1 (CPython 3.6) predates PEP
517 hooks, so it is asked only for the legacy sdist and the binary-first pick.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from morgan_like.cli import main

from ..backends import make_fake_setuptools_wheels, make_mesonlike_wheels
from ..clients import client_env, make_venv, need, pip_install, pyenv_python
from ..distbuilder import make_sdist, make_wheel
from ..fakeindex import FakeIndex
from ..helpers import WINDOWS, ini_env_block

PYTHONS = {"py36": "3.6.15", "py312": "3.12.1", "py313": "3.13.0"}


def publish(index: FakeIndex, dists: Path) -> None:
    for path in (*make_mesonlike_wheels(dists), *make_fake_setuptools_wheels(dists)):
        index.add(path)
    index.add(
        make_sdist(dists, "sci", "1.0", build_requires=["mesonlike"], build_backend="mesonlike")
    )
    index.add(make_wheel(dists, "dep", "1.0"))
    index.add(
        make_sdist(
            dists,
            "oldie",
            "0.9",
            requires_dist=["dep"],
            pkg_info_metadata_version="1.0",
            include_requires_dist_in_pkg_info=False,
            build_requires=None,
            build_backend=None,
        )
    )
    # Binary first: 1.0 has wheels for every env, the newer 2.0 only an sdist.
    index.add(make_wheel(dists, "pb", "1.0"))
    index.add(make_sdist(dists, "pb", "1.0"))
    index.add(make_sdist(dists, "pb", "2.0"))


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("builds")
    root = base / "bundle"
    root.mkdir()
    blocks = [ini_env_block(name, full) for name, full in PYTHONS.items()]
    blocks.append(ini_env_block("windows", "3.12.7", WINDOWS))
    (root / "morgan.ini").write_text("".join(blocks) + "[requirements]\nsci =\noldie =\npb =\n")
    with FakeIndex() as index:
        publish(index, base / "dists")
        assert main(["mirror", "-i", str(root), "-I", index.url, "-q"]) == 0
    return root


def _files(tree: Path, project: str) -> set[str]:
    page = json.loads((tree / "simple" / project / "index.json").read_text())
    return {f["filename"] for f in page["files"]}


def test_tree_holds_what_the_builds_need(tree: Path) -> None:
    assert _files(tree, "pb") == {"pb-1.0-py3-none-any.whl", "pb-1.0.tar.gz"}
    assert _files(tree, "mlninja") == {"mlninja-1.11-py3-none-any.whl"}
    assert _files(tree, "mlpatchelf") == {"mlpatchelf-0.17-py3-none-any.whl"}
    assert _files(tree, "dep") == {"dep-1.0-py3-none-any.whl"}
    assert "setuptools-99.0-py3-none-any.whl" in _files(tree, "setuptools")
    assert "wheel-0.40.0-py3-none-any.whl" in _files(tree, "wheel")


def test_summary_names_the_sdist_only_projects(tree: Path, capsys) -> None:
    # A no-op re-run still reports what each env must build.
    with FakeIndex() as index:
        publish(index, tree.parent / "dists2")
        assert main(["mirror", "-i", str(tree), "-I", index.url]) == 0
    captured = capsys.readouterr()
    out = captured.out + captured.err
    for env in ("py36", "py312", "py313", "windows"):
        assert f"env {env}: 2 project(s) only as sdists, built on the target:" in out
    assert "  sci 1.0: no wheels are published for this version" in out
    assert "  oldie 0.9: no wheels are published for this version" in out
    assert "  pb " not in out


@pytest.mark.e2e
@pytest.mark.parametrize("env_name", sorted(PYTHONS))
def test_pip_builds_offline(env_name: str, tree: Path, tmp_path: Path) -> None:
    python = pyenv_python(PYTHONS[env_name])
    need(python)
    vpy = make_venv(python, tmp_path / "venv")
    wanted = ["oldie", "pb"] if env_name == "py36" else ["sci", "oldie", "pb"]
    pip_install(vpy, (tree / "simple").as_uri() + "/", *wanted)
    code = "import importlib.metadata as m; print(m.version('pb'), m.version('oldie'), m.version('dep'))"
    if env_name == "py36":
        code = "import pkg_resources as r; print(*(r.get_distribution(n).version for n in ('pb', 'oldie', 'dep')))"
    out = subprocess.run([str(vpy), "-c", code], capture_output=True, text=True, env=client_env())
    assert out.stdout.split() == ["1.0", "0.9", "1.0"], out.stderr


def test_backend_is_asked_only_about_sdists_an_env_builds(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    """sci has a wheel here: its sdist is kept with its static build requirements, and no
    hook runs (a process per sdist would make a large bundle slow for nothing)."""
    for path in make_mesonlike_wheels(dists / "ml"):
        fake_index.add(path)
    fake_index.add(make_wheel(dists, "sci", "1.0"))
    fake_index.add(
        make_sdist(dists, "sci", "1.0", build_requires=["mesonlike"], build_backend="mesonlike")
    )
    root = tmp_path / "bundle"
    root.mkdir()
    (root / "morgan.ini").write_text(ini_env_block("py312", "3.12.1") + "[requirements]\nsci =\n")
    assert main(["mirror", "-i", str(root), "-I", fake_index.url, "-q"]) == 0
    assert _files(root, "mesonlike") == {"mesonlike-1.0-py3-none-any.whl"}
    assert not (root / "simple" / "mlninja").exists()


def test_a_rerun_reads_no_archive_and_runs_no_hook(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, monkeypatch
) -> None:
    """What the sdists' archives and backends said is remembered by sha256."""
    publish(fake_index, dists)
    root = tmp_path / "bundle"
    root.mkdir()
    (root / "morgan.ini").write_text(
        ini_env_block("py312", "3.12.1") + "[requirements]\nsci =\noldie =\n"
    )
    assert main(["mirror", "-i", str(root), "-I", fake_index.url, "-q"]) == 0

    def refuse(*args, **kwargs):
        raise AssertionError("a re-run must not read an archive or run a hook")

    for name in ("unpack_archive", "dynamic_build_requires", "hook_metadata"):
        monkeypatch.setattr(f"morgan_like.resolve.buildenv.{name}", refuse)
    monkeypatch.setattr("morgan_like.dists.sdistread.SdistReader.build_requires", refuse)
    fake_index.reset_log()
    assert main(["mirror", "-i", str(root), "-I", fake_index.url, "-q"]) == 0
    assert _files(root, "mlpatchelf") == {"mlpatchelf-0.17-py3-none-any.whl"}
    assert _files(root, "dep") == {"dep-1.0-py3-none-any.whl"}


def test_each_env_follows_build_requirements_another_env_brought_in_first(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    """``tool``'s sdist joins the plan through whichever env gets there first; the other
    env must still read it, since its build requirement ``helper`` resolves to another
    version there (2.0 needs Python 3.9)."""
    fake_index.add(make_wheel(dists, "app", "1.0"))
    fake_index.add(make_sdist(dists, "app", "1.0", build_requires=["tool"]))
    fake_index.add(make_wheel(dists, "tool", "1.0"))
    fake_index.add(make_sdist(dists, "tool", "1.0", build_requires=["helper"]))
    fake_index.add(make_wheel(dists, "helper", "1.0"))
    fake_index.add(make_wheel(dists, "helper", "2.0", requires_python=">=3.9"))
    config = ini_env_block("py37", "3.7.9") + ini_env_block("py312", "3.12.1")
    for attempt in range(3):  # whichever env wins the race, both versions are kept
        root = tmp_path / f"bundle{attempt}"
        root.mkdir()
        (root / "morgan.ini").write_text(config + "[requirements]\napp =\n")
        assert main(["mirror", "-i", str(root), "-I", fake_index.url, "-q"]) == 0
        assert _files(root, "helper") == {
            "helper-1.0-py3-none-any.whl",
            "helper-2.0-py3-none-any.whl",
        }


def test_sdists_an_env_builds_are_laid_out_before_the_others_are_read(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, monkeypatch
) -> None:
    """Unpacking an sdist and laying out its build environment is the slow start of the
    backend hooks, and each of its file writes waits for the GIL behind busy threads:
    it goes first and alone, and the other sdists are read while the hooks run."""
    from morgan_like.dists.sdistread import SdistReader
    from morgan_like.resolve.buildenv import BuildEnvs

    publish(fake_index, dists)
    events: list[str] = []
    prepare, read = BuildEnvs.prepare, SdistReader.build_requires

    def recording_prepare(self, sdist: Path, filename: str) -> None:
        prepare(self, sdist, filename)
        events.append(f"prepared {filename}")

    def recording_read(self, path: Path):
        events.append(f"read {Path(path).name}")
        return read(self, path)

    monkeypatch.setattr(BuildEnvs, "prepare", recording_prepare)
    monkeypatch.setattr(SdistReader, "build_requires", recording_read)
    root = tmp_path / "bundle"
    root.mkdir()
    (root / "morgan.ini").write_text(
        ini_env_block("py312", "3.12.1") + "[requirements]\nsci =\noldie =\npb =\n"
    )
    assert main(["mirror", "-i", str(root), "-I", fake_index.url, "-q"]) == 0
    prepared = [e for e in events if e.startswith("prepared")]
    assert sorted(prepared) == ["prepared oldie-0.9.tar.gz", "prepared sci-1.0.tar.gz"]
    assert events.index("read pb-1.0.tar.gz") > max(events.index(e) for e in prepared)


def test_the_backend_is_asked_ahead_during_resolution_and_once_per_platform(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, monkeypatch
) -> None:
    """An env that reads an sdist's metadata because it has no wheel will most likely
    build it: its get_requires_for_build_wheel hook starts then, beside the rest of the
    resolution, and the build step takes that answer instead of running it again."""
    from morgan_like.resolve import builddeps, buildenv

    publish(fake_index, dists)
    events: list[str] = []
    foresee, hook = buildenv.BuildEnvs.foresee, buildenv.dynamic_build_requires
    add_build_requirements = builddeps.BuildRequirements.add

    def recording_foresee(self, file, target):
        events.append(f"foresee {file.filename}")
        return foresee(self, file, target)

    def recording_hook(source, *args, **kwargs):
        events.append(f"hook {source.name}")
        return hook(source, *args, **kwargs)

    def recording_build_step(self, *args, **kwargs):
        events.append("build step")
        return add_build_requirements(self, *args, **kwargs)

    monkeypatch.setattr(buildenv.BuildEnvs, "foresee", recording_foresee)
    monkeypatch.setattr(buildenv, "dynamic_build_requires", recording_hook)
    monkeypatch.setattr(builddeps.BuildRequirements, "add", recording_build_step)
    root = tmp_path / "bundle"
    root.mkdir()
    (root / "morgan.ini").write_text(
        ini_env_block("py312", "3.12.1") + "[requirements]\nsci =\noldie =\n"
    )
    assert main(["mirror", "-i", str(root), "-I", fake_index.url, "-q"]) == 0
    build_step = events.index("build step")
    assert "foresee sci-1.0.tar.gz" in events[:build_step]
    assert "foresee oldie-0.9.tar.gz" in events[:build_step]
    assert sorted(e for e in events if e.startswith("hook")) == ["hook oldie-0.9", "hook sci-1.0"]
    assert _files(root, "mlpatchelf") == {"mlpatchelf-0.17-py3-none-any.whl"}
