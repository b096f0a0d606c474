"""Rendering: the Jinja2 environment and every artefact of an edition (email HTML and text,
the archive page, the index of editions)."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import resources
from pathlib import Path
from urllib.parse import quote_plus

import jinja2

from digest.mailbody import EmailShape, fit_email
from digest.model import Edition, EditionRecord, Notice, RankedPaper, Sources

SNIPPET_CHARS = 300
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


@dataclass(frozen=True)
class PaperView:
    title: str
    link: str
    meta: str
    snippet: str
    abstract: str
    terms: tuple[str, ...]


@dataclass(frozen=True)
class TopicView:
    name: str
    anchor: str
    papers: tuple[PaperView, ...]
    # In a capped email: how many of the topic's papers are left out, and where they are
    # (a link to the archive page; None when they are in the attached full digest).
    more: int = 0
    more_link: str | None = None


@dataclass(frozen=True)
class EditionView:
    """Everything a template may show: one model for every artefact."""

    id: int
    date: str
    title: str
    paper_count: int
    topics: tuple[TopicView, ...]
    # The inbox's preview line, hidden in the body.
    preheader: str = ""
    # The closing line on the dumps the edition came from, and a warning when none came
    # for too long.
    sources: str = ""
    sources_warning: str = ""
    # The file name of the full digest attached to a capped email.
    attachment: str | None = None
    # Topics left out of an email too big for all their headings, with their papers, and
    # the page that has them (None: the attached full digest does).
    hidden_topics: int = 0
    hidden_papers: int = 0
    whole_link: str | None = None


@dataclass(frozen=True)
class RenderedEdition:
    email_html: str
    text: str
    page_html: str
    # Set when the email shows only part of the edition and no archive_url links to the
    # rest: the full digest (page_html) goes with the message as this file.
    attachment: str | None = None


def environment() -> jinja2.Environment:
    """The Jinja2 environment over the packaged templates, autoescaping every HTML file."""
    folder = resources.files("digest.templates")
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        # select_autoescape() matches the last suffix only, which for .html.j2 is .j2.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2", "xml.j2")),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )


def paper_link(paper_title: str, arxiv_id: str | None, url: str | None) -> str:
    """The arXiv page when the id is known, the source's link, else an HF papers search."""
    if arxiv_id:
        return f"https://arxiv.org/abs/{arxiv_id}"
    if url:
        return url
    return f"https://huggingface.co/papers?q={quote_plus(paper_title)}"


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """Cut text at the last sentence end before `limit`, else at a word boundary."""
    text = " ".join(text.split())
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    head = text[:limit]
    ends = [m.start() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] > limit // 2:
        return head[: ends[-1]]
    return head.rsplit(" ", 1)[0].rstrip(",;:") + " …"


def _meta_line(ranked: RankedPaper) -> str:
    paper = ranked.paper
    parts = []
    if paper.authors:
        names = ", ".join(paper.authors[:3])
        parts.append(names + (" et al." if len(paper.authors) > 3 else ""))
    elif paper.authors_count:
        parts.append(f"{paper.authors_count} author{'s' if paper.authors_count != 1 else ''}")
    if paper.categories:
        parts.append(", ".join(paper.categories[:3]))
    if paper.published:
        parts.append(paper.published.strftime("%d %b %Y").lstrip("0"))
    if paper.upvotes is not None:
        parts.append(f"▲ {paper.upvotes}")
    parts.append(f"listed in {paper.dumps} dump{'s' if paper.dumps != 1 else ''}")
    return " · ".join(parts)


def _anchor(name: str) -> str:
    return "topic-" + (re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-") or "x")


def edition_view(edition: Edition) -> EditionView:
    topics = tuple(
        TopicView(group.name, _anchor(group.name), tuple(
            PaperView(title=r.paper.title,
                      link=paper_link(r.paper.title, r.paper.arxiv_id, r.paper.url),
                      meta=_meta_line(r), snippet=snippet(r.paper.abstract),
                      abstract=r.paper.abstract, terms=r.terms)
            for r in group.papers))
        for group in edition.groups)
    day = long_date(edition.created)
    line, warning = sources_line(edition.sources)
    return EditionView(id=edition.id, date=day, title=f"Paper digest #{edition.id}, {day}",
                       paper_count=edition.paper_count, topics=topics,
                       preheader=preheader(edition), sources=line, sources_warning=warning)


def long_date(moment: datetime) -> str:
    """`12 Nov 2024`: the date as digests and notices write it."""
    return f"{moment.day} {moment:%b %Y}"


def preheader(edition: Edition) -> str:
    """What an inbox shows beside the subject: the count, then the biggest topics."""
    groups = sorted(edition.groups, key=lambda g: -len(g.papers))
    biggest = ", ".join(f"{g.name} ({len(g.papers)})" for g in groups[:4])
    count = edition.paper_count
    return f"{count} new paper{'s' if count != 1 else ''}: {biggest}"


def sources_line(sources: Sources, *, names: int = 5) -> tuple[str, str]:
    """The closing line on an edition's dumps, and a warning when they have gone stale."""
    def listed(dumps: tuple[str, ...]) -> str:
        shown = ", ".join(dumps[:names])
        return shown + (f" and {len(dumps) - names} more" if len(dumps) > names else "")

    ingested = tuple(d.name for d in sources.ingested)
    n = len(ingested)
    line = (f"Sources: {n} dump{'s' if n != 1 else ''} since the last edition"
            + (f" ({listed(ingested)})" if n else ""))
    if sources.failed:
        line += f"; {len(sources.failed)} failed ({listed(tuple(d.name for d in sources.failed))})"
    warning = ""
    if sources.stale_days is not None and sources.last_arrival is not None:
        last = long_date(sources.last_arrival)
        warning = (f"Warning: no dump has arrived for {sources.stale_days} days "
                   f"(the last on {last}); check what feeds the inbox.")
    return line + ".", warning


def render_edition(edition: Edition, *, archive_url: str | None = None,
                   page_name: str | None = None) -> RenderedEdition:
    """Every artefact of an edition; the email fitted to its size budget, its left-out
    papers linked at the edition's page under archive_url or, without one, in the
    attached full digest."""
    env = environment()
    view = edition_view(edition)
    attachment = f"paper-digest-{edition.id}.html"
    page = page_name or f"edition-{edition.id}.html"

    def more_link(topic: TopicView) -> str | None:
        if archive_url is None:
            return None
        return f"{archive_url}/{page}#{topic.anchor}"

    def render_email(shape: EmailShape) -> str:
        shown = view
        if shape.cap is not None:
            shown = capped(view, shape.cap, more_link)
        if shape.topics is not None:
            hidden = shown.topics[shape.topics:]
            shown = replace(shown, topics=shown.topics[:shape.topics],
                            hidden_topics=len(hidden),
                            hidden_papers=sum(len(t.papers) + t.more for t in hidden),
                            whole_link=f"{archive_url}/{page}" if archive_url else None)
        if not (shape.cap is None and shape.topics is None) and archive_url is None:
            shown = replace(shown, attachment=attachment)
        return env.get_template("email.html.j2").render(
            edition=with_snippets(shown, shape.snippet_chars))

    fitted = fit_email(render_email, max((len(t.papers) for t in view.topics), default=0),
                       len(view.topics))
    return RenderedEdition(
        email_html=fitted.html,
        text=env.get_template("email.txt.j2").render(edition=view),
        page_html=env.get_template("page.html.j2").render(edition=view),
        attachment=None if fitted.complete or archive_url else attachment,
    )


def with_snippets(view: EditionView, chars: int) -> EditionView:
    return replace(view, topics=tuple(
        replace(topic, papers=tuple(replace(p, snippet=snippet(p.abstract, chars))
                                    for p in topic.papers))
        for topic in view.topics))


def capped(view: EditionView, cap: int,
           more_link: Callable[[TopicView], str | None]) -> EditionView:
    """Each topic cut to its first `cap` papers, with how many more and where they are."""
    return replace(view, topics=tuple(
        replace(topic, papers=topic.papers[:cap], more=len(topic.papers) - cap,
                more_link=more_link(topic)) if len(topic.papers) > cap else topic
        for topic in view.topics))


def render_notice(notice: Notice) -> str:
    """The text of a run with nothing new: that it ran, and why there is nothing."""
    line, warning = sources_line(notice.sources)
    return "\n\n".join(part for part in (
        f"No new papers this time. {notice.reason}", warning, line) if part) + "\n"


def render_index(editions: Sequence[EditionRecord]) -> str:
    return environment().get_template("index.html.j2").render(editions=editions)


def write_atomic(path: Path, text: str) -> None:
    """Write a file whole or not at all: a reader never sees half a digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        # mkstemp makes the file private; a digest is meant to be read, so give it the
        # mode an ordinary new file would get.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
