"""The inbox walk and files that change under the run: symlink loops, unreadable folders,
named pipes, files that vanish, turn into folders, change while being read, or are still
being written (those wait for the next run).

Tests run as root here, and root reads a chmod 000 folder anyway. The unreadable-folder
test therefore runs the installed `digest` with the DAC override capabilities dropped from
its bounding set (util-linux `setpriv`), which makes the kernel apply the mode bits to root
as to anyone; as a normal user the mode bits alone do it.
"""

from __future__ import annotations

import json
import os
import shutil
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
from digest.dumps import OnBytes
from digest.errors import DumpError
from digest.pipeline import inbox_files, ingest_file, ingest_paths, run_once
from digest.store import Store

NOW = datetime(2026, 3, 10, 9, 0)


def _errors(entries: list[Path | DumpError]) -> list[str]:
    return [str(e) for e in entries if isinstance(e, DumpError)]


def test_a_symlink_loop_is_reported_once_and_the_rest_is_walked(inbox: Path,
                                                                seeds: list[Path]) -> None:
    sub = inbox / "sub"
    sub.mkdir()
    shutil.copy(seeds[0], sub / "copy.txt")
    (sub / "back").symlink_to(inbox, target_is_directory=True)
    (inbox / "self").symlink_to(inbox / "self")
    entries = inbox_files([inbox])
    assert _errors(entries) == [
        f"{inbox / 'self'}: symlink loop: the link resolves to itself; not followed",
        f"{sub / 'back'}: symlink loop: it leads back to a folder that contains it; "
        "not followed"]
    files = [e for e in entries if isinstance(e, Path)]
    assert [f.name for f in files] == [s.name for s in seeds] + ["copy.txt"]


def test_a_broken_link_and_a_missing_root_are_named(tmp_path: Path, inbox: Path) -> None:
    (inbox / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    entries = inbox_files([inbox, tmp_path / "no-such-inbox"])
    assert _errors(entries) == [
        f"{inbox / 'gone.txt'}: broken symlink: its target does not exist",
        f"{tmp_path / 'no-such-inbox'}: no such file or folder"]


def _installed_digest() -> str:
    return str(Path(sys.executable).parent / "digest")


def _unprivileged(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot make a folder unreadable")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]


def test_an_unreadable_folder_fails_alone_and_the_rest_goes_in(tmp_path: Path, inbox: Path
                                                               ) -> None:
    locked = inbox / "locked"
    locked.mkdir()
    (locked / "secret.txt").write_text("x", encoding="utf-8")
    unreadable = inbox / "unreadable.txt"
    shutil.copy(sorted(inbox.glob("*.txt"))[0], unreadable)
    state = tmp_path / "state"
    locked.chmod(0)
    unreadable.chmod(0)
    try:
        proc = subprocess.run(
            _unprivileged([_installed_digest(), "--state-dir", str(state), "ingest",
                           str(inbox), "--year", "2024", "--json"]),
            capture_output=True, text=True, timeout=120)
    finally:
        locked.chmod(0o755)  # so that pytest can clean tmp_path up
        unreadable.chmod(0o644)
    assert proc.returncode == 1, proc.stderr
    dumps = {Path(d["path"]).name: d for d in json.loads(proc.stdout)["dumps"]}
    assert dumps["locked"]["error"] == (
        f"{locked}: cannot read this folder: Permission denied")
    assert dumps["unreadable.txt"]["error"] == (
        f"{unreadable}: cannot open: Permission denied")
    assert [d["status"] for n, d in dumps.items() if n.endswith(".txt")].count("ingested") == 5
    with sqlite3.connect(state / "digest.db") as db:
        failed = db.execute("SELECT path FROM dumps WHERE status = 'failed' ORDER BY path")
        assert [r[0] for r in failed] == [str(locked), str(unreadable)]


def test_files_that_vanish_or_turn_into_something_else_fail_alone(
        tmp_path: Path, inbox: Path, config: Config, store: Store) -> None:
    pipe = inbox / "pipe.txt"
    os.mkfifo(pipe)
    entries = inbox_files([inbox])
    seeds = sorted(inbox.glob("0*.txt"))
    seeds[1].unlink()  # deleted after the walk listed it
    seeds[2].unlink()
    seeds[2].mkdir()  # and a folder where a file was listed
    results = {Path(r.path).name: r for r in ingest_paths(store, config, entries, NOW)}
    assert results[seeds[1].name].error == (
        f"{seeds[1]}: no such file (it was moved or deleted during the run)")
    assert results[seeds[2].name].error == f"{seeds[2]}: not a regular file (a folder), not a dump"
    assert results["pipe.txt"].error == f"{pipe}: not a regular file (a named pipe), not a dump"
    assert [r.status for r in results.values()].count("ingested") == 3
    assert store.status().failed_dumps == 3


def test_a_dump_that_changes_while_streamed_fails_and_leaves_nothing(
        tmp_path: Path, config: Config, store: Store) -> None:
    dump = tmp_path / "snapshot.jsonl"
    record = {"id": "2401.00001", "submitter": "S", "title": "T", "abstract": "A " * 5000}
    with dump.open("w", encoding="utf-8") as out:
        for n in range(7_000):  # over 64 MB: streamed, not held
            out.write(json.dumps({**record, "id": f"24{n // 99999 + 1:02d}.{n % 99999:05d}",
                                  "title": f"Paper {n}"}) + "\n")
    seen: list[str] = []

    # The parsing worker reads ahead of the store, but by a few tens of MB at most: when
    # the store takes the first batch, the worker is well short of the end of 70 MB.
    @contextmanager
    def rewrite_mid_ingest(label: str, total: int) -> Iterator[OnBytes]:
        def on_bytes(n: int) -> None:
            if label.startswith("ingesting") and not seen:
                seen.append(label)
                with dump.open("r+b") as handle:  # another program rewrites the file
                    handle.seek(total - 200)
                    handle.write(b"X" * 10)
        yield on_bytes

    result = ingest_file(store, config, dump, NOW, rewrite_mid_ingest)
    assert seen == ["ingesting snapshot.jsonl"]
    assert result.status == "failed"
    assert result.error == (f"{dump}: the file changed while it was being read; it is read "
                            "again on the next run")
    assert store.status().papers == 0


# -- files still being written wait for the next run ---------------------------------

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
