"""The operator's keywords: what each asks arXiv (or matches locally), its URL name, and the
[[keywords]] tables read from settings.toml; harvest entries as keywords of their own."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

from .settings_schema import KEYWORD_SCHEMA, Problems, check_table
from .topics import Topic, TopicError, from_keyword


@dataclass(frozen=True)
class Keyword:
    """A topic to follow: its name and the arXiv query that finds it."""

    name: str
    query: str | None = None
    categories: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    local: bool = False  # matched in each cycle's new papers (harvested or fetched), never fetched

    @property
    def key(self) -> str:
        """Return the case-insensitive identity used in the database and the CSV."""
        return self.name.casefold()

    def search_query(self) -> str:
        """Return the arXiv search query for this keyword."""
        if self.query:
            return self.query
        query = f'ti:"{self.name}" OR abs:"{self.name}"'
        if self.categories:
            cats = " OR ".join(f"cat:{c}" for c in self.categories)
            query = f"({query}) AND ({cats})"
        if self.exclude:
            words = " OR ".join(f'ti:"{w}" OR abs:"{w}"' for w in self.exclude)
            query = f"({query}) ANDNOT ({words})"
        return query

    def topic(self) -> Topic:
        """Return the query a local keyword is matched with: its name as a phrase, in its
        categories, without its excluded words."""
        return from_keyword(self.name, self.categories, self.exclude)

    def listing_url(self) -> str:
        """Return arXiv's own page of this topic's newest papers (its category, or a search)."""
        if self.categories:
            return f"https://arxiv.org/list/{quote(self.categories[0])}/new"
        return (
            f"https://arxiv.org/search/?query={quote_plus(self.name)}"
            "&searchtype=all&order=-announced_date_first"
        )


HARVEST = "harvest:"  # the key prefix of harvest entries; keyword names may not start with it


def harvest_keyword(entry: str) -> Keyword:
    """Return how a harvest entry is fetched: a keyword named harvest:<entry> for its category."""
    query = f"cat:{entry}" if "." in entry else f"cat:{entry} OR cat:{entry}.*"
    return Keyword(f"{HARVEST}{entry}", query=query)


def is_harvest(key: str) -> bool:
    """Tell whether a keyword key is a harvest entry's (fetched and kept, never mailed)."""
    return key.startswith(HARVEST)


def slugs(keywords: Sequence[Keyword]) -> dict[str, str]:
    """Return each keyword's URL name ('graph-neural-network'), unique, by key."""
    found: dict[str, str] = {}
    for keyword in keywords:
        base = re.sub(r"[^a-z0-9]+", "-", keyword.key).strip("-") or "topic"
        slug, n = base, 2
        while slug in found.values():
            slug, n = f"{base}-{n}", n + 1
        found[keyword.key] = slug
    return found


def read_keywords(problems: Problems, tables: Any) -> tuple[Keyword, ...]:
    """Read the [[keywords]] tables, adding every problem; return the keywords that read."""
    if tables is None:
        problems.add("keywords", None, 'no keywords; add at least one [[keywords]] with name = "…"')
        return ()
    if not isinstance(tables, list):
        problems.add("keywords", None, "write keywords as [[keywords]] tables")
        return ()
    keywords: list[Keyword] = []
    seen: dict[str, int] = {}  # keyword key -> its index
    for index, table in enumerate(tables):
        values = check_table(problems, "keywords", table, KEYWORD_SCHEMA, index)
        if not values.get("name"):
            continue
        key = values["name"].casefold()
        if is_harvest(key):
            problems.add(
                "keywords",
                "name",
                f"{values['name']!r}: names beginning with {HARVEST!r} are kept for "
                "[arxiv] harvest; rename this keyword",
                index,
            )
            continue
        if key in seen:
            problems.add(
                "keywords",
                "name",
                f"{values['name']!r} repeats keyword "
                f"#{seen[key] + 1} (names are compared ignoring case)",
                index,
            )
            continue
        seen[key] = index
        if values.get("local") and not _local_problem(problems, values, index):
            continue
        keywords.append(Keyword(**values))
    return tuple(keywords)


def _local_problem(problems: Problems, values: dict[str, Any], index: int) -> bool:
    """Check a local keyword (matched as its name, categories and exclude); return whether
    it can be matched, adding the problem when not."""
    if values.get("query"):
        problems.add(
            "keywords",
            "local",
            f"{values['name']!r}: a local keyword is matched by its name, categories and "
            "exclude, not by an arXiv query; remove query (or local = true, to fetch it)",
            index,
        )
        return False
    try:
        from_keyword(values["name"], values["categories"] or (), values["exclude"] or ())
    except TopicError as exc:
        problems.add("keywords", "local", f"{exc}; rename it or remove local = true", index)
        return False
    return True
