"""Run cycles at a chosen moment and look at what they left: news, links, the outbox."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.config import Settings, load_settings
from digest.pipeline import run_once
from digest.store import Store
from helpers.builders import SECRET, SUBSCRIBERS, changed, make_paper, settings_text
from helpers.fake_arxiv import FakeArxiv, FeedPaper
from helpers.mailserver import MailServer

DAY1 = datetime(2025, 11, 16, 6, 0, tzinfo=UTC)  # a Sunday, 07:00 in Paris
BASE = "https://papers.example.org"  # the settings' base_url
GNN, LLM = "Graph Neural Network", "Large Language Model"
ALAN = "email,name,keywords\nalan@example.org,Alan Turing,Graph Neural Network\n"
KEYSETS = ["", "Graph Neural Network", "Diffusion Model for Recommendation;Large Language Model"]


async def cycle(settings, day: datetime):
    """Run one cycle in a thread, its clock stopped at `day`; return its report."""
    return await asyncio.to_thread(run_once, settings, clock=lambda: day)


def news(fake, day: datetime, n: int) -> None:
    """Add a paper for every keyword, updated the evening before `day`."""
    title = f"Diffusion Model for Recommendation meets Graph Neural Network {n}"
    fake.papers.append(make_paper(f"2511.3{n:04d}", title, day - timedelta(hours=10)))


def papers_in(message) -> list[str]:
    """Return the arXiv ids linked from a message's HTML part, in order."""
    html = message.get_body(("html",)).get_content()
    return re.findall(r'<h3><a href="https://arxiv.org/abs/([^"]+)v\d+"', html)


def link_of(message, base: str) -> str:
    """Return the List-Unsubscribe URL of a message, pointed at the test server."""
    return message["List-Unsubscribe"].strip("<>").replace(BASE, base)


def suppressed(settings) -> dict[str, str]:
    """Return who gets no mail, and why."""
    with Store(settings.database) as store:
        return {email: reason for email, (reason, _) in store.suppressions().items()}


def subscribers(count: int) -> str:
    """Return a CSV of `count` subscribers spread over a few keyword sets."""
    rows = [f"user{i:05d}@example.org,User {i},{KEYSETS[i % len(KEYSETS)]}" for i in range(count)]
    return "email,name,keywords\n" + "\n".join(rows) + "\n"


def wide_first_run(settings):
    """Mail every fixture paper on the first run, so each subscriber gets a digest."""
    return changed(settings, first_run_days=10_000)


def outbox_status(settings) -> dict[str, int]:
    """Return how many outbox messages are in each status."""
    with Store(settings.database) as store:
        return dict(store.db.execute("SELECT status, count(*) FROM outbox GROUP BY status"))


@contextlib.contextmanager
def recording(
    folder: Path,
    papers: list[FeedPaper],
    subscribers: str = SUBSCRIBERS,
    smtp: bool = True,
    **kwargs,
) -> Iterator[tuple[Settings, FakeArxiv, MailServer]]:
    """Yield settings in `folder` with a fake arXiv and an SMTP server of their own.

    For a module-scoped fixture that records cycles once for tests that only read them: the
    servers stop when the block ends, the settings and their database stay.
    """
    with (
        FakeArxiv(list(papers)) as fake,
        MailServer() as mail,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("DIGEST_SECRET", SECRET)
        port = mail.port if smtp else None
        text = settings_text(api_url=fake.url, smtp_port=port, **kwargs)
        (folder / "settings.toml").write_text(text, encoding="utf-8")
        (folder / "subscribers.csv").write_text(subscribers, encoding="utf-8")
        yield load_settings(folder / "settings.toml"), fake, mail
