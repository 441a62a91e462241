"""The PEP 691 root index at PyPI's scale: entries merged as they are decoded.

PyPI's root lists over 900,000 projects; decoded whole (a dict per entry) it held
about 8 times its own size in memory before a serial was merged.
"""

from __future__ import annotations

import json
import tracemalloc

import pytest

from morgan_like.dists.serials import SerialList, _parse_decoded, parse_root_serials
from morgan_like.errors import UpstreamError


def _root(count: int) -> bytes:
    projects = [
        {"name": f"Project_{i}.Name-x", "_last-serial": 10_000_000 + i} for i in range(count)
    ]
    return json.dumps(
        {"meta": {"api-version": "1.1", "_last-serial": 20_000_000}, "projects": projects}
    ).encode()


def test_the_root_list_is_merged_without_a_dict_per_entry() -> None:
    body = _root(20_000)
    tracemalloc.start()
    try:
        listed = parse_root_serials(body, "root")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(listed.serials) == 20_000
    # The decoded text (about the body's size) and the merged list; the whole
    # decode peaked at about 8 times the body.
    assert peak < 5 * len(body), (peak, len(body))


def _both(body: bytes) -> tuple[SerialList | str, SerialList | str]:
    def outcome(parse: object) -> SerialList | str:
        try:
            return parse()  # type: ignore[operator,no-any-return]
        except UpstreamError as exc:
            return str(exc)

    return (
        outcome(lambda: parse_root_serials(body, "root")),
        outcome(lambda: _parse_decoded(json.loads(body), "root")),
    )


@pytest.mark.parametrize(
    "doc",
    [
        {"meta": {"_last-serial": 5}, "projects": [{"name": "A", "_last-serial": 1}]},
        # two spellings of one project keep the highest, in first-seen order
        {
            "projects": [
                {"name": "b", "_last-serial": 1},
                {"name": "a", "_last-serial": 2},
                {"name": "A", "_last-serial": 9},
                {"name": "B", "_last-serial": 0},
            ]
        },
        # malformed entries of every kind are counted, not merged
        {
            "projects": [
                {"name": "a", "_last-serial": 1},
                3,
                None,
                {"_last-serial": 4},
                {"name": "", "_last-serial": 2},
                {"name": "c", "_last-serial": "x"},
                {"name": 5, "_last-serial": 1},
            ]
        },
        {"projects": [{"name": "a"}, {"name": "b"}]},
        {"projects": [{"_last-serial": 1}]},
        {"projects": [3, "x"]},
        {"projects": []},
        {"projects": {"name": "a", "_last-serial": 1}},
        # a "name" key outside the project entries: the whole decode decides
        {"name": "root", "projects": [{"name": "a", "_last-serial": 1}]},
        {"meta": {"name": "m", "_last-serial": 3}, "projects": [{"name": "a", "_last-serial": 1}]},
        {"projects": [{"name": "a", "_last-serial": 1, "x": {"name": "inner"}}]},
        {"projects": [[{"name": "nested", "_last-serial": 1}], {"name": "a", "_last-serial": 2}]},
        # duplicate keys: the last one wins, as in a dict
        {"projects": [{"name": "a", "_last-serial": 1}]},
        [{"name": "a", "_last-serial": 1}],
        "text",
    ],
)
def test_streamed_and_whole_decodes_agree(doc: object) -> None:
    streamed, whole = _both(json.dumps(doc).encode())
    assert streamed == whole


def test_duplicate_keys_read_as_a_dict_reads_them() -> None:
    body = b'{"projects": [{"name": "a", "_last-serial": 1, "name": "b", "_last-serial": 2}]}'
    streamed, whole = _both(body)
    assert streamed == whole
    assert isinstance(streamed, SerialList) and dict(streamed.serials) == {"b": 2}
