"""Real pip and uv install from a synced tree after every step of a changing upstream.

The oldest and newest pyenv CPython (pip 18.1 and 24.x) and uv, through the
tree's ``server.py`` and through ``file://``: a first sync, a new release, a yank
(the yanked release is no longer picked), a deleted release, and an index-only
tree whose pages link the upstream's files.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..clients import (
    find_uv,
    installed,
    make_venv,
    need,
    pip_install,
    pip_version,
    pyenv_python,
    uv_install,
    uv_venv,
)
from ..fakeindex import FakeIndex
from ..helpers import wheel
from ..server_support import SubprocessServer
from .sync_support import sync

pytestmark = pytest.mark.e2e
PYTHONS = [pyenv_python("3.6.15"), pyenv_python("3.13.0")]
CHECK = "import lib; print(lib.__version__)"


def _installs(
    tree: Path, tmp_path: Path, expected: str, tag: str, before_yanks: str | None = None
) -> None:
    """``before_yanks``: what a pip older than 19.2 (no PEP 592: it ignores yanks) gets."""
    uv = find_uv()
    with SubprocessServer(tree) as server:
        urls = [f"{server.base}/simple/", (tree / "simple").as_uri() + "/"]
        # Old pip over file:// and HTTP alternately, new pip over the other: every client
        # reads both kinds of URL across the steps, at half the venvs.
        flip = sum(map(ord, tag)) % 2
        for n, python in enumerate(PYTHONS):
            if not python.exists():
                continue
            url = urls[(n + flip) % 2]
            venv = make_venv(python, tmp_path / f"{tag}-pip{n}")
            pip_install(venv, url, "app")
            want = expected
            if before_yanks is not None and pip_version(venv) < (19, 2):
                want = before_yanks
            assert installed(venv, CHECK) == want, (python, url)
        if uv is not None:
            for m, url in enumerate(urls):
                venv = uv_venv(uv, PYTHONS[-1], tmp_path / f"{tag}-uv{m}")
                uv_install(uv, venv, url, "app")
                assert installed(venv, CHECK) == expected, ("uv", url)


def test_clients_follow_every_step(fake_index: FakeIndex, dists: Path, tmp_path: Path) -> None:
    need(PYTHONS[-1])
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib"])
    wheel(fake_index, dists, "lib", "1.0")
    tree = tmp_path / "tree"
    assert sync(tree, fake_index).rc == 0
    _installs(tree, tmp_path, "1.0", "first")

    wheel(fake_index, dists, "lib", "2.0")
    assert sync(tree, fake_index).rc == 0
    _installs(tree, tmp_path, "2.0", "release")

    fake_index.yank("lib-2.0-py3-none-any.whl", "broken")
    assert sync(tree, fake_index).rc == 0
    _installs(tree, tmp_path, "1.0", "yank", before_yanks="2.0")

    wheel(fake_index, dists, "lib", "3.0")
    fake_index.remove("lib-1.0-py3-none-any.whl")
    assert sync(tree, fake_index).rc == 0
    _installs(tree, tmp_path, "3.0", "delete")


def test_clients_install_from_an_index_only_tree(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    need(PYTHONS[-1])
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib"])
    wheel(fake_index, dists, "lib", "1.5")
    tree = tmp_path / "tree"
    assert sync(tree, fake_index, "--index-only").rc == 0
    _installs(tree, tmp_path, "1.5", "index-only")
