"""Fixtures shared by the index tests."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture
def clean_pip_env(monkeypatch, tmp_path):
    for var in (
        "PIP_INDEX_URL",
        "PIP_CONFIG_FILE",
        "PIP_CERT",
        "PIP_PROXY",
        "PIP_CLIENT_CERT",
        "PIP_TRUSTED_HOST",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "etc-xdg"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    return tmp_path
