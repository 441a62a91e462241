"""``generate_env`` / ``generate_reqs``: config blocks describing the running interpreter.

Run on a target machine, ``generate_env`` writes its markers and its exact
``sys_tags()`` list, so the bundle is built for precisely what pip there will
accept, with no derivation involved.
"""

from __future__ import annotations

import os
import platform
import sys
import sysconfig
from importlib import metadata

from packaging.tags import sys_tags

from morgan_like.targets.environments import ENV_NAME
from morgan_like.targets.tags import compress_tags

MODES = (">=", "==", "<=")
ENV_NAME_MAX = 100  # as environments.py allows


def env_name_problem(name: str) -> str | None:
    """None when ``name`` can name an env: it also names the env's index folder
    ``envs/NAME/``, so a block generated with any other name would not load back."""
    if ENV_NAME.fullmatch(name) and len(name) <= ENV_NAME_MAX:
        return None
    shown = name if len(name) <= 60 else name[:60] + "..."
    return (
        f"{shown!r} cannot name an env (its index folder envs/NAME/): use letters, digits, "
        "'.', '_' and '-', starting with a letter or digit, at most 100 characters"
    )


def local_markers() -> dict[str, str]:
    """The PEP 508 marker environment of this interpreter, plus morgan's platform_tag."""
    impl = sys.implementation
    iv = impl.version
    implementation_version = f"{iv.major}.{iv.minor}.{iv.micro}"
    if iv.releaselevel != "final":
        implementation_version += iv.releaselevel[0] + str(iv.serial)
    return {
        "os_name": os.name,
        "platform_tag": sysconfig.get_platform(),
        "sys_platform": sys.platform,
        "platform_machine": platform.machine(),
        "platform_python_implementation": platform.python_implementation(),
        "platform_system": platform.system(),
        "platform_release": platform.release(),
        "platform_version": platform.version(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "python_full_version": platform.python_version(),
        "implementation_name": impl.name,
        "implementation_version": implementation_version,
    }


def default_env_name() -> str:
    """e.g. ``cpython3.12-linux-x86_64`` (``cpython3.13t-...`` for a free-threaded build)."""
    threaded = "t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""
    version = ".".join(platform.python_version_tuple()[:2])
    return f"{sys.implementation.name}{version}{threaded}-{sysconfig.get_platform()}"


def generate_env(name: str | None = None) -> str:
    """An ``[env.NAME]`` block for this interpreter; it loads back with tags == sys_tags().

    Raises ValueError for a name no env can have (see env_name_problem)."""
    name = (name or "").strip() or default_env_name()
    problem = env_name_problem(name)
    if problem:
        raise ValueError(problem)
    lines = [f"[env.{name}]"]
    for key, value in local_markers().items():
        lines.append(f"{key} = {_one_line(value)}")
    tags = compress_tags(sys_tags())
    lines.append("# exact packaging.tags.sys_tags() of this interpreter, best first")
    lines.append("tags =")
    lines += [f"    {t}" for t in tags]
    return "\n".join(lines) + "\n\n"


def _one_line(value: str) -> str:
    # A newline would start a continuation line; platform.version() is one line in practice.
    return " ".join(value.split())


def generate_reqs(mode: str = ">=") -> str:
    """A ``[requirements]`` block pinning every installed distribution (``name = <mode><version>``)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name:  # a broken install without METADATA
            continue
        # First on sys.path wins, as it is the one that gets imported.
        found.setdefault(name.lower(), dist.version)
    lines = ["[requirements]"]
    lines += [f"{n} = {mode}{v}" for n, v in sorted(found.items())]
    return "\n".join(lines) + "\n\n"
