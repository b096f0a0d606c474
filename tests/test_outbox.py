"""The outbox and the message as the reader gets it: `digest now` against a real SMTP
server, the seed edition under Gmail's clip with every paper reachable, a server that is
down and then up, notices, re-sends, the sources line and the Atom feed."""

from __future__ import annotations

import html
import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from helpers import cli, email_config, html_part, inbox_of, parts, text_part, write_dump, write_toml
from markupsafe import escape
from smtp_servers import Recorder, SmtpServers, free_port

from digest.config import Config
from digest.deliver import SmtpSender
from digest.mailbody import HTML_BUDGET, html_size
from digest.model import Edition, RankedPaper, StoredPaper, TopicGroup
from digest.pipeline import run_once
from digest.render import render_edition
from digest.store import _MIGRATIONS, SCHEMA_VERSION, Store, open_store

T1 = datetime(2024, 11, 12, 7, 0)
T2 = T1 + timedelta(days=1)


def seed_titles(state: Path) -> set[str]:
    with open_store(state / "digest.db") as store:
        return {p.title for _, p in store.edition_papers(1)}


def test_digest_now_mails_the_seed_edition_under_the_clip_with_every_paper_reachable(
        tmp_path: Path, inbox: Path, smtp: SmtpServers) -> None:
    recorder = Recorder()
    server = smtp.start(recorder)
    toml = write_toml(tmp_path, server.port, archive_url="https://digest.example.com/a")
    code, out, err = cli(toml, "now", "--inbox", str(inbox), "--json")
    assert code == 0, err
    assert json.loads(out)["edition"]["papers"] == 354
    (message,) = recorder.messages
    assert parts(message) == ["multipart/alternative", "text/plain", "text/html"]
    body = html_part(message)
    assert len(body.encode()) < 100_000  # as received: CRLF line ends
    titles = seed_titles(tmp_path / "state")
    assert len(titles) == 354
    # Every paper is in the text part, and in the HTML part or behind its topic's link
    # to the archive page, which holds them all.
    assert all(t in " ".join(text_part(message).split()) for t in titles)
    # css-inline re-serialises the HTML: compare text, not one spelling of its entities.
    shown = {t for t in titles if t in html.unescape(body)}
    page = (tmp_path / "state" / "digests" / "edition-1.html").read_text(encoding="utf-8")
    links = re.findall(r'href="(https://digest\.example\.com/a/edition-1\.html#[\w-]+)"',
                       body)
    more = sum(int(n) for n in re.findall(r"and (\d+) more in", body))
    assert links and len(shown) + more == 354
    assert all(str(escape(t)) in page for t in titles)
    assert all(f'id="{link.split("#")[1]}"' in page for link in links)
    # Dark mode and phones survive the inlining; nothing else is left in <style>.
    assert "@media (prefers-color-scheme: dark)" in body and "max-width: 620px" in body
    assert 'style="' in body and "<style>" in body
    preheader = re.search(r'<div style="display: ?none;[^"]*">([^<&]+)', body)
    assert preheader and preheader.group(1).startswith("354 new papers: Fine-tuning")


def test_without_archive_url_the_full_digest_is_attached(
        tmp_path: Path, inbox: Path, smtp: SmtpServers) -> None:
    recorder = Recorder()
    server = smtp.start(recorder)
    code, _, err = cli(write_toml(tmp_path, server.port), "now", "--inbox", str(inbox))
    assert code == 0, err
    (message,) = recorder.messages
    assert parts(message) == ["multipart/mixed", "multipart/alternative", "text/plain",
                              "text/html", "text/html"]
    (attachment,) = message.iter_attachments()
    assert attachment.get_filename() == "paper-digest-1.html"
    full = attachment.get_content()
    body = html_part(message)
    assert html_size(body) < HTML_BUDGET and "in the attached full digest" in body
    assert all(str(escape(t)) in full for t in seed_titles(tmp_path / "state"))


def synthetic_edition(topics: int, papers: int, first: int = 5) -> Edition:
    """`topics` topics of `papers` papers each (the first one of `first`), with long
    titles, nine authors and long abstracts."""
    def paper(n: int) -> StoredPaper:
        return StoredPaper(n, f"A rather long paper title number {n} about everything " * 2,
                           "An abstract sentence that goes on. " * 40, ("A. Author",) * 9,
                           9, None, n, None, None, (), 2, T1)

    return Edition(7, T1, tuple(
        TopicGroup(f"Topic {t}", tuple(RankedPaper(paper(t * 1000 + i))
                                       for i in range(papers if t else first)))
        for t in range(topics)), message_id="<x@example.com>")


def reachable(email_html: str) -> int:
    """Papers shown, plus those a "more" line counts and links to (or attaches)."""
    shown = email_html.count("A rather long paper title number") // 2
    more = sum(int(n) for n in re.findall(r"and (\d+) more in", email_html))
    hidden = sum(int(n) for n in re.findall(r"and (\d+) more papers in", email_html))
    return shown + more + hidden


def test_any_edition_size_fits_the_budget_and_every_paper_is_reachable() -> None:
    # 5,205 papers in 14 topics; then 1,000 topics, more than the headings alone can hold.
    for edition in (synthetic_edition(14, 400), synthetic_edition(1000, 3)):
        for archive in ("https://digest.example.com", None):
            rendered = render_edition(edition, archive_url=archive)
            assert html_size(rendered.email_html) < HTML_BUDGET
            assert reachable(rendered.email_html) == edition.paper_count
            assert (rendered.attachment is None) == (archive is not None)
            # The linked page (or the attachment) has every paper: each title says it twice.
            assert rendered.page_html.count("A rather long paper title number") == (
                2 * edition.paper_count)
    rendered = render_edition(synthetic_edition(1000, 3), archive_url="https://d.example.com")
    assert 'href="https://d.example.com/edition-7.html"' in rendered.email_html
    small = render_edition(synthetic_edition(1, 0))
    assert small.attachment is None and "more in" not in small.email_html
    assert "An abstract sentence that goes on." in small.email_html


def test_server_down_then_up_sends_each_edition_once_with_its_message_id(
        tmp_path: Path, smtp: SmtpServers) -> None:
    port = free_port()  # nothing listens here yet
    toml = write_toml(tmp_path, port)
    code, out, err = cli(toml, "now", "--inbox", str(inbox_of(tmp_path, 2)), "--json")
    assert code == 1 and "connection refused" in err and "stays pending" in err
    assert len(err.strip().splitlines()) == 1
    pending = json.loads(out)["edition"]
    with open_store(tmp_path / "state" / "digest.db") as store:
        (record,) = store.editions()
    assert (record.status, record.message_id) == ("pending", pending["message_id"])
    assert "connection refused" in (record.last_error or "")
    code, out, _ = cli(toml, "now")  # still down: nothing new is built behind it
    assert code == 1 and "pending edition #1 not sent" in out
    _, status, _ = cli(toml, "status", "--json")
    assert json.loads(status)["pending_editions"] == 1
    assert "connection refused" in json.loads(status)["pending_error"]

    # The next run has more dumps: the pending edition goes first, as it was.
    recorder = Recorder()
    smtp.start(recorder, port=port)
    code, out, err = cli(toml, "now", "--inbox", str(inbox_of(tmp_path, 5)), "--json")
    again, _, _ = cli(toml, "now", "--inbox", str(inbox_of(tmp_path, 5)))
    assert code == 0 and again == 0, err
    report = json.loads(out)
    assert [r["id"] for r in report["resent"]] == [1] and report["edition"]["id"] == 2
    first, second = recorder.messages
    assert first["Message-ID"] == pending["message_id"]
    assert second["Message-ID"] == report["edition"]["message_id"] != first["Message-ID"]
    with open_store(tmp_path / "state" / "digest.db") as store:
        editions = {e.id: e for e in store.editions()}
        in_mail = [{p.title for _, p in store.edition_papers(n)} for n in (1, 2)]
        assert store.status().papers == 354 and store.undelivered() == []
    assert all(e.status == "delivered" and e.last_error is None for e in editions.values())
    assert not in_mail[0] & in_mail[1] and len(in_mail[0] | in_mail[1]) == 354
    for message, titles in zip((first, second), in_mail, strict=True):
        assert all(t in " ".join(text_part(message).split()) for t in titles)


def test_a_pending_edition_failing_again_builds_nothing_new(config: Config,
                                                            tmp_path: Path) -> None:
    email = email_config(free_port(), retries=0)
    config = replace(config, inbox=inbox_of(tmp_path, 1), email=email)
    run_once(config, now=lambda: T1, send=SmtpSender(email, None))
    report = run_once(replace(config, inbox=inbox_of(tmp_path, 5)), now=lambda: T2,
                      send=SmtpSender(email, None))
    assert report.failed and report.edition is None
    assert [d.status for d in report.dumps].count("ingested") == 4  # still ingested
    with open_store(config.store_path) as store:
        assert [e.attempts for e in store.editions()] == [2]
        assert len(store.undelivered()) == 354 - 100


def test_an_empty_run_sends_a_notice_that_says_why(
        tmp_path: Path, config: Config, smtp: SmtpServers) -> None:
    recorder = Recorder()
    server = smtp.start(recorder)
    email = email_config(server.port, empty="notice")
    config = replace(config, email=email)
    sender = SmtpSender(email, None)
    run_once(config, now=lambda: T1, send=sender, notify=sender.notice)
    quiet = run_once(config, now=lambda: T2, send=sender, notify=sender.notice)
    write_dump(config.inbox_dir / "again.txt", [(
        "Skill-it! A Data-Driven Skills Framework for Understanding and Training "
        "Language Models", "The quality of training data impacts the performance.")])
    repeat = run_once(config, now=lambda: T2, send=sender, notify=sender.notice)
    assert quiet.notice and repeat.notice and not quiet.failed
    _, first, second = recorder.messages
    assert first["Subject"] == "Paper digest: no new papers (Nov 13)"
    assert parts(first) == ["text/plain"]
    assert "No dump has arrived since the last edition (12 Nov 2024)." in first.get_content()
    assert ("1 dump arrived since the last edition (12 Nov 2024), and every paper in them "
            "had already been sent.") in second.get_content()
    assert "Sources: 1 dump since the last edition (again.txt)." in second.get_content()
    assert first["Message-ID"] != second["Message-ID"]


def test_a_notice_that_cannot_be_sent_fails_the_run(tmp_path: Path, inbox: Path) -> None:
    toml = write_toml(tmp_path, free_port(), empty="notice")
    (tmp_path / "state" / "inbox").mkdir(parents=True)
    code, out, err = cli(toml, "now", "--dry-run")  # nothing to send in a dry run
    assert code == 0
    code, out, err = cli(toml, "now", "--json")
    assert code == 1 and json.loads(out)["notice"] == "No dump has arrived yet."
    assert err.startswith("digest: error: the notice was not sent: SMTP 127.0.0.1:")


def test_a_recipient_refused_while_others_got_it_is_a_warning_not_a_resend(
        tmp_path: Path, smtp: SmtpServers) -> None:
    recorder = Recorder(refuse={"gone@example.org": "550 5.1.1 Mailbox unavailable"})
    server = smtp.start(recorder)
    toml = write_toml(tmp_path, server.port, to=["reader@example.org",
                                                 "gone@example.org"])
    code, out, err = cli(toml, "now", "--inbox", str(inbox_of(tmp_path, 1)))
    again, _, _ = cli(toml, "now", "--inbox", str(inbox_of(tmp_path, 1)))
    assert code == 0 and again == 0
    assert err.strip() == (f"digest: warning: edition #1: SMTP 127.0.0.1:{server.port} "
                           "refused gone@example.org: 550 5.1.1 Mailbox unavailable")
    assert recorder.envelopes == [("digest@example.com", ("reader@example.org",))]


def test_skip_sends_nothing_when_there_is_nothing_new(
        tmp_path: Path, inbox: Path, smtp: SmtpServers) -> None:
    recorder = Recorder()
    server = smtp.start(recorder)
    toml = write_toml(tmp_path, server.port)
    cli(toml, "now", "--inbox", str(inbox))
    code, out, _ = cli(toml, "now", "--inbox", str(inbox))
    assert code == 0 and "nothing new" in out and len(recorder.messages) == 1


def test_resend_mails_the_same_edition_under_a_new_message_id(
        tmp_path: Path, smtp: SmtpServers) -> None:
    recorder = Recorder()
    server = smtp.start(recorder)
    toml = write_toml(tmp_path, server.port, archive_url="https://d.example.com")
    cli(toml, "now", "--inbox", str(inbox_of(tmp_path, 2)))
    code, out, err = cli(toml, "resend", "1")
    missing, _, err_missing = cli(toml, "resend", "9")
    assert code == 0, err
    original, again = recorder.messages
    assert again["Message-ID"] != original["Message-ID"] and again["Message-ID"] in out
    assert again["Subject"] == original["Subject"]
    assert text_part(again) == text_part(original)
    assert html_part(again) == html_part(original)
    assert missing == 1 and err_missing.startswith("digest: error: there is no edition #9")
    smtp.stop(server)
    code, _, err = cli(toml, "resend", "1")
    assert code == 1 and "connection refused" in err
    assert err.strip().endswith("(the edition stays delivered; try the resend again)")


def test_resend_needs_email_settings(tmp_path: Path, inbox: Path) -> None:
    toml = tmp_path / "digest.toml"
    toml.write_text('state_dir = "state"\n', encoding="utf-8")
    code, _, err = cli(toml, "resend", "1")
    assert code == 1 and "no [email] section" in err


def test_every_digest_ends_with_its_sources_and_warns_when_dumps_stop(
        tmp_path: Path, config: Config, smtp: SmtpServers) -> None:
    (config.inbox_dir / "broken.txt").write_text("not a listing\n", encoding="utf-8")
    recorder = Recorder()
    server = smtp.start(recorder)
    email = email_config(server.port, empty="notice")
    config = replace(config, email=email, stale_after_days=3)
    sender = SmtpSender(email, None)
    run_once(config, now=lambda: T1, send=sender)
    with open_store(config.store_path) as store:  # one dump, long before the run
        old = T1 + timedelta(hours=1)
        write_dump(tmp_path / "late.txt", [("A Late Paper on Agents", "About agents.")])
        from digest.dumps import parse_dump, read_dump

        raw = read_dump(tmp_path / "late.txt")
        parsed = parse_dump(raw, page_year=2024)
        store.ingest_dump(raw.sha256, "late.txt", parsed.format, parsed.papers, old)
    later = T1 + timedelta(days=5, hours=2)
    (tmp_path / "empty").mkdir()
    run_once(replace(config, inbox=tmp_path / "empty"), now=lambda: later, send=sender)
    first, second = recorder.messages
    last_line = text_part(first).strip().splitlines()[-1]
    assert last_line == ("Sources: 5 dumps since the last edition (000_17081d9da8fb9dc1.txt, "
                         "001_35c1cf065de98ae2.txt, 002_f188d1610cd7b4c7.txt, "
                         "003_a3a14dc973bea2fb.txt, 004_538ef8578db28575.txt); "
                         "1 failed (broken.txt).")
    assert "broken.txt" in html_part(first).rsplit("</table>", 2)[0][-600:]
    assert ("Warning: no dump has arrived for 5 days (the last on 12 Nov 2024)"
            in text_part(second))
    assert text_part(second).strip().endswith("Sources: 1 dump since the last edition "
                                              "(late.txt).")


ATOM = "{http://www.w3.org/2005/Atom}"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def test_the_atom_feed_lists_delivered_editions_as_rfc_4287_says(tmp_path: Path,
                                                                config: Config) -> None:
    run_once(replace(config, inbox=inbox_of(tmp_path, 1)), now=lambda: T1)
    run_once(replace(config, inbox=inbox_of(tmp_path, 3)), now=lambda: T2)
    email = email_config(free_port(), retries=0)  # down: the third stays pending
    run_once(replace(config, inbox=inbox_of(tmp_path, 5), email=email),
             now=lambda: T2 + timedelta(days=1), send=SmtpSender(email, None))
    path = config.digests_dir / "feed.xml"
    feed = ET.parse(path).getroot()
    assert feed.tag == f"{ATOM}feed"

    def one(parent: ET.Element, name: str) -> ET.Element:
        (found,) = parent.findall(f"{ATOM}{name}")
        return found

    assert one(feed, "id").text.startswith("urn:uuid:")  # type: ignore[union-attr]
    assert RFC3339.match(one(feed, "updated").text or "")
    assert one(feed, "title").text and one(one(feed, "author"), "name").text
    assert {ln.get("rel") for ln in feed.findall(f"{ATOM}link")} == {"self", "alternate"}
    entries = feed.findall(f"{ATOM}entry")
    assert [one(e, "title").text for e in entries] == [
        "Paper digest #2, 13 Nov 2024", "Paper digest #1, 12 Nov 2024"]
    for entry in entries:
        assert RFC3339.match(one(entry, "updated").text or "")
        assert RFC3339.match(one(entry, "published").text or "")
        assert one(entry, "link").get("rel") == "alternate"
        assert (config.digests_dir / one(entry, "link").get("href", "")).is_file()
    ids = [one(e, "id").text for e in entries]
    assert len(set(ids)) == 2 and all(i and i.startswith("urn:uuid:") for i in ids)
    before = path.read_text(encoding="utf-8")
    run_once(config, now=lambda: T2 + timedelta(days=2))
    assert [one(e, "id").text for e in ET.parse(path).getroot().findall(f"{ATOM}entry")][
        -2:] == ids
    assert before != path.read_text(encoding="utf-8")


def test_a_version_1_store_migrates_and_its_pending_edition_gets_a_message_id(
        tmp_path: Path, config: Config, smtp: SmtpServers) -> None:
    path = config.store_path
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    for sql in _MIGRATIONS[0]:
        conn.execute(sql)
    conn.execute("INSERT INTO papers (key, title, first_seen) VALUES ('k', 'Old Paper', ?)",
                 [T1.isoformat()])
    conn.execute("INSERT INTO editions (id, created, status) VALUES (1, ?, 'pending')",
                 [T1.isoformat()])
    conn.execute("INSERT INTO edition_papers VALUES (1, 1, 'Other', 0)")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    recorder = Recorder()
    server = smtp.start(recorder)
    email = email_config(server.port)
    report = run_once(replace(config, inbox=tmp_path / "none", email=email),
                      now=lambda: T2, send=SmtpSender(email, None))
    with open_store(path) as store:
        assert store.schema_version == SCHEMA_VERSION >= 2
        (record,) = store.editions()
    (message,) = recorder.messages
    assert report.resent[0].error is None
    assert record.status == "delivered" and message["Message-ID"] == record.message_id
    assert "Old Paper" in text_part(message)
    Store(path).close()  # opening again changes nothing


def test_resend_keeps_the_for_you_section_and_its_terms(
        tmp_path: Path, smtp: SmtpServers) -> None:
    recorder = Recorder()
    server = smtp.start(recorder)
    toml = write_toml(tmp_path, server.port, archive_url="https://d.example.com")
    toml.write_text('interests = ["speculative decoding", "unlearning"]\n'
                    + toml.read_text(encoding="utf-8"), encoding="utf-8")
    cli(toml, "now", "--inbox", str(inbox_of(tmp_path, 2)))
    code, _, err = cli(toml, "resend", "1")
    assert code == 0, err
    original, again = recorder.messages
    assert "For you" in text_part(original)
    assert text_part(again) == text_part(original)
    assert html_part(again) == html_part(original)
