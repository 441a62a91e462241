"""A run reads each sdist once, also when the tree holds its own copy of the cached one."""

from __future__ import annotations

import hashlib
import shutil

from morgan_like.dists import sdistread
from morgan_like.dists.sdistread import SdistReader

from ..distbuilder import make_sdist


def test_a_copy_with_the_same_verified_sha256_is_not_read_again(tmp_path, monkeypatch) -> None:
    """The download step fetched its own copy while the cache's was under way: another
    inode, the same bytes (both verified against the page's sha256)."""
    reads: list[str] = []
    read = sdistread.read_sdist

    def counted(path):
        reads.append(str(path))
        return read(path)

    monkeypatch.setattr(sdistread, "read_sdist", counted)
    cached = make_sdist(tmp_path / "cache", "pkg", "1.0", requires_dist=["alpha"])
    placed = tmp_path / "tree" / cached.name
    placed.parent.mkdir()
    shutil.copyfile(cached, placed)
    sha256 = hashlib.sha256(cached.read_bytes()).hexdigest()
    reader = SdistReader()
    first = reader.facts(cached, ahead=True, sha256=sha256)
    assert reader.known(placed) is None  # another file, and no sha256 to say it is the same
    assert reader.known(placed, sha256) == first
    reader.same(placed, sha256)
    assert reader.build_requires(placed) == list(first.build_requires or ())
    assert reads == [str(cached)]
    assert reader.known(placed) == first  # now known by its own identity too


def test_a_copy_read_first_in_the_tree_is_not_read_again_from_the_cache(
    tmp_path, monkeypatch
) -> None:
    reads: list[str] = []
    read = sdistread.read_sdist
    monkeypatch.setattr(sdistread, "read_sdist", lambda path: reads.append(str(path)) or read(path))
    cached = make_sdist(tmp_path / "cache", "pkg", "1.0")
    placed = tmp_path / "tree" / cached.name
    placed.parent.mkdir()
    shutil.copyfile(cached, placed)
    sha256 = hashlib.sha256(cached.read_bytes()).hexdigest()
    reader = SdistReader()
    reader.same(placed, sha256)  # the build step's copy, nothing read yet
    reader.build_requires(placed)
    reader.facts(cached, ahead=True, sha256=sha256)  # the cache's copy, read ahead late
    assert reads == [str(placed)]
