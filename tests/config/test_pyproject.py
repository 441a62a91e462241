"""pyproject.toml sources: PEP 735 dependency groups and [build-system] requires."""

from __future__ import annotations

import pytest

from .support import ENV, error, load, reqs, write

GROUPS = """\
[project]
name = "app"
version = "1"
dependencies = ["attrs"]

[dependency-groups]
Dev_Tools = ["ruff", {include-group = "test"}, {include-group = "Lint"}]
test = ["pytest>=8", "coverage[toml]; python_version < '3.13'"]
lint = ["mypy", {include-group = "TEST"}]
docs = ["sphinx"]
"""


def test_groups_selected_by_normalised_name_with_includes_once(tmp_path):
    path = write(tmp_path, GROUPS, "app/pyproject.toml")
    config = load(tmp_path, ENV + "[requirements_from]\ngroups = app/pyproject.toml:dev-tools\n")
    # Only the groups: as pip install --group, not the project's dependencies.
    assert reqs(config) == ["ruff", "pytest>=8", 'coverage[toml]; python_version < "3.13"', "mypy"]
    assert config.requirements[0].source == f"{path} [dependency-groups] Dev_Tools"
    assert config.requirements[1].source == f"{path} [dependency-groups] test"
    assert config.build_requirements == ()  # the project itself is not installed
    assert config.warnings == ()


def test_groups_several_and_default_path(tmp_path):
    write(tmp_path, GROUPS, "pyproject.toml")
    config = load(tmp_path, ENV + "[requirements_from]\ngroups =\n    docs,test\n    lint\n")
    assert reqs(config) == [
        "sphinx",
        "pytest>=8",
        'coverage[toml]; python_version < "3.13"',
        "mypy",  # test, included by lint, is already there
    ]


def test_groups_without_project_table(tmp_path):
    write(tmp_path, '[dependency-groups]\nci = ["tox"]\n', "tools/pyproject.toml")
    config = load(tmp_path, ENV + "[requirements_from]\ngroups = tools/pyproject.toml:ci\n")
    assert reqs(config) == ["tox"]


@pytest.mark.parametrize(
    ("text", "ref", "problem", "hint", "key"),
    [
        (GROUPS, "p.toml:nope", "no dependency group 'nope'", "Dev_Tools, docs, lint, test", None),
        (
            '[dependency-groups]\na = [{include-group = "b"}]\n',
            "p.toml:a",
            "no dependency group 'b' (included by 'a')",
            "groups defined: a",
            None,
        ),
        (
            '[dependency-groups]\na = [{include-group = "b"}]\nb = [{include-group = "A"}]\n',
            "p.toml:a",
            "dependency group 'A' includes itself (a -> b -> A)",
            "include-group",
            "b",
        ),
        (
            '[dependency-groups]\nDev = ["x"]\ndev = ["y"]\n',
            "p.toml:dev",
            "groups 'Dev' and 'dev' have the same normalised name",
            "keep one",
            "dev",
        ),
        (
            '[dependency-groups]\na = [{include = "b"}]\n',
            "p.toml:a",
            "neither a requirement nor an include",
            "include-group",
            "a[0]",
        ),
        ('[dependency-groups]\na = ["x>="]\n', "p.toml:a", "invalid requirement", None, "a[0]"),
        ('[dependency-groups]\na = ["./x"]\n', "p.toml:a", "paths and URLs", "name", "a[0]"),
        ('[dependency-groups]\na = "x"\n', "p.toml:a", "must be a list", None, "a"),
        ("[dependency-groups]\na = [1]\n", "p.toml:a", "1 is not a string", None, "a[0]"),
        ("dependency-groups = 1\n", "p.toml:a", "must be a table of lists", "dev", None),
        ("[dependency-groups\n", "p.toml:a", "invalid TOML", None, None),
    ],
)
def test_group_errors_name_the_file_and_group(tmp_path, text, ref, problem, hint, key):
    path = write(tmp_path, text, "p.toml")
    err = error(tmp_path, ENV + f"[requirements_from]\ngroups = {ref}\n")
    assert err.file == str(path)
    assert problem in err.problem
    assert hint is None or hint in err.hint
    assert err.key == key
    if "invalid TOML" not in problem:
        assert err.section == "dependency-groups"


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("app/pyproject.toml", "'app/pyproject.toml' is not a dependency group name"),
        ("app/pyproject.toml:", "names no group"),
        ("app/pyproject.toml:-dev", "'-dev' is not a dependency group name"),
    ],
)
def test_group_reference_errors(tmp_path, ref, problem):
    err = error(tmp_path, ENV + f"[requirements_from]\ngroups = {ref}\n")
    assert (err.file, err.section, err.key, err.line) == (
        str(tmp_path / "morgan.ini"),
        "requirements_from",
        "groups",
        6,
    )
    assert problem in err.problem
    assert "groups = app/pyproject.toml:dev,test" in err.hint


def test_group_file_missing(tmp_path):
    err = error(tmp_path, ENV + "[requirements_from]\ngroups = nope/pyproject.toml:dev\n")
    assert err.key == "groups"
    assert str(tmp_path / "nope" / "pyproject.toml") in err.problem


def test_unnamed_groups_are_warned_about_once(tmp_path):
    write(tmp_path, GROUPS, "app/pyproject.toml")
    config = load(
        tmp_path,
        ENV + "[requirements_from]\npyproject =\n    app/pyproject.toml\n    app/pyproject.toml\n",
    )
    assert config.warnings == (
        f"{tmp_path / 'app' / 'pyproject.toml'} declares dependency groups (Dev_Tools, test, "
        "lint, docs) and none is bundled: groups are bundled only when named, e.g. "
        "[requirements_from] groups = app/pyproject.toml:Dev_Tools",
    )
    named = load(
        tmp_path,
        ENV
        + "[requirements_from]\npyproject = app/pyproject.toml\ngroups = app/pyproject.toml:docs\n",
    )
    assert named.warnings == ()
    assert reqs(named) == ["attrs", "sphinx"]


# --- [build-system] requires --------------------------------------------------------------------


def test_build_requirements_of_a_listed_project(tmp_path):
    path = write(
        tmp_path,
        """\
        [build-system]
        requires = ["hatchling>=1.20", "hatch-vcs; python_version >= '3.13'"]
        build-backend = "hatchling.build"

        [project]
        name = "app"
        version = "1"
        dependencies = ["attrs"]
        """,
        "app/pyproject.toml",
    )
    config = load(tmp_path, ENV + "[requirements_from]\npyproject = app/pyproject.toml\n")
    assert reqs(config) == ["attrs"]  # build requirements are not requirements
    assert [str(r.requirement) for r in config.build_requirements] == [
        "hatchling>=1.20",
        'hatch-vcs; python_version >= "3.13"',
    ]
    assert config.build_requirements[0].source == f"{path} [build-system] requires"
    (linux,) = config.environments
    assert [str(r) for r in config.build_requirements_for(linux)] == ["hatchling>=1.20"]


def test_build_requirements_default_without_build_system(tmp_path):
    write(tmp_path, '[project]\nname = "app"\nversion = "1"\n', "pyproject.toml")
    config = load(
        tmp_path, ENV + "[requirements]\nidna =\n[requirements_from]\npyproject = pyproject.toml\n"
    )
    assert [str(r.requirement) for r in config.build_requirements] == [
        "setuptools>=40.8.0",
        "wheel",
    ]
    assert "no [build-system]" in config.build_requirements[0].source


def test_build_requirements_empty_list_is_none(tmp_path):
    write(
        tmp_path,
        '[build-system]\nrequires = []\n[project]\nname = "app"\nversion = "1"\ndependencies = ["x"]\n',
        "pyproject.toml",
    )
    config = load(tmp_path, ENV + "[requirements_from]\npyproject = pyproject.toml\n")
    assert config.build_requirements == ()


@pytest.mark.parametrize(
    ("build_system", "problem", "key"),
    [
        ('build-backend = "x"', "[build-system] has no requires", None),
        ('requires = ["setuptools>="]', "invalid requirement", "requires[0]"),
        ('requires = ["x @ https://example.com/x.zip"]', "paths and URLs", "requires[0]"),
        ('requires = "setuptools"', "must be a list of strings", "requires"),
    ],
)
def test_build_requirement_errors(tmp_path, build_system, problem, key):
    path = write(
        tmp_path,
        f'[build-system]\n{build_system}\n[project]\nname = "app"\nversion = "1"\n',
        "pyproject.toml",
    )
    err = error(
        tmp_path, ENV + "[requirements]\nidna =\n[requirements_from]\npyproject = pyproject.toml\n"
    )
    assert err.file == str(path)
    assert err.section == "build-system"
    assert err.key == key
    assert problem in err.problem
