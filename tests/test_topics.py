import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import DATA

from digest.dumps import parse_dump, read_dump
from digest.identity import title_key
from digest.model import Paper
from digest.topics import OTHER, Classifier, default_taxonomy, fold_words


def seed_papers(seeds: list[Path]) -> dict[str, Paper]:
    papers: dict[str, Paper] = {}
    for seed in seeds:
        for paper in parse_dump(read_dump(seed), page_year=2024).papers:
            papers.setdefault(title_key(paper.title), paper)
    return papers


def test_folding_meets_hyphens_plurals_and_british_spellings() -> None:
    assert fold_words("Pre-Trained Benchmarks") == fold_words("pre trained benchmark")
    assert fold_words("optimisation of KV-caches") == fold_words("optimization of kv cache")
    assert fold_words("Queries") == fold_words("query")


def test_the_seed_topics_are_balanced(seeds: list[Path]) -> None:
    classifier = Classifier(default_taxonomy())
    papers = seed_papers(seeds)
    counts = Counter(classifier.classify(p.title, p.abstract)[0] for p in papers.values())
    shares = {name: n / len(papers) for name, n in counts.items()}
    print("\ntopic shares on the seeds:",
          {k: f"{v / len(papers):.1%}" for k, v in counts.most_common()})
    assert len(papers) == 354
    assert 8 <= len(classifier.names) <= 15
    assert max(shares.values()) <= 0.30
    assert shares.get(OTHER, 0.0) < 0.10


def test_topics_agree_with_the_labelled_set(seeds: list[Path]) -> None:
    classifier = Classifier(default_taxonomy())
    papers = seed_papers(seeds)
    labels = json.loads((DATA / "topic_labels.json").read_text(encoding="utf-8"))
    assert len(labels) >= 80
    agree = sum(
        classifier.classify(papers[title_key(item["title"])].title,
                            papers[title_key(item["title"])].abstract)[0] in item["topics"]
        for item in labels)
    print(f"\ntopic agreement with {len(labels)} labelled papers: {agree / len(labels):.1%}")
    assert agree / len(labels) >= 0.90


def test_a_title_match_outweighs_an_abstract_match() -> None:
    classifier = Classifier(default_taxonomy())
    topic, terms = classifier.classify("Speculative decoding for faster inference",
                                       "We also study retrieval.")
    assert topic == "Efficient Inference & Compression"
    assert "speculative decoding" in terms


@pytest.mark.parametrize(("title", "abstract", "not_topic"), [
    # Generic words that once pulled papers into topics a reader would not accept.
    ("Large Language Models as Data Preprocessors",
     "We use LLMs for error detection and cutting-edge prompt engineering.",
     "Safety, Privacy & Interpretability"),
    ("Platform requirements for serving", "We release open-source code.",
     "Code & Structured Data"),
    ("A prompting study", "Our cutting-edge method helps decision making.",
     "Efficient Inference & Compression"),
])
def test_generic_words_do_not_place_a_paper(title: str, abstract: str, not_topic: str) -> None:
    assert Classifier(default_taxonomy()).classify(title, abstract)[0] != not_topic
