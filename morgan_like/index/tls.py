"""One TLS context per CA bundle, not one per connection.

When ``verify`` is a path (pip's ``cert``, ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``:
set on many machines), requests hands urllib3 the path and urllib3 builds a
fresh ``SSLContext`` and parses the whole bundle for every new connection:
about 20 ms of CPU each, most of a small bundle build's TLS cost.  This
adapter loads each bundle once and gives urllib3 that context instead; pools
stay keyed by it, so verified and unverified (trusted-host) pools never share
a context.  requests older than 2.32.2 lacks the hook and keeps its own way.
"""

from __future__ import annotations

import os
import ssl
import threading
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.util.ssl_ import create_urllib3_context


class CachedContextAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose verified pools share one loaded context per CA bundle."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._contexts_lock = threading.Lock()

    def _context(self, bundle: str) -> ssl.SSLContext:
        with self._contexts_lock:
            context = self._contexts.get(bundle)
            if context is None:
                context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
                if os.path.isdir(bundle):
                    context.load_verify_locations(capath=bundle)
                else:
                    context.load_verify_locations(cafile=bundle)
                self._contexts[bundle] = context
            return context

    def build_connection_pool_key_attributes(  # type: ignore[override]
        self, request: Any, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        found = super().build_connection_pool_key_attributes(request, verify, cert)
        host_params: dict[str, Any] = dict(found[0])
        pool_kwargs: dict[str, Any] = dict(found[1])
        bundle = pool_kwargs.get("ca_certs") or pool_kwargs.get("ca_cert_dir")
        if (
            isinstance(bundle, str)
            and host_params.get("scheme") == "https"
            and pool_kwargs.get("cert_reqs") == "CERT_REQUIRED"
            and "cert_file" not in pool_kwargs  # a client cert would be loaded into it
        ):
            pool_kwargs.pop("ca_certs", None)
            pool_kwargs.pop("ca_cert_dir", None)
            pool_kwargs["ssl_context"] = self._context(bundle)
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        """requests sets the bundle path on the pool again here; a pool given our
        loaded context must not load the path once more for each connection."""
        super().cert_verify(conn, url, verify, cert)
        context = getattr(conn, "conn_kw", {}).get("ssl_context")
        if context is not None and context in self._contexts.values():
            conn.ca_certs = None
            conn.ca_cert_dir = None
