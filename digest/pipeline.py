"""One run of the job, as DESIGN.md draws it: ingest the dumps, find what nobody was sent,
group it by topic, render it, deliver it, and only then mark it delivered."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from digest.config import Config
from digest.dumps import parse_dump, read_dump
from digest.errors import DumpError, LockedError
from digest.model import DumpResult, Edition, RankedPaper, TopicGroup
from digest.render import RenderedEdition, render_edition, render_index, write_atomic
from digest.store import Store, open_store
from digest.topics import Classifier, group_papers

Sender = Callable[[Edition, RenderedEdition], None]

log = logging.getLogger("digest.pipeline")


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
             dry_run: bool = False) -> RunReport:
    """Ingest every dump of the inbox, then build and deliver the edition of what is new."""
    with run_lock(config), open_store(config.store_path) as store:
        classifier = Classifier(config.topics)
        resent = () if dry_run else tuple(
            deliver_edition(store, config, edition, send, now)
            for edition in pending_editions(store, classifier))
        dumps = tuple(ingest_paths(store, config, inbox_files(inbox or [config.inbox_dir],
                                                            config.inbox_settle),
                                   now()))
        papers = store.undelivered()
        if not papers:
            return RunReport(dumps, None, resent, dry_run)
        groups = group_papers(papers, classifier)
        if dry_run:
            return RunReport(dumps, preview_edition(config, groups, now()), resent, True)
        edition = claim_edition(store, groups, now())
        return RunReport(dumps, deliver_edition(store, config, edition, send, now), resent)


def ingest_paths(store: Store, config: Config, paths: list[Path],
                 now: datetime) -> Iterator[DumpResult]:
    for path in paths:
        yield ingest_file(store, config, path, now)


def ingest_file(store: Store, config: Config, path: Path, now: datetime) -> DumpResult:
    """Ingest one dump in one transaction; a bad file is recorded as failed, never raised."""
    try:
        raw = read_dump(path)
    except DumpError as exc:
        # Unreadable content has no hash; the path stands in for it in the record.
        key = "unreadable:" + hashlib.sha256(str(path).encode()).hexdigest()
        store.record_failed_dump(key, str(path), str(exc), now)
        return DumpResult(str(path), "failed", error=str(exc))
    if store.dump_ingested(raw.sha256):
        return DumpResult(str(path), "skipped", error=None)
    try:
        parsed = parse_dump(raw, page_year=config.page_year)
    except DumpError as exc:
        store.record_failed_dump(raw.sha256, str(path), str(exc), now)
        return DumpResult(str(path), "failed", error=str(exc))
    counts = store.ingest_dump(raw.sha256, str(path), parsed.format, parsed.papers, now)
    return DumpResult(str(path), "ingested", parsed.format, counts.papers, counts.new,
                      warnings=parsed.warnings)


def inbox_files(roots: list[Path], settle: float = 0.0) -> list[Path]:
    """The dump files under each root (a file or a folder), in name order, that are done
    being written: dot-files and partial downloads wait, and so does a file that changes
    within `settle` seconds (see settled_files)."""
    files: list[Path] = []
    for root in roots:
        if root.is_dir():
            files.extend(sorted(p for p in root.rglob("*")
                                if p.is_file() and not _unfinished_name(p.name)))
        else:
            files.append(root)
    return settled_files(files, settle) if settle > 0 else files


# Browsers and download tools write under these names and rename the file when it is done;
# dot-files are rsync's and editors' temporaries.
_PARTIAL_SUFFIXES = (".part", ".partial", ".crdownload", ".download", ".tmp", "~")


def _unfinished_name(name: str) -> bool:
    return name.startswith(".") or name.lower().endswith(_PARTIAL_SUFFIXES)


def settled_files(files: list[Path], settle: float) -> list[Path]:
    """The files not changed for `settle` seconds. A younger file gets a second look once
    it would be that old; if its size or mtime moved meanwhile it is still being written,
    and it waits for the next run."""
    looks = {path: _look(path) for path in files}
    now = time.time()
    young = {path: look for path, look in looks.items()
             if look is not None and now - look[1] / 1e9 < settle}
    if not young:
        return files
    youngest = max(look[1] for look in young.values()) / 1e9
    time.sleep(max(0.0, min(settle, youngest + settle - now)))
    return [path for path in files if path not in young or _look(path) == young[path]]


def _look(path: Path) -> tuple[int, int] | None:
    """Size and mtime (ns) of a file; None when it cannot be read, which ingest reports."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


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
