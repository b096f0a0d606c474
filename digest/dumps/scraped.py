"""Scraped JSON archives of the Daily Papers page: `{"date", "papers": [...]}`, one a day.

Real ones carry the scraper's marks, cleaned here: author names with trailing commas and
lists cut at ten, spaces before punctuation, LaTeX remnants, and a placeholder paper.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from digest.dumps import fields
from digest.dumps.clean import clean_author, clean_text
from digest.dumps.fields import BadRecord, arxiv_id, count, items, papers_or_skips, record, text
from digest.model import Paper, Skipped

FORMAT = "hf-scraped-json"

# The scraper keeps the first ten names: a list of ten may be cut, so its length is no count.
_AUTHORS_CUT_AT = 10
_WEB_LINK = re.compile(r"^https?://[^\s\x00-\x1f\x7f-\x9f\u2028\u2029]+$")


def looks_like_scraped(document: Any) -> bool:
    return isinstance(document, dict) and isinstance(document.get("papers"), list)


def parse_scraped(document: dict[str, Any]) -> Iterator[Paper | Skipped]:
    """Each paper of the archive, or a Skipped saying why not."""
    return papers_or_skips(document["papers"], "paper", _paper)


def _paper(value: Any) -> Paper:
    entry = record(value, "the paper")
    title = fields.title(clean_text(text(entry, "title"), scraped=True))
    authors = tuple(n for n in (clean_author(a) if isinstance(a, str) else _not_a_name(a)
                                for a in items(entry, "authors")) if n)
    identifier = arxiv_id(text(entry, "arxivId")) or arxiv_id(text(entry, "id"))
    tags = tuple(t for t in (clean_text(tag) for tag in items(entry, "tags")
                             if isinstance(tag, str)) if t)
    return Paper(
        title=title,
        abstract=clean_text(text(entry, "abstract") or text(entry, "summary"), scraped=True),
        authors=authors,
        authors_count=len(authors) if 0 < len(authors) < _AUTHORS_CUT_AT else None,
        # publishedAt is when the scraper ran, not the paper's date: left out.
        upvotes=count(entry, "upvotes"),
        arxiv_id=identifier,
        url=_link(text(entry, "url")),
        categories=tags,
    )


def _not_a_name(value: object) -> str:
    raise BadRecord(f"an author is {type(value).__name__}, not a name")


def _link(url: str) -> str | None:
    """Only a web link: a `javascript:` or `data:` URL from a dump never reaches a page."""
    url = url.strip()
    return url if _WEB_LINK.match(url) else None
