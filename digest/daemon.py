"""`digest daemon`: APScheduler runs the job on its schedule for months; this module owns
the scheduler, the claim of each scheduled slot, catch-up after downtime, signals and the
logging of each run."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_SCHEDULER_STARTED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from digest.config import Config
from digest.errors import DigestError
from digest.pipeline import RunReport
from digest.schedule import crontab_trigger, latest_slot, schedule_timezone, slot_key
from digest.store import open_store

log = logging.getLogger("digest.daemon")

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Schedule:
    """When the daemon runs: a crontab's slots (claimed once each, caught up after
    downtime), or every N seconds for polling, where a run is just a run."""

    trigger: BaseTrigger
    timezone: tzinfo
    description: str
    slotted: bool


def cron_schedule(expr: str, timezone: str | None) -> Schedule:
    tz = schedule_timezone(timezone)
    return Schedule(crontab_trigger(expr, tz), tz, f"cron {expr!r} ({tz})", slotted=True)


def interval_schedule(seconds: float, timezone: str | None) -> Schedule:
    tz = schedule_timezone(timezone)
    return Schedule(IntervalTrigger(seconds=seconds, timezone=tz), tz,
                    f"every {seconds:g} s", slotted=False)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DigestJob:
    """What the scheduler calls at each fire: claim the slot, run once, log the outcome.

    The clock is an argument so tests can fire it at any instant (a daylight-saving night,
    the morning after a week away) against a real store without waiting.
    """

    def __init__(self, config: Config, schedule: Schedule, run: Callable[[], RunReport],
                 clock: Clock = _utc_now) -> None:
        self.config = config
        self.schedule = schedule
        self.run = run
        self.clock = clock
        # Failures already logged: a bad file left in the inbox fails again on every poll.
        self.reported: set[str] = set()

    def due_slot(self) -> datetime | None:
        """The latest slot not yet run, if one has passed: what a run now would claim."""
        now = self.clock()
        with open_store(self.config.store_path) as store:
            covered = store.schedule_covered_until(now)
        return latest_slot(self.schedule.trigger, covered, now)

    def __call__(self) -> bool:
        """One scheduled run; False when there was nothing to run (the slot was taken)."""
        if self.schedule.slotted and not self._claim():
            return False
        try:
            report = self.run()
        except DigestError as exc:
            log.error("run failed: %s", exc)
        except Exception:
            # A bug must not end a daemon left running for months: log it, try next time.
            log.exception("run failed unexpectedly")
        else:
            log_report(report, idle_level=self._routine, reported=self.reported)
        self.log_next_run()
        return True

    @property
    def _routine(self) -> int:
        # A poll every few seconds that finds nothing would bury the log: those go to -v.
        return logging.INFO if self.schedule.slotted else logging.DEBUG

    def _claim(self) -> bool:
        now = self.clock()
        with open_store(self.config.store_path) as store:
            slot = latest_slot(self.schedule.trigger, store.schedule_covered_until(now), now)
            if slot is None:
                log.debug("no slot due at %s", now.isoformat())
                return False
            if not store.claim_slot(slot_key(slot), slot, now):
                # The second 01:30 of a fall-back night, or a slot another daemon ran.
                log.info("slot %s already ran; skipped", slot_key(slot))
                return False
        if now - slot > timedelta(minutes=1):
            log.info("running the slot of %s late, at %s", slot.isoformat(),
                     now.astimezone(self.schedule.timezone).isoformat(timespec="seconds"))
        return True

    def log_next_run(self) -> None:
        fire = self.schedule.trigger.get_next_fire_time(None, self.clock())
        if fire is not None:
            log.log(self._routine, "next run at %s", fire.isoformat(timespec="seconds"))


def log_report(report: RunReport, idle_level: int = logging.INFO,
               reported: set[str] | None = None) -> None:
    """One line per run, one per failed dump (naming it), one per edition sent or not sent;
    a run that found nothing to do logs at idle_level, and a dump failure already in
    `reported` (which this adds to) at DEBUG."""
    reported = set() if reported is None else reported
    ingested = [d for d in report.dumps if d.status == "ingested"]
    failed = [d for d in report.dumps if d.status == "failed"]
    new_failures = [d for d in failed if str(d.error) not in reported]
    idle = (not ingested and not new_failures and report.edition is None
            and not report.resent and report.notice is None)
    level = idle_level if idle else logging.INFO
    log.log(level, "run: %d dumps ingested (%d new papers), %d already seen, %d failed",
            len(ingested), sum(d.new or 0 for d in ingested),
            sum(d.status == "skipped" for d in report.dumps), len(failed))
    for d in failed:
        error = str(d.error)
        log.log(logging.DEBUG if error in reported else logging.ERROR, "dump failed: %s", error)
        reported.add(error)
    for d in report.dumps:
        for warning in d.warnings:
            log.warning("%s: %s", d.path, warning)
    for r in (*report.resent, *([report.edition] if report.edition else [])):
        e = r.edition
        if r.error is not None:
            log.error("edition #%d not sent: %s (%s)", e.id, r.error, r.error.hint)
        elif r in report.resent:
            log.info("delivered pending edition #%d: %s", e.id, r.html)
        else:
            log.info("edition #%d: %d papers in %d topics: %s", e.id, e.paper_count,
                     len(e.groups), r.html)
        for warning in r.warnings:
            log.warning("edition #%d: %s", e.id, warning)
    if report.notice is not None:
        if report.notice_error is not None:
            log.error("nothing new: %s (the notice was not sent: %s)", report.notice.reason,
                      report.notice_error)
        else:
            log.info("nothing new: %s (sent a notice)", report.notice.reason)
    elif report.edition is None:
        log.log(level, "nothing new: no edition")


def serve(config: Config, schedule: Schedule, run: Callable[[], RunReport],
          inboxes: list[Path]) -> None:
    """Run the job on its schedule until SIGTERM or SIGINT; a run in flight finishes first.

    A slot missed while the daemon was down or the machine slept runs once at start-up,
    however many slots were missed; one missed while running is still run up to
    misfire_grace_time late (several coalesced into one), else left to the next slot.
    """
    job = DigestJob(config, schedule, run)
    pool = ThreadPoolExecutor(max_workers=1)
    scheduler = BlockingScheduler(
        timezone=schedule.timezone, executors={"default": pool},
        job_defaults={"coalesce": True, "max_instances": 1,
                      "misfire_grace_time": max(1, int(config.misfire_grace_time))})
    first: dict[str, Any] = {}
    if not schedule.slotted:
        first["next_run_time"] = datetime.now(schedule.timezone)  # poll at once
    elif (missed := job.due_slot()) is not None:
        log.info("catching up the slot of %s, missed while the daemon was down",
                 missed.isoformat(timespec="seconds"))
        first["next_run_time"] = datetime.now(schedule.timezone)
    scheduler.add_job(job, schedule.trigger, id="digest", name="digest run", **first)

    stopping = threading.Event()
    stop_lock = threading.Lock()

    def stop_if_asked(*_: object) -> None:
        # Called on a signal and when the scheduler starts: a signal that lands before the
        # scheduler runs must still stop it once it does, and shut it down only once.
        with stop_lock:
            if stopping.is_set() and scheduler.running:
                scheduler.shutdown(wait=False)

    def stop(name: str) -> None:
        if stopping.is_set():
            # Asked twice (Ctrl-C again): the user would rather lose the run than wait.
            # Each dump and each edition is its own transaction, so nothing is half-written.
            log.warning("%s again: stopping now; the run in flight is abandoned", name)
            logging.shutdown()
            os._exit(1)
        log.info("%s: finishing any run in flight, then stopping (again to stop at once)",
                 name)
        stopping.set()
        stop_if_asked()

    scheduler.add_listener(stop_if_asked, EVENT_SCHEDULER_STARTED)
    _call_on_signals(stop)
    log.info("digest daemon started: %s, inbox %s, store %s", schedule.description,
             ", ".join(map(str, inboxes)), config.store_path)
    if "next_run_time" not in first:
        job.log_next_run()
    scheduler.start()
    pool.shutdown(wait=True)  # the scheduler stopped without waiting; its run has not
    log.info("digest daemon stopped")


def _call_on_signals(stop: Callable[[str], None]) -> None:
    """Call stop(name) on SIGTERM or SIGINT, from a thread that waits for them.

    Not a Python signal handler: one runs only when the main thread next executes Python,
    and a signal that lands just before BlockingScheduler enters its wait is then seen only
    when that wait ends, at the next slot, hours later. Blocked here, before the scheduler's
    threads exist, the signals reach only sigwait.
    """
    signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)

    def wait() -> None:
        while True:
            stop(signal.Signals(signal.sigwait(signals)).name)

    threading.Thread(target=wait, name="digest-signals", daemon=True).start()


def configure_logging(verbosity: int) -> None:
    """INFO by default (each run, the next run); -v adds DEBUG and the scheduler's own
    chatter, -q leaves warnings and errors."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if verbosity > 0
                                              else logging.WARNING)
