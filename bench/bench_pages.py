"""Benchmark: a sync's per-project page work alone, parse then render, in bench_sync's shape.

    python bench/bench_pages.py [--projects 3000] [--files 6] [--rounds 3] [--code DIR ...]

Each project's upstream page is a PEP 691 document as bench/bench_sync.py's nginx serves
it (root-relative file URLs, three releases of a wheel and an sdist: ``--files`` of
them); ``parse`` is dists.links.parse_json_page, ``render`` an index-only project's
three pages (Warehouse JSON, PEP 691 JSON, PEP 503 HTML) from the parsed records, as
the writer renders them.  Each round runs every ``--code`` tree (a checkout, e.g. one
made with ``git archive REV morgan_like | tar -x -C DIR``; default: this one) in a child
process, alternated, and prints CPU microseconds per project; the ratios of the minima
against the first tree are what to read on a shared machine.  Not a test: the machine
is noisy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _page(name: str, files: int) -> bytes:
    entries = []
    for version in ("1.0", "1.1", "2.0", "2.1", "3.0")[: (files + 1) // 2]:
        for filename in (f"{name}-{version}-py3-none-any.whl", f"{name}-{version}.tar.gz"):
            entries.append(
                {"filename": filename, "url": f"/packages/{name}/{filename}",
                 "hashes": {"sha256": hashlib.sha256(filename.encode()).hexdigest()},
                 "size": 1280, "requires-python": ">=3.8", "yanked": False,
                 "upload-time": "2024-01-01T00:00:00.000000Z"}
            )  # fmt: skip
    doc = {"meta": {"api-version": "1.1", "_last-serial": 5}, "name": name,
           "versions": sorted({e["filename"].split("-")[1].removesuffix(".tar.gz")
                               for e in entries}), "files": entries[:files]}  # fmt: skip
    return json.dumps(doc).encode()


def child(projects: int, files: int) -> None:
    from morgan_like.dists.links import parse_json_page
    from morgan_like.tree.pages import upstream_entry
    from morgan_like.tree.projectpages import render_pages

    names = [f"proj{i:06d}" for i in range(projects)]
    bodies = [_page(name, files) for name in names]
    base = "http://127.0.0.1:8080/simple/"
    started = time.process_time()
    pages = [parse_json_page(n, b, f"{base}{n}/") for n, b in zip(names, bodies)]
    parsed = time.process_time()
    for page in pages:
        entries = [e for e in map(upstream_entry, page.files) if e is not None]
        render_pages(Path("/nonexistent"), page.name, entries, page.meta, 5, True)
    rendered = time.process_time()
    print(json.dumps({"parse": parsed - started, "render": rendered - parsed}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=3000)
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--code", type=Path, action="append", default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.projects, args.files)
        return 0
    codes = args.code or [REPO]
    best: dict[Path, dict[str, float]] = {}
    for round_ in range(args.rounds):
        for code in codes if round_ % 2 == 0 else codes[::-1]:
            env = {**os.environ, "PYTHONPATH": str(code)}
            cmd = [sys.executable, __file__, "--child", "--projects", str(args.projects)]
            out = subprocess.run(
                [*cmd, "--files", str(args.files)], env=env, check=True, capture_output=True
            )
            got = json.loads(out.stdout)
            us = {k: 1e6 * v / args.projects for k, v in got.items()}
            print(f"{str(code):40} parse {us['parse']:6.1f} us  render {us['render']:6.1f} us")
            kept = best.setdefault(code, {})
            for key, value in us.items():
                kept[key] = min(kept.get(key, value), value)
    first = codes[0]
    for code in codes[1:]:
        ratios = "  ".join(f"{k} {best[first][k] / best[code][k]:.2f}x" for k in best[first])
        print(f"{first} / {code} (minima): {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
