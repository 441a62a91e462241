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
from morgan_like.dists.links import _url


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


_PAGES = (
    "https://pypi.example.org/simple/x/",
    "file:///srv/simple/x/",
    "http://127.0.0.1:8080/simple/x/",
    "http://user:secret@mirror.example/simple/x/",
    "HTTP://Mirror.Example/simple/x/",
    "https://mirror.example/simple/x/?a=b",
    "https://mirror.example",
)


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
        "/packages/x/x-1.0-py3-none-any.whl",
        "/packages/x/x%2B1-1.0.tar.gz",
        "/packages/x//x-1.0.tar.gz",
        "/packages/./x-1.0.tar.gz",
        "/packages/../x-1.0.tar.gz",
        "/packages/.hidden/x-1.0.tar.gz",
        "/x-1.0.tar.gz#sha256=" + "b" * 64,
        "/x-1.0.tar.gz?a=b",
        "/x-1.0.tar.gz;p",
        "/",
    ],
)
def test_file_urls_match_urljoin(href: str) -> None:
    for page in _PAGES:
        url, fragment = urldefrag(urljoin(page, href))
        digest = fragment[len("sha256=") :] if fragment.startswith("sha256=") else None
        assert _url(page, href) == (url, digest)


def test_root_relative_urls_match_urljoin_for_every_short_path() -> None:
    """A root-relative href skips urljoin when nothing in it is for urljoin to resolve."""
    pieces = ["/", ".", "..", "a", "%2F", ":", "@", "~"]
    for length in range(1, 5):
        for combo in itertools.product(pieces, repeat=length):
            href = "/" + "".join(combo)
            for page in _PAGES:
                url, fragment = urldefrag(urljoin(page, href))
                assert _url(page, href) == (url, None), (page, href)


_NAMES = [
    "numpy-1.26.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "pkg-1.0-1-py3-none-any.whl",
    "pkg-1.0-1abc-py3-none-any.whl",
    "pkg-1.0-x1-py3-none-any.whl",
    "Foo_Bar-2.0rc1-py2.py3-none-any.whl",
    "foo__bar-1.0-py3-none-any.whl",
    "foo.bar-1.0-py3-none-any.whl",
    "-1.0-py3-none-any.whl",
    "pkg-1.0--none-any.whl",
    "pkg-1.0-py3-none-.whl",
    "pkg-1.0-py3-none-any-extra-x.whl",
    "pkg-1.0-py3-none.whl",
    "pkg-not~a~version-py3-none-any.whl",
    "pkg-1.0-3py-none-any.whl",
    "pkg-1.0-py3.py2-none-any.whl",
    "pkg-1.0-py3-none-any.whl",
    "pkg-1.0.tar.gz",
    "Pkg.Name-1.0.post1.zip",
    "pkg-name-1.0.tar.bz2",
    "pkg-1.0.tgz",
    "pkg-1.0.tar.xz",
    "pkg-1.0.tar",
    "pkg-1.0.TAR.GZ",
    "pkg.tar.gz",
    "-1.0.tar.gz",
    "pkg-.tar.gz",
    "pkg-1.0-1.tar.gz",
    "pkg-1.0.egg",
    "pkg-1.0.exe",
    "pkg-é-1.0-py3-none-any.whl",
]


@pytest.mark.parametrize("filename", _NAMES)
def test_names_parse_exactly_as_packaging_parses_them(filename: str) -> None:
    """Each part is parsed by packaging and remembered; the whole must still be
    packaging's answer for the whole name, valid or not."""
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )
    from packaging.version import InvalidVersion

    from morgan_like.dists.filenames import SDIST_SUFFIXES, parse_filename

    expected: tuple = (None, None, frozenset())
    try:
        if filename.endswith(".whl"):
            name, version, _build, tags = parse_wheel_filename(filename)
            expected = (name, version, tags)
        else:
            for suffix in SDIST_SUFFIXES:
                if filename.lower().endswith(suffix):
                    stem = filename[: -len(suffix)]
                    expected = (*parse_sdist_filename(stem + ".tar.gz"), frozenset())
                    break
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        pass
    for _ in range(2):  # the second answer comes from the remembered parts
        assert parse_filename(filename) == expected


def test_a_page_record_keeps_the_parse_its_name_was_vetted_with(monkeypatch) -> None:
    from morgan_like.dists import htmlpage, links

    name = "fast_probe-1.0-py3-none-any.whl"
    json_doc = {"files": [{"filename": name, "url": f"https://h/{name}", "hashes": {}}]}
    html_doc = f'<a href="https://h/{name}">{name}</a>'
    pages = [
        links.parse_json_page("fast-probe", json_doc, "https://h/simple/fast-probe/"),
        htmlpage.parse_html_page("fast-probe", html_doc, "https://h/simple/fast-probe/"),
    ]

    def again(filename: str):
        raise AssertionError(f"{filename} parsed again")

    monkeypatch.setattr(links, "parse_filename", again)
    for page in pages:
        [file] = page.files
        assert (file.project, str(file.version)) == ("fast-probe", "1.0")


def test_a_mirror_s_root_relative_file_urls_skip_urljoin(monkeypatch) -> None:
    """nginx-served trees, bandersnatch's and devpi's list ``/packages/...``: such a page
    is read without urljoin, as PyPI's absolute URLs are."""
    from morgan_like.dists import links

    def joined(*args: object) -> str:
        raise AssertionError(f"urljoin{args}")

    monkeypatch.setattr(links, "urljoin", joined)
    names = ["x-1.0-py3-none-any.whl", "x-1.0.tar.gz"]
    doc = {"files": [{"filename": n, "url": f"/packages/x/{n}", "hashes": {}} for n in names]}
    page = links.parse_json_page("x", doc, "http://127.0.0.1:8080/simple/x/")
    assert [f.url for f in page.files] == [f"http://127.0.0.1:8080/packages/x/{n}" for n in names]
