"""Upstream project pages (PEP 503 HTML, PEP 691 JSON) parsed into RemoteFile records.

RemoteFile is the one record every later stage shares: the resolver filters it,
the plan picks it, the downloader fetches it and the writer lists it again in
our own index pages.  It keeps upstream's values verbatim (requires-python,
yanked reason, upload-time) so that our tree says what upstream said.
"""

from __future__ import annotations

import contextlib
import html
import json
from dataclasses import dataclass, field
from functools import cached_property
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote, urldefrag, urljoin

from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

JSON_CONTENT_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_CONTENT_TYPE = "application/vnd.pypi.simple.v1+html"
ACCEPT_HEADER = f"{JSON_CONTENT_TYPE}, {HTML_CONTENT_TYPE}; q=0.1, text/html; q=0.01"

SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz", ".tar")


@dataclass(frozen=True)
class RemoteFile:
    """One distribution file as an index lists it."""

    filename: str
    url: str
    sha256: str | None = None
    requires_python: str | None = None
    yanked: bool | str = False
    # True: advertised without a usable hash; str: its sha256; None/False: not advertised.
    core_metadata: bool | str | None = None
    size: int | None = None
    upload_time: str | None = None

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def is_sdist(self) -> bool:
        return not self.is_wheel and self.filename.lower().endswith(SDIST_SUFFIXES)

    @property
    def is_yanked(self) -> bool:
        return self.yanked is not False

    @cached_property
    def _parsed(self) -> tuple[NormalizedName | None, Version | None, frozenset[Tag]]:
        try:
            if self.is_wheel:
                name, version, _build, tags = parse_wheel_filename(self.filename)
                return name, version, tags
            if self.is_sdist:
                stem = self.filename
                for suffix in SDIST_SUFFIXES:
                    if stem.lower().endswith(suffix):
                        stem = stem[: -len(suffix)] + ".tar.gz"
                        break
                name, version = parse_sdist_filename(stem)
                return name, version, frozenset()
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            pass
        return None, None, frozenset()

    @property
    def project(self) -> NormalizedName | None:
        return self._parsed[0]

    @property
    def version(self) -> Version | None:
        """The file's version, or None when its name cannot be parsed (such files are ignored)."""
        return self._parsed[1]

    @property
    def tags(self) -> frozenset[Tag]:
        return self._parsed[2]

    @property
    def metadata_sha256(self) -> str | None:
        return self.core_metadata if isinstance(self.core_metadata, str) else None


@dataclass
class ProjectPage:
    """A project's file list, plus the serial upstream stamped on it (if any)."""

    name: NormalizedName
    files: list[RemoteFile] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    last_serial: int | None = None


def _yanked(value: Any) -> bool | str:
    if value is None or value is False:
        return False
    if value is True or value == "":
        return True
    return str(value)


def _core_metadata(value: Any) -> bool | str | None:
    if isinstance(value, dict):
        return value.get("sha256") or True
    if value is True:
        return True
    return None


def _hash_from_fragment(url: str) -> tuple[str, str | None]:
    bare, fragment = urldefrag(url)
    if fragment.startswith("sha256="):
        return bare, fragment[len("sha256=") :]
    return bare, None


def parse_json_page(name: str, data: bytes | str | dict, page_url: str) -> ProjectPage:
    """Parse a PEP 691 project page; relative URLs resolve against ``page_url``."""
    doc = json.loads(data) if isinstance(data, (bytes, str)) else data
    files = []
    for raw in doc.get("files", []):
        url, frag_hash = _hash_from_fragment(urljoin(page_url, raw["url"]))
        hashes = raw.get("hashes") or {}
        metadata = raw.get("core-metadata", raw.get("dist-info-metadata"))
        size = raw.get("size")
        files.append(
            RemoteFile(
                filename=raw["filename"],
                url=url,
                sha256=hashes.get("sha256") or frag_hash,
                requires_python=raw.get("requires-python") or None,
                yanked=_yanked(raw.get("yanked")),
                core_metadata=_core_metadata(metadata),
                size=size if isinstance(size, int) else None,
                upload_time=raw.get("upload-time") or None,
            )
        )
    meta = doc.get("meta", {})
    serial = meta.get("_last-serial")
    return ProjectPage(
        name=canonicalize_name(doc.get("name") or name),
        files=files,
        versions=list(doc.get("versions", [])),
        last_serial=serial if isinstance(serial, int) else None,
    )


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self.base: str | None = None
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []
        self.serial: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "base":
            self.base = dict(attrs).get("href")
        elif tag == "a":
            self._current = dict(attrs)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._current is not None:
            self.anchors.append((self._current, "".join(self._text).strip()))
            self._current = None

    def handle_comment(self, data: str) -> None:
        text = data.strip()
        if text.startswith("SERIAL "):
            with contextlib.suppress(IndexError, ValueError):
                self.serial = int(text.split()[1])


def parse_html_page(name: str, text: str, page_url: str) -> ProjectPage:
    """Parse a PEP 503 project page, reading PEP 592/658/714 attributes and uv's extras."""
    parser = _AnchorParser()
    parser.feed(text)
    base = urljoin(page_url, parser.base) if parser.base else page_url
    files = []
    for attrs, anchor_text in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        url, sha256 = _hash_from_fragment(urljoin(base, href))
        filename = url.rsplit("/", 1)[-1] or anchor_text
        filename = unquote(filename)
        yanked: bool | str = False
        if "data-yanked" in attrs:
            yanked = _yanked(attrs["data-yanked"] or True)
        metadata_attr = attrs.get("data-core-metadata") or attrs.get("data-dist-info-metadata")
        core_metadata: bool | str | None = None
        if metadata_attr:
            if metadata_attr.startswith("sha256="):
                core_metadata = metadata_attr[len("sha256=") :]
            elif metadata_attr != "false":
                core_metadata = True
        size_attr = attrs.get("data-size")
        files.append(
            RemoteFile(
                filename=filename,
                url=url,
                sha256=sha256,
                requires_python=html.unescape(attrs.get("data-requires-python") or "") or None,
                yanked=yanked,
                core_metadata=core_metadata,
                size=int(size_attr) if size_attr and size_attr.isdigit() else None,
                upload_time=attrs.get("data-upload-time") or None,
            )
        )
    return ProjectPage(name=canonicalize_name(name), files=files, last_serial=parser.serial)
