"""Per-host request settings, as pip would use them on this machine.

TLS verification (``cert``, pip's ``cert``, REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE,
``trusted-host``), proxies (pip's ``proxy``, else the environment's, minus
no_proxy) and credentials (the index URL's userinfo, else ~/.netrc), read by the
rules pip's requests session reads them with (envrules.py), once per host.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit
from urllib.request import getproxies

from morgan_like.index.envrules import bypasses_proxies, netrc_auth
from morgan_like.index.httputil import host_key
from morgan_like.index.pipconfig import pip_config, pip_config_value


class HostSettings:
    """Verification, proxies and credentials for each host an Upstream talks to."""

    def __init__(self, index_url: str, creds: tuple[str, str] | None, cert: str | None) -> None:
        self._auth: dict[tuple[str, str], tuple[str, str]] = {}
        if creds:
            self._auth[host_key(index_url)] = creds
        self.verify: str | bool = (
            cert
            or pip_config_value("cert")
            or os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or True
        )
        # pip's trusted-host: TLS is not verified for these hosts ("host" or "host:port").
        self.trusted_hosts = frozenset(pip_config("trusted-host").lower().split())
        proxy = pip_config_value("proxy")
        self.proxies = {"http": proxy, "https": proxy} if proxy else None
        self._env_proxies = getproxies()  # what requests reads (requests.utils.getproxies)
        self._per_host: dict[tuple[str, str], tuple[dict | None, tuple[str, str] | None]] = {}

    def auth_for(self, url: str) -> tuple[str, str] | None:
        if "@" in urlsplit(url).netloc:
            return None  # requests uses the URL's own userinfo
        return self.settings(url)[1]

    def proxies_for(self, url: str) -> dict | None:
        return self.settings(url)[0]

    def settings(self, url: str) -> tuple[dict | None, tuple[str, str] | None]:
        """Proxies and credentials for a host, from pip's config, the environment and netrc."""
        key = host_key(url)
        cached = self._per_host.get(key)
        if cached is None:
            proxies = self.proxies
            if proxies is None and self._env_proxies and not bypasses_proxies(url):
                proxies = {k: v for k, v in self._env_proxies.items() if k != "no"}
            auth = self._auth.get(key) or netrc_auth(url)
            cached = self._per_host[key] = (proxies, auth)
        return cached

    def verify_for(self, url: str) -> str | bool:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if host in self.trusted_hosts or f"{host}:{parts.port}" in self.trusted_hosts:
            return False
        return self.verify
