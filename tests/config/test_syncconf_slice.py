"""A sync config's slice keys: the allowlist, keep-latest, with-dependencies, the file filters."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from morgan_like.config.syncconf import SyncConfig, load_sync_config
from morgan_like.dists.selection import FileSelection
from morgan_like.errors import ConfigError

from ..helpers import env
from .support import ENV, SHA_A, SHA_B, write

FULL = """\
[sync]
projects =
    django ~= 4.2
    # a comment line
    numpy >= 1.24
    fastapi[standard]

    pywin32 ; sys_platform == "win32"     # a marker: only envs where it holds
requirements = reqs/base.txt  tools/pyproject.toml[test]
keep-latest = 3
exclude = ^test-
prerelease-exclude = ^numpy$
exclude-platform =
    windows
    macosx
package-types = bdist_wheel
max-file-size = 50M
exclude-release =
    .*\\.dev\\d+$

"""


def _load(tmp_path: Path, text: str) -> SyncConfig:
    return load_sync_config(write(tmp_path, text))


def _error(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_sync_config(path)
    return info.value


def _files(tmp_path: Path) -> None:
    write(
        tmp_path,
        f"-c constraints.txt\nrequests==2.31.0 --hash=sha256:{SHA_A}\nattrs>=23\n",
        "reqs/base.txt",
    )
    write(tmp_path, f"urllib3<2 --hash=sha256:{SHA_B}\n", "reqs/constraints.txt")
    write(
        tmp_path,
        '[project]\nname = "tool"\nversion = "1"\ndependencies = ["click>=8"]\n'
        '[project.optional-dependencies]\ntest = ["pytest"]\n',
        "tools/pyproject.toml",
    )


def test_every_slice_key(tmp_path: Path) -> None:
    _files(tmp_path)
    config = _load(tmp_path, FULL + ENV)
    assert [(e.name, str(e.requirement.specifier), e.source) for e in config.allowlist] == [
        ("django", "~=4.2", "morgan.ini:3"),
        ("numpy", ">=1.24", "morgan.ini:5"),
        ("fastapi", "", "morgan.ini:6"),
        ("pywin32", "", "morgan.ini:8"),
        ("requests", "==2.31.0", "reqs/base.txt:2"),
        ("attrs", ">=23", "reqs/base.txt:3"),
        ("click", ">=8", "tools/pyproject.toml [project] dependencies"),
        ("pytest", "", "tools/pyproject.toml [project.optional-dependencies] test"),
    ]
    assert config.allowlist[2].requirement.extras == {"standard"}
    assert str(config.allowlist[3].requirement.marker) == 'sys_platform == "win32"'
    assert config.keep_latest == 3 and config.with_dependencies is True
    assert config.selection == FileSelection(
        exclude_platforms=frozenset({"windows", "macos"}),
        package_types=frozenset({"wheel"}),
        max_file_size=50_000_000,
        exclude_releases=(re.compile(r".*\.dev\d+$"),),
    )
    linux = env("linux", "3.12.1")
    assert config.constraints_for(linux) == {"urllib3": SpecifierSet("<2")}
    assert config.hashes_for(linux) == {
        "requests": frozenset({SHA_A}),
        "urllib3": frozenset({SHA_B}),
    }


def test_defaults_leave_a_full_mirror_as_it_was(tmp_path: Path) -> None:
    config = _load(tmp_path, "[sync]\nexclude = ^test-\n")
    assert config.allowlist == () and config.keep_latest is None
    assert config.with_dependencies is False and config.selection == FileSelection()
    assert config.constraints_for(env("l", "3.12.1")) == {}
    # keep-latest without an allowlist: every project of a full mirror.
    assert _load(tmp_path, "[sync]\nkeep-latest = 2\n").keep_latest == 2


def test_with_dependencies(tmp_path: Path) -> None:
    assert _load(tmp_path, "[sync]\nprojects = six\n" + ENV).with_dependencies is True
    off = "[sync]\nprojects = six\nwith-dependencies = false\n"
    assert _load(tmp_path, off).with_dependencies is False  # no env needed then
    # The default, with no env: refused before any request.
    error = _error(tmp_path, "[sync]\nprojects = six\n")
    assert (error.key, error.line) == ("projects", 2)
    assert "dependencies depend on the target" in str(error)
    assert "`morgan-like generate_env` prints this machine's" in str(error)
    assert "with-dependencies = false" in str(error)
    error = _error(tmp_path, "[sync]\nwith-dependencies = yes\nprojects = six\n")
    assert (error.key, error.line) == ("with-dependencies", 2)
    # Explicit, with no allowlist.
    error = _error(tmp_path, "[sync]\nwith-dependencies = true\n" + ENV)
    assert (error.key, error.line) == ("with-dependencies", 2)
    assert "no allowlist" in error.problem


@pytest.mark.parametrize(
    ("text", "key", "line", "problem", "hint"),
    [
        (
            "[sync]\nprojects =\n    django\n    foo @ git+https://x.invalid/foo\n",
            "projects",
            4,
            "direct references are not supported",
            "foo==1.2",
        ),
        (
            "[sync]\nprojects =\n    ok\n    bad name!\n",
            "projects",
            4,
            "invalid requirement",
            "PEP 508",
        ),
        ("[sync]\nprojects = ./local\n", "projects", 2, "paths and URLs", "name the project"),
        ("[sync]\nkeep-latest = 0\n", "keep-latest", 2, "whole number >= 1", "keep-latest = 10"),
        ("[sync]\nkeep-latest = three\n", "keep-latest", 2, "whole number", "keep-latest"),
        ("[sync]\nwith-dependencies = maybe\n", "with-dependencies", 2, "not a boolean", "true"),
        ("[sync]\nexclude-platform = windos\n", "exclude-platform", 2, "'windos'", "'windows'"),
        ("[sync]\nexclude-platform = py2.7\n", "exclude-platform", 2, "not known", "[env.NAME]"),
        ("[sync]\npackage-types = bdist_egg\n", "package-types", 2, "not known", "wheel, sdist"),
        ("[sync]\npackage-types =\n", "package-types", 2, "is empty", "wheel sdist"),
        ("[sync]\nmax-file-size = 50 parsecs\n", "max-file-size", 2, "not a size", "KiB"),
        ("[sync]\nmax-file-size = 0\n", "max-file-size", 2, "less than one byte", "50M"),
        ("[sync]\nexclude-release =\n    (\n", "exclude-release", 2, "invalid regular", "dev"),
        ("[sync]\nrequirements =\n", "requirements", 2, "no path given", "reqs/base.txt"),
        ("[sync]\nrequirements = nope.txt\n", "requirements", 2, "cannot read", "folder"),
        ("[sync]\nrequirements = a.txt[x]\n", "requirements", 2, "[extras]", "pyproject"),
        ("[sync]\nprojekts = six\n", "projekts", 2, "unknown key", "'projects'"),
    ],
)
def test_refusals_name_key_and_line(
    tmp_path: Path, text: str, key: str, line: int, problem: str, hint: str
) -> None:
    error = _error(tmp_path, text)
    assert (error.file, error.section, error.key, error.line) == (
        str(tmp_path / "morgan.ini"),
        "sync",
        key,
        line,
    )
    assert problem in error.problem and hint in (error.hint or "")


def test_a_project_named_twice_is_refused_naming_both_lines(tmp_path: Path) -> None:
    error = _error(tmp_path, "[sync]\nprojects =\n    Django >= 4\n    numpy\n    DJANGO < 5\n")
    assert error.line == 5 and error.key == "projects"
    assert "morgan.ini:3 (Django>=4)" in error.problem
    assert "morgan.ini:5 (DJANGO<5)" in error.problem
    assert error.hint == "keep one line with both specifiers, e.g. django <5,>=4"
    # Across projects and a requirements file.
    write(tmp_path, "numpy[extra]==1.26\n", "base.txt")
    error = _error(tmp_path, "[sync]\nprojects = numpy>=1.24\nrequirements = base.txt\n")
    assert "morgan.ini:2" in error.problem and "base.txt:1" in error.problem
    assert (error.key, error.line) == ("requirements", 3)
    assert "numpy[extra] ==1.26,>=1.24" in (error.hint or "")


def test_allowed_and_excluded_is_refused_naming_both_lines(tmp_path: Path) -> None:
    text = "[sync]\nprojects =\n    test-utils\nexclude =\n    ^nothing\n    ^TEST-\n"
    error = _error(tmp_path, text)
    assert (error.key, error.line) == ("exclude", 6)
    assert "test-utils is both allowlisted (morgan.ini:3: test-utils)" in error.problem
    assert "excluded (morgan.ini:6: exclude = ^TEST-)" in error.problem


def test_requirements_file_errors_name_that_file(tmp_path: Path) -> None:
    write(tmp_path, "ok\n-e ./src\n", "reqs.txt")
    error = _error(tmp_path, "[sync]\nrequirements = reqs.txt\n")
    assert error.file == str(tmp_path / "reqs.txt") and error.line == 2
    write(tmp_path, "[project]\nname = 'x'\ndynamic = ['dependencies']\n", "pyproject.toml")
    error = _error(tmp_path, "[sync]\nrequirements = pyproject.toml\n")
    assert error.file == str(tmp_path / "pyproject.toml") and "dynamic" in error.problem


def test_hash_warnings_reach_the_config(tmp_path: Path) -> None:
    write(tmp_path, f"six>=1 --hash=sha256:{SHA_A}\n", "reqs.txt")
    config = _load(tmp_path, "[sync]\nrequirements = reqs.txt\nwith-dependencies = false\n")
    assert any("no == pin" in w for w in config.warnings)
    assert config.hashes_for(env("l", "3.12.1")) == {"six": frozenset({SHA_A})}
