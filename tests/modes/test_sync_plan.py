"""The sync plan, the deletion guard, the file rules and the [sync] config: pure logic."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from morgan_like.config.syncconf import load_sync_config
from morgan_like.dists.links import RemoteFile
from morgan_like.dists.selection import FileSelection
from morgan_like.dists.serials import SerialList
from morgan_like.errors import ConfigError
from morgan_like.modes.sync_plan import (
    FileRules,
    NameFilter,
    default_max_deletions,
    deletion_refusal,
    make_plan,
)

from ..helpers import env, ini_env_block


def _listed(serials: dict[str, int], last: int | None = None, malformed: int = 0) -> SerialList:
    return SerialList("simple", serials, last, malformed)  # type: ignore[arg-type]


def test_plan_adds_updates_removes_and_redoes_what_was_left() -> None:
    listed = _listed({"a": 5, "b": 7, "c": 3, "d": 9}, last=10)
    local = {"a": 5, "b": 6, "gone": 2, "c": 3, "d": None}
    plan = make_plan(listed, local, NameFilter(), left={"c": 3})
    assert dict(plan.add) == {}
    assert dict(plan.update) == {"b": 7, "c": 3, "d": 9}
    assert plan.remove == ("gone",)
    assert plan.unchanged == 1 and plan.target == 10
    # No index serial: the highest project serial is the target.
    assert make_plan(_listed({"x": 4, "y": 8}), {}, NameFilter()).target == 8


def test_excluded_projects_are_neither_fetched_nor_kept() -> None:
    names = NameFilter((re.compile("test-", re.I),))
    plan = make_plan(_listed({"test-a": 1, "b": 1}), {"test-old": 1}, names)
    assert dict(plan.add) == {"b": 1}
    assert plan.remove == ("test-old",) and plan.excluded == 1


def test_deletion_guard() -> None:
    local = {f"p{i}": 1 for i in range(2000)}
    assert default_max_deletions(2000) == 20 and default_max_deletions(5) == 10
    listed = _listed({f"p{i}": 1 for i in range(1979)})
    plan = make_plan(listed, local, NameFilter())
    refusal = deletion_refusal(plan, listed, len(local), None)
    assert refusal is not None and "--max-deletions 21" in refusal
    assert deletion_refusal(plan, listed, len(local), 21) is None
    empty = _listed({})
    message = deletion_refusal(make_plan(empty, local, NameFilter()), empty, 2000, 10**9)
    assert message is not None and "empty" in message
    # A new, empty tree with an empty upstream is no deletion at all.
    assert deletion_refusal(make_plan(empty, {}, NameFilter()), empty, 0, None) is None


def test_file_rules() -> None:
    files = [
        RemoteFile("lib-1.0-py3-none-any.whl", "u"),
        RemoteFile("lib-2.0rc1-py3-none-any.whl", "u"),
        RemoteFile("lib-1.0-cp312-cp312-win_amd64.whl", "u"),
        RemoteFile("lib-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "u"),
        RemoteFile("lib-1.0.tar.gz", "u"),
    ]
    rules = FileRules((re.compile("lib"),), (env("l", "3.12.1"),))
    assert [f.filename for f in rules.keep("lib", files)] == [
        "lib-1.0-py3-none-any.whl",
        "lib-1.0-cp312-cp312-manylinux_2_17_x86_64.whl",
        "lib-1.0.tar.gz",
    ]
    assert len(FileRules().keep("lib", files)) == 5
    assert len(FileRules((re.compile("other"),)).keep("lib", files)) == 5


def test_sync_config_keys(tmp_path: Path) -> None:
    path = tmp_path / "sync.ini"
    path.write_text(
        "[mirror]\nindex-url = https://example.org/simple/\n\n"
        "[sync]\nexclude =\n    ^test-\n    -nightly$\nprerelease-exclude = numpy\n"
        "index-only = yes\nmax-deletions = 50\nserial-source = local-json\nworkers = 8\n\n"
        + ini_env_block("l", "3.12.1")
    )
    config = load_sync_config(path)
    assert config.excludes == ("^test-", "-nightly$")
    assert config.prerelease_excludes == ("numpy",)
    assert (config.index_only, config.max_deletions, config.serial_source, config.workers) == (
        True,
        50,
        "local-json",
        8,
    )
    assert config.index_url == "https://example.org/simple/"
    assert [e.name for e in config.environments] == ["l"]


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("[sync]\nserial-source = ftp\n", "[sync] serial-source", "is not known"),
        ("[sync]\nmax-deletions = -1\n", "[sync] max-deletions", "whole number"),
        ("[sync]\nworkers = 0\n", "[sync] workers", "whole number >= 1"),
        ("[sync]\nindex-only = maybe\n", "[sync] index-only", "not a boolean"),
        ("[synk]\n", "[synk]", "did you mean [sync]"),
        ("[mirror]\nbinary-only = true\n", "[mirror] binary-only", "sync does not read it"),
        (
            ini_env_block("l", "3.12.1", **{"binary-only": "true"}),
            "[env.l] binary-only",
            "sync does not read it",
        ),
    ],
)
def test_sync_config_errors(tmp_path: Path, text: str, where: str, problem: str) -> None:
    path = tmp_path / "sync.ini"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_sync_config(path)
    message = str(caught.value)
    assert f"{path}:" in message and where in message and problem in message


def test_bundle_sections_are_ignored_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "morgan.ini"
    path.write_text("[requirements]\nrequests = >=2\n")
    assert "sync ignores it" in load_sync_config(path).warnings[0]


# -- a curated slice: the allowlist, the file selection, specifiers, keep-latest ---------


def _page(*names: str, yanked: tuple[str, ...] = (), sizes: dict[str, int] | None = None):
    sizes = sizes or {}
    return [RemoteFile(n, "u", yanked=n in yanked, size=sizes.get(n)) for n in names]


LIB = _page(
    "lib-1.0.tar.gz",
    "lib-1.0-py3-none-any.whl",
    "lib-1.1.tar.gz",
    "lib-1.1-cp312-cp312-win_amd64.whl",
    "lib-2.0.tar.gz",
    "lib-2.1.dev1.tar.gz",
    "lib-3.0b1.tar.gz",
    "lib-2.2.tar.gz",
    "lib-2.2-py3-none-any.whl",
    "lib-oops.tar.gz",
    yanked=("lib-2.2.tar.gz", "lib-2.2-py3-none-any.whl"),
)


def _versions(rules: FileRules, spec: str | None = None, files=LIB) -> list[str]:
    specifier = None if spec is None else SpecifierSet(spec)
    return [str(v) for v in rules.releases("lib", files, specifier)]


def test_name_filter_allow() -> None:
    names = NameFilter((re.compile("lib-x"),), allow=frozenset({"lib", "lib-x"}))
    assert [n for n in ("lib", "lib-x", "other") if names.wanted(n)] == ["lib"]
    plan = make_plan(_listed({"lib": 2, "other": 3}), {"gone": 1, "lib": 1}, names)
    assert dict(plan.update) == {"lib": 2} and plan.remove == ("gone",)
    assert NameFilter().wanted("anything")


def test_releases_newest_first_without_a_specifier() -> None:
    # Today's rule: prereleases kept; a release whose every file is yanked is not one.
    assert _versions(FileRules()) == ["3.0b1", "2.1.dev1", "2.0", "1.1", "1.0"]
    assert _versions(FileRules(keep_latest=2)) == ["3.0b1", "2.1.dev1"]
    no_pre = FileRules((re.compile("lib"),), keep_latest=2)
    assert _versions(no_pre) == ["2.0", "1.1"]


def test_releases_with_a_specifier_follow_pep_440() -> None:
    rules = FileRules()
    assert _versions(rules, "") == ["2.0", "1.1", "1.0"]  # a bare name: finals only
    assert _versions(rules, ">=1.1") == ["2.0", "1.1"]
    assert _versions(rules, ">=3.0b1") == ["3.0b1"]  # the specifier names a prerelease
    assert _versions(rules, ">2.0") == ["3.0b1", "2.1.dev1"]  # no final matches
    # prerelease-exclude wins over PEP 440's "no final matches".
    assert _versions(FileRules((re.compile("lib"),)), ">2.0") == []
    assert _versions(FileRules(keep_latest=2), "~=1.0") == ["1.1", "1.0"]


def test_releases_after_the_selection_and_env_tags() -> None:
    windows_only = _page("lib-1.0-cp312-cp312-win_amd64.whl", "lib-0.9.tar.gz")
    no_windows = FileSelection(exclude_platforms=frozenset({"windows"}))
    assert _versions(FileRules(selection=no_windows), files=windows_only) == ["0.9"]
    wheels = FileRules(selection=FileSelection(package_types=frozenset({"wheel"})))
    assert _versions(wheels) == ["1.1", "1.0"]  # 2.2's wheel is yanked
    linux = FileRules(environments=(env("l", "3.12.1"),))
    assert _versions(linux, files=windows_only) == ["0.9"]
    dev = FileSelection(exclude_releases=(re.compile(r".*\.dev\d+$"),))
    assert _versions(FileRules(selection=dev)) == ["3.0b1", "2.0", "1.1", "1.0"]


def test_keep_is_unchanged_for_a_full_mirror() -> None:
    # No keep-latest, no specifier: yanked releases and unreadable names stay.
    assert FileRules().keep("lib", LIB) == LIB


def test_keep_narrows_to_the_kept_releases() -> None:
    rules = FileRules(keep_latest=1, specifiers={"lib": SpecifierSet("<2")})
    assert [f.filename for f in rules.keep("lib", LIB)] == [
        "lib-1.1.tar.gz",
        "lib-1.1-cp312-cp312-win_amd64.whl",
    ]
    # Another project is not narrowed by lib's specifier, only by keep-latest.
    other = [RemoteFile(f.filename.replace("lib", "other"), "u") for f in LIB[:4]]
    assert [f.filename for f in rules.keep("other", other)] == [
        "other-1.1.tar.gz",
        "other-1.1-cp312-cp312-win_amd64.whl",
    ]
    # A kept release keeps its yanked files beside the others.
    mixed = _page("lib-3.0.tar.gz", "lib-3.0-py3-none-any.whl", yanked=("lib-3.0.tar.gz",))
    assert FileRules(keep_latest=1).keep("lib", mixed) == mixed


def test_left_out_names_what_max_file_size_cost() -> None:
    files = _page(
        "lib-1.0.tar.gz",
        "lib-2.0.tar.gz",
        "lib-2.0-cp312-cp312-win_amd64.whl",
        "lib-2.0-py3-none-any.whl",
        sizes={
            "lib-1.0.tar.gz": 90_000_000,
            "lib-2.0.tar.gz": 73_100_000,
            "lib-2.0-cp312-cp312-win_amd64.whl": 80_000_000,
            "lib-2.0-py3-none-any.whl": 1000,
        },
    )
    selection = FileSelection(exclude_platforms=frozenset({"windows"}), max_file_size=50_000_000)
    rules = FileRules(selection=selection, keep_latest=1)
    assert [f.filename for f in rules.keep("lib", files)] == ["lib-2.0-py3-none-any.whl"]
    # Not the windows wheel (left out by choice), nor 1.0 (pushed out by keep-latest).
    assert [(f.filename, why) for f, why in rules.left_out("lib", files)] == [
        ("lib-2.0.tar.gz", "larger than max-file-size 50 MB (73.1 MB)")
    ]
    assert FileRules(keep_latest=1).left_out("lib", files) == []
