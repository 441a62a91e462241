"""Fixtures of the tree tests: an empty tree, and the distributions the writer tests place."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..distbuilder import make_sdist, make_wheel


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    path = tmp_path / "tree"
    path.mkdir()
    return path


@pytest.fixture
def built(dists: Path) -> dict[str, Path]:
    return {
        "w10": make_wheel(dists, "Foo.Bar", "1.0", requires_python=">=3.8"),
        "s10": make_sdist(dists, "Foo.Bar", "1.0"),
        "w20": make_wheel(dists, "Foo.Bar", "2.0"),
        "local": make_wheel(dists, "Foo.Bar", "1.5+local.1"),
        "other": make_wheel(dists, "other", "0.1"),
    }
