"""Every parser fuzzed with hypothesis: whatever the input, nothing is raised but the
project's own ParseError/DumpError, and no text field of a paper carries a line break or a
control character (so none can reach a mail header or a terminal raw)."""

from __future__ import annotations

import json
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.dumps import parse_dump, read_dump
from digest.dumps.arxiv import parse_arxiv_lines
from digest.dumps.hfapi import parse_hf_api
from digest.dumps.pagetext import parse_page_text
from digest.dumps.scraped import parse_scraped
from digest.errors import DumpError, ParseError
from digest.model import Paper, Skipped

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
HEADER = "byAK and the research community\n\nNov 10\n\n"
# Text with the characters that break parsers and headers: line breaks of every kind,
# controls, LaTeX and JSON punctuation, markup.
HOSTILE_TEXT = st.lists(st.sampled_from(
    list("aZ 0 9\n\r\t\x00\x0b\x0c\x1b\x85\u2028\u2029\\${}_^%&#\"'`<>/:,.;()[]•·πé")
    + ["\r\nBcc: x@y", "<script>", "\\textit{", "$\\times$", "Nov 10", "• 3 authors",
       "Jan 2, 2024 5", "Get trending papers in your email inbox!"]), max_size=30).map("".join)
JSON_SCALARS = st.none() | st.booleans() | st.integers(-2, 10**6) | st.floats() | HOSTILE_TEXT
JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(["id", "title", "summary", "abstract", "authors", "name", "upvotes",
                     "paper", "papers", "arxivId", "url", "tags", "publishedAt", "versions",
                     "created", "categories", "authors_parsed", "update_date"]) | HOSTILE_TEXT,
    inner, max_size=6), max_leaves=20)
PAPER_FIELDS = st.fixed_dictionaries({}, optional={
    "id": st.sampled_from(["2410.09342", "math/0601001v2", "x"]) | JSON_SCALARS,
    "arxivId": JSON_SCALARS, "title": HOSTILE_TEXT | JSON, "summary": HOSTILE_TEXT | JSON,
    "abstract": HOSTILE_TEXT | JSON, "authors": st.lists(HOSTILE_TEXT | st.fixed_dictionaries(
        {"name": HOSTILE_TEXT | JSON_SCALARS})) | JSON, "upvotes": JSON_SCALARS,
    "url": st.sampled_from(["https://x.org/a", "javascript:alert(1)"]) | JSON_SCALARS,
    "publishedAt": st.sampled_from(["2024-02-30T00:00", "2024-01-08T17:04:30Z"]) | JSON_SCALARS,
    "tags": JSON, "categories": JSON_SCALARS, "authors_parsed": JSON,
    "versions": st.lists(st.fixed_dictionaries({"created": HOSTILE_TEXT | JSON_SCALARS}))})


def _assert_clean(items: list[Paper | Skipped]) -> None:
    for item in items:
        assert isinstance(item, Paper | Skipped)
        if isinstance(item, Paper):
            fields = [item.title, item.abstract, *item.authors, *item.categories,
                      item.url or "", item.arxiv_id or ""]
            assert item.title
            assert all(_one_clean_line(f) for f in fields), fields


def _one_clean_line(text: str) -> bool:
    return not any(c in text for c in "\x0b\x0c\x1c\x1d\x1e\u2028\u2029") and all(
        ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F for c in text)


@FUZZ
@given(st.lists(HOSTILE_TEXT, max_size=12), st.integers(2000, 2030))
def test_page_text_raises_only_parse_errors(lines: list[str], year: int) -> None:
    try:
        parsed = parse_page_text(HEADER + "\n\n".join(lines), reference=date(2025, 6, 1),
                                 page_year=year)
    except ParseError:
        return
    _assert_clean(list(parsed.papers))


@FUZZ
@given(st.lists(st.binary(max_size=80) | JSON.map(lambda v: json.dumps(v).encode())
                | st.fixed_dictionaries({}, optional={"x": PAPER_FIELDS}).map(
                    lambda d: json.dumps(d.get("x", {})).encode()), max_size=8))
def test_arxiv_lines_yield_papers_or_skips_never_raise(lines: list[bytes]) -> None:
    _assert_clean(list(parse_arxiv_lines(enumerate(lines, 1))))


@FUZZ
@given(st.lists(st.fixed_dictionaries({}, optional={"paper": PAPER_FIELDS | JSON,
                                                    "title": HOSTILE_TEXT | JSON}) | JSON,
                max_size=6))
def test_hf_api_entries_yield_papers_or_skips_never_raise(document: list[Any]) -> None:
    _assert_clean(list(parse_hf_api(document)))


@FUZZ
@given(st.lists(PAPER_FIELDS | JSON, max_size=6))
def test_scraped_papers_yield_papers_or_skips_never_raise(papers: list[Any]) -> None:
    _assert_clean(list(parse_scraped({"papers": papers})))


@FUZZ
@given(st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode())
       | st.lists(PAPER_FIELDS).map(lambda p: json.dumps({"papers": p}).encode())
       | HOSTILE_TEXT.map(lambda t: (HEADER + t).encode("utf-8", "surrogatepass")))
def test_any_file_is_parsed_or_fails_with_a_dump_error(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "dump"
        path.write_bytes(content)
        try:
            parsed = parse_dump(read_dump(path), page_year=2025)
        except DumpError as exc:
            assert str(exc).startswith(str(path)) and "\n" not in str(exc)
            return
    _assert_clean(list(parsed.papers))
