"""Resolution per env: the traps morgan falls into, against a fake upstream."""

from __future__ import annotations

import pytest

from morgan_like.errors import ProjectNotFound, ResolutionError

from ..helpers import env, sdist, wheel


def test_requires_python_gives_each_env_its_own_version(fake_index, dists, res):
    wheel(fake_index, dists, "alpha", "1.0", requires_python=">=3.6")
    wheel(fake_index, dists, "alpha", "2.0", requires_python=">=3.8")
    assert res.pins(env("old", "3.7.16"), "alpha") == {"alpha": "1.0"}
    assert res.pins(env("new", "3.12.1"), "alpha") == {"alpha": "2.0"}


def test_two_extras_at_once_keep_both_dependency_sets(fake_index, dists, res):
    wheel(
        fake_index,
        dists,
        "beta",
        "1.0",
        provides_extra=["x", "y"],
        requires_dist=['gamma; extra == "x"', 'delta; extra == "y"', "base"],
    )
    for name in ("gamma", "delta", "base"):
        wheel(fake_index, dists, name, "1.0")
    pins = res.pins(env("e", "3.12.1"), "beta[x,y]")
    assert pins == {"beta": "1.0", "gamma": "1.0", "delta": "1.0", "base": "1.0"}
    assert res.pins(env("e", "3.12.1"), "beta[x]").keys() == {"beta", "gamma", "base"}


def test_markers_evaluate_against_the_env(fake_index, dists, res):
    wheel(
        fake_index,
        dists,
        "app",
        "1.0",
        requires_dist=['compat; python_version < "3.8"', 'winonly; sys_platform == "win32"'],
    )
    wheel(fake_index, dists, "compat", "1.0")
    wheel(fake_index, dists, "winonly", "1.0")
    assert res.pins(env("old", "3.7.16"), "app").keys() == {"app", "compat"}
    assert res.pins(env("new", "3.12.1"), "app").keys() == {"app"}


def test_yanked_excluded_unless_pinned_exactly(fake_index, dists, res):
    wheel(fake_index, dists, "yan", "1.0")
    wheel(fake_index, dists, "yan", "2.0", yanked="broken build")
    e = env("e", "3.12.1")
    assert res.pins(e, "yan") == {"yan": "1.0"}
    assert res.pins(e, "yan>=1") == {"yan": "1.0"}
    assert res.pins(e, "yan==2.0") == {"yan": "2.0"}


def test_prerelease_rules_follow_pip(fake_index, dists, res):
    wheel(fake_index, dists, "onlypre", "1.0b1")
    wheel(fake_index, dists, "mixed", "1.0")
    wheel(fake_index, dists, "mixed", "2.0rc1")
    e = env("e", "3.12.1")
    assert res.pins(e, "onlypre") == {"onlypre": "1.0b1"}
    assert res.pins(e, "mixed") == {"mixed": "1.0"}
    assert res.pins(e, "mixed>=2.0rc1") == {"mixed": "2.0rc1"}
    assert res.pins(e, "mixed", pre=True) == {"mixed": "2.0rc1"}


def test_prereleases_count_only_usable_final_releases(fake_index, dists, res):
    """PEP 440 as pip applies it: prereleases are taken when no final release is usable
    in this env, even where finals exist for other Pythons or are yanked.  Candidates
    are worked out lazily, version by version: the rule must still see every version."""
    wheel(fake_index, dists, "later", "1.0", requires_python=">=3.13")
    wheel(fake_index, dists, "later", "2.0b1")
    wheel(fake_index, dists, "yanked", "1.0", yanked="broken")
    wheel(fake_index, dists, "yanked", "1.1rc1")
    e = env("e", "3.12.1")
    assert res.pins(e, "later") == {"later": "2.0b1"}
    assert res.pins(env("new", "3.13.0"), "later") == {"later": "1.0"}
    assert res.pins(e, "yanked") == {"yanked": "1.1rc1"}
    assert res.pins(e, "yanked==1.0") == {"yanked": "1.0"}


def test_malformed_requires_dist_line_is_reported_and_skipped(fake_index, dists, res):
    wheel(fake_index, dists, "bad", "1.0", requires_dist=["good1", "oops >>> 1", "good2>=1"])
    wheel(fake_index, dists, "good1", "1.0")
    wheel(fake_index, dists, "good2", "1.0")
    result = res.resolve(env("e", "3.12.1"), "bad")
    assert {str(n) for n in result.pins} == {"bad", "good1", "good2"}
    assert any("oops" in p for p in result.problems)


def test_conflict_message_names_both_sides_and_the_env(fake_index, dists, res):
    wheel(fake_index, dists, "c1", "1.0", requires_dist=["shared<2"])
    wheel(fake_index, dists, "c2", "1.0", requires_dist=["shared>=2"])
    wheel(fake_index, dists, "shared", "1.0")
    wheel(fake_index, dists, "shared", "2.0")
    with pytest.raises(ResolutionError) as info:
        res.resolve(env("legacy", "3.7.16"), "c1", "c2")
    text = str(info.value)
    assert "env 'legacy'" in text
    assert "c1 1.0 depends on shared<2" in text
    assert "c2 1.0 depends on shared>=2" in text


def test_no_version_for_env_explains_requires_python(fake_index, dists, res):
    wheel(fake_index, dists, "modern", "3.0", requires_python=">=3.10")
    with pytest.raises(ResolutionError) as info:
        res.resolve(env("legacy", "3.7.16"), "modern")
    assert "3.0 requires Python >=3.10" in str(info.value)


def test_missing_project_names_the_chain(fake_index, dists, res):
    wheel(fake_index, dists, "top", "1.0", requires_dist=["middle"])
    wheel(fake_index, dists, "middle", "1.0", requires_dist=["ghost"])
    with pytest.raises(ProjectNotFound) as info:
        res.resolve(env("e", "3.12.1"), "top")
    assert "ghost" in str(info.value)
    assert "top 1.0 -> middle 1.0 -> ghost" in str(info.value)


def test_tags_decide_candidates(fake_index, dists, res):
    wheel(fake_index, dists, "native", "2.0", tag="cp313-cp313t-manylinux_2_17_x86_64")
    wheel(fake_index, dists, "native", "1.0", tag="cp38-abi3-manylinux_2_17_x86_64")
    # 2.0 has only a free-threaded wheel: a normal 3.13 env must fall back to 1.0.
    assert res.pins(env("e", "3.13.0"), "native") == {"native": "1.0"}
    assert res.pins(env("ft", "3.13.0", free_threaded="true"), "native") == {"native": "2.0"}


def test_unmatched_top_level_requirement_is_explained_once(fake_index, dists, res):
    wheel(fake_index, dists, "modern", "3.0", requires_python=">=3.10")
    with pytest.raises(ResolutionError) as info:
        res.resolve(env("legacy", "3.7.16"), "modern")
    # The whole text: the reason once, before the cause (it used to come twice).
    assert str(info.value) == (
        "env 'legacy' (Python 3.7.16, linux x86_64): cannot resolve the requirements.\n"
        "  no version of modern satisfies (any) (available: 3.0); 3.0 requires Python >=3.10\n"
        "  The conflict is caused by:\n"
        "    the config requests modern\n"
        "  Hint: loosen one of these requirements, or give this env its own Python version."
    )


def test_prefer_binary_takes_the_newest_version_with_a_wheel_for_the_env(fake_index, dists, res):
    wheel(fake_index, dists, "sci", "1.0", tag="cp312-cp312-manylinux_2_17_x86_64")
    sdist(fake_index, dists, "sci", "1.0")
    sdist(fake_index, dists, "sci", "2.0")
    wheel(fake_index, dists, "sci", "2.0", tag="cp312-cp312-manylinux_2_28_x86_64")
    linux = env("lin", "3.12.1")
    result = res.resolve(linux, "sci")
    assert {n: str(c.version) for n, c in result.pins.items()} == {"sci": "1.0"}
    assert result.sdist_only == {}
    assert res.pins(linux, "sci", prefer_binary=False) == {"sci": "2.0"}
    newest = res.resolve(linux, "sci", prefer_binary=False)
    assert newest.sdist_only == {
        "sci": "wheels exist only for manylinux_2_28 and newer; this env allows up to 2.17: "
        "set `manylinux = 2.28` if the target has glibc 2.28 or newer, "
        "or run `morgan-like generate_env` on the target"
    }
    # A newer glibc floor lets the newest wheel in.
    assert res.pins(env("lin228", "3.12.1", manylinux="2.28"), "sci") == {"sci": "2.0"}


def test_sdist_only_report_names_the_macos_floor_and_python(fake_index, dists, res):
    wheel(fake_index, dists, "mac", "1.0", tag="cp312-cp312-macosx_11_0_x86_64")
    sdist(fake_index, dists, "mac", "1.0")
    wheel(fake_index, dists, "newpy", "1.0", tag="cp313-cp313-manylinux_2_17_x86_64")
    sdist(fake_index, dists, "newpy", "1.0")
    sdist(fake_index, dists, "pure", "1.0")
    mac = env(
        "mac", "3.12.1", sys_platform="darwin", platform_system="Darwin", platform_machine="x86_64"
    )
    assert (
        res.resolve(mac, "mac")
        .sdist_only["mac"]
        .startswith(
            "wheels exist only for macosx_11_0 and newer; this env allows up to 10.12: set `macos = 11.0`"
        )
    )
    linux = res.resolve(env("lin", "3.12.1"), "newpy", "pure").sdist_only
    assert linux == {
        "newpy": "no wheel for this env's Python (3.12.1); wheels exist for cp313-cp313",
        "pure": "no wheels are published for this version",
    }


def test_conflict_explanation_collapses_rejected_versions_into_ranges(fake_index, dists, res):
    for minor in range(40):
        wheel(fake_index, dists, "boto", f"1.{minor}", requires_dist=["urllib3<2"])
    wheel(fake_index, dists, "urllib3", "1.26")
    wheel(fake_index, dists, "urllib3", "2.0")
    with pytest.raises(ResolutionError) as info:
        res.resolve(env("e", "3.12.1"), "boto", "urllib3>=2")
    text = str(info.value)
    assert len(text.splitlines()) < 30, text
    assert "boto 1.0 … 1.39 (40 versions) depend on urllib3<2" in text
    assert "the config requests urllib3>=2" in text


def test_constraints_narrow_versions_but_add_no_project(fake_index, dists, res):
    from packaging.specifiers import SpecifierSet

    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib"])
    for version in ("1.0", "2.0", "3.0"):
        wheel(fake_index, dists, "lib", version)
    wheel(fake_index, dists, "unrelated", "1.0")
    constraints = {"lib": SpecifierSet("<3"), "unrelated": SpecifierSet("==1.0")}
    assert res.pins(env("e", "3.12.1"), "app", constraints=constraints) == {
        "app": "1.0",
        "lib": "2.0",
    }


def test_hashes_choose_the_files_and_an_unknown_hash_is_an_error(fake_index, dists, res):
    import hashlib

    good = wheel(fake_index, dists, "hashed", "1.0")
    wheel(fake_index, dists, "hashed", "2.0")
    sha = hashlib.sha256(good.read_bytes()).hexdigest()
    result = res.resolve(env("e", "3.12.1"), "hashed", hashes={"hashed": frozenset({sha})})
    assert [f.filename for f in result.pins["hashed"].files] == [good.name]
    with pytest.raises(
        ResolutionError, match=f"--hash=sha256:{'0' * 64} of the requirement on hashed"
    ):
        res.resolve(env("e", "3.12.1"), "hashed", hashes={"hashed": frozenset({"0" * 64})})


def test_an_envs_usable_files_of_a_page_are_worked_out_once_per_run(
    fake_index, dists, res, monkeypatch
):
    """The many small build-requirement resolutions share the filtering of each page
    (the run's PageViews, carried by every copy of its ResolveOptions), and a version's
    files are filtered only when the resolver gets to that version."""
    from morgan_like.resolve import resolver
    from morgan_like.resolve.records import PageViews

    wheel(fake_index, dists, "alpha", "1.0", requires_python=">=3.6")
    wheel(fake_index, dists, "alpha", "2.0", requires_python=">=3.8")
    wheel(fake_index, dists, "alpha", "0.9", requires_python=">=3.6")
    calls: list[tuple[str, str]] = []
    original = resolver.usable_files

    def counting(files, environment, file_filter):
        calls.extend((environment.name, str(f.version)) for f in files)
        return original(files, environment, file_filter)

    monkeypatch.setattr(resolver, "usable_files", counting)
    views = PageViews()
    for _ in range(3):
        # Equal envs made anew each time: the cache is keyed by value, not by object.
        old, new = env("old", "3.7.16"), env("new", "3.12.1")
        assert res.pins(old, "alpha", views=views) == {"alpha": "1.0"}
        assert res.pins(new, "alpha", views=views) == {"alpha": "2.0"}
    # 0.9 is never filtered: a newer version was usable in both envs.
    assert sorted(calls) == [("new", "2.0"), ("old", "1.0"), ("old", "2.0")]


def test_page_views_make_again_for_another_page_of_the_same_name() -> None:
    """Keyed by project name, but an answer made from one page object never stands for
    another (a second Finder's page of that name may list other files)."""
    from morgan_like.dists.links import ProjectPage
    from morgan_like.resolve.candidates import FileFilter
    from morgan_like.resolve.records import PageViews

    views = PageViews()
    first, second = ProjectPage(name="alpha"), ProjectPage(name="alpha")
    assert views.versions(first) == ({}, [])
    environment = env("e", "3.12.1")
    usable = views.usable(first, environment, FileFilter())
    usable["marker"] = []  # type: ignore[index]
    assert views.usable(first, env("e", "3.12.1"), FileFilter()) is usable
    assert views.usable(second, environment, FileFilter()) == {}


def test_resolve_options_are_complete_once_made() -> None:
    """A run's options are made whole (hooks included) and never changed after."""
    import dataclasses

    from morgan_like.resolve.resolver import ResolveOptions

    options = ResolveOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.pre = True  # type: ignore[misc]
    assert dataclasses.replace(options, pre=True).views is options.views
