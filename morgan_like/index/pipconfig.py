"""pip's settings as pip would read them here: ``PIP_*`` variables, then its config files.

So that ``morgan-like`` reaches the same index, through the same proxy and CA
bundle, as ``pip download`` on this machine would, with no flag to repeat.
"""

from __future__ import annotations

import configparser
import os
import sys
from pathlib import Path

from morgan_like.config.options import DEFAULT_INDEX_URL


def _pip_config_files() -> list[Path]:
    """pip's config files, lowest priority first (global, user, site, PIP_CONFIG_FILE)."""
    env_file = os.environ.get("PIP_CONFIG_FILE")
    if env_file == os.devnull or env_file == "/dev/null":
        return []
    home = Path.home()
    if sys.platform == "win32":
        program_data = os.environ.get("PROGRAMDATA", r"C:\ProgramData")
        global_files = [Path(program_data) / "pip" / "pip.ini"]
        appdata = os.environ.get("APPDATA", str(home / "AppData" / "Roaming"))
        user_files = [home / "pip" / "pip.ini", Path(appdata) / "pip" / "pip.ini"]
        site_file = Path(sys.prefix) / "pip.ini"
    else:
        xdg_dirs = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
        global_files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs.split(os.pathsep) if d]
        global_files.append(Path("/etc/pip.conf"))
        xdg_home = os.environ.get("XDG_CONFIG_HOME") or str(home / ".config")
        user_files = [home / ".pip" / "pip.conf"]
        if sys.platform == "darwin":
            user_files.append(home / "Library" / "Application Support" / "pip" / "pip.conf")
        user_files.append(Path(xdg_home) / "pip" / "pip.conf")
        site_file = Path(sys.prefix) / "pip.conf"
    files = global_files  # in pip's order: a later file overrides an earlier one
    # Like pip: an existing PIP_CONFIG_FILE replaces the user's own files.
    if not (env_file and Path(env_file).exists()):
        files += user_files
    files.append(site_file)
    if env_file:
        files.append(Path(env_file))
    return files


def pip_config(key: str, sections: tuple[str, ...] = ("global", "install", "download")) -> str:
    """A pip option's raw value as pip would see it: ``PIP_<KEY>``, then its config files.

    Later files override earlier ones per section; then later sections in
    ``sections`` override earlier ones (a command section beats [global]).
    """
    env = os.environ.get("PIP_" + key.upper().replace("-", "_"), "").strip()
    if env:
        return env
    merged: dict[str, str] = {}
    for path in _pip_config_files():
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError, OSError):
            continue
        for section in sections:
            if parser.has_section(section):
                for name, value in parser.items(section):
                    if name.replace("_", "-") == key and value.strip():
                        merged[section] = value.strip()
    return next((merged[s] for s in reversed(sections) if s in merged), "")


def pip_config_value(key: str) -> str | None:
    """The first of a pip option's whitespace-separated values (pip's index-url is one)."""
    values = pip_config(key).split()
    return values[0] if values else None


def configured_index_url() -> str:
    """The index pip would use here: PIP_INDEX_URL, pip.conf, else PyPI."""
    return pip_config_value("index-url") or DEFAULT_INDEX_URL
