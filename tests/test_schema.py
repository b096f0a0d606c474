"""Migrations to schema 9, which builds papers again without the index of its keys, on
real SQLite files: every row that names a paper still names it, foreign keys are back on
and enforced, and a failed or concurrent migration leaves a store one can open."""

from __future__ import annotations

import os
import random
import sqlite3
import string
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import sqlite_utils
from stores import as_version_8, key_faults

from digest.errors import DigestError
from digest.model import Paper
from digest.store import Store
from digest.store.schema import migrate

NOW = datetime(2025, 3, 1, 8, 0)
REPO = Path(__file__).resolve().parent.parent


def _titles(n: int) -> list[str]:
    rng = random.Random(1)
    return [" ".join("".join(rng.choices(string.ascii_lowercase, k=rng.randint(5, 9)))
                     for _ in range(6)).title() for _ in range(n)]


def _version_8_store(path: Path) -> list[str]:
    """A store of 40 papers with sightings, an edition and a merge, as version 8 kept it."""
    titles = _titles(40)
    store = Store(path)
    store.ingest_dump("a" * 64, "one", "test", [Paper(t) for t in titles[:30]], NOW)
    store.ingest_dump("b" * 64, "two", "test", [Paper(t) for t in titles[10:40]], NOW)
    store.create_edition([(1, "t"), (2, "t"), (35, "t")], NOW)
    store.db.execute("INSERT INTO merges (dump_id, paper_id, title, score, reason) "
                     "VALUES (2, 3, 'x', 93.0, 'test')")
    store.db.conn.commit()
    store.close()
    as_version_8(path)
    return titles


def _counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                  for t in ("papers", "sightings", "edition_papers", "merges")}
    conn.close()
    return counts


def test_a_version_8_store_keeps_every_row_that_names_a_paper(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    titles = _version_8_store(path)
    before = _counts(path)
    store = Store(path)
    assert store.schema_version == 9 and _counts(path) == before
    assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
    # Every key moved: none is held in memory, nor filed again by the next dump.
    assert store.db.execute("SELECT keys_from FROM recent_state").fetchone()[0] == 41
    assert not key_faults(path)
    with pytest.raises(sqlite3.IntegrityError):  # still enforced on the table built again
        store.db.execute("DELETE FROM papers WHERE id = 35")
    store.db.conn.rollback()
    counts = store.ingest_dump("c" * 64, "three", "test",
                               [Paper(t.upper()) for t in titles], NOW)
    assert (counts.papers, counts.new) == (40, 0)
    assert len(store.undelivered()) == 37
    store.close()


def test_a_migration_that_finds_a_row_naming_no_paper_leaves_the_store_as_it_was(
        tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    _version_8_store(path)
    with sqlite3.connect(path) as conn:  # foreign keys off: a sighting of no paper
        conn.execute("INSERT INTO sightings VALUES (999, 1, 1, NULL, 'ghost')")
    conn.close()
    db = sqlite_utils.Database(path)
    db.execute("PRAGMA foreign_keys=ON")
    with pytest.raises(DigestError, match="a row of sightings names a missing papers row"):
        migrate(db, path)
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert not db.conn.in_transaction
    assert db.execute("PRAGMA user_version").fetchone()[0] == 8
    assert db.execute("SELECT COUNT(*) FROM sqlite_master WHERE name IN "
                      "('paper_keys', 'papers_v9')").fetchone()[0] == 0
    db.close()


def test_a_migration_that_fails_half_way_rolls_back_and_turns_foreign_keys_on(
        tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    _version_8_store(path)
    with sqlite3.connect(path) as conn:  # the table the migration builds is in the way
        conn.execute("CREATE TABLE papers_v9 (x)")
    conn.close()
    db = sqlite_utils.Database(path)
    db.execute("PRAGMA foreign_keys=ON")
    with pytest.raises(sqlite3.OperationalError):
        migrate(db, path)
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA user_version").fetchone()[0] == 8
    assert db.execute("SELECT COUNT(*) FROM papers").fetchone()[0] == 40
    db.close()


_OPEN_AT = """
import sys, time
from pathlib import Path
from digest.store import Store
while time.time() < float(sys.argv[2]):
    pass
Store(Path(sys.argv[1])).close()
"""


def test_two_processes_that_open_an_old_store_at_once_migrate_it_once(
        tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    _version_8_store(path)
    with sqlite3.connect(path) as conn:  # rows enough that the two migrations overlap
        conn.executemany("INSERT INTO papers (id, key, title, first_seen) VALUES (?, ?, ?, ?)",
                         [(i, f"k{i}", f"T {i}", "x") for i in range(100, 60_000)])
        conn.executemany("INSERT INTO sightings VALUES (?, 1, 1, NULL, 't')",
                         [(i,) for i in range(100, 60_000)])
    conn.close()
    start = str(time.time() + 1.5)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = [subprocess.Popen([sys.executable, "-c", _OPEN_AT, str(path), start], env=env,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    ends = [(run.wait(), run.communicate()[1]) for run in runs]
    assert [code for code, _ in ends] == [0, 0], ends
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 9
        assert conn.execute("SELECT COUNT(*) FROM paper_keys").fetchone()[0] == 40 + 59_900
    conn.close()
    assert not key_faults(path)
