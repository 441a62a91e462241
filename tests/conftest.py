"""Shared fixtures: a fake upstream index and somewhere to build distributions.

Other test modules add their own fixtures here (coordinate with the owner).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .distbuilder import make_tiny_backend_wheel
from .fakeindex import FakeIndex


@pytest.fixture
def fake_index() -> Iterator[FakeIndex]:
    """A started, empty FakeIndex (JSON + HTML, PEP 658, ranges); stopped afterwards."""
    with FakeIndex() as index:
        yield index


@pytest.fixture
def dists(tmp_path: Path) -> Path:
    """A directory for the distributions a test builds."""
    path = tmp_path / "dists"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def tiny_backend_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tinybackend-1.0-py3-none-any.whl: add it to an index that serves our sdists."""
    return make_tiny_backend_wheel(tmp_path_factory.mktemp("tinybackend"))
