"""``sbom.cdx.json``: the tree's CycloneDX inventory, what a security team's scanner reads.

One component per distribution file the union pages list (a scanner matches files,
and an env installs a file, not a release): its PURL
``pkg:pypi/<name>@<version>?file_name=<file>``, its sha256, its licence, and as
properties its tree path, each env whose view lists it (``morgan-like:env``) and, per
env, the top-level requirement that pulled it in (``morgan-like:required-by``,
``"<env>: <requirement>"``).  Written with cyclonedx-python-lib, never by hand.

Licences come from the file's own metadata (tree/licences.py): a wheel's ``.metadata``
(PEP 658, byte-identical to its METADATA), an sdist's PKG-INFO when it is static
(Metadata-Version >= 2.2 and no licence field dynamic), as the run read it and the
tree state keeps it by sha256.  License-Expression becomes
an SPDX expression; else the License field (an SPDX id when it is one, else a name;
a long text is attached as text) and each ``License ::`` classifier's name; with
none of them the licence is named "unknown".  ``morgan-like:license-from`` says
which it was.

The document is reproducible: its serial number is derived from its content and
the timestamp of an unchanged inventory stays the one written first, so a run that
changes nothing leaves the file as it was.  A run that did not resolve (a replayed
plan) knows no requirement chains: the previous document's ``required-by`` for the
same env and file is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.exception.factory import InvalidLicenseExpressionException
from cyclonedx.model import AttachedText, HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL
from packaging.utils import canonicalize_name

from morgan_like import __version__
from morgan_like.dists.links import RemoteFile
from morgan_like.tree.layout import SBOM_NAME, package_relpath
from morgan_like.tree.licences import NAME_MAX, FileLicence, file_licence
from morgan_like.tree.lockfiles import LockTarget
from morgan_like.tree.views import EnvView
from morgan_like.tree.writer import TreeWriter

ENV_PROPERTY = "morgan-like:env"
REQUIRED_BY_PROPERTY = "morgan-like:required-by"
PATH_PROPERTY = "morgan-like:path"
LICENSE_FROM_PROPERTY = "morgan-like:license-from"
UNKNOWN = "unknown"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NAMESPACE = uuid.UUID("6c1f9a8e-2f0b-4d38-9b8e-6d3f0a1c7e55")  # serial numbers' uuid5 space


def _licences(found_licence: FileLicence) -> tuple[list, str]:
    licence, why_none = found_licence.licence, found_licence.why_none
    factory = LicenseFactory()
    if licence.expression:
        try:
            return [factory.make_with_expression(licence.expression)], licence.source
        except InvalidLicenseExpressionException:
            return [DisjunctiveLicense(name=licence.expression)], licence.source
    found: list[LicenseExpression | DisjunctiveLicense] = []
    for name in licence.names:
        made = factory.make_from_string(name)
        found.append(DisjunctiveLicense(name=name) if isinstance(made, LicenseExpression) else made)
    if licence.text:
        first = licence.text.strip().splitlines()[0][:NAME_MAX]
        found.append(DisjunctiveLicense(name=first, text=AttachedText(content=licence.text)))
    if found:
        return found, licence.source
    return [DisjunctiveLicense(name=UNKNOWN)], f"none ({why_none})" if why_none else "none"


def _purl(project: str, file: RemoteFile) -> PackageURL:
    return PackageURL(
        type="pypi",
        name=project,
        version=str(file.version) if file.version is not None else None,
        qualifiers={"file_name": file.filename},
    )


def previous_required_by(path: Path) -> dict[tuple[str, str], tuple[str, ...]]:
    """(tree path, env) -> the requirements the SBOM at ``path`` gave (empty if none)."""
    found: dict[tuple[str, str], list[str]] = {}
    with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
        doc = json.loads(path.read_bytes())
        for component in doc.get("components") or []:
            props = component.get("properties") or []
            rel = next((p.get("value") for p in props if p.get("name") == PATH_PROPERTY), None)
            for p in props:
                value = p.get("value") or ""
                if rel and p.get("name") == REQUIRED_BY_PROPERTY and ": " in value:
                    env, req = value.split(": ", 1)
                    found.setdefault((rel, env), []).append(req)
    return {key: tuple(reqs) for key, reqs in found.items()}


def render_sbom(
    writer: TreeWriter,
    views: Sequence[EnvView],
    targets: Mapping[str, LockTarget],
    previous: Mapping[tuple[str, str], tuple[str, ...]],
) -> Bom:
    """The document: every file of every union page, with its envs and requirements
    (timestamp and serial number left to ``write_sbom``)."""
    envs_of: dict[str, list[str]] = {}
    for view in views:
        for project, files in view.projects.items():
            for filename in files:
                envs_of.setdefault(package_relpath(project, filename), []).append(view.env)
    components = []
    for project in sorted(writer.existing_projects()):
        if writer.is_leaving(project):
            continue
        norm = canonicalize_name(project)
        for file in sorted(writer.existing_files(norm), key=lambda f: f.filename):
            rel = package_relpath(norm, file.filename)
            licences, source = _licences(file_licence(writer.root, writer.state, norm, file))
            props = [Property(name=PATH_PROPERTY, value=rel)]
            props.append(Property(name=LICENSE_FROM_PROPERTY, value=source))
            for env in envs_of.get(rel, []):
                props.append(Property(name=ENV_PROPERTY, value=env))
                target = targets.get(env)
                if target is not None and target.required_by is not None:
                    reqs = target.required_by.get(norm, ())
                else:
                    reqs = previous.get((rel, env), ())
                props += [Property(name=REQUIRED_BY_PROPERTY, value=f"{env}: {r}") for r in reqs]
            components.append(
                Component(
                    name=norm,
                    version=str(file.version) if file.version is not None else None,
                    type=ComponentType.LIBRARY,
                    bom_ref=rel,
                    purl=_purl(norm, file),
                    hashes=[HashType(alg=HashAlgorithm.SHA_256, content=file.sha256)]
                    if file.sha256
                    else [],
                    licenses=licences,
                    properties=props,
                )
            )
    bom = Bom(components=components, metadata=BomMetaData(timestamp=_EPOCH))
    tool = Component(name="morgan-like", version=__version__, type=ComponentType.APPLICATION)
    bom.metadata.tools.components.add(tool)
    return bom


def _output(bom: Bom, timestamp: datetime, serial: uuid.UUID) -> str:
    bom.metadata.timestamp = timestamp
    bom.serial_number = serial
    return JsonV1Dot6(bom).output_as_string(indent=1) + "\n"


def _stamped(content: str, bom: Bom, timestamp: datetime, serial: uuid.UUID) -> str:
    """``content`` (rendered with the epoch and the zero serial number) with the real
    ones: the text ``_output`` would give, without rendering the document again (its
    serialisation is most of the SBOM's cost).  Each placeholder is a key and value
    found once in the text (a string value cannot hold an unescaped quote), else the
    document is rendered again."""
    swaps = [
        (f'"timestamp": "{_EPOCH.isoformat()}"', f'"timestamp": "{timestamp.isoformat()}"'),
        (f'"serialNumber": "{uuid.UUID(int=0).urn}"', f'"serialNumber": "{serial.urn}"'),
    ]
    if any(content.count(old) != 1 for old, _new in swaps):
        return _output(bom, timestamp, serial)
    for old, new in swaps:
        content = content.replace(old, new)
    return content


def write_sbom(
    writer: TreeWriter, views: Sequence[EnvView], targets: Mapping[str, LockTarget]
) -> bool:
    """Write ``sbom.cdx.json``; an inventory the same as the one there keeps its file
    (and timestamp).  Returns whether it changed."""
    path = writer.root / SBOM_NAME
    bom = render_sbom(writer, views, targets, previous_required_by(path))
    content = _output(bom, _EPOCH, uuid.UUID(int=0))
    serial = uuid.uuid5(_NAMESPACE, hashlib.sha256(content.encode("utf-8")).hexdigest())
    old = None
    with contextlib.suppress(OSError):
        old = path.read_bytes()
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        if old is not None and json.loads(old).get("serialNumber") == serial.urn:
            return writer.write_file(SBOM_NAME, old)  # the same inventory: kept as written
    return writer.write_file(
        SBOM_NAME, _stamped(content, bom, datetime.now(timezone.utc), serial).encode("utf-8")
    )
