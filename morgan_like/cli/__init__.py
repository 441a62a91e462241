"""Command line: every command and flag of morgan 0.15, with the same meaning, plus ours.

Morgan's form is ``morgan [options] COMMAND``; options may come before or after
the command, so existing scripts and muscle memory keep working.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from morgan_like import __version__
from morgan_like.errors import MorganLikeError
from morgan_like.output import Reporter
from morgan_like.resolve.candidates import DEFAULT_PACKAGE_TYPE_REGEX

COMMANDS = (
    "generate_env",
    "generate_reqs",
    "mirror",
    "sync",
    "genlocal",
    "serve",
    "copy_server",
    "version",
    "verify",
    "nginx-config",
)
# serve flags handed to server.py unchanged (see `python3 server.py --help`).
SERVER_PASSTHROUGH = (
    "threads",
    "timeout",
    "access_log",
    "log_format",
    "certfile",
    "keyfile",
    "auth_file",
)


def _url(value: str) -> str:
    from urllib.parse import urlparse

    from morgan_like.config.options import DEFAULT_INDEX_URL

    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise argparse.ArgumentTypeError(
            f"not an index URL: {value!r} (expected e.g. {DEFAULT_INDEX_URL})"
        )
    return value if value.endswith("/") else value + "/"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="morgan-like",
        description="Build offline PyPI bundles that real pip and uv install from.",
        epilog="Example: morgan-like mirror -i ./bundle   (reads ./bundle/morgan.ini)",
    )
    parser.add_argument("command", choices=COMMANDS, help="command to execute")
    tree = parser.add_argument_group("tree and config")
    tree.add_argument(
        "-i", "--index-path", default=os.getcwd(), help="path of the bundle tree (default: cwd)"
    )
    tree.add_argument(
        "-I",
        "--index-url",
        type=_url,
        help="upstream index (default: pip's configured index, else PyPI)",
    )
    tree.add_argument(
        "-c", "--config", nargs="?", help="config file (default: <INDEX_PATH>/morgan.ini)"
    )
    tree.add_argument(
        "--skip-server-copy", action="store_true", help="do not copy server.py into the tree"
    )
    sel = parser.add_argument_group("what to mirror")
    sel.add_argument(
        "-a",
        "--mirror-all-versions",
        action="store_true",
        help="for top-level requirements, mirror every matching version (each with its dependencies)",
    )
    sel.add_argument(
        "--package-type-regex",
        default=None,
        help=f"regex on the file extension of files to mirror (default: {DEFAULT_PACKAGE_TYPE_REGEX})",
    )
    sel.add_argument(
        "-W",
        "--mirror-all-wheels",
        action="store_true",
        help="for top-level requirements, mirror every compatible wheel, not only the one pip would pick",
    )
    sel.add_argument(
        "--pre", action="store_true", help="allow prereleases everywhere (as pip --pre)"
    )
    sel.add_argument(
        "--no-prefer-binary",
        dest="prefer_binary",
        action="store_false",
        default=None,
        help="pick the newest version that satisfies, even when only an older one has a wheel "
        "for the env (default: binary first, as pip --prefer-binary; or [mirror] prefer-binary)",
    )
    sel.add_argument(
        "--static-metadata-only",
        action="store_true",
        help="never run an sdist's build backend to learn its dependencies or build "
        "requirements; stop instead when they are not static",
    )
    run = parser.add_argument_group("mirror run")
    run.add_argument(
        "--dry-run", action="store_true", help="resolve and print the plan; download only metadata"
    )
    run.add_argument("--workers", type=int, default=None, help="parallel downloads (default: 32)")
    run.add_argument("--diff-file", help="write the paths this run created or changed to this file")
    run.add_argument(
        "--diff-append-epoch", action="store_true", help="append -<epoch> to the diff-file name"
    )
    run.add_argument("--prune", action="store_true", help="remove files no longer in the plan")
    run.add_argument(
        "--wait-lock",
        nargs="?",
        type=float,
        const=math.inf,
        default=None,
        metavar="SECONDS",
        help="when another run is writing the tree, wait for it (at most SECONDS, default: "
        "as long as it takes) instead of stopping at once (mirror, copy_server)",
    )
    sync = parser.add_argument_group("sync (a whole index, or a filtered slice)")
    sync.add_argument(
        "--serial-source",
        choices=("auto", "simple", "xmlrpc", "local-json", "names"),
        default=None,
        help="where the upstream's serial list comes from: its PEP 691 root index, XML-RPC "
        "list_packages_with_serial, another mirror's local.json, or (names) the root index's "
        "names without serials, every page fetched each run (default: auto, in that order)",
    )
    sync.add_argument(
        "--index-only",
        action="store_true",
        default=None,
        help="write pages only, linking the upstream's file URLs; download no files",
    )
    sync.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="REGEX",
        help="leave out projects whose normalized name matches (at its start); repeatable",
    )
    sync.add_argument(
        "--prerelease-exclude",
        action="append",
        default=[],
        metavar="REGEX",
        help="leave out the prereleases of matching projects; repeatable",
    )
    sync.add_argument(
        "--max-deletions",
        type=int,
        default=None,
        metavar="N",
        help="refuse the whole run (deleting nothing) when more than N projects would be "
        "removed (default: 1%% of the tree's projects, at least 10)",
    )
    chk = parser.add_argument_group("verify")
    chk.add_argument(
        "--repair",
        action="store_true",
        help="after the report, fetch missing or corrupt files again (by name and sha256) "
        "from -I, else the upstream the last sync used, else morgan.ini's, else pip's index",
    )
    chk.add_argument(
        "--remove-unreferenced",
        action="store_true",
        help="delete the files under packages/ that no page links (after the report)",
    )
    gen_local = parser.add_argument_group("genlocal")
    gen_local.add_argument(
        "--from",
        dest="source",
        default=None,
        metavar="DIR",
        help="a tree written by bandersnatch or shadowmire to take over (default: -i itself)",
    )
    srv = parser.add_argument_group("serve")
    srv.add_argument("-H", "--host", default="0.0.0.0", help="host to listen on (default: 0.0.0.0)")
    srv.add_argument(
        "-p", "--port", type=int, default=8080, help="port to listen on (default: 8080)"
    )
    srv.add_argument(
        "--no-metadata", action="store_true", help="do not serve PEP 658 metadata files"
    )
    gen = parser.add_argument_group("generate_env / generate_reqs")
    gen.add_argument("-e", "--env", help="name of the environment section to generate")
    gen.add_argument(
        "-m", "--mode", choices=[">=", "==", "<="], default=">=", help="version operator"
    )
    out = parser.add_argument_group("output")
    out.add_argument("-v", "--verbose", action="count", default=0, help="more output")
    out.add_argument("-q", "--quiet", action="count", default=0, help="less output")
    return parser


def _mirror(args: argparse.Namespace, reporter: Reporter) -> int:
    from morgan_like.modes.bundle import MirrorOptions, run_mirror

    if args.workers is not None and args.workers < 1:
        raise MorganLikeError("--workers must be at least 1")
    options = MirrorOptions(
        index_path=Path(args.index_path),
        config_path=Path(args.config) if args.config else None,
        index_url=args.index_url,
        mirror_all_versions=args.mirror_all_versions,
        mirror_all_wheels=args.mirror_all_wheels,
        package_type_regex=args.package_type_regex,
        pre=args.pre,
        dry_run=args.dry_run,
        workers=args.workers,
        diff_file=args.diff_file,
        diff_append_epoch=args.diff_append_epoch,
        prune=args.prune,
        skip_server_copy=args.skip_server_copy,
        wait_lock=args.wait_lock,
        prefer_binary=args.prefer_binary,
        static_metadata_only=args.static_metadata_only,
    )
    return run_mirror(options, reporter)


def _sync(args: argparse.Namespace, reporter: Reporter) -> int:
    from morgan_like.modes.sync import SyncOptions, run_sync

    if args.workers is not None and args.workers < 1:
        raise MorganLikeError("--workers must be at least 1")
    if args.max_deletions is not None and args.max_deletions < 0:
        raise MorganLikeError("--max-deletions must be 0 or more")
    options = SyncOptions(
        index_path=Path(args.index_path),
        config_path=Path(args.config) if args.config else None,
        index_url=args.index_url,
        serial_source=args.serial_source,
        index_only=args.index_only,
        excludes=tuple(args.exclude),
        prerelease_excludes=tuple(args.prerelease_exclude),
        max_deletions=args.max_deletions,
        dry_run=args.dry_run,
        workers=args.workers,
        diff_file=args.diff_file,
        diff_append_epoch=args.diff_append_epoch,
        skip_server_copy=args.skip_server_copy,
        wait_lock=args.wait_lock,
    )
    return run_sync(options, reporter)


def _serve(args: argparse.Namespace) -> int:
    from morgan_like.modes import serve

    argv = ["-i", args.index_path, "-H", args.host, "-p", str(args.port)]
    if args.no_metadata:
        argv.append("--no-metadata")
    if args.quiet:
        argv.append("-q")
    for name in SERVER_PASSTHROUGH:
        value = getattr(args, name)
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    return serve.run(argv)


def _verify(args: argparse.Namespace, reporter: Reporter) -> int:
    """The same offline check as ``python3 server.py --verify``: every file against its page;
    with --repair / --remove-unreferenced, the tree is then mended (modes.treecheck)."""
    from morgan_like.modes import serve

    if args.repair or args.remove_unreferenced:
        from morgan_like.modes.treecheck import run_treecheck

        mended = run_treecheck(
            Path(args.index_path),
            reporter,
            repair=args.repair,
            remove_unreferenced=args.remove_unreferenced,
            index_url=args.index_url,
            wait_lock=args.wait_lock,
        )
        return serve.run(["--verify", "-i", args.index_path]) or mended
    return serve.run(["--verify", "-i", args.index_path])


def _genlocal(args: argparse.Namespace, reporter: Reporter) -> int:
    from morgan_like.modes.genlocal import run_genlocal

    return run_genlocal(
        Path(args.index_path),
        reporter,
        source=Path(args.source) if args.source else None,
        wait_lock=args.wait_lock,
    )


def _copy_server(args: argparse.Namespace, reporter: Reporter) -> int:
    from morgan_like.modes import serve
    from morgan_like.tree.lock import TreeLock
    from morgan_like.tree.state import TreeState
    from morgan_like.tree.writer import TreeWriter

    root = Path(args.index_path)
    root.mkdir(parents=True, exist_ok=True)
    lock = TreeLock(root, "copy_server", wait=args.wait_lock, on_wait=reporter.info)
    with lock, TreeState(root) as state:
        writer = TreeWriter(root, state, on_problem=reporter.warn)
        changed = writer.write_file("server.py", serve.server_source().read_bytes())
        writer.write_manifest()
    reporter.info(f"{'copied' if changed else 'up to date'}: {root / 'server.py'}")
    return 0


def _nginx_config(args: argparse.Namespace) -> int:
    from morgan_like.modes.nginx import render_nginx_config

    sys.stdout.write(render_nginx_config(Path(args.index_path).resolve(), args.host, args.port))
    return 0


def run() -> NoReturn:
    """The console script (and ``python -m morgan_like``): ``main``, then a quick exit.

    A bundle run ends holding ~100 MB of page records; letting the interpreter free
    them object by object took 0.3 s of a 2.3 s run.  Everything a run writes is
    closed (and fsynced) before ``main`` returns, its worker processes and threads
    are stopped, so only the output buffers are left to flush.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (| head)
            stream.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    reporter = Reporter(verbosity=max(0, 1 + args.verbose - args.quiet))
    try:
        if args.command == "version":
            print(f"morgan-like {__version__}")
            return 0
        if args.command == "generate_env":
            from morgan_like.targets.generate import generate_env

            sys.stdout.write(generate_env(args.env))
            return 0
        if args.command == "generate_reqs":
            from morgan_like.targets.generate import generate_reqs

            sys.stdout.write(generate_reqs(args.mode))
            return 0
        if args.command == "serve":
            return _serve(args)
        if args.command == "copy_server":
            return _copy_server(args, reporter)
        if args.command == "verify":
            return _verify(args, reporter)
        if args.command == "genlocal":
            return _genlocal(args, reporter)
        if args.command == "nginx-config":
            return _nginx_config(args)
        if args.command == "sync":
            return _sync(args, reporter)
        return _mirror(args, reporter)
    except MorganLikeError as exc:
        reporter.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        reporter.error(
            "interrupted; the tree keeps every file completed so far and its previous indexes"
        )
        return 130
    except Exception as exc:  # a bug, or input nobody foresaw: one line, never a traceback
        import traceback

        text = str(exc).splitlines()[0] if str(exc) else ""
        what = f"{exc.__class__.__name__}{': ' + text[:300] if text else ''}"
        if args.verbose:
            traceback.print_exc(file=sys.stderr)
            reporter.error(f"unexpected {what} (traceback above)")
        else:
            reporter.error(f"unexpected {what}; re-run with -v for details")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
