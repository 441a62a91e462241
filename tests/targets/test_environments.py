"""Environment: markers filled in, wheel tags derived as pip on the target would order them."""

from __future__ import annotations

import os
import platform
import sys

import pytest
from packaging.markers import Marker
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag, parse_tag, sys_tags

from morgan_like.config.envsections import environment_from_section
from morgan_like.errors import ConfigError
from morgan_like.targets.environments import MARKER_KEYS, Environment
from morgan_like.targets.generate import local_markers
from morgan_like.targets.tags import compress_tags, parse_tags

LINUX = {"sys_platform": "linux", "platform_machine": "x86_64"}
LEGACY = {  # morgan's README sample, verbatim
    "python_version": "3.9",
    "python_full_version": "3.9.9",
    "os_name": "posix",
    "platform_tag": "linux-x86_64",
    "sys_platform": "linux",
    "platform_machine": "i686",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "implementation_name": "cpython",
}
WINDOWS = {
    "os_name": "nt",
    "platform_tag": "win_amd64",
    "sys_platform": "win32",
    "platform_machine": "AMD64",
    "platform_python_implementation": "CPython",
    "platform_system": "Windows",
    "python_version": "3.12",
    "python_full_version": "3.12.7",
    "implementation_name": "cpython",
}


def env(name: str = "t", **keys: str) -> Environment:
    return environment_from_section(name, keys, file="morgan.ini")


def strs(e: Environment) -> list[str]:
    return [str(t) for t in e.tags]


def rank(e: Environment, tag: str) -> int:
    r = e.tag_priority(parse_tag(tag))
    assert r is not None, f"{tag} not accepted by {e.name}"
    return r


def config_error(**keys: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        environment_from_section("bad", keys, file="bundle/morgan.ini")
    err = info.value
    assert err.file == "bundle/morgan.ini"
    assert err.section == "env.bad"
    return err


# --- markers ---------------------------------------------------------------------------


def test_morgan_sample_markers_are_complete_and_host_independent():
    e = env("legacy", **LEGACY)
    assert set(e.markers) == set(MARKER_KEYS)
    assert e.markers["platform_release"] == "" and e.markers["platform_version"] == ""
    assert e.markers["implementation_version"] == "3.9.9"
    assert e.python_full_version.release == (3, 9, 9)
    w = env("windows", **WINDOWS)
    # Evaluated against the env, never against the machine running the tests.
    assert w.evaluate(Marker('sys_platform == "win32" and platform_machine == "AMD64"'))
    assert not e.evaluate(Marker('sys_platform == "win32"'))
    assert e.evaluate(Marker('python_version < "3.10" and platform_machine == "i686"'))


def test_markers_derived_from_few_keys():
    e = env(python_version="3.12", sys_platform="linux")
    assert e.markers["python_full_version"] == "3.12.0"  # as pip's --python-version 3.12
    assert e.markers["os_name"] == "posix"
    assert e.markers["platform_system"] == "Linux"
    assert e.markers["platform_machine"] == "x86_64"
    assert e.markers["implementation_name"] == "cpython"
    assert e.markers["platform_python_implementation"] == "CPython"
    assert env(python_full_version="3.11.2", platform_system="Windows").markers["sys_platform"] == (
        "win32"
    )
    mac = env(python_version="3.12", platform_tag="macosx-11.0-arm64")
    assert mac.markers["sys_platform"] == "darwin"
    assert mac.markers["platform_machine"] == "arm64"
    win32 = env(python_version="3.12", platform_tag="win32")
    assert win32.markers["platform_machine"] == "x86"
    assert env(python_version="3.12", os_name="nt").markers["sys_platform"] == "win32"


def test_evaluate_with_extras_normalized():
    e = env(python_version="3.12", **LINUX)
    m = Marker('extra == "Socks_Proxy"')
    assert not e.evaluate(m)
    assert e.evaluate(m, ["socks-proxy"])
    assert e.evaluate(m, ["other", "SOCKS.proxy"])
    assert e.evaluate(None)
    assert e.evaluate(Marker('python_version >= "3.8"'), ["x"])  # holds for extra == "" too


def test_admits_python():
    e37 = env(python_full_version="3.7.17", **LINUX)
    assert e37.admits_python(None)
    assert e37.admits_python("")
    assert e37.admits_python(">=3.7")
    assert not e37.admits_python(">=3.8")
    assert not e37.admits_python(SpecifierSet(">=3.8"))
    assert e37.admits_python(">=3.6.*")  # invalid upstream value: pip ignores it
    pre = env(python_full_version="3.14.0a1", **LINUX)
    assert pre.admits_python(">=3.9")  # a pre-release interpreter is still checked
    assert env(python_full_version="3.14.0a1+", **LINUX).admits_python(">=3.9")


# --- derived tags ----------------------------------------------------------------------


def test_cpython37_linux():
    e = env(python_full_version="3.7.9", **LINUX)
    tags = strs(e)
    assert tags[0] == "cp37-cp37m-manylinux_2_17_x86_64"
    assert tags[1] == "cp37-cp37m-manylinux2014_x86_64"
    assert "cp37-cp37m-manylinux1_x86_64" in tags
    assert "cp37-cp37-manylinux1_x86_64" not in tags
    assert rank(e, "cp37-cp37m-linux_x86_64") < rank(e, "cp37-abi3-manylinux_2_17_x86_64")
    assert rank(e, "cp36-abi3-manylinux1_x86_64") < rank(e, "py37-none-any")
    assert "cp38-abi3-manylinux1_x86_64" not in tags
    assert tags[-1] == "py30-none-any"


def test_cpython313_linux_is_not_free_threaded():
    e = env(python_full_version="3.13.1", **LINUX)
    assert not [t for t in e.tags if t.abi.endswith("t") and t.abi.startswith("cp")]
    assert e.tags[0] == Tag("cp313", "cp313", "manylinux_2_17_x86_64")
    assert e.tag_priority(parse_tag("cp313-cp313t-manylinux_2_17_x86_64")) is None
    assert e.tag_priority(parse_tag("cp310-abi3-manylinux_2_17_x86_64")) is not None


def test_free_threaded():
    e = env(python_full_version="3.13.1", free_threaded="true", **LINUX)
    assert e.tags[0] == Tag("cp313", "cp313t", "manylinux_2_17_x86_64")
    assert not [t for t in e.tags if t.abi in ("abi3", "cp313")]
    assert e.tag_priority(parse_tag("cp313-none-manylinux_2_17_x86_64")) is not None
    assert e.tag_priority(parse_tag("py3-none-any")) is not None
    assert env(python_full_version="3.13.1", free_threaded="no", **LINUX).tags[0].abi == "cp313"


def test_abi3_ordering():
    e = env(python_full_version="3.12.4", **LINUX)
    order = [
        "cp312-cp312-manylinux_2_17_x86_64",
        "cp312-cp312-manylinux1_x86_64",
        "cp312-cp312-linux_x86_64",
        "cp312-abi3-manylinux_2_17_x86_64",
        "cp312-none-manylinux_2_17_x86_64",
        "cp311-abi3-manylinux_2_17_x86_64",
        "cp32-abi3-manylinux1_x86_64",
        "py312-none-manylinux_2_17_x86_64",
        "py3-none-linux_x86_64",
        "cp312-none-any",
        "py312-none-any",
        "py3-none-any",
        "py311-none-any",
    ]
    ranks = [rank(e, t) for t in order]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)
    # A wheel's best tag counts (compressed tag sets in a filename).
    assert e.tag_priority(
        parse_tag("cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64")
    ) == rank(e, "cp39-abi3-manylinux_2_17_x86_64")
    assert e.tag_priority(parse_tag("cp312-cp312-win_amd64")) is None
    assert e.tag_priority([]) is None


def test_glibc_floor_and_level():
    tags = strs(env(python_version="3.12", **LINUX))
    many = [t.split("-")[2] for t in tags if t.startswith("cp312-cp312-")]
    assert many[:3] == ["manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_16_x86_64"]
    assert many[-3:] == ["manylinux_2_5_x86_64", "manylinux1_x86_64", "linux_x86_64"]
    assert "manylinux2010_x86_64" in many
    assert not [p for p in many if p.startswith("musllinux")]

    newer = strs(env(python_version="3.12", manylinux="2.28", **LINUX))
    assert newer[0] == "cp312-cp312-manylinux_2_28_x86_64"
    assert "cp312-cp312-manylinux_2_29_x86_64" not in newer
    assert "cp312-cp312-manylinux1_x86_64" in newer
    for spelling in ("2_28", "manylinux_2_28"):
        assert strs(env(python_version="3.12", manylinux=spelling, **LINUX)) == newer
    legacy = strs(env(python_version="3.12", manylinux="manylinux2014", **LINUX))
    assert legacy[0] == "cp312-cp312-manylinux_2_17_x86_64"

    arm = strs(env(python_version="3.12", sys_platform="linux", platform_machine="aarch64"))
    plats = [t.split("-")[2] for t in arm if t.startswith("cp312-cp312-")]
    assert plats == ["manylinux_2_17_aarch64", "manylinux2014_aarch64", "linux_aarch64"]


def test_musllinux_only_when_asked():
    e = env(python_version="3.12", musllinux="1.2", **LINUX)
    plats = [t.platform for t in e.tags if t.abi == "cp312"]
    assert plats == [
        "musllinux_1_2_x86_64",
        "musllinux_1_1_x86_64",
        "musllinux_1_0_x86_64",
        "linux_x86_64",
    ]
    assert env(python_version="3.12", musllinux="musllinux_1_2", **LINUX).tags == e.tags


def test_morgan_legacy_is_32bit_linux():
    e = env("legacy", **LEGACY)
    assert e.tags[0] == Tag("cp39", "cp39", "manylinux_2_17_i686")
    assert not [t for t in e.tags if "x86_64" in t.platform]
    assert e.tag_priority(parse_tag("cp39-cp39-manylinux1_i686")) is not None


def test_windows():
    w = env("windows", **WINDOWS)
    assert strs(w)[:4] == [
        "cp312-cp312-win_amd64",
        "cp312-abi3-win_amd64",
        "cp312-none-win_amd64",
        "cp311-abi3-win_amd64",
    ]
    assert {t.platform for t in w.tags} == {"win_amd64", "any"}
    # platform_tag is the Python build's bitness: 32-bit Python on a 64-bit Windows.
    w32 = env(**{**WINDOWS, "platform_tag": "win32"})
    assert w32.tags[0] == Tag("cp312", "cp312", "win32")
    assert env(**{**WINDOWS, "platform_tag": "win-amd64"}).tags == w.tags
    no_tag = {k: v for k, v in WINDOWS.items() if k != "platform_tag"}
    assert env(**no_tag).tags == w.tags
    arm = env(**{**no_tag, "platform_machine": "ARM64"})
    assert arm.tags[0].platform == "win_arm64"


def test_macos_arm64():
    e = env(python_version="3.12", sys_platform="darwin", platform_machine="arm64")
    plats = [t.platform for t in e.tags if t.abi == "cp312"]
    assert plats[0] == "macosx_11_0_arm64"
    assert "macosx_11_0_universal2" in plats
    assert "macosx_10_9_universal2" in plats
    assert not [p for p in plats if p.endswith("_x86_64")]
    newer = env(
        python_version="3.12", sys_platform="darwin", platform_machine="arm64", macos="14.0"
    )
    assert newer.tags[0].platform == "macosx_14_0_arm64"
    assert rank(newer, "cp312-cp312-macosx_11_0_arm64") > rank(
        newer, "cp312-cp312-macosx_13_0_arm64"
    )
    intel = env(python_version="3.12", sys_platform="darwin", platform_machine="x86_64")
    assert intel.tags[0].platform == "macosx_10_12_x86_64"
    assert rank(intel, "cp312-cp312-macosx_10_9_universal2") is not None
    # morgan's platform_tag: the build's deployment target is a lower bound for the OS.
    pt = env(python_version="3.12", platform_tag="macosx-12.0-arm64")
    assert pt.tags[0].platform == "macosx_12_0_arm64"


def test_platform_tag_holding_a_wheel_platform():
    e = env(python_version="3.12", platform_tag="manylinux_2_28_aarch64")
    assert e.markers["sys_platform"] == "linux"
    assert e.markers["platform_machine"] == "aarch64"
    assert e.tags[0] == Tag("cp312", "cp312", "manylinux_2_28_aarch64")
    musl = env(python_version="3.12", platform_tag="musllinux_1_1_x86_64")
    assert [t.platform for t in musl.tags[:3]] == [
        "musllinux_1_1_x86_64",
        "musllinux_1_0_x86_64",
        "linux_x86_64",
    ]
    legacy = env(python_version="3.12", platform_tag="manylinux2014_x86_64")
    assert legacy.tags[0].platform == "manylinux_2_17_x86_64"


def test_pypy():
    e = env(
        python_full_version="3.10.14",
        implementation_name="pypy",
        implementation_version="7.3.17",
        **LINUX,
    )
    assert e.markers["platform_python_implementation"] == "PyPy"
    assert e.tags[0] == Tag("pp310", "pypy310_pp73", "manylinux_2_17_x86_64")
    assert rank(e, "pp3-none-any") < rank(e, "py3-none-any")
    assert e.tag_priority(parse_tag("cp310-abi3-manylinux_2_17_x86_64")) is None


def test_platform_tags_verbatim():
    e = env(
        python_version="3.12",
        platform_tags="manylinux2014_x86_64, manylinux_2_17_x86_64\n  linux_x86_64",
        **LINUX,
    )
    assert strs(e)[:4] == [
        "cp312-cp312-manylinux2014_x86_64",
        "cp312-cp312-manylinux_2_17_x86_64",
        "cp312-cp312-linux_x86_64",
        "cp312-abi3-manylinux2014_x86_64",
    ]
    assert e.tag_priority(parse_tag("cp312-cp312-manylinux_2_5_x86_64")) is None


def test_explicit_tags_keep_order():
    e = env(
        python_version="3.12",
        sys_platform="linux",
        tags="cp312-cp312-manylinux_2_28_x86_64.manylinux_2_17_x86_64\ncp312-abi3-linux_x86_64 py3-none-any",
    )
    assert strs(e) == [
        "cp312-cp312-manylinux_2_28_x86_64",
        "cp312-cp312-manylinux_2_17_x86_64",
        "cp312-abi3-linux_x86_64",
        "py3-none-any",
    ]


def test_compress_roundtrip_of_sys_tags():
    tags = list(sys_tags())
    assert parse_tags("\n".join(compress_tags(tags))) == tags


def test_whl_tag_filters_from_morgan():
    e = env(python_version="3.12", **{"whl.tag.platform": "manylinux_2_(1[7-9])"}, **LINUX)
    assert {t.platform for t in e.tags} == {"manylinux_2_17_x86_64"}


@pytest.mark.skipif(
    sys.implementation.name != "cpython" or platform.system() != "Linux",
    reason="derivation cross-check needs CPython on glibc Linux",
)
def test_derived_tags_cover_this_interpreters_sys_tags():
    libc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else None
    if not libc or not libc.startswith("glibc "):
        pytest.skip("not glibc")
    keys = {k: v for k, v in local_markers().items() if k in MARKER_KEYS or k == "platform_tag"}
    import sysconfig

    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        keys["free_threaded"] = "true"
    e = environment_from_section("local", {**keys, "manylinux": libc.split()[1]}, file="x")
    local = list(sys_tags())
    assert set(local) <= set(e.tags)

    # Same priorities, except where packaging>=26.3 moved linux_<arch> before manylinux.
    def no_linux(tags):
        return [t for t in tags if not t.platform.startswith("linux_")]

    assert no_linux(e.tags) == no_linux(local)


# --- errors ----------------------------------------------------------------------------


def test_unknown_key_suggests_closest():
    err = config_error(python_verison="3.12", **LINUX)
    assert err.key == "python_verison"
    assert "unknown key" in err.problem
    assert (
        "'python_version'" in err.hint
        and "platform_tags" in err.hint
        and "free_threaded" in err.hint
    )
    assert "bundle/morgan.ini [env.bad] python_verison: unknown key" in str(err)


@pytest.mark.parametrize(
    ("keys", "key", "problem", "hint"),
    [
        ({"python_version": "3.x"}, "python_version", "not MAJOR.MINOR", "python_version = 3.12"),
        ({"python_version": "3"}, "python_version", "not MAJOR.MINOR", "python_version = 3.12"),
        (
            {"python_version": "3.12", "python_full_version": "3.11.2"},
            "python_version",
            "contradicts python_full_version",
            "3.11",
        ),
        ({"python_full_version": "three"}, "python_full_version", "not a Python version", "3.12.7"),
        ({"python_full_version": "3"}, "python_full_version", "not a Python version", "3.12.7"),
        ({}, "python_version", "no python version", "python_version = 3.12"),
    ],
)
def test_bad_python_versions(keys, key, problem, hint):
    err = config_error(**keys, **LINUX)
    assert err.key == key
    assert problem in err.problem
    assert hint in err.hint


@pytest.mark.parametrize(
    ("keys", "key", "problem", "hint"),
    [
        (
            {"sys_platform": "linux", "platform_system": "Windows"},
            "platform_system",
            "contradicts",
            "generate_env",
        ),
        (
            {"platform_tag": "win_amd64", "sys_platform": "linux"},
            "platform_tag",
            "contradicts",
            "same system",
        ),
        ({}, "sys_platform", "cannot tell which platform", "sys_platform = linux"),
        ({"os_name": "posix"}, "sys_platform", "cannot tell which platform", "generate_env"),
        ({**LINUX, "free_threaded": "maybe"}, "free_threaded", "not a boolean", "true or false"),
        (
            {**LINUX, "free_threaded": "true"},
            "free_threaded",
            "3.13 or newer",
            "python_full_version",
        ),
        (
            {"sys_platform": "win32", "manylinux": "2.28"},
            "manylinux",
            "only applies to linux",
            "remove",
        ),
        ({"sys_platform": "linux", "macos": "11.0"}, "macos", "only applies to darwin", "remove"),
        (
            {**LINUX, "manylinux": "2.3"},
            "manylinux",
            "below the oldest manylinux for x86_64 (2.5)",
            "ldd",
        ),
        ({**LINUX, "manylinux": "latest"}, "manylinux", "not a version", "manylinux = 2.28"),
        ({**LINUX, "manylinux": "2.28", "musllinux": "1.2"}, "musllinux", "both", "Alpine"),
        ({**LINUX, "musllinux": "2.0"}, "musllinux", "not a musl 1.x", "musllinux = 1.2"),
        (
            {**LINUX, "platform_tags": "linux_x86_64", "manylinux": "2.28"},
            "manylinux",
            "ignored",
            "verbatim",
        ),
        (
            {**LINUX, "tags": "py3-none-any", "platform_tags": "x"},
            "platform_tags",
            "ignored",
            "generate_env",
        ),
        (
            {**LINUX, "tags": "cp312-cp312"},
            "tags",
            "not a tag",
            "cp312-cp312-manylinux_2_17_x86_64",
        ),
        ({**LINUX, "tags": "cp312..x-abi3-any"}, "tags", "empty part", "best first"),
        ({**LINUX, "tags": " "}, "tags", "empty", "remove the key"),
        ({**LINUX, "platform_tags": ","}, "platform_tags", "empty", "manylinux_2_17_x86_64"),
        ({**LINUX, "whl.tag.abi": "("}, "whl.tag.abi", "invalid regular expression", "manylinux"),
        ({**LINUX, "whl.tag.abi": "nope"}, "whl.tag.abi", "leave no tag", "loosen"),
        (
            {"sys_platform": "win32", "platform_machine": "sparc"},
            "platform_machine",
            "unknown Windows",
            "AMD64",
        ),
        (
            {**LINUX, "implementation_name": "cpython", "platform_python_implementation": "PyPy"},
            "platform_python_implementation",
            "contradicts",
            "CPython",
        ),
        (
            {**LINUX, "implementation_name": "pypy", "implementation_version": "seven"},
            "implementation_version",
            "not a version",
            "7.3.17",
        ),
    ],
)
def test_bad_platform_keys(keys, key, problem, hint):
    err = config_error(python_version="3.12", **keys)
    assert err.key == key
    assert problem in err.problem
    assert hint in err.hint


def test_other_platforms_without_derivation():
    e = env(
        python_version="3.12", sys_platform="freebsd14", platform_tag="freebsd-14.1-RELEASE-amd64"
    )
    assert e.tags[0] == Tag("cp312", "cp312", "freebsd_14_1_release_amd64")
    bare = env(python_version="3.12", sys_platform="emscripten")
    assert strs(bare)[:2] == ["cp312-none-any", "py312-none-any"]
    only_tags = env(python_version="3.12", tags="py3-none-any")
    assert only_tags.markers["sys_platform"] == ""
