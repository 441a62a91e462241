"""manifest.json: size and sha256 of the tree's top-level files.

The project pages already vouch for every distribution file and ``.metadata``
file (sha256 and size on every link), so the manifest lists only what no page
covers: ``morgan.ini``, ``server.py`` and the two root pages.  It stays a few
hundred bytes whatever the tree's size, so it costs nothing in a diff-file.
``python3 server.py --verify`` checks both, offline.

Trees of the first format listed every file here; they are upgraded in place
on the next run (see :mod:`morgan_like.tree.state`).
"""

from __future__ import annotations

import json

from morgan_like.tree.state import FileRecord

MANIFEST_FORMAT = "morgan-like-manifest/2"


def render_manifest(records: list[tuple[str, FileRecord]]) -> bytes:
    """Stable bytes: sorted paths, one per line, so it diffs and greps well."""
    lines = [
        f"  {json.dumps(path)}: {json.dumps({'size': r.size, 'sha256': r.sha256})}"
        for path, r in sorted(records)
    ]
    head = f'{{"format": {json.dumps(MANIFEST_FORMAT)}, "files": {{'
    text = f"{head}\n" + ",\n".join(lines) + "\n}}\n" if lines else f"{head}}}}}\n"
    return text.encode("utf-8")
