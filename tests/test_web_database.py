"""The web's one database path: connections opened once, one call per POST, 503 when held."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from helpers.builders import SECRET, changed

import digest.web.signed
from digest.store import Store, StoreError
from digest.tokens import form_ticket, form_token, make_confirm_token, make_token, token_id
from digest.web import ENDPOINT, make_app
from digest.web.signup import SIGNUP

ALAN = "alan@example.org"
NOW = datetime(2025, 11, 17, 6, 0, tzinfo=UTC)


def remember(settings, email: str = ALAN) -> tuple[str, str]:
    """Make email a mailed recipient of the database; return its token and its form token."""
    secret = SECRET.encode()
    with Store(settings.database) as store:
        store.remember_recipients([(token_id(secret, email), email, "Alan", ["x"], "csv")])
    return make_token(secret, email), form_token(secret, "manage", token_id(secret, email))


class Opened:
    """Count the Stores opened (and with the schema check) and closed, by wrapping Store."""

    def __init__(self, monkeypatch):
        self.opened: list[bool] = []  # one entry per Store opened: did it check the schema?
        self.closed = 0
        init, close = Store.__init__, Store.close

        def counting_init(store, *args, **kwargs):
            self.opened.append(kwargs.get("migrate", True))
            init(store, *args, **kwargs)

        def counting_close(store):
            self.closed += 1
            close(store)

        monkeypatch.setattr(Store, "__init__", counting_init)
        monkeypatch.setattr(Store, "close", counting_close)


class WriteLock:
    """A cycle's write transaction on the database (another connection), until released."""

    def __init__(self, path):
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


@pytest.fixture
async def served(make_settings):
    """Start an app on fresh settings with sign-up on; yield a starter and stop it after."""
    servers: list[TestServer] = []
    sessions: list[aiohttp.ClientSession] = []

    async def start(settings):
        app = make_app(settings)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        client = aiohttp.ClientSession()
        sessions.append(client)
        return app, str(server.make_url("")).rstrip("/"), client

    yield start
    for client in sessions:
        await client.close()
    for server in servers:
        await server.close()


async def test_requests_open_no_connection_after_start_and_all_are_closed_at_the_end(
    make_settings, monkeypatch
):
    settings = changed(make_settings(), web_signup=True)
    token, csrf = remember(settings)
    opened = Opened(monkeypatch)
    app = make_app(settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    at_start = len(opened.opened)
    # the writer, two readers for signed links, four for pages, one for the pages' cache
    assert at_start == 1 + 2 + 4 + 1
    assert opened.opened.count(True) == 1  # the schema is checked once, by the first
    base = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as client:
        for method, path, data in [
            ("GET", f"/manage?token={token}", None),
            ("POST", f"/manage?token={token}", {"csrf": csrf, "topic": "graph neural network"}),
            ("GET", f"/manage/data?token={token}", None),
            ("GET", f"/unsubscribe?token={token}", None),
            ("POST", f"/unsubscribe?token={token}", {}),
            ("POST", f"/resubscribe?token={token}", {}),
            ("GET", "/", None),
            ("GET", "/subscribe", None),
            ("GET", "/healthz", None),
            ("POST", f"/manage/delete?token={token}", {"csrf": csrf}),
        ]:
            async with client.request(method, base + path, data=data) as answer:
                assert answer.status == 200, (method, path, await answer.text())
    assert len(opened.opened) == at_start  # every request used the connections of the start
    await server.close()
    assert opened.closed == at_start  # and the cleanup closed each of them


async def test_a_post_makes_one_database_call_and_parses_its_token_once(
    served, make_settings, monkeypatch
):
    settings = make_settings()
    token, csrf = remember(settings)
    app, base, client = await served(settings)
    calls: list[str] = []
    database = app[ENDPOINT].database
    for name in ("read", "page", "write"):
        original = getattr(database, name)

        def counted(*args, name=name, original=original):
            calls.append(name)
            return original(*args)

        monkeypatch.setattr(database, name, counted)
    parses: list[str] = []
    parse = digest.web.signed.read_link
    monkeypatch.setattr(digest.web.signed, "read_link", lambda t: parses.append(t) or parse(t))
    form = {"csrf": csrf, "topic": "graph neural network", "frequency": "weekly", "weekday": "2"}
    async with client.post(f"{base}/manage?token={token}", data=form) as answer:
        assert answer.status == 200 and 'id="saved"' in await answer.text()
    assert calls == ["write"] and parses == [token]  # read, check and save: one call, one parse
    with Store(settings.database) as store:
        assert store.person(ALAN).weekday == 2
    for path in ("/unsubscribe", "/resubscribe"):
        calls.clear()
        async with client.post(f"{base}{path}?token={token}") as answer:
            assert answer.status == 200
        assert calls == ["write"], path
    calls.clear()
    async with client.get(f"{base}/manage?token={token}") as answer:
        assert answer.status == 200
    assert calls == ["read"]


async def test_the_secret_is_loaded_at_start(served, make_settings):
    settings = changed(make_settings(), secret=None)  # none configured: the database keeps one
    app = make_app(settings)
    with pytest.raises(RuntimeError, match="has not started"):
        app[ENDPOINT].secret  # noqa: B018
    app, _, _ = await served(settings)
    with Store(settings.database) as store:
        kept = store.get_meta("secret")
    assert kept and app[ENDPOINT].secret == kept.encode()  # before any request
    configured = changed(make_settings(), database=settings.database.with_name("other.db"))
    app, _, _ = await served(configured)
    assert app[ENDPOINT].secret == SECRET.encode()


@pytest.mark.slow
async def test_a_cycle_holding_the_lock_gets_busy_pages_and_unsubscribes_are_kept(
    served, make_settings
):
    settings = changed(make_settings(), web_signup=True)
    token, csrf = remember(settings)
    nonce, secret = "n" * 22, SECRET.encode()
    with Store(settings.database) as store:
        store.add_signup(nonce, "grace@example.org", "Grace", ["graph neural network"], NOW)
    app, base, client = await served(settings)
    endpoint = app[ENDPOINT]
    endpoint.write_wait = 0.1  # the lock is held throughout: each write waits it out
    endpoint.clock = lambda: NOW
    confirm = make_confirm_token(secret, nonce, NOW + timedelta(hours=48))
    lock = WriteLock(settings.database)
    try:
        async with client.get(f"{base}/manage?token={token}") as answer:
            assert answer.status == 200  # a read never waits for the writer
        writes = [
            (f"/manage?token={token}", {"csrf": csrf, "topic": "graph neural network"}),
            (f"/manage/delete?token={token}", {"csrf": csrf}),
        ]
        for path, data in writes:
            async with client.post(base + path, data=data) as answer:
                page = await answer.text()
            assert answer.status == 503 and answer.headers["Retry-After"] == "60", path
            assert "Busy for a moment" in page and "try again in a minute" in page
            assert answer.headers["Cache-Control"] == "no-store"
        form = {"form": form_token(secret, "confirm", nonce)}
        async with client.post(f"{base}/confirm?token={confirm}", data=form) as answer:
            assert answer.status == 503 and answer.headers["Retry-After"] == "60"
            assert "busy for a moment" in await answer.text()
        issued = str(int(NOW.timestamp()) - 60)
        signup = {"email": "ada@example.org", "topic": "graph neural network", "issued": issued}
        signup["form"] = form_ticket(secret, "signup", issued)
        async with client.post(f"{base}/subscribe", data=signup) as answer:
            assert answer.status == 503 and answer.headers["Retry-After"] == "60"
            assert "busy for a moment" in await answer.text()
        async with client.post(f"{base}/unsubscribe?token={token}") as answer:
            assert answer.status == 200 and "your request is saved" in await answer.text()
        assert [r["email"] for r in endpoint.journal.pending()] == [ALAN]
    finally:
        lock.release()
    with Store(settings.database) as store:
        assert store.person(ALAN) is None  # nothing was saved or deleted
        assert store.signup_state(nonce) == ("grace@example.org", False)
        assert not store.recent_signups("ada@example.org", NOW - timedelta(days=1))
    async with client.post(base + writes[0][0], data=writes[0][1]) as answer:
        assert answer.status == 200  # free again: the same POSTs go through
    async with client.post(f"{base}/subscribe", data=signup) as answer:
        assert answer.status == 200 and "Retry-After" not in answer.headers
    await app[SIGNUP].idle(5)
    with Store(settings.database) as store:
        assert store.recent_signups("ada@example.org", NOW - timedelta(days=1))


async def test_a_database_that_cannot_be_used_stops_the_start_with_its_reason(make_settings):
    settings = make_settings()
    with Store(settings.database) as store:
        store.db.execute("PRAGMA user_version = 999")

    def ours() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("web-")}

    before = ours()
    server = TestServer(make_app(settings), host="127.0.0.1")
    with pytest.raises(StoreError, match="written by a newer digest"):
        await server.start_server()
    await server.close()
    assert ours() <= before  # the connections opened before the failure are closed again
