"""The SQLite store: the only module that speaks SQL. Schema, migrations, and every read
and write of dumps, papers, sightings and editions."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import sqlite_utils

from digest.identity import title_key
from digest.model import EditionRecord, Paper, StoredPaper

SCHEMA_VERSION = 3

# One list of statements per schema version; a store at version N runs the lists after N.
# Never edit a released entry: add a new one.
_MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE dumps (
            id INTEGER PRIMARY KEY,
            sha256 TEXT NOT NULL UNIQUE,
            path TEXT NOT NULL,
            format TEXT,
            status TEXT NOT NULL,
            papers INTEGER NOT NULL DEFAULT 0,
            new INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            seen_at TEXT NOT NULL)""",
        """CREATE TABLE papers (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,
            title TEXT NOT NULL,
            abstract TEXT NOT NULL DEFAULT '',
            authors TEXT NOT NULL DEFAULT '[]',
            authors_count INTEGER,
            published TEXT,
            upvotes INTEGER,
            arxiv_id TEXT UNIQUE,
            url TEXT,
            categories TEXT NOT NULL DEFAULT '[]',
            first_seen TEXT NOT NULL)""",
        """CREATE TABLE sightings (
            paper_id INTEGER NOT NULL REFERENCES papers(id),
            dump_id INTEGER NOT NULL REFERENCES dumps(id),
            rank INTEGER NOT NULL,
            upvotes INTEGER,
            title TEXT NOT NULL,
            PRIMARY KEY (paper_id, dump_id))""",
        """CREATE TABLE editions (
            id INTEGER PRIMARY KEY,
            created TEXT NOT NULL,
            status TEXT NOT NULL,
            delivered_at TEXT,
            html_path TEXT,
            text_path TEXT)""",
        # paper_id is UNIQUE: a paper is claimed by one edition, never two.
        """CREATE TABLE edition_papers (
            edition_id INTEGER NOT NULL REFERENCES editions(id),
            paper_id INTEGER NOT NULL UNIQUE REFERENCES papers(id),
            topic TEXT NOT NULL,
            position INTEGER NOT NULL)""",
        "CREATE INDEX edition_papers_edition ON edition_papers(edition_id)",
        "CREATE INDEX sightings_dump ON sightings(dump_id)",
    ],
    # 2: the outbox. An edition keeps the Message-ID it is sent with, so a re-send after a
    # failure (or a crash) is the same message to every client; and why it is still pending.
    [
        "ALTER TABLE editions ADD COLUMN message_id TEXT",
        "ALTER TABLE editions ADD COLUMN last_error TEXT",
        "ALTER TABLE editions ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
        "CREATE UNIQUE INDEX editions_message_id ON editions(message_id)",
        "CREATE INDEX dumps_seen_at ON dumps(seen_at)",
    ],
    # 3: the daemon's schedule.
    [
        # One row per scheduled slot the daemon ran, keyed by its wall-clock time in the
        # schedule's zone: the claim that makes a fall-back night's second 01:30 a no-op.
        """CREATE TABLE schedule_slots (
            slot TEXT PRIMARY KEY,
            fire_time TEXT NOT NULL,
            claimed_at TEXT NOT NULL)""",
        # When the daemon first watched this store: slots after it count as missed.
        """CREATE TABLE daemon_state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL)""",
    ],
]


@dataclass(frozen=True)
class IngestCounts:
    papers: int
    new: int


@dataclass(frozen=True)
class DumpRecord:
    """A dump as the store recorded it: what an edition's sources line tells."""

    path: str
    status: str  # "ingested" | "failed"
    papers: int
    new: int
    error: str | None
    seen_at: datetime


@dataclass(frozen=True)
class Status:
    papers: int
    undelivered: int
    dumps: int
    failed_dumps: int
    editions: int
    pending_editions: int
    # Why the oldest pending edition has not gone out yet.
    pending_error: str | None = None


class Store:
    """A digest store on one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite_utils.Database(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA busy_timeout=30000")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def close(self) -> None:
        self.db.close()

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        with self.db.atomic():
            version = self.schema_version
            if version > SCHEMA_VERSION:
                from digest.errors import DigestError

                raise DigestError(f"{self.path}: store schema {version} is newer than this "
                                  f"digest ({SCHEMA_VERSION}); upgrade paper-digest")
            for statements in _MIGRATIONS[version:]:
                for sql in statements:
                    self.db.execute(sql)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- dumps ---------------------------------------------------------------------------

    def dump_ingested(self, sha256: str) -> bool:
        row = self.db.execute("SELECT 1 FROM dumps WHERE sha256 = ? AND status = 'ingested'",
                              [sha256]).fetchone()
        return row is not None

    def record_failed_dump(self, sha256: str, path: str, error: str, now: datetime) -> None:
        with self.db.atomic():
            self.db.execute(
                """INSERT INTO dumps (sha256, path, status, error, seen_at)
                   VALUES (?, ?, 'failed', ?, ?)
                   ON CONFLICT(sha256) DO UPDATE SET path = excluded.path,
                       error = excluded.error, seen_at = excluded.seen_at""",
                [sha256, path, error, now.isoformat()])

    def ingest_dump(self, sha256: str, path: str, fmt: str, papers: Iterable[Paper],
                    now: datetime) -> IngestCounts:
        """Save a parsed dump in one transaction: all of its papers and sightings, or none."""
        with self.db.atomic():
            self.db.execute("DELETE FROM dumps WHERE sha256 = ? AND status = 'failed'", [sha256])
            dump_id = self.db.execute(
                "INSERT INTO dumps (sha256, path, format, status, seen_at) "
                "VALUES (?, ?, ?, 'ingested', ?)", [sha256, path, fmt, now.isoformat()]).lastrowid
            total = new = 0
            for rank, paper in enumerate(papers, 1):
                total += 1
                paper_id, created = self._save_paper(paper, now)
                new += created
                self.db.execute(
                    "INSERT OR IGNORE INTO sightings (paper_id, dump_id, rank, upvotes, title) "
                    "VALUES (?, ?, ?, ?, ?)", [paper_id, dump_id, rank, paper.upvotes, paper.title])
            self.db.execute("UPDATE dumps SET papers = ?, new = ? WHERE id = ?",
                            [total, new, dump_id])
        return IngestCounts(total, new)

    def _find_paper(self, paper: Paper) -> int | None:
        if paper.arxiv_id:
            row = self.db.execute("SELECT id FROM papers WHERE arxiv_id = ?",
                                  [paper.arxiv_id]).fetchone()
            if row:
                return int(row[0])
        row = self.db.execute("SELECT id FROM papers WHERE key = ?",
                              [title_key(paper.title)]).fetchone()
        return int(row[0]) if row else None

    def _save_paper(self, paper: Paper, now: datetime) -> tuple[int, bool]:
        """Insert a new paper, or merge a sighting into the one it is; True when new."""
        paper_id = self._find_paper(paper)
        if paper_id is None:
            cursor = self.db.execute(
                """INSERT INTO papers (key, title, abstract, authors, authors_count, published,
                       upvotes, arxiv_id, url, categories, first_seen)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [title_key(paper.title), paper.title, paper.abstract, json.dumps(paper.authors),
                 paper.authors_count, _iso(paper.published), paper.upvotes, paper.arxiv_id,
                 paper.url, json.dumps(paper.categories), now.isoformat()])
            return _rowid(cursor), True
        # What one source lacks another may give: fill gaps, keep the highest upvotes.
        self.db.execute(
            """UPDATE papers SET
                   abstract = CASE WHEN abstract = '' THEN ? ELSE abstract END,
                   authors = CASE WHEN authors = '[]' THEN ? ELSE authors END,
                   authors_count = COALESCE(authors_count, ?),
                   published = COALESCE(published, ?),
                   upvotes = MAX(COALESCE(upvotes, ?), COALESCE(?, upvotes)),
                   arxiv_id = COALESCE(arxiv_id, ?),
                   url = COALESCE(url, ?),
                   categories = CASE WHEN categories = '[]' THEN ? ELSE categories END
               WHERE id = ?""",
            [paper.abstract, json.dumps(paper.authors), paper.authors_count,
             _iso(paper.published), paper.upvotes, paper.upvotes, paper.arxiv_id, paper.url,
             json.dumps(paper.categories), paper_id])
        return paper_id, False

    # -- papers --------------------------------------------------------------------------

    def undelivered(self) -> list[StoredPaper]:
        """Every paper that no edition holds yet."""
        return list(self._papers(
            "WHERE p.id NOT IN (SELECT paper_id FROM edition_papers)"))

    def edition_papers(self, edition_id: int) -> list[tuple[str, StoredPaper]]:
        """The papers of an edition with their topics, in the edition's order."""
        rows = self.db.execute(
            "SELECT paper_id, topic FROM edition_papers WHERE edition_id = ? ORDER BY position",
            [edition_id]).fetchall()
        by_id = {p.id: p for p in self._papers(
            "WHERE p.id IN (SELECT paper_id FROM edition_papers WHERE edition_id = ?)",
            [edition_id])}
        return [(topic, by_id[pid]) for pid, topic in rows]

    def _papers(self, where: str, params: list[object] | None = None) -> Iterator[StoredPaper]:
        sql = f"""SELECT p.id, p.title, p.abstract, p.authors, p.authors_count, p.published,
                         p.upvotes, p.arxiv_id, p.url, p.categories, p.first_seen,
                         (SELECT COUNT(*) FROM sightings s WHERE s.paper_id = p.id)
                  FROM papers p {where} ORDER BY p.id"""
        for row in self.db.execute(sql, params or []):
            yield StoredPaper(
                id=row[0], title=row[1], abstract=row[2], authors=tuple(json.loads(row[3])),
                authors_count=row[4], published=date.fromisoformat(row[5]) if row[5] else None,
                upvotes=row[6], arxiv_id=row[7], url=row[8],
                categories=tuple(json.loads(row[9])), first_seen=datetime.fromisoformat(row[10]),
                dumps=row[11])

    def dumps_between(self, after: datetime | None, until: datetime) -> list[DumpRecord]:
        """Dumps recorded after one moment, up to and including another, oldest first."""
        rows = self.db.execute(
            "SELECT path, status, papers, new, error, seen_at FROM dumps "
            "WHERE seen_at > ? AND seen_at <= ? ORDER BY seen_at, id",
            [after.isoformat() if after else "", until.isoformat()]).fetchall()
        return [DumpRecord(r[0], r[1], r[2], r[3], r[4], datetime.fromisoformat(r[5]))
                for r in rows]

    def last_dump_arrival(self, until: datetime) -> datetime | None:
        """When the newest dump that went in had arrived, as of `until`."""
        row = self.db.execute("SELECT MAX(seen_at) FROM dumps WHERE status = 'ingested' "
                              "AND seen_at <= ?", [until.isoformat()]).fetchone()
        return datetime.fromisoformat(row[0]) if row[0] else None

    # -- editions ------------------------------------------------------------------------

    def create_edition(self, placements: list[tuple[int, str]], now: datetime,
                       message_id: str | None = None) -> int:
        """Write a pending edition that claims its papers, given as (paper id, topic)."""
        with self.db.atomic():
            edition_id = _rowid(self.db.execute(
                "INSERT INTO editions (created, status, message_id) VALUES (?, 'pending', ?)",
                [now.isoformat(), message_id]))
            self.db.conn.executemany(
                "INSERT INTO edition_papers (edition_id, paper_id, topic, position) "
                "VALUES (?, ?, ?, ?)",
                [(edition_id, pid, topic, pos) for pos, (pid, topic) in enumerate(placements)])
        return edition_id

    def pending_editions(self) -> list[tuple[int, datetime]]:
        """Editions written but not delivered, oldest first."""
        rows = self.db.execute(
            "SELECT id, created FROM editions WHERE status = 'pending' ORDER BY id").fetchall()
        return [(int(r[0]), datetime.fromisoformat(r[1])) for r in rows]

    def edition(self, edition_id: int) -> EditionRecord | None:
        records = self._edition_records("WHERE e.id = ?", [edition_id])
        return records[0] if records else None

    def previous_edition_created(self, edition_id: int) -> datetime | None:
        """When the edition before this one was claimed: where its sources begin."""
        row = self.db.execute("SELECT MAX(created) FROM editions WHERE id < ?",
                              [edition_id]).fetchone()
        return datetime.fromisoformat(row[0]) if row[0] else None

    def last_edition_created(self) -> datetime | None:
        row = self.db.execute("SELECT MAX(created) FROM editions").fetchone()
        return datetime.fromisoformat(row[0]) if row[0] else None

    def edition_message_id(self, edition_id: int, new: str) -> str:
        """The edition's Message-ID; one from before the outbox kept them gets `new`."""
        with self.db.atomic():
            self.db.execute("UPDATE editions SET message_id = ? WHERE id = ? "
                            "AND message_id IS NULL", [new, edition_id])
            row = self.db.execute("SELECT message_id FROM editions WHERE id = ?",
                                  [edition_id]).fetchone()
        return str(row[0])

    def record_failure(self, edition_id: int, error: str) -> None:
        """Leave an edition pending, with why its last attempt failed."""
        with self.db.atomic():
            self.db.execute("UPDATE editions SET last_error = ?, attempts = attempts + 1 "
                            "WHERE id = ?", [error, edition_id])

    def save_edition_files(self, edition_id: int, html_path: str, text_path: str) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE editions SET html_path = ?, text_path = ? WHERE id = ?",
                            [html_path, text_path, edition_id])

    def mark_delivered(self, edition_id: int, now: datetime) -> None:
        with self.db.atomic():
            self.db.execute("UPDATE editions SET status = 'delivered', delivered_at = ?, "
                            "last_error = NULL, attempts = attempts + 1 WHERE id = ?",
                            [now.isoformat(), edition_id])

    def editions(self) -> list[EditionRecord]:
        """Every edition, newest first, with its paper count: what the index page lists."""
        return self._edition_records("", [])

    def _edition_records(self, where: str, params: list[object]) -> list[EditionRecord]:
        rows = self.db.execute(
            f"""SELECT e.id, e.created, e.status, e.delivered_at, e.html_path, e.text_path,
                      (SELECT COUNT(*) FROM edition_papers ep WHERE ep.edition_id = e.id),
                      e.message_id, e.last_error, e.attempts
               FROM editions e {where} ORDER BY e.id DESC""", params).fetchall()
        return [EditionRecord(*row) for row in rows]

    # -- schedule ------------------------------------------------------------------------

    def claim_slot(self, slot: str, fire_time: datetime, now: datetime) -> bool:
        """Claim a scheduled slot for one run; False when some run already claimed it."""
        with self.db.atomic():
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO schedule_slots (slot, fire_time, claimed_at) "
                "VALUES (?, ?, ?)", [slot, _utc(fire_time), _utc(now)])
        return cursor.rowcount == 1

    def schedule_covered_until(self, now: datetime) -> datetime:
        """The time up to which every slot was run or came before the daemon first watched
        this store; the first call on a store with no slots starts that watch at `now`."""
        with self.db.atomic():
            self.db.execute("INSERT OR IGNORE INTO daemon_state (key, value) "
                            "SELECT 'watched_since', ? "
                            "WHERE NOT EXISTS (SELECT 1 FROM schedule_slots)", [_utc(now)])
            row = self.db.execute(
                """SELECT MAX(t) FROM (
                       SELECT value AS t FROM daemon_state WHERE key = 'watched_since'
                       UNION ALL SELECT fire_time FROM schedule_slots)""").fetchone()
        return datetime.fromisoformat(row[0])

    def status(self) -> Status:
        def count(sql: str) -> int:
            return int(self.db.execute(sql).fetchone()[0])

        return Status(
            papers=count("SELECT COUNT(*) FROM papers"),
            undelivered=count("SELECT COUNT(*) FROM papers WHERE id NOT IN "
                              "(SELECT paper_id FROM edition_papers)"),
            dumps=count("SELECT COUNT(*) FROM dumps WHERE status = 'ingested'"),
            failed_dumps=count("SELECT COUNT(*) FROM dumps WHERE status = 'failed'"),
            editions=count("SELECT COUNT(*) FROM editions"),
            pending_editions=count("SELECT COUNT(*) FROM editions WHERE status = 'pending'"),
            pending_error=self.db.execute(
                "SELECT (SELECT last_error FROM editions WHERE status = 'pending' "
                "ORDER BY id LIMIT 1)").fetchone()[0],
        )


@contextmanager
def open_store(path: Path) -> Iterator[Store]:
    store = Store(path)
    try:
        yield store
    finally:
        store.close()


def _rowid(cursor: sqlite3.Cursor) -> int:
    assert cursor.lastrowid is not None  # an INSERT always sets it
    return cursor.lastrowid


def _utc(moment: datetime) -> str:
    # One fixed form in UTC, so that text order is time order for MAX().
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None
