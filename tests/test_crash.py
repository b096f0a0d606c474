"""Exactly once, under SIGKILL: `digest now` killed at random points over 20 runs against a
live SMTP server loses no paper and puts none in two editions."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from conftest import SAMPLES
from helpers import text_part, write_dump, write_toml
from smtp_servers import Recorder, SmtpServers

from digest.dumps import parse_dump, read_dump
from digest.identity import title_key
from digest.store import open_store

RUNS = 20
PAPERS_PER_DUMP = 4


def small_dumps(folder: Path) -> list[Path]:
    """RUNS small page dumps cut from the seeds; neighbours share a paper, as real dumps
    of consecutive days do."""
    papers = []
    for seed in sorted(SAMPLES.glob("*.txt")):
        papers.extend(parse_dump(read_dump(seed), page_year=2024).papers)
    dumps = []
    for n in range(RUNS):
        chunk = papers[n * (PAPERS_PER_DUMP - 1):n * (PAPERS_PER_DUMP - 1) + PAPERS_PER_DUMP]
        dumps.append(write_dump(folder / f"dump-{n:02}.txt",
                                [(p.title, p.abstract) for p in chunk]))
    return dumps


def listed_titles(text: str) -> list[str]:
    return [line[2:] for line in text.splitlines() if line.startswith("- ")]


def test_sigkill_at_random_points_loses_nothing_and_repeats_nothing(
        tmp_path: Path, smtp: SmtpServers) -> None:
    seed = int(os.environ.get("DIGEST_KILL_SEED", time.time_ns() % 100_000))
    rng = random.Random(seed)
    source = tmp_path / "source"
    source.mkdir()
    dumps = small_dumps(source)
    expected = {title_key(p.title) for d in dumps
                for p in parse_dump(read_dump(d), page_year=2024).papers}
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    digest = Path(sys.executable).parent / "digest"
    recorder = Recorder(reply_delay=0.02)
    killed = 0
    server = smtp.start(recorder)
    toml = write_toml(tmp_path, server.port, retries=1)
    command = [str(digest), "--config", str(toml), "now", "--inbox", str(inbox)]
    for dump in dumps:
        dump.rename(inbox / dump.name)
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, 0.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait(timeout=30)
    final = subprocess.run(command, capture_output=True, text=True, timeout=60)
    where = f"(seed {seed}, {killed} of {RUNS} runs killed)"
    assert final.returncode == 0, f"{final.stderr} {where}"

    with open_store(tmp_path / "state" / "digest.db") as store:
        status = store.status()
        editions = store.editions()
        stored = {e.message_id: {title_key(p.title) for _, p in store.edition_papers(e.id)}
                  for e in editions}
    assert (status.undelivered, status.pending_editions) == (0, 0), where
    assert {e.status for e in editions} == {"delivered"}, where

    # What the reader got: messages by Message-ID; a repeat is the same message again.
    received: dict[str, list[str]] = defaultdict(list)
    for message in recorder.messages:
        received[message["Message-ID"]].append(text_part(message))
    assert set(received) == set(stored), where
    assert all(len(set(texts)) == 1 for texts in received.values()), where
    mailed = [{title_key(t) for t in listed_titles(texts[0])} for texts in received.values()]
    assert sum(len(m) for m in mailed) == len(set().union(*mailed)), f"a paper twice {where}"
    assert set().union(*mailed) == expected, f"a paper lost {where}"
    assert all(mailed_set in stored.values() for mailed_set in mailed), where
    repeats = len(recorder.messages) - len(received)
    print(f"\n{RUNS} runs, {killed} killed, {len(stored)} editions, {len(expected)} papers, "
          f"{repeats} message(s) repeated under the same Message-ID (seed {seed})")
