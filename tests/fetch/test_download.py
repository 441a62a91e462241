"""Downloads: verified while streaming, atomic, skipped when present, cleaned up on failure."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from morgan_like.errors import DownloadError
from morgan_like.fetch.download import Downloader, DownloadResult, fetch_verified
from morgan_like.fetch.sdistcache import SdistCache
from morgan_like.index.upstream import Upstream
from morgan_like.tree.state import TreeState

from ..fakeindex import FakeIndex
from ..helpers import wheel


@pytest.fixture
def upstream(fake_index: FakeIndex):
    client = Upstream(fake_index.url, retries=1, backoff=0.01)
    yield client
    client.close()


def download_all(
    upstream: Upstream, items, root: Path, state: TreeState, **kw
) -> list[DownloadResult]:
    downloader = Downloader(upstream, root, state, **kw)
    try:
        for file, relpath in items:
            downloader.submit(file, relpath)
        return downloader.results()
    finally:
        downloader.close()


def remote(upstream: Upstream, name: str):
    return {f.filename: f for f in upstream.project_page(name).files}


def test_verified_download_lands_atomically(fake_index, dists, upstream, tmp_path: Path) -> None:
    wheel(fake_index, dists, "alpha", "1.0")
    file = remote(upstream, "alpha")["alpha-1.0-py3-none-any.whl"]
    state = TreeState(tmp_path)
    results = download_all(upstream, [(file, "packages/alpha/" + file.filename)], tmp_path, state)
    assert [r.ok for r in results] == [True]
    assert state.get("packages/alpha/" + file.filename).sha256 == file.sha256
    assert not list((tmp_path / ".morgan-like" / "tmp").iterdir()), "no temp file left behind"


def test_present_and_verified_is_not_fetched_again(
    fake_index, dists, upstream, tmp_path: Path
) -> None:
    wheel(fake_index, dists, "alpha", "1.0")
    file = remote(upstream, "alpha")["alpha-1.0-py3-none-any.whl"]
    item = [(file, "packages/alpha/" + file.filename)]
    state = TreeState(tmp_path)
    download_all(upstream, item, tmp_path, state)
    fake_index.reset_log()
    again = download_all(upstream, item, tmp_path, state)
    assert again[0].skipped
    assert not [r for r in fake_index.requests if r.path.startswith("/files/")]


def test_hash_mismatch_is_reported_by_name_and_never_lands(
    fake_index, dists, upstream, tmp_path: Path
) -> None:
    wheel(fake_index, dists, "alpha", "1.0")
    file = remote(upstream, "alpha")["alpha-1.0-py3-none-any.whl"]
    fake_index.corrupt(file.filename)
    dest = tmp_path / "packages/alpha" / file.filename
    with pytest.raises(DownloadError) as info:
        fetch_verified(upstream, file, dest, tmp_path)
    assert file.filename in str(info.value) and "sha256 mismatch" in str(info.value)
    assert not dest.exists()


def test_truncated_body_is_retried(fake_index, dists, upstream, tmp_path: Path) -> None:
    wheel(fake_index, dists, "alpha", "1.0", pad_bytes=200_000)
    file = remote(upstream, "alpha")["alpha-1.0-py3-none-any.whl"]
    fake_index.truncate(file.filename, times=1)
    size, sha256 = fetch_verified(upstream, file, tmp_path / "out.whl", tmp_path)
    assert sha256 == file.sha256 and size == file.size


def test_each_path_once_and_abandon_takes_back_new_files(
    fake_index, dists, upstream, tmp_path: Path
) -> None:
    wheel(fake_index, dists, "alpha", "1.0")
    file = remote(upstream, "alpha")["alpha-1.0-py3-none-any.whl"]
    relpath = "packages/alpha/" + file.filename
    downloader = Downloader(upstream, tmp_path, TreeState(tmp_path), workers=4)
    assert downloader.submit(file, relpath) is downloader.submit(file, relpath)
    assert downloader.result(relpath).ok
    downloader.abandon()
    assert not (tmp_path / relpath).exists()
    assert downloader.state.get(relpath) is None


def test_sdist_fetched_for_metadata_is_moved_not_refetched(
    fake_index, dists, upstream, tmp_path: Path
) -> None:
    from ..helpers import sdist

    sdist(fake_index, dists, "beta", "1.0")
    file = remote(upstream, "beta")["beta-1.0.tar.gz"]
    cache = SdistCache(upstream, tmp_path)
    assert cache.get(file) == cache.get(file)
    fake_index.reset_log()
    results = download_all(
        upstream,
        [(file, "packages/beta/beta-1.0.tar.gz")],
        tmp_path,
        TreeState(tmp_path),
        cache=cache,
    )
    assert results[0].ok and (tmp_path / "packages/beta/beta-1.0.tar.gz").exists()
    assert not [r for r in fake_index.requests if r.path.startswith("/files/")]


def test_a_file_still_arriving_ahead_is_waited_for_not_fetched_again(
    fake_index, dists, upstream, tmp_path: Path
) -> None:
    import threading

    wheel(fake_index, dists, "gamma", "1.0")
    file = remote(upstream, "gamma")["gamma-1.0-py3-none-any.whl"]
    fake_index.drip(file.filename, interval=0.001, times=1)  # slow enough to be asked meanwhile
    cache = SdistCache(upstream, tmp_path)
    fake_index.reset_log()
    ahead = threading.Thread(target=cache.get, args=(file,), daemon=True)
    ahead.start()
    while not cache._futures:  # the fetch ahead has begun
        threading.Event().wait(0.001)
    results = download_all(
        upstream,
        [(file, "packages/gamma/" + file.filename)],
        tmp_path,
        TreeState(tmp_path),
        cache=cache,
    )
    ahead.join(60)
    assert results[0].ok and (tmp_path / "packages/gamma" / file.filename).exists()
    gets = [r for r in fake_index.requests if r.path == "/files/" + file.filename]
    assert len(gets) == 1


# ------------------------------------------------------------------ hostile upstreams


def test_drip_fed_file_given_up_after_one_deadline_for_all_attempts(
    fake_index, dists, tmp_path: Path
) -> None:
    import threading

    from morgan_like.index.limits import Limits

    wheel(fake_index, dists, "slow", "1.0")
    fake_index.drip("slow-1.0-py3-none-any.whl", interval=0.2)
    limits = Limits(deadline_floor=1, min_rate=1e9)  # the deadline is the 1 s floor
    with Upstream(fake_index.url, retries=1, backoff=0.01, limits=limits) as up:
        file = remote(up, "slow")["slow-1.0-py3-none-any.whl"]
        outcome: list[BaseException] = []

        def fetch() -> None:
            try:
                fetch_verified(up, file, tmp_path / "out.whl", tmp_path)
            except BaseException as exc:
                outcome.append(exc)

        worker = threading.Thread(target=fetch, daemon=True)
        worker.start()
        worker.join(60)  # a guard against a hang, not a measurement
        assert not worker.is_alive(), "a drip-fed file hung the download"
    (error,) = outcome
    assert isinstance(error, DownloadError)
    assert "gave up after 1s" in str(error) and "download-timeout-floor" in str(error)
    gets = [r for r in fake_index.requests if r.path == "/files/" + file.filename]
    assert len(gets) == 1  # one deadline for all attempts, not one per retry
    assert not (tmp_path / "out.whl").exists()


def test_content_length_checked_against_the_index_before_reading(
    fake_index, dists, upstream, tmp_path: Path
) -> None:
    path = wheel(fake_index, dists, "liar", "1.0", pad_bytes=100_000)
    fake_index.add(path, listed_size=1000)
    file = remote(upstream, "liar")[path.name]
    fake_index.reset_log()
    before = upstream.bytes_fetched
    with pytest.raises(DownloadError) as info:
        fetch_verified(upstream, file, tmp_path / "out.whl", tmp_path)
    assert f"Content-Length {path.stat().st_size} does not match the index's size 1000" in str(
        info.value
    )
    assert len([r for r in fake_index.requests if r.path.startswith("/files/")]) == 1
    assert upstream.bytes_fetched - before < 100_000  # refused at the headers, not read


def test_truncated_file_reported_as_truncated(fake_index, dists, upstream, tmp_path) -> None:
    path = wheel(fake_index, dists, "cut", "1.0", pad_bytes=100_000)
    file = remote(upstream, "cut")[path.name]
    fake_index.truncate(file.filename)  # every time
    with pytest.raises(DownloadError) as info:
        fetch_verified(upstream, file, tmp_path / "out.whl", tmp_path)
    size = path.stat().st_size
    assert f"truncated: got {size // 2} of {size} bytes" in str(info.value)
    assert "IncompleteRead" not in str(info.value)


def test_now_fetches_a_queued_path_first_and_only_once(
    fake_index, dists, upstream, tmp_path: Path
) -> None:
    """Someone waits on this file: it is fetched in the caller's thread, ahead of the
    queue, and callers racing for it share one fetch (a second never cancels the first)."""
    from concurrent.futures import ThreadPoolExecutor

    wheel(fake_index, dists, "alpha", "1.0")
    wheel(fake_index, dists, "beta", "1.0")
    files = {**remote(upstream, "alpha"), **remote(upstream, "beta")}
    alpha, beta = files["alpha-1.0-py3-none-any.whl"], files["beta-1.0-py3-none-any.whl"]
    fake_index.reset_log()
    downloader = Downloader(upstream, tmp_path, TreeState(tmp_path), workers=1)
    try:
        fake_index.latency = 0.2  # the one worker is busy with alpha for a while
        downloader.submit(alpha, "packages/alpha/" + alpha.filename)
        downloader.submit(beta, "packages/beta/" + beta.filename)  # queued behind it
        with ThreadPoolExecutor(4) as pool:
            got = list(
                pool.map(lambda _: downloader.now(beta, "packages/beta/" + beta.filename), range(4))
            )
        assert all(r.ok for r in got)
        assert all(r.ok for r in downloader.results())
    finally:
        downloader.close()
    fetched = [r.path for r in fake_index.requests if r.path.startswith("/files/")]
    assert sorted(fetched) == sorted(set(fetched)) and len(fetched) == 2


def test_a_fetching_process_imports_neither_the_sdist_reader_nor_the_state() -> None:
    """A sync's fetching worker processes import fetch.projects (fetch_verified) at their
    start, before their first page: the sdist reader (tar and metadata parsing) and the
    writer's state are the bundle's and the writer's, not theirs."""
    code = (
        "import sys, morgan_like.fetch.projects; "
        "print(sorted(m for m in sys.modules if m.startswith('morgan_like')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(ast.literal_eval(out))
    assert "morgan_like.fetch.download" in loaded
    assert not loaded & {"morgan_like.dists.sdistread", "morgan_like.tree.state"}
