"""Writes outside a mirror or sync run still reach the sites a tree feeds: copy_server and
verify --remove-unreferenced record a generation, so the next export carries them."""

from __future__ import annotations

from pathlib import Path

from morgan_like.cli import main
from morgan_like.tree import generations
from morgan_like.tree.state import TreeState

from ..fakeindex import FakeIndex
from .test_bundle import mirror, write_config


def _state(root: Path) -> tuple[int, list[str]]:
    with TreeState(root) as state:
        gen = generations.current(state)
        return gen, generations.touched_since(state, gen - 1)


def test_copy_server_records_a_generation_with_the_new_server(
    small: FakeIndex, tmp_path: Path
) -> None:
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    before, _ = _state(root)
    assert main(["copy_server", "-i", str(root), "-q"]) == 0
    assert _state(root)[0] == before  # unchanged server.py: nothing new to send
    (root / "server.py").write_text("# an older server\n")
    assert main(["copy_server", "-i", str(root), "-q"]) == 0
    gen, touched = _state(root)
    assert gen == before + 1
    assert "server.py" in touched


def test_removing_unreferenced_files_records_their_removal(
    small: FakeIndex, tmp_path: Path
) -> None:
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    before, _ = _state(root)
    stray = root / "packages" / "lib" / "lib-0.1-py3-none-any.whl"
    stray.write_bytes(b"left behind")
    assert main(["verify", "-i", str(root), "--remove-unreferenced", "-q"]) == 0
    assert not stray.exists()
    with TreeState(root) as state:
        assert generations.current(state) == before + 1
        assert generations.touched_since(state, before) == ["packages/lib/lib-0.1-py3-none-any.whl"]
        assert not generations.existed_at(
            state, "packages/lib/lib-0.1-py3-none-any.whl", before + 1
        )
