"""Grouping an edition: "For you" first, the taxonomy, and a large "Other" split into
groups named by the key phrases its titles share."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import main
from digest.config import config_from_dict
from digest.dumps import parse_dump, read_dump
from digest.errors import ConfigError
from digest.folding import fold_words
from digest.identity import title_key
from digest.model import FOR_YOU_KIND, OTHER_KIND, PHRASE_KIND, StoredPaper
from digest.topics import (
    FOR_YOU,
    OTHER,
    OTHER_SHARE,
    Classifier,
    default_taxonomy,
    group_papers,
    regroup,
)

# Three topics of the default taxonomy: most seed papers fall outside them.
NARROW = tuple(t for t in default_taxonomy()
               if t.name in {"Long Context & Memory", "Retrieval & Embeddings",
                             "Multilingual & Translation"})


def stored_seed_papers(seeds: list[Path]) -> list[StoredPaper]:
    papers: dict[str, StoredPaper] = {}
    for seed in seeds:
        for p in parse_dump(read_dump(seed), page_year=2024).papers:
            papers.setdefault(title_key(p.title), StoredPaper(
                len(papers) + 1, p.title, p.abstract, p.authors, p.authors_count, p.published,
                p.upvotes, p.arxiv_id, p.url, p.categories, 1, datetime(2024, 3, 11)))
    return list(papers.values())


def test_a_large_other_is_split_into_groups_named_by_title_phrases(seeds: list[Path]) -> None:
    papers = stored_seed_papers(seeds)
    classifier = Classifier(NARROW)
    unsplit = sum(classifier.classify(p.title, p.abstract)[0] == OTHER for p in papers)
    groups = group_papers(papers, classifier)
    found = [g for g in groups if g.kind == PHRASE_KIND]
    left = sum(len(g.papers) for g in groups if g.kind == OTHER_KIND)
    print(f"\n'Other' held {unsplit} of {len(papers)} papers; split into",
          {g.name: len(g.papers) for g in found}, f"and {left} left in 'Other'")
    assert unsplit > OTHER_SHARE * len(papers)
    assert len(found) >= 3
    assert left == unsplit - sum(len(g.papers) for g in found)
    assert len({g.name for g in groups}) == len(groups)
    for group in found:
        assert len(group.papers) >= 2
        phrase = fold_words(group.name)
        # Every paper of a found group carries its name in its own title.
        assert all(f" {phrase} " in f" {fold_words(r.paper.title)} " for r in group.papers)
        assert all(r.terms == (phrase,) for r in group.papers)
    # Found groups come after the taxonomy, largest first, and "Other" stays last.
    kinds = [g.kind for g in groups]
    assert kinds.index(PHRASE_KIND) == len(NARROW) and kinds[-1] == OTHER_KIND
    sizes = [len(g.papers) for g in found]
    assert sizes == sorted(sizes, reverse=True)
    # Nothing lost, nothing twice.
    placed = [r.paper.id for g in groups for r in g.papers]
    assert sorted(placed) == sorted(p.id for p in papers)


def test_a_small_other_stays_one_group(seeds: list[Path]) -> None:
    groups = group_papers(stored_seed_papers(seeds), Classifier(default_taxonomy()))
    assert not [g for g in groups if g.kind == PHRASE_KIND]


def test_interests_open_the_edition_and_are_not_repeated_below(seeds: list[Path]) -> None:
    papers = stored_seed_papers(seeds)
    interests = ("speculative decoding", "unlearning")
    groups = group_papers(papers, Classifier(default_taxonomy(), interests))
    first = groups[0]
    assert (first.name, first.kind) == (FOR_YOU, FOR_YOU_KIND)
    assert len(first.papers) >= 5
    for ranked in first.papers:
        assert ranked.terms and set(ranked.terms) <= set(interests)
    # Papers naming an interest in their title come before those naming it in the abstract.
    in_title = [any(fold_words(t) in fold_words(r.paper.title) for t in interests)
                for r in first.papers]
    assert in_title == sorted(in_title, reverse=True) and in_title[0] and not in_title[-1]
    mine = {r.paper.id for r in first.papers}
    below = [r.paper.id for g in groups[1:] for r in g.papers]
    assert not mine & set(below)
    assert len(mine) + len(below) == len(papers)


def test_a_claimed_edition_regroups_with_its_kinds_and_terms(seeds: list[Path]) -> None:
    papers = stored_seed_papers(seeds)
    classifier = Classifier(NARROW, ("unlearning",))
    groups = group_papers(papers, classifier)
    again = regroup(((g.name, r.paper) for g in groups for r in g.papers), classifier)
    assert [(g.name, g.kind) for g in again] == [(g.name, g.kind) for g in groups]
    assert again[0].papers[0].terms == ("unlearning",)
    assert [r.terms for g in again for r in g.papers] == [r.terms for g in groups for r in g.papers]


def test_interests_come_from_digest_toml(tmp_path: Path) -> None:
    config = config_from_dict({"interests": ["agent", " tool use "]}, source="digest.toml",
                              base=tmp_path)
    assert config.interests == ("agent", "tool use")


@pytest.mark.parametrize("value", ["agent", [1, 2], ["ok", ""]])
def test_malformed_interests_are_a_clear_error(tmp_path: Path, value: object) -> None:
    with pytest.raises(ConfigError, match="digest.toml: interests must be a list of terms"):
        config_from_dict({"interests": value}, source="digest.toml", base=tmp_path)


def test_interests_in_digest_toml_open_the_digest(tmp_path: Path, inbox: Path) -> None:
    config = tmp_path / "digest.toml"
    config.write_text('interests = ["speculative decoding"]\npage_year = 2024\n',
                      encoding="utf-8")
    result = CliRunner().invoke(main, ["--state-dir", str(tmp_path / "state"), "--config",
                                       str(config), "now", "--inbox", str(inbox), "--json"])
    assert result.exit_code == 0, result.output
    edition = json.loads(result.stdout)["edition"]
    first = edition["topics"][0]
    assert (first["name"], first["kind"]) == (FOR_YOU, FOR_YOU_KIND)
    assert first["papers"] and all(p["terms"] == ["speculative decoding"]
                                   for p in first["papers"])
    page = Path(edition["html"]).read_text(encoding="utf-8")
    assert page.index("For you") < page.index("Long Context &amp; Memory")
