"""fetch_verified's temp files: the folders it needs made on demand, no temp file left
whichever way the verified file is placed."""

from __future__ import annotations

import builtins
import io
import os
import shutil
from pathlib import Path

import pytest

from morgan_like.fetch.download import fetch_verified
from morgan_like.index.upstream import Upstream

from ..fakeindex import FakeIndex
from ..helpers import wheel


def _file(fake_index: FakeIndex, dists: Path, upstream: Upstream):
    wheel(fake_index, dists, "alpha", "1.0")
    return next(iter(upstream.project_page("alpha").files))


def test_folders_made_on_demand_and_no_temp_left(fake_index, dists, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    with Upstream(fake_index.url, retries=0) as upstream:
        file = _file(fake_index, dists, upstream)
        dest = tmp_path / "packages" / "alpha" / file.filename
        size, sha256 = fetch_verified(upstream, file, dest, scratch)  # neither folder exists
        assert dest.stat().st_size == size and sha256 == file.sha256
        assert list(scratch.iterdir()) == []
        shutil.rmtree(scratch)  # swept between two downloads
        dest.unlink()
        fetch_verified(upstream, file, dest, scratch)
        assert dest.exists() and list(scratch.iterdir()) == []


def test_a_place_that_copies_leaves_no_temp_file(fake_index, dists, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    copied: list[bytes] = []
    with Upstream(fake_index.url, retries=0) as upstream:
        file = _file(fake_index, dists, upstream)
        fetch_verified(
            upstream,
            file,
            tmp_path / "unused",
            scratch,
            place=lambda tmp, _dest, _size, _sha: copied.append(tmp.read_bytes()),
        )
    assert len(copied) == 1 and len(copied[0]) == file.size
    assert list(scratch.iterdir()) == [] and not (tmp_path / "unused").exists()


def test_a_download_writes_through_a_bare_descriptor(
    fake_index, dists, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No file object for the temp file: its open would add an fstat, an ioctl and an
    lseek (each a turn at the interpreter lock) to every one of a sync's downloads."""
    scratch = tmp_path / "scratch"
    opened: list[str] = []
    real_open = builtins.open

    def spy(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(os.fspath(file))
        return real_open(file, *args, **kwargs)

    with Upstream(fake_index.url, retries=0) as upstream:
        file = _file(fake_index, dists, upstream)
        dest = tmp_path / "packages" / "alpha" / file.filename
        monkeypatch.setattr(builtins, "open", spy)
        monkeypatch.setattr(io, "open", spy)
        size, sha256 = fetch_verified(upstream, file, dest, scratch)
        monkeypatch.undo()
    assert dest.read_bytes() == (dists / file.filename).read_bytes()
    assert (size, sha256) == (file.size, file.sha256)
    assert [p for p in opened if p.startswith(os.fspath(scratch))] == []
