"""One run of the job, as DESIGN.md draws it: ingest the dumps, find what nobody was sent,
group it by topic, render it, deliver it, and only then mark it delivered."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from digest.config import Config
from digest.dumps import OnBytes, Screen, parse_records, read_dump
from digest.errors import DumpError, LockedError
from digest.model import DumpResult, Edition, RankedPaper, TopicGroup
from digest.render import RenderedEdition, render_edition, render_index, write_atomic
from digest.store import Store, open_store
from digest.topics import Classifier, group_papers

Sender = Callable[[Edition, RenderedEdition], None]
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


@dataclass(frozen=True)
class RunReport:
    dumps: tuple[DumpResult, ...]
    edition: EditionReport | None
    resent: tuple[EditionReport, ...] = ()
    dry_run: bool = False

    @property
    def failed(self) -> bool:
        return any(d.status == "failed" for d in self.dumps)


def run_once(config: Config, *, now: Callable[[], datetime] = datetime.now,
             send: Sender | None = None, inbox: list[Path] | None = None,
             dry_run: bool = False, progress: Progress | None = None) -> RunReport:
    """Ingest every dump of the inbox, then build and deliver the edition of what is new."""
    with run_lock(config), open_store(config.store_path) as store:
        classifier = Classifier(config.topics)
        resent = () if dry_run else tuple(
            deliver_edition(store, config, edition, send, now)
            for edition in pending_editions(store, classifier))
        dumps = tuple(ingest_paths(store, config, inbox_files(inbox or [config.inbox_dir]),
                                   now(), progress))
        papers = store.undelivered()
        if not papers:
            return RunReport(dumps, None, resent, dry_run)
        groups = group_papers(papers, classifier)
        if dry_run:
            return RunReport(dumps, preview_edition(config, groups, now()), resent, True)
        edition = claim_edition(store, groups, now())
        return RunReport(dumps, deliver_edition(store, config, edition, send, now), resent)


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


def claim_edition(store: Store, groups: tuple[TopicGroup, ...], created: datetime) -> Edition:
    """Write the edition to the store as pending, claiming its papers, before any delivery."""
    placements = [(r.paper.id, g.name) for g in groups for r in g.papers]
    return Edition(store.create_edition(placements, created), created, groups)


def pending_editions(store: Store, classifier: Classifier) -> Iterator[Edition]:
    """Editions claimed but never delivered, rebuilt from the store as they were claimed."""
    for edition_id, created in store.pending_editions():
        groups: dict[str, list[RankedPaper]] = {}
        for topic, paper in store.edition_papers(edition_id):
            _, terms = classifier.classify(paper.title, paper.abstract)
            groups.setdefault(topic, []).append(RankedPaper(paper, terms))
        yield Edition(edition_id, created,
                      tuple(TopicGroup(name, tuple(papers)) for name, papers in groups.items()))


def deliver_edition(store: Store, config: Config, edition: Edition, send: Sender | None,
                    now: Callable[[], datetime]) -> EditionReport:
    """Write the edition's files, send it, and only then mark it delivered."""
    rendered = render_edition(edition)
    report = write_edition_files(config, edition, rendered)
    store.save_edition_files(edition.id, str(report.html), str(report.text))
    if send is not None:
        send(edition, rendered)
    store.mark_delivered(edition.id, now())
    write_atomic(config.digests_dir / "index.html", render_index(store.editions()))
    return report


def preview_edition(config: Config, groups: tuple[TopicGroup, ...],
                    created: datetime) -> EditionReport:
    """A dry run's edition: rendered to preview files, claimed by nothing."""
    edition = Edition(0, created, groups)
    return write_edition_files(config, edition, render_edition(edition), stem="preview")


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
