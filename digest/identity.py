"""Paper identity: the exact key a title folds to."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[\W_]+")


def title_key(title: str) -> str:
    """Fold a title to the key two spellings of one paper share.

    NFKC folds compatibility forms (fullwidth letters, ligatures), casefold folds case, and
    every run of punctuation and whitespace becomes one space, so `:` vs ` - ` and a
    trailing period do not make a new paper.
    """
    folded = unicodedata.normalize("NFKC", title).casefold()
    return _NON_WORD.sub(" ", folded).strip()
