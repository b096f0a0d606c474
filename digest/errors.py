"""Errors written for the user: one base class, one subclass per kind of failure."""

from __future__ import annotations


class DigestError(Exception):
    """A failure the user can act on; the CLI prints it as one line with a hint."""

    hint: str = ""


class DumpError(DigestError):
    """A dump file that cannot be read or parsed; names the file and the line or record."""

    hint = "fix or remove the file; the other dumps were still ingested"

    def __init__(self, path: str, message: str, *, line: int | None = None) -> None:
        self.path = path
        self.message = message
        self.line = line
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


class ParseError(DigestError):
    """Raised by the pure parsers, which know lines but not file names."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}" if line is not None else message)


class ConfigError(DigestError):
    hint = "check digest.toml (see README.md, 'Configuration')"


class DeliveryError(DigestError):
    """The SMTP server did not take a message; `transient` when a later try may succeed."""

    hint = "the edition stays pending and is sent again on the next run"

    def __init__(self, message: str, *, transient: bool = False,
                 hint: str | None = None) -> None:
        self.transient = transient
        if hint is not None:
            self.hint = hint
        super().__init__(message)


class LockedError(DigestError):
    hint = "try again when it has finished, or raise lock_timeout in digest.toml"
