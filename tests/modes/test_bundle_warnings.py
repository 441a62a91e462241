"""Warnings of bundle mode a user must read before shipping: binary first falling back
far, build requirements the target must compile too, an upstream without validators.

Each is printed by a real ``mirror`` run against the fake upstream, and again by
the no-op re-run that replays the kept plan.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.index.upstream import Upstream

from ..distbuilder import make_sdist, make_wheel
from ..fakeindex import FakeIndex
from ..helpers import Resolving, env, sdist, wheel
from .test_bundle import write_config


def _run(root: Path, index: FakeIndex, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    capsys.readouterr()
    assert main(["mirror", "-i", str(root), "-I", index.url, *extra]) == 0
    captured = capsys.readouterr()
    return captured.out + captured.err


def _at(year: int, month: int = 1) -> datetime:
    return datetime(year, month, 1, tzinfo=timezone.utc)


# -- binary first falling back far ---------------------------------------------------


def _placeholder_and_native(index: FakeIndex, dists: Path, tiny_backend_wheel: Path) -> None:
    """pydantic-core's shape: 0.0.1 a pure placeholder, 2.27.2 wheels only for glibc 2.28."""
    index.add(tiny_backend_wheel)
    wheel(index, dists, "pc", "0.0.1", provides_extra=["x"])
    sdist(index, dists, "pc", "2.27.2")
    wheel(index, dists, "pc", "2.27.2", tag="cp312-cp312-manylinux_2_28_x86_64")


def test_far_fallback_to_another_major_version_warns_per_env_and_on_replay(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys, tiny_backend_wheel: Path
) -> None:
    _placeholder_and_native(fake_index, dists, tiny_backend_wheel)
    root = tmp_path / "bundle"
    write_config(root, "pc =\n", "3.12.1")
    line = (
        "warning: env py3121: pc 0.0.1 picked over 2.27.2 (newest; another major version), "
        "which has no wheel here: wheels exist only for manylinux_2_28 and newer; this env "
        "allows up to 2.17: set `manylinux = 2.28` if the target has glibc 2.28 or newer"
    )
    out = _run(root, fake_index, capsys)
    assert line in out
    assert out.count("picked over") == 1
    # The no-op re-run replays the kept plan and says the same.
    out = _run(root, fake_index, capsys, "-v")
    assert "the last plan is used" in out
    assert line in out


def test_far_fallback_is_recorded_through_extras_and_only_with_binary_first(
    fake_index: FakeIndex, dists: Path, res: Resolving, tiny_backend_wheel: Path
) -> None:
    """``pc[x]`` pins its base with an exact pin; the fallback is still seen."""
    _placeholder_and_native(fake_index, dists, tiny_backend_wheel)
    linux = env("lin", "3.12.1")
    fallback = res.resolve(linux, "pc[x]").fallbacks["pc"]
    assert (str(fallback.picked), str(fallback.newest)) == ("0.0.1", "2.27.2")
    assert fallback.gap == "another major version"
    assert fallback.reason.startswith("wheels exist only for manylinux_2_28 and newer")
    assert res.resolve(linux, "pc", prefer_binary=False).fallbacks == {}
    # A glibc floor the new wheels fit: no fallback at all.
    assert res.resolve(env("lin228", "3.12.1", manylinux="2.28"), "pc").fallbacks == {}


def test_far_fallback_by_age_warns(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys, tiny_backend_wheel: Path
) -> None:
    """Same major version, but the wheel is from a release two years older."""
    fake_index.add(tiny_backend_wheel)
    fake_index.add(make_wheel(dists, "lib", "1.0"), upload_time=_at(2020))
    fake_index.add(make_sdist(dists, "lib", "1.5"), upload_time=_at(2022))
    root = tmp_path / "bundle"
    write_config(root, "lib =\n")
    out = _run(root, fake_index, capsys)
    assert (
        "warning: env py3121: lib 1.0 picked over 1.5 (newest; released 731 days later), "
        "which has no wheel here: no wheels are published for this version"
    ) in out


@pytest.mark.parametrize(
    "times",
    [(_at(2024), _at(2024, 6)), (None, None)],
    ids=["half-a-year-apart", "no-upload-times"],
)
def test_near_fallback_does_not_warn(
    fake_index: FakeIndex,
    dists: Path,
    tmp_path: Path,
    capsys,
    tiny_backend_wheel: Path,
    times: tuple[datetime | None, datetime | None],
) -> None:
    """Same major version and a recent wheel (or no upload times to tell): binary first
    doing its job, not worth a line."""
    fake_index.add(tiny_backend_wheel)
    fake_index.add(make_wheel(dists, "lib", "1.0"), upload_time=times[0])
    fake_index.add(make_sdist(dists, "lib", "1.1"), upload_time=times[1])
    root = tmp_path / "bundle"
    write_config(root, "lib =\n")
    out = _run(root, fake_index, capsys)
    assert (root / "packages" / "lib" / "lib-1.0-py3-none-any.whl").exists()
    assert "picked over" not in out


# -- build requirements the target must compile too ------------------------------------


def test_a_build_requirement_only_as_an_sdist_is_reported_with_what_needs_it(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys, tiny_backend_wheel: Path
) -> None:
    """app and kit have no wheel, so the target builds them; their build requirement
    tool has no wheel either, so the target compiles tool first (maturin for
    pydantic-core).  Both are named, though their one requirement set resolves once."""
    fake_index.add(tiny_backend_wheel)
    for name in ("app", "kit"):
        sdist(fake_index, dists, name, "1.0", build_requires=["tinybackend", "tool"])
    sdist(fake_index, dists, "tool", "2.0")
    root = tmp_path / "bundle"
    write_config(root, "app =\nkit =\n")
    lines = [
        "warning: env py3121: 3 project(s) only as sdists, built on the target:",
        "warning:   app 1.0: no wheels are published for this version",
        "warning:   kit 1.0: no wheels are published for this version",
        "warning:   tool 2.0 (build requirement of app 1.0, kit 1.0): "
        "no wheels are published for this version",
    ]
    out = _run(root, fake_index, capsys)
    assert "\n".join(lines) in out
    assert (root / "packages" / "tool" / "tool-2.0.tar.gz").exists()
    out = _run(root, fake_index, capsys, "-v")
    assert "the last plan is used" in out
    assert "\n".join(lines) in out


# -- an upstream that sends no validators ---------------------------------------------


def test_an_upstream_without_validators_is_warned_once_per_run(
    small: FakeIndex, tmp_path: Path, capsys
) -> None:
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    out = _run(root, small, capsys)
    assert "ETag" not in out
    small.page_validators = False
    line = f"warning: {small.url} sends no ETag or Last-Modified: a re-run fetches every page again"
    for _ in range(2):  # each run says it, once, however many pages it read
        out = _run(root, small, capsys)
        assert out.count("ETag") == 1
        assert line in out


def test_pages_without_validators_are_counted_across_threads(
    fake_index: FakeIndex, dists: Path
) -> None:
    names = [f"p{i}" for i in range(24)]
    for name in names:
        wheel(fake_index, dists, name, "1.0")
    with Upstream(fake_index.url) as upstream:
        upstream.project_page("p0")
        fake_index.page_validators = False
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(upstream.project_page, names[1:]))
        assert upstream.pages_without_validators == (23, 24)
