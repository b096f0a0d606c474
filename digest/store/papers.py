"""Dumps, the papers they list, and the fuzzy merges between them: what ingest writes and
what an edition is made of."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

import sqlite_utils

from digest.identity import Listing, Match, Spelling
from digest.model import Paper, StoredPaper
from digest.store.filters import BlockFilter, KeyFilter
from digest.store.matching import _Batch, _chunks, _StoredIndex
from digest.store.recent import RecentPapers


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


class PaperTables:
    """The store's dumps, papers, sightings and merges."""

    db: sqlite_utils.Database
    # The filters and the recent papers the last dump left (store/filters.py,
    # store/recent.py): the next reuses them rather than read them again, unless the
    # store has changed since.
    _block_filter: BlockFilter | None = None
    _key_filter: KeyFilter | None = None
    _recent_papers: RecentPapers | None = None

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
        """Save a parsed dump in one transaction, folding its titles here: for callers
        that hold papers rather than the listings a run's reader folds ahead."""
        return self.ingest_listings(
            sha256, path, fmt, ([Listing.of(p) for p in chunk]
                                for chunk in _chunks(papers, batch_size)), now)

    def ingest_listings(self, sha256: str, path: str, fmt: str,
                        batches: Iterable[list[Listing]], now: datetime) -> IngestCounts:
        """Save a dump's listings in one transaction: all of its papers and sightings, or
        none.

        Listings are matched and written a batch at a time: one query per batch for each
        of arXiv ids, exact keys and blocks, then one executemany per table, so the cost
        per paper stays flat however large the store, and memory stays flat however large
        the dump.
        """
        with self.db.atomic():
            self.db.execute("DELETE FROM dumps WHERE sha256 = ? AND status = 'failed'", [sha256])
            dump_id = _rowid(self.db.execute(
                "INSERT INTO dumps (sha256, path, format, status, seen_at) "
                "VALUES (?, ?, ?, 'ingested', ?)", [sha256, path, fmt, now.isoformat()]))
            batch = _Batch(self.db.conn, dump_id, now, self._next_paper_id(),
                           self._block_filter, self._key_filter, self._recent_papers)
            total = new = 0
            for listings in batches:
                new += batch.ingest(listings, first_rank=total + 1)
                total += len(listings)
                batch.settle()
            self.db.execute("UPDATE dumps SET papers = ?, new = ? WHERE id = ?",
                            [total, new, dump_id])
        self._block_filter, self._key_filter = batch.known, batch.known_keys
        self._recent_papers = batch.recent
        return IngestCounts(total, new)

    def _next_paper_id(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM papers").fetchone()[0])

    def explain(self, title: str, abstract: str = "", arxiv_id: str | None = None) -> Match:
        """Which stored paper a title would join, and why; what `digest why` prints."""
        spelling = Spelling.of(title)
        with self.db.atomic():  # one snapshot, whatever another process commits meanwhile
            self._recent_papers = RecentPapers.current(self.db.conn, self._recent_papers)
            index = _StoredIndex.fetch(self.db.conn, [(spelling, arxiv_id)],
                                       self._recent_papers)
        return index.match(spelling, abstract, arxiv_id, explain=True)

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


def _rowid(cursor: sqlite3.Cursor) -> int:
    assert cursor.lastrowid is not None  # an INSERT always sets it
    return cursor.lastrowid
