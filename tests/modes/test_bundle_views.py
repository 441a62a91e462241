"""Env index views: ``envs/<env>/simple/`` lists only what that env resolved.

The case from the field: a project whose newest release has wheels only for a newer
glibc.  Env ``new`` (manylinux 2.28) takes that release; env ``old`` (the default
floor, 2.17) takes the older release's wheel.  The union ``simple/`` lists the newest
sdist too, which plain pip on ``old`` would try to build; ``old``'s view does not.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.dists.htmlpage import parse_html_page
from morgan_like.dists.links import parse_json_page

from ..clients import (
    find_uv,
    installed,
    make_venv,
    need,
    pip_install,
    pyenv_python,
    run,
    uv_install,
    uv_venv,
)
from ..fakeindex import FakeIndex
from ..helpers import ini_env_block, sdist, wheel
from ..server_support import SubprocessServer

NEW_TAG = "py3-none-manylinux_2_28_x86_64"
OLD_TAG = "py3-none-manylinux_2_17_x86_64"
ENVS = {"new": ("3.11.7", {"manylinux": "2.28"}), "old": ("3.12.1", {})}


def publish_floor_case(index: FakeIndex, dists: Path) -> None:
    """``zmqish`` 2.0: wheels for glibc 2.28 only; 1.0: a wheel for 2.17; both with sdists."""
    wheel(index, dists, "zmqish", "1.0", tag=OLD_TAG)
    sdist(index, dists, "zmqish", "1.0")
    wheel(index, dists, "zmqish", "2.0", tag=NEW_TAG)
    sdist(index, dists, "zmqish", "2.0")
    wheel(index, dists, "app", "1.0", requires_dist=["zmqish"])


def floor_config(root: Path, envs: dict[str, tuple[str, dict[str, str]]] = ENVS) -> None:
    root.mkdir(parents=True, exist_ok=True)
    blocks = "".join(ini_env_block(name, py, **extra) for name, (py, extra) in envs.items())
    (root / "morgan.ini").write_text(blocks + "[requirements]\napp =\n")


@pytest.fixture
def floor_index(fake_index: FakeIndex, dists: Path, tiny_backend_wheel: Path) -> FakeIndex:
    fake_index.add(tiny_backend_wheel)
    publish_floor_case(fake_index, dists)
    return fake_index


def mirror(root: Path, index: FakeIndex, *extra: str) -> int:
    return main(["mirror", "-i", str(root), "-I", index.url, "-q", *extra])


def view_files(root: Path, env: str, project: str) -> set[str]:
    """Filenames a view's project page lists, checking that HTML and JSON agree and that
    every link leads to the file in packages/."""
    page_dir = root / "envs" / env / "simple" / project
    html = parse_html_page(project, (page_dir / "index.html").read_text(), page_dir.as_uri() + "/")
    doc = parse_json_page(project, (page_dir / "index.json").read_bytes(), page_dir.as_uri() + "/")
    assert [(f.filename, f.sha256, f.url) for f in html.files] == [
        (f.filename, f.sha256, f.url) for f in doc.files
    ]
    for f in html.files:
        target = Path(f.url.removeprefix("file://"))
        assert target == root / "packages" / project / f.filename
        assert target.is_file()
    return {f.filename for f in html.files}


def view_projects(root: Path, env: str) -> list[str]:
    doc = json.loads((root / "envs" / env / "simple" / "index.json").read_text())
    html = (root / "envs" / env / "simple" / "index.html").read_text()
    names = [p["name"] for p in doc["projects"]]
    assert all(f'href="{n}/"' in html for n in names)
    return names


def test_each_env_view_lists_only_what_that_env_resolved(
    floor_index: FakeIndex, tmp_path: Path
) -> None:
    root = tmp_path / "bundle"
    floor_config(root)
    assert mirror(root, floor_index) == 0
    union = parse_json_page(
        "zmqish", (root / "simple/zmqish/index.json").read_bytes(), "http://x/simple/zmqish/"
    )
    assert {f.filename for f in union.files} == {
        "zmqish-1.0-py3-none-manylinux_2_17_x86_64.whl",
        "zmqish-1.0.tar.gz",
        "zmqish-2.0-py3-none-manylinux_2_28_x86_64.whl",
        "zmqish-2.0.tar.gz",
    }
    assert view_files(root, "old", "zmqish") == {
        "zmqish-1.0-py3-none-manylinux_2_17_x86_64.whl",
        "zmqish-1.0.tar.gz",
    }
    assert view_files(root, "new", "zmqish") == {
        "zmqish-2.0-py3-none-manylinux_2_28_x86_64.whl",
        "zmqish-2.0.tar.gz",
    }
    # tinybackend: the sdists' build backend, so pip there can build them offline
    assert view_projects(root, "old") == ["app", "tinybackend", "zmqish"]
    # A view's entries carry what the union's do (hash, size, PEP 658 metadata hash).
    old = json.loads((root / "envs/old/simple/zmqish/index.json").read_text())["files"]
    by_name = {f.filename: f for f in union.files}
    for entry in old:
        assert entry["hashes"]["sha256"] == by_name[entry["filename"]].sha256
        assert entry["size"] == by_name[entry["filename"]].size
    wheel_entry = next(e for e in old if e["filename"].endswith(".whl"))
    assert wheel_entry["core-metadata"] == {
        "sha256": by_name[wheel_entry["filename"]].metadata_sha256
    }
    manifest = json.loads((root / "manifest.json").read_text())["files"]
    for env in ENVS:
        assert f"envs/{env}/simple/index.html" in manifest
        assert f"envs/{env}/simple/index.json" in manifest


def test_views_follow_the_config_and_travel_in_the_diff_file(
    floor_index: FakeIndex, tmp_path: Path
) -> None:
    root = tmp_path / "bundle"
    floor_config(root)
    diff = tmp_path / "diff.txt"
    assert mirror(root, floor_index, "--diff-file", str(diff)) == 0
    listed = diff.read_text().split()
    for env in ENVS:
        assert f"envs/{env}/simple/index.html" in listed
        assert f"envs/{env}/simple/zmqish/index.html" in listed
        assert f"envs/{env}/simple/zmqish/index.json" in listed
    # A re-run that changes nothing writes no view page.
    assert mirror(root, floor_index, "--diff-file", str(diff)) == 0
    assert not any(p.startswith("envs/") for p in diff.read_text().split())
    # An env taken out of the config loses its view; the other keeps its own.
    floor_config(root, {"new": ENVS["new"]})
    assert mirror(root, floor_index, "--prune", "--diff-file", str(diff)) == 0
    assert not (root / "envs" / "old").exists()
    removed = (tmp_path / "diff.txt.removed").read_text().split()
    assert "envs/old/simple/index.html" in removed
    assert "envs/old/simple/zmqish/index.json" in removed
    assert view_files(root, "new", "zmqish") == {
        "zmqish-2.0-py3-none-manylinux_2_28_x86_64.whl",
        "zmqish-2.0.tar.gz",
    }
    assert not (root / "packages/zmqish/zmqish-1.0.tar.gz").exists()
    manifest = json.loads((root / "manifest.json").read_text())["files"]
    assert not any(rel.startswith("envs/old/") for rel in manifest)


def test_a_project_an_env_no_longer_needs_leaves_its_view(
    floor_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    root = tmp_path / "bundle"
    floor_config(root)
    assert mirror(root, floor_index) == 0
    text = (root / "morgan.ini").read_text()
    (root / "morgan.ini").write_text(text.replace("app =\n", "zmqish =\n"))
    assert mirror(root, floor_index, "--prune") == 0
    assert view_projects(root, "old") == ["tinybackend", "zmqish"]
    assert not (root / "envs/old/simple/app").exists()
    assert not (root / "simple/app").exists()


@pytest.mark.parametrize("name", ["linux x86", "../up", ".hidden", "a/b"])
def test_an_env_name_that_cannot_name_a_folder_is_refused(
    floor_index: FakeIndex, tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "bundle"
    floor_config(root, {name: ("3.12.1", {})})
    assert mirror(root, floor_index) != 0
    err = capsys.readouterr().err
    assert "cannot name its index folder" in err
    assert "Traceback" not in err
    assert floor_index.requests == []


def test_env_names_that_differ_only_in_case_are_refused(
    floor_index: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "bundle"
    floor_config(root, {"Linux": ("3.12.1", {}), "linux": ("3.11.7", {})})
    assert mirror(root, floor_index) != 0
    assert "differ only in case" in capsys.readouterr().err


def test_the_summary_names_each_env_index(
    floor_index: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "bundle"
    floor_config(root)
    assert main(["mirror", "-i", str(root), "-I", floor_index.url]) == 0
    out = capsys.readouterr().out
    for env in ENVS:
        assert f"http://HOST:8080/envs/{env}/simple/" in out
        assert (root / "envs" / env / "simple").as_uri() + "/" in out


def test_binary_only_lets_no_sdist_into_the_views(floor_index: FakeIndex, tmp_path: Path) -> None:
    root = tmp_path / "bundle"
    floor_config(root)
    with (root / "morgan.ini").open("a") as f:
        f.write("[mirror]\nbinary-only = true\n")
    assert mirror(root, floor_index) == 0
    assert view_files(root, "old", "zmqish") == {"zmqish-1.0-py3-none-manylinux_2_17_x86_64.whl"}
    assert view_files(root, "new", "zmqish") == {"zmqish-2.0-py3-none-manylinux_2_28_x86_64.whl"}
    assert not list(root.glob("packages/*/*.tar.gz"))
    assert view_projects(root, "old") == ["app", "zmqish"]  # no sdist, so no build backend


def test_an_env_can_say_otherwise_than_mirror(floor_index: FakeIndex, tmp_path: Path) -> None:
    root = tmp_path / "bundle"
    floor_config(
        root, {"new": ("3.11.7", {"manylinux": "2.28", "binary-only": "false"}), "old": ENVS["old"]}
    )
    with (root / "morgan.ini").open("a") as f:
        f.write("[mirror]\nbinary-only = true\n")
    assert mirror(root, floor_index) == 0
    assert view_files(root, "new", "zmqish") == {
        "zmqish-2.0-py3-none-manylinux_2_28_x86_64.whl",
        "zmqish-2.0.tar.gz",
    }
    assert view_files(root, "old", "zmqish") == {"zmqish-1.0-py3-none-manylinux_2_17_x86_64.whl"}


def test_binary_only_refuses_listing_every_project_without_a_wheel(
    floor_index: FakeIndex, dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sdist(floor_index, dists, "srcone", "1.0")
    sdist(floor_index, dists, "srctwo", "3.1")
    wheel(floor_index, dists, "srctwo", "3.0", tag=NEW_TAG)  # a wheel, but not for old's glibc
    root = tmp_path / "bundle"
    floor_config(root, {"old": ("3.12.1", {"binary-only": "true"})})
    text = (root / "morgan.ini").read_text()
    (root / "morgan.ini").write_text(text + "srcone =\nsrctwo =\n")
    assert mirror(root, floor_index) != 0
    err = capsys.readouterr().err
    assert "binary-only, and no usable wheel for 2 project(s)" in err
    assert "srcone 1.0: " in err and "srctwo 3.1: " in err
    assert "Traceback" not in err
    assert not (root / "packages").exists() or not list((root / "packages").rglob("*.*"))


def test_a_bad_binary_only_value_names_the_key(
    floor_index: FakeIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "bundle"
    floor_config(root, {"old": ("3.12.1", {"binary-only": "maybe"})})
    assert mirror(root, floor_index) == 2
    err = capsys.readouterr().err
    assert "[env.old] binary-only: binary-only = 'maybe' is not a boolean" in err


# --- real clients: plain pip and uv on each env's own interpreter -------------------------

CLIENT_ENVS = {"new": "3.11.7", "old": "3.12.1"}
EXPECTED = {"new": "2.0", "old": "1.0"}
VERSION_OF = "import zmqish; print(zmqish.__version__)"


@pytest.fixture(scope="module")
def floor_tree(tmp_path_factory: pytest.TempPathFactory, tiny_backend_wheel: Path) -> Path:
    """The floor case built once; the upstream is gone before any client runs."""
    base = tmp_path_factory.mktemp("views-e2e")
    root = base / "bundle"
    with FakeIndex() as index:
        index.add(tiny_backend_wheel)
        publish_floor_case(index, base / "dists")
        floor_config(root)
        assert mirror(root, index) == 0
    return root


@pytest.fixture(scope="module")
def floor_server(floor_tree: Path):
    with SubprocessServer(floor_tree, args=["-q"]) as server:
        yield server


def _view_urls(root: Path, server: SubprocessServer, env: str) -> list[str]:
    return [
        f"{server.base}/envs/{env}/simple/",
        (root / "envs" / env / "simple").as_uri() + "/",
    ]


@pytest.mark.e2e
@pytest.mark.parametrize("env", sorted(CLIENT_ENVS))
def test_plain_pip_on_each_target_installs_its_own_pins(
    env: str, floor_tree: Path, floor_server: SubprocessServer, tmp_path: Path
) -> None:
    python = pyenv_python(CLIENT_ENVS[env])
    need(python)
    for i, url in enumerate(_view_urls(floor_tree, floor_server, env)):
        vpy = make_venv(python, tmp_path / f"venv{i}")
        proc = run([vpy, "-m", "pip", "install", "--no-cache-dir", "--index-url", url, "app"])
        assert "Building wheel" not in proc.stdout, proc.stdout
        assert installed(vpy, VERSION_OF) == EXPECTED[env]


@pytest.mark.e2e
@pytest.mark.parametrize("env", sorted(CLIENT_ENVS))
def test_uv_on_each_target_installs_its_own_pins(
    env: str, floor_tree: Path, floor_server: SubprocessServer, tmp_path: Path
) -> None:
    python = pyenv_python(CLIENT_ENVS[env])
    need(python)
    uv = find_uv()
    assert uv is not None, "uv is a test dependency"
    for i, url in enumerate(_view_urls(floor_tree, floor_server, env)):
        vpy = uv_venv(uv, python, tmp_path / f"uv{i}")
        uv_install(uv, vpy, url, "app")
        assert installed(vpy, VERSION_OF) == EXPECTED[env]


@pytest.mark.e2e
def test_the_union_misleads_where_the_view_does_not(
    floor_tree: Path, floor_server: SubprocessServer, tmp_path: Path
) -> None:
    """Why views exist: plain pip on ``old`` against the union takes the newest sdist
    (and builds it); morgan-style clients still get every file from the union."""
    python = pyenv_python(CLIENT_ENVS["old"])
    need(python)
    vpy = make_venv(python, tmp_path / "venv")
    pip_install(vpy, f"{floor_server.base}/simple/", "app")
    assert installed(vpy, VERSION_OF) == "2.0"  # built from zmqish-2.0.tar.gz


def test_every_view_passes_verify(floor_tree: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(floor_tree / "server.py"), "--verify", "-i", str(floor_tree)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
