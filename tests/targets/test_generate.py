"""generate_env / generate_reqs: blocks that load back to exactly this interpreter."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from packaging.markers import default_environment
from packaging.tags import sys_tags

from morgan_like.config.ini import load_config
from morgan_like.targets import generate
from morgan_like.targets.environments import MARKER_KEYS
from morgan_like.targets.generate import generate_env, generate_reqs


def roundtrip(tmp_path: Path, block: str):
    path = tmp_path / "morgan.ini"
    path.write_text(block + "[requirements]\nattrs =\n", encoding="utf-8")
    return load_config(path)


@pytest.mark.parametrize("name", [None, "", "  "])
def test_default_name_names_the_interpreter(name):
    first = generate_env(name).splitlines()[0]
    expected = f"[env.{sys.implementation.name}{sys.version_info[0]}.{sys.version_info[1]}"
    assert first.startswith(expected)
    assert "None" not in first
    assert first == f"[env.{generate.default_env_name()}]"


def test_generate_env_loads_back_exactly(tmp_path):
    config = roundtrip(tmp_path, generate_env("here"))
    (env,) = config.environments
    assert env.name == "here"
    assert env.tags == list(sys_tags())
    local = default_environment()
    assert {k: env.markers[k] for k in MARKER_KEYS} == {k: local[k] for k in MARKER_KEYS}
    assert str(env.python_full_version) == local["python_full_version"].rstrip("+")


def test_generate_env_with_default_name_loads(tmp_path):
    config = roundtrip(tmp_path, generate_env(None))
    assert config.environments[0].name == generate.default_env_name()
    assert config.environments[0].tags == list(sys_tags())


def test_generate_env_shape():
    text = generate_env("x")
    assert text.endswith("\n\n")  # `>> morgan.ini` twice gives separate sections
    keys = [line.split(" =")[0] for line in text.splitlines()[1:] if " =" in line]
    assert keys[:3] == ["os_name", "platform_tag", "sys_platform"]
    assert "tags" in keys and "implementation_name" in keys
    tag_lines = text.split("tags =\n", 1)[1].splitlines()
    assert all(line.startswith("    ") for line in tag_lines if line)


def fake_dist(name, version):
    return SimpleNamespace(metadata={"Name": name}, version=version)


def test_generate_reqs_modes(monkeypatch):
    dists = [
        fake_dist("Requests", "2.32.3"),
        fake_dist("attrs", "23.2.0"),
        fake_dist(None, "1.0"),  # broken install without METADATA
        fake_dist("requests", "1.0"),  # shadowed by the first on sys.path
        fake_dist("zope.interface", "6.0"),
    ]
    monkeypatch.setattr(generate.metadata, "distributions", lambda: iter(dists))
    assert generate_reqs() == (
        "[requirements]\nattrs = >=23.2.0\nrequests = >=2.32.3\nzope.interface = >=6.0\n\n"
    )
    assert "requests = ==2.32.3" in generate_reqs("==")
    assert "requests = <=2.32.3" in generate_reqs("<=")
    with pytest.raises(ValueError, match="mode must be one of"):
        generate_reqs("~=")


def test_generate_reqs_real_environment_loads(tmp_path):
    text = generate_reqs("==")
    assert "packaging = ==" in text
    names = [line.split(" =")[0] for line in text.splitlines()[1:] if line]
    assert names == sorted(names)
    assert all(n == n.lower() for n in names)
    config = roundtrip(tmp_path, generate_env("here") + text)
    assert any(r.requirement.name == "packaging" for r in config.requirements)
