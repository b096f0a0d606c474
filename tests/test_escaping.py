"""Fields from a dump are data, never markup or headers: every rendered HTML artefact
escapes them, links are web links only, and no text field keeps a line break that could
start a mail header."""

from __future__ import annotations

import json
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from click.testing import CliRunner

from digest.cli import main
from digest.dumps import parse_dump, read_dump

SCRIPT = "<script>alert('title')</script>"
IMG = '<img src=x onerror="alert(1)">'
BCC = "Sneaky\r\nBcc: x@y"


def _hostile_dump(folder: Path) -> Path:
    folder.mkdir()
    dump = folder / "day.json"
    dump.write_text(json.dumps({"date": "2026-03-05", "papers": [
        {"id": "x1", "title": f"Agents {SCRIPT} for tool use", "abstract": IMG + " text",
         "authors": ["<b>Bold</b> Author,", "Mal\r\nCc: z@z"], "upvotes": 9,
         "url": "javascript:alert(document.cookie)", "arxivId": "not-an-id"},
        {"id": "2603.00002", "arxivId": "2603.00002", "title": BCC, "abstract": "Fine.",
         "authors": ["A. Writer"], "upvotes": 1, "url": "https://huggingface.co/papers/x"},
    ]}), encoding="utf-8")
    return dump


def test_every_html_artefact_escapes_dump_fields(tmp_path: Path) -> None:
    _hostile_dump(tmp_path / "inbox")
    result = CliRunner().invoke(main, ["--state-dir", str(tmp_path / "state"), "now",
                                       "--inbox", str(tmp_path / "inbox"), "--json"])
    assert result.exit_code == 0, result.output
    digests = tmp_path / "state" / "digests"
    pages = [digests / "edition-1.html", digests / "edition-1.email.html"]
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "<script>" not in html and "<img" not in html and "<b>" not in html
        # Jinja writes quotes in text as &#39; and &#34;; css-inline re-serialises the
        # email and writes them plain, which text may hold. Tags are escaped in both.
        text_of = html.replace("&#39;", "'").replace("&#34;", '"')
        assert "&lt;script&gt;alert('title')&lt;/script&gt;" in text_of
        assert '&lt;img src=x onerror="alert(1)"&gt;' in text_of
        assert "javascript:" not in html
        # No arXiv id and no web link: the link is an HF search for the title, encoded.
        assert "https://huggingface.co/papers?q=Agents+%3Cscript%3E" in html
    text = (digests / "edition-1.txt").read_text(encoding="utf-8")
    assert "Sneaky Bcc: x@y" in " ".join(text.split())
    assert "\r" not in text


def test_no_text_field_can_start_a_mail_header(tmp_path: Path) -> None:
    papers = parse_dump(read_dump(_hostile_dump(tmp_path / "inbox"))).papers
    assert papers[1].title == "Sneaky Bcc: x@y"
    assert papers[0].authors == ("<b>Bold</b> Author", "Mal Cc: z@z")
    # Even a title put in a header stays one header: the stdlib refuses CR/LF, and the
    # parsers never give one.
    for paper in papers:
        message = EmailMessage(policy=SMTP)
        message["To"] = "reader@example.org"
        message["Subject"] = paper.title
        message["X-Authors"] = ", ".join(paper.authors)
        message.set_content(paper.abstract)
        headers = message.as_bytes().split(b"\r\n\r\n", 1)[0]
        names = [line.split(b":", 1)[0] for line in headers.split(b"\r\n")
                 if line and not line[:1].isspace()]
        assert names == [b"To", b"Subject", b"X-Authors", b"Content-Type",
                         b"Content-Transfer-Encoding", b"MIME-Version"]
