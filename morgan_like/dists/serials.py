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


def _merge(pairs: list[tuple[Any, Any]], origin: str) -> tuple[dict[NormalizedName, int], int]:
    serials: dict[NormalizedName, int] = {}
    bad = 0
    for name, raw in pairs:
        serial = serial_value(raw)
        if not isinstance(name, str) or not name.strip() or serial is None:
            bad += 1
            continue
        norm = canonicalize_name(name)
        serials[norm] = max(serial, serials.get(norm, serial))
    if bad and not serials:
        raise UpstreamError(f"{origin}: no usable project entry ({bad} malformed)")
    return serials, bad


def parse_root_serials(body: bytes, origin: str) -> SerialList:
    """A PEP 691 root index with ``_last-serial`` per project."""
    doc = _load(body, origin)
    projects = doc.get("projects") if isinstance(doc, dict) else None
    if not isinstance(projects, list):
        raise UpstreamError(f"{origin}: no 'projects' list in the root index")
    pairs = [
        (p.get("name"), p.get("_last-serial")) if isinstance(p, dict) else (None, None)
        for p in projects
    ]
    if pairs and all(raw is None for _, raw in pairs):
        raise UpstreamError(f"{origin}: the root index lists no _last-serial")
    meta = doc.get("meta")
    last = serial_value(meta.get("_last-serial")) if isinstance(meta, dict) else None
    serials, bad = _merge(pairs, origin)
    return SerialList("simple", serials, last, bad)


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
