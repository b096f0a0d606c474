"""Dump files: detect a dump's format from its content and parse it into papers, streaming
the ones too big to hold."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from digest.dumps import arxiv, hfapi, pagetext, scraped
from digest.dumps.fields import load_json
from digest.dumps.screen import Screen
from digest.dumps.source import (
    MAX_DOCUMENT_BYTES,
    DumpFile,
    OnBytes,
    dump_lines,
    held_again,
    read_dump,
)
from digest.errors import DumpError, ParseError
from digest.model import Paper, ParsedDump, Skipped

__all__ = ["DumpFile", "OnBytes", "Records", "Screen", "held_again", "parse_dump",
           "parse_records", "read_dump"]

# Enough of the start of a file to recognise every format.
_HEAD_CHARS = 4096


@dataclass(frozen=True)
class Records:
    """A dump's format and its records, produced lazily as the file is read."""

    format: str
    items: Iterator[Paper | Skipped]


def _no_progress(_: int) -> None:
    pass


def parse_records(dump: DumpFile, *, page_year: int | None = None,
                  on_bytes: OnBytes = _no_progress) -> Records:
    """Detect the dump's format from its first bytes, then parse it: JSON Lines as a stream,
    page text and JSON documents whole."""
    name = str(dump.path)
    if dump.content is not None and not dump.content.strip():
        raise DumpError(name, "empty file: no listings")
    if dump.head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DumpError(name, "UTF-16 text, not UTF-8: save the file as UTF-8")
    if b"\x00" in dump.head:
        raise DumpError(name, "binary file, not a text dump")
    if arxiv.looks_like_arxiv(dump.head):
        lines = dump_lines(dump, arxiv.MAX_RECORD_BYTES + 2, on_bytes)
        return Records(arxiv.FORMAT, arxiv.parse_arxiv_lines(lines))
    head = dump.head[:_HEAD_CHARS * 4].decode("utf-8", "replace")[:_HEAD_CHARS]
    is_page = pagetext.looks_like_page_text(head)
    is_json = head.lstrip("\ufeff \t\r\n")[:1] in ("{", "[")
    if not (is_page or is_json):
        raise DumpError(name, "not a paper listing: unknown format")
    if dump.content is None:
        raise DumpError(name, f"{dump.size / 2**20:.0f} MB of page text or JSON: only JSON "
                        f"Lines dumps may be over {MAX_DOCUMENT_BYTES >> 20} MB")
    text = _decode(name, dump.content)
    on_bytes(dump.size)  # a document is parsed in one go: the bar has nothing to show
    try:
        if is_page:
            _, papers = pagetext.page_listings(text, reference=dump.modified,
                                               page_year=page_year)
            return Records(pagetext.FORMAT, _named(name, papers))
        return _json_records(load_json(text.lstrip("\ufeff")))
    except ParseError as exc:
        raise DumpError(name, exc.message, line=exc.line) from None


def _named(name: str, papers: Iterator[Paper]) -> Iterator[Paper]:
    """Listings parsed as they are read, with a ParseError met on the way named for the
    file, like one met at the start."""
    try:
        yield from papers
    except ParseError as exc:
        raise DumpError(name, exc.message, line=exc.line) from None


def _decode(name: str, content: bytes) -> str:
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise DumpError(name, f"not valid UTF-8 (byte {exc.start})", line=line) from None


def _json_records(document: Any) -> Records:
    """Tell the JSON formats apart by their shape."""
    if hfapi.looks_like_hf_api(document):
        return Records(hfapi.FORMAT, hfapi.parse_hf_api(document))
    if scraped.looks_like_scraped(document):
        return Records(scraped.FORMAT, scraped.parse_scraped(document))
    raise ParseError("JSON of an unknown shape: expected a daily_papers API list of "
                     '{"paper": ...} entries, a scraped archive {"papers": [...]}, '
                     "or arXiv JSON Lines")


def parse_dump(dump: DumpFile, *, page_year: int | None = None) -> ParsedDump:
    """Parse and screen a dump whole, holding every paper: for small dumps and for tests."""
    records = parse_records(dump, page_year=page_year)
    screen = Screen(str(dump.path))
    papers = tuple(screen.papers_of(records.items))
    return ParsedDump(records.format, papers, tuple(screen.warnings))
