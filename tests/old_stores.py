"""Stores as earlier versions of the schema left them, made from current ones, for the
tests of their migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from digest.store import _MIGRATIONS


def as_version_8(path: Path) -> None:
    """Undo version 9: papers' keys a unique index of papers again, and none held apart."""
    conn = sqlite3.connect(path)  # foreign keys off: papers is built again
    with conn:
        conn.execute("DROP TABLE paper_keys")
        conn.execute("ALTER TABLE recent_state DROP COLUMN keys_from")
        conn.execute(_MIGRATIONS[0][1].replace("TABLE papers", "TABLE papers_v8"))
        conn.execute("INSERT INTO papers_v8 SELECT * FROM papers")
        conn.execute("DROP TABLE papers")
        conn.execute("ALTER TABLE papers_v8 RENAME TO papers")
        conn.execute("PRAGMA user_version = 8")
    conn.close()
