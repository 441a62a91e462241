"""morgan.ini additions: [dependencies] overrides, [mirror] prefer-binary, warnings about env Pythons."""

from __future__ import annotations

import sys

import pytest
from packaging.version import Version

from morgan_like.config import pythons

from .support import ENV, error, load

BASE = ENV + "[requirements]\nfoo =\n"


# --- [dependencies] ------------------------------------------------------------------------------


def test_dependency_overrides(tmp_path):
    config = load(
        tmp_path,
        BASE
        + """\
[dependencies]
Legacy_Lib==1.4.2 =
    requests>=2
    # a comment between lines
    colorama; sys_platform == "win32"

    pysocks; extra == "socks"
no-deps==0.3 =
one-liner==2.0=idna<4
legacy-lib==1.5 = attrs
[mirror]
workers = 2
""",
    )
    overrides = config.dependency_overrides
    assert set(overrides) == {
        ("legacy-lib", Version("1.4.2")),
        ("no-deps", Version("0.3")),
        ("one-liner", Version("2")),
        ("legacy-lib", Version("1.5")),
    }
    assert [str(r) for r in overrides[("legacy-lib", Version("1.4.2"))]] == [
        "requests>=2",
        'colorama; sys_platform == "win32"',
        'pysocks; extra == "socks"',
    ]
    assert overrides[("no-deps", Version("0.3"))] == ()
    assert [str(r) for r in overrides[("one-liner", Version("2.0.0"))]] == ["idna<4"]
    assert [str(r) for r in overrides[("legacy-lib", Version("1.5"))]] == ["attrs"]
    assert config.options == {"workers": "2"}


def test_no_dependencies_section_means_no_overrides(tmp_path):
    assert load(tmp_path, BASE).dependency_overrides == {}


@pytest.mark.parametrize(
    ("lines", "line", "problem", "hint", "key"),
    [
        (
            "foo = >=1",
            8,
            "the key must be NAME==VERSION exactly: 'foo = >=1'",
            "NAME==VERSION",
            None,
        ),
        ("foo>=1.0 = bar", 8, "NAME==VERSION exactly: 'foo>=1.0 = bar'", "legacy-lib==1.4.2", None),
        ("foo===1.0 = bar", 8, "NAME==VERSION exactly", "NAME==VERSION", None),
        ("foo==1.* = bar", 8, "a wildcard is not one release", "NAME==VERSION", "foo==1.*"),
        ("foo==banana = bar", 8, "'banana' is not a valid version", "NAME==VERSION", "foo==banana"),
        ("foo==1 =\n    bar\n    baz>=", 10, "invalid requirement 'baz>='", "PEP 508", "foo==1"),
        ("foo==1 = bar @ https://example.com/b.zip", 8, "paths and URLs", "name the", "foo==1"),
        ("foo==1 =\n    ./bar", 9, "paths and URLs", "name the project", "foo==1"),
        ("foo==1 = x; python_verison > '3'", 8, "invalid marker", "PEP 508", "foo==1"),
        (
            "foo==1 = a\nFOO==1.0 = b",
            9,
            "FOO==1.0 is given more than once (first on line 8)",
            "keep one",
            "FOO==1.0",
        ),
    ],
)
def test_dependency_override_errors(tmp_path, lines, line, problem, hint, key):
    err = error(tmp_path, BASE + "[dependencies]\n" + lines + "\n")
    assert (err.file, err.section, err.line, err.key) == (
        str(tmp_path / "morgan.ini"),
        "dependencies",
        line,
        key,
    )
    assert problem in err.problem
    assert hint in err.hint


def test_dependencies_is_a_known_section(tmp_path):
    err = error(tmp_path, BASE + "[dependency]\nfoo==1 =\n")
    assert "did you mean [dependencies]?" in err.hint


# --- [mirror] prefer-binary ------------------------------------------------------------------------


def test_prefer_binary(tmp_path):
    assert load(tmp_path, BASE).prefer_binary is True
    config = load(tmp_path, BASE + "[mirror]\nprefer_binary = No\n")
    assert config.prefer_binary is False
    assert config.options == {"prefer-binary": "false"}
    assert load(tmp_path, BASE + "[mirror]\nprefer-binary = on\n").prefer_binary is True
    err = error(tmp_path, BASE + "[mirror]\nprefer-binary = maybe\n")
    assert (err.section, err.key, err.line) == ("mirror", "prefer-binary", 8)
    assert "not a boolean" in err.problem


# --- Pythons newer than any release ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "line", "key", "value"),
    [
        ("python_version = 3.41", 7, "python_version", "3.41"),
        ("python_full_version = 3.15.0a1", 7, "python_full_version", "3.15.0a1"),
        ("python_version = 4.0\npython_full_version = 4.0.1", 8, "python_full_version", "4.0.1"),
    ],
)
def test_newer_than_any_release_warns(tmp_path, keys, line, key, value):
    lines = "[env.future]\nsys_platform = linux\n" + keys + "\n"
    config = load(tmp_path, ENV + lines + "[requirements]\nfoo =\n")
    assert config.warnings == (
        f"{tmp_path / 'morgan.ini'}:{line} [env.future] {key} = {value}: newer than any Python "
        "release known to morgan-like (3.14); few projects publish wheels for it yet, so expect "
        "mostly sdists in the bundle (check the value if it is a typo)",
    )
    assert [e.name for e in config.environments] == ["linux", "future"]  # a warning, not an error


@pytest.mark.parametrize(
    "keys", ["python_version = 3.14", "python_full_version = 3.14.99", "python_version = 2.7"]
)
def test_known_pythons_do_not_warn(tmp_path, keys):
    config = load(tmp_path, ENV + f"[env.x]\nsys_platform = win32\n{keys}\n[requirements]\nfoo =\n")
    assert config.warnings == ()


def test_the_running_interpreter_is_known(monkeypatch):
    monkeypatch.setattr(pythons, "NEWEST_KNOWN_PYTHON", (3, 0))
    assert pythons.newest_known_python() == sys.version_info[:2]
    monkeypatch.setattr(pythons, "NEWEST_KNOWN_PYTHON", (9, 9))
    assert pythons.newest_known_python() == (9, 9)
