import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from digest.model import Paper
from digest.store import SCHEMA_VERSION, Store

NOW = datetime(2025, 3, 1, 8, 0)


def test_a_new_store_is_at_the_current_schema_version(store: Store) -> None:
    assert store.schema_version == SCHEMA_VERSION


def test_one_paper_seen_in_two_dumps_is_one_paper_with_two_sightings(store: Store) -> None:
    store.ingest_dump("a" * 64, "one.txt", "test", [Paper("Attention Is All You Need", "x")],
                      NOW)
    counts = store.ingest_dump("b" * 64, "two.txt", "test",
                               [Paper("attention is all you need.", "x", upvotes=7)], NOW)
    assert (counts.papers, counts.new) == (1, 0)
    (paper,) = store.undelivered()
    assert (paper.dumps, paper.upvotes, paper.title) == (2, 7, "Attention Is All You Need")


def test_a_dump_is_recorded_by_content_hash(store: Store) -> None:
    store.ingest_dump("c" * 64, "one.txt", "test", [Paper("T", "x")], NOW)
    assert store.dump_ingested("c" * 64)
    assert not store.dump_ingested("d" * 64)


def test_a_dump_that_fails_half_way_leaves_nothing(store: Store) -> None:
    def papers():
        yield Paper("First", "x")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        store.ingest_dump("e" * 64, "bad.txt", "test", papers(), NOW)
    assert store.status().papers == 0
    assert not store.dump_ingested("e" * 64)


def test_an_edition_claims_its_papers_once(store: Store) -> None:
    store.ingest_dump("f" * 64, "one.txt", "test", [Paper("A", "x"), Paper("B", "y")], NOW)
    ids = [p.id for p in store.undelivered()]
    edition = store.create_edition([(ids[0], "T"), (ids[1], "T")], NOW)
    assert store.undelivered() == []
    assert store.pending_editions() == [(edition, NOW)]
    with pytest.raises(sqlite3.IntegrityError):
        store.create_edition([(ids[0], "T")], NOW)
    store.mark_delivered(edition, NOW)
    assert store.pending_editions() == []
    assert store.status().editions == 1


def test_a_store_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    from digest.errors import DigestError

    with pytest.raises(DigestError, match="newer"):
        Store(path)
