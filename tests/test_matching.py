"""The store's matching on real SQLite files: re-spelled seed titles join their papers,
near misses stay new, merges are recorded and explained, arXiv ids decide, old stores
migrate."""

from __future__ import annotations

import json
import random
import sqlite3
import string
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from stores import as_version_8, key_faults

from digest.cli import main
from digest.dumps import parse_dump, read_dump
from digest.errors import DumpError
from digest.identity import Listing, normalise, title_blocks, title_key
from digest.model import Paper
from digest.store import _MIGRATIONS, SCHEMA_VERSION, Store, matching, open_store
from digest.store.matching import BLOCK_LIMIT

DATA = Path(__file__).resolve().parent / "data"
NOW = datetime(2025, 3, 1, 8, 0)
HEADER = ("new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\n"
          "byAK and the research community\n\nNov 20\n\n")


def run(state: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--state-dir", str(state), *args])
    return result.exit_code, result.stdout


def write_page(path: Path, listings: list[tuple[str, str]]) -> Path:
    """A dump in the page-text format of samples/."""
    body = "".join(f"{title}\n\n{abstract}\n\n  • 3 authors\n·\nNov 19 4\n\n"
                   for title, abstract in listings)
    path.write_text(HEADER + body, encoding="utf-8")
    return path


def test_respelled_seeds_join_their_papers_and_only_near_misses_are_new(
        tmp_path: Path, seeds: list[Path]) -> None:
    state = tmp_path / "state"
    code, out = run(state, "ingest", *map(str, seeds), "--year", "2024", "--json")
    assert code == 0
    # The seed abstracts, as a second source would list them.
    abstracts = {p.title: p.abstract for dump in seeds
                 for p in parse_dump(read_dump(dump), page_year=2024).papers}
    cases = json.loads((DATA / "identity_cases.json").read_text(encoding="utf-8"))
    respelled = [(c["variant"], abstracts[c["stored"]]) for c in cases["merge"]
                 if c["stored"] in abstracts and "\n" not in c["variant"]]
    near = [(c["variant"], c["abstract"]) for c in cases["distinct"]
            if c["kind"] != "real-pair" and c["stored"] in abstracts and "abstract" in c]
    listings = [x for pair in zip(respelled, near * 5, strict=False) for x in pair]
    listings += respelled[len(near) * 5:]
    write_page(tmp_path / "respelled.txt", listings)

    code, out = run(state, "ingest", str(tmp_path / "respelled.txt"), "--year", "2024",
                    "--json")
    assert code == 0
    near_keys = {title_key(t) for t, _ in near}
    (dump,) = json.loads(out)["dumps"]
    assert (dump["papers"], dump["new"]) == (len(listings), len(near_keys))
    _, status = run(state, "status", "--json")
    counts = json.loads(status)
    assert counts["papers"] == 354 + len(near_keys)
    seed_keys = {title_key(s) for s in abstracts}
    fuzzy = {t for t, _ in respelled if title_key(t) not in seed_keys}
    assert counts["fuzzy_merges"] == len(fuzzy) > 100


def test_a_title_with_a_control_character_is_one_paper_however_often_listed(
        store: Store) -> None:
    title = "Graph\x00Kernels Revisited\x07"
    assert title_key(title) == title_key("Graph Kernels Revisited")
    store.ingest_dump("a" * 64, "one", "test", [Paper(title)], NOW)
    assert store.ingest_dump("b" * 64, "two", "test", [Paper(title)], NOW).new == 0


def test_the_two_physics_parts_stay_two_papers(store: Store) -> None:
    store.ingest_dump("a" * 64, "one", "test", [
        Paper("Physics of Language Models: Part 3.1, Knowledge Storage and Extraction", "a"),
        Paper("Physics of Language Models: Part 3.3, Knowledge Capacity Scaling Laws", "b"),
        Paper("Physics of Language Models: Part 3.1, Knowledge Storage and Extraction", "a"),
    ], NOW)
    assert store.status().papers == 2


def test_a_fuzzy_merge_is_recorded_and_explained(store: Store, tmp_path: Path) -> None:
    title = "Retrieval Helps or Hurts? A Deeper Dive into the Efficacy of Retrieval Augmentation"
    store.ingest_dump("a" * 64, "first.txt", "test", [Paper(title, "x")], NOW)
    seen = title.replace("Retrieval Aug", "Retrival Aug")
    counts = store.ingest_dump("b" * 64, "second.txt", "test", [Paper(seen, "")], NOW)
    assert counts.new == 0
    (merge,) = store.merges()
    assert (merge.title, merge.paper_title, merge.dump) == (seen, title, "second.txt")
    assert 95 < merge.score < 100 and "misspelt" in merge.reason
    assert store.status().fuzzy_merges == 1
    assert store.explain(seen).verdict.kind == "fuzzy"  # type: ignore[union-attr]
    assert store.explain(title.upper()).verdict.kind == "exact"  # type: ignore[union-attr]


def test_the_arxiv_id_is_the_identity(store: Store) -> None:
    store.ingest_dump("a" * 64, "one", "test", [
        Paper("Attention Is All You Need", "a", arxiv_id="1706.03762"),
        Paper("Attention is all you need (v2)", "a", arxiv_id="1706.03762"),
        Paper("Attention Is All You Need", "b", arxiv_id="2401.00001"),
        Paper("Attention Is All You Need.", "b"),
    ], NOW)
    assert store.status().papers == 2
    by_arxiv = {p.arxiv_id: p.dumps for p in store.undelivered()}
    assert set(by_arxiv) == {"1706.03762", "2401.00001"}


def test_a_title_match_fills_the_arxiv_id(store: Store) -> None:
    store.ingest_dump("a" * 64, "one", "test", [Paper("Orca 2: Teaching Small Models", "a")],
                      NOW)
    store.ingest_dump("b" * 64, "two", "test",
                      [Paper("ORCA 2 - Teaching Small Models", "a", arxiv_id="2311.11045")], NOW)
    (paper,) = store.undelivered()
    assert (paper.arxiv_id, paper.dumps) == ("2311.11045", 2)


def test_spellings_meet_across_and_within_batches(store: Store) -> None:
    title = "Unleashing the Power of Pre-trained Language Models for Offline Reinforcement Learning"
    papers = [Paper(title, "a"), Paper("Some Other Paper Entirely", "b"),
              Paper(title.replace("Offline", "Oflfine"), "a"), Paper(title.lower() + ".", "a"),
              Paper(title.replace("Power", "Powr"), "a")]
    counts = store.ingest_dump("a" * 64, "one", "test", papers, NOW, batch_size=2)
    assert (counts.papers, counts.new) == (5, 2)
    counts = store.ingest_dump("b" * 64, "two", "test", papers, NOW, batch_size=500)
    assert counts.new == 0
    assert store.status().fuzzy_merges == 4


def test_digest_why_says_which_paper_and_why(tmp_path: Path, seeds: list[Path]) -> None:
    state = tmp_path / "state"
    run(state, "ingest", *map(str, seeds), "--year", "2024")
    code, out = run(state, "why", "Physics of Language Models: Part 3.2, Knowledge Storage "
                    "and Extraction")
    assert code == 0
    assert "new: no stored paper" in out
    assert "closest turned down" in out and "numbers differ: 3.2 vs 3.1" in out
    code, out = run(state, "why", "PHYSICS OF LANGUAGE MODELS - PART 3.1, KNOWLEDGE STORAGE "
                    "AND EXTRACTON", "--json")
    report = json.loads(out)
    assert report["paper"]["title"] == ("Physics of Language Models: Part 3.1, Knowledge "
                                        "Storage and Extraction")
    assert report["paper"]["kind"] == "fuzzy" and 95 < report["paper"]["score"] < 100


def test_a_version_1_store_is_rekeyed_and_blocked(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    conn = sqlite3.connect(path)
    for sql in _MIGRATIONS[0]:
        conn.execute(sql)
    old = [("llm times mapreduce simplified long sequence processing",
            "LLM$\\times$MapReduce: Simplified Long-Sequence Processing"),
           ("pre trained models are robust", "Pre-trained Models are Robust"),
           ("pretrained models are robust", "Pretrained Models are Robust")]
    conn.executemany("INSERT INTO papers (key, title, first_seen) VALUES (?, ?, '2024-01-01')",
                     old)
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()

    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION == 9
    # An index no query reads, dropped by version 8.
    assert store.db.execute("SELECT COUNT(*) FROM sqlite_master "
                            "WHERE name = 'sightings_dump'").fetchone()[0] == 0
    keys = [r[0] for r in store.db.execute("SELECT key FROM papers ORDER BY id")]
    # The two spellings that now share a key stay the two papers they were.
    assert keys == ["llmtimesmapreducesimplifiedlongsequenceprocessing",
                    "pretrainedmodelsarerobust", "pretrained models are robust"]
    # Version 9: the keys are in paper_keys, and papers is built again without their index.
    assert dict(store.db.execute("SELECT paper_id, key FROM paper_keys")) == dict(
        enumerate(keys, 1))
    assert [[c[2] for c in store.db.execute(f"PRAGMA index_info({i[1]})")]
            for i in store.db.execute("PRAGMA index_list(papers)")] == [["arxiv_id"]]
    assert store.db.execute("PRAGMA foreign_key_list(sightings)").fetchall()
    match = store.explain("LLMtimesMapReduce: Simplified Long-Sequence Processing")
    assert match.paper is not None and match.paper.id == 1
    match = store.explain("LLM$\\times$MapReduce: Simplified Long-Sequence Procesing")
    assert match.paper is not None and match.verdict is not None
    assert (match.paper.id, match.verdict.kind) == (1, "fuzzy")
    store.close()


def test_a_block_every_title_shares_is_not_looked_through(store: Store) -> None:
    # "paper number" is a block of every title here; looked through, each listing would be
    # judged against all before it.
    papers = [Paper(f"Paper number {n}", "x") for n in range(3000)]
    assert store.ingest_dump("a" * 64, "one", "test", papers, NOW).new == 3000
    counts = store.ingest_dump("b" * 64, "two", "test", [Paper("Paper numbr 1717", "")], NOW)
    assert counts.new == 0
    (merge,) = store.merges()
    assert merge.paper_title == "Paper number 1717"
    # The block keeps only the rows that mark it crowded: no lookup would read more.
    blocks = store.db.execute(f"SELECT COUNT(*) FROM {_EITHER_TABLE} GROUP BY block "
                              "ORDER BY 1 DESC LIMIT 1").fetchone()[0]
    assert blocks == BLOCK_LIMIT + 1


# The block rows of recent papers, and those of both places a block is filed.
_RECENT = ("(SELECT b.value AS block, r.paper_id, r.length "
           "FROM recent_papers r, json_each(r.blocks) b)")
_EITHER_TABLE = f"(SELECT * FROM paper_blocks UNION ALL SELECT * FROM {_RECENT})"


def _block_rows(store: Store) -> list[int]:
    return [store.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
            for t in ("paper_blocks", _RECENT)]


def test_blocks_move_in_bulk_and_are_found_in_either_place(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matching, "RECENT_LIMIT", 12)
    first = [Paper(f"Sparse Mixture of {w} Experts for Protein Folding", "")
             for w in ("Gated", "Routed", "Shared")]  # 12 blocks: they move at once
    store.ingest_dump("a" * 64, "one", "test", first, NOW)
    assert _block_rows(store) == [12, 0]
    second = Paper("Quantised Retrieval Heads in Long Context Decoders", "")
    store.ingest_dump("b" * 64, "two", "test", [second], NOW)
    assert _block_rows(store) == [12, 4]
    # One re-spelling whose paper is filed in each table, and one listing that is new.
    counts = store.ingest_dump("c" * 64, "three", "test", [
        Paper("Sparse Mixture of Routed Experts for Protien Folding", ""),
        Paper("Quantised Retrieval Heads in Long Context Decoder", ""),
        Paper("Sparse Mixture of Routed Experts for RNA Folding", "")], NOW)
    assert (counts.papers, counts.new) == (3, 1)
    assert [m.paper_title for m in store.merges()] == [first[1].title, second.title]


def test_a_big_dump_moves_its_blocks_as_it_goes(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory holds RECENT_LIMIT blocks at most, however big the dump; a listing later in
    the dump still finds a paper whose blocks have moved."""
    monkeypatch.setattr(matching, "RECENT_LIMIT", 12)
    titles = [f"Sparse Mixture of {w} Experts for Protein Folding"
              for w in ("Gated", "Routed", "Shared", "Pruned", "Tied", "Frozen")]
    papers = [Paper(t) for t in titles] + [Paper(t.replace("Protein", "Protien"))
                                           for t in titles]
    counts = store.ingest_dump("a" * 64, "one", "test", papers, NOW, batch_size=2)
    assert (counts.papers, counts.new) == (12, 6)
    assert len(store.merges()) == 6
    moved, recent = _block_rows(store)
    assert moved == 24 - recent and 0 < recent < 12  # moved after the second batch


def test_recent_blocks_held_by_one_process_are_read_again_after_another_files_some(
        tmp_path: Path) -> None:
    one, other = Store(tmp_path / "digest.db"), Store(tmp_path / "digest.db")
    mine = "Sparse Mixture of Gated Experts for Protein Folding"
    theirs = "Quantised Retrieval Heads in Long Context Decoders"
    one.ingest_dump("a" * 64, "one", "test", [Paper(mine)], NOW)  # `one` holds its blocks
    other.ingest_dump("b" * 64, "two", "test", [Paper(theirs)], NOW)
    counts = one.ingest_dump("c" * 64, "three", "test", [
        Paper("Quantised Retrieval Heads in Long Context Decoder"),
        Paper("Sparse Mixture of Gated Experts for Protien Folding")], NOW)
    assert (counts.papers, counts.new) == (2, 0)
    one.close()
    other.close()


def test_recent_blocks_of_a_dump_rolled_back_are_not_held(store: Store) -> None:
    """A dump that fails half-way files its first batch's papers in memory before it is
    rolled back: those must not be found, or a later listing would join a paper the store
    does not have."""
    title = "Sparse Mixture of Gated Experts for Protein Folding"
    store.ingest_dump("c" * 64, "first.txt", "test", [Paper("Graph Kernels Revisited")], NOW)

    def batches() -> Iterator[list[Listing]]:
        yield [Listing.of(Paper(title))]
        raise DumpError("bad.txt", "broken record", line=9)

    with pytest.raises(DumpError):
        store.ingest_listings("a" * 64, "bad.txt", "test", batches(), NOW)
    counts = store.ingest_dump("b" * 64, "good.txt", "test",
                               [Paper("Sparse Mixture of Gated Experts for Protien Folding")],
                               NOW)
    assert (counts.papers, counts.new) == (1, 1)
    assert store.merges() == [] and store.status().papers == 2


def test_recent_blocks_are_read_once_by_a_process_that_alone_writes_the_store(
        store: Store) -> None:
    store.ingest_dump("a" * 64, "one", "test", [Paper("Graph Kernels Revisited")], NOW)
    reads: list[str] = []
    store.db.conn.set_trace_callback(
        lambda sql: reads.append(sql) if "FROM recent_papers" in sql else None)
    for n in range(3):
        store.ingest_dump(str(n) * 64, f"dump-{n}", "test",
                          [Paper(f"Sparse Mixture of Gated Experts, Part {n}")], NOW)
    store.db.conn.set_trace_callback(None)
    assert reads == []
    assert store.db.execute("SELECT COUNT(*) FROM recent_papers").fetchone()[0] == 4


def test_recent_blocks_are_read_from_the_store_by_a_new_process(tmp_path: Path) -> None:
    title = "Sparse Mixture of Gated Experts for Protein Folding"
    with open_store(tmp_path / "digest.db") as store:
        store.ingest_dump("a" * 64, "one", "test", [Paper(title)], NOW)
    with open_store(tmp_path / "digest.db") as store:
        match = store.explain("Sparse Mixture of Gated Experts for Protien Folding")
        assert match.paper is not None and match.paper.title == title


_GATED = [f"Sparse Mixture of {w} Experts for Protein Folding"
          for w in ("Gated", "Routed", "Shared", "Pruned", "Tied", "Frozen")]


@pytest.fixture
def keys_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No block is looked through: a listing finds its paper by its key or not at all."""
    monkeypatch.setattr(matching, "BLOCK_LIMIT", 0)


@pytest.mark.usefixtures("keys_only")
def test_keys_move_in_bulk_and_are_found_in_either_place(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matching, "KEY_LIMIT", 3)
    store.ingest_dump("a" * 64, "one", "test", [Paper(t) for t in _GATED[:3]], NOW)
    store.ingest_dump("b" * 64, "two", "test", [Paper(t) for t in _GATED[3:5]], NOW)
    assert store.db.execute("SELECT COUNT(*) FROM paper_keys").fetchone()[0] == 3
    assert not key_faults(store.path)
    # Listed again as they were: each is its paper by its exact key, in either place,
    # which records no fuzzy merge.
    counts = store.ingest_dump("c" * 64, "three", "test",
                               [Paper(t) for t in _GATED], NOW)
    assert (counts.papers, counts.new) == (6, 1)
    assert store.merges() == []
    assert not key_faults(store.path)


@pytest.mark.usefixtures("keys_only")
def test_a_big_dump_moves_its_keys_as_it_goes(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matching, "KEY_LIMIT", 3)
    papers = [Paper(t) for t in _GATED] + [Paper(t.upper()) for t in _GATED]
    counts = store.ingest_dump("a" * 64, "one", "test", papers, NOW, batch_size=2)
    assert (counts.papers, counts.new) == (12, 6)
    assert store.merges() == []
    # Moved after the second batch of two; the third's two are held.
    assert store.db.execute("SELECT COUNT(*) FROM paper_keys").fetchone()[0] == 4
    assert not key_faults(store.path)


@pytest.mark.usefixtures("keys_only")
def test_recent_keys_held_by_one_process_are_read_again_after_another_files_some(
        tmp_path: Path) -> None:
    one, other = Store(tmp_path / "digest.db"), Store(tmp_path / "digest.db")
    one.ingest_dump("a" * 64, "one", "test", [Paper(_GATED[0])], NOW)  # `one` holds its key
    other.ingest_dump("b" * 64, "two", "test", [Paper(_GATED[1])], NOW)
    counts = one.ingest_dump("c" * 64, "three", "test", [Paper(_GATED[1])], NOW)
    assert (counts.papers, counts.new) == (1, 0)
    assert one.merges() == []
    one.close()
    other.close()


@pytest.mark.usefixtures("keys_only")
def test_recent_keys_of_a_dump_rolled_back_are_not_held(store: Store) -> None:
    store.ingest_dump("c" * 64, "first.txt", "test", [Paper("Graph Kernels Revisited")], NOW)

    def batches() -> Iterator[list[Listing]]:
        yield [Listing.of(Paper(_GATED[0]))]
        raise DumpError("bad.txt", "broken record", line=9)

    with pytest.raises(DumpError):
        store.ingest_listings("a" * 64, "bad.txt", "test", batches(), NOW)
    counts = store.ingest_dump("b" * 64, "good.txt", "test", [Paper(_GATED[0])], NOW)
    assert (counts.papers, counts.new) == (1, 1)
    assert store.status().papers == 2


@pytest.mark.usefixtures("keys_only")
def test_recent_keys_are_read_from_the_store_by_a_new_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matching, "KEY_LIMIT", 2)
    with open_store(tmp_path / "digest.db") as store:
        store.ingest_dump("a" * 64, "one", "test", [Paper(t) for t in _GATED[:2]], NOW)
        store.ingest_dump("b" * 64, "two", "test", [Paper(_GATED[2])], NOW)
    with open_store(tmp_path / "digest.db") as store:
        for title in _GATED[:3]:  # two moved, one recent
            match = store.explain(title.lower())
            assert match.paper is not None and match.verdict is not None
            assert (match.paper.title, match.verdict.kind) == (title, "exact")


def test_a_title_with_another_arxiv_id_is_another_paper_after_its_key_moved(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matching, "KEY_LIMIT", 1)
    title = "Orca 2: Teaching Small Language Models How to Reason"
    for n, arxiv_id in enumerate(("2311.11045", "2311.99999", "2311.99999")):
        store.ingest_dump(str(n) * 64, f"dump-{n}", "test",
                          [Paper(title, "", arxiv_id=arxiv_id)], NOW)
    assert store.status().papers == 2
    assert not key_faults(store.path)
    # A listing without an id is the first paper, the one its key names.
    match = store.explain(title)
    assert match.paper is not None and match.paper.arxiv_id == "2311.11045"


def _random_titles(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join("".join(rng.choices(string.ascii_lowercase, k=rng.randint(5, 9)))
                     for _ in range(6)).title() for _ in range(n)]


@pytest.mark.parametrize(("recent_limit", "key_limit"), [(1, 1), (25, 4), (7, 3)])
def test_blocks_and_keys_move_soundly_between_processes_and_failed_dumps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recent_limit: int,
        key_limit: int) -> None:
    """Two processes take turns, every fifth dump fails after two batches, and both moves
    come at every batch or at odd times: no key is lost or doubled, every title is found
    by its key, and nothing listed again is new."""
    monkeypatch.setattr(matching, "RECENT_LIMIT", recent_limit)
    monkeypatch.setattr(matching, "KEY_LIMIT", key_limit)
    path = tmp_path / "digest.db"
    titles = _random_titles(60, 2)
    stores = [Store(path), Store(path)]
    rng = random.Random(3)
    filed: set[str] = set()
    for n in range(24):
        store = stores[rng.randrange(2)]
        chunk = rng.sample(titles, 7)
        if n % 5 == 4:
            def batches(chunk: list[str] = chunk) -> Iterator[list[Listing]]:
                yield [Listing.of(Paper(t)) for t in chunk[:3]]
                yield [Listing.of(Paper(t)) for t in chunk[3:6]]
                raise DumpError("bad.txt", "broken record", line=9)
            with pytest.raises(DumpError):
                store.ingest_listings(f"{n:064d}", "bad", "test", batches(), NOW)
            continue
        counts = store.ingest_dump(f"{n:064d}", f"d{n}", "test",
                                   [Paper(t) for t in chunk], NOW, batch_size=3)
        assert counts.new == len(set(chunk) - filed), n
        filed |= set(chunk)
        assert not key_faults(path), n
    for store in stores:
        for title in filed:
            match = store.explain(title.lower())
            assert match.verdict is not None and match.verdict.kind == "exact"
    counts = stores[0].ingest_dump("f" * 64, "all", "test",
                                   [Paper(t.upper()) for t in sorted(filed)], NOW, batch_size=4)
    assert counts.new == 0 and stores[0].status().papers == len(filed)
    for store in stores:
        store.close()


def test_a_dump_rolled_back_after_its_keys_moved_leaves_them_as_they_were(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matching, "KEY_LIMIT", 2)
    titles = _random_titles(6, 4)
    store.ingest_dump("a" * 64, "first", "test", [Paper(titles[0])], NOW)  # held

    def batches() -> Iterator[list[Listing]]:
        yield [Listing.of(Paper(t)) for t in titles[1:3]]  # three held: the keys move
        yield [Listing.of(Paper(titles[3]))]
        raise DumpError("bad.txt", "broken record", line=9)

    with pytest.raises(DumpError):
        store.ingest_listings("b" * 64, "bad", "test", batches(), NOW)
    assert not key_faults(store.path)
    assert store.explain(titles[1]).paper is None
    counts = store.ingest_dump("c" * 64, "good", "test", [Paper(t) for t in titles], NOW)
    assert (counts.papers, counts.new) == (6, 5)
    assert not key_faults(store.path)


def test_digest_why_finds_keys_another_process_moved_or_holds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matching, "KEY_LIMIT", 2)
    titles = _random_titles(5, 5)
    one, other = Store(tmp_path / "digest.db"), Store(tmp_path / "digest.db")
    one.ingest_dump("a" * 64, "one", "test", [Paper(titles[0])], NOW)
    assert one.explain(titles[0]).paper is not None  # `one` holds its key
    other.ingest_dump("b" * 64, "two", "test", [Paper(t) for t in titles[1:3]], NOW)  # moved
    other.ingest_dump("c" * 64, "three", "test", [Paper(titles[3])], NOW)  # held by `other`
    for title in titles[:4]:
        match = one.explain(title.upper())
        assert match.paper is not None and match.paper.title == title
    counts = one.ingest_dump("d" * 64, "four", "test", [Paper(t) for t in titles], NOW)
    assert (counts.papers, counts.new) == (5, 1)
    one.close()
    other.close()


def test_a_version_4_store_loses_the_rows_of_its_crowded_blocks(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    store = Store(path)
    store.ingest_dump("a" * 64, "one", "test",
                      [Paper(f"Paper number {n}", "") for n in range(200)], NOW)
    # As version 4 wrote them: every paper under every one of its blocks, in one table.
    store.db.execute(f"INSERT INTO paper_blocks SELECT * FROM {_RECENT}")
    store.db.execute("""INSERT OR IGNORE INTO paper_blocks
                        SELECT b.block, p.id, 12 FROM papers p, paper_blocks b
                        WHERE b.paper_id = 1 AND b.block IN (
                            SELECT block FROM paper_blocks GROUP BY block HAVING COUNT(*) > 1)""")
    assert store.db.execute("SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM paper_blocks "
                            "GROUP BY block)").fetchone()[0] == 200
    store.close()
    as_version_8(path)
    with sqlite3.connect(path) as conn:
        for table in ("recent_papers", "recent_state", "block_filter"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("PRAGMA user_version = 4")
    conn.close()

    store = Store(path)
    rows = dict(store.db.execute("SELECT block, COUNT(*) FROM paper_blocks GROUP BY block"))
    store.close()
    # "number paper" (the two words) keeps 65 rows; "paper N" and "number N", one each.
    assert sorted(rows.values())[-1] == BLOCK_LIMIT + 1 and len(rows) == 401


def test_a_title_misspelt_in_its_only_rare_word_is_found_past_a_crowded_block(
        store: Store) -> None:
    # "large language models" is a block of every title here, and crowded: the one word
    # that tells "... Data Preprocessors" apart is the one misspelt.
    rng = random.Random(0)
    names = ("".join(rng.choices(string.ascii_lowercase, k=9)) for _ in range(100))
    crowd = [Paper(f"Large Language Models as {name.capitalize()}", "") for name in names]
    title = "Large Language Models as Data Preprocessors"
    store.ingest_dump("a" * 64, "one", "test", [*crowd, Paper(title, "")], NOW)
    for n, seen in enumerate(("Large Language Models as Data Preprocesors",
                              "Large Language Models as Data Prepocessors",
                              "Large Language Models as Data Preprocessorss")):
        counts = store.ingest_dump(str(n) * 64, f"seen-{n}", "test", [Paper(seen, "")], NOW)
        assert counts.new == 0, seen
    assert [m.paper_title for m in store.merges()] == [title] * 3


def test_a_version_5_store_files_its_titles_under_their_new_blocks(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    store = Store(path)
    rng = random.Random(1)
    title = "Large Language Models as Data Preprocessors"
    store.ingest_dump("a" * 64, "one", "test", [
        *(Paper(f"Large Language Models as {''.join(rng.choices(string.ascii_lowercase, k=9))}",
                "") for _ in range(100)), Paper(title, "")], NOW)
    store.close()
    as_version_8(path)
    with sqlite3.connect(path) as conn:  # as version 5 filed it: its word combinations only
        conn.execute(_MIGRATIONS[4][0])  # CREATE TABLE recent_blocks
        conn.execute(f"INSERT INTO recent_blocks SELECT * FROM {_RECENT} WHERE paper_id < 101")
        conn.executemany("INSERT INTO recent_blocks VALUES (?, 101, ?)",
                         [(b, len(title_key(title)))
                          for b in title_blocks(normalise(title))[:4]])
        for table in ("recent_papers", "recent_state", "block_filter"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("PRAGMA user_version = 5")
    conn.close()

    store = Store(path)
    match = store.explain("Large Language Models as Data Preprocesors")
    assert match.paper is not None and match.paper.title == title
    assert _block_rows(store)[1] == 0
    blocks = {b for (b,) in store.db.execute("SELECT block FROM paper_blocks "
                                             "WHERE paper_id = 101")}
    # Its three combinations with "preprocessors" and the two new ones; the crowded
    # combination of common words keeps its first 65 papers, and this is not one.
    assert blocks == set(title_blocks(normalise(title))) - {blocks_of_the_crowd(store)}
    store.close()


def blocks_of_the_crowd(store: Store) -> int:
    """The one crowded block of a store."""
    (block,) = store.db.execute(
        f"SELECT block FROM {_EITHER_TABLE} GROUP BY block HAVING COUNT(*) > ?",
        [BLOCK_LIMIT]).fetchall()
    return int(block[0])


def test_a_merge_that_brings_an_arxiv_id_makes_it_that_papers_id(store: Store) -> None:
    store.ingest_dump("a" * 64, "one", "test", [Paper("Orca 2: Teaching Small Models", "")],
                      NOW)
    counts = store.ingest_dump("b" * 64, "two", "test", [
        Paper("ORCA 2 - Teaching Small Models", "", arxiv_id="2311.11045"),
        Paper("Orca 2: Teaching Small Language Models How to Reason", "",
              arxiv_id="2311.11045"),  # the id decides, whatever the title
        Paper("Orca 2: Teaching Small Models.", "", arxiv_id="2401.99999")], NOW)
    assert (counts.papers, counts.new) == (3, 1)
    ids = sorted((p.arxiv_id or "", p.dumps) for p in store.undelivered())
    assert ids == [("2311.11045", 2), ("2401.99999", 1)]


def test_a_crowded_block_stays_crowded_when_titles_come_back_with_other_ids(
        store: Store) -> None:
    first = [Paper(f"Paper number {n}", "", arxiv_id=f"2401.{n:05d}") for n in range(100)]
    again = [Paper(f"Paper number {n}", "", arxiv_id=f"2402.{n:05d}") for n in range(100)]
    store.ingest_dump("a" * 64, "one", "test", first, NOW)
    assert store.ingest_dump("b" * 64, "two", "test", again, NOW).new == 100
    # Another id is another paper, and its blocks are looked up before it is filed.
    crowd = blocks_of_the_crowd(store)
    rows = store.db.execute(f"SELECT COUNT(*) FROM {_EITHER_TABLE} WHERE block = ?", [crowd])
    assert rows.fetchone()[0] == BLOCK_LIMIT + 1  # and it got no more rows
