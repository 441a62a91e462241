"""The ``[storage]`` section: where the S3-compatible store of an ``-i s3://`` tree is.

It names the endpoint, the region and the AWS profile; never a credential.  A config is copied into the tree it builds (a bundle's ``morgan.ini``), so
that tree (and the bucket it is pushed to) would carry whatever the section held: a key
such as ``aws_secret_access_key`` is refused, with where the credentials go instead
(the ``AWS_*`` variables or the profile files).  An endpoint with a user or password in
its URL is refused for the same reason.

The bundle config (config.ini) and the sync config (config.syncconf) read the section
with ``read_storage``; the command line reads it before the run with ``storage_of`` (a
rebuild of a lost working tree needs the endpoint before anything else is there).
"""

from __future__ import annotations

import configparser
import difflib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from morgan_like.config.initext import _locate, _section, read_config_text, read_ini
from morgan_like.errors import ConfigError

SECTION = "storage"
STORAGE_KEYS = ("endpoint-url", "region", "profile")
_CREDENTIAL_HINT = (
    "credentials never go in a config (it is copied into the tree and the bucket): set "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name a profile of ~/.aws/credentials "
    "with profile = NAME (or AWS_PROFILE)"
)


@dataclass(frozen=True)
class StorageSettings:
    """Where the store is; None where the config is silent (the AWS variables decide)."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None

    def over(self, other: StorageSettings | None) -> StorageSettings:
        """These settings, each one that is unset taken from ``other``."""
        if other is None:
            return self
        return StorageSettings(
            self.endpoint_url or other.endpoint_url,
            self.region or other.region,
            self.profile or other.profile,
        )


def _is_credential(key: str) -> bool:
    words = key.replace("_", "-").split("-")
    return any(
        w in ("secret", "password", "token", "credentials", "passwd") for w in words
    ) or key.replace("_", "-") in ("access-key", "access-key-id", "aws-access-key-id", "key-id")


def read_storage(parser: configparser.ConfigParser, file: str) -> StorageSettings | None:
    """The ``[storage]`` section of a parsed config, checked; None when it has none."""
    if not parser.has_section(SECTION):
        return None
    values: dict[str, str] = {}
    for raw_key, raw_value in _section(parser, SECTION, file).items():
        key = raw_key.strip().lower().replace("_", "-")
        value = raw_value.strip()

        def error(problem: str, hint: str, raw_key: str = raw_key) -> ConfigError:
            return ConfigError(file=file, problem=problem, section=SECTION, key=raw_key, hint=hint)

        if _is_credential(key):
            # The value is never echoed: it is a secret.
            raise error(f"{raw_key} is a credential, and [storage] takes none", _CREDENTIAL_HINT)
        if key not in STORAGE_KEYS:
            close = difflib.get_close_matches(key, STORAGE_KEYS, n=1)
            raise error(
                f"unknown key {raw_key!r}",
                (f"did you mean {close[0]!r}? " if close else "")
                + "valid keys: "
                + ", ".join(STORAGE_KEYS),
            )
        if not value:
            raise error(f"{key} is empty", "give a value, or remove the key")
        if key == "endpoint-url":
            url = urlsplit(value)
            if url.username is not None or url.password is not None:
                raise error("the endpoint URL carries credentials", _CREDENTIAL_HINT)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise error(
                    f"{value!r} is not an endpoint URL", "e.g. endpoint-url = http://127.0.0.1:8333"
                )
        values[key] = value
    return StorageSettings(
        values.get("endpoint-url"),
        values.get("region"),
        values.get("profile"),
    )


def storage_of(path: Path) -> StorageSettings | None:
    """The ``[storage]`` section of the config file at ``path`` (only that section is read:
    the mode reads and checks the rest); None when it has none."""
    file = str(path)
    text = read_config_text(path, "give -c the config that holds the [storage] section")
    try:
        return read_storage(read_ini(text, file), file)
    except ConfigError as exc:
        if exc.file == file and exc.line is None and exc.section is not None:
            exc.line = _locate(text, exc.section, exc.key)
        raise
