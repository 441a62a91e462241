"""``verify --repair`` / ``--remove-unreferenced``: find what is wrong with a tree, then mend it.

The check reads every project page (our JSON page, else the HTML one), checks
every file it links against the page's size and sha256 and each wheel's
``.metadata`` against the page's core-metadata hash, lists ``packages/`` for files
no page links, and compares the tree state's rows with the disk.  Everything
found is reported before anything changes, so a run that goes wrong half-way
has already said what it set out to do.

``--repair`` fetches each missing or corrupt file again from the upstream: the
file of that name *and* the page's sha256, so the page stays true and nothing
upstream changed since is slipped in.  A bad ``.metadata`` is rewritten from its
(now sound) wheel.  ``--remove-unreferenced`` deletes the files no page links;
nothing a page links is ever deleted, and neither is anything in the folder of a
project whose page cannot be read (we cannot tell what it links).  Stale state
rows are corrected either way: the state is ours, not the tree's.

A link that leaves ``packages/`` (``../../../outside.whl``) is reported as a bad
link, as ``server.py --verify`` reports it, and counted as not mended: no fetch
can make the page true.  The closing line speaks of what this check found and
mended, never of the whole tree, which the ``--verify`` run after it judges.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from morgan_like.config.ini import _mirror_options
from morgan_like.config.initext import read_config_text, read_ini
from morgan_like.dists.htmlpage import parse_html_page
from morgan_like.dists.links import ProjectPage, RemoteFile, parse_json_page
from morgan_like.dists.metadata import wheel_metadata_bytes
from morgan_like.errors import MorganLikeError
from morgan_like.fetch.download import fetch_verified
from morgan_like.index.httputil import redact_url
from morgan_like.index.pipconfig import configured_index_url
from morgan_like.index.upstream import Upstream
from morgan_like.output import Reporter
from morgan_like.tree.files import (
    atomic_write_bytes,
    drop_empty_dirs,
    scratch_dir,
    sha256_file,
    sweep_scratch,
)
from morgan_like.tree.generations import record_generation
from morgan_like.tree.layout import (
    METADATA_SUFFIX,
    PACKAGES_DIR,
    PROVENANCE_SUFFIX,
    SIMPLE_DIR,
    is_hidden,
    page_relpaths,
)
from morgan_like.tree.lock import TreeLock
from morgan_like.tree.state import TreeState

MISSING = "missing"
CORRUPT = "corrupt"
METADATA = "bad .metadata"
UNREFERENCED = "unreferenced"
BAD_PAGE = "unreadable page"
BAD_LINK = "bad link"  # a page's link that leaves packages/: nothing a repair can mend
STALE_ROW = "stale state row"
OLD_ROW = "outdated state row"
FETCHABLE = (MISSING, CORRUPT)


@dataclass(frozen=True)
class Finding:
    """One thing wrong: its kind, the tree path, and the page's promise for it."""

    kind: str
    relpath: str
    project: str = ""
    file: RemoteFile | None = None
    detail: str = ""

    def line(self) -> str:
        return f"{self.kind:18} {self.relpath}{': ' + self.detail if self.detail else ''}"


@dataclass
class Check:
    """What find_problems saw: the findings, how many linked files it checked, and the
    sound files whose state row is absent or out of date (recorded again, quietly when
    the row was merely absent)."""

    findings: list[Finding] = field(default_factory=list)
    checked: int = 0
    sound: list[tuple[str, int, str]] = field(default_factory=list)


def read_our_page(root: Path, name: str) -> tuple[ProjectPage | None, list[str]]:
    """Our page of ``name`` (the JSON one, else the HTML one; None when neither can be
    read) and one line per page of the two that is there but unreadable."""
    html_rel, json_rel = page_relpaths(name)
    broken: list[str] = []
    for relpath in (json_rel, html_rel):
        path = root / relpath
        if not path.is_file():
            continue
        try:
            if relpath == json_rel:
                return parse_json_page(name, path.read_bytes(), path.as_uri()), broken
            return parse_html_page(name, path.read_text("utf-8"), path.as_uri()), broken
        except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
            broken.append(f"{relpath}: {exc}")
    return None, broken


def _link_target(root: Path, rf: RemoteFile) -> tuple[str | None, str]:
    """(the tree path a page's link names, '') for a link into packages/; (None, '') for
    an index-only page's link to upstream; (None, why) for any other link, as
    ``server.py --verify`` judges it (BAD-LINK)."""
    parts = urlsplit(rf.url)
    if parts.scheme != "file":
        return None, "" if rf.sha256 else f"{redact_url(rf.url)}: no sha256"
    target = posixpath.normpath(unquote(parts.path))
    base = root.as_posix().rstrip("/") + "/"
    if not target.startswith(base):
        return None, f"{rf.filename}: the link leaves the tree"
    relpath = target[len(base) :]
    if relpath.split("/")[0] != PACKAGES_DIR or relpath.count("/") < 2 or is_hidden(relpath):
        return None, f"{rf.filename}: {relpath} is not a file under {PACKAGES_DIR}/"
    if not rf.sha256:
        return None, f"{rf.filename}: no sha256"
    return relpath, ""


def _project_names(root: Path) -> list[str]:
    with os.scandir(root / SIMPLE_DIR) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def check_file(
    root: Path, relpath: str, size: int | None, sha256: str | None
) -> tuple[str, str, tuple[int, str] | None]:
    """('' | MISSING | CORRUPT, detail, (size, sha256) as found on disk)."""
    path = root / relpath
    try:
        st = path.stat()
    except OSError:
        return MISSING, "", None
    if size is not None and st.st_size != size:
        return CORRUPT, f"{st.st_size} bytes, the page says {size}", None
    try:
        found = sha256_file(path)
    except OSError as exc:
        return CORRUPT, f"unreadable: {exc}", None
    if sha256 and found[1] != sha256.lower():
        return CORRUPT, "sha256 differs from the page", found
    return "", "", found


def _note_sound(check: Check, state: TreeState, relpath: str, found: tuple[int, str]) -> None:
    if state.is_verified(relpath, found[1]):
        return
    row = state.get(relpath)
    if row is not None and (row.size, row.sha256) != found:
        said = f"the state said {row.size} bytes, sha256 {row.sha256[:12]}..."
        check.findings.append(Finding(OLD_ROW, relpath, detail=said))
    check.sound.append((relpath, *found))


def find_problems(root: Path, state: TreeState) -> Check:
    """Every problem of the tree (nothing is changed, not even the state)."""
    check = Check()
    referenced: set[str] = set()
    protected: list[str] = []  # folders of projects whose page cannot be read
    for name in _project_names(root):
        page, broken = read_our_page(root, name)
        for line in broken:
            relpath, _, why = line.partition(": ")
            check.findings.append(Finding(BAD_PAGE, relpath, name, None, why))
        if page is None:
            if broken:  # what it links is unknown: its folder is left alone
                protected.append(f"{PACKAGES_DIR}/{name}/")
            continue
        html_rel, json_rel = page_relpaths(name)
        page_rel = json_rel if (root / json_rel).is_file() else html_rel  # the page read
        for rf in page.files:
            target, bad = _link_target(root, rf)
            if bad:
                check.findings.append(Finding(BAD_LINK, page_rel, name, rf, bad))
                continue
            if target is None:
                continue  # an index-only page links upstream's file: nothing of ours
            relpath = target
            referenced.add(relpath)
            check.checked += 1
            kind, detail, found = check_file(root, relpath, rf.size, rf.sha256)
            if kind:
                check.findings.append(Finding(kind, relpath, name, rf, detail))
            elif found is not None:
                _note_sound(check, state, relpath, found)
            if rf.metadata_sha256:
                meta_rel = relpath + METADATA_SUFFIX
                referenced.add(meta_rel)
                check.checked += 1
                kind, detail, found = check_file(root, meta_rel, None, rf.metadata_sha256)
                if kind:
                    check.findings.append(Finding(METADATA, meta_rel, name, rf, detail or kind))
                elif found is not None:
                    _note_sound(check, state, meta_rel, found)
            if rf.provenance:  # checked by server.py --verify --provenance, never deleted
                referenced.add(relpath + PROVENANCE_SUFFIX)
    for folder, dirs, files in os.walk(root / PACKAGES_DIR):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for filename in sorted(files):
            relpath = Path(folder, filename).relative_to(root).as_posix()
            if is_hidden(relpath) or relpath in referenced:
                continue
            if not any(relpath.startswith(prefix) for prefix in protected):
                check.findings.append(Finding(UNREFERENCED, relpath))
    for relpath in state.relpaths_under(PACKAGES_DIR):
        if relpath not in referenced and not (root / relpath).exists():
            check.findings.append(Finding(STALE_ROW, relpath, detail="the file is gone"))
    return check


def upstream_settings(
    root: Path, state: TreeState, index_url: str | None
) -> tuple[str, dict[str, str]]:
    """Where to fetch from, and the [mirror] options: -I, else the upstream the last sync
    used (kept without credentials: an index that wants them takes -I again, or
    ~/.netrc), else morgan.ini's [mirror] index-url, else pip's configured index."""
    config_url: str | None = None
    options: dict[str, str] = {}
    config = root / "morgan.ini"
    if config.is_file():
        try:
            parser = read_ini(read_config_text(config, ""), str(config))
            config_url, options = _mirror_options(parser, str(config))
        except MorganLikeError:
            pass  # a config the mirror run would refuse: it names no upstream for us
    url = index_url or state.sync_value("upstream") or config_url or configured_index_url()
    return url, options


class _Repairer:
    """Fetches files again from one upstream, each project's page once."""

    def __init__(self, upstream: Upstream, root: Path, state: TreeState) -> None:
        self.upstream, self.root, self.state = upstream, root, state
        self._pages: dict[str, ProjectPage | str] = {}

    def _page(self, project: str) -> ProjectPage | str:
        if project not in self._pages:
            try:
                self._pages[project] = self.upstream.project_page(project)
            except MorganLikeError as exc:
                self._pages[project] = str(exc)
        return self._pages[project]

    def fetch(self, finding: Finding) -> str | None:
        """Fetch the page's file again; None when done, else why not."""
        assert finding.file is not None
        page = self._page(finding.project)
        if isinstance(page, str):
            return page
        wanted = (finding.file.sha256 or "").lower()
        match = next(
            (
                f
                for f in page.files
                if f.filename == finding.file.filename and (f.sha256 or "").lower() == wanted
            ),
            None,
        )
        if match is None:
            return (
                f"upstream no longer has {finding.file.filename} with sha256 {wanted[:12]}... "
                "(a sync would bring the project's page up to date)"
            )
        try:
            size, sha256 = fetch_verified(
                self.upstream, match, self.root / finding.relpath, scratch_dir(self.root)
            )
        except MorganLikeError as exc:
            return str(exc)
        self.state.record(finding.relpath, size, sha256)
        return None


def rewrite_metadata(root: Path, state: TreeState, finding: Finding) -> str | None:
    """Write ``<wheel>.metadata`` again from its wheel; None when done, else why not."""
    rf = finding.file
    assert rf is not None and rf.metadata_sha256
    wheel_rel = finding.relpath[: -len(METADATA_SUFFIX)]
    if not state.is_verified(wheel_rel, rf.sha256):
        kind, _detail, found = check_file(root, wheel_rel, rf.size, rf.sha256)
        if kind or found is None:
            return f"its wheel is {kind or 'unverified'}"
    try:
        data = wheel_metadata_bytes(root / wheel_rel)
    except (MorganLikeError, OSError) as exc:
        return str(exc)
    sha256 = hashlib.sha256(data).hexdigest()
    if sha256 != rf.metadata_sha256.lower():
        return "the wheel's METADATA does not match the page's core-metadata hash"
    atomic_write_bytes(root / finding.relpath, data, tmp_dir=scratch_dir(root))
    state.record(finding.relpath, len(data), sha256)
    return None


def run_treecheck(
    root: Path,
    reporter: Reporter,
    *,
    repair: bool,
    remove_unreferenced: bool,
    index_url: str | None = None,
    wait_lock: float | None = None,
) -> int:
    """Report, then mend as asked; 0 when the tree is sound at the end, 1 otherwise."""
    root = root.absolute()  # pages are read through file:// URLs of their paths
    if not (root / SIMPLE_DIR).is_dir():
        raise MorganLikeError(f"{root} is not a tree (no {SIMPLE_DIR}/ folder)")
    with TreeLock(root, "verify", wait=wait_lock, on_wait=reporter.info), TreeState(root) as state:
        sweep_scratch(root)
        check = find_problems(root, state)
        for finding in check.findings:
            reporter.info(finding.line())
        problems = [f for f in check.findings if f.kind not in (STALE_ROW, OLD_ROW)]
        rows = len(check.findings) - len(problems)
        reporter.info(
            f"checked {check.checked} linked files (.metadata included): {len(problems)} "
            f"problem{'' if len(problems) == 1 else 's'}"
            + (f"; {rows} state rows corrected" if rows else "")
        )
        # The state first: rows that no longer say what is on disk.
        for relpath, size, sha256 in check.sound:
            state.record(relpath, size, sha256, new=False)
        for f in check.findings:
            if f.kind in (STALE_ROW, MISSING, CORRUPT, METADATA):
                state.discard(f.relpath)  # recorded again once the file is back
        state.commit()
        left = _mend(root, state, reporter, problems, repair, remove_unreferenced, index_url)
        state.commit()
        sweep_scratch(root)
    return 1 if left else 0


def _mend(
    root: Path,
    state: TreeState,
    reporter: Reporter,
    problems: list[Finding],
    repair: bool,
    remove_unreferenced: bool,
    index_url: str | None,
) -> int:
    """Carry out the repairs and removals asked for; returns how many problems are left."""
    left = 0
    fetchable = [f for f in problems if f.kind in FETCHABLE and f.file is not None]
    if repair and fetchable:
        url, options = upstream_settings(root, state, index_url)
        reporter.info(f"fetching {len(fetchable)} files again from {redact_url(url)}")
        with Upstream(url, options=options) as upstream:
            repairer = _Repairer(upstream, root, state)
            for f in fetchable:
                why = repairer.fetch(f)
                if why is None:
                    reporter.info(f"repaired {f.relpath}")
                else:
                    reporter.error(f"{f.relpath}: not repaired: {why}")
                    left += 1
    elif fetchable:
        left += len(fetchable)
    emptied: set[Path] = set()
    gone: list[str] = []
    for f in problems:
        if f.kind == METADATA and repair:
            why = rewrite_metadata(root, state, f)
            if why is None:
                reporter.info(f"rewrote {f.relpath}")
            else:
                reporter.error(f"{f.relpath}: not repaired: {why}")
                left += 1
        elif f.kind == UNREFERENCED and remove_unreferenced:
            (root / f.relpath).unlink(missing_ok=True)
            state.discard(f.relpath)
            gone.append(f.relpath)
            emptied.add((root / f.relpath).parent)
            reporter.info(f"removed {f.relpath}")
        elif f.kind not in FETCHABLE:
            left += 1  # asked for nothing that mends it, or nothing can (a bad page)
    if gone:
        # The sites this tree feeds delete them too, with the next export.  A repaired
        # file has the bytes its page lists: nothing for a site to receive.
        record_generation(state, (), gone)
    packages = root / PACKAGES_DIR
    for folder in sorted(emptied, reverse=True):
        if folder != packages:
            drop_empty_dirs(packages / folder.relative_to(packages).parts[0], including_base=True)
    # Said of what this check found, no more: server.py --verify, which follows, judges
    # the whole tree (views, the two pages of a project agreeing, the manifest).
    if problems and not left:
        reporter.info(f"mended all {len(problems)} problems found")
    elif left:
        reporter.info(f"{left} of {len(problems)} problems found are not mended")
    return left
