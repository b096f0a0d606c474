"""The daemon's schedule: the slots it ran, and since when it has watched the store."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlite_utils


class ScheduleTables:
    """The store's record of scheduled runs."""

    db: sqlite_utils.Database

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


def _utc(moment: datetime) -> str:
    # One fixed form in UTC, so that text order is time order for MAX().
    return moment.astimezone(UTC).isoformat(timespec="seconds")
