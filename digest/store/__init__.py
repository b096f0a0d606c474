"""The SQLite store: the only package that speaks SQL. Its schema and migrations
(`schema`), the matching of a dump's papers against it (`matching`) with the blocks and
keys of the papers filed since their last moves (`recent`) and the filters of the blocks
and keys their tables hold (`filters`), and every read and write of dumps and papers
(`papers`), editions (`editions`) and the daemon's schedule (`schedule`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from digest.store.editions import EditionTables
from digest.store.papers import DumpRecord, IngestCounts, MergeRecord, PaperTables
from digest.store.schedule import ScheduleTables
from digest.store.schema import _MIGRATIONS, SCHEMA_VERSION, migrate, schema_version

__all__ = ["_MIGRATIONS", "SCHEMA_VERSION", "DumpRecord", "IngestCounts", "MergeRecord",
           "Status", "Store", "open_store"]


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



class Store(PaperTables, EditionTables, ScheduleTables):
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
        try:
            migrate(self.db, path)
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    @property
    def schema_version(self) -> int:
        return schema_version(self.db)

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


@contextmanager
def open_store(path: Path) -> Iterator[Store]:
    store = Store(path)
    try:
        yield store
    finally:
        store.close()
