"""A no-op re-run replays the last plan: only when the config and every page it read are unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from morgan_like.cli import main

from ..fakeindex import FakeIndex
from ..helpers import wheel
from .test_bundle import mirror, write_config


def _no_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("resolved although nothing changed")

    monkeypatch.setattr("morgan_like.modes.bundle.resolve_all", refuse)


def test_noop_rerun_replays_the_plan_without_resolving(
    small: FakeIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    before = sorted(p.name for p in (root / "packages").rglob("*") if p.is_file())
    _no_resolution(monkeypatch)
    small.reset_log()
    capsys.readouterr()
    assert main(["mirror", "-i", str(root), "-I", small.url, "-v"]) == 0
    assert "the last plan is used" in capsys.readouterr().out
    assert sorted(p.name for p in (root / "packages").rglob("*") if p.is_file()) == before
    gets = [r for r in small.requests if r.method == "GET"]
    assert gets and all(r.status == 304 for r in gets)
    # A replayed run keeps what the plan depends on: the next one checks the same pages.
    small.reset_log()
    assert mirror(root, small) == 0
    assert sorted(r.path for r in small.requests) == sorted(r.path for r in gets)


def test_a_changed_page_or_config_resolves_again(
    small: FakeIndex, tmp_path: Path, dists: Path
) -> None:
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    wheel(small, dists, "lib", "3.0")  # a page the plan read changed
    assert mirror(root, small) == 0
    assert (root / "packages" / "lib" / "lib-3.0-py3-none-any.whl").exists()
    write_config(root, "app =\nlib = <3\n")  # the config changed
    assert mirror(root, small, "--prune") == 0
    assert not (root / "packages" / "lib" / "lib-3.0-py3-none-any.whl").exists()


def test_a_failed_run_keeps_no_plan(small: FakeIndex, tmp_path: Path, dists: Path) -> None:
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    wheel(small, dists, "lib", "3.0")
    small.fail("lib-3.0-py3-none-any.whl", times=100, status=404)
    assert mirror(root, small) == 1
    assert not (root / ".morgan-like" / "plan.json").exists()
