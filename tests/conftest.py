"""Shared fixtures: settings in a temp folder, a fake arXiv, a real SMTP server."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import settings as hypothesis_settings
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

sys.path.insert(0, str(Path(__file__).parent))

from fake_arxiv import FakeArxiv, FeedPaper, load_papers
from mailserver import MailServer

from digest.config import Settings, load_settings
from digest.models import Paper
from digest.web import make_app

DATA = Path(__file__).parent / "data"
ARTIFACTS = Path(__file__).parent / "artifacts"  # screenshots of the browser tests
SECRET = "a test secret of at least thirty-two bytes"  # DIGEST_SECRET

# Property tests use the same examples every run, so CI is reproducible; set
# HYPOTHESIS_PROFILE=explore to search new ones.
hypothesis_settings.register_profile("default", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False, max_examples=2000)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
KEYWORDS = ("Diffusion Model for Recommendation", "Graph Neural Network", "Large Language Model")
# arXiv's search stems words; the fake matches plain substrings, so this keyword spells out the
# query that finds the reference archive's papers ("Diffusion Models in Recommendation ...").
QUERIES = {"Diffusion Model for Recommendation": 'all:"diffusion model" AND all:recommend'}


@pytest.fixture(scope="session")
def fixture_papers() -> list[FeedPaper]:
    """Return the fixture papers of tests/data/papers.json."""
    return load_papers(DATA / "papers.json")


@pytest.fixture
def fake_arxiv(fixture_papers: list[FeedPaper]) -> Iterator[FakeArxiv]:
    """Run a fake arXiv API serving the fixture papers."""
    with FakeArxiv(list(fixture_papers)) as server:
        yield server


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    """Run aiosmtpd on 127.0.0.1, recording every message."""
    with MailServer() as server:
        yield server


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


SUBSCRIBERS = """email,name,keywords
ada@example.org,Ada Lovelace,
alan@example.org,Alan Turing,Graph Neural Network
grace@example.org,Grace Hopper,Diffusion Model for Recommendation;Large Language Model
"""


@pytest.fixture
def make_settings(
    tmp_path: Path, fake_arxiv: FakeArxiv, mail_server: MailServer, monkeypatch
) -> Callable[..., Settings]:
    """Write settings.toml and subscribers.csv into tmp_path and load them."""
    monkeypatch.setenv("DIGEST_SECRET", SECRET)

    def make(subscribers: str = SUBSCRIBERS, smtp: bool = True, **kwargs) -> Settings:
        port = mail_server.port if smtp else None
        text = settings_text(api_url=fake_arxiv.url, smtp_port=port, **kwargs)
        (tmp_path / "settings.toml").write_text(text, encoding="utf-8")
        (tmp_path / "subscribers.csv").write_text(subscribers, encoding="utf-8")
        return load_settings(tmp_path / "settings.toml")

    return make


@pytest.fixture
async def web(make_settings):
    """Serve the web endpoint of fresh settings; yield (settings, its URL, a client)."""
    settings = make_settings()
    server = TestServer(make_app(settings), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as client:
        yield settings, str(server.make_url("")).rstrip("/"), client
    await server.close()


def chromium_paths() -> tuple[str, str]:
    """Return Debian's chromium and chromedriver; fail clearly when they are missing."""
    browser = shutil.which("chromium") or "/usr/bin/chromium"
    driver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (os.path.exists(browser) and os.path.exists(driver)):
        pytest.fail("install Debian's chromium and chromium-driver (.ci/run does)")
    return browser, driver


@pytest.fixture
def browser(tmp_path):
    binary, driver_path = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=800,1000",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@contextlib.contextmanager
def serving(env: dict[str, str], port: int, log: Path | None = None) -> Iterator[str]:
    """Run `digest serve` as a real process until /healthz answers; yield its URL."""
    errors = log.open("w") if log else subprocess.DEVNULL
    process = subprocess.Popen([sys.executable, "-m", "digest", "serve"], env=env, stderr=errors)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "digest serve did not start"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        if log:
            errors.close()
