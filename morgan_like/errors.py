"""Exceptions that the CLI turns into one clear message and a non-zero exit."""

from __future__ import annotations

from dataclasses import dataclass

# A line of a message longer than this is shown cut (a 50 MB bad value is not echoed).
CLIP_LINE = 400


def clip(text: str, limit: int = CLIP_LINE) -> str:
    """``text`` with each line over ``limit`` characters cut in its middle to about half
    of it, saying how much was left out: its start and its end (often the words after
    a quoted value) stay readable."""
    lines = []
    for line in text.split("\n"):
        if len(line) > limit:
            head, tail = limit * 3 // 8, limit // 8
            gone = len(line) - head - tail
            line = f"{line[:head]}…[{gone:,} characters left out]…{line[-tail:]}"
        lines.append(line)
    return "\n".join(lines)


class MorganLikeError(Exception):
    """Base for every error the user should see as a message, not a traceback."""

    exit_code = 1


@dataclass
class ConfigError(MorganLikeError):
    """A bad config: names the file, section and key, what is wrong and what to write."""

    file: str
    problem: str
    section: str | None = None
    key: str | None = None
    hint: str | None = None
    line: int | None = None

    exit_code = 2

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.section is not None:
            where += f" [{self.section}]"
        if self.key is not None:
            where += f" {self.key}"
        msg = f"{where}: {self.problem}"
        if self.hint:
            msg += f"\n  hint: {self.hint}"
        return clip(msg)


class UpstreamError(MorganLikeError):
    """The upstream index could not give us what we asked for."""


class ProjectNotFound(UpstreamError):
    """A project that does not exist upstream; ``chain`` says who wanted it."""

    def __init__(self, project: str, index_url: str, chain: tuple[str, ...] = ()):
        self.project = project
        self.index_url = index_url
        self.chain = chain
        super().__init__(project)

    def __str__(self) -> str:
        msg = f"project {self.project!r} does not exist on {self.index_url}"
        if self.chain:
            msg += "\n  wanted by: " + " -> ".join(self.chain)
        return msg


class RangeError(UpstreamError):
    """A 206 answer we cannot use (no or wrong Content-Range, short body)."""


class DownloadError(MorganLikeError):
    """One file could not be fetched intact; the message names it."""


class TagKeyError(ValueError):
    """A bad tag-derivation key; environments.py turns it into a ConfigError for the section."""

    def __init__(self, problem: str, key: str, hint: str):
        super().__init__(problem)
        self.problem, self.key, self.hint = problem, key, hint


class MetadataError(MorganLikeError):
    """A distribution's dependencies could not be read statically."""


class ResolutionError(MorganLikeError):
    """No set of versions satisfies the requirements of one environment."""


@dataclass(frozen=True)
class MissingWheel:
    """A project a binary-only env needs and has no usable wheel of, and why."""

    project: str
    version: str
    reason: str


class NoWheelError(ResolutionError):
    """A binary-only env needs projects it has no wheel of; lists every one of them."""

    def __init__(self, env: str, missing: tuple[MissingWheel, ...]) -> None:
        self.env = env
        self.missing = missing
        super().__init__(env)

    def __str__(self) -> str:
        lines = [f"binary-only, and no usable wheel for {len(self.missing)} project(s):"]
        lines += [f"  {m.project} {m.version}: {m.reason}" for m in self.missing]
        lines.append(
            "  hint: widen the env's tags as the reasons say, pin versions that have wheels, "
            "or set binary-only = false in [env." + self.env + "] to build these on the target"
        )
        return "\n".join(lines)


class SyncRefused(MorganLikeError):
    """A sync's plan would delete too much (or the list is empty): nothing was changed."""

    exit_code = 3


class TreeLockedError(MorganLikeError):
    """Another run holds the tree's lock: one writing run per tree at a time."""


class LimitExceeded(UpstreamError):
    """A body went past a size cap (or, ``timed_out``, its deadline); retrying would not help."""

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class BodyError(UpstreamError):
    """A body broke off (truncated, timed out, reset) after its headers; a retry may work."""


class Interrupted(MorganLikeError):
    """Ctrl+C stopped the run; the message says what the tree holds now."""

    exit_code = 130
