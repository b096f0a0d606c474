"""Ingest of an arXiv-snapshot-format dump: papers per second and peak memory.

Generates a JSON Lines file in the arXiv metadata snapshot's format (hard-wrapped titles,
LaTeX, abstracts opening with two spaces, versions, authors_parsed), then measures, each in
its own process so that each peak RSS is its own:

  baseline  a bare `json.loads` loop over the lines: the floor for any JSON Lines reader
  parse     digest's streaming reader and parser, papers thrown away
  ingest    `digest`'s whole ingest of the file into a fresh SQLite store

Run: python bench/arxiv_ingest.py [--records 1000000] [--dir bench/data]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from rss import ChildPeaks, peak_rss_mb

_WORDS = ("model", "language", "learning", "neural", "network", "training", "data", "large",
          "diffusion", "agent", "reasoning", "vision", "transformer", "attention", "graph",
          "policy", "reward", "benchmark", "retrieval", "sparse", "efficient", "scaling",
          "robust", "generative", "representation", "quantum", "lattice", "field", "theory",
          "spectral", "manifold", "inference", "optimal", "bound", "estimator", "convergence")
_LATEX = ("$p$-adic", "1T-TiSe$_{2}$", "$\\alpha$-stable", "$O(n \\log n)$", "100\\%",
          "\\textit{in situ}", "Schr\\\"odinger")
_CATEGORIES = ("cs.LG", "cs.CL", "cs.CV", "stat.ML", "math.PR", "hep-th", "quant-ph",
               "cond-mat.str-el", "math.AG", "astro-ph.GA")


def generate(path: Path, records: int, seed: int = 4) -> None:
    """Write `records` snapshot-format lines; each id is unique, as in the real snapshot."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for n in range(records):
            yymm = f"{7 + n // 10_000_000:02d}{1 + (n // 99_999) % 12:02d}"
            words = rng.choices(_WORDS, k=rng.randint(6, 14))
            if rng.random() < 0.2:
                words.insert(rng.randrange(len(words)), rng.choice(_LATEX))
            title = " ".join(words).capitalize()
            # The snapshot hard-wraps titles with a newline and two spaces.
            cut = title.find(" ", 60)
            title = title[:cut] + "\n  " + title[cut + 1:] if cut > 0 else title
            sentences = [" ".join(rng.choices(_WORDS, k=rng.randint(8, 20))).capitalize() + "."
                         for _ in range(rng.randint(5, 9))]
            abstract = "  " + "\n".join(sentences) + "\n"
            names = [(rng.choice(_WORDS).capitalize(), rng.choice("ABCDEFGHJKLM") + ".", "")
                     for _ in range(rng.randint(1, 8))]
            record = {
                "id": f"{yymm}.{n % 99_999:05d}", "submitter": names[0][1] + " " + names[0][0],
                "authors": ", ".join(f"{first} {last}" for last, first, _ in names),
                "title": title, "comments": "12 pages, 3 figures", "journal-ref": None,
                "doi": None, "report-no": None,
                "categories": " ".join(rng.sample(_CATEGORIES, rng.randint(1, 3))),
                "license": None, "abstract": abstract,
                "versions": [{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}],
                "update_date": "2008-11-13", "authors_parsed": [list(a) for a in names],
            }
            out.write(json.dumps(record) + "\n")


def baseline(path: Path) -> int:
    count = 0
    with path.open("rb") as lines:
        for line in lines:
            json.loads(line)
            count += 1
    return count


def parse(path: Path) -> int:
    from digest.dumps import Screen, parse_records, read_dump

    records = parse_records(read_dump(path))
    return sum(1 for _ in Screen(str(path)).papers_of(records.items))


def ingest(path: Path) -> int:
    from digest.config import Config
    from digest.pipeline import ingest_file
    from digest.store import open_store

    with tempfile.TemporaryDirectory(dir=path.parent) as state:
        config = Config(state_dir=Path(state))
        with open_store(config.store_path) as store:
            result = ingest_file(store, config, path, datetime.now())
    if result.status != "ingested":
        raise SystemExit(f"ingest failed: {result.error}")
    return result.papers


_PHASES = {"baseline": baseline, "parse": parse, "ingest": ingest}


def _run_phase(phase: str, path: Path) -> None:
    """In a child process: run one phase, print its figures as JSON. The ingest's peak is
    its own and its parsing worker's together."""
    start = time.perf_counter()
    with ChildPeaks() as worker:
        papers = _PHASES[phase](path)
    seconds = time.perf_counter() - start
    peak_mb = peak_rss_mb() + worker.peak_mb
    print(json.dumps({"papers": papers, "seconds": seconds, "peak_rss_mb": peak_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--phase", choices=sorted(_PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        _run_phase(args.phase, args.file)
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / f"arxiv-{args.records}.jsonl"
    if not path.exists():
        start = time.perf_counter()
        generate(path, args.records)
        print(f"generated {path} ({path.stat().st_size / 2**20:.0f} MB) "
              f"in {time.perf_counter() - start:.0f} s")
    figures = {}
    for phase in ("baseline", "parse", "ingest"):
        out = subprocess.run([sys.executable, __file__, "--phase", phase, "--file", str(path)],
                             check=True, capture_output=True, text=True).stdout
        figures[phase] = json.loads(out)
    floor = figures["baseline"]["papers"] / figures["baseline"]["seconds"]
    print(f"{'phase':<9} {'papers':>9} {'seconds':>8} {'papers/s':>9} {'vs json.loads':>13} "
          f"{'peak RSS':>9}")
    for phase, f in figures.items():
        rate = f["papers"] / f["seconds"]
        print(f"{phase:<9} {f['papers']:>9} {f['seconds']:>8.1f} {rate:>9.0f} "
              f"{rate / floor:>12.2f}x {f['peak_rss_mb']:>6.0f} MB")


if __name__ == "__main__":
    main()
