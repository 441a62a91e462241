"""PEP 740 provenance carried across: fetched with each file that upstream attests,
kept beside it, pointed at by our pages, served by server.py and verified offline.

The fixtures are real: pypi-attestations' own test assets (tests/fixtures/provenance/),
a wheel published by CircleCI and an sdist published by a GitHub workflow, with the
provenance objects PyPI serves for them.  The fake upstream lists and serves them as
PyPI does (``/integrity/<project>/<version>/<filename>/provenance``).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.dists.htmlpage import parse_html_page
from morgan_like.dists.links import parse_json_page
from morgan_like.tree.provenance import ProvenanceError, check_form

from ..clients import pyenv_python
from ..fakeindex import FakeIndex
from ..helpers import ini_env_block
from ..server_support import SERVER_PY, SubprocessServer, load_server_module
from .sync_support import sync as sync_with_diff

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "provenance"
WHEEL = "circleci_sign_publish_example-0.0.1.dev137-py3-none-any.whl"
SDIST = "pypi_attestations-0.0.19.tar.gz"
NAME = "circleci-sign-publish-example"
WHEEL_REL = f"packages/{NAME}/{WHEEL}"
SDIST_REL = f"packages/pypi-attestations/{SDIST}"
CIRCLECI = "CircleCI project fdd9283f-e619-46af-8f9c-851f7d3e8b2b"
GITHUB = "GitHub trailofbits/pypi-attestations, workflow release.yml"
PY36 = pyenv_python("3.6.15")


def _attestations() -> bool:
    try:
        import pypi_attestations  # noqa: F401
    except ImportError:
        return False
    return True


needs_attestations = pytest.mark.skipif(
    not _attestations(), reason="pypi-attestations (the test extra) is not installed"
)


@pytest.fixture
def attested(fake_index: FakeIndex) -> FakeIndex:
    for name in (WHEEL, SDIST):
        fake_index.add(FIXTURES / name, provenance=FIXTURES / f"{name}.provenance")
    return fake_index


def bundle(root: Path, index: FakeIndex) -> int:
    root.mkdir(parents=True, exist_ok=True)
    (root / "morgan.ini").write_text(
        ini_env_block("lin", "3.11.7")
        + "[requirements]\ncircleci-sign-publish-example = ==0.0.1.dev137\n"
    )
    return main(["mirror", "-i", str(root), "-I", index.url, "-q"])


def sync(root: Path, index: FakeIndex) -> int:
    return main(["sync", "-i", str(root), "-I", index.url, "-q"])


def verify(root: Path, *args: str, python: str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, str(SERVER_PY), "--verify", *args, "-i", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_bundle_keeps_the_provenance_beside_the_file_and_its_pages_point_at_it(
    attested: FakeIndex, tmp_path: Path
) -> None:
    root = tmp_path / "bundle"
    assert bundle(root, attested) == 0
    kept = root / f"{WHEEL_REL}.provenance"
    assert kept.read_bytes() == (FIXTURES / f"{WHEEL}.provenance").read_bytes()
    assert attested.provenance_path(WHEEL) in {r.path for r in attested.requests}
    page_dir = root / "simple/circleci-sign-publish-example"
    doc = json.loads((page_dir / "index.json").read_text())
    assert doc["meta"]["api-version"] == "1.3"  # PEP 740's
    assert doc["files"][0]["provenance"] == f"../../{WHEEL_REL}.provenance"
    html = (page_dir / "index.html").read_text()
    assert f'data-provenance="../../{WHEEL_REL}.provenance"' in html
    # Read back, both pages name our copy (relative: the tree travels).
    for page in (
        parse_json_page(NAME, (page_dir / "index.json").read_bytes(), page_dir.as_uri() + "/"),
        parse_html_page(NAME, html, page_dir.as_uri() + "/"),
    ):
        assert page.files[0].provenance == kept.as_uri()
    view = root / "envs/lin/simple/circleci-sign-publish-example/index.json"
    entry = json.loads(view.read_text())["files"][0]
    assert entry["provenance"] == f"../../../../{WHEEL_REL}.provenance"
    plain = verify(root)
    assert plain.returncode == 0, plain.stdout
    assert "ATTESTED" not in plain.stdout  # only with --provenance


@needs_attestations
def test_sync_carries_provenance_server_serves_it_and_verify_names_the_publisher(
    attested: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "mirror"
    assert sync(root, attested) == 0
    for rel, name in ((WHEEL_REL, WHEEL), (SDIST_REL, SDIST)):
        assert (root / f"{rel}.provenance").read_bytes() == (
            FIXTURES / f"{name}.provenance"
        ).read_bytes()
    with SubprocessServer(root) as server:
        with urllib.request.urlopen(f"{server.base}/{SDIST_REL}.provenance") as resp:
            assert resp.headers["Content-Type"] == "application/json"
            assert resp.read() == (FIXTURES / f"{SDIST}.provenance").read_bytes()
        req = urllib.request.Request(
            f"{server.base}/simple/pypi-attestations/",
            headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        )
        with urllib.request.urlopen(req) as resp:
            listed = json.loads(resp.read())["files"][0]["provenance"]
        assert listed == f"../../{SDIST_REL}.provenance"
    capsys.readouterr()
    assert main(["verify", "--provenance", "-i", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"ATTESTED    {SDIST_REL} ({GITHUB}: 1 attestation verified)" in out
    assert f"ATTESTED    {WHEEL_REL} ({CIRCLECI}" in out
    # A second sync fetches no provenance again.
    attested.reset_log()
    assert sync(root, attested) == 0
    assert not [r for r in attested.requests if "/integrity/" in r.path]


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1
    path.write_bytes(bytes(data))


def _tamper_signature(provenance: bytes) -> bytes:
    doc = json.loads(provenance)
    envelope = doc["attestation_bundles"][0]["attestations"][0]["envelope"]
    signature = bytearray(base64.b64decode(envelope["signature"]))
    signature[10] ^= 1
    envelope["signature"] = base64.b64encode(bytes(signature)).decode()
    return json.dumps(doc).encode()


@needs_attestations
def test_a_tampered_file_and_a_tampered_attestation_are_each_refused_in_one_line(
    attested: FakeIndex, tmp_path: Path
) -> None:
    root = tmp_path / "mirror"
    assert sync(root, attested) == 0
    _flip(root / SDIST_REL, 1000)  # one byte of the file
    prov = root / f"{WHEEL_REL}.provenance"
    prov.write_bytes(_tamper_signature(prov.read_bytes()))  # one bit of a signature
    result = verify(root, "--provenance")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    refused = [line for line in lines if line.startswith("PROVENANCE")]
    assert len(refused) == 2, result.stdout
    assert refused[0].startswith(f"PROVENANCE  {WHEEL_REL}.provenance (attestation of bundle 1")
    assert "does not verify" in refused[0] and "signature" in refused[0]
    assert refused[1].startswith(f"PROVENANCE  {SDIST_REL}.provenance (the attested sha256")
    assert not [line for line in lines if line.startswith("ATTESTED")]


def test_upstream_serving_another_file_under_the_attested_name_loses_its_provenance(
    fake_index: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The fetch checks the provenance against the file as it arrived: an upstream whose
    file is not the attested one (one byte) gets it mirrored without provenance, said once."""
    tampered = tmp_path / "up" / SDIST
    tampered.parent.mkdir()
    shutil.copyfile(FIXTURES / SDIST, tampered)
    _flip(tampered, 1000)
    fake_index.add(tampered, provenance=FIXTURES / f"{SDIST}.provenance")
    root = tmp_path / "mirror"
    assert main(["sync", "-i", str(root), "-I", fake_index.url]) == 0
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if "provenance" in line]
    assert len(warned) == 1 and SDIST_REL in warned[0], err
    assert not (root / f"{SDIST_REL}.provenance").exists()
    assert (
        "provenance"
        not in json.loads((root / "simple/pypi-attestations/index.json").read_text())["files"][0]
    )
    assert verify(root).returncode == 0


@pytest.mark.skipif(not PY36.exists(), reason="pyenv CPython 3.6.15 is not installed")
def test_server_py_under_python_36_says_pypi_attestations_is_missing_and_checks_digests(
    attested: FakeIndex, tmp_path: Path
) -> None:
    root = tmp_path / "mirror"
    assert sync(root, attested) == 0
    result = verify(root, "--provenance", python=str(PY36))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.splitlines() == [
        "verify: pypi-attestations is not importable under Python 3.6: provenance checked "
        "for form and the file's sha256 only, signatures not checked"
    ]
    assert f"ATTESTED    {SDIST_REL} ({GITHUB}: 1 attestation naming its sha256" in result.stdout
    _flip(root / SDIST_REL, 1000)
    result = verify(root, "--provenance", python=str(PY36))
    assert result.returncode == 1
    assert f"PROVENANCE  {SDIST_REL}.provenance (the attested sha256" in result.stdout


def test_verify_reports_a_provenance_link_that_is_missing_or_elsewhere(
    attested: FakeIndex, tmp_path: Path
) -> None:
    root = tmp_path / "bundle"
    assert bundle(root, attested) == 0
    (root / f"{WHEEL_REL}.provenance").unlink()
    result = verify(root)
    assert result.returncode == 1
    assert f"MISSING     {WHEEL_REL}.provenance" in result.stdout
    assert (
        "--provenance"
        in subprocess.run(
            [sys.executable, str(SERVER_PY), "--provenance", "-i", str(root)],
            capture_output=True,
            text=True,
        ).stderr
    )


@pytest.mark.parametrize("name", [WHEEL, SDIST])
def test_the_fetch_check_and_server_py_agree(name: str) -> None:
    """tree/provenance.check_form (the fetch's) and server.py's stdlib check_provenance
    give the same verdicts: sound, another digest, another file's name, not JSON."""
    server = load_server_module()
    data = (FIXTURES / f"{name}.provenance").read_bytes()
    sha = __import__("hashlib").sha256((FIXTURES / name).read_bytes()).hexdigest()
    other = "0" * 64
    cases = [(data, name, sha), (data, name, other), (data, "other-1.0.tar.gz", sha)]
    cases.append((b"{not json", name, sha))
    for case in cases:
        try:
            check_form(*case)
            ours = True
        except ProvenanceError:
            ours = False
        try:
            server.check_provenance(*case)
            theirs = True
        except ValueError:
            theirs = False
        assert ours == theirs == (case == cases[0])


def test_the_provenance_travels_with_its_file(attested: FakeIndex, tmp_path: Path) -> None:
    """It is news for the diff-file (so the export's generations) and a path the offline
    import may write."""
    root = tmp_path / "mirror"
    run = sync_with_diff(root, attested)
    assert run.rc == 0
    assert [p for p in run.changed if p.endswith(f"{SDIST_REL}.provenance")], run.changed
    assert load_server_module().layout_kind(f"{SDIST_REL}.provenance") == "project"


@needs_attestations
def test_provenance_crosses_the_gap_by_export_and_import(
    attested: FakeIndex, tmp_path: Path
) -> None:
    """A full export carries each file's provenance; imported offline by the tree's own
    server.py, the copy verifies its attestations as the source does."""
    from ..transfer_support import tree_files

    tree, copy = tmp_path / "tree", tmp_path / "copy"
    assert bundle(tree, attested) == 0
    assert (tree / (WHEEL_REL + ".provenance")).is_file()
    copy.mkdir()
    out = tmp_path / "export"
    assert main(["export", "-i", str(tree), "-o", str(out), "--site", "s", "--full", "-q"]) == 0
    run = subprocess.run(
        [sys.executable, str(tree / "server.py"), "--import", str(out), "-i", str(copy)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert tree_files(copy) == tree_files(tree)
    checked = verify(copy, "--provenance")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert CIRCLECI in checked.stdout
