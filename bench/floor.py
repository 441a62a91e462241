"""The network's floor for a bundle tree: fetch what the tree holds, the list known in advance.

    python bench/floor.py TREE [--index-url https://pypi.org/simple/] [--connections 4,8]
        [--repeat 1]

A bundle build cannot be faster than fetching the same bytes with nothing else
to do.  This script reads the tree's project pages (``simple/<name>/index.html``)
for the projects and file names it holds, then (untimed) reads each project's
upstream PEP 691 page once to learn every file's upstream URL.  The timed part
fetches every upstream page and every file again, with ``N`` pooled connections
and no parsing, hashing or writing: the bytes are read and dropped.  It prints,
for each connection count, the wall time, the bytes and the rate, and returns
the best time via ``measure_floor`` for ``bench/bench_live.py``.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter

from morgan_like.index import dns

PYPI = "https://pypi.org/simple/"
JSON_ACCEPT = "application/vnd.pypi.simple.v1+json"
_HREF = re.compile(r'href="([^"#]+)')


def tree_contents(tree: Path) -> dict[str, set[str]]:
    """Project name -> file names linked by its page in ``tree``."""
    simple = tree / "simple"
    found: dict[str, set[str]] = {}
    for page in sorted(simple.glob("*/index.html")):
        text = page.read_text(encoding="utf-8")
        names = {href.rsplit("/", 1)[-1] for href in _HREF.findall(text)}
        found[page.parent.name] = {n for n in names if n and not n.endswith(".metadata")}
    return found


def plan(
    session: requests.Session, index_url: str, contents: dict[str, set[str]]
) -> tuple[list[str], list[str]]:
    """The page URLs and file URLs to fetch (reads each upstream page once, untimed)."""
    pages: list[str] = []
    files: list[str] = []
    for name, wanted in contents.items():
        url = urljoin(index_url, f"{name}/")
        reply = session.get(url, headers={"Accept": JSON_ACCEPT}, timeout=60)
        reply.raise_for_status()
        pages.append(url)
        for entry in reply.json().get("files", []):
            if entry["filename"] in wanted:
                files.append(urljoin(reply.url, entry["url"]))
    return pages, files


def _session(connections: int) -> requests.Session:
    # Host lookups shared as morgan-like shares them: a burst of lookups is what this
    # machine's resolver drops (5 s stalls), and the floor should not pay for that.
    dns.install()
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=connections)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def fetch_all(pages: list[str], files: list[str], connections: int) -> tuple[float, int]:
    """Wall time and bytes to fetch ``pages`` and ``files`` over ``connections`` pooled connections."""
    session = _session(connections)

    def get(url: str) -> int:
        accept = JSON_ACCEPT if url in page_set else "*/*"
        with session.get(url, headers={"Accept": accept}, stream=True, timeout=120) as reply:
            reply.raise_for_status()
            return sum(len(chunk) for chunk in reply.iter_content(1 << 16))

    page_set = set(pages)
    start = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        total = sum(pool.map(get, pages + files))
    return time.perf_counter() - start, total


def measure_floor(
    tree: Path, index_url: str = PYPI, connections: tuple[int, ...] = (4,), repeat: int = 1
) -> dict[int, float]:
    """Best wall time per connection count for fetching what ``tree`` holds."""
    contents = tree_contents(tree)
    pages, files = plan(_session(4), index_url, contents)
    best: dict[int, float] = {}
    for _ in range(repeat):
        for count in connections:
            seconds, size = fetch_all(pages, files, count)
            print(
                f"floor: {len(pages)} pages + {len(files)} files, {size / 1e6:.1f} MB, "
                f"{count} connections: {seconds:.2f} s ({size / 1e6 / seconds:.1f} MB/s)",
                flush=True,
            )
            best[count] = min(seconds, best.get(count, seconds))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tree", type=Path, help="a tree built by morgan-like mirror")
    parser.add_argument("--index-url", default=PYPI)
    parser.add_argument("--connections", default="4", help="comma-separated counts (4,8,16)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    if not (args.tree / "simple").is_dir():
        parser.error(f"{args.tree}: no simple/ folder; build the tree first")
    counts = tuple(int(c) for c in args.connections.split(","))
    best = measure_floor(args.tree, args.index_url, counts, args.repeat)
    for count, seconds in sorted(best.items()):
        print(f"floor best, {count} connections: {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
