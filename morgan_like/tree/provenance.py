"""PEP 740 provenance kept beside a file: what it must say before it lands in the tree.

A provenance object is JSON: ``{"version": 1, "attestation_bundles": [{"publisher":
{...}, "attestations": [...]}]}``.  Each attestation wraps an in-toto statement
(base64) whose one subject names the distribution file and its sha256, signed with
a short-lived Sigstore certificate that says who published it (a GitHub workflow,
a GitLab pipeline, ...).  The index may add attestations later, so a provenance is
not content-addressed and no page gives its hash.

``check_form`` (what fetch/provenance.py applies before a provenance lands): it
parses within MAX_PROVENANCE_BYTES, has the PEP's shape, and every statement names
this file (as parsed: the subject may be normalized) and its sha256.  So a file whose
bytes changed after it was attested, or a provenance of another file, is refused.

The signatures (certificate chain, transparency-log entries, the publisher's
identity) are checked where the tree is judged, offline, by ``server.py --verify
--provenance`` (``morgan-like verify --provenance`` runs it) with
``pypi_attestations`` when importable: one verifier, the one that travels with the
tree.  Its stdlib part (``check_provenance``) makes the same form check; a test
holds the two to the same verdicts.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import Any

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)

# PyPI's provenance objects are about 10 KB per attestation; a few bundles fit with room.
MAX_PROVENANCE_BYTES = 1 << 20


class ProvenanceError(ValueError):
    """A provenance we refuse: its message is one line, naming what is wrong."""


def _parse(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_PROVENANCE_BYTES:
        raise ProvenanceError(f"larger than {MAX_PROVENANCE_BYTES} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ProvenanceError(f"not JSON: {str(exc)[:80]}") from None
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise ProvenanceError("not a version 1 provenance object")
    bundles = doc.get("attestation_bundles")
    if not isinstance(bundles, list) or not bundles:
        raise ProvenanceError("no attestation_bundles")
    for bundle in bundles:
        if not isinstance(bundle, dict) or not isinstance(bundle.get("publisher"), dict):
            raise ProvenanceError("an attestation bundle without a publisher")
        if not isinstance(bundle["publisher"].get("kind"), str):
            raise ProvenanceError("a publisher without a kind")
        atts = bundle.get("attestations")
        if not isinstance(atts, list) or not atts:
            raise ProvenanceError("an attestation bundle without attestations")
    return doc


def _statement(attestation: Any) -> dict[str, Any]:
    try:
        raw = base64.b64decode(attestation["envelope"]["statement"], validate=True)
        statement = json.loads(raw)
    except (TypeError, KeyError, ValueError, binascii.Error, RecursionError):
        raise ProvenanceError("an attestation whose statement cannot be read") from None
    if not isinstance(statement, dict):
        raise ProvenanceError("an attestation whose statement is not an object")
    return statement


def _same_dist(name: str, filename: str) -> bool:
    """PEP 740: the subject's name matches the file's name as parsed (it may be
    normalized: case, separators, tag order)."""
    if name == filename:
        return True
    try:
        if filename.endswith(".whl"):
            a, b = parse_wheel_filename(name), parse_wheel_filename(filename)
            return a[:3] == b[:3] and set(a[3]) == set(b[3])
        return parse_sdist_filename(name) == parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, ValueError):
        return False


def _attestations(doc: dict[str, Any]) -> Iterator[Any]:
    for bundle in doc["attestation_bundles"]:
        yield from bundle["attestations"]


def check_form(data: bytes, filename: str, sha256: str) -> dict[str, Any]:
    """The parsed provenance of ``filename`` (of hash ``sha256``); ProvenanceError when
    it is malformed or any statement names another file or digest."""
    doc = _parse(data)
    for attestation in _attestations(doc):
        subjects = _statement(attestation).get("subject")
        if not isinstance(subjects, list) or len(subjects) != 1:
            raise ProvenanceError("an attestation without exactly one subject")
        subject = subjects[0] if isinstance(subjects[0], dict) else {}
        name, digest = subject.get("name"), subject.get("digest")
        if not isinstance(name, str) or not _same_dist(name, filename):
            raise ProvenanceError(f"an attestation names another file ({str(name)[:80]!r})")
        named = digest.get("sha256") if isinstance(digest, dict) else None
        if not isinstance(named, str) or named.lower() != sha256.lower():
            raise ProvenanceError(
                f"the attested sha256 is not the file's ({str(named)[:64]} != {sha256})"
            )
    return doc
