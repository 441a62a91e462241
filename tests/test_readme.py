"""The README is a contract: its tree drawing and every shell block are checked here.

* The drawing under "The tree" is compared with a real tree built from the fake
  upstream: every file the run left matches a drawn entry, and every drawn entry
  names something the tree has (fast loop).
* Every fenced shell block runs as written (e2e), in order, in a workspace that
  is a copy of the repository, against the fake upstream.  What is rewritten, and
  why, is the table ``REWRITES``: the index (``PIP_INDEX_URL``, which the tool and
  pip both read, so ``mirror`` without ``-I`` meets the fake upstream as it would
  PyPI), ``HOST`` and the port, the example paths, and a synopsis's optional
  ``[-x ARG]`` groups (all taken).  A command that starts a server runs in the
  background for the blocks after it and is stopped at the end.  A block that
  cannot run here says why in ``NOT_RUN``; none is skipped silently.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from morgan_like.cli import main

from .clients import client_env
from .distbuilder import make_sdist, make_tiny_backend_wheel, make_wheel
from .fakeindex import FakeIndex, serve_directory
from .helpers import ini_env_block

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHELL_LANGS = {"sh", "bash", "shell", "console"}
TEST_WHEELS = Path.home() / ".cache" / "morgan-like-test-wheels"


# -- reading the README -------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A fenced block: its language, first line number in README.md, text, section."""

    lang: str
    line: int
    text: str
    section: str

    @property
    def id(self) -> str:
        words = re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-")
        return f"L{self.line}-{words or 'top'}"


def fenced_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    section, lang, start, body = "", None, 0, []
    for number, line in enumerate(text.splitlines(), 1):
        if lang is None:
            if line.startswith("#"):
                section = line.lstrip("#").strip()
            elif line.startswith("```"):
                lang, start, body = line[3:].strip(), number + 1, []
        elif line.startswith("```"):
            blocks.append(Block(lang, start, "\n".join(body), section))
            lang = None
        else:
            body.append(line)
    return blocks


def shell_blocks() -> list[Block]:
    return [b for b in fenced_blocks(README.read_text("utf-8")) if b.lang in SHELL_LANGS]


def block_commands(block: Block) -> list[str]:
    """One command per line (``\\`` continuations joined, ``$`` prompts and a console
    block's output lines dropped)."""
    joined = re.sub(r"\s*\\\n\s*", " ", block.text)
    commands = []
    for line in joined.splitlines():
        line = line.strip()
        if block.lang == "console":
            if not line.startswith("$ "):
                continue  # output shown in the README
            line = line[2:]
        if line and not line.startswith("#"):
            commands.append(line)
    return commands


def and_parts(command: str) -> list[str]:
    """``a && b && c`` -> [a, b, c] (outside quotes); each part runs on its own, so a
    server at the end of a chain can be started in the background."""
    parts, current, quote = [], "", ""
    i = 0
    while i < len(command):
        ch = command[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif command.startswith("&&", i):
            parts.append(current.strip())
            current, i = "", i + 2
            continue
        current += ch
        i += 1
    parts.append(current.strip())
    return [p for p in parts if p]


# -- the tree drawing ---------------------------------------------------------------------


def drawn_entries() -> list[str]:
    """The path tokens of the drawing under "## The tree" (descriptions left out)."""
    block = next(
        b
        for b in fenced_blocks(README.read_text("utf-8"))
        if b.section == "The tree" and not b.lang
    )
    entries = []
    for line in block.text.splitlines()[1:]:  # the first line names the root
        for token in re.split(r"\s{2,}", line.strip()):
            if token and " " not in token and ("/" in token or "." in token):
                entries.append(token)
    return entries


def entry_pattern(entry: str) -> re.Pattern[str]:
    """``simple/<project>/index.html`` -> a regex; ``...`` is anything below, and an
    entry ending in ``/`` is a folder (anything in it)."""
    pattern = ""
    for piece in re.split(r"(<[a-z]+>|\.\.\.)", entry.rstrip("/")):
        if piece == "...":
            pattern += ".+"
        elif piece.startswith("<"):
            pattern += "[^/]+"
        else:
            pattern += re.escape(piece)
    if entry.endswith("/"):
        pattern += "(/.*)?"
    return re.compile(pattern)


# Scratch folders a finished run has swept: a real tree has them only during a run.
DURING_A_RUN_ONLY = {".morgan-like/tmp/", ".morgan-like/cache/"}


def test_the_tree_drawing_matches_a_real_tree(
    fake_index: FakeIndex, dists: Path, tmp_path: Path
) -> None:
    fake_index.add(make_tiny_backend_wheel(dists))
    fake_index.add(make_wheel(dists, "app", "1.0", requires_dist=["lib"]))
    fake_index.add(make_sdist(dists, "app", "1.0", requires_dist=["lib"]))
    fake_index.add(make_wheel(dists, "lib", "1.0"))
    fake_index.add(make_sdist(dists, "srconly", "1.0"))
    outside = tmp_path / "config"
    outside.mkdir()
    (outside / "requirements.txt").write_text("app\nsrconly\n")
    (outside / "morgan.ini").write_text(
        ini_env_block("linux", "3.12.1")
        + "[requirements]\n\n[requirements_from]\nrequirements = requirements.txt\n"
    )
    root = tmp_path / "bundle"
    args = ["mirror", "-i", str(root), "-I", fake_index.url, "-c", str(outside / "morgan.ini")]
    assert main([*args, "-q"]) == 0
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    entries = drawn_entries()
    patterns = {entry: entry_pattern(entry) for entry in entries}
    undrawn = [f for f in files if not any(p.fullmatch(f) for p in patterns.values())]
    assert undrawn == [], "files the README's tree drawing does not show"
    missing = [
        entry
        for entry, pattern in patterns.items()
        if entry not in DURING_A_RUN_ONLY and not any(pattern.fullmatch(f) for f in files)
    ]
    assert missing == [], "entries of the README's tree drawing the tree does not have"
    assert set(entries) >= DURING_A_RUN_ONLY  # drawn, though swept by the end


def test_the_block_reader_sees_every_block_and_splits_chains() -> None:
    blocks = shell_blocks()
    assert blocks, "README.md has no shell block"
    assert and_parts("a 'x && y' && b") == ["a 'x && y'", "b"]
    assert block_commands(Block("console", 1, "$ a \\\n  b\nout\n# c", "")) == ["a b"]


# -- running the blocks -------------------------------------------------------------------

# Blocks not run here, by their exact text, with the reason.
NOT_RUN = {
    "python3 -m venv .venv && .venv/bin/python -m pip install -e '.[test]' && "
    ".venv/bin/python -m pytest -q": (
        "runs this whole suite, this test included, and installs the test extras from "
        "PyPI; .ci/run runs it as written"
    ),
}

# What the fake upstream offers for the quick start's examples/bundle/morgan.ini.
QUICK_START = [
    ("requests", "2.32.3", ["charset-normalizer<4,>=2", "idna<4,>=2.5", "urllib3<3,>=1.21.1",
                            "certifi>=2017.4.17"]),
    ("charset-normalizer", "3.4.0", []),
    ("idna", "3.10", []),
    ("urllib3", "2.2.3", []),
    ("certifi", "2024.8.30", []),
    ("attrs", "24.2.0", []),
    ("packaging", "24.2", []),
    ("tomli", "2.0.2", []),
    ("colorama", "0.4.6", []),
]  # fmt: skip


# Files a block names that its reader writes first (a synopsis's config), in the workspace.
USER_FILES = {
    "mirror.ini": "# the -c of the sync synopsis: a [sync] section, here with its defaults\n[sync]\n",
    # The curated slice's: the README's example names projects the fake upstream lacks.
    "slice.ini": "[sync]\nprojects =\n    requests\n    attrs\nkeep-latest = 2\n\n"
    + ini_env_block("linux311", "3.11.7")
    + ini_env_block("linux312", "3.12.1"),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Workspace:
    """A copy of the repository, the fake upstream, the venvs and what runs in the
    background."""

    root: Path
    index: FakeIndex
    port: int
    shims: Path
    tool: Path  # the venv that `python3` and `morgan-like` come from
    client: Path  # the venv `pip` and `uv` install into ("a machine of a target env")
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = client_env()
        env["PATH"] = os.pathsep.join([str(self.shims), env.get("PATH", "")])
        env["PIP_INDEX_URL"] = self.index.url
        env.update(extra)
        return env


REWRITES: list[tuple[str, str, str]] = [
    # (regex, replacement template, why)
    (r"\bHOST\b", "127.0.0.1", "the README's placeholder for the serving machine"),
    (r"\b8080\b", "{port}", "a free port: the machine is shared"),
    (r"file:///path/to/bundle", "{bundle_uri}", "the example bundle, built in the workspace"),
    (r"/srv/mirror", "{root}/srv-mirror", "a sync tree in the workspace"),
    (r"/srv/slice", "{root}/srv-slice", "a curated slice in the workspace"),
    (r"UPSTREAM_SIMPLE_URL", "{index}", "the fake upstream"),
    (r"https://pypi\.org/simple/?", "{index}", "the fake upstream"),
    (r"\[(-[^\]]*)\]", r"\1", "a synopsis's optional [-x ARG] groups, all taken"),
]


def rewrite(command: str, ws: Workspace) -> str:
    values = {
        "port": str(ws.port),
        "bundle_uri": (ws.root / "examples" / "bundle").as_uri(),
        "root": str(ws.root),
        "index": ws.index.url,
    }
    for pattern, template, _why in REWRITES:
        command = re.sub(pattern, template.format(**values) if "{" in template else template,
                         command)  # fmt: skip
    return command


def _shim(path: Path, target: str) -> None:
    path.write_text(f'#!/bin/sh\nexec {target} "$@"\n')
    path.chmod(0o755)


def _venv(where: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "venv", str(where)], check=True, env=client_env(), timeout=300
    )
    return where


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    base = tmp_path_factory.mktemp("readme")
    root = base / "repo"
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "*.egg-info"
    )
    shutil.copytree(REPO, root, ignore=ignore, symlinks=True)
    bundle = root / "examples" / "bundle"
    for leftover in bundle.iterdir():  # a tree someone built here: only the config is the example
        if leftover.name not in ("morgan.ini", ".gitignore"):
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    for name, text in USER_FILES.items():
        (root / name).write_text(text)
    with FakeIndex() as index:
        for name, version, requires in QUICK_START:
            index.add(make_wheel(base / "dists", name, version, requires_dist=requires))
        ws = Workspace(root, index, free_port(), base / "shims", *_venvs(base))
        _shims(ws)
        try:
            yield ws
        finally:
            _stop(ws.servers)


def _venvs(base: Path) -> tuple[Path, Path]:
    """The tool's venv and the client's.  The tool's sees the test venv's packages
    (morgan-like's dependencies), as a machine that has them installed: `pip install .`
    then needs only the build backend from an index."""
    tool = _venv(base / "tool")
    purelib = Path(sysconfig.get_paths(vars={"base": str(tool)})["purelib"])
    (purelib / "test-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return tool, _venv(base / "client")


def _shims(ws: Workspace) -> None:
    """The commands a block names, first on its PATH: morgan-like as installed by the
    quick start (else this venv's), python3 from the tool's venv, pip from the client's."""
    ws.shims.mkdir()
    tool_morgan = shlex.quote(str(ws.tool / "bin" / "morgan-like"))
    own_morgan = shlex.quote(str(Path(sys.executable).parent / "morgan-like"))
    _shim(
        ws.shims / "morgan-like",
        f'"$(test -x {tool_morgan} && echo {tool_morgan} || echo {own_morgan})"',
    )
    for name in ("python3", "python"):
        _shim(ws.shims / name, shlex.quote(str(ws.tool / "bin" / "python")))
    _shim(ws.shims / "pip", shlex.quote(str(ws.client / "bin" / "pip")))
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv:
        _shim(ws.shims / "uv", shlex.quote(uv))


def _stop(servers: list[subprocess.Popen[bytes]]) -> None:
    """The servers the blocks started (each in its own session), by their pids."""
    for server in servers:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def _starts_a_server(command: str) -> bool:
    words = shlex.split(command, comments=True)
    if "--verify" in words or "--help" in words or "-h" in words:
        return False
    return any(w.endswith("server.py") for w in words) or words[:2] == ["morgan-like", "serve"]


def _start_server(command: str, ws: Workspace) -> str:
    """Start ``command`` in the background; return its output if it stopped instead of
    listening on the workspace's port."""
    log = open(ws.root.parent / f"server-{len(ws.servers)}.log", "w+b")  # noqa: SIM115
    proc = subprocess.Popen(
        ["bash", "-c", command], cwd=ws.root, env=ws.env(), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    ws.servers.append(proc)
    with log:  # the server writes through its own copy
        deadline = time.monotonic() + 60  # a wait for start-up, not a measurement
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                output = log.read().decode("utf-8", "replace")[-3000:]
                return f"exited {proc.returncode}: {output}"
            try:
                socket.create_connection(("127.0.0.1", ws.port), timeout=1).close()
                return ""
            except OSError:
                time.sleep(0.2)
    return "not listening after 60 s"


def _client_packages(ws: Workspace) -> set[str]:
    out = subprocess.run(
        [str(ws.client / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True, text=True, env=client_env(), check=True,
    ).stdout  # fmt: skip
    return {line.split("==")[0].lower() for line in out.splitlines() if "==" in line}


def _install_project(command: str, ws: Workspace) -> str | None:
    """``python3 -m pip install .``: the project's build backend (hatchling) comes from
    an index, which the fake upstream does not carry.  Run as written, pointed at the
    wheels kept in ~/.cache/morgan-like-test-wheels, when hatchling is among them;
    else the installed morgan-like stands in (the reason is returned, and printed)."""
    if not list(TEST_WHEELS.glob("hatchling-*.whl")):
        return (
            f"{command!r} not run: no hatchling wheel in {TEST_WHEELS} (the project's build "
            "backend; the tests never fetch it); the installed morgan-like stands in"
        )
    with serve_directory(TEST_WHEELS) as wheels:
        _run(command, ws, PIP_INDEX_URL=wheels.url)
    return None


def _run(command: str, ws: Workspace, **env: str) -> None:
    proc = subprocess.run(
        ["bash", "-c", command], cwd=ws.root, env=ws.env(**env), capture_output=True,
        timeout=600,
    )  # fmt: skip
    out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    print(f"$ {command}\n{out[-1500:]}")
    assert proc.returncode == 0, f"$ {command}\nexit {proc.returncode}\n{out[-4000:]}"
    assert "Traceback" not in out and "unexpected" not in out, f"$ {command}\n{out[-4000:]}"


def _bench_flags(command: str, ws: Workspace) -> None:
    """A benchmark takes minutes and needs morgan 0.15, bandersnatch, nginx or live
    PyPI: the script and each flag the README gives it are checked through --help."""
    words = shlex.split(command, comments=True)
    script = next(w for w in words if w.startswith("bench/"))
    flags = [w for w in words if w.startswith("--")]
    proc = subprocess.run(
        [sys.executable, script, "--help"], cwd=ws.root, env=ws.env(), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, f"{script} --help: {proc.stderr[-2000:]}"
    for flag in flags:
        assert flag in proc.stdout, f"{script} has no {flag}"


@pytest.mark.e2e
@pytest.mark.parametrize("block", shell_blocks(), ids=lambda b: b.id)
def test_readme_shell_block_runs_as_written(block: Block, workspace: Workspace) -> None:
    if block.text.strip() in NOT_RUN:
        pytest.skip(NOT_RUN[block.text.strip()])
    for command in block_commands(block):
        for part in and_parts(command):
            part = rewrite(part, workspace)
            if part == "python3 -m pip install .":
                note = _install_project(part, workspace)
                if note:
                    warnings.warn(note, stacklevel=1)
            elif shlex.split(part, comments=True)[0] == "python" and "bench/" in part:
                _bench_flags(part, workspace)
            elif _starts_a_server(part):
                failure = _start_server(part, workspace)
                assert not failure, f"$ {part}\n{failure}"
            elif shlex.split(part, comments=True)[0] in ("pip", "uv"):
                before = _client_packages(workspace)
                _run(part, workspace, VIRTUAL_ENV=str(workspace.client))
                added = _client_packages(workspace) - before
                assert added, f"$ {part}\ninstalled nothing"
                # The next command installs again from scratch.
                subprocess.run(
                    [str(workspace.client / "bin" / "python"), "-m", "pip", "uninstall", "-y",
                     *sorted(added)],
                    check=True, capture_output=True, env=client_env(),
                )  # fmt: skip
            else:
                _run(part, workspace)
