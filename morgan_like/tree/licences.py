"""What each distribution file says of its licence, for the SBOM (tree/sbom.py).

A wheel says it in its ``.metadata`` (PEP 658, byte-identical to its METADATA), a
small file beside it.  An sdist says it in its PKG-INFO when that is static
(Metadata-Version >= 2.2 and no licence field dynamic), and finding PKG-INFO means
walking the whole tar (a backend may write it last).  So an sdist's answer is taken
from what the run already read (``dists.sdistread.SdistFacts`` keeps PKG-INFO's
headers, where the licence fields are) and kept in the tree state by the sdist's
sha256 (fact ``licence``), like its build requirements: neither this run's SBOM nor
a later run's reads the archive again.  Only an sdist that neither knows is read
here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.metadata import parse_email
from packaging.version import InvalidVersion, Version

from morgan_like.dists.links import RemoteFile
from morgan_like.dists.sdist import read_archive
from morgan_like.dists.sdistread import SdistFacts, pkg_info_headers
from morgan_like.errors import MetadataError
from morgan_like.tree.layout import METADATA_SUFFIX, package_relpath
from morgan_like.tree.state import TreeState

LICENCE_FACT = "licence"
NAME_MAX = 200  # a License field longer than this (or on several lines) is a text


@dataclass(frozen=True)
class Licence:
    """What a file's metadata says of its licence, and from which field."""

    expression: str | None = None
    names: tuple[str, ...] = ()
    text: str | None = None
    source: str = "none"


@dataclass(frozen=True)
class FileLicence:
    """A file's licence, and why its metadata said none (empty when it was read)."""

    licence: Licence
    why_none: str = ""

    def to_json(self) -> str:
        lic = self.licence
        return json.dumps(
            [lic.expression, list(lic.names), lic.text, lic.source, self.why_none],
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> FileLicence | None:
        try:
            expression, names, body, source, why = json.loads(text)
            return cls(Licence(expression, tuple(names), body, source), why)
        except (ValueError, TypeError):  # a fact this code did not write: read again
            return None


def licence_of(raw: bytes | None) -> Licence:
    """Read License-Expression, License and ``License ::`` classifiers from core metadata."""
    if raw is None:
        return Licence()
    fields, _unparsed = parse_email(raw)
    expression = (fields.get("license_expression") or "").strip()
    if expression:
        return Licence(expression=expression, source="License-Expression")
    names: list[str] = []
    text = None
    sources = []
    licence = (fields.get("license") or "").strip()
    if licence and licence.upper() != "UNKNOWN":
        sources.append("License")
        if "\n" in licence or len(licence) > NAME_MAX:
            text = licence
        else:
            names.append(licence)
    for classifier in fields.get("classifiers") or []:
        parts = [p.strip() for p in classifier.split("::")]
        if parts[0] == "License" and len(parts) > 1 and parts[-1] != "OSI Approved":
            if "classifiers" not in sources:
                sources.append("classifiers")
            if parts[-1] not in names:
                names.append(parts[-1])
    return Licence(names=tuple(names), text=text, source=", ".join(sources) or "none")


def _static_pkg_info(raw: bytes) -> bool:
    """PKG-INFO whose licence fields a backend did not leave to the build (PEP 643)."""
    fields, _ = parse_email(raw)
    try:
        if Version(fields.get("metadata_version") or "0") < Version("2.2"):
            return False
    except InvalidVersion:
        return False
    dynamic = {d.lower() for d in fields.get("dynamic") or []}
    return not dynamic & {"license", "license-expression", "license-file", "classifier"}


def sdist_licence(facts: SdistFacts) -> FileLicence:
    """An sdist's licence from what reading it found."""
    if facts.unreadable is not None:
        return FileLicence(Licence(), "unreadable sdist")
    if facts.pkg_info is None:
        return FileLicence(Licence(), "no PKG-INFO")
    if not _static_pkg_info(facts.pkg_info):
        return FileLicence(Licence(), "PKG-INFO not static")
    return FileLicence(licence_of(facts.pkg_info))


def note_sdists(state: TreeState, read: Iterable[tuple[str, SdistFacts]]) -> None:
    """Keep the licence of each (sha256, facts) the run read, unless the state has it."""
    for sha256, facts in read:
        if state.fact(sha256, LICENCE_FACT) is None:
            state.set_fact(sha256, LICENCE_FACT, sdist_licence(facts).to_json())


def file_licence(root: Path, state: TreeState, project: str, file: RemoteFile) -> FileLicence:
    """The licence of a file of the tree: a wheel's from its ``.metadata``; an sdist's
    from the state, else from its archive (then kept in the state)."""
    path = root / package_relpath(project, file.filename)
    if file.is_wheel:
        try:
            return FileLicence(licence_of(Path(f"{path}{METADATA_SUFFIX}").read_bytes()))
        except OSError:
            return FileLicence(Licence(), "no .metadata")
    if file.sha256:
        known = state.fact(file.sha256, LICENCE_FACT)
        found = FileLicence.from_json(known) if known is not None else None
        if found is not None:
            return found
    try:
        raw = read_archive(path).files.get("PKG-INFO")
    except OSError:  # not there now: said, and not remembered
        return FileLicence(Licence(), "unreadable sdist")
    except MetadataError as exc:
        facts = SdistFacts(file.filename, unreadable=str(exc))
    else:
        facts = SdistFacts(file.filename, pkg_info=pkg_info_headers(raw))
    if file.sha256:
        note_sdists(state, [(file.sha256, facts)])
    return sdist_licence(facts)
