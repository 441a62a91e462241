"""The stdlib-only index server that ships with every tree.

The server is one file, ``server.py`` at the repository root, so that it can be
copied into a tree and run by any CPython 3.6+ with nothing installed.  The wheel
ships it as ``morgan_like/_server.py`` (hatch force-include); a source checkout or
an editable install finds it at ``<repo>/server.py``.

* :func:`server_source` locates the file.
* The tree writer copies it as ``TREE/server.py`` atomically, with the rest of the
  tree, and lists it in the manifest (``mirror`` and ``copy_server`` commands).
* :func:`run` runs it in-process (``morgan-like serve``) with the same flags as
  ``python3 server.py``.
* :func:`load_server` imports it as a module (``main``, ``build_parser``, ``serve``,
  ``verify``, ``IndexServer``, ...).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_MODULE_NAME = "morgan_like._server_runtime"


def server_source() -> Path:
    """The path of the server script (wheel: ``_server.py``; checkout: ``<repo>/server.py``)."""
    here = Path(__file__).resolve().parent.parent  # the morgan_like package
    for candidate in (here / "_server.py", here.parent / "server.py"):
        if candidate.is_file() and candidate.stat().st_size > 0:
            return candidate
    raise FileNotFoundError(
        f"server.py not found (looked for {here / '_server.py'} and {here.parent / 'server.py'})"
    )


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
