"""modes.sync.SyncRun: what one sync owns is closed, in reverse, however the run ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from morgan_like.config.syncconf import SyncConfig
from morgan_like.errors import SyncRefused
from morgan_like.index.upstream import Upstream
from morgan_like.modes import sync
from morgan_like.output import Reporter
from morgan_like.tree.state import TreeState

from ..fakeindex import FakeIndex


def _closes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    closed: list[str] = []
    for kind, name in ((TreeState, "state"), (Upstream, "upstream")):

        def recording(self: object, _close=kind.close, _name=name) -> None:
            closed.append(_name)
            _close(self)

        monkeypatch.setattr(kind, "close", recording)
    return closed


def test_a_resource_that_fails_to_open_closes_those_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = _closes(monkeypatch)

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("no upstream")

    monkeypatch.setattr(sync, "Upstream", broken)
    options = sync.SyncOptions(index_path=tmp_path, index_url="http://127.0.0.1:9/simple/")
    settings = sync._settings(options, SyncConfig())
    with pytest.raises(OSError, match="no upstream"):
        sync.SyncRun(options, settings, Reporter(verbosity=0))
    assert closed == ["state"]


def test_a_refused_plan_closes_the_state_and_the_upstream(
    fake_index: FakeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = _closes(monkeypatch)
    fake_index.add_project("only")
    options = sync.SyncOptions(index_path=tmp_path, index_url=fake_index.url)
    settings = sync._settings(options, SyncConfig())

    def refused(*args: object, **kwargs: object) -> str:
        return "too many deletions"

    monkeypatch.setattr(sync, "deletion_refusal", refused)
    with pytest.raises(SyncRefused), sync.SyncRun(options, settings, Reporter(verbosity=0)) as run:
        run.run()
    assert closed == ["upstream", "state"]
