"""Wheel tags of a target interpreter that is not the one running us.

``packaging.tags.sys_tags()`` only knows the running interpreter; a bundle is
built for other machines, so the tag list is derived from what the config says
about them (python version, platform, glibc/musl/macOS level), in the same
order pip on that interpreter would try them: best first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping

from packaging.tags import INTERPRETER_SHORT_NAMES, Tag, compatible_tags, cpython_tags, generic_tags
from packaging.tags import mac_platforms as _mac_platforms

from morgan_like.errors import TagKeyError

# PEP 600: the legacy names are aliases of these glibc levels.
LEGACY_MANYLINUX = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
# Oldest glibc each architecture ever had a manylinux policy for.
MANYLINUX_FLOOR = {"x86_64": (2, 5), "i686": (2, 5)}
MANYLINUX_DEFAULT_FLOOR = (2, 17)
# Architectures a manylinux policy exists for (PEP 599/600 and auditwheel).
MANYLINUX_ARCHS = frozenset(
    {"x86_64", "i686", "aarch64", "armv7l", "ppc64", "ppc64le", "s390x", "riscv64", "loongarch64"}
)
DEFAULT_MANYLINUX = (2, 17)
# The newest glibc release known here (2.44: August 2026; bump each February and August).
# A manylinux level above it is warned about (config.pythons), a major other than 2 refused.
NEWEST_KNOWN_GLIBC = (2, 44)
DEFAULT_MACOS = {"x86_64": (10, 12), "arm64": (11, 0)}

# platform_machine spellings -> the arch part of linux_<arch> tags.
_LINUX_ARCH_ALIASES = {
    "amd64": "x86_64",
    "x64": "x86_64",
    "i386": "i686",
    "i486": "i686",
    "i586": "i686",
    "x86": "i686",
    "arm64": "aarch64",
}
# platform_machine values of Linux machines (uname -m), as linux_arch spells them.
LINUX_MACHINES = frozenset(
    {
        *MANYLINUX_ARCHS,
        "aarch64_be", "alpha", "arc", "armv4l", "armv5l", "armv5tel", "armv5tejl", "armv6l",
        "armv7b", "armv8b", "armv8l", "csky", "hppa", "ia64", "loongarch32", "m68k",
        "microblaze", "mips", "mips64", "mips64el", "mipsel", "nios2", "or1k", "parisc",
        "parisc64", "ppc", "ppcle", "riscv32", "s390", "sh4", "sh4a", "sparc", "sparc64",
        "xtensa",
    }
)  # fmt: skip
# platform_machine values of Macs, as mac_arch spells them.
MAC_MACHINES = frozenset({"arm64", "x86_64", "i386", "ppc", "ppc64"})
# One part of a wheel tag (interpreter, abi or platform): what wheel file names hold.
_TAG_PART = re.compile(r"[A-Za-z0-9_]+")

# platform_machine spellings -> Windows platform tag.
_WINDOWS_PLATFORMS = {
    "amd64": "win_amd64",
    "x86_64": "win_amd64",
    "x64": "win_amd64",
    "x86": "win32",
    "i386": "win32",
    "i686": "win32",
    "win32": "win32",
    "arm64": "win_arm64",
    "aarch64": "win_arm64",
}


def normalize_platform(value: str) -> str:
    """sysconfig platform (``linux-x86_64``, ``macosx-11.0-arm64``) -> tag spelling."""
    return value.strip().lower().replace(".", "_").replace("-", "_").replace(" ", "_")


def linux_arch(machine: str) -> str:
    """platform_machine as Linux wheel tags spell it (``AMD64`` -> ``x86_64``)."""
    m = machine.strip().lower()
    return _LINUX_ARCH_ALIASES.get(m, m)


def windows_platform(machine: str) -> str | None:
    """platform_machine (``AMD64``, ``x86``, ``ARM64``) -> ``win_amd64`` etc.; None if unknown."""
    return _WINDOWS_PLATFORMS.get(machine.strip().lower())


def mac_arch(machine: str) -> str:
    m = machine.strip().lower()
    return {"aarch64": "arm64", "amd64": "x86_64"}.get(m, m)


def known_machine(system: str | None, machine: str) -> bool:
    """Is ``machine`` (platform_machine) one that ``system`` (linux / windows / darwin) runs
    on?  Other systems: any value."""
    if system == "linux":
        return linux_arch(machine) in LINUX_MACHINES
    if system == "windows":
        return windows_platform(machine) is not None
    if system == "darwin":
        return mac_arch(machine) in MAC_MACHINES
    return True


def check_platform_tag(word: str, key: str) -> str:
    """``word`` when it can be a wheel's platform tag; TagKeyError naming ``key`` if not."""
    if not _TAG_PART.fullmatch(word):
        raise TagKeyError(
            f"{word!r} is not a platform tag (letters, digits and _ only)",
            key,
            "e.g. platform_tags = manylinux_2_17_x86_64 linux_x86_64",
        )
    return word


def manylinux_platforms(arch: str, glibc: tuple[int, int]) -> list[str]:
    """manylinux_2_X_<arch> from ``glibc`` down to the arch floor, legacy aliases after each."""
    if arch not in MANYLINUX_ARCHS or glibc[0] != 2:
        return []
    floor = MANYLINUX_FLOOR.get(arch, MANYLINUX_DEFAULT_FLOOR)
    out = []
    for minor in range(glibc[1], floor[1] - 1, -1):
        out.append(f"manylinux_2_{minor}_{arch}")
        legacy = LEGACY_MANYLINUX.get((2, minor))
        if legacy:
            out.append(f"{legacy}_{arch}")
    return out


def musllinux_platforms(arch: str, musl: tuple[int, int]) -> list[str]:
    """musllinux_1_X_<arch> from ``musl`` down to 1_0 (as packaging does for a musl Python)."""
    return [f"musllinux_{musl[0]}_{minor}_{arch}" for minor in range(musl[1], -1, -1)]


def linux_platforms(
    arch: str, *, manylinux: tuple[int, int] | None, musllinux: tuple[int, int] | None
) -> list[str]:
    """Platform tags of a Linux machine; a musl system gets no manylinux tags."""
    archs = ["armv8l", "armv7l"] if arch == "armv8l" else [arch]
    out: list[str] = []
    for a in archs:
        if musllinux is not None:
            out += musllinux_platforms(a, musllinux)
        else:
            out += manylinux_platforms(a, manylinux or DEFAULT_MANYLINUX)
    out += [f"linux_{a}" for a in archs]
    return out


def mac_platforms(version: tuple[int, int], arch: str) -> list[str]:
    """Every macosx_* tag a Mac of ``version`` accepts, down to the arch floor (incl. universal2)."""
    return list(_mac_platforms(version, arch))


def python_tags(
    python_version: tuple[int, int],
    platforms: list[str],
    *,
    implementation: str = "cpython",
    free_threaded: bool = False,
    implementation_version: tuple[int, ...] | None = None,
    linux: bool = False,
) -> list[Tag]:
    """Full priority list for an interpreter: its own ABIs, stable ABI, none, pure Python."""
    xy = "".join(map(str, python_version))
    if implementation == "cpython":
        interp = f"cp{xy}"
        if free_threaded:
            abi = f"cp{xy}t"
        elif python_version < (3, 8):
            # pymalloc builds ("m"); before 3.3 Linux builds were also UCS-4 ("u").
            abi = f"cp{xy}m" + ("u" if python_version < (3, 3) and linux else "")
        else:
            abi = f"cp{xy}"
        if platforms:
            tags = cpython_tags(python_version, [abi], platforms)
            if free_threaded:  # PEP 703: a free-threaded build cannot load abi3 wheels
                tags = (t for t in tags if t.abi != "abi3")
            out = list(tags) + list(compatible_tags(python_version, interp, platforms))
        else:
            out = [Tag(interp, "none", "any"), *_pure(python_version)]
        return _dedupe(out)
    short = INTERPRETER_SHORT_NAMES.get(implementation, implementation)
    interp = f"{short}{xy}"
    abis: list[str] = []
    if implementation == "pypy":
        iv = implementation_version or (7, 3)
        abis = [f"pypy{xy}_pp{iv[0]}{iv[1] if len(iv) > 1 else 0}"]
    compat_interp = f"{short}{python_version[0]}" if implementation == "pypy" else None
    if platforms:
        out = list(generic_tags(interp, abis, platforms))
        out += list(compatible_tags(python_version, compat_interp, platforms))
    else:
        out = [Tag(interp, "none", "any")]
        if compat_interp:
            out.append(Tag(compat_interp, "none", "any"))
        out += _pure(python_version)
    return _dedupe(out)


def _pure(python_version: tuple[int, int]) -> list[Tag]:
    major, minor = python_version
    versions = [f"py{major}{minor}", f"py{major}"]
    versions += [f"py{major}{m}" for m in range(minor - 1, -1, -1)]
    return [Tag(v, "none", "any") for v in versions]


def _dedupe(tags: Iterable[Tag]) -> list[Tag]:
    return list(dict.fromkeys(tags))


_SPLIT = re.compile(r"[\s,]+")


def split_words(value: str) -> list[str]:
    """Whitespace/comma/newline separated list -> words."""
    return [w for w in _SPLIT.split(value) if w]


def expand_tag(text: str) -> Iterator[Tag]:
    """``cp312-cp312.abi3-manylinux_2_17_x86_64.manylinux2014_x86_64`` -> tags in written order.

    ``packaging.tags.parse_tag`` returns a frozenset and so loses the order we
    need for priorities; this expands compressed sets interpreter-major.
    """
    parts = text.strip().split("-")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"{text!r} is not a tag of the form interpreter-abi-platform")
    interps, abis, plats = (p.split(".") for p in parts)
    if not all(all(x) for x in (interps, abis, plats)):
        raise ValueError(f"{text!r} has an empty part in a compressed tag set")
    if not all(_TAG_PART.fullmatch(x) for x in (*interps, *abis, *plats)):
        raise ValueError(f"{text!r}: a tag's parts hold letters, digits and _ only")
    for i in interps:
        for a in abis:
            for p in plats:
                yield Tag(i, a, p)


def parse_tags(value: str) -> list[Tag]:
    """The ``tags`` key: explicit tags in priority order (compressed sets allowed)."""
    out: list[Tag] = []
    for word in split_words(value):
        out.extend(expand_tag(word))
    return _dedupe(out)


def compress_tags(tags: Iterable[Tag]) -> list[str]:
    """Runs of tags sharing interpreter and abi -> one compressed tag each (order kept)."""
    lines: list[str] = []
    run: list[Tag] = []
    for tag in tags:
        if run and (tag.interpreter, tag.abi) != (run[0].interpreter, run[0].abi):
            lines.append(_compress_run(run))
            run = []
        run.append(tag)
    if run:
        lines.append(_compress_run(run))
    return lines


def _compress_run(run: list[Tag]) -> str:
    return f"{run[0].interpreter}-{run[0].abi}-" + ".".join(t.platform for t in run)


# --- derivation from an [env.NAME] section --------------------------------------------

WINDOWS_MACHINE = {"win_amd64": "AMD64", "win32": "x86", "win_arm64": "ARM64"}


def version_pair(key: str, value: str, *, prefix: str, example: str) -> tuple[int, int]:
    """``2.28`` / ``2_28`` / ``manylinux_2_28`` / ``manylinux2014`` -> (2, 28)."""
    v = value.strip().lower()
    legacy = {name: ver for ver, name in LEGACY_MANYLINUX.items()}
    if prefix == "manylinux" and v in legacy:
        return legacy[v]
    m = re.fullmatch(rf"(?:{prefix}_?)?(\d+)[._](\d+)", v)
    if not m:
        raise TagKeyError(
            f"{key} = {value!r} is not a version", key, f"write e.g. {key} = {example}"
        )
    return int(m.group(1)), int(m.group(2))


def derive_platforms(raw: Mapping[str, str], system: str | None, machine: str) -> list[str]:
    """Platform tags of the described machine, best first (manylinux/musllinux/macos keys apply)."""
    if system == "linux":
        return _linux_from_keys(raw, linux_arch(machine))
    if system == "windows":
        plat = None
        if "platform_tag" in raw:  # the bitness of the Python build, not of the OS
            pt = normalize_platform(raw["platform_tag"])
            plat = pt if pt in WINDOWS_MACHINE else None
        plat = plat or windows_platform(machine)
        if plat is None:
            raise TagKeyError(
                f"unknown Windows machine {machine!r}",
                "platform_machine",
                "use AMD64, x86 or ARM64 (or platform_tags = win_amd64)",
            )
        return [plat]
    if system == "darwin":
        arch = mac_arch(machine)
        if "macos" in raw:
            version = version_pair("macos", raw["macos"], prefix="macosx", example="11.0")
        else:
            version = DEFAULT_MACOS.get(arch, (10, 12))
            m = re.match(r"macosx_(\d+)_(\d+)_", normalize_platform(raw.get("platform_tag", "")))
            if m:  # the Python build's deployment target: the OS is at least that
                version = max(version, (int(m.group(1)), int(m.group(2))))
        return mac_platforms(version, arch)
    if raw.get("platform_tag"):
        return [check_platform_tag(normalize_platform(raw["platform_tag"]), "platform_tag")]
    return []


def policy_platform_tag(platform_tag: str) -> tuple[str, tuple[int, int], str] | None:
    """``manylinux_2_28_x86_64`` / ``manylinux2014_aarch64`` / ``musllinux_1_2_x86_64``
    -> (kind, level, arch); None for anything else (``linux-x86_64``)."""
    pt = normalize_platform(platform_tag)
    m = re.fullmatch(r"(manylinux|musllinux)_(\d+)_(\d+)_(.+)", pt)
    if m:
        return m.group(1), (int(m.group(2)), int(m.group(3))), m.group(4)
    for level, name in LEGACY_MANYLINUX.items():
        if pt.startswith(name + "_"):
            return "manylinux", level, pt[len(name) + 1 :]
    return None


def _linux_from_keys(raw: Mapping[str, str], arch: str) -> list[str]:
    policy = policy_platform_tag(raw.get("platform_tag", ""))
    if policy and "manylinux" not in raw and "musllinux" not in raw:
        # morgan's platform_tag holding a wheel platform: take its glibc/musl level.
        kind, level, _ = policy
        raw = {**raw, kind: f"{level[0]}.{level[1]}"}
    if "manylinux" in raw and "musllinux" in raw:
        raise TagKeyError(
            "both manylinux and musllinux given",
            "musllinux",
            "a glibc system takes manylinux = 2.X, a musl system (Alpine) musllinux = 1.X",
        )
    many = musl = None
    if "manylinux" in raw:
        many = version_pair("manylinux", raw["manylinux"], prefix="manylinux", example="2.28")
        floor = MANYLINUX_FLOOR.get(arch, MANYLINUX_DEFAULT_FLOOR)
        if many[0] > 2:
            raise TagKeyError(
                f"manylinux = {raw['manylinux']} is above the newest glibc known to morgan-like "
                f"({NEWEST_KNOWN_GLIBC[0]}.{NEWEST_KNOWN_GLIBC[1]}); glibc versions are 2.X",
                "manylinux",
                "give the glibc version of the target, e.g. manylinux = 2.28 (see `ldd --version`)",
            )
        if many < floor:
            raise TagKeyError(
                f"manylinux = {raw['manylinux']} is below the oldest manylinux for {arch} "
                f"({floor[0]}.{floor[1]})",
                "manylinux",
                "give the glibc version of the target, e.g. manylinux = 2.28 (see `ldd --version`)",
            )
    if "musllinux" in raw:
        musl = version_pair("musllinux", raw["musllinux"], prefix="musllinux", example="1.2")
        if musl[0] != 1:
            raise TagKeyError(
                f"musllinux = {raw['musllinux']} is not a musl 1.x version",
                "musllinux",
                "give the musl version of the target, e.g. musllinux = 1.2 (see `ldd --version`)",
            )
    return linux_platforms(arch, manylinux=many, musllinux=musl)


def filter_whl_tags(raw: Mapping[str, str], tag_list: list[Tag]) -> list[Tag]:
    """morgan's whl.tag.{interpreter,abi,platform} regexes narrow the list (re.match, as morgan)."""
    patterns = []
    for part in ("interpreter", "abi", "platform"):
        key = f"whl.tag.{part}"
        if raw.get(key):
            try:
                patterns.append((part, re.compile(raw[key])))
            except re.error as exc:
                raise TagKeyError(
                    f"invalid regular expression: {exc}", key, "e.g. whl.tag.platform = manylinux.*"
                ) from None
    if not patterns:
        return tag_list
    kept = [t for t in tag_list if all(p.match(getattr(t, part)) for part, p in patterns)]
    if not kept:
        raise TagKeyError(
            "the whl.tag.* filters leave no tag this environment accepts",
            f"whl.tag.{patterns[0][0]}",
            "loosen the expressions, or remove them",
        )
    return kept
