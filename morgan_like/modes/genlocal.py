"""``genlocal``: rebuild a tree's sync state from what is on disk, so ``sync`` can take over.

Two sources:

* **Our own tree** (``-i TREE``): the state is rebuilt from scratch and the pages
  are left as they are.  Every project of ``simple/`` gets its page's serial
  (``_last-serial``, else the HTML ``<!--SERIAL n-->`` trailer), every file a page
  links is hashed and recorded (with its ``.metadata``), then root pages,
  ``local.json``, ``local.db.serial`` and the manifest go through the one publish.
* **A tree bandersnatch or shadowmire wrote** (``--from DIR``): bandersnatch keeps
  ``DIR/status`` and ``DIR/web/{simple,packages,json,pypi}`` (``simple/<p>/`` or,
  with ``hash-index``, ``simple/<p[0]>/<p>/``; ``index.html`` / ``index.v1_html``
  / ``index.v1_json``); shadowmire keeps ``DIR/{simple,packages,json}``,
  ``local.json`` and ``local.db.serial``.  Both store files in PyPI's hashed
  layout (``packages/ab/cd/<hash>/<file>``) and link them from their pages
  (``../../packages/...``, or bandersnatch's ``root_uri`` + ``/packages/...``).
  Each page is read (PEP 691 JSON first: it has sizes and upload times), each
  linked file checked against the page's sha256 and adopted as
  ``TREE/packages/<project>/<file>`` by hard link (a copy across filesystems), and
  our pages are written through the shared TreeWriter.  The source is only read.

A file that does not match its page is reported, not recorded (nor listed on a
page we write); its project goes into the state's ``sync_todo``, so the next
sync fetches its page and that file again whatever its serial says.

The tree's own serial (``local.db.serial``: every change upstream up to it is in
the tree) cannot be learnt from the pages: a page's serial says when *that*
project last changed, not when it was last fetched, and says nothing of projects
the tree lacks.  So neither the maximum (other projects may have changed since
they were fetched) nor the minimum of the project serials (a project created
before it may be missing) is safe.  The only safe value is one the tool that
wrote the tree recorded when one of its runs completed: our ``local.db.serial``,
bandersnatch's ``status``, shadowmire's ``local.db.serial``.  Pages only move
forward after it, so it stays a lower bound.  With none, no serial is claimed
(``local.db.serial`` is not written); with problems in an adopted tree neither,
since its pages then lack files upstream had.  ``sync`` compares project by
project anyway, so a missing claim costs nothing but the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name

from morgan_like.dists.htmlpage import parse_html_page
from morgan_like.dists.links import ProjectPage, RemoteFile, parse_json_page
from morgan_like.dists.serials import serial_value
from morgan_like.errors import MorganLikeError
from morgan_like.modes import serve
from morgan_like.modes.treecheck import check_file, read_our_page
from morgan_like.output import Reporter
from morgan_like.tree.files import scratch_dir, sha256_file, sweep_scratch
from morgan_like.tree.layout import (
    LOCAL_JSON,
    LOCAL_SERIAL,
    MANIFEST_NAME,
    METADATA_SUFFIX,
    SIMPLE_DIR,
    STATE_DIR,
    is_top_level,
    package_relpath,
)
from morgan_like.tree.lock import TreeLock
from morgan_like.tree.publish import CONFIG_NAME, SERVER_NAME, publish
from morgan_like.tree.state import STATE_NAME, TreeState
from morgan_like.tree.writer import TreeWriter

# A project folder's pages, best first: JSON has sizes and upload times, HTML may not.
FOREIGN_PAGES = ("index.v1_json", "index.json", "index.html", "index.v1_html")
SHOWN_PROBLEMS = 50


@dataclass
class Tally:
    projects: int = 0
    files: int = 0
    kept: int = 0
    linked: int = 0
    copied: int = 0
    problems: list[str] = field(default_factory=list)
    todo: dict[str, int] = field(default_factory=dict)  # projects the next sync must redo


def run_genlocal(
    root: Path, reporter: Reporter, *, source: Path | None = None, wait_lock: float | None = None
) -> int:
    """Rebuild the state of ``root`` (from ``source`` when given); 1 if anything was amiss."""
    root = root.absolute()
    source = source.absolute() if source is not None else None
    if source is not None and source.exists() and root.exists() and os.path.samefile(source, root):
        source = None
    if source is None:
        if not (root / SIMPLE_DIR).is_dir():
            hint = "; a bandersnatch tree is taken over with --from" if _web(root) != root else ""
            raise MorganLikeError(f"{root}: no {SIMPLE_DIR}/ folder: not a tree{hint}")
    elif not (_web(source) / SIMPLE_DIR).is_dir():
        raise MorganLikeError(f"{source}: no simple/ (or web/simple/) folder: not a mirror tree")
    root.mkdir(parents=True, exist_ok=True)
    tally = Tally()
    with TreeLock(root, "genlocal", wait=wait_lock, on_wait=reporter.info):
        sweep_scratch(root)
        for suffix in ("", "-wal", "-shm"):  # rebuilt from scratch, from the pages
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{root / STATE_DIR / STATE_NAME}{suffix}")
        with TreeState(root) as state:
            writer = TreeWriter(root, state, on_problem=tally.problems.append, warehouse=True)
            with reporter.counting("projects") as counter:
                if source is None:
                    synced = _rebuild_ours(root, state, tally, counter.advance)
                else:
                    synced = _adopt_tree(source, writer, tally, counter.advance)
            state.set_sync_todo(tally.todo)
            if synced is not None:
                state.set_sync_value("serial", str(synced))
            copy_server = source is not None or not (root / SERVER_NAME).is_file()
            publish(
                writer,
                server=serve.server_source().read_bytes() if copy_server else None,
                serial_list=True,
                synced_serial=synced,
            )
        sweep_scratch(root)
    for line in tally.problems[:SHOWN_PROBLEMS]:
        reporter.warn(line)
    if len(tally.problems) > SHOWN_PROBLEMS:
        reporter.warn(f"... and {len(tally.problems) - SHOWN_PROBLEMS} more problems")
    how = (
        f"{tally.files} files hashed and recorded"
        if source is None
        else f"{tally.files} files ({tally.kept} in place, {tally.linked} hard-linked, "
        f"{tally.copied} copied)"
    )
    reporter.info(
        f"genlocal {root}: {tally.projects} projects, {how}, "
        f"serial {synced if synced is not None else 'not claimed'}, {len(tally.problems)} problems"
        + (f"; {len(tally.todo)} projects left for the next sync" if tally.todo else "")
    )
    return 1 if tally.problems else 0


# --- our own tree --------------------------------------------------------------------


def _rebuild_ours(
    root: Path, state: TreeState, tally: Tally, advance: Callable[[], None]
) -> int | None:
    """Projects, serials and verified files from our pages; the pages stay as they are."""
    with os.scandir(root / SIMPLE_DIR) as entries:
        names = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    for name in names:
        page, broken = read_our_page(root, name)
        tally.problems.extend(broken)
        tally.problems.extend(page.problems if page else [])
        # TreeState seeded each project from its HTML trailer when it found no state.
        trailer = state.project(name)[1]
        if page is None:
            if broken:
                state.set_project(name, None)
                tally.todo[name] = 0
            continue
        serial = page.last_serial if page.last_serial is not None else trailer
        if not _record_ours(root, state, name, page, tally):
            tally.todo[name] = serial or 0
        state.set_project(name, serial)
        tally.projects += 1
        advance()
    _record_top_level(root, state)
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return serial_value((root / LOCAL_SERIAL).read_text("ascii").strip())
    return None


def _record_ours(root: Path, state: TreeState, name: str, page: ProjectPage, tally: Tally) -> bool:
    """Hash and record what the page links; False when something does not match it."""
    sound = True
    for rf in page.files:
        parts = urlsplit(rf.url)
        if parts.scheme != "file":
            continue  # an index-only tree links upstream's files
        relpath = package_relpath(name, rf.filename)
        if Path(unquote(parts.path)) != root / relpath:
            tally.problems.append(
                f"{name}: {rf.filename}: linked at {unquote(parts.path)}, not {relpath} "
                "(a bandersnatch or shadowmire tree is taken over with --from)"
            )
            sound = False
            continue
        checks = [(relpath, rf.size, rf.sha256)]
        if rf.metadata_sha256:
            checks.append((relpath + METADATA_SUFFIX, None, rf.metadata_sha256))
        for rel, size, sha256 in checks:
            kind, detail, found = check_file(root, rel, size, sha256)
            if kind or found is None:
                tally.problems.append(f"{rel}: {kind}{': ' + detail if detail else ''}")
                sound = False
                continue
            state.record(rel, *found, new=False)
            tally.files += 1
    return sound


def _record_top_level(root: Path, state: TreeState) -> None:
    """The top-level files manifest.json vouches for (and server.py, morgan.ini), as they
    are now, so the manifest publish writes again still lists them."""
    names = {SERVER_NAME, CONFIG_NAME}
    with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
        names.update(json.loads((root / MANIFEST_NAME).read_bytes())["files"])
    for relpath in sorted(n for n in names if isinstance(n, str) and is_top_level(n)):
        with contextlib.suppress(OSError, ValueError):
            if (root / relpath).is_file():
                state.record_file(relpath)


# --- a bandersnatch / shadowmire tree --------------------------------------------------


def _web(source: Path) -> Path:
    """Where the served tree starts: bandersnatch keeps it under ``web/``."""
    return source / "web" if (source / "web" / SIMPLE_DIR).is_dir() else source


def _has_page(folder: Path) -> bool:
    return any((folder / page).is_file() for page in FOREIGN_PAGES)


def _foreign_projects(simple: Path) -> dict[str, Path]:
    """Normalized name -> its page folder: ``simple/<p>/``, or bandersnatch's hash-index
    ``simple/<p[0]>/<p>/``; a normalized folder wins over a legacy raw-name one."""
    found: dict[str, Path] = {}
    with os.scandir(simple) as entries:
        folders = sorted(Path(e.path) for e in entries if e.is_dir() and e.name[0] != ".")
    for folder in folders:
        if _has_page(folder):
            candidates = [folder]
        elif len(folder.name) == 1:  # a hash-index bucket
            with os.scandir(folder) as inner:
                candidates = sorted(Path(e.path) for e in inner if e.is_dir())
        else:
            continue
        for candidate in candidates:
            name = canonicalize_name(candidate.name)
            if _has_page(candidate) and (name not in found or candidate.name == name):
                found[name] = candidate
    return found


def _read_foreign_page(name: str, folder: Path, simple: Path) -> ProjectPage | str:
    """The project's page, or why none could be read.  Links resolve as served, from
    ``simple/<name>/`` (a hash-index folder is served there too)."""
    served = (simple / name / "index.html").as_uri()
    why = "no project page"
    for page_name in FOREIGN_PAGES:
        path = folder / page_name
        if not path.is_file():
            continue
        try:
            if "json" in page_name:
                return parse_json_page(name, path.read_bytes(), served)
            return parse_html_page(name, path.read_text("utf-8"), served)
        except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
            why = f"{page_name}: {exc}"
    return why


def _source_serials(source: Path, web: Path) -> tuple[dict[str, int], int | None]:
    """The source's local.json (shadowmire) and the serial its last complete run reached."""
    listed: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError, AttributeError):
        doc = json.loads((web / LOCAL_JSON).read_bytes())
        for name, raw in doc.items():
            value = serial_value(raw)
            if isinstance(name, str) and value is not None:
                listed[canonicalize_name(name)] = value
    for path in (source / "status", web / LOCAL_SERIAL, source / LOCAL_SERIAL):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            synced = serial_value(path.read_text("ascii").strip())
            if synced is not None:
                return listed, synced
    return listed, None


def _json_serial(web: Path, name: str) -> int | None:
    """``last_serial`` of the source's Warehouse JSON (bandersnatch, shadowmire)."""
    for path in (web / "json" / name, web / "pypi" / name / "json"):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            value = serial_value(json.loads(path.read_bytes()).get("last_serial"))
            if value is not None:
                return value
    return None


def _adopt_tree(
    source: Path, writer: TreeWriter, tally: Tally, advance: Callable[[], None]
) -> int | None:
    web = _web(source)
    simple = web / SIMPLE_DIR
    listed, synced = _source_serials(source, web)
    for name, folder in sorted(_foreign_projects(simple).items()):
        page = _read_foreign_page(name, folder, simple)
        if isinstance(page, str):
            tally.problems.append(f"{folder}: {page}")
            continue
        tally.problems.extend(page.problems)
        files, sound = _adopt_files(writer, web, name, page.files, tally)
        serial = page.last_serial
        for fallback in (_json_serial(web, name), listed.get(name)):
            serial = fallback if serial is None else serial
        writer.write_project(name, files, serial, meta=page.meta, keep_empty=True)
        if not sound:
            tally.todo[name] = serial or 0
        tally.projects += 1
        advance()
    return None if tally.problems else synced


def _local_path(web: Path, rf: RemoteFile) -> Path | None:
    """The source's file a link names: a file: URL, or an absolute URL whose path is
    ``/packages/...`` (bandersnatch's root_uri); None when it is not under ``web``."""
    parts = urlsplit(rf.url)
    if parts.scheme == "file":
        path = Path(os.path.normpath(unquote(parts.path)))
    elif parts.path.startswith("/packages/"):
        path = Path(os.path.normpath(web / unquote(parts.path).lstrip("/")))
    else:
        return None
    return path if path.is_relative_to(web) else None


def _adopt_files(
    writer: TreeWriter, web: Path, name: str, files: list[RemoteFile], tally: Tally
) -> tuple[list[RemoteFile], bool]:
    """The page's files now in our tree (checked, adopted, recorded), and whether all were."""
    root, state = writer.root, writer.state
    kept, sound = [], True
    for rf in files:
        local = _local_path(web, rf)
        if local is None or not local.is_file():
            what = "not a file of the source tree" if local is None else "missing"
            tally.problems.append(f"{name}: {rf.filename}: {what} ({rf.url})")
            sound = False
            continue
        size, sha256 = sha256_file(local)
        if rf.sha256 and rf.sha256.lower() != sha256:
            tally.problems.append(f"{name}: {rf.filename}: sha256 differs from its page; left out")
            sound = False
            continue
        relpath = package_relpath(name, rf.filename)
        how = _adopt(local, root / relpath, sha256, scratch_dir(root))
        setattr(tally, how, getattr(tally, how) + 1)
        tally.files += 1
        state.record(relpath, size, sha256, new=how != "kept")
        kept.append(rf)
    return kept, sound


def _adopt(local: Path, dest: Path, sha256: str, tmp_dir: Path) -> str:
    """Put the source's file at ``dest``: 'kept' (already there), 'linked' or 'copied'.

    Through a temp name in the tree's scratch folder (same filesystem, swept by the
    next run), so a kill never leaves a partial file under its real name.
    """
    with contextlib.suppress(OSError):
        if os.path.samefile(local, dest) or sha256_file(dest)[1] == sha256:
            return "kept"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir / f"genlocal-{os.getpid()}-{dest.name}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(local, tmp)
        how = "linked"
    except OSError:
        shutil.copyfile(local, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        how = "copied"
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)
    return how
