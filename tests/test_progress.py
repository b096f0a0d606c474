"""The progress bar: drawn on a terminal for a big dump, silent with --quiet or when
stderr is not a terminal (cron, pipes). The installed command runs on a real pty."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def big_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An arXiv-format dump over the bar's 16 MB threshold."""
    path = tmp_path_factory.mktemp("big") / "snapshot.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for n in range(2_000):
            out.write(json.dumps({"id": f"2401.{n:05d}", "submitter": "S", "title": f"Paper {n}",
                                  "abstract": "Words. " * 1500}) + "\n")
    return path


def _run_on_a_terminal(tmp_path: Path, *args: str) -> tuple[int, str]:
    """Run the installed digest with stderr on a pseudo-terminal; return what it drew."""
    digest = str(Path(sys.executable).parent / "digest")
    master, slave = pty.openpty()
    proc = subprocess.Popen([digest, "--state-dir", str(tmp_path / "state"), *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    drawn = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the other end closed
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    return proc.wait(timeout=120), drawn.decode("utf-8", "replace")


def test_a_big_dump_draws_a_bar_on_a_terminal(tmp_path: Path, big_snapshot: Path) -> None:
    code, drawn = _run_on_a_terminal(tmp_path, "ingest", str(big_snapshot))
    assert code == 0
    assert "reading snapshot.jsonl" in drawn and "ingesting snapshot.jsonl" in drawn
    assert "100%" in drawn


def test_quiet_draws_nothing_on_a_terminal(tmp_path: Path, big_snapshot: Path) -> None:
    code, drawn = _run_on_a_terminal(tmp_path, "ingest", "--quiet", str(big_snapshot))
    assert (code, drawn) == (0, "")


def test_no_bar_when_stderr_is_not_a_terminal(tmp_path: Path, big_snapshot: Path) -> None:
    digest = str(Path(sys.executable).parent / "digest")
    proc = subprocess.run([digest, "--state-dir", str(tmp_path / "state"), "ingest",
                           str(big_snapshot)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert proc.stderr == ""
    assert proc.stdout.startswith(f"ingested {big_snapshot}: 2000 papers, 2000 new")
