"""The email HTML uses only what Gmail, Apple Mail, Yahoo and Fastmail all support, by
caniemail.com's data (tests/data/caniemail.json; tests/data/caniemail_subset.py renews it).
Anything less supported must be a named enhancement that degrades gracefully."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from conftest import DATA
from test_render import small_edition

from digest.render import render_edition

SUPPORT = json.loads((DATA / "caniemail.json").read_text(encoding="utf-8"))["features"]

# Used on purpose though some of the four clients lack it, and what a reader sees there.
ENHANCEMENTS = {
    "css-at-media-prefers-color-scheme": "clients without it show the light design",
    "html-meta-color-scheme": "a hint only; clients without it keep their own dark handling",
    "html-anchor-links": "the contents list still gives each topic's count, topics are headed",
    "html-style": "delivery inlines the styles; the frame's widths and colours are attributes",
    "html-body": "the outer table, not <body>, carries the background",
    "css-opacity": "one of the hidden preheader's several hiding rules; the others hold",
}
# Properties caniemail has no entry for: every client has always supported the first two;
# mso-hide is Outlook's own, which the others ignore.
UNIVERSAL = {"color", "font-family", "mso-hide"}
# caniemail files a few longhands under their shorthand.
ALIASES = {"border-bottom": "css-border", "border-top": "css-border",
           "border-color": "css-border", "padding-left": "css-padding",
           "padding-right": "css-padding"}
TAGS = {"h1": "html-h1-h6", "h2": "html-h1-h6", "p": "html-p", "table": "html-table",
        "span": "html-span", "style": "html-style", "body": "html-body"}
ATTRIBUTES = {"cellpadding": "html-cellpadding", "cellspacing": "html-cellspacing",
              "width": "html-width", "align": "html-align", "role": "html-role",
              "lang": "html-lang"}


class _Features(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.used: set[str] = set()
        self.css: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.used |= {TAGS[tag]} if tag in TAGS else set()
        self.used |= {ATTRIBUTES[a] for a, _ in attrs if a in ATTRIBUTES}
        for name, value in attrs:
            if name == "style" and value:
                self.css.append(value)
            if name == "href" and value and value.startswith("#"):
                self.used.add("html-anchor-links")
            if name == "name" and tag == "meta" and value == "color-scheme":
                self.used.add("html-meta-color-scheme")
        self._in_style = tag == "style"

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.css.append(data)
            self._in_style = False


def features_used(html: str) -> set[str]:
    parser = _Features()
    parser.feed(html)
    css = "\n".join(parser.css)
    used = set(parser.used)
    if "prefers-color-scheme" in css:
        used.add("css-at-media-prefers-color-scheme")
    for prop in re.findall(r"(?<![\w-])([a-z-]+)\s*:(?!:)", re.sub(r"@media[^{]*", "", css)):
        if prop not in UNIVERSAL:
            used.add(ALIASES.get(prop, f"css-{prop}"))
    return used


def unsupported(slug: str) -> list[str]:
    return [f"{client} {platform}" for client, platforms in SUPPORT[slug].items()
            for platform, status in platforms.items() if status == "n"]


def test_the_email_uses_only_what_the_four_clients_support(seeds: list[Path]) -> None:
    used = features_used(render_edition(small_edition(seeds)).email_html)
    print(f"\nemail features checked against caniemail: {sorted(used)}")
    assert {"css-padding", "html-table", "css-max-width"} <= used
    unknown = sorted(slug for slug in used if slug not in SUPPORT)
    assert not unknown, f"not in caniemail's data (map them in this test): {unknown}"
    lacking = {slug: unsupported(slug) for slug in sorted(used - set(ENHANCEMENTS))}
    assert not {k: v for k, v in lacking.items() if v}


def test_each_enhancement_is_really_short_of_support() -> None:
    # An entry here that every client supports is stale and should go.
    assert all(unsupported(slug) for slug in ENHANCEMENTS)
