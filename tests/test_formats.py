"""Each dump format parsed from real or realistic files, detected from content alone.

The expected records of every file in tests/data/dumps/ are golden files beside it
(`<name>.expected.json`); DIGEST_UPDATE_GOLDEN=1 pytest rewrites them for review as a diff.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from dataclasses import asdict
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import main
from digest.dumps import parse_dump, read_dump
from digest.dumps.clean import plain_latex, tidy_punctuation
from digest.model import ParsedDump

DATA = Path(__file__).resolve().parent / "data"
GOLDEN_INPUTS = sorted(p for p in (DATA / "dumps").iterdir() if ".expected." not in p.name)
SCRAPED = sorted((DATA / "hf-scraped-json").glob("*.json"))


def _as_json(parsed: ParsedDump) -> dict[str, object]:
    return json.loads(json.dumps(asdict(parsed), default=str))


@pytest.mark.parametrize("path", GOLDEN_INPUTS, ids=lambda p: p.name)
def test_each_format_parses_to_its_golden_records(path: Path) -> None:
    got = _as_json(parse_dump(read_dump(path)))
    golden = path.with_name(path.name + ".expected.json")
    if os.environ.get("DIGEST_UPDATE_GOLDEN"):
        golden.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n", "utf-8")
    assert got == json.loads(golden.read_text("utf-8"))


@pytest.mark.parametrize("source,fmt", [
    (DATA / "dumps" / "hf-daily-papers-api.json", "hf-daily-papers-api"),
    (DATA / "dumps" / "arxiv-snapshot.jsonl", "arxiv-jsonl"),
    (SCRAPED[1], "hf-scraped-json"),
], ids=["hf-api", "arxiv", "scraped"])
def test_the_format_comes_from_the_content_not_the_name(tmp_path: Path, source: Path,
                                                         fmt: str) -> None:
    misnamed = tmp_path / "listing.txt"
    shutil.copy(source, misnamed)
    assert parse_dump(read_dump(misnamed)).format == fmt


def test_hf_api_entries_carry_id_link_authors_upvotes_and_date() -> None:
    papers = parse_dump(read_dump(DATA / "dumps" / "hf-daily-papers-api.json")).papers
    first = papers[0]
    assert first.title == ("LLM×MapReduce: Simplified Long-Sequence Processing using Large "
                           "Language Models")
    assert first.abstract.startswith("Enlarging the context window of large language models "
                                     "(LLMs) has become a crucial research area, particularly")
    assert (first.arxiv_id, first.upvotes, first.published) == (
        "2410.09342", 25, date(2024, 10, 12))
    assert first.authors == ("Zihan Zhou", "Chong Li", "Xinyi Chen")
    assert first.url == "https://huggingface.co/papers/2410.09342"
    assert "2.2× less training steps" in papers[1].abstract
    assert papers[2].authors == () and papers[2].authors_count is None


def test_arxiv_records_are_unwrapped_and_typeset() -> None:
    papers = parse_dump(read_dump(DATA / "dumps" / "arxiv-snapshot.jsonl")).papers
    assert [p.arxiv_id for p in papers] == ["0704.0001", "0704.0002", "1609.05232",
                                            "math/0601001"]
    first = papers[0]
    assert first.title == ("Calculation of prompt diphoton production cross sections at "
                           "Tevatron and LHC energies")
    assert first.abstract.startswith("A fully differential calculation in perturbative "
                                     "quantum chromodynamics is presented for")
    assert first.authors == ("C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan")
    assert (first.published, first.categories) == (date(2007, 4, 2), ("hep-ph",))
    assert papers[1].categories == ("math.CO", "cs.CG")
    assert "(k,ℓ)-pebble game" in papers[1].abstract
    assert papers[2].title == "Charge density wave in 1T-TiSe₂ and the p-adic numbers"
    assert papers[2].abstract == "We report 100% of in situ measurements."


def test_the_real_scraped_archives_are_cleaned_for_the_reader() -> None:
    papers = {p.arxiv_id: p for path in SCRAPED for p in parse_dump(read_dump(path)).papers}
    assert len(papers) == 43
    helios = papers["2603.04379"]
    assert helios.authors[0] == "Shenghai Yuan" and helios.authors_count == 6
    assert "self-forcing, error-banks, or keyframe sampling;" in helios.abstract
    assert papers["2603.07980"].title.startswith("$OneMillion-Bench: How Far")
    assert "by an average of 3.3% while" in papers["2603.02604"].abstract
    assert "We propose π-StepNFT (S" in papers["2603.02083"].abstract
    assert "(RIVER Bench)" in papers["2603.03985"].abstract
    # A list of ten names may be cut by the scraper: its length is no count.
    assert len(papers["2603.03790"].authors) == 10 and papers["2603.03790"].authors_count is None
    for paper in papers.values():
        fields = [paper.title, paper.abstract, *paper.authors]
        assert not any("\n" in f or "\r" in f or f.endswith(",") for f in fields)
        assert "\\%" not in paper.abstract and "\\textit" not in paper.abstract
        assert paper.published is None  # publishedAt is the scrape time, not the paper's


def test_the_placeholder_file_is_recognised_and_left_out_with_a_warning() -> None:
    parsed = parse_dump(read_dump(SCRAPED[0]))
    assert parsed.papers == ()
    (warning,) = parsed.warnings
    assert "placeholder 'Example Paper: Advances in Large Language Models' (id 2502.12345)" \
        in warning


@pytest.mark.parametrize("latex,typeset", [
    ("100\\%", "100%"),
    ("\\textit{boldsymbolπ-StepNFT}", "π-StepNFT"),
    ("\\$OneMillion-Bench", "$OneMillion-Bench"),
    ("LLM$\\times$MapReduce", "LLM×MapReduce"),
    ("PanGu-$\\pi$ and $\\lambda$-ECLIPSE", "PanGu-π and λ-ECLIPSE"),
    ("Schr\\\"odinger and Erd\\H{o}s", "Schrödinger and Erd\\H{o}s"),
    ("costs $3\\times$ less", "costs 3× less"),
    ("``reinvent the wheel''", "“reinvent the wheel”"),
    ("x$^{2}$ and \\textbf{\\emph{bold}}", "x² and bold"),
    ("$\\frac{1}{2}$-approximation in $\\hat{x}\\,$ time", "1/2-approximation in x time"),
    ("$\\mathcal{O}(n\\log n)$ and \\unknown{kept}", "O(n log n) and \\unknown{kept}"),
])
def test_latex_remnants_read_as_typeset(latex: str, typeset: str) -> None:
    assert plain_latex(latex) == typeset


@pytest.mark.parametrize("scraped,clean", [
    ("context loss , which", "context loss, which"),
    ("( RIVER Bench ), designed", "(RIVER Bench), designed"),
    ("steps . Extensive", "steps. Extensive"),
    ("pipeline : joint", "pipeline: joint"),
    ("version .NET stays", "version .NET stays"),
])
def test_spaces_before_punctuation_go(scraped: str, clean: str) -> None:
    assert tidy_punctuation(scraped) == clean


def test_ingest_of_the_real_scraped_archives_keeps_43_papers_and_the_top_upvotes(
        tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = CliRunner().invoke(main, ["--state-dir", str(state), "ingest",
                                       str(DATA / "hf-scraped-json")])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("ingested ") == 7
    assert result.stderr.splitlines() == [
        f"digest: warning: {SCRAPED[0]}: paper 1: placeholder 'Example Paper: Advances in "
        "Large Language Models' (id 2502.12345) left out: not a real paper"]
    with sqlite3.connect(state / "digest.db") as db:
        rows = dict(db.execute("SELECT arxiv_id, upvotes FROM papers").fetchall())
        sightings = dict(db.execute(
            "SELECT p.arxiv_id, COUNT(*) FROM sightings s JOIN papers p ON p.id = s.paper_id "
            "GROUP BY p.arxiv_id").fetchall())
    assert len(rows) == 43 and "2502.12345" not in rows
    # Weekend files repeat Friday's papers with rising upvotes: one paper, the highest.
    assert (rows["2603.03756"], sightings["2603.03756"]) == (80, 3)
    assert (rows["2603.04743"], rows["2603.00466"], rows["2603.04448"]) == (42, 14, 58)
    assert sum(sightings.values()) == 60
