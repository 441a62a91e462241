"""Benchmark: the landing page's size (index.html at a tree's root) by project count.

The page carries every project as compact columns (tree/landing_html.py), so its size
grows about linearly with the project count; this prints it for trees of 1,000 to
100,000 projects (a full mirror's order), without and with three env views, and how
much each project costs.  Names and versions are made up with PyPI's shape (normalized
names of 3 to 24 characters, versions like 1.22.3, up to 60 releases).

    python bench/bench_landing.py [--counts 1000 10000 100000]
"""

from __future__ import annotations

import argparse
import gzip
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from morgan_like.tree.landing_html import (  # noqa: E402
    EnvColumn,
    LandingData,
    ProjectRow,
    render_landing,
)


def made_up(count: int, envs: int) -> LandingData:
    rng = random.Random(count)
    letters = "abcdefghijklmnopqrstuvwxyz"
    names = set()
    while len(names) < count:
        size = rng.randint(3, 24)
        name = "".join(rng.choice(letters) for _ in range(size))
        cut = rng.randint(0, size)
        names.add(
            name[:cut] + ("-" if 0 < cut < size - 1 and rng.random() < 0.4 else "") + name[cut:]
        )
    rows = []
    for name in sorted(names):
        releases = rng.randint(1, 60)
        version = f"{rng.randint(0, 30)}.{rng.randint(0, 40)}.{rng.randint(0, 12)}"
        rows.append(
            ProjectRow(
                name, version, releases, releases * rng.randint(1, 6), rng.randint(10**3, 10**9)
            )
        )
    columns = [
        EnvColumn(f"env{j}", count, count * 2, 10**10, {r.name: r.newest for r in rows})
        for j in range(envs)
    ]
    return LandingData(tuple(rows), tuple(columns), "2026-01-01T00:00:00Z")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000, 100000])
    args = parser.parse_args()
    print(f"{'projects':>9} {'envs':>4} {'index.html':>12} {'gzip':>10} {'bytes/project':>14}")
    for count in args.counts:
        for envs in (0, 3):
            page = render_landing(made_up(count, envs))
            print(
                f"{count:>9} {envs:>4} {len(page):>12,} {len(gzip.compress(page)):>10,}"
                f" {len(page) / count:>14.1f}"
            )


if __name__ == "__main__":
    main()
