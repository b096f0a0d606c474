"""For the store tests: stores as earlier versions of the schema left them, made from
current ones, and a check of the keys a store holds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from digest.store import _MIGRATIONS


def as_version_8(path: Path) -> None:
    """Undo version 9: papers' keys a unique index of papers again, and none held apart."""
    conn = sqlite3.connect(path)  # foreign keys off: papers is built again
    with conn:
        conn.execute("DROP TABLE paper_keys")
        conn.execute("DROP TABLE key_filter")
        conn.execute("ALTER TABLE recent_state DROP COLUMN keys_from")
        conn.execute(_MIGRATIONS[0][1].replace("TABLE papers", "TABLE papers_v8"))
        conn.execute("INSERT INTO papers_v8 SELECT * FROM papers")
        conn.execute("DROP TABLE papers")
        conn.execute("ALTER TABLE papers_v8 RENAME TO papers")
        conn.execute("PRAGMA user_version = 8")
    conn.close()


def key_faults(path: Path) -> dict[str, list[object]]:
    """Every way a paper's key can be lost, doubled or left dangling: none in a sound
    store."""
    conn = sqlite3.connect(path)
    (keys_from,) = conn.execute("SELECT keys_from FROM recent_state").fetchone()
    found = {
        "same key twice in papers": conn.execute(
            "SELECT key FROM papers GROUP BY key HAVING COUNT(*) > 1").fetchall(),
        "older paper missing from paper_keys": conn.execute(
            "SELECT id FROM papers p WHERE id < ? AND NOT EXISTS (SELECT 1 FROM paper_keys k "
            "WHERE k.key = p.key AND k.paper_id = p.id)", [keys_from]).fetchall(),
        "paper_keys row naming no such paper": conn.execute(
            "SELECT key FROM paper_keys k WHERE NOT EXISTS (SELECT 1 FROM papers p "
            "WHERE p.id = k.paper_id AND p.key = k.key)").fetchall(),
        "recent paper also in paper_keys": conn.execute(
            "SELECT p.id FROM papers p JOIN paper_keys k ON k.key = p.key "
            "WHERE p.id >= ?", [keys_from]).fetchall(),
    }
    conn.close()
    return {k: v for k, v in found.items() if v}
