"""The history: papers seen per keyword, and what is new."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple

from ..models import Paper
from .base import Database, iso


def _paper(row: dict[str, Any]) -> Paper:
    return Paper(
        id=row["id"],
        version=row["version"],
        title=row["title"],
        authors=tuple(json.loads(row["authors"])),
        abstract=row["abstract"],
        comment=row["comment"],
        published=datetime.fromisoformat(row["published"]),
        updated=datetime.fromisoformat(row["updated"]),
        primary_category=row["primary_category"],
        categories=tuple(json.loads(row["categories"])),
        doi=row["doi"],
        journal_ref=row["journal_ref"],
    )


def _record(p: Paper) -> dict[str, Any]:
    """Return a paper as a row of the papers table."""
    return {
        "id": p.id,
        "version": p.version,
        "title": p.title,
        "authors": json.dumps(list(p.authors)),
        "abstract": p.abstract,
        "comment": p.comment,
        "published": iso(p.published),
        "updated": iso(p.updated),
        "primary_category": p.primary_category,
        "categories": json.dumps(list(p.categories)),
        "doi": p.doi,
        "journal_ref": p.journal_ref,
    }


_version = itemgetter("version", "updated")  # of a papers row: the newer compares greater


class Recorded(NamedTuple):
    """What a keyword's fetch brings: the news, and unseen papers too old to be news."""

    new: list[str]
    late: int


class KeywordState(NamedTuple):
    """A keyword's last successful fetch: how many papers, and the newest update among them."""

    papers: int  # how many (a field named count would hide tuple.count)
    watermark: datetime | None


class History(Database):
    """Papers and the keywords they were seen under."""

    def record_papers(self, papers: Iterable[Paper]) -> None:
        """Store fetched papers, keeping for each the newest version seen."""
        with self.transaction():
            self._upsert_papers(papers)

    def diff_keyword(self, key: str, papers: list[Paper], since: datetime) -> Recorded:
        """Return a keyword's unseen papers updated since `since`, newest first.

        Unseen papers older than that were below every earlier fetch's reach (a larger page,
        a long announcement lag): they are recorded for the archive, not announced.
        """
        known: set[str] = set()
        ids = [p.id for p in papers]
        for start in range(0, len(ids), 500):  # the fetched papers only, not the history
            chunk = ids[start : start + 500]
            known.update(
                row[0]
                for row in self.db.execute(
                    "SELECT paper_id FROM seen WHERE keyword = ? AND paper_id IN "
                    f"({','.join('?' * len(chunk))})",
                    [key, *chunk],
                )
            )
        fresh = [p for p in papers if p.id not in known]
        news = sorted(
            (p for p in fresh if p.updated >= since), key=lambda p: (p.updated, p.id), reverse=True
        )
        return Recorded([p.id for p in news], len(fresh) - len(news))

    def record_keyword(
        self,
        key: str,
        papers: list[Paper],
        cycle_id: int,
        now: datetime,
        query: str | None,
        news: Iterable[str] = (),
    ) -> None:
        """Mark a keyword's fetched papers seen in this cycle (`news`: the ones mailed)."""
        news = set(news)
        with self.transaction():
            self.db.table("seen").insert_all(
                (
                    {
                        "keyword": key,
                        "paper_id": p.id,
                        "cycle_id": cycle_id,
                        "first_seen": iso(now),
                        "news": int(p.id in news),
                        "updated": iso(p.updated),
                    }
                    for p in papers
                ),
                ignore=True,  # the papers seen before keep their cycle
            )
            newest = max((iso(p.updated) for p in papers), default=None)
            self.db.execute(
                "INSERT INTO keywords (key, first_seen, last_success, last_count, query, "
                "watermark) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "last_success = excluded.last_success, last_count = excluded.last_count, "
                "watermark = CASE WHEN query IS excluded.query "
                "THEN nullif(max(coalesce(watermark, ''), coalesce(excluded.watermark, '')), '') "
                "ELSE excluded.watermark END, query = excluded.query",
                [key, iso(now), iso(now), len(papers), query, newest],
            )

    def _upsert_papers(self, papers: Iterable[Paper]) -> None:
        """Insert papers, or update them when the fetched version is as new or newer.

        A paper fetched again unchanged (an overlap re-read, a harvested category) is not
        rewritten: no write, no churn in the search index.
        """
        newest: dict[str, dict[str, Any]] = {}  # by id: the newest fetched (the last, if equal)
        for record in map(_record, papers):
            known = newest.get(record["id"])
            if known is None or _version(known) <= _version(record):
                newest[record["id"]] = record
        changed = []
        for record in newest.values():
            row = next(self.db.query("SELECT * FROM papers WHERE id = ?", [record["id"]]), None)
            if row and _version(row) > _version(record):
                continue
            if row and all(row[k] == v for k, v in record.items()):
                continue
            if row:  # a newer version: its keywords' lists order it by the new date
                self.db.execute(
                    "UPDATE seen SET updated = ? WHERE paper_id = ?",
                    [record["updated"], record["id"]],
                )
            changed.append(record)
        if changed:
            self.db.table("papers").upsert_all(changed, pk="id")

    def keyword_states(self, queries: dict[str, str]) -> dict[str, KeywordState]:
        """Return each keyword's last fetch (count, newest update), if its query is the same."""
        return {
            key: KeywordState(count, datetime.fromisoformat(mark) if mark else None)
            for key, count, query, mark in self.db.execute(
                "SELECT key, last_count, query, watermark FROM keywords"
            )
            if query is None or queries.get(key) == query
        }

    def earlier_keywords(self, paper_ids: Iterable[str], cycle_id: int) -> dict[str, set[str]]:
        """Return, per paper, the keyword keys it was already seen under before this cycle."""
        found: dict[str, set[str]] = {}
        for paper_id in paper_ids:
            for (key,) in self.db.execute(
                "SELECT keyword FROM seen WHERE paper_id = ? AND cycle_id < ?", [paper_id, cycle_id]
            ):
                found.setdefault(paper_id, set()).add(key)
        return found

    def papers(self, ids: Iterable[str]) -> dict[str, Paper]:
        """Return the stored papers with these ids."""
        ids = list(ids)
        found = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.query(f"SELECT * FROM papers WHERE id IN ({marks})", chunk):
                found[row["id"]] = _paper(row)
        return found

    def recent_papers(self, key: str, limit: int, offset: int = 0) -> list[Paper]:
        """Return a keyword's most recently updated papers, newest first (by its index)."""
        return [
            _paper(row)
            for row in self.db.query(  # pick the page's ids by the index, then join them
                "SELECT papers.* FROM (SELECT paper_id, updated FROM seen WHERE keyword = ? "
                "ORDER BY updated DESC, paper_id DESC LIMIT ? OFFSET ?) AS page "
                "JOIN papers ON papers.id = page.paper_id "
                "ORDER BY page.updated DESC, page.paper_id DESC",
                [key, limit, offset],
            )
        ]
