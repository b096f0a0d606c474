"""Hostile and broken dumps beside the real seeds: each fails alone, on one line naming the
file (and line or record), recorded as failed, nothing of it ingested, the file left where
it was, and every seed still ingested."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import main

DATA = Path(__file__).resolve().parent / "data"
HEADER = ("new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\n"
          "byAK and the research community\n\nNov 10\n\n")
SEED_PAPERS = 354


def _scraped(*titles: str) -> bytes:
    papers = [{"id": f"2603.{i:05d}", "arxivId": f"2603.{i:05d}", "title": t,
               "authors": ["A. Writer,"], "abstract": "An abstract.", "upvotes": 3}
              for i, t in enumerate(titles, 1)]
    return json.dumps({"date": "2026-03-05", "papers": papers}, ensure_ascii=False).encode()


def _arxiv_line(n: int, title: str = "A title") -> str:
    return json.dumps({"id": f"2401.{n:05d}", "submitter": "S", "authors": "A. Writer",
                       "title": title, "abstract": "  An abstract.\n", "categories": "cs.LG",
                       "versions": [{"version": "v1", "created": "Mon, 1 Jan 2024 00:00:00 GMT"}],
                       "update_date": "2024-01-02", "authors_parsed": [["Writer", "A.", ""]]})


def _real_truncated() -> bytes:
    real = (DATA / "hf-scraped-json" / "2026-03-05.json").read_bytes()
    return real[: len(real) // 2]


def _big_line_of(prefix: bytes, fill: bytes, suffix: bytes,
                 megabytes: int = 50) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with path.open("wb") as out:
            out.write(prefix)
            for _ in range(megabytes):
                out.write(fill * ((1 << 20) // len(fill)))
            out.write(suffix)
    return write


def _bytes(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


CASES = {
    "empty": ("empty.txt", _bytes(b""), "empty file: no listings", None),
    "blank": ("blank.txt", _bytes(b"\n  \n\t\n"), "empty file: no listings", None),
    "binary": ("photo.jpg", _bytes(bytes(range(256)) * 64), "binary file", None),
    "utf-16": ("windows.txt", _bytes((HEADER + "A Title\n\nAn abstract.\n").encode("utf-16")),
               "UTF-16 text, not UTF-8: save the file as UTF-8", None),
    "invalid-utf8": ("latin1.txt", _bytes(HEADER.encode() + b"Caf\xe9 title\n\nAbstract.\n"),
                     "not valid UTF-8 (byte 102)", 11),
    "invalid-utf8-json": ("latin1.json", _bytes(_scraped("Caf\u00e9").replace(
        "\u00e9".encode(), b"\xe9")), "not valid UTF-8", 1),
    "truncated-json": ("cut.json", _bytes(_real_truncated()),
                       "truncated JSON: the file ends before the document does", 127),
    "wrong-shape-object": ("shape.json", _bytes(b'{"results": [{"title": "x"}]}'),
                           "JSON of an unknown shape", None),
    "wrong-shape-list": ("numbers.json", _bytes(b"[1, 2, 3]\n"), "JSON of an unknown shape",
                         None),
    "wrong-types": ("types.json", _bytes(b'{"papers": [{"title": 42, "authors": "x"}]}'),
                    "1 bad of 1 records, over 1 in 1000 (first, paper 1: 'title' is a number, "
                    "not a string)", None),
    "no-abstract": ("dangling.txt", _bytes((HEADER + "A Title\n\nAn abstract.\n\n"
                                            "A title with no abstract\n").encode()),
                    "the listing 'A title with no abstract' ends with no abstract", 15),
    "50mb-garbage-line": ("huge.txt", _big_line_of(b"", b"x", b""),
                          "not a paper listing: unknown format", None),
    "50mb-title": ("huge-title.txt", _big_line_of(HEADER.encode(), b"word ", b"\n\nAbs.\n"),
                   "a line of 52428750 characters: not a listing", 11),
    "70mb-json-document": ("huge-doc.json", _big_line_of(b'{"papers": [', b"[],", b"[]]}", 70),
                           "70 MB of page text or JSON: only JSON Lines dumps may be over 64 "
                           "MB", None),
    "50mb-json-record": ("huge.jsonl", _big_line_of(
        _arxiv_line(1)[:-1].encode() + b', "comments": "', b"z", b'"}\n'),
        "1 bad of 1 records, over 1 in 1000 (first, line 1: a record over 1 MB, not a paper)",
        None),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_hostile_dump_fails_alone(tmp_path: Path, inbox: Path, case: str) -> None:
    name, write, message, line = CASES[case]
    hostile = inbox / name
    write(hostile)
    before = hostile.stat()
    state = tmp_path / "state"
    result = CliRunner().invoke(main, ["--state-dir", str(state), "ingest", str(inbox),
                                       "--year", "2024"])
    assert result.exit_code == 1
    where = f"{hostile}:{line}" if line is not None else str(hostile)
    (error,) = result.stderr.splitlines()
    assert error.startswith(f"digest: error: {where}: {message}")
    assert "Traceback" not in result.output
    assert result.stdout.count("ingested ") == 5
    after = hostile.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    with sqlite3.connect(state / "digest.db") as db:
        rows = db.execute("SELECT path, status FROM dumps ORDER BY status").fetchall()
        assert rows.count((str(hostile), "failed")) == 1
        assert [s for _, s in rows].count("ingested") == 5
        assert db.execute("SELECT COUNT(*) FROM papers").fetchone()[0] == SEED_PAPERS


def test_a_json_dump_with_one_good_and_one_bad_paper_ingests_neither(tmp_path: Path) -> None:
    dump = tmp_path / "half.json"
    doc = json.loads(_scraped("A good paper"))
    doc["papers"].append({"title": ["not", "a", "string"]})
    dump.write_text(json.dumps(doc), encoding="utf-8")
    result = CliRunner().invoke(main, ["--state-dir", str(tmp_path / "s"), "ingest",
                                       str(dump), "--json"])
    assert result.exit_code == 1
    (report,) = json.loads(result.stdout)["dumps"]
    assert report["status"] == "failed"
    assert "1 bad of 2 records" in report["error"] and "paper 2: 'title' is a list" in (
        report["error"])
    with sqlite3.connect(tmp_path / "s" / "digest.db") as db:
        assert db.execute("SELECT COUNT(*) FROM papers").fetchone()[0] == 0


def test_one_bad_record_in_ten_thousand_is_skipped_with_a_warning(tmp_path: Path) -> None:
    lines = [_arxiv_line(n, f"Paper number {n}") for n in range(10_000)]
    lines[4321] = lines[4321][:50]  # cut mid-record
    dump = tmp_path / "snapshot.jsonl"
    dump.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["--state-dir", str(tmp_path / "s"), "ingest",
                                       str(dump), "--json"])
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)["dumps"]
    assert (report["status"], report["papers"], report["format"]) == (
        "ingested", 9_999, "arxiv-jsonl")
    (warning,) = report["warnings"]
    assert warning.startswith("line 4322: not a JSON record: ")
    assert warning.endswith("(record skipped)")


def test_many_bad_records_fail_the_dump_whole(tmp_path: Path) -> None:
    lines = [_arxiv_line(n) if n % 100 != 99 else "{not json" for n in range(10_000)]
    dump = tmp_path / "snapshot.jsonl"
    dump.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["--state-dir", str(tmp_path / "s"), "ingest",
                                       str(dump)])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"digest: error: {dump}: 100 bad of 10000 records, over 1 in 1000 (first, line 100: "
        "not a JSON record: Expecting property name enclosed in double quotes (column 2))")
    with sqlite3.connect(tmp_path / "s" / "digest.db") as db:
        assert db.execute("SELECT COUNT(*) FROM papers").fetchone()[0] == 0
        assert db.execute("SELECT status FROM dumps").fetchall() == [("failed",)]


def test_a_failed_dump_once_fixed_goes_in(tmp_path: Path) -> None:
    dump = tmp_path / "day.json"
    dump.write_bytes(_scraped("A good paper")[:-5])
    state = ["--state-dir", str(tmp_path / "s")]
    assert CliRunner().invoke(main, [*state, "ingest", str(dump)]).exit_code == 1
    dump.write_bytes(_scraped("A good paper"))
    result = CliRunner().invoke(main, [*state, "ingest", str(dump)])
    assert result.exit_code == 0 and "1 papers, 1 new" in result.stdout


def test_a_snapshot_of_garbage_stops_early_instead_of_reading_on() -> None:
    from digest.dumps import Screen
    from digest.errors import DumpError
    from digest.model import Paper, Skipped

    consumed = 0

    def records():  # a first good record, then nothing but garbage, without end
        nonlocal consumed
        yield Paper("A real title")
        while True:
            consumed += 1
            yield Skipped(f"line {consumed + 1}", "not a JSON record")

    with pytest.raises(DumpError, match=r"1000 bad of 1001 records, over 1 in 1000 "
                                        r"\(first, line 2: not a JSON record\)"):
        list(Screen("snapshot.jsonl").papers_of(records()))
    assert consumed == 1000
