"""Helpers shared by the config tests: write a morgan.ini (and friends), load it, catch its error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from morgan_like.config.ini import Config, load_config
from morgan_like.errors import ConfigError

ENV = """\
[env.linux]
python_version = 3.12
sys_platform = linux
platform_machine = x86_64
"""
SHA_A = "a" * 64
SHA_B = "b" * 64
SHA_C = "c" * 64


def write(tmp_path: Path, text: str, name: str = "morgan.ini") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> Config:
    return load_config(write(tmp_path, text))


def error(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


def reqs(config: Config) -> list[str]:
    return [str(r.requirement) for r in config.requirements]
