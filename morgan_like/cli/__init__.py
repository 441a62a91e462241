"""Command line: morgan 0.15's commands and flags, with the same meaning, plus ours.

* ``commandtable.py``: every command, its summary and its help head;
* ``flags.py``: every flag, and which commands take each flag;
* ``values.py``: each flag's value checked as it is parsed;
* ``parse.py``: ``morgan-like [FLAGS] COMMAND [FLAGS]``, one parser per command;
* ``edge.py``: paths made absolute once, and the kind of tree each command may write;
* ``commands.py``: each command's options handed to its mode.

Whatever goes wrong reaches the user as one message and an exit code, never a
traceback: a refused command line exits 2, an error of the run its own code, and
anything unforeseen one line beginning "unexpected" (a bug; ``-v`` shows the traceback).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from morgan_like.errors import MorganLikeError
from morgan_like.output import Reporter

__all__ = ["main", "run"]


def run() -> NoReturn:
    """The console script (and ``python -m morgan_like``): ``main``, then a quick exit.

    A run ends holding every page record it read (a bundle: some 100 MB), and an
    interpreter's teardown frees them object by object, a sizeable share of a short
    run spent on nothing anyone waits for.  Everything a run writes is
    closed (and fsynced) before ``main`` returns, its worker processes and threads
    are stopped, so only the output buffers are left to flush.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (| head)
            stream.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    from morgan_like.cli.commands import RUNNERS
    from morgan_like.cli.edge import Refused
    from morgan_like.cli.parse import PROG, CommandLineError, HelpShown, parse_command_line

    try:
        parsed = parse_command_line(argv)
    except HelpShown:
        return 0
    except CommandLineError as exc:
        sys.stderr.write(f"{exc}\n")
        return exc.exit_code
    args = parsed.args
    reporter = Reporter(verbosity=max(0, 1 + args.verbose - args.quiet))
    try:
        return RUNNERS[parsed.command](args, reporter)
    except Refused as exc:
        refused = CommandLineError(f"{PROG} {parsed.command}", str(exc))
        sys.stderr.write(f"{refused}\n")
        return refused.exit_code
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
