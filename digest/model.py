"""The data that flows between the stages: plain frozen dataclasses, nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class Paper:
    """One listing of a paper as a dump gives it; fields a format lacks stay empty."""

    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    authors_count: int | None = None
    published: date | None = None
    upvotes: int | None = None
    arxiv_id: str | None = None
    url: str | None = None
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skipped:
    """A record of a dump that did not become a paper: where it is, and why."""

    where: str  # "line 12", "entry 3"
    reason: str
    # False for a record left out on purpose (a placeholder), True for a broken one.
    bad: bool = True


@dataclass(frozen=True)
class ParsedDump:
    """What a parser made of one file: its format, its papers in page order, and warnings."""

    format: str
    papers: tuple[Paper, ...]
    warnings: tuple[str, ...] = ()
    page_date: date | None = None


@dataclass(frozen=True)
class DumpResult:
    """The outcome of ingesting one dump file."""

    path: str
    status: str  # "ingested" | "skipped" | "failed"
    format: str | None = None
    papers: int = 0
    new: int = 0
    error: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class StoredPaper:
    """A paper as the store knows it: merged over every sighting."""

    id: int
    title: str
    abstract: str
    authors: tuple[str, ...]
    authors_count: int | None
    published: date | None
    upvotes: int | None
    arxiv_id: str | None
    url: str | None
    categories: tuple[str, ...]
    dumps: int
    first_seen: datetime


@dataclass(frozen=True)
class RankedPaper:
    """A paper placed in its topic, with the terms that put it there."""

    paper: StoredPaper
    terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class TopicGroup:
    name: str
    papers: tuple[RankedPaper, ...]


@dataclass(frozen=True)
class EditionRecord:
    """An edition as the outbox holds it: what the index page and the feed list."""

    id: int
    created: str
    status: str  # "pending" | "delivered"
    delivered_at: str | None
    html: str | None
    text: str | None
    papers: int
    message_id: str | None
    last_error: str | None
    attempts: int


@dataclass(frozen=True)
class SourceDump:
    name: str
    error: str | None = None


@dataclass(frozen=True)
class Sources:
    """What an edition was built from: the dumps recorded since the edition before it."""

    ingested: tuple[SourceDump, ...] = ()
    failed: tuple[SourceDump, ...] = ()
    # When the newest dump arrived; and, when that is longer ago than the configured
    # limit, how many whole days ago.
    last_arrival: datetime | None = None
    stale_days: int | None = None


@dataclass(frozen=True)
class Notice:
    """What a run with nothing new tells the reader, for `empty = "notice"`."""

    created: datetime
    reason: str
    sources: Sources


@dataclass(frozen=True)
class Edition:
    """One digest: the papers nobody has been sent yet, grouped by topic."""

    id: int
    created: datetime
    groups: tuple[TopicGroup, ...]
    sources: Sources = field(default_factory=Sources)
    # Fixed when the edition is claimed: a re-send is the same message to every client.
    message_id: str | None = None

    @property
    def paper_count(self) -> int:
        return sum(len(g.papers) for g in self.groups)
