"""``verify -i s3://BUCKET/PREFIX``: check what the bucket serves, reading the bucket.

The working tree may hold no files at all (sync evicts them once pushed), so the check
reads the bucket itself, as a client would: the root page, each project's page, and
every file and ``.metadata`` a page links there, each streamed through SHA-256 (constant
memory, whatever the file's size) and compared with the page's hash.  Problems are
printed one a line in server.py ``--verify``'s words (``MISSING``, ``CORRUPT``), then one
summary line; the exit code is 1 when anything was found.  ``scan_bucket`` is the check
itself, for ``verify --repair`` (modes/bucket_repair.py), which mends what it found.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from posixpath import normpath
from typing import IO

from morgan_like.output import Reporter
from morgan_like.tree.storage import Storage, StorageError

WORKERS = 8
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Claim:
    """An object a page links, with the size and SHA-256 the page gives (None: not said);
    for a ``.metadata``, ``of`` is the SHA-256 the page gives its distribution file."""

    key: str
    sha256: str | None
    size: int | None = None
    project: str = ""
    of: str | None = None


@dataclass(frozen=True)
class Problem:
    kind: str  # MISSING or CORRUPT, as server.py --verify
    key: str
    detail: str = ""
    claim: Claim | None = None  # the page's promise for an object (None: a page itself)

    def line(self) -> str:
        return f"{self.kind:<11} {self.key}" + (f" ({self.detail})" if self.detail else "")


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def page_claims(page_key: str, page: dict) -> Iterator[Claim]:
    """Every object of the bucket a project page links (files on another host: none)."""
    folder = page_key.rsplit("/", 1)[0]
    project = folder.rsplit("/", 1)[-1]
    for entry in page.get("files", []):
        url = str(entry.get("url", ""))
        if "://" in url or url.startswith("/"):
            continue  # an index-only page links upstream's files
        key = normpath(f"{folder}/{url.split('#', 1)[0]}")
        if key.startswith("../"):
            continue
        size = entry.get("size") if isinstance(entry.get("size"), int) else None
        sha256 = (entry.get("hashes") or {}).get("sha256")
        yield Claim(key, sha256, size, project)
        meta = entry.get("core-metadata") or entry.get("dist-info-metadata")
        if isinstance(meta, dict):
            yield Claim(f"{key}.metadata", meta.get("sha256"), None, project, sha256)


def check_object(storage: Storage, claim: Claim) -> Problem | None:
    stat = storage.stat(claim.key)
    if stat is None:
        return Problem("MISSING", claim.key, claim=claim)
    if claim.size is not None and stat.size != claim.size:
        detail = f"size {stat.size}, the page says {claim.size}"
        return Problem("CORRUPT", claim.key, detail, claim)
    if claim.sha256 is None:
        return None
    digest = hashlib.sha256()
    with storage.open(claim.key) as body:
        _digest(body, digest)
    if digest.hexdigest() != claim.sha256.lower():
        return Problem("CORRUPT", claim.key, "sha256 mismatch", claim)
    return None


def _digest(body: IO[bytes], digest: hashlib._Hash) -> None:
    while chunk := body.read(_CHUNK):
        digest.update(chunk)


@dataclass
class Tally:
    projects: int = 0
    pages: int = 0
    files: int = 0
    problems: int = 0


def scan_bucket(storage: Storage, report: Callable[[Problem], None]) -> Tally:
    """Check every page's objects in ``storage``, handing each problem to ``report`` as
    it is found (nothing is kept but the counts)."""
    tally = Tally()

    def found(problem: Problem) -> None:
        tally.problems += 1
        report(problem)

    try:
        root = json.loads(storage.get("simple/index.json"))
    except (StorageError, ValueError):
        found(Problem("MISSING", "simple/index.json", "no root page"))
        root = {"projects": []}
    tally.pages += 1
    with ThreadPoolExecutor(WORKERS) as pool:
        for project in root.get("projects", []):
            tally.projects += 1
            page_key = f"simple/{_normalized(str(project.get('name', '')))}/index.json"
            if storage.stat(page_key) is None:
                found(Problem("MISSING", page_key, "listed by the root page"))
                continue
            try:
                page = json.loads(storage.get(page_key))
            except ValueError:
                found(Problem("CORRUPT", page_key, "not JSON"))
                continue
            tally.pages += 1
            claims = list(page_claims(page_key, page))
            tally.files += sum(1 for c in claims if not c.key.endswith(".metadata"))
            for problem in pool.map(lambda c: check_object(storage, c), claims):
                if problem is not None:
                    found(problem)
    return tally


def summary(storage: Storage, tally: Tally) -> str:
    s = "" if tally.problems == 1 else "s"
    return (
        f"verify {storage.describe()}: {tally.projects} projects, {tally.files} files checked, "
        f"{tally.pages} pages checked, {tally.problems} problem{s}"
    )


def verify_bucket(storage: Storage, reporter: Reporter) -> int:
    """Check every page's objects in ``storage``; print problems and a summary."""

    def report(problem: Problem) -> None:
        sys.stdout.write(problem.line() + "\n")

    tally = scan_bucket(storage, report)
    reporter.info(summary(storage, tally))
    return 1 if tally.problems else 0
