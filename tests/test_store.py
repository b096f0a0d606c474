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


def test_the_outbox_keeps_message_id_error_attempts_and_delivery_time(store: Store) -> None:
    store.ingest_dump("1" * 64, "one.txt", "test", [Paper("A", "x")], NOW)
    (paper,) = store.undelivered()
    edition = store.create_edition([(paper.id, "T")], NOW, "<e1@example.com>")
    store.record_failure(edition, "SMTP host:25: 451 4.3.0 later")
    record = store.edition(edition)
    assert record is not None
    assert (record.status, record.message_id, record.last_error, record.attempts) == (
        "pending", "<e1@example.com>", "SMTP host:25: 451 4.3.0 later", 1)
    assert store.status().pending_error == "SMTP host:25: 451 4.3.0 later"
    later = datetime(2025, 3, 2, 8, 0)
    store.mark_delivered(edition, later)
    record = store.edition(edition)
    assert record is not None
    assert (record.status, record.delivered_at, record.last_error, record.attempts) == (
        "delivered", later.isoformat(), None, 2)
    assert store.edition_message_id(edition, "<other@example.com>") == "<e1@example.com>"
    with pytest.raises(sqlite3.IntegrityError):  # one Message-ID, one edition
        store.create_edition([], NOW, "<e1@example.com>")


def test_dumps_between_two_editions(store: Store) -> None:
    days = [datetime(2025, 3, d, 8, 0) for d in (1, 2, 3)]
    store.ingest_dump("a" * 64, "one.txt", "test", [Paper("A", "x")], days[0])
    store.record_failed_dump("b" * 64, "bad.txt", "bad.txt: empty file", days[1])
    store.ingest_dump("c" * 64, "three.txt", "test", [Paper("C", "x")], days[2])
    first = store.create_edition([], days[0])
    store.create_edition([], days[2])
    assert [d.path for d in store.dumps_between(None, days[0])] == ["one.txt"]
    between = store.dumps_between(store.previous_edition_created(first + 1), days[2])
    assert [(d.path, d.status, d.error) for d in between] == [
        ("bad.txt", "failed", "bad.txt: empty file"), ("three.txt", "ingested", None)]
    assert store.last_dump_arrival(days[1]) == days[0]  # a failed dump is no arrival
    assert store.last_edition_created() == days[2]
