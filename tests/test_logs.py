"""Logs that stay true: escaped and capped values, every logger summarised, no client tracebacks."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from helpers.browser import serving
from helpers.builders import SECRET
from helpers.mailserver import free_port

from digest.logs import REPEATS, Repeats, shown
from digest.numbers import whole_number
from digest.store import Store
from digest.tokens import form_token, make_token, parse_token, token_id
from digest.web import make_app

# What the auditor's forged path said: a line that looks like one of ours.
FAKE = "INFO digest.web.base: unsubscribed b•••@example.org"
# A log line as `digest` writes it off systemd: "2026-01-01 12:00:00,000 LEVEL logger: message".
LINE_START = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
)
# Numbers that str.isdigit or int accept but no URL or form of ours holds.
NOT_ASCII = [
    "\u00b2",  # superscript two: isdigit, not int
    "\u00b3",
    "\u0663",  # Arabic-Indic three: int reads 3
    "\u0660",
    "\uff13",  # fullwidth three
    "\uff11\uff12",
    "\U0001d7d9",  # mathematical double-struck one
]


@pytest.fixture(autouse=True)
def fresh_repeats():
    """Forget the log lines other tests had summarised."""
    REPEATS.runs.clear()


def get(url: str) -> tuple[int, str]:
    """GET url; return the status and the body, whatever the status."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def entries(log: str) -> list[str]:
    """Split a log into its records: each starts with a timestamp, its traceback follows."""
    records: list[str] = []
    for line in log.splitlines():
        if LINE_START.match(line) or not records:
            records.append(line)
        else:
            records[-1] += "\n" + line
    return records


def wait_for(path: Path, text: str) -> str:
    """Return the file's text once it holds `text` (a server writes its log asynchronously)."""
    deadline = time.monotonic() + 10
    while text not in (log := path.read_text(encoding="utf-8")):
        assert time.monotonic() < deadline, log
        time.sleep(0.02)
    return log


@pytest.fixture
def serve(fake_arxiv, make_settings, tmp_path):
    """Start `digest serve` as a real process (templates: an operator's folder, if given);
    yield a starter: (URL, log file, a function that stops it and returns the whole log)."""

    stack = contextlib.ExitStack()

    def start(templates: dict[str, str] | None = None):
        port = free_port()
        # room_rate = 0: the floods here test the log, not the reading room's rate per network
        extra = f'\n[web]\nlisten = "127.0.0.1:{port}"\nroom_rate = 0\n'
        if templates:
            for name, text in templates.items():
                (tmp_path / "templates" / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / "templates" / name).write_text(text, encoding="utf-8")
        settings = make_settings(extra=extra)
        if templates:
            text = settings.path.read_text(encoding="utf-8")
            text = text.replace("[digest]\n", '[digest]\ntemplates = "templates"\n', 1)
            settings.path.write_text(text, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}  # timestamps
        env |= {"DIGEST_CONFIG": str(settings.path), "DIGEST_SECRET": SECRET}
        log_path = tmp_path / f"serve-{port}.log"
        server = stack.enter_context(contextlib.ExitStack())
        url = server.enter_context(serving(env, port, log_path))

        def stop() -> str:
            server.close()  # SIGTERM, and wait for the process to end
            return log_path.read_text(encoding="utf-8")

        return url, log_path, stop

    with stack:
        yield start


# --- findings 3 and 4 through the real `digest serve` ------------------------------------------


@pytest.mark.slow  # a real process
def test_200_page_numbers_that_are_not_ascii_answer_404_with_nothing_logged(serve):
    url, log_path, stop = serve()
    started = wait_for(log_path, "web: listening")
    statuses = set()
    for n in range(200):
        status, page = get(url + "/search?q=x&page=%C2%B2")
        statuses.add(status)
        if n == 0:
            assert "Something went wrong" not in page
    for digits in NOT_ASCII:
        for path in ("/search?q=x&page=", "/topics/graph-neural-network?page="):
            status, _ = get(url + path + urllib.request.quote(digits))
            statuses.add(status)
    assert statuses <= {400, 404}, statuses
    status, _ = get(url + "/healthz")  # the server is fine
    assert status == 200
    log = stop()
    assert "Traceback" not in log and "more like it" not in log
    assert len(log.splitlines()) <= len(started.splitlines()) + 2, log


BROKEN = {"web/not_found.html": "{{ nothing.here }}\n"}  # an operator's broken template


@pytest.mark.slow  # a real process
def test_a_newline_in_a_path_cannot_write_a_line_of_its_own(serve):
    url, log_path, _ = serve(
        BROKEN
    )  # every unknown page is now a server fault, logged with its path
    path = "/topics/x%0A" + urllib.request.quote(FAKE) + "%0D%1B[2J%E2%80%AE"
    status, page = get(url + path)
    assert status == 500 and "Something went wrong" in page
    log = wait_for(log_path, "failed; answered 500")
    lines = log.splitlines()
    forged = [line for line in lines if "unsubscribed b•••@example.org" in line]
    assert len(forged) == 1, log  # one line, the error's own
    (line,) = forged
    assert LINE_START.match(line)  # its own record's line, not one the path began
    assert (
        " ERROR digest.web.base: web: GET /topics/x\\x0aINFO digest.web.base: unsubscribed" in line
    )
    assert "\\x0d\\x1b[2J\\u202e failed; answered 500" in line
    assert not [line for line in lines if line.startswith(("INFO", FAKE))]
    assert all(char.isprintable() for char in log.replace("\n", ""))
    assert log.count("Traceback") == 1


@pytest.mark.slow  # a real process
def test_200_alike_server_faults_write_one_traceback_and_a_summary(serve):
    url, log_path, stop = serve(BROKEN)
    for n in range(200):
        status, _ = get(url + f"/topics/nothing-{n}?page=1")
        assert status == 500
    running = wait_for(log_path, "failed; answered 500")
    errors = [e for e in entries(running) if " ERROR " in e.partition("\n")[0]]
    assert len(errors) == 1 and running.count("Traceback") == 1, running  # the rest held back
    assert "jinja2.exceptions.UndefinedError: 'nothing' is undefined" in errors[0]
    head = errors[0].partition("\n")[0]
    assert head.endswith(" ERROR digest.web.base: web: GET /topics/nothing-0 failed; answered 500")
    log = stop()  # at the end, what was held back is counted
    summaries = [line for line in log.splitlines() if "more like it" in line]
    assert len(summaries) == 1, log
    assert re.search(
        r" ERROR digest\.web\.base: web: GET /topics/nothing-0 failed; answered 500 "
        r"\(… 199 more like it in the last \d+ s\)$",
        summaries[0],
    ), summaries
    assert log.count("Traceback") == 1
    assert len([e for e in entries(log) if " ERROR " in e.partition("\n")[0]]) == 2  # 200 faults


# --- every logger, as `digest` configures logging ----------------------------------------------

EVERY_LOGGER = r"""
import ast, logging, sys, warnings
from digest.cli import setup_logging
from digest.logs import REPEATS

evil = ast.literal_eval(sys.argv[1])  # as ascii() wrote it: an argument holds no NUL
now = [0.0]
REPEATS.clock = lambda: now[0]
setup_logging(0)
for name in ("digest.pipeline", "aiohttp.access", "aiohttp.server", "asyncio", ""):
    logger = logging.getLogger(name)
    logger.warning("%s got %s", name or "root", evil)
    logger.warning(f"{name or 'root'} as an f-string {evil}")
    logger.warning("%(who)s by name %(what)r", {"who": name, "what": evil})
    try:
        raise ValueError(f"bad value {evil}")
    except ValueError:
        logger.exception("%s failed", name or "root")
    for _ in range(200):
        logger.error("the same failure on %s", name or "root")
now[0] = 61.0
for name in ("digest.pipeline", "aiohttp.access", "aiohttp.server", "asyncio", ""):
    logging.getLogger(name).error("the same failure on %s", name or "root")
logging.getLogger("digest.web.base").warning("long %s", "y" * 5000)
logging.getLogger("digest.pipeline").warning("own %s", "z" * 5000)
warnings.warn(f"a warning {evil}", RuntimeWarning, stacklevel=1)
logging.getLogger("digest.pipeline").info("fine: %d papers, %.1f s, %s", 3, 1.25, "ada")
"""


@pytest.mark.slow  # a real process
def test_every_logger_writes_through_the_escaping_and_the_summary():
    evil = f"x\n{FAKE}\r\x1b[31m\u202e\udcff\x00end"
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    done = subprocess.run(
        [sys.executable, "-c", EVERY_LOGGER, ascii(evil)],
        env=env | {"PYTHONPATH": str(Path(__file__).parent.parent)},
        capture_output=True,
        text=True,
        errors="strict",  # a lone surrogate written raw would fail here
        timeout=60,
        check=True,
    )
    log = done.stderr
    assert "--- Logging error ---" not in log
    assert all(char.isprintable() for char in log.replace("\n", "")), log
    lines = log.splitlines()
    assert not [line for line in lines if line.startswith(("INFO", FAKE))]
    escaped = f"x\\x0a{FAKE}\\x0d\\x1b[31m\\u202e\\udcff\\x00end"
    records = entries(log)
    for name, logger in [
        ("digest.pipeline", "digest.pipeline"),
        ("aiohttp.access", "aiohttp.access"),
        ("aiohttp.server", "aiohttp.server"),
        ("asyncio", "asyncio"),
        ("root", "root"),
    ]:
        mine = [r for r in records if f" {logger}: " in r.partition("\n")[0]]
        heads = [r.partition("\n")[0] for r in mine]
        assert any(h.endswith(f"{name} got {escaped}") for h in heads), heads
        assert any(h.endswith(f"{name} as an f-string {escaped}") for h in heads), heads
        assert any(h.endswith(f"by name {evil!r}") for h in heads), heads  # %r: repr
        (failed,) = [r for r in mine if f"{name} failed" in r]
        assert failed.splitlines()[1] == "Traceback (most recent call last):"
        assert failed.splitlines()[-1] == f"ValueError: bad value {escaped}"
        same = [h for h in heads if f"the same failure on {name}" in h]
        assert same[0].endswith(f"the same failure on {name}")  # the first of 201
        assert same[1].endswith(f"on {name} (… 199 more like it in the last 61 s)"), same
        assert len(same) == 2
    (warned,) = [line for line in lines if "py.warnings" in line]
    assert f"RuntimeWarning: a warning {escaped}\\x0a" in warned
    (long,) = [line for line in lines if " long " in line]  # a value a client may choose
    assert long.endswith(" long " + "y" * 200 + "…")
    (own,) = [line for line in lines if " own " in line]  # a cycle's own text, such as its summary
    assert own.endswith(" own " + "z" * 5000)
    assert lines[-1].endswith("INFO digest.pipeline: fine: 3 papers, 1.2 s, ada")
    assert len(lines) < 60


# --- the escaping itself ---------------------------------------------------------------------


def test_shown_escapes_what_is_not_printable_and_caps_the_rest():
    assert shown("ada@example.org /search?q=graph") == "ada@example.org /search?q=graph"
    assert shown("a\nb\r\tc\x7f\x85") == "a\\x0ab\\x0d\\x09c\\x7f\\x85"
    assert shown("\u2028\u202e\u00a0\ufeff") == "\\u2028\\u202e\\xa0\\ufeff"
    assert shown("\U000e0041\udc80") == "\\U000e0041\\udc80"
    assert shown("é•—ü") == "é•—ü"  # printable, kept
    assert shown("z" * 200) == "z" * 200
    assert shown("z" * 201) == "z" * 200 + "…"
    assert shown("\n" * 100) == "\\x0a" * 50 + "…"  # the escaped form is what is capped
    assert shown("z" * 5000, None) == "z" * 5000


def test_a_record_formatted_twice_or_by_another_handler_stays_escaped(caplog):
    from digest.logs import Escaping

    formatter = Escaping("%(levelname)s %(name)s: %(message)s")
    logger = logging.getLogger("digest.test_logs")
    try:
        raise RuntimeError("a\nb")
    except RuntimeError:
        logger.exception("on %s", "p\nq")
    (record,) = [r for r in caplog.records if r.name == "digest.test_logs"]
    record.exc_text = "Traceback\nRuntimeError: a\nb"  # cached by another handler's formatter
    first = formatter.format(record)
    assert formatter.format(record) == first
    assert first.splitlines()[0] == "ERROR digest.test_logs: on p\\x0aq"
    assert first.splitlines()[-1] == "RuntimeError: a\\x0ab"


def test_a_chained_exception_keeps_its_chain_and_each_text_is_escaped():
    from digest.logs import Escaping

    try:
        try:
            raise KeyError("inner\nline")
        except KeyError as exc:
            raise ValueError("outer\nline") from exc
    except ValueError:
        text = Escaping().formatException(sys.exc_info())
    lines = text.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert "KeyError: 'inner\\nline'" in lines
    assert "The above exception was the direct cause of the following exception:" in lines
    assert lines[-1] == "ValueError: outer\\x0aline"


# --- numbers: ASCII digits only ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text", [*NOT_ASCII, "", " 3", "+3", "-3", "3 ", "1_0", "3.0", "0x3", None]
)
def test_whole_number_refuses_what_is_not_ascii_digits(text):
    assert whole_number(text) is None


def test_whole_number_reads_ascii_digits_up_to_a_length():
    assert whole_number("0") == 0 and whole_number("0042") == 42
    assert whole_number("99999", digits=5) == 99999
    assert whole_number("100000", digits=5) is None
    assert whole_number("9" * 10) is None  # 9 digits unless told


# --- the manage form ---------------------------------------------------------------------------


def remember(settings, email: str = "ada@example.org") -> str:
    """Make `email` known to the database as a mailed recipient; return its token."""
    with Store(settings.database) as store:
        secret = store.secret(SECRET)
        store.remember_recipients([(token_id(secret, email), email)])
    return make_token(secret, email)


@pytest.fixture
async def manage(make_settings):
    """Serve the app for Ada, a known recipient; yield (settings, her /manage URL, a client)."""
    settings = make_settings()
    token = remember(settings)
    server = TestServer(make_app(settings), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as client:
        yield settings, str(server.make_url("")).rstrip("/") + f"/manage?token={token}", client
    await server.close()


def form(**changes) -> dict[str, str]:
    csrf = form_token(
        SECRET.encode(), "manage", parse_token(make_token(SECRET.encode(), "ada@example.org"))
    )
    return {"csrf": csrf, "topic": "graph neural network", "frequency": "weekly"} | changes


@pytest.mark.parametrize("weekday", [*NOT_ASCII, "7", "-1", " 3", "+3", "33", ""])
async def test_a_weekday_that_is_not_an_ascii_digit_gets_the_form_again_with_400(
    manage, caplog, weekday
):
    settings, url, client = manage
    async with client.post(url, data=form(weekday=weekday)) as answer:
        page = await answer.text()
    assert answer.status == 400 and "Choose a day of the week." in page
    assert "Something went wrong" not in page
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]
    with Store(settings.database) as store:
        assert store.person("ada@example.org") is None  # nothing saved


async def test_an_ascii_weekday_is_saved(manage):
    _, url, client = manage
    async with client.post(url, data=form(weekday="4")) as answer:
        page = await answer.text()
    assert answer.status == 200 and '<option value="4" selected>' in page


def multipart(name: str, value: bytes, boundary: str = "b0undary", head: str = "") -> bytes:
    """Return a multipart/form-data body with the manage form's fields and `name` as given."""
    parts = [(k, v.encode()) for k, v in form(weekday="2").items() if k != name] + [(name, value)]
    body = b""
    for key, data in parts:
        disposition = f'form-data; name="{key}"' + ('; filename="x.bin"' if key == name else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n{head}\r\n".encode()
        body += data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


MULTIPART = "multipart/form-data; boundary=b0undary"
CRAFTED = {  # content type, body: forms no browser sends
    **{
        f"a file as {name}": (MULTIPART, multipart(name, b"\x00\xff"))
        for name in ("weekday", "paused_until", "frequency", "abstracts", "topic", "csrf")
    },
    "no boundary": ("multipart/form-data", multipart("weekday", b"2")),
    "another boundary": (MULTIPART, multipart("weekday", b"2", boundary="other")),
    "a part in an unknown charset": (
        MULTIPART,
        multipart("weekday", b"2", head="Content-Type: text/plain; charset=nowhere\r\n"),
    ),
    "not UTF-8": ("application/x-www-form-urlencoded", b"csrf=%FF%FE&weekday=%FF"),
    "raw bytes": ("application/x-www-form-urlencoded", b"weekday=\xff\xfe"),
    "an unknown charset": ("application/x-www-form-urlencoded; charset=nowhere", b"weekday=2"),
    "a truncated body": (MULTIPART, multipart("weekday", b"2")[:-30]),
}


@pytest.mark.parametrize("case", CRAFTED)
async def test_crafted_manage_forms_are_client_errors_without_a_traceback(manage, caplog, case):
    settings, url, client = manage
    content_type, body = CRAFTED[case]
    async with client.post(url, data=body, headers={"Content-Type": content_type}) as answer:
        page = await answer.text()
    assert answer.status in (400, 403), page
    assert "Something went wrong" not in page
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]
    with Store(settings.database) as store:
        assert store.person("ada@example.org") is None


async def test_a_page_number_that_is_not_ascii_is_a_404_in_the_app(web, caplog):
    _, url, client = web
    for digits in NOT_ASCII:
        for path in (
            "/search?q=graph&page=",
            "/topics/graph-neural-network?page=",
            "/days/2025-11-16?page=",
        ):
            async with client.get(url + path + digits) as answer:
                assert answer.status == 404, path + digits
    async with client.get(url + "/search?q=graph&page=1") as answer:
        assert answer.status == 200
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]


async def test_a_well_formed_multipart_manage_form_is_saved(manage):
    _, url, client = manage
    data = aiohttp.FormData(default_to_multipart=True)
    for key, value in form(weekday="5").items():
        data.add_field(key, value)
    async with client.post(url, data=data) as answer:
        page = await answer.text()
    assert answer.request_info.headers["Content-Type"].startswith("multipart/form-data")
    assert answer.status == 200 and '<option value="5" selected>' in page


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"List-Unsubscribe=One-Click"),
        (
            MULTIPART,
            b'--b0undary\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
            b"One-Click\r\n--b0undary--\r\n",
        ),
        ("multipart/form-data; boundary=other", b"List-Unsubscribe=One-Click"),  # malformed
        ("application/x-www-form-urlencoded; charset=nowhere", b"List-Unsubscribe=One-Click"),
    ],
)
async def test_a_one_click_unsubscribe_works_whatever_its_body(manage, content_type, body):
    settings, url, client = manage
    url = url.replace("/manage?", "/unsubscribe?")
    async with client.post(url, data=body, headers={"Content-Type": content_type}) as answer:
        page = await answer.text()
    assert answer.status == 200 and "You are unsubscribed" in page
    with Store(settings.database) as store:
        assert store.is_suppressed("ada@example.org")


NASTY = [
    "/topics/%FF",
    "/topics/%00%0A",
    "/days/%FF",
    "/days/2025-13-45",
    "/days/2025-11-16/%FF+%0A",
    "/days/%D9%A2%D9%A0%D9%A2%D9%A5-11-16",  # Arabic-Indic digits in the date
    "/search?q=%FF&page=%FF",
    "/search?q=%00&page=-1",
    "/search?q=x&page=99999999999999999999",
    "/search?q=x&page=1e3",
    "/feeds/%0A.atom",
    "/unsubscribe?token=%00%FF",
    "/manage?token=%0A",
    "/manage/data?token=" + "%E2%80%AE" * 100,
]


async def test_nasty_urls_are_client_errors_without_a_traceback(web, caplog):
    _, url, client = web
    for path in NASTY:
        async with client.get(url + path) as answer:
            assert 400 <= answer.status < 500, path
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]


def test_a_cycles_lines_about_different_people_are_never_summarised_away():
    """A flood from the web varies its values, so its repeats count by the message's form; a
    cycle's warnings name a different address each, and each must reach the log."""
    repeats = Repeats(clock=lambda: 0.0)

    def passes(name: str, *args: object) -> bool:
        record = logging.LogRecord(name, logging.WARNING, "x", 1, "%s: not delivered", args, None)
        return repeats.filter(record)

    assert all(passes("digest.delivery", f"user{n}@example.org") for n in range(5))
    assert not passes("digest.delivery", "user1@example.org")  # the very same line again
    assert passes("digest.web.base", "/a") and not passes("digest.web.base", "/b")
