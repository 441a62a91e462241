"""``--static-metadata-only``: no backend hook runs, and the run says what that costs.

Static metadata is what pip and uv trust without a build: PKG-INFO of Metadata 2.2+
whose Requires-Dist is not dynamic, a static ``[project]`` table, PKG-INFO written
by poetry-core or flit-core.  setuptools' ``egg-info/requires.txt`` is not: it is
what ``setup.py`` computed where the sdist was made.  The README's own example
(xonsh 0.11.0: a setup.py sdist with PKG-INFO 2.1 and an egg-info) is that case.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from morgan_like.cli import main

from ..backends import make_fake_setuptools_wheels
from ..distbuilder import make_sdist, make_wheel
from ..fakeindex import FakeIndex
from ..helpers import WINDOWS, ini_env_block

CONFIG = ini_env_block("linux", "3.12.1") + ini_env_block("windows", "3.12.7", WINDOWS)


def _legacy(index: FakeIndex, dists: Path) -> None:
    """shelly 0.11.0 as xonsh 0.11.0 is: setup.py, PKG-INFO 2.1, an egg-info whose
    requires.txt disagrees with what setup.py says on this machine."""
    for path in make_fake_setuptools_wheels(dists):
        index.add(path)
    for name in ("prompt", "stale"):
        index.add(make_wheel(dists, name, "1.0"))
    index.add(
        make_sdist(
            dists,
            "shelly",
            "0.11.0",
            requires_dist=["prompt"],
            include_requires_dist_in_pkg_info=False,
            pkg_info_metadata_version="2.1",
            egg_info_requires="stale\n",
            build_requires=None,
            build_backend=None,
        )
    )


def _mirror(root: Path, index: FakeIndex, requirements: str, *flags: str) -> int:
    root.mkdir(exist_ok=True)
    (root / "morgan.ini").write_text(CONFIG + "[requirements]\n" + requirements)
    return main(["mirror", "-i", str(root), "-I", index.url, *flags])


def test_a_setup_py_sdist_stops_the_run_naming_it_and_who_wanted_it(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _legacy(fake_index, dists)
    fake_index.add(make_wheel(dists, "app", "1.0", requires_dist=["shelly"]))
    assert _mirror(tmp_path / "tree", fake_index, "app =\n", "--static-metadata-only") != 0
    err = capsys.readouterr().err
    assert "shelly-0.11.0.tar.gz: cannot read its dependencies statically" in err
    assert "[requirements] app -> app 1.0 -> shelly\n" in err
    assert "[dependencies] shelly==0.11.0 = " in err
    assert "Traceback" not in err and "unexpected" not in err


def test_without_the_flag_its_dependencies_come_from_setup_py_not_requires_txt(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    _legacy(fake_index, dists)
    root = tmp_path / "tree"
    assert _mirror(root, fake_index, "shelly = ~=0.11.0\n", "-q") == 0
    assert (root / "packages/prompt/prompt-1.0-py3-none-any.whl").is_file()
    assert not (root / "packages/stale").exists()


def test_a_dependencies_entry_lets_the_static_run_through_and_says_what_it_skipped(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _legacy(fake_index, dists)
    root = tmp_path / "tree"
    requirements = "shelly = ~=0.11.0\n\n[dependencies]\nshelly==0.11.0 = prompt\n"
    assert _mirror(root, fake_index, requirements, "--static-metadata-only") == 0
    assert (root / "packages/prompt").is_dir() and not (root / "packages/stale").exists()
    # Both envs build it: the static build requirements are bundled, and the run says
    # that its backend was not asked for more.
    assert (root / "packages/setuptools").is_dir() and (root / "packages/wheel").is_dir()
    out = capsys.readouterr()
    assert (
        "shelly-0.11.0.tar.gz: built on the target, but its backend was not asked what it "
        "adds to its [build-system] requires (--static-metadata-only runs no hook)"
    ) in out.out + out.err


def test_static_pkg_info_needs_no_hook(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PKG-INFO 2.2 without Dynamic: Requires-Dist is trusted as it is, as uv does."""
    fake_index.add(make_wheel(dists, "prompt", "1.0"))
    fake_index.add(make_wheel(dists, "tinybackend", "1.0"))
    fake_index.add(make_sdist(dists, "modern", "2.0", requires_dist=["prompt"], pyproject=False))
    root = tmp_path / "tree"
    assert _mirror(root, fake_index, "modern =\n", "--static-metadata-only") == 0
    assert (root / "packages/prompt").is_dir()
    assert "cannot read its dependencies statically" not in capsys.readouterr().err
