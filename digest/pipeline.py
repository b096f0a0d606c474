"""One run of the job, as DESIGN.md draws it: ingest the dumps, find what nobody was sent,
group it by topic, render it, deliver it, and only then mark it delivered (the outbox,
outbox.py, owns that last part); all under the run lock."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
import stat
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from digest.collector import fewer_collections
from digest.config import Config
from digest.deliver import new_message_id, sender_from_config
from digest.dumps import OnBytes, read_dump
from digest.errors import DeliveryError, DigestError, DumpError, LockedError
from digest.model import DumpResult, Notice
from digest.outbox import (
    EditionReport,
    Notifier,
    Sender,
    claim_edition,
    deliver_edition,
    deliver_pending,
    email_links,
    load_edition,
    message_domain,
    nothing_new_notice,
    preview_edition,
)
from digest.readahead import Job, ReadAhead
from digest.render import (
    render_edition,
)
from digest.store import Store, open_store
from digest.topics import group_papers

# Opens a progress display for `total` bytes under a label; what it yields is told each
# chunk read. The CLI shows a bar on a terminal; everything else passes no_progress.
Progress = Callable[[str, int], AbstractContextManager[OnBytes]]

log = logging.getLogger("digest.pipeline")


@contextmanager
def no_progress(label: str, total: int) -> Iterator[OnBytes]:
    yield lambda _: None


@dataclass(frozen=True)
class RunReport:
    dumps: tuple[DumpResult, ...]
    edition: EditionReport | None
    resent: tuple[EditionReport, ...] = ()
    dry_run: bool = False
    notice: Notice | None = None
    # A notice that could not be sent.
    notice_error: DeliveryError | None = None

    @property
    def delivery_error(self) -> DeliveryError | None:
        reports = (*self.resent, *([self.edition] if self.edition else []))
        return next((r.error for r in reports if r.error), None) or self.notice_error

    @property
    def failed(self) -> bool:
        return (any(d.status == "failed" for d in self.dumps)
                or self.delivery_error is not None)


def run_once(config: Config, *, now: Callable[[], datetime] = datetime.now,
             send: Sender | None = None, notify: Notifier | None = None,
             inbox: list[Path] | None = None, dry_run: bool = False,
             progress: Progress | None = None) -> RunReport:
    """Send what the outbox holds, ingest every dump of the inbox, then build and deliver
    the edition of what is new (or, with nothing new, the notice that says so)."""
    with run_lock(config), open_store(config.store_path) as store:
        classifier = config.classifier()
        resent = () if dry_run else deliver_pending(store, config, classifier, send, now)
        dumps = tuple(ingest_paths(store, config, inbox_files(inbox or [config.inbox_dir],
                                                            config.inbox_settle),
                                   now(), progress))
        if any(r.error for r in resent):
            # The outbox is stuck: a new edition would only queue up behind it.
            return RunReport(dumps, None, resent)
        papers = store.undelivered()
        if not papers:
            wants_notice = config.email is not None and config.email.empty == "notice"
            if dry_run or notify is None or not wants_notice:
                return RunReport(dumps, None, resent, dry_run)
            notice = nothing_new_notice(store, config, now())
            try:
                notify(notice)
            except DeliveryError as exc:
                return RunReport(dumps, None, resent, notice=notice, notice_error=exc)
            return RunReport(dumps, None, resent, notice=notice)
        groups = group_papers(papers, classifier)
        if dry_run:
            return RunReport(dumps, preview_edition(store, config, groups, now()), resent, True)
        edition = claim_edition(store, config, groups, now())
        return RunReport(dumps, deliver_edition(store, config, edition, send, now), resent)


def run_job(config: Config, inbox: list[Path] | None = None, *, dry_run: bool = False,
            progress: Progress | None = None) -> RunReport:
    """One run as `digest now` and each of the daemon's runs do it: the sender and the
    notifier of the [email] section are built here, once, so the two never deliver
    differently."""
    sender = None if dry_run else sender_from_config(config)
    return run_once(config, inbox=inbox, dry_run=dry_run, send=sender,
                    notify=sender.notice if sender else None, progress=progress)


def ingest_paths(store: Store, config: Config, entries: Iterable[Path | DumpError],
                 now: datetime, progress: Progress | None = None, *,
                 read_ahead: bool | None = None) -> Iterator[DumpResult]:
    """Ingest each dump of an inbox listing, in order; what the walk could not reach is
    failed too. The next dump is read and handed to the parsing worker (readahead.py)
    before this one goes into the store, so that its parse overlaps this one's matching;
    `read_ahead` says whether to start one, by default when it pays (`_worth_a_worker`)."""
    progress = progress or no_progress
    entries = list(entries)
    if read_ahead is None:
        read_ahead = _worth_a_worker(entries)
    # In its own process a run parses a dump when it takes it: reading ahead would only
    # hold the next one's bytes sooner.
    lookahead = _LOOKAHEAD if read_ahead else 0
    with fewer_collections(), ReadAhead(config.page_year, worker=read_ahead) as reader:
        started: deque[Job | DumpResult | DumpError] = deque()
        for entry in entries:
            started.append(_start(store, reader, entry, progress))
            if len(started) > lookahead:
                yield _finish(store, reader, started.popleft(), now, progress)
        while started:
            yield _finish(store, reader, started.popleft(), now, progress)


# Dumps handed to the worker beyond the one going into the store.
_LOOKAHEAD = 1
# Starting the worker takes about a tenth of a second, what parsing a few MB of dumps
# takes: below this much a run parses in its own process.
READ_AHEAD_FROM = 8 << 20


def _worth_a_worker(entries: list[Path | DumpError]) -> bool:
    """Whether a parsing worker would make this run faster: there is a core for it (on one
    core it only adds the cost of passing listings over), and enough to parse."""
    if len(os.sched_getaffinity(0)) < 2:
        return False
    return sum(_size(e) for e in entries if isinstance(e, Path)) >= READ_AHEAD_FROM


def ingest_file(store: Store, config: Config, path: Path, now: datetime,
                progress: Progress | None = None, *,
                read_ahead: bool | None = None) -> DumpResult:
    """Ingest one dump in one transaction; a bad file is recorded as failed, never raised."""
    (result,) = ingest_paths(store, config, [path], now, progress, read_ahead=read_ahead)
    return result


def _start(store: Store, reader: ReadAhead, entry: Path | DumpError,
           progress: Progress) -> Job | DumpResult | DumpError:
    """Read a dump to hash it (a dump already in the store costs no parse) and hand it to
    the worker; a dump that cannot be read is failed once the ones before it are in."""
    if isinstance(entry, DumpError):
        return entry
    try:
        with progress(f"reading {entry.name}", _size(entry)) as on_bytes:
            dump = read_dump(entry, on_bytes, keep=not reader.worker)
    except DumpError as exc:
        return exc
    if store.dump_ingested(dump.sha256):
        return DumpResult(str(entry), "skipped", error=None)
    return reader.submit(dump)


def _finish(store: Store, reader: ReadAhead, started: Job | DumpResult | DumpError,
            now: datetime, progress: Progress) -> DumpResult:
    """Take a dump's listings from the worker into the store, in one transaction that a
    broken file, too many bad records, or a change to the file since the hash rolls back
    whole."""
    if isinstance(started, DumpError):
        return _failed(store, _path_key(started.path), started, now)
    if isinstance(started, DumpResult):
        return started
    job = started
    if store.dump_ingested(job.sha256):  # its content came in under another name since
        reader.taken(job)
        return DumpResult(job.path, "skipped", error=None)
    try:
        with progress(f"ingesting {Path(job.path).name}", job.size) as on_bytes:
            parsed = reader.parsed(job, on_bytes)
            counts = store.ingest_listings(job.sha256, job.path, parsed.format,
                                           parsed.batches(), now)
    except DumpError as exc:
        # The error names the first bad record; the warnings of a dump not taken are moot.
        return _failed(store, job.sha256, exc, now)
    return DumpResult(job.path, "ingested", parsed.format, counts.papers, counts.new,
                      warnings=parsed.warnings)


def _failed(store: Store, key: str, exc: DumpError, now: datetime) -> DumpResult:
    store.record_failed_dump(key, exc.path, str(exc), now)
    return DumpResult(exc.path, "failed", error=str(exc))


def _path_key(path: str) -> str:
    # Content that could not be read has no hash; the path stands in for it in the record.
    return "unreadable:" + hashlib.sha256(path.encode()).hexdigest()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # read_dump says why


def inbox_files(roots: list[Path], settle: float = 0.0) -> list[Path | DumpError]:
    """The dump files under each root (a file or a folder, symlinks followed), in name
    order, and a DumpError for each thing the walk could not reach: a symlink loop, a
    broken link, a folder it cannot read. Files not done being written wait for a later
    run: dot-files, partial downloads, and one that changes within `settle` seconds
    (see settled_files)."""
    found: list[Path | DumpError] = []
    for root in roots:
        try:
            st = root.stat()
        except OSError as exc:
            found.append(DumpError(str(root), _unreachable(root, exc)))
            continue
        if stat.S_ISDIR(st.st_mode):
            _walk(root, found, {(st.st_dev, st.st_ino)}, set())
        else:
            found.append(root)
    return settled_files(found, settle) if settle > 0 else found


# Browsers and download tools write under these names and rename the file when it is done;
# dot-files are rsync's and editors' temporaries.
_PARTIAL_SUFFIXES = (".part", ".partial", ".crdownload", ".download", ".tmp", "~")


def _unfinished_name(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(_PARTIAL_SUFFIXES)


def settled_files(found: list[Path | DumpError], settle: float) -> list[Path | DumpError]:
    """The listing less the files still being written: one changed in the last `settle`
    seconds gets a second look once it would be that old, and if its size or mtime moved
    meanwhile it waits for the next run."""
    now = time.time()
    young = {path: look for path in found if isinstance(path, Path)
             if (look := _look(path)) is not None and now - look[1] / 1e9 < settle}
    if not young:
        return found
    youngest = max(look[1] for look in young.values()) / 1e9
    time.sleep(max(0.0, min(settle, youngest + settle - now)))
    return [entry for entry in found
            if not isinstance(entry, Path) or entry not in young or _look(entry) == young[entry]]


def _look(path: Path) -> tuple[int, int] | None:
    """Size and mtime (ns) of a file; None when it cannot be read, which ingest reports."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _walk(folder: Path, found: list[Path | DumpError], ancestors: set[tuple[int, int]],
          visited: set[tuple[int, int]]) -> None:
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        found.append(DumpError(str(folder), f"cannot read this folder: {exc.strerror or exc}"))
        return
    for entry in entries:
        if _unfinished_name(entry.name):
            continue
        path = Path(entry.path)
        try:
            st = entry.stat()
        except OSError as exc:
            if not isinstance(exc, FileNotFoundError) or entry.is_symlink():
                found.append(DumpError(str(path), _unreachable(path, exc)))
            continue  # else it vanished since the listing: nothing to ingest
        if not stat.S_ISDIR(st.st_mode):
            found.append(path)  # a FIFO or device too: reading it says what it is
            continue
        key = (st.st_dev, st.st_ino)
        if key in ancestors:
            found.append(DumpError(str(path), "symlink loop: it leads back to a folder "
                                   "that contains it; not followed"))
        elif key not in visited:  # a folder linked twice is read once
            visited.add(key)
            _walk(path, found, ancestors | {key}, visited)


def _unreachable(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop: the link resolves to itself; not followed"
    if isinstance(exc, FileNotFoundError):
        return "broken symlink: its target does not exist" if path.is_symlink() else (
            "no such file or folder")
    return f"cannot reach: {exc.strerror or exc}"


def resend_edition(config: Config, edition_id: int, *, send: Sender) -> EditionReport:
    """Send a delivered edition again, for the reader who lost it: the same content under a
    new Message-ID, so clients that dropped or deduplicated the first one show it."""
    with run_lock(config), open_store(config.store_path) as store:
        record = store.edition(edition_id)
        if record is None:
            raise DigestError(f"there is no edition #{edition_id} (`digest status` counts them)")
        if record.status != "delivered":
            raise DigestError(f"edition #{edition_id} was never delivered; `digest now` sends "
                              "it with its own Message-ID")
        edition = load_edition(store, config, config.classifier(), edition_id,
                               datetime.fromisoformat(record.created))
        edition = replace(edition, message_id=new_message_id(message_domain(config)))
        rendered = render_edition(edition, archive_url=email_links(config))
        try:
            send(edition, rendered)
        except DeliveryError as exc:
            raise DeliveryError(str(exc), transient=exc.transient,
                                hint="the edition stays delivered; try the resend again") from None
        return EditionReport(edition, Path(record.html or ""), Path(record.text or ""))


@contextmanager
def run_lock(config: Config) -> Iterator[None]:
    """Hold the state dir's run lock: two runs never ingest or build editions at once.

    A second run polls for the lock up to config.lock_timeout seconds, then gives up with
    a LockedError rather than queueing behind a stuck run forever.
    """
    config.state_dir.mkdir(parents=True, exist_ok=True)
    path = config.state_dir / "digest.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + config.lock_timeout
        waiting = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting:
                    log.info("waiting up to %g s for another digest run to finish",
                             config.lock_timeout)
                    waiting = True
                if time.monotonic() >= deadline:
                    raise LockedError(
                        f"{path}: another digest run is in progress "
                        f"(waited {config.lock_timeout:g} s)") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
