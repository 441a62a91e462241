"""A translated bandersnatch.conf keeps what bandersnatch 8.2 keeps, on the same upstream.

One fake upstream (tests/fakeindex.py) is synced whole into a tree whose server.py is
the master both mirrors read: bandersnatch reads ``/pypi/<project>/json``, which the
fake index does not serve; ours reads ``/simple/``.  bandersnatch runs from the prepared
venv (``.ci/run`` makes ~/.cache/morgan-like-test-bandersnatch; the test is skipped
without it) with a config using an allowlist, ``latest_release``, ``exclude_platform``
and a size filter; ``morgan-like genconfig --from-bandersnatch`` translates that config
and ``morgan-like sync -c`` runs it: the files under packages/ are the same.  Then the
same translation with ``with-dependencies = true`` and an [env.NAME]: ours holds exactly
bandersnatch's files plus the dependencies the resolver picks, listed below.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from morgan_like.cli import main

from ..clients import client_env
from ..fakeindex import FakeIndex
from ..helpers import ini_env_block, sdist, wheel
from ..server_support import SubprocessServer
from .sync_support import sync

pytestmark = pytest.mark.e2e
VENV = Path.home() / ".cache" / "morgan-like-test-bandersnatch" / "venv"
BANDERSNATCH = VENV / "bin" / "bandersnatch"
PLATFORMS = ("manylinux_2_17_x86_64", "win_amd64", "macosx_11_0_arm64")


def _upstream(index: FakeIndex, dists: Path) -> None:
    """alpha and gamma allowlisted (several releases; alpha with a wheel per platform,
    gamma with one file larger than the size filter); beta and delta their dependencies;
    other is not allowlisted."""
    for version in ("1.0", "1.1", "2.0", "2.1"):
        needs = ["beta<2"] if version.startswith("1.") else ["beta>=1"]
        for platform in PLATFORMS:
            wheel(
                index, dists, "alpha", version, requires_dist=needs, tag=f"cp312-cp312-{platform}"
            )
        sdist(index, dists, "alpha", version, requires_dist=needs)
    wheel(index, dists, "gamma", "1.0", requires_dist=["delta"])
    wheel(index, dists, "gamma", "2.0", requires_dist=["delta"], pad_bytes=1_500_000)
    sdist(index, dists, "gamma", "2.0", requires_dist=["delta"])
    for version in ("1.0", "2.0"):
        wheel(index, dists, "beta", version)
    wheel(index, dists, "delta", "1.0")
    sdist(index, dists, "delta", "1.0")
    wheel(index, dists, "other", "1.0")


def _conf(where: Path, master: str) -> Path:
    conf = where / "bandersnatch.conf"
    conf.write_text(
        "[mirror]\n"
        f"directory = {where / 'bandersnatch'}\n"
        f"master = {master}\n"
        "allow-non-https = true\n"
        "workers = 2\n"
        "\n[plugins]\nenabled =\n    allowlist_project\n    latest_release\n"
        "    exclude_platform\n    size_project_metadata\n"
        "\n[allowlist]\npackages =\n    alpha\n    Gamma\n"
        "\n[latest_release]\nkeep = 2\n"
        "\n[blocklist]\nplatforms =\n    windows\n    macos\n"
        # gamma's files add up to more, but an allowlisted project is exempt: no effect
        "\n[size_project_metadata]\nmax_package_size = 1M\n"
    )
    return conf


def _bandersnatch(conf: Path) -> None:
    run = subprocess.run(
        [str(BANDERSNATCH), "-c", str(conf), "mirror"],
        env=dict(client_env(), HOME=str(conf.parent)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


def _files(packages: Path) -> set[str]:
    return {p.relative_to(packages).as_posix() for p in packages.rglob("*") if p.is_file()}


def _genconfig(conf: Path, capsys) -> str:
    capsys.readouterr()
    assert main(["genconfig", "--from-bandersnatch", str(conf)]) == 0
    out, err = capsys.readouterr()
    assert err == ""  # everything in this config has a faithful translation
    return out


def test_a_translated_bandersnatch_conf_keeps_the_same_files(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys
) -> None:
    if not BANDERSNATCH.exists():
        pytest.skip(f"bandersnatch 8.2 not prepared in {VENV}")
    _upstream(fake_index, dists)
    master = tmp_path / "master"
    assert sync(master, fake_index).rc == 0
    with SubprocessServer(master) as server:
        conf = _conf(tmp_path, f"http://127.0.0.1:{server.port}")
        _bandersnatch(conf)
        theirs = _files(tmp_path / "bandersnatch" / "web" / "packages")

        translated = _genconfig(conf, capsys)
        assert "keep-latest = 2" in translated and "with-dependencies = false" in translated
        ini = tmp_path / "translated.ini"
        ini.write_text(translated)
        ours = tmp_path / "ours"
        assert main(["sync", "-i", str(ours), "-c", str(ini), "-q"]) == 0
        assert _files(ours / "packages") == theirs

        kept = {f for f in theirs if not f.endswith(".metadata")}
        assert kept == {
            "alpha/alpha-2.0-cp312-cp312-manylinux_2_17_x86_64.whl",
            "alpha/alpha-2.0.tar.gz",
            "alpha/alpha-2.1-cp312-cp312-manylinux_2_17_x86_64.whl",
            "alpha/alpha-2.1.tar.gz",
            "gamma/gamma-1.0-py3-none-any.whl",
            "gamma/gamma-2.0-py3-none-any.whl",
            "gamma/gamma-2.0.tar.gz",
        }

        # The same translation with dependencies, for one env: bandersnatch's files plus
        # what the resolutions of alpha 2.0, 2.1 and gamma 1.0, 2.0 pick (beta 2.0, the
        # newest beta>=1; delta 1.0), nothing else: not beta 1.0 (only alpha 1.x, pushed
        # out by keep-latest, needs it), nor other.
        with_deps = translated.replace("with-dependencies = false", "with-dependencies = true")
        ini.write_text(with_deps + "\n" + ini_env_block("linux", "3.12.4"))
        deps = tmp_path / "with-deps"
        assert main(["sync", "-i", str(deps), "-c", str(ini), "-q"]) == 0
        added = _files(deps / "packages") - theirs
        assert _files(deps / "packages") >= theirs
        assert added == {
            "beta/beta-2.0-py3-none-any.whl",
            "beta/beta-2.0-py3-none-any.whl.metadata",
            "delta/delta-1.0-py3-none-any.whl",
            "delta/delta-1.0-py3-none-any.whl.metadata",
            "delta/delta-1.0.tar.gz",  # a picked release's sdist is kept, as in a bundle
        }
