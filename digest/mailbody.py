"""The email body's delivery constraints: CSS inlined for clients that drop <style>, and
the HTML part kept under Gmail's clip for an edition of any size."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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

# Renders the email HTML with snippets of so many characters (0: none) and each topic cut
# to its first `cap` papers (None: every paper).
EmailRenderer = Callable[[int, int | None], str]


@dataclass(frozen=True)
class FittedEmail:
    html: str
    # Papers per topic shown, when some topics show only their first papers and the rest
    # are one link (or the attached full digest) away; None when every paper is there.
    cap: int | None
    snippet_chars: int


def inline_css(html: str) -> str:
    return _INLINER.inline(html)


def fit_email(render: EmailRenderer, longest_topic: int,
              budget: int = HTML_BUDGET) -> FittedEmail:
    """The richest email whose inlined HTML is under `budget` bytes: full snippets, then
    shorter ones, then each topic capped at as many of its best papers as fit."""
    for chars in SNIPPET_STEPS:
        html = inline_css(render(chars, None))
        if html_size(html) <= budget:
            return FittedEmail(html, None, chars)
    for chars in CAPPED_SNIPPET_STEPS:
        fitted = _largest_fitting_cap(render, chars, longest_topic - 1, budget)
        if fitted is not None:
            return fitted
    # Topic headings alone, each with its count and link: bounded by the taxonomy's size.
    return FittedEmail(inline_css(render(0, 0)), 0, 0)


def html_size(html: str) -> int:
    """Bytes of the HTML as the wire carries it: UTF-8, every line ended by CRLF."""
    return len(html.encode("utf-8")) + html.count("\n") - html.count("\r\n")


def _largest_fitting_cap(render: EmailRenderer, chars: int, high: int,
                         budget: int) -> FittedEmail | None:
    """Binary search for the largest cap of at least one paper whose HTML fits; size grows
    with the cap, so a handful of renders find it for an edition of any size."""
    best = None
    low = 1
    while low <= high:
        middle = (low + high) // 2
        html = inline_css(render(chars, middle))
        if html_size(html) <= budget:
            best, low = FittedEmail(html, middle, chars), middle + 1
        else:
            high = middle - 1
    return best
