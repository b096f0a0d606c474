"""The garbage collector while dumps go in (collector.py): at most once every THRESHOLD
new containers in a run and in its parsing worker, and as before once the run is over."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path

from digest.collector import THRESHOLD
from digest.config import Config
from digest.model import DumpResult
from digest.pipeline import inbox_files, ingest_paths
from digest.store import open_store

NOW = datetime(2026, 3, 10, 9, 0)


@contextmanager
def _threshold(first: int) -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(first, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def test_a_run_collects_garbage_less_often_while_it_ingests(tmp_path: Path, inbox: Path,
                                                            config: Config) -> None:
    before = gc.get_threshold()
    assert before[0] < THRESHOLD

    with open_store(tmp_path / "store.db") as store:
        results = ingest_paths(store, config, inbox_files([inbox]), NOW, read_ahead=False)
        try:
            assert next(results).status == "ingested"
            assert gc.get_threshold() == (THRESHOLD, *before[1:])
            assert [r.status for r in results] == ["ingested"] * 4
        finally:
            results.close()  # a failed assert must not leave the setting raised
    assert gc.get_threshold() == before


def test_runs_that_overlap_leave_the_setting_as_it_was(tmp_path: Path, inbox: Path,
                                                      config: Config) -> None:
    """Two runs in one process, the first to start ending first; and a program that
    turned automatic collection off keeps it off."""
    before = gc.get_threshold()
    seeds = inbox_files([inbox])
    with open_store(tmp_path / "one.db") as one, open_store(tmp_path / "two.db") as two:
        first = ingest_paths(one, config, seeds[:2], NOW, read_ahead=False)
        second = ingest_paths(two, config, seeds[2:], NOW, read_ahead=False)
        try:
            next(first), next(second)
            assert _drained(first) == 1
            assert gc.get_threshold()[0] == THRESHOLD  # the second run is still going
            assert _drained(second) == 2
        finally:
            first.close()
            second.close()
        assert gc.get_threshold() == before

        with _threshold(0):
            seen = [(r.status, gc.get_threshold()[0])
                    for r in ingest_paths(one, config, seeds, NOW, read_ahead=False)]
            assert seen == [("skipped", 0)] * 2 + [("ingested", 0)] * 3
            assert gc.get_threshold()[0] == 0


def _drained(results: Iterator[DumpResult]) -> int:
    return len([r for r in results if r.status == "ingested"])


# A parsing worker (readahead._work) whose parsing is replaced by a report of its
# collector's setting, sent back over its pipe as a dump's last message.
_WORKER = """
import gc, sys
from multiprocessing.connection import Connection
from digest import readahead

readahead._messages = lambda job_id, dump, page_year, flat: iter(
    [(job_id, "done", gc.get_threshold())])
readahead._work(Connection(int(sys.argv[1]), writable=False),
                Connection(int(sys.argv[2]), readable=False), 2024)
"""


def test_a_parsing_worker_collects_garbage_less_often_for_its_whole_life() -> None:
    jobs_in, jobs_out = os.pipe()
    results_in, results_out = os.pipe()
    worker = subprocess.Popen([sys.executable, "-c", _WORKER, str(jobs_in), str(results_out)],
                              pass_fds=(jobs_in, results_out))
    os.close(jobs_in)
    os.close(results_out)
    jobs, results = Connection(jobs_out, readable=False), Connection(results_in, writable=False)
    try:
        jobs.send((0, None))
        job_id, kind, threshold = results.recv()
        assert (job_id, kind, threshold[0]) == (0, "done", THRESHOLD)
    finally:
        jobs.close()  # the end of its jobs ends it
        results.close()
        assert worker.wait(timeout=10) == 0
