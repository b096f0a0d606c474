"""Ingest benchmark: fuzzy paper identity against a bare exact-key baseline, side by side.

For each store size it copies a prebuilt store of that many papers, ingests the same
synthetic page-text dumps into it twice, each in a fresh process, and prints papers per
second, the ratio of the two times and of the two CPU times, and peak RSS:

- fuzzy: the real path, `pipeline.ingest_paths` (read; parse and fold in the run's parsing
  worker, beside it on another core; match: arXiv id, exact key, blocks and fuzzy
  verdicts; insert or merge; sightings; recorded merges). Its CPU time and RSS are the
  run's and the worker's together;
- baseline: the same read and parse, then `INSERT OR IGNORE` on an exact key (the title
  case-folded, whitespace collapsed) into a table with the papers table's columns.

A share of the dumps' titles are re-spellings of stored papers (case, dashes, hyphens,
quotes, Unicode forms, LaTeX, a dropped, doubled or swapped letter) and a share are near
misses (a stored title with its version number changed): the bench checks that every
re-spelling joins its paper and every near miss is new.

    python bench/ingest.py                                   # 100k papers into 10k, 100k, 1M
    python bench/ingest.py --stores 10000 --papers 10000     # a quick run
    python bench/ingest.py --memory                          # RSS by dump size (10k store)
    python bench/ingest.py --pages                           # pages one dump writes
    python bench/ingest.py --phases                          # where a listing's time goes

Built stores are kept in --work-dir and reused by later runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rss import ChildPeaks, peak_rss_mb  # noqa: E402

from digest.config import Config  # noqa: E402
from digest.dumps import Screen, parse_dump, parse_records, read_dump  # noqa: E402
from digest.identity import Spelling  # noqa: E402
from digest.store import Store  # noqa: E402
from digest.store.filters import BlockFilter, KeyFilter  # noqa: E402
from digest.store.matching import KEY_LIMIT, RECENT_LIMIT  # noqa: E402
from digest.store.schema import TRIM_CROWDED_BLOCKS  # noqa: E402

NOW = datetime(2024, 11, 20, 8, 0)
_HEADER = ("new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\n"
           "byAK and the research community\n\nNov 20\n\n")
_SYLLABLES = ("ka lo mi ra ze tu vo ni sa pe qu ry da fo gi hu je ku la me no pa ri se ta "
              "ve wa xi yo zu bra cle dro fli gra kri plo sta tri vex").split()


# -- a realistic vocabulary, from the sample dumps ---------------------------------------

@dataclass(frozen=True)
class Vocabulary:
    title_words: list[str]
    title_weights: list[int]
    abstract_words: list[str]


def vocabulary() -> Vocabulary:
    titles: dict[str, int] = {}
    abstracts: list[str] = []
    for path in sorted((REPO / "samples").glob("*.txt")):
        for paper in parse_dump(read_dump(path), page_year=2024).papers:
            for word in re.findall(r"[A-Za-z][A-Za-z\-]+", paper.title.split(":")[-1]):
                titles[word] = titles.get(word, 0) + 1
            abstracts.extend(paper.abstract.split())
    words = sorted(titles)
    return Vocabulary(words, [titles[w] for w in words], abstracts)


def coined_name(n: int) -> str:
    """A model or method name unique to n, as papers coin them (SkaLoMi, KriVex-2)."""
    parts = []
    while True:
        n, digit = divmod(n, len(_SYLLABLES))
        parts.append(_SYLLABLES[digit])
        if n == 0:
            break
    name = "".join(p.capitalize() for p in parts)
    return name[:-2] + name[-2:].upper() if len(parts) % 2 else name


def make_paper(n: int, vocab: Vocabulary, rng: random.Random) -> tuple[str, str]:
    """Title and abstract of synthetic paper n; titles differ for different n."""
    phrase = " ".join(rng.choices(vocab.title_words, vocab.title_weights, k=rng.randint(5, 9)))
    title = f"{coined_name(n)}: {phrase[0].upper()}{phrase[1:]}"
    start = rng.randrange(len(vocab.abstract_words) - 120)
    abstract = " ".join(vocab.abstract_words[start:start + rng.randint(60, 110)])
    return title, abstract


# -- re-spellings and near misses ----------------------------------------------------------

def respell(title: str, rng: random.Random) -> str:
    """One or two of the ways sources spell a title differently."""
    kinds = rng.sample(list(_RESPELL), rng.choice((1, 1, 2)))
    # One misspelling at most: a source that mangles two words of a title is rare.
    typos = [k for k in kinds if k in ("drop", "double", "swap")]
    kinds = [k for k in kinds if k not in typos[1:]]
    for kind in kinds:
        title = _RESPELL[kind](title, rng)
    return title


def _typo(title: str, rng: random.Random, how: str) -> str:
    words = [(m.start(), m.group()) for m in re.finditer(r"[A-Za-z]{6,}", title)]
    if not words:
        return title + "."
    start, word = rng.choice(words)
    i = rng.randrange(1, len(word) - 2)
    if how == "drop":
        word = word[:i] + word[i + 1:]
    elif how == "double":
        word = word[:i] + word[i] + word[i:]
    else:
        word = word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return title[:start] + word + title[start + len(word) + (how == "drop") - (how == "double"):]


_RESPELL = {
    "upper": lambda t, r: t.upper(),
    "lower": lambda t, r: t.lower(),
    "dash": lambda t, r: t.replace(": ", r.choice((" - ", " — ", " – ")), 1),
    "period": lambda t, r: t + ".",
    "hyphen": lambda t, r: t.replace("-", "") if "-" in t else t.replace(":", " :"),
    "nfd": lambda t, r: unicodedata.normalize("NFD", t.replace("e", "é", 1)),
    "latex": lambda t, r: re.sub(r"^(\w+)", r"{\1}", t),
    "quotes": lambda t, r: t.replace(" ", "\u00a0", 2),
    "drop": lambda t, r: _typo(t, r, "drop"),
    "double": lambda t, r: _typo(t, r, "double"),
    "swap": lambda t, r: _typo(t, r, "swap"),
}


def near_miss(title: str) -> str:
    """The next version of a stored paper: another paper with a close title."""
    name, rest = title.split(":", 1)
    return f"{name} 2:{rest}"


# -- building the stores -------------------------------------------------------------------

_BARE_TABLE = """CREATE TABLE IF NOT EXISTS papers (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, title TEXT NOT NULL,
    abstract TEXT NOT NULL DEFAULT '', authors TEXT NOT NULL DEFAULT '[]',
    authors_count INTEGER, published TEXT, upvotes INTEGER, arxiv_id TEXT UNIQUE, url TEXT,
    categories TEXT NOT NULL DEFAULT '[]', first_seen TEXT NOT NULL)"""
_BARE_INSERT = """INSERT OR IGNORE INTO papers (key, title, abstract, authors, authors_count,
    published, upvotes, arxiv_id, url, categories, first_seen)
    VALUES (?, ?, ?, '[]', ?, ?, ?, NULL, NULL, '[]', ?)"""


def bare_key(title: str) -> str:
    return " ".join(title.casefold().split())


def build_stores(work: Path, size: int, vocab: Vocabulary) -> tuple[Path, Path]:
    """A digest store and a bare table of `size` papers (ids 0..size-1), written in bulk
    with SQL rather than through matching, which a store that size never needs."""
    # A store is filed under the versions of the fold and the schema that built it, and
    # the keys it holds apart.
    fold = hashlib.sha256(b"".join((REPO / "digest" / name).read_bytes()
                                   for name in ("identity.py", "store/schema.py",
                                                "store/filters.py"))
                          + str(KEY_LIMIT).encode()).hexdigest()[:8]
    fuzzy, bare = work / f"store-{size}-{fold}.db", work / f"bare-{size}.db"
    if fuzzy.exists() and bare.exists():
        return fuzzy, bare
    for path in (fuzzy, bare):
        path.unlink(missing_ok=True)
    print(f"building stores of {size:,} papers in {work} ...", file=sys.stderr, flush=True)
    Store(fuzzy).close()
    fconn, bconn = sqlite3.connect(fuzzy), sqlite3.connect(bare)
    bconn.execute("PRAGMA journal_mode=WAL")
    bconn.execute(_BARE_TABLE)
    rng = random.Random(size)
    now = NOW.isoformat()
    for start in range(0, size, 20_000):
        papers: list[tuple[object, ...]] = []
        blocks: list[tuple[int, int, int]] = []
        rows: list[tuple[object, ...]] = []
        for n in range(start, min(size, start + 20_000)):
            title, abstract = make_paper(n, vocab, rng)
            spelling = Spelling.of(title)
            papers.append((n + 1, spelling.key, title, abstract, now))
            blocks.extend((b, n + 1, len(spelling.key)) for b in spelling.blocks)
            rows.append((bare_key(title), title, abstract, None, None, None, now))
        fconn.executemany("INSERT INTO papers (id, key, title, abstract, first_seen) "
                          "VALUES (?, ?, ?, ?, ?)", papers)
        fconn.executemany("INSERT OR IGNORE INTO paper_blocks VALUES (?, ?, ?)", blocks)
        bconn.executemany(_BARE_INSERT, rows)
        fconn.commit()
        bconn.commit()
    fconn.execute(TRIM_CROWDED_BLOCKS)
    BlockFilter.build(fconn)  # as the first dump into a big store would
    # A store that has taken dumps for a while holds half KEY_LIMIT keys on average
    # before they move into paper_keys: a run then moves them as often as it would.
    keys_from = size - min(size, KEY_LIMIT // 2) + 1
    # No index of papers keeps their keys apart any more: a store of generated titles must.
    if not fconn.execute("SELECT COUNT(DISTINCT key) = COUNT(*) FROM papers").fetchone()[0]:
        raise SystemExit(f"{fuzzy}: generated titles share a key")
    fconn.execute("INSERT INTO paper_keys SELECT key, id FROM papers WHERE id < ? ORDER BY key",
                  [keys_from])
    fconn.execute("UPDATE recent_state SET keys_from = ?", [keys_from])
    KeyFilter.build(fconn)
    fconn.commit()
    for conn in (fconn, bconn):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    return fuzzy, bare


# -- the dumps -----------------------------------------------------------------------------

@dataclass(frozen=True)
class DumpSet:
    folder: Path
    papers: int
    respelled: int
    near: int


def write_dumps(work: Path, store_size: int, papers: int, dump_size: int, respell_share: float,
                near_share: float, vocab: Vocabulary, jsonl: bool = False) -> DumpSet:
    """Page-text dumps of `papers` listings: re-spellings and near misses of the store's
    papers, and papers it has never seen."""
    folder = work / f"dumps-{store_size}-{papers}-{dump_size}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = random.Random(7)
    store_rng = random.Random(store_size)
    n_near = min(round(papers * near_share), store_size // 10)
    n_respell = min(round(papers * respell_share), store_size - n_near)
    chosen = rng.sample(range(store_size), min(store_size, n_respell + n_near))
    # The store's titles come from its generator's stream: regenerate them in order.
    stored: dict[int, tuple[str, str]] = {}
    wanted = set(chosen)
    for n in range(max(chosen, default=-1) + 1):
        title, abstract = make_paper(n, vocab, store_rng)
        if n in wanted:
            stored[n] = (title, abstract)
    listings: list[tuple[str, str]] = []
    for i, n in enumerate(chosen):
        title, abstract = stored[n]
        listings.append((respell(title, rng) if i < n_respell else near_miss(title), abstract))
    fresh_rng = random.Random(store_size + 1)
    listings += [make_paper(store_size + n, vocab, fresh_rng)
                 for n in range(papers - len(listings))]
    rng.shuffle(listings)
    manifest = {"respelled": [n + 1 for n in chosen[:n_respell]],
                "near": [n + 1 for n in chosen[n_respell:]]}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    if jsonl:  # an arXiv snapshot, the format read as a stream
        with open(folder / "dump-0000.jsonl", "w", encoding="utf-8") as f:
            for i, (title, abstract) in enumerate(listings):
                f.write(json.dumps({"id": f"{2400 + i // 100_000}.{i % 100_000:05d}",
                                    "title": title, "abstract": abstract,
                                    "authors": "A. Writer", "update_date": "2024-01-02"})
                        + "\n")
        return DumpSet(folder, papers, n_respell, n_near)
    for d, start in enumerate(range(0, papers, dump_size)):
        with open(folder / f"dump-{d:04d}.txt", "w", encoding="utf-8") as f:
            f.write(_HEADER)
            for title, abstract in listings[start:start + dump_size]:
                f.write(f"{title}\n\n{abstract}\n\n  • 5 authors\n·\nNov 19 {len(title) % 40}\n\n")
    return DumpSet(folder, papers, n_respell, n_near)


# -- the two ingests, each in a process of its own -----------------------------------------

def worker(mode: str, db: Path, dumps: Path) -> None:
    """Ingest the dumps into the store and print the figures. The time runs until the
    store is closed: what either path leaves to checkpoint counts."""
    files = sorted(dumps.glob("dump-*"))
    if mode == "fuzzy":  # before the clock starts: loading the CLI's modules is not ingest
        from digest.pipeline import ingest_paths
        from digest.store import open_store
    start, cpu_start = time.perf_counter(), time.process_time()
    worker_mb = 0.0
    if mode == "fuzzy":
        config = Config(state_dir=db.parent, page_year=2024)
        with open_store(db) as store, ChildPeaks() as children:
            results = list(ingest_paths(store, config, files, NOW))
        seconds = time.perf_counter() - start
        # The worker's CPU counts: the run's own is only the part it does not overlap.
        cpu = time.process_time() - cpu_start + children.cpu_seconds
        worker_mb = children.peak_mb
        with open_store(db) as store:
            merges = store.status().fuzzy_merges
            manifest = json.loads((dumps / "manifest.json").read_text(encoding="utf-8"))
            seen = {k: sighted(store.db.conn, ids) for k, ids in manifest.items()}
        bad = [r.error for r in results if r.status != "ingested"]
        papers, new = sum(r.papers for r in results), sum(r.new for r in results)
    else:
        conn = bare_connection(db)
        merges = 0
        bad = []
        seen = {}
        papers, new = bare_ingest(conn, files)
        conn.close()
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
    # The run's parsing worker runs beside it: the peak is the two together.
    rss_mb = peak_rss_mb() + worker_mb
    print(json.dumps({"seconds": seconds, "cpu": cpu, "papers": papers, "new": new,
                      "merges": merges, "rss_mb": rss_mb, "errors": bad, **seen}))


def bare_connection(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA cache_size=-65536")  # the store's settings
    return conn


def bare_ingest(conn: sqlite3.Connection, files: list[Path]) -> tuple[int, int]:
    """The same read, parse and screening as the real path, then one bare insert a dump;
    returns the papers read and the rows inserted."""
    papers = new = 0
    for f in files:
        records = parse_records(read_dump(f), page_year=2024)
        rows = [(bare_key(p.title), p.title, p.abstract, p.authors_count,
                 p.published.isoformat() if p.published else None, p.upvotes,
                 NOW.isoformat()) for p in Screen(str(f)).papers_of(records.items)]
        before = conn.total_changes
        with conn:
            conn.executemany(_BARE_INSERT, rows)
        papers += len(rows)
        new += conn.total_changes - before
    return papers, new


def pages_worker(mode: str, db: Path, dumps: Path) -> None:
    """The distinct pages the ingest of one dump writes, by the table or index they belong
    to: read from the WAL before anything checkpoints it. For the store, also those of a
    second dump during which the keys and the blocks held move, once each."""
    first, second = sorted(dumps.glob("dump-*"))[:2]
    if mode == "fuzzy":
        from digest.pipeline import ingest_file
        from digest.store import matching, open_store

        config = Config(state_dir=db.parent, page_year=2024)
        with open_store(db) as store:
            store.db.execute("PRAGMA wal_autocheckpoint=0")
            ingest_file(store, config, first, NOW)
            pages = {"dump": owned_pages(store.db.conn, db)}
            store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            settle, limits = matching._Batch.settle, (matching.KEY_LIMIT, matching.RECENT_LIMIT)

            def move_once(batch: matching._Batch) -> None:
                matching.KEY_LIMIT = matching.RECENT_LIMIT = 1
                settle(batch)
                matching.KEY_LIMIT, matching.RECENT_LIMIT = limits
                matching._Batch.settle = settle  # type: ignore[method-assign]

            matching._Batch.settle = move_once  # type: ignore[method-assign,assignment]
            ingest_file(store, config, second, NOW)
            pages["moves"] = owned_pages(store.db.conn, db)
    else:
        conn = bare_connection(db)
        conn.execute("PRAGMA wal_autocheckpoint=0")
        bare_ingest(conn, [first])
        pages = {"dump": owned_pages(conn, db)}
        conn.close()
    print(json.dumps(pages))


class Phases:
    """Time spent in some of the store's functions, while they are wrapped: each a phase of
    the run's process. A phase called from within another counts in both."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def wrap(self, owner: Any, name: str, phase: str) -> None:
        found = owner.__dict__[name]
        bound = isinstance(found, classmethod)
        inner = found.__func__ if bound else found
        seconds = self.seconds

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                seconds[phase] += time.perf_counter() - start

        setattr(owner, name, classmethod(timed) if bound else timed)

    def waits(self, items: Any, phase: str) -> Any:
        """Yield from an iterator, timing each wait for its next item."""
        iterator = iter(items)
        while True:
            start = time.perf_counter()
            item = next(iterator, None)
            self.seconds[phase] += time.perf_counter() - start
            if item is None:
                return
            yield item


def phases_worker(db: Path, dumps: Path, moves: bool) -> None:
    """The real ingest with its run's phases timed; with `moves` False the keys and blocks
    are never moved out of memory (not a store anyone could run: an upper bound on what a
    cheaper way of moving them could gain)."""
    from digest.pipeline import ingest_paths
    from digest.store import matching, open_store, papers

    if not moves:
        matching.KEY_LIMIT = matching.RECENT_LIMIT = sys.maxsize
    phases = Phases()
    phases.wrap(matching._StoredIndex, "fetch", "lookups")
    phases.wrap(matching._StoredIndex, "match", "verdicts")
    phases.wrap(matching._Batch, "ingest", "batches")
    phases.wrap(matching._Batch, "settle", "moves")
    phases.wrap(matching._Batch, "__init__", "setup")
    ingest_listings = papers.PaperTables.ingest_listings

    def timed_listings(self: Any, sha256: str, path: str, fmt: str, batches: Any,
                       now: datetime) -> Any:
        start = time.perf_counter()
        try:
            return ingest_listings(self, sha256, path, fmt, phases.waits(batches, "pipe"),
                                   now)
        finally:
            phases.seconds["dumps"] += time.perf_counter() - start

    papers.PaperTables.ingest_listings = timed_listings  # type: ignore[method-assign]
    files = sorted(dumps.glob("dump-*"))
    start, cpu_start = time.perf_counter(), time.process_time()
    with open_store(db) as store, ChildPeaks() as children:
        results = list(ingest_paths(store, Config(state_dir=db.parent, page_year=2024),
                                    files, NOW))
    t = phases.seconds
    print(json.dumps({
        "papers": sum(r.papers for r in results),
        "errors": [r.error for r in results if r.status != "ingested"],
        "seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu_start,
        "worker_cpu": children.cpu_seconds, "pipe": t["pipe"], "lookups": t["lookups"],
        "verdicts": t["verdicts"],
        "filing": t["batches"] - t["lookups"] - t["verdicts"], "moves": t["moves"],
        # Reading the filters and the keys and blocks held: once a run, at its first dump.
        "setup": t["setup"],
        # The rest of a dump's transaction: its commit, which writes what the moves
        # wrote too.
        "commit": t["dumps"] - t["pipe"] - t["batches"] - t["moves"] - t["setup"],
        # Outside the dumps: reading and hashing them, starting the worker and waiting for
        # it to recognise each dump's format, closing the store.
        "outside": time.perf_counter() - start - t["dumps"]}))


def owned_pages(conn: sqlite3.Connection, db: Path) -> Counter[str]:
    """The pages in a database's WAL file, by the table or index that owns them now."""
    owner = dict(conn.execute("SELECT pageno, name FROM dbstat").fetchall())
    return Counter(owner.get(p, "(free)") for p in wal_pages(db))


def wal_pages(db: Path) -> set[int]:
    """The page numbers of the frames in a database's WAL file."""
    wal = Path(f"{db}-wal").read_bytes()
    page_size = int.from_bytes(wal[8:12], "big")
    return {int.from_bytes(wal[at:at + 4], "big")
            for at in range(32, len(wal) - 24, 24 + page_size)}


def sighted(conn: sqlite3.Connection, ids: list[int]) -> int:
    """How many of these stored papers a listing of the dumps joined."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (id INTEGER PRIMARY KEY)")
    conn.execute("DELETE FROM wanted")
    conn.executemany("INSERT INTO wanted VALUES (?)", [(i,) for i in ids])
    return int(conn.execute("SELECT COUNT(DISTINCT paper_id) FROM sightings "
                            "WHERE paper_id IN (SELECT id FROM wanted)").fetchone()[0])


def best_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest of several runs: on a shared machine the slower ones measure the
    neighbours. Peak RSS is the largest seen."""
    best = min(runs, key=lambda r: r["seconds"])
    return {**best, "rss_mb": max(r["rss_mb"] for r in runs)}


def measure(mode: str, source: Path, dumps: DumpSet, work: Path,
            *options: str) -> dict[str, Any]:
    db = work / "run" / f"{mode}.db"
    shutil.rmtree(db.parent, ignore_errors=True)
    db.parent.mkdir(parents=True)
    shutil.copy(source, db)
    # Written back now, not at the run's first checkpoint: its fsync would charge a
    # gigabyte of copying to whichever ingest came first.
    fd = os.open(db, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    out = subprocess.run([sys.executable, __file__, "--worker", mode, "--db", str(db),
                          "--dumps", str(dumps.folder), *options],
                         check=True, capture_output=True, text=True).stdout
    shutil.rmtree(db.parent, ignore_errors=True)
    result: dict[str, Any] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="10000,100000,1000000",
                        help="store sizes, comma separated [10000,100000,1000000]")
    parser.add_argument("--papers", type=int, default=100_000,
                        help="papers ingested into each store [100000]")
    parser.add_argument("--dump-size", type=int, default=10_000,
                        help="papers per dump file [10000]")
    parser.add_argument("--respelled", type=float, default=0.10,
                        help="share of listings re-spelled from stored papers [0.10]")
    parser.add_argument("--near", type=float, default=0.02,
                        help="share of listings that are near misses of stored papers [0.02]")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each ingest; the fastest counts [3]")
    parser.add_argument("--memory", action="store_true",
                        help="instead: peak RSS of the fuzzy ingest by dump size")
    parser.add_argument("--pages", action="store_true",
                        help="instead: the pages one dump's ingest writes, by table")
    parser.add_argument("--phases", action="store_true",
                        help="instead: where the run's time goes, a listing at a time")
    parser.add_argument("--no-moves", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", type=Path, default=REPO / "bench" / ".work")
    parser.add_argument("--worker", choices=("fuzzy", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--dumps", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker and args.phases:
        phases_worker(args.db, args.dumps, moves=not args.no_moves)
        return
    if args.worker:
        (pages_worker if args.pages else worker)(args.worker, args.db, args.dumps)
        return
    args.work_dir.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary()
    if args.memory:
        memory_table(args, vocab)
        return
    if args.pages:
        pages_table(args, vocab)
        return
    if args.phases:
        phases_table(args, vocab)
        return
    print(f"{args.papers:,} papers ingested ({args.dump_size:,} a dump, "
          f"{args.respelled:.0%} re-spelled, {args.near:.0%} near misses)\n")
    print("| stored papers | fuzzy papers/s | baseline papers/s | time ratio | CPU ratio "
          "| fuzzy RSS MB | baseline RSS MB | re-spellings caught | near misses new |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for size in (int(s) for s in args.stores.split(",")):
        fuzzy_db, bare_db = build_stores(args.work_dir, size, vocab)
        dumps = write_dumps(args.work_dir, size, args.papers, args.dump_size, args.respelled,
                            args.near, vocab)
        # Alternate the two, so that both see the same neighbours.
        runs = [(measure("fuzzy", fuzzy_db, dumps, args.work_dir),
                 measure("bare", bare_db, dumps, args.work_dir)) for _ in range(args.repeat)]
        fuzzy, bare = best_of([f for f, _ in runs]), best_of([b for _, b in runs])
        shutil.rmtree(dumps.folder)
        near_new = dumps.near - fuzzy["near"]
        print(f"| {size:,} | {fuzzy['papers'] / fuzzy['seconds']:,.0f} "
              f"| {bare['papers'] / bare['seconds']:,.0f} "
              f"| {fuzzy['seconds'] / bare['seconds']:.2f} | {fuzzy['cpu'] / bare['cpu']:.2f} "
              f"| {fuzzy['rss_mb']:.0f} "
              f"| {bare['rss_mb']:.0f} | {fuzzy['respelled']:,.0f} of {dumps.respelled:,} "
              f"| {near_new:,.0f} of {dumps.near:,} |", flush=True)
        expected_new = dumps.papers - dumps.respelled
        if fuzzy["errors"] or fuzzy["new"] != expected_new:
            print(f"  fuzzy ingest: {fuzzy['new']:,} new, {expected_new:,} expected; "
                  f"errors: {fuzzy['errors']}", file=sys.stderr)


def memory_table(args: argparse.Namespace, vocab: Vocabulary) -> None:
    size = int(args.stores.split(",")[0])
    fuzzy_db, _ = build_stores(args.work_dir, size, vocab)
    print(f"peak RSS of the fuzzy ingest into a store of {size:,}, by the size of one "
          "arXiv JSON Lines dump (a format read as a stream)\n")
    print("| papers in the dump | papers/s | peak RSS MB |")
    print("| ---: | ---: | ---: |")
    for papers in (1_000, 10_000, args.papers):
        dumps = write_dumps(args.work_dir, size, papers, papers, args.respelled, args.near,
                            vocab, jsonl=True)
        result = best_of([measure("fuzzy", fuzzy_db, dumps, args.work_dir)
                          for _ in range(args.repeat)])
        shutil.rmtree(dumps.folder)
        print(f"| {papers:,} | {result['papers'] / result['seconds']:,.0f} "
              f"| {result['rss_mb']:.0f} |", flush=True)
        if result["errors"]:
            print(f"  errors: {result['errors']}", file=sys.stderr)


# Where a store files titles' blocks and keys (store/recent.py, store/filters.py).
_INDEX_TABLES = ("paper_blocks", "paper_keys", "recent_papers", "recent_state",
                 "block_filter", "key_filter")


def pages_table(args: argparse.Namespace, vocab: Vocabulary) -> None:
    print(f"pages written by the ingest of one dump of {args.dump_size:,} papers "
          f"({args.respelled:.0%} re-spelled, {args.near:.0%} near misses), before the "
          "checkpoint that writes them again; for the store, also by one during which the "
          f"keys and blocks held move (keys move once per {KEY_LIMIT:,} new papers, "
          f"blocks once per {RECENT_LIMIT:,} blocks filed)\n")
    print("| stored papers | fuzzy: pages | of them the block and key tables "
          "| fuzzy, a dump with both moves | baseline: pages |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for size in (int(s) for s in args.stores.split(",")):
        fuzzy_db, bare_db = build_stores(args.work_dir, size, vocab)
        dumps = write_dumps(args.work_dir, size, 2 * args.dump_size, args.dump_size,
                            args.respelled, args.near, vocab)
        fuzzy = measure("fuzzy", fuzzy_db, dumps, args.work_dir, "--pages")
        bare = measure("bare", bare_db, dumps, args.work_dir, "--pages")
        shutil.rmtree(dumps.folder)
        dump, moves = fuzzy["dump"], fuzzy["moves"]
        indexes = sum(n for name, n in dump.items() if name in _INDEX_TABLES)
        print(f"| {size:,} | {sum(dump.values()):,} | {indexes:,} | {sum(moves.values()):,} "
              f"| {sum(bare['dump'].values()):,} |", flush=True)


_PHASES = ("pipe", "lookups", "verdicts", "filing", "moves", "setup", "commit", "outside")


def phases_table(args: argparse.Namespace, vocab: Vocabulary) -> None:
    print(f"µs a listing of the fuzzy ingest of {args.papers:,} papers "
          f"({args.dump_size:,} a dump), the fastest of {args.repeat} runs: the wall time, "
          "the CPU time of the run's process and of its parsing worker, and where the run's "
          "time goes; then the wall time of the same ingest with the keys and blocks never "
          "moved out of memory (not a store anyone could run: a bound on what cheaper "
          "moves could gain)\n")
    print("| stored papers | wall | run CPU | worker CPU | waiting for listings | lookups "
          "| verdicts | filing and inserts | moves | reading what is held | commit "
          "| outside the dumps | wall, no moves |")
    print("| ---: " * 13 + "|")
    walls: dict[int, tuple[float, float, float]] = {}
    for size in (int(s) for s in args.stores.split(",")):
        fuzzy_db, _ = build_stores(args.work_dir, size, vocab)
        dumps = write_dumps(args.work_dir, size, args.papers, args.dump_size, args.respelled,
                            args.near, vocab)
        runs = [(measure("fuzzy", fuzzy_db, dumps, args.work_dir, "--phases"),
                 measure("fuzzy", fuzzy_db, dumps, args.work_dir, "--phases", "--no-moves"))
                for _ in range(args.repeat)]
        shutil.rmtree(dumps.folder)
        best = min((r for r, _ in runs), key=lambda r: r["seconds"])
        unmoved = min((r for _, r in runs), key=lambda r: r["seconds"])
        for errors in {e for run in runs for r in run for e in r["errors"]}:
            print(f"  fuzzy ingest: {errors}", file=sys.stderr)
        per = 1e6 / best["papers"]
        cells = [best["seconds"], best["cpu"], best["worker_cpu"],
                 *(best[p] for p in _PHASES), unmoved["seconds"]]
        print(f"| {size:,} | " + " | ".join(f"{c * per:.1f}" for c in cells) + " |",
              flush=True)
        walls[size] = (best["seconds"], unmoved["seconds"],
                       best["cpu"] + best["worker_cpu"])
    smallest = min(walls)
    for size, (wall, wall_unmoved, cpu) in walls.items():
        if size != smallest:
            first = walls[smallest]
            print(f"\n{size:,} stored against {smallest:,}: {first[0] / wall:.0%} of the "
                  f"throughput, {first[1] / wall_unmoved:.0%} with no moves; the two "
                  f"processes' CPU time {cpu / first[2]:.2f} times as much", end="")
    print()


if __name__ == "__main__":
    main()
