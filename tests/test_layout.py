"""The layout's rules: no import cycles between modules or packages, a network-free tree, pure parsers.

These read the import statements of every module (top level and inside functions),
so a rule cannot break silently when someone adds an import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "morgan_like"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _internal(names: set[str], modules: dict[str, Path]) -> set[str]:
    return {n for n in names if n in modules and n != "morgan_like"}


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {
        name: _internal(_imports(path, top_level_only=True), modules)
        for name, path in modules.items()
    }
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            cycle = stack[stack.index(name) :] + [name]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, [*stack, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def _package(module: str) -> str:
    """``morgan_like.tree.writer`` -> ``tree``; a top-level module (``errors``) is its own."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_no_import_cycles_between_packages() -> None:
    """The packages form a pipeline: no package reaches back into one that imports it.

    Every import counts here, at the top, inside a function or under TYPE_CHECKING:
    a lazy or type-only import hides a cycle from the interpreter, not from the
    reader, and a package that names another's types depends on that package.
    A cycle is reported with one module import for each of its edges.
    """
    modules = _modules()
    edges: dict[tuple[str, str], str] = {}
    for name, path in sorted(modules.items()):
        for imported in sorted(_internal(_imports(path, top_level_only=False), modules)):
            src, dst = _package(name), _package(imported)
            if src != dst:
                edges.setdefault((src, dst), f"{name} imports {imported}")
    graph: dict[str, set[str]] = {}
    for src, dst in edges:
        graph.setdefault(src, set()).add(dst)
    done: set[str] = set()

    def visit(package: str, stack: list[str]) -> None:
        if package in stack:
            cycle = [*stack[stack.index(package) :], package]
            steps = [edges[(a, b)] for a, b in zip(cycle, cycle[1:])]
            raise AssertionError("package cycle " + " -> ".join(cycle) + ": " + "; ".join(steps))
        if package in done:
            return
        for dep in sorted(graph.get(package, ())):
            visit(dep, [*stack, package])
        done.add(package)

    for package in sorted(graph):
        visit(package, [])


def _forbidden(package: str, banned: tuple[str, ...]) -> list[str]:
    problems = []
    for name, path in _modules().items():
        if not name.startswith(f"morgan_like.{package}"):
            continue
        for imported in sorted(_imports(path, top_level_only=False)):
            if any(imported == b or imported.startswith(b + ".") for b in banned):
                problems.append(f"{name} imports {imported}")
    return problems


# The call graph between packages, as it is: each package and the packages it may
# import.  A stage asks a later one for nothing by import: the Finder asks the run
# (index.finder.FinderRequests), the build step asks for sdists (SdistSource), the
# resolver asks the hooks (BuildHooks), each resolved env is handed to the run
# (ResolvedEnvs); the run (modes) implements those and wires the stages.
STAGES = {
    "errors": set(),
    "interrupt": set(),
    "output": set(),
    "workers": set(),
    "targets": {"errors"},
    "dists": {"errors", "workers"},
    "config": {"dists", "errors", "targets"},
    "index": {"config", "dists", "errors", "interrupt"},
    "tree": {"dists", "errors"},
    "resolve": {"dists", "errors", "index", "targets", "tree", "workers"},
    "fetch": {"dists", "errors", "index", "interrupt", "tree"},
    "modes": {
        "config",
        "dists",
        "errors",
        "fetch",
        "index",
        "interrupt",
        "output",
        "resolve",
        "targets",
        "tree",
        "workers",
    },
    "cli": {"config", "errors", "index", "modes", "output", "targets", "tree"},
    "__main__": {"cli"},
}


def test_each_package_imports_only_what_the_call_graph_names() -> None:
    """Every import counts (top level, in a function, under TYPE_CHECKING); a new edge
    between packages is a change to the pipeline, made here on purpose."""
    modules = _modules()
    offenders = sorted(
        f"{name} imports {imported}"
        for name, path in modules.items()
        for imported in _internal(_imports(path, top_level_only=False), modules)
        if _package(imported) != _package(name)
        and _package(imported) not in STAGES.get(_package(name), set())
    )
    assert offenders == []
    assert {_package(name) for name in modules} - {"morgan_like"} <= set(STAGES)


def test_tree_never_imports_the_network() -> None:
    banned = ("requests", "urllib3", "morgan_like.index", "morgan_like.resolve")
    assert _forbidden("tree", (*banned, "morgan_like.fetch", "morgan_like.modes")) == []


def test_parsing_stages_stay_pure() -> None:
    banned = ("requests", "urllib3", "morgan_like.index", "morgan_like.fetch", "morgan_like.modes")
    for package in ("dists", "targets", "config"):
        assert _forbidden(package, (*banned, "morgan_like.resolve", "morgan_like.tree")) == []


def test_targets_import_no_other_package_but_errors() -> None:
    """``config`` builds the Environment records from its sections; ``targets`` knows
    nothing of where they come from (a reader of sections here would make a cycle)."""
    modules = _modules()
    offenders = [
        f"{name} imports {imported}"
        for name, path in modules.items()
        if _package(name) == "targets"
        for imported in sorted(_internal(_imports(path, top_level_only=False), modules))
        if _package(imported) not in ("targets", "errors")
    ]
    assert offenders == []


def test_stages_before_the_writer_never_import_it() -> None:
    """The tree is written at the end of a run, by the modes: a stage before it that
    names a tree path takes the rule from ``tree.layout``, never from the writer."""
    stages = ("config", "targets", "dists", "index", "resolve", "fetch")
    banned = ("morgan_like.tree.writer", "morgan_like.tree.publish")
    assert [p for stage in stages for p in _forbidden(stage, banned)] == []


def test_resolve_never_imports_the_download_stage() -> None:
    """The resolver asks the run for the archives it reads (an ``ArchiveCache``, a
    ``SdistSource``); the download stage comes after it and is never reached into."""
    assert _forbidden("resolve", ("morgan_like.fetch",)) == []


def test_no_module_imports_requests() -> None:
    """The package's one HTTP client is urllib3 (index/transport.py), and the rules of
    pip's requests session it keeps are its own (index/envrules.py): requests is a test
    and benchmark dependency only."""
    offenders = [
        name
        for name, path in _modules().items()
        if any(
            i == "requests" or i.startswith("requests.")
            for i in _imports(path, top_level_only=False)
        )
    ]
    assert offenders == []


def test_only_tree_storage_imports_the_s3_client() -> None:
    """One S3 client, behind tree/storage*.py: everything else talks to a ``Storage``."""
    clients = ("boto3", "botocore", "s3transfer", "obstore", "aiobotocore")
    offenders = [
        f"{name} imports {imported}"
        for name, path in _modules().items()
        if not name.startswith("morgan_like.tree.storage")
        and not name.startswith("morgan_like.tree.s3storage")
        for imported in sorted(_imports(path, top_level_only=False))
        if any(imported == c or imported.startswith(c + ".") for c in clients)
    ]
    assert offenders == []


def test_tree_loads_with_requests_blocked() -> None:
    """Import every tree module in a fresh interpreter where ``import requests`` fails."""
    tree_modules = sorted(n for n in _modules() if n.startswith("morgan_like.tree"))
    code = (
        "import sys\n"
        "sys.modules['requests'] = None\n"
        "sys.modules['urllib3'] = None\n"
        f"for name in {tree_modules!r}:\n"
        "    __import__(name)\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('morgan_like.index',"
        " 'morgan_like.resolve', 'morgan_like.fetch')))\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=PACKAGE.parent,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
