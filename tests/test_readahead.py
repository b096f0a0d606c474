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
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from digest.config import Config
from digest.dumps import OnBytes, parse_dump, read_dump
from digest.errors import DumpError
from digest.model import DumpResult
from digest.pipeline import READ_AHEAD_FROM, inbox_files, ingest_paths
from digest.readahead import BATCH, ReadAhead
from digest.store import open_store

NOW = datetime(2026, 3, 10, 9, 0)


def _workers() -> list[multiprocessing.process.BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.name == "digest-readahead"]


class _WorkerCounts:
    """A progress display that notes how many workers run each time a bar opens."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    @contextmanager
    def progress(self, label: str, total: int) -> Iterator[OnBytes]:
        self.seen.append(len(_workers()))
        yield lambda _: None


def _stored(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT p.title, s.rank, s.upvotes FROM sightings s JOIN papers p "
                            "ON p.id = s.paper_id ORDER BY p.title, s.rank").fetchall()


@pytest.mark.parametrize("read_ahead", [True, False], ids=["worker", "in-process"])
def test_a_run_stores_what_parsing_in_this_process_stores(tmp_path: Path, inbox: Path,
                                                          config: Config,
                                                          read_ahead: bool) -> None:
    """Several batches a dump, several dumps: every listing in its rank, once."""
    # A dump of more than two batches: the seeds' listings, numbered, one after another.
    listings = [p for seed in sorted(inbox.glob("*.txt"))
                for p in parse_dump(read_dump(seed), page_year=2024).papers] * 5
    assert len(listings) > 2 * BATCH
    (inbox / "9-big.txt").write_text(
        "Daily Papers\n\nbyAK and the research community\n\nNov 20\n\n" + "".join(
            f"{p.title} {n}\n\n{p.abstract}\n\n" for n, p in enumerate(listings)),
        encoding="utf-8")
    workers = _WorkerCounts()

    with open_store(tmp_path / "ahead.db") as store:
        results = list(ingest_paths(store, config, inbox_files([inbox]), NOW, workers.progress,
                                    read_ahead=read_ahead))
    assert [r.status for r in results] == ["ingested"] * 6, [r.error for r in results]
    assert results[-1].papers == len(listings)
    assert max(workers.seen) == int(read_ahead)
    assert _workers() == []  # the run stopped its worker
    # The same dumps, parsed here and given to the store directly.
    with open_store(tmp_path / "here.db") as store:
        for path in sorted(inbox.glob("*.txt")):
            dump = read_dump(path)
            parsed = parse_dump(dump, page_year=2024)
            store.ingest_dump(dump.sha256, str(path), parsed.format, parsed.papers, NOW)
    assert _stored(tmp_path / "ahead.db") == _stored(tmp_path / "here.db")


def test_a_worker_is_started_when_it_pays(tmp_path: Path, inbox: Path,
                                          config: Config) -> None:
    """A day's dumps are parsed in the run's own process: a worker takes longer to start
    than they take to parse. Megabytes of them, on a machine with a second core, get one."""
    workers = _WorkerCounts()

    with open_store(tmp_path / "store.db") as store:
        list(ingest_paths(store, config, inbox_files([inbox]), NOW, workers.progress))
        assert max(workers.seen) == 0
        big = tmp_path / "big.txt"
        big.write_text("Daily Papers\n\nbyAK and the research community\n\nNov 20\n\n"
                       + "".join(f"Paper number {n}\n\n{'Words of an abstract. ' * 40}\n\n"
                                 for n in range(READ_AHEAD_FROM // 800)), encoding="utf-8")
        assert big.stat().st_size >= READ_AHEAD_FROM
        workers.seen.clear()
        (result,) = ingest_paths(store, config, [big], NOW, workers.progress)
        assert result.status == "ingested"
        assert max(workers.seen) == (1 if len(os.sched_getaffinity(0)) > 1 else 0)


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
                                  kill_while_reading_the_second, read_ahead=True))
        # The first dump was handed to the worker just before: whatever the worker did
        # with it, the run had taken none of it and fails it. The others go to a new worker.
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


def test_a_dump_changed_after_the_run_hashed_it_fails_and_the_next_run_takes_it(
        tmp_path: Path, inbox: Path, config: Config) -> None:
    """The worker reads a dump's bytes again rather than take them over the pipe: what it
    reads must be what the run hashed, or the dump would go in under another file's hash."""
    seed = sorted(inbox.glob("*.txt"))[0]
    dump = read_dump(seed, keep=False)
    assert dump.content is None
    seed.write_text(seed.read_text(encoding="utf-8").replace("Nov", "Oct", 1),
                    encoding="utf-8")

    with ReadAhead(config.page_year) as reader:
        job = reader.submit(dump)
        with pytest.raises(DumpError, match="changed while it was being read"):
            reader.parsed(job, lambda _: None)
    with open_store(tmp_path / "store.db") as store:
        (result,) = ingest_paths(store, config, [seed], NOW, read_ahead=True)
        assert result.status == "ingested"
        assert store.dump_ingested(read_dump(seed).sha256)


def test_a_dump_touched_after_the_run_hashed_it_is_dated_as_it_was_hashed(
        tmp_path: Path, config: Config) -> None:
    """Page text gives a day and month; the year comes from the file's date. The worker
    reads the bytes again, but dates the page from the run's read, which its hash and
    the in-process parse go by."""
    page = tmp_path / "page.txt"
    page.write_text("Daily Papers\n\nbyAK and the research community\n\nNov 20\n\n"
                    "Sparse Mixture of Routed Experts for Protein Folding\n\n"
                    + "An abstract. " * 10 + "\n\n  • 2 authors\n·\nNov 20\n",
                    encoding="utf-8")
    hashed = datetime(2026, 11, 19, 12).timestamp()
    os.utime(page, (hashed, hashed))
    dump = read_dump(page, keep=False)
    here = parse_dump(read_dump(page), page_year=None).papers
    touched = datetime(2026, 11, 21, 12).timestamp()  # the year now reads 2026, not 2025
    os.utime(page, (touched, touched))

    with ReadAhead(page_year=None) as reader:
        parsed = reader.parsed(reader.submit(dump), lambda _: None)
        (batch,) = parsed.batches()
    assert [listing.paper.published for listing in batch] == [p.published for p in here]
    assert here[0].published is not None and here[0].published.year == 2025


@pytest.mark.parametrize("read_ahead", [True, False], ids=["worker", "in-process"])
def test_a_dump_copied_under_another_name_goes_in_once(tmp_path: Path, inbox: Path,
                                                       config: Config,
                                                       read_ahead: bool) -> None:
    """Both copies are hashed and handed to the worker before either goes in: the second is
    found at its turn, and what the worker made of it is not taken for the next dump."""
    seeds = sorted(inbox.glob("*.txt"))
    shutil.copy(seeds[0], inbox / "copy.txt")
    order = [seeds[0], inbox / "copy.txt", seeds[1]]
    with open_store(tmp_path / "store.db") as store:
        results = list(ingest_paths(store, config, order, NOW, read_ahead=read_ahead))
        assert [r.status for r in results] == ["ingested", "skipped", "ingested"]
        assert [r.papers for r in results] == [
            len(parse_dump(read_dump(p), page_year=2024).papers) if r.status == "ingested"
            else 0 for p, r in zip(order, results, strict=True)]
        assert store.status().dumps == 2


def test_a_worker_killed_mid_batch_fails_its_dump_and_the_next_goes_in(
        tmp_path: Path, inbox: Path, config: Config) -> None:
    """Each batch is bigger than a pipe holds, so a worker the run is not reading from
    waits half-way through writing one. Killed there, it leaves half a message: the run
    fails the dump it was on and hands the next one, already handed over, to a new
    worker."""
    big = tmp_path / "a-big.txt"
    big.write_text("Daily Papers\n\nbyAK and the research community\n\nNov 20\n\n" + "".join(
        f"Paper number {n}\n\n{'An abstract of many words. ' * 25}{n}\n\n"
        for n in range(10 * BATCH)), encoding="utf-8")
    seed = sorted(inbox.glob("*.txt"))[0]

    @contextmanager
    def kill_at_the_first_batch(label: str, total: int) -> Iterator[OnBytes]:
        def on_bytes(_: int) -> None:
            if label == f"ingesting {big.name}" and _workers():
                time.sleep(1)  # the worker fills the pipe and waits in mid-message
                (worker,) = _workers()
                os.kill(worker.pid, signal.SIGKILL)
                worker.join()
        yield on_bytes

    results: list[DumpResult] = []

    def ingest() -> None:
        with open_store(tmp_path / "store.db") as store:
            results.extend(ingest_paths(store, config, [big, seed], NOW,
                                        kill_at_the_first_batch, read_ahead=True))

    run = threading.Thread(target=ingest, daemon=True)
    run.start()
    run.join(timeout=60)
    assert not run.is_alive(), "the run waits for ever on a dead worker"
    assert [r.status for r in results] == ["failed", "ingested"]
    assert results[0].error == (f"{big}: the parsing process stopped (exit code -9); the "
                                "dump is read again on the next run")
    with open_store(tmp_path / "store.db") as store:
        assert store.status().papers == results[1].papers


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
                      datetime(2026, 3, 10), stall, read_ahead=True))
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


_BLOCKED_RUN = """
import signal, sys, threading
from datetime import datetime
from pathlib import Path
from digest.config import Config
from digest.pipeline import ingest_paths
from digest.store import open_store

def run():
    # As the daemon's run thread: SIGINT and SIGTERM are for its signal thread only.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    state = Path(sys.argv[1])
    with open_store(state / "digest.db") as store:
        results = list(ingest_paths(store, Config(state_dir=state, page_year=2024),
                                    [Path(sys.argv[2])], datetime(2026, 3, 10),
                                    read_ahead=True))
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    print(results[0].status, sorted(s.name for s in blocked))

thread = threading.Thread(target=run)
thread.start()
thread.join()
"""


def test_starting_a_worker_keeps_the_run_threads_signals_blocked(tmp_path: Path,
                                                                 seeds: list[Path]) -> None:
    """multiprocessing unblocks SIGINT and SIGTERM in the thread that first starts its
    helpers; in the daemon that thread is a run's, which must leave them to the signal
    thread. A fresh interpreter, so that this run is the first to start them."""
    out = subprocess.run([sys.executable, "-c", _BLOCKED_RUN, str(tmp_path), str(seeds[0])],
                         capture_output=True, text=True, check=True).stdout
    assert out.split(maxsplit=1) == ["ingested", "['SIGINT', 'SIGTERM']\n"]
