"""Configuration: digest.toml plus the environment, folded into one frozen Config."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from digest.errors import ConfigError
from digest.schedule import DEFAULT_SCHEDULE, crontab_trigger, schedule_timezone
from digest.topics import Topic, default_taxonomy, taxonomy_from_toml

DEFAULT_STATE_DIR = Path("state")
CONFIG_ENV = "DIGEST_CONFIG"
STATE_DIR_ENV = "DIGEST_STATE_DIR"


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

    @property
    def store_path(self) -> Path:
        return self.state_dir / "digest.db"

    @property
    def digests_dir(self) -> Path:
        return self.state_dir / "digests"

    @property
    def inbox_dir(self) -> Path:
        return self.inbox if self.inbox is not None else self.state_dir / "inbox"

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
    known = {"state_dir", "inbox", "page_year", "topics", "lock_timeout", "schedule",
             "timezone", "misfire_grace_time", "inbox_settle"}
    if unknown := sorted(set(data) - known - _LATER_SECTIONS):
        raise ConfigError(f"{source}: unknown setting(s): {', '.join(unknown)}")
    state_dir = _path(data, "state_dir", source, base) or Path(
        os.environ.get(STATE_DIR_ENV, DEFAULT_STATE_DIR))
    config = Config(state_dir=state_dir, inbox=_path(data, "inbox", source, base))
    if "page_year" in data:
        config = replace(config, page_year=_int(data, "page_year", source))
    if "lock_timeout" in data:
        config = replace(config, lock_timeout=float(_int(data, "lock_timeout", source)))
    if "topics" in data:
        config = replace(config, topics=taxonomy_from_toml(data, source=source))
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


# Sections that later stages own; accepted here so one file configures everything.
_LATER_SECTIONS = {"email", "interests", "archive_url"}


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


def _seconds(data: dict[str, object], key: str, source: str) -> float:
    value = data[key]
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{source}: {key} must be a number of seconds, 0 or more")
    return float(value)


def _str(data: dict[str, object], key: str, source: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ConfigError(f"{source}: {key} must be a string")
    return value
