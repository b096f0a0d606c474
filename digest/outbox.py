"""The outbox: an edition is claimed (pending, its papers taken, its Message-ID fixed)
before it is sent, sent and re-sent with that Message-ID until a server takes it, and
only then marked delivered; and the archive written around it (pages, index, feed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from digest.config import Config
from digest.deliver import new_message_id
from digest.errors import DeliveryError
from digest.feed import render_feed
from digest.model import Edition, Notice, RankedPaper, SourceDump, Sources, TopicGroup
from digest.render import RenderedEdition, long_date, render_edition, render_index, write_atomic
from digest.store import Store
from digest.topics import Classifier

# Sends an edition, or raises DeliveryError; may return warnings (recipients refused
# while the others got it).
Sender = Callable[[Edition, RenderedEdition], Sequence[str] | None]
Notifier = Callable[[Notice], None]


@dataclass(frozen=True)
class EditionReport:
    edition: Edition
    html: Path
    text: Path
    # Why the edition is still pending; None once the server has taken it (or, without
    # [email], once its files are written).
    error: DeliveryError | None = None
    warnings: tuple[str, ...] = ()


def deliver_pending(store: Store, config: Config, classifier: Classifier,
                    send: Sender | None,
                    now: Callable[[], datetime]) -> tuple[EditionReport, ...]:
    """Send the editions claimed but never delivered, oldest first, each with the
    Message-ID it was claimed with; stop at the first that fails."""
    reports: list[EditionReport] = []
    for edition_id, created in store.pending_editions():
        edition = load_edition(store, config, classifier, edition_id, created)
        reports.append(deliver_edition(store, config, edition, send, now))
        if reports[-1].error:
            break
    return tuple(reports)


def claim_edition(store: Store, config: Config, groups: tuple[TopicGroup, ...],
                  created: datetime) -> Edition:
    """Write the edition to the store as pending, claiming its papers and fixing its
    Message-ID, before any delivery."""
    placements = [(r.paper.id, g.name) for g in groups for r in g.papers]
    message_id = new_message_id(message_domain(config))
    edition_id = store.create_edition(placements, created, message_id)
    return Edition(edition_id, created, groups, edition_sources(store, config, edition_id,
                                                                created), message_id)


def load_edition(store: Store, config: Config, classifier: Classifier, edition_id: int,
                 created: datetime) -> Edition:
    """An edition rebuilt from the store as it was claimed: the same papers, topics, order,
    sources and Message-ID."""
    groups: dict[str, list[RankedPaper]] = {}
    for topic, paper in store.edition_papers(edition_id):
        _, terms = classifier.classify(paper.title, paper.abstract)
        groups.setdefault(topic, []).append(RankedPaper(paper, terms))
    # An edition claimed before the store kept Message-IDs gets one now, once.
    message_id = store.edition_message_id(edition_id,
                                          new_message_id(message_domain(config)))
    return Edition(edition_id, created,
                   tuple(TopicGroup(name, tuple(papers)) for name, papers in groups.items()),
                   edition_sources(store, config, edition_id, created), message_id)


def edition_sources(store: Store, config: Config, edition_id: int,
                    created: datetime) -> Sources:
    """The dumps recorded between the edition before this one and this one."""
    return sources_between(store, config, store.previous_edition_created(edition_id),
                           created)


def sources_between(store: Store, config: Config, after: datetime | None,
                    until: datetime) -> Sources:
    dumps = store.dumps_between(after, until)
    last = store.last_dump_arrival(until)
    stale = (until - last).days if last else None
    return Sources(
        ingested=tuple(SourceDump(Path(d.path).name) for d in dumps if d.status == "ingested"),
        failed=tuple(SourceDump(Path(d.path).name, d.error) for d in dumps
                     if d.status == "failed"),
        last_arrival=last,
        stale_days=stale if stale is not None and stale > config.stale_after_days else None)


def nothing_new_notice(store: Store, config: Config, created: datetime) -> Notice:
    """Why a run found nothing to send: no dump came, or every paper in them was sent."""
    last_edition = store.last_edition_created()
    sources = sources_between(store, config, last_edition, created)
    since = (f"since the last edition ({long_date(last_edition)})"
             if last_edition else "yet")
    arrived = len(sources.ingested)
    if arrived:
        reason = (f"{arrived} dump{'s' if arrived != 1 else ''} arrived {since}, and every "
                  "paper in them had already been sent.")
    elif sources.failed:
        reason = f"No dump went in {since}: every one that arrived failed."
    else:
        reason = f"No dump has arrived {since}."
    return Notice(created, reason, sources)


def message_domain(config: Config) -> str:
    return config.email.sender_domain if config.email else "paper-digest.localhost"


def deliver_edition(store: Store, config: Config, edition: Edition, send: Sender | None,
                    now: Callable[[], datetime]) -> EditionReport:
    """Write the edition's files, send it, and only then mark it delivered; a failure
    leaves it pending with the server's words."""
    rendered = render_edition(edition, archive_url=email_links(config))
    report = write_edition_files(config, edition, rendered)
    store.save_edition_files(edition.id, str(report.html), str(report.text))
    warnings: Sequence[str] | None = ()
    if send is not None:
        try:
            warnings = send(edition, rendered)
        except DeliveryError as exc:
            store.record_failure(edition.id, str(exc))
            write_archive(config, store, now())
            return replace(report, error=exc)
    store.mark_delivered(edition.id, now())
    write_archive(config, store, now())
    return replace(report, warnings=tuple(warnings or ()))


def write_archive(config: Config, store: Store, now: datetime) -> None:
    """The index of every edition and the Atom feed of the delivered ones."""
    editions = store.editions()
    write_atomic(config.digests_dir / "index.html", render_index(editions))
    write_atomic(config.digests_dir / "feed.xml",
                 render_feed(editions, archive_url=archive_url(config),
                             feed_key=feed_key(config), now=now))


def archive_url(config: Config) -> str | None:
    return config.email.archive_url if config.email else None


def email_links(config: Config) -> str | None:
    """Where the email's "and N more" links point: the archive_url of [email]; without
    [email] the email is a file beside the pages, so relative links reach them."""
    if config.email is None:
        return "."
    return config.email.archive_url


def feed_key(config: Config) -> str:
    """What names the feed for good: its public address, else the archive folder."""
    return archive_url(config) or config.digests_dir.resolve().as_uri()


def preview_edition(store: Store, config: Config, groups: tuple[TopicGroup, ...],
                    created: datetime) -> EditionReport:
    """A dry run's edition: rendered to preview files, claimed by nothing."""
    sources = sources_between(store, config, store.last_edition_created(), created)
    edition = Edition(0, created, groups, sources)
    rendered = render_edition(edition, archive_url=email_links(config),
                              page_name="preview.html")
    return write_edition_files(config, edition, rendered, stem="preview")


def write_edition_files(config: Config, edition: Edition, rendered: RenderedEdition,
                        stem: str | None = None) -> EditionReport:
    stem = stem or f"edition-{edition.id}"
    html = config.digests_dir / f"{stem}.html"
    text = config.digests_dir / f"{stem}.txt"
    write_atomic(config.digests_dir / f"{stem}.email.html", rendered.email_html)
    write_atomic(text, rendered.text)
    write_atomic(html, rendered.page_html)
    return EditionReport(edition, html, text)
