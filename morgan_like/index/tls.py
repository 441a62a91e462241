"""TLS contexts: one per (CA bundle, client certificate), loaded once for the whole run.

Building an ``SSLContext`` and parsing a CA bundle is costly, and urllib3 handed a
bundle's path does it for every new connection.  Each combination the run meets is
loaded once here and handed to urllib3 as the pools' ``ssl_context``: verified
and unverified (pip's trusted-host) connections never share one.

``verify`` is what requests took: True verifies against certifi's bundle (what
requests, and so pip, use by default), a path names a bundle file or a folder of
hashed certificates, False does not verify.
"""

from __future__ import annotations

import os
import ssl
import threading
import warnings

from urllib3.exceptions import InsecureRequestWarning
from urllib3.util.ssl_ import create_urllib3_context

# An unverified connection is what the user asked for with pip's trusted-host: as pip
# does, no urllib3 warning for each of them (a paragraph on stderr per host).
warnings.filterwarnings("ignore", category=InsecureRequestWarning)


def default_bundle() -> str:
    """certifi's CA bundle, as requests' ``verify=True`` reads it."""
    import certifi

    return certifi.where()


class Contexts:
    """Thread-safe cache of loaded TLS contexts."""

    def __init__(self) -> None:
        self._contexts: dict[tuple[str | bool, str | None], ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def get(self, verify: str | bool, client_cert: str | None) -> ssl.SSLContext:
        key = (verify, client_cert)
        with self._lock:
            context = self._contexts.get(key)
            if context is None:
                context = self._contexts[key] = _load(verify, client_cert)
            return context


def _load(verify: str | bool, client_cert: str | None) -> ssl.SSLContext:
    if verify is False:
        context = create_urllib3_context(cert_reqs=ssl.CERT_NONE)
        context.check_hostname = False
    else:
        context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
        bundle = default_bundle() if verify is True else verify
        if os.path.isdir(bundle):
            context.load_verify_locations(capath=bundle)
        else:
            context.load_verify_locations(cafile=bundle)
    if client_cert:
        context.load_cert_chain(client_cert)  # pip's client-cert: one PEM, key included
    return context
