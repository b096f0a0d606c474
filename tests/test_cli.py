"""The `digest` command end to end on the real seed dumps and a real store file."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from markupsafe import escape

from digest.cli import main


def run(state: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--state-dir", str(state), *args])
    return result.exit_code, result.stdout, result.stderr


def test_now_builds_one_edition_of_every_distinct_seed_paper(tmp_path: Path,
                                                             inbox: Path) -> None:
    code, out, _ = run(tmp_path / "state", "now", "--inbox", str(inbox), "--year", "2024",
                       "--json")
    assert code == 0
    report = json.loads(out)
    assert [d["status"] for d in report["dumps"]] == ["ingested"] * 5
    assert [d["papers"] for d in report["dumps"]] == [100, 76, 104, 72, 67]
    edition = report["edition"]
    assert edition["papers"] == 354
    titles = [p["title"] for t in edition["topics"] for p in t["papers"]]
    assert len(titles) == len(set(titles)) == 354
    html = Path(edition["html"]).read_text(encoding="utf-8")
    text = Path(edition["text"]).read_text(encoding="utf-8")
    assert all(str(escape(t)) in html for t in titles)
    assert all(t in " ".join(text.split()) for t in titles)
    listed_twice = [p for t in edition["topics"] for p in t["papers"] if p["dumps"] > 1]
    assert listed_twice and all(set(p) >= {"authors_count", "published", "upvotes"}
                                for p in listed_twice)


def test_the_same_command_again_finds_nothing_new(tmp_path: Path, inbox: Path) -> None:
    state = tmp_path / "state"
    run(state, "now", "--inbox", str(inbox))
    code, out, _ = run(state, "now", "--inbox", str(inbox), "--json")
    report = json.loads(out)
    assert code == 0
    assert report["edition"] is None
    assert [d["status"] for d in report["dumps"]] == ["skipped"] * 5
    code, out, _ = run(state, "now", "--inbox", str(inbox))
    assert "nothing new" in out


def test_bad_dumps_fail_alone_with_one_line_each(tmp_path: Path, inbox: Path) -> None:
    (inbox / "empty.txt").write_bytes(b"")
    (inbox / "binary.bin").write_bytes(bytes(range(256)) * 8)
    (inbox / "notes.txt").write_text("Shopping list\n\neggs\nmilk\n", encoding="utf-8")
    code, out, err = run(tmp_path / "state", "now", "--inbox", str(inbox), "--json")
    assert code == 1
    report = json.loads(out)
    by_name = {Path(d["path"]).name: d for d in report["dumps"]}
    assert {n: d["status"] for n, d in by_name.items() if d["status"] == "failed"} == {
        "empty.txt": "failed", "binary.bin": "failed", "notes.txt": "failed"}
    assert "empty" in by_name["empty.txt"]["error"]
    assert "binary" in by_name["binary.bin"]["error"]
    assert "not a paper listing" in by_name["notes.txt"]["error"]
    assert all(str(inbox / n) in by_name[n]["error"] for n in ("empty.txt", "notes.txt"))
    assert report["edition"]["papers"] == 354
    assert "Traceback" not in out + err
    _, status, _ = run(tmp_path / "state", "status", "--json")
    assert json.loads(status)["failed_dumps"] == 3


def test_failures_print_one_line_per_file_without_json(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "empty.txt").write_bytes(b"")
    code, out, err = run(tmp_path / "state", "now", "--inbox", str(inbox))
    assert code == 1
    assert err.strip().splitlines() == [f"digest: error: {inbox / 'empty.txt'}: empty file: "
                                        "no listings"]


def test_dry_run_renders_a_preview_and_claims_nothing(tmp_path: Path, inbox: Path) -> None:
    state = tmp_path / "state"
    code, out, _ = run(state, "now", "--inbox", str(inbox), "--dry-run", "--json")
    assert code == 0
    assert Path(json.loads(out)["edition"]["html"]).name == "preview.html"
    _, status, _ = run(state, "status", "--json")
    assert json.loads(status)["undelivered"] == 354
    assert json.loads(status)["editions"] == 0


def test_ingest_then_status(tmp_path: Path, seeds: list[Path]) -> None:
    state = tmp_path / "state"
    code, out, _ = run(state, "ingest", *map(str, seeds), "--json")
    assert code == 0
    assert [d["new"] for d in json.loads(out)["dumps"]] == [100, 49, 98, 52, 55]
    _, status, _ = run(state, "status", "--json")
    counts = json.loads(status)
    assert (counts["papers"], counts["undelivered"], counts["dumps"], counts["editions"]) == (
        354, 354, 5, 0)
    _, text, _ = run(state, "status")
    assert text.splitlines()[:3] == ["papers: 354", "undelivered: 354", "dumps: 5"]
    assert "pending error" not in text and "None" not in text


def test_a_broken_config_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "digest.toml"
    config.write_text("state_dir = [\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(config), "status"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"digest: error: {config}: not valid TOML")


def test_the_installed_command_runs_as_cron_would(tmp_path: Path, inbox: Path) -> None:
    digest = Path(sys.executable).parent / "digest"
    env = {**os.environ, "DIGEST_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.run([str(digest), "now", "--inbox", str(inbox), "--json"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["edition"]["papers"] == 354
    assert (tmp_path / "state" / "digests" / "index.html").is_file()


def test_every_command_the_readme_names_exists() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`digest (\w+)", readme))
    helped = CliRunner().invoke(main, ["--help"]).stdout
    assert named and all(f"  {cmd} " in helped for cmd in named), (named, helped)
