"""Redirects to another host: followed with one warning per host, or refused by config."""

from __future__ import annotations

from pathlib import Path

import pytest

from morgan_like.config.syncconf import load_sync_config
from morgan_like.errors import ConfigError, MorganLikeError, UpstreamError
from morgan_like.index.upstream import Upstream

from ..fakeindex import FakeIndex
from ..helpers import wheel


@pytest.fixture
def elsewhere(dists: Path):
    """A second index, reached by the name "localhost" (another host than 127.0.0.1)."""
    with FakeIndex() as other:
        wheel(other, dists, "ghost", "1.0")
        wheel(other, dists, "spook", "1.0")
        yield other


def _point(index: FakeIndex, other: FakeIndex, *names: str, userinfo: str = "") -> None:
    for name in names:
        index.add_project(name)
        location = f"http://{userinfo}localhost:{other.port}/simple/{name}/"
        index.redirects[f"/simple/{name}/"] = (303, location)


def test_followed_and_warned_once_per_host(fake_index: FakeIndex, elsewhere: FakeIndex) -> None:
    _point(fake_index, elsewhere, "ghost", "spook")
    warnings: list[str] = []
    with Upstream(fake_index.url, retries=0, on_warning=warnings.append) as upstream:
        assert [f.filename for f in upstream.project_page("ghost").files] == [
            "ghost-1.0-py3-none-any.whl"
        ]
        upstream.project_page("spook")
        assert upstream.redirects.hosts == ["localhost"]
    assert len(warnings) == 1
    assert f"{fake_index.url}ghost/ redirects to another host, localhost" in warnings[0]
    assert "cross-host-redirects = false" in warnings[0]


def test_refused_naming_the_url_without_its_password(
    fake_index: FakeIndex, elsewhere: FakeIndex
) -> None:
    _point(fake_index, elsewhere, "ghost", userinfo="me:s3cret@")
    options = {"cross-host-redirects": "false"}
    with (
        Upstream(fake_index.url, retries=0, options=options) as upstream,
        pytest.raises(UpstreamError) as info,
    ):
        upstream.project_page("ghost")
    text = str(info.value)
    assert f"GET {fake_index.url}ghost/: redirected to another host" in text
    assert f"me:****@localhost:{elsewhere.port}" in text and "s3cret" not in text
    assert not elsewhere.requests  # never followed


def test_same_host_redirects_stay_silent(fake_index: FakeIndex, dists: Path) -> None:
    wheel(fake_index, dists, "app", "1.0")
    warnings: list[str] = []
    with Upstream(fake_index.url, retries=0, on_warning=warnings.append) as upstream:
        upstream.project_page("app")
        # the fake answers /simple with a 301 to /simple/ on its own host
        assert upstream.get(fake_index.base_url + "/simple").url == fake_index.url
    assert warnings == []


def test_config_keys_are_validated(tmp_path: Path) -> None:
    config = tmp_path / "sync.ini"
    config.write_text("[sync]\ncross-host-redirects = false\n")
    assert load_sync_config(config).cross_host_redirects is False
    config.write_text("[sync]\ncross-host-redirects = sometimes\n")
    with pytest.raises(ConfigError, match="not a boolean"):
        load_sync_config(config)
    config.write_text("[mirror]\ncross-host-redirects = sometimes\n")
    with pytest.raises(ConfigError):
        load_sync_config(config)


@pytest.mark.parametrize("how", ["option", "config"])
def test_a_bundle_refuses_a_project_from_another_host(
    fake_index: FakeIndex, elsewhere: FakeIndex, dists: Path, tmp_path: Path, how: str
) -> None:
    """The mirror command's record field (MirrorOptions.cross_host_redirects, the CLI's
    --no-cross-host-redirects) or [mirror] cross-host-redirects = false."""
    import io

    from morgan_like.modes.bundle import MirrorOptions, run_mirror
    from morgan_like.output import Reporter

    from ..helpers import ini_env_block

    wheel(fake_index, dists, "app", "1.0", requires_dist=["ghost"])
    _point(fake_index, elsewhere, "ghost")
    root = tmp_path / "bundle"
    root.mkdir()
    refuse = "[mirror]\ncross-host-redirects = false\n" if how == "config" else ""
    (root / "morgan.ini").write_text(
        refuse + ini_env_block("py312", "3.12.1") + "[requirements]\napp =\n"
    )
    options = MirrorOptions(
        index_path=root, index_url=fake_index.url, cross_host_redirects=None if refuse else False
    )
    with pytest.raises(MorganLikeError) as info:
        run_mirror(options, Reporter(1, io.StringIO()))
    assert f"GET {fake_index.url}ghost/: redirected to another host" in str(info.value)
    assert not elsewhere.requests
    assert not (root / "packages/ghost").exists()
