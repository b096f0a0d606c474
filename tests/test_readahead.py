"""The parsing worker of a run (readahead.py): dumps parsed in a second process go into the
store as they would have in one, and a worker that dies fails only the dumps it held."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from digest.config import Config
from digest.dumps import OnBytes, parse_dump, read_dump
from digest.pipeline import inbox_files, ingest_paths
from digest.readahead import BATCH
from digest.store import open_store

NOW = datetime(2026, 3, 10, 9, 0)


def _workers() -> list[multiprocessing.process.BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.name == "digest-readahead"]


def _stored(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT p.title, s.rank, s.upvotes FROM sightings s JOIN papers p "
                            "ON p.id = s.paper_id ORDER BY p.title, s.rank").fetchall()


def test_a_run_stores_what_parsing_in_this_process_stores(tmp_path: Path, inbox: Path,
                                                          config: Config) -> None:
    """Several batches a dump, several dumps: every listing in its rank, once."""
    # A dump of more than two batches: the seeds' listings, numbered, one after another.
    listings = [p for seed in sorted(inbox.glob("*.txt"))
                for p in parse_dump(read_dump(seed), page_year=2024).papers] * 5
    assert len(listings) > 2 * BATCH
    (inbox / "9-big.txt").write_text(
        "Daily Papers\n\nbyAK and the research community\n\nNov 20\n\n" + "".join(
            f"{p.title} {n}\n\n{p.abstract}\n\n" for n, p in enumerate(listings)),
        encoding="utf-8")
    with open_store(tmp_path / "ahead.db") as store:
        results = list(ingest_paths(store, config, inbox_files([inbox]), NOW))
    assert [r.status for r in results] == ["ingested"] * 6, [r.error for r in results]
    assert results[-1].papers == len(listings)
    assert _workers() == []  # the run stopped its worker
    # The same dumps, parsed here and given to the store directly.
    with open_store(tmp_path / "here.db") as store:
        for path in sorted(inbox.glob("*.txt")):
            dump = read_dump(path)
            parsed = parse_dump(dump, page_year=2024)
            store.ingest_dump(dump.sha256, str(path), parsed.format, parsed.papers, NOW)
    assert _stored(tmp_path / "ahead.db") == _stored(tmp_path / "here.db")


def test_a_killed_worker_fails_the_dumps_it_held_and_the_run_goes_on(
        tmp_path: Path, inbox: Path, config: Config) -> None:
    seeds = sorted(inbox.glob("*.txt"))

    @contextmanager
    def kill_while_reading_the_second(label: str, total: int) -> Iterator[OnBytes]:
        if label == f"reading {seeds[1].name}":
            (worker,) = _workers()
            os.kill(worker.pid, signal.SIGKILL)
            worker.join()
        yield lambda _: None

    with open_store(tmp_path / "store.db") as store:
        first = list(ingest_paths(store, config, inbox_files([inbox]), NOW,
                                  kill_while_reading_the_second))
        # The first dump was handed to the worker a moment before: a new interpreter is
        # still starting then, far from done with it. The second found the worker dead
        # and went to a new one.
        assert [r.status for r in first] == ["failed"] + ["ingested"] * 4
        assert first[0].error == (f"{seeds[0]}: the parsing process stopped (exit code -9); "
                                  "the dump is read again on the next run")
        assert store.status().failed_dumps == 1
        # Nothing of a failed dump went in: the next run takes it whole.
        again = list(ingest_paths(store, config, inbox_files([inbox]), NOW))
        assert [r.status for r in again] == ["ingested"] + ["skipped"] * 4
        assert store.status().failed_dumps == 0
    clean = tmp_path / "clean"
    shutil.copytree(inbox, clean)
    with open_store(tmp_path / "clean.db") as store:
        list(ingest_paths(store, config, inbox_files([clean]), NOW))
    assert len(_stored(tmp_path / "store.db")) == len(_stored(tmp_path / "clean.db"))


def test_a_dump_copied_under_another_name_goes_in_once(tmp_path: Path, inbox: Path,
                                                       config: Config) -> None:
    """Both copies are hashed before either goes in: the second is found at its turn."""
    seeds = sorted(inbox.glob("*.txt"))
    shutil.copy(seeds[0], inbox / "copy.txt")
    with open_store(tmp_path / "store.db") as store:
        results = {Path(r.path).name: r for r in
                   ingest_paths(store, config, [seeds[0], inbox / "copy.txt"], NOW)}
        assert results[seeds[0].name].status == "ingested"
        assert results["copy.txt"].status == "skipped"
        assert store.status().dumps == 1


_KILLED_RUN = """
import sys, time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from digest.config import Config
from digest.pipeline import ingest_paths
from digest.store import open_store

@contextmanager
def stall(label, total):
    def on_bytes(n):
        if label.startswith("ingesting"):
            import multiprocessing
            (worker,) = multiprocessing.active_children()
            print(worker.pid, flush=True)
            time.sleep(600)  # killed meanwhile
    yield on_bytes

state = Path(sys.argv[1])
with open_store(state / "digest.db") as store:
    list(ingest_paths(store, Config(state_dir=state, page_year=2024), [Path(sys.argv[2])],
                      datetime(2026, 3, 10), stall))
"""


def _exited(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has exited


def test_a_worker_whose_run_is_killed_outright_exits(tmp_path: Path) -> None:
    """SIGKILL leaves a run no chance to stop its worker, which waits on a full queue:
    the worker notices its run is gone and exits."""
    dump = tmp_path / "big.txt"
    dump.write_text("Daily Papers\n\nbyAK and the research community\n\nNov 20\n\n" + "".join(
        f"Paper number {n}\n\nAn abstract of paper {n}.\n\n" for n in range(40 * BATCH)),
        encoding="utf-8")
    run = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(tmp_path), str(dump)],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert run.stdout is not None
        worker = int(run.stdout.readline())
        time.sleep(1)  # the worker fills the queue the run no longer reads
        assert not _exited(worker)
    finally:
        run.kill()
        run.wait()
    deadline = time.monotonic() + 10
    while not _exited(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _exited(worker)
