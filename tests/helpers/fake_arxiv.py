"""A real HTTP server that answers like arXiv's export API (``/api/query``) from fixture papers.

Fault actions go in ``FakeArxiv.script``; each request pops the first one (FIFO), and an empty
script means a normal answer.  Every request is logged in ``FakeArxiv.requests`` under the action's
name (``RequestRecord.action``) with the status it answers with (``RequestRecord.status``, 0 for
none):

* ``"ok"``: the normal answer (also what an empty script gives): HTTP 200, or HTTP 400 with an
  error feed for a malformed request.
* ``status(code, retry_after=None, body=None)`` -> ``"status"``: HTTP ``code`` with a plain-text
  body and, if given, a ``Retry-After`` header (e.g. 503, 429, 400).
* ``"empty"``: HTTP 200 feed with totalResults 0 and no entries, as arXiv sends for no results.
* ``"non_xml"``: HTTP 200 ``text/html`` page of garbage.
* ``"error_feed"``: HTTP 200 arXiv error feed (one entry titled ``Error``), as arXiv used to
  answer malformed requests.
* ``hang(seconds)`` -> ``"hang"``: wait, then answer normally; ``stop()`` cuts the wait short and
  the connection is then closed without an answer.
* ``"truncated"``: HTTP 200 Atom body holding the first half of the normal answer.
* ``"drop"``: close the connection without answering.
* ``dribble(interval, size=None)`` -> ``"dribble"``: the normal answer's status and headers
  (``Content-Length`` of the whole body), then its body one byte at a time, ``interval`` seconds
  apart; with ``size``, the connection is closed once that many bytes went out.  ``stop()`` cuts
  it short.
* ``huge(megabytes, content_length=True)`` -> ``"huge"``: HTTP 200 feed of ``megabytes`` MiB
  (one entry whose ``<summary>`` is padding words), generated lazily and streamed in 64 KiB
  chunks; with ``content_length=False`` it has no ``Content-Length`` and ends when the connection
  closes (``Connection: close``).  ``stop()`` cuts it short.
* ``redirect(location, code=302)`` -> ``"redirect"``: HTTP ``code`` with a ``Location`` header
  and an empty body.

A client that goes away in the middle of an answer ends it quietly.  A paper's ``xml`` overrides
the text of its entry's ``<id>``, ``<updated>``, ``<published>``, ``<title>`` or ``<summary>``
(written verbatim, unescaped; ``None`` leaves the element out) without changing how it is
selected or sorted.  ``busy_papers`` makes many papers for paging and load tests.

Queries support ``ti:``, ``abs:``, ``all:`` (title or abstract), ``au:`` and ``cat:`` terms, bare
words or quoted phrases (case-insensitive substrings of whitespace-collapsed text; ``cat:`` is
exact, or a whole archive as ``cat:cs.*``), ``AND``/``OR``/``ANDNOT`` applied left to right, and
parentheses.  "relevance" order is the order of ``papers`` (or of ``id_list``).  Malformed
requests (bad syntax, bad paging, bad ids) get an HTTP 400 error feed, like arXiv, from every
action built on the normal answer (``"ok"``, ``"empty"``, ``"truncated"``, ``hang``,
``dribble``).  Only each paper's newest version is served.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import re
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

ARXIV_NS = "http://arxiv.org/schemas/atom"
OPENSEARCH_NS = "http://a9.com/-/spec/opensearch/1.1/"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
SORT_KEYS = ("relevance", "lastUpdatedDate", "submittedDate")
_EASTERN = timezone(timedelta(hours=-5))
_NEW_ID = re.compile(r"\d\d(0[1-9]|1[0-2])\.\d{4,5}(v\d+)?")
_OLD_ID = re.compile(r"[a-z]+(-[a-z]+)*(\.[A-Z]{2})?/\d{7}(v\d+)?")
XML_ELEMENTS = ("id", "updated", "published", "title", "summary")  # what FeedPaper.xml overrides


def _iso(dt: datetime) -> str:
    """Format a datetime as arXiv does: ``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 timestamp that must carry a time zone (``Z`` accepted) into UTC."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"timestamp without time zone: {text!r}")
    return dt.astimezone(UTC)


def _collapse(text: str) -> str:
    """Collapse runs of white space into single spaces."""
    return " ".join(text.split())


def _attr(value: str) -> str:
    """Quote an XML attribute value the way arXiv does (double quotes, ``&quot;``)."""
    return '"' + escape(value, {'"': "&quot;"}) + '"'


@dataclass
class FeedPaper:
    """One paper as the fake arXiv serves it (at its newest version)."""

    id: str
    version: int
    title: str
    abstract: str
    authors: list[str]
    comment: str | None
    published: datetime
    updated: datetime
    primary_category: str
    categories: list[str]
    doi: str | None = None
    journal_ref: str | None = None
    # Verbatim text for some of the entry's XML_ELEMENTS, or None to leave the element out.
    xml: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse overrides of elements that ``xml`` cannot change."""
        if unknown := sorted(set(self.xml) - set(XML_ELEMENTS)):
            raise ValueError(f"xml can override {', '.join(XML_ELEMENTS)}; not {unknown}")

    @property
    def versioned_id(self) -> str:
        """Return the id with its version suffix, e.g. ``2501.10548v3``."""
        return f"{self.id}v{self.version}"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeedPaper:
        """Build a paper from its JSON fixture form."""
        dates = {k: _parse_iso(d[k]) for k in ("published", "updated")}
        lists = {"authors": list(d["authors"]), "categories": list(d["categories"])}
        return cls(**{**d, **dates, **lists, "xml": dict(d.get("xml") or {})})

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON fixture form of the paper (ISO 8601 dates with ``Z``; no empty xml)."""
        d = dataclasses.asdict(self)
        d["published"], d["updated"] = _iso(self.published), _iso(self.updated)
        if not self.xml:
            del d["xml"]
        return d

    def replace(self, **changes: Any) -> FeedPaper:
        """Return a copy of the paper with some fields changed."""
        return dataclasses.replace(self, **changes)


def load_papers(path: str | Path) -> list[FeedPaper]:
    """Read a JSON fixture file holding a list of papers."""
    return [FeedPaper.from_dict(d) for d in json.loads(Path(path).read_text(encoding="utf-8"))]


def busy_papers(
    count: int,
    phrase: str,
    newest: datetime,
    spacing: timedelta = timedelta(minutes=1),
    prefix: str = "2511",
) -> list[FeedPaper]:
    """Make ``count`` cs.LG papers titled with ``phrase``; paper ``i`` is ``i`` spacings old."""
    if not 0 <= count <= 100_000 or not re.fullmatch(r"\d\d(0[1-9]|1[0-2])", prefix):
        raise ValueError(f"need 0 <= count <= 100000 and a YYMM prefix, not {count}, {prefix!r}")
    if newest.tzinfo is None:
        raise ValueError("newest must carry a time zone")
    papers = []
    for i in range(count):
        when = (newest - i * spacing).astimezone(UTC)
        papers.append(
            FeedPaper(
                id=f"{prefix}.{i:05d}",
                version=1,
                title=f"{phrase} study {i}",
                abstract=f"We study {phrase} in setting {i}. It works about as well as before.",
                authors=[f"Busy Author {i}", "Ada Lovelace"],
                comment=None,
                published=when,
                updated=when,
                primary_category="cs.LG",
                categories=["cs.LG"],
            )
        )
    return papers


@dataclass(frozen=True)
class Status:
    """Fault action: answer with an HTTP status, optional ``Retry-After`` and a text body."""

    code: int
    retry_after: int | str | None = None
    body: str | None = None


@dataclass(frozen=True)
class Hang:
    """Fault action: wait ``seconds`` before answering (cut short by ``stop()``)."""

    seconds: float


@dataclass(frozen=True)
class Dribble:
    """Fault action: send the normal answer's headers, then its body a byte every ``interval`` s."""

    interval: float
    size: int | None = None  # bytes to send before closing the connection; None: the whole body


@dataclass(frozen=True)
class Huge:
    """Fault action: stream a feed of ``megabytes`` MiB, close-delimited without content_length."""

    megabytes: float
    content_length: bool = True


@dataclass(frozen=True)
class Redirect:
    """Fault action: answer ``code`` with a ``Location`` header and an empty body."""

    location: str
    code: int = 302


# the spelling used in scripts: status(503), hang(30), dribble(0.5), huge(20), redirect(url)
status, hang, dribble, huge, redirect = Status, Hang, Dribble, Huge, Redirect
Action = str | Status | Hang | Dribble | Huge | Redirect
_NAMED_ACTIONS = {"ok", "empty", "non_xml", "error_feed", "truncated", "drop"}


@dataclass
class RequestRecord:
    """One request the fake received: arrival time, query, answered status (0: none), action."""

    time: float
    query: dict[str, str]
    status: int
    action: str
    user_agent: str = ""


class QueryError(ValueError):
    """A request arXiv would answer with an error feed."""


_TOKEN = re.compile(r'([()]|(?:ANDNOT|AND|OR)(?=[\s()]|$))|([a-z]+):("[^"]+"|[^\s()"]+)|(\S+)')
_TEXT_FIELDS: dict[str, Callable[[FeedPaper], list[str]]] = {
    "ti": lambda p: [p.title],
    "abs": lambda p: [p.abstract],
    "all": lambda p: [p.title, p.abstract],
    "au": lambda p: p.authors,
}
Predicate = Callable[[FeedPaper], bool]
_OPERATORS: dict[str, Callable[[Predicate, Predicate], Predicate]] = {
    "AND": lambda a, b: lambda p: a(p) and b(p),
    "OR": lambda a, b: lambda p: a(p) or b(p),
    "ANDNOT": lambda a, b: lambda p: a(p) and not b(p),
}


def _term(fld: str, value: str) -> Predicate:
    """Build the predicate of one ``field:value`` term."""
    text = value.strip('"')
    needle = _collapse(text.replace("_", " ") if fld == "au" else text).casefold()
    if not needle:
        raise QueryError(f"empty search term for {fld}")
    if fld == "cat" and needle.endswith(".*"):  # a whole archive: cat:cs.*
        return lambda p: any(c.casefold().startswith(needle[:-1]) for c in p.categories)
    if fld == "cat":
        return lambda p: any(c.casefold() == needle for c in p.categories)
    if fld not in _TEXT_FIELDS:
        raise QueryError(f"unknown field prefix {fld}:")
    texts = _TEXT_FIELDS[fld]
    return lambda p: any(needle in _collapse(t).casefold() for t in texts(p))


def compile_query(query: str) -> Predicate:
    """Compile arXiv query syntax (operators applied left to right, parentheses) to a predicate."""
    tokens: list[str | Predicate] = []  # "(", ")", operator names and term predicates
    for m in _TOKEN.finditer(query):
        word, fld, value, junk = m.groups()
        if junk:
            raise QueryError(f"Invalid query string: '{query}'")
        tokens.append(word or _term(fld, value))

    def operand(i: int) -> tuple[Predicate, int]:
        token = tokens[i] if i < len(tokens) else ""
        if callable(token):
            return token, i + 1
        if token == "(":
            pred, i = expr(i + 1)
            if i < len(tokens) and tokens[i] == ")":
                return pred, i + 1
        raise QueryError(f"Invalid query string: '{query}'")

    def expr(i: int) -> tuple[Predicate, int]:
        left, i = operand(i)
        while i < len(tokens) and (op := tokens[i]) in _OPERATORS:
            right, i = operand(i + 1)
            left = _OPERATORS[op](left, right)
        return left, i

    pred, end = expr(0)
    if end != len(tokens):
        raise QueryError(f"Invalid query string: '{query}'")
    return pred


def _int_param(query: dict[str, str], name: str, default: int) -> int:
    """Read a non-negative integer parameter, failing like arXiv does."""
    raw = query.get(name, "").strip() or str(default)
    if not re.fullmatch(r"-?\d+", raw):
        raise QueryError(f"{name} must be an integer")
    if (value := int(raw)) < 0:
        raise QueryError(f"{name} must be >= 0")
    return value


def run_query(papers: list[FeedPaper], query: dict[str, str]) -> tuple[list[FeedPaper], int, int]:
    """Select, sort and slice papers for a request; return (page, total, start)."""
    start = _int_param(query, "start", 0)
    max_results = _int_param(query, "max_results", 10)
    sort_by = query.get("sortBy") or "relevance"
    sort_order = query.get("sortOrder") or "descending"
    if sort_by not in SORT_KEYS:
        raise QueryError(f"sortBy must be in: {', '.join(SORT_KEYS)}")
    if sort_order not in ("ascending", "descending"):
        raise QueryError("sortOrder must be in: ascending, descending")
    ids = [i.strip() for i in query.get("id_list", "").split(",") if i.strip()]
    for i in ids:
        if not (_NEW_ID.fullmatch(i) or _OLD_ID.fullmatch(i)):
            raise QueryError(f"incorrect id format for {i}")
    search = query.get("search_query", "").strip()
    pred = compile_query(search) if search else None
    if ids:  # relevance order of an id_list request is the id_list order
        by_id = {key: p for p in papers for key in (p.id, p.versioned_id)}
        chosen = list({id(p): p for i in ids if (p := by_id.get(i))}.values())
    else:  # relevance order of a search is the fixture order
        chosen = list(papers) if pred else []
    matches = [p for p in chosen if pred is None or pred(p)]
    if sort_by != "relevance":
        attr = "updated" if sort_by == "lastUpdatedDate" else "published"
        matches.sort(key=lambda p: (getattr(p, attr), p.id), reverse=sort_order == "descending")
    return matches[start : start + max_results], len(matches), start


def wrap_title(title: str) -> str:
    """Wrap a title like arXiv: 80 columns counting a ``Title: `` prefix, then 2-space indent."""
    lines = textwrap.wrap(
        _collapse(title), 80, initial_indent="Title: ", subsequent_indent="  ",
        break_long_words=False, break_on_hyphens=False,
    )  # fmt: skip
    return "\n".join(lines).removeprefix("Title: ")


def wrap_summary(abstract: str) -> str:
    """Wrap an abstract like arXiv: 2-space indent, 78-column text, trailing newline."""
    lines = textwrap.wrap(_collapse(abstract), 78, break_long_words=False, break_on_hyphens=False)
    return "  " + "\n  ".join(lines) + "\n"


def _feed_head(query: dict[str, str], total: int, start: int, count: int) -> str:
    """Render the XML declaration and the feed's own elements."""
    shown = f"search_query={query.get('search_query', '')}"
    if query.get("id_list"):
        shown += f"&id_list={query['id_list']}"
    digest = hashlib.sha1(shown.encode()).digest()
    feed_id = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    now = datetime.now(_EASTERN).isoformat(timespec="seconds")
    opensearch = f'xmlns:opensearch="{OPENSEARCH_NS}"'
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom">\n'
        f'  <link href={_attr("http://arxiv.org/api/query?" + shown)} rel="self"'
        ' type="application/atom+xml"/>\n'
        f'  <title type="html">ArXiv Query: {escape(shown)}</title>\n'
        f"  <id>http://arxiv.org/api/{feed_id}</id>\n"
        f"  <updated>{now}</updated>\n"
        f"  <opensearch:totalResults {opensearch}>{total}</opensearch:totalResults>\n"
        f"  <opensearch:startIndex {opensearch}>{start}</opensearch:startIndex>\n"
        f"  <opensearch:itemsPerPage {opensearch}>{count}</opensearch:itemsPerPage>\n"
    )


def render_entry(p: FeedPaper) -> str:
    """Render one paper as an arXiv Atom ``<entry>``."""
    abs_url = f"http://arxiv.org/abs/{p.versioned_id}"
    arxiv = f'xmlns:arxiv="{ARXIV_NS}"'
    texts: dict[str, str | None] = {
        "id": abs_url,
        "updated": _iso(p.updated),
        "published": _iso(p.published),
        "title": escape(wrap_title(p.title)),
        "summary": escape(wrap_summary(p.abstract)),
        **p.xml,
    }
    lines = ["  <entry>"]
    lines += [f"    <{k}>{texts[k]}</{k}>" for k in XML_ELEMENTS if texts[k] is not None]
    lines.append("    " + "".join(f"<author><name>{escape(a)}</name></author>" for a in p.authors))
    if p.doi:
        lines.append(f"    <arxiv:doi {arxiv}>{escape(p.doi)}</arxiv:doi>")
        doi_url = _attr(f"http://dx.doi.org/{p.doi}")
        lines.append(f'    <link title="doi" href={doi_url} rel="related"/>')
    comment = f"<arxiv:comment {arxiv}>{escape(p.comment)}</arxiv:comment>" if p.comment else ""
    lines.append("    " + comment)
    if p.journal_ref:
        lines.append(f"    <arxiv:journal_ref {arxiv}>{escape(p.journal_ref)}</arxiv:journal_ref>")
    scheme = f'scheme="{ARXIV_NS}"'
    lines += [
        f'    <link href="{abs_url}" rel="alternate" type="text/html"/>',
        f'    <link title="pdf" href="http://arxiv.org/pdf/{p.versioned_id}" rel="related"'
        ' type="application/pdf"/>',
        f"    <arxiv:primary_category {arxiv} term={_attr(p.primary_category)} {scheme}/>",
        "    " + "".join(f"<category term={_attr(c)} {scheme}/>" for c in p.categories),
        "  </entry>",
    ]
    return "\n".join(lines) + "\n"


def render_answer(papers: list[FeedPaper], query: dict[str, str]) -> tuple[int, bytes]:
    """Render the normal answer to a query: 200 and the feed, or 400 and arXiv's error feed."""
    try:
        page, total, start = run_query(papers, query)
    except QueryError as exc:
        return 400, render_error_feed(query, str(exc))
    entries = "".join(render_entry(p) for p in page)
    return 200, (_feed_head(query, total, start, len(page)) + entries + "</feed>\n").encode()


def render_feed(papers: list[FeedPaper], query: dict[str, str]) -> bytes:
    """Render the body of the normal answer to a query (an error feed if arXiv would reject it)."""
    return render_answer(papers, query)[1]


def query_status(query: dict[str, str]) -> int:
    """Return the status of the normal answer to a query: 200, or 400 if arXiv would reject it."""
    try:
        run_query([], query)
    except QueryError:
        return 400
    return 200


def render_error_feed(query: dict[str, str], message: str) -> bytes:
    """Render arXiv's error feed: one entry titled ``Error`` with the message as summary."""
    url = "http://arxiv.org/api/errors#" + re.sub(r"\s+", "_", message)
    updated = datetime.now(_EASTERN).replace(hour=0, minute=0, second=0).isoformat()
    entry = (
        "  <entry>\n"
        f"    <id>{escape(url)}</id>\n"
        "    <title>Error</title>\n"
        f"    <summary>{escape(message)}</summary>\n"
        f"    <updated>{updated}</updated>\n"
        f'    <link href={_attr(url)} rel="alternate" type="text/html"/>\n'
        "    <author><name>arXiv api core</name></author>\n"
        "  </entry>\n"
    )
    return (_feed_head(query, 1, 0, 1) + entry + "</feed>\n").encode()


_PADDING = b"lorem ipsum dolor sit amet " * 2427  # 65,529 bytes: whole words, about 64 KiB


def huge_feed(query: dict[str, str], megabytes: float) -> tuple[int, Iterator[bytes]]:
    """Return the size of a ``megabytes`` MiB feed (one padded entry) and a lazy chunk iterator."""
    when = datetime(2025, 11, 30, 20, tzinfo=UTC)
    paper = FeedPaper(
        "2511.99999", 1, "A huge answer", "", ["Pat Padding"], None, when, when, "cs.LG",
        ["cs.LG"], xml={"summary": "\0"},
    )  # fmt: skip
    before, after = render_entry(paper).split("\0")
    head = (_feed_head(query, 1, 0, 1) + before).encode()
    tail = (after + "</feed>\n").encode()
    padding = max(0, round(megabytes * 2**20) - len(head) - len(tail))

    def chunks() -> Iterator[bytes]:
        yield head
        for left in range(padding, 0, -len(_PADDING)):
            yield _PADDING[:left]
        yield tail

    return len(head) + padding + len(tail), chunks()


NON_XML_BODY = b"<html><head><title>502 Proxy Error</title><body><h1>Proxy Error<p>oops & <b>"


class _Handler(BaseHTTPRequestHandler):
    """Hand every GET to the owning ``FakeArxiv``."""

    server: _Server
    timeout = 1  # a client that connects and never sends cannot hold stop() for long
    released = False  # set by FakeArxiv.release once the answer starts going out

    def do_GET(self) -> None:
        self.server.fake._handle(self)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


class _Server(ThreadingHTTPServer):
    """A threading HTTP server whose handler threads are joined on close."""

    daemon_threads = False
    block_on_close = True

    fake: FakeArxiv

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that went away; report anything else."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class FakeArxiv:
    """A fake arXiv export API served from a background thread on 127.0.0.1."""

    def __init__(
        self,
        papers: list[FeedPaper] | None = None,
        script: list[Action] | None = None,
        port: int = 0,
    ) -> None:
        self.port = port
        self.papers: list[FeedPaper] = list(papers or [])
        self.script: list[Action] = list(script or [])
        self.requests: list[RequestRecord] = []
        self.max_concurrent = 0
        self.url: str = ""
        self._active = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FakeArxiv:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> FakeArxiv:
        """Bind a free port and start serving."""
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(("127.0.0.1", self.port), _Handler)
            self._server.fake = self
            self.url = f"http://127.0.0.1:{self._server.server_address[1]}/api/query"
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                name="fake-arxiv", daemon=True,
            )  # fmt: skip
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut hangs short, close the socket and join every handler thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()
        self._server = self._thread = None

    def _handle(self, h: _Handler) -> None:
        """Log one request, apply the next scripted action and answer."""
        arrived = time.monotonic()
        parts = urlsplit(h.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        with self._lock:
            action: Action = "ok"
            if parts.path != "/api/query":
                action = Status(404, body="Not Found")
            elif self.script:
                action = self.script.pop(0)
            name, code = _describe(action, query)
            agent = h.headers.get("User-Agent", "")
            self.requests.append(RequestRecord(arrived, query, code, name, agent))
            self._active += 1
            self.max_concurrent = max(self.max_concurrent, self._active)
        h.released = False
        try:
            self._perform(h, action, query)
        finally:
            self.release(h)

    def release(self, h: _Handler) -> None:
        """Count a request as finished once its answer starts going out (or it is dropped).

        Released before the body is written: a client that sends its next request as soon as it
        has read an answer must never be counted as overlapping with that answer.
        """
        with self._lock:
            if not h.released:
                h.released = True
                self._active -= 1

    def _perform(self, h: _Handler, action: Action, query: dict[str, str]) -> None:
        """Send the answer that an action calls for."""
        if isinstance(action, Hang):
            if self._stopping.wait(action.seconds):
                return  # stopping: close without an answer
            action = "ok"
        if isinstance(action, Status):
            body = action.body if action.body is not None else f"HTTP {action.code}\n"
            headers = {} if action.retry_after is None else {"Retry-After": str(action.retry_after)}
            _send(h, action.code, "text/plain; charset=utf-8", body.encode(), headers)
        elif isinstance(action, Redirect):
            _send(h, action.code, None, b"", {"Location": action.location})
        elif isinstance(action, Dribble):
            code, body = render_answer(list(self.papers), query)
            size = len(body) if action.size is None else min(max(action.size, 0), len(body))
            _send_head(h, code, ATOM_TYPE, len(body))
            self._stream(h, (body[i : i + 1] for i in range(size)), action.interval)
        elif isinstance(action, Huge):
            length, chunks = huge_feed(query, action.megabytes)
            if action.content_length:
                _send_head(h, 200, ATOM_TYPE, length)
            else:
                _send_head(h, 200, ATOM_TYPE, None, {"Connection": "close"})
            self._stream(h, chunks)
        elif action in ("ok", "empty", "truncated"):
            code, body = render_answer([] if action == "empty" else list(self.papers), query)
            _send(h, code, ATOM_TYPE, body[: len(body) // 2] if action == "truncated" else body)
        elif action == "error_feed":
            _send(h, 200, ATOM_TYPE, render_error_feed(query, "simulated error"))
        elif action == "non_xml":
            _send(h, 200, "text/html; charset=utf-8", NON_XML_BODY)
        elif action != "drop":  # "drop" sends nothing: the server just closes the connection
            _send(h, 500, "text/plain; charset=utf-8", f"unknown action {action!r}\n".encode())

    def _stream(self, h: _Handler, chunks: Iterable[bytes], interval: float = 0.0) -> None:
        """Send chunks ``interval`` seconds apart until done, ``stop()`` or the client leaves."""
        h.close_connection = True
        sock = h.connection
        sock.settimeout(_SEND_POLL)  # a client that stops reading cannot hold stop() for long
        for i, chunk in enumerate(chunks):
            if i and interval and self._stopping.wait(interval):
                return
            view = memoryview(chunk)
            while view:
                if self._stopping.is_set():
                    return
                try:
                    view = view[sock.send(view) :]
                except TimeoutError:
                    continue  # the client's window is full: check for stop() and try again
                except OSError:
                    return  # the client went away: end quietly


_SEND_POLL = 0.05  # seconds a streamed write may block before checking for stop()


def _describe(action: Action, query: dict[str, str]) -> tuple[str, int]:
    """Return an action's log name and the status it answers with (0 for none)."""
    if isinstance(action, Status):
        return "status", action.code
    if isinstance(action, Redirect):
        return "redirect", action.code
    if isinstance(action, Hang):
        return "hang", query_status(query)
    if isinstance(action, Dribble):
        return "dribble", query_status(query)
    if isinstance(action, Huge):
        return "huge", 200
    if action not in _NAMED_ACTIONS:
        return "invalid", 500
    if action in ("ok", "empty", "truncated"):
        return action, query_status(query)
    return action, 0 if action == "drop" else 200


def _send_head(
    h: _Handler,
    code: int,
    ctype: str | None,
    length: int | None,
    headers: dict[str, str] | None = None,
) -> None:
    """Write the status line and headers (type and length only if given); count as answered."""
    h.send_response(code)
    if ctype is not None:
        h.send_header("Content-Type", ctype)
    if length is not None:
        h.send_header("Content-Length", str(length))
    for key, value in (headers or {}).items():
        h.send_header(key, value)
    h.end_headers()
    h.server.fake.release(h)


def _send(
    h: _Handler, code: int, ctype: str | None, body: bytes, headers: dict[str, str] | None = None
):
    """Write a complete HTTP response."""
    _send_head(h, code, ctype, len(body), headers)
    h.wfile.write(body)


def dated_today(papers: list[FeedPaper], now: datetime) -> list[FeedPaper]:
    """Return the papers re-dated into the last day, in their order, the newest an hour ago
    and each older one an hour before the next (published moves with updated): a first
    cycle, which mails only what is newer than first_run_days, mails them all."""
    ranked = sorted(papers, key=lambda p: p.updated, reverse=True)
    moved = []
    for rank, paper in enumerate(ranked):
        when = now - timedelta(hours=1 + rank)
        age = paper.updated - paper.published
        moved.append(dataclasses.replace(paper, updated=when, published=when - age))
    return moved


if __name__ == "__main__":  # python tests/helpers/fake_arxiv.py [PORT] [--as-recorded]
    import argparse

    parser = argparse.ArgumentParser(description="Serve the fixture papers like arXiv's API.")
    parser.add_argument("port", nargs="?", type=int, default=8089)
    parser.add_argument(
        "--as-recorded", action="store_true", help="keep their dates (else: the last day's)"
    )
    options = parser.parse_args()
    papers = load_papers(Path(__file__).parent.parent / "data" / "papers.json")
    if not options.as_recorded:
        papers = dated_today(papers, datetime.now(UTC))
    with FakeArxiv(papers, port=options.port) as fake:
        print(f"fake arXiv API at {fake.url}; Ctrl-C to stop", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
