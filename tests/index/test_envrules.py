"""index/envrules.py reads no_proxy, proxy dicts and netrc files as pip's requests
session does: each rule against requests' own function (requests is a test
dependency only), over the cases each rule has."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
import requests.utils

from morgan_like.index import envrules
from morgan_like.index.hosts import HostSettings

URLS = [
    "https://index.test/simple/",
    "https://files.hosted.test/packages/x.whl",
    "http://index.test:8080/simple/",
    "https://mirror.corp.example:8443/simple/",
    "https://corp.example/simple/",
    "https://notcorp.example/simple/",
    "http://10.1.2.3/simple/",
    "http://10.1.2.3:8080/simple/",
    "http://192.168.0.7/simple/",
    "http://127.0.0.1:3141/root/pypi/+simple/",
    "http://localhost:3141/simple/",
    "http://[::1]:8080/simple/",
    "http://user:pw@host.example/simple/",
    "file:///srv/simple/",
]

NO_PROXY = [
    None,
    "",
    "index.test",
    ".index.test",
    "hosted.test",
    ".corp.example",
    "corp.example",
    "index.test:8080",
    "mirror.corp.example:8443",
    "10.0.0.0/8",
    "10.1.2.3",
    "192.168.0.0/16,localhost",
    "10.1.2.0/33,10.1.2.3/0,10.1.2.3/x,1.2.3/8",
    "*",
    " index.test , .example ,,",
    "127.0.0.1",
    "::1",
    "host.example",
]


def _environ(monkeypatch: pytest.MonkeyPatch, **values: str | None) -> None:
    for name in ("no_proxy", "NO_PROXY", "http_proxy", "https_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        if value is not None:
            monkeypatch.setenv(name, value)


@pytest.mark.parametrize("no_proxy", NO_PROXY)
@pytest.mark.parametrize("variable", ["no_proxy", "NO_PROXY"])
def test_no_proxy_is_read_as_requests_reads_it(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str | None, variable: str
) -> None:
    _environ(monkeypatch, **{variable: no_proxy, "https_proxy": "http://proxy:3128"})
    for url in URLS:
        expected = requests.utils.should_bypass_proxies(url, no_proxy=None)
        assert envrules.bypasses_proxies(url) == expected, (url, no_proxy)


def test_lowercase_no_proxy_wins_over_uppercase(monkeypatch: pytest.MonkeyPatch) -> None:
    _environ(monkeypatch, no_proxy="corp.example", NO_PROXY="index.test")
    assert envrules.bypasses_proxies("https://corp.example/")
    assert not envrules.bypasses_proxies("https://index.test/")
    assert requests.utils.should_bypass_proxies("https://index.test/", no_proxy=None) is False


PROXIES = [
    {},
    {"https": "http://p:1"},
    {"http": "http://p:1", "https": "http://p:2"},
    {"all": "http://p:3"},
    {"all": "http://p:3", "https": "http://p:2"},
    {"https://index.test": "http://p:4", "https": "http://p:2"},
    {"all://index.test": "http://p:5", "all": "http://p:3"},
    {"file": "http://p:6"},
]


@pytest.mark.parametrize(("url", "proxies"), list(itertools.product(URLS, PROXIES)))
def test_a_proxy_is_picked_as_requests_picks_it(url: str, proxies: dict[str, str]) -> None:
    assert envrules.select_proxy(url, proxies) == requests.utils.select_proxy(url, proxies)


@pytest.mark.parametrize(
    "proxy",
    [
        "proxy:3128",
        "http://proxy:3128",
        "https://proxy:3128",
        "socks5://proxy:1080",
        "user:pw@proxy:3128",
        "http://user:pw@proxy:3128/",
        "proxy",
        "//proxy:3128",
        "proxy:3128/path?q=1#f",
        "10.0.0.1:8080",
        "[::1]:3128",
    ],
)
def test_a_proxy_without_scheme_gets_http_as_requests_gives_it(proxy: str) -> None:
    expected = requests.utils.prepend_scheme_if_needed(proxy, "http")
    assert envrules.prepend_scheme_if_needed(proxy, "http") == expected


NETRC = """\
machine index.test login alice password secret
machine files.example password only-a-password
machine account.example account acct password pw
machine empty.example login "" password ""
default login anyone password anywhere
"""

NETRC_NO_DEFAULT = "machine index.test login bob password b0b\n"

NETRC_URLS = [
    "https://index.test/simple/",
    "https://files.example/x",
    "https://account.example/x",
    "https://empty.example/x",
    "https://elsewhere.example/x",
    "file:///srv/simple/",
]


@pytest.mark.parametrize("text", [NETRC, NETRC_NO_DEFAULT, "machine broken login", ""])
@pytest.mark.parametrize("where", ["NETRC", ".netrc", "_netrc", "both", "NETRC missing"])
def test_netrc_credentials_are_found_as_requests_finds_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str, where: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NETRC", raising=False)
    if where == "NETRC":
        (tmp_path / "netrc").write_text(text)
        monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
        (home / ".netrc").write_text(NETRC_NO_DEFAULT)  # $NETRC wins over ~/.netrc
    elif where == "NETRC missing":
        monkeypatch.setenv("NETRC", str(tmp_path / "absent"))
        (home / ".netrc").write_text(text)  # not read: $NETRC names the file
    elif where == "both":
        (home / ".netrc").write_text(text)
        (home / "_netrc").write_text(NETRC_NO_DEFAULT)
    else:
        (home / where).write_text(text)
    for path in home.iterdir():
        os.chmod(path, 0o600)
    for url in NETRC_URLS:
        assert envrules.netrc_auth(url) == requests.utils.get_netrc_auth(url), (url, where)


def test_host_settings_use_the_environment_s_proxy_unless_no_proxy_says_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in list(os.environ):
        if name.startswith("PIP_") and name != "PIP_CONFIG_FILE":
            monkeypatch.delenv(name)
    _environ(monkeypatch, https_proxy="http://proxy:3128", no_proxy=".internal.example")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    (tmp_path / "netrc").write_text("machine index.test login alice password secret\n")
    hosts = HostSettings("https://index.test/simple/", None, None)
    assert hosts.proxies_for("https://index.test/simple/") == {"https": "http://proxy:3128"}
    assert hosts.proxies_for("https://a.internal.example/simple/") is None
    assert hosts.auth_for("https://index.test/simple/") == ("alice", "secret")
    assert hosts.auth_for("https://user:pw@index.test/simple/") is None  # the URL's own
    assert hosts.auth_for("https://a.internal.example/") is None
