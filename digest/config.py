"""Configuration: digest.toml plus the environment, folded into one frozen Config."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from digest.errors import ConfigError
from digest.schedule import DEFAULT_SCHEDULE, crontab_trigger, schedule_timezone
from digest.topics import Classifier, Topic, default_taxonomy, taxonomy_from_toml

DEFAULT_STATE_DIR = Path("state")
CONFIG_ENV = "DIGEST_CONFIG"
STATE_DIR_ENV = "DIGEST_STATE_DIR"


SECURITY_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
DEFAULT_PASSWORD_ENV = "DIGEST_SMTP_PASSWORD"


@dataclass(frozen=True)
class EmailConfig:
    """Where and how the digest is mailed. The password is never here: only the name of
    the environment variable that holds it."""

    to: tuple[str, ...]
    sender: str
    smtp_host: str = "localhost"
    smtp_port: int = 587
    security: str = "starttls"  # "starttls" | "ssl" | "none"
    username: str | None = None
    password_env: str = DEFAULT_PASSWORD_ENV
    # A mailto: address or https: URL for List-Unsubscribe; none leaves the header out.
    unsubscribe: str | None = None
    # Where the archive pages are served; "and N more" links there, else the full digest
    # is attached to a capped message.
    archive_url: str | None = None
    empty: str = "skip"  # "skip" | "notice": what a run with nothing new mails
    # A CA bundle to trust, for a relay with a private certificate.
    ca_file: Path | None = None
    timeout: float = 30.0
    # Transient failures (4xx, refused connection, timeout) are tried this many more times,
    # waiting retry_delay seconds, then twice that, and so on.
    retries: int = 3
    retry_delay: float = 2.0

    @property
    def sender_domain(self) -> str:
        return self.sender.rpartition("@")[2].strip(" >") or "localhost"


@dataclass(frozen=True)
class Config:
    state_dir: Path = DEFAULT_STATE_DIR
    # Where new dump files arrive; default: <state_dir>/inbox.
    inbox: Path | None = None
    # The year of page dates that carry none; default: from each dump's modification time.
    page_year: int | None = None
    topics: tuple[Topic, ...] = field(default_factory=default_taxonomy)
    # How long a run waits for another run's lock before it gives up.
    lock_timeout: float = 60.0
    # The daemon's five-field crontab, read as cron reads it (0 and 7 are Sunday).
    schedule: str = DEFAULT_SCHEDULE
    # The IANA zone the schedule is in; default: the machine's own.
    timezone: str | None = None
    # How late (seconds) a slot may still run, e.g. after the machine slept through it.
    misfire_grace_time: float = 6 * 3600.0
    # A dump must be unchanged this many seconds before a run takes it: one still being
    # written waits for the next run.
    inbox_settle: float = 1.0
    # The [email] section; None writes the digest to files only.
    email: EmailConfig | None = None
    # A digest warns when no dump has arrived for longer than this many days.
    stale_after_days: int = 3
    # Terms a reader follows: matching papers open the digest in a "For you" section.
    interests: tuple[str, ...] = ()

    @property
    def store_path(self) -> Path:
        return self.state_dir / "digest.db"

    @property
    def digests_dir(self) -> Path:
        return self.state_dir / "digests"

    @property
    def inbox_dir(self) -> Path:
        return self.inbox if self.inbox is not None else self.state_dir / "inbox"

    def classifier(self) -> Classifier:
        """The topics and interests as one classifier: every run, re-send and resend
        groups with the same one, so an edition mailed again reads as it first did."""
        return Classifier(self.topics, self.interests)

    def with_overrides(self, **changes: Any) -> Config:
        """A copy with the given fields replaced; None leaves a field as it is."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def load_config(path: Path | None = None) -> Config:
    """Read digest.toml (given, or from $DIGEST_CONFIG, or ./digest.toml if present)."""
    if path is None and os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    if path is None and Path("digest.toml").is_file():
        path = Path("digest.toml")
    data: dict[str, object] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return config_from_dict(data, source=str(path or "defaults"),
                            base=path.parent if path else Path.cwd())


def config_from_dict(data: dict[str, object], *, source: str, base: Path) -> Config:
    """Validate a parsed digest.toml; relative paths are taken from the file's folder."""
    known = {"state_dir", "inbox", "page_year", "topics", "lock_timeout", "email",
             "stale_after_days", "interests", "schedule", "timezone", "misfire_grace_time",
             "inbox_settle"}
    if unknown := sorted(set(data) - known - _LATER_SECTIONS):
        raise ConfigError(f"{source}: unknown setting(s): {', '.join(unknown)}")
    state_dir = _path(data, "state_dir", source, base) or Path(
        os.environ.get(STATE_DIR_ENV, DEFAULT_STATE_DIR))
    config = Config(state_dir=state_dir, inbox=_path(data, "inbox", source, base))
    if "page_year" in data:
        config = replace(config, page_year=_int(data, "page_year", source))
    if "lock_timeout" in data:
        config = replace(config, lock_timeout=float(_int(data, "lock_timeout", source)))
    if "interests" in data:
        config = replace(config, interests=_strings(data, "interests", source))
    if "topics" in data:
        config = replace(config, topics=taxonomy_from_toml(data, source=source))
    if "stale_after_days" in data:
        config = replace(config, stale_after_days=_int(data, "stale_after_days", source))
    if "email" in data:
        config = replace(config, email=email_from_dict(data["email"], source=source, base=base))
    for key in ("misfire_grace_time", "inbox_settle"):
        if key in data:
            config = config.with_overrides(**{key: _seconds(data, key, source)})
    for key in ("schedule", "timezone"):
        if key in data:
            config = config.with_overrides(**{key: _str(data, key, source)})
    try:
        # Checked at load, so a bad crontab stops `digest daemon` before it starts waiting.
        crontab_trigger(config.schedule, schedule_timezone(config.timezone))
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return config


_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_EMAIL_KEYS = {"to", "from", "smtp_host", "smtp_port", "security", "username", "password_env",
               "unsubscribe", "archive_url", "empty", "ca_file", "timeout", "retries",
               "retry_delay"}


def email_from_dict(data: object, *, source: str, base: Path) -> EmailConfig:
    """Validate the [email] section; a password in the file is refused, never read."""
    where = f"{source}: [email]"
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table")
    if "password" in data:
        raise ConfigError(f"{where}: a password does not belong in the file; put it in the "
                          f"environment variable named by password_env "
                          f"(default {DEFAULT_PASSWORD_ENV})")
    if unknown := sorted(set(data) - _EMAIL_KEYS):
        raise ConfigError(f"{where}: unknown setting(s): {', '.join(unknown)}")
    to = data.get("to")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to or not all(_is_address(a) for a in to):
        raise ConfigError(f"{where}: to must be a list of one or more mail addresses")
    sender = data.get("from")
    if not isinstance(sender, str) or not _is_address(sender):
        raise ConfigError(f"{where}: from must be a mail address")
    security = _choice(data, "security", ("starttls", "ssl", "none"), where) or "starttls"
    host = _str(data, "smtp_host", where) or "localhost"
    if data.get("username") and security == "none" and host not in _LOOPBACK:
        raise ConfigError(f"{where}: security = \"none\" would send the password in the "
                          "clear; use \"starttls\" or \"ssl\"")
    unsubscribe = _str(data, "unsubscribe", where)
    if unsubscribe and not (unsubscribe.startswith("https://")
                            or _is_address(unsubscribe.removeprefix("mailto:"))):
        raise ConfigError(f"{where}: unsubscribe must be an https:// URL or a mail address")
    return EmailConfig(
        to=tuple(to), sender=sender,
        smtp_host=host,
        smtp_port=_int(data, "smtp_port", where) if "smtp_port" in data
        else SECURITY_PORTS[security],
        security=security,
        username=_str(data, "username", where),
        password_env=_str(data, "password_env", where) or DEFAULT_PASSWORD_ENV,
        unsubscribe=unsubscribe,
        archive_url=(_str(data, "archive_url", where) or "").rstrip("/") or None,
        empty=_choice(data, "empty", ("skip", "notice"), where) or "skip",
        ca_file=_path(data, "ca_file", where, base),
        timeout=_number(data, "timeout", where, 30.0),
        retries=_count(data, "retries", where, 3),
        retry_delay=_number(data, "retry_delay", where, 2.0),
    )


def _is_address(value: object) -> bool:
    # One addr-spec, with nothing that could end a header line or add a second address.
    return (isinstance(value, str) and value.count("@") == 1 and "," not in value
            and "://" not in value and not any(c in value for c in "\r\n\0"))


def _str(data: dict[str, object], key: str, source: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
        raise ConfigError(f"{source}: {key} must be a one-line string")
    return value


def _choice(data: dict[str, object], key: str, choices: tuple[str, ...],
            source: str) -> str | None:
    value = data.get(key)
    if value is not None and value not in choices:
        raise ConfigError(f"{source}: {key} must be one of {', '.join(map(repr, choices))}")
    return value if isinstance(value, str) else None


def _count(data: dict[str, object], key: str, source: str, default: int) -> int:
    value = _int(data, key, source) if key in data else default
    if value < 0:
        raise ConfigError(f"{source}: {key} must not be negative")
    return value


def _number(data: dict[str, object], key: str, source: str, default: float) -> float:
    value = data.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{source}: {key} must be a number of seconds")
    return float(value)


# Sections that later stages own; accepted here so one file configures everything.
_LATER_SECTIONS = {"archive_url"}


def _path(data: dict[str, object], key: str, source: str, base: Path) -> Path | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{source}: {key} must be a path string")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _int(data: dict[str, object], key: str, source: str) -> int:
    value = data[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{source}: {key} must be a whole number")
    return value


def _strings(data: dict[str, object], key: str, source: str) -> tuple[str, ...]:
    value = data[key]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f'{source}: {key} must be a list of terms, like ["agent", "rlhf"]')
    return tuple(v.strip() for v in value)


def _seconds(data: dict[str, object], key: str, source: str) -> float:
    value = data[key]
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{source}: {key} must be a number of seconds, 0 or more")
    return float(value)
