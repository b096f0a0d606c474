"""What a reader gets: the plain-text email (a golden file), snippets, links, the view."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

import pytest
from conftest import DATA
from test_grouping import stored_seed_papers

from digest.model import Edition
from digest.render import TEXT_WIDTH, edition_view, paper_link, render_edition, snippet
from digest.topics import Classifier, default_taxonomy, group_papers

GOLDEN = DATA / "golden" / "edition.txt"


def small_edition(seeds: list[Path]) -> Edition:
    """Twelve real seed papers (some with authors, dates and upvotes), one reader interest."""
    papers = stored_seed_papers(seeds)
    chosen = (papers[:8] + [p for p in papers if p.upvotes is not None][:3]
              + [p for p in papers if "Unlearning" in p.title][:1])
    groups = group_papers(chosen, Classifier(default_taxonomy(), ("unlearning",)))
    return Edition(7, datetime(2024, 3, 12, 7, 0), groups)


def test_the_plain_text_email_matches_its_golden_file(seeds: list[Path]) -> None:
    """UPDATE_GOLDEN=1 pytest tests/test_render.py rewrites the golden file; review the diff."""
    text = render_edition(small_edition(seeds)).text
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_the_plain_text_email_is_wrapped_numbered_and_linked(seeds: list[Path]) -> None:
    edition = small_edition(seeds)
    lines = render_edition(edition).text.splitlines()
    links = [line.strip() for line in lines if line.strip().startswith("https://")]
    # Only a link may pass the width, and it stands alone on its line, never broken.
    assert all(len(line) <= TEXT_WIDTH for line in lines if not line.strip().startswith("https://"))
    assert all(" " not in link for link in links)
    numbers = [int(m[1]) for line in lines if (m := re.match(r"(\d+)\. \S", line))]
    assert numbers == list(range(1, edition.paper_count + 1))
    assert len(links) == edition.paper_count


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("Short abstract.", 300, "Short abstract."),
    ("One sentence here. Another one that runs past the limit of the cut.", 30,
     "One sentence here."),
    ("A single long sentence with no end in sight before the limit arrives", 30,
     "A single long sentence with …"),
])
def test_snippets_cut_at_a_sentence_or_word_boundary(text: str, limit: int,
                                                     expected: str) -> None:
    assert snippet(text, limit) == expected


def test_links_go_to_arxiv_when_known_else_to_a_hugging_face_search() -> None:
    assert paper_link("T", "2401.00001", None) == "https://arxiv.org/abs/2401.00001"
    assert paper_link("Q&A: a test", None, None) == (
        "https://huggingface.co/papers?q=Q%26A%3A+a+test")


def test_the_view_numbers_papers_and_counts_the_edition(seeds: list[Path]) -> None:
    view = edition_view(small_edition(seeds))
    assert view.counts.startswith("12 new papers in ") and view.counts.endswith("for you")
    assert [p.number for t in view.topics for p in t.papers] == list(range(1, 13))
    assert len({t.anchor for t in view.topics}) == len(view.topics)


def test_html_escapes_what_a_dump_says(seeds: list[Path]) -> None:
    edition = small_edition(seeds)
    rendered = render_edition(edition)
    for html in (rendered.email_html, rendered.page_html):
        assert "<script" not in html
        assert html.count('href="#topic-') == len(edition.groups)
