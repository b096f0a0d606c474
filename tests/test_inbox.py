"""The inbox: which files a run takes, and which wait because they are still being written."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from digest.config import Config
from digest.pipeline import inbox_files, run_once


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_file_still_growing_waits_for_the_next_run(tmp_path: Path) -> None:
    done = tmp_path / "done.txt"
    done.write_text("finished\n", encoding="utf-8")
    _age(done, 60)
    growing = tmp_path / "growing.txt"
    growing.write_text("first line\n", encoding="utf-8")
    stop = threading.Event()

    def write() -> None:
        with growing.open("a", encoding="utf-8") as out:
            while not stop.is_set():
                out.write("more\n")
                out.flush()
                time.sleep(0.02)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert inbox_files([tmp_path], settle=0.3) == [done]
    finally:
        stop.set()
        writer.join()
    _age(growing, 1)
    assert inbox_files([tmp_path], settle=0.3) == [done, growing]


def test_a_fresh_file_that_stays_put_is_taken_in_the_same_run(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.txt"
    fresh.write_text("complete\n", encoding="utf-8")
    started = time.monotonic()
    assert inbox_files([tmp_path], settle=0.3) == [fresh]
    # It waited for the file to be 0.3 s old, no longer.
    assert 0.1 < time.monotonic() - started < 2


def test_partial_downloads_and_dot_files_wait(tmp_path: Path) -> None:
    names = ["a.txt", ".b.txt", "c.txt.part", "d.crdownload", "e.txt~", "f.tmp", "g.html"]
    for name in names:
        (tmp_path / name).write_text("x", encoding="utf-8")
    assert [p.name for p in inbox_files([tmp_path])] == ["a.txt", "g.html"]


def test_a_named_file_that_is_missing_is_still_reported(tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    config = Config(state_dir=tmp_path / "state", inbox_settle=0.2)
    report = run_once(config, inbox=[missing])
    assert [(d.path, d.status) for d in report.dumps] == [(str(missing), "failed")]
