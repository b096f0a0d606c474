"""The arXiv metadata snapshot: JSON Lines, one record per line, millions of lines."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from digest.dumps import fields
from digest.dumps.clean import clean_text, one_line, plain_latex
from digest.dumps.fields import BadRecord, arxiv_id, iso_date, items, record, text
from digest.model import Paper, Skipped

FORMAT = "arxiv-jsonl"

# The longest real record (a collaboration paper's author list) is well under this.
MAX_RECORD_BYTES = 1 << 20

# The snapshot writes "id" first, then "submitter" or "authors": enough to tell it apart
# from a one-line JSON document without parsing the line.
_START = re.compile(rb'^\s*\{\s*"id"\s*:\s*"[^"]{1,64}"\s*,\s*"(?:submitter|authors|title)"')
_CREATED = re.compile(r"(\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4})")
_MONTHS = {m: i for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1)}
_AUTHOR_SPLIT = re.compile(r",\s*|\s+and\s+")


def looks_like_arxiv(head: bytes) -> bool:
    """True when the first line of a file opens an arXiv snapshot record."""
    return bool(_START.match(head.lstrip(b"\xef\xbb\xbf")))


def parse_arxiv_lines(lines: Iterable[tuple[int, bytes]]) -> Iterator[Paper | Skipped]:
    """Each numbered line of the snapshot as a paper, or as a Skipped saying why not."""
    for number, line in lines:
        data = line.strip()
        if data:
            yield parse_arxiv_record(number, data)


def parse_arxiv_record(number: int, data: bytes) -> Paper | Skipped:
    where = f"line {number}"
    if len(data) > MAX_RECORD_BYTES:
        return Skipped(where, f"a record over {MAX_RECORD_BYTES >> 20} MB, not a paper")
    try:
        return _paper(json.loads(data.removeprefix(b"\xef\xbb\xbf").decode("utf-8")))
    except UnicodeDecodeError as exc:
        return Skipped(where, f"not valid UTF-8 (byte {exc.start})")
    except json.JSONDecodeError as exc:
        return Skipped(where, f"not a JSON record: {exc.msg} (column {exc.colno})")
    except RecursionError:
        return Skipped(where, "JSON nested too deeply to be a record")
    except ValueError as exc:
        return Skipped(where, f"not a JSON record: {exc}")
    except BadRecord as exc:
        return Skipped(where, str(exc))


def _paper(value: Any) -> Paper:
    rec = record(value, "the record")
    identifier = arxiv_id(text(rec, "id"))
    if identifier is None:
        raise BadRecord(f"no arXiv id ({text(rec, 'id')[:40]!r})")
    title = fields.title(clean_text(text(rec, "title")))
    authors = _authors(rec)
    return Paper(
        title=title,
        abstract=clean_text(text(rec, "abstract")),
        authors=authors,
        authors_count=len(authors) or None,
        published=_published(rec),
        arxiv_id=identifier,
        categories=tuple(text(rec, "categories").split()),
    )


def _authors(rec: dict[str, Any]) -> tuple[str, ...]:
    parsed = items(rec, "authors_parsed")
    if not parsed:
        # A collaboration's list runs to thousands of names: the record limit bounds it.
        joined = plain_latex(one_line(text(rec, "authors", limit=MAX_RECORD_BYTES)))
        return tuple(n for n in (a.strip() for a in _AUTHOR_SPLIT.split(joined)) if n)
    try:
        # [last, first, suffix] -> "first last suffix"
        names = [" ".join([*parts[1:2], parts[0], *parts[2:]]).strip()
                 for parts in parsed if parts]
    except (TypeError, KeyError, IndexError):
        raise BadRecord("'authors_parsed' holds something other than names") from None
    # Most records need no cleaning: one check over all the names is the fast path.
    everything = "".join(names)
    if everything.isprintable() and "\\" not in everything and "$" not in everything:
        return tuple(n for n in names if n)
    return tuple(n for n in (plain_latex(one_line(n)) for n in names) if n)


def _published(rec: dict[str, Any]) -> date | None:
    """The date of the first version, else the record's update date."""
    versions = items(rec, "versions")
    if versions and isinstance(versions[0], dict):
        created = versions[0].get("created")
        if isinstance(created, str) and (m := _CREATED.search(created)):
            try:
                return date(int(m[3]), _MONTHS[m[2]], int(m[1]))
            except ValueError:
                pass
    return iso_date(text(rec, "update_date"))
