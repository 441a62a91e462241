"""A hostile or broken index meets caps and deadlines, not our memory (index/limits.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from morgan_like.errors import LimitExceeded, RangeError, UpstreamError
from morgan_like.index.limits import MIB, Limits
from morgan_like.index.upstream import Upstream

from ..distbuilder import gzip_bomb_json_page, make_wheel
from ..fakeindex import FakeIndex


def client(index: FakeIndex, **limits: float) -> Upstream:
    return Upstream(index.url, retries=1, backoff=0.001, limits=Limits(**limits))  # type: ignore[arg-type]


def test_gzip_bomb_page_stops_at_the_cap_on_the_decoded_stream(fake_index: FakeIndex) -> None:
    bomb = gzip_bomb_json_page("bomb", 1024)  # ~1 MB on the wire, 1 GiB inflated
    fake_index.raw_page("bomb", bomb, content_encoding="gzip")
    with client(fake_index, page_bytes=4 * MIB) as up:
        with pytest.raises(LimitExceeded, match=r"larger than the 4 MiB cap"):
            up.project_page("bomb")
        # Given up after the first pieces: most of the compressed body was never read.
        assert up.bytes_fetched < len(bomb) // 2
    # The same page under the cap is an ordinary (empty) project page.
    small = gzip_bomb_json_page("bomb", 2)
    fake_index.raw_page("bomb", small, content_encoding="gzip")
    with client(fake_index, page_bytes=4 * MIB) as up:
        assert up.project_page("bomb").files == []


def test_huge_metadata_refused_by_its_content_length(fake_index: FakeIndex, tmp_path) -> None:
    wheel = make_wheel(tmp_path, "big", "1.0")
    huge = b"Metadata-Version: 2.1\nName: big\nVersion: 1.0\n\n" + b" " * (3 * MIB)
    url = fake_index.add(wheel, serve_metadata=huge)
    with client(fake_index, metadata_bytes=1 * MIB) as up:
        with pytest.raises(
            LimitExceeded, match=f"Content-Length {len(huge)} is larger than the 1 MiB"
        ):
            up.fetch_bytes(url + ".metadata")
        assert up.bytes_fetched < MIB


def test_truncated_page_reported_as_truncated_not_incomplete_read(
    fake_index: FakeIndex, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "cut", "1.0", pad_bytes=100_000)
    url = fake_index.add(wheel)
    fake_index.truncate(wheel.name)  # every time: the client gives up
    with client(fake_index) as up, pytest.raises(UpstreamError) as info:
        up.fetch_bytes(url, limit=10 * MIB)
    message = str(info.value)
    assert f"truncated: got {wheel.stat().st_size // 2} of {wheel.stat().st_size} bytes" in message
    assert "IncompleteRead" not in message and "gave up after 2 attempts" in message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[1, 2]", "the JSON document is an array, not an object"),
        (b'{"files": {"a": 1}}', "'files' is an object, not an array"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"files": [', "unreadable project page"),
    ],
)
def test_page_of_the_wrong_shape_is_one_clear_error(
    fake_index: FakeIndex, body: bytes, expected: str
) -> None:
    fake_index.raw_page("odd", body)
    with client(fake_index) as up, pytest.raises(UpstreamError, match="unreadable") as info:
        up.project_page("odd")
    assert expected in str(info.value) and "/simple/odd/" in str(info.value)


def test_odd_entries_are_skipped_with_a_line_naming_the_page(
    fake_index: FakeIndex, tmp_path: Path
) -> None:
    good = make_wheel(tmp_path, "odd", "1.0")
    fake_index.add(good)
    doc = json.loads(fake_index.project_json("odd"))
    base = fake_index.file_url("odd-0.1.tar.gz")
    doc["files"] += [
        {"filename": 7, "url": base},
        {"filename": "odd-0.2.tar.gz", "url": base, "hashes": "sha256=abc"},
        {"filename": "../../x.tar.gz", "url": base},
        "not an object",
    ]
    fake_index.raw_page("odd", json.dumps(doc).encode())
    with client(fake_index) as up:
        page = up.project_page("odd")
    assert [f.filename for f in page.files] == [good.name]
    assert len(page.problems) == 4
    assert all(p.startswith(f"{fake_index.url}odd/: skipped file entry ") for p in page.problems)
    assert "filename is int" in page.problems[0]
    assert "hashes is a string, not an object" in page.problems[1]
    assert "path separator" in page.problems[2]


def test_range_answered_with_a_huge_whole_file_is_a_range_error(
    tmp_path: Path,
) -> None:
    wheel = make_wheel(tmp_path, "whole", "1.0", pad_bytes=3 * MIB)
    with FakeIndex(ranges=False) as index:
        url = index.add(wheel)
        with client(index, metadata_bytes=1 * MIB) as up, pytest.raises(RangeError):
            up.fetch_range(url, None, 1024)
