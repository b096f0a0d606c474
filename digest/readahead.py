"""Reading ahead: a worker process parses, screens and folds the dumps of a run while this
process matches and writes the one before.

Parsing a dump and folding its titles cost about as much as matching and writing them, and
Python runs one thread at a time: a second process lets the two halves overlap on a
machine with two cores. The worker runs at most a few batches ahead of the store, so
memory stays bounded however big the dump, and a dump still goes into the store in one
transaction that any error in it rolls back.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

from digest.dumps import DumpFile, OnBytes, Screen, parse_records
from digest.errors import DumpError
from digest.identity import Listing, Spelling
from digest.model import Paper

# A batch is this many listings, or fewer that hold this many characters of text: the
# worker runs at most _AHEAD batches ahead of the store, a few tens of MB at most.
BATCH = 500
_BATCH_CHARS = 1 << 20
_AHEAD = 32
# How often a wait for the worker checks that it is still running, in seconds.
_POLL = 0.5
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
    # The worker it was handed to: the run starts another when one stops.
    worker: int
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
            if rows:
                yield [Listing(Paper(*row[:_SPELLING_AT]),
                               Spelling(row[0], *row[_SPELLING_AT:])) for row in rows]
            if kind == "done":
                self.warnings = tuple(payload[2])
                return


class ReadAhead:
    """The worker process of one run, started when the first dump is handed to it."""

    def __init__(self, page_year: int | None) -> None:
        self._page_year = page_year
        self._process: Any = None
        self._jobs: Any = None
        self._results: Any = None
        self._next_id = 0
        self._workers = 0
        # How each worker that is gone ended: what a dump handed to it reports.
        self._exit_codes: dict[int, int | None] = {}

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def submit(self, dump: DumpFile) -> Job:
        """Hand a dump to the worker; it starts on it once the dumps before it are parsed."""
        if self._process is None or not self._process.is_alive():
            self._start()  # the jobs handed to a worker that stopped fail when taken
        job = Job(self._next_id, self._workers, str(dump.path), dump.size, dump.sha256)
        self._next_id += 1
        self._jobs.put((job.id, dump))
        return job

    def parsed(self, job: Job, on_bytes: OnBytes) -> Parsed:
        """Wait for the worker to recognise the dump's format; raises the DumpError that
        fails it before any listing (unreadable, unknown format, invalid JSON)."""
        kind, payload = self.receive(job)
        return Parsed(self, job, payload, on_bytes)

    def receive(self, job: Job) -> tuple[str, Any]:
        """The worker's next message about a job; messages about jobs given up on (a dump
        found to be in the store already) are dropped."""
        if job.worker != self._workers or self._process is None:
            raise _stopped(job, self._exit_codes.get(job.worker))
        while True:
            try:
                job_id, kind, payload = self._results.get(timeout=_POLL)
            except queue.Empty:
                if not self._process.is_alive():
                    self.close()  # a later dump gets a new worker
                    raise _stopped(job, self._exit_codes[job.worker]) from None
                continue
            if job_id < job.id:
                continue
            if kind == "error":
                path, message, line = payload
                raise DumpError(path, message, line=line)
            return kind, payload

    def close(self) -> None:
        """Stop the worker: at once, since whatever it still has queued is given up."""
        if self._process is None:
            return
        self._process.terminate()
        self._process.join()
        self._exit_codes[self._workers] = self._process.exitcode
        for channel in (self._jobs, self._results):
            channel.cancel_join_thread()
            channel.close()
        self._process = self._jobs = self._results = None

    def _start(self) -> None:
        self.close()
        jobs, results = _CONTEXT.Queue(), _CONTEXT.Queue(_AHEAD)
        process = _CONTEXT.Process(target=_work, name="digest-readahead", daemon=True,
                                   args=(jobs, results, self._page_year))
        with _main_module_hidden():
            process.start()
        self._process, self._jobs, self._results = process, jobs, results
        self._workers += 1


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


def _stopped(job: Job, code: int | None) -> DumpError:
    how = f" (exit code {code})" if code is not None else ""
    return DumpError(job.path, f"the parsing process stopped{how}; the dump is read again "
                     "on the next run")


def _work(jobs: Any, results: Any, page_year: int | None) -> None:
    """The worker: parse each dump handed over, in order, until the run stops it."""
    # Ctrl-C stops the run, and the run stops its worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        job_id, dump = _waiting(jobs.get)
        try:
            _parse(job_id, dump, page_year, results)
        except DumpError as exc:
            _waiting(results.put, (job_id, "error", (exc.path, exc.message, exc.line)))
        # Anything else is a bug: the worker dies with its traceback on stderr, and the
        # run fails the dumps it held (ReadAhead.receive).


def _parse(job_id: int, dump: DumpFile, page_year: int | None, results: Any) -> None:
    read = 0

    def on_bytes(count: int) -> None:
        nonlocal read
        read += count

    records = parse_records(dump, page_year=page_year, on_bytes=on_bytes)
    _waiting(results.put, (job_id, "format", records.format))
    screen = Screen(str(dump.path))
    rows: list[tuple[Any, ...]] = []
    chars = 0
    for paper in screen.papers_of(records.items):
        rows.append((*_PAPER_FIELDS(paper), *Spelling.of(paper.title)[1:]))
        chars += len(paper.title) + len(paper.abstract)
        if len(rows) == BATCH or chars >= _BATCH_CHARS:
            _waiting(results.put, (job_id, "batch", (rows, read)))
            rows, read, chars = [], 0, 0
    _waiting(results.put, (job_id, "done", (rows, read, screen.warnings)))


def _waiting(call: Callable[..., Any], *args: Any) -> Any:
    """A queue's get or put, waited on while the run that started this worker lives: a
    run killed outright (SIGKILL, or SIGTERM, which Python does not catch) cannot stop its
    worker, which would otherwise wait on a full or empty queue for ever."""
    while True:
        try:
            return call(*args, timeout=_POLL)
        except (queue.Empty, queue.Full):
            parent = multiprocessing.parent_process()
            if parent is not None and not parent.is_alive():
                os._exit(0)
