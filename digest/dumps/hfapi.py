"""The JSON of the Hugging Face `daily_papers` API: a list of entries, each with a `paper`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from digest.dumps import fields
from digest.dumps.clean import clean_author, clean_text
from digest.dumps.fields import arxiv_id, count, iso_date, items, papers_or_skips, record, text
from digest.model import Paper, Skipped

FORMAT = "hf-daily-papers-api"


def looks_like_hf_api(document: Any) -> bool:
    """A list whose first entry holds a `paper` object (an empty list is an empty day)."""
    return isinstance(document, list) and (
        not document or (isinstance(document[0], dict) and "paper" in document[0]))


def parse_hf_api(document: list[Any]) -> Iterator[Paper | Skipped]:
    """Each entry of the API's answer as a paper, or as a Skipped saying why not."""
    return papers_or_skips(document, "entry", _paper)


def _paper(value: Any) -> Paper:
    entry = record(value, "the entry")
    paper = record(entry.get("paper"), "its 'paper'")
    title = fields.title(clean_text(text(paper, "title") or text(entry, "title")))
    identifier = arxiv_id(text(paper, "id"))
    authors = tuple(n for n in (clean_author(text(record(a, "an author"), "name"))
                                for a in items(paper, "authors")) if n)
    return Paper(
        title=title,
        abstract=clean_text(text(paper, "summary") or text(entry, "summary")),
        authors=authors,
        authors_count=len(authors) or None,
        published=iso_date(text(paper, "publishedAt") or text(entry, "publishedAt")),
        upvotes=count(paper, "upvotes"),
        arxiv_id=identifier,
        url=f"https://huggingface.co/papers/{identifier}" if identifier else None,
    )
