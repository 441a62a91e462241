"""pip requirements files: requirements, ``-c`` constraints and ``--hash`` pins.

Listed under ``[requirements_from]``; each line remembers where it came from
(``requirements.txt:3``) so that a resolution error can point at it.  Only
what a bundle can serve is accepted: names with specifiers, extras, markers
and ``--hash`` options.  Every other pip option is refused with a message
naming the line and what to do instead: nothing is ever dropped silently.

``-r`` and ``-c`` paths are relative to the file that names them, as in pip;
a file that includes itself, directly or not, is an error.  As in pip, every
line of a constraints file, and of the files it includes with ``-r``, is a
constraint.  Every file read is recorded with its ``-r``/``-c`` lines
(``RequirementsFile.files``), so that a tree can carry copies that still name
each other (``config.inputs``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement

from morgan_like.config.textfile import read_input_text, resolved
from morgan_like.errors import ConfigError

TXT_HINT = 'write one requirement a line, e.g. requests>=2.24.0 or foo>=1; python_version < "3.8"'
# pip's strong hashes (pip.utils.hashes.STRONG_HASHES) and their hex digest lengths.
HASH_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
HASH_HINT = "write --hash=sha256:<64 hex digits> (pip hash FILE prints it)"
COMMENT = re.compile(r"(^|\s+)#.*$")
_INCLUDE = ("-r", "--requirement")
_CONSTRAINT = ("-c", "--constraint")
_EDITABLE = "editable installs are not supported (a bundle holds index releases)"
_FIND_LINKS = "find-links are not supported"
_INDEX = "index options are not read from requirements files"
# pip's global options: (why a bundle does not take them here, what to do instead).
_REFUSED = {
    "-e": (_EDITABLE, "replace the line with the project's name and version, e.g. foo==1.2"),
    "--editable": (
        _EDITABLE,
        "replace the line with the project's name and version, e.g. foo==1.2",
    ),
    "-i": (_INDEX, "set index-url in the [mirror] section of morgan.ini instead"),
    "--index-url": (_INDEX, "set index-url in the [mirror] section of morgan.ini instead"),
    "--extra-index-url": ("extra indexes are not supported", "remove the line"),
    "--no-index": ("--no-index does not apply to a bundle", "remove the line"),
    "-f": (_FIND_LINKS, "remove the line"),
    "--find-links": (_FIND_LINKS, "remove the line"),
    "--pre": (
        "--pre is not read from requirements files",
        "run morgan-like mirror --pre, or write a prerelease specifier (foo>=2.0b1)",
    ),
    "--prefer-binary": (
        "--prefer-binary is not read from requirements files",
        "it is the default; prefer-binary in the [mirror] section of morgan.ini sets it",
    ),
    "--no-binary": (
        "--no-binary is not read from requirements files",
        "choose file types with package-type-regex in the [mirror] section of morgan.ini",
    ),
    "--only-binary": (
        "--only-binary is not read from requirements files",
        "choose file types with package-type-regex in the [mirror] section of morgan.ini",
    ),
    "--hash": (
        "--hash belongs to a requirement",
        "write it on the requirement's line (continued with a backslash), e.g. foo==1.2 --hash=sha256:...",
    ),
    "--trusted-host": (
        "--trusted-host is not read from requirements files",
        "set trusted-host in pip.conf or PIP_TRUSTED_HOST (morgan-like reads pip's settings)",
    ),
}


@dataclass(frozen=True)
class RequirementLine:
    """One requirement (or constraint) and the human location it was written at.

    ``hashes`` are the line's ``--hash`` options as ``"algorithm:hexdigest"``
    (lowercase; sha256, sha384 or sha512, as pip accepts).  Consumers: a
    requirement line with hashes may only be satisfied by a file whose digest
    is one of them (pip's hash-checking mode), and several lines on one
    project intersect (see ``Config.hashes_for``).  Indexes publish sha256
    only, so only sha256 values can be checked before a download; sha384 and
    sha512 values are kept for a check after the download.
    """

    requirement: Requirement
    source: str
    hashes: frozenset[str] = frozenset()

    def sha256s(self) -> frozenset[str]:
        """The sha256 hex digests among ``hashes`` (what an index lets us check)."""
        return frozenset(h[7:] for h in self.hashes if h.startswith("sha256:"))


@dataclass(frozen=True)
class Include:
    """An ``-r``/``-c`` line of a requirements file, as written.

    Kept so that a copy of the file placed elsewhere (a tree that carries its
    inputs, ``config.inputs``) can point the line at the copy of what it names.
    """

    first: int  # its physical lines, 1-based (backslash continuations: several)
    last: int
    option: str  # -r, --requirement, -c or --constraint
    target: str  # the path as written
    where: Path  # the file it names (see ``located``)


@dataclass(frozen=True)
class InputFile:
    """A file the config read through ``[requirements_from]``.

    ``path`` is the path as read; ``where`` is the file's place (``located``).
    ``key`` is the ``[requirements_from]`` key that led to it and ``ref`` the
    path as the config wrote it (without ``[extras]`` or ``:groups``); a file
    nested with ``-r``/``-c`` has no ``ref``, an ``Include`` of its includer
    names it.  Recorded while reading, so that a tree built from an outside
    config can carry exactly these files along (``config.inputs``).
    """

    path: Path
    where: Path
    key: str = ""
    ref: str | None = None
    includes: tuple[Include, ...] = ()


def located(path: Path) -> Path:
    """Where the file ``path`` names is: its folder with symlinks resolved, its own name kept.

    That folder is what its relative ``-r``/``-c`` lines are opened from (a
    symlinked requirements file names files next to the link, not next to its
    target), so copies laid out by this place keep those lines true.
    """
    return resolved(path.parent) / path.name


@dataclass(frozen=True)
class RequirementsFile:
    """What one requirements or constraints file, with the files it names, asks for.

    ``files``: every file read, the named one first, each with its ``-r``/``-c`` lines.
    """

    requirements: tuple[RequirementLine, ...] = ()
    constraints: tuple[RequirementLine, ...] = ()
    warnings: tuple[str, ...] = ()
    files: tuple[InputFile, ...] = ()


@dataclass
class _Reader:
    requirements: list[RequirementLine] = field(default_factory=list)
    constraints: list[RequirementLine] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: list[InputFile] = field(default_factory=list)

    def read(self, path: Path, constraint: bool, stack: tuple[Path, ...]) -> None:
        text = read_text(path)  # OSError: the caller knows who referenced it
        stack = (*stack, resolved(path))
        slot = len(self.files)  # the includer before what it includes
        self.files.append(InputFile(path, located(path)))
        includes: list[Include] = []
        for lineno, last, line in logical_lines(text):
            where = f"{path}:{lineno}"

            def error(
                problem: str, hint: str | None = TXT_HINT, lineno: int = lineno
            ) -> ConfigError:
                return ConfigError(file=str(path), problem=problem, line=lineno, hint=hint)

            if line.startswith("-"):
                includes.append(self._option(path, line, constraint, stack, error, lineno, last))
                continue
            spec, hashes = _split_options(line, error)
            req = parse_requirement(spec, error)
            if constraint and req.extras:
                raise error(
                    f"constraints cannot have extras: {spec!r}",
                    f"a constraint only limits versions: write {req.name}{req.specifier}",
                )
            if hashes and not _pinned(req):
                self.warnings.append(
                    f"{where}: {req.name} has --hash options but no == pin; pip refuses such "
                    "a line in hash-checking mode"
                )
            if hashes and not any(h.startswith("sha256:") for h in hashes):
                self.warnings.append(
                    f"{where}: {req.name} has no sha256 --hash; indexes publish sha256 only, "
                    "so its hashes can be checked only after a download"
                )
            out = self.constraints if constraint else self.requirements
            out.append(RequirementLine(req, where, frozenset(hashes)))
        self.files[slot] = InputFile(path, located(path), includes=tuple(includes))

    def _option(
        self,
        path: Path,
        line: str,
        constraint: bool,
        stack: tuple[Path, ...],
        error: Callable[..., ConfigError],
        first: int,
        last: int,
    ) -> Include:
        """A line of pip options: ``-r``/``-c`` are followed, every other option refused."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise error(f"cannot split {line!r}: {exc}") from None
        opt, eq, inline = words[0].partition("=")
        if re.fullmatch(r"-[rc][^=-].*", words[0]):  # optparse's attached form: -rbase.txt
            opt, eq, inline = words[0][:2], "=", words[0][2:]
        if opt not in (*_INCLUDE, *_CONSTRAINT):
            problem, hint = _REFUSED.get(
                opt, (f"pip option {opt} is not supported here", "remove the line")
            )
            raise error(f"{problem}: {line!r}", hint)
        target = inline if eq else (words[1] if len(words) > 1 else "")
        if not target:
            raise error(f"{opt} needs a file name", f"e.g. {opt} base.txt")
        if len(words) > (1 if eq else 2):
            raise error(f"one file per {opt} line: {line!r}", f"e.g. {opt} base.txt")
        if re.match(r"[a-z][a-z0-9+.-]*://", target, re.I):
            raise error(
                f"remote requirements files are not supported: {target}",
                "download the file next to this one and name it by path",
            )
        included = path.parent / target
        try:
            if resolved(included) in stack:
                chain = " -> ".join(p.name for p in stack)
                raise error(f"{target} includes itself (through {chain})", None)
            self.read(included, constraint or opt in _CONSTRAINT, stack)
        except OSError as exc:
            raise error(
                f"cannot read included file {included}: {exc.strerror or exc}",
                getattr(exc, "hint", None) or f"paths after {opt} are relative to {path.parent}",
            ) from None
        return Include(first, last, opt, target, located(included))


def read_requirements_txt(path: Path, *, constraints: bool = False) -> RequirementsFile:
    """Parse a pip requirements file (or, with ``constraints``, a constraints file).

    Comments, backslash continuations, ``-r``/``-c`` includes and per-line
    ``--hash`` options are understood; raises ConfigError naming file:line.
    """
    reader = _Reader()
    reader.read(path, constraints, ())
    return RequirementsFile(
        tuple(reader.requirements),
        tuple(reader.constraints),
        tuple(reader.warnings),
        tuple(reader.files),
    )


def parse_hash(value: str) -> str:
    """``sha256:HEX`` -> ``"sha256:hex"``; ValueError (worded for the user) when pip would refuse it.

    pip accepts sha256, sha384 and sha512 and compares digests case-insensitively;
    a digest of the wrong length is checked here too, since it can never match.
    """
    algorithm, colon, digest = value.partition(":")
    if not colon or not algorithm or not digest:
        raise ValueError(f"--hash={value} is not ALGORITHM:DIGEST")
    algorithm = algorithm.lower()
    if algorithm not in HASH_LENGTHS:
        raise ValueError(
            f"--hash algorithm {algorithm!r} is not accepted (pip takes {', '.join(HASH_LENGTHS)})"
        )
    length = HASH_LENGTHS[algorithm]
    if len(digest) != length or not re.fullmatch(r"[0-9a-fA-F]+", digest):
        raise ValueError(
            f"--hash={value}: a {algorithm} digest is {length} hex digits, "
            f"got {len(digest)} characters{'' if digest.isalnum() else ' with non-hex ones'}"
        )
    return f"{algorithm}:{digest.lower()}"


def _split_options(line: str, error: Callable[..., ConfigError]) -> tuple[str, set[str]]:
    """pip's break_args_options: the requirement, then ``--hash`` options (the only ones kept)."""
    tokens = [t for t in line.split(" ") if t]
    cut = next((i for i, t in enumerate(tokens) if t.startswith("-")), len(tokens))
    spec, rest = " ".join(tokens[:cut]), tokens[cut:]
    hashes: set[str] = set()
    i = 0
    while i < len(rest):
        opt, eq, value = rest[i].partition("=")
        if opt != "--hash":
            raise error(
                f"per-requirement options are not supported: {line!r}",
                "keep only the requirement and its --hash options",
            )
        if not eq:
            i += 1
            value = rest[i] if i < len(rest) and not rest[i].startswith("-") else ""
        if not value:
            raise error("--hash needs a value", HASH_HINT)
        try:
            hashes.add(parse_hash(value))
        except ValueError as exc:
            raise error(str(exc), HASH_HINT) from None
        i += 1
    if not spec:
        raise error(f"options without a requirement: {line!r}", "start the line with foo==1.2")
    return spec, hashes


def _pinned(req: Requirement) -> bool:
    return len(req.specifier) == 1 and next(iter(req.specifier)).operator in ("==", "===")


def read_text(path: Path) -> str:
    """A config-side file's text (config.textfile: regular, capped, UTF-8); what is wrong
    with its text is a ConfigError naming it, what is wrong with the file (an OSError,
    InputFileError included) is the caller's to word."""
    return read_input_text(path)


def logical_lines(text: str) -> list[tuple[int, int, str]]:
    """Join backslash continuations, drop comments and blanks: (first line, last line, text)."""
    out: list[tuple[int, int, str]] = []
    buf: list[str] = []
    start = n = 0
    for n, raw in enumerate(text.splitlines(), 1):
        if not buf:
            start = n
        if raw.endswith("\\") and not COMMENT.search(raw):
            buf.append(raw[:-1])
            continue
        buf.append(raw)
        line = COMMENT.sub("", " ".join(buf)).strip()
        buf = []
        if line:
            out.append((start, n, line))
    if buf:
        line = COMMENT.sub("", " ".join(buf)).strip()
        if line:
            out.append((start, n, line))
    return out


def parse_requirement(text: str, error: Callable[..., ConfigError]) -> Requirement:
    """A PEP 508 requirement a bundle can serve; ``error(problem[, hint])`` words the refusal."""

    def fail(problem: str, hint: str | None = None) -> NoReturn:
        raise error(problem) if hint is None else error(problem, hint)

    if re.match(r"(\.{0,2}/|[a-z][a-z0-9+.-]*://)", text, re.I) or text.endswith(
        (".whl", ".tar.gz", ".zip")
    ):
        fail(
            f"paths and URLs are not supported: {text!r}", "name the project instead, e.g. foo==1.2"
        )
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        fail(f"invalid requirement {text!r}: {marker_problem(text) or exc}")
    if req.url:
        fail(
            f"direct references are not supported: {text!r}",
            "name the project instead, e.g. foo==1.2",
        )
    return req


def marker_problem(text: str) -> str | None:
    """A clearer message when the marker part of a requirement is what is wrong."""
    if ";" not in text:
        return None
    marker = text.split(";", 1)[1].strip()
    try:
        Marker(marker)
    except InvalidMarker as exc:
        return f"invalid marker {marker!r}: {exc}"
    return None


def and_markers(a: Marker | None, b: Marker | None) -> Marker | None:
    """Both markers must hold (None holds everywhere)."""
    if a is None:
        return b
    if b is None:
        return a
    return Marker(f"({a}) and ({b})")
