"""Ask the arXiv API for every paper a keyword gained since its last fetch, politely.

Every request has a deadline for the whole answer, a size bound, and never follows a redirect
to another host; a stop request (SIGTERM) interrupts the request in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar
from urllib.parse import urlencode, urljoin, urlsplit

import aiohttp

from . import __version__
from .arxiv_feed import FeedError, FeedPage, PageParser, error_message
from .config import ArxivSettings, Keyword
from .models import Paper

log = logging.getLogger(__name__)

MAX_WAIT = 300.0  # a Retry-After longer than this skips the keyword for this cycle
MAX_BODY = 50 * 2**20  # far above any real page (2,000 entries are about 6 MB)
MAX_ERROR_BODY = 2**20
MAX_REDIRECTS = 3
REDIRECTS = {301, 302, 303, 307, 308}
T = TypeVar("T")


class FetchError(Exception):
    """A keyword could not be fetched from arXiv."""

    def __init__(self, message: str, unreachable: bool = False):
        super().__init__(message)
        self.unreachable = unreachable
        self.requests = 0  # what the keyword's fetch cost before it failed (fetch_keywords)
        self.retries = 0


class Transient(Exception):
    """A failure worth trying again: arXiv busy, a timeout, a broken or suspect answer."""

    def __init__(self, message: str, retry_after: float | None = None, unreachable: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.unreachable = unreachable


@dataclass(frozen=True)
class FetchWindow:
    """How far back a keyword's fetch must reach, and whether an empty answer is suspect."""

    since: datetime
    had_papers: bool = False
    first: bool = False  # never fetched (or its query changed): since is first_run_days ago


@dataclass
class Fetched:
    """A keyword's papers from one fetch of a window, and whether the bound cut it short."""

    window: FetchWindow
    papers: list[Paper] = field(default_factory=list)
    truncated: bool = False
    skipped: list[str] = field(default_factory=list)
    requests: int = 0  # what the fetch cost: requests sent, and how many were retries
    retries: int = 0


def user_agent(contact: str | None) -> str:
    """Return the User-Agent that names the project and the operator's contact."""
    agent = f"digest/{__version__} (daily arXiv digest"
    return f"{agent}; {contact})" if contact else f"{agent})"


def _retry_after(value: str | None) -> float | None:
    """Parse a Retry-After header (seconds or an HTTP date) into seconds."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _connect_reason(exc: aiohttp.ClientConnectorError) -> str:
    """Name why a connection failed, e.g. 'Name or service not known', 'Connection refused'."""
    error = exc.os_error
    return (getattr(error, "strerror", None) or str(error) or type(error).__name__)[:200]


class Fetcher:
    """One arXiv client for a whole run: one connection, requests spaced by delay_seconds."""

    def __init__(self, settings: ArxivSettings, beat: Callable[[], None] = lambda: None):
        self.settings = settings
        self.beat = beat
        self.host = urlsplit(settings.api_url).netloc
        self.not_before = 0.0
        self.requests = 0
        self.retries = 0  # requests sent again after a transient failure, in the whole run
        self.tries = 0
        # Retries for the whole run: a dead API must not cost every keyword all its retries.
        self.retries_left = settings.max_retries * 3
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Fetcher:
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1),
            headers={"User-Agent": user_agent(self.settings.contact)},
            timeout=aiohttp.ClientTimeout(total=None),  # each request has its own deadline
            trust_env=True,  # honour HTTPS_PROXY like any HTTP client
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()

    def hold(self, seconds: float) -> None:
        """Make the next request wait at least this long from now."""
        self.not_before = max(self.not_before, time.monotonic() + seconds)

    async def fetch(self, keyword: Keyword, window: FetchWindow) -> Fetched:
        """Page through the keyword's newest updates until the window is covered (or the bound)."""
        fetched, seen = Fetched(window), set()
        bounds = self.settings.bounds(keyword.key)  # a harvest entry's pages are larger
        limit, start, total = bounds.max_papers, 0, 0
        self.tries = 0  # tries of this keyword's requests, whichever page
        while True:
            size = min(bounds.page_size, limit - start)
            # An empty page is suspect where papers are known to be: arXiv's known fault.
            suspect = start < total if start else window.had_papers
            page = await self._page(keyword, start, size, suspect)
            fetched.skipped += page.skipped
            for paper in page.papers:  # an update during paging can show a paper twice
                if paper.id not in seen:
                    seen.add(paper.id)
                    fetched.papers.append(paper)
            start, total = start + page.entries, max(total, page.total or 0)
            if page.entries == 0 or start >= total:
                return fetched  # the end of arXiv's answer
            if page.oldest is not None and page.oldest < window.since:
                return fetched  # reached what the previous fetch already covered
            if start >= limit:
                fetched.truncated = True
                return fetched

    def _url(self, keyword: Keyword, start: int, size: int) -> str:
        query = {
            "search_query": keyword.search_query(),
            "start": start,
            "max_results": size,
            "sortBy": "lastUpdatedDate",
            "sortOrder": "descending",
        }
        return f"{self.settings.api_url}?{urlencode(query)}"

    async def _page(self, keyword: Keyword, start: int, size: int, suspect: bool) -> FeedPage:
        """Get one page, retrying transient failures within the keyword's and run's budgets."""
        while True:
            try:
                page = await self._get(self._url(keyword, start, size))
                if page.entries == 0 and suspect:
                    raise Transient(
                        f"arXiv answered an empty page amid its results (at {start}; a known fault)"
                        if start
                        else "arXiv answered no papers for a keyword that had papers "
                        "before (an empty page is a known arXiv fault)"
                    )
                return page
            except Transient as exc:
                self.tries += 1
                if self.tries > self.settings.max_retries or self.retries_left <= 0:
                    raise FetchError(
                        f"{exc}; gave up after {self.tries} tries", exc.unreachable
                    ) from None
                self.retries_left -= 1
                wait = self._backoff(self.tries, exc)
                if wait > MAX_WAIT:
                    raise FetchError(f"{exc}; arXiv asks to wait {wait:.0f} s") from None
                self.retries += 1
                log.warning("fetch: %s: %s; retrying in %.1f s", keyword.name, exc, wait)
                self.hold(wait)

    def _backoff(self, attempt: int, exc: Transient) -> float:
        base = max(self.settings.delay_seconds, 0.05)
        if exc.unreachable:  # nothing reached arXiv: no need to back off hard
            return base * attempt
        wait = base * 2**attempt * (1 + random.random() / 4)
        return max(wait, exc.retry_after or 0.0)

    async def _get(self, url: str) -> FeedPage:
        """Send one request after the spacing delay and parse the answer, within the deadline."""
        assert self.session is not None, "use the Fetcher as an async context manager"
        for _ in range(MAX_REDIRECTS + 1):
            if (wait := self.not_before - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            self.requests += 1
            try:
                async with (
                    asyncio.timeout(self.settings.timeout),
                    self.session.get(url, allow_redirects=False) as response,
                ):
                    if response.status not in REDIRECTS:
                        return await self._answer(response)
                    url = self._follow(url, response.headers.get("Location", ""))
            except TimeoutError:
                raise Transient(
                    f"arXiv did not answer within the {self.settings.timeout:g} s deadline"
                ) from None
            except aiohttp.ClientConnectorError as exc:
                reason = f"cannot connect to arXiv ({_connect_reason(exc)})"
                raise Transient(reason, unreachable=True) from None
            except aiohttp.ClientError as exc:
                detail = str(exc)[:200] or type(exc).__name__
                raise Transient(f"the connection to arXiv broke ({detail})") from None
            finally:
                self.hold(self.settings.delay_seconds)  # spacing counts from the answer's end
                self.beat()
        raise FetchError(f"arXiv redirected more than {MAX_REDIRECTS} times; check [arxiv] api_url")

    def _follow(self, url: str, location: str) -> str:
        target = urljoin(url, location)
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or parts.netloc != self.host:
            raise FetchError(
                f"arXiv's answer redirects to {parts.netloc or location[:100]!r}, another host; "
                "not followed (check [arxiv] api_url and the network)",
                unreachable=True,
            )
        return target

    async def _answer(self, response: aiohttp.ClientResponse) -> FeedPage:
        if response.status != 200:
            body = bytearray()
            await _read(response, body.extend, MAX_ERROR_BODY)
            message = error_message(bytes(body))
            if response.status == 400 and message:
                raise FetchError(
                    f"arXiv rejected the query: {message} (check this keyword's query)"
                )
            text = f"arXiv answered HTTP {response.status}" + (f": {message}" if message else "")
            if response.status == 429 or response.status >= 500:
                raise Transient(text, _retry_after(response.headers.get("Retry-After")))
            raise FetchError(text)
        parser = PageParser()
        try:
            await _read(response, parser.feed, MAX_BODY)
            return parser.close()
        except FeedError as exc:
            if exc.transient:
                raise Transient(str(exc)) from None
            raise FetchError(str(exc)) from None


async def _read(
    response: aiohttp.ClientResponse, sink: Callable[[bytes], None], limit: int
) -> None:
    """Pass the body to sink chunk by chunk; refuse it once it grows past limit bytes."""
    if (response.content_length or 0) > limit:
        raise Transient(f"arXiv's answer is larger than {limit // 2**20} MB; refused")
    size = 0
    async for chunk in response.content.iter_chunked(2**16):
        size += len(chunk)
        if size > limit:
            raise Transient(f"arXiv's answer is larger than {limit // 2**20} MB; refused")
        sink(chunk)


async def _until(work: Awaitable[T], stop: threading.Event) -> T:
    """Await work, cancelling it within 0.1 s of stop being set."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.wait([task], timeout=0.1)
        if stop.is_set() and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise FetchError("stopped while fetching")
    return task.result()


def fetch_keywords(
    settings: ArxivSettings,
    jobs: Sequence[tuple[Keyword, FetchWindow]],
    done: Callable[[Keyword, Fetched | FetchError], None],
    stop: threading.Event | None = None,
    beat: Callable[[], None] = lambda: None,
) -> int:
    """Fetch each keyword in turn, calling done with its papers or its error; return requests.

    A keyword's failure, whatever it is, fails that keyword only; when arXiv cannot be
    reached at all, the keywords after it are not tried.
    """
    stop = stop or threading.Event()

    async def run() -> int:
        async with Fetcher(settings, beat) as fetcher:
            unreachable: FetchError | None = None
            for keyword, window in jobs:
                outcome: Fetched | FetchError
                requests, retries = fetcher.requests, fetcher.retries
                if stop.is_set():
                    outcome = FetchError("not fetched: stopping")
                elif unreachable is not None:
                    outcome = FetchError(f"not fetched: {unreachable}")
                else:
                    try:
                        outcome = await _until(fetcher.fetch(keyword, window), stop)
                    except FetchError as exc:
                        outcome = exc
                    except Exception as exc:  # a bug or an answer nobody foresaw: this keyword only
                        log.debug("fetch: %s failed", keyword.name, exc_info=True)
                        outcome = FetchError(f"unexpected error: {type(exc).__name__}: {exc}")
                    if isinstance(outcome, FetchError) and outcome.unreachable:
                        unreachable = outcome
                outcome.requests = fetcher.requests - requests  # this keyword's cost
                outcome.retries = fetcher.retries - retries
                done(keyword, outcome)
            return fetcher.requests

    return asyncio.run(run())
