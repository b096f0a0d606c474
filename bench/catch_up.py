"""Start-up catch-up after downtime: the cost of finding the one slot to run.

A daemon coming back after a long time away asks which slot it missed last. Measured for
each schedule and downtime, side by side:

  baseline  walk every slot since the last one run (the obvious loop)
  digest    schedule.latest_slot: look back a day, widen only when that finds nothing

Run: python bench/catch_up.py
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

from digest.schedule import crontab_trigger, fire_times, latest_slot

UNTIL = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def walk_every_slot(trigger: BaseTrigger, after: datetime, until: datetime) -> datetime | None:
    last = None
    for last in fire_times(trigger, after, until):  # noqa: B007
        pass
    return last


def timed(fn: Callable[[], datetime | None]) -> tuple[float, datetime | None]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    zone = ZoneInfo("Europe/Paris")
    print(f"{'schedule':<16} {'down':>8} {'baseline s':>11} {'digest s':>9} {'ratio':>7}")
    for expr in ("0 7 * * 1-5", "*/5 * * * *", "* * * * *"):
        trigger = crontab_trigger(expr, zone)
        for days in (1, 7, 30, 90):
            after = UNTIL - timedelta(days=days)
            base, expected = timed(lambda t=trigger, a=after: walk_every_slot(t, a, UNTIL))
            ours, got = timed(lambda t=trigger, a=after: latest_slot(t, a, UNTIL))
            assert got == expected, (expr, days, got, expected)
            print(f"{expr:<16} {days:>6} d {base:>11.4f} {ours:>9.4f} {base / ours:>6.1f}x")


if __name__ == "__main__":
    main()
