"""The stdlib-only index server that ships with every tree.

The server is one file, ``server.py`` at the repository root, so that it can be
copied into a tree and run by any CPython 3.6+ with nothing installed.  The wheel
ships it as ``morgan_like/_server.py`` (hatch force-include); a source checkout or
an editable install finds it at ``<repo>/server.py``.

* :func:`server_source` locates the file.
* :func:`copy_server` returns its bytes for the tree writer, which writes
  ``TREE/server.py`` atomically (temp name + rename) together with the rest of the
  tree.  :func:`write_server` does that write itself for callers that want it.
* :func:`run` runs it in-process (``morgan-like serve``) with the same flags as
  ``python3 server.py``.
* :func:`load_server` imports it as a module (``main``, ``build_parser``, ``serve``,
  ``verify``, ``IndexServer``, ...).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import ModuleType

_MODULE_NAME = "morgan_like._server_runtime"


def server_source() -> Path:
    """The path of the server script (wheel: ``_server.py``; checkout: ``<repo>/server.py``)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_server.py", here.parent / "server.py"):
        if candidate.is_file() and candidate.stat().st_size > 0:
            return candidate
    raise FileNotFoundError(
        f"server.py not found (looked for {here / '_server.py'} and {here.parent / 'server.py'})"
    )


def copy_server(tree: Path) -> bytes:
    """The bytes to write as ``<tree>/server.py``.

    Does not write anything: the tree writer writes these bytes atomically along with
    the rest of the tree (and lists them in manifest.json).  ``tree`` is accepted for
    symmetry with :func:`write_server` and is not used.
    """
    del tree
    return server_source().read_bytes()


def write_server(tree: Path) -> bool:
    """Write ``<tree>/server.py`` atomically (temp file + ``os.replace``).

    Returns True when the file changed, False when it already had these bytes.
    """
    data = copy_server(tree)
    target = Path(tree) / "server.py"
    try:
        if target.read_bytes() == data:
            return False
    except OSError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".server.py.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


def load_server() -> ModuleType:
    """Import the server script as a module (cached in ``sys.modules``)."""
    module = sys.modules.get(_MODULE_NAME)
    if module is not None:
        return module
    path = server_source()
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, path)
    if spec is None or spec.loader is None:  # pragma: no cover - defensive
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(_MODULE_NAME, None)
        raise
    return module


def run(argv: list[str]) -> int:
    """Run the server's command line (``python3 server.py ARGV``) in this process."""
    return int(load_server().main(list(argv)) or 0)
