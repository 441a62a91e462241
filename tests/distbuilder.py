"""Builders of real, installable wheels and sdists for the test-suite.

Tests never touch the internet, so every distribution they mirror is built here:
real zip / tar.gz files that pip and uv accept.  Builds are deterministic (fixed
timestamps, seeded padding) so that the same arguments give the same sha256.
Metadata lines are written exactly as given: tests pass malformed ones on purpose.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import random
import re
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ZIP_DATE = (2020, 1, 1, 0, 0, 0)
TAR_MTIME = 1577836800  # 2020-01-01, matches ZIP_DATE


def escaped_name(name: str) -> str:
    """The wheel/dist-info spelling of a project name (binary distribution format)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def package_name(name: str) -> str:
    """The importable package directory a built project contains."""
    return name.replace("-", "_").replace(".", "_").lower()


def expand_tags(tag: str) -> list[str]:
    """Every tag of a compressed tag set, e.g. ``cp37-abi3-win_amd64.win32`` -> 2 tags."""
    pythons, abis, platforms = tag.split("-")
    return [
        f"{py}-{abi}-{plat}"
        for py in pythons.split(".")
        for abi in abis.split(".")
        for plat in platforms.split(".")
    ]


def core_metadata(
    name: str,
    version: str,
    *,
    metadata_version: str = "2.1",
    requires_dist: Iterable[str] = (),
    requires_python: str | None = None,
    provides_extra: Iterable[str] = (),
    dynamic: Iterable[str] = (),
    extra_metadata: str = "",
) -> str:
    """METADATA / PKG-INFO text; fields verbatim, in the order setuptools writes them."""
    lines = [f"Metadata-Version: {metadata_version}", f"Name: {name}", f"Version: {version}"]
    lines += [f"Dynamic: {field}" for field in dynamic]
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Provides-Extra: {extra}" for extra in provides_extra]
    lines += [f"Requires-Dist: {req}" for req in requires_dist]
    text = "\n".join(lines) + "\n"
    if extra_metadata:
        text += extra_metadata if extra_metadata.endswith("\n") else extra_metadata + "\n"
    return text


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def _zip_write(zf: zipfile.ZipFile, arcname: str, data: bytes, stored: bool = False) -> None:
    info = zipfile.ZipInfo(arcname, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def write_wheel(
    path: Path, dist_info: str, files: Mapping[str, bytes], metadata: bytes, wheel: bytes
) -> Path:
    """Zip ``files`` plus the dist-info (METADATA, WHEEL, RECORD with sha256) into ``path``."""
    entries = dict(files)
    entries[f"{dist_info}/METADATA"] = metadata
    entries[f"{dist_info}/WHEEL"] = wheel
    record_path = f"{dist_info}/RECORD"
    record = "".join(f"{arc},{_record_hash(data)},{len(data)}\n" for arc, data in entries.items())
    record += f"{record_path},,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for arc, data in entries.items():
            # Large padding is stored, not deflated, so the file really has that size.
            _zip_write(zf, arc, data, stored=len(data) > 65536)
        _zip_write(zf, record_path, record.encode())
    return path


def make_wheel(
    dest_dir: str | Path,
    name: str,
    version: str,
    *,
    requires_dist: Iterable[str] = (),
    requires_python: str | None = None,
    provides_extra: Iterable[str] = (),
    tag: str = "py3-none-any",
    metadata_version: str = "2.1",
    extra_metadata: str = "",
    pad_bytes: int = 0,
    build_tag: str | None = None,
    files: Mapping[str, bytes | str] | None = None,
) -> Path:
    """Build ``<escaped>-<version>[-<build>]-<tag>.whl`` in ``dest_dir``; return its path.

    ``files`` adds extra archive members; ``pad_bytes`` adds that many seeded random
    (incompressible, stored) bytes so benchmarks get wheels of realistic size.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    pkg = package_name(name)
    ver = version.replace("-", "_")
    members: dict[str, bytes] = {f"{pkg}/__init__.py": f'__version__ = "{version}"\n'.encode()}
    if pad_bytes:
        rng = random.Random(f"{name}-{version}-{tag}")
        members[f"{pkg}/_padding.bin"] = rng.randbytes(pad_bytes)
    for arc, data in (files or {}).items():
        members[arc] = data.encode() if isinstance(data, str) else data
    metadata = core_metadata(
        name,
        version,
        metadata_version=metadata_version,
        requires_dist=requires_dist,
        requires_python=requires_python,
        provides_extra=provides_extra,
        extra_metadata=extra_metadata,
    )
    wheel_lines = ["Wheel-Version: 1.0", "Generator: morgan-like-tests", "Root-Is-Purelib: true"]
    wheel_lines += [f"Tag: {t}" for t in expand_tags(tag)]
    if build_tag is not None:
        wheel_lines.append(f"Build: {build_tag}")
    build = f"-{build_tag}" if build_tag is not None else ""
    path = dest / f"{escaped_name(name)}-{ver}{build}-{tag}.whl"
    dist_info = f"{escaped_name(name)}-{ver}.dist-info"
    return write_wheel(
        path, dist_info, members, metadata.encode(), ("\n".join(wheel_lines) + "\n").encode()
    )


def read_wheel_metadata(wheel: str | Path, limit: int = -1) -> bytes:
    """The exact bytes of a wheel's ``*.dist-info/METADATA`` (what PEP 658 serves).

    ``limit``: read at most that many bytes (the headers of a zip-bomb's METADATA)."""
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            parts = member.split("/")
            if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
                with zf.open(member) as f:
                    return f.read(limit)
    raise ValueError(f"{wheel}: no .dist-info/METADATA")


def read_sdist_pkg_info(sdist: str | Path) -> bytes | None:
    """The top-level PKG-INFO of a .tar.gz / .zip sdist, or None."""
    sdist = str(sdist)
    if sdist.endswith(".zip"):
        with zipfile.ZipFile(sdist) as zf:
            names = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith("/PKG-INFO")]
            return zf.read(names[0]) if names else None
    with tarfile.open(sdist, "r|*") as tf:  # streamed: a bomb after PKG-INFO is never inflated
        for member in tf:
            if member.name.count("/") == 1 and member.name.endswith("/PKG-INFO"):
                extracted = tf.extractfile(member)
                return extracted.read() if extracted else None
    return None


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(doc: Mapping[str, Any], _prefix: str = "") -> str:
    """A minimal TOML writer (tables, arrays, strings) for pyproject.toml documents."""
    scalars = {k: v for k, v in doc.items() if not isinstance(v, Mapping)}
    tables = {k: v for k, v in doc.items() if isinstance(v, Mapping)}
    out = ""
    if _prefix and (scalars or not tables):
        out += f"[{_prefix}]\n"
    out += "".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in scalars.items())
    for key, table in tables.items():
        out += ("\n" if out else "") + to_toml(
            table, f"{_prefix}.{_toml_key(key)}" if _prefix else _toml_key(key)
        )
    return out


def _project_table(
    name: str,
    version: str,
    requires_dist: Iterable[str],
    requires_python: str | None,
    provides_extra: Iterable[str],
    dynamic: Iterable[str],
) -> dict[str, Any]:
    """A static [project] table; PKG-INFO's Dynamic fields become pyproject dynamic keys."""
    dyn = {d.lower() for d in dynamic}
    project: dict[str, Any] = {"name": name, "version": version}
    dynamic_keys = []
    deps, extras = [], {extra: [] for extra in provides_extra}
    for req in requires_dist:
        match = re.search(r"""extra\s*==\s*['"]([^'"]+)['"]""", req)
        if match and match.group(1) in extras:
            base = re.sub(r"""\s*(and\s+)?extra\s*==\s*['"][^'"]+['"]""", "", req).strip()
            base = re.sub(r";\s*and\s+", "; ", base).rstrip(";").strip()
            extras[match.group(1)].append(base)
        else:
            deps.append(req)
    if "requires-dist" in dyn:
        dynamic_keys.append("dependencies")
    else:
        project["dependencies"] = deps
    if "requires-python" in dyn:
        dynamic_keys.append("requires-python")
    elif requires_python is not None:
        project["requires-python"] = requires_python
    if "provides-extra" in dyn or ("requires-dist" in dyn and extras):
        dynamic_keys.append("optional-dependencies")
    elif extras:
        project["optional-dependencies"] = extras
    if dynamic_keys:
        project["dynamic"] = dynamic_keys
    return project


def make_sdist(
    dest_dir: str | Path,
    name: str,
    version: str,
    *,
    requires_dist: Iterable[str] = (),
    requires_python: str | None = None,
    provides_extra: Iterable[str] = (),
    pkg_info_metadata_version: str = "2.2",
    dynamic: Iterable[str] = (),
    include_requires_dist_in_pkg_info: bool = True,
    egg_info_requires: str | Iterable[str] | None = None,
    pyproject: str | Mapping[str, Any] | bool | None = None,
    build_requires: Iterable[str] | None = ("tinybackend",),
    build_backend: str | None = "tinybackend",
) -> Path:
    """Build ``<name>-<version>.tar.gz`` (top dir ``<name>-<version>/``); return its path.

    ``pyproject``: None = build-system + a static [project] table made from the
    arguments; a str = the whole file verbatim; a dict = the whole document (our
    [build-system] is added when it has none); False = no pyproject.toml.
    ``build_requires=None`` makes a legacy sdist: setup.py stub and, unless
    ``pyproject`` says otherwise, no pyproject.toml.  ``egg_info_requires`` is the
    raw text of ``<pkg>.egg-info/requires.txt`` (with ``[extra]`` / ``[:marker]``).
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    requires_dist, provides_extra, dynamic = (
        list(requires_dist),
        list(provides_extra),
        list(dynamic),
    )
    pkg = package_name(name)
    top = f"{name}-{version}"
    pkg_info = core_metadata(
        name,
        version,
        metadata_version=pkg_info_metadata_version,
        requires_dist=requires_dist if include_requires_dist_in_pkg_info else (),
        requires_python=requires_python,
        provides_extra=provides_extra,
        dynamic=dynamic,
    )
    members: dict[str, bytes] = {
        "PKG-INFO": pkg_info.encode(),
        f"{pkg}/__init__.py": f'__version__ = "{version}"\n'.encode(),
    }
    build_system = None
    if build_requires is not None:
        build_system = {"requires": list(build_requires)}
        if build_backend:
            build_system["build-backend"] = build_backend
    if isinstance(pyproject, str):
        members["pyproject.toml"] = pyproject.encode()
    elif isinstance(pyproject, Mapping):
        doc = dict(pyproject)
        if build_system and "build-system" not in doc:
            doc = {"build-system": build_system, **doc}
        members["pyproject.toml"] = to_toml(doc).encode()
    elif pyproject is None and build_system is not None:
        table = _project_table(
            name, version, requires_dist, requires_python, provides_extra, dynamic
        )
        doc = {"build-system": build_system, "project": table}
        members["pyproject.toml"] = to_toml(doc).encode()
    if build_requires is None:
        members["setup.py"] = (
            "from setuptools import setup\n\n"
            f"setup(name={name!r}, version={version!r}, packages=[{pkg!r}],\n"
            f"      install_requires={requires_dist!r}, python_requires={requires_python!r})\n"
        ).encode()
    if egg_info_requires is not None:
        text = egg_info_requires
        if not isinstance(text, str):
            text = "".join(f"{line}\n" for line in text)
        members[f"{pkg}.egg-info/PKG-INFO"] = pkg_info.encode()
        members[f"{pkg}.egg-info/requires.txt"] = text.encode()
    if build_backend == "tinybackend":
        # The metadata a build really produces, whatever PKG-INFO chose to declare.
        full = core_metadata(
            name,
            version,
            requires_dist=requires_dist,
            requires_python=requires_python,
            provides_extra=provides_extra,
        )
        members["tinybackend-METADATA"] = full.encode()
    path = dest / f"{top}.tar.gz"
    write_sdist(path, top, members)
    return path


def write_sdist(path: Path, top: str, members: Mapping[str, bytes]) -> Path:
    """A deterministic gzip'ed tar of ``members`` under the directory ``top``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tf:
        dirs = {top}
        for arc in members:
            parts = arc.split("/")[:-1]
            dirs.update(f"{top}/" + "/".join(parts[: i + 1]) for i in range(len(parts)))
        for d in sorted(dirs):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, TAR_MTIME
            tf.addfile(info)
        for arc, data in members.items():
            info = tarfile.TarInfo(f"{top}/{arc}")
            info.size, info.mode, info.mtime = len(data), 0o644, TAR_MTIME
            tf.addfile(info, io.BytesIO(data))
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        gz.write(buffer.getvalue())
    return path


TINYBACKEND_SOURCE = r'''"""tinybackend: a stdlib-only PEP 517 backend for morgan-like's tests (Python 3.7+).

It builds a py3-none-any wheel from an sdist tree: metadata comes from
``tinybackend-METADATA`` when present (what a real build would compute), else
from PKG-INFO; every package directory (one with __init__.py) is copied.
"""
import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile
from email.parser import HeaderParser

__version__ = "1.0"


def _metadata():
    for candidate in ("tinybackend-METADATA", "PKG-INFO"):
        if os.path.exists(candidate):
            with open(candidate, "rb") as f:
                raw = f.read()
            break
    else:
        raise RuntimeError("tinybackend: no PKG-INFO in " + os.getcwd())
    msg = HeaderParser().parsestr(raw.decode("utf-8"))
    lines = ["Metadata-Version: 2.1"]
    for key, value in msg.items():
        if key.lower() not in ("metadata-version", "dynamic"):
            lines.append(key + ": " + value)
    return msg["Name"], msg["Version"], ("\n".join(lines) + "\n").encode("utf-8")


def _escape(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def _dist_info(name, version):
    return _escape(name) + "-" + version.replace("-", "_") + ".dist-info"


def _wheel_file():
    return b"Wheel-Version: 1.0\nGenerator: tinybackend 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _sources():
    found = {}
    for entry in sorted(os.listdir(".")):
        if os.path.isdir(entry) and os.path.exists(os.path.join(entry, "__init__.py")):
            for root, dirs, files in os.walk(entry):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                for fname in sorted(files):
                    if not fname.endswith((".pyc", ".pyo")):
                        path = os.path.join(root, fname)
                        with open(path, "rb") as f:
                            found[path.replace(os.sep, "/")] = f.read()
        elif entry.endswith(".py") and entry != "setup.py" and os.path.isfile(entry):
            with open(entry, "rb") as f:
                found[entry] = f.read()
    return found


def _hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    name, version, metadata = _metadata()
    dist_info = _dist_info(name, version)
    os.makedirs(os.path.join(metadata_directory, dist_info), exist_ok=True)
    with open(os.path.join(metadata_directory, dist_info, "METADATA"), "wb") as f:
        f.write(metadata)
    with open(os.path.join(metadata_directory, dist_info, "WHEEL"), "wb") as f:
        f.write(_wheel_file())
    return dist_info


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name, version, metadata = _metadata()
    dist_info = _dist_info(name, version)
    entries = _sources()
    entries[dist_info + "/METADATA"] = metadata
    entries[dist_info + "/WHEEL"] = _wheel_file()
    record = "".join(
        "%s,%s,%d\n" % (arc, _hash(data), len(data)) for arc, data in entries.items()
    )
    entries[dist_info + "/RECORD"] = (record + dist_info + "/RECORD,,\n").encode("utf-8")
    filename = _escape(name) + "-" + version.replace("-", "_") + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w", zipfile.ZIP_DEFLATED) as zf:
        for arc, data in entries.items():
            zf.writestr(zipfile.ZipInfo(arc, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return filename


def build_sdist(sdist_directory, config_settings=None):
    name, version, _ = _metadata()
    top = _escape(name) + "-" + version
    filename = top + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as tf:
        for entry in sorted(os.listdir(".")):
            if not entry.startswith(".") and entry not in ("build", "dist"):
                tf.add(entry, arcname=top + "/" + entry)
    return filename
'''


def make_tiny_backend_wheel(dest_dir: str | Path) -> Path:
    """The wheel of ``tinybackend`` 1.0, the PEP 517 backend that builds our sdists."""
    return make_wheel(
        dest_dir,
        "tinybackend",
        "1.0",
        requires_python=">=3.7",
        files={"tinybackend/__init__.py": TINYBACKEND_SOURCE},
    )


# ------------------------------------------------------------------ compression bombs
#
# Built in well under a second whatever their inflated size: a block of the repeated
# unit is deflated once, ended by a full flush (which resets the compressor), and the
# same bytes are repeated; only the CRC has to walk the inflated size.

_ZEROS = bytes(1 << 20)
_BLANKS = b" " * (1 << 20)


def repeated_deflate(head: bytes, unit: bytes, count: int, tail: bytes) -> tuple[bytes, int, int]:
    """Raw deflate of ``head + unit * count + tail``: (compressed, crc32, inflated size)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = [comp.compress(head) + comp.flush(zlib.Z_FULL_FLUSH)]
    if count:
        block = comp.compress(unit) + comp.flush(zlib.Z_FULL_FLUSH)
        again = comp.compress(unit) + comp.flush(zlib.Z_FULL_FLUSH)
        assert block == again, "a full flush did not reset the compressor"
        out.append(block * count)
    out.append(comp.compress(tail) + comp.flush())
    crc = zlib.crc32(head)
    for _ in range(count):
        crc = zlib.crc32(unit, crc)
    crc = zlib.crc32(tail, crc)
    return b"".join(out), crc, len(head) + len(unit) * count + len(tail)


def gzip_repeated(head: bytes, unit: bytes, count: int, tail: bytes) -> bytes:
    """A gzip member (Content-Encoding: gzip, a .tar.gz) inflating to head + unit*count + tail."""
    data, crc, size = repeated_deflate(head, unit, count, tail)
    header = b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x02\xff"
    return header + data + struct.pack("<II", crc, size & 0xFFFFFFFF)


def gzip_bomb_json_page(name: str, inflated_mib: int) -> bytes:
    """A valid PEP 691 page (no files) padded with blanks to ``inflated_mib`` MiB, gzipped."""
    head = json.dumps({"meta": {"api-version": "1.1"}, "name": name, "files": []})[:-1].encode()
    return gzip_repeated(head, _BLANKS, inflated_mib, b"}")


def _zip_entry(name: str, data: bytes, crc: int, size: int, offset: int) -> tuple[bytes, bytes]:
    """(local header + data, central directory record) of one deflated member."""
    dos_date = (2020 - 1980) << 9 | 1 << 5 | 1
    raw = name.encode()
    fields = struct.pack("<HHHHHIII", 20, 0, 8, 0, dos_date, crc, len(data), size)
    local = b"PK\x03\x04" + fields + struct.pack("<HH", len(raw), 0) + raw + data
    extra = struct.pack("<HHHHHII", len(raw), 0, 0, 0, 0, 0o644 << 16, offset)
    return local, b"PK\x01\x02" + struct.pack("<H", 20) + fields + extra + raw


def bomb_metadata_head(name: str, version: str) -> bytes:
    """What a bomb's METADATA starts with: real headers, then the blank padding."""
    return core_metadata(name, version).encode() + b"\n"


def make_bomb_wheel(dest_dir: str | Path, name: str, version: str, inflated_mib: int) -> Path:
    """A wheel whose METADATA (valid headers, then blanks) inflates to ``inflated_mib`` MiB."""
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    dist_info = f"{escaped_name(name)}-{version}.dist-info"
    wheel = b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    members = [
        (f"{package_name(name)}/__init__.py", *repeated_deflate(b"", b"", 0, b"")),
        (f"{dist_info}/WHEEL", *repeated_deflate(wheel, b"", 0, b"")),
        (
            f"{dist_info}/METADATA",
            *repeated_deflate(bomb_metadata_head(name, version), _BLANKS, inflated_mib, b"\n"),
        ),
    ]
    body, directory = b"", b""
    for member, data, crc, size in members:
        local, central = _zip_entry(member, data, crc, size, len(body))
        body += local
        directory += central
    count = len(members)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, len(directory), len(body), 0)
    path = dest / f"{escaped_name(name)}-{version}-py3-none-any.whl"
    path.write_bytes(body + directory + end)
    return path


def write_bomb_metadata(path: Path, name: str, version: str, inflated_mib: int) -> Path:
    """The METADATA ``make_bomb_wheel`` holds, written out: a PEP 658 file to serve."""
    with open(path, "wb") as f:
        f.write(bomb_metadata_head(name, version))
        for _ in range(inflated_mib):
            f.write(_BLANKS)
        f.write(b"\n")
    return path


def make_bomb_sdist(dest_dir: str | Path, name: str, version: str, inflated_mib: int) -> Path:
    """A static sdist (PKG-INFO 2.2, pyproject.toml) with a member of ``inflated_mib`` MiB of
    zeros: a small .tar.gz that costs whoever streams through it the whole inflation."""
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    top = f"{name}-{version}"
    small = {
        "PKG-INFO": core_metadata(name, version, metadata_version="2.2").encode(),
        "pyproject.toml": b'[build-system]\nrequires = ["tinybackend"]\n'
        b'build-backend = "tinybackend"\n',
    }
    head = b""
    for arc, data in small.items():
        info = tarfile.TarInfo(f"{top}/{arc}")
        info.size, info.mode, info.mtime = len(data), 0o644, TAR_MTIME
        head += info.tobuf(format=tarfile.GNU_FORMAT) + data + bytes(-len(data) % 512)
    big = tarfile.TarInfo(f"{top}/data.bin")
    big.size, big.mode, big.mtime = inflated_mib << 20, 0o644, TAR_MTIME
    head += big.tobuf(format=tarfile.GNU_FORMAT)
    path = dest / f"{top}.tar.gz"
    path.write_bytes(gzip_repeated(head, _ZEROS, inflated_mib, bytes(1024)))
    return path
