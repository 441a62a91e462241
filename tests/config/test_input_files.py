"""Input files as a careless or hostile user gives them: FIFOs, devices, huge files, symlink
loops, byte order marks, UTF-16, binary, a section given twice, a 5 MB bad value.

Each is refused (or read) with one ConfigError naming the file (and the -r line that
named it), never a hang, a memory blow-up or a traceback.
"""

from __future__ import annotations

import codecs
import os
import threading
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.config.ini import load_config
from morgan_like.config.inputs import carry_inputs
from morgan_like.config.textfile import MAX_INPUT_BYTES, MAX_INPUT_MIB
from morgan_like.errors import ConfigError

from .support import ENV, error, write

REQS = "[requirements]\nattrs =\n"


def _load_error(path: Path) -> ConfigError:
    """load_config's error, from a thread given 20 s: a FIFO must not hang the loader."""
    box: list[BaseException] = []

    def run() -> None:
        try:
            load_config(path)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "load_config hung"
    assert box and isinstance(box[0], ConfigError), box
    return box[0]


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def test_a_fifo_config_is_refused_not_waited_on(tmp_path: Path) -> None:
    err = _load_error(_fifo(tmp_path / "morgan.ini"))
    assert "FIFO" in err.problem and "not a regular file" in err.problem
    assert err.file == str(tmp_path / "morgan.ini")


def test_a_fifo_named_by_r_is_refused_naming_the_line(tmp_path: Path) -> None:
    _fifo(tmp_path / "pipe.txt")
    write(tmp_path, "attrs\n-r pipe.txt\n", "requirements.txt")
    config = write(tmp_path, ENV + "[requirements_from]\nrequirements = requirements.txt\n")
    err = _load_error(config)
    assert err.file == str(tmp_path / "requirements.txt") and err.line == 2
    assert "FIFO" in err.problem and "pipe.txt" in err.problem


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/full"])
def test_a_device_is_refused(tmp_path: Path, device: str) -> None:
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    err = _load_error(Path(device))
    assert "character device, not a regular file" in err.problem
    config = write(tmp_path, ENV + f"[requirements_from]\nconstraints = {device}\n")
    err = _load_error(config)
    assert "character device" in err.problem and err.key == "constraints"


def test_the_cli_refuses_dev_zero_as_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["mirror", "-i", str(tmp_path / "t"), "-c", "/dev/zero", "-I", "http://127.0.0.1:9/"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "/dev/zero" in err and "not a regular file" in err
    assert "unexpected" not in err and "Traceback" not in err


def test_every_input_file_is_capped(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    with open(big, "wb") as fh:  # sparse: costs no disk
        fh.truncate(MAX_INPUT_BYTES + 1)
    err = _load_error(big)
    assert f"larger than {MAX_INPUT_MIB} MiB" in err.problem
    write(tmp_path, "-r big.txt\n", "requirements.txt")
    config = write(tmp_path, ENV + "[requirements_from]\nrequirements = requirements.txt\n")
    err = _load_error(config)
    assert f"{MAX_INPUT_MIB} MiB" in err.problem and err.line == 1
    (tmp_path / "pyproject.toml").symlink_to(big)
    config = write(tmp_path, ENV + "[requirements_from]\npyproject = pyproject.toml\n")
    assert f"{MAX_INPUT_MIB} MiB" in _load_error(config).problem


def test_a_symlink_loop_as_r_target_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "loop.txt").symlink_to("loop.txt")
    write(tmp_path, "attrs\n\n-r loop.txt\n", "requirements.txt")
    config = write(tmp_path, ENV + "[requirements_from]\nrequirements = requirements.txt\n")
    err = _load_error(config)
    assert err.file == str(tmp_path / "requirements.txt") and err.line == 3
    assert "symlink loop" in err.problem and "loop.txt" in err.problem
    # named by the config itself, and through a looping folder
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    for ref in ("loop.txt", "a/x.txt"):
        config = write(tmp_path, ENV + f"[requirements_from]\nrequirements = {ref}\n")
        err = _load_error(config)
        assert "symlink loop" in err.problem and err.key == "requirements", ref
    config = write(tmp_path, ENV + "[requirements_from]\npyproject = a/pyproject.toml\n")
    assert "symlink loop" in _load_error(config).problem


def test_a_utf8_byte_order_mark_is_read(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_bytes(codecs.BOM_UTF8 + b"attrs>=1\r\n")
    text = ENV + "[requirements_from]\nrequirements = requirements.txt\n"
    config_path = tmp_path / "morgan.ini"
    config_path.write_bytes(codecs.BOM_UTF8 + text.replace("\n", "\r\n").encode())
    config = load_config(config_path)
    assert [str(r.requirement) for r in config.requirements] == ["attrs>=1"]
    # carried into a tree with its mark and its line ends, and loadable there
    carried = carry_inputs(config, tmp_path / "tree", "inputs")
    assert carried.config.startswith(codecs.BOM_UTF8) and b"\r\n" in carried.config
    assert carried.inputs == {"inputs/requirements.txt": codecs.BOM_UTF8 + b"attrs>=1\r\n"}


@pytest.mark.parametrize(
    "data, said",
    [
        ((ENV + REQS).encode("utf-16"), "UTF-16"),
        ((ENV + REQS).encode("utf-16-le"), "NUL byte"),
        ((ENV + REQS).encode("utf-32"), "UTF-32"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "byte 0x89 at offset 0"),
        ((ENV + REQS).encode("latin-1") + "# café\n".encode("latin-1"), "byte 0xe9"),
    ],
)
def test_not_utf8_text_is_named_with_a_hint(tmp_path: Path, data: bytes, said: str) -> None:
    path = tmp_path / "morgan.ini"
    path.write_bytes(data)
    err = _load_error(path)
    assert err.problem.startswith("not UTF-8 text") and said in err.problem
    assert "UTF-8" in (err.hint or "") and "codec" not in str(err)
    (tmp_path / "requirements.txt").write_bytes(data)
    err = error(tmp_path, ENV + "[requirements_from]\nrequirements = requirements.txt\n")
    assert err.file == str(tmp_path / "requirements.txt") and said in err.problem


def test_a_section_given_twice_names_both_lines(tmp_path: Path) -> None:
    err = error(tmp_path, ENV + REQS + "\n" + ENV.replace("3.12", "3.11"))
    assert "[env.linux] is given twice, on lines 1 and 8" in err.problem and err.line == 8
    err = error(tmp_path, ENV + "[mirror]\nworkers = 2\n" + REQS + "[mirror]\nworkers = 3\n")
    assert "[mirror] is given twice" in err.problem
    # a list section adds up (generate_reqs >> morgan.ini)
    config = load_config(write(tmp_path, ENV + REQS + "[requirements]\nidna =\n"))
    assert [r.requirement.name for r in config.requirements] == ["attrs", "idna"]
    # a header inside a value (an indented continuation line) is not a section
    config = load_config(write(tmp_path, ENV + REQS + "idna =\n  >=2\n [env.linux]\n"))
    assert len(config.environments) == 1


def test_a_huge_bad_value_is_shown_cut(tmp_path: Path) -> None:
    huge = "9" * 5_000_000
    err = error(tmp_path, ENV.replace("3.12", huge) + REQS)
    shown = str(err)
    assert len(shown) < 700 and "characters left out" in shown
    assert "is not MAJOR.MINOR" in shown  # the end of the line stays
    err = error(tmp_path, ENV + "[requirements]\nattrs = " + "x" * 1_000_000 + "\n")
    assert len(str(err)) < 1500


@pytest.mark.parametrize(
    "keys, key, said",
    [
        ({"sys_platform": "win32", "os_name": "posix"}, "os_name", "contradicts sys_platform"),
        ({"sys_platform": "linux", "os_name": "nt"}, "os_name", "on Linux os_name is posix"),
        ({"sys_platform": "linux", "platform_machine": "potato"}, "platform_machine", "potato"),
        ({"sys_platform": "darwin", "platform_machine": "potato"}, "platform_machine", "Darwin"),
        (
            {"sys_platform": "win32", "platform_machine": "potato", "platform_tag": "win_amd64"},
            "platform_machine",
            "unknown Windows machine",
        ),
        ({"sys_platform": "linux", "python_version": "0.0"}, "python_version", "0.0"),
        ({"sys_platform": "linux", "python_full_version": "1.6.1"}, "python_full_version", ""),
        ({"sys_platform": "linux", "platform_tags": ";;"}, "platform_tags", "';;'"),
        ({"sys_platform": "linux", "platform_tags": "linux_x86_64 a/b"}, "platform_tags", "a/b"),
        ({"sys_platform": "freebsd", "platform_tag": "freebsd;13"}, "platform_tag", "freebsd;13"),
        ({"tags": "cp313-cp313-;;"}, "tags", "letters, digits and _"),
        ({"sys_platform": "linux", "manylinux": "99.99"}, "manylinux", "above the newest glibc"),
        ({"sys_platform": "linux", "manylinux": "1.5"}, "manylinux", "below the oldest"),
    ],
)
def test_contradictory_or_impossible_env_markers(
    tmp_path: Path, keys: dict[str, str], key: str, said: str
) -> None:
    keys = {"python_version": "3.13", **keys}
    if "python_full_version" in keys:
        del keys["python_version"]
    section = "[env.bad]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())
    err = error(tmp_path, section + REQS)
    assert err.key == key and said in str(err), str(err)
    assert "below the oldest" not in str(err) or "1.5" in str(err)


def test_a_glibc_newer_than_known_is_a_warning(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ENV + "manylinux = 2.82\n" + REQS))
    assert any("manylinux = 2.82: newer than any glibc" in w for w in config.warnings)
    assert not load_config(write(tmp_path, ENV + "manylinux = 2.28\n" + REQS)).warnings


def test_a_mirror_value_on_its_own_line(tmp_path: Path) -> None:
    """`workers =` with the value on an indented next line (found by tests/test_fuzz.py)."""
    config = load_config(write(tmp_path, ENV + REQS + "[mirror]\nworkers =\n    4\n"))
    assert config.options["workers"] == "4"
