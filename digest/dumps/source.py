"""Reading a dump file: what identifies it (SHA-256, date) and its bytes, in constant memory
however big it is, with every OS failure turned into a DumpError naming the file."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO

from digest.errors import DumpError

# Reports how many more bytes of a dump have been read: the hook of a progress bar.
OnBytes = Callable[[int], None]

CHUNK_BYTES = 1 << 20
# Page text and JSON documents are parsed whole; above this a dump must be JSON Lines.
MAX_DOCUMENT_BYTES = 64 << 20
HEAD_BYTES = 64 << 10
_CHANGED = "the file changed while it was being read; it is read again on the next run"


@dataclass(frozen=True)
class DumpFile:
    """A dump file as first read: its hash, its start for detection, and its whole content
    when small enough to keep (a bigger one is streamed again when parsed)."""

    path: Path
    size: int
    sha256: str
    modified: date
    head: bytes
    content: bytes | None


def _no_progress(_: int) -> None:
    pass


def read_dump(path: Path, on_bytes: OnBytes = _no_progress, *, keep: bool = True) -> DumpFile:
    """Read a dump once, hashing it in chunks; keep its bytes only when it is small, and
    not at all without `keep` (for a process that reads them again, held_again)."""
    digest = hashlib.sha256()
    kept: bytearray | None = bytearray() if keep else None
    head = b""
    size = 0
    with open_regular(path) as handle:
        status = os.fstat(handle.fileno())
        modified = datetime.fromtimestamp(status.st_mtime).date()
        if status.st_size > MAX_DOCUMENT_BYTES:
            kept = None  # to be streamed: never held, not even its first 64 MB
        while chunk := _read(path, handle, CHUNK_BYTES):
            digest.update(chunk)
            head = head or chunk[:HEAD_BYTES]
            size += len(chunk)
            if kept is not None:
                kept += chunk
                if size > MAX_DOCUMENT_BYTES:
                    kept = None
            on_bytes(len(chunk))
    content = bytes(kept) if kept is not None else None
    return DumpFile(path, size, digest.hexdigest(), modified, head, content)


def held_again(dump: DumpFile) -> DumpFile:
    """A dump read without keeping its bytes (read_dump), holding them now as read_dump
    would have: read anew, and failed if they changed since they were hashed. All else is
    as first read: a file touched since, its bytes the same, still dates its page from
    the first read, as the hash it is stored under does. A dump too big to hold is
    streamed, and comes back as it is."""
    if dump.content is not None or dump.size > MAX_DOCUMENT_BYTES:
        return dump
    again = read_dump(dump.path)
    if again.sha256 != dump.sha256:
        raise DumpError(str(dump.path), _CHANGED)
    return replace(dump, content=again.content)


def dump_lines(dump: DumpFile, limit: int, on_bytes: OnBytes = _no_progress
               ) -> Iterator[tuple[int, bytes]]:
    """The dump's lines, numbered from 1, each cut at `limit` + 1 bytes so that one huge
    line costs no memory. A streamed dump is hashed again as it is read: one that changed
    since it was first read fails rather than going in half old, half new."""
    if dump.content is not None:
        held = io.BufferedReader(_Reporting(io.BytesIO(dump.content), on_bytes), CHUNK_BYTES)
        yield from _lines(held, limit)
        return
    digest = hashlib.sha256()
    with open_regular(dump.path) as handle:
        reader = io.BufferedReader(_HashingReader(dump.path, handle, digest, on_bytes),
                                   CHUNK_BYTES)
        yield from _lines(reader, limit)
    if digest.hexdigest() != dump.sha256:
        raise DumpError(str(dump.path), _CHANGED)


@contextmanager
def open_regular(path: Path) -> Iterator[BinaryIO]:
    """Open a regular file for reading. O_NONBLOCK keeps a FIFO from hanging the run, and
    the type is checked on the open file, so a path swapped for a folder after the inbox was
    listed is caught too."""
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise DumpError(name, "no such file (it was moved or deleted during the run)") from None
    except OSError as exc:
        raise DumpError(name, f"cannot open: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise DumpError(name, f"not a regular file ({_kind(mode)}), not a dump")
        handle = os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def _read(path: Path, handle: BinaryIO, size: int) -> bytes:
    try:
        return handle.read(size) or b""
    except OSError as exc:
        raise DumpError(str(path), f"cannot read: {exc.strerror or exc}") from None


def _lines(stream: BinaryIO | io.BufferedReader, limit: int) -> Iterator[tuple[int, bytes]]:
    number = 0
    while line := stream.readline(limit + 1):
        number += 1
        if len(line) > limit and not line.endswith(b"\n"):
            # Skip the rest of an over-long line without holding it.
            while (rest := stream.readline(CHUNK_BYTES)) and not rest.endswith(b"\n"):
                pass
        yield number, line


class _Reporting(io.RawIOBase):
    """A raw reader over bytes held in memory that reports what it passes on."""

    def __init__(self, source: io.BytesIO, on_bytes: OnBytes) -> None:
        self._source, self._on_bytes = source, on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = self._source.readinto(buffer)
        self._on_bytes(count)
        return count


class _HashingReader(io.RawIOBase):
    """A raw reader that hashes and reports every byte it passes on."""

    def __init__(self, path: Path, handle: BinaryIO, digest: hashlib._Hash,
                 on_bytes: OnBytes) -> None:
        self._path, self._handle, self._digest, self._on_bytes = path, handle, digest, on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = _read(self._path, self._handle, len(buffer))
        buffer[: len(chunk)] = chunk
        self._digest.update(chunk)
        self._on_bytes(len(chunk))
        return len(chunk)
