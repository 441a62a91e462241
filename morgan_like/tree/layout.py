"""Where things live in a tree: path constants and tree-relative path rules.

Pure functions, imported by every stage that names a tree path (plan, fetch,
writer, modes), so none of them needs the writer only for a constant.
"""

from __future__ import annotations

from packaging.utils import canonicalize_name

from morgan_like.dists.filenames import unsafe_filename

PACKAGES_DIR = "packages"
SIMPLE_DIR = "simple"
STATE_DIR = ".morgan-like"  # hidden working state: never served, never travels
# Scratch of one run under STATE_DIR: temp files of atomic writes and downloads, and the
# sdists read for metadata.  Emptied at the start and end of every run, under the lock.
SCRATCH_DIRS = ("tmp", "cache")
TMP_DIR = f"{STATE_DIR}/tmp"
LOCK_NAME = f"{STATE_DIR}/lock"
METADATA_SUFFIX = ".metadata"
# PEP 740: a file's provenance (its attestations, JSON) kept beside it, as PyPI's
# /integrity/<project>/<version>/<filename>/provenance served it.
PROVENANCE_SUFFIX = ".provenance"
MANIFEST_NAME = "manifest.json"
ROOT_HTML = f"{SIMPLE_DIR}/index.html"
ROOT_JSON = f"{SIMPLE_DIR}/index.json"
# A full mirror is an upstream itself: Warehouse-style JSON per project (served as
# /pypi/<project>/json, what bandersnatch reads from a master) and the serial list
# shadowmire-style mirrors chain from ({name: serial} and the serial synced).
JSON_DIR = "json"
LOCAL_JSON = "local.json"
LOCAL_SERIAL = "local.db.serial"
# One index view per env of a bundle: envs/<env>/simple/, listing only what that env
# resolved (its own root and project pages; the files stay in packages/).
ENVS_DIR = "envs"
# The files an outside config (-c) read, copied so that the tree can rebuild itself
# (config.inputs): top-level files, vouched for by manifest.json, never served.
INPUTS_DIR = "inputs"
# Per env view, its lock files (tree/lockfiles.py) and, for the tree, its CycloneDX SBOM
# (tree/sbom.py): top-level files, vouched for by manifest.json, served by server.py.
LOCKS_DIR = "locks"
SBOM_NAME = "sbom.cdx.json"
# The landing page a browser gets at the tree's root (tree/landing.py): a top-level file.
LANDING_HTML = "index.html"


def normalize_relpath(relpath: str) -> str:
    """A tree-relative path with "/" separators; refuses absolute paths and "..".

    Raises ValueError: a path escaping the tree is a bug (or a hostile filename).
    """
    text = str(relpath).replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or text.startswith("/") or ".." in parts or ":" in parts[0]:
        raise ValueError(f"not a relative path inside the tree: {relpath!r}")
    return "/".join(parts)


def is_hidden(relpath: str) -> bool:
    """Working state (any component starting with "."): never served, listed or shipped."""
    return any(part.startswith(".") for part in relpath.split("/"))


def is_project_path(relpath: str) -> bool:
    """Under ``packages/``, a project's ``simple/<name>/`` or ``json/<name>``: per project,
    vouched for by the project pages."""
    parts = relpath.split("/")
    return (
        parts[0] == PACKAGES_DIR
        or (parts[0] == SIMPLE_DIR and len(parts) > 2)
        or (parts[0] == JSON_DIR and len(parts) > 1)
        or is_view_page(relpath)
    )


def is_view_page(relpath: str) -> bool:
    """A project page of an env's view, ``envs/<env>/simple/<name>/index.*``."""
    parts = relpath.split("/")
    return parts[0] == ENVS_DIR and len(parts) > 4


def is_top_level(relpath: str) -> bool:
    """What manifest.json lists: visible files outside the project pages' reach.

    That is morgan.ini, server.py, the two root pages, each env view's two root
    pages and the config's inputs/: a handful, whatever the tree's size, so the
    manifest stays small in every diff-file.
    """
    return relpath != MANIFEST_NAME and not is_hidden(relpath) and not is_project_path(relpath)


def check_filename(filename: str) -> str:
    """``filename``, or ValueError when it cannot name a file in packages/<project>/
    (``dists.filenames.unsafe_filename``: a page entry that breaks it never gets here,
    so one that does is a bug or a hostile name)."""
    if unsafe_filename(filename) is not None:
        raise ValueError(f"unsafe distribution filename: {filename!r}")
    return filename


def package_relpath(project: str, filename: str) -> str:
    """``packages/<normalized>/<filename>``; raises ValueError for an unsafe filename."""
    return f"{PACKAGES_DIR}/{canonicalize_name(project)}/{check_filename(filename)}"


def page_relpaths(project: str) -> tuple[str, str]:
    """The (index.html, index.json) relpaths of a project page."""
    base = f"{SIMPLE_DIR}/{canonicalize_name(project)}"
    return f"{base}/index.html", f"{base}/index.json"


def warehouse_relpath(project: str) -> str:
    """``json/<normalized>``: the project's Warehouse-style JSON (full mirrors only)."""
    return f"{JSON_DIR}/{canonicalize_name(project)}"


def file_url(project: str, filename: str) -> str:
    """A file's link as seen from its project page; relative, so the tree is relocatable."""
    return f"../../{package_relpath(project, filename)}"


def view_dir(env: str) -> str:
    """``envs/<env>/simple``: the index view of one env (see ENVS_DIR)."""
    return f"{ENVS_DIR}/{env}/{SIMPLE_DIR}"


def view_root_relpaths(env: str) -> tuple[str, str]:
    """The (index.html, index.json) relpaths of an env view's root page."""
    return f"{view_dir(env)}/index.html", f"{view_dir(env)}/index.json"


def view_page_relpaths(env: str, project: str) -> tuple[str, str]:
    """The (index.html, index.json) relpaths of a project page in an env's view."""
    base = f"{view_dir(env)}/{canonicalize_name(project)}"
    return f"{base}/index.html", f"{base}/index.json"


def lock_relpaths(env: str) -> tuple[str, str]:
    """(``locks/pylock.<env>.toml``, ``locks/<env>.requirements.txt``) of an env view.

    PEP 751 names a lock ``pylock.<name>.toml`` with no dot in <name> (pip and uv pick
    the format by that name), so an env name's dots become underscores there."""
    return (
        f"{LOCKS_DIR}/pylock.{env.replace('.', '_')}.toml",
        f"{LOCKS_DIR}/{env}.requirements.txt",
    )


def view_file_url(project: str, filename: str) -> str:
    """A file's link as seen from a view's project page (two folders deeper than
    ``simple/<name>/``): the files are shared, never copied per view."""
    return f"../../../../{package_relpath(project, filename)}"
