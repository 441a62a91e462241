"""An nginx configuration that serves a tree kept in an S3-compatible bucket.

``morgan-like nginx-config -i s3://BUCKET/PREFIX -H HOST -p PORT`` prints an
``http``-context snippet (the maps, a ``proxy_cache_path``, an ``upstream`` and a
``server`` block) that proxies the bucket path-style (``ENDPOINT/BUCKET/PREFIX/...``)
and answers as modes/nginx.py does for a tree on disk:

* ``/simple/``, ``/simple/<project>/`` and every env's ``/envs/NAME/simple/...``: the
  page's ``index.json`` or ``index.html`` object chosen by the same PEP 691 maps
  (``modes.nginx.negotiation_maps``), served with the negotiated type, ``Vary: Accept,
  Accept-Encoding``, ``Cache-Control: no-cache`` and gzip; 301 for a missing slash or a
  non-normalized name (the names come from the working tree's pages: re-render after
  adding projects);
* ``/packages/...``: the files, their PEP 658 ``.metadata`` (octet-stream) and PEP 740
  ``.provenance`` (JSON), ``immutable`` and kept in nginx's ``proxy_cache`` (files
  never change under one name, so a cached copy is never stale);
* ``/pypi/<project>/json``, ``/local.json``, ``/local.db.serial``, ``/``, ``/index.html``,
  ``/sbom.cdx.json`` and the locks, with the same ``sub_filter`` rewrites;
* nothing else: every other path, a hidden one, and any method but GET and HEAD.

The bucket must let nginx read anonymously (a bucket policy granting ``s3:GetObject``
on ``BUCKET/PREFIX/*`` to nginx's address, or a public-read bucket): nginx does not sign
requests.  A missing object answers 403 or 404 from S3 (403 without list rights):
both become 404, and S3's XML error never reaches a client.  Query strings are not
passed to the bucket (``?acl``, ``?tagging`` are S3 sub-resources).  Unlike the disk
config, a page asked for with an unacceptable ``Accept`` is 406 before its existence is
known (the bucket is not looked up first).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from morgan_like.modes.bucket import BucketRun, storage_settings
from morgan_like.modes.nginx import (
    ENV_NAME,
    HTML_V1,
    IDS,
    JSON_V1,
    PROJECT,
    TEXT_HTML,
    _listen,
    _projects,
    _q,
    negotiation_maps,
)

UPSTREAM = f"{IDS}_bucket"
CACHE_ZONE = f"{IDS}_files"
PROVENANCE_TYPE = "application/json"  # as server.py serves a .provenance


def bucket_endpoint(endpoint: str | None, region: str | None = None) -> tuple[str, str]:
    """``(scheme, host:port)`` of the S3 endpoint nginx proxies to: ``AWS_ENDPOINT_URL``
    (SeaweedFS, MinIO, Ceph RGW), else AWS's regional endpoint."""
    if not endpoint:
        host = f"s3.{region}.amazonaws.com" if region else "s3.amazonaws.com"
        return "https", f"{host}:443"
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an S3 endpoint URL: {parts.scheme}://{parts.hostname}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    host = f"[{host}]" if ":" in host else host
    return parts.scheme, f"{host}:{port}"


def _proxy(scheme: str, base: str, path: str = "/") -> str:
    return f"        proxy_pass {scheme}://{UPSTREAM}{base}{path};"


def _page_locations(scheme: str, base: str) -> list[str]:
    """One internal location per negotiated variant: the page's object with that type."""
    lines = ["", "    # the pages, as one type each (rewritten to: never asked for)"]
    for variant, ctype in (("json", JSON_V1), ("v1html", HTML_V1), ("html", TEXT_HTML)):
        full = f"{ctype}; charset=utf-8" if ctype == TEXT_HTML else ctype
        lines += [
            f"    location ^~ /__{IDS}_{variant}/ {{",
            "        internal;",
            _proxy(scheme, base),
            "        proxy_hide_header Content-Type;",
            "        proxy_hide_header Cache-Control;",
            f'        add_header Content-Type "{full}" always;',
            '        add_header Vary "Accept, Accept-Encoding" always;',
            "        add_header Cache-Control no-cache always;",
            "        gzip on;",
            "        gzip_proxied any;",
            "        gzip_vary off;",
            "        gzip_min_length 512;",
            f"        gzip_types {ctype};"
            if ctype != TEXT_HTML
            else "        # text/html is always gzip-eligible",
            "    }",
        ]
    return lines


def _index_locations(url_re: str, url: str, folder: str) -> list[str]:
    """The locations of one index (the union's or an env's view), as modes/nginx.py's."""
    project, ext = "${" + IDS + "_project}", f"${IDS}_ext"
    return [
        f"    location ~ ^{url_re}/(?<{IDS}_project>({PROJECT}/)?)index\\.(?<{IDS}_ext>html|json)$ {{",
        f"        rewrite ^ /__{IDS}_{ext}/{folder}/{project}index.{ext} last;",
        "    }",
        f"    location ~ ^{url_re}/(?<{IDS}_project>({PROJECT}/)?)$ {{",
        f"        if (${IDS}_variant = 406) {{ return 406; }}",
        f"        rewrite ^ /__{IDS}_${IDS}_variant/{folder}/{project}${IDS}_file last;",
        "    }",
        f"    location ~ ^{url_re}/(?<{IDS}_name>[^/]+)/?$ {{",
        f'        if (${IDS}_canonical = "") {{ return 404; }}',
        f"        return 301 {url}/${IDS}_canonical/$is_args$args;",
        "    }",
    ]


def _top_level(scheme: str, base: str) -> list[str]:
    """``/``, the landing page, the SBOM, the locks and a full mirror's JSON files."""

    def typed(ctype: str, *extra: str) -> list[str]:
        return [
            _proxy(scheme, base, "$uri"),
            "        proxy_hide_header Content-Type;",
            "        proxy_hide_header Cache-Control;",
            f'        add_header Content-Type "{ctype}" always;',
            "        add_header Cache-Control no-cache always;",
            "        add_header Vary Accept-Encoding always;",
            *extra,
        ]

    unzipped = '        proxy_set_header Accept-Encoding "";  # sub_filter reads plain text'
    return [
        "    # the landing page (tree/landing.py) at /; a tree without one: its index",
        "    location = / {",
        _proxy(scheme, base, "/index.html"),
        "        proxy_hide_header Content-Type;",
        "        proxy_hide_header Cache-Control;",
        '        add_header Content-Type "text/html; charset=utf-8" always;',
        "        add_header Cache-Control no-cache always;",
        "        add_header Vary Accept-Encoding always;",
        f"        error_page 403 404 = @{IDS}_no_landing;",
        "    }",
        f"    location @{IDS}_no_landing {{ return 301 /simple/$is_args$args; }}",
        "    location = /index.html {",
        *typed("text/html; charset=utf-8"),
        "    }",
        "    location = /sbom.cdx.json {",
        *typed("application/vnd.cyclonedx+json"),
        "    }",
        "    # each env's locks, their tree-relative locations made absolute for this host",
        r"    location ~ ^/locks/pylock\.[A-Za-z0-9][A-Za-z0-9_-]*\.toml$ {",
        *typed(
            "application/toml; charset=utf-8",
            unzipped,
            """        sub_filter 'path = "../packages/' 'url = "$scheme://$http_host/packages/';""",
            "        sub_filter_once off;",
            "        sub_filter_types *;",
        ),
        "    }",
        f"    location ~ ^/locks/(?<{IDS}_lockenv>[A-Za-z0-9][A-Za-z0-9._-]*)\\.requirements\\.txt$ {{",
        *typed(
            "text/plain; charset=utf-8",
            unzipped,
            f"        sub_filter '--no-index' '--index-url $scheme://$http_host/envs/${IDS}_lockenv/simple/';",
            "        sub_filter '--find-links ../' '# --find-links ../';",
            "        sub_filter_once off;",
            "        sub_filter_types *;",
        ),
        "    }",
        "    location /locks/ { return 404; }",
        "",
        "    # a full mirror as an upstream: Warehouse JSON and the serial list",
        f"    location ~ ^/pypi/(?<{IDS}_project>{PROJECT})/json$ {{",
        _proxy(scheme, base, f"/json/${IDS}_project"),
        "        proxy_hide_header Content-Type;",
        "        proxy_hide_header Cache-Control;",
        '        add_header Content-Type "application/json" always;',
        "        add_header Cache-Control no-cache always;",
        "        add_header Vary Accept-Encoding always;",
        unzipped,
        "        # file URLs made absolute for this host: mirrors download them as they are",
        """        sub_filter '"url": "/packages/' '"url": "$scheme://$http_host/packages/';""",
        "        sub_filter_once off;",
        "        sub_filter_types *;",
        "    }",
        "    location = /local.json {",
        *typed("application/json"),
        "    }",
        "    location = /local.db.serial {",
        *typed("text/plain"),
        "    }",
    ]


def render_bucket_config(
    run: BucketRun, host: str, port: int, *, cache_dir: Path | None = None
) -> str:
    """The ``http``-context snippet serving the bucket of ``run`` on ``host:port``; the
    project names for the 301 maps come from its working tree's pages."""
    where = storage_settings(run.storage)  # the config's [storage], else the AWS variables
    scheme, endpoint = bucket_endpoint(where.endpoint_url, where.region)
    target = run.target
    base = "/" + target.bucket + (f"/{target.prefix}" if target.prefix else "")
    cache = str(cache_dir or Path("/var/cache/nginx") / f"morgan-like-{target.bucket}")
    if any(c in cache + base for c in '";{}\n$ '):
        raise ValueError(f"cannot put this into an nginx config: {cache!r} / {base!r}")
    endpoint_host = endpoint.rsplit(":", 1)[0]
    lines = [
        f"# morgan_like tree in {target.url} (served from {scheme}://{endpoint})",
        "# generated by morgan_like.modes.nginx_bucket; include in the http {} context",
        "",
        *negotiation_maps(_projects(run.working_tree)),
        "# files never change under one name: a cached copy is never stale",
        f"proxy_cache_path {_q(cache)} levels=1:2 keys_zone={CACHE_ZONE}:10m "
        "max_size=10g inactive=30d use_temp_path=off;",
        "",
        f"upstream {UPSTREAM} {{",
        f"    server {endpoint};",
        "    keepalive 16;",
        "}",
        "",
        "server {",
        f"    listen {_listen(host, port)};",
        "    server_name _;",
        "    server_tokens off;",
        "    charset off;",
        "    gzip off;",
        "    max_ranges 1;",
        "    if ($request_method !~ ^(GET|HEAD)$) { return 405; }",
        "    proxy_http_version 1.1;",
        '    proxy_set_header Connection "";',
        f"    proxy_set_header Host {endpoint_host};",
        '    proxy_set_header Authorization "";',
        '    proxy_set_header Cookie "";',
        "    proxy_ssl_server_name on;" if scheme == "https" else "",
        "    proxy_intercept_errors on;",
        "    proxy_hide_header Set-Cookie;",
        "    proxy_hide_header x-amz-request-id;",
        "    proxy_hide_header x-amz-id-2;",
        "    proxy_hide_header x-amz-meta-mtime;",
        "    proxy_hide_header Accept-Ranges;",
        "    proxy_ignore_headers Set-Cookie;",
        "    # S3 answers 403 for a missing key when nginx may not list the bucket",
        f"    error_page 403 404 =404 @{IDS}_missing;",
        f"    location @{IDS}_missing {{ return 404; }}",
        "",
        *_top_level(scheme, base),
        "    location = /simple { return 301 /simple/$is_args$args; }",
        "",
        "    # hidden paths and the tree's own files are never served",
        r"    location ~ /\. { return 404; }",
        "",
        "    # the index pages",
        *_index_locations("/simple", "/simple", "simple"),
        "    location /simple/ { return 404; }",
        "",
        "    # the env views: envs/NAME/simple/, served like simple/",
        f"    location ~ ^/envs/(?<{IDS}_env>{ENV_NAME})(/|/simple)?$ {{",
        f"        return 301 /envs/${IDS}_env/simple/$is_args$args;",
        "    }",
        *_index_locations(
            f"/envs/(?<{IDS}_env>{ENV_NAME})/simple",
            f"/envs/${IDS}_env/simple",
            f"envs/${IDS}_env/simple",
        ),
        "    location /envs/ { return 404; }",
        *_page_locations(scheme, base),
        "",
        "    # distribution files, their .metadata and .provenance: cached, immutable",
        "    location ^~ /packages/ {",
        r"        location ~ /\. { return 404; }",
        '        set $args "";',
        _proxy(scheme, base, "/packages/"),
        f"        proxy_cache {CACHE_ZONE};",
        "        proxy_cache_key $uri;",
        "        proxy_cache_valid 200 365d;",
        "        proxy_cache_lock on;",
        "        proxy_hide_header Content-Type;",
        "        proxy_hide_header Cache-Control;",
        '        add_header Cache-Control "public, max-age=31536000, immutable" always;',
        "        add_header Content-Type $morgan_like_file_type always;",
        "    }",
        "",
        "    # morgan-style index-url = http://host:port/ : /<project>/",
        f"    location ~ ^/(?<{IDS}_project>{PROJECT})/$ {{",
        f"        if (${IDS}_variant = 406) {{ return 406; }}",
        f"        rewrite ^ /__{IDS}_${IDS}_variant/simple/${IDS}_project/${IDS}_file last;",
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
    file_type = [
        "# a file's type: JSON for a PEP 740 provenance, else bytes (as server.py)",
        f"map $uri ${IDS}_file_type {{",
        f"    ~\\.provenance$ {PROVENANCE_TYPE};",
        "    default application/octet-stream;",
        "}",
        "",
    ]
    at = lines.index(f"upstream {UPSTREAM} {{")
    lines[at:at] = file_type
    return "\n".join(lines)
