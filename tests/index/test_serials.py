"""Serial lists from the fake upstream: root index, local.json, XML-RPC, and auto."""

from __future__ import annotations

from pathlib import Path

import pytest

from morgan_like.errors import UpstreamError
from morgan_like.index.serials import fetch_serials
from morgan_like.index.upstream import Upstream

from ..fakeindex import FakeIndex
from ..helpers import wheel


@pytest.fixture
def catalogue(fake_index: FakeIndex, dists: Path) -> FakeIndex:
    wheel(fake_index, dists, "Alpha", "1.0")
    wheel(fake_index, dists, "beta", "1.0")
    wheel(fake_index, dists, "beta", "2.0")
    return fake_index


def _expected(index: FakeIndex) -> dict[str, int]:
    return {n: index.project_serial(n) for n in index.projects}


@pytest.mark.parametrize("source", ["simple", "local-json", "xmlrpc"])
def test_each_source_gives_the_same_list(catalogue: FakeIndex, source: str) -> None:
    catalogue.local_json = catalogue.xmlrpc = True
    with Upstream(catalogue.url, retries=0) as upstream:
        result = fetch_serials(upstream, source)
    assert result.source == source
    assert dict(result.serials) == _expected(catalogue)
    assert set(result.serials) == {"alpha", "beta"}


def test_auto_falls_back_and_says_which(catalogue: FakeIndex, monkeypatch) -> None:
    catalogue.xmlrpc = True
    monkeypatch.setattr(catalogue, "root_json", lambda: b'{"projects": "oops"}')
    with Upstream(catalogue.url, retries=0) as upstream:
        result = fetch_serials(upstream)
    assert result.source == "xmlrpc"
    catalogue.xmlrpc = False
    with Upstream(catalogue.url, retries=0) as upstream, pytest.raises(UpstreamError) as info:
        fetch_serials(upstream)
    text = str(info.value)
    assert "simple: " in text and "local-json: " in text and "xmlrpc: " in text
