"""The `digest` command: argument parsing and printing only; the work is in pipeline."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from digest import __version__
from digest.config import Config, load_config
from digest.daemon import configure_logging, cron_schedule, interval_schedule, serve
from digest.errors import DigestError
from digest.model import DumpResult
from digest.pipeline import EditionReport, RunReport, inbox_files, ingest_paths, run_lock, run_once
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


def _dump_json(d: DumpResult) -> dict[str, Any]:
    return {"path": d.path, "status": d.status, "format": d.format, "papers": d.papers,
            "new": d.new, "error": d.error, "warnings": list(d.warnings)}


def _edition_json(report: EditionReport) -> dict[str, Any]:
    edition = report.edition
    return {
        "id": edition.id, "papers": edition.paper_count,
        "html": str(report.html), "text": str(report.text),
        "topics": [{"name": g.name, "papers": [
            {"title": r.paper.title, "authors_count": r.paper.authors_count,
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
@click.pass_context
@_guarded
def now(ctx: click.Context, inbox: tuple[Path, ...], page_year: int | None, dry_run: bool,
        as_json: bool) -> None:
    """Ingest the inbox and build, write and deliver the edition of every new paper."""
    config = _config(ctx, page_year=page_year)
    report = run_job(config, list(inbox) or None, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps({
            "dumps": [_dump_json(d) for d in report.dumps],
            "edition": _edition_json(report.edition) if report.edition else None,
            "resent": [_edition_json(r) for r in report.resent],
            "dry_run": report.dry_run}, indent=2))
    else:
        _print_now(report)
    sys.exit(1 if report.failed else 0)


def run_job(config: Config, inbox: list[Path] | None, *, dry_run: bool = False) -> RunReport:
    """One run as `digest now` and each of the daemon's runs do it: one place builds the
    sender, so the two never deliver differently."""
    return run_once(config, inbox=inbox, dry_run=dry_run)


def _print_now(report: RunReport) -> None:
    _print_dumps(report.dumps)
    for r in report.resent:
        click.echo(f"delivered pending edition #{r.edition.id}: {r.html}")
    if report.edition is None:
        click.echo("nothing new: every paper has been sent already; no edition")
        return
    e = report.edition.edition
    kind = "preview" if report.dry_run else f"edition #{e.id}"
    click.echo(f"{kind}: {e.paper_count} papers in {len(e.groups)} topics")
    click.echo(f"  html: {report.edition.html}\n  text: {report.edition.text}")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--year", "page_year", type=int, help="Year of page dates that carry none.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@_guarded
def ingest(ctx: click.Context, paths: tuple[Path, ...], page_year: int | None,
           as_json: bool) -> None:
    """Ingest dump files (or folders of them) into the store without building an edition."""
    from datetime import datetime

    config = _config(ctx, page_year=page_year)
    with run_lock(config), open_store(config.store_path) as store:
        files = inbox_files(list(paths), config.inbox_settle)
        dumps = list(ingest_paths(store, config, files, datetime.now()))
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
            click.echo(f"{key.replace('_', ' ')}: {value}")


@main.command()
@click.option("--cron", "cron", metavar="EXPR",
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
