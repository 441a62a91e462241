"""morgan_like/index/dns.py: a run's burst of connections makes one lookup per host."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from morgan_like.index import dns


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A slow system resolver that records what it is asked."""
    asked: list[str] = []
    lock = threading.Lock()

    def system(host, port, family=0, type=0, proto=0, flags=0):
        with lock:
            asked.append(host)
        time.sleep(0.2)
        if host == "nowhere.invalid":
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.7", port))]

    monkeypatch.setattr(dns, "_system", system)
    dns.forget()
    yield asked
    dns.forget()


def test_a_burst_of_connections_makes_one_lookup(resolver: list[str]) -> None:
    with ThreadPoolExecutor(32) as pool:
        answers = list(
            pool.map(
                lambda _: dns.getaddrinfo("files.example.org", 443, 0, socket.SOCK_STREAM),
                range(32),
            )
        )
    assert resolver == ["files.example.org"]
    assert all(a[0][4] == ("192.0.2.7", 443) for a in answers)
    dns.getaddrinfo("files.example.org", 443, 0, socket.SOCK_STREAM)  # remembered
    assert resolver == ["files.example.org"]


def test_a_failed_lookup_is_shared_but_not_remembered(resolver: list[str]) -> None:
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(dns.getaddrinfo, "nowhere.invalid", 443) for _ in range(4)]
        for future in futures:
            with pytest.raises(socket.gaierror):
                future.result()
    with pytest.raises(socket.gaierror):
        dns.getaddrinfo("nowhere.invalid", 443)
    assert resolver == ["nowhere.invalid", "nowhere.invalid"]  # the retry asked again


def test_an_answer_expires(resolver: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    dns.getaddrinfo("files.example.org", 443)
    monkeypatch.setattr(dns, "TTL", 0.0)
    dns.getaddrinfo("files.example.org", 443)
    assert resolver == ["files.example.org", "files.example.org"]


def test_addresses_go_straight_to_the_system(resolver: list[str]) -> None:
    """Nothing to look up, nothing to remember (the system answers them at once)."""
    for host in ("127.0.0.1", "::1", "[::1]", "fe80::1%eth0", None) * 2:
        dns.getaddrinfo(host, 80)
    assert resolver == ["127.0.0.1", "::1", "[::1]", "fe80::1%eth0", None] * 2
