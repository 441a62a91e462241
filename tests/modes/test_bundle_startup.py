"""A no-op bundle re-run's start-up: what it imports, and when its page check goes out.

A re-run whose config and upstream pages are unchanged replays its last plan: it
asks upstream for every page that plan read, and most of its wall time is the
interpreter importing the run's modules.  So the check is sent as soon as the run
has its Upstream, before the resolving session (resolver, hooks, sdist reads,
files ahead) is imported and built, and the modules of the steps a replay skips
(resolving, writing the tree's pages, publish) are never imported at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ..clients import client_env
from ..fakeindex import FakeIndex
from .test_bundle import mirror, write_config

# The re-run in a fresh interpreter: which modules it had imported when its page
# check was sent, and which by its end.
_RERUN = """
import json, sys
import morgan_like.modes.bundle_replay as replay

seen = {}
real = replay.PageCheck.__init__

def sent(self, *args, **kwargs):
    seen["at_check"] = sorted(sys.modules)
    real(self, *args, **kwargs)

replay.PageCheck.__init__ = sent
from morgan_like.cli import main
code = main(sys.argv[1:])
seen["at_end"] = sorted(sys.modules)
seen["code"] = code
sys.stderr.write(json.dumps(seen))
"""

# Built and imported only once the check is under way (a replay builds the session
# for its downloads: the files of the plan that are missing).
AFTER_THE_CHECK = (
    "morgan_like.modes.resolving",
    "morgan_like.modes.files_ahead",
    "morgan_like.resolve.builddeps",
    "morgan_like.resolve.buildenv",
    "morgan_like.resolve.hooks",
)

# Never imported by a replay that has nothing to write.
NOT_FOR_A_REPLAY = (
    "morgan_like.modes.bundle_locks",
    "morgan_like.modes.bundle_resolve",
    "morgan_like.modes.bundle_pages",
    "morgan_like.modes.bundle_targets",
    "morgan_like.tree.publish",
    "morgan_like.tree.sbom",
    "morgan_like.tree.licences",
    "morgan_like.tree.views",
    "morgan_like.tree.writer",
)


def _rerun(root: Path, index: FakeIndex) -> dict:
    cmd = [sys.executable, "-c", _RERUN, "mirror", "-q", "-i", str(root), "-I", index.url]
    done = subprocess.run(cmd, capture_output=True, text=True, env=client_env(), timeout=120)
    return json.loads(done.stderr)


def test_a_noop_rerun_sends_its_check_first_and_imports_no_step_it_skips(
    small: FakeIndex, tmp_path: Path
) -> None:
    root = tmp_path / "bundle"
    write_config(root, "app =\n")
    assert mirror(root, small) == 0
    small.reset_log()
    seen = _rerun(root, small)
    assert seen["code"] == 0
    gets = [r for r in small.requests if r.method == "GET"]
    assert gets and all(r.status == 304 for r in gets)  # replayed: only the pages asked
    at_check, at_end = set(seen["at_check"]), set(seen["at_end"])
    assert at_check.isdisjoint(AFTER_THE_CHECK), at_check & set(AFTER_THE_CHECK)
    assert at_end.isdisjoint(NOT_FOR_A_REPLAY), at_end & set(NOT_FOR_A_REPLAY)
