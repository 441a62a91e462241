"""One DNS lookup per host at a time, shared by every connection of the run.

A bundle opens up to 32 connections to the same file host at once, and each new
connection asks the system resolver again.  A burst of 32 concurrent lookups is
what a small resolver drops: on the machine this was measured on, a third of such
lookups waited 5 s (glibc's retry interval) and some failed outright ("Temporary
failure in name resolution"); one bundle run in ten stalled 5 s on it.  pip makes
a connection or two and never meets this.  So a lookup in flight is shared by
whoever asks for the same name meanwhile, and its answer is kept for a short
while; failures are not kept, so a retry asks again.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from concurrent.futures import Future
from typing import Any

# Long enough for a run's burst of connections, short enough to follow a DNS change
# during a long sync.
TTL = 60.0

_Key = tuple[Any, ...]
_lock = threading.Lock()
_answers: dict[_Key, tuple[float, list[Any]]] = {}
_inflight: dict[_Key, Future[list[Any]]] = {}
_system = socket.getaddrinfo


def _literal(host: Any) -> bool:
    if not isinstance(host, (str, bytes)):
        return True  # None (a wildcard) or something odd: the system's answer
    text = host.decode("ascii", "replace") if isinstance(host, bytes) else host
    try:
        ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> list[Any]:
    """``socket.getaddrinfo``, single-flight and remembered for ``TTL`` seconds."""
    if _literal(host):
        return _system(host, port, family, type, proto, flags)
    key = (host, port, family, type, proto, flags)
    with _lock:
        known = _answers.get(key)
        if known is not None and time.monotonic() - known[0] < TTL:
            return list(known[1])
        future = _inflight.get(key)
        owner = future is None
        if future is None:
            future = _inflight[key] = Future()
    if not owner:
        return list(future.result())
    try:
        answer = _system(host, port, family, type, proto, flags)
    except BaseException as exc:
        with _lock:
            del _inflight[key]
        future.set_exception(exc)
        raise
    with _lock:
        _answers[key] = (time.monotonic(), answer)
        del _inflight[key]
    future.set_result(answer)
    return list(answer)


def install() -> None:
    """Send this process's lookups (urllib3 calls ``socket.getaddrinfo``) through here."""
    socket.getaddrinfo = getaddrinfo


def forget() -> None:
    """Drop every remembered answer (tests)."""
    with _lock:
        _answers.clear()
