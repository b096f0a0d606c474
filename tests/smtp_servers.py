"""Real SMTP servers on 127.0.0.1 for the tests: aiosmtpd (plain, STARTTLS, implicit TLS,
AUTH, scripted refusals) and raw sockets that drop the connection or never answer."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps every message it accepts, as the bytes received.

    `replies` scripts the answers to DATA, one per message attempt: an SMTP reply line to
    refuse with, or None to accept; once it runs out, every message is accepted."""

    replies: list[str | None] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)
    envelopes: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Seconds between taking a message and saying so: widens the window in which a client
    # dies after the server has the message but before it hears that.
    reply_delay: float = 0.0
    # Recipients refused at RCPT TO, with the reply line to refuse them with.
    refuse: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            reply = self.replies.pop(0) if self.replies else None
            if reply is not None:
                return reply
            self.received.append(bytes(envelope.original_content or envelope.content))
            self.envelopes.append((envelope.mail_from, tuple(envelope.rcpt_tos)))
        if self.reply_delay:
            await asyncio.sleep(self.reply_delay)
        return "250 2.0.0 OK queued"

    @property
    def messages(self) -> list[EmailMessage]:
        """What arrived, parsed by the stdlib parser."""
        with self.lock:
            raw = list(self.received)
        return [message_from_bytes(b, policy=policy.default) for b in raw]  # type: ignore[misc]


class Authenticator:
    def __init__(self, username: str, password: str) -> None:
        self.expected = (username.encode(), password.encode())
        self.attempts: list[bytes] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str,
                 auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        self.attempts.append(auth_data.login)
        ok = (auth_data.login, auth_data.password) == self.expected
        return AuthResult(success=ok, handled=False)


class SmtpServers:
    """aiosmtpd servers on 127.0.0.1, started by a test and stopped when it ends (the
    `smtp` fixture)."""

    def __init__(self) -> None:
        self._running: list[Controller] = []

    def start(self, recorder: Recorder, port: int | None = None,
              **options: Any) -> Controller:
        """A server that hands what it receives to `recorder`; options go to aiosmtpd
        (tls_context, require_starttls, ssl_context, authenticator, auth_required...)."""
        controller = Controller(recorder, hostname=HOST, port=port or free_port(), **options)
        controller.start()
        self._running.append(controller)
        return controller

    def stop(self, controller: Controller) -> None:
        self._running.remove(controller)
        controller.stop()

    def stop_all(self) -> None:
        while self._running:
            self.stop(self._running[-1])


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_certificate(folder: Path) -> Certificate:
    """A throwaway self-signed certificate for 127.0.0.1, made for this test only."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    paths = Certificate(folder / "cert.pem", folder / "key.pem")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return paths


@contextmanager
def raw_server(behaviour: str) -> Iterator[tuple[int, list[int]]]:
    """A TCP server that is no SMTP server: "drop" closes each connection at once, "mute"
    accepts and never says a word. Yields its port and a count of connections."""
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen()
    listener.settimeout(0.1)
    connections: list[int] = []
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            connections.append(1)
            if behaviour == "drop":
                conn.close()
            else:
                held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1]), connections
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()
