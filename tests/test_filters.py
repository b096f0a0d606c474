"""The filters of a big store (store/filters.py), on real SQLite files: they hold the bit
of every block paper_blocks holds and every key paper_keys holds, whoever wrote them, so
that a re-spelling is found whichever way its paper was filed, and a repeat by its key."""

from __future__ import annotations

import hashlib
import json
import random
import re
import sqlite3
import string
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from stores import as_version_8

from digest.identity import key_hash
from digest.model import Paper
from digest.store import _MIGRATIONS, Store, filters, matching
from digest.store.filters import BlockFilter, KeyFilter

NOW = datetime(2025, 3, 1, 8, 0)


def _saved_filter_holds_every_block(store: Store) -> bool:
    (bits,) = store.db.execute("SELECT bits FROM block_filter").fetchone()
    saved = BlockFilter(bytearray(bits), 0, 0)
    blocks = [b for (b,) in store.db.execute("SELECT block FROM paper_blocks")]
    return bool(blocks) and saved.which_may_hold(blocks) == blocks


def _saved_key_filter_holds_every_key(store: Store) -> bool:
    (bits,) = store.db.execute("SELECT bits FROM key_filter").fetchone()
    saved = KeyFilter(bytearray(bits), 0, 0)
    keys = [key_hash(k) for (k,) in store.db.execute("SELECT key FROM paper_keys")]
    return bool(keys) and saved.which_may_hold(keys) == keys


@contextmanager
def _looked_up_in(store: Store, table: str) -> Iterator[list[Any]]:
    """The values the store's lookups in `table` bind, as json_each('[...]'), meanwhile."""
    looked: list[Any] = []

    def count(sql: str) -> None:
        if f"JOIN {table}" in sql:
            looked.extend(json.loads(re.search(r"json_each\('(\[.*?\])'\)", sql)[1]))

    store.db.conn.set_trace_callback(count)
    try:
        yield looked
    finally:
        store.db.conn.set_trace_callback(None)


def _words(rng: random.Random) -> str:
    return " ".join("".join(rng.choices(string.ascii_lowercase, k=9)).capitalize()
                    for _ in range(4))


def _ingest(store: Store, name: str, papers: list[Paper]) -> int:
    sha = hashlib.sha256(name.encode()).hexdigest()
    return store.ingest_dump(sha, name, "test", papers, NOW).new


@pytest.fixture
def big(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recent blocks move into paper_blocks at the end of every dump."""
    monkeypatch.setattr(matching, "RECENT_LIMIT", 1)


@pytest.mark.usefixtures("big")
def test_blocks_moved_in_are_set_and_found(tmp_path: Path) -> None:
    store = Store(tmp_path / "digest.db")
    rng = random.Random(0)
    titles = [_words(rng) for _ in range(50)]
    assert _ingest(store, "a", [Paper(t) for t in titles[:25]]) == 25
    assert _ingest(store, "b", [Paper(t) for t in titles[25:]]) == 25
    assert _saved_filter_holds_every_block(store)
    # A letter dropped from each title: every one joins its paper, in either dump.
    assert _ingest(store, "c", [Paper(t[:5] + t[6:]) for t in titles]) == 0
    assert len(store.merges()) == 50
    store.close()


def test_a_version_7_store_moves_its_recent_blocks_and_builds_its_filter_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Version 7 kept new blocks in recent_blocks, with no bits in the filter: the
    migration moves them into paper_blocks and drops the filter, and the next dump builds
    it again with their bits."""
    path = tmp_path / "digest.db"
    store = Store(path)
    rng = random.Random(1)
    monkeypatch.setattr(matching, "RECENT_LIMIT", 1)
    _ingest(store, "a", [Paper(_words(rng)) for _ in range(20)])  # moved, with their bits
    monkeypatch.setattr(matching, "RECENT_LIMIT", 10_000)
    titles = [_words(rng) for _ in range(20)]
    _ingest(store, "b", [Paper(t) for t in titles])  # recent, no bits
    store.close()
    as_version_8(path)
    # As version 7 kept them: one row a block in recent_blocks.
    with sqlite3.connect(path) as conn:
        conn.execute(_MIGRATIONS[4][0])  # CREATE TABLE recent_blocks
        conn.execute("INSERT INTO recent_blocks SELECT b.value, r.paper_id, r.length "
                     "FROM recent_papers r, json_each(r.blocks) b")
        for table in ("recent_papers", "recent_state"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("PRAGMA user_version = 7")
    conn.close()

    store = Store(path)
    assert _ingest(store, "c", [Paper(t[:5] + t[6:]) for t in titles]) == 0
    assert _saved_filter_holds_every_block(store)
    store.close()


@pytest.mark.usefixtures("big")
def test_a_filter_saved_by_another_process_is_read_again(tmp_path: Path) -> None:
    one, other = Store(tmp_path / "digest.db"), Store(tmp_path / "digest.db")
    rng = random.Random(2)
    mine, theirs = _words(rng), _words(rng)
    _ingest(one, "a", [Paper(mine)])  # `one` now holds a filter
    _ingest(other, "b", [Paper(theirs)])  # and `other` saves another
    assert _ingest(one, "c", [Paper(theirs[:5] + theirs[6:])]) == 0
    one.close()
    other.close()


@pytest.mark.usefixtures("big")
def test_a_filter_too_full_is_built_again_bigger(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filters, "_MIN_BITS", 64)
    store = Store(tmp_path / "digest.db")
    rng = random.Random(3)
    titles = [_words(rng) for _ in range(40)]
    _ingest(store, "a", [Paper(titles[0])])
    (small,) = store.db.execute("SELECT length(bits) FROM block_filter").fetchone()
    for n, title in enumerate(titles[1:]):
        _ingest(store, f"b{n}", [Paper(title)])
    (size, blocks) = store.db.execute("SELECT length(bits), blocks FROM block_filter").fetchone()
    assert size > small and size * 8 >= blocks * filters._BITS_PER_VALUE
    assert _saved_filter_holds_every_block(store)
    assert _ingest(store, "c", [Paper(t[:5] + t[6:]) for t in titles]) == 0
    store.close()


@pytest.mark.usefixtures("big")
def test_the_filter_skips_lookups_of_blocks_no_paper_is_filed_under(tmp_path: Path) -> None:
    """What it is for: of a dump of new titles, few blocks are looked up in paper_blocks."""
    store = Store(tmp_path / "digest.db")
    rng = random.Random(4)
    stored = [_words(rng) for _ in range(500)]
    _ingest(store, "a", [Paper(t) for t in stored])
    with _looked_up_in(store, "paper_blocks") as looked:
        assert _ingest(store, "b", [Paper(_words(rng)) for _ in range(480)]
                       + [Paper(t[:5] + t[6:]) for t in stored[:20]]) == 480
    # The one intact block of each misspelt title, counted then read; of the other
    # 2,000, the few whose bit another block set (16 bits a block or more: one in 16).
    assert 2 * 20 <= len(looked) <= 2 * 20 + 2 * 2000 // 16
    store.close()


@pytest.mark.usefixtures("big")
def test_a_dump_rolled_back_after_its_move_leaves_no_filter_that_passes_for_saved(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The move changes the filter a store holds before the commit; if the commit then
    fails (a full disk: simulated, as it cannot be made to happen here), the filter held
    must not pass for the one saved, or for one another process saves after."""
    one, other = Store(tmp_path / "digest.db"), Store(tmp_path / "digest.db")
    rng = random.Random(5)
    _ingest(one, "a", [Paper(_words(rng)) for _ in range(20)])
    settle = matching._Batch.settle

    def move_then_fail(batch: matching._Batch) -> None:
        settle(batch)
        raise OSError("disk full")

    monkeypatch.setattr(matching._Batch, "settle", move_then_fail)
    with pytest.raises(OSError):
        _ingest(one, "b", [Paper(_words(rng)) for _ in range(20)])
    monkeypatch.setattr(matching._Batch, "settle", settle)
    theirs = [_words(rng) for _ in range(20)]
    _ingest(other, "c", [Paper(t) for t in theirs])  # saves a filter of its own
    assert _ingest(one, "d", [Paper(t[:5] + t[6:]) for t in theirs]) == 0
    one.close()
    other.close()


@pytest.fixture
def keys_move(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys move into paper_keys at the end of every dump, and no block is looked
    through: a listing finds its paper by its key or not at all."""
    monkeypatch.setattr(matching, "KEY_LIMIT", 1)
    monkeypatch.setattr(matching, "BLOCK_LIMIT", 0)


@pytest.mark.usefixtures("keys_move")
def test_keys_moved_in_are_set_and_found(tmp_path: Path) -> None:
    store = Store(tmp_path / "digest.db")
    rng = random.Random(6)
    titles = [_words(rng) for _ in range(50)]
    assert _ingest(store, "a", [Paper(t) for t in titles[:25]]) == 25
    assert _ingest(store, "b", [Paper(t) for t in titles[25:]]) == 25
    assert _saved_key_filter_holds_every_key(store)
    assert _ingest(store, "c", [Paper(t.upper()) for t in titles]) == 0
    store.close()


@pytest.mark.usefixtures("keys_move")
def test_the_key_filter_skips_lookups_of_keys_no_paper_has(tmp_path: Path) -> None:
    store = Store(tmp_path / "digest.db")
    rng = random.Random(7)
    titles = [_words(rng) for _ in range(500)]
    _ingest(store, "a", [Paper(t) for t in titles])
    with _looked_up_in(store, "paper_keys") as looked:
        _ingest(store, "b", [Paper(_words(rng)) for _ in range(480)] +
                [Paper(t.upper()) for t in titles[:20]])
    # The 20 keys paper_keys holds, and of the 480 it does not, the few whose bit
    # another key set (16 to 32 bits a key: one in 16 at most).
    assert 20 <= len(looked) <= 20 + 480 // 16
    store.close()


@pytest.mark.usefixtures("keys_move")
def test_a_key_filter_saved_by_another_process_is_read_again(tmp_path: Path) -> None:
    one, other = Store(tmp_path / "digest.db"), Store(tmp_path / "digest.db")
    rng = random.Random(8)
    mine, theirs = _words(rng), _words(rng)
    _ingest(one, "a", [Paper(mine)])  # `one` now holds a key filter
    _ingest(other, "b", [Paper(theirs)])  # and `other` saves another
    assert _ingest(one, "c", [Paper(theirs.upper())]) == 0
    one.close()
    other.close()


def test_a_version_8_store_builds_its_key_filter_with_the_next_dump(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    store = Store(path)
    rng = random.Random(9)
    titles = [_words(rng) for _ in range(30)]
    _ingest(store, "a", [Paper(t) for t in titles])
    store.close()
    as_version_8(path)
    store = Store(path)
    assert store.db.execute("SELECT COUNT(*) FROM key_filter").fetchone()[0] == 0
    assert _ingest(store, "b", [Paper(t.upper()) for t in titles]) == 0
    assert _saved_key_filter_holds_every_key(store)
    assert store.merges() == []  # each by its key
    store.close()


@pytest.mark.usefixtures("keys_move")
def test_keys_a_new_process_reads_back_are_set_when_it_moves_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matching, "KEY_LIMIT", 3)
    path = tmp_path / "digest.db"
    rng = random.Random(10)
    titles = [_words(rng) for _ in range(3)]
    store = Store(path)
    _ingest(store, "a", [Paper(t) for t in titles[:2]])  # held apart
    store.close()
    store = Store(path)  # reads the two keys back from papers, then moves all three
    _ingest(store, "b", [Paper(titles[2])])
    assert store.db.execute("SELECT COUNT(*) FROM paper_keys").fetchone()[0] == 3
    assert _saved_key_filter_holds_every_key(store)
    assert _ingest(store, "c", [Paper(t.upper()) for t in titles]) == 0
    store.close()


@pytest.mark.usefixtures("keys_move")
def test_a_key_filter_built_again_by_a_move_holds_the_keys_it_moved(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filters, "_MIN_BITS", 64)  # too full at once: built from paper_keys
    store = Store(tmp_path / "digest.db")
    rng = random.Random(11)
    titles = [_words(rng) for _ in range(12)]
    _ingest(store, "a", [Paper(t) for t in titles])
    assert _saved_key_filter_holds_every_key(store)
    assert _ingest(store, "b", [Paper(t.upper()) for t in titles]) == 0
    store.close()
