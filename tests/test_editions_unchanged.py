"""Without harvest or own topics, the editions are byte for byte those before own topics.

tests/data/editions_before_own_topics.json holds the editions (subject, text, HTML; the
per-reader placeholders named) that this scenario gave with the code before own topics
existed. A deliberate change to the digest's templates or rendering changes them too: then
regenerate the file with DIGEST_WRITE_EDITIONS=1 (the test writes it, then fails once, so that
a changed file is never taken for a passing test) and review its diff.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta

from helpers.builders import DATA, make_paper
from helpers.cycles import DAY1, GNN, LLM

from digest.pipeline import run_once
from digest.store import Store

GOLDEN = DATA / "editions_before_own_topics.json"
DMR = "Diffusion Model for Recommendation"
READERS = """email,name,keywords
ada@example.org,Ada Lovelace,
alan@example.org,Alan Turing,Graph Neural Network
grace@example.org,Grace Hopper,Diffusion Model for Recommendation;Large Language Model
bea@example.org,Bea Weekly,Graph Neural Network;Large Language Model
"""


def day_papers(day: int) -> list:
    """Return the papers announced the evening before cycle `day` (1, 2, 3)."""
    moment = DAY1 + timedelta(days=day - 1, hours=-10)
    titles = [
        f"{GNN} sampling, part {day}",
        f"{LLM} agents, part {day}",
        f"A {GNN} meets a {LLM}, part {day}",
        f"Diffusion models for recommendation, part {day}",
    ]
    return [
        make_paper(f"2511.{day}{i:04d}", title, moment - timedelta(minutes=i))
        for i, title in enumerate(titles)
    ]


def editions(settings) -> list[dict]:
    """Return every edition, its per-reader placeholders replaced by their names."""
    found = []
    with Store(settings.database) as store:
        rows = store.db.execute(
            "SELECT cycle_id, keywords, papers, subject, text, html, placeholders "
            "FROM editions ORDER BY id"
        ).fetchall()
    for cycle_id, keys, papers, subject, text, html, marks in rows:
        for name, marker in json.loads(marks).items():
            text, html = text.replace(marker, f"{{{name}}}"), html.replace(marker, f"{{{name}}}")
        found.append(
            {"cycle": cycle_id, "keywords": json.loads(keys), "papers": papers,
             "subject": subject, "text": text, "html": html}
        )  # fmt: skip
    return found


def test_without_harvest_or_own_topics_the_editions_are_those_of_before(make_settings, fake_arxiv):
    settings = make_settings(subscribers=READERS, smtp=False)
    fake_arxiv.papers[:] = day_papers(1)
    with Store(settings.database) as store:
        store.save_choices("alan@example.org", "", "csv", {"abstracts": "full"}, DAY1)
    assert run_once(settings, clock=lambda: DAY1).ok
    third = DAY1 + timedelta(days=2)
    with Store(settings.database) as store:  # weekly, on the third day: two days' news
        store.save_choices(
            "bea@example.org", "", "csv", {"frequency": "weekly", "weekday": third.weekday()}, DAY1
        )
    for day in (2, 3):
        fake_arxiv.papers += day_papers(day)
        assert run_once(settings, clock=lambda day=day: DAY1 + timedelta(days=day - 1)).ok
    found = editions(settings)
    if os.environ.get("DIGEST_WRITE_EDITIONS"):
        GOLDEN.write_text(json.dumps(found, indent=1, ensure_ascii=False) + "\n", "utf-8")
        raise AssertionError(f"{GOLDEN.name} written; review its diff and run again without it")
    before = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert [e["subject"] for e in found] == [e["subject"] for e in before]
    assert len(found) == 11  # four topic sets on the first day, three a day, the weekly week
    for now, then in zip(found, before, strict=True):
        assert now == then
