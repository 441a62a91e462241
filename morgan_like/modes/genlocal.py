"""``genlocal``: rebuild a tree's sync state from what is on disk, so ``sync`` can take over.

The source is our own tree (``-i``), or with ``--from`` a tree bandersnatch
(``web/simple``, ``web/packages/xx/yy/<hash>/``, ``web/json/<name>``, ``status``)
or shadowmire (``simple/``, PyPI's hashed ``packages/``, ``local.json``,
``local.db.serial``) wrote.  Each project page is read (PEP 691 JSON when there is
one, else PEP 503 HTML), each linked file is checked against the page's sha256 and
adopted into our layout (``packages/<project>/<file>``, by hard link, a copy
across filesystems; the source is never changed), then our pages, ``local.json``
and ``local.db.serial`` are written through the shared writer and publish.

Serials: a project's serial is its page's (``_last-serial``, ``<!--SERIAL n-->``),
else its Warehouse JSON's ``last_serial``, else the source's ``local.json``.  The
tree's own serial (everything synced up to it) is taken from the source's
``status`` / ``local.db.serial`` when it has one; otherwise none is claimed, and
the next sync compares project by project anyway.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name

from morgan_like.dists.links import ProjectPage, RemoteFile, parse_html_page, parse_json_page
from morgan_like.dists.serials import serial_value
from morgan_like.errors import MorganLikeError
from morgan_like.modes import serve
from morgan_like.output import Reporter
from morgan_like.tree.files import sha256_file, sweep_scratch
from morgan_like.tree.layout import LOCAL_JSON, LOCAL_SERIAL, STATE_DIR, package_relpath
from morgan_like.tree.lock import TreeLock
from morgan_like.tree.publish import publish
from morgan_like.tree.state import STATE_NAME, TreeState
from morgan_like.tree.writer import TreeWriter

PAGE_NAMES = ("index.json", "index.v1_json", "index.html", "index.v1_html")


def _web(source: Path) -> Path:
    """Where the served tree starts: bandersnatch keeps it under ``web/``."""
    return source / "web" if (source / "web" / "simple").is_dir() else source


def _read_page(name: str, folder: Path) -> ProjectPage | None:
    for page_name in PAGE_NAMES:
        path = folder / page_name
        if not path.is_file():
            continue
        with contextlib.suppress(OSError, ValueError, UnicodeDecodeError):
            if "json" in page_name:
                return parse_json_page(name, path.read_bytes(), path.as_uri())
            return parse_html_page(name, path.read_text("utf-8"), path.as_uri())
    return None


def _json_serial(web: Path, name: str) -> int | None:
    for path in (web / "json" / name, web / "pypi" / name / "json"):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            return serial_value(json.loads(path.read_bytes()).get("last_serial"))
    return None


def _source_serials(source: Path, web: Path) -> tuple[dict[str, int], int | None]:
    listed: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError, AttributeError):
        doc = json.loads((web / LOCAL_JSON).read_bytes())
        for name, raw in doc.items():
            value = serial_value(raw)
            if isinstance(name, str) and value is not None:
                listed[canonicalize_name(name)] = value
    synced = None
    for path in (source / "status", web / LOCAL_SERIAL, source / LOCAL_SERIAL):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            synced = serial_value(path.read_text("ascii").strip())
            if synced is not None:
                break
    return listed, synced


def _adopt(local: Path, dest: Path) -> str:
    """Put the source's file at ``dest``: 'kept' (already there), 'linked' or 'copied'."""
    if dest.exists() and os.path.samefile(local, dest):
        return "kept"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.genlocal.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(local, tmp)
        how = "linked"
    except OSError:
        shutil.copy2(local, tmp)
        how = "copied"
    os.replace(tmp, dest)
    return how


def run_genlocal(
    root: Path, reporter: Reporter, *, source: Path | None = None, wait_lock: float | None = None
) -> int:
    source = (source or root).absolute()
    web = _web(source)
    if not (web / "simple").is_dir():
        raise MorganLikeError(f"{source}: no simple/ (or web/simple/) folder: not a mirror tree")
    root.mkdir(parents=True, exist_ok=True)
    counts = {"projects": 0, "files": 0, "kept": 0, "linked": 0, "copied": 0}
    problems: list[str] = []
    with TreeLock(root, "genlocal", wait=wait_lock, on_wait=reporter.info):
        sweep_scratch(root)
        for suffix in ("", "-wal", "-shm"):  # rebuilt from scratch, from the pages
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{root / STATE_DIR / STATE_NAME}{suffix}")
        listed, synced = _source_serials(source, web)
        with TreeState(root) as state:
            writer = TreeWriter(root, state, on_problem=problems.append, warehouse=True)
            for folder in sorted(p for p in (web / "simple").iterdir() if p.is_dir()):
                name = canonicalize_name(folder.name)
                if name != folder.name:
                    continue  # bandersnatch's non-normalized duplicates
                page = _read_page(name, folder)
                if page is None:
                    problems.append(f"{folder}: no readable project page")
                    continue
                files = _adopt_files(root, state, name, page.files, counts, problems)
                serial = page.last_serial or _json_serial(web, name) or listed.get(name)
                writer.write_project(name, files, serial, meta=page.meta, keep_empty=True)
                counts["projects"] += 1
            publish(
                writer,
                server=serve.server_source().read_bytes(),
                serial_list=True,
                synced_serial=synced,
            )
        sweep_scratch(root)
    for line in problems[:50]:
        reporter.warn(line)
    reporter.info(
        f"genlocal {root}: {counts['projects']} projects, {counts['files']} files "
        f"({counts['kept']} in place, {counts['linked']} linked, {counts['copied']} copied), "
        f"{len(problems)} problems"
    )
    return 1 if problems else 0


def _adopt_files(
    root: Path,
    state: TreeState,
    name: str,
    files: list[RemoteFile],
    counts: dict[str, int],
    problems: list[str],
) -> list[RemoteFile]:
    """The page's files that are in the tree now (adopted and recorded), in page order."""
    kept = []
    for rf in files:
        parts = urlsplit(rf.url)
        if parts.scheme != "file":
            problems.append(f"{name}: {rf.filename}: links {rf.url}, not a file of the tree")
            continue
        local = Path(unquote(parts.path))
        if not local.is_file():
            problems.append(f"{name}: {rf.filename}: missing ({local})")
            continue
        size, sha256 = sha256_file(local)
        if rf.sha256 and rf.sha256.lower() != sha256:
            problems.append(f"{name}: {rf.filename}: sha256 differs from its page; left out")
            continue
        relpath = package_relpath(name, rf.filename)
        how = _adopt(local, root / relpath)
        counts[how] += 1
        counts["files"] += 1
        state.record(relpath, size, sha256, new=how != "kept")
        kept.append(rf)
    return kept
