"""The value of each flag, checked as it is parsed (argparse ``type=`` functions).

A value refused here is a one-line error naming the flag (argparse adds
``argument -I/--index-url:``), before any work starts.  Each check is the rule the
code behind the flag relies on, so nothing later meets a value it cannot use: a port
past 65535, a URL with a query, a regex that does not compile, NaN seconds.
"""

from __future__ import annotations

import math
import re
from argparse import ArgumentTypeError
from urllib.parse import urlsplit

_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def _shown(value: str) -> str:
    """A value as an error repeats it: credentials hidden, long text cut, one line."""
    from morgan_like.index.httputil import redact_url

    text = redact_url(value) if "://" in value else value
    text = text if len(text) <= 80 else text[:80] + "..."
    return repr(text)


def index_url(value: str) -> str:
    """An upstream simple index: http(s), a host, a port in range, no query or fragment
    (pages are found by appending ``<project>/`` to it); it ends in exactly one ``/``."""
    from morgan_like.config.options import DEFAULT_INDEX_URL

    if _CONTROL.search(value):
        raise ArgumentTypeError(f"{_shown(value)}: a URL has no spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise ArgumentTypeError(
            f"{_shown(value)}: the port must be a number from 1 to 65535"
        ) from None
    if parts.scheme not in ("http", "https") or not host:
        raise ArgumentTypeError(
            f"not an index URL: {_shown(value)} (expected e.g. {DEFAULT_INDEX_URL})"
        )
    if port == 0:
        raise ArgumentTypeError(f"{_shown(value)}: the port must be a number from 1 to 65535")
    if "?" in value or "#" in value:
        raise ArgumentTypeError(
            f"{_shown(value)}: an index URL has no query (?...) or fragment (#...); "
            f"give the index's base, e.g. {DEFAULT_INDEX_URL}"
        )
    return value.rstrip("/") + "/"  # as morgan: one slash, so <project>/ appends cleanly


def index_path(value: str) -> str:
    """``-i``: a tree's folder as given (edge.py resolves it), or ``s3://BUCKET/PREFIX``
    for a tree in an S3-compatible bucket (modes/bucket.py), checked and normalized."""
    from morgan_like.modes.bucket import is_bucket_url, parse_bucket_url

    if not is_bucket_url(value):
        return value
    if _CONTROL.search(value):
        raise ArgumentTypeError(f"{_shown(value)}: a URL has no spaces or control characters")
    try:
        return parse_bucket_url(value).url
    except ValueError as exc:
        raise ArgumentTypeError(str(exc)) from None


def local_state(value: str) -> str:
    """``--local-state``: a local folder (an s3:// URL here is a mistake: the state lives
    on local disk beside the bucket)."""
    from morgan_like.modes.bucket import is_bucket_url

    if is_bucket_url(value) or "://" in value:
        raise ArgumentTypeError(
            f"{_shown(value)}: --local-state is a local folder (the working tree and state of "
            "the bucket named by -i s3://...)"
        )
    return value


def wait_seconds(value: str) -> float:
    """``--wait-lock SECONDS``: a finite number, 0 or more (no number: wait as long as
    it takes)."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise ArgumentTypeError(
            f"{_shown(value)} is not a number of seconds (0 or more); "
            "give no number to wait as long as it takes"
        )
    return seconds


def _integer(value: str, low: int, what: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if number < low:
        raise ArgumentTypeError(f"{_shown(value)} is not {what}")
    return number


def positive_int(value: str) -> int:
    return _integer(value, 1, "a whole number of 1 or more")


def count(value: str) -> int:
    return _integer(value, 0, "a whole number of 0 or more")


def package_type_regex(value: str) -> str:
    """Compiled the way resolve/candidates.py uses it: ``\\.REGEX$`` on a file name."""
    try:
        re.compile(rf"\.{value}$")
    except re.error as exc:
        raise ArgumentTypeError(
            f"{_shown(value)} is not a regular expression ({exc}); e.g. 'whl' or '(whl|tar\\.gz)'"
        ) from None
    return value


def name_regex(value: str) -> str:
    """``--exclude`` / ``--prerelease-exclude``: matched at the start of a project name."""
    try:
        re.compile(value)
    except re.error as exc:
        raise ArgumentTypeError(f"{_shown(value)} is not a regular expression ({exc})") from None
    return value


def env_name(value: str) -> str:
    """``generate_env -e NAME``: a name its env's index folder ``envs/NAME/`` can have."""
    from morgan_like.targets.generate import env_name_problem

    problem = env_name_problem(value.strip()) if value.strip() else None
    if problem:
        raise ArgumentTypeError(problem)
    return value


def listen_host(value: str) -> str:
    """``-H``: an IP address or a host name (it goes into server.py and nginx's listen)."""
    from morgan_like.modes.nginx import host_problem

    problem = host_problem(value)
    if problem:
        raise ArgumentTypeError(f"{problem}; e.g. 0.0.0.0, 127.0.0.1, ::1 or localhost")
    return value


def _port(value: str, *, any_port: bool) -> int:
    from morgan_like.modes.nginx import port_problem

    try:
        port = int(value)
    except ValueError:
        raise ArgumentTypeError(f"{_shown(value)} is not a port number") from None
    problem = port_problem(port, any_port=any_port)
    if problem:
        raise ArgumentTypeError(problem)
    return port


def server_port(value: str) -> int:
    """``serve -p``: 1 to 65535, or 0 for any free port (server.py prints the one it got)."""
    return _port(value, any_port=True)


def nginx_port(value: str) -> int:
    """``nginx-config -p``: 1 to 65535 (nginx cannot pick a free port)."""
    return _port(value, any_port=False)


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", re.IGNORECASE)
MIN_VOLUME = 64 << 10


def byte_size(value: str) -> int:
    """A size in bytes: a number with K, M, G or T (powers of 1024; 4G, 700M, 4.5GiB)."""
    match = _SIZE.fullmatch(value.strip())
    if not match:
        raise ArgumentTypeError(f"not a size: {_shown(value)} (e.g. 4G, 700M)")
    size = int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    if size < MIN_VOLUME:
        raise ArgumentTypeError(f"{_shown(value)} is too small: a volume holds at least 64K")
    return size
