"""bandersnatch.conf's ``[mirror]`` section translated (config/bandersnatch.py does the rest).

Most of bandersnatch's [mirror] keys tune how it writes its own tree; ours writes
one layout, so a key left at bandersnatch's default says nothing here, and any
other value is named as not translated, with what ours does instead.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from morgan_like.config.options import parse_bool

if TYPE_CHECKING:
    from morgan_like.config.bandersnatch import _Builder

BANDERSNATCH_MASTER = "https://pypi.org"
# key -> (bandersnatch's default, what ours does instead of another value).  A boolean
# default is compared as a boolean.
_DEFAULTS: dict[str, tuple[str, str]] = {
    "storage-backend": ("filesystem", "ours writes to a filesystem only"),
    "storage-filesystem-manage-permissions": ("true", "ours has no such setting"),
    "proxy": ("", "ours takes pip's proxy setting, else HTTPS_PROXY from the environment"),
    "download-mirror": ("", "ours downloads from the upstream's file URLs only"),
    "download-mirror-no-fallback": ("false", "ours downloads from the upstream's file URLs only"),
    "core-metadata": ("true", "ours always keeps a wheel's .metadata (PEP 658)"),
    "hash-index": ("false", "ours writes the PEP 503 layout pip reads, simple/NAME/"),
    "simple-format": ("ALL", "ours always writes both the HTML and the JSON pages"),
    "compare-method": ("hash", "ours compares a file with the sha256 it recorded"),
    "digest_name": ("sha256", "ours writes sha256 hashes only (uv rejects others)"),
    "keep-index-versions": ("0", "ours keeps no older pages"),
    "keep_index_versions": ("0", "ours keeps no older pages"),
    "stop-on-error": (
        "false",
        "ours carries on and exits 1 naming what failed; the next run retries it",
    ),
    "cleanup_todo": ("false", "ours retries every unfinished project on the next run"),
    "timeout": ("10", "ours has [mirror] download-timeout-floor and download-min-rate"),
    "global-timeout": ("1800", "ours has [mirror] download-timeout-floor and download-min-rate"),
    "root_uri": ("", "ours links the upstream's own file URLs (index-only) or its own copies"),
    "log-config": ("", "ours has no logging config: it prints to stdout and stderr"),
}
# Keys whose every value means what ours does anyway.
_SILENT = frozenset({"allow-non-https", "cleanup", "verifiers"})
# bandersnatch's diff-file may name another option: {{section_option}}.
_REFERENCE = re.compile(
    r"^(?P<pre>.*)\{\{\s*(?P<section>[^_\s](?:[^_]*[^_\s]))\s*_\s*(?P<option>\S(?:.*\S)?)\s*\}\}(?P<post>.*)$"
)


class MirrorTranslator:
    def __init__(self, build: _Builder) -> None:
        self.b = build

    def run(self) -> None:
        b = self.b
        keys = list(b.conf["mirror"]) if b.conf.has_section("mirror") else []
        master = (b.get("mirror", "master") or BANDERSNATCH_MASTER).strip()
        url = urlparse(master)
        if url.scheme in ("http", "https") and url.netloc:
            b.put("mirror", "index-url", [master.rstrip("/") + "/simple/"])
        else:
            b.skip("mirror", "master", master, "not an http(s) URL")
        for key in keys:
            value = b.get("mirror", key)
            if value is not None:
                self.key(key, value.strip())

    def key(self, key: str, value: str) -> None:
        b = self.b
        if key in ("master",) or key in _SILENT:
            return
        if key == "directory":
            b.notes.append(
                f"bandersnatch's tree was {value}: ours is -i on the command line "
                f"(`morgan-like genlocal -i TREE --from {value}` takes it over)"
            )
        elif key == "json":
            if not parse_bool(value):
                b.notes.append("json = false: ours writes json/NAME (/pypi/NAME/json) all the same")
        elif key == "release-files":
            self.boolean(
                key, value, lambda on: None if on else b.put("sync", "index-only", ["true"])
            )
        elif key == "delete_missing_packages":
            if not parse_bool(value):
                b.notes.append(
                    "delete_missing_packages = false: ours removes a project deleted "
                    "upstream (the deletion guard, max-deletions, applies)"
                )
        elif key == "workers":
            if value.isascii() and value.isdigit() and int(value) > 0:
                b.put("sync", "workers", [str(int(value))], "bandersnatch's default is 3, ours 32")
            else:
                b.skip("mirror", key, value, "not a whole number >= 1")
        elif key == "diff-file":
            self.diff_file(value)
        elif key == "diff-append-epoch":
            self.boolean(key, value, lambda on: b.put("sync", key, ["true" if on else "false"]))
        elif key in _DEFAULTS:
            default, instead = _DEFAULTS[key]
            same = value == default
            if parse_bool(default) is not None and parse_bool(value) is not None:
                same = parse_bool(value) == parse_bool(default)
            if not same:
                b.skip("mirror", key, value, instead)
        else:
            b.skip("mirror", key, value, "bandersnatch 8.2 reads no such [mirror] key")

    def boolean(self, key: str, value: str, then: object) -> None:
        flag = parse_bool(value)
        if flag is None:
            self.b.skip("mirror", key, value, "not a boolean: bandersnatch stops on it")
        else:
            then(flag)  # type: ignore[operator]

    def diff_file(self, value: str) -> None:
        b = self.b
        if not value:
            return
        if "{{" in value:
            match = _REFERENCE.match(value)
            ref = match and b.get(match["section"], match["option"])
            if not match or ref is None:
                b.skip("mirror", "diff-file", value, "names an option the file does not have")
                return
            value = match["pre"] + ref + match["post"]
        b.put(
            "sync",
            "diff-file",
            [value],
            "ours lists every path the run created, changed or "
            "removed (removed ones in DIFF.removed)",
        )
