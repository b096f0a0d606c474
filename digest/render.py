"""Rendering: the Jinja2 environment and every artefact of an edition (email HTML and text,
the archive page, the index of editions)."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import quote_plus

import jinja2

from digest.model import Edition, RankedPaper

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


@dataclass(frozen=True)
class EditionView:
    """Everything a template may show: one model for every artefact."""

    id: int
    date: str
    title: str
    paper_count: int
    topics: tuple[TopicView, ...]


@dataclass(frozen=True)
class RenderedEdition:
    email_html: str
    text: str
    page_html: str


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
    day = edition.created.strftime("%d %b %Y").lstrip("0")
    return EditionView(id=edition.id, date=day, title=f"Paper digest #{edition.id}, {day}",
                       paper_count=edition.paper_count, topics=topics)


def render_edition(edition: Edition) -> RenderedEdition:
    env = environment()
    view = edition_view(edition)
    return RenderedEdition(
        email_html=env.get_template("email.html.j2").render(edition=view),
        text=env.get_template("email.txt.j2").render(edition=view),
        page_html=env.get_template("page.html.j2").render(edition=view),
    )


def render_index(editions: list[dict[str, object]]) -> str:
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
