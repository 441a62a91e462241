"""Each command: its parsed options, resolved at the edge (edge.py), handed to its mode."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from morgan_like import __version__
from morgan_like.cli import edge
from morgan_like.output import Reporter

if TYPE_CHECKING:
    from morgan_like.modes.bucket import BucketRun


def _config(args: argparse.Namespace) -> Path | None:
    return edge.absolute(args.config) if args.config else None


def mirror(args: argparse.Namespace, reporter: Reporter) -> int:
    from morgan_like.modes.bundle import MirrorOptions, run_mirror

    bucket = edge.bucket_run(args.index_path, args.local_state, args.wait_lock, _config(args))
    options = MirrorOptions(
        index_path=edge.bundle_tree(str(bucket.working_tree) if bucket else args.index_path),
        config_path=_config(args),
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
        cross_host_redirects=args.cross_host_redirects,
    )
    if bucket is not None:
        return _on_bucket(bucket, options, run_mirror, reporter)
    return run_mirror(options, reporter)


def _on_bucket(
    bucket: BucketRun, options: Any, run: Callable[[Any, Reporter], int], reporter: Reporter
) -> int:
    """A sync or mirror of ``-i s3://...``: the mode runs on the working tree, then the
    bucket gets what it published (a dry run pushes nothing)."""
    from morgan_like.modes.bucket import run_on_bucket

    if options.dry_run:
        return run(options, reporter)
    return run_on_bucket(bucket, lambda root: run(options, reporter), reporter)


def _evicting(bucket: BucketRun | None) -> BucketRun | None:
    """sync knows a file it has from its state alone, so its working tree keeps no files
    once they are in the bucket (mirror looks for them on disk: it keeps them)."""
    import dataclasses

    return dataclasses.replace(bucket, evict=True) if bucket is not None else None


def sync(args: argparse.Namespace, reporter: Reporter) -> int:
    from morgan_like.modes.sync import SyncOptions, run_sync

    bucket = _evicting(
        edge.bucket_run(args.index_path, args.local_state, args.wait_lock, _config(args))
    )
    options = SyncOptions(
        index_path=edge.sync_tree(str(bucket.working_tree) if bucket else args.index_path),
        config_path=_config(args),
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
        cross_host_redirects=args.cross_host_redirects,
    )
    if bucket is not None:
        return _on_bucket(bucket, options, run_sync, reporter)
    return run_sync(options, reporter)


def server_argv(args: argparse.Namespace) -> list[str]:
    """``python3 server.py`` arguments for ``serve``: the tree, -H, -p, and every server.py
    flag given (the others keep server.py's defaults)."""
    from morgan_like.cli.flags import server_actions

    argv = ["-i", str(edge.disk_tree(args.index_path)), "-H", args.host, "-p", str(args.port)]
    if args.no_metadata:
        argv.append("--no-metadata")
    if args.quiet:
        argv.append("-q")
    given = vars(args)
    for action in server_actions():
        if action.dest not in given:
            continue
        option = action.option_strings[-1]
        value = given[action.dest]
        if action.nargs == 0:  # a switch: given, so on
            argv.append(option)
        else:
            for item in value if isinstance(value, list) else [value]:
                argv += [option, str(item)]
    return argv


def serve(args: argparse.Namespace, reporter: Reporter) -> int:
    from morgan_like.modes import serve as server

    return server.run(server_argv(args))


def verify(args: argparse.Namespace, reporter: Reporter) -> int:
    """The same offline check as ``python3 server.py --verify``: every file against its page
    (--provenance: and its PEP 740 provenance); with --repair / --remove-unreferenced, the
    tree is then mended first (modes.treecheck)."""
    from morgan_like.modes import serve as server
    from morgan_like.modes.bucket import is_bucket_url

    if is_bucket_url(args.index_path):
        return _verify_bucket(args, reporter)
    root = edge.disk_tree(args.index_path)
    check = ["--verify", *(["--provenance"] if args.provenance else []), "-i", str(root)]
    mending = args.repair or args.remove_unreferenced
    if args.index_url and not args.repair:
        raise edge.Refused("verify uses -I only with --repair (where broken files come from)")
    if args.wait_lock is not None and not mending:
        raise edge.Refused(
            "verify uses --wait-lock only with --repair or --remove-unreferenced "
            "(a check alone takes no lock)"
        )
    if mending:
        from morgan_like.modes.treecheck import run_treecheck

        mended = run_treecheck(
            root,
            reporter,
            repair=args.repair,
            remove_unreferenced=args.remove_unreferenced,
            index_url=args.index_url,
            wait_lock=args.wait_lock,
        )
        return server.run(check) or mended
    return server.run(check)


def _verify_bucket(args: argparse.Namespace, reporter: Reporter) -> int:
    from morgan_like.modes.bucket import verify_bucket_url

    if args.provenance:
        raise edge.Refused(
            f"verify -i {args.index_path} checks the bucket's files against its pages; "
            "--provenance works on trees on local disk only"
        )
    if args.index_url and not args.repair:
        raise edge.Refused("verify uses -I only with --repair (where broken files come from)")
    bucket = edge.bucket_run(args.index_path, args.local_state, args.wait_lock)
    assert bucket is not None
    if args.repair or args.remove_unreferenced:
        from morgan_like.modes.bucket_repair import run_bucket_repair

        return run_bucket_repair(
            bucket,
            reporter,
            repair=args.repair,
            remove_unreferenced=args.remove_unreferenced,
            index_url=args.index_url,
        )
    if args.wait_lock is not None:
        raise edge.Refused(
            "verify uses --wait-lock only with --repair or --remove-unreferenced "
            "(a check alone takes no lock)"
        )
    # the working tree's morgan.ini may say where the bucket is ([storage])
    return verify_bucket_url(bucket.target, reporter, bucket.storage)


def genlocal(args: argparse.Namespace, reporter: Reporter) -> int:
    from morgan_like.modes.genlocal import run_genlocal

    return run_genlocal(
        edge.not_a_bundle(edge.disk_tree(args.index_path), "genlocal"),
        reporter,
        source=edge.tree_path(args.source, "--from") if args.source else None,
        wait_lock=args.wait_lock,
    )


def copy_server(args: argparse.Namespace, reporter: Reporter) -> int:
    from morgan_like.modes import serve as server
    from morgan_like.tree.generations import record_generation
    from morgan_like.tree.lock import TreeLock
    from morgan_like.tree.state import TreeState
    from morgan_like.tree.writer import TreeWriter

    root = edge.disk_tree(args.index_path)
    root.mkdir(parents=True, exist_ok=True)
    lock = TreeLock(root, "copy_server", wait=args.wait_lock, on_wait=reporter.info)
    with lock, TreeState(root) as state:
        writer = TreeWriter(root, state, on_problem=reporter.warn)
        changed = writer.write_file("server.py", server.server_source().read_bytes())
        manifest = writer.write_manifest()
        if changed:  # the sites this tree feeds get the new server.py with the next export
            record_generation(state, ["server.py", *manifest], ())
            state.commit()
    reporter.info(f"{'copied' if changed else 'up to date'}: {root / 'server.py'}")
    return 0


def export(args: argparse.Namespace, reporter: Reporter) -> int:
    from morgan_like.modes.export import DEFAULT_VOLUME_SIZE, ExportOptions, run_export

    if args.list_sites and (args.output or args.site or args.receipt or args.full):
        raise edge.Refused("export --list-sites only lists: give it -i alone")
    if args.full and args.since is not None:
        raise edge.Refused("export takes --full or --since GEN, not both")
    bucket = edge.bucket_run(args.index_path, args.local_state)
    options = ExportOptions(
        index_path=bucket.working_tree if bucket else edge.disk_tree(args.index_path),
        output=edge.absolute(args.output) if args.output else None,
        site=args.site,
        volume_size=args.volume_size or DEFAULT_VOLUME_SIZE,
        full=args.full,
        since=args.since,
        list_sites=args.list_sites,
        receipt=edge.absolute(args.receipt) if args.receipt else None,
        hmac_key_file=edge.absolute(args.hmac_key_file) if args.hmac_key_file else None,
    )
    if bucket is not None:
        from morgan_like.modes.bucket_export import run_bucket_export

        return run_bucket_export(bucket, options, reporter)
    return run_export(options, reporter)


def nginx_config(args: argparse.Namespace, reporter: Reporter) -> int:
    from morgan_like.modes.nginx import render_nginx_config

    bucket = edge.bucket_run(args.index_path, args.local_state)
    if bucket is not None:
        from morgan_like.modes.nginx_bucket import render_bucket_config

        if not (bucket.working_tree / "simple").is_dir():
            reporter.warn(
                f"no working tree at {bucket.working_tree} (give the --local-state the sync "
                "used): the config redirects no misspelt project names until rendered again"
            )
        sys.stdout.write(render_bucket_config(bucket, args.host, args.port))
        return 0
    root = edge.disk_tree(args.index_path)
    if not (root / "simple").is_dir():
        raise edge.Refused(f"-i {root} is no tree (it has no simple/): nothing to serve")
    sys.stdout.write(render_nginx_config(root, args.host, args.port))
    return 0


def generate_env(args: argparse.Namespace, reporter: Reporter) -> int:
    from morgan_like.targets.generate import generate_env as block

    sys.stdout.write(block(args.env))
    return 0


def generate_reqs(args: argparse.Namespace, reporter: Reporter) -> int:
    from morgan_like.targets.generate import generate_reqs as block

    sys.stdout.write(block(args.mode))
    return 0


def genconfig(args: argparse.Namespace, reporter: Reporter) -> int:
    """The translated config on stdout; each option left untranslated also on stderr."""
    from morgan_like.config.bandersnatch import translate_file

    if not args.from_bandersnatch:
        raise edge.Refused("genconfig needs --from-bandersnatch FILE (the config to translate)")
    translation = translate_file(edge.absolute(args.from_bandersnatch))
    sys.stdout.write(translation.text())
    for item in translation.untranslated:
        reporter.warn(f"not translated: {item}")
    return 0


def version(args: argparse.Namespace, reporter: Reporter) -> int:
    print(f"morgan-like {__version__}")
    return 0


RUNNERS: dict[str, Callable[[argparse.Namespace, Reporter], int]] = {
    "mirror": mirror,
    "sync": sync,
    "verify": verify,
    "genlocal": genlocal,
    "serve": serve,
    "export": export,
    "copy_server": copy_server,
    "nginx-config": nginx_config,
    "generate_env": generate_env,
    "generate_reqs": generate_reqs,
    "genconfig": genconfig,
    "version": version,
}
