"""A complete, unprivileged nginx.conf around a server block of ``nginx-config``.

``morgan-like nginx-config`` prints a snippet for the user's own nginx.conf; the tests
and ``bench/bench_server.py`` run nginx on it as an ordinary user, so the pid, logs,
temp files and proxy cache live under a work directory:
``nginx -p WORKDIR -c WORKDIR/nginx.conf``.
"""

from __future__ import annotations

import os
from pathlib import Path


def nginx_workdir(workdir: Path) -> Path:
    """``workdir`` made absolute, with the folders nginx writes in (``cache/`` is where
    a bucket config's proxy cache goes)."""
    workdir = Path(workdir).resolve()
    for sub in ("tmp", "logs", "cache"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    return workdir


def nginx_main_config(
    workdir: Path, snippet: str, *, workers: int | str = 1, access_log: bool = True
) -> str:
    """nginx.conf running ``snippet`` (the printed server block) from ``workdir``."""
    w = str(nginx_workdir(workdir))
    lines = []
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        lines.append("user root;  # the tree and the work dir may be readable by root only")
    lines += [
        f"worker_processes {workers};",
        "daemon off;",
        f"pid {w}/nginx.pid;",
        f"error_log {w}/logs/error.log warn;",
        "events { worker_connections 4096; }",
        "http {",
        f"    access_log {w + '/logs/access.log' if access_log else 'off'};",
        f"    client_body_temp_path {w}/tmp/body;",
        f"    proxy_temp_path {w}/tmp/proxy;",
        f"    fastcgi_temp_path {w}/tmp/fastcgi;",
        f"    uwsgi_temp_path {w}/tmp/uwsgi;",
        f"    scgi_temp_path {w}/tmp/scgi;",
        "    sendfile on;",
        "    tcp_nopush on;",
        "    tcp_nodelay on;",
        "    keepalive_timeout 30s;",
        "    keepalive_requests 100000;",
        "    default_type application/octet-stream;",
        *("    " + line if line else "" for line in snippet.splitlines()),
        "}",
        "",
    ]
    return "\n".join(lines)
