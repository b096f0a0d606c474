"""Which blocks paper_blocks may hold: a bitmap kept in the store beside it, so that
lookups skip the blocks no paper is filed under, most of those a dump brings.

A block's bit is its low bits. Every block paper_blocks holds has its bit set; a set bit
may also belong to a block it does not hold (one in 32 to 8, by how full the filter is),
which costs only the lookup the filter exists to save. A cleared bit is never wrong:
that would miss a paper and send it again. So whatever writes paper_blocks either sets
the bits of what it writes, in the same transaction (the move of the recent blocks,
store/matching.py), or drops the filter (a migration that files titles again), and the
next dump builds it again from the table.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable

# Bits per block held, at the least: a filter that falls below is built again, with 16
# to 32 (at 8, one block in 8 not held finds its bit set; at 32, one in 32).
_BITS_PER_BLOCK = 8
_MIN_BITS = 1 << 16


class BlockFilter:
    """The bitmap of one store, with the stamp it was saved under: a new one at each save,
    so that a filter held from an earlier dump is known to be the saved one."""

    def __init__(self, bits: bytearray, blocks: int, stamp: int) -> None:
        self.bits = bits
        self.mask = len(bits) * 8 - 1
        # Block rows filed since it was built: a bound on the blocks it holds (a block
        # filed twice, or a row that was already there, counts again).
        self.blocks = blocks
        self.stamp = stamp

    @classmethod
    def current(cls, conn: sqlite3.Connection, held: BlockFilter | None) -> BlockFilter:
        """The store's filter: `held` if it is the one saved, else the saved one, else (none
        saved) one built from paper_blocks and saved."""
        row = conn.execute("SELECT stamp, blocks FROM block_filter").fetchone()
        if row is None:
            return cls.build(conn)
        if held is not None and held.stamp == row[0]:
            return held
        (bits,) = conn.execute("SELECT bits FROM block_filter").fetchone()
        return cls(bytearray(bits), row[1], row[0])

    @classmethod
    def build(cls, conn: sqlite3.Connection) -> BlockFilter:
        """A filter of every block paper_blocks holds, with room for as many again, saved."""
        (rows,) = conn.execute("SELECT COUNT(*) FROM paper_blocks").fetchone()
        size = _MIN_BITS
        while size < rows * _BITS_PER_BLOCK * 2:
            size *= 2
        made = cls(bytearray(size // 8), 0, new_stamp())
        made._set(block for (block,) in conn.execute("SELECT block FROM paper_blocks"))
        made._save(conn)
        return made

    def which_may_hold(self, blocks: Iterable[int]) -> list[int]:
        """The blocks of these that paper_blocks may hold. (One loop of locals: it runs
        for every block of every listing.)"""
        bits, mask = self.bits, self.mask
        return [b for b in blocks if bits[(b & mask) >> 3] >> (b & 7) & 1]

    def moved(self, conn: sqlite3.Connection, blocks: Iterable[int]) -> BlockFilter:
        """The filter once these blocks have gone into paper_blocks, saved under a new
        stamp: this one with their bits set, or, grown too full, one built again."""
        self._set(blocks)
        if len(self.bits) * 8 < self.blocks * _BITS_PER_BLOCK:
            return BlockFilter.build(conn)
        self.stamp = new_stamp()
        self._save(conn)
        return self

    def _set(self, blocks: Iterable[int]) -> None:
        bits, mask = self.bits, self.mask
        count = 0
        for block in blocks:
            at = block & mask
            bits[at >> 3] |= 1 << (at & 7)
            count += 1
        self.blocks += count

    def _save(self, conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM block_filter")
        conn.execute("INSERT INTO block_filter (stamp, blocks, bits) VALUES (?, ?, ?)",
                     [self.stamp, self.blocks, self.bits])


def new_stamp() -> int:
    """A stamp for what a process holds of the store: random, not counted, because what
    changed in a transaction that was rolled back keeps its new stamp in memory, and must
    never match a stamp saved since."""
    return int.from_bytes(os.urandom(7), "big")
