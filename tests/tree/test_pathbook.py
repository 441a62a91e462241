"""PathBook: the writer's changed / removed paths, kept small at a whole index's scale,
and the diff-file and generation written from it exactly as from a set of strings."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

from morgan_like.tree.diff import write_diff
from morgan_like.tree.generations import record_generation
from morgan_like.tree.pathbook import PathBook
from morgan_like.tree.publish import DiffRequest, publish
from morgan_like.tree.state import TreeState
from morgan_like.tree.writer import TreeWriter

# Names whose pages sort differently from the names ("a-b/" < "a/"), a name that is
# a prefix of another, odd paths that are no project page, and top-level files.
TRICKY = ["a", "a-b", "a0", "ab", "a-", "z", "0", "a.b", "A", "x_y"]


def _pages(name: str) -> list[str]:
    return [f"simple/{name}/index.html", f"simple/{name}/index.json", f"json/{name}"]


def _paths() -> list[str]:
    paths = [p for name in TRICKY for p in _pages(name)]
    paths += [
        "simple/index.html",
        "simple/index.json",
        "simple/a/old.tmp",
        "simple/.hidden/index.html",
        "envs/x/simple/a/index.html",
        "packages/a/a-1.0.tar.gz",
        "packages/a-b/a_b-1.0-py3-none-any.whl.metadata",
        "index.html",
        "local.json",
        "manifest.json",
        "server.py",
        "simple//a/index.html",
    ]
    return paths


def test_a_pathbook_is_the_set_of_its_paths_in_sorted_order() -> None:
    paths = _paths()
    rng = random.Random(7)
    for _ in range(20):
        chosen = rng.sample(paths, rng.randrange(len(paths) + 1))
        book = PathBook(chosen)
        assert list(book) == sorted(set(chosen))
        assert len(book) == len(set(chosen)) and book == set(chosen)
        assert all(p in book for p in chosen)
        assert not any(p in book for p in set(paths) - set(chosen))
        gone = rng.sample(chosen, len(chosen) // 2)
        for p in gone:
            book.discard(p)
        assert list(book) == sorted(set(chosen) - set(gone))
        more, minus = PathBook(rng.sample(paths, 5)), PathBook(rng.sample(paths, 5))
        assert list(book.merged(more, minus)) == sorted((set(book) | set(more)) - set(minus))


def test_the_diff_file_from_a_pathbook_is_the_old_rule_s(tmp_path: Path) -> None:
    """Changed paths on disk, sorted and unique; those gone join the removed list."""
    tree = tmp_path / "tree"
    changed = _paths()[:-1]
    on_disk = [rel for i, rel in enumerate(changed) if i % 3]
    for rel in on_disk:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text("x")
    removed = ["simple/gone/index.html", "json/gone", "packages/gone/g-1.tar.gz", on_disk[0]]
    diff, gone = write_diff(tree, tmp_path / "DIFF", PathBook(changed), PathBook(removed))
    travels = [rel for rel in changed if "/." not in rel]
    assert diff.read_text().splitlines() == sorted(r for r in travels if r in on_disk)
    assert gone.read_text().splitlines() == sorted(
        {*removed[:3], *(r for r in travels if r not in on_disk)}
    )
    lines = diff.read_text().splitlines()
    assert lines.index("simple/a-b/index.json") < lines.index("simple/a/index.json")
    # The same lists given as plain strings, unsorted, write the same files.
    again = write_diff(tree, tmp_path / "AGAIN", changed[::-1], removed)
    assert [p.read_bytes() for p in again] == [diff.read_bytes(), gone.read_bytes()]


def test_a_generation_from_pathbooks_records_what_sets_would(tmp_path: Path) -> None:
    paths = _paths()
    with TreeState(tmp_path / "one") as one, TreeState(tmp_path / "two") as two:
        record_generation(one, list(paths[:12]), list(paths[8:20]))
        record_generation(two, PathBook(paths[:12]), PathBook(paths[8:20]))
        sql = "SELECT gen, relpath, removed FROM gen_paths ORDER BY relpath"
        assert one.query(sql) == two.query(sql) and len(one.query(sql)) == 20


def test_a_publish_lists_every_page_a_session_wrote(tmp_path: Path) -> None:
    """The diff-file and Published.changed name every page the writer changed, in
    sorted order, with the names whose folders sort apart from them."""
    tree = tmp_path / "tree"
    with TreeState(tree) as state:
        writer = TreeWriter(tree, state, index_only=True, warehouse=True)
        for name in reversed(TRICKY):
            writer.write_project(name, [], 1, keep_empty=True)
        done = publish(writer, diff=DiffRequest(tmp_path / "DIFF"), serial_list=True)
    names = sorted({n.lower().replace("_", "-").replace(".", "-") for n in TRICKY})
    pages = [p for name in names for p in _pages(name)]
    assert set(pages) <= set(done.changed)
    assert list(done.changed) == sorted(done.changed)
    assert (tmp_path / "DIFF").read_text().splitlines() == list(done.changed)


def test_a_pathbook_keeps_a_project_s_pages_in_far_less_than_their_strings() -> None:
    """At a whole index's scale the writer's changed paths must fit: 900,000 projects
    of three pages each cost some 1.2 GB as a set of strings (about 430 bytes a
    project); a PathBook keeps a name and a small integer."""
    names = [f"project-{i:06d}-name" for i in range(20_000)]
    tracemalloc.start()
    try:
        book = PathBook()
        for name in names:
            for relpath in _pages(name):
                book.add(relpath)
        size, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(book) == 3 * len(names)
    assert size / len(names) < 160, f"{size / len(names):.0f} bytes a project"


def test_the_writer_keeps_a_project_s_pages_under_the_caller_s_name(tmp_path: Path) -> None:
    """One string per project: the name a sync's plan holds, not a copy per book."""
    tree = tmp_path / "tree"
    name = "".join(["some", "-", "project"])  # a string of its own, as a plan's key
    with TreeState(tree) as state:
        writer = TreeWriter(tree, state, index_only=True, warehouse=True)
        writer.write_project(name, [], 1, keep_empty=True)
        (kept,) = writer.changed.projects()
    assert kept == name and kept is name
