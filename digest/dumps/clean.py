"""Text cleaning shared by the parsers: what a reader sees, with no line breaks, no control
characters, and none of the LaTeX or scraping remnants that real dumps carry."""

from __future__ import annotations

import re
import unicodedata

# Control characters that str.split() does not already treat as whitespace.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]+")

_ESCAPED = re.compile(r"\\([%$&#_{}])")
_FORMATTING = re.compile(
    r"\\(?:textit|textbf|textsc|textsf|texttt|textrm|textup|emph|mathrm|mathbf|mathit|mathsf"
    r"|mathtt|mathcal|mathbb|mathfrak|boldsymbol|bm|text|mbox|underline|operatorname)"
    r"\s*\{([^{}]*)\}")
# A scraper that drops backslashes leaves `boldsymbolπ`: the command glued to a symbol.
_BARE_COMMAND = re.compile(r"(?<![A-Za-z])(?:boldsymbol|mathbf|mathrm|mathcal)(?=[^\x00-\x7f])")
_ACCENT = re.compile(r"""\{?\\(["'`^~=.])\{?([A-Za-z])\}?\}?""")
_ACCENTS = {'"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303",
            "=": "\u0304", ".": "\u0307"}
_SYMBOLS = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε",
    "zeta": "ζ", "eta": "η", "theta": "θ", "iota": "ι", "kappa": "κ", "lambda": "λ",
    "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ",
    "upsilon": "υ", "phi": "φ", "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
    "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π",
    "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω", "times": "×", "cdot": "·",
    "approx": "≈", "sim": "~", "leq": "≤", "le": "≤", "geq": "≥", "ge": "≥", "neq": "≠",
    "pm": "±", "to": "→", "rightarrow": "→", "leftarrow": "←", "infty": "∞", "ell": "ℓ",
    "partial": "∂", "nabla": "∇", "in": "∈", "ldots": "…", "dots": "…", "cdots": "⋯",
    "circ": "°", "prime": "′", "log": " log ", "exp": " exp ", "sqrt": "√",
}
_SYMBOL = re.compile(r"\\(" + "|".join(sorted(_SYMBOLS, key=len, reverse=True))
                     + r")(?![A-Za-z])")
_SCRIPT = re.compile(r"([_^])\{?([0-9+\-=()n]+)\}?")
_SUBSCRIPTS = str.maketrans("0123456789+-=()n", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₙ")
_SUPERSCRIPTS = str.maketrans("0123456789+-=()n", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿ")
_MATH = re.compile(r"\$([^$]{1,200})\$")
_FRACTION = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_MATH_SPACING = re.compile(r"\\[,;:! ]|~")
_COMMAND_WITH_ARGUMENT = re.compile(r"\\[A-Za-z]+\s*\{([^{}]*)\}")
# A literal dollar sign while math is being unwrapped: a private-use character no dump has.
_DOLLAR = "\ue024"
_QUOTES = (("``", "“"), ("''", "”"))

_SPACE_BEFORE = re.compile(r"\s+(?=[,;!?)\]])|\s+(?=[.:](?:\s|$))")
_SPACE_AFTER = re.compile(r"(?<=[(\[])\s+")

_PLACEHOLDER_TITLE = re.compile(r"^(?:example|sample|placeholder|dummy|test) paper\b", re.I)
_PLACEHOLDER_AUTHORS = {"Alice Smith", "Bob Johnson", "Carol Williams", "John Doe", "Jane Doe"}


def one_line(text: str) -> str:
    """Every run of whitespace, line breaks and control characters becomes one space.

    A title never reaches a mail header raw, but a text field with no CR/LF could not
    inject a header even if it did.
    """
    # str.split() covers CR, LF and the Unicode line breaks, and is the fast path.
    line = " ".join(text.split())
    if line.isprintable():
        return line
    return " ".join(_CONTROLS.sub(" ", line).split())


def plain_latex(text: str) -> str:
    """The LaTeX remnants of titles and abstracts as a reader would see them typeset:
    `100\\%` is `100%`, `\\textit{x}` is `x`, `LLM$\\times$MapReduce` is `LLM×MapReduce`,
    `TiSe$_{2}$` is `TiSe₂`. Unknown commands are left as they are."""
    if "\\" not in text and "$" not in text and "`" not in text:
        return text
    text = text.replace("\\$", _DOLLAR)
    text = _ESCAPED.sub(r"\1", text)
    for _ in range(2):  # one level of nesting: \textit{\textbf{x}}
        text = _FORMATTING.sub(r"\1", text)
    text = _BARE_COMMAND.sub("", text)
    text = _ACCENT.sub(lambda m: unicodedata.normalize("NFC", m[2] + _ACCENTS[m[1]]), text)
    text = _SYMBOL.sub(lambda m: _SYMBOLS[m[1]], text)
    text = _MATH.sub(_unwrap_math, text)
    for latex, typeset in _QUOTES:
        text = text.replace(latex, typeset)
    return " ".join(text.replace(_DOLLAR, "$").split())


def _unwrap_math(m: re.Match[str]) -> str:
    inner = _FRACTION.sub(r"\1/\2", m[1])
    inner = _MATH_SPACING.sub(" ", inner)
    inner = _COMMAND_WITH_ARGUMENT.sub(r"\1", inner)  # \hat{x} reads as x
    inner = _SCRIPT.sub(lambda s: s[2].translate(
        _SUBSCRIPTS if s[1] == "_" else _SUPERSCRIPTS), inner)
    return inner.replace("{", "").replace("}", "").strip()


def tidy_punctuation(text: str) -> str:
    """Drop the spaces a page scraper puts before punctuation and inside brackets:
    `context loss , which` is `context loss, which`, `( RIVER )` is `(RIVER)`."""
    return _SPACE_AFTER.sub("", _SPACE_BEFORE.sub("", text))


def clean_text(text: str, *, scraped: bool = False) -> str:
    """A title or abstract from a JSON dump, cleaned for the reader."""
    text = plain_latex(one_line(text))
    return tidy_punctuation(text) if scraped else text


def clean_author(name: str) -> str:
    """An author's name without the trailing commas a scraper leaves (`Zhanhui Zhou,`)."""
    return plain_latex(one_line(name)).strip(" ,;")


def is_placeholder(title: str, authors: tuple[str, ...]) -> bool:
    """The fake paper that site templates ship ("Example Paper: ...", Alice Smith, ...)."""
    return bool(_PLACEHOLDER_TITLE.match(title)) or (
        len(authors) >= 2 and set(authors) <= _PLACEHOLDER_AUTHORS)
