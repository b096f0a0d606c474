"""Which blocks paper_blocks may hold, and which keys paper_keys may hold: a bitmap of each
kept in the store beside its table, so that lookups skip the blocks no paper is filed
under and the keys no paper has, most of those a dump brings.

A value's bit is its low bits (a key's value is its hash, identity.key_hash). Every value
the table holds has its bit set; a set bit may also belong to a value it does not hold
(one in 32 to 8, by how full the filter is), which costs only the lookup the filter
exists to save. A cleared bit is never wrong: that would miss a paper and send it again.
So whatever writes the table either sets the bits of what it writes, in the same
transaction (the moves of the recent blocks and keys, store/matching.py), or drops the
filter (a migration that files titles again), and the next dump builds it again from
the table.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from typing import ClassVar, Self

from digest.identity import key_hash

# Bits per value held, at the least: a filter that falls below is built again, with 16
# to 32 (at 8, one value in 8 not held finds its bit set; at 32, one in 32).
_BITS_PER_VALUE = 8
# 512 KB: a filter of up to half a million values is never built again. A build reads its
# whole table (about half a microsecond a value), and a small store moving in a few
# hundred thousand blocks or keys would otherwise build it at every doubling.
_MIN_BITS = 1 << 22


class _Filter:
    """The bitmap of one table, with the stamp it was saved under: a new one at each save,
    so that a filter held from an earlier dump is known to be the saved one."""

    # The table it is saved in, and the column there that counts what it holds.
    _TABLE: ClassVar[str]
    _COUNTED: ClassVar[str]

    def __init__(self, bits: bytearray, filed: int, stamp: int) -> None:
        self.bits = bits
        self.mask = len(bits) * 8 - 1
        # Values filed since it was built: a bound on the values it holds (one filed
        # twice, or already there, counts again).
        self.filed = filed
        self.stamp = stamp

    @classmethod
    def current(cls, conn: sqlite3.Connection, held: Self | None) -> Self:
        """The store's filter: `held` if it is the one saved, else the saved one, else (none
        saved) one built from its table and saved."""
        row = conn.execute(f"SELECT stamp, {cls._COUNTED} FROM {cls._TABLE}").fetchone()
        if row is None:
            return cls.build(conn)
        if held is not None and held.stamp == row[0]:
            return held
        (bits,) = conn.execute(f"SELECT bits FROM {cls._TABLE}").fetchone()
        return cls(bytearray(bits), row[1], row[0])

    @classmethod
    def build(cls, conn: sqlite3.Connection) -> Self:
        """A filter of every value its table holds, with room for as many again, saved."""
        values = cls._held(conn)
        size = _MIN_BITS
        while size < len(values) * _BITS_PER_VALUE * 2:
            size *= 2
        made = cls(bytearray(size // 8), 0, new_stamp())
        made._set(values)
        made._save(conn)
        return made

    def which_may_hold(self, values: Iterable[int]) -> list[int]:
        """The values of these that the table may hold. (One loop of locals: it runs for
        every block of every listing.)"""
        bits, mask = self.bits, self.mask
        return [v for v in values if bits[(v & mask) >> 3] >> (v & 7) & 1]

    def moved(self, conn: sqlite3.Connection, values: list[int]) -> Self:
        """The filter once these values have gone into its table, saved under a new stamp:
        this one with their bits set, or, were it to grow too full, one built again."""
        if len(self.bits) * 8 < (self.filed + len(values)) * _BITS_PER_VALUE:
            return self.build(conn)
        self._set(values)
        self.stamp = new_stamp()
        self._save(conn)
        return self

    @staticmethod
    def _held(conn: sqlite3.Connection) -> list[int]:
        """The values its table holds."""
        raise NotImplementedError

    def _set(self, values: Iterable[int]) -> None:
        bits, mask = self.bits, self.mask
        count = 0
        for value in values:
            at = value & mask
            bits[at >> 3] |= 1 << (at & 7)
            count += 1
        self.filed += count

    def _save(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"DELETE FROM {self._TABLE}")
        conn.execute(f"INSERT INTO {self._TABLE} (stamp, {self._COUNTED}, bits) "
                     "VALUES (?, ?, ?)", [self.stamp, self.filed, self.bits])


class BlockFilter(_Filter):
    """The blocks paper_blocks may hold."""

    _TABLE = "block_filter"
    _COUNTED = "blocks"

    @staticmethod
    def _held(conn: sqlite3.Connection) -> list[int]:
        return [block for (block,) in conn.execute("SELECT block FROM paper_blocks")]


class KeyFilter(_Filter):
    """The keys paper_keys may hold, by their CRC-32s."""

    _TABLE = "key_filter"
    _COUNTED = "keys"

    def keys_it_may_hold(self, hashes: dict[str, int]) -> list[str]:
        """The keys of these, given with their hashes, that paper_keys may hold."""
        bits, mask = self.bits, self.mask
        return [k for k, v in hashes.items() if bits[(v & mask) >> 3] >> (v & 7) & 1]

    @staticmethod
    def _held(conn: sqlite3.Connection) -> list[int]:
        return [key_hash(key) for (key,) in conn.execute("SELECT key FROM paper_keys")]


def new_stamp() -> int:
    """A stamp for what a process holds of the store: random, not counted, because what
    changed in a transaction that was rolled back keeps its new stamp in memory, and must
    never match a stamp saved since."""
    return int.from_bytes(os.urandom(7), "big")
