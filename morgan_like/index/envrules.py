"""What pip's HTTP session (requests 2.34) reads of this machine's environment, as its
own rules read it: whether a host bypasses the environment's proxies (no_proxy),
which proxy of a requests-style dict serves a URL, and the credentials ~/.netrc
holds for a host.

requests itself is not imported for these: importing it costs every run some 20 ms
of CPU on top of urllib3, which the runs' own client (transport.py) is built on.
tests/index/test_envrules.py pins each rule against requests' own function.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Mapping
from urllib.parse import urlparse, urlunparse
from urllib.request import proxy_bypass

from urllib3.util import parse_url

# Where requests looks for a netrc file when $NETRC does not name one, in this order.
NETRC_FILES = (".netrc", "_netrc")


def bypasses_proxies(url: str) -> bool:
    """True when ``url``'s host is one the environment's proxies are not used for:
    no URL host at all; a no_proxy (else NO_PROXY) entry that is its IPv4 address or a
    CIDR network holding it, or its name (with or without its port) or a domain of it
    (a leading dot or not); else whatever urllib's proxy_bypass says (``*``, and the
    platform's own settings on macOS and Windows)."""
    parsed = urlparse(url)
    hostname = parsed.hostname
    if hostname is None:
        return True
    no_proxy = os.environ.get("no_proxy") or os.environ.get("NO_PROXY")
    if no_proxy:
        entries = [entry for entry in no_proxy.replace(" ", "").split(",") if entry]
        if _is_ipv4_address(hostname):
            for entry in entries:
                if _is_valid_cidr(entry):
                    if _address_in_network(hostname, entry):
                        return True
                elif hostname == entry:
                    return True
        else:
            host_with_port = hostname
            if parsed.port:
                host_with_port += f":{parsed.port}"
            for entry in entries:
                entry = entry.lstrip(".")
                if hostname == entry or host_with_port == entry:
                    return True
                entry = "." + entry
                if hostname.endswith(entry) or host_with_port.endswith(entry):
                    return True
    try:
        return bool(proxy_bypass(hostname))
    except (TypeError, socket.gaierror):
        return False


def _is_ipv4_address(text: str) -> bool:
    try:
        socket.inet_aton(text)
    except OSError:
        return False
    return True


def _is_valid_cidr(text: str) -> bool:
    """A.B.C.D/N with N from 1 to 32."""
    if text.count("/") != 1:
        return False
    address, bits = text.split("/")
    try:
        mask = int(bits)
    except ValueError:
        return False
    return 1 <= mask <= 32 and _is_ipv4_address(address)


def _address_in_network(ip: str, network: str) -> bool:
    address, bits = network.split("/")
    netmask = struct.unpack("=L", socket.inet_aton(_dotted_netmask(int(bits))))[0]
    ip_value = struct.unpack("=L", socket.inet_aton(ip))[0]
    net_value = struct.unpack("=L", socket.inet_aton(address))[0] & netmask
    return (ip_value & netmask) == (net_value & netmask)


def _dotted_netmask(mask: int) -> str:
    bits = 0xFFFFFFFF ^ (1 << 32 - mask) - 1
    return socket.inet_ntoa(struct.pack(">I", bits))


def select_proxy(url: str, proxies: Mapping[str, str]) -> str | None:
    """The proxy for ``url`` from a requests-style dict: "scheme://host", "scheme",
    "all://host", "all", the first of those it has."""
    parts = urlparse(url)
    if parts.hostname is None:
        return proxies.get(parts.scheme, proxies.get("all"))
    for key in (
        f"{parts.scheme}://{parts.hostname}",
        parts.scheme,
        f"all://{parts.hostname}",
        "all",
    ):
        if key in proxies:
            return proxies[key]
    return None


def prepend_scheme_if_needed(url: str, scheme: str) -> str:
    """``url`` with ``scheme`` in front when it has none ("proxy:3128" ->
    "http://proxy:3128"); a scheme it has is kept."""
    parsed = parse_url(url)
    has_scheme, auth, _host, _port, path, query, fragment = parsed
    netloc = parsed.netloc
    if not netloc:  # how urlparse once read a URL without a scheme: kept as requests does
        netloc, path = path, netloc
    if auth:
        netloc = "@".join([auth, netloc or ""])
    return urlunparse((has_scheme or scheme, netloc, path or "", "", query, fragment))


def netrc_auth(url: str) -> tuple[str, str] | None:
    """(login, password) for ``url``'s host from the netrc file: $NETRC when set, else
    the first of ~/.netrc and ~/_netrc that exists; the ``default`` entry serves any
    host.  None when there is none, or the file cannot be read or parsed."""
    from netrc import NetrcParseError, netrc

    named = os.environ.get("NETRC")
    locations = (named,) if named is not None else tuple(f"~/{name}" for name in NETRC_FILES)
    path = next((loc for loc in map(os.path.expanduser, locations) if os.path.exists(loc)), None)
    if path is None:
        return None
    host = urlparse(url).hostname
    if host is None:
        return None
    try:
        found = netrc(path).authenticators(host)
    except (NetrcParseError, OSError):
        return None
    if not found or not any(found):
        return None
    login = found[0] if found[0] else found[1]
    return (login or "", found[2] or "")
