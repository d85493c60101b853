"""What a channel's post says: the day's news on its topics, planned once, fitted to the service.

At planning, `planned_posts` keeps what each post needs (the day, the count per topic, the first
papers, the reading room's link) so that a post sent days later, after an outage, still tells
its own day. At sending, `render_post` writes it as Markdown or plain text, as long as the
service takes: fewer titles when it must, saying how many more and where they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from .config import Settings
from .keywords import slugs
from .links import Links
from .models import KeywordResult, Paper, collapse
from .presentation import long_date

TITLE_MAX = 300  # characters of a title in a post; a longer one is cut with "…"
AUTHORS_MAX = 80
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#])")


def planned_posts(
    settings: Settings,
    results: Mapping[str, KeywordResult],
    papers: Mapping[str, Paper],
    day: date,
) -> list[dict[str, Any]]:
    """Return one post per channel with news on its topics today (none for a channel without)."""
    names = {k.key: k.name for k in settings.keywords}
    rows = []
    for channel in settings.channels:
        keys = [k for k in channel.topics or names if k in results and results[k].new]
        if not keys:
            continue
        ids = list(dict.fromkeys(i for k in keys for i in results[k].new))
        listed = [papers[i] for i in ids if i in papers][: channel.max_papers]
        content = {
            "list": settings.name,
            "day": day.isoformat(),
            "counts": [[names[k], len(results[k].new)] for k in keys],
            "total": len(ids),
            "papers": [
                {"title": collapse(p.title), "url": p.abs_url, "authors": list(p.authors)}
                for p in listed
            ],
            "room": room_link(settings, keys, bool(channel.topics), day),
        }
        key = channel.name.casefold()
        rows.append({"channel": key, "day": day.isoformat(), "content": content})
    return rows


def room_link(settings: Settings, keys: Sequence[str], chosen: bool, day: date) -> str | None:
    """Return where the day's papers of these topics are read: the reading room's day page
    (of these topics, when the channel chose some), else the archive, else arXiv's listing."""
    if settings.web_pages:
        slug = slugs(settings.keywords)
        return Links(settings.base_url).day(day, [slug[k] for k in keys] if chosen else ())
    if settings.archive_url:
        return settings.archive_url
    keywords = {k.key: k for k in settings.keywords}
    return keywords[keys[0]].listing_url() if len(keys) == 1 else None


def short_authors(authors: Sequence[str]) -> str:
    """Return the authors as a post shows them: up to three, else the first 'et al.'."""
    text = ", ".join(authors) if len(authors) <= 3 else f"{authors[0]} et al."
    return _cut(text, AUTHORS_MAX)


def render_post(content: Mapping[str, Any], markdown: bool, limit: int) -> str:
    """Return a post's body, within limit characters: as many titles as fit, then how many more."""
    papers = content["papers"]
    for shown in range(len(papers), -1, -1):
        body = _body(content, markdown, shown, content["counts"])
        if len(body) <= limit:
            return body
    counts = list(content["counts"])
    while len(counts) > 1:  # a very long list of topics: the first ones, and how many more
        counts.pop()
        body = _body(content, markdown, 0, counts)
        if len(body) <= limit:
            return body
    return _cut(body, limit)


def _body(content: Mapping[str, Any], markdown: bool, shown: int, counts: list) -> str:
    esc = _escape if markdown else (lambda text: text)
    day = long_date(date.fromisoformat(content["day"]))
    total = content["total"]
    news = f"{total} new paper{'s' if total != 1 else ''}"
    head = f"**{esc(content['list'])}**, {day}: {news}" if markdown else (
        f"{content['list']}, {day}: {news}"
    )  # fmt: skip
    topics = " · ".join(f"{esc(name)}: {count}" for name, count in counts)
    if len(counts) < len(content["counts"]):
        topics += f" · and {len(content['counts']) - len(counts)} more topics"
    lines = [head, topics, ""]
    for paper in content["papers"][:shown]:
        title, authors = _cut(paper["title"], TITLE_MAX), short_authors(paper["authors"])
        if markdown:
            lines.append(f"- [{esc(title)}]({paper['url']}) — {esc(authors)}")
        else:
            lines.append(f"- {title} — {authors}\n  {paper['url']}")
    room, more = content["room"], total - shown
    if more:
        where = (f": [the day's papers]({room})" if markdown else f": {room}") if room else ""
        lines.append(f"…and {more} more{where}")
    elif room:
        lines.append(f"[The day's papers]({room})" if markdown else f"The day's papers: {room}")
    return "\n".join(lines)


def _escape(text: str) -> str:
    """Return text with Markdown's special characters escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
