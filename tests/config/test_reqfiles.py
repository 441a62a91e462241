"""Requirements files: --hash pins, -c constraints, and every pip option either honoured or refused."""

from __future__ import annotations

import pytest
from packaging.specifiers import SpecifierSet

from morgan_like.config.reqfiles import parse_hash

from .support import ENV, SHA_A, SHA_B, SHA_C, error, load, reqs, write

FROM_TXT = ENV + "[requirements_from]\nrequirements = requirements.txt\n"
SHA384 = "d" * 96
SHA512 = "e" * 128


# --- --hash --------------------------------------------------------------------------------


def test_hashes_kept_per_line(tmp_path):
    path = write(
        tmp_path,
        f"""\
        attrs==23.2.0 \\
            --hash=sha256:{SHA_A} \\
            --hash=sha384:{SHA384} \\
            --hash sha512:{SHA512}
        idna==3.7 --hash=SHA256:{SHA_B.upper()}  # one-line form
        certifi
        """,
        "requirements.txt",
    )
    config = load(tmp_path, FROM_TXT)
    attrs, idna, certifi = config.requirements
    assert attrs.hashes == {f"sha256:{SHA_A}", f"sha384:{SHA384}", f"sha512:{SHA512}"}
    assert attrs.sha256s() == {SHA_A}
    assert attrs.source == f"{path}:1"
    assert idna.hashes == {f"sha256:{SHA_B}"} and idna.source == f"{path}:5"
    assert certifi.hashes == frozenset()
    assert reqs(config) == ["attrs==23.2.0", "idna==3.7", "certifi"]
    assert config.warnings == ()


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            "foo==1 --hash=md5:abc",
            "algorithm 'md5' is not accepted (pip takes sha256, sha384, sha512)",
        ),
        ("foo==1 --hash=sha256:abc", "a sha256 digest is 64 hex digits, got 3 characters"),
        (f"foo==1 --hash=sha512:{SHA_A}", "a sha512 digest is 128 hex digits, got 64"),
        (f"foo==1 --hash=sha256:{'g' * 64}", "64 hex digits, got 64 characters"),
        ("foo==1 --hash=sha256", "is not ALGORITHM:DIGEST"),
        ("foo==1 --hash", "--hash needs a value"),
        (f"foo==1 --hash --hash=sha256:{SHA_A}", "--hash needs a value"),
        (f"--hash=sha256:{SHA_A}", "--hash belongs to a requirement"),
        (f"foo==1 --hash=sha256:{SHA_A} --no-deps", "per-requirement options are not supported"),
    ],
)
def test_hash_errors_name_file_and_line(tmp_path, line, problem):
    path = write(tmp_path, f"ok==1\n\n{line}\n", "requirements.txt")
    err = error(tmp_path, FROM_TXT)
    assert (err.file, err.line) == (str(path), 3)
    assert problem in err.problem
    assert err.hint


def test_parse_hash():
    assert parse_hash(f"SHA256:{SHA_A.upper()}") == f"sha256:{SHA_A}"
    with pytest.raises(ValueError, match="not accepted"):
        parse_hash(f"sha1:{'a' * 40}")


def test_hash_warnings(tmp_path):
    path = write(
        tmp_path,
        f"foo>=1 --hash=sha256:{SHA_A}\nbar==2 --hash=sha512:{SHA512}\n",
        "requirements.txt",
    )
    config = load(tmp_path, FROM_TXT)
    assert config.warnings == (
        f"{path}:1: foo has --hash options but no == pin; pip refuses such a line in "
        "hash-checking mode",
        f"{path}:2: bar has no sha256 --hash; indexes publish sha256 only, so its hashes can "
        "be checked only after a download",
    )


def test_hashes_for_intersects_lines_and_constraints_per_env(tmp_path):
    write(
        tmp_path,
        f"""\
        foo==1 --hash=sha256:{SHA_A} --hash=sha256:{SHA_B}
        foo[x]==1 --hash=sha256:{SHA_B} --hash=sha256:{SHA_C}
        bar==2; sys_platform == "win32" --hash=sha256:{SHA_A}
        baz==3
        -c constraints.txt
        """,
        "requirements.txt",
    )
    write(tmp_path, f"qux==4 --hash=sha256:{SHA_C}\n", "constraints.txt")
    config = load(tmp_path, FROM_TXT)
    (linux,) = config.environments
    assert config.hashes_for(linux) == {"foo": {SHA_B}, "qux": {SHA_C}}


# --- -c / --constraint -----------------------------------------------------------------------


def test_constraints_are_kept_apart(tmp_path):
    main = write(
        tmp_path,
        """\
        requests>=2
        -c ../pins/constraints.txt
        --constraint=../pins/win.txt
        """,
        "reqs/requirements.txt",
    )
    pins = write(
        tmp_path,
        """\
        urllib3<2
        -r more.txt
        -c nested.txt
        """,
        "pins/constraints.txt",
    )
    write(tmp_path, "idna!=3.5\nurllib3>=1.26\n", "pins/more.txt")
    write(tmp_path, "charset-normalizer<4\n", "pins/nested.txt")
    win = write(tmp_path, 'colorama<0.5; sys_platform == "win32"\n', "pins/win.txt")
    config = load(tmp_path, ENV + "[requirements_from]\nrequirements = reqs/requirements.txt\n")
    assert reqs(config) == ["requests>=2"]  # a constraint adds no requirement
    assert [str(c.requirement) for c in config.constraints] == [
        "urllib3<2",
        "idna!=3.5",
        "urllib3>=1.26",
        "charset-normalizer<4",
        'colorama<0.5; sys_platform == "win32"',
    ]
    # Named as the including file names them, relative to it.
    assert (
        config.constraints[0].source == f"{tmp_path / 'reqs' / '..' / 'pins' / 'constraints.txt'}:1"
    )
    assert pins.exists() and config.constraints[-1].source.endswith(f"{win.name}:1")
    assert config.requirements[0].source == f"{main}:1"
    (linux,) = config.environments
    assert config.constraints_for(linux) == {
        "urllib3": SpecifierSet("<2,>=1.26"),
        "idna": SpecifierSet("!=3.5"),
        "charset-normalizer": SpecifierSet("<4"),
    }


def test_constraints_key_in_requirements_from(tmp_path):
    path = write(tmp_path, "attrs<24\n-rother.txt\n", "c.txt")  # optparse's attached form
    write(tmp_path, "idna<4\n", "other.txt")
    config = load(
        tmp_path, ENV + "[requirements]\nattrs =\n[requirements_from]\nconstraints = c.txt\n"
    )
    assert reqs(config) == ["attrs"]
    assert [str(c.requirement) for c in config.constraints] == ["attrs<24", "idna<4"]
    assert config.constraints[0].source == f"{path}:1"


def test_only_constraints_is_no_requirements(tmp_path):
    write(tmp_path, "attrs<24\n", "c.txt")
    err = error(tmp_path, ENV + "[requirements_from]\nconstraints = c.txt\n")
    assert err.problem == "no requirements"


@pytest.mark.parametrize(
    ("files", "problem", "hint"),
    [
        ({"c.txt": "ok<2\nfoo[bar]<2\n"}, "constraints cannot have extras", "write foo<2"),
        ({"c.txt": "ok<2\n-r requirements.txt\n"}, "includes itself", None),
        ({"c.txt": "ok<2\n-c c.txt\n"}, "includes itself", None),
        ({"c.txt": "ok<2\n-e ./src\n"}, "editable installs", "foo==1.2"),
        ({"c.txt": "ok<2\nfoo @ https://example.com/foo.zip\n"}, "paths and URLs", "name"),
    ],
)
def test_constraint_errors(tmp_path, files, problem, hint):
    write(tmp_path, "ok==1\n-c c.txt\n", "requirements.txt")
    for name, text in files.items():
        write(tmp_path, text, name)
    err = error(tmp_path, FROM_TXT)
    assert (err.file, err.line) == (str(tmp_path / "c.txt"), 2)
    assert problem in err.problem
    assert hint is None or hint in err.hint


@pytest.mark.parametrize(
    ("line", "problem", "hint"),
    [
        ("-c", "-c needs a file name", "-c base.txt"),
        ("-c missing.txt", "cannot read included file", "paths after -c are relative to"),
        ("-c a.txt b.txt", "one file per -c line", "-c base.txt"),
        ("-c https://example.com/c.txt", "remote requirements files", "download the file"),
        ("-r https://example.com/r.txt", "remote requirements files", "download the file"),
    ],
)
def test_constraint_line_errors(tmp_path, line, problem, hint):
    path = write(tmp_path, f"ok==1\n{line}\n", "requirements.txt")
    err = error(tmp_path, FROM_TXT)
    assert (err.file, err.line) == (str(path), 2)
    assert problem in err.problem
    assert hint in err.hint


# --- every other pip option: refused with a line and a way out, never ignored -------------------


@pytest.mark.parametrize(
    ("line", "problem", "hint"),
    [
        ("--index-url https://example.com/simple", "index options", "index-url in the [mirror]"),
        ("-i https://example.com/simple", "index options", "index-url in the [mirror]"),
        ("--extra-index-url https://example.com/simple", "extra indexes", "remove the line"),
        ("--find-links ./wheels", "find-links are not supported", "remove the line"),
        ("-f ./wheels", "find-links are not supported", "remove the line"),
        ("--no-index", "--no-index does not apply", "remove the line"),
        ("--pre", "--pre is not read from requirements files", "morgan-like mirror --pre"),
        ("--prefer-binary", "--prefer-binary is not read", "prefer-binary in the [mirror]"),
        ("--no-binary :all:", "--no-binary is not read", "package-type-regex"),
        ("--only-binary=:all:", "--only-binary is not read", "package-type-regex"),
        ("--trusted-host example.com", "--trusted-host is not read", "PIP_TRUSTED_HOST"),
        ("--require-hashes", "pip option --require-hashes is not supported", "remove the line"),
        ("--use-feature=truststore", "pip option --use-feature is not supported", "remove"),
    ],
)
def test_pip_options_are_refused_by_line(tmp_path, line, problem, hint):
    path = write(tmp_path, "ok==1\n-r nested.txt\n", "requirements.txt")
    nested = write(tmp_path, f"idna\n{line}\n", "nested.txt")
    err = error(tmp_path, FROM_TXT)
    assert (err.file, err.line) == (str(nested), 2)
    assert problem in err.problem and repr(line) in err.problem
    assert hint in err.hint
    assert str(err).startswith(f"{nested}:2: ") and path.exists()
