"""Typed access to the fields of a JSON record, shared by the JSON parsers: a field of the
wrong type makes the record bad (BadRecord), never a TypeError deep in a parser."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Any

from digest.dumps.clean import is_placeholder
from digest.errors import ParseError
from digest.model import Paper, Skipped

_ARXIV_ID = re.compile(
    r"^(?:arXiv:)?(?P<id>\d{4}\.\d{4,5}|[a-z][a-z.-]*(?:\.[A-Z]{2})?/\d{7})(?:v\d+)?$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
# Far beyond any real abstract; a longer field is garbage, refused before it is cleaned.
MAX_FIELD_CHARS = 100_000
MAX_TITLE_CHARS = 1000


class BadRecord(Exception):
    """One record of a dump cannot be read; the parser turns it into a Skipped."""


def papers_or_skips(values: Iterable[Any], noun: str,
                    make: Callable[[Any], Paper]) -> Iterator[Paper | Skipped]:
    """Each JSON record as a paper, or a Skipped saying why not: a bad record, or the
    scrapers' placeholder paper, which is left out without counting as bad."""
    for number, value in enumerate(values, 1):
        where = f"{noun} {number}"
        try:
            paper = make(value)
        except BadRecord as exc:
            yield Skipped(where, str(exc))
            continue
        if is_placeholder(paper.title, paper.authors):
            label = f" (id {paper.arxiv_id})" if paper.arxiv_id else ""
            yield Skipped(where, f"placeholder {paper.title[:60]!r}{label} left out: "
                          "not a real paper", bad=False)
        else:
            yield paper


def load_json(text: str) -> Any:
    """A whole JSON document, or a ParseError naming the line where it breaks."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            raise ParseError(f"truncated JSON: the file ends before the document does "
                             f"({exc.msg}, column {exc.colno})", line=exc.lineno) from None
        raise ParseError(f"invalid JSON: {exc.msg} (column {exc.colno})",
                         line=exc.lineno) from None
    except RecursionError:
        raise ParseError("JSON nested too deeply to be a paper listing") from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise ParseError(f"invalid JSON: {exc}") from None


def record(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadRecord(f"{what} is {_type(value)}, not an object")
    return value


def text(obj: dict[str, Any], key: str, limit: int = MAX_FIELD_CHARS) -> str:
    """A string field; missing or null is empty."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRecord(f"{key!r} is {_type(value)}, not a string")
    if len(value) > limit:
        raise BadRecord(f"{key!r} of {len(value)} characters, not a listing's")
    return value


def title(cleaned: str) -> str:
    """A cleaned title, or BadRecord when there is none or it is too long to be one."""
    if not cleaned:
        raise BadRecord("no title")
    if len(cleaned) > MAX_TITLE_CHARS:
        raise BadRecord(f"a title of {len(cleaned)} characters, not a listing's")
    return cleaned


def count(obj: dict[str, Any], key: str) -> int | None:
    """A non-negative integer field; missing or null is None."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRecord(f"{key!r} is {value!r:.40}, not a count")
    return value


def items(obj: dict[str, Any], key: str) -> list[Any]:
    """A list field; missing or null is empty."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRecord(f"{key!r} is {_type(value)}, not a list")
    return value


def arxiv_id(value: str) -> str | None:
    """The arXiv identifier without its version (`2410.09342v2` is `2410.09342`), or None
    for anything else."""
    m = _ARXIV_ID.match(value.strip())
    return m["id"] if m else None


def iso_date(value: str) -> date | None:
    """The date of an ISO 8601 timestamp; None when there is none or it is impossible."""
    m = _ISO_DATE.match(value)
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def _type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)
