"""Matching a dump's papers against the store and writing them, a batch at a time: the
stored papers a batch's titles may be, fetched in one query each, and the rows it writes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import date, datetime
from itertools import islice
from typing import Any

from digest.identity import (
    Candidate,
    Listing,
    Match,
    Spelling,
    Verdict,
    best_match,
    could_score,
    key_hash,
)
from digest.model import Paper
from digest.store.filters import BlockFilter, KeyFilter
from digest.store.recent import RecentPapers

_ARXIV = Verdict(True, 100.0, "arXiv id", "arxiv")
_EXACT = Verdict(True, 100.0, "exact key", "exact")
_NEW = Match(None, None)
# A block that more papers than this are filed under ("paper number" in "Paper number 17")
# is not looked through: it would make every such title a candidate of every other, and
# the cost of a listing grow with the store. A title misspelt in a word of its only
# other blocks is then missed (a repeat, never a lost paper). A block holds at most one
# paper more than this, which marks it crowded: rows no lookup reads are not written.
BLOCK_LIMIT = 64
# New blocks are held in memory and in recent_papers (store/recent.py), and move to
# paper_blocks in one sorted pass once a batch leaves this many there. A batch's blocks
# fall on random pages of the index, and SQLite writes every page a transaction touches
# twice (to the WAL, then the file): written straight into paper_blocks, a 10,000-paper
# dump touched nearly every page of a million-paper store's blocks. Batched this way a
# page is written once per move. Held in memory, 250,000 blocks take about 19 MB, and a
# big dump moves them as it goes: memory does not grow with it.
RECENT_LIMIT = 250_000
# New papers' keys likewise, held in memory (about 19 MB for 100,000) and in papers, then
# moved into paper_keys. At a million stored a move writes most of paper_keys, 18,800
# pages, where each 10,000-paper dump wrote 8,000 into a unique index of papers' keys: a
# fifth of the pages for as many keys.
KEY_LIMIT = 100_000
_CANDIDATE_COLUMNS = "p.id, p.title, p.abstract, p.arxiv_id"


class _StoredIndex:
    """What the store knows of one batch's titles: the papers their arXiv ids, exact keys
    and blocks lead to, fetched in one query each, plus the papers the batch itself adds."""

    def __init__(self) -> None:
        self.by_arxiv: dict[str, int] = {}
        self.by_key: dict[str, int] = {}
        self.by_block: dict[int, list[int]] = {}
        self.candidates: dict[int, Candidate] = {}
        # Papers this batch adds, made candidates only when a later listing needs one.
        self.added: dict[int, Paper] = {}
        # How many papers each block looked up is filed under, the batch's included.
        self.filed: dict[int, int] = {}

    @classmethod
    def fetch(cls, conn: sqlite3.Connection, listings: list[tuple[Spelling, str | None]],
              recent: RecentPapers, known: BlockFilter | None = None,
              known_keys: KeyFilter | None = None) -> _StoredIndex:
        """Fetch what the store knows of these listings: keys and blocks are looked up in
        `recent`, and in paper_keys and paper_blocks, there only those `known_keys` and
        `known` may hold, if given."""
        index = cls()
        arxiv_ids = list({a for _, a in listings if a})
        for row in _select_each(conn, f"SELECT {_CANDIDATE_COLUMNS} FROM json_each(?) v "
                                "CROSS JOIN papers p ON p.arxiv_id = v.value", arxiv_ids):
            index.by_arxiv[row[3]] = row[0]
            index.candidates[row[0]] = Candidate(*row)
        # Keys: the recent ones held in memory, the rest in paper_keys.
        recent_keys = recent.by_key
        stored_keys: dict[str, int] = {}
        for s, a in listings:
            if a and a in index.by_arxiv:
                continue
            if s.key in recent_keys:
                index.by_key[s.key] = recent_keys[s.key]
            else:
                stored_keys[s.key] = s.key_hash
        for row in _select_each(conn, f"SELECT {_CANDIDATE_COLUMNS}, k.key FROM json_each(?) v "
                                "CROSS JOIN paper_keys k ON k.key = v.value "
                                "JOIN papers p ON p.id = k.paper_id",
                                list(stored_keys) if known_keys is None
                                else known_keys.keys_it_may_hold(stored_keys)):
            index.by_key[row[4]] = row[0]
            index.candidates[row[0]] = Candidate(*row[:4])
        index._read_candidates(conn, list(index.by_key.values()))
        # The blocks of the listings that may be papers the store lacks, by the lengths
        # of their keys: not a paper by its arXiv id, nor by its exact key unless that
        # paper has another arXiv id. (One loop of locals: it runs for every listing.)
        lengths: dict[int, list[int]] = {}
        by_arxiv, by_key, candidates = index.by_arxiv, index.by_key, index.candidates
        for s, a in listings:
            if a and a in by_arxiv:
                continue
            exact = by_key.get(s.key)
            if exact is not None and not _other_ids(a, candidates[exact].arxiv_id):
                continue
            n = len(s.key)
            for block in s.blocks:
                if block in lengths:
                    lengths[block].append(n)
                else:
                    lengths[block] = [n]
        blocks = list(lengths) if known is None else known.which_may_hold(lengths)
        # Counted first: the rows of a crowded block (65 of them) would be made only to
        # be dropped, and titles of common words crowd most of their blocks.
        held = dict(_select_each(conn, "SELECT v.value, COUNT(*) FROM json_each(?) v CROSS "
                                 "JOIN paper_blocks b ON b.block = v.value GROUP BY 1", blocks))
        filed = index.filed
        filed.update(held)
        rows = recent.rows(lengths, filed, BLOCK_LIMIT)
        rows += _select_each(conn, "SELECT b.block, b.paper_id, b.length FROM json_each(?) v "
                             "CROSS JOIN paper_blocks b ON b.block = v.value",
                             [b for b in held if filed[b] <= BLOCK_LIMIT])
        wanted: set[int] = set()
        for block, paper_id, length in rows:
            if any(could_score(length, n) for n in lengths[block]):
                index.by_block.setdefault(block, []).append(paper_id)
                wanted.add(paper_id)
        index._read_candidates(conn, wanted)
        return index

    def match(self, spelling: Spelling, abstract: str, arxiv_id: str | None, *,
              explain: bool = False) -> Match:
        """The stored paper a listing is. Candidates with another arXiv id are other papers
        whatever their titles; only an explanation (`digest why`) scores them, to name the
        closest one turned down: ingest skips them, which halves the cost of a snapshot
        whose titles share blocks."""
        if arxiv_id and arxiv_id in self.by_arxiv:
            return Match(self._candidate(self.by_arxiv[arxiv_id]), _ARXIV)
        exact_id = self.by_key.get(spelling.key)
        if exact_id is not None:
            exact = self._candidate(exact_id)
            if not _other_ids(arxiv_id, exact.arxiv_id):
                return Match(exact, _EXACT)
        by_block, filed = self.by_block, self.filed
        ids = {i for b in spelling.blocks
               if b in by_block and filed[b] <= BLOCK_LIMIT for i in by_block[b]}
        if not ids:
            return _NEW
        candidates = [self._candidate(i) for i in sorted(ids)]
        if arxiv_id and not explain:
            candidates = [c for c in candidates if not c.arxiv_id or c.arxiv_id == arxiv_id]
        return best_match(spelling, abstract, arxiv_id, candidates)

    def add(self, paper_id: int, spelling: Spelling, key: str, paper: Paper,
            recent: RecentPapers, rows: list[tuple[int, int, str]]) -> None:
        """File a paper this batch creates, so that a later listing of it finds it, under
        the blocks not crowded: in `recent`, and its row for recent_papers in `rows`."""
        self.added[paper_id] = paper
        if paper.arxiv_id:
            self.by_arxiv[paper.arxiv_id] = paper_id
        self.by_key.setdefault(key, paper_id)
        by_block, filed = self.by_block, self.filed
        blocks = []
        for block in spelling.blocks:
            count = filed.get(block, 0)
            if count > BLOCK_LIMIT:
                continue
            filed[block] = count + 1
            blocks.append(block)
            if block in by_block:
                by_block[block].append(paper_id)
            else:
                by_block[block] = [paper_id]
        recent.file(paper_id, key, spelling.key_hash if key == spelling.key else key_hash(key),
                    len(spelling.key), blocks, rows)

    def fill_arxiv_id(self, paper_id: int, arxiv_id: str) -> None:
        """Give a paper the arXiv id a listing merged into it brought, so that a later
        listing of that id is this paper, and one of another id is not."""
        self.by_arxiv[arxiv_id] = paper_id
        self.candidates[paper_id] = replace(self._candidate(paper_id), arxiv_id=arxiv_id)

    def _read_candidates(self, conn: sqlite3.Connection, paper_ids: Iterable[int]) -> None:
        for row in _select_each(conn, f"SELECT {_CANDIDATE_COLUMNS} FROM json_each(?) v "
                                "CROSS JOIN papers p ON p.id = v.value",
                                sorted(set(paper_ids) - self.candidates.keys())):
            self.candidates[row[0]] = Candidate(*row)

    def _candidate(self, paper_id: int) -> Candidate:
        if paper_id not in self.candidates:
            paper = self.added[paper_id]
            self.candidates[paper_id] = Candidate(paper_id, paper.title, paper.abstract,
                                                  paper.arxiv_id)
        return self.candidates[paper_id]


class _Batch:
    """Match and write the papers of one dump a batch at a time, inside its transaction."""

    def __init__(self, conn: sqlite3.Connection, dump_id: int, now: datetime,
                 next_id: int, known: BlockFilter | None, known_keys: KeyFilter | None,
                 recent: RecentPapers | None) -> None:
        """`known`, `known_keys` and `recent` are what an earlier dump of this store left,
        if any."""
        self.conn = conn
        self.dump_id = dump_id
        self.now = now.isoformat()
        self.next_id = next_id
        # Lookups read paper_blocks and paper_keys only for what their filters say they
        # may hold (store/filters.py); new blocks and keys are held in memory until they
        # move (store/recent.py).
        self.known = BlockFilter.current(conn, known)
        self.known_keys = KeyFilter.current(conn, known_keys)
        self.recent = RecentPapers.current(conn, recent)
        self.recent.begin(conn)

    def ingest(self, listings: list[Listing], first_rank: int) -> int:
        """Match, insert and merge one batch; returns how many papers were new."""
        index = _StoredIndex.fetch(self.conn, [(s, p.arxiv_id) for p, s in listings],
                                   self.recent, self.known, self.known_keys)
        inserts: list[tuple[object, ...]] = []
        recent_rows: list[tuple[int, int, str]] = []
        updates: list[tuple[object, ...]] = []
        arxiv_ids: list[tuple[str, int]] = []
        merges: list[tuple[object, ...]] = []
        sightings: list[tuple[object, ...]] = []
        for rank, (paper, spelling) in enumerate(listings, first_rank):
            match = index.match(spelling, paper.abstract, paper.arxiv_id)
            if match.paper is None or match.verdict is None:
                paper_id, key = self.next_id, spelling.key
                self.next_id += 1
                if key in index.by_key:  # same title, another arXiv id: another paper
                    key = f"{key}#{paper.arxiv_id}"
                inserts.append(_paper_row(paper_id, key, paper, self.now))
                index.add(paper_id, spelling, key, paper, self.recent, recent_rows)
            else:
                paper_id = match.paper.id
                updates.append(_merge_row(paper_id, paper))
                if paper.arxiv_id and not match.paper.arxiv_id:
                    arxiv_ids.append((paper.arxiv_id, paper_id))
                    index.fill_arxiv_id(paper_id, paper.arxiv_id)
                if match.verdict.kind == "fuzzy":
                    merges.append((self.dump_id, paper_id, paper.title, match.verdict.score,
                                   match.verdict.reason))
            sightings.append((paper_id, self.dump_id, rank, paper.upvotes, paper.title))
        self.conn.executemany(_INSERT_PAPER, inserts)
        self.conn.executemany("INSERT INTO recent_papers (paper_id, length, blocks) "
                              "VALUES (?, ?, ?)", recent_rows)
        self.conn.executemany(_MERGE_PAPER, updates)
        self.conn.executemany("UPDATE papers SET arxiv_id = ? WHERE id = ? AND arxiv_id IS NULL",
                              arxiv_ids)
        self.conn.executemany("INSERT INTO merges (dump_id, paper_id, title, score, reason) "
                              "VALUES (?, ?, ?, ?, ?)", merges)
        self.conn.executemany("INSERT OR IGNORE INTO sightings (paper_id, dump_id, rank, "
                              "upvotes, title) VALUES (?, ?, ?, ?, ?)", sightings)
        return len(inserts)

    def settle(self) -> None:
        """Move the recent blocks into paper_blocks once there are RECENT_LIMIT of them,
        and the recent keys into paper_keys once there are KEY_LIMIT: in index order, so
        each page is written once for all of them, and in the dump's transaction, which
        sets their bits in the filters too."""
        recent = self.recent
        if recent.filed >= RECENT_LIMIT:
            self.conn.execute("INSERT OR IGNORE INTO paper_blocks (block, paper_id, length) "
                              "SELECT b.value, r.paper_id, r.length "
                              "FROM recent_papers r, json_each(r.blocks) b ORDER BY 1, 2")
            self.known = self.known.moved(self.conn, recent.blocks_moved())
            self.conn.execute("DELETE FROM recent_papers")
        if len(recent.by_key) >= KEY_LIMIT:
            # OR IGNORE: a key the store already held would be a paper sent twice, but
            # failing every dump from then on would be worse.
            self.conn.execute("INSERT OR IGNORE INTO paper_keys (key, paper_id) "
                              "SELECT key, id FROM papers WHERE id >= ? ORDER BY key",
                              [recent.keys_from])
            self.known_keys = self.known_keys.moved(
                self.conn, recent.keys_moved(self.conn, self.next_id))


_INSERT_PAPER = """INSERT INTO papers (id, key, title, abstract, authors, authors_count,
    published, upvotes, arxiv_id, url, categories, first_seen)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
# What one source lacks another may give: fill gaps, keep the highest upvotes. The arXiv
# id is set apart, only where it was missing: SQLite rewrites the index entry of every
# indexed column an UPDATE names, changed or not.
_MERGE_PAPER = """UPDATE papers SET
    abstract = CASE WHEN abstract = '' THEN ? ELSE abstract END,
    authors = CASE WHEN authors = '[]' THEN ? ELSE authors END,
    authors_count = COALESCE(authors_count, ?),
    published = COALESCE(published, ?),
    upvotes = MAX(COALESCE(upvotes, ?), COALESCE(?, upvotes)),
    url = COALESCE(url, ?),
    categories = CASE WHEN categories = '[]' THEN ? ELSE categories END
    WHERE id = ?"""


def _paper_row(paper_id: int, key: str, paper: Paper, now: str) -> tuple[object, ...]:
    return (paper_id, key, paper.title, paper.abstract, _json_list(paper.authors),
            paper.authors_count, _iso(paper.published), paper.upvotes, paper.arxiv_id,
            paper.url, _json_list(paper.categories), now)


def _merge_row(paper_id: int, paper: Paper) -> tuple[object, ...]:
    return (paper.abstract, _json_list(paper.authors), paper.authors_count,
            _iso(paper.published), paper.upvotes, paper.upvotes, paper.url,
            _json_list(paper.categories), paper_id)


def _other_ids(mine: str | None, theirs: str | None) -> bool:
    """Whether two listings carry different arXiv ids: two papers, whatever their titles."""
    return bool(mine and theirs and mine != theirs)


def _json_list(items: tuple[str, ...]) -> str:
    # Most formats give no authors or categories: skip the encoder for the common case.
    return json.dumps(items) if items else "[]"


def _select_each(conn: sqlite3.Connection, sql: str, values: list[Any]) -> list[tuple[Any, ...]]:
    """Run a query that joins each of many values, given as one JSON array, to a table:
    one statement, compiled once, whatever their number. `json_each(?) v CROSS JOIN` makes
    the values the outer loop, each an index lookup. Measured at 100k stored, a third
    faster for keys than lists of `?` in `IN (...)`, which SQLite sorts first."""
    if not values:
        return []
    return conn.execute(sql, [json.dumps(values)]).fetchall()


def _chunks(items: Iterable[Paper], size: int) -> Iterator[list[Paper]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None
