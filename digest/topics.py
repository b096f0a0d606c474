"""Topics: the taxonomy, the classification of each paper, and the ranking inside a topic."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

from digest.errors import ConfigError
from digest.model import RankedPaper, StoredPaper, TopicGroup

OTHER = "Other"
# A term in the title says more about a paper than the same term in its abstract.
TITLE_WEIGHT = 4

_SEPARATORS = re.compile(r"[\-‐‑‒–—―−/\\_]+")
_APOSTROPHES = re.compile(r"['’]")
_NON_WORD = re.compile(r"[^\w\s]+")
_BRITISH = (
    ("optimis", "optimiz"), ("modell", "model"), ("behaviour", "behavior"),
    ("generalis", "generaliz"), ("tokenis", "tokeniz"), ("normalis", "normaliz"),
    ("specialis", "specializ"), ("summaris", "summariz"), ("organis", "organiz"),
    ("utilis", "utiliz"), ("quantis", "quantiz"), ("regularis", "regulariz"),
    ("characteris", "characteriz"), ("recognis", "recogniz"), ("minimis", "minimiz"),
    ("maximis", "maximiz"), ("visualis", "visualiz"), ("personalis", "personaliz"),
    ("labell", "label"), ("colour", "color"), ("favour", "favor"), ("centre", "center"),
    ("programme", "program"), ("catalogue", "catalog"), ("analyse", "analyze"))
# Words whose final "s" is not a plural.
_NOT_PLURAL = {"bias", "alias", "atlas", "canvas", "series", "species", "news", "lens"}


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


def fold_words(text: str) -> str:
    """Fold text so spelling variants meet: case, hyphens, British forms, plurals."""
    text = _APOSTROPHES.sub("", unicodedata.normalize("NFKC", text).casefold())
    text = _NON_WORD.sub(" ", _SEPARATORS.sub(" ", text)).replace("_", " ")
    return " ".join(_fold_word(word) for word in text.split())


def _fold_word(word: str) -> str:
    for british, american in _BRITISH:
        if british in word:
            word = word.replace(british, american)
    if len(word) <= 3 or word in _NOT_PLURAL or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    # Strip "s" then "e", so "cache"/"caches" and "image"/"images" fold to one stem.
    word = word.removesuffix("s")
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


class Classifier:
    """Places each paper in exactly one topic, and says which terms put it there."""

    def __init__(self, topics: Sequence[Topic]) -> None:
        self._topics = tuple(
            _Compiled(t, tuple((k, f" {fold_words(k)} ") for k in t.keywords if fold_words(k)))
            for t in topics)

    def classify(self, title: str, abstract: str) -> tuple[str, tuple[str, ...]]:
        """The best topic for a paper and its matched terms; OTHER with none when none match."""
        folded_title, folded_abstract = f" {fold_words(title)} ", f" {fold_words(abstract)} "
        best: tuple[int, str, tuple[str, ...]] = (0, OTHER, ())
        for compiled in self._topics:
            score, terms = 0, []
            for keyword, pattern in compiled.patterns:
                in_title = folded_title.count(pattern)
                hits = TITLE_WEIGHT * in_title + folded_abstract.count(pattern)
                if hits:
                    score += hits
                    terms.append((in_title > 0, keyword))
            # Strictly greater: on a tie the earlier, more specific topic keeps the paper.
            if score > best[0]:
                ordered = tuple(k for _, k in sorted(terms, key=lambda t: not t[0]))
                best = (score, compiled.topic.name, ordered)
        return best[1], best[2]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.topic.name for c in self._topics)


def rank_key(paper: StoredPaper) -> tuple[int, int, int, str]:
    """Most upvoted first, then the most widely listed, then the newest (undated last)."""
    newest = -paper.published.toordinal() if paper.published else 0
    return (-(paper.upvotes or 0), -paper.dumps, newest, paper.title.casefold())


def group_papers(papers: Iterable[StoredPaper], classifier: Classifier) -> tuple[TopicGroup, ...]:
    """Group papers by topic, in taxonomy order with "Other" last, each topic ranked."""
    buckets: dict[str, list[RankedPaper]] = {}
    for paper in papers:
        name, terms = classifier.classify(paper.title, paper.abstract)
        buckets.setdefault(name, []).append(RankedPaper(paper, terms))
    order = [*classifier.names, OTHER]
    return tuple(
        TopicGroup(name, tuple(sorted(buckets[name], key=lambda r: rank_key(r.paper))))
        for name in order if name in buckets)
