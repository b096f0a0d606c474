"""Reading ahead: a worker process parses, screens and folds the dumps of a run while this
process matches and writes the one before.

Parsing a dump and folding its titles cost about as much as matching and writing them, and
Python runs one thread at a time: a second process lets the two halves overlap on a
machine with two cores. The worker runs at most a few batches ahead of the store, so
memory stays bounded however big the dump, and a dump still goes into the store in one
transaction that any error in it rolls back. A run with one core, or with less to parse
than starting a worker costs, parses in its own process (pipeline._worth_a_worker).

The two talk over a pipe each way, and each end is held by one process only: when either
process dies, the other reads the end of its pipe at once (a run waiting on a worker that
was killed half-way through a message would otherwise wait for ever).
"""

from __future__ import annotations

import fcntl
import gc
import multiprocessing
import os
import queue
import signal
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, fields
from multiprocessing.connection import Connection
from operator import attrgetter
from typing import Any

from digest.collector import THRESHOLD
from digest.dumps import DumpFile, OnBytes, Screen, held_again, parse_records
from digest.errors import DumpError
from digest.identity import Listing, Spelling
from digest.model import Paper

# A batch is this many listings, or fewer that hold this many characters of text: the
# worker runs at most _AHEAD batches ahead of the store, a few tens of MB at most.
BATCH = 500
_BATCH_CHARS = 1 << 20
_AHEAD = 32
# A listing crosses the pipe as a flat tuple, not as objects: a frozen dataclass pickles
# several times slower than its fields.
_PAPER_FIELDS = attrgetter(*(f.name for f in fields(Paper)))
_SPELLING_AT = len(fields(Paper))
# Workers are forked from a server process that has imported only this module, not from
# the run: a child may not inherit the run's open SQLite connection, nor (in the daemon)
# its scheduler threads.
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload([__name__])


@dataclass(frozen=True)
class Job:
    """A dump handed to the worker, to be taken back in the order it was handed over."""

    id: int
    path: str
    size: int
    sha256: str


class Parsed:
    """One dump as the worker parses it: its format, then its listings a batch at a time,
    then the warnings of the records it skipped."""

    def __init__(self, reader: ReadAhead, job: Job, fmt: str, on_bytes: OnBytes) -> None:
        self._reader, self._job, self.format, self._on_bytes = reader, job, fmt, on_bytes
        self.warnings: tuple[str, ...] = ()

    def batches(self) -> Iterator[list[Listing]]:
        """The listings, in the dump's order; raises the DumpError that fails the dump
        (too many bad records, a file that changed while it was read) where it arises."""
        while True:
            kind, payload = self._reader.receive(self._job)
            rows, read = payload[0], payload[1]
            self._on_bytes(read)
            if rows and self._reader.worker:
                yield [Listing(Paper(*row[:_SPELLING_AT]),
                               Spelling(row[0], *row[_SPELLING_AT:])) for row in rows]
            elif rows:
                yield rows
            if kind == "done":
                self._reader.taken(self._job)
                self.warnings = tuple(payload[2])
                return


class ReadAhead:
    """The worker process of one run, started when the first dump is handed to it, and
    started again if it stops: the dump it was on fails, the ones after it go to the new
    worker. Without a worker (`worker=False`: one core, or too little to parse to repay
    starting one) each dump is parsed here when the run takes it, into the same messages."""

    def __init__(self, page_year: int | None, *, worker: bool = True) -> None:
        self._page_year = page_year
        self.worker = worker
        # In-process: the messages of the dump being taken, made as they are asked for.
        self._inline: tuple[int, Iterator[tuple[int, str, Any]]] | None = None
        self._process: Any = None
        self._jobs: Connection | None = None
        self._results: Connection | None = None
        self._next_id = 0
        # The dumps handed over and not taken back yet, in order: what a new worker gets.
        self._handed: dict[int, DumpFile] = {}

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, dump: DumpFile) -> Job:
        """Hand a dump to the worker; it starts on it once the dumps before it are parsed.
        A worker is handed the dump without its bytes (read_dump's `keep`) and reads them
        again itself: reading them from the page cache costs the worker less than the
        pipe cost the run, which was a tenth of the run's time."""
        job = Job(self._next_id, str(dump.path), dump.size, dump.sha256)
        self._next_id += 1
        self._handed[job.id] = dump
        if self.worker:
            self._send(job.id, dump)
        return job

    def parsed(self, job: Job, on_bytes: OnBytes) -> Parsed:
        """Wait for the worker to recognise the dump's format; raises the DumpError that
        fails it before any listing (unreadable, unknown format, invalid JSON)."""
        kind, payload = self.receive(job)
        return Parsed(self, job, payload, on_bytes)

    def receive(self, job: Job) -> tuple[str, Any]:
        """The worker's next message about a job; messages about jobs given up on (a dump
        found to be in the store already) are dropped."""
        while True:
            try:
                job_id, kind, payload = self._next_message(job)
            except (EOFError, OSError):
                raise self._worker_stopped(job) from None
            if job_id != job.id:
                continue
            if kind == "error":
                self.taken(job)
                path, message, line = payload
                raise DumpError(path, message, line=line)
            return kind, payload

    def _next_message(self, job: Job) -> tuple[int, str, Any]:
        if self.worker:
            assert self._results is not None  # a job was handed over: a worker runs
            message: tuple[int, str, Any] = self._results.recv()
            return message
        if self._inline is None or self._inline[0] != job.id:
            self._inline = job.id, _messages(job.id, self._handed[job.id], self._page_year,
                                             flat=False)
        return next(self._inline[1])

    def taken(self, job: Job) -> None:
        """The run has all it will take of a job: a new worker need not parse it again."""
        self._handed.pop(job.id, None)

    def close(self) -> None:
        """Stop the worker: the end of its jobs ends it (terminated if it has not exited
        within _EXIT_WAIT); whatever it still has queued is given up."""
        if self._process is None:
            return
        assert self._jobs is not None and self._results is not None
        self._jobs.close()  # the worker reads the end of its jobs and exits
        self._results.close()
        self._process.join(timeout=_EXIT_WAIT)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._process = self._jobs = self._results = None

    def _worker_stopped(self, job: Job) -> DumpError:
        """The worker died (killed, out of memory, a bug): the dump it was on fails, and
        the dumps after it go to a new worker."""
        self._process.join()  # its end of the pipe is closed: it is gone or going
        code = self._process.exitcode
        self.close()
        self.taken(job)
        for job_id, dump in list(self._handed.items()):
            self._send(job_id, dump)
        return DumpError(job.path, f"the parsing process stopped (exit code {code}); the "
                         "dump is read again on the next run")

    def _send(self, job_id: int, dump: DumpFile) -> None:
        if self._process is None:
            self._start()
        assert self._jobs is not None
        # A worker that is gone is found out by the next wait for it, which starts another.
        with suppress(OSError):
            self._jobs.send((job_id, dump))

    def _start(self) -> None:
        jobs_in, jobs = _CONTEXT.Pipe(duplex=False)
        results, results_out = _CONTEXT.Pipe(duplex=False)
        _widen(results)
        process = _CONTEXT.Process(target=_work, name="digest-readahead", daemon=True,
                                   args=(jobs_in, results_out, self._page_year))
        with _main_module_hidden(), _signal_mask_kept():
            process.start()
        # Only the worker holds its ends: its death is the end of the results pipe here.
        jobs_in.close()
        results_out.close()
        self._process, self._jobs, self._results = process, jobs, results


def _widen(pipe: Connection) -> None:
    """Make room in the pipe for a whole batch (a few hundred KB): in the default 64 KB
    the two processes take turns at every 64 KB, and the run spent about 1 us a listing
    reading. Linux only, and up to the system's limit; elsewhere the pipe stays as it is."""
    with suppress(AttributeError, OSError):
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)


_PIPE_BYTES = 1 << 20
# How long a worker told to stop may take to exit before it is terminated, in seconds.
_EXIT_WAIT = 5.0


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """multiprocessing runs the program's main module again in a new worker, so that what
    it pickled from there unpickles: for the `digest` command that is the whole CLI,
    a tenth of a second a run. The worker needs nothing from it."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


@contextmanager
def _signal_mask_kept() -> Iterator[None]:
    """multiprocessing unblocks SIGINT and SIGTERM in the thread that first starts its
    helper processes; the daemon's run thread keeps them blocked, for its signal thread
    to take (daemon.py)."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _work(jobs: Connection, results: Connection, page_year: int | None) -> None:
    """The worker: parse each dump handed over, in order. A thread takes the dumps in as
    they come, so that the run never waits to hand one over, and another sends the
    listings out, so that parsing goes on while a batch is in the pipe. Either ends the
    process when its pipe ends: the run closed it, or the run is gone."""
    # Ctrl-C stops the run, and the run stops its worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.set_threshold(THRESHOLD)  # it only parses: see collector.py
    inbox: queue.SimpleQueue[tuple[int, DumpFile]] = queue.SimpleQueue()
    outbox: queue.Queue[tuple[int, str, Any]] = queue.Queue(_AHEAD)
    threading.Thread(target=_take_in, args=(jobs, inbox), daemon=True).start()
    threading.Thread(target=_send_out, args=(outbox, results), daemon=True).start()
    while True:
        job_id, dump = inbox.get()
        # A bug raises out of here: the worker dies with its traceback on stderr, and the
        # run fails the dump it was on.
        for message in _messages(job_id, dump, page_year, flat=True):
            outbox.put(message)


def _take_in(jobs: Connection, inbox: queue.SimpleQueue[tuple[int, DumpFile]]) -> None:
    try:
        while True:
            inbox.put(jobs.recv())
    except (EOFError, OSError):
        os._exit(0)


def _send_out(outbox: queue.Queue[tuple[int, str, Any]], results: Connection) -> None:
    try:
        while True:
            results.send(outbox.get())
    except OSError:
        os._exit(0)


def _messages(job_id: int, dump: DumpFile, page_year: int | None, *,
              flat: bool) -> Iterator[tuple[int, str, Any]]:
    """What the run is told of one dump: its format, its listings a batch at a time, and
    the warnings at the end; or the error that fails it, as the last message. Listings
    are `flat` tuples to cross a pipe, else ready Listing objects."""
    try:
        yield from _parse(job_id, dump, page_year, flat)
    except DumpError as exc:
        yield job_id, "error", (exc.path, exc.message, exc.line)


def _parse(job_id: int, dump: DumpFile, page_year: int | None,
           flat: bool) -> Iterator[tuple[int, str, Any]]:
    read = 0

    def on_bytes(count: int) -> None:
        nonlocal read
        read += count

    records = parse_records(held_again(dump), page_year=page_year, on_bytes=on_bytes)
    yield job_id, "format", records.format
    screen = Screen(str(dump.path))
    rows: list[Any] = []
    chars = 0
    for paper in screen.papers_of(records.items):
        rows.append((*_PAPER_FIELDS(paper), *Spelling.of(paper.title)[1:]) if flat
                    else Listing.of(paper))
        chars += len(paper.title) + len(paper.abstract) + sum(map(len, paper.authors))
        if len(rows) == BATCH or chars >= _BATCH_CHARS:
            yield job_id, "batch", (rows, read)
            rows, read, chars = [], 0, 0
    yield job_id, "done", (rows, read, screen.warnings)
