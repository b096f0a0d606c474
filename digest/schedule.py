"""The schedule: a standard crontab read as cron reads it, and the slots it fires for.

Pure computation over APScheduler triggers and an explicit clock, so every rule here (weekday
numbers, daylight-saving days, catch-up after downtime) is tested without waiting.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from tzlocal import get_localzone

from digest.errors import ConfigError

DEFAULT_SCHEDULE = "0 7 * * *"

_MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# Cron counts weekdays from Sunday (0, and 7 again); APScheduler 3 from Monday (0).
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def schedule_timezone(name: str | None) -> tzinfo:
    """The named IANA zone, or the machine's own when none is configured."""
    if name is None:
        return get_localzone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"timezone {name!r}: not a known IANA zone such as "
                          "'Europe/Paris'") from None


def crontab_trigger(expr: str, tz: tzinfo) -> BaseTrigger:
    """An APScheduler trigger that fires when cron would for this five-field crontab.

    Two cron rules APScheduler's own from_crontab does not follow: weekdays count from
    Sunday (so `1-5` is Monday to Friday), and when both day-of-month and day-of-week are
    restricted the job runs on a day matching either, not both.
    """
    fields = _MACROS.get(expr.strip().lower(), expr).split()
    if len(fields) != 5:
        raise ConfigError(f"schedule {expr!r}: a crontab has five fields "
                          "(minute hour day-of-month month day-of-week)")
    minute, hour, day, month, weekday = fields
    try:
        days = cron_weekdays(weekday)
        common = {"minute": minute, "hour": hour, "month": month, "timezone": tz}
        if day.startswith("*") or weekday.startswith("*"):
            return CronTrigger(day=day, day_of_week=days, **common)
        return OrTrigger([CronTrigger(day=day, **common),
                          CronTrigger(day_of_week=days, **common)])
    except ValueError as exc:
        raise ConfigError(f"schedule {expr!r}: {exc}") from None


def cron_weekdays(field: str) -> str:
    """A cron day-of-week field (numbers 0-7 or names, lists, ranges, steps) as APScheduler
    day names: `1-5` becomes `mon,tue,wed,thu,fri`, `0` and `7` both `sun`."""
    days: set[int] = set()
    for part in field.lower().split(","):
        span, _, step_text = part.partition("/")
        step = _number(step_text, "day-of-week step") if step_text else 1
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            start, _, end = span.partition("-")
            first, last = _weekday(start), _weekday(end, is_end=True)
        else:
            first = _weekday(span)
            last = 7 if step_text else first  # `1/2` means from Monday on, every other day
        if step < 1 or first > last:
            raise ValueError(f"day-of-week {part!r} is not a valid range")
        days.update(d % 7 for d in range(first, last + 1, step))
    if len(days) == 7:
        return "*"
    # APScheduler numbers Monday 0, so sorting by (d - 1) % 7 lists them Monday first.
    return ",".join(_CRON_DAYS[d] for d in sorted(days, key=lambda d: (d - 1) % 7))


def _weekday(text: str, *, is_end: bool = False) -> int:
    if text in _CRON_DAYS:
        # `fri-sun` is Friday to Sunday: as the end of a range Sunday is cron's 7.
        return 7 if is_end and text == "sun" else _CRON_DAYS.index(text)
    value = _number(text, "day-of-week")
    if not 0 <= value <= 7:
        raise ValueError(f"day-of-week {text!r} is outside 0-7")
    return value


def _number(text: str, what: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{what} {text!r} is not a number or a day name")
    return int(text)


def fire_times(trigger: BaseTrigger, after: datetime, until: datetime) -> Iterator[datetime]:
    """Every time the trigger fires after `after` up to and including `until`, in order."""
    fire = trigger.get_next_fire_time(after, after)
    # Compared in UTC: Python ignores `fold` between datetimes of one zone, and the second
    # 01:30 of a fall-back night is only told from the first by it.
    while fire is not None and fire.astimezone(UTC) <= until.astimezone(UTC):
        yield fire
        fire = trigger.get_next_fire_time(fire, fire)


def latest_slot(trigger: BaseTrigger, after: datetime, until: datetime) -> datetime | None:
    """The last slot in (after, until]: after any downtime, the one slot to run at start-up.

    Looks back a day first and widens only when that finds nothing, so a minutely schedule
    after months away costs a day of slots, not months of them.
    """
    span = timedelta(days=1)
    after, until = after.astimezone(UTC), until.astimezone(UTC)
    while True:
        start = max(after, until - span)
        last = None
        for last in fire_times(trigger, start, until):  # noqa: B007 (the last one is wanted)
            pass
        if last is not None or start == after:
            return last
        span *= 8


def slot_key(slot: datetime) -> str:
    """The slot's wall-clock time in the schedule's zone: the same for both 01:30s of a
    fall-back night, so a claim on it sends one edition, not two."""
    return slot.replace(tzinfo=None, fold=0).isoformat(timespec="seconds")
