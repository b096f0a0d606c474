"""The blocks of the papers filed since the last move into paper_blocks, held in memory.

A new paper's blocks fall on random pages of an index keyed by block, so writing them
into one costs SQLite a B-tree insert each, and looking a block up costs a descent: at
100k stored, 4.8 us a listing when they went to a small table of their own. Held here,
a lookup is a dict probe, and the store keeps them as one row a paper in
`recent_papers`, appended in the order papers are numbered. When there are RECENT_LIMIT
block rows, store/matching.py moves them into paper_blocks in one sorted pass.

Every dump gives the store a new stamp before it files anything, and the blocks held
here carry the stamp they were read or filed under: blocks held from an earlier dump
are used again only if no other process, and no rolled-back dump, has changed the
store since. Otherwise they are read again: 0.13 s for RECENT_LIMIT of them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from digest.store.blockfilter import new_stamp

# A paper and the length of its key, in one int: a dict of ints is half the size of a
# dict of tuples (18.5 MB for 250,000 blocks).
_LENGTH_BITS = 20
_LENGTH_MASK = (1 << _LENGTH_BITS) - 1


class RecentBlocks:
    """The recent papers of one store, by block: the paper, or the papers, filed under it."""

    def __init__(self, stamp: int) -> None:
        self.stamp = stamp
        self._by_block: dict[int, int | tuple[int, ...]] = {}
        # Block rows held: the move is due at RECENT_LIMIT.
        self.filed = 0

    @classmethod
    def current(cls, conn: sqlite3.Connection, held: RecentBlocks | None) -> RecentBlocks:
        """The store's recent blocks: `held` if the store has not changed since it was
        filed or read, else read again."""
        (stamp,) = conn.execute("SELECT stamp FROM recent_state").fetchone()
        if held is not None and held.stamp == stamp:
            return held
        made = cls(stamp)
        for paper_id, length, blocks in conn.execute(
                "SELECT paper_id, length, blocks FROM recent_papers"):
            made._file(paper_id, length, json.loads(blocks))
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

    def file(self, paper_id: int, length: int, blocks: list[int],
             rows: list[tuple[int, int, str]]) -> None:
        """File a new paper under these blocks, and add its row for recent_papers."""
        if not blocks:
            return
        self._file(paper_id, length, blocks)
        # A list of ints prints as its JSON array, four times as fast as json.dumps.
        rows.append((paper_id, length, str(blocks)))

    def moved(self) -> list[int]:
        """Empty this once its papers have moved into paper_blocks: the blocks they held."""
        blocks = list(self._by_block)
        self._by_block.clear()
        self.filed = 0
        return blocks

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
