"""A tree in an S3-compatible bucket: ``-i s3://...``, nginx in front of the bucket, and the
whole scenario against a real SeaweedFS (tests/seaweed.py; skipped where ``weed`` cannot
run).  Tests that start SeaweedFS, nginx or a client are marked e2e."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from morgan_like.cli import main
from morgan_like.modes.bucket import (
    BucketRun,
    BucketURL,
    default_state_dir,
    parse_bucket_url,
)
from morgan_like.modes.nginx_bucket import (
    bucket_endpoint,
    render_bucket_config,
)

from ..clients import MATRIX_DISTS, UV_ACCEPT
from ..nginx_support import nginx_main_config, nginx_workdir
from ..server_support import Dist, InProcessServer, free_port, write_tree
from .test_nginx import CASES, NGINX, WHEEL, fetch, serve_nginx

# ---------------------------------------------------------------- the URL and the CLI


@pytest.mark.parametrize(
    ("text", "bucket", "prefix"),
    [
        ("s3://pypi-mirror", "pypi-mirror", ""),
        ("s3://pypi-mirror/", "pypi-mirror", ""),
        ("S3://pypi.mirror/a/b/", "pypi.mirror", "a/b"),
        ("s3://abc/tree", "abc", "tree"),
    ],
)
def test_bucket_url_parsed(text, bucket, prefix):
    assert parse_bucket_url(text) == BucketURL(bucket, prefix)
    assert parse_bucket_url(parse_bucket_url(text).url) == BucketURL(bucket, prefix)


@pytest.mark.parametrize(
    "text",
    [
        "s3://",
        "s3://ab",
        "s3://Upper/x",
        "s3://a_b/x",
        "s3://bucket/../x",
        "s3://bucket/a//b",
        "s3://bucket/a?versionId=1",
        "s3://key:secret@bucket/x",
    ],
)
def test_bucket_url_refused(text):
    with pytest.raises(ValueError):
        parse_bucket_url(text)


def test_cli_refuses_a_bad_bucket_url_without_echoing_credentials(capsys):
    assert main(["sync", "-i", "s3://AKIA:hunter2@bucket/x"]) == 2
    err = capsys.readouterr().err
    assert "hunter2" not in err and "AWS_ACCESS_KEY_ID" in err


@pytest.mark.parametrize("command", ["serve", "copy_server", "genlocal"])
def test_commands_of_disk_trees_refuse_a_bucket(command, capsys):
    assert main([command, "-i", "s3://pypi-mirror/tree"]) == 2
    err = capsys.readouterr().err
    assert "local disk" in err and "nginx-config -i s3://pypi-mirror/tree" in err
    assert "unexpected" not in err


def test_verify_of_a_bucket_refuses_provenance(capsys):
    assert main(["verify", "-i", "s3://pypi-mirror/tree", "--provenance"]) == 2
    assert "local disk only" in capsys.readouterr().err


def test_state_dir_only_with_a_bucket(tmp_path, capsys):
    assert main(["sync", "-i", str(tmp_path / "t"), "--local-state", str(tmp_path / "s")]) == 2
    assert "--local-state goes with -i s3://" in capsys.readouterr().err
    assert main(["sync", "-i", "s3://b-1/x", "--local-state", "s3://b-1/y"]) == 2
    assert "local folder" in capsys.readouterr().err


def test_default_state_dir_is_keyed_by_the_url(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    one = default_state_dir(parse_bucket_url("s3://pypi-mirror/a"))
    assert one == default_state_dir(parse_bucket_url("s3://pypi-mirror/a/"))
    assert one != default_state_dir(parse_bucket_url("s3://pypi-mirror/b"))
    assert one.parent == tmp_path / "morgan-like" / "s3" and len(one.name) == 16


def test_plan_push_from_the_generations(tmp_path):
    from morgan_like.modes.bucket import plan_push, record_pushed
    from morgan_like.tree.generations import record_generation
    from morgan_like.tree.state import TreeState

    root, here = tmp_path / "w", parse_bucket_url("s3://b-1/t")
    (root / "simple" / "a").mkdir(parents=True)
    (root / "simple" / "a" / "index.json").write_text("{}")
    with TreeState(root) as state:
        record_generation(state, ["simple/a/index.json", "packages/a/a.whl"], [])
        state.commit()
    assert plan_push(root, here).full  # never pushed: in full
    record_pushed(root, here, 1)
    with TreeState(root) as state:
        record_generation(state, ["simple/a/index.json"], ["packages/a/a.whl"])
        state.commit()
    plan = plan_push(root, here)
    assert not plan.full and plan.generation == 2
    assert plan.changed == ("simple/a/index.json",) and plan.removed == ("packages/a/a.whl",)
    # the same working tree given to another bucket: that one is pushed whole
    assert plan_push(root, parse_bucket_url("s3://b-2/t")).full
    record_pushed(root, here, 2)
    assert plan_push(root, here) == type(plan)((), (), False, 2)


# ---------------------------------------------------------------- the nginx config


def test_bucket_endpoint():
    assert bucket_endpoint("http://127.0.0.1:8333") == ("http", "127.0.0.1:8333")
    assert bucket_endpoint("https://minio.example") == ("https", "minio.example:443")
    assert bucket_endpoint(None, "eu-west-1") == ("https", "s3.eu-west-1.amazonaws.com:443")
    with pytest.raises(ValueError):
        bucket_endpoint("ftp://x")


def _bucket_run(tmp_path: Path, url: str = "s3://pypi-mirror/tree") -> BucketRun:
    working = tmp_path / "state"
    write_tree(working, [Dist("Foo.Bar", "1.0"), Dist("baz", "1.0")])
    return BucketRun(parse_bucket_url(url), working)


def test_render_bucket_config(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8333")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2")
    conf = render_bucket_config(_bucket_run(tmp_path), "0.0.0.0", 8080)
    for needle in (
        "listen 0.0.0.0:8080;",
        "server 127.0.0.1:8333;",
        "proxy_pass http://morgan_like_bucket/pypi-mirror/tree/;",
        "proxy_pass http://morgan_like_bucket/pypi-mirror/tree/packages/;",
        "proxy_pass http://morgan_like_bucket/pypi-mirror/tree/json/$morgan_like_project;",
        'add_header Content-Type "application/vnd.pypi.simple.v1+json" always;',
        'add_header Vary "Accept, Accept-Encoding" always;',
        "public, max-age=31536000, immutable",
        "proxy_cache morgan_like_files;",
        "foo[-_.]+bar",
        r"location ~ /\. { return 404; }",
    ):
        assert needle in conf, needle
    assert "hunter2" not in conf
    # the PEP 691 maps are modes/nginx.py's own
    from morgan_like.modes.nginx import negotiation_maps

    assert "\n".join(negotiation_maps(["baz", "foo-bar"])) in conf


def test_nginx_accepts_the_bucket_config(tmp_path, monkeypatch):
    if NGINX is None:
        pytest.skip("nginx not installed")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    work = tmp_path / "work"
    cache = nginx_workdir(work) / "cache"
    snippet = render_bucket_config(_bucket_run(tmp_path), "127.0.0.1", 8080, cache_dir=cache)
    conf = nginx_main_config(work, snippet)
    (work / "nginx.conf").write_text(conf)
    check = subprocess.run(
        [NGINX, "-t", "-p", str(work), "-c", str(work / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


# ---------------------------------------------------------------- nginx over SeaweedFS


def run_bucket_nginx(run: BucketRun, work: Path, env: dict[str, str]) -> Iterator[int]:
    """nginx proxying ``run``'s bucket (endpoint from ``env``), its files in ``work``."""
    if NGINX is None:
        pytest.skip("nginx not installed")
    port = free_port()
    saved = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = env["AWS_ENDPOINT_URL"]
    try:
        cache = nginx_workdir(work) / "cache"
        conf = nginx_main_config(
            work, render_bucket_config(run, "127.0.0.1", port, cache_dir=cache)
        )
    finally:
        if saved is None:
            del os.environ["AWS_ENDPOINT_URL"]
        else:
            os.environ["AWS_ENDPOINT_URL"] = saved
    yield from serve_nginx(work, port, conf)


def upload_tree(seaweed, root: Path, bucket: str, prefix: str) -> None:
    """Every visible file of ``root`` into the bucket, as the push types them."""
    from morgan_like.modes.nginx import JSON_V1

    client = seaweed.boto3_client()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if (
            not path.is_file()
            or path.is_symlink()
            or any(p.startswith(".") for p in rel.split("/"))
        ):
            continue
        ctype = JSON_V1 if rel.endswith("index.json") else "application/octet-stream"
        client.put_object(
            Bucket=bucket, Key=f"{prefix}/{rel}", Body=path.read_bytes(), ContentType=ctype
        )


@pytest.fixture(scope="module")
def btree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bucket-tree") / "tree"
    write_tree(root, [*MATRIX_DISTS, Dist("big", "1.0", payload=os.urandom(300_000))])
    (root / "json").mkdir()
    (root / "json" / "alpha").write_text(
        '{"last_serial": 7, "info": {"name": "alpha"}, "urls": [{"url": "/packages/alpha/a.whl"}]}\n'
    )
    (root / "local.json").write_text('{\n"alpha": 7\n}\n')
    (root / "local.db.serial").write_text("7\n")
    return root


@pytest.fixture(scope="module")
def bucket_nginx(seaweed, btree, tmp_path_factory):
    bucket = seaweed.new_bucket("nginx")
    upload_tree(seaweed, btree, bucket, "tree")
    run = BucketRun(parse_bucket_url(f"s3://{bucket}/tree"), btree)
    yield from run_bucket_nginx(run, tmp_path_factory.mktemp("bucket-nginx"), seaweed.env())


@pytest.fixture(scope="module")
def bours(btree):
    with InProcessServer(btree) as srv:
        yield srv.port


# server.py looks a page's folder up before negotiating (404 beats 406); nginx in front
# of a bucket cannot, and the tree's own files are simply not in the bucket's paths.
SKIPPED = {("/simple/nope/", "image/png"), ("/nope/", "image/png")}
BUCKET_CASES = [
    c for c in CASES if (c[1], c[2].get("Accept")) not in SKIPPED and "escape" not in c[1]
]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("method", "path", "headers"),
    BUCKET_CASES,
    ids=[f"{m} {p} {h}" for m, p, h in BUCKET_CASES],
)
def test_nginx_over_bucket_matches_server_py(bucket_nginx, bours, method, path, headers):
    n_resp, n_body = fetch(bucket_nginx, method, path, headers)
    o_resp, o_body = fetch(bours, method, path, headers)
    assert n_resp.status == o_resp.status
    status = o_resp.status
    if status in (200, 206):
        assert n_resp.getheader("Content-Type") == o_resp.getheader("Content-Type")
        assert n_resp.getheader("Cache-Control") == o_resp.getheader("Cache-Control")
        if path.startswith("/pypi/"):  # file URLs carry each server's own host
            n_body = n_body.replace(f"127.0.0.1:{bucket_nginx}".encode(), b"HOST")
            o_body = o_body.replace(f"127.0.0.1:{bours}".encode(), b"HOST")
            assert b'"url": "http://HOST/packages/' in n_body
        assert n_body == o_body
        if path.startswith("/packages/"):
            assert n_resp.getheader("Content-Encoding") is None
        else:
            assert "Accept" in n_resp.getheader("Vary")
    if status == 206:
        assert n_resp.getheader("Content-Range") == o_resp.getheader("Content-Range")
    if status == 301:
        assert n_resp.getheader("Location").endswith(o_resp.getheader("Location"))
    assert b"<Error>" not in n_body  # S3's XML errors never reach a client


@pytest.mark.e2e
def test_nginx_over_bucket_caches_files(bucket_nginx, seaweed):
    first, body = fetch(bucket_nginx, "GET", WHEEL, {})
    again, same = fetch(bucket_nginx, "GET", WHEEL, {})
    assert first.status == again.status == 200 and body == same
    resp, _ = fetch(bucket_nginx, "GET", "/simple/alpha/", {"Accept": UV_ACCEPT})
    assert resp.getheader("Content-Type") == "application/vnd.pypi.simple.v1+json"
    resp, _ = fetch(bucket_nginx, "DELETE", WHEEL, {})
    assert resp.status == 405


# ---------------------------------------------------------------- the scenario

# Written with the time of the run that built them (tests/modes/test_export.py leaves
# them out of byte-identity checks too).
TIMED = {"index.html", "sbom.cdx.json", "manifest.json"}


@pytest.fixture
def upstream(fake_index, dists):
    from ..helpers import sdist, wheel

    wheel(fake_index, dists, "app", "1.0", requires_dist=["lib>=1"])
    sdist(fake_index, dists, "app", "1.0")
    wheel(fake_index, dists, "lib", "1.0")
    wheel(fake_index, dists, "lib", "2.0")
    fake_index.dists = dists  # type: ignore[attr-defined]
    return fake_index


def _untimed(files: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in files.items() if k not in TIMED}


def _sync_both(url: str, state: Path, disk: Path, index_url: str) -> None:
    assert main(["sync", "-i", url, "--local-state", str(state), "-I", index_url, "-q"]) == 0
    assert main(["sync", "-i", str(disk), "-I", index_url, "-q"]) == 0


@pytest.mark.e2e
def test_sync_into_a_bucket_gives_the_disk_trees_bytes(seaweed, s3_env, upstream, tmp_path):
    from ..transfer_support import tree_files

    bucket = seaweed.new_bucket("sync")
    url, state, disk = f"s3://{bucket}/mirror", tmp_path / "state", tmp_path / "disk"
    _sync_both(url, state, disk, upstream.url)
    objects = seaweed.objects(bucket, "mirror/")
    assert "packages/lib/lib-2.0-py3-none-any.whl" in objects
    assert _untimed(objects) == _untimed(tree_files(disk))
    assert {"index.html", "manifest.json"} <= set(objects)
    working = tree_files(state)
    assert {k: objects[k] for k in working} == working  # the timed ones too
    # the working tree kept pages and state, not the files (they are in the bucket)
    assert not list((state / "packages").rglob("*.whl"))
    assert (state / "simple" / "lib" / "index.json").is_file()

    # upstream loses a release and a project: the bucket follows, as the disk tree does
    upstream.remove("lib-1.0-py3-none-any.whl")
    upstream.remove_project("app")
    _sync_both(url, state, disk, upstream.url)
    objects = seaweed.objects(bucket, "mirror/")
    assert "packages/lib/lib-1.0-py3-none-any.whl" not in objects
    assert not [k for k in objects if k.startswith(("packages/app/", "simple/app/"))]
    assert _untimed(objects) == _untimed(tree_files(disk))

    # a no-op sync uploads nothing but what a run always rewrites
    client = seaweed.boto3_client()
    before = {
        o["Key"]: o["ETag"]
        for o in client.list_objects_v2(Bucket=bucket, Prefix="mirror/packages/")["Contents"]
    }
    assert main(["sync", "-i", url, "--local-state", str(state), "-I", upstream.url, "-q"]) == 0
    after = {
        o["Key"]: o["ETag"]
        for o in client.list_objects_v2(Bucket=bucket, Prefix="mirror/packages/")["Contents"]
    }
    assert after == before


@pytest.mark.e2e
def test_clients_install_through_nginx_in_front_of_the_bucket(seaweed, s3_env, upstream, tmp_path):
    from ..clients import find_uv, installed, make_venv, pip_install, uv_install, uv_venv

    bucket = seaweed.new_bucket("clients")
    url, state = f"s3://{bucket}/tree", tmp_path / "state"
    assert main(["sync", "-i", url, "--local-state", str(state), "-I", upstream.url, "-q"]) == 0
    run = BucketRun(parse_bucket_url(url), state)
    gen = run_bucket_nginx(run, tmp_path / "nginx", seaweed.env())
    port = next(gen)
    try:
        index = f"http://127.0.0.1:{port}/simple/"
        check = "import importlib.metadata as m; print(m.version('app'), m.version('lib'))"
        vpy = make_venv(sys.executable, tmp_path / "pip-venv")
        pip_install(vpy, index, "app")
        assert installed(vpy, check) == "1.0 2.0"
        uv = find_uv()
        if uv is not None:
            upy = uv_venv(uv, sys.executable, tmp_path / "uv-venv")
            uv_install(uv, upy, index, "app")
            assert installed(upy, check) == "1.0 2.0"
    finally:
        gen.close()


@pytest.mark.e2e
def test_verify_reads_the_bucket(seaweed, s3_env, upstream, tmp_path, capsys):
    bucket = seaweed.new_bucket("verify")
    url, state = f"s3://{bucket}/tree", tmp_path / "state"
    assert main(["sync", "-i", url, "--local-state", str(state), "-I", upstream.url, "-q"]) == 0
    capsys.readouterr()
    assert main(["verify", "-i", url]) == 0
    out = capsys.readouterr()
    assert "4 files checked" in out.out and "0 problems" in out.out, out
    # its working tree lacks the files: the commands that read a tree on disk refuse it
    # (an export would send every evicted file as removed)
    for command in (
        ["export", "-o", str(tmp_path / "out"), "--site", "far"],
        ["verify"],
        ["serve"],
        ["genlocal"],
        ["copy_server"],
        ["nginx-config"],
    ):
        assert main([*command, "-i", str(state)]) == 2, command
        err = capsys.readouterr().err
        assert f"working tree of {url}" in err and "unexpected" not in err, err
    client = seaweed.boto3_client()
    client.put_object(Bucket=bucket, Key="tree/packages/lib/lib-2.0-py3-none-any.whl", Body=b"x")
    client.delete_object(Bucket=bucket, Key="tree/packages/app/app-1.0.tar.gz")
    client.delete_object(Bucket=bucket, Key="tree/packages/lib/lib-1.0-py3-none-any.whl.metadata")
    assert main(["verify", "-i", url]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines.pop().endswith("3 problems")
    assert sorted(line.split()[0] for line in lines) == ["CORRUPT", "MISSING", "MISSING"]
    assert any("app-1.0.tar.gz" in line for line in lines)
    assert any("lib-1.0-py3-none-any.whl.metadata" in line for line in lines)


# ---------------------------------------------------------------- kill -9 and resume

REPO = Path(__file__).resolve().parents[2]


def _whole(storage) -> list[str]:
    """What a client of the bucket would trip on now: objects a page links that are not
    there, whether or not a root page lists the page yet (a sync streams projects up
    before its end push writes the root)."""
    import io

    from morgan_like.modes.bucket_verify import verify_bucket
    from morgan_like.output import Reporter

    from ..seaweed import broken_links

    if storage.stat("simple/index.json") is None:
        return broken_links(storage)
    out = io.StringIO()
    saved, sys.stdout = sys.stdout, out
    try:
        verify_bucket(storage, Reporter(verbosity=0))
    finally:
        sys.stdout = saved
    missing = [line for line in out.getvalue().splitlines() if line.startswith("MISSING")]
    return missing + broken_links(storage)


def _kill_points(seaweed, s3_env, upstream, tmp_path) -> list[int]:
    """Count the steps of a first sync into a bucket (in this process), then pick a third
    of its push's steps (the first and last among them) and a few spread over the sync
    before it."""
    from morgan_like.tree import crashpoints

    trace: list[str] = []
    real = crashpoints.step

    def tracing() -> None:
        trace.append(sys._getframe(1).f_code.co_filename)

    crashpoints.step = tracing
    try:
        url = f"s3://{seaweed.new_bucket('trace')}/t"
        state = tmp_path / "trace-state"
        assert main(["sync", "-i", url, "--local-state", str(state), "-I", upstream.url, "-q"]) == 0
    finally:
        crashpoints.step = real
    pushing = [i + 1 for i, f in enumerate(trace) if f.endswith("bucketpush.py")]
    assert pushing, "the push takes no steps"
    before = pushing[0] - 1
    spread = sorted({max(1, before * k // 4) for k in range(1, 5)})
    return sorted(set(spread) | set(pushing[::3]) | {pushing[-1]})


@pytest.mark.e2e
def test_kill_9_anywhere_then_the_next_sync_completes_the_bucket(
    seaweed, s3_env, upstream, tmp_path
):
    from ..transfer_support import tree_files

    disk = tmp_path / "disk"
    assert main(["sync", "-i", str(disk), "-I", upstream.url, "-q"]) == 0
    points = _kill_points(seaweed, s3_env, upstream, tmp_path)
    assert len(points) >= 6, points
    env = {k: v for k, v in s3_env.items() if not k.startswith(("PIP_", "MORGAN_LIKE_"))}
    env.update(PYTHONPATH=str(REPO), PIP_CONFIG_FILE=os.devnull)
    for point in points:
        bucket = seaweed.new_bucket(f"kill{point}")
        url, state = f"s3://{bucket}/t", tmp_path / f"state{point}"
        argv = [sys.executable, "-m", "morgan_like", "sync", "-i", url]
        argv += ["--local-state", str(state), "-I", upstream.url, "-q"]
        killed = subprocess.run(
            argv, env={**env, "MORGAN_LIKE_CRASH_AFTER": str(point)}, capture_output=True
        )
        assert killed.returncode in (-9, 137), (point, killed.stderr)
        storage = seaweed.storage(bucket, "t")
        assert _whole(storage) == [], point
        again = subprocess.run(argv, env=env, capture_output=True, text=True)
        assert again.returncode == 0, (point, again.stderr)
        objects = seaweed.objects(bucket, "t/")
        assert _untimed(objects) == _untimed(tree_files(disk)), point
        assert _whole(storage) == []


@pytest.mark.e2e
def test_mirror_into_a_bucket_gives_the_disk_bundles_bytes(
    seaweed, s3_env, upstream, tmp_path, capsys
):
    from ..transfer_support import tree_files
    from .test_bundle import write_config

    config = write_config(tmp_path / "conf", "app =\n")
    bucket = seaweed.new_bucket("mirror")
    url, state, disk = f"s3://{bucket}/bundle", tmp_path / "state", tmp_path / "disk"
    argv = ["mirror", "-c", str(config), "-I", upstream.url]
    assert main([*argv, "-i", url, "--local-state", str(state), "-v"]) == 0
    out = capsys.readouterr()
    assert f"Pushed to {url}: " in out.out
    # the credentials and the endpoint reach neither the output nor the tree
    secret = seaweed.secret_key.encode()
    assert secret.decode() not in out.out + out.err
    assert seaweed.endpoint not in out.out + out.err
    for path in state.rglob("*"):
        assert not path.is_file() or secret not in path.read_bytes(), path
    assert main([*argv, "-i", str(disk), "-q"]) == 0
    objects = seaweed.objects(bucket, "bundle/")
    assert "packages/lib/lib-2.0-py3-none-any.whl" in objects
    assert _untimed(objects) == _untimed(tree_files(disk))
    assert tree_files(state) == objects  # mirror keeps its files: the bucket is its copy
    # a dry run pushes nothing and says nothing of the bucket
    assert main([*argv, "-i", url, "--local-state", str(state), "--dry-run"]) == 0
    assert "Pushed" not in capsys.readouterr().out


@pytest.mark.e2e
def test_a_bucket_that_cannot_be_written_is_one_line(seaweed, s3_env, upstream, tmp_path, capsys):
    url, state = "s3://no-such-bucket-here/t", tmp_path / "state"
    assert main(["sync", "-i", url, "--local-state", str(state), "-I", upstream.url, "-q"]) == 1
    err = capsys.readouterr().err
    assert "no-such-bucket-here" in err and "unexpected" not in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    # the bucket made, the next run pushes everything the first one published
    client = seaweed.boto3_client()
    client.create_bucket(Bucket="no-such-bucket-here")
    assert main(["sync", "-i", url, "--local-state", str(state), "-I", upstream.url, "-q"]) == 0
    assert "packages/lib/lib-2.0-py3-none-any.whl" in seaweed.objects("no-such-bucket-here", "t/")


def test_nginx_config_of_a_bucket_without_its_working_tree_warns(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8333")
    state = tmp_path / "nowhere"
    assert main(["nginx-config", "-i", "s3://b-1/t", "--local-state", str(state)]) == 0
    out = capsys.readouterr()
    assert "proxy_pass http://morgan_like_bucket/b-1/t/;" in out.out
    assert "no working tree" in out.err and str(state) in out.err


@pytest.mark.e2e
def test_a_curated_slice_in_a_bucket_keeps_its_files_locally(seaweed, s3_env, upstream, tmp_path):
    from .slice_support import write_config

    config = write_config(tmp_path / "slice.ini", ["app"], 1, ["py312"])
    bucket = seaweed.new_bucket("slice")
    url, state = f"s3://{bucket}/slice", tmp_path / "state"
    argv = ["sync", "-i", url, "--local-state", str(state), "-I", upstream.url, "-c", str(config)]
    assert main([*argv, "-q"]) == 0
    objects = seaweed.objects(bucket, "slice/")
    wheels = sorted(k for k in objects if k.endswith(".whl"))
    assert "packages/app/app-1.0-py3-none-any.whl" in wheels
    # the slice looks for its files on disk: they stay, and a re-run fetches none again
    assert sorted(p.relative_to(state).as_posix() for p in state.rglob("*.whl")) == wheels
    upstream.reset_log()
    assert main([*argv, "-q"]) == 0
    assert not [r.path for r in upstream.requests if r.path.startswith("/files/")]


@pytest.mark.e2e
def test_export_of_a_bucket_fetches_its_files_back_and_imports_as_the_disk_tree(
    seaweed, s3_env, upstream, tmp_path, capsys
):
    from ..transfer_support import tree_files
    from .test_transfer import server_py

    bucket = seaweed.new_bucket("export")
    url, state, disk = f"s3://{bucket}/t", tmp_path / "state", tmp_path / "disk"
    _sync_both(url, state, disk, upstream.url)
    assert not list((state / "packages").rglob("*.whl"))  # evicted
    out, copy = tmp_path / "out", tmp_path / "copy"
    copy.mkdir()
    argv = ["export", "-i", url, "--local-state", str(state), "--site", "far"]
    assert main([*argv, "-o", str(out), "--full"]) == 0
    assert "fetching 4 files back" in capsys.readouterr().out
    assert not list((state / "packages").rglob("*.whl"))  # dropped again
    imported = server_py(state / "server.py", "--import", out, "-i", copy)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert _untimed(tree_files(copy)) == _untimed(tree_files(disk))
    assert tree_files(copy) == seaweed.objects(bucket, "t/")

    # a delta after upstream moved: only the new file comes back, the removal travels
    upstream.remove("lib-1.0-py3-none-any.whl")
    wheel_path = _add_wheel(upstream, "lib", "3.0")
    assert main(["sync", "-i", url, "--local-state", str(state), "-I", upstream.url, "-q"]) == 0
    delta = tmp_path / "delta"
    assert main([*argv, "-o", str(delta)]) == 0
    assert "fetching 1 files back" in capsys.readouterr().out
    imported = server_py(state / "server.py", "--import", delta, "-i", copy)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert tree_files(copy) == seaweed.objects(bucket, "t/")
    assert (copy / "packages" / "lib" / wheel_path.name).read_bytes() == wheel_path.read_bytes()
    assert not (copy / "packages" / "lib" / "lib-1.0-py3-none-any.whl").exists()


def _add_wheel(index, name: str, version: str) -> Path:
    from ..helpers import wheel

    return wheel(index, index.dists, name, version)


@pytest.mark.e2e
def test_the_default_working_tree_is_under_the_cache_dir(
    seaweed, s3_env, upstream, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    url = f"s3://{seaweed.new_bucket('default')}/t"
    assert main(["sync", "-i", url, "-I", upstream.url, "-q"]) == 0
    working = default_state_dir(parse_bucket_url(url))
    assert working.is_relative_to(tmp_path / "cache")
    assert (working / "simple" / "lib" / "index.json").is_file()
    capsys.readouterr()
    assert main(["nginx-config", "-i", url, "-p", "8080"]) == 0
    out = capsys.readouterr()
    assert "no working tree" not in out.err and "lib;" in out.out


@pytest.mark.e2e
def test_an_evicted_file_is_neither_fetched_again_nor_dropped_from_its_page(
    seaweed, s3_env, upstream, tmp_path
):
    """After eviction the working tree holds lib 2.0's row and .metadata, not its bytes: a
    new lib release fetches only itself, and lib's page (working tree and bucket) still
    lists 2.0, as the disk tree's does."""
    from ..transfer_support import tree_files

    bucket = seaweed.new_bucket("evicted")
    url, state, disk = f"s3://{bucket}/mirror", tmp_path / "state", tmp_path / "disk"
    _sync_both(url, state, disk, upstream.url)
    assert not (state / "packages" / "lib" / "lib-2.0-py3-none-any.whl").exists()
    _add_wheel(upstream, "lib", "3.0")
    upstream.reset_log()
    assert main(["sync", "-i", url, "--local-state", str(state), "-I", upstream.url, "-q"]) == 0
    fetched = [r.path for r in upstream.requests if r.path.startswith("/files/")]
    assert [p for p in fetched if not p.endswith(".metadata")] == [
        "/files/lib-3.0-py3-none-any.whl"
    ]
    page = json.loads((state / "simple" / "lib" / "index.json").read_bytes())
    assert [f["filename"] for f in page["files"]] == [
        "lib-1.0-py3-none-any.whl",
        "lib-2.0-py3-none-any.whl",
        "lib-3.0-py3-none-any.whl",
    ]
    assert main(["sync", "-i", str(disk), "-I", upstream.url, "-q"]) == 0
    assert _untimed(seaweed.objects(bucket, "mirror/")) == _untimed(tree_files(disk))
