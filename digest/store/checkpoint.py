"""Checkpoints in the background: after a dump goes in, a thread of the store's own copies
the WAL's pages into the store file while the run goes on with the next dump.

Left to SQLite, the commit that fills the WAL copies them, and the ingest waits for it: a
dump's commit took half again as long. SQLite does the copying with Python's lock
released, so the thread runs beside the ingest (SQLite's documentation suggests this:
https://www.sqlite.org/wal.html#application_initiated_checkpoints).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger("digest.store")


class Checkpointer:
    """A thread that checkpoints the store's WAL each time it is kicked, until closed."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._wanted = threading.Event()
        self._kicked = False
        self._closing = False
        self._thread: threading.Thread | None = None

    def kick(self) -> None:
        """Ask for a checkpoint of what has been committed so far."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="digest-checkpoint",
                                            daemon=True)
            self._thread.start()
        self._kicked = True
        self._wanted.set()

    def close(self) -> None:
        """Finish the checkpoint asked for, then stop the thread."""
        if self._thread is None:
            return
        self._closing = True
        self._wanted.set()
        self._thread.join()
        self._thread = None

    def _run(self) -> None:
        conn = sqlite3.connect(self._path)
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._kicked:
                    self._kicked = False
                    # PASSIVE: never waits for the writer; what it cannot copy now, the
                    # next kick (or closing the store) does.
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                if self._closing:
                    return
        except sqlite3.Error as exc:
            # The store's own connection checkpoints when it closes.
            log.warning("background checkpoint of %s failed: %s", self._path, exc)
        finally:
            conn.close()
