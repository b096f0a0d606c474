"""What fitting the email under Gmail's clip costs: for the seed edition (354 papers) and
synthetic editions of 1,000 and 5,000 papers, the inlined HTML's size and the time of
render_edition() against a baseline of one plain render of each artefact (what it did
before the budget), the email inlined but not fitted.

    python bench/mail_budget.py
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from digest.config import Config
from digest.mailbody import html_size, inline_css
from digest.model import Edition, RankedPaper, StoredPaper, TopicGroup
from digest.pipeline import run_once
from digest.render import edition_view, environment, render_edition

REPO = Path(__file__).resolve().parent.parent


def seed_edition() -> Edition:
    with tempfile.TemporaryDirectory() as state:
        report = run_once(Config(state_dir=Path(state), page_year=2024),
                          inbox=[REPO / "samples"])
    assert report.edition is not None
    return report.edition.edition


def synthetic_edition(papers: int, topics: int = 14) -> Edition:
    def paper(n: int) -> StoredPaper:
        return StoredPaper(n, f"A synthetic paper title, number {n}, on long context models",
                           "A sentence of a synthetic abstract. " * 30, ("A. Author",) * 5,
                           5, None, n % 50, None, None, (), 1, datetime(2024, 11, 12))

    per = papers // topics
    return Edition(1, datetime(2024, 11, 12), tuple(
        TopicGroup(f"Topic {t}", tuple(RankedPaper(paper(t * per + i)) for i in range(per)))
        for t in range(topics)))


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    env = environment()
    print(f"{'edition':>16} {'papers':>7} {'plain KB':>9} {'fitted KB':>10} "
          f"{'plain ms':>9} {'fitted ms':>10} {'ratio':>6}")
    for name, edition in (("seed", seed_edition()), ("synthetic 1000", synthetic_edition(1000)),
                          ("synthetic 5000", synthetic_edition(5000))):
        def plain(edition=edition) -> str:
            # What render_edition did before the budget: one render of each artefact.
            view = edition_view(edition)
            env.get_template("email.txt.j2").render(edition=view)
            env.get_template("page.html.j2").render(edition=view)
            return inline_css(env.get_template("email.html.j2").render(edition=view))

        def fitted(edition=edition) -> str:
            return render_edition(edition, archive_url="https://example.org").email_html

        plain_ms, fitted_ms = best_of(plain) * 1000, best_of(fitted) * 1000
        print(f"{name:>16} {edition.paper_count:>7} {html_size(plain()) / 1000:>9.1f} "
              f"{html_size(fitted()) / 1000:>10.1f} {plain_ms:>9.1f} {fitted_ms:>10.1f} "
              f"{fitted_ms / plain_ms:>6.1f}")


if __name__ == "__main__":
    main()
