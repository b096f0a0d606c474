"""Topics: the taxonomy, the classification of each paper, and the ranking inside a topic."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

from digest.errors import ConfigError
from digest.folding import fold_words
from digest.keyphrases import name_groups
from digest.model import (
    FOR_YOU_KIND,
    OTHER_KIND,
    PHRASE_KIND,
    TOPIC_KIND,
    RankedPaper,
    StoredPaper,
    TopicGroup,
)

OTHER = "Other"
FOR_YOU = "For you"
# A term in the title says more about a paper than the same term in its abstract.
TITLE_WEIGHT = 4
# Above this share of an edition, "Other" is split into groups named by shared key phrases.
OTHER_SHARE = 0.10
# At most this many such groups: past it, the next phrases name too few papers to help.
MAX_PHRASE_GROUPS = 10


@dataclass(frozen=True)
class Topic:
    name: str
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class _Compiled:
    topic: Topic
    # Each keyword as its folded word sequence, padded with spaces for whole-word search.
    patterns: tuple[tuple[str, str], ...]


def default_taxonomy() -> tuple[Topic, ...]:
    """The taxonomy shipped with the package (digest/taxonomy.toml)."""
    text = resources.files("digest").joinpath("taxonomy.toml").read_text(encoding="utf-8")
    return taxonomy_from_toml(tomllib.loads(text), source="the default taxonomy")


def taxonomy_from_toml(data: dict[str, object], *, source: str) -> tuple[Topic, ...]:
    """Build topics from a parsed `[[topics]]` table, with a clear error when malformed."""
    entries = data.get("topics")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: [[topics]] needs at least one entry with name and keywords")
    topics = []
    for n, entry in enumerate(entries, 1):
        name = entry.get("name") if isinstance(entry, dict) else None
        keywords = entry.get("keywords") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{source}: topic {n} has no name")
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            raise ConfigError(f"{source}: topic {name!r} needs keywords = [\"...\", ...]")
        topics.append(Topic(name.strip(), tuple(keywords)))
    return tuple(topics)


class Classifier:
    """Places each paper in exactly one topic, and says which terms put it there; also
    says which of a reader's interests a paper matches."""

    def __init__(self, topics: Sequence[Topic], interests: Sequence[str] = ()) -> None:
        self._topics = tuple(_compile(t) for t in topics)
        self._interests = _compile(Topic(FOR_YOU, tuple(interests)))

    def classify(self, title: str, abstract: str) -> tuple[str, tuple[str, ...]]:
        """The best topic for a paper and its matched terms; OTHER with none when none match."""
        folded = _Folded(title, abstract)
        best: tuple[int, str, tuple[str, ...]] = (0, OTHER, ())
        for compiled in self._topics:
            score, terms = _match(compiled, folded)
            # Strictly greater: on a tie the earlier, more specific topic keeps the paper.
            if score > best[0]:
                best = (score, compiled.topic.name, terms)
        return best[1], best[2]

    def interests_of(self, title: str, abstract: str) -> tuple[str, ...]:
        """The reader's interests this paper matches, title matches first."""
        return self.interest_match(title, abstract)[1]

    def interest_match(self, title: str, abstract: str) -> tuple[int, tuple[str, ...]]:
        """How strongly a paper matches the reader's interests (a title match counts
        TITLE_WEIGHT times), and which it matches."""
        return _match(self._interests, _Folded(title, abstract))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.topic.name for c in self._topics)


class _Folded:
    """A paper's title and abstract folded once, padded for whole-word search."""

    def __init__(self, title: str, abstract: str) -> None:
        self.title = f" {fold_words(title)} "
        self.abstract = f" {fold_words(abstract)} "


def _compile(topic: Topic) -> _Compiled:
    return _Compiled(topic, tuple(
        (k, f" {fold_words(k)} ") for k in topic.keywords if fold_words(k)))


def _match(compiled: _Compiled, folded: _Folded) -> tuple[int, tuple[str, ...]]:
    score, terms = 0, []
    for keyword, pattern in compiled.patterns:
        in_title = folded.title.count(pattern)
        hits = TITLE_WEIGHT * in_title + folded.abstract.count(pattern)
        if hits:
            score += hits
            terms.append((in_title > 0, keyword))
    return score, tuple(k for _, k in sorted(terms, key=lambda t: not t[0]))


def rank_key(paper: StoredPaper) -> tuple[int, int, int, str]:
    """Most upvoted first, then the most widely listed, then the newest (undated last)."""
    newest = -paper.published.toordinal() if paper.published else 0
    return (-(paper.upvotes or 0), -paper.dumps, newest, paper.title.casefold())


def group_papers(papers: Iterable[StoredPaper], classifier: Classifier) -> tuple[TopicGroup, ...]:
    """Group papers by topic, each ranked: "For you" first (a paper there is not repeated
    below), then the taxonomy in order, then groups named inside a large "Other", then
    "Other"."""
    buckets: dict[str, list[RankedPaper]] = {}
    mine: list[tuple[int, RankedPaper]] = []
    total = 0
    for paper in papers:
        total += 1
        strength, interests = classifier.interest_match(paper.title, paper.abstract)
        if interests:
            mine.append((strength, RankedPaper(paper, interests)))
            continue
        name, terms = classifier.classify(paper.title, paper.abstract)
        buckets.setdefault(name, []).append(RankedPaper(paper, terms))
    # The reader's own terms say more than upvotes: the strongest matches lead "For you".
    mine.sort(key=lambda m: (-m[0], rank_key(m[1].paper)))
    groups = [TopicGroup(FOR_YOU, tuple(r for _, r in mine), kind=FOR_YOU_KIND)] if mine else []
    other = buckets.pop(OTHER, [])
    groups += [TopicGroup(name, _ranked(buckets[name]))
               for name in classifier.names if name in buckets]
    if len(other) > OTHER_SHARE * total:
        found, other = split_other(other, groups, limit=int(OTHER_SHARE * total))
        groups += found
    if other:
        groups.append(TopicGroup(OTHER, _ranked(other), kind=OTHER_KIND))
    return tuple(groups)


def split_other(other: list[RankedPaper], groups: Sequence[TopicGroup],
                limit: int) -> tuple[list[TopicGroup], list[RankedPaper]]:
    """Groups inside "Other" named by the key phrases their titles share (largest first),
    and the papers left over; grouping stops once no more than `limit` are left."""
    phrase_groups = name_groups(
        [r.paper.title for r in other],
        [f"{r.paper.title}\n{r.paper.abstract}" for g in groups for r in g.papers]
        + [f"{r.paper.title}\n{r.paper.abstract}" for r in other],
        max_groups=MAX_PHRASE_GROUPS, stop_below=limit + 1)
    taken = {i for g in phrase_groups for i in g.members}
    found = [TopicGroup(g.name, _ranked([RankedPaper(other[i].paper, (g.phrase,))
                                         for i in g.members]), kind=PHRASE_KIND)
             for g in sorted(phrase_groups, key=lambda g: -len(g.members))]
    return found, [r for i, r in enumerate(other) if i not in taken]


def regroup(placed: Iterable[tuple[str, StoredPaper]],
            classifier: Classifier) -> tuple[TopicGroup, ...]:
    """Groups as an edition was claimed (group name, paper in order), with kinds and terms
    worked out again: the store keeps only the name."""
    groups: dict[str, list[RankedPaper]] = {}
    for name, paper in placed:
        if name == FOR_YOU:
            terms = classifier.interests_of(paper.title, paper.abstract)
        elif name in classifier.names or name == OTHER:
            terms = classifier.classify(paper.title, paper.abstract)[1]
        else:
            terms = (fold_words(name),)
        groups.setdefault(name, []).append(RankedPaper(paper, terms))
    return tuple(TopicGroup(name, tuple(papers), kind=_kind(name, classifier))
                 for name, papers in groups.items())


def _kind(name: str, classifier: Classifier) -> str:
    if name == FOR_YOU:
        return FOR_YOU_KIND
    if name == OTHER:
        return OTHER_KIND
    return TOPIC_KIND if name in classifier.names else PHRASE_KIND


def _ranked(papers: list[RankedPaper]) -> tuple[RankedPaper, ...]:
    return tuple(sorted(papers, key=lambda r: rank_key(r.paper)))
