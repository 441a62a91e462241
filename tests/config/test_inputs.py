"""config.inputs: the files an outside config read, placed under inputs/, the config re-pointed."""

from __future__ import annotations

from pathlib import Path

import pytest

from morgan_like.config.ini import Config, load_config
from morgan_like.config.inputs import (
    carry_inputs,
    place_inputs,
    repoint_includes,
    rewrite_config,
)
from morgan_like.config.reqfiles import Include, InputFile
from morgan_like.errors import ConfigError

from .support import ENV, write


def _carry_into(config: Config, tree: Path) -> Path:
    """What publish would write, written plainly; returns the tree's morgan.ini."""
    carried = carry_inputs(config, tree, "inputs")
    assert carried.inputs is not None
    for relpath, data in carried.inputs.items():
        (tree / relpath).parent.mkdir(parents=True, exist_ok=True)
        (tree / relpath).write_bytes(data)
    (tree / "morgan.ini").write_bytes(carried.config)
    return tree / "morgan.ini"


def _read(config: Config) -> tuple[list[str], ...]:
    return (
        [str(r.requirement) for r in config.requirements],
        [str(r.requirement) for r in config.constraints],
        [str(r.requirement) for r in config.build_requirements],
    )


PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]

[project]
name = "app"
version = "1"
dependencies = ["dep"]

[project.optional-dependencies]
fast = ["speedy"]
cli = ["click"]

[dependency-groups]
test = ["pytest"]
dev = ["ruff", {include-group = "test"}]
"""


def _project(src: Path) -> Path:
    write(src, "lib\n-r common/base.txt\n-c ../pins.txt\n", "reqs/main.txt")
    write(src, "helper\n", "reqs/common/base.txt")
    write(src, "lib<2\n", "pins.txt")
    write(src, PYPROJECT, "my app/pyproject.toml")
    write(src, '[dependency-groups]\ndocs = ["sphinx"]\n', "conf/pyproject.toml")
    return write(
        src,
        ENV + "\n# inputs, kept beside the app\n[requirements_from]\n"
        "requirements = ../reqs/main.txt\n"
        "pyproject = '../my app/pyproject.toml[fast,cli]'\n"
        "groups = '../my app/pyproject.toml:dev'\n"
        "    docs\n"
        "# a bare group: the pyproject.toml beside the config\n"
        "constraints: ../pins.txt\n",
        "conf/morgan.ini",
    )


def test_the_loader_records_every_file_it_read(tmp_path: Path) -> None:
    config = load_config(_project(tmp_path))
    got = [(f.key, f.ref, f.where.relative_to(tmp_path).as_posix()) for f in config.inputs]
    assert got == [
        ("requirements", "../reqs/main.txt", "reqs/main.txt"),
        ("requirements", None, "reqs/common/base.txt"),
        ("requirements", None, "pins.txt"),
        ("pyproject", "../my app/pyproject.toml", "my app/pyproject.toml"),
        ("groups", "../my app/pyproject.toml", "my app/pyproject.toml"),
        ("groups", "pyproject.toml", "conf/pyproject.toml"),
        ("constraints", "../pins.txt", "pins.txt"),
    ]
    main = config.inputs[0]
    assert [(i.first, i.option, i.target) for i in main.includes] == [
        (2, "-r", "common/base.txt"),
        (3, "-c", "../pins.txt"),
    ]
    assert main.includes[1].where == tmp_path / "pins.txt"


def test_a_carried_config_reads_the_same_from_the_tree(tmp_path: Path) -> None:
    config = load_config(_project(tmp_path / "src"))
    tree = tmp_path / "tree"
    copied = load_config(_carry_into(config, tree))
    assert _read(copied) == _read(config)
    assert sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()) == [
        "inputs/conf/pyproject.toml",
        "inputs/my app/pyproject.toml",
        "inputs/pins.txt",
        "inputs/reqs/common/base.txt",
        "inputs/reqs/main.txt",
        "morgan.ini",
    ]
    # Nothing but the values changed; extras and groups kept, quoted only where needed.
    expected = (tmp_path / "src/conf/morgan.ini").read_text()
    for old, new in (
        ("../reqs/main.txt", "inputs/reqs/main.txt"),
        ("'../my app/", "'inputs/my app/"),
        ("    docs\n", "    inputs/conf/pyproject.toml:docs\n"),
        ("constraints: ../pins.txt", "constraints: inputs/pins.txt"),
    ):
        expected = expected.replace(old, new)
    assert (tree / "morgan.ini").read_text() == expected
    # The tree's own config then carries nothing: its paths lead to the copies.
    again = carry_inputs(copied, tree, "inputs")
    assert again.inputs is None and again.config == (tree / "morgan.ini").read_bytes()


def test_rewrite_keeps_every_other_byte(tmp_path: Path) -> None:
    text = (
        "; header comment\r\n"
        "[requirements]\r\n"
        "requirements = a.txt\r\n"  # another section: a requirement named like a path
        "\r\n"
        "[requirements_from]\r\n"
        "requirements =   a.txt\t b.txt   \r\n"
        "  # a comment inside the value\r\n"
        "\r\n"
        "\tc.txt\r\n"
        "[mirror]\r\n"
        "diff-file = a.txt\r\n"
    )
    inputs = [
        InputFile(tmp_path / n, tmp_path / n, "requirements", n) for n in ("a.txt", "b.txt")
    ] + [InputFile(tmp_path / "c.txt", tmp_path / "sub/c.txt", "requirements", "c.txt")]
    places = place_inputs(inputs, "inputs", "x.ini")
    assert places == {
        tmp_path / "a.txt": "inputs/a.txt",
        tmp_path / "b.txt": "inputs/b.txt",
        tmp_path / "sub/c.txt": "inputs/sub/c.txt",
    }
    new = rewrite_config(text.encode(), inputs, places, "x.ini")
    assert (
        new
        == text.replace(
            "requirements =   a.txt\t b.txt   ", "requirements =   inputs/a.txt inputs/b.txt   "
        )
        .replace("\tc.txt", "\tinputs/sub/c.txt")
        .encode()
    )


def test_places_keep_the_layout_and_make_hidden_names_visible(tmp_path: Path) -> None:
    def files(*names: str) -> list[InputFile]:
        return [InputFile(tmp_path / n, tmp_path / n) for n in names]

    assert place_inputs(files("a/.ci/r.txt", "a/x/y.txt"), "inputs", "x.ini") == {
        tmp_path / "a/.ci/r.txt": "inputs/_.ci/r.txt",
        tmp_path / "a/x/y.txt": "inputs/x/y.txt",
    }
    assert place_inputs(files("only/.r.txt"), "inputs", "x.ini") == {
        tmp_path / "only/.r.txt": "inputs/_.r.txt"
    }
    with pytest.raises(ConfigError, match="would both be copied as inputs/_.ci/r.txt"):
        place_inputs(files(".ci/r.txt", "_.ci/r.txt"), "inputs", "x.ini")
    with pytest.raises(ConfigError, match="cannot be copied into the tree"):
        place_inputs(files("a\\b/r.txt", "c.txt"), "inputs", "x.ini")


def test_includes_that_would_miss_their_copy_are_repointed(tmp_path: Path) -> None:
    here = tmp_path / "reqs" / "main.txt"
    places = {
        here: "inputs/reqs/main.txt",
        tmp_path / "reqs/base.txt": "inputs/reqs/base.txt",
        tmp_path / "pins.txt": "inputs/pins.txt",
        tmp_path / ".hidden/h.txt": "inputs/_.hidden/h.txt",
        tmp_path / "deep/d.txt": "inputs/deep/d.txt",
    }
    text = (
        "-r base.txt\r\n"  # kept as it is
        f"  -c {tmp_path}/pins.txt   # pinned\r\n"
        "--requirement=../.hidden/h.txt\r\n"
        "-r ../nowhere/../deep/\\\r\n"
        "d.txt\r\n"
        "lib\r\n"
    )
    includes = [
        Include(1, 1, "-r", "base.txt", tmp_path / "reqs/base.txt"),
        Include(2, 2, "-c", f"{tmp_path}/pins.txt", tmp_path / "pins.txt"),
        Include(3, 3, "--requirement", "../.hidden/h.txt", tmp_path / ".hidden/h.txt"),
        Include(4, 5, "-r", "../nowhere/../deep/d.txt", tmp_path / "deep/d.txt"),
    ]
    new = repoint_includes(text.encode(), includes, places[here], places, str(here))
    assert new.decode() == (
        "-r base.txt\r\n"
        "  -c ../pins.txt   # pinned\r\n"
        "--requirement ../_.hidden/h.txt\r\n"
        "-r ../deep/d.txt\r\n"
        "lib\r\n"
    )
    # Nothing to re-point: the very bytes.
    assert repoint_includes(text.encode(), includes[:1], places[here], places, "f") == (
        text.encode()
    )
    with pytest.raises(ConfigError, match="changed since it was read"):
        repoint_includes(b"lib\n", includes[1:2], places[here], places, "f")


def test_a_symlinked_folder_keeps_its_includes_true(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write(src, "lib\n-r ../base.txt\n", "real/sub/req.txt")
    write(src, "helper\n", "real/base.txt")
    (src / "link").symlink_to(src / "real" / "sub")
    config = load_config(write(src, ENV + "[requirements_from]\nrequirements = link/req.txt\n"))
    tree = tmp_path / "tree"
    copied = load_config(_carry_into(config, tree))
    assert _read(copied) == _read(config) == (["lib", "helper"], [], [])
    assert (tree / "inputs/sub/req.txt").read_text() == "lib\n-r ../base.txt\n"
    assert "requirements = inputs/sub/req.txt" in (tree / "morgan.ini").read_text()


def test_the_trees_own_config_is_left_as_it_is(tmp_path: Path) -> None:
    write(tmp_path, "lib\n", "../req.txt")
    path = write(tmp_path, ENV + "[requirements_from]\nrequirements = ../req.txt\n")
    carried = carry_inputs(load_config(path), tmp_path, "inputs")
    assert carried.inputs is None and carried.config == path.read_bytes()
