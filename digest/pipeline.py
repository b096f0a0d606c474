"""One run of the job, as DESIGN.md draws it: ingest the dumps, find what nobody was sent,
group it by topic, render it, deliver it, and only then mark it delivered."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from digest.config import Config
from digest.deliver import new_message_id
from digest.dumps import OnBytes, Screen, parse_records, read_dump
from digest.errors import DeliveryError, DigestError, DumpError, LockedError
from digest.feed import render_feed
from digest.model import (
    DumpResult,
    Edition,
    Notice,
    RankedPaper,
    SourceDump,
    Sources,
    TopicGroup,
)
from digest.render import (
    RenderedEdition,
    long_date,
    render_edition,
    render_index,
    write_atomic,
)
from digest.store import Store, open_store
from digest.topics import Classifier, group_papers

# Sends an edition, or raises DeliveryError; may return warnings (recipients refused
# while the others got it).
Sender = Callable[[Edition, RenderedEdition], Sequence[str] | None]
Notifier = Callable[[Notice], None]
# Opens a progress display for `total` bytes under a label; what it yields is told each
# chunk read. The CLI shows a bar on a terminal; everything else passes no_progress.
Progress = Callable[[str, int], AbstractContextManager[OnBytes]]


@contextmanager
def no_progress(label: str, total: int) -> Iterator[OnBytes]:
    yield lambda _: None


@dataclass(frozen=True)
class EditionReport:
    edition: Edition
    html: Path
    text: Path
    # Why the edition is still pending; None once the server has taken it (or, without
    # [email], once its files are written).
    error: DeliveryError | None = None
    warnings: tuple[str, ...] = ()


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
        classifier = Classifier(config.topics)
        resent = () if dry_run else deliver_pending(store, config, classifier, send, now)
        dumps = tuple(ingest_paths(store, config, inbox_files(inbox or [config.inbox_dir]),
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


def deliver_pending(store: Store, config: Config, classifier: Classifier,
                    send: Sender | None,
                    now: Callable[[], datetime]) -> tuple[EditionReport, ...]:
    """Send the editions claimed but never delivered, oldest first, each with the
    Message-ID it was claimed with; stop at the first that fails."""
    reports: list[EditionReport] = []
    for edition_id, created in store.pending_editions():
        edition = load_edition(store, config, classifier, edition_id, created)
        reports.append(deliver_edition(store, config, edition, send, now))
        if reports[-1].error:
            break
    return tuple(reports)


def ingest_paths(store: Store, config: Config, entries: Iterable[Path | DumpError],
                 now: datetime, progress: Progress | None = None) -> Iterator[DumpResult]:
    """Ingest each dump of an inbox listing; what the walk could not reach is failed too."""
    for entry in entries:
        if isinstance(entry, DumpError):
            yield _failed(store, _path_key(entry.path), entry, now)
        else:
            yield ingest_file(store, config, entry, now, progress)


def ingest_file(store: Store, config: Config, path: Path, now: datetime,
                progress: Progress | None = None) -> DumpResult:
    """Ingest one dump in one transaction; a bad file is recorded as failed, never raised.

    The dump is read twice when big: once to hash it (so a dump already in the store costs
    no parse), then streamed into the store's transaction, which a broken file, too many bad
    records, or a change to the file since the hash rolls back whole.
    """
    progress = progress or no_progress
    total = _size(path)
    try:
        with progress(f"reading {path.name}", total) as on_bytes:
            dump = read_dump(path, on_bytes)
    except DumpError as exc:
        return _failed(store, _path_key(str(path)), exc, now)
    if store.dump_ingested(dump.sha256):
        return DumpResult(str(path), "skipped", error=None)
    screen = Screen(str(path))
    try:
        with progress(f"ingesting {path.name}", dump.size) as on_bytes:
            records = parse_records(dump, page_year=config.page_year, on_bytes=on_bytes)
            counts = store.ingest_dump(dump.sha256, str(path), records.format,
                                       screen.papers_of(records.items), now)
    except DumpError as exc:
        # The error names the first bad record; the warnings of a dump not taken are moot.
        return _failed(store, dump.sha256, exc, now)
    return DumpResult(str(path), "ingested", records.format, counts.papers, counts.new,
                      warnings=tuple(screen.warnings))


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


def inbox_files(roots: list[Path]) -> list[Path | DumpError]:
    """The dump files under each root (a file or a folder, symlinks followed), in name
    order, and a DumpError for each thing the walk could not reach: a symlink loop, a
    broken link, a folder it cannot read. Dot-files are partial downloads or editor
    leftovers and wait."""
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
    return found


def _walk(folder: Path, found: list[Path | DumpError], ancestors: set[tuple[int, int]],
          visited: set[tuple[int, int]]) -> None:
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        found.append(DumpError(str(folder), f"cannot read this folder: {exc.strerror or exc}"))
        return
    for entry in entries:
        if entry.name.startswith("."):
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


def claim_edition(store: Store, config: Config, groups: tuple[TopicGroup, ...],
                  created: datetime) -> Edition:
    """Write the edition to the store as pending, claiming its papers and fixing its
    Message-ID, before any delivery."""
    placements = [(r.paper.id, g.name) for g in groups for r in g.papers]
    message_id = new_message_id(message_domain(config))
    edition_id = store.create_edition(placements, created, message_id)
    return Edition(edition_id, created, groups, edition_sources(store, config, edition_id,
                                                                created), message_id)


def load_edition(store: Store, config: Config, classifier: Classifier, edition_id: int,
                 created: datetime) -> Edition:
    """An edition rebuilt from the store as it was claimed: the same papers, topics, order,
    sources and Message-ID."""
    groups: dict[str, list[RankedPaper]] = {}
    for topic, paper in store.edition_papers(edition_id):
        _, terms = classifier.classify(paper.title, paper.abstract)
        groups.setdefault(topic, []).append(RankedPaper(paper, terms))
    # An edition claimed before the store kept Message-IDs gets one now, once.
    message_id = store.edition_message_id(edition_id,
                                          new_message_id(message_domain(config)))
    return Edition(edition_id, created,
                   tuple(TopicGroup(name, tuple(papers)) for name, papers in groups.items()),
                   edition_sources(store, config, edition_id, created), message_id)


def edition_sources(store: Store, config: Config, edition_id: int,
                    created: datetime) -> Sources:
    """The dumps recorded between the edition before this one and this one."""
    return sources_between(store, config, store.previous_edition_created(edition_id),
                           created)


def sources_between(store: Store, config: Config, after: datetime | None,
                    until: datetime) -> Sources:
    dumps = store.dumps_between(after, until)
    last = store.last_dump_arrival(until)
    stale = (until - last).days if last else None
    return Sources(
        ingested=tuple(SourceDump(Path(d.path).name) for d in dumps if d.status == "ingested"),
        failed=tuple(SourceDump(Path(d.path).name, d.error) for d in dumps
                     if d.status == "failed"),
        last_arrival=last,
        stale_days=stale if stale is not None and stale > config.stale_after_days else None)


def nothing_new_notice(store: Store, config: Config, created: datetime) -> Notice:
    """Why a run found nothing to send: no dump came, or every paper in them was sent."""
    last_edition = store.last_edition_created()
    sources = sources_between(store, config, last_edition, created)
    since = (f"since the last edition ({long_date(last_edition)})"
             if last_edition else "yet")
    arrived = len(sources.ingested)
    if arrived:
        reason = (f"{arrived} dump{'s' if arrived != 1 else ''} arrived {since}, and every "
                  "paper in them had already been sent.")
    elif sources.failed:
        reason = f"No dump went in {since}: every one that arrived failed."
    else:
        reason = f"No dump has arrived {since}."
    return Notice(created, reason, sources)


def message_domain(config: Config) -> str:
    return config.email.sender_domain if config.email else "paper-digest.localhost"


def deliver_edition(store: Store, config: Config, edition: Edition, send: Sender | None,
                    now: Callable[[], datetime]) -> EditionReport:
    """Write the edition's files, send it, and only then mark it delivered; a failure
    leaves it pending with the server's words."""
    rendered = render_edition(edition, archive_url=email_links(config))
    report = write_edition_files(config, edition, rendered)
    store.save_edition_files(edition.id, str(report.html), str(report.text))
    warnings: Sequence[str] | None = ()
    if send is not None:
        try:
            warnings = send(edition, rendered)
        except DeliveryError as exc:
            store.record_failure(edition.id, str(exc))
            write_archive(config, store, now())
            return replace(report, error=exc)
    store.mark_delivered(edition.id, now())
    write_archive(config, store, now())
    return replace(report, warnings=tuple(warnings or ()))


def write_archive(config: Config, store: Store, now: datetime) -> None:
    """The index of every edition and the Atom feed of the delivered ones."""
    editions = store.editions()
    write_atomic(config.digests_dir / "index.html", render_index(editions))
    write_atomic(config.digests_dir / "feed.xml",
                 render_feed(editions, archive_url=archive_url(config),
                             feed_key=feed_key(config), now=now))


def archive_url(config: Config) -> str | None:
    return config.email.archive_url if config.email else None


def email_links(config: Config) -> str | None:
    """Where the email's "and N more" links point: the archive_url of [email]; without
    [email] the email is a file beside the pages, so relative links reach them."""
    if config.email is None:
        return "."
    return config.email.archive_url


def feed_key(config: Config) -> str:
    """What names the feed for good: its public address, else the archive folder."""
    return archive_url(config) or config.digests_dir.resolve().as_uri()


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
        edition = load_edition(store, config, Classifier(config.topics), edition_id,
                               datetime.fromisoformat(record.created))
        edition = replace(edition, message_id=new_message_id(message_domain(config)))
        rendered = render_edition(edition, archive_url=email_links(config))
        try:
            send(edition, rendered)
        except DeliveryError as exc:
            raise DeliveryError(str(exc), transient=exc.transient,
                                hint="the edition stays delivered; try the resend again") from None
        return EditionReport(edition, Path(record.html or ""), Path(record.text or ""))


def preview_edition(store: Store, config: Config, groups: tuple[TopicGroup, ...],
                    created: datetime) -> EditionReport:
    """A dry run's edition: rendered to preview files, claimed by nothing."""
    sources = sources_between(store, config, store.last_edition_created(), created)
    edition = Edition(0, created, groups, sources)
    rendered = render_edition(edition, archive_url=email_links(config),
                              page_name="preview.html")
    return write_edition_files(config, edition, rendered, stem="preview")


def write_edition_files(config: Config, edition: Edition, rendered: RenderedEdition,
                        stem: str | None = None) -> EditionReport:
    stem = stem or f"edition-{edition.id}"
    html = config.digests_dir / f"{stem}.html"
    text = config.digests_dir / f"{stem}.txt"
    write_atomic(config.digests_dir / f"{stem}.email.html", rendered.email_html)
    write_atomic(text, rendered.text)
    write_atomic(html, rendered.page_html)
    return EditionReport(edition, html, text)


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
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
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
