"""Every file a config names is read here: a regular file, capped in size, UTF-8 text.

A config, a requirements file or a pyproject.toml is a small text file.  A FIFO
named by mistake would hang the run, ``-c /dev/zero`` would fill memory, a
multi-gigabyte log would be parsed line by line: so only regular files are
read, at most ``MAX_INPUT_BYTES`` of them, and the refusal names the file.
Text is UTF-8, with or without a byte order mark (Windows editors write one);
UTF-16 (PowerShell's ``>``) and binary files are refused with what to do.

Problems with the file itself (missing, a folder, not regular, too large, a
symlink loop) are ``InputFileError``s, an OSError, so that each caller words
them with its own context (the ``-r`` line that named the file); problems with
its content are ConfigErrors naming it.
"""

from __future__ import annotations

import codecs
import errno
import os
import stat
from pathlib import Path

from morgan_like.errors import ConfigError

# Generous for any config or requirements file (a pip-compile lock with hashes for a
# large project is about 1 MiB), small enough to read whole.
MAX_INPUT_MIB = 16
MAX_INPUT_BYTES = MAX_INPUT_MIB << 20
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_UTF16_32 = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
TEXT_HINT = "save it as UTF-8 text (e.g. iconv -f UTF-16 -t UTF-8 FILE > NEW, or your editor's 'Save as UTF-8')"


class InputFileError(OSError):
    """An input file that cannot be read as one: not a regular file, too large, a symlink loop."""

    def __init__(self, path: Path, problem: str, hint: str, code: int = errno.EINVAL) -> None:
        super().__init__(code, problem, str(path))
        self.hint = hint


def resolved(path: Path) -> Path:
    """``path.resolve()``; a symlink loop is an InputFileError (Python < 3.13 raises
    RuntimeError for one)."""
    try:
        return path.resolve()
    except RuntimeError:
        raise InputFileError(
            path, "a symlink loop", "point the link at a file", errno.ELOOP
        ) from None


def read_input_bytes(path: Path) -> bytes:
    """A regular file's bytes, at most MAX_INPUT_BYTES; InputFileError (an OSError) if not."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)  # non-blocking: opening a FIFO never waits for a writer
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputFileError(
                path, "a symlink loop", "point the link at a file", errno.ELOOP
            ) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            code = errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL
            raise InputFileError(path, f"{kind}, not a regular file", "name a text file", code)
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_INPUT_BYTES:
            chunk = os.read(fd, min(1 << 20, MAX_INPUT_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > MAX_INPUT_BYTES:
        raise InputFileError(
            path,
            f"larger than {MAX_INPUT_MIB} MiB, the cap for a config or requirements file",
            "name the config or requirements file itself",
            errno.EFBIG,
        )
    return b"".join(chunks)


def decode_text(data: bytes, file: str) -> str:
    """UTF-8 text (a leading byte order mark dropped, newlines as ``\n``, as ``open`` reads
    text); ConfigError naming ``file`` if not."""
    for bom, name in _UTF16_32:
        if data.startswith(bom):
            raise ConfigError(file=file, problem=f"not UTF-8 text: {name}", hint=TEXT_HINT)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            file=file,
            problem=f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}",
            hint=TEXT_HINT,
        ) from None
    if "\x00" in text:
        offset = text.index("\x00")
        raise ConfigError(
            file=file,
            problem=f"not UTF-8 text: a NUL byte at offset {offset} (binary, or UTF-16)",
            hint=TEXT_HINT,
        )
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_input_text(path: Path) -> str:
    """An input file's text: regular, capped, UTF-8 (InputFileError / ConfigError)."""
    return decode_text(read_input_bytes(path), str(path))
