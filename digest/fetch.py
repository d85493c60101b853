"""Ask the arXiv API for each keyword's newest papers, politely; the only user of `arxiv`."""

from __future__ import annotations

import logging
import random
import threading
import time
import xml.etree.ElementTree as ET
from email.utils import parsedate_to_datetime

import arxiv
import requests

from . import __version__
from .config import ArxivSettings, Keyword
from .models import Paper, collapse, split_id

log = logging.getLogger(__name__)

ATOM = "{http://www.w3.org/2005/Atom}"
MAX_WAIT = 300.0


class FetchError(Exception):
    """A keyword could not be fetched from arXiv."""


class BadAnswer(Exception):
    """arXiv answered 200 with something that is not a result feed."""

    def __init__(self, message: str, transient: bool):
        super().__init__(message)
        self.transient = transient


class PoliteSession(requests.Session):
    """A session that spaces requests, sets timeouts and names itself, for the whole run."""

    def __init__(
        self, delay: float, timeout: float, user_agent: str, stop: threading.Event | None = None
    ):
        super().__init__()
        self.delay = delay
        self.timeout = (min(timeout, 10.0), timeout)
        self.user_agent = user_agent
        self.stop = stop or threading.Event()
        self.not_before = 0.0
        self.retry_after: float | None = None
        self.requests = 0

    def hold(self, seconds: float) -> None:
        """Make the next request wait at least this long from now."""
        self.not_before = max(self.not_before, time.monotonic() + seconds)

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        """Send one request after the spacing delay, and check the answer's shape."""
        wait = self.not_before - time.monotonic()
        if wait > 0 and self.stop.wait(wait):
            raise FetchError("stopped")
        kwargs.setdefault("timeout", self.timeout)
        headers = {
            k: v
            for k, v in (kwargs.pop("headers", None) or {}).items()
            if k.lower() != "user-agent"
        }
        kwargs["headers"] = {**headers, "User-Agent": self.user_agent}
        self.requests += 1
        self.retry_after = None
        try:
            response = super().request(method, url, *args, **kwargs)
        finally:
            self.hold(self.delay)
        self.retry_after = _retry_after(response.headers.get("Retry-After"))
        if response.status_code == 200:
            _check_feed(response.content)
        return response


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


def _check_feed(content: bytes) -> None:
    """Raise BadAnswer for a body that is not XML or is an arXiv error feed."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError as exc:
        raise BadAnswer(f"arXiv answered with something that is not XML ({exc})", True) from None
    if root.tag != f"{ATOM}feed":
        raise BadAnswer(f"arXiv answered with a {root.tag!r} document, not an Atom feed", True)
    for entry in root.iter(f"{ATOM}entry"):
        if "/api/errors" in (entry.findtext(f"{ATOM}id") or ""):
            message = collapse(entry.findtext(f"{ATOM}summary")) or "unknown error"
            raise BadAnswer(f"arXiv reported an error: {message}", False)


def to_paper(result: arxiv.Result) -> Paper:
    """Map an arxiv.Result to a plain Paper."""
    paper_id, paper_version = split_id(result.get_short_id())
    return Paper(
        id=paper_id,
        version=paper_version,
        title=collapse(result.title),
        authors=tuple(collapse(a.name) for a in result.authors if collapse(a.name)),
        abstract=collapse(result.summary),
        comment=collapse(result.comment) or None,
        published=result.published,
        updated=result.updated,
        primary_category=result.primary_category,
        categories=tuple(result.categories),
        doi=result.doi or None,
        journal_ref=collapse(result.journal_ref) or None,
    )


def user_agent(contact: str | None) -> str:
    """Return the User-Agent that names the project and the operator's contact."""
    agent = f"digest/{__version__} (daily arXiv digest"
    return f"{agent}; {contact})" if contact else f"{agent})"


class Fetcher:
    """One arXiv client for a whole run, its requests spaced by `delay_seconds`."""

    def __init__(self, settings: ArxivSettings, stop: threading.Event | None = None):
        self.settings = settings
        self.session = PoliteSession(
            settings.delay_seconds, settings.timeout, user_agent(settings.contact), stop
        )
        self.client = arxiv.Client(
            page_size=min(settings.page_size, settings.max_results), delay_seconds=0, num_retries=0
        )
        self.client.query_url_format = settings.api_url + "?{}"
        self.client._session = self.session  # the library offers no other way to set timeouts
        # Retries for the whole run: a dead API must not cost every keyword all its retries.
        self.retries_left = settings.max_retries * 3

    def fetch(self, keyword: Keyword, had_papers: bool = False) -> list[Paper]:
        """Return the keyword's newest papers; raise FetchError once retries are spent.

        arXiv sometimes answers an empty page that looks exactly like "no results"; when the
        keyword had papers before, an empty answer is retried, then the keyword is skipped.
        """
        search = arxiv.Search(
            query=keyword.search_query(),
            max_results=self.settings.max_results,
            sort_by=arxiv.SortCriterion.LastUpdatedDate,
            sort_order=arxiv.SortOrder.Descending,
        )
        attempt = 0
        while True:
            try:
                papers = [to_paper(r) for r in self.client.results(search)]
                if papers or not had_papers:
                    return papers
                raise BadAnswer(
                    "arXiv answered no papers for a keyword that had papers "
                    "before (an empty page is a known arXiv fault)",
                    True,
                )
            except (arxiv.ArxivError, BadAnswer, requests.RequestException) as exc:
                reason = _describe(exc)
                if not _transient(exc):
                    raise FetchError(reason) from None
                attempt += 1
                if attempt > self.settings.max_retries or self.retries_left <= 0:
                    raise FetchError(f"{reason}; gave up after {attempt} tries") from None
                self.retries_left -= 1
                wait = self._backoff(attempt)
                if wait > MAX_WAIT:
                    raise FetchError(f"{reason}; arXiv asks to wait {wait:.0f} s") from None
                log.warning("%s: %s; retrying in %.1f s", keyword.name, reason, wait)
                self.session.hold(wait)

    def _backoff(self, attempt: int) -> float:
        base = max(self.settings.delay_seconds, 0.05) * 2**attempt
        wait = base * (1 + random.random() / 4)
        return max(wait, self.session.retry_after or 0.0)


def _transient(exc: Exception) -> bool:
    if isinstance(exc, arxiv.HTTPError):
        return exc.status == 429 or exc.status >= 500
    if isinstance(exc, BadAnswer):
        return exc.transient
    return isinstance(exc, requests.ConnectionError | requests.Timeout | arxiv.ArxivError)


def _describe(exc: Exception) -> str:
    if isinstance(exc, arxiv.HTTPError):
        return f"arXiv answered HTTP {exc.status}"
    if isinstance(exc, requests.Timeout):
        return "arXiv did not answer in time"
    if isinstance(exc, requests.ConnectionError):
        cause = exc.args[0] if exc.args else exc
        cause = getattr(cause, "reason", cause)  # urllib3 wraps the socket error
        detail = str(cause).split(": ", 1)[-1] if ">: " in str(cause) else str(cause)
        return f"cannot connect to arXiv ({detail[:200]})"
    return str(exc)
