"""Paper identity: the exact key a title folds to, the blocks that find its near spellings,
and the verdict on whether two spellings are one paper."""

from __future__ import annotations

import html
import re
import string
import unicodedata
import zlib
from dataclasses import dataclass
from typing import NamedTuple

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from digest.model import Paper

# -- normalisation ------------------------------------------------------------------------

_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε",
    "zeta": "ζ", "eta": "η", "theta": "θ", "vartheta": "θ", "iota": "ι", "kappa": "κ",
    "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "omicron": "ο", "pi": "π", "varpi": "π",
    "rho": "ρ", "varrho": "ρ", "sigma": "σ", "varsigma": "σ", "tau": "τ", "upsilon": "υ",
    "phi": "φ", "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
}
# LaTeX commands that stand for a symbol; every other command is a wrapper (\textit{x} is x)
# or, unknown, stands for its own name (\LaTeX).
_LATEX_SYMBOLS = {
    **_GREEK, **{name.capitalize(): char.upper() for name, char in _GREEK.items()},
    "times": "×", "infty": "∞", "&": "&", "%": "%", "$": "$", "#": "#", "_": "_",
    "{": "", "}": "", "ldots": " ", "dots": " ", "cdot": " ", "to": " ", "rightarrow": " ",
}
_LATEX_WRAPPERS = {
    "text", "textit", "textbf", "textrm", "textsc", "texttt", "textsf", "emph", "mathrm",
    "mathbf", "mathit", "mathcal", "mathbb", "mathsf", "mathtt", "boldsymbol", "bm",
    "operatorname", "mbox", "hbox", "underline", "small", "large", "tiny",
}
_LATEX_COMMAND = re.compile(r"\\([A-Za-z]+|[&%$#_{}])\s*")
_LATEX_MARKUP = re.compile(r"\\[()\[\]]|[${}^_]")
_HAS_LATEX = re.compile(r"[\\${}^_]")

# Greek letters fold to their names, so `π`, `$\pi$` and `pi` are one spelling.
_GREEK_NAMES: dict[int, str] = {ord(char): name for name, char in _GREEK.items()
                if not name.startswith("var")} | {
    ord("ς"): "sigma", ord("ϵ"): "epsilon", ord("ϑ"): "theta", ord("ϕ"): "phi"}
_FOLD: dict[int, str] = {
    **_GREEK_NAMES,
    # Hyphens and dashes join (pre-train = pretrain); apostrophes join (don't = dont).
    **{ord(c): "" for c in "-‐‑‒–—―−﹘﹣'’‘‛`´ʼ\u00ad\u200b\u200c\u200d\u2060\ufeff"},
    ord("×"): "times",
}
_SPELT_OUT = (("&", " and "), ("+", "plus"), ("%", "percent"))
# Control characters separate words, as in the non-ASCII path (_NON_WORD): a key with a
# NUL in it would not even match itself through json_each (store/matching.py).
_CONTROLS = "".join(map(chr, range(32))) + "\x7f"
_ASCII_FOLD = str.maketrans({
    **{c: " " for c in string.punctuation + string.whitespace + _CONTROLS
       if c not in "-'`."},
    **{c: None for c in "-'`"}})
# A dot is a word break unless it stands between digits (3.1 is not 31).
_STRAY_DOT = re.compile(r"(?<!\d)\.|\.(?!\d)")
# 3x, 1000× and 1000$\times$ are one spelling of "times".
_DIGIT_X = re.compile(r"(?<=\d)x(?![a-z])")
_NON_WORD = re.compile(r"[^\w.]+|_+")


def normalise(title: str) -> str:
    """Fold a title to its words, lower case, separated by single spaces.

    The fold undoes what sources do to one title: HTML entities, Unicode forms (NFKC, then
    accents dropped), case, LaTeX math and commands, dashes, hyphens, quotes, `&`, and
    whitespace. It never drops a letter or a digit, so it never joins two papers.
    """
    text = html.unescape(title) if "&" in title else title
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    if _HAS_LATEX.search(text):
        text = _unwrap_latex(text)
    text = text.casefold()
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text)
                       if not unicodedata.combining(c)).translate(_FOLD)
    for char, spelt in _SPELT_OUT:
        if char in text:
            text = text.replace(char, spelt)
    if "x" in text:
        text = _DIGIT_X.sub("times", text)
    # The common case, a plain ASCII title, by string methods: a regex per title is the
    # slowest step of ingesting one.
    text = text.translate(_ASCII_FOLD) if text.isascii() else _NON_WORD.sub(" ", text)
    if "." in text:
        text = _STRAY_DOT.sub(" ", text)
    return " ".join(text.split())


def _unwrap_latex(text: str) -> str:
    def command(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in _LATEX_WRAPPERS:
            return ""
        return _LATEX_SYMBOLS.get(name, name)

    return _LATEX_MARKUP.sub("", _LATEX_COMMAND.sub(command, text))


def key_of(normalised: str) -> str:
    """The exact key of a normalised title: its letters and digits, no spaces."""
    return normalised.replace(" ", "")


def title_key(title: str) -> str:
    """Fold a title to the exact key every spelling of one paper shares."""
    return key_of(normalise(title))


# -- blocking ------------------------------------------------------------------------------

# Words too common in paper titles to tell one from another; a title's blocks are built
# from its other words first. A fixed list, not counts from the store, so a title's blocks
# never depend on what was stored before it.
_COMMON = frozenset("""
a an the of for and or in on to with without via by from at as is are be can do does we
our its it this that vs versus into over under through towards toward beyond using based
how what when why which who new all not no more less than via one
model models modeling modelling language languages large small learning learn deep neural
network networks data dataset datasets training train trained pretraining pretrained
finetuning finetuned tuning instruction benchmark benchmarks evaluation evaluating
evaluate efficient efficiency scaling scalable survey study analysis approach method
methods framework toward generation generative generating understanding reasoning
multimodal vision visual text image images video llm llms lm lms agent agents
reinforcement transformer transformers diffusion attention representation
representations knowledge task tasks performance improving improve improved better
via towards system systems open robust general context long memory
""".split())
# A title is filed under the combinations of all but one of its rarest words.
_BLOCK_WORDS = 4
# A title's only rare word is also filed by its first and its last _PART letters from
# _SPLIT_FROM letters on. One misspelling (a letter dropped, doubled or changed, or two
# swapped) of a word of 7 letters or more leaves one of the two intact; of 6, all but a
# swap of the middle two; of 5, all but those of the middle letter. (From 4, so that a
# 5-letter word with a letter dropped is still filed so.)
_PART = 3
_SPLIT_FROM = 4


def title_blocks(normalised: str) -> list[int]:
    """The blocks a title is filed and looked up under: every combination of all but one
    of its four rarest words (three words of four, or two of three, or one of two).

    Rarest means not on the list of common title words, then longest. A misspelt word
    leaves one combination of the others intact: with it gone, the others are still the
    rarest, and the misspelling, rare or not, is the fourth. The same function files a
    stored title and looks up a new one, so each costs four index entries (six below).

    A title with one rare word ("Large Language Models as Data Preprocessors") gets two
    more: its common words with the rare word's first letters, and with its last. When
    the rare word is the one misspelt, the combination left intact is of common words
    only, which thousands of titles share in a large store: too many to look through.
    One misspelling leaves the start or the end of a word intact (see _PART).
    """
    ranked = sorted({(w in _COMMON, -len(w), w) for w in normalised.split()})[:_BLOCK_WORDS]
    # A block is the sum of its words' CRC-32s: stable across runs, free of word order,
    # and each all-but-one combination is the total less one word. A collision only adds
    # a candidate that the verdict then turns down.
    hashes = [zlib.crc32(w.encode()) for _, _, w in ranked]
    if len(hashes) <= 1:
        return hashes
    total = sum(hashes)
    blocks = [(total - h) & 0xFFFFFFFF for h in hashes]
    rare, second = ranked[0], ranked[1]
    if not rare[0] and second[0] and len(rare[2]) >= _SPLIT_FROM:
        # Parts of a fixed length: a dropped or doubled letter changes the word's length
        # but not its other end.
        word, others = rare[2], total - hashes[0]
        blocks += [(others + zlib.crc32(f"{word[:_PART]}<".encode())) & 0xFFFFFFFF,
                   (others + zlib.crc32(f">{word[-_PART:]}".encode())) & 0xFFFFFFFF]
    return blocks


# -- the verdict ---------------------------------------------------------------------------

# Title similarity (rapidfuzz fuzz.ratio, 0-100) that a fuzzy match needs at the least.
TITLE_SCORE = 90.0
# Below TITLE_SCORE, down to WORDING_SCORE, a title is the same paper only when both
# abstracts agree.
WORDING_SCORE = 85.0
# A misspelling touches few places; more is a change of wording.
_MAX_EDIT_REGIONS = 2
# Abstract similarity over the shared length: at or above, one paper; below, two.
ABSTRACT_SAME = 85.0
ABSTRACT_DIFFERENT = 70.0
_ABSTRACT_CHARS = 400
_MIN_ABSTRACT_CHARS = 80

_NUMBER = re.compile(r"(\d+(?:\.\d+)*)([a-z]*)")
_NUMBER_WORDS = frozenset("""
i ii iii iv vi vii viii ix xi xii one two three four five six seven eight nine ten eleven
twelve first second third fourth fifth single double triple
""".split())
_NEGATIONS = frozenset("""
not no non without never cannot cant dont doesnt isnt arent wont
""".split())


@dataclass(frozen=True)
class Verdict:
    """Whether a title is a stored paper, with the score and the reason behind it."""

    same: bool
    score: float
    reason: str
    # "arxiv" (the ids agree), "exact" (the keys agree) or "fuzzy" (the titles are close)
    kind: str = "fuzzy"


def could_score(length: int, other: int) -> bool:
    """Whether keys of these lengths could reach WORDING_SCORE at all: fuzz.ratio is at most
    1 - |a - b| / (a + b), so a key much longer or shorter is turned down unread."""
    return abs(length - other) * 100 <= (100 - WORDING_SCORE) * (length + other)


def numbers_of(normalised: str) -> tuple[str, ...]:
    """The number and version tokens of a title: 3.1, 7b, 70b, 4k. A unit of up to two
    letters stays with its number, so 7B and 7M differ."""
    return tuple(sorted(num + (unit if len(unit) <= 2 else "")
                        for num, unit in _NUMBER.findall(normalised)))


def word_veto(seen: str, stored: str, words: frozenset[str]) -> str | None:
    """A word of `words` (a number word, a negation) that one title has and the other
    lacks, or None. A misspelling of a longer one ("witout", "signle") is the same word;
    a short one (I, II, no) is too close to others to tell."""
    a, b = set(seen.split()), set(stored.split())
    for mine, theirs in ((a, b), (b, a)):
        for word in sorted((mine - theirs) & words):
            if len(word) < 4 or not any(
                    Levenshtein.distance(word, other) <= 1 + (len(word) > 5)
                    for other in theirs - mine - words):
                return word
    return None


def typo_veto(stored: str, seen: str) -> str | None:
    """Why the differences between two normalised titles are not misspellings, or None.

    A misspelling is a dropped or doubled character, a wrong character inside a longer
    word, or two neighbours swapped; at most two of them. A changed prefix (Unsupervised),
    a changed word (Offline for Online, Samba for Mamba) or more places changed is a
    different wording, and may be a different paper.
    """
    a, b = key_of(stored), key_of(seen)
    word_at = _word_spans(stored)
    regions: list[list[int]] = []
    for op in Levenshtein.opcodes(a, b):
        if op.tag == "equal":
            continue
        if regions and op.src_start - regions[-1][1] <= 1:
            regions[-1][1], regions[-1][3] = op.src_end, op.dest_end
        else:
            regions.append([op.src_start, op.src_end, op.dest_start, op.dest_end])
    if len(regions) > _MAX_EDIT_REGIONS:
        return f"{len(regions)} places differ"
    for i1, i2, j1, j2 in regions:
        was, now = a[i1:i2], b[j1:j2]
        start, length = word_at[min(i1, len(a) - 1)] if a else (0, 0)
        if len(was) + len(now) == 1:
            continue
        if len(was) == len(now) == 1 and length > 5 and i1 != start:
            continue
        if len(was) == len(now) == 2 and was == now[::-1]:
            continue
        return f"{was or '-'!r} became {now or '-'!r}: not a misspelling"
    return None


def _word_spans(normalised: str) -> list[tuple[int, int]]:
    """For each character of the key, the start and length of the word it belongs to."""
    spans: list[tuple[int, int]] = []
    for word in normalised.split():
        spans.extend([(len(spans), len(word))] * len(word))
    return spans


def abstract_similarity(a: str, b: str) -> float | None:
    """How alike two abstracts are (0-100) over the length both have, so that one source's
    truncated abstract still agrees with another's whole one; None when either is too
    short to tell."""
    a, b = a[:_ABSTRACT_CHARS * 2], b[:_ABSTRACT_CHARS * 2]
    fa = key_of(normalise(a))
    # A paper listed again mostly comes with the same abstract: fold it once.
    fb = fa if a == b else key_of(normalise(b))
    n = min(len(fa), len(fb), _ABSTRACT_CHARS)
    if n < _MIN_ABSTRACT_CHARS:
        return None
    return float(fuzz.ratio(fa[:n], fb[:n]))


def judge(seen: str, stored: str, *, seen_abstract: str = "",
          stored_abstract: str = "") -> Verdict:
    """Decide whether the normalised title `seen` is the stored paper's title `stored`.

    A differing number or version token or negation vetoes; so do abstracts, where both
    are given, that disagree. A title score of at least TITLE_SCORE whose differences are
    misspellings is the same paper; a close title with other changes of wording is the
    same paper only when both abstracts agree.
    """
    a, b = key_of(seen), key_of(stored)
    if a == b:
        return Verdict(True, 100.0, "exact key", "exact")
    score = float(fuzz.ratio(a, b))
    if score < WORDING_SCORE:
        return Verdict(False, score, f"title score {score:.1f} below {WORDING_SCORE:g}")
    if numbers_of(seen) != numbers_of(stored):
        return Verdict(False, score, "numbers differ: "
                       f"{' '.join(numbers_of(seen)) or '-'} vs "
                       f"{' '.join(numbers_of(stored)) or '-'}")
    if word := word_veto(seen, stored, _NUMBER_WORDS):
        return Verdict(False, score, f"numbers differ: {word!r} in one title only")
    if word := word_veto(seen, stored, _NEGATIONS):
        return Verdict(False, score, f"{word!r} in one title only: one negates the other")
    abstracts = (abstract_similarity(seen_abstract, stored_abstract)
                 if seen_abstract and stored_abstract else None)
    if abstracts is not None and abstracts < ABSTRACT_DIFFERENT:
        return Verdict(False, score, f"abstracts differ ({abstracts:.0f})")
    veto = typo_veto(stored, seen)
    if score >= TITLE_SCORE and veto is None:
        return Verdict(True, score, f"title score {score:.1f}, misspelt")
    if abstracts is not None and abstracts >= ABSTRACT_SAME:
        return Verdict(True, score, f"title score {score:.1f}, abstracts agree "
                       f"({abstracts:.0f})")
    return Verdict(False, score, veto or f"title score {score:.1f} below {TITLE_SCORE:g}")


# -- matching a listing against candidates -------------------------------------------------

class Spelling(NamedTuple):
    """A title folded once for every use: its normalised words, exact key, the key's hash
    and blocks. (A named tuple, not a dataclass: one is made for every listing, and it is
    cheaper.)"""

    title: str
    normalised: str
    key: str
    key_hash: int
    blocks: list[int]

    @classmethod
    def of(cls, title: str) -> Spelling:
        normalised = normalise(title)
        key = normalised.replace(" ", "")
        return cls(title, normalised, key, key_hash(key), title_blocks(normalised))


def key_hash(key: str) -> int:
    """A key's CRC-32, which the store's filter of keys is keyed by: made with the rest of
    a listing's spelling, by the parsing worker where there is one."""
    return zlib.crc32(key.encode())


class Listing(NamedTuple):
    """A paper as a dump lists it, with its title folded: what matching takes."""

    paper: Paper
    spelling: Spelling

    @classmethod
    def of(cls, paper: Paper) -> Listing:
        return cls(paper, Spelling.of(paper.title))


@dataclass(frozen=True)
class Candidate:
    """A stored paper that shares a block with a listing."""

    id: int
    title: str
    abstract: str
    arxiv_id: str | None


@dataclass(frozen=True)
class Match:
    """The outcome of matching one listing: the paper it is (None: a new paper) and why,
    with the closest candidate turned down, if any, and why not."""

    paper: Candidate | None
    verdict: Verdict | None
    closest: Candidate | None = None
    closest_verdict: Verdict | None = None


def best_match(spelling: Spelling, abstract: str, arxiv_id: str | None,
               candidates: list[Candidate]) -> Match:
    """The candidate a listing is, by the highest-scoring favourable verdict; a candidate
    with another arXiv id is another paper whatever its title."""
    accepted: list[tuple[Verdict, Candidate]] = []
    rejected: list[tuple[Verdict, Candidate]] = []
    for cand in candidates:
        normalised = normalise(cand.title)
        if arxiv_id and cand.arxiv_id and arxiv_id != cand.arxiv_id:
            verdict = Verdict(False, float(fuzz.ratio(spelling.key, key_of(normalised))),
                              f"arXiv ids differ: {arxiv_id} vs {cand.arxiv_id}")
        else:
            verdict = judge(spelling.normalised, normalised, seen_abstract=abstract,
                            stored_abstract=cand.abstract)
        (accepted if verdict.same else rejected).append((verdict, cand))
    closest = max(rejected, key=lambda vc: (vc[0].score, -vc[1].id), default=(None, None))
    if accepted:
        verdict, paper = max(accepted, key=lambda vc: (vc[0].score, -vc[1].id))
        return Match(paper, verdict, closest[1], closest[0])
    return Match(None, None, closest[1], closest[0])
