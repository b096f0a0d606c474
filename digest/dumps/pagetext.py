"""The text of a Hugging Face "Daily Papers" page, as a browser copies it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

from digest.dumps.clean import one_line
from digest.errors import ParseError
from digest.model import Paper, ParsedDump

FORMAT = "hf-page-text"

_MONTHS = {m: i for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1)}
_HEADER_LINES = {
    "new", "get trending papers in your email inbox!", "subscribe", "daily papers",
    "byak and the research community",
}
_MONTH = r"(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_PAGE_DATE = re.compile(rf"^{_MONTH} (?P<day>\d{{1,2}})$")
_AUTHORS = re.compile(r"^•\s*(?P<n>\d+)\s+authors?$")
_META_DATE = re.compile(
    rf"^{_MONTH} (?P<day>\d{{1,2}})(?:, (?P<year>\d{{4}}))?(?: (?P<upvotes>\d+))?$")
_MAX_TITLE = 1000
# Far beyond any real abstract: such a line is garbage, refused before it is cleaned.
_MAX_LINE = 100_000


def looks_like_page_text(head: str) -> bool:
    """True when the start of a file carries the page header of the Daily Papers page."""
    lines = {ln.strip().casefold() for ln in head.lstrip("\ufeff").splitlines()[:20]}
    return "byak and the research community" in lines or (
        "get trending papers in your email inbox!" in lines)


def parse_page_text(text: str, *, reference: date, page_year: int | None = None) -> ParsedDump:
    """Parse a page dump whole into its listings, in page order."""
    page_date, papers = page_listings(text, reference=reference, page_year=page_year)
    return ParsedDump(format=FORMAT, papers=tuple(papers), page_date=page_date)


def page_listings(text: str, *, reference: date,
                  page_year: int | None = None) -> tuple[date, Iterator[Paper]]:
    """The page's date, read from its header at once, and its listings in page order, each
    parsed as the text is read: the first of a big page is ready long before the last.

    The page shows dates without the year when it is the page's own year. `page_year` says
    which year that is; without it, the page date is taken as the last such date on or
    before `reference` (the file's modification date).
    """
    # one_line also drops control characters: nothing from a dump reaches a reader raw.
    lines = ((n, ln) for n, ln in _clean_lines(text) if ln)
    page_date = _read_header(lines, reference, page_year)
    return page_date, _listings(lines, page_date)


def _listings(lines: Iterator[tuple[int, str]], page_date: date) -> Iterator[Paper]:
    line = next(lines, None)
    while line is not None:
        title_no, title = line
        if _AUTHORS.match(title) or title == "·":
            raise ParseError("paper metadata where a title was expected", line=title_no)
        if len(title) > _MAX_TITLE:
            raise ParseError(f"a title of {len(title)} characters: not a listing", line=title_no)
        if (abstract := next(lines, None)) is None:
            raise ParseError(f"the listing {title[:60]!r} ends with no abstract", line=title_no)
        authors_count, published, upvotes = None, None, None
        line = next(lines, None)
        if line is not None and (m := _AUTHORS.match(line[1])):
            authors_count = int(m["n"])
            line = next(lines, None)
            if line is not None and line[1] == "·":
                line = next(lines, None)
            if line is not None and (m := _META_DATE.match(line[1])):
                published, upvotes = _published(m, line[0], page_date)
                line = next(lines, None)
        yield Paper(title=title, abstract=abstract[1], authors_count=authors_count,
                    published=published, upvotes=upvotes)


def _clean_lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        if len(line) > _MAX_LINE:
            raise ParseError(f"a line of {len(line)} characters: not a listing", line=number)
        yield number, one_line(line)


def _read_header(lines: Iterator[tuple[int, str]], reference: date,
                 page_year: int | None) -> date:
    for line_no, line in lines:
        if m := _PAGE_DATE.match(line):
            return _page_date(m, reference, page_year, line_no)
        if line.casefold() not in _HEADER_LINES:
            raise ParseError(f"expected the page header, found {line[:60]!r}", line=line_no)
    raise ParseError("no page date in the header: not a Daily Papers page")


def _page_date(m: re.Match[str], reference: date, page_year: int | None, line_no: int) -> date:
    month, day = _MONTHS[m["mon"]], int(m["day"])
    year = page_year if page_year is not None else reference.year
    try:
        candidate = date(year, month, day)
        if page_year is None and candidate > reference:
            candidate = date(year - 1, month, day)
    except ValueError as exc:
        raise ParseError(f"page date {m.group(0)!r}: {exc}", line=line_no) from None
    return candidate


def _published(m: re.Match[str], line_no: int, page_date: date) -> tuple[date, int | None]:
    month, day = _MONTHS[m["mon"]], int(m["day"])
    try:
        if m["year"]:
            published = date(int(m["year"]), month, day)
        else:
            # The page leaves out its own year; a date after the page's is last year's.
            published = date(page_date.year, month, day)
            if published > page_date:
                published = date(page_date.year - 1, month, day)
    except ValueError as exc:
        raise ParseError(f"published date {m.group(0)!r}: {exc}", line=line_no) from None
    upvotes = int(m["upvotes"]) if m["upvotes"] else None
    return published, upvotes
