"""Transfer benchmark (not a test): ``morgan-like export`` against ``tar -c`` + ``sha256sum``
on the same files, and ``server.py --import`` against ``sha256sum -c`` + ``tar -x`` + ``sync``;
runs alternated, wall-time ratios and each side's peak RSS printed.

    python bench/bench_transfer.py                # ~2 GB delta
    python bench/bench_transfer.py --size-mb 200  # a quick run

The delta is realistic in shape: a few large archives (a fifth of the bytes each in
3 files) and many small files (4-400 KiB), random so incompressible.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def build_tree(root: Path, size_mb: int, seed: int = 1) -> list[str]:
    """A tree with simple/ and packages/ holding ``size_mb`` MiB of random files."""
    rng = random.Random(seed)
    total, paths = size_mb << 20, []
    sizes = [total // 5] * 3  # a few large wheels
    left = total - sum(sizes)
    while left > 0:
        size = min(left, rng.randint(4 << 10, 400 << 10))
        sizes.append(size)
        left -= size
    for i, size in enumerate(sizes):
        rel = f"packages/p{i % 97:03d}/p{i % 97:03d}-{i}.0.tar.gz"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            while size:
                chunk = min(size, 1 << 20)
                fh.write(os.urandom(chunk))
                size -= chunk
        paths.append(rel)
    return paths + publish_tree(root)


def publish_tree(root: Path) -> list[str]:
    """Pages for every file, the root pages, server.py and manifest.json, through the
    tree's own writer (so the far side's --verify checks real pages); their paths."""
    sys.path.insert(0, str(REPO))
    from morgan_like.dists.links import RemoteFile
    from morgan_like.tree.publish import publish
    from morgan_like.tree.state import TreeState
    from morgan_like.tree.writer import TreeWriter

    with TreeState(root) as state:
        writer = TreeWriter(root, state)
        for folder in sorted((root / "packages").iterdir()):
            files = [RemoteFile(p.name, f"https://upstream.invalid/{p.name}")
                     for p in sorted(folder.iterdir())]  # fmt: skip
            writer.write_project(folder.name, files, last_serial=1)
        done = publish(writer, server=(REPO / "server.py").read_bytes())
    return [p for p in done.changed if not p.startswith("packages/")]


def timed(argv: list[str], **kwargs) -> tuple[float, int]:
    """Wall seconds and the process's peak RSS (KiB) of one command (a shell pipe: its
    largest process).  Untimed, the page cache's dirty data is written out first, so
    no run pays for writing out the files of the run before it."""
    os.sync()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, **kwargs)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{argv} failed ({proc.returncode})")
    return time.perf_counter() - start, usage.ru_maxrss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dir", default=None, help="work folder (default: a temp folder)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-transfer-", dir=args.dir))
    try:
        tree = work / "tree"
        paths = build_tree(tree, args.size_mb)
        (work / "list").write_text("\n".join(paths) + "\n")
        ours_out, base_out, ours_in, base_in = [], [], [], []
        rss_export = rss_import = 0
        for r in range(args.rounds):
            for step in ("ours", "base") if r % 2 == 0 else ("base", "ours"):
                out = work / f"out-{step}"
                shutil.rmtree(out, ignore_errors=True)
                if step == "ours":
                    t, rss = timed([sys.executable, "-m", "morgan_like", "export", "-q", "-i",
                                    str(tree), "-o", str(out), "--site", f"s{r}", "--full"])  # fmt: skip
                    ours_out.append(t)
                    rss_export = max(rss_export, rss)
                else:
                    out.mkdir()
                    shell = (f"cd {tree} && tar -cf {out}/vol.tar -T {work}/list && "
                             f"sha256sum {out}/vol.tar > {out}/SUMS")  # fmt: skip
                    base_out.append(timed(["sh", "-c", shell])[0])
            for step in ("ours", "base") if r % 2 == 0 else ("base", "ours"):
                dest = work / f"in-{step}"
                shutil.rmtree(dest, ignore_errors=True)
                dest.mkdir()
                if step == "ours":
                    shutil.copy(REPO / "server.py", dest / "server.py")
                    t, rss = timed([sys.executable, str(dest / "server.py"), "--import",
                                    str(work / "out-ours"), "-i", str(dest)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
                    ours_in.append(t)
                    rss_import = max(rss_import, rss)
                else:
                    # the import's files are on disk when it returns (it syncs before
                    # its journal): the baseline's are too, or it would be timed without
                    # the writes the import has to wait for
                    shell = (f"sha256sum -c --quiet {work}/out-base/SUMS && "
                             f"tar -xf {work}/out-base/vol.tar -C {dest} && sync")  # fmt: skip
                    base_in.append(timed(["sh", "-c", shell])[0])
        best = min
        print(
            f"delta: {args.size_mb} MiB in {len(paths)} files, {args.rounds} round(s), best of each"
        )
        print(f"out: export {best(ours_out):.2f} s  tar -c + sha256sum {best(base_out):.2f} s  "
              f"ratio {best(ours_out) / best(base_out):.2f}x  export peak RSS {rss_export / 1024:.0f} MiB")  # fmt: skip
        print(f"in:  import {best(ours_in):.2f} s  sha256sum -c + tar -x {best(base_in):.2f} s  "
              f"ratio {best(ours_in) / best(base_in):.2f}x  import peak RSS {rss_import / 1024:.0f} MiB")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
