"""The real `digest daemon` and `digest now` in subprocesses, as systemd and cron run them:
the scheduler, the run lock, signals and catch-up on real files. Each takes a few seconds."""

from __future__ import annotations

import configparser
import json
import queue
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import write_toml
from smtp_servers import Recorder, SmtpServers
from stores import as_version_8

from digest.cli import main
from digest.config import Config, config_from_dict
from digest.pipeline import run_lock
from digest.store import SCHEMA_VERSION, open_store

DIGEST = str(Path(sys.executable).parent / "digest")


class Daemon:
    """A `digest daemon` subprocess whose log lines are read as they come."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.state = tmp_path / "state"
        self.proc = subprocess.Popen(
            [DIGEST, "--config", str(tmp_path / "digest.toml"), "--state-dir",
             str(self.state), "daemon", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 15) -> str:
        """The first log line (from now on) holding `text`; fails the test after timeout."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.log.append(line)
            if text in line:
                return line
        raise AssertionError(f"no log line with {text!r} in {timeout} s:\n" +
                             "".join(self.log))

    def stop(self, signum: int | None = signal.SIGTERM) -> int:
        """Send the signal (None: none, it was sent already) and wait for the exit code."""
        if signum is not None:
            self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
            code = None
        while not self.lines.empty():
            self.log.append(self.lines.get())
        assert code is not None, "still running 15 s after SIGTERM:\n" + "".join(self.log)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for d in started:
        d.kill()


def _toml(tmp_path: Path, **settings: object) -> None:
    lines = ["inbox_settle = 0.2", "lock_timeout = 20", "page_year = 2024"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    (tmp_path / "digest.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_daemon_picks_up_a_dropped_dump_and_stops_cleanly_on_sigterm(
        tmp_path: Path, seeds: list[Path], daemons: list[Daemon], signum: int) -> None:
    _toml(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    daemons.append(d := Daemon(tmp_path, "--interval", "1", "--inbox", str(inbox)))
    d.wait_for("digest daemon started: every 1 s")
    shutil.copy(seeds[0], inbox / seeds[0].name)
    d.wait_for("edition #1: 100 papers")
    assert (d.state / "digests" / "edition-1.html").is_file()
    assert d.stop(signum) == 0
    assert "digest daemon stopped" in d.log[-1]
    assert "Traceback" not in "".join(d.log)


def test_sigterm_lets_the_run_in_flight_finish(tmp_path: Path, inbox: Path,
                                               daemons: list[Daemon]) -> None:
    _toml(tmp_path)
    config = Config(state_dir=tmp_path / "state", lock_timeout=5)
    with run_lock(config):
        daemons.append(d := Daemon(tmp_path, "--interval", "1", "--inbox", str(inbox)))
        d.wait_for("waiting up to 20 s for another digest run")
        d.proc.send_signal(signal.SIGTERM)
        d.wait_for("SIGTERM: finishing any run in flight")
        assert d.proc.poll() is None  # still running: its run waits for our lock
    d.wait_for("edition #1: 354 papers")
    assert d.stop(None) == 0
    assert "digest daemon stopped" in d.log[-1]


def test_a_second_signal_stops_at_once(tmp_path: Path, inbox: Path,
                                       daemons: list[Daemon]) -> None:
    _toml(tmp_path)
    with run_lock(Config(state_dir=tmp_path / "state")):
        daemons.append(d := Daemon(tmp_path, "--interval", "1", "--inbox", str(inbox)))
        d.wait_for("waiting up to 20 s for another digest run")
        d.proc.send_signal(signal.SIGINT)
        d.wait_for("SIGINT: finishing any run in flight")
        assert d.stop(signal.SIGINT) == 1
    assert "SIGINT again: stopping now" in d.log[-1]
    with open_store(tmp_path / "state" / "digest.db") as store:
        assert store.status().editions == 0


def test_a_slot_missed_while_down_runs_once_at_start_up(tmp_path: Path, inbox: Path,
                                                        daemons: list[Daemon]) -> None:
    _toml(tmp_path, schedule="0 7 * * *", timezone="Europe/Paris")
    with open_store(tmp_path / "state" / "digest.db") as store:
        # The daemon last watched this store three days ago; at least one 07:00 passed.
        store.schedule_covered_until(datetime.now(UTC) - timedelta(days=3))
    daemons.append(d := Daemon(tmp_path, "--inbox", str(inbox)))
    d.wait_for("catching up the slot of")
    d.wait_for("edition #1: 354 papers")
    d.wait_for("next run at")
    assert d.stop() == 0
    # Started again, nothing is missed: no catch-up, no run, just the wait for 07:00.
    daemons.append(again := Daemon(tmp_path, "--inbox", str(inbox)))
    again.wait_for("next run at")
    assert again.stop() == 0
    assert not any("catching up" in line or "run:" in line for line in again.log)


def _now(tmp_path: Path, inbox: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [DIGEST, "--config", str(tmp_path / "digest.toml"), "--state-dir",
         str(tmp_path / "state"), "now", "--inbox", str(inbox), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)


def test_two_digest_now_at_the_same_moment_make_one_edition(tmp_path: Path,
                                                            inbox: Path) -> None:
    _toml(tmp_path)
    procs = [_now(tmp_path, inbox), _now(tmp_path, inbox)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    editions = [json.loads(out)["edition"] for out, _ in outs]
    assert sorted(e["papers"] if e else 0 for e in editions) == [0, 354]
    with sqlite3.connect(tmp_path / "state" / "digest.db") as db:
        assert db.execute("SELECT COUNT(*) FROM editions").fetchone() == (1,)
        assert db.execute("SELECT COUNT(*) FROM edition_papers").fetchone() == (354,)


@pytest.mark.parametrize("command", [["now", "--inbox"], ["ingest"]])
def test_a_run_that_waits_past_the_bound_exits_with_one_line(
        tmp_path: Path, inbox: Path, command: list[str]) -> None:
    (tmp_path / "digest.toml").write_text("lock_timeout = 1\n", encoding="utf-8")
    state = tmp_path / "state"
    with run_lock(Config(state_dir=state)):
        result = CliRunner().invoke(main, ["--config", str(tmp_path / "digest.toml"),
                                           "--state-dir", str(state), *command, str(inbox)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"digest: error: {state / 'digest.lock'}: another digest run is in progress "
        "(waited 1 s) (try again when it has finished, or raise lock_timeout in digest.toml)"]
    assert not (state / "digests").exists()


def test_a_bad_schedule_stops_the_daemon_before_it_starts(tmp_path: Path) -> None:
    _toml(tmp_path, schedule="0 7 * * 1-9")
    proc = subprocess.run([DIGEST, "--config", str(tmp_path / "digest.toml"), "daemon"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"digest: error: {tmp_path / 'digest.toml'}: schedule '0 7 * * 1-9': day-of-week "
        "'9' is outside 0-7 (check digest.toml (see README.md, 'Configuration'))"]


def test_cron_and_interval_together_are_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--state-dir", str(tmp_path), "daemon", "--cron",
                                       "0 7 * * *", "--interval", "5"])
    assert result.exit_code == 2
    assert "give --cron or --interval, not both" in result.stderr


def test_a_store_from_before_the_schedule_migrates_with_its_papers(
        tmp_path: Path, seeds: list[Path]) -> None:
    path = tmp_path / "state" / "digest.db"
    CliRunner().invoke(main, ["--state-dir", str(tmp_path / "state"), "ingest", str(seeds[0])])
    as_version_8(path)
    with sqlite3.connect(path) as db:  # back to version 2, before the schedule tables
        for table in ("schedule_slots", "daemon_state", "paper_blocks", "merges",
                      "block_filter", "recent_papers", "recent_state"):
            db.execute(f"DROP TABLE {table}")
        db.execute("PRAGMA user_version = 2")
    with open_store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.status().papers == 100
        fire = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
        assert store.claim_slot("2026-11-25T07:00:00", fire, fire)


README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_configuration_example_is_valid(tmp_path: Path) -> None:
    block = re.search(r"`digest.toml` \(all optional\):\n\n```toml\n(.*?)```",
                      README.read_text(encoding="utf-8"), re.S)
    assert block is not None
    config = config_from_dict(tomllib.loads(block[1]), source="README", base=tmp_path)
    assert (config.schedule, config.timezone) == ("0 7 * * 1-5", "Europe/Paris")


def test_the_systemd_unit_starts_the_daemon() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(README.parent / "contrib" / "paper-digest.service", encoding="utf-8")
    command = unit["Service"]["ExecStart"].split()
    assert Path(command[0]).name == "digest" and command[1:] == ["daemon"]
    assert unit["Service"]["KillSignal"] == "SIGTERM"
    assert CliRunner().invoke(main, [*command[1:], "--help"]).exit_code == 0


def test_quiet_logs_only_errors_naming_the_dump_and_verbose_adds_the_routine(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    _toml(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    bad = inbox / "notes.txt"
    bad.write_text("Shopping list\n\neggs\n", encoding="utf-8")
    daemons.append(quiet := Daemon(tmp_path, "--interval", "1", "--inbox", str(inbox), "-q"))
    line = quiet.wait_for("ERROR")
    assert f"dump failed: {bad}: " in line
    assert quiet.stop() == 0
    assert not any(" INFO " in line for line in quiet.log)
    daemons.append(loud := Daemon(tmp_path, "--interval", "1", "--inbox", str(inbox), "-v"))
    loud.wait_for("ERROR digest.daemon: dump failed")
    # Polled again, the same bad file is not an error again: that would fill the log.
    loud.wait_for("DEBUG digest.daemon: dump failed")
    loud.wait_for("DEBUG digest.daemon: next run at")
    assert loud.stop() == 0
    assert sum(" ERROR " in line for line in loud.log) == 1


def test_the_daemon_mails_with_the_sender_digest_now_uses(
        tmp_path: Path, inbox: Path, smtp: SmtpServers, daemons: list[Daemon]) -> None:
    recorder = Recorder()
    server = smtp.start(recorder)
    write_toml(tmp_path, server.port)
    daemons.append(d := Daemon(tmp_path, "--interval", "1", "--inbox", str(inbox)))
    d.wait_for("edition #1: 354 papers")
    assert d.stop() == 0
    (message,) = recorder.messages
    assert message["Subject"].startswith("Paper digest: 354 new papers in ")
    assert message["To"] == "reader@example.org"


def test_a_bad_cron_option_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--state-dir", str(tmp_path), "daemon", "--cron",
                                       "0 7 * * 8"])
    assert result.exit_code == 2
    assert "Invalid value for '--cron': schedule '0 7 * * 8': day-of-week '8' is outside " \
        "0-7" in result.stderr
