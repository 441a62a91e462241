"""Redirects to another host: warned once per host, or refused.

An index that answers with a redirect to another host hands the run to an index
the user never named: pypiserver's default answers a project it lacks with a 303
to PyPI, and a bundle meant to come from one index took 14 projects from
another.  Following is the default (some indexes keep their files elsewhere),
with one warning per host; ``cross-host-redirects = false`` ([mirror] or [sync])
refuses them, naming the URL.  The check runs as the session's response hook,
so a refused redirect is never followed and no request reaches the other host.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urljoin

import requests

from morgan_like.config.options import parse_bool
from morgan_like.errors import UpstreamError
from morgan_like.index.httputil import hostname, redact_url

OPTION = "cross-host-redirects"
log = logging.getLogger(__name__)


class RedirectGuard:
    """The session's response hook; thread-safe (pages arrive on many threads)."""

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

    def check(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if not response.is_redirect:
            return
        target = urljoin(response.url, response.headers.get("Location", ""))
        host = hostname(target)
        if host == hostname(response.url):
            return
        shown, to = redact_url(response.url), redact_url(target)
        if not self.allow:
            response.close()
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
