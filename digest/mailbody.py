"""The email body's delivery constraints: CSS inlined for clients that drop <style>, and
the HTML part kept under Gmail's clip for an edition of any size."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import css_inline

# Gmail clips a message body over about 102 KB and hides the rest behind a link; stay
# clear of it with room for the headers of the part.
HTML_BUDGET = 100_000
# Snippet lengths tried, longest first, before any paper is left out of the message; then,
# with each topic capped, the short snippet and none at all.
SNIPPET_STEPS = (300, 160)
CAPPED_SNIPPET_STEPS = (160, 0)

# Media queries (dark mode, phones) cannot be inlined: keep_at_rules leaves them in a
# <style> block for the clients that read one. Nothing is ever fetched over the network.
_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)

@dataclass(frozen=True)
class EmailShape:
    """How much of the edition the email shows."""

    snippet_chars: int  # 0: no snippets
    cap: int | None = None  # papers shown per topic; None: every paper
    topics: int | None = None  # topics shown; None: every topic


EmailRenderer = Callable[[EmailShape], str]


@dataclass(frozen=True)
class FittedEmail:
    html: str
    shape: EmailShape

    @property
    def complete(self) -> bool:
        """Every paper is in the email; else the rest are one link (or the attached full
        digest) away."""
        return self.shape.cap is None and self.shape.topics is None


def inline_css(html: str) -> str:
    return _INLINER.inline(html)


def fit_email(render: EmailRenderer, longest_topic: int, topic_count: int,
              budget: int = HTML_BUDGET) -> FittedEmail:
    """The richest email whose inlined HTML is under `budget` bytes: full snippets, then
    shorter ones, then each topic capped at as many of its best papers as fit, and at
    last, for a taxonomy of hundreds of topics, as many topic headings as fit."""
    for chars in SNIPPET_STEPS:
        html = inline_css(render(EmailShape(chars)))
        if html_size(html) <= budget:
            return FittedEmail(html, EmailShape(chars))
    for chars in CAPPED_SNIPPET_STEPS:
        fitted = _largest_fitting(render, partial(_capped, chars), 1, longest_topic - 1,
                                  budget)
        if fitted is not None:
            return fitted
    fitted = _largest_fitting(render, lambda n: EmailShape(0, 0, n), 1, topic_count, budget)
    # With no topic shown the email is its heading, one line and its sources: it fits.
    return fitted or FittedEmail(inline_css(render(EmailShape(0, 0, 0))), EmailShape(0, 0, 0))


def _capped(snippet_chars: int, cap: int) -> EmailShape:
    return EmailShape(snippet_chars, cap)


def html_size(html: str) -> int:
    """Bytes of the HTML as the wire carries it: UTF-8, every line ended by CRLF."""
    return len(html.encode("utf-8")) + html.count("\n") - html.count("\r\n")


def _largest_fitting(render: EmailRenderer, shape: Callable[[int], EmailShape], low: int,
                     high: int, budget: int) -> FittedEmail | None:
    """Binary search for the largest n in [low, high] whose shape fits; size grows with
    n, so a handful of renders find it for an edition of any size."""
    best = None
    while low <= high:
        middle = (low + high) // 2
        html = inline_css(render(shape(middle)))
        if html_size(html) <= budget:
            best, low = FittedEmail(html, shape(middle)), middle + 1
        else:
            high = middle - 1
    return best
