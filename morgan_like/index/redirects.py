"""Redirects to another host: warned once per host, or refused.

An index that answers with a redirect to another host hands the run to an index
the user never named: pypiserver's default answers a project it lacks with a 303
to PyPI, so a bundle meant to come from one index can take projects from
another.  Following is the default (some indexes keep their files elsewhere),
with one warning per host; ``cross-host-redirects = false`` ([mirror] or [sync])
refuses them, naming the URL.  The transport asks before it follows each hop,
so a refused redirect is never followed and no request reaches the other host.
The rules requests follows on a hop (which method, whether Authorization goes
along) are here too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from morgan_like.config.options import parse_bool
from morgan_like.errors import UpstreamError
from morgan_like.index.httputil import hostname, redact_url

OPTION = "cross-host-redirects"
log = logging.getLogger(__name__)


class RedirectGuard:
    """Asked before each redirect is followed; thread-safe (pages arrive on many threads)."""

    def __init__(self, allow: bool = True, on_warning: Callable[[str], None] | None = None):
        self.allow = allow
        self._on_warning = on_warning
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    @classmethod
    def from_options(
        cls,
        options: Mapping[str, str] | None,
        allow: bool | None = None,
        on_warning: Callable[[str], None] | None = None,
    ) -> RedirectGuard:
        """``allow`` (the command line) wins over the options' ``cross-host-redirects``."""
        if allow is None:
            allow = parse_bool((options or {}).get(OPTION), True) is not False
        return cls(allow, on_warning)

    @property
    def hosts(self) -> list[str]:
        """The other hosts redirected to so far."""
        with self._lock:
            return sorted(self._warned)

    def check(self, url: str, target: str) -> None:
        """``url`` redirects to ``target`` (absolute): warn once per new host, or refuse."""
        host = hostname(target)
        if host == hostname(url):
            return
        shown, to = redact_url(url), redact_url(target)
        if not self.allow:
            raise UpstreamError(
                f"GET {shown}: redirected to another host ({to}); refused, as {OPTION} = false says"
            )
        with self._lock:
            first = host not in self._warned
            self._warned.add(host)
        if first:
            self._warn(
                f"{shown} redirects to another host, {host} ({to}): what comes from there is "
                f"not from the index you named; {OPTION} = false refuses it"
            )

    def _warn(self, message: str) -> None:
        if self._on_warning is not None:
            self._on_warning(message)
        else:
            log.warning("%s", message)


def method_after(status: int, method: str) -> str:
    """The method of the next hop, as requests (and browsers) choose it."""
    if status in (302, 303) and method != "HEAD":
        return "GET"
    if status == 301 and method == "POST":
        return "GET"
    return method


_DEFAULT_PORTS = {"http": 80, "https": 443}


def drops_auth(old_url: str, new_url: str) -> bool:
    """Whether Authorization stays behind on this hop (requests' rule): another host,
    or another scheme or port, except http to https on the standard ports."""
    old, new = urlsplit(old_url), urlsplit(new_url)
    if old.hostname != new.hostname:
        return True
    upgrade = old.scheme == "http" and new.scheme == "https"
    if upgrade and old.port in (80, None) and new.port in (443, None):
        return False
    changed_port = old.port != new.port
    changed_scheme = old.scheme != new.scheme
    default_port = (_DEFAULT_PORTS.get(old.scheme), None)
    if not changed_scheme and old.port in default_port and new.port in default_port:
        return False
    return changed_port or changed_scheme
