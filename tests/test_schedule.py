"""The schedule on a controlled clock: cron's weekday numbers, daylight-saving nights in
Paris and New York, and catch-up after downtime, each against a real store file. Nothing
here sleeps: the job is fired at the instants the real trigger yields."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

from digest.config import Config
from digest.daemon import DigestJob, cron_schedule
from digest.errors import ConfigError
from digest.pipeline import RunReport
from digest.schedule import cron_weekdays, crontab_trigger, fire_times, latest_slot, slot_key
from digest.store import Store

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(("cron", "days"), [
    ("1-5", "mon,tue,wed,thu,fri"),
    ("mon-fri", "mon,tue,wed,thu,fri"),
    ("MON-FRI", "mon,tue,wed,thu,fri"),
    ("0", "sun"),
    ("7", "sun"),
    ("sun", "sun"),
    ("1", "mon"),
    ("6", "sat"),
    ("0,6", "sat,sun"),
    ("1,3,5", "mon,wed,fri"),
    ("mon,wed,fri", "mon,wed,fri"),
    ("*/2", "tue,thu,sat,sun"),
    ("1-5/2", "mon,wed,fri"),
    ("5-7", "fri,sat,sun"),
    ("fri-sun", "fri,sat,sun"),
    ("0-6", "*"),
    ("1-7", "*"),
    ("*", "*"),
    ("0-2,4", "mon,tue,thu,sun"),
])
def test_cron_weekday_numbers_count_from_sunday(cron: str, days: str) -> None:
    assert cron_weekdays(cron) == days


@pytest.mark.parametrize("bad", ["8", "5-1", "xyz", "*/0", "mon-", "1-5/x"])
def test_a_bad_weekday_is_a_clear_error(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"schedule '0 7 \* \* .*': .*day-of-week"):
        crontab_trigger(f"0 7 * * {bad}", PARIS)


def _fires(expr: str, tz: ZoneInfo, start: datetime, count: int) -> list[datetime]:
    trigger = crontab_trigger(expr, tz)
    fires, prev, now = [], None, start
    for _ in range(count):
        prev = now = trigger.get_next_fire_time(prev, now)
        fires.append(now)
    return fires


@pytest.mark.parametrize("expr", ["0 7 * * 1-5", "0 7 * * mon-fri", "0 7 * * 1,2,3,4,5"])
def test_weekdays_mean_monday_to_friday(expr: str) -> None:
    saturday = datetime(2026, 11, 28, 8, 0, tzinfo=PARIS)
    fires = _fires(expr, PARIS, saturday, 10)
    assert [f.strftime("%a %d %H:%M") for f in fires[:6]] == [
        "Mon 30 07:00", "Tue 01 07:00", "Wed 02 07:00", "Thu 03 07:00", "Fri 04 07:00",
        "Mon 07 07:00"]
    assert {f.weekday() for f in fires} == {0, 1, 2, 3, 4}


@pytest.mark.parametrize(("weekday", "name"), [("0", "Sun"), ("7", "Sun"), ("6", "Sat")])
def test_sunday_is_0_and_7_as_in_cron(weekday: str, name: str) -> None:
    fires = _fires(f"30 9 * * {weekday}", NEW_YORK, datetime(2026, 11, 25, tzinfo=NEW_YORK), 3)
    assert {f.strftime("%a %H:%M") for f in fires} == {f"{name} 09:30"}


def test_day_of_month_and_weekday_together_mean_either_as_in_cron() -> None:
    fires = _fires("0 7 1 * 1", PARIS, datetime(2026, 11, 28, tzinfo=PARIS), 6)
    assert [f.strftime("%a %d") for f in fires] == [
        "Mon 30", "Tue 01", "Mon 07", "Mon 14", "Mon 21", "Mon 28"]


def test_macros_and_plain_fields() -> None:
    assert [f.strftime("%d %H:%M") for f in _fires(
        "@daily", PARIS, datetime(2026, 11, 25, 12, tzinfo=PARIS), 2)] == ["26 00:00",
                                                                          "27 00:00"]
    assert [f.strftime("%H:%M") for f in _fires(
        "*/20 9-10 * * *", PARIS, datetime(2026, 11, 25, tzinfo=PARIS), 7)] == [
        "09:00", "09:20", "09:40", "10:00", "10:20", "10:40", "09:00"]


def test_a_crontab_needs_five_fields() -> None:
    with pytest.raises(ConfigError, match="five fields"):
        crontab_trigger("0 7 * *", PARIS)


# -- daylight saving: the job fired where the real trigger fires, on a real store ----------

class Runs:
    """The run the job is given: records the clock at each call instead of building an
    edition, so a test counts runs per slot."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.at: list[datetime] = []

    def __call__(self) -> RunReport:
        self.at.append(self.clock.now)
        return RunReport((), None)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _job(tmp_path: Path, expr: str, tz: str, start: datetime) -> tuple[DigestJob, Clock, Runs]:
    clock = Clock(start)
    runs = Runs(clock)
    config = Config(state_dir=tmp_path / "state")
    return DigestJob(config, cron_schedule(expr, tz), runs, clock), clock, runs


def _live(job: DigestJob, clock: Clock, until: datetime) -> list[datetime]:
    """The daemon's life from the clock's start to `until`, as BlockingScheduler lives it:
    ask the trigger for the next fire after the last, fire the job a moment later."""
    job.due_slot()  # start-up: the daemon begins watching the store
    trigger, fired, prev = job.schedule.trigger, [], None
    while (fire := trigger.get_next_fire_time(prev, clock.now)) <= until:
        # In UTC: arithmetic on a zone's datetime drops `fold`, the second 01:30's mark.
        clock.now = fire.astimezone(UTC) + timedelta(milliseconds=20)
        fired.append(fire)
        job()
        prev = fire
    return fired


@pytest.mark.parametrize(("expr", "tz", "day", "runs_that_day"), [
    ("30 2 * * *", "Europe/Paris", datetime(2026, 3, 29), 1),        # 02:00 -> 03:00
    ("30 2 * * *", "America/New_York", datetime(2026, 3, 8), 1),     # 02:00 -> 03:00
    ("0 2 * * *", "Europe/Paris", datetime(2026, 3, 29), 1),
    ("*/30 * * * *", "Europe/Paris", datetime(2026, 3, 29), 46),     # a 23-hour day
])
def test_spring_forward_runs_the_skipped_slot_once(tmp_path: Path, expr: str, tz: str,
                                                  day: datetime, runs_that_day: int) -> None:
    zone = ZoneInfo(tz)
    start = (day - timedelta(days=1)).replace(tzinfo=zone)
    job, clock, runs = _job(tmp_path, expr, tz, start)
    _live(job, clock, (day + timedelta(days=2)).replace(tzinfo=zone))
    per_day = [r.astimezone(zone).date() for r in runs.at]
    assert per_day.count(day.date()) == runs_that_day
    assert per_day.count((day - timedelta(days=1)).date()) >= 1
    assert per_day.count((day + timedelta(days=1)).date()) >= 1


@pytest.mark.parametrize(("expr", "tz", "day", "hour"), [
    ("30 2 * * *", "Europe/Paris", datetime(2026, 10, 25), 2),      # 03:00 -> 02:00
    ("30 1 * * *", "America/New_York", datetime(2026, 11, 1), 1),   # 02:00 -> 01:00
    ("0 1 * * *", "America/New_York", datetime(2026, 11, 1), 1),
    ("15 2 * * 0", "Europe/Paris", datetime(2026, 10, 25), 2),      # a Sunday-only slot
])
def test_fall_back_runs_the_repeated_slot_once(tmp_path: Path, expr: str, tz: str,
                                               day: datetime, hour: int) -> None:
    zone = ZoneInfo(tz)
    start = (day - timedelta(days=1)).replace(tzinfo=zone)
    job, clock, runs = _job(tmp_path, expr, tz, start)
    fired = _live(job, clock, (day + timedelta(days=2)).replace(tzinfo=zone))
    on_the_night = [f for f in fired if f.date() == day.date()]
    # APScheduler fires at both instants of the repeated hour; the claim lets one through.
    assert len(on_the_night) == 2
    assert on_the_night[0].hour == on_the_night[1].hour == hour
    assert on_the_night[0].astimezone(UTC) != on_the_night[1].astimezone(UTC)
    ran_on_the_night = [r for r in runs.at if r.astimezone(zone).date() == day.date()]
    assert len(ran_on_the_night) == 1
    assert len(runs.at) == len(fired) - 1


def test_every_half_hour_through_fall_back_runs_each_wall_clock_slot_once(
        tmp_path: Path) -> None:
    job, clock, runs = _job(tmp_path, "*/30 * * * *", "America/New_York",
                            datetime(2026, 11, 1, 0, 0, tzinfo=NEW_YORK))
    _live(job, clock, datetime(2026, 11, 1, 3, 0, tzinfo=NEW_YORK))
    local = [r.astimezone(NEW_YORK).strftime("%H:%M") for r in runs.at]
    assert local == ["00:30", "01:00", "01:30", "02:00", "02:30", "03:00"]


def test_the_spring_forward_slot_fires_once_an_hour_late(tmp_path: Path) -> None:
    job, clock, runs = _job(tmp_path, "30 2 * * *", "Europe/Paris",
                            datetime(2026, 3, 28, 12, 0, tzinfo=PARIS))
    _live(job, clock, datetime(2026, 3, 30, 12, 0, tzinfo=PARIS))
    assert [r.astimezone(PARIS).strftime("%d %H:%M") for r in runs.at] == ["29 03:30",
                                                                          "30 02:30"]


# -- catch-up after downtime ------------------------------------------------------------

def test_a_week_down_catches_up_one_slot_not_five(tmp_path: Path) -> None:
    monday = datetime(2026, 11, 23, 6, 0, tzinfo=PARIS)
    job, clock, runs = _job(tmp_path, "0 7 * * 1-5", "Europe/Paris", monday)
    _live(job, clock, monday.replace(hour=12))
    assert len(runs.at) == 1
    # Down from Monday noon to the next Monday 10:00; a new job, as a restarted process.
    clock.now = datetime(2026, 11, 30, 10, 0, tzinfo=PARIS)
    restarted = DigestJob(job.config, job.schedule, runs, clock)
    due = restarted.due_slot()
    assert due is not None and due.strftime("%a %d %H:%M") == "Mon 30 07:00"
    assert restarted() is True
    assert len(runs.at) == 2
    assert restarted.due_slot() is None
    clock.now += timedelta(minutes=5)
    assert restarted() is False
    assert len(runs.at) == 2


def test_nothing_to_catch_up_on_the_first_start(tmp_path: Path) -> None:
    job, clock, runs = _job(tmp_path, "0 7 * * *", "Europe/Paris",
                            datetime(2026, 11, 25, 12, 0, tzinfo=PARIS))
    assert job.due_slot() is None
    assert job() is False and runs.at == []


def test_a_slot_missed_before_the_first_run_is_caught_up(tmp_path: Path) -> None:
    # Started at 06:00, stopped at 06:30, back at 08:00: 07:00 was missed.
    job, clock, runs = _job(tmp_path, "0 7 * * *", "Europe/Paris",
                            datetime(2026, 11, 25, 6, 0, tzinfo=PARIS))
    assert job.due_slot() is None
    clock.now = datetime(2026, 11, 25, 8, 0, tzinfo=PARIS)
    assert job() is True
    assert len(runs.at) == 1
    assert job() is False


def test_a_slot_claimed_by_one_daemon_is_not_run_by_another(tmp_path: Path) -> None:
    job, clock, runs = _job(tmp_path, "0 7 * * *", "Europe/Paris",
                            datetime(2026, 11, 25, 6, 0, tzinfo=PARIS))
    job.due_slot()
    clock.now = datetime(2026, 11, 25, 7, 0, 0, 5000, tzinfo=PARIS)
    other = DigestJob(job.config, job.schedule, runs, clock)
    assert [job(), other()] == [True, False]
    assert len(runs.at) == 1


def test_latest_slot_after_months_looks_back_only_as_far_as_it_must() -> None:
    trigger = crontab_trigger("* * * * *", PARIS)
    after = datetime(2026, 1, 1, tzinfo=UTC)
    until = datetime(2026, 11, 25, 10, 0, 30, tzinfo=UTC)
    assert latest_slot(trigger, after, until) == until.replace(second=0)
    yearly = crontab_trigger("0 0 1 1 *", PARIS)
    slot = latest_slot(yearly, datetime(2020, 6, 1, tzinfo=UTC), until)
    assert slot is not None and slot_key(slot) == "2026-01-01T00:00:00"


def test_fire_times_counts_both_instants_of_a_repeated_hour() -> None:
    trigger = crontab_trigger("30 1 * * *", NEW_YORK)
    fires = list(fire_times(trigger, datetime(2026, 11, 1, 4, 0, tzinfo=UTC),
                            datetime(2026, 11, 1, 7, 0, tzinfo=UTC)))
    assert [f.astimezone(UTC).strftime("%H:%M") for f in fires] == ["05:30", "06:30"]
    assert {slot_key(f) for f in fires} == {"2026-11-01T01:30:00"}


def test_slots_survive_in_the_store_across_opens(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    fire = datetime(2026, 11, 25, 7, 0, tzinfo=PARIS)
    first = Store(path)
    assert first.claim_slot(slot_key(fire), fire, fire)
    first.close()
    again = Store(path)
    assert not again.claim_slot(slot_key(fire), fire, fire)
    assert again.schedule_covered_until(fire + timedelta(days=3)) == fire
    again.close()


def test_the_job_on_the_real_clock_claims_the_slot_just_passed(tmp_path: Path) -> None:
    config = Config(state_dir=tmp_path / "state")
    schedule = cron_schedule("0 7 * * 1-5", "Europe/Paris")
    ran: list[datetime] = []

    def run() -> RunReport:
        ran.append(datetime.now(UTC))
        return RunReport((), None)

    with time_machine.travel(datetime(2026, 11, 27, 6, 59, tzinfo=PARIS), tick=False):
        job = DigestJob(config, schedule, run)  # the default clock: datetime.now
        assert job.due_slot() is None  # Friday 06:59: the daemon starts watching
    with time_machine.travel(datetime(2026, 11, 27, 7, 0, 2, tzinfo=PARIS), tick=False):
        assert job() is True
        assert job() is False
    with time_machine.travel(datetime(2026, 11, 28, 7, 0, 2, tzinfo=PARIS), tick=False):
        assert job() is False  # Saturday: no slot
    assert ran == [datetime(2026, 11, 27, 6, 0, 2, tzinfo=UTC)]
