"""Which file pip on each env would choose: tags, ABIs, glibc floors, package types."""

from __future__ import annotations

from morgan_like.dists.links import RemoteFile
from morgan_like.resolve.candidates import FileFilter, best_wheel, pick_files, usable_files

from ..helpers import WINDOWS, env

NATIVE = [
    "native-1.0-cp37-cp37m-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "native-1.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "native-1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
    "native-1.0-cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "native-1.0-cp313-cp313t-manylinux_2_17_x86_64.whl",
    "native-1.0-cp312-cp312-win_amd64.whl",
    "native-1.0-cp312-cp312-win32.whl",
    "native-1.0-cp38-abi3-macosx_11_0_arm64.whl",
    "native-1.0-cp38-abi3-macosx_10_9_universal2.whl",
    "native-1.0.tar.gz",
    "native-1.0.zip",
]


def files(names=NATIVE):
    return [RemoteFile(filename=n, url=f"http://127.0.0.1/{n}") for n in names]


def chosen(environment) -> str | None:
    wheel = best_wheel(files(), environment)
    return wheel.filename if wheel else None


def test_cp312_prefers_its_own_abi_within_the_glibc_floor():
    assert chosen(env("e", "3.12.1")) == NATIVE[1]


def test_newer_glibc_env_prefers_newer_manylinux():
    assert chosen(env("e", "3.12.1", manylinux="2.28")) == NATIVE[2]


def test_cp37_gets_its_cp37m_wheel():
    assert chosen(env("e", "3.7.16")) == NATIVE[0]


def test_cp313_gets_abi3_not_free_threaded():
    assert chosen(env("e", "3.13.0")) == NATIVE[3]


def test_free_threaded_env_gets_cp313t():
    assert chosen(env("e", "3.13.0", free_threaded="true")) == NATIVE[4]


def test_windows_amd64_and_win32():
    assert chosen(env("w", "3.12.7", WINDOWS)) == NATIVE[5]
    assert chosen(env("w", "3.12.7", dict(WINDOWS, platform_machine="x86"))) == NATIVE[6]


def test_macos_arm64_prefers_the_thin_wheel():
    mac = {
        "os_name": "posix",
        "sys_platform": "darwin",
        "platform_machine": "arm64",
        "platform_system": "Darwin",
        "platform_python_implementation": "CPython",
        "implementation_name": "cpython",
    }
    assert chosen(env("m", "3.12.1", mac)) == NATIVE[7]


def test_pick_files_adds_one_sdist_preferring_tar_gz():
    picked = [f.filename for f in pick_files(files(), env("e", "3.12.1"))]
    assert picked == [NATIVE[1], "native-1.0.tar.gz"]


def test_all_wheels_keeps_every_compatible_wheel_best_first():
    picked = [f.filename for f in pick_files(files(), env("e", "3.12.1"), all_wheels=True)]
    assert picked[:2] == [NATIVE[1], NATIVE[3]]
    assert "native-1.0.tar.gz" in picked and NATIVE[2] not in picked


def test_package_type_regex_filters_by_extension():
    only_wheels = FileFilter(r"whl")
    usable = usable_files(files(), env("e", "3.12.1"), only_wheels)
    assert usable and all(f.is_wheel for f in usable)


def test_requires_python_filters_files():
    rp = [
        RemoteFile(filename="a-2.0-py3-none-any.whl", url="u1", requires_python=">=3.8"),
        RemoteFile(filename="a-1.0-py3-none-any.whl", url="u2", requires_python=">=3.6"),
        RemoteFile(filename="a-0.9-py3-none-any.whl", url="u3", requires_python=">=3.6.*,"),
    ]
    usable = [f.filename for f in usable_files(rp, env("e", "3.7.16"), FileFilter())]
    assert usable == ["a-1.0-py3-none-any.whl", "a-0.9-py3-none-any.whl"]
