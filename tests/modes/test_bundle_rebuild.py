"""A tree built with ``-c`` carries the files its config read, and rebuilds itself from them."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from morgan_like.cli import main

from ..fakeindex import FakeIndex
from ..helpers import ini_env_block, wheel
from ..server_support import InProcessServer


@pytest.fixture
def upstream(fake_index: FakeIndex, dists: Path) -> FakeIndex:
    for version in ("1.0", "2.0"):
        wheel(fake_index, dists, "lib", version)  # pinned below 2 by a nested -c
    for name in ("helper", "dep", "speedy", "tester", "unwanted", "slowpoke"):
        wheel(fake_index, dists, name, "1.0")
    return fake_index


def _inputs(src: Path) -> Path:
    """An outside config naming requirements (nested -r, -c, one absolute), a pyproject
    with an extra and one of its groups; returns the config."""
    for folder in ("conf", "reqs/base", "app"):
        (src / folder).mkdir(parents=True, exist_ok=True)
    (src / "reqs" / "main.txt").write_text(
        f"# the app's runtime\nlib\n-r base/base.txt\n-c {src / 'pins.txt'}  # absolute\n"
    )
    (src / "reqs" / "base" / "base.txt").write_text("helper\n-c ../../pins.txt\n")
    (src / "pins.txt").write_text("lib<2\n")
    (src / "app" / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\ndependencies = ["dep"]\n\n'
        '[project.optional-dependencies]\nfast = ["speedy"]\nslow = ["slowpoke"]\n\n'
        '[dependency-groups]\ntest = ["tester"]\nlint = ["unwanted"]\n'
    )
    config = src / "conf" / "bundle.ini"
    config.write_text(
        "# bundle for the app; kept in its repository\n"
        + ini_env_block("linux", "3.12.1")
        + "[requirements_from]\n"
        "# runtime first\n"
        "requirements = ../reqs/main.txt\n"
        "pyproject = ../app/pyproject.toml[fast]\n"
        "groups =\n"
        "    ../app/pyproject.toml:test\n"
        "; trailing comment\n"
    )
    return config


def _visible(tree: Path) -> dict[str, str]:
    return {
        p.relative_to(tree).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(tree.rglob("*"))
        if p.is_file() and not p.relative_to(tree).parts[0].startswith(".")
    }


def _verify(tree: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(tree / "server.py"), "--verify", "-i", str(tree)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def _mirror(tree: Path, index: FakeIndex, *extra: str) -> int:
    return main(["mirror", "-i", str(tree), "-I", index.url, "-q", *extra])


def test_a_tree_built_with_c_rebuilds_itself_without_the_original_files(
    upstream: FakeIndex, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    config = _inputs(src)
    tree = tmp_path / "bundle"
    assert _mirror(tree, upstream, "-c", str(config)) == 0
    projects = {p.name for p in (tree / "packages").iterdir()}
    assert projects == {"lib", "helper", "dep", "speedy", "tester"}
    assert [p.name for p in (tree / "packages" / "lib").glob("*.whl")] == [
        "lib-1.0-py3-none-any.whl"
    ]
    # The files below their common folder (src/), the absolute -c pointed at its copy.
    assert sorted(p for p in _visible(tree) if p.startswith("inputs/")) == [
        "inputs/app/pyproject.toml",
        "inputs/pins.txt",
        "inputs/reqs/base/base.txt",
        "inputs/reqs/main.txt",
    ]
    assert (tree / "inputs/reqs/base/base.txt").read_bytes() == (
        src / "reqs/base/base.txt"
    ).read_bytes()
    assert (tree / "inputs/reqs/main.txt").read_text() == (
        "# the app's runtime\nlib\n-r base/base.txt\n-c ../pins.txt  # absolute\n"
    )
    # Only the [requirements_from] values changed, comments and all else kept.
    written = (tree / "morgan.ini").read_text()
    assert written == config.read_text().replace("../reqs/", "inputs/reqs/").replace(
        "../app/", "inputs/app/"
    )
    _verify(tree)
    before = _visible(tree)

    shutil.rmtree(src)
    moved = tmp_path / "elsewhere" / "bundle"
    shutil.move(str(tree), str(moved))  # relocatable: the references are tree-relative
    shutil.rmtree(moved / ".morgan-like")  # the hidden state need not travel
    assert _mirror(moved, upstream) == 0
    assert _visible(moved) == before
    _verify(moved)


def test_the_trees_own_config_carries_nothing_and_a_new_config_replaces_the_inputs(
    upstream: FakeIndex, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    config = _inputs(src)
    tree = tmp_path / "bundle"
    assert _mirror(tree, upstream, "-c", str(config)) == 0
    # -c naming the tree's own morgan.ini: its paths already lead into inputs/.
    before = _visible(tree)
    assert _mirror(tree, upstream, "-c", str(tree / "morgan.ini")) == 0
    assert _visible(tree) == before
    # A new outside config that reads fewer files: inputs/ holds exactly what it reads.
    (src / "conf" / "small.ini").write_text(
        ini_env_block("linux", "3.12.1") + "[requirements_from]\nrequirements = ../pins.txt\n"
    )
    assert _mirror(tree, upstream, "-c", str(src / "conf" / "small.ini")) == 0
    assert sorted(p for p in _visible(tree) if p.startswith("inputs/")) == ["inputs/pins.txt"]
    assert "requirements = inputs/pins.txt\n" in (tree / "morgan.ini").read_text()
    assert not (tree / "inputs" / "reqs").exists()
    _verify(tree)
    # An outside config reading no file leaves no inputs/.
    (src / "conf" / "plain.ini").write_text(
        ini_env_block("linux", "3.12.1") + "[requirements]\nlib =\n"
    )
    assert _mirror(tree, upstream, "-c", str(src / "conf" / "plain.ini")) == 0
    assert not (tree / "inputs").exists()
    _verify(tree)


def test_inputs_are_never_served(upstream: FakeIndex, tmp_path: Path) -> None:
    config = _inputs(tmp_path / "src")
    tree = tmp_path / "bundle"
    assert _mirror(tree, upstream, "-c", str(config)) == 0
    assert (tree / "inputs" / "pins.txt").is_file()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with InProcessServer(tree) as srv:
        for path in ("/inputs/pins.txt", "/inputs/reqs/main.txt", "/morgan.ini"):
            with pytest.raises(urllib.error.HTTPError) as info:
                opener.open(srv.base + path, timeout=10)
            assert info.value.code == 404, path
        with opener.open(srv.base + "/simple/lib/", timeout=10) as ok:
            assert ok.status == 200
