"""Editions and their outbox: the papers an edition claims, its Message-ID, and whether it
was delivered."""

from __future__ import annotations

from datetime import datetime

import sqlite_utils

from digest.model import EditionRecord
from digest.store.papers import _rowid


class EditionTables:
    """The store's editions and the papers each one claims."""

    db: sqlite_utils.Database

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
