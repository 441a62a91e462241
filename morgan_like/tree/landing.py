"""The tree's landing page, ``index.html`` at its root: what the tree holds, for a person.

Written by publish after the removals and before the manifest, which vouches for it
as for any top-level file (so ``server.py --verify`` checks it and an export carries
it).  It shows every project with its newest version, release and file counts and
bytes; per env view, the versions that env resolved; when the tree last changed; and
pip.conf / uv.toml snippets (tree/landing_html.py renders it).

What it costs follows what changed, as the rest of publish does.  A summary per project
is kept between runs in ``.morgan-like/landing.json`` (never served, never travels); a
publish updates only the rows of the projects whose paths it changed or removed, or an
earlier killed run left unsent.  The summary is trusted only while it names the sha256
the tree state records for the page on disk: a first run, a lost state or a page
brought by an import rebuilds it, once.  A row comes from what the writer rendered
the project's pages from in this run (tree/pagesummary.py), so a first sync reads no
page back; only a project the writer did not write (a killed run's, an import's) has
its page read.  A publish that
changed nothing reads nothing here.  The env columns come from the views publish is
given (one state row per file a view lists); without views, the last ones are kept.

The page's time moves only when its content does: it is rendered with the time it
already carries first, and with the current time only when those bytes differ.  So a
re-run, or a state rebuilt from the tree, leaves the page as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from array import array
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, overload

from packaging.utils import canonicalize_name

from morgan_like.dists.filenames import parse_filename
from morgan_like.tree.files import atomic_write_bytes, scratch_dir
from morgan_like.tree.landing_html import (
    UPDATED_META,
    EnvColumn,
    LandingData,
    ProjectRow,
    render_landing,
)
from morgan_like.tree.layout import (
    JSON_DIR,
    LANDING_HTML,
    PACKAGES_DIR,
    SIMPLE_DIR,
    STATE_DIR,
    package_relpath,
)
from morgan_like.tree.pagesummary import summarize
from morgan_like.tree.readback import OwnPages
from morgan_like.tree.state import TreeState
from morgan_like.tree.views import EnvView
from morgan_like.tree.writer import TreeWriter

LANDING_CACHE = f"{STATE_DIR}/landing.json"
CACHE_FORMAT = "morgan-like-landing/1"
_PLAIN = re.compile(r"[a-z0-9.+!-]*")  # nothing json.dumps would escape
_UPDATED = re.compile(
    rb'<meta name="' + re.escape(UPDATED_META.encode()) + rb'" content="([0-9T:Z-]{20})">'
)


def write_landing(writer: TreeWriter, views: Sequence[EnvView] | None) -> bool:
    """Write ``index.html`` when what it shows changed; returns whether its bytes did.

    ``views``: the env views the tree has from now on (None: as they were).
    """
    state = writer.state
    touched = touched_projects(writer)
    if not touched and views is None and state.is_verified(LANDING_HTML):
        return False
    cached = _load_cache(writer)
    table = RowTable()
    if cached is None:
        del touched  # every project's row is made: a first sync's names are not kept twice
        for name, _ in state.each_project():
            table.append(_row(writer, name, kept=False))
        envs: list[EnvColumn] = []
    else:
        rows, envs = cached
        for name in sorted(touched):
            if state.project(name)[0]:
                rows[name] = _row(writer, name, kept=True)
            else:
                rows.pop(name, None)
        for name in sorted(rows):
            table.append(rows.pop(name))
    if views is not None:
        envs = [env_column(state, view) for view in views]
    data = LandingData(table, tuple(envs), "")
    page = _render(writer, data)
    changed = writer.write_file(LANDING_HTML, page)
    _save_cache(writer, hashlib.sha256(page).hexdigest(), table, envs)
    return changed


class RowTable(Sequence[ProjectRow]):
    """Project rows, in order, kept as columns: a name and an interned version string per
    row, three integers in arrays.  A whole index's landing page has a row per project
    (900,000 ProjectRow objects, each with its own version string, would take some
    250 MB); a row is made again when it is read."""

    def __init__(self) -> None:
        self._names: list[str] = []
        self._newest: list[str] = []
        self._counts = array("q")  # releases, files, size: three a row
        self._versions: dict[str, str] = {}

    def append(self, row: ProjectRow) -> None:
        self._names.append(row.name)
        self._newest.append(self._versions.setdefault(row.newest, row.newest))
        self._counts.extend((row.releases, row.files, row.size))

    def __len__(self) -> int:
        return len(self._names)

    @overload
    def __getitem__(self, index: int) -> ProjectRow: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[ProjectRow]: ...

    def __getitem__(self, index: int | slice) -> ProjectRow | Sequence[ProjectRow]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        releases, files, size = self._counts[3 * index : 3 * index + 3]
        return ProjectRow(self._names[index], self._newest[index], releases, files, size)

    def __iter__(self) -> Iterator[ProjectRow]:
        counts = self._counts
        for i, (name, newest) in enumerate(zip(self._names, self._newest)):
            yield ProjectRow(name, newest, counts[3 * i], counts[3 * i + 1], counts[3 * i + 2])


def touched_projects(writer: TreeWriter) -> set[str]:
    """The projects with a path this session (or a killed one before it) changed or removed."""
    unsent_changed, unsent_removed = writer.inherited
    names: set[str] = set()
    for paths in (writer.changed, writer.removed, unsent_changed, unsent_removed):
        names |= paths.projects()  # a project's pages, kept by name
        for relpath in paths.others():
            parts = relpath.split("/")
            if (parts[0] in (PACKAGES_DIR, SIMPLE_DIR) and len(parts) > 2) or (
                parts[0] == JSON_DIR and len(parts) == 2
            ):
                names.add(parts[1])
    return names


def _row(writer: TreeWriter, name: str, *, kept: bool) -> ProjectRow:
    """The project's row: the writer's, when it wrote the project's pages in this run;
    else from its page, read through the writer's OwnPages (``kept``: a few touched
    projects) or read once and let go (a rebuild: a full mirror's pages would not fit
    in memory)."""
    row = writer.summaries.get(name)
    if row is not None:
        return row
    pages = writer.own_pages if kept else OwnPages(writer.root, writer.state)
    page = pages.page(name)
    return summarize(name, page.files if page is not None else ())


def env_column(state: TreeState, view: EnvView) -> EnvColumn:
    """An env's totals and versions, from the files of its view the tree holds."""
    versions: dict[str, str] = {}
    files = size = 0
    for project in sorted(view.projects):
        norm = canonicalize_name(project)
        found = set()
        held = 0
        for filename in view.projects[project]:
            try:
                record = state.get(package_relpath(norm, filename))
            except ValueError:  # an unsafe name: the view leaves it out as well
                continue
            if record is None:
                continue
            held += 1
            size += record.size
            version = parse_filename(filename)[1]
            if version is not None:
                found.add(version)
        if held:
            files += held
            versions[norm] = " ".join(str(v) for v in sorted(found, reverse=True)) or "?"
    return EnvColumn(view.env, len(versions), files, size, versions)


def _render(writer: TreeWriter, data: LandingData) -> bytes:
    """The page with the time it carries when nothing else moved; else with now."""
    before = _current_page(writer)
    found = _UPDATED.search(before[:4096]) if before else None
    if found is not None:
        page = render_landing(_with_time(data, found.group(1).decode()))
        if page == before:
            return page
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return render_landing(_with_time(data, now))


def _with_time(data: LandingData, updated: str) -> LandingData:
    return LandingData(data.rows, data.envs, updated)


def _current_page(writer: TreeWriter) -> bytes | None:
    try:
        return (writer.root / LANDING_HTML).read_bytes()
    except OSError:
        return None


# --- the summary kept between runs -------------------------------------------------------


def _load_cache(writer: TreeWriter) -> tuple[dict[str, ProjectRow], list[EnvColumn]] | None:
    """The kept summary, when it describes the page the state vouches for (else None)."""
    record = writer.state.get(LANDING_HTML)
    if record is None or not writer.state.is_verified(LANDING_HTML, record.sha256):
        return None
    try:
        doc = json.loads((writer.root / LANDING_CACHE).read_bytes())
        if doc.get("format") != CACHE_FORMAT or doc.get("page") != record.sha256:
            return None
        rows = {r[0]: ProjectRow(r[0], r[1], r[2], r[3], r[4]) for r in doc["rows"]}
        envs = [EnvColumn(e[0], e[1], e[2], e[3], dict(e[4])) for e in doc["envs"]]
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
        return None
    return rows, envs


def _save_cache(
    writer: TreeWriter, page_sha256: str, rows: Iterable[ProjectRow], envs: Iterable[EnvColumn]
) -> None:
    """The summary, one row after the other into one buffer (the JSON ``json.dumps`` of the
    whole document gives, without a list per row)."""
    head = {"format": CACHE_FORMAT, "page": page_sha256}
    data = bytearray(json.dumps(head, separators=(",", ":"))[:-1].encode())
    data += b',"rows":['
    first = True
    for r in rows:
        if not first:
            data += b","
        first = False
        if _PLAIN.fullmatch(r.name) and _PLAIN.fullmatch(r.newest):
            data += f'["{r.name}","{r.newest}",{r.releases},{r.files},{r.size}]'.encode()
        else:
            row = [r.name, r.newest, r.releases, r.files, r.size]
            data += json.dumps(row, separators=(",", ":")).encode()
    tail: list[Any] = [[e.name, e.projects, e.files, e.size, e.versions] for e in envs]
    data += b'],"envs":' + json.dumps(tail, separators=(",", ":")).encode() + b"}"
    with contextlib.suppress(OSError):  # a summary not kept is rebuilt by the next publish
        atomic_write_bytes(writer.root / LANDING_CACHE, data, tmp_dir=scratch_dir(writer.root))
