"""server.py's copy of the tree layout (layout_kind: what an import may write) against
morgan_like/tree/layout.py, the one definition, on a list of paths.

The copy is stricter (only the shapes a tree has), never looser: every path it takes,
layout.py takes with the same role; every path layout.py's own helpers make, it takes.
"""

from __future__ import annotations

import pytest

from morgan_like.tree import layout
from morgan_like.tree.publish import CONFIG_NAME, SERVER_NAME

from ..server_support import load_server_module

server = load_server_module()


def layout_role(rel: str) -> str | None:
    """What layout.py says of REL: "project", "top" or None (not a tree path)."""
    try:
        if layout.normalize_relpath(rel) != rel:
            return None
    except ValueError:
        return None
    if layout.is_hidden(rel):
        return None
    if layout.is_project_path(rel):
        return "project"
    return "top"


MADE = [
    layout.package_relpath("Foo.Bar", "foo_bar-1.0-py3-none-any.whl"),
    layout.package_relpath("a", "a-1.0.tar.gz") + layout.METADATA_SUFFIX,
    *layout.page_relpaths("Foo.Bar"),
    layout.warehouse_relpath("Foo.Bar"),
    *layout.view_page_relpaths("py311", "a"),
    *layout.view_root_relpaths("py311"),
    layout.ROOT_HTML,
    layout.ROOT_JSON,
    layout.MANIFEST_NAME,
    layout.LOCAL_JSON,
    layout.LOCAL_SERIAL,
    layout.LANDING_HTML,
    CONFIG_NAME,
    SERVER_NAME,
    layout.SBOM_NAME,
    *layout.lock_relpaths("py3.11"),
    *layout.lock_relpaths("edge"),
    f"{layout.INPUTS_DIR}/requirements.txt",
    f"{layout.INPUTS_DIR}/sub/constraints.txt",
]

OTHERS = [
    "../x",
    "/etc/passwd",
    "packages/../server.py",
    "packages/a/./a.whl",
    "packages//a.whl",
    "packages/a/.hidden",
    ".morgan-like/state.db",
    "simple/.tmp/index.html",
    "c:/x",
    "packages\\a\\x.whl",
    "packages/a",
    "packages/a/b/c.whl",
    "simple/a/other.html",
    "simple/a/b/index.html",
    "simple/other.html",
    "json/a/b",
    "envs/py311/index.html",
    "envs/py311/simple/a/b/index.html",
    "envs/.x/simple/index.html",
    "envs/py311/other/a/index.html",
    "inputs",
    "README.txt",
    "lock",
    "sbom.json",
    "locks",
    "locks/x.toml",
    "locks/pylock.a.b.toml",
    "locks/sub/pylock.a.toml",
    "locks/.requirements.txt",
    "packages/a/a\x00.whl",
    "",
]


@pytest.mark.parametrize("rel", MADE)
def test_every_path_layout_makes_is_taken_with_its_role(rel):
    assert server.layout_kind(rel) == layout_role(rel) is not None


@pytest.mark.parametrize("rel", MADE + OTHERS)
def test_the_copy_is_never_looser_than_layout(rel):
    kind = server.layout_kind(rel)
    if kind is not None:
        assert kind == layout_role(rel)


def test_the_known_top_level_files_are_layouts():
    """A top-level file added to the layout must join server.py's _TOP_FILES."""
    names = {
        layout.MANIFEST_NAME,
        layout.LOCAL_JSON,
        layout.LOCAL_SERIAL,
        layout.LANDING_HTML,
        CONFIG_NAME,
        SERVER_NAME,
        layout.SBOM_NAME,
    }
    assert set(server._TOP_FILES) == names
    assert set(server._LAYOUT_DIRS) == {
        layout.PACKAGES_DIR,
        layout.SIMPLE_DIR,
        layout.JSON_DIR,
        layout.ENVS_DIR,
        layout.INPUTS_DIR,
        layout.LOCKS_DIR,
    }
