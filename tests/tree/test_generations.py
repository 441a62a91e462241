"""tree.generations and tree.export: generations recorded by publish, the net delta, the
order of a manifest's files and removals, and volume splitting."""

from __future__ import annotations

import tarfile
from pathlib import Path

from morgan_like.dists.links import RemoteFile
from morgan_like.tree import generations
from morgan_like.tree.export import (
    ExportFile,
    delta_plan,
    file_order,
    full_plan,
    removal_order,
    split_volumes,
    volume_bytes,
    write_volume,
)
from morgan_like.tree.layout import package_relpath
from morgan_like.tree.publish import publish
from morgan_like.tree.state import TreeState
from morgan_like.tree.writer import TreeWriter


def _file(root: Path, project: str, filename: str, data: bytes) -> RemoteFile:
    path = root / package_relpath(project, filename)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return RemoteFile(filename, f"https://upstream.invalid/{filename}")


def _set(root: Path, project: str, files: dict[str, bytes], serial: int) -> int | None:
    """One run: ``project`` now has exactly ``files`` (none: it leaves); its generation."""
    with TreeState(root) as state:
        writer = TreeWriter(root, state)
        if files:
            remote = [_file(root, project, name, data) for name, data in files.items()]
            writer.write_project(project, remote, last_serial=serial, replace=True)
        else:
            writer.remove_project(project)
        return publish(writer, server=b"# server\n", config=b"[requirements]\n").generation


def _delta(root: Path, base: int) -> tuple[list[str], list[str]]:
    with TreeState(root) as state:
        plan = delta_plan(root, state, base)
    return [f.path for f in plan.files], list(plan.removed)


def test_each_publish_that_changes_something_records_one_generation(tree: Path) -> None:
    assert _set(tree, "a", {"a-1.0.tar.gz": b"a1"}, 1) == 1
    assert _set(tree, "b", {"b-1.0.tar.gz": b"b1"}, 2) == 2
    with TreeState(tree) as state:
        writer = TreeWriter(tree, state)
        assert publish(writer, server=b"# server\n", config=b"[requirements]\n").generation is None
        assert generations.current(state) == 2
        ident = generations.tree_id(state)
    with TreeState(tree) as state:
        assert generations.tree_id(state) == ident and len(ident) == 32


def test_a_page_changed_five_times_travels_once(tree: Path) -> None:
    _set(tree, "a", {"a-1.0.tar.gz": b"a1"}, 1)
    files = {"a-1.0.tar.gz": b"a1"}
    for i in range(2, 7):
        files[f"a-{i}.0.tar.gz"] = b"a%d" % i
        _set(tree, "a", dict(files), i)
    sent, removed = _delta(tree, 1)
    assert sent.count("simple/a/index.html") == 1 and sent.count("simple/a/index.json") == 1
    assert {f"packages/a/a-{i}.0.tar.gz" for i in range(2, 7)} <= set(sent)
    assert "packages/a/a-1.0.tar.gz" not in sent and removed == []


def test_added_then_removed_does_not_travel_and_a_base_file_removed_does(tree: Path) -> None:
    _set(tree, "a", {"a-1.0.tar.gz": b"a1"}, 1)
    _set(tree, "keep", {"keep-1.0.tar.gz": b"k"}, 2)  # generation 2: the base
    _set(tree, "a", {"a-1.0.tar.gz": b"a1", "a-2.0.tar.gz": b"a2"}, 3)
    _set(tree, "a", {"a-1.0.tar.gz": b"a1"}, 4)  # a-2.0 came and went after the base
    _set(tree, "keep", {}, 5)  # keep existed at the base: its removal travels
    sent, removed = _delta(tree, 2)
    assert "packages/a/a-2.0.tar.gz" not in sent + removed
    assert removed == [
        "simple/keep/index.html",
        "simple/keep/index.json",
        "packages/keep/keep-1.0.tar.gz",
    ]
    assert sent.index("simple/a/index.json") < sent.index("simple/a/index.html")
    assert sent[-1] == "manifest.json" and sent.index("simple/index.json") < sent.index(
        "simple/index.html"
    )


def test_file_order_places_files_before_pages_before_roots() -> None:
    paths = [
        "manifest.json", "simple/index.html", "simple/index.json", "server.py",
        "envs/e/simple/index.html", "envs/e/simple/index.json", "envs/e/simple/a/index.html",
        "envs/e/simple/a/index.json", "simple/a/index.html", "simple/a/index.json", "json/a",
        "packages/a/a-1.whl.metadata", "packages/a/a-1.whl", "local.json", "morgan.ini",
    ]  # fmt: skip
    assert sorted(paths, key=file_order) == [
        "packages/a/a-1.whl", "packages/a/a-1.whl.metadata", "json/a",
        "simple/a/index.json", "simple/a/index.html",
        "envs/e/simple/a/index.json", "envs/e/simple/a/index.html",
        "envs/e/simple/index.json", "envs/e/simple/index.html",
        "simple/index.json", "simple/index.html",
        "local.json", "morgan.ini", "server.py", "manifest.json",
    ]  # fmt: skip
    gone = ["packages/a/a-1.whl", "json/a", "simple/a/index.json", "simple/a/index.html"]
    assert sorted(gone, key=removal_order) == [
        "simple/a/index.html", "simple/a/index.json", "json/a", "packages/a/a-1.whl",
    ]  # fmt: skip


def test_volumes_split_on_file_boundaries_a_large_file_alone(tmp_path: Path) -> None:
    root = tmp_path / "t"
    sizes = {"packages/a/small1": 10_000, "packages/a/big": 300_000, "packages/a/small2": 20_000,
             "packages/a/small3": 30_000, "simple/a/index.html": 100}  # fmt: skip
    for rel, size in sizes.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
    files = [ExportFile(rel, size) for rel, size in sizes.items()]
    limit = 64 << 10
    volumes = split_volumes(files, limit)
    assert [[f.path for f in v] for v in volumes] == [
        ["packages/a/small1"], ["packages/a/big"],
        ["packages/a/small2", "packages/a/small3", "simple/a/index.html"],
    ]  # fmt: skip
    for number, vol in enumerate(volumes, 1):
        target = tmp_path / f"vol-{number:05d}.tar"
        entry, members = write_volume(root, vol, target, lambda n: None)
        assert entry["size"] == target.stat().st_size
        assert entry["size"] <= limit or len(vol) == 1
        assert entry["size"] <= volume_bytes(sum(512 + -(-f.size // 512) * 512 for f in vol))
        with tarfile.open(target) as tar:  # each volume a tar on its own
            assert tar.getnames() == [f.path for f in vol]
            for member in tar.getmembers():
                assert member.isreg()
                extracted = tar.extractfile(member)
                assert extracted is not None
                assert extracted.read() == (root / member.name).read_bytes()


def test_full_plan_lists_every_visible_file(tree: Path) -> None:
    _set(tree, "a", {"a-1.0.tar.gz": b"a1"}, 1)
    (tree / "packages" / "a" / "link").symlink_to("a-1.0.tar.gz")
    with TreeState(tree) as state:
        plan = full_plan(tree, state)
    paths = [f.path for f in plan.files]
    assert "packages/a/a-1.0.tar.gz" in paths and "server.py" in paths
    assert not any(p.startswith(".") or p.endswith("link") for p in paths)
    assert plan.full and plan.base == 0 and plan.generation == 1
