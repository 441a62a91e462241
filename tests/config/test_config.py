"""load_config: morgan.ini unchanged, requirement sources, one clear ConfigError per problem."""

from __future__ import annotations

import textwrap

import pytest

from morgan_like.config.ini import load_config
from morgan_like.config.options import DEFAULT_INDEX_URL
from morgan_like.errors import ConfigError

from .support import ENV, SHA_A, SHA_B, error, load, reqs, write

MORGAN_SAMPLE = """\
[env.legacy]
python_version = 3.9
python_full_version = 3.9.9
os_name = posix
platform_tag = linux-x86_64
sys_platform = linux
platform_machine = i686
platform_python_implementation = CPython
platform_system = Linux
implementation_name = cpython

[env.windows]
os_name = nt
platform_tag = win_amd64
sys_platform = win32
platform_machine = AMD64
platform_python_implementation = CPython
platform_system = Windows
python_version = 3.12
python_full_version = 3.12.7
implementation_name = cpython

[requirements]
requests = >=2.24.0
protobuf = ==3.20.1
redis = >4.1.0,<4.2.1
xonsh = [full]~=0.11.0
"""


def test_morgan_sample_loads_unchanged(tmp_path):
    config = load(tmp_path, MORGAN_SAMPLE)
    assert [e.name for e in config.environments] == ["legacy", "windows"]
    assert reqs(config) == [
        "requests>=2.24.0",
        "protobuf==3.20.1",
        "redis<4.2.1,>4.1.0",
        "xonsh[full]~=0.11.0",
    ]
    xonsh = config.requirements[3]
    assert xonsh.requirement.extras == {"full"}
    assert xonsh.source == f"{tmp_path / 'morgan.ini'} [requirements] xonsh"
    assert config.index_url is None and config.options == {}
    assert config.path == tmp_path / "morgan.ini"
    assert config.environments[1].tags[0].platform == "win_amd64"


def test_requirement_forms_markers_and_merging(tmp_path):
    config = load(
        tmp_path,
        ENV
        + textwrap.dedent(
            """\
        [env.old]
        python_version = 3.7
        sys_platform = linux

        [requirements]
        # a comment
        ; another comment
        Attrs =
        foo = >=1; python_version < "3.8"
        bar = [a,b]>=1
        urllib3 =
            <1.27
            >=2
            [brotli]
        pct = >=1; platform_version != "100%"
        foo = <3
        """
        ),
    )
    assert reqs(config) == [
        "attrs",
        'foo>=1; python_version < "3.8"',
        "foo<3",
        "bar[a,b]>=1",
        "urllib3<1.27",
        "urllib3>=2",
        "urllib3[brotli]",
        'pct>=1; platform_version != "100%"',
    ]
    linux, old = config.environments
    assert [r.name for r in config.requirements_for(linux)] == [
        "attrs",
        "foo",
        "bar",
        "urllib3",
        "urllib3",
        "urllib3",
        "pct",
    ]
    assert "foo>=1" in [str(r).split(";")[0] for r in config.requirements_for(old)]


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope" / "morgan.ini")
    err = info.value
    assert err.file == str(tmp_path / "nope" / "morgan.ini")
    assert "not found" in err.problem
    assert "generate_env >> morgan.ini" in err.hint


def test_directory_means_its_morgan_ini(tmp_path):
    write(tmp_path, MORGAN_SAMPLE)
    assert load_config(tmp_path).path == tmp_path / "morgan.ini"
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "empty_dir_that_is_missing")
    assert "not found" in info.value.problem


def test_not_ini(tmp_path):
    err = error(tmp_path, "requests = >=2\n")
    assert "not a valid ini file" in err.problem
    assert err.line == 1
    assert "[env.NAME]" in err.hint


def test_no_env_sections(tmp_path):
    err = error(tmp_path, "[requirements]\nrequests =\n")
    assert "no environment sections" in err.problem
    assert "morgan-like generate_env >> morgan.ini" in err.hint


def test_no_requirements(tmp_path):
    err = error(tmp_path, ENV)
    assert err.problem == "no requirements"
    assert err.section == "requirements"
    assert "requests = >=2.24.0" in err.hint
    err = error(tmp_path, ENV + "[requirements]\n")
    assert err.problem == "no requirements"


def test_env_without_requirements(tmp_path):
    err = error(
        tmp_path,
        ENV
        + textwrap.dedent(
            """\
        [env.win]
        python_version = 3.12
        sys_platform = win32

        [requirements]
        uvloop = ; sys_platform != "win32"
        """
        ),
    )
    assert "env win has no requirements to serve" in err.problem
    assert err.section == "env.win"
    assert err.line == 5
    assert "remove the environment" in err.hint


@pytest.mark.parametrize(
    ("line", "problem", "hint"),
    [
        ("requests = >=2.x", "invalid requirement 'requests>=2.x'", "requests = >=2.24.0"),
        ("requests = 2.24.0", "bare version", "requests = ==2.24.0"),
        ("requests = requests>=2", "must be a specifier", "write requests = >=1.0"),
        ("requests = [socks>=2", "invalid requirement", "xonsh = [full]~=0.11.0"),
        ("foo = >=1; python_verison < '3.8'", "invalid marker", "python_version"),
        ("foo = >=1; python_version <", "invalid marker", "implementation_name"),
        ("foo = @ https://example.com/foo.whl", "direct references", "==1.2"),
        ("foo = >=1  # pinned for bar", "invalid requirement", "comments go on their own line"),
    ],
)
def test_invalid_requirement(tmp_path, line, problem, hint):
    err = error(tmp_path, ENV + "\n[requirements]\nok =\n" + line + "\n")
    assert err.file == str(tmp_path / "morgan.ini")
    assert err.section == "requirements"
    assert err.key == line.split(" =")[0]
    assert err.line == 8
    assert problem in err.problem
    assert hint in err.hint
    assert f"morgan.ini:8 [requirements] {err.key}: " in str(err)


def test_env_errors_carry_file_section_key_and_line(tmp_path):
    err = error(tmp_path, ENV + "platfrom_machine = x86_64\n[requirements]\nfoo =\n")
    assert (err.section, err.key, err.line) == ("env.linux", "platfrom_machine", 5)
    assert "did you mean 'platform_machine'?" in err.hint
    err = error(tmp_path, ENV.replace("3.12", "3.x") + "[requirements]\nfoo =\n")
    assert (err.section, err.key, err.line) == ("env.linux", "python_version", 2)
    assert "python_version = 3.12" in err.hint


def test_duplicate_env_key(tmp_path):
    err = error(tmp_path, ENV + "sys_platform = win32\n[requirements]\nfoo =\n")
    assert err.section == "env.linux" and err.key == "sys_platform"
    assert "more than once" in err.problem


def test_unknown_sections(tmp_path):
    err = error(tmp_path, ENV + "[requirement]\nfoo =\n")
    assert err.section == "requirement"
    assert "did you mean [requirements]?" in err.hint
    err = error(tmp_path, ENV + "[env]\npython_version = 3.12\n[requirements]\nfoo =\n")
    assert "[env.NAME]" in err.hint
    # A literal [DEFAULT] must not leak its keys into every section.
    err = error(tmp_path, "[DEFAULT]\nx = 1\n" + ENV + "[requirements]\nfoo =\n")
    assert err.section == "DEFAULT"
    assert err.line == 1


def test_mirror_section(tmp_path):
    config = load(
        tmp_path,
        ENV
        + textwrap.dedent(
            """\
        [requirements]
        foo =
        [mirror]
        index_url = https://example.com/simple/
        diff-file = changes.txt
        diff_append_epoch = Yes
        package-type-regex = bdist_wheel|sdist
        workers = 8
        """
        ),
    )
    assert config.index_url == "https://example.com/simple/"
    assert config.options == {
        "diff-file": "changes.txt",
        "diff-append-epoch": "true",
        "package-type-regex": "bdist_wheel|sdist",
        "workers": "8",
    }


@pytest.mark.parametrize(
    ("line", "key", "problem", "hint"),
    [
        (
            "index-url = pypi.org/simple",
            "index-url",
            "not an index URL",
            DEFAULT_INDEX_URL,
        ),
        ("workers = many", "workers", "positive whole number", "workers = 8"),
        ("workers = 0", "workers", "positive whole number", "workers = 8"),
        ("diff-append-epoch = sure", "diff-append-epoch", "not a boolean", "true or false"),
        ("package-type-regex = (", "package-type-regex", "invalid regular expression", "sdist"),
        ("diff_fiel = x", "diff_fiel", "unknown key", "did you mean 'diff-file'?"),
    ],
)
def test_mirror_errors(tmp_path, line, key, problem, hint):
    err = error(tmp_path, ENV + "[requirements]\nfoo =\n[mirror]\n" + line + "\n")
    assert (err.section, err.key, err.line) == ("mirror", key, 8)
    assert problem in err.problem
    assert hint in err.hint


# --- [requirements_from] ---------------------------------------------------------------


def test_requirements_txt(tmp_path):
    write(
        tmp_path,
        f"""\
        # pinned
        attrs==23.2.0 \\
            --hash=sha256:{SHA_A.upper()} \\
            --hash sha256:{SHA_B}
        -r base.txt

        packaging>=23 ; python_version >= "3.8"  # trailing comment
        Foo[Bar]  >=1
        """,
        "reqs/requirements.txt",
    )
    write(tmp_path, "--requirement=more/extra.txt\nidna\n", "reqs/base.txt")
    write(tmp_path, "certifi\n", "reqs/more/extra.txt")
    config = load(tmp_path, ENV + "[requirements_from]\nrequirements = reqs/requirements.txt\n")
    assert reqs(config) == [
        "attrs==23.2.0",
        "certifi",
        "idna",
        'packaging>=23; python_version >= "3.8"',
        "Foo[Bar]>=1",
    ]
    sources = [r.source for r in config.requirements]
    main = tmp_path / "reqs" / "requirements.txt"
    assert sources[0] == f"{main}:2"
    assert sources[1] == f"{tmp_path / 'reqs' / 'more' / 'extra.txt'}:1"
    assert sources[3] == f"{main}:7"
    # pip's --hash options stay on their line, lowercased (pip compares them so).
    assert config.requirements[0].hashes == {f"sha256:{SHA_A}", f"sha256:{SHA_B}"}
    assert all(not r.hashes for r in config.requirements[1:])
    assert config.constraints == () and config.warnings == ()


@pytest.mark.parametrize(
    ("line", "problem", "hint"),
    [
        ("-e ./src", "editable installs are not supported", "foo==1.2"),
        ("--index-url https://example.com/simple", "index options", "[mirror] section"),
        ("--extra-index-url https://example.com/simple", "extra indexes", "remove the line"),
        ("--weird", "pip option --weird is not supported", "remove the line"),
        ("./dist/foo-1.0.tar.gz", "paths and URLs", "name the project"),
        ("https://example.com/foo-1.0-py3-none-any.whl", "paths and URLs", "name the project"),
        ("foo @ https://example.com/foo.zip", "paths and URLs", "name the project"),
        ("foo @ git+https://example.com/foo", "direct references", "name the project"),
        ("foo>=1 --config-settings x=y", "per-requirement options", "only the requirement"),
        ("foo>=", "invalid requirement 'foo>='", "one requirement a line"),
        ('foo; python_version >> "3"', "invalid marker", "one requirement a line"),
        ("-r", "needs a file name", "-r base.txt"),
        ("-r missing.txt", "cannot read included file", "relative to"),
        ("-r requirements.txt", "includes itself", None),
    ],
)
def test_requirements_txt_errors(tmp_path, line, problem, hint):
    path = write(tmp_path, f"ok==1\n\n{line}\n", "requirements.txt")
    err = error(tmp_path, ENV + "[requirements_from]\nrequirements = requirements.txt\n")
    assert err.file == str(path)
    assert err.line == 3
    assert problem in err.problem
    assert err.hint == hint or hint in err.hint
    assert str(err).startswith(f"{path}:3: ")


def test_requirements_from_missing_file(tmp_path):
    err = error(tmp_path, ENV + "[requirements_from]\nrequirements = nope.txt\n")
    assert err.file == str(tmp_path / "morgan.ini")
    assert (err.section, err.key, err.line) == ("requirements_from", "requirements", 6)
    assert str(tmp_path / "nope.txt") in err.problem
    assert "relative to the config file's directory" in err.hint


def test_requirements_txt_not_utf8(tmp_path):
    write(tmp_path, "-r latin.txt\n", "requirements.txt")
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9\n")
    err = error(tmp_path, ENV + "[requirements_from]\nrequirements = requirements.txt\n")
    assert err.file == str(tmp_path / "latin.txt")
    assert "not UTF-8" in err.problem


def test_requirements_from_unknown_key(tmp_path):
    err = error(tmp_path, ENV + "[requirements_from]\nrequirement = r.txt\n")
    assert err.key == "requirement"
    assert "did you mean 'requirements'?" in err.hint
    err = error(tmp_path, ENV + "[requirements_from]\nrequirements =\n")
    assert err.problem == "no path given"


PYPROJECT = """\
[project]
name = "My_App"
version = "1"
dependencies = ["attrs>=23", "tomli; python_version < '3.11'"]

[project.optional-dependencies]
Socks = ["pysocks"]
all = ["my-app[socks,tests]; sys_platform == 'linux'"]
tests = ["pytest>=8"]
"""


def test_pyproject(tmp_path):
    write(tmp_path, PYPROJECT, "app/pyproject.toml")
    config = load(
        tmp_path,
        ENV
        + textwrap.dedent(
            """\
        [requirements]
        idna =
        [requirements_from]
        pyproject =
            app/pyproject.toml[all]
        """
        ),
    )
    assert reqs(config) == [
        "idna",
        "attrs>=23",
        'tomli; python_version < "3.11"',
        'pysocks; sys_platform == "linux"',
        'pytest>=8; sys_platform == "linux"',
    ]
    assert (
        config.requirements[1].source
        == f"{tmp_path / 'app' / 'pyproject.toml'} [project] dependencies"
    )
    assert config.requirements[3].source.endswith("[project.optional-dependencies] Socks")
    plain = load(tmp_path, ENV + "[requirements_from]\npyproject = app/pyproject.toml\n")
    assert reqs(plain) == ["attrs>=23", 'tomli; python_version < "3.11"']


@pytest.mark.parametrize(
    ("text", "problem", "hint", "key"),
    [
        (PYPROJECT, "no optional-dependencies group 'nope'", "Socks, all, tests", None),
        ("[tool.x]\na = 1\n", "no [project] table", "PEP 621", None),
        ("[project\n", "invalid TOML", None, None),
        (
            '[project]\nname = "x"\ndynamic = ["dependencies"]\n',
            "dynamic",
            "requirements.txt",
            "dependencies",
        ),
        (
            '[project]\nname = "x"\ndependencies = ["foo>="]\n',
            "invalid requirement",
            "requests>=2.24.0",
            "dependencies[0]",
        ),
        ('[project]\nname = "x"\ndependencies = [1]\n', "not a string", None, "dependencies[0]"),
        (
            '[project]\nname = "x"\noptional-dependencies = 1\n',
            "table of lists",
            "pytest",
            "optional-dependencies",
        ),
    ],
)
def test_pyproject_errors(tmp_path, text, problem, hint, key):
    path = write(tmp_path, text, "pyproject.toml")
    err = error(tmp_path, ENV + "[requirements_from]\npyproject = pyproject.toml[nope]\n")
    assert err.file == str(path)
    assert problem in err.problem
    assert hint is None or hint in err.hint
    assert err.key == key
