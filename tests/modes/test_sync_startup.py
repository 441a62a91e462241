"""A full mirror's start-up: what ``sync`` imports when its config has no allowlist.

Each import here costs every run, the no-op nightly one most of all: the curated
slice's machinery (the resolver, the bundle's pages and views, the SBOM) and the
bundle's config reader (requirements files, locks, pyproject.toml) are imported
only by the runs that use them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from morgan_like.config.syncconf import load_sync_config

_LOADED = """
import json, sys
import morgan_like.cli.commands
from morgan_like.modes.sync import run_sync
from morgan_like.config.syncconf import SyncConfig
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("morgan_like", "xmlrpc")))))
"""

NOT_FOR_A_FULL_MIRROR = (
    "morgan_like.modes.slice",
    "morgan_like.modes.bundle",
    "morgan_like.resolve.resolver",
    "morgan_like.tree.sbom",
    "morgan_like.config.allowlist",
    "morgan_like.config.ini",
    "morgan_like.config.pyproject",
    "morgan_like.config.reqfiles",
    "xmlrpc.client",  # Warehouse's older serial API: asked only when the root has none
)


def test_sync_imports_neither_the_slice_nor_the_bundle_config() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _LOADED], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out))
    assert loaded.isdisjoint(NOT_FOR_A_FULL_MIRROR), loaded & set(NOT_FOR_A_FULL_MIRROR)


def test_a_config_without_allowlist_reads_as_before(tmp_path: Path) -> None:
    conf = tmp_path / "morgan.ini"
    conf.write_text("[sync]\nexclude = ^bad-.*\nindex-only = true\n")
    config = load_sync_config(conf)
    assert config.allowlist == ()
    assert config.requirement_lines == ()
    assert config.constraints == ()
    assert config.with_dependencies is False
    assert config.warnings == ()
    assert list(config.excludes) == ["^bad-.*"]
