"""A file's PEP 740 provenance fetched from upstream and kept beside it.

Upstream names it by URL (PEP 691 ``provenance``, HTML ``data-provenance``; PyPI's
``/integrity/<project>/<version>/<filename>/provenance``).  It is fetched once the
file itself is in place and verified, within a size cap, and lands (temp name,
fsync, rename, like every file) as ``packages/<project>/<filename>.provenance``
only when it parses and names that file and its sha256 (tree/provenance.py's form
check).  A provenance that fails costs nothing else: the file stays, and the
writer lists it without one (and says so).  One already on disk is not fetched
again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path

from morgan_like.dists.links import RemoteFile
from morgan_like.errors import UpstreamError
from morgan_like.index.httputil import redact_url
from morgan_like.index.upstream import Upstream
from morgan_like.tree.layout import PROVENANCE_SUFFIX
from morgan_like.tree.provenance import MAX_PROVENANCE_BYTES, ProvenanceError, check_form

log = logging.getLogger(__name__)

# place(tmp, dest, size, sha256): moves the checked temp file into the tree.
Place = Callable[[Path, Path, int, str], None]


def provenance_path(dest: Path) -> Path:
    """Where the provenance of the file at ``dest`` is kept."""
    return dest.with_name(dest.name + PROVENANCE_SUFFIX)


def fetch_provenance(
    upstream: Upstream, file: RemoteFile, sha256: str, dest: Path, tmp_dir: Path, place: Place
) -> tuple[int, str] | None:
    """Fetch ``file``'s provenance to ``dest`` (its size and sha256), or None when the
    file offers none or it was refused (the reason is logged: the writer reports the
    file as listed without one)."""
    if not file.provenance:
        return None
    try:
        data = upstream.fetch_bytes(file.provenance, limit=MAX_PROVENANCE_BYTES)
        check_form(data, file.filename, sha256)
    except (UpstreamError, OSError, ProvenanceError) as exc:
        log.info("%s: provenance refused: %s (%s)", file.filename, exc, redact_url(file.provenance))
        return None
    tmp_dir.mkdir(parents=True, exist_ok=True)  # the scratch folder may have been swept
    tmp = tmp_dir / f"{uuid.uuid4().hex}.part"
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        digest = hashlib.sha256(data).hexdigest()
        place(tmp, dest, len(data), digest)
    finally:
        tmp.unlink(missing_ok=True)
    return len(data), digest
