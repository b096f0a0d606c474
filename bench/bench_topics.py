"""Benchmark: grouping and rendering an edition, against a baseline run side by side.

    python bench/bench_topics.py [copies]

The seed papers are repeated `copies` times (default 10, about 3,500 papers). Baseline:
the default taxonomy, where "Other" stays small and is never split. Measured: a
two-topic taxonomy, where most papers land in "Other" and are split into groups named
by key phrases. Rendering of the same edition is timed too.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from digest.dumps import parse_dump, read_dump
from digest.model import Edition, StoredPaper
from digest.render import render_edition
from digest.topics import Classifier, default_taxonomy, group_papers

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def seed_papers(copies: int) -> list[StoredPaper]:
    base = [p for seed in sorted(SAMPLES.glob("*.txt"))
            for p in parse_dump(read_dump(seed), page_year=2024).papers]
    stored = [StoredPaper(0, p.title, p.abstract, p.authors, p.authors_count, p.published,
                          p.upvotes, p.arxiv_id, p.url, p.categories, 1, datetime(2024, 3, 12))
              for p in base]
    return [replace(p, id=n * len(stored) + i, title=f"{p.title} ({n})")
            for n in range(copies) for i, p in enumerate(stored)]


def timed(label: str, fn: object, *args: object) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args)  # type: ignore[operator]
    seconds = time.perf_counter() - start
    print(f"  {label:<44} {seconds:8.3f} s")
    return seconds, result


def main() -> None:
    copies = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    papers = seed_papers(copies)
    narrow = tuple(t for t in default_taxonomy()
                   if t.name in {"Long Context & Memory", "Retrieval & Embeddings"})
    print(f"{len(papers)} papers")
    base, groups = timed("baseline: default taxonomy", group_papers, papers,
                         Classifier(default_taxonomy()))
    split, found = timed("two topics, 'Other' split by key phrases", group_papers, papers,
                         Classifier(narrow))
    print(f"  ratio split/baseline: {split / base:.2f}x "
          f"({sum(g.kind == 'phrase' for g in found)} groups named)")  # type: ignore[attr-defined]
    edition = Edition(1, datetime(2024, 3, 12), groups)  # type: ignore[arg-type]
    render, _ = timed("render email HTML, text and page", render_edition, edition)
    print(f"  per paper: group {base / len(papers) * 1e3:.3f} ms, "
          f"render {render / len(papers) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
