"""The transfer end to end: the real ``morgan-like export`` into the real
``python3 server.py --import``, on a bundle with env views (``mirror``) and on a full
mirror (``sync``).

Upstream moves in three steps (a new release, a deleted file, a deleted project), the
source tree follows (``mirror --prune`` / ``sync``), and each export is imported into a
copy that started empty.  After every import the copy holds the source's visible files
byte for byte (the hidden ``.morgan-like/`` state differs by design), its own server.py
``--verify`` is clean, and its generation is the source's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.tree import generations
from morgan_like.tree.state import TreeState

from ..clients import installed, make_venv, need, pip_install, pyenv_python
from ..fakeindex import FakeIndex
from ..helpers import ini_env_block, sdist, wheel
from ..server_support import SubprocessServer, load_server_module
from ..transfer_support import snapshot, tree_files
from .sync_support import sync

NEW_TAG = "py3-none-manylinux_2_28_x86_64"
OLD_TAG = "py3-none-manylinux_2_17_x86_64"
ENVS = {"new": ("3.11.7", {"manylinux": "2.28"}), "old": ("3.12.1", {})}


# ---------------------------------------------------------------------------------------
# The source trees and how upstream moves under them
# ---------------------------------------------------------------------------------------


@dataclass
class Source:
    """A tree fed from a fake upstream, with the three upstream moves it will follow."""

    kind: str
    root: Path
    index: FakeIndex
    dists: Path
    steps: list[Callable[[], None]] = field(default_factory=list)

    def update(self) -> None:
        """Follow upstream: ``mirror --prune`` for a bundle, ``sync`` for a full mirror."""
        if self.kind == "bundle":
            rc = main(["mirror", "-i", str(self.root), "-I", self.index.url, "-q", "--prune"])
        else:
            rc = sync(self.root, self.index).rc
        assert rc == 0

    def move(self, step: int) -> None:
        """Upstream step STEP (0: a new release, 1: a deleted file, 2: a deleted project),
        then the tree follows it."""
        self.steps[step]()
        self.update()

    def generation(self) -> tuple[str, int]:
        with TreeState(self.root) as state:
            return generations.tree_id(state), generations.current(state)


def build_bundle(index: FakeIndex, dists: Path, root: Path, backend: Path) -> Source:
    """Two envs, so the tree has views: ``old`` (glibc 2.17) and ``new`` (2.28).  ``app``
    1.0 needs ``zmqish`` and ``extra``; the moves: zmqish 2.1 for ``new`` (2.0 leaves
    with --prune), zmqish 1.0's sdist deleted, app 1.1 without ``extra`` (the project
    deleted upstream, with app 1.0's wheel)."""
    index.add(backend)
    wheel(index, dists, "zmqish", "1.0", tag=OLD_TAG)
    sdist(index, dists, "zmqish", "1.0")
    wheel(index, dists, "zmqish", "2.0", tag=NEW_TAG)
    sdist(index, dists, "zmqish", "2.0")
    wheel(index, dists, "extra", "1.0")
    wheel(index, dists, "app", "1.0", requires_dist=["zmqish", "extra"])
    root.mkdir(parents=True)
    blocks = "".join(ini_env_block(name, py, **extra) for name, (py, extra) in ENVS.items())
    (root / "morgan.ini").write_text(blocks + "[requirements]\napp =\n")
    assert main(["mirror", "-i", str(root), "-I", index.url, "-q"]) == 0

    def new_release() -> None:
        wheel(index, dists, "zmqish", "2.1", tag=NEW_TAG)
        sdist(index, dists, "zmqish", "2.1")

    def deleted_file() -> None:
        index.remove("zmqish-1.0.tar.gz")

    def deleted_project() -> None:
        wheel(index, dists, "app", "1.1", requires_dist=["zmqish"])
        index.remove("app-1.0-py3-none-any.whl")
        index.remove_project("extra")

    return Source("bundle", root, index, dists, [new_release, deleted_file, deleted_project])


def build_sync(index: FakeIndex, dists: Path, root: Path, backend: Path) -> Source:
    """Every upstream project; the moves: lib 3.0, lib 1.0's wheel deleted, app deleted."""
    index.add(backend)
    wheel(index, dists, "app", "1.0", requires_dist=["lib>=1"])
    sdist(index, dists, "app", "1.0", requires_dist=["lib>=1"])
    wheel(index, dists, "lib", "1.0")
    wheel(index, dists, "lib", "2.0")
    assert sync(root, index).rc == 0
    return Source(
        "sync",
        root,
        index,
        dists,
        [
            lambda: wheel(index, dists, "lib", "3.0"),
            lambda: index.remove("lib-1.0-py3-none-any.whl"),
            lambda: index.remove_project("app"),
        ],
    )


BUILDERS = {"bundle": build_bundle, "sync": build_sync}


@pytest.fixture(params=sorted(BUILDERS))
def source(
    request: pytest.FixtureRequest, fake_index: FakeIndex, dists: Path, tmp_path: Path,
    tiny_backend_wheel: Path,
) -> Source:  # fmt: skip
    return BUILDERS[request.param](fake_index, dists, tmp_path / "src", tiny_backend_wheel)


# ---------------------------------------------------------------------------------------
# The two commands, and what a copy must be after an import
# ---------------------------------------------------------------------------------------


def export(src: Source, out: Path, site: str, *args: str) -> int:
    """``morgan-like export -i SRC -o OUT --site SITE ARGS``."""
    return main(["export", "-i", str(src.root), "-o", str(out), "--site", site, "-q", *args])


def server_py(
    script: Path, *args: object, python: str | Path = sys.executable, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), str(script), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def import_into(
    src: Source, out: Path, copy: Path, python: str | Path = sys.executable
) -> subprocess.CompletedProcess:
    """``python3 SRC/server.py --import OUT -i COPY`` (the source's server.py: the copy
    may have none yet); it must succeed."""
    result = server_py(src.root / "server.py", "--import", out, "-i", copy, python=python)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def assert_same(src: Source, copy: Path) -> None:
    """COPY is SRC byte for byte (hidden state aside), its own server.py --verify is
    clean, its receipt names SRC's tree and generation, and no staging is left."""
    assert tree_files(copy) == tree_files(src.root)
    verify = server_py(copy / "server.py", "--verify", "-i", copy)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    receipt = server_py(copy / "server.py", "--receipt", "-i", copy)
    assert receipt.returncode == 0, receipt.stderr
    tree, gen = src.generation()
    assert json.loads(receipt.stdout) == {
        "format": "morgan-like-generation/1",
        "tree": tree,
        "generation": gen,
    }
    assert not (copy / ".morgan-like" / "import").exists()


def manifest(out: Path) -> dict:
    return json.loads((out / "morgan-like-export.json").read_bytes())


# ---------------------------------------------------------------------------------------
# 1. Round trip
# ---------------------------------------------------------------------------------------


def test_round_trip_full_then_each_upstream_move(source: Source, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    assert export(source, tmp_path / "e0", "a", "--full") == 0
    import_into(source, tmp_path / "e0", copy)
    assert_same(source, copy)
    if source.kind == "bundle":
        assert (copy / "envs" / "old" / "simple" / "index.html").is_file()
    for step in range(3):
        before = tree_files(source.root)
        source.move(step)
        assert tree_files(source.root) != before, step
        out = tmp_path / f"e{step + 1}"
        assert export(source, out, "a") == 0
        doc = manifest(out)
        assert not doc["full"] and doc["base"] == doc["generation"] - 1, doc
        result = import_into(source, out, copy)
        assert f"now at generation {doc['generation']}" in result.stdout
        assert_same(source, copy)
        # the same export again: nothing to do, nothing changed
        still = snapshot(copy)
        again = import_into(source, out, copy)
        assert "nothing to do" in again.stdout
        assert snapshot(copy) == still
    # what each move took away is gone from the copy too
    gone = (
        ["packages/extra", "simple/extra", "envs/old/simple/extra", "envs/new/simple/extra"]
        if source.kind == "bundle"
        else ["packages/app", "simple/app", "json/app"]
    )
    for rel in gone:
        assert not (copy / rel).exists(), rel
    # nothing new upstream: nothing to export
    assert export(source, tmp_path / "e-none", "a") == 0
    assert not (tmp_path / "e-none").exists()


# ---------------------------------------------------------------------------------------
# 2. Two sites
# ---------------------------------------------------------------------------------------


def test_two_sites_one_behind_catches_up_from_its_receipt(source: Source, tmp_path: Path) -> None:
    """Site A takes every export.  Site B takes the first, then two exports made for it
    never arrive; the next one (based on what the online side believes B has) is refused,
    and B's receipt carried back makes the export that brings B level in one go."""
    copy_a, copy_b = tmp_path / "site-a", tmp_path / "site-b"
    copy_a.mkdir()
    copy_b.mkdir()
    for site, copy in (("a", copy_a), ("b", copy_b)):
        assert export(source, tmp_path / f"{site}0", site, "--full") == 0
        import_into(source, tmp_path / f"{site}0", copy)
        assert_same(source, copy)
    for step in range(3):
        source.move(step)
        assert export(source, tmp_path / f"a{step + 1}", "a") == 0
        import_into(source, tmp_path / f"a{step + 1}", copy_a)
        assert_same(source, copy_a)
        if step < 2:  # made for B, lost on the way
            assert export(source, tmp_path / f"b{step + 1}", "b") == 0
    _, current = source.generation()
    # the online side believes B is at the generation of the last lost export
    behind = tmp_path / "b-behind"
    assert export(source, behind, "b") == 0
    assert manifest(behind)["base"] == current - 1
    before = snapshot(copy_b)
    refused = server_py(source.root / "server.py", "--import", behind, "-i", copy_b)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "--site b --since 1" in refused.stderr, refused.stderr
    assert snapshot(copy_b) == before
    # B's receipt, carried back, is what the next export for B starts from
    receipt = tmp_path / "receipt-b.json"
    made = server_py(copy_b / "server.py", "--receipt", "-i", copy_b, "-o", receipt)
    assert made.returncode == 0, made.stderr
    caught_up = tmp_path / "b-since-receipt"
    assert export(source, caught_up, "b", "--receipt", str(receipt)) == 0
    doc = manifest(caught_up)
    assert (doc["base"], doc["generation"], doc["full"]) == (1, current, False)
    import_into(source, caught_up, copy_b)
    assert_same(source, copy_b)
    assert tree_files(copy_a) == tree_files(copy_b)


def test_server_py_names_sites_by_the_exporters_rule() -> None:
    """server.py's refusal names the manifest's site only if the exporter could have
    made that name (a hand-edited one reads SITE): the same rule on both sides."""
    from morgan_like.modes.export import SITE_NAME

    server = load_server_module()
    assert server._SITE_NAME.pattern == SITE_NAME.pattern + r"\Z"
    assert server._site_named({"site": "lab-b"}) == "lab-b"
    for odd in ("-x", "a b", "a;rm", "x" * 65, 3, None):
        assert server._site_named({"site": odd}) == "SITE"


# ---------------------------------------------------------------------------------------
# One history per kind, built once: a site that took the full export at generation 1,
# then upstream's three moves; a delta from generation 1 and one from generation 2
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    src: Source
    site1: Path  # took the full export of generation 1 (hidden state included)
    delta: Path  # made for site "s": generation 1 -> now
    wrong: Path  # made for site "t" with --since 2: not what site1 can take

    def site(self, where: Path) -> Path:
        shutil.copytree(self.site1, where, symlinks=True)
        return where


@pytest.fixture(scope="module")
def histories(
    tmp_path_factory: pytest.TempPathFactory, tiny_backend_wheel: Path
) -> Iterator[Callable[[str], History]]:
    made: dict[str, History] = {}

    def history(kind: str) -> History:
        if kind not in made:
            made[kind] = _build_history(kind, tmp_path_factory.mktemp(kind), tiny_backend_wheel)
        return made[kind]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("morgan_like.modes.resolving.default_processes", lambda: 0)
        yield history


def _build_history(kind: str, base: Path, backend: Path) -> History:
    with FakeIndex() as index:
        (base / "dists").mkdir()
        src = BUILDERS[kind](index, base / "dists", base / "src", backend)
        assert export(src, base / "full", "s", "--full") == 0
        site1 = base / "site1"
        site1.mkdir()
        import_into(src, base / "full", site1)
        assert_same(src, site1)
        for step in range(3):
            src.move(step)
    assert export(src, base / "delta", "s", "--since", "1") == 0
    assert export(src, base / "wrong", "t", "--since", "2") == 0
    assert manifest(base / "wrong")["base"] == 2
    return History(src, site1, base / "delta", base / "wrong")


# ---------------------------------------------------------------------------------------
# 3. Refusal: an export against another base
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_an_export_against_another_base_is_refused_and_names_the_since_to_use(
    kind: str, histories: Callable[[str], History], tmp_path: Path
) -> None:
    h = histories(kind)
    site = h.site(tmp_path / "site")
    before = snapshot(site)
    refused = server_py(h.src.root / "server.py", "--import", h.wrong, "-i", site)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr and "unexpected" not in refused.stderr
    assert "is at generation 1" in refused.stderr and "needs generation 2" in refused.stderr
    assert snapshot(site) == before
    # the command it names, run on the online side, makes the export that applies
    named = re.search(r"'morgan-like export (--site \S+ --since \d+)'", refused.stderr)
    assert named is not None, refused.stderr
    assert named.group(1) == "--site t --since 1"
    out = tmp_path / "as-named"
    assert (
        main(["export", "-i", str(h.src.root), "-o", str(out), "-q", *named.group(1).split()]) == 0
    )
    import_into(h.src, out, site)
    assert_same(h.src, site)


# ---------------------------------------------------------------------------------------
# 4. Crash: kill -9 at several points of a real delta's import, then the re-run
# ---------------------------------------------------------------------------------------


def _import_steps(out: Path) -> int:
    """server.py's write steps for an export (its MORGAN_LIKE_CRASH_AFTER points): each
    file staged, the journal (2), each file renamed, each removal, generation.json (2)."""
    doc = manifest(out)
    return 2 * len(doc["files"]) + len(doc["removed"]) + 4


@pytest.mark.parametrize("where", [0.0, 0.25, 0.5, 0.6, 0.75, 0.9, 1.0])
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_an_import_killed_half_way_is_finished_by_a_rerun(
    kind: str, where: float, histories: Callable[[str], History], tmp_path: Path
) -> None:
    h = histories(kind)
    site = h.site(tmp_path / "site")
    step = max(1, round(where * _import_steps(h.delta)))
    env = dict(os.environ, MORGAN_LIKE_CRASH_AFTER=str(step))
    killed = server_py(h.src.root / "server.py", "--import", h.delta, "-i", site, env=env)
    assert killed.returncode == -9, (step, killed.stdout, killed.stderr)
    import_into(h.src, h.delta, site)
    assert_same(h.src, site)


# ---------------------------------------------------------------------------------------
# 5. The oldest and newest Pythons server.py supports
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["3.6.15", "3.13.0"])
@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_real_exports_import_under_pyenv(
    kind: str, version: str, histories: Callable[[str], History], tmp_path: Path
) -> None:
    python = pyenv_python(version)
    if not python.exists():
        pytest.skip(f"pyenv {version} not installed")
    h = histories(kind)
    empty = tmp_path / "empty"
    empty.mkdir()
    import_into(h.src, h.site1.parent / "full", empty, python=python)
    import_into(h.src, h.delta, empty, python=python)
    assert_same(h.src, empty)
    verify = server_py(empty / "server.py", "--verify", "-i", empty, python=python)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    site = h.site(tmp_path / "site")
    import_into(h.src, h.delta, site, python=python)
    assert_same(h.src, site)


# ---------------------------------------------------------------------------------------
# pip on the far side, from the imported copy only (its own server.py, and file://)
# ---------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_pip_installs_from_the_imported_copy(
    histories: Callable[[str], History], tmp_path: Path
) -> None:
    """The bundle's ``old`` view after the full export and the delta: app 1.1 (the
    deleted project ``extra`` no longer needed) and zmqish 1.0's glibc-2.17 wheel."""
    python = pyenv_python(ENVS["old"][0])
    need(python)
    h = histories("bundle")
    copy = h.site(tmp_path / "copy")
    import_into(h.src, h.delta, copy)
    code = "import app, zmqish; print(app.__version__, zmqish.__version__)"
    with SubprocessServer(copy, args=["-q"], script=copy / "server.py") as server:
        urls = [f"{server.base}/envs/old/simple/", (copy / "envs/old/simple").as_uri() + "/"]
        for i, url in enumerate(urls):
            vpy = make_venv(python, tmp_path / f"venv{i}")
            pip_install(vpy, url, "app")
            assert installed(vpy, code) == "1.1 1.0"
            assert "extra" not in installed(
                vpy, "import importlib.metadata as m; print([d.name for d in m.distributions()])"
            )
