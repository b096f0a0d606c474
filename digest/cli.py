"""The `digest` command: argument parsing and printing only; the work is in pipeline."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC
from pathlib import Path
from typing import Any

import click

from digest import __version__
from digest.config import Config, load_config
from digest.daemon import configure_logging, cron_schedule, interval_schedule, serve
from digest.deliver import sender_from_config
from digest.dumps import OnBytes
from digest.errors import ConfigError, DigestError
from digest.identity import Candidate, Verdict, title_key
from digest.model import DumpResult
from digest.outbox import EditionReport
from digest.pipeline import (
    Progress,
    RunReport,
    inbox_files,
    ingest_paths,
    no_progress,
    resend_edition,
    run_job,
    run_lock,
)
from digest.schedule import crontab_trigger
from digest.store import open_store


def _fail(exc: DigestError) -> None:
    message = f"digest: error: {exc}"
    if exc.hint:
        message += f" ({exc.hint})"
    click.echo(message, err=True)
    sys.exit(1)


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a DigestError into one line and exit 1; anything else is a bug and may trace."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DigestError as exc:
            _fail(exc)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@click.group()
@click.version_option(__version__, prog_name="digest")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the store, the rendered digests and the lock [default: ./state].")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="digest.toml to read [default: $DIGEST_CONFIG, else ./digest.toml].")
@click.pass_context
def main(ctx: click.Context, state_dir: Path | None, config_path: Path | None) -> None:
    """A digest of the research papers nobody has been sent yet."""
    ctx.obj = (state_dir, config_path)


def _config(ctx: click.Context, **overrides: object) -> Config:
    state_dir, config_path = ctx.obj
    try:
        return load_config(config_path).with_overrides(state_dir=state_dir, **overrides)
    except DigestError as exc:
        _fail(exc)
        raise  # unreachable: _fail exits


# A dump this big takes long enough to read that a bar is worth drawing.
PROGRESS_MIN_BYTES = 16 << 20


def _progress(quiet: bool) -> Progress:
    """A bar on stderr for big dumps when stderr is a terminal; nothing otherwise, so cron
    mail and pipes stay clean."""
    if quiet or not sys.stderr.isatty():
        return no_progress

    @contextmanager
    def bar(label: str, total: int) -> Iterator[OnBytes]:
        if total < PROGRESS_MIN_BYTES:
            yield lambda _: None
            return
        # click's bar: already a dependency, redrawn on each 1 MB chunk, with an ETA.
        with click.progressbar(length=total, label=label, file=sys.stderr, show_eta=True,
                               show_percent=True, width=30) as progressbar:
            yield progressbar.update

    return bar


def _dump_json(d: DumpResult) -> dict[str, Any]:
    return {"path": d.path, "status": d.status, "format": d.format, "papers": d.papers,
            "new": d.new, "error": d.error, "warnings": list(d.warnings)}


def _edition_json(report: EditionReport) -> dict[str, Any]:
    edition = report.edition
    return {
        "id": edition.id, "papers": edition.paper_count, "message_id": edition.message_id,
        "html": str(report.html), "text": str(report.text),
        "error": str(report.error) if report.error else None,
        "warnings": list(report.warnings),
        "topics": [{"name": g.name, "kind": g.kind, "papers": [
            {"title": r.paper.title, "arxiv_id": r.paper.arxiv_id, "url": r.paper.url,
             "authors": list(r.paper.authors), "categories": list(r.paper.categories),
             "authors_count": r.paper.authors_count,
             "published": r.paper.published.isoformat() if r.paper.published else None,
             "upvotes": r.paper.upvotes, "dumps": r.paper.dumps, "terms": list(r.terms)}
            for r in g.papers]} for g in edition.groups],
    }


def _print_dumps(dumps: tuple[DumpResult, ...] | list[DumpResult]) -> None:
    for d in dumps:
        if d.status == "failed":
            click.echo(f"digest: error: {d.error}", err=True)
        elif d.status == "skipped":
            click.echo(f"skipped {d.path}: already ingested")
        else:
            click.echo(f"ingested {d.path}: {d.papers} papers, {d.new} new ({d.format})")
        for warning in d.warnings:
            click.echo(f"digest: warning: {d.path}: {warning}", err=True)


@main.command()
@click.option("--inbox", "inbox", multiple=True, type=click.Path(path_type=Path),
              help="A dump file or folder of dumps [default: inbox in digest.toml].")
@click.option("--year", "page_year", type=int,
              help="Year of page dates that carry none [default: from each file's mtime].")
@click.option("--dry-run", is_flag=True, help="Render a preview; claim and mark nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, even on a terminal.")
@click.pass_context
@_guarded
def now(ctx: click.Context, inbox: tuple[Path, ...], page_year: int | None, dry_run: bool,
        as_json: bool, quiet: bool) -> None:
    """Ingest the inbox and build, write and deliver the edition of every new paper."""
    config = _config(ctx, page_year=page_year)
    report = run_job(config, list(inbox) or None, dry_run=dry_run, progress=_progress(quiet))
    if as_json:
        click.echo(json.dumps({
            "dumps": [_dump_json(d) for d in report.dumps],
            "edition": _edition_json(report.edition) if report.edition else None,
            "resent": [_edition_json(r) for r in report.resent],
            "notice": report.notice.reason if report.notice else None,
            "error": str(report.delivery_error) if report.delivery_error else None,
            "dry_run": report.dry_run}, indent=2))
    else:
        _print_now(report, mailed=not dry_run and config.email is not None)
    for r in (*report.resent, *([report.edition] if report.edition else [])):
        for warning in r.warnings:
            click.echo(f"digest: warning: edition #{r.edition.id}: {warning}", err=True)
    if report.notice_error:
        click.echo(f"digest: error: the notice was not sent: {report.notice_error}", err=True)
    elif report.delivery_error:
        error = report.delivery_error
        click.echo(f"digest: error: {error} ({error.hint})", err=True)
    sys.exit(1 if report.failed else 0)


def _print_now(report: RunReport, *, mailed: bool) -> None:
    _print_dumps(report.dumps)
    for r in report.resent:
        if r.error is None:
            click.echo(f"delivered pending edition #{r.edition.id}: {r.html}")
        else:
            click.echo(f"pending edition #{r.edition.id} not sent: no new edition is built "
                       "until it is")
            return
    if report.notice:
        sent = "not sent" if report.notice_error else "sent a notice"
        click.echo(f"nothing new: {report.notice.reason} ({sent})")
    if report.edition is None:
        if not report.notice:
            click.echo("nothing new: every paper has been sent already; no edition")
        return
    e = report.edition.edition
    kind = "preview" if report.dry_run else f"edition #{e.id}"
    click.echo(f"{kind}: {e.paper_count} papers in {len(e.groups)} topics")
    if mailed and not report.dry_run:
        state = "still pending" if report.edition.error else "mailed"
        click.echo(f"  {state}: Message-ID {e.message_id}")
    click.echo(f"  html: {report.edition.html}\n  text: {report.edition.text}")


@main.command()
@click.argument("edition_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_guarded
def resend(ctx: click.Context, edition_id: int, as_json: bool) -> None:
    """Mail a delivered edition again: same content, a new Message-ID."""
    config = _config(ctx)
    sender = sender_from_config(config)
    if sender is None:
        raise ConfigError("digest.toml has no [email] section: there is nothing to send with")
    report = resend_edition(config, edition_id, send=sender)
    if as_json:
        click.echo(json.dumps({"id": edition_id, "message_id": report.edition.message_id,
                               "papers": report.edition.paper_count}, indent=2))
    else:
        click.echo(f"edition #{edition_id} sent again: {report.edition.paper_count} papers, "
                   f"Message-ID {report.edition.message_id}")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--year", "page_year", type=int, help="Year of page dates that carry none.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar, even on a terminal.")
@click.pass_context
@_guarded
def ingest(ctx: click.Context, paths: tuple[Path, ...], page_year: int | None,
           as_json: bool, quiet: bool) -> None:
    """Ingest dump files (or folders of them) into the store without building an edition."""
    from datetime import datetime

    config = _config(ctx, page_year=page_year)
    with run_lock(config), open_store(config.store_path) as store:
        files = inbox_files(list(paths), config.inbox_settle)
        dumps = list(ingest_paths(store, config, files, datetime.now(), _progress(quiet)))
    if as_json:
        click.echo(json.dumps({"dumps": [_dump_json(d) for d in dumps]}, indent=2))
    else:
        _print_dumps(dumps)
    sys.exit(1 if any(d.status == "failed" for d in dumps) else 0)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_guarded
def status(ctx: click.Context, as_json: bool) -> None:
    """Counts of papers, undelivered papers, dumps and editions in the store."""
    config = _config(ctx)
    with open_store(config.store_path) as store:
        counts = store.status()
    if as_json:
        click.echo(json.dumps(asdict(counts), indent=2))
    else:
        for key, value in asdict(counts).items():
            if value is not None:  # a pending error, only when there is one
                click.echo(f"{key.replace('_', ' ')}: {value}")


def _crontab(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check --cron's syntax as click parses it: a bad one is a usage error, exit 2."""
    if value is not None:
        try:
            crontab_trigger(value, UTC)
        except ConfigError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


@main.command()
@click.option("--cron", "cron", metavar="EXPR", callback=_crontab,
              help="A five-field crontab, read as cron does [default: schedule in "
                   "digest.toml, else '0 7 * * *'].")
@click.option("--interval", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="Run every SECONDS instead of on a crontab (polling).")
@click.option("--inbox", "inbox", multiple=True, type=click.Path(path_type=Path),
              help="A dump file or folder of dumps [default: inbox in digest.toml].")
@click.option("--year", "page_year", type=int, help="Year of page dates that carry none.")
@click.option("-v", "--verbose", count=True, help="Log more (-v: debug and the scheduler).")
@click.option("-q", "--quiet", is_flag=True, help="Log only warnings and errors.")
@click.pass_context
@_guarded
def daemon(ctx: click.Context, cron: str | None, interval: float | None,
           inbox: tuple[Path, ...], page_year: int | None, verbose: int, quiet: bool) -> None:
    """Run on the schedule until SIGTERM or SIGINT, one edition per slot."""
    if cron is not None and interval is not None:
        raise click.UsageError("give --cron or --interval, not both")
    config = _config(ctx, page_year=page_year, schedule=cron)
    schedule = (interval_schedule(interval, config.timezone) if interval is not None
                else cron_schedule(config.schedule, config.timezone))
    configure_logging(-1 if quiet else verbose)
    serve(config, schedule, lambda: run_job(config, list(inbox) or None),
          list(inbox) or [config.inbox_dir])


@main.command()
@click.argument("title")
@click.option("--abstract", default="", help="The listing's abstract, to confirm or veto.")
@click.option("--arxiv", "arxiv_id", help="The listing's arXiv id, where a source gives one.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_guarded
def why(ctx: click.Context, title: str, abstract: str, arxiv_id: str | None,
        as_json: bool) -> None:
    """Which stored paper TITLE would join, and why: arXiv id, exact key, fuzzy score, or
    new (with the closest paper turned down and the veto that turned it down)."""
    config = _config(ctx)
    with open_store(config.store_path) as store:
        match = store.explain(title, abstract, arxiv_id)
        merges = store.merges(match.paper.id) if match.paper else []
    key = title_key(title)
    if as_json:
        click.echo(json.dumps({
            "title": title, "key": key,
            "paper": _candidate_json(match.paper, match.verdict),
            "closest_rejected": _candidate_json(match.closest, match.closest_verdict),
            "merges": [asdict(m) for m in merges]}, indent=2))
        return
    click.echo(f"key: {key}")
    if match.paper and match.verdict:
        click.echo(f"paper #{match.paper.id}: {match.paper.title}")
        click.echo(f"  by {match.verdict.kind}: {match.verdict.reason}")
    else:
        click.echo("new: no stored paper is this title")
    if match.closest and match.closest_verdict:
        click.echo(f"closest turned down: #{match.closest.id}: {match.closest.title}")
        click.echo(f"  {match.closest_verdict.reason}")
    for m in merges:
        click.echo(f"merged before: {m.title!r} (score {m.score:.1f}, from {m.dump})")


def _candidate_json(paper: Candidate | None, verdict: Verdict | None) -> dict[str, Any] | None:
    if paper is None or verdict is None:
        return None
    return {"id": paper.id, "title": paper.title, "kind": verdict.kind,
            "score": round(verdict.score, 1), "reason": verdict.reason}
