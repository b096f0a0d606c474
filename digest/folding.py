"""Word folding: the one spelling of a word that its variants (case, hyphens, British
forms, plurals) share, so a keyword finds every way a title writes it."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_APOSTROPHES = re.compile(r"['’]")
# A word: letters and digits, with apostrophes inside it dropped ("LLM's" is "LLMs");
# hyphens, slashes, underscores and all other punctuation split words.
_WORD = re.compile(r"(?:[^\W_]|['’])+")
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


def split_words(text: str) -> list[str]:
    """The words of a text as written, split at spaces, hyphens, slashes and punctuation."""
    return [word for word, _, _ in word_spans(text)[1]]


def word_spans(text: str) -> tuple[str, list[tuple[str, int, int]]]:
    """The text in NFKC form, and each word with where it starts and ends in that form."""
    text = unicodedata.normalize("NFKC", text)
    return text, [(word, m.start(), m.end()) for m in _WORD.finditer(text)
                  if (word := _APOSTROPHES.sub("", m.group()))]


def fold_words(text: str) -> str:
    """Fold text so spelling variants meet: case, hyphens, British forms, plurals."""
    text = _APOSTROPHES.sub("", unicodedata.normalize("NFKC", text))
    return " ".join(fold_word(word) for word in _WORD.findall(text))


# Titles and abstracts reuse a small vocabulary: folding each distinct word once is most of
# the speed of classification.
@lru_cache(maxsize=1 << 16)
def fold_word(word: str) -> str:
    """One word folded: lower case, American spelling, singular."""
    word = word.casefold()
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
