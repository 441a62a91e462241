"""PEP 503 HTML project pages parsed into the same ProjectPage records as PEP 691 JSON.

Reads the PEP 592/658/714/740 anchor attributes, uv's extras (data-size,
data-upload-time), PEP 792/708 meta tags and our own SERIAL comment; entries are
vetted by the same rules links.py applies to JSON file entries.
"""

from __future__ import annotations

import contextlib
import html
from html.parser import HTMLParser
from urllib.parse import unquote, urldefrag, urljoin

from packaging.utils import canonicalize_name

from morgan_like.dists.filenames import vet_filename
from morgan_like.dists.links import (
    ProjectMeta,
    ProjectPage,
    _born_parsed,
    _legacy,
    _Skips,
    _status,
    _url,
    _urls,
    _yanked,
    provenance_url,
)


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self.base: str | None = None
        self._current: dict[str, str | None] | None = None
        self._text: list[str] = []
        self.serial: int | None = None
        self.metas: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta":
            found = dict(attrs)
            name, content = found.get("name"), found.get("content")
            if name and name.startswith("pypi:") and content is not None:
                self.metas.append((name, content))
        elif tag == "base":
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
    files, skips = [], _Skips(page_url)
    for attrs, anchor_text in parser.anchors:
        href = attrs.get("href")
        if not href:
            continue
        bare = urldefrag(urljoin(base, href))[0]
        filename = unquote(bare.rsplit("/", 1)[-1] or anchor_text)
        if _legacy(filename):
            continue
        problem, parsed = vet_filename(filename, name)
        try:
            if problem is not None:
                raise ValueError(problem)
            url, sha256 = _url(base, href)
        except ValueError as exc:
            skips.add(filename, str(exc))
            continue
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
            _born_parsed(
                parsed,
                filename=filename,
                url=url,
                sha256=sha256,
                requires_python=html.unescape(attrs.get("data-requires-python") or "") or None,
                yanked=yanked,
                core_metadata=core_metadata,
                size=int(size_attr)
                if size_attr and size_attr.isascii() and size_attr.isdigit()
                else None,
                upload_time=attrs.get("data-upload-time") or None,
                provenance=provenance_url(base, attrs.get("data-provenance")),
            )
        )
    metas = parser.metas
    status, reason = _status(
        next((v for k, v in metas if k == "pypi:project-status"), None),
        next((v for k, v in metas if k == "pypi:project-status-reason"), None),
    )
    project_meta = ProjectMeta(
        status,
        reason,
        _urls([v for k, v in metas if k == "pypi:tracks"]),
        _urls([v for k, v in metas if k == "pypi:alternate-locations"]),
    )
    return ProjectPage(
        name=canonicalize_name(name),
        files=[] if project_meta.quarantined else files,
        last_serial=parser.serial,
        problems=skips.done(),
        meta=project_meta,
    )
