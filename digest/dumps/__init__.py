"""Dump files: read one, detect its format from its content, parse it into papers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from digest.dumps import pagetext
from digest.errors import DumpError, ParseError
from digest.model import ParsedDump

# Enough of the start of a file to recognise every format.
_HEAD_CHARS = 4096


@dataclass(frozen=True)
class RawDump:
    """A dump file's bytes, read once, with what identifies it."""

    path: Path
    content: bytes
    sha256: str
    modified: date


def read_dump(path: Path) -> RawDump:
    """Read a dump file whole; any OS failure becomes a DumpError naming it."""
    try:
        content = path.read_bytes()
        modified = datetime.fromtimestamp(path.stat().st_mtime).date()
    except OSError as exc:
        raise DumpError(str(path), f"cannot read: {exc.strerror or exc}") from None
    return RawDump(path, content, hashlib.sha256(content).hexdigest(), modified)


def parse_dump(raw: RawDump, *, page_year: int | None = None) -> ParsedDump:
    """Detect the dump's format from its content and parse it."""
    name = str(raw.path)
    if not raw.content.strip():
        raise DumpError(name, "empty file: no listings")
    if b"\x00" in raw.content[:_HEAD_CHARS * 2]:
        raise DumpError(name, "binary file, not a text dump")
    try:
        text = raw.content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.content[: exc.start].count(b"\n") + 1
        raise DumpError(name, f"not valid UTF-8 (byte {exc.start})", line=line) from None
    head = text[:_HEAD_CHARS]
    try:
        if pagetext.looks_like_page_text(head):
            parsed = pagetext.parse_page_text(text, reference=raw.modified, page_year=page_year)
        else:
            raise DumpError(name, "not a paper listing: unknown format")
    except ParseError as exc:
        raise DumpError(name, exc.message, line=exc.line) from None
    if not parsed.papers:
        raise DumpError(name, "no listings in the file")
    return parsed
