"""Builders of test inputs: settings.toml text, papers, changed settings; shared constants."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from digest.config import Settings
from digest.models import Paper
from helpers.fake_arxiv import FeedPaper

DATA = Path(__file__).parent.parent / "data"
ARTIFACTS = Path(__file__).parent.parent / "artifacts"  # screenshots of the browser tests
SECRET = "a test secret of at least thirty-two bytes"  # DIGEST_SECRET
KEYWORDS = ("Diffusion Model for Recommendation", "Graph Neural Network", "Large Language Model")
# arXiv's search stems words; the fake matches plain substrings, so this keyword spells out the
# query that finds the reference archive's papers ("Diffusion Models in Recommendation ...").
QUERIES = {"Diffusion Model for Recommendation": 'all:"diffusion model" AND all:recommend'}
SUBSCRIBERS = """email,name,keywords
ada@example.org,Ada Lovelace,
alan@example.org,Alan Turing,Graph Neural Network
grace@example.org,Grace Hopper,Diffusion Model for Recommendation;Large Language Model
"""


def settings_text(
    *,
    api_url: str,
    smtp_port: int | None = None,
    keywords: tuple[str, ...] = KEYWORDS,
    extra: str = "",
    delay: float = 0.01,
) -> str:
    """Return a settings.toml for tests."""
    text = f"""
[digest]
name = "Daily Papers"
timezone = "Europe/Paris"
base_url = "https://papers.example.org"
first_run_days = 2

[arxiv]
api_url = "{api_url}"
delay_seconds = {delay}
timeout = 5.0
max_retries = 1
"""
    for name in keywords:
        text += f'\n[[keywords]]\nname = "{name}"\n'
        if name in QUERIES:
            text += f"query = '{QUERIES[name]}'\n"
    if smtp_port is not None:
        text += f"""
[smtp]
host = "127.0.0.1"
port = {smtp_port}
sender = "Daily Papers <papers@example.org>"
connections = 2
timeout = 5.0
retry_seconds = 0.02
"""
    return text + extra


def make_paper(pid: str, title: str, updated: datetime, **changes) -> FeedPaper:
    """Return a fixture paper, version 1, published and updated at `updated`."""
    fields = dict(
        id=pid,
        version=1,
        title=title,
        abstract=f"We study {title.lower()} in depth.",
        authors=["Ada Lovelace", "Alan Turing"],
        comment=None,
        published=updated,
        updated=updated,
        primary_category="cs.IR",
        categories=["cs.IR", "cs.LG"],
    )
    return FeedPaper(**(fields | changes))


def stored_paper(**changes) -> Paper:
    """Return a plain Paper (as the store and renderers see it), with some fields changed."""
    fields = dict(
        id="2501.00001",
        version=2,
        title="A Title",
        authors=("Ada Lovelace",),
        abstract="An abstract.",
        comment=None,
        published=datetime(2025, 1, 1, tzinfo=UTC),
        updated=datetime(2025, 1, 2, 20, 0, tzinfo=UTC),
        primary_category="cs.IR",
        categories=("cs.IR",),
    )
    return Paper(**(fields | changes))


def changed(settings: Settings, **changes) -> Settings:
    """Return settings with some fields changed; `smtp_x=` / `arxiv_x=` change a section's x."""
    fields = {}
    for section in ("smtp", "arxiv"):
        prefix = section + "_"
        parts = {k.removeprefix(prefix): v for k, v in changes.items() if k.startswith(prefix)}
        if parts:
            fields[section] = dataclasses.replace(getattr(settings, section), **parts)
    fields |= {k: v for k, v in changes.items() if not k.startswith(("smtp_", "arxiv_"))}
    return dataclasses.replace(settings, **fields)
