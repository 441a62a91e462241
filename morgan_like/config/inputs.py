"""An outside config's input files, carried into the tree so that it can rebuild itself.

A tree keeps a copy of its config as ``morgan.ini``.  When the run's config is
another file (``-c other.ini``), the paths its ``[requirements_from]`` names are
relative to that file's folder and mean nothing next to the copy: a later
``mirror -i TREE`` could not read them.  So such a run also copies every file
the config read (``Config.inputs``, files nested with ``-r``/``-c`` included)
into ``inputs/``, laid out as they lie below their common folder, and the
``morgan.ini`` it writes names those copies, relative to the tree (which stays
relocatable).  Only the values of ``[requirements_from]`` change, and only as
text: every other byte of the config, comments included, stays as written.

A copy keeps the bytes of its file, except an ``-r``/``-c`` line whose path,
as written, would not reach the copy of the file it names (an absolute path, a
path through a symlinked or hidden folder): that line is pointed at the copy.
Hidden names (``.ci/``) are copied as ``_.ci``: a tree's hidden paths are its
working state, never shipped or vouched for.

Pure: reads the config and its inputs, writes nothing (``tree.publish`` writes
through the tree writer).  When the config is the tree's own ``morgan.ini``
nothing is carried: its paths already lead to the files.  The inputs are read
when the tree is written, so a file edited during the run travels as edited.
"""

from __future__ import annotations

import codecs
import os
import posixpath
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from configparser import RawConfigParser
from dataclasses import dataclass
from pathlib import Path

from morgan_like.config.ini import Config
from morgan_like.config.initext import read_ini
from morgan_like.config.pyproject import split_pyproject_ref
from morgan_like.config.reqfiles import COMMENT, Include, InputFile, logical_lines
from morgan_like.config.sources import SECTION
from morgan_like.config.textfile import decode_text, read_input_bytes
from morgan_like.errors import ConfigError

# A config's lines as the loader's configparser saw them (read_text's universal newlines).
_LINE = re.compile(r"([^\r\n]*)(\r\n|\r|\n|$)")


@dataclass(frozen=True)
class Carried:
    """What a run writes for its config: the ``morgan.ini`` bytes and the ``inputs/`` files.

    ``inputs`` maps tree relpaths (``inputs/...``) to bytes: all that ``inputs/``
    holds from now on.  None: the config is the tree's own, ``inputs/`` stays as is.
    """

    config: bytes
    inputs: Mapping[str, bytes] | None = None


def carry_inputs(config: Config, tree: Path, folder: str) -> Carried:
    """The config for ``tree``, with its inputs (under ``folder``, ``tree.layout.INPUTS_DIR``)
    when it is not the tree's own ``morgan.ini``."""
    data = _read(config.path)
    if _same_file(config.path, tree / "morgan.ini"):  # what load_config reads for a tree
        return Carried(data)
    file = str(config.path)
    places = place_inputs(config.inputs, folder, file)
    files: dict[str, bytes] = {}
    for where, (path, includes) in _by_place(config.inputs).items():
        copy = _read(path)
        if includes:
            copy = repoint_includes(copy, includes, places[where], places, str(path))
        files[places[where]] = copy
    return Carried(rewrite_config(data, config.inputs, places, file), files)


def place_inputs(inputs: Iterable[InputFile], folder: str, file: str) -> dict[Path, str]:
    """Each input's place -> its tree relpath: ``folder/`` + its path below their common folder."""
    wheres = list(dict.fromkeys(f.where for f in inputs))
    if not wheres:
        return {}
    try:
        common = Path(os.path.commonpath([str(w.parent) for w in wheres]))
    except ValueError:  # different drives
        raise ConfigError(
            file=file,
            problem="the files [requirements_from] names share no folder, so the tree "
            "cannot hold copies of them: " + ", ".join(str(w) for w in wheres),
            section=SECTION,
            hint="keep them on one drive",
        ) from None
    places: dict[Path, str] = {}
    taken: dict[str, Path] = {}
    for where in wheres:
        parts = where.relative_to(common).parts
        for part in parts:
            if "\\" in part or "\x00" in part or not _utf8(part):
                raise ConfigError(
                    file=file,
                    problem=f"{where}: the name {part!r} cannot be copied into the tree",
                    section=SECTION,
                    hint="rename it without backslashes and as UTF-8",
                )
        relpath = "/".join((folder, *("_" + p if p.startswith(".") else p for p in parts)))
        if relpath in taken:
            raise ConfigError(
                file=file,
                problem=f"{taken[relpath]} and {where} would both be copied as {relpath}",
                section=SECTION,
                hint="rename one of them (a hidden name .x is copied as _.x)",
            )
        taken[relpath] = where
        places[where] = relpath
    return places


def repoint_includes(
    data: bytes, includes: Iterable[Include], relpath: str, places: Mapping[Path, str], file: str
) -> bytes:
    """A requirements file's copy at ``relpath``: each ``-r``/``-c`` line whose path would not
    reach the copy of its file, rewritten to the relative path that does."""
    here = posixpath.dirname(relpath)
    changes: dict[int, Include] = {}
    for inc in includes:
        dest = places[inc.where]
        if not (_plain(inc.target) and posixpath.normpath(f"{here}/{inc.target}") == dest):
            changes[inc.first] = inc
    if not changes:
        return data
    text = _decode(data, file)
    spans = {first: last for first, last, line in logical_lines(text) if line.startswith("-")}
    lines = text.splitlines(keepends=True)  # numbered as logical_lines numbers them
    for first in sorted(changes, reverse=True):
        inc = changes[first]
        if spans.get(first) != inc.last:
            raise ConfigError(
                file=file,
                problem=f"line {first} ({inc.option} {inc.target}) changed since it was read",
                line=first,
                hint="run again",
            )
        target = posixpath.relpath(places[inc.where], here)
        head, tail = lines[first - 1], lines[inc.last - 1]
        body = (tail.splitlines() or [""])[0]
        comment = COMMENT.search(body)
        indent = head[: len(head) - len(head.lstrip())]
        new = f"{indent}{inc.option} {_quote(target)}"
        lines[first - 1 : inc.last] = [new + (comment[0] if comment else "") + tail[len(body) :]]
    return _encode("".join(lines), data)


def rewrite_config(
    data: bytes, inputs: Iterable[InputFile], places: Mapping[Path, str], file: str
) -> bytes:
    """The config with each ``[requirements_from]`` path pointing at its copy; the rest as is.

    The values are rewritten in the text (configparser's line rules, mirrored), then
    the result is read back: anything but the expected paths changed is refused.
    """
    refs: dict[tuple[str, str], str] = {}
    for f in inputs:
        if f.ref is not None:
            refs[f.key, f.ref] = places[f.where]
    text = _decode(data, file)
    out: list[str] = []
    section: str | None = None
    key: str | None = None
    indent_level = 0
    for m in _LINE.finditer(text):
        body, eol = m.group(1), m.group(2)
        if not body and not eol:
            continue  # finditer's empty match at the end
        stripped = body.strip()
        if not stripped or stripped.startswith(("#", ";")):
            out.append(body + eol)  # blank or comment: no value line, key kept
            continue
        indent = len(body) - len(body.lstrip())
        if key is not None and indent > indent_level:
            start = indent  # a continuation line of key's value
        else:
            indent_level, key = indent, None
            header = RawConfigParser.SECTCRE.match(stripped)
            option = None if header else RawConfigParser.OPTCRE.match(stripped)
            if header:
                section = header.group("header")
            elif option:
                key = option.group("option").rstrip().lower()
            if not option:
                out.append(body + eol)
                continue
            start = indent + option.start("value")
        end = indent + len(stripped)
        value = body[start:end]
        if section == SECTION and key is not None and value:
            words = [_carried(key, w, refs, file) for w in shlex.split(value)]
            value = " ".join(_quote(w) for w in words)
        out.append(body[:start] + value + body[end:] + eol)
    new = "".join(out)
    _check(text, new, lambda key, word: _carried(key, word, refs, file), file)
    return _encode(new, data)


def _carried(key: str, word: str, refs: Mapping[tuple[str, str], str], file: str) -> str:
    """A ``[requirements_from]`` word with its path replaced by the copy's, suffix kept."""
    path, suffix = word.strip(), ""
    if key == "pyproject":
        path = split_pyproject_ref(path)[0]
        suffix = word.strip()[len(path) :]  # [extras]
    elif key == "groups":
        head, colon, names = path.rpartition(":")
        # groups.split_groups_ref: a bare GROUP names the pyproject.toml beside the config
        path, suffix = (head, f":{names}") if colon else ("pyproject.toml", f":{path}")
    dest = refs.get((key, path))
    if dest is None:
        raise ConfigError(
            file=file,
            problem=f"{path} was not read, so the tree cannot carry it",
            section=SECTION,
            key=key,
        )
    return dest + suffix


def _check(old: str, new: str, carried: Callable[[str, str], str], file: str) -> None:
    """Read both texts as the loader does: only [requirements_from]'s paths may differ."""
    old_rest, old_words = _read_back(old, file)
    new_rest, new_words = _read_back(new, file)
    if new_rest != old_rest or new_words != [(k, carried(k, w)) for k, w in old_words]:
        raise ConfigError(
            file=file,
            problem="cannot rewrite [requirements_from] to name the copies in the tree",
            section=SECTION,
            hint="write each key as `key = path path ...`, continued on indented lines",
        )


_Sections = list[tuple[str, list[tuple[str, str]]]]


def _read_back(text: str, file: str) -> tuple[_Sections, list[tuple[str, str]]]:
    """The sections besides [requirements_from], and its (key, word) pairs in order."""
    parser = read_ini(text.replace("\r\n", "\n").replace("\r", "\n"), file)  # as read_text
    rest = [(s, parser.items(s)) for s in parser.sections() if s != SECTION]
    items = parser.items(SECTION) if parser.has_section(SECTION) else []
    words = [(k, w) for k, v in items for line in v.splitlines() for w in shlex.split(line)]
    return rest, words


def _by_place(inputs: Iterable[InputFile]) -> dict[Path, tuple[Path, tuple[Include, ...]]]:
    """Each place once: a path it was read by, and its -r/-c lines (one file read twice:
    the same lines)."""
    out: dict[Path, tuple[Path, tuple[Include, ...]]] = {}
    for f in inputs:
        path, includes = out.get(f.where, (f.path, ()))
        out[f.where] = (path, includes or f.includes)
    return out


def _quote(word: str) -> str:
    """A word for shlex.split (what both readers use), quoted only when it must be."""
    return word if word and not re.search(r"[\s'\"\\]", word) else shlex.quote(word)


def _plain(target: str) -> bool:
    """A relative path that climbs (``..``) before it descends, never after: walked in the
    copies (no symlinks; only folders that hold a copy exist), it means what it says."""
    if "\\" in target or target.startswith("/"):
        return False
    parts = target.split("/")
    while parts and parts[0] in ("..", "."):
        parts.pop(0)
    return ".." not in parts


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in a POSIX name (surrogateescape)
        return False
    return True


def _decode(data: bytes, file: str) -> str:
    """The text as written: its newlines kept, a UTF-8 byte order mark left out (``_encode``
    puts it back)."""
    decode_text(data, file)  # what the loader would refuse
    return data.decode("utf-8-sig")


def _encode(text: str, like: bytes) -> bytes:
    return (codecs.BOM_UTF8 if like.startswith(codecs.BOM_UTF8) else b"") + text.encode("utf-8")


def _read(path: Path) -> bytes:
    try:
        return read_input_bytes(path)
    except OSError as exc:
        raise ConfigError(
            file=str(path),
            problem=f"cannot read it for the tree: {exc.strerror or exc}",
            hint=getattr(exc, "hint", None),
        ) from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # the tree has no morgan.ini yet
        return False
