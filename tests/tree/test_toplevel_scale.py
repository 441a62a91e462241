"""The root pages and local.json of a whole index: written from the state's rows as they
are read, byte for byte what the rule over a list of every project gives."""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path

import pytest

from morgan_like.tree.layout import LOCAL_JSON, ROOT_HTML, ROOT_JSON
from morgan_like.tree.pages import render_local_json, render_root_html, render_root_json
from morgan_like.tree.state import TreeState
from morgan_like.tree.writer import TreeWriter

CANONICAL = [("a", 3), ("a-b", None), ("a0", 7), ("b", 1), ("caf\u00e9", 2), ("z-z", 9)]


def test_names_in_order_and_any_order_give_the_same_root_pages() -> None:
    shuffled = CANONICAL[:]
    random.Random(3).shuffle(shuffled)
    odd = [*shuffled, ("A", 5), ("z_z", 4), ("B", None)]  # merged by canonical name
    assert render_root_json(CANONICAL, 9) == render_root_json(shuffled, 9)
    assert render_root_html([n for n, _ in CANONICAL]) == render_root_html([n for n, _ in shuffled])
    assert render_local_json(CANONICAL) == render_local_json(shuffled)
    page = render_root_json(odd, 9).decode()
    assert '{"name": "a", "_last-serial": 5}' in page and '"z-z", "_last-serial": 9' in page
    assert page.count('"name"') == len(CANONICAL)
    assert render_root_html([n for n, _ in odd]).decode().count("<a href") == len(CANONICAL)
    assert render_root_json([], None) == b'{"meta": {"api-version": "1.1"}, "projects": []}\n'
    assert render_local_json([("a", None)]) == b"{}\n"
    assert render_root_html([]).endswith(b"  <body>\n  </body>\n</html>\n")


def test_the_root_pages_are_written_without_a_list_of_every_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    with TreeState(tree) as state:
        for name, serial in CANONICAL:
            state.set_project(name, serial)
        state.commit()
        expected = {
            ROOT_JSON: render_root_json(state.projects(), 9),
            ROOT_HTML: render_root_html([n for n, _ in state.projects()]),
            LOCAL_JSON: render_local_json(state.projects()),
        }

        def whole_list() -> list[tuple[str, int | None]]:
            raise AssertionError("the root pages read every project into one list")

        monkeypatch.setattr(state, "projects", whole_list)
        writer = TreeWriter(tree, state)
        writer.write_root()
        writer.write_serial_list(9)
    for relpath, data in expected.items():
        assert (tree / relpath).read_bytes() == data


def test_a_root_page_holds_little_more_than_its_own_bytes() -> None:
    """A state's rows read one by one: no map of the names, no list of the lines (at
    900,000 projects those held some 400 MB at once)."""
    names = [f"project-{i:06d}" for i in range(30_000)]
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        page = render_root_json(((n, 1_000_000 + i) for i, n in enumerate(names)), 1)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    # The page, the buffer it was built in and its growth: 3 times the page (7 before).
    assert peak < 4 * len(page), f"{peak / len(page):.1f} times the page"
