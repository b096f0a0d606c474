"""Shared fixtures: the real seed dumps, a real store file, a state dir per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from smtp_servers import SmtpServers

from digest.config import Config
from digest.store import Store

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def seeds() -> list[Path]:
    """The five real dumps shipped as samples, in name order."""
    return sorted(SAMPLES.glob("*.txt"))


@pytest.fixture
def inbox(tmp_path: Path, seeds: list[Path]) -> Path:
    """A folder holding copies of the seed dumps, as a user's inbox would."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    for seed in seeds:
        shutil.copy(seed, folder / seed.name)
    return folder


@pytest.fixture
def config(tmp_path: Path, inbox: Path) -> Config:
    return Config(state_dir=tmp_path / "state", inbox=inbox, page_year=2024, lock_timeout=5)


@pytest.fixture
def smtp() -> Iterator[SmtpServers]:
    """Real SMTP servers (aiosmtpd) on 127.0.0.1: `smtp.start(Recorder(), ...)`."""
    servers = SmtpServers()
    yield servers
    servers.stop_all()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store" / "digest.db")
    yield s
    s.close()
