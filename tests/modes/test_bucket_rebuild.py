"""A bucket's working tree rebuilt from the bucket (modes/bucket_rebuild.py), and the
``[storage]`` section of a config (config/storageconf.py).  Tests that start SeaweedFS
are marked e2e."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.config.storageconf import StorageSettings, storage_of
from morgan_like.errors import ConfigError
from morgan_like.modes.bucket import storage_settings
from morgan_like.modes.bucket_rebuild import state_lost

from . import test_bucket
from .test_bucket import _sync_both, _untimed

# test_bucket.py's fixtures: the store's AWS_* in the environment, the fake upstream.
upstream = test_bucket.upstream

# ---------------------------------------------------------------- [storage]


def _ini(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sync.ini"
    path.write_text(body)
    return path


def test_storage_section_is_read(tmp_path):
    path = _ini(
        tmp_path,
        "[storage]\nendpoint_url = http://127.0.0.1:8333\nregion = eu-1\nprofile = mirror\n",
    )
    assert storage_of(path) == StorageSettings("http://127.0.0.1:8333", "eu-1", "mirror")
    assert storage_of(_ini(tmp_path, "[sync]\nworkers = 2\n")) is None


@pytest.mark.parametrize(
    "key", ["aws_secret_access_key", "aws-access-key-id", "secret-key", "session_token"]
)
def test_storage_section_refuses_credentials_without_echoing_them(tmp_path, key):
    path = _ini(tmp_path, f"[storage]\nregion = eu-1\n{key} = hunter2\n")
    with pytest.raises(ConfigError) as caught:
        storage_of(path)
    text = str(caught.value)
    assert "hunter2" not in text and "AWS_SECRET_ACCESS_KEY" in text and ":3" in text


def test_storage_section_refuses_an_endpoint_with_credentials(tmp_path):
    with pytest.raises(ConfigError) as caught:
        storage_of(_ini(tmp_path, "[storage]\nendpoint-url = http://k:hunter2@h:1\n"))
    assert "hunter2" not in str(caught.value)


def test_storage_section_unknown_key_did_you_mean(tmp_path):
    with pytest.raises(ConfigError) as caught:
        storage_of(_ini(tmp_path, "[storage]\nendpoint = http://h:1\n"))
    assert "did you mean 'endpoint-url'" in str(caught.value)


def test_sync_and_bundle_configs_accept_the_section(tmp_path):
    from morgan_like.config.ini import load_config
    from morgan_like.config.syncconf import load_sync_config

    section = "[storage]\nendpoint-url = http://127.0.0.1:1\n"
    assert load_sync_config(_ini(tmp_path, "[sync]\nworkers = 2\n" + section)).storage == (
        StorageSettings("http://127.0.0.1:1")
    )
    bundle = tmp_path / "morgan.ini"
    bundle.write_text(
        "[env.a]\nos_name = posix\nsys_platform = linux\nplatform_machine = x86_64\n"
        "platform_tag = manylinux_2_17_x86_64\npython_version = 3.12\n"
        "[requirements]\nlib = >=1\n" + section
    )
    assert load_config(bundle).storage == StorageSettings("http://127.0.0.1:1")


def test_config_goes_over_the_aws_variables(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://env:1")
    monkeypatch.setenv("AWS_REGION", "env-region")
    got = storage_settings(StorageSettings(endpoint_url="http://config:1"))
    assert got == StorageSettings("http://config:1", "env-region")
    assert storage_settings().endpoint_url == "http://env:1"


def test_state_lost(tmp_path):
    from morgan_like.tree.state import TreeState

    assert state_lost(tmp_path / "none") == "no working tree"
    (tmp_path / "simple").mkdir()
    assert state_lost(tmp_path) == "its state is missing"
    TreeState(tmp_path).close()
    assert state_lost(tmp_path) is None
    (tmp_path / ".morgan-like" / "rebuilding").write_text("no working tree")
    assert state_lost(tmp_path) == "a rebuild was cut short"  # its evicted rows may be missing
    (tmp_path / ".morgan-like" / "rebuilding").unlink()
    (tmp_path / ".morgan-like" / "state.db").write_bytes(b"not a database" * 100)
    assert state_lost(tmp_path) == "its state is unreadable"


# ---------------------------------------------------------------- against SeaweedFS


def _sync(url: str, state: Path, index_url: str, *extra: str) -> None:
    argv = ["sync", "-i", url, "--local-state", str(state), "-I", index_url, *extra]
    assert main(argv) == 0


def _fetched(upstream) -> list[str]:
    return [r.path for r in upstream.requests if r.path.startswith("/files/")]


@pytest.mark.e2e
@pytest.mark.parametrize("loss", ["working-tree", "state-db"])
def test_a_lost_working_tree_is_rebuilt_from_the_bucket(
    seaweed, s3_env, upstream, tmp_path, capsys, loss
):
    """Sync into a bucket, lose the working tree (or only its state.db), sync again: only
    what upstream changed is fetched, and the bucket ends as a disk tree synced alike."""
    from ..helpers import wheel
    from ..transfer_support import tree_files

    bucket = seaweed.new_bucket("rebuild")
    url, state, disk = f"s3://{bucket}/mirror", tmp_path / "state", tmp_path / "disk"
    _sync_both(url, state, disk, upstream.url)
    if loss == "working-tree":
        shutil.rmtree(state)
    else:
        (state / ".morgan-like" / "state.db").write_bytes(b"corrupt" * 512)
        for suffix in ("-wal", "-shm"):
            Path(f"{state}/.morgan-like/state.db{suffix}").unlink(missing_ok=True)
    new = wheel(upstream, upstream.dists, "lib", "3.0")
    upstream.reset_log()
    capsys.readouterr()
    _sync(url, state, upstream.url)
    out = capsys.readouterr()
    assert [p for p in _fetched(upstream) if not p.endswith(".metadata")] == [f"/files/{new.name}"]
    assert "Rebuilt the working tree" in out.out + out.err
    assert main(["sync", "-i", str(disk), "-I", upstream.url, "-q"]) == 0
    got, want = _untimed(seaweed.objects(bucket, "mirror/")), _untimed(tree_files(disk))
    import difflib

    bad = [k for k in want if got.get(k) != want[k]]
    assert not bad, "\n".join(
        difflib.unified_diff(
            (got.get(bad[0]) or b"").decode().replace(",", ",\n").splitlines(),
            want[bad[0]].decode().replace(",", ",\n").splitlines(),
            lineterm="",
        )
    )
    assert got == want
    # a no-op sync after it fetches nothing, and says nothing of a rebuild
    upstream.reset_log()
    capsys.readouterr()
    _sync(url, state, upstream.url)
    out = capsys.readouterr()
    assert "Rebuilt" not in out.out + out.err
    assert _fetched(upstream) == []
    assert _untimed(seaweed.objects(bucket, "mirror/")) == _untimed(tree_files(disk))


@pytest.mark.e2e
def test_the_storage_section_is_honoured_and_never_stored(
    seaweed, s3_env, upstream, tmp_path, monkeypatch, capsys
):
    """The endpoint comes from [storage] alone (no AWS_ENDPOINT_URL); the credentials stay
    in the AWS variables, and no secret reaches the bucket, the working tree or the output."""
    from ..transfer_support import tree_files

    monkeypatch.delenv("AWS_ENDPOINT_URL")
    config = tmp_path / "sync.ini"
    config.write_text(f"[sync]\nworkers = 2\n\n[storage]\nendpoint-url = {seaweed.endpoint}\n")
    bucket = seaweed.new_bucket("storagesec")
    url, state = f"s3://{bucket}/m", tmp_path / "state"
    _sync(url, state, upstream.url, "-c", str(config))
    objects = seaweed.objects(bucket, "m/")
    assert "packages/lib/lib-2.0-py3-none-any.whl" in objects
    out = capsys.readouterr()
    secret = seaweed.secret_key.encode()
    assert seaweed.secret_key not in out.out + out.err
    assert not [k for k, v in objects.items() if secret in v]
    assert not [k for k, v in tree_files(state).items() if secret in v]
    hidden = [p for p in state.rglob("*") if p.is_file()]
    assert not [p for p in hidden if secret in p.read_bytes()]
    # lost, the working tree is rebuilt through the endpoint of [storage] too
    shutil.rmtree(state)
    assert "AWS_ENDPOINT_URL" not in os.environ
    upstream.reset_log()
    _sync(url, state, upstream.url, "-c", str(config))
    assert _fetched(upstream) == []
    assert (state / "simple" / "lib" / "index.json").is_file()


def test_nginx_config_takes_the_endpoint_of_the_storage_section(tmp_path, monkeypatch):
    """A bundle's working tree keeps its morgan.ini: nginx-config proxies the endpoint its
    [storage] names, over AWS_ENDPOINT_URL."""
    import dataclasses

    from morgan_like.cli.edge import bucket_run
    from morgan_like.modes.nginx_bucket import render_bucket_config

    from ..server_support import Dist, write_tree

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1111")
    working = tmp_path / "state"
    write_tree(working, [Dist("baz", "1.0")])
    (working / "morgan.ini").write_text("[storage]\nendpoint-url = http://127.0.0.1:2222\n")
    run = bucket_run("s3://pypi-mirror/tree", str(working))
    assert run is not None and run.storage == StorageSettings("http://127.0.0.1:2222")
    assert "server 127.0.0.1:2222;" in render_bucket_config(run, "0.0.0.0", 8080)
    plain = dataclasses.replace(run, storage=None)
    assert "server 127.0.0.1:1111;" in render_bucket_config(plain, "0.0.0.0", 8080)
