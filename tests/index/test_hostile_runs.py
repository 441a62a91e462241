"""Whole `mirror` runs against a hostile or broken upstream: the run goes on or fails
with one clear line, never a traceback, never a bomb read whole or written to the tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.dists import sdistread

from ..distbuilder import make_bomb_sdist, make_bomb_wheel, write_bomb_metadata
from ..fakeindex import FakeIndex
from ..helpers import ini_env_block, sdist, wheel


def mirror(root: Path, index: FakeIndex, requirements: str, mirror_options: str = "", *flags):
    root.mkdir(parents=True, exist_ok=True)
    ini = ini_env_block("py312", "3.12.1") + "[requirements]\n" + requirements
    if mirror_options:
        ini += "\n[mirror]\n" + mirror_options
    (root / "morgan.ini").write_text(ini)
    return main(["mirror", "-i", str(root), "-I", index.url, "--skip-server-copy", *flags])


def tree_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "packages").rglob("*") if p.is_file())


def test_unsafe_filename_skipped_with_a_warning_and_the_run_goes_on(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = wheel(fake_index, dists, "app", "1.0")
    doc = json.loads(fake_index.project_json("app"))
    doc["files"].append({"filename": "../../x.tar.gz", "url": fake_index.file_url(good.name)})
    doc["files"].append({"filename": 3, "url": "x", "hashes": "nope"})
    fake_index.raw_page("app", json.dumps(doc).encode())
    root = tmp_path / "tree"
    assert mirror(root, fake_index, "app =\n") == 0
    out = capsys.readouterr()
    assert f"warning: {fake_index.url}app/: skipped file entry '../../x.tar.gz': path " in out.err
    assert "skipped file entry 3: filename is int" in out.err
    assert "Traceback" not in out.out + out.err
    assert tree_files(root) == [good.name, good.name + ".metadata"]
    assert not (tmp_path / "x.tar.gz").exists()


def test_page_of_the_wrong_shape_fails_its_project_with_one_line(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel(fake_index, dists, "app", "1.0", requires_dist=["dep"])
    fake_index.raw_page("dep", b"[1, 2, 3]")
    assert mirror(tmp_path / "tree", fake_index, "app =\n") == 1
    err = capsys.readouterr().err
    assert "dep/: unreadable project page: the JSON document is an array" in err
    assert "Traceback" not in err and "AttributeError" not in err


@pytest.mark.parametrize("pep658", [True, False])
def test_zip_bomb_wheel_fails_its_env_and_nothing_lands(
    dists: Path, tmp_path: Path, pep658: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = make_bomb_wheel(dists, "bomb", "1.0", 64)
    with FakeIndex(pep658=pep658) as index:
        index.add(bomb, serve_metadata=write_bomb_metadata(dists / "M", "bomb", "1.0", 64))
        root = tmp_path / "tree"
        assert mirror(root, index, "bomb =\n", "max-metadata-mib = 1\n") == 1
    err = capsys.readouterr().err
    assert "bomb-1.0-py3-none-any.whl: bomb-1.0.dist-info/METADATA inflates past 1 MiB" in err
    assert "Traceback" not in err and "MemoryError" not in err
    assert not (root / "packages").exists() or tree_files(root) == []


@pytest.mark.processes
def test_gzip_bomb_sdist_is_refused_by_the_worker_process_too(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real run reads sdists in a worker process: the refusal comes back as the
    same one-line error, with no traceback from either process."""
    fake_index.add(make_bomb_sdist(dists, "bomb", "1.0", 2048))
    assert mirror(tmp_path / "tree", fake_index, "bomb =\n", "", "--static-metadata-only") == 1
    err = capsys.readouterr().err
    assert "its member bomb-1.0/data.bin would take the archive past 1024 MiB" in err
    assert "Traceback" not in err


def test_gzip_bomb_sdist_is_read_once_and_refused(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_index.add(make_bomb_sdist(dists, "bomb", "1.0", 2048))
    # (Without the flag the metadata hook is tried next, and resolve/hooks.py refuses to
    # unpack it past the same 1 GiB.)
    flags = ("--static-metadata-only",)
    assert mirror(tmp_path / "tree", fake_index, "bomb =\n", "", *flags) == 1
    err = capsys.readouterr().err
    assert "its member bomb-1.0/data.bin would take the archive past 1024 MiB" in err
    assert "Traceback" not in err


def test_each_sdist_read_once_per_run(
    fake_index: FakeIndex,
    dists: Path,
    tmp_path: Path,
    tiny_backend_wheel: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_index.add(tiny_backend_wheel)
    sdist(fake_index, dists, "src", "1.0")
    reads: list[str] = []
    real = sdistread.read_archive
    monkeypatch.setattr(sdistread, "read_archive", lambda p: reads.append(p.name) or real(p))
    root = tmp_path / "tree"
    assert mirror(root, fake_index, "src =\n", "", "-q") == 0
    assert "src-1.0.tar.gz" in tree_files(
        root
    ) and "tinybackend-1.0-py3-none-any.whl" in tree_files(root)
    assert reads == ["src-1.0.tar.gz"]  # metadata and build requirements: one pass


def test_drip_fed_file_gives_up_at_the_configured_deadline(
    fake_index: FakeIndex, dists: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slow = wheel(fake_index, dists, "slow", "1.0")
    fake_index.drip(slow.name, interval=0.2)
    options = "download-timeout-floor = 1\ndownload-min-rate = 1000000\n"
    assert mirror(tmp_path / "tree", fake_index, "slow =\n", options) == 1
    err = capsys.readouterr().err
    assert f"error: {slow.name}: GET " in err and "gave up after 1s" in err
    gets = [r for r in fake_index.requests if r.path == "/files/" + slow.name]
    assert len(gets) == 1


def test_unexpected_exception_is_one_line_unless_verbose(
    fake_index: FakeIndex,
    dists: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wheel(fake_index, dists, "app", "1.0")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something nobody foresaw\nsecond line")

    monkeypatch.setattr("morgan_like.modes.bundle_pages.write_projects", broken)
    assert mirror(tmp_path / "tree", fake_index, "app =\n", "", "-q") == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "error: unexpected RuntimeError: something nobody foresaw; re-run with -v for details"
    ]
    assert mirror(tmp_path / "tree", fake_index, "app =\n", "", "-v") == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "error: unexpected RuntimeError: something nobody foresaw (traceback above)" in err
