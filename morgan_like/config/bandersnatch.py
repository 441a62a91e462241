"""A bandersnatch 8.2 config (bandersnatch.conf) translated into our sync config.

``morgan-like genconfig --from-bandersnatch FILE`` prints the ``[mirror]`` and
``[sync]`` sections that make ``sync`` keep the same files, so that a site can
move its nightly job over.  Each option is read with bandersnatch's own meaning
(its ``[plugins] enabled`` list decides which filter sections act at all), and
whatever has no faithful counterpart here is named, never approximated in
silence: an ``Untranslated`` record per option, printed as a comment in the
section and as a warning.  Where a translated key behaves a little differently a
comment beside it says how.

Pure: text in, typed records out (``translate``); ``Translation.text()`` renders
them.  Reading the file is ``translate_file``'s only I/O.
"""

from __future__ import annotations

import configparser
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from morgan_like.config.bandersnatch_filters import SECTIONS, translate_filters
from morgan_like.config.bandersnatch_mirror import MirrorTranslator
from morgan_like.config.initext import _locate
from morgan_like.config.textfile import read_input_text
from morgan_like.errors import ConfigError

# bandersnatch 8.2's filter plugins (its entry points), by the name [plugins] enabled uses.
PLUGINS = frozenset(
    {
        "allowlist_project",
        "blocklist_project",
        "project_requirements",
        "regex_project",
        "regex_project_metadata",
        "size_project_metadata",
        "versions_count_project_metadata",
        "allowlist_release",
        "blocklist_release",
        "latest_release",
        "prerelease_release",
        "project_requirements_pinned",
        "regex_release",
        "exclude_platform",
        "regex_release_file_metadata",
        "version_range_release_file_metadata",
    }
)


# The order of our keys in the [sync] written: what is kept, then how.
ORDER = (
    "projects",
    "requirements",
    "with-dependencies",
    "keep-latest",
    "exclude",
    "prerelease-exclude",
    "exclude-release",
    "exclude-platform",
    "package-types",
    "index-only",
    "workers",
    "diff-file",
    "diff-append-epoch",
)


def _comment(text: str) -> list[str]:
    return textwrap.wrap(
        text,
        88,
        initial_indent="# ",
        subsequent_indent="#   ",
        break_on_hyphens=False,
        break_long_words=False,
    )


@dataclass(frozen=True)
class Untranslated:
    """An option of the bandersnatch.conf with no faithful counterpart here."""

    section: str
    key: str
    value: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        value = " ".join(self.value.split())
        where = f"line {self.line}: " if self.line else ""
        return f"{where}[{self.section}] {self.key} = {value}: {self.reason}"


@dataclass(frozen=True)
class Setting:
    """One key of ours: its section, its value (one line, or one item per line) and
    the comments written above it."""

    section: str
    key: str
    values: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        out = [line for note in self.notes for line in _comment(note)]
        if len(self.values) == 1:
            return [*out, f"{self.key} = {self.values[0]}"]
        return [*out, f"{self.key} =", *(f"    {value}" for value in self.values)]


@dataclass(frozen=True)
class Translation:
    source: str
    settings: tuple[Setting, ...]
    untranslated: tuple[Untranslated, ...]
    notes: tuple[str, ...] = ()  # what bandersnatch reads and ignores too, said once

    def text(self) -> str:
        """The config text: a header naming the source, [mirror], [sync], then each
        untranslated option as a comment."""
        lines = [
            f"# Translated from {self.source} by `morgan-like genconfig --from-bandersnatch`",
            "# (each option read as bandersnatch 8.2 reads it).",
            *(line for note in self.notes for line in _comment(note)),
        ]
        for section in ("mirror", "sync"):
            settings = [s for s in self.settings if s.section == section]
            settings.sort(key=lambda s: ORDER.index(s.key) if s.key in ORDER else len(ORDER))
            if settings:
                lines += ["", f"[{section}]"]
                for setting in settings:
                    lines += setting.lines()
        if self.untranslated:
            lines.append("")
            lines += [f"# not translated: {item}" for item in self.untranslated]
        return "\n".join(lines) + "\n"


@dataclass
class _Builder:
    """The translation being built: the parsed file, what is enabled, what came out."""

    text: str
    conf: configparser.ConfigParser
    enabled: frozenset[str]
    settings: list[Setting] = field(default_factory=list)
    untranslated: list[Untranslated] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def on(self, plugin: str) -> bool:
        return "all" in self.enabled or plugin in self.enabled

    def get(self, section: str, key: str) -> str | None:
        """A value as bandersnatch reads it (% interpolation); None when absent or
        unreadable (then said once)."""
        if not self.conf.has_option(section, key):
            return None
        try:
            return self.conf.get(section, key)
        except configparser.Error as exc:
            raw = self.conf.get(section, key, raw=True)
            self.skip(section, key, raw, f"bandersnatch cannot read it: {exc}")
            return None

    def lines_of(self, section: str, key: str) -> list[str]:
        value = self.get(section, key)
        return [line.strip() for line in (value or "").split("\n") if line.strip()]

    def skip(self, section: str, key: str, value: str, reason: str) -> None:
        line = _locate(self.text, section, key)
        self.untranslated.append(Untranslated(section, key, value, reason, line))

    def put(self, section: str, key: str, values: Iterable[str], *notes: str) -> None:
        self.settings.append(Setting(section, key, tuple(values), tuple(notes)))


def translate_file(path: Path) -> Translation:
    """Read and translate; ConfigError (one line, exit 2) when the file is missing,
    unreadable or no bandersnatch config."""
    try:
        text = read_input_text(path)
    except FileNotFoundError:
        raise ConfigError(file=str(path), problem="file not found") from None
    except OSError as exc:
        raise ConfigError(file=str(path), problem=f"cannot read: {exc.strerror or exc}") from None
    except ConfigError as exc:
        raise ConfigError(file=exc.file, problem=exc.problem) from None
    return translate(text, str(path))


def translate(text: str, source: str) -> Translation:
    """The sync config equivalent to bandersnatch.conf ``text`` (named ``source``)."""
    conf = configparser.ConfigParser(delimiters=("=",))  # as bandersnatch reads it
    conf.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        conf.read_string(text, source=source)
    except configparser.Error as exc:
        message = getattr(exc, "message", str(exc)).splitlines()[0]
        raise ConfigError(file=source, problem=f"not an ini file: {message}") from None
    known = {"mirror", "plugins", *SECTIONS}
    if not known & set(conf.sections()):
        raise ConfigError(
            file=source,
            problem="not a bandersnatch config: it has no [mirror], [plugins] or filter section",
        )
    build = _Builder(text, conf, _enabled(conf))
    build.untranslated += _plugin_problems(conf, text)
    MirrorTranslator(build).run()
    translate_filters(build)
    for section in conf.sections():
        if section not in known:
            for key in conf[section]:
                build.skip(section, key, conf.get(section, key, raw=True), _foreign(section))
    return Translation(source, tuple(build.settings), tuple(build.untranslated), tuple(build.notes))


def _foreign(section: str) -> str:
    if section in ("s3", "swift"):
        return "ours writes to a filesystem only"
    return "a section no bandersnatch 8.2 filter reads"


def _enabled(conf: configparser.ConfigParser) -> frozenset[str]:
    """[plugins] enabled, one name per line, exactly as bandersnatch splits it."""
    if not conf.has_option("plugins", "enabled"):
        return frozenset()
    return frozenset(conf.get("plugins", "enabled", raw=True).split("\n")) - {""}


def _plugin_problems(conf: configparser.ConfigParser, text: str) -> list[Untranslated]:
    found = []
    for name in sorted(_enabled(conf) - PLUGINS - {"all"}):
        line = _locate(text, "plugins", "enabled")
        reason = "no bandersnatch 8.2 plugin has this name, so it enabled nothing"
        if " " in name.strip():
            reason = "bandersnatch reads one plugin name per line, so this line enabled nothing"
        found.append(Untranslated("plugins", "enabled", name, reason, line))
    for key in conf["plugins"] if conf.has_section("plugins") else ():
        if key != "enabled":
            line = _locate(text, "plugins", key)
            found.append(
                Untranslated(
                    "plugins", key, conf.get("plugins", key, raw=True), "unknown key", line
                )
            )
    return found
