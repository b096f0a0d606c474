"""The store's schema: one list of statements per version, and the migration that runs
the lists a store has not had yet."""

from __future__ import annotations

import json
from pathlib import Path

import sqlite_utils

from digest.errors import DigestError
from digest.identity import normalise, title_blocks, title_key

SCHEMA_VERSION = 9
# A crowded block keeps only the rows that mark it crowded (BLOCK_LIMIT + 1 of
# store/matching.py): no lookup reads the others. Also run by bench/ingest.py on the
# stores it builds in bulk.
TRIM_CROWDED_BLOCKS = """DELETE FROM paper_blocks WHERE (block, paper_id) IN (
    SELECT block, paper_id FROM (
        SELECT block, paper_id,
               ROW_NUMBER() OVER (PARTITION BY block ORDER BY paper_id) AS n
        FROM paper_blocks)
    WHERE n > 65)"""
# Statements more than one migration runs; frozen like them once released.
# The blocks a paper is filed under: the same shape for the table lookups read and the
# table new blocks wait in, so that rows move from one to the other as they are.
_BLOCKS_TABLE = """CREATE TABLE {} (
    block INTEGER NOT NULL,
    paper_id INTEGER NOT NULL,
    length INTEGER NOT NULL,
    PRIMARY KEY (block, paper_id)) WITHOUT ROWID"""
# The blocks schema 5 to 7 kept apart, into the main table.
_MOVE_RECENT_BLOCKS = ("INSERT OR IGNORE INTO paper_blocks "
                       "SELECT block, paper_id, length FROM recent_blocks")
# Every stored title under the blocks identity.title_blocks gives it today.
_FILE_EVERY_TITLE = """INSERT OR IGNORE INTO paper_blocks (block, paper_id, length)
    SELECT b.value, p.id, length(title_key(p.title))
    FROM papers p, json_each(title_blocks(p.title)) b"""

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
        _BLOCKS_TABLE.format("paper_blocks"),
        _FILE_EVERY_TITLE,
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
    # 5: new blocks are written to a small table first and moved into paper_blocks in
    # bulk (store/matching.py says why), and crowded blocks are trimmed.
    [
        _BLOCKS_TABLE.format("recent_blocks"),
        TRIM_CROWDED_BLOCKS,
    ],
    # 6: a title whose one rare word is misspelt is found by that word's start or end
    # (identity.title_blocks): every stored title is filed under the blocks it has now.
    [
        _MOVE_RECENT_BLOCKS,
        "DELETE FROM recent_blocks",
        _FILE_EVERY_TITLE,
        TRIM_CROWDED_BLOCKS,
    ],
    # 7: the filter of the blocks paper_blocks holds (store/filters.py), one row; the
    # first dump into a big store builds it. A later migration that files titles again
    # must DELETE FROM block_filter.
    [
        """CREATE TABLE block_filter (
            stamp INTEGER NOT NULL,
            blocks INTEGER NOT NULL,
            bits BLOB NOT NULL)""",
    ],
    # 8: new blocks are held in memory, and in the store one row a paper (store/recent.py)
    # rather than one a block in recent_blocks: what that holds moves now, without bits
    # in the filter, which the next dump builds again.
    [
        _MOVE_RECENT_BLOCKS,
        "DROP TABLE recent_blocks",
        "DELETE FROM block_filter",
        # The blocks as a JSON array: the move into paper_blocks reads them with json_each.
        """CREATE TABLE recent_papers (
            paper_id INTEGER PRIMARY KEY,
            length INTEGER NOT NULL,
            blocks TEXT NOT NULL)""",
        # One row: the stamp of the last dump that filed papers. A later migration that
        # changes recent_papers must change it too, or a process would keep its old copy.
        "CREATE TABLE recent_state (stamp INTEGER NOT NULL)",
        "INSERT INTO recent_state VALUES (0)",
        # Every listing paid for it (0.4 us of the 2.1 its sighting cost) and only one
        # statement reads it: the foreign-key check when a failed dump's row is deleted
        # to take it again, which now scans the sightings (0.13 s at 6M).
        "DROP INDEX IF EXISTS sightings_dump",
    ],
    # 9: a paper's key is no longer a unique index of papers, on which every new paper
    # wrote a random page (8,000 of the 9,700 pages a 10,000-paper dump wrote at 1M
    # stored). Keys go to paper_keys a hundred thousand at a time, in key order, and the
    # newer ones are held in memory (store/recent.py). SQLite cannot drop a constraint:
    # the table is built again, with the foreign keys that name it off (migrate).
    [
        """CREATE TABLE papers_v9 (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL,
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
        """INSERT INTO papers_v9 SELECT id, key, title, abstract, authors, authors_count,
            published, upvotes, arxiv_id, url, categories, first_seen FROM papers""",
        "DROP TABLE papers",
        "ALTER TABLE papers_v9 RENAME TO papers",
        "CREATE TABLE paper_keys (key TEXT PRIMARY KEY, paper_id INTEGER NOT NULL) WITHOUT ROWID",
        # The filter of the keys paper_keys holds (store/filters.py), built by the next dump.
        """CREATE TABLE key_filter (
            stamp INTEGER NOT NULL,
            keys INTEGER NOT NULL,
            bits BLOB NOT NULL)""",
        "INSERT INTO paper_keys SELECT key, id FROM papers ORDER BY key",
        # The first paper whose key is not in paper_keys yet.
        "ALTER TABLE recent_state ADD COLUMN keys_from INTEGER NOT NULL DEFAULT 1",
        "UPDATE recent_state SET keys_from = (SELECT COALESCE(MAX(id), 0) + 1 FROM papers), "
        "stamp = random()",
    ],
]


# The tables with foreign keys, all of which name papers: checked after a migration, which
# may build papers again.
_NAMING_PAPERS = ("sightings", "edition_papers", "merges")


def migrate(db: sqlite_utils.Database, path: Path) -> None:
    """Bring the store at `path` up to SCHEMA_VERSION, in one transaction."""
    # Migrations re-key stored titles with the same fold new titles get.
    db.conn.create_function("title_key", 1, title_key, deterministic=True)
    db.conn.create_function("title_blocks", 1, _blocks_json, deterministic=True)
    if _check(db, path) == SCHEMA_VERSION:
        return
    # A table built again is dropped with rows still naming it: foreign keys are off
    # (which only works outside a transaction) and checked before the commit instead.
    db.execute("PRAGMA foreign_keys=OFF")
    try:
        # The write lock first: another process may have migrated since the check.
        db.execute("BEGIN IMMEDIATE")
        try:
            for statements in _MIGRATIONS[_check(db, path):]:
                for sql in statements:
                    db.execute(sql)
            for table in _NAMING_PAPERS:
                broken = db.execute(f"PRAGMA foreign_key_check({table})").fetchone()
                if broken is not None:
                    raise DigestError(f"{path}: a row of {broken[0]} names a missing "
                                      f"{broken[2]} row; the store was not migrated")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.conn.rollback()
            raise
    finally:
        db.execute("PRAGMA foreign_keys=ON")


def _check(db: sqlite_utils.Database, path: Path) -> int:
    """The store's schema version, which this digest must know."""
    version = schema_version(db)
    if version > SCHEMA_VERSION:
        raise DigestError(f"{path}: store schema {version} is newer than this "
                          f"digest ({SCHEMA_VERSION}); upgrade paper-digest")
    return version


def schema_version(db: sqlite_utils.Database) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _blocks_json(title: str) -> str:
    return json.dumps(title_blocks(normalise(title)))
