"""``morgan-like export``: carry what a site lacks across the gap (see tree.export).

The export holds the tree's lock from planning to the site's record: a mirror or sync
started meanwhile waits or is refused, so the files sent are the generation named in
the manifest.  The site's generation is recorded only once the manifest, written last,
is in place; an export that fails or is interrupted leaves the site where it was and
takes back what it wrote into OUT.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from morgan_like.output import Reporter, human_size
from morgan_like.tree import generations
from morgan_like.tree.export import FORMAT as EXPORT_FORMAT
from morgan_like.tree.export import (
    HMAC_NAME,
    MANIFEST,
    README_NAME,
    ExportError,
    Plan,
    delta_plan,
    full_plan,
    manifest_bytes,
    read_key,
    read_receipt,
    readme_text,
    signature,
    split_volumes,
    volume_name,
    write_volume,
)
from morgan_like.tree.layout import SIMPLE_DIR
from morgan_like.tree.lock import TreeLock
from morgan_like.tree.state import TreeState

DEFAULT_VOLUME_SIZE = 4 << 30
SITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_LOCK_HINT = "try again when it ends (an export reads a tree no run is writing)"


@dataclass(frozen=True)
class ExportOptions:
    index_path: Path
    output: Path | None = None
    site: str | None = None
    volume_size: int = DEFAULT_VOLUME_SIZE
    full: bool = False
    since: int | None = None
    list_sites: bool = False
    receipt: Path | None = None
    hmac_key_file: Path | None = None


def run_export(options: ExportOptions, reporter: Reporter) -> int:
    root = options.index_path
    if not (root / SIMPLE_DIR).is_dir():
        raise ExportError(f"-i {root} is no tree (it has no simple/): nothing to export")
    if options.list_sites:
        return _list_sites(root, reporter)
    site = options.site
    if site is None or not SITE_NAME.fullmatch(site):
        raise ExportError(
            "export needs --site NAME (letters, digits, '.', '_', '-'): the restricted site "
            "the export is for, whose last generation the tree keeps"
            + (f"; {site!r} is no such name" if site is not None else "")
        )
    key = read_key(options.hmac_key_file) if options.hmac_key_file else None
    with TreeLock(root, "export", hint=_LOCK_HINT), TreeState(root) as state:
        if options.receipt is not None:
            _take_receipt(state, site, options.receipt, reporter)
            if options.output is None:
                return 0
        if options.output is None:
            raise ExportError("export needs -o DIR: an empty folder (or disk) to write it to")
        plan = _plan(root, state, site, options, reporter)
        if plan is None:
            return 0
        doc = _document(state, site, plan)
        out = options.output
        if _already_there(out, doc):
            reporter.info(
                f"{out} already holds this export (generation {plan.generation}) for {site}"
            )
            return 0
        _check_empty(out)
        manifest_sha = _write(root, out, plan, doc, options.volume_size, key, reporter)
        generations.set_site(state, site, plan.generation)
        state.commit()
    base = "everything" if plan.full else f"generation {plan.base}"
    reporter.info(
        f"exported {len(plan.files)} files ({human_size(plan.size)}) in {len(doc['volumes'])} "
        f"volume(s) and {len(plan.removed)} removal(s) to {out} for {site}: {base} -> "
        f"generation {plan.generation}"
    )
    reporter.info(f"manifest sha256: {manifest_sha}")
    reporter.info(f"on the far side: python3 TREE/server.py --import {out.name or out} -i TREE")
    return 0


def _plan(
    root: Path, state: TreeState, site: str, options: ExportOptions, reporter: Reporter
) -> Plan | None:
    """What to send, or None (the site has it all, said)."""
    current = generations.current(state)
    if options.full:
        if current == 0:  # a tree from before generations: this export starts them
            generations.record_generation(state, (), ())
            state.commit()
        return full_plan(root, state)
    known = generations.site_generation(state, site)
    base = options.since if options.since is not None else known
    if base is None:
        raise ExportError(
            f"site {site} has been sent nothing from {root} yet: pass --full for a first "
            "export, or --receipt FILE (from python3 server.py --receipt on the far side) "
            "or --since GEN if the site already has this tree at a known generation"
        )
    if base > current or base < max(generations.oldest(state), 1):
        why = (
            f"the tree is at generation {current}"
            if base > current
            else f"the oldest generation the tree knows is {generations.oldest(state)}"
        )
        raise ExportError(
            f"--since {base} cannot be the base of an export of {root}: {why}; give the "
            "generation the site's tree is at (python3 server.py --receipt there prints "
            "it), or --full"
        )
    if base == current:
        reporter.info(f"site {site} is at generation {current} already: nothing to export")
        return None
    return delta_plan(root, state, base)


def _document(state: TreeState, site: str, plan: Plan) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "tree": generations.tree_id(state),
        "site": site,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "base": plan.base,
        "generation": plan.generation,
        "full": plan.full,
        "volumes": [],
        "files": [],
        "removed": list(plan.removed),
    }


def _already_there(out: Path, doc: dict[str, Any]) -> bool:
    """OUT holds an earlier export of this same delta, every volume in place at its size."""
    try:
        old = json.loads((out / MANIFEST).read_bytes())
        same = all(
            old[k] == doc[k] for k in ("format", "tree", "site", "base", "generation", "full")
        )
        return same and all((out / v["name"]).stat().st_size == v["size"] for v in old["volumes"])
    except (OSError, ValueError, TypeError, KeyError):
        return False


def _check_empty(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ExportError(f"-o {out} is not a folder: give an empty folder (or disk) to write to")
    with contextlib.suppress(FileNotFoundError):
        names = sorted(os.listdir(out))
        if names:
            raise ExportError(
                f"-o {out} is not empty (it holds {names[0]}"
                + (f" and {len(names) - 1} more" if len(names) > 1 else "")
                + "): an export goes into an empty folder, so that nothing else crosses "
                "with it; give another folder or empty this one"
            )


def _write(
    root: Path,
    out: Path,
    plan: Plan,
    doc: dict[str, Any],
    volume_size: int,
    key: bytes | None,
    reporter: Reporter,
) -> str:
    """Volumes, README.txt, the signature, the manifest last, each renamed into OUT when
    finished; on any failure, what was written is taken back.  Returns the manifest's sha256."""
    import hashlib

    staging = out / f".partial-{os.getpid()}"
    placed: list[Path] = []
    try:
        staging.mkdir(parents=True)
        with reporter.transferring(f"Exporting for {doc['site']}", plan.size) as counter:
            for number, files in enumerate(split_volumes(plan.files, volume_size), 1):
                target = staging / volume_name(number)
                volume, entries = write_volume(root, files, target, counter.advance)
                doc["volumes"].append(volume)
                doc["files"].extend(entries)
                placed.append(_place(target, out))
        data = manifest_bytes(doc)
        manifest_sha = hashlib.sha256(data).hexdigest()
        (staging / README_NAME).write_text(readme_text(doc, manifest_sha, key is not None), "utf-8")
        placed.append(_place(staging / README_NAME, out))
        if key is not None:
            (staging / HMAC_NAME).write_text(signature(key, data) + "\n", "ascii")
            placed.append(_place(staging / HMAC_NAME, out))
        with open(staging / MANIFEST, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        placed.append(_place(staging / MANIFEST, out))
        staging.rmdir()
        return manifest_sha
    except BaseException as exc:
        for path in placed:
            with contextlib.suppress(OSError):
                path.unlink()
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise ExportError(
                f"cannot write the export into {out} ({exc.strerror or exc}"
                + (f": {exc.filename}" if exc.filename else "")
                + "): free space there or give another -o; nothing was recorded for the site"
            ) from None
        raise


def _place(path: Path, out: Path) -> Path:
    target = out / path.name
    os.replace(path, target)
    return target


def _take_receipt(state: TreeState, site: str, path: Path, reporter: Reporter) -> None:
    tree, gen = read_receipt(path)
    ours, current = generations.tree_id(state), generations.current(state)
    if tree != ours:
        raise ExportError(
            f"--receipt {path} is from another tree ({tree}; this one is {ours}): the site's "
            "tree was not fed from this one; send it --full once, then its receipts apply"
        )
    if gen < 1 or gen > current:
        raise ExportError(
            f"--receipt {path} says generation {gen}, which this tree (at generation "
            f"{current}) never had: give the site's latest receipt, or export --full"
        )
    generations.set_site(state, site, gen)
    state.commit()
    reporter.info(f"site {site} is at generation {gen} (from {path})")


def _list_sites(root: Path, reporter: Reporter) -> int:
    with TreeState(root) as state:
        current = generations.current(state)
        rows = []
        for name, gen in generations.sites(state):
            plan = delta_plan(root, state, gen)
            rows.append(
                [
                    name,
                    str(gen),
                    str(len(plan.files)),
                    human_size(plan.size),
                    str(len(plan.removed)),
                ]
            )
    reporter.info(f"{root} is at generation {current}")
    if not rows:
        reporter.info("no site has been sent an export yet (export --site NAME --full)")
        return 0
    reporter.table("Sites", ["site", "generation", "files", "bytes", "removals"], rows)
    return 0
