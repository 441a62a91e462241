"""tree.sbom: sbom.cdx.json, one CycloneDX component per distribution file, validated
with cyclonedx-python-lib's own strict JSON schema validator."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

from cyclonedx.model import AttachedText
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component
from cyclonedx.model.license import DisjunctiveLicense
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from morgan_like.dists.sdistread import SdistFacts, pkg_info_headers, read_sdist
from morgan_like.tree import sbom
from morgan_like.tree.layout import package_relpath
from morgan_like.tree.licences import note_sdists, sdist_licence
from morgan_like.tree.lockfiles import LockTarget
from morgan_like.tree.publish import publish
from morgan_like.tree.state import TreeState
from morgan_like.tree.views import EnvView
from morgan_like.tree.writer import TreeWriter

from ..distbuilder import make_sdist, make_wheel
from ..server_support import load_server_module
from .test_lockfiles import place


def _tree(tree: Path, dists: Path, targets: list[LockTarget]) -> dict[str, object]:
    files = {
        "expr": place(tree, make_wheel(dists, "expr", "1.0", metadata_version="2.4",
                                       extra_metadata="License-Expression: MIT OR Apache-2.0\n")),
        "field": place(tree, make_wheel(dists, "field", "2.0",
                                        extra_metadata="License: BSD-3-Clause\n")),
        "classy": place(tree, make_wheel(dists, "classy", "3.0", extra_metadata=(
            "License: Custom licence of ours\n"
            "Classifier: License :: OSI Approved :: MIT License\n"))),
        "none": place(tree, make_wheel(dists, "none", "4.0")),
        "sdist": place(tree, make_sdist(dists, "none", "4.0", pkg_info_metadata_version="2.1")),
    }  # fmt: skip
    views = [
        EnvView("edge", {"expr": frozenset({files["expr"].filename}),
                         "none": frozenset({files["none"].filename, files["sdist"].filename})}),
        EnvView("old", {"expr": frozenset({files["expr"].filename}),
                        "field": frozenset({files["field"].filename})}),
    ]  # fmt: skip
    with TreeState(tree) as state:
        writer = TreeWriter(tree, state)
        for key in ("expr", "field", "classy"):
            writer.write_project(str(files[key].project), [files[key]])
        writer.write_project("none", [files["none"], files["sdist"]])
        publish(writer, views=views, targets=targets)
    return files


TARGETS = [
    LockTarget("edge", "3.12", {"expr": "1.0", "none": "4.0"},
               {"expr": ("app>=1",), "none": ("app>=1", "tool")}),
    LockTarget("old", "3.9", {"expr": "1.0", "field": "2.0"}, {"expr": ("expr",)}),
]  # fmt: skip


def _by_file(doc: dict) -> dict[str, dict]:
    return {c["purl"].split("file_name=")[1]: c for c in doc["components"]}


def _props(component: dict, name: str) -> list[str]:
    return [p["value"] for p in component.get("properties", []) if p["name"] == name]


def test_sbom_validates_and_says_licence_env_and_requirement(tree: Path, dists: Path) -> None:
    files = _tree(tree, dists, TARGETS)
    text = (tree / "sbom.cdx.json").read_text()
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, error
    doc = json.loads(text)
    assert doc["specVersion"] == "1.6" and doc["serialNumber"].startswith("urn:uuid:")
    comps = _by_file(doc)
    assert len(comps) == 5  # one per distribution file (classy is in no view: still listed)
    expr = comps[files["expr"].filename]
    assert expr["purl"] == f"pkg:pypi/expr@1.0?file_name={files['expr'].filename}"
    assert expr["hashes"] == [{"alg": "SHA-256", "content": files["expr"].sha256}]
    assert expr["licenses"] == [{"expression": "MIT OR Apache-2.0"}]
    assert _props(expr, "morgan-like:env") == ["edge", "old"]
    assert _props(expr, "morgan-like:required-by") == ["edge: app>=1", "old: expr"]
    assert _props(expr, "morgan-like:path") == [f"packages/expr/{files['expr'].filename}"]
    field = comps[files["field"].filename]
    assert field["licenses"] == [{"license": {"id": "BSD-3-Clause"}}]
    assert _props(field, "morgan-like:license-from") == ["License"]
    classy = comps[files["classy"].filename]
    assert classy["licenses"] == [
        {"license": {"name": "Custom licence of ours"}},
        {"license": {"name": "MIT License"}},
    ]
    assert _props(classy, "morgan-like:license-from") == ["License, classifiers"]
    assert _props(classy, "morgan-like:env") == []
    none = comps[files["none"].filename]
    assert none["licenses"] == [{"license": {"name": "unknown"}}]
    assert _props(none, "morgan-like:license-from") == ["none"]
    assert _props(none, "morgan-like:required-by") == ["edge: app>=1", "edge: tool"]
    sdist = comps[files["sdist"].filename]
    assert _props(sdist, "morgan-like:license-from") == ["none (PKG-INFO not static)"]
    assert load_server_module().verify(str(tree), io.StringIO(), io.StringIO()) == 0


def test_unchanged_inventory_keeps_its_file_and_a_replay_keeps_the_chains(
    tree: Path, dists: Path
) -> None:
    _tree(tree, dists, TARGETS)
    path = tree / "sbom.cdx.json"
    before = path.read_bytes()
    # A replayed plan: no requirement chains this run; the document stays as it was.
    replayed = [LockTarget(t.env, t.python, t.pins, None) for t in TARGETS]
    _tree(tree, dists, replayed)
    assert path.read_bytes() == before
    # Another chain: another document, another serial number.
    changed = [LockTarget("edge", "3.12", TARGETS[0].pins, {"expr": ("other",)}), TARGETS[1]]
    _tree(tree, dists, changed)
    after = json.loads(path.read_text())
    assert after["serialNumber"] != json.loads(before)["serialNumber"]
    comps = _by_file(after)
    assert "edge: other" in _props(
        next(iter(c for k, c in comps.items() if k.startswith("expr"))), "morgan-like:required-by"
    )


def test_verify_refuses_an_sbom_that_does_not_parse_or_lies(tree: Path, dists: Path) -> None:
    files = _tree(tree, dists, TARGETS)
    path = tree / "sbom.cdx.json"
    good = path.read_text()
    mod = load_server_module()
    path.write_text(good.replace(files["expr"].sha256, "0" * 64))
    out = io.StringIO()
    assert mod.verify(str(tree), out, io.StringIO()) == 1
    assert f"BAD-SBOM    sbom.cdx.json (packages/expr/{files['expr'].filename}" in out.getvalue()
    path.write_text("{not json")
    out = io.StringIO()
    assert mod.verify(str(tree), out, io.StringIO()) == 1
    assert "BAD-SBOM    sbom.cdx.json (cannot read it" in out.getvalue()


# PKG-INFO the way backends write it, and the ways it can go wrong: a licence named
# only in the description, CRLF and lone-CR line ends, no blank line, dynamic fields.
PKG_INFOS = {
    "expr": b"Metadata-Version: 2.4\nName: expr\nVersion: 1.0\nLicense-Expression: MIT\n\n"
    b"License: GPL-3.0 (a line of the description)\n",
    "text": b"Metadata-Version: 2.2\nName: text\nVersion: 1.0\nLicense: Line one\n  line two\n"
    b"Classifier: License :: OSI Approved :: BSD License\n\n# Title\n\nLicense-Expression: x\n",
    "crlf": b"Metadata-Version: 2.2\r\nName: crlf\r\nVersion: 1.0\r\nLicense: Apache-2.0\r\n\r\n"
    b"License: MIT\r\n",
    "lonecr": b"Metadata-Version: 2.2\rName: lonecr\rVersion: 1.0\rLicense: ISC\r\rLicense: MIT\r",
    "noblank": b"Metadata-Version: 2.2\nName: noblank\nVersion: 1.0\nLicense: MIT",
    "dyn": b"Metadata-Version: 2.2\nName: dyn\nVersion: 1.0\nDynamic: License\nLicense: MIT\n\nx\n",
    "old": b"Metadata-Version: 2.1\nName: old\nVersion: 1.0\nLicense: MIT\n",
}


def _sdist(dists: Path, name: str, pkg_info: bytes | None) -> Path:
    path = dists / f"{name}-1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        members = {"setup.py": b"# nothing\n"}
        if pkg_info is not None:
            members["PKG-INFO"] = pkg_info
        for member, data in members.items():
            info = tarfile.TarInfo(f"{name}-1.0/{member}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_pkg_info_headers_say_what_the_whole_pkg_info_says() -> None:
    for raw in PKG_INFOS.values():
        headers = pkg_info_headers(raw)
        assert headers is not None and len(headers) <= len(raw)
        whole = sdist_licence(SdistFacts("x.tar.gz", pkg_info=raw))
        assert sdist_licence(SdistFacts("x.tar.gz", pkg_info=headers)) == whole
    assert pkg_info_headers(PKG_INFOS["crlf"]) == PKG_INFOS["crlf"].split(b"\r\n\r\n")[0] + (
        b"\r\n\r\n"
    )


def _refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError("an sdist read again for its licence")


def _sbom_without_timestamp(tree: Path) -> dict:
    doc = json.loads((tree / "sbom.cdx.json").read_bytes())
    del doc["metadata"]["timestamp"]
    return doc


def test_sdist_licences_from_the_run_or_the_state_are_those_of_the_archive(
    tmp_path: Path, dists: Path, monkeypatch
) -> None:
    """What the run read (dists.sdistread) and the state kept give the SBOM the
    archive's own licences: no sdist is read for them again."""
    built = [_sdist(dists, name, raw) for name, raw in PKG_INFOS.items()]
    built.append(_sdist(dists, "bare", None))
    (dists / "broken-1.0.tar.gz").write_bytes(b"not a tar at all")
    built.append(dists / "broken-1.0.tar.gz")

    def publish_tree(tree: Path, *, run_read: bool) -> None:
        files = [place(tree, b) for b in built]
        with TreeState(tree) as state:
            if run_read:
                paths = [tree / package_relpath(str(f.project), f.filename) for f in files]
                note_sdists(state, [(str(f.sha256), read_sdist(p)) for f, p in zip(files, paths)])
            writer = TreeWriter(tree, state)
            for f in files:
                writer.write_project(str(f.project), [f])
            view = EnvView("e", {str(f.project): frozenset({f.filename}) for f in files})
            publish(writer, views=[view], targets=[])

    read_here = tmp_path / "read-here"
    read_here.mkdir()
    publish_tree(read_here, run_read=False)
    doc = _sbom_without_timestamp(read_here)
    froms = {c["name"]: _props(c, "morgan-like:license-from") for c in doc["components"]}
    assert froms["expr"] == ["License-Expression"] and froms["text"] == ["License, classifiers"]
    assert froms["bare"] == ["none (no PKG-INFO)"] and froms["dyn"] == [
        "none (PKG-INFO not static)"
    ]
    assert froms["broken"] == ["none (unreadable sdist)"]
    monkeypatch.setattr("morgan_like.tree.licences.read_archive", _refuse)
    told = tmp_path / "told"
    told.mkdir()
    publish_tree(told, run_read=True)
    assert _sbom_without_timestamp(told) == doc
    before = (read_here / "sbom.cdx.json").read_bytes()
    publish_tree(read_here, run_read=False)  # the state kept what the first SBOM read
    assert (read_here / "sbom.cdx.json").read_bytes() == before


def test_a_stamped_document_is_the_one_rendered_with_its_stamp() -> None:
    """The SBOM is rendered once, with placeholders, then stamped: the same text as
    rendering it with its timestamp and serial number, even where a licence text holds
    the placeholders themselves."""
    tricky = f'"timestamp": "{sbom._EPOCH.isoformat()}" "serialNumber": "{uuid.UUID(int=0).urn}"'
    for text in ("plain", tricky):
        licence = DisjunctiveLicense(name="n", text=AttachedText(content=text))
        component = Component(name="x", version="1", bom_ref="x", licenses=[licence])
        bom = Bom(components=[component], metadata=BomMetaData(timestamp=sbom._EPOCH))
        content = sbom._output(bom, sbom._EPOCH, uuid.UUID(int=0))
        when, serial = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc), uuid.uuid4()
        stamped = sbom._stamped(content, bom, when, serial)
        assert stamped == sbom._output(bom, when, serial)
        assert json.loads(stamped)["serialNumber"] == serial.urn


def test_the_sbom_is_rendered_once(tree: Path, dists: Path, monkeypatch) -> None:
    renders = []
    real = sbom._output

    def counted(*args: object) -> str:
        renders.append(args)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(sbom, "_output", counted)
    _tree(tree, dists, TARGETS)
    assert len(renders) == 1
