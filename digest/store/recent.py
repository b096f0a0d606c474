"""The papers filed since their last moves, held in memory: by block, those whose blocks
have not moved into paper_blocks yet; by key, those whose keys have not moved into
paper_keys.

A new paper's blocks and key fall on random pages of indexes keyed by them, so writing
them there one at a time costs SQLite a B-tree insert each, and a transaction writes
every page it touched: at a million stored, most of the key index for a dump of 10,000
papers. Held here, a lookup is a dict probe. The store keeps the blocks as one row a
paper in `recent_papers`, and the keys in papers, from `keys_from` on; both move in one
sorted pass each, the blocks at RECENT_LIMIT block rows and the keys at KEY_LIMIT papers
(store/matching.py).

Every dump gives the store a new stamp before it files anything, and what is held here
carries the stamp it was read or filed under: it is used again only if no other process,
and no rolled-back dump, has changed the store since. Otherwise it is read again: 0.13 s
for RECENT_LIMIT blocks, 0.1 s for KEY_LIMIT keys.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from digest.identity import key_hash
from digest.store.filters import new_stamp

# A paper and the length of its key, in one int: a dict of ints is half the size of a
# dict of tuples (18.5 MB for 250,000 blocks).
_LENGTH_BITS = 20
_LENGTH_MASK = (1 << _LENGTH_BITS) - 1


class RecentPapers:
    """The recent papers of one store: by block, the paper or papers filed under it; by
    key, the paper."""

    def __init__(self, stamp: int, keys_from: int) -> None:
        self.stamp = stamp
        self._by_block: dict[int, int | tuple[int, ...]] = {}
        # Block rows held: the move is due at RECENT_LIMIT.
        self.filed = 0
        self.by_key: dict[str, int] = {}
        self._key_hashes: list[int] = []
        # The first paper whose key is held here rather than in paper_keys.
        self.keys_from = keys_from

    @classmethod
    def current(cls, conn: sqlite3.Connection, held: RecentPapers | None) -> RecentPapers:
        """The store's recent papers: `held` if the store has not changed since they were
        filed or read, else read again."""
        stamp, keys_from = conn.execute("SELECT stamp, keys_from FROM recent_state").fetchone()
        if held is not None and held.stamp == stamp:
            return held
        made = cls(stamp, keys_from)
        for paper_id, length, blocks in conn.execute(
                "SELECT paper_id, length, blocks FROM recent_papers"):
            made._file(paper_id, length, json.loads(blocks))
        made.by_key = {key: paper_id for key, paper_id in conn.execute(
            "SELECT key, id FROM papers WHERE id >= ?", [keys_from])}
        made._key_hashes = [key_hash(key) for key in made.by_key]
        return made

    def begin(self, conn: sqlite3.Connection) -> None:
        """Stamp the store anew, in the transaction of a dump about to file papers."""
        self.stamp = new_stamp()
        conn.execute("UPDATE recent_state SET stamp = ?", [self.stamp])

    def rows(self, blocks: Iterable[int], filed: dict[int, int],
             limit: int) -> list[tuple[int, int, int]]:
        """The rows (block, paper, length of its key) of the recent papers filed under
        these blocks, counted into `filed`; none for a block filed more than `limit` times
        in all, which is not looked through. (Titles of common words crowd most of their
        blocks: not making those rows took 300,000 arXiv records from 53 to 41 s.)"""
        found = []
        get = self._by_block.get
        for block in blocks:
            value = get(block)
            if value is None:
                continue
            held = (value,) if isinstance(value, int) else value
            count = filed[block] = filed.get(block, 0) + len(held)
            if count <= limit:
                for packed in held:
                    found.append((block, packed >> _LENGTH_BITS, packed & _LENGTH_MASK))
        return found

    def file(self, paper_id: int, key: str, hashed: int, length: int, blocks: list[int],
             rows: list[tuple[int, int, str]]) -> None:
        """File a new paper under its key (hashed as given) and these blocks, with the
        length of its title's key, and add its row for recent_papers if it has blocks."""
        self.by_key[key] = paper_id
        self._key_hashes.append(hashed)
        if not blocks:
            return
        self._file(paper_id, length, blocks)
        # A list of ints prints as its JSON array, four times as fast as json.dumps.
        rows.append((paper_id, length, str(blocks)))

    def blocks_moved(self) -> list[int]:
        """Empty the blocks once they have moved into paper_blocks: the blocks they were."""
        blocks = list(self._by_block)
        self._by_block.clear()
        self.filed = 0
        return blocks

    def keys_moved(self, conn: sqlite3.Connection, keys_from: int) -> list[int]:
        """Empty the keys once those of the papers before `keys_from` have moved into
        paper_keys, and say so in the store, in the same transaction: the keys' hashes."""
        hashes = self._key_hashes
        self._key_hashes = []
        self.by_key.clear()
        self.keys_from = keys_from
        conn.execute("UPDATE recent_state SET keys_from = ?", [keys_from])
        return hashes

    def _file(self, paper_id: int, length: int, blocks: list[int]) -> None:
        packed = paper_id << _LENGTH_BITS | min(length, _LENGTH_MASK)
        by_block = self._by_block
        for block in blocks:
            held = by_block.get(block)
            if held is None:
                by_block[block] = packed
            elif isinstance(held, int):
                by_block[block] = (held, packed)
            else:
                by_block[block] = (*held, packed)
        self.filed += len(blocks)
