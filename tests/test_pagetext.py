from datetime import date
from pathlib import Path

import pytest

from digest.dumps import parse_dump, read_dump
from digest.dumps.pagetext import parse_page_text
from digest.errors import ParseError

SEED_COUNTS = {"000": 100, "001": 76, "002": 104, "003": 72, "004": 67}
HEADER = ("new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\n"
          "byAK and the research community\n\nNov 10\n\n")


def test_every_seed_listing_is_parsed_with_title_and_abstract(seeds: list[Path]) -> None:
    counts = {}
    for seed in seeds:
        papers = parse_dump(read_dump(seed), page_year=2024).papers
        counts[seed.name[:3]] = len(papers)
        assert all(p.title and len(p.abstract) > 100 for p in papers)
    assert counts == SEED_COUNTS


def test_metadata_blocks_give_authors_date_and_upvotes(seeds: list[Path]) -> None:
    papers = parse_dump(read_dump(seeds[2]), page_year=2025).papers
    with_meta = [p for p in papers if p.authors_count is not None]
    assert len(with_meta) == 101
    by_title = {p.title: p for p in papers}
    llamantino = by_title["LLaMAntino: LLaMA 2 Models for Effective Text Generation in "
                          "Italian Language"]
    assert (llamantino.authors_count, llamantino.published, llamantino.upvotes) == (
        6, date(2023, 12, 15), 1)
    continual = by_title["Scalable Language Model with Generalized Continual Learning"]
    assert (continual.published, continual.upvotes) == (date(2024, 4, 11), None)
    # "Mar 28" carries no year: the page's year (2025, page date Nov 10) applies.
    instance = by_title["LLM-enabled Instance Model Generation"]
    assert (instance.authors_count, instance.published) == (5, date(2025, 3, 28))


def test_a_yearless_date_after_the_page_date_is_last_year() -> None:
    text = HEADER + "A Title\n\nAn abstract.\n\n  • 2 authors\n·\nDec 24\n"
    (paper,) = parse_page_text(text, reference=date(2025, 1, 1), page_year=2025).papers
    assert paper.published == date(2024, 12, 24)


def test_the_page_year_comes_from_the_reference_date_when_not_given() -> None:
    text = HEADER + "A Title\n\nAn abstract.\n\n  • 2 authors\n·\nJun 25\n"
    # Page date Nov 10 would be after a January reference, so it is last year's page.
    parsed = parse_page_text(text, reference=date(2025, 1, 15))
    assert parsed.page_date == date(2024, 11, 10)
    assert parsed.papers[0].published == date(2024, 6, 25)
    assert parsed.papers[0].upvotes is None


@pytest.mark.parametrize("mangle", [
    lambda t: t.replace("\n", "\r\n"),
    lambda t: "\ufeff" + t,
    lambda t: t.rstrip("\n"),
    lambda t: "\n".join("  " + ln + "  " for ln in t.split("\n")),
], ids=["crlf", "bom", "no-final-newline", "stray-spaces"])
def test_line_ends_bom_and_spaces_parse_the_same(seeds: list[Path], mangle) -> None:
    text = seeds[2].read_text(encoding="utf-8")
    clean = parse_page_text(text, reference=date(2025, 11, 20))
    assert parse_page_text(mangle(text), reference=date(2025, 11, 20)) == clean


def test_a_listing_without_abstract_names_its_line() -> None:
    with pytest.raises(ParseError) as err:
        parse_page_text(HEADER + "A Title\n\nAbstract.\n\nDangling title\n",
                        reference=date(2025, 1, 1))
    assert err.value.line == 15
    assert "no abstract" in str(err.value)
