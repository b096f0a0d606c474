"""Key phrases: names groups inside a large "Other" from the phrases its papers' titles share.

A phrase is weighed by class-based TF-IDF, after BERTopic's c-TF-IDF: its frequency in the
class (how many "Other" titles use it) times the log of how rare it is in the whole edition
(papers of every topic, titles and abstracts). A phrase many "Other" titles share but few
papers elsewhere mention ("knowledge editing") outweighs one every paper says ("training").
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from digest.folding import fold_word, split_words, word_spans

# Longest phrase considered: four-word names read as sentences, not headings.
MAX_WORDS = 3
# A group needs at least this many papers; one paper is not a theme.
MIN_PAPERS = 2

# Words that cannot start or end a name (folded like the titles); c-TF-IDF discounts the rest.
_STOPWORD_TEXT = """
a an and are as at be beyond by can do doe does for from how in into is it its more not of
on or our than that the their them these this through to toward towards under up via vs
what when where which while who why with without we you your all any one two new using use
based large language model llm lm study approach method framework paper case
effective improving enhancing advancing boosting unified simple
"""
_STOPWORDS = frozenset(fold_word(w) for w in _STOPWORD_TEXT.split())
# Halves of hyphenated words ("Multi-Agent", "Self-Play"): they may open a name, never end it.
_PREFIX_TEXT = """multi self non pre post cross co sub semi inter intra meta re un bi out over
low high long short small fine zero few open end"""
_PREFIXES = frozenset(fold_word(w) for w in _PREFIX_TEXT.split())
# Words too broad to name a group alone, though they do inside a phrase ("reinforcement
# learning", "training data").
_NOT_ALONE_TEXT = "learning training data efficient generation task tasks models system"
_NOT_ALONE = frozenset(fold_word(w) for w in _NOT_ALONE_TEXT.split())


@dataclass(frozen=True)
class PhraseGroup:
    """Papers whose titles share a key phrase; `name` is the phrase as the titles spell it."""

    name: str
    phrase: str
    members: tuple[int, ...]


def _ngrams(text: str) -> set[str]:
    folded = [fold_word(w) for w in split_words(text)]
    return {" ".join(folded[i:i + n])
            for n in range(1, MAX_WORDS + 1) for i in range(len(folded) - n + 1)}


def _phrases(title: str) -> dict[str, str]:
    """Every n-gram of a title that may name a group: folded → as the title writes it
    (hyphens and all: "Pre-training", not "pre training")."""
    text, spans = word_spans(title)
    folded = [fold_word(word) for word, _, _ in spans]
    found: dict[str, str] = {}
    for n in range(1, MAX_WORDS + 1):
        for i in range(len(folded) - n + 1):
            gram = folded[i:i + n]
            if gram[0] in _STOPWORDS or gram[-1] in _STOPWORDS or gram[-1] in _PREFIXES:
                continue
            if any(w.isdigit() for w in gram) or (n == 1 and (
                    len(gram[0]) < 3 or gram[0] in _NOT_ALONE)):
                continue
            found.setdefault(" ".join(gram), text[spans[i][1]:spans[i + n - 1][2]])
    return found


def name_groups(titles: Sequence[str], background: Sequence[str],
                max_groups: int, stop_below: int) -> tuple[PhraseGroup, ...]:
    """Greedy groups over `titles` (the "Other" class), each named by its best key phrase.

    `background` is every paper of the edition as title plus abstract: how many of them
    use a phrase is its frequency across all classes (IDF side), so words every paper
    uses ("training", "data") cannot name a group. Grouping stops after `max_groups`,
    when fewer than `stop_below` titles remain ungrouped, or when no phrase is shared by
    MIN_PAPERS titles.
    """
    per_title = [_phrases(t) for t in titles]
    candidates = {p for phrases in per_title for p in phrases}
    spread = Counter(p for text in background for p in _ngrams(text) & candidates)
    papers = len(background)

    remaining = set(range(len(titles)))
    groups: list[PhraseGroup] = []
    while len(groups) < max_groups and len(remaining) >= stop_below:
        best = _best_phrase(per_title, remaining, spread, papers)
        if best is None:
            break
        members = tuple(sorted(i for i in remaining if best in per_title[i]))
        spellings = Counter(per_title[i][best] for i in members)
        groups.append(PhraseGroup(_heading(spellings.most_common(1)[0][0]), best, members))
        remaining -= set(members)
    return tuple(groups)


def _best_phrase(per_title: list[dict[str, str]], remaining: set[int],
                 spread: dict[str, int], papers: int) -> str | None:
    support = Counter(p for i in remaining for p in per_title[i])
    scored = [
        (count * math.log(papers / max(spread[phrase], 1)), len(phrase.split()), phrase)
        for phrase, count in support.items() if count >= MIN_PAPERS]
    if not scored:
        return None
    best = max(scored)[2]
    # A longer phrase held by exactly the same titles says more: "knowledge editing" over
    # "editing".
    holders = {i for i in remaining if best in per_title[i]}
    longer = [p for p in support if f" {best} " in f" {p} " and p != best
              and {i for i in remaining if p in per_title[i]} == holders]
    return max(longer, key=len) if longer else best


def _heading(spelled: str) -> str:
    return spelled[:1].upper() + spelled[1:]
