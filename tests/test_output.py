"""output.Reporter: rich only for a stream rich may take for a terminal, the same answer
rich gives about every stream, and plain lines elsewhere."""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
import sys

import pytest
from rich.console import Console

from morgan_like.output import Reporter, plainly_no_terminal


class _Stream(io.StringIO):
    """A stream whose isatty() says ``tty`` (raises ValueError for "closed")."""

    def __init__(self, tty: object) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        if self.tty == "closed":
            raise ValueError("I/O operation on closed file")
        return bool(self.tty)


_ENV = ("FORCE_COLOR", "TTY_COMPATIBLE")


@pytest.mark.parametrize(
    ("tty", "force_color", "tty_compatible"),
    list(itertools.product([True, False, "closed"], [None, "", "1"], [None, "", "0", "1"])),
)
def test_a_stream_is_a_terminal_exactly_when_rich_says_so(
    monkeypatch: pytest.MonkeyPatch,
    tty: object,
    force_color: str | None,
    tty_compatible: str | None,
) -> None:
    for name, value in zip(_ENV, (force_color, tty_compatible)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    stream = _Stream(tty)
    rich_says = Console(file=stream, highlight=False, soft_wrap=True).is_terminal
    if plainly_no_terminal(stream):
        assert not rich_says
    for verbosity in (0, 1, 2):
        assert Reporter(verbosity, stream).interactive == (rich_says and verbosity > 0)


_PLAIN_RUN = """
import io, json, sys
from morgan_like.output import Reporter
out = io.StringIO()
sys.stderr = err = io.StringIO()
reporter = Reporter(2, out)
reporter.info("info")
reporter.detail("detail")
reporter.warn("careful")
reporter.error("broken")
reporter.table("Plan", ["project", "size"], [["app", "1.0 KiB"]])
with reporter.transferring("Downloading", 10) as counter:
    counter.advance(10)
with reporter.counting("Resolving") as counter:
    counter.advance()
with reporter.syncing(3) as (projects, data):
    projects.advance()
    data.advance(5)
sys.__stdout__.write(json.dumps(
    {"rich": any(m.startswith("rich") for m in sys.modules), "out": out.getvalue(),
     "err": err.getvalue(), "interactive": reporter.interactive}
))
"""


def test_a_run_into_a_pipe_never_imports_rich_and_prints_plain_lines() -> None:
    env = {k: v for k, v in os.environ.items() if k not in _ENV}
    done = subprocess.run(
        [sys.executable, "-c", _PLAIN_RUN], capture_output=True, text=True, env=env, check=True
    )
    seen = json.loads(done.stdout)
    assert seen["rich"] is False
    assert seen["interactive"] is False
    assert seen["out"].splitlines() == [
        "info",
        "detail",
        "Plan",
        "  project  size   ",
        "  app      1.0 KiB",
        "Resolving: 1 done",
    ]
    assert seen["err"].splitlines() == ["warning: careful", "error: broken"]


def test_a_forced_terminal_still_gets_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    """FORCE_COLOR makes rich take any stream for a terminal: its styled output then."""
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    stream = _Stream(False)
    reporter = Reporter(1, stream)
    assert reporter.interactive
    reporter.info("hello")
    assert "hello" in stream.getvalue()
    assert reporter.console.file is stream
