"""Typed option values shared by the config file, the CLI and the modes.

One vocabulary for booleans and one home for the default upstream, so the
config reader, tag derivation and the CLI cannot disagree about either.
"""

from __future__ import annotations

DEFAULT_INDEX_URL = "https://pypi.org/simple/"

# [mirror] keys besides index-url; values stay strings (booleans as "true"/"false"),
# validated when the config is read so that typos fail before anything is downloaded.
MIRROR_OPTIONS = {
    "diff-file": "path",
    "diff-append-epoch": "bool",
    "package-type-regex": "regex",
    "workers": "int",
    # pip's --prefer-binary per project and env, on by default (Config.prefer_binary).
    "prefer-binary": "bool",
    # No sdist in any env's view (each [env.NAME] may say otherwise): a project with no
    # usable wheel for an env is an error listing every such project (Config.binary_only).
    "binary-only": "bool",
    # What one upstream response may cost (index/limits.py): size caps in MiB, and a
    # file's deadline, all attempts together: floor seconds + its size at min-rate KB/s.
    "max-page-mib": "int",
    "max-metadata-mib": "int",
    "download-timeout-floor": "int",
    "download-min-rate": "int",
    # A redirect to another host: followed with one warning per host (true, the default),
    # or refused (false) naming the URL (index/redirects.py).
    "cross-host-redirects": "bool",
}

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool(value: str | None, default: bool | None = None) -> bool | None:
    """``true``/``yes``/``on``/``1`` or their opposites, any case; ``default`` when empty.

    Returns None for anything else, so each caller words its own error.
    """
    text = (value or "").strip().lower()
    if not text:
        return default
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None
