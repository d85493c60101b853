"""Shared fixtures: settings in a temp folder that start nothing; opt-in fake arXiv and SMTP.

A test that needs a server asks for it by name: `fake_arxiv` (the fixture papers over arXiv's
API) or `mail_server` (aiosmtpd recording what it accepts). `make_settings` points the settings
at whichever of the two the test (or one of its fixtures) asked for, and elsewhere at a port
where nothing listens, so a test that forgot one fails instead of talking to a stranger.
Helpers (servers, builders) live in the `helpers` package; import them as `helpers.<module>`.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from helpers import compiled, schedule
from helpers.browser import SharedChromium
from helpers.builders import DATA, SECRET, SUBSCRIBERS, settings_text
from helpers.fake_arxiv import FakeArxiv, FeedPaper, load_papers
from helpers.mailserver import MailServer
from hypothesis import settings as hypothesis_settings

from digest.config import Settings, load_settings
from digest.web import make_app

# Property tests use the same examples every run, so CI is reproducible; set
# HYPOTHESIS_PROFILE=explore to search new ones. No per-example deadline: on a busy machine one
# example can take 0.6 s, and that says nothing about the code.
hypothesis_settings.register_profile("default", derandomize=True, deadline=None)
hypothesis_settings.register_profile("explore", derandomize=False, max_examples=2000, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

compiled.install()  # digest's templates compiled once per process, not once per environment


@pytest.hookimpl(trylast=True)  # after -m has deselected
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start every worker with its share of the slow tests (helpers/schedule.py): on two cores
    (make test) none is then left to run alone at the end."""
    items[:] = schedule.order(items, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Leave what imports and collection made out of the garbage collector's full passes.

    It lives all session (200,000 objects in a worker), and each full pass would walk it
    again: a second or more of each worker's CPU in `make quick`.
    """
    gc.freeze()


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Spare a process that ends its last collection of the heap: xdist waited 1-4 s for it."""
    gc.freeze()


NOWHERE_PORT = 9  # the discard port: nothing listens on 127.0.0.1, so a connection is refused
NOWHERE_URL = f"http://127.0.0.1:{NOWHERE_PORT}/api/query"


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


@pytest.fixture
def make_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Callable[..., Settings]:
    """Write settings.toml and subscribers.csv into tmp_path and load them.

    Starts nothing: the settings use the `fake_arxiv` and `mail_server` of the test when it
    asked for them, and a refused port otherwise.
    """
    monkeypatch.setenv("DIGEST_SECRET", SECRET)

    def server(name: str):
        return request.getfixturevalue(name) if name in request.fixturenames else None

    def make(subscribers: str = SUBSCRIBERS, smtp: bool = True, **kwargs) -> Settings:
        arxiv, mail = server("fake_arxiv"), server("mail_server")
        port = (mail.port if mail else NOWHERE_PORT) if smtp else None
        text = settings_text(api_url=arxiv.url if arxiv else NOWHERE_URL, smtp_port=port, **kwargs)
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


@pytest.fixture(scope="session")
def shared_chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedChromium]:
    """Hold the worker's headless chromium, started by the first test that asks for `browser`."""
    shared = SharedChromium(tmp_path_factory.mktemp("chromium"))
    yield shared
    shared.close()


@pytest.fixture
def browser(shared_chromium: SharedChromium):
    """Debian's headless chromium (a real browser), fresh: no cookies, cache or emulation."""
    driver = shared_chromium.get()
    yield driver
    shared_chromium.leave()  # a blank page: nothing of this test's pages runs on
