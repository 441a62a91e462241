"""An upstream's project list with serials: what a full mirror syncs from (pure parsing).

Three shapes carry it:

* the PEP 691 root index, ``{"meta": {"_last-serial": N}, "projects": [{"name",
  "_last-serial"}]}`` (PyPI, bandersnatch 8);
* another mirror's ``local.json`` (``{name: serial}``) with ``local.db.serial``
  (shadowmire, and our own trees);
* XML-RPC ``list_packages_with_serial()`` (a ``{name: serial}`` struct).

Some proxies send serials as JSON strings; they are accepted when they are
plain ASCII digits.  Anything else is a clear error naming the source, never a
traceback, because a truncated or garbled list must not turn into deletions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name

from morgan_like.errors import UpstreamError


@dataclass(frozen=True)
class SerialList:
    """Every project upstream lists, with the serial of its last change."""

    source: str  # simple | local-json | xmlrpc | names (no serials: every page each run)
    serials: Mapping[NormalizedName, int] = field(default_factory=dict)
    last_serial: int | None = None  # the index's own serial, when it says
    # Entries left out as malformed: a sync must not read their absence as a deletion.
    malformed: int = 0


def serial_value(value: Any) -> int | None:
    """An int serial, or the same sent as a string of ASCII digits; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def _load(body: bytes, origin: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UpstreamError(f"{origin}: not JSON ({exc})") from None


class _Merger:
    """Entries (name, raw serial) into {normalized name: highest serial}, counting the
    malformed ones; a name listed twice (two spellings of one project) keeps its highest."""

    def __init__(self) -> None:
        self.serials: dict[NormalizedName, int] = {}
        self.bad = 0

    def add(self, name: Any, raw: Any) -> None:
        serial = serial_value(raw)
        if not isinstance(name, str) or not name.strip() or serial is None:
            self.bad += 1
            return
        norm = canonicalize_name(name)
        old = self.serials.get(norm)
        self.serials[norm] = serial if old is None or serial > old else old

    def result(self, origin: str) -> tuple[dict[NormalizedName, int], int]:
        if self.bad and not self.serials:
            raise UpstreamError(f"{origin}: no usable project entry ({self.bad} malformed)")
        return self.serials, self.bad


def _merge(pairs: list[tuple[Any, Any]], origin: str) -> tuple[dict[NormalizedName, int], int]:
    merger = _Merger()
    for name, raw in pairs:
        merger.add(name, raw)
    return merger.result(origin)


def parse_root_serials(body: bytes, origin: str) -> SerialList:
    """A PEP 691 root index with ``_last-serial`` per project.

    PyPI's root lists over 900,000 projects: decoded whole, each entry a dict, the
    list costs about 300 MB before a single serial is merged.  The entries are merged
    as the decoder meets them instead (``_Streamed``), each dict dropped at once; the
    whole decode (``_parse_decoded``) is kept for a document the streamed reading
    cannot vouch for, so that both give the same list, or the same error.
    """
    streamed = _Streamed()
    try:
        doc = json.loads(body, object_pairs_hook=streamed.hook)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UpstreamError(f"{origin}: not JSON ({exc})") from None
    projects = doc.get("projects") if isinstance(doc, dict) else None
    if isinstance(projects, list) and streamed.all_in(projects):
        if projects and not streamed.any_serial:
            raise UpstreamError(f"{origin}: the root index lists no _last-serial")
        serials, bad = streamed.merger.result(origin)
        return SerialList("simple", serials, _meta_serial(doc), bad)
    return _parse_decoded(_load(body, origin), origin)


class _Streamed:
    """The root's project entries merged by the JSON decoder's object hook.

    The hook sees every object, innermost first, and cannot tell where one sits:
    each object with a ``name`` key is merged as a project entry and replaced by
    ``_MERGED``; ``all_in`` then checks that every one of them was an item of the
    ``projects`` list (nowhere else), and merges that list's other items as the
    malformed entries they are.
    """

    def __init__(self) -> None:
        self.merger = _Merger()
        self.merged = 0
        self.any_serial = False

    def hook(self, pairs: list[tuple[str, Any]]) -> Any:
        entry = dict(pairs)
        if "name" not in entry:
            return entry
        raw = entry.get("_last-serial")
        self.any_serial = self.any_serial or raw is not None
        self.merger.add(entry["name"], raw)
        self.merged += 1
        return _MERGED

    def all_in(self, projects: list[Any]) -> bool:
        if sum(1 for p in projects if p is _MERGED) != self.merged:
            return False
        for p in projects:
            if p is not _MERGED:
                raw = p.get("_last-serial") if isinstance(p, dict) else None
                self.any_serial = self.any_serial or raw is not None
                self.merger.add(None, raw)
        return True


_MERGED = object()  # a project entry the decoder's hook has merged


def _meta_serial(doc: dict[str, Any]) -> int | None:
    meta = doc.get("meta")
    return serial_value(meta.get("_last-serial")) if isinstance(meta, dict) else None


def _parse_decoded(doc: Any, origin: str) -> SerialList:
    """The root index decoded whole: a document with a ``name`` key outside its
    project entries, where the streamed merge cannot tell the entries apart."""
    projects = doc.get("projects") if isinstance(doc, dict) else None
    if not isinstance(projects, list):
        raise UpstreamError(f"{origin}: no 'projects' list in the root index")
    pairs = [
        (p.get("name"), p.get("_last-serial")) if isinstance(p, dict) else (None, None)
        for p in projects
    ]
    if pairs and all(raw is None for _, raw in pairs):
        raise UpstreamError(f"{origin}: the root index lists no _last-serial")
    serials, bad = _merge(pairs, origin)
    return SerialList("simple", serials, _meta_serial(doc), bad)


def parse_local_json(body: bytes, serial_text: bytes | None, origin: str) -> SerialList:
    """Another mirror's ``local.json`` and (optionally) its ``local.db.serial``."""
    doc = _load(body, origin)
    if not isinstance(doc, dict):
        raise UpstreamError(f"{origin}: local.json is not a {{name: serial}} object")
    last = None
    if serial_text is not None:
        last = serial_value(serial_text.decode("ascii", "replace").strip())
    serials, bad = _merge(list(doc.items()), origin)
    return SerialList("local-json", serials, last, bad)


def parse_xmlrpc_serials(result: Any, origin: str) -> SerialList:
    """The struct ``list_packages_with_serial()`` returns."""
    if not isinstance(result, dict):
        raise UpstreamError(f"{origin}: list_packages_with_serial returned {type(result).__name__}")
    serials, bad = _merge(list(result.items()), origin)
    return SerialList("xmlrpc", serials, None, bad)


def names_only(names: list[str]) -> SerialList:
    """Project names without serials (a plain index): serial 0 each, source ``names``."""
    return SerialList("names", {canonicalize_name(n): 0 for n in names if n.strip()}, None, 0)
