"""The fast paths taken for the common case give exactly what the general code gives.

Pages list thousands of files and sdists thousands of members, so the usual shapes
(an absolute https URL, a clean member path) skip urljoin and PurePosixPath; these
tests hold the shortcut to the general answer over every small input.
"""

from __future__ import annotations

import itertools
from pathlib import PurePosixPath
from urllib.parse import urldefrag, urljoin

import pytest

from morgan_like.dists.archive import clean_member_name
from morgan_like.dists.links import RemoteFile, _parse_filename, _url, parse_json_page


def _general_member_name(name: str) -> str | None:
    path = PurePosixPath(name.replace("\\", "/"))
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts or path.is_absolute() or ".." in parts:
        return None
    return "/".join(parts)


def test_member_names_match_the_general_rule_for_every_short_name() -> None:
    pieces = ["a", ".", "/", "\\", "..", "b."]
    for length in range(1, 6):
        for combo in itertools.product(pieces, repeat=length):
            name = "".join(combo)
            assert clean_member_name(name) == _general_member_name(name), name


@pytest.mark.parametrize(
    "href",
    [
        "https://files.example.org/packages/ab/cd/x-1.0-py3-none-any.whl",
        "https://h.example:8443/p/x-1.0.tar.gz",
        "http://h/p/x%2B1-1.0.tar.gz",
        "https://h/p//x-1.0.tar.gz",
        "https://h/a/../x-1.0.tar.gz",
        "https://h/p/x-1.0.tar.gz#sha256=" + "a" * 64,
        "https://h/p/x-1.0.tar.gz?a=b#frag",
        "https://h/p/x-1.0.tar.gz?",
        "https://h/p/x-1.0.tar.gz#",
        "https://h/p/x;v=1-1.0.tar.gz",
        "https://[::1]:80/x-1.0.tar.gz",
        "HTTPS://H/x-1.0.tar.gz",
        " https://h/x-1.0.tar.gz",
        "https://h/x\t-1.0.tar.gz",
        "../../files/x-1.0.tar.gz",
        "/files/x-1.0.tar.gz",
        "//other.example/files/x-1.0.tar.gz",
    ],
)
def test_file_urls_match_urljoin(href: str) -> None:
    for page in ("https://pypi.example.org/simple/x/", "file:///srv/simple/x/"):
        url, fragment = urldefrag(urljoin(page, href))
        digest = fragment[len("sha256=") :] if fragment.startswith("sha256=") else None
        assert _url(page, href) == (url, digest)


def test_a_page_entry_is_parsed_once_for_vetting_and_for_its_record() -> None:
    _parse_filename.cache_clear()
    name = "fastpath_probe-1.0-py3-none-any.whl"
    doc = {"files": [{"filename": name, "url": f"https://h/{name}", "hashes": {}}]}
    [file] = parse_json_page("fastpath-probe", doc, "https://h/simple/fastpath-probe/").files
    assert isinstance(file, RemoteFile) and str(file.version) == "1.0"
    assert _parse_filename.cache_info().misses == 1
