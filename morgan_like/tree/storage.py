"""Where a tree's visible bytes live: a narrow, typed storage interface and its two backends.

A run always writes a local working tree (pages, state, the files it fetched); a push
(``tree.bucketpush``) then copies its visible files to a ``Storage``.  The interface is
what a push, a verify and an export need of a store, and no more: put a whole object
durably, read it (whole or streamed), stat it, delete it, list a prefix.

- ``FsStorage(root)``: a directory.  A put lands through a temp file in the same folder,
  fsync and rename, so a reader sees the old object or the new one, never a part.
- ``S3Storage``: an S3-compatible bucket (AWS, SeaweedFS, MinIO, Ceph RGW) through boto3.
  A PUT is atomic per object; a file over ``MULTIPART_THRESHOLD`` goes up in parts and
  becomes visible only when the upload completes (a killed one leaves no object).
  Endpoint, region and credentials come from the arguments, else boto3's standard chain
  (``AWS_*`` variables, ``AWS_PROFILE`` and the ``~/.aws`` files).

Only this module imports the S3 client (tests/test_layout.py holds the rule).  No
message it raises names a credential: errors say the operation, the object's
``s3://bucket/key`` and the store's answer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol, cast

from morgan_like.errors import MorganLikeError, clip

# Parts of 64 MiB: a wheel under that is one PUT; the largest (torch, ~2.5 GB) ~40 parts.
MULTIPART_THRESHOLD = 64 * 1024 * 1024
MAX_CONNECTIONS = 32  # at least the most uploads a run makes side by side
_TMP_PREFIX = ".~storage-"  # FsStorage's temp files: hidden, never listed


class StorageError(MorganLikeError):
    """The store refused or failed an operation: the message names the object (never a
    credential) and the store's answer."""


@dataclass(frozen=True)
class ObjectStat:
    """One stored object: its key (relative to the storage's prefix), size and ETag
    (None where the backend has none: the filesystem)."""

    key: str
    size: int
    etag: str | None = None


class Storage(Protocol):
    """A flat key space of whole objects; keys are tree-relative paths with "/"."""

    def describe(self) -> str:
        """Where this storage is, for messages (``s3://bucket/prefix`` or a directory)."""
        ...

    def put_file(
        self, key: str, path: Path, *, content_type: str, cache_control: str | None = None
    ) -> None:
        """Store ``path``'s bytes as ``key``, whole or not at all, durably on return."""
        ...

    def put_bytes(
        self, key: str, data: bytes, *, content_type: str, cache_control: str | None = None
    ) -> None: ...

    def get(self, key: str) -> bytes:
        """The object's bytes; StorageError when it is missing."""
        ...

    def open(self, key: str) -> contextlib.AbstractContextManager[IO[bytes]]:
        """A streaming reader of the object (constant memory for any size)."""
        ...

    def stat(self, key: str) -> ObjectStat | None: ...

    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing one is not an error."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectStat]:
        """Every object whose key starts with ``prefix``, in key order."""
        ...

    def sweep(self) -> int:
        """Drop what puts cut short left behind (temp files, unfinished multipart uploads:
        never visible, but they take space); only when no put runs (under the tree lock).
        Returns how many it dropped."""
        ...


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a storage key: {key!r}")
    return key


class FsStorage:
    """A directory as a store: a put is temp file + fsync + rename (+ fsync of the folder)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def describe(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put_file(
        self, key: str, path: Path, *, content_type: str, cache_control: str | None = None
    ) -> None:
        with open(path, "rb") as src:
            self._write(key, lambda out: shutil.copyfileobj(src, out, 1024 * 1024))

    def put_bytes(
        self, key: str, data: bytes, *, content_type: str, cache_control: str | None = None
    ) -> None:
        self._write(key, lambda out: out.write(data))

    def _write(self, key: str, fill: Any) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=target.parent)
        try:
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the object from a web server
            with os.fdopen(fd, "wb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(target.parent)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StorageError(f"{self.root}/{key}: no such object") from None

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[IO[bytes]]:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError:
            raise StorageError(f"{self.root}/{key}: no such object") from None
        with handle:
            yield handle

    def stat(self, key: str) -> ObjectStat | None:
        try:
            st = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return ObjectStat(key, st.st_size) if not os.path.isdir(self._path(key)) else None

    def delete(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            _fsync_dir(path.parent)

    def list(self, prefix: str = "") -> Iterator[ObjectStat]:
        found: list[ObjectStat] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            for name in filenames:
                if name.startswith(_TMP_PREFIX):
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if key.startswith(prefix):
                    found.append(ObjectStat(key, os.path.getsize(os.path.join(dirpath, name))))
        yield from sorted(found, key=lambda s: s.key)

    def sweep(self) -> int:
        count = 0
        for dirpath, _, filenames in os.walk(self.root):
            for name in filenames:
                if name.startswith(_TMP_PREFIX):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(dirpath, name))
                        count += 1
        return count


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _strip_etag(etag: str | None) -> str | None:
    return etag.strip('"') if etag else None


class S3Storage:
    """A bucket (and a key prefix in it) as a store, through one boto3 client."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = _client(endpoint, region, profile, access_key_id, secret_access_key)

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def put_file(
        self, key: str, path: Path, *, content_type: str, cache_control: str | None = None
    ) -> None:
        from boto3.s3.transfer import TransferConfig

        extra = _headers(content_type, cache_control)
        if os.stat(path).st_size < MULTIPART_THRESHOLD:
            # One PUT streamed from the file: upload_file's transfer manager (its futures
            # and threads) costs more CPU than the request itself for a small file, and a
            # sync pushes thousands of them.  A retry reads the file again from the start.
            with self._errors("upload", key), open(path, "rb") as body:
                self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=body, **extra)
            return
        config = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD
        )
        with self._errors("upload", key):
            self._client.upload_file(
                str(path), self.bucket, self._key(key), ExtraArgs=extra, Config=config
            )

    def put_bytes(
        self, key: str, data: bytes, *, content_type: str, cache_control: str | None = None
    ) -> None:
        with self._errors("upload", key):
            self._client.put_object(
                Bucket=self.bucket,
                Key=self._key(key),
                Body=data,
                **_headers(content_type, cache_control),
            )

    def get(self, key: str) -> bytes:
        with self.open(key) as body:
            return body.read()

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[IO[bytes]]:
        with self._errors("read", key):
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        try:
            # Only read() and close() are offered: what a streaming reader needs.
            yield cast(IO[bytes], _Reader(body, lambda e: _error("read", self._where(key), e)))
        finally:
            body.close()

    def stat(self, key: str) -> ObjectStat | None:
        from botocore.exceptions import ClientError

        try:
            head = self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _status(exc) == 404:
                return None
            raise _error("stat", self._where(key), exc) from None
        except Exception as exc:
            raise _error("stat", self._where(key), exc) from None
        return ObjectStat(key, int(head["ContentLength"]), _strip_etag(head.get("ETag")))

    def delete(self, key: str) -> None:
        with self._errors("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def list(self, prefix: str = "") -> Iterator[ObjectStat]:
        base = f"{self.prefix}/" if self.prefix else ""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=base + prefix
        )
        with self._errors("list", prefix or "(all)"):
            for page in pages:
                for item in page.get("Contents", []):
                    yield ObjectStat(
                        item["Key"][len(base) :], int(item["Size"]), _strip_etag(item.get("ETag"))
                    )

    def sweep(self) -> int:
        base = f"{self.prefix}/" if self.prefix else ""
        count = 0
        with self._errors("clean up", "(unfinished uploads)"):
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=base
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    count += 1
        return count

    @contextlib.contextmanager
    def _errors(self, operation: str, key: str) -> Iterator[None]:
        try:
            yield
        except StorageError:
            raise
        except Exception as exc:
            if _is_client_error(exc) and _status(exc) == 404 and operation == "read":
                raise StorageError(f"{self._where(key)}: no such object") from None
            raise _error(operation, self._where(key), exc) from None


class _Reader:
    """A streamed object body whose failures (a connection cut mid-way) are StorageErrors,
    while the reader's own exceptions pass through untouched."""

    def __init__(self, body: Any, wrap: Any) -> None:
        self._body = body
        self._wrap = wrap

    def read(self, size: int = -1) -> bytes:
        try:
            return self._body.read(None if size is None or size < 0 else size)
        except Exception as exc:
            raise self._wrap(exc) from None

    def close(self) -> None:
        self._body.close()


def _headers(content_type: str, cache_control: str | None) -> dict[str, str]:
    out = {"ContentType": content_type}
    if cache_control:
        out["CacheControl"] = cache_control
    return out


def _client(
    endpoint: str | None,
    region: str | None,
    profile: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
) -> Any:
    import boto3
    from botocore.config import Config

    try:
        session = boto3.session.Session(
            profile_name=profile or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            region_name=region or None,
        )
        return session.client(
            "s3",
            endpoint_url=endpoint or None,
            config=Config(
                # Path-style works on every S3-compatible store (virtual hosts need DNS).
                s3={"addressing_style": "path"} if endpoint else {},
                retries={"max_attempts": 5, "mode": "standard"},
                # One connection per uploading thread (the push's and the stream's workers):
                # botocore's default of 10 would drop and reopen connections past that.
                max_pool_connections=MAX_CONNECTIONS,
                # boto3 >= 1.36 adds CRC checksums some S3-compatible stores refuse.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
    except Exception as exc:
        raise StorageError(clip(f"cannot set up the S3 client: {_reason(exc)}")) from None


def _is_client_error(exc: BaseException) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError)


def _status(exc: Any) -> int | None:
    try:
        return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def _reason(exc: BaseException) -> str:
    """The store's answer in words, without anything a credential could hide in: the
    error code and message for an S3 error, the exception's class and text otherwise."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        err = response["Error"]
        return f"{err.get('Code', '?')}: {err.get('Message') or 'no message'}"
    return f"{type(exc).__name__}: {exc}"


def _error(operation: str, where: str, exc: BaseException) -> StorageError:
    return StorageError(clip(f"cannot {operation} {where}: {_reason(exc)}"))
