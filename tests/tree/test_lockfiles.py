"""tree.lockfiles: locks/pylock.<env>.toml and locks/<env>.requirements.txt per env view,
as publish writes them, server.py serves them and --verify checks them."""

from __future__ import annotations

import hashlib
import io
import shutil
import sys
import urllib.request
from pathlib import Path

import pytest
from packaging.pylock import Pylock

from morgan_like.dists.links import RemoteFile
from morgan_like.tree.layout import lock_relpaths, package_relpath
from morgan_like.tree.lockfiles import LockTarget
from morgan_like.tree.publish import publish
from morgan_like.tree.state import TreeState
from morgan_like.tree.views import EnvView
from morgan_like.tree.writer import TreeWriter

from ..distbuilder import make_sdist, make_wheel
from ..server_support import InProcessServer, load_server_module

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def place(tree: Path, built: Path, **fields: object) -> RemoteFile:
    rf = RemoteFile(
        filename=built.name,
        url=f"https://upstream.invalid/{built.name}",
        sha256=hashlib.sha256(built.read_bytes()).hexdigest(),
        size=built.stat().st_size,
        **fields,  # type: ignore[arg-type]
    )
    dest = tree / package_relpath(str(rf.project), built.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(built, dest)
    return rf


@pytest.fixture
def files(tree: Path, dists: Path) -> dict[str, RemoteFile]:
    up = "2024-05-01T10:20:30.123456Z"
    return {
        "a1w": place(tree, make_wheel(dists, "Alpha_Pkg", "1.0"), upload_time=up),
        "a1s": place(tree, make_sdist(dists, "Alpha_Pkg", "1.0"), upload_time=up),
        "a2w": place(tree, make_wheel(dists, "Alpha_Pkg", "2.0", requires_python=">=3.8"), requires_python=">=3.8"),
        "b1s": place(tree, make_sdist(dists, "beta", "1.0")),
        "tool": place(tree, make_wheel(dists, "tool", "3.0")),
        "tool2": place(tree, make_wheel(dists, "tool", "4.0")),
    }  # fmt: skip


def _publish(tree: Path, views: list[EnvView], targets: list[LockTarget], files) -> object:
    with TreeState(tree) as state:
        writer = TreeWriter(tree, state)
        by_project: dict[str, list[RemoteFile]] = {}
        for rf in files.values():
            by_project.setdefault(str(rf.project), []).append(rf)
        for project, rfs in by_project.items():
            writer.write_project(project, rfs)
        return publish(writer, server=b"# server\n", views=views, targets=targets)


def _views() -> list[EnvView]:
    a1 = {"alpha_pkg-1.0-py3-none-any.whl", "Alpha_Pkg-1.0.tar.gz"}
    return [
        EnvView(
            "old",
            {
                "alpha-pkg": frozenset(a1),
                "beta": frozenset({"beta-1.0.tar.gz"}),
                # tool 3.0 is the env's pin; tool 4.0 only a build requirement
                "tool": frozenset({"tool-3.0-py3-none-any.whl", "tool-4.0-py3-none-any.whl"}),
            },
        ),
        EnvView("py3.12", {"alpha-pkg": frozenset({"alpha_pkg-2.0-py3-none-any.whl"})}),
    ]


TARGETS = [
    LockTarget("old", "3.9", {"alpha-pkg": "1.0", "beta": "1.0", "tool": "3.0"}),
    LockTarget("py3.12", "3.12", {"alpha-pkg": "2.0"}),
]


def test_locks_list_exactly_each_views_pins(tree: Path, files) -> None:
    _publish(tree, _views(), TARGETS, files)
    pylock_rel, reqs_rel = lock_relpaths("old")
    assert pylock_rel == "locks/pylock.old.toml"
    doc = tomllib.loads((tree / pylock_rel).read_text())
    lock = Pylock.from_dict(doc)  # packaging's PEP 751 validation, what pip 26 runs
    assert doc["lock-version"] == "1.0" and doc["created-by"] == "morgan-like"
    assert doc["requires-python"] == "==3.9.*"
    assert [(p.name, str(p.version)) for p in lock.packages] == [
        ("alpha-pkg", "1.0"),
        ("beta", "1.0"),
        ("tool", "3.0"),
    ]
    alpha = doc["packages"][0]
    wheel = alpha["wheels"][0]
    assert wheel["path"] == "../packages/alpha-pkg/" + files["a1w"].filename
    assert wheel["hashes"] == {"sha256": files["a1w"].sha256}
    assert wheel["size"] == files["a1w"].size
    assert str(wheel["upload-time"]).startswith("2024-05-01 10:20:30")
    assert alpha["sdist"]["path"] == "../packages/alpha-pkg/Alpha_Pkg-1.0.tar.gz"
    assert "wheels" not in doc["packages"][1]  # beta: an sdist only
    for entry in [wheel, alpha["sdist"]]:
        assert (tree / "locks" / entry["path"]).resolve().is_file()
    # A dotted env name: pylock.<name>.toml allows no dot in <name> (pip and uv require it).
    assert lock_relpaths("py3.12") == ("locks/pylock.py3_12.toml", "locks/py3.12.requirements.txt")
    other = tomllib.loads((tree / "locks/pylock.py3_12.toml").read_text())
    assert [p["version"] for p in other["packages"]] == ["2.0"]
    assert other["packages"][0]["requires-python"] == ">=3.8"

    reqs = (tree / reqs_rel).read_text()
    assert "--no-index\n" in reqs
    assert "--find-links ../envs/old/simple/tool/index.html\n" in reqs
    assert (
        f"alpha-pkg==1.0 \\\n    --hash=sha256:{min(files['a1w'].sha256, files['a1s'].sha256)} \\\n"
        f"    --hash=sha256:{max(files['a1w'].sha256, files['a1s'].sha256)}\n"
    ) in reqs
    assert f"tool==3.0 \\\n    --hash=sha256:{files['tool'].sha256}\n" in reqs
    assert files["tool2"].sha256 not in reqs  # a build requirement's release: not pinned


def test_a_view_of_several_releases_without_pins_gets_no_lock(tree: Path, files) -> None:
    """A curated slice keeps several releases of a project: no lock can hold them."""
    done = _publish(tree, _views(), [], files)
    assert not (tree / "locks/pylock.old.toml").exists()
    assert (tree / "locks/pylock.py3_12.toml").exists()  # one release per project
    assert done.notes == (
        "env old: no lock files (tool: the view lists 2 versions (3.0, 4.0), a lock holds one)",
    )  # type: ignore[attr-defined]


def test_locks_of_envs_gone_are_removed_and_verify_checks_them(tree: Path, files) -> None:
    _publish(tree, _views(), TARGETS, files)
    mod = load_server_module()
    out, err = io.StringIO(), io.StringIO()
    assert mod.verify(str(tree), out, err) == 0, out.getvalue() + err.getvalue()
    # a lock naming a wrong hash is refused
    path = tree / "locks/pylock.old.toml"
    good = path.read_text()
    path.write_text(good.replace(files["tool"].sha256, "0" * 64))
    out = io.StringIO()
    assert mod.verify(str(tree), out, io.StringIO()) == 1
    assert (
        "BAD-LOCK    locks/pylock.old.toml (packages/tool/tool-3.0-py3-none-any.whl"
        in out.getvalue()
    )
    path.write_text(good)
    # the view of py3.12 goes: so do its locks
    _publish(tree, _views()[:1], TARGETS, files)
    assert sorted(p.name for p in (tree / "locks").iterdir()) == [
        "old.requirements.txt",
        "pylock.old.toml",
    ]
    out = io.StringIO()
    assert mod.verify(str(tree), out, io.StringIO()) == 0, out.getvalue()


def test_server_serves_locks_with_absolute_locations(tree: Path, files) -> None:
    _publish(tree, _views(), TARGETS, files)
    with InProcessServer(tree) as srv:
        with urllib.request.urlopen(f"{srv.base}/locks/pylock.old.toml") as resp:
            assert resp.headers["Content-Type"] == "application/toml; charset=utf-8"
            body = resp.read().decode()
        doc = tomllib.loads(body)
        wheel = doc["packages"][0]["wheels"][0]
        assert "path" not in wheel
        assert wheel["url"] == f"{srv.base}/packages/alpha-pkg/{files['a1w'].filename}"
        with urllib.request.urlopen(wheel["url"]) as resp:
            assert hashlib.sha256(resp.read()).hexdigest() == files["a1w"].sha256
        with urllib.request.urlopen(f"{srv.base}/locks/old.requirements.txt") as resp:
            assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
            reqs = resp.read().decode()
        assert f"--index-url {srv.base}/envs/old/simple/\n" in reqs
        assert "\n--find-links" not in reqs and "\n--no-index" not in reqs
        assert f"--hash=sha256:{files['tool'].sha256}" in reqs
        for missing in ("locks/nope.toml", "locks/pylock.nope.toml", "locks/"):
            with pytest.raises(urllib.error.HTTPError) as exc:
                urllib.request.urlopen(f"{srv.base}/{missing}")
            assert exc.value.code == 404
