"""SMTP delivery against real servers on 127.0.0.1: the message every client renders, TLS
and AUTH, and what happens when a server refuses, drops the connection or never answers."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from helpers import cli, email_config, html_part, inbox_of, parts, text_part, write_dump, write_toml
from smtp_servers import (
    Authenticator,
    Recorder,
    SmtpServers,
    free_port,
    make_certificate,
    raw_server,
)

from digest.config import Config
from digest.deliver import SmtpSender
from digest.errors import DeliveryError
from digest.pipeline import run_once
from digest.store import open_store

T1 = datetime(2024, 11, 12, 7, 0)


def test_an_edition_is_one_multipart_alternative_message(config: Config, smtp: SmtpServers) -> None:
    recorder = Recorder()
    server = smtp.start(recorder)
    email = email_config(server.port, unsubscribe="https://example.com/unsub?u=1",
                         archive_url="https://digest.example.com/archive")
    report = run_once(replace(config, email=email), now=lambda: T1,
                      send=SmtpSender(email, None))
    assert report.edition is not None and report.edition.error is None
    (message,) = recorder.messages
    assert recorder.envelopes == [("digest@example.com",
                                   ("reader@example.org", "second@example.org"))]
    # Text first, HTML last: a client shows the last part it can render.
    assert parts(message) == ["multipart/alternative", "text/plain", "text/html"]
    assert message["Subject"] == "Paper digest: 354 new papers in 14 topics (Nov 12)"
    assert message["From"] == "Paper Digest <digest@example.com>"
    assert message["To"] == "reader@example.org, second@example.org"
    sent = message["Date"].datetime
    assert sent.tzinfo is not None and abs(sent - datetime.now(sent.tzinfo)).total_seconds() < 60
    assert message["List-Id"] == "Paper digest <paper-digest.example.com>"
    assert message["List-Unsubscribe"] == "<https://example.com/unsub?u=1>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    with open_store(config.store_path) as store:
        (record,) = store.editions()
    assert record.status == "delivered" and record.delivered_at
    assert message["Message-ID"] == record.message_id == report.edition.edition.message_id


def test_a_mailto_unsubscribe_gets_no_one_click_header(config: Config, smtp: SmtpServers) -> None:
    recorder = Recorder()
    server = smtp.start(recorder)
    email = email_config(server.port, unsubscribe="leave@example.com")
    run_once(replace(config, email=email), now=lambda: T1, send=SmtpSender(email, None))
    (message,) = recorder.messages
    assert message["List-Unsubscribe"] == "<mailto:leave@example.com?subject=unsubscribe>"
    assert "List-Unsubscribe-Post" not in message


def test_no_title_can_reach_a_header(tmp_path: Path, smtp: SmtpServers) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    title = "Subject: =?utf-8?q?Bcc=3A?= Bcc: victim@example.net <script>x</script>"
    write_dump(inbox / "evil.txt", [(title, "An abstract about attention and memory.")])
    recorder = Recorder()
    server = smtp.start(recorder)
    email = email_config(server.port)
    config = Config(state_dir=tmp_path / "state", inbox=inbox, page_year=2024,
                    email=email)
    run_once(config, now=lambda: T1, send=SmtpSender(email, None))
    (message,) = recorder.messages
    assert message["Subject"] == "Paper digest: 1 new paper in 1 topic (Nov 12)"
    assert "Bcc" not in message and recorder.envelopes[0][1] == email.to
    assert not any("victim" in str(value) for value in message.values())
    assert title in text_part(message)
    assert "<script>" not in html_part(message) and "&lt;script&gt;" in html_part(message)


def test_starttls_with_auth(tmp_path: Path, config: Config, smtp: SmtpServers) -> None:
    cert = make_certificate(tmp_path)
    auth = Authenticator("digest", "s3cret")
    recorder = Recorder()
    server = smtp.start(recorder, tls_context=cert.server_context(), require_starttls=True,
                  authenticator=auth, auth_required=True)
    email = email_config(server.port, security="starttls", ca_file=cert.cert,
                         username="digest")
    report = run_once(replace(config, email=email), now=lambda: T1,
                      send=SmtpSender(email, "s3cret"))
    assert report.edition is not None and report.edition.error is None
    assert auth.attempts == [b"digest"]
    assert len(recorder.messages) == 1


def test_implicit_tls(tmp_path: Path, config: Config, smtp: SmtpServers) -> None:
    cert = make_certificate(tmp_path)
    recorder = Recorder()
    server = smtp.start(recorder, ssl_context=cert.server_context())
    email = email_config(server.port, security="ssl", ca_file=cert.cert)
    report = run_once(replace(config, email=email), now=lambda: T1,
                      send=SmtpSender(email, None))
    assert report.edition is not None and report.edition.error is None
    assert len(recorder.messages) == 1


def test_an_untrusted_certificate_is_a_permanent_failure(
        tmp_path: Path, config: Config, smtp: SmtpServers) -> None:
    cert = make_certificate(tmp_path)
    server = smtp.start(Recorder(), tls_context=cert.server_context())
    email = email_config(server.port, security="starttls")  # no ca_file: not trusted
    sleeps: list[float] = []
    report = run_once(replace(config, email=email), now=lambda: T1,
                      send=SmtpSender(email, None, sleep=sleeps.append))
    assert report.edition is not None and report.edition.error is not None
    assert "TLS failed" in str(report.edition.error) and "CERTIFICATE_VERIFY_FAILED" in str(
        report.edition.error)
    assert sleeps == []


def test_a_wrong_password_ends_the_run_with_the_servers_words(
        tmp_path: Path, config: Config, smtp: SmtpServers) -> None:
    cert = make_certificate(tmp_path)
    server = smtp.start(Recorder(), tls_context=cert.server_context(), require_starttls=True,
                  authenticator=Authenticator("digest", "right"),
                  auth_required=True)
    email = email_config(server.port, security="starttls", ca_file=cert.cert,
                         username="digest")
    report = run_once(replace(config, email=email), now=lambda: T1,
                      send=SmtpSender(email, "wrong"))
    assert report.failed and report.edition is not None
    assert "535" in str(report.edition.error)
    assert "wrong" not in str(report.edition.error)


def test_a_permanent_refusal_is_tried_once_and_leaves_the_edition_pending(
        config: Config, smtp: SmtpServers) -> None:
    recorder = Recorder(replies=["554 5.7.1 Message rejected: spam score too high"])
    sleeps: list[float] = []
    server = smtp.start(recorder)
    email = email_config(server.port)
    report = run_once(replace(config, email=email), now=lambda: T1,
                      send=SmtpSender(email, None, sleep=sleeps.append))
    assert report.edition is not None and report.edition.error is not None
    assert str(report.edition.error) == (
        f"SMTP 127.0.0.1:{email.smtp_port}: 554 5.7.1 Message rejected: spam score too high")
    assert not report.edition.error.transient and sleeps == [] and recorder.received == []
    with open_store(config.store_path) as store:
        (record,) = store.editions()
        assert store.undelivered() == []  # its papers stay claimed by the pending edition
    assert (record.status, record.last_error) == ("pending", str(report.edition.error))


def test_recipients_refused_at_rcpt_are_reported_with_the_servers_words(
        config: Config, smtp: SmtpServers) -> None:
    recorder = Recorder(refuse={"reader@example.org": "550 5.1.1 No such user here",
                                "second@example.org": "550 5.1.1 Nor here"})
    server = smtp.start(recorder)
    email = email_config(server.port)
    report = run_once(replace(config, email=email), now=lambda: T1,
                      send=SmtpSender(email, None))
    assert report.edition is not None and report.edition.error is not None
    assert str(report.edition.error).endswith(
        "refused every recipient: reader@example.org: 550 5.1.1 No such user here; "
        "second@example.org: 550 5.1.1 Nor here")
    assert not report.edition.error.transient and recorder.received == []


def test_transient_refusals_are_retried_with_backoff(config: Config, smtp: SmtpServers) -> None:
    recorder = Recorder(replies=["451 4.3.0 Try again later", "421 4.7.0 Busy"])
    sleeps: list[float] = []
    server = smtp.start(recorder)
    email = email_config(server.port, retries=3, retry_delay=0.01)
    report = run_once(replace(config, email=email), now=lambda: T1,
                      send=SmtpSender(email, None, sleep=sleeps.append))
    assert report.edition is not None and report.edition.error is None
    assert sleeps == [0.01, 0.02]
    assert len(recorder.messages) == 1


@pytest.mark.parametrize(("behaviour", "said"), [
    ("drop", "the server closed the connection"),
    ("mute", "no answer within 0.3 s"),
])
def test_a_server_that_drops_or_never_answers_is_transient(config: Config, behaviour: str,
                                                           said: str) -> None:
    with raw_server(behaviour) as (port, connections):
        email = email_config(port, timeout=0.3, retries=2, retry_delay=0.01)
        report = run_once(replace(config, email=email), now=lambda: T1,
                          send=SmtpSender(email, None))
    assert report.edition is not None and report.edition.error is not None
    error = report.edition.error
    assert error.transient and said in str(error) and "after 3 attempts" in str(error)
    assert len(connections) == 3


def test_a_refused_connection_is_transient(config: Config) -> None:
    email = email_config(free_port(), retries=1, retry_delay=0.01)
    with pytest.raises(DeliveryError, match="connection refused") as caught:
        SmtpSender(email, None).send(EmailMessage())
    assert caught.value.transient


def test_the_password_comes_only_from_the_environment(tmp_path: Path, smtp: SmtpServers) -> None:
    cert = make_certificate(tmp_path)
    auth = Authenticator("digest", "from-env")
    recorder = Recorder()
    server = smtp.start(recorder, tls_context=cert.server_context(), require_starttls=True,
                  authenticator=auth, auth_required=True)
    toml = write_toml(tmp_path, server.port, security="starttls", ca_file=str(cert.cert),
                      username="digest", password_env="MY_SMTP_PW")
    code, out, err = cli(toml, "now", "--inbox", str(inbox_of(tmp_path, 3)),
                         env={"MY_SMTP_PW": "from-env"})
    assert code == 0, err
    missing, _, err = cli(toml, "now", env={"MY_SMTP_PW": ""})
    assert len(recorder.messages) == 1
    assert missing == 1 and "$MY_SMTP_PW is empty" in err
    db = (tmp_path / "state" / "digest.db").read_bytes()
    assert b"from-env" not in db and "from-env" not in out + err


def test_a_missing_ca_file_is_a_config_error_not_a_retry(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, 2525, security="starttls", ca_file="nowhere.pem")
    code, _, err = cli(toml, "now")
    assert code == 1 and err.startswith(
        f"digest: error: [email] ca_file {tmp_path / 'nowhere.pem'}: no such file")


def test_a_password_in_the_file_is_refused(tmp_path: Path) -> None:
    toml = write_toml(tmp_path, 2525, password="hunter2")
    code, _, err = cli(toml, "status")
    assert code == 1
    assert "a password does not belong in the file" in err and "hunter2" not in err


# -- the command, as cron runs it ---------------------------------------------------------

