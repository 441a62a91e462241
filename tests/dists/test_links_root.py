"""Root index pages: the project names a name suggestion is chosen from."""

from __future__ import annotations

from morgan_like.dists.links import parse_root_names


def test_root_names_from_json_and_html() -> None:
    body = b'{"meta": {"api-version": "1.1"}, "projects": [{"name": "Colorama"}, {"x": 1}, 3]}'
    assert parse_root_names(body) == ["Colorama"]
    assert parse_root_names(b"[1, 2]") == []
    assert parse_root_names(b"{bad") == []
    html = '<a href="/simple/a-b/">a-b</a>\n<A HREF="x">Zope&amp;Co</A><a href="y"> </a>'
    assert parse_root_names(html) == ["a-b", "Zope&Co"]
