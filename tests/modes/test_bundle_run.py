"""modes.bundle.BundleRun: what one mirror run owns is closed, in reverse, however it ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from morgan_like.errors import ResolutionError
from morgan_like.index.pagecache import PageCache
from morgan_like.index.upstream import Upstream
from morgan_like.modes import bundle
from morgan_like.modes.resolving import ResolveSession
from morgan_like.output import Reporter
from morgan_like.tree.state import TreeState

from ..fakeindex import FakeIndex
from ..helpers import ini_env_block, wheel


def _closes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    closed: list[str] = []
    kinds = ((TreeState, "state"), (PageCache, "pages"), (Upstream, "upstream"))
    for kind, name in (*kinds, (ResolveSession, "session")):

        def recording(self: object, _close=kind.close, _name=name) -> None:
            closed.append(_name)
            _close(self)

        monkeypatch.setattr(kind, "close", recording)
    return closed


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
    closed = _closes(monkeypatch)
    monkeypatch.setattr(bundle, "resolve_all", _broken)
    options = bundle.MirrorOptions(index_path=root, index_url=fake_index.url, dry_run=dry_run)
    with pytest.raises(ResolutionError):
        bundle.run_mirror(options, Reporter(verbosity=0))
    # A dry run opens no tree state and no page cache: it writes nothing.
    expected = ["session", "upstream"] if dry_run else ["session", "upstream", "pages", "state"]
    assert closed == expected
    if dry_run:
        assert [p.name for p in root.iterdir()] == ["morgan.ini"]
