"""The landing page in a real headless Chromium (Debian's ``chromium``, driven by Playwright
with ``executable_path``: no browser download): loaded from ``server.py`` and from
``file://``, the filter typed into, the rows read, the snippets read, a page turned, a
project link followed.  Screenshots are kept in tests/artifacts/ (ignored by git).

Skipped, saying why, when chromium or the playwright package is missing (.ci/run
installs both, best effort).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from morgan_like.modes.serve import server_source
from morgan_like.tree.layout import LANDING_HTML
from morgan_like.tree.publish import publish
from morgan_like.tree.state import TreeState
from morgan_like.tree.views import EnvView
from morgan_like.tree.writer import TreeWriter

from .server_support import SubprocessServer
from .tree.test_landing import _place

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# 250 numbered projects (three pages of rows) and a few named ones to filter for
NAMED = ["alpha", "alpha-tools", "beta", "zeta-alpha"]
NUMBERED = [f"proj-{i:03d}" for i in range(250)]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tree with two env views: py312 has every project at 2.0, py38 the named ones at 1.0."""
    root = tmp_path_factory.mktemp("landing") / "tree"
    py312: dict[str, frozenset[str]] = {}
    py38: dict[str, frozenset[str]] = {}
    with TreeState(root) as state:
        writer = TreeWriter(root, state)
        for name in NAMED + NUMBERED:
            stem = name.replace("-", "_")
            files = {f"{stem}-1.0.tar.gz": b"1" * 1000, f"{stem}-2.0.tar.gz": b"2" * 3000}
            writer.write_project(name, [_place(root, name, f, data) for f, data in files.items()])
            py312[name] = frozenset({f"{stem}-2.0.tar.gz"})
            if name in NAMED:
                py38[name] = frozenset({f"{stem}-1.0.tar.gz"})
        publish(
            writer,
            server=server_source().read_bytes(),
            views=[EnvView("py312", py312), EnvView("py38", py38)],
        )
    return root


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install -y chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="the playwright package is not installed (pip install playwright)",
    )
    with sync_api.sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def _open(browser, url: str):  # type: ignore[no-untyped-def]
    """A new page at URL; every request it makes and every script error are recorded."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.requests = []
    page.errors = []
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(url)
    return page


def _names(page) -> list[str]:  # type: ignore[no-untyped-def]
    return page.locator("#projects tbody tr td:first-child").all_inner_texts()


def _type(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.fill("#filter", "")
    page.type("#filter", text)


def _check_page(page, base: str, shot: str) -> None:  # type: ignore[no-untyped-def]
    """What both ways of opening the page must show; BASE: the folder it was opened from."""
    total = len(NAMED) + len(NUMBERED)
    assert page.inner_text("#count") == f"{total} projects"
    assert len(_names(page)) == 100  # one page of rows, not the whole list
    assert "page 1 of 3" in page.inner_text("#pageinfo")
    page.click("#next")
    assert _names(page)[0] == sorted(NAMED + NUMBERED)[100]
    # the filter: a substring of the normalized name, whatever the case and separators
    _type(page, "alpha")
    assert _names(page) == ["alpha", "alpha-tools", "zeta-alpha"]
    assert page.inner_text("#count") == f"3 of {total} projects match"
    assert page.is_hidden("#pager")
    _type(page, "Alpha_Tools")
    assert _names(page) == ["alpha-tools"]
    row = page.locator("#projects tbody tr").first.locator("td").all_inner_texts()
    assert row == ["alpha-tools", "2.0", "2", "2.0", "1.0", "2", "3.9 KiB"]
    _type(page, "no-such-project")
    assert _names(page) == [] and page.inner_text("#pageinfo") == "no project matches"
    # the snippets: this place's URL, for the union and for an env's view
    assert f"index-url = {base}simple/" in page.inner_text("#pipconf")
    assert f'url = "{base}simple/"' in page.inner_text("#uvtoml")
    page.select_option("#index", "py38")
    assert f"index-url = {base}envs/py38/simple/" in page.inner_text("#pipconf")
    _type(page, "")
    assert _names(page) == NAMED  # the env's own projects only
    _type(page, "alpha")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
    assert page.errors == []


def test_landing_page_from_server_py(tree: Path, browser) -> None:  # type: ignore[no-untyped-def]
    with SubprocessServer(tree) as srv:
        page = _open(browser, srv.base + "/")
        base = srv.base + "/"
        _check_page(page, base, "landing-server.png")
        assert "trusted-host = 127.0.0.1" in page.inner_text("#pipconf")
        # nothing but this server was asked for anything
        assert page.requests and all(url.startswith(base) for url in page.requests)
        # a project's link leads to its page in the env's view
        page.click("text=alpha-tools")
        page.wait_for_url(f"{base}envs/py38/simple/alpha-tools/")
        assert "alpha_tools-1.0.tar.gz" in page.content()
        page.close()


def test_landing_page_from_file_url(tree: Path, browser) -> None:  # type: ignore[no-untyped-def]
    url = (tree / LANDING_HTML).as_uri()
    page = _open(browser, url)
    base = url[: url.rindex("/") + 1]
    _check_page(page, base, "landing-file.png")
    assert "trusted-host" not in page.inner_text("#pipconf")
    assert all(u.startswith("file://") for u in page.requests)
    # file:// has no index of a folder: the links name its index.html
    page.click("text=alpha-tools")
    page.wait_for_url(f"{base}envs/py38/simple/alpha-tools/index.html")
    assert "alpha_tools-1.0.tar.gz" in page.content()
    page.close()
