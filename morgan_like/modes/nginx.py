"""An nginx configuration that serves a tree the way server.py does.

``render_nginx_config(tree, host, port)`` returns an ``http``-context snippet (a
``map`` block and a ``server`` block) to drop into ``/etc/nginx/conf.d/``::

    morgan-like nginx-config -i /srv/bundle > /etc/nginx/conf.d/morgan-like.conf

It serves:

* ``/simple/`` and ``/simple/<project>/`` from the static ``index.json`` /
  ``index.html`` files, chosen from ``?format=`` or ``Accept`` with the exact PEP 691
  types (``application/vnd.pypi.simple.v1+json``, ``...v1+html``, ``text/html;
  charset=utf-8``), ``Vary: Accept, Accept-Encoding``, ``Cache-Control: no-cache``,
  gzip for pages only; 406 when nothing offered is acceptable; ``.../index.html`` and
  ``.../index.json`` asked for by name as they are;
* 301 to ``/simple/<normalized>/`` for a missing slash or a non-normalized name
  (a per-project case-insensitive pattern, generated from the tree's projects:
  re-render after adding projects);
* every env's index view, ``/envs/NAME/simple/...``, exactly like ``/simple/``
  (``/envs/NAME/`` and ``/envs/NAME/simple`` 301 to ``/envs/NAME/simple/``, a name
  that is no view of the tree 404).  Views are matched by pattern and looked up on
  disk per request, so envs added or removed by later runs need no new config;
  ``/envs/`` is nginx's own listing of them;
* ``/<project>/`` (morgan-style ``index-url = http://host:port/``);
* ``/packages/...`` with ``Cache-Control: public, max-age=31536000, immutable``,
  ``application/octet-stream``, never gzip, single ranges only, symlinks refused;
* nothing else: hidden paths, ``manifest.json``, ``morgan.ini``, ``server.py`` and
  state files are 404.

Negotiation is an approximation of server.py's q-value algorithm (nginx has no
Accept parser): a type listed with a non-zero q counts, explicit types beat
wildcards, and JSON > v1+html > text/html among them, regardless of the q values'
relative order; wildcards alone give ``application/*`` v1+html and ``*/*`` text/html
(only a client that names JSON gets it).  Every real client (pip, uv, old pip, curl)
gets the same answer as from server.py.  ``--no-metadata`` has no nginx equivalent.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from pathlib import Path

JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"

ACCEPT_JSON = r"application/vnd\.pypi\.simple\.(v1|latest)\+json"
ACCEPT_V1HTML = r"application/vnd\.pypi\.simple\.(v1|latest)\+html"
ACCEPT_TEXT = r"text/(html|\*)"
ACCEPT_APPLICATION = r"application/\*"
ACCEPT_ANY = r"\*/\*"
#: an env's name as its view folder ``envs/NAME/`` has it (exact case), and a
#: normalized project name
ENV_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
PROJECT = r"[a-z0-9]+(-[a-z0-9]+)*"
IDS = "morgan_like"  # the prefix of every variable and internal location
_NONZERO = r"\s*(;(?!\s*q\s*=\s*0(\.0{0,3})?\s*(,|$))[^,]*)?\s*(,|$)"


_HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def host_problem(host: str) -> str | None:
    """None when ``host`` is an IP address (IPv6 bare or in brackets) or a host name.

    The value goes into ``listen`` as it is: anything else (``a;b``, quotes, spaces)
    would be nginx syntax, not an address."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
        return None
    except ValueError:
        pass
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    named = all(_HOST_LABEL.fullmatch(label) for label in labels)
    if len(host) <= 253 and named and not labels[-1].isdigit():  # 1.2.3.999: no address
        return None
    return f"{host!r} is neither an IP address nor a host name"


def port_problem(port: int, *, any_port: bool = False) -> str | None:
    """None when ``port`` is a TCP port (1 to 65535; 0 too with ``any_port``: a server
    may ask for any free port, an nginx config may not)."""
    low = 0 if any_port else 1
    if low <= port <= 65535:
        return None
    return f"{port} is not a port ({low} to 65535)"


def _listen(host: str, port: int) -> str:
    problem = host_problem(host) or port_problem(port)
    if problem:
        raise ValueError(f"cannot listen on this in an nginx config: {problem}")
    bare = host[1:-1] if host.startswith("[") else host
    return f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"


def _accept_rule(media_regex: str) -> str:
    """A map key matching the Accept part of "$arg_format|$http_accept" when it lists
    ``media_regex`` with a non-zero q."""
    return rf"~*\|(.*,)?\s*{media_regex}{_NONZERO}"


def _name_pattern(normalized: str) -> str:
    """Case-insensitive pattern for every spelling that normalizes to ``normalized``."""
    return "^" + r"[-_.]+".join(normalized.split("-")) + "$"


def _projects(tree: Path) -> list[str]:
    simple = tree / "simple"
    if not simple.is_dir():
        return []
    return sorted(
        p.name
        for p in simple.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / "index.html").is_file()
    )


def _q(value: str) -> str:
    """An nginx double-quoted string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _index_locations(root: str, url_re: str, url: str, folder: str) -> list[str]:
    """The locations of one index, the union's or an env's view, as server.py's
    ``route_simple`` answers: ``url_re`` matches its URL (``/simple``), ``url`` and
    ``folder`` name it in redirects and on disk (both may use ``url_re``'s captures).

    A page's folder is looked up before negotiating (404 beats 406, as in server.py);
    the page itself is served by an internal location (see ``_page_locations``)."""
    project, ext = "${" + IDS + "_project}", f"${IDS}_ext"
    index_dir = _q(f"{root}/{folder}")
    return [
        f"    location ~ ^{url_re}/(?<{IDS}_project>({PROJECT}/)?)index\\.(?<{IDS}_ext>html|json)$ {{",
        f"        rewrite ^ /__{IDS}_{ext}/{folder}/{project}index.{ext} last;",
        "    }",
        f"    location ~ ^{url_re}/(?<{IDS}_project>({PROJECT}/)?)$ {{",
        f"        if (!-d {_q(f'{root}/{folder}/{project}')}) {{ return 404; }}",
        f"        if (${IDS}_variant = 406) {{ return 406; }}",
        f"        rewrite ^ /__{IDS}_${IDS}_variant/{folder}/{project}${IDS}_file last;",
        "    }",
        f"    location ~ ^{url_re}/(?<{IDS}_name>[^/]+)/?$ {{",
        f"        if (!-d {index_dir}) {{ return 404; }}",
        f'        if (${IDS}_canonical = "") {{ return 404; }}',
        f"        return 301 {url}/${IDS}_canonical/$is_args$args;",
        "    }",
    ]


def _view_locations(root: str) -> list[str]:
    """``/envs/...``: every env's view, whatever envs the tree has when asked."""
    env = f"${IDS}_env"
    env_re = f"/envs/(?<{IDS}_env>{ENV_NAME})"
    return [
        "",
        "    # the env views: envs/NAME/simple/, served like simple/",
        "    location = /envs { return 301 /envs/$is_args$args; }",
        "    location = /envs/ {",
        "        autoindex on;",
        "        charset utf-8;",
        "        add_header Cache-Control no-cache always;",
        "    }",
        f"    location ~ ^{env_re}(/|/simple)?$ {{",
        f"        if (!-d {_q(f'{root}/envs/{env}/simple')}) {{ return 404; }}",
        f"        return 301 /envs/{env}/simple/$is_args$args;",
        "    }",
        *_index_locations(root, f"{env_re}/simple", f"/envs/{env}/simple", f"envs/{env}/simple"),
        "    location /envs/ { return 404; }",
    ]


def _page_locations(root: str) -> list[str]:
    """The internal locations serving index pages as one type each (rewritten to)."""
    lines = ["", "    # the pages, as one type each (rewritten to: never asked for)"]
    for variant, ctype, charset in (
        ("json", JSON_V1, False),
        ("v1html", HTML_V1, False),
        ("html", TEXT_HTML, True),
    ):
        lines += [
            f"    location ^~ /__{IDS}_{variant}/ {{",
            "        internal;",
            f"        alias {_q(root + '/')};",
            f"        types {{ }} default_type {ctype};",
            "        charset utf-8;" if charset else "        charset off;",
            '        add_header Vary "Accept, Accept-Encoding" always;',
            "        add_header Cache-Control no-cache always;",
            "        gzip on;",
            "        gzip_vary off;",
            "        gzip_min_length 512;",
            f"        gzip_types {ctype};"
            if ctype != TEXT_HTML
            else "        # text/html is always gzip-eligible",
            "    }",
        ]
    return lines


def negotiation_maps(projects: Iterable[str]) -> list[str]:
    """The ``map`` blocks every config shares (this one and modes/nginx_bucket.py's):
    ``$morgan_like_variant`` (json, v1html, html or 406, from ?format= and Accept),
    ``$morgan_like_file`` (the page's file name) and ``$morgan_like_canonical`` (every
    spelling of each of ``projects`` to its normalized name, for the 301)."""
    json_fmt = r"~*^application(/|%2F)vnd\.pypi\.simple\.(v1|latest)(\+|%2B)json\|"
    html_fmt = r"~*^application(/|%2F)vnd\.pypi\.simple\.(v1|latest)(\+|%2B)html\|"
    text_fmt = r"~*^text(/|%2F)html\|"
    lines = [
        "# PEP 691: ?format= wins, then Accept (approximated: see morgan_like/modes/nginx.py)",
        f'map "$arg_format|$http_accept" ${IDS}_variant {{',
        "    default html;",
        f"    {_q(json_fmt)} json;",
        f"    {_q(html_fmt)} v1html;",
        f"    {_q(text_fmt)} html;",
        f"    {_q('~^[^|]+[|]')} 406;",
        f"    {_q(_accept_rule(ACCEPT_JSON))} json;",
        f"    {_q(_accept_rule(ACCEPT_V1HTML))} v1html;",
        f"    {_q(_accept_rule(ACCEPT_TEXT))} html;",
        f"    {_q(_accept_rule(ACCEPT_APPLICATION))} v1html;",
        f"    {_q(_accept_rule(ACCEPT_ANY))} html;",
        f"    {_q('~[|].*[^ ]')} 406;",
        "}",
        "",
        f"map ${IDS}_variant ${IDS}_file {{",
        "    json index.json;",
        "    default index.html;",
        "}",
        "",
        "# every spelling of a project name -> its normalized name (for the 301)",
        f"map ${IDS}_name ${IDS}_canonical {{",
        '    default "";',
    ]
    for name in projects:
        lines.append(f"    {_q('~*' + _name_pattern(name))} {name};")
    lines += ["}", ""]
    return lines


def render_nginx_config(tree: Path, host: str, port: int) -> str:
    """The ``http``-context snippet (map + server) serving ``tree`` on ``host:port``."""
    tree = Path(tree).resolve()
    root = str(tree)
    if any(c in root for c in '";{}\n') or "$" in root:
        raise ValueError(f"cannot put this path into an nginx config: {root!r}")
    listen = _listen(host, port)
    lines = [
        f"# morgan_like tree {root}",
        "# generated by morgan_like.modes.nginx.render_nginx_config; include in the http {} context",
        "",
        *negotiation_maps(_projects(tree)),
    ]
    lines += [
        "server {",
        f"    listen {listen};",
        "    server_name _;",
        f"    root {_q(root)};",
        "    autoindex off;",
        "    server_tokens off;",
        "    charset off;",
        "    gzip off;",
        "    max_ranges 1;",
        "    etag on;",
        "    disable_symlinks on from=$document_root;",
        "",
        "    # the landing page (tree/landing.py) at /; a tree without one: its index",
        "    location = / {",
        f"        try_files /index.html @{IDS}_no_landing;",
        "        types { } default_type text/html;",
        "        charset utf-8;",
        "        add_header Cache-Control no-cache always;",
        "        add_header Vary Accept-Encoding always;",
        "    }",
        f"    location @{IDS}_no_landing {{ return 301 /simple/$is_args$args; }}",
        "    location = /index.html {",
        "        types { } default_type text/html;",
        "        charset utf-8;",
        "        add_header Cache-Control no-cache always;",
        "        add_header Vary Accept-Encoding always;",
        "    }",
        "    location = /sbom.cdx.json {",
        "        types { } default_type application/vnd.cyclonedx+json;",
        "        add_header Cache-Control no-cache always;",
        "        add_header Vary Accept-Encoding always;",
        "    }",
        "    # each env's locks, their tree-relative locations made absolute for this host",
        "    # (as server.py does: uv resolves a fetched lock's paths against its cwd)",
        r"    location ~ ^/locks/pylock\.[A-Za-z0-9][A-Za-z0-9_-]*\.toml$ {",
        "        types { } default_type application/toml;",
        "        charset utf-8;",
        """        sub_filter 'path = "../packages/' 'url = "$scheme://$http_host/packages/';""",
        "        sub_filter_once off;",
        "        sub_filter_types application/toml;",
        "        add_header Cache-Control no-cache always;",
        "    }",
        f"    location ~ ^/locks/(?<{IDS}_lockenv>[A-Za-z0-9][A-Za-z0-9._-]*)\\.requirements\\.txt$ {{",
        "        types { } default_type text/plain;",
        "        charset utf-8;",
        f"        sub_filter '--no-index' '--index-url $scheme://$http_host/envs/${IDS}_lockenv/simple/';",
        "        sub_filter '--find-links ../' '# --find-links ../';",
        "        sub_filter_once off;",
        "        sub_filter_types text/plain;",
        "        add_header Cache-Control no-cache always;",
        "    }",
        "    location /locks/ { return 404; }",
        "    location = /simple { return 301 /simple/$is_args$args; }",
        "",
        "    # hidden paths and the tree's own files are never served",
        r"    location ~ /\. { return 404; }",
        "",
        "    # the index pages",
        *_index_locations(root, "/simple", "/simple", "simple"),
        "    location /simple/ { return 404; }",
        *_view_locations(root),
        *_page_locations(root),
    ]
    lines += [
        "",
        "    # distribution files and their .metadata",
        "    location ^~ /packages/ {",
        r"        location ~ /\. { return 404; }",
        r"        location ~* (/(manifest\.json|morgan\.ini|server\.py)|\.(db|sqlite|sqlite3|ini|part|tmp|lock|pyc))$ { return 404; }",
        "        types { } default_type application/octet-stream;",
        "        gzip off;",
        '        add_header Cache-Control "public, max-age=31536000, immutable" always;',
        "        try_files $uri =404;",
        "    }",
        "",
        "    # a full mirror as an upstream: Warehouse JSON and the serial list",
        "    location ~ ^/pypi/(?<morgan_like_project>[a-z0-9]+(-[a-z0-9]+)*)/json$ {",
        f'        alias {_q(root + "/json/")[:-1]}$morgan_like_project";',
        "        types { } default_type application/json;",
        "        # file URLs made absolute for this host: mirrors download them as they are",
        """        sub_filter '"url": "/packages/' '"url": "$scheme://$http_host/packages/';""",
        "        sub_filter_once off;",
        "        sub_filter_types application/json;",
        "        add_header Cache-Control no-cache always;",
        "        add_header Vary Accept-Encoding always;",
        "    }",
        "    location = /local.json {",
        f"        alias {_q(root + '/local.json')};",
        "        types { } default_type application/json;",
        "        add_header Cache-Control no-cache always;",
        "        add_header Vary Accept-Encoding always;",
        "    }",
        "    location = /local.db.serial {",
        f"        alias {_q(root + '/local.db.serial')};",
        "        types { } default_type text/plain;",
        "        add_header Cache-Control no-cache always;",
        "        add_header Vary Accept-Encoding always;",
        "    }",
        "",
        "    # morgan-style index-url = http://host:port/ : /<project>/",
        f"    location ~ ^/(?<{IDS}_project>{PROJECT})/$ {{",
        f"        if (!-d {_q(root + '/simple/$' + IDS + '_project')}) {{ return 404; }}",
        f"        if (${IDS}_variant = 406) {{ return 406; }}",
        f"        rewrite ^ /__{IDS}_${IDS}_variant/simple/$morgan_like_project/${IDS}_file last;",
        "    }",
        f"    location ~ ^/(?<{IDS}_name>[^/.][^/]*)/?$ {{",
        f'        if (${IDS}_canonical = "") {{ return 404; }}',
        f"        return 301 /${IDS}_canonical/$is_args$args;",
        "    }",
        "",
        "    location / { return 404; }",
        "}",
        "",
    ]
    return "\n".join(lines)
