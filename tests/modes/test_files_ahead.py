"""Files a resolution will most likely plan, fetched and read while it still resolves."""

from __future__ import annotations

from morgan_like.cli import main
from morgan_like.fetch.sdistcache import SdistCache
from morgan_like.index.upstream import Upstream
from morgan_like.modes import files_ahead
from morgan_like.modes.files_ahead import FilesAhead, likely_plan_files
from morgan_like.resolve.candidates import FileFilter

from ..fakeindex import FakeIndex
from ..helpers import env, ini_env_block, sdist, wheel

EVERY_TYPE = FileFilter()


def _page(index: FakeIndex, name: str):
    with Upstream(index.url, retries=1, backoff=0.01) as upstream:
        return upstream.project_page(name).files


def test_the_guess_is_the_newest_release_with_a_wheel_and_its_sdist(fake_index, dists) -> None:
    for version in ("1.0", "2.0"):
        wheel(fake_index, dists, "lib", version)
        sdist(fake_index, dists, "lib", version)
    sdist(fake_index, dists, "lib", "3.0")  # no wheel: binary first may pick 2.0, no guess
    wheel(fake_index, dists, "lib", "4.0rc1")  # a prerelease: not the guess
    files = _page(fake_index, "lib")
    names = sorted(f.filename for f in likely_plan_files(files, [env("e", "3.12.1")], EVERY_TYPE))
    assert names == []  # the newest final (3.0) has no wheel
    binary = env("b", "3.12.1")
    binary.binary_only = True
    sdist_free = [f for f in files if not f.filename.startswith("lib-3.0")]
    assert sorted(f.filename for f in likely_plan_files(sdist_free, [binary], EVERY_TYPE)) == [
        "lib-2.0-py3-none-any.whl"
    ]
    assert sorted(
        f.filename for f in likely_plan_files(sdist_free, [env("e", "3.12.1")], EVERY_TYPE)
    ) == ["lib-2.0-py3-none-any.whl", "lib-2.0.tar.gz"]


def test_a_guessed_sdist_is_fetched_once_and_read_before_anyone_asks(
    fake_index, dists, tmp_path
) -> None:
    wheel(fake_index, dists, "lib", "1.0")
    sdist(fake_index, dists, "lib", "1.0")
    with Upstream(fake_index.url, retries=1, backoff=0.01) as upstream:
        cache = SdistCache(upstream, tmp_path)
        ahead = FilesAhead(cache, tmp_path / "tree", (env("e", "3.12.1"),), EVERY_TYPE)
        ahead.guess(upstream.project_page("lib").files)
        ahead.close()
        path = cache.path_for(next(f for f in _page(fake_index, "lib") if f.is_sdist))
        assert cache.sdists.known(path) is not None  # read, nobody asked
        assert cache.cached(next(f for f in _page(fake_index, "lib") if f.is_wheel))


def test_a_wrong_guess_leaves_the_tree_as_the_resolution_says(
    fake_index, dists, tmp_path, monkeypatch
) -> None:
    """app pins lib<2; the guesses told nothing of it take lib 2.0 (the newest), which is
    fetched, and only lib 1.0's files enter the tree."""
    monkeypatch.setattr(files_ahead.FilesAhead, "want", lambda self, requirement: None)
    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib<2"])
    sdist(fake_index, dists, "app", "1.0", requires_dist=["lib<2"])
    for version in ("1.0", "2.0"):
        wheel(fake_index, dists, "lib", version)
        sdist(fake_index, dists, "lib", version)
    root = tmp_path / "bundle"
    root.mkdir()
    (root / "morgan.ini").write_text(ini_env_block("e", "3.12.1") + "[requirements]\napp =\n")
    assert main(["mirror", "-q", "-i", str(root), "-I", fake_index.url]) == 0
    fetched = {r.path.rsplit("/", 1)[-1] for r in fake_index.requests}
    assert "lib-2.0-py3-none-any.whl" in fetched  # the wrong guess was fetched
    assert sorted(p.name for p in (root / "packages" / "lib").iterdir()) == [
        "lib-1.0-py3-none-any.whl",
        "lib-1.0-py3-none-any.whl.metadata",
        "lib-1.0.tar.gz",
    ]


def test_a_guess_keeps_to_the_requirements_seen_on_the_project(fake_index, dists, tmp_path) -> None:
    """The config's requirements and the dependencies that led to a page narrow the guess:
    protobuf==3.20.1 guesses 3.20.1, not the newest protobuf."""
    from packaging.requirements import Requirement

    for version in ("1.0", "2.0"):
        wheel(fake_index, dists, "lib", version)
        sdist(fake_index, dists, "lib", version)
    with Upstream(fake_index.url, retries=1, backoff=0.01) as upstream:
        cache = SdistCache(upstream, tmp_path)
        ahead = FilesAhead(cache, tmp_path / "tree", (env("e", "3.12.1"),), EVERY_TYPE)
        ahead.want(Requirement("lib<2"))
        ahead.guess(upstream.project_page("lib").files)
        ahead.close()
    fetched = sorted(r.path.rsplit("/", 1)[-1] for r in fake_index.requests if "/files/" in r.path)
    assert fetched == ["lib-1.0-py3-none-any.whl", "lib-1.0.tar.gz"]


def test_a_dry_run_fetches_no_file(fake_index, dists, tmp_path) -> None:
    wheel(fake_index, dists, "lib", "1.0")
    sdist(fake_index, dists, "lib", "1.0")
    root = tmp_path / "bundle"
    root.mkdir()
    (root / "morgan.ini").write_text(ini_env_block("e", "3.12.1") + "[requirements]\nlib =\n")
    assert main(["mirror", "-q", "--dry-run", "-i", str(root), "-I", fake_index.url]) == 0
    assert not [r.path for r in fake_index.requests if r.path.endswith((".whl", ".tar.gz"))]


def test_a_file_past_the_guess_size_is_left_to_the_download_step(
    fake_index, dists, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(files_ahead, "MAX_GUESS_BYTES", 1)
    wheel(fake_index, dists, "lib", "1.0")
    with Upstream(fake_index.url, retries=1, backoff=0.01) as upstream:
        cache = SdistCache(upstream, tmp_path)
        ahead = FilesAhead(cache, tmp_path / "tree", (env("e", "3.12.1"),), EVERY_TYPE)
        ahead.guess(upstream.project_page("lib").files)
        ahead.close()
    assert not [r.path for r in fake_index.requests if r.path.endswith(".whl")]


def test_a_guess_is_for_the_envs_a_requirement_applies_to(fake_index, dists, tmp_path) -> None:
    """zipp; python_version < "3.8" reaches the page of zipp: only the old env guesses (its
    newest zipp for 3.7), not the new one, which never plans zipp."""
    from packaging.requirements import Requirement

    wheel(fake_index, dists, "zipp", "1.0")
    wheel(fake_index, dists, "zipp", "2.0", requires_python=">=3.9")
    old, new = env("old", "3.7.9"), env("new", "3.12.1")
    with Upstream(fake_index.url, retries=1, backoff=0.01) as upstream:
        cache = SdistCache(upstream, tmp_path)
        ahead = FilesAhead(cache, tmp_path / "tree", (old, new), EVERY_TYPE)
        ahead.want(Requirement('zipp; python_version < "3.8"'))
        ahead.guess(upstream.project_page("zipp").files)
        ahead.close()
    fetched = sorted(r.path.rsplit("/", 1)[-1] for r in fake_index.requests if "/files/" in r.path)
    assert fetched == ["zipp-1.0-py3-none-any.whl"]
