"""What the user sees: rich progress and tables on a terminal, plain lines otherwise.

Everything user-facing goes through one Reporter so that ``-v``/``-q`` and
non-terminal output (CI logs, pipes) behave the same in every command.  rich is
imported only for a stream it may take for a terminal: a run into a pipe or a log
file (cron, CI, a no-op re-run) never pays for importing it.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def plainly_no_terminal(stream: TextIO) -> bool:
    """True when rich's Console would surely not take ``stream`` for a terminal: no
    isatty() saying yes, and neither variable by which rich takes a stream for one all
    the same (FORCE_COLOR, TTY_COMPATIBLE); else only the Console itself can say."""
    if "FORCE_COLOR" in os.environ or "TTY_COMPATIBLE" in os.environ:
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return isatty is None or not isatty()
    except ValueError:  # a closed stream: rich says no terminal too
        return True


def _console(stream: TextIO) -> Console:
    from rich.console import Console

    return Console(file=stream, highlight=False, soft_wrap=True)


class Reporter:
    """Levels: 0 quiet (errors only), 1 normal, 2 verbose."""

    def __init__(self, verbosity: int = 1, stream: TextIO | None = None) -> None:
        self.verbosity = verbosity
        self.stream = stream or sys.stdout
        self._err_stream = sys.stderr
        # stream -> its rich Console, made the first time rich is asked about the stream
        self._consoles: dict[int, Console] = {}
        self.interactive = verbosity > 0 and self._is_terminal(self.stream)
        self._lock = threading.Lock()

    @property
    def console(self) -> Console:
        return self._console_of(self.stream)

    def _console_of(self, stream: TextIO) -> Console:
        console = self._consoles.get(id(stream))  # the streams live as long as self
        if console is None:
            console = self._consoles[id(stream)] = _console(stream)
        return console

    def _is_terminal(self, stream: TextIO) -> bool:
        return not plainly_no_terminal(stream) and self._console_of(stream).is_terminal

    def _print(self, text: str, *, err: bool = False, style: str | None = None) -> None:
        with self._lock:
            stream = self._err_stream if err else self.stream
            if self._is_terminal(stream):
                self._console_of(stream).print(text, style=style, markup=False)
            else:
                stream.write(text + "\n")
                stream.flush()

    def info(self, text: str) -> None:
        if self.verbosity >= 1:
            self._print(text)

    def detail(self, text: str) -> None:
        if self.verbosity >= 2:
            self._print(text, style="dim")

    def warn(self, text: str) -> None:
        if self.verbosity >= 1:
            self._print(f"warning: {text}", err=True, style="yellow")

    def error(self, text: str) -> None:
        self._print(f"error: {text}", err=True, style="bold red")

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if self.verbosity < 1:
            return
        if self._is_terminal(self.stream):
            from rich.table import Table

            table = Table(title=title, title_justify="left")
            for i, col in enumerate(columns):
                table.add_column(
                    col,
                    justify="right"
                    if i and col in ("size", "files", "projects", "bytes")
                    else "left",
                )
            for row in rows:
                table.add_row(*row)
            with self._lock:
                self.console.print(table)
            return
        self._print(title)
        widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
        self._print("  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths)))
        for row in rows:
            self._print("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths)))

    @contextmanager
    def counting(self, description: str, total: int | None = None) -> Iterator[Counter]:
        """A step counter (resolution): a spinner on a terminal, a closing line otherwise."""
        if not self.interactive:
            counter = Counter(None, None)
            yield counter
            self.detail(f"{description}: {counter.count} done")
            return
        from rich.progress import (
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            MofNCompleteColumn() if total else TextColumn("{task.completed}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        with progress:
            task = progress.add_task(description, total=total)
            yield Counter(progress, task)

    @contextmanager
    def transferring(self, description: str, total_bytes: int) -> Iterator[Counter]:
        """Bytes, rate and ETA for downloads."""
        if not self.interactive:
            counter = Counter(None, None)
            yield counter
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )
        with progress:
            task = progress.add_task(description, total=total_bytes or None)
            yield Counter(progress, task)

    @contextmanager
    def syncing(self, total_projects: int) -> Iterator[tuple[Counter, Counter]]:
        """Two counters on one display: projects done of ``total_projects``, and bytes
        downloaded (total unknown up front: pages are read as the run goes)."""
        if not self.interactive:
            yield Counter(None, None), Counter(None, None)
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            MofNCompleteColumn(),
            BarColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        with progress:
            projects = progress.add_task("Projects", total=total_projects)
            data = progress.add_task("Bytes", total=None)
            yield Counter(progress, projects), _ByteCounter(progress, data)


class Counter:
    """Thread-safe advance() for a progress task, or a plain count without one."""

    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self.progress = progress
        self.task = task
        self.count = 0
        self._lock = threading.Lock()

    def advance(self, amount: int = 1) -> None:
        with self._lock:
            self.count += amount
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, advance=amount)

    def set_total(self, total: int) -> None:
        """The work grew while it ran (build requirements found during downloads)."""
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, total=total or None)


class _ByteCounter(Counter):
    """Bytes shown as a size in the task's description (its total is not known)."""

    def advance(self, amount: int = 1) -> None:
        with self._lock:
            self.count += amount
            count = self.count
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, description=f"Downloaded {human_size(count)}")
