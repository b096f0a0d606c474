"""SMTP delivery: the digest as a mail every client renders (stdlib email), sent with
smtplib, transient failures retried with backoff, permanent ones reported as the server
said them."""

from __future__ import annotations

import os
import smtplib
import ssl
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from digest.config import Config, EmailConfig
from digest.errors import ConfigError, DeliveryError
from digest.model import Edition, Notice
from digest.render import RenderedEdition, render_notice


def sender_from_config(config: Config) -> SmtpSender | None:
    """The sender of the [email] section, its password read from the environment only;
    None without [email]: the digest is then written to files only."""
    if config.email is None:
        return None
    return SmtpSender(config.email, os.environ.get(config.email.password_env))


def new_message_id(domain: str) -> str:
    """A Message-ID unique to one edition (or one re-send of it)."""
    # An explicit domain: make_msgid's default asks DNS for this host's name.
    return make_msgid(idstring="paper-digest", domain=domain)


def subject(edition: Edition) -> str:
    """`Paper digest: 42 new papers in 7 topics (Nov 12)`: counts and a date, never a
    title, so nothing from a dump can reach a header."""
    papers, topics = edition.paper_count, len(edition.groups)
    return (f"Paper digest: {papers} new paper{'s' if papers != 1 else ''} in {topics} "
            f"topic{'s' if topics != 1 else ''} ({_day(edition.created)})")


def build_message(email: EmailConfig, edition: Edition, rendered: RenderedEdition, *,
                  now: datetime) -> EmailMessage:
    """multipart/alternative, text first and HTML last (clients show the last part they
    can); inside multipart/mixed with the full digest attached when the HTML is capped."""
    if not edition.message_id:
        raise DeliveryError(f"edition #{edition.id} has no Message-ID")
    message = _headers(email, subject(edition), edition.message_id, now)
    message.set_content(rendered.text)
    message.add_alternative(rendered.email_html, subtype="html")
    if rendered.attachment:
        message.add_attachment(rendered.page_html, subtype="html",
                               filename=rendered.attachment)
    return message


def build_notice(email: EmailConfig, notice: Notice, *, now: datetime) -> EmailMessage:
    """The short mail of a run with nothing new, for `empty = "notice"`."""
    message = _headers(email, f"Paper digest: no new papers ({_day(notice.created)})",
                       new_message_id(email.sender_domain), now)
    message.set_content(render_notice(notice))
    return message


def _headers(email: EmailConfig, subject_line: str, message_id: str,
             now: datetime) -> EmailMessage:
    message = EmailMessage()
    # The header registry folds and encodes each value: no value can start a new header.
    message["Subject"] = subject_line
    message["From"] = email.sender
    message["To"] = ", ".join(email.to)
    message["Date"] = format_datetime(now.astimezone())
    message["Message-ID"] = message_id
    message["List-Id"] = f"Paper digest <paper-digest.{email.sender_domain}>"
    # RFC 3834: tells auto-responders (vacation replies) not to answer.
    message["Auto-Submitted"] = "auto-generated"
    if email.unsubscribe:
        target = email.unsubscribe
        if target.startswith("https://"):
            message["List-Unsubscribe"] = f"<{target}>"
            # RFC 8058 one-click unsubscribe is defined for an HTTPS target only.
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        else:
            address = target.removeprefix("mailto:")
            message["List-Unsubscribe"] = f"<mailto:{address}?subject=unsubscribe>"
    return message


class SmtpSender:
    """Sends editions and notices through one SMTP relay, as the [email] section says.

    Transient failures (a 4xx reply, a refused or dropped connection, a timeout) are tried
    again after retry_delay seconds, then twice that, and so on; a permanent one (5xx, a
    TLS or login failure) raises at once with the server's own words.
    """

    def __init__(self, email: EmailConfig, password: str | None, *,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], datetime] = datetime.now) -> None:
        if email.username and not password:
            raise ConfigError(f"[email] username is set but ${email.password_env} is empty: "
                              "the SMTP password comes from that environment variable")
        if email.ca_file and not email.ca_file.is_file():
            raise ConfigError(f"[email] ca_file {email.ca_file}: no such file")
        self.email = email
        self._password = password
        self._sleep = sleep
        self._clock = clock

    def __call__(self, edition: Edition, rendered: RenderedEdition) -> tuple[str, ...]:
        return self.send(build_message(self.email, edition, rendered, now=self._clock()))

    def notice(self, notice: Notice) -> None:
        self.send(build_notice(self.email, notice, now=self._clock()))

    def send(self, message: EmailMessage) -> tuple[str, ...]:
        """Send one message; what comes back names the recipients the server refused while
        it took the message for the others (a retry would mail those twice)."""
        delay, attempt = self.email.retry_delay, 1
        while True:
            try:
                refused = self._send_once(message)
                return tuple(f"{self._where()} refused {rcpt}: {code} {_text(msg)}"
                             for rcpt, (code, msg) in refused.items())
            except (smtplib.SMTPException, OSError) as exc:
                transient, reason = _failure(exc, self.email.timeout)
                if not transient or attempt > self.email.retries:
                    tries = f" (after {attempt} attempts)" if attempt > 1 else ""
                    raise DeliveryError(f"{self._where()}: {reason}{tries}",
                                        transient=transient) from None
            self._sleep(delay)
            delay, attempt = delay * 2, attempt + 1

    def _send_once(self, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        smtp = self._connect()
        try:
            if self.email.security == "starttls":
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if self.email.username:
                smtp.login(self.email.username, self._password or "")
            return smtp.send_message(message, from_addr=self.email.sender,
                                     to_addrs=list(self.email.to))
        finally:
            # Once the server has taken the message, a goodbye that fails changes nothing:
            # treating it as a failure would send the edition twice.
            with suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()

    def _connect(self) -> smtplib.SMTP:
        email = self.email
        smtp: smtplib.SMTP
        # Given the host, the constructor connects (and closes again if that fails); it also
        # keeps the host name that STARTTLS checks the certificate against.
        if email.security == "ssl":
            smtp = smtplib.SMTP_SSL(email.smtp_host, email.smtp_port, timeout=email.timeout,
                                    context=self._tls())
        else:
            smtp = smtplib.SMTP(email.smtp_host, email.smtp_port, timeout=email.timeout)
        try:
            smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _tls(self) -> ssl.SSLContext:
        ca_file = str(self.email.ca_file) if self.email.ca_file else None
        return ssl.create_default_context(cafile=ca_file)

    def _where(self) -> str:
        return f"SMTP {self.email.smtp_host}:{self.email.smtp_port}"


def _failure(exc: BaseException, timeout: float) -> tuple[bool, str]:
    """Whether a failure is worth another try, and what to tell the user."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        said = "; ".join(f"{rcpt}: {code} {_text(msg)}"
                         for rcpt, (code, msg) in exc.recipients.items())
        return all(400 <= c < 500 for c in codes), f"refused every recipient: {said}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500, f"{exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        # smtplib reports a reply that never came as a closed connection.
        return True, f"no answer within {timeout:g} s"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True, f"the server closed the connection ({exc or 'no reason given'})"
    if isinstance(exc, ssl.SSLError):
        return False, f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, smtplib.SMTPException):
        return False, str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return True, "connection refused"
    if isinstance(exc, OSError):
        return True, exc.strerror or str(exc)
    return False, str(exc)


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())


def _day(moment: datetime) -> str:
    return f"{moment:%b} {moment.day}"
