"""What the user sees: rich progress and tables on a terminal, plain lines otherwise.

Everything user-facing goes through one Reporter so that ``-v``/``-q`` and
non-terminal output (CI logs, pipes) behave the same in every command.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


class Reporter:
    """Levels: 0 quiet (errors only), 1 normal, 2 verbose."""

    def __init__(self, verbosity: int = 1, stream: TextIO | None = None) -> None:
        self.verbosity = verbosity
        self.stream = stream or sys.stdout
        self.console = Console(file=self.stream, highlight=False, soft_wrap=True)
        self.err_console = Console(file=sys.stderr, highlight=False, soft_wrap=True)
        self.interactive = self.console.is_terminal and verbosity > 0
        self._lock = threading.Lock()

    def _print(
        self, text: str, *, console: Console | None = None, style: str | None = None
    ) -> None:
        with self._lock:
            target = console or self.console
            if target.is_terminal:
                target.print(text, style=style, markup=False)
            else:
                target.file.write(text + "\n")
                target.file.flush()

    def info(self, text: str) -> None:
        if self.verbosity >= 1:
            self._print(text)

    def detail(self, text: str) -> None:
        if self.verbosity >= 2:
            self._print(text, style="dim")

    def warn(self, text: str) -> None:
        if self.verbosity >= 1:
            self._print(f"warning: {text}", console=self.err_console, style="yellow")

    def error(self, text: str) -> None:
        self._print(f"error: {text}", console=self.err_console, style="bold red")

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        if self.verbosity < 1:
            return
        if self.console.is_terminal:
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
