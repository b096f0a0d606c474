"""The Atom feed (RFC 4287) of delivered editions: state/digests/feed.xml."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from digest.model import EditionRecord
from digest.render import environment, long_date


@dataclass(frozen=True)
class FeedEntry:
    id: str
    title: str
    link: str
    updated: str
    published: str
    summary: str


@dataclass(frozen=True)
class FeedView:
    id: str
    updated: str
    self_link: str
    home_link: str
    entries: tuple[FeedEntry, ...]


FEED_ENTRIES = 50


def render_feed(editions: Sequence[EditionRecord], *, archive_url: str | None, feed_key: str,
                now: datetime) -> str:
    """The Atom feed (RFC 4287) of the delivered editions, newest first. Ids are UUIDs
    derived from feed_key, so they never change; links are relative to the feed unless
    archive_url says where it is served."""
    base = f"{archive_url}/" if archive_url else ""
    delivered = [e for e in editions if e.status == "delivered" and e.delivered_at]
    entries = tuple(
        FeedEntry(id=_urn(f"{feed_key}/edition-{e.id}"),
                  title=f"Paper digest #{e.id}, {long_date(datetime.fromisoformat(e.created))}",
                  link=f"{base}edition-{e.id}.html",
                  updated=_rfc3339(datetime.fromisoformat(str(e.delivered_at))),
                  published=_rfc3339(datetime.fromisoformat(e.created)),
                  summary=f"{e.papers} new paper{'s' if e.papers != 1 else ''}")
        for e in delivered[:FEED_ENTRIES])
    feed = FeedView(id=_urn(feed_key),
                    updated=max((e.updated for e in entries), default=_rfc3339(now)),
                    self_link=f"{base}feed.xml", home_link=f"{base}index.html",
                    entries=entries)
    return environment().get_template("feed.xml.j2").render(feed=feed)


def _urn(key: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, key)}"


def _rfc3339(moment: datetime) -> str:
    # Stored times are local and naive; Atom wants the offset spelled out.
    return moment.astimezone().isoformat(timespec="seconds")
