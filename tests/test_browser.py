"""The archive page and the email HTML in a real browser (headless Chromium over the
DevTools protocol, driven by Playwright): nothing scrolls sideways at 375 px, every
table-of-contents link lands on its topic, in light and dark mode. Screenshots are saved
in the test's tmp_path for a person to look at."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from digest.config import Config
from digest.pipeline import run_once

# DIGEST_TEST_CHROMIUM names another chromium binary (or a missing one, to see the skip).
CHROMIUM = (os.environ.get("DIGEST_TEST_CHROMIUM") or shutil.which("chromium")
            or "/usr/bin/chromium")
# Playwright's own browser downloads are never used: Debian's chromium, quiet and offline.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
WIDTHS = (375, 1280)
SCHEMES = ("light", "dark")


def _browser_or_skip() -> str:
    if Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    _absent(f"no chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)")
    raise AssertionError("unreachable")


def _absent(reason: str) -> None:
    """Skip outside CI; in CI (CI=true) the browser test must run, so fail."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the browser test: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The seed edition, rendered by a real dry run and served on 127.0.0.1."""
    root = tmp_path_factory.mktemp("browser")
    config = Config(state_dir=root / "state", inbox=Path(__file__).parent.parent / "samples",
                    page_year=2024, interests=("speculative decoding", "unlearning"))
    run_once(config, now=lambda: datetime(2024, 3, 12, 7, 0), dry_run=True)
    handler = functools.partial(_QuietHandler, directory=str(config.digests_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = _browser_or_skip()
    try:
        from playwright import sync_api
    except ImportError:
        _absent("playwright is not installed (pip install '.[test]')")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS,
                                              headless=True)
        yield launched
        launched.close()


# Where a link should bring its heading: the top of the viewport, unless the page ends
# first (the last topics), in which case the browser scrolls as far as it can.
_LANDING = """
(id) => {
  const h = document.getElementById(id);
  const r = h.getBoundingClientRect();
  const max = document.scrollingElement.scrollHeight - innerHeight;
  const want = Math.min(r.top + scrollY, max);
  const visible = r.top >= -2 && r.bottom <= innerHeight + 2;
  return {top: r.top, scrollY: scrollY, want: want, visible: visible};
}
"""


@pytest.mark.parametrize("document", ["preview.html", "preview.email.html"])
def test_pages_fit_and_every_toc_link_lands(browser: object, served: str, document: str,
                                           tmp_path: Path) -> None:
    for scheme in SCHEMES:
        for width in WIDTHS:
            context = browser.new_context(  # type: ignore[attr-defined]
                viewport={"width": width, "height": 800}, color_scheme=scheme)
            page = context.new_page()
            page.goto(f"{served}/{document}")
            stem = f"{document.split('.')[1]}-{width}-{scheme}"
            page.screenshot(path=tmp_path / f"{stem}-top.png")
            overflow = page.evaluate(
                "[document.scrollingElement.scrollWidth, innerWidth]")
            assert overflow[0] <= overflow[1], f"{stem}: scrolls sideways {overflow}"
            if document.endswith(".email.html"):
                sheet = page.evaluate("document.querySelector('.sheet').offsetWidth")
                assert sheet <= min(600, width), f"{stem}: the email is {sheet} px wide"
            links = page.locator("nav a[href^='#'], .toc a[href^='#']")
            anchors = [links.nth(i).get_attribute("href")[1:] for i in range(links.count())]
            assert len(anchors) >= 10, f"{stem}: the contents list only {len(anchors)} topics"
            for n, anchor in enumerate(anchors):
                page.evaluate("window.scrollTo(0, 0)")
                page.locator(f"a[href='#{anchor}']").first.click()
                page.wait_for_function(f"location.hash === '#{anchor}'", timeout=2000)
                landed = page.evaluate(_LANDING, anchor)
                assert landed["visible"], f"{stem}: #{anchor} not in view: {landed}"
                assert abs(landed["scrollY"] - landed["want"]) <= 2, f"{stem}: #{anchor} {landed}"
                if n == 1:
                    page.screenshot(path=tmp_path / f"{stem}-topic.png")
            if document == "preview.html":
                _check_full_abstract(page, tmp_path / f"{stem}-abstract.png")
            context.close()
    print(f"\nscreenshots of {document}: {tmp_path}")


def _check_full_abstract(page: object, shot: Path) -> None:
    """A cut abstract opens in full in place, and the snippet gives way to it."""
    details = page.locator("article details").first  # type: ignore[attr-defined]
    abstract = details.locator(".abstract")
    assert not abstract.is_visible()
    details.locator("summary").click()
    assert abstract.is_visible() and not details.locator(".snip").is_visible()
    assert len(abstract.inner_text()) > len(details.locator(".snip").inner_text())
    details.scroll_into_view_if_needed()
    page.screenshot(path=shot)  # type: ignore[attr-defined]
