"""tree/bucketstream.py and the end push's side of streaming, on the filesystem storage:
what a page lists, the eviction log, an evicted file never taken for a removal, and the
end push not sending again what streamed with the bytes the working tree still has."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from morgan_like.tree.bucketpush import Sent, push
from morgan_like.tree.bucketstream import (
    EVICTION_LOG,
    append_evictions,
    fold_evictions,
    listed_keys,
)
from morgan_like.tree.state import EVICTED, TreeState
from morgan_like.tree.storage import FsStorage

WHL = "packages/a/a-1.0-py3-none-any.whl"


def _tree(root: Path) -> None:
    (root / "packages" / "a").mkdir(parents=True)
    (root / WHL).write_bytes(b"wheel")
    (root / (WHL + ".metadata")).write_bytes(b"Metadata-Version: 2.1\n")
    (root / "simple" / "a").mkdir(parents=True)
    page = {"files": [{"filename": WHL.rsplit("/", 1)[1], "url": f"../../{WHL}"}]}
    (root / "simple" / "a" / "index.json").write_text(json.dumps(page))
    (root / "simple" / "a" / "index.html").write_text(f'<a href="../../{WHL}#sha256=00">a</a>')
    (root / "json").mkdir()
    (root / "json" / "a").write_text(json.dumps({"urls": [{"url": f"/{WHL}"}], "releases": {}}))


def test_listed_keys_of_each_page_form(tmp_path):
    _tree(tmp_path)
    pages = {
        rel: (tmp_path / rel).read_bytes()
        for rel in ("simple/a/index.json", "simple/a/index.html", "json/a")
    }
    for rel, data in pages.items():
        assert listed_keys({rel: data}) == {WHL}, rel
    # another host's file (an index-only page) is nothing of the bucket's
    assert listed_keys({"simple/a/index.json": b'{"files": [{"url": "https://x/f.whl"}]}'}) == set()


def test_the_eviction_log_is_folded_into_the_state(tmp_path):
    _tree(tmp_path)
    other = "packages/a/a-2.0-py3-none-any.whl"
    (tmp_path / other).write_bytes(b"two")
    with TreeState(tmp_path) as state:
        state.record_file(WHL, new=True)
        state.record_file(other, new=True)
        state.commit()
    append_evictions(tmp_path, [WHL, other])
    (tmp_path / WHL).unlink()  # the kill came after the first unlink
    with open(tmp_path / EVICTION_LOG, "a") as log:
        log.write("packages/a/a-2")  # a line cut short by the kill
    with TreeState(tmp_path) as state:
        assert fold_evictions(tmp_path, state, state.commit) == 1
        assert state.is_evicted(WHL) and state.is_verified(WHL)
        assert not state.is_evicted(other) and state.is_verified(other)
    assert not (tmp_path / EVICTION_LOG).exists()
    with TreeState(tmp_path) as state:
        assert state.query("SELECT mtime_ns FROM files WHERE relpath = ?", (WHL,)) == [(EVICTED,)]


def test_an_evicted_file_is_no_removal_for_the_push(tmp_path):
    from morgan_like.modes.bucket import parse_bucket_url, plan_push, record_pushed
    from morgan_like.tree.generations import record_generation

    _tree(tmp_path)
    here = parse_bucket_url("s3://b-1/t")
    with TreeState(tmp_path) as state:
        state.record_file(WHL, new=True)
        record_generation(state, [WHL, "simple/a/index.json"], [])
        state.commit()
    record_pushed(tmp_path, here, 1)
    with TreeState(tmp_path) as state:
        record_generation(state, ["simple/a/index.json", WHL], [])
        state.mark_evicted([WHL])
        state.commit()
    (tmp_path / WHL).unlink()  # streamed, then evicted, during the run
    plan = plan_push(tmp_path, here)
    assert plan.removed == () and plan.changed == ("simple/a/index.json",)


def test_the_end_push_skips_what_streamed_with_the_same_bytes(tmp_path):
    root, store = tmp_path / "w", FsStorage(tmp_path / "bucket")
    _tree(root)
    page = "simple/a/index.json"
    data = (root / page).read_bytes()
    sent = {
        page: Sent(len(data), hashlib.md5(data).hexdigest()),
        "json/a": Sent(3, "0" * 32),  # streamed, then rewritten: goes again
        WHL: Sent(5, None),
    }
    result = push(root, store, [page, "json/a", WHL, "simple/a/index.html"], [], already=sent)
    assert result.uploaded == 2  # json/a and index.html
    assert store.stat(page) is None and store.stat(WHL) is None
    assert store.get("json/a") == (root / "json" / "a").read_bytes()


def _finished(root: Path, name: str, unsent: list[str]) -> None:
    """The state as a sync leaves it once ``name`` is finished and committed."""
    with TreeState(root) as state:
        for relpath in unsent:
            state.note_unsent(relpath, removed=False)
        if (root / WHL).is_file():
            state.record_file(WHL, new=True)
        state.sync_done(name)
        state.commit()


def _stream_until(root: Path, store: FsStorage, projects: int):
    import time

    from morgan_like.tree.bucketstream import StreamingPush

    with StreamingPush(root, store, cursor=0, workers=2) as stream:
        deadline = time.monotonic() + 60
        while stream.result.projects < projects and time.monotonic() < deadline:
            time.sleep(0.05)
    return stream


def test_a_finished_project_streams_in_ranks_and_its_files_leave(tmp_path):
    root, store = tmp_path / "w", FsStorage(tmp_path / "bucket")
    _tree(root)
    pages = ["simple/a/index.json", "simple/a/index.html", "json/a"]
    _finished(root, "a", [*pages, WHL, WHL + ".metadata"])
    stream = _stream_until(root, store, 1)
    assert stream.result.projects == 1 and stream.result.problem is None
    for key in [*pages, WHL, WHL + ".metadata"]:
        assert store.stat(key) is not None, key
    assert store.get(WHL) == b"wheel"
    assert not (root / WHL).exists()  # evicted, and logged first
    assert (root / EVICTION_LOG).read_text() == WHL + "\n"
    assert stream.result.evicted == 1
    # what the end push is told: each page with the bytes sent
    data = (root / "json" / "a").read_bytes()
    assert stream.sent["json/a"] == Sent(len(data), hashlib.md5(data).hexdigest())


def test_a_page_listing_a_file_neither_here_nor_evicted_waits_for_the_end_push(tmp_path):
    root, store = tmp_path / "w", FsStorage(tmp_path / "bucket")
    _tree(root)
    (root / WHL).unlink()  # gone, and never recorded as evicted
    _finished(root, "a", ["simple/a/index.json", "simple/a/index.html", "json/a"])
    (root / "simple" / "b").mkdir()
    (root / "simple" / "b" / "index.json").write_text('{"files": []}')
    _finished(root, "b", ["simple/b/index.json"])
    _stream_until(root, store, 1)  # b streams; a is left to the end push
    assert store.stat("simple/b/index.json") is not None
    assert store.stat("simple/a/index.json") is None and store.stat("json/a") is None


def test_a_sync_waits_while_the_stream_of_its_tree_is_behind(fake_index, dists, tmp_path):
    """The fetchers of a sync ask the stream serving its working tree for room before
    handing over each fetched project (modes/sync_run.py), and wait while it says no."""
    from morgan_like.cli import main
    from morgan_like.tree.bucketstream import register_throttle

    from ..helpers import wheel

    for name in ("a", "b", "c"):
        wheel(fake_index, dists, name, "1.0")
    root = tmp_path / "tree"
    asked: list[int] = []

    def behind(queued: int) -> bool:
        asked.append(queued)
        return len(asked) <= 3  # "wait" three times, then room for everything

    register_throttle(root, behind)
    try:
        assert main(["sync", "-i", str(root), "-I", fake_index.url, "-q"]) == 0
    finally:
        register_throttle(root, None)
    assert len(asked) == 3 + 3  # three waits, then one ask per project
    assert sorted(p.name for p in (root / "packages").iterdir()) == ["a", "b", "c"]
