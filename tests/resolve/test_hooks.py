"""Running PEP 517 hooks of an sdist in a throw-away isolated environment."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from morgan_like.dists.metadata import parse_core_metadata
from morgan_like.dists.sdist import LEGACY_BACKEND, BuildSystem
from morgan_like.errors import MetadataError
from morgan_like.resolve.hooks import (
    Platform,
    dynamic_build_requires,
    hook_metadata,
    install_wheels,
    read_build_system,
    source_root,
    unpack_archive,
)
from tests.backends import make_fake_setuptools_wheels, make_mesonlike_wheels
from tests.distbuilder import make_sdist, make_tiny_backend_wheel, write_sdist

LINUX = Platform("linux", "Linux", "x86_64")
WINDOWS = Platform("win32", "Windows", "AMD64")


def _unpacked(sdist: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "src"
    unpack_archive(sdist, dest)
    return source_root(dest)


def _site(tmp_path: Path, wheels: list[Path]) -> Path:
    site = tmp_path / "site"
    install_wheels(wheels, site)
    return site


def test_mesonlike_asks_for_its_tools_per_platform(tmp_path: Path) -> None:
    sdist = make_sdist(
        tmp_path / "dl", "sci", "1.0", build_requires=["mesonlike"], build_backend="mesonlike"
    )
    source = _unpacked(sdist, tmp_path)
    system = read_build_system(source, sdist.name)
    assert [str(r) for r in system.requires] == ["mesonlike"]
    site = _site(tmp_path, make_mesonlike_wheels(tmp_path / "wheels"))
    linux = dynamic_build_requires(source, system, site, LINUX)
    windows = dynamic_build_requires(source, system, site, WINDOWS)
    assert [str(r) for r in linux] == ["mlninja", "mlpatchelf"]
    assert [str(r) for r in windows] == ["mlninja"]


def test_legacy_sdist_metadata_comes_from_running_setup_py(tmp_path: Path) -> None:
    sdist = make_sdist(
        tmp_path / "dl",
        "oldie",
        "0.9",
        requires_dist=["alpha>=1", "beta; python_version < '3.8'"],
        pkg_info_metadata_version="1.0",
        include_requires_dist_in_pkg_info=False,
        build_requires=None,
        build_backend=None,
    )
    source = _unpacked(sdist, tmp_path)
    system = read_build_system(source, sdist.name)
    assert system.backend == LEGACY_BACKEND
    assert {str(r) for r in system.requires} == {"setuptools>=40.8.0", "wheel"}
    site = _site(tmp_path, make_fake_setuptools_wheels(tmp_path / "wheels"))
    meta = parse_core_metadata(hook_metadata(source, system, site), "oldie")
    assert [str(r) for r in meta.requires_dist] == ["alpha>=1", 'beta; python_version < "3.8"']


def test_backend_without_prepare_metadata_is_built(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path / "dl", "plain", "2.0", requires_dist=["gamma"])
    source = _unpacked(sdist, tmp_path)
    site = _site(tmp_path, [make_tiny_backend_wheel(tmp_path / "wheels")])
    shim = site / "nometa.py"
    shim.write_text("from tinybackend import build_wheel, get_requires_for_build_wheel\n")
    meta = parse_core_metadata(hook_metadata(source, BuildSystem((), "nometa"), site), "plain")
    assert [str(r) for r in meta.requires_dist] == ["gamma"]


def test_hook_cannot_see_the_hosts_site_packages(tmp_path: Path) -> None:
    """``packaging`` is installed here, but the hook's environment holds only its wheels."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "probe.py").write_text(
        "def get_requires_for_build_wheel(config_settings=None):\n"
        "    import packaging\n"
        "    return []\n"
    )
    system = BuildSystem((), "probe", (".",))
    with pytest.raises(MetadataError, match="ModuleNotFoundError.*packaging"):
        dynamic_build_requires(source, system, tmp_path, LINUX)


def test_hook_timeout_and_bad_answers_are_errors(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "slow.py").write_text(
        "import time\ndef get_requires_for_build_wheel(config_settings=None):\n    time.sleep(30)\n"
    )
    (source / "odd.py").write_text(
        "def get_requires_for_build_wheel(config_settings=None):\n    return 'ninja'\n"
    )
    with pytest.raises(MetadataError, match="took longer than 1s"):
        dynamic_build_requires(source, BuildSystem((), "slow", (".",)), tmp_path, LINUX, timeout=1)
    with pytest.raises(MetadataError, match="not a list of requirements"):
        dynamic_build_requires(source, BuildSystem((), "odd", (".",)), tmp_path, LINUX)
    with pytest.raises(MetadataError, match="leaves the source tree"):
        dynamic_build_requires(source, BuildSystem((), "odd", ("..",)), tmp_path, LINUX)


def test_unpack_skips_escaping_members_and_caps_size(tmp_path: Path) -> None:
    bad = tmp_path / "bad-1.0.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, data in (("../evil", b"x"), ("/abs", b"y"), ("bad-1.0/ok.txt", b"z" * 100)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("bad-1.0/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    bad.write_bytes(buffer.getvalue())
    dest = tmp_path / "out"
    unpack_archive(bad, dest)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "bad-1.0",
        "bad-1.0/ok.txt",
    ]
    assert not (tmp_path / "evil").exists()
    with pytest.raises(MetadataError, match="inflates past"):
        unpack_archive(bad, tmp_path / "small", limit=50)


def test_build_system_errors_name_the_sdist(tmp_path: Path) -> None:
    top = tmp_path / "x-1.0.tar.gz"
    write_sdist(top, "x-1.0", {"pyproject.toml": b"[build-system]\nbuild-backend = 'b'\n"})
    with pytest.raises(
        MetadataError, match="x-1.0.tar.gz: pyproject.toml \\[build-system\\] has no"
    ):
        read_build_system(_unpacked(top, tmp_path), top.name)
    assert read_build_system(tmp_path, "none").requires == (
        Requirement("setuptools>=40.8.0"),
        Requirement("wheel"),
    )


def test_a_member_too_big_is_refused_from_its_header(tmp_path: Path) -> None:
    big = tmp_path / "big-1.0.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        info = tarfile.TarInfo("big-1.0/blob")
        info.size = 10_000
        tf.addfile(info, io.BytesIO(b"\0" * 10_000))
    big.write_bytes(buffer.getvalue())
    with pytest.raises(MetadataError, match="inflates past"):
        unpack_archive(big, tmp_path / "out", limit=5_000)
    assert not (tmp_path / "out" / "big-1.0" / "blob").exists(), "nothing inflated"
