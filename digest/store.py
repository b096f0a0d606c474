"""The SQLite store: the only module that speaks SQL. Schema, migrations, and every read
and write of dumps, papers, sightings and editions."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import sqlite_utils

from digest.identity import (
    Candidate,
    Match,
    Spelling,
    Verdict,
    best_match,
    could_score,
    normalise,
    title_blocks,
    title_key,
)
from digest.model import EditionRecord, Paper, StoredPaper

SCHEMA_VERSION = 4

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
    # 4: fuzzy identity.
    [
        # Keys under the richer fold (LaTeX, Greek letters, accents, hyphens, quotes).
        # Two stored papers that now fold to one key stay two: the later keeps its old key.
        "UPDATE OR IGNORE papers SET key = title_key(title)",
        # The blocks each paper is filed under for fuzzy matching (identity.title_blocks),
        # with the length of its key: a title too much longer or shorter cannot score
        # enough, so it is turned down without reading its row. No foreign key: it is an
        # index the store keeps, and checking one costs every insert.
        """CREATE TABLE paper_blocks (
            block INTEGER NOT NULL,
            paper_id INTEGER NOT NULL,
            length INTEGER NOT NULL,
            PRIMARY KEY (block, paper_id)) WITHOUT ROWID""",
        """INSERT OR IGNORE INTO paper_blocks (block, paper_id, length)
           SELECT b.value, p.id, length(title_key(p.title))
           FROM papers p, json_each(title_blocks(p.title)) b""",
        # Every fuzzy merge: the title as a dump spelt it, the score, the paper it joined.
        """CREATE TABLE merges (
            id INTEGER PRIMARY KEY,
            dump_id INTEGER NOT NULL REFERENCES dumps(id),
            paper_id INTEGER NOT NULL REFERENCES papers(id),
            title TEXT NOT NULL,
            score REAL NOT NULL,
            reason TEXT NOT NULL)""",
        "CREATE INDEX merges_paper ON merges(paper_id)",
    ],
]


@dataclass(frozen=True)
class IngestCounts:
    papers: int
    new: int


@dataclass(frozen=True)
class MergeRecord:
    """A title that joined a stored paper by fuzzy match: as seen, scored, and where."""

    title: str
    score: float
    reason: str
    paper_id: int
    paper_title: str
    dump: str


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
    fuzzy_merges: int
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
        # Blocks and keys are looked up at random: a page cache of 64 MB keeps the hot
        # parts of their indexes of a million papers in memory (the default is 2 MB).
        self.db.execute("PRAGMA cache_size=-65536")
        # Migrations re-key stored titles with the same fold new titles get.
        self.db.conn.create_function("title_key", 1, title_key, deterministic=True)
        self.db.conn.create_function("title_blocks", 1, _blocks_json, deterministic=True)
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
                    now: datetime, *, batch_size: int = 500) -> IngestCounts:
        """Save a parsed dump in one transaction: all of its papers and sightings, or none.

        Papers are matched and written `batch_size` at a time: one query per batch for
        each of arXiv ids, exact keys and blocks, then one executemany per table, so the
        cost per paper stays flat however large the store, and memory stays flat however
        large the dump.
        """
        with self.db.atomic():
            self.db.execute("DELETE FROM dumps WHERE sha256 = ? AND status = 'failed'", [sha256])
            dump_id = _rowid(self.db.execute(
                "INSERT INTO dumps (sha256, path, format, status, seen_at) "
                "VALUES (?, ?, ?, 'ingested', ?)", [sha256, path, fmt, now.isoformat()]))
            batch = _Batch(self.db.conn, dump_id, now, self._next_paper_id())
            total = new = 0
            for chunk in _chunks(papers, batch_size):
                new += batch.ingest(chunk, first_rank=total + 1)
                total += len(chunk)
            self.db.execute("UPDATE dumps SET papers = ?, new = ? WHERE id = ?",
                            [total, new, dump_id])
        return IngestCounts(total, new)

    def _next_paper_id(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM papers").fetchone()[0])

    def explain(self, title: str, abstract: str = "", arxiv_id: str | None = None) -> Match:
        """Which stored paper a title would join, and why; what `digest why` prints."""
        spelling = Spelling.of(title)
        index = _StoredIndex.fetch(self.db.conn, [(spelling, arxiv_id)])
        return index.match(spelling, abstract, arxiv_id)

    def merges(self, paper_id: int | None = None) -> list[MergeRecord]:
        """The fuzzy merges recorded, oldest first: every title that joined a paper it did
        not spell exactly."""
        where, params = ("WHERE m.paper_id = ?", [paper_id]) if paper_id else ("", [])
        rows = self.db.execute(
            f"""SELECT m.title, m.score, m.reason, m.paper_id, p.title, d.path
                FROM merges m JOIN papers p ON p.id = m.paper_id
                JOIN dumps d ON d.id = m.dump_id {where} ORDER BY m.id""", params).fetchall()
        return [MergeRecord(*row) for row in rows]

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
            fuzzy_merges=count("SELECT COUNT(*) FROM merges"),
            pending_error=self.db.execute(
                "SELECT (SELECT last_error FROM editions WHERE status = 'pending' "
                "ORDER BY id LIMIT 1)").fetchone()[0],
        )


_ARXIV = Verdict(True, 100.0, "arXiv id", "arxiv")
_EXACT = Verdict(True, 100.0, "exact key", "exact")
_NEW = Match(None, None)
# A block that more papers than this are filed under ("paper number" in "Paper number 17")
# is not looked through: it would make every such title a candidate of every other, and
# the cost of a listing grow with the store. A title misspelt in a word of its only
# other blocks is then missed (a repeat, never a lost paper).
BLOCK_LIMIT = 64
_CANDIDATE_COLUMNS = "id, title, abstract, arxiv_id"


class _StoredIndex:
    """What the store knows of one batch's titles: the papers their arXiv ids, exact keys
    and blocks lead to, fetched in one query each, plus the papers the batch itself adds."""

    def __init__(self) -> None:
        self.by_arxiv: dict[str, int] = {}
        self.by_key: dict[str, int] = {}
        self.by_block: dict[int, list[int]] = {}
        self.candidates: dict[int, Candidate] = {}
        # Papers this batch adds, made candidates only when a later listing needs one.
        self.added: dict[int, Paper] = {}
        # Blocks filed under by more than BLOCK_LIMIT papers: they tell too little.
        self.crowded: set[int] = set()

    @classmethod
    def fetch(cls, conn: sqlite3.Connection,
              listings: list[tuple[Spelling, str | None]]) -> _StoredIndex:
        index = cls()
        arxiv_ids = list({a for _, a in listings if a})
        for row in _select_in(conn, f"SELECT {_CANDIDATE_COLUMNS} FROM papers "
                              "WHERE arxiv_id IN ({})", arxiv_ids):
            index.by_arxiv[row[3]] = row[0]
            index.candidates[row[0]] = Candidate(*row)
        keys = list({s.key for s, a in listings if not (a and a in index.by_arxiv)})
        for row in _select_in(conn, f"SELECT {_CANDIDATE_COLUMNS}, key FROM papers "
                              "WHERE key IN ({})", keys):
            index.by_key[row[4]] = row[0]
            index.candidates[row[0]] = Candidate(*row[:4])
        lengths: dict[int, list[int]] = {}
        for s, a in listings:
            if not (a and a in index.by_arxiv) and s.key not in index.by_key:
                for block in s.blocks:
                    lengths.setdefault(block, []).append(len(s.key))
        for block, count in _select_in(conn, "SELECT block, COUNT(*) FROM paper_blocks "
                                       "WHERE block IN ({}) GROUP BY block", list(lengths)):
            if count > BLOCK_LIMIT:
                index.crowded.add(block)
        wanted: set[int] = set()
        for block, paper_id, length in _select_in(
                conn, "SELECT block, paper_id, length FROM paper_blocks WHERE block IN ({})",
                [b for b in lengths if b not in index.crowded]):
            if any(could_score(length, n) for n in lengths[block]):
                index.by_block.setdefault(block, []).append(paper_id)
                wanted.add(paper_id)
        for row in _select_in(conn, f"SELECT {_CANDIDATE_COLUMNS} FROM papers "
                              "WHERE id IN ({})", sorted(wanted - index.candidates.keys())):
            index.candidates[row[0]] = Candidate(*row)
        return index

    def match(self, spelling: Spelling, abstract: str, arxiv_id: str | None) -> Match:
        if arxiv_id and arxiv_id in self.by_arxiv:
            return Match(self._candidate(self.by_arxiv[arxiv_id]), _ARXIV)
        exact_id = self.by_key.get(spelling.key)
        if exact_id is not None:
            exact = self._candidate(exact_id)
            if not (arxiv_id and exact.arxiv_id and exact.arxiv_id != arxiv_id):
                return Match(exact, _EXACT)
        by_block = self.by_block
        ids = {i for b in spelling.blocks
               if b in by_block and len(by_block[b]) <= BLOCK_LIMIT for i in by_block[b]}
        if not ids:
            return _NEW
        return best_match(spelling, abstract, arxiv_id, [self._candidate(i) for i in sorted(ids)])

    def add(self, paper_id: int, spelling: Spelling, key: str, paper: Paper) -> None:
        """File a paper this batch creates, so that a later listing of it finds it."""
        self.added[paper_id] = paper
        if paper.arxiv_id:
            self.by_arxiv[paper.arxiv_id] = paper_id
        self.by_key.setdefault(key, paper_id)
        by_block = self.by_block
        for block in spelling.blocks:
            if block in self.crowded:
                continue
            if block in by_block:
                by_block[block].append(paper_id)
            else:
                by_block[block] = [paper_id]

    def _candidate(self, paper_id: int) -> Candidate:
        if paper_id not in self.candidates:
            paper = self.added[paper_id]
            self.candidates[paper_id] = Candidate(paper_id, paper.title, paper.abstract,
                                                  paper.arxiv_id)
        return self.candidates[paper_id]


class _Batch:
    """Match and write the papers of one dump a batch at a time, inside its transaction."""

    def __init__(self, conn: sqlite3.Connection, dump_id: int, now: datetime,
                 next_id: int) -> None:
        self.conn = conn
        self.dump_id = dump_id
        self.now = now.isoformat()
        self.next_id = next_id

    def ingest(self, papers: list[Paper], first_rank: int) -> int:
        """Match, insert and merge one batch; returns how many papers were new."""
        spellings = [Spelling.of(p.title) for p in papers]
        index = _StoredIndex.fetch(self.conn, [(s, p.arxiv_id)
                                               for s, p in zip(spellings, papers, strict=True)])
        inserts: list[tuple[object, ...]] = []
        blocks: list[tuple[int, int, int]] = []
        updates: list[tuple[object, ...]] = []
        merges: list[tuple[object, ...]] = []
        sightings: list[tuple[object, ...]] = []
        for rank, (spelling, paper) in enumerate(zip(spellings, papers, strict=True),
                                                 first_rank):
            match = index.match(spelling, paper.abstract, paper.arxiv_id)
            if match.paper is None or match.verdict is None:
                paper_id, key = self.next_id, spelling.key
                self.next_id += 1
                if key in index.by_key:  # same title, another arXiv id: another paper
                    key = f"{key}#{paper.arxiv_id}"
                index.add(paper_id, spelling, key, paper)
                inserts.append(_paper_row(paper_id, key, paper, self.now))
                blocks.extend((b, paper_id, len(key)) for b in spelling.blocks)
            else:
                paper_id = match.paper.id
                updates.append(_merge_row(paper_id, paper))
                if match.verdict.kind == "fuzzy":
                    merges.append((self.dump_id, paper_id, paper.title, match.verdict.score,
                                   match.verdict.reason))
            sightings.append((paper_id, self.dump_id, rank, paper.upvotes, paper.title))
        self.conn.executemany(_INSERT_PAPER, inserts)
        # In index order: neighbouring inserts touch neighbouring pages of a large index.
        blocks.sort()
        self.conn.executemany("INSERT OR IGNORE INTO paper_blocks (block, paper_id, length) "
                              "VALUES (?, ?, ?)", blocks)
        self.conn.executemany(_MERGE_PAPER, updates)
        self.conn.executemany("INSERT INTO merges (dump_id, paper_id, title, score, reason) "
                              "VALUES (?, ?, ?, ?, ?)", merges)
        self.conn.executemany("INSERT OR IGNORE INTO sightings (paper_id, dump_id, rank, "
                              "upvotes, title) VALUES (?, ?, ?, ?, ?)", sightings)
        return len(inserts)


_INSERT_PAPER = """INSERT INTO papers (id, key, title, abstract, authors, authors_count,
    published, upvotes, arxiv_id, url, categories, first_seen)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
# What one source lacks another may give: fill gaps, keep the highest upvotes.
_MERGE_PAPER = """UPDATE papers SET
    abstract = CASE WHEN abstract = '' THEN ? ELSE abstract END,
    authors = CASE WHEN authors = '[]' THEN ? ELSE authors END,
    authors_count = COALESCE(authors_count, ?),
    published = COALESCE(published, ?),
    upvotes = MAX(COALESCE(upvotes, ?), COALESCE(?, upvotes)),
    arxiv_id = COALESCE(arxiv_id, ?),
    url = COALESCE(url, ?),
    categories = CASE WHEN categories = '[]' THEN ? ELSE categories END
    WHERE id = ?"""


def _paper_row(paper_id: int, key: str, paper: Paper, now: str) -> tuple[object, ...]:
    return (paper_id, key, paper.title, paper.abstract, _json_list(paper.authors),
            paper.authors_count, _iso(paper.published), paper.upvotes, paper.arxiv_id,
            paper.url, _json_list(paper.categories), now)


def _merge_row(paper_id: int, paper: Paper) -> tuple[object, ...]:
    return (paper.abstract, _json_list(paper.authors), paper.authors_count,
            _iso(paper.published), paper.upvotes, paper.upvotes, paper.arxiv_id, paper.url,
            _json_list(paper.categories), paper_id)


def _json_list(items: tuple[str, ...]) -> str:
    # Most formats give no authors or categories: skip the encoder for the common case.
    return json.dumps(items) if items else "[]"


def _select_in(conn: sqlite3.Connection, sql: str, values: list[Any]) -> list[tuple[Any, ...]]:
    """Run a `... IN ({})` query over many values, a bound parameter each."""
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(values), _MAX_PARAMS):
        part = values[start:start + _MAX_PARAMS]
        rows.extend(conn.execute(sql.format(",".join("?" * len(part))), part).fetchall())
    return rows


# Well under SQLite's limit on bound parameters (32766 since 3.32).
_MAX_PARAMS = 10_000


def _chunks(items: Iterable[Paper], size: int) -> Iterator[list[Paper]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


@contextmanager
def open_store(path: Path) -> Iterator[Store]:
    store = Store(path)
    try:
        yield store
    finally:
        store.close()


def _blocks_json(title: str) -> str:
    return json.dumps(title_blocks(normalise(title)))


def _rowid(cursor: sqlite3.Cursor) -> int:
    assert cursor.lastrowid is not None  # an INSERT always sets it
    return cursor.lastrowid


def _utc(moment: datetime) -> str:
    # One fixed form in UTC, so that text order is time order for MAX().
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None
