"""The endpoint against slow, idle, oversized and malformed requests, on real sockets."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from unittest import mock

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from helpers.mailserver import free_port

from digest.config import ConfigError, load_settings
from digest.store import Store
from digest.tokens import make_token, token_id
from digest.web import ENDPOINT, HEADERS, REPEATS, Limits, Repeats, make_app, start_site

SECRET = "a hardening secret of at least 32 bytes"
IDLE = 1100  # more than systemd's default soft limit of 1,024 open files


@pytest.fixture(autouse=True)
def fresh_repeats():
    """Forget the log lines other tests had summarised."""
    REPEATS.runs.clear()


def remember(settings, email: str = "ada@example.org") -> str:
    """Make `email` known to the database as a mailed recipient; return its token."""
    with Store(settings.database) as store:
        secret = store.secret(SECRET)
        store.remember_recipients([(token_id(secret, email), email)])
    return make_token(secret, email)


@pytest.fixture
async def site(make_settings, monkeypatch):
    """Start make_app's application with start_site; yield a starter: (url, settings, runner)."""
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    runners = []

    async def start(limits=None, extra: str = "", routes=(), status=None):
        settings = make_settings(extra=extra)
        app = make_app(settings, status, limits)
        app.router.add_routes(routes)
        runner = await start_site(app, "127.0.0.1", 0)
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}", settings, runner

    yield start
    for runner in runners:
        await runner.cleanup()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def exchange(url: str, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes; return everything the server answers before it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(url))
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def parse(raw: bytes) -> tuple[int, dict[str, str], str]:
    """Split one raw HTTP answer into status, headers (lower-case names) and body."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body.decode()


def assert_secure(headers) -> None:
    """Assert that an answer carries every security header of the app's pages."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, value in HEADERS.items():
        assert lowered.get(name.lower()) == value, name


def tracebacks(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info or r.exc_text]


# --- 1. slow and idle clients ----------------------------------------------------------------


def raise_own_file_limit(needed: int) -> None:
    """Let this test process hold `needed` open files, or skip saying why it cannot."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"needs {needed} open files but the hard limit is {hard} (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def open_idle(port: int, count: int) -> list[socket.socket]:
    """Open `count` connections that never send a byte, as fast as the server accepts them."""
    sockets = []
    try:
        for n in range(count):
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            if n % 100 == 99:  # answered once the server accepted all before it
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).close()
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


# The server as systemd's default limits would leave it if it could not raise its soft limit:
# 1,024 open files, soft and hard.
SERVE_AT_1024 = (
    "import resource, runpy, sys; "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024)); "
    "sys.argv = ['digest', 'serve']; runpy.run_module('digest', run_name='__main__')"
)


@pytest.mark.slow
def test_an_unsubscribe_gets_through_1100_idle_connections(make_settings, tmp_path):
    raise_own_file_limit(IDLE + 300)
    port = free_port()
    settings = make_settings(extra=f'\n[web]\nlisten = "127.0.0.1:{port}"\n')
    token = remember(settings)
    log_path = tmp_path / "serve.log"
    env = {**os.environ, "DIGEST_CONFIG": str(settings.path), "DIGEST_SECRET": SECRET}
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([sys.executable, "-c", SERVE_AT_1024], env=env, stderr=log_file)
    idle: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "digest serve did not start"
                time.sleep(0.05)
        idle = open_idle(port, IDLE)

        started = time.monotonic()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/unsubscribe?token={token}",
            data=b"List-Unsubscribe=One-Click",
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            page = answer.read().decode()
        assert time.monotonic() - started < 5
        assert answer.status == 200 and "You are unsubscribed" in page
        with Store(settings.database) as store:
            assert store.is_suppressed("ada@example.org")
        # The server closed the oldest idle connections: it never held all 1,100.
        if os.path.isdir(f"/proc/{process.pid}/fd"):
            assert len(os.listdir(f"/proc/{process.pid}/fd")) < 600
    finally:
        for sock in idle:
            sock.close()
        process.terminate()
        process.wait(timeout=10)
    log = log_path.read_text()
    assert "open files limit 1024" in log and "at most 500 connections" in log
    assert "closing the oldest idle ones" in log
    assert "Traceback" not in log and "out of system resource" not in log
    assert len(log.encode()) < 4000, log


@pytest.mark.slow
async def test_a_connection_without_a_whole_request_is_closed_after_the_header_timeout(site):
    assert Limits().header_timeout == 10  # the default; this test shortens it
    url, _, _ = await site(Limits(header_timeout=0.5))
    cases = {
        "silent": b"",
        "half a head": b"GET /healthz HTTP/1.1\r\nHost: example.org\r\nX-Slow: ",
        "idle after an answer": b"GET /healthz HTTP/1.1\r\nHost: example.org\r\n\r\n",
    }

    async def timed(data: bytes) -> tuple[bytes, float]:
        started = time.monotonic()
        answer = await exchange(url, data, timeout=5)
        return answer, time.monotonic() - started

    answers = await asyncio.gather(*map(timed, cases.values()))  # each on its own connection
    for case, (answer, waited) in zip(cases, answers, strict=True):
        assert 0.4 < waited < 4, case
        assert answer.startswith(b"HTTP/1.1 200") == (case == "idle after an answer"), case


@pytest.mark.slow
async def test_a_body_that_does_not_arrive_in_time_gets_408(site, caplog):
    url, _, _ = await site(Limits(body_timeout=0.5))
    started = time.monotonic()
    answer = await exchange(
        url,
        b"POST /unsubscribe?token=x HTTP/1.1\r\nHost: example.org\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
        b"List-Unsubscribe",
    )
    status, headers, body = parse(answer)
    assert status == 408 and "Request timed out" in body
    assert_secure(headers)
    assert time.monotonic() - started < 4  # answered, and closed
    assert not tracebacks(caplog)


async def test_a_client_leaving_mid_body_logs_no_traceback(site, caplog):
    url, _, runner = await site()
    _, writer = await asyncio.open_connection("127.0.0.1", port_of(url))
    writer.write(b"POST /unsubscribe?token=x HTTP/1.1\r\nHost: example.org\r\n")
    writer.write(b"Content-Length: 100\r\n\r\nList-Unsub")
    await writer.drain()
    deadline = time.monotonic() + 5
    while not any(connection.busy for connection in runner.server.connections):
        assert time.monotonic() < deadline, "the server never started reading the body"
        await asyncio.sleep(0.01)
    writer.transport.abort()
    while any(connection.busy for connection in runner.server.connections):
        assert time.monotonic() < deadline, "the server never noticed the client left"
        await asyncio.sleep(0.01)
    assert not tracebacks(caplog)


async def test_a_connection_is_closed_after_max_requests(site):
    url, _, _ = await site(Limits(max_requests=2, header_timeout=30))
    one = b"GET /healthz HTTP/1.1\r\nHost: example.org\r\n\r\n"
    started = time.monotonic()
    answer = await exchange(url, one * 3)
    assert answer.count(b"HTTP/1.1 200") == 2 and b"Connection: close" in answer
    assert time.monotonic() - started < 5  # closed by the count, not the 30 s deadline


async def test_over_max_connections_the_oldest_idle_ones_are_closed(site, caplog):
    url, _, _ = await site(Limits(max_connections=5))
    port = port_of(url)
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(8)]
    try:
        async with aiohttp.ClientSession() as client, client.get(url + "/healthz") as answer:
            assert answer.status == 200
        # Nine connections came: the four oldest idle ones were closed, the newest stay open.
        for reader, _ in streams[:4]:
            assert await asyncio.wait_for(reader.read(), 5) == b""
        for reader, _ in streams[4:]:
            assert not reader.at_eof()
    finally:
        for _, writer in streams:
            writer.close()
    warnings = [r for r in caplog.records if "closing the oldest idle" in r.getMessage()]
    assert len(warnings) == 1  # said once, not once per connection


def test_repeated_log_lines_are_summarised_once_a_minute(caplog):
    now = [0.0]
    logger = logging.getLogger("digest.test_repeats")
    logger.addFilter(Repeats(clock=lambda: now[0]))

    def accept_failed() -> None:
        try:
            raise OSError(24, "Too many open files")
        except OSError:
            logger.exception("socket.accept() out of system resource")

    try:
        with caplog.at_level(logging.INFO, logger="digest.test_repeats"):
            for _ in range(10_000):
                accept_failed()
            for n in range(3):  # below WARNING: never held back
                logger.info("unsubscribed %s", f"{n}•••@example.org")
            logger.error("something else")
            now[0] = 61.0
            accept_failed()
            accept_failed()
    finally:
        logger.filters.clear()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "socket.accept() out of system resource"
    assert lines[1:5] == [
        *(f"unsubscribed {n}•••@example.org" for n in range(3)),
        "something else",
    ]
    assert len(lines) == 6
    assert lines[5].endswith("(… 9999 more like it in the last 61 s)")
    assert sum(1 for r in caplog.records if r.exc_info) == 1  # the summary has no traceback
    assert len(caplog.text.encode()) < 2000


async def test_asyncio_accept_errors_are_summarised_once_the_site_runs(site, caplog):
    await site()
    loop = asyncio.get_running_loop()
    error = OSError(24, "Too many open files")
    for _ in range(1000):  # what asyncio logs on each accept() that fails with EMFILE
        loop.call_exception_handler(
            {"message": "socket.accept() out of system resource", "exception": error}
        )
    records = [r for r in caplog.records if r.name == "asyncio"]
    assert len(records) == 1


# --- 2. the same security headers on every answer ---------------------------------------------


async def test_every_answer_carries_the_security_headers_and_errors_a_friendly_page(site, caplog):
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("the secret detail of a bug")

    url, _, _ = await site(routes=[web.get("/broken", broken)])
    async with aiohttp.ClientSession() as client:
        cases = [
            ("GET", "/healthz", {}, 200, None),
            ("GET", "/unsubscribe?token=x", {}, 400, "This link is not valid"),
            ("GET", "/nowhere", {}, 404, "Page not found"),
            ("DELETE", "/unsubscribe", {}, 405, "Not available this way"),
            ("POST", "/unsubscribe?token=x", {"data": b"x" * 70_000}, 413, "Request too large"),
            ("GET", "/broken", {}, 500, "Something went wrong"),
        ]
        for method, path, options, status, heading in cases:
            async with client.request(method, url + path, **options) as answer:
                body = await answer.text()
                assert answer.status == status, path
                assert_secure(answer.headers)
                if heading:
                    assert answer.content_type == "text/html" and heading in body, path
                    assert "Daily Papers" in body  # the list's own friendly page
                    assert "secret detail" not in body and "Traceback" not in body
                if status == 405:
                    assert "GET" in answer.headers["Allow"]
    (error,) = tracebacks(caplog)  # the 500, once
    assert error.levelno == logging.ERROR and "GET /broken failed" in error.getMessage()


# --- 3. very long URLs ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [8 * 1024, 100 * 1024])
async def test_a_very_long_token_gets_a_clean_400_without_a_traceback(site, caplog, size):
    caplog.set_level(logging.DEBUG)
    url, _, _ = await site()
    token = "A" * size
    answer = await exchange(
        url, f"GET /unsubscribe?token={token} HTTP/1.1\r\nHost: example.org\r\n\r\n".encode()
    )
    status, headers, body = parse(answer)
    assert status == 400 and "This request could not be understood" in body
    assert_secure(headers)
    assert not tracebacks(caplog)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "refused a malformed request from 127.0.0.1 (LineTooLong)" in caplog.text  # debug
    assert token[:50] not in caplog.text  # nor any of the token


# --- 4. /healthz --------------------------------------------------------------------------------


def detailed_status(last: dict | None = None) -> dict:
    return {
        "status": "degraded",
        "running": False,
        "last_cycle": {"status": "error"},
        "next_cycle": "2025-11-17T07:00:00+01:00",
        "error": "SMTPAuthenticationError: 535 bad password for papers@example.org",
    }


async def get_health(url: str, headers: dict[str, str] | None = None) -> dict:
    async with aiohttp.ClientSession() as client, client.get(url, headers=headers) as answer:
        assert answer.status == 200
        assert_secure(answer.headers)
        return json.loads(await answer.text())


async def test_healthz_details_only_for_local_requests_not_through_a_proxy(site):
    url, _, _ = await site(status=detailed_status)
    assert await get_health(url + "/healthz") == detailed_status()
    for header in ("Forwarded", "X-Forwarded-For", "X-Real-IP"):
        through_proxy = await get_health(url + "/healthz", {header: "203.0.113.9"})
        assert through_proxy == {"status": "degraded"}, header


async def test_healthz_from_another_machine_shows_the_status_alone(make_settings):
    app = make_app(make_settings(), detailed_status)
    await app[ENDPOINT].start()  # /healthz reads the last cycle on the endpoint's connections
    transport = mock.Mock()
    remotes = {
        "203.0.113.9": False,
        "::ffff:10.0.0.1": False,
        "2001:db8::1": False,
        "::1": True,
        "::ffff:127.0.0.1": True,
    }
    for remote, details in remotes.items():
        transport.get_extra_info.side_effect = lambda name, default=None, remote=remote: (
            (remote, 40000) if name == "peername" else default
        )
        request = make_mocked_request("GET", "/healthz", app=app, transport=transport)
        answer = await app[ENDPOINT].health(request)
        expected = detailed_status() if details else {"status": "degraded"}
        assert json.loads(answer.text) == expected, remote
    await app[ENDPOINT].stop()


async def test_health_details_setting_shows_them_to_everyone(site):
    url, settings, _ = await site(status=detailed_status, extra="\n[web]\nhealth_details = true\n")
    assert settings.web_health_details
    assert await get_health(url + "/healthz", {"X-Forwarded-For": "203.0.113.9"}) == (
        detailed_status()
    )


def test_health_details_must_be_true_or_false(make_settings):
    with pytest.raises(ConfigError, match=r"\[web\] health_details: expected true or false"):
        make_settings(extra='\n[web]\nhealth_details = "yes"\n')
    assert load_settings(make_settings().path).web_health_details is False
