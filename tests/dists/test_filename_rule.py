"""One rule for a file's name in packages/<project>/, and server.py's copy of it.

``dists.filenames.unsafe_filename`` is the rule; ``vet_filename`` (a page's entries)
and ``tree.layout.check_filename`` (every path we write) apply it, and server.py,
which cannot import the package, carries a copy (``filename_problem``, used when an
import places a file and when a release's metadata is looked up).  Each name below
is judged by all of them, server.py's copy under the oldest CPython it supports too.
"""

from __future__ import annotations

import json
import subprocess

import pytest

import server
from morgan_like.dists.filenames import unsafe_filename, vet_filename
from morgan_like.tree.layout import check_filename

from ..clients import pyenv_python

_VALID = [
    "demo-1.0-py3-none-any.whl",
    "demo-1.0-1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "demo_pkg-2.0.post1+local.1-py2.py3-none-any.whl",
    "demo-1.0.tar.gz",
    "Demo.Pkg-1.0rc1.zip",
    "demo-1.0.tar.bz2",
    "demo-1.0.tgz",
    "demo-1.0.egg",
    "demo-1.0.win32.exe",
]
_ODD = [
    "",
    ".",
    "..",
    "...",
    ".hidden-1.0.tar.gz",
    "demo-1.0.tar.gz.",
    "demo 1.0.tar.gz",
    " demo-1.0.tar.gz",
    "demo-1.0.tar.gz ",
    "demo-1.0%2F.tar.gz",
    "demo-1.0%00.tar.gz",
    "C:demo-1.0.tar.gz",
    "demo:1.0.tar.gz",
    "demo-1.0.tar.gz::$DATA",
    "demo-1.0.tar.gz.metadata",
    "demo-1.0.tar.gz.provenance",
    "~demo-1.0.tar.gz",
    "-",
    "a" * 255,
    "a" * 4096,
    "demo-1.0-py3-none-any.whl#sha256=00",
    "demo-1.0-py3-none-any.whl?x=1",
]
_TRAVERSAL = [
    "../demo-1.0.tar.gz",
    "..\\demo-1.0.tar.gz",
    "demo/../../etc/passwd",
    "/etc/passwd",
    "\\\\host\\share\\demo-1.0.tar.gz",
    "demo-1.0.tar.gz/",
    "demo-1.0.tar.gz\\",
    "./demo-1.0.tar.gz",
]
_UNICODE = [
    "démo-1.0.tar.gz",
    "демо-1.0.tar.gz",
    "演示-1.0.tar.gz",
    "demo-1.0-py3-none-any\N{SNAKE}.whl",
    "demo\N{COMBINING ACUTE ACCENT}-1.0.tar.gz",
    "demo\N{ZERO WIDTH SPACE}-1.0.tar.gz",
    "demo\N{RIGHT-TO-LEFT OVERRIDE}zg.rat-1.0.tar.gz",
    "demo\N{NO-BREAK SPACE}-1.0.tar.gz",
    "demo\N{FULLWIDTH SOLIDUS}-1.0.tar.gz",
    "demo\N{DIVISION SLASH}-1.0.tar.gz",
    "demo\N{LINE SEPARATOR}-1.0.tar.gz",
    "demo\x85-1.0.tar.gz",  # C1 NEL: served, the access log escapes it
    "demo\x9f-1.0.tar.gz",
    "\N{FULLWIDTH FULL STOP}demo-1.0.tar.gz",
    "demo\U0001f40d-1.0.tar.gz",
    "demo\ud800-1.0.tar.gz",
    "demo\udfff-1.0.tar.gz",
    "demo\udc80-1.0.tar.gz",  # what os.fsdecode makes of a stray byte 0x80
    "\ud83d\udc0d-1.0.tar.gz",  # a surrogate pair written out: two unpaired halves
]


def _control() -> list[str]:
    names = []
    for code in [*range(0x20), 0x7F]:
        char = chr(code)
        names += [f"{char}demo-1.0.tar.gz", f"demo{char}-1.0.tar.gz", f"demo-1.0.tar.gz{char}"]
    return names


def _every_char() -> list[str]:
    """A wheel name with one character put in, for every code point of the BMP's first
    block and a sample beyond (surrogates included)."""
    points = [*range(0x800), *range(0xD7F0, 0xE010), *range(0xFFF0, 0x10000), 0x10FFFF]
    return [f"demo-1.0-py3-none-an{chr(c)}y.whl" for c in points]


NAMES = [*_VALID, *_ODD, *_TRAVERSAL, *_UNICODE, *_control(), *_every_char()]
REFUSED = [*_TRAVERSAL, "", ".", "..", ".hidden-1.0.tar.gz", *_control()]


def test_the_rule_refuses_traversal_hidden_control_and_surrogates() -> None:
    assert [n for n in REFUSED if unsafe_filename(n) is None] == []
    assert [n for n in _VALID if unsafe_filename(n) is not None] == []
    surrogates = [n for n in _UNICODE if any(0xD800 <= ord(c) <= 0xDFFF for c in n)]
    assert {unsafe_filename(n) for n in surrogates} == {"unpaired surrogate in filename"}
    others = [n for n in _UNICODE if n not in surrogates]
    assert [n for n in others if unsafe_filename(n) is not None] == []


def _disagreements(name: str) -> list[str]:
    problem = unsafe_filename(name)
    found = []
    if server.filename_problem(name) != problem:
        found.append(f"server.filename_problem: {server.filename_problem(name)!r}")
    if (server.layout_kind(f"packages/demo/{name}") == "project") != (problem is None):
        found.append("server.layout_kind")
    if problem is not None and vet_filename(name)[0] != problem:
        found.append(f"vet_filename: {vet_filename(name)[0]!r}")
    try:
        check_filename(name)
    except ValueError:
        if problem is None:
            found.append("check_filename refuses it")
    else:
        if problem is not None:
            found.append("check_filename takes it")
    return [f"{name!r} ({problem!r}): {what}" for what in found]


def test_every_caller_applies_the_one_rule() -> None:
    assert [d for name in NAMES for d in _disagreements(name)] == []


def test_server_copy_agrees_under_the_oldest_python() -> None:
    python = pyenv_python("3.6.15")
    if not python.exists():
        pytest.skip("pyenv 3.6.15 not installed")
    code = (
        "import json, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import server\n"
        "names = [''.join(map(chr, n)) for n in json.load(sys.stdin)]\n"
        "print(json.dumps([server.filename_problem(n) for n in names]))\n"
    )
    proc = subprocess.run(
        [str(python), "-I", "-c", code, str(server.__file__).rsplit("/", 1)[0]],
        # code points: JSON would join two written-out surrogate halves into one character
        input=json.dumps([[ord(c) for c in n] for n in NAMES]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [unsafe_filename(n) for n in NAMES]
