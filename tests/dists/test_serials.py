"""Serial lists: the PEP 691 root index, local.json, XML-RPC structs."""

from __future__ import annotations

import json

import pytest

from morgan_like.dists.serials import (
    parse_local_json,
    parse_root_serials,
    parse_xmlrpc_serials,
    serial_value,
)
from morgan_like.errors import UpstreamError


def test_serial_values_accept_ints_and_digit_strings_only() -> None:
    assert serial_value(5) == 5
    assert serial_value("123") == 123
    for bad in (True, -1, "²", "1e3", " 12", "9" * 19, None, 1.5):
        assert serial_value(bad) is None


def test_root_index_serials() -> None:
    doc = {
        "meta": {"api-version": "1.1", "_last-serial": "99"},
        "projects": [
            {"name": "Foo_Bar", "_last-serial": 7},
            {"name": "baz", "_last-serial": "8"},
            {"name": "bad", "_last-serial": "x"},
            "junk",
        ],
    }
    result = parse_root_serials(json.dumps(doc).encode(), "root")
    assert result.source == "simple" and result.last_serial == 99
    assert dict(result.serials) == {"foo-bar": 7, "baz": 8}
    assert result.malformed == 2, "'bad' and 'junk' must not read as deleted upstream"


@pytest.mark.parametrize(
    "body, message",
    [
        (b"[1, 2]", "no 'projects' list"),
        (b"{bad", "not JSON"),
        (b'{"projects": [{"name": "a"}]}', "lists no _last-serial"),
        (b'{"projects": [{"name": "a", "_last-serial": "?"}]}', "no usable project entry"),
    ],
)
def test_root_index_errors_name_the_source(body: bytes, message: str) -> None:
    with pytest.raises(UpstreamError, match=message):
        parse_root_serials(body, "root")


def test_local_json_and_xmlrpc() -> None:
    local = parse_local_json(b'{"A": 3, "b": "4"}', b"17\n", "mirror")
    assert (local.source, dict(local.serials), local.last_serial) == (
        "local-json",
        {"a": 3, "b": 4},
        17,
    )
    with pytest.raises(UpstreamError, match="local.json is not"):
        parse_local_json(b"[]", None, "mirror")
    rpc = parse_xmlrpc_serials({"Zope": 5}, "rpc")
    assert dict(rpc.serials) == {"zope": 5}
    with pytest.raises(UpstreamError, match="returned list"):
        parse_xmlrpc_serials([], "rpc")
