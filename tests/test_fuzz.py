"""Property-based fuzzing of everything a user types: morgan.ini text, requirement lines and
the command line.  Whatever comes in, the answer is a result or one clear message: never a
traceback, never a message beginning "unexpected" (that is a bug by definition).

Bounded (a few hundred examples, derandomized: the same ones every run) so that it stays
in the fast loop.  Nothing here reaches the network: sockets may only connect to the
loopback (the fake upstream), and any other connection or host lookup fails the test.
Nothing is written outside temporary folders: every command runs in a fresh temporary
working directory and every path it is given is relative to it (or a device it only
reads).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from morgan_like.cli import main
from morgan_like.config.ini import load_config
from morgan_like.config.reqfiles import read_requirements_txt
from morgan_like.config.syncconf import load_sync_config
from morgan_like.errors import MorganLikeError

from .distbuilder import make_sdist, make_wheel
from .fakeindex import FakeIndex

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,  # no .hypothesis/ folder in the working tree
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,  # monkeypatch: the same setting every example
    ],
)
UNEXPECTED = re.compile(r"(^|error: |\] )unexpected ", re.M)


# -- the network and the file system, fenced ---------------------------------------------

_LOCAL = ("127.0.0.1", "::1", "localhost")


@pytest.fixture(scope="module", autouse=True)
def _loopback_only() -> Iterator[None]:
    """Sockets may connect to the loopback only; looking up any other host fails the test."""
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo
    leaks: list[str] = []

    def connect(self: socket.socket, address):  # type: ignore[no-untyped-def]
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOCAL:
            leaks.append(f"connect {address}")
            raise OSError("the fuzz test reaches no network")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host not in _LOCAL and host is not None:
            leaks.append(f"lookup {host}")
            raise socket.gaierror(socket.EAI_NONAME, "the fuzz test looks up no host")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.getaddrinfo = real_getaddrinfo
    assert leaks == []


@contextlib.contextmanager
def _in_temp_dir() -> Iterator[Path]:
    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="morgan-like-fuzz-") as tmp:
        os.chdir(tmp)
        try:
            yield Path(tmp)
        finally:
            os.chdir(old)


def _only_clean_errors(call) -> None:  # type: ignore[no-untyped-def]
    """``call()`` returns or raises a MorganLikeError whose message reads as one, within
    30 s (a FIFO read whole would hang: the call runs in a thread we can leave)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - judged below
            outcome.append(exc)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    assert outcome, "hung"
    exc = outcome[0]
    if exc is None:
        return
    if not isinstance(exc, MorganLikeError):
        raise exc
    text = str(exc)
    assert text and not UNEXPECTED.search(text), text
    assert len(text) < 4000, len(text)


# -- morgan.ini text ---------------------------------------------------------------------

_NAMES = ["attrs", "Foo_Bar", "lib", "a", "x" * 40, "1bad", "-no", "ünï", "foo bar"]
_ENV_KEYS = [
    "os_name", "sys_platform", "platform_machine", "platform_system", "platform_release",
    "python_version", "python_full_version", "implementation_name",
    "platform_python_implementation", "implementation_version", "platform_tag", "tags",
    "platform_tags", "manylinux", "musllinux", "macos", "free_threaded", "binary-only",
    "binary_only", "whl.tag.interpreter", "whl.tag.abi", "whl.tag.platform", "bogus",
]  # fmt: skip
_ENV_VALUES = [
    "linux", "win32", "darwin", "cygwin", "posix", "nt", "Linux", "Windows", "3.12", "3.12.1",
    "3.14.0a1+", "0.0", "2.7", "4.0", "99.99", "2.28", "2.5", "manylinux2014", "1.2", "11.0",
    "x86_64", "AMD64", "arm64", "aarch64", "potato", ";;", ",", "cpython", "pypy", "7.3.17",
    "cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312.abi3-any", "py3-none-any", "a-b",
    "linux-x86_64", "macosx-11.0-arm64", "win_amd64", "true", "no", "maybe", "(", "[a-",
    "", "  ", "\t",
]  # fmt: skip
_SPECS = [
    "", ">=1", "==1.0", "~=0.11", "[extra]~=0.11", "[a,b]", ">=1; python_version < '3.8'",
    '; sys_platform == "win32"', "; nonsense", "1.0", "@ https://x/y.whl", "<2,>1", "===x",
    ">=1 # comment", "!=", "[", "; extra == 'x'", ">=1.0.dev0",
]  # fmt: skip
_MIRROR = {
    "index-url": ["http://127.0.0.1:1/simple/", "ftp://x/", "not a url", "http://", ""],
    "workers": ["0", "8", "-1", "x", "9" * 30, "٣"],
    "diff-file": ["", "d.txt", "sub/d.txt"],
    "diff-append-epoch": ["true", "maybe"],
    "package-type-regex": ["(", "whl|sdist", ".*", "[a-"],
    "prefer-binary": ["yes", "2"],
    "binary-only": ["off", "?"],
    "max-page-mib": ["0", "64", "nan"],
    "download-timeout-floor": ["-5", "60"],
    "cross-host-redirects": ["false", "x"],
    "bogus": ["1"],
}


def _rarely(n: int) -> st.SearchStrategy[bool]:
    """True one time in ``n``; False is the simplest example, so Hypothesis starts there."""
    return st.sampled_from([False] * (n - 1) + [True])


def _value(options: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(options),
        st.text(max_size=12),
        st.text(alphabet="\n\r\t ;#=[]:\\\"'%\x00\x0b\u2028", max_size=6),
    )


_env_section = st.tuples(
    st.sampled_from(["linux", "win", "Linux", "a.b-c_d", "", "a b", "../x", "é"]),
    st.dictionaries(st.sampled_from(_ENV_KEYS), _value(_ENV_VALUES), max_size=6),
).map(lambda t: (f"env.{t[0]}", t[1]))
_req_section = st.dictionaries(st.sampled_from(_NAMES), _value(_SPECS), min_size=0, max_size=4).map(
    lambda d: ("requirements", d)
)
_mirror_section = st.dictionaries(
    st.sampled_from(list(_MIRROR)), st.sampled_from(sum(_MIRROR.values(), [])), max_size=4
).map(lambda d: ("mirror", d))
_from_section = st.dictionaries(
    st.sampled_from(["requirements", "constraints", "pyproject", "groups", "bogus"]),
    _value(["r.txt", "c.txt", "missing.txt", "pyproject.toml[x]", "pyproject.toml:g", "g", "'a"]),
    max_size=3,
).map(lambda d: ("requirements_from", d))
_deps_section = st.dictionaries(
    st.sampled_from(["lib==1.0", "lib==x", "lib", "==1"]),
    _value(["", "\n  attrs>=1", "\n  bad req", "attrs"]),
    max_size=2,
).map(lambda d: ("dependencies", d))
_other_section = st.tuples(
    st.sampled_from(["sync", "DEFAULT", "Requirements", "envs.x", "mirror "]),
    st.dictionaries(
        st.sampled_from(["exclude", "workers", "serial-source", "x"]),
        _value(["(", "2"]),
        max_size=2,
    ),
)
_section = st.one_of(
    _env_section, _env_section, _req_section, _mirror_section, _from_section, _deps_section,
    _other_section,
)  # fmt: skip


_BASE = {
    "env.linux": {"sys_platform": "linux", "python_version": "3.12", "platform_machine": "x86_64"},
    "env.win": {"sys_platform": "win32", "python_full_version": "3.11.4"},
    "requirements": {"attrs": ">=1", "lib": ""},
    "requirements_from": {
        "requirements": "r.txt",
        "pyproject": "pyproject.toml[x]",
        "groups": "pyproject.toml:g",
    },
    "mirror": {"workers": "4"},
    "dependencies": {"lib==1.0": "\n  attrs"},
}
_POOLS = {
    "env.linux": _ENV_KEYS,
    "env.win": _ENV_KEYS,
    "requirements": _NAMES,
    "requirements_from": ["requirements", "constraints", "pyproject", "groups", "bogus"],
    "mirror": list(_MIRROR),
    "dependencies": ["lib==1.0", "lib==x", "attrs==2"],
}
_VALUES = {
    "env.linux": _ENV_VALUES,
    "env.win": _ENV_VALUES,
    "requirements": _SPECS,
    "requirements_from": ["r.txt", "c.txt", "missing.txt", "pyproject.toml[x]", "g", "'a", "."],
    "mirror": sum(_MIRROR.values(), []),
    "dependencies": ["", "\n  attrs>=1", "\n  bad req", "attrs", "\n  lib ; extra == 'x'"],
}


@st.composite
def ini_texts(draw: st.DrawFn) -> bytes:
    """A valid config, then a few mutations: a value fuzzed, a key added or dropped, a
    section dropped or added; sometimes in another encoding."""
    sections = [(n, dict(k)) for n, k in _BASE.items() if not draw(_rarely(10))]
    for _ in range(draw(st.integers(0, 4))):
        if not sections or draw(_rarely(6)):
            sections.append(draw(_section))
            continue
        name, keys = draw(st.sampled_from(sections))
        pool = _POOLS.get(name, ["x"])
        key = draw(st.sampled_from(pool))
        if draw(_rarely(5)):
            keys.pop(key, None)
        else:
            keys[key] = draw(_value(_VALUES.get(name, ["x"])))
    lines: list[str] = []
    for name, keys in sections:
        lines.append(draw(st.sampled_from(["", "", "", " "])) + f"[{name}]")
        for key, value in keys.items():
            sep = draw(st.sampled_from([" = ", " = ", "=", ": ", " =\n    "]))
            lines.append(f"{key}{sep}{value}")
        if draw(_rarely(5)):
            lines.append(draw(st.sampled_from(["# comment", "; comment", "  indented", "junk"])))
    text = "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))
    data = text.encode("utf-8", "surrogatepass")
    if draw(_rarely(10)):
        data = draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\x00", b"\xff"])) + data
    return data


_REQ_FILE = "attrs\n-c c.txt\n"
_PYPROJECT = '[project]\nname = "p"\ndependencies = ["attrs>=1"]\n[project.optional-dependencies]\nx = ["idna"]\n[dependency-groups]\ng = ["lib"]\n'


@given(ini_texts())
@FUZZ
def test_any_morgan_ini_is_loaded_or_refused_cleanly(data: bytes) -> None:
    with _in_temp_dir() as tmp:
        (tmp / "r.txt").write_text(_REQ_FILE)
        (tmp / "c.txt").write_text("attrs<30\n")
        (tmp / "pyproject.toml").write_text(_PYPROJECT)
        (tmp / "morgan.ini").write_bytes(data)
        _only_clean_errors(lambda: load_config(tmp / "morgan.ini"))
        _only_clean_errors(lambda: load_sync_config(tmp / "morgan.ini"))


# -- a local pyproject.toml ([requirements_from] pyproject / groups) ---------------------

_toml_value = st.recursive(
    st.one_of(
        st.sampled_from(["attrs>=1", "lib; extra == 'x'", "p[x]", "bad req", "", "p"]),
        st.text(max_size=8),
        st.integers(),
        st.booleans(),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["include-group", "x", "name"]), inner, max_size=2),
    ),
    max_leaves=6,
)


def _toml(value: object) -> str:
    """A TOML value: JSON's spelling of strings, numbers, lists and inline tables (as
    ``{"k": v}`` is not TOML, tables are written ``{ k = v }``)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)


@st.composite
def pyprojects(draw: st.DrawFn) -> str:
    lines = []
    if not draw(_rarely(5)):
        lines.append("[project]")
        keys = ["name", "dependencies", "dynamic", "optional-dependencies"]
        for key in draw(st.lists(st.sampled_from(keys), unique=True)):
            odd = st.sampled_from([True, 1, "dependencies", ["version"], {"x": ["a"]}])
            lines.append(f"{key} = {_toml(draw(st.one_of(odd, _toml_value)))}")
    if draw(st.booleans()):
        lines.append("[build-system]")
        if not draw(_rarely(4)):
            lines.append(f"requires = {_toml(draw(_toml_value))}")
    if draw(st.booleans()):
        lines.append("[dependency-groups]")
        for group in draw(st.lists(st.sampled_from(["g", "G_", "h"]), unique=True)):
            lines.append(f"{group} = {_toml(draw(_toml_value))}")
    return "\n".join(lines) + "\n"


_REFS = [
    "pyproject = pyproject.toml", "pyproject = pyproject.toml[x]", "groups = pyproject.toml:g",
    "groups = pyproject.toml:g,h", "groups = g", "groups = pyproject.toml:",
]  # fmt: skip


@given(pyprojects(), st.sampled_from(_REFS))
@FUZZ
def test_any_pyproject_is_read_or_refused_cleanly(text: str, ref: str) -> None:
    with _in_temp_dir() as tmp:
        (tmp / "pyproject.toml").write_text(text)
        config = "[env.linux]\nsys_platform = linux\npython_version = 3.12\n"
        (tmp / "morgan.ini").write_text(config + f"[requirements_from]\n{ref}\n")
        _only_clean_errors(lambda: load_config(tmp / "morgan.ini"))


# -- requirement lines -------------------------------------------------------------------

_HASH = "--hash=sha256:" + "a" * 64
_req_line = st.one_of(
    st.tuples(st.sampled_from(_NAMES), st.sampled_from(_SPECS)).map(lambda t: t[0] + t[1]),
    st.sampled_from([
        "-r other.txt", "-rother.txt", "--requirement=other.txt", "-c c.txt", "-r missing.txt",
        "-r self.txt", "-r loop.txt", "-r fifo", "-r .", "-r", "-e .", "-i http://x/",
        "--pre", "--hash=sha256:00", f"attrs==1 {_HASH}", f"attrs==1 \\\n    {_HASH}",
        "attrs --global-option=x", "./local", "https://x/y.whl", "foo @ file:///x", "# c",
        "attrs; python_version<'3' # note", "x\\", "'unbalanced", "-r 'a b.txt'", "\\",
        f"attrs {_HASH[:-1]}", "--hash=md5:" + "a" * 32, "a==1 --hash", "-f http://x",
    ]),
    st.text(max_size=20),
)  # fmt: skip


@given(st.lists(_req_line, max_size=8), st.booleans())
@FUZZ
def test_any_requirements_file_is_read_or_refused_cleanly(
    lines: list[str], constraints: bool
) -> None:
    with _in_temp_dir() as tmp:
        (tmp / "other.txt").write_text("idna\n")
        (tmp / "c.txt").write_text("idna<4\n")
        (tmp / "loop.txt").symlink_to("loop.txt")
        os.mkfifo(tmp / "fifo")
        (tmp / "self.txt").write_text("-r self.txt\n")
        path = tmp / "requirements.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
        _only_clean_errors(lambda: read_requirements_txt(path, constraints=constraints))


# -- the command line --------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeIndex]:
    dists = tmp_path_factory.mktemp("fuzz-dists")
    with FakeIndex() as index:
        index.add(make_wheel(dists, "app", "1.0", requires_dist=["lib>=1"]))
        index.add(make_sdist(dists, "app", "1.0", requires_dist=["lib>=1"]))
        index.add(make_wheel(dists, "lib", "1.0"))
        yield index


@pytest.fixture(scope="module")
def trees(upstream: FakeIndex, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle (``tree``) and a full mirror (``mirror``), built once, copied per example."""
    base = tmp_path_factory.mktemp("fuzz-trees")
    (base / "tree").mkdir()
    (base / "tree" / "morgan.ini").write_text(_CONFIG)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["mirror", "-i", str(base / "tree"), "-I", upstream.url, "-q"]) == 0
        assert main(["sync", "-i", str(base / "mirror"), "-I", upstream.url, "-q"]) == 0
    return base


_COMMANDS = [
    "mirror", "sync", "verify", "genlocal", "copy_server", "nginx-config", "generate_env",
    "generate_reqs", "version", "help", "", "mirrorr", "-", "--",
]  # fmt: skip
_PATHS = [
    "mirror",
    "tree",
    "tree",
    "tree/",
    "new",
    "sub/tree",
    ".",
    "file.txt",
    "fifo",
    "tree/morgan.ini",
    "",
]
_FLAGS: dict[str, list[str] | None] = {
    "-i": _PATHS, "--index-path": _PATHS, "-c": [*_PATHS, "/dev/zero", "/dev/null", "cfg.ini"],
    "--config": ["cfg.ini"], "-I": ["URL", "URL?x=1", "URL#frag", "http://127.0.0.1:99999/",
    "ftp://127.0.0.1/", "http://", "x"], "--index-url": ["URL"], "-a": None, "-W": None,
    "--mirror-all-versions": None, "--pre": None, "--no-prefer-binary": None,
    "--static-metadata-only": None, "--dry-run": None, "--prune": None,
    "--skip-server-copy": None, "--package-type-regex": ["(", "whl", ".*", "[", ""],
    "--workers": ["0", "1", "-3", "x", "1e9", "99999999999999999999"], "--diff-file": [
    "d.txt", "tree/d.txt", "fifo", "sub", ""], "--diff-append-epoch": None,
    "--wait-lock": ["nan", "inf", "-1", "0", "x", "1e400"], "--serial-source": ["auto",
    "names", "x"], "--index-only": None, "--exclude": ["(", "^a", ""],
    "--prerelease-exclude": ["["], "--max-deletions": ["-1", "0", "x"], "--repair": None,
    "--remove-unreferenced": None, "--from": _PATHS, "-H": ["127.0.0.1", "a;b", "", "::1"],
    "-p": ["99999", "-1", "x", "0"], "--no-metadata": None, "-e": ["x", "a\nb", "", "../x",
    "é" * 200], "-m": [">=", "~=", "x"], "-v": None, "-q": None, "-vv": None, "--help": None,
    "-h": None, "--no-cross-host-redirects": None, "--threads": ["0", "x"], "--bogus": None,
}  # fmt: skip


# Values a careful user gives, drawn most of the time, so that many runs get far.
_GOOD = {
    "-i": ["tree", "mirror"], "--index-path": ["tree"], "-c": ["cfg.ini", "tree/morgan.ini"],
    "--config": ["cfg.ini"], "-I": ["URL"], "--index-url": ["URL"], "--workers": ["1", "4"],
    "--diff-file": ["d.txt"], "--wait-lock": ["0", "1"], "--package-type-regex": ["whl"],
    "--serial-source": ["auto", "names", "simple"], "--exclude": ["^a"], "--max-deletions":
    ["0", "5"], "-H": ["127.0.0.1"], "-p": ["8080"], "-e": ["x"], "-m": [">=", "=="],
    "--from": ["tree"], "--prerelease-exclude": ["^lib"],
}  # fmt: skip
_RUN = ["-i", "-c", "-I", "--wait-lock", "--diff-file", "--workers", "--skip-server-copy"]
_OWN = {
    "mirror": [*_RUN, "-a", "-W", "--pre", "--no-prefer-binary", "--static-metadata-only",
               "--dry-run", "--diff-append-epoch", "--prune", "--package-type-regex",
               "--no-cross-host-redirects"],
    "sync": [*_RUN, "--dry-run", "--serial-source", "--index-only", "--exclude",
             "--prerelease-exclude", "--max-deletions", "--diff-append-epoch"],
    "verify": ["-i", "--repair", "--remove-unreferenced", "-I", "--wait-lock"],
    "genlocal": ["-i", "--from", "--wait-lock"],
    "copy_server": ["-i", "--wait-lock"],
    "nginx-config": ["-i", "-H", "-p"],
    "generate_env": ["-e"],
    "generate_reqs": ["-m"],
}  # fmt: skip


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """Mostly a command with its own flags (valid or odd values), sometimes another
    command's flag, a misspelt command or a stray word."""
    command = draw(st.sampled_from([*_OWN, *_OWN, *_COMMANDS]))
    own = _OWN.get(command, [])

    def flag() -> list[str]:
        foreign = not own or draw(_rarely(10))
        name = draw(st.sampled_from(list(_FLAGS) if foreign else own))
        choices = _FLAGS.get(name)
        if choices is None:
            return [name]
        good = _GOOD.get(name, choices[:1])
        value = draw(
            st.one_of(*[st.sampled_from(good)] * 4, st.sampled_from(choices), st.text(max_size=8))
        )

        if value.startswith("/") and not value.startswith("/dev/"):
            value = value.lstrip("/")  # nothing absolute but the devices it only reads
        if draw(st.booleans()) and name.startswith("--"):
            return [f"{name}={value}"]
        return [name, value]

    before = [w for _ in range(draw(st.integers(0, 1))) for w in flag()]
    after = [w for _ in range(draw(st.integers(0, 4))) for w in flag()]
    junk = []
    if draw(_rarely(10)):
        junk = [draw(st.text(max_size=6)).lstrip("/")]
    return [*before, command, *after, *junk]


_CONFIG = """\
[env.linux]
sys_platform = linux
python_version = 3.12

[requirements]
app =
"""


@given(argv=command_lines())
@settings(FUZZ, max_examples=80)
def test_any_command_line_ends_in_a_result_or_a_clean_message(
    upstream: FakeIndex, trees: Path, argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = [a.replace("URL", upstream.url) for a in argv]
    if {"mirror", "sync"} & set(argv) and not {"-I", "--index-url"} & set(argv):
        argv += ["-I", upstream.url]  # never pip's configured index (PyPI), as below
    # pip's settings point at the fake upstream too, whatever reads them
    monkeypatch.setenv("PIP_INDEX_URL", upstream.url)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    with _in_temp_dir() as tmp:
        for name in ("tree", "mirror"):
            shutil.copytree(trees / name, tmp / name, symlinks=True)
        (tmp / "morgan.ini").write_text(_CONFIG)  # the working directory is a tree's too
        (tmp / "cfg.ini").write_text(_CONFIG)
        (tmp / "file.txt").write_text("x")
        os.mkfifo(tmp / "fifo")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except SystemExit as exc:  # argparse's own exits (--help, usage errors)
                rc = exc.code if isinstance(exc.code, int) else 2
        shown = out.getvalue() + err.getvalue()
        assert isinstance(rc, int), (argv, rc)
        assert "Traceback" not in shown, (argv, shown)
        assert not UNEXPECTED.search(shown), (argv, shown)
