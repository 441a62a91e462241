"""Every requirement input reaches the bundle, and errors people can act on (bundle round 2)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from morgan_like.cli import main

from ..clients import make_venv, need, pip_install, pyenv_python
from ..distbuilder import make_sdist
from ..fakeindex import FakeIndex
from ..helpers import ini_env_block, sdist, wheel
from .test_bundle import mirror, write_config


def _listed(root: Path, project: str) -> set[str]:
    page = root / "simple" / project / "index.json"
    if not page.exists():
        return set()
    return {f["filename"] for f in json.loads(page.read_text())["files"]}


def test_hashes_pick_the_listed_files_and_an_unknown_hash_stops(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys
) -> None:
    old = wheel(fake_index, dists, "lib", "1.0")
    wheel(fake_index, dists, "lib", "2.0")
    sdist(fake_index, dists, "lib", "1.0")
    sha = hashlib.sha256(old.read_bytes()).hexdigest()
    root = tmp_path / "bundle"
    write_config(root, "")
    (root / "reqs.txt").write_text(f"lib==1.0 \\\n    --hash=sha256:{sha}\n")
    with open(root / "morgan.ini", "a") as ini:
        ini.write("[requirements_from]\nrequirements = reqs.txt\n")
    assert mirror(root, fake_index) == 0
    # The sdist's hash is not listed, so a --require-hashes client could not use it.
    assert _listed(root, "lib") == {old.name}
    (root / "reqs.txt").write_text(f"lib==1.0 --hash=sha256:{'ab' * 32}\n")
    capsys.readouterr()
    assert mirror(root, fake_index) != 0
    assert f"--hash=sha256:{'ab' * 32} of the requirement on lib matches no file" in (
        capsys.readouterr().err
    )


def test_constraints_and_dependency_groups_reach_the_bundle(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib"])
    for version in ("1.0", "2.0"):
        wheel(fake_index, dists, "lib", version)
    wheel(fake_index, dists, "pytest", "8.0")
    wheel(fake_index, dists, "unwanted", "1.0")
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    (root / "c.txt").write_text("lib<2\nunwanted==1.0\n")
    (root / "pyproject.toml").write_text(
        '[dependency-groups]\ntest = ["pytest>=8"]\nall = [{include-group = "test"}]\n'
    )
    with open(root / "morgan.ini", "a") as ini:
        ini.write("[requirements_from]\nconstraints = c.txt\ngroups = pyproject.toml:all\n")
    assert mirror(root, fake_index) == 0
    assert _listed(root, "lib") == {"lib-1.0-py3-none-any.whl"}
    assert _listed(root, "pytest") == {"pytest-8.0-py3-none-any.whl"}
    assert not (root / "simple" / "unwanted").exists()


def test_same_error_in_every_env_is_printed_once_with_a_suggestion(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys
) -> None:
    wheel(fake_index, dists, "colorama", "0.4")
    root = tmp_path / "bundle"
    write_config(root, "colourama =\n", "3.11.7", "3.12.1")
    assert mirror(root, fake_index) != 0
    err = capsys.readouterr().err
    assert err.count("does not exist") == 1, err
    assert "envs 'py3117', 'py3121'" in err
    assert "did you mean: colorama?" in err
    assert not (root / "packages").exists() or not any((root / "packages").iterdir())


def test_python_newer_than_any_release_is_warned(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys
) -> None:
    wheel(fake_index, dists, "lib", "1.0")
    root = tmp_path / "bundle"
    write_config(root, "lib =\n", "3.99.0")
    assert main(["mirror", "-i", str(root), "-I", fake_index.url]) == 0
    err = capsys.readouterr().err
    assert "warning: " in err and "3.99" in err


def test_failed_run_leaves_no_empty_folders(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    wheel(fake_index, dists, "modern", "1.0", requires_python=">=3.10")
    sdist(fake_index, dists, "modern", "1.0", requires_python=">=3.10")
    root = tmp_path / "bundle"
    write_config(root, "modern =\n", "3.12.1", "3.7.16")
    assert mirror(root, fake_index) == 1
    visible = [
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if not p.relative_to(root).parts[0].startswith(".")
    ]
    assert visible == ["morgan.ini"]


def _local_project(where: Path) -> Path:
    project = where / "myproject"
    (project / "myproject").mkdir(parents=True)
    (project / "myproject" / "__init__.py").write_text('__version__ = "0.1"\n')
    (project / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: myproject\nVersion: 0.1\n")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["tinybackend"]\nbuild-backend = "tinybackend"\n\n'
        '[project]\nname = "myproject"\nversion = "0.1"\ndependencies = ["lib"]\n'
    )
    return project


def test_local_projects_build_requirements_are_bundled(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, tiny_backend_wheel: Path
) -> None:
    fake_index.add(tiny_backend_wheel)
    wheel(fake_index, dists, "lib", "1.0")
    root = tmp_path / "bundle"
    project = _local_project(tmp_path)
    write_config(root, "")
    with open(root / "morgan.ini", "a") as ini:
        ini.write(f"[requirements_from]\npyproject = {project / 'pyproject.toml'}\n")
    assert mirror(root, fake_index) == 0
    assert _listed(root, "tinybackend") == {tiny_backend_wheel.name}
    assert _listed(root, "lib") == {"lib-1.0-py3-none-any.whl"}


@pytest.mark.e2e
def test_clients_install_offline_with_hashes_and_build_the_local_project(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, tiny_backend_wheel: Path
) -> None:
    python = pyenv_python("3.12.1")
    need(python)
    fake_index.add(tiny_backend_wheel)
    lib = wheel(fake_index, dists, "lib", "1.0")
    fake_index.add(make_sdist(dists, "lib", "1.0"))
    sha = hashlib.sha256(lib.read_bytes()).hexdigest()
    root = tmp_path / "bundle"
    project = _local_project(tmp_path)
    root.mkdir()
    (root / "morgan.ini").write_text(ini_env_block("py312", "3.12.1"))
    (root / "reqs.txt").write_text(f"lib==1.0 --hash=sha256:{sha}\n")
    with open(root / "morgan.ini", "a") as ini:
        ini.write(
            "[requirements_from]\nrequirements = reqs.txt\n"
            f"pyproject = {project / 'pyproject.toml'}\n"
        )
    assert mirror(root, fake_index) == 0
    fake_index.stop()
    index_url = (root / "simple").as_uri() + "/"
    vpy = make_venv(python, tmp_path / "venv")
    pip_install(vpy, index_url, "--require-hashes", "-r", str(root / "reqs.txt"))
    pip_install(vpy, index_url, str(project))
