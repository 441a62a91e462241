"""The landing page of a whole index: its rows kept as columns (RowTable) and its summary
written row by row, with the bytes the rows as objects give."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

from morgan_like.tree.landing import CACHE_FORMAT, LANDING_CACHE, RowTable, _save_cache
from morgan_like.tree.landing_html import EnvColumn, LandingData, ProjectRow, render_landing
from morgan_like.tree.state import TreeState
from morgan_like.tree.writer import TreeWriter

ROWS = [
    ProjectRow("a", "1.0", 1, 2, 300),
    ProjectRow("a-b", "", 0, 1, 0),
    ProjectRow("caf\u00e9", "2.0rc1+local.1", 3, 4, 5_000_000_000),
    ProjectRow('q"uote', "1!2.0", 1, 1, 7),
]


def test_a_row_table_reads_as_its_rows() -> None:
    table = RowTable()
    for row in ROWS:
        table.append(row)
    assert list(table) == ROWS and len(table) == len(ROWS)
    assert table[0] == ROWS[0] and table[-1] == ROWS[-1] and list(table[1:3]) == ROWS[1:3]
    env = EnvColumn("py311", 1, 2, 300, {"a": "1.0"})
    as_tuple = LandingData(tuple(ROWS), (env,), "2026-01-01T00:00:00Z")
    as_table = LandingData(table, (env,), "2026-01-01T00:00:00Z")
    assert render_landing(as_table) == render_landing(as_tuple)


def test_the_summary_written_row_by_row_is_the_whole_document_s(tmp_path: Path) -> None:
    envs = [EnvColumn("py311", 1, 2, 300, {"a": "1.0", "caf\u00e9": "2.0"})]
    with TreeState(tmp_path) as state:
        _save_cache(TreeWriter(tmp_path, state), "ab" * 32, ROWS, envs)
    whole = {
        "format": CACHE_FORMAT,
        "page": "ab" * 32,
        "rows": [[r.name, r.newest, r.releases, r.files, r.size] for r in ROWS],
        "envs": [[e.name, e.projects, e.files, e.size, e.versions] for e in envs],
    }
    assert (tmp_path / LANDING_CACHE).read_bytes() == json.dumps(
        whole, separators=(",", ":")
    ).encode()


def test_a_row_takes_a_fraction_of_a_row_object() -> None:
    """Rows made one by one (as publish reads them, each with its own version string):
    a table keeps the name, one shared version string and three integers."""
    names = [f"project-{i:06d}" for i in range(20_000)]
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        table = RowTable()
        for name in names:
            table.append(ProjectRow(name, ".".join(["1", "0"]), 1, 1, 1000))
        size = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(table) == len(names)
    assert size / len(names) < 60, f"{size / len(names):.0f} bytes a row"
