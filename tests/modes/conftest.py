"""Fixtures shared by the mode tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..fakeindex import FakeIndex
from ..helpers import sdist, wheel


@pytest.fixture
def small(fake_index: FakeIndex, dists: Path, tiny_backend_wheel: Path) -> FakeIndex:
    fake_index.add(tiny_backend_wheel)
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib>=1"])
    sdist(fake_index, dists, "app", "1.0", requires_dist=["lib>=1"])
    wheel(fake_index, dists, "lib", "1.0")
    wheel(fake_index, dists, "lib", "2.0")
    return fake_index
